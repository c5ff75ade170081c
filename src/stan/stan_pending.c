/* stan_pending: see stan_pending.h. */
#include "stan_pending.h"

#include <stdlib.h>

#include "stan_keys.h"
#include "xalloc.h"

void stan_pset_init(stan_pset_t *ps, uint64_t owner)
{
    hmap_init(&ps->by_seq);
    list_init(&ps->due);
    list_init(&ps->order);
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
    stan_pending_t *p;
    while ((p = stan_pset_first_due(ps)))
        entry_free(ps, p);
    hmap_free(&ps->by_seq);
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

stan_pending_t *stan_pset_add(stan_pset_t *ps, uint64_t seq, uint32_t count, uint32_t size,
                              uint64_t expire_ms)
{
    stan_pending_t *p = xcalloc(1, sizeof *p);
    p->seq = seq;
    p->count = count;
    p->size = size;
    p->expire_ms = expire_ms;
    hmap_insert(&ps->by_seq, &p->node, hmap_hash_u64(seq));
    list_push_back(&ps->due, &p->due);
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

void stan_pset_to_tail(stan_pset_t *ps, stan_pending_t *p)
{
    list_remove(&p->due);
    list_push_back(&ps->due, &p->due);
}

void stan_pset_place(stan_pset_t *ps, stan_pending_t *p)
{
    list_node_t *before = p->due.prev;
    while (before != &ps->due && LIST_ITEM(before, stan_pending_t, due)->expire_ms > p->expire_ms)
        before = before->prev;
    if (before == p->due.prev) return; /* in place already: the common case */
    list_remove(&p->due);
    list_insert_before(before->next, &p->due);
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

unsigned stan_pset_transfer(stan_pset_t *from, stan_pset_t *to, store_t *store)
{
    unsigned changed = STAN_PSET_READY;
    stan_pending_t *p;
    /* From the last due to the first, each put first: the order of from is kept. */
    while ((p = stan_pset_last_due(from))) {
        uint64_t seq = p->seq;
        uint32_t count = p->count, size = p->size;
        stan_pset_drop(from, store, p);
        if (stan_pset_find(to, seq)) continue;
        stan_pending_t *q = stan_pset_add(to, seq, count, size, 0);
        list_remove(&q->due);
        list_push_front(&to->due, &q->due);
        changed |= stan_pset_touch(to, q);
    }
    return changed;
}

void stan_pset_all_due(stan_pset_t *ps)
{
    list_node_t *n;
    list_foreach (n, &ps->due)
        LIST_ITEM(n, stan_pending_t, due)->expire_ms = 0;
}

unsigned stan_pset_store_failed(stan_pset_t *ps)
{
    list_node_t *n;
    list_foreach (n, &ps->due) {
        stan_pending_t *p = LIST_ITEM(n, stan_pending_t, due);
        if (list_linked(&p->dirty)) continue;
        p->on_disk = true; /* a delete of a missing row is harmless */
        stan_pset_touch(ps, p);
    }
    return STAN_PSET_DIRTY;
}
