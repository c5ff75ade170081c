/* A failed batch never leaves memory claiming what the disk does not hold, for the deletions the
 * engine applies to memory at once (an ack, an unsubscribe, a client's close or replacement, an
 * idle channel's removal): they are redo deletes (store_del_redo), replayed in front of the next
 * batch until one commits. Each test makes the batch with the deletion fail (a full disk), lets
 * the engine go on, and restarts: the disk must say what memory said. */
#include "engine_fixture.h"
#include "stan_ctx.h" /* the engine's store, to make its next commit fail */
#include "test.h"

static store_stats_t stats(ef_t *f)
{
    store_stats_t ss;
    store_get_stats(f->st->store, &ss);
    return ss;
}

/* The next batch fails (as a full disk fails it). Returns the store's counts before. */
static store_stats_t fail_next_batch(ef_t *f)
{
    store_inject_enospc(f->st->store, 1);
    return stats(f);
}

/* Since before: the batch that was to fail did fail, and the engine committed one since (the
 * deletion is replayed by that one, or by the restart's last). */
static void check_failed_then_recovered(ef_t *f, const store_stats_t *before)
{
    store_stats_t now = stats(f);
    CHECK_EQ_INT(now.failures, before->failures + 1);
    CHECK(now.commits > before->commits);
}

/* A started engine (max_inactivity as given, 0: none), client c1 and its subscription to
 * "jobs". */
static ef_sub_t *start(ef_t *f, int64_t max_inactivity_ms)
{
    ef_init(f);
    f->cfg.limits.max_inactivity_ms = max_inactivity_ms;
    ef_start(f);
    CHECK_EQ_STR(ef_connect(f, "c1"), "");
    ef_sub_t *s = ef_subscribe(f, "c1", "jobs", NULL);
    CHECK(s != NULL);
    return s;
}

/* An ack in a failed batch: memory forgot the message, so after a restart it is not redelivered
 * (an unacked one is). */
static void test_ack_not_redelivered(void)
{
    ef_t f;
    ef_sub_t *s = start(&f, 0);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "one"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "two"), "");
    ef_wait_msgs(s->inbox, 2);
    ef_settle(&f); /* both unacked rows are on disk */
    store_stats_t before = fail_next_batch(&f);
    ef_ack(&f, s, 1);
    ef_settle(&f);
    check_failed_then_recovered(&f, &before);
    CHECK_EQ_INT(ef_sub_info(&f, s).inflight_msgs, 1);

    ef_restart(&f);
    CHECK_EQ_INT(ef_sub_info(&f, s).inflight_msgs, 1);
    const ef_msg_t *m = ef_wait_msgs(s->inbox, 3);
    CHECK_EQ_INT(m->seq, 2);
    CHECK(m->redelivered);
    ef_settle(&f);
    CHECK_EQ_INT(ef_count_seq(s, 1), 1);
    CHECK_EQ_INT(s->inbox->n, 3);
    ef_done(&f);
}

/* An unsubscribe in a failed batch: the subscription (record and unacked rows) does not come
 * back after a restart. Its durable twin's close keeps it, as a close does. */
static void test_unsubscribe_not_resurrected(void)
{
    ef_t f;
    ef_sub_t *s = start(&f, 0);
    ef_sub_opts_t o = {.durable = "d"};
    ef_sub_t *d = ef_subscribe(&f, "c1", "jobs", &o);
    CHECK(d != NULL);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "one"), "");
    ef_wait_msgs(s->inbox, 1);
    ef_wait_msgs(d->inbox, 1);
    ef_settle(&f);
    store_stats_t before = fail_next_batch(&f);
    /* The answer is the failed batch's: a store error, though memory has let it go. */
    CHECK_EQ_STR(ef_unsubscribe(&f, s, false), "stan: store error");
    ef_settle(&f);
    check_failed_then_recovered(&f, &before);
    CHECK(!ef_sub_listed(&f, "jobs", s->inbox->subject));

    ef_restart(&f);
    CHECK(!ef_sub_listed(&f, "jobs", s->inbox->subject));
    CHECK(ef_sub_listed(&f, "jobs", d->inbox->subject));
    CHECK_EQ_INT(ef_channel(&f, "jobs").subs, 1);
    /* Its unacked message is not delivered again either. */
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 1);
    ef_done(&f);
}

/* A close in a failed batch: the client is gone after a restart; one that connects with the
 * same ID after the failure is there. */
static void test_closed_client_gone(void)
{
    ef_t f;
    ef_sub_t *s = start(&f, 0);
    CHECK_EQ_STR(ef_connect(&f, "c2"), "");
    ef_settle(&f);
    store_stats_t before = fail_next_batch(&f);
    CHECK_EQ_STR(ef_close(&f, "c1"), "stan: store error");
    ef_settle(&f);
    check_failed_then_recovered(&f, &before);
    CHECK(!ef_client_exists(&f, "c1"));
    (void)fail_next_batch(&f);
    CHECK_EQ_STR(ef_close(&f, "c2"), "stan: store error");
    CHECK_EQ_STR(ef_connect(&f, "c2"), ""); /* the same ID again, in a later batch */
    ef_settle(&f);

    ef_restart(&f);
    CHECK(!ef_client_exists(&f, "c1"));
    CHECK(ef_client_exists(&f, "c2"));
    CHECK(!ef_sub_listed(&f, "jobs", s->inbox->subject)); /* c1's subscription went with it */
    ef_done(&f);
}

/* A connection taking over an ID (its old owner has nobody behind its heartbeat inbox) in a
 * failed batch: both are forgotten, so the old record must not be back after a restart. */
static void test_replaced_client_failed(void)
{
    ef_t f;
    start(&f, 0);
    ef_settle(&f);
    store_stats_t before = fail_next_batch(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "stan: store error, connection not registered");
    ef_settle(&f);
    check_failed_then_recovered(&f, &before);
    CHECK(!ef_client_exists(&f, "c1"));
    ef_restart(&f);
    CHECK(!ef_client_exists(&f, "c1"));
    ef_done(&f);
}

/* max_inactivity's removal in a failed batch: the channel (record and messages) is not back
 * after a restart. */
static void test_idle_channel_not_resurrected(void)
{
    ef_t f;
    start(&f, 60 * 1000);
    CHECK_EQ_STR(ef_publish(&f, "c1", "idle", "m"), "");
    ef_settle(&f);
    store_stats_t before = fail_next_batch(&f);
    ef_advance(&f, 61 * EF_SEC);
    CHECK(!ef_channel_exists(&f, "idle"));
    check_failed_then_recovered(&f, &before);

    ef_restart(&f);
    CHECK(!ef_channel_exists(&f, "idle"));
    CHECK_EQ_STR(ef_publish(&f, "c1", "idle", "m"), "");
    CHECK_EQ_INT(ef_channel(&f, "idle").msgs, 1);
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_ack_not_redelivered);
    TEST_RUN(test_unsubscribe_not_resurrected);
    TEST_RUN(test_closed_client_gone);
    TEST_RUN(test_replaced_client_failed);
    TEST_RUN(test_idle_channel_not_resurrected);
    return test_summary();
}
