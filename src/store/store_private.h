/* store_private.h: shared by store.c (environment, reads, cursors) and store_batch.c (batches,
 * the commit worker, map growth). Not part of any other module's contract. */
#ifndef STANZA_STORE_PRIVATE_H
#define STANZA_STORE_PRIVATE_H
#include <lmdb.h>

#include "list.h"
#include "store.h"

/* Closed read cursors kept per db for mdb_cursor_renew (saves LMDB's malloc per open). */
#define STORE_CURSOR_CACHE 4

struct store_cursor {
    store_t *s;
    store_db_t db;
    MDB_cursor *mc;
    list_node_t free_link; /* in the store's cache of closed cursors */
};

/* Arena chunk: never moves once allocated, so store_put_reserve pointers stay valid. */
typedef struct store_chunk {
    list_node_t link;
    size_t cap, used;
    char data[];
} store_chunk_t;

enum { OP_PUT, OP_APPEND, OP_DEL, OP_DEL_RANGE };

typedef struct store_op {
    unsigned char kind, db;
    bool redo;         /* staged again if its batch fails (store_del_redo) */
    size_t klen, vlen; /* OP_DEL_RANGE: k = lo, v = hi */
    const void *k, *v;
} store_op_t;

struct store_batch {
    store_t *s;
    store_op_t *ops;
    size_t nops, capops;
    list_node_t chunks; /* the one being filled first */
    size_t bytes;       /* key and value bytes recorded, to size a map growth */
    /* In flight: */
    uv_work_t work;
    store_done_fn done;
    void *arg;
    bool inject_enospc; /* decided on the loop thread, read by the worker */
    int rc;             /* worker's LMDB/errno result */
    size_t failed_op;   /* index of the op that failed, nops if the commit itself did */
    uint64_t commit_ns;
};

struct store {
    uv_loop_t *loop;
    MDB_env *env;
    MDB_dbi dbi[STORE_NDBS];
    char *dir;
    bool memory;
    unsigned env_flags;        /* for mdb_env_open, again after a swap */
    bool log_is_durable;       /* commits not synced; store_boot.c */
    uint64_t initial_map_size; /* the map size asked for at open */
    int lock_wait_ms;          /* how long store_open waits for another process's lock */
    int lock_fd;

    /* Reads (loop thread only). */
    MDB_txn *rtxn;
    int rcount;
    list_node_t cursor_cache[STORE_NDBS];
    int ncached[STORE_NDBS];

    /* Writes. */
    store_batch_t *building; /* being filled; NULL until the first op */
    store_batch_t *inflight; /* at most one */
    store_batch_t *spare;    /* a recycled batch, reused by the next store_batch */
    bool grow_pending;       /* inflight hit MAP_FULL while the read view was open */
    uv_idle_t *grow_idle;    /* runs the deferred grow; freed by its close callback */
    int inject_enospc;
    bool disk_full; /* the last batch failed with STZ_ENOSPC (logged once per episode) */

    store_stats_t stats;

    /* Replication (store_repl.c). */
    store_log_t log;         /* log.propose != NULL: store_submit proposes */
    bool proposing;          /* a proposal waits for its entry to be applied */
    uint64_t proposed_index; /* its index */
    store_done_fn proposed_done;
    void *proposed_arg;
    list_node_t apply_queue; /* committed entries not yet in LMDB, in order */
    size_t applying;         /* how many of them the apply batch in flight carries */
    uint64_t applying_last;  /* the index of its last one */
    uint64_t applied_index;  /* last entry in LMDB */
    uint64_t queued_index;   /* last entry handed to store_apply */
    uv_timer_t *apply_retry; /* after a failed apply; freed by its close callback */
    /* For store_snapshot on a pool thread: applied_index as it stands, under applied_lock. */
    uv_mutex_t applied_lock;
    uv_cond_t applied_cond;
    uint64_t applied_sync;
    bool applied_closing;  /* store_close: waits end */
    int snapshots_running; /* store_close waits for them */
};

/* store_batch.c */
store_batch_t *store_batch_new_(store_t *s);
void store_batch_recycle_(store_t *s, store_batch_t *b);
void *store_batch_add_(store_batch_t *b, int kind, store_db_t db, const void *k, size_t klen,
                       const void *v, size_t vlen);
/* Commits b on the pool (nothing may be in flight); done(arg, status) on the loop. */
void store_commit_(store_t *s, store_batch_t *b, store_done_fn done, void *arg);
/* store_submit without a log: the batch being built, committed on the pool. */
int store_batch_submit_(store_t *s, store_done_fn done, void *arg);
/* Frees the batches and handles the write side owns (nothing may be in flight). */
void store_batches_close_(store_t *s);
/* Called by store_read_end when the read view closes: starts a deferred map growth. */
void store_grow_resume_(store_t *s);

/* store_repl.c */
/* META key of the last log entry applied (8 bytes, big-endian), written with the entry. */
#define STORE_APPLIED_KEY "raft_applied"
static inline void store_applied_encode_(unsigned char out[8], uint64_t index)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(index >> (56 - 8 * i));
}
static inline uint64_t store_applied_decode_(const unsigned char p[8])
{
    uint64_t index = 0;
    for (int i = 0; i < 8; i++)
        index = index << 8 | p[i];
    return index;
}
/* After the environment was replaced (store_snap.c): reads its applied index, drops the queue. */
int store_repl_reload_(store_t *s);

/* store_boot.c */
/* At open, before the environment: drops a data file a machine crash may have damaged. */
int store_boot_check_(store_t *s, char *err, size_t errlen);
/* At close: syncs and records a clean close. */
void store_boot_clean_(store_t *s);

/* store.c */
/* store_close once no batch is in flight (store_repl.c's store_close, the file on top, decides). */
void store_close_(store_t *s);
/* Replaces the environment's data file with file (a copy made by mdb_env_copy) and opens it:
 * no read view, cursor or batch may be open. On failure err says why and the old data stays. */
int store_swap_env_(store_t *s, const char *file, char *err, size_t errlen);

#endif
