/* it_stan_heartbeats: the server's heartbeats to its clients, on a server with short ones
 * (-hbi 200ms -hbt 150ms -hbf 5: a client that stops answering is closed after 6 misses, so a
 * loaded machine's slow round trips do not close a live client).
 *
 * - Client IDs of any accepted length (up to the store's 511 bytes) are heartbeated and their
 *   answers recognized: a libnats client with such an ID lives through many heartbeats and
 *   publishes and receives (the reply subject was once cut at ~190 bytes, so IDs over ~158
 *   characters were closed after a few misses).
 * - One heartbeat per hb_interval, not one per (hb_interval - hb_timeout) after each answer.
 * - A client cannot answer another's heartbeats (keeping a dead client registered): the reply
 *   subject carries a random part of each client's own. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000
#define HB_INTERVAL_MS 200
#define CLOSING "heartbeats missed, closing it"

static struct hserver srv;

/* Messages received by the client's NATS connection; -1 once libnats has closed it (as it does
 * when the server says it no longer knows the client). */
static int64_t in_msgs(stanConnection *sc)
{
    natsConnection *nc = NULL;
    natsStatistics *stats = NULL;
    uint64_t in = 0;
    if (stanConnection_GetNATSConnection(sc, &nc) != NATS_OK) return -1;
    CHECK(natsStatistics_Create(&stats) == NATS_OK);
    CHECK(natsConnection_GetStats(nc, stats) == NATS_OK);
    CHECK(natsStatistics_GetCounts(stats, &in, NULL, NULL, NULL, NULL) == NATS_OK);
    natsStatistics_Destroy(stats);
    stanConnection_ReleaseNATSConnection(sc);
    return (int64_t)in;
}

/* Waits until the client's NATS connection has received n more messages than base: here,
 * heartbeats (nothing else comes to an idle client but a ping answer every 5 s). */
static bool wait_in_msgs(stanConnection *sc, int64_t base, int64_t n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (in_msgs(sc) < base + n) {
        if (in_msgs(sc) < 0) {
            fprintf(stderr, "   the STAN connection was closed: %s\n", nats_GetLastError(NULL));
            return false;
        }
        if (harness_now_ms() > deadline) {
            fprintf(stderr, "   only %lld of %lld messages (heartbeats) arrived in %d ms\n",
                    (long long)(in_msgs(sc) - base), (long long)n, timeout_ms);
            return false;
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return true;
}

/* IDs of 400 and 511 characters (the longest the store accepts): connected, heartbeated for
 * more than twice the time after which an unrecognized client is closed, then used. */
static void test_long_client_ids(void)
{
    static const int lens[] = {400, 511};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char id[600];
        for (int k = 0; k < lens[i]; k++)
            id[k] = "abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789"[k % 64];
        id[lens[i]] = '\0';
        fprintf(stderr, "   client ID of %d characters\n", lens[i]);
        stanConnection *sc = hstan_connect_or_die(&srv, id);
        int64_t base = in_msgs(sc);
        /* 15 heartbeats take 3 s; a client whose answers go unrecognized is closed after 6
         * (1.2 s) and gets no more. */
        CHECK(wait_in_msgs(sc, base, 15, T_MS));
        CHECK_EQ_INT(hfile_count(srv.log, CLOSING), 0);

        struct hstan_rx rx;
        hstan_rx_init(&rx, 8, HSTAN_ACK_AUTO);
        stanSubscription *sub = NULL;
        CHECK(hstan_sub(&sub, sc, "hb-long", NULL, &rx, NULL) == NATS_OK);
        CHECK(hstan_pub(sc, "hb-long", "still here") == NATS_OK);
        CHECK(hstan_rx_wait(&rx, 1, T_MS));
        CHECK_EQ_STR(hstan_rx_get(&rx, 0).data, "still here");
        CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
        stanSubscription_Destroy(sub);
        hstan_rx_destroy(&rx);
        CHECK(stanConnection_Close(sc) == NATS_OK);
        CHECK(stanConnection_Destroy(sc) == NATS_OK);
        CHECK_EQ_INT(hfile_count(srv.log, CLOSING), 0);
    }
}

/* ---- a hand-made client whose heartbeats the test counts (and answers, or forges) ---- */

struct hb_client {
    natsConnection *nc;
    natsSubscription *sub;
    char inbox[128];
    bool answer;
    struct hcounter count;
    pthread_mutex_t mu;
    char last_reply[1024]; /* the reply subject of the last heartbeat */
    int64_t first_ms;      /* when the first heartbeat arrived */
};

static void on_hb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct hb_client *c = closure;
    const char *reply = natsMsg_GetReply(msg);
    pthread_mutex_lock(&c->mu);
    if (c->first_ms == 0) c->first_ms = harness_now_ms();
    snprintf(c->last_reply, sizeof(c->last_reply), "%s", reply ? reply : "");
    pthread_mutex_unlock(&c->mu);
    if (c->answer && reply) natsConnection_Publish(nc, reply, NULL, 0);
    natsMsg_Destroy(msg);
    hcounter_add(&c->count, 1);
}

static void hb_client_connect(struct hb_client *c, const char *client_id, bool answer)
{
    memset(c, 0, sizeof(*c));
    hcounter_init(&c->count);
    pthread_mutex_init(&c->mu, NULL);
    c->answer = answer;
    CHECK(hnats_connect(&srv, &c->nc) == NATS_OK);
    snprintf(c->inbox, sizeof(c->inbox), "_INBOX.hbtest.%s", client_id);
    CHECK(natsConnection_Subscribe(&c->sub, c->nc, c->inbox, on_hb, c) == NATS_OK);
    CHECK(natsConnection_Flush(c->nc) == NATS_OK);
    struct hstan_pb req = {.n = 0};
    hstan_pb_str(&req, 1, client_id);
    hstan_pb_str(&req, 2, c->inbox);
    hstan_pb_int(&req, 3, 1);
    hstan_pb_str(&req, 4, client_id); /* connID */
    hstan_pb_int(&req, 5, 60);
    hstan_pb_int(&req, 6, 3);
    natsMsg *reply = NULL;
    CHECK(natsConnection_Request(&reply, c->nc, "_STAN.discover." HSTAN_CLUSTER, req.b, (int)req.n,
                                 5000) == NATS_OK);
    char err[256];
    CHECK(hstan_pb_get_str(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 5, err,
                           sizeof(err)));
    CHECK_EQ_STR(err, "");
    natsMsg_Destroy(reply);
}

static void hb_client_close(struct hb_client *c)
{
    natsSubscription_Unsubscribe(c->sub);
    natsSubscription_Destroy(c->sub);
    natsConnection_Close(c->nc);
    natsConnection_Destroy(c->nc);
    hcounter_destroy(&c->count);
    pthread_mutex_destroy(&c->mu);
}

/* 10 heartbeats after the first take 10 intervals (2 s). Answered at once, the old schedule sent
 * the next one hb_interval - hb_timeout (50 ms) after the answer: 10 in ~0.5 s. Timers only make
 * heartbeats late, never early, so a slow machine cannot make this fail; the bound leaves a
 * quarter of the window for delivery jitter. */
static void test_one_heartbeat_per_interval(void)
{
    struct hb_client c;
    hb_client_connect(&c, "hb-period", true);
    CHECK(hcounter_wait(&c.count, 1, T_MS));
    int64_t t0 = harness_now_ms(), n0 = hcounter_get(&c.count);
    CHECK(hcounter_wait(&c.count, n0 + 10, T_MS));
    int64_t elapsed = harness_now_ms() - t0;
    fprintf(stderr, "   10 heartbeats in %lld ms (interval %d ms)\n", (long long)elapsed,
            HB_INTERVAL_MS);
    CHECK(elapsed >= 10 * HB_INTERVAL_MS * 3 / 4);
    hb_client_close(&c);
}

/* A dead client (it never answers) whose heartbeats another client tries to answer for it, on
 * every subject it could derive from its own heartbeats: the dead one is still closed. */
static void test_no_answering_for_another(void)
{
    struct hb_client dead, forger;
    hb_client_connect(&dead, "hb-dead", false);
    hb_client_connect(&forger, "hb-forger", true);
    CHECK(hcounter_wait(&forger.count, 1, T_MS));
    char own[1024];
    pthread_mutex_lock(&forger.mu);
    snprintf(own, sizeof(own), "%s", forger.last_reply);
    pthread_mutex_unlock(&forger.mu);
    fprintf(stderr, "   the forger's heartbeat reply subject: %s\n", own);
    /* Candidates: its own subject with its client ID replaced by the dead one's (the ID is the
     * last token), and with the last two tokens replaced (old form "...hb.<ID>"). */
    char *dot = strrchr(own, '.');
    CHECK(dot != NULL);
    char guess1[1100], guess2[1100];
    snprintf(guess1, sizeof(guess1), "%.*s.hb-dead", (int)(dot - own), own);
    *dot = '\0';
    char *dot2 = strrchr(own, '.');
    CHECK(dot2 != NULL);
    snprintf(guess2, sizeof(guess2), "%.*s.hb-dead", (int)(dot2 - own), own);
    fprintf(stderr, "   forging answers on %s and %s\n", guess1, guess2);
    /* Closed after 6 misses (~1.2 s) while the forged answers keep coming, unless they count. */
    int64_t deadline = harness_now_ms() + 5000;
    while (hfile_count(srv.log, "client hb-dead: ") == 0 && harness_now_ms() < deadline) {
        CHECK(natsConnection_Publish(forger.nc, guess1, NULL, 0) == NATS_OK);
        CHECK(natsConnection_Publish(forger.nc, guess2, NULL, 0) == NATS_OK);
        CHECK(natsConnection_Flush(forger.nc) == NATS_OK);
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    CHECK_EQ_INT(hfile_count(srv.log, "client hb-dead: 6 " CLOSING), 1);
    CHECK_EQ_INT(hfile_count(srv.log, "client hb-forger:"), 0);
    hb_client_close(&dead);
    hb_client_close(&forger);
}

int main(void)
{
    const char *args[] = {"--store", "MEMORY", "-hbi", "200ms", "-hbt", "150ms", "-hbf", "5", NULL};
    CHECK(harness_server_start(&srv, NULL, args) == 0);
    HSTAN_RUN(test_long_client_ids);
    HSTAN_RUN(test_one_heartbeat_per_interval);
    HSTAN_RUN(test_no_answering_for_another);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);
    nats_CloseAndWait(5000);
    return test_summary();
}
