/* Unit tests for the admin settings of the monitoring port (issue 9): admin_token (at least 16
 * characters when set, "" or null unsets it, never echoed in an error) and
 * monitor_require_token (a boolean that needs an admin_token: the error names where it was
 * set), from the file and from the flags. */
#include "config_test_util.h"

#define TOKEN "0123456789abcdef" /* 16 characters: the shortest taken */

static void test_defaults_file_and_flags(void)
{
    config_t cfg;
    char err[512];
    config_init(&cfg);
    CHECK(cfg.admin_token == NULL);
    CHECK(!cfg.monitor_require_token);
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), 0);
    config_free(&cfg);

    CHECK_EQ_INT(
        load_text(&cfg, "admin_token: " TOKEN "\nmonitor_require_token: true\n", err, sizeof(err)),
        0);
    CHECK_EQ_STR(cfg.admin_token, TOKEN);
    CHECK(cfg.monitor_require_token);
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), 0);
    config_free(&cfg);
    /* "" and null unset it. */
    CHECK_EQ_INT(load_text(&cfg, "admin_token: " TOKEN "\nadmin_token: \"\"\n", err, sizeof(err)),
                 0);
    CHECK(cfg.admin_token == NULL);
    config_free(&cfg);
    CHECK_EQ_INT(load_text(&cfg, "admin_token: " TOKEN "\nadmin_token: null\n", err, sizeof(err)),
                 0);
    CHECK(cfg.admin_token == NULL);
    config_free(&cfg);

    CHECK_EQ_INT(ARGS(&cfg, err, "--admin_token", TOKEN "-longer", "--monitor_require_token"),
                 CONFIG_OK);
    CHECK_EQ_STR(cfg.admin_token, TOKEN "-longer");
    CHECK(cfg.monitor_require_token);
    config_free(&cfg);
    /* The flag overrides the file, and can turn the requirement off again. */
    const char *conf =
        yaml("c.yaml", "admin_token: aaaaaaaaaaaaaaaaaaaa\nmonitor_require_token: yes\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", conf, "-admin_token=" TOKEN, "-monitor_require_token=false"),
                 CONFIG_OK);
    CHECK_EQ_STR(cfg.admin_token, TOKEN);
    CHECK(!cfg.monitor_require_token);
    config_free(&cfg);

    const char *const usage[] = {"--admin_token <token>", "--monitor_require_token"};
    check_usage_lists(usage, 2);
}

static void test_bad_values(void)
{
    check_bad_file("port: 1\nadmin_token: short-secret\n", 2,
                   "invalid value for \"admin_token\": must be at least 16 characters");
    check_bad_file("admin_token: [" TOKEN "]\n", 1, "takes a single value");
    check_bad_file("\nmonitor_require_token: maybe\n", 2, "not a boolean");
    /* The short token is not repeated in the message. */
    config_t cfg;
    char err[512];
    CHECK(load_text(&cfg, "admin_token: s3cr3t-short\n", err, sizeof(err)) < 0);
    CHECK(!strstr(err, "s3cr3t"));
    config_free(&cfg);
    ARGS_FAIL("must be at least 16 characters", "--admin_token", "0123456789abcde");
    ARGS_FAIL("flag needs an argument: -admin_token", "--admin_token");
    ARGS_FAIL("not a boolean", "--monitor_require_token=sometimes");
}

/* monitor_require_token without a token would lock every endpoint but /healthz: refused, the
 * message saying where it was set. */
static void test_require_needs_token(void)
{
    char want[300];
    const char *conf = yaml("t.yaml", "port: 1\n\nmonitor_require_token: true\n");
    snprintf(want, sizeof want, "%s:3: monitor_require_token needs an admin_token", conf);
    ARGS_FAIL(want, "-c", conf);
    ARGS_FAIL("flag -monitor_require_token: monitor_require_token needs an admin_token",
              "--monitor_require_token");
    /* A token unset by a later flag. */
    ARGS_FAIL("needs an admin_token", "--admin_token", TOKEN, "--monitor_require_token",
              "--admin_token", "");
    config_t cfg;
    char err[512];
    config_init(&cfg);
    cfg.monitor_require_token = true;
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), STZ_ECONFIG);
    CHECK(strstr(err, "monitor_require_token needs an admin_token"));
    /* A token set in code is checked as one from the file. */
    cfg.admin_token = strdup("too-short");
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), STZ_ECONFIG);
    CHECK(strstr(err, "admin_token: must be at least 16 characters"));
    config_free(&cfg);
}

int main(void)
{
    config_test_mkdtemp("/tmp/stanza_test_admin.XXXXXX");
    TEST_RUN(test_defaults_file_and_flags);
    TEST_RUN(test_bad_values);
    TEST_RUN(test_require_needs_token);
    const char *names[] = {"t.yaml", "c.yaml"};
    config_test_rmdir(names, 2);
    return test_summary();
}
