/* Clients and idle channels, in-process, on the fake clock: the server sends a heartbeat every
 * hb_interval to each client and closes one that misses more than hb_fail_count of them (its
 * subscriptions go with it); max_inactivity deletes a channel nobody has published on or left a
 * subscription of for that long, and keeps one that has a subscription. */
#include <stdio.h>
#include <string.h>

#include "engine_fixture.h"
#include "test.h"

#define HB_INTERVAL_S 10
#define HB_TIMEOUT_S 2
#define HB_FAILS 2

static void hb_config(ef_t *f)
{
    f->cfg.hb_interval_ms = HB_INTERVAL_S * 1000;
    f->cfg.hb_timeout_ms = HB_TIMEOUT_S * 1000;
    f->cfg.hb_fail_count = HB_FAILS;
}

static void test_heartbeats_each_interval(void)
{
    ef_t f;
    ef_init(&f);
    hb_config(&f);
    ef_start(&f);
    ef_hb_t *hb = ef_hb_listen(&f, "c1", true);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    /* Not before the interval is over. */
    ef_advance(&f, (HB_INTERVAL_S - 1) * EF_SEC);
    CHECK_EQ_INT(hb->received, 0);
    ef_advance(&f, EF_SEC);
    CHECK_EQ_INT(hb->received, 1);
    /* Answered: one per interval from then on, however long, and the client stays. */
    for (int i = 2; i <= 20; i++) {
        ef_advance(&f, (HB_INTERVAL_S - 1) * EF_SEC);
        CHECK_EQ_INT(hb->received, i - 1);
        ef_advance(&f, EF_SEC);
        CHECK_EQ_INT(hb->received, i);
    }
    CHECK(ef_client_exists(&f, "c1"));
    ef_done(&f);
}

/* One interval: the heartbeat goes out, then its timeout passes. */
static void hb_round(ef_t *f)
{
    ef_advance(f, (HB_INTERVAL_S - HB_TIMEOUT_S) * EF_SEC);
    ef_advance(f, HB_TIMEOUT_S * EF_SEC);
}

static void test_unanswered_client_closed(void)
{
    ef_t f;
    ef_init(&f);
    hb_config(&f);
    ef_start(&f);
    ef_hb_t *quiet = ef_hb_listen(&f, "quiet", false);
    ef_hb_t *alive = ef_hb_listen(&f, "alive", true);
    CHECK_EQ_STR(ef_connect(&f, "quiet"), "");
    CHECK_EQ_STR(ef_connect(&f, "alive"), "");
    ef_sub_t *s = ef_subscribe(&f, "quiet", "foo", NULL);
    CHECK(s != NULL);
    /* The first heartbeat at hb_interval, then hb_interval - hb_timeout more to the next. */
    ef_advance(&f, (HB_INTERVAL_S - HB_TIMEOUT_S) * EF_SEC);
    CHECK_EQ_INT(quiet->received, 0);
    ef_advance(&f, HB_TIMEOUT_S * EF_SEC);
    CHECK_EQ_INT(quiet->received, 1);
    /* hb_fail_count misses are tolerated... */
    for (int i = 0; i < HB_FAILS; i++) {
        ef_advance(&f, HB_TIMEOUT_S * EF_SEC); /* the timeout of heartbeat i + 1 */
        CHECK(ef_client_exists(&f, "quiet"));
        ef_advance(&f, (HB_INTERVAL_S - HB_TIMEOUT_S) * EF_SEC); /* the next goes out */
        CHECK_EQ_INT(quiet->received, i + 2);
    }
    CHECK(ef_client_exists(&f, "quiet"));
    CHECK(ef_sub_listed(&f, "foo", s->inbox->subject));
    /* ... one more is not: the client is closed, its subscription with it. */
    ef_advance(&f, HB_TIMEOUT_S * EF_SEC);
    CHECK(!ef_client_exists(&f, "quiet"));
    CHECK(!ef_sub_listed(&f, "foo", s->inbox->subject));
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 0);
    /* The one that answers stays; the closed one gets no more heartbeats. */
    CHECK(ef_client_exists(&f, "alive"));
    CHECK_EQ_INT(alive->received, HB_FAILS + 1);
    hb_round(&f);
    CHECK_EQ_INT(quiet->received, HB_FAILS + 1);
    CHECK_EQ_INT(alive->received, HB_FAILS + 2);
    /* Closed for good: gone after a restart too. */
    ef_restart(&f);
    CHECK(!ef_client_exists(&f, "quiet"));
    CHECK(ef_client_exists(&f, "alive"));
    ef_done(&f);
}

/* Seconds go by as the engine's once-a-second tick sees them. */
static void advance_s(ef_t *f, int seconds)
{
    for (int i = 0; i < seconds; i++)
        ef_advance(f, EF_SEC);
}

static void test_answer_resets_misses(void)
{
    ef_t f;
    ef_init(&f);
    hb_config(&f);
    ef_start(&f);
    ef_hb_t *hb = ef_hb_listen(&f, "c1", false);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    /* Heartbeats at 10, 20, 30... s; a miss counts at 12, 22, 32... s. At 21 s: one miss. */
    advance_s(&f, 21);
    CHECK_EQ_INT(hb->received, 2);
    /* 22 s: the second miss; 30 s: the third heartbeat is answered, the count starts again. */
    hb->answer = true;
    advance_s(&f, 10);
    CHECK_EQ_INT(hb->received, 3);
    hb->answer = false;
    /* Misses at 42 and 52 s are tolerated (without the reset, 42 s would be one too many)... */
    advance_s(&f, 30);
    CHECK_EQ_INT(hb->received, 6);
    CHECK(ef_client_exists(&f, "c1"));
    /* ... the one at 62 s is not. */
    advance_s(&f, 1);
    CHECK(!ef_client_exists(&f, "c1"));
    ef_done(&f);
}

static void test_idle_channel_deleted(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_inactivity_ms = 60 * 1000;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "idle", "m"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "again", "m"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "watched", "m"), "");
    ef_sub_t *s = ef_subscribe(&f, "c1", "watched", NULL);
    CHECK(s != NULL);
    ef_sub_t *gone = ef_subscribe(&f, "c1", "left", NULL);
    CHECK(gone != NULL);
    /* 30 s later: a publish on "again", and the subscription on "left" goes. */
    ef_advance(&f, 30 * EF_SEC);
    CHECK_EQ_STR(ef_publish(&f, "c1", "again", "m"), "");
    CHECK_EQ_STR(ef_unsubscribe(&f, gone, false), "");
    /* 59 s: nothing is idle long enough yet. */
    ef_advance(&f, 29 * EF_SEC);
    CHECK(ef_channel_exists(&f, "idle"));
    /* 60 s: "idle" goes; the one with a subscription stays, and those active since stay. */
    ef_advance(&f, EF_SEC);
    CHECK(!ef_channel_exists(&f, "idle"));
    CHECK(ef_channel_exists(&f, "watched"));
    CHECK(ef_channel_exists(&f, "again"));
    CHECK(ef_channel_exists(&f, "left"));
    /* 90 s: 60 s after their last activity, those go too; "watched" never does. */
    ef_advance(&f, 30 * EF_SEC);
    CHECK(!ef_channel_exists(&f, "again"));
    CHECK(!ef_channel_exists(&f, "left"));
    ef_advance(&f, 3600 * EF_SEC);
    CHECK(ef_channel_exists(&f, "watched"));
    CHECK_EQ_INT(ef_channel(&f, "watched").msgs, 1);
    /* Deleted from the store too: not back after a restart; a publish makes it anew. */
    ef_restart(&f);
    CHECK(!ef_channel_exists(&f, "idle"));
    CHECK(ef_channel_exists(&f, "watched"));
    CHECK_EQ_STR(ef_publish(&f, "c1", "idle", "m"), "");
    CHECK_EQ_INT(ef_channel(&f, "idle").first_seq, 1);
    CHECK_EQ_INT(ef_channel(&f, "idle").msgs, 1);
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_heartbeats_each_interval);
    TEST_RUN(test_unanswered_client_closed);
    TEST_RUN(test_answer_resets_misses);
    TEST_RUN(test_idle_channel_deleted);
    return test_summary();
}
