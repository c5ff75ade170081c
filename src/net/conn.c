/* conn: one client connection: socket I/O, the protocol operations, and outbound buffering.
 *
 * Reads go through the parser straight from the server's shared read buffer. Each operation is
 * handled at once; deliveries append MSG frames to the subscribers' `out` buffers, which the
 * server flushes before the loop polls again. A client whose unsent output passes max_pending is
 * a slow consumer and is closed; nobody else waits for it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_private.h"
#include "subject.h"
#include "xalloc.h"

#define KEEP_OUT (64 * 1024)     /* larger outbound buffers are released once drained */
#define EAGER_FLUSH (256 * 1024) /* flush before the end of the iteration past this */
/* Bytes one connection may feed per loop iteration. libuv would read up to 32 x 64 KiB from a
 * busy publisher before anything is flushed; pausing it sooner lets the poll phase drain the
 * subscribers' sockets in between, so a fast subscriber never looks slow. */
#define READ_BUDGET (256 * 1024)
/* A publisher whose messages land on a client holding more than the high-water mark of unsent
 * output is paused for up to STALL_MS, or until that client drains: the soft back-pressure
 * nats-server applies too. A client that never drains still reaches max_pending and is closed;
 * publishers are only paced, never blocked on it. */
#define STALL_MS 5
#define HIGH_WATER_MIN (64 * 1024)
#define HIGH_WATER_MAX (8 * 1024 * 1024)
/* A client has this long for the TLS handshake (nats-server's default tls timeout) and, with
 * authentication on, for its CONNECT. */
#define TLS_TIMEOUT_MS 2000
#define AUTH_TIMEOUT_MS 2000

static size_t high_water(const conn_t *c)
{
    size_t hw = (size_t)c->srv->cfg->max_pending / 4;
    if (hw < HIGH_WATER_MIN) hw = HIGH_WATER_MIN;
    if (hw > HIGH_WATER_MAX) hw = HIGH_WATER_MAX;
    return hw;
}

static size_t pending_bytes(const conn_t *c)
{
    return c->out.len + c->tout.len + (c->wbuf.len - c->wbuf_off);
}

/* Tracks whether c is above the high-water mark (with hysteresis: it clears at half). */
static void update_congestion(conn_t *c)
{
    size_t p = pending_bytes(c), hw = high_water(c);
    if (!c->congested && p > hw) {
        c->congested = true;
        c->srv->ncongested++;
    } else if (c->congested && p <= hw / 2) {
        c->congested = false;
        c->srv->ncongested--;
    }
}

static void conn_send(conn_t *c, const char *p, size_t n);
void conn_flush(conn_t *c);
static void on_timer(uv_timer_t *t);
static void start_timer(conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

void conn_unsub(conn_t *c, struct nsub *sub)
{
    conn_sid_remove(c, sub);
    server_retire_sub(c->srv, sub);
}

/* ---- output ----------------------------------------------------------------------------- */

/* With TLS: encrypts the plaintext in out into tout, once the handshake is done. Returns
 * false, out left as it was, when the session fails or tout cannot grow. */
static bool tls_seal(conn_t *c)
{
    if (!c->out.len || !tls_conn_ready(c->tls)) return true;
    int rc = tls_conn_write(c->tls, c->out.data, c->out.len, &c->tout);
    if (rc != TLS_OK) {
        LOG_W("cid:%llu - TLS write failed: %s", (unsigned long long)c->cid,
              rc == STZ_ENOMEM ? "out of memory" : tls_conn_error(c->tls));
        return false;
    }
    buf_reset(&c->out);
    buf_shrink(&c->out, KEEP_OUT);
    return true;
}

/* Best effort before a close: what is queued leaves now if the socket has room. */
static void try_write_now(conn_t *c)
{
    if (c->writing || (c->tls && !tls_seal(c))) return;
    buf_t *src = c->tls ? &c->tout : &c->out;
    if (!src->len) return;
    uv_buf_t b = uv_buf_init(src->data, (unsigned)src->len);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

static void slow_consumer(conn_t *c)
{
    server_t *s = c->srv;
    LOG_W("cid:%llu - Slow Consumer Detected: %zu bytes pending (max_pending %lld)",
          (unsigned long long)c->cid, pending_bytes(c), (long long)s->cfg->max_pending);
    s->stats.slow_consumers++;
    /* Drop what it could not take; the error goes out only if the socket has room (and, with
     * TLS, only where no record was cut short, or the client could not read it). */
    buf_reset(&c->out);
    if (!c->writing && c->tout.len == 0) {
        static const char e[] = "-ERR 'Slow Consumer'\r\n";
        buf_append(&c->out, e, sizeof e - 1);
        try_write_now(c);
    }
    conn_close(c, CLOSE_SLOW_CONSUMER);
}

/* Every frame to a client goes through out_room, then out_commit: the one place where output
 * is bounded. out_room makes room for n more bytes without aborting the process: a client whose
 * buffer cannot grow is closed, nobody else is affected. False when c is (now) closing. */
static bool out_room(conn_t *c, size_t n)
{
    if (c->closing) return false;
    if (buf_try_reserve(&c->out, n) == 0) return true;
    LOG_E("cid:%llu - out of memory for %zu bytes of output (%zu pending)",
          (unsigned long long)c->cid, n, pending_bytes(c));
    buf_reset(&c->out);
    buf_shrink(&c->out, 0);
    conn_close(c, CLOSE_NO_MEMORY);
    return false;
}

/* After a frame was appended: deliveries, protocol replies (+OK, -ERR, PONG, INFO) and server
 * PINGs alike count toward max_pending; past it the client is a slow consumer, as in
 * nats-server, so a client that never reads holds at most max_pending plus one frame. */
static void out_commit(conn_t *c)
{
    server_mark_dirty(c->srv, c);
    /* A busy iteration can queue megabytes before the flush hook runs; hand big batches to the
     * socket now, so max_pending measures what the client did not take, not our batching. */
    if (c->out.len >= EAGER_FLUSH && !c->writing) conn_flush(c);
    if (c->closing) return;
    if ((int64_t)pending_bytes(c) > c->srv->cfg->max_pending) {
        slow_consumer(c);
        return;
    }
    update_congestion(c);
    if (c->congested) c->srv->congestion_hit = true;
}

static void conn_send(conn_t *c, const char *p, size_t n)
{
    if (!out_room(c, n)) return;
    buf_append(&c->out, p, n);
    out_commit(c);
}

static void send_err(conn_t *c, const char *text)
{
    char line[256];
    int n = snprintf(line, sizeof line, "-ERR '%s'\r\n", text);
    conn_send(c, line, (size_t)n);
}

static void send_ok(conn_t *c)
{
    if (c->verbose) conn_send(c, "+OK\r\n", 5);
}

void conn_deliver(conn_t *c, struct nsub *sub, const server_msg_t *m)
{
    size_t total = m->hdr_len + m->data_len;
    bool with_hdr = m->hdr_len > 0 && c->headers;
    size_t body = with_hdr ? total : m->data_len;
    buf_t *b = &c->out;
    /* 64: the verb, the spaces, both sizes and both CRLFs (the appends below never grow b). */
    if (!out_room(c, m->subject_len + sub->sid_len + m->reply_len + body + 64)) return;
    char *w = b->data + b->len;
    if (with_hdr) {
        memcpy(w, "HMSG ", 5);
        w += 5;
    } else {
        memcpy(w, "MSG ", 4);
        w += 4;
    }
    memcpy(w, m->subject, m->subject_len);
    w += m->subject_len;
    *w++ = ' ';
    memcpy(w, sub->sid, sub->sid_len);
    w += sub->sid_len;
    *w++ = ' ';
    if (m->reply_len) {
        memcpy(w, m->reply, m->reply_len);
        w += m->reply_len;
        *w++ = ' ';
    }
    b->len = (size_t)(w - b->data);
    if (with_hdr) {
        buf_append_u64(b, m->hdr_len);
        buf_append(b, " ", 1);
    }
    buf_append_u64(b, body);
    w = b->data + b->len;
    *w++ = '\r';
    *w++ = '\n';
    if (with_hdr) {
        memcpy(w, m->hdr, m->hdr_len);
        w += m->hdr_len;
    }
    memcpy(w, m->data, m->data_len);
    w += m->data_len;
    *w++ = '\r';
    *w++ = '\n';
    b->len = (size_t)(w - b->data);
    c->out_msgs++;
    c->out_bytes += body;
    LOG_T("cid:%llu - ->> [%s %.*s %s %zu]", (unsigned long long)c->cid, with_hdr ? "HMSG" : "MSG",
          (int)m->subject_len, m->subject, sub->sid, body);
    out_commit(c);
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->writing = false;
    buf_reset(&c->wbuf);
    buf_shrink(&c->wbuf, KEEP_OUT);
    c->wbuf_off = 0;
    if (c->closing) return; /* canceled by close */
    if (status < 0) {
        LOG_D("cid:%llu - write error: %s", (unsigned long long)c->cid, uv_strerror(status));
        conn_close(c, CLOSE_WRITE_ERROR);
        return;
    }
    update_congestion(c);
    if (c->out.len || c->tout.len)
        conn_flush(c);
    else if (c->close_after_flush)
        conn_close(c, c->reason);
}

void conn_flush(conn_t *c)
{
    if (c->writing || c->closing) return;
    buf_t *src = &c->out;
    if (c->tls) { /* the only TLS step: plaintext becomes records, which are what is written */
        if (!tls_seal(c)) {
            conn_close(c, CLOSE_TLS);
            return;
        }
        src = &c->tout;
    }
    if (src->len == 0) return;
    /* Try the socket directly first: usually it takes everything and no request is needed. */
    uv_buf_t b = uv_buf_init(src->data, (unsigned)src->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        LOG_D("cid:%llu - write error: %s", (unsigned long long)c->cid, uv_strerror(n));
        conn_close(c, CLOSE_WRITE_ERROR);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == src->len) {
        buf_reset(src);
        buf_shrink(src, KEEP_OUT);
        if (c->congested) update_congestion(c);
        if (c->close_after_flush) conn_close(c, c->reason);
        return;
    }
    /* Hand the rest to libuv; new output collects in a fresh `out` meanwhile. */
    buf_t tmp = c->wbuf;
    c->wbuf = *src;
    *src = tmp;
    buf_reset(src);
    c->wbuf_off = done;
    uv_buf_t rest = uv_buf_init(c->wbuf.data + done, (unsigned)(c->wbuf.len - done));
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_write);
    if (rc) {
        conn_close(c, CLOSE_WRITE_ERROR);
        return;
    }
    c->writing = true;
    c->write_started_ms = uv_now(c->srv->loop);
}

void conn_resume(conn_t *c)
{
    c->paused = false;
    c->stall_until = 0;
    c->read_this_iter = 0;
    if (!c->closing && !c->close_after_flush)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

bool conn_write_stalled(conn_t *c, uint64_t now_ms, uint64_t deadline_ms)
{
    return c->writing && !c->closing && now_ms - c->write_started_ms > deadline_ms;
}

/* ---- close ------------------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->open_handles > 0) return;
    server_t *s = c->srv;
    parser_free(&c->parser);
    buf_free(&c->out);
    buf_free(&c->wbuf);
    buf_free(&c->tout);
    tls_conn_free(c->tls);
    free(c->subs);
    free(c->name);
    free(c->lang);
    free(c->version);
    free(c);
    server_conn_closed(s);
}

/* Sends whatever is queued (the -ERR that explains the close, usually) and closes once it is
 * written; a client that does not read gets closed anyway by the write deadline. */
static void close_after_flush(conn_t *c, close_reason_t reason)
{
    c->close_after_flush = true;
    c->reason = reason;
    if (!c->writing) conn_flush(c);
    if (!c->closing && !c->writing && c->out.len == 0 && c->tout.len == 0) conn_close(c, reason);
}

void conn_close(conn_t *c, close_reason_t reason)
{
    if (c->closing) return;
    server_t *s = c->srv;
    /* Best effort: a final frame (e.g. -ERR) still queued leaves now if the socket has room. */
    if (reason != CLOSE_SLOW_CONSUMER) try_write_now(c);
    c->closing = true;
    c->reason = reason;
    if (reason == CLOSE_CLIENT || reason == CLOSE_SHUTDOWN)
        LOG_D("%s:%d - cid:%llu - Client connection closed: %s", c->ip, c->rport,
              (unsigned long long)c->cid, conn_reason_text(reason));
    else
        LOG_I("%s:%d - cid:%llu - Client connection closed: %s", c->ip, c->rport,
              (unsigned long long)c->cid, conn_reason_text(reason));
    server_unlink_conn(s, c);
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct nsub *sub = c->subs[i];
        while (sub) {
            struct nsub *next = sub->map_next;
            sub->map_next = NULL;
            server_retire_sub(s, sub);
            sub = next;
        }
        c->subs[i] = NULL;
    }
    c->nsubs = 0;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ---- protocol operations ---------------------------------------------------------------- */

static bool json_flag(json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);
    return v ? json_is_true(v) : dflt;
}

static char *json_strdup(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

static bool str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static bool auth_ok(const config_t *cfg, json_t *o)
{
    if (cfg->token) {
        json_t *t = json_object_get(o, "auth_token");
        return json_is_string(t) && str_eq(json_string_value(t), cfg->token);
    }
    if (cfg->user) {
        json_t *u = json_object_get(o, "user"), *p = json_object_get(o, "pass");
        return json_is_string(u) && json_is_string(p) && str_eq(json_string_value(u), cfg->user) &&
               str_eq(json_string_value(p), cfg->pass ? cfg->pass : "");
    }
    return true;
}

static int op_connect(conn_t *c, const parser_op_t *op)
{
    json_error_t jerr;
    json_t *o = json_loadb(op->arg.p, op->arg.len, 0, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        LOG_I("cid:%llu - invalid CONNECT: %s", (unsigned long long)c->cid,
              o ? "not an object" : jerr.text);
        send_err(c, "Unknown Protocol Operation");
        close_after_flush(c, CLOSE_PROTOCOL);
        return -1;
    }
    if (!auth_ok(c->srv->cfg, o)) {
        json_decref(o);
        LOG_W("%s:%d - cid:%llu - authentication failed", c->ip, c->rport,
              (unsigned long long)c->cid);
        send_err(c, "Authorization Violation");
        close_after_flush(c, CLOSE_AUTH);
        return -1;
    }
    c->verbose = json_flag(o, "verbose", false);
    c->pedantic = json_flag(o, "pedantic", false);
    c->echo = json_flag(o, "echo", true);
    c->headers = json_flag(o, "headers", false);
    c->no_responders = json_flag(o, "no_responders", false) && c->headers;
    json_t *proto = json_object_get(o, "protocol");
    c->protocol = json_is_integer(proto) ? (int)json_integer_value(proto) : 0;
    free(c->name);
    free(c->lang);
    free(c->version);
    c->name = json_strdup(o, "name");
    c->lang = json_strdup(o, "lang");
    c->version = json_strdup(o, "version");
    json_decref(o);
    bool first = !c->connected;
    c->connected = true;
    /* The auth timeout is over; the timer now paces PINGs. */
    if (first && (c->srv->cfg->user || c->srv->cfg->token)) start_timer(c);
    LOG_D("cid:%llu - CONNECT name=%s lang=%s version=%s", (unsigned long long)c->cid,
          c->name ? c->name : "", c->lang ? c->lang : "", c->version ? c->version : "");
    send_ok(c);
    return 0;
}

/* nats-server's status message for a request nobody can answer. */
static void send_no_responders(conn_t *c, const parser_op_t *op)
{
    sublist_result_t *r = sublist_match(c->srv->sublist, op->reply.p, op->reply.len);
    if (!r) return;
    for (size_t i = 0; i < r->nplain; i++) {
        struct nsub *sub = r->plain[i];
        if (sub->conn != c || sub->closed) continue;
        static const char hdr[] = "NATS/1.0 503\r\n\r\n";
        server_msg_t m = {.subject = op->reply.p,
                          .subject_len = op->reply.len,
                          .hdr = hdr,
                          .hdr_len = sizeof hdr - 1,
                          .data = "",
                          .data_len = 0};
        conn_deliver(c, sub, &m);
        break;
    }
    sublist_result_release(r);
}

static int op_pub(conn_t *c, const parser_op_t *op)
{
    server_msg_t m = {
        .subject = op->subject.p,
        .subject_len = op->subject.len,
        .reply = op->reply.len ? op->reply.p : NULL,
        .reply_len = op->reply.len,
        .hdr = op->hdr.len ? op->hdr.p : NULL,
        .hdr_len = op->hdr.len,
        .data = op->payload.p,
        .data_len = op->payload.len,
    };
    if (c->pedantic && op->reply.len && !subject_valid_literal(op->reply.p, op->reply.len)) {
        send_err(c, "Invalid Publish Subject");
        return 0;
    }
    if (c->pedantic && !subject_valid_literal(op->subject.p, op->subject.len)) {
        send_err(c, "Invalid Publish Subject");
        return 0;
    }
    c->in_msgs++;
    c->in_bytes += op->payload.len + op->hdr.len;
    int n = server_route(c->srv, c, &m);
    if (n < 0) {
        /* Not routable (e.g. an empty token). nats-server drops it silently unless pedantic. */
        if (c->pedantic) send_err(c, "Invalid Publish Subject");
        return 0;
    }
    if (n == 0 && op->reply.len && c->no_responders) send_no_responders(c, op);
    send_ok(c);
    return 0;
}

static int op_sub(conn_t *c, const parser_op_t *op)
{
    if (!subject_valid(op->subject.p, op->subject.len)) {
        send_err(c, "Invalid Subject");
        return 0;
    }
    if (op->queue.len && !subject_valid_queue(op->queue.p, op->queue.len)) {
        send_err(c, "Invalid Queue Name");
        return 0;
    }
    if (conn_sid_find(c, op->sid.p, op->sid.len)) { /* nats-server ignores a reused sid */
        send_ok(c);
        return 0;
    }
    struct nsub *sub = xcalloc(1, sizeof *sub);
    sub->conn = c;
    sub->subject = xstrndup(op->subject.p, op->subject.len);
    sub->subject_len = op->subject.len;
    if (op->queue.len) {
        sub->queue = xstrndup(op->queue.p, op->queue.len);
        sub->queue_len = op->queue.len;
    }
    sub->sid = xstrndup(op->sid.p, op->sid.len);
    sub->sid_len = op->sid.len;
    if (server_add_sub(c->srv, sub) != 0) {
        nsub_free(sub);
        send_err(c, "Invalid Subject");
        return 0;
    }
    conn_sid_insert(c, sub);
    send_ok(c);
    return 0;
}

static int op_unsub(conn_t *c, const parser_op_t *op)
{
    struct nsub *sub = conn_sid_find(c, op->sid.p, op->sid.len);
    if (sub) {
        if (op->max && sub->delivered < op->max)
            sub->max = op->max;
        else
            conn_unsub(c, sub);
    }
    send_ok(c);
    return 0;
}

static int on_op(void *arg, const parser_op_t *op)
{
    conn_t *c = arg;
    if (log_enabled(LOG_LVL_TRACE)) conn_trace_op(c, op);
    if (c->closing || c->close_after_flush) return -1;
    if (!c->connected && op->type != PARSER_OP_CONNECT &&
        (c->srv->cfg->user || c->srv->cfg->token)) {
        send_err(c, "Authorization Violation");
        close_after_flush(c, CLOSE_AUTH);
        return -1;
    }
    switch (op->type) {
    case PARSER_OP_CONNECT:
        return op_connect(c, op);
    case PARSER_OP_PUB:
    case PARSER_OP_HPUB:
        return op_pub(c, op);
    case PARSER_OP_SUB:
        return op_sub(c, op);
    case PARSER_OP_UNSUB:
        return op_unsub(c, op);
    case PARSER_OP_PING:
        conn_send(c, "PONG\r\n", 6);
        return 0;
    case PARSER_OP_PONG:
        c->pings_out = 0;
        return 0;
    }
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    conn_t *c = h->data;
    b->base = c->srv->read_buf;
    b->len = sizeof c->srv->read_buf;
}

/* Parses plaintext input. Returns non-zero once the connection stops taking input. */
static int conn_input(void *arg, const char *p, size_t n)
{
    conn_t *c = arg;
    int rc = parser_feed(&c->parser, p, n, on_op, c);
    if (rc == STZ_OK) return 0;
    if (rc == STZ_ESTOPPED) return 1;
    /* nats-server's texts: its own for the two limits, the unknown operation's for the rest. */
    int shown = rc == STZ_ECTRLLINE || rc == STZ_EMAXPAYLOAD ? rc : STZ_EUNKNOWNOP;
    const char *text = rc == STZ_ENOMEM ? "Out of Memory" : stz_strerror(shown);
    LOG_I("%s:%d - cid:%llu - protocol error: %s", c->ip, c->rport, (unsigned long long)c->cid,
          text);
    send_err(c, text);
    close_reason_t reason = rc == STZ_EMAXPAYLOAD ? CLOSE_MAX_PAYLOAD
                            : rc == STZ_ECTRLLINE ? CLOSE_CONTROL_LINE
                            : rc == STZ_ENOMEM    ? CLOSE_NO_MEMORY
                                                  : CLOSE_PROTOCOL;
    close_after_flush(c, reason);
    return 1;
}

/* Ciphertext in: the handshake, then plaintext for conn_input. Everything read is decrypted
 * before returning (into the shared read buffer, which the engine has copied it out of), so
 * nothing waits inside the engine while reading is paused. */
static void tls_input(conn_t *c, const char *p, size_t n)
{
    server_t *s = c->srv;
    bool was_ready = tls_conn_ready(c->tls);
    /* A TLS client's first byte is a handshake record (22); anything else is plain text. */
    if (!c->tls_seen && (unsigned char)p[0] != 22) {
        static const char e[] = "-ERR 'Secure Connection - TLS Required'\r\n";
        LOG_I("%s:%d - cid:%llu - plain-text client on a TLS port", c->ip, c->rport,
              (unsigned long long)c->cid);
        buf_append(&c->tout, e, sizeof e - 1); /* as it is: the client speaks no TLS */
        close_after_flush(c, CLOSE_TLS_REQUIRED);
        return;
    }
    c->tls_seen = true;
    int rc = tls_conn_read(c->tls, p, n, s->read_buf, sizeof s->read_buf, conn_input, c, &c->tout);
    if (c->tout.len) server_mark_dirty(s, c);
    if (!was_ready && tls_conn_ready(c->tls)) {
        LOG_D("cid:%llu - TLS handshake complete", (unsigned long long)c->cid);
        start_timer(c); /* the handshake deadline is over */
        if (c->out.len) server_mark_dirty(s, c);
    }
    if (rc == TLS_OK || rc == TLS_STOPPED || c->closing) return;
    if (rc == TLS_CLOSED) {
        conn_close(c, CLOSE_CLIENT);
        return;
    }
    LOG_I("%s:%d - cid:%llu - TLS %s error: %s", c->ip, c->rport, (unsigned long long)c->cid,
          was_ready ? "record" : "handshake",
          rc == STZ_ENOMEM ? "out of memory" : tls_conn_error(c->tls));
    close_after_flush(c, rc == STZ_ENOMEM ? CLOSE_NO_MEMORY : CLOSE_TLS);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = stream->data;
    if (nread == 0 || c->closing) return;
    if (nread < 0) {
        conn_close(c, CLOSE_CLIENT);
        return;
    }
    if (c->close_after_flush) return; /* input after a fatal error is ignored */
    server_t *s = c->srv;
    s->congestion_hit = false;
    if (c->tls)
        tls_input(c, b->base, (size_t)nread);
    else
        conn_input(c, b->base, (size_t)nread);
    c->read_this_iter += (size_t)nread;
    bool stall = s->congestion_hit && !c->congested;
    if (!c->closing && !c->close_after_flush && !c->paused &&
        (stall || c->read_this_iter >= READ_BUDGET)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = true;
        c->stall_until = stall ? uv_now(s->loop) + STALL_MS : 0;
        c->paused_next = s->paused;
        s->paused = c;
    }
}

/* ---- timer: TLS handshake and auth timeouts, then PINGs ------------------------------- */

/* (Re)arms the timer for what the connection waits for now. */
static void start_timer(conn_t *c)
{
    const config_t *cfg = c->srv->cfg;
    uint64_t ping = (uint64_t)cfg->ping_interval_ms;
    uv_timer_stop(&c->timer);
    if (c->tls && !tls_conn_ready(c->tls))
        uv_timer_start(&c->timer, on_timer, TLS_TIMEOUT_MS, 0);
    else if (!c->connected && (cfg->user || cfg->token))
        uv_timer_start(&c->timer, on_timer, AUTH_TIMEOUT_MS, ping);
    else
        uv_timer_start(&c->timer, on_timer, ping, ping);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->closing) return;
    const config_t *cfg = c->srv->cfg;
    if (c->tls && !tls_conn_ready(c->tls)) {
        LOG_I("%s:%d - cid:%llu - TLS handshake timeout", c->ip, c->rport,
              (unsigned long long)c->cid);
        conn_close(c, CLOSE_TLS);
        return;
    }
    if (!c->connected && (cfg->user || cfg->token)) {
        send_err(c, "Authentication Timeout");
        close_after_flush(c, CLOSE_AUTH);
        return;
    }
    if (c->pings_out + 1 > cfg->max_pings_out) {
        send_err(c, "Stale Connection");
        close_after_flush(c, CLOSE_STALE);
        return;
    }
    c->pings_out++;
    conn_send(c, "PING\r\n", 6);
}

/* ---- accept ----------------------------------------------------------------------------- */

static void send_info(conn_t *c)
{
    server_t *s = c->srv;
    const config_t *cfg = s->cfg;
    json_t *o = json_object();
    json_object_set_new(o, "server_id", json_string(s->id));
    json_object_set_new(o, "server_name", json_string(s->id));
    json_object_set_new(o, "version", json_string(STANZA_VERSION));
    json_object_set_new(o, "proto", json_integer(1));
    json_object_set_new(o, "go", json_string("stanza"));
    json_object_set_new(o, "host", json_string(cfg->host));
    json_object_set_new(o, "port", json_integer(s->port));
    json_object_set_new(o, "headers", json_true());
    json_object_set_new(o, "max_payload", json_integer(cfg->max_payload));
    json_object_set_new(o, "client_id", json_integer((json_int_t)c->cid));
    json_object_set_new(o, "client_ip", json_string(c->ip));
    if (cfg->user || cfg->token) json_object_set_new(o, "auth_required", json_true());
    if (c->tls) json_object_set_new(o, "tls_required", json_true());
    if (c->tls && cfg->tls_verify) json_object_set_new(o, "tls_verify", json_true());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    conn_send(c, "INFO ", 5);
    conn_send(c, text, strlen(text));
    conn_send(c, "\r\n", 2);
    free(text);
}

void conn_accept(server_t *s)
{
    const config_t *cfg = s->cfg;
    conn_t *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->echo = true;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->open_handles = 1;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    c->cid = s->next_cid++;
    parser_init(&c->parser, (size_t)cfg->max_control_line, (size_t)cfg->max_payload);
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage peer;
    int plen = sizeof peer;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) == 0) {
        if (peer.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&peer, c->ip, sizeof c->ip);
            c->rport = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&peer, c->ip, sizeof c->ip);
            c->rport = ntohs(((struct sockaddr_in *)&peer)->sin_port);
        }
    }
    server_link_conn(s, c);
    if (s->stats.conns > (size_t)cfg->max_connections) {
        LOG_W("%s:%d - maximum connections (%d) exceeded", c->ip, c->rport, cfg->max_connections);
        send_err(c, "maximum connections exceeded");
        close_after_flush(c, CLOSE_MAX_CONNS);
        return;
    }
    LOG_D("%s:%d - cid:%llu - Client connection created", c->ip, c->rport,
          (unsigned long long)c->cid);
    if (s->tls && !(c->tls = tls_conn_new(s->tls))) {
        LOG_E("cid:%llu - out of memory for a TLS session", (unsigned long long)c->cid);
        conn_close(c, CLOSE_NO_MEMORY);
        return;
    }
    send_info(c);
    if (c->tls) { /* INFO goes out as it is; the client starts the handshake after reading it */
        buf_t info = c->out;
        c->out = c->tout;
        c->tout = info;
    }
    start_timer(c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}
