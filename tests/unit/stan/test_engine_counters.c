/* The engine's counters, in-process, and what a restart on the same store keeps of them:
 * channel msgs/bytes and bounds, subscription counts (server, channel, client), redeliveries
 * (per subscription and in total), the unacked set and the ack inbox a client knows. */
#include <string.h>

#include "engine_fixture.h"
#include "protocol.pb-c.h"
#include "test.h"

static void check_totals(ef_t *f, size_t clients, size_t subs, size_t channels, uint64_t msgs,
                         uint64_t bytes)
{
    stan_server_info_t si;
    stan_get_server_info(f->st, &si);
    CHECK_EQ_INT(si.clients, clients);
    CHECK_EQ_INT(si.subscriptions, subs);
    CHECK_EQ_INT(si.channels, channels);
    CHECK_EQ_INT(si.total_msgs, msgs);
    CHECK_EQ_INT(si.total_bytes, bytes);
}

static void check_foo(ef_t *f)
{
    stan_channel_info_t ci = ef_channel(f, "foo");
    CHECK_EQ_INT(ci.first_seq, 1);
    CHECK_EQ_INT(ci.last_seq, 4);
    CHECK_EQ_INT(ci.msgs, 4);
    CHECK_EQ_INT(ci.bytes, 1 + 2 + 3 + 4);
    CHECK_EQ_INT(ci.subs, 2);
    stan_channel_info_t bi = ef_channel(f, "bar");
    CHECK_EQ_INT(bi.msgs, 1);
    CHECK_EQ_INT(bi.bytes, 5);
    CHECK_EQ_INT(bi.subs, 1);
    stan_client_info_t cl;
    CHECK(stan_get_client_info(f->st, "c1", &cl) == 0);
    CHECK_EQ_INT(cl.subs, 2);
    CHECK(stan_get_client_info(f->st, "c2", &cl) == 0);
    CHECK_EQ_INT(cl.subs, 1);
}

/* Two clients, two channels, three subscriptions (d: durable on foo, q: queue member on foo,
 * p: plain on bar); d has had 2..4 redelivered once and acked 1 and 2. */
static void populate(ef_t *f, ef_sub_t **d, ef_sub_t **q, ef_sub_t **p)
{
    CHECK_EQ_STR(ef_connect(f, "c1"), "");
    CHECK_EQ_STR(ef_connect(f, "c2"), "");
    const char *data[] = {"a", "bb", "ccc", "dddd"};
    for (int i = 0; i < 4; i++)
        CHECK_EQ_STR(ef_publish(f, "c1", "foo", data[i]), "");
    CHECK_EQ_STR(ef_publish(f, "c2", "bar", "hello"), "");
    ef_sub_opts_t o = {.durable = "d", .ack_wait_s = 2, .start = PB__START_POSITION__First};
    *d = ef_subscribe(f, "c1", "foo", &o);
    *q = ef_subscribe(f, "c2", "foo", &(ef_sub_opts_t){.qgroup = "g"});
    *p = ef_subscribe(f, "c1", "bar", &(ef_sub_opts_t){.start = PB__START_POSITION__First});
    CHECK(*d && *q && *p);
    ef_wait_msgs((*d)->inbox, 4);
    ef_wait_msgs((*p)->inbox, 1);
    ef_ack(f, *p, 1);
    check_totals(f, 2, 3, 2, 5, 15);
    check_foo(f);
    /* d acks 1; 2..4 come again after AckWait (3 redeliveries); then it acks 2. */
    ef_ack(f, *d, 1);
    ef_settle(f);
    ef_advance(f, 2 * EF_SEC + 1000000);
    CHECK_EQ_INT((*d)->inbox->n, 7);
    ef_ack(f, *d, 2);
    ef_settle(f);
    stan_sub_info_t si = ef_sub_info(f, *d);
    CHECK_EQ_INT(si.redelivered_total, 3);
    CHECK_EQ_INT(si.inflight_msgs, 2);
    CHECK_EQ_INT(si.inflight_bytes, 3 + 4);
    stan_store_info_t sti;
    stan_get_store_info(f->st, &sti);
    CHECK_EQ_INT(sti.redeliveries_total, 3);
}

static void test_counters_survive_a_restart(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    ef_sub_t *d, *q, *p;
    populate(&f, &d, &q, &p);

    ef_restart(&f);
    /* Everything stored is back: clients, channels, subscriptions, counts and bounds. */
    check_totals(&f, 2, 3, 2, 5, 15);
    check_foo(&f);
    /* The unacked set is back (3 and 4, each delivered twice: one redelivery each is what the
     * store knows) and goes out again at once, flagged with the stored count. */
    ef_wait_msgs(d->inbox, 9);
    ef_settle(&f);
    CHECK_EQ_INT(d->inbox->n, 9);
    CHECK_EQ_INT(ef_msg(d, 7)->seq, 3);
    CHECK_EQ_INT(ef_msg(d, 8)->seq, 4);
    CHECK_EQ_INT(ef_msg(d, 7)->redelivery_count, 2);
    CHECK_EQ_INT(ef_msg(d, 8)->redelivery_count, 2);
    stan_sub_info_t si = ef_sub_info(&f, d);
    CHECK_EQ_STR(si.ack_inbox, d->ack_inbox);
    CHECK_EQ_INT(si.last_sent, 4);
    CHECK_EQ_INT(si.inflight_msgs, 2);
    CHECK_EQ_INT(si.inflight_bytes, 3 + 4);
    CHECK_EQ_INT(si.redelivered_total, 2 + 2); /* recovered (1 + 1) and sent since (2) */
    stan_store_info_t sti;
    stan_get_store_info(f.st, &sti);
    CHECK_EQ_INT(sti.redeliveries_total, 2); /* since this start */
    /* The plain subscription's ack before the restart holds: nothing comes again. */
    CHECK_EQ_INT(p->inbox->n, 1);
    CHECK_EQ_INT(ef_sub_info(&f, p).inflight_msgs, 0);
    /* The ack inbox the client knows still works. */
    ef_ack(&f, d, 3);
    ef_ack(&f, d, 4);
    CHECK_EQ_INT(ef_sub_info(&f, d).pending_msgs, 0);

    /* New messages continue the sequence, and the counts move on from the recovered ones. */
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "eeeee"), "");
    CHECK_EQ_INT(ef_wait_msgs(d->inbox, 10)->seq, 5);
    stan_channel_info_t ci = ef_channel(&f, "foo");
    CHECK_EQ_INT(ci.last_seq, 5);
    CHECK_EQ_INT(ci.msgs, 5);
    CHECK_EQ_INT(ci.bytes, 15);
    /* An unsubscribe and a client close move the counts down, and so it stays. */
    CHECK_EQ_STR(ef_unsubscribe(&f, q, false), "");
    CHECK_EQ_STR(ef_close(&f, "c2"), "");
    check_totals(&f, 1, 2, 2, 6, 20);
    ef_restart(&f);
    check_totals(&f, 1, 2, 2, 6, 20);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_counters_survive_a_restart);
    return test_summary();
}
