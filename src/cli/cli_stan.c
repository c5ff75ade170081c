/* cli_stan.c: `stanza pub` and `stanza sub`, NATS Streaming (STAN) publish and subscribe through
 * libnats' stanConnection API. Messages are stored by the server: a publish returns once the
 * server has acknowledged (stored) it, and a subscriber can start anywhere in the channel's log.
 *
 * The subscriber always runs its subscription in manual-ack mode and acks each message itself
 * right after printing it. libnats' auto-ack would also ack messages that arrive after --count
 * is reached (and send the N-th ack after the close request), so a durable or queue group would
 * lose them; acking only what was printed keeps "exit after N" exact. */
#include "cli_commands.h"
#include "cli_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often `sub` wakes from waiting to notice SIGINT/SIGTERM. */
#define SUB_POLL_MS 200
#define ERR_TEXT_LEN 256

static void copy_text(char *dst, const char *src)
{
    snprintf(dst, ERR_TEXT_LEN, "%s", src ? src : "");
}

/* ---- pub ---- */

/* Async publish bookkeeping, shared with libnats' ack callback thread. Static: a late callback
 * after a failed run must not find freed memory. */
static struct pub_acks {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t acked;  /* callbacks so far, with or without error */
    int64_t errors; /* of which carried an error */
    char first_error[ERR_TEXT_LEN];
} acks = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_pub_ack(const char *guid, const char *error, void *closure)
{
    pthread_mutex_lock(&acks.mu);
    acks.acked++;
    if (error && *error && acks.errors++ == 0) copy_text(acks.first_error, error);
    pthread_cond_broadcast(&acks.cv);
    pthread_mutex_unlock(&acks.mu);
}

/* Publishes count messages without waiting for each ack, then waits for all acks (libnats
 * calls on_pub_ack with a timeout error for any the server never sends, after its pub-ack
 * wait). Returns the exit code. */
static int publish_async(stanConnection *sc, const char *channel, const char *message,
                         int64_t count)
{
    int len = (int)strlen(message);
    int64_t sent = 0;
    for (; sent < count; sent++) {
        natsStatus s = stanConnection_PublishAsync(sc, channel, message, len, on_pub_ack, NULL);
        if (s != NATS_OK) {
            cli_nats_error(s, "cannot publish to channel \"%s\"", channel);
            break;
        }
    }
    pthread_mutex_lock(&acks.mu);
    while (acks.acked < sent)
        pthread_cond_wait(&acks.cv, &acks.mu);
    int64_t errors = acks.errors;
    pthread_mutex_unlock(&acks.mu);
    if (errors > 0)
        fprintf(stderr, "%s: %lld of %lld messages to channel \"%s\" failed: %s\n", CLI_PROG,
                (long long)errors, (long long)sent, channel, acks.first_error);
    return sent == count && errors == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int run_pub(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    int64_t count;
    bool async = false;
    const char *channel, *message;
    int rc = cli_parse_pub(ctx, cmd, argc, argv, &count, &async, &channel, &message);
    if (rc != CLI_CONTINUE) return rc;

    stanConnection *sc = NULL;
    rc = cli_stan_connect(ctx, &sc);
    if (rc != CLI_EXIT_OK) return rc;

    if (async) {
        rc = publish_async(sc, channel, message, count);
    } else {
        int len = (int)strlen(message);
        for (int64_t i = 0; i < count && rc == CLI_EXIT_OK; i++) {
            /* Returns once the server's PubAck is in; a PubAck error comes back as NATS_ERR
             * with the server's text. */
            natsStatus s = stanConnection_Publish(sc, channel, message, len);
            if (s != NATS_OK)
                rc = cli_nats_error(s, "publish to channel \"%s\" failed after %lld message%s",
                                    channel, (long long)i, i == 1 ? "" : "s");
        }
    }
    if (rc == CLI_EXIT_OK) {
        printf("Published %lld message%s to channel %s\n", (long long)count, count == 1 ? "" : "s",
               channel);
        fflush(stdout);
    }
    natsStatus s = stanConnection_Close(sc);
    if (s != NATS_OK && rc == CLI_EXIT_OK) rc = cli_nats_error(s, "closing the connection");
    stanConnection_Destroy(sc);
    return rc;
}

const struct cli_command cli_pub_command = {
    .name = "pub",
    .usage = "pub CHANNEL MESSAGE [--count N] [--async]",
    .summary = "Streaming: store MESSAGE in CHANNEL (N times), acknowledged by the server.",
    .help = "Prints 'Published N messages to channel CHANNEL' once the server has acknowledged\n"
            "(stored) every message. A publish the server refuses is reported with its error\n"
            "text, exit status 1.\n\n"
            "Options:\n"
            "      --count N      publish the message N times (default 1)\n"
            "      --async        do not wait for each ack before the next publish; wait for\n"
            "                     all of them at the end (default: one at a time)\n",
    .run = run_pub,
};

/* ---- sub ---- */

static struct sub_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t count;    /* exit after this many; 0 = until a signal */
    bool ack;         /* ack each printed message */
    int64_t received; /* printed so far; under mu */
    bool done;        /* received reached count; under mu */
    bool lost;        /* the connection was lost for good; under mu */
    char lost_text[ERR_TEXT_LEN];
} sub_state = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_stan_msg(stanConnection *sc, stanSubscription *sub, const char *channel,
                        stanMsg *msg, void *closure)
{
    struct sub_state *st = closure;
    /* libnats calls this from one thread per subscription, so messages arrive in order. */
    pthread_mutex_lock(&st->mu);
    bool take = !st->done && (st->count == 0 || st->received < st->count);
    int64_t n = take ? ++st->received : 0;
    pthread_mutex_unlock(&st->mu);
    if (!take) {
        /* Past --count: not printed, not acked; the server redelivers it to whoever resumes. */
        stanMsg_Destroy(msg);
        return;
    }

    printf("[#%lld] seq=%llu redelivered=%s: '", (long long)n,
           (unsigned long long)stanMsg_GetSequence(msg),
           stanMsg_IsRedelivered(msg) ? "true" : "false");
    /* fwrite, not %s: the payload is arbitrary bytes and may contain NULs. */
    fwrite(stanMsg_GetData(msg), 1, (size_t)stanMsg_GetDataLength(msg), stdout);
    printf("'\n");
    fflush(stdout);

    if (st->ack) {
        natsStatus s = stanSubscription_AckMsg(sub, msg);
        if (s != NATS_OK)
            fprintf(stderr, "%s: warning: cannot ack seq %llu: %s\n", CLI_PROG,
                    (unsigned long long)stanMsg_GetSequence(msg), cli_nats_error_text(s));
    }
    stanMsg_Destroy(msg);

    if (st->count > 0 && n == st->count) {
        pthread_mutex_lock(&st->mu);
        st->done = true;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
}

static void on_connection_lost(stanConnection *sc, const char *error_text, void *closure)
{
    struct sub_state *st = closure;
    pthread_mutex_lock(&st->mu);
    st->lost = true;
    copy_text(st->lost_text, error_text);
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Parses a Go-style duration ("30s", "5m", "1h30m", "250ms"; a bare number is seconds) into
 * milliseconds > 0. */
static bool parse_duration_ms(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"us", 1e-3}, {"ns", 1e-6}, {"h", 3600e3}, {"m", 60e3}, {"s", 1e3}};
    if (!s || !*s) return false;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end != s && *end == '\0') {
        if (!(v > 0) || v > 1e12) return false;
        *out = (int64_t)(v * 1e3);
        return *out > 0;
    }
    double total = 0;
    const char *p = s;
    while (*p) {
        if ((*p < '0' || *p > '9') && *p != '.') return false;
        v = strtod(p, &end);
        if (end == p) return false;
        size_t u = 0, nunits = sizeof units / sizeof units[0];
        while (u < nunits && strncmp(end, units[u].unit, strlen(units[u].unit)) != 0)
            u++;
        if (u == nunits) return false;
        total += v * units[u].ms;
        p = end + strlen(units[u].unit);
    }
    if (!(total >= 1) || total > 1e15) return false;
    *out = (int64_t)total;
    return true;
}

struct sub_args {
    const char *channel, *durable, *queue, *since;
    bool all, last, manual_ack;
    int64_t seq, ack_wait, max_inflight, count;
};

/* Builds the subscription options from the command line, or returns a usage error. */
static int make_sub_options(const struct cli_command *cmd, const struct sub_args *a,
                            stanSubOptions **out)
{
    int starts = a->all + a->last + (a->seq >= 0) + (a->since != NULL);
    if (starts > 1) return cli_usage_error(cmd, "choose one of --all, --last, --seq, --since");
    int64_t since_ms = 0;
    if (a->since && !parse_duration_ms(a->since, &since_ms))
        return cli_usage_error(cmd,
                               "invalid value '%s' for '--since': expected a duration such as 30s, "
                               "5m, 1h30m",
                               a->since);

    stanSubOptions *o = NULL;
    natsStatus s = stanSubOptions_Create(&o);
    /* See the top of the file: we ack ourselves, or (--manual-ack) not at all. */
    if (s == NATS_OK) s = stanSubOptions_SetManualAckMode(o, true);
    if (s == NATS_OK && a->durable) s = stanSubOptions_SetDurableName(o, a->durable);
    if (s == NATS_OK && a->ack_wait > 0) s = stanSubOptions_SetAckWait(o, a->ack_wait * 1000);
    if (s == NATS_OK && a->max_inflight > 0)
        s = stanSubOptions_SetMaxInflight(o, (int)a->max_inflight);
    if (s == NATS_OK && a->all) s = stanSubOptions_DeliverAllAvailable(o);
    if (s == NATS_OK && a->last) s = stanSubOptions_StartWithLastReceived(o);
    if (s == NATS_OK && a->seq >= 0) s = stanSubOptions_StartAtSequence(o, (uint64_t)a->seq);
    if (s == NATS_OK && a->since) s = stanSubOptions_StartAtTimeDelta(o, since_ms);
    if (s != NATS_OK) {
        stanSubOptions_Destroy(o);
        return cli_nats_error(s, "subscription options");
    }
    *out = o;
    return CLI_CONTINUE;
}

/* Waits until --count messages were printed, a signal, or the connection is lost. Returns the
 * exit code (1 only for a lost connection). */
static int wait_for_end(const char *channel)
{
    int rc = CLI_EXIT_OK;
    pthread_mutex_lock(&sub_state.mu);
    while (!sub_state.done && !sub_state.lost && !cli_stop) {
        struct timespec dl = cli_deadline(SUB_POLL_MS / 1000.0);
        pthread_cond_timedwait(&sub_state.cv, &sub_state.mu, &dl);
    }
    if (sub_state.lost && !sub_state.done) {
        fprintf(stderr, "%s: connection lost while subscribed to channel \"%s\": %s\n", CLI_PROG,
                channel, sub_state.lost_text);
        rc = CLI_EXIT_FAIL;
    }
    pthread_mutex_unlock(&sub_state.mu);
    return rc;
}

static int run_sub(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct sub_args a = {.seq = -1};
    const struct cli_opt opts[] = {
        {0, "durable", CLI_OPT_STR, &a.durable, 0, 0},
        {'q', "queue", CLI_OPT_STR, &a.queue, 0, 0},
        {0, "all", CLI_OPT_FLAG, &a.all, 0, 0},
        {0, "last", CLI_OPT_FLAG, &a.last, 0, 0},
        {0, "seq", CLI_OPT_INT, &a.seq, 0, INT64_MAX},
        {0, "since", CLI_OPT_STR, &a.since, 0, 0},
        {0, "ack-wait", CLI_OPT_INT, &a.ack_wait, 1, INT32_MAX / 1000},
        {0, "max-inflight", CLI_OPT_INT, &a.max_inflight, 1, INT32_MAX},
        {0, "count", CLI_OPT_INT, &a.count, 1, INT64_MAX},
        {0, "manual-ack", CLI_OPT_FLAG, &a.manual_ack, 0, 0},
        {0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, pos, 1, 1, &npos);
    if (rc != CLI_CONTINUE) return rc;
    a.channel = pos[0];

    stanSubOptions *subopts = NULL;
    rc = make_sub_options(cmd, &a, &subopts);
    if (rc != CLI_CONTINUE) return rc;
    sub_state.count = a.count;
    sub_state.ack = !a.manual_ack;

    cli_install_stop_handlers();
    stanConnection *sc = NULL;
    stanSubscription *sub = NULL;
    stanConnOptions *copts = NULL;
    natsStatus s = cli_stan_options_new(ctx, &copts);
    if (s == NATS_OK)
        s = stanConnOptions_SetConnectionLostHandler(copts, on_connection_lost, &sub_state);
    if (s != NATS_OK) {
        stanConnOptions_Destroy(copts);
        rc = cli_nats_error(s, "cannot connect to %s", ctx->server);
        goto out;
    }
    rc = cli_stan_connect_opts(ctx, ctx->client_id, copts, &sc);
    if (rc != CLI_EXIT_OK) goto out;

    s = a.queue ? stanConnection_QueueSubscribe(&sub, sc, a.channel, a.queue, on_stan_msg,
                                                &sub_state, subopts)
                : stanConnection_Subscribe(&sub, sc, a.channel, on_stan_msg, &sub_state, subopts);
    if (s != NATS_OK) {
        rc = cli_nats_error(s, "cannot subscribe to channel \"%s\"", a.channel);
        goto out;
    }
    /* The server has answered the subscription request: from here on, whatever is published
     * reaches us (a caller waits for this line before publishing). */
    fprintf(stderr, "Listening on channel \"%s\"", a.channel);
    if (a.durable) fprintf(stderr, " as durable \"%s\"", a.durable);
    if (a.queue) fprintf(stderr, " in queue group \"%s\"", a.queue);
    fprintf(stderr, " (client id \"%s\")\n", ctx->client_id);

    rc = wait_for_end(a.channel);
    if (rc == CLI_EXIT_OK) {
        /* Close, not unsubscribe: a durable keeps its position for the next `sub --durable`. */
        s = stanSubscription_Close(sub);
        if (s != NATS_OK) {
            rc = cli_nats_error(s, "closing the subscription to channel \"%s\"", a.channel);
        } else {
            s = stanConnection_Close(sc);
            if (s != NATS_OK) rc = cli_nats_error(s, "closing the connection");
        }
    }

out:
    stanSubscription_Destroy(sub);
    stanConnection_Destroy(sc);
    stanSubOptions_Destroy(subopts);
    return rc;
}

const struct cli_command cli_sub_command = {
    .name = "sub",
    .usage = "sub CHANNEL [--durable D] [--queue Q] [--all|--last|--seq N|--since DURATION]\n"
             "       [--ack-wait SECS] [--max-inflight N] [--count N] [--manual-ack]",
    .summary = "Streaming: print (and ack) messages of CHANNEL until N arrive or a signal.",
    .help = "Each message is printed as\n"
            "  [#n] seq=SEQ redelivered=true|false: 'DATA'\n"
            "and acknowledged once printed. Once subscribed, 'Listening on channel \"CHANNEL\"'\n"
            "is printed on stderr. On exit (--count reached, SIGINT or SIGTERM) the subscription\n"
            "is closed, not unsubscribed: a durable keeps its position, and messages delivered\n"
            "after the N-th are left unacknowledged for the next subscriber.\n\n"
            "Start position (default: only messages published from now on; ignored when a\n"
            "durable resumes or a queue group already exists):\n"
            "      --all          every message the channel still has\n"
            "      --last         the last message, then new ones\n"
            "      --seq N        from sequence N\n"
            "      --since DUR    messages of the last DUR (e.g. 30s, 5m, 1h30m)\n\n"
            "Options:\n"
            "      --durable D    durable subscription D (resumes where the last one with this\n"
            "                     client id and name stopped; see --client-id)\n"
            "  -q, --queue Q      join queue group Q (each message goes to one member)\n"
            "      --ack-wait S   seconds before the server redelivers an unacked message (30)\n"
            "      --max-inflight N  unacked messages the server may send ahead (1024)\n"
            "      --count N      exit after N messages (default: run until SIGINT/SIGTERM)\n"
            "      --manual-ack   manual-ack mode without acking: messages stay unacknowledged\n"
            "                     and are redelivered after --ack-wait (to watch redelivery)\n",
    .run = run_sub,
};
