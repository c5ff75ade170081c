/* cli_bench.c: `stanza bench KIND`, throughput benchmarks against a running server. This file
 * has the dispatch and `bench core`; `bench stan`, `bench js` and `bench ready` are in
 * cli_bench_stan.c, cli_bench_js.c and cli_bench_ready.c (what the first two share: in
 * cli_bench_run.c).
 *
 * `bench core` measures plain NATS core pub/sub: one connection publishes N messages as fast as
 * it can, a second connection's subscription counts them in its callback, and the clock runs
 * from the first publish until the N-th message has reached the subscriber. Using two
 * connections makes the server do real routing work (read from one socket, write to another)
 * instead of echoing on one. With --sub-url the subscriber connects to another server (a routed
 * cluster: publish on node A, receive on node B); before the clock starts, a warm-up subject,
 * subscribed after the measured one on the same connection, is published to until a message
 * of it arrives, so the route is known to carry the subscriber's interest (a server forwards
 * its subscriptions' interest over a route in order). */
#include "cli_bench.h"
#include "cli_commands.h"
#include "cli_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The publisher's final flush may wait behind megabytes of buffered data on a slow server. */
#define BENCH_FLUSH_TIMEOUT_MS 60000
/* Give up on the subscriber when no message has arrived for this long: messages that have not
 * come after this are lost, not late. */
#define BENCH_IDLE_TIMEOUT_S 5.0
/* Progress goes to stderr once a second, but only once a run has lasted this long. */
#define BENCH_PROGRESS_S 1.0
/* How many publishes between looks at the clock (a clock read per message would show up). */
#define BENCH_CLOCK_EVERY 1024
/* The warm-up publishes one probe this often until one arrives, for at most this long. */
#define BENCH_WARM_EVERY_S 0.05
#define BENCH_WARM_TIMEOUT_S 10.0

/* ---- bench core ---- */

/* What the subscriber side shares with the main thread. Static rather than on the stack
 * because libnats may still be inside a callback while we tear down after a timeout. */
static struct core_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* signalled when done or a connection is lost */
    _Atomic int64_t received; /* messages seen by the callback */
    int64_t expected;
    bool done;      /* received reached expected; under mu */
    double done_at; /* cli_now() when it did; under mu */
    bool lost;      /* a connection dropped; under mu */
    const char *lost_who;
    _Atomic int64_t async_errors; /* e.g. slow consumer reports from libnats */
    _Atomic int last_error;       /* natsStatus of the latest one */
    bool warm;                    /* a warm-up probe arrived; under mu */
} sink = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};

static void on_core_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    natsMsg_Destroy(msg);
    int64_t n = atomic_fetch_add_explicit(&sink.received, 1, memory_order_relaxed) + 1;
    if (n != sink.expected) return;
    double now = cli_now();
    pthread_mutex_lock(&sink.mu);
    sink.done = true;
    sink.done_at = now;
    pthread_cond_signal(&sink.cv);
    pthread_mutex_unlock(&sink.mu);
}

static void on_warm_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    natsMsg_Destroy(msg);
    pthread_mutex_lock(&sink.mu);
    sink.warm = true;
    pthread_cond_signal(&sink.cv);
    pthread_mutex_unlock(&sink.mu);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    atomic_fetch_add(&sink.async_errors, 1);
    atomic_store(&sink.last_error, (int)err);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    pthread_mutex_lock(&sink.mu);
    if (!sink.lost) sink.lost_who = closure;
    sink.lost = true;
    pthread_cond_signal(&sink.cv);
    pthread_mutex_unlock(&sink.mu);
}

/* A bench connection: no reconnect (a drop must end the run, not be papered over), and our
 * callbacks so a server-side slow-consumer disconnect is reported as such. */
static int bench_connect(const struct cli_ctx *ctx, const char *who, natsConnection **nc)
{
    natsOptions *opts = NULL;
    natsStatus s = cli_options_new(ctx, &opts);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, on_async_error, NULL);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, (void *)who);
    if (s != NATS_OK) {
        natsOptions_Destroy(opts);
        return cli_nats_error(s, "cannot connect to %s", ctx->server);
    }
    return cli_connect_opts(ctx, opts, nc);
}

static void print_progress(double elapsed, int64_t published, int64_t total)
{
    int64_t got = atomic_load_explicit(&sink.received, memory_order_relaxed);
    fprintf(stderr, "bench core: %6.1fs  published %lld/%lld  received %lld/%lld\n", elapsed,
            (long long)published, (long long)total, (long long)got, (long long)total);
}

/* Subscribes sub_nc to warm_subject (after the measured subscription) and publishes probes on
 * pub_nc until one arrives: then the publisher's server has the subscriber's interest. */
static natsStatus warm_up(natsConnection *pub_nc, natsConnection *sub_nc, const char *warm_subject)
{
    natsSubscription *warm = NULL;
    natsStatus s = natsConnection_Subscribe(&warm, sub_nc, warm_subject, on_warm_msg, NULL);
    if (s == NATS_OK) s = natsConnection_FlushTimeout(sub_nc, BENCH_FLUSH_TIMEOUT_MS);
    double deadline = cli_now() + BENCH_WARM_TIMEOUT_S;
    bool warm_seen = false;
    while (s == NATS_OK && !warm_seen) {
        if (cli_now() >= deadline) {
            s = NATS_TIMEOUT;
            break;
        }
        s = natsConnection_Publish(pub_nc, warm_subject, "w", 1);
        if (s == NATS_OK) s = natsConnection_FlushTimeout(pub_nc, BENCH_FLUSH_TIMEOUT_MS);
        struct timespec dl = cli_deadline(BENCH_WARM_EVERY_S);
        pthread_mutex_lock(&sink.mu);
        while (!sink.warm && !sink.lost && pthread_cond_timedwait(&sink.cv, &sink.mu, &dl) == 0) {
        }
        warm_seen = sink.warm;
        if (sink.lost) s = NATS_CONNECTION_CLOSED;
        pthread_mutex_unlock(&sink.mu);
    }
    natsSubscription_Destroy(warm);
    return s;
}

/* Waits until the subscriber has every message, a connection drops, or no message has arrived
 * for BENCH_IDLE_TIMEOUT_S. Returns true if all arrived, with the arrival time in *done_at. */
static bool wait_for_subscriber(double t0, int64_t total, double *done_at)
{
    int64_t last_count = atomic_load(&sink.received);
    double last_change = cli_now();
    double next_progress = t0 + BENCH_PROGRESS_S;

    pthread_mutex_lock(&sink.mu);
    while (!sink.done && !sink.lost) {
        /* Wake at least once a second to print progress and check for a stall. */
        double wait = next_progress - cli_now();
        if (wait < 0.05) wait = 0.05;
        if (wait > BENCH_PROGRESS_S) wait = BENCH_PROGRESS_S;
        struct timespec dl = cli_deadline(wait);
        pthread_cond_timedwait(&sink.cv, &sink.mu, &dl);
        if (sink.done || sink.lost) break;

        double now = cli_now();
        int64_t count = atomic_load(&sink.received);
        if (count != last_count) {
            last_count = count;
            last_change = now;
        } else if (now - last_change >= BENCH_IDLE_TIMEOUT_S) {
            break;
        }
        if (now >= next_progress) {
            print_progress(now - t0, total, total);
            next_progress = now + BENCH_PROGRESS_S;
        }
    }
    bool ok = sink.done;
    *done_at = sink.done_at;
    pthread_mutex_unlock(&sink.mu);
    return ok;
}

static void report_loss(natsSubscription *sub, int64_t total)
{
    int64_t got = atomic_load(&sink.received);
    int64_t dropped = 0;
    natsSubscription_GetDropped(sub, &dropped);
    fprintf(stderr, "%s: bench core: only %lld of %lld messages arrived", CLI_PROG, (long long)got,
            (long long)total);
    pthread_mutex_lock(&sink.mu);
    if (sink.lost)
        fprintf(stderr, "; the %s connection was lost", sink.lost_who);
    else
        fprintf(stderr, "; none for %.0f s", BENCH_IDLE_TIMEOUT_S);
    pthread_mutex_unlock(&sink.mu);
    if (dropped > 0) fprintf(stderr, "; %lld dropped by the client library", (long long)dropped);
    int64_t errs = atomic_load(&sink.async_errors);
    if (errs > 0)
        fprintf(stderr, "; %lld async error(s), last: %s", (long long)errs,
                natsStatus_GetText((natsStatus)atomic_load(&sink.last_error)));
    fputc('\n', stderr);
}

static void report_result(int64_t msgs, int64_t size, double pub_secs, double total_secs)
{
    double rate = total_secs > 0 ? (double)msgs / total_secs : 0;
    printf("core: %lld msgs x %lld B: published in %.3f s, all received in %.3f s: "
           "%.0f msgs/s (%.1f MB/s)\n",
           (long long)msgs, (long long)size, pub_secs, total_secs, rate, rate * (double)size / 1e6);
    printf("RESULT core msgs=%lld size=%lld pub_secs=%.6f total_secs=%.6f msgs_per_sec=%.0f\n",
           (long long)msgs, (long long)size, pub_secs, total_secs, rate);
    fflush(stdout);
}

static bool connection_lost(void)
{
    pthread_mutex_lock(&sink.mu);
    bool lost = sink.lost;
    pthread_mutex_unlock(&sink.mu);
    return lost;
}

/* Publishes msgs copies of payload as fast as libnats takes them, printing progress on long
 * runs. Stops early (returning NATS_OK) if a connection drops: the run has failed then, and
 * the caller reports it. Returns the first publish or flush failure. */
static natsStatus publish_all(natsConnection *pub, const char *subject, const char *payload,
                              int64_t size, int64_t msgs, double t0)
{
    double next_progress = t0 + BENCH_PROGRESS_S;
    for (int64_t i = 0; i < msgs; i++) {
        natsStatus s = natsConnection_Publish(pub, subject, payload, (int)size);
        if (s != NATS_OK) return s;
        if (i % BENCH_CLOCK_EVERY == 0) {
            if (connection_lost()) return NATS_OK;
            double now = cli_now();
            if (now >= next_progress) {
                print_progress(now - t0, i + 1, msgs);
                next_progress = now + BENCH_PROGRESS_S;
            }
        }
    }
    return natsConnection_FlushTimeout(pub, BENCH_FLUSH_TIMEOUT_MS);
}

/* Subscribes sub_nc to subject and waits until the publisher's server has the interest (the
 * warm-up). Returns an exit code (a failure line printed). */
static int subscribe_ready(natsConnection *pub_nc, natsConnection *sub_nc, const char *subject,
                           natsSubscription **sub)
{
    natsStatus s = natsConnection_Subscribe(sub, sub_nc, subject, on_core_msg, NULL);
    /* No client-side limit: the library's default (65536 pending) would drop messages whenever
     * the publisher briefly outpaces the callback, and we want to measure the server. */
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(*sub, -1, -1);
    /* The server must know about the subscription before the first publish. */
    if (s == NATS_OK) s = natsConnection_FlushTimeout(sub_nc, BENCH_FLUSH_TIMEOUT_MS);
    if (s != NATS_OK) return cli_nats_error(s, "bench core: cannot subscribe to \"%s\"", subject);
    /* Over a route, the subscriber's interest reaches the publisher's server a little later. */
    char warm_subject[64];
    snprintf(warm_subject, sizeof warm_subject, "_stanza_bench_warm.%ld", (long)getpid());
    s = warm_up(pub_nc, sub_nc, warm_subject);
    if (s != NATS_OK)
        return cli_nats_error(s,
                              "bench core: no warm-up message reached the subscriber within "
                              "%.0f s",
                              BENCH_WARM_TIMEOUT_S);
    return CLI_EXIT_OK;
}

static int run_bench_core(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    int64_t msgs = 1000000, size = 128;
    const char *subject = NULL, *sub_url = NULL;
    const struct cli_opt opts[] = {
        {'n', "msgs", CLI_OPT_INT, &msgs, 1, INT64_MAX / 2},
        {0, "size", CLI_OPT_INT, &size, 0, 64 * 1024 * 1024},
        {0, "subject", CLI_OPT_STR, &subject, 0, 0},
        {0, "sub-url", CLI_OPT_STR, &sub_url, 0, 0},
        {0},
    };
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, NULL, 0, 0, &npos);
    if (rc != CLI_CONTINUE) return rc;
    /* A per-process subject keeps two benchmarks on one server from counting each other. */
    char default_subject[64];
    if (!subject) {
        snprintf(default_subject, sizeof default_subject, "stanza.bench.core.%ld", (long)getpid());
        subject = default_subject;
    }
    sink.expected = msgs;
    struct cli_ctx sub_ctx = *ctx;
    if (sub_url) sub_ctx.server = sub_url;

    natsConnection *sub_nc = NULL, *pub_nc = NULL;
    natsSubscription *sub = NULL;
    char *payload = NULL;
    rc = bench_connect(&sub_ctx, "subscriber", &sub_nc);
    if (rc != CLI_EXIT_OK) goto out;
    rc = bench_connect(ctx, "publisher", &pub_nc);
    if (rc != CLI_EXIT_OK) goto out;

    int64_t max_payload = natsConnection_GetMaxPayload(pub_nc);
    if (size > max_payload) {
        fprintf(stderr, "%s: bench core: --size %lld exceeds the server's max payload %lld\n",
                CLI_PROG, (long long)size, (long long)max_payload);
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    rc = subscribe_ready(pub_nc, sub_nc, subject, &sub);
    if (rc != CLI_EXIT_OK) goto out;

    payload = malloc(size > 0 ? (size_t)size : 1);
    if (!payload) {
        fprintf(stderr, "%s: bench core: out of memory\n", CLI_PROG);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    memset(payload, 'x', size > 0 ? (size_t)size : 1);

    double t0 = cli_now();
    natsStatus s = publish_all(pub_nc, subject, payload, size, msgs, t0);
    double pub_secs = cli_now() - t0;
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "bench core: publishing to %s failed", ctx->server);
        goto out;
    }
    double done_at = 0;
    if (!wait_for_subscriber(t0, msgs, &done_at)) {
        report_loss(sub, msgs);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    report_result(msgs, size, pub_secs, done_at - t0);
    rc = CLI_EXIT_OK;

out:
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(pub_nc);
    natsConnection_Destroy(sub_nc);
    free(payload);
    return rc;
}

/* ---- bench dispatch ---- */

static const struct cli_command bench_core_kind = {
    .name = "core",
    .usage = "bench core [--msgs N] [--size BYTES] [--subject S] [--sub-url URL]",
    .summary = "NATS core pub/sub throughput: one publisher connection, one subscriber "
               "connection.",
    .help = "Prints a human line and a machine line on stdout:\n"
            "  RESULT core msgs=N size=B pub_secs=S total_secs=S msgs_per_sec=R\n"
            "total_secs runs from the first publish until the subscriber has all N.\n"
            "Before the clock starts, probes on _stanza_bench_warm.<pid> are published until\n"
            "one reaches the subscriber (its interest has crossed a route; --subject must not\n"
            "match that subject). Exits 1 if messages are lost (e.g. slow consumer).\n\n"
            "Options:\n"
            "  -n, --msgs N       messages to publish (default 1000000)\n"
            "      --size BYTES   payload size (default 128)\n"
            "      --subject S    subject (default stanza.bench.core.<pid>)\n"
            "      --sub-url URL  connect the subscriber to URL (e.g. another node of a cluster);\n"
            "                     the publisher connects to -s\n",
    .run = run_bench_core,
};

static const struct cli_command *const bench_kinds[] = {&cli_bench_stan_kind, &cli_bench_js_kind,
                                                        &bench_core_kind, &cli_bench_ready_kind};

static int run_bench(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return cli_run_kind(ctx, cmd, bench_kinds, (int)(sizeof bench_kinds / sizeof bench_kinds[0]),
                        &cli_bench_stan_kind, argc, argv);
}

const struct cli_command cli_bench_command = {
    .name = "bench",
    .usage = "bench [stan|js|core|ready] [OPTIONS]",
    .summary = "Benchmark: streaming (stan, the default), JetStream (js), NATS core, or restart "
               "time (ready). See 'stanza bench --help'.",
    .run = run_bench,
};
