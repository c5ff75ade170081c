/* store_batch: building batches on the loop thread, committing them as one LMDB write
 * transaction on the thread pool, growing the map when it is full, and reporting the outcome.
 *
 * A batch owns every byte it refers to: keys and values are copied into its arena when the op is
 * recorded, so the caller's buffers (often slices of a socket read buffer) can be reused at once,
 * and a batch retried after a map growth replays exactly the same bytes. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "store_private.h"
#include "xalloc.h"

/* Arena chunks: big enough that a typical batch (hundreds of small messages) needs one or two,
 * and a recycled batch keeps a few so steady state does no allocation at all. */
#define CHUNK_SIZE (64u << 10)
#define KEEP_CHUNK_BYTES (512u << 10)
#define ALIGN 8

const uint64_t store_hist_bounds_us[STORE_HIST_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

size_t store_hist_bucket(uint64_t ns)
{
    size_t i = 0;
    while (i < STORE_HIST_BUCKETS && ns > store_hist_bounds_us[i] * 1000)
        i++;
    return i;
}

static const char *const op_names[] = {"put", "append", "del", "del_range"};

/* ---- the arena ---- */

static store_chunk_t *chunk_new(size_t cap)
{
    store_chunk_t *c = xmalloc(sizeof *c + cap);
    list_node_init(&c->link);
    c->cap = cap;
    c->used = 0;
    return c;
}

static void *arena_alloc(store_batch_t *b, size_t n)
{
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    list_node_t *first = list_first(&b->chunks);
    store_chunk_t *c = first ? LIST_ITEM(first, store_chunk_t, link) : NULL;
    if (c && c->cap - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    if (n > CHUNK_SIZE / 4) {
        /* A large value gets a chunk of its own, placed behind the current one so that the
         * current chunk's free space keeps serving small ops. */
        store_chunk_t *big = chunk_new(n);
        big->used = n;
        list_insert_before(c ? c->link.next : &b->chunks, &big->link);
        return big->data;
    }
    c = chunk_new(CHUNK_SIZE);
    list_push_front(&b->chunks, &c->link);
    c->used = n;
    return c->data;
}

/* Empties a batch for reuse, keeping a bounded amount of its arena. */
static void batch_reset(store_batch_t *b)
{
    size_t kept = 0;
    list_node_t *n, *next;
    list_foreach_safe (n, next, &b->chunks) {
        store_chunk_t *c = LIST_ITEM(n, store_chunk_t, link);
        if (c->cap == CHUNK_SIZE && kept + CHUNK_SIZE <= KEEP_CHUNK_BYTES) {
            c->used = 0;
            kept += CHUNK_SIZE;
        } else {
            list_remove(n);
            free(c);
        }
    }
    b->nops = 0;
    b->bytes = 0;
    /* One huge batch should not pin its op array forever. */
    if (b->capops > 4096) {
        free(b->ops);
        b->ops = NULL;
        b->capops = 0;
    }
}

static void batch_free(store_batch_t *b)
{
    if (!b) return;
    list_node_t *n;
    while ((n = list_pop_front(&b->chunks)))
        free(LIST_ITEM(n, store_chunk_t, link));
    free(b->ops);
    free(b);
}

/* ---- recording ops (loop thread) ---- */

store_batch_t *store_batch_new_(store_t *s)
{
    if (s->spare) {
        store_batch_t *b = s->spare;
        s->spare = NULL;
        return b;
    }
    store_batch_t *b = xcalloc(1, sizeof *b);
    b->s = s;
    list_init(&b->chunks);
    return b;
}

void store_batch_recycle_(store_t *s, store_batch_t *b)
{
    if (!s->spare) {
        batch_reset(b);
        s->spare = b;
    } else {
        batch_free(b);
    }
}

store_batch_t *store_batch(store_t *s)
{
    if (!s->building) s->building = store_batch_new_(s);
    return s->building;
}

void store_batch_discard(store_t *s)
{
    if (!s->building) return;
    store_batch_recycle_(s, s->building);
    s->building = NULL;
}

bool store_batch_empty(const store_t *s)
{
    return !s->building || s->building->nops == 0;
}

/* Whether LMDB can hold the key: checked here, when the op is recorded, because LMDB would
 * only refuse it at commit time, failing every other op of the batch with it. A range bound
 * may be empty (from the first key). */
static bool key_ok(int kind, size_t klen)
{
    if (klen > STORE_MAX_KEY) return false;
    return klen > 0 || kind == OP_DEL_RANGE;
}

/* Records an op in b whose key and value are copied into one arena allocation; returns the
 * value's place in the arena, or NULL (nothing recorded) for a key the store cannot hold. */
void *store_batch_add_(store_batch_t *b, int kind, store_db_t db, const void *k, size_t klen,
                       const void *v, size_t vlen)
{
    assert(db >= 0 && db < STORE_NDBS);
    if (!key_ok(kind, klen) || (kind == OP_DEL_RANGE && vlen > STORE_MAX_KEY)) return NULL;
    if (b->nops == b->capops) {
        b->capops = b->capops ? b->capops * 2 : 64;
        b->ops = xrealloc(b->ops, b->capops * sizeof *b->ops);
    }
    char *p = arena_alloc(b, klen + vlen);
    if (klen) memcpy(p, k, klen);
    if (v && vlen) memcpy(p + klen, v, vlen);
    store_op_t *op = &b->ops[b->nops++];
    op->kind = (unsigned char)kind;
    op->db = (unsigned char)db;
    op->redo = false;
    op->k = p;
    op->klen = klen;
    op->v = p + klen;
    op->vlen = vlen;
    b->bytes += klen + vlen;
    return p + klen;
}

static void *add_op(store_t *s, int kind, store_db_t db, const void *k, size_t klen, const void *v,
                    size_t vlen)
{
    return store_batch_add_(store_batch(s), kind, db, k, klen, v, vlen);
}

int store_put(store_t *s, store_db_t db, const void *key, size_t klen, const void *val, size_t vlen)
{
    return add_op(s, OP_PUT, db, key, klen, val, vlen) ? STZ_OK : STZ_EINVAL;
}

void *store_put_reserve(store_t *s, store_db_t db, const void *key, size_t klen, size_t vlen)
{
    return add_op(s, OP_PUT, db, key, klen, NULL, vlen);
}

int store_append(store_t *s, store_db_t db, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    return add_op(s, OP_APPEND, db, key, klen, val, vlen) ? STZ_OK : STZ_EINVAL;
}

void *store_append_reserve(store_t *s, store_db_t db, const void *key, size_t klen, size_t vlen)
{
    return add_op(s, OP_APPEND, db, key, klen, NULL, vlen);
}

int store_del(store_t *s, store_db_t db, const void *key, size_t klen)
{
    return add_op(s, OP_DEL, db, key, klen, NULL, 0) ? STZ_OK : STZ_EINVAL;
}

int store_del_range(store_t *s, store_db_t db, const void *lo, size_t lolen, const void *hi,
                    size_t hilen)
{
    return add_op(s, OP_DEL_RANGE, db, lo, lolen, hi, hilen) ? STZ_OK : STZ_EINVAL;
}

int store_del_redo(store_t *s, store_db_t db, const void *key, size_t klen)
{
    if (!add_op(s, OP_DEL, db, key, klen, NULL, 0)) return STZ_EINVAL;
    s->building->ops[s->building->nops - 1].redo = true;
    return STZ_OK;
}

int store_del_range_redo(store_t *s, store_db_t db, const void *lo, size_t lolen, const void *hi,
                         size_t hilen)
{
    if (!add_op(s, OP_DEL_RANGE, db, lo, lolen, hi, hilen)) return STZ_EINVAL;
    s->building->ops[s->building->nops - 1].redo = true;
    return STZ_OK;
}

/* The failed batch's redo deletes go in front of the batch being built, in their order: that
 * batch holds only ops recorded since the failed one was submitted, so every later op (a put of
 * the same key, say) still applies after them. Their bytes are copied into its arena, whose
 * chunks never move, so store_put_reserve buffers handed out for it stay valid. */
static void restage_redo(store_t *s, const store_batch_t *failed)
{
    store_batch_t *b = store_batch(s);
    size_t later = b->nops;
    for (size_t i = 0; i < failed->nops; i++) {
        const store_op_t *op = &failed->ops[i];
        if (!op->redo) continue;
        add_op(s, op->kind, op->db, op->k, op->klen, op->v, op->vlen);
        b->ops[b->nops - 1].redo = true;
    }
    size_t n = b->nops - later;
    if (n == 0 || later == 0) return;
    store_op_t *moved = xmalloc(n * sizeof *moved);
    memcpy(moved, b->ops + later, n * sizeof *moved);
    memmove(b->ops + n, b->ops, later * sizeof *moved);
    memcpy(b->ops, moved, n * sizeof *moved);
    free(moved);
}

/* ---- the worker (pool thread) ---- */

static int del_range(MDB_txn *txn, MDB_dbi dbi, MDB_cursor *c, const store_op_t *op)
{
    MDB_val k = {op->klen, (void *)op->k}, d, hi = {op->vlen, (void *)op->v};
    int rc = mdb_cursor_get(c, &k, &d, op->klen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && mdb_cmp(txn, dbi, &k, &hi) <= 0) {
        rc = mdb_cursor_del(c, 0);
        /* After a delete the cursor already stands on the following key; LMDB's MDB_NEXT knows
         * this and returns that key rather than skipping it. */
        if (rc == 0) rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One cursor per database for the whole transaction: consecutive appends then find the end of
 * the tree where the cursor already stands instead of searching from the root each time.
 * LMDB closes a write transaction's cursors when it ends. */
static int apply(MDB_txn *txn, const store_t *s, MDB_cursor **cursors, const store_op_t *op)
{
    MDB_dbi dbi = s->dbi[op->db];
    MDB_cursor **c = &cursors[op->db];
    int rc;
    if (!*c && (rc = mdb_cursor_open(txn, dbi, c)) != 0) return rc;
    MDB_val k = {op->klen, (void *)op->k}, v = {op->vlen, (void *)op->v};
    switch (op->kind) {
    case OP_PUT:
        return mdb_cursor_put(*c, &k, &v, 0);
    case OP_APPEND:
        rc = mdb_cursor_put(*c, &k, &v, MDB_APPEND);
        /* Out of order (or an overwrite): LMDB refused without touching the txn. */
        if (rc == MDB_KEYEXIST) rc = mdb_cursor_put(*c, &k, &v, 0);
        return rc;
    case OP_DEL:
        rc = mdb_cursor_get(*c, &k, NULL, MDB_SET);
        if (rc == 0) rc = mdb_cursor_del(*c, 0);
        return rc == MDB_NOTFOUND ? 0 : rc;
    case OP_DEL_RANGE:
        return del_range(txn, dbi, *c, op);
    }
    return EINVAL;
}

/* A full disk does not always say ENOSPC: LMDB turns a short write (the file system took part of
 * a chunk, then ran out) into EIO. When the commit failed with EIO and the file system is
 * (nearly) out of blocks, that is a full disk, and the caller should be told so. */
static bool looks_full(const store_t *s, const store_batch_t *b)
{
    struct statvfs vs;
    if (statvfs(s->dir, &vs) != 0) return false;
    uint64_t blocks = geteuid() == 0 ? vs.f_bfree : vs.f_bavail;
    return blocks * vs.f_frsize < (1u << 20) + (uint64_t)b->bytes;
}

static void work_cb(uv_work_t *w)
{
    store_batch_t *b = w->data;
    const store_t *s = b->s;
    b->failed_op = b->nops;
    b->commit_ns = 0;
    if (b->inject_enospc) {
        b->rc = ENOSPC;
        return;
    }
    uint64_t t0 = clock_mono_ns();
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        MDB_cursor *cursors[STORE_NDBS] = {0};
        for (size_t i = 0; i < b->nops; i++) {
            rc = apply(txn, s, cursors, &b->ops[i]);
            if (rc) {
                b->failed_op = i;
                break;
            }
        }
        /* Commit frees the txn whatever its outcome; on failure nothing of it is visible. */
        if (rc)
            mdb_txn_abort(txn);
        else
            rc = mdb_txn_commit(txn);
    }
    if (rc == EIO && b->failed_op == b->nops && looks_full(s, b)) rc = ENOSPC;
    b->rc = rc;
    b->commit_ns = clock_mono_ns() - t0;
}

/* ---- completion (loop thread) ---- */

static void after_cb(uv_work_t *w, int status);

static void queue_batch(store_t *s, store_batch_t *b)
{
    b->work.data = b;
    int rc = uv_queue_work(s->loop, &b->work, work_cb, after_cb);
    assert(rc == 0); /* fails only for a NULL work callback */
    (void)rc;
}

/* Maps the worker's result to a store status, logging what the caller cannot know. */
static int batch_status(store_t *s, const store_batch_t *b)
{
    int rc = b->rc;
    if (rc == 0) {
        if (s->disk_full) LOG_I("store: writes to %s succeed again", s->dir);
        s->disk_full = false;
        return STZ_OK;
    }
    if (rc == ENOSPC || rc == EDQUOT) {
        /* Once per episode: a full disk fails every batch until space is freed. */
        if (!s->disk_full)
            LOG_E("store: no space left for %s (%s); writes fail until space is freed", s->dir,
                  b->inject_enospc ? "injected" : mdb_strerror(rc));
        s->disk_full = true;
        return STZ_ENOSPC;
    }
    if (b->failed_op < b->nops) {
        const store_op_t *op = &b->ops[b->failed_op];
        LOG_E("store: batch failed at op %zu of %zu (%s, db %d, key of %zu bytes): %s",
              b->failed_op + 1, b->nops, op_names[op->kind], op->db, op->klen, mdb_strerror(rc));
    } else {
        LOG_E("store: commit of %zu ops failed: %s", b->nops, mdb_strerror(rc));
    }
    return STZ_EIO;
}

static void finish(store_t *s, store_batch_t *b, int status)
{
    if (status == STZ_OK) {
        s->stats.commits++;
        s->stats.commit_ns_last = b->commit_ns;
        s->stats.commit_ns_total += b->commit_ns;
        s->stats.commit_hist[store_hist_bucket(b->commit_ns)]++;
    } else {
        s->stats.failures++;
        restage_redo(s, b);
    }
    store_done_fn done = b->done;
    void *arg = b->arg;
    /* Recycled before done runs: done may submit the next batch or even close the store. */
    s->inflight = NULL;
    store_batch_recycle_(s, b);
    done(arg, status);
}

/* Makes the map larger and runs the in-flight batch again. Only legal while this process has no
 * transaction open: the worker has finished and the caller checked that the read view is closed
 * (mdb_env_set_mapsize remaps the file). */
static void grow_and_retry(store_t *s)
{
    store_batch_t *b = s->inflight;
    s->grow_pending = false;
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    size_t old = info.me_mapsize, size = old * 2;
    /* A batch larger than the map would otherwise need several failed attempts. */
    while (size - old < 2 * b->bytes)
        size *= 2;
    int rc = mdb_env_set_mapsize(s->env, size);
    if (rc) {
        LOG_E("store: cannot grow the map of %s from %zu to %zu MiB: %s", s->dir, old >> 20,
              size >> 20, mdb_strerror(rc));
        finish(s, b, STZ_EIO);
        return;
    }
    s->stats.map_grows++;
    LOG_I("store: map of %s grown from %zu to %zu MiB", s->dir, old >> 20, size >> 20);
    queue_batch(s, b);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_grow_idle(uv_idle_t *h)
{
    store_t *s = h->data;
    uv_idle_stop(h);
    /* Opened again before this iteration got here: store_read_end will restart us. */
    if (s->rcount > 0) return;
    uv_close((uv_handle_t *)h, free_handle);
    s->grow_idle = NULL;
    if (s->grow_pending) grow_and_retry(s);
}

void store_batches_close_(store_t *s)
{
    assert(!s->inflight);
    if (s->building && s->building->nops)
        LOG_W("store: closing %s with %zu unsubmitted ops (discarded)", s->dir, s->building->nops);
    batch_free(s->building);
    batch_free(s->spare);
    s->building = s->spare = NULL;
    if (s->grow_idle) uv_close((uv_handle_t *)s->grow_idle, free_handle);
    s->grow_idle = NULL;
}

void store_grow_resume_(store_t *s)
{
    /* Not directly from store_read_end: a failed grow calls done, which must not run inside the
     * caller's store_read_end. An idle handle runs on the next iteration without blocking. */
    if (!s->grow_idle) {
        s->grow_idle = xmalloc(sizeof *s->grow_idle);
        uv_idle_init(s->loop, s->grow_idle);
        s->grow_idle->data = s;
    }
    uv_idle_start(s->grow_idle, on_grow_idle);
}

static void after_cb(uv_work_t *w, int status)
{
    store_batch_t *b = w->data;
    store_t *s = b->s;
    (void)status; /* never cancelled */
    if (b->rc == MDB_MAP_FULL) {
        /* The txn was aborted, so nothing of the batch is in the store; grow and replay it.
         * With the read view open the map cannot be remapped: wait for store_read_end. */
        if (s->rcount > 0) {
            s->grow_pending = true;
            s->stats.map_grow_waits++;
            return;
        }
        grow_and_retry(s);
        return;
    }
    finish(s, b, batch_status(s, b));
}

void store_commit_(store_t *s, store_batch_t *b, store_done_fn done, void *arg)
{
    assert(!s->inflight);
    s->inflight = b;
    b->done = done;
    b->arg = arg;
    b->inject_enospc = false;
    if (s->inject_enospc > 0) {
        s->inject_enospc--;
        b->inject_enospc = true;
    }
    queue_batch(s, b);
}

int store_batch_submit_(store_t *s, store_done_fn done, void *arg)
{
    if (s->inflight) return STZ_EBUSY;
    store_batch_t *b = store_batch(s);
    s->building = NULL;
    store_commit_(s, b, done, arg);
    return STZ_OK;
}

void store_inject_enospc(store_t *s, int n)
{
    s->inject_enospc = n;
}
