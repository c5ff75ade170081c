/* it_cli_requests: what the `stanza` job-control commands (issue 9) send and print, byte for
 * byte, against a stand-in monitoring port run by this test: the request line (method, path,
 * escaped query), the bearer token (--token over $STANZA_ADMIN_TOKEN, on the read-only commands
 * too, absent when none is given), the one-line results the contract fixes, --json, --raw's
 * exact bytes, and the error texts ("<server's error> (HTTP code)" and the token hints). It
 * also checks that usage errors exit 2 without connecting at all.
 *
 * The stand-in answers exactly one request per command with a canned answer; the real server's
 * behaviour behind the same commands is it_cli_admin's. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "harness_cli.h"
#include "test.h"

#define T_MS 10000

static int lfd = -1; /* the stand-in's listening socket */
static char murl[64];

static void listen_loopback(void)
{
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(lfd, 16) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    snprintf(murl, sizeof murl, "http://127.0.0.1:%d", ntohs(a.sin_port));
}

/* Accepts one connection (waiting up to timeout_ms); -1 if none came. */
static int accept_one(int timeout_ms)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1) return -1;
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Reads a request's head (up to the blank line) into a malloc'ed string. */
static char *read_head(int fd)
{
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    buf[0] = '\0';
    while (!strstr(buf, "\r\n\r\n")) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK(poll(&p, 1, T_MS) == 1);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        CHECK(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
        CHECK(len < cap - 1);
    }
    return buf;
}

/* Runs `stanza -m STAND-IN args...`, answers its one request with status and body (JSON), and
 * returns the request's head (to free); the command's result lands in r. */
static char *exchange(struct hcli_res *r, const char *const *args, int status, const char *body)
{
    const char *argv[32] = {"-m", murl};
    size_t n = 2;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct hcli_proc p;
    hcli_start(&p, argv);
    int fd = accept_one(T_MS);
    if (fd < 0) {
        hcli_finish(&p, r, T_MS);
        hcli_dump(r, argv);
        CHECK(fd >= 0);
    }
    char *head = read_head(fd);
    char resp[8192];
    int len = snprintf(resp, sizeof resp,
                       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                       "%zu\r\nConnection: close\r\n\r\n%s",
                       status, strlen(body), body);
    CHECK(len > 0 && (size_t)len < sizeof resp);
    CHECK(hraw_send(fd, resp));
    close(fd);
    hcli_finish(&p, r, T_MS);
    return head;
}

/* The request line ("METHOD /path?query HTTP/1.1") of a head. */
static void check_request_line(const char *head, const char *method_path)
{
    char want[512];
    snprintf(want, sizeof want, "%s HTTP/1.1\r\n", method_path);
    if (strncmp(head, want, strlen(want)) != 0)
        fprintf(stderr, "wanted request line %s, got:\n%s\n", method_path, head);
    CHECK(strncmp(head, want, strlen(want)) == 0);
}

/* The Authorization header of a head: "Bearer TOKEN", or none at all when token is NULL. */
static void check_token(const char *head, const char *token)
{
    const char *h = strstr(head, "\r\nAuthorization:");
    if (!token) {
        if (h) fprintf(stderr, "unexpected Authorization header in:\n%s\n", head);
        CHECK(h == NULL);
        return;
    }
    char want[256];
    snprintf(want, sizeof want, "\r\nAuthorization: Bearer %s\r\n", token);
    if (!strstr(head, want)) fprintf(stderr, "wanted %s in:\n%s\n", want + 2, head);
    CHECK(strstr(head, want) != NULL);
}

/* One command against a 200 answer: its request line and token, exit 0, and stdout. */
static void check_ok(const char *const *args, const char *body, const char *method_path,
                     const char *token, const char *want_out)
{
    struct hcli_res r;
    char *head = exchange(&r, args, 200, body);
    if (r.status != 0 || strcmp(r.out, want_out) != 0) {
        fprintf(stderr, "wanted status 0 and stdout:\n%s", want_out);
        hcli_dump(&r, args);
    }
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_STR(r.out, want_out);
    check_request_line(head, method_path);
    check_token(head, token);
    free(head);
    hcli_free(&r);
}

static const char purge_body[] =
    "{\"channel\":\"ch\",\"purged\":5,\"msgs\":3,\"first_seq\":6,\"last_seq\":8}";

/* --token over $STANZA_ADMIN_TOKEN, the variable alone, neither; read-only commands too. */
static void test_token_sources(void)
{
    CHECK(setenv("STANZA_ADMIN_TOKEN", "from-the-environment", 1) == 0);
    const char *flag[] = {"--token", "from-the-flag", "purge", "ch", NULL};
    const char *line = "purged 5 messages from ch (now 3 stored, first 6, last 8)\n";
    check_ok(flag, purge_body, "POST /admin/purge?channel=ch", "from-the-flag", line);
    const char *env[] = {"purge", "ch", NULL};
    check_ok(env, purge_body, "POST /admin/purge?channel=ch", "from-the-environment", line);
    const char *chans[] = {"channels", "--token=t0k", NULL};
    check_ok(chans, "{\"channels\":[],\"total\":0}", "GET /streaming/channelsz?subs=1", "t0k",
             "NAME  MSGS  BYTES  FIRST  LAST  SUBS\n");
    const char *pending[] = {"pending", "foo", NULL};
    check_ok(pending, "{\"pending\":[]}", "GET /streaming/pendingz?channel=foo",
             "from-the-environment",
             "CHANNEL  QUEUE  DURABLE  CLIENT  PENDING  PENDING_BYTES  INFLIGHT  BACKLOG  OLDEST  "
             "STATE\n");
    CHECK(unsetenv("STANZA_ADMIN_TOKEN") == 0);
    check_ok(env, purge_body, "POST /admin/purge?channel=ch", NULL, line);
}

/* Every command's request and line, the contract's JSON as the answer. */
static void test_requests_and_lines(void)
{
    const char *purge[] = {"--token", "t", "purge", "a b/c", "--upto", "5", NULL};
    check_ok(purge, purge_body, "POST /admin/purge?channel=a%20b%2Fc&upto=5", "t",
             "purged 5 messages from a b/c (now 3 stored, first 6, last 8)\n");
    const char *delch[] = {"--token", "t", "delete-channel", "ch", "--force", NULL};
    check_ok(delch, "{\"channel\":\"ch\",\"deleted\":true,\"msgs\":1,\"subscriptions\":2}",
             "DELETE /admin/channel?channel=ch&force=true", "t",
             "deleted channel ch (1 message, 2 subscriptions)\n");
    const char *deld[] = {"--token", "t", "delete-durable", "ch", "dur", NULL};
    check_ok(deld, "{\"channel\":\"ch\",\"durable\":\"dur\",\"queue\":null,\"deleted\":1}",
             "DELETE /admin/durable?channel=ch&durable=dur", "t",
             "deleted durable dur on ch (1 subscription)\n");
    const char *deldq[] = {"--token", "t", "delete-durable", "ch", "dur", "--queue", "q", NULL};
    check_ok(deldq, "{\"channel\":\"ch\",\"durable\":\"dur\",\"queue\":\"q\",\"deleted\":3}",
             "DELETE /admin/durable?channel=ch&durable=dur&queue=q", "t",
             "deleted durable queue dur:q on ch (3 subscriptions)\n");
    /* The global --client-id names one client's durable. */
    const char *pause_body_c = "{\"channel\":\"ch\",\"queue\":null,\"durable\":\"d\","
                               "\"client\":\"c2\",\"paused\":true,\"subscriptions\":1}";
    const char *deldc[] = {"--token", "t", "delete-durable", "ch", "dur", "--client-id",
                           "c 1",     NULL};
    check_ok(deldc,
             "{\"channel\":\"ch\",\"durable\":\"dur\",\"queue\":null,\"client\":\"c 1\","
             "\"deleted\":1}",
             "DELETE /admin/durable?channel=ch&durable=dur&client=c%201", "t",
             "deleted durable dur of client c 1 on ch (1 subscription)\n");
    const char *pausec[] = {"--client-id", "c2", "--token", "t", "pause", "ch", "-d", "d", NULL};
    check_ok(pausec, pause_body_c, "POST /admin/pause?channel=ch&durable=d&client=c2", "t",
             "paused durable d of client c2 on ch (1 subscription)\n");
    const char *close[] = {"--token", "t", "close-client", "me+you", NULL};
    check_ok(close, "{\"client_id\":\"me+you\",\"closed\":true,\"subscriptions\":0}",
             "DELETE /admin/client?id=me%2Byou", "t", "closed client me+you (0 subscriptions)\n");
    const char *rq_all[] = {"--token", "t", "requeue", "ch", "--all", NULL};
    const char *rq_body = "{\"channel\":\"ch\",\"requeued\":4,\"msgs\":9,\"first_seq\":1,"
                          "\"last_seq\":9}";
    check_ok(rq_all, rq_body, "POST /admin/requeue?channel=ch&all=true", "t",
             "requeued 4 messages onto ch\n");
    const char *rq_seq[] = {"--token", "t", "requeue", "ch", "--seq", "7", NULL};
    check_ok(rq_seq, rq_body, "POST /admin/requeue?channel=ch&seq=7", "t",
             "requeued 4 messages onto ch\n");
    const char *pause_body = "{\"channel\":\"ch\",\"queue\":\"q\",\"durable\":null,\"paused\":true,"
                             "\"subscriptions\":2}";
    const char *pause[] = {"--token", "t", "pause", "ch", "--queue", "q", NULL};
    check_ok(pause, pause_body, "POST /admin/pause?channel=ch&queue=q", "t",
             "paused queue q on ch (2 subscriptions)\n");
    const char *resume[] = {"--token", "t", "resume", "ch", "--durable", "d", NULL};
    check_ok(resume, pause_body, "POST /admin/resume?channel=ch&durable=d", "t",
             "resumed durable d on ch (2 subscriptions)\n");
    const char *resume_dq[] = {"--token", "t", "resume", "ch", "-q", "q", "-d", "d", NULL};
    check_ok(resume_dq, pause_body, "POST /admin/resume?channel=ch&queue=q&durable=d", "t",
             "resumed queue d:q on ch (2 subscriptions)\n");
}

/* "hi\n", 0x01, "é", 0x00, 0xff: text, a control, UTF-8, a NUL, a byte that is no UTF-8. */
#define PAYLOAD_B64 "aGkKAcOpAP8="
static const char payload[] = "hi\n\x01\xc3\xa9\0\xff";

static void test_msg_and_dead(void)
{
    /* 1733333333.5 s since the epoch: 2024-12-04T17:28:53.500Z */
    const char *body =
        "{\"channel\":\"jobs.dead\",\"sequence\":3,\"timestamp\":1733333333500000000,"
        "\"size\":8,\"reply\":\"\",\"data\":\"" PAYLOAD_B64 "\",\"dead\":{"
        "\"sequence\":3,\"dead_letter\":\"jobs.dead\",\"origin_channel\":\"jobs\","
        "\"origin_sequence\":12,\"deliveries\":5,\"last_client\":\"w1\","
        "\"subscription\":\"queue:workers\",\"timestamp\":1733333333500000000,"
        "\"requeued_sequence\":40}}";
    const char *msg[] = {"--token", "t", "msg", "jobs.dead", "3", NULL};
    check_ok(msg, body, "GET /admin/msg?channel=jobs.dead&seq=3", "t",
             "jobs.dead #3  2024-12-04T17:28:53.500Z  8 bytes  reply=-\n"
             "dead letter of jobs #12 after 5 deliveries (last client w1), requeued as #40\n"
             "hi\\n\\x01\xc3\xa9\\x00\\xff\n");

    const char *raw[] = {"--token", "t", "msg", "jobs.dead", "3", "--raw", NULL};
    struct hcli_res r;
    free(exchange(&r, raw, 200, body));
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.out_len, sizeof payload - 1);
    CHECK(memcmp(r.out, payload, sizeof payload - 1) == 0);
    hcli_free(&r);

    /* Dead-lettered 3 hours ago: AGE 3h0m (for the next minute). */
    char dead_body[1024];
    snprintf(dead_body, sizeof dead_body,
             "{\"channel\":\"jobs\",\"dead_letter\":\"jobs.dead\",\"total\":3,\"offset\":1,"
             "\"count\":1,\"dead\":[{\"sequence\":2,\"dead_letter\":\"jobs.dead\",\"origin_"
             "channel\":\"jobs\",\"origin_sequence\":9,\"deliveries\":5,\"last_client\":\"w2\","
             "\"subscription\":\"queue:workers\",\"timestamp\":%lld000000000,"
             "\"requeued_sequence\":0}]}",
             (long long)time(NULL) - 3 * 3600);
    const char *dead[] = {"--token", "t", "dead", "jobs", "--offset", "1", "--limit", "1", NULL};
    check_ok(dead, dead_body, "GET /admin/dead?channel=jobs&offset=1&limit=1", "t",
             "3 dead letters of jobs in jobs.dead (1 shown from offset 1; see --offset, "
             "--limit)\n"
             "SEQ  ORIGIN-SEQ  DELIVERIES  LAST-CLIENT  SUBSCRIPTION    AGE  REQUEUED\n"
             "  2           9           5  w2           queue:workers  3h0m         -\n");
}

/* `stanza pending` shows a paused row as such, and --json keeps is_paused and dead_total. */
static void test_pending_paused(void)
{
    const char *body =
        "{\"pending\":[{\"channel\":\"jobs\",\"queue_name\":\"w\","
        "\"queue_group\":\"w\",\"members\":[\"c1\"],\"inflight_msgs\":0,"
        "\"backlog_msgs\":2,\"pending_msgs\":2,\"is_paused\":true,\"dead_total\":3}]}";
    const char *table[] = {"pending", "jobs", NULL};
    check_ok(table, body, "GET /streaming/pendingz?channel=jobs", NULL,
             "CHANNEL  QUEUE  DURABLE  CLIENT  PENDING  PENDING_BYTES  INFLIGHT  BACKLOG  OLDEST  "
             "STATE\n"
             "jobs     w      -        c1            2            0 B         0        2      0s  "
             "paused\n");
    const char *json[] = {"pending", "jobs", "--json", NULL};
    struct hcli_res r;
    free(exchange(&r, json, 200, body));
    CHECK_EQ_INT(r.status, 0);
    json_t *rows = json_loads(r.out, 0, NULL);
    json_t *row = json_array_get(rows, 0);
    CHECK(json_is_true(json_object_get(row, "is_paused")));
    CHECK_EQ_INT(json_integer_value(json_object_get(row, "dead_total")), 3);
    json_decref(rows);
    hcli_free(&r);
}

/* --json prints the server's object (whatever keys it has), parseable. */
static void test_json(void)
{
    const char *args[] = {"--token", "t", "purge", "ch", "--json", NULL};
    struct hcli_res r;
    free(exchange(&r, args, 200, purge_body));
    CHECK_EQ_INT(r.status, 0);
    json_t *got = json_loads(r.out, 0, NULL), *want = json_loads(purge_body, 0, NULL);
    CHECK(got && want && json_equal(got, want));
    json_decref(got);
    json_decref(want);
    hcli_free(&r);
}

/* One failing answer: exit 1, and stderr holding each of wants (NULL-terminated). */
static void check_error(const char *const *args, int status, const char *body,
                        const char *const *wants)
{
    struct hcli_res r;
    free(exchange(&r, args, status, body));
    bool ok = r.status == 1 && r.out_len == 0;
    for (size_t i = 0; wants[i]; i++)
        if (!strstr(r.err, wants[i])) {
            fprintf(stderr, "wanted on stderr: %s\n", wants[i]);
            ok = false;
        }
    if (!ok) hcli_dump(&r, args);
    CHECK(ok);
    hcli_free(&r);
}

static void test_error_texts(void)
{
    const char *busy[] = {"--token", "t", "delete-channel", "ch", NULL};
    const char *busy_want[] = {"stanza: channel \"ch\" has 2 subscriptions (HTTP 409)\n",
                               "stanza: hint: --force deletes it with its subscriptions\n", NULL};
    check_error(busy, 409, "{\"error\":\"channel \\\"ch\\\" has 2 subscriptions\"}", busy_want);

    const char *none[] = {"purge", "ch", NULL};
    const char *missing_want[] = {"stanza: missing bearer token (HTTP 401)\n",
                                  "--token T or set $STANZA_ADMIN_TOKEN", NULL};
    check_error(none, 401, "{\"error\":\"missing bearer token\"}", missing_want);
    const char *wrong[] = {"--token", "nope", "purge", "ch", NULL};
    const char *invalid_want[] = {"stanza: invalid token (HTTP 403)\n",
                                  "must be the server's admin_token", NULL};
    check_error(wrong, 403, "{\"error\":\"invalid token\"}", invalid_want);
    const char *ro_want[] = {"stanza: missing bearer token (HTTP 401)\n", "--token", NULL};
    const char *ro[] = {"channels", NULL};
    check_error(ro, 401, "{\"error\":\"missing bearer token\"}", ro_want);

    /* Not JSON: the method and path instead of a server text. */
    char want[128];
    snprintf(want, sizeof want, "stanza: monitoring at %s: POST /admin/purge?channel=ch: HTTP 500",
             murl);
    const char *plain_want[] = {want, NULL};
    check_error(none, 500, "oops", plain_want);
    const char *enoent_want[] = {"stanza: no message 9 in channel \"ch\" (HTTP 404)\n", NULL};
    const char *msg[] = {"msg", "ch", "9", NULL};
    check_error(msg, 404, "{\"error\":\"no message 9 in channel \\\"ch\\\"\"}", enoent_want);
}

/* Usage errors exit 2 with a message, and nothing connects to the monitoring port. */
static void test_usage_errors_stay_offline(void)
{
    const char *cases[][10] = {
        {"msg", NULL},
        {"msg", "ch", NULL},
        {"msg", "ch", "0", NULL},
        {"msg", "ch", "-3", NULL},
        {"msg", "ch", "seven", NULL},
        {"msg", "", "1", NULL},
        {"msg", "ch", "1", "--raw", "--json", NULL},
        {"msg", "ch", "1", "2", NULL},
        {"purge", NULL},
        {"purge", "ch", "--upto", "0", NULL},
        {"purge", "ch", "--upto", "x", NULL},
        {"purge", "ch", "--all", NULL},
        {"delete-channel", NULL},
        {"delete-channel", "ch", "--force=yes", NULL},
        {"delete-durable", "ch", NULL},
        {"delete-durable", "ch", "", NULL},
        {"delete-durable", "ch", "d", "--queue", NULL},
        {"close-client", NULL},
        {"close-client", "a", "b", NULL},
        {"dead", NULL},
        {"dead", "ch", "--limit", "0", NULL},
        {"requeue", "ch", NULL},
        {"requeue", "ch", "--seq", "2", "--all", NULL},
        {"requeue", "ch", "--seq", "0", NULL},
        {"requeue", NULL, NULL},
        {"pause", "ch", NULL},
        {"resume", "ch", NULL},
        {"pause", NULL},
        {"pause", "ch", "--queue", "", NULL},
        {"--token", "", "purge", "ch", NULL},
        {"purge", "ch", "--token", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[14] = {"-m", murl};
        for (size_t k = 0; cases[i][k]; k++)
            args[2 + k] = cases[i][k];
        struct hcli_res r;
        hcli_run(&r, args, T_MS);
        int fd = accept_one(0);
        if (r.status != 2 || !*r.err || fd >= 0) hcli_dump(&r, args);
        CHECK_EQ_INT(r.status, 2);
        CHECK(*r.err != '\0');
        CHECK(fd < 0);
        hcli_free(&r);
    }
}

int main(void)
{
    listen_loopback();
    TEST_RUN(test_usage_errors_stay_offline);
    TEST_RUN(test_token_sources);
    TEST_RUN(test_requests_and_lines);
    TEST_RUN(test_msg_and_dead);
    TEST_RUN(test_json);
    TEST_RUN(test_pending_paused);
    TEST_RUN(test_error_texts);
    close(lfd);
    return test_summary();
}
