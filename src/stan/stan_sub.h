/* stan_sub: the subscription object: its lifetime (created, resumed, offline, deleted, freed
 * once nothing refers to it), its record and unacked rows in the store, its place on its
 * channel, client and queue group, the ready list (subscriptions with something to deliver) and
 * the AckWait timer. Request handling is in stan_subscribe.c, delivery in stan_deliver.c. */
#ifndef STANZA_STAN_SUB_H
#define STANZA_STAN_SUB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "list.h"
#include "stan_ctx.h"
#include "stan_pending.h"

typedef struct stan_qgroup {
    char *key; /* "name" or "durable:name" (stan_sub_qgroup_key) */
    stan_channel_t *ch;
    uint64_t last_sent;
    uint64_t last_sent_cum;
    list_node_t members; /* stan_sub_t.qg_link */
    size_t nmembers;
    bool durable;
    uint32_t rr;
} stan_qgroup_t;

struct stan_sub {
    stan_t *st;
    uint64_t id;
    stan_channel_t *ch;
    stan_client_t *client; /* NULL while offline (a durable whose client left) */
    char *client_id;
    char *inbox;
    char *ack_inbox;
    char *durable; /* NULL if not durable */
    char *qgroup;  /* as the client sent it; NULL if not in a group */
    stan_qgroup_t *qg;
    int32_t max_inflight;
    int32_t ack_wait_s;
    uint64_t last_sent;         /* for a queue member, the group's last_sent is what counts */
    uint64_t last_sent_cum;     /* the channel's running payload total at last_sent */
    uint64_t redelivered_total; /* redeliveries sent (since start; plus those recovered) */
    uint64_t dead_total;        /* messages it dead-lettered (persisted; stan_dead.c) */
    bool is_durable;
    bool is_offline;
    bool ready;       /* the subscription response went out: deliveries may flow */
    bool dirty;       /* record to rewrite in the next batch */
    bool deleted;     /* removed; freed once nothing refers to it */
    bool is_paused;   /* deliveries and redeliveries held by an operator (persisted) */
    stan_pset_t pend; /* delivered, not acked yet */

    uv_timer_t ack_timer;
    int refs; /* the channel's list, the ready and dirty lists, commits waiting */

    list_node_t ch_link;    /* channel's subscriptions */
    list_node_t cl_link;    /* client's subscriptions */
    list_node_t qg_link;    /* group members */
    list_node_t ready_link; /* stan.ready */

    /* A queue member's hand-over (stan_handover.c): in stan.members_by_inbox while in a group;
     * on stan.grace while its grace runs, until grace_due_ms, for the reasons in grace_why. */
    hmap_node_t inbox_node;
    list_node_t grace_link;
    uint64_t grace_due_ms;
    unsigned grace_why;
};

#define STAN_SUB_OF(n, member) LIST_ITEM(n, stan_sub_t, member)

/* The member after m in its queue group (NULL: the last). */
static inline stan_sub_t *stan_sub_next_member(const stan_sub_t *m)
{
    list_node_t *n = list_next(&m->qg->members, &m->qg_link);
    return n ? STAN_SUB_OF(n, qg_link) : NULL;
}

/* A new subscription on ch (its id and, when recovered, its ack inbox; NULL: a new one). */
stan_sub_t *stan_sub_new(stan_t *st, uint64_t id, stan_channel_t *ch, const char *client_id,
                         const char *ack_inbox);
/* A resumed durable gets a new ack inbox. */
void stan_sub_renew_ack_inbox(stan_t *st, stan_sub_t *s);
stan_sub_t *stan_sub_by_ack(stan_t *st, const char *inbox, size_t len);
/* The subscription of that id (NULL: none, or deleted). */
stan_sub_t *stan_sub_by_id(stan_t *st, uint64_t id);
/* Links s to its (online) client, whose subscription list is cl_subs. */
void stan_sub_attach(stan_sub_t *s, stan_client_t *cl, list_node_t *cl_subs);
void stan_sub_detach(stan_sub_t *s);

/* "name", or "durable:name" for a durable group (a durable queue name cannot contain ':', so
 * the two never collide). Caller frees. */
char *stan_sub_qgroup_key(const char *durable, const char *qgroup);
/* The group of that key on ch (created if missing). */
stan_qgroup_t *stan_sub_qgroup_get(stan_channel_t *ch, const char *key, bool durable);
void stan_sub_qgroup_join(stan_qgroup_t *g, stan_sub_t *s);
/* Whether the group is paused: its members are (a member joining it is paused too). */
bool stan_sub_qgroup_paused(const stan_qgroup_t *g);
/* A plain durable by client and name. */
stan_sub_t *stan_sub_durable_find(stan_channel_t *ch, const char *client_id, const char *durable);
void stan_sub_durable_add(stan_sub_t *s);

/* Its record (and unacked rows) go with the next batch. */
void stan_sub_mark_dirty(stan_t *st, stan_sub_t *s);
/* It has something to deliver: it joins the ready list (served in turn). */
void stan_sub_mark_ready(stan_t *st, stan_sub_t *s);
/* What a pending-set operation returned (STAN_PSET_*), acted upon (inline: once per delivery). */
static inline void stan_sub_pset_changed(stan_t *st, stan_sub_t *s, unsigned changed)
{
    if (changed & STAN_PSET_DIRTY) stan_sub_mark_dirty(st, s);
    if (changed & STAN_PSET_READY) stan_sub_mark_ready(st, s);
}
/* Moves from's unacked messages to to, due at once. */
void stan_sub_transfer(stan_t *st, stan_sub_t *from, stan_sub_t *to);
/* fn for every subscription of every channel (offline durables included). */
void stan_sub_foreach(stan_t *st, void (*fn)(stan_t *st, stan_sub_t *s, void *arg), void *arg);
/* Stages the records and rows of every dirty subscription. */
void stan_sub_write_dirty(stan_t *st);
/* A batch failed: rows believed on their way to disk are not; write them all again. */
void stan_sub_store_failed(stan_t *st);
/* The channel committed new messages: its online subscriptions are ready. */
void stan_sub_channel_has_new(stan_t *st, stan_channel_t *ch);
/* (Re)arms the AckWait timer for the first unacked message due (stops it if none). */
void stan_sub_arm_timer(stan_sub_t *s);
/* Looks again in ms (its inbox had nobody behind it). */
void stan_sub_retry_in(stan_sub_t *s, uint64_t ms);
/* Whether anyone listens on its inbox right now. After a server restart, or while a client's
 * NATS connection reconnects (or has closed), nobody does: delivery then holds its messages
 * (not sent into the void; the once-a-second tick tries again) and hand-over skips it. */
static inline bool stan_sub_inbox_alive(stan_t *st, const stan_sub_t *s)
{
    return bus_interest(&st->bus, s->inbox, strlen(s->inbox)) > 0;
}
void stan_sub_unref(stan_t *st, stan_sub_t *s);

/* Stages the removal of subscription id's record and unacked rows from the store, for a caller
 * whose memory keeps the subscription until the batch commits (plain deletes, not replayed). */
void stan_sub_stage_delete(stan_t *st, uint64_t id);
/* Removes a subscription for good: memory, routing, and (with the batch) its record and rows,
 * whose deletes are staged again after a failed batch until one commits (store_del_redo). */
void stan_sub_delete(stan_t *st, stan_sub_t *s);
/* It stops being served: deleted, or (durables on close) kept offline. */
void stan_sub_leave(stan_t *st, stan_sub_t *s, bool close_only);
/* A client went away: the subscriptions on its list are removed, durables go offline. */
void stan_sub_client_gone(stan_t *st, list_node_t *cl_subs, bool unsubscribe);
/* A recovered unacked row. */
int stan_sub_restore_pending(stan_t *st, uint64_t sub_id, uint64_t seq, uint32_t count);
/* Stops every subscription's ack timer (an engine that only shows what the store holds). */
void stan_sub_quiet_all(stan_t *st);
void stan_sub_free_all(stan_t *st);

#endif
