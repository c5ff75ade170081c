/* it_stan_ack_inbox: the subjects the server hands out cannot be worked out by another client.
 *
 * Ack inboxes were "_STAN.ack.<server ID>.<subscription number>": a client could read the
 * prefix off its own and ack every other subscription's messages away (they were then never
 * redelivered). Now each ends in 22 random characters, as are the request subjects of the
 * ConnectResponse (as a standalone NSS: "_STAN.pub.<random>" ...). A persisted subscription keeps
 * its ack inbox across a restart. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000

static struct hserver srv;

/* The last dot-separated token of s. */
static const char *last_token(const char *s)
{
    const char *dot = strrchr(s, '.');
    return dot ? dot + 1 : s;
}

/* Two names share nothing predictable: they differ in at least 16 of the positions of their last
 * tokens (22 random characters each differ in 21.6 on average; 16 or fewer by chance is
 * ~1e-7), and each token is at least 20 characters long. */
static void check_unrelated(const char *a, const char *b)
{
    const char *ta = last_token(a), *tb = last_token(b);
    size_t la = strlen(ta), lb = strlen(tb), n = la < lb ? la : lb, differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += ta[i] != tb[i];
    fprintf(stderr, "   %s vs %s: %zu of %zu characters differ\n", a, b, differ, n);
    CHECK(la >= 20 && lb >= 20);
    CHECK(differ >= 16);
}

/* A victim's unacked message: an attacker publishes Acks for it to every ack inbox it could
 * derive from its own (the old counter form, the sequence numbers around its own), yet the
 * victim gets its redelivery after AckWait. */
static void test_guessed_acks_do_nothing(void)
{
    const char *ch = "ackin";
    stanConnection *victim = hstan_connect_or_die(&srv, "ackin-victim");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 8, HSTAN_ACK_TEST);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetAckWait(o, 2000) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, victim, ch, NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_pub(victim, ch, "precious") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    CHECK_EQ_INT(hstan_rx_get(&rx, 0).seq, 1);

    struct hstan_raw att;
    char err[256], own[256];
    CHECK(hstan_raw_connect(&att, &srv, "ackin-attacker", true, err, sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    CHECK(hstan_raw_subscribe(&att, ch, NULL, NULL, 16, 30, own, sizeof(own), err, sizeof(err)) ==
          NATS_OK);
    CHECK_EQ_STR(err, "");
    fprintf(stderr, "   the attacker's own ack inbox: %s\n", own);
    size_t plen = (size_t)(last_token(own) - own);
    struct hstan_pb ack = {.n = 0};
    hstan_pb_str(&ack, 1, ch);
    hstan_pb_int(&ack, 2, 1);
    int sent = 0;
    for (int k = 0; k <= 64; k++) {
        char guess[512];
        snprintf(guess, sizeof(guess), "%.*s%d", (int)plen, own, k);
        CHECK(natsConnection_Publish(att.nc, guess, ack.b, (int)ack.n) == NATS_OK);
        sent++;
    }
    CHECK(natsConnection_Flush(att.nc) == NATS_OK);
    fprintf(stderr, "   %d forged acks sent; waiting for the redelivery\n", sent);

    CHECK(hstan_rx_wait(&rx, 2, T_MS));
    struct hstan_rec r = hstan_rx_get(&rx, 1);
    CHECK_EQ_INT(r.seq, 1);
    CHECK(r.redelivered);
    CHECK_EQ_STR(r.data, "precious");
    CHECK(hstan_rx_ack(&rx, 1) == NATS_OK);

    hstan_raw_close(&att);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    CHECK(stanConnection_Destroy(victim) == NATS_OK);
}

/* Ack inboxes of two subscriptions (one client, then another) and the request subjects. */
static void test_names_are_random(void)
{
    struct hstan_raw a, b;
    char err[256], ia[256], ib[256], ic[256];
    CHECK(hstan_raw_connect(&a, &srv, "ackin-a", true, err, sizeof(err)) == NATS_OK);
    CHECK(hstan_raw_connect(&b, &srv, "ackin-b", true, err, sizeof(err)) == NATS_OK);
    CHECK(hstan_raw_subscribe(&a, "ackin-x", NULL, NULL, 16, 30, ia, sizeof(ia), err,
                              sizeof(err)) == NATS_OK);
    CHECK(hstan_raw_subscribe(&a, "ackin-x", NULL, NULL, 16, 30, ib, sizeof(ib), err,
                              sizeof(err)) == NATS_OK);
    CHECK(hstan_raw_subscribe(&b, "ackin-y", NULL, "dur", 16, 30, ic, sizeof(ic), err,
                              sizeof(err)) == NATS_OK);
    check_unrelated(ia, ib);
    check_unrelated(ib, ic);
    check_unrelated(ia, ic);

    /* The request subjects: "_STAN.<kind>.<random>", not the cluster ID. */
    const char *subjects[] = {a.pub_prefix, a.sub_requests, a.unsub_requests, a.close_requests,
                              a.sub_close_requests};
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        fprintf(stderr, "   request subject %s\n", subjects[i]);
        CHECK(strncmp(subjects[i], "_STAN.", 6) == 0);
        CHECK(strlen(last_token(subjects[i])) >= 20);
        CHECK(strstr(subjects[i], HSTAN_CLUSTER) == NULL);
    }
    hstan_raw_close(&a);
    hstan_raw_close(&b);
}

/* A durable that is resumed gets a new ack inbox, unrelated to its old one: an inbox seen once
 * (or a counter-style one from an older store) does not stay valid for good. */
static void test_resumed_durable_new_ack_inbox(void)
{
    struct hstan_raw a;
    char err[256], first[256], second[256];
    CHECK(hstan_raw_connect(&a, &srv, "ackin-resume", true, err, sizeof(err)) == NATS_OK);
    CHECK(hstan_raw_subscribe(&a, "ackin-r", NULL, "dur", 16, 30, first, sizeof(first), err,
                              sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    struct hstan_pb req = {0};
    hstan_pb_str(&req, 1, "ackin-resume");
    hstan_pb_str(&req, 2, "ackin-r");
    hstan_pb_str(&req, 3, first);
    hstan_pb_str(&req, 4, "dur");
    natsMsg *reply = NULL;
    CHECK(hstan_raw_request(&a, a.sub_close_requests, req.b, req.n, T_MS, &reply) == NATS_OK);
    natsMsg_Destroy(reply);
    CHECK(hstan_raw_subscribe(&a, "ackin-r", NULL, "dur", 16, 30, second, sizeof(second), err,
                              sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    check_unrelated(first, second);
    hstan_raw_close(&a);
}

/* A subscription recovered from the store keeps its ack inbox: the client's acks on it still
 * count after a restart (MaxInflight 1: the next message comes only once the ack is taken). */
static void test_ack_inbox_survives_restart(void)
{
    const char *ch = "ackin-restart";
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    struct hcounter reconnected, lost;
    hcounter_init(&reconnected);
    hcounter_init(&lost);
    stanConnection *sc = hstan_connect_watched(&s, "ackin-restart", &reconnected, &lost);
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_TEST);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetMaxInflight(o, 1) == NATS_OK);
    CHECK(stanSubOptions_SetDurableName(o, "dur") == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, ch, NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    hstan_pub_range(sc, ch, "m%d", 1, 2);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    hstan_commit_barrier(sc);

    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    CHECK(harness_server_restart(&s, args) == 0);
    CHECK(hcounter_wait(&reconnected, 1, T_MS));
    /* m1 comes again (recovered unacked messages go first); its ack lets m2 through. */
    CHECK(hstan_rx_wait(&rx, 2, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&rx, 1).data, "m1");
    CHECK(hstan_rx_ack(&rx, 1) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 3, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&rx, 2).data, "m2");
    CHECK(hstan_rx_ack(&rx, 2) == NATS_OK);
    CHECK_EQ_INT(hcounter_get(&lost), 0);

    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    hstan_rx_destroy(&rx);
    hcounter_destroy(&reconnected);
    hcounter_destroy(&lost);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

int main(void)
{
    const char *args[] = {"--store", "MEMORY", NULL};
    CHECK(harness_server_start(&srv, NULL, args) == 0);
    HSTAN_RUN(test_guessed_acks_do_nothing);
    HSTAN_RUN(test_names_are_random);
    HSTAN_RUN(test_resumed_durable_new_ack_inbox);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);
    HSTAN_RUN(test_ack_inbox_survives_restart);
    nats_CloseAndWait(5000);
    return test_summary();
}
