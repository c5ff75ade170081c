/* Max deliveries and dead letters, in-process with the fake clock: a poison message delivered
 * max_deliveries times without an ack goes to the dead-letter channel (payload kept, a record of
 * where it came from) while the next messages flow to the same subscriber; other subscriptions
 * are unaffected; a queue group's count carries across a hand-over; requeue publishes it again
 * onto its origin and marks the record; counts are right after each step and after a restart; a
 * failed commit leaves memory as the disk is; evicting dead letters removes their records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine_fixture.h"
#include "err.h"
#include "protocol.pb-c.h"
#include "stan_admin.h"
#include "stan_ctx.h" /* the engine's store, to make its next commit fail */
#include "test.h"

#define MS INT64_C(1000000)

/* max_deliveries (and dead_letter, unless NULL) for channels matching pattern. */
static config_limits_t *set_dead(ef_t *f, const char *pattern, int64_t max, const char *dead_letter)
{
    config_limits_t *l = ef_channel_limits(f, pattern);
    l->max_deliveries = max;
    l->dead_letter = dead_letter ? strdup(dead_letter) : NULL;
    return l;
}

static void start(ef_t *f, int64_t max)
{
    ef_init(f);
    set_dead(f, "jobs", max, NULL);
    ef_start(f);
    CHECK_EQ_STR(ef_connect(f, "c1"), "");
    CHECK_EQ_STR(ef_connect(f, "c2"), "");
}

static ef_sub_t *subscribe(ef_t *f, const char *client, const char *channel, int32_t inflight)
{
    ef_sub_opts_t o = {
        .max_inflight = inflight, .ack_wait_s = 1, .start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(f, client, channel, &o);
    CHECK(s != NULL);
    return s;
}

/* Past one AckWait (1 s). */
static void ack_wait(ef_t *f)
{
    ef_advance(f, 1000 * MS + MS);
}

/* ---- reading the dead letters ---- */

typedef struct dead_list {
    stan_dead_info_t d[8];
    char origin[8][64], client[8][64], sub[8][64];
    size_t n;
} dead_list_t;

static void on_dead(void *arg, const stan_dead_info_t *d)
{
    dead_list_t *l = arg;
    if (l->n == 8) return;
    l->d[l->n] = *d;
    snprintf(l->origin[l->n], 64, "%s", d->origin);
    snprintf(l->client[l->n], 64, "%s", d->last_client);
    snprintf(l->sub[l->n], 64, "%s", d->subscription);
    l->n++;
}

/* The dead letters of channel; CHECKs the total and the dead-letter channel's name. */
static dead_list_t dead_of(ef_t *f, const char *channel, uint64_t want_total, const char *dname)
{
    dead_list_t l = {0};
    uint64_t total = 99;
    const char *dc = NULL;
    char err[256];
    CHECK_EQ_INT(
        stan_admin_foreach_dead(f->st, channel, 0, 0, on_dead, &l, &total, &dc, err, sizeof err),
        0);
    CHECK_EQ_INT(total, want_total);
    CHECK_EQ_INT(l.n, want_total);
    CHECK_EQ_STR(dc, dname);
    return l;
}

static void check_dead(const dead_list_t *l, size_t i, uint64_t dead_seq, uint64_t origin_seq,
                       uint32_t deliveries, const char *client, const char *sub, uint64_t requeued)
{
    CHECK_EQ_INT(l->d[i].dead_seq, dead_seq);
    CHECK_EQ_STR(l->origin[i], "jobs");
    CHECK_EQ_INT(l->d[i].origin_seq, origin_seq);
    CHECK_EQ_INT(l->d[i].deliveries, deliveries);
    CHECK_EQ_STR(l->client[i], client);
    CHECK_EQ_STR(l->sub[i], sub);
    CHECK(l->d[i].dead_ns >= EF_EPOCH_NS);
    CHECK_EQ_INT(l->d[i].requeued_seq, requeued);
}

static uint64_t dead_letters_total(ef_t *f)
{
    stan_store_info_t si;
    stan_get_store_info(f->st, &si);
    return si.dead_letters_total;
}

/* ---- the poison message ---- */

/* The state after the poison message (jobs #1) went to jobs.dead, checked again after a
 * restart: the subscription's count, the record, the dead letter's payload. */
static void check_poisoned(ef_t *f, ef_sub_t *s, ef_sub_t *other)
{
    CHECK_EQ_INT(ef_sub_info(f, s).dead_total, 1);
    CHECK_EQ_INT(ef_sub_info(f, s).inflight_msgs, 0);
    CHECK_EQ_INT(ef_sub_info(f, other).dead_total, 0);
    stan_channel_info_t d = ef_channel(f, "jobs.dead");
    CHECK_EQ_INT(d.msgs, 1);
    CHECK_EQ_INT(d.last_seq, 1);
    dead_list_t l = dead_of(f, "jobs", 1, "jobs.dead");
    check_dead(&l, 0, 1, 1, 3, "c1", "inbox", 0);
}

static void test_poison_dead_lettered_while_next_flow(void)
{
    ef_t f;
    start(&f, 3);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "poison"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "ok1"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "ok2"), "");
    ef_sub_t *s = subscribe(&f, "c1", "jobs", 1); /* one at a time: the poison blocks it */
    ef_sub_t *t = subscribe(&f, "c2", "jobs", 10);
    ef_wait_msgs(t->inbox, 3);
    for (uint64_t seq = 1; seq <= 3; seq++)
        ef_ack(&f, t, seq); /* the other subscription acks everything */
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 1)->seq, 1);
    ack_wait(&f);
    ack_wait(&f);
    CHECK_EQ_INT(s->inbox->n, 3); /* delivered 3 times, the 3rd one redelivery count 2 */
    CHECK_EQ_INT(ef_msg(s, 2)->redelivery_count, 2);
    CHECK_EQ_INT(ef_sub_info(&f, s).dead_total, 0);
    CHECK(!ef_channel_exists(&f, "jobs.dead"));
    ack_wait(&f);
    /* Not a 4th time: dead-lettered, and the next message flows to the same subscriber. */
    CHECK_EQ_INT(ef_count_seq(s, 1), 3);
    CHECK_EQ_INT(s->inbox->n, 4);
    CHECK_EQ_INT(ef_msg(s, 3)->seq, 2);
    CHECK(!ef_msg(s, 3)->redelivered);
    ef_ack(&f, s, 2);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 5)->seq, 3);
    ef_ack(&f, s, 3);
    ef_settle(&f);
    CHECK_EQ_INT(dead_letters_total(&f), 1);
    check_poisoned(&f, s, t);
    /* The dead letter is a message: same payload, read by any subscriber. */
    ef_sub_t *d = subscribe(&f, "c2", "jobs.dead", 10);
    CHECK_EQ_STR(ef_wait_msgs(d->inbox, 1)->payload, "poison");
    ef_advance(&f, 10 * EF_SEC);
    CHECK_EQ_INT(ef_count_seq(s, 1), 3);
    CHECK_EQ_INT(t->inbox->n, 3); /* never redelivered to the one that acked */

    ef_restart(&f);
    check_poisoned(&f, s, t);
    ef_advance(&f, 10 * EF_SEC);
    CHECK_EQ_INT(ef_count_seq(s, 1), 3);
    ef_done(&f);
}

/* Queue group: the count carries to the member that takes the message over. */
static void test_queue_group_count_carries(void)
{
    ef_t f;
    start(&f, 2);
    ef_sub_opts_t o = {.qgroup = "workers", .max_inflight = 1, .ack_wait_s = 1};
    ef_sub_t *a = ef_subscribe(&f, "c1", "jobs", &o);
    ef_sub_t *b = ef_subscribe(&f, "c2", "jobs", &o);
    CHECK(a && b);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "poison"), "");
    ef_settle(&f);
    ef_sub_t *holder = a->inbox->n ? a : b, *heir = holder == a ? b : a;
    CHECK_EQ_INT(holder->inbox->n, 1);
    /* The holder leaves: the message goes to the other member, its 2nd delivery. */
    CHECK_EQ_STR(ef_unsubscribe(&f, holder, false), "");
    ef_settle(&f);
    CHECK_EQ_INT(heir->inbox->n, 1);
    CHECK_EQ_INT(ef_msg(heir, 0)->redelivery_count, 1);
    ack_wait(&f);
    CHECK_EQ_INT(heir->inbox->n, 1); /* dead after 2 deliveries in all */
    CHECK_EQ_INT(ef_sub_info(&f, heir).dead_total, 1);
    dead_list_t l = dead_of(&f, "jobs", 1, "jobs.dead");
    check_dead(&l, 0, 1, 1, 2, heir == a ? "c1" : "c2", "queue:workers", 0);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "next"), "");
    CHECK_EQ_INT(ef_wait_msgs(heir->inbox, 2)->seq, 2);
    ef_done(&f);
}

/* ---- requeue ---- */

static stan_admin_result_t requeue(ef_t *f, const char *channel, uint64_t dead_seq)
{
    ef_answer_t a = {0};
    char err[256];
    return ef_answered(
        f, stan_admin_requeue(f->st, channel, dead_seq, ef_on_answer, &a, err, sizeof err), &a);
}

static void test_requeue(void)
{
    ef_t f;
    start(&f, 1);
    ef_sub_t *s = subscribe(&f, "c1", "jobs", 10);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "poison"), "");
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "fine"), "");
    ef_wait_msgs(s->inbox, 2);
    ef_ack(&f, s, 2);
    ack_wait(&f); /* delivered once: dead at once when due again */
    CHECK_EQ_INT(s->inbox->n, 2);
    CHECK_EQ_INT(ef_sub_info(&f, s).dead_total, 1);

    stan_admin_result_t r = requeue(&f, "jobs", 0);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 1);
    CHECK_EQ_INT(r.last_seq, 3);
    CHECK_EQ_INT(r.msgs, 3);
    const ef_msg_t *m = ef_wait_msgs(s->inbox, 3);
    CHECK_EQ_INT(m->seq, 3);
    CHECK_EQ_STR(m->payload, "poison");
    CHECK(!m->redelivered);
    dead_list_t l = dead_of(&f, "jobs", 1, "jobs.dead");
    check_dead(&l, 0, 1, 1, 1, "c1", "inbox", 3);
    /* Every one not requeued yet: none left. One by its sequence: again. */
    CHECK_EQ_INT(requeue(&f, "jobs", 0).count, 0);
    ef_ack(&f, s, 3);
    r = requeue(&f, "jobs", 1);
    CHECK_EQ_INT(r.count, 1);
    CHECK_EQ_INT(r.last_seq, 4);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 4)->seq, 4);
    ef_ack(&f, s, 4);
    CHECK_EQ_INT(ef_sub_info(&f, s).dead_total, 1);
    CHECK_EQ_INT(ef_channel(&f, "jobs.dead").msgs, 1); /* it stays there */

    char err[256];
    ef_answer_t a = {0};
    CHECK_EQ_INT(stan_admin_requeue(f.st, "jobs", 9, ef_on_answer, &a, err, sizeof err),
                 STZ_ENOENT);
    CHECK_EQ_INT(stan_admin_requeue(f.st, "nope", 0, ef_on_answer, &a, err, sizeof err),
                 STZ_ENOENT);
    uint64_t total;
    CHECK_EQ_INT(
        stan_admin_foreach_dead(f.st, "nope", 0, 0, on_dead, NULL, &total, NULL, err, sizeof err),
        STZ_ENOENT);
    ef_settle(&f);
    CHECK_EQ_INT(a.calls, 0);

    ef_restart(&f);
    l = dead_of(&f, "jobs", 1, "jobs.dead");
    check_dead(&l, 0, 1, 1, 1, "c1", "inbox", 4);
    CHECK_EQ_INT(ef_sub_info(&f, s).dead_total, 1);
    CHECK_EQ_INT(dead_letters_total(&f), 0); /* since this start */
    ef_done(&f);
}

/* ---- a failed commit ---- */

static bool commit_failed(void *arg)
{
    stan_store_info_t si;
    stan_get_store_info(arg, &si);
    return !si.writable;
}

static void test_disk_full(void)
{
    ef_t f;
    start(&f, 1);
    ef_sub_t *s = subscribe(&f, "c1", "jobs", 10);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "poison"), "");
    ef_wait_msgs(s->inbox, 1);
    ef_settle(&f);
    store_inject_enospc(f.st->store, 1);
    clock_fake_advance(1000 * MS + MS);
    stan_run_due(f.st);
    ef_run_until(&f, commit_failed, f.st);
    /* As on disk: unacked again (due at once), nothing dead-lettered, no sequence used. */
    stan_sub_info_t si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.dead_total, 0);
    CHECK_EQ_INT(si.inflight_msgs, 1);
    CHECK_EQ_INT(dead_letters_total(&f), 0);
    CHECK(!ef_channel_exists(&f, "jobs.dead") || ef_channel(&f, "jobs.dead").last_seq == 0);
    /* The disk has room again: the next batch does it, with the sequence rolled back. */
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 1); /* never redelivered */
    si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.dead_total, 1);
    CHECK_EQ_INT(si.inflight_msgs, 0);
    CHECK_EQ_INT(dead_letters_total(&f), 1);
    CHECK_EQ_INT(ef_channel(&f, "jobs.dead").last_seq, 1);
    dead_list_t l = dead_of(&f, "jobs", 1, "jobs.dead");
    check_dead(&l, 0, 1, 1, 1, "c1", "inbox", 0);
    ef_restart(&f);
    si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.dead_total, 1);
    CHECK_EQ_INT(si.inflight_msgs, 0);
    dead_of(&f, "jobs", 1, "jobs.dead");
    ef_advance(&f, 5 * EF_SEC);
    CHECK_EQ_INT(s->inbox->n, 1);
    ef_done(&f);
}

/* ---- eviction ---- */

/* The dead-letter channel keeps 2 messages: the third dead letter evicts the first, and its
 * record goes with it (also after a restart, when the engine learnt from the store that the
 * channel holds dead letters); max_age expiry takes the records too. A custom dead_letter name. */
static void test_dead_channel_eviction(void)
{
    ef_t f;
    ef_init(&f);
    set_dead(&f, "jobs", 1, "dlq.{channel}");
    config_limits_t *dlq = set_dead(&f, "dlq.>", 0, NULL);
    dlq->max_msgs = 2;
    dlq->max_age_ms = 60 * 1000;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_sub_t *s = subscribe(&f, "c1", "jobs", 10);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "bad"), "");
    ef_wait_msgs(s->inbox, 3);
    ack_wait(&f);
    CHECK_EQ_INT(ef_sub_info(&f, s).dead_total, 3);
    stan_channel_info_t d = ef_channel(&f, "dlq.jobs");
    CHECK_EQ_INT(d.first_seq, 2);
    CHECK_EQ_INT(d.last_seq, 3);
    dead_list_t l = dead_of(&f, "jobs", 2, "dlq.jobs");
    CHECK_EQ_INT(l.d[0].dead_seq, 2);
    CHECK_EQ_INT(l.d[1].dead_seq, 3);
    ef_restart(&f);
    dead_of(&f, "jobs", 2, "dlq.jobs");
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "bad"), "");
    ef_wait_msgs(s->inbox, 4);
    ack_wait(&f);
    CHECK_EQ_INT(ef_sub_info(&f, s).dead_total, 4);
    l = dead_of(&f, "jobs", 2, "dlq.jobs");
    CHECK_EQ_INT(l.d[0].dead_seq, 3);
    CHECK_EQ_INT(l.d[1].dead_seq, 4);
    CHECK_EQ_INT(l.d[1].origin_seq, 4);
    /* max_age takes the dead letters, and their records with them. */
    ef_advance(&f, 61 * EF_SEC);
    CHECK_EQ_INT(ef_channel(&f, "dlq.jobs").msgs, 0);
    dead_of(&f, "jobs", 0, "dlq.jobs");
    ef_restart(&f);
    dead_of(&f, "jobs", 0, "dlq.jobs");
    ef_done(&f);
}

/* No room for the dead-letter channel (max_channels): the message is redelivered as before,
 * nothing is counted. */
static void test_cannot_write_keeps_redelivering(void)
{
    ef_t f;
    ef_init(&f);
    set_dead(&f, "jobs", 1, NULL);
    f.cfg.max_channels = 1;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_sub_t *s = subscribe(&f, "c1", "jobs", 10);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "poison"), "");
    ef_wait_msgs(s->inbox, 1);
    ack_wait(&f);
    ack_wait(&f);
    CHECK_EQ_INT(ef_count_seq(s, 1), 3);
    CHECK_EQ_INT(ef_msg(s, 2)->redelivery_count, 2);
    CHECK_EQ_INT(ef_sub_info(&f, s).dead_total, 0);
    CHECK_EQ_INT(ef_sub_info(&f, s).inflight_msgs, 1);
    CHECK(!ef_channel_exists(&f, "jobs.dead"));
    dead_of(&f, "jobs", 0, "jobs.dead");
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_poison_dead_lettered_while_next_flow);
    TEST_RUN(test_queue_group_count_carries);
    TEST_RUN(test_requeue);
    TEST_RUN(test_disk_full);
    TEST_RUN(test_dead_channel_eviction);
    TEST_RUN(test_cannot_write_keeps_redelivering);
    return test_summary();
}
