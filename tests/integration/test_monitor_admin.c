/* it_monitor_admin: who may use /admin/ on a real stanzad's monitoring port. Every request
 * under /admin/ (known paths, nonsense ones, dot-segment and encoding tricks; every method the
 * port serves) is refused before anything else is looked at: 403 with no admin_token
 * configured, 401 without a bearer token (or a malformed one), 403 with a wrong one (a prefix
 * of the right one, a longer one, the right one in another case). With the right token the
 * request gets as far as routing. monitor_require_token puts /streaming/... and /metrics behind
 * the same token but never /healthz. The deferred answers of the changing commands are
 * exercised over real connections: pipelined behind one, and a client gone before its answer
 * (the ASan build's stanzad must still stop cleanly). */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_http.h"
#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000

/* Paths under /admin/ that must all be refused alike without the right token. None is
 * decoded or normalized by the server: each is an /admin/ path as sent. */
static const char *const paths[] = {
    "/admin/purge?channel=foo",
    "/admin/channel?channel=foo&force=true",
    "/admin/durable?channel=foo&durable=d",
    "/admin/client?id=c1",
    "/admin/msg?channel=foo&seq=1",
    "/admin/dead?channel=foo",
    "/admin/requeue?channel=foo&all=true",
    "/admin/pause?channel=foo&queue=q",
    "/admin/resume?channel=foo&queue=q",
    "/admin/",
    "/admin",
    "/admin/nonsense",
    "/admin/purge/extra",
    "/admin/../streaming/serverz",
    "/admin/%2e%2e/metrics",
    "/admin//purge?channel=foo",
    "/admin/./purge?channel=foo",
    "/admin/purge%3Fchannel=foo",
    "/admin/"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
static const char *const methods[] = {"GET", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS"};
#define NPATHS (sizeof paths / sizeof *paths)
#define NMETHODS (sizeof methods / sizeof *methods)

static void start(struct hserver *s, int *mport, const char *const *more)
{
    static char port_s[16];
    *mport = harness_free_port();
    snprintf(port_s, sizeof port_s, "%d", *mport);
    const char *args[16] = {"-m", port_s};
    int n = 2;
    for (; more && *more; more++)
        args[n++] = *more;
    args[n] = NULL;
    CHECK(harness_server_start(s, NULL, args) == 0);
}

/* Every path with every method and auth: status want, the error containing error (HEAD has
 * no body to look at). */
static void refused_everywhere(int mport, const char *auth, int want, const char *error)
{
    for (size_t p = 0; p < NPATHS; p++) {
        for (size_t m = 0; m < NMETHODS; m++) {
            bool head = strcmp(methods[m], "HEAD") == 0;
            struct ares r = aexpect(mport, methods[m], paths[p], auth, want, head ? NULL : error);
            if (want == 401)
                CHECK_EQ_STR(ares_header(&r, "WWW-Authenticate"), "Bearer realm=\"stanza\"");
            ares_free(&r);
        }
    }
}

/* A STAN channel with a live subscriber: what a refused command would have changed. */
struct scene {
    stanConnection *sc;
    stanSubscription *sub;
    struct hstan_rx rx;
};

static void scene_open(struct scene *x, const struct hserver *s)
{
    x->sc = hstan_connect_or_die(s, "c1");
    hstan_rx_init(&x->rx, 64, HSTAN_ACK_AUTO);
    CHECK(hstan_sub(&x->sub, x->sc, "foo", "q", &x->rx, NULL) == NATS_OK);
    for (int i = 0; i < 3; i++)
        CHECK(hstan_pub(x->sc, "foo", "job") == NATS_OK);
    CHECK(hstan_rx_wait(&x->rx, 3, T_MS));
}

/* Nothing was done: the channel with its msgs messages, its subscriber, the client are all
 * there, and messages still flow (one more is published and received). */
static void scene_intact(struct scene *x, int mport, const char *auth, int msgs)
{
    struct ares r = aexpect(mport, "GET", "/streaming/channelsz?channel=foo", auth, 200, NULL);
    CHECK_EQ_INT(ares_int(&r, "msgs"), msgs);
    CHECK_EQ_INT(ares_int(&r, "first_seq"), 1);
    CHECK_EQ_INT(ares_int(&r, "subs_count"), 1);
    ares_free(&r);
    r = aexpect(mport, "GET", "/streaming/clientsz?client=c1", auth, 200, NULL);
    ares_free(&r);
    CHECK(hstan_pub(x->sc, "foo", "more") == NATS_OK);
    CHECK(hstan_rx_wait(&x->rx, msgs + 1, T_MS));
}

static void scene_close(struct scene *x)
{
    stanSubscription_Destroy(x->sub);
    hstan_rx_destroy(&x->rx);
    stanConnection_Destroy(x->sc);
}

static void test_no_token_configured(void)
{
    struct hserver s;
    int mport;
    start(&s, &mport, NULL);
    struct scene x;
    scene_open(&x, &s);
    const char *disabled = "admin operations are disabled (no admin_token configured)";
    refused_everywhere(mport, NULL, 403, disabled);
    refused_everywhere(mport, BEARER, 403, disabled);
    refused_everywhere(mport, "Bearer x", 403, disabled);
    /* The read-only endpoints are open (no monitor_require_token). */
    scene_intact(&x, mport, NULL, 3);
    acheck(mport, "GET", "/streaming/serverz", NULL, 200, NULL);
    scene_close(&x);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_wrong_tokens(void)
{
    struct hserver s;
    int mport;
    const char *more[] = {"--admin_token", ADMIN_TOKEN, NULL};
    start(&s, &mport, more);
    struct scene x;
    scene_open(&x, &s);
    refused_everywhere(mport, NULL, 401, "missing bearer token");
    static const char *const malformed[] = {
        "Basic " ADMIN_TOKEN, "Bearer",    "Bearer ",
        "Bearer" ADMIN_TOKEN, ADMIN_TOKEN, "Bearer " ADMIN_TOKEN " extra",
        "Token " ADMIN_TOKEN, "",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
        acheck(mport, "POST", "/admin/purge?channel=foo", malformed[i], 401,
               "missing bearer token");
    static const char *const wrong[] = {
        "Bearer x",
        "Bearer it-admin-token-0123456789abcde",   /* a prefix of it */
        "Bearer it-admin-token-0123456789abcdef0", /* longer */
        "Bearer IT-ADMIN-TOKEN-0123456789ABCDEF",  /* another case */
        "Bearer it-admin-token-0123456789abcdeF",  /* the last character */
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++)
        refused_everywhere(mport, wrong[i], 403, "invalid token");
    scene_intact(&x, mport, NULL, 3);
    /* Two Authorization headers, one of them right: refused by the transport. */
    struct ares r =
        areq_hdr(mport, "POST", "/admin/purge?channel=foo", BEARER, "Authorization: Bearer x\r\n");
    CHECK_EQ_INT(r.status, 400);
    ares_free(&r);
    /* With the right token, a method an endpoint does not take is 405. */
    r = areq(mport, "PUT", "/admin/purge?channel=foo", BEARER);
    CHECK_EQ_INT(r.status, 405);
    ares_free(&r);
    scene_intact(&x, mport, NULL, 4);
    /* The right token, the scheme in any case and blanks around: routing is reached. */
    acheck(mport, "GET", "/admin/nonsense", BEARER, 404, "no such admin endpoint");
    acheck(mport, "GET", "/admin/../streaming/serverz", "bearer " ADMIN_TOKEN, 404,
           "no such admin endpoint");
    acheck(mport, "GET", "/admin/purge?channel=foo", "BEARER   " ADMIN_TOKEN "  ", 405,
           "method not allowed");
    r = aexpect(mport, "DELETE", "/admin/msg?channel=foo&seq=1", BEARER, 405, NULL);
    CHECK_EQ_STR(ares_header(&r, "Allow"), "GET, HEAD");
    ares_free(&r);
    r = aexpect(mport, "POST", "/admin/purge?channel=foo", BEARER, 200, NULL);
    CHECK_EQ_INT(ares_int(&r, "purged"), 5);
    ares_free(&r);
    scene_close(&x);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_monitor_require_token(void)
{
    struct hserver s;
    int mport;
    const char *more[] = {"--admin_token", ADMIN_TOKEN, "--monitor_require_token", NULL};
    start(&s, &mport, more);
    static const char *const guarded[] = {
        "/streaming/serverz",
        "/streaming/storez",
        "/streaming/clientsz",
        "/streaming/channelsz",
        "/streaming/pendingz",
        "/metrics",
        "/",
        "/nonsense",
        "/healthz/../metrics",
        "/streaming/channelsz?channel=foo",
    };
    for (size_t i = 0; i < sizeof guarded / sizeof *guarded; i++) {
        struct ares r = aexpect(mport, "GET", guarded[i], NULL, 401, "missing bearer token");
        CHECK_EQ_STR(ares_header(&r, "WWW-Authenticate"), "Bearer realm=\"stanza\"");
        ares_free(&r);
        acheck(mport, "GET", guarded[i], "Bearer it-admin-token-0123456789abcde", 403,
               "invalid token");
        r = areq(mport, "GET", guarded[i], BEARER);
        CHECK(r.status != 401 && r.status != 403);
        ares_free(&r);
    }
    acheck(mport, "GET", "/streaming/serverz", BEARER, 200, NULL);
    /* Probes stay open. */
    struct ares r = aexpect(mport, "GET", "/healthz", NULL, 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "status"), "ok");
    ares_free(&r);
    acheck(mport, "GET", "/healthz", "Bearer wrong", 200, NULL);
    r = aexpect(mport, "GET", "/livez", NULL, 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "status"), "ok");
    ares_free(&r);
    acheck(mport, "GET", "/livez", "Bearer wrong", 200, NULL);
    /* /metrics with the token is the exposition. */
    char *body = NULL;
    CHECK_EQ_INT(hhttp_get(mport, "/metrics", &body), 401);
    free(body);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

/* A deferred answer on a kept-alive connection: the requests pipelined behind it are answered
 * after it, in order; a client gone before its answer leaves the server unharmed. */
static void test_deferred_over_http(void)
{
    struct hserver s;
    int mport;
    const char *more[] = {"--admin_token", ADMIN_TOKEN, NULL};
    start(&s, &mport, more);
    stanConnection *sc = hstan_connect_or_die(&s, "p");
    for (int i = 0; i < 5; i++)
        CHECK(hstan_pub(sc, "jobs", "x") == NATS_OK);
    const char *req = "POST /admin/purge?channel=jobs&upto=2 HTTP/1.1\r\nAuthorization: " BEARER
                      "\r\nContent-Length: 4\r\n\r\nbody"
                      "GET /streaming/channelsz?channel=jobs HTTP/1.1\r\n\r\n"
                      "POST /admin/purge?channel=jobs HTTP/1.1\r\nAuthorization: " BEARER
                      "\r\nConnection: close\r\n\r\n";
    char *ans = hhttp_raw(mport, req, strlen(req));
    CHECK(ans != NULL);
    /* Three answers, in order: 2 purged, then the channel with 3 left, then 3 purged. */
    const char *a1 = strstr(ans, "\"purged\": 2");
    const char *a2 = a1 ? strstr(a1, "\"msgs\": 3") : NULL;
    const char *a3 = a2 ? strstr(a2, "\"purged\": 3") : NULL;
    if (!a3) fprintf(stderr, "answers:\n%s\n", ans);
    CHECK(a3 != NULL);
    free(ans);
    /* Clients that go away right after asking: the commands still run, nothing is answered. */
    for (int i = 0; i < 20; i++)
        CHECK(hstan_pub(sc, "jobs", "y") == NATS_OK);
    for (int i = 0; i < 10; i++) {
        int fd = hraw_connect(mport);
        CHECK(fd >= 0);
        char one[256];
        snprintf(one, sizeof one,
                 "POST /admin/purge?channel=jobs&upto=%d HTTP/1.1\r\nAuthorization: %s\r\n\r\n",
                 6 + 2 * i, BEARER);
        CHECK(hraw_send(fd, one));
        close(fd);
    }
    int64_t deadline = harness_now_ms() + T_MS;
    int64_t first = 0, msgs = 0;
    while (first != 25 && harness_now_ms() < deadline) {
        struct ares r = aexpect(mport, "GET", "/streaming/channelsz?channel=jobs", NULL, 200, NULL);
        first = ares_int(&r, "first_seq");
        msgs = ares_int(&r, "msgs");
        ares_free(&r);
    }
    CHECK_EQ_INT(first, 25);
    CHECK_EQ_INT(msgs, 1);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0); /* a clean exit: ASan found nothing */
}

int main(void)
{
    TEST_RUN(test_no_token_configured);
    TEST_RUN(test_wrong_tokens);
    TEST_RUN(test_monitor_require_token);
    TEST_RUN(test_deferred_over_http);
    return test_summary();
}
