/* The engine's admin commands (stan_admin.h), in-process with the fake clock: purge (all, or up
 * to a sequence) with a live subscriber, delete-channel (refused with subscriptions, forced),
 * delete-durable (offline, online, a durable queue group), close-client, pause and resume of a
 * queue group and a durable (deliveries and redeliveries held, across a restart), and the
 * message read. Each changing command answers through its callback only after its batch
 * committed; with the disk full (store_inject_enospc) it answers the error and memory, and the
 * store after a restart, are as before it. */
#include <stdio.h>
#include <string.h>

#include "engine_fixture.h"
#include "err.h"
#include "protocol.pb-c.h"
#include "stan_admin.h"
#include "stan_ctx.h" /* the engine's store, to make its next commit fail */
#include "test.h"

static stan_admin_result_t purge(ef_t *f, const char *ch, uint64_t upto)
{
    ef_answer_t a = {0};
    char err[256];
    return ef_answered(f, stan_admin_purge(f->st, ch, upto, ef_on_answer, &a, err, sizeof err), &a);
}

static stan_admin_result_t pause_queue(ef_t *f, const char *ch, const char *q, const char *d,
                                       bool pause)
{
    ef_answer_t a = {0};
    char err[256];
    return ef_answered(
        f, stan_admin_pause(f->st, ch, q, d, NULL, pause, ef_on_answer, &a, err, sizeof err), &a);
}

/* The next commit fails as with a full disk. */
static void disk_full_once(ef_t *f)
{
    store_inject_enospc(f->st->store, 1);
}

static void publish_n(ef_t *f, const char *ch, int n)
{
    for (int i = 0; i < n; i++) {
        char data[16];
        snprintf(data, sizeof data, "m%d", i + 1);
        CHECK_EQ_STR(ef_publish(f, "c1", ch, data), "");
    }
}

static void check_channel(ef_t *f, const char *name, uint64_t first, uint64_t last, uint64_t msgs)
{
    stan_channel_info_t ci = ef_channel(f, name);
    CHECK_EQ_INT(ci.first_seq, first);
    CHECK_EQ_INT(ci.last_seq, last);
    CHECK_EQ_INT(ci.msgs, msgs);
}

static void start(ef_t *f)
{
    ef_init(f);
    ef_start(f);
    CHECK_EQ_STR(ef_connect(f, "c1"), "");
}

/* ---- purge ---- */

static void test_purge_with_live_subscriber(void)
{
    ef_t f;
    start(&f);
    ef_sub_opts_t o = {.max_inflight = 2, .ack_wait_s = 30};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    publish_n(&f, "foo", 5);
    ef_wait_msgs(s->inbox, 2); /* 1 and 2 unacked, 3..5 waiting for room */
    ef_settle(&f);
    CHECK_EQ_INT(s->inbox->n, 2);

    stan_admin_result_t r = purge(&f, "foo", 0);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 5);
    CHECK_EQ_INT(r.msgs, 0);
    CHECK_EQ_INT(r.first_seq, 6);
    CHECK_EQ_INT(r.last_seq, 5);
    check_channel(&f, "foo", 6, 5, 0);
    /* The unacked ones count as acked: the window is free, nothing is owed. */
    stan_sub_info_t si = ef_sub_info(&f, s);
    CHECK_EQ_INT(si.inflight_msgs, 0);
    CHECK_EQ_INT(si.backlog_msgs, 0);
    /* Past AckWait: the purged unacked messages are not redelivered, the others never sent. */
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(s->inbox->n, 2);
    /* The channel and its numbering stay: the next message is 6, and it is delivered. */
    publish_n(&f, "foo", 1);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 3)->seq, 6);
    ef_ack(&f, s, 6);
    ef_settle(&f);
    check_channel(&f, "foo", 6, 6, 1);
    ef_restart(&f);
    check_channel(&f, "foo", 6, 6, 1);
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(s->inbox->n, 3);
    CHECK_EQ_INT(ef_count_seq(s, 1), 1);
    CHECK_EQ_INT(ef_count_seq(s, 3), 0);
    ef_done(&f);
}

static void test_purge_upto(void)
{
    ef_t f;
    start(&f);
    publish_n(&f, "foo", 5);
    stan_admin_result_t r = purge(&f, "foo", 3);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 3);
    CHECK_EQ_INT(r.msgs, 2);
    CHECK_EQ_INT(r.first_seq, 4);
    CHECK_EQ_INT(r.last_seq, 5);
    /* Below the first: nothing to remove, still an answer. */
    r = purge(&f, "foo", 2);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 0);
    CHECK_EQ_INT(r.msgs, 2);
    ef_restart(&f);
    check_channel(&f, "foo", 4, 5, 2);
    ef_sub_opts_t o = {.start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 1)->seq, 4);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 2)->seq, 5);
    /* An unknown channel is refused at once. */
    ef_answer_t a = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_purge(f.st, "nope", 0, ef_on_answer, &a, err, sizeof err), STZ_ENOENT);
    CHECK(strstr(err, "nope") != NULL);
    ef_settle(&f);
    CHECK_EQ_INT(a.calls, 0);
    ef_done(&f);
}

static void test_purge_disk_full(void)
{
    ef_t f;
    start(&f);
    publish_n(&f, "foo", 3);
    disk_full_once(&f);
    stan_admin_result_t r = purge(&f, "foo", 0);
    CHECK_EQ_INT(r.status, STZ_ENOSPC);
    CHECK_EQ_INT(r.count, 0);
    CHECK_EQ_INT(r.msgs, 3);
    check_channel(&f, "foo", 1, 3, 3);
    ef_sub_opts_t o = {.start = PB__START_POSITION__First};
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &o);
    CHECK(s != NULL);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 3)->seq, 3);
    ef_restart(&f);
    check_channel(&f, "foo", 1, 3, 3);
    /* The disk has room again: the same command works. */
    CHECK_EQ_INT(purge(&f, "foo", 0).count, 3);
    check_channel(&f, "foo", 4, 3, 0);
    ef_done(&f);
}

/* A command accepted while a batch is in flight is staged once that batch has ended (the batch
 * in flight moves the channel's state when it completes); its own batch failing still leaves
 * everything as it was. */
static void test_purge_waits_for_batch_in_flight(void)
{
    ef_t f;
    start(&f);
    publish_n(&f, "foo", 5);
    ef_answer_t p = {0}, q = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_purge(f.st, "foo", 2, ef_on_answer, &p, err, sizeof err), 0);
    stan_commit_submit(&f.st->commit); /* its batch is in flight (as the loop would) */
    CHECK(store_in_flight(f.st->store));
    CHECK_EQ_INT(stan_admin_purge(f.st, "foo", 0, ef_on_answer, &q, err, sizeof err), 0);
    disk_full_once(&f); /* the second purge's batch, the next one */
    ef_settle(&f);
    CHECK_EQ_INT(p.calls, 1);
    CHECK_EQ_INT(p.r.status, 0);
    CHECK_EQ_INT(p.r.count, 2);
    CHECK_EQ_INT(q.calls, 1);
    CHECK_EQ_INT(q.r.status, STZ_ENOSPC);
    check_channel(&f, "foo", 3, 5, 3);
    ef_restart(&f);
    check_channel(&f, "foo", 3, 5, 3);
    ef_done(&f);
}

/* A command still waiting when the engine shuts down answers STZ_ECANCELED (and is freed). */
static void test_shutdown_cancels_waiting_command(void)
{
    ef_t f;
    start(&f);
    publish_n(&f, "foo", 2);
    ef_answer_t p = {0}, q = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_purge(f.st, "foo", 1, ef_on_answer, &p, err, sizeof err), 0);
    stan_commit_submit(&f.st->commit);
    CHECK(store_in_flight(f.st->store));
    CHECK_EQ_INT(stan_admin_delete_channel(f.st, "foo", false, ef_on_answer, &q, err, sizeof err),
                 0);
    ef_stop(&f);
    CHECK_EQ_INT(p.calls, 1);
    CHECK_EQ_INT(p.r.status, 0);
    CHECK_EQ_INT(q.calls, 1);
    CHECK_EQ_INT(q.r.status, STZ_ECANCELED);
    ef_start(&f);
    check_channel(&f, "foo", 2, 2, 1);
    ef_done(&f);
}

/* ---- delete-channel ---- */

static stan_admin_result_t delete_channel(ef_t *f, const char *ch, bool force)
{
    ef_answer_t a = {0};
    char err[256];
    return ef_answered(
        f, stan_admin_delete_channel(f->st, ch, force, ef_on_answer, &a, err, sizeof err), &a);
}

static void test_delete_channel(void)
{
    ef_t f;
    start(&f);
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", &(ef_sub_opts_t){.ack_wait_s = 30});
    ef_sub_t *d = ef_subscribe(&f, "c1", "foo", &(ef_sub_opts_t){.durable = "dur"});
    CHECK(s && d);
    CHECK_EQ_STR(ef_unsubscribe(&f, d, true), ""); /* an offline durable counts too */
    publish_n(&f, "foo", 2);
    ef_wait_msgs(s->inbox, 2);
    /* Refused while it has subscriptions. */
    ef_answer_t a = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_delete_channel(f.st, "foo", false, ef_on_answer, &a, err, sizeof err),
                 STZ_EBUSY);
    CHECK(strstr(err, "2 subscriptions") != NULL);
    ef_settle(&f);
    CHECK_EQ_INT(a.calls, 0);
    CHECK(ef_channel_exists(&f, "foo"));
    /* The disk full: nothing changes, the subscriber keeps getting messages. */
    disk_full_once(&f);
    stan_admin_result_t r = delete_channel(&f, "foo", true);
    CHECK_EQ_INT(r.status, STZ_ENOSPC);
    CHECK(ef_sub_listed(&f, "foo", s->inbox->subject));
    publish_n(&f, "foo", 1);
    CHECK_EQ_INT(ef_wait_msgs(s->inbox, 3)->seq, 3);
    /* Forced. */
    r = delete_channel(&f, "foo", true);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 2);
    CHECK_EQ_INT(r.msgs, 3);
    CHECK(!ef_channel_exists(&f, "foo"));
    stan_server_info_t si;
    stan_get_server_info(f.st, &si);
    CHECK_EQ_INT(si.subscriptions, 0);
    /* The subscriber gets nothing more: no redelivery of its unacked messages. */
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(s->inbox->n, 3);
    ef_restart(&f);
    CHECK(!ef_channel_exists(&f, "foo"));
    stan_get_server_info(f.st, &si);
    CHECK_EQ_INT(si.subscriptions, 0);
    /* The name is free: a publish creates a new, empty channel. */
    publish_n(&f, "foo", 1);
    check_channel(&f, "foo", 1, 1, 1);
    CHECK_EQ_INT(s->inbox->n, 3);
    ef_done(&f);
}

static void test_delete_channel_disk_full_survives_restart(void)
{
    ef_t f;
    start(&f);
    publish_n(&f, "foo", 2);
    disk_full_once(&f);
    CHECK_EQ_INT(delete_channel(&f, "foo", false).status, STZ_ENOSPC);
    check_channel(&f, "foo", 1, 2, 2);
    ef_restart(&f);
    check_channel(&f, "foo", 1, 2, 2);
    CHECK_EQ_INT(delete_channel(&f, "foo", false).msgs, 2);
    CHECK(!ef_channel_exists(&f, "foo"));
    ef_done(&f);
}

/* ---- delete-durable ---- */

static stan_admin_result_t delete_durable_of(ef_t *f, const char *ch, const char *durable,
                                             const char *queue, const char *client)
{
    ef_answer_t a = {0};
    char err[256];
    return ef_answered(f,
                       stan_admin_delete_durable(f->st, ch, durable, queue, client, ef_on_answer,
                                                 &a, err, sizeof err),
                       &a);
}

static stan_admin_result_t delete_durable(ef_t *f, const char *ch, const char *durable,
                                          const char *queue)
{
    return delete_durable_of(f, ch, durable, queue, NULL);
}

static void test_delete_durable(void)
{
    ef_t f;
    start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c2"), "");
    ef_sub_opts_t dur = {.durable = "d", .ack_wait_s = 30};
    ef_sub_t *off = ef_subscribe(&f, "c1", "foo", &dur);
    ef_sub_t *on = ef_subscribe(&f, "c1", "foo", &(ef_sub_opts_t){.durable = "e"});
    ef_sub_opts_t dq = {.durable = "dq", .qgroup = "w"};
    ef_sub_t *m1 = ef_subscribe(&f, "c1", "foo", &dq);
    ef_sub_t *m2 = ef_subscribe(&f, "c2", "foo", &dq);
    CHECK(off && on && m1 && m2);
    publish_n(&f, "foo", 2);
    ef_wait_msgs(off->inbox, 2);
    ef_ack(&f, off, 1);
    CHECK_EQ_STR(ef_unsubscribe(&f, off, true), "");
    /* Offline: gone, with its position and its unacked message 2. */
    stan_admin_result_t r = delete_durable(&f, "foo", "d", NULL);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 1);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 3);
    /* Online: gone too; its client is not told, it just gets nothing more. */
    size_t had = on->inbox->n;
    CHECK_EQ_INT(delete_durable(&f, "foo", "e", NULL).count, 1);
    /* A durable queue group: every member. */
    CHECK_EQ_INT(delete_durable(&f, "foo", "dq", "w").count, 2);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 0);
    publish_n(&f, "foo", 1);
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(on->inbox->n, had);
    CHECK_EQ_INT(off->inbox->n, 2);
    /* None comes back with a restart; the same durable name starts afresh. */
    ef_restart(&f);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 0);
    ef_sub_t *again = ef_subscribe(&f, "c1", "foo", &dur);
    CHECK(again != NULL);
    publish_n(&f, "foo", 1);
    CHECK_EQ_INT(ef_wait_msgs(again->inbox, 1)->seq, 4);
    ef_settle(&f);
    CHECK_EQ_INT(again->inbox->n, 1);
    /* What is not there. */
    ef_answer_t a = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_delete_durable(f.st, "foo", "nope", NULL, NULL, ef_on_answer, &a, err,
                                           sizeof err),
                 STZ_ENOENT);
    CHECK_EQ_INT(
        stan_admin_delete_durable(f.st, "foo", "d", "w", NULL, ef_on_answer, &a, err, sizeof err),
        STZ_ENOENT);
    CHECK_EQ_INT(
        stan_admin_delete_durable(f.st, "bar", "d", NULL, NULL, ef_on_answer, &a, err, sizeof err),
        STZ_ENOENT);
    /* The disk full: the durable stays, in memory and on disk. */
    disk_full_once(&f);
    CHECK_EQ_INT(delete_durable(&f, "foo", "d", NULL).status, STZ_ENOSPC);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    ef_restart(&f);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    CHECK_EQ_INT(a.calls, 0);
    ef_done(&f);
}

/* Two clients with a durable of the same name: a client names one of them. */
static void test_delete_durable_of_one_client(void)
{
    ef_t f;
    start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c2"), "");
    ef_sub_opts_t dur = {.durable = "d"};
    ef_sub_t *d1 = ef_subscribe(&f, "c1", "foo", &dur);
    ef_sub_t *d2 = ef_subscribe(&f, "c2", "foo", &dur);
    CHECK(d1 && d2);
    ef_answer_t a = {0};
    char err[256];
    CHECK_EQ_INT(
        stan_admin_delete_durable(f.st, "foo", "d", NULL, "c3", ef_on_answer, &a, err, sizeof err),
        STZ_ENOENT);
    CHECK(strstr(err, "client \"c3\"") != NULL);
    CHECK_EQ_INT(
        stan_admin_delete_durable(f.st, "foo", "d", "w", "c1", ef_on_answer, &a, err, sizeof err),
        STZ_EINVAL);
    CHECK_EQ_INT(a.calls, 0);
    /* Pausing c2's only: c1's keeps receiving. */
    ef_answer_t pa = {0};
    stan_admin_result_t r = ef_answered(
        &f,
        stan_admin_pause(f.st, "foo", NULL, "d", "c2", true, ef_on_answer, &pa, err, sizeof err),
        &pa);
    CHECK_EQ_INT(r.count, 1);
    publish_n(&f, "foo", 1);
    ef_wait_msgs(d1->inbox, 1);
    ef_settle(&f);
    CHECK_EQ_INT(d2->inbox->n, 0);
    CHECK(ef_sub_info(&f, d2).is_paused);
    CHECK(!ef_sub_info(&f, d1).is_paused);
    /* Deleting c2's only. */
    CHECK_EQ_INT(delete_durable_of(&f, "foo", "d", NULL, "c2").count, 1);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    publish_n(&f, "foo", 1);
    ef_wait_msgs(d1->inbox, 2);
    ef_restart(&f);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    ef_done(&f);
}

/* ---- close-client ---- */

static stan_admin_result_t close_client(ef_t *f, const char *id)
{
    ef_answer_t a = {0};
    char err[256];
    return ef_answered(f, stan_admin_close_client(f->st, id, ef_on_answer, &a, err, sizeof err),
                       &a);
}

static void test_close_client(void)
{
    ef_t f;
    start(&f);
    ef_sub_t *p = ef_subscribe(&f, "c1", "foo", NULL);
    ef_sub_t *d = ef_subscribe(&f, "c1", "foo", &(ef_sub_opts_t){.durable = "d"});
    CHECK(p && d);
    /* The disk full: the client stays, with its subscriptions. */
    disk_full_once(&f);
    CHECK_EQ_INT(close_client(&f, "c1").status, STZ_ENOSPC);
    CHECK(ef_client_exists(&f, "c1"));
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 2);
    ef_restart(&f);
    CHECK(ef_client_exists(&f, "c1"));

    stan_admin_result_t r = close_client(&f, "c1");
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 2);
    CHECK(!ef_client_exists(&f, "c1"));
    /* Its plain subscription is gone, its durable kept offline. */
    CHECK(!ef_sub_listed(&f, "foo", p->inbox->subject));
    CHECK(ef_sub_info(&f, d).is_offline);
    /* The ID is free at once, although its connection (the heartbeat inbox) may be alive. */
    ef_hb_listen(&f, "c1", true);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_restart(&f);
    CHECK_EQ_INT(ef_channel(&f, "foo").subs, 1);
    CHECK(ef_sub_info(&f, d).is_offline);
    ef_answer_t a = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_close_client(f.st, "nobody", ef_on_answer, &a, err, sizeof err),
                 STZ_ENOENT);
    ef_done(&f);
}

/* ---- pause and resume ---- */

static int first_row(void *arg, const stan_pending_row_t *r)
{
    *(bool *)arg = r->is_paused;
    return 1;
}

static bool group_paused(ef_t *f)
{
    bool paused = false;
    stan_pending_filter_t flt = {.channel = "foo", .queue = "w"};
    CHECK_EQ_INT(stan_foreach_pending_row(f->st, &flt, first_row, &paused), 0);
    return paused;
}

static void test_pause_queue_group(void)
{
    ef_t f;
    start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c2"), "");
    ef_sub_opts_t q = {.qgroup = "w", .ack_wait_s = 30};
    ef_sub_t *a = ef_subscribe(&f, "c1", "foo", &q);
    ef_sub_t *b = ef_subscribe(&f, "c2", "foo", &q);
    CHECK(a && b);
    publish_n(&f, "foo", 2);
    ef_settle(&f);
    CHECK_EQ_INT(a->inbox->n + b->inbox->n, 2); /* unacked */

    stan_admin_result_t r = pause_queue(&f, "foo", "w", NULL, true);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 2);
    CHECK(ef_sub_info(&f, a).is_paused && ef_sub_info(&f, b).is_paused);
    CHECK(group_paused(&f));
    /* Held: new messages and redeliveries past AckWait. */
    publish_n(&f, "foo", 2);
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(a->inbox->n + b->inbox->n, 2);
    /* A member joining a paused group is paused. */
    ef_sub_t *c = ef_subscribe(&f, "c1", "foo", &q);
    CHECK(c != NULL);
    CHECK(ef_sub_info(&f, c).is_paused);
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(a->inbox->n + b->inbox->n + c->inbox->n, 2);
    /* Persisted. */
    ef_restart(&f);
    CHECK(ef_sub_info(&f, a).is_paused && ef_sub_info(&f, c).is_paused);
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(a->inbox->n + b->inbox->n + c->inbox->n, 2);

    /* Resumed: the two new messages and the two past AckWait go out at once. */
    r = pause_queue(&f, "foo", "w", NULL, false);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.count, 3);
    CHECK(!group_paused(&f));
    CHECK_EQ_INT(a->inbox->n + b->inbox->n + c->inbox->n, 6);
    for (uint64_t seq = 1; seq <= 4; seq++)
        CHECK(ef_count_seq(a, seq) + ef_count_seq(b, seq) + ef_count_seq(c, seq) ==
              (seq <= 2 ? 2u : 1u));
    ef_restart(&f);
    CHECK(!ef_sub_info(&f, a).is_paused);
    ef_done(&f);
}

static void test_pause_durable_and_disk_full(void)
{
    ef_t f;
    start(&f);
    ef_sub_t *d = ef_subscribe(&f, "c1", "foo", &(ef_sub_opts_t){.durable = "d"});
    CHECK(d != NULL);
    /* The disk full: not paused, deliveries flow, and not after a restart either. */
    disk_full_once(&f);
    CHECK_EQ_INT(pause_queue(&f, "foo", NULL, "d", true).status, STZ_ENOSPC);
    CHECK(!ef_sub_info(&f, d).is_paused);
    publish_n(&f, "foo", 1);
    ef_wait_msgs(d->inbox, 1);
    ef_restart(&f);
    CHECK(!ef_sub_info(&f, d).is_paused);
    /* Paused, then a failed resume leaves it paused. */
    CHECK_EQ_INT(pause_queue(&f, "foo", NULL, "d", true).count, 1);
    disk_full_once(&f);
    CHECK_EQ_INT(pause_queue(&f, "foo", NULL, "d", false).status, STZ_ENOSPC);
    CHECK(ef_sub_info(&f, d).is_paused);
    publish_n(&f, "foo", 1);
    ef_advance(&f, 31 * EF_SEC);
    CHECK_EQ_INT(ef_count_seq(d, 2), 0);
    ef_restart(&f);
    CHECK(ef_sub_info(&f, d).is_paused);
    CHECK_EQ_INT(ef_count_seq(d, 1), 1); /* its redelivery after the restart is held too */
    /* Resumed: the new message and the redelivery due go out at once. */
    CHECK_EQ_INT(pause_queue(&f, "foo", NULL, "d", false).count, 1);
    CHECK_EQ_INT(ef_count_seq(d, 1), 2);
    CHECK_EQ_INT(ef_count_seq(d, 2), 1);
    /* What is not there. */
    ef_answer_t a = {0};
    char err[256];
    CHECK_EQ_INT(
        stan_admin_pause(f.st, "foo", "nope", NULL, NULL, true, ef_on_answer, &a, err, sizeof err),
        STZ_ENOENT);
    CHECK_EQ_INT(
        stan_admin_pause(f.st, "foo", NULL, NULL, NULL, true, ef_on_answer, &a, err, sizeof err),
        STZ_EINVAL);
    CHECK_EQ_INT(a.calls, 0);
    ef_done(&f);
}

/* ---- reading a message ---- */

/* What msg_read handed over (copied: its pointers are only valid during the call). */
typedef struct seen {
    int calls;
    char channel[32], data[64];
    uint64_t seq;
    int64_t ts;
    bool dead;
    char origin[32]; /* a dead letter's record */
    uint64_t origin_seq;
    uint32_t deliveries;
} seen_t;

static void on_msg(void *arg, const stan_admin_msg_t *m)
{
    seen_t *s = arg;
    s->calls++;
    snprintf(s->channel, sizeof s->channel, "%s", m->channel);
    snprintf(s->data, sizeof s->data, "%.*s", (int)m->len, (const char *)m->data);
    s->seq = m->seq;
    s->ts = m->ts;
    s->dead = m->dead != NULL;
    CHECK_EQ_INT(m->reply_len, 0);
    if (!m->dead) return;
    snprintf(s->origin, sizeof s->origin, "%s", m->dead->origin);
    s->origin_seq = m->dead->origin_seq;
    s->deliveries = m->dead->deliveries;
}

static void test_msg_read(void)
{
    ef_t f;
    start(&f);
    ef_sub_t *s = ef_subscribe(&f, "c1", "foo", NULL);
    CHECK(s != NULL);
    publish_n(&f, "foo", 3);
    ef_wait_msgs(s->inbox, 3);
    seen_t m = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_msg_read(f.st, "foo", 2, on_msg, &m, err, sizeof err), 0);
    CHECK_EQ_INT(m.calls, 1);
    CHECK_EQ_STR(m.channel, "foo");
    CHECK_EQ_STR(m.data, "m2");
    CHECK_EQ_INT(m.seq, 2);
    CHECK_EQ_INT(m.ts, ef_msg(s, 1)->timestamp);
    CHECK(!m.dead);
    CHECK_EQ_INT(stan_admin_msg_read(f.st, "foo", 4, on_msg, &m, err, sizeof err), STZ_ENOENT);
    CHECK_EQ_INT(stan_admin_msg_read(f.st, "bar", 1, on_msg, &m, err, sizeof err), STZ_ENOENT);
    CHECK_EQ_INT(stan_admin_msg_read(f.st, "foo", 0, on_msg, &m, err, sizeof err), STZ_EINVAL);
    CHECK_EQ_INT(purge(&f, "foo", 1).count, 1);
    CHECK_EQ_INT(stan_admin_msg_read(f.st, "foo", 1, on_msg, &m, err, sizeof err), STZ_ENOENT);
    CHECK_EQ_INT(m.calls, 1);
    ef_done(&f);
}

/* A message of a dead-letter channel comes with its record. */
static void test_msg_read_dead_letter(void)
{
    ef_t f;
    ef_init(&f);
    f.cfg.limits.max_deliveries = 2;
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    ef_sub_t *s = ef_subscribe(&f, "c1", "jobs", &(ef_sub_opts_t){.ack_wait_s = 1});
    CHECK(s != NULL);
    CHECK_EQ_STR(ef_publish(&f, "c1", "jobs", "poison"), "");
    ef_wait_msgs(s->inbox, 1);
    for (int i = 0; i < 3; i++)
        ef_advance(&f, 2 * EF_SEC); /* redelivered once, then dead-lettered */
    CHECK_EQ_INT(ef_count_seq(s, 1), 2);
    seen_t d = {0};
    char err[256];
    CHECK_EQ_INT(stan_admin_msg_read(f.st, "jobs.dead", 1, on_msg, &d, err, sizeof err), 0);
    CHECK_EQ_INT(d.calls, 1);
    CHECK(d.dead);
    CHECK_EQ_STR(d.data, "poison");
    CHECK_EQ_STR(d.origin, "jobs");
    CHECK_EQ_INT(d.origin_seq, 1);
    CHECK_EQ_INT(d.deliveries, 2);
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_purge_with_live_subscriber);
    TEST_RUN(test_purge_upto);
    TEST_RUN(test_purge_disk_full);
    TEST_RUN(test_purge_waits_for_batch_in_flight);
    TEST_RUN(test_shutdown_cancels_waiting_command);
    TEST_RUN(test_delete_channel);
    TEST_RUN(test_delete_channel_disk_full_survives_restart);
    TEST_RUN(test_delete_durable);
    TEST_RUN(test_delete_durable_of_one_client);
    TEST_RUN(test_close_client);
    TEST_RUN(test_pause_queue_group);
    TEST_RUN(test_pause_durable_and_disk_full);
    TEST_RUN(test_msg_read);
    TEST_RUN(test_msg_read_dead_letter);
    return test_summary();
}
