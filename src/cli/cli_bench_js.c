/* cli_bench_js.c: `stanza bench js`, the `bench stan` workload against NATS JetStream (e.g.
 * `nats-server -js`), so that bench/stan.sh can measure both servers in the same run with the
 * same client library.
 *
 *   pub      js_AddStream (file storage, one subject), then one connection publishes N messages
 *            with js_PublishAsync, at most W acks outstanding (jsOptions.PublishAsync.MaxPending);
 *            the clock stops at the N-th PubAck.
 *   drain    one connection subscribes (js_Subscribe: an ephemeral push consumer, DeliverAll,
 *            AckExplicit, MaxAckPending 1024, each message acked with natsMsg_Ack) and reads the
 *            whole stream; the clock runs from the subscribe until the N-th message.
 *   latency  M synchronous js_Publish calls; p50/p90/p99 of publish-to-PubAck.
 *
 * The drain consumer mirrors `bench stan`'s (MaxInflight 1024, auto-ack). Like `bench stan`,
 * `--phase drain` alone expects the stream to hold the N messages of an earlier pub run with
 * the same --stream and --msgs. */
#include "cli_bench.h"
#include "cli_commands.h"
#include "cli_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JS_IDLE_TIMEOUT_S 10.0
#define JS_PROGRESS_S 1.0
#define JS_CLOCK_EVERY 256
/* How long js_PublishAsync may block on a full window, and the JetStream API / PubAck wait. */
#define JS_WAIT_MS 30000
#define JS_LATENCY_WARMUP 10
/* MaxAckPending of the drain consumer: `bench stan`'s MaxInflight. */
#define JS_DRAIN_INFLIGHT 1024
/* JSStreamNameExistErr: AddStream on a stream that exists with another configuration. */
#define JS_ERR_STREAM_EXISTS 10058
#define JS_ERR_TEXT_LEN 256

struct js_bench {
    const struct cli_ctx *ctx;
    int64_t msgs, size, window, lat_msgs;
    const char *stream, *subject;
    char *payload;
};

static struct js_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int64_t count;  /* acks (pub) or messages (drain) */
    _Atomic int64_t errors; /* failed publishes */
    int64_t expected;
    double done_at; /* under mu: when count reached expected */
    bool lost;      /* under mu: the connection dropped */
    char first_error[JS_ERR_TEXT_LEN];
} sink = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void sink_count(void)
{
    int64_t n = atomic_fetch_add_explicit(&sink.count, 1, memory_order_relaxed) + 1;
    if (n != sink.expected) return;
    double now = cli_now();
    pthread_mutex_lock(&sink.mu);
    sink.done_at = now;
    pthread_cond_signal(&sink.cv);
    pthread_mutex_unlock(&sink.mu);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    pthread_mutex_lock(&sink.mu);
    sink.lost = true;
    pthread_cond_signal(&sink.cv);
    pthread_mutex_unlock(&sink.mu);
}

static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    if (pae && atomic_fetch_add(&sink.errors, 1) == 0) {
        pthread_mutex_lock(&sink.mu);
        snprintf(sink.first_error, sizeof sink.first_error, "%s",
                 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
        pthread_mutex_unlock(&sink.mu);
    }
    natsMsg_Destroy(msg);
    sink_count();
}

static void on_drain_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    natsMsg_Ack(msg, NULL);
    natsMsg_Destroy(msg);
    sink_count();
}

/* A connection without reconnect (a drop ends the run) and its JetStream context, whose async
 * publishes are bounded by window (0: libnats' default). */
static int js_connect(const struct js_bench *b, int64_t window, natsConnection **nc, jsCtx **js)
{
    natsOptions *opts = NULL;
    natsStatus s = cli_options_new(b->ctx, &opts);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, NULL);
    if (s != NATS_OK) {
        natsOptions_Destroy(opts);
        return cli_nats_error(s, "bench js: cannot connect to %s", b->ctx->server);
    }
    int rc = cli_connect_opts(b->ctx, opts, nc);
    if (rc != CLI_EXIT_OK) return rc;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_WAIT_MS;
    if (window > 0) {
        jo.PublishAsync.MaxPending = window;
        jo.PublishAsync.AckHandler = on_pub_ack;
        jo.PublishAsync.StallWait = JS_WAIT_MS;
    }
    s = natsConnection_JetStream(js, *nc, &jo);
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "bench js: no JetStream context");
        natsConnection_Destroy(*nc);
        *nc = NULL;
    }
    return rc;
}

static void js_close(natsConnection *nc, jsCtx *js)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* Creates the file-backed stream on the subject; one that exists already is fine. */
static int ensure_stream(const struct js_bench *b, jsCtx *js)
{
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[1] = {b->subject};
    cfg.Name = b->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK || jerr == JS_ERR_STREAM_EXISTS) return CLI_EXIT_OK;
    return cli_nats_error(s, "bench js: cannot create stream \"%s\" on \"%s\" (JetStream error %d)",
                          b->stream, b->subject, (int)jerr);
}

/* Waits until sink.count reaches target. False if the connection dropped or nothing came for
 * JS_IDLE_TIMEOUT_S. */
static bool wait_for_count(int64_t target, double t0, const char *what)
{
    int64_t last = atomic_load(&sink.count);
    double last_change = cli_now(), next_progress = t0 + JS_PROGRESS_S;
    pthread_mutex_lock(&sink.mu);
    while (atomic_load(&sink.count) < target && !sink.lost) {
        struct timespec dl = cli_bench_deadline(0.2);
        pthread_cond_timedwait(&sink.cv, &sink.mu, &dl);
        double now = cli_now();
        int64_t n = atomic_load(&sink.count);
        if (n != last) {
            last = n;
            last_change = now;
        } else if (now - last_change >= JS_IDLE_TIMEOUT_S) {
            break;
        }
        if (now >= next_progress) {
            fprintf(stderr, "bench js: %s %6.1fs  %lld/%lld\n", what, now - t0, (long long)n,
                    (long long)target);
            next_progress = now + JS_PROGRESS_S;
        }
    }
    pthread_mutex_unlock(&sink.mu);
    return atomic_load(&sink.count) >= target;
}

static void reset_sink(int64_t expected)
{
    pthread_mutex_lock(&sink.mu);
    atomic_store(&sink.count, 0);
    atomic_store(&sink.errors, 0);
    sink.expected = expected;
    sink.done_at = 0;
    sink.lost = false;
    sink.first_error[0] = '\0';
    pthread_mutex_unlock(&sink.mu);
}

static int phase_pub(const struct js_bench *b, double *secs)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    int rc = js_connect(b, b->window, &nc, &js);
    if (rc != CLI_EXIT_OK) return rc;
    rc = ensure_stream(b, js);
    if (rc != CLI_EXIT_OK) goto out;
    reset_sink(b->msgs);

    double t0 = cli_now(), next_progress = t0 + JS_PROGRESS_S;
    int64_t sent = 0;
    natsStatus s = NATS_OK;
    for (; sent < b->msgs; sent++) {
        s = js_PublishAsync(js, b->subject, b->payload, (int)b->size, NULL);
        if (s != NATS_OK) break;
        if (sent % JS_CLOCK_EVERY == 0) {
            if (atomic_load(&sink.errors) > 0) break;
            double now = cli_now();
            if (now >= next_progress) {
                fprintf(stderr, "bench js: pub %6.1fs  sent %lld/%lld  acked %lld\n", now - t0,
                        (long long)sent, (long long)b->msgs, (long long)atomic_load(&sink.count));
                next_progress = now + JS_PROGRESS_S;
            }
        }
    }
    if (s != NATS_OK) rc = cli_nats_error(s, "bench js: publishing to \"%s\" failed", b->subject);
    bool all_acked = wait_for_count(sent, t0, "pub");
    int64_t errors = atomic_load(&sink.errors);
    if (rc == CLI_EXIT_OK && (errors > 0 || !all_acked || sent < b->msgs)) {
        fprintf(stderr, "%s: bench js: %lld of %lld publishes acknowledged", CLI_PROG,
                (long long)(atomic_load(&sink.count) - errors), (long long)b->msgs);
        pthread_mutex_lock(&sink.mu);
        if (errors > 0)
            fprintf(stderr, "; %lld failed, first error: %s", (long long)errors, sink.first_error);
        if (sink.lost) fprintf(stderr, "; the connection was lost");
        pthread_mutex_unlock(&sink.mu);
        if (!all_acked) fprintf(stderr, "; no ack for %.0f s", JS_IDLE_TIMEOUT_S);
        fputc('\n', stderr);
        rc = CLI_EXIT_FAIL;
    }
    pthread_mutex_lock(&sink.mu);
    *secs = sink.done_at - t0;
    pthread_mutex_unlock(&sink.mu);
out:
    js_close(nc, js);
    return rc;
}

static int phase_drain(const struct js_bench *b, double *secs)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    int rc = js_connect(b, 0, &nc, &js);
    if (rc != CLI_EXIT_OK) return rc;
    reset_sink(b->msgs);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = b->stream;
    so.ManualAck = true; /* acked in the callback: the same on every libnats version */
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = JS_DRAIN_INFLIGHT;
    jsErrCode jerr = 0;
    double t0 = cli_now();
    natsStatus s = js_Subscribe(&sub, js, b->subject, on_drain_msg, NULL, NULL, &so, &jerr);
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "bench js: cannot subscribe to \"%s\" (JetStream error %d)",
                            b->subject, (int)jerr);
        goto out;
    }
    if (!wait_for_count(b->msgs, t0, "drain")) {
        fprintf(stderr, "%s: bench js: drain: %lld of %lld messages arrived", CLI_PROG,
                (long long)atomic_load(&sink.count), (long long)b->msgs);
        pthread_mutex_lock(&sink.mu);
        if (sink.lost)
            fprintf(stderr, "; the connection was lost");
        else
            fprintf(stderr, "; none for %.0f s (does stream \"%s\" hold %lld messages?)",
                    JS_IDLE_TIMEOUT_S, b->stream, (long long)b->msgs);
        pthread_mutex_unlock(&sink.mu);
        fputc('\n', stderr);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    pthread_mutex_lock(&sink.mu);
    *secs = sink.done_at - t0;
    pthread_mutex_unlock(&sink.mu);
out:
    if (sub) natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return rc;
}

static int phase_latency(const struct js_bench *b, double pct_us[3])
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    int rc = js_connect(b, 0, &nc, &js);
    if (rc != CLI_EXIT_OK) return rc;
    double *samples = NULL;
    rc = ensure_stream(b, js);
    if (rc != CLI_EXIT_OK) goto out;
    samples = malloc((size_t)b->lat_msgs * sizeof *samples);
    if (!samples) {
        fprintf(stderr, "%s: bench js: out of memory\n", CLI_PROG);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = JS_WAIT_MS;
    double t0 = cli_now(), next_progress = t0 + JS_PROGRESS_S;
    for (int64_t i = -JS_LATENCY_WARMUP; i < b->lat_msgs; i++) {
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        double start = cli_now();
        natsStatus s = js_Publish(&pa, js, b->subject, b->payload, (int)b->size, &po, &jerr);
        double end = cli_now();
        jsPubAck_Destroy(pa);
        if (s != NATS_OK) {
            rc = cli_nats_error(s, "bench js: synchronous publish to \"%s\" failed", b->subject);
            goto out;
        }
        if (i >= 0) samples[i] = (end - start) * 1e6;
        if (end >= next_progress) {
            fprintf(stderr, "bench js: latency %6.1fs  %lld/%lld\n", end - t0,
                    (long long)(i < 0 ? 0 : i + 1), (long long)b->lat_msgs);
            next_progress = end + JS_PROGRESS_S;
        }
    }
    cli_bench_percentiles(samples, b->lat_msgs, pct_us);
out:
    free(samples);
    js_close(nc, js);
    return rc;
}

static void report(const struct js_bench *b, int phases, double pub_secs, double drain_secs,
                   const double pct[3])
{
    double pub_rate = pub_secs > 0 ? (double)b->msgs / pub_secs : 0;
    double drain_rate = drain_secs > 0 ? (double)b->msgs / drain_secs : 0;
    if (phases & PHASE_PUB)
        printf("js pub: %lld msgs x %lld B, window %lld: all acked in %.3f s: %.0f msgs/s "
               "(%.1f MB/s)\n",
               (long long)b->msgs, (long long)b->size, (long long)b->window, pub_secs, pub_rate,
               pub_rate * (double)b->size / 1e6);
    if (phases & PHASE_DRAIN)
        printf("js drain: 1 subscriber x %lld msgs in %.3f s: %.0f msgs/s delivered\n",
               (long long)b->msgs, drain_secs, drain_rate);
    if (phases & PHASE_LATENCY)
        printf("js sync publish latency (%lld samples): p50 %.0f us, p90 %.0f us, p99 %.0f us\n",
               (long long)b->lat_msgs, pct[0], pct[1], pct[2]);

    printf("RESULT js msgs=%lld size=%lld window=%lld subs=1", (long long)b->msgs,
           (long long)b->size, (long long)b->window);
    if (phases & PHASE_PUB) printf(" pub_secs=%.6f pub_msgs_per_sec=%.0f", pub_secs, pub_rate);
    if (phases & PHASE_DRAIN)
        printf(" drain_secs=%.6f drain_msgs_per_sec=%.0f", drain_secs, drain_rate);
    if (phases & PHASE_LATENCY)
        printf(" sync_n=%lld sync_p50_us=%.0f sync_p90_us=%.0f sync_p99_us=%.0f",
               (long long)b->lat_msgs, pct[0], pct[1], pct[2]);
    printf("\n");
    fflush(stdout);
}

static int run_bench_js(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct js_bench b = {.ctx = ctx, .msgs = 100000, .size = 128, .window = 1024, .lat_msgs = 1000};
    const char *phase = "all";
    const struct cli_opt opts[] = {
        {'n', "msgs", CLI_OPT_INT, &b.msgs, 1, INT64_MAX / 1024},
        {0, "size", CLI_OPT_INT, &b.size, 0, 64 * 1024 * 1024},
        {0, "stream", CLI_OPT_STR, &b.stream, 0, 0},
        {0, "subject", CLI_OPT_STR, &b.subject, 0, 0},
        {0, "async-window", CLI_OPT_INT, &b.window, 1, 1000000},
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
    /* Stream names may not hold '.', so the default is one token, and the subject its name. */
    char default_stream[64];
    if (!b.stream) {
        snprintf(default_stream, sizeof default_stream, "stanza_bench_js_%ld", (long)getpid());
        b.stream = default_stream;
    }
    if (strpbrk(b.stream, ".*> \t") || !*b.stream)
        return cli_usage_error(cmd, "invalid stream name '%s' (no '.', '*', '>' or spaces)",
                               b.stream);
    if (!b.subject) b.subject = b.stream;

    b.payload = malloc(b.size > 0 ? (size_t)b.size : 1);
    if (!b.payload) {
        fprintf(stderr, "%s: bench js: out of memory\n", CLI_PROG);
        return CLI_EXIT_FAIL;
    }
    memset(b.payload, 'x', b.size > 0 ? (size_t)b.size : 1);

    double pub_secs = 0, drain_secs = 0, pct[3] = {0, 0, 0};
    rc = CLI_EXIT_OK;
    if (phases & PHASE_PUB) rc = phase_pub(&b, &pub_secs);
    if (rc == CLI_EXIT_OK && (phases & PHASE_DRAIN)) rc = phase_drain(&b, &drain_secs);
    if (rc == CLI_EXIT_OK && (phases & PHASE_LATENCY)) rc = phase_latency(&b, pct);
    if (rc == CLI_EXIT_OK) report(&b, phases, pub_secs, drain_secs, pct);
    free(b.payload);
    return rc;
}

const struct cli_command cli_bench_js_kind = {
    .name = "js",
    .usage = "bench js [--msgs N] [--size BYTES] [--stream S] [--subject SUBJ] [--async-window W]\n"
             "       [--latency-msgs M] [--phase pub|drain|latency|all]",
    .summary = "NATS JetStream (e.g. nats-server -js), the stan workload: async publish, drain, "
               "sync publish latency.",
    .help = "The workload of 'bench stan' against a JetStream server, for comparison.\n"
            "Phases (--phase all runs them in this order):\n"
            "  pub      create stream S (file storage, subject SUBJ) if needed, then publish N\n"
            "           messages with js_PublishAsync, at most W acks outstanding; the rate\n"
            "           counts messages acknowledged (stored) by the server\n"
            "  drain    one push consumer (DeliverAll, AckExplicit, MaxAckPending 1024, each\n"
            "           message acked) reads N messages. Alone, it expects an earlier pub\n"
            "           phase's messages in S\n"
            "  latency  M synchronous js_Publish calls: p50/p90/p99 of publish-to-ack\n\n"
            "Prints human lines and a machine line on stdout, with the measured phases' fields:\n"
            "  RESULT js msgs=N size=B window=W subs=1 pub_secs=S pub_msgs_per_sec=R\n"
            "         drain_secs=S drain_msgs_per_sec=R sync_n=M sync_p50_us=U sync_p90_us=U "
            "sync_p99_us=U\n\n"
            "Options:\n"
            "  -n, --msgs N       messages to publish / to drain (default 100000)\n"
            "      --size BYTES   payload size (default 128)\n"
            "      --stream S     stream name (default stanza_bench_js_<pid>)\n"
            "      --subject SUBJ subject of the stream (default: the stream name)\n"
            "      --async-window W  acks outstanding in the pub phase (default 1024)\n"
            "      --latency-msgs M  synchronous publishes in the latency phase (default 1000)\n"
            "      --phase P      pub, drain, latency or all (default all)\n",
    .run = run_bench_js,
};
