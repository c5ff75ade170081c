/* cli_bench.h: what the streaming benchmark kinds (`bench stan`, `bench js`) share. Defined in
 * cli_bench_run.c. */
#ifndef STANZA_CLI_BENCH_H
#define STANZA_CLI_BENCH_H

#include "cli_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* The phases of a streaming benchmark, as bits; --phase all is all three, in this order. */
enum { PHASE_PUB = 1, PHASE_DRAIN = 2, PHASE_LATENCY = 4, PHASE_ALL = 7 };

/* What libnats' callback threads count (acks, messages, or subscribers that have everything)
 * and a phase waits on. */
#define CLI_BENCH_ERR_LEN 256
struct cli_bench_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int64_t count;
    _Atomic int64_t errors;
    int64_t expected;
    double done_at;                      /* under mu: when count reached expected */
    bool lost;                           /* under mu: a connection dropped */
    char first_error[CLI_BENCH_ERR_LEN]; /* under mu: the first error's or loss's text */
};
#define CLI_BENCH_SINK_INIT                                                                        \
    {                                                                                              \
        .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER                            \
    }

void cli_bench_sink_reset(struct cli_bench_sink *s, int64_t expected);
/* One more; the one that reaches expected stamps done_at and wakes the waiter. */
void cli_bench_sink_count(struct cli_bench_sink *s);
/* A failed publish (the first one's text is kept). */
void cli_bench_sink_error(struct cli_bench_sink *s, const char *text);
/* A connection dropped (text may be NULL). */
void cli_bench_sink_lost(struct cli_bench_sink *s, const char *text);

/* How a wait shows progress: "bench <kind>: <phase> 1.0s  n/total", n from progress(arg)
 * (NULL: the sink's count), which also tells whether anything is still arriving. */
struct cli_bench_meter {
    const char *kind, *phase;
    int64_t total;
    int64_t (*progress)(void *arg);
    void *arg;
};
/* Waits until the sink's count reaches target. False if a connection dropped or nothing came
 * for 10 s. */
bool cli_bench_wait(struct cli_bench_sink *s, int64_t target, const struct cli_bench_meter *m,
                    double t0);
/* Seconds from t0 to done_at. */
double cli_bench_done_at(struct cli_bench_sink *s, double t0);

/* The pub phase: msgs async publishes (publish(arg) each; their acks count on s), then the wait
 * for every ack. Returns an exit code (a failure line printed); *secs to the last ack. */
int cli_bench_publish_all(struct cli_bench_sink *s, const char *kind, const char *target,
                          int64_t msgs, natsStatus (*publish)(void *arg), void *arg, double *secs);
/* The failure line of a drain that did not get want deliveries (`where` should hold msgs). */
void cli_bench_drain_failed(struct cli_bench_sink *s, const char *kind, const char *what,
                            int64_t got, int64_t want, const char *where, int64_t msgs);
/* The latency phase: n synchronous publish(arg) after a warm-up; p50/p90/p99 in microseconds. */
int cli_bench_latency(const char *kind, const char *target, int64_t n,
                      natsStatus (*publish)(void *arg), void *arg, double pct_us[3]);

/* A run: the selected phases in order, then the report (human lines and the RESULT line). */
struct cli_bench_run {
    const char *kind; /* "stan", "js" */
    int64_t msgs, size, window, subs, lat_msgs;
    int phases;
    int (*pub)(void *bench, double *secs);
    int (*drain)(void *bench, double *secs);
    int (*latency)(void *bench, double pct_us[3]);
    double pub_secs, drain_secs, pct[3];
};
/* The options every kind has (--msgs, --size, --async-window, --latency-msgs, --phase), and
 * the kind's extra ones ({0}-terminated), with their defaults, into r. Returns CLI_CONTINUE or
 * an exit code. */
int cli_bench_parse(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                    const struct cli_opt *extra, struct cli_bench_run *r);
/* Allocates the payload (size bytes of 'x', in *payload while the phases run) and runs. */
int cli_bench_run(struct cli_bench_run *r, void *bench, char **payload);
void cli_bench_report(const struct cli_bench_run *r);

#endif
