/* store_repl: batches as log entries (clustered mode; store.h's "replication"). The store's top
 * file: store_submit, store_in_flight and store_close are here, as they differ with a log; it
 * calls store.c and store_batch.c, never the other way.
 *
 * An entry is a batch's op list, encoded:
 *   a header of 8 bytes: the version (ENTRY_VERSION), 3 zero bytes, the length of the ops that
 *   follow (32 bits, little-endian); then per op: kind (1 byte), db (1 byte), key length and
 *   value length (LEB128 varints), the key bytes, the value bytes; then zeros up to a multiple of
 *   8 bytes. libraft needs that: it sends several entries back to back and finds each one's
 *   start by rounding the previous one's length up to 8.
 * Redo marks are not carried: a proposal that fails is not retried by the store (the node stops
 * leading, and its engine is rebuilt from what the log committed).
 *
 * Applying: committed entries are copied into apply_queue; when no batch is in flight, every
 * queued entry is decoded into one batch, followed by a put of the applied index (META
 * "raft_applied", 8 bytes big-endian), and committed like any batch (map growth included). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_private.h"
#include "xalloc.h"

#define ENTRY_VERSION 1
#define HEADER_LEN 8
#define APPLY_RETRY_MS 1000

typedef struct queued_entry {
    list_node_t link;
    uint64_t index;
    size_t len;
    unsigned char data[];
} queued_entry_t;

/* ---- encoding ---- */

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    do {
        *p = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) *p |= 0x80;
        p++;
    } while (v);
    return p;
}

static bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7)
        n++;
    return n;
}

/* The encoded size, padding included: the entry is allocated once, at its size (it stays in
 * libraft's log until a snapshot, so growing it by doubling would touch twice the memory). */
static size_t encoded_len(const store_batch_t *b)
{
    size_t n = HEADER_LEN;
    for (size_t i = 0; b && i < b->nops; i++) {
        const store_op_t *op = &b->ops[i];
        n += 2 + varint_len(op->klen) + varint_len(op->vlen) + op->klen + op->vlen;
    }
    return (n + 7) / 8 * 8;
}

/* Encodes b (NULL: no op) into one allocation of *len bytes, returned. */
static void *encode(const store_batch_t *b, size_t *len)
{
    *len = encoded_len(b);
    unsigned char *out = xmalloc(*len), *p = out + HEADER_LEN;
    for (size_t i = 0; b && i < b->nops; i++) {
        const store_op_t *op = &b->ops[i];
        *p++ = (unsigned char)op->kind;
        *p++ = (unsigned char)op->db;
        p = put_varint(p, op->klen);
        p = put_varint(p, op->vlen);
        if (op->klen) memcpy(p, op->k, op->klen);
        p += op->klen;
        if (op->vlen) memcpy(p, op->v, op->vlen);
        p += op->vlen;
    }
    uint64_t ops = (uint64_t)(p - out) - HEADER_LEN;
    memset(out, 0, HEADER_LEN);
    out[0] = ENTRY_VERSION;
    for (int i = 0; i < 4; i++)
        out[4 + i] = (unsigned char)(ops >> (8 * i));
    memset(p, 0, *len - (size_t)(p - out)); /* padding */
    return out;
}

/* Decodes an entry's ops into b (NULL: only checks it). False: not an entry of ours; b may then
 * hold some of its ops, so the caller drops b. */
static bool decode(const unsigned char *p, size_t len, store_batch_t *b)
{
    if (len < HEADER_LEN || len % 8 || p[0] != ENTRY_VERSION || p[1] || p[2] || p[3]) return false;
    uint64_t ops =
        (uint64_t)p[4] | (uint64_t)p[5] << 8 | (uint64_t)p[6] << 16 | (uint64_t)p[7] << 24;
    if (ops > len - HEADER_LEN || len - HEADER_LEN - ops >= 8) return false;
    for (size_t i = HEADER_LEN + ops; i < len; i++)
        if (p[i]) return false; /* padding */
    const unsigned char *end = p + HEADER_LEN + ops;
    p += HEADER_LEN;
    while (p < end) {
        if (end - p < 2) return false;
        unsigned kind = p[0], db = p[1];
        p += 2;
        uint64_t klen, vlen;
        if (kind > OP_DEL_RANGE || db >= STORE_NDBS || !get_varint(&p, end, &klen) ||
            !get_varint(&p, end, &vlen) || klen > (uint64_t)(end - p) ||
            vlen > (uint64_t)(end - p) - klen)
            return false;
        if (klen > STORE_MAX_KEY || (klen == 0 && kind != OP_DEL_RANGE)) return false;
        if (b && !store_batch_add_(b, (int)kind, (store_db_t)db, p, klen, p + klen, vlen))
            return false;
        p += klen + vlen;
    }
    return true;
}

/* ---- proposing (the leader) ---- */

/* The applied index as the environment holds it (META raft_applied; 0 without). */
static int read_applied(store_t *s)
{
    int rc = store_read_begin(s);
    if (rc) return rc;
    store_val_t v;
    uint64_t applied = 0;
    rc = store_get(s, STORE_DB_META, STORE_APPLIED_KEY, sizeof STORE_APPLIED_KEY - 1, &v);
    if (rc == STZ_OK && v.len == 8) applied = store_applied_decode_(v.p);
    store_read_end(s);
    if (rc != STZ_OK && rc != STZ_ENOENT) return rc;
    s->applied_index = s->queued_index = applied;
    uv_mutex_lock(&s->applied_lock);
    s->applied_sync = applied;
    uv_mutex_unlock(&s->applied_lock);
    return STZ_OK;
}

int store_set_log(store_t *s, const store_log_t *log)
{
    s->log = *log;
    list_init(&s->apply_queue);
    if (uv_mutex_init(&s->applied_lock) != 0 || uv_cond_init(&s->applied_cond) != 0) abort();
    return read_applied(s);
}

static int propose(store_t *s, store_done_fn done, void *arg)
{
    if (s->proposing) return STZ_EBUSY;
    size_t len;
    void *data = encode(s->building, &len); /* the allocation passes to the log */
    if (s->building) {
        store_batch_recycle_(s, s->building);
        s->building = NULL;
    }
    uint64_t index = 0;
    if (s->log.propose(s->log.arg, data, len, &index) != 0) {
        free(data);
        return STZ_ENOTLEADER;
    }
    s->proposing = true;
    s->proposed_index = index;
    s->proposed_done = done;
    s->proposed_arg = arg;
    return STZ_OK;
}

static void end_proposal(store_t *s, int status)
{
    s->proposing = false;
    s->proposed_done(s->proposed_arg, status);
}

void store_log_failed(store_t *s, uint64_t index)
{
    if (s->proposing && s->proposed_index == index) end_proposal(s, STZ_ENOTLEADER);
}

void store_drop_proposal(store_t *s)
{
    s->proposing = false;
    s->proposed_done = NULL;
    s->proposed_arg = NULL;
}

/* ---- applying (every node) ---- */

static void kick(store_t *s);

static void on_retry(uv_timer_t *t)
{
    kick(t->data);
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

static void on_applied(void *arg, int status)
{
    store_t *s = arg;
    size_t n = s->applying;
    s->applying = 0;
    if (status != STZ_OK) {
        /* Logged by the batch code; the entries stay queued, in order. */
        if (!s->apply_retry) {
            s->apply_retry = xmalloc(sizeof *s->apply_retry);
            uv_timer_init(s->loop, s->apply_retry);
            s->apply_retry->data = s;
        }
        uv_timer_start(s->apply_retry, on_retry, APPLY_RETRY_MS, 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        free(LIST_ITEM(list_pop_front(&s->apply_queue), queued_entry_t, link));
    s->applied_index = s->applying_last;
    uv_mutex_lock(&s->applied_lock);
    s->applied_sync = s->applied_index;
    uv_cond_broadcast(&s->applied_cond);
    uv_mutex_unlock(&s->applied_lock);
    if (s->proposing && s->proposed_index <= s->applied_index) end_proposal(s, STZ_OK);
    if (s->log.applied) s->log.applied(s->log.arg, s->applied_index);
    kick(s);
}

/* Starts an apply batch with every queued entry, unless one is in flight or waits to retry. */
static void kick(store_t *s)
{
    if (s->inflight || list_empty(&s->apply_queue)) return;
    if (s->apply_retry && uv_is_active((uv_handle_t *)s->apply_retry)) return;
    store_batch_t *b = store_batch_new_(s);
    list_node_t *n;
    size_t count = 0;
    list_foreach (n, &s->apply_queue) {
        queued_entry_t *e = LIST_ITEM(n, queued_entry_t, link);
        /* Checked when queued: decoding again cannot fail. */
        decode(e->data, e->len, b);
        s->applying_last = e->index;
        count++;
    }
    unsigned char be[8];
    store_applied_encode_(be, s->applying_last);
    store_batch_add_(b, OP_PUT, STORE_DB_META, STORE_APPLIED_KEY, sizeof STORE_APPLIED_KEY - 1, be,
                     8);
    s->applying = count;
    store_commit_(s, b, on_applied, s);
}

int store_apply(store_t *s, const void *data, size_t len, uint64_t index)
{
    if (index <= s->queued_index) return STZ_OK; /* applied before (a replayed tail) */
    if (!decode(data, len, NULL)) {
        LOG_E("store: log entry %llu is not a batch this version can read (%zu bytes)",
              (unsigned long long)index, len);
        return STZ_EINVAL;
    }
    queued_entry_t *e = xmalloc(sizeof *e + len);
    e->index = index;
    e->len = len;
    memcpy(e->data, data, len);
    list_push_back(&s->apply_queue, &e->link);
    s->queued_index = index;
    kick(s);
    return STZ_OK;
}

uint64_t store_applied_index(const store_t *s)
{
    return s->applied_index;
}

bool store_apply_idle(const store_t *s)
{
    return !s->log.propose || list_empty(&s->apply_queue);
}

/* ---- the entry points that differ with a log (this file is the store's top) ---- */

int store_submit(store_t *s, store_done_fn done, void *arg)
{
    return s->log.propose ? propose(s, done, arg) : store_batch_submit_(s, done, arg);
}

bool store_in_flight(const store_t *s)
{
    return s->log.propose ? s->proposing : s->inflight != NULL;
}

/* Drops the committed entries not applied yet (nothing in flight). */
static size_t drop_queue(store_t *s)
{
    list_node_t *n;
    size_t dropped = 0;
    while ((n = list_pop_front(&s->apply_queue))) {
        free(LIST_ITEM(n, queued_entry_t, link));
        dropped++;
    }
    return dropped;
}

int store_repl_reload_(store_t *s)
{
    drop_queue(s);
    return read_applied(s);
}

/* Ends replication's part at close: the queue, the retry timer, snapshots under way. */
static void close_repl(store_t *s)
{
    size_t dropped = drop_queue(s);
    if (dropped)
        LOG_W("store: closing with %zu committed entries not applied (the log keeps them)",
              dropped);
    if (s->apply_retry) uv_close((uv_handle_t *)s->apply_retry, free_timer);
    s->apply_retry = NULL;
    uv_mutex_lock(&s->applied_lock);
    s->applied_closing = true;
    uv_cond_broadcast(&s->applied_cond);
    while (s->snapshots_running > 0)
        uv_cond_wait(&s->applied_cond, &s->applied_lock);
    uv_mutex_unlock(&s->applied_lock);
    uv_cond_destroy(&s->applied_cond);
    uv_mutex_destroy(&s->applied_lock);
}

void store_close(store_t *s)
{
    if (!s) return;
    while (s->inflight)
        uv_run(s->loop, UV_RUN_ONCE);
    if (s->log.propose) close_repl(s);
    store_close_(s);
}
