/* Unit tests for httpd: the server runs on its own loop in a second thread; the test talks to it
 * over raw blocking sockets, every wait bounded by poll() with a deadline. Covers queries and
 * their decoding, HEAD, keep-alive, HTTP/1.0, pipelining, byte-by-byte requests, 405, 400, 431,
 * 413 and 411, bodies skipped, the connection table and its oldest-idle eviction, idle and
 * slowloris timeouts (the head deadline runs from the accept), a client that does not read, and
 * httpd_close with clients connected (the loop must end with every handle closed). */
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "httpd.h"
#include "httpd_fixture.h"
#include "test.h"

/* ---- tests ---- */

static void test_query_get(void)
{
    httpd_req_t req = {.method = "GET", .path = "/", .path_len = 1};
    const char *q = "a=1&empty=&flag&sp=x+y%20z&pct=100%25&bad=%zz%4&k%65y=v&nul=a%00b&a=2&long="
                    "0123456789";
    req.query = q;
    req.query_len = strlen(q);
    char out[8];
    CHECK(httpd_query_get(&req, "a", out, sizeof out));
    CHECK_EQ_STR(out, "1"); /* the first occurrence wins */
    CHECK(httpd_query_get(&req, "empty", out, sizeof out));
    CHECK_EQ_STR(out, "");
    CHECK(httpd_query_get(&req, "flag", out, sizeof out));
    CHECK_EQ_STR(out, "");
    CHECK(httpd_query_get(&req, "sp", out, sizeof out));
    CHECK_EQ_STR(out, "x y z");
    CHECK(httpd_query_get(&req, "pct", out, sizeof out));
    CHECK_EQ_STR(out, "100%");
    CHECK(httpd_query_get(&req, "bad", out, sizeof out));
    CHECK_EQ_STR(out, "%zz%4");
    CHECK(httpd_query_get(&req, "key", out, sizeof out)); /* keys are decoded too */
    CHECK_EQ_STR(out, "v");
    CHECK(!httpd_query_get(&req, "nul", out, sizeof out));
    CHECK(!httpd_query_get(&req, "long", out, sizeof out)); /* 10 chars do not fit in 8 */
    CHECK(!httpd_query_get(&req, "missing", out, sizeof out));
    CHECK(!httpd_query_get(&req, "", out, sizeof out));
    CHECK(!httpd_query_get(&req, "a", out, 0));
    char one[2];
    CHECK(httpd_query_get(&req, "a", one, sizeof one));
    CHECK_EQ_STR(one, "1");
    /* Present whatever the value, so a caller can refuse what httpd_query_get cannot return. */
    CHECK(httpd_query_has(&req, "long") && httpd_query_has(&req, "nul"));
    CHECK(httpd_query_has(&req, "flag") && httpd_query_has(&req, "key"));
    CHECK(!httpd_query_has(&req, "missing"));
    req.query = "";
    req.query_len = 0;
    CHECK(!httpd_query_get(&req, "a", out, sizeof out));
    CHECK(!httpd_query_has(&req, "a"));
}

static void test_get_query(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "GET /echo?a=hello%20world&b=x+y+z&c HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /echo q=a=hello%20world&b=x+y+z&c a=hello world b=x y z\n");
    CHECK_EQ_STR(hdr(&r, "Content-Type"), "application/json");
    CHECK_EQ_STR(hdr(&r, "Cache-Control"), "no-store");
    CHECK_EQ_STR(hdr(&r, "Connection"), "keep-alive");
    CHECK(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    /* No query string, a fragment, an absolute-form target. */
    cli_send_str(c, "GET /p#frag HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /p q= a=- b=-\n");
    cli_send_str(c, "GET http://example.com/abs?b=%2B HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /abs q=b=%2B a=- b=+\n");
    /* Status, content type and headers from the handler; the injected header is dropped. */
    cli_send_str(c, "GET /teapot HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 418);
    CHECK_EQ_STR(hdr(&r, "Content-Type"), "text/plain");
    CHECK_EQ_STR(hdr(&r, "X-Tea"), "earl grey");
    CHECK_EQ_STR(hdr(&r, "X-Bad"), "");
    CHECK_EQ_STR(hdr(&r, "Injected"), "");
    CHECK_EQ_STR(r.body, "short and stout\n");
    cli_close(c);
    srv_stop(f);
}

static void test_head(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "HEAD /echo?a=1 HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, true, 200);
    const char *body = "HEAD /echo q=a=1 a=1 b=-\n";
    CHECK_EQ_INT(strtoul(hdr(&r, "Content-Length"), NULL, 10), strlen(body));
    CHECK_EQ_INT(c->len, 0);
    /* If a body had been sent, it would show up in front of the next response. */
    cli_send_str(c, "GET /echo?a=2 HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /echo q=a=2 a=2 b=-\n");
    cli_close(c);
    srv_stop(f);
}

static void test_keepalive(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /one q= a=- b=-\n");
    cli_send_str(c, "GET /two HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /two q= a=- b=-\n");
    /* Connection: close is honoured: the answer says so and the server closes. */
    cli_send_str(c, "GET /three HTTP/1.1\r\nConnection: close\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(hdr(&r, "Connection"), "close");
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    CHECK_EQ_INT(atomic_load(&f->requests), 3);

    /* HTTP/1.0: close by default, keep-alive on request. */
    c = cli_open(f);
    cli_send_str(c, "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(hdr(&r, "Connection"), "keep-alive");
    cli_send_str(c, "GET /c HTTP/1.0\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(hdr(&r, "Connection"), "close");
    CHECK_EQ_STR(r.body, "GET /c q= a=- b=-\n");
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);

    /* A client that half-closes after its request still gets the answer. */
    c = cli_open(f);
    cli_send_str(c, "GET /half HTTP/1.1\r\n\r\n");
    shutdown(c->fd, SHUT_WR);
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /half q= a=- b=-\n");
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    CHECK(wait_conns(f, 0));
    srv_stop(f);
}

static void test_pipelined(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "GET /1?a=x HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: t\r\n\r\n"
                    "\r\nGET /3?b=y HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\nConnection: close\r\n\r\n"
                    "GET /never HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /1 q=a=x a=x b=-\n");
    cli_expect(c, &r, true, 200);
    CHECK_EQ_INT(strtoul(hdr(&r, "Content-Length"), NULL, 10), strlen("HEAD /2 q= a=- b=-\n"));
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /3 q=b=y a=- b=y\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /4 q= a=- b=-\n");
    CHECK_EQ_STR(hdr(&r, "Connection"), "close");
    /* Nothing after the request that closed the connection is answered. */
    CHECK(cli_wait_close(c, WAIT_MS));
    CHECK_EQ_INT(atomic_load(&f->requests), 4);
    cli_close(c);
    srv_stop(f);
}

static void test_byte_by_byte(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    const char *req = "GET /slow/path?a=split%20up&b=1+2 HTTP/1.1\r\nHost: example\r\n"
                      "User-Agent: bytes\r\n\r\n";
    cli_send_bytewise(c, req);
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /slow/path q=a=split%20up&b=1+2 a=split up b=1 2\n");
    /* The connection is still good for the next request. */
    cli_send_str(c, "GET /again HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /again q= a=- b=-\n");
    cli_close(c);
    srv_stop(f);
}

static void test_method_405(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    /* CONNECT is refused by httpd itself (a protocol switch); the connection goes on. */
    cli_send_str(c, "CONNECT example.com:443 HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 405);
    CHECK_EQ_STR(hdr(&r, "Allow"), "GET, HEAD, POST, DELETE");
    CHECK_EQ_STR(hdr(&r, "Connection"), "keep-alive");
    /* Every other method reaches the handler, which decides what each path allows. */
    cli_send_str(c, "PUT /x HTTP/1.1\r\n\r\nOPTIONS /y HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "PUT /x q= a=- b=-\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "OPTIONS /y q= a=- b=-\n");
    cli_send_str(c, "POST /p?a=1 HTTP/1.1\r\n\r\nDELETE /d HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "POST /p q=a=1 a=1 b=-\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "DELETE /d q= a=- b=-\n");
    cli_send_str(c, "GET /ok HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    /* A small body is skipped whatever the method: the connection goes on. */
    cli_send_str(c, "PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "PUT /x q= a=- b=-\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /next q= a=- b=-\n");
    CHECK_EQ_INT(atomic_load(&f->requests), 7);
    cli_close(c);
    srv_stop(f);
}

static void expect_error_close(srv_t *f, const char *req, size_t len, int status)
{
    cli_t *c = cli_open(f);
    resp_t r;
    CHECK(cli_send(c, req, len));
    cli_expect(c, &r, false, status);
    CHECK_EQ_STR(hdr(&r, "Connection"), "close");
    CHECK_EQ_STR(hdr(&r, "Content-Type"), "text/plain; charset=utf-8");
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
}

static void test_malformed_400(void)
{
    srv_t *f = srv_start(5000, 5000);
    static const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
        "GET / HTTP/9.9x\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error_close(f, bad[i], strlen(bad[i]), 400);
    /* A bad request after a good one on the same connection. */
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "GET /fine HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\x01\r\n\r\n");
    cli_expect(c, &r, false, 200);
    cli_expect(c, &r, false, 400);
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    CHECK_EQ_INT(atomic_load(&f->requests), 1);
    srv_stop(f);
}

static void test_header_431(void)
{
    srv_t *f = srv_start(5000, 5000);
    size_t pad = 9 * 1024;
    char *req = malloc(pad + 128);
    CHECK(req);
    int n = sprintf(req, "GET / HTTP/1.1\r\nX-Pad: ");
    memset(req + n, 'p', pad);
    n += (int)pad;
    n += sprintf(req + n, "\r\n\r\n");
    expect_error_close(f, req, (size_t)n, 431);
    /* A request line alone over the limit. */
    n = sprintf(req, "GET /");
    memset(req + n, 'u', pad);
    n += (int)pad;
    n += sprintf(req + n, " HTTP/1.1\r\n\r\n");
    expect_error_close(f, req, (size_t)n, 431);
    free(req);
    /* Just under the limit is fine. */
    cli_t *c = cli_open(f);
    resp_t r;
    char big[8192];
    n = sprintf(big, "GET /edge HTTP/1.1\r\nX-Pad: ");
    int fill = 8192 - n - 4;
    memset(big + n, 'q', (size_t)fill);
    memcpy(big + n + fill, "\r\n\r\n", 4);
    CHECK(cli_send(c, big, sizeof big));
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /edge q= a=- b=-\n");
    cli_close(c);
    CHECK_EQ_INT(atomic_load(&f->requests), 1);
    srv_stop(f);
}

static void test_body_413(void)
{
    srv_t *f = srv_start(5000, 5000);
    char cl[128];
    snprintf(cl, sizeof cl, "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n0123456789",
             HTTPD_BODY_MAX + 1);
    expect_error_close(f, cl, strlen(cl), 413);
    const char *chunked =
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    expect_error_close(f, chunked, strlen(chunked), 411);
    /* A body that is still coming when the answer is sent: the close must not reset it away. */
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\npartial");
    cli_expect(c, &r, false, 413);
    char more[4096];
    memset(more, 'b', sizeof more);
    cli_send(c, more, sizeof more); /* discarded while the server lingers */
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    /* Content-Length: 0 is no body. */
    c = cli_open(f);
    cli_send_str(c, "GET /zero HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    cli_expect(c, &r, false, 200);
    /* Up to HTTPD_BODY_MAX is read and discarded, however it comes, even far past the head
     * limit: the next request on the connection is parsed after it. */
    char *big = malloc(HTTPD_BODY_MAX + 256);
    CHECK(big);
    int n = sprintf(big, "POST /body HTTP/1.1\r\nContent-Length: %d\r\n\r\n", HTTPD_BODY_MAX);
    memset(big + n, 'B', HTTPD_BODY_MAX);
    n += HTTPD_BODY_MAX;
    n += sprintf(big + n, "GET /after HTTP/1.1\r\n\r\n");
    CHECK(cli_send(c, big, (size_t)n));
    free(big);
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "POST /body q= a=- b=-\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /after q= a=- b=-\n");
    cli_close(c);
    CHECK_EQ_INT(atomic_load(&f->requests), 3);
    srv_stop(f);
}

/* Waits until the loop's clock has moved on from now (uv_now has millisecond resolution):
 * connections accepted before are then old enough to be evicted. */
static void next_ms(void)
{
    int64_t t = now_ms();
    while (now_ms() <= t + 1) {
        struct timespec ts = {0, 500 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* A full table: each newcomer evicts the connection that has gone longest without progress,
 * in that order; those that progressed (answered requests) stay, and the count never passes
 * the table's size. */
static void test_max_conns_evicts_oldest(void)
{
    enum { MAX = 8 };
    srv_t *f = srv_start_opts(5000, 5000, MAX, 0);
    cli_t *c[MAX];
    resp_t r;
    for (int i = 0; i < MAX; i++) {
        c[i] = cli_open(f);
        CHECK(wait_conns(f, (size_t)i + 1)); /* accepted in this order */
    }
    /* c[0] is answered (progress: it goes to the back); the others are stuck in a head or
     * silent. */
    cli_send_str(c[0], "GET /busy HTTP/1.1\r\n\r\n");
    cli_expect(c[0], &r, false, 200);
    for (int i = 1; i < MAX; i += 2)
        cli_send_str(c[i], "GET /stuck HTTP/1.1\r\nHost: ");
    next_ms();
    /* Each newcomer is served, and evicts c[1], c[2], ... in turn. */
    for (int i = 1; i < MAX; i++) {
        cli_t *d = cli_open(f);
        cli_send_str(d, "GET /new HTTP/1.1\r\n\r\n");
        cli_expect(d, &r, false, 200);
        CHECK_EQ_STR(r.body, "GET /new q= a=- b=-\n");
        CHECK(cli_wait_close(c[i], WAIT_MS));
        cli_close(c[i]);
        c[i] = d; /* answered: now among the newest */
        CHECK_EQ_INT(atomic_load(&f->requests), i + 1);
        next_ms();
    }
    CHECK(wait_conns(f, MAX));
    /* c[0] progressed before all of them: it is the oldest now, and the next one to go. */
    cli_t *d = cli_open(f);
    cli_send_str(d, "GET /last HTTP/1.1\r\n\r\n");
    cli_expect(d, &r, false, 200);
    CHECK(cli_wait_close(c[0], WAIT_MS));
    cli_close(c[0]);
    c[0] = d;
    /* The survivors are still good. */
    for (int i = 0; i < MAX; i++) {
        cli_send_str(c[i], "GET /again HTTP/1.1\r\n\r\n");
        cli_expect(c[i], &r, false, 200);
        cli_close(c[i]);
    }
    CHECK(wait_conns(f, 0));
    srv_stop(f);
}

/* More connections than the table holds, all at once: nobody waits in the kernel's queue, the
 * count never passes the limit, and every one answered or closed promptly. */
static void test_max_conns_burst(void)
{
    enum { MAX = 64, N = 200 };
    srv_t *f = srv_start_opts(5000, 5000, MAX, 0);
    cli_t *c[N];
    for (int i = 0; i < N; i++)
        c[i] = cli_open(f);
    int served = 0;
    for (int i = 0; i < N; i++) {
        cli_send(c[i], "GET /hi HTTP/1.1\r\n\r\n", 20); /* an evicted one may be gone */
        CHECK(atomic_load(&f->conns) <= MAX);
    }
    for (int i = 0; i < N; i++) {
        resp_t r;
        if (cli_read(c[i], &r, false) && r.status == 200) {
            CHECK_EQ_STR(r.body, "GET /hi q= a=- b=-\n");
            served++;
        } else {
            /* Evicted (closed) or refused (a 503 if the socket took it, then closed). */
            CHECK(r.status == 503 || r.status == 0);
            CHECK(r.status == 0 || cli_wait_close(c[i], WAIT_MS));
        }
        cli_close(c[i]);
    }
    /* The newest MAX at least got in; everyone else got an answer or a close, not a hang. */
    CHECK(served >= MAX);
    CHECK(wait_conns(f, 0));
    srv_stop(f);
}

/* The table follows the process's fd limit: 1024, or a quarter of RLIMIT_NOFILE if smaller. */
static void test_max_conns_default(void)
{
    uv_loop_t loop;
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    struct rlimit rl, old;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    rl = old;
    rl.rlim_cur = old.rlim_max == RLIM_INFINITY || old.rlim_max >= 8192 ? 8192 : old.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    httpd_t *h = httpd_new(&loop, handler, NULL);
    CHECK_EQ_INT(httpd_max_conns(h), rl.rlim_cur / 4 < 1024 ? rl.rlim_cur / 4 : 1024);
    httpd_free(h);
    rl.rlim_cur = 400;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    h = httpd_new(&loop, handler, NULL);
    CHECK_EQ_INT(httpd_max_conns(h), 100);
    httpd_free(h);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_idle_timeout(void)
{
    srv_t *f = srv_start(200, 200);
    /* Sends nothing at all. */
    cli_t *c = cli_open(f);
    int64_t t0 = now_ms();
    CHECK(cli_wait_close(c, WAIT_MS));
    CHECK(now_ms() - t0 >= 150);
    cli_close(c);
    /* Idle after a request: the timer starts again from the answer. */
    c = cli_open(f);
    resp_t r;
    cli_send_str(c, "GET /x HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    t0 = now_ms();
    CHECK(cli_wait_close(c, WAIT_MS));
    CHECK(now_ms() - t0 >= 150);
    cli_close(c);
    CHECK(wait_conns(f, 0));
    srv_stop(f);
}

static void test_slowloris_408(void)
{
    srv_t *f = srv_start(200, 200);
    /* Half a request, then nothing. */
    cli_t *c = cli_open(f);
    resp_t r;
    int64_t t0 = now_ms();
    cli_send_str(c, "GET /slow HTTP/1.1\r\nHost: ");
    cli_expect(c, &r, false, 408);
    CHECK(now_ms() - t0 >= 150);
    CHECK_EQ_STR(hdr(&r, "Connection"), "close");
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    /* A byte every 20 ms keeps no request alive: the deadline runs from its first byte. */
    c = cli_open(f);
    t0 = now_ms();
    const char *req = "GET /trickle HTTP/1.1\r\nHost: example.com\r\nX-Slow: yes\r\n\r\n";
    bool answered = false;
    for (size_t i = 0; req[i] && now_ms() - t0 < WAIT_MS; i++) {
        if (!cli_send(c, req + i, 1)) break;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0) {
            answered = true;
            break;
        }
    }
    CHECK(answered);
    cli_expect(c, &r, false, 408);
    CHECK(now_ms() - t0 < 1000);
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    CHECK_EQ_INT(atomic_load(&f->requests), 0);
    CHECK(wait_conns(f, 0));
    srv_stop(f);
}

/* The first head is due request_ms after the accept: a connection that stays silent, or starts
 * its head late, gains nothing from the idle timeout. */
static void test_head_deadline_from_accept(void)
{
    srv_t *f = srv_start(5000, 400);
    /* Silent: closed at the head deadline, not after idle_ms, and without an answer. */
    int64_t t0 = now_ms();
    cli_t *c = cli_open(f);
    CHECK(cli_wait_close(c, WAIT_MS));
    int64_t took = now_ms() - t0;
    CHECK(took >= 350 && took < 1500);
    cli_close(c);
    /* The head starts 300 ms in: 408 at 400 ms from the accept, not 400 ms from its first byte. */
    t0 = now_ms();
    c = cli_open(f);
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    CHECK_EQ_INT(poll(&p, 1, 300), 0);
    cli_send_str(c, "GET /late HTTP/1.1\r\nHost: ");
    resp_t r;
    cli_expect(c, &r, false, 408);
    took = now_ms() - t0;
    CHECK(took >= 350 && took < 650);
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    /* On a kept-alive connection the next head's deadline runs from its first byte. */
    c = cli_open(f);
    cli_send_str(c, "GET /one HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    p.fd = c->fd;
    CHECK_EQ_INT(poll(&p, 1, 300), 0);
    t0 = now_ms();
    cli_send_str(c, "GET /two HTTP/1.1\r\nHost: ");
    cli_expect(c, &r, false, 408);
    CHECK(now_ms() - t0 >= 350);
    cli_close(c);
    CHECK_EQ_INT(atomic_load(&f->requests), 1);
    CHECK(wait_conns(f, 0));
    srv_stop(f);
}

static void test_slow_reader(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    int small = 16 * 1024;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    /* 16 MiB of answers asked for at once and never read: closed once over 4 MiB is unsent. */
    char reqs[16 * 32];
    size_t n = 0;
    for (int i = 0; i < 16; i++)
        n += (size_t)sprintf(reqs + n, "GET /big HTTP/1.1\r\n\r\n");
    CHECK(cli_send(c, reqs, n));
    CHECK(wait_requests(f, 1));
    CHECK(wait_conns(f, 0));
    /* What the kernel buffers held still arrives, then the end; far less than asked for. */
    size_t total = 0;
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        int r = cli_fill(c, deadline);
        CHECK(r >= 0);
        if (r == 0) break;
        total += c->len;
        c->len = 0;
    }
    CHECK(total < (size_t)8 * BIG_BODY);
    CHECK(atomic_load(&f->requests) < 16);
    cli_close(c);
    srv_stop(f);
}

/* Reads until the server closes (or resets) the connection; returns the bytes that came, or
 * SIZE_MAX if it was still open at the deadline. */
static size_t drain_to_close(cli_t *c)
{
    size_t total = 0;
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        int r = cli_fill(c, deadline);
        if (r < 0) return SIZE_MAX;
        total += c->len;
        c->len = 0;
        if (r == 0) return total;
    }
}

/* Clients that each ask for 5 MiB of answers (five pipelined /big) and never read them: past
 * the bound on everyone's unsent output, the oldest are closed at once (the idle and request
 * timeouts are far off), and the newest still gets all of its answers. A loopback socket takes
 * 1-3 MiB itself (its send buffer starts at ten 64 KiB segments and grows), so each client
 * leaves 2-4 MiB unsent, under the 4 MiB at which one connection is closed on its own. */
static void test_output_bound(void)
{
    enum { N = 5, ASKED = 5 };
    srv_t *f = srv_start_opts(60000, 60000, 0, 3 * BIG_BODY);
    cli_t *c[N];
    char asks[ASKED * 32];
    size_t n = 0;
    for (int i = 0; i < ASKED; i++)
        n += (size_t)sprintf(asks + n, "GET /big HTTP/1.1\r\n\r\n");
    for (int i = 0; i < N; i++) {
        c[i] = cli_open_rcvbuf(f, 4096); /* so the kernel holds little of the answers */
        CHECK(cli_send(c[i], asks, n));
        CHECK(wait_requests(f, ASKED * (i + 1)));
    }
    /* No more than one besides the newest fits in 3 MiB. */
    CHECK(wait_conns_at_most(f, 2));
    /* The oldest went first, closed (what the kernel already held still arrives, then the end). */
    for (int i = 0; i < N - 2; i++) {
        size_t got = drain_to_close(c[i]);
        CHECK(got != SIZE_MAX && got < (size_t)ASKED * BIG_BODY);
    }
    /* The newest gets all of its answers. */
    size_t got = 0;
    int64_t deadline = now_ms() + WAIT_MS;
    while (got < (size_t)ASKED * BIG_BODY) {
        CHECK(cli_fill(c[N - 1], deadline) == 1);
        got += c[N - 1]->len;
        c[N - 1]->len = 0;
    }
    for (int i = 0; i < N; i++)
        cli_close(c[i]);
    CHECK(wait_conns(f, 0));
    srv_stop(f);
}

static void test_close_with_clients(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *idle = cli_open(f);
    cli_t *partial = cli_open(f);
    cli_t *kept = cli_open(f);
    cli_t *unread = cli_open(f);
    resp_t r;
    cli_send_str(partial, "GET /half HTTP/1.1\r\n");
    cli_send_str(kept, "GET /k HTTP/1.1\r\n\r\n");
    cli_expect(kept, &r, false, 200);
    int small = 16 * 1024;
    setsockopt(unread->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cli_send_str(unread, "GET /big HTTP/1.1\r\n\r\nGET /big HTTP/1.1\r\n\r\n");
    CHECK(wait_conns(f, 4));
    /* Make sure the server has seen the requests before closing. */
    CHECK(wait_requests(f, 3));
    CHECK_EQ_INT(atomic_load(&f->requests), 3);
    srv_stop(f); /* checks that done ran and the loop closed with no handle left */
    CHECK(cli_wait_close(idle, WAIT_MS));
    CHECK(cli_wait_close(partial, WAIT_MS));
    CHECK(cli_wait_close(kept, WAIT_MS));
    /* The unread one gets some of its data, then the end (or a reset). */
    int64_t deadline = now_ms() + WAIT_MS;
    int rc;
    while ((rc = cli_fill(unread, deadline)) > 0)
        unread->len = 0;
    CHECK_EQ_INT(rc, 0);
    cli_close(idle);
    cli_close(partial);
    cli_close(kept);
    cli_close(unread);
}

static void test_listen_errors(void)
{
    uv_loop_t loop;
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    char err[256];
    /* Never listened: free at once. */
    httpd_t *h = httpd_new(&loop, handler, NULL);
    httpd_free(h);
    /* A bad address; httpd_close still completes. */
    h = httpd_new(&loop, handler, NULL);
    CHECK(httpd_listen(h, "not-an-ip", 0, err, sizeof err) < 0);
    CHECK(strstr(err, "not-an-ip"));
    httpd_close(h, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    httpd_free(h);
    /* A port in use. */
    httpd_t *a = httpd_new(&loop, handler, NULL);
    CHECK_EQ_INT(httpd_listen(a, "127.0.0.1", 0, err, sizeof err), 0);
    CHECK(httpd_port(a) > 0);
    httpd_t *b = httpd_new(&loop, handler, NULL);
    int rc = httpd_listen(b, "127.0.0.1", httpd_port(a), err, sizeof err);
    CHECK_EQ_INT(rc, UV_EADDRINUSE);
    CHECK(strstr(err, "cannot listen"));
    CHECK(httpd_listen(a, "127.0.0.1", 0, err, sizeof err) < 0); /* only once */
    httpd_close(a, NULL, NULL);
    httpd_close(b, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    httpd_free(a);
    httpd_free(b);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("STANZA_TEST_DEBUG")) log_set_verbosity(true, false); /* httpd's debug lines */
    TEST_RUN(test_query_get);
    TEST_RUN(test_get_query);
    TEST_RUN(test_head);
    TEST_RUN(test_keepalive);
    TEST_RUN(test_pipelined);
    TEST_RUN(test_byte_by_byte);
    TEST_RUN(test_method_405);
    TEST_RUN(test_malformed_400);
    TEST_RUN(test_header_431);
    TEST_RUN(test_body_413);
    TEST_RUN(test_max_conns_evicts_oldest);
    TEST_RUN(test_max_conns_burst);
    TEST_RUN(test_max_conns_default);
    TEST_RUN(test_idle_timeout);
    TEST_RUN(test_slowloris_408);
    TEST_RUN(test_head_deadline_from_accept);
    TEST_RUN(test_slow_reader);
    TEST_RUN(test_output_bound);
    TEST_RUN(test_close_with_clients);
    TEST_RUN(test_listen_errors);
    return test_summary();
}
