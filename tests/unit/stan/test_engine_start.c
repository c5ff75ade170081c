/* Start positions, in-process: new only, last received, a time delta (timestamps from the fake
 * clock), a sequence (also below the first and beyond the last), and first/all; each checked
 * by what the subscription receives and where the engine says it stands (last_sent). */
#include <string.h>

#include "engine_fixture.h"
#include "protocol.pb-c.h"
#include "test.h"

/* "m1".."m5" on foo, 10 s of fake time apart: m<i> is stored at T + 10*(i-1) s. */
static void setup(ef_t *f, int64_t *t0)
{
    ef_init(f);
    ef_start(f);
    CHECK_EQ_STR(ef_connect(f, "c1"), "");
    for (int i = 1; i <= 5; i++) {
        char data[8];
        snprintf(data, sizeof data, "m%d", i);
        if (i > 1) ef_advance(f, 10 * EF_SEC);
        CHECK_EQ_STR(ef_publish(f, "c1", "foo", data), "");
    }
    *t0 = EF_EPOCH_NS + EF_SEC; /* where ef_init left the fake clock */
}

/* Subscribes at the position, expects deliveries first..5 and last_sent 5 afterwards. */
static ef_sub_t *expect_from(ef_t *f, const ef_sub_opts_t *o, uint64_t first)
{
    ef_sub_t *s = ef_subscribe(f, "c1", "foo", o);
    CHECK(s != NULL);
    size_t n = first <= 5 ? 5 - first + 1 : 0;
    if (n) ef_wait_msgs(s->inbox, n);
    ef_settle(f);
    CHECK_EQ_INT(s->inbox->n, n);
    for (size_t i = 0; i < n; i++) {
        const ef_msg_t *m = ef_msg(s, i);
        char want[8];
        snprintf(want, sizeof want, "m%llu", (unsigned long long)(first + i));
        CHECK_EQ_INT(m->seq, first + i);
        CHECK_EQ_STR(m->payload, want);
    }
    CHECK_EQ_INT(ef_sub_info(f, s).last_sent, 5);
    return s;
}

static void test_new_only(void)
{
    ef_t f;
    int64_t t0;
    setup(&f, &t0);
    ef_sub_t *s = expect_from(&f, &(ef_sub_opts_t){.start = PB__START_POSITION__NewOnly}, 6);
    /* Only what is published afterwards. */
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "m6"), "");
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 1)->seq, 6);
    CHECK_EQ_STR(ef_msg(s, 0)->payload, "m6");
    ef_done(&f);
}

static void test_last_received(void)
{
    ef_t f;
    int64_t t0;
    setup(&f, &t0);
    expect_from(&f, &(ef_sub_opts_t){.start = PB__START_POSITION__LastReceived}, 5);
    ef_done(&f);
}

/* A subscription starting delta_s seconds back gets first..5. */
static void expect_delta(ef_t *f, int64_t delta_s, uint64_t first)
{
    ef_sub_opts_t o = {.start = PB__START_POSITION__TimeDeltaStart,
                       .start_delta_ns = delta_s * EF_SEC};
    expect_from(f, &o, first);
}

static void test_time_delta(void)
{
    ef_t f;
    int64_t t0;
    setup(&f, &t0);
    /* Now is T+40 s. The timestamps are the fake clock's: m<i> at T + 10*(i-1) s exactly. */
    ef_sub_t *all = expect_from(&f, &(ef_sub_opts_t){.start = PB__START_POSITION__First}, 1);
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ_INT(ef_msg(all, i)->timestamp, t0 + (int64_t)i * 10 * EF_SEC);
    /* 25 s back is T+15: m3 (T+20) is the first that recent. */
    expect_delta(&f, 25, 3);
    /* Exactly 20 s back is T+20: m3 counts (at or after). */
    expect_delta(&f, 20, 3);
    /* The clock moves on: 25 s back from T+45 is T+20 again; 4 s back (T+41) is past m5. */
    ef_advance(&f, 5 * EF_SEC);
    expect_delta(&f, 25, 3);
    expect_delta(&f, 4, 6);
    /* Further back than the first message: all of them. */
    expect_delta(&f, 3600, 1);
    ef_done(&f);
}

/* A subscription starting at sequence seq gets first..5. */
static ef_sub_t *expect_seq(ef_t *f, uint64_t seq, uint64_t first)
{
    ef_sub_opts_t o = {.start = PB__START_POSITION__SequenceStart, .start_seq = seq};
    return expect_from(f, &o, first);
}

static void test_sequence(void)
{
    ef_t f;
    int64_t t0;
    setup(&f, &t0);
    expect_seq(&f, 2, 2);
    expect_seq(&f, 5, 5);
    /* Below the first: from the first; beyond the last: new only. */
    expect_seq(&f, 0, 1);
    ef_sub_t *s = expect_seq(&f, 100, 6);
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "m6"), "");
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 1)->seq, 6);
    ef_done(&f);
}

static void test_first(void)
{
    ef_t f;
    int64_t t0;
    setup(&f, &t0);
    expect_from(&f, &(ef_sub_opts_t){.start = PB__START_POSITION__First}, 1);
    ef_done(&f);
}

static void test_positions_on_an_empty_channel(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    /* Every position on a channel with nothing stored yet starts with the first message. */
    ef_sub_t *s[5];
    for (int p = 0; p <= PB__START_POSITION__First; p++) {
        ef_sub_opts_t o = {.start = p, .start_seq = 7, .start_delta_ns = EF_SEC};
        s[p] = ef_subscribe(&f, "c1", "empty", &o);
        CHECK(s[p] != NULL);
    }
    CHECK_EQ_STR(ef_publish(&f, "c1", "empty", "first"), "");
    for (int p = 0; p <= PB__START_POSITION__First; p++)
        CHECK_EQ_INT(ef_wait_msgs(s[p]->inbox, 1)->seq, 1);
    ef_settle(&f);
    for (int p = 0; p <= PB__START_POSITION__First; p++)
        CHECK_EQ_INT(s[p]->inbox->n, 1);
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_new_only);
    TEST_RUN(test_last_received);
    TEST_RUN(test_time_delta);
    TEST_RUN(test_sequence);
    TEST_RUN(test_first);
    TEST_RUN(test_positions_on_an_empty_channel);
    return test_summary();
}
