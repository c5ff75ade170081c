/* cli_bench.h: what the streaming benchmark kinds (`bench stan`, `bench js`) share. Defined in
 * cli_bench_stan.c. */
#ifndef STANZA_CLI_BENCH_H
#define STANZA_CLI_BENCH_H

#include "cli_common.h"

#include <stdint.h>
#include <time.h>

/* The phases of a streaming benchmark, as bits; --phase all is all three, in this order. */
enum { PHASE_PUB = 1, PHASE_DRAIN = 2, PHASE_LATENCY = 4, PHASE_ALL = 7 };

/* Parses a --phase value (pub, drain, latency, all) into *phases. Returns CLI_CONTINUE, or
 * CLI_EXIT_USAGE after printing a usage error for cmd. */
int cli_bench_parse_phase(const struct cli_command *cmd, const char *name, int *phases);

/* Sorts samples[0..n) (n >= 1) and sets pct[0..2] to their p50, p90 and p99 (nearest rank). */
void cli_bench_percentiles(double *samples, int64_t n, double pct[3]);

/* CLOCK_REALTIME secs from now, for pthread_cond_timedwait. */
struct timespec cli_bench_deadline(double secs);

#endif
