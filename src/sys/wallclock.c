/* sys/wallclock: see wallclock.h. */
#include "sys/wallclock.h"

#include <time.h>

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

tally_time wallclock_now(void)
{
    return read_clock(CLOCK_REALTIME);
}

int64_t wallclock_monotonic_usec(void)
{
    return read_clock(CLOCK_MONOTONIC);
}
