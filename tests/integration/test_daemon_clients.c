/* it_daemon_clients: stanzad as a process, seen by its NATS clients: user/password and token
 * authentication, no-echo, verbose and pedantic clients, the connection limit. The daemon is
 * started by hand (daemon_fixture.h); nothing sleeps a fixed time. */
#include "daemon_fixture.h"

static void expect_raw_auth_violation(int port, const char *connect_json)
{
    int fd = hraw_connect(port);
    CHECK(fd >= 0);
    char line[8192];
    CHECK(hraw_read_line(fd, line, sizeof(line), T_MS) > 0);
    CHECK(strncmp(line, "INFO {", 6) == 0);
    CHECK(strstr(line, "\"auth_required\":true") != NULL);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "CONNECT %s\r\nPING\r\n", connect_json);
    CHECK(hraw_send(fd, cmd));
    CHECK(hraw_read_line(fd, line, sizeof(line), T_MS) >= 0);
    CHECK_EQ_STR(line, "-ERR 'Authorization Violation'");
    CHECK(hraw_wait_closed(fd, T_MS));
    close(fd);
}

static void test_auth_user_password(void)
{
    struct hserver s;
    const char *extra[] = {"--user", "u", "--pass", "p", NULL};
    CHECK(harness_server_start(&s, NULL, extra) == 0);
    natsConnection *nc = NULL;
    struct copts anon = {.url = s.url};
    CHECK(nats_connect(&anon, &nc) != NATS_OK);
    CHECK(nc == NULL);

    char bad[128], good[128];
    snprintf(bad, sizeof(bad), "nats://u:wrong@127.0.0.1:%d", s.port);
    snprintf(good, sizeof(good), "nats://u:p@127.0.0.1:%d", s.port);
    struct copts wrong = {.url = bad};
    CHECK(nats_connect(&wrong, &nc) != NATS_OK);

    natsConnection *a = connect_url(good), *b = connect_url(good);
    round_trip(a, b, "auth.user");
    close_conn(a);
    close_conn(b);

    expect_raw_auth_violation(s.port, "{\"verbose\":false,\"user\":\"u\",\"pass\":\"wrong\"}");
    expect_raw_auth_violation(s.port, "{\"verbose\":false,\"user\":\"x\",\"pass\":\"p\"}");
    expect_raw_auth_violation(s.port, "{\"verbose\":false}");
    /* A correct raw CONNECT is accepted. */
    int fd = hraw_client(s.port, "{\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}");
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

static void test_auth_token(void)
{
    struct hserver s;
    const char *extra[] = {"--auth", "s3cret-token", NULL};
    CHECK(harness_server_start(&s, NULL, extra) == 0);
    natsConnection *nc = NULL;
    struct copts anon = {.url = s.url};
    CHECK(nats_connect(&anon, &nc) != NATS_OK);
    struct copts wrong = {.url = s.url, .token = "not-it"};
    CHECK(nats_connect(&wrong, &nc) != NATS_OK);

    struct copts right = {.url = s.url, .token = "s3cret-token"};
    natsConnection *a = connect_or_die(&right), *b = connect_or_die(&right);
    round_trip(a, b, "auth.token");
    close_conn(a);
    close_conn(b);

    expect_raw_auth_violation(s.port, "{\"verbose\":false,\"auth_token\":\"not-it\"}");
    expect_raw_auth_violation(s.port, "{\"verbose\":false}");
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

/* ---- Connection options ---- */

static int pending_msgs(natsSubscription *sub)
{
    int msgs = -1, bytes = -1;
    CHECK(natsSubscription_GetPending(sub, &msgs, &bytes) == NATS_OK);
    return msgs;
}

static void test_no_echo_verbose_pedantic(void)
{
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, NULL) == 0);
    struct copts quiet = {.url = s.url, .no_echo = true};
    natsConnection *a = connect_or_die(&quiet), *b = connect_url(s.url);
    natsSubscription *sa = NULL, *sb = NULL;
    CHECK(natsConnection_SubscribeSync(&sa, a, "echo.test") == NATS_OK);
    CHECK(natsConnection_SubscribeSync(&sb, b, "echo.test") == NATS_OK);
    CHECK(natsConnection_Flush(a) == NATS_OK);
    CHECK(natsConnection_Flush(b) == NATS_OK);
    for (int i = 0; i < 3; i++)
        CHECK(natsConnection_PublishString(a, "echo.test", "from a") == NATS_OK);
    CHECK(natsConnection_Flush(a) == NATS_OK);
    for (int i = 0; i < 2; i++)
        CHECK(natsConnection_PublishString(b, "echo.test", "from b") == NATS_OK);
    CHECK(natsConnection_Flush(b) == NATS_OK);
    /* A round trip on each receiver after both publishers flushed: the counts are final. */
    CHECK(natsConnection_Flush(a) == NATS_OK);
    CHECK(natsConnection_Flush(b) == NATS_OK);
    CHECK_EQ_INT(pending_msgs(sa), 2); /* only b's */
    CHECK_EQ_INT(pending_msgs(sb), 5); /* b echoes to itself by default */
    for (int i = 0; i < 2; i++) {
        natsMsg *m = NULL;
        CHECK(natsSubscription_NextMsg(&m, sa, T_MS) == NATS_OK);
        CHECK_MEM(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "from b");
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sa);
    natsSubscription_Destroy(sb);
    close_conn(a);
    close_conn(b);

    /* Verbose and pedantic clients work normally (libnats consumes the +OKs). */
    struct copts vp = {.url = s.url, .verbose = true, .pedantic = true};
    natsConnection *v = connect_or_die(&vp), *w = connect_or_die(&vp);
    round_trip(v, w, "verbose.pedantic");
    round_trip(w, v, "verbose.pedantic.back");
    close_conn(v);
    close_conn(w);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

static void test_max_connections(void)
{
    struct hserver s;
    CHECK(harness_server_start(&s, "max_connections: 2\n", NULL) == 0);
    /* Full handshakes, so the start-up probe's connection is long gone by the second one. */
    int c1 = hraw_client(s.port, "{\"verbose\":false}");
    CHECK(c1 >= 0);
    int c2 = hraw_client(s.port, "{\"verbose\":false}");
    CHECK(c2 >= 0);

    int c3 = hraw_connect(s.port);
    CHECK(c3 >= 0);
    char seen[1024];
    CHECK(hraw_wait_closed_capture(c3, T_MS, seen, sizeof(seen)));
    if (!strstr(seen, "-ERR") || !strstr(seen, "maximum connections"))
        fprintf(stderr, "third connection got: \"%s\"\n", seen);
    CHECK(strstr(seen, "-ERR") != NULL);
    CHECK(strstr(seen, "maximum connections") != NULL);
    close(c3);

    /* The first two are unharmed and can talk to each other. */
    CHECK(hraw_send(c1, "SUB lim 1\r\nPING\r\n"));
    CHECK(hraw_expect_line(c1, "PONG", T_MS));
    CHECK(hraw_send(c2, "PUB lim 2\r\nhi\r\nPING\r\n"));
    CHECK(hraw_expect_line(c2, "PONG", T_MS));
    CHECK(hraw_expect_bytes(c1, "MSG lim 1 2\r\nhi\r\n", T_MS));

    /* The limit counts open connections: once one leaves, a newcomer is let in. c2's round trip
     * after c1's close means the server has seen the close (it was readable first). */
    close(c1);
    CHECK(hraw_send(c2, "PING\r\n"));
    CHECK(hraw_expect_line(c2, "PONG", T_MS));
    int c4 = hraw_client(s.port, "{\"verbose\":false}");
    CHECK(c4 >= 0);
    close(c4);
    close(c2);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int64_t t0 = harness_now_ms();
    TEST_RUN(test_auth_user_password);
    TEST_RUN(test_auth_token);
    TEST_RUN(test_no_echo_verbose_pedantic);
    TEST_RUN(test_max_connections);
    nats_CloseAndWait(5000);
    fprintf(stderr, "it_daemon_clients: %lld ms\n", (long long)(harness_now_ms() - t0));
    return test_summary();
}
