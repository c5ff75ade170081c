/* Private to server.c and conn.c: the structs of the NATS core server. Nothing else includes
 * this header; other modules use server.h. */
#ifndef STANZA_SERVER_PRIVATE_H
#define STANZA_SERVER_PRIVATE_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "parser.h"
#include "server.h"
#include "sublist.h"
#include "tls.h"

typedef struct conn conn_t;

/* A subscription. Owned by its connection (or, for in-process subs, by the server). Removed
 * subscriptions are marked closed and parked on the server's graveyard until the end of the
 * loop iteration, because a routing result being walked may still point at them. */
struct nsub {
    conn_t *conn;     /* NULL for an in-process subscription */
    server_msg_fn fn; /* in-process only */
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
    struct nsub *map_next; /* chain in the connection's sid map */
    struct nsub *grave_next;
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

/* A client connection. Freed only from the libuv close callback (two-phase close). */
struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* server PINGs, and the auth timeout before CONNECT */
    server_t *srv;
    uint64_t cid;
    conn_t *prev, *next; /* server's list of open connections */
    conn_t *dirty_next;  /* server's list of connections with output to flush */
    bool dirty;
    bool paused; /* reading stopped (read budget, or a publisher stall) */
    conn_t *paused_next;
    uint64_t stall_until;  /* paused as a publisher to a congested client, until then (ms) */
    bool congested;        /* unsent output above the high-water mark */
    size_t read_this_iter; /* bytes read since the last flush */
    parser_t parser;

    /* Outbound: `out` collects frames; at flush it is written directly when the socket takes
     * it, and the rest is handed to uv_write as `wbuf` (from wbuf_off). */
    buf_t out;
    buf_t wbuf;
    size_t wbuf_off;
    /* With TLS (NULL without): `out` holds plaintext, sealed at flush into `tout`, which is
     * what is written (and where INFO and handshake records go as they are). */
    tls_conn_t *tls;
    buf_t tout;
    bool tls_seen; /* some input reached the TLS engine */
    uv_write_t wreq;
    bool writing;
    uint64_t write_started_ms; /* when the in-flight write began */

    /* Subscriptions by sid (chained hash). */
    struct nsub **subs;
    size_t nbuckets, nsubs;

    /* From CONNECT */
    bool connected; /* CONNECT received and accepted */
    bool verbose, pedantic, echo, headers, no_responders;
    int protocol;
    char *name, *lang, *version;

    int pings_out;
    bool closing;
    bool close_after_flush;
    int open_handles;
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

    conn_t *conns;          /* all open connections (doubly linked) */
    conn_t *dirty;          /* connections with output to flush (singly linked) */
    conn_t *paused;         /* connections whose reading is paused (read budget or stall) */
    size_t ncongested;      /* connections with unsent output above the high-water mark */
    bool congestion_hit;    /* a delivery in the current read found a congested receiver */
    uv_timer_t stall_timer; /* wakes the loop to end publisher stalls */
    struct nsub *graveyard;
    struct nsub *isubs; /* in-process subscriptions (linked by map_next) */
    uint64_t next_cid;
    uint32_t rng;

    void (*flush_hook)(void *arg);
    void *flush_hook_arg;

    bool shutting_down;
    void (*shutdown_done)(void *arg);
    void *shutdown_arg;
    int closing_handles; /* server-owned handles still closing during shutdown */

    server_stats_t stats;

    /* One read buffer for every connection: libuv pairs each alloc with its read callback, and
     * the parser keeps everything it needs from a read before returning. */
    char read_buf[65536];
};

/* conn.c */
void conn_accept(server_t *s);
/* Appends a delivery of msg for sub to its connection's outbound buffer. */
void conn_deliver(conn_t *c, struct nsub *sub, const server_msg_t *msg);
/* Writes pending output; called from the server's flush hook for dirty connections. */
void conn_flush(conn_t *c);
/* Resumes reading a connection paused by its per-iteration read budget. */
void conn_resume(conn_t *c);
void conn_close(conn_t *c, close_reason_t reason);
/* Removes sub from c's sid map and from routing. */
void conn_unsub(conn_t *c, struct nsub *sub);
/* True while a write has made no progress for longer than deadline_ms. */
bool conn_write_stalled(conn_t *c, uint64_t now_ms, uint64_t deadline_ms);

/* conn_sid.c: the sid map (c->subs). insert: sid not yet present. */
struct nsub *conn_sid_find(conn_t *c, const char *sid, size_t len);
void conn_sid_insert(conn_t *c, struct nsub *sub);
void conn_sid_remove(conn_t *c, struct nsub *sub);

/* conn_log.c */
const char *conn_reason_text(close_reason_t r);
/* -V: one line per client operation, as nats-server traces them (credentials never shown). */
void conn_trace_op(conn_t *c, const parser_op_t *op);

/* server.c, for conn.c */
/* Routes msg from conn `from` (NULL: the server). Returns the number of deliveries, or -1 for
 * an invalid publish subject. */
int server_route(server_t *s, conn_t *from, const server_msg_t *msg);
void server_mark_dirty(server_t *s, conn_t *c);
void server_link_conn(server_t *s, conn_t *c);
void server_unlink_conn(server_t *s, conn_t *c); /* from the open list and the dirty list */
/* Takes sub out of routing and parks it for freeing at the end of the iteration. */
void server_retire_sub(server_t *s, struct nsub *sub);
int server_add_sub(server_t *s, struct nsub *sub);
void server_conn_closed(server_t *s); /* a connection finished closing */
void nsub_free(struct nsub *sub);

#endif
