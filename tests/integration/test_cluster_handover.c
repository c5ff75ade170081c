/* it_cluster_handover: the streaming engine's fast hand-over across a route. The engine runs on
 * node 0; a worker (a libnats STAN queue subscriber with ManualAck and a 10-minute AckWait, run
 * as it_stan_handover's worker mode) is connected to node 1 and SIGKILLed holding a job. Node 1
 * sees its connection drop and withdraws its interest (RS-); node 0 must take that as the
 * worker's inbox losing its listener (the sub-gone hook, as for a local client), so the job
 * reaches the other member of the group within handover_grace plus a second, not after the
 * AckWait or the heartbeats. */
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_cluster.h"
#include "harness_stan.h"
#include "test.h"

#define GRACE_MS 500
#define T_MS 10000

static struct hnode nodes[2];

/* it_stan_handover, built beside this test, has the worker mode. */
static void worker_path(char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    self[n] = '\0';
    snprintf(out, len, "%s/it_stan_handover", dirname(self));
    CHECK(access(out, X_OK) == 0);
}

static void test_worker_on_other_node_killed(void)
{
    char dir[PATH_MAX], out[PATH_MAX + 16], worker_bin[PATH_MAX + 32];
    CHECK(hmkdtemp(dir, sizeof dir) == 0);
    snprintf(out, sizeof out, "%s/worker.out", dir);
    worker_path(worker_bin, sizeof worker_bin);
    const char *argv[] = {worker_bin, "worker", nodes[1].s.url, "far-worker", "cl.jobs", "workers",
                          "",         NULL};
    struct hproc worker;
    CHECK(hproc_spawn(&worker, argv, NULL, out, out) == 0);
    if (!hfile_wait_contains(out, "ready", T_MS)) hfile_dump("worker", out);
    CHECK(hfile_wait_contains(out, "ready", 1));

    stanConnection *pc = hstan_connect_or_die(&nodes[0].s, "pub");
    CHECK(hstan_pub(pc, "cl.jobs", "job1") == NATS_OK);
    CHECK(hfile_wait_contains(out, "got seq=1 redelivered=0", T_MS));

    stanConnection *cb = hstan_connect_or_die(&nodes[0].s, "survivor");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_HANDLER);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetAckWait(o, 10 * 60 * 1000) == NATS_OK);
    stanSubscription *b = NULL;
    CHECK(hstan_sub(&b, cb, "cl.jobs", "workers", &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    hstan_flush(cb);
    CHECK_EQ_INT(hstan_rx_count(&rx), 0);

    int64_t t0 = harness_now_ms();
    CHECK_EQ_INT(hproc_stop(&worker, SIGKILL, T_MS), 128 + SIGKILL);
    int64_t left = t0 + GRACE_MS + 1000 - harness_now_ms();
    bool got = hstan_rx_wait(&rx, 1, left > 0 ? (int)left : 1);
    fprintf(stderr, "   the job reached the other member %lld ms after the kill\n",
            (long long)(harness_now_ms() - t0));
    if (!got) harness_dump_log(&nodes[0].s);
    CHECK(got);
    struct hstan_rec r = hstan_rx_get(&rx, 0);
    CHECK_EQ_INT(r.seq, 1);
    CHECK(r.redelivered);

    stanSubscription_Destroy(b);
    CHECK(stanConnection_Destroy(cb) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rx);
    hremove_tree(dir);
}

int main(void)
{
    char grace[32];
    snprintf(grace, sizeof grace, "%dms", GRACE_MS);
    const char *args[] = {"--handover_grace", grace, NULL};
    CHECK(hcluster_start(nodes, 2, "ho", args) == 0);
    natsConnection *a = NULL, *b = NULL;
    CHECK(hcluster_connect(nodes[0].s.url, &a) == NATS_OK);
    CHECK(hcluster_connect(nodes[1].s.url, &b) == NATS_OK);
    CHECK(hcluster_wait_propagated(a, b, T_MS));
    CHECK(hcluster_wait_propagated(b, a, T_MS));
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    TEST_RUN(test_worker_on_other_node_killed);
    CHECK(hcluster_stop(nodes, 2) == 0);
    nats_CloseAndWait(5000);
    return test_summary();
}
