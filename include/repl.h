/* repl: the store replicated on Raft (clustered mode, --clustered), on Debian's libraft.
 *
 * Every node runs one libraft server on the daemon's loop: its log under --cluster_log_path, its
 * TCP transport on --cluster_raft_listen (default: the client host, a free port). The store is
 * attached as the state machine (store.h "replication"): on the leader, each batch the engine
 * submits becomes one log entry; every node applies the committed entries to its own store.
 *
 * Peers are named by their node IDs (--cluster_node_id, --cluster_peers). A peer's Raft address
 * is either given (ID@HOST:PORT in --cluster_peers) or learnt over NATS: every node announces
 * "ID HOST:PORT" on _STZ.raft.<cluster id>.nodes through the bus (the embedded server with its
 * routes, or -ns), so the operator wires NATS and nothing else.
 *
 * The node's own ID is kept in the log directory (file node_id): a restarted node keeps it even
 * when --cluster_node_id is not given (then a random one is made on the first start, as NSS).
 * A fresh log directory is bootstrapped with --cluster_peers (those nodes and this one, all
 * voters) or --cluster_bootstrap (this node alone).
 *
 * A fresh log directory without either joins: the node asks the leader to add it, and the
 * leader takes membership changes over NATS (repl_members.c).
 *
 * Leading: once this node is leader and has applied every entry committed before its term, it
 * calls on_lead(arg, true): the daemon then starts the engine from the store. When it stops
 * leading, on_lead(arg, false) (the pending proposal has failed by then). */
#ifndef STANZA_REPL_H
#define STANZA_REPL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bus.h"
#include "config.h"
#include "store.h"

typedef struct repl repl_t;

typedef struct repl_options {
    uv_loop_t *loop;
    const config_t *cfg;
    store_t *store;
    const bus_t *bus;
    void (*on_lead)(void *arg, bool leading);
    /* A fault the node cannot continue after (an entry this version cannot apply). */
    void (*on_fatal)(void *arg, const char *why);
    void *arg;
} repl_options_t;

typedef enum {
    REPL_UNAVAILABLE,
    REPL_FOLLOWER,
    REPL_CANDIDATE,
    REPL_LEADER,
} repl_role_t;

typedef struct repl_status {
    repl_role_t role;
    bool leading;          /* on_lead(true) was called and still holds */
    const char *node_id;   /* valid while the repl is */
    const char *leader;    /* the leader's node ID, "" if none known */
    const char *raft_addr; /* this node's transport address, HOST:PORT */
    uint64_t term, commit_index, applied_index, last_index;
    /* The leader's commit index: this node's own when it leads; on a follower, as the leader
     * last published it in this term (at most a second old), else 0. */
    uint64_t leader_commit_index;
    uint64_t leader_changes; /* times this node saw a new leader (itself included) */
    uint64_t snapshot_index; /* of the last snapshot this node wrote (0: none since it started) */
    uint64_t log_bytes;      /* of the entries applied since the last snapshot began */
    size_t npeers;           /* voters in the configuration, this node included */
    /* Entries this node proposed and saw applied: time from the proposal until the entry was in
     * this node's LMDB (a quorum's logs, then the store); commit_hist as store_stats_t's, with
     * store_hist_bounds_us. */
    uint64_t commits, commit_ns_total;
    uint64_t commit_hist[STORE_HIST_BUCKETS + 1];
} repl_status_t;

/* One server of the configuration, as this node sees it. */
typedef struct repl_peer_status {
    const char *node_id;
    const char *address; /* its Raft transport, "" when not known yet */
    bool voter, self;
    /* On the leader: the next entry to send it and the last one it holds (else 0). */
    uint64_t next_index, match_index;
} repl_peer_status_t;

/* Opens the log, bootstraps a fresh one as configured, and starts the server. Returns 0 or a
 * negative err.h code with a message in err. */
int repl_start(repl_t **out, const repl_options_t *opt, char *err, size_t errlen);
/* Hands the lead to node_id (NULL: the most up-to-date voter); done(arg, moved) on the loop when
 * the target leads (moved) or after an election timeout (not moved). STZ_EINVAL when this node
 * does not lead or the target is not another voter, STZ_EBUSY while a transfer is under way. */
int repl_transfer(repl_t *r, const char *node_id, void (*done)(void *arg, bool moved), void *arg);
/* Stops the server; done(arg) on the loop once libraft has let go (then repl_free). A leader with
 * other voters first hands the lead over (repl_transfer), so that a rolling restart costs the
 * clients no election timeout. */
void repl_stop(repl_t *r, void (*done)(void *arg), void *arg);
void repl_free(repl_t *r);
void repl_status(const repl_t *r, repl_status_t *out);
/* Up to max servers of the current configuration into out (strings valid until the loop runs
 * again); returns how many. */
size_t repl_peer_status(const repl_t *r, repl_peer_status_t *out, size_t max);
const char *repl_role_name(repl_role_t role);

#endif
