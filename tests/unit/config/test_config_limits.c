/* Unit tests for the streaming settings of config: their defaults and flags, the store_limits
 * section of the file (good and bad), and config_channel_limits' inheritance. */
#include "config_test_util.h"

#include <stdint.h>
#include <sys/stat.h>

#define KB 1024LL
#define MB (1024LL * KB)
#define GB (1024LL * MB)

/* Loads text that must be good. */
static void load_ok(config_t *cfg, const char *text)
{
    char err[512];
    int rc = load_text(cfg, text, err, sizeof(err));
    if (rc != 0) fprintf(stderr, "input:\n%s\nerr=\"%s\"\n", text, err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(config_validate(cfg, err, sizeof(err)), 0);
}

static void check_limits(const config_limits_t *l, int64_t msgs, int64_t bytes, int64_t age,
                         int64_t subs, int64_t inact)
{
    CHECK_EQ_INT(l->max_msgs, msgs);
    CHECK_EQ_INT(l->max_bytes, bytes);
    CHECK_EQ_INT(l->max_age_ms, age);
    CHECK_EQ_INT(l->max_subs, subs);
    CHECK_EQ_INT(l->max_inactivity_ms, inact);
}

/* The effective limits of channel in cfg. */
static void check_channel(const config_t *cfg, const char *channel, int64_t msgs, int64_t bytes,
                          int64_t age, int64_t subs, int64_t inact)
{
    config_limits_t l;
    memset(&l, 0xaa, sizeof(l));
    config_channel_limits(cfg, channel, &l);
    if (l.max_msgs != msgs || l.max_bytes != bytes || l.max_age_ms != age || l.max_subs != subs ||
        l.max_inactivity_ms != inact)
        fprintf(stderr, "channel \"%s\":\n", channel);
    check_limits(&l, msgs, bytes, age, subs, inact);
}

static void test_defaults(void)
{
    config_t cfg;
    char err[256];
    config_init(&cfg);
    CHECK_EQ_STR(cfg.discover_prefix, "_STAN.discover");
    CHECK_EQ_INT(cfg.hb_interval_ms, 30000);
    CHECK_EQ_INT(cfg.hb_timeout_ms, 10000);
    CHECK_EQ_INT(cfg.hb_fail_count, 10);
    CHECK(cfg.file_sync);
    CHECK(!cfg.replace_durable);
    CHECK_EQ_INT(cfg.max_channels, 100);
    check_limits(&cfg.limits, 1000000, 1024000000, 0, 1000, 0);
    CHECK(cfg.channel_limits == NULL);
    CHECK_EQ_INT(cfg.nchannel_limits, 0);
    check_channel(&cfg, "foo", 1000000, 1024000000, 0, 1000, 0);
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
    config_free(&cfg);
    config_free(&cfg);
}

static void test_flags(void)
{
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(ARGS(&cfg, err, "-hbi", "5s", "-hbt=2s", "-hbf", "3", "--file_sync=false",
                      "--replace_durable", "-mc", "7", "-msu", "8", "-mm", "9", "-mb", "1GB", "-ma",
                      "1h", "-mi=10m"),
                 CONFIG_OK);
    CHECK_EQ_INT(cfg.hb_interval_ms, 5000);
    CHECK_EQ_INT(cfg.hb_timeout_ms, 2000);
    CHECK_EQ_INT(cfg.hb_fail_count, 3);
    CHECK(!cfg.file_sync);
    CHECK(cfg.replace_durable);
    CHECK_EQ_INT(cfg.max_channels, 7);
    check_limits(&cfg.limits, 9, GB, 3600000, 8, 600000);
    config_free(&cfg);

    /* Long names, either dash count, both value forms. */
    CHECK_EQ_INT(ARGS(&cfg, err, "--hb_interval", "1m", "-hb_timeout=500ms", "--hb_fail_count=1",
                      "-file_sync", "-replace_durable=false", "--max_channels=0", "-max_subs", "0",
                      "--max_msgs", "0", "-max_bytes=512KB", "--max_age", "90", "-max_inactivity",
                      "1h30m"),
                 CONFIG_OK);
    CHECK_EQ_INT(cfg.hb_interval_ms, 60000);
    CHECK_EQ_INT(cfg.hb_timeout_ms, 500);
    CHECK_EQ_INT(cfg.hb_fail_count, 1);
    CHECK(cfg.file_sync);
    CHECK(!cfg.replace_durable);
    CHECK_EQ_INT(cfg.max_channels, 0);
    check_limits(&cfg.limits, 0, 512 * KB, 90000, 0, 5400000);
    config_free(&cfg);

    /* Bools never take the next argument; the last of a repeated flag wins. */
    CHECK_EQ_INT(ARGS(&cfg, err, "--file_sync=false", "--file_sync", "-mm", "1", "-mm", "2"),
                 CONFIG_OK);
    CHECK(cfg.file_sync);
    CHECK_EQ_INT(cfg.limits.max_msgs, 2);
    config_free(&cfg);
    ARGS_FAIL("unexpected argument \"false\"", "--file_sync", "false");
    ARGS_FAIL("invalid value \"x\" for flag -replace_durable: not a boolean",
              "--replace_durable=x");

    /* Negative limits are refused, whatever their form. */
    const char *neg[][2] = {{"-mc", "-1"},   {"-msu", "-5"}, {"-mm", "-1"},  {"-mb", "-1"},
                            {"-mb", "-1MB"}, {"-ma", "-1s"}, {"-mi", "-1m"}, {"--max_age", "-3"}};
    for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want),
                 "invalid value \"%s\" for flag %s: must not be negative (0 "
                 "means unlimited)",
                 neg[i][1], neg[i][0] + (neg[i][0][1] == '-'));
        ARGS_FAIL(want, (char *)neg[i][0], (char *)neg[i][1]);
    }
    ARGS_FAIL("for flag -mm: not an integer", "-mm", "1K");
    ARGS_FAIL("for flag -msu: not an integer", "-msu", "lots");
    ARGS_FAIL("for flag -mb: not a size", "-mb", "1XB");
    ARGS_FAIL("for flag -ma: not a duration", "-ma", "1d");
    ARGS_FAIL("for flag -hbi: must be at least 1ms", "-hbi", "0");
    ARGS_FAIL("for flag -hbt: not a duration", "-hbt", "-1s");
    ARGS_FAIL("for flag -hbf: must be at least 1", "-hbf", "0");
    ARGS_FAIL("flag needs an argument: -mi", "-mi");
    /* discover_prefix has no flag in NSS, and none here. */
    ARGS_FAIL("unknown flag: -discover_prefix", "--discover_prefix", "x");
}

static void test_config_set(void)
{
    config_t cfg;
    char err[256];
    config_init(&cfg);
    CHECK_EQ_INT(config_set(&cfg, "max_subscriptions", "12", err, sizeof(err)), 0);
    CHECK_EQ_INT(cfg.limits.max_subs, 12);
    CHECK_EQ_INT(config_set(&cfg, "discover_prefix", "my.discover", err, sizeof(err)), 0);
    CHECK_EQ_STR(cfg.discover_prefix, "my.discover");
    CHECK_EQ_INT(config_set(&cfg, "discover_prefix", "a.*", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "discover_prefix", "", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "max_bytes", "-2", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_STR(err, "must not be negative (0 means unlimited)");
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
    cfg.limits.max_msgs = -1;
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), STZ_ECONFIG);
    CHECK_EQ_STR(err, "max_msgs: must not be negative (0 means unlimited)");
    cfg.limits.max_msgs = 0;
    cfg.hb_fail_count = 0;
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), STZ_ECONFIG);
    CHECK_EQ_STR(err, "hb_fail_count: must be at least 1");
    config_free(&cfg);
}

static void test_file_keys(void)
{
    config_t cfg;
    load_ok(&cfg, "discover_prefix: _MY.disco\n"
                  "hb_interval: 1m\n"
                  "hb_timeout: 3\n"
                  "hb_fail_count: 4\n"
                  "file_sync: no\n"
                  "replace_durable: yes\n"
                  "store_limits:\n"
                  "  max_channels: 50\n"
                  "  max_msgs: 5000\n"
                  "  max_bytes: 1GB\n"
                  "  max_age: 2h\n"
                  "  max_subs: 20\n"
                  "  max_inactivity: 30s\n"
                  "  channels:\n"
                  "    \"orders.>\":\n"
                  "      max_msgs: 100\n"
                  "    orders.eu:\n"
                  "      max_age: 1h\n"
                  "      max_bytes: 10MB\n"
                  "    'logs':\n"
                  "      max_msgs: -1\n"
                  "      MAX_SUBSCRIPTIONS: 5\n"
                  "    empty: {}\n"
                  "port: 4333\n");
    CHECK_EQ_STR(cfg.discover_prefix, "_MY.disco");
    CHECK_EQ_INT(cfg.hb_interval_ms, 60000);
    CHECK_EQ_INT(cfg.hb_timeout_ms, 3000);
    CHECK_EQ_INT(cfg.hb_fail_count, 4);
    CHECK(!cfg.file_sync && cfg.replace_durable);
    CHECK_EQ_INT(cfg.port, 4333); /* the top level goes on after the section */
    CHECK_EQ_INT(cfg.max_channels, 50);
    check_limits(&cfg.limits, 5000, GB, 7200000, 20, 30000);
    CHECK_EQ_INT(cfg.nchannel_limits, 4);
    const config_channel_limits_t *e = cfg.channel_limits;
    CHECK_EQ_STR(e[0].pattern, "orders.>");
    CHECK_EQ_INT(e[0].line, 15);
    check_limits(&e[0].limits, 100, 0, 0, 0, 0);
    CHECK_EQ_STR(e[1].pattern, "orders.eu");
    CHECK_EQ_INT(e[1].line, 17);
    check_limits(&e[1].limits, 0, 10 * MB, 3600000, 0, 0);
    CHECK_EQ_STR(e[2].pattern, "logs");
    check_limits(&e[2].limits, -1, 0, 0, 5, 0);
    CHECK_EQ_STR(e[3].pattern, "empty");
    check_limits(&e[3].limits, 0, 0, 0, 0, 0);
    config_free(&cfg);

    /* The alias "limits", NSS's short names, flow style, negative values of every form. */
    load_ok(&cfg, "Limits: {mc: 3, mm: 1, mb: 2KB, ma: 1s, msu: 4, mi: 5s,\n"
                  "  channels: {'a.*': {max_bytes: -1MB, max_age: -1s, max_inactivity: -2,\n"
                  "                     max_subs: -3, max_msgs: 0}}}\n");
    CHECK_EQ_INT(cfg.max_channels, 3);
    check_limits(&cfg.limits, 1, 2 * KB, 1000, 4, 5000);
    CHECK_EQ_INT(cfg.nchannel_limits, 1);
    check_limits(&cfg.channel_limits[0].limits, 0, -MB, -1000, -3, -2000);
    check_channel(&cfg, "a.b", 1, 0, 0, 0, 0);
    config_free(&cfg);

    /* Empty sections, as left by commenting out their contents; a repeated section adds up. */
    load_ok(&cfg, "store_limits:\n# max_msgs: 1\n");
    CHECK_EQ_INT(cfg.limits.max_msgs, 1000000);
    config_free(&cfg);
    load_ok(&cfg, "store_limits:\n  channels:\n  max_msgs: 7\n");
    CHECK_EQ_INT(cfg.limits.max_msgs, 7);
    CHECK_EQ_INT(cfg.nchannel_limits, 0);
    config_free(&cfg);
    load_ok(&cfg, "limits: {channels: {a: {}}}\nstore_limits: {channels: {b: {}}, mm: 2}\n");
    CHECK_EQ_INT(cfg.nchannel_limits, 2);
    CHECK_EQ_INT(cfg.limits.max_msgs, 2);
    config_free(&cfg);
}

static void test_channel_count(void)
{
    config_t cfg;
    char err[512], want[300];
    /* Patterns do not count; literal names do, up to max_channels. */
    load_ok(&cfg, "store_limits:\n  max_channels: 2\n  channels:\n    a: {}\n    'x.*': {}\n"
                  "    b: {}\n    '>': {}\n");
    CHECK_EQ_INT(cfg.nchannel_limits, 4);
    config_free(&cfg);
    check_bad_file("store_limits:\n  max_channels: 2\n  channels:\n    a: {}\n    'x.*': {}\n"
                   "    b: {}\n    c: {}\n    d: {}\n",
                   7, "store_limits.channels: too many channels defined (4), the max is 2");
    /* max_channels may come after the channels, and 0 means no limit. */
    check_bad_file("store_limits:\n  channels: {a: {}, b: {}}\n  max_channels: 1\n", 2,
                   "too many channels defined (2), the max is 1");
    load_ok(&cfg, "store_limits:\n  channels: {a: {}, b: {}}\n  max_channels: 0\n");
    config_free(&cfg);

    /* Through the flags: -mc is applied after the file, and checked last. */
    const char *path = yaml("c.yaml", "store_limits: {channels: {a: {}, b: {}, c: {}}}\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", (char *)path, "-mc", "3"), CONFIG_OK);
    config_free(&cfg);
    CHECK_EQ_INT(ARGS(&cfg, err, "-mc", "2", "-c", (char *)path), STZ_ECONFIG);
    CHECK_EQ_STR(err, "invalid configuration: max_channels: 3 channels are defined in "
                      "store_limits.channels, more than 2");
    config_free(&cfg);
    /* A file over its own max_channels is an error, whatever the flags say. */
    path = yaml("c.yaml", "store_limits: {max_channels: 1, channels: {a: {}, b: {}}}\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", (char *)path, "-mc", "0"), STZ_ECONFIG);
    snprintf(want, sizeof(want), "%s:1: store_limits.channels: too many channels defined", path);
    CHECK(strncmp(err, want, strlen(want)) == 0);
    config_free(&cfg);
}

/* store_limits.channels: its shape, the names and patterns, the entries' keys and values. */
static void check_bad_channels(void)
{
    check_bad_file("store_limits:\n  channels:\n    - a\n", 3,
                   "\"channels\" must be a mapping, not a list");
    check_bad_file("store_limits:\n  channels: 5\n", 2,
                   "\"channels\" must be a mapping, not a single value");
    check_bad_file("store_limits:\n  channels:\n    foo: 5\n", 3,
                   "channel \"foo\" must be a mapping, not a single value");
    check_bad_file("store_limits:\n  channels:\n    foo:\n    bar: {}\n", 3,
                   "channel \"foo\" must be a mapping, not a single value");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      - max_msgs: 1\n", 4,
                   "channel \"foo\" must be a mapping, not a list");
    check_bad_file("store_limits:\n  channels:\n    ? [a]\n    : {}\n", 3,
                   "channel names must be plain strings, not a list");
    /* Patterns must be subjects: no empty tokens, no spaces, '>' only last. */
    const char *bad[] = {"foo..bar", ".foo", "foo.", "'>.foo'", "a.>.b", "a b", "''", "\"\\t\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "store_limits:\n  channels:\n    ok: {}\n    %s: {}\n",
                 bad[i]);
        check_bad_file(text, 4, "invalid channel name or pattern");
    }
    check_bad_file("store_limits:\n  channels:\n    \"a\\0b\": {}\n", 3,
                   "invalid channel name or pattern");
    check_bad_file("store_limits:\n  channels:\n    \"orders.*\": {}\n    x: {}\n"
                   "    'orders.*': {max_msgs: 1}\n",
                   5, "duplicate channel \"orders.*\" (first at line 3)");
    check_bad_file("store_limits:\n  channels: {a: {}}\n  channels: {b: {}, a: {}}\n", 3,
                   "duplicate channel \"a\" (first at line 2)");
    /* Entries' keys and values. */
    check_bad_file(
        "store_limits:\n  channels:\n    foo:\n      max_msgs: 1\n      max_channels: 5\n", 5,
        "unknown limit \"max_channels\" for channel \"foo\"");
    check_bad_file("store_limits:\n  channels:\n    foo: {port: 1}\n", 3,
                   "unknown limit \"port\" for channel \"foo\"");
    check_bad_file("store_limits:\n  channels:\n    foo: {[a]: 1}\n", 3,
                   "limit names must be plain words, not a list");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_msgs: x\n", 4,
                   "invalid value \"x\" for \"max_msgs\" of channel \"foo\": not an integer");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_msgs: --1\n", 4,
                   "invalid value \"--1\" for \"max_msgs\" of channel \"foo\": not an integer");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_bytes: -+1\n", 4,
                   "for \"max_bytes\" of channel \"foo\": not a size");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_age: '-'\n", 4,
                   "for \"max_age\" of channel \"foo\": not a duration");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_age: 1d\n", 4,
                   "not a duration");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_subs:\n", 4,
                   "\"max_subs\" needs a value");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_subs: {a: 1}\n", 4,
                   "\"max_subs\" takes a single value, not a mapping");
    check_bad_file(
        "store_limits:\n  channels:\n    foo: {max_msgs: &x 1}\n    bar: {max_msgs: *x}\n", 4,
        "alias");
    /* Syntax errors inside the section still name their line. */
    check_bad_file("store_limits:\n  channels:\n    foo: {max_msgs: 1\n\n", 5, "YAML syntax error");
}

static void test_bad_files(void)
{
    /* The section itself. */
    check_bad_file("port: 1\nstore_limits: 5\n", 2,
                   "\"store_limits\" must be a mapping, not a single value");
    check_bad_file("store_limits:\n  - max_msgs: 1\n", 2,
                   "\"store_limits\" must be a mapping, not a list");
    check_bad_file("max_msgs: 5\n", 1,
                   "unknown setting \"max_msgs\" (it belongs under store_limits)");
    check_bad_file("hb_interval: 1s\nmc: 5\n", 2, "unknown setting \"mc\" (it belongs under");
    /* Its keys. */
    check_bad_file("store_limits:\n  max_msgs: 1\n\n  max_msg: 5\n", 4,
                   "unknown setting \"max_msg\" in store_limits");
    check_bad_file("store_limits:\n  port: 5\n", 2, "unknown setting \"port\" in store_limits");
    check_bad_file("store_limits:\n  [a]: 5\n", 2, "setting names must be plain words, not a list");
    check_bad_file("store_limits:\n  max_msgs: [1]\n", 2,
                   "\"max_msgs\" takes a single value, not a list");
    check_bad_file("store_limits:\n  max_subs:\n", 2, "\"max_subs\" needs a value");
    check_bad_file("store_limits:\n  max_msgs: -1\n", 2,
                   "invalid value \"-1\" for \"max_msgs\": must not be negative (0 means "
                   "unlimited)");
    check_bad_file("store_limits:\n  max_age: -1h\n", 2,
                   "\"max_age\": must not be negative (0 means unlimited)");
    check_bad_file("store_limits:\n  max_bytes: 1XB\n", 2,
                   "invalid value \"1XB\" for \"max_bytes\": not a size");
    check_bad_file("store_limits:\n  max_channels: 1.5\n", 2,
                   "invalid value \"1.5\" for \"max_channels\": not an integer");
    check_bad_file("store_limits:\n  max_inactivity: soon\n", 2,
                   "\"max_inactivity\": not a duration");
    check_bad_channels();
}

static void test_inheritance(void)
{
    config_t cfg;
    load_ok(&cfg, "store_limits:\n"
                  "  max_msgs: 1000\n"
                  "  max_bytes: 1MB\n"
                  "  max_age: 0\n"
                  "  max_subs: 10\n"
                  "  max_inactivity: 1h\n"
                  "  channels:\n"
                  /* listed narrowest first: file order must not matter */
                  "    orders.eu: {max_age: 1m}\n"
                  "    'orders.*': {max_msgs: 50, max_bytes: 2KB}\n"
                  "    'orders.>': {max_msgs: 500, max_subs: 3, max_age: 1h}\n"
                  "    logs: {max_msgs: -1, max_bytes: -1, max_inactivity: -1}\n"
                  "    'logs.*': {max_msgs: 7}\n"
                  "    '*.audit': {max_subs: 1}\n"
                  "    '*.*': {max_inactivity: 2m}\n"
                  "    'a*': {max_msgs: 9}\n");
    const int64_t H = 3600000, M = 60000;
    /* Nothing matches: the global limits. */
    check_channel(&cfg, "other", 1000, MB, 0, 10, H);
    check_channel(&cfg, "orders", 1000, MB, 0, 10, H); /* '>' needs at least one more token */
    check_channel(&cfg, "ab", 1000, MB, 0, 10, H);     /* "a*" is a literal token */
    check_channel(&cfg, "a*", 9, MB, 0, 10, H);
    /* global -> orders.> -> *.* -> orders.* (fewer wildcards than *.*) */
    check_channel(&cfg, "orders.us", 50, 2 * KB, H, 3, 2 * M);
    /* ... -> orders.eu last */
    check_channel(&cfg, "orders.eu", 50, 2 * KB, M, 3, 2 * M);
    /* Deeper than orders.*: only orders.> applies. */
    check_channel(&cfg, "orders.eu.west", 500, MB, H, 3, H);
    /* Negative is unlimited. */
    check_channel(&cfg, "logs", 0, 0, 0, 10, 0);
    check_channel(&cfg, "logs.x", 7, MB, 0, 10, 2 * M);
    /* orders.audit: orders.>, *.*, then orders.* and *.audit (one wildcard each: file order). */
    check_channel(&cfg, "orders.audit", 50, 2 * KB, H, 1, 2 * M);
    check_channel(&cfg, "x.audit", 1000, MB, 0, 1, 2 * M);
    config_free(&cfg);

    /* '>' is wider than any pattern without it, and among '>' patterns the shorter is wider. */
    load_ok(&cfg, "store_limits:\n"
                  "  channels:\n"
                  "    'a.b.c': {max_msgs: 1}\n"
                  "    '*.*.*': {max_msgs: 2, max_subs: 2}\n"
                  "    'a.>': {max_msgs: 3, max_subs: 3, max_bytes: 3}\n"
                  "    '>': {max_msgs: 4, max_subs: 4, max_bytes: 4, max_age: 4}\n"
                  "    '*.>': {max_msgs: 5, max_subs: 5, max_bytes: 5, max_age: 5, "
                  "max_inactivity: 5}\n");
    /* Order: > (4), *.> (5), a.> (3), *.*.* (2), a.b.c (1). */
    check_channel(&cfg, "a.b.c", 1, 3, 5000, 2, 5000);
    check_channel(&cfg, "a.b.d", 2, 3, 5000, 2, 5000);
    check_channel(&cfg, "z", 4, 4, 4000, 4, 0);
    check_channel(&cfg, "z.y", 5, 5, 5000, 5, 5000);
    config_free(&cfg);

    /* Built in code, not from a file: the same rules. */
    config_t c2;
    config_init(&c2);
    config_channel_limits_t entries[] = {
        {"x.>", {.max_msgs = 10}, 0},
        {"x.y", {.max_msgs = -1}, 0},
    };
    c2.channel_limits = entries;
    c2.nchannel_limits = 2;
    check_channel(&c2, "x.y", 0, c2.limits.max_bytes, 0, 1000, 0);
    check_channel(&c2, "x.z", 10, c2.limits.max_bytes, 0, 1000, 0);
    check_channel(&c2, "", 1000000, c2.limits.max_bytes, 0, 1000, 0);
    c2.channel_limits = NULL;
    c2.nchannel_limits = 0;
    config_free(&c2);
}

static int discard_of(const config_t *cfg, const char *channel)
{
    config_limits_t l;
    config_channel_limits(cfg, channel, &l);
    return l.discard;
}

/* discard: old (the default) or new, global and per channel, with the other limits' rules. */
static void test_discard(void)
{
    config_t cfg;
    char err[256];
    config_init(&cfg);
    CHECK_EQ_INT(cfg.limits.discard, CONFIG_DISCARD_OLD);
    CHECK_EQ_INT(discard_of(&cfg, "foo"), CONFIG_DISCARD_OLD);
    CHECK_EQ_INT(config_set(&cfg, "discard", "New", err, sizeof(err)), 0);
    CHECK_EQ_INT(cfg.limits.discard, CONFIG_DISCARD_NEW);
    CHECK_EQ_INT(config_set(&cfg, "discard", "oldest", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_STR(err, "must be old or new");
    cfg.limits.discard = CONFIG_DISCARD_INHERIT; /* only an entry may inherit */
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), STZ_ECONFIG);
    CHECK_EQ_STR(err, "discard: must be old or new");
    config_free(&cfg);

    load_ok(&cfg, "store_limits:\n"
                  "  discard: new\n"
                  "  channels:\n"
                  "    orders.eu: {discard: NEW}\n"
                  "    'orders.>': {discard: old}\n"
                  "    'logs.*': {max_msgs: 5}\n");
    CHECK_EQ_INT(discard_of(&cfg, "other"), CONFIG_DISCARD_NEW);
    CHECK_EQ_INT(discard_of(&cfg, "orders.us"), CONFIG_DISCARD_OLD);
    CHECK_EQ_INT(discard_of(&cfg, "orders.eu"), CONFIG_DISCARD_NEW); /* the literal last */
    CHECK_EQ_INT(discard_of(&cfg, "logs.x"), CONFIG_DISCARD_NEW);    /* inherited */
    config_free(&cfg);
    load_ok(&cfg, "store_limits:\n  channels:\n    'q.*': {discard: new}\n");
    CHECK_EQ_INT(discard_of(&cfg, "q.a"), CONFIG_DISCARD_NEW);
    CHECK_EQ_INT(discard_of(&cfg, "q"), CONFIG_DISCARD_OLD);
    config_free(&cfg);

    check_bad_file("store_limits:\n  max_msgs: 1\n  discard: oldest\n", 3,
                   "invalid value \"oldest\" for \"discard\": must be old or new");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      discard: -1\n", 4,
                   "invalid value \"-1\" for \"discard\" of channel \"foo\": must be old or new");
    check_bad_file("store_limits:\n  channels:\n    foo: {discard: }\n", 3,
                   "\"discard\" needs a value");
    check_bad_file("port: 1\ndiscard: new\n", 2,
                   "unknown setting \"discard\" (it belongs under store_limits)");
}

/* The backoff a channel resolves to, as "1000,10000" ("" for none). */
static const char *backoff_of(const config_t *cfg, const char *channel)
{
    static char out[256];
    config_limits_t l;
    config_channel_limits(cfg, channel, &l);
    out[0] = '\0';
    for (int i = 0; i < l.nbackoff; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%lld", i ? "," : "",
                 (long long)l.backoff_ms[i]);
    return out;
}

/* redelivery_backoff: a list of durations, global and per channel, with the other limits'
 * patterns and inheritance; an empty list overrides a wider one. */
static void test_backoff(void)
{
    config_t cfg;
    config_init(&cfg);
    CHECK_EQ_STR(backoff_of(&cfg, "foo"), "");
    config_free(&cfg);

    load_ok(&cfg, "store_limits:\n"
                  "  redelivery_backoff: [1s, 10s, 1m, 5m]\n"
                  "  channels:\n"
                  "    'jobs.>': {redelivery_backoff: [500ms, 2]}\n"
                  "    jobs.fast:\n"
                  "      redelivery_backoff: []\n"
                  "    'jobs.*': {max_msgs: 5}\n"
                  "    plain: {redelivery_backoff: }\n");
    CHECK_EQ_STR(backoff_of(&cfg, "other"), "1000,10000,60000,300000");
    CHECK_EQ_STR(backoff_of(&cfg, "jobs.slow"), "500,2000"); /* jobs.* inherits jobs.> */
    CHECK_EQ_STR(backoff_of(&cfg, "jobs.fast"), "");         /* overridden by an empty list */
    CHECK_EQ_STR(backoff_of(&cfg, "plain"), "");             /* null: none */
    config_free(&cfg);
    load_ok(&cfg, "store_limits:\n  channels:\n    'q.*':\n      redelivery_backoff:\n"
                  "        - 3s\n        - 1.5s\n");
    CHECK_EQ_STR(backoff_of(&cfg, "q.a"), "3000,1500");
    CHECK_EQ_STR(backoff_of(&cfg, "q"), "");
    config_free(&cfg);
    char many[512] = "store_limits:\n  redelivery_backoff: [";
    for (int i = 1; i <= CONFIG_BACKOFF_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%ds, ", i);
    strcat(many, "99s]\n");
    check_bad_file(many, 2, "redelivery_backoff: more than 16 entries");
    many[strlen(many) - 8] = ']'; /* the 16 alone are fine */
    many[strlen(many) - 7] = '\0';
    load_ok(&cfg, many);
    CHECK_EQ_INT(cfg.limits.nbackoff, CONFIG_BACKOFF_MAX);
    CHECK_EQ_INT(cfg.limits.backoff_ms[15], 16000);
    config_free(&cfg);

    check_bad_file("store_limits:\n  redelivery_backoff: 10s\n", 2,
                   "redelivery_backoff must be a list of durations, not a single value");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      redelivery_backoff: {a: 1}\n", 4,
                   "redelivery_backoff of channel \"foo\" must be a list of durations, not a "
                   "mapping");
    check_bad_file("store_limits:\n  redelivery_backoff:\n    - 1s\n    - 10 parsecs\n", 4,
                   "invalid value \"10 parsecs\" in redelivery_backoff: must be a duration "
                   "greater than 0 (e.g. 500ms, 10s, 1m)");
    check_bad_file("store_limits:\n  channels:\n    foo: {redelivery_backoff: [1s, 0s]}\n", 3,
                   "invalid value \"0s\" in redelivery_backoff of channel \"foo\": must be a "
                   "duration greater than 0 (e.g. 500ms, 10s, 1m)");
    check_bad_file("store_limits:\n  redelivery_backoff: [-1s]\n", 2,
                   "invalid value \"-1s\" in redelivery_backoff: must be a duration greater "
                   "than 0 (e.g. 500ms, 10s, 1m)");
    check_bad_file("store_limits:\n  redelivery_backoff: [[1s]]\n", 2,
                   "redelivery_backoff: entries must be durations, not a list");
}

/* max_deliveries and dead_letter: global and per channel, with the other limits' patterns and
 * inheritance (max_deliveries -1 in an entry: no limit); the dead-letter name must be a channel
 * name with {channel} standing for the origin's. */
static void test_dead_letter(void)
{
    config_t cfg;
    char err[256];
    config_limits_t l;
    config_init(&cfg);
    config_channel_limits(&cfg, "foo", &l);
    CHECK_EQ_INT(l.max_deliveries, 0);
    CHECK(l.dead_letter == NULL); /* CONFIG_DEAD_LETTER_DEFAULT */
    CHECK_EQ_INT(config_set(&cfg, "dead_letter", "dlq.{channel}", err, sizeof(err)), 0);
    CHECK_EQ_INT(config_set(&cfg, "dead_letter", "all.dead", err, sizeof(err)), 0); /* replaced */
    CHECK_EQ_STR(cfg.limits.dead_letter, "all.dead");
    CHECK_EQ_INT(config_set(&cfg, "dead_letter", "a.*", err, sizeof(err)), STZ_EINVAL);
    CHECK(strstr(err, "must be a channel name") != NULL);
    CHECK_EQ_INT(config_set(&cfg, "max_deliveries", "-3", err, sizeof(err)), STZ_EINVAL);
    config_free(&cfg); /* frees the string: ASan checks */

    load_ok(&cfg, "store_limits:\n"
                  "  max_deliveries: 5\n"
                  "  channels:\n"
                  "    'jobs.>': {max_deliveries: 3, dead_letter: 'dead.{channel}.x'}\n"
                  "    jobs.free: {max_deliveries: -1}\n"
                  "    'jobs.*': {max_msgs: 7}\n"
                  "    logs: {dead_letter: logs-dlq}\n");
    config_channel_limits(&cfg, "other", &l);
    CHECK_EQ_INT(l.max_deliveries, 5);
    CHECK(l.dead_letter == NULL);
    config_channel_limits(&cfg, "jobs.a", &l); /* jobs.* inherits jobs.> */
    CHECK_EQ_INT(l.max_deliveries, 3);
    CHECK_EQ_STR(l.dead_letter, "dead.{channel}.x");
    config_channel_limits(&cfg, "jobs.free", &l);
    CHECK_EQ_INT(l.max_deliveries, 0);
    CHECK_EQ_STR(l.dead_letter, "dead.{channel}.x");
    config_channel_limits(&cfg, "logs", &l);
    CHECK_EQ_INT(l.max_deliveries, 5);
    CHECK_EQ_STR(l.dead_letter, "logs-dlq");
    config_free(&cfg);

    check_bad_file("store_limits:\n  max_deliveries: many\n", 2,
                   "\"max_deliveries\": not an integer");
    check_bad_file("store_limits:\n  max_deliveries: -1\n", 2,
                   "\"max_deliveries\": must not be negative (0 means unlimited)");
    check_bad_file("store_limits:\n  channels:\n    foo:\n      max_deliveries: 1s\n", 4,
                   "invalid value \"1s\" for \"max_deliveries\" of channel \"foo\"");
    check_bad_file("store_limits:\n  dead_letter: 'a..b'\n", 2, "must be a channel name");
    check_bad_file("store_limits:\n  channels:\n    foo: {dead_letter: '>'}\n", 3,
                   "invalid value \">\" for \"dead_letter\" of channel \"foo\": must be a channel");
    check_bad_file("store_limits:\n  channels:\n    foo: {dead_letter: }\n", 3,
                   "\"dead_letter\" needs a value");
    check_bad_file("dead_letter: x\n", 1,
                   "unknown setting \"dead_letter\" (it belongs under store_limits)");
}

static void test_shipped_config(void)
{
    char path[1024], err[512];
    const char *src = getenv("STANZA_SRC_DIR");
    snprintf(path, sizeof(path), "%s/config/stanza.yaml", src ? src : ".");
    if (access(path, R_OK) != 0) snprintf(path, sizeof(path), "../config/stanza.yaml");
    config_t cfg, d;
    config_init(&cfg);
    config_init(&d);
    int rc = config_load_file(&cfg, path, err, sizeof(err));
    if (rc != 0) fprintf(stderr, "%s\n", err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
    /* It spells out the defaults. */
    CHECK_EQ_STR(cfg.discover_prefix, d.discover_prefix);
    CHECK_EQ_INT(cfg.hb_interval_ms, d.hb_interval_ms);
    CHECK_EQ_INT(cfg.hb_timeout_ms, d.hb_timeout_ms);
    CHECK_EQ_INT(cfg.hb_fail_count, d.hb_fail_count);
    CHECK_EQ_INT(cfg.file_sync, d.file_sync);
    CHECK_EQ_INT(cfg.replace_durable, d.replace_durable);
    CHECK_EQ_INT(cfg.max_channels, d.max_channels);
    check_limits(&cfg.limits, d.limits.max_msgs, d.limits.max_bytes, d.limits.max_age_ms,
                 d.limits.max_subs, d.limits.max_inactivity_ms);
    CHECK_EQ_INT(cfg.limits.discard, d.limits.discard); /* field by field: the struct has padding */
    config_free(&cfg);
    config_free(&d);
}

static void test_usage(void)
{
    const char *want[] = {"Streaming Options",
                          "Streaming Limits",
                          "-hbi, --hb_interval <duration>",
                          "-hbt, --hb_timeout <duration>",
                          "-hbf, --hb_fail_count <n>",
                          "--file_sync[=<bool>]",
                          "--replace_durable[=<bool>]",
                          "-mc, --max_channels <n>",
                          "-msu, --max_subs <n>",
                          "-mm, --max_msgs <n>",
                          "-mb, --max_bytes <size>",
                          "-ma, --max_age <duration>",
                          "-mi, --max_inactivity <duration>",
                          "(default: 30s)",
                          "(default: 10s)",
                          "(default: 10)",
                          "(default: 100)",
                          "(default: 1000)",
                          "(default: 1000000)",
                          "(default: 1000000KB)",
                          "(default: 0s)",
                          "(default: true)",
                          "(default: false)"};
    check_usage_lists(want, sizeof(want) / sizeof(want[0]));
}

int main(void)
{
    config_test_mkdtemp("/tmp/stanza_test_limits.XXXXXX");

    TEST_RUN(test_defaults);
    TEST_RUN(test_flags);
    TEST_RUN(test_config_set);
    TEST_RUN(test_file_keys);
    TEST_RUN(test_channel_count);
    TEST_RUN(test_bad_files);
    TEST_RUN(test_inheritance);
    TEST_RUN(test_discard);
    TEST_RUN(test_backoff);
    TEST_RUN(test_dead_letter);
    TEST_RUN(test_shipped_config);
    TEST_RUN(test_usage);

    const char *names[] = {"t.yaml", "c.yaml"};
    config_test_rmdir(names, sizeof(names) / sizeof(names[0]));
    return test_summary();
}
