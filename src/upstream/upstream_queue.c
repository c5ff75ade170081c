/* upstream_queue: messages and connection events from libnats to the loop.
 *
 * Synchronous subscriptions (all but the engine's reply inboxes): libnats parses what the loop
 * read (its libuv adapter calls it in the poll phase) into their pending lists; a uv_check
 * handle, right after the poll, drains them one by one in the order they were made and hands
 * each message to the engine. No thread is involved, and a pass holds at most one read's worth.
 *
 * The rest (reply inboxes, and connection events):
 * Producers (libnats' delivery thread, its connection-event thread) append under a mutex and
 * wake the loop with a uv_async; the loop swaps the filled array for an empty one and handles
 * the items without the lock, in arrival order. Messages wait for room when the queue holds
 * UPSTREAM_QUEUE_MAX_MSGS messages or UPSTREAM_QUEUE_MAX_BYTES bytes: the engine sets the pace,
 * and memory stays bounded. Events and subscription ends never wait. */
#include <stdlib.h>
#include <string.h>

#include "upstream_private.h"
#include "xalloc.h"

#define UPSTREAM_QUEUE_MAX_MSGS 65536
#define UPSTREAM_QUEUE_MAX_BYTES (64u << 20)
/* Delivered messages are destroyed in batches, on the libuv pool: natsMsg_Destroy hands each to
 * libnats' collector thread, and waking it from the loop every pass cost a context switch every
 * few messages, the loop preempted on a busy core. A batch goes when it reaches either bound, or
 * SPENT_MAX_MS after its first message; with SPENT_MAX_JOBS batches already on the pool the loop
 * destroys the next itself, so memory stays bounded when the pool is busy. */
#define SPENT_MAX_MSGS 8192
#define SPENT_MAX_BYTES (8u << 20)
#define SPENT_MAX_MS 10
#define SPENT_MAX_JOBS 4

enum { ITEM_MSG, ITEM_SUB_DONE, ITEM_EVENT };

static void on_wake(uv_async_t *h);
static void on_prepare(uv_prepare_t *h);
static void on_drain(uv_check_t *h);
static void on_spent_timer(uv_timer_t *h);

void upstream_queue_init(upstream_t *u)
{
    if (uv_mutex_init(&u->lock) != 0 || uv_cond_init(&u->room) != 0 ||
        uv_cond_init(&u->spent_done) != 0)
        abort();
}

void upstream_queue_start(upstream_t *u)
{
    uv_async_init(u->loop, &u->wake, on_wake);
    u->wake.data = u;
    uv_unref((uv_handle_t *)&u->wake);
    uv_prepare_init(u->loop, &u->flush_prepare);
    u->flush_prepare.data = u;
    uv_prepare_start(&u->flush_prepare, on_prepare);
    uv_unref((uv_handle_t *)&u->flush_prepare);
    uv_check_init(u->loop, &u->drain_check);
    u->drain_check.data = u;
    uv_check_start(&u->drain_check, on_drain);
    uv_unref((uv_handle_t *)&u->drain_check);
    uv_timer_init(u->loop, &u->spent_timer);
    u->spent_timer.data = u;
    uv_unref((uv_handle_t *)&u->spent_timer);
    uv_mutex_lock(&u->lock);
    u->queue_live = true;
    uv_mutex_unlock(&u->lock);
}

static size_t msg_size(natsMsg *m)
{
    return (size_t)natsMsg_GetDataLength(m) + 128;
}

/* Appends with the lock held. */
static void push(upstream_t *u, const struct upstream_item *it)
{
    if (u->nitems == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 256;
        u->items = xrealloc(u->items, u->cap * sizeof *u->items);
    }
    u->items[u->nitems++] = *it;
}

static void enqueue(upstream_t *u, const struct upstream_item *it)
{
    uv_mutex_lock(&u->lock);
    /* Only messages wait: events and subscription ends are few, and must not block. */
    if (it->kind == ITEM_MSG) {
        while (u->queue_live && (u->nitems >= UPSTREAM_QUEUE_MAX_MSGS ||
                                 u->queued_bytes >= UPSTREAM_QUEUE_MAX_BYTES))
            uv_cond_wait(&u->room, &u->lock);
        u->queued_bytes += msg_size(it->msg);
    }
    push(u, it);
    bool live = u->queue_live;
    uv_mutex_unlock(&u->lock);
    if (live) uv_async_send(&u->wake);
}

void upstream_queue_msg(bus_sub_t *sub, natsMsg *m)
{
    struct upstream_item it = {.kind = ITEM_MSG, .sub = sub, .msg = m};
    enqueue(sub->up, &it);
}

void upstream_queue_sub_done(bus_sub_t *sub)
{
    struct upstream_item it = {.kind = ITEM_SUB_DONE, .sub = sub};
    enqueue(sub->up, &it);
}

void upstream_queue_event(upstream_t *u, int ev, const char *text)
{
    struct upstream_item it = {.kind = ITEM_EVENT, .ev = ev, .text = text};
    enqueue(u, &it);
}

static void deliver(bus_sub_t *sub, natsMsg *m)
{
    if (sub->closed) return;
    const char *subj = natsMsg_GetSubject(m);
    const char *reply = natsMsg_GetReply(m);
    bus_msg_t bm = {.subject = subj,
                    .subject_len = strlen(subj),
                    .reply = reply && *reply ? reply : NULL,
                    .reply_len = reply ? strlen(reply) : 0,
                    .data = natsMsg_GetData(m),
                    .data_len = (size_t)natsMsg_GetDataLength(m),
                    .no_responders = natsMsg_IsNoResponders(m)};
    if (!bm.data) bm.data = "";
    sub->fn(sub->arg, &bm);
}

/* Handles one item on the loop (live) or at the end (dropping messages). */
static void handle(upstream_t *u, struct upstream_item *it, bool live)
{
    switch (it->kind) {
    case ITEM_MSG:
        if (live) deliver(it->sub, it->msg);
        natsMsg_Destroy(it->msg);
        break;
    case ITEM_SUB_DONE:
        u->on_sub_done(u, it->sub);
        break;
    case ITEM_EVENT:
        if (live) u->on_event(u, it->ev, it->text);
        break;
    }
}

static void on_wake(uv_async_t *h)
{
    upstream_t *u = h->data;
    uv_mutex_lock(&u->lock);
    struct upstream_item *items = u->items;
    size_t n = u->nitems, cap = u->cap;
    u->items = u->spare;
    u->cap = u->spare_cap;
    u->nitems = 0;
    u->queued_bytes = 0;
    uv_cond_broadcast(&u->room);
    uv_mutex_unlock(&u->lock);
    for (size_t i = 0; i < n; i++)
        handle(u, &items[i], u->queue_live);
    u->spare = items;
    u->spare_cap = cap;
}

/* ---- synchronous subscriptions -------------------------------------------------------- */

static void drain_one(upstream_t *u, bus_sub_t *sub)
{
    int msgs = 0;
    if (natsSubscription_GetPending(sub->ns, &msgs, NULL) != NATS_OK) return;
    for (; msgs > 0 && !sub->closed; msgs--) {
        natsMsg *m = NULL;
        /* Timeout 0: what is pending, never a wait. */
        if (natsSubscription_NextMsg(&m, sub->ns, 0) != NATS_OK) return;
        deliver(sub, m);
        if (u->nspent == u->spent_cap) {
            u->spent_cap = u->spent_cap ? u->spent_cap * 2 : 256;
            u->spent = xrealloc(u->spent, u->spent_cap * sizeof *u->spent);
        }
        u->spent[u->nspent++] = m;
        u->spent_bytes += msg_size(m);
    }
}

struct spent_job {
    uv_work_t req;
    upstream_t *u;
    natsMsg **msgs;
    size_t n;
};

static void destroy_msgs(natsMsg **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        natsMsg_Destroy(msgs[i]);
}

/* On the pool. The count goes down here, not in the after-callback, so that
 * upstream_queue_join needs no loop to run. */
static void spent_job_run(uv_work_t *req)
{
    struct spent_job *j = req->data;
    destroy_msgs(j->msgs, j->n);
    upstream_t *u = j->u;
    uv_mutex_lock(&u->lock);
    u->spent_jobs--;
    uv_cond_broadcast(&u->spent_done);
    uv_mutex_unlock(&u->lock);
}

/* On the loop; touches only the job (the upstream may be gone). */
static void spent_job_done(uv_work_t *req, int status)
{
    (void)status;
    struct spent_job *j = req->data;
    free(j->msgs);
    free(j);
}

/* Hands the batch to the pool, or destroys it here when the pool has enough of them. */
static void destroy_spent(upstream_t *u, bool on_pool)
{
    if (u->nspent == 0) return;
    if (on_pool) {
        uv_mutex_lock(&u->lock);
        on_pool = u->spent_jobs < SPENT_MAX_JOBS;
        if (on_pool) u->spent_jobs++;
        uv_mutex_unlock(&u->lock);
    }
    if (!on_pool) {
        destroy_msgs(u->spent, u->nspent);
    } else {
        struct spent_job *j = xmalloc(sizeof *j);
        *j = (struct spent_job){.u = u, .msgs = u->spent, .n = u->nspent};
        j->req.data = j;
        u->spent = NULL;
        u->spent_cap = 0;
        if (uv_queue_work(u->loop, &j->req, spent_job_run, spent_job_done) != 0) abort();
    }
    u->nspent = 0;
    u->spent_bytes = 0;
}

void upstream_queue_join(upstream_t *u)
{
    uv_mutex_lock(&u->lock);
    while (u->spent_jobs > 0)
        uv_cond_wait(&u->spent_done, &u->lock);
    uv_mutex_unlock(&u->lock);
}

static void on_spent_timer(uv_timer_t *h)
{
    destroy_spent(h->data, true);
}

static void free_sub(bus_sub_t *sub)
{
    natsSubscription_Destroy(sub->ns);
    free(sub);
}

static void on_drain(uv_check_t *h)
{
    upstream_t *u = h->data;
    /* A snapshot: handlers may subscribe and unsubscribe while the pass runs. */
    size_t n = 0;
    list_node_t *node;
    list_foreach (node, &u->subs) {
        bus_sub_t *sub = LIST_ITEM(node, bus_sub_t, link);
        if (!sub->sync) continue;
        if (n == u->snap_cap) {
            u->snap_cap = u->snap_cap ? u->snap_cap * 2 : 16;
            u->snap = xrealloc(u->snap, u->snap_cap * sizeof *u->snap);
        }
        u->snap[n++] = sub;
    }
    u->draining = true;
    for (size_t i = 0; i < n; i++)
        if (!u->snap[i]->closed) drain_one(u, u->snap[i]);
    u->draining = false;
    if (u->nspent >= SPENT_MAX_MSGS || u->spent_bytes >= SPENT_MAX_BYTES) {
        uv_timer_stop(&u->spent_timer);
        destroy_spent(u, true);
    } else if (u->nspent > 0 && !uv_is_active((uv_handle_t *)&u->spent_timer)) {
        uv_timer_start(&u->spent_timer, on_spent_timer, SPENT_MAX_MS, 0);
    }
    while ((node = list_pop_front(&u->dead)))
        free_sub(LIST_ITEM(node, bus_sub_t, link));
}

void upstream_queue_retire(upstream_t *u, bus_sub_t *sub)
{
    if (u->draining)
        list_push_back(&u->dead, &sub->link);
    else
        free_sub(sub);
}

static void on_prepare(uv_prepare_t *h)
{
    upstream_t *u = h->data;
    if (u->flush_hook) u->flush_hook(u->flush_hook_arg);
}

void upstream_queue_stop(upstream_t *u)
{
    uv_mutex_lock(&u->lock);
    bool was = u->queue_live;
    u->queue_live = false;
    uv_cond_broadcast(&u->room);
    uv_mutex_unlock(&u->lock);
    if (!was) return;
    uv_close((uv_handle_t *)&u->wake, NULL);
    uv_prepare_stop(&u->flush_prepare);
    uv_close((uv_handle_t *)&u->flush_prepare, NULL);
    uv_check_stop(&u->drain_check);
    uv_close((uv_handle_t *)&u->drain_check, NULL);
    /* While libnats' collector still runs (before nats_CloseAndWait). */
    destroy_spent(u, false);
    uv_timer_stop(&u->spent_timer);
    uv_close((uv_handle_t *)&u->spent_timer, NULL);
}

void upstream_queue_free(upstream_t *u)
{
    for (size_t i = 0; i < u->nitems; i++)
        handle(u, &u->items[i], false);
    free(u->items);
    free(u->spare);
    free(u->snap);
    free(u->spent);
    u->items = u->spare = NULL;
    u->nitems = u->cap = u->spare_cap = 0;
    uv_cond_destroy(&u->room);
    uv_cond_destroy(&u->spent_done);
    uv_mutex_destroy(&u->lock);
}
