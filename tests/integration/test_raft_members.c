/* it_raft_members: a clustered Stanza's membership changed while it serves. Nodes started on an
 * empty log without --cluster_peers join by themselves; `stanza cluster add` makes a node a
 * voter (a spare until it answers); `stanza cluster remove` takes nodes out (the leader itself
 * among them: it steps down); `stanza cluster transfer` hands the lead over. That the removals
 * really shrank the quorum is shown by killing three of five nodes: the remaining two of the
 * three voters still acknowledge publishes. The lead handed over again and again while a client
 * keeps publishes in flight loses no acknowledged message. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- hand-overs under load ---- */

#define TRANSFERS 12
#define BURST 64
#define MAX_MSGS 400000

/* Publishes m0, m1, ... in bursts of BURST asynchronous publishes, so that a batch is nearly
 * always replicating and being applied when the lead moves. A publish whose ack reports an
 * error (or never came) is sent again before the next burst: at the end m0..m(done-1) are all
 * acknowledged. */
static struct {
    stanConnection *sc;
    atomic_bool stop;
    atomic_int done;
    struct hcounter acks;   /* ack handler calls, errors included */
    struct hcounter bursts; /* bursts wholly acknowledged */
    pthread_mutex_t mu;
    int failed[BURST], nfailed, retries;
} L;

static void on_burst_ack(const char *guid, const char *error, void *closure)
{
    (void)guid;
    if (error && *error) {
        pthread_mutex_lock(&L.mu);
        L.failed[L.nfailed++] = (int)(intptr_t)closure;
        pthread_mutex_unlock(&L.mu);
    }
    hcounter_add(&L.acks, 1);
}

static void *burst_publisher(void *arg)
{
    (void)arg;
    int64_t expected = 0;
    for (int base = 0; !atomic_load(&L.stop) && base + BURST <= MAX_MSGS; base += BURST) {
        int todo[BURST], n = BURST;
        for (int i = 0; i < BURST; i++)
            todo[i] = base + i;
        int64_t end = harness_now_ms() + 3 * HRAFT_WAIT_MS;
        while (n > 0) {
            pthread_mutex_lock(&L.mu);
            L.nfailed = 0;
            pthread_mutex_unlock(&L.mu);
            for (int i = 0; i < n; i++) {
                char payload[16];
                snprintf(payload, sizeof payload, "m%d", todo[i]);
                if (stanConnection_PublishAsync(L.sc, "jobs", payload, (int)strlen(payload),
                                                on_burst_ack, (void *)(intptr_t)todo[i]) != NATS_OK)
                    on_burst_ack(NULL, "not sent", (void *)(intptr_t)todo[i]);
            }
            expected += n;
            /* libnats calls the handler for every publish: with an error after PubAckWait. */
            CHECK(hcounter_wait(&L.acks, expected, 3 * HRAFT_WAIT_MS));
            pthread_mutex_lock(&L.mu);
            n = L.nfailed;
            memcpy(todo, L.failed, sizeof(int) * (size_t)n);
            pthread_mutex_unlock(&L.mu);
            L.retries += n;
            CHECK(harness_now_ms() < end);
        }
        atomic_store(&L.done, base + BURST);
        hcounter_add(&L.bursts, 1);
    }
    return NULL;
}

/* The lead handed over TRANSFERS times (`stanza cluster transfer`, as a rolling upgrade does)
 * while a client keeps publishes in flight. Each new leader serves only once it holds every entry
 * its predecessor committed (the barrier of its own term applied): were it to serve earlier, it
 * would number new messages over acknowledged ones still unapplied, and these would be lost.
 * Every acknowledged message is there at the end, and every node holds the same count. */
static void test_transfers_under_load(void)
{
    hraft_start(&C, 3, NULL);
    CHECK(hraft_wait_leader(&C, HRAFT_WAIT_MS) >= 0);
    hcounter_init(&L.acks);
    hcounter_init(&L.bursts);
    pthread_mutex_init(&L.mu, NULL);
    L.sc = hraft_connect_all(&C, "transfer-load");
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, burst_publisher, NULL), 0);
    int leader = -1;
    for (int k = 0; k < TRANSFERS; k++) {
        /* Load flowing through this leader before the lead moves on. */
        CHECK(hcounter_wait(&L.bursts, hcounter_get(&L.bursts) + 4, 3 * HRAFT_WAIT_MS));
        leader = hraft_wait_leader(&C, HRAFT_WAIT_MS);
        CHECK(leader >= 0);
        struct hcli_res r;
        cluster_cmd(&r, leader, "transfer", NULL, 0);
        hcli_free(&r);
        int next = hraft_wait_leader(&C, HRAFT_WAIT_MS);
        CHECK(next >= 0 && next != leader);
        leader = next;
    }
    CHECK(hcounter_wait(&L.bursts, hcounter_get(&L.bursts) + 4, 3 * HRAFT_WAIT_MS));
    atomic_store(&L.stop, true);
    CHECK_EQ_INT(pthread_join(t, NULL), 0);
    int done = atomic_load(&L.done);
    printf("%d transfers under load: %d messages acknowledged, %d publishes sent again\n",
           TRANSFERS, done, L.retries);
    stanConnection_Close(L.sc);
    stanConnection_Destroy(L.sc);
    hraft_check_all_there(&C, leader, done);
    int64_t count = hraft_channel_msgs(&C, leader, "jobs");
    CHECK(count >= done);
    for (int i = 0; i < 3; i++)
        hraft_wait_channel_msgs(&C, i, "jobs", count);
    hcounter_destroy(&L.acks);
    hcounter_destroy(&L.bursts);
    pthread_mutex_destroy(&L.mu);
    hraft_stop(&C);
}

int main(void)
{
    TEST_RUN(test_join_add_remove_transfer);
    TEST_RUN(test_changes_refused_without_flag);
    TEST_RUN(test_transfers_under_load);
    return test_summary();
}
