/* it_stan_ns_auth: how stanzad reaches an external NATS that wants credentials or TLS (`-ns` with
 * --user/--pass, --auth, -secure, -tls_client_cert/-tls_client_key/-tls_client_cacert), against
 * Debian's nats-server configured that way: the right credentials start the engine and a STAN
 * client (with its own credentials) publishes and receives through it; wrong or missing ones
 * stop stanzad at start with NATS's reason in its log, rather than a server that never answers. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_certs.h"
#include "harness_cluster.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000

static struct hcerts tc;

/* A STAN client through url (credentials in it) or, with tls, over TLS with the test CA and
 * client certificate: publishes one message and receives it back. */
static void stan_round_trip(const char *url, bool tls, const char *client_id)
{
    natsOptions *no = NULL;
    stanConnOptions *co = NULL;
    stanConnection *sc = NULL;
    CHECK(natsOptions_Create(&no) == NATS_OK);
    CHECK(natsOptions_SetURL(no, url) == NATS_OK);
    if (tls) {
        CHECK(natsOptions_SetSecure(no, true) == NATS_OK);
        CHECK(natsOptions_LoadCATrustedCertificates(no, tc.ca) == NATS_OK);
        CHECK(natsOptions_LoadCertificatesChain(no, tc.cli_cert, tc.cli_key) == NATS_OK);
    }
    CHECK(stanConnOptions_Create(&co) == NATS_OK);
    CHECK(stanConnOptions_SetNATSOptions(co, no) == NATS_OK);
    CHECK(stanConnOptions_SetConnectionWait(co, HSTAN_CONNECT_WAIT_MS) == NATS_OK);
    natsStatus st = stanConnection_Connect(&sc, HSTAN_CLUSTER, client_id, co);
    if (st != NATS_OK)
        fprintf(stderr, "connect %s: %s (%s)\n", url, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    hstan_round_trip(sc, "auth.ch", "hello");
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    stanConnOptions_Destroy(co);
    natsOptions_Destroy(no);
}

/* stanzad must not start; its log says why (want). */
static void expect_refused(const char *const *args, const char *want)
{
    struct hserver s;
    fprintf(stderr, "(a start-up failure with its log is expected next)\n");
    CHECK(harness_server_start_ns(&s, NULL, args) != 0);
    CHECK_EQ_INT(s.exit_status, 1); /* it exits at once, not killed at the deadline */
    if (hfile_count(s.log, want) == 0) {
        harness_dump_log(&s);
        fprintf(stderr, "log lacks \"%s\"\n", want);
        CHECK(0);
    }
    hremove_tree(s.dir);
}

static void test_user_and_password(void)
{
    struct hnatsd n;
    const char *flags[] = {"--user", "stanza", "--pass", "s3cret", NULL};
    CHECK(hnatsd_start_args(&n, "auth", flags) == 0);
    char url[128], cli[128];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", n.port);
    snprintf(cli, sizeof cli, "nats://stanza:s3cret@127.0.0.1:%d", n.port);
    struct hserver s;
    CHECK(harness_server_start_ns(&s, NULL,
                                  (const char *const[]){"-ns", url, "--user", "stanza", "--pass",
                                                        "s3cret", NULL}) == 0);
    stan_round_trip(cli, false, "auth-user");
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    expect_refused((const char *const[]){"-ns", url, "--user", "stanza", "--pass", "wrong", NULL},
                   "Authorization Violation");
    expect_refused((const char *const[]){"-ns", url, NULL}, "Authorization Violation");
    hnatsd_cleanup(&n);
}

static void test_token(void)
{
    struct hnatsd n;
    const char *flags[] = {"--auth", "t0ken-for-nats", NULL};
    CHECK(hnatsd_start_args(&n, "auth", flags) == 0);
    char url[128], cli[128];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", n.port);
    snprintf(cli, sizeof cli, "nats://t0ken-for-nats@127.0.0.1:%d", n.port);
    struct hserver s;
    CHECK(harness_server_start_ns(
              &s, NULL, (const char *const[]){"-ns", url, "--auth", "t0ken-for-nats", NULL}) == 0);
    stan_round_trip(cli, false, "auth-token");
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    expect_refused((const char *const[]){"-ns", url, "--auth", "not-the-token", NULL},
                   "Authorization Violation");
    hnatsd_cleanup(&n);
}

static void test_tls_client_certificate(void)
{
    struct hnatsd n;
    const char *flags[] = {"--tlsverify", "--tlscert",   tc.srv_cert, "--tlskey",
                           tc.srv_key,    "--tlscacert", tc.ca,       NULL};
    CHECK(hnatsd_start_args(&n, "auth", flags) == 0);
    char url[128];
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", n.port);
    struct hserver s;
    CHECK(harness_server_start_ns(&s, NULL,
                                  (const char *const[]){"-ns", url, "-secure", "-tls_client_cacert",
                                                        tc.ca, "-tls_client_cert", tc.cli_cert,
                                                        "-tls_client_key", tc.cli_key, NULL}) == 0);
    stan_round_trip(url, true, "auth-tls");
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    /* The server verifies client certificates: none is refused. */
    expect_refused((const char *const[]){"-ns", url, "-tls_client_cacert", tc.ca, NULL},
                   "cannot connect to NATS");
    hnatsd_cleanup(&n);

    /* -secure against a server without TLS: refused, not sent in clear. */
    struct hnatsd plain;
    CHECK(hnatsd_start_args(&plain, "plain", NULL) == 0);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", plain.port);
    expect_refused((const char *const[]){"-ns", url, "-secure", NULL}, "cannot connect to NATS");
    hnatsd_cleanup(&plain);
}

int main(void)
{
    hcerts_make(&tc);
    HSTAN_RUN(test_user_and_password);
    HSTAN_RUN(test_token);
    HSTAN_RUN(test_tls_client_certificate);
    hcerts_remove(&tc);
    nats_CloseAndWait(5000);
    return test_summary();
}
