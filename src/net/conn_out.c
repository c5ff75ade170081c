/* conn_out: a client's output. Frames (deliveries, +OK/-ERR, PONG, INFO, server PINGs) are
 * appended to the connection's buffer; the server flushes every dirty connection once per loop
 * iteration, big batches leave at once, and a client whose unsent output passes max_pending is a
 * slow consumer and is closed: nobody else waits for it. With TLS the plaintext is sealed into
 * records at flush. The socket work itself is the stream's (stream.h). */
#include <string.h>

#include "log.h"
#include "server_private.h"

#define EAGER_FLUSH (256 * 1024) /* flush before the end of the iteration past this */
/* A publisher whose messages land on a client holding more than the high-water mark of unsent
 * output is paced (conn.c); the mark is a quarter of max_pending, within these bounds. */
#define HIGH_WATER_MIN (64 * 1024)
#define HIGH_WATER_MAX (8 * 1024 * 1024)

static size_t high_water(const conn_t *c)
{
    size_t hw = (size_t)c->srv->cfg->max_pending / 4;
    if (hw < HIGH_WATER_MIN) hw = HIGH_WATER_MIN;
    if (hw > HIGH_WATER_MAX) hw = HIGH_WATER_MAX;
    return hw;
}

/* Plaintext not yet sealed (TLS only; empty otherwise) and what the socket has not taken. */
size_t conn_pending(const conn_t *c)
{
    return c->plain.len + stream_unsent(&c->st);
}

/* Tracks whether c is above the high-water mark (with hysteresis: it clears at half). */
static void update_congestion(conn_t *c)
{
    size_t p = conn_pending(c), hw = high_water(c);
    if (!c->congested && p > hw) {
        c->congested = true;
        c->srv->ncongested++;
    } else if (c->congested && p <= hw / 2) {
        c->congested = false;
        c->srv->ncongested--;
    }
}

/* With TLS: encrypts the plaintext into st.out, once the handshake is done. Returns false,
 * the plaintext left as it was, when the session fails or st.out cannot grow. */
static bool tls_seal(conn_t *c)
{
    if (!c->plain.len || !tls_conn_ready(c->tls)) return true;
    int rc = tls_conn_write(c->tls, c->plain.data, c->plain.len, &c->st.out);
    if (rc != TLS_OK) {
        LOG_W("cid:%llu - TLS write failed: %s", (unsigned long long)c->cid,
              rc == STZ_ENOMEM ? "out of memory" : tls_conn_error(c->tls));
        return false;
    }
    buf_reset(&c->plain);
    buf_shrink(&c->plain, c->st.keep); /* as the stream keeps its own */
    return true;
}

void conn_try_write(conn_t *c)
{
    if (c->st.writing || (c->tls && !tls_seal(c))) return;
    stream_try_write(&c->st);
}

static void slow_consumer(conn_t *c)
{
    server_t *s = c->srv;
    LOG_W("cid:%llu - Slow Consumer Detected: %zu bytes pending (max_pending %lld)",
          (unsigned long long)c->cid, conn_pending(c), (long long)s->cfg->max_pending);
    s->stats.slow_consumers++;
    /* Drop what it could not take; the error goes out only if the socket has room (and, with
     * TLS, only where no record was cut short, or the client could not read it). */
    buf_reset(c->out);
    if (!c->st.writing && (!c->tls || c->st.out.len == 0)) {
        static const char e[] = "-ERR 'Slow Consumer'\r\n";
        buf_append(c->out, e, sizeof e - 1);
        conn_try_write(c);
    }
    s->close_conn(c, CLOSE_SLOW_CONSUMER);
}

/* Every frame to a client goes through out_room, then out_commit: the one place where output
 * is bounded. out_room makes room for n more bytes without aborting the process: a client whose
 * buffer cannot grow is closed, nobody else is affected. False when c is (now) closing. */
static bool out_room(conn_t *c, size_t n)
{
    if (c->closing) return false;
    if (buf_try_reserve(c->out, n) == 0) return true;
    LOG_E("cid:%llu - out of memory for %zu bytes of output (%zu pending)",
          (unsigned long long)c->cid, n, conn_pending(c));
    buf_reset(c->out);
    buf_shrink(c->out, 0);
    c->srv->close_conn(c, CLOSE_NO_MEMORY);
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
    if (c->out->len >= EAGER_FLUSH && !c->st.writing) conn_flush(c);
    if (c->closing) return;
    if ((int64_t)conn_pending(c) > c->srv->cfg->max_pending) {
        slow_consumer(c);
        return;
    }
    update_congestion(c);
    if (c->congested) c->srv->congestion_hit = true;
}

void conn_send(conn_t *c, const char *p, size_t n)
{
    if (!out_room(c, n)) return;
    buf_append(c->out, p, n);
    out_commit(c);
}

void conn_send_err(conn_t *c, const char *text)
{
    char line[256];
    int n = snprintf(line, sizeof line, "-ERR '%s'\r\n", text);
    conn_send(c, line, (size_t)n);
}

/* Appends bytes that out_room made room for. */
static char *put(char *w, const void *p, size_t n)
{
    memcpy(w, p, n);
    return w + n;
}

/* A frame's end, from w (the line so far, in room out_room made): "[HDR_SIZE ]SIZE\r\n", the
 * header block and the data, "\r\n". */
static void put_sizes_body(buf_t *b, char *w, const bus_msg_t *m, bool with_hdr, size_t body)
{
    b->len = (size_t)(w - b->data);
    if (with_hdr) {
        buf_append_u64(b, m->hdr_len);
        buf_append(b, " ", 1);
    }
    buf_append_u64(b, body);
    w = b->data + b->len;
    *w++ = '\r';
    *w++ = '\n';
    if (with_hdr) w = put(w, m->hdr, m->hdr_len);
    w = put(w, m->data, m->data_len);
    *w++ = '\r';
    *w++ = '\n';
    b->len = (size_t)(w - b->data);
}

void conn_deliver(conn_t *c, struct nsub *sub, const bus_msg_t *m)
{
    size_t total = m->hdr_len + m->data_len;
    bool with_hdr = m->hdr_len > 0 && c->headers;
    size_t body = with_hdr ? total : m->data_len;
    buf_t *b = c->out;
    /* 64: the verb, the spaces, both sizes and both CRLFs (the appends below never grow b). */
    if (!out_room(c, m->subject_len + sub->sid_len + m->reply_len + body + 64)) return;
    char *w = b->data + b->len;
    w = with_hdr ? put(w, "HMSG ", 5) : put(w, "MSG ", 4);
    w = put(w, m->subject, m->subject_len);
    *w++ = ' ';
    w = put(w, sub->sid, sub->sid_len);
    *w++ = ' ';
    if (m->reply_len) {
        w = put(w, m->reply, m->reply_len);
        *w++ = ' ';
    }
    put_sizes_body(b, w, m, with_hdr, body);
    c->out_msgs++;
    c->out_bytes += body;
    LOG_T("cid:%llu - ->> [%s %.*s %s %zu]", (unsigned long long)c->cid, with_hdr ? "HMSG" : "MSG",
          (int)m->subject_len, m->subject, sub->sid, body);
    out_commit(c);
}

/* RMSG $G subject [reply] size, or with queue groups RMSG $G subject (+ reply | "|") q1 q2 size;
 * HMSG adds the header size before the size (nats-server 2.9's route forms). */
void conn_send_rmsg(conn_t *c, const bus_msg_t *m, const char *queues, size_t qlen)
{
    bool with_hdr = m->hdr_len > 0 && c->headers;
    size_t body = with_hdr ? m->hdr_len + m->data_len : m->data_len;
    buf_t *b = c->out;
    /* 72: the verb, the account, the spaces, the indicator, both sizes and both CRLFs. */
    if (!out_room(c, m->subject_len + m->reply_len + qlen + body + 72)) return;
    char *w = b->data + b->len;
    w = with_hdr ? put(w, "HMSG $G ", 8) : put(w, "RMSG $G ", 8);
    w = put(w, m->subject, m->subject_len);
    *w++ = ' ';
    if (qlen) w = put(w, m->reply_len ? "+ " : "| ", 2);
    if (m->reply_len) {
        w = put(w, m->reply, m->reply_len);
        *w++ = ' ';
    }
    if (qlen) {
        w = put(w, queues, qlen);
        *w++ = ' ';
    }
    put_sizes_body(b, w, m, with_hdr, body);
    c->out_msgs++;
    c->out_bytes += body;
    out_commit(c);
}

void conn_on_written(stream_t *st, int status)
{
    conn_t *c = st->owner;
    if (status < 0) {
        LOG_D("cid:%llu - write error: %s", (unsigned long long)c->cid, uv_strerror(status));
        c->srv->close_conn(c, CLOSE_WRITE_ERROR);
        return;
    }
    update_congestion(c);
    if (c->plain.len || c->st.out.len)
        conn_flush(c);
    else if (c->close_after_flush)
        c->srv->close_conn(c, c->reason);
}

void conn_flush(conn_t *c)
{
    if (c->st.writing || c->closing) return;
    /* The only TLS step: plaintext becomes records, which are what is written. */
    if (c->tls && !tls_seal(c)) {
        c->srv->close_conn(c, CLOSE_TLS);
        return;
    }
    int rc = stream_flush(&c->st);
    if (rc < 0) {
        LOG_D("cid:%llu - write error: %s", (unsigned long long)c->cid, uv_strerror(rc));
        c->srv->close_conn(c, CLOSE_WRITE_ERROR);
        return;
    }
    if (rc == 1) { /* all taken now */
        if (c->congested) update_congestion(c);
        if (c->close_after_flush) c->srv->close_conn(c, c->reason);
    }
}
