/* it_protocol: the NATS client protocol on the wire, byte for byte, over raw sockets.
 *
 * These pin down exactly what a client sees (frames, -ERR texts, when the server closes), as
 * nats-server does it. "Did not arrive" is always proven by a later marker message on the same
 * connection: the server delivers to one connection in order, so once the marker is read
 * anything sent before it would have been read first. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"
#include "test.h"

#define T_MS 5000 /* generous deadline for anything that should be immediate */

static struct hserver srv; /* shared by the tests that do not need their own config */

/* Reads one line and checks it is exactly want. */
static bool line_is(int fd, const char *want)
{
    char line[8192];
    int n = hraw_read_line(fd, line, sizeof(line), T_MS);
    if (n < 0) {
        fprintf(stderr, "expected line \"%s\", got timeout/EOF\n", want);
        return false;
    }
    if (strcmp(line, want) != 0) {
        fprintf(stderr, "expected line \"%s\", got \"%s\"\n", want, line);
        return false;
    }
    return true;
}

static int client(void)
{
    int fd = hraw_client(srv.port, "{\"verbose\":false,\"pedantic\":false,\"headers\":true}");
    CHECK(fd >= 0);
    return fd;
}

/* Publishes a marker on "marker" (subscribed as sid 99) and checks that the very next frame is
 * that marker: everything the server meant to send before it has been read already. */
static void expect_nothing_before_marker(int fd)
{
    CHECK(hraw_send(fd, "SUB marker 99\r\nPUB marker 3\r\nend\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG marker 99 3\r\nend\r\n", T_MS));
}

static void test_info_on_connect(void)
{
    int fd = hraw_connect(srv.port);
    CHECK(fd >= 0);
    char line[8192];
    int n = hraw_read_line(fd, line, sizeof(line), T_MS);
    CHECK(n > 0);
    CHECK(strncmp(line, "INFO {", 6) == 0);
    /* nats-server ends the line with "} " (a space before the CRLF); allow either. */
    while (n > 0 && line[n - 1] == ' ')
        n--;
    CHECK(line[n - 1] == '}');
    CHECK(strstr(line, "\"server_id\":\"") != NULL);
    CHECK(strstr(line, "\"max_payload\":1048576") != NULL);
    CHECK(strstr(line, "\"proto\":1") != NULL);
    CHECK(strstr(line, "\"headers\":true") != NULL);
    close(fd);
}

static void test_connect_verbose_ok(void)
{
    int fd = hraw_connect(srv.port);
    CHECK(fd >= 0);
    CHECK(hraw_expect_line(fd, "INFO {", T_MS));
    CHECK(hraw_send(fd, "CONNECT {\"verbose\":true}\r\n"));
    CHECK(line_is(fd, "+OK"));
    /* Verbose acknowledges every SUB and PUB too; PING is answered by PONG only. */
    CHECK(hraw_send(fd, "SUB foo 1\r\n"));
    CHECK(line_is(fd, "+OK"));
    CHECK(hraw_send(fd, "PING\r\n"));
    CHECK(line_is(fd, "PONG"));
    close(fd);
}

static void test_ping_pong(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "PING\r\nPING\r\n"));
    CHECK(line_is(fd, "PONG"));
    CHECK(line_is(fd, "PONG"));
    /* Operations are case-insensitive, as in nats-server. */
    CHECK(hraw_send(fd, "ping\r\n"));
    CHECK(line_is(fd, "PONG"));
    close(fd);
}

static void test_pub_sub_exact_frames(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo 1\r\nPUB foo 5\r\nhello\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 5\r\nhello\r\n", T_MS));
    CHECK(hraw_send(fd, "PUB foo inbox 5\r\nhello\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 inbox 5\r\nhello\r\n", T_MS));
    CHECK(hraw_send(fd, "PUB foo 0\r\n\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 0\r\n\r\n", T_MS));
    /* A payload may contain CRLF: only the size counts. */
    CHECK(hraw_send(fd, "PUB foo 4\r\na\r\nb\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 4\r\na\r\nb\r\n", T_MS));
    close(fd);
}

static void test_pub_sub_two_clients(void)
{
    int sub = client(), pub = client();
    /* The PONG proves the SUB is registered before the other client publishes. */
    CHECK(hraw_send(sub, "SUB a.b 7\r\nPING\r\n"));
    CHECK(line_is(sub, "PONG"));
    CHECK(hraw_send(pub, "PUB a.b reply.to 3\r\nxyz\r\n"));
    CHECK(hraw_expect_bytes(sub, "MSG a.b 7 reply.to 3\r\nxyz\r\n", T_MS));
    /* The publisher has no subscription, so it gets nothing but its PONG. */
    CHECK(hraw_send(pub, "PING\r\n"));
    CHECK(line_is(pub, "PONG"));
    close(sub);
    close(pub);
}

static void test_hpub_hmsg_exact(void)
{
    int fd = client();
    const char *hdr = "NATS/1.0\r\nA: B\r\n\r\n";
    size_t hlen = strlen(hdr), total = hlen + 5;
    char frame[256], want[256];
    snprintf(frame, sizeof(frame), "SUB foo 1\r\nHPUB foo %zu %zu\r\n%shello\r\n", hlen, total,
             hdr);
    snprintf(want, sizeof(want), "HMSG foo 1 %zu %zu\r\n%shello\r\n", hlen, total, hdr);
    CHECK(hraw_send(fd, frame));
    CHECK(hraw_expect_bytes(fd, want, T_MS));

    snprintf(frame, sizeof(frame), "HPUB foo inbox %zu %zu\r\n%shello\r\n", hlen, total, hdr);
    snprintf(want, sizeof(want), "HMSG foo 1 inbox %zu %zu\r\n%shello\r\n", hlen, total, hdr);
    CHECK(hraw_send(fd, frame));
    CHECK(hraw_expect_bytes(fd, want, T_MS));
    close(fd);
}

static void test_unsub_stops_delivery(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo 1\r\nPUB foo 1\r\na\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 1\r\na\r\n", T_MS));
    CHECK(hraw_send(fd, "UNSUB 1\r\nPUB foo 1\r\nb\r\n"));
    expect_nothing_before_marker(fd);
    close(fd);
}

static void test_unsub_max(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo 1\r\nUNSUB 1 2\r\n"
                        "PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 1\r\na\r\n", T_MS));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 1\r\nb\r\n", T_MS));
    expect_nothing_before_marker(fd);
    close(fd);
}

static void test_queue_sub(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo q 1\r\nPUB foo 5\r\nhello\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 5\r\nhello\r\n", T_MS));
    /* A second member of the same group: each message goes to exactly one of them. */
    CHECK(hraw_send(fd, "SUB foo q 2\r\nPUB foo 2\r\nhi\r\n"));
    char line[256];
    CHECK(hraw_read_line(fd, line, sizeof(line), T_MS) > 0);
    CHECK(strcmp(line, "MSG foo 1 2") == 0 || strcmp(line, "MSG foo 2 2") == 0);
    CHECK(hraw_expect_bytes(fd, "hi\r\n", T_MS));
    expect_nothing_before_marker(fd);
    close(fd);
}

static void test_unknown_op_closes(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "FOO bar\r\n"));
    CHECK(line_is(fd, "-ERR 'Unknown Protocol Operation'"));
    CHECK(hraw_wait_closed(fd, T_MS));
    close(fd);
}

/* Malformed arguments and a payload without its CRLF close the connection with the text of an
 * unknown operation, as nats-server's parser does. */
static void test_bad_args_and_payload_close(void)
{
    static const char *const bad[] = {"PUB foo\r\n", "SUB foo\r\n", "UNSUB 1 x\r\n",
                                      "PUB foo 3\r\nabcd\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = client();
        CHECK(hraw_send(fd, bad[i]));
        CHECK(line_is(fd, "-ERR 'Unknown Protocol Operation'"));
        CHECK(hraw_wait_closed(fd, T_MS));
        close(fd);
    }
}

static void test_invalid_subject_keeps_connection(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo..bar 1\r\n"));
    CHECK(line_is(fd, "-ERR 'Invalid Subject'"));
    CHECK(hraw_send(fd, "PING\r\n"));
    CHECK(line_is(fd, "PONG"));
    /* The connection still works normally. */
    CHECK(hraw_send(fd, "SUB foo.bar 2\r\nPUB foo.bar 2\r\nok\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo.bar 2 2\r\nok\r\n", T_MS));
    close(fd);
}

/* nats-server only checks publish subjects in pedantic mode: otherwise a wildcard token is
 * routed (to wildcard subscriptions only), and STAN clients rely on it to get a PubAck error. */
static void test_wildcard_publish_subject(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo.* 1\r\nSUB foo.bar 2\r\nPUB foo.* 2\r\nhi\r\nPING\r\n"));
    CHECK(hraw_expect_bytes(fd, "MSG foo.* 1 2\r\nhi\r\nPONG\r\n", T_MS));
    close(fd);
    int pd = hraw_client(srv.port, "{\"verbose\":false,\"pedantic\":true}");
    CHECK(pd >= 0);
    CHECK(hraw_send(pd, "PUB foo.* 2\r\nhi\r\n"));
    CHECK(line_is(pd, "-ERR 'Invalid Publish Subject'"));
    CHECK(hraw_send(pd, "PING\r\n"));
    CHECK(line_is(pd, "PONG"));
    close(pd);
}

static void test_max_control_line_closes(void)
{
    int fd = client();
    char big[5001];
    memcpy(big, "PUB ", 4);
    memset(big + 4, 'a', sizeof(big) - 5);
    big[sizeof(big) - 1] = '\0';
    CHECK(hraw_send(fd, big));
    /* nats-server 2.9.10 sends this one in lower case, unlike its other errors; the text is
     * what matters, so compare without case. */
    char line[256];
    CHECK(hraw_read_line(fd, line, sizeof(line), T_MS) > 0);
    CHECK(strcasecmp(line, "-ERR 'Maximum Control Line Exceeded'") == 0);
    CHECK(hraw_wait_closed(fd, T_MS));
    close(fd);
}

static void test_payload_one_byte_per_write(void)
{
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo 1\r\nPING\r\n"));
    CHECK(line_is(fd, "PONG"));
    const char *frame = "PUB foo reply 11\r\nhello world\r\n";
    for (const char *p = frame; *p; p++)
        CHECK(hraw_send_buf(fd, p, 1));
    CHECK(hraw_expect_bytes(fd, "MSG foo 1 reply 11\r\nhello world\r\n", T_MS));
    close(fd);
}

static void test_pipelined_pubs(void)
{
    enum { N = 1000 };
    int fd = client();
    CHECK(hraw_send(fd, "SUB foo 1\r\n"));
    size_t cap = N * 32, len = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    for (int i = 0; i < N; i++) {
        char payload[16];
        int plen = snprintf(payload, sizeof(payload), "m%d", i);
        len += (size_t)snprintf(buf + len, cap - len, "PUB foo %d\r\n%s\r\n", plen, payload);
    }
    CHECK(hraw_send_buf(fd, buf, len));
    free(buf);
    for (int i = 0; i < N; i++) {
        char want[64], payload[16];
        int plen = snprintf(payload, sizeof(payload), "m%d", i);
        snprintf(want, sizeof(want), "MSG foo 1 %d\r\n%s\r\n", plen, payload);
        CHECK(hraw_expect_bytes(fd, want, T_MS));
    }
    expect_nothing_before_marker(fd);
    close(fd);
}

/* ---- Server-initiated PINGs: own server, ping_interval 100ms, ping_max 2 ---- */

static const char *ping_config = "ping_interval: \"100ms\"\nping_max: 2\n";

static void test_stale_connection_closed(void)
{
    struct hserver s;
    CHECK(harness_server_start(&s, ping_config, NULL) == 0);
    /* No PING in the handshake: this client never sends anything after CONNECT. */
    int fd = hraw_connect(s.port);
    CHECK(fd >= 0);
    CHECK(hraw_expect_line(fd, "INFO {", T_MS));
    CHECK(hraw_send(fd, "CONNECT {\"verbose\":false}\r\n"));
    /* ping_max unanswered PINGs, then the next interval closes the connection. */
    CHECK(line_is(fd, "PING"));
    CHECK(line_is(fd, "PING"));
    CHECK(line_is(fd, "-ERR 'Stale Connection'"));
    CHECK(hraw_wait_closed(fd, T_MS));
    close(fd);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_answered_pings_keep_connection(void)
{
    struct hserver s;
    CHECK(harness_server_start(&s, ping_config, NULL) == 0);
    int fd = hraw_connect(s.port);
    CHECK(fd >= 0);
    CHECK(hraw_expect_line(fd, "INFO {", T_MS));
    CHECK(hraw_send(fd, "CONNECT {\"verbose\":false}\r\n"));
    /* Well past ping_max intervals: each PING answered keeps the connection alive. */
    for (int i = 0; i < 6; i++) {
        CHECK(line_is(fd, "PING"));
        CHECK(hraw_send(fd, "PONG\r\n"));
    }
    /* Still open and served: our own PING gets its PONG (server PINGs may come first). */
    CHECK(hraw_send(fd, "PING\r\n"));
    char line[256];
    for (;;) {
        CHECK(hraw_read_line(fd, line, sizeof(line), T_MS) >= 0);
        if (strcmp(line, "PONG") == 0) break;
        CHECK_EQ_STR(line, "PING");
        CHECK(hraw_send(fd, "PONG\r\n"));
    }
    close(fd);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

int main(void)
{
    CHECK(harness_server_start(&srv, NULL, NULL) == 0);
    TEST_RUN(test_info_on_connect);
    TEST_RUN(test_connect_verbose_ok);
    TEST_RUN(test_ping_pong);
    TEST_RUN(test_pub_sub_exact_frames);
    TEST_RUN(test_pub_sub_two_clients);
    TEST_RUN(test_hpub_hmsg_exact);
    TEST_RUN(test_unsub_stops_delivery);
    TEST_RUN(test_unsub_max);
    TEST_RUN(test_queue_sub);
    TEST_RUN(test_unknown_op_closes);
    TEST_RUN(test_bad_args_and_payload_close);
    TEST_RUN(test_invalid_subject_keeps_connection);
    TEST_RUN(test_wildcard_publish_subject);
    TEST_RUN(test_max_control_line_closes);
    TEST_RUN(test_payload_one_byte_per_write);
    TEST_RUN(test_pipelined_pubs);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);

    TEST_RUN(test_stale_connection_closed);
    TEST_RUN(test_answered_pings_keep_connection);
    return test_summary();
}
