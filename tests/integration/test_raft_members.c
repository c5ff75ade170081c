/* it_raft_members: a clustered Stanza's membership changed while it serves. Nodes started on an
 * empty log without --cluster_peers join by themselves; `stanza cluster add` makes a node a
 * voter (a spare until it answers); `stanza cluster remove` takes nodes out (the leader itself
 * among them: it steps down); `stanza cluster transfer` hands the lead over. That the removals
 * really shrank the quorum is shown by killing three of five nodes: the remaining two of the
 * three voters still acknowledge publishes. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "harness_cli.h"
#include "harness_raft.h"
#include "test.h"

#define CLI_WAIT_MS 40000

static struct hraft C;
#define TOKEN "members-admin-token-0123"
static const char *const allow[] = {"--cluster_allow_add_remove_node", "--admin_token", TOKEN,
                                    NULL};

/* `stanza -s <node's URL> [-m <node's monitor>] cluster <what> [node]`, expecting status. */
static void cluster_cmd(struct hcli_res *r, int via, const char *what, const char *node, int status)
{
    char mon[64];
    snprintf(mon, sizeof mon, "http://127.0.0.1:%d", C.nodes[via].mport);
    const char *args[] = {
        "-s", C.nodes[via].n.s.url, "-c", HSTAN_CLUSTER, "-m", mon, "cluster", what, node, NULL};
    hcli_expect(r, status, args, CLI_WAIT_MS);
}

static bool out_has(const struct hcli_res *r, const char *needle)
{
    bool found = strstr(r->out, needle) || strstr(r->err, needle);
    if (!found) fprintf(stderr, "no \"%s\" in:\n%s%s", needle, r->out, r->err);
    return found;
}

/* A follower's monitoring reads its replicated store: channel "jobs" shows there with count
 * messages. Changes are refused there. */
static void check_follower_view(int node, int count)
{
    hraft_wait_channel_msgs(&C, node, "jobs", count);
    char mon[64];
    snprintf(mon, sizeof mon, "http://127.0.0.1:%d", C.nodes[node].mport);
    const char *args[] = {"-m", mon, "--token", TOKEN, "purge", "jobs", NULL};
    struct hcli_res r;
    hcli_expect(&r, 1, args, CLI_WAIT_MS);
    CHECK(out_has(&r, "does not lead the cluster"));
    hcli_free(&r);
}

/* The node's role in the leader's clusterz: "voter", "spare" or "" (not a member). */
static const char *member_role(int leader, const char *id)
{
    json_t *z = hraft_clusterz(&C, leader);
    json_t *peers = json_object_get(z, "peers");
    const char *role = "";
    for (size_t i = 0; i < json_array_size(peers); i++) {
        json_t *p = json_array_get(peers, i);
        if (strcmp(json_string_value(json_object_get(p, "node_id")), id) == 0)
            role = json_is_true(json_object_get(p, "voter")) ? "voter" : "spare";
    }
    json_decref(z);
    return role;
}

static void test_join_add_remove_transfer(void)
{
    hraft_setup(&C, 5, 3, allow);
    for (int i = 0; i < 3; i++)
        hraft_start_node(&C, i);
    int leader = hraft_wait_leader(&C, HRAFT_WAIT_MS);
    CHECK(leader >= 0);
    stanConnection *sc = hraft_connect_via(&C, leader, "members-client");
    hraft_pub_many(sc, 0, 49);

    /* n3 starts with no peers and an empty log: it asks to join, and catches up. */
    hraft_start_node(&C, 3);
    hraft_wait_voters(&C, leader, 4);
    hraft_check_caught_up(&C, 3, leader);
    CHECK(hraft_wait_log(&C, 3, "this node is a voter"));

    /* n4 added before it runs: a spare (libraft gives its catch-up up), a voter once it runs. */
    struct hcli_res r;
    cluster_cmd(&r, leader, "add", "n4", 1);
    CHECK(out_has(&r, "added as a spare but did not catch up"));
    hcli_free(&r);
    CHECK_EQ_STR(member_role(leader, "n4"), "spare");
    hraft_start_node(&C, 4);
    hraft_wait_voters(&C, leader, 5);
    check_follower_view(4, 50);
    /* From here on a client with every node's URL, to reconnect when its node dies. */
    CHECK_EQ_INT(stanConnection_Close(sc), NATS_OK);
    stanConnection_Destroy(sc);
    sc = hraft_connect_all(&C, "members-client");
    hraft_pub_many(sc, 50, 59);
    cluster_cmd(&r, leader, "status", NULL, 0);
    CHECK(out_has(&r, "n4") && out_has(&r, "leader"));
    hcli_free(&r);
    cluster_cmd(&r, leader, "add", "bad.id", 1);
    CHECK(out_has(&r, "invalid node ID"));
    hcli_free(&r);

    /* The leader removes itself (it steps down), then another node is removed. */
    char old[8];
    snprintf(old, sizeof old, "%s", C.nodes[leader].id);
    cluster_cmd(&r, (leader + 1) % 5, "remove", old, 0);
    CHECK(out_has(&r, "is no longer a member"));
    hcli_free(&r);
    int next = hraft_wait_leader(&C, HRAFT_WAIT_MS);
    CHECK(next >= 0 && next != leader);
    hraft_wait_voters(&C, next, 4);
    int gone = (next + 1) % 5 == leader ? (next + 2) % 5 : (next + 1) % 5;
    cluster_cmd(&r, next, "remove", C.nodes[gone].id, 0);
    hcli_free(&r);
    hraft_wait_voters(&C, next, 3);
    CHECK_EQ_STR(member_role(next, C.nodes[gone].id), "");

    /* Three of five processes killed: the removed two and one voter. Two voters of three are a
     * quorum (two of the five there were are not). */
    int survivor = -1;
    for (int i = 0; i < 5; i++)
        if (i != next && i != leader && i != gone) survivor = i;
    for (int i = 0; i < 5; i++)
        if (i != next && i != survivor) CHECK_EQ_INT(hnode_kill(&C.nodes[i].n), 0);
    char payload[16];
    for (int i = 60; i < 70; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        hraft_pub_retry(sc, "jobs", payload); /* its NATS server may have been one of them */
    }

    /* The lead handed to the other voter left. */
    cluster_cmd(&r, next, "transfer", C.nodes[survivor].id, 0);
    CHECK(out_has(&r, "leads now"));
    hcli_free(&r);
    CHECK_EQ_INT(hraft_wait_leader(&C, HRAFT_WAIT_MS), survivor);
    hraft_pub_retry(sc, "jobs", "m70");
    hraft_check_all_there(&C, survivor, 71);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    hraft_stop(&C);
}

/* Without --cluster_allow_add_remove_node the leader takes no add or remove (NATS publishers are
 * not operators), and says nothing: the CLI names the flag. */
static void test_changes_refused_without_flag(void)
{
    hraft_start(&C, 1, NULL);
    CHECK_EQ_INT(hraft_wait_leader(&C, HRAFT_WAIT_MS), 0);
    struct hcli_res r;
    cluster_cmd(&r, 0, "add", "n9", 1);
    CHECK(out_has(&r, "--cluster_allow_add_remove_node"));
    hcli_free(&r);
    cluster_cmd(&r, 0, "remove", "n0", 1);
    CHECK(out_has(&r, "--cluster_allow_add_remove_node"));
    hcli_free(&r);
    cluster_cmd(&r, 0, "transfer", NULL, 1);
    CHECK(out_has(&r, "no other voter"));
    hcli_free(&r);
    cluster_cmd(&r, 0, "status", NULL, 0);
    CHECK(out_has(&r, "node n0: Leader"));
    hcli_free(&r);
    hraft_stop(&C);
}

int main(void)
{
    TEST_RUN(test_join_add_remove_transfer);
    TEST_RUN(test_changes_refused_without_flag);
    return test_summary();
}
