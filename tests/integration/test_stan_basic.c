/* it_stan_basic: STAN connections, publishing, start positions and acknowledgement, through the
 * real libnats streaming client against stanzad (NSS semantics, see stan-reference.md).
 *
 * Nothing is concluded after a sleep. A message that must NOT arrive is ruled out by order: the
 * server delivers a subscription's messages in sequence order, so when a later message (often one
 * the test publishes as a marker) is the next to arrive, nothing before it was coming. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 5000       /* deadline for anything that should be immediate */
#define T_LONG_MS 10000 /* deadline for bulk transfers and timed redeliveries */

static struct hserver srv; /* MEMORY store, shared by all tests; each uses its own channels */

/* Records [from, from+n) hold sequences first..first+n-1, first deliveries, payload "m<seq>". */
static void expect_run(struct hstan_rx *rx, int from, uint64_t first, int n)
{
    for (int k = 0; k < n; k++) {
        struct hstan_rec r = hstan_rx_get(rx, from + k);
        char want[32];
        snprintf(want, sizeof(want), "m%llu", (unsigned long long)(first + (uint64_t)k));
        if (r.seq != first + (uint64_t)k || r.redelivered || strcmp(r.data, want) != 0) {
            fprintf(stderr, "record %d: want seq %llu \"%s\"\n", from + k,
                    (unsigned long long)(first + (uint64_t)k), want);
            hstan_rx_dump(rx, "received");
            CHECK(false);
        }
    }
}

/* Waits until the wall clock (the one STAN timestamps use) is past t_ms. Time itself is the event
 * a time-based start position is about; the wait is bounded. */
static void wait_wall_clock_past(int64_t t_ms)
{
    int64_t deadline = harness_now_ms() + T_MS;
    while (nats_Now() <= t_ms) {
        CHECK(harness_now_ms() < deadline);
        poll(NULL, 0, 10);
    }
}

static void test_connect_close(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "basic-cc");
    CHECK(hstan_pub(sc, "cc", "hello") == NATS_OK);
    CHECK(stanConnection_Close(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    /* Closed means unregistered: the same client ID connects again at once. */
    sc = hstan_connect_or_die(&srv, "basic-cc");
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
}

static void test_duplicate_client_id(void)
{
    stanConnection *a = hstan_connect_or_die(&srv, "dup");
    stanConnection *b = NULL;
    /* The first one answers the server's heartbeat probe, so it is alive: rejected. */
    CHECK(hstan_connect(&srv, HSTAN_CLUSTER, "dup", NULL, &b) != NATS_OK);
    CHECK(b == NULL);
    CHECK(hstan_last_error_contains("clientID already registered"));
    /* The first connection is unharmed. */
    CHECK(hstan_pub(a, "dup", "still here") == NATS_OK);
    CHECK(stanConnection_Destroy(a) == NATS_OK);
    b = hstan_connect_or_die(&srv, "dup");
    CHECK(stanConnection_Destroy(b) == NATS_OK);
}

static void test_dead_client_is_replaced(void)
{
    char err[256];
    /* A registered client whose heartbeat inbox nobody answers (it died without closing). */
    struct hstan_raw ghost;
    CHECK(hstan_raw_connect(&ghost, &srv, "ghost", false, err, sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    CHECK(ghost.pub_prefix[0] && ghost.sub_requests[0] && ghost.close_requests[0]);
    CHECK(ghost.unsub_requests[0] && ghost.sub_close_requests[0]);
    int64_t t0 = harness_now_ms();
    stanConnection *sc = hstan_connect_or_die(&srv, "ghost");
    /* The probe of the old client is short (NSS: 500 ms), well inside the connect wait. */
    CHECK(harness_now_ms() - t0 < HSTAN_CONNECT_WAIT_MS);
    CHECK(hstan_pub(sc, "ghost", "replaced") == NATS_OK);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    natsConnection_Close(ghost.nc); /* no CloseRequest: it was replaced */
    natsConnection_Destroy(ghost.nc);

    /* The same through the raw client, but answering heartbeats: it is alive, so rejected. */
    struct hstan_raw alive;
    CHECK(hstan_raw_connect(&alive, &srv, "alive", true, err, sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    sc = NULL;
    CHECK(hstan_connect(&srv, HSTAN_CLUSTER, "alive", NULL, &sc) != NATS_OK);
    CHECK(hstan_last_error_contains("clientID already registered"));
    hstan_raw_close(&alive);
}

static void test_invalid_client_id(void)
{
    const char *bad[] = {"a.b", "a b", "a*b", "a>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        stanConnection *sc = NULL;
        natsStatus st = hstan_connect(&srv, HSTAN_CLUSTER, bad[i], NULL, &sc);
        if (st == NATS_OK) fprintf(stderr, "client ID \"%s\" was accepted\n", bad[i]);
        CHECK(st != NATS_OK);
        CHECK(hstan_last_error_contains("invalid clientID"));
    }
    /* The allowed alphabet: letters, digits, '-' and '_'. */
    stanConnection *sc = hstan_connect_or_die(&srv, "Ok_id-09");
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
}

static void test_wrong_cluster_id(void)
{
    stanConnection *sc = NULL;
    int64_t t0 = harness_now_ms();
    natsStatus st = hstan_connect(&srv, "no-such-cluster", "wrong-cid", NULL, &sc);
    int64_t took = harness_now_ms() - t0;
    fprintf(stderr, "   wrong cluster: %s (%s) after %lld ms\n", natsStatus_GetText(st),
            nats_GetLastError(NULL), (long long)took);
    /* Nobody serves that discover subject: a timeout, or at once "no responders". */
    CHECK(st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS);
    CHECK(sc == NULL);
    CHECK(took < HSTAN_CONNECT_WAIT_MS + 2000);
}

/* Async publish bookkeeping: which indexes were acked, and with what. */
struct acks {
    struct hcounter count;
    int ok[128];
    int errors;
    char guids[128][64];
};

struct ack_slot {
    struct acks *acks;
    int index;
};

static void slot_ack_handler(const char *guid, const char *error, void *closure)
{
    struct ack_slot *slot = closure;
    struct acks *a = slot->acks;
    pthread_mutex_lock(&a->count.mu);
    if (error && *error) {
        fprintf(stderr, "async publish %d: error \"%s\"\n", slot->index, error);
        a->errors++;
    } else {
        a->ok[slot->index]++;
    }
    snprintf(a->guids[slot->index], sizeof(a->guids[0]), "%s", guid ? guid : "");
    a->count.n++;
    pthread_cond_broadcast(&a->count.cv);
    pthread_mutex_unlock(&a->count.mu);
}

static void test_publish_sync_and_async(void)
{
    enum { NSYNC = 10, NASYNC = 100 };
    stanConnection *sc = hstan_connect_or_die(&srv, "pub");
    hstan_pub_range(sc, "pub", "m%d", 1, NSYNC);

    static struct acks acks;
    static struct ack_slot slots[NASYNC];
    memset(&acks, 0, sizeof(acks));
    hcounter_init(&acks.count);
    for (int i = 0; i < NASYNC; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "m%d", NSYNC + 1 + i);
        slots[i] = (struct ack_slot){&acks, i};
        CHECK(stanConnection_PublishAsync(sc, "pub", buf, n, slot_ack_handler, &slots[i]) ==
              NATS_OK);
    }
    CHECK(hcounter_wait(&acks.count, NASYNC, T_LONG_MS));
    CHECK_EQ_INT(acks.errors, 0);
    for (int i = 0; i < NASYNC; i++) {
        CHECK_EQ_INT(acks.ok[i], 1);
        CHECK(acks.guids[i][0] != '\0');
        for (int j = 0; j < i; j++)
            CHECK(strcmp(acks.guids[i], acks.guids[j]) != 0);
    }

    /* Every one was stored, in publish order. */
    struct hstan_rx rx;
    hstan_rx_init(&rx, NSYNC + NASYNC, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "pub", NULL, &rx, o) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, NSYNC + NASYNC, T_LONG_MS));
    expect_run(&rx, 0, 1, NSYNC + NASYNC);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
    hcounter_destroy(&acks.count);
}

/* Subscribes to a channel that already holds m1..m5 with the given start option, publishes m6,
 * and checks that the deliveries are exactly first..6. */
enum start { NEW_ONLY, LAST_RECEIVED, FIRST, AT_SEQ_3, AT_SEQ_100 };

static void check_start(const char *channel, enum start how, uint64_t first)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "start");
    hstan_pub_range(sc, channel, "m%d", 1, 5);
    stanSubOptions *o = hstan_subopts();
    switch (how) {
    case NEW_ONLY:
        break; /* the default */
    case LAST_RECEIVED:
        CHECK(stanSubOptions_StartWithLastReceived(o) == NATS_OK);
        break;
    case FIRST:
        CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
        break;
    case AT_SEQ_3:
        CHECK(stanSubOptions_StartAtSequence(o, 3) == NATS_OK);
        break;
    case AT_SEQ_100:
        CHECK(stanSubOptions_StartAtSequence(o, 100) == NATS_OK);
        break;
    }
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_AUTO);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, channel, NULL, &rx, o) == NATS_OK);
    int before = (int)(6 - first); /* deliveries expected before m6 is published */
    if (before > 0) CHECK(hstan_rx_wait(&rx, before, T_MS));
    CHECK(hstan_pub(sc, channel, "m6") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, before + 1, T_MS));
    /* m6 is the last message: once it is in, the deliveries are complete. */
    CHECK_EQ_INT(hstan_rx_count(&rx), before + 1);
    expect_run(&rx, 0, first, before + 1);

    if (how == FIRST) {
        /* Timestamps: server-assigned nanoseconds since the epoch, near now, non-decreasing. */
        int64_t now_ms = nats_Now();
        for (int i = 0; i < 6; i++) {
            struct hstan_rec r = hstan_rx_get(&rx, i);
            CHECK(r.ts > 1000000000000000000LL); /* ns, not ms or s */
            CHECK(r.ts / 1000000 > now_ms - 60000 && r.ts / 1000000 <= now_ms + 5000);
            if (i > 0) CHECK(r.ts >= hstan_rx_get(&rx, i - 1).ts);
        }
    }
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
}

static void test_start_new_only(void)
{
    check_start("start.new", NEW_ONLY, 6);
}

static void test_start_last_received(void)
{
    check_start("start.last", LAST_RECEIVED, 5);
}

static void test_start_first(void)
{
    check_start("start.first", FIRST, 1);
}

static void test_start_at_sequence(void)
{
    check_start("start.seq", AT_SEQ_3, 3);
    /* Beyond the end: clamped to last+1, i.e. only new messages. */
    check_start("start.seqhigh", AT_SEQ_100, 6);
    /* libnats itself refuses sequence 0. */
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_StartAtSequence(o, 0) != NATS_OK);
    stanSubOptions_Destroy(o);
}

static void test_start_at_time(void)
{
    const char *ch = "start.time";
    stanConnection *sc = hstan_connect_or_die(&srv, "start-time");
    hstan_pub_range(sc, ch, "m%d", 1, 3);
    /* Learn the stored timestamps. */
    struct hstan_rx all;
    hstan_rx_init(&all, 16, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, ch, NULL, &all, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_rx_wait(&all, 3, T_MS));
    wait_wall_clock_past(hstan_rx_get(&all, 2).ts / 1000000 + 400);
    hstan_pub_range(sc, ch, "m%d", 4, 6);
    CHECK(hstan_rx_wait(&all, 6, T_MS));
    int64_t old_ms = hstan_rx_get(&all, 2).ts / 1000000,
            new_ms = hstan_rx_get(&all, 3).ts / 1000000;
    CHECK(new_ms - old_ms >= 300);
    int64_t boundary_ms = (old_ms + new_ms) / 2;

    for (int absolute = 0; absolute < 2; absolute++) {
        struct hstan_rx rx;
        hstan_rx_init(&rx, 16, HSTAN_ACK_AUTO);
        o = hstan_subopts();
        if (absolute)
            CHECK(stanSubOptions_StartAtTime(o, boundary_ms) == NATS_OK);
        else
            CHECK(stanSubOptions_StartAtTimeDelta(o, nats_Now() - boundary_ms) == NATS_OK);
        stanSubscription *ts_sub = NULL;
        CHECK(hstan_sub(&ts_sub, sc, ch, NULL, &rx, o) == NATS_OK);
        stanSubOptions_Destroy(o);
        CHECK(hstan_rx_wait(&rx, 3, T_MS));
        expect_run(&rx, 0, 4, 3);
        CHECK(stanSubscription_Unsubscribe(ts_sub) == NATS_OK);
        stanSubscription_Destroy(ts_sub);
        hstan_rx_destroy(&rx);
    }
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&all);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
}

static void test_invalid_ack_wait_and_inflight(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "opts");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 4, HSTAN_ACK_AUTO);
    /* 500 ms travels as ackWaitInSecs 0: the server refuses it. */
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetAckWait(o, 500) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "opts", NULL, &rx, o) != NATS_OK);
    CHECK(sub == NULL);
    CHECK(hstan_last_error_contains("invalid ack wait"));
    stanSubOptions_Destroy(o);

    /* MaxInflight 0: libnats refuses to send it, so ask the server directly. */
    o = hstan_subopts();
    CHECK(stanSubOptions_SetMaxInflight(o, 0) != NATS_OK);
    stanSubOptions_Destroy(o);
    struct hstan_raw raw;
    char err[256], ack_inbox[256];
    CHECK(hstan_raw_connect(&raw, &srv, "raw-opts", true, err, sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    CHECK(hstan_raw_subscribe(&raw, "opts", NULL, NULL, 0, 30, ack_inbox, sizeof(ack_inbox), err,
                              sizeof(err)) == NATS_OK);
    if (!strstr(err, "invalid MaxInflight")) fprintf(stderr, "server said \"%s\"\n", err);
    CHECK(strstr(err, "invalid MaxInflight") != NULL);
    CHECK_EQ_STR(ack_inbox, "");
    CHECK(hstan_raw_subscribe(&raw, "opts", NULL, NULL, 1, 0, ack_inbox, sizeof(ack_inbox), err,
                              sizeof(err)) == NATS_OK);
    CHECK(strstr(err, "invalid ack wait") != NULL);
    /* The same request with sane values is accepted (the checks above were about the values). */
    CHECK(hstan_raw_subscribe(&raw, "opts", NULL, NULL, 1, 30, ack_inbox, sizeof(ack_inbox), err,
                              sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    CHECK(ack_inbox[0] != '\0');
    hstan_raw_close(&raw);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
}

static void test_max_inflight_one(void)
{
    enum { N = 5 };
    const char *ch = "inflight1";
    stanConnection *pc = hstan_connect_or_die(&srv, "if1-pub");
    stanConnection *sc = hstan_connect_or_die(&srv, "if1-sub");
    hstan_pub_range(pc, ch, "m%d", 1, N);
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_TEST);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 1) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, ch, NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    for (int k = 0; k < N; k++) {
        CHECK(hstan_rx_wait(&rx, k + 1, T_MS));
        /* With message k unacked, nothing else may come. The server has m1..m5 already; give it
         * every chance to misbehave: a full publish round trip on the same channel's server
         * (another channel, so nothing new is deliverable), then a round trip on the
         * subscriber's own connection, which brings in anything the server sent before. */
        CHECK(hstan_pub(pc, "inflight1.other", "x") == NATS_OK);
        hstan_flush(sc);
        CHECK_EQ_INT(hstan_rx_count(&rx), k + 1);
        CHECK(hstan_rx_ack(&rx, k) == NATS_OK);
    }
    expect_run(&rx, 0, 1, N);
    /* And each message arrived only after the ack of the one before. */
    for (int k = 0; k < N; k++)
        CHECK_EQ_INT(hstan_rx_get(&rx, k).acks_before, k);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rx);
}

static void test_ack_wait_redelivery(void)
{
    const char *ch = "ackwait";
    stanConnection *sc = hstan_connect_or_die(&srv, "ackwait");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_TEST);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetAckWait(o, 1000) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, ch, NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);

    CHECK(hstan_pub(sc, ch, "m1") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    int64_t t_first = harness_now_ms();
    expect_run(&rx, 0, 1, 1);
    /* Not acked: back after the ack wait (1 s), flagged as redelivered. */
    CHECK(hstan_rx_wait(&rx, 2, T_LONG_MS));
    int64_t gap = harness_now_ms() - t_first;
    struct hstan_rec r = hstan_rx_get(&rx, 1);
    CHECK_EQ_INT(r.seq, 1);
    CHECK(r.redelivered);
    CHECK_EQ_STR(r.data, "m1");
    fprintf(stderr, "   redelivered after %lld ms\n", (long long)gap);
    CHECK(gap >= 800);
    CHECK(hstan_rx_ack(&rx, 1) == NATS_OK);

    /* Acked, it stops. Proof: m2, left unacked, is redelivered a second later; m1 would have come
     * back before it if its ack had been ignored. */
    CHECK(hstan_pub(sc, ch, "m2") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 3, T_MS));
    expect_run(&rx, 2, 2, 1);
    CHECK(hstan_rx_wait(&rx, 4, T_LONG_MS));
    r = hstan_rx_get(&rx, 3);
    if (r.seq != 2) hstan_rx_dump(&rx, "after the ack of m1");
    CHECK_EQ_INT(r.seq, 2);
    CHECK(r.redelivered);
    CHECK(hstan_rx_ack(&rx, 3) == NATS_OK);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
}

/* A durable "d" with MaxInflight 1 and manual acks, starting at the first message. */
static stanSubscription *sub_durable_one(stanConnection *sc, const char *ch, struct hstan_rx *rx)
{
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, "d") == NATS_OK);
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 1) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, ch, NULL, rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    return sub;
}

static void test_durable_close_vs_unsubscribe(void)
{
    const char *ch = "dcu";
    stanConnection *sc = hstan_connect_or_die(&srv, "dcu");
    hstan_pub_range(sc, ch, "m%d", 1, 3);

    struct hstan_rx rx1;
    hstan_rx_init(&rx1, 16, HSTAN_ACK_TEST);
    stanSubscription *sub = sub_durable_one(sc, ch, &rx1);
    CHECK(hstan_rx_wait(&rx1, 1, T_MS));
    CHECK(hstan_rx_ack(&rx1, 0) == NATS_OK);
    CHECK(hstan_rx_wait(&rx1, 2, T_MS));
    CHECK(hstan_rx_ack(&rx1, 1) == NATS_OK);
    CHECK(hstan_rx_wait(&rx1, 3, T_MS)); /* m3 came: the ack of m2 was processed */
    expect_run(&rx1, 0, 1, 3);
    /* Close keeps the durable: its position and its pending m3. */
    CHECK(stanSubscription_Close(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    hstan_pub_range(sc, ch, "m%d", 4, 5);

    struct hstan_rx rx2;
    hstan_rx_init(&rx2, 16, HSTAN_ACK_TEST);
    sub = sub_durable_one(sc, ch, &rx2); /* DeliverAllAvailable is ignored on resume */
    CHECK(hstan_rx_wait(&rx2, 1, T_MS));
    struct hstan_rec r = hstan_rx_get(&rx2, 0);
    CHECK_EQ_INT(r.seq, 3);
    CHECK(r.redelivered);
    CHECK(hstan_rx_ack(&rx2, 0) == NATS_OK);
    CHECK(hstan_rx_wait(&rx2, 2, T_MS));
    CHECK(hstan_rx_ack(&rx2, 1) == NATS_OK);
    CHECK(hstan_rx_wait(&rx2, 3, T_MS));
    CHECK(hstan_rx_ack(&rx2, 2) == NATS_OK);
    expect_run(&rx2, 1, 4, 2);
    /* Unsubscribe deletes it: the same name starts over from the first message. */
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(hstan_pub(sc, ch, "m6") == NATS_OK);

    struct hstan_rx rx3;
    hstan_rx_init(&rx3, 16, HSTAN_ACK_HANDLER);
    sub = sub_durable_one(sc, ch, &rx3);
    CHECK(hstan_rx_wait(&rx3, 6, T_MS));
    expect_run(&rx3, 0, 1, 6);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx1);
    hstan_rx_destroy(&rx2);
    hstan_rx_destroy(&rx3);
}

int main(void)
{
    const char *args[] = {"--store", "MEMORY", NULL};
    CHECK(harness_server_start(&srv, NULL, args) == 0);
    HSTAN_RUN(test_connect_close);
    HSTAN_RUN(test_duplicate_client_id);
    HSTAN_RUN(test_dead_client_is_replaced);
    HSTAN_RUN(test_invalid_client_id);
    HSTAN_RUN(test_wrong_cluster_id);
    HSTAN_RUN(test_publish_sync_and_async);
    HSTAN_RUN(test_start_new_only);
    HSTAN_RUN(test_start_last_received);
    HSTAN_RUN(test_start_first);
    HSTAN_RUN(test_start_at_sequence);
    HSTAN_RUN(test_start_at_time);
    HSTAN_RUN(test_invalid_ack_wait_and_inflight);
    HSTAN_RUN(test_max_inflight_one);
    HSTAN_RUN(test_ack_wait_redelivery);
    HSTAN_RUN(test_durable_close_vs_unsubscribe);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);
    nats_CloseAndWait(5000);
    return test_summary();
}
