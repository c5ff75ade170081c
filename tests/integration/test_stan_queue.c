/* it_stan_queue: STAN queue groups (NSS semantics, stan-reference.md): each message to exactly
 * one member, a leaving member's unacked messages reassigned to the others at once, durable queue
 * groups that outlive their members, and the ':' rule for durable queue names.
 *
 * Members of one group usually share one collector (struct hstan_rx), which records the
 * subscription each message came on. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 5000
#define T_LONG_MS 10000

static struct hserver srv; /* MEMORY store; each test uses its own channels */

static stanSubscription *qsub(stanConnection *sc, const char *ch, const char *group,
                              const char *durable, struct hstan_rx *rx, bool deliver_all)
{
    stanSubOptions *o = hstan_subopts();
    if (durable) CHECK(stanSubOptions_SetDurableName(o, durable) == NATS_OK);
    if (deliver_all) CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    natsStatus st = hstan_sub(&sub, sc, ch, group, rx, o);
    if (st != NATS_OK)
        fprintf(stderr, "queue subscribe %s/%s: %s (%s)\n", ch, group, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    stanSubOptions_Destroy(o);
    return sub;
}

/* Records [from, from+n) are sequences first.. with payload "m<seq>" and the given flag. */
static void expect_run(struct hstan_rx *rx, int from, uint64_t first, int n, bool redelivered)
{
    for (int k = 0; k < n; k++) {
        struct hstan_rec r = hstan_rx_get(rx, from + k);
        char want[32];
        snprintf(want, sizeof(want), "m%llu", (unsigned long long)(first + (uint64_t)k));
        if (r.seq != first + (uint64_t)k || r.redelivered != redelivered ||
            strcmp(r.data, want) != 0) {
            fprintf(stderr, "record %d: want seq %llu \"%s\"%s\n", from + k,
                    (unsigned long long)(first + (uint64_t)k), want,
                    redelivered ? " (redelivered)" : "");
            hstan_rx_dump(rx, "received");
            CHECK(false);
        }
    }
}

static void test_queue_split(void)
{
    enum { N = 100 };
    const char *ch = "q.split";
    stanConnection *pc = hstan_connect_or_die(&srv, "split-pub");
    stanConnection *ca = hstan_connect_or_die(&srv, "split-a");
    stanConnection *cb = hstan_connect_or_die(&srv, "split-b");
    struct hstan_rx rx;
    hstan_rx_init(&rx, N + 16, HSTAN_ACK_HANDLER);
    stanSubscription *a = qsub(ca, ch, "g", NULL, &rx, false);
    stanSubscription *b = qsub(cb, ch, "g", NULL, &rx, false);
    hstan_pub_range(pc, ch, "m%d", 1, N);
    CHECK(hstan_rx_wait(&rx, N, T_LONG_MS));
    /* One more closes the list: anything duplicated would have shown up by now. */
    char last[16];
    snprintf(last, sizeof(last), "m%d", N + 1);
    CHECK(hstan_pub(pc, ch, last) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, N + 1, T_MS));
    CHECK(hstan_pub(pc, "q.split.other", "x") == NATS_OK);
    hstan_flush(ca);
    hstan_flush(cb);
    CHECK_EQ_INT(hstan_rx_count(&rx), N + 1);

    static int seen[N + 2];
    memset(seen, 0, sizeof(seen));
    int to_a = 0, to_b = 0;
    for (int i = 0; i <= N; i++) {
        struct hstan_rec r = hstan_rx_get(&rx, i);
        CHECK(r.seq >= 1 && r.seq <= N + 1);
        CHECK(!r.redelivered);
        char want[16];
        snprintf(want, sizeof(want), "m%llu", (unsigned long long)r.seq);
        CHECK_EQ_STR(r.data, want);
        seen[r.seq]++;
        stanSubscription *from = rx.subs[i];
        CHECK(from == a || from == b);
        if (from == a) to_a++;
        if (from == b) to_b++;
    }
    for (int s = 1; s <= N + 1; s++) {
        if (seen[s] != 1) fprintf(stderr, "sequence %d delivered %d times\n", s, seen[s]);
        CHECK_EQ_INT(seen[s], 1);
    }
    fprintf(stderr, "   member a got %d, member b got %d\n", to_a, to_b);
    CHECK(to_a > 0 && to_b > 0);
    CHECK_EQ_INT(rx.ack_errors, 0);
    CHECK_EQ_INT(rx.acks, N + 1);

    stanSubscription_Destroy(a);
    stanSubscription_Destroy(b);
    CHECK(stanConnection_Destroy(ca) == NATS_OK);
    CHECK(stanConnection_Destroy(cb) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rx);
}

/* Member A holds m1..m3 unacked (AckWait 30 s); B joins; A leaves. B must get them at once. */
static void check_member_leaves(const char *ch, bool by_connection_close)
{
    stanConnection *pc = hstan_connect_or_die(&srv, "leave-pub");
    stanConnection *ca = hstan_connect_or_die(&srv, "leave-a");
    stanConnection *cb = hstan_connect_or_die(&srv, "leave-b");
    struct hstan_rx rxa, rxb;
    hstan_rx_init(&rxa, 16, HSTAN_ACK_TEST); /* never acks */
    hstan_rx_init(&rxb, 16, HSTAN_ACK_HANDLER);
    stanSubscription *a = qsub(ca, ch, "g", NULL, &rxa, false);
    hstan_pub_range(pc, ch, "m%d", 1, 3);
    CHECK(hstan_rx_wait(&rxa, 3, T_MS));
    expect_run(&rxa, 0, 1, 3, false);
    stanSubscription *b = qsub(cb, ch, "g", NULL, &rxb, false);
    CHECK_EQ_INT(hstan_rx_count(&rxb), 0);

    int64_t t0 = harness_now_ms();
    if (by_connection_close) {
        CHECK(stanConnection_Close(ca) == NATS_OK);
    } else {
        CHECK(stanSubscription_Close(a) == NATS_OK);
    }
    CHECK(hstan_rx_wait(&rxb, 3, T_MS));
    int64_t took = harness_now_ms() - t0;
    fprintf(stderr, "   reassigned to the remaining member in %lld ms\n", (long long)took);
    CHECK(took < 5000); /* far below the 30 s AckWait */
    expect_run(&rxb, 0, 1, 3, true);
    /* New messages keep flowing to B, and nothing else was queued before them. */
    CHECK(hstan_pub(pc, ch, "m4") == NATS_OK);
    CHECK(hstan_rx_wait(&rxb, 4, T_MS));
    expect_run(&rxb, 3, 4, 1, false);
    CHECK_EQ_INT(hstan_rx_count(&rxa), 3);

    stanSubscription_Destroy(a);
    stanSubscription_Destroy(b);
    stanConnection_Destroy(ca); /* may report the close already done */
    CHECK(stanConnection_Destroy(cb) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rxa);
    hstan_rx_destroy(&rxb);
}

static void test_member_leaves_by_sub_close(void)
{
    check_member_leaves("q.leave.sub", false);
}

static void test_member_leaves_by_connection_close(void)
{
    check_member_leaves("q.leave.conn", true);
}

/* A worker process that dies (kill -9: no close request, its NATS connection just drops) while
 * holding unacked jobs: once their AckWait expires they go to the member that is still there,
 * flagged redelivered, without waiting minutes for heartbeats to declare the dead one gone. */
static void test_killed_member_jobs_move(void)
{
    const char *ch = "q.killed";
    char dir[PATH_MAX], out[PATH_MAX + 16];
    CHECK(hmkdtemp(dir, sizeof dir) == 0);
    snprintf(out, sizeof out, "%s/worker.out", dir);
    const char *cli = getenv("STANZA_CLI");
    CHECK(cli != NULL);
    const char *argv[] = {cli,       "-s", srv.url,        "--client-id", "worker-a", "sub", ch,
                          "--queue", "g",  "--manual-ack", "--ack-wait",  "1",        NULL};
    struct hproc worker;
    CHECK(hproc_spawn(&worker, argv, NULL, out, out) == 0);
    CHECK(hfile_wait_contains(out, "Listening on", T_MS));

    stanConnection *pc = hstan_connect_or_die(&srv, "killed-pub");
    hstan_pub_range(pc, ch, "m%d", 1, 3);
    CHECK(hfile_wait_count(out, "redelivered=false", 3, T_MS)); /* the worker holds all three */

    stanConnection *cb = hstan_connect_or_die(&srv, "survivor");
    struct hstan_rx rxb;
    hstan_rx_init(&rxb, 32, HSTAN_ACK_HANDLER);
    stanSubscription *b = qsub(cb, ch, "g", NULL, &rxb, false);
    CHECK_EQ_INT(hstan_rx_count(&rxb), 0);

    int64_t t0 = harness_now_ms();
    CHECK_EQ_INT(hproc_stop(&worker, SIGKILL, T_MS), 128 + SIGKILL);
    CHECK(hstan_rx_wait(&rxb, 3, T_MS));
    int64_t took = harness_now_ms() - t0;
    fprintf(stderr, "   the dead worker's jobs reached the survivor in %lld ms\n", (long long)took);
    for (int k = 0; k < 3; k++)
        CHECK(hstan_rx_get(&rxb, k).redelivered);
    /* And it keeps getting new ones. */
    CHECK(hstan_pub(pc, ch, "m4") == NATS_OK);
    CHECK(hstan_rx_wait(&rxb, 4, T_MS));

    stanSubscription_Destroy(b);
    CHECK(stanConnection_Destroy(cb) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rxb);
    hremove_tree(dir);
}

static void test_durable_queue_survives_members(void)
{
    const char *ch = "q.dur";
    stanConnection *pc = hstan_connect_or_die(&srv, "dq-pub");
    stanConnection *c1 = hstan_connect_or_die(&srv, "dq-1");
    stanConnection *c2 = hstan_connect_or_die(&srv, "dq-2");
    struct hstan_rx rx12, rx3, rx4;
    hstan_rx_init(&rx12, 32, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx3, 32, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx4, 32, HSTAN_ACK_HANDLER);
    stanSubscription *m1 = qsub(c1, ch, "g", "dq", &rx12, true);
    stanSubscription *m2 = qsub(c2, ch, "g", "dq", &rx12, true);
    hstan_pub_range(pc, ch, "m%d", 1, 10);
    CHECK(hstan_rx_wait(&rx12, 10, T_MS));
    CHECK_EQ_INT(rx12.ack_errors, 0);
    /* Every member leaves (their acks travel before their close requests). */
    CHECK(stanConnection_Close(c1) == NATS_OK);
    CHECK(stanConnection_Close(c2) == NATS_OK);
    stanSubscription_Destroy(m1);
    stanSubscription_Destroy(m2);
    CHECK(stanConnection_Destroy(c1) == NATS_OK);
    CHECK(stanConnection_Destroy(c2) == NATS_OK);

    hstan_pub_range(pc, ch, "m%d", 11, 15);
    /* A new member of the same durable group resumes where the group was (its start position is
     * ignored), getting exactly the new messages. */
    stanConnection *c3 = hstan_connect_or_die(&srv, "dq-3");
    stanSubscription *m3 = qsub(c3, ch, "g", "dq", &rx3, true);
    CHECK(hstan_rx_wait(&rx3, 5, T_MS));
    CHECK(hstan_pub(pc, ch, "m16") == NATS_OK);
    CHECK(hstan_rx_wait(&rx3, 6, T_MS));
    expect_run(&rx3, 0, 11, 6, false);
    CHECK_EQ_INT(hstan_rx_count(&rx3), 6);

    /* Unsubscribe by the last member deletes the group: the name starts over. */
    CHECK(stanSubscription_Unsubscribe(m3) == NATS_OK);
    stanSubscription_Destroy(m3);
    stanSubscription *m4 = qsub(c3, ch, "g", "dq", &rx4, true);
    CHECK(hstan_rx_wait(&rx4, 16, T_MS));
    expect_run(&rx4, 0, 1, 16, false);
    CHECK(stanSubscription_Unsubscribe(m4) == NATS_OK);
    stanSubscription_Destroy(m4);
    CHECK(stanConnection_Destroy(c3) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rx12);
    hstan_rx_destroy(&rx3);
    hstan_rx_destroy(&rx4);
}

static void test_durable_queue_name_colon(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "colon");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 8, HSTAN_ACK_HANDLER);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, "a:b") == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "q.colon", "g", &rx, o) != NATS_OK);
    CHECK(sub == NULL);
    CHECK(hstan_last_error_contains(
        "durable name of a durable queue subscriber can't contain the character ':'"));
    /* The rule is for durable queue subscribers only: a plain durable may use ':'. */
    CHECK(hstan_sub(&sub, sc, "q.colon", NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_pub(sc, "q.colon", "m1") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    expect_run(&rx, 0, 1, 1, false);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
}

int main(void)
{
    const char *args[] = {"--store", "MEMORY", NULL};
    CHECK(harness_server_start(&srv, NULL, args) == 0);
    HSTAN_RUN(test_queue_split);
    HSTAN_RUN(test_member_leaves_by_sub_close);
    HSTAN_RUN(test_member_leaves_by_connection_close);
    HSTAN_RUN(test_killed_member_jobs_move);
    HSTAN_RUN(test_durable_queue_survives_members);
    HSTAN_RUN(test_durable_queue_name_colon);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);
    nats_CloseAndWait(5000);
    return test_summary();
}
