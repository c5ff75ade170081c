/* Unit tests for clustered mode's settings (issue 11): NSS's --clustered and --cluster_* flags
 * and ours (--cluster_raft_listen, the Raft timeouts), the same keys flat in the file, the
 * clustering: section with NSS's names, peers as a list or a string, and bad values refused with
 * the flag or file:line named: node IDs, ID@HOST:PORT, duplicates, MEMORY in clustered mode,
 * a heartbeat not shorter than the election timeout. */
#include "config_test_util.h"

static void test_defaults(void)
{
    config_t cfg;
    config_init(&cfg);
    CHECK(!cfg.clustered && !cfg.cluster_bootstrap && !cfg.cluster_sync);
    CHECK(!cfg.cluster_raft_logging && !cfg.cluster_allow_add_remove_node);
    CHECK(cfg.cluster_node_id == NULL && cfg.cluster_peers == NULL);
    CHECK(cfg.cluster_log_path == NULL && cfg.cluster_raft_listen == NULL);
    CHECK_EQ_INT(cfg.cluster_raft_heartbeat_timeout_ms, 100);
    CHECK_EQ_INT(cfg.cluster_raft_election_timeout_ms, 800);
    CHECK_EQ_INT(cfg.cluster_trailing_logs, 10240);
    CHECK_EQ_INT(cfg.cluster_snapshot_threshold, 8192);
    CHECK(cfg.cluster_log_max_memory == 256LL * 1024 * 1024);
    config_free(&cfg);
    /* NSS ignores the cluster_* settings when not clustered: so does validation (MEMORY, the
     * default store, is fine then, as are timeouts that would not do in clustered mode). */
    char err[512];
    CHECK_EQ_INT(ARGS(&cfg, err, "--cluster_node_id", "a", "--cluster_bootstrap",
                      "--cluster_raft_heartbeat_timeout", "2s"),
                 CONFIG_OK);
    CHECK(!cfg.clustered);
    config_free(&cfg);
}

static void test_flags(void)
{
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(ARGS(&cfg, err, "--clustered", "--dir", tmpdir, "--cluster_node_id", "node-A_1",
                      "--cluster_bootstrap", "--cluster_peers", "node-A_1,b,c@10.0.0.3:7000",
                      "--cluster_log_path", "/var/lib/stanza/raft", "--cluster_sync",
                      "--cluster_raft_logging", "--cluster_allow_add_remove_node",
                      "--cluster_raft_listen", "127.0.0.1:0", "--cluster_raft_heartbeat_timeout",
                      "50ms", "--cluster_raft_election_timeout", "1.5s", "--cluster_trailing_logs",
                      "0", "--cluster_snapshot_threshold", "16", "--cluster_log_max_memory",
                      "64MB"),
                 CONFIG_OK);
    CHECK(cfg.clustered && cfg.cluster_bootstrap && cfg.cluster_sync);
    CHECK(cfg.cluster_raft_logging && cfg.cluster_allow_add_remove_node);
    CHECK_EQ_STR(cfg.cluster_node_id, "node-A_1");
    CHECK_EQ_STR(cfg.cluster_peers, "node-A_1,b,c@10.0.0.3:7000");
    CHECK_EQ_STR(cfg.cluster_log_path, "/var/lib/stanza/raft");
    CHECK_EQ_STR(cfg.cluster_raft_listen, "127.0.0.1:0");
    CHECK_EQ_INT(cfg.cluster_raft_heartbeat_timeout_ms, 50);
    CHECK_EQ_INT(cfg.cluster_raft_election_timeout_ms, 1500);
    CHECK_EQ_INT(cfg.cluster_trailing_logs, 0);
    CHECK_EQ_INT(cfg.cluster_snapshot_threshold, 16);
    CHECK(cfg.cluster_log_max_memory == 64LL * 1024 * 1024);
    CHECK(cfg.store == CONFIG_STORE_LMDB);
    config_free(&cfg);

    /* Go-style: one dash, '=', booleans turned off; blanks around peers dropped; -ns and
     * bootstrap with peers are both allowed, as in NSS. */
    CHECK_EQ_INT(ARGS(&cfg, err, "-clustered=true", "-st", "FILE", "-cluster_sync=false",
                      "-cluster_peers= a , b@[::1]:7001", "-ns", "nats://127.0.0.1:4222",
                      "-cluster_bootstrap", "-cluster_raft_listen=[::1]:7000"),
                 CONFIG_OK);
    CHECK(cfg.clustered && !cfg.cluster_sync && cfg.cluster_bootstrap);
    CHECK_EQ_STR(cfg.cluster_peers, "a,b@[::1]:7001");
    CHECK_EQ_STR(cfg.cluster_raft_listen, "[::1]:7000");
    config_free(&cfg);

    const char *const usage[] = {"--clustered",
                                 "--cluster_node_id",
                                 "--cluster_bootstrap",
                                 "--cluster_peers",
                                 "--cluster_log_path",
                                 "--cluster_sync",
                                 "--cluster_raft_logging",
                                 "--cluster_allow_add_remove_node",
                                 "--cluster_raft_listen",
                                 "--cluster_raft_heartbeat_timeout",
                                 "--cluster_raft_election_timeout",
                                 "--cluster_trailing_logs",
                                 "--cluster_snapshot_threshold",
                                 "--cluster_log_max_memory"};
    check_usage_lists(usage, sizeof usage / sizeof usage[0]);
}

static void test_parse_peer(void)
{
    char id[CONFIG_NODE_ID_MAX + 1], host[256];
    int port = -1;
    CHECK_EQ_INT(config_parse_peer("a", 1, id, host, sizeof host, &port), 0);
    CHECK_EQ_STR(id, "a");
    CHECK_EQ_STR(host, "");
    CHECK_EQ_INT(port, 0);
    const char *p = "n-2@[fe80::1]:65535";
    CHECK_EQ_INT(config_parse_peer(p, strlen(p), id, host, sizeof host, &port), 0);
    CHECK_EQ_STR(id, "n-2");
    CHECK_EQ_STR(host, "fe80::1");
    CHECK_EQ_INT(port, 65535);
    p = "x@raft.example.com:7000";
    CHECK_EQ_INT(config_parse_peer(p, strlen(p), id, host, sizeof host, &port), 0);
    CHECK_EQ_STR(host, "raft.example.com");
    CHECK_EQ_INT(port, 7000);
    const char *bad[] = {"",        "a@h:0",     "a@h:70000", "a@h",      "a@h:",
                         "a@:1",    "a@[::1:1",  "a@::1:1",   "a@[zz]:1", "a@999.1.1.1:1",
                         "a.b@h:1", "a@h:1@h:2", "a b",       "a@h h:1",  "@h:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_peer(bad[i], strlen(bad[i]), id, host, sizeof host, &port) != STZ_EINVAL) {
            fprintf(stderr, "accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
    CHECK_EQ_INT(config_parse_host_port("h:0", 3, host, sizeof host, &port), 0);
    CHECK_EQ_INT(port, 0);
    CHECK_EQ_INT(config_parse_host_port("h:1", 3, host, 1, &port), STZ_EINVAL); /* too long */
}

static void test_bad_node_ids(void)
{
    char long_id[CONFIG_NODE_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *bad[] = {"", long_id, "a.b", "a b", "a*", "a>", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ARGS_FAIL("flag -cluster_node_id: a node ID must be 1 to 64 characters",
                  "--cluster_node_id", bad[i]);
    long_id[CONFIG_NODE_ID_MAX] = '\0'; /* 64: the longest */
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(ARGS(&cfg, err, "--cluster_node_id", long_id), CONFIG_OK);
    config_free(&cfg);
    check_bad_file("port: 1\ncluster_node_id: a.b\n", 2,
                   "invalid value \"a.b\" for \"cluster_node_id\": a node ID must be");
    check_bad_file("clustering:\n  node_id: \"a b\"\n", 2,
                   "clustering node_id: invalid value \"a b\": a node ID must be");
    check_bad_file("clustering:\n  node_id: \"\"\n", 2, "a node ID must be");
    check_bad_file("clustering:\n  node_id:\n", 2, "clustering \"node_id\" needs a value");
    /* A node ID set in code is checked too. */
    config_init(&cfg);
    cfg.cluster_node_id = strdup("x/y");
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), STZ_ECONFIG);
    CHECK(strstr(err, "cluster_node_id: a node ID must be") != NULL);
    config_free(&cfg);
}

static void test_bad_peers(void)
{
    ARGS_FAIL("flag -cluster_peers: \"a@h:0\": the address must be", "--cluster_peers", "a@h:0");
    ARGS_FAIL("\"b@h:70000\": the address must be", "--cluster_peers", "a,b@h:70000");
    ARGS_FAIL("\"b@h\": the address must be", "--cluster_peers", "a,b@h");
    ARGS_FAIL("\"a.b\": a node ID must be", "--cluster_peers", "a.b");
    ARGS_FAIL("empty entry", "--cluster_peers", "a,,b");
    ARGS_FAIL("empty entry", "--cluster_peers", "a,");
    ARGS_FAIL("node ID \"a\" is listed twice", "--cluster_peers", "a,b,a@h:1");
    ARGS_FAIL("node ID \"b\" is listed twice", "--cluster_peers", "b@h:1, b@h:2");
    /* A cluster is a handful of nodes; the list is bounded. */
    char many[CONFIG_PEERS_MAX * 4 + 8] = "";
    for (int i = 0; i <= CONFIG_PEERS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d", i ? "," : "", i);
    ARGS_FAIL("at most 64 peers", "--cluster_peers", many);
    ARGS_FAIL("cluster_snapshot_threshold", "--cluster_snapshot_threshold", "0");
    ARGS_FAIL("cluster_trailing_logs", "--cluster_trailing_logs", "-1");
    ARGS_FAIL("cluster_log_max_memory", "--cluster_log_max_memory", "lots");
    ARGS_FAIL("cluster_raft_listen: must be HOST:PORT", "--cluster_raft_listen", "h");
    ARGS_FAIL("cluster_raft_listen: must be HOST:PORT", "--cluster_raft_listen", "h:65536");
    ARGS_FAIL("cluster_raft_listen: must be HOST:PORT", "--cluster_raft_listen", "::1:7000");
    check_bad_file("cluster_peers:\n  - a\n  - b@h:0\n", 3,
                   "cluster_peers: \"b@h:0\": the address must be");
    check_bad_file("cluster_peers:\n  - a\n  - b\n  - a@h:1\n", 4,
                   "cluster_peers: node ID \"a\" is listed twice");
    check_bad_file("clustering:\n  peers: [a, b, b]\n", 2,
                   "clustering peers: node ID \"b\" is listed twice");
    check_bad_file("clustering:\n  peers: \"a, b@h:70000\"\n", 2,
                   "clustering peers: \"b@h:70000\": the address must be");
    check_bad_file("clustering:\n  peers:\n    - [a]\n", 3,
                   "clustering peers: each entry must be a node ID or ID@HOST:PORT, not a list");
    check_bad_file("cluster_peers: {a: 1}\n", 1,
                   "cluster_peers: a list of node IDs or one string, not a mapping");
}

static void test_file_flat(void)
{
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(load_text(&cfg,
                           "clustered: true\n"
                           "cluster_node_id: n1\n"
                           "cluster_bootstrap: true\n"
                           "cluster_peers:\n"
                           "  - n1\n"
                           "  - n2@10.0.0.2:7000\n"
                           "cluster_log_path: /tmp/raft\n"
                           "cluster_sync: yes\n"
                           "cluster_raft_logging: true\n"
                           "cluster_allow_add_remove_node: true\n"
                           "cluster_raft_listen: 0.0.0.0:7000\n"
                           "cluster_raft_heartbeat_timeout: 200ms\n"
                           "cluster_raft_election_timeout: 2s\n",
                           err, sizeof err),
                 0);
    CHECK(cfg.clustered && cfg.cluster_bootstrap && cfg.cluster_sync);
    CHECK(cfg.cluster_raft_logging && cfg.cluster_allow_add_remove_node);
    CHECK_EQ_STR(cfg.cluster_node_id, "n1");
    CHECK_EQ_STR(cfg.cluster_peers, "n1,n2@10.0.0.2:7000");
    CHECK_EQ_STR(cfg.cluster_log_path, "/tmp/raft");
    CHECK_EQ_STR(cfg.cluster_raft_listen, "0.0.0.0:7000");
    CHECK_EQ_INT(cfg.cluster_raft_heartbeat_timeout_ms, 200);
    CHECK_EQ_INT(cfg.cluster_raft_election_timeout_ms, 2000);
    config_free(&cfg);

    /* Peers as one string; null unsets. */
    CHECK_EQ_INT(load_text(&cfg, "cluster_peers: \"a, b ,c\"\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.cluster_peers, "a,b,c");
    config_free(&cfg);
    CHECK_EQ_INT(load_text(&cfg, "cluster_peers: a\ncluster_peers: ~\n", err, sizeof err), 0);
    CHECK(cfg.cluster_peers == NULL);
    config_free(&cfg);
}

static void test_section(void)
{
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(load_text(&cfg,
                           "store: LMDB\n"
                           "clustering:\n"
                           "  node_id: a\n"
                           "  bootstrap: true\n"
                           "  peers: [a, b, \"c@[::1]:7002\"]\n"
                           "  log_path: /tmp/r\n"
                           "  sync: true\n"
                           "  raft_logging: true\n"
                           "  allow_add_remove_node: true\n"
                           "  raft_heartbeat_timeout: 150ms\n"
                           "  raft_election_timeout: 3s\n"
                           "  raft_listen: \"localhost:7000\"\n"
                           "  trailing_logs: 100\n"
                           "  snapshot_threshold: 50\n"
                           "  log_max_memory: 1GB\n",
                           err, sizeof err),
                 0);
    CHECK(cfg.clustered); /* the section's presence */
    CHECK(cfg.cluster_bootstrap && cfg.cluster_sync && cfg.cluster_raft_logging);
    CHECK(cfg.cluster_allow_add_remove_node);
    CHECK_EQ_STR(cfg.cluster_node_id, "a");
    CHECK_EQ_STR(cfg.cluster_peers, "a,b,c@[::1]:7002");
    CHECK_EQ_STR(cfg.cluster_log_path, "/tmp/r");
    CHECK_EQ_STR(cfg.cluster_raft_listen, "localhost:7000");
    CHECK_EQ_INT(cfg.cluster_raft_heartbeat_timeout_ms, 150);
    CHECK_EQ_INT(cfg.cluster_raft_election_timeout_ms, 3000);
    CHECK_EQ_INT(cfg.cluster_trailing_logs, 100);
    CHECK_EQ_INT(cfg.cluster_snapshot_threshold, 50);
    CHECK(cfg.cluster_log_max_memory == 1024LL * 1024 * 1024);
    CHECK_EQ_INT(config_validate(&cfg, err, sizeof err), 0);
    config_free(&cfg);

    /* clustered: false inside keeps it off, wherever it is; an empty section turns it on. */
    CHECK_EQ_INT(
        load_text(&cfg, "clustering:\n  node_id: a\n  clustered: false\n", err, sizeof err), 0);
    CHECK(!cfg.clustered);
    CHECK_EQ_STR(cfg.cluster_node_id, "a");
    config_free(&cfg);
    CHECK_EQ_INT(
        load_text(&cfg, "clustering:\n  clustered: false\n  sync: true\n", err, sizeof err), 0);
    CHECK(!cfg.clustered && cfg.cluster_sync);
    config_free(&cfg);
    CHECK_EQ_INT(load_text(&cfg, "clustering:\n", err, sizeof err), 0);
    CHECK(cfg.clustered);
    config_free(&cfg);
    /* Peers as one string in the section. */
    CHECK_EQ_INT(load_text(&cfg, "clustering:\n  peers: a,b\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.cluster_peers, "a,b");
    config_free(&cfg);

    /* Flags override the file. */
    const char *conf = yaml("c.yaml", "clustering:\n  node_id: a\n  sync: true\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", conf, "--cluster_node_id", "b", "--clustered=false"),
                 CONFIG_OK);
    CHECK(!cfg.clustered && cfg.cluster_sync);
    CHECK_EQ_STR(cfg.cluster_node_id, "b");
    config_free(&cfg);
}

static void test_bad_section(void)
{
    check_bad_file("clustering:\n  node_id: a\n  raft_lease_timeout: 1s\n", 3,
                   "unknown setting \"raft_lease_timeout\" in clustering (known: clustered, "
                   "node_id, bootstrap, peers");
    check_bad_file("clustering: true\n", 1, "\"clustering\" takes a section");
    check_bad_file("clustering:\n  sync: maybe\n", 2,
                   "clustering sync: invalid value \"maybe\": not a boolean");
    check_bad_file("clustering:\n  raft_heartbeat_timeout: 5ms\n", 2,
                   "must be between 10ms and 60s");
    check_bad_file("clustering:\n  raft_election_timeout: 61s\n", 2,
                   "must be between 10ms and 60s");
    check_bad_file("clustering:\n  raft_listen: nohost\n", 2, "must be HOST:PORT");
    check_bad_file("clustering:\n  [a]: 1\n", 2, "clustering setting names must be plain words");
}

/* In clustered mode: a persistent store, the heartbeat shorter than the election timeout. */
static void test_validation(void)
{
    ARGS_FAIL("clustered mode needs a persistent store (--store MEMORY is not allowed)",
              "--clustered", "--store", "MEMORY");
    ARGS_FAIL("clustered mode needs a persistent store (--store MEMORY is not allowed)",
              "--clustered", "--dir", tmpdir, "-st", "memory");
    ARGS_FAIL("clustered mode needs a persistent store: give --dir", "--clustered");
    ARGS_FAIL("flag -cluster_raft_heartbeat_timeout: cluster_raft_heartbeat_timeout 1s must be "
              "shorter than cluster_raft_election_timeout 1s (set at flag "
              "-cluster_raft_election_timeout)",
              "--clustered", "--dir", tmpdir, "--cluster_raft_heartbeat_timeout", "1s",
              "--cluster_raft_election_timeout", "1s");
    ARGS_FAIL("cluster_raft_heartbeat_timeout 2s must be shorter than "
              "cluster_raft_election_timeout 800ms (the default)",
              "--clustered", "--dir", tmpdir, "--cluster_raft_heartbeat_timeout", "2s");
    ARGS_FAIL("flag -cluster_raft_election_timeout: cluster_raft_election_timeout 50ms must be "
              "longer than cluster_raft_heartbeat_timeout 100ms (its default; set it lower)",
              "--clustered", "--dir", tmpdir, "--cluster_raft_election_timeout", "50ms");

    /* Set in the file, the message names the lines. */
    char want[512];
    const char *conf = yaml("v.yaml", "clustering:\n  raft_election_timeout: 300ms\n"
                                      "  raft_heartbeat_timeout: 300ms\n");
    snprintf(want, sizeof want,
             "%s:3: cluster_raft_heartbeat_timeout 300ms must be shorter than "
             "cluster_raft_election_timeout 300ms (set at %s:2)",
             conf, conf);
    ARGS_FAIL(want, "-c", conf, "--dir", tmpdir);
    conf = yaml("v.yaml", "clustered: true\nstore: MEMORY\n");
    ARGS_FAIL("clustered mode needs a persistent store (--store MEMORY", "-c", conf);
    /* A directory given in the file means LMDB, as --dir does (and a store given there is kept
     * over a --dir flag). */
    config_t cfg;
    char err[512];
    snprintf(want, sizeof want, "clustered: true\ndir: %s\n", tmpdir);
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", yaml("v.yaml", want)), CONFIG_OK);
    CHECK(cfg.store == CONFIG_STORE_LMDB);
    config_free(&cfg);
    conf = yaml("v.yaml", "store: MEMORY\n");
    CHECK_EQ_INT(ARGS(&cfg, err, "-c", conf, "--dir", tmpdir), CONFIG_OK);
    CHECK(cfg.store == CONFIG_STORE_MEMORY);
    config_free(&cfg);
}

/* config/stanza.yaml's clustering block, uncommented, is a valid section with every key. */
static void test_documented_block(void)
{
    const char *src = getenv("STANZA_SRC_DIR");
    char path[512], line[256], text[4096] = "";
    snprintf(path, sizeof path, "%s/config/stanza.yaml", src ? src : ".");
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL);
    bool in = false;
    int keys = 0;
    while (fgets(line, sizeof line, fp)) {
        in = in ? strncmp(line, "#  ", 3) == 0 : strcmp(line, "# clustering:\n") == 0;
        if (!in) continue;
        keys++;
        strncat(text, line + 2, sizeof text - strlen(text) - 1);
    }
    fclose(fp);
    CHECK_EQ_INT(keys, 15); /* the section and its 14 keys */
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(load_text(&cfg, text, err, sizeof err), 0);
    CHECK(cfg.clustered);
    CHECK_EQ_STR(cfg.cluster_peers, "a,b,c");
    CHECK_EQ_INT(cfg.cluster_raft_heartbeat_timeout_ms, 100);
    config_free(&cfg);
}

int main(void)
{
    config_test_mkdtemp("/tmp/stanza_test_clustering.XXXXXX");
    TEST_RUN(test_defaults);
    TEST_RUN(test_flags);
    TEST_RUN(test_parse_peer);
    TEST_RUN(test_bad_node_ids);
    TEST_RUN(test_bad_peers);
    TEST_RUN(test_file_flat);
    TEST_RUN(test_section);
    TEST_RUN(test_bad_section);
    TEST_RUN(test_validation);
    TEST_RUN(test_documented_block);
    const char *names[] = {"t.yaml", "c.yaml", "v.yaml"};
    config_test_rmdir(names, 3);
    return test_summary();
}
