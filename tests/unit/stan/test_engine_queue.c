/* Queue groups and redelivery, in-process: each message goes to one member and the members take
 * turns; AckWait redelivery (the fake clock moves past it, and the redelivery must be out by the
 * time ef_advance returns: no real timer is waited for) goes to the member that holds the
 * message, flagged and counted; a member that leaves (unsubscribes, or whose inbox goes away)
 * hands its unacked messages to another member; a durable resumes where it was. */
#include <string.h>

#include "engine_fixture.h"
#include "protocol.pb-c.h"
#include "test.h"

static void publish_n(ef_t *f, const char *channel, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ_STR(ef_publish(f, "c1", channel, "job"), "");
}

static void test_one_member_per_message_in_turn(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    CHECK_EQ_STR(ef_connect(&f, "c2"), "");
    ef_sub_opts_t o = {.qgroup = "workers"};
    ef_sub_t *a = ef_subscribe(&f, "c1", "jobs", &o);
    ef_sub_t *b = ef_subscribe(&f, "c2", "jobs", &o);
    CHECK(a && b);
    publish_n(&f, "jobs", 6);
    ef_settle(&f);
    /* Every message exactly once, to one member; with equal windows they take turns. */
    CHECK_EQ_INT(a->inbox->n + b->inbox->n, 6);
    for (uint64_t seq = 1; seq <= 6; seq++)
        CHECK_EQ_INT(ef_count_seq(a, seq) + ef_count_seq(b, seq), 1);
    CHECK_EQ_INT(a->inbox->n, 3);
    CHECK_EQ_INT(b->inbox->n, 3);
    /* The group shares one position; each member's in-flight set is its own. */
    stan_sub_info_t ia = ef_sub_info(&f, a), ib = ef_sub_info(&f, b);
    CHECK_EQ_STR(ia.queue_name, "workers");
    CHECK_EQ_INT(ia.last_sent, 6);
    CHECK_EQ_INT(ib.last_sent, 6);
    CHECK_EQ_INT(ia.inflight_msgs, 3);
    CHECK_EQ_INT(ib.inflight_msgs, 3);
    /* The member with room gets the next one: b acks all, a acks none. */
    for (size_t i = 0; i < b->inbox->n; i++)
        ef_ack(&f, b, ef_msg(b, i)->seq);
    publish_n(&f, "jobs", 2);
    ef_settle(&f);
    CHECK_EQ_INT(a->inbox->n, 3);
    CHECK_EQ_INT(b->inbox->n, 5);
    ef_done(&f);
}

static void test_redelivery_after_ack_wait(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_sub_opts_t o = {.ack_wait_s = 5, .start = PB__START_POSITION__First};
    publish_n(&f, "foo", 3);
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    ef_wait_msgs(s->inbox, 3);
    ef_ack(&f, s, 2);
    /* Not before AckWait has passed... */
    ef_advance(&f, 4 * EF_SEC);
    CHECK_EQ_INT(s->inbox->n, 3);
    /* ...then the unacked ones (1 and 3, not 2) again, flagged, in order. */
    ef_advance(&f, 1 * EF_SEC + 1000000);
    CHECK_EQ_INT(s->inbox->n, 5);
    CHECK_EQ_INT(ef_msg(s, 3)->seq, 1);
    CHECK_EQ_INT(ef_msg(s, 4)->seq, 3);
    for (size_t i = 3; i < 5; i++) {
        CHECK(ef_msg(s, i)->redelivered);
        CHECK_EQ_INT(ef_msg(s, i)->redelivery_count, 1);
    }
    stan_sub_info_t si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.redelivered_total, 2);
    CHECK_EQ_INT(si.inflight_msgs, 2);
    /* The next AckWait starts at the redelivery: count 2 after another 5 s; acked ones stop. */
    ef_ack(&f, s, 3);
    ef_advance(&f, 5 * EF_SEC + 1000000);
    CHECK_EQ_INT(s->inbox->n, 6);
    CHECK_EQ_INT(ef_msg(s, 5)->seq, 1);
    CHECK_EQ_INT(ef_msg(s, 5)->redelivery_count, 2);
    stan_store_info_t sti;
    stan_get_store_info(f.st, &sti);
    CHECK_EQ_INT(sti.redeliveries_total, 3);
    CHECK_EQ_INT(ef_sub_info(&f, s).redelivered_total, 3);
    ef_done(&f);
}

static void test_queue_redelivery_goes_to_the_holder(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_sub_opts_t o = {.qgroup = "q", .ack_wait_s = 2};
    ef_sub_t *a = ef_subscribe(&f, "c1", "jobs", &o);
    ef_sub_t *b = ef_subscribe(&f, "c1", "jobs", &o);
    CHECK(a && b);
    publish_n(&f, "jobs", 4);
    ef_settle(&f);
    CHECK_EQ_INT(a->inbox->n, 2);
    CHECK_EQ_INT(b->inbox->n, 2);
    /* b acks its own, a does not: after AckWait a gets its two again, b nothing. */
    ef_ack(&f, b, ef_msg(b, 0)->seq);
    ef_ack(&f, b, ef_msg(b, 1)->seq);
    ef_advance(&f, 2 * EF_SEC + 1000000);
    CHECK_EQ_INT(a->inbox->n, 4);
    CHECK_EQ_INT(b->inbox->n, 2);
    CHECK_EQ_INT(ef_msg(a, 2)->seq, ef_msg(a, 0)->seq);
    CHECK_EQ_INT(ef_msg(a, 3)->seq, ef_msg(a, 1)->seq);
    CHECK(ef_msg(a, 2)->redelivered && ef_msg(a, 3)->redelivered);
    ef_done(&f);
}

/* a holds two unacked messages; leave(a) must get them to b, flagged redelivered. */
static void member_leaves(void (*leave)(ef_t *, ef_sub_t *))
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    CHECK_EQ_STR(ef_connect(&f, "c2"), "");
    ef_sub_opts_t o = {.qgroup = "q", .ack_wait_s = 3};
    ef_sub_t *a = ef_subscribe(&f, "c1", "jobs", &o);
    ef_sub_t *b = ef_subscribe(&f, "c2", "jobs", &o);
    CHECK(a && b);
    publish_n(&f, "jobs", 4);
    ef_settle(&f);
    CHECK_EQ_INT(a->inbox->n, 2);
    for (size_t i = 0; i < b->inbox->n; i++)
        ef_ack(&f, b, ef_msg(b, i)->seq);
    uint64_t held[2] = {ef_msg(a, 0)->seq, ef_msg(a, 1)->seq};
    leave(&f, a);
    ef_settle(&f);
    CHECK_EQ_INT(b->inbox->n, 4);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(ef_count_seq(b, held[i]), 1);
        const ef_msg_t *m = ef_msg(b, 2 + (size_t)i);
        CHECK(m->seq == held[0] || m->seq == held[1]);
        CHECK(m->redelivered);
    }
    CHECK_EQ_INT(a->inbox->n, 2);
    stan_sub_info_t ib = ef_sub_info(&f, b);
    CHECK_EQ_INT(ib.inflight_msgs, 2);
    /* b's acks for them are honoured: nothing left owed. */
    ef_ack(&f, b, held[0]);
    ef_ack(&f, b, held[1]);
    CHECK_EQ_INT(ef_sub_info(&f, b).pending_msgs, 0);
    ef_done(&f);
}

static void leave_by_unsubscribe(ef_t *f, ef_sub_t *a)
{
    CHECK_EQ_STR(ef_unsubscribe(f, a, false), "");
    CHECK(!ef_sub_listed(f, "jobs", a->inbox->subject));
}

static void leave_by_losing_the_inbox(ef_t *f, ef_sub_t *a)
{
    /* Its connection is gone: nothing more can reach it. Nothing happens before AckWait... */
    ef_inbox_close(a->inbox);
    ef_advance(f, 2 * EF_SEC);
    CHECK_EQ_INT(ef_sub_info(f, a).inflight_msgs, 2);
    CHECK_EQ_INT(a->inbox->n, 2);
    /* ...then its messages go to a member that is there. */
    ef_advance(f, 1 * EF_SEC + 1000000);
}

static void test_member_unsubscribes(void)
{
    member_leaves(leave_by_unsubscribe);
}

static void test_member_inbox_gone(void)
{
    member_leaves(leave_by_losing_the_inbox);
}

static void test_durable_resumes_at_its_position(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    publish_n(&f, "foo", 5);
    ef_sub_opts_t o = {.durable = "dur", .start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    ef_wait_msgs(s->inbox, 5);
    for (uint64_t seq = 1; seq <= 3; seq++)
        ef_ack(&f, s, seq);
    /* Closed (not unsubscribed): the durable stays, offline, with its position. */
    CHECK_EQ_STR(ef_unsubscribe(&f, s, true), "");
    stan_sub_info_t si = ef_sub_info(&f, s);
    CHECK(si.is_offline);
    CHECK(si.is_durable);
    CHECK_EQ_INT(si.last_sent, 5);
    CHECK_EQ_INT(si.inflight_msgs, 2);
    publish_n(&f, "foo", 2);
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 5);
    /* Resumed with a new inbox (the start position asked for is ignored): the two unacked
     * again, flagged, then the two new ones; never 1..3. */
    ef_sub_t *r = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(r != NULL);
    ef_wait_msgs(r->inbox, 4);
    ef_settle(&f);
    CHECK_EQ_INT(r->inbox->n, 4);
    CHECK_EQ_INT(ef_msg(r, 0)->seq, 4);
    CHECK_EQ_INT(ef_msg(r, 1)->seq, 5);
    CHECK(ef_msg(r, 0)->redelivered && ef_msg(r, 1)->redelivered);
    CHECK_EQ_INT(ef_msg(r, 2)->seq, 6);
    CHECK_EQ_INT(ef_msg(r, 3)->seq, 7);
    CHECK(!ef_msg(r, 2)->redelivered);
    si = ef_sub_info(&f, r);
    CHECK(!si.is_offline);
    CHECK_EQ_INT(si.last_sent, 7);
    CHECK_EQ_INT(si.inflight_msgs, 4);
    /* One durable, not two. */
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    /* A second live registration of the same durable is refused. */
    CHECK(ef_subscribe(&f, "c1", "foo", &o) == NULL);
    CHECK_EQ_STR(f.error, "stan: duplicate durable registration");
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_one_member_per_message_in_turn);
    TEST_RUN(test_redelivery_after_ack_wait);
    TEST_RUN(test_queue_redelivery_goes_to_the_holder);
    TEST_RUN(test_member_unsubscribes);
    TEST_RUN(test_member_inbox_gone);
    TEST_RUN(test_durable_resumes_at_its_position);
    return test_summary();
}
