/* it_tls: TLS on the client port, through libnats (core and STAN) and raw sockets.
 *
 * The test makes its own CA, server certificate and client certificate with the openssl CLI in
 * a temp dir, then starts stanzad with --tls (or --tlsverify, or a tls: section in the file). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "harness.h"
#include "harness_certs.h"
#include "harness_sched.h"
#include "test.h"

#define T_MS 5000

static struct hcerts tc; /* the test CA and certificates */

/* libnats options for a TLS client trusting the test CA; with_cert adds the client cert. */
static natsOptions *tls_opts(const struct hserver *s, bool with_cert)
{
    natsOptions *o = NULL;
    CHECK(natsOptions_Create(&o) == NATS_OK);
    CHECK(natsOptions_SetURL(o, harness_url(s)) == NATS_OK);
    CHECK(natsOptions_SetAllowReconnect(o, false) == NATS_OK);
    CHECK(natsOptions_SetTimeout(o, T_MS) == NATS_OK);
    CHECK(natsOptions_SetSecure(o, true) == NATS_OK);
    CHECK(natsOptions_LoadCATrustedCertificates(o, tc.ca) == NATS_OK);
    if (with_cert) CHECK(natsOptions_LoadCertificatesChain(o, tc.cli_cert, tc.cli_key) == NATS_OK);
    return o;
}

static natsStatus tls_connect(const struct hserver *s, bool with_cert, natsConnection **nc)
{
    natsOptions *o = tls_opts(s, with_cert);
    natsStatus st = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return st;
}

static void start_tls(struct hserver *s, bool verify)
{
    const char *plain[] = {"--tls", "--tlscert", tc.srv_cert, "--tlskey", tc.srv_key, NULL};
    const char *ver[] = {"--tlsverify", "--tlscert",   tc.srv_cert, "--tlskey",
                         tc.srv_key,    "--tlscacert", tc.ca,       NULL};
    CHECK(harness_server_start(s, NULL, verify ? ver : plain) == 0);
}

/* Core pub/sub over TLS, with payloads that span many records and a burst that fills the
 * socket, so both the direct and the queued write paths carry records. */
static void pubsub_roundtrip(natsConnection *nc)
{
    enum { BIG = 300 * 1024, N = 2000 };
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, nc, "tls.test") == NATS_OK);
    CHECK(natsSubscription_SetPendingLimits(sub, -1, -1) == NATS_OK);
    CHECK(natsConnection_PublishString(nc, "tls.test", "hello") == NATS_OK);
    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, sub, T_MS) == NATS_OK);
    CHECK_EQ_STR(natsMsg_GetData(m), "hello");
    natsMsg_Destroy(m);

    char *big = malloc(BIG);
    CHECK(big != NULL);
    for (int i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 26);
    CHECK(natsConnection_Publish(nc, "tls.test", big, BIG) == NATS_OK);
    for (int i = 0; i < N; i++)
        CHECK(natsConnection_Publish(nc, "tls.test", big, 1000) == NATS_OK);
    CHECK(natsSubscription_NextMsg(&m, sub, T_MS) == NATS_OK);
    CHECK_EQ_INT(natsMsg_GetDataLength(m), BIG);
    CHECK(memcmp(natsMsg_GetData(m), big, BIG) == 0);
    natsMsg_Destroy(m);
    for (int i = 0; i < N; i++) {
        CHECK(natsSubscription_NextMsg(&m, sub, T_MS) == NATS_OK);
        CHECK_EQ_INT(natsMsg_GetDataLength(m), 1000);
        CHECK(memcmp(natsMsg_GetData(m), big, 1000) == 0);
        natsMsg_Destroy(m);
    }
    free(big);
    natsSubscription_Destroy(sub);
}

static void test_core_pubsub_over_tls(void)
{
    struct hserver s;
    start_tls(&s, false);
    natsConnection *nc = NULL;
    natsStatus st = tls_connect(&s, false, &nc);
    if (st != NATS_OK) fprintf(stderr, "connect: %s\n", nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    CHECK(natsConnection_IsClosed(nc) == false);
    pubsub_roundtrip(nc);
    CHECK(natsConnection_FlushTimeout(nc, T_MS) == NATS_OK);
    natsConnection_Destroy(nc);
    CHECK(hfile_wait_contains(s.log, "TLS required for client connections", T_MS));
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

struct stan_rx {
    struct hcounter n;
    char last[64];
};

static void stan_handler(stanConnection *sc, stanSubscription *sub, const char *channel,
                         stanMsg *msg, void *closure)
{
    struct stan_rx *rx = closure;
    snprintf(rx->last, sizeof rx->last, "%.*s", stanMsg_GetDataLength(msg), stanMsg_GetData(msg));
    stanSubscription_AckMsg(sub, msg);
    stanMsg_Destroy(msg);
    hcounter_add(&rx->n, 1);
}

static void test_stan_over_tls(void)
{
    struct hserver s;
    start_tls(&s, true); /* with client verification, to carry the client cert through STAN */
    natsOptions *no = tls_opts(&s, true);
    stanConnOptions *so = NULL;
    CHECK(stanConnOptions_Create(&so) == NATS_OK);
    CHECK(stanConnOptions_SetNATSOptions(so, no) == NATS_OK);
    CHECK(stanConnOptions_SetConnectionWait(so, T_MS) == NATS_OK);
    stanConnection *sc = NULL;
    natsStatus st = stanConnection_Connect(&sc, "test-cluster", "tls-client", so);
    if (st != NATS_OK) fprintf(stderr, "stan connect: %s\n", nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    struct stan_rx rx = {0};
    hcounter_init(&rx.n);
    stanSubOptions *sub_o = NULL;
    CHECK(stanSubOptions_Create(&sub_o) == NATS_OK);
    CHECK(stanSubOptions_DeliverAllAvailable(sub_o) == NATS_OK);
    CHECK(stanSubOptions_SetManualAckMode(sub_o, true) == NATS_OK);
    for (int i = 0; i < 10; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "m%d", i);
        CHECK(stanConnection_Publish(sc, "tls.chan", msg, (int)strlen(msg)) == NATS_OK);
    }
    stanSubscription *sub = NULL;
    CHECK(stanConnection_Subscribe(&sub, sc, "tls.chan", stan_handler, &rx, sub_o) == NATS_OK);
    CHECK(hcounter_wait(&rx.n, 10, T_MS));
    CHECK_EQ_STR(rx.last, "m9");
    CHECK(stanSubscription_Close(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Close(sc) == NATS_OK);
    stanConnection_Destroy(sc);
    stanSubOptions_Destroy(sub_o);
    stanConnOptions_Destroy(so);
    natsOptions_Destroy(no);
    hcounter_destroy(&rx.n);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

static void test_plain_client_refused(void)
{
    struct hserver s;
    start_tls(&s, false);
    /* INFO (in plain text, as nats-server) says TLS is required... */
    int fd = hraw_connect(s.port);
    CHECK(fd >= 0);
    char line[4096];
    CHECK(hraw_read_line(fd, line, sizeof line, T_MS) > 0);
    CHECK(strncmp(line, "INFO {", 6) == 0);
    CHECK(strstr(line, "\"tls_required\":true") != NULL);
    CHECK(strstr(line, "tls_verify") == NULL);
    /* ...and a client that answers in plain text is told why and closed. */
    CHECK(hraw_send(fd, "CONNECT {\"verbose\":false}\r\nPING\r\n"));
    CHECK(hraw_expect_line(fd, "-ERR 'Secure Connection - TLS Required'", T_MS));
    CHECK(hraw_wait_closed(fd, T_MS));
    close(fd);
    /* libnats without TLS options never talks plain text to it: tls_required in INFO makes it
     * refuse (older releases) or start TLS on its own and, not trusting the test CA, fail. */
    natsConnection *nc = NULL;
    natsOptions *o = NULL;
    CHECK(natsOptions_Create(&o) == NATS_OK);
    CHECK(natsOptions_SetURL(o, harness_url(&s)) == NATS_OK);
    CHECK(natsOptions_SetAllowReconnect(o, false) == NATS_OK);
    natsStatus st = natsConnection_Connect(&nc, o);
    if (st != NATS_SECURE_CONNECTION_REQUIRED && st != NATS_SSL_ERROR)
        fprintf(stderr, "plain libnats connect: %s (%s)\n", natsStatus_GetText(st),
                nats_GetLastError(NULL));
    CHECK(st == NATS_SECURE_CONNECTION_REQUIRED || st == NATS_SSL_ERROR);
    natsOptions_Destroy(o);
    /* A client that never starts the handshake is closed after the TLS timeout (2 s). */
    fd = hraw_connect(s.port);
    CHECK(fd >= 0);
    CHECK(hraw_expect_line(fd, "INFO {", T_MS));
    int64_t t0 = harness_now_ms();
    CHECK(hraw_wait_closed(fd, 4 * T_MS));
    CHECK(harness_now_ms() - t0 >= 1500);
    close(fd);
    CHECK(hfile_wait_contains(s.log, "TLS handshake timeout", T_MS));
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

/* A raw TLS client of port past its handshake, CONNECT and a PING (never read). */
static SSL *raw_tls_client(int port, int *fd, SSL_CTX **ctx)
{
    *fd = hraw_connect(port);
    CHECK(*fd >= 0);
    CHECK(hraw_expect_line(*fd, "INFO {", T_MS));
    *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(*ctx != NULL);
    CHECK(SSL_CTX_load_verify_locations(*ctx, tc.ca, NULL) == 1);
    SSL_CTX_set_verify(*ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(*ctx);
    CHECK(ssl != NULL);
    CHECK(SSL_set_fd(ssl, *fd) == 1);
    CHECK(SSL_connect(ssl) == 1);
    static const char hello[] = "CONNECT {\"verbose\":false}\r\nPING\r\n";
    CHECK(SSL_write(ssl, hello, (int)sizeof hello - 1) == (int)sizeof hello - 1);
    return ssl;
}

/* One round trip of other, raising *worst (server time) and *worst_wall (wall time). The bound
 * is on the server, not on the machine: the round trip less the time the daemon's threads and
 * ours spent waiting for a CPU (harness_sched.h). At load 10 on 2 cores, under ASan, the wall
 * time reached 1037 ms while the server's part stayed under 40 ms; a server busy with the
 * flood, or not reading, still counts in full. */
static void round_trip(const struct hserver *s, natsConnection *other, int64_t *worst,
                       int64_t *worst_wall)
{
    struct hsched_span sp;
    CHECK(hsched_begin(&sp, s->pid) == 0);
    CHECK(natsConnection_FlushTimeout(other, T_MS) == NATS_OK);
    int64_t wall, ms = hsched_end(&sp, &wall);
    if (ms > *worst) *worst = ms;
    if (wall > *worst_wall) *worst_wall = wall;
}

/* A raw TLS client that floods PINGs and never reads: its PONGs (encrypted output) must count
 * toward max_pending like any other output, so it is closed as a slow consumer with the
 * daemon's memory bounded, while a libnats TLS client keeps its round trips. */
static void test_tls_flood_never_reading(void)
{
    enum { MAX_PENDING = 4 * 1024 * 1024, CHUNK = 16 * 1024 };
    char conf[256];
    snprintf(conf, sizeof conf, "max_pending: %d\nwrite_deadline: \"120s\"\n", MAX_PENDING);
    const char *args[] = {"--tls", "--tlscert", tc.srv_cert, "--tlskey", tc.srv_key, NULL};
#if defined(__SANITIZE_ADDRESS__)
    /* ASan keeps freed blocks in a quarantine of up to 256 MiB, which TLS's buffer churn fills:
     * memory the daemon gave back. Cap it for this server so RssAnon still means something. */
    char asan[512];
    const char *prev = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=8", prev ? prev : "",
             prev && *prev ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
#endif
    struct hserver s;
    CHECK(harness_server_start(&s, conf, args) == 0);
    long long base = harness_rss_anon(s.pid), peak = 0;
    CHECK(base > 0);
    /* Without a sanitizer the measure; with one, relative to the idle daemon and
     * doubled for ASan's shadow and quarantine (as in it_output_bound). */
    long long bound = MAX_PENDING + 16ll * 1024 * 1024;
#if defined(__SANITIZE_ADDRESS__)
    bound = base + 2 * bound;
#endif
    natsConnection *other = NULL;
    CHECK(tls_connect(&s, false, &other) == NATS_OK);

    int fd;
    SSL_CTX *ctx;
    SSL *ssl = raw_tls_client(s.port, &fd, &ctx);
    /* Short send timeouts: a stalled write is the moment to look at the daemon again. */
    struct timeval tv = {.tv_usec = 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static char chunk[CHUNK];
    for (size_t i = 0; i + 6 <= CHUNK; i += 6)
        memcpy(chunk + i, "PING\r\n", 6);
    int n = CHUNK / 6 * 6;
    unsigned long long sent = 0;
    int64_t start = harness_now_ms(), worst = 0, worst_wall = 0;
    bool closed = false;
    for (int iter = 0; !closed; iter++) {
        /* A retried SSL_write must pass the same buffer and length: it always does here. */
        int w = SSL_write(ssl, chunk, n);
        if (w > 0) {
            sent += (unsigned long long)w;
        } else {
            int e = SSL_get_error(ssl, w);
            if (e == SSL_ERROR_WANT_WRITE || (e == SSL_ERROR_SYSCALL && errno == EAGAIN))
                ERR_clear_error();
            else
                closed = true; /* reset or EPIPE: the server closed it */
        }
        long long rss = harness_rss_anon(s.pid);
        CHECK(rss > 0);
        if (rss > peak) peak = rss;
        if (rss > bound)
            fprintf(stderr, "daemon RssAnon %lld > bound %lld after %llu bytes\n", rss, bound,
                    sent);
        CHECK(rss <= bound);
        if (iter % 64 == 0) round_trip(&s, other, &worst, &worst_wall);
        CHECK(sent < 512ull * 1024 * 1024);
        CHECK(harness_now_ms() - start < 30000);
    }
    fprintf(stderr,
            "  TLS flood of %llu bytes cut off after %lld ms; peak RssAnon %.1f MiB (bound %.1f "
            "MiB); other client's worst round trip %lld ms of server time (worst wall time "
            "%lld ms)\n",
            sent, (long long)(harness_now_ms() - start), peak / 1048576.0, bound / 1048576.0,
            (long long)worst, (long long)worst_wall);
    CHECK(worst <= 1000);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    CHECK(hfile_wait_contains(s.log, "Client connection closed: Slow Consumer", T_MS));
    CHECK(natsConnection_FlushTimeout(other, T_MS) == NATS_OK);
    natsConnection_Destroy(other);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

/* --tlsverify, and the same through the file's tls section. */
static void check_verify(struct hserver *s)
{
    int fd = hraw_connect(s->port);
    CHECK(fd >= 0);
    char line[4096];
    CHECK(hraw_read_line(fd, line, sizeof line, T_MS) > 0);
    CHECK(strstr(line, "\"tls_verify\":true") != NULL);
    close(fd);
    natsConnection *nc = NULL;
    /* Without a client certificate: refused in the handshake. */
    CHECK(tls_connect(s, false, &nc) != NATS_OK);
    CHECK(nc == NULL);
    CHECK(hfile_wait_contains(s->log, "TLS handshake error", T_MS));
    /* With the CA-signed client certificate: works. */
    natsStatus st = tls_connect(s, true, &nc);
    if (st != NATS_OK) fprintf(stderr, "connect: %s\n", nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    pubsub_roundtrip(nc);
    natsConnection_Destroy(nc);
}

static void test_verify_client_certs(void)
{
    struct hserver s;
    start_tls(&s, true);
    check_verify(&s);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

static void test_tls_section_in_config_file(void)
{
    char conf[4 * PATH_MAX];
    snprintf(conf, sizeof conf,
             "# TLS as nats-server writes it\ntls:\n  cert_file: \"%s\"\n  key_file: \"%s\"\n"
             "  ca_file: \"%s\"\n  verify: true\n",
             tc.srv_cert, tc.srv_key, tc.ca);
    struct hserver s;
    CHECK(harness_server_start(&s, conf, NULL) == 0);
    check_verify(&s);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

/* stanzad with args must exit 1 with a message on stderr containing needle and needle2. */
static void expect_start_error(const char *const *args, const char *needle, const char *needle2)
{
    char dir[PATH_MAX - 64], out[PATH_MAX];
    CHECK(hmkdtemp(dir, sizeof dir) == 0);
    snprintf(out, sizeof out, "%s/out", dir);
    const char *argv[16] = {getenv("STANZAD"), "-a", "127.0.0.1", "-p", "0"};
    size_t n = 5;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int st = hproc_run(argv, dir, out, out, T_MS);
    char *text = hfile_read(out);
    CHECK(text != NULL);
    bool ok = st == 1 && strstr(text, needle) && (!needle2 || strstr(text, needle2));
    if (!ok)
        fprintf(stderr, "status %d; wanted 1 and \"%s\", \"%s\" in:\n%s\n", st, needle,
                needle2 ? needle2 : "", text);
    CHECK(ok);
    free(text);
    hremove_tree(dir);
}

static void test_bad_tls_config(void)
{
    char conf[PATH_MAX], text[4 * PATH_MAX];
    /* A missing certificate file, by flag: named. */
    const char *a1[] = {"--tls",    "--tlscert", "/nonexistent/server.pem",
                        "--tlskey", tc.srv_key,  NULL};
    expect_start_error(a1, "/nonexistent/server.pem", "No such file");
    /* TLS without a key. */
    const char *a2[] = {"--tls", "--tlscert", tc.srv_cert, NULL};
    expect_start_error(a2, "--tlskey", NULL);
    /* A key that is not the certificate's. */
    const char *a3[] = {"--tls", "--tlscert", tc.srv_cert, "--tlskey", tc.cli_key, NULL};
    expect_start_error(a3, tc.cli_key, "does not match");
    /* A file that is not PEM at all. */
    const char *a4[] = {"--tls", "--tlscert", conf, "--tlskey", tc.srv_key, NULL};
    snprintf(conf, sizeof conf, "%s/openssl.log", tc.dir);
    expect_start_error(a4, conf, "cannot load certificate");
    /* In the file: the missing file and the line that names it. */
    snprintf(conf, sizeof conf, "%s/bad.conf", tc.dir);
    snprintf(text, sizeof text, "port: 0\ntls:\n  cert_file: \"%s\"\n  key_file: /nope/key.pem\n",
             tc.srv_cert);
    CHECK(hfile_write(conf, text) == 0);
    const char *a5[] = {"-c", conf, NULL};
    char where[PATH_MAX + 16];
    snprintf(where, sizeof where, "%s:4:", conf);
    expect_start_error(a5, where, "/nope/key.pem");
    /* An unknown key in the section. */
    snprintf(text, sizeof text, "tls:\n  cert: x.pem\n");
    CHECK(hfile_write(conf, text) == 0);
    snprintf(where, sizeof where, "%s:2:", conf);
    expect_start_error(a5, where, "unknown setting \"cert\" in tls");
}

int main(void)
{
    hcerts_make(&tc);
    TEST_RUN(test_core_pubsub_over_tls);
    TEST_RUN(test_stan_over_tls);
    TEST_RUN(test_plain_client_refused);
    TEST_RUN(test_verify_client_certs);
    TEST_RUN(test_tls_section_in_config_file);
    TEST_RUN(test_bad_tls_config);
    TEST_RUN(test_tls_flood_never_reading);
    hcerts_remove(&tc);
    return test_summary();
}
