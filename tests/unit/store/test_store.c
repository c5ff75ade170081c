/* Unit tests for the store: batches and reads on every db, cursors and their edges, group commit
 * (a batch built while another is in flight), persistence, MEMORY mode, the directory lock.
 * test_store_space.c has map growth, full disks and commit pacing. */
#include "store_fixture.h"

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

int main(void)
{
    TEST_RUN(test_roundtrip_all_dbs);
    TEST_RUN(test_del_range_edges);
    TEST_RUN(test_cursors);
    TEST_RUN(test_busy_and_next_batch);
    TEST_RUN(test_persistence);
    TEST_RUN(test_memory_mode);
    TEST_RUN(test_lock);
    return test_summary();
}
