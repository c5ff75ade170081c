/* Unit tests for the external-NATS settings (-ns, issue 10): nats_server_url (a comma-separated
 * list of NATS URLs, checked where it is read: the flag, or file:line), the credentials file,
 * secure and the client TLS files, which apply only with -ns and must exist, and the client
 * certificate and key given together. */
#include "config_test_util.h"

static void test_flags_and_file(void)
{
    config_t cfg;
    char err[512];
    config_init(&cfg);
    CHECK(cfg.nats_server_url == NULL);
    CHECK(!cfg.nats_secure);
    config_free(&cfg);

    CHECK_EQ_INT(ARGS(&cfg, err, "-ns", "nats://127.0.0.1:4222,tls://h2:4443, h3"), CONFIG_OK);
    CHECK_EQ_STR(cfg.nats_server_url, "nats://127.0.0.1:4222,tls://h2:4443, h3");
    config_free(&cfg);
    const char *creds = yaml("u.creds", "-----BEGIN NATS USER JWT-----\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "--nats_server=nats://u:p@h:1", "--nats_creds", creds, "-secure",
                      "--user", "u", "--pass", "p"),
                 CONFIG_OK);
    CHECK_EQ_STR(cfg.nats_server_url, "nats://u:p@h:1");
    CHECK_EQ_STR(cfg.nats_creds, creds);
    CHECK(cfg.nats_secure);
    config_free(&cfg);

    char text[512];
    snprintf(text, sizeof text,
             "nats_server_url: nats://a:4222,nats://b:4222\ncredentials: %s\nsecure: true\n"
             "tls_client_cert: %s\ntls_client_key: %s\ntls_client_cacert: %s\n",
             creds, creds, creds, creds);
    CHECK_EQ_INT(load_text(&cfg, text, err, sizeof err), 0);
    CHECK_EQ_STR(cfg.nats_server_url, "nats://a:4222,nats://b:4222");
    CHECK_EQ_STR(cfg.tls_client_cacert, creds);
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), 0);
    config_free(&cfg);

    const char *const usage[] = {"-ns, --nats_server <url,...>", "--nats_creds <file>",
                                 "--tls_client_cert <file>", "--tls_client_cacert <file>"};
    check_usage_lists(usage, 4);
}

static void test_bad_values(void)
{
    check_bad_file("port: 1\nnats_server_url: \"nats://a:4222,,\"\n", 2, "is not a NATS URL");
    check_bad_file("nats_server_url: nats://a:70000\n", 1, "is not a NATS URL");
    check_bad_file("nats_server_url: \"nats://a b:1\"\n", 1, "is not a NATS URL");
    ARGS_FAIL("for flag -ns: \"nats://\" is not a NATS URL", "-ns", "nats://");
    ARGS_FAIL("flag needs an argument: -ns", "-ns");
    /* Options of the NATS connection without one. */
    const char *creds = yaml("v.creds", "x\n");
    ARGS_FAIL("apply only with -ns", "--nats_creds", creds);
    ARGS_FAIL("apply only with -ns", "-secure");
    ARGS_FAIL("apply only with -ns", "--tls_client_cacert", creds);
    ARGS_FAIL("tls_client_cert and tls_client_key go together", "-ns", "h:1", "--tls_client_cert",
              creds);
    ARGS_FAIL("credentials: ", "-ns", "h:1", "--nats_creds", "/nonexistent/file.creds");
    ARGS_FAIL("does not run with -ns", "-ns", "h:1", "--cluster", "nats://127.0.0.1:6222");
    ARGS_FAIL("tls_client_key: ", "-ns", "h:1", "--tls_client_cert", creds, "--tls_client_key",
              "/nonexistent/key.pem");
}

int main(void)
{
    config_test_mkdtemp("/tmp/stanza_test_upstream.XXXXXX");
    TEST_RUN(test_flags_and_file);
    TEST_RUN(test_bad_values);
    const char *names[] = {"t.yaml", "u.creds", "v.creds"};
    config_test_rmdir(names, 3);
    return test_summary();
}
