/* cli_cluster.c: `stanza cluster status|add|remove|transfer`, for a clustered stanzad
 * (--clustered).
 *
 * status reads one node's /streaming/clusterz (the configuration as that node sees it). The
 * changes are NATS requests to the cluster's leader, on the subjects NSS uses for add and
 * remove (_STAN.raft.<cluster>.node.add|remove, answered only by a leader started with
 * --cluster_allow_add_remove_node) and on _STZ.raft.<cluster>.node.transfer; the answer,
 * "+OK" or "-ERR reason", comes once the change is committed. docs/clustering.md has the
 * procedures (adding a node, replacing one, a rolling upgrade). */
#include "cli_commands.h"
#include "cli_common.h"
#include "cli_monitor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANGE_TIMEOUT_S 30 /* a new node's catch-up may take a while */

/* ---- status ---- */

static int run_status(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    bool json = false;
    const struct cli_opt opts[] = {{0, "json", CLI_OPT_FLAG, &json, 0, 0}, {0}};
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, NULL, 0, 0, &npos);
    if (rc != CLI_CONTINUE) return rc;
    json_t *doc = NULL;
    rc = cli_monitor_get(ctx, "/streaming/clusterz", &doc);
    cli_monitor_cleanup();
    if (rc == CLI_MONITOR_NOT_FOUND) {
        fprintf(stderr, "%s: the server at %s is not clustered (no /streaming/clusterz)\n",
                CLI_PROG, ctx->monitor);
        return CLI_EXIT_FAIL;
    }
    if (rc != CLI_EXIT_OK) return rc;
    if (json) {
        cli_json_print(stdout, doc);
        json_decref(doc);
        return CLI_EXIT_OK;
    }
    const json_t *raft = json_object_get(doc, "raft");
    const char *leader = cli_json_str(raft, "leader");
    printf("node %s: %s; leader %s; term %" PRIu64 ", commit index %" PRIu64
           ", applied index %" PRIu64 "\n",
           cli_json_str(doc, "node_id"), cli_json_str(doc, "role"), leader ? leader : "unknown",
           cli_json_u64(raft, "term"), cli_json_u64(raft, "commit_index"),
           cli_json_u64(raft, "applied_index"));
    static const char *const headers[] = {"NODE", "ADDRESS", "ROLE", "MATCH_INDEX"};
    static const bool right[] = {false, false, false, true};
    struct cli_table t;
    cli_table_init(&t, 4, headers, right);
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(doc, "peers"), i, p)
    {
        const char *role = cli_json_bool(p, "leader")  ? "leader"
                           : cli_json_bool(p, "voter") ? "voter"
                                                       : "spare";
        char match[24] = "-";
        if (json_object_get(p, "match_index"))
            snprintf(match, sizeof match, "%" PRIu64, cli_json_u64(p, "match_index"));
        const char *addr = cli_json_str(p, "address");
        const char *cells[] = {cli_json_str(p, "node_id"), addr ? addr : "(not known yet)", role,
                               match};
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(doc);
    return CLI_EXIT_OK;
}

static const struct cli_command status_kind = {
    .name = "status",
    .usage = "cluster status [--json]",
    .summary = "Show the cluster as one node sees it: its role, the leader, every member.",
    .help = "Reads http://MONITOR/streaming/clusterz. MATCH_INDEX (the last log entry the leader\n"
            "knows a member holds) is shown when MONITOR is the leader's.\n\n"
            "Options:\n"
            "      --json         print the server's JSON instead\n",
    .run = run_status,
};

/* ---- changes ---- */

/* Sends node_id to the leader on <prefix>.<cluster>.<what> and prints the outcome. */
static int change(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                  const char *prefix, const char *what, bool node_required, const char *done)
{
    int64_t timeout = CHANGE_TIMEOUT_S;
    const struct cli_opt opts[] = {
        {0, "timeout", CLI_OPT_INT, &timeout, 1, 3600},
        {0},
    };
    char *pos[1] = {NULL};
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, pos, node_required ? 1 : 0, 1, &npos);
    if (rc != CLI_CONTINUE) return rc;
    const char *node = npos ? pos[0] : "";
    char subject[512];
    if (snprintf(subject, sizeof subject, "%s.%s.%s", prefix, ctx->cluster, what) >=
        (int)sizeof subject)
        return cli_usage_error(cmd, "cluster id too long");
    natsConnection *nc = NULL;
    rc = cli_connect(ctx, false, &nc);
    if (rc != CLI_EXIT_OK) return rc;
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_RequestString(&reply, nc, subject, node, timeout * 1000);
    if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) {
        bool gated = strcmp(prefix, "_STAN.raft") == 0;
        if (s == NATS_TIMEOUT)
            fprintf(stderr, "%s: no answer on %s within %" PRId64 " s", CLI_PROG, subject, timeout);
        else
            fprintf(stderr, "%s: nobody takes requests on %s", CLI_PROG, subject);
        fprintf(stderr, ": the cluster has no leader now%s\n",
                gated ? ", or its leader was not started with --cluster_allow_add_remove_node"
                      : "");
        rc = CLI_EXIT_FAIL;
    } else if (s != NATS_OK) {
        rc = cli_nats_error(s, "request on %s", subject);
    } else {
        const char *d = natsMsg_GetData(reply);
        int len = natsMsg_GetDataLength(reply);
        if (len >= 3 && strncmp(d, "+OK", 3) == 0) {
            if (node[0])
                printf("node %s %s\n", node, done);
            else
                printf("another node %s\n", done);
        } else {
            bool err = len >= 5 && strncmp(d, "-ERR ", 5) == 0;
            fprintf(stderr, "%s: %.*s\n", CLI_PROG, err ? len - 5 : len, err ? d + 5 : d);
            rc = CLI_EXIT_FAIL;
        }
        natsMsg_Destroy(reply);
    }
    natsConnection_Destroy(nc);
    return rc;
}

static int run_add(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return change(ctx, cmd, argc, argv, "_STAN.raft", "node.add", true, "is a voting member");
}

static int run_remove(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return change(ctx, cmd, argc, argv, "_STAN.raft", "node.remove", true, "is no longer a member");
}

static int run_transfer(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return change(ctx, cmd, argc, argv, "_STZ.raft", "node.transfer", false, "leads now");
}

#define CHANGE_HELP                                                                                \
    "Options:\n"                                                                                   \
    "      --timeout S    wait at most S seconds for the answer (default 30)\n"

static const struct cli_command add_kind = {
    .name = "add",
    .usage = "cluster add NODE_ID [--timeout S]",
    .summary = "Make a node a voting member (the leader catches it up first).",
    .help = "Asks the leader over NATS (-s, -c) on _STAN.raft.CLUSTER.node.add, as NSS; only a\n"
            "leader started with --cluster_allow_add_remove_node answers. The node needs no\n"
            "adding when it starts on an empty --cluster_log_path without --cluster_peers: it\n"
            "asks to join by itself.\n\n" CHANGE_HELP,
    .run = run_add,
};

static const struct cli_command remove_kind = {
    .name = "remove",
    .usage = "cluster remove NODE_ID [--timeout S]",
    .summary = "Take a node out of the cluster (a leader removing itself steps down).",
    .help =
        "Asks the leader over NATS on _STAN.raft.CLUSTER.node.remove, as NSS; only a leader\n"
        "started with --cluster_allow_add_remove_node answers. Stop the removed node\n"
        "afterwards; clear its --dir and --cluster_log_path before it joins again.\n\n" CHANGE_HELP,
    .run = run_remove,
};

static const struct cli_command transfer_kind = {
    .name = "transfer",
    .usage = "cluster transfer [NODE_ID] [--timeout S]",
    .summary = "Hand the lead to NODE_ID (or the most up-to-date other voter).",
    .help = "Asks the leader over NATS on _STZ.raft.CLUSTER.node.transfer; the answer comes once\n"
            "the other node leads. For a rolling upgrade, stopping a leader (SIGTERM) also\n"
            "hands the lead over first.\n\n" CHANGE_HELP,
    .run = run_transfer,
};

static const struct cli_command *const cluster_kinds[] = {&status_kind, &add_kind, &remove_kind,
                                                          &transfer_kind};

static int run_cluster(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return cli_run_kind(ctx, cmd, cluster_kinds,
                        (int)(sizeof cluster_kinds / sizeof *cluster_kinds), NULL, argc, argv);
}

const struct cli_command cli_cluster_command = {
    .name = "cluster",
    .usage = "cluster status|add|remove|transfer ARGS...",
    .summary = "A clustered server's members and leader. See 'stanza cluster --help'.",
    .run = run_cluster,
};
