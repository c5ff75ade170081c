/* The engine's pending set, in-process: what a subscription has been delivered and not acked
 * (counts and payload bytes, as stan_foreach_sub reports them), acks removing entries, and the
 * MaxInflight window: delivery stalls when it is full and resumes as acks free it. */
#include <string.h>

#include "engine_fixture.h"
#include "protocol.pb-c.h"
#include "test.h"

/* Payloads of 1..5 bytes, so byte counts tell messages apart. */
static const char *payload[] = {"a", "bb", "ccc", "dddd", "eeeee"};

static void publish_five(ef_t *f, const char *channel)
{
    for (int i = 0; i < 5; i++)
        CHECK_EQ_STR(ef_publish(f, "c1", channel, payload[i]), "");
}

static void test_inflight_counts_and_acks(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    publish_five(&f, "foo");
    ef_sub_opts_t o = {.max_inflight = 10, .start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    ef_wait_msgs(s->inbox, 5);
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 5);
    for (size_t i = 0; i < 5; i++) {
        CHECK_EQ_INT(ef_msg(s, i)->seq, i + 1);
        CHECK_EQ_STR(ef_msg(s, i)->payload, payload[i]);
        CHECK(!ef_msg(s, i)->redelivered);
    }
    stan_sub_info_t si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.last_sent, 5);
    CHECK_EQ_INT(si.inflight_msgs, 5);
    CHECK_EQ_INT(si.inflight_bytes, 15);
    CHECK_EQ_INT(si.backlog_msgs, 0);
    CHECK_EQ_INT(si.backlog_bytes, 0);
    CHECK_EQ_INT(si.pending_msgs, 5);
    CHECK_EQ_INT(si.pending_bytes, 15);
    CHECK(!si.is_stalled);

    /* Each ack removes exactly its message. */
    ef_ack(&f, s, 2);
    si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.inflight_msgs, 4);
    CHECK_EQ_INT(si.inflight_bytes, 13);
    ef_ack(&f, s, 5);
    si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.inflight_msgs, 3);
    CHECK_EQ_INT(si.inflight_bytes, 8);
    /* A second ack of the same message, and an ack of one never sent, change nothing. */
    ef_ack(&f, s, 5);
    ef_ack(&f, s, 99);
    si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.inflight_msgs, 3);
    CHECK_EQ_INT(si.inflight_bytes, 8);
    ef_ack(&f, s, 1);
    ef_ack(&f, s, 3);
    ef_ack(&f, s, 4);
    si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.inflight_msgs, 0);
    CHECK_EQ_INT(si.inflight_bytes, 0);
    CHECK_EQ_INT(si.pending_msgs, 0);

    /* Nothing acked is ever sent again, however much time passes. */
    ef_settle(&f);
    ef_advance(&f, 120 * EF_SEC);
    CHECK_EQ_INT(s->inbox->n, 5);
    ef_done(&f);
}

static void test_max_inflight_stalls_and_resumes(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    publish_five(&f, "foo");
    ef_sub_opts_t o = {.max_inflight = 3, .start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    ef_wait_msgs(s->inbox, 3);
    ef_settle(&f);
    /* The window is full: three delivered, two wait. */
    CHECK_EQ_INT(s->inbox->n, 3);
    stan_sub_info_t si = ef_sub_info(&f, s);
    CHECK(si.is_stalled);
    CHECK_EQ_INT(si.max_inflight, 3);
    CHECK_EQ_INT(si.last_sent, 3);
    CHECK_EQ_INT(si.inflight_msgs, 3);
    CHECK_EQ_INT(si.inflight_bytes, 6);
    CHECK_EQ_INT(si.backlog_msgs, 2);
    CHECK_EQ_INT(si.backlog_bytes, 9);
    CHECK_EQ_INT(si.pending_msgs, 5);
    CHECK_EQ_INT(si.pending_bytes, 15);
    /* A new message does not get through a full window either. */
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "ffffff"), "");
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 3);
    CHECK_EQ_INT(ef_sub_info(&f, s).backlog_msgs, 3);

    /* One ack opens one slot: exactly the next message comes, then it stalls again. */
    ef_ack(&f, s, 2);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 4)->seq, 4);
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 4);
    si = ef_sub_info(&f, s);
    CHECK(si.is_stalled);
    CHECK_EQ_INT(si.inflight_msgs, 3);
    CHECK_EQ_INT(si.inflight_bytes, 1 + 3 + 4);
    CHECK_EQ_INT(si.backlog_msgs, 2);

    /* Acking everything drains the rest in order. */
    ef_ack(&f, s, 1);
    ef_ack(&f, s, 3);
    ef_ack(&f, s, 4);
    ef_wait_msgs(s->inbox, 6);
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 6);
    CHECK_EQ_INT(ef_msg(s, 4)->seq, 5);
    CHECK_EQ_INT(ef_msg(s, 5)->seq, 6);
    CHECK_EQ_STR(ef_msg(s, 5)->payload, "ffffff");
    ef_ack(&f, s, 5);
    ef_ack(&f, s, 6);
    si = ef_sub_info(&f, s);
    CHECK(!si.is_stalled);
    CHECK_EQ_INT(si.pending_msgs, 0);
    CHECK_EQ_INT(si.pending_bytes, 0);
    CHECK_EQ_INT(si.last_sent, 6);
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_inflight_counts_and_acks);
    TEST_RUN(test_max_inflight_stalls_and_resumes);
    return test_summary();
}
