/* it_monitor_abuse: the monitoring port against hostile and careless HTTP clients, on a real
 * stanzad. 1,000 slowloris connections (half silent, half trickling a request head byte by byte,
 * each reopened as soon as the server drops it) while a kubelet-like prober sends /healthz every
 * 100 ms with a 1 s deadline: every probe must answer 200, both when the connection table holds
 * them all and when the fd limit makes it much smaller (oldest-idle eviction). Then the list
 * endpoints: ?subs=1 with no subscriptions (an empty sort, which the sanitized build died on) and
 * offset/limit values that overflow or are not plain decimals (400, never a silent default). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000
#define SLOW_CONNS 1000
#define PROBES 50
#define PROBE_DEADLINE_MS 1000 /* a kubelet's default timeoutSeconds */
#define PROBE_EVERY_MS 100
#define TRICKLE_EVERY_MS 100

/* A non-blocking connect to 127.0.0.1:port (it completes in the background). -1 on failure. */
static int connect_nb(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the attacker: SLOW_CONNS connections that never complete a request ---- */

typedef struct slowloris {
    int port;
    pthread_t thread;
    atomic_bool stop;
    int fd[SLOW_CONNS];
    size_t sent[SLOW_CONNS]; /* bytes of the head trickled so far */
    long reopened;           /* connections the server dropped and we opened again */
} slowloris_t;

static const char slow_head[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";

static void *slowloris_main(void *arg)
{
    slowloris_t *s = arg;
    struct pollfd *p = calloc(SLOW_CONNS, sizeof *p);
    CHECK(p);
    int64_t next_trickle = harness_now_ms() + TRICKLE_EVERY_MS;
    while (!atomic_load(&s->stop)) {
        for (int i = 0; i < SLOW_CONNS; i++) {
            if (s->fd[i] < 0) {
                s->fd[i] = connect_nb(s->port);
                s->sent[i] = 0;
                s->reopened++;
            }
            p[i] = (struct pollfd){.fd = s->fd[i], .events = POLLIN};
        }
        poll(p, SLOW_CONNS, 10);
        for (int i = 0; i < SLOW_CONNS; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            /* An answer (408, 503) or the close: drop it, reopen on the next pass. */
            char buf[512];
            ssize_t n = recv(s->fd[i], buf, sizeof buf, 0);
            if (n > 0) continue;
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            close(s->fd[i]);
            s->fd[i] = -1;
        }
        if (harness_now_ms() >= next_trickle) {
            /* The odd ones trickle one byte of a head that never ends; the even ones stay
             * silent. Either way no request ever completes. */
            for (int i = 1; i < SLOW_CONNS; i += 2) {
                if (s->fd[i] < 0) continue;
                size_t k = s->sent[i];
                char ch = k < sizeof slow_head - 1 ? slow_head[k] : 'a';
                if (send(s->fd[i], &ch, 1, MSG_NOSIGNAL) == 1) s->sent[i]++;
            }
            next_trickle = harness_now_ms() + TRICKLE_EVERY_MS;
        }
    }
    free(p);
    return NULL;
}

static void slowloris_start(slowloris_t *s, int port)
{
    memset(s, 0, sizeof *s);
    s->port = port;
    for (int i = 0; i < SLOW_CONNS; i++) {
        s->fd[i] = connect_nb(port);
        CHECK(s->fd[i] >= 0);
    }
    CHECK_EQ_INT(pthread_create(&s->thread, NULL, slowloris_main, s), 0);
}

static void slowloris_stop(slowloris_t *s)
{
    atomic_store(&s->stop, true);
    CHECK_EQ_INT(pthread_join(s->thread, NULL), 0);
    for (int i = 0; i < SLOW_CONNS; i++)
        if (s->fd[i] >= 0) close(s->fd[i]);
}

/* ---- the prober ---- */

/* One GET /healthz that must be answered within deadline_ms of starting to connect. Returns the
 * HTTP status; else 0 if the server closed first, -1 if no answer came in time (-2 when even
 * the request could not be sent by then), -3 if a 200 did not carry the health body. */
static int probe(int port, int deadline_ms)
{
    int64_t deadline = harness_now_ms() + deadline_ms;
    int fd = connect_nb(port);
    if (fd < 0) return 0;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t off = 0;
    char buf[4096];
    size_t len = 0;
    int status = 0;
    for (;;) {
        int left = (int)(deadline - harness_now_ms());
        if (left <= 0) {
            status = off < sizeof req - 1 ? -2 : -1;
            break;
        }
        struct pollfd p = {.fd = fd, .events = off < sizeof req - 1 ? POLLOUT : POLLIN};
        if (poll(&p, 1, left) <= 0) continue;
        if (off < sizeof req - 1) {
            ssize_t n = send(fd, req + off, sizeof req - 1 - off, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) break;
            if (n > 0) off += (size_t)n;
            continue;
        }
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        /* The whole answer: head, then the body Content-Length announces. */
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strstr(buf, "Content-Length: ");
        if (end && cl && len >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10)) {
            if (sscanf(buf, "HTTP/1.1 %d", &status) == 1 && status == 200 && !strstr(end, "\"ok\""))
                status = -3;
            break;
        }
        if (len == sizeof buf - 1) break;
    }
    close(fd);
    return status;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The value of an unlabelled /metrics sample. */
static int64_t metric(int port, const char *name)
{
    char *body;
    CHECK_EQ_INT(hhttp_get(port, "/metrics", &body), 200);
    int64_t v = -1;
    size_t n = strlen(name);
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, name, n) == 0 && line[n] == ' ') v = strtoll(line + n + 1, NULL, 10);
    free(body);
    CHECK(v >= 0);
    return v;
}

/* Sets the soft RLIMIT_NOFILE (within the hard one); returns the previous soft limit. */
static rlim_t set_nofile(rlim_t soft)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rlim_t old = rl.rlim_cur;
    if (rl.rlim_max != RLIM_INFINITY && soft > rl.rlim_max) {
        fprintf(stderr, "the hard fd limit (%llu) is below the %llu this test needs\n",
                (unsigned long long)rl.rlim_max, (unsigned long long)soft);
        CHECK(soft <= rl.rlim_max);
    }
    rl.rlim_cur = soft;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    return old;
}

/* stanzad (which inherits the fd limit `nofile`, and sizes its HTTP connection table from it)
 * under SLOW_CONNS slowloris connections: every probe answers 200 within its deadline. */
static void slowloris_run(rlim_t nofile, bool must_evict)
{
    rlim_t old = set_nofile(nofile);
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    char port_s[16];
    int mport = harness_free_port();
    snprintf(port_s, sizeof port_s, "%d", mport);
    const char *args[] = {"-m", port_s, "--store", "FILE", "--dir", d.data, NULL};
    CHECK(harness_server_start(&s, NULL, args) == 0);
    CHECK(hproc_wait_port(NULL, mport, T_MS) == 0); /* opens just after the client port */
    CHECK_EQ_INT(probe(mport, PROBE_DEADLINE_MS), 200);

    slowloris_t *sl = malloc(sizeof *sl);
    CHECK(sl);
    slowloris_start(sl, mport);
    /* Let the attack fill the table first. */
    poll(NULL, 0, 500);
    int ok = 0, status[PROBES];
    int64_t ms[PROBES];
    for (int i = 0; i < PROBES; i++) {
        int64_t t0 = harness_now_ms();
        status[i] = probe(mport, PROBE_DEADLINE_MS);
        ms[i] = harness_now_ms() - t0;
        if (status[i] == 200) ok++;
        int64_t rest = PROBE_EVERY_MS - ms[i];
        if (rest > 0) poll(NULL, 0, (int)rest);
    }
    slowloris_stop(sl);
    for (int i = 0; i < PROBES; i++)
        if (status[i] != 200)
            fprintf(stderr, "probe %d: status %d in %lld ms\n", i, status[i], (long long)ms[i]);
    qsort(ms, PROBES, sizeof *ms, cmp_i64);
    fprintf(stderr,
            "   fd limit %llu: %d/%d probes answered 200 under %d slowloris connections "
            "(%ld reopened); probe time p50 %lld ms, max %lld ms\n",
            (unsigned long long)nofile, ok, PROBES, SLOW_CONNS, sl->reopened,
            (long long)ms[PROBES / 2], (long long)ms[PROBES - 1]);
    free(sl);
    CHECK_EQ_INT(ok, PROBES);
    /* And the server is still fine once the attack is gone. */
    CHECK_EQ_INT(probe(mport, PROBE_DEADLINE_MS), 200);
    /* When the table is smaller than the attack, it is eviction that let the probes in. (With
     * room for all, a few still happen: the 408s to a wave of heads all due at once linger
     * while the attacker's new connections arrive.) */
    int64_t evictions = metric(mport, "stanza_http_evictions_total");
    fprintf(stderr, "   connections evicted to make room: %lld\n", (long long)evictions);
    if (must_evict) CHECK(evictions > 0);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
    set_nofile(old);
}

/* The table holds every attacker connection (and the probe). */
static void test_slowloris_healthz(void)
{
    slowloris_run(4096, false);
}

/* The fd limit makes the table a quarter of it (275): the attack overfills it, and the oldest
 * idle or stuck connections make room for the probes. */
static void test_slowloris_healthz_eviction(void)
{
    slowloris_run(1100, true);
}

/* ---- list endpoints ---- */

static json_t *get_json(int port, const char *path)
{
    json_t *j = hhttp_json(port, path);
    CHECK(j != NULL);
    return j;
}

static int64_t iget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    CHECK(json_is_integer(v));
    return json_integer_value(v);
}

static void start(struct hserver *s, int *mport, struct hstan_dir *d)
{
    static char port_s[16];
    *mport = harness_free_port();
    snprintf(port_s, sizeof port_s, "%d", *mport);
    const char *args[] = {"-m", port_s, "--store", "FILE", "--dir", d->data, NULL};
    CHECK(harness_server_start(s, NULL, args) == 0);
    /* The harness waits for the client port; the monitoring port opens just after it. */
    CHECK(hproc_wait_port(NULL, *mport, T_MS) == 0);
}

/* Lists with nothing in them: no clients, then clients without subscriptions. The sanitized
 * build died here (qsort of an empty, NULL subscription list); a clean SIGINT exit shows it
 * did not. */
static void test_empty_lists(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, &d);
    stanConnection *a = NULL, *b = NULL;
    const char *paths[] = {"/streaming/clientsz?subs=1", "/streaming/clientsz",
                           "/streaming/channelsz?subs=1", "/streaming/channelsz"};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
            json_t *j = get_json(mport, paths[i]);
            CHECK_EQ_INT(iget(j, "count"), round == 0 || strstr(paths[i], "channelsz") ? 0 : 2);
            json_decref(j);
        }
        if (round == 0) {
            /* Two clients, no subscriptions. */
            a = hstan_connect_or_die(&s, "no-subs-a");
            b = hstan_connect_or_die(&s, "no-subs-b");
            json_t *j = get_json(mport, "/streaming/clientsz?subs=1");
            json_t *cl = json_object_get(j, "clients");
            CHECK_EQ_INT(json_array_size(cl), 2);
            CHECK(json_object_get(json_array_get(cl, 0), "subscriptions") == NULL);
            json_decref(j);
        }
    }
    stanConnection_Destroy(a);
    stanConnection_Destroy(b);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

/* offset and limit: plain decimals from 0 to 2147483647, anything else a 400 that says which
 * parameter and why; never a silent default, never a wrapped value. */
static void test_paging_strict(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    struct hserver s;
    int mport;
    start(&s, &mport, &d);
    stanConnection *c = hstan_connect_or_die(&s, "pager");
    CHECK(hstan_pub(c, "p1", "x") == NATS_OK);
    CHECK(hstan_pub(c, "p2", "x") == NATS_OK);

    static const char *const bad[][2] = {
        {"offset=99999999999999999999", "offset"},
        {"offset=9223372036854775808", "offset"},
        {"offset=2147483648", "offset"},
        {"offset=-1", "offset"},
        {"offset=+1", "offset"},
        {"offset=%201", "offset"},
        {"offset=0x10", "offset"},
        {"offset=1.5", "offset"},
        {"offset=", "offset"},
        /* Too long for any buffer: must not be taken as absent. */
        {"offset=0000000000000000000000000000000000000000000000000000000000000000001", "offset"},
        {"limit=1e30", "limit"},
        {"limit=-5", "limit"},
        {"limit=18446744073709551617", "limit"},
        {"limit=99999999999999999999999999999999999999999999999999999999999999999", "limit"},
        {"offset=1&limit=abc", "limit"},
    };
    const char *eps[] = {"/streaming/channelsz", "/streaming/clientsz",
                         "/streaming/channelsz?subs=1&", "/streaming/clientsz?subs=1&"};
    for (size_t e = 0; e < sizeof eps / sizeof *eps; e++) {
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            char path[512], *body;
            const char *ep = eps[e];
            snprintf(path, sizeof path, "%s%s%s", ep, strchr(ep, '?') ? "" : "?", bad[i][0]);
            int status = hhttp_get(mport, path, &body);
            if (status != 400 || !strstr(body, bad[i][1]))
                fprintf(stderr, "GET %s -> %d: %s\n", path, status, body);
            CHECK_EQ_INT(status, 400);
            CHECK(strstr(body, bad[i][1]) != NULL);
            free(body);
        }
    }
    /* The largest values are taken as given. */
    json_t *j = get_json(mport, "/streaming/channelsz?offset=2147483647&limit=2147483647");
    CHECK_EQ_INT(iget(j, "offset"), 2147483647);
    CHECK_EQ_INT(iget(j, "limit"), 2147483647);
    CHECK_EQ_INT(iget(j, "count"), 0);
    CHECK_EQ_INT(iget(j, "total"), 2);
    json_decref(j);
    j = get_json(mport, "/streaming/channelsz?subs=1&offset=2147483647");
    CHECK_EQ_INT(iget(j, "count"), 0);
    CHECK_EQ_INT(iget(j, "total"), 2);
    json_decref(j);
    j = get_json(mport, "/streaming/clientsz?subs=1&offset=0&limit=1");
    CHECK_EQ_INT(iget(j, "count"), 1);
    json_decref(j);
    /* limit=0 is the default (1024), as with NSS. */
    j = get_json(mport, "/streaming/channelsz?offset=1&limit=0");
    CHECK_EQ_INT(iget(j, "limit"), 1024);
    CHECK_EQ_INT(iget(j, "count"), 1);
    json_t *names = json_object_get(j, "names");
    CHECK_EQ_STR(json_string_value(json_array_get(names, 0)), "p2");
    json_decref(j);

    stanConnection_Destroy(c);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

int main(void)
{
    TEST_RUN(test_empty_lists);
    TEST_RUN(test_paging_strict);
    TEST_RUN(test_slowloris_healthz);
    TEST_RUN(test_slowloris_healthz_eviction);
    nats_CloseAndWait(5000);
    return test_summary();
}
