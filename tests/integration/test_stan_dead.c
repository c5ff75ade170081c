/* it_stan_dead: max deliveries and dead letters through libnats against a real stanzad (LMDB
 * store, config file with max_deliveries): a poison message that a worker never acks is
 * delivered max_deliveries times, then goes to the dead-letter channel while the next messages
 * flow to the same worker (MaxInflight 1); another subscription on the channel is unaffected;
 * the dead letter is a message any client reads; the counters (subscription JSON, /metrics) are
 * right, and after a restart too. */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000

/* A worker that acks everything but "poison", and records what arrived. */
struct worker {
    struct hcounter n;
    char data[16][16];
    bool redelivered[16];
    uint64_t seq[16];
};

static void on_job(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg,
                   void *closure)
{
    (void)sc, (void)channel;
    struct worker *w = closure;
    const char *d = stanMsg_GetData(msg);
    int len = stanMsg_GetDataLength(msg);
    pthread_mutex_lock(&w->n.mu);
    int64_t i = w->n.n;
    if (i < 16) {
        snprintf(w->data[i], sizeof w->data[i], "%.*s", len, d);
        w->redelivered[i] = stanMsg_IsRedelivered(msg);
        w->seq[i] = stanMsg_GetSequence(msg);
    }
    pthread_mutex_unlock(&w->n.mu);
    if (len != 6 || memcmp(d, "poison", 6) != 0)
        CHECK(stanSubscription_AckMsg(sub, msg) == NATS_OK);
    hcounter_add(&w->n, 1);
    stanMsg_Destroy(msg);
}

static stanSubscription *subscribe(stanConnection *sc, const char *channel, const char *durable,
                                   struct worker *w)
{
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, 1000) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 1) == NATS_OK);
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    if (durable) CHECK(stanSubOptions_SetDurableName(o, durable) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(stanConnection_Subscribe(&sub, sc, channel, on_job, w, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    return sub;
}

/* dead_total of the subscription with that durable name on channel (channelsz?subs=1). */
static int64_t sub_dead_total(int mport, const char *channel, const char *durable)
{
    char path[256];
    snprintf(path, sizeof path, "/streaming/channelsz?channel=%s&subs=1", channel);
    json_t *root = hhttp_json(mport, path);
    CHECK(root != NULL);
    json_t *subs = json_object_get(root, "subscriptions"), *s;
    size_t i;
    int64_t v = -1;
    json_array_foreach(subs, i, s)
    {
        json_t *dn = json_object_get(s, "durable_name");
        if (dn && strcmp(json_string_value(dn), durable) == 0) {
            json_t *dt = json_object_get(s, "dead_total");
            CHECK(json_is_integer(dt));
            v = json_integer_value(dt);
        }
    }
    json_decref(root);
    return v;
}

#define SERIES "stanza_subscription_dead_total{channel=\"jobs.a\",queue=\"\",durable=\"w\""

static void check_counts(int mport, int64_t dead, double letters)
{
    CHECK_EQ_INT(sub_dead_total(mport, "jobs.a", "w"), dead);
    CHECK_EQ_INT(sub_dead_total(mport, "jobs.a", "other"), 0);
    char *body;
    CHECK_EQ_INT(hhttp_get(mport, "/metrics", &body), 200);
    CHECK(strstr(body, SERIES) != NULL);
    free(body);
    CHECK(hhttp_metric(mport, "stanza_dead_letters_total") == letters);
}

static void test_poison_goes_to_dead_letters(void)
{
    const char *conf = "store_limits:\n"
                       "  channels:\n"
                       "    'jobs.*': {max_deliveries: 3}\n";
    struct hstan_dir d;
    hstan_dir_make(&d);
    char mport_s[16];
    int mport = harness_free_port();
    snprintf(mport_s, sizeof mport_s, "%d", mport);
    const char *args[] = {"-m", mport_s, "--store", "FILE", "--dir", d.data, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, conf, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "worker");
    CHECK(hstan_pub(sc, "jobs.a", "poison") == NATS_OK);
    CHECK(hstan_pub(sc, "jobs.a", "next1") == NATS_OK);
    CHECK(hstan_pub(sc, "jobs.a", "next2") == NATS_OK);
    struct worker w, other;
    memset(&w, 0, sizeof w);
    memset(&other, 0, sizeof other);
    hcounter_init(&w.n);
    hcounter_init(&other.n);
    stanSubscription *ws = subscribe(sc, "jobs.a", "w", &w);
    /* 3 deliveries of the poison (AckWait 1 s), then the next ones. */
    CHECK(hcounter_wait(&w.n, 5, T_MS));
    pthread_mutex_lock(&w.n.mu);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_STR(w.data[i], "poison");
        CHECK(w.redelivered[i] == (i > 0));
    }
    CHECK_EQ_STR(w.data[3], "next1");
    CHECK_EQ_STR(w.data[4], "next2");
    CHECK(!w.redelivered[3]);
    pthread_mutex_unlock(&w.n.mu);
    /* The other subscription got the poison once and acked it: nothing dead for it. */
    stanSubscription *os = subscribe(sc, "jobs.a", "other", &other);
    CHECK(hcounter_wait(&other.n, 3, T_MS));
    /* The dead letter, read as any message. */
    struct hstan_rec rec[2];
    CHECK_EQ_INT(hstan_read_all(&s, "reader", "jobs.a.dead", 1, rec, 2), 1);
    CHECK_EQ_STR(rec[0].data, "poison");
    CHECK_EQ_INT(rec[0].seq, 1);
    check_counts(mport, 1, 1);
    /* Well past AckWait: the poison is never delivered again. */
    hstan_pub(sc, "jobs.a", "next3");
    CHECK(hcounter_wait(&w.n, 6, T_MS));
    pthread_mutex_lock(&w.n.mu);
    CHECK_EQ_STR(w.data[5], "next3");
    pthread_mutex_unlock(&w.n.mu);
    CHECK_EQ_INT(hcounter_get(&w.n), 6);

    /* Closed (durables stay), restarted: the count is the store's. */
    CHECK(stanSubscription_Close(ws) == NATS_OK);
    CHECK(stanSubscription_Close(os) == NATS_OK);
    stanSubscription_Destroy(ws);
    stanSubscription_Destroy(os);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(harness_server_halt(&s, SIGTERM), 0);
    CHECK(harness_server_restart(&s, args) == 0);
    CHECK_EQ_INT(sub_dead_total(mport, "jobs.a", "w"), 1);
    CHECK_EQ_INT(sub_dead_total(mport, "jobs.a", "other"), 0);
    CHECK(hhttp_metric(mport, "stanza_dead_letters_total") == 0); /* since this start */
    CHECK_EQ_INT(hstan_read_all(&s, "reader2", "jobs.a.dead", 1, rec, 2), 1);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    hcounter_destroy(&w.n);
    hcounter_destroy(&other.n);
    hstan_dir_remove(&d);
}

int main(void)
{
    HSTAN_RUN(test_poison_goes_to_dead_letters);
    nats_CloseAndWait(5000);
    return test_summary();
}
