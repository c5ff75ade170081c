/* stan_pub: PubMsg -> staged -> (next batch) stored with a sequence -> PubAck after commit. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "protocol.pb-c.h"
#include "stan_private.h"
#include "xalloc.h"

static void puback_now(stan_t *st, const server_msg_t *m, const char *guid, const char *error)
{
    if (!m->reply) return;
    Pb__PubAck ack = PB__PUB_ACK__INIT;
    ack.guid = (char *)(guid ? guid : "");
    if (error) ack.error = (char *)error;
    buf_reset(&st->scratch);
    buf_reserve(&st->scratch, pb__pub_ack__get_packed_size(&ack));
    st->scratch.len = pb__pub_ack__pack(&ack, (uint8_t *)st->scratch.data);
    server_msg_t r = {.subject = m->reply,
                      .subject_len = m->reply_len,
                      .data = st->scratch.data,
                      .data_len = st->scratch.len};
    server_publish(st->srv, &r);
}

void stan_pub_on_msg(stan_t *st, const server_msg_t *m)
{
    Pb__PubMsg *pm = pb__pub_msg__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    if (!pm) {
        puback_now(st, m, NULL, "stan: invalid publish request");
        return;
    }
    const char *err = NULL;
    stan_channel_t *ch = NULL;
    if (!pm->guid[0] || !pm->clientid[0]) {
        err = "stan: invalid publish request";
    } else if (!stan_client_find(st, pm->clientid, strlen(pm->clientid))) {
        err = "stan: unknown clientID";
    } else {
        ch = stan_channel_get(st, pm->subject, strlen(pm->subject), true, &err);
    }
    if (!ch) {
        LOG_D("publish refused: %s", err);
        puback_now(st, m, pm->guid, err);
        pb__pub_msg__free_unpacked(pm, NULL);
        return;
    }
    ch->last_activity_ms = uv_now(st->loop);
    stan_staged_t *s = xcalloc(1, sizeof *s);
    s->ch = ch;
    s->guid = xstrdup(pm->guid);
    s->ack_reply = m->reply ? xstrndup(m->reply, m->reply_len) : NULL;
    s->reply = pm->reply && pm->reply[0] ? xstrdup(pm->reply) : NULL;
    s->len = pm->data.len;
    s->data = xmalloc(s->len ? s->len : 1);
    if (s->len) memcpy(s->data, pm->data.data, s->len);
    pb__pub_msg__free_unpacked(pm, NULL);
    if (st->staged_tail)
        st->staged_tail->next = s;
    else
        st->staged_head = s;
    st->staged_tail = s;
    st->nstaged++;
}

/* Value layout: see stan_channel.c (MSG_HDR). */
static void put_msg(stan_t *st, stan_staged_t *s, int64_t ts)
{
    uint8_t key[12];
    stan_key_msg(key, s->ch->id, s->seq);
    size_t rlen = s->reply ? strlen(s->reply) : 0;
    if (rlen > 0xffff) rlen = 0; /* cannot happen: control lines are 4 KiB at most */
    buf_t *b = &st->scratch;
    buf_reset(b);
    buf_reserve(b, 18 + rlen + s->len);
    uint8_t *p = (uint8_t *)b->data;
    uint64_t t = (uint64_t)ts;
    for (int i = 7; i >= 0; i--, t >>= 8)
        p[i] = (uint8_t)t;
    uint64_t c = s->cum;
    for (int i = 15; i >= 8; i--, c >>= 8)
        p[i] = (uint8_t)c;
    p[16] = (uint8_t)(rlen >> 8);
    p[17] = (uint8_t)rlen;
    if (rlen) memcpy(p + 18, s->reply, rlen);
    if (s->len) memcpy(p + 18 + rlen, s->data, s->len);
    b->len = 18 + rlen + s->len;
    store_append(st->store, STORE_DB_MSGS, key, sizeof key, b->data, b->len);
}

void stan_pub_stage_batch(stan_t *st)
{
    if (!st->staged_head) return;
    int64_t now = stan_now_ns();
    for (stan_staged_t *s = st->staged_head; s; s = s->next) {
        stan_channel_t *ch = s->ch;
        if (!ch->persisted) stan_channel_put_record(st, ch);
        s->seq = ch->next_seq++;
        ch->cum_next += s->len;
        s->cum = ch->cum_next;
        /* Timestamps are unique and increasing per channel, so time-based starts are exact. */
        int64_t ts = now > ch->last_ts ? now : ch->last_ts + 1;
        ch->last_ts = ts;
        put_msg(st, s, ts);
    }
    for (stan_staged_t *s = st->staged_head; s; s = s->next)
        stan_channel_stage_limits(st, s->ch);
    st->building.msgs = st->staged_head;
    st->staged_head = st->staged_tail = NULL;
    st->nstaged = 0;
}
