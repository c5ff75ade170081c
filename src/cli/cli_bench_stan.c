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

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The PubAck wait libnats applies to each message; a fsyncing server under a full window may
 * take a while, but not this long. */
#define STAN_PUB_ACK_WAIT_MS 30000
/* MaxInflight of the drain subscriptions (libnats' default, spelled out). */
#define STAN_DRAIN_INFLIGHT 1024
/* Bytes a PubMsg adds around the payload (client id, guid, channel, field tags), rounded up. */
#define STAN_PUBMSG_OVERHEAD 512

struct stan_bench {
    struct cli_bench_run run; /* the numbers and phases */
    const struct cli_ctx *ctx;
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

/* ---- pub and latency phases ---- */

static struct cli_bench_sink pub_sink = CLI_BENCH_SINK_INIT; /* PubAcks */

static void on_bench_ack(const char *guid, const char *error, void *closure)
{
    if (error && *error) cli_bench_sink_error(&pub_sink, error);
    cli_bench_sink_count(&pub_sink);
}

struct stan_pub {
    const struct stan_bench *b;
    stanConnection *sc;
};

static natsStatus publish_async(void *arg)
{
    const struct stan_pub *p = arg;
    return stanConnection_PublishAsync(p->sc, p->b->channel, p->b->payload, (int)p->b->run.size,
                                       on_bench_ack, NULL);
}

static natsStatus publish_sync(void *arg)
{
    const struct stan_pub *p = arg;
    return stanConnection_Publish(p->sc, p->b->channel, p->b->payload, (int)p->b->run.size);
}

static void stan_close(stanConnection *sc)
{
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
}

/* Returns the exit code; *secs is the time from the first publish to the last ack. */
static int phase_pub(void *arg, double *secs)
{
    const struct stan_bench *b = arg;
    struct stan_pub p = {.b = b};
    int rc = bench_stan_connect(b, "pub", (int)b->run.window, &p.sc);
    if (rc != CLI_EXIT_OK) return rc;
    rc = cli_bench_publish_all(&pub_sink, "stan", b->channel, b->run.msgs, publish_async, &p, secs);
    stan_close(p.sc);
    return rc;
}

static int phase_latency(void *arg, double pct_us[3])
{
    const struct stan_bench *b = arg;
    struct stan_pub p = {.b = b};
    int rc = bench_stan_connect(b, "lat", 0, &p.sc);
    if (rc != CLI_EXIT_OK) return rc;
    rc = cli_bench_latency("stan", b->channel, b->run.lat_msgs, publish_sync, &p, pct_us);
    stan_close(p.sc);
    return rc;
}

/* ---- drain phase ---- */

struct drain_sub {
    _Atomic int64_t received;
    int64_t expected;
};

/* Subscribers that have all their messages. */
static struct cli_bench_sink drain_sink = CLI_BENCH_SINK_INIT;

static void on_drain_msg(stanConnection *sc, stanSubscription *sub, const char *channel,
                         stanMsg *msg, void *closure)
{
    struct drain_sub *d = closure;
    stanMsg_Destroy(msg);
    if (atomic_fetch_add_explicit(&d->received, 1, memory_order_relaxed) + 1 == d->expected)
        cli_bench_sink_count(&drain_sink);
}

static void on_drain_lost(stanConnection *sc, const char *error_text, void *closure)
{
    cli_bench_sink_lost(&drain_sink, error_text ? error_text : "");
}

struct drained {
    const struct drain_sub *d;
    int64_t k;
};

/* Deliveries so far, all subscribers together. */
static int64_t drained(void *arg)
{
    const struct drained *x = arg;
    int64_t total = 0;
    for (int64_t i = 0; i < x->k; i++)
        total += atomic_load_explicit(&x->d[i].received, memory_order_relaxed);
    return total;
}

/* Connects the K subscribers first: the clock measures delivery, not handshakes. */
static int drain_connect(const struct stan_bench *b, stanConnection **scs, struct drain_sub *d)
{
    for (int64_t i = 0; i < b->run.subs; i++) {
        d[i].expected = b->run.msgs;
        char id[256];
        snprintf(id, sizeof id, "%s-sub%lld", b->ctx->client_id, (long long)i + 1);
        stanConnOptions *copts = NULL;
        natsStatus s = cli_stan_options_new(b->ctx, &copts);
        if (s == NATS_OK) s = stanConnOptions_SetConnectionLostHandler(copts, on_drain_lost, NULL);
        if (s != NATS_OK) {
            stanConnOptions_Destroy(copts);
            return cli_nats_error(s, "bench stan: cannot connect to %s", b->ctx->server);
        }
        int rc = cli_stan_connect_opts(b->ctx, id, copts, &scs[i]);
        if (rc != CLI_EXIT_OK) return rc;
    }
    return CLI_EXIT_OK;
}

/* Subscribes all K and waits until each has every message. */
static int drain_run(const struct stan_bench *b, stanConnection **scs, stanSubscription **subs,
                     struct drain_sub *d, double *secs)
{
    stanSubOptions *opts = NULL;
    natsStatus s = stanSubOptions_Create(&opts);
    if (s == NATS_OK) s = stanSubOptions_DeliverAllAvailable(opts);
    if (s == NATS_OK) s = stanSubOptions_SetMaxInflight(opts, STAN_DRAIN_INFLIGHT);
    double t0 = cli_now();
    for (int64_t i = 0; i < b->run.subs && s == NATS_OK; i++)
        s = stanConnection_Subscribe(&subs[i], scs[i], b->channel, on_drain_msg, &d[i], opts);
    stanSubOptions_Destroy(opts);
    if (s != NATS_OK)
        return cli_nats_error(s, "bench stan: cannot subscribe to \"%s\"", b->channel);
    struct drained x = {d, b->run.subs};
    struct cli_bench_meter m = {.kind = "stan",
                                .phase = "drain",
                                .total = b->run.subs * b->run.msgs,
                                .progress = drained,
                                .arg = &x};
    if (!cli_bench_wait(&drain_sink, b->run.subs, &m, t0)) {
        char where[300];
        snprintf(where, sizeof where, "channel \"%s\"", b->channel);
        cli_bench_drain_failed(&drain_sink, "stan", "deliveries", drained(&x),
                               b->run.subs * b->run.msgs, where, b->run.msgs);
        return CLI_EXIT_FAIL;
    }
    *secs = cli_bench_done_at(&drain_sink, t0);
    return CLI_EXIT_OK;
}

static int phase_drain(void *arg, double *secs)
{
    const struct stan_bench *b = arg;
    int64_t k = b->run.subs;
    stanConnection **scs = calloc((size_t)k, sizeof *scs);
    stanSubscription **subs = calloc((size_t)k, sizeof *subs);
    /* Static lifetime would be simpler, but K is a parameter; libnats' dispatchers are gone
     * once every connection is destroyed, and only then is this freed. */
    struct drain_sub *d = calloc((size_t)k, sizeof *d);
    int rc = CLI_EXIT_FAIL;
    cli_bench_sink_reset(&drain_sink, k);
    if (!scs || !subs || !d)
        fprintf(stderr, "%s: bench stan: out of memory\n", CLI_PROG);
    else if ((rc = drain_connect(b, scs, d)) == CLI_EXIT_OK)
        rc = drain_run(b, scs, subs, d, secs);
    for (int64_t i = 0; scs && i < k; i++) {
        if (subs && subs[i]) stanSubscription_Unsubscribe(subs[i]);
        if (scs[i]) stanConnection_Close(scs[i]);
        stanSubscription_Destroy(subs ? subs[i] : NULL);
        stanConnection_Destroy(scs[i]);
    }
    free(scs);
    free(subs);
    free(d);
    return rc;
}

/* ---- the command ---- */

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
        if (b->run.size + STAN_PUBMSG_OVERHEAD > max) {
            fprintf(stderr,
                    "%s: bench stan: --size %lld is too large for the server's max payload %lld "
                    "(a PubMsg adds up to %d bytes)\n",
                    CLI_PROG, (long long)b->run.size, (long long)max, STAN_PUBMSG_OVERHEAD);
            rc = CLI_EXIT_FAIL;
        }
    }
    stan_close(sc);
    return rc;
}

static int run_bench_stan(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct stan_bench b = {
        .run = {.kind = "stan", .pub = phase_pub, .drain = phase_drain, .latency = phase_latency},
        .ctx = ctx};
    const struct cli_opt extra[] = {
        {0, "channel", CLI_OPT_STR, &b.channel, 0, 0},
        {0, "subs", CLI_OPT_INT, &b.run.subs, 1, 1000},
        {0},
    };
    int rc = cli_bench_parse(ctx, cmd, argc, argv, extra, &b.run);
    if (rc != CLI_CONTINUE) return rc;
    /* A per-process channel keeps two benchmarks on one server apart. */
    char default_channel[64];
    if (!b.channel) {
        snprintf(default_channel, sizeof default_channel, "stanza.bench.stan.%ld", (long)getpid());
        b.channel = default_channel;
    }
    rc = check_payload_size(&b);
    if (rc != CLI_EXIT_OK) return rc;
    return cli_bench_run(&b.run, &b, &b.payload);
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
