/* Unit tests for handover_grace (issue 9's fast hand-over): its default, the file key and the
 * flag (durations as the other settings take them, 0 allowed: hand over at once), and bad
 * values refused with the file:line or the flag named. */
#include "config_test_util.h"

static void test_default_file_and_flag(void)
{
    config_t cfg;
    char err[512];
    config_init(&cfg);
    CHECK_EQ_INT(cfg.handover_grace_ms, 2000);
    config_free(&cfg);

    CHECK_EQ_INT(load_text(&cfg, "port: 1\nhandover_grace: 500ms\n", err, sizeof(err)), 0);
    CHECK_EQ_INT(cfg.handover_grace_ms, 500);
    config_free(&cfg);
    CHECK_EQ_INT(load_text(&cfg, "handover_grace: 0\n", err, sizeof(err)), 0);
    CHECK_EQ_INT(cfg.handover_grace_ms, 0);
    config_free(&cfg);
    CHECK_EQ_INT(load_text(&cfg, "handover_grace: 3\n", err, sizeof(err)), 0); /* seconds */
    CHECK_EQ_INT(cfg.handover_grace_ms, 3000);
    config_free(&cfg);

    CHECK_EQ_INT(ARGS(&cfg, err, "--handover_grace", "1m30s"), CONFIG_OK);
    CHECK_EQ_INT(cfg.handover_grace_ms, 90000);
    config_free(&cfg);
    CHECK_EQ_INT(ARGS(&cfg, err, "-handover_grace=0s"), CONFIG_OK);
    CHECK_EQ_INT(cfg.handover_grace_ms, 0);
    config_free(&cfg);
    /* The flag overrides the file. */
    const char *conf = yaml("c.yaml", "handover_grace: 10s\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", conf, "--handover_grace", "250ms"), CONFIG_OK);
    CHECK_EQ_INT(cfg.handover_grace_ms, 250);
    config_free(&cfg);

    const char *const usage[] = {"--handover_grace <duration>", "(default: 2s)"};
    check_usage_lists(usage, 2);
}

static void test_bad_values(void)
{
    check_bad_file("port: 1\nhandover_grace: soon\n", 2, "not a duration");
    check_bad_file("handover_grace: -1s\n", 1, "invalid value \"-1s\" for \"handover_grace\"");
    check_bad_file("\n\nhandover_grace: [1s]\n", 3, "takes a single value");
    check_bad_file("handover_grace: 5parsecs\n", 1, "not a duration");
    ARGS_FAIL("invalid value \"later\" for flag -handover_grace: not a duration",
              "--handover_grace", "later");
    ARGS_FAIL("invalid value \"-2s\" for flag -handover_grace", "--handover_grace", "-2s");
    ARGS_FAIL("flag needs an argument: -handover_grace", "--handover_grace");
}

int main(void)
{
    config_test_mkdtemp("/tmp/stanza_test_handover.XXXXXX");
    TEST_RUN(test_default_file_and_flag);
    TEST_RUN(test_bad_values);
    const char *names[] = {"t.yaml", "c.yaml"};
    config_test_rmdir(names, 2);
    return test_summary();
}
