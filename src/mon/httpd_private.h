/* Private to httpd.c and httpd_opts.c (the module's settings and counters): the connection and
 * server structs, and the fixed limits. Nothing else includes it. */
#ifndef STANZA_HTTPD_PRIVATE_H
#define STANZA_HTTPD_PRIVATE_H
#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>

#include "httpd.h"
#include "list.h"
#include "stream.h"

#define HEAD_MAX (8 * 1024) /* request line + headers */
/* Open connections at once, and at most a quarter of the process's fd limit (the client port,
 * the store and the log need the rest). Each holds under 1 KB plus its head (HEAD_MAX) while
 * reading one, so a table of idle or stuck connections stays under ~10 MiB. */
#define MAX_CONNS 1024
#define MIN_CONNS 16
#define LISTEN_BACKLOG 1024           /* the kernel caps it at net.core.somaxconn */
#define MAX_PENDING (4 * 1024 * 1024) /* unsent output before a client counts as not reading */
#define MAX_OUTPUT (64 * 1024 * 1024) /* unsent output of all connections together */
#define EAGER_FLUSH (256 * 1024)      /* write before the read is done past this */
#define KEEP_BUF (16 * 1024)          /* larger buffers are released once drained */
#define DEFAULT_IDLE_MS 5000
#define DEFAULT_REQUEST_MS 3000
#define DEFAULT_CONTENT_TYPE "application/json"

typedef struct hconn {
    stream_t st; /* the socket, its timer, and the output (st.out) */
    httpd_t *h;
    list_node_t link;     /* h->conns, oldest progress first, while in the table */
    uint64_t progress_ms; /* clock_mono_ms of the last progress */
    http_parser parser;
    buf_t url;        /* the request target, gathered across reads */
    size_t req_bytes; /* bytes of the current, incomplete request */
    int err_status;   /* set by a parser callback before it fails the parse */
    unsigned method;  /* of the completed request */
    bool keep_alive;  /* of the completed request */
    bool msg_done;    /* on_message_complete ran during this execute */
    bool in_request;  /* head deadline running (from the accept, or a request's first byte) */
    bool finishing;   /* no more requests: send what is queued, then close */
    bool lingering;   /* sending side shut down; discarding input until EOF */
    bool peer_eof;
    bool head_done; /* the current request's head is complete: what follows is its body */
    /* The Authorization header of the current request: the field being read (its first bytes;
     * longer names are not it), whether it is that one, and its value. */
    char hfield[16];
    size_t hfield_len;
    bool in_value, auth_cur, auth_seen, auth_dup;
    buf_t auth;
    bool serving;            /* inside the handler */
    httpd_defer_t *deferred; /* the answer being waited for; reading is stopped meanwhile */
    buf_t held;              /* input after the deferred request, parsed once it is answered */
} hconn_t;

struct httpd_defer {
    hconn_t *c; /* NULL once the connection is gone */
    httpd_resp_t resp;
    bool head; /* a HEAD request: no body is sent */
    bool done; /* finished during the handler: serve sends it */
};

struct httpd {
    uv_loop_t *loop;
    httpd_handler_fn fn;
    void *arg;
    uv_tcp_t listener;
    bool listener_inited;
    bool listener_open; /* until its close callback */
    bool closing;
    int port;
    unsigned idle_ms, request_ms;
    list_node_t conns; /* the table, by last progress: the first is evicted first */
    size_t nconns;     /* in the table */
    size_t max_conns;
    bool no_defer_accept;
    size_t max_output;
    uint64_t evicted;
    size_t nalloc; /* allocated, including those being closed */
    void (*done)(void *arg);
    void *done_arg;
    httpd_resp_t resp; /* reused: requests are handled one at a time */
    buf_t target;      /* path\0query\0 for the handler */
    char read_buf[64 * 1024];
};

#endif
