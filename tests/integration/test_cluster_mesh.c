/* it_cluster_mesh: three stanzad nodes routed in a full mesh (--cluster/--routes, distinct
 * -cid), driven through libnats and raw sockets: core pub/sub across nodes (each message once
 * per subscriber), wildcards, queue groups across nodes (one member per message cluster-wide),
 * request/reply across nodes, clients learning the other nodes (connect_urls, async INFO), a
 * STAN client on one node using another node's streaming engine, and a node killed (its
 * interest leaves the others) and restarted (its routes and interest come back).
 *
 * Nothing is assumed after a sleep: interest is waited for with a probe
 * (hcluster_wait_propagated), and "exactly once" is checked by a fence message published after
 * the counted ones (same publisher, same route, same subscriber: order is kept). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_cluster.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000
#define N 200

static struct hnode nodes[3];
static natsConnection *nc[3];

/* n messages, then the fence, from node `from`. */
static void pub_fenced(int from, const char *subject, int n)
{
    hcluster_pub_or_die(nc[from], subject, n, true);
}

static void wait_mesh(void)
{
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            if (i != k) CHECK(hcluster_wait_propagated(nc[i], nc[k], T_MS));
}

/* A publisher on node `from`, a subscriber on each other node: each gets every message once. */
static void fan_out(int from, const char *subject)
{
    natsSubscription *subs[3] = {NULL};
    for (int i = 0; i < 3; i++)
        if (i != from) subs[i] = hcluster_sub_or_die(nc[i], subject, NULL);
    for (int i = 0; i < 3; i++)
        if (i != from) CHECK(hcluster_wait_propagated(nc[from], nc[i], T_MS));
    pub_fenced(from, subject, N);
    for (int i = 0; i < 3; i++) {
        if (i == from) continue;
        CHECK_EQ_INT(hcluster_count_until(subs[i], "fence", T_MS), N);
        natsSubscription_Destroy(subs[i]);
    }
}

static void test_pubsub_across_nodes(void)
{
    fan_out(0, "mesh.pub");
    fan_out(2, "mesh.back");
}

/* '*' and '>' subscriptions on other nodes, and two overlapping ones on one node (one RMSG to
 * that node, each subscription served). */
static void test_wildcards(void)
{
    natsSubscription *star = hcluster_sub_or_die(nc[1], "wc.*", NULL);
    natsSubscription *tail = hcluster_sub_or_die(nc[2], "wc.>", NULL);
    natsSubscription *tail1 = hcluster_sub_or_die(nc[1], "wc.>", NULL);
    CHECK(hcluster_wait_propagated(nc[0], nc[1], T_MS));
    CHECK(hcluster_wait_propagated(nc[0], nc[2], T_MS));
    hcluster_pub_or_die(nc[0], "wc.one", 3, false);
    hcluster_pub_or_die(nc[0], "wc.one.two", 5, false);
    hcluster_pub_or_die(nc[0], "other.one", 7, false);
    hcluster_pub_or_die(nc[0], "wc.end", 0, true);
    CHECK_EQ_INT(hcluster_count_until(star, "fence", T_MS), 3);
    CHECK_EQ_INT(hcluster_count_until(tail, "fence", T_MS), 8);
    CHECK_EQ_INT(hcluster_count_until(tail1, "fence", T_MS), 8);
    natsSubscription_Destroy(star);
    natsSubscription_Destroy(tail);
    natsSubscription_Destroy(tail1);
}

/* Messages taken off one queue member: returns how many, each id (m<i>) marked in seen. */
static int drain_queue(natsSubscription *s, int *seen)
{
    int n = 0;
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, s, 0) == NATS_OK) {
        int id = atoi(natsMsg_GetData(m) + 1);
        if (id >= 0 && id < N) seen[id]++;
        natsMsg_Destroy(m);
        n++;
    }
    return n;
}

/* Waits until the members hold `total` messages between them (each flushed, so what the
 * servers routed has arrived), then checks that each id came exactly once. */
static void expect_queue_total(natsSubscription **m, int nm, int *counts)
{
    int seen[N] = {0}, sum = 0;
    int64_t deadline = harness_now_ms() + T_MS;
    while (sum < N && harness_now_ms() < deadline) {
        for (int i = 0; i < nm; i++) {
            int got = drain_queue(m[i], seen);
            counts[i] += got;
            sum += got;
        }
        if (sum < N) {
            natsMsg *x = NULL;
            if (natsSubscription_NextMsg(&x, m[0], 10) == NATS_OK) { /* not lost: put back */
                int id = atoi(natsMsg_GetData(x) + 1);
                if (id >= 0 && id < N) seen[id]++;
                counts[0]++;
                sum++;
                natsMsg_Destroy(x);
            }
        }
    }
    /* A round trip on every member's connection: nothing more is in flight to it. */
    for (int i = 0; i < 3; i++)
        CHECK(natsConnection_Flush(nc[i]) == NATS_OK);
    for (int i = 0; i < nm; i++) {
        int got = drain_queue(m[i], seen);
        counts[i] += got;
        sum += got;
    }
    CHECK_EQ_INT(sum, N);
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(seen[i], 1);
}

static void test_queue_group(void)
{
    /* Members on all three nodes (two on node 1): nats-server prefers a local member, so a
     * publisher on node 0 feeds node 0's; every message once. */
    natsSubscription *m[4] = {hcluster_sub_or_die(nc[0], "work", "workers"),
                              hcluster_sub_or_die(nc[1], "work", "workers"),
                              hcluster_sub_or_die(nc[1], "work", "workers"),
                              hcluster_sub_or_die(nc[2], "work", "workers")};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            if (i != k) CHECK(hcluster_wait_propagated(nc[i], nc[k], T_MS));
    hcluster_pub_or_die(nc[0], "work", N, false);
    int counts[4] = {0};
    expect_queue_total(m, 4, counts);
    CHECK_EQ_INT(counts[0], N);

    /* Node 0's member leaves: its messages go over the routes now, each to one member of one
     * other node, both nodes picked. */
    natsSubscription_Unsubscribe(m[0]);
    natsSubscription_Destroy(m[0]);
    CHECK(hcluster_wait_propagated(nc[1], nc[0], T_MS));
    CHECK(hcluster_wait_propagated(nc[2], nc[0], T_MS));
    hcluster_pub_or_die(nc[0], "work", N, false);
    int counts2[3] = {0};
    expect_queue_total(m + 1, 3, counts2);
    printf("  queue over routes: node1 %d+%d, node2 %d\n", counts2[0], counts2[1], counts2[2]);
    CHECK(counts2[0] + counts2[1] > 0);
    CHECK(counts2[2] > 0);
    for (int i = 1; i < 4; i++)
        natsSubscription_Destroy(m[i]);
}

/* A responder on node 2, a requester on node 0: the request crosses one route, the reply (to
 * the requester's inbox on node 0) the other way. */
static void test_request_reply(void)
{
    natsSubscription *responder = NULL;
    CHECK(natsConnection_SubscribeSync(&responder, nc[2], "svc.time") == NATS_OK);
    CHECK(natsConnection_Flush(nc[2]) == NATS_OK);
    CHECK(hcluster_wait_propagated(nc[0], nc[2], T_MS));
    for (int i = 0; i < 5; i++) {
        natsInbox *inbox = NULL;
        CHECK(natsInbox_Create(&inbox) == NATS_OK);
        natsSubscription *reply_sub = hcluster_sub_or_die(nc[0], inbox, NULL);
        CHECK(hcluster_wait_propagated(nc[2], nc[0], T_MS));
        CHECK(natsConnection_PublishRequestString(nc[0], "svc.time", inbox, "now?") == NATS_OK);
        CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
        natsMsg *req = NULL;
        CHECK(natsSubscription_NextMsg(&req, responder, T_MS) == NATS_OK);
        CHECK_EQ_STR(natsMsg_GetReply(req), inbox);
        CHECK(natsConnection_PublishString(nc[2], natsMsg_GetReply(req), "noon") == NATS_OK);
        CHECK(natsConnection_Flush(nc[2]) == NATS_OK);
        natsMsg_Destroy(req);
        natsMsg *ans = NULL;
        CHECK(natsSubscription_NextMsg(&ans, reply_sub, T_MS) == NATS_OK);
        CHECK_EQ_STR(natsMsg_GetData(ans), "noon");
        natsMsg_Destroy(ans);
        natsSubscription_Destroy(reply_sub);
        natsInbox_Destroy(inbox);
    }
    natsSubscription_Destroy(responder);
}

/* natsConnection_Request with libnats' own reply inbox and a responder thread on node 1. */
static void on_request(natsConnection *c, natsSubscription *s, natsMsg *m, void *closure)
{
    (void)s;
    (void)closure;
    natsConnection_PublishString(c, natsMsg_GetReply(m), "pong");
    natsMsg_Destroy(m);
}

static void test_request_api(void)
{
    natsSubscription *svc = NULL;
    CHECK(natsConnection_Subscribe(&svc, nc[1], "svc.ping", on_request, NULL) == NATS_OK);
    CHECK(natsConnection_Flush(nc[1]) == NATS_OK);
    CHECK(hcluster_wait_propagated(nc[0], nc[1], T_MS));
    for (int i = 0; i < 10; i++) {
        natsMsg *reply = NULL;
        natsStatus st = natsConnection_RequestString(&reply, nc[0], "svc.ping", "ping", T_MS);
        if (st != NATS_OK) fprintf(stderr, "request %d: %s\n", i, natsStatus_GetText(st));
        CHECK(st == NATS_OK);
        CHECK_EQ_STR(natsMsg_GetData(reply), "pong");
        natsMsg_Destroy(reply);
    }
    natsSubscription_Unsubscribe(svc);
    natsSubscription_Destroy(svc);
}

/* A client of any node is told every node's client URL. */
static void test_connect_urls(void)
{
    for (int i = 0; i < 3; i++) {
        json_t *info = hcluster_info(nodes[i].s.port);
        CHECK(info);
        for (int k = 0; k < 3; k++)
            CHECK(hcluster_info_lists(info, nodes[k].s.port));
        json_decref(info);
    }
}

/* A STAN client connected to node 1 uses node 0's streaming engine (cluster id test-cluster):
 * connect, publish, subscribe, ack all cross the route. */
static void test_stan_across_nodes(void)
{
    stanConnection *sc = hstan_connect_or_die(&nodes[1].s, "mesh-client");
    for (int i = 0; i < 20; i++) {
        char body[16];
        snprintf(body, sizeof body, "s%d", i);
        CHECK(hstan_pub(sc, "mesh.chan", body) == NATS_OK);
    }
    struct hstan_rx rx;
    hstan_rx_init(&rx, 64, HSTAN_ACK_HANDLER);
    stanSubOptions *opts = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(opts) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "mesh.chan", NULL, &rx, opts) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 20, T_MS));
    for (int i = 0; i < 20; i++) {
        struct hstan_rec r = hstan_rx_get(&rx, i);
        CHECK_EQ_INT((int)r.seq, i + 1);
    }
    CHECK(stanSubscription_Close(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(opts);
    hstan_rx_destroy(&rx);
    CHECK(stanConnection_Close(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    /* The engine on node 0 stored them: a client on node 2 reads them back. */
    CHECK_EQ_INT(hstan_read_all(&nodes[2].s, "mesh-reader", "mesh.chan", 20, NULL, 0), 20);
}

/* Reads INFO lines on a raw client until one whose connect_urls does (want) or does not list
 * port; PINGs are answered. */
static bool wait_async_info(int fd, int port, bool want)
{
    int64_t deadline = harness_now_ms() + T_MS;
    char line[8192], needle[32];
    snprintf(needle, sizeof needle, "\"127.0.0.1:%d\"", port);
    while (harness_now_ms() < deadline) {
        int n = hraw_read_line(fd, line, sizeof line, (int)(deadline - harness_now_ms()));
        if (n < 0) break;
        if (strcmp(line, "PING") == 0) hraw_send(fd, "PONG\r\n");
        if (strncmp(line, "INFO ", 5) == 0 && (strstr(line, needle) != NULL) == want) return true;
    }
    fprintf(stderr, "no async INFO %s %d\n", want ? "with" : "without", port);
    return false;
}

/* Node 2 dies (SIGKILL): its interest leaves the others at once (a request only it could
 * answer gets "no responders" from node 0), node 1 keeps receiving, node 0's clients get an
 * INFO without node 2's URL. Restarted on the same ports, it is routed again: its new
 * subscriber gets node 0's messages, and the URL is back. */
static void test_node_killed_and_restarted(void)
{
    int raw = hraw_client(nodes[0].s.port, "{\"verbose\":false,\"protocol\":1}");
    CHECK(raw >= 0);
    natsSubscription *b = hcluster_sub_or_die(nc[1], "life.x", NULL);
    natsSubscription *c = hcluster_sub_or_die(nc[2], "life.x", NULL);
    natsSubscription *only_c = hcluster_sub_or_die(nc[2], "life.only", NULL);
    CHECK(hcluster_wait_propagated(nc[0], nc[1], T_MS));
    CHECK(hcluster_wait_propagated(nc[0], nc[2], T_MS));
    pub_fenced(0, "life.x", 10);
    CHECK_EQ_INT(hcluster_count_until(b, "fence", T_MS), 10);
    CHECK_EQ_INT(hcluster_count_until(c, "fence", T_MS), 10);
    natsSubscription_Destroy(c);
    natsSubscription_Destroy(only_c);
    natsConnection_Destroy(nc[2]);
    nc[2] = NULL;

    CHECK_EQ_INT(hnode_kill(&nodes[2]), 0);
    CHECK(wait_async_info(raw, nodes[2].s.port, false));
    /* Its interest is gone from node 0: nobody can answer now. */
    natsMsg *reply = NULL;
    natsStatus st = natsConnection_RequestString(&reply, nc[0], "life.only", "x", T_MS);
    CHECK_EQ_INT(st, NATS_NO_RESPONDERS);
    /* The survivors carry on. */
    pub_fenced(0, "life.x", 10);
    CHECK_EQ_INT(hcluster_count_until(b, "fence", T_MS), 10);

    CHECK(hnode_restart(&nodes[2]) == 0);
    CHECK(hcluster_connect(nodes[2].s.url, &nc[2]) == NATS_OK);
    CHECK(wait_async_info(raw, nodes[2].s.port, true));
    c = hcluster_sub_or_die(nc[2], "life.x", NULL);
    CHECK(hcluster_wait_propagated(nc[0], nc[2], T_MS));
    CHECK(hcluster_wait_propagated(nc[1], nc[2], T_MS));
    pub_fenced(0, "life.x", 10);
    CHECK_EQ_INT(hcluster_count_until(b, "fence", T_MS), 10);
    CHECK_EQ_INT(hcluster_count_until(c, "fence", T_MS), 10);
    natsSubscription_Destroy(b);
    natsSubscription_Destroy(c);
    close(raw);
}

int main(void)
{
    CHECK(hcluster_start(nodes, 3, "mesh", NULL) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(hcluster_connect(nodes[i].s.url, &nc[i]) == NATS_OK);
    wait_mesh();
    TEST_RUN(test_pubsub_across_nodes);
    TEST_RUN(test_wildcards);
    TEST_RUN(test_queue_group);
    TEST_RUN(test_request_reply);
    TEST_RUN(test_request_api);
    TEST_RUN(test_connect_urls);
    TEST_RUN(test_stan_across_nodes);
    TEST_RUN(test_node_killed_and_restarted);
    for (int i = 0; i < 3; i++)
        natsConnection_Destroy(nc[i]);
    CHECK(hcluster_stop(nodes, 3) == 0);
    nats_CloseAndWait(2000);
    return test_summary();
}
