/* server: listener, lifecycle, routing and the per-iteration flush. See server.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server_private.h"
#include "subject.h"
#include "xalloc.h"

static uint32_t rng_next(server_t *s)
{
    /* xorshift32: queue member choice needs speed and spread, not secrecy. */
    uint32_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->rng = x;
    return x;
}

static void make_id(server_t *s)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    s->id[0] = 'N';
    for (size_t i = 1; i < sizeof s->id - 1; i++)
        s->id[i] = alphabet[rng_next(s) % 32];
    s->id[sizeof s->id - 1] = '\0';
}

void nsub_free(struct nsub *sub)
{
    free(sub->subject);
    free(sub->queue);
    free(sub->sid);
    free(sub);
}

static void bury_graveyard(server_t *s)
{
    struct nsub *sub = s->graveyard;
    s->graveyard = NULL;
    while (sub) {
        struct nsub *next = sub->grave_next;
        nsub_free(sub);
        sub = next;
    }
}

static void on_stall_timer(uv_timer_t *t)
{
    (void)t; /* only wakes the loop; the prepare hook does the resuming */
}

static void on_flush_prepare(uv_prepare_t *h)
{
    server_t *s = h->data;
    if (s->flush_hook) s->flush_hook(s->flush_hook_arg);
    while (s->dirty) {
        conn_t *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        conn_flush(c);
    }
    /* Resume paused readers: budget pauses always, stalled publishers once the congestion
     * is gone or their stall ran out. */
    uint64_t now = uv_now(s->loop);
    conn_t **pp = &s->paused;
    bool stalls_left = false;
    while (*pp) {
        conn_t *c = *pp;
        if (c->stall_until && s->ncongested > 0 && now < c->stall_until) {
            stalls_left = true;
            pp = &c->paused_next;
            continue;
        }
        *pp = c->paused_next;
        c->paused_next = NULL;
        conn_resume(c);
    }
    if (stalls_left) uv_timer_start(&s->stall_timer, on_stall_timer, 1, 0);
    bury_graveyard(s);
}

static void on_tick(uv_timer_t *t)
{
    server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    uint64_t deadline = (uint64_t)s->cfg->write_deadline_ms;
    conn_t *c = s->conns;
    while (c) {
        conn_t *next = c->next;
        if (deadline && conn_write_stalled(c, now, deadline)) {
            LOG_W("cid:%llu - Slow Consumer Detected: write deadline of %llums exceeded",
                  (unsigned long long)c->cid, (unsigned long long)deadline);
            s->stats.slow_consumers++;
            conn_close(c, CLOSE_SLOW_CONSUMER);
        }
        c = next;
    }
}

server_t *server_new(uv_loop_t *loop, const config_t *cfg)
{
    server_t *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->sublist = sublist_new();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->rng = (uint32_t)(ts.tv_nsec ^ (ts.tv_sec << 7) ^ ((uint32_t)getpid() << 16)) | 1u;
    make_id(s);
    s->next_cid = 1;
    return s;
}

static void on_connection(uv_stream_t *listener, int status)
{
    server_t *s = listener->data;
    if (status < 0) {
        LOG_E("accept failed: %s", uv_strerror(status));
        return;
    }
    conn_accept(s);
}

int server_start(server_t *s, char *err, size_t errlen)
{
    const config_t *cfg = s->cfg;
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr);
    if (rc) rc = uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr);
    if (rc) {
        snprintf(err, errlen, "invalid listen address \"%s\"", cfg->host);
        return rc;
    }
    if (tls_enabled(cfg) && !s->tls) {
        rc = tls_ctx_new(cfg, &s->tls, err, errlen);
        if (rc < 0) return rc;
        LOG_I("TLS required for client connections%s",
              cfg->tls_verify ? " (client certificates verified)" : "");
    }
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = true;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->host, cfg->port, uv_strerror(rc));
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);

    uv_prepare_init(s->loop, &s->flush_prepare);
    s->flush_prepare.data = s;
    uv_prepare_start(&s->flush_prepare, on_flush_prepare);
    uv_unref((uv_handle_t *)&s->flush_prepare);
    uv_timer_init(s->loop, &s->stall_timer);
    s->stall_timer.data = s;
    uv_unref((uv_handle_t *)&s->stall_timer);
    uv_timer_init(s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&s->tick);
    return 0;
}

static void maybe_shutdown_done(server_t *s)
{
    if (!s->shutting_down || s->closing_handles > 0 || s->conns) return;
    void (*done)(void *) = s->shutdown_done;
    s->shutdown_done = NULL;
    bury_graveyard(s);
    if (done) done(s->shutdown_arg);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    s->closing_handles--;
    maybe_shutdown_done(s);
}

void server_conn_closed(server_t *s)
{
    maybe_shutdown_done(s);
}

void server_shutdown(server_t *s, void (*done)(void *arg), void *arg)
{
    if (s->shutting_down) return;
    s->shutting_down = true;
    s->shutdown_done = done;
    s->shutdown_arg = arg;
    if (s->listening) {
        s->closing_handles += 4;
        uv_close((uv_handle_t *)&s->stall_timer, on_server_handle_closed);
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
        uv_close((uv_handle_t *)&s->flush_prepare, on_server_handle_closed);
        uv_close((uv_handle_t *)&s->tick, on_server_handle_closed);
        s->listening = false;
    }
    /* Each connection gets what is already queued for it, then closes. */
    conn_t *c = s->conns;
    while (c) {
        conn_t *next = c->next;
        conn_close(c, CLOSE_SHUTDOWN);
        c = next;
    }
    s->dirty = NULL;
    maybe_shutdown_done(s);
}

void server_free(server_t *s)
{
    if (!s) return;
    while (s->isubs)
        server_unsubscribe(s, s->isubs);
    bury_graveyard(s);
    sublist_free(s->sublist);
    tls_ctx_free(s->tls);
    free(s);
}

int server_port(const server_t *s)
{
    return s->port;
}

const char *server_id(const server_t *s)
{
    return s->id;
}

void server_get_stats(const server_t *s, server_stats_t *out)
{
    *out = s->stats;
    sublist_stats_t st;
    sublist_get_stats(s->sublist, &st);
    out->subs = st.subs;
}

void server_set_flush_hook(server_t *s, void (*fn)(void *arg), void *arg)
{
    s->flush_hook = fn;
    s->flush_hook_arg = arg;
}

void server_mark_dirty(server_t *s, conn_t *c)
{
    if (c->dirty || c->closing) return;
    c->dirty = true;
    c->dirty_next = s->dirty;
    s->dirty = c;
}

void server_link_conn(server_t *s, conn_t *c)
{
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->stats.conns++;
    s->stats.total_conns++;
}

void server_unlink_conn(server_t *s, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->stats.conns--;
    if (c->congested) {
        c->congested = false;
        s->ncongested--;
    }
    if (c->paused) {
        conn_t **pp = &s->paused;
        while (*pp && *pp != c)
            pp = &(*pp)->paused_next;
        if (*pp) *pp = c->paused_next;
        c->paused = false;
    }
    if (c->dirty) {
        /* Rare (a close with output still queued): the dirty list is short, walk it. */
        conn_t **pp = &s->dirty;
        while (*pp && *pp != c)
            pp = &(*pp)->dirty_next;
        if (*pp) *pp = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
    }
}

int server_add_sub(server_t *s, struct nsub *sub)
{
    return sublist_insert(s->sublist, sub->subject, sub->subject_len, sub->queue, sub->queue_len,
                          sub);
}

void server_retire_sub(server_t *s, struct nsub *sub)
{
    if (sub->closed) return;
    sub->closed = true;
    sublist_remove(s->sublist, sub->subject, sub->subject_len, sub->queue, sub->queue_len, sub);
    sub->grave_next = s->graveyard;
    s->graveyard = sub;
}

/* Delivers to one subscription; returns 1 if delivered. */
static int deliver_one(server_t *s, conn_t *from, struct nsub *sub, const server_msg_t *msg)
{
    if (sub->closed) return 0;
    if (sub->conn) {
        if (sub->conn == from && !from->echo) return 0;
        if (sub->conn->closing) return 0;
        conn_deliver(sub->conn, sub, msg);
    } else {
        sub->fn(sub->fn_arg, msg);
    }
    s->stats.out_msgs++;
    s->stats.out_bytes += msg->data_len + msg->hdr_len;
    sub->delivered++;
    if (sub->max && sub->delivered >= sub->max) {
        if (sub->conn)
            conn_unsub(sub->conn, sub);
        else
            server_retire_sub(s, sub);
    }
    return 1;
}

static bool member_usable(conn_t *from, struct nsub *sub)
{
    if (sub->closed) return false;
    if (!sub->conn) return true;
    return !sub->conn->closing && !(sub->conn == from && !from->echo);
}

int server_route(server_t *s, conn_t *from, const server_msg_t *msg)
{
    sublist_result_t *r = sublist_match(s->sublist, msg->subject, msg->subject_len);
    if (!r) return -1;
    s->stats.in_msgs++;
    s->stats.in_bytes += msg->data_len + msg->hdr_len;
    int delivered = 0;
    for (size_t i = 0; i < r->nplain; i++)
        delivered += deliver_one(s, from, r->plain[i], msg);
    for (size_t q = 0; q < r->nqueues; q++) {
        const sublist_qgroup_t *g = &r->queues[q];
        /* A random member, skipping ones that cannot take it (closing, or no echo). */
        size_t start = g->n > 1 ? rng_next(s) % g->n : 0;
        for (size_t k = 0; k < g->n; k++) {
            struct nsub *sub = g->items[(start + k) % g->n];
            if (member_usable(from, sub)) {
                delivered += deliver_one(s, from, sub, msg);
                break;
            }
        }
    }
    sublist_result_release(r);
    return delivered;
}

server_sub_t *server_subscribe(server_t *s, const char *subject, const char *queue,
                               server_msg_fn fn, void *arg)
{
    size_t slen = strlen(subject);
    if (!subject_valid(subject, slen)) return NULL;
    if (queue && !subject_valid_queue(queue, strlen(queue))) return NULL;
    struct nsub *sub = xcalloc(1, sizeof *sub);
    sub->fn = fn;
    sub->fn_arg = arg;
    sub->subject = xstrndup(subject, slen);
    sub->subject_len = slen;
    if (queue) {
        sub->queue = xstrdup(queue);
        sub->queue_len = strlen(queue);
    }
    sub->sid = xstrdup("");
    if (server_add_sub(s, sub) != 0) {
        nsub_free(sub);
        return NULL;
    }
    sub->map_next = s->isubs;
    s->isubs = sub;
    return sub;
}

void server_unsubscribe(server_t *s, server_sub_t *sub)
{
    struct nsub **pp = &s->isubs;
    while (*pp && *pp != sub)
        pp = &(*pp)->map_next;
    if (*pp) *pp = sub->map_next;
    sub->map_next = NULL;
    server_retire_sub(s, sub);
}

int server_publish(server_t *s, const server_msg_t *msg)
{
    return server_route(s, NULL, msg) < 0 ? -1 : 0;
}

size_t server_interest(server_t *s, const char *subject, size_t len)
{
    sublist_result_t *r = sublist_match(s->sublist, subject, len);
    if (!r) return 0;
    size_t n = 0;
    for (size_t i = 0; i < r->nplain; i++)
        n += !((struct nsub *)r->plain[i])->closed;
    for (size_t q = 0; q < r->nqueues; q++)
        for (size_t i = 0; i < r->queues[q].n; i++)
            n += !((struct nsub *)r->queues[q].items[i])->closed;
    sublist_result_release(r);
    return n;
}
