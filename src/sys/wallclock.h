/*
 * sys/wallclock: the only place Tally reads clocks. The engine reads the real time here
 * for organizations without a test clock and passes it into every command as `now`;
 * nothing in core/ reads a clock.
 *
 * Threads: any.
 */
#ifndef TALLY_SYS_WALLCLOCK_H
#define TALLY_SYS_WALLCLOCK_H

#include <stdint.h>

#include "core/timestamp.h"

tally_time wallclock_now(void);         /* CLOCK_REALTIME, microseconds */
int64_t wallclock_monotonic_usec(void); /* CLOCK_MONOTONIC, for durations */

#endif
