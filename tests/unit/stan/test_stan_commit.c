/* stan_commit (src/stan/stan_commit.h): the group commit seen from outside: completions in the
 * order registered between the before and after hooks, an empty batch done at once, one batch in
 * flight with the next one collecting, a failed batch's status for all, and a completion that
 * submits the next batch. */
#include <uv.h>

#include "err.h"
#include "stan_commit.h"
#include "test.h"

typedef struct fx {
    uv_loop_t loop;
    store_t *store;
    stan_commit_t c;
    char log[256]; /* what ran, in order */
} fx_t;

static void note(fx_t *f, const char *what, int status)
{
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "%s%s%s", n ? " " : "", what, status ? "!" : "");
}

static void before(void *arg, int status)
{
    note(arg, "before", status);
}
static void after(void *arg, int status)
{
    note(arg, "after", status);
}

typedef struct done {
    fx_t *f;
    const char *name;
} done_t;

static void on_done(void *arg, int status)
{
    done_t *d = arg;
    note(d->f, d->name, status);
}

static void fx_open(fx_t *f)
{
    memset(f, 0, sizeof *f);
    CHECK(uv_loop_init(&f->loop) == 0);
    store_options_t opt = {0}; /* MEMORY */
    char err[256];
    CHECK_EQ_INT(store_open(&f->store, &f->loop, &opt, err, sizeof err), STZ_OK);
    stan_commit_init(&f->c, f->store, before, after, f);
}

static void fx_close(fx_t *f)
{
    stan_commit_free(&f->c);
    store_close(f->store);
    CHECK(uv_loop_close(&f->loop) == 0);
}

static void settle(fx_t *f)
{
    while (stan_commit_in_flight(&f->c))
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void put(fx_t *f, const char *key)
{
    CHECK_EQ_INT(store_put(f->store, STORE_DB_META, key, strlen(key), "v", 1), STZ_OK);
}

static void test_order(void)
{
    fx_t f;
    fx_open(&f);
    done_t a = {&f, "a"}, b = {&f, "b"};
    /* Nothing registered, nothing to write: nothing runs. */
    stan_commit_submit(&f.c);
    CHECK_EQ_STR(f.log, "");
    stan_commit_on(&f.c, on_done, &a);
    stan_commit_on(&f.c, on_done, &b);
    CHECK(stan_commit_waiting(&f.c));
    put(&f, "k1");
    stan_commit_submit(&f.c);
    CHECK(stan_commit_in_flight(&f.c));
    CHECK(!stan_commit_waiting(&f.c));
    CHECK_EQ_STR(f.log, ""); /* never from inside submit when something is written */
    settle(&f);
    CHECK_EQ_STR(f.log, "before a b after");
    fx_close(&f);
}

static void test_empty_batch(void)
{
    fx_t f;
    fx_open(&f);
    done_t a = {&f, "a"};
    /* Waiting on a batch that writes nothing: done at once, with success. */
    stan_commit_on(&f.c, on_done, &a);
    stan_commit_submit(&f.c);
    CHECK(!stan_commit_in_flight(&f.c));
    CHECK_EQ_STR(f.log, "before a after");
    fx_close(&f);
}

static void test_one_in_flight(void)
{
    fx_t f;
    fx_open(&f);
    done_t a = {&f, "a"}, b = {&f, "b"};
    stan_commit_on(&f.c, on_done, &a);
    put(&f, "k1");
    stan_commit_submit(&f.c);
    /* Registered while a batch is in flight: belongs to the next one, which a submit now
     * leaves alone. */
    stan_commit_on(&f.c, on_done, &b);
    put(&f, "k2");
    stan_commit_submit(&f.c);
    settle(&f);
    CHECK_EQ_STR(f.log, "before a after");
    CHECK(stan_commit_waiting(&f.c));
    stan_commit_submit(&f.c);
    settle(&f);
    CHECK_EQ_STR(f.log, "before a after before b after");
    fx_close(&f);
}

static void test_failure(void)
{
    fx_t f;
    fx_open(&f);
    done_t a = {&f, "a"}, dropped = {&f, "dropped"};
    /* Completions never submitted are dropped by stan_commit_free, never run. */
    stan_commit_on(&f.c, on_done, &dropped);
    stan_commit_free(&f.c);
    stan_commit_init(&f.c, f.store, before, after, &f);
    stan_commit_on(&f.c, on_done, &a);
    put(&f, "k1");
    store_inject_enospc(f.store, 1);
    stan_commit_submit(&f.c);
    settle(&f);
    /* Every completion (and the hooks) sees the failure. */
    CHECK_EQ_STR(f.log, "before! a! after!");
    fx_close(&f);
}

static int fake_propose(void *arg, void *data, size_t len, uint64_t *index)
{
    (void)arg;
    (void)len;
    free(data); /* the log owns the entry */
    *index = 1;
    return 0;
}

/* Clustered, the node lost the lead: its proposal is dropped (the store will never finish that
 * batch), and stan_commit_fail_all runs the in-flight batch's completions, then the next one's,
 * with the status; without it they would never run, and what their owners hold would leak. */
static void test_fail_all(void)
{
    fx_t f;
    fx_open(&f);
    store_log_t log = {.propose = fake_propose};
    CHECK_EQ_INT(store_set_log(f.store, &log), STZ_OK);
    done_t a = {&f, "a"}, b = {&f, "b"};
    stan_commit_on(&f.c, on_done, &a);
    put(&f, "k1");
    stan_commit_submit(&f.c);
    CHECK(stan_commit_in_flight(&f.c));
    stan_commit_on(&f.c, on_done, &b);
    put(&f, "k2");
    store_drop_proposal(f.store);
    stan_commit_fail_all(&f.c, STZ_ENOTLEADER);
    CHECK_EQ_STR(f.log, "before! a! after! before! b! after!");
    store_batch_discard(f.store);
    fx_close(&f);
}

/* A completion that fills and submits the next batch (as the engine may). */
typedef struct chain {
    fx_t *f;
    done_t next;
} chain_t;

static void on_chain(void *arg, int status)
{
    chain_t *ch = arg;
    note(ch->f, "first", status);
    stan_commit_on(&ch->f->c, on_done, &ch->next);
    put(ch->f, "k2");
    stan_commit_submit(&ch->f->c);
}

static void test_submit_from_completion(void)
{
    fx_t f;
    fx_open(&f);
    chain_t ch = {&f, {&f, "second"}};
    stan_commit_on(&f.c, on_chain, &ch);
    put(&f, "k1");
    stan_commit_submit(&f.c);
    settle(&f);
    CHECK_EQ_STR(f.log, "before first after before second after");
    fx_close(&f);
}

int main(void)
{
    TEST_RUN(test_order);
    TEST_RUN(test_empty_batch);
    TEST_RUN(test_one_in_flight);
    TEST_RUN(test_failure);
    TEST_RUN(test_submit_from_completion);
    TEST_RUN(test_fail_all);
    return test_summary();
}
