/* Unit tests for the store's space and pace: map growth (also while the read view is open),
 * injected and real (tmpfs) full disks, keys the store cannot hold, many small batches in a
 * chain, commit latency. */
#include "store_fixture.h"

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

/* Redo deletes (a deletion the caller's memory already made) outlive failed batches: staged
 * again, until a batch carrying them commits, in front of what was staged after the failure or
 * while the failed batch was in flight, so a later put of the same key wins. Plain ops are lost
 * with their batch, as before. */
static void test_redo_deletes_outlive_failed_batches(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    const char *keys[] = {"a", "b", "p", "r0", "r5", "r9", "s"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        put_str(f.s, STORE_DB_PENDING, keys[i], "1");
    CHECK_EQ_INT(commit(&f), STZ_OK);

    store_inject_enospc(f.s, 2);
    CHECK_EQ_INT(store_del_redo(f.s, STORE_DB_PENDING, "a", 1), STZ_OK);
    CHECK_EQ_INT(store_del_range_redo(f.s, STORE_DB_PENDING, "r0", 2, "r9", 2), STZ_OK);
    store_del(f.s, STORE_DB_PENDING, "p", 1);
    CHECK_EQ_INT(commit(&f), STZ_ENOSPC);
    CHECK(!store_batch_empty(f.s)); /* the redo deletes wait in the next batch */
    put_str(f.s, STORE_DB_PENDING, "c", "lost");
    CHECK_EQ_INT(commit(&f), STZ_ENOSPC); /* carried them: staged once more */
    put_str(f.s, STORE_DB_PENDING, "a", "again");
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_PENDING, "a"), "again");
    CHECK(get_str(f.s, STORE_DB_PENDING, "r0") == NULL);
    CHECK(get_str(f.s, STORE_DB_PENDING, "r5") == NULL);
    CHECK(get_str(f.s, STORE_DB_PENDING, "r9") == NULL);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_PENDING, "p"), "1"); /* plain delete: not replayed */
    CHECK(get_str(f.s, STORE_DB_PENDING, "c") == NULL);
    CHECK(store_batch_empty(f.s)); /* committed: not staged again */

    /* A put recorded while the failed batch is in flight still lands after the delete. */
    store_inject_enospc(f.s, 1);
    CHECK_EQ_INT(store_del_redo(f.s, STORE_DB_PENDING, "b", 1), STZ_OK);
    done_t d = {0};
    CHECK_EQ_INT(store_submit(f.s, on_done, &d), STZ_OK);
    put_str(f.s, STORE_DB_PENDING, "b", "new");
    store_del_redo(f.s, STORE_DB_PENDING, "s", 1);
    while (!d.calls)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK_EQ_INT(d.status, STZ_ENOSPC);
    CHECK_EQ_INT(commit(&f), STZ_OK);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_PENDING, "b"), "new");
    CHECK(get_str(f.s, STORE_DB_PENDING, "s") == NULL);
    CHECK_EQ_INT(count_db(f.s, STORE_DB_PENDING), 3); /* a, b, p */
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
    TEST_RUN(test_map_growth);
    TEST_RUN(test_grow_waits_for_read_view);
    TEST_RUN(test_injected_enospc);
    TEST_RUN(test_redo_deletes_outlive_failed_batches);
    TEST_RUN(test_bad_key_refused_when_recorded);
    TEST_RUN(test_many_small_batches);
    TEST_RUN(test_commit_latency);
    TEST_RUN(test_real_full_disk);
    return test_summary();
}
