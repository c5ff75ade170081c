/* Unit tests for httpd's deferred answers (httpd_defer) and the Authorization header, with the
 * fixture of test_httpd.c (httpd on its own loop thread, raw blocking sockets, every wait
 * bounded). A deferred request holds the requests pipelined behind it until it is answered;
 * no timeout closes a connection waiting on its own answer; a handle whose connection went
 * first (closed by the client, evicted, httpd closed and freed) is safe to finish later (the
 * ASan build checks that nothing freed is touched). */
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "httpd.h"
#include "httpd_fixture.h"
#include "test.h"

/* Proves the server's loop has handled everything sent before: a request on another connection
 * is answered. */
static void round_trip(srv_t *f)
{
    cli_t *o = cli_open(f);
    resp_t r;
    cli_send_str(o, "GET /other HTTP/1.1\r\n\r\n");
    cli_expect(o, &r, false, 200);
    cli_close(o);
}

/* Nothing has arrived on c (without waiting: the caller made sure the server got that far). */
static bool nothing_yet(cli_t *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return c->len == 0 && poll(&p, 1, 0) == 0;
}

static void test_defer_holds_pipelined(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    /* A deferred POST with a body, then two requests pipelined behind it in the same write. */
    cli_send_str(c, "POST /defer HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                    "GET /after?a=1 HTTP/1.1\r\n\r\nGET /last HTTP/1.1\r\n\r\n");
    CHECK(wait_deferred(f, 1));
    round_trip(f);
    CHECK(wait_requests(f, 2));
    /* The requests behind it were not handled, and nothing was answered. */
    CHECK_EQ_INT(atomic_load(&f->requests), 2);
    CHECK(nothing_yet(c));
    srv_finish_deferred(f);
    cli_expect(c, &r, false, 202);
    CHECK_EQ_STR(r.body, "deferred 0\n");
    CHECK_EQ_STR(hdr(&r, "Connection"), "keep-alive");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /after q=a=1 a=1 b=-\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /last q= a=- b=-\n");
    /* The connection reads again. */
    cli_send_str(c, "GET /again HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /again q= a=- b=-\n");
    cli_close(c);
    srv_stop(f);
}

/* Two deferred requests in a row on one connection, the second held behind the first. */
static void test_defer_twice(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "DELETE /defer HTTP/1.1\r\n\r\nPOST /defer HTTP/1.1\r\n\r\n"
                    "GET /defer-now HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(wait_deferred(f, 1));
    srv_finish_deferred(f);
    cli_expect(c, &r, false, 202);
    CHECK_EQ_STR(r.body, "deferred 0\n");
    CHECK(wait_deferred(f, 2));
    srv_finish_deferred(f);
    cli_expect(c, &r, false, 202);
    CHECK_EQ_STR(r.body, "deferred 1\n");
    /* Finished inside its handler: answered at once, with the deferred response. */
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "at once\n");
    CHECK_EQ_STR(hdr(&r, "Connection"), "close");
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    srv_stop(f);
}

/* Timeouts far shorter than the wait: the connection waiting on its own answer stays. */
static void test_defer_outlives_timeouts(void)
{
    srv_t *f = srv_start(50, 50);
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "POST /defer HTTP/1.1\r\n\r\nGET /behind HTTP/1.1\r\n\r\n");
    CHECK(wait_deferred(f, 1));
    /* An idle connection opened after it is closed by its timer: the timers ran. */
    cli_t *idle = cli_open(f);
    CHECK(cli_wait_close(idle, WAIT_MS));
    cli_close(idle);
    CHECK(wait_conns(f, 1));
    srv_finish_deferred(f);
    cli_expect(c, &r, false, 202);
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "GET /behind q= a=- b=-\n");
    /* Then the idle timeout applies again. */
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    srv_stop(f);
}

/* The client resets the connection while its answer is awaited: the server, not reading
 * meanwhile, finds out when it writes the answer, and closes. */
static void test_defer_client_gone(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *c = cli_open(f);
    cli_send_str(c, "POST /defer HTTP/1.1\r\n\r\n");
    CHECK(wait_deferred(f, 1));
    /* A reset (SO_LINGER 0): the server sees the error on its next write at the latest. */
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cli_close(c);
    round_trip(f);
    srv_finish_deferred(f);
    round_trip(f);
    CHECK(wait_conns(f, 0));
    CHECK_EQ_INT(atomic_load(&f->requests), 3);
    srv_stop(f);
}

/* A full table evicts the deferred connection (the oldest progress); its handle survives. */
static void test_defer_evicted(void)
{
    srv_t *f = srv_start_opts(5000, 5000, 2, 0);
    cli_t *c = cli_open(f);
    cli_send_str(c, "POST /defer HTTP/1.1\r\n\r\n");
    CHECK(wait_deferred(f, 1));
    cli_t *b = cli_open(f);
    CHECK(wait_conns(f, 2));
    cli_t *n = cli_open(f); /* evicts c */
    CHECK(cli_wait_close(c, WAIT_MS));
    CHECK(wait_conns_at_most(f, 2));
    srv_finish_deferred(f);
    resp_t r;
    cli_send_str(n, "GET /still HTTP/1.1\r\n\r\n");
    cli_expect(n, &r, false, 200);
    CHECK(httpd_evicted(f->h) >= 1);
    cli_close(c);
    cli_close(b);
    cli_close(n);
    srv_stop(f);
}

/* httpd is closed and freed with answers outstanding; they are finished after (srv_main). */
static void test_defer_httpd_closed(void)
{
    srv_t *f = srv_start(5000, 5000);
    cli_t *a = cli_open(f), *b = cli_open(f);
    cli_send_str(a, "POST /defer HTTP/1.1\r\n\r\n");
    cli_send_str(b, "DELETE /defer HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n");
    CHECK(wait_deferred(f, 2));
    srv_stop(f); /* the loop ends with every handle closed, then finishes both */
    CHECK(cli_wait_close(a, WAIT_MS));
    CHECK(cli_wait_close(b, WAIT_MS));
    cli_close(a);
    cli_close(b);
}

static void expect_auth(srv_t *f, const char *headers, const char *want)
{
    cli_t *c = cli_open(f);
    resp_t r;
    char req[512];
    snprintf(req, sizeof req, "GET /auth HTTP/1.1\r\n%s\r\n", headers);
    cli_send_str(c, req);
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, want);
    cli_close(c);
}

static void test_authorization(void)
{
    srv_t *f = srv_start(5000, 5000);
    expect_auth(f, "", "auth=(none)\n");
    expect_auth(f, "Host: x\r\n", "auth=(none)\n");
    expect_auth(f, "Authorization: Bearer abc\r\n", "auth=Bearer abc\n");
    expect_auth(f, "aUtHoRiZaTiOn:   Basic  x y\r\nX-A: 1\r\n", "auth=Basic  x y\n");
    /* Names that merely start or end like it. */
    expect_auth(f, "Authorizations: Bearer a\r\nX-Authorization: Bearer b\r\n", "auth=(none)\n");
    /* Byte by byte, after another header, on a second request of the connection. */
    cli_t *c = cli_open(f);
    resp_t r;
    cli_send_str(c, "GET /auth HTTP/1.1\r\nAuthorization: first\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "auth=first\n");
    const char *req = "GET /auth HTTP/1.1\r\nX-Long-Header-Name-Here: v\r\n"
                      "Authorization: Bearer split-token\r\n\r\n";
    cli_send_bytewise(c, req);
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "auth=Bearer split-token\n");
    /* Not carried over to the next request. */
    cli_send_str(c, "GET /auth HTTP/1.1\r\n\r\n");
    cli_expect(c, &r, false, 200);
    CHECK_EQ_STR(r.body, "auth=(none)\n");
    cli_close(c);
    /* Two of them: refused, whatever they say. */
    c = cli_open(f);
    cli_send_str(c, "GET /auth HTTP/1.1\r\nAuthorization: a\r\nauthorization: b\r\n\r\n");
    cli_expect(c, &r, false, 400);
    CHECK(cli_wait_close(c, WAIT_MS));
    cli_close(c);
    srv_stop(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("STANZA_TEST_DEBUG")) log_set_verbosity(true, false);
    TEST_RUN(test_defer_holds_pipelined);
    TEST_RUN(test_defer_twice);
    TEST_RUN(test_defer_outlives_timeouts);
    TEST_RUN(test_defer_client_gone);
    TEST_RUN(test_defer_evicted);
    TEST_RUN(test_defer_httpd_closed);
    TEST_RUN(test_authorization);
    return test_summary();
}
