/* Unit tests for config: defaults, parsers, the YAML file (good and bad) and the flags. */
#include "config_test_util.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

/* --dir alone means a persistent store there; an explicit --store wins either way. */
static void test_store_default_follows_dir(void)
{
    const char *cases[][4] = {{"stanzad", NULL},
                              {"stanzad", "--dir", "/tmp/x", NULL},
                              {"stanzad", "--dir=/tmp/x", "-st", "MEMORY"},
                              {"stanzad", "-st", "FILE", NULL}};
    int argcs[] = {1, 3, 4, 3};
    config_store_t want[] = {CONFIG_STORE_MEMORY, CONFIG_STORE_LMDB, CONFIG_STORE_MEMORY,
                             CONFIG_STORE_LMDB};
    for (int i = 0; i < 4; i++) {
        config_t cfg;
        char err[256];
        config_init(&cfg);
        CHECK_EQ_INT(config_from_args(&cfg, argcs[i], (char **)cases[i], err, sizeof(err)),
                     CONFIG_OK);
        CHECK_EQ_INT(cfg.store, want[i]);
        config_free(&cfg);
    }
}

static void test_defaults(void)
{
    config_t cfg;
    config_init(&cfg);
    CHECK(cfg.config_file == NULL);
    CHECK_EQ_STR(cfg.host, "0.0.0.0");
    CHECK_EQ_INT(cfg.port, 4222);
    CHECK(cfg.http_host == NULL);
    CHECK_EQ_INT(cfg.http_port, 0);
    CHECK_EQ_STR(cfg.cluster_id, "test-cluster");
    /* As NSS: no store and no directory given means MEMORY. */
    CHECK_EQ_INT(cfg.store, CONFIG_STORE_MEMORY);
    CHECK(!cfg.store_set && !cfg.dir_set);
    CHECK_EQ_STR(cfg.dir, "./data");
    CHECK_EQ_INT(cfg.max_payload, 1024 * 1024);
    CHECK_EQ_INT(cfg.max_pending, 64 * 1024 * 1024);
    CHECK_EQ_INT(cfg.max_control_line, 4096);
    CHECK_EQ_INT(cfg.max_connections, 65536);
    CHECK_EQ_INT(cfg.ping_interval_ms, 120000);
    CHECK_EQ_INT(cfg.max_pings_out, 2);
    CHECK_EQ_INT(cfg.write_deadline_ms, 10000);
    CHECK(!cfg.user && !cfg.pass && !cfg.token && !cfg.log_file && !cfg.pid_file);
    CHECK(!cfg.debug && !cfg.trace && !cfg.stan_debug && !cfg.stan_trace);
    CHECK(cfg.logtime);
    char err[256];
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
    config_free(&cfg);
    config_free(&cfg); /* harmless twice */

    /* No arguments at all: the defaults, valid. */
    char *argv[] = {"stanzad", NULL};
    config_init(&cfg);
    CHECK_EQ_INT(config_from_args(&cfg, 1, argv, err, sizeof(err)), CONFIG_OK);
    CHECK_EQ_INT(cfg.port, 4222);
    config_free(&cfg);
}

static void test_parse_size(void)
{
    int64_t v;
    CHECK(config_parse_size("0", &v) == 0 && v == 0);
    CHECK(config_parse_size("4096", &v) == 0 && v == 4096);
    CHECK(config_parse_size("100b", &v) == 0 && v == 100);
    CHECK(config_parse_size("1K", &v) == 0 && v == 1024);
    CHECK(config_parse_size("2kb", &v) == 0 && v == 2048);
    CHECK(config_parse_size("1M", &v) == 0 && v == 1048576);
    CHECK(config_parse_size("64MB", &v) == 0 && v == 64 * 1048576LL);
    CHECK(config_parse_size("3mb", &v) == 0 && v == 3 * 1048576LL);
    CHECK(config_parse_size("1 MB", &v) == 0 && v == 1048576);
    CHECK(config_parse_size("2MiB", &v) == 0 && v == 2 * 1048576LL);
    CHECK(config_parse_size("1G", &v) == 0 && v == 1073741824LL);
    CHECK(config_parse_size("5gB", &v) == 0 && v == 5 * 1073741824LL);
    CHECK(config_parse_size("9223372036854775807", &v) == 0 && v == INT64_MAX);
    /* clang-format off */
    const char *bad[] = {"", "MB", "-1", "-1MB", "1.5MB", "1TB", "1 ", " 1", "1MBB", "abc", "0x10",
        "1e3", "+1", "1 M B", "1Q", "9223372036854775808", "8589934592G",
        "99999999999999999999999"};
    /* clang-format on */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (config_parse_size(bad[i], &v) == 0) {
            fprintf(stderr, "size \"%s\" accepted\n", bad[i]);
            CHECK(0);
        }
    }
    CHECK(config_parse_size(NULL, &v) == STZ_EINVAL);
}

static void test_parse_duration(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"0", 0},           {"30", 30000},     {"+5", 5000},        {"10s", 10000},
                {"2m", 120000},     {"1h", 3600000},   {"1h2m3s", 3723000}, {"500ms", 500},
                {"1.5s", 1500},     {".5s", 500},      {"1.s", 1000},       {"1.5h", 5400000},
                {"0s", 0},          {"10us", 1},       {"10\xc2\xb5s", 1},  {"1500us", 2},
                {"1499us", 1},      {"3000000ns", 3},  {"1m30s", 90000},    {"2h45m", 9900000},
                {"100ms50ms", 150}, {"1.0001s", 1000}, {"0.0000001s", 1}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = -42;
        if (config_parse_duration_ms(good[i].s, &v) != 0 || v != good[i].ms) {
            fprintf(stderr, "duration \"%s\" -> %lld, want %lld\n", good[i].s, (long long)v,
                    (long long)good[i].ms);
            CHECK(0);
        }
    }
    /* clang-format off */
    const char *bad[] = {"", "s", "-1s", "-5", "1x", "1.5", "1 s", " 1s", "1s ", "1S", "1sec", "+",
        "+s", ".s", "1..5s", "abc", "1h-2m", "10 ", "9223372036854775807s",
        "99999999999999999999s", "9999999999999999"};
    /* clang-format on */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v;
        if (config_parse_duration_ms(bad[i], &v) == 0) {
            fprintf(stderr, "duration \"%s\" accepted (%lld)\n", bad[i], (long long)v);
            CHECK(0);
        }
    }
    int64_t v;
    CHECK(config_parse_duration_ms(NULL, &v) == STZ_EINVAL);
}

static void test_parse_bool(void)
{
    const char *yes[] = {"true", "TRUE", "True", "yes", "Yes", "on", "ON", "1", "t", "T", "y"};
    const char *no[] = {"false", "FALSE", "no", "NO", "off", "Off", "0", "f", "F", "n"};
    bool b;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        CHECK(config_parse_bool(yes[i], &b) == 0 && b);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        CHECK(config_parse_bool(no[i], &b) == 0 && !b);
    const char *bad[] = {"", "2", "truee", "yess", "nope", " true", "-1", "enabled"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(config_parse_bool(bad[i], &b) == STZ_EINVAL);
    CHECK(config_parse_bool(NULL, &b) == STZ_EINVAL);
}

static void test_config_set(void)
{
    config_t cfg;
    char err[256];
    config_init(&cfg);
    CHECK_EQ_INT(config_set(&cfg, "nope", "1", err, sizeof(err)), STZ_ENOENT);
    CHECK_EQ_INT(config_set(&cfg, "port", "x", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_STR(err, "not an integer");
    CHECK_EQ_INT(config_set(&cfg, "port", "65536", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_STR(err, "must be between 0 and 65535");
    CHECK_EQ_INT(config_set(&cfg, "port", NULL, err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "max_payload", "65MB", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_STR(err, "must be between 1 and 64MB");
    CHECK_EQ_INT(config_set(&cfg, "max_pending", "1000", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_STR(err, "must be at least 64KB");
    CHECK_EQ_INT(config_set(&cfg, "max_payload", "-3", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "max_payload", "0", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "max_payload", "64MB", err, sizeof(err)), 0);
    CHECK_EQ_INT(cfg.max_payload, 64 << 20);
    CHECK_EQ_INT(config_set(&cfg, "ping_interval", "0s", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "ping_max", "0", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "max_connections", "0", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "host", "", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "cluster_id", "a.*", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "cluster_id", "a..b", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "cluster_id", "a b", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "cluster_id", "a.", err, sizeof(err)), STZ_EINVAL);
    CHECK_EQ_INT(config_set(&cfg, "cluster_id", "my-cluster.east_1", err, sizeof(err)), 0);
    CHECK_EQ_STR(cfg.cluster_id, "my-cluster.east_1");
    /* Optional strings: "" and NULL unset. */
    CHECK_EQ_INT(config_set(&cfg, "log_file", "x.log", err, sizeof(err)), 0);
    CHECK_EQ_STR(cfg.log_file, "x.log");
    CHECK_EQ_INT(config_set(&cfg, "log_file", "", err, sizeof(err)), 0);
    CHECK(cfg.log_file == NULL);
    CHECK_EQ_INT(config_set(&cfg, "user", "u", err, sizeof(err)), 0);
    CHECK_EQ_INT(config_set(&cfg, "user", NULL, err, sizeof(err)), 0);
    CHECK(cfg.user == NULL);
    /* Keys are case-insensitive; aliases work. */
    CHECK_EQ_INT(config_set(&cfg, "PORT", "1", err, sizeof(err)), 0);
    CHECK_EQ_INT(cfg.port, 1);
    CHECK_EQ_INT(config_set(&cfg, "Listen", "::1", err, sizeof(err)), 0);
    CHECK_EQ_STR(cfg.host, "::1");
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
    cfg.port = 70000;
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), STZ_ECONFIG);
    CHECK_EQ_STR(err, "port: must be between 0 and 65535");
    config_free(&cfg);
}

static void test_shipped_config(void)
{
    char path[1024], err[512];
    const char *src = getenv("STANZA_SRC_DIR");
    snprintf(path, sizeof(path), "%s/config/stanza.yaml", src ? src : ".");
    if (access(path, R_OK) != 0) snprintf(path, sizeof(path), "../config/stanza.yaml");
    config_t cfg;
    config_init(&cfg);
    int rc = config_load_file(&cfg, path, err, sizeof(err));
    if (rc != 0) fprintf(stderr, "%s\n", err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(cfg.host, "127.0.0.1");
    CHECK_EQ_INT(cfg.port, 4222);
    CHECK_EQ_INT(cfg.http_port, 8222);
    CHECK_EQ_STR(cfg.cluster_id, "test-cluster");
    CHECK_EQ_INT(cfg.store, CONFIG_STORE_LMDB);
    CHECK_EQ_STR(cfg.dir, "./data");
    CHECK_EQ_INT(cfg.max_payload, 1 << 20);
    CHECK_EQ_INT(cfg.max_pending, 64 << 20);
    CHECK_EQ_INT(cfg.max_control_line, 4096);
    CHECK_EQ_INT(cfg.ping_interval_ms, 120000);
    CHECK_EQ_INT(cfg.write_deadline_ms, 10000);
    CHECK(!cfg.user && !cfg.pass && !cfg.token && !cfg.log_file);
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
    config_free(&cfg);

    /* And through -c. */
    config_init(&cfg);
    char *argv[] = {"stanzad", "-c", path, NULL};
    CHECK_EQ_INT(config_from_args(&cfg, 3, argv, err, sizeof(err)), CONFIG_OK);
    CHECK_EQ_STR(cfg.config_file, path);
    CHECK_EQ_INT(cfg.http_port, 8222);
    config_free(&cfg);
}

/* Loads text that must load, printing the error if it does not. */
static void load_good(config_t *cfg, const char *text)
{
    char err[512];
    int rc = load_text(cfg, text, err, sizeof(err));
    if (rc) fprintf(stderr, "%s\n", err);
    CHECK_EQ_INT(rc, 0);
}

static void test_every_key(void)
{
    config_t cfg;
    load_good(&cfg, "# all keys\n"
                    "host: 10.0.0.1\n"
                    "port: 4333\n"
                    "http_host: 127.0.0.2\n"
                    "http_port: \"8333\"\n"
                    "cluster_id: prod\n"
                    "store: memory\n"
                    "dir: /var/lib/stanza\n"
                    "max_payload: 2MB\n"
                    "max_pending: 100000\n"
                    "max_control_line: 8k\n"
                    "max_connections: 100\n"
                    "ping_interval: 30\n"
                    "ping_max: 5\n"
                    "write_deadline: 2.5s\n"
                    "user: alice\n"
                    "password: 's3cret: yes'\n"
                    "token: tok\n"
                    "log_file: /tmp/stanza.log\n"
                    "pid_file: /tmp/stanza.pid\n"
                    "debug: yes\n"
                    "trace: On\n"
                    "stan_debug: TRUE\n"
                    "stan_trace: 1\n"
                    "logtime: false\n");
    CHECK_EQ_STR(cfg.host, "10.0.0.1");
    CHECK_EQ_INT(cfg.port, 4333);
    CHECK_EQ_STR(cfg.http_host, "127.0.0.2");
    CHECK_EQ_INT(cfg.http_port, 8333);
    CHECK_EQ_STR(cfg.cluster_id, "prod");
    CHECK_EQ_INT(cfg.store, CONFIG_STORE_MEMORY);
    CHECK_EQ_STR(cfg.dir, "/var/lib/stanza");
    CHECK_EQ_INT(cfg.max_payload, 2 << 20);
    CHECK_EQ_INT(cfg.max_pending, 100000);
    CHECK_EQ_INT(cfg.max_control_line, 8192);
    CHECK_EQ_INT(cfg.max_connections, 100);
    CHECK_EQ_INT(cfg.ping_interval_ms, 30000);
    CHECK_EQ_INT(cfg.max_pings_out, 5);
    CHECK_EQ_INT(cfg.write_deadline_ms, 2500);
    CHECK_EQ_STR(cfg.user, "alice");
    CHECK_EQ_STR(cfg.pass, "s3cret: yes");
    CHECK_EQ_STR(cfg.token, "tok");
    CHECK_EQ_STR(cfg.log_file, "/tmp/stanza.log");
    CHECK_EQ_STR(cfg.pid_file, "/tmp/stanza.pid");
    CHECK(cfg.debug && cfg.trace && cfg.stan_debug && cfg.stan_trace && !cfg.logtime);
    config_free(&cfg);
}

/* Aliases, case-insensitive keys, a flow mapping, nulls unsetting optional strings; anchors,
 * duplicate keys and document markers. */
static void test_key_aliases_and_documents(void)
{
    config_t cfg;
    load_good(&cfg, "{ADDR: h1, cid: c1, Pass: p, auth_token: t, logfile: l, max_pings_out: 7,\n"
                    " store: FILE, log_file: ~, http_host: }\n");
    CHECK_EQ_STR(cfg.host, "h1");
    CHECK_EQ_STR(cfg.cluster_id, "c1");
    CHECK_EQ_STR(cfg.pass, "p");
    CHECK_EQ_STR(cfg.token, "t");
    CHECK(cfg.log_file == NULL);
    CHECK(cfg.http_host == NULL);
    CHECK_EQ_INT(cfg.max_pings_out, 7);
    CHECK_EQ_INT(cfg.store, CONFIG_STORE_LMDB);
    config_free(&cfg);

    load_good(&cfg, "listen: h2\nid: c2\nlog: l2\nstore: Lmdb\n");
    CHECK_EQ_STR(cfg.host, "h2");
    CHECK_EQ_STR(cfg.cluster_id, "c2");
    CHECK_EQ_STR(cfg.log_file, "l2");
    config_free(&cfg);

    /* Anchors are harmless; the last of duplicate keys wins; explicit document markers. */
    load_good(&cfg, "%YAML 1.1\n---\nport: &p 1000\nport: 1001\n...\n");
    CHECK_EQ_INT(cfg.port, 1001);
    config_free(&cfg);
}

static void test_empty_files(void)
{
    const char *ok[] = {"",           "# only a comment\n", "\n\n\n", "---\n", "--- ~\n", "null\n",
                        "---\n...\n", "\xef\xbb\xbf# BOM\n"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        config_t cfg;
        char err[512];
        int rc = load_text(&cfg, ok[i], err, sizeof(err));
        if (rc) fprintf(stderr, "\"%s\": %s\n", ok[i], err);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(cfg.port, 4222); /* nothing changed */
        config_free(&cfg);
    }
}

static void test_bad_files(void)
{
    /* unknown key */
    check_bad_file("port: 1\n\nprot: 2\n", 3, "unknown setting \"prot\"");
    /* wrong types */
    check_bad_file("host: a\nport:\n  - 1\n  - 2\n", 3,
                   "\"port\" takes a single value, not a list");
    check_bad_file("port: [1, 2]\n", 1, "\"port\" takes a single value, not a list");
    check_bad_file("debug: true\nhost: {a: 1}\n", 2,
                   "\"host\" takes a single value, not a mapping");
    check_bad_file("x: &a 1\nport: *a\n", 1, "unknown setting \"x\"");
    check_bad_file("port: &a 1\nhttp_port: *a\n", 2, "alias");
    check_bad_file("? [a]\n: 1\n", 1, "setting names must be plain words, not a list");
    check_bad_file("port: abc\n", 1, "invalid value \"abc\" for \"port\": not an integer");
    check_bad_file("port: 4222.5\n", 1, "\"port\"");
    check_bad_file("\n\nport:\n", 3, "\"port\" needs a value");
    /* bad values */
    check_bad_file("# c\nport: 65536\n", 2, "\"port\": must be between 0 and 65535");
    check_bad_file("http_port: -1\n", 1, "\"http_port\": must be between 0 and 65535");
    check_bad_file("a: 1\n", 1, "unknown setting \"a\"");
    check_bad_file("dir: d\nstore: sql\n", 2, "invalid value \"sql\" for \"store\": unknown store");
    check_bad_file("max_payload: -5\n", 1, "\"max_payload\": must be between 1 and 64MB");
    check_bad_file("max_pending: 10XB\n", 1,
                   "invalid value \"10XB\" for \"max_pending\": not a size");
    check_bad_file("max_payload: 128MB\n", 1, "\"max_payload\": must be between 1 and 64MB");
    check_bad_file("\nping_interval: 5 minutes\n", 2,
                   "invalid value \"5 minutes\" for \"ping_interval\": not a duration");
    check_bad_file("write_deadline: -1s\n", 1, "\"write_deadline\": not a duration");
    check_bad_file("write_deadline: 0\n", 1, "\"write_deadline\": must be at least 1ms");
    check_bad_file("debug: maybe\n", 1, "invalid value \"maybe\" for \"debug\": not a boolean");
    check_bad_file("cluster_id: a.>\n", 1, "\"cluster_id\": must be a valid subject");
    check_bad_file("host: \"\"\n", 1, "\"host\": must not be empty");
    check_bad_file("port: \"12\\x0034\"\n", 1, "NUL");
    /* YAML syntax errors */
    check_bad_file("port: 1\nhost: \"a\n\n", 2, "YAML syntax error");
    check_bad_file("port: 1\nhost: a: b\n", 2, "YAML syntax error");
    check_bad_file("port: 1\nhost: 'a\n", 2, "YAML syntax error");
    check_bad_file("port: 1\nhost\ndir: x\n", 2, "YAML syntax error");
    check_bad_file("port: 1\n  bad\n", 1, "invalid value \"1 bad\" for \"port\"");
    check_bad_file("port: 1\ndir: x\n  host: 3\n", 3, "YAML syntax error");
    check_bad_file("port: 1\n- a\n", 2, "YAML syntax error: did not find expected key");
    check_bad_file("port: 1\n\n\n\xff\xfe\n", 4, "YAML syntax error");
    check_bad_file("port: 1\n\tdir: x\n", 2, "YAML syntax error");
    check_bad_file("port: 1\ndir: \x01\n", 2, "YAML syntax error");
    /* non-mapping top level */
    check_bad_file("just a string\n", 1, "the top level must be a mapping");
    check_bad_file("# list\n- port: 1\n", 2,
                   "the top level must be a mapping of settings (key: value), not a list");
    check_bad_file("port: 1\n---\nport: 2\n", 2, "only one YAML document");
}

/* The tls section's errors name the line and the key, as the rest of the file's do. */
static void test_tls_section_errors(void)
{
    check_bad_file("tls:\n  cert_file:\n", 2, "tls \"cert_file\" needs a value");
    check_bad_file(
        "tls:\n  bogus: 1\n", 2,
        "unknown setting \"bogus\" in tls (known: cert_file, key_file, ca_file, verify)");
    check_bad_file("tls:\n  cert_file: /nonexistent/c.pem\n", 2,
                   "tls cert_file: cannot read \"/nonexistent/c.pem\"");
    check_bad_file("tls:\n  cert_file: [a]\n", 2, "\"cert_file\" takes a single value, not a list");
    check_bad_file("tls:\n  verify: maybe\n", 2,
                   "invalid value \"maybe\" for tls \"verify\": not a boolean");
    check_bad_file("tls: maybe\n", 1, "invalid value \"maybe\" for \"tls\": not a boolean");
    check_bad_file("tls: [1]\n", 1, "\"tls\" takes a section or a boolean, not a list");
}

static void test_missing_file(void)
{
    config_t cfg;
    char err[512], want[300];
    config_init(&cfg);
    snprintf(want, sizeof(want), "%s/nope.yaml: cannot open: ", tmpdir);
    snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s", strerror(ENOENT));
    char path[256];
    snprintf(path, sizeof(path), "%s/nope.yaml", tmpdir);
    CHECK_EQ_INT(config_load_file(&cfg, path, err, sizeof(err)), STZ_ENOENT);
    CHECK_EQ_STR(err, want);
    /* A directory is not a file. */
    CHECK_EQ_INT(config_load_file(&cfg, tmpdir, err, sizeof(err)), -EISDIR);
    CHECK(strncmp(err, tmpdir, strlen(tmpdir)) == 0);
    /* And through -c. */
    char *argv[] = {"stanzad", "-p", "1", "--config", path, NULL};
    CHECK_EQ_INT(config_from_args(&cfg, 5, argv, err, sizeof(err)), STZ_ENOENT);
    CHECK_EQ_STR(err, want);
    config_free(&cfg);
}

/* Nothing the file holds may crash the loader. */
static void test_garbage_files(void)
{
    config_t cfg;
    char err[512];
    static const char *const soup[] = {
        "port", "host",   "dir",         "debug", ": ",    "\n",    "  ",  "- ",   "[",
        "]",    "{",      "}",           ",",     "'",     "\"",    "&a ", "*a",   "? ",
        "# c",  "1",      "abc",         "4kb",   "---\n", "...\n", "|\n", ">-\n", "\t",
        "~",    "!!str ", "%YAML 1.1\n", "\\",    "\xc3",  "\xa9",  "\0",  "null"};
    unsigned char bin[2048];
    uint32_t x = 12345;
    for (int round = 0; round < 3000; round++) {
        size_t n = 0;
        while (n < sizeof(bin)) {
            x = x * 1103515245u + 12345u;
            if (round % 3 == 0) { /* raw bytes */
                bin[n++] = (unsigned char)(x >> 16);
                continue;
            }
            const char *tok = soup[(x >> 16) % (sizeof(soup) / sizeof(soup[0]))];
            size_t len = *tok ? strlen(tok) : 1; /* "\0" is one NUL byte */
            if (n + len > sizeof(bin) || (round % 3 == 1 && (x >> 8) % 40 == 0 && n > 0)) break;
            memcpy(bin + n, tok, len);
            n += len;
        }
        config_init(&cfg);
        const char *path = write_file("g.yaml", (const char *)bin, n);
        int rc = config_load_file(&cfg, path, err, sizeof(err));
        CHECK(rc == 0 || rc == STZ_ECONFIG);
        if (rc) CHECK(strncmp(err, path, strlen(path)) == 0);
        if (rc == 0) CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
        config_free(&cfg);
    }

    /* Deep nesting, as a value, as the top level and as a key. */
    size_t depth = 200000;
    char *deep = malloc(2 * depth + 32);
    CHECK(deep);
    const char *prefixes[] = {"port: ", "", "? "};
    for (int k = 0; k < 3; k++) {
        size_t n = (size_t)sprintf(deep, "%s", prefixes[k]);
        memset(deep + n, '[', depth);
        n += depth;
        memset(deep + n, ']', depth);
        n += depth;
        deep[n++] = '\n';
        config_init(&cfg);
        CHECK_EQ_INT(config_load_file(&cfg, write_file("d.yaml", deep, n), err, sizeof(err)),
                     STZ_ECONFIG);
        config_free(&cfg);
    }
    /* Deep block nesting. */
    size_t n = 0;
    for (int i = 0; i < 2000; i++) {
        memset(deep + n, ' ', (size_t)i);
        n += (size_t)i;
        n += (size_t)sprintf(deep + n, "k:\n");
        if (n > 2 * depth - 4096) break;
    }
    config_init(&cfg);
    CHECK_EQ_INT(config_load_file(&cfg, write_file("d.yaml", deep, n), err, sizeof(err)),
                 STZ_ECONFIG);
    config_free(&cfg);
    free(deep);
}

static void test_flag_forms(void)
{
    config_t cfg;
    char err[512];
    const char *forms[][2] = {{"-p", "1"}, {"--p", "1"}, {"-port", "1"}, {"--port", "1"}};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(ARGS(&cfg, err, (char *)forms[i][0], (char *)forms[i][1]), CONFIG_OK);
        CHECK_EQ_INT(cfg.port, 1);
        config_free(&cfg);
    }
    const char *eq[] = {"-p=2", "--p=2", "-port=2", "--port=2"};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(ARGS(&cfg, err, (char *)eq[i]), CONFIG_OK);
        CHECK_EQ_INT(cfg.port, 2);
        config_free(&cfg);
    }

    CHECK_EQ_INT(ARGS(&cfg, err, "-a", "127.0.0.1", "-m", "8222", "-cid", "c1", "-st", "MEMORY",
                      "--dir=D", "-l", "F", "-P", "pidf", "--user", "u", "--pass", "pw", "--auth",
                      "tk", "--max_payload", "2MB", "--max_pending=3M", "--max_connections", "9",
                      "--ping_interval", "5s", "--ping_max", "4", "--max_control_line", "1KB",
                      "--write_deadline", "250ms"),
                 CONFIG_OK);
    CHECK_EQ_STR(cfg.host, "127.0.0.1");
    CHECK_EQ_INT(cfg.http_port, 8222);
    CHECK_EQ_STR(cfg.cluster_id, "c1");
    CHECK_EQ_INT(cfg.store, CONFIG_STORE_MEMORY);
    CHECK_EQ_STR(cfg.dir, "D");
    CHECK_EQ_STR(cfg.log_file, "F");
    CHECK_EQ_STR(cfg.pid_file, "pidf");
    CHECK_EQ_STR(cfg.user, "u");
    CHECK_EQ_STR(cfg.pass, "pw");
    CHECK_EQ_STR(cfg.token, "tk");
    CHECK_EQ_INT(cfg.max_payload, 2 << 20);
    CHECK_EQ_INT(cfg.max_pending, 3 << 20);
    CHECK_EQ_INT(cfg.max_connections, 9);
    CHECK_EQ_INT(cfg.ping_interval_ms, 5000);
    CHECK_EQ_INT(cfg.max_pings_out, 4);
    CHECK_EQ_INT(cfg.max_control_line, 1024);
    CHECK_EQ_INT(cfg.write_deadline_ms, 250);
    config_free(&cfg);

    CHECK_EQ_INT(ARGS(&cfg, err, "--addr=h", "--http_port", "1", "--cluster_id", "c2", "--store",
                      "file", "-log", "F2", "--pid=p2", "-config", ""),
                 CONFIG_OK);
    CHECK_EQ_STR(cfg.host, "h");
    CHECK_EQ_STR(cfg.cluster_id, "c2");
    CHECK_EQ_INT(cfg.store, CONFIG_STORE_LMDB);
    CHECK_EQ_STR(cfg.log_file, "F2");
    CHECK_EQ_STR(cfg.pid_file, "p2");
    CHECK(cfg.config_file == NULL);
    config_free(&cfg);

    /* A value that looks like a flag is still the value, as in Go. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-cid", "-x"), CONFIG_OK);
    CHECK_EQ_STR(cfg.cluster_id, "-x");
    config_free(&cfg);
    CHECK_EQ_INT(ARGS(&cfg, err, "-l", "-D"), CONFIG_OK);
    CHECK_EQ_STR(cfg.log_file, "-D");
    CHECK(!cfg.debug);
    config_free(&cfg);
    /* An empty value unsets optional strings. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-l", "F", "--log="), CONFIG_OK);
    CHECK(cfg.log_file == NULL);
    config_free(&cfg);
    /* "--" ends the flags. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-p", "5", "--"), CONFIG_OK);
    CHECK_EQ_INT(cfg.port, 5);
    config_free(&cfg);
}

/* The flags must give debug, trace, stan_debug, stan_trace and logtime as in want ("10001"). */
static void bools_are(const char *want, ...)
{
    config_t cfg;
    char err[512], got[6];
    va_list ap;
    va_start(ap, want);
    int rc = vrun_args(&cfg, err, sizeof(err), ap);
    va_end(ap);
    snprintf(got, sizeof(got), "%d%d%d%d%d", cfg.debug, cfg.trace, cfg.stan_debug, cfg.stan_trace,
             cfg.logtime);
    if (rc != CONFIG_OK || strcmp(got, want) != 0) {
        fprintf(stderr, "rc=%d err=\"%s\" got %s want %s\n", rc, err, got, want);
        CHECK(0);
    }
    config_free(&cfg);
}
#define BOOLS_ARE(want, ...) bools_are(want, __VA_ARGS__, (char *)NULL)

static void test_bool_flags(void)
{
    BOOLS_ARE("00111", "-SDV");
    BOOLS_ARE("11001", "-DV");
    BOOLS_ARE("11111", "-D", "-V", "--SD", "-SV");
    BOOLS_ARE("11111", "--debug", "-trace", "-stan_debug", "--stan_trace");
    BOOLS_ARE("00001", "-D", "-D=false");
    BOOLS_ARE("10001", "-DV", "-V=false");
    BOOLS_ARE("00001", "-SDV=true", "-SDV=0");
    BOOLS_ARE("00000", "-T=false");
    BOOLS_ARE("00000", "--logtime=FALSE");
    BOOLS_ARE("00001", "--logtime=false", "-T");
    BOOLS_ARE("10001", "-D=yes", "--trace=off");
    /* A bool flag does not take the next argument. */
    ARGS_FAIL("unexpected argument \"false\"", "-D", "false");
    ARGS_FAIL("invalid value \"maybe\" for flag -D: not a boolean (true or false)", "-D=maybe");
    ARGS_FAIL("invalid value \"x\" for flag -DV: not a boolean", "-DV=x");
}

static void test_flags_override_file(void)
{
    config_t cfg;
    char err[512];
    char *path = (char *)yaml("o.yaml", "port: 1111\nhttp_port: 2222\ndebug: true\n"
                                        "cluster_id: from-file\nstore: memory\n");
    /* -c is found wherever it is: flags before it still override the file. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-p", "3333", "-D=false", "-c", path, "-cid", "from-flag"),
                 CONFIG_OK);
    CHECK_EQ_INT(cfg.port, 3333);
    CHECK_EQ_INT(cfg.http_port, 2222);
    CHECK(!cfg.debug);
    CHECK_EQ_STR(cfg.cluster_id, "from-flag");
    CHECK_EQ_INT(cfg.store, CONFIG_STORE_MEMORY);
    CHECK_EQ_STR(cfg.config_file, path);
    config_free(&cfg);
    /* A bad file through -c reports file:line. */
    char *bad = (char *)yaml("b.yaml", "port: 1\nbogus: 2\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", bad), STZ_ECONFIG);
    char want[300];
    snprintf(want, sizeof(want), "%s:2: unknown setting \"bogus\"", bad);
    CHECK_EQ_STR(err, want);
    config_free(&cfg);
}

static void test_flag_errors(void)
{
    ARGS_FAIL("unknown flag: -xyz", "-xyz");
    ARGS_FAIL("unknown flag: -xyz", "--xyz=1");
    ARGS_FAIL("unknown flag: -d", "-d"); /* names are case-sensitive */
    ARGS_FAIL("flag needs an argument: -p", "-D", "-p");
    ARGS_FAIL("flag needs an argument: -port", "--port");
    ARGS_FAIL("invalid value \"abc\" for flag -p: not an integer", "-p", "abc");
    ARGS_FAIL("invalid value \"99999\" for flag -port: must be between 0 and 65535",
              "--port=99999");
    ARGS_FAIL("for flag -max_payload: must be between 1 and 64MB", "--max_payload", "100MB");
    ARGS_FAIL("for flag -max_payload: must be between 1 and 64MB", "--max_payload", "0");
    ARGS_FAIL("for flag -st: unknown store type", "-st", "redis");
    ARGS_FAIL("for flag -ping_interval: not a duration", "--ping_interval", "soon");
    ARGS_FAIL("for flag -ping_max: must be at least 1", "--ping_max=0");
    ARGS_FAIL("for flag -a: must not be empty", "-a", "");
    ARGS_FAIL("for flag -cid: must be a valid subject", "-cid", "a.*");
    /* Stray positional arguments. */
    ARGS_FAIL("\"extra\"", "-p", "1", "extra");
    ARGS_FAIL("unexpected argument \"-\"", "-");
    ARGS_FAIL("unexpected argument \"x\"", "--", "x");
    /* Bad syntax. */
    ARGS_FAIL("bad flag syntax: ---p", "---p", "1");
    ARGS_FAIL("bad flag syntax: -=1", "-=1");
    /* A tiny error buffer truncates, never overflows. */
    config_t cfg;
    char small[8];
    CHECK_EQ_INT(run_args(&cfg, small, sizeof(small), "-nosuchflag", (char *)NULL), STZ_ECONFIG);
    CHECK_EQ_STR(small, "unknown");
    config_free(&cfg);
}

static void test_help_version(void)
{
    config_t cfg;
    char err[512];
    const char *help[] = {"-h", "--h", "-help", "--help", "-h=true"};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(ARGS(&cfg, err, "-p", "1", (char *)help[i]), CONFIG_SHOW_HELP);
        config_free(&cfg);
    }
    const char *version[] = {"-v", "--v", "-version", "--version"};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(ARGS(&cfg, err, (char *)version[i], "-D"), CONFIG_SHOW_VERSION);
        config_free(&cfg);
    }
    /* -h wins over a later error but not an earlier one. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-h", "-bogus"), CONFIG_SHOW_HELP);
    config_free(&cfg);
    CHECK_EQ_INT(ARGS(&cfg, err, "-bogus", "-h"), STZ_ECONFIG);
    config_free(&cfg);
    CHECK_EQ_INT(ARGS(&cfg, err, "-h=false"), CONFIG_OK);
    config_free(&cfg);

    /* Usage lists every flag, grouped, with defaults. */
    const char *want[] = {"Usage: stanzad",
                          "Server",
                          "Streaming",
                          "Logging",
                          "Limits",
                          "-a, --addr",
                          "-p, --port",
                          "-m, --http_port",
                          "-c, --config",
                          "-cid, --cluster_id",
                          "-st, --store",
                          "--dir",
                          "-D, --debug",
                          "-V, --trace",
                          "-DV",
                          "-SD, --stan_debug",
                          "-SV, --stan_trace",
                          "-SDV",
                          "-T, --logtime",
                          "-l, --log",
                          "-P, --pid",
                          "-v, --version",
                          "-h, --help",
                          "--user",
                          "--pass",
                          "--auth",
                          "--max_payload",
                          "--max_pending",
                          "--max_connections",
                          "--ping_interval",
                          "--ping_max",
                          "default: 4222",
                          "default: 0.0.0.0",
                          "default: test-cluster",
                          "default: 1MB",
                          "default: 64MB",
                          "default: 2m)",
                          "default: 10s)",
                          "default: MEMORY, or LMDB when --dir is given",
                          "default: ./data",
                          "default: 65536"};
    check_usage_lists(want, sizeof(want) / sizeof(want[0]));
}

/* A heartbeat's answer is awaited before the next is due, so hb_timeout < hb_interval, checked
 * once every source is applied (a flag may repair the file), naming where each value came from. */
static void test_heartbeat_settings_agree(void)
{
    config_t cfg;
    char err[512], want[512];
    ARGS_FAIL("flag -hbt: hb_timeout 200ms must be shorter than hb_interval 200ms (set at flag "
              "-hbi)",
              "-hbi", "200ms", "-hbt", "200ms");
    ARGS_FAIL("flag -hb_timeout: hb_timeout 40s must be shorter than hb_interval 30s (the "
              "default)",
              "--hb_timeout=40s");
    ARGS_FAIL("flag -hbi: hb_interval 5s must be longer than hb_timeout 10s (its default", "-hbi",
              "5s");
    CHECK_EQ_INT(ARGS(&cfg, err, "-hbi", "200ms", "-hbt", "150ms"), CONFIG_OK);
    CHECK_EQ_INT(cfg.hb_interval_ms, 200);
    CHECK_EQ_INT(cfg.hb_timeout_ms, 150);
    config_free(&cfg);

    /* From the file: FILE:LINE of each. */
    const char *path = yaml("t.yaml", "hb_interval: 2s\nhb_timeout: 3s\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", path), STZ_ECONFIG);
    snprintf(want, sizeof(want),
             "%s:2: hb_timeout 3s must be shorter than hb_interval 2s (set at %s:1)", path, path);
    CHECK(strstr(err, want));
    config_free(&cfg);
    /* A flag overrides the file's value before the check: no error. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", path, "-hbt", "1500ms"), CONFIG_OK);
    CHECK_EQ_INT(cfg.hb_timeout_ms, 1500);
    config_free(&cfg);
    /* The file's timeout against a flag's interval. */
    path = yaml("t.yaml", "# heartbeats\nhb_timeout: 500ms\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", path, "--hb_interval", "500ms"), STZ_ECONFIG);
    snprintf(want, sizeof(want),
             "%s:2: hb_timeout 500ms must be shorter than hb_interval 500ms (set "
             "at flag -hb_interval)",
             path);
    CHECK(strstr(err, want));
    config_free(&cfg);

    /* Edited in code: config_validate alone. */
    config_init(&cfg);
    cfg.hb_timeout_ms = cfg.hb_interval_ms;
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), STZ_ECONFIG);
    CHECK_EQ_STR(err, "hb_timeout 30s must be shorter than hb_interval 30s");
    config_free(&cfg);
}

int main(void)
{
    config_test_mkdtemp("/tmp/stanza_test_config.XXXXXX");

    TEST_RUN(test_defaults);
    TEST_RUN(test_store_default_follows_dir);
    TEST_RUN(test_parse_size);
    TEST_RUN(test_parse_duration);
    TEST_RUN(test_parse_bool);
    TEST_RUN(test_config_set);
    TEST_RUN(test_shipped_config);
    TEST_RUN(test_every_key);
    TEST_RUN(test_key_aliases_and_documents);
    TEST_RUN(test_empty_files);
    TEST_RUN(test_bad_files);
    TEST_RUN(test_tls_section_errors);
    TEST_RUN(test_missing_file);
    TEST_RUN(test_garbage_files);
    TEST_RUN(test_flag_forms);
    TEST_RUN(test_bool_flags);
    TEST_RUN(test_flags_override_file);
    TEST_RUN(test_flag_errors);
    TEST_RUN(test_heartbeat_settings_agree);
    TEST_RUN(test_help_version);

    const char *names[] = {"t.yaml", "g.yaml", "d.yaml", "o.yaml", "b.yaml"};
    config_test_rmdir(names, sizeof(names) / sizeof(names[0]));
    return test_summary();
}
