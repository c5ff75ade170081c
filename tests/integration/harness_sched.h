/* harness_sched: how much of a round trip to the server was the server's doing, as opposed to
 * the machine's.
 *
 * A bound on a round trip's wall time (a client that must stay served while another one floods
 * the daemon) measures the machine as much as the server: on a loaded machine (CI's 2 cores,
 * the ASan build, other tests and builds alongside) a runnable thread can wait a second for a
 * CPU. Linux counts that wait per thread: the second field of /proc/PID/task/TID/schedstat is
 * the time the thread spent runnable on a run queue but not running (from its wakeup until it
 * got a CPU). A span's server time is its wall time minus that wait, over the same span, of the
 * daemon's threads and of this process's threads (the test's and libnats's). What is left is
 * time they spent running (the daemon working through a flood before it gets to the PING) or
 * blocked (the daemon not reading the socket, waiting on a timer or on I/O): what the server
 * does, which a test may bound. On an idle machine the wait is ~0 and server time is wall time.
 * If two of those threads wait at the same moment the subtraction removes that moment twice
 * (rare: a round trip is a chain, one side waits for the other); the result is clamped at 0. */
#ifndef STANZA_HARNESS_SCHED_H
#define STANZA_HARNESS_SCHED_H
#include <stdint.h>
#include <sys/types.h>

struct hsched_span {
    pid_t server;
    int64_t start_ms;
    int64_t waited_ns; /* run-queue wait of the server's and this process's threads at start */
};

/* Total run-queue wait so far of all threads of pid, in ns; -1 if /proc does not tell
 * (no such process, or a kernel without schedstat). */
int64_t hsched_runq_wait_ns(pid_t pid);

/* Starts a span around something the server does. Returns 0, or -1 (after printing why) if the
 * waits cannot be read. */
int hsched_begin(struct hsched_span *sp, pid_t server);

/* Ends the span: returns its server time in ms (see above), and its wall time in *wall_ms
 * (if not NULL). */
int64_t hsched_end(const struct hsched_span *sp, int64_t *wall_ms);

#endif
