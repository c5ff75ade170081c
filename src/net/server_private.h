/* Private to the server module (src/net: server.c, route.c, conn_out.c, conn.c, conn_log.c,
 * server_loop.c): its structs, and the calls between its files. Nothing else includes this
 * header; other modules use server.h.
 *
 * Calls run one way, from the top down: server_loop.c (listener, lifecycle, the per-iteration
 * flush) -> conn.c (a client: reading, the protocol operations, close) -> route.c (subscriptions
 * and routing) -> conn_out.c (a client's output) -> server.c (this state) and stream.c. The two
 * ways back up are the callbacks server_new sets in the server struct (close_conn, conn_gone). */
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
    CLOSE_NO_MEMORY,    /* its buffers could not grow */
    CLOSE_TLS,          /* TLS handshake failed or timed out, or a bad record */
    CLOSE_TLS_REQUIRED, /* plain text on a TLS-only port */
} close_reason_t;

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

    hmap_t sids; /* its subscriptions by sid (struct nsub.sid_node) */

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

/* conn_out.c: a client's output. Every frame goes through out_room and out_commit there (the
 * one place output is bounded: max_pending, slow consumer, eager flush, congestion). */
void conn_send(conn_t *c, const char *p, size_t n);
void conn_send_err(conn_t *c, const char *text);
/* Appends a delivery of msg for sub to its connection's output. */
void conn_deliver(conn_t *c, struct nsub *sub, const bus_msg_t *msg);
/* Writes pending output (sealing it first with TLS); from the per-iteration flush, eagerly, or
 * when a write finished. */
void conn_flush(conn_t *c);
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
/* Frees the graveyard. */
void route_bury(server_t *s);
void nsub_free(struct nsub *sub);

/* conn.c: a client connection. */
void conn_accept(server_t *s);
/* Resumes reading a connection paused by its read budget or a publisher stall. */
void conn_resume(conn_t *c);
void conn_close(conn_t *c, close_reason_t reason);

/* conn_log.c */
const char *conn_reason_text(close_reason_t r);
/* -V: one line per client operation, as nats-server traces them (credentials never shown). */
void conn_trace_op(conn_t *c, const parser_op_t *op);

#endif
