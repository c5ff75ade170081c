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

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long js_PublishAsync may block on a full window, and the JetStream API / PubAck wait. */
#define JS_WAIT_MS 30000
/* MaxAckPending of the drain consumer: `bench stan`'s MaxInflight. */
#define JS_DRAIN_INFLIGHT 1024
/* JSStreamNameExistErr: AddStream on a stream that exists with another configuration. */
#define JS_ERR_STREAM_EXISTS 10058

struct js_bench {
    struct cli_bench_run run; /* the numbers and phases */
    const struct cli_ctx *ctx;
    const char *stream, *subject;
    char *payload;
};

static struct cli_bench_sink sink = CLI_BENCH_SINK_INIT; /* acks (pub) or messages (drain) */

/* Each phase's connection, numbered: closing one phase's connection calls its disconnected
 * handler on libnats' thread, possibly once the next phase has begun, which must not count it
 * as that phase's loss. */
static _Atomic intptr_t phase_conn;

static void on_disconnected(natsConnection *nc, void *closure)
{
    if ((intptr_t)closure == atomic_load(&phase_conn)) cli_bench_sink_lost(&sink, NULL);
}

static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    if (pae)
        cli_bench_sink_error(&sink, pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    natsMsg_Destroy(msg);
    cli_bench_sink_count(&sink);
}

static void on_drain_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    natsMsg_Ack(msg, NULL);
    natsMsg_Destroy(msg);
    cli_bench_sink_count(&sink);
}

/* A connection without reconnect (a drop ends the run) and its JetStream context, whose async
 * publishes are bounded by window (0: libnats' default). */
static int js_connect(const struct js_bench *b, int64_t window, natsConnection **nc, jsCtx **js)
{
    natsOptions *opts = NULL;
    natsStatus s = cli_options_new(b->ctx, &opts);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
    intptr_t id = atomic_fetch_add(&phase_conn, 1) + 1;
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, (void *)id);
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

/* One publish of the pub phase (async) or the latency phase (synchronous). */
struct js_pub {
    const struct js_bench *b;
    jsCtx *js;
    jsPubOptions po;
};

static natsStatus publish_async(void *arg)
{
    const struct js_pub *p = arg;
    return js_PublishAsync(p->js, p->b->subject, p->b->payload, (int)p->b->run.size, NULL);
}

static natsStatus publish_sync(void *arg)
{
    struct js_pub *p = arg;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_Publish(&pa, p->js, p->b->subject, p->b->payload, (int)p->b->run.size, &p->po, &jerr);
    jsPubAck_Destroy(pa);
    return s;
}

static int phase_pub(void *arg, double *secs)
{
    const struct js_bench *b = arg;
    struct js_pub p = {.b = b};
    natsConnection *nc = NULL;
    int rc = js_connect(b, b->run.window, &nc, &p.js);
    if (rc != CLI_EXIT_OK) return rc;
    rc = ensure_stream(b, p.js);
    if (rc == CLI_EXIT_OK)
        rc = cli_bench_publish_all(&sink, "js", b->subject, b->run.msgs, publish_async, &p, secs);
    js_close(nc, p.js);
    return rc;
}

static int phase_drain(void *arg, double *secs)
{
    const struct js_bench *b = arg;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    int rc = js_connect(b, 0, &nc, &js);
    if (rc != CLI_EXIT_OK) return rc;
    cli_bench_sink_reset(&sink, b->run.msgs);

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
    struct cli_bench_meter m = {.kind = "js", .phase = "drain", .total = b->run.msgs};
    char where[300];
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "bench js: cannot subscribe to \"%s\" (JetStream error %d)",
                            b->subject, (int)jerr);
    } else if (!cli_bench_wait(&sink, b->run.msgs, &m, t0)) {
        snprintf(where, sizeof where, "stream \"%s\"", b->stream);
        cli_bench_drain_failed(&sink, "js", "messages", atomic_load(&sink.count), b->run.msgs,
                               where, b->run.msgs);
        rc = CLI_EXIT_FAIL;
    } else {
        *secs = cli_bench_done_at(&sink, t0);
    }
    if (sub) natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return rc;
}

static int phase_latency(void *arg, double pct_us[3])
{
    const struct js_bench *b = arg;
    struct js_pub p = {.b = b};
    natsConnection *nc = NULL;
    int rc = js_connect(b, 0, &nc, &p.js);
    if (rc != CLI_EXIT_OK) return rc;
    jsPubOptions_Init(&p.po);
    p.po.MaxWait = JS_WAIT_MS;
    rc = ensure_stream(b, p.js);
    if (rc == CLI_EXIT_OK)
        rc = cli_bench_latency("js", b->subject, b->run.lat_msgs, publish_sync, &p, pct_us);
    js_close(nc, p.js);
    return rc;
}

static int run_bench_js(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct js_bench b = {
        .run = {.kind = "js", .pub = phase_pub, .drain = phase_drain, .latency = phase_latency},
        .ctx = ctx};
    const struct cli_opt extra[] = {
        {0, "stream", CLI_OPT_STR, &b.stream, 0, 0},
        {0, "subject", CLI_OPT_STR, &b.subject, 0, 0},
        {0},
    };
    int rc = cli_bench_parse(ctx, cmd, argc, argv, extra, &b.run);
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
    return cli_bench_run(&b.run, &b, &b.payload);
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
