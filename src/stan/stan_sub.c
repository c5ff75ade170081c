/* stan_sub: subscriptions: create/resume (start positions, durables, queue groups), delivery
 * from the store, acks, the MaxInflight window, AckWait redelivery (with a persisted count),
 * unsubscribe/close, and recovery. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nuid.h"
#include "pbwire.h"
#include "protocol.pb-c.h"
#include "stan_private.h"
#include "store.pb-c.h"
#include "xalloc.h"

static void pack_msg(const ProtobufCMessage *msg, buf_t *out)
{
    buf_reset(out);
    buf_reserve(out, protobuf_c_message_get_packed_size(msg));
    out->len = protobuf_c_message_pack(msg, (uint8_t *)out->data);
}

/* ---- records -------------------------------------------------------------------------- */

void stan_sub_mark_dirty(stan_t *st, stan_sub_t *s)
{
    if (s->dirty || s->deleted) return;
    s->dirty = true;
    s->refs++;
    if (st->ndirty == st->cap_dirty) {
        st->cap_dirty = st->cap_dirty ? st->cap_dirty * 2 : 64;
        st->dirty_subs = xrealloc(st->dirty_subs, st->cap_dirty * sizeof *st->dirty_subs);
    }
    st->dirty_subs[st->ndirty++] = s;
}

static void put_record(stan_t *st, stan_sub_t *s)
{
    /* A subscription is only recovered with its channel. */
    stan_channel_ensure_record(st, s->ch);
    Spb__SubRecord r = SPB__SUB_RECORD__INIT;
    r.id = s->id;
    r.channel_id = s->ch->id;
    r.client_id = s->client_id;
    r.queue_group = s->qgroup ? s->qgroup : "";
    r.inbox = s->inbox;
    r.ack_inbox = s->ack_inbox;
    r.max_inflight = s->max_inflight;
    r.ack_wait_secs = s->ack_wait_s;
    r.durable_name = s->durable ? s->durable : "";
    r.last_sent = s->qg ? s->qg->last_sent : s->last_sent;
    r.is_durable = s->is_durable;
    r.is_closed = s->is_offline;
    uint8_t key[8];
    stan_key_u64(key, s->id);
    size_t n = spb__sub_record__get_packed_size(&r);
    void *p = store_put_reserve(st->store, STORE_DB_SUBS, key, sizeof key, n);
    spb__sub_record__pack(&r, p);
}

void stan_sub_write_dirty(stan_t *st)
{
    for (size_t i = 0; i < st->ndirty; i++) {
        stan_sub_t *s = st->dirty_subs[i];
        s->dirty = false;
        if (!s->deleted) {
            put_record(st, s);
            stan_pend_write_dirty(st, s);
        }
        stan_sub_unref(st, s);
    }
    st->ndirty = 0;
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void on_sub_timer_closed(uv_handle_t *h)
{
    stan_sub_t *s = h->data;
    while (s->phead)
        stan_pend_remove(s, s->phead);
    free(s->phash);
    free(s->pdirty);
    free(s->client_id);
    free(s->inbox);
    free(s->ack_inbox);
    free(s->durable);
    free(s->qgroup);
    free(s);
}

void stan_sub_unref(stan_t *st, stan_sub_t *s)
{
    (void)st;
    if (--s->refs > 0 || !s->deleted) return;
    uv_timer_stop(&s->ack_timer);
    uv_close((uv_handle_t *)&s->ack_timer, on_sub_timer_closed);
}

/* A new subscription's ack inbox: the server's prefix and a random part, so that no client can
 * work out another's (and ack its messages away) from its own. */
static char *new_ack_inbox(stan_t *st)
{
    return nuid_subject(st->ack_prefix, "", NULL);
}

/* ack_inbox: a recovered subscription's own (it is the one its client knows); NULL for new. */
static stan_sub_t *sub_new(stan_t *st, uint64_t id, stan_channel_t *ch, const char *client_id,
                           const char *ack_inbox)
{
    stan_sub_t *s = xcalloc(1, sizeof *s);
    s->st = st;
    s->id = id;
    s->ch = ch;
    s->client_id = xstrdup(client_id);
    s->refs = 1; /* the channel's list */
    uv_timer_init(st->loop, &s->ack_timer);
    s->ack_timer.data = s;
    uv_unref((uv_handle_t *)&s->ack_timer); /* engine timers never keep the loop alive */
    s->ack_inbox = ack_inbox ? xstrdup(ack_inbox) : new_ack_inbox(st);
    strmap_put(&st->subs_by_ack, s->ack_inbox, strlen(s->ack_inbox), s);
    uint8_t key[8];
    stan_key_u64(key, id);
    strmap_put(&st->subs_by_id, (const char *)key, sizeof key, s);
    s->ch_next = ch->subs;
    if (ch->subs) ch->subs->ch_prev = s;
    ch->subs = s;
    ch->nsubs++;
    return s;
}

static char *durable_key(const char *client_id, const char *durable)
{
    size_t a = strlen(client_id), b = strlen(durable);
    char *k = xmalloc(a + b + 2);
    memcpy(k, client_id, a);
    k[a] = '|';
    memcpy(k + a + 1, durable, b + 1);
    return k;
}

static void client_link(stan_sub_t *s, stan_client_t *cl)
{
    s->client = cl;
    s->is_offline = false;
    s->cl_next = cl->subs;
    cl->subs = s;
}

static void client_unlink(stan_sub_t *s)
{
    stan_client_t *cl = s->client;
    if (!cl) return;
    stan_sub_t **pp = &cl->subs;
    while (*pp && *pp != s)
        pp = &(*pp)->cl_next;
    if (*pp) *pp = s->cl_next;
    s->cl_next = NULL;
    s->client = NULL;
}

static void qg_unlink(stan_t *st, stan_sub_t *s)
{
    stan_qgroup_t *g = s->qg;
    if (!g) return;
    stan_sub_t **pp = &g->members;
    while (*pp && *pp != s)
        pp = &(*pp)->qg_next;
    if (*pp) {
        *pp = s->qg_next;
        g->nmembers--;
    }
    s->qg_next = NULL;
    s->qg = NULL;
    if (g->nmembers == 0) {
        strmap_del(&g->ch->qgroups, g->key, strlen(g->key));
        free(g->key);
        free(g);
    }
    (void)st;
}

/* A queue group's key on its channel: "name", or "durable:name" for a durable group (a durable
 * queue name cannot contain ':', so the two never collide). Allocated whole: two groups whose
 * names differ anywhere, however long, are two groups. */
static char *qg_key(const stan_sub_t *s)
{
    if (!s->durable) return xstrdup(s->qgroup);
    size_t a = strlen(s->durable), b = strlen(s->qgroup);
    char *k = xmalloc(a + b + 2);
    memcpy(k, s->durable, a);
    k[a] = ':';
    memcpy(k + a + 1, s->qgroup, b + 1);
    return k;
}

static stan_qgroup_t *qg_get(stan_channel_t *ch, const char *key, bool durable)
{
    stan_qgroup_t *g = strmap_get(&ch->qgroups, key, strlen(key));
    if (g) return g;
    g = xcalloc(1, sizeof *g);
    g->key = xstrdup(key);
    g->ch = ch;
    g->durable = durable;
    strmap_put(&ch->qgroups, key, strlen(key), g);
    return g;
}

static void qg_link(stan_qgroup_t *g, stan_sub_t *s)
{
    s->qg = g;
    s->qg_next = g->members;
    g->members = s;
    g->nmembers++;
}

/* Removes a subscription for good: memory, routing, and (with the batch) its record and
 * pending entries. */
static void sub_delete(stan_t *st, stan_sub_t *s)
{
    if (s->deleted) return;
    stan_channel_t *ch = s->ch;
    ch->last_activity_ms = uv_now(st->loop);
    s->deleted = true;
    uv_timer_stop(&s->ack_timer);
    strmap_del(&st->subs_by_ack, s->ack_inbox, strlen(s->ack_inbox));
    uint8_t idkey[8];
    stan_key_u64(idkey, s->id);
    if (strmap_get(&st->subs_by_id, (const char *)idkey, sizeof idkey) == s)
        strmap_del(&st->subs_by_id, (const char *)idkey, sizeof idkey);
    if (s->durable && !s->qgroup) {
        char *k = durable_key(s->client_id, s->durable);
        if (strmap_get(&ch->durables, k, strlen(k)) == s) strmap_del(&ch->durables, k, strlen(k));
        free(k);
    }
    client_unlink(s);
    qg_unlink(st, s);
    if (s->ch_prev)
        s->ch_prev->ch_next = s->ch_next;
    else
        ch->subs = s->ch_next;
    if (s->ch_next) s->ch_next->ch_prev = s->ch_prev;
    ch->nsubs--;
    uint8_t key[8];
    stan_key_u64(key, s->id);
    store_del(st->store, STORE_DB_SUBS, key, sizeof key);
    uint8_t lo[16], hi[16];
    stan_key_pending(lo, s->id, 0);
    stan_key_pending(hi, s->id, UINT64_MAX);
    store_del_range(st->store, STORE_DB_PENDING, lo, sizeof lo, hi, sizeof hi);
    stan_sub_unref(st, s);
}

/* ---- subscribe ------------------------------------------------------------------------ */

static void sub_error(stan_t *st, const char *reply, const char *error)
{
    Pb__SubscriptionResponse r = PB__SUBSCRIPTION_RESPONSE__INIT;
    r.error = (char *)error;
    pack_msg(&r.base, &st->scratch);
    stan_reply(st, reply, &st->scratch);
}

/* The first sequence whose timestamp is >= ts (binary search over stored messages). */
static uint64_t seq_at_time(stan_t *st, stan_channel_t *ch, int64_t ts)
{
    uint64_t lo = ch->first_seq, hi = ch->last_seq + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint8_t key[STAN_MSG_KEY];
        stan_key_msg(key, ch->id, mid);
        store_val_t v;
        stan_msgval_t m;
        if (store_get(st->store, STORE_DB_MSGS, key, sizeof key, &v) != STZ_OK ||
            !stan_msg_decode(v.p, v.len, &m)) {
            lo = mid + 1; /* evicted meanwhile: treat as older */
            continue;
        }
        if (m.ts >= ts)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* last_sent for a new subscription at the requested position. */
static uint64_t start_last_sent(stan_t *st, stan_channel_t *ch, const Pb__SubscriptionRequest *r)
{
    switch (r->startposition) {
    case PB__START_POSITION__LastReceived:
        return ch->last_seq > 0 ? ch->last_seq - 1 : 0;
    case PB__START_POSITION__TimeDeltaStart: {
        if (ch->last_seq < ch->first_seq) return ch->last_seq;
        store_read_begin(st->store);
        uint64_t seq = seq_at_time(st, ch, stan_ns_sub(stan_now_ns(), r->starttimedelta));
        store_read_end(st->store);
        return seq - 1;
    }
    case PB__START_POSITION__SequenceStart: {
        uint64_t seq = r->startsequence;
        if (seq < ch->first_seq) seq = ch->first_seq;
        if (seq > ch->last_seq + 1) seq = ch->last_seq + 1;
        return seq - 1;
    }
    case PB__START_POSITION__First:
        return ch->first_seq - 1;
    default: /* NewOnly */
        return ch->last_seq;
    }
}

static void respond_when_committed(stan_t *st, stan_sub_t *s, const char *reply)
{
    stan_sub_mark_dirty(st, s);
    stan_action_t *a = stan_action_add(st, ACT_SUB_READY);
    a->sub = s;
    s->refs++;
    a->reply_to = xstrdup(reply);
    Pb__SubscriptionResponse ok = PB__SUBSCRIPTION_RESPONSE__INIT;
    ok.ackinbox = s->ack_inbox;
    pack_msg(&ok.base, &a->ok);
    Pb__SubscriptionResponse f = PB__SUBSCRIPTION_RESPONSE__INIT;
    f.error = "stan: store error, subscription not created";
    pack_msg(&f.base, &a->fail);
}

static int32_t clamp_inflight(int32_t n)
{
    return n > STAN_MAX_INFLIGHT ? STAN_MAX_INFLIGHT : n;
}

static stan_sub_t *create_sub(stan_t *st, stan_channel_t *ch, stan_client_t *cl,
                              const Pb__SubscriptionRequest *r)
{
    stan_sub_t *s = sub_new(st, st->next_sub_id++, ch, cl->id, NULL);
    st->meta_dirty = true;
    s->inbox = xstrdup(r->inbox);
    s->max_inflight = clamp_inflight(r->maxinflight);
    s->ack_wait_s = r->ackwaitinsecs;
    if (r->durablename[0]) {
        s->durable = xstrdup(r->durablename);
        s->is_durable = true;
    }
    if (r->qgroup[0]) s->qgroup = xstrdup(r->qgroup);
    client_link(s, cl);
    return s;
}

void stan_sub_on_subscribe(stan_t *st, const server_msg_t *m)
{
    if (!m->reply) return;
    char *reply = xstrndup(m->reply, m->reply_len);
    Pb__SubscriptionRequest *r =
        pb__subscription_request__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    const char *err = NULL;
    stan_client_t *cl = NULL;
    stan_channel_t *ch = NULL;
    /* NSS's order: the request's own fields first, then the client, then the channel. */
    if (!r)
        err = "stan: invalid subscription request";
    else if (!r->clientid[0])
        err = "stan: clientID missing";
    else if (strlen(r->subject) > STAN_MAX_NAME)
        err = "stan: channel name too long (max " STAN_MAX_NAME_TEXT " bytes)";
    else if (!stan_channel_name_valid(r->subject, strlen(r->subject)))
        err = "stan: invalid subject";
    else if (strlen(r->durablename) > STAN_MAX_NAME)
        err = "stan: durable name too long (max " STAN_MAX_NAME_TEXT " bytes)";
    else if (strlen(r->qgroup) > STAN_MAX_NAME)
        err = "stan: queue group name too long (max " STAN_MAX_NAME_TEXT " bytes)";
    else if (strlen(r->inbox) > STAN_MAX_NAME)
        err = "stan: inbox too long (max " STAN_MAX_NAME_TEXT " bytes)";
    else if (r->ackwaitinsecs < 1)
        err = "stan: invalid ack wait time, should be >= 1s";
    else if (r->maxinflight < 1)
        err = "stan: invalid MaxInflight, should be >= 1";
    else if ((int)r->startposition < 0 || r->startposition > PB__START_POSITION__First)
        err = "stan: invalid start position";
    else if (r->qgroup[0] && r->durablename[0] && strchr(r->durablename, ':'))
        err = "stan: durable name of a durable queue subscriber can't contain the character ':'";
    else if (!r->inbox[0]) /* NSS accepts this and delivers nowhere; Stanza refuses it */
        err = "stan: invalid subscription request";
    else if (!(cl = stan_client_find(st, r->clientid, strlen(r->clientid))))
        err = "stan: unknown clientID";
    else
        ch = stan_channel_get(st, r->subject, strlen(r->subject), true, &err);
    if (!ch) {
        sub_error(st, reply, err);
        goto out;
    }

    if (r->durablename[0] && !r->qgroup[0]) {
        char *k = durable_key(cl->id, r->durablename);
        stan_sub_t *d = strmap_get(&ch->durables, k, strlen(k));
        free(k);
        if (d && d->client && !st->cfg->replace_durable) {
            sub_error(st, reply, "stan: duplicate durable registration");
            goto out;
        }
        if (d) {
            /* Resume: same position and unacked set; new inbox, window and ack wait, and a new
             * ack inbox (the old one may have been seen, or be a counter from an older store). */
            client_unlink(d);
            free(d->inbox);
            d->inbox = xstrdup(r->inbox);
            strmap_del(&st->subs_by_ack, d->ack_inbox, strlen(d->ack_inbox));
            free(d->ack_inbox);
            d->ack_inbox = new_ack_inbox(st);
            strmap_put(&st->subs_by_ack, d->ack_inbox, strlen(d->ack_inbox), d);
            d->max_inflight = clamp_inflight(r->maxinflight);
            d->ack_wait_s = r->ackwaitinsecs;
            d->ready = false;
            client_link(d, cl);
            for (stan_pending_t *p = d->phead; p; p = p->next)
                p->expire_ms = 0;
            respond_when_committed(st, d, reply);
            goto out;
        }
    }
    if (st->cfg->limits.max_subs > 0 || ch->limits.max_subs > 0) {
        int64_t max = ch->limits.max_subs;
        if (max > 0 && (int64_t)ch->nsubs >= max) {
            sub_error(st, reply, "too many subscriptions per channel");
            goto out;
        }
    }
    stan_sub_t *s = create_sub(st, ch, cl, r);
    if (s->qgroup) {
        char *key = qg_key(s);
        stan_qgroup_t *g = strmap_get(&ch->qgroups, key, strlen(key));
        if (!g) {
            g = qg_get(ch, key, s->durable != NULL);
            g->last_sent = start_last_sent(st, ch, r);
            g->last_sent_cum = stan_channel_cum_at(st, ch, g->last_sent);
        }
        free(key);
        /* Joined first, so that removing the shadow below never empties (and frees) the group. */
        qg_link(g, s);
        /* A durable group's offline shadow hands its unacked messages to the newcomer. */
        for (stan_sub_t *o = g->members; o;) {
            stan_sub_t *next = o->qg_next;
            if (o != s && !o->client) {
                stan_pend_transfer(st, o, s);
                sub_delete(st, o);
            }
            o = next;
        }
    } else {
        s->last_sent = start_last_sent(st, ch, r);
        s->last_sent_cum = stan_channel_cum_at(st, ch, s->last_sent);
        if (s->durable) {
            char *k = durable_key(cl->id, s->durable);
            strmap_put(&ch->durables, k, strlen(k), s);
            free(k);
        }
    }
    LOG_D("client %s subscribed to \"%s\"%s%s%s%s (ack inbox %s)", cl->id, ch->name,
          s->qgroup ? " queue " : "", s->qgroup ? s->qgroup : "", s->durable ? " durable " : "",
          s->durable ? s->durable : "", s->ack_inbox);
    respond_when_committed(st, s, reply);
out:
    if (r) pb__subscription_request__free_unpacked(r, NULL);
    free(reply);
}

/* ---- unsubscribe / close -------------------------------------------------------------- */

/* A subscription stops being served: deleted, or (durables on close) kept offline. */
static void sub_leave(stan_t *st, stan_sub_t *s, bool close_only)
{
    if (s->qg) {
        stan_qgroup_t *g = s->qg;
        stan_sub_t *heir = NULL;
        for (stan_sub_t *o = g->members; o; o = o->qg_next)
            if (o != s && o->client && (!heir || o->npending < heir->npending)) heir = o;
        if (heir) {
            stan_pend_transfer(st, s, heir);
            sub_delete(st, s);
        } else if (close_only && g->durable) {
            /* The last member of a durable group: it stays as the group's offline shadow. */
            client_unlink(s);
            s->is_offline = true;
            s->ready = false;
            uv_timer_stop(&s->ack_timer);
            stan_sub_mark_dirty(st, s);
        } else {
            sub_delete(st, s);
        }
        return;
    }
    if (close_only && s->is_durable) {
        client_unlink(s);
        s->is_offline = true;
        s->ready = false;
        uv_timer_stop(&s->ack_timer);
        stan_sub_mark_dirty(st, s);
        return;
    }
    sub_delete(st, s);
}

void stan_sub_on_unsubscribe(stan_t *st, const server_msg_t *m, bool close_only)
{
    char *reply = m->reply ? xstrndup(m->reply, m->reply_len) : NULL;
    Pb__UnsubscribeRequest *r =
        pb__unsubscribe_request__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    stan_client_t *cl = NULL;
    stan_sub_t *s = NULL;
    if (!r) {
        sub_error(st, reply, "stan: invalid unsubscribe request");
        goto out;
    }
    /* NSS's order: the channel named in the request, the client, then the subscription. */
    if (!stan_channel_get(st, r->subject, strlen(r->subject), false, NULL)) {
        sub_error(st, reply, "stan: unknown channel");
        goto out;
    }
    if (!(cl = stan_client_find(st, r->clientid, strlen(r->clientid)))) {
        sub_error(st, reply, "stan: unknown clientID");
        goto out;
    }
    s = strmap_get(&st->subs_by_ack, r->inbox, strlen(r->inbox));
    if (!s) /* older clients send the delivery inbox */
        for (stan_sub_t *o = cl->subs; o && !s; o = o->cl_next)
            if (strcmp(o->inbox, r->inbox) == 0) s = o;
    if (!s || s->client != cl) {
        sub_error(st, reply, "stan: invalid subscription");
        goto out;
    }
    sub_leave(st, s, close_only);
    stan_action_t *a = stan_action_add(st, ACT_REPLY);
    a->reply_to = reply;
    reply = NULL;
    Pb__SubscriptionResponse ok = PB__SUBSCRIPTION_RESPONSE__INIT;
    pack_msg(&ok.base, &a->ok);
    Pb__SubscriptionResponse f = PB__SUBSCRIPTION_RESPONSE__INIT;
    f.error = "stan: store error";
    pack_msg(&f.base, &a->fail);
out:
    if (r) pb__unsubscribe_request__free_unpacked(r, NULL);
    free(reply);
}

void stan_sub_client_gone(stan_t *st, stan_client_t *cl, bool unsubscribe)
{
    while (cl->subs) {
        stan_sub_t *s = cl->subs;
        sub_leave(st, s, !unsubscribe);
        if (cl->subs == s) client_unlink(s); /* left offline */
    }
}

/* ---- recovery ------------------------------------------------------------------------- */

int stan_sub_restore(stan_t *st, const void *rec, size_t len)
{
    Spb__SubRecord *r = spb__sub_record__unpack(NULL, len, rec);
    if (!r) {
        LOG_W("store: skipping a damaged subscription record");
        return -1;
    }
    int rc = -1;
    stan_channel_t *ch = stan_channel_by_id(st, r->channel_id);
    stan_client_t *cl =
        r->is_closed ? NULL : stan_client_find(st, r->client_id, strlen(r->client_id));
    if (r->id >= st->next_sub_id) st->next_sub_id = r->id + 1;
    if (!ch || (!cl && !r->is_durable)) {
        /* Its channel or (non-durable) client is gone: drop what is left of it. */
        uint8_t key[8], lo[16], hi[16];
        stan_key_u64(key, r->id);
        store_del(st->store, STORE_DB_SUBS, key, sizeof key);
        stan_key_pending(lo, r->id, 0);
        stan_key_pending(hi, r->id, UINT64_MAX);
        store_del_range(st->store, STORE_DB_PENDING, lo, sizeof lo, hi, sizeof hi);
        goto out;
    }
    /* The inbox the client knows; a record without one (damaged) gets a new one. */
    stan_sub_t *s = sub_new(st, r->id, ch, r->client_id, r->ack_inbox[0] ? r->ack_inbox : NULL);
    s->inbox = xstrdup(r->inbox);
    s->max_inflight = r->max_inflight > 0 ? clamp_inflight(r->max_inflight) : 1;
    s->ack_wait_s = r->ack_wait_secs > 0 ? r->ack_wait_secs : 30;
    s->is_durable = r->is_durable;
    if (r->durable_name[0]) s->durable = xstrdup(r->durable_name);
    if (r->queue_group[0]) s->qgroup = xstrdup(r->queue_group);
    s->last_sent = r->last_sent;
    s->last_sent_cum = stan_channel_cum_at(st, ch, s->last_sent);
    if (cl) {
        client_link(s, cl);
        s->ready = true;
        stan_sub_mark_ready(st, s);
    } else {
        s->is_offline = true;
    }
    if (s->qgroup) {
        char *key = qg_key(s);
        stan_qgroup_t *g = qg_get(ch, key, s->durable != NULL);
        free(key);
        if (r->last_sent > g->last_sent || g->nmembers == 0) {
            g->last_sent = r->last_sent;
            g->last_sent_cum = s->last_sent_cum;
        }
        qg_link(g, s);
    } else if (s->durable) {
        char *k = durable_key(s->client_id, s->durable);
        strmap_put(&ch->durables, k, strlen(k), s);
        free(k);
    }
    rc = 0;
out:
    spb__sub_record__free_unpacked(r, NULL);
    return rc;
}

int stan_sub_restore_pending(stan_t *st, uint64_t sub_id, uint64_t seq, uint32_t count)
{
    uint8_t key[8];
    stan_key_u64(key, sub_id);
    stan_sub_t *s = strmap_get(&st->subs_by_id, (const char *)key, sizeof key);
    if (!s || stan_pend_find(s, seq)) return -1;
    /* Due at once: recovered unacked messages are redelivered first. */
    /* Its size, for inflight_bytes: recovery runs inside a read view. */
    uint8_t mkey[STAN_MSG_KEY];
    stan_key_msg(mkey, s->ch->id, seq);
    store_val_t v;
    stan_msgval_t mv;
    uint32_t size = 0;
    if (store_get(st->store, STORE_DB_MSGS, mkey, sizeof mkey, &v) == STZ_OK &&
        stan_msg_decode(v.p, v.len, &mv))
        size = (uint32_t)mv.len;
    if (count > 1) s->redelivered_total += count - 1;
    stan_pend_add(s, seq, count ? count : 1, size, 0)->on_disk = true;
    return 0;
}

void stan_sub_free_all(stan_t *st)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        while (ch->subs) {
            stan_sub_t *s = ch->subs;
            ch->subs = s->ch_next;
            qg_unlink(st, s);
            s->deleted = true;
            uv_timer_stop(&s->ack_timer);
            uv_close((uv_handle_t *)&s->ack_timer, on_sub_timer_closed);
        }
    }
    st->ready = st->ready_tail = NULL;
    st->ndirty = 0;
}

void stan_sub_abort(stan_t *st, stan_sub_t *s)
{
    /* The client was told the subscription failed: do not keep serving it. A durable keeps its
     * position (offline), anything else goes. */
    if (!s->deleted) sub_leave(st, s, true);
}
