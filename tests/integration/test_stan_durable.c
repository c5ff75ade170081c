/* it_stan_durable: durable subscriptions (NSS semantics, stan-reference.md): resume after the
 * connection closes, deletion by Unsubscribe, duplicate registration, and survival of a kill -9
 * of the server with a persistent (FILE) store.
 *
 * What the server must have seen before a crash is established by events, never by time: an ack
 * is known processed when MaxInflight lets the next message through, and known committed once a
 * later synchronous publish has been acked (hstan_commit_barrier). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 5000
#define T_LONG_MS 10000

static struct hserver srv; /* FILE store, shared by the tests that do not restart it */

/* Records [from, from+n) are sequences first.. with payload "m<seq>" and the given flag. */
static void expect_run(struct hstan_rx *rx, int from, uint64_t first, int n, bool redelivered)
{
    for (int k = 0; k < n; k++) {
        struct hstan_rec r = hstan_rx_get(rx, from + k);
        char want[32];
        snprintf(want, sizeof(want), "m%llu", (unsigned long long)(first + (uint64_t)k));
        if (r.seq != first + (uint64_t)k || r.redelivered != redelivered ||
            strcmp(r.data, want) != 0) {
            fprintf(stderr, "record %d: want seq %llu \"%s\"%s\n", from + k,
                    (unsigned long long)(first + (uint64_t)k), want,
                    redelivered ? " (redelivered)" : "");
            hstan_rx_dump(rx, "received");
            CHECK(false);
        }
    }
}

static stanSubscription *sub_durable(stanConnection *sc, const char *ch, const char *durable,
                                     int max_inflight, struct hstan_rx *rx)
{
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, durable) == NATS_OK);
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    if (max_inflight > 0) CHECK(stanSubOptions_SetMaxInflight(o, max_inflight) == NATS_OK);
    stanSubscription *sub = NULL;
    natsStatus st = hstan_sub(&sub, sc, ch, NULL, rx, o);
    if (st != NATS_OK)
        fprintf(stderr, "durable %s on %s: %s (%s)\n", durable, ch, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    stanSubOptions_Destroy(o);
    return sub;
}

static void test_resume_after_connection_close(void)
{
    const char *ch = "dur.resume";
    stanConnection *pc = hstan_connect_or_die(&srv, "resume-pub");
    stanConnection *sc = hstan_connect_or_die(&srv, "resume-sub");
    hstan_pub_range(pc, ch, "m%d", 1, 5);
    struct hstan_rx rx1;
    hstan_rx_init(&rx1, 32, HSTAN_ACK_HANDLER);
    stanSubscription *sub = sub_durable(sc, ch, "dn", 0, &rx1);
    CHECK(hstan_rx_wait(&rx1, 5, T_MS));
    expect_run(&rx1, 0, 1, 5, false);
    /* The close request follows the acks on the same connection; NSS handles it after them. */
    CHECK(stanConnection_Close(sc) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);

    hstan_pub_range(pc, ch, "m%d", 6, 10);
    struct hstan_rx rx2;
    hstan_rx_init(&rx2, 32, HSTAN_ACK_HANDLER);
    sc = hstan_connect_or_die(&srv, "resume-sub");
    sub = sub_durable(sc, ch, "dn", 0, &rx2); /* its DeliverAllAvailable is ignored: a resume */
    CHECK(hstan_rx_wait(&rx2, 5, T_MS));
    /* A marker closes the list: exactly m6..m10 came before it. */
    CHECK(hstan_pub(pc, ch, "m11") == NATS_OK);
    CHECK(hstan_rx_wait(&rx2, 6, T_MS));
    expect_run(&rx2, 0, 6, 6, false);
    CHECK_EQ_INT(hstan_rx_count(&rx2), 6);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rx1);
    hstan_rx_destroy(&rx2);
}

static void test_unsubscribe_deletes_durable(void)
{
    const char *ch = "dur.unsub";
    stanConnection *sc = hstan_connect_or_die(&srv, "unsub");
    hstan_pub_range(sc, ch, "m%d", 1, 3);
    struct hstan_rx rx1, rx2, rx3;
    hstan_rx_init(&rx1, 16, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx2, 16, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx3, 16, HSTAN_ACK_HANDLER);
    stanSubscription *sub = sub_durable(sc, ch, "du", 0, &rx1);
    CHECK(hstan_rx_wait(&rx1, 3, T_MS));
    expect_run(&rx1, 0, 1, 3, false);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);

    /* Gone: the same name is a new durable, and its DeliverAllAvailable starts from 1. */
    sub = sub_durable(sc, ch, "du", 0, &rx2);
    CHECK(hstan_rx_wait(&rx2, 3, T_MS));
    expect_run(&rx2, 0, 1, 3, false);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);

    /* Also across a reconnect of the client. */
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    sc = hstan_connect_or_die(&srv, "unsub");
    sub = sub_durable(sc, ch, "du", 0, &rx3);
    CHECK(hstan_rx_wait(&rx3, 3, T_MS));
    expect_run(&rx3, 0, 1, 3, false);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx1);
    hstan_rx_destroy(&rx2);
    hstan_rx_destroy(&rx3);
}

static void test_duplicate_durable(void)
{
    const char *ch = "dur.dup";
    stanConnection *sc = hstan_connect_or_die(&srv, "dup-a");
    stanConnection *other = hstan_connect_or_die(&srv, "dup-b");
    struct hstan_rx rx, rx_other, rx_chan, rx_dup;
    hstan_rx_init(&rx, 8, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx_other, 8, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx_chan, 8, HSTAN_ACK_HANDLER);
    hstan_rx_init(&rx_dup, 8, HSTAN_ACK_HANDLER);
    stanSubscription *sub = sub_durable(sc, ch, "x", 0, &rx);

    /* Same client, channel and name while the first is active: refused. */
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, "x") == NATS_OK);
    stanSubscription *dup = NULL;
    CHECK(hstan_sub(&dup, sc, ch, NULL, &rx_dup, o) != NATS_OK);
    CHECK(dup == NULL);
    CHECK(hstan_last_error_contains("duplicate durable"));
    stanSubOptions_Destroy(o);

    /* The key is client + channel + name: changing either of the first two is another durable. */
    stanSubscription *sub_other = sub_durable(other, ch, "x", 0, &rx_other);
    stanSubscription *sub_chan = sub_durable(sc, "dur.dup2", "x", 0, &rx_chan);

    /* The refused request left the first one intact. */
    CHECK(hstan_pub(sc, ch, "m1") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    CHECK(hstan_rx_wait(&rx_other, 1, T_MS));
    expect_run(&rx, 0, 1, 1, false);
    expect_run(&rx_other, 0, 1, 1, false);
    CHECK_EQ_INT(hstan_rx_count(&rx_dup), 0);

    stanSubscription *subs[] = {sub, sub_other, sub_chan};
    for (int i = 0; i < 3; i++) {
        CHECK(stanSubscription_Unsubscribe(subs[i]) == NATS_OK);
        stanSubscription_Destroy(subs[i]);
    }
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(other) == NATS_OK);
    hstan_rx_destroy(&rx);
    hstan_rx_destroy(&rx_other);
    hstan_rx_destroy(&rx_chan);
    hstan_rx_destroy(&rx_dup);
}

static void test_durable_survives_kill9(void)
{
    const char *ch = "k9";
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);

    stanConnection *pc = hstan_connect_or_die(&s, "k9-pub");
    stanConnection *sc = hstan_connect_or_die(&s, "k9-sub");
    hstan_pub_range(pc, ch, "m%d", 1, 10);
    struct hstan_rx rx1;
    hstan_rx_init(&rx1, 32, HSTAN_ACK_TEST);
    stanSubscription *sub = sub_durable(sc, ch, "k9d", 5, &rx1);
    CHECK(hstan_rx_wait(&rx1, 5, T_MS));
    expect_run(&rx1, 0, 1, 5, false);
    for (int i = 0; i < 5; i++)
        CHECK(hstan_rx_ack(&rx1, i) == NATS_OK);
    /* m6..m10 can only come once the acks of m1..m5 were processed (MaxInflight 5). */
    CHECK(hstan_rx_wait(&rx1, 10, T_MS));
    expect_run(&rx1, 5, 6, 5, false);
    for (int i = 5; i < 8; i++)
        CHECK(hstan_rx_ack(&rx1, i) == NATS_OK);
    /* And m11 only once m6..m8 were: m9, m10, m11 stay unacked. */
    CHECK(hstan_pub(pc, ch, "m11") == NATS_OK);
    CHECK(hstan_rx_wait(&rx1, 11, T_MS));
    expect_run(&rx1, 10, 11, 1, false);
    hstan_commit_barrier(pc);

    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    /* The clients die with the server: nobody will answer for their IDs. */
    stanSubscription_Destroy(sub);
    stanConnection_Destroy(sc);
    stanConnection_Destroy(pc);
    hstan_rx_destroy(&rx1);
    CHECK(harness_server_restart(&s, args) == 0);

    /* The same client IDs connect again: the recovered registrations are dead ones. */
    pc = hstan_connect_or_die(&s, "k9-pub");
    hstan_pub_range(pc, ch, "m%d", 12, 13); /* sequences continue: 12, 13 */
    sc = hstan_connect_or_die(&s, "k9-sub");
    struct hstan_rx rx2;
    hstan_rx_init(&rx2, 32, HSTAN_ACK_TEST);
    sub = sub_durable(sc, ch, "k9d", 5, &rx2);
    /* The pending ones first, redelivered; then the new ones. Never m1..m8. */
    CHECK(hstan_rx_wait(&rx2, 5, T_LONG_MS));
    expect_run(&rx2, 0, 9, 3, true);
    expect_run(&rx2, 3, 12, 2, false);
    for (int i = 0; i < 5; i++)
        CHECK(hstan_rx_ack(&rx2, i) == NATS_OK);
    CHECK(hstan_pub(pc, ch, "m14") == NATS_OK);
    CHECK(hstan_rx_wait(&rx2, 6, T_MS));
    expect_run(&rx2, 5, 14, 1, false);
    CHECK_EQ_INT(hstan_rx_count(&rx2), 6);

    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(pc) == NATS_OK);
    hstan_rx_destroy(&rx2);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

static void test_connection_survives_restart(void)
{
    /* NSS with a persistent store recovers clients and subscriptions: a client whose NATS
     * connection reconnects to the restarted server carries on, subscriptions included. */
    const char *ch = "tr";
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);

    struct hcounter reconnected, lost;
    hcounter_init(&reconnected);
    hcounter_init(&lost);
    stanConnection *sc = hstan_connect_watched(&s, "tr", &reconnected, &lost);
    struct hstan_rx plain, durable;
    hstan_rx_init(&plain, 16, HSTAN_ACK_HANDLER);
    hstan_rx_init(&durable, 16, HSTAN_ACK_HANDLER);
    stanSubscription *psub = NULL;
    CHECK(hstan_sub(&psub, sc, ch, NULL, &plain, NULL) == NATS_OK);
    stanSubscription *dsub = sub_durable(sc, ch, "trd", 0, &durable);
    hstan_pub_range(sc, ch, "m%d", 1, 3);
    CHECK(hstan_rx_wait(&plain, 3, T_MS));
    CHECK(hstan_rx_wait(&durable, 3, T_MS));
    hstan_flush(sc);          /* the acks are at the server... */
    hstan_commit_barrier(sc); /* ...and committed */

    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    CHECK(harness_server_restart(&s, args) == 0);
    CHECK(hcounter_wait(&reconnected, 1, T_LONG_MS));

    /* The old connection publishes (the server knows it again) and both subscriptions get it. */
    CHECK(hstan_pub(sc, ch, "m4") == NATS_OK);
    CHECK(hstan_rx_wait(&plain, 4, T_LONG_MS));
    CHECK(hstan_rx_wait(&durable, 4, T_LONG_MS));
    expect_run(&plain, 0, 1, 4, false);
    expect_run(&durable, 0, 1, 4, false);
    /* A second client sees the same channel state: m1..m4, nothing lost or duplicated. */
    stanConnection *other = hstan_connect_or_die(&s, "tr-other");
    struct hstan_rx all;
    hstan_rx_init(&all, 16, HSTAN_ACK_HANDLER);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *asub = NULL;
    CHECK(hstan_sub(&asub, other, ch, NULL, &all, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_rx_wait(&all, 4, T_MS));
    expect_run(&all, 0, 1, 4, false);
    CHECK_EQ_INT(hcounter_get(&lost), 0);

    stanSubscription_Destroy(asub);
    CHECK(stanConnection_Destroy(other) == NATS_OK);
    CHECK(stanSubscription_Unsubscribe(dsub) == NATS_OK);
    stanSubscription_Destroy(dsub);
    stanSubscription_Destroy(psub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK_EQ_INT(hcounter_get(&lost), 0);
    hstan_rx_destroy(&plain);
    hstan_rx_destroy(&durable);
    hstan_rx_destroy(&all);
    hcounter_destroy(&reconnected);
    hcounter_destroy(&lost);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

int main(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, NULL};
    CHECK(harness_server_start(&srv, NULL, args) == 0);
    HSTAN_RUN(test_resume_after_connection_close);
    HSTAN_RUN(test_unsubscribe_deletes_durable);
    HSTAN_RUN(test_duplicate_durable);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);
    hstan_dir_remove(&d);

    HSTAN_RUN(test_durable_survives_kill9);
    HSTAN_RUN(test_connection_survives_restart);
    nats_CloseAndWait(5000);
    return test_summary();
}
