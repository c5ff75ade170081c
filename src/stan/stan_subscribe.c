/* stan_subscribe: see stan_subscribe.h. */
#include "stan_subscribe.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "protocol.pb-c.h"
#include "stan_channel.h"
#include "stan_client.h"
#include "stan_keys.h"
#include "stan_sub.h"
#include "store.pb-c.h"
#include "xalloc.h"

static void sub_error(stan_t *st, const char *reply, const char *error)
{
    Pb__SubscriptionResponse r = PB__SUBSCRIPTION_RESPONSE__INIT;
    r.error = (char *)error;
    stan_pack(&r.base, &st->scratch);
    stan_reply(st, reply, &st->scratch);
}

/* last_sent for a new subscription at the requested position. */
static uint64_t start_last_sent(stan_t *st, stan_channel_t *ch, const Pb__SubscriptionRequest *r)
{
    switch (r->startposition) {
    case PB__START_POSITION__LastReceived:
        return ch->last_seq > 0 ? ch->last_seq - 1 : 0;
    case PB__START_POSITION__TimeDeltaStart:
        if (ch->last_seq < ch->first_seq) return ch->last_seq;
        return stan_channel_seq_at_time(st, ch, stan_ns_sub(clock_wall_ns(), r->starttimedelta)) -
               1;
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

/* The response went out with the batch: deliveries may flow; or the batch failed and the client
 * was told so: it is not served. A durable keeps its position (offline), anything else goes. */
static void on_sub_committed(void *arg, int status)
{
    stan_sub_t *s = arg;
    stan_t *st = s->st;
    if (status == 0) {
        if (!s->deleted) {
            s->ready = true;
            stan_sub_mark_ready(st, s);
        }
    } else if (!s->deleted) {
        stan_sub_leave(st, s, true);
    }
    stan_sub_unref(st, s);
}

static void respond_when_committed(stan_t *st, stan_sub_t *s, const char *reply)
{
    stan_sub_mark_dirty(st, s);
    s->refs++;
    stan_later_reply_t *a = stan_reply_on_commit(st, reply, on_sub_committed, s);
    Pb__SubscriptionResponse ok = PB__SUBSCRIPTION_RESPONSE__INIT;
    ok.ackinbox = s->ack_inbox;
    stan_pack(&ok.base, &a->ok);
    Pb__SubscriptionResponse f = PB__SUBSCRIPTION_RESPONSE__INIT;
    stan_later_fail(a, &f.base, &f.error, "stan: store error, subscription not created",
                    "stan: leadership lost while creating the subscription: subscribe again");
}

static int32_t clamp_inflight(int32_t n)
{
    return n > STAN_MAX_INFLIGHT ? STAN_MAX_INFLIGHT : n;
}

/* The request's own fields (NSS checks them first); NULL if they are fine. */
static const char *check_request(const Pb__SubscriptionRequest *r)
{
    if (!r) return "stan: invalid subscription request";
    if (!r->clientid[0]) return "stan: clientID missing";
    if (strlen(r->subject) > STAN_MAX_NAME)
        return "stan: channel name too long (max " STAN_MAX_NAME_TEXT " bytes)";
    if (!stan_channel_name_valid(r->subject, strlen(r->subject))) return "stan: invalid subject";
    if (strlen(r->durablename) > STAN_MAX_NAME)
        return "stan: durable name too long (max " STAN_MAX_NAME_TEXT " bytes)";
    if (strlen(r->qgroup) > STAN_MAX_NAME)
        return "stan: queue group name too long (max " STAN_MAX_NAME_TEXT " bytes)";
    if (strlen(r->inbox) > STAN_MAX_NAME)
        return "stan: inbox too long (max " STAN_MAX_NAME_TEXT " bytes)";
    if (r->ackwaitinsecs < 1) return "stan: invalid ack wait time, should be >= 1s";
    if (r->maxinflight < 1) return "stan: invalid MaxInflight, should be >= 1";
    if ((int)r->startposition < 0 || r->startposition > PB__START_POSITION__First)
        return "stan: invalid start position";
    if (r->qgroup[0] && r->durablename[0] && strchr(r->durablename, ':'))
        return "stan: durable name of a durable queue subscriber can't contain the character ':'";
    if (!r->inbox[0]) /* NSS accepts this and delivers nowhere; Stanza refuses it */
        return "stan: invalid subscription request";
    return NULL;
}

/* Resume: same position and unacked set; new inbox, window and ack wait, and a new ack inbox
 * (the old one may have been seen, or be a counter from an older store). */
static void resume_durable(stan_t *st, stan_sub_t *d, stan_client_t *cl,
                           const Pb__SubscriptionRequest *r, const char *reply)
{
    stan_sub_detach(d);
    free(d->inbox);
    d->inbox = xstrdup(r->inbox);
    stan_sub_renew_ack_inbox(st, d);
    d->max_inflight = clamp_inflight(r->maxinflight);
    d->ack_wait_s = r->ackwaitinsecs;
    d->ready = false;
    stan_sub_attach(d, cl, &cl->subs);
    stan_pset_all_due(&d->pend);
    respond_when_committed(st, d, reply);
}

static stan_sub_t *create_sub(stan_t *st, stan_channel_t *ch, stan_client_t *cl,
                              const Pb__SubscriptionRequest *r)
{
    stan_sub_t *s = stan_sub_new(st, st->next_sub_id++, ch, cl->id, NULL);
    st->meta_dirty = true;
    s->inbox = xstrdup(r->inbox);
    s->max_inflight = clamp_inflight(r->maxinflight);
    s->ack_wait_s = r->ackwaitinsecs;
    if (r->durablename[0]) {
        s->durable = xstrdup(r->durablename);
        s->is_durable = true;
    }
    if (r->qgroup[0]) s->qgroup = xstrdup(r->qgroup);
    stan_sub_attach(s, cl, &cl->subs);
    return s;
}

/* A new member of a queue group: a new group starts at the requested position. */
static void join_group(stan_t *st, stan_sub_t *s, const Pb__SubscriptionRequest *r)
{
    stan_channel_t *ch = s->ch;
    char *key = stan_sub_qgroup_key(s->durable, s->qgroup);
    stan_qgroup_t *g = strmap_get(&ch->qgroups, key, strlen(key));
    if (!g) {
        g = stan_sub_qgroup_get(ch, key, s->durable != NULL);
        g->last_sent = start_last_sent(st, ch, r);
        g->last_sent_cum = stan_channel_cum_at(st, ch, g->last_sent);
    }
    free(key);
    /* A paused group stays paused (its offline shadow included) with whoever joins it. */
    s->is_paused = stan_sub_qgroup_paused(g);
    /* Joined first, so that removing the shadow below never empties (and frees) the group. */
    stan_sub_qgroup_join(g, s);
    /* A durable group's offline shadow hands its unacked messages to the newcomer. */
    list_node_t *n, *next;
    list_foreach_safe (n, next, &g->members) {
        stan_sub_t *o = STAN_SUB_OF(n, qg_link);
        if (o != s && !o->client) {
            stan_sub_transfer(st, o, s);
            stan_sub_delete(st, o);
        }
    }
}

/* After the checks: a durable resumed, or a new subscription. */
static void subscribe(stan_t *st, stan_channel_t *ch, stan_client_t *cl,
                      const Pb__SubscriptionRequest *r, const char *reply)
{
    if (r->durablename[0] && !r->qgroup[0]) {
        stan_sub_t *d = stan_sub_durable_find(ch, cl->id, r->durablename);
        if (d && d->client && !st->cfg->replace_durable) {
            sub_error(st, reply, "stan: duplicate durable registration");
            return;
        }
        if (d) {
            resume_durable(st, d, cl, r, reply);
            return;
        }
    }
    if (ch->limits.max_subs > 0 && (int64_t)ch->nsubs >= ch->limits.max_subs) {
        sub_error(st, reply, "too many subscriptions per channel");
        return;
    }
    stan_sub_t *s = create_sub(st, ch, cl, r);
    if (s->qgroup) {
        join_group(st, s, r);
    } else {
        s->last_sent = start_last_sent(st, ch, r);
        s->last_sent_cum = stan_channel_cum_at(st, ch, s->last_sent);
        if (s->durable) stan_sub_durable_add(s);
    }
    LOG_D("client %s subscribed to \"%s\"%s%s%s%s (ack inbox %s)", cl->id, ch->name,
          s->qgroup ? " queue " : "", s->qgroup ? s->qgroup : "", s->durable ? " durable " : "",
          s->durable ? s->durable : "", s->ack_inbox);
    respond_when_committed(st, s, reply);
}

void stan_subscribe_on_request(stan_t *st, const bus_msg_t *m)
{
    if (!m->reply) return;
    char *reply = xstrndup(m->reply, m->reply_len);
    Pb__SubscriptionRequest *r =
        pb__subscription_request__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    stan_client_t *cl = NULL;
    stan_channel_t *ch = NULL;
    /* NSS's order: the request's own fields first, then the client, then the channel. */
    const char *err = check_request(r);
    if (!err && !(cl = stan_client_find(st, r->clientid, strlen(r->clientid))))
        err = "stan: unknown clientID";
    if (!err) ch = stan_channel_get(st, r->subject, strlen(r->subject), true, &err);
    if (ch)
        subscribe(st, ch, cl, r, reply);
    else
        sub_error(st, reply, err);
    if (r) pb__subscription_request__free_unpacked(r, NULL);
    free(reply);
}

/* ---- unsubscribe / close -------------------------------------------------------------- */

/* The subscription an unsubscribe names: by ack inbox, or (older clients) by delivery inbox. */
static stan_sub_t *find_client_sub(stan_t *st, stan_client_t *cl, const char *inbox)
{
    stan_sub_t *s = stan_sub_by_ack(st, inbox, strlen(inbox));
    if (s) return s;
    list_node_t *n;
    list_foreach (n, &cl->subs) {
        stan_sub_t *o = STAN_SUB_OF(n, cl_link);
        if (strcmp(o->inbox, inbox) == 0) return o;
    }
    return NULL;
}

void stan_subscribe_on_unsubscribe(stan_t *st, const bus_msg_t *m, bool close_only)
{
    char *reply = m->reply ? xstrndup(m->reply, m->reply_len) : NULL;
    Pb__UnsubscribeRequest *r =
        pb__unsubscribe_request__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    stan_client_t *cl = NULL;
    stan_sub_t *s = NULL;
    /* NSS's order: the channel named in the request, the client, then the subscription. */
    const char *err = NULL;
    if (!r)
        err = "stan: invalid unsubscribe request";
    else if (!stan_channel_get(st, r->subject, strlen(r->subject), false, NULL))
        err = "stan: unknown channel";
    else if (!(cl = stan_client_find(st, r->clientid, strlen(r->clientid))))
        err = "stan: unknown clientID";
    else if (!(s = find_client_sub(st, cl, r->inbox)) || s->client != cl)
        err = "stan: invalid subscription";
    if (err) {
        sub_error(st, reply, err);
    } else {
        stan_sub_leave(st, s, close_only);
        stan_later_reply_t *a = stan_reply_on_commit(st, reply, NULL, NULL);
        Pb__SubscriptionResponse ok = PB__SUBSCRIPTION_RESPONSE__INIT;
        stan_pack(&ok.base, &a->ok);
        Pb__SubscriptionResponse f = PB__SUBSCRIPTION_RESPONSE__INIT;
        stan_later_fail(a, &f.base, &f.error, "stan: store error",
                        "stan: leadership lost while removing the subscription: send it again");
    }
    if (r) pb__unsubscribe_request__free_unpacked(r, NULL);
    free(reply);
}

/* ---- recovery ------------------------------------------------------------------------- */

static void restore_place(stan_t *st, stan_sub_t *s, stan_client_t *cl, uint64_t last_sent)
{
    if (cl) {
        stan_sub_attach(s, cl, &cl->subs);
        s->ready = true;
        stan_sub_mark_ready(st, s);
    } else {
        s->is_offline = true;
    }
    if (s->qgroup) {
        char *key = stan_sub_qgroup_key(s->durable, s->qgroup);
        stan_qgroup_t *g = stan_sub_qgroup_get(s->ch, key, s->durable != NULL);
        free(key);
        if (last_sent > g->last_sent || g->nmembers == 0) {
            g->last_sent = last_sent;
            g->last_sent_cum = s->last_sent_cum;
        }
        stan_sub_qgroup_join(g, s);
    } else if (s->durable) {
        stan_sub_durable_add(s);
    }
}

int stan_subscribe_restore(stan_t *st, const void *rec, size_t len)
{
    Spb__SubRecord *r = spb__sub_record__unpack(NULL, len, rec);
    if (!r) {
        LOG_W("store: skipping a damaged subscription record");
        return STZ_EIO;
    }
    int rc = STZ_ENOENT; /* its channel, or (not durable) its client, is gone: dropped */
    stan_channel_t *ch = stan_channel_by_id(st, r->channel_id);
    stan_client_t *cl =
        r->is_closed ? NULL : stan_client_find(st, r->client_id, strlen(r->client_id));
    if (r->id >= st->next_sub_id) st->next_sub_id = r->id + 1;
    if (!ch || (!cl && !r->is_durable)) {
        /* Its channel or (non-durable) client is gone: drop what is left of it. */
        stan_sub_stage_delete(st, r->id);
    } else {
        /* The inbox the client knows; a record without one (damaged) gets a new one. */
        stan_sub_t *s =
            stan_sub_new(st, r->id, ch, r->client_id, r->ack_inbox[0] ? r->ack_inbox : NULL);
        s->inbox = xstrdup(r->inbox);
        s->max_inflight = r->max_inflight > 0 ? clamp_inflight(r->max_inflight) : 1;
        s->ack_wait_s = r->ack_wait_secs > 0 ? r->ack_wait_secs : 30;
        s->is_durable = r->is_durable;
        if (r->durable_name[0]) s->durable = xstrdup(r->durable_name);
        if (r->queue_group[0]) s->qgroup = xstrdup(r->queue_group);
        s->last_sent = r->last_sent;
        s->dead_total = r->dead_total;
        s->last_sent_cum = stan_channel_cum_at(st, ch, s->last_sent);
        s->is_paused = r->is_paused;
        restore_place(st, s, cl, r->last_sent);
        rc = 0;
    }
    spb__sub_record__free_unpacked(r, NULL);
    return rc;
}
