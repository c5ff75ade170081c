/* clock: see clock.h. */
#include "clock.h"

#include <time.h>

static bool fake;
static int64_t fake_wall0;
static uint64_t fake_elapsed;

static int64_t read_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * CLOCK_NS_PER_SEC + ts.tv_nsec;
}

int64_t clock_wall_ns(void)
{
    return fake ? clock_add_sat(fake_wall0, (int64_t)fake_elapsed) : read_ns(CLOCK_REALTIME);
}

uint64_t clock_mono_ns(void)
{
    return fake ? fake_elapsed : (uint64_t)read_ns(CLOCK_MONOTONIC);
}

void clock_fake_start(int64_t wall_ns)
{
    fake = true;
    fake_wall0 = wall_ns;
    fake_elapsed = 0;
}

void clock_fake_advance(int64_t ns)
{
    if (ns > 0) fake_elapsed += (uint64_t)ns;
}

void clock_fake_stop(void)
{
    fake = false;
}

bool clock_is_fake(void)
{
    return fake;
}

int64_t clock_add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}
