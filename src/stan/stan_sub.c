/* stan_sub: see stan_sub.h. */
#include "stan_sub.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "nuid.h"
#include "stan_channel.h"
#include "stan_keys.h"
#include "store.pb-c.h"
#include "xalloc.h"

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

void stan_sub_mark_ready(stan_t *st, stan_sub_t *s)
{
    if (list_linked(&s->ready_link) || s->deleted) return;
    s->refs++;
    list_push_back(&st->ready, &s->ready_link);
}

void stan_sub_transfer(stan_t *st, stan_sub_t *from, stan_sub_t *to)
{
    stan_sub_pset_changed(st, to, stan_pset_transfer(&from->pend, &to->pend, st->store));
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
    r.dead_total = s->dead_total;
    r.is_paused = s->is_paused;
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
            stan_pset_write_dirty(&s->pend, st->store);
        }
        stan_sub_unref(st, s);
    }
    st->ndirty = 0;
}

void stan_sub_foreach(stan_t *st, void (*fn)(stan_t *st, stan_sub_t *s, void *arg), void *arg)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        list_node_t *n;
        list_foreach (n, &ch->subs)
            fn(st, STAN_SUB_OF(n, ch_link), arg);
    }
}

static void store_failed(stan_t *st, stan_sub_t *s, void *arg)
{
    (void)arg;
    stan_sub_pset_changed(st, s, stan_pset_store_failed(&s->pend));
}

void stan_sub_store_failed(stan_t *st)
{
    stan_sub_foreach(st, store_failed, NULL);
}

void stan_sub_channel_has_new(stan_t *st, stan_channel_t *ch)
{
    list_node_t *n;
    list_foreach (n, &ch->subs) {
        stan_sub_t *s = STAN_SUB_OF(n, ch_link);
        if (s->ready && s->client) stan_sub_mark_ready(st, s);
    }
}

/* ---- the AckWait timer ---------------------------------------------------------------- */

/* Expired messages are redelivered by the next delivery pass, within its budget. */
static void on_ack_timer(uv_timer_t *t)
{
    stan_sub_t *s = t->data;
    if (s->deleted) return;
    /* Libuv's timers run on its cached loop time, which lags the clock a little: early, wait
     * the rest rather than mark a subscription ready with nothing due. */
    stan_pending_t *p = stan_pset_first_due(&s->pend);
    if (p && p->expire_ms > clock_mono_ms()) {
        stan_sub_arm_timer(s);
        return;
    }
    stan_sub_mark_ready(s->st, s);
}

void stan_sub_arm_timer(stan_sub_t *s)
{
    stan_pending_t *p = stan_pset_first_due(&s->pend);
    if (!p || !s->client) {
        uv_timer_stop(&s->ack_timer);
        return;
    }
    uint64_t now = clock_mono_ms();
    uint64_t due = p->expire_ms > now ? p->expire_ms - now : 0;
    uv_timer_start(&s->ack_timer, on_ack_timer, due, 0);
}

void stan_sub_retry_in(stan_sub_t *s, uint64_t ms)
{
    uv_timer_start(&s->ack_timer, on_ack_timer, ms, 0);
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void on_sub_timer_closed(uv_handle_t *h)
{
    stan_sub_t *s = h->data;
    stan_pset_free(&s->pend);
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

stan_sub_t *stan_sub_new(stan_t *st, uint64_t id, stan_channel_t *ch, const char *client_id,
                         const char *ack_inbox)
{
    stan_sub_t *s = xcalloc(1, sizeof *s);
    s->st = st;
    s->id = id;
    s->ch = ch;
    s->client_id = xstrdup(client_id);
    s->refs = 1; /* the channel's list */
    stan_pset_init(&s->pend, id);
    uv_timer_init(st->loop, &s->ack_timer);
    s->ack_timer.data = s;
    uv_unref((uv_handle_t *)&s->ack_timer); /* engine timers never keep the loop alive */
    s->ack_inbox = ack_inbox ? xstrdup(ack_inbox) : new_ack_inbox(st);
    strmap_put(&st->subs_by_ack, s->ack_inbox, strlen(s->ack_inbox), s);
    uint8_t key[8];
    stan_key_u64(key, id);
    strmap_put(&st->subs_by_id, (const char *)key, sizeof key, s);
    list_push_front(&ch->subs, &s->ch_link);
    ch->nsubs++;
    return s;
}

void stan_sub_renew_ack_inbox(stan_t *st, stan_sub_t *s)
{
    strmap_del(&st->subs_by_ack, s->ack_inbox, strlen(s->ack_inbox));
    free(s->ack_inbox);
    s->ack_inbox = new_ack_inbox(st);
    strmap_put(&st->subs_by_ack, s->ack_inbox, strlen(s->ack_inbox), s);
}

stan_sub_t *stan_sub_by_ack(stan_t *st, const char *inbox, size_t len)
{
    return strmap_get(&st->subs_by_ack, inbox, len);
}

stan_sub_t *stan_sub_by_id(stan_t *st, uint64_t id)
{
    uint8_t key[8];
    stan_key_u64(key, id);
    return strmap_get(&st->subs_by_id, (const char *)key, sizeof key);
}

void stan_sub_attach(stan_sub_t *s, stan_client_t *cl, list_node_t *cl_subs)
{
    s->client = cl;
    s->is_offline = false;
    list_push_front(cl_subs, &s->cl_link);
}

void stan_sub_detach(stan_sub_t *s)
{
    list_remove(&s->cl_link);
    s->client = NULL;
}

/* ---- durables and queue groups -------------------------------------------------------- */

static char *join_key(const char *a, char sep, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *k = xmalloc(la + lb + 2);
    memcpy(k, a, la);
    k[la] = sep;
    memcpy(k + la + 1, b, lb + 1);
    return k;
}

stan_sub_t *stan_sub_durable_find(stan_channel_t *ch, const char *client_id, const char *durable)
{
    char *k = join_key(client_id, '|', durable);
    stan_sub_t *d = strmap_get(&ch->durables, k, strlen(k));
    free(k);
    return d;
}

void stan_sub_durable_add(stan_sub_t *s)
{
    char *k = join_key(s->client_id, '|', s->durable);
    strmap_put(&s->ch->durables, k, strlen(k), s);
    free(k);
}

static void durable_del(stan_sub_t *s)
{
    char *k = join_key(s->client_id, '|', s->durable);
    if (strmap_get(&s->ch->durables, k, strlen(k)) == s) strmap_del(&s->ch->durables, k, strlen(k));
    free(k);
}

/* Allocated whole: two groups whose names differ anywhere, however long, are two groups. */
char *stan_sub_qgroup_key(const char *durable, const char *qgroup)
{
    return durable ? join_key(durable, ':', qgroup) : xstrdup(qgroup);
}

stan_qgroup_t *stan_sub_qgroup_get(stan_channel_t *ch, const char *key, bool durable)
{
    stan_qgroup_t *g = strmap_get(&ch->qgroups, key, strlen(key));
    if (g) return g;
    g = xcalloc(1, sizeof *g);
    g->key = xstrdup(key);
    g->ch = ch;
    g->durable = durable;
    list_init(&g->members);
    strmap_put(&ch->qgroups, key, strlen(key), g);
    return g;
}

void stan_sub_qgroup_join(stan_qgroup_t *g, stan_sub_t *s)
{
    s->qg = g;
    list_push_front(&g->members, &s->qg_link);
    g->nmembers++;
    /* For the NATS layer's word that the connection behind an inbox closed (stan_handover.c). */
    hmap_insert(&s->st->members_by_inbox, &s->inbox_node,
                hmap_hash_bytes(s->inbox, strlen(s->inbox)));
}

bool stan_sub_qgroup_paused(const stan_qgroup_t *g)
{
    const list_node_t *n;
    list_foreach (n, &g->members)
        if (STAN_SUB_OF(n, qg_link)->is_paused) return true;
    return false;
}

static void qgroup_leave(stan_sub_t *s)
{
    stan_qgroup_t *g = s->qg;
    if (!g) return;
    hmap_remove(&s->st->members_by_inbox, &s->inbox_node);
    list_remove(&s->grace_link);
    if (list_linked(&s->qg_link)) {
        list_remove(&s->qg_link);
        g->nmembers--;
    }
    s->qg = NULL;
    if (g->nmembers == 0) {
        strmap_del(&g->ch->qgroups, g->key, strlen(g->key));
        free(g->key);
        free(g);
    }
}

/* ---- leaving -------------------------------------------------------------------------- */

/* redo: memory has forgotten the subscription already, so its record and rows must go even if
 * the batch fails (store_del_redo); otherwise the caller rolls back or waits for the commit. */
static void stage_delete(stan_t *st, uint64_t id, bool redo)
{
    uint8_t key[8], lo[16], hi[16];
    stan_key_u64(key, id);
    stan_key_pending(lo, id, 0);
    stan_key_pending(hi, id, UINT64_MAX);
    if (redo) {
        store_del_redo(st->store, STORE_DB_SUBS, key, sizeof key);
        store_del_range_redo(st->store, STORE_DB_PENDING, lo, sizeof lo, hi, sizeof hi);
    } else {
        store_del(st->store, STORE_DB_SUBS, key, sizeof key);
        store_del_range(st->store, STORE_DB_PENDING, lo, sizeof lo, hi, sizeof hi);
    }
}

void stan_sub_delete(stan_t *st, stan_sub_t *s)
{
    if (s->deleted) return;
    stan_channel_t *ch = s->ch;
    ch->last_activity_ms = clock_mono_ms();
    s->deleted = true;
    uv_timer_stop(&s->ack_timer);
    strmap_del(&st->subs_by_ack, s->ack_inbox, strlen(s->ack_inbox));
    uint8_t key[8];
    stan_key_u64(key, s->id);
    if (strmap_get(&st->subs_by_id, (const char *)key, sizeof key) == s)
        strmap_del(&st->subs_by_id, (const char *)key, sizeof key);
    if (s->durable && !s->qgroup) durable_del(s);
    stan_sub_detach(s);
    qgroup_leave(s);
    list_remove(&s->ch_link);
    ch->nsubs--;
    stage_delete(st, s->id, true);
    stan_sub_unref(st, s);
}

void stan_sub_stage_delete(stan_t *st, uint64_t id)
{
    stage_delete(st, id, false);
}

static void go_offline(stan_t *st, stan_sub_t *s)
{
    stan_sub_detach(s);
    s->is_offline = true;
    s->ready = false;
    uv_timer_stop(&s->ack_timer);
    stan_sub_mark_dirty(st, s);
}

void stan_sub_leave(stan_t *st, stan_sub_t *s, bool close_only)
{
    if (s->qg) {
        stan_qgroup_t *g = s->qg;
        stan_sub_t *heir = NULL;
        list_node_t *n;
        list_foreach (n, &g->members) {
            stan_sub_t *o = STAN_SUB_OF(n, qg_link);
            if (o != s && o->client && (!heir || o->pend.count < heir->pend.count)) heir = o;
        }
        if (heir) {
            stan_sub_transfer(st, s, heir);
            stan_sub_delete(st, s);
        } else if (close_only && g->durable) {
            /* The last member of a durable group: it stays as the group's offline shadow. */
            go_offline(st, s);
        } else {
            stan_sub_delete(st, s);
        }
        return;
    }
    if (close_only && s->is_durable)
        go_offline(st, s);
    else
        stan_sub_delete(st, s);
}

void stan_sub_client_gone(stan_t *st, list_node_t *cl_subs, bool unsubscribe)
{
    list_node_t *n;
    while ((n = list_first(cl_subs))) {
        stan_sub_t *s = STAN_SUB_OF(n, cl_link);
        stan_sub_leave(st, s, !unsubscribe);
        if (list_first(cl_subs) == n) stan_sub_detach(s); /* left offline */
    }
}

/* ---- recovery and exit ---------------------------------------------------------------- */

int stan_sub_restore_pending(stan_t *st, uint64_t sub_id, uint64_t seq, uint32_t count)
{
    uint8_t key[8];
    stan_key_u64(key, sub_id);
    stan_sub_t *s = strmap_get(&st->subs_by_id, (const char *)key, sizeof key);
    if (!s) return STZ_ENOENT;
    if (stan_pset_find(&s->pend, seq)) return STZ_EEXIST;
    /* Its size, for the in-flight bytes: recovery runs inside a read view. */
    stan_msgval_t mv;
    uint32_t size = stan_msg_get(st->store, s->ch->id, seq, &mv) ? (uint32_t)mv.len : 0;
    if (count > 1) s->redelivered_total += count - 1;
    /* Due at once: recovered unacked messages are redelivered first. */
    stan_pset_add(&s->pend, seq, count ? count : 1, size, 0, 0)->on_disk = true;
    return 0;
}

void stan_sub_quiet_all(stan_t *st)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->subs_by_id, &it); e;
         e = strmap_next(&st->subs_by_id, &it, e))
        uv_timer_stop(&((stan_sub_t *)e->val)->ack_timer);
}

void stan_sub_free_all(stan_t *st)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        list_node_t *n;
        while ((n = list_pop_front(&ch->subs))) {
            stan_sub_t *s = STAN_SUB_OF(n, ch_link);
            qgroup_leave(s);
            s->deleted = true;
            uv_timer_stop(&s->ack_timer);
            uv_close((uv_handle_t *)&s->ack_timer, on_sub_timer_closed);
        }
    }
    list_init(&st->ready);
    st->ndirty = 0;
}
