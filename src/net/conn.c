/* conn: one client connection: reading (through TLS when it is on), the protocol operations,
 * the read budget and publisher pacing, the connection's timer, accept and close.
 *
 * Reads go through the parser straight from the server's shared read buffer (the stream lends
 * it). Each operation is handled at once; a publish is routed (route.c), and deliveries append
 * MSG frames to the subscribers' output (conn_out.c), which the server flushes before the loop
 * polls again. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "server_private.h"
#include "subject.h"
#include "xalloc.h"

/* Bytes one connection may feed per loop iteration. libuv would read up to 32 x 64 KiB from a
 * busy publisher before anything is flushed; pausing it sooner lets the poll phase drain the
 * subscribers' sockets in between, so a fast subscriber never looks slow. */
#define READ_BUDGET (256 * 1024)
/* A publisher whose messages land on a client holding more than the high-water mark of unsent
 * output (conn_out.c) is paused for up to STALL_MS, or until that client drains: the soft
 * back-pressure nats-server applies too. A client that never drains still reaches max_pending
 * and is closed; publishers are only paced, never blocked on it. */
#define STALL_MS 5
/* A client has this long for the TLS handshake (nats-server's default tls timeout) and, with
 * authentication on, for its CONNECT. */
#define TLS_TIMEOUT_MS 2000
#define AUTH_TIMEOUT_MS 2000
#define KEEP_OUT (64 * 1024) /* larger output buffers are released once drained */

static void start_timer(conn_t *c);

static void send_ok(conn_t *c)
{
    if (c->verbose) conn_send(c, "+OK\r\n", 5);
}

void conn_resume(conn_t *c)
{
    list_remove(&c->paused_link);
    c->stall_until = 0;
    c->read_this_iter = 0;
    if (!c->closing && !c->close_after_flush) stream_read_start(&c->st);
}

/* ---- close ------------------------------------------------------------------------------ */

static void on_closed(stream_t *st)
{
    conn_t *c = st->owner;
    server_t *s = c->srv;
    parser_free(&c->parser);
    buf_free(&c->plain);
    tls_conn_free(c->tls);
    cluster_route_free(c->route);
    hmap_free(&c->sids);
    free(c->name);
    free(c->lang);
    free(c->version);
    free(c);
    s->conn_gone(s);
}

/* Sends whatever is queued (the -ERR that explains the close, usually) and closes once it is
 * written; a client that does not read gets closed anyway by the write deadline. */
static void close_after_flush(conn_t *c, close_reason_t reason)
{
    c->close_after_flush = true;
    c->reason = reason;
    if (!c->st.writing) conn_flush(c);
    if (!c->closing && !c->st.writing && c->plain.len == 0 && c->st.out.len == 0)
        conn_close(c, reason);
}

/* Out of the server's lists; its subscriptions out of routing. */
static void unlink_conn(conn_t *c)
{
    server_t *s = c->srv;
    list_remove(&c->link);
    list_remove(&c->dirty_link);
    list_remove(&c->paused_link);
    if (!c->route) s->stats.conns--; /* routes are not client connections */
    if (c->congested) {
        c->congested = false;
        s->ncongested--;
    }
    size_t it;
    hmap_node_t *n = hmap_first(&c->sids, &it);
    while (n) {
        hmap_node_t *next = hmap_next(&c->sids, &it, n);
        struct nsub *sub = HMAP_ITEM(n, struct nsub, sid_node);
        route_retire(s, sub); /* unlinks n; sub itself lives on until the iteration ends */
        if (s->sub_gone_hook && !s->shutting_down)
            s->sub_gone_hook(s->sub_gone_arg, sub->subject, sub->subject_len);
        n = next;
    }
    if (c->route) cluster_route_unlink(c); /* its remote interest went with its sids */
}

void conn_close(conn_t *c, close_reason_t reason)
{
    if (c->closing) return;
    /* Best effort: a final frame (e.g. -ERR) still queued leaves now if the socket has room. */
    if (reason != CLOSE_SLOW_CONSUMER) conn_try_write(c);
    c->closing = true;
    c->reason = reason;
    const char *tag = c->route ? "rid" : "cid", *kind = c->route ? "Route" : "Client";
    if (reason == CLOSE_CLIENT || reason == CLOSE_SHUTDOWN || reason == CLOSE_ROUTE_CONNECT)
        LOG_D("%s:%d - %s:%llu - %s connection closed: %s", c->ip, c->rport, tag,
              (unsigned long long)c->cid, kind, conn_reason_text(reason));
    else
        LOG_I("%s:%d - %s:%llu - %s connection closed: %s", c->ip, c->rport, tag,
              (unsigned long long)c->cid, kind, conn_reason_text(reason));
    unlink_conn(c);
    stream_close(&c->st);
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
        conn_send_err(c, "Unknown Protocol Operation");
        close_after_flush(c, CLOSE_PROTOCOL);
        return STZ_ESTOPPED;
    }
    if (!auth_ok(c->srv->cfg, o)) {
        json_decref(o);
        LOG_W("%s:%d - cid:%llu - authentication failed", c->ip, c->rport,
              (unsigned long long)c->cid);
        conn_send_err(c, "Authorization Violation");
        close_after_flush(c, CLOSE_AUTH);
        return STZ_ESTOPPED;
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
        bus_msg_t m = {.subject = op->reply.p,
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
    bus_msg_t m = msg_from_op(op);
    if (c->pedantic && op->reply.len && !subject_valid_literal(op->reply.p, op->reply.len)) {
        conn_send_err(c, "Invalid Publish Subject");
        return 0;
    }
    if (c->pedantic && !subject_valid_literal(op->subject.p, op->subject.len)) {
        conn_send_err(c, "Invalid Publish Subject");
        return 0;
    }
    c->in_msgs++;
    c->in_bytes += op->payload.len + op->hdr.len;
    int n = route_msg(c->srv, c, &m);
    if (n < 0) {
        /* Not routable (e.g. an empty token). nats-server drops it silently unless pedantic. */
        if (c->pedantic) conn_send_err(c, "Invalid Publish Subject");
        return 0;
    }
    if (n == 0 && op->reply.len && c->no_responders) send_no_responders(c, op);
    send_ok(c);
    return 0;
}

static int op_sub(conn_t *c, const parser_op_t *op)
{
    if (!subject_valid(op->subject.p, op->subject.len)) {
        conn_send_err(c, "Invalid Subject");
        return 0;
    }
    if (op->queue.len && !subject_valid_queue(op->queue.p, op->queue.len)) {
        conn_send_err(c, "Invalid Queue Name");
        return 0;
    }
    if (route_sid_find(c, op->sid.p, op->sid.len)) { /* nats-server ignores a reused sid */
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
    if (route_add(c->srv, sub) != 0) {
        nsub_free(sub);
        conn_send_err(c, "Invalid Subject");
        return 0;
    }
    hmap_insert(&c->sids, &sub->sid_node, hmap_hash_bytes(sub->sid, sub->sid_len));
    send_ok(c);
    return 0;
}

static int op_unsub(conn_t *c, const parser_op_t *op)
{
    struct nsub *sub = route_sid_find(c, op->sid.p, op->sid.len);
    if (sub) {
        if (op->max && sub->delivered < op->max)
            sub->max = op->max;
        else
            route_retire(c->srv, sub);
    }
    send_ok(c);
    return 0;
}

static int on_op(void *arg, const parser_op_t *op)
{
    conn_t *c = arg;
    if (log_enabled(LOG_LVL_TRACE)) conn_trace_op(c, op);
    if (c->closing || c->close_after_flush) return STZ_ESTOPPED;
    if (c->route) return cluster_route_op(c, op);
    if (!c->connected && op->type != PARSER_OP_CONNECT &&
        (c->srv->cfg->user || c->srv->cfg->token)) {
        conn_send_err(c, "Authorization Violation");
        close_after_flush(c, CLOSE_AUTH);
        return STZ_ESTOPPED;
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
    case PARSER_OP_INFO: /* route operations: a client's parser never yields them */
    case PARSER_OP_RSUB:
    case PARSER_OP_RUNSUB:
    case PARSER_OP_RMSG:
    case PARSER_OP_RHMSG:
    case PARSER_OP_OK:
    case PARSER_OP_ERR:
        break;
    }
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

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
    LOG_I("%s:%d - %s:%llu - protocol error: %s%s%s%s", c->ip, c->rport, c->route ? "rid" : "cid",
          (unsigned long long)c->cid, text, rc == shown ? "" : " (",
          rc == shown ? "" : stz_strerror(rc), rc == shown ? "" : ")");
    conn_send_err(c, text);
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
        buf_append(&c->st.out, e, sizeof e - 1); /* as it is: the client speaks no TLS */
        close_after_flush(c, CLOSE_TLS_REQUIRED);
        return;
    }
    c->tls_seen = true;
    int rc =
        tls_conn_read(c->tls, p, n, s->read_buf, sizeof s->read_buf, conn_input, c, &c->st.out);
    if (c->st.out.len) server_mark_dirty(s, c);
    if (!was_ready && tls_conn_ready(c->tls)) {
        LOG_D("cid:%llu - TLS handshake complete", (unsigned long long)c->cid);
        start_timer(c); /* the handshake deadline is over */
        if (c->plain.len) server_mark_dirty(s, c);
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

static void on_read(stream_t *st, ssize_t nread, const char *p)
{
    conn_t *c = st->owner;
    if (c->closing) return;
    if (nread < 0) {
        conn_close(c, CLOSE_CLIENT);
        return;
    }
    if (c->close_after_flush) return; /* input after a fatal error is ignored */
    server_t *s = c->srv;
    s->congestion_hit = false;
    if (c->tls)
        tls_input(c, p, (size_t)nread);
    else
        conn_input(c, p, (size_t)nread);
    c->read_this_iter += (size_t)nread;
    bool stall = s->congestion_hit && !c->congested;
    if (!c->closing && !c->close_after_flush && !list_linked(&c->paused_link) &&
        (stall || c->read_this_iter >= READ_BUDGET)) {
        stream_read_stop(&c->st);
        c->stall_until = stall ? clock_mono_ms() + STALL_MS : 0;
        list_push_back(&s->paused, &c->paused_link);
    }
}

/* ---- timer: TLS handshake and auth timeouts, then PINGs ------------------------------- */

/* (Re)arms the timer for what the connection waits for now. */
static void start_timer(conn_t *c)
{
    const config_t *cfg = c->srv->cfg;
    uint64_t ping = (uint64_t)cfg->ping_interval_ms;
    stream_timer_stop(&c->st);
    if (c->tls && !tls_conn_ready(c->tls))
        stream_timer_start(&c->st, TLS_TIMEOUT_MS, 0);
    else if (!c->connected && (cfg->user || cfg->token))
        stream_timer_start(&c->st, AUTH_TIMEOUT_MS, ping);
    else
        stream_timer_start(&c->st, ping, ping);
}

static void on_timer(stream_t *st)
{
    conn_t *c = st->owner;
    if (c->closing) return;
    const config_t *cfg = c->srv->cfg;
    if (c->tls && !tls_conn_ready(c->tls)) {
        LOG_I("%s:%d - cid:%llu - TLS handshake timeout", c->ip, c->rport,
              (unsigned long long)c->cid);
        conn_close(c, CLOSE_TLS);
        return;
    }
    if (!c->connected && (cfg->user || cfg->token)) {
        conn_send_err(c, "Authentication Timeout");
        close_after_flush(c, CLOSE_AUTH);
        return;
    }
    if (c->pings_out + 1 > cfg->max_pings_out) {
        conn_send_err(c, "Stale Connection");
        close_after_flush(c, CLOSE_STALE);
        return;
    }
    c->pings_out++;
    conn_send(c, "PING\r\n", 6);
}

/* ---- accept ----------------------------------------------------------------------------- */

static void send_info(conn_t *c)
{
    char *text = info_client_json(c->srv, c);
    conn_send(c, "INFO ", 5);
    conn_send(c, text, strlen(text));
    conn_send(c, "\r\n", 2);
    free(text);
}

static void on_connected(stream_t *st, int status);

static const stream_ops_t conn_stream_ops = {
    .on_read = on_read,
    .on_written = conn_on_written,
    .on_timer = on_timer,
    .on_closed = on_closed,
    .on_connected = on_connected,
};

/* In the server's list and stats; closed at once past max_connections. False when closing. */
static bool admit(conn_t *c)
{
    server_t *s = c->srv;
    list_push_back(&s->conns, &c->link);
    s->stats.conns++;
    s->stats.total_conns++;
    if (s->stats.conns <= (size_t)s->cfg->max_connections) return true;
    LOG_W("%s:%d - maximum connections (%d) exceeded", c->ip, c->rport, s->cfg->max_connections);
    conn_send_err(c, "maximum connections exceeded");
    close_after_flush(c, CLOSE_MAX_CONNS);
    return false;
}

static conn_t *conn_new(server_t *s)
{
    conn_t *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->echo = true;
    c->out = &c->st.out;
    return c;
}

/* What every connection needs once its stream exists. */
static void conn_setup(conn_t *c)
{
    server_t *s = c->srv;
    c->cid = s->next_cid++;
    parser_init(&c->parser, (size_t)s->cfg->max_control_line, (size_t)s->cfg->max_payload);
}

void conn_accept(server_t *s)
{
    conn_t *c = conn_new(s);
    if (stream_accept(&c->st, (uv_stream_t *)&s->listener, &conn_stream_ops, c, s->read_buf,
                      sizeof s->read_buf, KEEP_OUT) != 0) {
        c->closing = true; /* on_closed frees it */
        return;
    }
    conn_setup(c);
    stream_peer(&c->st, c->ip, sizeof c->ip, &c->rport);
    if (!admit(c)) return;
    LOG_D("%s:%d - cid:%llu - Client connection created", c->ip, c->rport,
          (unsigned long long)c->cid);
    if (s->tls && !(c->tls = tls_conn_new(s->tls))) {
        LOG_E("cid:%llu - out of memory for a TLS session", (unsigned long long)c->cid);
        conn_close(c, CLOSE_NO_MEMORY);
        return;
    }
    send_info(c); /* with TLS too, as it is: the client starts the handshake after reading it */
    if (c->tls) c->out = &c->plain;
    start_timer(c);
    stream_read_start(&c->st);
}

/* ---- routes ----------------------------------------------------------------------------- */

void conn_accept_route(server_t *s, uv_stream_t *listener)
{
    conn_t *c = conn_new(s);
    if (stream_accept(&c->st, listener, &conn_stream_ops, c, s->read_buf, sizeof s->read_buf,
                      KEEP_OUT) != 0) {
        c->closing = true; /* on_closed frees it */
        return;
    }
    conn_setup(c);
    stream_peer(&c->st, c->ip, sizeof c->ip, &c->rport);
    cluster_route_new(c, NULL);
    list_push_back(&s->conns, &c->link);
    LOG_D("%s:%d - rid:%llu - Route connection accepted", c->ip, c->rport,
          (unsigned long long)c->cid);
    cluster_route_start(c);
    start_timer(c);
    stream_read_start(&c->st);
}

int conn_connect_route(server_t *s, const struct sockaddr *addr, struct solicit *sol)
{
    conn_t *c = conn_new(s);
    conn_setup(c);
    cluster_route_new(c, sol);
    int rc = stream_connect(&c->st, s->loop, addr, &conn_stream_ops, c, s->read_buf,
                            sizeof s->read_buf, KEEP_OUT);
    if (rc != 0) {
        c->closing = true; /* on_closed frees it; the caller retries */
        return rc;
    }
    if (addr->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)addr, c->ip, sizeof c->ip);
        c->rport = ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    } else {
        uv_ip4_name((const struct sockaddr_in *)addr, c->ip, sizeof c->ip);
        c->rport = ntohs(((const struct sockaddr_in *)addr)->sin_port);
    }
    list_push_back(&s->conns, &c->link);
    return 0;
}

/* A solicited route's connect finished: open it, or close (its solicitor retries). */
static void on_connected(stream_t *st, int status)
{
    conn_t *c = st->owner;
    if (c->closing) return;
    if (status < 0) {
        LOG_D("%s:%d - rid:%llu - route connect failed: %s", c->ip, c->rport,
              (unsigned long long)c->cid, uv_strerror(status));
        conn_close(c, CLOSE_ROUTE_CONNECT);
        return;
    }
    LOG_D("%s:%d - rid:%llu - Route connection created", c->ip, c->rport,
          (unsigned long long)c->cid);
    cluster_route_start(c);
    start_timer(c);
    stream_read_start(&c->st);
}
