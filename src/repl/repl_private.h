/* Private to the repl module: repl.c (the libraft server, the state machine, leadership) and
 * repl_net.c (the transport under libraft, and the peers' addresses learnt over NATS). */
#ifndef STANZA_REPL_PRIVATE_H
#define STANZA_REPL_PRIVATE_H
#include <raft.h>
#include <raft/uv.h>

#include "repl.h"
#include "strmap.h"

#define REPL_ID_MAX 64
#define REPL_ADDR_MAX 64 /* "a.b.c.d:port" */

struct repl {
    uv_loop_t *loop;
    const config_t *cfg;
    store_t *store;
    bus_t bus;
    void (*on_lead)(void *arg, bool leading);
    void (*on_fatal)(void *arg, const char *why);
    void *arg;

    char node_id[REPL_ID_MAX + 1];
    char raft_addr[REPL_ADDR_MAX]; /* where the transport listens and what is announced */
    char *log_path;
    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;
    bool raft_inited, io_inited;

    /* repl_net.c */
    struct raft_uv_transport outer; /* what libraft holds: resolves node IDs to addresses */
    struct raft_uv_transport inner; /* libraft's TCP transport */
    bool inner_inited;
    void (*outer_close_cb)(struct raft_uv_transport *t);
    strmap_t addrs;      /* node ID -> malloc'd "a.b.c.d:port" */
    strmap_t fixed;      /* node IDs whose address was configured (value unused) */
    char *nodes_subject; /* _STZ.raft.<cluster id>.nodes */
    bus_sub_t *nodes_sub;
    uv_timer_t announce; /* repeats the announcement */
    bool announce_started;
    uint64_t announces;
    char *commit_subject; /* _STZ.raft.<cluster id>.commit: the leader's commit index */
    bus_sub_t *commit_sub;
    uint64_t heard_commit, heard_term; /* the last the leader published, and its term */

    /* Leadership (repl.c). */
    uv_timer_t poll; /* watches libraft's state: it has no callback for changes */
    bool poll_started;
    raft_id leader_id;
    char leader[REPL_ID_MAX + 1];
    uint64_t leader_changes;
    bool leading, barrier_pending;
    struct raft_barrier barrier;
    /* The term of the last barrier applied (the node serves only in that term: until then its
     * store may lack entries its predecessor committed), and of the one pending. */
    uint64_t barrier_term, barrier_issued_term;
    bool stopping, fatal;
    uint64_t snap_index; /* the snapshot being taken stands for this entry */
    /* The log held in memory (repl.c, note_applied): entries applied since the last snapshot
     * began, and their bytes; the index of the last snapshot written. */
    uint64_t log_entries, log_bytes, last_snap_index;
    struct raft_transfer transfer;
    bool transferring;
    void (*transfer_done)(void *arg, bool moved);
    void *transfer_arg;
    uint64_t proposed_index, proposed_ns; /* the pending proposal, for the commit latency */
    uint64_t commits, commit_ns_total;
    uint64_t commit_hist[STORE_HIST_BUCKETS + 1];
    void (*stop_done)(void *arg);
    void *stop_arg;

    /* repl_members.c */
    char *member_subjects[4];  /* join, node.add, node.remove, node.transfer */
    bus_sub_t *member_subs[4]; /* while leading */
    struct raft_change change;
    bool changing;
    int change_kind;
    char change_node[REPL_ID_MAX + 1];
    char *change_reply;   /* where to answer the change under way, or NULL */
    char *transfer_reply; /* where to answer the transfer under way, or NULL */
    bool joining;         /* a fresh log without bootstrap (repl.c): asking to be added */
    bool was_voter;
    char *join_inbox;
    bus_sub_t *join_sub;
    uv_timer_t join_timer;
    bool join_started;
    uint64_t join_asks;
};

/* One entry of --cluster_peers. */
typedef struct repl_peer {
    char id[CONFIG_NODE_ID_MAX + 1];
    char host[256]; /* "" when no address was given */
    int port;
} repl_peer_t;

/* The node ID's number in libraft: FNV-1a of the ID (never 0). repl_members.c. */
raft_id repl_raft_id(const char *node_id, size_t len);
/* "PREFIX.<cluster id>.SUFFIX", malloc'd: the subjects the nodes talk on. repl_members.c. */
char *repl_subject(const repl_t *r, const char *prefix, const char *suffix);

/* repl_net.c */
/* The configured peers (at most CONFIG_PEERS_MAX, checked by config): their count. */
size_t repl_peers(const repl_t *r, repl_peer_t out[CONFIG_PEERS_MAX]);
/* Sets up both transports and the configured addresses; this node's own address is picked
 * (a free port when none was configured). */
int repl_net_init(repl_t *r, char *err, size_t errlen);
/* Subscribes to the announcements and starts announcing. */
int repl_net_start(repl_t *r, char *err, size_t errlen);
/* Stops announcing and unsubscribes (before libraft closes the transport). */
void repl_net_stop(repl_t *r);
void repl_net_free(repl_t *r);
/* The address learnt or configured for a node ID, "" when none. */
const char *repl_net_address(const repl_t *r, const char *node_id);

/* repl_members.c: joining and membership changes (requests over NATS). */
void repl_members_init(repl_t *r);
/* A joining node starts asking to be added. */
int repl_members_start(repl_t *r, char *err, size_t errlen);
/* Takes the membership requests while leading (and stops taking them when not). */
void repl_members_lead(repl_t *r, bool leading);
/* From the leadership poll: notices this node joined, or was removed. */
void repl_members_poll(repl_t *r);
void repl_members_stop(repl_t *r);
void repl_members_free(repl_t *r);

#endif
