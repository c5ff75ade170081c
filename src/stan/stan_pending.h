/* stan_pending: a set of unacked messages (a subscription's, though it knows nothing of
 * subscriptions): each entry is in a hash by sequence, in a list in expiry order (delivery order;
 * a redelivery moves it to the tail) and in a list in sequence order (the head is the oldest
 * unacked). Its rows in the store (key: the owner's id and the sequence) are written lazily: an
 * entry touched since the last batch is written with the next one, so a message acked before
 * the batch is built never reaches the disk.
 *
 * Operations that change what the owner must do return it as STAN_PSET_* flags: the caller
 * marks its subscription dirty (rows to write with the next batch) or ready (something to
 * deliver now). */
#ifndef STANZA_STAN_PENDING_H
#define STANZA_STAN_PENDING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "list.h"
#include "store.h"

enum {
    STAN_PSET_DIRTY = 1, /* rows must be written with the next batch */
    STAN_PSET_READY = 2, /* entries became due: deliver */
};

typedef struct stan_pending {
    hmap_node_t node;  /* by sequence */
    list_node_t due;   /* expiry order */
    list_node_t order; /* sequence order */
    list_node_t dirty; /* linked while its row must be (re)written with the next batch */
    uint64_t seq;
    uint64_t expire_ms; /* loop time when it is due for redelivery */
    uint32_t count;     /* deliveries so far (1 = delivered once); persisted */
    uint32_t size;      /* payload bytes */
    bool on_disk;       /* its row is committed, or in a batch on its way */
    bool dead;          /* being dead-lettered with the next batch: not due (stan_dead.c) */
} stan_pending_t;

typedef struct stan_pset {
    hmap_t by_seq;
    list_node_t due;   /* stan_pending_t.due */
    list_node_t order; /* stan_pending_t.order */
    size_t count;
    uint64_t bytes;    /* payload bytes of the entries */
    uint64_t owner;    /* the first half of its rows' keys */
    list_node_t dirty; /* stan_pending_t.dirty, in the order they were touched */
} stan_pset_t;

void stan_pset_init(stan_pset_t *ps, uint64_t owner);
/* Frees every entry (no store change). */
void stan_pset_free(stan_pset_t *ps);
stan_pending_t *stan_pset_find(const stan_pset_t *ps, uint64_t seq);
/* Adds seq (not in the set yet) at the tail of the expiry order. */
stan_pending_t *stan_pset_add(stan_pset_t *ps, uint64_t seq, uint32_t count, uint32_t size,
                              uint64_t expire_ms);
/* Its row must be (re)written with the next batch: STAN_PSET_DIRTY if that is news. */
unsigned stan_pset_touch(stan_pset_t *ps, stan_pending_t *p);
/* Forgets p, staging the deletion of its row if it reached the disk: a redo delete
 * (store_del_redo), since memory forgets it now, whatever becomes of the batch. */
void stan_pset_drop(stan_pset_t *ps, store_t *store, stan_pending_t *p);
/* After a redelivery: due last. */
void stan_pset_to_tail(stan_pset_t *ps, stan_pending_t *p);
/* Moves p (just put last) back to its place in expiry order, after every entry due no later.
 * Needed only when expiries are not in delivery order (a redelivery backoff). */
void stan_pset_place(stan_pset_t *ps, stan_pending_t *p);
/* Stages the rows touched since the last call. */
void stan_pset_write_dirty(stan_pset_t *ps, store_t *store);
/* Moves every entry of from to to, due at once (they go out flagged redelivered); entries to
 * already has are dropped. Returns what changed for to (always READY). */
unsigned stan_pset_transfer(stan_pset_t *from, stan_pset_t *to, store_t *store);
/* Every entry due at once (a durable resumed). */
void stan_pset_all_due(stan_pset_t *ps);
/* A batch failed: rows believed on their way to disk are not; every row is written again.
 * Returns STAN_PSET_DIRTY. */
unsigned stan_pset_store_failed(stan_pset_t *ps);

/* The entry due first (NULL: none). */
static inline stan_pending_t *stan_pset_first_due(const stan_pset_t *ps)
{
    list_node_t *n = list_first(&ps->due);
    return n ? LIST_ITEM(n, stan_pending_t, due) : NULL;
}
static inline stan_pending_t *stan_pset_last_due(const stan_pset_t *ps)
{
    list_node_t *n = list_last(&ps->due);
    return n ? LIST_ITEM(n, stan_pending_t, due) : NULL;
}
static inline stan_pending_t *stan_pset_next_due(const stan_pset_t *ps, const stan_pending_t *p)
{
    list_node_t *n = list_next(&ps->due, &p->due);
    return n ? LIST_ITEM(n, stan_pending_t, due) : NULL;
}
/* The lowest unacked sequence's entry (NULL: none). */
static inline stan_pending_t *stan_pset_oldest(const stan_pset_t *ps)
{
    list_node_t *n = list_first(&ps->order);
    return n ? LIST_ITEM(n, stan_pending_t, order) : NULL;
}

#endif
