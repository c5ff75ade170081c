/* harness_raft: clustered-mode stanzads for the it_raft_* tests (harness_raft.h). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_raft.h"
#include "test.h"

void hraft_start_node(struct hraft *c, int i)
{
    struct hraft_node *r = &c->nodes[i];
    CHECK_EQ_INT(hnode_start(&r->n, c->cports[i], c->routes, NULL, HSTAN_CLUSTER, r->extra), 0);
}

static void setup_node(struct hraft *c, int i, const char *peers, const char *const *more)
{
    struct hraft_node *r = &c->nodes[i];
    memset(r, 0, sizeof *r);
    r->mport = harness_free_port();
    snprintf(r->mport_s, sizeof r->mport_s, "%d", r->mport);
    snprintf(r->id, sizeof r->id, "n%d", i);
    CHECK_EQ_INT(hmkdtemp(r->dir, sizeof r->dir), 0);
    size_t dl = strlen(r->dir);
    memcpy(r->data, r->dir, dl);
    memcpy(r->data + dl, "/data", 6);
    const char *base[] = {
        "--clustered", "--cluster_node_id", r->id, "--store", "FILE", "--dir", r->data,
        "-m",          r->mport_s};
    size_t k = 0, max = sizeof r->extra / sizeof *r->extra;
    for (size_t m = 0; m < sizeof base / sizeof *base; m++)
        r->extra[k++] = base[m];
    if (peers) {
        r->extra[k++] = "--cluster_peers";
        r->extra[k++] = peers;
    }
    for (size_t m = 0; more && more[m] && k + 1 < max; m++)
        r->extra[k++] = more[m];
    r->extra[k] = NULL;
}

void hraft_setup(struct hraft *c, int count, int members, const char *const *more)
{
    CHECK(count <= HRAFT_MAX && members <= count);
    memset(c, 0, sizeof *c);
    c->count = count;
    char *peers = c->peers;
    for (int i = 0; i < members; i++)
        snprintf(peers + strlen(peers), sizeof c->peers - strlen(peers), "%sn%d", i ? "," : "", i);
    for (int i = 0; i < count; i++) {
        c->cports[i] = harness_free_port();
        hcluster_routes_add(c->routes, sizeof c->routes, c->cports[i]);
    }
    for (int i = 0; i < count; i++)
        setup_node(c, i, i < members ? peers : NULL, more);
}

void hraft_start(struct hraft *c, int count, const char *const *more)
{
    hraft_setup(c, count, count, more);
    for (int i = 0; i < count; i++)
        hraft_start_node(c, i);
}

void hraft_stop(struct hraft *c)
{
    for (int i = 0; i < c->count; i++) {
        struct hraft_node *r = &c->nodes[i];
        if (r->n.s.pid > 0)
            CHECK_EQ_INT(hnode_stop(&r->n), 0);
        else
            hnode_stop(&r->n); /* a halted or never started node: removes its temp dir */
        hremove_tree(r->dir);
    }
}

json_t *hraft_serverz(const struct hraft *c, int i)
{
    const struct hraft_node *r = &c->nodes[i];
    if (r->n.s.pid <= 0 || r->paused) return NULL;
    return hhttp_json(r->mport, "/streaming/serverz");
}

json_t *hraft_clusterz(const struct hraft *c, int i)
{
    const struct hraft_node *r = &c->nodes[i];
    if (r->n.s.pid <= 0 || r->paused) return NULL;
    return hhttp_json(r->mport, "/streaming/clusterz");
}

const char *hraft_role(json_t *z)
{
    const char *r = z ? json_string_value(json_object_get(z, "role")) : NULL;
    return r ? r : "";
}

uint64_t hraft_int(json_t *z, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(json_object_get(z, "raft"), key));
}

int hraft_wait_leader(const struct hraft *c, int timeout_ms)
{
    int64_t end = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < end) {
        int leader = -1, leaders = 0;
        for (int i = 0; i < c->count; i++) {
            json_t *z = hraft_serverz(c, i);
            if (strcmp(hraft_role(z), "Leader") == 0 &&
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

static int voters_of(json_t *z)
{
    int voters = 0;
    json_t *peers = json_object_get(z, "peers");
    for (size_t i = 0; i < json_array_size(peers); i++)
        voters += json_is_true(json_object_get(json_array_get(peers, i), "voter")) ? 1 : -100;
    return voters;
}

void hraft_wait_voters(const struct hraft *c, int leader, int voters)
{
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS;
    int seen = -1;
    while (harness_now_ms() < end) {
        json_t *z = hraft_clusterz(c, leader);
        seen = voters_of(z);
        json_decref(z);
        if (seen == voters) return;
        poll(NULL, 0, 20); /* between polls of a state with a deadline */
    }
    fprintf(stderr, "n%d's clusterz: %d voters (negative: spares too), want %d\n", leader, seen,
            voters);
    CHECK(seen == voters);
}

stanConnection *hraft_connect_via(const struct hraft *c, int i, const char *client_id)
{
    stanConnection *sc = NULL;
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS;
    natsStatus st;
    while ((st = hstan_connect(&c->nodes[i].n.s, HSTAN_CLUSTER, client_id, NULL, &sc)) != NATS_OK &&
           harness_now_ms() < end)
        poll(NULL, 0, 50); /* between attempts with a deadline */
    CHECK_EQ_INT(st, NATS_OK);
    return sc;
}

stanConnection *hraft_connect_all(const struct hraft *c, const char *client_id)
{
    const char *urls[HRAFT_MAX];
    int n = 0;
    for (int i = 0; i < c->count; i++)
        if (c->nodes[i].n.s.url[0]) urls[n++] = c->nodes[i].n.s.url;
    natsOptions *no = NULL;
    stanConnOptions *so = NULL;
    stanConnection *sc = NULL;
    CHECK_EQ_INT(natsOptions_Create(&no), NATS_OK);
    CHECK_EQ_INT(natsOptions_SetReconnectWait(no, 100), NATS_OK);
    CHECK_EQ_INT(natsOptions_SetMaxReconnect(no, -1), NATS_OK);
    /* libnats tries the STAN URL first, then the pool of servers. */
    CHECK_EQ_INT(natsOptions_SetServers(no, urls, n), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_Create(&so), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_SetNATSOptions(so, no), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_SetURL(so, urls[0]), NATS_OK);
    CHECK_EQ_INT(stanConnOptions_SetPubAckWait(so, 4000), NATS_OK);
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS;
    natsStatus st;
    while ((st = stanConnection_Connect(&sc, HSTAN_CLUSTER, client_id, so)) != NATS_OK &&
           harness_now_ms() < end)
        poll(NULL, 0, 50); /* the leader's subjects not routed yet: try again */
    CHECK_EQ_INT(st, NATS_OK);
    stanConnOptions_Destroy(so);
    natsOptions_Destroy(no);
    return sc;
}

void hraft_pub_many(stanConnection *sc, int first, int last)
{
    char payload[32];
    for (int i = first; i <= last; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        CHECK_EQ_INT(hstan_pub(sc, "jobs", payload), NATS_OK);
    }
}

void hraft_pub_retry(stanConnection *sc, const char *channel, const char *payload)
{
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS;
    natsStatus st;
    while ((st = stanConnection_Publish(sc, channel, payload, (int)strlen(payload))) != NATS_OK &&
           harness_now_ms() < end)
        poll(NULL, 0, 50); /* a failover or a reconnect under way: as a client would, again */
    if (st != NATS_OK)
        fprintf(stderr, "publish of %s not acknowledged within %d ms: %s\n", payload, HRAFT_WAIT_MS,
                natsStatus_GetText(st));
    CHECK_EQ_INT(st, NATS_OK);
}

void hraft_check_all_there(const struct hraft *c, int via, int count)
{
    /* The channel may hold more than count messages (a publish sent again after a failover can
     * be stored twice): every one is read, or the last ones would look missing. */
    int64_t stored = hraft_channel_msgs(c, via, "jobs");
    int expect = stored > count ? (int)stored : count, cap = expect + count;
    struct hstan_rec *recs = calloc((size_t)cap, sizeof *recs);
    bool *got = calloc((size_t)count, sizeof *got);
    CHECK(recs && got);
    int n = hstan_read_all(&c->nodes[via].n.s, "reader", "jobs", expect, recs, cap);
    CHECK(n >= count);
    for (int i = 0; i < n && i < cap; i++) {
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

/* The applied index counts batches: the leaders' barrier entries are committed, not applied. */
void hraft_check_caught_up(const struct hraft *c, int node, int leader)
{
    json_t *lz = hraft_serverz(c, leader);
    uint64_t commit = hraft_int(lz, "applied_index");
    json_decref(lz);
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS;
    uint64_t applied = 0;
    char role[32] = "";
    bool heard = false;
    while (harness_now_ms() < end) {
        json_t *z = hraft_serverz(c, node);
        snprintf(role, sizeof role, "%s", hraft_role(z));
        applied = hraft_int(z, "applied_index");
        const char *l = json_string_value(json_object_get(json_object_get(z, "raft"), "leader"));
        heard = l && strcmp(l, c->nodes[leader].id) == 0;
        json_decref(z);
        if (strcmp(role, "Follower") == 0 && heard && applied >= commit) break;
        poll(NULL, 0, 20); /* between polls of a state with a deadline */
    }
    CHECK_EQ_STR(role, "Follower");
    CHECK(heard);
    CHECK(applied >= commit);
    hraft_wait_routed(c, node);
}

void hraft_wait_routed(const struct hraft *c, int node)
{
    stanConnection *probe = hraft_connect_via(c, node, "route-probe");
    stanConnection_Close(probe);
    stanConnection_Destroy(probe);
}

int64_t hraft_channel_msgs(const struct hraft *c, int node, const char *channel)
{
    char path[256];
    snprintf(path, sizeof path, "/streaming/channelsz?channel=%s", channel);
    json_t *z = hhttp_json(c->nodes[node].mport, path);
    int64_t msgs = z ? json_integer_value(json_object_get(z, "msgs")) : -1;
    json_decref(z);
    return msgs;
}

void hraft_wait_channel_msgs(const struct hraft *c, int node, const char *channel, int64_t count)
{
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS, msgs;
    while ((msgs = hraft_channel_msgs(c, node, channel)) != count && harness_now_ms() < end)
        poll(NULL, 0, 50); /* between polls of a state with a deadline */
    CHECK_EQ_INT(msgs, count);
}

uint64_t hraft_wait_raft_int(const struct hraft *c, int node, const char *key, uint64_t min)
{
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS;
    for (;;) {
        json_t *z = hraft_serverz(c, node);
        uint64_t v = hraft_int(z, key);
        json_decref(z);
        if (v >= min || harness_now_ms() >= end) return v;
        poll(NULL, 0, 20); /* between polls of a state with a deadline */
    }
}

bool hraft_wait_log(const struct hraft *c, int node, const char *needle)
{
    int64_t end = harness_now_ms() + HRAFT_WAIT_MS;
    while (!hraft_log_has(c, node, needle)) {
        if (harness_now_ms() >= end) {
            fprintf(stderr, "n%d logged no \"%s\" within %d ms\n", node, needle, HRAFT_WAIT_MS);
            return false;
        }
        poll(NULL, 0, 20); /* between polls of a file with a deadline */
    }
    return true;
}

bool hraft_log_has(const struct hraft *c, int node, const char *needle)
{
    FILE *f = fopen(c->nodes[node].n.s.log, "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}
