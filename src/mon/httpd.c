/* httpd: the HTTP transport of the monitoring endpoints. See httpd.h.
 *
 * Each connection owns an http-parser that is paused at the end of every request, so a read that
 * holds several pipelined requests is answered one request at a time, in order, and the bytes of
 * each request are counted exactly (the head limit). Requests never have a body here, so every
 * byte of a request is head. Responses collect in the connection's `out` buffer and leave once
 * per read: first uv_try_write, then uv_write for what the socket did not take.
 *
 * A connection that must not serve another request (an error, Connection: close, HTTP/1.0
 * without keep-alive) "finishes": its last response is written, then its sending side is shut
 * down and what the client still sends is read and discarded until it closes (a lingering
 * close). Closing at once with unread input would make the kernel send a reset, which can destroy
 * the response before the client reads it. One timer per connection bounds every state.
 *
 * Holding connections open is the cheapest attack on a health endpoint (slowloris), so a
 * request head has a fixed deadline (from the accept, or from the first byte of a later request
 * on a kept-alive connection; trickled bytes do not extend it), and a full connection table does
 * not refuse newcomers: it closes the connection that has gone longest without progress (an
 * accept, an answered request, a completed write). The table is kept in that order, so the
 * victim is its head, found in O(1). A newcomer therefore always gets in, and the next probe of
 * a kubelet is answered however many idle or stuck connections there are. */
#include "httpd.h"

#include <errno.h>
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "httpd_private.h"
#include "log.h"
#include "xalloc.h"

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);
static void flush(hconn_t *c);

/* ---- lifecycle -------------------------------------------------------------------------- */

static void maybe_done(httpd_t *h)
{
    if (!h->closing || h->listener_open || h->nalloc > 0 || !h->done) return;
    void (*done)(void *) = h->done;
    h->done = NULL;
    done(h->done_arg); /* may free h */
}

static void on_conn_closed(uv_handle_t *handle)
{
    hconn_t *c = handle->data;
    if (--c->open_handles > 0) return;
    httpd_t *h = c->h;
    buf_free(&c->url);
    buf_free(&c->out);
    buf_free(&c->wbuf);
    free(c);
    h->nalloc--;
    maybe_done(h);
}

static void conn_unlink(hconn_t *c)
{
    httpd_t *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        h->conns_tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_link_tail(hconn_t *c)
{
    httpd_t *h = c->h;
    c->prev = h->conns_tail;
    c->next = NULL;
    if (h->conns_tail)
        h->conns_tail->next = c;
    else
        h->conns = c;
    h->conns_tail = c;
}

/* The connection made progress: it becomes the last one to evict. */
static void touch(hconn_t *c)
{
    if (!c->linked) return;
    c->progress_ms = uv_now(c->h->loop);
    if (c == c->h->conns_tail) return;
    conn_unlink(c);
    conn_link_tail(c);
}

static void conn_close(hconn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    httpd_t *h = c->h;
    if (c->linked) {
        conn_unlink(c);
        c->linked = false;
        h->nconns--;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* For debug lines only: the client's address. */
static const char *peer(hconn_t *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(out, outlen, "%s:%d", ip, port);
    return out;
}

static void on_timer(uv_timer_t *t);

static void timer_restart(hconn_t *c, unsigned ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- responses -------------------------------------------------------------------------- */

static size_t pending_bytes(const hconn_t *c)
{
    return c->out.len + (c->wbuf.len - c->wbuf_off);
}

static void append_response(hconn_t *c, int status, const char *ctype, const buf_t *headers,
                            const char *body, size_t body_len, bool send_body, bool keep)
{
    buf_t *b = &c->out;
    buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: ", status,
               http_status_str((enum http_status)status), ctype);
    buf_append_u64(b, body_len);
    buf_append_str(b, "\r\nCache-Control: no-store\r\nConnection: ");
    buf_append_str(b, keep ? "keep-alive\r\n" : "close\r\n");
    if (headers && headers->len) buf_append(b, headers->data, headers->len);
    buf_append(b, "\r\n", 2);
    if (send_body) buf_append(b, body, body_len);
}

static void set_finishing(hconn_t *c)
{
    if (c->finishing) return;
    c->finishing = true;
    c->in_request = false;
    /* Bounds the time to deliver the last response and linger. */
    timer_restart(c, c->h->idle_ms);
}

/* An error answer generated by httpd itself: a short text body. */
static void respond_error(hconn_t *c, int status, bool keep)
{
    char body[64];
    int n =
        snprintf(body, sizeof body, "%d %s\n", status, http_status_str((enum http_status)status));
    buf_t allow = {0};
    static char allow_line[] = "Allow: GET, HEAD\r\n";
    if (status == 405) {
        allow.data = allow_line;
        allow.len = sizeof allow_line - 1;
    }
    append_response(c, status, "text/plain; charset=utf-8", &allow, body, (size_t)n, true, keep);
    if (!keep) set_finishing(c);
}

/* Stops parsing this connection: answers status and closes once that is written. */
static void fail(hconn_t *c, int status)
{
    respond_error(c, status, false);
    flush(c);
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* Keeps the unsent output of all connections under max_output: a thousand clients that each
 * ask for a big answer and never read it must not hold gigabytes. Past the bound, connections
 * holding unsent output are closed, longest without progress first (one that does not read
 * makes none); `keep`, whose answer was just queued, is spared. Called only when a connection
 * holds EAGER_FLUSH or more unsent, so the walk is rare and small answers never pay for it. */
static void bound_output(httpd_t *h, hconn_t *keep)
{
    size_t total = 0;
    for (hconn_t *x = h->conns; x; x = x->next)
        total += pending_bytes(x);
    hconn_t *next;
    for (hconn_t *x = h->conns; x && total > h->max_output; x = next) {
        next = x->next;
        size_t p = pending_bytes(x);
        if (x == keep || p == 0) continue;
        char who[96];
        LOG_D("httpd: %s: closed with %zu bytes unsent: %zu unsent in all",
              peer(x, who, sizeof who), p, total);
        total -= p;
        h->evicted++;
        conn_close(x);
    }
}

/* Runs the handler for the request the parser just completed and queues its response. */
static void serve(hconn_t *c)
{
    httpd_t *h = c->h;
    char who[96];
    bool keep = c->keep_alive && !h->closing;
    touch(c);
    if (pending_bytes(c) > MAX_PENDING) {
        /* It keeps sending requests but does not read the answers. */
        LOG_D("httpd: %s: closed: %zu bytes of responses unread", peer(c, who, sizeof who),
              pending_bytes(c));
        conn_close(c);
        return;
    }
    if (c->method != HTTP_GET && c->method != HTTP_HEAD) {
        respond_error(c, 405, keep);
        return;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->url.data ? c->url.data : "", c->url.len, 0, &u) != 0) {
        LOG_D("httpd: %s: bad request target", peer(c, who, sizeof who));
        respond_error(c, 400, false);
        return;
    }
    /* path\0query\0, so the handler gets C strings. */
    buf_t *t = &h->target;
    buf_reset(t);
    if (u.field_set & (1 << UF_PATH))
        buf_append(t, c->url.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    else
        buf_append(t, "/", 1);
    size_t path_len = t->len;
    buf_append(t, "", 1);
    size_t query_off = t->len;
    if (u.field_set & (1 << UF_QUERY))
        buf_append(t, c->url.data + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    size_t query_len = t->len - query_off;
    buf_append(t, "", 1);

    bool head = c->method == HTTP_HEAD;
    httpd_req_t req = {.method = head ? "HEAD" : "GET",
                       .path = t->data,
                       .path_len = path_len,
                       .query = t->data + query_off,
                       .query_len = query_len};
    httpd_resp_t *r = &h->resp;
    r->status = 200;
    r->content_type = DEFAULT_CONTENT_TYPE;
    buf_reset(&r->body);
    buf_reset(&r->headers);
    h->fn(h->arg, &req, r);
    if (c->closing) return; /* the handler closed the server */

    const char *ctype = r->content_type ? r->content_type : DEFAULT_CONTENT_TYPE;
    if (r->status < 100 || r->status > 999 || has_crlf(ctype)) {
        LOG_W("httpd: handler for %s returned an invalid status or content type", req.path);
        respond_error(c, 500, keep);
    } else {
        append_response(c, r->status, ctype, &r->headers, r->body.data, r->body.len, !head, keep);
        if (!keep) set_finishing(c);
    }
    /* Copied into out; a big answer's buffers are not kept for the next one. */
    buf_reset(&r->body);
    buf_reset(&r->headers);
    buf_reset(t);
    buf_shrink(&r->body, KEEP_BUF);
    buf_shrink(&r->headers, KEEP_BUF);
    buf_shrink(t, KEEP_BUF);
    /* Big answers to pipelined requests go to the socket now, so MAX_PENDING measures what the
     * client did not take, not how many requests one read held. */
    if (c->out.len >= EAGER_FLUSH) flush(c);
    if (!c->closing && pending_bytes(c) >= EAGER_FLUSH) bound_output(h, c);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    hconn_t *c = req->data;
    if (c->closing) return;
    if (status < 0) conn_close(c);
}

/* Everything is written and nothing more will be: close, gracefully when the client still
 * talks. */
static void finish(hconn_t *c)
{
    if (c->lingering) return;
    if (c->peer_eof) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    hconn_t *c = req->data;
    c->writing = false;
    buf_reset(&c->wbuf);
    buf_shrink(&c->wbuf, KEEP_BUF);
    c->wbuf_off = 0;
    if (c->closing) return; /* canceled by close */
    if (status < 0) {
        char who[96];
        LOG_D("httpd: %s: write error: %s", peer(c, who, sizeof who), uv_strerror(status));
        conn_close(c);
        return;
    }
    touch(c); /* the client took a whole write */
    flush(c);
}

static void flush(hconn_t *c)
{
    if (c->writing || c->closing) return;
    if (c->out.len == 0) {
        if (c->finishing) finish(c);
        return;
    }
    /* Usually the socket takes it all and no write request is needed. */
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        char who[96];
        LOG_D("httpd: %s: write error: %s", peer(c, who, sizeof who), uv_strerror(n));
        conn_close(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == c->out.len) {
        buf_reset(&c->out);
        buf_shrink(&c->out, KEEP_BUF);
        if (c->finishing) finish(c);
        return;
    }
    /* The rest goes to libuv; new output collects in a fresh `out` meanwhile. */
    buf_t tmp = c->wbuf;
    c->wbuf = c->out;
    c->out = tmp;
    buf_reset(&c->out);
    c->wbuf_off = done;
    uv_buf_t rest = uv_buf_init(c->wbuf.data + done, (unsigned)(c->wbuf.len - done));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_write) != 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
}

/* ---- parsing ---------------------------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    hconn_t *c = p->data;
    buf_reset(&c->url);
    buf_shrink(&c->url, KEEP_BUF);
    c->err_status = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    hconn_t *c = p->data;
    buf_append(&c->url, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    hconn_t *c = p->data;
    bool body =
        (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != UINT64_MAX);
    if (body) {
        /* Bodies are never read; the connection cannot continue past one. */
        c->err_status = p->method == HTTP_GET || p->method == HTTP_HEAD ? 413 : 405;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    hconn_t *c = p->data;
    c->method = p->method;
    c->keep_alive = http_should_keep_alive(p) != 0;
    c->msg_done = true;
    /* Stop here: the request is answered before the parser sees the next one. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

static void feed(hconn_t *c, const char *p, size_t len)
{
    char who[96];
    while (len > 0 && !c->finishing && !c->closing) {
        /* Never give the parser more than the head limit allows, so a request that does not
         * complete within HEAD_MAX bytes is caught exactly, whatever the read sizes. */
        size_t room = HEAD_MAX - c->req_bytes;
        size_t n = len < room ? len : room;
        c->msg_done = false;
        size_t used = http_parser_execute(&c->parser, &parser_settings, p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        p += used;
        len -= used;
        if (e == HPE_PAUSED && c->msg_done) {
            http_parser_pause(&c->parser, 0);
            c->req_bytes = 0;
            c->in_request = false;
            serve(c);
            continue;
        }
        if (e != HPE_OK) {
            int status = c->err_status ? c->err_status : 400;
            LOG_D("httpd: %s: bad request (%d): %s", peer(c, who, sizeof who), status,
                  c->err_status ? "it has a body" : http_errno_description(e));
            fail(c, status);
            return;
        }
        c->req_bytes += used;
        if (c->req_bytes >= HEAD_MAX) {
            LOG_D("httpd: %s: request head over %d bytes", peer(c, who, sizeof who), HEAD_MAX);
            fail(c, 431);
            return;
        }
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    hconn_t *c = handle->data;
    b->base = c->h->read_buf;
    b->len = sizeof c->h->read_buf;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    hconn_t *c = stream->data;
    if (nread == 0 || c->closing) return;
    if (nread < 0) {
        if (nread == UV_EOF && !c->lingering && (c->writing || c->out.len)) {
            /* A half-close after the last request: its answers still go out. */
            c->peer_eof = true;
            uv_read_stop(stream);
            set_finishing(c);
            return;
        }
        conn_close(c);
        return;
    }
    if (c->finishing) return; /* input after the last request is discarded */
    feed(c, b->base, (size_t)nread);
    if (c->closing) return;
    flush(c);
    if (c->closing || c->finishing) return;
    if (c->req_bytes > 0) {
        if (!c->in_request) {
            /* The deadline runs from the first byte of a request, not the last: slowloris. */
            c->in_request = true;
            timer_restart(c, c->h->request_ms);
        }
    } else {
        timer_restart(c, c->h->idle_ms);
    }
}

static void on_timer(uv_timer_t *t)
{
    hconn_t *c = t->data;
    char who[96];
    if (c->closing) return;
    if (c->finishing) {
        LOG_D("httpd: %s: closed: did not take its last response in time",
              peer(c, who, sizeof who));
        conn_close(c);
    } else if (c->in_request && c->req_bytes == 0) {
        LOG_D("httpd: %s: sent no request in %u ms, closed", peer(c, who, sizeof who),
              c->h->request_ms);
        conn_close(c);
    } else if (c->in_request) {
        LOG_D("httpd: %s: request not completed in %u ms", peer(c, who, sizeof who),
              c->h->request_ms);
        fail(c, 408);
    } else {
        LOG_D("httpd: %s: idle for %u ms, closed", peer(c, who, sizeof who), c->h->idle_ms);
        conn_close(c);
    }
}

/* ---- accepting -------------------------------------------------------------------------- */

/* Makes room for a new connection by closing the one that has gone longest without progress:
 * a silent or trickling slowloris, an idle keep-alive, a reader that stopped reading. Even one
 * accepted moments ago may go (a burst of accepts larger than the table): refusing the newcomer
 * instead would let a flood of connections lock every probe out, while a newcomer that sent its
 * request with the handshake was already answered by read_now. */
static void evict_oldest(httpd_t *h)
{
    hconn_t *v = h->conns;
    char who[96];
    LOG_D("httpd: %s: evicted after %llu ms without progress: %zu connections open",
          peer(v, who, sizeof who), (unsigned long long)(uv_now(h->loop) - v->progress_ms),
          h->nconns);
    h->evicted++;
    conn_close(v);
}

/* Reads what a new connection already sent, before the loop goes on to accept more: a request
 * that came with the handshake (a probe's usually does) is answered within its accept, so no
 * later burst can evict it unanswered. Later input comes through libuv as usual. */
static void read_now(hconn_t *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return;
    ssize_t n;
    do
        n = recv(fd, c->h->read_buf, sizeof c->h->read_buf, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    /* Nothing yet (EAGAIN), or an error libuv's own read will report. */
    if (n < 0) return;
    uv_buf_t b = uv_buf_init(c->h->read_buf, (unsigned)n);
    on_read((uv_stream_t *)&c->tcp, n > 0 ? n : UV_EOF, &b);
}

static void on_connection(uv_stream_t *server, int status)
{
    httpd_t *h = server->data;
    if (status < 0) {
        LOG_D("httpd: accept: %s", uv_strerror(status));
        return;
    }
    hconn_t *c = xcalloc(1, sizeof *c);
    c->h = h;
    h->nalloc++;
    uv_tcp_init(h->loop, &c->tcp);
    c->tcp.data = c;
    c->open_handles = 1;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    if (h->nconns >= h->max_conns) evict_oldest(h);
    uv_timer_init(h->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    c->linked = true;
    c->progress_ms = uv_now(h->loop);
    conn_link_tail(c);
    h->nconns++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    /* The first request's head is due request_ms after the accept, however its bytes come. */
    c->in_request = true;
    timer_restart(c, h->request_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    read_now(c);
}

/* ---- public ----------------------------------------------------------------------------- */

httpd_t *httpd_new(uv_loop_t *loop, httpd_handler_fn fn, void *arg)
{
    httpd_t *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    h->fn = fn;
    h->arg = arg;
    h->idle_ms = DEFAULT_IDLE_MS;
    h->request_ms = DEFAULT_REQUEST_MS;
    h->max_conns = MAX_CONNS;
    h->max_output = MAX_OUTPUT;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < h->max_conns)
        h->max_conns = rl.rlim_cur / 4 > MIN_CONNS ? (size_t)(rl.rlim_cur / 4) : MIN_CONNS;
    buf_init(&h->resp.body);
    buf_init(&h->resp.headers);
    buf_init(&h->target);
    return h;
}

/* The kernel hands over a connection only once its first bytes have arrived (or after the
 * request deadline): a client's request is then always there when it is accepted, and read_now
 * answers it before any later accept can evict it, however fast a flood of connections turns
 * the table over. Connections that never speak wait in the kernel, not in the table. */
static void defer_accept(httpd_t *h)
{
    uv_os_fd_t fd;
    int secs = (int)((h->request_ms + 999) / 1000);
    if (uv_fileno((uv_handle_t *)&h->listener, &fd) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs) != 0)
        LOG_D("httpd: TCP_DEFER_ACCEPT not available: %s", strerror(errno));
}

static void on_listener_closed(uv_handle_t *handle)
{
    httpd_t *h = handle->data;
    h->listener_open = false;
    maybe_done(h);
}

int httpd_listen(httpd_t *h, const char *host, int port, char *err, size_t errlen)
{
    if (h->listener_inited || h->closing) {
        snprintf(err, errlen, "http: already listening");
        return UV_EINVAL;
    }
    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "http: invalid port %d", port);
        return UV_EINVAL;
    }
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    if (rc) {
        snprintf(err, errlen, "http: invalid listen address \"%s\"", host);
        return rc;
    }
    uv_tcp_init(h->loop, &h->listener);
    h->listener.data = h;
    h->listener_inited = true;
    h->listener_open = true;
    rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0);
    if (!rc && !h->no_defer_accept) defer_accept(h);
    if (!rc) rc = uv_listen((uv_stream_t *)&h->listener, LISTEN_BACKLOG, on_connection);
    if (rc) {
        snprintf(err, errlen, "http: cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &blen);
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

void httpd_close(httpd_t *h, void (*done)(void *arg), void *arg)
{
    if (h->closing) return;
    h->closing = true;
    h->done = done;
    h->done_arg = arg;
    if (h->listener_open && !uv_is_closing((uv_handle_t *)&h->listener))
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    while (h->conns)
        conn_close(h->conns); /* unlinks it */
    maybe_done(h);
}

void httpd_free(httpd_t *h)
{
    if (!h) return;
    buf_free(&h->resp.body);
    buf_free(&h->resp.headers);
    buf_free(&h->target);
    free(h);
}

void httpd_resp_header(httpd_resp_t *resp, const char *name, const char *value)
{
    /* A CR or LF would let a value forge headers or a second response. */
    if (has_crlf(name) || has_crlf(value) || !*name || strchr(name, ':')) {
        LOG_W("httpd: header \"%s\" dropped: invalid name or value", name);
        return;
    }
    buf_append_str(&resp->headers, name);
    buf_append(&resp->headers, ": ", 2);
    buf_append_str(&resp->headers, value);
    buf_append(&resp->headers, "\r\n", 2);
}
