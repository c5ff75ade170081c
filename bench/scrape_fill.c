/* bench/scrape_fill.c: puts many live subscriptions on a NATS Streaming server and holds them
 * open, for bench/scrape.sh to time the monitoring endpoints against.
 *
 * usage: scrape_fill URL CHANNELS CONNS SUBS MSGS_PER_CHANNEL MAX_INFLIGHT
 *
 * CONNS client connections ("scrape-c<i>") subscribe, in parallel (one thread each), SUBS
 * subscriptions in all, round-robin over CHANNELS channels ("scrape.<k>"), in four kinds by
 * global index g: g%4 == 0 plain, 1 durable ("dur<g>"), 2 queue group ("qg<g%7>"), 3 durable
 * queue group ("dqg<g%5>"). All are manual-ack with MAX_INFLIGHT in flight and an AckWait of an
 * hour, and nothing is ever acked: once MSGS_PER_CHANNEL messages of 128 B have been published
 * to each channel, each plain/durable subscription has MAX_INFLIGHT in flight and the rest as
 * backlog (a queue group shares one backlog), and nothing is redelivered while the scrapes run.
 * Prints "READY subs=N delivered=N" on stdout and holds everything open until stdin closes.
 * Built by bench/scrape.sh: cc -O2 -DNATS_HAS_STREAMING scrape_fill.c -lnats -lpthread. */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *url;
static int nchannels, nconns, nsubs, msgs_per_channel, max_inflight;
static _Atomic long delivered, subscribed;
static stanConnection **conns;

static void on_msg(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg,
                   void *closure)
{
    (void)sc, (void)sub, (void)channel, (void)closure;
    atomic_fetch_add(&delivered, 1);
    stanMsg_Destroy(msg); /* never acked */
}

static void fail(natsStatus s, const char *what)
{
    fprintf(stderr, "scrape_fill: %s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    exit(1);
}

static stanConnection *connect_as(const char *id)
{
    natsOptions *nopts = NULL;
    stanConnOptions *opts = NULL;
    stanConnection *sc = NULL;
    natsStatus s = natsOptions_Create(&nopts);
    /* One delivery pool instead of one thread per subscription. */
    if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(nopts, true);
    if (s == NATS_OK) s = natsOptions_SetURL(nopts, url);
    if (s == NATS_OK) s = stanConnOptions_Create(&opts);
    if (s == NATS_OK) s = stanConnOptions_SetNATSOptions(opts, nopts);
    if (s == NATS_OK) s = stanConnOptions_SetConnectionWait(opts, 30000);
    if (s == NATS_OK) s = stanConnOptions_SetPubAckWait(opts, 30000);
    if (s == NATS_OK) s = stanConnection_Connect(&sc, "test-cluster", id, opts);
    if (s != NATS_OK) fail(s, "connect");
    stanConnOptions_Destroy(opts);
    natsOptions_Destroy(nopts);
    return sc;
}

static void *subscriber(void *arg)
{
    int c = (int)(long)arg;
    char id[64];
    snprintf(id, sizeof id, "scrape-c%d", c);
    stanConnection *sc = connect_as(id);
    conns[c] = sc;
    for (int g = c; g < nsubs; g += nconns) {
        char channel[64], name[64];
        snprintf(channel, sizeof channel, "scrape.%d", g % nchannels);
        stanSubOptions *o = NULL;
        stanSubscription *sub = NULL;
        natsStatus s = stanSubOptions_Create(&o);
        if (s == NATS_OK) s = stanSubOptions_SetManualAckMode(o, true);
        if (s == NATS_OK) s = stanSubOptions_SetMaxInflight(o, max_inflight);
        if (s == NATS_OK) s = stanSubOptions_SetAckWait(o, 3600 * 1000);
        int kind = g % 4;
        if (s == NATS_OK && (kind == 1 || kind == 3)) {
            snprintf(name, sizeof name, "dur%d", g);
            s = stanSubOptions_SetDurableName(o, name);
        }
        if (s == NATS_OK) {
            if (kind == 2 || kind == 3) {
                snprintf(name, sizeof name, kind == 2 ? "qg%d" : "dqg%d",
                         kind == 2 ? g % 7 : g % 5);
                s = stanConnection_QueueSubscribe(&sub, sc, channel, name, on_msg, NULL, o);
            } else {
                s = stanConnection_Subscribe(&sub, sc, channel, on_msg, NULL, o);
            }
        }
        if (s != NATS_OK) fail(s, "subscribe");
        stanSubOptions_Destroy(o);
        atomic_fetch_add(&subscribed, 1);
        /* The subscription object stays alive (and leaks) until the process exits. */
    }
    return NULL;
}

static void on_ack(const char *guid, const char *error, void *closure)
{
    (void)guid, (void)closure;
    if (error && *error) {
        fprintf(stderr, "scrape_fill: publish: %s\n", error);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s URL CHANNELS CONNS SUBS MSGS_PER_CHANNEL MAX_INFLIGHT\n",
                argv[0]);
        return 2;
    }
    url = argv[1];
    nchannels = atoi(argv[2]);
    nconns = atoi(argv[3]);
    nsubs = atoi(argv[4]);
    msgs_per_channel = atoi(argv[5]);
    max_inflight = atoi(argv[6]);
    if (nchannels < 1 || nconns < 1 || nsubs < 1 || msgs_per_channel < 0 || max_inflight < 1) {
        fprintf(stderr, "scrape_fill: bad arguments\n");
        return 2;
    }
    conns = calloc((size_t)nconns, sizeof *conns);
    pthread_t *th = calloc((size_t)nconns, sizeof *th);
    for (int c = 0; c < nconns; c++)
        pthread_create(&th[c], NULL, subscriber, (void *)(long)c);
    for (int c = 0; c < nconns; c++)
        pthread_join(th[c], NULL);
    fprintf(stderr, "scrape_fill: %ld subscriptions\n", (long)atomic_load(&subscribed));

    stanConnection *pub = connect_as("scrape-pub");
    char payload[128];
    memset(payload, 'x', sizeof payload);
    for (int k = 0; k < nchannels; k++) {
        char channel[64];
        snprintf(channel, sizeof channel, "scrape.%d", k);
        for (int i = 0; i < msgs_per_channel; i++) {
            natsStatus s =
                stanConnection_PublishAsync(pub, channel, payload, sizeof payload, on_ack, NULL);
            if (s != NATS_OK) fail(s, "publish");
        }
    }
    /* A synchronous publish per channel: all the async ones before it are stored too. */
    for (int k = 0; k < nchannels; k++) {
        char channel[64];
        snprintf(channel, sizeof channel, "scrape.%d", k);
        natsStatus s = stanConnection_Publish(pub, channel, payload, sizeof payload);
        if (s != NATS_OK) fail(s, "publish");
    }
    /* Let the deliveries settle: stop when the count has not moved for a second. */
    long last = -1;
    while (last != atomic_load(&delivered)) {
        last = atomic_load(&delivered);
        sleep(1);
    }
    printf("READY subs=%ld delivered=%ld\n", (long)atomic_load(&subscribed), last);
    fflush(stdout);
    char buf[256];
    while (fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    /* Leave without closing: the server sees the connections drop (durables stay, offline). */
    _exit(0);
}
