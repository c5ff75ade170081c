/* it_stan_persist: what the store keeps (NSS semantics, stan-reference.md): every acked publish
 * survives a kill -9 in the middle of an async stream, the MEMORY store forgets on restart, and
 * the channel limits (-mm, -mc, -msu, -ma) drop or refuse as NSS does. */
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 5000
#define T_LONG_MS 10000
#define T_BULK_MS 60000

/* Waits until the last message rx received has payload marker. */
static void wait_for_marker(struct hstan_rx *rx, const char *marker, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int64_t n = hstan_rx_count(rx);
        if (n > 0 && strcmp(hstan_rx_get(rx, (int)n - 1).data, marker) == 0) return;
        int64_t left = deadline - harness_now_ms();
        if (left <= 0 || !hcounter_wait(&rx->count, n + 1, (int)left)) {
            fprintf(stderr, "marker \"%s\" did not arrive within %d ms\n", marker, timeout_ms);
            hstan_rx_dump(rx, "received");
            CHECK(false);
        }
    }
}

static stanSubscription *sub_all(stanConnection *sc, const char *ch, struct hstan_rx *rx)
{
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, ch, NULL, rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    return sub;
}

/* ---- kill -9 during an async publish stream ---- */

enum { NPUB = 20000, KILL_AT = NPUB / 2 };

static struct {
    struct hcounter acked; /* OK acks; its mutex guards ok[] */
    unsigned char ok[NPUB];
    int errors;
    pid_t server_pid;
    bool killed;
    stanConnection *sc;
    atomic_bool stop;
    int published;
    natsStatus pub_error;
} ps;

static void p9_ack(const char *guid, const char *error, void *closure)
{
    int i = (int)(intptr_t)closure;
    pthread_mutex_lock(&ps.acked.mu);
    if (error && *error) {
        ps.errors++;
    } else if (i >= 0 && i < NPUB && !ps.ok[i]) {
        ps.ok[i] = 1;
        ps.acked.n++;
        /* Pull the plug right here, with the stream in full flow. */
        if (ps.acked.n == KILL_AT && !ps.killed) {
            kill(ps.server_pid, SIGKILL);
            ps.killed = true;
        }
        pthread_cond_broadcast(&ps.acked.cv);
    }
    pthread_mutex_unlock(&ps.acked.mu);
}

static void *p9_publisher(void *arg)
{
    for (int i = 0; i < NPUB && !atomic_load(&ps.stop); i++) {
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "%d", i);
        natsStatus st =
            stanConnection_PublishAsync(ps.sc, "p9", buf, n, p9_ack, (void *)(intptr_t)i);
        if (st != NATS_OK) {
            ps.pub_error = st;
            break;
        }
        ps.published++;
    }
    return NULL;
}

static void test_kill9_during_async_publish(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, "--file_sync=false", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    memset(&ps, 0, sizeof(ps));
    hcounter_init(&ps.acked);
    ps.server_pid = s.pid;
    /* At most 1000 unacked: when the 10,000th ack comes in, the server has seen at most ~11,000,
     * so the kill lands with the stream still flowing. */
    ps.sc = hstan_connect_window(&s, "p9-pub", 1000);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, p9_publisher, NULL) == 0);
    CHECK(hcounter_wait(&ps.acked, KILL_AT, T_BULK_MS));
    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    CHECK(ps.killed);
    /* Stop the publisher (Close releases a publish blocked on the in-flight limit). */
    atomic_store(&ps.stop, true);
    stanConnection_Close(ps.sc);
    CHECK(pthread_join(th, NULL) == 0);
    stanConnection_Destroy(ps.sc);

    /* What the client was told is stored. Acks still arriving now were sent by the server before
     * it died, so they are as binding; the snapshot is simply a subset. */
    static unsigned char acked[NPUB];
    pthread_mutex_lock(&ps.acked.mu);
    memcpy(acked, ps.ok, sizeof(acked));
    int nacked = (int)ps.acked.n, published = ps.published;
    pthread_mutex_unlock(&ps.acked.mu);
    fprintf(stderr, "   published %d, acked %d when the server was killed\n", published, nacked);
    CHECK(nacked >= KILL_AT);
    CHECK(nacked < NPUB); /* else the kill did not land mid-stream */

    CHECK(harness_server_restart(&s, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "p9-reader");
    /* The marker goes after whatever survived: its sequence says how much did. */
    CHECK(hstan_pub(sc, "p9", "end") == NATS_OK);
    struct hstan_rx rx;
    hstan_rx_init(&rx, NPUB + 16, HSTAN_ACK_HANDLER);
    stanSubscription *sub = sub_all(sc, "p9", &rx);
    wait_for_marker(&rx, "end", T_BULK_MS);
    int stored = (int)hstan_rx_count(&rx) - 1;
    fprintf(stderr, "   %d survived the kill\n", stored);
    CHECK(stored >= nacked);
    CHECK(stored <= published);
    /* In publish order, sequences contiguous from 1: message i is sequence i+1. */
    for (int i = 0; i < stored; i++) {
        struct hstan_rec r = hstan_rx_get(&rx, i);
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        if (r.seq != (uint64_t)i + 1 || strcmp(r.data, want) != 0 || r.redelivered) {
            fprintf(stderr, "position %d: seq %llu \"%s\", want seq %d \"%s\"\n", i,
                    (unsigned long long)r.seq, r.data, i + 1, want);
            CHECK(false);
        }
    }
    for (int i = 0; i < NPUB; i++) {
        if (acked[i] && i >= stored) fprintf(stderr, "acked message %d was lost\n", i);
        CHECK(!acked[i] || i < stored);
    }
    /* Publishing carries on with the next sequence. */
    CHECK_EQ_INT(hstan_rx_get(&rx, stored).seq, stored + 1);

    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
    hcounter_destroy(&ps.acked);
}

static void test_memory_store_forgets(void)
{
    const char *args[] = {"--store", "MEMORY", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "mem");
    hstan_pub_range(sc, "mem", "old%d", 1, 3);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(harness_server_halt(&s, SIGINT), 0);
    CHECK(harness_server_restart(&s, args) == 0);

    sc = hstan_connect_or_die(&s, "mem");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_HANDLER);
    stanSubscription *sub = sub_all(sc, "mem", &rx);
    CHECK(hstan_pub(sc, "mem", "new") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    /* Nothing from before the restart, and the sequence starts over. */
    struct hstan_rec r = hstan_rx_get(&rx, 0);
    CHECK_EQ_STR(r.data, "new");
    CHECK_EQ_INT(r.seq, 1);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_limit_max_msgs(void)
{
    const char *args[] = {"--store", "MEMORY", "-mm", "10", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "mm");
    hstan_pub_range(sc, "mm", "m%d", 1, 25); /* no error: the oldest are dropped silently */

    struct hstan_rx all, at;
    hstan_rx_init(&all, 32, HSTAN_ACK_HANDLER);
    hstan_rx_init(&at, 32, HSTAN_ACK_HANDLER);
    stanSubscription *sub_a = sub_all(sc, "mm", &all);
    /* A start sequence below the first kept message is clamped up to it. */
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_StartAtSequence(o, 5) == NATS_OK);
    stanSubscription *sub_s = NULL;
    CHECK(hstan_sub(&sub_s, sc, "mm", NULL, &at, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_rx_wait(&all, 10, T_MS));
    CHECK(hstan_rx_wait(&at, 10, T_MS));
    CHECK(hstan_pub(sc, "mm", "m26") == NATS_OK);
    CHECK(hstan_rx_wait(&all, 11, T_MS));
    CHECK(hstan_rx_wait(&at, 11, T_MS));
    struct hstan_rx *both[] = {&all, &at};
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(hstan_rx_count(both[k]), 11);
        for (int i = 0; i < 11; i++) {
            struct hstan_rec r = hstan_rx_get(both[k], i);
            char want[16];
            snprintf(want, sizeof(want), "m%d", 16 + i);
            if (r.seq != (uint64_t)(16 + i)) hstan_rx_dump(both[k], "max_msgs 10");
            CHECK_EQ_INT(r.seq, 16 + i);
            CHECK_EQ_STR(r.data, want);
        }
    }
    stanSubscription_Destroy(sub_a);
    stanSubscription_Destroy(sub_s);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&all);
    hstan_rx_destroy(&at);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_limit_max_channels(void)
{
    const char *args[] = {"--store", "MEMORY", "-mc", "2", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "mc");
    CHECK(hstan_pub(sc, "c1", "x") == NATS_OK);
    CHECK(hstan_pub(sc, "c2", "x") == NATS_OK);
    CHECK(stanConnection_Publish(sc, "c3", "x", 1) != NATS_OK);
    CHECK(hstan_last_error_contains("too many channels"));
    /* A subscription would create one too. */
    struct hstan_rx rx;
    hstan_rx_init(&rx, 8, HSTAN_ACK_HANDLER);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "c4", NULL, &rx, NULL) != NATS_OK);
    CHECK(hstan_last_error_contains("too many channels"));
    /* The existing channels are unaffected. */
    CHECK(hstan_pub(sc, "c1", "y") == NATS_OK);
    sub = sub_all(sc, "c2", &rx);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    CHECK_EQ_INT(hstan_rx_get(&rx, 0).seq, 1);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_limit_max_subs(void)
{
    const char *args[] = {"--store", "MEMORY", "-msu", "1", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "msu");
    stanConnection *other = hstan_connect_or_die(&s, "msu-2");
    struct hstan_rx rx1, rx2, rx3;
    hstan_rx_init(&rx1, 8, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx2, 8, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx3, 8, HSTAN_ACK_HANDLER);
    stanSubscription *first = NULL, *second = NULL, *elsewhere = NULL;
    CHECK(hstan_sub(&first, sc, "s1", NULL, &rx1, NULL) == NATS_OK);
    CHECK(hstan_sub(&second, other, "s1", NULL, &rx2, NULL) != NATS_OK);
    CHECK(hstan_last_error_contains("too many subscriptions per channel"));
    CHECK(hstan_sub(&second, sc, "s1", NULL, &rx2, NULL) != NATS_OK);
    CHECK(hstan_last_error_contains("too many subscriptions per channel"));
    /* The limit is per channel, and a freed slot can be taken again. */
    CHECK(hstan_sub(&elsewhere, other, "s2", NULL, &rx3, NULL) == NATS_OK);
    CHECK(stanSubscription_Unsubscribe(first) == NATS_OK);
    stanSubscription_Destroy(first);
    CHECK(hstan_sub(&second, other, "s1", NULL, &rx2, NULL) == NATS_OK);
    CHECK(hstan_pub(sc, "s1", "m1") == NATS_OK);
    CHECK(hstan_rx_wait(&rx2, 1, T_MS));
    stanSubscription_Destroy(second);
    stanSubscription_Destroy(elsewhere);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(other) == NATS_OK);
    hstan_rx_destroy(&rx1);
    hstan_rx_destroy(&rx2);
    hstan_rx_destroy(&rx3);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_limit_max_age(void)
{
    const char *args[] = {"--store", "MEMORY", "-ma", "1s", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "ma");
    int64_t t0 = harness_now_ms();
    hstan_pub_range(sc, "ma", "old%d", 1, 5);
    /* There at first... */
    struct hstan_rx first;
    hstan_rx_init(&first, 16, HSTAN_ACK_HANDLER);
    stanSubscription *sub = sub_all(sc, "ma", &first);
    CHECK(hstan_rx_wait(&first, 5, T_MS));
    CHECK(harness_now_ms() - t0 < 1000); /* else this machine is too slow to tell */
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&first);

    /* ...then gone. Each round: a fresh subscriber from the first message, and a marker published
     * after it; everything stored arrives before the marker. Done when no "old" one does. */
    int64_t deadline = t0 + T_LONG_MS;
    for (int round = 1;; round++) {
        CHECK(harness_now_ms() < deadline);
        struct hstan_rx rx;
        hstan_rx_init(&rx, 64, HSTAN_ACK_HANDLER);
        sub = sub_all(sc, "ma", &rx);
        char marker[32];
        snprintf(marker, sizeof(marker), "mark%d", round);
        CHECK(hstan_pub(sc, "ma", marker) == NATS_OK);
        wait_for_marker(&rx, marker, T_MS);
        int64_t n = hstan_rx_count(&rx);
        int old = 0;
        for (int i = 0; i < n; i++)
            old += strncmp(hstan_rx_get(&rx, i).data, "old", 3) == 0;
        uint64_t marker_seq = hstan_rx_get(&rx, (int)n - 1).seq;
        stanSubscription_Destroy(sub);
        hstan_rx_destroy(&rx);
        CHECK(marker_seq == (uint64_t)(5 + round)); /* sequences never restart */
        if (old == 0) {
            int64_t took = harness_now_ms() - t0;
            fprintf(stderr, "   expired after %lld ms (round %d)\n", (long long)took, round);
            CHECK(took >= 900);
            break;
        }
        poll(NULL, 0, 100); /* the next look; the round's own deadline is the loop's */
    }
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

int main(void)
{
    HSTAN_RUN(test_kill9_during_async_publish);
    HSTAN_RUN(test_memory_store_forgets);
    HSTAN_RUN(test_limit_max_msgs);
    HSTAN_RUN(test_limit_max_channels);
    HSTAN_RUN(test_limit_max_subs);
    HSTAN_RUN(test_limit_max_age);
    nats_CloseAndWait(5000);
    return test_summary();
}
