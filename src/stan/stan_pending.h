/* stan_pending: a set of unacked messages (a subscription's, though it knows nothing of
 * subscriptions): each entry is in a hash by sequence, in a list in sequence order (the head is
 * the oldest unacked) and scheduled: due at a time, due at once, or parked (due when scheduled
 * again). Its rows in the store (key: the owner's id and the sequence) are written lazily: an
 * entry touched since the last batch is written with the next one, so a message acked before
 * the batch is built never reaches the disk.
 *
 * Expiry order without sorting: an entry is due at now + a wait (the owner's AckWait, or a
 * redelivery backoff entry), and entries scheduled with the same wait fall due in the order
 * they were scheduled (the clock is monotonic). So the set keeps one FIFO list, a lane, per
 * distinct wait: scheduling appends to its lane, O(1), and the entry due first is the earliest
 * of the lane heads (ties: the one scheduled first), O(lanes). Entries due at once are at the
 * front of the first lane, ahead of every other; parked ones in a list that is never due. A set
 * that sees one wait at a time (no backoff) has its first lane inline and allocates nothing more;
 * the others (up to CONFIG_BACKOFF_MAX, for the backoff entries) are allocated when a second wait
 * appears. A wait beyond them (a configuration changed while entries wait) is sorted into the first
 * lane by a scan: always in order, O(1) when nothing changes.
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
    list_node_t due;   /* its lane, or the parked list */
    list_node_t order; /* sequence order */
    list_node_t dirty; /* linked while its row must be (re)written with the next batch */
    uint64_t seq;
    uint64_t expire_ms; /* loop time when it is due: 0 at once, UINT64_MAX parked */
    uint32_t count;     /* deliveries so far (1 = delivered once); persisted */
    uint32_t size;      /* payload bytes */
    bool on_disk;       /* its row is committed, or in a batch on its way */
    bool dead;          /* being dead-lettered with the next batch: not due (stan_dead.c) */
} stan_pending_t;

struct stan_pset_lane;

typedef struct stan_pset {
    hmap_t by_seq;
    list_node_t due;  /* stan_pending_t.due: the first lane (due at once first), by expiry */
    uint64_t wait_ms; /* the first lane's wait */
    struct stan_pset_lane *lanes; /* the other lanes: NULL until a second wait appears */
    list_node_t parked;           /* stan_pending_t.due: due when scheduled again */
    list_node_t order;            /* stan_pending_t.order */
    uint64_t steps;               /* entries stepped past to sort one into a lane: for the tests */
    size_t count;
    uint64_t bytes;    /* payload bytes of the entries */
    uint64_t owner;    /* the first half of its rows' keys */
    list_node_t dirty; /* stan_pending_t.dirty, in the order they were touched */
} stan_pset_t;

void stan_pset_init(stan_pset_t *ps, uint64_t owner);
/* Frees every entry (no store change). */
void stan_pset_free(stan_pset_t *ps);
stan_pending_t *stan_pset_find(const stan_pset_t *ps, uint64_t seq);
/* Adds seq (not in the set yet), scheduled as stan_pset_schedule does. */
stan_pending_t *stan_pset_add(stan_pset_t *ps, uint64_t seq, uint32_t count, uint32_t size,
                              uint64_t expire_ms, uint64_t wait_ms);
/* p is due at expire_ms, which is the owner's now + wait_ms: after every entry due no later.
 * expire_ms 0: due at once, after the entries due at once already (it steps back past those
 * waiting in the first lane: none in a set being recovered); UINT64_MAX: parked. */
void stan_pset_schedule(stan_pset_t *ps, stan_pending_t *p, uint64_t expire_ms, uint64_t wait_ms);
/* p is due at once, before every other entry (it was due before them: put back). */
void stan_pset_due_now(stan_pset_t *ps, stan_pending_t *p);
/* p is not due until scheduled again (expire_ms UINT64_MAX). */
void stan_pset_park(stan_pset_t *ps, stan_pending_t *p);
/* Its row must be (re)written with the next batch: STAN_PSET_DIRTY if that is news. */
unsigned stan_pset_touch(stan_pset_t *ps, stan_pending_t *p);
/* Forgets p, staging the deletion of its row if it reached the disk: a redo delete
 * (store_del_redo), since memory forgets it now, whatever becomes of the batch. */
void stan_pset_drop(stan_pset_t *ps, store_t *store, stan_pending_t *p);
/* Stages the rows touched since the last call. */
void stan_pset_write_dirty(stan_pset_t *ps, store_t *store);
/* Moves every entry of from to to, due at once and before to's own (they go out flagged
 * redelivered), in from's order (its parked ones last); entries to already has are dropped. Returns
 * what changed for to (always READY). */
unsigned stan_pset_transfer(stan_pset_t *from, stan_pset_t *to, store_t *store);
/* Every entry due at once, in the order they were due (a durable resumed). */
void stan_pset_all_due(stan_pset_t *ps);
/* A batch failed: rows believed on their way to disk are not; every row is written again.
 * Returns STAN_PSET_DIRTY. */
unsigned stan_pset_store_failed(stan_pset_t *ps);

/* The entry due first among several lanes (stan_pset_first_due). */
stan_pending_t *stan_pset_first_in_lanes(const stan_pset_t *ps);
/* The entry due first (NULL: none; parked entries never are). */
static inline stan_pending_t *stan_pset_first_due(const stan_pset_t *ps)
{
    if (ps->lanes) return stan_pset_first_in_lanes(ps);
    list_node_t *n = list_first(&ps->due);
    return n ? LIST_ITEM(n, stan_pending_t, due) : NULL;
}
/* The lowest unacked sequence's entry (NULL: none). */
static inline stan_pending_t *stan_pset_oldest(const stan_pset_t *ps)
{
    list_node_t *n = list_first(&ps->order);
    return n ? LIST_ITEM(n, stan_pending_t, order) : NULL;
}

#endif
