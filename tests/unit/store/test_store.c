/* Unit tests for the store: batches and reads on every db, cursors and their edges, group commit
 * (a batch built while another is in flight), persistence, MEMORY mode, map growth (also while
 * the read view is open), injected and real (tmpfs) full disks, the directory lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "test.h"

/* ---- fixtures ---- */

typedef struct {
    uv_loop_t loop;
    store_t *s;
    char dir[64];
} fx_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static store_t *open_at(fx_t *f, const char *dir, bool sync, uint64_t map)
{
    store_options_t opt = {.dir = dir, .sync = sync, .initial_map_size = map};
    char err[512] = "";
    store_t *s = NULL;
    int rc = store_open(&s, &f->loop, &opt, err, sizeof err);
    if (rc != STZ_OK) fprintf(stderr, "store_open: %s\n", err);
    CHECK_EQ_INT(rc, STZ_OK);
    CHECK(s);
    return s;
}

static void fx_init(fx_t *f, bool sync, uint64_t map)
{
    CHECK_EQ_INT(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/stanza-store-test-XXXXXX");
    CHECK(mkdtemp(f->dir));
    f->s = open_at(f, f->dir, sync, map);
}

static void loop_done(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
    CHECK_EQ_INT(uv_loop_close(loop), 0);
}

static void fx_done(fx_t *f)
{
    store_close(f->s);
    f->s = NULL;
    loop_done(&f->loop);
    rm_rf(f->dir);
}

typedef struct {
    int calls, status, seq;
} done_t;

static int done_seq;

static void on_done(void *arg, int status)
{
    done_t *d = arg;
    d->calls++;
    d->status = status;
    d->seq = ++done_seq;
}

/* Submits the current batch and runs the loop until its done callback fired. */
static int commit(fx_t *f)
{
    done_t d = {0};
    CHECK_EQ_INT(store_submit(f->s, on_done, &d), STZ_OK);
    while (!d.calls)
        uv_run(&f->loop, UV_RUN_ONCE);
    CHECK_EQ_INT(d.calls, 1);
    return d.status;
}

static void put_str(store_t *s, store_db_t db, const char *k, const char *v)
{
    store_put(s, db, k, strlen(k), v, strlen(v));
}

/* The value of k as a string (static buffer), or NULL when absent. Opens its own read view. */
static const char *get_str(store_t *s, store_db_t db, const char *k)
{
    static char out[256];
    store_val_t v;
    CHECK_EQ_INT(store_read_begin(s), STZ_OK);
    int rc = store_get(s, db, k, strlen(k), &v);
    if (rc == STZ_OK) {
        CHECK(v.len < sizeof out);
        memcpy(out, v.p, v.len);
        out[v.len] = '\0';
    }
    store_read_end(s);
    if (rc == STZ_ENOENT) return NULL;
    CHECK_EQ_INT(rc, STZ_OK);
    return out;
}

static void be32(uint32_t x, unsigned char out[4])
{
    out[0] = (unsigned char)(x >> 24);
    out[1] = (unsigned char)(x >> 16);
    out[2] = (unsigned char)(x >> 8);
    out[3] = (unsigned char)x;
}

static uint32_t from_be32(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static size_t count_db(store_t *s, store_db_t db)
{
    size_t n = 0;
    CHECK_EQ_INT(store_read_begin(s), STZ_OK);
    store_cursor_t *c = store_cursor_open(s, db);
    CHECK(c);
    for (int rc = store_cursor_seek(c, NULL, 0, NULL, NULL); rc == STZ_OK;
         rc = store_cursor_next(c, NULL, NULL))
        n++;
    store_cursor_close(c);
    store_read_end(s);
    return n;
}

/* ---- tests ---- */

static void test_roundtrip_all_dbs(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    CHECK(store_batch_empty(f.s));
    for (int db = 0; db < STORE_NDBS; db++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", db);
        put_str(f.s, db, "key", v);
        put_str(f.s, db, "gone", "x");
        store_append(f.s, db, "zz1", 3, "a1", 2);
        store_append(f.s, db, "zz2", 3, "a2", 2);
        store_append(f.s, db, "aa", 2, "out-of-order", 12); /* falls back to a put */
        store_append(f.s, db, "zz2", 3, "a2b", 3);          /* overwrite through append */
        char *r = store_put_reserve(f.s, db, "res", 3, 5);
        memcpy(r, "12345", 5);
    }
    CHECK(!store_batch_empty(f.s));
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK(store_batch_empty(f.s));
    for (int db = 0; db < STORE_NDBS; db++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", db);
        CHECK_EQ_STR(get_str(f.s, db, "key"), v);
        CHECK_EQ_STR(get_str(f.s, db, "zz1"), "a1");
        CHECK_EQ_STR(get_str(f.s, db, "zz2"), "a2b");
        CHECK_EQ_STR(get_str(f.s, db, "aa"), "out-of-order");
        CHECK_EQ_STR(get_str(f.s, db, "res"), "12345");
        store_del(f.s, db, "gone", 4);
        store_del(f.s, db, "never-there", 11); /* ignored */
        store_del_range(f.s, db, "zz", 2, "zz9", 3);
    }
    CHECK_EQ_INT(commit(&f), STZ_OK);
    for (int db = 0; db < STORE_NDBS; db++) {
        CHECK(get_str(f.s, db, "gone") == NULL);
        CHECK(get_str(f.s, db, "zz1") == NULL);
        CHECK(get_str(f.s, db, "zz2") == NULL);
        CHECK_EQ_INT(count_db(f.s, db), 3); /* aa, key, res */
    }
    /* Values are independent per db. */
    CHECK_EQ_STR(get_str(f.s, STORE_DB_PENDING, "key"), "v5");
    /* An empty batch is legal and commits nothing. */
    store_batch(f.s);
    CHECK_EQ_INT(commit(&f), STZ_OK);
    store_stats_t st;
    store_get_stats(f.s, &st);
    CHECK_EQ_INT(st.commits, 3);
    CHECK(st.used_bytes > 0 && st.used_bytes <= st.map_size);
    fx_done(&f);
}

static void test_del_range_edges(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    unsigned char k[4], lo[4], hi[4];
    for (uint32_t i = 0; i < 100; i++) {
        be32(i * 2, k); /* even keys 0..198 */
        store_append(f.s, STORE_DB_MSGS, k, 4, k, 4);
    }
    CHECK_EQ_INT(commit(&f), STZ_OK);
    be32(11, lo), be32(20, hi); /* 12..20: 5 keys, bounds not present / present */
    store_del_range(f.s, STORE_DB_MSGS, lo, 4, hi, 4);
    be32(50, lo), be32(40, hi); /* lo > hi: nothing */
    store_del_range(f.s, STORE_DB_MSGS, lo, 4, hi, 4);
    be32(190, lo), be32(1000, hi); /* through the end: 190..198, 5 keys */
    store_del_range(f.s, STORE_DB_MSGS, lo, 4, hi, 4);
    be32(1000, lo), be32(2000, hi); /* after the last: nothing */
    store_del_range(f.s, STORE_DB_MSGS, lo, 4, hi, 4);
    store_del_range(f.s, STORE_DB_CHANNELS, lo, 4, hi, 4); /* empty db */
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK_EQ_INT(count_db(f.s, STORE_DB_MSGS), 90);
    be32(0, lo), be32(1, hi); /* from the first key, lo == first */
    store_del_range(f.s, STORE_DB_MSGS, lo, 4, hi, 4);
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK_EQ_INT(count_db(f.s, STORE_DB_MSGS), 89);
    /* The survivors are exactly the expected keys. */
    CHECK_EQ_INT(store_read_begin(f.s), STZ_OK);
    store_cursor_t *c = store_cursor_open(f.s, STORE_DB_MSGS);
    store_val_t kv;
    uint32_t expect = 2;
    for (int rc = store_cursor_seek(c, NULL, 0, &kv, NULL); rc == STZ_OK;
         rc = store_cursor_next(c, &kv, NULL)) {
        if (expect == 12) expect = 22;
        CHECK_EQ_INT(from_be32(kv.p), expect);
        expect += 2;
    }
    CHECK_EQ_INT(expect, 190);
    store_cursor_close(c);
    store_read_end(f.s);
    fx_done(&f);
}

static void check_kv(int rc, store_val_t k, store_val_t v, const char *key)
{
    CHECK_EQ_INT(rc, STZ_OK);
    CHECK_MEM(k.p, k.len, key);
    char want[16];
    snprintf(want, sizeof want, "v-%s", key);
    CHECK_MEM(v.p, v.len, want);
}

static void test_cursors(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    store_val_t k, v;
    /* Empty db: every positioning fails. */
    CHECK_EQ_INT(store_read_begin(f.s), STZ_OK);
    store_cursor_t *c = store_cursor_open(f.s, STORE_DB_SUBS);
    CHECK(c);
    CHECK_EQ_INT(store_cursor_seek(c, NULL, 0, &k, &v), STZ_ENOENT);
    CHECK_EQ_INT(store_cursor_seek(c, "m", 1, &k, &v), STZ_ENOENT);
    CHECK_EQ_INT(store_cursor_seek_le(c, NULL, 0, &k, &v), STZ_ENOENT);
    CHECK_EQ_INT(store_cursor_seek_le(c, "m", 1, &k, &v), STZ_ENOENT);
    CHECK_EQ_INT(store_cursor_next(c, &k, &v), STZ_ENOENT);
    CHECK_EQ_INT(store_cursor_prev(c, &k, &v), STZ_ENOENT);
    store_cursor_close(c);
    store_read_end(f.s);

    put_str(f.s, STORE_DB_SUBS, "b", "v-b");
    put_str(f.s, STORE_DB_SUBS, "d", "v-d");
    put_str(f.s, STORE_DB_SUBS, "dd", "v-dd");
    put_str(f.s, STORE_DB_SUBS, "f", "v-f");
    put_str(f.s, STORE_DB_CLIENTS, "zzz", "other db"); /* must not leak into SUBS */
    CHECK_EQ_INT(commit(&f), STZ_OK);

    CHECK_EQ_INT(store_read_begin(f.s), STZ_OK);
    CHECK_EQ_INT(store_read_begin(f.s), STZ_OK); /* nested */
    c = store_cursor_open(f.s, STORE_DB_SUBS);
    /* seek: first key >= */
    check_kv(store_cursor_seek(c, NULL, 0, &k, &v), k, v, "b");
    check_kv(store_cursor_seek(c, "a", 1, &k, &v), k, v, "b");
    check_kv(store_cursor_seek(c, "b", 1, &k, &v), k, v, "b");
    check_kv(store_cursor_seek(c, "c", 1, &k, &v), k, v, "d");
    check_kv(store_cursor_seek(c, "d\x01", 2, &k, &v), k, v, "dd");
    check_kv(store_cursor_seek(c, "e", 1, &k, &v), k, v, "f");
    CHECK_EQ_INT(store_cursor_seek(c, "g", 1, &k, &v), STZ_ENOENT);
    /* seek_le: last key <= */
    check_kv(store_cursor_seek_le(c, NULL, 0, &k, &v), k, v, "f");
    CHECK_EQ_INT(store_cursor_seek_le(c, "a", 1, &k, &v), STZ_ENOENT);
    check_kv(store_cursor_seek_le(c, "b", 1, &k, &v), k, v, "b");
    check_kv(store_cursor_seek_le(c, "c", 1, &k, &v), k, v, "b");
    check_kv(store_cursor_seek_le(c, "d", 1, &k, &v), k, v, "d");
    check_kv(store_cursor_seek_le(c, "d\x01", 2, &k, &v), k, v, "d");
    check_kv(store_cursor_seek_le(c, "de", 2, &k, &v), k, v, "dd");
    check_kv(store_cursor_seek_le(c, "f", 1, &k, &v), k, v, "f");
    check_kv(store_cursor_seek_le(c, "zz", 2, &k, &v), k, v, "f");
    /* next/prev walk, both edges */
    check_kv(store_cursor_seek(c, NULL, 0, &k, &v), k, v, "b");
    CHECK_EQ_INT(store_cursor_prev(c, &k, &v), STZ_ENOENT);
    check_kv(store_cursor_seek(c, "b", 1, &k, &v), k, v, "b");
    check_kv(store_cursor_next(c, &k, &v), k, v, "d");
    check_kv(store_cursor_next(c, &k, &v), k, v, "dd");
    check_kv(store_cursor_next(c, &k, &v), k, v, "f");
    CHECK_EQ_INT(store_cursor_next(c, &k, &v), STZ_ENOENT);
    check_kv(store_cursor_seek_le(c, NULL, 0, &k, &v), k, v, "f");
    check_kv(store_cursor_prev(c, &k, &v), k, v, "dd");
    check_kv(store_cursor_prev(c, NULL, NULL), k, v, "dd"); /* NULL outputs are allowed */
    check_kv(store_cursor_prev(c, &k, &v), k, v, "b");
    CHECK_EQ_INT(store_cursor_prev(c, &k, &v), STZ_ENOENT);
    store_cursor_close(c);
    store_read_end(f.s);
    store_read_end(f.s);

    /* Cursors are cached and renewed: many opens across many views see fresh data. */
    for (int i = 0; i < 50; i++) {
        char key[8];
        snprintf(key, sizeof key, "g%02d", i);
        put_str(f.s, STORE_DB_SUBS, key, "v");
        CHECK_EQ_INT(commit(&f), STZ_OK);
        CHECK_EQ_INT(store_read_begin(f.s), STZ_OK);
        store_cursor_t *cs[6];
        for (int j = 0; j < 6; j++)
            cs[j] = store_cursor_open(f.s, STORE_DB_SUBS);
        CHECK_EQ_INT(store_cursor_seek_le(cs[i % 6], NULL, 0, &k, &v), STZ_OK);
        CHECK_MEM(k.p, k.len, key);
        for (int j = 0; j < 6; j++)
            store_cursor_close(cs[j]);
        store_read_end(f.s);
    }
    fx_done(&f);
}

/* A batch built while another is in flight is a different batch; submitting it is refused until
 * the first is done, then it commits after it. */
typedef struct {
    fx_t *f;
    done_t first, second;
    bool resubmitted;
} busy_t;

static void on_first_done(void *arg, int status)
{
    busy_t *b = arg;
    on_done(&b->first, status);
    /* The next batch goes out from inside done, as the streaming engine's group commit does. */
    CHECK(!store_in_flight(b->f->s));
    CHECK_EQ_INT(store_submit(b->f->s, on_done, &b->second), STZ_OK);
    b->resubmitted = true;
}

static void test_busy_and_next_batch(void)
{
    fx_t f;
    fx_init(&f, true, 0);
    busy_t b = {.f = &f};
    store_batch_t *b1 = store_batch(f.s);
    put_str(f.s, STORE_DB_META, "k", "1");
    put_str(f.s, STORE_DB_META, "only1", "x");
    CHECK_EQ_INT(store_submit(f.s, on_first_done, &b), STZ_OK);
    CHECK(store_in_flight(f.s));
    CHECK(store_batch_empty(f.s));
    store_batch_t *b2 = store_batch(f.s);
    CHECK(b2 != b1);
    put_str(f.s, STORE_DB_META, "k", "2");
    put_str(f.s, STORE_DB_META, "only2", "y");
    done_t never = {0};
    CHECK_EQ_INT(store_submit(f.s, on_done, &never), STZ_EBUSY);
    CHECK(!store_batch_empty(f.s)); /* kept for later */
    CHECK_EQ_INT(b.first.calls, 0); /* never synchronously */
    while (!b.second.calls)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK_EQ_INT(never.calls, 0);
    CHECK_EQ_INT(b.first.status, STZ_OK);
    CHECK_EQ_INT(b.second.status, STZ_OK);
    CHECK(b.first.seq < b.second.seq);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_META, "k"), "2");
    CHECK_EQ_STR(get_str(f.s, STORE_DB_META, "only1"), "x");
    CHECK_EQ_STR(get_str(f.s, STORE_DB_META, "only2"), "y");
    fx_done(&f);
}

static void test_persistence(void)
{
    fx_t f;
    fx_init(&f, true, 4 << 20);
    for (int db = 0; db < STORE_NDBS; db++)
        put_str(f.s, db, "persist", "yes");
    CHECK_EQ_INT(commit(&f), STZ_OK);
    store_stats_t st;
    store_get_stats(f.s, &st);
    uint64_t map = st.map_size;
    CHECK(map >= 4u << 20);
    CHECK(exists(f.dir));
    store_close(f.s);
    /* Reopen asking for a smaller map: the existing size is kept. */
    f.s = open_at(&f, f.dir, true, 1 << 20);
    store_get_stats(f.s, &st);
    CHECK(st.map_size >= map);
    for (int db = 0; db < STORE_NDBS; db++)
        CHECK_EQ_STR(get_str(f.s, db, "persist"), "yes");
    store_close(f.s);
    /* A larger request raises it. */
    f.s = open_at(&f, f.dir, true, 64 << 20);
    store_get_stats(f.s, &st);
    CHECK(st.map_size >= 64u << 20);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_MSGS, "persist"), "yes");
    fx_done(&f);
}

/* A MEMORY directory this process holds open (through its LMDB files), other than except: found
 * through /proc/self/fd, because other processes (tests running in parallel, daemons) make and
 * remove such directories too, so counting them is not an answer. */
static bool own_mem_dir(const char *except, char *out, size_t len)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        char link[300], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        char *m = strstr(target, "/stanza-mem-");
        if (!m) continue;
        char *slash = strchr(m + 1, '/');
        if (slash) *slash = '\0';
        if (except && strcmp(target, except) == 0) continue;
        snprintf(out, len, "%s", target);
        found = true;
    }
    closedir(d);
    return found;
}

static void test_memory_mode(void)
{
    fx_t f;
    char dir[PATH_MAX], other_dir[PATH_MAX];
    CHECK_EQ_INT(uv_loop_init(&f.loop), 0);
    f.s = open_at(&f, NULL, true, 0);
    CHECK(own_mem_dir(NULL, dir, sizeof dir));
    put_str(f.s, STORE_DB_CHANNELS, "c", "mem");
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_CHANNELS, "c"), "mem");
    /* Two MEMORY stores are independent. */
    store_t *other = open_at(&f, NULL, false, 0);
    CHECK(own_mem_dir(dir, other_dir, sizeof other_dir));
    CHECK(get_str(other, STORE_DB_CHANNELS, "c") == NULL);
    store_close(other);
    CHECK(access(other_dir, F_OK) != 0 && access(dir, F_OK) == 0);
    store_close(f.s);
    CHECK(access(dir, F_OK) != 0); /* removed with the store */
    loop_done(&f.loop);
}

static void test_lock(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    store_options_t opt = {.dir = f.dir};
    char err[512] = "";
    store_t *s2 = NULL;
    CHECK_EQ_INT(store_open(&s2, &f.loop, &opt, err, sizeof err), STZ_EBUSY);
    CHECK(s2 == NULL);
    fprintf(stderr, "   (expected) %s\n", err);
    CHECK(strstr(err, f.dir));
    CHECK(strstr(err, "another process"));
    CHECK(strstr(err, "stanza.lock"));
    /* The first store is unaffected, and the lock goes with it. */
    put_str(f.s, STORE_DB_META, "a", "b");
    CHECK_EQ_INT(commit(&f), STZ_OK);
    store_close(f.s);
    f.s = open_at(&f, f.dir, false, 0);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_META, "a"), "b");
    /* A directory that does not exist yet is created (several levels). */
    char deep[128];
    snprintf(deep, sizeof deep, "%s/x/y/z", f.dir);
    store_t *s3 = open_at(&f, deep, false, 0);
    store_close(s3);
    CHECK(exists(deep));
    fx_done(&f);
}

/* Just under a page, as one overflow page each: 20 MiB of values is about 20 MiB of map. */
#define VAL_SIZE 4000

static void fill_val(unsigned char *v, uint32_t i)
{
    for (size_t j = 0; j < VAL_SIZE; j += 4)
        be32(i * 7919u + (uint32_t)j, v + j);
}

static void check_vals(store_t *s, uint32_t n)
{
    unsigned char want[VAL_SIZE], k[4];
    CHECK_EQ_INT(store_read_begin(s), STZ_OK);
    for (uint32_t i = 0; i < n; i++) {
        be32(i, k);
        store_val_t v;
        CHECK_EQ_INT(store_get(s, STORE_DB_MSGS, k, 4, &v), STZ_OK);
        fill_val(want, i);
        CHECK_EQ_INT(v.len, VAL_SIZE);
        CHECK(memcmp(v.p, want, VAL_SIZE) == 0);
    }
    store_read_end(s);
}

/* Records puts of values [from, from + n) into the current batch. */
static void put_vals(store_t *s, uint32_t from, uint32_t n)
{
    unsigned char k[4];
    for (uint32_t i = from; i < from + n; i++) {
        be32(i, k);
        fill_val(store_put_reserve(s, STORE_DB_MSGS, k, 4, VAL_SIZE), i);
    }
}

/* Commits 64 KiB batches of values from *n on until one fails (at most max); *n counts the
 * values committed. Returns the failing status, or STZ_OK. */
static int fill_until_failure(fx_t *f, uint32_t *n, int max)
{
    int rc = STZ_OK;
    for (int b = 0; b < max && rc == STZ_OK; b++) {
        put_vals(f->s, *n, 16);
        rc = commit(f);
        if (rc == STZ_OK) *n += 16;
    }
    return rc;
}

static void test_map_growth(void)
{
    fx_t f;
    fx_init(&f, false, 1 << 20);
    unsigned char k[4];
    const uint32_t per_batch = 672, batches = 8; /* 8 x 2.56 MiB = 20.5 MiB */
    for (uint32_t b = 0; b < batches; b++) {
        for (uint32_t i = b * per_batch; i < (b + 1) * per_batch; i++) {
            be32(i, k);
            /* Half built in place, half copied in. */
            if (i & 1) {
                fill_val(store_put_reserve(f.s, STORE_DB_MSGS, k, 4, VAL_SIZE), i);
            } else {
                unsigned char v[VAL_SIZE];
                fill_val(v, i);
                store_append(f.s, STORE_DB_MSGS, k, 4, v, VAL_SIZE);
            }
        }
        CHECK_EQ_INT(commit(&f), STZ_OK);
    }
    check_vals(f.s, per_batch * batches);
    store_stats_t st;
    store_get_stats(f.s, &st);
    fprintf(stderr, "   map %llu MiB after %llu grows, %llu MiB used\n",
            (unsigned long long)(st.map_size >> 20), (unsigned long long)st.map_grows,
            (unsigned long long)(st.used_bytes >> 20));
    CHECK(st.map_grows > 0);
    CHECK(st.used_bytes >= 20u << 20);
    CHECK_EQ_INT(st.commits, batches);
    CHECK_EQ_INT(st.failures, 0);
    fx_done(&f);
}

/* The worker hits MAP_FULL while the loop holds the read view: the grow must wait until it is
 * closed (the map cannot be remapped under a reader), and done comes only after that. */
typedef struct {
    fx_t *f;
    done_t d;
    bool view_closed;
    int ticks;
} wait_t;

static void on_wait_tick(uv_timer_t *t)
{
    wait_t *w = t->data;
    store_stats_t st;
    store_get_stats(w->f->s, &st);
    w->ticks++;
    CHECK(w->ticks < 10000);
    if (st.map_grow_waits == 0) return;
    /* The first attempt failed and is parked: nothing may have been reported yet. */
    CHECK_EQ_INT(w->d.calls, 0);
    CHECK_EQ_INT(st.map_grows, 0);
    w->view_closed = true;
    store_read_end(w->f->s);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_wait_done(void *arg, int status)
{
    wait_t *w = arg;
    CHECK(w->view_closed);
    on_done(&w->d, status);
}

static void test_grow_waits_for_read_view(void)
{
    fx_t f;
    fx_init(&f, false, 1 << 20);
    wait_t w = {.f = &f};
    put_vals(f.s, 0, 1024); /* 4 MiB */
    CHECK_EQ_INT(store_read_begin(f.s), STZ_OK);
    uv_timer_t t;
    uv_timer_init(&f.loop, &t);
    t.data = &w;
    uv_timer_start(&t, on_wait_tick, 1, 1);
    CHECK_EQ_INT(store_submit(f.s, on_wait_done, &w), STZ_OK);
    while (!w.d.calls)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK_EQ_INT(w.d.status, STZ_OK);
    store_stats_t st;
    store_get_stats(f.s, &st);
    CHECK_EQ_INT(st.map_grow_waits, 1);
    CHECK(st.map_grows > 0);
    check_vals(f.s, 1024);
    fx_done(&f);
}

static void test_injected_enospc(void)
{
    fx_t f;
    fx_init(&f, true, 0);
    put_str(f.s, STORE_DB_MSGS, "a", "1");
    CHECK_EQ_INT(commit(&f), STZ_OK);
    store_inject_enospc(f.s, 2);
    put_str(f.s, STORE_DB_MSGS, "a", "overwritten?");
    put_str(f.s, STORE_DB_MSGS, "b", "2");
    CHECK_EQ_INT(commit(&f), STZ_ENOSPC);
    store_del(f.s, STORE_DB_MSGS, "a", 1);
    CHECK_EQ_INT(commit(&f), STZ_ENOSPC);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_MSGS, "a"), "1");
    CHECK(get_str(f.s, STORE_DB_MSGS, "b") == NULL);
    put_str(f.s, STORE_DB_MSGS, "c", "3");
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_MSGS, "a"), "1");
    CHECK_EQ_STR(get_str(f.s, STORE_DB_MSGS, "c"), "3");
    store_stats_t st;
    store_get_stats(f.s, &st);
    CHECK_EQ_INT(st.failures, 2);
    CHECK_EQ_INT(st.commits, 2);
    fx_done(&f);
}

/* An op LMDB would reject at commit time (a key over its limit, or empty) is refused when it is
 * recorded, so the ops around it still commit: one bad key never fails a whole batch. */
static void test_bad_key_refused_when_recorded(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    char big[STORE_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    put_str(f.s, STORE_DB_SUBS, "before", "x");
    CHECK_EQ_INT(store_put(f.s, STORE_DB_SUBS, big, sizeof big, "v", 1), STZ_EINVAL);
    CHECK(store_put_reserve(f.s, STORE_DB_SUBS, big, sizeof big, 4) == NULL);
    CHECK_EQ_INT(store_append(f.s, STORE_DB_SUBS, big, sizeof big, "v", 1), STZ_EINVAL);
    CHECK_EQ_INT(store_del(f.s, STORE_DB_SUBS, big, sizeof big), STZ_EINVAL);
    CHECK_EQ_INT(store_put(f.s, STORE_DB_SUBS, "", 0, "v", 1), STZ_EINVAL);
    CHECK_EQ_INT(store_del_range(f.s, STORE_DB_SUBS, "a", 1, big, sizeof big), STZ_EINVAL);
    put_str(f.s, STORE_DB_SUBS, "after", "y");
    CHECK_EQ_INT(store_put(f.s, STORE_DB_SUBS, big, STORE_MAX_KEY, "v", 1), STZ_OK);
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK(get_str(f.s, STORE_DB_SUBS, "before") != NULL);
    CHECK(get_str(f.s, STORE_DB_SUBS, "after") != NULL);
    CHECK_EQ_INT(count_db(f.s, STORE_DB_SUBS), 3);
    fx_done(&f);
}

/* 10k puts in 100 batches, each built while the previous one commits. */
typedef struct {
    fx_t *f;
    uint32_t next, submitted, completed;
    int failures;
} chain_t;

static void fill_batch(chain_t *c)
{
    unsigned char k[4], v[8];
    for (int i = 0; i < 100; i++, c->next++) {
        be32(c->next, k);
        be32(c->next * 3, v);
        be32(~c->next, v + 4);
        if (c->next % 3 == 0)
            store_put(c->f->s, STORE_DB_PENDING, k, 4, v, 8);
        else
            store_append(c->f->s, STORE_DB_PENDING, k, 4, v, 8);
    }
}

static void on_chain_done(void *arg, int status)
{
    chain_t *c = arg;
    if (status != STZ_OK) c->failures++;
    c->completed++;
    if (c->submitted < 100 && !store_batch_empty(c->f->s)) {
        CHECK_EQ_INT(store_submit(c->f->s, on_chain_done, c), STZ_OK);
        c->submitted++;
        if (c->submitted < 100) fill_batch(c); /* the next one, while this one commits */
    }
}

static void test_many_small_batches(void)
{
    fx_t f;
    fx_init(&f, true, 0);
    chain_t c = {.f = &f};
    fill_batch(&c);
    CHECK_EQ_INT(store_submit(f.s, on_chain_done, &c), STZ_OK);
    c.submitted = 1;
    fill_batch(&c);
    while (c.completed < 100)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK_EQ_INT(c.failures, 0);
    CHECK_EQ_INT(c.next, 10000);
    CHECK_EQ_INT(store_read_begin(f.s), STZ_OK);
    store_cursor_t *cur = store_cursor_open(f.s, STORE_DB_PENDING);
    store_val_t k, v;
    uint32_t i = 0;
    for (int rc = store_cursor_seek(cur, NULL, 0, &k, &v); rc == STZ_OK;
         rc = store_cursor_next(cur, &k, &v), i++) {
        CHECK_EQ_INT(from_be32(k.p), i);
        CHECK_EQ_INT(v.len, 8);
        CHECK_EQ_INT(from_be32(v.p), i * 3);
        CHECK_EQ_INT(from_be32((const char *)v.p + 4), ~i);
    }
    CHECK_EQ_INT(i, 10000);
    store_cursor_close(cur);
    store_read_end(f.s);
    store_stats_t st;
    store_get_stats(f.s, &st);
    CHECK_EQ_INT(st.commits, 100);
    fx_done(&f);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Not a check: the number the docs quote (one small synced commit on this disk). */
static void test_commit_latency(void)
{
    fx_t f;
    fx_init(&f, true, 0);
    enum { N = 200 };
    uint64_t ns[N];
    for (int i = 0; i < N; i++) {
        unsigned char k[4];
        be32((uint32_t)i, k);
        store_put(f.s, STORE_DB_MSGS, k, 4, "payload-of-a-message", 20);
        CHECK_EQ_INT(commit(&f), STZ_OK);
        store_stats_t st;
        store_get_stats(f.s, &st);
        ns[i] = st.commit_ns_last;
    }
    qsort(ns, N, sizeof ns[0], cmp_u64);
    fprintf(stderr, "   synced single-put commit: median %.1f us, p90 %.1f us, max %.1f us\n",
            ns[N / 2] / 1e3, ns[N * 9 / 10] / 1e3, ns[N - 1] / 1e3);
    fx_done(&f);
}

static char tmpfs_mnt[64];

/* A failed CHECK exits: do not leave the tmpfs mounted behind. */
static void unmount_tmpfs(void)
{
    if (!tmpfs_mnt[0]) return;
    umount2(tmpfs_mnt, MNT_DETACH);
    rmdir(tmpfs_mnt);
    tmpfs_mnt[0] = '\0';
}

/* A real full disk: a 2 MiB tmpfs. Needs root and mount permission; skipped (with a note)
 * where the sandbox does not allow it. */
static void test_real_full_disk(void)
{
    char *mnt = tmpfs_mnt;
    snprintf(mnt, sizeof tmpfs_mnt, "/tmp/stanza-store-tmpfs-XXXXXX");
    CHECK(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m") != 0) {
        fprintf(stderr, "   SKIPPED: cannot mount a tmpfs here (%s)\n", strerror(errno));
        rmdir(mnt);
        mnt[0] = '\0';
        return;
    }
    atexit(unmount_tmpfs);
    char filler[128], dir[128];
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    snprintf(dir, sizeof dir, "%s/store", mnt);
    /* Room to free later: 512 KiB that the store cannot use until it is deleted. */
    int fd = open(filler, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    static char chunk[512 << 10];
    memset(chunk, 'f', sizeof chunk);
    CHECK_EQ_INT(write(fd, chunk, sizeof chunk), sizeof chunk);
    close(fd);

    fx_t f;
    CHECK_EQ_INT(uv_loop_init(&f.loop), 0);
    f.s = open_at(&f, dir, true, 1 << 20);
    uint32_t n = 0;
    int rc = fill_until_failure(&f, &n, 100);
    fprintf(stderr, "   disk full after %u values: %s\n", n, stz_strerror(rc));
    CHECK_EQ_INT(rc, STZ_ENOSPC);
    CHECK(n > 0);
    check_vals(f.s, n); /* everything committed before is intact */
    /* Still full. A retry may fit into the blocks the failed commit left allocated in the file
     * (LMDB writes the next commit to the same page numbers), but soon fails the same way. */
    CHECK_EQ_INT(fill_until_failure(&f, &n, 10), STZ_ENOSPC);
    check_vals(f.s, n);
    /* Space returns: the next batch works. */
    CHECK_EQ_INT(unlink(filler), 0);
    put_vals(f.s, n, 16);
    n += 16;
    CHECK_EQ_INT(commit(&f), STZ_OK);
    check_vals(f.s, n);
    store_close(f.s);
    /* And it survives a reopen. */
    f.s = open_at(&f, dir, true, 1 << 20);
    check_vals(f.s, n);
    store_close(f.s);
    loop_done(&f.loop);
    unmount_tmpfs();
}

int main(void)
{
    TEST_RUN(test_roundtrip_all_dbs);
    TEST_RUN(test_del_range_edges);
    TEST_RUN(test_cursors);
    TEST_RUN(test_busy_and_next_batch);
    TEST_RUN(test_persistence);
    TEST_RUN(test_memory_mode);
    TEST_RUN(test_lock);
    TEST_RUN(test_map_growth);
    TEST_RUN(test_grow_waits_for_read_view);
    TEST_RUN(test_injected_enospc);
    TEST_RUN(test_bad_key_refused_when_recorded);
    TEST_RUN(test_many_small_batches);
    TEST_RUN(test_commit_latency);
    TEST_RUN(test_real_full_disk);
    return test_summary();
}
