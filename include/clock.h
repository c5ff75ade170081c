/* clock: the one time helper. Wall-clock time (what a message's timestamp and the monitoring
 * "now" are) and monotonic time (what deadlines and latencies are measured in), both in
 * nanoseconds. Tests may replace both with a fake clock that moves only when told to, so that a
 * test drives time (AckWait, age limits, heartbeats) without waiting for it. */
#ifndef STANZA_CLOCK_H
#define STANZA_CLOCK_H
#include <stdbool.h>
#include <stdint.h>

#define CLOCK_NS_PER_MS INT64_C(1000000)
#define CLOCK_NS_PER_SEC INT64_C(1000000000)

/* Nanoseconds since the Unix epoch. */
int64_t clock_wall_ns(void);
/* Nanoseconds since an arbitrary fixed point; never goes back. */
uint64_t clock_mono_ns(void);
static inline uint64_t clock_mono_ms(void)
{
    return clock_mono_ns() / (uint64_t)CLOCK_NS_PER_MS;
}

/* Test hooks: while fake, both clocks read the fake value (wall = the given epoch time plus
 * what was advanced; monotonic = what was advanced). Process-wide, not thread-safe. */
void clock_fake_start(int64_t wall_ns);
void clock_fake_advance(int64_t ns);
void clock_fake_stop(void);
bool clock_is_fake(void);

/* a + b for times and durations, held at the int64 bounds instead of overflowing. */
int64_t clock_add_sat(int64_t a, int64_t b);

#endif
