/* stan_pending: a subscription's unacked messages: a hash by sequence plus a list in expiry
 * order, and their rows in the store, written lazily (see stan_pend_touch). */
#include <stdlib.h>
#include <string.h>

#include "stan_private.h"
#include "xalloc.h"

/* ---- pending set ---------------------------------------------------------------------- */

static stan_pending_t **pend_slot(stan_sub_t *s, uint64_t seq)
{
    stan_pending_t **pp = &s->phash[(seq * 0x9E3779B97F4A7C15ull >> 32) & (s->pbuckets - 1)];
    while (*pp && (*pp)->seq != seq)
        pp = &(*pp)->hnext;
    return pp;
}

stan_pending_t *stan_pend_find(stan_sub_t *s, uint64_t seq)
{
    return s->pbuckets ? *pend_slot(s, seq) : NULL;
}

static void pend_grow(stan_sub_t *s)
{
    size_t n = s->pbuckets ? s->pbuckets * 2 : 16;
    stan_pending_t **old = s->phash;
    size_t on = s->pbuckets;
    s->phash = xcalloc(n, sizeof *s->phash);
    s->pbuckets = n;
    for (size_t i = 0; i < on; i++) {
        stan_pending_t *p = old[i];
        while (p) {
            stan_pending_t *next = p->hnext;
            stan_pending_t **slot = pend_slot(s, p->seq);
            p->hnext = *slot;
            *slot = p;
            p = next;
        }
    }
    free(old);
}

static void list_unlink(stan_sub_t *s, stan_pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        s->phead = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        s->ptail = p->prev;
    p->prev = p->next = NULL;
}

static void list_append(stan_sub_t *s, stan_pending_t *p)
{
    p->prev = s->ptail;
    p->next = NULL;
    if (s->ptail)
        s->ptail->next = p;
    else
        s->phead = p;
    s->ptail = p;
}

stan_pending_t *stan_pend_add(stan_sub_t *s, uint64_t seq, uint32_t count, uint32_t size,
                              uint64_t expire)
{
    if (s->npending + 1 > s->pbuckets) pend_grow(s);
    stan_pending_t *p = xcalloc(1, sizeof *p);
    p->seq = seq;
    p->count = count;
    p->size = size;
    s->inflight_bytes += size;
    p->expire_ms = expire;
    stan_pending_t **slot = pend_slot(s, seq);
    p->hnext = *slot;
    *slot = p;
    list_append(s, p);
    /* Sequence order: new deliveries come in increasing order, so this is the tail in practice;
     * transfers and recovery may land earlier. */
    stan_pending_t *after = s->stail;
    while (after && after->seq > seq)
        after = after->sprev;
    p->sprev = after;
    p->snext = after ? after->snext : s->shead;
    if (p->snext)
        p->snext->sprev = p;
    else
        s->stail = p;
    if (after)
        after->snext = p;
    else
        s->shead = p;
    s->npending++;
    return p;
}

void stan_pend_remove(stan_sub_t *s, stan_pending_t *p)
{
    stan_pending_t **slot = pend_slot(s, p->seq);
    if (*slot == p) *slot = p->hnext;
    list_unlink(s, p);
    if (p->sprev)
        p->sprev->snext = p->snext;
    else
        s->shead = p->snext;
    if (p->snext)
        p->snext->sprev = p->sprev;
    else
        s->stail = p->sprev;
    s->npending--;
    s->inflight_bytes -= p->size;
    free(p);
}

static void pend_store_put(stan_t *st, stan_sub_t *s, uint64_t seq, uint32_t count)
{
    uint8_t key[16], val[4] = {(uint8_t)(count >> 24), (uint8_t)(count >> 16),
                               (uint8_t)(count >> 8), (uint8_t)count};
    stan_key_pending(key, s->id, seq);
    store_put(st->store, STORE_DB_PENDING, key, sizeof key, val, sizeof val);
}

static void pend_store_del(stan_t *st, stan_sub_t *s, uint64_t seq)
{
    uint8_t key[16];
    stan_key_pending(key, s->id, seq);
    store_del(st->store, STORE_DB_PENDING, key, sizeof key);
}

/* The row of p must be written with the next batch. */
void stan_pend_touch(stan_t *st, stan_sub_t *s, stan_pending_t *p)
{
    if (p->dirty) return;
    p->dirty = true;
    if (s->npdirty == s->cap_pdirty) {
        s->cap_pdirty = s->cap_pdirty ? s->cap_pdirty * 2 : 16;
        s->pdirty = xrealloc(s->pdirty, s->cap_pdirty * sizeof *s->pdirty);
    }
    s->pdirty[s->npdirty++] = p->seq;
    stan_sub_mark_dirty(st, s);
}

/* Forgets p, deleting its row if it reached the disk. */
void stan_pend_drop(stan_t *st, stan_sub_t *s, stan_pending_t *p)
{
    if (p->on_disk) pend_store_del(st, s, p->seq);
    stan_pend_remove(s, p);
}

void stan_pend_write_dirty(stan_t *st, stan_sub_t *s)
{
    for (size_t i = 0; i < s->npdirty; i++) {
        stan_pending_t *p = stan_pend_find(s, s->pdirty[i]);
        if (!p || !p->dirty) continue;
        p->dirty = false;
        p->on_disk = true;
        pend_store_put(st, s, p->seq, p->count);
    }
    s->npdirty = 0;
}

static void list_prepend(stan_sub_t *s, stan_pending_t *p)
{
    p->prev = NULL;
    p->next = s->phead;
    if (s->phead)
        s->phead->prev = p;
    else
        s->ptail = p;
    s->phead = p;
}

/* Moves `from`'s unacked messages to `to`, due at once (they will be flagged redelivered). */
void stan_pend_transfer(stan_t *st, stan_sub_t *from, stan_sub_t *to)
{
    while (from->ptail) {
        stan_pending_t *p = from->ptail;
        uint64_t seq = p->seq;
        uint32_t count = p->count, size = p->size;
        stan_pend_drop(st, from, p);
        if (stan_pend_find(to, seq)) continue;
        stan_pending_t *q = stan_pend_add(to, seq, count, size, 0);
        list_unlink(to, q);
        list_prepend(to, q);
        stan_pend_touch(st, to, q);
    }
    stan_sub_mark_ready(st, to);
}

void stan_sub_store_failed(stan_t *st)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        for (stan_sub_t *s = ch->subs; s; s = s->ch_next) {
            for (stan_pending_t *p = s->phead; p; p = p->next) {
                if (p->dirty) continue;
                p->on_disk = true; /* a delete of a missing row is harmless */
                stan_pend_touch(st, s, p);
            }
            stan_sub_mark_dirty(st, s);
        }
    }
}

void stan_pend_to_tail(stan_sub_t *s, stan_pending_t *p)
{
    list_unlink(s, p);
    list_append(s, p);
}
