/* cli_core.c: `stanza core pub` and `stanza core sub`, plain NATS core publish and subscribe
 * (nothing is stored; a subscriber gets what is published while it listens). */
#include "cli_commands.h"
#include "cli_common.h"

#include <stdio.h>
#include <string.h>

/* How long one flush may wait for the server's PONG. */
#define FLUSH_TIMEOUT_MS 10000
/* How often `sub` wakes from waiting for a message to notice SIGINT/SIGTERM. */
#define SUB_POLL_MS 200

/* ---- pub ---- */

static int run_pub(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    int64_t count;
    const char *subject, *message;
    int rc = cli_parse_pub(ctx, cmd, argc, argv, &count, NULL, &subject, &message);
    if (rc != CLI_CONTINUE) return rc;

    natsConnection *nc = NULL;
    /* No reconnect: a publish into a connection that is silently being re-established would
     * only be buffered, and the final flush would then report a misleading timeout. */
    rc = cli_connect(ctx, false, &nc);
    if (rc != CLI_EXIT_OK) return rc;

    natsStatus s = NATS_OK;
    int len = (int)strlen(message);
    for (int64_t i = 0; i < count && s == NATS_OK; i++)
        s = natsConnection_Publish(nc, subject, message, len);
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "cannot publish to \"%s\"", subject);
    } else {
        /* Publish only buffers; the flush's PING/PONG round trip proves the server has read
         * every message before we claim success. */
        s = natsConnection_FlushTimeout(nc, FLUSH_TIMEOUT_MS);
        if (s != NATS_OK)
            rc = cli_nats_error(s, "cannot flush to %s", ctx->server);
        else
            printf("Published %lld message%s to \"%s\"\n", (long long)count, count == 1 ? "" : "s",
                   subject);
    }
    natsConnection_Destroy(nc);
    return rc;
}

static const struct cli_command core_pub_kind = {
    .name = "pub",
    .usage = "core pub SUBJECT MESSAGE [--count N]",
    .summary =
        "NATS core: publish MESSAGE on SUBJECT (N times), wait until the server has it, exit.",
    .help = "Options:\n"
            "      --count N      publish the message N times (default 1)\n",
    .run = run_pub,
};

/* ---- sub ---- */

static void print_message(int64_t n, natsMsg *msg)
{
    printf("[#%lld] Received on \"%s\"", (long long)n, natsMsg_GetSubject(msg));
    const char *reply = natsMsg_GetReply(msg);
    if (reply && *reply) printf(" (reply \"%s\")", reply);
    printf(": '");
    /* fwrite, not %s: the payload is arbitrary bytes and may contain NULs. */
    fwrite(natsMsg_GetData(msg), 1, (size_t)natsMsg_GetDataLength(msg), stdout);
    printf("'\n");
    /* Whoever reads our stdout (a pipe in tests) should see each message as it arrives. */
    fflush(stdout);
}

static int run_sub(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    const char *queue = NULL;
    int64_t count = 0; /* 0 = until a signal */
    const struct cli_opt opts[] = {
        {'q', "queue", CLI_OPT_STR, &queue, 0, 0},
        {0, "count", CLI_OPT_INT, &count, 1, INT64_MAX},
        {0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, pos, 1, 1, &npos);
    if (rc != CLI_CONTINUE) return rc;
    const char *subject = pos[0];

    cli_install_stop_handlers();
    natsConnection *nc = NULL;
    /* A long-running subscriber should ride out a server restart. */
    rc = cli_connect(ctx, true, &nc);
    if (rc != CLI_EXIT_OK) return rc;

    natsSubscription *sub = NULL;
    natsStatus s = queue ? natsConnection_QueueSubscribeSync(&sub, nc, subject, queue)
                         : natsConnection_SubscribeSync(&sub, nc, subject);
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "cannot subscribe to \"%s\"", subject);
        goto out;
    }
    /* SUB is only buffered until flushed; once the PONG is back the server routes to us, so a
     * caller waiting for the line below may publish without losing the first messages. */
    s = natsConnection_FlushTimeout(nc, FLUSH_TIMEOUT_MS);
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "cannot subscribe to \"%s\"", subject);
        goto out;
    }
    if (queue)
        fprintf(stderr, "Listening on \"%s\" in queue group \"%s\"\n", subject, queue);
    else
        fprintf(stderr, "Listening on \"%s\"\n", subject);

    int64_t received = 0;
    while (!cli_stop && (count == 0 || received < count)) {
        natsMsg *msg = NULL;
        s = natsSubscription_NextMsg(&msg, sub, SUB_POLL_MS);
        if (s == NATS_TIMEOUT) continue;
        if (s == NATS_SLOW_CONSUMER) {
            /* The library dropped messages we did not drain fast enough; say so, keep going. */
            fprintf(stderr, "%s: warning: slow consumer, messages were dropped\n", CLI_PROG);
            continue;
        }
        if (s != NATS_OK) {
            rc = cli_nats_error(s, "receiving on \"%s\"", subject);
            break;
        }
        print_message(++received, msg);
        natsMsg_Destroy(msg);
    }

out:
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    return rc;
}

static const struct cli_command core_sub_kind = {
    .name = "sub",
    .usage = "core sub SUBJECT [--queue Q] [--count N]",
    .summary = "NATS core: print messages received on SUBJECT (wildcards allowed) until N arrive "
               "or a signal.",
    .help = "Each message is printed as\n"
            "  [#n] Received on \"SUBJECT\": 'DATA'\n"
            "or, when the message carries a reply subject,\n"
            "  [#n] Received on \"SUBJECT\" (reply \"REPLY\"): 'DATA'\n"
            "Once subscribed, 'Listening on \"SUBJECT\"' is printed on stderr.\n\n"
            "Options:\n"
            "  -q, --queue Q      join queue group Q (each message goes to one member)\n"
            "      --count N      exit after N messages (default: run until SIGINT/SIGTERM)\n",
    .run = run_sub,
};

/* ---- core dispatch ---- */

static const struct cli_command *const core_kinds[] = {&core_pub_kind, &core_sub_kind};

static int run_core(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return cli_run_kind(ctx, cmd, core_kinds, (int)(sizeof core_kinds / sizeof core_kinds[0]), NULL,
                        argc, argv);
}

const struct cli_command cli_core_command = {
    .name = "core",
    .usage = "core pub|sub ARGS...",
    .summary = "Plain NATS core pub/sub, nothing stored. See 'stanza core --help'.",
    .run = run_core,
};
