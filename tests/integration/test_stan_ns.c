/* it_stan_ns: the streaming engine over an external NATS (`-ns`): Debian's nats-server processes
 * carry the traffic, stanzad connects to them as a client, and libnats STAN clients connect to the
 * nats-servers only.
 *
 * - basic: publish, a durable subscriber receives and acks, monitoring sees the channel; stanzad
 *   restarted on its store while the clients stay connected to NATS: the durable carries on.
 * - another streaming server with the same cluster id on that NATS: refused at start, with NSS's
 *   message; the first keeps serving; a different cluster id starts.
 * - a client that died without closing is replaced by its successor at once (no responders).
 * - a 3-node nats-server cluster, stanzad given only node A's URL (it learns B and C from the
 *   cluster), publisher on B, durable subscriber on C; A is SIGKILLed mid-stream: stanzad
 *   reconnects to B or C, the publisher carries on (retrying publishes whose PubAck did not come,
 *   as an application does), and every acknowledged message is delivered. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_cluster.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 15000

/* harness_stan.h's helpers take the server a client connects to; here that is a nats-server. */
static struct hserver at(const char *url)
{
    struct hserver s;
    memset(&s, 0, sizeof s);
    snprintf(s.url, sizeof s.url, "%s", url);
    return s;
}

static void start_stanzad(struct hserver *s, const char *ns_url, const char *cid, const char *dir)
{
    const char *args[] = {"-ns", ns_url, "-cid", cid, "--store", "LMDB", "--dir", dir, "-SD", NULL};
    CHECK(harness_server_start_ns(s, NULL, args) == 0);
}

static void test_ns_basic_and_restart(void)
{
    struct hnatsd a;
    CHECK(hnatsd_start(&a, "A", 0, NULL, NULL) == 0);
    struct hserver sd;
    char dir[PATH_MAX];
    CHECK(hmkdtemp(dir, sizeof dir) == 0);
    start_stanzad(&sd, a.url, HSTAN_CLUSTER, dir);

    struct hserver to_a = at(a.url);
    stanConnection *pub = hstan_connect_or_die(&to_a, "ns-pub");
    stanConnection *subc = hstan_connect_or_die(&to_a, "ns-sub");
    hstan_pub_range(pub, "ns.basic", "m%d", 1, 50);

    struct hstan_rx rx;
    hstan_rx_init(&rx, 200, HSTAN_ACK_HANDLER);
    stanSubOptions *so = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(so) == NATS_OK);
    CHECK(stanSubOptions_SetDurableName(so, "dur") == NATS_OK);
    CHECK(stanSubOptions_SetManualAckMode(so, true) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, subc, "ns.basic", NULL, &rx, so) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 50, T_MS));
    for (int i = 0; i < 50; i++) {
        struct hstan_rec r = hstan_rx_get(&rx, i);
        CHECK_EQ_INT((int)r.seq, i + 1);
    }
    /* Monitoring runs on -m (the harness's port in -ns mode) and sees the channel. */
    json_t *cz = hhttp_json(sd.port, "/streaming/channelsz?channel=ns.basic");
    CHECK(cz != NULL);
    CHECK_EQ_INT((int)json_integer_value(json_object_get(cz, "msgs")), 50);
    json_decref(cz);

    /* A redeploy: stanzad stops and starts on the same store; the clients never left NATS. */
    hstan_commit_barrier(subc);
    CHECK_EQ_INT(harness_server_halt(&sd, SIGTERM), 0);
    CHECK(harness_server_restart(&sd, (const char *const[]){"-ns", a.url, "-cid", HSTAN_CLUSTER,
                                                            "--store", "LMDB", "--dir", dir, "-SD",
                                                            NULL}) == 0);
    hstan_pub_range(pub, "ns.basic", "m%d", 51, 60);
    CHECK(hstan_rx_wait(&rx, 60, T_MS));
    struct hstan_rec last = hstan_rx_get(&rx, 59);
    CHECK_EQ_INT((int)last.seq, 60);

    CHECK(stanSubscription_Close(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(so);
    hstan_rx_destroy(&rx);
    stanConnection_Close(pub);
    stanConnection_Destroy(pub);
    stanConnection_Close(subc);
    stanConnection_Destroy(subc);
    CHECK_EQ_INT(harness_server_stop(&sd, SIGTERM), 0);
    hnatsd_cleanup(&a);
    hremove_tree(dir);
}

static void test_ns_refuses_a_second_server(void)
{
    struct hnatsd a;
    CHECK(hnatsd_start(&a, "A", 0, NULL, NULL) == 0);
    char d1[PATH_MAX], d2[PATH_MAX], d3[PATH_MAX];
    CHECK(hmkdtemp(d1, sizeof d1) == 0 && hmkdtemp(d2, sizeof d2) == 0);
    CHECK(hmkdtemp(d3, sizeof d3) == 0);
    struct hserver first, second, other;
    start_stanzad(&first, a.url, HSTAN_CLUSTER, d1);

    const char *args[] = {"-ns",  a.url,   "-cid", HSTAN_CLUSTER, "--store",
                          "LMDB", "--dir", d2,     NULL};
    fprintf(stderr, "(a start-up failure with its log is expected next)\n");
    CHECK(harness_server_start_ns(&second, NULL, args) != 0);
    CHECK_EQ_INT(second.exit_status, 1); /* it exits at once, not killed at the deadline */
    CHECK(hfile_count(second.log,
                      "discovered another streaming server with cluster ID \"test-cluster\"") > 0);

    /* The first serves on, and the probe it was sent left no client behind. */
    struct hserver to_a = at(a.url);
    stanConnection *sc = hstan_connect_or_die(&to_a, "after-refusal");
    CHECK(hstan_pub(sc, "ns.refuse", "x") == NATS_OK);
    json_t *clz = hhttp_json(first.port, "/streaming/clientsz");
    CHECK(clz != NULL);
    CHECK_EQ_INT((int)json_integer_value(json_object_get(clz, "total")), 1);
    json_decref(clz);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);

    /* Another cluster id on the same NATS is another streaming server: allowed. */
    start_stanzad(&other, a.url, "other-cluster", d3);
    CHECK_EQ_INT(harness_server_stop(&other, SIGTERM), 0);
    CHECK_EQ_INT(harness_server_stop(&first, SIGTERM), 0);
    hnatsd_cleanup(&a);
    hremove_tree(d1);
    hremove_tree(d2);
    hremove_tree(d3);
}

/* One nats-server and one stanzad over it, for the single-node tests. */
struct ns_env {
    struct hnatsd nats;
    struct hserver sd;
    struct hserver to_nats; /* what clients connect to */
    char dir[PATH_MAX];
};

static void ns_env_start(struct ns_env *e)
{
    CHECK(hnatsd_start(&e->nats, "A", 0, NULL, NULL) == 0);
    CHECK(hmkdtemp(e->dir, sizeof e->dir) == 0);
    start_stanzad(&e->sd, e->nats.url, HSTAN_CLUSTER, e->dir);
    e->to_nats = at(e->nats.url);
}

static void ns_env_stop(struct ns_env *e)
{
    CHECK_EQ_INT(harness_server_stop(&e->sd, SIGTERM), 0);
    hnatsd_cleanup(&e->nats);
    hremove_tree(e->dir);
}

/* A client that died without closing (its heartbeat inbox has no listener) is replaced by its
 * successor as soon as NATS says nobody listens there ("no responders"), not after the
 * duplicate check's timeout. The log line names the mechanism. */
static void test_ns_dead_client_replaced_at_once(void)
{
    struct ns_env e;
    ns_env_start(&e);
    struct hserver *to_a = &e.to_nats;
    struct hstan_raw dead;
    char err[256];
    CHECK(hstan_raw_connect(&dead, to_a, "ns-job-runner", false, err, sizeof err) == NATS_OK);
    CHECK_EQ_STR(err, "");
    stanConnection *next = hstan_connect_or_die(to_a, "ns-job-runner");
    CHECK(hstan_pub(next, "ns.replaced", "x") == NATS_OK);
    CHECK(hfile_count(e.sd.log, "client ns-job-runner: no responders on its heartbeat inbox") > 0);
    stanConnection_Close(next);
    stanConnection_Destroy(next);
    hstan_raw_close(&dead);
    ns_env_stop(&e);
}

/* A client's publishes followed at once by its close arrive together; over -ns the engine is
 * handed them subscription by subscription (bus.h), so the publishes must come first: every
 * message sent before the close is stored, none refused as from an unknown client. */
static void test_ns_publishes_then_close(void)
{
    struct ns_env e;
    ns_env_start(&e);
    struct hserver *to_a = &e.to_nats;
    for (int round = 0; round < 5; round++) {
        char id[32];
        snprintf(id, sizeof id, "ns-burst-%d", round);
        stanConnection *sc = hstan_connect_or_die(to_a, id);
        for (int i = 0; i < 200; i++)
            CHECK(stanConnection_PublishAsync(sc, "ns.burst", "x", 1, NULL, NULL) == NATS_OK);
        CHECK(stanConnection_Close(sc) == NATS_OK);
        stanConnection_Destroy(sc);
        snprintf(id, sizeof id, "ns-reader-%d", round);
        CHECK_EQ_INT(hstan_read_all(to_a, id, "ns.burst", 200 * (round + 1), NULL, 0),
                     200 * (round + 1));
    }
    ns_env_stop(&e);
}

/* ---- a nats-server cluster loses the node stanzad is connected to ---- */

#define N_MSGS 300

static stanConnection *connect_short_acks(const char *url, const char *client_id)
{
    stanConnOptions *co = NULL;
    stanConnection *sc = NULL;
    natsOptions *no = NULL;
    natsStatus st = natsOptions_Create(&no);
    if (st == NATS_OK) st = natsOptions_SetURL(no, url);
    if (st == NATS_OK) st = natsOptions_SetMaxReconnect(no, -1);
    if (st == NATS_OK) st = natsOptions_SetReconnectWait(no, 100);
    if (st == NATS_OK) st = stanConnOptions_Create(&co);
    if (st == NATS_OK) st = stanConnOptions_SetNATSOptions(co, no);
    if (st == NATS_OK) st = stanConnOptions_SetConnectionWait(co, HSTAN_CONNECT_WAIT_MS);
    /* A PubAck lost with the killed node is retried after 1 s, as an application would. */
    if (st == NATS_OK) st = stanConnOptions_SetPubAckWait(co, 1000);
    if (st == NATS_OK) st = stanConnection_Connect(&sc, HSTAN_CLUSTER, client_id, co);
    if (st != NATS_OK)
        fprintf(stderr, "connect %s to %s: %s (%s)\n", client_id, url, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    stanConnOptions_Destroy(co);
    natsOptions_Destroy(no);
    return sc;
}

/* Publishes until the PubAck comes (or the deadline): at-least-once, from the publisher's side. */
static void publish_acked(stanConnection *sc, const char *channel, const char *payload)
{
    int64_t deadline = harness_now_ms() + 30000;
    natsStatus st;
    while ((st = stanConnection_Publish(sc, channel, payload, (int)strlen(payload))) != NATS_OK) {
        if (harness_now_ms() > deadline) {
            fprintf(stderr, "publish %s: %s (%s)\n", payload, natsStatus_GetText(st),
                    nats_GetLastError(NULL));
            CHECK(st == NATS_OK);
        }
    }
}

static bool all_delivered(struct hstan_rx *rx, int n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        bool seen[N_MSGS + 1] = {false};
        int distinct = 0;
        int64_t got = hstan_rx_count(rx);
        for (int64_t i = 0; i < got && i < rx->cap; i++) {
            struct hstan_rec r = hstan_rx_get(rx, (int)i);
            int id = atoi(r.data + 1);
            if (id >= 1 && id <= n && !seen[id]) {
                seen[id] = true;
                distinct++;
            }
        }
        if (distinct == n) return true;
        if (harness_now_ms() > deadline) {
            fprintf(stderr, "only %d of %d distinct messages delivered; missing:", distinct, n);
            for (int i = 1; i <= n; i++)
                if (!seen[i]) fprintf(stderr, " m%d", i);
            fprintf(stderr, "\n");
            return false;
        }
        hcounter_wait(&rx->count, got + 1, 100);
    }
}

static void test_ns_cluster_node_killed(void)
{
    struct hnatsd n[3];
    char routes[HCLUSTER_ROUTES_LEN] = "";
    CHECK(hnatsd_start(&n[0], "A", -1, NULL, "ns-test") == 0);
    hcluster_routes_add(routes, sizeof routes, n[0].cport);
    CHECK(hnatsd_start(&n[1], "B", -1, routes, "ns-test") == 0);
    CHECK(hnatsd_start(&n[2], "C", -1, routes, "ns-test") == 0);
    /* The mesh is up before stanzad connects, so A's INFO lists B and C for it. */
    natsConnection *ca = NULL, *cb = NULL, *cc = NULL;
    CHECK(hcluster_connect(n[0].url, &ca) == NATS_OK);
    CHECK(hcluster_connect(n[1].url, &cb) == NATS_OK);
    CHECK(hcluster_connect(n[2].url, &cc) == NATS_OK);
    CHECK(hcluster_wait_propagated(cb, ca, HCLUSTER_WAIT_MS));
    CHECK(hcluster_wait_propagated(cc, ca, HCLUSTER_WAIT_MS));
    CHECK(hcluster_wait_propagated(cb, cc, HCLUSTER_WAIT_MS));
    natsConnection_Destroy(ca);

    struct hserver sd;
    char dir[PATH_MAX];
    CHECK(hmkdtemp(dir, sizeof dir) == 0);
    start_stanzad(&sd, n[0].url, HSTAN_CLUSTER, dir);

    stanConnection *pub = connect_short_acks(n[1].url, "ns-kill-pub");
    stanConnection *subc = connect_short_acks(n[2].url, "ns-kill-sub");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 4 * N_MSGS, HSTAN_ACK_HANDLER);
    stanSubOptions *so = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(so, "dur") == NATS_OK);
    CHECK(stanSubOptions_SetManualAckMode(so, true) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(so, 1000) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, subc, "ns.kill", NULL, &rx, so) == NATS_OK);

    char payload[32];
    for (int i = 1; i <= N_MSGS; i++) {
        if (i == N_MSGS / 2) hnatsd_stop(&n[0], SIGKILL); /* stanzad's node */
        snprintf(payload, sizeof payload, "m%d", i);
        publish_acked(pub, "ns.kill", payload);
    }
    CHECK(all_delivered(&rx, N_MSGS, 30000));
    CHECK(hfile_count(sd.log, "NATS: reconnected to") > 0);

    CHECK(stanSubscription_Close(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(so);
    hstan_rx_destroy(&rx);
    stanConnection_Close(pub);
    stanConnection_Destroy(pub);
    stanConnection_Close(subc);
    stanConnection_Destroy(subc);
    natsConnection_Destroy(cb);
    natsConnection_Destroy(cc);
    CHECK_EQ_INT(harness_server_stop(&sd, SIGTERM), 0);
    for (int i = 0; i < 3; i++)
        hnatsd_cleanup(&n[i]);
    hremove_tree(dir);
}

int main(void)
{
    HSTAN_RUN(test_ns_basic_and_restart);
    HSTAN_RUN(test_ns_refuses_a_second_server);
    HSTAN_RUN(test_ns_dead_client_replaced_at_once);
    HSTAN_RUN(test_ns_publishes_then_close);
    HSTAN_RUN(test_ns_cluster_node_killed);
    nats_CloseAndWait(5000);
    return test_summary();
}
