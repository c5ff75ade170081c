/* stan_deliver: getting stored messages to subscriptions: the per-iteration delivery pass,
 * queue member choice, acks and the MaxInflight window, AckWait redelivery, and the tick that
 * retries deliveries held back for an absent inbox. */
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"
#include "stan_private.h"
#include "xalloc.h"

static void on_ack_timer(uv_timer_t *t);

/* ---- delivery ------------------------------------------------------------------------- */

/* The loop's budget for one delivery pass (see STAN_DELIVER_BUDGET). */
typedef struct budget {
    size_t left;
    uint64_t deadline_ns;
} budget_t;

/* Takes one delivery from the budget; false when the pass must stop. The clock is read every
 * 64 deliveries: cheap, and a slow pass (a loaded machine, a sanitizer build) still stops in
 * time. */
static bool budget_take(budget_t *b)
{
    if (b->left == 0) return false;
    b->left--;
    if ((b->left & 63) == 0 && uv_hrtime() >= b->deadline_ns) b->left = 0;
    return true;
}

void stan_sub_mark_ready(stan_t *st, stan_sub_t *s)
{
    if (s->in_ready_list || s->deleted) return;
    s->in_ready_list = true;
    s->refs++;
    s->ready_next = NULL;
    if (st->ready_tail)
        st->ready_tail->ready_next = s;
    else
        st->ready = s;
    st->ready_tail = s;
}

void stan_sub_channel_has_new(stan_t *st, stan_channel_t *ch)
{
    for (stan_sub_t *s = ch->subs; s; s = s->ch_next)
        if (s->ready && s->client) stan_sub_mark_ready(st, s);
}

static void arm_timer(stan_t *st, stan_sub_t *s)
{
    if (!s->phead || !s->client) {
        uv_timer_stop(&s->ack_timer);
        return;
    }
    uint64_t now = uv_now(st->loop);
    uint64_t due = s->phead->expire_ms > now ? s->phead->expire_ms - now : 0;
    uv_timer_start(&s->ack_timer, on_ack_timer, due, 0);
}

/* Reads a channel's messages for one delivery pass: a cursor that steps forward while the
 * sequences are consecutive (the common case), and seeks otherwise. */
typedef struct msg_reader {
    store_cursor_t *c;
    uint64_t next_seq;
    bool valid;
} msg_reader_t;

static bool reader_get(stan_t *st, msg_reader_t *r, stan_channel_t *ch, uint64_t seq,
                       store_val_t *v)
{
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, ch->id, seq);
    store_val_t k;
    if (!r->c) r->c = store_cursor_open(st->store, STORE_DB_MSGS);
    if (!r->c) return false;
    int rc = r->valid && seq == r->next_seq ? store_cursor_next(r->c, &k, v)
                                            : store_cursor_seek(r->c, key, sizeof key, &k, v);
    r->valid = rc == STZ_OK && k.len == sizeof key && memcmp(k.p, key, sizeof key) == 0;
    r->next_seq = seq + 1;
    return r->valid;
}

static void reader_close(msg_reader_t *r)
{
    if (r->c) store_cursor_close(r->c);
    r->c = NULL;
    r->valid = false;
}

/* Sends one stored message to s. Returns false if the message is gone (evicted by limits). */
static bool send_msg(stan_t *st, stan_sub_t *s, msg_reader_t *rd, uint64_t seq, uint32_t count,
                     stan_msgval_t *sent)
{
    store_val_t v;
    if (!reader_get(st, rd, s->ch, seq, &v)) return false;
    stan_msgval_t mv;
    if (!stan_msg_decode(v.p, v.len, &mv)) return false;
    if (sent) *sent = mv;
    pbw_msgproto_t m = {
        .sequence = seq,
        .subject = s->ch->name,
        .subject_len = s->ch->name_len,
        .reply = mv.reply,
        .reply_len = mv.reply_len,
        .data = mv.data, /* straight from the map */
        .data_len = mv.len,
        .timestamp = mv.ts,
        .redelivered = count > 1,
        .redelivery_count = count > 1 ? count - 1 : 0,
    };
    buf_reset(&st->scratch);
    pbw_encode_msgproto(&st->scratch, &m);
    server_msg_t out = {.subject = s->inbox,
                        .subject_len = strlen(s->inbox),
                        .data = st->scratch.data,
                        .data_len = st->scratch.len};
    server_publish(st->srv, &out);
    return true;
}

/* Sends seq to s as a first delivery; returns the channel's running total at seq (or 0 when
 * the message is gone). */
static uint64_t deliver_new(stan_t *st, stan_sub_t *s, msg_reader_t *rd, uint64_t seq)
{
    uint64_t expire = uv_now(st->loop) + (uint64_t)s->ack_wait_s * 1000;
    stan_msgval_t mv;
    if (!send_msg(st, s, rd, seq, 1, &mv)) return 0;
    stan_pend_touch(st, s, stan_pend_add(s, seq, 1, (uint32_t)mv.len, expire));
    if (!uv_is_active((uv_handle_t *)&s->ack_timer)) arm_timer(st, s);
    return mv.cum;
}

/* Whether anyone listens on the subscription's inbox right now. After a server restart, or
 * while a client's NATS connection reconnects, nobody does: messages are held (not sent into
 * the void) and the once-a-second tick tries again. */
static bool inbox_alive(stan_t *st, const stan_sub_t *s)
{
    return server_interest(st->srv, s->inbox, strlen(s->inbox)) > 0;
}

static bool can_take(const stan_sub_t *s)
{
    return s->ready && s->client && !s->deleted && s->npending < (size_t)s->max_inflight;
}

static void deliver_plain(stan_t *st, stan_sub_t *s, budget_t *b)
{
    stan_channel_t *ch = s->ch;
    bool moved = false;
    if (!can_take(s) || s->last_sent >= ch->last_seq || !inbox_alive(st, s)) return;
    msg_reader_t rd = {0};
    while (can_take(s) && s->last_sent < ch->last_seq && budget_take(b)) {
        uint64_t seq = s->last_sent + 1;
        if (seq < ch->first_seq) seq = ch->first_seq;
        s->last_sent = seq;
        moved = true;
        uint64_t cum = deliver_new(st, s, &rd, seq);
        if (cum) s->last_sent_cum = cum;
    }
    reader_close(&rd);
    if (moved) stan_sub_mark_dirty(st, s);
}

/* The member with the fewest unacked messages that has room; ties rotate. */
static stan_sub_t *pick_member(stan_t *st, stan_qgroup_t *g)
{
    size_t min = SIZE_MAX;
    for (stan_sub_t *m = g->members; m; m = m->qg_next)
        if (can_take(m) && m->npending < min && inbox_alive(st, m)) min = m->npending;
    if (min == SIZE_MAX) return NULL;
    size_t start = g->rr++ % g->nmembers, i = 0;
    stan_sub_t *first = NULL;
    for (stan_sub_t *m = g->members; m; m = m->qg_next, i++) {
        if (!can_take(m) || m->npending != min || !inbox_alive(st, m)) continue;
        if (i >= start) return m;
        if (!first) first = m;
    }
    return first;
}

static void deliver_group(stan_t *st, stan_qgroup_t *g, budget_t *b)
{
    stan_channel_t *ch = g->ch;
    msg_reader_t rd = {0};
    while (g->last_sent < ch->last_seq) {
        stan_sub_t *m = pick_member(st, g);
        if (!m || !budget_take(b)) break;
        uint64_t seq = g->last_sent + 1;
        if (seq < ch->first_seq) seq = ch->first_seq;
        g->last_sent = seq;
        uint64_t cum = deliver_new(st, m, &rd, seq);
        if (cum) g->last_sent_cum = cum;
        stan_sub_mark_dirty(st, m);
    }
    reader_close(&rd);
}

/* Redelivers pending messages that are due (all of them when `all`), in order. */

static void redeliver_due(stan_t *st, stan_sub_t *s, budget_t *b)
{
    if (!s->client || !s->ready) return;
    uint64_t now = uv_now(st->loop);
    if (!inbox_alive(st, s)) {
        /* Its client is not there (gone, or reconnecting). A queue member's messages go to a
         * member that is; otherwise they wait, without counting a delivery. */
        stan_sub_t *heir = NULL;
        if (s->qg)
            for (stan_sub_t *o = s->qg->members; o; o = o->qg_next)
                if (o != s && o->client && o->ready && inbox_alive(st, o) &&
                    (!heir || o->npending < heir->npending))
                    heir = o;
        if (heir) {
            stan_pend_transfer(st, s, heir);
        } else {
            uv_timer_start(&s->ack_timer, on_ack_timer, 1000, 0);
        }
        return;
    }
    stan_pending_t *stop = s->ptail;
    stan_pending_t *p = s->phead;
    msg_reader_t rd = {0};
    while (p && p->expire_ms <= now) {
        if (!budget_take(b)) {
            stan_sub_mark_ready(st, s); /* the rest in the next pass */
            break;
        }
        stan_pending_t *next = p->next;
        bool last = p == stop;
        p->count++;
        if (send_msg(st, s, &rd, p->seq, p->count, NULL)) {
            s->redelivered_total++;
            st->redeliveries_total++;
            p->expire_ms = now + (uint64_t)s->ack_wait_s * 1000;
            stan_pend_touch(st, s, p);
            stan_pend_to_tail(s, p);
        } else {
            /* Evicted by limits while unacked: implicitly acked, as NSS does. */
            stan_pend_drop(st, s, p);
        }
        if (last) break;
        p = next;
    }
    reader_close(&rd);
    arm_timer(st, s);
}

/* Expired messages are redelivered by the next delivery pass, within its budget. */
static void on_ack_timer(uv_timer_t *t)
{
    stan_sub_t *s = t->data;
    if (s->deleted) return;
    stan_sub_mark_ready(s->st, s);
}

static void on_kick(uv_idle_t *h)
{
    (void)h; /* the flush hook that runs next does the work */
}

/* Keeps the loop from sleeping in poll while deliveries wait for the next pass. */
static void kick(stan_t *st, bool on)
{
    if (!st->kick) {
        if (!on) return;
        st->kick = xmalloc(sizeof *st->kick);
        uv_idle_init(st->loop, st->kick);
        uv_unref((uv_handle_t *)st->kick);
    }
    if (on)
        uv_idle_start(st->kick, on_kick);
    else
        uv_idle_stop(st->kick);
}

static void on_kick_closed(uv_handle_t *h)
{
    free(h);
}

void stan_sub_kick_close(stan_t *st)
{
    if (!st->kick) return;
    uv_close((uv_handle_t *)st->kick, on_kick_closed);
    st->kick = NULL;
}

void stan_sub_deliver_ready(stan_t *st)
{
    if (!st->ready) {
        kick(st, false);
        return;
    }
    if (store_read_begin(st->store) != STZ_OK) return;
    budget_t b = {STAN_DELIVER_BUDGET, uv_hrtime() + STAN_DELIVER_SLICE_NS};
    /* Each subscription ready now gets its turn once; one that still has work after its turn
     * (or that the budget did not reach) goes to the back, for the next pass. */
    stan_sub_t *tail = st->ready_tail;
    bool last = false;
    while (st->ready && !last && b.left > 0) {
        stan_sub_t *s = st->ready;
        last = s == tail;
        st->ready = s->ready_next;
        if (!st->ready) st->ready_tail = NULL;
        s->ready_next = NULL;
        s->in_ready_list = false;
        if (!s->deleted && s->client && s->ready) {
            if (s->phead && s->phead->expire_ms <= uv_now(st->loop)) redeliver_due(st, s, &b);
            if (s->qg)
                deliver_group(st, s->qg, &b);
            else
                deliver_plain(st, s, &b);
            if (b.left == 0) {
                /* A group's turn serves all its members: it goes again while it has more. */
                uint64_t sent = s->qg ? s->qg->last_sent : s->last_sent;
                if ((s->qg || can_take(s)) && sent < s->ch->last_seq) stan_sub_mark_ready(st, s);
            }
        }
        stan_sub_unref(st, s);
    }
    store_read_end(st->store);
    kick(st, st->ready != NULL);
}

/* ---- acks ----------------------------------------------------------------------------- */

void stan_sub_on_ack(void *arg, const server_msg_t *m)
{
    stan_t *st = arg;
    stan_sub_t *s = strmap_get(&st->subs_by_ack, m->subject, m->subject_len);
    if (!s || s->deleted) return;
    pbw_slice_t subj;
    uint64_t seq;
    if (pbw_decode_ack(m->data, m->data_len, &subj, &seq) != 0) return;
    stan_sub_t *owner = s;
    stan_pending_t *p = stan_pend_find(s, seq);
    if (!p && s->qg) {
        /* NSS honours an ack for a message pending on another member of the group. */
        for (stan_sub_t *o = s->qg->members; o && !p; o = o->qg_next)
            if ((p = stan_pend_find(o, seq))) owner = o;
    }
    if (!p) return; /* unknown sequence: ignored */
    bool was_head = owner->phead == p;
    stan_pend_drop(st, owner, p);
    if (was_head) arm_timer(st, owner);
    stan_sub_mark_ready(st, owner);
}

void stan_sub_tick(stan_t *st)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        for (stan_sub_t *s = ch->subs; s; s = s->ch_next) {
            uint64_t sent = s->qg ? s->qg->last_sent : s->last_sent;
            if (can_take(s) && sent < ch->last_seq) stan_sub_mark_ready(st, s);
        }
    }
}
