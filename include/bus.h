/* bus: what the streaming engine needs of NATS, and all it uses of it. Subscribe a subject,
 * publish a message, ask whether a subject has a listener, and run a hook once per loop
 * iteration (where the engine commits its batch and sends what the batch released).
 *
 * Two implementations: the embedded NATS server (server_bus in server.h: in-process routing, no
 * socket) and a connection to an external NATS server or cluster (upstream_bus in upstream.h,
 * the `-ns` mode, through libnats). The engine sees only this table, so it runs unchanged on
 * either. Every call and every callback happens on the loop thread. */
#ifndef STANZA_BUS_H
#define STANZA_BUS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message as the bus carries it. Slices are valid only during the callback. */
typedef struct bus_msg {
    const char *subject;
    size_t subject_len;
    const char *reply; /* NULL when none */
    size_t reply_len;
    const char *hdr; /* NULL when none; the NATS/1.0 header block */
    size_t hdr_len;
    const char *data;
    size_t data_len;
    /* NATS's own answer to a request this side sent, on its reply subject: nobody listens on
     * the subject the request went to (an external NATS's "no responders" status; no data). */
    bool no_responders;
} bus_msg_t;

typedef void (*bus_msg_fn)(void *arg, const bus_msg_t *msg);
typedef void (*bus_sub_gone_fn)(void *arg, const char *subject, size_t len);

/* A subscription, opaque; each implementation defines it. */
typedef struct bus_sub bus_sub_t;

typedef struct bus_stats {
    uint64_t in_msgs, in_bytes;   /* published by clients and internal publishers */
    uint64_t out_msgs, out_bytes; /* delivered to subscriptions */
    uint64_t total_conns;         /* connections accepted (or made) since start */
    uint64_t slow_consumers;      /* clients closed for falling behind */
    uint64_t reconnects;          /* upstream only: reconnections to the NATS cluster */
    size_t conns;                 /* open now */
    size_t subs;                  /* subscriptions now */
} bus_stats_t;

/* bus_subscribe flags. REPLIES: the subscription takes replies to this side's own requests
 * (heartbeats, checks): it may get no_responders messages, and its messages need no order
 * relative to other subscriptions'. */
#define BUS_SUB_REPLIES 1u

/* Order: messages of one subscription come in the order NATS delivered them. Across
 * subscriptions, an implementation may hand over what arrived together subscription by
 * subscription, in the order the subscriptions were made (the upstream does: it drains each
 * one in turn once per loop pass). A subscriber that needs a request on one subject handled
 * after those another subscription got with it (a client's close after its publishes) makes the
 * later one's subscription last. */

/* Interest nobody can count: an external NATS server does not tell a client who listens. The
 * engine then assumes a listener and relies on its heartbeats and pings. */
#define BUS_INTEREST_UNKNOWN SIZE_MAX

typedef struct bus_ops {
    /* queue may be NULL; flags: BUS_SUB_*. Returns NULL for an invalid subject or queue. fn
     * may publish, subscribe or unsubscribe (itself included). */
    bus_sub_t *(*subscribe)(void *impl, const char *subject, const char *queue, unsigned flags,
                            bus_msg_fn fn, void *arg);
    void (*unsubscribe)(void *impl, bus_sub_t *sub);
    /* Returns 0, or STZ_EINVAL for an invalid subject; other STZ_E* when the message cannot be
     * sent now (upstream: disconnected and its buffer full). */
    int (*publish)(void *impl, const bus_msg_t *msg);
    /* Listeners a message on this literal subject would reach; 0 for an invalid subject;
     * BUS_INTEREST_UNKNOWN when the implementation cannot tell. */
    size_t (*interest)(void *impl, const char *subject, size_t len);
    /* Once per loop iteration, after input was handled and before output is flushed. One
     * hook; NULL clears it. */
    void (*set_flush_hook)(void *impl, void (*fn)(void *arg), void *arg);
    /* Run with a subscription's subject when its listener went away (a client's connection
     * closed); implementations that cannot see it never run it. One hook; NULL clears it. */
    void (*set_sub_gone_hook)(void *impl, bus_sub_gone_fn fn, void *arg);
    void (*stats)(const void *impl, bus_stats_t *out);
} bus_ops_t;

typedef struct bus {
    const bus_ops_t *ops;
    void *impl;
} bus_t;

static inline bus_sub_t *bus_subscribe(const bus_t *b, const char *subject, const char *queue,
                                       unsigned flags, bus_msg_fn fn, void *arg)
{
    return b->ops->subscribe(b->impl, subject, queue, flags, fn, arg);
}
static inline void bus_unsubscribe(const bus_t *b, bus_sub_t *sub)
{
    b->ops->unsubscribe(b->impl, sub);
}
static inline int bus_publish(const bus_t *b, const bus_msg_t *msg)
{
    return b->ops->publish(b->impl, msg);
}
static inline size_t bus_interest(const bus_t *b, const char *subject, size_t len)
{
    return b->ops->interest(b->impl, subject, len);
}
static inline void bus_set_flush_hook(const bus_t *b, void (*fn)(void *arg), void *arg)
{
    b->ops->set_flush_hook(b->impl, fn, arg);
}
static inline void bus_set_sub_gone_hook(const bus_t *b, bus_sub_gone_fn fn, void *arg)
{
    b->ops->set_sub_gone_hook(b->impl, fn, arg);
}
static inline void bus_stats(const bus_t *b, bus_stats_t *out)
{
    b->ops->stats(b->impl, out);
}

#endif
