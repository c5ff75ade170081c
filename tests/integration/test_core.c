/* it_core: NATS core messaging through the real libnats client.
 *
 * Every outcome is observed, never assumed after a sleep. To prove that something did NOT
 * arrive, a test round-trips a PING on the receiving connection (natsConnection_Flush) after the
 * publisher's own flush: the server then has routed every message before the PONG, and libnats
 * has queued them on their subscriptions before it returns, so the pending counts are final. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "test.h"

#define T_MS 5000       /* deadline for anything that should be immediate */
#define T_LONG_MS 30000 /* deadline for bulk transfers */

static struct hserver srv; /* shared by the tests that need no special config */

static natsConnection *connect_or_die(const struct hserver *s)
{
    natsConnection *nc = NULL;
    CHECK(hnats_connect(s, &nc) == NATS_OK);
    return nc;
}

/* Closes a connection after checking the server never dropped it. */
static void close_conn(natsConnection *nc)
{
    CHECK_EQ_INT(natsConnection_Status(nc), NATS_CONN_STATUS_CONNECTED);
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
}

static int pending_msgs(natsSubscription *sub)
{
    int msgs = -1, bytes = -1;
    CHECK(natsSubscription_GetPending(sub, &msgs, &bytes) == NATS_OK);
    return msgs;
}

/* Messages the server has delivered on this connection, all subscriptions together. */
static uint64_t conn_in_msgs(natsConnection *nc)
{
    natsStatistics *stats = NULL;
    uint64_t in_msgs = 0;
    CHECK(natsStatistics_Create(&stats) == NATS_OK);
    CHECK(natsConnection_GetStats(nc, stats) == NATS_OK);
    CHECK(natsStatistics_GetCounts(stats, &in_msgs, NULL, NULL, NULL, NULL) == NATS_OK);
    natsStatistics_Destroy(stats);
    return in_msgs;
}

/* Takes the next message on a sync subscription and checks its subject and payload. */
static void expect_msg(natsSubscription *sub, const char *subject, const char *payload)
{
    natsMsg *m = NULL;
    natsStatus st = natsSubscription_NextMsg(&m, sub, T_MS);
    if (st != NATS_OK) fprintf(stderr, "waiting for %s: %s\n", subject, natsStatus_GetText(st));
    CHECK(st == NATS_OK);
    CHECK_EQ_STR(natsMsg_GetSubject(m), subject);
    CHECK_MEM(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), payload);
    natsMsg_Destroy(m);
}

static void test_pub_sub_round_trip(void)
{
    natsConnection *sc = connect_or_die(&srv), *pc = connect_or_die(&srv);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, sc, "rt.subject") == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);
    CHECK(natsConnection_PublishString(pc, "rt.subject", "hello world") == NATS_OK);
    CHECK(natsConnection_Flush(pc) == NATS_OK);
    expect_msg(sub, "rt.subject", "hello world");
    natsSubscription_Destroy(sub);
    close_conn(sc);
    close_conn(pc);
}

/* Receives "0", "1", ... and counts the ones that came in order. */
struct seq_rx {
    struct hcounter count;
    int next; /* only the subscription's delivery thread touches these two */
    int out_of_order;
};

static void seq_handler(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct seq_rx *rx = closure;
    char buf[32];
    int len = natsMsg_GetDataLength(msg);
    snprintf(buf, sizeof(buf), "%.*s", len < 31 ? len : 31, natsMsg_GetData(msg));
    if (atoi(buf) != rx->next) rx->out_of_order++;
    rx->next++;
    natsMsg_Destroy(msg);
    hcounter_add(&rx->count, 1);
}

static void test_many_messages_in_order(void)
{
    enum { N = 10000 };
    struct seq_rx rx = {.next = 0};
    hcounter_init(&rx.count);
    natsConnection *sc = connect_or_die(&srv), *pc = connect_or_die(&srv);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_Subscribe(&sub, sc, "seq", seq_handler, &rx) == NATS_OK);
    CHECK(natsSubscription_SetPendingLimits(sub, -1, -1) == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);
    for (int i = 0; i < N; i++) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", i);
        CHECK(natsConnection_PublishString(pc, "seq", buf) == NATS_OK);
    }
    CHECK(natsConnection_FlushTimeout(pc, T_LONG_MS) == NATS_OK);
    CHECK(hcounter_wait(&rx.count, N, T_LONG_MS));
    CHECK(natsConnection_Flush(sc) == NATS_OK);
    CHECK_EQ_INT(conn_in_msgs(sc), N); /* no duplicates either */
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    CHECK_EQ_INT(rx.out_of_order, 0);
    CHECK_EQ_INT(hcounter_get(&rx.count), N);
    close_conn(sc);
    close_conn(pc);
    hcounter_destroy(&rx.count);
}

static void test_wildcards(void)
{
    natsConnection *sc = connect_or_die(&srv), *pc = connect_or_die(&srv);
    natsSubscription *star = NULL, *full = NULL, *mid = NULL;
    CHECK(natsConnection_SubscribeSync(&star, sc, "w.*") == NATS_OK);
    CHECK(natsConnection_SubscribeSync(&full, sc, "w.>") == NATS_OK);
    CHECK(natsConnection_SubscribeSync(&mid, sc, "w.*.c") == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);

    const char *subjects[] = {"w.a",   "w.a.b",   "w",     "x.a",   "ww.a",
                              "w.a.c", "w.b.c.d", "x.a.c", "w.end", "w.end.c"};
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++)
        CHECK(natsConnection_PublishString(pc, subjects[i], subjects[i]) == NATS_OK);
    CHECK(natsConnection_Flush(pc) == NATS_OK);

    expect_msg(star, "w.a", "w.a");
    expect_msg(star, "w.end", "w.end");
    expect_msg(full, "w.a", "w.a");
    expect_msg(full, "w.a.b", "w.a.b");
    expect_msg(full, "w.a.c", "w.a.c");
    expect_msg(full, "w.b.c.d", "w.b.c.d");
    expect_msg(full, "w.end", "w.end");
    expect_msg(full, "w.end.c", "w.end.c");
    expect_msg(mid, "w.a.c", "w.a.c");
    expect_msg(mid, "w.end.c", "w.end.c");
    /* Everything routed is in by now: nothing else may be waiting. */
    CHECK(natsConnection_Flush(sc) == NATS_OK);
    CHECK_EQ_INT(pending_msgs(star), 0);
    CHECK_EQ_INT(pending_msgs(full), 0);
    CHECK_EQ_INT(pending_msgs(mid), 0);
    CHECK_EQ_INT(conn_in_msgs(sc), 10);

    natsSubscription_Destroy(star);
    natsSubscription_Destroy(full);
    natsSubscription_Destroy(mid);
    close_conn(sc);
    close_conn(pc);
}

static void test_queue_group_distribution(void)
{
    enum { N = 300, MEMBERS = 3 };
    natsConnection *sc = connect_or_die(&srv), *pc = connect_or_die(&srv);
    natsSubscription *members[MEMBERS], *plain = NULL;
    for (int i = 0; i < MEMBERS; i++) {
        CHECK(natsConnection_QueueSubscribeSync(&members[i], sc, "work", "q") == NATS_OK);
        CHECK(natsSubscription_SetPendingLimits(members[i], -1, -1) == NATS_OK);
    }
    CHECK(natsConnection_SubscribeSync(&plain, sc, "work") == NATS_OK);
    CHECK(natsSubscription_SetPendingLimits(plain, -1, -1) == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);

    for (int i = 0; i < N; i++)
        CHECK(natsConnection_PublishString(pc, "work", "job") == NATS_OK);
    CHECK(natsConnection_Flush(pc) == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);

    CHECK_EQ_INT(pending_msgs(plain), N);
    int total = 0;
    for (int i = 0; i < MEMBERS; i++) {
        int got = pending_msgs(members[i]);
        fprintf(stderr, "   queue member %d got %d\n", i, got);
        CHECK(got > 0);
        total += got;
    }
    CHECK_EQ_INT(total, N);
    CHECK_EQ_INT(conn_in_msgs(sc), 2 * N);

    for (int i = 0; i < MEMBERS; i++)
        natsSubscription_Destroy(members[i]);
    natsSubscription_Destroy(plain);
    close_conn(sc);
    close_conn(pc);
}

static void echo_responder(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    char buf[256];
    int n =
        snprintf(buf, sizeof(buf), "pong:%.*s", natsMsg_GetDataLength(msg), natsMsg_GetData(msg));
    if (natsMsg_GetReply(msg)) natsConnection_Publish(nc, natsMsg_GetReply(msg), buf, n);
    natsMsg_Destroy(msg);
}

static void test_request_reply(void)
{
    natsConnection *rc = connect_or_die(&srv), *qc = connect_or_die(&srv);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_Subscribe(&sub, rc, "svc.echo", echo_responder, NULL) == NATS_OK);
    CHECK(natsConnection_Flush(rc) == NATS_OK);
    for (int i = 0; i < 10; i++) {
        char req[32], want[64];
        snprintf(req, sizeof(req), "ping%d", i);
        snprintf(want, sizeof(want), "pong:ping%d", i);
        natsMsg *reply = NULL;
        CHECK(natsConnection_RequestString(&reply, qc, "svc.echo", req, T_MS) == NATS_OK);
        CHECK_MEM(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), want);
        natsMsg_Destroy(reply);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    CHECK(natsConnection_Flush(rc) == NATS_OK);
    /* Nobody listens now: a headers-capable client is told at once (a 503 status message),
     * long before its timeout. */
    natsMsg *reply = NULL;
    int64_t t0 = nats_Now();
    natsStatus st = natsConnection_RequestString(&reply, qc, "svc.echo", "anyone?", 5000);
    if (st != NATS_NO_RESPONDERS) fprintf(stderr, "request: %s\n", natsStatus_GetText(st));
    CHECK(st == NATS_NO_RESPONDERS);
    CHECK(nats_Now() - t0 < 4000);
    close_conn(rc);
    close_conn(qc);
}

static void test_auto_unsubscribe(void)
{
    natsConnection *sc = connect_or_die(&srv), *pc = connect_or_die(&srv);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, sc, "au") == NATS_OK);
    CHECK(natsSubscription_AutoUnsubscribe(sub, 5) == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);
    for (int i = 0; i < 20; i++) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", i);
        CHECK(natsConnection_PublishString(pc, "au", buf) == NATS_OK);
    }
    CHECK(natsConnection_Flush(pc) == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);
    const char *want[] = {"0", "1", "2", "3", "4"};
    for (int i = 0; i < 5; i++)
        expect_msg(sub, "au", want[i]);
    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, sub, 100) == NATS_MAX_DELIVERED_MSGS);
    /* libnats also drops extras itself; the connection's count shows the server stopped. */
    CHECK_EQ_INT(conn_in_msgs(sc), 5);
    natsSubscription_Destroy(sub);
    close_conn(sc);
    close_conn(pc);
}

static void test_large_payload(void)
{
    enum { N = 512 * 1024 };
    unsigned char *data = malloc(N);
    CHECK(data != NULL);
    for (int i = 0; i < N; i++)
        data[i] = (unsigned char)(i * 31 + 7 + (i >> 11));
    natsConnection *sc = connect_or_die(&srv), *pc = connect_or_die(&srv);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, sc, "large") == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);
    CHECK(natsConnection_Publish(pc, "large", data, N) == NATS_OK);
    CHECK(natsConnection_Flush(pc) == NATS_OK);
    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, sub, T_MS) == NATS_OK);
    CHECK_EQ_INT(natsMsg_GetDataLength(m), N);
    CHECK(memcmp(natsMsg_GetData(m), data, N) == 0);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    close_conn(sc);
    close_conn(pc);
    free(data);
}

static void test_max_payload(void)
{
    struct hserver s;
    CHECK(harness_server_start(&s, "max_payload: 1024\n", NULL) == 0);
    natsConnection *nc = connect_or_die(&s);
    /* libnats learns the limit from INFO and enforces it before sending. */
    CHECK_EQ_INT(natsConnection_GetMaxPayload(nc), 1024);
    char buf[2000];
    memset(buf, 'x', sizeof(buf));
    CHECK(natsConnection_Publish(nc, "mp", buf, 2000) == NATS_MAX_PAYLOAD);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, nc, "mp") == NATS_OK);
    CHECK(natsConnection_Publish(nc, "mp", buf, 1024) == NATS_OK);
    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, sub, T_MS) == NATS_OK);
    CHECK_EQ_INT(natsMsg_GetDataLength(m), 1024);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    close_conn(nc);

    /* A client that ignores the limit is told so and disconnected. */
    int fd = hraw_client(s.port, "{\"verbose\":false}");
    CHECK(fd >= 0);
    CHECK(hraw_send(fd, "PUB foo 2000\r\n"));
    char line[256];
    CHECK(hraw_read_line(fd, line, sizeof(line), T_MS) >= 0);
    CHECK_EQ_STR(line, "-ERR 'Maximum Payload Violation'");
    CHECK(hraw_wait_closed(fd, T_MS));
    close(fd);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_headers(void)
{
    natsConnection *sc = connect_or_die(&srv), *pc = connect_or_die(&srv);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, sc, "hdr") == NATS_OK);
    CHECK(natsConnection_Flush(sc) == NATS_OK);

    natsMsg *out = NULL;
    CHECK(natsMsg_Create(&out, "hdr", "reply.here", "data", 4) == NATS_OK);
    CHECK(natsMsgHeader_Set(out, "X-Key", "value one") == NATS_OK);
    CHECK(natsMsgHeader_Add(out, "X-Multi", "a") == NATS_OK);
    CHECK(natsMsgHeader_Add(out, "X-Multi", "b") == NATS_OK);
    CHECK(natsConnection_PublishMsg(pc, out) == NATS_OK);
    CHECK(natsConnection_Flush(pc) == NATS_OK);
    natsMsg_Destroy(out);

    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, sub, T_MS) == NATS_OK);
    CHECK_EQ_STR(natsMsg_GetSubject(m), "hdr");
    CHECK_EQ_STR(natsMsg_GetReply(m), "reply.here");
    CHECK_MEM(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "data");
    const char *v = NULL;
    CHECK(natsMsgHeader_Get(m, "X-Key", &v) == NATS_OK);
    CHECK_EQ_STR(v, "value one");
    const char **vals = NULL;
    int count = 0;
    CHECK(natsMsgHeader_Values(m, "X-Multi", &vals, &count) == NATS_OK);
    CHECK_EQ_INT(count, 2);
    CHECK_EQ_STR(vals[0], "a");
    CHECK_EQ_STR(vals[1], "b");
    free((void *)vals);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    close_conn(sc);
    close_conn(pc);
}

/* Counts messages of the expected size; anything else is an error. */
struct size_rx {
    struct hcounter count;
    int expected_len;
    int bad;
};

static void size_handler(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct size_rx *rx = closure;
    if (natsMsg_GetDataLength(msg) != rx->expected_len) rx->bad++;
    natsMsg_Destroy(msg);
    hcounter_add(&rx->count, 1);
}

static void test_slow_consumer_disconnected(void)
{
    enum { MSG = 64 * 1024, N = 1024 }; /* 64 MiB in all, 64 times max_pending */
    struct hserver s;
    /* Either limit may be what cuts the slow client off. A short write_deadline keeps the test
     * quick: nats-server 2.9.10 notices max_pending within seconds but only closes the socket
     * once its blocked write times out (10 s by default). */
    CHECK(harness_server_start(&s, "max_pending: 1048576\nwrite_deadline: \"1s\"\n", NULL) == 0);

    /* The slow one: a tiny receive window, and it never reads until the end. */
    int slow = hraw_connect_rcvbuf(s.port, 4096);
    CHECK(slow >= 0);
    CHECK(hraw_expect_line(slow, "INFO {", T_MS));
    CHECK(hraw_send(slow, "CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n"));
    CHECK(hraw_expect_line(slow, "PONG", T_MS));

    struct size_rx rx = {.expected_len = MSG};
    hcounter_init(&rx.count);
    natsConnection *fc = connect_or_die(&s), *pc = connect_or_die(&s);
    natsSubscription *fast = NULL;
    CHECK(natsConnection_Subscribe(&fast, fc, "big", size_handler, &rx) == NATS_OK);
    CHECK(natsSubscription_SetPendingLimits(fast, -1, -1) == NATS_OK);
    CHECK(natsConnection_Flush(fc) == NATS_OK);

    char *payload = malloc(MSG);
    CHECK(payload != NULL);
    memset(payload, 'z', MSG);
    for (int i = 0; i < N; i++) {
        CHECK(natsConnection_Publish(pc, "big", payload, MSG) == NATS_OK);
        if (i % 64 == 63) CHECK(natsConnection_FlushTimeout(pc, T_LONG_MS) == NATS_OK);
    }
    CHECK(natsConnection_FlushTimeout(pc, T_LONG_MS) == NATS_OK);
    free(payload);

    /* The fast subscriber is not held back by the slow one... */
    CHECK(hcounter_wait(&rx.count, N, T_LONG_MS));
    CHECK_EQ_INT(rx.bad, 0);
    /* ...and the slow one was cut off: draining its socket ends in EOF or a reset. */
    CHECK(hraw_wait_closed(slow, T_LONG_MS));
    close(slow);

    natsSubscription_Unsubscribe(fast);
    natsSubscription_Destroy(fast);
    close_conn(fc);
    close_conn(pc);
    hcounter_destroy(&rx.count);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_many_connections_fan_out(void)
{
    enum { N = 200 };
    static natsConnection *conns[N];
    static natsSubscription *subs[N];
    for (int i = 0; i < N; i++) {
        conns[i] = connect_or_die(&srv);
        CHECK(natsConnection_SubscribeSync(&subs[i], conns[i], "fan") == NATS_OK);
    }
    for (int i = 0; i < N; i++)
        CHECK(natsConnection_Flush(conns[i]) == NATS_OK);
    natsConnection *pc = connect_or_die(&srv);
    CHECK(natsConnection_PublishString(pc, "fan", "to all") == NATS_OK);
    CHECK(natsConnection_Flush(pc) == NATS_OK);
    for (int i = 0; i < N; i++) {
        expect_msg(subs[i], "fan", "to all");
        natsSubscription_Destroy(subs[i]);
        close_conn(conns[i]);
    }
    /* The server is unharmed by 200 clients leaving at once: a fresh round trip works. */
    natsConnection *nc = connect_or_die(&srv);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, nc, "fan") == NATS_OK);
    CHECK(natsConnection_Flush(nc) == NATS_OK);
    CHECK(natsConnection_PublishString(pc, "fan", "after") == NATS_OK);
    CHECK(natsConnection_Flush(pc) == NATS_OK);
    expect_msg(sub, "fan", "after");
    natsSubscription_Destroy(sub);
    close_conn(nc);
    close_conn(pc);
}

static void test_clean_shutdown_on_sigint(void)
{
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, NULL) == 0);
    /* With a live client and subscription: shutdown must not trip over them. */
    natsConnection *nc = connect_or_die(&s);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, nc, "x") == NATS_OK);
    CHECK(natsConnection_Flush(nc) == NATS_OK);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
}

int main(void)
{
    CHECK(harness_server_start(&srv, NULL, NULL) == 0);
    TEST_RUN(test_pub_sub_round_trip);
    TEST_RUN(test_many_messages_in_order);
    TEST_RUN(test_wildcards);
    TEST_RUN(test_queue_group_distribution);
    TEST_RUN(test_request_reply);
    TEST_RUN(test_auto_unsubscribe);
    TEST_RUN(test_large_payload);
    TEST_RUN(test_headers);
    TEST_RUN(test_many_connections_fan_out);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);

    TEST_RUN(test_max_payload);
    TEST_RUN(test_slow_consumer_disconnected);
    TEST_RUN(test_clean_shutdown_on_sigint);
    nats_CloseAndWait(5000);
    return test_summary();
}
