/* it_cluster_bad_route: a raw socket on stanzad's cluster port, speaking nats-server's route
 * protocol by hand. A well-formed route exchanges interest and messages in the exact 2.9 forms
 * (RS+/RS- with queue weights, RMSG with "+ reply q" / "| q"); a routed queue message is
 * delivered to local members only, never forwarded. Bad input (garbage INFO, INFO before
 * CONNECT, an unknown verb, an RMSG over max_payload, a bad size, another cluster's name) closes
 * only that route, with the reason in the log: the other route and the clients carry on and
 * stanzad stays up. A configured route to the server itself is dropped. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_cluster.h"
#include "test.h"

#define T_MS 10000

static struct hnode nodes[2];
static natsConnection *nc[2];

/* Reads lines until one starts with prefix (others skipped). */
static bool read_until(int fd, const char *prefix, char *line, size_t len)
{
    int64_t deadline = harness_now_ms() + T_MS;
    while (harness_now_ms() < deadline) {
        int n = hraw_read_line(fd, line, len, (int)(deadline - harness_now_ms()));
        if (n < 0) break;
        if (strncmp(line, prefix, strlen(prefix)) == 0) return true;
    }
    fprintf(stderr, "no line starting with \"%s\"\n", prefix);
    return false;
}

/* A raw route to node 0 that completed the handshake as server id. */
static int fake_route(const char *id)
{
    int fd = hraw_connect(nodes[0].cport);
    CHECK(fd >= 0);
    CHECK(hraw_expect_line(fd, "INFO {", T_MS));
    char hello[1024];
    snprintf(hello, sizeof hello,
             "CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,"
             "\"headers\":true,\"name\":\"%s\",\"cluster\":\"bad\",\"lnoc\":true}\r\n"
             "INFO {\"server_id\":\"%s\",\"server_name\":\"fake\",\"version\":\"2.9.10\","
             "\"proto\":2,\"host\":\"127.0.0.1\",\"port\":1,\"headers\":true,"
             "\"max_payload\":1048576,\"cluster\":\"bad\",\"connect_urls\":[]}\r\n",
             id, id);
    CHECK(hraw_send(fd, hello));
    return fd;
}

/* Both nodes still route and serve clients. */
static void check_cluster_alive(void)
{
    natsSubscription *s = NULL;
    CHECK(natsConnection_SubscribeSync(&s, nc[1], "alive") == NATS_OK);
    CHECK(natsConnection_Flush(nc[1]) == NATS_OK);
    CHECK(hcluster_wait_propagated(nc[0], nc[1], T_MS));
    CHECK(natsConnection_PublishString(nc[0], "alive", "fence") == NATS_OK);
    CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
    CHECK_EQ_INT(hcluster_count_until(s, "fence", T_MS), 0);
    natsSubscription_Destroy(s);
    CHECK(nodes[0].s.pid > 0 && kill(nodes[0].s.pid, 0) == 0);
}

/* The route is closed by node 0, after an -ERR, and the log says why. */
static void expect_closed(int fd, const char *log_text)
{
    char seen[4096];
    CHECK(hraw_wait_closed_capture(fd, T_MS, seen, sizeof seen));
    close(fd);
    CHECK(hfile_wait_contains(nodes[0].s.log, log_text, T_MS));
    check_cluster_alive();
}

static void test_good_route_wire_forms(void)
{
    int fd = fake_route("NFAKEGOOD");
    char line[4096];
    /* The engine's interest arrives in the 2.9 form, with the account. */
    CHECK(read_until(fd, "RS+ $G _STAN.discover.test-cluster", line, sizeof line));
    /* Our interest: a client on node 0 publishes, the fake route gets RMSG. */
    CHECK(hraw_send(fd, "RS+ $G fake.sub\r\nRS+ $G fake.q grp 1\r\nPING\r\n"));
    CHECK(read_until(fd, "PONG", line, sizeof line));
    CHECK(natsConnection_PublishString(nc[0], "fake.sub", "hi") == NATS_OK);
    CHECK(natsConnection_PublishRequestString(nc[0], "fake.q", "r.1", "yo") == NATS_OK);
    CHECK(natsConnection_PublishString(nc[0], "fake.q", "zz") == NATS_OK);
    CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
    CHECK(hraw_expect_bytes(fd, "RMSG $G fake.sub 2\r\nhi\r\n", T_MS));
    CHECK(hraw_expect_bytes(fd, "RMSG $G fake.q + r.1 grp 2\r\nyo\r\n", T_MS));
    CHECK(hraw_expect_bytes(fd, "RMSG $G fake.q | grp 2\r\nzz\r\n", T_MS));

    /* A client's queue subscription on node 0 is advertised with its weight. */
    natsSubscription *q1 = NULL, *q2 = NULL;
    CHECK(natsConnection_QueueSubscribeSync(&q1, nc[0], "inj.q", "workers") == NATS_OK);
    CHECK(natsConnection_QueueSubscribeSync(&q2, nc[0], "inj.q", "workers") == NATS_OK);
    CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
    CHECK(read_until(fd, "RS+ $G inj.q workers 2", line, sizeof line));

    /* A routed queue message goes to one local member and never on to node 1's member. */
    natsSubscription *remote_member = NULL;
    CHECK(natsConnection_QueueSubscribeSync(&remote_member, nc[1], "inj.q", "workers") == NATS_OK);
    CHECK(natsConnection_Flush(nc[1]) == NATS_OK);
    CHECK(hcluster_wait_propagated(nc[0], nc[1], T_MS));
    CHECK(hraw_send(fd, "RMSG $G inj.q | workers 3\r\nabc\r\nPING\r\n"));
    CHECK(read_until(fd, "PONG", line, sizeof line));
    CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
    int got = 0;
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, q1, 0) == NATS_OK ||
           natsSubscription_NextMsg(&m, q2, 0) == NATS_OK) {
        CHECK_EQ_STR(natsMsg_GetData(m), "abc");
        natsMsg_Destroy(m);
        got++;
    }
    CHECK_EQ_INT(got, 1);
    /* Node 0's members leave; a publish on node 0 then goes to node 1's member, which must see
     * that one first (the routed one was not forwarded to it). */
    natsSubscription_Unsubscribe(q1);
    natsSubscription_Unsubscribe(q2);
    CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
    CHECK(read_until(fd, "RS- $G inj.q workers", line, sizeof line));
    CHECK(natsConnection_PublishString(nc[0], "inj.q", "fence") == NATS_OK);
    CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
    CHECK_EQ_INT(hcluster_count_until(remote_member, "fence", T_MS), 0);
    natsSubscription_Destroy(q1);
    natsSubscription_Destroy(q2);
    natsSubscription_Destroy(remote_member);

    /* RS- takes the fake route's interest away: nothing more comes to it. */
    CHECK(hraw_send(fd, "RS- $G fake.sub\r\nPING\r\n"));
    CHECK(read_until(fd, "PONG", line, sizeof line));
    CHECK(natsConnection_PublishString(nc[0], "fake.sub", "gone") == NATS_OK);
    CHECK(natsConnection_Flush(nc[0]) == NATS_OK);
    CHECK(hraw_send(fd, "PING\r\n"));
    CHECK(hraw_expect_line(fd, "PONG", T_MS)); /* not an RMSG first */
    close(fd);
    check_cluster_alive();
}

static void test_garbage_info(void)
{
    int fd = hraw_connect(nodes[0].cport);
    CHECK(fd >= 0);
    CHECK(hraw_expect_line(fd, "INFO {", T_MS));
    CHECK(hraw_send(fd, "CONNECT {\"cluster\":\"bad\"}\r\nINFO {not json at all\r\n"));
    expect_closed(fd, "route refused: invalid route INFO");
}

static void test_info_before_connect(void)
{
    int fd = hraw_connect(nodes[0].cport);
    CHECK(fd >= 0);
    CHECK(hraw_send(fd, "INFO {\"server_id\":\"NX\"}\r\n"));
    expect_closed(fd, "route refused: route INFO before CONNECT");
}

static void test_unknown_verb(void)
{
    int fd = fake_route("NFAKEVERB");
    CHECK(hraw_send(fd, "HELLO there\r\n"));
    expect_closed(fd, "protocol error: Unknown Protocol Operation");
}

static void test_rmsg_over_max_payload(void)
{
    int fd = fake_route("NFAKEBIG");
    CHECK(hraw_send(fd, "RMSG $G big.subject 2000000\r\n"));
    expect_closed(fd, "protocol error: Maximum Payload Violation");
}

static void test_bad_size(void)
{
    int fd = fake_route("NFAKESIZE");
    CHECK(hraw_send(fd, "RMSG $G foo 12x\r\nhello\r\n"));
    expect_closed(fd, "protocol error: Unknown Protocol Operation (invalid arguments)");
    fd = fake_route("NFAKESIZE2");
    CHECK(hraw_send(fd, "RMSG $G foo 2\r\nhello\r\n")); /* payload longer than said */
    expect_closed(fd, "(payload not terminated by CRLF)");
}

static void test_other_cluster(void)
{
    int fd = hraw_connect(nodes[0].cport);
    CHECK(fd >= 0);
    CHECK(hraw_expect_line(fd, "INFO {", T_MS));
    CHECK(hraw_send(fd, "CONNECT {\"cluster\":\"elsewhere\"}\r\n"));
    expect_closed(fd, "cluster name \"elsewhere\" does not match \"bad\"");
}

/* A configured route that leads back to this server is found by its server id and dropped. */
static void test_route_to_self(void)
{
    struct hnode self;
    int cport = harness_free_port();
    char routes[64] = "";
    hcluster_routes_add(routes, sizeof routes, cport);
    CHECK(hnode_start(&self, cport, routes, "bad", "selfish", NULL) == 0);
    CHECK(hfile_wait_contains(self.s.log, "detected route to self, ignoring", T_MS));
    CHECK_EQ_INT(hnode_stop(&self), 0);
}

int main(void)
{
    CHECK(hcluster_start(nodes, 2, "bad", NULL) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(hcluster_connect(nodes[i].s.url, &nc[i]) == NATS_OK);
    CHECK(hcluster_wait_propagated(nc[0], nc[1], T_MS));
    CHECK(hcluster_wait_propagated(nc[1], nc[0], T_MS));
    TEST_RUN(test_good_route_wire_forms);
    TEST_RUN(test_garbage_info);
    TEST_RUN(test_info_before_connect);
    TEST_RUN(test_unknown_verb);
    TEST_RUN(test_rmsg_over_max_payload);
    TEST_RUN(test_bad_size);
    TEST_RUN(test_other_cluster);
    TEST_RUN(test_route_to_self);
    for (int i = 0; i < 2; i++)
        natsConnection_Destroy(nc[i]);
    CHECK(hcluster_stop(nodes, 2) == 0);
    nats_CloseAndWait(2000);
    return test_summary();
}
