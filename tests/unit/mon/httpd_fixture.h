/* The fixture of the httpd unit tests: an httpd on its own loop in a second thread, with an echo
 * handler, and a blocking raw-socket client whose every wait is bounded by poll() with a
 * deadline. Included by test_httpd.c only; static throughout, as a test's own code would be. */
#ifndef STANZA_TEST_HTTPD_FIXTURE_H
#define STANZA_TEST_HTTPD_FIXTURE_H
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "httpd.h"
#include "log.h"
#include "support/http_head.h"
#include "test.h"

#define WAIT_MS 5000 /* deadline for anything the server should do promptly */
#define BIG_BODY (1024 * 1024)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the server thread ---- */

typedef struct {
    uv_loop_t loop;
    uv_async_t stop;
    uv_timer_t probe;
    httpd_t *h;
    pthread_t thread;
    unsigned idle_ms, request_ms;
    size_t max_conns;  /* 0: httpd's default */
    size_t max_output; /* 0: httpd's default */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port; /* -1 on listen failure */
    bool ready;
    atomic_size_t conns; /* httpd_conns, mirrored by the probe timer */
    atomic_uint probes;  /* probe ticks, counted after each mirror of conns */
    atomic_int requests; /* handler calls */
    bool done_called;
    int loop_close_rc;
    /* Deferred answers (/defer), finished by srv_finish_deferred from the loop, or after the
     * loop ended (srv_stop) when still pending then. */
    uv_async_t finish;
    httpd_defer_t *deferred[16];
    atomic_int ndeferred;
} srv_t;

/* Finishes every deferred answer: "deferred PATH-INDEX\n", 202. */
static void finish_deferred(srv_t *f)
{
    int n = atomic_load(&f->ndeferred);
    for (int i = 0; i < n; i++) {
        httpd_defer_t *d = f->deferred[i];
        if (!d) continue;
        f->deferred[i] = NULL;
        httpd_resp_t *r = httpd_defer_resp(d);
        r->status = 202;
        r->content_type = "text/plain";
        buf_printf(&r->body, "deferred %d\n", i);
        httpd_defer_finish(d);
    }
}

static void on_finish(uv_async_t *a)
{
    finish_deferred(a->data);
}

/* Echoes the request: "METHOD PATH q=QUERY a=A b=B\n" (a and b decoded, "-" when absent).
 * /big answers BIG_BODY bytes; /teapot answers 418 with an extra header; /auth echoes the
 * Authorization header ("auth=VALUE" or "auth=(none)"); /defer answers later (finish_deferred),
 * /defer-now defers and finishes at once, inside the handler. */
static void handler(void *arg, const httpd_req_t *req, httpd_resp_t *resp)
{
    srv_t *f = arg;
    atomic_fetch_add(&f->requests, 1);
    CHECK(req->path[req->path_len] == '\0');
    CHECK(req->query[req->query_len] == '\0');
    if (strcmp(req->path, "/big") == 0) {
        resp->content_type = "application/octet-stream";
        buf_reserve(&resp->body, BIG_BODY);
        memset(resp->body.data, 'x', BIG_BODY);
        resp->body.len = BIG_BODY;
        return;
    }
    if (strcmp(req->path, "/auth") == 0) {
        buf_printf(&resp->body, "auth=%s\n", req->authorization ? req->authorization : "(none)");
        return;
    }
    if (strcmp(req->path, "/defer") == 0) {
        int i = atomic_load(&f->ndeferred);
        CHECK(i < 16);
        f->deferred[i] = httpd_defer(req);
        CHECK(httpd_defer(req) == f->deferred[i]); /* the same handle */
        atomic_store(&f->ndeferred, i + 1);
        return;
    }
    if (strcmp(req->path, "/defer-now") == 0) {
        httpd_defer_t *d = httpd_defer(req);
        buf_append_str(&httpd_defer_resp(d)->body, "at once\n");
        httpd_defer_finish(d);
        buf_append_str(&resp->body, "ignored\n"); /* the handler's own resp is not sent */
        return;
    }
    if (strcmp(req->path, "/teapot") == 0) {
        resp->status = 418;
        resp->content_type = "text/plain";
        httpd_resp_header(resp, "X-Tea", "earl grey");
        httpd_resp_header(resp, "X-Bad", "a\r\nInjected: yes"); /* dropped */
        buf_append_str(&resp->body, "short and stout\n");
        return;
    }
    char a[64], b[64];
    if (!httpd_query_get(req, "a", a, sizeof a)) strcpy(a, "-");
    if (!httpd_query_get(req, "b", b, sizeof b)) strcpy(b, "-");
    buf_printf(&resp->body, "%s %s q=%s a=%s b=%s\n", req->method, req->path, req->query, a, b);
}

static void on_probe(uv_timer_t *t)
{
    srv_t *f = t->data;
    atomic_store(&f->conns, httpd_conns(f->h));
    atomic_fetch_add(&f->probes, 1);
}

static void on_done(void *arg)
{
    srv_t *f = arg;
    f->done_called = true;
}

static void on_stop(uv_async_t *a)
{
    srv_t *f = a->data;
    httpd_close(f->h, on_done, f);
    uv_close((uv_handle_t *)&f->stop, NULL);
    uv_close((uv_handle_t *)&f->finish, NULL);
    uv_close((uv_handle_t *)&f->probe, NULL);
}

static void *srv_main(void *arg)
{
    srv_t *f = arg;
    CHECK_EQ_INT(uv_loop_init(&f->loop), 0);
    f->h = httpd_new(&f->loop, handler, f);
    httpd_set_timeouts(f->h, f->idle_ms, f->request_ms);
    if (f->max_conns) httpd_set_max_conns(f->h, f->max_conns);
    /* These tests drive the table with connections that send nothing: the kernel must hand
     * them over at once (stanzad defers them; it_monitor_abuse covers that). */
    httpd_set_defer_accept(f->h, false);
    if (f->max_output) httpd_set_max_output(f->h, f->max_output);
    char err[256] = "";
    int rc = httpd_listen(f->h, "127.0.0.1", 0, err, sizeof err);
    if (rc) fprintf(stderr, "httpd_listen: %s\n", err);
    uv_async_init(&f->loop, &f->stop, on_stop);
    f->stop.data = f;
    uv_async_init(&f->loop, &f->finish, on_finish);
    f->finish.data = f;
    uv_timer_init(&f->loop, &f->probe);
    f->probe.data = f;
    uv_timer_start(&f->probe, on_probe, 0, 5);
    pthread_mutex_lock(&f->mu);
    f->port = rc ? -1 : httpd_port(f->h);
    f->ready = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    httpd_free(f->h);
    finish_deferred(f); /* answers that come after httpd is gone: only freed */
    f->loop_close_rc = uv_loop_close(&f->loop);
    return NULL;
}

/* max_conns and max_output: 0 keeps httpd's defaults. */
static srv_t *srv_start_opts(unsigned idle_ms, unsigned request_ms, size_t max_conns,
                             size_t max_output)
{
    srv_t *f = calloc(1, sizeof *f);
    CHECK(f);
    f->idle_ms = idle_ms;
    f->request_ms = request_ms;
    f->max_conns = max_conns;
    f->max_output = max_output;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    CHECK_EQ_INT(pthread_create(&f->thread, NULL, srv_main, f), 0);
    pthread_mutex_lock(&f->mu);
    while (!f->ready)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    CHECK(f->port > 0);
    return f;
}

static srv_t *srv_start(unsigned idle_ms, unsigned request_ms)
{
    return srv_start_opts(idle_ms, request_ms, 0, 0);
}

/* Finishes the deferred answers, from the loop. */
static inline void srv_finish_deferred(srv_t *f)
{
    uv_async_send(&f->finish);
}

static inline bool wait_deferred(srv_t *f, int n)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (atomic_load(&f->ndeferred) < n) {
        if (now_ms() >= deadline) return false;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* httpd_close from the loop; the loop must then end by itself, every handle closed. */
static void srv_stop(srv_t *f)
{
    uv_async_send(&f->stop);
    CHECK_EQ_INT(pthread_join(f->thread, NULL), 0);
    CHECK(f->done_called);
    CHECK_EQ_INT(f->loop_close_rc, 0);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

/* Polls the server's connection count until it is n (at_most: n or fewer) or the deadline
 * passes. Only a mirror taken after the call counts: a probe already running when it began
 * may have read the count before what the caller just did, and on a loaded machine the last
 * mirror can be older still, e.g. 0 from before a connection that the server has accepted and
 * served since (a test waiting for the server to close it would then go on while it is open).
 * The probe that completes second after the call started after it. */
static bool wait_conns_cmp(srv_t *f, size_t n, bool at_most)
{
    int64_t deadline = now_ms() + WAIT_MS;
    unsigned start = atomic_load(&f->probes);
    for (;;) {
        bool fresh = atomic_load(&f->probes) - start >= 2; /* read before conns */
        size_t conns = atomic_load(&f->conns);
        if (fresh && (at_most ? conns <= n : conns == n)) return true;
        if (now_ms() >= deadline) return false;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static bool wait_conns(srv_t *f, size_t n)
{
    return wait_conns_cmp(f, n, false);
}

static bool wait_conns_at_most(srv_t *f, size_t n)
{
    return wait_conns_cmp(f, n, true);
}

static bool wait_requests(srv_t *f, int n)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (atomic_load(&f->requests) < n) {
        if (now_ms() >= deadline) return false;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* ---- the client ---- */

typedef struct {
    int fd;
    char buf[64 * 1024];
    size_t len;
} cli_t;

typedef struct {
    int status;
    char head[16 * 1024];
    char body[16 * 1024];
    size_t body_len;
} resp_t;

/* rcvbuf > 0 sets SO_RCVBUF before connecting: a client the server can fill up. */
static cli_t *cli_open_rcvbuf(srv_t *f, int rcvbuf)
{
    cli_t *c = calloc(1, sizeof *c);
    CHECK(c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c->fd >= 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ_INT(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return c;
}

static cli_t *cli_open(srv_t *f)
{
    return cli_open_rcvbuf(f, 0);
}

static void cli_close(cli_t *c)
{
    close(c->fd);
    free(c);
}

/* Returns false if the peer closed or reset first (the server may close a refused one). */
static bool cli_send(cli_t *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void cli_send_str(cli_t *c, const char *s)
{
    CHECK(cli_send(c, s, strlen(s)));
}

/* One byte per send, paced so that each is its own read on the server. */
static inline void cli_send_bytewise(cli_t *c, const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        CHECK(cli_send(c, s + i, 1));
        struct timespec ts = {0, 500 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Reads more into c->buf before deadline: 1 = got bytes, 0 = EOF or reset, -1 = timeout. */
static int cli_fill(cli_t *c, int64_t deadline)
{
    CHECK(c->len < sizeof c->buf);
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return -1;
        CHECK(r > 0);
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) return 0;
        CHECK(n > 0);
        c->len += (size_t)n;
        return 1;
    }
}

/* Reads one response; a HEAD response has no body whatever its Content-Length. */
static bool cli_read(cli_t *c, resp_t *r, bool head)
{
    int64_t deadline = now_ms() + WAIT_MS;
    r->status = 0;
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (cli_fill(c, deadline) <= 0) return false;
    size_t hl = (size_t)(end + 4 - c->buf);
    CHECK(hl < sizeof r->head);
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    CHECK_EQ_INT(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
    CHECK(cl);
    size_t blen = head ? 0 : (size_t)strtoul(cl + 18, NULL, 10);
    CHECK(blen < sizeof r->body);
    while (c->len < hl + blen)
        if (cli_fill(c, deadline) <= 0) return false;
    memcpy(r->body, c->buf + hl, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    memmove(c->buf, c->buf + hl + blen, c->len - hl - blen);
    c->len -= hl + blen;
    return true;
}

static void cli_expect(cli_t *c, resp_t *r, bool head, int status)
{
    CHECK(cli_read(c, r, head));
    CHECK_EQ_INT(r->status, status);
}

/* The value of header name ("" if absent), in a static buffer. */
static const char *hdr(const resp_t *r, const char *name)
{
    static char val[256];
    CHECK(http_head_value(r->head, name, val, sizeof val));
    return val;
}

/* The server closes: EOF (or a reset) before the deadline, and no more bytes than expected. */
static bool cli_wait_close(cli_t *c, int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int r = cli_fill(c, deadline);
        if (r == 0) return c->len == 0;
        if (r < 0) return false;
    }
}

#endif
