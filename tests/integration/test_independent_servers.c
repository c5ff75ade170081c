/* it_independent_servers: the pattern NSS users ran before clustering (docs/clustering.md, "Three
 * independent servers"): three standalone stanzads, each with its own NATS server and store, and
 * every service connected to all three. A publisher spreads jobs over the servers that are up; a
 * worker holds a durable queue subscription on each. One server is SIGKILLed while it holds jobs
 * nobody has received, the others carry on, and once it is restarted on its store the worker gets
 * those too: every acknowledged job is delivered. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness_stan.h"
#include "test.h"

#define N 3
#define JOBS 80

static struct hserver srv[N];
static char dirs[N][PATH_MAX - 64];
static const char *args[N][5];
static bool up[N];

static void start_all(void)
{
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(hmkdtemp(dirs[i], sizeof dirs[i]), 0);
        const char *a[] = {"--store", "FILE", "--dir", dirs[i], NULL};
        memcpy(args[i], a, sizeof a);
        CHECK_EQ_INT(harness_server_start(&srv[i], NULL, args[i]), 0);
        up[i] = true;
    }
}

/* Jobs first..last, each to the next server that is up (as a client library or a load balancer
 * with health checks would), each acknowledged. */
static void publish(stanConnection *pub[N], int first, int last)
{
    char payload[16];
    int next = 0;
    for (int k = first; k <= last; k++) {
        while (!up[next % N])
            next++;
        snprintf(payload, sizeof payload, "m%d", k);
        CHECK_EQ_INT(hstan_pub(pub[next % N], "jobs", payload), NATS_OK);
        next++;
    }
}

/* The worker: a durable queue member on every server that is up. */
struct worker {
    stanConnection *sc[N];
    stanSubscription *sub[N];
};

static void worker_join(struct worker *w, int i, struct hstan_rx *rx)
{
    w->sc[i] = hstan_connect_or_die(&srv[i], "worker");
    stanSubOptions *o = hstan_subopts();
    stanSubOptions_DeliverAllAvailable(o);
    stanSubOptions_SetDurableName(o, "w");
    CHECK_EQ_INT(hstan_sub(&w->sub[i], w->sc[i], "jobs", "workers", rx, o), NATS_OK);
    stanSubOptions_Destroy(o);
}

/* Closing the connection keeps the durable member: the server holds its place. */
static void worker_leave(struct worker *w, int i)
{
    stanSubscription_Destroy(w->sub[i]);
    CHECK_EQ_INT(stanConnection_Close(w->sc[i]), NATS_OK);
    stanConnection_Destroy(w->sc[i]);
    w->sc[i] = NULL;
}

static void check_all_received(struct hstan_rx *rx)
{
    bool got[JOBS] = {0};
    for (int i = 0; i < hstan_rx_count(rx); i++) {
        int k;
        if (sscanf(hstan_rx_get(rx, i).data, "m%d", &k) == 1 && k >= 0 && k < JOBS) got[k] = true;
    }
    int missing = 0;
    for (int k = 0; k < JOBS; k++)
        if (!got[k]) fprintf(stderr, "job m%d never delivered\n", k), missing++;
    CHECK_EQ_INT(missing, 0);
}

static void test_three_independent_servers(void)
{
    start_all();
    stanConnection *pub[N];
    struct worker w = {0};
    struct hstan_rx rx;
    hstan_rx_init(&rx, 4 * JOBS, HSTAN_ACK_AUTO);
    for (int i = 0; i < N; i++) {
        pub[i] = hstan_connect_or_die(&srv[i], "publisher");
        worker_join(&w, i, &rx);
    }
    publish(pub, 0, 29);
    CHECK(hstan_rx_wait(&rx, 30, 10000));

    /* The worker away; jobs wait on all three; server 1 dies holding its share. */
    for (int i = 0; i < N; i++)
        worker_leave(&w, i);
    publish(pub, 30, 59);
    CHECK_EQ_INT(harness_server_halt(&srv[1], SIGKILL), 128 + SIGKILL);
    up[1] = false;
    stanConnection_Destroy(pub[1]);
    publish(pub, 60, JOBS - 1);

    /* Back on the two that run: their jobs; then server 1, restarted on its store: its own. */
    worker_join(&w, 0, &rx);
    worker_join(&w, 2, &rx);
    CHECK(hstan_rx_wait(&rx, 30 + 20 + 20, 10000));
    CHECK_EQ_INT(harness_server_restart(&srv[1], args[1]), 0);
    up[1] = true;
    worker_join(&w, 1, &rx);
    CHECK(hstan_rx_wait(&rx, JOBS, 10000));
    check_all_received(&rx);

    for (int i = 0; i < N; i++) {
        worker_leave(&w, i);
        if (i != 1) {
            CHECK_EQ_INT(stanConnection_Close(pub[i]), NATS_OK);
            stanConnection_Destroy(pub[i]);
        }
        CHECK_EQ_INT(harness_server_stop(&srv[i], SIGTERM), 0);
        hremove_tree(dirs[i]);
    }
    hstan_rx_destroy(&rx);
}

int main(void)
{
    TEST_RUN(test_three_independent_servers);
    return test_summary();
}
