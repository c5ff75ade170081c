/* cli_bench_stan.c: `stanza bench stan`, a NATS Streaming benchmark in three phases.
 *
 *   pub      one connection publishes N messages with PublishAsync, at most W acks outstanding
 *            (stanConnOptions_SetMaxPubAcksInflight); the clock stops at the N-th PubAck, so
 *            the rate is of messages the server has stored (and synced, if it syncs).
 *   drain    K connections each subscribe with DeliverAllAvailable (MaxInflight 1024, libnats
 *            auto-ack) and read the whole channel; the clock runs from the first subscribe
 *            until every subscriber has N. The rate counts deliveries: K x N messages.
 *   latency  one connection publishes M messages synchronously, one at a time; each publish's
 *            round trip (publish to PubAck) is a sample; p50/p90/p99 are reported.
 *
 * `--phase` runs one phase alone so that a script can sample the server's CPU time around it
 * (bench/stan.sh); `drain` then expects the channel to hold the N messages of an earlier `pub`
 * run with the same --channel and --msgs. */
#include "cli_bench.h"
#include "cli_commands.h"
#include "cli_common.h"
#include "sort.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Give up on a phase when no ack or message has arrived for this long. */
#define STAN_IDLE_TIMEOUT_S 10.0
/* Progress goes to stderr once a second, once a phase has lasted that long. */
#define STAN_PROGRESS_S 1.0
/* How many publishes between looks at the clock. */
#define STAN_CLOCK_EVERY 256
/* The PubAck wait libnats applies to each message; a fsyncing server under a full window may
 * take a while, but not this long. */
#define STAN_PUB_ACK_WAIT_MS 30000
/* Synchronous publishes before the latency samples (connection and channel warm-up). */
#define STAN_LATENCY_WARMUP 10
/* MaxInflight of the drain subscriptions (libnats' default, spelled out). */
#define STAN_DRAIN_INFLIGHT 1024
/* Bytes a PubMsg adds around the payload (client id, guid, channel, field tags), rounded up. */
#define STAN_PUBMSG_OVERHEAD 512
#define ERR_TEXT_LEN 256

struct stan_bench {
    const struct cli_ctx *ctx;
    int64_t msgs, size, window, subs, lat_msgs;
    const char *channel;
    char *payload;
};

/* The connection as client "<client id>-<suffix>"; max_acks > 0 bounds outstanding PubAcks. */
static int bench_stan_connect(const struct stan_bench *b, const char *suffix, int max_acks,
                              stanConnection **sc)
{
    char id[256];
    snprintf(id, sizeof id, "%s-%s", b->ctx->client_id, suffix);
    stanConnOptions *opts = NULL;
    natsStatus s = cli_stan_options_new(b->ctx, &opts);
    if (s == NATS_OK) s = stanConnOptions_SetPubAckWait(opts, STAN_PUB_ACK_WAIT_MS);
    /* Release a blocked publish as soon as one ack is back: the window stays full. */
    if (s == NATS_OK && max_acks > 0) s = stanConnOptions_SetMaxPubAcksInflight(opts, max_acks, 1);
    if (s != NATS_OK) {
        stanConnOptions_Destroy(opts);
        return cli_nats_error(s, "bench stan: cannot connect to %s", b->ctx->server);
    }
    return cli_stan_connect_opts(b->ctx, id, opts, sc);
}

/* ---- pub phase ---- */

static struct pub_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int64_t acked;
    _Atomic int64_t errors;
    int64_t expected;
    double done_at; /* under mu, once acked reached expected */
    char first_error[ERR_TEXT_LEN];
} pub_sink = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_bench_ack(const char *guid, const char *error, void *closure)
{
    if (error && *error && atomic_fetch_add(&pub_sink.errors, 1) == 0) {
        pthread_mutex_lock(&pub_sink.mu);
        snprintf(pub_sink.first_error, sizeof pub_sink.first_error, "%s", error);
        pthread_mutex_unlock(&pub_sink.mu);
    }
    int64_t n = atomic_fetch_add_explicit(&pub_sink.acked, 1, memory_order_relaxed) + 1;
    if (n == pub_sink.expected) {
        double now = cli_now();
        pthread_mutex_lock(&pub_sink.mu);
        pub_sink.done_at = now;
        pthread_cond_signal(&pub_sink.cv);
        pthread_mutex_unlock(&pub_sink.mu);
    }
}

struct timespec cli_bench_deadline(double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)(secs * 1e9) + ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}
/* Waits for all acks of `sent` publishes (libnats calls the handler for each, with a timeout
 * error at worst). Returns false if acks stopped coming for STAN_IDLE_TIMEOUT_S. */
static bool wait_for_acks(int64_t sent, double t0)
{
    int64_t last = atomic_load(&pub_sink.acked);
    double last_change = cli_now(), next_progress = cli_now() + STAN_PROGRESS_S;
    pthread_mutex_lock(&pub_sink.mu);
    while (atomic_load(&pub_sink.acked) < sent) {
        struct timespec dl = cli_bench_deadline(0.2);
        pthread_cond_timedwait(&pub_sink.cv, &pub_sink.mu, &dl);
        double now = cli_now();
        int64_t n = atomic_load(&pub_sink.acked);
        if (n != last) {
            last = n;
            last_change = now;
        } else if (now - last_change >= STAN_IDLE_TIMEOUT_S) {
            break;
        }
        if (now >= next_progress) {
            fprintf(stderr, "bench stan: pub %6.1fs  sent %lld  acked %lld\n", now - t0,
                    (long long)sent, (long long)n);
            next_progress = now + STAN_PROGRESS_S;
        }
    }
    pthread_mutex_unlock(&pub_sink.mu);
    return atomic_load(&pub_sink.acked) >= sent;
}

/* Returns the exit code; *secs is the time from the first publish to the last ack. */
static int phase_pub(const struct stan_bench *b, double *secs)
{
    stanConnection *sc = NULL;
    int rc = bench_stan_connect(b, "pub", (int)b->window, &sc);
    if (rc != CLI_EXIT_OK) return rc;
    pub_sink.expected = b->msgs;

    double t0 = cli_now(), next_progress = t0 + STAN_PROGRESS_S;
    int64_t sent = 0;
    natsStatus s = NATS_OK;
    for (; sent < b->msgs; sent++) {
        s = stanConnection_PublishAsync(sc, b->channel, b->payload, (int)b->size, on_bench_ack,
                                        NULL);
        if (s != NATS_OK) break;
        if (sent % STAN_CLOCK_EVERY == 0) {
            if (atomic_load(&pub_sink.errors) > 0) break;
            double now = cli_now();
            if (now >= next_progress) {
                fprintf(stderr, "bench stan: pub %6.1fs  sent %lld/%lld  acked %lld\n", now - t0,
                        (long long)sent, (long long)b->msgs,
                        (long long)atomic_load(&pub_sink.acked));
                next_progress = now + STAN_PROGRESS_S;
            }
        }
    }
    if (s != NATS_OK) rc = cli_nats_error(s, "bench stan: publishing to \"%s\" failed", b->channel);
    bool all_acked = wait_for_acks(sent, t0);
    int64_t errors = atomic_load(&pub_sink.errors);
    if (rc == CLI_EXIT_OK && (errors > 0 || !all_acked || sent < b->msgs)) {
        fprintf(stderr, "%s: bench stan: %lld of %lld publishes acknowledged", CLI_PROG,
                (long long)(atomic_load(&pub_sink.acked) - errors), (long long)b->msgs);
        pthread_mutex_lock(&pub_sink.mu);
        if (errors > 0)
            fprintf(stderr, "; %lld failed, first error: %s", (long long)errors,
                    pub_sink.first_error);
        pthread_mutex_unlock(&pub_sink.mu);
        if (!all_acked) fprintf(stderr, "; no ack for %.0f s", STAN_IDLE_TIMEOUT_S);
        fputc('\n', stderr);
        rc = CLI_EXIT_FAIL;
    }
    pthread_mutex_lock(&pub_sink.mu);
    *secs = pub_sink.done_at - t0;
    pthread_mutex_unlock(&pub_sink.mu);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    return rc;
}

/* ---- drain phase ---- */

struct drain_sub {
    _Atomic int64_t received;
    int64_t expected;
};

static struct drain_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;       /* subscribers that have all their messages; under mu */
    double done_at; /* when the last one got there; under mu */
    bool lost;      /* a connection was lost; under mu */
    char lost_text[ERR_TEXT_LEN];
} drain_sink = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_drain_msg(stanConnection *sc, stanSubscription *sub, const char *channel,
                         stanMsg *msg, void *closure)
{
    struct drain_sub *d = closure;
    stanMsg_Destroy(msg);
    if (atomic_fetch_add_explicit(&d->received, 1, memory_order_relaxed) + 1 != d->expected) return;
    double now = cli_now();
    pthread_mutex_lock(&drain_sink.mu);
    drain_sink.done++;
    drain_sink.done_at = now;
    pthread_cond_signal(&drain_sink.cv);
    pthread_mutex_unlock(&drain_sink.mu);
}

static void on_drain_lost(stanConnection *sc, const char *error_text, void *closure)
{
    pthread_mutex_lock(&drain_sink.mu);
    if (!drain_sink.lost)
        snprintf(drain_sink.lost_text, sizeof drain_sink.lost_text, "%s",
                 error_text ? error_text : "");
    drain_sink.lost = true;
    pthread_cond_signal(&drain_sink.cv);
    pthread_mutex_unlock(&drain_sink.mu);
}

static int64_t drained(const struct drain_sub *d, int64_t k)
{
    int64_t total = 0;
    for (int64_t i = 0; i < k; i++)
        total += atomic_load_explicit(&d[i].received, memory_order_relaxed);
    return total;
}

/* Waits until every subscriber has its messages. Returns false on a lost connection or when
 * nothing arrived for STAN_IDLE_TIMEOUT_S. */
static bool wait_for_drain(const struct drain_sub *d, int64_t k, double t0)
{
    int64_t total = k * d[0].expected, last = drained(d, k);
    double last_change = cli_now(), next_progress = t0 + STAN_PROGRESS_S;
    pthread_mutex_lock(&drain_sink.mu);
    while (drain_sink.done < k && !drain_sink.lost) {
        struct timespec dl = cli_bench_deadline(0.2);
        pthread_cond_timedwait(&drain_sink.cv, &drain_sink.mu, &dl);
        double now = cli_now();
        int64_t n = drained(d, k);
        if (n != last) {
            last = n;
            last_change = now;
        } else if (now - last_change >= STAN_IDLE_TIMEOUT_S) {
            break;
        }
        if (now >= next_progress) {
            fprintf(stderr, "bench stan: drain %6.1fs  received %lld/%lld\n", now - t0,
                    (long long)n, (long long)total);
            next_progress = now + STAN_PROGRESS_S;
        }
    }
    bool ok = drain_sink.done >= k;
    pthread_mutex_unlock(&drain_sink.mu);
    return ok;
}

static int phase_drain(const struct stan_bench *b, double *secs)
{
    int64_t k = b->subs;
    stanConnection **scs = calloc((size_t)k, sizeof *scs);
    stanSubscription **subs = calloc((size_t)k, sizeof *subs);
    /* Static lifetime would be simpler, but K is a parameter; libnats' dispatchers are gone
     * once every connection is destroyed, and only then is this freed. */
    struct drain_sub *d = calloc((size_t)k, sizeof *d);
    stanSubOptions *opts = NULL;
    int rc = CLI_EXIT_OK;
    if (!scs || !subs || !d) {
        fprintf(stderr, "%s: bench stan: out of memory\n", CLI_PROG);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    natsStatus s = stanSubOptions_Create(&opts);
    if (s == NATS_OK) s = stanSubOptions_DeliverAllAvailable(opts);
    if (s == NATS_OK) s = stanSubOptions_SetMaxInflight(opts, STAN_DRAIN_INFLIGHT);
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "bench stan: subscription options");
        goto out;
    }
    /* Connect everyone first: the clock measures delivery, not handshakes. */
    for (int64_t i = 0; i < k && rc == CLI_EXIT_OK; i++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "sub%lld", (long long)i + 1);
        d[i].expected = b->msgs;
        stanConnOptions *copts = NULL;
        char id[256];
        snprintf(id, sizeof id, "%s-%s", b->ctx->client_id, suffix);
        s = cli_stan_options_new(b->ctx, &copts);
        if (s == NATS_OK) s = stanConnOptions_SetConnectionLostHandler(copts, on_drain_lost, NULL);
        if (s != NATS_OK) {
            stanConnOptions_Destroy(copts);
            rc = cli_nats_error(s, "bench stan: cannot connect to %s", b->ctx->server);
            break;
        }
        rc = cli_stan_connect_opts(b->ctx, id, copts, &scs[i]);
    }
    if (rc != CLI_EXIT_OK) goto out;

    double t0 = cli_now();
    for (int64_t i = 0; i < k; i++) {
        s = stanConnection_Subscribe(&subs[i], scs[i], b->channel, on_drain_msg, &d[i], opts);
        if (s != NATS_OK) {
            rc = cli_nats_error(s, "bench stan: cannot subscribe to \"%s\"", b->channel);
            goto out;
        }
    }
    if (!wait_for_drain(d, k, t0)) {
        fprintf(stderr, "%s: bench stan: drain: %lld of %lld deliveries arrived", CLI_PROG,
                (long long)drained(d, k), (long long)(k * b->msgs));
        pthread_mutex_lock(&drain_sink.mu);
        if (drain_sink.lost)
            fprintf(stderr, "; a connection was lost: %s", drain_sink.lost_text);
        else
            fprintf(stderr, "; none for %.0f s (does channel \"%s\" hold %lld messages?)",
                    STAN_IDLE_TIMEOUT_S, b->channel, (long long)b->msgs);
        pthread_mutex_unlock(&drain_sink.mu);
        fputc('\n', stderr);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    pthread_mutex_lock(&drain_sink.mu);
    *secs = drain_sink.done_at - t0;
    pthread_mutex_unlock(&drain_sink.mu);

out:
    for (int64_t i = 0; scs && i < k; i++) {
        if (subs && subs[i]) stanSubscription_Unsubscribe(subs[i]);
        if (scs[i]) stanConnection_Close(scs[i]);
        stanSubscription_Destroy(subs ? subs[i] : NULL);
        stanConnection_Destroy(scs[i]);
    }
    stanSubOptions_Destroy(opts);
    free(scs);
    free(subs);
    free(d);
    return rc;
}

/* ---- latency phase ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double percentile(const double *sorted, int64_t n, double p)
{
    int64_t rank = (int64_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

void cli_bench_percentiles(double *samples, int64_t n, double pct[3])
{
    if (n <= 0) {
        /* No samples: nothing to rank (percentile would read before the array). */
        pct[0] = pct[1] = pct[2] = 0;
        return;
    }
    sort_array(samples, (size_t)n, sizeof *samples, cmp_double);
    pct[0] = percentile(samples, n, 50);
    pct[1] = percentile(samples, n, 90);
    pct[2] = percentile(samples, n, 99);
}

static int phase_latency(const struct stan_bench *b, double pct_us[3])
{
    stanConnection *sc = NULL;
    int rc = bench_stan_connect(b, "lat", 0, &sc);
    if (rc != CLI_EXIT_OK) return rc;
    double *samples = malloc((size_t)b->lat_msgs * sizeof *samples);
    if (!samples) {
        fprintf(stderr, "%s: bench stan: out of memory\n", CLI_PROG);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    double t0 = cli_now(), next_progress = t0 + STAN_PROGRESS_S;
    for (int64_t i = -STAN_LATENCY_WARMUP; i < b->lat_msgs; i++) {
        double start = cli_now();
        natsStatus s = stanConnection_Publish(sc, b->channel, b->payload, (int)b->size);
        double end = cli_now();
        if (s != NATS_OK) {
            rc = cli_nats_error(s, "bench stan: synchronous publish to \"%s\" failed", b->channel);
            goto out;
        }
        if (i >= 0) samples[i] = (end - start) * 1e6;
        if (end >= next_progress) {
            fprintf(stderr, "bench stan: latency %6.1fs  %lld/%lld\n", end - t0,
                    (long long)(i < 0 ? 0 : i + 1), (long long)b->lat_msgs);
            next_progress = end + STAN_PROGRESS_S;
        }
    }
    cli_bench_percentiles(samples, b->lat_msgs, pct_us);

out:
    free(samples);
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    return rc;
}

/* ---- the command ---- */

int cli_bench_parse_phase(const struct cli_command *cmd, const char *name, int *phases)
{
    static const struct {
        const char *name;
        int phases;
    } names[] = {
        {"all", PHASE_ALL}, {"pub", PHASE_PUB}, {"drain", PHASE_DRAIN}, {"latency", PHASE_LATENCY}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *phases = names[i].phases;
            return CLI_CONTINUE;
        }
    return cli_usage_error(
        cmd, "invalid value '%s' for '--phase': expected pub, drain, latency or all", name);
}

/* The payload must fit in one NATS message once wrapped in a PubMsg. */
static int check_payload_size(const struct stan_bench *b)
{
    stanConnection *sc = NULL;
    int rc = bench_stan_connect(b, "probe", 0, &sc);
    if (rc != CLI_EXIT_OK) return rc;
    natsConnection *nc = NULL;
    if (stanConnection_GetNATSConnection(sc, &nc) == NATS_OK) {
        int64_t max = natsConnection_GetMaxPayload(nc);
        stanConnection_ReleaseNATSConnection(sc);
        if (b->size + STAN_PUBMSG_OVERHEAD > max) {
            fprintf(stderr,
                    "%s: bench stan: --size %lld is too large for the server's max payload %lld "
                    "(a PubMsg adds up to %d bytes)\n",
                    CLI_PROG, (long long)b->size, (long long)max, STAN_PUBMSG_OVERHEAD);
            rc = CLI_EXIT_FAIL;
        }
    }
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    return rc;
}

static void report(const struct stan_bench *b, int phases, double pub_secs, double drain_secs,
                   const double pct[3])
{
    double pub_rate = pub_secs > 0 ? (double)b->msgs / pub_secs : 0;
    double drain_rate = drain_secs > 0 ? (double)(b->msgs * b->subs) / drain_secs : 0;
    if (phases & PHASE_PUB)
        printf("stan pub: %lld msgs x %lld B, window %lld: all acked in %.3f s: %.0f msgs/s "
               "(%.1f MB/s)\n",
               (long long)b->msgs, (long long)b->size, (long long)b->window, pub_secs, pub_rate,
               pub_rate * (double)b->size / 1e6);
    if (phases & PHASE_DRAIN)
        printf("stan drain: %lld subscriber%s x %lld msgs in %.3f s: %.0f msgs/s delivered\n",
               (long long)b->subs, b->subs == 1 ? "" : "s", (long long)b->msgs, drain_secs,
               drain_rate);
    if (phases & PHASE_LATENCY)
        printf("stan sync publish latency (%lld samples): p50 %.0f us, p90 %.0f us, p99 %.0f us\n",
               (long long)b->lat_msgs, pct[0], pct[1], pct[2]);

    printf("RESULT stan msgs=%lld size=%lld window=%lld subs=%lld", (long long)b->msgs,
           (long long)b->size, (long long)b->window, (long long)b->subs);
    if (phases & PHASE_PUB) printf(" pub_secs=%.6f pub_msgs_per_sec=%.0f", pub_secs, pub_rate);
    if (phases & PHASE_DRAIN)
        printf(" drain_secs=%.6f drain_msgs_per_sec=%.0f", drain_secs, drain_rate);
    if (phases & PHASE_LATENCY)
        printf(" sync_n=%lld sync_p50_us=%.0f sync_p90_us=%.0f sync_p99_us=%.0f",
               (long long)b->lat_msgs, pct[0], pct[1], pct[2]);
    printf("\n");
    fflush(stdout);
}

static int run_bench_stan(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct stan_bench b = {
        .ctx = ctx, .msgs = 100000, .size = 128, .window = 1024, .subs = 1, .lat_msgs = 1000};
    const char *phase = "all";
    const struct cli_opt opts[] = {
        {'n', "msgs", CLI_OPT_INT, &b.msgs, 1, INT64_MAX / 1024},
        {0, "size", CLI_OPT_INT, &b.size, 0, 64 * 1024 * 1024},
        {0, "channel", CLI_OPT_STR, &b.channel, 0, 0},
        {0, "async-window", CLI_OPT_INT, &b.window, 1, 1000000},
        {0, "subs", CLI_OPT_INT, &b.subs, 1, 1000},
        {0, "latency-msgs", CLI_OPT_INT, &b.lat_msgs, 1, 10000000},
        {0, "phase", CLI_OPT_STR, &phase, 0, 0},
        {0},
    };
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, NULL, 0, 0, &npos);
    if (rc != CLI_CONTINUE) return rc;
    int phases = 0;
    rc = cli_bench_parse_phase(cmd, phase, &phases);
    if (rc != CLI_CONTINUE) return rc;
    /* A per-process channel keeps two benchmarks on one server apart. */
    char default_channel[64];
    if (!b.channel) {
        snprintf(default_channel, sizeof default_channel, "stanza.bench.stan.%ld", (long)getpid());
        b.channel = default_channel;
    }

    rc = check_payload_size(&b);
    if (rc != CLI_EXIT_OK) return rc;
    b.payload = malloc(b.size > 0 ? (size_t)b.size : 1);
    if (!b.payload) {
        fprintf(stderr, "%s: bench stan: out of memory\n", CLI_PROG);
        return CLI_EXIT_FAIL;
    }
    memset(b.payload, 'x', b.size > 0 ? (size_t)b.size : 1);

    double pub_secs = 0, drain_secs = 0, pct[3] = {0, 0, 0};
    if (phases & PHASE_PUB) rc = phase_pub(&b, &pub_secs);
    if (rc == CLI_EXIT_OK && (phases & PHASE_DRAIN)) rc = phase_drain(&b, &drain_secs);
    if (rc == CLI_EXIT_OK && (phases & PHASE_LATENCY)) rc = phase_latency(&b, pct);
    if (rc == CLI_EXIT_OK) report(&b, phases, pub_secs, drain_secs, pct);
    free(b.payload);
    return rc;
}

const struct cli_command cli_bench_stan_kind = {
    .name = "stan",
    .usage = "bench [stan] [--msgs N] [--size BYTES] [--channel C] [--async-window W] [--subs K]\n"
             "       [--latency-msgs M] [--phase pub|drain|latency|all]",
    .summary = "NATS Streaming: async publish throughput, subscriber drain throughput, and "
               "synchronous publish latency.",
    .help = "Phases (--phase all runs them in this order):\n"
            "  pub      publish N messages asynchronously, at most W PubAcks outstanding;\n"
            "           the rate counts messages acknowledged (stored) by the server\n"
            "  drain    K subscribers (one connection each, DeliverAllAvailable, MaxInflight\n"
            "           1024, auto-ack) each read N messages from the channel; the rate counts\n"
            "           deliveries (K x N). Alone, it expects an earlier pub phase's messages\n"
            "  latency  M synchronous publishes, one at a time: p50/p90/p99 of publish-to-ack\n\n"
            "Prints human lines and a machine line on stdout, with the measured phases' fields:\n"
            "  RESULT stan msgs=N size=B window=W subs=K pub_secs=S pub_msgs_per_sec=R\n"
            "         drain_secs=S drain_msgs_per_sec=R sync_n=M sync_p50_us=U sync_p90_us=U "
            "sync_p99_us=U\n\n"
            "Options:\n"
            "  -n, --msgs N       messages to publish / to drain per subscriber (default 100000)\n"
            "      --size BYTES   payload size (default 128)\n"
            "      --channel C    channel (default stanza.bench.stan.<pid>)\n"
            "      --async-window W  PubAcks outstanding in the pub phase (default 1024)\n"
            "      --subs K       subscribers in the drain phase (default 1)\n"
            "      --latency-msgs M  synchronous publishes in the latency phase (default 1000)\n"
            "      --phase P      pub, drain, latency or all (default all)\n",
    .run = run_bench_stan,
};
