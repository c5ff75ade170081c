/* Channel limits, in-process: max_msgs and max_bytes evict the oldest messages (first_seq moves,
 * the counts follow, a subscriber starting at the first gets only what is left), max_age expires
 * messages as the fake clock passes their age, max_subs and max_channels refuse with NSS's
 * errors. With discard: new, max_msgs and max_bytes refuse publishes instead (counting those
 * staged in the same iteration) and evict nothing; expiry makes room again. */
#include <stdio.h>
#include <string.h>

#include "engine_fixture.h"
#include "protocol.pb-c.h"
#include "test.h"
#include "xalloc.h"

static void publish_n(ef_t *f, const char *channel, int n, const char *data)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ_STR(ef_publish(f, "c1", channel, data), "");
}

static void check_channel(ef_t *f, const char *name, uint64_t first, uint64_t last, uint64_t msgs,
                          uint64_t bytes)
{
    stan_channel_info_t ci = ef_channel(f, name);
    CHECK_EQ_INT(ci.first_seq, first);
    CHECK_EQ_INT(ci.last_seq, last);
    CHECK_EQ_INT(ci.msgs, msgs);
    CHECK_EQ_INT(ci.bytes, bytes);
}

static void test_max_msgs_evicts_oldest(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_msgs = 3;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    publish_n(&f, "foo", 3, "xy");
    check_channel(&f, "foo", 1, 3, 3, 6);
    publish_n(&f, "foo", 2, "xy");
    check_channel(&f, "foo", 3, 5, 3, 6);
    /* What is left is what a new subscriber gets from the first. */
    ef_sub_opts_t o = {.start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    ef_wait_msgs(s->inbox, 3);
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 3);
    CHECK_EQ_INT(ef_msg(s, 0)->seq, 3);
    CHECK_EQ_INT(ef_msg(s, 2)->seq, 5);
    /* The engine's totals agree. */
    stan_server_info_t si;
    stan_get_server_info(f.st, &si);
    CHECK_EQ_INT(si.total_msgs, 3);
    CHECK_EQ_INT(si.total_bytes, 6);
    /* And the store agrees: after a restart the bounds are the same. */
    ef_restart(&f);
    check_channel(&f, "foo", 3, 5, 3, 6);
    ef_done(&f);
}

static void test_max_bytes_evicts_oldest(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_bytes = 25;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    publish_n(&f, "foo", 2, "0123456789"); /* 20 bytes: fits */
    check_channel(&f, "foo", 1, 2, 2, 20);
    publish_n(&f, "foo", 1, "0123456789"); /* 30 > 25: the first goes */
    check_channel(&f, "foo", 2, 3, 2, 20);
    /* A small one fits beside the last two; a large one pushes out all but itself. */
    publish_n(&f, "foo", 1, "abcd");
    check_channel(&f, "foo", 2, 4, 3, 24);
    publish_n(&f, "foo", 1, "0123456789012345678901");
    check_channel(&f, "foo", 5, 5, 1, 22);
    ef_done(&f);
}

static void test_max_age_expires_with_the_clock(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_age_ms = 60 * 1000;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    publish_n(&f, "foo", 1, "old");
    ef_advance(&f, 30 * EF_SEC);
    publish_n(&f, "foo", 1, "newer");
    /* 59 s after the first: nothing is old enough yet. */
    ef_advance(&f, 29 * EF_SEC);
    check_channel(&f, "foo", 1, 2, 2, 8);
    /* 61 s: the first has expired, the second (31 s) stays. */
    ef_advance(&f, 2 * EF_SEC);
    check_channel(&f, "foo", 2, 2, 1, 5);
    /* 91 s: both gone; the channel keeps its sequence (the next publish is 3). */
    ef_advance(&f, 30 * EF_SEC);
    check_channel(&f, "foo", 3, 2, 0, 0);
    publish_n(&f, "foo", 1, "x");
    check_channel(&f, "foo", 3, 3, 1, 1);
    ef_done(&f);
}

/* Every message expired while a subscriber was behind (its window full): once it has room, it
 * must not count the next message published as sent already. */
static void test_max_age_all_expired_behind_subscriber(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_age_ms = 60 * 1000;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_sub_opts_t o = {.max_inflight = 1, .ack_wait_s = 600};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    publish_n(&f, "foo", 2, "x");
    ef_wait_msgs(s->inbox, 1); /* 2 waits for room */
    ef_advance(&f, 61 * EF_SEC);
    check_channel(&f, "foo", 3, 2, 0, 0);
    ef_ack(&f, s, 1);
    ef_settle(&f);
    publish_n(&f, "foo", 1, "y");
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 2)->seq, 3);
    ef_done(&f);
}

static void test_max_subs_refused(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_subs = 2;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_sub_t *a = ef_subscribe(&f, "c1", "foo", NULL);
    ef_sub_t *b = ef_subscribe(&f, "c1", "foo", NULL);
    CHECK(a && b);
    CHECK(ef_subscribe(&f, "c1", "foo", NULL) == NULL);
    CHECK_EQ_STR(f.error, "too many subscriptions per channel");
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 2);
    /* Per channel: another channel has its own count. */
    CHECK(ef_subscribe(&f, "c1", "bar", NULL) != NULL);
    /* A place freed is a place taken again. */
    CHECK_EQ_STR(ef_unsubscribe(&f, a, false), "");
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    CHECK(ef_subscribe(&f, "c1", "foo", NULL) != NULL);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 2);
    ef_done(&f);
}

static void test_max_channels_refused(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.max_channels = 2;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "ch1", "m"), "");
    CHECK(ef_subscribe(&f, "c1", "ch2", NULL) != NULL);
    /* A third channel, by publish or by subscription, is refused; the others still work. */
    CHECK_EQ_STR(ef_publish(&f, "c1", "ch3", "m"), "too many channels");
    CHECK(ef_subscribe(&f, "c1", "ch4", NULL) == NULL);
    CHECK_EQ_STR(f.error, "too many channels");
    CHECK_EQ_STR(ef_publish(&f, "c1", "ch2", "m"), "");
    stan_server_info_t si;
    stan_get_server_info(f.st, &si);
    CHECK_EQ_INT(si.channels, 2);
    CHECK(stan_get_channel_info(f.st, "ch3", &(stan_channel_info_t){0}) != 0);
    ef_done(&f);
}

/* discard: new ---- */

#define FULL_MSGS "channel \"foo\" is full (max_msgs 3)"
#define FULL_BYTES "channel \"foo\" is full (max_bytes 25)"

static void test_discard_new_max_msgs_refuses(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_msgs = 3;
    f.cfg.limits.discard = CONFIG_DISCARD_NEW;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    /* Five in one iteration: the staged ones count, so exactly three get in. */
    char errs[5][EF_ERR_LEN];
    ef_publish_burst(&f, "c1", "foo", "xy", 5, errs);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_STR(errs[i], "");
    CHECK_EQ_STR(errs[3], FULL_MSGS);
    CHECK_EQ_STR(errs[4], FULL_MSGS);
    check_channel(&f, "foo", 1, 3, 3, 6);
    /* Committed and full: still refused, nothing evicted. */
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "xy"), FULL_MSGS);
    check_channel(&f, "foo", 1, 3, 3, 6);
    ef_sub_opts_t o = {.start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    ef_wait_msgs(s->inbox, 3);
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 3);
    CHECK_EQ_INT(ef_msg(s, 0)->seq, 1);
    CHECK_EQ_INT(ef_msg(s, 2)->seq, 3);
    ef_done(&f);
}

static void test_discard_new_max_bytes_refuses(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_bytes = 25;
    f.cfg.limits.discard = CONFIG_DISCARD_NEW;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    char errs[5][EF_ERR_LEN];
    ef_publish_burst(&f, "c1", "foo", "0123456789", 5, errs); /* two fit in 25 bytes */
    CHECK_EQ_STR(errs[0], "");
    CHECK_EQ_STR(errs[1], "");
    for (int i = 2; i < 5; i++)
        CHECK_EQ_STR(errs[i], FULL_BYTES);
    check_channel(&f, "foo", 1, 2, 2, 20);
    /* What still fits gets in; one byte more does not. */
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "abcde"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "a"), FULL_BYTES);
    check_channel(&f, "foo", 1, 3, 3, 25);
    /* A message bigger than max_bytes on its own is refused on an empty channel too. */
    CHECK_EQ_STR(ef_publish(&f, "c1", "bar", "01234567890123456789012345"),
                 "channel \"bar\" is full (max_bytes 25)");
    stan_channel_info_t bar = ef_channel(&f, "bar");
    CHECK_EQ_INT(bar.last_seq, 0);
    CHECK_EQ_INT(bar.msgs, 0);
    ef_done(&f);
}

static void test_discard_new_room_after_expiry(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_msgs = 3;
    f.cfg.limits.max_age_ms = 60 * 1000;
    f.cfg.limits.discard = CONFIG_DISCARD_NEW;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    publish_n(&f, "foo", 1, "xy");
    ef_advance(&f, 30 * EF_SEC);
    publish_n(&f, "foo", 2, "xy");
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "xy"), FULL_MSGS);
    /* 61 s: the first has expired, which leaves room for one. */
    ef_advance(&f, 31 * EF_SEC);
    check_channel(&f, "foo", 2, 3, 2, 4);
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "xy"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "foo", "xy"), FULL_MSGS);
    check_channel(&f, "foo", 2, 4, 3, 6);
    ef_done(&f);
}

static void test_discard_old_per_channel_still_evicts(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_msgs = 3;
    f.cfg.limits.discard = CONFIG_DISCARD_NEW;
    /* A pattern entry puts its channels back to NSS's behaviour. */
    f.cfg.channel_limits = xcalloc(1, sizeof *f.cfg.channel_limits);
    f.cfg.channel_limits[0] = (config_channel_limits_t){
        .pattern = xstrdup("logs.*"), .limits = {.discard = CONFIG_DISCARD_OLD}, .line = 1};
    f.cfg.nchannel_limits = 1;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    char errs[5][EF_ERR_LEN];
    ef_publish_burst(&f, "c1", "logs.a", "xy", 5, errs);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_STR(errs[i], "");
    check_channel(&f, "logs.a", 3, 5, 3, 6);
    publish_n(&f, "logs.a", 1, "xy");
    check_channel(&f, "logs.a", 4, 6, 3, 6);
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_max_msgs_evicts_oldest);
    TEST_RUN(test_max_bytes_evicts_oldest);
    TEST_RUN(test_max_age_expires_with_the_clock);
    TEST_RUN(test_max_age_all_expired_behind_subscriber);
    TEST_RUN(test_max_subs_refused);
    TEST_RUN(test_max_channels_refused);
    TEST_RUN(test_discard_new_max_msgs_refuses);
    TEST_RUN(test_discard_new_max_bytes_refuses);
    TEST_RUN(test_discard_new_room_after_expiry);
    TEST_RUN(test_discard_old_per_channel_still_evicts);
    return test_summary();
}
