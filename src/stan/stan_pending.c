/* stan_pending: see stan_pending.h. */
#include "stan_pending.h"

#include <stdlib.h>

#include "config.h"
#include "stan_keys.h"
#include "xalloc.h"

/* The lanes after the first: one per backoff entry (the first has the AckWait). */
#define MORE_LANES CONFIG_BACKOFF_MAX

typedef struct stan_pset_lane {
    list_node_t due; /* stan_pending_t.due, in expiry order */
    uint64_t wait_ms;
} lane_t;

#define DUE_ITEM(n) LIST_ITEM(n, stan_pending_t, due)

void stan_pset_init(stan_pset_t *ps, uint64_t owner)
{
    hmap_init(&ps->by_seq);
    list_init(&ps->due);
    ps->wait_ms = 0;
    ps->lanes = NULL;
    list_init(&ps->parked);
    list_init(&ps->order);
    ps->steps = 0;
    ps->count = 0;
    ps->bytes = 0;
    ps->owner = owner;
    list_init(&ps->dirty);
}

static void entry_free(stan_pset_t *ps, stan_pending_t *p)
{
    hmap_remove(&ps->by_seq, &p->node);
    list_remove(&p->due);
    list_remove(&p->order);
    list_remove(&p->dirty);
    ps->count--;
    ps->bytes -= p->size;
    free(p);
}

void stan_pset_free(stan_pset_t *ps)
{
    list_node_t *n;
    while ((n = list_first(&ps->order)))
        entry_free(ps, LIST_ITEM(n, stan_pending_t, order));
    hmap_free(&ps->by_seq);
    free(ps->lanes);
    ps->lanes = NULL;
}

stan_pending_t *stan_pset_find(const stan_pset_t *ps, uint64_t seq)
{
    uint64_t h = hmap_hash_u64(seq);
    for (hmap_node_t *n = hmap_first_with_hash(&ps->by_seq, h); n; n = hmap_next_with_hash(n, h)) {
        stan_pending_t *p = HMAP_ITEM(n, stan_pending_t, node);
        if (p->seq == seq) return p;
    }
    return NULL;
}

/* The lane for entries waiting wait_ms, which is not the first lane's: another with that wait,
 * else the first if nothing waits in it, else an empty one; with none (more waits than lanes),
 * the first. So no two lanes hold entries waiting the same wait (first_in_lanes's ties). */
static list_node_t *lane_for(stan_pset_t *ps, uint64_t wait_ms)
{
    lane_t *empty = NULL;
    for (int i = 0; ps->lanes && i < MORE_LANES; i++) {
        lane_t *l = &ps->lanes[i];
        if (list_empty(&l->due)) {
            if (!empty) empty = l;
        } else if (l->wait_ms == wait_ms) {
            return &l->due;
        }
    }
    list_node_t *last = list_last(&ps->due);
    if (!last || DUE_ITEM(last)->expire_ms == 0) { /* nothing waits in it */
        ps->wait_ms = wait_ms;
        return &ps->due;
    }
    if (!ps->lanes) {
        ps->lanes = xcalloc(MORE_LANES, sizeof *ps->lanes);
        for (int i = 0; i < MORE_LANES; i++)
            list_init(&ps->lanes[i].due);
        empty = &ps->lanes[0];
    }
    if (!empty) return &ps->due;
    empty->wait_ms = wait_ms;
    return &empty->due;
}

/* Puts p (on no list) in its lane after every entry due no later: at the tail, unless the lane
 * is shared by several waits (then it steps back past the later ones). Entries due at once are
 * in the first lane, ahead of those waiting. */
static void place_slow(stan_pset_t *ps, stan_pending_t *p, uint64_t wait_ms)
{
    list_node_t *lane = &ps->due;
    if (p->expire_ms == UINT64_MAX)
        lane = &ps->parked;
    else if (wait_ms != ps->wait_ms && p->expire_ms != 0)
        lane = lane_for(ps, wait_ms);
    list_node_t *at = lane;
    while (at->prev != lane && DUE_ITEM(at->prev)->expire_ms > p->expire_ms) {
        at = at->prev;
        ps->steps++;
    }
    list_insert_before(at, &p->due);
}

/* Inline, the first lane's common case: a delivery's and a redelivery's work here. */
static inline void place(stan_pset_t *ps, stan_pending_t *p, uint64_t expire_ms, uint64_t wait_ms)
{
    p->expire_ms = expire_ms;
    list_node_t *last = ps->due.prev;
    if (wait_ms == ps->wait_ms && expire_ms != UINT64_MAX &&
        (last == &ps->due || DUE_ITEM(last)->expire_ms <= expire_ms))
        list_insert_before(&ps->due, &p->due);
    else
        place_slow(ps, p, wait_ms);
}

void stan_pset_schedule(stan_pset_t *ps, stan_pending_t *p, uint64_t expire_ms, uint64_t wait_ms)
{
    list_remove(&p->due);
    place(ps, p, expire_ms, wait_ms);
}

void stan_pset_due_now(stan_pset_t *ps, stan_pending_t *p)
{
    list_remove(&p->due);
    p->expire_ms = 0;
    list_push_front(&ps->due, &p->due);
}

void stan_pset_park(stan_pset_t *ps, stan_pending_t *p)
{
    stan_pset_schedule(ps, p, UINT64_MAX, 0);
}

/* Ties: expiry is now + wait, so of two entries due at the same time the one with the longer
 * wait was scheduled first (entries due at once are all in the first lane, ahead). */
stan_pending_t *stan_pset_first_in_lanes(const stan_pset_t *ps)
{
    list_node_t *n = list_first(&ps->due);
    stan_pending_t *best = n ? DUE_ITEM(n) : NULL;
    uint64_t best_wait = ps->wait_ms;
    for (int i = 0; i < MORE_LANES; i++) {
        const lane_t *l = &ps->lanes[i];
        if (!(n = list_first(&l->due))) continue;
        stan_pending_t *p = DUE_ITEM(n);
        if (!best || p->expire_ms < best->expire_ms ||
            (p->expire_ms == best->expire_ms && l->wait_ms > best_wait)) {
            best = p;
            best_wait = l->wait_ms;
        }
    }
    return best;
}

/* A new entry, on no due list yet (inline: a delivery's work here). */
static inline stan_pending_t *entry_new(stan_pset_t *ps, uint64_t seq, uint32_t count,
                                        uint32_t size)
{
    stan_pending_t *p = xcalloc(1, sizeof *p);
    p->seq = seq;
    p->count = count;
    p->size = size;
    hmap_insert(&ps->by_seq, &p->node, hmap_hash_u64(seq));
    /* Sequence order: new deliveries come in increasing order, so this is the tail in practice;
     * transfers and recovery may land earlier. */
    list_node_t *after = ps->order.prev;
    while (after != &ps->order && LIST_ITEM(after, stan_pending_t, order)->seq > seq)
        after = after->prev;
    list_insert_before(after->next, &p->order);
    ps->count++;
    ps->bytes += size;
    return p;
}

stan_pending_t *stan_pset_add(stan_pset_t *ps, uint64_t seq, uint32_t count, uint32_t size,
                              uint64_t expire_ms, uint64_t wait_ms)
{
    stan_pending_t *p = entry_new(ps, seq, count, size);
    place(ps, p, expire_ms, wait_ms);
    return p;
}

unsigned stan_pset_touch(stan_pset_t *ps, stan_pending_t *p)
{
    if (list_linked(&p->dirty)) return 0;
    list_push_back(&ps->dirty, &p->dirty);
    return STAN_PSET_DIRTY;
}

void stan_pset_drop(stan_pset_t *ps, store_t *store, stan_pending_t *p)
{
    if (p->on_disk) {
        uint8_t key[16];
        stan_key_pending(key, ps->owner, p->seq);
        store_del_redo(store, STORE_DB_PENDING, key, sizeof key);
    }
    entry_free(ps, p);
}

void stan_pset_write_dirty(stan_pset_t *ps, store_t *store)
{
    list_node_t *n;
    while ((n = list_pop_front(&ps->dirty))) {
        stan_pending_t *p = LIST_ITEM(n, stan_pending_t, dirty);
        p->on_disk = true;
        uint8_t key[16], val[4] = {(uint8_t)(p->count >> 24), (uint8_t)(p->count >> 16),
                                   (uint8_t)(p->count >> 8), (uint8_t)p->count};
        stan_key_pending(key, ps->owner, p->seq);
        store_put(store, STORE_DB_PENDING, key, sizeof key, val, sizeof val);
    }
}

/* Moves every entry of src in front of at. */
static void splice_before(list_node_t *at, list_node_t *src)
{
    if (list_empty(src)) return;
    src->next->prev = at->prev;
    at->prev->next = src->next;
    src->prev->next = at;
    at->prev = src->prev;
    list_init(src);
}

/* The entry of ps that goes out next: the first due, or after those the first parked. */
static stan_pending_t *next_out(const stan_pset_t *ps)
{
    stan_pending_t *p = stan_pset_first_due(ps);
    list_node_t *n;
    if (!p && (n = list_first(&ps->parked))) p = DUE_ITEM(n);
    return p;
}

unsigned stan_pset_transfer(stan_pset_t *from, stan_pset_t *to, store_t *store)
{
    unsigned changed = STAN_PSET_READY;
    list_node_t moved; /* due at once (expire_ms 0), in from's order */
    list_init(&moved);
    stan_pending_t *p;
    while ((p = next_out(from))) {
        uint64_t seq = p->seq;
        uint32_t count = p->count, size = p->size;
        stan_pset_drop(from, store, p);
        if (stan_pset_find(to, seq)) continue;
        stan_pending_t *q = entry_new(to, seq, count, size);
        list_push_back(&moved, &q->due);
        changed |= stan_pset_touch(to, q);
    }
    splice_before(to->due.next, &moved);
    return changed;
}

void stan_pset_all_due(stan_pset_t *ps)
{
    list_node_t all;
    list_init(&all);
    stan_pending_t *p;
    while ((p = next_out(ps))) {
        list_remove(&p->due);
        p->expire_ms = 0;
        list_push_back(&all, &p->due);
    }
    splice_before(&ps->due, &all); /* every lane is empty now */
}

unsigned stan_pset_store_failed(stan_pset_t *ps)
{
    list_node_t *n;
    list_foreach (n, &ps->order) {
        stan_pending_t *p = LIST_ITEM(n, stan_pending_t, order);
        if (list_linked(&p->dirty)) continue;
        p->on_disk = true; /* a delete of a missing row is harmless */
        stan_pset_touch(ps, p);
    }
    return STAN_PSET_DIRTY;
}
