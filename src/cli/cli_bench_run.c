/* cli_bench_run.c: what the streaming benchmark kinds (`bench stan`, `bench js`) share: the
 * phase names, the counter their callbacks advance and the wait on it, the async publish loop
 * and its verdict, the latency loop, percentiles and the report. Each kind keeps only what
 * talks to its own client API (cli_bench_stan.c, cli_bench_js.c). */
#include "cli_bench.h"
#include "sort.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Give up on a phase when no ack or message has arrived for this long. */
#define IDLE_TIMEOUT_S 10.0
/* Progress goes to stderr once a second, once a phase has lasted that long. */
#define PROGRESS_S 1.0
/* How many publishes between looks at the clock. */
#define CLOCK_EVERY 256
/* Synchronous publishes before the latency samples (connection and channel warm-up). */
#define LATENCY_WARMUP 10

/* A --phase value (pub, drain, latency, all) into *phases. */
static int parse_phase(const struct cli_command *cmd, const char *name, int *phases)
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

/* ---- the sink ---- */

void cli_bench_sink_reset(struct cli_bench_sink *s, int64_t expected)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->count, 0);
    atomic_store(&s->errors, 0);
    s->expected = expected;
    s->done_at = 0;
    s->lost = false;
    s->first_error[0] = '\0';
    pthread_mutex_unlock(&s->mu);
}

void cli_bench_sink_count(struct cli_bench_sink *s)
{
    int64_t n = atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed) + 1;
    if (n != s->expected) return;
    double now = cli_now();
    pthread_mutex_lock(&s->mu);
    s->done_at = now;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void cli_bench_sink_error(struct cli_bench_sink *s, const char *text)
{
    if (atomic_fetch_add(&s->errors, 1) != 0) return;
    pthread_mutex_lock(&s->mu);
    snprintf(s->first_error, sizeof s->first_error, "%s", text ? text : "");
    pthread_mutex_unlock(&s->mu);
}

void cli_bench_sink_lost(struct cli_bench_sink *s, const char *text)
{
    pthread_mutex_lock(&s->mu);
    if (!s->lost && text) snprintf(s->first_error, sizeof s->first_error, "%s", text);
    s->lost = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static int64_t sink_progress(void *arg)
{
    return atomic_load(&((struct cli_bench_sink *)arg)->count);
}

bool cli_bench_wait(struct cli_bench_sink *s, int64_t target, const struct cli_bench_meter *m,
                    double t0)
{
    int64_t (*progress)(void *) = m->progress ? m->progress : sink_progress;
    void *arg = m->progress ? m->arg : s;
    int64_t last = progress(arg);
    double last_change = cli_now(), next_progress = t0 + PROGRESS_S;
    pthread_mutex_lock(&s->mu);
    while (atomic_load(&s->count) < target && !s->lost) {
        struct timespec dl = cli_deadline(0.2);
        pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        double now = cli_now();
        int64_t n = progress(arg);
        if (n != last) {
            last = n;
            last_change = now;
        } else if (now - last_change >= IDLE_TIMEOUT_S) {
            break;
        }
        if (now >= next_progress) {
            fprintf(stderr, "bench %s: %s %6.1fs  %lld/%lld\n", m->kind, m->phase, now - t0,
                    (long long)n, (long long)m->total);
            next_progress = now + PROGRESS_S;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return atomic_load(&s->count) >= target;
}

double cli_bench_done_at(struct cli_bench_sink *s, double t0)
{
    pthread_mutex_lock(&s->mu);
    double secs = s->done_at - t0;
    pthread_mutex_unlock(&s->mu);
    return secs;
}

/* ---- phases ---- */

int cli_bench_publish_all(struct cli_bench_sink *s, const char *kind, const char *target,
                          int64_t msgs, natsStatus (*publish)(void *arg), void *arg, double *secs)
{
    cli_bench_sink_reset(s, msgs);
    double t0 = cli_now(), next_progress = t0 + PROGRESS_S;
    int64_t sent = 0;
    natsStatus st = NATS_OK;
    for (; sent < msgs; sent++) {
        st = publish(arg);
        if (st != NATS_OK) break;
        if (sent % CLOCK_EVERY == 0) {
            if (atomic_load(&s->errors) > 0) break;
            double now = cli_now();
            if (now >= next_progress) {
                fprintf(stderr, "bench %s: pub %6.1fs  sent %lld/%lld  acked %lld\n", kind,
                        now - t0, (long long)sent, (long long)msgs,
                        (long long)atomic_load(&s->count));
                next_progress = now + PROGRESS_S;
            }
        }
    }
    int rc = CLI_EXIT_OK;
    if (st != NATS_OK)
        rc = cli_nats_error(st, "bench %s: publishing to \"%s\" failed", kind, target);
    struct cli_bench_meter m = {.kind = kind, .phase = "pub", .total = sent};
    bool all_acked = cli_bench_wait(s, sent, &m, t0);
    int64_t errors = atomic_load(&s->errors);
    if (rc == CLI_EXIT_OK && (errors > 0 || !all_acked || sent < msgs)) {
        fprintf(stderr, "%s: bench %s: %lld of %lld publishes acknowledged", CLI_PROG, kind,
                (long long)(atomic_load(&s->count) - errors), (long long)msgs);
        pthread_mutex_lock(&s->mu);
        if (errors > 0)
            fprintf(stderr, "; %lld failed, first error: %s", (long long)errors, s->first_error);
        if (s->lost) fprintf(stderr, "; the connection was lost");
        pthread_mutex_unlock(&s->mu);
        if (!all_acked) fprintf(stderr, "; no ack for %.0f s", IDLE_TIMEOUT_S);
        fputc('\n', stderr);
        rc = CLI_EXIT_FAIL;
    }
    *secs = cli_bench_done_at(s, t0);
    return rc;
}

void cli_bench_drain_failed(struct cli_bench_sink *s, const char *kind, const char *what,
                            int64_t got, int64_t want, const char *where, int64_t msgs)
{
    fprintf(stderr, "%s: bench %s: drain: %lld of %lld %s arrived", CLI_PROG, kind, (long long)got,
            (long long)want, what);
    pthread_mutex_lock(&s->mu);
    if (s->lost)
        fprintf(stderr, "; a connection was lost%s%s", *s->first_error ? ": " : "", s->first_error);
    else
        fprintf(stderr, "; none for %.0f s (does %s hold %lld messages?)", IDLE_TIMEOUT_S, where,
                (long long)msgs);
    pthread_mutex_unlock(&s->mu);
    fputc('\n', stderr);
}

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

/* Sorts samples[0..n) and sets pct[0..2] to their p50, p90 and p99 (nearest rank; 0 if n < 1). */
static void percentiles(double *samples, int64_t n, double pct[3])
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

int cli_bench_latency(const char *kind, const char *target, int64_t n,
                      natsStatus (*publish)(void *arg), void *arg, double pct_us[3])
{
    double *samples = malloc((size_t)n * sizeof *samples);
    if (!samples) {
        fprintf(stderr, "%s: bench %s: out of memory\n", CLI_PROG, kind);
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_OK;
    double t0 = cli_now(), next_progress = t0 + PROGRESS_S;
    for (int64_t i = -LATENCY_WARMUP; i < n && rc == CLI_EXIT_OK; i++) {
        double start = cli_now();
        natsStatus st = publish(arg);
        double end = cli_now();
        if (st != NATS_OK) {
            rc = cli_nats_error(st, "bench %s: synchronous publish to \"%s\" failed", kind, target);
            break;
        }
        if (i >= 0) samples[i] = (end - start) * 1e6;
        if (end >= next_progress) {
            fprintf(stderr, "bench %s: latency %6.1fs  %lld/%lld\n", kind, end - t0,
                    (long long)(i < 0 ? 0 : i + 1), (long long)n);
            next_progress = end + PROGRESS_S;
        }
    }
    if (rc == CLI_EXIT_OK) percentiles(samples, n, pct_us);
    free(samples);
    return rc;
}

/* ---- the run ---- */

int cli_bench_parse(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                    const struct cli_opt *extra, struct cli_bench_run *r)
{
    r->msgs = 100000;
    r->size = 128;
    r->window = 1024;
    r->subs = 1;
    r->lat_msgs = 1000;
    const char *phase = "all";
    struct cli_opt opts[16] = {
        {'n', "msgs", CLI_OPT_INT, &r->msgs, 1, INT64_MAX / 1024},
        {0, "size", CLI_OPT_INT, &r->size, 0, 64 * 1024 * 1024},
        {0, "async-window", CLI_OPT_INT, &r->window, 1, 1000000},
        {0, "latency-msgs", CLI_OPT_INT, &r->lat_msgs, 1, 10000000},
        {0, "phase", CLI_OPT_STR, &phase, 0, 0},
    };
    size_t n = 5;
    for (; extra && extra->long_name && n < sizeof opts / sizeof *opts - 1; extra++)
        opts[n++] = *extra;
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, NULL, 0, 0, &npos);
    if (rc != CLI_CONTINUE) return rc;
    return parse_phase(cmd, phase, &r->phases);
}

int cli_bench_run(struct cli_bench_run *r, void *bench, char **payload)
{
    *payload = malloc(r->size > 0 ? (size_t)r->size : 1);
    if (!*payload) {
        fprintf(stderr, "%s: bench %s: out of memory\n", CLI_PROG, r->kind);
        return CLI_EXIT_FAIL;
    }
    memset(*payload, 'x', r->size > 0 ? (size_t)r->size : 1);
    int rc = CLI_EXIT_OK;
    if (r->phases & PHASE_PUB) rc = r->pub(bench, &r->pub_secs);
    if (rc == CLI_EXIT_OK && (r->phases & PHASE_DRAIN)) rc = r->drain(bench, &r->drain_secs);
    if (rc == CLI_EXIT_OK && (r->phases & PHASE_LATENCY)) rc = r->latency(bench, r->pct);
    if (rc == CLI_EXIT_OK) cli_bench_report(r);
    free(*payload);
    *payload = NULL;
    return rc;
}

void cli_bench_report(const struct cli_bench_run *r)
{
    double pub_rate = r->pub_secs > 0 ? (double)r->msgs / r->pub_secs : 0;
    double drain_rate = r->drain_secs > 0 ? (double)(r->msgs * r->subs) / r->drain_secs : 0;
    if (r->phases & PHASE_PUB)
        printf("%s pub: %lld msgs x %lld B, window %lld: all acked in %.3f s: %.0f msgs/s "
               "(%.1f MB/s)\n",
               r->kind, (long long)r->msgs, (long long)r->size, (long long)r->window, r->pub_secs,
               pub_rate, pub_rate * (double)r->size / 1e6);
    if (r->phases & PHASE_DRAIN)
        printf("%s drain: %lld subscriber%s x %lld msgs in %.3f s: %.0f msgs/s delivered\n",
               r->kind, (long long)r->subs, r->subs == 1 ? "" : "s", (long long)r->msgs,
               r->drain_secs, drain_rate);
    if (r->phases & PHASE_LATENCY)
        printf("%s sync publish latency (%lld samples): p50 %.0f us, p90 %.0f us, p99 %.0f us\n",
               r->kind, (long long)r->lat_msgs, r->pct[0], r->pct[1], r->pct[2]);

    printf("RESULT %s msgs=%lld size=%lld window=%lld subs=%lld", r->kind, (long long)r->msgs,
           (long long)r->size, (long long)r->window, (long long)r->subs);
    if (r->phases & PHASE_PUB)
        printf(" pub_secs=%.6f pub_msgs_per_sec=%.0f", r->pub_secs, pub_rate);
    if (r->phases & PHASE_DRAIN)
        printf(" drain_secs=%.6f drain_msgs_per_sec=%.0f", r->drain_secs, drain_rate);
    if (r->phases & PHASE_LATENCY)
        printf(" sync_n=%lld sync_p50_us=%.0f sync_p90_us=%.0f sync_p99_us=%.0f",
               (long long)r->lat_msgs, r->pct[0], r->pct[1], r->pct[2]);
    printf("\n");
    fflush(stdout);
}
