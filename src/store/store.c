/* store: the LMDB environment (open, lock, close), the loop thread's read view and cursors.
 * Batches and the commit worker are in store_batch.c. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store_private.h"
#include "xalloc.h"

#define DEFAULT_MAP_SIZE (256ull << 20)
#define LOCK_FILE "stanza.lock"

static const char *const db_names[STORE_NDBS] = {"meta", "clients", "channels", "msgs",
                                                 "subs", "pending", "dead"};

/* MEMORY mode lives in RAM when /dev/shm is usable (no disk I/O at all), else in the temp dir. */
static char *make_memory_dir(void)
{
    const char *base = "/dev/shm";
    struct stat st;
    if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode) || access(base, W_OK | X_OK) != 0) {
        base = getenv("TMPDIR");
        if (!base || !*base) base = "/tmp";
    }
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/stanza-mem-XXXXXX", base);
    if (!mkdtemp(tmpl)) return NULL;
    return xstrdup(tmpl);
}

static void remove_memory_dir(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", LOCK_FILE};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    if (rmdir(dir) != 0) LOG_W("store: cannot remove %s: %s", dir, strerror(errno));
}

/* LMDB's own lock file coordinates readers and writers but does not keep a second daemon out:
 * two writers would take turns and corrupt each other's view of the data. An flock on our own
 * file does, and it is released by the kernel whatever way the process ends. The holder's pid
 * is written into it for the error message. */
static int take_dir_lock(store_t *s, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" LOCK_FILE, s->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open store in %s: %s: %s", s->dir, path, strerror(errno));
        return STZ_EIO;
    }
    /* A daemon being replaced (SIGTERM, then the new one started at once, as supervisors and
     * client test suites do) releases the lock within milliseconds: wait for it a little. */
    int waited = 0;
    bool logged = false;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK && waited < s->lock_wait_ms) {
        if (!logged) {
            char holder[32] = "";
            ssize_t hn = pread(fd, holder, sizeof holder - 1, 0);
            holder[hn > 0 ? hn : 0] = '\0';
            holder[strcspn(holder, "\n")] = '\0';
            LOG_I("store: waiting up to %d ms for the lock of %s (held by pid %s)", s->lock_wait_ms,
                  s->dir, *holder ? holder : "?");
            logged = true;
        }
        usleep(10000);
        waited += 10;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            snprintf(err, errlen,
                     "cannot open store in %s: another process%s%s%s holds its lock (%s)", s->dir,
                     *pid ? " (pid " : "", pid, *pid ? ")" : "", path);
        else
            snprintf(err, errlen, "cannot open store in %s: lock %s: %s", s->dir, path,
                     strerror(e));
        close(fd);
        return e == EWOULDBLOCK ? STZ_EBUSY : STZ_EIO;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* Only the message for a second daemon suffers; the lock itself is held. */
    }
    s->lock_fd = fd;
    return STZ_OK;
}

/* Opens the environment's databases once; the handles stay valid until the env closes. */
static int open_dbs(store_t *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return rc;
    for (int i = 0; i < STORE_NDBS; i++) {
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
        if (rc) {
            mdb_txn_abort(txn);
            return rc;
        }
    }
    return mdb_txn_commit(txn);
}

/* Opens the environment in s->dir with s->env_flags (store_open, and again after
 * store_swap_env_). MDB_NOTLS: the read transaction lives on the loop thread while write
 * transactions run on pool threads, so reader slots must belong to transactions, not threads.
 * No MDB_WRITEMAP: with it a full disk shows up as SIGBUS on a page fault instead of an error
 * from write(). On failure s->env is closed again and err says why. */
static int open_env(store_t *s, char *err, size_t errlen)
{
    const char *what = "mdb_env_create";
    int rc = mdb_env_create(&s->env);
    if (!rc) {
        what = "mdb_env_set_maxdbs";
        rc = mdb_env_set_maxdbs(s->env, STORE_NDBS);
    }
    if (!rc) {
        what = "mdb_env_open";
        rc = mdb_env_open(s->env, s->dir, s->env_flags, 0644);
    }
    /* The map size is set only after opening: an existing environment reopens at the size it
     * last had (never smaller), and only then is it raised to the requested initial size. */
    if (!rc) {
        what = "mdb_env_set_mapsize";
        MDB_envinfo info;
        uint64_t want = s->initial_map_size;
        long pg = sysconf(_SC_PAGESIZE);
        want = (want + (uint64_t)pg - 1) / (uint64_t)pg * (uint64_t)pg;
        mdb_env_info(s->env, &info);
        if (info.me_mapsize < want) rc = mdb_env_set_mapsize(s->env, (size_t)want);
    }
    if (!rc) {
        what = "opening the databases";
        rc = open_dbs(s);
    }
    if (!rc) return STZ_OK;
    snprintf(err, errlen, "cannot open store in %s: %s: %s", s->dir, what, mdb_strerror(rc));
    if (s->env) mdb_env_close(s->env);
    s->env = NULL;
    return rc == ENOSPC || rc == EDQUOT ? STZ_ENOSPC : STZ_EIO;
}

/* Frees the cached cursors and the read transaction: before the environment closes. */
static void drop_reads(store_t *s)
{
    for (int db = 0; db < STORE_NDBS; db++) {
        list_node_t *n;
        while ((n = list_pop_front(&s->cursor_cache[db]))) {
            store_cursor_t *c = LIST_ITEM(n, store_cursor_t, free_link);
            mdb_cursor_close(c->mc);
            free(c);
        }
        s->ncached[db] = 0;
    }
    if (s->rtxn) mdb_txn_abort(s->rtxn);
    s->rtxn = NULL;
}

int store_swap_env_(store_t *s, const char *file, char *err, size_t errlen)
{
    assert(s->rcount == 0 && !s->inflight);
    drop_reads(s);
    mdb_env_close(s->env);
    s->env = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    if (rename(file, path) != 0) {
        snprintf(err, errlen, "cannot move %s to %s: %s", file, path, strerror(errno));
        /* Reopen what was there, so the store stays usable. */
        char ignore[64];
        open_env(s, ignore, sizeof ignore);
        return STZ_EIO;
    }
    return open_env(s, err, errlen);
}

static void store_free(store_t *s)
{
    if (s->env) mdb_env_close(s->env);
    if (s->lock_fd >= 0) close(s->lock_fd);
    if (s->memory && s->dir) remove_memory_dir(s->dir);
    free(s->dir);
    free(s);
}

int store_open(store_t **out, uv_loop_t *loop, const store_options_t *opt, char *err, size_t errlen)
{
    *out = NULL;
    store_t *s = xcalloc(1, sizeof *s);
    for (int db = 0; db < STORE_NDBS; db++)
        list_init(&s->cursor_cache[db]);
    s->loop = loop;
    s->lock_fd = -1;
    s->memory = opt->dir == NULL;
    if (s->memory) {
        s->dir = make_memory_dir();
        if (!s->dir) {
            snprintf(err, errlen, "cannot create the in-memory store: %s", strerror(errno));
            free(s);
            return STZ_EIO;
        }
    } else {
        s->dir = xstrdup(opt->dir);
        int e = fs_mkdirs(s->dir);
        if (e) {
            snprintf(err, errlen, "cannot open store in %s: %s", s->dir, strerror(e));
            store_free(s);
            return STZ_EIO;
        }
        s->lock_wait_ms = opt->lock_wait_ms;
        int lrc = take_dir_lock(s, err, errlen);
        if (lrc < 0) {
            store_free(s);
            return lrc;
        }
    }

    s->log_is_durable = opt->log_is_durable && !s->memory;
    if (s->log_is_durable) {
        int brc = store_boot_check_(s, err, errlen);
        if (brc) {
            store_free(s);
            return brc;
        }
    }
    s->env_flags = MDB_NOTLS;
    if (s->memory || !opt->sync || s->log_is_durable) s->env_flags |= MDB_NOSYNC;
    s->initial_map_size = opt->initial_map_size ? opt->initial_map_size : DEFAULT_MAP_SIZE;
    int rc = open_env(s, err, errlen);
    if (rc) {
        store_free(s);
        return rc;
    }
    /* A crashed process may have left reader slots behind; they would pin old pages forever. */
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if (dead) LOG_W("store: cleared %d stale reader slot(s) in %s", dead, s->dir);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    LOG_I("store: opened %s (%s, map %zu MiB)", s->memory ? "in memory" : s->dir,
          s->log_is_durable         ? "no fsync: the Raft log is the durable copy"
          : s->memory || !opt->sync ? "no fsync"
                                    : "fsync per batch",
          info.me_mapsize >> 20);
    *out = s;
    return STZ_OK;
}

void store_close_(store_t *s)
{
    assert(s->rcount == 0);
    while (s->inflight)
        uv_run(s->loop, UV_RUN_ONCE);
    drop_reads(s);
    if (s->log_is_durable) store_boot_clean_(s);
    store_batches_close_(s);
    store_free(s);
}

void store_get_stats(const store_t *s, store_stats_t *out)
{
    *out = s->stats;
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);
    out->map_size = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
}

/* ---- reads ---- */

static int read_error(const char *what, int rc)
{
    LOG_E("store: %s: %s", what, mdb_strerror(rc));
    return STZ_EIO;
}

int store_read_begin(store_t *s)
{
    if (s->rcount++ > 0) return STZ_OK;
    /* One transaction handle for the life of the store: renew is a reader-slot update, where
     * begin would allocate. */
    int rc = s->rtxn ? mdb_txn_renew(s->rtxn) : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
    if (rc) {
        s->rcount--;
        return read_error("beginning a read", rc);
    }
    return STZ_OK;
}

void store_read_end(store_t *s)
{
    assert(s->rcount > 0);
    if (--s->rcount > 0) return;
    /* Reset releases the snapshot, so the writer can reuse the pages it pinned. */
    mdb_txn_reset(s->rtxn);
    if (s->grow_pending) store_grow_resume_(s);
}

static void to_val(const MDB_val *m, store_val_t *v)
{
    if (!v) return;
    v->p = m->mv_data;
    v->len = m->mv_size;
}

int store_get(store_t *s, store_db_t db, const void *key, size_t klen, store_val_t *v)
{
    assert(s->rcount > 0);
    MDB_val k = {klen, (void *)key}, d;
    int rc = mdb_get(s->rtxn, s->dbi[db], &k, &d);
    if (rc == MDB_NOTFOUND) return STZ_ENOENT;
    if (rc) return read_error("get", rc);
    to_val(&d, v);
    return STZ_OK;
}

store_cursor_t *store_cursor_open(store_t *s, store_db_t db)
{
    assert(s->rcount > 0);
    list_node_t *n = list_first(&s->cursor_cache[db]);
    store_cursor_t *c = n ? LIST_ITEM(n, store_cursor_t, free_link) : NULL;
    if (c) {
        int rc = mdb_cursor_renew(s->rtxn, c->mc);
        if (rc) {
            read_error("renewing a cursor", rc);
            return NULL;
        }
        list_remove(&c->free_link);
        s->ncached[db]--;
        return c;
    }
    MDB_cursor *mc;
    int rc = mdb_cursor_open(s->rtxn, s->dbi[db], &mc);
    if (rc) {
        read_error("opening a cursor", rc);
        return NULL;
    }
    c = xmalloc(sizeof *c);
    c->s = s;
    c->db = db;
    c->mc = mc;
    list_node_init(&c->free_link);
    return c;
}

void store_cursor_close(store_cursor_t *c)
{
    if (!c) return;
    store_t *s = c->s;
    if (s->ncached[c->db] < STORE_CURSOR_CACHE) {
        list_push_front(&s->cursor_cache[c->db], &c->free_link);
        s->ncached[c->db]++;
        return;
    }
    mdb_cursor_close(c->mc);
    free(c);
}

static int cursor_get(store_cursor_t *c, MDB_val *k, MDB_cursor_op op, store_val_t *ko,
                      store_val_t *vo)
{
    MDB_val d;
    int rc = mdb_cursor_get(c->mc, k, &d, op);
    if (rc == MDB_NOTFOUND) return STZ_ENOENT;
    if (rc) return read_error("cursor", rc);
    to_val(k, ko);
    to_val(&d, vo);
    return STZ_OK;
}

int store_cursor_seek(store_cursor_t *c, const void *key, size_t klen, store_val_t *k,
                      store_val_t *v)
{
    MDB_val m = {klen, (void *)key};
    return cursor_get(c, &m, klen ? MDB_SET_RANGE : MDB_FIRST, k, v);
}

int store_cursor_seek_le(store_cursor_t *c, const void *key, size_t klen, store_val_t *k,
                         store_val_t *v)
{
    MDB_val m = {klen, (void *)key};
    if (!klen) return cursor_get(c, &m, MDB_LAST, k, v);
    int rc = cursor_get(c, &m, MDB_SET_RANGE, k, v);
    /* Every key is smaller: the answer is the last one. */
    if (rc == STZ_ENOENT) return cursor_get(c, &m, MDB_LAST, k, v);
    if (rc) return rc;
    if (m.mv_size == klen && memcmp(m.mv_data, key, klen) == 0) return STZ_OK;
    return cursor_get(c, &m, MDB_PREV, k, v);
}

int store_cursor_next(store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    MDB_val m;
    return cursor_get(c, &m, MDB_NEXT, k, v);
}

int store_cursor_prev(store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    MDB_val m;
    return cursor_get(c, &m, MDB_PREV, k, v);
}
