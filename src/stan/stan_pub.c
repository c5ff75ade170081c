/* stan_pub: see stan_pub.h. */
#include "stan_pub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "pbwire.h"
#include "stan_channel.h"
#include "stan_client.h"
#include "stan_keys.h"
#include "stan_sub.h"
#include "xalloc.h"

static void puback_now(stan_t *st, const bus_msg_t *m, pbw_slice_t guid, const char *error)
{
    if (!m->reply) return;
    buf_reset(&st->scratch);
    pbw_encode_puback(&st->scratch, (const char *)guid.p, guid.len, error,
                      error ? strlen(error) : 0);
    bus_msg_t r = {.subject = m->reply,
                   .subject_len = m->reply_len,
                   .data = st->scratch.data ? st->scratch.data : "",
                   .data_len = st->scratch.len};
    bus_publish(&st->bus, &r);
}

/* One allocation per message: the struct, then guid, ack inbox, reply and payload. */
static inline stan_staged_t *staged_new(stan_channel_t *ch, const pbw_pubmsg_t *pm,
                                        const bus_msg_t *m)
{
    size_t glen = pm->guid.len, alen = m->reply ? m->reply_len : 0, rlen = pm->reply.len;
    stan_staged_t *s = xmalloc(sizeof *s + glen + 1 + alen + 1 + rlen + 1 + pm->data.len);
    memset(s, 0, sizeof *s);
    char *w = (char *)(s + 1);
    s->ch = ch;
    s->guid = w;
    if (glen) memcpy(w, pm->guid.p, glen);
    w[glen] = '\0';
    w += glen + 1;
    s->ack_reply = w;
    if (alen) memcpy(w, m->reply, alen);
    w[alen] = '\0';
    w += alen + 1;
    s->reply = rlen ? w : NULL;
    if (rlen) memcpy(w, pm->reply.p, rlen);
    w[rlen] = '\0';
    w += rlen + 1;
    s->data = (uint8_t *)w;
    s->len = pm->data.len;
    if (s->len) memcpy(w, pm->data.p, s->len);
    return s;
}

/* Joins the staging list: counted against the channel until its batch ends. */
static void stage(stan_t *st, stan_staged_t *s)
{
    list_push_back(&st->staged, &s->link);
    st->nstaged++;
    s->ch->pend_msgs++;
    s->ch->pend_bytes += s->len;
}

void stan_pub_internal(stan_t *st, stan_channel_t *ch, const char *reply, size_t reply_len,
                       const uint8_t *data, size_t len, const stan_pub_hooks_t *hooks, void *arg)
{
    /* As a PubMsg without guid from a publisher without reply inbox: no PubAck. */
    pbw_pubmsg_t pm = {.reply = {(const uint8_t *)reply, reply_len}, .data = {data, len}};
    bus_msg_t m = {0};
    stan_staged_t *s = staged_new(ch, &pm, &m);
    s->hooks = hooks;
    s->hook_arg = arg;
    stage(st, s);
}

/* No longer counted against its channel (its batch ended, or it was dropped). */
static void unstage(stan_staged_t *s)
{
    s->ch->pend_msgs--;
    s->ch->pend_bytes -= s->len;
}

void stan_pub_free(stan_t *st)
{
    list_node_t *n;
    while ((n = list_pop_front(&st->staged))) {
        stan_staged_t *s = LIST_ITEM(n, stan_staged_t, link);
        if (s->hooks) s->hooks->done(st, s->hook_arg, STZ_ECANCELED);
        free(s);
    }
    st->nstaged = 0;
}

/* discard: new, and the channel has no room for the message: refuses it. */
static bool refuse_if_full(stan_t *st, const bus_msg_t *m, const pbw_pubmsg_t *pm,
                           const stan_channel_t *ch)
{
    int64_t limit;
    const char *which = stan_channel_full(ch, pm->data.len, &limit);
    if (!which) return false;
    char err[STAN_MAX_NAME + 64];
    snprintf(err, sizeof err, "channel \"%s\" is full (%s %lld)", ch->name, which,
             (long long)limit);
    LOG_D("publish refused: %s", err);
    puback_now(st, m, pm->guid, err);
    return true;
}

void stan_pub_on_msg(stan_t *st, const bus_msg_t *m)
{
    pbw_pubmsg_t pm;
    pbw_slice_t none = {NULL, 0};
    if (pbw_decode_pubmsg(m->data, m->data_len, &pm) != 0) {
        puback_now(st, m, none, "stan: invalid publish request");
        return;
    }
    const char *err = NULL;
    stan_channel_t *ch = NULL;
    /* NSS answers every invalid publish (no guid, unknown client, bad channel name) alike. */
    stan_client_t *cl = pm.client_id.len
                            ? stan_client_find(st, (const char *)pm.client_id.p, pm.client_id.len)
                            : NULL;
    /* A connection whose client ID was taken over by a newer one still sends its old connID:
     * its publishes are refused, as NSS refuses them. */
    if (cl && pm.conn_id.len &&
        !(cl->conn_id_len == pm.conn_id.len &&
          memcmp(cl->conn_id, pm.conn_id.p, pm.conn_id.len) == 0))
        cl = NULL;
    if (pm.subject.len > STAN_MAX_NAME && pm.guid.len && cl) {
        err = "stan: channel name too long (max " STAN_MAX_NAME_TEXT " bytes)";
    } else if (!pm.guid.len || !cl ||
               !stan_channel_name_valid((const char *)pm.subject.p, pm.subject.len)) {
        err = "stan: invalid publish request";
    } else {
        ch = stan_channel_get(st, (const char *)pm.subject.p, pm.subject.len, true, &err);
    }
    if (ch && ch->next_seq + st->nstaged > STAN_MAX_SEQ) {
        err = "stan: channel is full (sequence limit reached)";
        ch = NULL;
    }
    if (ch && refuse_if_full(st, m, &pm, ch)) return;
    if (!ch) {
        LOG_D("publish refused: %s", err);
        puback_now(st, m, pm.guid, err);
        return;
    }
    stage(st, staged_new(ch, &pm, m));
}

/* Appends the message to the batch: key and value as in docs/storage.md. */
static void put_msg(stan_t *st, stan_staged_t *s, int64_t ts)
{
    uint8_t key[STAN_MSG_KEY], hdr[STAN_MSG_HDR_MAX];
    stan_key_msg(key, s->ch->id, s->seq);
    size_t rlen = s->reply ? strlen(s->reply) : 0;
    size_t n = stan_msg_hdr(hdr, ts, s->cum, rlen);
    /* Built straight in the batch: the payload is copied once, from the staged message. */
    uint8_t *p = store_append_reserve(st->store, STORE_DB_MSGS, key, sizeof key, n + rlen + s->len);
    memcpy(p, hdr, n);
    if (rlen) memcpy(p + n, s->reply, rlen);
    if (s->len) memcpy(p + n + rlen, s->data, s->len);
}

/* Moves one batch's share of the staged messages to batch_msgs (at least one message): a
 * batch's size is bounded, so that no burst of input can make a transaction bigger than LMDB
 * takes in one commit (its dirty-page limit would fail the whole batch) or make one commit
 * take seconds. The rest waits for the next batch. */
static void take_batch_share(stan_t *st)
{
    size_t n = 0, bytes = 0;
    list_node_t *node;
    while ((node = list_first(&st->staged))) {
        stan_staged_t *s = LIST_ITEM(node, stan_staged_t, link);
        if (n && (n >= STAN_BATCH_MAX_MSGS || bytes + s->len > STAN_BATCH_MAX_BYTES)) break;
        list_remove(node);
        list_push_back(&st->batch_msgs, node);
        n++;
        bytes += s->len;
    }
    st->nstaged -= n;
}

void stan_pub_stage_batch(stan_t *st)
{
    if (list_empty(&st->staged)) return;
    take_batch_share(st);
    int64_t now = clock_wall_ns();
    /* A channel's last publish, for max_inactivity: read once per batch. Until its batch, a
     * staged message keeps the channel (stan_channel_tick waits for an empty staging list). */
    uint64_t now_ms = clock_mono_ms();
    list_node_t *n, *next;
    for (n = list_first(&st->batch_msgs); n; n = next) {
        next = list_next(&st->batch_msgs, n);
        stan_staged_t *s = LIST_ITEM(n, stan_staged_t, link);
        stan_channel_t *ch = s->ch;
        /* The engine's own publish stages what goes with it first, or is dropped. */
        if (s->hooks && !s->hooks->staged(st, s->hook_arg, ch->next_seq)) {
            list_remove(n);
            unstage(s);
            free(s);
            continue;
        }
        ch->last_activity_ms = now_ms;
        stan_channel_ensure_record(st, ch);
        s->seq = ch->next_seq++;
        ch->cum_next += s->len;
        s->cum = ch->cum_next;
        /* Timestamps are unique and increasing per channel, so time-based starts are exact. */
        int64_t ts = now > ch->last_ts ? now : ch->last_ts + 1;
        ch->last_ts = ts;
        put_msg(st, s, ts);
        ch->limits_due = true;
    }
    /* Limits once per channel per batch, after all its messages have their sequences. */
    list_foreach (n, &st->batch_msgs) {
        stan_channel_t *ch = LIST_ITEM(n, stan_staged_t, link)->ch;
        if (!ch->limits_due) continue;
        ch->limits_due = false;
        stan_channel_stage_limits(st, ch);
    }
}

static void send_puback(stan_t *st, stan_staged_t *m, const char *error)
{
    buf_reset(&st->scratch);
    pbw_encode_puback(&st->scratch, m->guid, strlen(m->guid), error, error ? strlen(error) : 0);
    stan_reply(st, m->ack_reply, &st->scratch);
}

void stan_pub_batch_done(stan_t *st, int status)
{
    list_node_t *n;
    while ((n = list_pop_front(&st->batch_msgs))) {
        stan_staged_t *m = LIST_ITEM(n, stan_staged_t, link);
        stan_channel_t *ch = m->ch;
        unstage(m);
        if (status == 0) {
            if (stan_channel_committed(ch, m->seq, m->cum)) stan_sub_channel_has_new(st, ch);
            send_puback(st, m, NULL);
        } else {
            /* Roll the channel back to what is on disk; the next batch reassigns. */
            stan_channel_rollback(ch);
            /* A leader that lost the lead cannot tell: the entry may commit under the next. */
            send_puback(st, m,
                        status == STZ_ENOTLEADER
                            ? "stan: leadership lost while storing the message: it may be "
                              "stored; publish it again"
                            : "stan: store error, message not stored");
        }
        if (m->hooks) m->hooks->done(st, m->hook_arg, status);
        free(m); /* one allocation: see staged_new */
    }
}
