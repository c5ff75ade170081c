/* harness_raft: clustered-mode stanzads (--clustered) for the it_raft_* tests, on top of
 * harness_cluster.h: every node's embedded NATS server routed to all the others (so Raft
 * addresses are learnt over NATS), node IDs n0, n1, ..., a FILE store in its own temp dir, and a
 * monitoring port for its serverz and clusterz. The helpers CHECK what they wait for (a failed
 * wait ends the test program, as a CHECK does). */
#ifndef STANZA_HARNESS_RAFT_H
#define STANZA_HARNESS_RAFT_H
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness_cluster.h"
#include "harness_stan.h"

#define HRAFT_MAX HCLUSTER_MAX
#define HRAFT_WAIT_MS 15000

struct hraft_node {
    struct hnode n;
    bool paused; /* SIGSTOPped: its monitoring port would not answer */
    int mport;
    char mport_s[16], id[8], dir[PATH_MAX - 16], data[PATH_MAX];
    const char *extra[24];
};

struct hraft {
    int count; /* nodes set up (started or not) */
    struct hraft_node nodes[HRAFT_MAX];
    char routes[HCLUSTER_ROUTES_LEN]; /* every node's cluster port */
    int cports[HRAFT_MAX];
    char peers[HRAFT_MAX * 4]; /* "n0,n1,..." of the bootstrapped members */
};

/* Sets up count nodes (ports, temp dirs, flags) without starting them. The first `members`
 * are bootstrapped together (--cluster_peers n0,...); the others start on an empty log with no
 * peers, so they ask to join. more: extra flags for every node (NULL-terminated, or NULL;
 * static strings). */
void hraft_setup(struct hraft *c, int count, int members, const char *const *more);
void hraft_start_node(struct hraft *c, int i);
/* hraft_setup(count, count, more) and every node started. */
void hraft_start(struct hraft *c, int count, const char *const *more);
/* Stops every node still running (SIGTERM: a clean exit is CHECKed) and removes the dirs. */
void hraft_stop(struct hraft *c);

/* The node's serverz (or clusterz), or NULL when it does not answer. */
json_t *hraft_serverz(const struct hraft *c, int i);
json_t *hraft_clusterz(const struct hraft *c, int i);
/* z's "role" ("" when z is NULL) and an integer of its "raft" object. */
const char *hraft_role(json_t *z);
uint64_t hraft_int(json_t *z, const char *key);
/* Waits until exactly one running node says Leader and serves (its engine answers); returns
 * its index, or -1 (printed) at the deadline. */
int hraft_wait_leader(const struct hraft *c, int timeout_ms);
/* Waits until node `leader`'s clusterz lists `voters` voters (and nobody else); CHECKed. */
void hraft_wait_voters(const struct hraft *c, int leader, int voters);

/* A client connects through node i, trying again until the leader's request subjects are routed
 * there (up to HRAFT_WAIT_MS), as a client would. */
stanConnection *hraft_connect_via(const struct hraft *c, int i, const char *client_id);
/* A client given every started node's URL (it reconnects to another when its node dies). */
stanConnection *hraft_connect_all(const struct hraft *c, const char *client_id);
/* Publishes "m<first>".."m<last>" on "jobs", each acknowledged (CHECKed). */
void hraft_pub_many(stanConnection *sc, int first, int last);
/* A publish whose ack never came is sent again (at-least-once) for up to HRAFT_WAIT_MS. */
void hraft_pub_retry(stanConnection *sc, const char *channel, const char *payload);
/* m0..m(count-1) all read back from "jobs" through node via, each at least once. */
void hraft_check_all_there(const struct hraft *c, int via, int count);
/* The node is a follower of `leader` holding what the leader's store held when called, and its
 * NATS server routes the leader's request subjects again. */
void hraft_check_caught_up(const struct hraft *c, int node, int leader);
/* The node's channelsz for one channel: its message count, -1 when it has no such channel. */
int64_t hraft_channel_msgs(const struct hraft *c, int node, const char *channel);
/* Waits up to HRAFT_WAIT_MS until it is count (a follower's view is loaded again at most once a
 * second); CHECKed. */
void hraft_wait_channel_msgs(const struct hraft *c, int node, const char *channel, int64_t count);
/* Waits up to HRAFT_WAIT_MS until the node's serverz shows raft.key at least min; returns the
 * last value read (the caller checks it). */
uint64_t hraft_wait_raft_int(const struct hraft *c, int node, const char *key, uint64_t min);
/* Waits until the leader's request subjects answer through node's NATS server (a connect
 * through it succeeds): the leader's subscriptions have crossed the routes to it. */
void hraft_wait_routed(const struct hraft *c, int node);
/* True if the node's log has a line containing needle. */
bool hraft_log_has(const struct hraft *c, int node, const char *needle);
/* Waits up to HRAFT_WAIT_MS for such a line; false (printed) if none came. */
bool hraft_wait_log(const struct hraft *c, int node, const char *needle);

#endif
