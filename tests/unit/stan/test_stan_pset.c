/* stan_pending (src/stan/stan_pending.h): the unacked set as a plain data structure, with a
 * MEMORY store for its rows: orders, lookups, what each operation says changed, and which rows
 * reach the disk. */
#include <uv.h>

#include "err.h"
#include "stan_keys.h"
#include "stan_pending.h"
#include "test.h"

typedef struct fx {
    uv_loop_t loop;
    store_t *store;
    stan_pset_t ps;
} fx_t;

static void fx_open(fx_t *f)
{
    CHECK(uv_loop_init(&f->loop) == 0);
    store_options_t opt = {0}; /* MEMORY */
    char err[256];
    CHECK_EQ_INT(store_open(&f->store, &f->loop, &opt, err, sizeof err), STZ_OK);
    stan_pset_init(&f->ps, 7);
}

static void fx_close(fx_t *f)
{
    stan_pset_free(&f->ps);
    store_close(f->store);
    CHECK(uv_loop_close(&f->loop) == 0);
}

static void on_done(void *arg, int status)
{
    *(int *)arg = status;
}

/* Commits whatever the set staged. */
static void commit(fx_t *f)
{
    int status = 1;
    CHECK_EQ_INT(store_submit(f->store, on_done, &status), STZ_OK);
    while (status == 1)
        uv_run(&f->loop, UV_RUN_ONCE);
    CHECK_EQ_INT(status, STZ_OK);
}

/* The sequences of owner 7's rows on disk, in order, as "1,2,3" (their counts after ':'). */
static void rows(fx_t *f, char *out, size_t len)
{
    out[0] = '\0';
    CHECK_EQ_INT(store_read_begin(f->store), STZ_OK);
    store_cursor_t *c = store_cursor_open(f->store, STORE_DB_PENDING);
    store_val_t k, v;
    uint8_t lo[16];
    stan_key_pending(lo, 7, 0);
    for (int rc = store_cursor_seek(c, lo, sizeof lo, &k, &v); rc == STZ_OK;
         rc = store_cursor_next(c, &k, &v)) {
        if (stan_get_u64(k.p) != 7) break;
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%llu:%u", n ? "," : "",
                 (unsigned long long)stan_get_u64((const uint8_t *)k.p + 8), stan_get_u32(v.p));
    }
    store_cursor_close(c);
    store_read_end(f->store);
}

/* Drains ps in due order (parked entries left), as "3,1,2". */
static void due_order(stan_pset_t *ps, store_t *store, char *out, size_t len)
{
    out[0] = '\0';
    stan_pending_t *p;
    while ((p = stan_pset_first_due(ps))) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%llu", n ? "," : "", (unsigned long long)p->seq);
        stan_pset_drop(ps, store, p);
    }
}

static void test_orders(void)
{
    fx_t f;
    fx_open(&f);
    CHECK(stan_pset_first_due(&f.ps) == NULL && stan_pset_oldest(&f.ps) == NULL);
    /* Delivered 5, 3 (a transfer lands earlier), 9: expiry order is delivery order, the
     * sequence order is by sequence. */
    stan_pset_add(&f.ps, 5, 1, 10, 100, 100);
    stan_pset_add(&f.ps, 3, 2, 20, 200, 100);
    stan_pending_t *p9 = stan_pset_add(&f.ps, 9, 1, 30, 300, 100);
    CHECK_EQ_INT(f.ps.count, 3);
    CHECK_EQ_INT(f.ps.bytes, 60);
    CHECK_EQ_INT(stan_pset_oldest(&f.ps)->seq, 3);
    stan_pending_t *p = stan_pset_first_due(&f.ps);
    CHECK_EQ_INT(p->seq, 5);
    CHECK(stan_pset_find(&f.ps, 9) == p9);
    CHECK(stan_pset_find(&f.ps, 4) == NULL);
    /* A redelivery goes last. */
    stan_pset_schedule(&f.ps, p, 400, 100);
    CHECK_EQ_INT(stan_pset_first_due(&f.ps)->seq, 3);
    stan_pset_all_due(&f.ps);
    CHECK_EQ_INT(stan_pset_first_due(&f.ps)->expire_ms, 0);
    CHECK_EQ_INT(stan_pset_first_due(&f.ps)->seq, 3);
    CHECK_EQ_INT(stan_pset_find(&f.ps, 5)->expire_ms, 0);
    /* Dropping the oldest moves the sequence head. */
    stan_pset_drop(&f.ps, f.store, stan_pset_find(&f.ps, 3));
    CHECK_EQ_INT(stan_pset_oldest(&f.ps)->seq, 5);
    CHECK_EQ_INT(f.ps.count, 2);
    CHECK_EQ_INT(f.ps.bytes, 40);
    /* Many entries: the hash holds them all. */
    for (uint64_t s = 100; s < 5100; s++)
        stan_pset_add(&f.ps, s, 1, 1, s, 100);
    for (uint64_t s = 100; s < 5100; s += 7)
        CHECK(stan_pset_find(&f.ps, s) && stan_pset_find(&f.ps, s)->seq == s);
    CHECK_EQ_INT(f.ps.count, 5002);
    fx_close(&f);
}

static void test_rows(void)
{
    fx_t f;
    fx_open(&f);
    char got[256];
    stan_pending_t *a = stan_pset_add(&f.ps, 1, 1, 0, 0, 0);
    stan_pending_t *b = stan_pset_add(&f.ps, 2, 1, 0, 0, 0);
    /* The first touch is news (the owner must be marked dirty), a second is not. */
    CHECK_EQ_INT(stan_pset_touch(&f.ps, a), STAN_PSET_DIRTY);
    CHECK_EQ_INT(stan_pset_touch(&f.ps, a), 0);
    CHECK_EQ_INT(stan_pset_touch(&f.ps, b), STAN_PSET_DIRTY);
    /* b is acked before the batch is built: its row never reaches the disk. */
    stan_pset_drop(&f.ps, f.store, b);
    stan_pset_write_dirty(&f.ps, f.store);
    commit(&f);
    rows(&f, got, sizeof got);
    CHECK_EQ_STR(got, "1:1");
    CHECK(a->on_disk);
    /* A redelivery rewrites the row with its count. */
    a->count = 2;
    CHECK_EQ_INT(stan_pset_touch(&f.ps, a), STAN_PSET_DIRTY);
    stan_pset_write_dirty(&f.ps, f.store);
    commit(&f);
    rows(&f, got, sizeof got);
    CHECK_EQ_STR(got, "1:2");
    /* Nothing touched: nothing written. */
    stan_pset_write_dirty(&f.ps, f.store);
    CHECK(store_batch_empty(f.store));
    /* A failed batch: every row is written again. */
    stan_pset_add(&f.ps, 3, 1, 0, 0, 0);
    CHECK_EQ_INT(stan_pset_store_failed(&f.ps), STAN_PSET_DIRTY);
    stan_pset_write_dirty(&f.ps, f.store);
    commit(&f);
    rows(&f, got, sizeof got);
    CHECK_EQ_STR(got, "1:2,3:1");
    /* An ack of a row on disk deletes it. */
    stan_pset_drop(&f.ps, f.store, a);
    commit(&f);
    rows(&f, got, sizeof got);
    CHECK_EQ_STR(got, "3:1");
    fx_close(&f);
}

static void test_transfer(void)
{
    fx_t f;
    fx_open(&f);
    stan_pset_t to;
    stan_pset_init(&to, 8);
    stan_pset_add(&to, 50, 1, 0, 500, 500);
    stan_pset_add(&to, 20, 1, 0, 500, 500); /* both hold 20: to keeps its own */
    stan_pset_add(&to, 60, 1, 0, 0, 0);     /* due at once, but after the moved ones */
    /* from, in due order: 40 (a put back), 10, 20, 30 (lanes of 2 waits), 70 (parked). */
    stan_pset_add(&f.ps, 10, 3, 5, 100, 100);
    stan_pset_add(&f.ps, 30, 1, 5, 150, 50);
    stan_pset_add(&f.ps, 20, 1, 5, 100, 50);
    stan_pset_park(&f.ps, stan_pset_add(&f.ps, 70, 1, 5, 100, 100));
    stan_pset_due_now(&f.ps, stan_pset_add(&f.ps, 40, 1, 5, 100, 100));
    unsigned changed = stan_pset_transfer(&f.ps, &to, f.store);
    CHECK_EQ_INT(changed, STAN_PSET_READY | STAN_PSET_DIRTY);
    CHECK_EQ_INT(f.ps.count, 0);
    CHECK(stan_pset_first_due(&f.ps) == NULL);
    CHECK_EQ_INT(to.count, 7);
    /* Moved entries come first, due at once, in from's order, with their counts. */
    stan_pending_t *p = stan_pset_find(&to, 10);
    CHECK_EQ_INT(p->expire_ms, 0);
    CHECK_EQ_INT(p->count, 3);
    CHECK_EQ_INT(stan_pset_oldest(&to)->seq, 10);
    char got[128];
    due_order(&to, f.store, got, sizeof got);
    CHECK_EQ_STR(got, "40,10,30,70,60,50,20");
    /* An empty transfer still makes to due (as before: the caller marks it ready). */
    CHECK_EQ_INT(stan_pset_transfer(&f.ps, &to, f.store), STAN_PSET_READY);
    stan_pset_free(&to);
    fx_close(&f);
}

/* Waits differ (a backoff): entries fall due by expiry whatever lane they wait in, ties in the
 * order they were scheduled; due-now entries first, parked ones never. */
static void test_lanes(void)
{
    fx_t f;
    fx_open(&f);
    char got[128];
    /* One wait at a time: the first lane only, nothing allocated (a set without backoff). */
    stan_pending_t *a = stan_pset_add(&f.ps, 1, 1, 0, 1000, 1000);
    stan_pset_schedule(&f.ps, a, 5000, 2000); /* alone: its lane takes the new wait */
    CHECK(f.ps.lanes == NULL);
    stan_pset_drop(&f.ps, f.store, a);
    /* t=0: 1, 2 (AckWait 1000), 3 (a 4000 wait); t=1000: 1 again (3000: due at 4000, tied with
     * 3, scheduled after it); t=1500: 4 (1000); t=2000: 2 again (10000), 5 (3000). */
    stan_pending_t *p1 = stan_pset_add(&f.ps, 1, 1, 0, 1000, 1000);
    stan_pending_t *p2 = stan_pset_add(&f.ps, 2, 1, 0, 1000, 1000);
    stan_pset_add(&f.ps, 3, 1, 0, 4000, 4000);
    stan_pset_schedule(&f.ps, p1, 4000, 3000);
    stan_pset_add(&f.ps, 4, 1, 0, 2500, 1000);
    stan_pset_schedule(&f.ps, p2, 12000, 10000);
    stan_pset_add(&f.ps, 5, 1, 0, 5000, 3000);
    CHECK(f.ps.lanes != NULL);
    CHECK_EQ_INT(stan_pset_first_due(&f.ps)->seq, 4);
    CHECK_EQ_INT(f.ps.steps, 0);
    /* Put back due at once: first, the last put back before; scheduled at once: after them. */
    stan_pset_add(&f.ps, 9, 1, 0, 0, 0);
    stan_pset_due_now(&f.ps, stan_pset_add(&f.ps, 7, 1, 0, 3000, 1000));
    stan_pset_due_now(&f.ps, stan_pset_add(&f.ps, 6, 1, 0, 3000, 1000));
    /* Parked: never due, wherever it waited. */
    stan_pset_park(&f.ps, stan_pset_add(&f.ps, 8, 1, 0, 3500, 1000));
    due_order(&f.ps, f.store, got, sizeof got);
    CHECK_EQ_STR(got, "6,7,9,4,3,1,5,2");
    CHECK(stan_pset_first_due(&f.ps) == NULL);
    CHECK_EQ_INT(f.ps.count, 1);
    /* A durable resumed: the parked one is due at once too. */
    stan_pset_add(&f.ps, 10, 1, 0, 2000, 1000);
    stan_pset_add(&f.ps, 11, 1, 0, 1500, 500);
    stan_pset_all_due(&f.ps);
    due_order(&f.ps, f.store, got, sizeof got);
    CHECK_EQ_STR(got, "11,10,8");
    /* Redelivered one by one with a longer wait (the backoff's next entry): still in their
     * order, though the first lane empties on the way and takes that wait. */
    stan_pset_free(&f.ps);
    stan_pset_init(&f.ps, 7);
    for (uint64_t s = 21; s <= 23; s++)
        stan_pset_add(&f.ps, s, 1, 0, 4000, 3000);
    for (int i = 0; i < 3; i++)
        stan_pset_schedule(&f.ps, stan_pset_first_due(&f.ps), 14000, 10000);
    stan_pset_add(&f.ps, 24, 1, 0, 14000, 10000);
    due_order(&f.ps, f.store, got, sizeof got);
    CHECK_EQ_STR(got, "21,22,23,24");
    fx_close(&f);
}

/* The work, not the time: with waits that alternate (a backoff), scheduling and rescheduling
 * every entry steps past none (a single list sorted by insertion stepped past every entry due
 * later: O(n) each, O(n^2) in all). Past its lanes (more waits than a backoff has), the set still
 * keeps the order. */
static void test_lanes_work(void)
{
    fx_t f;
    fx_open(&f);
    enum { N = 20000 };
    static const uint64_t waits[] = {30000, 1000, 2000, 4000};
    static uint64_t when[N + 1]; /* each entry's last scheduling, in schedulings */
    uint64_t now = 1, n = 0;
    for (uint64_t s = 1; s <= N; s++, now++) {
        stan_pset_add(&f.ps, s, 1, 0, now + waits[s % 2], waits[s % 2]);
        when[s] = n++;
    }
    /* Redeliver every one as it falls due, with the next wait of its own. */
    uint64_t last = 0, last_when = 0;
    for (int i = 0; i < N; i++) {
        stan_pending_t *p = stan_pset_first_due(&f.ps);
        /* By expiry, ties in scheduling order. */
        CHECK(p->expire_ms > last || (p->expire_ms == last && when[p->seq] > last_when));
        last = p->expire_ms;
        last_when = when[p->seq];
        if (p->expire_ms > now) now = p->expire_ms; /* the clock is monotonic */
        p->count++;
        uint64_t w = waits[(p->seq + p->count) % 4];
        stan_pset_schedule(&f.ps, p, now + w, w);
        when[p->seq] = n++;
    }
    CHECK_EQ_INT(f.ps.steps, 0);
    /* 40 distinct waits: more than the lanes; due in order all the same. */
    stan_pset_free(&f.ps);
    stan_pset_init(&f.ps, 7);
    for (uint64_t s = 1; s <= 400; s++)
        stan_pset_add(&f.ps, s, 1, 0, s + 1000 * (s % 40), 1000 * (s % 40));
    CHECK(f.ps.steps > 0);
    last = 0;
    stan_pending_t *p;
    while ((p = stan_pset_first_due(&f.ps))) {
        CHECK(p->expire_ms >= last);
        last = p->expire_ms;
        stan_pset_drop(&f.ps, f.store, p);
    }
    fx_close(&f);
}

int main(void)
{
    TEST_RUN(test_orders);
    TEST_RUN(test_rows);
    TEST_RUN(test_transfer);
    TEST_RUN(test_lanes);
    TEST_RUN(test_lanes_work);
    return test_summary();
}
