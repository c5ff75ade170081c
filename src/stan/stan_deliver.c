/* stan_deliver: see stan_deliver.h. */
#include "stan_deliver.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "pbwire.h"
#include "stan_channel.h"
#include "stan_client.h"
#include "stan_dead.h"
#include "stan_handover.h"
#include "stan_keys.h"
#include "stan_sub.h"
#include "xalloc.h"

/* ---- delivery ------------------------------------------------------------------------- */

/* The loop's budget for one delivery pass (see STAN_DELIVER_BUDGET), and the pass's time. */
typedef struct budget {
    size_t left;
    uint64_t deadline_ns;
    uint64_t now_ms; /* read once per pass: what expiry times are computed from */
} budget_t;

/* Takes one delivery from the budget; false when the pass must stop. The clock is read every
 * 64 deliveries: cheap, and a slow pass (a loaded machine, a sanitizer build) still stops in
 * time. */
static bool budget_take(budget_t *b)
{
    if (b->left == 0) return false;
    b->left--;
    if ((b->left & 63) == 0 && clock_mono_ns() >= b->deadline_ns) b->left = 0;
    return true;
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
    bus_msg_t out = {.subject = s->inbox,
                     .subject_len = strlen(s->inbox),
                     .data = st->scratch.data,
                     .data_len = st->scratch.len};
    bus_publish(&st->bus, &out);
    return true;
}

/* How long after its count-th delivery the message is due again: AckWait, or the channel's
 * backoff entry for that redelivery if longer (the last entry repeats). */
static uint64_t next_wait(const stan_sub_t *s, uint32_t count)
{
    uint64_t wait = (uint64_t)s->ack_wait_s * 1000;
    const config_limits_t *l = &s->ch->limits;
    if (l->nbackoff > 0) {
        uint32_t i = count - 1 < (uint32_t)l->nbackoff ? count - 1 : (uint32_t)l->nbackoff - 1;
        if ((uint64_t)l->backoff_ms[i] > wait) wait = (uint64_t)l->backoff_ms[i];
    }
    return wait;
}

/* Sends seq to s as a first delivery; returns the channel's running total at seq (or 0 when
 * the message is gone). */
static uint64_t deliver_new(stan_t *st, stan_sub_t *s, msg_reader_t *rd, uint64_t seq,
                            const budget_t *b)
{
    uint64_t wait = next_wait(s, 1);
    stan_msgval_t mv;
    if (!send_msg(st, s, rd, seq, 1, &mv)) return 0;
    stan_pending_t *p = stan_pset_add(&s->pend, seq, 1, (uint32_t)mv.len, b->now_ms + wait, wait);
    stan_sub_pset_changed(st, s, stan_pset_touch(&s->pend, p));
    /* With a backoff, redelivered messages may be due later than this one, now perhaps first. */
    if (!uv_is_active((uv_handle_t *)&s->ack_timer) ||
        (s->ch->limits.nbackoff > 0 && stan_pset_first_due(&s->pend) == p))
        stan_sub_arm_timer(s);
    return mv.cum;
}

/* Whether s may get a message now (a paused one gets nothing: stan_admin_pause). */
static bool can_take(const stan_sub_t *s)
{
    return s->ready && s->client && !s->deleted && !s->is_paused &&
           s->pend.count < (size_t)s->max_inflight;
}

/* The sequence to send after last_sent: the first stored past it. When every message is gone
 * (max_age expired or a purge removed them all: first_seq = last_seq + 1), the last one, which
 * is not found and not sent: last_sent must never pass the channel's last sequence, or the next
 * message published would count as sent already. */
static uint64_t next_to_send(const stan_channel_t *ch, uint64_t last_sent)
{
    uint64_t seq = last_sent + 1;
    if (seq < ch->first_seq) seq = ch->first_seq;
    return seq <= ch->last_seq ? seq : ch->last_seq;
}

static void deliver_plain(stan_t *st, stan_sub_t *s, budget_t *b)
{
    stan_channel_t *ch = s->ch;
    bool moved = false;
    if (!can_take(s) || s->last_sent >= ch->last_seq || !stan_sub_inbox_alive(st, s)) return;
    msg_reader_t rd = {0};
    while (can_take(s) && s->last_sent < ch->last_seq && budget_take(b)) {
        uint64_t seq = next_to_send(ch, s->last_sent);
        s->last_sent = seq;
        moved = true;
        uint64_t cum = deliver_new(st, s, &rd, seq, b);
        if (cum) s->last_sent_cum = cum;
    }
    reader_close(&rd);
    if (moved) stan_sub_mark_dirty(st, s);
}

/* Whether a group member can be given a new message. One whose client left its last heartbeat
 * unanswered may be hung: the others get the new messages (its own go to them after
 * handover_grace, stan_handover.c) until it answers again. */
static bool member_takes(stan_t *st, const stan_sub_t *m)
{
    return can_take(m) && m->client->hb_fails == 0 && stan_sub_inbox_alive(st, m);
}

/* The member with the fewest unacked messages that has room; ties rotate. */
static stan_sub_t *pick_member(stan_t *st, stan_qgroup_t *g)
{
    size_t min = SIZE_MAX;
    list_node_t *n;
    list_foreach (n, &g->members) {
        stan_sub_t *m = STAN_SUB_OF(n, qg_link);
        if (m->pend.count < min && member_takes(st, m)) min = m->pend.count;
    }
    if (min == SIZE_MAX) return NULL;
    size_t start = g->rr++ % g->nmembers, i = 0;
    stan_sub_t *first = NULL;
    list_foreach (n, &g->members) {
        stan_sub_t *m = STAN_SUB_OF(n, qg_link);
        size_t at = i++;
        if (m->pend.count != min || !member_takes(st, m)) continue;
        if (at >= start) return m;
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
        uint64_t seq = next_to_send(ch, g->last_sent);
        g->last_sent = seq;
        uint64_t cum = deliver_new(st, m, &rd, seq, b);
        if (cum) g->last_sent_cum = cum;
        stan_sub_mark_dirty(st, m);
    }
    reader_close(&rd);
}

/* Its client is not there (gone, or reconnecting). A queue member's messages go to a member
 * that is; otherwise they wait, without counting a delivery. */
static void hand_over(stan_t *st, stan_sub_t *s)
{
    stan_sub_t *heir = stan_handover_heir(st, s);
    if (heir)
        stan_handover_move(st, s, heir);
    else
        stan_sub_retry_in(s, 1000);
}

/* Redelivers the unacked messages that are due, in the order they fell due. Each one handled
 * leaves, is due again later than now (AckWait is at least a second) or is parked, so the loop
 * ends. */
static void redeliver_due(stan_t *st, stan_sub_t *s, budget_t *b)
{
    if (!s->client || !s->ready || s->is_paused) return; /* resuming marks it ready */
    if (!stan_sub_inbox_alive(st, s)) {
        hand_over(st, s);
        return;
    }
    uint64_t now = b->now_ms;
    /* max_deliveries: 0 (none) costs the one compare below. */
    uint64_t max = (uint64_t)s->ch->limits.max_deliveries;
    stan_pending_t *p;
    msg_reader_t rd = {0};
    while ((p = stan_pset_first_due(&s->pend)) && p->expire_ms <= now) {
        if (!budget_take(b)) {
            stan_sub_mark_ready(st, s); /* the rest in the next pass */
            break;
        }
        if (max && p->count >= max && stan_dead_take(st, s, p)) continue; /* parked */
        p->count++;
        if (send_msg(st, s, &rd, p->seq, p->count, NULL)) {
            s->redelivered_total++;
            st->redeliveries_total++;
            uint64_t wait = next_wait(s, p->count);
            stan_pset_schedule(&s->pend, p, now + wait, wait);
            stan_sub_pset_changed(st, s, stan_pset_touch(&s->pend, p));
        } else {
            /* Evicted by limits while unacked: implicitly acked, as NSS does. */
            stan_pset_drop(&s->pend, st->store, p);
        }
    }
    reader_close(&rd);
    stan_sub_arm_timer(s);
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

void stan_deliver_close(stan_t *st)
{
    if (!st->kick) return;
    uv_close((uv_handle_t *)st->kick, on_kick_closed);
    st->kick = NULL;
}

/* One subscription's turn in a pass. */
static void serve(stan_t *st, stan_sub_t *s, budget_t *b)
{
    if (s->deleted || !s->client || !s->ready) return;
    stan_pending_t *p = stan_pset_first_due(&s->pend);
    if (p && p->expire_ms <= b->now_ms) redeliver_due(st, s, b);
    if (s->qg)
        deliver_group(st, s->qg, b);
    else
        deliver_plain(st, s, b);
    if (b->left == 0) {
        /* A group's turn serves all its members: it goes again while it has more. */
        uint64_t sent = s->qg ? s->qg->last_sent : s->last_sent;
        if ((s->qg || can_take(s)) && sent < s->ch->last_seq) stan_sub_mark_ready(st, s);
    }
}

void stan_deliver_ready(stan_t *st)
{
    if (list_empty(&st->ready)) {
        kick(st, false);
        return;
    }
    if (store_read_begin(st->store) != STZ_OK) return;
    budget_t b = {STAN_DELIVER_BUDGET, clock_mono_ns() + STAN_DELIVER_SLICE_NS, clock_mono_ms()};
    /* Each subscription ready now gets its turn once; one that still has work after its turn
     * (or that the budget did not reach) goes to the back, for the next pass. */
    list_node_t *tail = list_last(&st->ready), *n;
    bool last = false;
    while (!last && b.left > 0 && (n = list_pop_front(&st->ready))) {
        stan_sub_t *s = STAN_SUB_OF(n, ready_link);
        last = n == tail;
        serve(st, s, &b);
        stan_sub_unref(st, s);
    }
    store_read_end(st->store);
    kick(st, !list_empty(&st->ready));
}

/* ---- acks ----------------------------------------------------------------------------- */

void stan_deliver_on_ack(void *arg, const bus_msg_t *m)
{
    stan_t *st = arg;
    stan_sub_t *s = stan_sub_by_ack(st, m->subject, m->subject_len);
    if (!s || s->deleted) return;
    pbw_slice_t subj;
    uint64_t seq;
    if (pbw_decode_ack(m->data, m->data_len, &subj, &seq) != 0) return;
    stan_sub_t *owner = s;
    stan_pending_t *p = stan_pset_find(&s->pend, seq);
    if (!p && s->qg) {
        /* NSS honours an ack for a message pending on another member of the group. */
        list_node_t *n;
        list_foreach (n, &s->qg->members) {
            stan_sub_t *o = STAN_SUB_OF(n, qg_link);
            if ((p = stan_pset_find(&o->pend, seq))) {
                owner = o;
                break;
            }
        }
    }
    if (!p) return; /* unknown sequence: ignored */
    bool was_head = stan_pset_first_due(&owner->pend) == p;
    stan_pset_drop(&owner->pend, st->store, p);
    if (was_head) stan_sub_arm_timer(owner);
    stan_sub_mark_ready(st, owner);
}

static void tick_sub(stan_t *st, stan_sub_t *s, void *arg)
{
    uint64_t now = *(const uint64_t *)arg;
    uint64_t sent = s->qg ? s->qg->last_sent : s->last_sent;
    /* Redeliveries that are due, even if their timer has not fired (stan_run_due). */
    stan_pending_t *p = stan_pset_first_due(&s->pend);
    bool due = s->ready && s->client && !s->is_paused && p && p->expire_ms <= now;
    if (due || (can_take(s) && sent < s->ch->last_seq)) stan_sub_mark_ready(st, s);
}

void stan_deliver_tick(stan_t *st)
{
    uint64_t now = clock_mono_ms();
    stan_sub_foreach(st, tick_sub, &now);
}
