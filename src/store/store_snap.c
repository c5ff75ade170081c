/* store_snap: the store as a snapshot of the replicated state (clustered mode).
 *
 * A snapshot is a header of SNAP_HEADER bytes (SNAP_MAGIC, then the log index it stands for,
 * 64 bits little-endian) and a compacted copy of the LMDB environment (mdb_env_copyfd2): the
 * copy holds its own applied index (store_repl.c's META "raft_applied"), at or past that index,
 * since the copy waits until the entry is in LMDB and writes may go on while it runs. Restoring
 * replaces the environment with the copy, unless the store already holds the snapshot's index
 * (then the log tail after it is all that is missing, and the log replays it). */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store_private.h"
#include "xalloc.h"

#define SNAP_MAGIC "STZSNAP1"
#define SNAP_HEADER 16
#define WAIT_APPLIED_NS (30ull * 1000000000ull)

/* The header and a compacted copy of the environment, in one buffer from alloc. */
static int copy(store_t *s, uint64_t index, void *(*alloc)(size_t), void **out, size_t *len)
{
    int fd = memfd_create("stanza-snapshot", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    unsigned char *buf = size >= 0 ? alloc(SNAP_HEADER + (size_t)size) : NULL;
    if (buf) {
        memcpy(buf, SNAP_MAGIC, 8);
        for (int i = 0; i < 8; i++)
            buf[8 + i] = (unsigned char)(index >> (8 * i));
        size_t done = 0;
        while (done < (size_t)size) {
            ssize_t n = pread(fd, buf + SNAP_HEADER + done, (size_t)size - done, (off_t)done);
            if (n <= 0) break;
            done += (size_t)n;
        }
        if (done == (size_t)size) {
            *out = buf;
            *len = SNAP_HEADER + (size_t)size;
        }
    }
    close(fd);
    if (*out) return STZ_OK;
    LOG_E("store: cannot copy %s for a snapshot: %s", s->dir,
          rc ? mdb_strerror(rc) : "out of memory or a short read");
    return STZ_EIO;
}

int store_snapshot(store_t *s, uint64_t index, void *(*alloc)(size_t), void **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    uv_mutex_lock(&s->applied_lock);
    while (s->applied_sync < index && !s->applied_closing)
        if (uv_cond_timedwait(&s->applied_cond, &s->applied_lock, WAIT_APPLIED_NS) != 0) break;
    bool ready = s->applied_sync >= index && !s->applied_closing;
    if (ready) s->snapshots_running++;
    uv_mutex_unlock(&s->applied_lock);
    if (!ready) return STZ_EBUSY;
    int rc = copy(s, index, alloc, out, len);
    uv_mutex_lock(&s->applied_lock);
    s->snapshots_running--;
    uv_cond_broadcast(&s->applied_cond);
    uv_mutex_unlock(&s->applied_lock);
    return rc;
}

static bool parse_header(const unsigned char *p, size_t len, uint64_t *index)
{
    if (len < SNAP_HEADER || memcmp(p, SNAP_MAGIC, 8) != 0) return false;
    *index = 0;
    for (int i = 7; i >= 0; i--)
        *index = *index << 8 | p[8 + i];
    return true;
}

/* Whether path is an LMDB environment copy with the store's databases, its applied index in
 * *applied: checked before the store's own environment is closed, so that a bad snapshot leaves
 * the store as it was. (LMDB checks its meta pages; damage deeper in the file is not found.) */
static bool check_copy(const char *path, uint64_t *applied)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = {sizeof STORE_APPLIED_KEY - 1, STORE_APPLIED_KEY}, v;
    bool ok = false;
    if (mdb_env_create(&env) != 0) return false;
    if (mdb_env_set_maxdbs(env, STORE_NDBS) == 0 &&
        mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0644) == 0 &&
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 &&
        mdb_dbi_open(txn, "meta", 0, &dbi) == 0 && mdb_get(txn, dbi, &k, &v) == 0 &&
        v.mv_size == 8) {
        *applied = store_applied_decode_(v.mv_data);
        ok = true;
    }
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    return ok;
}

int store_restore(store_t *s, const void *data, size_t len, bool *replaced)
{
    *replaced = false;
    uint64_t index;
    if (!parse_header(data, len, &index)) {
        LOG_E("store: a snapshot of %zu bytes that this version cannot read", len);
        return STZ_EINVAL;
    }
    if (s->applied_index >= index) {
        LOG_I("store: snapshot at %llu skipped: %s already holds entry %llu",
              (unsigned long long)index, s->dir, (unsigned long long)s->applied_index);
        return STZ_OK;
    }
    if (s->inflight || s->rcount) return STZ_EBUSY;
    char tmp[PATH_MAX], err[512];
    snprintf(tmp, sizeof tmp, "%s/data.mdb.restore", s->dir);
    int e = fs_write_file(tmp, (const char *)data + SNAP_HEADER, len - SNAP_HEADER);
    if (e) {
        unlink(tmp);
        LOG_E("store: cannot write %s: %s", tmp, strerror(e));
        return e == ENOSPC ? STZ_ENOSPC : STZ_EIO;
    }
    uint64_t inside = 0;
    if (!check_copy(tmp, &inside) || inside < index) {
        unlink(tmp);
        LOG_E("store: the snapshot at %llu does not hold a store at that entry",
              (unsigned long long)index);
        return STZ_EINVAL;
    }
    int rc = store_swap_env_(s, tmp, err, sizeof err);
    if (rc) {
        unlink(tmp);
        LOG_E("store: cannot restore the snapshot at %llu: %s", (unsigned long long)index, err);
        return rc;
    }
    rc = store_repl_reload_(s);
    if (rc) return rc;
    *replaced = true;
    LOG_I("store: %s restored from the snapshot at %llu (entries applied: %llu)", s->dir,
          (unsigned long long)index, (unsigned long long)s->applied_index);
    return STZ_OK;
}
