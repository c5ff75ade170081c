/* httpd: a small HTTP/1.1 server on the loop, the transport of the monitoring endpoints.
 *
 * Requests are parsed by http-parser; each complete request is handed to one handler that fills
 * in the response, at once or later (httpd_defer). GET, HEAD, POST and DELETE; a request body
 * (Content-Length, at most HTTPD_BODY_MAX) is read and discarded, chunked bodies are refused;
 * keep-alive and pipelining (answered in order), bounded everything: request head and body size,
 * connections, time to send a request, unsent output. Nothing blocks the loop; a misbehaving client
 * is closed, never waited for, and logged at debug level only. A full connection table makes room
 * for a newcomer by closing the connection that has gone longest without progress, so idle or stuck
 * connections (slowloris) can never lock a health probe out. */
#ifndef STANZA_HTTPD_H
#define STANZA_HTTPD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

typedef struct httpd httpd_t;

/* A request as parsed. Every pointer is valid only during the handler call. path and query are
 * NUL-terminated, raw (not percent-decoded), and never NULL: path is "/" when the request target
 * has none, query is "" when there is no query string. The fragment, if any, is dropped. */
typedef struct httpd_req {
    const char *method; /* "GET", "HEAD", "POST" or "DELETE" */
    const char *path;
    size_t path_len;
    const char *query; /* without the '?' */
    size_t query_len;
    /* The Authorization header's value as sent (leading spaces dropped), NULL when there is
     * none. Part of the head, so bounded by its limit; a request with two is refused (400). */
    const char *authorization;
    void *conn; /* httpd's own: what httpd_defer needs */
} httpd_req_t;

/* The largest request body taken (Content-Length); it is read and discarded. A larger one is
 * answered 413, a chunked one 411, and the connection closed. */
#define HTTPD_BODY_MAX (64 * 1024)

/* The response the handler fills in. status starts at 200, content_type at "application/json",
 * body and headers empty. For HEAD the body is measured for Content-Length but not sent.
 * Content-Length, Content-Type, Connection and Cache-Control are always written by httpd; extra
 * header lines go in headers (use httpd_resp_header). content_type must stay valid until the
 * handler returns; httpd copies it. */
typedef struct httpd_resp {
    int status;
    const char *content_type;
    buf_t body;
    buf_t headers; /* "Name: value\r\n" lines */
} httpd_resp_t;

typedef void (*httpd_handler_fn)(void *arg, const httpd_req_t *req, httpd_resp_t *resp);

/* A response given after the handler returned, e.g. once a store commit is done. The requests
 * pipelined behind it on its connection wait (their bytes are held, reading stops) and no timer
 * runs on the connection meanwhile: the answer is the owner's promise (a client that went away
 * meanwhile is found out when the answer is written). If the connection goes
 * first (the client closed it, it was evicted, or httpd_close), the handle lives on, detached,
 * until finished: finishing then only frees it. */
typedef struct httpd_defer httpd_defer_t;
/* During the handler only: the response of req will be given through the handle (the handler's
 * resp is then ignored). Calling it again for the same request returns the same handle. */
httpd_defer_t *httpd_defer(const httpd_req_t *req);
/* The response to fill in, as a handler's (status 200, application/json, empty); content_type
 * must stay valid until httpd_defer_finish. */
httpd_resp_t *httpd_defer_resp(httpd_defer_t *d);
/* Sends the response (if the connection is still there), goes on with the connection's next
 * requests, and frees d. Exactly once per handle; may be called from inside the handler too. */
void httpd_defer_finish(httpd_defer_t *d);

/* The handler runs on the loop thread, once per request. */
httpd_t *httpd_new(uv_loop_t *loop, httpd_handler_fn fn, void *arg);
/* Binds host (an IPv4 or IPv6 literal) and port (0 picks a free one) and starts accepting.
 * Returns 0, or a negative STZ_E* code (libuv's -errno) with a message in err. Call at most
 * once. */
int httpd_listen(httpd_t *h, const char *host, int port, char *err, size_t errlen);
/* The port actually bound, or 0 before a successful httpd_listen. */
int httpd_port(const httpd_t *h);
/* A request head must be complete within request_ms of the accept (the first request) or of its
 * first byte (a later one on a kept-alive connection), however slowly its bytes come: else 408
 * and close (or just close, when nothing was sent). A kept-alive connection idle for idle_ms
 * between requests is closed. Defaults 5000 (idle) and 3000 (request); applies to timers started
 * after. */
void httpd_set_timeouts(httpd_t *h, unsigned idle_ms, unsigned request_ms);
/* Connections open now (including those finishing their last response). */
size_t httpd_conns(const httpd_t *h);
/* The connection table's size: 1024, or a quarter of the fd limit (RLIMIT_NOFILE) when that is
 * smaller (never under 16). When it is full, a new connection evicts the one that has gone
 * longest without progress (accept, answered request, completed write): a newcomer is never
 * refused. */
void httpd_set_max_conns(httpd_t *h, size_t n);
/* Whether the kernel hands over a connection only once its first bytes arrived (Linux
 * TCP_DEFER_ACCEPT, for up to the request deadline; default on): a probe's request is then
 * always there when it is accepted and is answered before any later accept can evict it, and
 * connections that never speak wait in the kernel instead of the table. Set before listening;
 * off lets tests drive the table with silent connections. */
void httpd_set_defer_accept(httpd_t *h, bool on);
size_t httpd_max_conns(const httpd_t *h);
/* Connections evicted so far to make room (in the table, or under the output bound). */
uint64_t httpd_evicted(const httpd_t *h);
/* Bounds the unsent output of all connections together (default 64 MiB): past it, connections
 * holding unsent output are closed, longest without progress first, sparing the one whose
 * answer was just queued. Each connection is also closed on its own past 4 MiB unsent when it
 * sends another request. */
void httpd_set_max_output(httpd_t *h, size_t bytes);
/* Stops listening and closes every connection at once; done(arg) runs from the loop when all
 * handles are closed. Call once; done may be NULL. */
void httpd_close(httpd_t *h, void (*done)(void *arg), void *arg);
/* Frees h: right after httpd_new, or once httpd_close's done ran. */
void httpd_free(httpd_t *h);

/* Appends the header line "name: value". */
void httpd_resp_header(httpd_resp_t *resp, const char *name, const char *value);
/* Finds key in the query string (key=value pairs separated by '&'; keys and values decoded:
 * %XX and '+' for space) and copies its decoded value, NUL-terminated, into out. A key without
 * '=' has the value "". Returns false when the key is absent, or when the value does not fit in
 * outlen or decodes to an embedded NUL (it cannot be given as a C string). The first occurrence
 * wins. */
bool httpd_query_get(const httpd_req_t *req, const char *key, char *out, size_t outlen);
/* Whether key occurs in the query string at all, whatever its value: tells an absent parameter
 * from one httpd_query_get cannot return (too long, or an embedded NUL), which a caller must
 * refuse rather than take as absent. */
bool httpd_query_has(const httpd_req_t *req, const char *key);

#endif
