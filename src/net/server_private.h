/* Private to the server module (src/net: server.c, server_info.c, conn_out.c,
 * cluster_interest.c, route.c, cluster_route.c, conn.c, conn_log.c, cluster.c, server_loop.c):
 * its structs, and the calls between its files. Nothing else includes this header; other modules
 * use server.h.
 *
 * Calls run one way, from the top down: server_loop.c (listener, lifecycle, the per-iteration
 * flush) -> cluster.c (the cluster listener, solicited routes, reconnection) -> conn.c (a
 * connection, client or route: reading, the client protocol operations, close) ->
 * cluster_route.c (a route's protocol) -> route.c (subscriptions and routing) ->
 * cluster_interest.c (interest advertised to the routes, a message's routes) -> conn_out.c (a
 * connection's output) -> server_info.c (the INFO lines), server.c (this state) and stream.c.
 * The ways back up are the callbacks server_new sets in the server struct (close_conn,
 * conn_gone) and cluster_new in the cluster struct (route_closed, route_learned). */
#ifndef STANZA_SERVER_PRIVATE_H
#define STANZA_SERVER_PRIVATE_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "hmap.h"
#include "list.h"
#include "parser.h"
#include "server.h"
#include "stream.h"
#include "sublist.h"
#include "tls.h"

typedef struct conn conn_t;

/* A subscription. Owned by its connection (or, for in-process subs, by the server). Removed
 * subscriptions are marked closed and parked on the server's graveyard until the end of the
 * loop iteration, because a routing result being walked may still point at them. */
struct nsub {
    conn_t *conn;  /* NULL for an in-process subscription */
    bus_msg_fn fn; /* in-process only */
    void *fn_arg;
    char *subject; /* owned, NUL-terminated */
    size_t subject_len;
    char *queue; /* owned; NULL when not in a queue group */
    size_t queue_len;
    char *sid; /* owned; client's subscription id ("" for in-process) */
    size_t sid_len;
    uint64_t max; /* auto-unsubscribe after this many deliveries; 0 = never */
    uint64_t delivered;
    /* A route's (remote) queue subscription: the group's members behind that route (RS+). A
     * remote subscription's conn is its route connection and its sid "subject[ queue]". */
    uint32_t weight;
    bool closed;
    hmap_node_t sid_node; /* in its connection's sid map (c->sids) */
    list_node_t link;     /* on the server's in-process list (s->isubs), then its graveyard */
};

/* Why a connection closed; logged, and later reported by monitoring. */
typedef enum {
    CLOSE_CLIENT,   /* EOF or reset from the client */
    CLOSE_PROTOCOL, /* parse error */
    CLOSE_MAX_PAYLOAD,
    CLOSE_CONTROL_LINE,
    CLOSE_SLOW_CONSUMER,
    CLOSE_STALE, /* unanswered PINGs */
    CLOSE_AUTH,
    CLOSE_MAX_CONNS,
    CLOSE_WRITE_ERROR,
    CLOSE_SHUTDOWN,
    CLOSE_NO_MEMORY,     /* its buffers could not grow */
    CLOSE_TLS,           /* TLS handshake failed or timed out, or a bad record */
    CLOSE_TLS_REQUIRED,  /* plain text on a TLS-only port */
    CLOSE_ROUTE_CONNECT, /* a solicited route could not connect */
    CLOSE_ROUTE_REFUSED, /* a route refused: to ourselves, a duplicate, another cluster */
} close_reason_t;

typedef struct route route_t;
typedef struct cluster cluster_t;

/* A client connection. Freed only from the stream's close callback (two-phase close). */
struct conn {
    stream_t st; /* the socket, its timer, and the output written to it (st.out) */
    server_t *srv;
    uint64_t cid;
    list_node_t link;        /* s->conns: open connections */
    list_node_t dirty_link;  /* s->dirty: output to flush before the loop polls */
    list_node_t paused_link; /* s->paused: reading stopped (read budget, or a publisher stall) */
    uint64_t stall_until;    /* paused as a publisher to a congested client, until then (ms) */
    bool congested;          /* unsent output above the high-water mark */
    size_t read_this_iter;   /* bytes read since the last flush */
    parser_t parser;

    /* Frames are appended to *out: st.out itself without TLS. With TLS (tls not NULL), `plain`,
     * which the flush seals into records in st.out (where INFO and handshake records go as they
     * are). */
    buf_t *out;
    buf_t plain;
    tls_conn_t *tls;
    bool tls_seen; /* some input reached the TLS engine */

    hmap_t sids;    /* its subscriptions by sid (struct nsub.sid_node); a route's remote interest */
    route_t *route; /* a route connection's cluster state (cluster_route.c); NULL for a client */

    /* From CONNECT */
    bool connected; /* CONNECT received and accepted */
    bool verbose, pedantic, echo, headers, no_responders;
    int protocol;
    char *name, *lang, *version;

    int pings_out;
    bool closing;
    bool close_after_flush;
    close_reason_t reason;
    char ip[64];
    int rport;
    uint64_t in_msgs, in_bytes, out_msgs, out_bytes;
};

struct server {
    uv_loop_t *loop;
    const config_t *cfg;
    uv_tcp_t listener;
    tls_ctx_t *tls; /* NULL unless TLS is on */
    bool listening;
    int port;
    uv_prepare_t flush_prepare; /* flushes outbound buffers before the loop polls */
    uv_timer_t tick;            /* once a second: write deadlines */
    sublist_t *sublist;
    char id[24];

    list_node_t conns;      /* all open connections (conn_t.link) */
    list_node_t dirty;      /* connections with output to flush (conn_t.dirty_link) */
    list_node_t paused;     /* connections whose reading is paused (conn_t.paused_link) */
    size_t ncongested;      /* connections with unsent output above the high-water mark */
    bool congestion_hit;    /* a delivery in the current read found a congested receiver */
    uv_timer_t stall_timer; /* wakes the loop to end publisher stalls */
    list_node_t graveyard;  /* retired subscriptions, freed at the end of the iteration */
    list_node_t isubs;      /* in-process subscriptions */
    uint64_t next_cid;
    uint32_t rng;

    /* The ways back up, set by server_new: conn_out.c closes a client (slow consumer, write
     * error) through close_conn (conn.c's conn_close); conn.c reports a connection whose memory
     * is gone through conn_gone (server_loop.c: a shutdown waits for the last one). */
    void (*close_conn)(conn_t *c, close_reason_t reason);
    void (*conn_gone)(server_t *s);

    void (*flush_hook)(void *arg);
    void *flush_hook_arg;
    bus_sub_gone_fn sub_gone_hook; /* conn.c: each subscription of a closed connection */
    void *sub_gone_arg;

    bool shutting_down;
    void (*shutdown_done)(void *arg);
    void *shutdown_arg;
    int closing_handles; /* server-owned handles still closing during shutdown */

    bus_stats_t stats;
    cluster_t *cluster; /* routes (cluster*.c); NULL without --cluster */

    /* One read buffer for every connection: libuv pairs each alloc with its read callback, and
     * the parser keeps everything it needs from a read before returning. */
    char read_buf[65536];
};

/* server.c: this state. */
static inline void server_mark_dirty(server_t *s, conn_t *c)
{
    if (list_linked(&c->dirty_link) || c->closing) return;
    list_push_back(&s->dirty, &c->dirty_link);
}

static inline uint32_t server_rng_next(server_t *s)
{
    /* xorshift32: queue member choice needs speed and spread, not secrecy. */
    uint32_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->rng = x;
    return x;
}

/* ---- the cluster: routes to other servers (nats-server's route protocol) ---------------- */

struct solicit; /* a route this server connects to, configured or learned (cluster.c) */
struct rtarget; /* route_msg's scratch: a route a message goes to (cluster_interest.c) */

struct cluster {
    uv_tcp_t listener; /* where routes are accepted */
    bool listening;
    char host[256];  /* the cluster listener's host, as configured */
    int port;        /* the cluster port actually bound */
    char **own_urls; /* our client URLs, "host:port" (connect_urls) */
    size_t nown;
    char name[64];      /* the cluster name: configured, or adopted from a peer */
    bool name_dynamic;  /* not configured: made up, and given up for a peer's */
    list_node_t routes; /* registered routes (route_t.link) */
    size_t nroutes;
    list_node_t solicits; /* struct solicit (cluster.c) */
    hmap_t local;         /* local interest as advertised to the routes (cluster_interest.c) */
    struct rtarget *targets;
    size_t ntargets, cap_targets;
    /* The ways back up to cluster.c (set by cluster_new): a route connection closed (its
     * solicitor reconnects, or not); a route's INFO named a server we have no route to. */
    void (*route_closed)(server_t *s, route_t *r);
    void (*route_learned)(server_t *s, const char *id, const char *url);
};

/* A route connection's cluster state (conn->route). */
struct route {
    conn_t *conn;
    struct solicit *sol; /* the solicitor whose connection this is; NULL when accepted */
    bool connect_seen;   /* the peer's CONNECT arrived (an accepted route needs it first) */
    bool registered;     /* its INFO accepted: on cluster->routes, interest exchanged */
    bool headers;        /* HMSG may go to it */
    bool refused_self;   /* it led to ourselves: the solicitor stops */
    char remote_id[64];
    char remote_name[64];
    char **urls; /* its client connect_urls */
    size_t nurls;
    char *info;       /* its INFO (JSON text), forwarded to the other routes (gossip) */
    list_node_t link; /* cluster->routes */
};

/* The message a PUB/HPUB or RMSG/HMSG carries (slices into the parser's op). */
static inline bus_msg_t msg_from_op(const parser_op_t *op)
{
    return (bus_msg_t){
        .subject = op->subject.p,
        .subject_len = op->subject.len,
        .reply = op->reply.len ? op->reply.p : NULL,
        .reply_len = op->reply.len,
        .hdr = op->hdr.len ? op->hdr.p : NULL,
        .hdr_len = op->hdr.len,
        .data = op->payload.p,
        .data_len = op->payload.len,
    };
}

/* server.c: the port a listener actually bound (cfg may say 0). */
int server_bound_port(uv_tcp_t *listener);

/* conn_out.c: a client's output. Every frame goes through out_room and out_commit there (the
 * one place output is bounded: max_pending, slow consumer, eager flush, congestion). */
void conn_send(conn_t *c, const char *p, size_t n);
void conn_send_err(conn_t *c, const char *text);
/* Appends a delivery of msg for sub to its connection's output. */
void conn_deliver(conn_t *c, struct nsub *sub, const bus_msg_t *msg);
/* Writes pending output (sealing it first with TLS); from the per-iteration flush, eagerly, or
 * when a write finished. */
void conn_flush(conn_t *c);
/* Appends RMSG (HMSG with headers, when the route takes them) of msg to a route, with the
 * queue groups it is for ("q1 q2", qlen 0 for none). */
void conn_send_rmsg(conn_t *c, const bus_msg_t *msg, const char *queues, size_t qlen);
/* Best effort before a close: what is queued leaves now if the socket has room. */
void conn_try_write(conn_t *c);
/* The stream's on_written. */
void conn_on_written(stream_t *st, int status);
size_t conn_pending(const conn_t *c);

/* route.c: subscriptions and routing. */
/* Routes msg from conn `from` (NULL: the server). Returns the number of deliveries, or
 * STZ_EINVAL for an invalid publish subject. */
int route_msg(server_t *s, conn_t *from, const bus_msg_t *msg);
/* Adds sub to routing; 0 or a negative code (invalid subject or queue). */
int route_add(server_t *s, struct nsub *sub);
/* Takes sub out of routing (and out of its connection's sid map) and parks it on the graveyard
 * until the end of the iteration. Idempotent. */
void route_retire(server_t *s, struct nsub *sub);
/* A connection's subscription by sid (a route's: by "subject[ queue]"); NULL if none. */
struct nsub *route_sid_find(conn_t *c, const char *sid, size_t len);
/* Frees the graveyard. */
void route_bury(server_t *s);
void nsub_free(struct nsub *sub);
/* Routes a message that came from a route: to local subscriptions only (full mesh: never on
 * to another route), and to queue groups only those named in queues (space-separated), one
 * local member each. Returns the number of deliveries. */
int route_msg_routed(server_t *s, const bus_msg_t *msg, slice_t queues);

/* cluster_interest.c: local interest as the routes see it, and where a message goes. */
/* A local subscription (a client's or in-process) was added or retired: RS+ (a queue group's
 * new weight) or RS- to every route. */
void interest_local_add(server_t *s, const struct nsub *sub);
void interest_local_remove(server_t *s, const struct nsub *sub);
/* The whole local interest to a route that just registered. */
void interest_send_all(server_t *s, conn_t *rc);
/* route_msg's route targets, a stack (a delivery's callback may publish again, nested): mark
 * the top, add routes above it (with the queue group a route is picked for, or NULL for its
 * plain interest), then send one RMSG per route above the mark and pop them. rtargets_send
 * returns the routes sent to. */
size_t rtargets_mark(server_t *s);
void rtargets_add(server_t *s, size_t mark, conn_t *rc, const char *queue, size_t qlen);
int rtargets_send(server_t *s, size_t mark, const bus_msg_t *msg);
void interest_free(cluster_t *cl);

/* server_info.c: the INFO lines, built from the server's state. */
/* A client's INFO (c NULL: the async update, without client_id); malloc'ed JSON text. */
char *info_client_json(server_t *s, const conn_t *c);
/* The INFO a route gets; malloc'ed JSON text. */
char *info_route_json(server_t *s);

/* cluster_route.c: a route connection's protocol: handshake, registration, gossip, interest,
 * messages. Below conn.c (which hands it a route's operations and its close). */
void cluster_route_new(conn_t *c, struct solicit *sol);
/* Sends what opens the route: CONNECT (when solicited), then INFO. */
void cluster_route_start(conn_t *c);
int cluster_route_op(conn_t *c, const parser_op_t *op);
/* The connection is closing: out of the routes (its interest went with its sids), the clients
 * told of the URLs it took along, cluster.c told (reconnect). */
void cluster_route_unlink(conn_t *c);
void cluster_route_free(route_t *r);

/* conn.c: a connection (a client's, or a route's). */
void conn_accept(server_t *s);
/* A route connection accepted on the cluster listener. */
void conn_accept_route(server_t *s, uv_stream_t *listener);
/* A route connection to addr for solicitor sol; its failure comes back as a close. */
int conn_connect_route(server_t *s, const struct sockaddr *addr, struct solicit *sol);
/* Resumes reading a connection paused by its read budget or a publisher stall. */
void conn_resume(conn_t *c);
void conn_close(conn_t *c, close_reason_t reason);

/* cluster.c: the cluster listener, solicited routes and their reconnection (above conn.c). */
cluster_t *cluster_new(server_t *s);
/* The route listener (before the client port: once that accepts, the server is whole). */
int cluster_listen(server_t *s, char *err, size_t errlen);
/* Once the client port is bound (the URLs clients learn name it): the configured routes. */
void cluster_connect(server_t *s);
/* Stops accepting and reconnecting; counts its handles in s->closing_handles. */
void cluster_shutdown(server_t *s);
void cluster_free(server_t *s);

/* conn_log.c */
const char *conn_reason_text(close_reason_t r);
/* -V: one line per client operation, as nats-server traces them (credentials never shown). */
void conn_trace_op(conn_t *c, const parser_op_t *op);

#endif
