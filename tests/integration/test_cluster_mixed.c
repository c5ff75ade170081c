/* it_cluster_mixed: stanzad in one mesh with two of Debian's nats-server 2.9 (/usr/sbin/
 * nats-server, or $NATS_SERVER). stanzad and the second nats-server are configured with a route
 * to the first nats-server only: the route between them comes from gossip, and a message from
 * one to the other (never forwarded by the middle one: one hop) proves it. Then the same checks
 * as the stanzad mesh in both directions: core pub/sub, queue groups across kinds, headers
 * (HPUB), request/reply, connect_urls, a STAN client on a nats-server using stanzad's engine,
 * and a nats-server killed and restarted. */
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

static struct hnatsd n1, n2;
static struct hnode sd;
static natsConnection *c_n1, *c_n2, *c_sd;

/* pub's messages reach a subscriber on each of subs, once each. */
static void fan_out(natsConnection *pub, natsConnection **subs, int nsubs, const char *subject)
{
    natsSubscription *s[3];
    for (int i = 0; i < nsubs; i++) {
        s[i] = hcluster_sub_or_die(subs[i], subject, NULL);
        CHECK(hcluster_wait_propagated(pub, subs[i], T_MS));
    }
    hcluster_pub_or_die(pub, subject, N, true);
    for (int i = 0; i < nsubs; i++) {
        CHECK_EQ_INT(hcluster_count_until(s[i], "fence", T_MS), N);
        natsSubscription_Destroy(s[i]);
    }
}

static void test_pubsub_both_ways(void)
{
    natsConnection *to_sd[] = {c_sd};
    fan_out(c_n1, to_sd, 1, "mix.from.n1");
    fan_out(c_n2, to_sd, 1, "mix.from.n2"); /* over the gossiped route */
    natsConnection *to_nats[] = {c_n1, c_n2};
    fan_out(c_sd, to_nats, 2, "mix.from.sd");
}

/* Members on two servers, a publisher on the third (no local member): each message once, both
 * members used. */
static void queue_across(natsConnection *pub, natsConnection *a, natsConnection *b)
{
    natsSubscription *ma = hcluster_sub_or_die(a, "mix.work", "w"),
                     *mb = hcluster_sub_or_die(b, "mix.work", "w");
    CHECK(hcluster_wait_propagated(pub, a, T_MS));
    CHECK(hcluster_wait_propagated(pub, b, T_MS));
    hcluster_pub_or_die(pub, "mix.work", N, false);
    int seen[N] = {0}, na = 0, nb = 0;
    int64_t deadline = harness_now_ms() + T_MS;
    while (na + nb < N && harness_now_ms() < deadline) {
        natsMsg *m = NULL;
        natsSubscription *from = ma;
        if (natsSubscription_NextMsg(&m, ma, 5) != NATS_OK) {
            from = mb;
            if (natsSubscription_NextMsg(&m, mb, 5) != NATS_OK) continue;
        }
        int id = atoi(natsMsg_GetData(m) + 1);
        CHECK(id >= 0 && id < N);
        seen[id]++;
        if (from == ma)
            na++;
        else
            nb++;
        natsMsg_Destroy(m);
    }
    /* Round trips: nothing more in flight to either member. */
    CHECK(natsConnection_Flush(a) == NATS_OK);
    CHECK(natsConnection_Flush(b) == NATS_OK);
    int more_a = 0, more_b = 0;
    CHECK(natsSubscription_GetPending(ma, &more_a, NULL) == NATS_OK);
    CHECK(natsSubscription_GetPending(mb, &more_b, NULL) == NATS_OK);
    printf("  queue: %d + %d\n", na, nb);
    CHECK_EQ_INT(na + nb, N);
    CHECK_EQ_INT(more_a + more_b, 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(seen[i], 1);
    CHECK(na > 0 && nb > 0);
    natsSubscription_Destroy(ma);
    natsSubscription_Destroy(mb);
}

static void test_queue_group_across_kinds(void)
{
    queue_across(c_n1, c_sd, c_n2); /* nats-server picks stanzad's member or the other's */
    queue_across(c_sd, c_n1, c_n2); /* stanzad picks between two nats-servers */
}

/* HPUB on one kind, HMSG with the header intact on the other. */
static void headers_across(natsConnection *pub, natsConnection *sub)
{
    natsSubscription *s = hcluster_sub_or_die(sub, "mix.hdr", NULL);
    CHECK(hcluster_wait_propagated(pub, sub, T_MS));
    natsMsg *m = NULL;
    CHECK(natsMsg_Create(&m, "mix.hdr", NULL, "body", 4) == NATS_OK);
    CHECK(natsMsgHeader_Set(m, "X-Stanza", "routed") == NATS_OK);
    CHECK(natsConnection_PublishMsg(pub, m) == NATS_OK);
    CHECK(natsConnection_Flush(pub) == NATS_OK);
    natsMsg_Destroy(m);
    natsMsg *got = NULL;
    CHECK(natsSubscription_NextMsg(&got, s, T_MS) == NATS_OK);
    const char *v = NULL;
    CHECK(natsMsgHeader_Get(got, "X-Stanza", &v) == NATS_OK);
    CHECK_EQ_STR(v, "routed");
    CHECK_EQ_INT(natsMsg_GetDataLength(got), 4);
    natsMsg_Destroy(got);
    natsSubscription_Destroy(s);
}

static void test_headers_across(void)
{
    headers_across(c_n1, c_sd);
    headers_across(c_sd, c_n2);
}

static void on_request(natsConnection *c, natsSubscription *s, natsMsg *m, void *closure)
{
    (void)s;
    (void)closure;
    natsConnection_PublishString(c, natsMsg_GetReply(m), "answer");
    natsMsg_Destroy(m);
}

static void request_across(natsConnection *req, natsConnection *resp)
{
    natsSubscription *svc = NULL;
    CHECK(natsConnection_Subscribe(&svc, resp, "mix.svc", on_request, NULL) == NATS_OK);
    CHECK(natsConnection_Flush(resp) == NATS_OK);
    CHECK(hcluster_wait_propagated(req, resp, T_MS));
    for (int i = 0; i < 10; i++) {
        natsMsg *reply = NULL;
        CHECK(natsConnection_RequestString(&reply, req, "mix.svc", "q", T_MS) == NATS_OK);
        CHECK_EQ_STR(natsMsg_GetData(reply), "answer");
        natsMsg_Destroy(reply);
    }
    natsSubscription_Unsubscribe(svc);
    natsSubscription_Destroy(svc);
    CHECK(natsConnection_Flush(resp) == NATS_OK);
}

static void test_request_reply(void)
{
    request_across(c_sd, c_n2);
    request_across(c_n1, c_sd);
}

static void test_connect_urls(void)
{
    json_t *info = hcluster_info(sd.s.port);
    CHECK(info);
    CHECK(hcluster_info_lists(info, n1.port));
    CHECK(hcluster_info_lists(info, n2.port));
    json_decref(info);
    info = hcluster_info(n2.port);
    CHECK(info);
    CHECK(hcluster_info_lists(info, sd.s.port));
    json_decref(info);
}

/* A STAN client connected to a nats-server, the engine in stanzad (NSS's routed set-up). */
static void test_stan_through_nats_server(void)
{
    struct hserver via = {0};
    via.port = n2.port;
    snprintf(via.url, sizeof via.url, "%s", n2.url);
    stanConnection *sc = hstan_connect_or_die(&via, "mixed-client");
    hstan_round_trip(sc, "mix.chan", "round trip");
    CHECK(stanConnection_Close(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
}

/* The second nats-server dies: stanzad drops its interest (no responders); restarted, it routes
 * to the first one, gossip brings stanzad and it together again, and messages flow. */
static void test_nats_server_restart(void)
{
    natsSubscription *only = hcluster_sub_or_die(c_n2, "mix.only.n2", NULL);
    CHECK(hcluster_wait_propagated(c_sd, c_n2, T_MS));
    natsSubscription_Destroy(only);
    natsConnection_Destroy(c_n2);
    c_n2 = NULL;
    CHECK_EQ_INT(hnatsd_stop(&n2, SIGKILL), 128 + SIGKILL);
    int64_t deadline = harness_now_ms() + T_MS;
    natsStatus st = NATS_OK;
    while (st != NATS_NO_RESPONDERS && harness_now_ms() < deadline) {
        natsMsg *reply = NULL;
        st = natsConnection_RequestString(&reply, c_sd, "mix.only.n2", "x", 200);
        natsMsg_Destroy(reply);
    }
    CHECK_EQ_INT(st, NATS_NO_RESPONDERS);
    CHECK(hnatsd_restart(&n2) == 0);
    CHECK(hcluster_connect(n2.url, &c_n2) == NATS_OK);
    natsConnection *to_sd[] = {c_sd};
    fan_out(c_n2, to_sd, 1, "mix.after");
    natsConnection *to_n2[] = {c_n2};
    fan_out(c_sd, to_n2, 1, "mix.after2");
}

int main(void)
{
    CHECK(hnatsd_start(&n1, "n1", -1, NULL, "mix") == 0);
    CHECK(hnode_start(&sd, -1, n1.curl, "mix", "test-cluster", NULL) == 0);
    CHECK(hnatsd_start(&n2, "n2", -1, n1.curl, "mix") == 0);
    CHECK(hcluster_connect(n1.url, &c_n1) == NATS_OK);
    CHECK(hcluster_connect(n2.url, &c_n2) == NATS_OK);
    CHECK(hcluster_connect(sd.s.url, &c_sd) == NATS_OK);
    /* The gossiped route between stanzad and n2, both ways. */
    CHECK(hcluster_wait_propagated(c_sd, c_n2, T_MS));
    CHECK(hcluster_wait_propagated(c_n2, c_sd, T_MS));
    TEST_RUN(test_pubsub_both_ways);
    TEST_RUN(test_queue_group_across_kinds);
    TEST_RUN(test_headers_across);
    TEST_RUN(test_request_reply);
    TEST_RUN(test_connect_urls);
    TEST_RUN(test_stan_through_nats_server);
    TEST_RUN(test_nats_server_restart);
    natsConnection_Destroy(c_n1);
    natsConnection_Destroy(c_n2);
    natsConnection_Destroy(c_sd);
    CHECK_EQ_INT(hnode_stop(&sd), 0);
    hnatsd_cleanup(&n1);
    hnatsd_cleanup(&n2);
    nats_CloseAndWait(2000);
    return test_summary();
}
