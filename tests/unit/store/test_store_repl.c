/* Unit tests for the store's replication side (store_repl.c): a batch proposed as a log entry
 * completes only once the entry comes back through store_apply and is in LMDB; the entries a
 * leader proposes rebuild the same data in a follower's store; entries queued behind an apply in
 * flight are applied together, in order; an entry at or below the applied index is skipped (a
 * replayed tail), across a reopen too; a refused proposal, a failed one, an undecodable entry,
 * and an apply that fails on a full disk and is retried. */
#include "store_fixture.h"

/* A log that records what it is given: entries[i] holds index i + 1. */
typedef struct {
    unsigned char *data[16];
    size_t len[16];
    size_t n;
    bool refuse;
    uint64_t applied; /* last index the store reported applied */
    int applied_calls;
} fake_log_t;

static int fake_propose(void *arg, void *data, size_t len, uint64_t *index)
{
    fake_log_t *l = arg;
    if (l->refuse || l->n == 16) return -1;
    l->data[l->n] = data;
    l->len[l->n] = len;
    *index = ++l->n;
    return 0;
}

static void fake_applied(void *arg, uint64_t index)
{
    fake_log_t *l = arg;
    l->applied = index;
    l->applied_calls++;
}

static void fake_free(fake_log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->data[i]);
}

static void attach(store_t *s, fake_log_t *l)
{
    store_log_t log = {.propose = fake_propose, .applied = fake_applied, .arg = l};
    CHECK_EQ_INT(store_set_log(s, &log), STZ_OK);
}

static void apply_entry(store_t *s, fake_log_t *l, uint64_t index)
{
    CHECK_EQ_INT(store_apply(s, l->data[index - 1], l->len[index - 1], index), STZ_OK);
}

static void run_until_applied(fx_t *f, uint64_t index)
{
    while (store_applied_index(f->s) < index)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_propose_completes_on_apply(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    fake_log_t l = {0};
    attach(f.s, &l);
    CHECK_EQ_INT(store_applied_index(f.s), 0);
    put_str(f.s, STORE_DB_CHANNELS, "foo", "bar");
    store_append(f.s, STORE_DB_MSGS, "m1", 2, "one", 3);
    done_t d = {0};
    CHECK_EQ_INT(store_submit(f.s, on_done, &d), STZ_OK);
    CHECK(store_in_flight(f.s));
    CHECK_EQ_INT(l.n, 1);
    /* Proposed, not committed: nothing in LMDB, done not run, a second submit waits. */
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(d.calls, 0);
    CHECK(get_str(f.s, STORE_DB_CHANNELS, "foo") == NULL);
    CHECK_EQ_INT(store_submit(f.s, on_done, &d), STZ_EBUSY);
    apply_entry(f.s, &l, 1);
    CHECK(!store_apply_idle(f.s));
    while (!d.calls)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK_EQ_INT(d.status, STZ_OK);
    CHECK(!store_in_flight(f.s));
    CHECK(store_apply_idle(f.s));
    CHECK_EQ_STR(get_str(f.s, STORE_DB_CHANNELS, "foo"), "bar");
    CHECK_EQ_STR(get_str(f.s, STORE_DB_MSGS, "m1"), "one");
    CHECK_EQ_INT(store_applied_index(f.s), 1);
    CHECK_EQ_INT(l.applied, 1);
    fake_free(&l);
    fx_done(&f);
}

/* A follower's store, fed the leader's entries, ends with the same data; entries queued behind
 * an apply in flight go together; a replayed entry changes nothing, also after a reopen. */
static void test_follower_and_replay(void)
{
    fx_t lead, fol;
    fx_init(&lead, false, 0);
    fx_init(&fol, false, 0);
    fake_log_t l = {0}, lf = {0};
    attach(lead.s, &l);
    attach(fol.s, &lf);
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        put_str(lead.s, STORE_DB_SUBS, k, i == 2 ? "last" : "v");
        if (i == 2) store_del(lead.s, STORE_DB_SUBS, "k0", 2);
        done_t d = {0};
        CHECK_EQ_INT(store_submit(lead.s, on_done, &d), STZ_OK);
        apply_entry(lead.s, &l, l.n);
        while (!d.calls)
            uv_run(&lead.loop, UV_RUN_ONCE);
        CHECK_EQ_INT(d.status, STZ_OK);
    }
    for (uint64_t i = 1; i <= 3; i++)
        CHECK_EQ_INT(store_apply(fol.s, l.data[i - 1], l.len[i - 1], i), STZ_OK);
    run_until_applied(&fol, 3);
    CHECK(get_str(fol.s, STORE_DB_SUBS, "k0") == NULL);
    CHECK_EQ_STR(get_str(fol.s, STORE_DB_SUBS, "k1"), "v");
    CHECK_EQ_STR(get_str(fol.s, STORE_DB_SUBS, "k2"), "last");
    /* Entries 2 and 3 queued behind entry 1's apply: at most two transactions. */
    CHECK(lf.applied_calls <= 2);
    store_stats_t st;
    store_get_stats(fol.s, &st);
    CHECK(st.commits <= 2);
    /* Replaying entry 1 (which put k0) must not bring k0 back. */
    CHECK_EQ_INT(store_apply(fol.s, l.data[0], l.len[0], 1), STZ_OK);
    CHECK(store_apply_idle(fol.s));
    CHECK(get_str(fol.s, STORE_DB_SUBS, "k0") == NULL);
    /* The applied index is in LMDB: a reopened store still skips the replayed tail. */
    store_close(fol.s);
    fol.s = open_at(&fol, fol.dir, false, 0);
    fake_log_t lf2 = {0};
    attach(fol.s, &lf2);
    CHECK_EQ_INT(store_applied_index(fol.s), 3);
    for (uint64_t i = 1; i <= 3; i++)
        CHECK_EQ_INT(store_apply(fol.s, l.data[i - 1], l.len[i - 1], i), STZ_OK);
    CHECK(store_apply_idle(fol.s));
    CHECK(get_str(fol.s, STORE_DB_SUBS, "k0") == NULL);
    CHECK_EQ_INT(lf2.applied_calls, 0);
    fake_free(&l);
    fx_done(&lead);
    fx_done(&fol);
}

static void test_refused_failed_and_bad_entries(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    fake_log_t l = {0};
    attach(f.s, &l);
    /* Refused: STZ_ENOTLEADER at once, the batch dropped, nothing in flight. */
    l.refuse = true;
    put_str(f.s, STORE_DB_CLIENTS, "c1", "x");
    done_t d = {0};
    CHECK_EQ_INT(store_submit(f.s, on_done, &d), STZ_ENOTLEADER);
    CHECK(!store_in_flight(f.s));
    CHECK(store_batch_empty(f.s));
    l.refuse = false;
    /* Given up by the log: the proposal fails; a later index does not match it. */
    put_str(f.s, STORE_DB_CLIENTS, "c2", "y");
    CHECK_EQ_INT(store_submit(f.s, on_done, &d), STZ_OK);
    store_log_failed(f.s, 7);
    CHECK(store_in_flight(f.s));
    store_log_failed(f.s, 1);
    CHECK_EQ_INT(d.calls, 1);
    CHECK_EQ_INT(d.status, STZ_ENOTLEADER);
    CHECK(!store_in_flight(f.s));
    /* ... but if it commits after all (another leader), it is applied like any entry. */
    apply_entry(f.s, &l, 1);
    run_until_applied(&f, 1);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_CLIENTS, "c2"), "y");
    CHECK_EQ_INT(d.calls, 1);
    /* Entries that are not ours: refused, nothing applied. Each is 16 bytes: an 8-byte header
     * (version, 3 zero bytes, the ops' length) and one op "put db 0 k=v" padded with zeros. */
    unsigned char good[16] = {1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 1, 1, 'k', 'v'};
    unsigned char e[16];
    struct {
        int at;
        unsigned char v;
    } breaks[] = {
        {0, 9},          /* unknown version */
        {1, 1},          /* reserved header byte */
        {4, 9},          /* ops longer than the entry */
        {4, 1},          /* ops end before the op does */
        {14, 1},         /* padding not zero */
        {9, STORE_NDBS}, /* no such db */
        {8, 7},          /* no such op */
        {10, 0},         /* empty key in a put */
        {11, 0x80},      /* value length's varint runs past the ops */
    };
    for (size_t i = 0; i < sizeof breaks / sizeof *breaks; i++) {
        memcpy(e, good, sizeof e);
        e[breaks[i].at] = breaks[i].v;
        CHECK_EQ_INT(store_apply(f.s, e, sizeof e, 2), STZ_EINVAL);
    }
    CHECK_EQ_INT(store_apply(f.s, good, 12, 2), STZ_EINVAL); /* not a multiple of 8 */
    CHECK_EQ_INT(store_apply(f.s, good, 0, 2), STZ_EINVAL);
    CHECK_EQ_INT(store_applied_index(f.s), 1);
    /* The good one goes in; an entry with no op (an empty batch) moves the applied index. */
    CHECK_EQ_INT(store_apply(f.s, good, sizeof good, 2), STZ_OK);
    run_until_applied(&f, 2);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_META, "k"), "v");
    unsigned char none[8] = {1};
    CHECK_EQ_INT(store_apply(f.s, none, sizeof none, 3), STZ_OK);
    run_until_applied(&f, 3);
    /* libraft finds entries sent back to back by their lengths rounded up to 8. */
    for (size_t i = 0; i < l.n; i++)
        CHECK_EQ_INT(l.len[i] % 8, 0);
    fake_free(&l);
    fx_done(&f);
}

/* A full disk fails the apply; the entries stay queued and go in on the retry. */
static void test_apply_retried_after_failure(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    fake_log_t l = {0};
    attach(f.s, &l);
    put_str(f.s, STORE_DB_DEAD, "d", "1");
    done_t d = {0};
    CHECK_EQ_INT(store_submit(f.s, on_done, &d), STZ_OK);
    store_inject_enospc(f.s, 1);
    apply_entry(f.s, &l, 1);
    uint64_t t0 = uv_now(&f.loop);
    while (!d.calls)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK_EQ_INT(d.status, STZ_OK);
    CHECK(uv_now(&f.loop) - t0 >= 900); /* the retry waited */
    store_stats_t st;
    store_get_stats(f.s, &st);
    CHECK_EQ_INT(st.failures, 1);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_DEAD, "d"), "1");
    fake_free(&l);
    fx_done(&f);
}

/* A snapshot of one store installed in another: same data, same applied index; installing it
 * again changes nothing; something else is refused. */
static void test_snapshot_and_restore(void)
{
    fx_t a, b;
    fx_init(&a, false, 0);
    fx_init(&b, false, 0);
    fake_log_t la = {0}, lb = {0};
    attach(a.s, &la);
    attach(b.s, &lb);
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof k, "c%d", i);
        put_str(a.s, STORE_DB_CLIENTS, k, "here");
        done_t d = {0};
        CHECK_EQ_INT(store_submit(a.s, on_done, &d), STZ_OK);
        apply_entry(a.s, &la, la.n);
        while (!d.calls)
            uv_run(&a.loop, UV_RUN_ONCE);
    }
    void *snap;
    size_t len;
    CHECK_EQ_INT(store_snapshot(a.s, 3, malloc, &snap, &len), STZ_OK);
    CHECK(len > 16);
    bool replaced = false;
    /* The right header on something else: refused, and b's store stays as it was. */
    unsigned char *junk = calloc(1, 16 + 8192);
    memcpy(junk, snap, 16);
    memset(junk + 16, 0x5a, 8192);
    CHECK_EQ_INT(store_restore(b.s, junk, 16 + 8192, &replaced), STZ_EINVAL);
    CHECK(!replaced);
    free(junk);
    CHECK(get_str(b.s, STORE_DB_CLIENTS, "c2") == NULL);
    CHECK_EQ_INT(store_applied_index(b.s), 0);
    CHECK_EQ_INT(store_restore(b.s, snap, len, &replaced), STZ_OK);
    CHECK(replaced);
    CHECK_EQ_INT(store_applied_index(b.s), 3);
    CHECK_EQ_STR(get_str(b.s, STORE_DB_CLIENTS, "c2"), "here");
    /* The log's tail after the snapshot applies on top; what it covered is skipped. */
    CHECK_EQ_INT(store_apply(b.s, la.data[2], la.len[2], 3), STZ_OK);
    CHECK(store_apply_idle(b.s));
    CHECK_EQ_INT(store_restore(b.s, snap, len, &replaced), STZ_OK);
    CHECK(!replaced);
    ((unsigned char *)snap)[0] ^= 0xff;
    CHECK_EQ_INT(store_restore(b.s, snap, len, &replaced), STZ_EINVAL);
    free(snap);
    fake_free(&la);
    fx_done(&a);
    fx_done(&b);
}

static store_t *open_durable(fx_t *f, const char *boot)
{
    setenv("STANZA_TEST_BOOT_ID", boot, 1);
    store_options_t opt = {.dir = f->dir, .sync = true, .log_is_durable = true};
    char err[512] = "";
    store_t *s = NULL;
    CHECK_EQ_INT(store_open(&s, &f->loop, &opt, err, sizeof err), STZ_OK);
    return s;
}

static void write_state(fx_t *f, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stanza.state", f->dir);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    fputs(text, fp);
    fclose(fp);
}

/* A store whose log is the durable copy keeps its data across a clean close and a process
 * crash in the same boot, and drops it after a crash in an earlier boot. */
static void test_unsynced_store_and_machine_crash(void)
{
    fx_t f;
    fx_init(&f, false, 0);
    store_close(f.s);
    f.s = open_durable(&f, "boot-1");
    fake_log_t l = {0};
    attach(f.s, &l);
    put_str(f.s, STORE_DB_SUBS, "s1", "kept");
    done_t d = {0};
    CHECK_EQ_INT(store_submit(f.s, on_done, &d), STZ_OK);
    apply_entry(f.s, &l, 1);
    while (!d.calls)
        uv_run(&f.loop, UV_RUN_ONCE);
    store_close(f.s);
    /* Closed cleanly: a new boot keeps it. */
    f.s = open_durable(&f, "boot-2");
    CHECK_EQ_STR(get_str(f.s, STORE_DB_SUBS, "s1"), "kept");
    store_close(f.s);
    /* Killed in this boot (not closed): the page cache had it all. */
    write_state(&f, "boot-2 dirty\n");
    f.s = open_durable(&f, "boot-2");
    CHECK_EQ_STR(get_str(f.s, STORE_DB_SUBS, "s1"), "kept");
    store_close(f.s);
    /* Killed in an earlier boot: dropped; the log fills it again. */
    write_state(&f, "boot-2 dirty\n");
    f.s = open_durable(&f, "boot-3");
    CHECK(get_str(f.s, STORE_DB_SUBS, "s1") == NULL);
    fake_log_t l2 = {0};
    attach(f.s, &l2);
    CHECK_EQ_INT(store_applied_index(f.s), 0);
    apply_entry(f.s, &l, 1);
    run_until_applied(&f, 1);
    CHECK_EQ_STR(get_str(f.s, STORE_DB_SUBS, "s1"), "kept");
    unsetenv("STANZA_TEST_BOOT_ID");
    fake_free(&l);
    fx_done(&f);
}

int main(void)
{
    TEST_RUN(test_propose_completes_on_apply);
    TEST_RUN(test_follower_and_replay);
    TEST_RUN(test_refused_failed_and_bad_entries);
    TEST_RUN(test_apply_retried_after_failure);
    TEST_RUN(test_snapshot_and_restore);
    TEST_RUN(test_unsynced_store_and_machine_crash);
    return test_summary();
}
