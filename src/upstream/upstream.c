/* upstream: the engine's bus over a libnats connection (upstream.h). This file: the connection,
 * its options and life, and the bus table. upstream_queue.c carries messages and connection
 * events from libnats' threads to the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "subject.h"
#include "upstream_private.h"
#include "xalloc.h"

/* The adapter is a header of static functions; only its four callbacks and two set-up calls
 * are used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <nats/adapters/libuv.h>
#pragma GCC diagnostic pop

static void on_event(upstream_t *u, int ev, const char *text);
static void on_sub_done(upstream_t *u, bus_sub_t *sub);

upstream_t *upstream_new(uv_loop_t *loop, const config_t *cfg)
{
    upstream_t *u = xcalloc(1, sizeof *u);
    u->loop = loop;
    u->cfg = cfg;
    u->on_event = on_event;
    u->on_sub_done = on_sub_done;
    upstream_queue_init(u);
    buf_init(&u->scratch);
    list_init(&u->subs);
    list_init(&u->dead);
    return u;
}

static const char *nats_reason(natsStatus s)
{
    const char *last = nats_GetLastError(NULL);
    return last && *last ? last : natsStatus_GetText(s);
}

/* libnats' connection callbacks run on its threads: they only queue an event for the loop. */
static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    upstream_queue_event(closure, UPSTREAM_EV_DISCONNECTED, NULL);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    upstream_queue_event(closure, UPSTREAM_EV_RECONNECTED, NULL);
}

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    upstream_queue_event(closure, UPSTREAM_EV_CLOSED, NULL);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    upstream_queue_event(closure, UPSTREAM_EV_ERROR, natsStatus_GetText(err));
}

static natsStatus set_credentials(upstream_t *u, natsOptions *o)
{
    const config_t *c = u->cfg;
    natsStatus s = NATS_OK;
    if (c->user) s = natsOptions_SetUserInfo(o, c->user, c->pass ? c->pass : "");
    if (s == NATS_OK && c->token) s = natsOptions_SetToken(o, c->token);
    if (s == NATS_OK && c->nats_creds)
        s = natsOptions_SetUserCredentialsFromFiles(o, c->nats_creds, NULL);
    if (s == NATS_OK && c->nats_secure) s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && c->tls_client_cacert)
        s = natsOptions_LoadCATrustedCertificates(o, c->tls_client_cacert);
    if (s == NATS_OK && c->tls_client_cert)
        s = natsOptions_LoadCertificatesChain(o, c->tls_client_cert, c->tls_client_key);
    return s;
}

static natsStatus make_options(upstream_t *u, natsOptions **out)
{
    natsOptions *o = NULL;
    char name[256];
    snprintf(name, sizeof name, "_NSS-%s-general", u->cfg->cluster_id);
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, u->cfg->nats_server_url);
    if (s == NATS_OK) s = natsOptions_SetName(o, name);
    /* As NSS: reconnect forever, quickly; a cluster's other nodes are tried first. */
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, on_disconnected, u);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, on_reconnected, u);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(o, on_closed, u);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, on_async_error, u);
    /* Each publish asks the loop for a write at once, so what one loop pass produced leaves in
     * that pass, as with the embedded server; otherwise libnats' flusher thread holds it up to
     * 1 ms first (docs/benchmarks.md: sync publish p50 1,000 us over -ns, ~300-420 us with it). */
    if (s == NATS_OK) s = natsOptions_SetSendAsap(o, true);
    /* One delivery thread for every asynchronous subscription: one order into the queue. */
    if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(o, u->loop, natsLibuv_Attach, natsLibuv_Read, natsLibuv_Write,
                                     natsLibuv_Detach);
    if (s == NATS_OK) s = set_credentials(u, o);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

int upstream_start(upstream_t *u, char *err, size_t errlen)
{
    natsStatus s = nats_Open(-1);
    if (s == NATS_OK) s = nats_SetMessageDeliveryPoolSize(1);
    if (s != NATS_OK) {
        snprintf(err, errlen, "cannot initialise libnats: %s", nats_reason(s));
        return STZ_EIO;
    }
    u->nats_open = true;
    natsLibuv_Init();
    natsLibuv_SetThreadLocalLoop(u->loop);
    s = make_options(u, &u->opts);
    if (s != NATS_OK) {
        snprintf(err, errlen, "NATS options: %s", nats_reason(s));
        return STZ_ECONFIG;
    }
    upstream_queue_start(u);
    s = natsConnection_Connect(&u->nc, u->opts);
    if (s != NATS_OK) {
        snprintf(err, errlen, "cannot connect to NATS at %s: %s", u->cfg->nats_server_url,
                 nats_reason(s));
        return STZ_EIO;
    }
    u->connected = true;
    return 0;
}

struct sync_req {
    uv_work_t req;
    natsConnection *nc;
    int timeout_ms;
    natsStatus status;
    bool done;
};

static void sync_work(uv_work_t *req)
{
    struct sync_req *r = req->data;
    r->status = natsConnection_FlushTimeout(r->nc, r->timeout_ms);
}

static void sync_after(uv_work_t *req, int status)
{
    struct sync_req *r = req->data;
    if (status != 0) r->status = NATS_ERR;
    r->done = true;
}

int upstream_sync(upstream_t *u, int timeout_ms, char *err, size_t errlen)
{
    if (!u->nc) return STZ_EINVAL;
    /* A flush waits for the server's PONG, which the loop reads: it runs on a pool thread while
     * this runs the loop. */
    struct sync_req r = {.nc = u->nc, .timeout_ms = timeout_ms, .status = NATS_ERR};
    r.req.data = &r;
    if (uv_queue_work(u->loop, &r.req, sync_work, sync_after) != 0) return STZ_EIO;
    while (!r.done)
        uv_run(u->loop, UV_RUN_ONCE);
    if (r.status == NATS_OK) return 0;
    snprintf(err, errlen, "NATS did not confirm the subscriptions: %s", nats_reason(r.status));
    return STZ_EIO;
}

const char *upstream_url(upstream_t *u)
{
    if (!u->nc || natsConnection_GetConnectedUrl(u->nc, u->url, sizeof u->url) != NATS_OK)
        u->url[0] = '\0';
    return u->url;
}

/* ---- the bus ----------------------------------------------------------------------------- */

static void on_nats_msg(natsConnection *nc, natsSubscription *ns, natsMsg *m, void *closure)
{
    (void)nc;
    (void)ns;
    upstream_queue_msg(closure, m);
}

static void on_sub_complete(void *closure)
{
    upstream_queue_sub_done(closure);
}

/* Replies (BUS_SUB_REPLIES) take libnats' delivery thread and the queue: a "no responders"
 * status reaches them as a message with its subject. Every other subscription is synchronous,
 * drained on the loop after each read (upstream_queue.c): no thread between NATS and the engine
 * for the requests that carry the traffic. */
static natsStatus nats_subscribe(upstream_t *u, bus_sub_t *sub, const char *subject,
                                 const char *queue)
{
    natsStatus s;
    if (sub->sync) {
        s = queue ? natsConnection_QueueSubscribeSync(&sub->ns, u->nc, subject, queue)
                  : natsConnection_SubscribeSync(&sub->ns, u->nc, subject);
    } else {
        s = queue ? natsConnection_QueueSubscribe(&sub->ns, u->nc, subject, queue, on_nats_msg, sub)
                  : natsConnection_Subscribe(&sub->ns, u->nc, subject, on_nats_msg, sub);
        if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(sub->ns, on_sub_complete, sub);
    }
    /* The engine's own limits bound what it takes; libnats' defaults would drop its traffic at
     * 65,536 messages pending. A synchronous one holds at most one read's messages (drained
     * after each); the queue bounds the others (upstream_queue.c). */
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub->ns, -1, -1);
    return s;
}

static bus_sub_t *up_subscribe(void *impl, const char *subject, const char *queue, unsigned flags,
                               bus_msg_fn fn, void *arg)
{
    upstream_t *u = impl;
    if (!u->nc || !subject_valid(subject, strlen(subject))) return NULL;
    if (queue && !subject_valid_queue(queue, strlen(queue))) return NULL;
    bus_sub_t *sub = xcalloc(1, sizeof *sub);
    sub->up = u;
    sub->fn = fn;
    sub->arg = arg;
    sub->sync = !(flags & BUS_SUB_REPLIES);
    natsStatus s = nats_subscribe(u, sub, subject, queue);
    if (s != NATS_OK) {
        LOG_E("NATS: cannot subscribe %s: %s", subject, nats_reason(s));
        if (sub->ns) {
            natsSubscription_Destroy(sub->ns);
        }
        free(sub);
        return NULL;
    }
    list_push_back(&u->subs, &sub->link);
    u->nsubs++;
    return sub;
}

static void up_unsubscribe(void *impl, bus_sub_t *sub)
{
    upstream_t *u = impl;
    if (!sub || sub->closed) return;
    sub->closed = true; /* messages still queued for it are dropped */
    list_remove(&sub->link);
    u->nsubs--;
    natsSubscription_Unsubscribe(sub->ns);
    /* A synchronous one has no callback to wait for: freed now, or after the drain pass that
     * may be walking it. An asynchronous one when libnats reports its last callback done
     * (on_sub_complete, via the queue). */
    if (sub->sync) upstream_queue_retire(u, sub);
}

/* libnats wants NUL-terminated subjects; the bus's are slices. */
static const char *terminated(buf_t *b, const char *p, size_t n)
{
    buf_append(b, p, n);
    buf_append(b, "", 1);
    return (const char *)b->data + b->len - n - 1;
}

static int up_publish(void *impl, const bus_msg_t *m)
{
    upstream_t *u = impl;
    if (!subject_valid_literal(m->subject, m->subject_len)) return STZ_EINVAL;
    /* The engine sends no headers (STAN has none); a header block would need parsing into
     * libnats' header API for nothing. */
    if (m->hdr || !u->nc) return STZ_EINVAL;
    buf_reset(&u->scratch);
    buf_reserve(&u->scratch, m->subject_len + m->reply_len + 2);
    const char *subj = terminated(&u->scratch, m->subject, m->subject_len);
    const char *reply = m->reply ? terminated(&u->scratch, m->reply, m->reply_len) : NULL;
    natsStatus s =
        reply ? natsConnection_PublishRequest(u->nc, subj, reply, m->data, (int)m->data_len)
              : natsConnection_Publish(u->nc, subj, m->data, (int)m->data_len);
    if (s == NATS_OK) return 0;
    if (!u->publish_failed) LOG_W("NATS: publish to %s failed: %s", subj, nats_reason(s));
    u->publish_failed = true;
    return STZ_EIO;
}

static size_t up_interest(void *impl, const char *subject, size_t len)
{
    (void)impl;
    return subject_valid_literal(subject, len) ? BUS_INTEREST_UNKNOWN : 0;
}

static void up_flush_hook(void *impl, void (*fn)(void *arg), void *arg)
{
    upstream_t *u = impl;
    u->flush_hook = fn;
    u->flush_hook_arg = arg;
}

static void up_sub_gone_hook(void *impl, bus_sub_gone_fn fn, void *arg)
{
    /* NATS does not tell a client that another client's subscription went away; the engine's
     * heartbeats find dead clients instead. */
    (void)impl;
    (void)fn;
    (void)arg;
}

static void up_stats(const void *impl, bus_stats_t *out)
{
    const upstream_t *u = impl;
    memset(out, 0, sizeof *out);
    natsStatistics *st = NULL;
    if (u->nc && natsStatistics_Create(&st) == NATS_OK &&
        natsConnection_GetStats(u->nc, st) == NATS_OK)
        natsStatistics_GetCounts(st, &out->in_msgs, &out->in_bytes, &out->out_msgs, &out->out_bytes,
                                 &out->reconnects);
    natsStatistics_Destroy(st);
    out->conns = u->connected ? 1 : 0;
    out->total_conns = u->nc ? 1 + out->reconnects : 0;
    out->subs = u->nsubs;
}

static const bus_ops_t upstream_bus_ops = {
    .subscribe = up_subscribe,
    .unsubscribe = up_unsubscribe,
    .publish = up_publish,
    .interest = up_interest,
    .set_flush_hook = up_flush_hook,
    .set_sub_gone_hook = up_sub_gone_hook,
    .stats = up_stats,
};

void upstream_bus(upstream_t *u, bus_t *out)
{
    out->ops = &upstream_bus_ops;
    out->impl = u;
}

/* ---- end --------------------------------------------------------------------------------- */

/* The flush: on a pool thread, since it waits for a PONG only the loop can read. */
static void close_work(uv_work_t *req)
{
    upstream_t *u = req->data;
    natsConnection_FlushTimeout(u->nc, 2000);
}

/* The close itself on the loop: libnats closes the socket and detaches the adapter's poll
 * handle in one call, so the loop never polls a closed descriptor (a close from another thread
 * left the handle polling it, and libuv aborts on that). With the buffer flushed, the close
 * does not wait for a PONG either. */
static void close_after(uv_work_t *req, int status)
{
    (void)status;
    upstream_t *u = req->data;
    natsConnection_Close(u->nc);
}

void upstream_shutdown(upstream_t *u, void (*done)(void *arg), void *arg)
{
    if (u->shutting_down) return;
    u->shutting_down = true;
    u->shutdown_done = done;
    u->shutdown_arg = arg;
    if (!u->nc || u->closed) {
        upstream_queue_stop(u);
        done(arg);
        return;
    }
    /* Flush what is buffered (the last PubAcks), then close; the closed callback comes back
     * through the queue (upstream_on_event), which then calls done. */
    u->close_req.data = u;
    if (uv_queue_work(u->loop, &u->close_req, close_work, close_after) != 0)
        natsConnection_Close(u->nc); /* not flushed, but closed */
}

static void on_event(upstream_t *u, int ev, const char *text)
{
    switch (ev) {
    case UPSTREAM_EV_DISCONNECTED:
        u->connected = false;
        if (!u->shutting_down) LOG_W("NATS: disconnected; reconnecting");
        break;
    case UPSTREAM_EV_RECONNECTED:
        u->connected = true;
        u->publish_failed = false;
        LOG_I("NATS: reconnected to %s", upstream_url(u));
        break;
    case UPSTREAM_EV_ERROR:
        LOG_E("NATS: asynchronous error: %s", text ? text : "?");
        break;
    case UPSTREAM_EV_CLOSED:
        u->connected = false;
        u->closed = true;
        if (!u->shutting_down) LOG_E("NATS: connection closed");
        if (u->shutting_down && u->shutdown_done) {
            void (*done)(void *) = u->shutdown_done;
            u->shutdown_done = NULL;
            upstream_queue_stop(u);
            done(u->shutdown_arg);
        }
        break;
    }
}

static void on_sub_done(upstream_t *u, bus_sub_t *sub)
{
    if (!sub->closed) { /* closed with the connection, not by the engine */
        sub->closed = true;
        list_remove(&sub->link);
        u->nsubs--;
    }
    natsSubscription_Destroy(sub->ns);
    free(sub);
}

void upstream_free(upstream_t *u)
{
    if (!u) return;
    char err[256];
    /* Without a shutdown first (a failed start), what was published (the start-up check's
     * close request) is still in libnats' buffer: a round trip sends it. */
    if (u->nc && !u->closed && upstream_sync(u, 1000, err, sizeof err) != 0) LOG_W("%s", err);
    if (u->nc) natsConnection_Destroy(u->nc);
    u->nc = NULL;
    /* Without a shutdown first (a failed start), the queue's handles are still open: they live
     * in *u, so their close callbacks must run before it is freed. */
    upstream_queue_stop(u);
    uv_run(u->loop, UV_RUN_NOWAIT);
    natsOptions_Destroy(u->opts);
    upstream_queue_join(u); /* no natsMsg_Destroy may follow the collector's end */
    /* Joins libnats' threads: after this no callback can reach the queue. */
    if (u->nats_open) nats_CloseAndWait(5000);
    upstream_queue_free(u); /* subscriptions whose end was queued */
    list_node_t *n;
    while ((n = list_pop_front(&u->subs))) {
        bus_sub_t *sub = LIST_ITEM(n, bus_sub_t, link);
        natsSubscription_Destroy(sub->ns);
        free(sub);
    }
    buf_free(&u->scratch);
    free(u);
}
