/* Unit tests for the cluster settings (issue 10, embedded routes): --cluster, --routes and
 * --cluster_name as nats-server names them, the YAML cluster section (listen, routes as a list or
 * a comma-separated string, name), the route URL parser, and bad values refused with the flag or
 * file:line named. */
#include "config_test_util.h"

static void test_flags(void)
{
    config_t cfg;
    char err[512];
    config_init(&cfg);
    CHECK(cfg.cluster_listen == NULL && cfg.cluster_routes == NULL && cfg.cluster_name == NULL);
    config_free(&cfg);

    CHECK_EQ_INT(ARGS(&cfg, err, "--cluster", "nats://127.0.0.1:6222", "--routes",
                      "nats://127.0.0.1:6223,nats://127.0.0.1:6224", "--cluster_name", "east"),
                 CONFIG_OK);
    CHECK_EQ_STR(cfg.cluster_listen, "nats://127.0.0.1:6222");
    CHECK_EQ_STR(cfg.cluster_routes, "nats://127.0.0.1:6223,nats://127.0.0.1:6224");
    CHECK_EQ_STR(cfg.cluster_name, "east");
    config_free(&cfg);
    /* Go-style: one dash, '='; the streaming cluster id is a different flag. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-cluster=nats://0.0.0.0:7222", "-cid", "c1"), CONFIG_OK);
    CHECK_EQ_STR(cfg.cluster_listen, "nats://0.0.0.0:7222");
    CHECK_EQ_STR(cfg.cluster_id, "c1");
    config_free(&cfg);

    const char *const usage[] = {"--cluster <url>", "--routes <url,...>", "--cluster_name <name>"};
    check_usage_lists(usage, 3);
}

static void test_bad_flags(void)
{
    ARGS_FAIL("--cluster", "--cluster", "nats://127.0.0.1:99999");
    ARGS_FAIL("\"nats://:6222\" is not a route URL", "--cluster", "nats://:6222");
    ARGS_FAIL("cluster routes (--routes): \"bogus url\" is not a route URL", "--cluster",
              "nats://127.0.0.1:6222", "--routes", "nats://127.0.0.1:6223,bogus url");
    ARGS_FAIL("need a cluster listen URL (--cluster)", "--routes", "nats://127.0.0.1:6223");
    ARGS_FAIL("cluster name (--cluster_name) must be one word", "--cluster",
              "nats://127.0.0.1:6222", "--cluster_name", "two words");
    ARGS_FAIL("flag needs an argument: -routes", "--routes");
}

static void test_file(void)
{
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(load_text(&cfg,
                           "port: 1\n"
                           "cluster:\n"
                           "  listen: nats://127.0.0.1:6222\n"
                           "  routes:\n"
                           "    - nats://127.0.0.1:6223\n"
                           "    - nats-route://10.0.0.2:6224\n"
                           "  name: west\n",
                           err, sizeof(err)),
                 0);
    CHECK_EQ_STR(cfg.cluster_listen, "nats://127.0.0.1:6222");
    CHECK_EQ_STR(cfg.cluster_routes, "nats://127.0.0.1:6223,nats-route://10.0.0.2:6224");
    CHECK_EQ_STR(cfg.cluster_name, "west");
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), 0);
    config_free(&cfg);

    CHECK_EQ_INT(load_text(&cfg,
                           "cluster:\n  listen: 127.0.0.1:6222\n"
                           "  routes: nats://a:1, nats://b:2\n",
                           err, sizeof(err)),
                 0);
    CHECK_EQ_STR(cfg.cluster_routes, "nats://a:1, nats://b:2");
    config_free(&cfg);
    CHECK_EQ_INT(load_text(&cfg, "cluster:\n", err, sizeof(err)), 0);
    CHECK(cfg.cluster_listen == NULL);
    config_free(&cfg);

    /* The flag overrides the file. */
    const char *conf = yaml("c.yaml", "cluster:\n  listen: nats://127.0.0.1:6222\n  name: a\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", conf, "--cluster_name", "b"), CONFIG_OK);
    CHECK_EQ_STR(cfg.cluster_listen, "nats://127.0.0.1:6222");
    CHECK_EQ_STR(cfg.cluster_name, "b");
    config_free(&cfg);
}

static void test_bad_file(void)
{
    check_bad_file("cluster:\n  listen: nats://127.0.0.1:6222\n  routes:\n    - nats://ok:1\n"
                   "    - not a url\n",
                   5, "cluster routes: \"not a url\" is not a route URL");
    check_bad_file("cluster:\n  listen: nats://host:0\n", 2, "cluster listen:");
    check_bad_file("cluster:\n  lsten: nats://h:1\n", 2,
                   "unknown setting \"lsten\" in cluster (known: listen, routes, name)");
    check_bad_file("cluster: nats://h:1\n", 1, "\"cluster\" takes a section");
    check_bad_file("cluster:\n  name: a b\n", 2, "cluster name must be one word");
    check_bad_file("cluster:\n  routes:\n    - [x]\n", 3, "each entry must be a URL, not");
    check_bad_file("cluster:\n  routes: {a: 1}\n", 2, "a list of URLs or one string");
}

static void test_parse_url(void)
{
    char host[64];
    int port = 0;
    CHECK_EQ_INT(config_parse_route_url("nats://127.0.0.1:6222", 21, host, sizeof host, &port), 0);
    CHECK_EQ_STR(host, "127.0.0.1");
    CHECK_EQ_INT(port, 6222);
    const char *u = "nats-route://user:pw@[::1]:7000/";
    CHECK_EQ_INT(config_parse_route_url(u, strlen(u), host, sizeof host, &port), 0);
    CHECK_EQ_STR(host, "::1");
    CHECK_EQ_INT(port, 7000);
    CHECK_EQ_INT(config_parse_route_url("localhost", 9, host, sizeof host, &port), 0);
    CHECK_EQ_INT(port, 6222);
    const char *bad[] = {"",      "nats://", "nats://h:", "nats://h:x", "nats://h:70000",
                         "h h:1", "[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(config_parse_route_url(bad[i], strlen(bad[i]), host, sizeof host, &port),
                     STZ_EINVAL);
    CHECK_EQ_INT(config_parse_route_url("nats://averyveryverylonghost:1", 30, host, 8, &port),
                 STZ_EINVAL);
}

int main(void)
{
    config_test_mkdtemp("/tmp/stanza_test_cluster.XXXXXX");
    TEST_RUN(test_flags);
    TEST_RUN(test_bad_flags);
    TEST_RUN(test_file);
    TEST_RUN(test_bad_file);
    TEST_RUN(test_parse_url);
    const char *names[] = {"t.yaml", "c.yaml"};
    config_test_rmdir(names, 2);
    return test_summary();
}
