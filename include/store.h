/* store: the LMDB environment under --dir, group-committed from the loop, read zero-copy.
 *
 * The store is a set of named key/value databases (store_db_t) in one LMDB environment. It does
 * not know what the keys mean: the streaming engine owns the layout (docs/storage.md). What the
 * store owns is how data gets there safely and fast:
 *
 *  - Writes are collected in a batch on the loop thread (cheap: an in-memory op list whose bytes
 *    are copied into the batch), then store_submit runs the whole batch as ONE LMDB write
 *    transaction on the libuv thread pool, committed (with fsync unless sync is off), and calls
 *    back on the loop thread. At most one batch is in flight; the caller builds the next one
 *    while it runs (group commit).
 *  - A full map grows automatically (the batch is retried transparently after the map is made
 *    larger); a full disk fails the batch with STZ_ENOSPC and leaves the store as it was before
 *    the batch, and later batches work again once space returns.
 *  - Reads happen on the loop thread through one reusable read transaction: values are pointers
 *    into the memory map, valid until store_read_end. Never hold a read open across loop
 *    iterations (the map can only grow while no read is open).
 *
 * MEMORY mode (dir == NULL) is the same engine on a private temporary directory, without fsync,
 * removed by store_close. */
#ifndef STANZA_STORE_H
#define STANZA_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"

typedef enum {
    STORE_DB_META = 0, /* server identity and counters */
    STORE_DB_CLIENTS,
    STORE_DB_CHANNELS,
    STORE_DB_MSGS,
    STORE_DB_SUBS,
    STORE_DB_PENDING,
    STORE_DB_DEAD, /* dead-letter records (stan_dead.c) */
    STORE_NDBS
} store_db_t;

/* Results are err.h's: 0 (STZ_OK) or a negative code. The store returns STZ_ENOENT (no such
 * key), STZ_ENOSPC (disk full), STZ_EIO (any other LMDB or OS error, logged by the store with
 * details), STZ_EBUSY (a batch is already in flight; the directory is locked by another process)
 * and STZ_EINVAL (an op the store cannot hold: key empty or over STORE_MAX_KEY). */

typedef struct store store_t;
typedef struct store_batch store_batch_t;
typedef struct store_cursor store_cursor_t;

typedef struct store_val {
    const void *p;
    size_t len;
} store_val_t;

#define STORE_HIST_BUCKETS 12
extern const uint64_t store_hist_bounds_us[STORE_HIST_BUCKETS];
/* The bucket a duration of ns falls in: the first bound it does not exceed, or
 * STORE_HIST_BUCKETS (slower than all). */
size_t store_hist_bucket(uint64_t ns);

typedef struct store_stats {
    uint64_t map_size;       /* bytes reserved for the map */
    uint64_t used_bytes;     /* bytes of the data file in use (pages * page size) */
    uint64_t commits;        /* batches committed */
    uint64_t commit_ns_last; /* duration of the last commit (txn + fsync) */
    uint64_t commit_ns_total;
    /* Commit durations: commit_hist[i] counts commits that took at most store_hist_bounds_us[i]
     * microseconds (and more than the bound before); the last bucket is everything slower. */
    uint64_t commit_hist[STORE_HIST_BUCKETS + 1];
    uint64_t map_grows;
    uint64_t map_grow_waits; /* grows that had to wait for the loop's read view to close */
    uint64_t failures;       /* batches that ended with an error */
} store_stats_t;

/* LMDB's limit: keys are 1..511 bytes. An op with a longer (or empty) key is refused when it is
 * recorded (STZ_EINVAL, nothing added), so no single op can fail a whole batch: the engine
 * checks names against this before staging anything, and this is the backstop. */
#define STORE_MAX_KEY 511

typedef struct store_options {
    const char *dir; /* NULL = MEMORY mode */
    bool sync;       /* fsync each commit (ignored in MEMORY mode) */
    /* Clustered mode: the Raft log holds every committed entry, and the store is a copy of it.
     * Commits are not synced (store_boot.c): a process crash loses nothing; after a machine
     * crash (a new boot, no clean close) the data file is dropped at open and the log fills
     * the store again (docs/storage.md). */
    bool log_is_durable;
    uint64_t initial_map_size; /* 0 = default (256 MiB); grows on demand */
    int lock_wait_ms;          /* wait this long for another process to release the directory */
} store_options_t;

/* Opens (creating if needed) the environment. Returns STZ_OK or an error with a message in
 * err ("cannot open store in DIR: ..."). Takes an exclusive lock on the directory, so that two
 * daemons never share one store: a second open fails with a clear message. */
int store_open(store_t **out, uv_loop_t *loop, const store_options_t *opt, char *err,
               size_t errlen);
/* Waits for an in-flight batch (running the loop with UV_RUN_ONCE until its done callback has
 * fired), then closes; MEMORY mode removes its directory. No read view may be open. Because it
 * may run the loop, call it outside loop callbacks (after uv_run returned) unless
 * !store_in_flight(s). */
void store_close(store_t *s);

/* ---- writes ---- */

/* The batch being built (created on first use). Ops apply in the order they were added.
 * Every op returns STZ_OK, or STZ_EINVAL for a key the store cannot hold (nothing recorded);
 * the *_reserve variants return NULL for it. */
store_batch_t *store_batch(store_t *s);
bool store_batch_empty(const store_t *s);
/* Drops every op of the batch being built, redo deletes included: for an engine whose writes
 * are void (clustered: one that lost the lead, or that only shows a follower's store). */
void store_batch_discard(store_t *s);
int store_put(store_t *s, store_db_t db, const void *key, size_t klen, const void *val,
              size_t vlen);
/* Like store_put, but returns a buffer of vlen bytes (inside the batch) for the caller to fill
 * before the batch is submitted: saves one copy when building a value in place. */
void *store_put_reserve(store_t *s, store_db_t db, const void *key, size_t klen, size_t vlen);
/* Appends in key order (keys must be greater than every key in the db): LMDB's MDB_APPEND,
 * which fills pages completely. Falls back to a normal put if the order does not hold. */
int store_append(store_t *s, store_db_t db, const void *key, size_t klen, const void *val,
                 size_t vlen);
/* store_append with the value built in place (as store_put_reserve). */
void *store_append_reserve(store_t *s, store_db_t db, const void *key, size_t klen, size_t vlen);
int store_del(store_t *s, store_db_t db, const void *key, size_t klen);
/* Deletes every key k with lo <= k <= hi (memcmp order; lolen 0 = from the first key). */
int store_del_range(store_t *s, store_db_t db, const void *lo, size_t lolen, const void *hi,
                    size_t hilen);
/* Redo deletes: for a deletion the caller has already applied to its memory (an acked message's
 * row, a removed subscription or client), which must therefore reach the disk even if the batch
 * carrying it fails. If it does, the store records the delete again at the FRONT of the batch
 * being built (before every op recorded since the failed batch was submitted, so a later put of
 * the same key still wins), and again until a batch carrying it commits. Deletes are idempotent:
 * replaying one is harmless. Plain store_del / store_del_range are for deletions whose caller
 * rolls its memory back when the batch fails (or applies it only after the commit): those are
 * never replayed. A redo op still pending when the store closes is discarded (logged). */
int store_del_redo(store_t *s, store_db_t db, const void *key, size_t klen);
int store_del_range_redo(store_t *s, store_db_t db, const void *lo, size_t lolen, const void *hi,
                         size_t hilen);

typedef void (*store_done_fn)(void *arg, int status);
/* Submits the current batch to the thread pool. done runs later on the loop thread with
 * STZ_OK or an error, never from inside store_submit, and only with the final outcome (a full
 * map is grown and the batch replayed first). The batch is recycled before done runs, so done
 * may fill and submit the next batch, or close the store; store_put_reserve buffers must not be
 * touched after submitting. An empty batch is legal (it commits
 * nothing and costs no fsync). Returns STZ_EBUSY if a batch is in flight (nothing submitted;
 * the batch being built is kept). On any error the store is exactly as before the batch, and
 * the batch's redo deletes are recorded again in the next one (before done runs). */
int store_submit(store_t *s, store_done_fn done, void *arg);
bool store_in_flight(const store_t *s);

/* ---- reads (loop thread) ---- */

/* Begins the read view (nested begin/end pairs are counted; one view per iteration is typical).
 * Returns STZ_OK or STZ_EIO. */
int store_read_begin(store_t *s);
void store_read_end(store_t *s);
/* Within a read view. STZ_OK with *v set, STZ_ENOENT, or STZ_EIO (logged). */
int store_get(store_t *s, store_db_t db, const void *key, size_t klen, store_val_t *v);

/* Cursors live within a read view; close them before store_read_end. Cheap: closed cursors are
 * kept and renewed. After STZ_ENOENT a cursor's position is undefined: seek again. */
store_cursor_t *store_cursor_open(store_t *s, store_db_t db);
void store_cursor_close(store_cursor_t *c);
/* Positions at the first key >= key (klen 0: the first key). STZ_OK or STZ_ENOENT. */
int store_cursor_seek(store_cursor_t *c, const void *key, size_t klen, store_val_t *k,
                      store_val_t *v);
/* Positions at the last key <= key (klen 0: the last key). */
int store_cursor_seek_le(store_cursor_t *c, const void *key, size_t klen, store_val_t *k,
                         store_val_t *v);
int store_cursor_next(store_cursor_t *c, store_val_t *k, store_val_t *v);
int store_cursor_prev(store_cursor_t *c, store_val_t *k, store_val_t *v);

void store_get_stats(const store_t *s, store_stats_t *out);

/* ---- replication (clustered mode) ----
 *
 * With a log attached (store_set_log), store_submit does not commit the batch: it encodes it as
 * one log entry and proposes it (the Raft module replicates it). Every node hands the committed
 * entries back to its own store with store_apply, in log order, and the store commits them to
 * LMDB, several per transaction when they queue up behind one in flight. A proposed batch
 * completes (its done runs with STZ_OK) once its entry is in this node's LMDB, or fails with
 * STZ_ENOTLEADER when the log gives it up (store_log_failed): it may still commit under the next
 * leader, so "not stored" would be wrong. Each entry is applied exactly once: the
 * index of the last one applied is written in the same transaction as its data, and entries at
 * or below it are skipped, so a log tail replayed after a restart changes nothing. An apply that
 * fails (a full disk) is retried every second until it succeeds, entries kept in order. */
typedef struct store_log {
    /* Proposes len bytes at data (malloc'd; ownership passes when it returns 0, with the
     * entry's index in *index). Nonzero: nothing proposed (this node does not lead). */
    int (*propose)(void *arg, void *data, size_t len, uint64_t *index);
    /* Entries up to index are in LMDB (loop thread). May be NULL. */
    void (*applied)(void *arg, uint64_t index);
    void *arg;
} store_log_t;

/* Attaches the log (before any submit) and reads the applied index from the store. From then on
 * store_submit proposes: it returns STZ_EBUSY while a proposal is pending (store_in_flight), and
 * STZ_ENOTLEADER when the log refuses the entry (the batch is dropped; done never runs). */
int store_set_log(store_t *s, const store_log_t *log);
/* A committed entry, in log order (the store keeps its own copy). STZ_EINVAL: not an entry this
 * store can decode (nothing applied: the caller must stop, the log is not ours or is newer). */
int store_apply(store_t *s, const void *data, size_t len, uint64_t index);
/* The log gave up the entry at index (this node stopped leading before it committed): the
 * pending proposal, if it is that entry, fails with STZ_ENOTLEADER. The entry may still commit
 * under another leader and come back through store_apply. */
void store_log_failed(store_t *s, uint64_t index);
/* Forgets the pending proposal without running its done (its owner is going away); the entry
 * itself may still commit and be applied. */
void store_drop_proposal(store_t *s);
/* The last entry committed to LMDB (0: none). */
uint64_t store_applied_index(const store_t *s);
/* No committed entry waits to be written to LMDB. */
bool store_apply_idle(const store_t *s);

/* Snapshots (store_snap.c). From any thread: waits until the entry at index is in LMDB, then
 * copies the store (compacted, consistent) into one buffer from alloc, headed by the index.
 * STZ_EBUSY if that entry was not applied within 30 s or the store is closing. */
int store_snapshot(store_t *s, uint64_t index, void *(*alloc)(size_t), void **out, size_t *len);
/* Loop thread: makes the store the snapshot's copy, unless it already holds the snapshot's
 * index (*replaced false: nothing to do). STZ_EBUSY while a batch or a read view is open;
 * STZ_EINVAL for data that is not a snapshot of ours. The caller keeps data. */
int store_restore(store_t *s, const void *data, size_t len, bool *replaced);

/* Test hook: makes the next n commits fail with STZ_ENOSPC before touching LMDB, as a full
 * disk would (a write transaction aborted). */
void store_inject_enospc(store_t *s, int n);

#endif
