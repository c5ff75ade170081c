/* Redelivery backoff, in-process with the fake clock: the wait before the n-th redelivery of an
 * unacked message is the larger of AckWait and the channel's n-th backoff entry (the last one
 * repeating); messages due at different times go out in expiry order; a channel without a
 * backoff keeps plain AckWait timing. */
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"
#include "protocol.pb-c.h"
#include "test.h"

#define MS INT64_C(1000000)

/* Backoff list for channels matching pattern (a store_limits.channels entry). */
static void set_backoff(ef_t *f, const char *pattern, const int64_t *ms, int n)
{
    config_limits_t *l = ef_channel_limits(f, pattern);
    l->backoff_set = true;
    l->nbackoff = n;
    for (int i = 0; i < n; i++)
        l->backoff_ms[i] = ms[i];
}

/* A started engine with client c1 and backoff [3s, 10s] on "jobs". */
static void start(ef_t *f)
{
    static const int64_t backoff[] = {3000, 10000};
    ef_init(f);
    set_backoff(f, "jobs", backoff, 2);
    ef_start(f);
    CHECK_EQ_STR(ef_connect(f, "c1"), "");
}

static ef_sub_t *subscribe(ef_t *f, const char *channel)
{
    ef_sub_opts_t o = {.ack_wait_s = 1, .start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(f, "c1", channel, &o);
    CHECK(s != NULL);
    return s;
}

/* Checks that the i-th delivery is seq's count-th redelivery. */
static void check_redelivery(const ef_sub_t *s, size_t i, uint64_t seq, uint32_t count)
{
    CHECK(ef_msg(s, i) != NULL);
    CHECK_EQ_INT(ef_msg(s, i)->seq, seq);
    CHECK(ef_msg(s, i)->redelivered);
    CHECK_EQ_INT(ef_msg(s, i)->redelivery_count, count);
}

/* AckWait 1 s, backoff [3s, 10s]: first redelivery at 3 s (not at 1 s or 2 s), then every 10 s. */
static void test_backoff_timing(void)
{
    ef_t f;
    start(&f);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "x"), "");
    ef_sub_t *s = subscribe(&f, "jobs");
    ef_wait_msgs(s->inbox, 1);
    ef_advance(&f, 1000 * MS + MS);
    CHECK_EQ_INT(s->inbox->n, 1);
    ef_advance(&f, 1000 * MS);
    CHECK_EQ_INT(s->inbox->n, 1);
    ef_advance(&f, 1000 * MS); /* 3.002 s */
    CHECK_EQ_INT(s->inbox->n, 2);
    check_redelivery(s, 1, 1, 1);
    for (uint32_t n = 2; n <= 4; n++) {
        ef_advance(&f, 9 * EF_SEC);
        CHECK_EQ_INT(s->inbox->n, n);
        ef_advance(&f, 1 * EF_SEC + MS);
        CHECK_EQ_INT(s->inbox->n, n + 1);
        check_redelivery(s, n, 1, n);
    }
    CHECK_EQ_INT(ef_sub_info(&f, s).redelivered_total, 4);
    ef_done(&f);
}

/* Backoff [500ms] with AckWait 1 s: the AckWait, being longer, wins. */
static void test_ack_wait_wins(void)
{
    static const int64_t backoff[] = {500};
    ef_t f;
    ef_init(&f);
    set_backoff(&f, "jobs", backoff, 1);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "x"), "");
    ef_sub_t *s = subscribe(&f, "jobs");
    ef_wait_msgs(s->inbox, 1);
    for (uint32_t n = 1; n <= 3; n++) {
        ef_advance(&f, 999 * MS);
        CHECK_EQ_INT(s->inbox->n, n);
        ef_advance(&f, 2 * MS);
        CHECK_EQ_INT(s->inbox->n, n + 1);
        check_redelivery(s, n, 1, n);
    }
    ef_done(&f);
}

/* Several messages keep their order; one delivered later but due earlier (its first backoff
 * entry is shorter than the others' second) is redelivered first. */
static void test_order(void)
{
    ef_t f;
    start(&f);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "x"), "");
    ef_sub_t *s = subscribe(&f, "jobs");
    ef_wait_msgs(s->inbox, 3);
    ef_advance(&f, 3000 * MS + MS); /* 1, 2, 3 again, next due at 13 s */
    CHECK_EQ_INT(s->inbox->n, 6);
    for (size_t i = 0; i < 3; i++)
        check_redelivery(s, 3 + i, i + 1, 1);
    ef_advance(&f, 500 * MS);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "y"), ""); /* 4 at 3.5 s, due at 6.5 s */
    ef_wait_msgs(s->inbox, 7);
    ef_advance(&f, 3000 * MS + MS);
    CHECK_EQ_INT(s->inbox->n, 8);
    check_redelivery(s, 7, 4, 1);
    ef_advance(&f, 6500 * MS); /* 13.002 s: 1, 2, 3 in order; 4 waits until 16.5 s */
    CHECK_EQ_INT(s->inbox->n, 11);
    for (size_t i = 0; i < 3; i++)
        check_redelivery(s, 8 + i, i + 1, 2);
    ef_advance(&f, 3000 * MS);
    CHECK_EQ_INT(s->inbox->n, 11);
    ef_advance(&f, 500 * MS + MS);
    CHECK_EQ_INT(s->inbox->n, 12);
    check_redelivery(s, 11, 4, 2);
    ef_done(&f);
}

/* A channel the backoff does not match: redelivered every AckWait, as without the feature. */
static void test_no_backoff(void)
{
    ef_t f;
    start(&f);
    CHECK_EQ_STR(ef_publish(&f, "c1", "plain", "x"), "");
    ef_sub_t *s = subscribe(&f, "plain");
    ef_wait_msgs(s->inbox, 1);
    for (uint32_t n = 1; n <= 3; n++) {
        ef_advance(&f, 999 * MS);
        CHECK_EQ_INT(s->inbox->n, n);
        ef_advance(&f, 2 * MS);
        CHECK_EQ_INT(s->inbox->n, n + 1);
        check_redelivery(s, n, 1, n);
    }
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_backoff_timing);
    TEST_RUN(test_ack_wait_wins);
    TEST_RUN(test_order);
    TEST_RUN(test_no_backoff);
    return test_summary();
}
