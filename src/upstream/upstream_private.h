/* Private to the upstream module (upstream.c, upstream_queue.c). Call order: upstream.c (the
 * connection and the bus) -> upstream_queue.c (libnats' threads to the loop); the ways back up
 * are the callbacks upstream_new sets in the struct (on_event, on_sub_done) and the engine's
 * flush hook, which the queue runs on the loop. */
#ifndef STANZA_UPSTREAM_PRIVATE_H
#define STANZA_UPSTREAM_PRIVATE_H
#include <nats/nats.h>
#include <stdbool.h>
#include <uv.h>

#include "buf.h"
#include "list.h"
#include "upstream.h"

struct bus_sub {
    upstream_t *up;
    natsSubscription *ns;
    bus_msg_fn fn;
    void *arg;
    bool closed;      /* unsubscribed by the engine: queued messages are dropped */
    bool sync;        /* drained on the loop (upstream_queue.c); else libnats' thread + queue */
    list_node_t link; /* u->subs while open */
};

enum {
    UPSTREAM_EV_DISCONNECTED,
    UPSTREAM_EV_RECONNECTED,
    UPSTREAM_EV_CLOSED,
    UPSTREAM_EV_ERROR,
};

/* One queued item: a message for a subscription, a subscription's end, or an event. */
struct upstream_item {
    int kind;
    bus_sub_t *sub;
    natsMsg *msg;
    int ev;
    const char *text; /* static text (natsStatus_GetText) */
};

struct upstream {
    uv_loop_t *loop;
    const config_t *cfg;
    natsOptions *opts;
    natsConnection *nc;
    bool nats_open, connected, closed, shutting_down, publish_failed;
    char url[256];
    buf_t scratch;
    list_node_t subs; /* open subscriptions (bus_sub.link), in the order they were made */
    list_node_t dead; /* synchronous ones unsubscribed during a drain pass, freed after it */
    bool draining;
    bus_sub_t **snap; /* the drain pass's subscriptions */
    size_t snap_cap;
    natsMsg **spent; /* delivered messages, destroyed in batches (upstream_queue.c) */
    size_t nspent, spent_cap, spent_bytes;
    uv_timer_t spent_timer; /* destroys a batch that stopped growing */
    size_t spent_jobs;      /* batches being destroyed on the pool (under lock) */
    uv_cond_t spent_done;   /* spent_jobs went down */
    uv_check_t drain_check; /* drains the synchronous subscriptions after each poll */
    size_t nsubs;
    void (*flush_hook)(void *arg);
    void *flush_hook_arg;
    /* Set by upstream_new (upstream.c), run by the queue on the loop: a connection event; a
     * subscription's last callback done (free it). */
    void (*on_event)(upstream_t *u, int ev, const char *text);
    void (*on_sub_done)(upstream_t *u, bus_sub_t *sub);
    uv_work_t close_req; /* the flush before the close, off the loop (upstream_shutdown) */
    void (*shutdown_done)(void *arg);
    void *shutdown_arg;

    /* The queue (upstream_queue.c). Filled by libnats' threads under lock; the loop swaps the
     * filled array for its drained one and works without the lock. */
    uv_mutex_t lock;
    uv_cond_t room;
    struct upstream_item *items, *spare;
    size_t nitems, cap, spare_cap;
    size_t queued_bytes;
    bool queue_live; /* wake handle open: producers signal it */
    uv_async_t wake;
    uv_prepare_t flush_prepare;
};

void upstream_queue_init(upstream_t *u);
/* Opens the loop's handles (wake-up and the per-iteration flush hook). */
void upstream_queue_start(upstream_t *u);
/* From libnats' threads. */
void upstream_queue_msg(bus_sub_t *sub, natsMsg *m);
void upstream_queue_sub_done(bus_sub_t *sub);
void upstream_queue_event(upstream_t *u, int ev, const char *text);
/* A synchronous subscription the engine left: destroyed now, or after the drain pass. */
void upstream_queue_retire(upstream_t *u, bus_sub_t *sub);
/* Closes the loop's handles; items still coming are kept for upstream_queue_free. */
void upstream_queue_stop(upstream_t *u);
/* Waits until no batch of delivered messages is being destroyed on the pool: before
 * nats_CloseAndWait, which stops libnats' collector. */
void upstream_queue_join(upstream_t *u);
/* After libnats' threads are gone: drops what is left, ends subscriptions. */
void upstream_queue_free(upstream_t *u);

#endif
