/* it_raft_cluster: three stanzads in clustered mode (--clustered, NSS's flags), their embedded
 * NATS servers routed into one mesh, Raft addresses learnt over NATS. A streaming client on a
 * follower's port publishes (its requests reach the leader over the routes); the leader is
 * SIGKILLed; another node takes the lead and serves the same client session; every acknowledged
 * message is delivered, a durable subscription resumes where its acks left it, and the killed
 * node, restarted, catches up with the log. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness_cluster.h"
#include "harness_stan.h"
#include "test.h"

#define NODES 3
#define LEADER_WAIT_MS 15000

struct rnode {
    struct hnode n;
    bool paused; /* SIGSTOPped: its monitoring port would not answer */
    int mport;
    char mport_s[16], id[8], dir[PATH_MAX - 16], data[PATH_MAX];
    const char *extra[20];
};

static struct rnode nodes[NODES];
static char routes[HCLUSTER_ROUTES_LEN];
static int cports[NODES];

static void start_node(int i)
{
    struct rnode *r = &nodes[i];
    CHECK_EQ_INT(hnode_start(&r->n, cports[i], routes, NULL, HSTAN_CLUSTER, r->extra), 0);
}

/* more: extra flags for every node (NULL-terminated, or NULL; static strings). */
static void start_cluster(const char *const *more)
{
    memset(routes, 0, sizeof routes);
    for (int i = 0; i < NODES; i++) {
        cports[i] = harness_free_port();
        hcluster_routes_add(routes, sizeof routes, cports[i]);
    }
    for (int i = 0; i < NODES; i++) {
        struct rnode *r = &nodes[i];
        memset(r, 0, sizeof *r);
        r->mport = harness_free_port();
        snprintf(r->mport_s, sizeof r->mport_s, "%d", r->mport);
        snprintf(r->id, sizeof r->id, "n%d", i);
        CHECK_EQ_INT(hmkdtemp(r->dir, sizeof r->dir), 0);
        size_t dl = strlen(r->dir);
        memcpy(r->data, r->dir, dl);
        memcpy(r->data + dl, "/data", 6);
        const char *extra[] = {"--clustered", "--cluster_node_id",
                               r->id,         "--cluster_peers",
                               "n0,n1,n2",    "--store",
                               "FILE",        "--dir",
                               r->data,       "-m",
                               r->mport_s,    NULL};
        memcpy(r->extra, extra, sizeof extra);
        size_t k = sizeof extra / sizeof *extra - 1;
        for (size_t m = 0; more && more[m] && k + 1 < sizeof r->extra / sizeof *r->extra; m++)
            r->extra[k++] = more[m];
        r->extra[k] = NULL;
    }
    for (int i = 0; i < NODES; i++)
        start_node(i);
}

static void stop_cluster(void)
{
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].n.s.pid > 0)
            CHECK_EQ_INT(hnode_stop(&nodes[i].n), 0);
        else
            hnode_stop(&nodes[i].n); /* a halted node: removes its temp dir */
        hremove_tree(nodes[i].dir);
    }
}

/* The node's serverz, or NULL when it does not answer. */
static json_t *serverz(int i)
{
    if (nodes[i].n.s.pid <= 0 || nodes[i].paused) return NULL;
    return hhttp_json(nodes[i].mport, "/streaming/serverz");
}

static const char *role_of(json_t *z)
{
    const char *r = z ? json_string_value(json_object_get(z, "role")) : NULL;
    return r ? r : "";
}

static uint64_t raft_int(json_t *z, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(json_object_get(z, "raft"), key));
}

/* Waits until exactly one running node says Leader and serves (its engine answers); returns
 * its index, or -1 at the deadline. */
static int wait_leader(int timeout_ms)
{
    int64_t end = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < end) {
        int leader = -1, leaders = 0;
        for (int i = 0; i < NODES; i++) {
            json_t *z = serverz(i);
            if (strcmp(role_of(z), "Leader") == 0 &&
                strlen(json_string_value(json_object_get(z, "server_id"))) > 0) {
                leader = i;
                leaders++;
            }
            json_decref(z);
        }
        if (leaders == 1) return leader;
        poll(NULL, 0, 20); /* between polls of a state with a deadline */
    }
    fprintf(stderr, "no single serving leader within %d ms\n", timeout_ms);
    return -1;
}

/* A client connects through node i: the leader's request subjects reach the other nodes' NATS
 * servers a moment after it starts serving (route interest), and until then a connect finds
 * no responder, so it tries again, as a client would, for up to LEADER_WAIT_MS. */
static stanConnection *connect_via(int i, const char *client_id)
{
    stanConnection *sc = NULL;
    int64_t end = harness_now_ms() + LEADER_WAIT_MS;
    natsStatus st;
    while ((st = hstan_connect(&nodes[i].n.s, HSTAN_CLUSTER, client_id, NULL, &sc)) != NATS_OK &&
           harness_now_ms() < end)
        poll(NULL, 0, 50); /* between attempts with a deadline */
    CHECK_EQ_INT(st, NATS_OK);
    return sc;
}

static void pub_retry(stanConnection *sc, const char *channel, const char *payload)
{
    /* A publish whose ack never came is sent again (at-least-once), as a client would. */
    for (int attempt = 0; attempt < 5; attempt++)
        if (stanConnection_Publish(sc, channel, payload, (int)strlen(payload)) == NATS_OK) return;
    CHECK(!"publish not acknowledged after 5 attempts");
}

/* A durable subscription on "jobs" (from the first message, or where it stopped): waits for
 * want messages (auto-acked; more may come), closes (the position stays), and returns the first
 * one's sequence, with how many came in *got. */
static uint64_t durable_take(stanConnection *sc, int want, bool from_start, int64_t *got)
{
    struct hstan_rx rx;
    hstan_rx_init(&rx, 400, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    if (from_start) stanSubOptions_DeliverAllAvailable(o);
    stanSubOptions_SetDurableName(o, "dur");
    stanSubOptions_SetMaxInflight(o, want);
    stanSubscription *sub = NULL;
    CHECK_EQ_INT(hstan_sub(&sub, sc, "jobs", NULL, &rx, o), NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_rx_wait(&rx, want, 10000));
    uint64_t first = hstan_rx_get(&rx, 0).seq;
    hstan_commit_barrier(sc); /* its acks are committed */
    CHECK_EQ_INT(stanSubscription_Close(sub), NATS_OK);
    stanSubscription_Destroy(sub);
    *got = hstan_rx_count(&rx);
    hstan_rx_destroy(&rx);
    return first;
}

/* m0..m(count-1) all read back from "jobs" through node via, each at least once. */
static void check_all_there(int via, int count)
{
    struct hstan_rec *recs = calloc(2 * (size_t)count, sizeof *recs);
    bool *got = calloc((size_t)count, sizeof *got);
    int n = hstan_read_all(&nodes[via].n.s, "reader", "jobs", count, recs, 2 * count);
    CHECK(n >= count);
    for (int i = 0; i < n && i < 2 * count; i++) {
        int k;
        if (sscanf(recs[i].data, "m%d", &k) == 1 && k >= 0 && k < count) got[k] = true;
    }
    int missing = 0;
    for (int k = 0; k < count; k++)
        if (!got[k]) fprintf(stderr, "message m%d missing\n", k), missing++;
    CHECK_EQ_INT(missing, 0);
    free(got);
    free(recs);
}

/* The node, restarted, is a follower whose store holds what the leader's held (the applied
 * index counts batches: the leaders' barrier entries are committed but not applied). */
static void check_caught_up(int node, int leader)
{
    json_t *lz = serverz(leader);
    uint64_t commit = raft_int(lz, "applied_index");
    json_decref(lz);
    int64_t end = harness_now_ms() + LEADER_WAIT_MS;
    uint64_t applied = 0;
    char role[32] = "";
    bool heard = false;
    while (harness_now_ms() < end) {
        json_t *z = serverz(node);
        snprintf(role, sizeof role, "%s", role_of(z));
        applied = raft_int(z, "applied_index");
        const char *l = json_string_value(json_object_get(json_object_get(z, "raft"), "leader"));
        heard = l && strcmp(l, nodes[leader].id) == 0;
        json_decref(z);
        if (strcmp(role, "Follower") == 0 && heard && applied >= commit) break;
        poll(NULL, 0, 20); /* between polls of a state with a deadline */
    }
    CHECK_EQ_STR(role, "Follower");
    CHECK(heard);
    CHECK(applied >= commit);
    /* Its NATS server is routed again: the leader's request subjects answer through it. */
    stanConnection *probe = connect_via(node, "route-probe");
    stanConnection_Close(probe);
    stanConnection_Destroy(probe);
}

/* The leader's clusterz and metrics: every server listed, the dead one among them; the leader's
 * commit latency counted. */
static void check_clusterz(int leader, int dead)
{
    json_t *z = hhttp_json(nodes[leader].mport, "/streaming/clusterz");
    CHECK(z != NULL);
    CHECK_EQ_STR(role_of(z), "Leader");
    CHECK(json_is_true(json_object_get(z, "leading")));
    json_t *peers = json_object_get(z, "peers");
    CHECK_EQ_INT(json_array_size(peers), NODES);
    int self = 0, seen_dead = 0;
    for (size_t i = 0; i < json_array_size(peers); i++) {
        json_t *p = json_array_get(peers, i);
        const char *id = json_string_value(json_object_get(p, "node_id"));
        self += json_is_true(json_object_get(p, "self"));
        seen_dead += strcmp(id, nodes[dead].id) == 0;
        CHECK(json_is_true(json_object_get(p, "voter")));
        CHECK(json_object_get(p, "match_index") != NULL);
    }
    CHECK_EQ_INT(self, 1);
    CHECK_EQ_INT(seen_dead, 1);
    json_decref(z);
    CHECK(hhttp_metric(nodes[leader].mport, "stanza_raft_leader") == 1);
    CHECK(hhttp_metric(nodes[leader].mport, "stanza_raft_entry_commit_duration_seconds_count") >=
          100);
    CHECK(hhttp_metric(nodes[leader].mport, "stanza_raft_term") >= 2);
    /* The Raft series keep /metrics valid Prometheus text (promtool, as it_monitor checks). */
    if (access("/usr/bin/promtool", X_OK) != 0) return;
    char *body = NULL, path[PATH_MAX], out[PATH_MAX], cmd[3 * PATH_MAX];
    CHECK_EQ_INT(hhttp_get(nodes[leader].mport, "/metrics", &body), 200);
    snprintf(path, sizeof path, "%s/metrics.txt", nodes[leader].dir);
    snprintf(out, sizeof out, "%s/promtool.out", nodes[leader].dir);
    CHECK(hfile_write(path, body) == 0);
    free(body);
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s > %s 2>&1", path, out);
    int rc = system(cmd);
    if (rc != 0) hfile_dump("promtool", out);
    CHECK_EQ_INT(rc, 0);
}

static void test_failover_and_rejoin(void)
{
    start_cluster(NULL);
    int leader = wait_leader(LEADER_WAIT_MS);
    CHECK(leader >= 0);
    for (int i = 0; i < NODES; i++) {
        json_t *z = serverz(i);
        CHECK_EQ_STR(json_string_value(json_object_get(z, "state")), "CLUSTERED");
        CHECK_EQ_INT(raft_int(z, "voters"), NODES);
        json_decref(z);
    }
    int via = (leader + 1) % NODES; /* the client's NATS server: a follower */
    stanConnection *sc = connect_via(via, "raft-client");
    char payload[32];
    for (int i = 0; i < 100; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        CHECK_EQ_INT(hstan_pub(sc, "jobs", payload), NATS_OK);
    }
    int64_t seen, rest;
    CHECK_EQ_INT(durable_take(sc, 40, true, &seen), 1);

    int64_t t0 = harness_now_ms();
    CHECK_EQ_INT(hnode_kill(&nodes[leader].n), 0);
    int next = wait_leader(LEADER_WAIT_MS);
    CHECK(next >= 0 && next != leader);
    printf("failover: node n%d leads %lld ms after n%d was killed\n", next,
           (long long)(harness_now_ms() - t0), leader);
    /* The same session publishes on: the new leader knows the client. */
    for (int i = 100; i < 200; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        pub_retry(sc, "jobs", payload);
    }
    check_all_there(via, 200);
    check_clusterz(next, leader);
    /* The durable resumes after what it acked before the failover. */
    CHECK_EQ_INT(durable_take(sc, (int)(200 - seen), false, &rest), (uint64_t)seen + 1);

    CHECK_EQ_INT(hnode_restart(&nodes[leader].n), 0);
    check_caught_up(leader, next);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    stop_cluster();
}

static void pub_many(stanConnection *sc, int first, int last)
{
    char payload[32];
    for (int i = first; i <= last; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        CHECK_EQ_INT(hstan_pub(sc, "jobs", payload), NATS_OK);
    }
}

static bool log_has(const struct hserver *s, const char *needle)
{
    FILE *f = fopen(s->log, "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Reads "jobs" through a standalone stanzad on a node's store: m0..m(count-1) in order. */
static void check_store_alone(int node, int count)
{
    struct hserver alone;
    char mport[16];
    snprintf(mport, sizeof mport, "%d", harness_free_port());
    const char *args[] = {"--store", "FILE", "--dir", nodes[node].data, "-m", mport, NULL};
    CHECK_EQ_INT(harness_server_start(&alone, NULL, args), 0);
    char *body = NULL;
    CHECK_EQ_INT(hhttp_get(atoi(mport), "/streaming/clusterz", &body), 404);
    free(body);
    struct hstan_rec *recs = calloc(2 * (size_t)count, sizeof *recs);
    int n = hstan_read_all(&alone, "alone-reader", "jobs", count, recs, 2 * count);
    CHECK_EQ_INT(n, count);
    for (int i = 0; i < count; i++) {
        char want[16];
        snprintf(want, sizeof want, "m%d", i);
        CHECK_EQ_STR(recs[i].data, want);
    }
    free(recs);
    CHECK_EQ_INT(harness_server_stop(&alone, SIGTERM), 0);
}

/* A follower is killed and its data directory damaged (damage(node)); the cluster goes on; the
 * follower, restarted, logs `expect`, catches up, and its store, opened by a standalone
 * stanzad, holds every message in order. */
static void rebuild_case(const char *const *flags, void (*damage)(int node), const char *expect)
{
    start_cluster(flags);
    int leader = wait_leader(LEADER_WAIT_MS);
    CHECK(leader >= 0);
    int via = (leader + 1) % NODES, victim = (leader + 2) % NODES;
    stanConnection *sc = connect_via(via, "rebuild-client");
    pub_many(sc, 0, 99);
    CHECK_EQ_INT(hnode_kill(&nodes[victim].n), 0);
    damage(victim);
    pub_many(sc, 100, 149);
    CHECK_EQ_INT(hnode_restart(&nodes[victim].n), 0);
    check_caught_up(victim, leader);
    CHECK(log_has(&nodes[victim].n.s, expect));
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(harness_server_halt(&nodes[victim].n.s, SIGTERM), 0);
    check_store_alone(victim, 150);
    stop_cluster();
}

static void wipe_data(int node)
{
    hremove_tree(nodes[node].data); /* the store and the Raft log */
}

/* What a machine crash leaves: the state file names an earlier boot, no clean close. */
static void machine_crash(int node)
{
    char state[PATH_MAX + 16];
    snprintf(state, sizeof state, "%s/stanza.state", nodes[node].data);
    CHECK(hfile_write(state, "an-earlier-boot dirty\n") == 0);
}

/* Snapshots every few entries: a follower whose whole data directory is wiped comes back and
 * gets the leader's snapshot (the log before it is gone). */
static void test_wiped_follower_rebuilt_from_snapshot(void)
{
    static const char *const snap[] = {"--cluster_snapshot_threshold", "8",
                                       "--cluster_trailing_logs", "2", NULL};
    rebuild_case(snap, wipe_data, "restored from the snapshot");
}

/* The stores run without fsync (the Raft log is the durable copy): after a machine crash the
 * follower drops its data file at start and is filled again from the log. */
static void test_machine_crash_rebuilds_store(void)
{
    rebuild_case(NULL, machine_crash, "the machine restarted since");
}

/* Every node stopped (SIGTERM) and started again in turn, the leader among them, while a client
 * publishes through one of them: every publish is acknowledged (after retries across its own
 * node's restart), every message is there at the end, and a stopped leader hands the lead over
 * instead of leaving the others to wait for an election timeout. */
static void test_rolling_restart(void)
{
    start_cluster(NULL);
    int leader = wait_leader(LEADER_WAIT_MS);
    CHECK(leader >= 0);
    stanConnection *sc = connect_via(0, "rolling-client");
    char payload[32];
    int next = 0;
    for (int round = 0; round < NODES; round++) {
        for (int k = 0; k < 20; k++, next++) {
            snprintf(payload, sizeof payload, "m%d", next);
            pub_retry(sc, "jobs", payload);
        }
        int i = (leader + 1 + round) % NODES; /* the leader goes last */
        bool was_leader = i == wait_leader(LEADER_WAIT_MS);
        int64_t t0 = harness_now_ms();
        CHECK_EQ_INT(harness_server_halt(&nodes[i].n.s, SIGTERM), 0);
        if (was_leader) {
            /* It tried: the hand-over itself must finish within an election timeout, which a
             * loaded machine may miss (then the others elect, as after a kill). */
            CHECK(log_has(&nodes[i].n.s, "lead handed to") ||
                  log_has(&nodes[i].n.s, "lead not handed over"));
            int now = wait_leader(LEADER_WAIT_MS);
            CHECK(now >= 0 && now != i);
            printf("rolling restart: n%d led; n%d serves %lld ms after the stop began\n", i, now,
                   (long long)(harness_now_ms() - t0));
        }
        CHECK_EQ_INT(hnode_restart(&nodes[i].n), 0);
        check_caught_up(i, wait_leader(LEADER_WAIT_MS));
    }
    for (int k = 0; k < 20; k++, next++) {
        snprintf(payload, sizeof payload, "m%d", next);
        pub_retry(sc, "jobs", payload);
    }
    check_all_there(0, next);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    stop_cluster();
}

/* A client given every node's URL (it reconnects to another when its node dies). */
static stanConnection *connect_all(const char *client_id)
{
    const char *urls[NODES];
    for (int i = 0; i < NODES; i++)
        urls[i] = nodes[i].n.s.url;
    natsOptions *no = NULL;
    stanConnOptions *so = NULL;
    stanConnection *sc = NULL;
    CHECK_EQ_INT(natsOptions_Create(&no), NATS_OK);
    CHECK_EQ_INT(natsOptions_SetReconnectWait(no, 100), NATS_OK);
    CHECK_EQ_INT(natsOptions_SetMaxReconnect(no, -1), NATS_OK);
    /* libnats tries the STAN URL first, then the pool of servers. */
    CHECK_EQ_INT(natsOptions_SetServers(no, urls, NODES), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_Create(&so), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_SetNATSOptions(so, no), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_SetURL(so, urls[0]), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_SetPubAckWait(so, 4000), NATS_OK);
    int64_t end = harness_now_ms() + LEADER_WAIT_MS;
    natsStatus st;
    while ((st = stanConnection_Connect(&sc, HSTAN_CLUSTER, client_id, so)) != NATS_OK &&
           harness_now_ms() < end)
        poll(NULL, 0, 50); /* the leader's subjects not routed yet: try again */
    CHECK_EQ_INT(st, NATS_OK);
    stanConnOptions_Destroy(so);
    natsOptions_Destroy(no);
    return sc;
}

struct load {
    stanConnection *sc;
    volatile bool stop;
    volatile int acked; /* m0..m(acked-1) acknowledged */
    int retries;
};

/* Publishes m0, m1, ... synchronously until told to stop; a publish not acknowledged is sent
 * again (at-least-once), for as long as a failover takes. */
static void *publisher(void *arg)
{
    struct load *l = arg;
    char payload[32];
    for (int i = 0; !l->stop; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        int64_t end = harness_now_ms() + 3 * LEADER_WAIT_MS;
        while (stanConnection_Publish(l->sc, "jobs", payload, (int)strlen(payload)) != NATS_OK) {
            l->retries++;
            CHECK(harness_now_ms() < end);
        }
        l->acked = i + 1;
    }
    return NULL;
}

/* The leader paused (SIGSTOP: alive, silent, as a machine cut off): the others elect a leader
 * that serves; resumed, the old leader finds a newer term, follows, and catches up. */
static void test_leader_paused(void)
{
    start_cluster(NULL);
    int leader = wait_leader(LEADER_WAIT_MS);
    CHECK(leader >= 0);
    int via = (leader + 1) % NODES;
    stanConnection *sc = connect_via(via, "pause-client");
    pub_many(sc, 0, 49);
    CHECK_EQ_INT(kill(nodes[leader].n.s.pid, SIGSTOP), 0);
    nodes[leader].paused = true;
    int64_t t0 = harness_now_ms();
    int next = wait_leader(LEADER_WAIT_MS);
    CHECK(next >= 0 && next != leader);
    printf("paused leader n%d: n%d serves after %lld ms\n", leader, next,
           (long long)(harness_now_ms() - t0));
    pub_many(sc, 50, 99); /* the same session, on the new leader */
    CHECK_EQ_INT(kill(nodes[leader].n.s.pid, SIGCONT), 0);
    nodes[leader].paused = false;
    check_caught_up(leader, next);
    check_all_there(via, 100);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    stop_cluster();
}

/* A leader cut off from both followers (paused) cannot commit; it steps down, and the publish
 * in flight is answered with an error that says the message may be stored (not "not stored":
 * the entry is in its log, and a later leader may commit it). */
static void test_leader_without_quorum(void)
{
    start_cluster(NULL);
    int leader = wait_leader(LEADER_WAIT_MS);
    CHECK(leader >= 0);
    stanConnection *sc = connect_via(leader, "quorum-client");
    pub_many(sc, 0, 9);
    for (int i = 0; i < NODES; i++) {
        if (i == leader) continue;
        CHECK_EQ_INT(kill(nodes[i].n.s.pid, SIGSTOP), 0);
        nodes[i].paused = true;
    }
    natsStatus st = stanConnection_Publish(sc, "jobs", "orphan", 6);
    CHECK(st != NATS_OK);
    CHECK(hstan_last_error_contains("leadership lost while storing the message: it may be"));
    for (int i = 0; i < NODES; i++) {
        if (i == leader) continue;
        CHECK_EQ_INT(kill(nodes[i].n.s.pid, SIGCONT), 0);
        nodes[i].paused = false;
    }
    CHECK(wait_leader(LEADER_WAIT_MS) >= 0);
    pub_retry(sc, "jobs", "after");
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    stop_cluster();
}

#define KILLS 20

/* The leader SIGKILLed KILLS times in a row (restarted each time, so the next kill leaves a
 * majority) while a client publishes without pause: every acknowledged message is there at the
 * end; each failover's time is printed. */
static void test_leader_killed_repeatedly(void)
{
    start_cluster(NULL);
    CHECK(wait_leader(LEADER_WAIT_MS) >= 0);
    struct load l = {.sc = connect_all("load-client")};
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, publisher, &l), 0);
    int64_t worst = 0, total = 0;
    for (int k = 0; k < KILLS; k++) {
        int leader = wait_leader(LEADER_WAIT_MS);
        CHECK(leader >= 0);
        int before = l.acked;
        int64_t t0 = harness_now_ms();
        CHECK_EQ_INT(hnode_kill(&nodes[leader].n), 0);
        int next = wait_leader(LEADER_WAIT_MS);
        CHECK(next >= 0 && next != leader);
        int64_t ms = harness_now_ms() - t0;
        total += ms;
        worst = ms > worst ? ms : worst;
        printf("kill %d: n%d -> n%d in %lld ms (%d acked before)\n", k + 1, leader, next,
               (long long)ms, before);
        CHECK_EQ_INT(hnode_restart(&nodes[leader].n), 0);
        check_caught_up(leader, next);
    }
    l.stop = true;
    CHECK_EQ_INT(pthread_join(t, NULL), 0);
    printf("%d kills: failover mean %lld ms, worst %lld ms; %d messages acked, %d publishes "
           "retried\n",
           KILLS, (long long)(total / KILLS), (long long)worst, l.acked, l.retries);
    CHECK(l.acked > 0);
    stanConnection_Close(l.sc);
    stanConnection_Destroy(l.sc);
    check_all_there(0, l.acked);
    stop_cluster();
}

int main(void)
{
    TEST_RUN(test_failover_and_rejoin);
    TEST_RUN(test_wiped_follower_rebuilt_from_snapshot);
    TEST_RUN(test_rolling_restart);
    TEST_RUN(test_machine_crash_rebuilds_store);
    TEST_RUN(test_leader_paused);
    TEST_RUN(test_leader_without_quorum);
    TEST_RUN(test_leader_killed_repeatedly);
    return test_summary();
}
