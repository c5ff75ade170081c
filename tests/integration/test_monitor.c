/* it_monitor: the monitoring endpoints against a real stanzad, driven by real STAN clients:
 * exact pending counts (messages and bytes) over the NSS-compatible JSON and /metrics, a large
 * backlog behind a small MaxInflight, counts after kill -9 and a restart, counts after limits
 * drop messages, NSS's keys and types, promtool's check, and bad HTTP requests refused while
 * messages keep flowing. Every wait polls an endpoint with a deadline. */
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000

static json_t *get_json(int port, const char *path)
{
    json_t *j = hhttp_json(port, path);
    CHECK(j != NULL);
    return j;
}

static int64_t iget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) fprintf(stderr, "key %s is not an integer\n", k);
    CHECK(json_is_integer(v));
    return json_integer_value(v);
}

/* The first subscription object of channel (NULL if none yet). Caller decrefs the root. */
static json_t *first_sub(int mport, const char *channel, json_t **root)
{
    char path[256];
    snprintf(path, sizeof path, "/streaming/channelsz?channel=%s&subs=1", channel);
    *root = get_json(mport, path);
    json_t *subs = json_object_get(*root, "subscriptions");
    return json_array_size(subs) ? json_array_get(subs, 0) : NULL;
}

/* Waits until the channel's first subscription shows these counts. */
static void wait_counts(int mport, const char *channel, int64_t pending, int64_t pending_bytes,
                        int64_t inflight, int64_t backlog)
{
    int64_t deadline = harness_now_ms() + T_MS;
    for (;;) {
        json_t *root;
        json_t *s = first_sub(mport, channel, &root);
        bool ok = s && iget(s, "pending_msgs") == pending &&
                  iget(s, "pending_bytes") == pending_bytes &&
                  iget(s, "inflight_msgs") == inflight && iget(s, "pending_count") == inflight &&
                  iget(s, "backlog_msgs") == backlog;
        if (ok || harness_now_ms() > deadline) {
            if (!ok) {
                char *t = json_dumps(root, JSON_INDENT(2));
                fprintf(stderr, "wanted pending %lld/%lld B, inflight %lld, backlog %lld; got %s\n",
                        (long long)pending, (long long)pending_bytes, (long long)inflight,
                        (long long)backlog, t);
                free(t);
            }
            json_decref(root);
            CHECK(ok);
            return;
        }
        json_decref(root);
        poll(NULL, 0, 20);
    }
}

/* The value of one /metrics sample (line starting with `series`), or -1. */
static double metric(int mport, const char *series)
{
    return hhttp_metric(mport, series);
}

/* What `stanza -m http://127.0.0.1:MPORT pending ARGS... --json` prints (an array; the caller
 * decrefs it). */
static json_t *cli_pending_json(int mport, const char *const *args)
{
    const char *cli = getenv("STANZA_CLI");
    CHECK(cli != NULL);
    char url[64], dir[PATH_MAX], out[PATH_MAX + 16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", mport);
    CHECK(hmkdtemp(dir, sizeof dir) == 0);
    snprintf(out, sizeof out, "%s/out", dir);
    const char *argv[16] = {cli, "-m", url, "pending"};
    size_t n = 4;
    for (; *args && n < 14; args++)
        argv[n++] = *args;
    argv[n++] = "--json";
    argv[n] = NULL;
    CHECK_EQ_INT(hproc_run(argv, NULL, out, NULL, T_MS), 0);
    char *text = hfile_read(out);
    json_error_t e;
    json_t *arr = json_loads(text, 0, &e);
    if (!json_is_array(arr)) fprintf(stderr, "stanza pending --json printed: %s\n", text);
    CHECK(json_is_array(arr));
    free(text);
    hremove_tree(dir);
    return arr;
}

/* The row of queue (NULL: the row without a queue) that `stanza pending CHANNEL --json` prints
 * (NULL if none); the caller decrefs it. */
static json_t *cli_pending_row(int mport, const char *channel, const char *queue)
{
    const char *args[] = {channel, NULL};
    json_t *arr = cli_pending_json(mport, args);
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *row = json_array_get(arr, i);
        json_t *q = json_object_get(row, "queue_name");
        if (queue ? (json_is_string(q) && strcmp(json_string_value(q), queue) == 0)
                  : !json_is_string(q))
            found = json_incref(row);
    }
    json_decref(arr);
    return found;
}

/* `stanza pending --json` for channel, row of queue (or NULL); returns pending msgs and bytes
 * through out params. */
static void cli_pending(int mport, const char *channel, const char *queue, int64_t *msgs,
                        int64_t *bytes)
{
    json_t *row = cli_pending_row(mport, channel, queue);
    *msgs = row ? iget(row, "pending_msgs") : -1;
    *bytes = row ? iget(row, "pending_bytes") : -1;
    json_decref(row);
}

static void start(struct hserver *s, int *mport, const char *extra1, const char *extra2,
                  const char *dir)
{
    static char port_s[16];
    *mport = harness_free_port();
    snprintf(port_s, sizeof port_s, "%d", *mport);
    const char *args[] = {"-m", port_s, "--store", "FILE", "--dir", dir, extra1, extra2, NULL};
    CHECK(harness_server_start(s, NULL, args) == 0);
}

/* The scenario: a queue group "bar" on "foo" whose worker is busy (it acks nothing
 * for now), ten 10-byte messages: pending 10 messages / 100 bytes everywhere, then 0. */
static void test_queue_group_pending_exact(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, NULL, NULL, d.data);
    stanConnection *worker = hstan_connect_or_die(&s, "worker-1");
    stanConnection *pub = hstan_connect_or_die(&s, "producer");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 64, HSTAN_ACK_TEST);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, 60000) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, worker, "foo", "bar", &rx, o) == NATS_OK);
    for (int i = 0; i < 10; i++)
        CHECK(hstan_pub(pub, "foo", "0123456789") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 10, T_MS));
    wait_counts(mport, "foo", 10, 100, 10, 0);

    json_t *root;
    json_t *js = first_sub(mport, "foo", &root);
    CHECK_EQ_STR(json_string_value(json_object_get(js, "queue_name")), "bar");
    CHECK_EQ_STR(json_string_value(json_object_get(js, "client_id")), "worker-1");
    CHECK(json_real_value(json_object_get(js, "oldest_pending_age")) >= 0);
    json_decref(root);
    /* The same over Prometheus: one series for the group. */
    const char *series = "stanza_subscription_pending_messages{channel=\"foo\",queue=\"bar\","
                         "durable=\"\",client_id=\"\",sub=\"\"}";
    CHECK(metric(mport, series) == 10);
    CHECK(metric(mport, "stanza_subscription_pending_bytes{channel=\"foo\",queue=\"bar\","
                        "durable=\"\",client_id=\"\",sub=\"\"}") == 100);
    /* And through the admin command. */
    int64_t pm, pb;
    cli_pending(mport, "foo", "bar", &pm, &pb);
    CHECK_EQ_INT(pm, 10);
    CHECK_EQ_INT(pb, 100);

    for (int i = 0; i < 10; i++)
        CHECK(hstan_rx_ack(&rx, i) == NATS_OK);
    wait_counts(mport, "foo", 0, 0, 0, 0);
    CHECK(metric(mport, series) == 0);
    cli_pending(mport, "foo", "bar", &pm, &pb);
    CHECK_EQ_INT(pm, 0);
    CHECK_EQ_INT(pb, 0);

    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(worker);
    stanConnection_Destroy(pub);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

/* The one pending row of /streaming/pendingz for queue `queue` on channel (NULL if none yet);
 * *root holds it (the caller decrefs). */
static json_t *pendingz_row(int mport, const char *path, const char *queue, json_t **root)
{
    *root = get_json(mport, path);
    json_t *rows = json_object_get(*root, "pending");
    CHECK(json_is_array(rows));
    CHECK_EQ_INT(iget(*root, "count"), (int64_t)json_array_size(rows));
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        json_t *q = json_object_get(r, "queue_name");
        if (queue ? json_is_string(q) && strcmp(json_string_value(q), queue) == 0 : !q) return r;
    }
    return NULL;
}

/* /metrics: the same numbers as the pendingz row g in the group's one series set. */
static void metrics_agree(int mport, json_t *g)
{
    static const char *const series[][2] = {
        {"pending_messages", "pending_msgs"},      {"pending_bytes", "pending_bytes"},
        {"inflight_messages", "inflight_msgs"},    {"inflight_bytes", "inflight_bytes"},
        {"backlog_messages", "backlog_msgs"},      {"backlog_bytes", "backlog_bytes"},
        {"redelivered_total", "redelivered_total"}};
    for (size_t i = 0; i < sizeof series / sizeof *series; i++) {
        char name[256];
        snprintf(name, sizeof name,
                 "stanza_subscription_%s{channel=\"g\",queue=\"grp\",durable=\"\",client_id=\"\","
                 "sub=\"\"}",
                 series[i][0]);
        CHECK(metric(mport, name) == (double)iget(g, series[i][1]));
    }
    const char *labels = "{channel=\"g\",queue=\"grp\",durable=\"\",client_id=\"\",sub=\"\"}";
    char name[256];
    snprintf(name, sizeof name, "stanza_subscription_stalled%s", labels);
    CHECK(metric(mport, name) == 1);
    snprintf(name, sizeof name, "stanza_subscription_offline%s", labels);
    CHECK(metric(mport, name) == 0);
}

/* pendingz's filters: by queue, by member client, by durable; an unknown channel is a 404. */
static void pendingz_filters(int mport)
{
    json_t *f = get_json(mport, "/streaming/pendingz?queue=grp");
    CHECK_EQ_INT(iget(f, "count"), 1);
    json_decref(f);
    f = get_json(mport, "/streaming/pendingz?client=w2");
    CHECK_EQ_INT(iget(f, "count"), 1);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(f, "pending"), 0),
                                                   "queue_name")),
                 "grp");
    json_decref(f);
    f = get_json(mport, "/streaming/pendingz?durable=nope");
    CHECK_EQ_INT(iget(f, "count"), 0);
    json_decref(f);
    char *body;
    CHECK_EQ_INT(hhttp_get(mport, "/streaming/pendingz?channel=nope", &body), 404);
    free(body);
}

/* pendingz's group row g (two members w1 and w2 at MaxInflight 5, 30 messages of 10 bytes)
 * and the plain subscription's row of its own. */
static void check_rows(int mport, json_t *g)
{
    CHECK_EQ_INT(iget(g, "inflight_msgs"), 10);
    CHECK_EQ_INT(iget(g, "inflight_bytes"), 100);
    CHECK_EQ_INT(iget(g, "backlog_msgs"), 20);
    CHECK_EQ_INT(iget(g, "backlog_bytes"), 200);
    CHECK_EQ_INT(iget(g, "pending_msgs"), 30);
    CHECK_EQ_INT(iget(g, "pending_bytes"), 300);
    CHECK_EQ_INT(iget(g, "redelivered_total"), 0);
    CHECK(json_is_true(json_object_get(g, "is_stalled")));
    CHECK(json_is_false(json_object_get(g, "is_offline")));
    CHECK_EQ_STR(json_string_value(json_object_get(g, "queue_group")), "grp");
    CHECK(json_object_get(g, "client_id") == NULL);
    /* The plain subscription: its own row, 5 in flight, 25 behind. */
    json_t *root2;
    json_t *p = pendingz_row(mport, "/streaming/pendingz", NULL, &root2);
    CHECK(p != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(p, "client_id")), "pub");
    CHECK_EQ_INT(iget(p, "pending_msgs"), 30);
    CHECK_EQ_INT(iget(p, "inflight_msgs"), 5);
    CHECK_EQ_INT((int64_t)json_array_size(json_object_get(root2, "pending")), 2);
    json_decref(root2);
}

/* A queue group of two members (MaxInflight 5 each, never acking) and a plain subscription on
 * one channel, 30 messages of 10 bytes: the group is one row with its backlog once (20) and
 * both members' in-flight messages (5 + 5), and /streaming/pendingz, /metrics and `stanza
 * pending` show the same numbers for it; the plain subscription is a row of its own. */
static void test_group_rows_agree(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, NULL, NULL, d.data);
    stanConnection *w[2] = {hstan_connect_or_die(&s, "w1"), hstan_connect_or_die(&s, "w2")};
    stanConnection *pub = hstan_connect_or_die(&s, "pub");
    struct hstan_rx rx[3];
    stanSubscription *sub[3] = {NULL};
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 5) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, 600000) == NATS_OK);
    for (int i = 0; i < 3; i++) {
        hstan_rx_init(&rx[i], 64, HSTAN_ACK_TEST);
        CHECK(hstan_sub(&sub[i], i < 2 ? w[i] : pub, "g", i < 2 ? "grp" : NULL, &rx[i], o) ==
              NATS_OK);
    }
    for (int i = 0; i < 30; i++)
        CHECK(hstan_pub(pub, "g", "0123456789") == NATS_OK);
    CHECK(hstan_rx_wait(&rx[0], 5, T_MS) && hstan_rx_wait(&rx[1], 5, T_MS));
    CHECK(hstan_rx_wait(&rx[2], 5, T_MS));

    /* Wait for the group's 10 in flight; then nothing moves (nobody acks). */
    int64_t deadline = harness_now_ms() + T_MS;
    json_t *root, *g;
    for (;;) {
        g = pendingz_row(mport, "/streaming/pendingz?channel=g", "grp", &root);
        if ((g && iget(g, "inflight_msgs") == 10) || harness_now_ms() > deadline) break;
        json_decref(root);
        poll(NULL, 0, 20);
    }
    CHECK(g != NULL);
    check_rows(mport, g);
    json_t *members = json_object_get(g, "members");
    CHECK_EQ_INT((int64_t)json_array_size(members), 2);
    const char *m0 = json_string_value(json_array_get(members, 0));
    const char *m1 = json_string_value(json_array_get(members, 1));
    CHECK(m0 && m1 && strcmp(m0, m1) != 0 && strncmp(m0, "w", 1) == 0 && strncmp(m1, "w", 1) == 0);
    metrics_agree(mport, g);

    /* `stanza pending`: the server's row, its members listed. */
    json_t *c = cli_pending_row(mport, "g", "grp");
    CHECK(c != NULL);
    const char *keys[] = {"inflight_msgs", "inflight_bytes", "backlog_msgs",     "backlog_bytes",
                          "pending_msgs",  "pending_bytes",  "redelivered_total"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CHECK_EQ_INT(iget(c, keys[i]), iget(g, keys[i]));
    CHECK(json_is_true(json_object_get(c, "is_stalled")));
    CHECK(json_is_false(json_object_get(c, "is_offline")));
    char both[64];
    snprintf(both, sizeof both, "%s,%s", m0, m1);
    CHECK_EQ_STR(json_string_value(json_object_get(c, "client_id")), both);
    json_decref(c);
    json_decref(root);

    pendingz_filters(mport);

    for (int i = 0; i < 3; i++) {
        stanSubscription_Destroy(sub[i]);
        hstan_rx_destroy(&rx[i]);
    }
    stanSubOptions_Destroy(o);
    stanConnection_Destroy(w[0]);
    stanConnection_Destroy(w[1]);
    stanConnection_Destroy(pub);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

/* ---- a server without /streaming/pendingz (nats-streaming-server) ---- */

/* NSS's channelsz answers: on "foo", a queue group "grp" of two members (3 and 4 in flight) and
 * a durable "d1" (none). NSS has no backlog keys. */
#define NSS_SUBS                                                                                   \
    "[{\"client_id\":\"a\",\"inbox\":\"_INBOX.a\",\"ack_inbox\":\"_STAN.ack.a\","                  \
    "\"queue_name\":\"grp\",\"is_durable\":false,\"is_offline\":false,\"max_inflight\":5,"         \
    "\"ack_wait\":30,\"last_sent\":10,\"pending_count\":3,\"is_stalled\":false},"                  \
    "{\"client_id\":\"b\",\"inbox\":\"_INBOX.b\",\"ack_inbox\":\"_STAN.ack.b\","                   \
    "\"queue_name\":\"grp\",\"is_durable\":false,\"is_offline\":false,\"max_inflight\":5,"         \
    "\"ack_wait\":30,\"last_sent\":10,\"pending_count\":4,\"is_stalled\":false},"                  \
    "{\"client_id\":\"c\",\"inbox\":\"_INBOX.c\",\"ack_inbox\":\"_STAN.ack.c\","                   \
    "\"durable_name\":\"d1\",\"is_durable\":true,\"is_offline\":true,\"max_inflight\":5,"          \
    "\"ack_wait\":30,\"last_sent\":10,\"pending_count\":0,\"is_stalled\":false}]"
#define NSS_CHANNEL                                                                                \
    "{\"name\":\"foo\",\"msgs\":10,\"bytes\":100,\"first_seq\":1,\"last_seq\":10,"                 \
    "\"subscriptions\":" NSS_SUBS "}"

struct fake_nss {
    int fd, port;
    pthread_t thread;
};

/* Answers each request on its own connection until the listener is shut down: 404 for
 * anything but channelsz. */
static void *fake_nss_serve(void *arg)
{
    struct fake_nss *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) break;
        char req[4096];
        size_t n = 0;
        while (n < sizeof req - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
            ssize_t r = read(c, req + n, sizeof req - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
        }
        req[n] = '\0';
        const char *body = NULL;
        if (strncmp(req, "GET /streaming/channelsz?channel=foo&subs=1 ", 44) == 0)
            body = NSS_CHANNEL;
        else if (strncmp(req, "GET /streaming/channelsz?subs=1 ", 32) == 0)
            body = "{\"cluster_id\":\"test-cluster\",\"server_id\":\"nss\",\"offset\":0,"
                   "\"limit\":1024,\"count\":1,\"total\":1,\"channels\":[" NSS_CHANNEL "]}";
        char head[256];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                          body ? "200 OK" : "404 Not Found", body ? strlen(body) : 0);
        bool ok = write(c, head, (size_t)hl) == hl;
        if (ok && body) ok = write(c, body, strlen(body)) == (ssize_t)strlen(body);
        close(c);
    }
    return NULL;
}

static void fake_nss_start(struct fake_nss *f)
{
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(f->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(f->fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(f->fd, 8) == 0);
    CHECK(getsockname(f->fd, (struct sockaddr *)&a, &len) == 0);
    f->port = ntohs(a.sin_port);
    CHECK(pthread_create(&f->thread, NULL, fake_nss_serve, f) == 0);
}

static void fake_nss_stop(struct fake_nss *f)
{
    shutdown(f->fd, SHUT_RDWR); /* wakes the accept */
    CHECK(pthread_join(f->thread, NULL) == 0);
    close(f->fd);
}

/* The rows of the subscriptions of queue (NULL: those without one) in arr. */
static size_t rows_of(json_t *arr, const char *queue)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *q = json_object_get(json_array_get(arr, i), "queue_name");
        n += queue ? json_is_string(q) && strcmp(json_string_value(q), queue) == 0
                   : !json_is_string(q);
    }
    return n;
}

/* Against NSS (no pendingz), `stanza pending` shows the subscriptions as NSS reports them: the
 * group's two members are two rows (not folded), PENDING is pending_count. */
static void test_pending_without_pendingz(void)
{
    struct fake_nss f;
    fake_nss_start(&f);
    const char *all[] = {NULL}, *one[] = {"foo", NULL}, *q[] = {"--queue", "grp", NULL},
               *d[] = {"--durable", "d1", NULL};
    const char *const *cases[] = {all, one, q, d};
    const size_t want_grp[] = {2, 2, 2, 0}, want_plain[] = {1, 1, 0, 1};
    for (size_t k = 0; k < 4; k++) {
        json_t *arr = cli_pending_json(f.port, cases[k]);
        CHECK_EQ_INT((int64_t)rows_of(arr, "grp"), (int64_t)want_grp[k]);
        CHECK_EQ_INT((int64_t)rows_of(arr, NULL), (int64_t)want_plain[k]);
        int64_t sum = 0;
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *r = json_array_get(arr, i);
            CHECK_EQ_INT(iget(r, "pending_msgs"), iget(r, "inflight_msgs"));
            CHECK_EQ_INT(iget(r, "backlog_msgs"), 0);
            const char *c = json_string_value(json_object_get(r, "client_id"));
            CHECK(c != NULL && strlen(c) == 1); /* one client each: nothing folded */
            sum += iget(r, "pending_msgs");
        }
        CHECK_EQ_INT(sum, k == 3 ? 0 : 7);
        json_decref(arr);
    }
    fake_nss_stop(&f);
}

/* 100,000 messages behind MaxInflight 10: backlog and bytes exact; the same after kill -9. */
static void test_backlog_and_restart(void)
{
    enum { N = 100000, SZ = 16 };
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, NULL, NULL, d.data);
    stanConnection *pub = hstan_connect_window(&s, "bulk", 16384);
    for (int i = 0; i < N; i++)
        CHECK(stanConnection_PublishAsync(pub, "jobs", "0123456789abcdef", SZ, NULL, NULL) ==
              NATS_OK);
    hstan_commit_barrier(pub); /* every async publish before it is stored */
    stanConnection *w = hstan_connect_or_die(&s, "slow-worker");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 64, HSTAN_ACK_TEST);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 10) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, 600000) == NATS_OK);
    CHECK(stanSubOptions_SetDurableName(o, "slow") == NATS_OK);
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, w, "jobs", NULL, &rx, o) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 10, T_MS));
    wait_counts(mport, "jobs", N, (int64_t)N * SZ, 10, N - 10);
    json_t *root;
    json_t *js = first_sub(mport, "jobs", &root);
    CHECK_EQ_INT(iget(js, "backlog_bytes"), (int64_t)(N - 10) * SZ);
    CHECK_EQ_INT(iget(js, "inflight_bytes"), 10 * SZ);
    CHECK(json_is_true(json_object_get(js, "is_stalled")));
    json_decref(root);

    /* The unacked rows reach the disk with the next commit; a publish on another channel is
     * a commit barrier for them. */
    hstan_commit_barrier(pub);
    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    const char *args[] = {"-m", NULL, "--store", "FILE", "--dir", d.data, NULL};
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", mport);
    args[1] = port_s;
    CHECK(harness_server_restart(&s, args) == 0);
    /* Derived from the store: the same numbers (whether or not the client has reconnected:
     * redeliveries to it do not change what it owes). */
    wait_counts(mport, "jobs", N, (int64_t)N * SZ, 10, N - 10);

    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(w);
    stanConnection_Destroy(pub);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

/* -mm 50: after 100 publishes the subscription is owed only what is still stored. */
static void test_counts_after_eviction(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, "-mm", "50", d.data);
    stanConnection *c = hstan_connect_or_die(&s, "evict");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 64, HSTAN_ACK_TEST);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 10) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, 600000) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, c, "lim", NULL, &rx, o) == NATS_OK);
    for (int i = 0; i < 100; i++)
        CHECK(hstan_pub(c, "lim", "abcde") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 10, T_MS));
    /* Stored: 51..100; delivered 1..10 (in flight); owed from the store: 50 messages. */
    wait_counts(mport, "lim", 60, 300, 10, 50);
    json_t *ch = get_json(mport, "/streaming/channelsz?channel=lim");
    CHECK_EQ_INT(iget(ch, "msgs"), 50);
    CHECK_EQ_INT(iget(ch, "bytes"), 250);
    CHECK_EQ_INT(iget(ch, "first_seq"), 51);
    CHECK_EQ_INT(iget(ch, "last_seq"), 100);
    json_decref(ch);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(c);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

/* -mb 1000: one batch of 100 messages of 128 bytes keeps the newest 7 (896 bytes). */
static void test_counts_after_byte_eviction(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, "-mb", "1000", d.data);
    stanConnection *c = hstan_connect_window(&s, "evict-bytes", 16384);
    char payload[128];
    memset(payload, 'b', sizeof payload);
    for (int i = 0; i < 100; i++)
        CHECK(stanConnection_PublishAsync(c, "limb", payload, sizeof payload, NULL, NULL) ==
              NATS_OK);
    hstan_commit_barrier(c);
    json_t *ch = get_json(mport, "/streaming/channelsz?channel=limb");
    CHECK_EQ_INT(iget(ch, "msgs"), 7);
    CHECK_EQ_INT(iget(ch, "bytes"), 896);
    CHECK_EQ_INT(iget(ch, "first_seq"), 94);
    CHECK_EQ_INT(iget(ch, "last_seq"), 100);
    json_decref(ch);
    stanConnection_Destroy(c);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

static void check_type(json_t *o, const char *k, json_type type)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_typeof(v) != type) fprintf(stderr, "key \"%s\": wrong or missing\n", k);
    CHECK(v && json_typeof(v) == type);
}

static void check_types(json_t *o, const char *const *keys_upto_null, json_type type)
{
    for (size_t i = 0; keys_upto_null[i]; i++)
        check_type(o, keys_upto_null[i], type);
}

static const char *const list_keys[] = {"offset", "limit", "count", "total", NULL};

/* serverz, storez and clientsz: NSS's keys with NSS's types. */
static void check_nss_keys(int mport)
{
    json_t *sz = get_json(mport, "/streaming/serverz");
    const char *str_keys[] = {"cluster_id", "server_id",  "version", "go", "state",
                              "now",        "start_time", "uptime",  NULL};
    check_types(sz, str_keys, JSON_STRING);
    const char *int_keys[] = {"clients", "subscriptions", "channels", "total_msgs", "total_bytes",
                              "in_msgs", "in_bytes",      "out_msgs", "out_bytes",  NULL};
    check_types(sz, int_keys, JSON_INTEGER);
    CHECK_EQ_STR(json_string_value(json_object_get(sz, "state")), "STANDALONE");
    CHECK_EQ_INT(iget(sz, "clients"), 1);
    json_decref(sz);

    json_t *st = get_json(mport, "/streaming/storez");
    check_type(st, "type", JSON_STRING);
    CHECK_EQ_STR(json_string_value(json_object_get(st, "type")), "FILE");
    json_t *lim = json_object_get(st, "limits");
    const char *lim_keys[] = {"max_channels",      "max_msgs",       "max_bytes", "max_age",
                              "max_subscriptions", "max_inactivity", NULL};
    check_types(lim, lim_keys, JSON_INTEGER);
    json_decref(st);

    /* clientsz with subscriptions: the client "keys" and its durable queue member "dq:grp". */
    json_t *cz = get_json(mport, "/streaming/clientsz?subs=1");
    check_types(cz, list_keys, JSON_INTEGER);
    json_t *cl = json_array_get(json_object_get(cz, "clients"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(cl, "id")), "keys");
    check_type(cl, "hb_inbox", JSON_STRING);
    CHECK_EQ_INT(iget(cl, "subs_count"), 1);
    json_t *subs = json_object_get(json_object_get(cl, "subscriptions"), "k");
    CHECK(json_array_size(subs) == 1);
    json_t *sb = json_array_get(subs, 0);
    CHECK_EQ_STR(json_string_value(json_object_get(sb, "queue_name")), "dq:grp");
    const char *sub_str[] = {"client_id", "inbox", "ack_inbox", "durable_name", "queue_name", NULL};
    check_types(sb, sub_str, JSON_STRING);
    const char *sub_int[] = {"max_inflight",  "ack_wait",          "last_sent",
                             "pending_count", "inflight_msgs",     "inflight_bytes",
                             "backlog_msgs",  "backlog_bytes",     "pending_msgs",
                             "pending_bytes", "redelivered_total", NULL};
    check_types(sb, sub_int, JSON_INTEGER);
    check_type(sb, "is_durable", JSON_TRUE);
    check_type(sb, "is_offline", JSON_FALSE);
    check_type(sb, "is_stalled", JSON_FALSE);
    check_type(sb, "is_paused", JSON_FALSE);
    check_type(sb, "oldest_pending_age", JSON_REAL);
    json_decref(cz);
}

/* channelsz: the list with subscriptions (written out channel by channel), its paging, the
 * names; unknown names and bad offsets refused; healthz; /metrics. */
static void check_channelsz_health_metrics(int mport, const char *dir)
{
    json_t *cs = get_json(mport, "/streaming/channelsz?subs=1");
    check_types(cs, list_keys, JSON_INTEGER);
    CHECK_EQ_INT(iget(cs, "count"), 1);
    CHECK_EQ_INT(iget(cs, "total"), 1);
    json_t *ch0 = json_array_get(json_object_get(cs, "channels"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(ch0, "name")), "k");
    CHECK_EQ_INT(iget(ch0, "subs_count"), 1);
    CHECK(json_array_size(json_object_get(ch0, "subscriptions")) == 1);
    json_decref(cs);
    cs = get_json(mport, "/streaming/channelsz?subs=1&offset=1");
    CHECK_EQ_INT(iget(cs, "count"), 0);
    CHECK_EQ_INT(iget(cs, "total"), 1);
    CHECK(json_array_size(json_object_get(cs, "channels")) == 0);
    json_decref(cs);

    json_t *names = get_json(mport, "/streaming/channelsz");
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(names, "names"), 0)), "k");
    json_decref(names);
    char *body;
    CHECK_EQ_INT(hhttp_get(mport, "/streaming/channelsz?channel=nope", &body), 404);
    free(body);
    CHECK_EQ_INT(hhttp_get(mport, "/streaming/clientsz?client=nope", &body), 404);
    free(body);
    CHECK_EQ_INT(hhttp_get(mport, "/streaming/channelsz?offset=-1", &body), 400);
    free(body);
    CHECK_EQ_INT(hhttp_get(mport, "/healthz", &body), 200);
    CHECK(strstr(body, "\"ok\"") != NULL);
    free(body);

    /* promtool accepts /metrics, when installed (scripts/deps.sh installs it). */
    if (access("/usr/bin/promtool", X_OK) != 0) {
        fprintf(stderr, "   promtool not installed: metrics format not checked\n");
        return;
    }
    CHECK_EQ_INT(hhttp_get(mport, "/metrics", &body), 200);
    char path[PATH_MAX], out[PATH_MAX];
    snprintf(path, sizeof path, "%s/metrics.txt", dir);
    snprintf(out, sizeof out, "%s/promtool.out", dir);
    CHECK(hfile_write(path, body) == 0);
    free(body);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s > %s 2>&1", path, out);
    int rc = system(cmd);
    if (rc != 0) hfile_dump("promtool", out);
    CHECK_EQ_INT(rc, 0);
}

/* Bad HTTP: refused, and the message flow (c publishing on "k", rx receiving) is untouched. */
static void check_bad_requests(int mport, stanConnection *c, struct hstan_rx *rx)
{
    const char *bad[] = {"POST /streaming/serverz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                         "GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nX: \x01\x02\r\n\r\n"};
    for (size_t i = 0; i < 3; i++) {
        char *ans = hhttp_raw(mport, bad[i], strlen(bad[i]));
        CHECK(ans != NULL);
        int status = 0;
        sscanf(ans, "HTTP/1.%*d %d", &status);
        CHECK(status >= 400 || ans[0] == '\0');
        free(ans);
    }
    char big[16384];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    char *ans = hhttp_raw(mport, big, sizeof big);
    CHECK(ans != NULL && strncmp(ans, "HTTP/1.1 4", 10) == 0);
    free(ans);
    /* A slow client that never finishes its request does not hold anything up. */
    int slow = hraw_connect(mport);
    CHECK(slow >= 0 && write(slow, "GET /stream", 11) == 11);
    for (int i = 0; i < 100; i++)
        CHECK(hstan_pub(c, "k", "y") == NATS_OK);
    CHECK(hstan_rx_wait(rx, 101, T_MS));
    close(slow);
    char *body;
    CHECK_EQ_INT(hhttp_get(mport, "/streaming/serverz", &body), 200);
    free(body);
}

/* NSS's keys with NSS's types, a durable queue's name, promtool, and bad requests refused
 * while messages keep flowing. */
static void test_nss_keys_promtool_bad_requests(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, NULL, NULL, d.data);
    stanConnection *c = hstan_connect_or_die(&s, "keys");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 1024, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, "dq") == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, c, "k", "grp", &rx, o) == NATS_OK);
    CHECK(hstan_pub(c, "k", "x") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));

    check_nss_keys(mport);
    check_channelsz_health_metrics(mport, d.dir);
    check_bad_requests(mport, c, &rx);

    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(c);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

int main(void)
{
    TEST_RUN(test_queue_group_pending_exact);
    TEST_RUN(test_group_rows_agree);
    TEST_RUN(test_pending_without_pendingz);
    TEST_RUN(test_backlog_and_restart);
    TEST_RUN(test_counts_after_eviction);
    TEST_RUN(test_counts_after_byte_eviction);
    TEST_RUN(test_nss_keys_promtool_bad_requests);
    nats_CloseAndWait(5000);
    return test_summary();
}
