/* harness_cluster: routed clusters for the it_cluster_* tests, on top of harness.h.
 *
 * Two kinds of node: Debian's nats-server (struct hnatsd: /usr/sbin/nats-server, or $NATS_SERVER)
 * and stanzad (struct hnode: a struct hserver started with the cluster flags). Every port is a free
 * loopback port picked at start; a restart reuses the same ports and flags, so the other nodes'
 * routes find the node again. Nothing here sleeps a fixed time: every wait is on an event with a
 * deadline (a port accepting, a message arriving).
 *
 * Interest crosses a route asynchronously (RS+ after the SUB); hcluster_wait_propagated waits
 * for it with a probe subscription, so tests never publish into a route that has not yet heard
 * of the subscriber. */
#ifndef STANZA_HARNESS_CLUSTER_H
#define STANZA_HARNESS_CLUSTER_H
#include <limits.h>
#include <stdbool.h>

#include "harness.h"

#define HCLUSTER_MAX 5
#define HCLUSTER_ROUTES_LEN (HCLUSTER_MAX * 40)
#define HCLUSTER_WAIT_MS 10000 /* default deadline for a route or interest to show up */

/* ---- nats-server processes ---- */

struct hnatsd {
    struct hproc proc;
    int port;  /* client port */
    int cport; /* cluster port; 0 when it has no cluster listener */
    char name[32];
    char cluster_name[64]; /* "" for none (nats-server then makes one up) */
    char routes[HCLUSTER_ROUTES_LEN];
    char dir[PATH_MAX - 64]; /* temp dir with its log */
    char log[PATH_MAX];
    char url[64];             /* nats://127.0.0.1:port */
    char curl[64];            /* nats://127.0.0.1:cport, "" without a cluster listener */
    const char *const *extra; /* more flags (NULL-terminated, or NULL); they outlive the node */
};

/* The nats-server binary: $NATS_SERVER, or /usr/sbin/nats-server. */
const char *hnatsd_bin(void);

/* Starts `nats-server -a 127.0.0.1 -p PORT -n NAME -l LOG [--cluster nats://127.0.0.1:CPORT]
 * [--routes ROUTES] [--cluster_name CNAME]` on a free client port, and waits until it accepts
 * client connections. cport: 0 = no cluster listener, -1 = a free port, > 0 = that port.
 * routes and cluster_name may be NULL. Returns 0, or -1 after printing why (and its log). */
int hnatsd_start(struct hnatsd *n, const char *name, int cport, const char *routes,
                 const char *cluster_name);
/* A nats-server without a cluster listener, started with extra flags as well (NULL-terminated,
 * at most 16; e.g. credentials, TLS, or "-c FILE"), which must outlive it. Returns as
 * hnatsd_start. */
int hnatsd_start_args(struct hnatsd *n, const char *name, const char *const *extra);
/* Sends sig and waits for the exit (SIGKILL after HARNESS_STOP_TIMEOUT_MS). The temp dir is kept
 * for hnatsd_restart; hnatsd_cleanup removes it. Returns the exit status (-1 when killed late). */
int hnatsd_stop(struct hnatsd *n, int sig);
/* Starts a stopped nats-server again with the same ports, name, routes and cluster name (the log
 * is appended to); retries while the old ports are still held, up to the start deadline. */
int hnatsd_restart(struct hnatsd *n);
/* Stops it if running (SIGTERM) and removes its temp dir (kept when HARNESS_KEEP is set). */
void hnatsd_cleanup(struct hnatsd *n);
void hnatsd_dump_log(const struct hnatsd *n);

/* ---- stanzad nodes ---- */

struct hnode {
    struct hserver s; /* client port, log, temp dir: as harness_server_start */
    int cport;        /* cluster port */
    char curl[64];    /* nats://127.0.0.1:cport */
    char routes[HCLUSTER_ROUTES_LEN];
    char cluster_name[64]; /* "" for none */
    char cid[64];          /* the streaming cluster id (-cid) */
    const char *args[32];  /* the extra args given to the server, NULL-terminated */
};

/* Starts stanzad with `--cluster nats://127.0.0.1:CPORT [--routes ROUTES] [--cluster_name CNAME]
 * -cid CID` followed by extra (NULL-terminated, or NULL; its strings must outlive the node) and
 * waits until it accepts clients. cport -1 = a free port. routes, cluster_name may be NULL. */
int hnode_start(struct hnode *n, int cport, const char *routes, const char *cluster_name,
                const char *cid, const char *const *extra);
/* Starts a halted node again with the same ports and flags. */
int hnode_restart(struct hnode *n);
/* SIGKILLs the node, keeping its temp dir for hnode_restart. Returns 0 when it died of it. */
int hnode_kill(struct hnode *n);
/* Stops it (SIGTERM) and removes its temp dir; for the end of a test. Returns the exit status. */
int hnode_stop(struct hnode *n);

/* Starts count (<= HCLUSTER_MAX) stanzad nodes, each with a free cluster port and routes to all
 * the others (full mesh, as configured by an operator), cluster name cluster_name (may be NULL),
 * -cid "test-cluster" for node 0 (so harness_stan.h's helpers reach its engine) and
 * "test-cluster-N" for node N. Returns 0, or -1 (the nodes started so far are stopped). */
int hcluster_start(struct hnode *nodes, int count, const char *cluster_name,
                   const char *const *extra);
/* Stops every node (SIGTERM). Returns 0 when each exited cleanly (status 0: no sanitizer
 * report, no crash), -1 otherwise (printed, logs kept). */
int hcluster_stop(struct hnode *nodes, int count);

/* Appends "nats://127.0.0.1:CPORT" to a comma-separated list in buf (for routes). */
void hcluster_routes_add(char *buf, size_t len, int cport);

/* ---- clients and waits ---- */

/* libnats to url, no reconnection, 5 s timeout; prints why on failure. */
natsStatus hcluster_connect(const char *url, natsConnection **nc);

/* Waits until interest made on `sub`'s server reached `pub`'s server: subscribes sub to a fresh
 * probe subject, then publishes to it on pub every few ms until one arrives. Routes deliver
 * protocol in order, so every subscription sub made before this call (on the same connection)
 * has crossed that route too. Returns false (after printing) at the deadline. */
bool hcluster_wait_propagated(natsConnection *pub, natsConnection *sub, int timeout_ms);

/* Publishes payload to subject on pub, flushing, every few ms until rx reaches n or the deadline
 * passes; for interest whose arrival has no probe (a node coming back). True if rx reached n. */
bool hcluster_publish_until(natsConnection *pub, const char *subject, const char *payload,
                            struct hcounter *rx, int64_t n, int timeout_ms);

/* A sync subscription (queue NULL = plain), flushed so its server has it; prints and exits(1)
 * on failure, as a CHECK would. */
natsSubscription *hcluster_sub_or_die(natsConnection *c, const char *subject, const char *queue);
/* Publishes n messages "m0".."m<n-1>" to subject, then (with fence) one "fence", and flushes.
 * Prints and exits(1) on failure. */
void hcluster_pub_or_die(natsConnection *c, const char *subject, int n, bool fence);

/* Reads a sync subscription until a message whose payload is fence arrives (publish it after
 * the messages being counted: one path keeps its order). Returns the messages before it, or -1
 * (printed) if the fence did not come before the deadline. */
int hcluster_count_until(natsSubscription *sub, const char *fence, int timeout_ms);

/* Opens a raw client to port and returns its INFO's JSON (decref it), or NULL (printed). */
json_t *hcluster_info(int port);
/* True if the INFO's connect_urls lists "127.0.0.1:PORT" (printed when not). */
bool hcluster_info_lists(json_t *info, int port);

#endif
