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

#include "harness_raft.h"
#include "test.h"

#define NODES 3
#define LEADER_WAIT_MS HRAFT_WAIT_MS

static struct hraft C;

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

/* The leader's clusterz and metrics: every server listed, the dead one among them; the leader's
 * commit latency counted. */
static void check_clusterz(int leader, int dead)
{
    json_t *z = hhttp_json(C.nodes[leader].mport, "/streaming/clusterz");
    CHECK(z != NULL);
    CHECK_EQ_STR(hraft_role(z), "Leader");
    CHECK(json_is_true(json_object_get(z, "leading")));
    json_t *peers = json_object_get(z, "peers");
    CHECK_EQ_INT(json_array_size(peers), NODES);
    int self = 0, seen_dead = 0;
    for (size_t i = 0; i < json_array_size(peers); i++) {
        json_t *p = json_array_get(peers, i);
        const char *id = json_string_value(json_object_get(p, "node_id"));
        self += json_is_true(json_object_get(p, "self"));
        seen_dead += strcmp(id, C.nodes[dead].id) == 0;
        CHECK(json_is_true(json_object_get(p, "voter")));
        CHECK(json_object_get(p, "match_index") != NULL);
    }
    CHECK_EQ_INT(self, 1);
    CHECK_EQ_INT(seen_dead, 1);
    json_decref(z);
    CHECK(hhttp_metric(C.nodes[leader].mport, "stanza_raft_leader") == 1);
    CHECK(hhttp_metric(C.nodes[leader].mport, "stanza_raft_entry_commit_duration_seconds_count") >=
          100);
    CHECK(hhttp_metric(C.nodes[leader].mport, "stanza_raft_term") >= 2);
    /* The Raft series keep /metrics valid Prometheus text (promtool, as it_monitor checks). */
    if (access("/usr/bin/promtool", X_OK) != 0) return;
    char *body = NULL, path[PATH_MAX], out[PATH_MAX], cmd[3 * PATH_MAX];
    CHECK_EQ_INT(hhttp_get(C.nodes[leader].mport, "/metrics", &body), 200);
    snprintf(path, sizeof path, "%s/metrics.txt", C.nodes[leader].dir);
    snprintf(out, sizeof out, "%s/promtool.out", C.nodes[leader].dir);
    CHECK(hfile_write(path, body) == 0);
    free(body);
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s > %s 2>&1", path, out);
    int rc = system(cmd);
    if (rc != 0) hfile_dump("promtool", out);
    CHECK_EQ_INT(rc, 0);
}

static void test_failover_and_rejoin(void)
{
    hraft_start(&C, NODES, NULL);
    int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(leader >= 0);
    for (int i = 0; i < NODES; i++) {
        json_t *z = hraft_serverz(&C, i);
        CHECK_EQ_STR(json_string_value(json_object_get(z, "state")), "CLUSTERED");
        CHECK_EQ_INT(hraft_int(z, "voters"), NODES);
        json_decref(z);
    }
    int via = (leader + 1) % NODES; /* the client's NATS server: a follower */
    stanConnection *sc = hraft_connect_via(&C, via, "raft-client");
    char payload[32];
    for (int i = 0; i < 100; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        CHECK_EQ_INT(hstan_pub(sc, "jobs", payload), NATS_OK);
    }
    int64_t seen, rest;
    CHECK_EQ_INT(durable_take(sc, 40, true, &seen), 1);

    int64_t t0 = harness_now_ms();
    CHECK_EQ_INT(hnode_kill(&C.nodes[leader].n), 0);
    int next = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(next >= 0 && next != leader);
    printf("failover: node n%d leads %lld ms after n%d was killed\n", next,
           (long long)(harness_now_ms() - t0), leader);
    /* The same session publishes on: the new leader knows the client. */
    for (int i = 100; i < 200; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        hraft_pub_retry(sc, "jobs", payload);
    }
    hraft_check_all_there(&C, via, 200);
    check_clusterz(next, leader);
    /* The durable resumes after what it acked before the failover. */
    CHECK_EQ_INT(durable_take(sc, (int)(200 - seen), false, &rest), (uint64_t)seen + 1);

    CHECK_EQ_INT(hnode_restart(&C.nodes[leader].n), 0);
    hraft_check_caught_up(&C, leader, next);
    /* Its monitoring (a follower's: its replicated store) shows it caught up. */
    int64_t msgs = hraft_channel_msgs(&C, next, "jobs");
    CHECK(msgs >= 200);
    hraft_wait_channel_msgs(&C, leader, "jobs", msgs);
    /* The leader publishes its commit index each second; a follower shows it (readiness probes
     * compare it with what the follower applied: its own commit index only reaches what it has
     * received). */
    json_t *lz = hraft_serverz(&C, next);
    uint64_t lc = hraft_int(lz, "commit_index");
    CHECK_EQ_INT(hraft_int(lz, "leader_commit_index"), lc);
    json_decref(lz);
    CHECK(hraft_wait_raft_int(&C, leader, "leader_commit_index", lc) >= lc);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    hraft_stop(&C);
}

/* Reads "jobs" through a standalone stanzad on a node's store: m0..m(count-1) in order. */
static void check_store_alone(int node, int count)
{
    struct hserver alone;
    char mport[16];
    snprintf(mport, sizeof mport, "%d", harness_free_port());
    const char *args[] = {"--store", "FILE", "--dir", C.nodes[node].data, "-m", mport, NULL};
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
    hraft_start(&C, NODES, flags);
    int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(leader >= 0);
    int via = (leader + 1) % NODES, victim = (leader + 2) % NODES;
    stanConnection *sc = hraft_connect_via(&C, via, "rebuild-client");
    hraft_pub_many(sc, 0, 99);
    CHECK_EQ_INT(hnode_kill(&C.nodes[victim].n), 0);
    damage(victim);
    hraft_pub_many(sc, 100, 149);
    CHECK_EQ_INT(hnode_restart(&C.nodes[victim].n), 0);
    hraft_check_caught_up(&C, victim, leader);
    CHECK(hraft_log_has(&C, victim, expect));
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(harness_server_halt(&C.nodes[victim].n.s, SIGTERM), 0);
    check_store_alone(victim, 150);
    hraft_stop(&C);
}

static void wipe_data(int node)
{
    hremove_tree(C.nodes[node].data); /* the store and the Raft log */
}

/* What a machine crash leaves: the state file names an earlier boot, no clean close. */
static void machine_crash(int node)
{
    char state[PATH_MAX + 16];
    snprintf(state, sizeof state, "%s/stanza.state", C.nodes[node].data);
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

/* libraft keeps its log in memory until a snapshot and snapshots by entry counts; with
 * --cluster_log_max_memory every node also snapshots by bytes: 5 MB of publishes in a few hundred
 * entries (the threshold is 8192) leave each node with a snapshot, and a follower killed and
 * started again comes back from it and the entries kept behind it (bounded by bytes too). */
static void test_log_memory_bounded(void)
{
    static const char *const flags[] = {"--cluster_log_max_memory", "2MB", NULL};
    hraft_start(&C, NODES, flags);
    int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(leader >= 0);
    stanConnection *sc = hraft_connect_via(&C, leader, "big-client");
    static char payload[8192];
    memset(payload, 'p', sizeof payload);
    for (int i = 0; i < 640; i++)
        CHECK_EQ_INT(stanConnection_Publish(sc, "big", payload, (int)sizeof payload), NATS_OK);
    for (int i = 0; i < NODES; i++) {
        uint64_t snap = hraft_wait_raft_int(&C, i, "snapshot_index", 1);
        json_t *z = hraft_serverz(&C, i);
        uint64_t last = hraft_int(z, "last_index"), held = hraft_int(z, "log_bytes");
        json_decref(z);
        printf("n%d: snapshot at entry %llu of %llu, %llu bytes of entries since\n", i,
               (unsigned long long)snap, (unsigned long long)last, (unsigned long long)held);
        CHECK(snap > 0);
        CHECK(last < 8192); /* not the entry-count threshold */
        /* The 5 MB published are not all held: about a quarter of the store's size at most. */
        CHECK(held < 4u << 20);
    }
    int victim = (leader + 1) % NODES;
    CHECK_EQ_INT(hnode_kill(&C.nodes[victim].n), 0);
    CHECK_EQ_INT(hnode_restart(&C.nodes[victim].n), 0);
    hraft_check_caught_up(&C, victim, leader);
    hraft_wait_channel_msgs(&C, victim, "big", 640);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    hraft_stop(&C);
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
    hraft_start(&C, NODES, NULL);
    int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(leader >= 0);
    stanConnection *sc = hraft_connect_via(&C, 0, "rolling-client");
    char payload[32];
    int next = 0;
    for (int round = 0; round < NODES; round++) {
        for (int k = 0; k < 20; k++, next++) {
            snprintf(payload, sizeof payload, "m%d", next);
            hraft_pub_retry(sc, "jobs", payload);
        }
        int i = (leader + 1 + round) % NODES; /* the leader goes last */
        bool was_leader = i == hraft_wait_leader(&C, LEADER_WAIT_MS);
        int64_t t0 = harness_now_ms();
        CHECK_EQ_INT(harness_server_halt(&C.nodes[i].n.s, SIGTERM), 0);
        if (was_leader) {
            /* It tried: the hand-over itself must finish within an election timeout, which a
             * loaded machine may miss (then the others elect, as after a kill). */
            CHECK(hraft_log_has(&C, i, "lead handed to") ||
                  hraft_log_has(&C, i, "lead not handed over"));
            int now = hraft_wait_leader(&C, LEADER_WAIT_MS);
            CHECK(now >= 0 && now != i);
            printf("rolling restart: n%d led; n%d serves %lld ms after the stop began\n", i, now,
                   (long long)(harness_now_ms() - t0));
        }
        CHECK_EQ_INT(hnode_restart(&C.nodes[i].n), 0);
        hraft_check_caught_up(&C, i, hraft_wait_leader(&C, LEADER_WAIT_MS));
    }
    for (int k = 0; k < 20; k++, next++) {
        snprintf(payload, sizeof payload, "m%d", next);
        hraft_pub_retry(sc, "jobs", payload);
    }
    hraft_check_all_there(&C, 0, next);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    hraft_stop(&C);
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
    hraft_start(&C, NODES, NULL);
    int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(leader >= 0);
    int via = (leader + 1) % NODES;
    stanConnection *sc = hraft_connect_via(&C, via, "pause-client");
    hraft_pub_many(sc, 0, 49);
    CHECK_EQ_INT(kill(C.nodes[leader].n.s.pid, SIGSTOP), 0);
    C.nodes[leader].paused = true;
    int64_t t0 = harness_now_ms();
    int next = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(next >= 0 && next != leader);
    printf("paused leader n%d: n%d serves after %lld ms\n", leader, next,
           (long long)(harness_now_ms() - t0));
    /* The same session, on the new leader, once its subjects are routed to the client's node
     * (until then a publish reaches only the paused one: a client would send it again). */
    hraft_wait_routed(&C, via);
    hraft_pub_many(sc, 50, 99);
    CHECK_EQ_INT(kill(C.nodes[leader].n.s.pid, SIGCONT), 0);
    C.nodes[leader].paused = false;
    hraft_check_caught_up(&C, leader, next);
    hraft_check_all_there(&C, via, 100);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    hraft_stop(&C);
}

/* A leader cut off from both followers (paused) cannot commit; it steps down, and the publish
 * in flight is answered with an error that says the message may be stored (not "not stored":
 * the entry is in its log, and a later leader may commit it: the paused followers' sockets hold
 * it, and they read it when they resume). */
static void test_leader_without_quorum(void)
{
    hraft_start(&C, NODES, NULL);
    int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(leader >= 0);
    stanConnection *sc = hraft_connect_via(&C, leader, "quorum-client");
    hraft_pub_many(sc, 0, 9);
    for (int i = 0; i < NODES; i++) {
        if (i == leader) continue;
        CHECK_EQ_INT(kill(C.nodes[i].n.s.pid, SIGSTOP), 0);
        C.nodes[i].paused = true;
    }
    natsStatus st = stanConnection_Publish(sc, "jobs", "orphan", 6);
    CHECK(st != NATS_OK);
    CHECK(hstan_last_error_contains("leadership lost while storing the message: it may be"));
    for (int i = 0; i < NODES; i++) {
        if (i == leader) continue;
        CHECK_EQ_INT(kill(C.nodes[i].n.s.pid, SIGCONT), 0);
        C.nodes[i].paused = false;
    }
    CHECK(hraft_wait_leader(&C, LEADER_WAIT_MS) >= 0);
    hraft_pub_retry(sc, "jobs", "after");
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    hraft_stop(&C);
}

/* A leader's unacknowledged tail is discarded when it rejoins. Its followers killed (nothing it
 * appends reaches them), a publish fails; the leader paused, the two restarted elect a leader of
 * their own and commit more; resumed, the old leader follows, and its uncommitted entry gives
 * way to theirs: its store holds the ten messages and "after", never "orphan". */
static void test_unacked_tail_discarded(void)
{
    hraft_start(&C, NODES, NULL);
    int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(leader >= 0);
    stanConnection *sc = hraft_connect_via(&C, leader, "tail-client");
    hraft_pub_many(sc, 0, 9);
    for (int i = 0; i < NODES; i++)
        if (i != leader) CHECK_EQ_INT(hnode_kill(&C.nodes[i].n), 0);
    CHECK(stanConnection_Publish(sc, "jobs", "orphan", 6) != NATS_OK);
    CHECK_EQ_INT(kill(C.nodes[leader].n.s.pid, SIGSTOP), 0);
    C.nodes[leader].paused = true;
    for (int i = 0; i < NODES; i++)
        if (i != leader) CHECK_EQ_INT(hnode_restart(&C.nodes[i].n), 0);
    int next = hraft_wait_leader(&C, LEADER_WAIT_MS);
    CHECK(next >= 0 && next != leader);
    stanConnection *sc2 = hraft_connect_via(&C, next, "tail-client-2");
    hraft_pub_retry(sc2, "jobs", "after");
    CHECK_EQ_INT(kill(C.nodes[leader].n.s.pid, SIGCONT), 0);
    C.nodes[leader].paused = false;
    hraft_check_caught_up(&C, leader, next);
    hraft_wait_channel_msgs(&C, leader, "jobs", 11);
    struct hstan_rec recs[16];
    CHECK_EQ_INT(hstan_read_all(&C.nodes[leader].n.s, "tail-reader", "jobs", 11, recs, 16), 11);
    CHECK_EQ_STR(recs[10].data, "after");
    stanConnection_Close(sc2);
    stanConnection_Destroy(sc2);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    hraft_stop(&C);
}

#define KILLS 20

/* The leader SIGKILLed KILLS times in a row (restarted each time, so the next kill leaves a
 * majority) while a client publishes without pause: every acknowledged message is there at the
 * end; each failover's time is printed. */
static void test_leader_killed_repeatedly(void)
{
    hraft_start(&C, NODES, NULL);
    CHECK(hraft_wait_leader(&C, LEADER_WAIT_MS) >= 0);
    struct load l = {.sc = hraft_connect_all(&C, "load-client")};
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, publisher, &l), 0);
    int64_t worst = 0, total = 0;
    for (int k = 0; k < KILLS; k++) {
        int leader = hraft_wait_leader(&C, LEADER_WAIT_MS);
        CHECK(leader >= 0);
        int before = l.acked;
        int64_t t0 = harness_now_ms();
        CHECK_EQ_INT(hnode_kill(&C.nodes[leader].n), 0);
        int next = hraft_wait_leader(&C, LEADER_WAIT_MS);
        CHECK(next >= 0 && next != leader);
        int64_t ms = harness_now_ms() - t0;
        total += ms;
        worst = ms > worst ? ms : worst;
        printf("kill %d: n%d -> n%d in %lld ms (%d acked before)\n", k + 1, leader, next,
               (long long)ms, before);
        CHECK_EQ_INT(hnode_restart(&C.nodes[leader].n), 0);
        hraft_check_caught_up(&C, leader, next);
    }
    l.stop = true;
    CHECK_EQ_INT(pthread_join(t, NULL), 0);
    printf("%d kills: failover mean %lld ms, worst %lld ms; %d messages acked, %d publishes "
           "retried\n",
           KILLS, (long long)(total / KILLS), (long long)worst, l.acked, l.retries);
    CHECK(l.acked > 0);
    stanConnection_Close(l.sc);
    stanConnection_Destroy(l.sc);
    hraft_check_all_there(&C, 0, l.acked);
    hraft_stop(&C);
}

int main(void)
{
    TEST_RUN(test_failover_and_rejoin);
    TEST_RUN(test_wiped_follower_rebuilt_from_snapshot);
    TEST_RUN(test_log_memory_bounded);
    TEST_RUN(test_rolling_restart);
    TEST_RUN(test_machine_crash_rebuilds_store);
    TEST_RUN(test_leader_paused);
    TEST_RUN(test_leader_without_quorum);
    TEST_RUN(test_unacked_tail_discarded);
    TEST_RUN(test_leader_killed_repeatedly);
    return test_summary();
}
