/* server_loop: the server's life on the loop: creation, the listener, the per-iteration flush
 * (the flush hook, then every dirty connection, then resuming paused readers, then freeing the
 * graveyard), the once-a-second write deadline, and shutdown. The top of the server module:
 * it calls into the connections, and nothing below calls it except through the two callbacks
 * it sets here (server_private.h). */
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "server_private.h"
#include "xalloc.h"

static void make_id(server_t *s)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    s->id[0] = 'N';
    for (size_t i = 1; i < sizeof s->id - 1; i++)
        s->id[i] = alphabet[server_rng_next(s) % 32];
    s->id[sizeof s->id - 1] = '\0';
}

static void maybe_shutdown_done(server_t *s)
{
    if (!s->shutting_down || s->closing_handles > 0 || !list_empty(&s->conns)) return;
    void (*done)(void *) = s->shutdown_done;
    s->shutdown_done = NULL;
    route_bury(s);
    if (done) done(s->shutdown_arg);
}

server_t *server_new(uv_loop_t *loop, const config_t *cfg)
{
    server_t *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->sublist = sublist_new();
    int64_t now = clock_wall_ns();
    s->rng = (uint32_t)((uint64_t)now ^ ((uint64_t)now >> 30) ^ ((uint32_t)getpid() << 16)) | 1u;
    make_id(s);
    s->next_cid = 1;
    list_init(&s->conns);
    list_init(&s->dirty);
    list_init(&s->paused);
    list_init(&s->graveyard);
    list_init(&s->isubs);
    s->close_conn = conn_close;
    s->conn_gone = maybe_shutdown_done;
    if (cfg->cluster_listen) s->cluster = cluster_new(s);
    return s;
}

static void on_stall_timer(uv_timer_t *t)
{
    (void)t; /* only wakes the loop; the prepare hook does the resuming */
}

/* Resumes paused readers: budget pauses always, stalled publishers once the congestion is gone
 * or their stall ran out. */
static void resume_paused(server_t *s)
{
    uint64_t now = clock_mono_ms();
    bool stalls_left = false;
    list_node_t *n, *next;
    list_foreach_safe (n, next, &s->paused) {
        conn_t *c = LIST_ITEM(n, conn_t, paused_link);
        if (c->stall_until && s->ncongested > 0 && now < c->stall_until) {
            stalls_left = true;
            continue;
        }
        list_remove(n);
        conn_resume(c);
    }
    if (stalls_left) uv_timer_start(&s->stall_timer, on_stall_timer, 1, 0);
}

static void on_flush_prepare(uv_prepare_t *h)
{
    server_t *s = h->data;
    if (s->flush_hook) s->flush_hook(s->flush_hook_arg);
    list_node_t *n;
    while ((n = list_pop_front(&s->dirty)))
        conn_flush(LIST_ITEM(n, conn_t, dirty_link));
    resume_paused(s);
    route_bury(s);
}

static void on_tick(uv_timer_t *t)
{
    server_t *s = t->data;
    uint64_t now = clock_mono_ms();
    uint64_t deadline = (uint64_t)s->cfg->write_deadline_ms;
    list_node_t *n, *next;
    list_foreach_safe (n, next, &s->conns) {
        conn_t *c = LIST_ITEM(n, conn_t, link);
        if (deadline && stream_write_stalled(&c->st, now, deadline)) {
            LOG_W("cid:%llu - Slow Consumer Detected: write deadline of %llums exceeded",
                  (unsigned long long)c->cid, (unsigned long long)deadline);
            s->stats.slow_consumers++;
            conn_close(c, CLOSE_SLOW_CONSUMER);
        }
    }
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

static int listen_on(server_t *s, const struct sockaddr *addr, char *err, size_t errlen)
{
    const config_t *cfg = s->cfg;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = true;
    int rc = uv_tcp_bind(&s->listener, addr, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->host, cfg->port, uv_strerror(rc));
        return rc;
    }
    s->port = server_bound_port(&s->listener);
    return 0;
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
    /* Routes first: once the client port accepts, the server is whole (scripts and tests take
     * the client port as the sign it is up). A failure is undone here, so that the daemon's
     * loop can end: nothing else started yet. */
    if (s->cluster && (rc = cluster_listen(s, err, errlen)) != 0) {
        cluster_shutdown(s);
        return rc;
    }
    rc = listen_on(s, (const struct sockaddr *)&addr, err, errlen);
    if (rc) {
        if (s->cluster) cluster_shutdown(s);
        return rc;
    }
    if (s->cluster) cluster_connect(s); /* its URLs name the client port, now bound */
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

static void on_server_handle_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    s->closing_handles--;
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
    if (s->cluster) cluster_shutdown(s); /* before the routes close: no reconnecting */
    /* Each connection gets what is already queued for it, then closes. */
    list_node_t *n, *next;
    list_foreach_safe (n, next, &s->conns)
        conn_close(LIST_ITEM(n, conn_t, link), CLOSE_SHUTDOWN);
    maybe_shutdown_done(s);
}

void server_free(server_t *s)
{
    if (!s) return;
    list_node_t *n;
    while ((n = list_first(&s->isubs)))
        server_unsubscribe(s, LIST_ITEM(n, struct nsub, link));
    route_bury(s);
    cluster_free(s);
    sublist_free(s->sublist);
    tls_ctx_free(s->tls);
    free(s);
}
