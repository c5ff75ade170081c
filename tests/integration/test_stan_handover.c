/* it_stan_handover: fast hand-over through libnats against a real stanzad. A worker process (this
 * program again, forked and exec'ed in worker mode: a libnats STAN queue subscriber with
 * ManualAck and an AckWait of 10 minutes, as slow jobs have) takes a job and is SIGKILLed
 * without acking it. The other member of its group must get that job, flagged redelivered,
 * within handover_grace plus a second of the kill, not 10 minutes later; and not before the
 * grace is over. Plain queue groups and durable queue groups alike. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define GRACE_MS 2000
#define ACK_WAIT_MS (10 * 60 * 1000)
#define T_MS 10000

static struct hserver srv;

/* ---- worker mode: argv = self "worker" URL CLIENT CHANNEL GROUP DURABLE ("" = none) ---- */

/* Prints each message it gets and never acks it. */
static void worker_on_msg(stanConnection *sc, stanSubscription *sub, const char *channel,
                          stanMsg *msg, void *closure)
{
    printf("got seq=%llu redelivered=%d\n", (unsigned long long)stanMsg_GetSequence(msg),
           stanMsg_IsRedelivered(msg) ? 1 : 0);
    fflush(stdout);
    stanMsg_Destroy(msg);
}

static int worker_main(char **argv)
{
    const char *url = argv[2], *client = argv[3], *ch = argv[4], *group = argv[5];
    const char *durable = argv[6];
    stanConnOptions *co = NULL;
    stanSubOptions *so = NULL;
    stanConnection *sc = NULL;
    stanSubscription *sub = NULL;
    natsStatus st = stanConnOptions_Create(&co);
    if (st == NATS_OK) st = stanConnOptions_SetURL(co, url);
    if (st == NATS_OK) st = stanConnection_Connect(&sc, HSTAN_CLUSTER, client, co);
    if (st == NATS_OK) st = stanSubOptions_Create(&so);
    if (st == NATS_OK) st = stanSubOptions_SetManualAckMode(so, true);
    if (st == NATS_OK) st = stanSubOptions_SetAckWait(so, ACK_WAIT_MS);
    if (st == NATS_OK && durable[0]) st = stanSubOptions_SetDurableName(so, durable);
    if (st == NATS_OK)
        st = stanConnection_QueueSubscribe(&sub, sc, ch, group, worker_on_msg, NULL, so);
    if (st != NATS_OK) {
        printf("worker failed: %s (%s)\n", natsStatus_GetText(st), nats_GetLastError(NULL));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause(); /* until the test kills it */
}

/* ---- the test ---- */

static void check_killed_worker(const char *ch, const char *durable, const char *client)
{
    char dir[PATH_MAX], out[PATH_MAX + 16], self[PATH_MAX];
    CHECK(hmkdtemp(dir, sizeof dir) == 0);
    snprintf(out, sizeof out, "%s/worker.out", dir);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    self[n] = '\0';
    const char *argv[] = {self, "worker", srv.url, client, ch, "workers", durable, NULL};
    struct hproc worker;
    CHECK(hproc_spawn(&worker, argv, NULL, out, out) == 0);
    if (!hfile_wait_contains(out, "ready", T_MS)) hfile_dump("worker", out);
    CHECK(hfile_wait_contains(out, "ready", 1));

    /* The worker is the group's only member: the job is its. */
    stanConnection *pc = hstan_connect_or_die(&srv, "pub");
    CHECK(hstan_pub(pc, ch, "job1") == NATS_OK);
    CHECK(hfile_wait_contains(out, "got seq=1 redelivered=0", T_MS));

    /* The other member: it acks what it gets. */
    stanConnection *cb = hstan_connect_or_die(&srv, "survivor");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_HANDLER);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetAckWait(o, ACK_WAIT_MS) == NATS_OK);
    if (durable[0]) CHECK(stanSubOptions_SetDurableName(o, durable) == NATS_OK);
    stanSubscription *b = NULL;
    CHECK(hstan_sub(&b, cb, ch, "workers", &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    hstan_flush(cb);
    CHECK_EQ_INT(hstan_rx_count(&rx), 0);

    int64_t t0 = harness_now_ms();
    CHECK_EQ_INT(hproc_stop(&worker, SIGKILL, T_MS), 128 + SIGKILL);
    int64_t left = t0 + GRACE_MS + 1000 - harness_now_ms();
    bool got = hstan_rx_wait(&rx, 1, left > 0 ? (int)left : 1);
    int64_t took = harness_now_ms() - t0;
    fprintf(stderr, "   the killed worker's job reached the other member %lld ms after the kill\n",
            (long long)took);
    if (!got) harness_dump_log(&srv);
    CHECK(got);
    struct hstan_rec r = hstan_rx_get(&rx, 0);
    CHECK_EQ_INT(r.seq, 1);
    CHECK_EQ_STR(r.data, "job1");
    CHECK(r.redelivered);
    /* Not before the grace: the server waited for the worker to come back. */
    CHECK(took >= GRACE_MS - 100);
    /* And new jobs go to the member that is there. */
    CHECK(hstan_pub(pc, ch, "job2") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 2, T_MS));
    CHECK_EQ_INT(hstan_rx_get(&rx, 1).seq, 2);

    stanSubscription_Destroy(b);
    CHECK(stanConnection_Destroy(cb) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rx);
    hremove_tree(dir);
}

static void test_killed_worker_job_moves_after_the_grace(void)
{
    check_killed_worker("ho.jobs", "", "worker-1");
}

static void test_killed_worker_durable_group(void)
{
    check_killed_worker("ho.durable", "dur", "worker-2");
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "worker") == 0) return worker_main(argv);
    char grace[32];
    snprintf(grace, sizeof grace, "%dms", GRACE_MS);
    const char *args[] = {"--store", "MEMORY", "--handover_grace", grace, "-SD", NULL};
    CHECK(harness_server_start(&srv, NULL, args) == 0);
    HSTAN_RUN(test_killed_worker_job_moves_after_the_grace);
    HSTAN_RUN(test_killed_worker_durable_group);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);
    nats_CloseAndWait(5000);
    return test_summary();
}
