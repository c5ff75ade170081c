/* cli_bench_ready.c: `stanza bench ready`, how long a server takes to serve its first client.
 *
 * A script notes the time, spawns the server and runs this at once with that time (--since,
 * seconds since the epoch as bash's $EPOCHREALTIME gives it). It tries, as fast as failures
 * come back, to connect and publish one message synchronously: a streaming connect and
 * stanConnection_Publish (the publish is acknowledged once stored), or with --js a NATS connect
 * and js_Publish to a stream's subject. The first success ends it; it prints the milliseconds
 * from --since to that moment. Startup of this process runs meanwhile and is included, as it
 * would be for any client. */
#include "cli_bench.h"
#include "cli_commands.h"
#include "cli_common.h"
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Pause between failed attempts. */
#define READY_RETRY_NS 1000000L
/* A connect attempt's own timeouts: short, since the server is local and we retry anyway. */
#define READY_ATTEMPT_MS 1000

static natsStatus try_stan(const struct cli_ctx *ctx, const char *channel)
{
    natsOptions *nopts = NULL;
    stanConnOptions *sopts = NULL;
    stanConnection *sc = NULL;
    natsStatus s = cli_options_new(ctx, &nopts);
    if (s == NATS_OK) s = natsOptions_SetTimeout(nopts, READY_ATTEMPT_MS);
    if (s == NATS_OK) s = stanConnOptions_Create(&sopts);
    if (s == NATS_OK) s = stanConnOptions_SetNATSOptions(sopts, nopts);
    if (s == NATS_OK) s = stanConnOptions_SetConnectionWait(sopts, READY_ATTEMPT_MS);
    if (s == NATS_OK) s = stanConnOptions_SetPubAckWait(sopts, READY_ATTEMPT_MS);
    if (s == NATS_OK) s = stanConnection_Connect(&sc, ctx->cluster, ctx->client_id, sopts);
    if (s == NATS_OK) s = stanConnection_Publish(sc, channel, "ready", 5);
    if (sc) stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    stanConnOptions_Destroy(sopts);
    natsOptions_Destroy(nopts);
    return s;
}

static natsStatus try_js(const struct cli_ctx *ctx, const char *subject)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsPubAck *pa = NULL;
    natsStatus s = cli_options_new(ctx, &opts);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, READY_ATTEMPT_MS);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = READY_ATTEMPT_MS;
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, &jo);
    if (s == NATS_OK) s = js_Publish(&pa, js, subject, "ready", 5, NULL, NULL);
    jsPubAck_Destroy(pa);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    return s;
}

static int run_bench_ready(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                           char **argv)
{
    const char *since_arg = NULL, *target = NULL;
    int64_t timeout_ms = 60000;
    bool js = false;
    const struct cli_opt opts[] = {
        {0, "since", CLI_OPT_STR, &since_arg, 0, 0},
        {0, "timeout-ms", CLI_OPT_INT, &timeout_ms, 1, 24 * 3600 * 1000LL},
        {0, "js", CLI_OPT_FLAG, &js, 0, 0},
        {0, "channel", CLI_OPT_STR, &target, 0, 0},
        {0, "subject", CLI_OPT_STR, &target, 0, 0},
        {0},
    };
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, NULL, 0, 0, &npos);
    if (rc != CLI_CONTINUE) return rc;
    /* Wall-clock seconds: --since is a time since the epoch, taken by another process. */
    double since = (double)clock_wall_ns() / 1e9;
    if (since_arg) {
        char *end = NULL;
        errno = 0;
        since = strtod(since_arg, &end);
        if (errno != 0 || end == since_arg || *end != '\0' || since <= 0)
            return cli_usage_error(cmd,
                                   "invalid value '%s' for '--since': expected seconds "
                                   "since the epoch, e.g. $EPOCHREALTIME",
                                   since_arg);
    }
    if (!target) target = "stanza.bench.ready";

    double deadline = since + (double)timeout_ms / 1000.0;
    int64_t attempts = 0;
    natsStatus s = NATS_OK;
    for (;;) {
        attempts++;
        s = js ? try_js(ctx, target) : try_stan(ctx, target);
        if (s == NATS_OK) break;
        if ((double)clock_wall_ns() / 1e9 >= deadline) {
            fprintf(stderr, "%s: bench ready: %s not served within %lld ms (%lld attempts): %s\n",
                    CLI_PROG, ctx->server, (long long)timeout_ms, (long long)attempts,
                    cli_nats_error_text(s));
            return CLI_EXIT_FAIL;
        }
        struct timespec pause = {0, READY_RETRY_NS};
        nanosleep(&pause, NULL);
    }
    double ms = ((double)clock_wall_ns() / 1e9 - since) * 1e3;
    printf("ready: %s served a %s publish %.1f ms after --since (%lld attempts)\n", ctx->server,
           js ? "JetStream" : "streaming", ms, (long long)attempts);
    printf("RESULT ready ms=%.3f attempts=%lld\n", ms, (long long)attempts);
    fflush(stdout);
    return CLI_EXIT_OK;
}

const struct cli_command cli_bench_ready_kind = {
    .name = "ready",
    .usage = "bench ready [--since EPOCH_SECS] [--timeout-ms T] [--js] [--channel C | --subject S]",
    .summary = "Time until a (re)starting server serves a client: retries connect + one "
               "synchronous publish.",
    .help = "Retries, 1 ms apart, to connect and publish one message synchronously (streaming:\n"
            "connect as the client id and publish to channel C; --js: NATS connect and\n"
            "js_Publish to subject S, which a stream must capture), until one attempt succeeds\n"
            "or T ms have passed since --since. Prints:\n"
            "  RESULT ready ms=MS attempts=K\n"
            "where MS is from --since (default: this command's start) to the success.\n\n"
            "Options:\n"
            "      --since T      start time, seconds since the epoch with a fraction\n"
            "                     (bash: t0=$EPOCHREALTIME before spawning the server)\n"
            "      --timeout-ms T give up T ms after --since (default 60000)\n"
            "      --js           JetStream instead of streaming\n"
            "      --channel C, --subject S  where the message goes (default stanza.bench.ready)\n",
    .run = run_bench_ready,
};
