/* it_stan_crashloop: kill -9 at random moments under load, restart on the same store, and check
 * the promise a PubAck makes.
 *
 * Each cycle starts stanzad (FILE store, fsync on) on the same directory, runs two publishers
 * (async, PubAck per message) and a durable subscriber that records and acks every delivery, and
 * kills the server with SIGKILL once a random number of PubAcks has come back. At the end one
 * fresh subscription reads the channel from the start, and:
 *   - every message that got a successful PubAck, in any cycle, is there, payload intact;
 *   - no message is there twice, and nothing is there that was never published;
 *   - sequences run 1, 2, 3, ... with no gap;
 *   - every (sequence, payload) the durable subscriber was given in any cycle is what the final
 *     read has at that sequence: a sequence is never handed out again for another message.
 *
 * STANZA_CRASH_CYCLES (default 4) sets the number of cycles, STANZA_CRASH_SEED the random seed
 * (printed, to replay a failure). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define CHANNEL "crash"
#define NPUBS 2
#define MAX_PER_PUB 20000 /* a publisher's messages per cycle, if the kill has not come first */
#define PAYLOAD_LEN 100
#define KILL_MIN_ACKS 100
#define KILL_MAX_ACKS 3000
#define T_MS 30000

/* Message ids: cycle, publisher and number packed into one index. */
static int ncycles;
static size_t nids;
static size_t id_of(int cycle, int pub, int i)
{
    return ((size_t)cycle * NPUBS + (size_t)pub) * MAX_PER_PUB + (size_t)i;
}

/* The payload of a message: its id in text, then filler derived from it, PAYLOAD_LEN bytes. */
static void make_payload(char *out, int cycle, int pub, int i)
{
    int n = snprintf(out, PAYLOAD_LEN + 1, "c%d-p%d-%d-", cycle, pub, i);
    uint32_t x = (uint32_t)id_of(cycle, pub, i) * 2654435761u + 12345u;
    for (; n < PAYLOAD_LEN; n++) {
        x = x * 1103515245u + 12345u;
        out[n] = (char)('a' + (x >> 16) % 26);
    }
    out[PAYLOAD_LEN] = '\0';
}

/* The id of a payload we could have published (and its text matches), or -1. */
static long long id_of_payload(const char *p, int len)
{
    int cycle, pub, i;
    if (len != PAYLOAD_LEN || sscanf(p, "c%d-p%d-%d-", &cycle, &pub, &i) != 3) return -1;
    if (cycle < 0 || cycle >= ncycles || pub < 0 || pub >= NPUBS || i < 0 || i >= MAX_PER_PUB)
        return -1;
    char want[PAYLOAD_LEN + 1];
    make_payload(want, cycle, pub, i);
    return memcmp(want, p, PAYLOAD_LEN) == 0 ? (long long)id_of(cycle, pub, i) : -1;
}

/* ---- state shared with the libnats callbacks ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *acked; /* [nids]: got a successful PubAck */
static struct hcounter cycle_acks;
static int64_t total_acks, total_ack_errors;

/* Every delivery to the durable subscriber: (sequence, message id; -1 if not ours). */
struct delivery {
    uint64_t seq;
    long long id;
};
static struct delivery *deliveries;
static size_t ndeliveries, cap_deliveries;

static void on_puback(const char *guid, const char *error, void *closure)
{
    size_t id = (size_t)(uintptr_t)closure;
    pthread_mutex_lock(&mu);
    if (error && *error)
        total_ack_errors++;
    else if (!acked[id]) {
        acked[id] = 1;
        total_acks++;
    }
    pthread_mutex_unlock(&mu);
    if (!error || !*error) hcounter_add(&cycle_acks, 1);
}

static void on_durable_msg(stanConnection *sc, stanSubscription *sub, const char *channel,
                           stanMsg *msg, void *closure)
{
    long long id = id_of_payload(stanMsg_GetData(msg), stanMsg_GetDataLength(msg));
    pthread_mutex_lock(&mu);
    if (ndeliveries == cap_deliveries) {
        cap_deliveries = cap_deliveries ? cap_deliveries * 2 : 4096;
        deliveries = realloc(deliveries, cap_deliveries * sizeof(*deliveries));
        CHECK(deliveries);
    }
    deliveries[ndeliveries++] = (struct delivery){stanMsg_GetSequence(msg), id};
    pthread_mutex_unlock(&mu);
    stanSubscription_AckMsg(sub, msg); /* fails once the server is gone: that is fine */
    stanMsg_Destroy(msg);
}

/* ---- one cycle ---- */

struct publisher {
    stanConnection *sc;
    int cycle, pub;
    atomic_bool stop;
    int published;
};

static void *publish_loop(void *arg)
{
    struct publisher *p = arg;
    for (int i = 0; i < MAX_PER_PUB && !atomic_load(&p->stop); i++) {
        char payload[PAYLOAD_LEN + 1];
        make_payload(payload, p->cycle, p->pub, i);
        void *closure = (void *)(uintptr_t)id_of(p->cycle, p->pub, i);
        if (stanConnection_PublishAsync(p->sc, CHANNEL, payload, PAYLOAD_LEN, on_puback, closure) !=
            NATS_OK)
            break; /* the connection is gone (the server was killed) */
        p->published++;
    }
    return NULL;
}

/* Closes a client whose server is dead: its NATS connection first, so that libnats does not wait
 * for an answer to its close request; the STAN close then releases a publish blocked on the
 * in-flight window. */
static void drop_client(stanConnection *sc)
{
    stanConnection_Close(sc);
}

static void run_cycle(struct hserver *s, int cycle, unsigned *seed)
{
    hcounter_destroy(&cycle_acks);
    hcounter_init(&cycle_acks);
    /* The durable subscriber: the same client ID and durable name every cycle, so it resumes
     * (its previous connection died with the server: the ID is taken over at once). */
    stanConnection *dsc = hstan_connect_or_die(s, "crash-durable");
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, "d") == NATS_OK);
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 1024) == NATS_OK);
    stanSubscription *dsub = NULL;
    CHECK(stanConnection_Subscribe(&dsub, dsc, CHANNEL, on_durable_msg, NULL, o) == NATS_OK);
    stanSubOptions_Destroy(o);

    struct publisher pubs[NPUBS];
    pthread_t th[NPUBS];
    for (int k = 0; k < NPUBS; k++) {
        char id[64];
        snprintf(id, sizeof(id), "crash-pub-%d-%d", cycle, k);
        pubs[k] = (struct publisher){.cycle = cycle, .pub = k};
        atomic_init(&pubs[k].stop, false);
        pubs[k].sc = hstan_connect_window(s, id, 256);
    }
    for (int k = 0; k < NPUBS; k++)
        CHECK(pthread_create(&th[k], NULL, publish_loop, &pubs[k]) == 0);

    /* The random moment: after this many PubAcks of this cycle. */
    int kill_at = KILL_MIN_ACKS + (int)(rand_r(seed) % (KILL_MAX_ACKS - KILL_MIN_ACKS));
    CHECK(hcounter_wait(&cycle_acks, kill_at, T_MS));
    CHECK_EQ_INT(harness_server_halt(s, SIGKILL), 128 + SIGKILL);

    for (int k = 0; k < NPUBS; k++) {
        atomic_store(&pubs[k].stop, true);
        drop_client(pubs[k].sc);
        CHECK(pthread_join(th[k], NULL) == 0);
        stanConnection_Destroy(pubs[k].sc);
    }
    stanSubscription_Destroy(dsub);
    drop_client(dsc);
    stanConnection_Destroy(dsc);
    pthread_mutex_lock(&mu);
    fprintf(stderr, "   cycle %d: killed after %d acks (published %d + %d; %lld acked in all)\n",
            cycle, kill_at, pubs[0].published, pubs[1].published, (long long)total_acks);
    pthread_mutex_unlock(&mu);
}

/* ---- the final read ---- */

struct final_rx {
    struct hcounter count;
    long long *ids; /* by position; the marker is -2 */
    uint64_t *seqs;
    size_t cap;
};

static void on_final_msg(stanConnection *sc, stanSubscription *sub, const char *channel,
                         stanMsg *msg, void *closure)
{
    struct final_rx *rx = closure;
    const char *data = stanMsg_GetData(msg);
    int len = stanMsg_GetDataLength(msg);
    long long id = len == 3 && memcmp(data, "END", 3) == 0 ? -2 : id_of_payload(data, len);
    pthread_mutex_lock(&rx->count.mu);
    if ((size_t)rx->count.n < rx->cap) {
        rx->ids[rx->count.n] = id;
        rx->seqs[rx->count.n] = stanMsg_GetSequence(msg);
    }
    rx->count.n++;
    pthread_cond_broadcast(&rx->count.cv);
    pthread_mutex_unlock(&rx->count.mu);
    stanMsg_Destroy(msg);
}

/* Reads the whole channel into rx, up to an "END" marker published after everything that
 * survived. */
static void read_channel(struct hserver *s, struct final_rx *rx)
{
    stanConnection *sc = hstan_connect_or_die(s, "crash-reader");
    CHECK(hstan_pub(sc, CHANNEL, "END") == NATS_OK);
    *rx = (struct final_rx){.cap = nids + 16};
    hcounter_init(&rx->count);
    rx->ids = calloc(rx->cap, sizeof(*rx->ids));
    rx->seqs = calloc(rx->cap, sizeof(*rx->seqs));
    CHECK(rx->ids && rx->seqs);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    CHECK(stanSubOptions_SetMaxInflight(o, 16384) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(stanConnection_Subscribe(&sub, sc, CHANNEL, on_final_msg, rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    /* Everything up to the marker: wait until the last message received is it. */
    int64_t deadline = harness_now_ms() + 120000;
    for (;;) {
        pthread_mutex_lock(&rx->count.mu);
        int64_t n = rx->count.n;
        bool done = n > 0 && (size_t)n <= rx->cap && rx->ids[n - 1] == -2;
        pthread_mutex_unlock(&rx->count.mu);
        if (done) break;
        int64_t left = deadline - harness_now_ms();
        CHECK(left > 0);
        hcounter_wait(&rx->count, n + 1, (int)left);
    }
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    CHECK(stanConnection_Close(sc) == NATS_OK);
    stanConnection_Destroy(sc);
}

/* The channel holds every acked message once, at sequences 1, 2, 3, ... in order, and what the
 * durable subscriber was given at a sequence is what the channel holds there. */
static void check_channel(struct hserver *s)
{
    struct final_rx rx;
    read_channel(s, &rx);
    size_t n = (size_t)rx.count.n - 1; /* without the marker */
    unsigned char *present = calloc(nids, 1);
    CHECK(present);
    int failures = 0;
    for (size_t k = 0; k < n; k++) {
        if (rx.seqs[k] != k + 1) { /* 1, 2, 3, ...: none skipped, none twice, in order */
            if (failures++ < 10)
                fprintf(stderr, "   position %zu has sequence %llu\n", k,
                        (unsigned long long)rx.seqs[k]);
        }
        long long id = rx.ids[k];
        if (id < 0 || present[id]) {
            if (failures++ < 10)
                fprintf(stderr, "   sequence %llu: %s\n", (unsigned long long)rx.seqs[k],
                        id < 0 ? "not a payload that was published (damaged?)"
                               : "the same message a second time");
            continue;
        }
        present[id] = 1;
    }
    size_t lost = 0;
    for (size_t id = 0; id < nids; id++)
        if (acked[id] && !present[id] && lost++ < 10)
            fprintf(stderr, "   acked message c%zu-p%zu-%zu is missing\n",
                    id / (NPUBS * MAX_PER_PUB), id / MAX_PER_PUB % NPUBS, id % MAX_PER_PUB);
    /* What the durable subscriber was given at a sequence is what the channel holds there. */
    size_t reused = 0;
    for (size_t k = 0; k < ndeliveries; k++) {
        const struct delivery *d = &deliveries[k];
        if (d->seq >= 1 && d->seq <= n && rx.seqs[d->seq - 1] == d->seq &&
            rx.ids[d->seq - 1] == d->id)
            continue;
        if (reused++ < 10)
            fprintf(stderr, "   delivered as sequence %llu: message %lld; the channel has %lld\n",
                    (unsigned long long)d->seq, d->id,
                    d->seq >= 1 && d->seq <= n ? rx.ids[d->seq - 1] : -1LL);
    }
    fprintf(stderr,
            "   %zu messages stored, %lld acked (%lld error acks), %zu deliveries to the durable; "
            "%zu acked missing, %zu deliveries contradicted, %d other faults\n",
            n, (long long)total_acks, (long long)total_ack_errors, ndeliveries, lost, reused,
            failures);
    CHECK_EQ_INT(lost, 0);
    CHECK_EQ_INT(reused, 0);
    CHECK_EQ_INT(failures, 0);
    CHECK(total_acks > 0 && ndeliveries > 0);
    free(present);
    free(rx.ids);
    free(rx.seqs);
    hcounter_destroy(&rx.count);
}

static void test_crash_loop(void)
{
    const char *env = getenv("STANZA_CRASH_CYCLES");
    ncycles = env && atoi(env) > 0 ? atoi(env) : 4;
    env = getenv("STANZA_CRASH_SEED");
    unsigned seed = env && *env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "   %d cycles, seed %u (STANZA_CRASH_SEED to replay)\n", ncycles, seed);
    nids = id_of(ncycles, 0, 0);
    acked = calloc(nids, 1);
    CHECK(acked);
    hcounter_init(&cycle_acks);

    struct hstan_dir d;
    hstan_dir_make(&d);
    /* No limits: every message stays (the check reads them all back). */
    const char *args[] = {"--store", "FILE", "--dir", d.data, "-mm", "0", "-mb", "0", NULL};
    struct hserver s;
    int64_t t0 = harness_now_ms();
    CHECK(harness_server_start(&s, NULL, args) == 0);
    for (int c = 0; c < ncycles; c++) {
        if (c > 0) CHECK(harness_server_restart(&s, args) == 0);
        run_cycle(&s, c, &seed);
    }
    CHECK(harness_server_restart(&s, args) == 0);
    check_channel(&s);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    fprintf(stderr, "   %d cycles in %.1f s\n", ncycles, (double)(harness_now_ms() - t0) / 1000);
    hstan_dir_remove(&d);
    hcounter_destroy(&cycle_acks);
    free(acked);
    free(deliveries);
}

int main(void)
{
    HSTAN_RUN(test_crash_loop);
    nats_CloseAndWait(5000);
    return test_summary();
}
