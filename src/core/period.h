/*
 * core/period: billing periods in a customer's time zone.
 *
 * A subscription bills by interval (weekly, monthly, quarterly, semiannual, yearly) and by
 * billing_time, as in Lago:
 * - calendar: periods start at local midnight of each Monday (weekly; Rails'
 *   beginning_of_week, which Lago uses, is Monday) or of the 1st of each month, quarter
 *   (Jan/Apr/Jul/Oct), half year (Jan/Jul) or year;
 * - anniversary: periods start at local midnight of the subscription start's local date,
 *   repeated every 7 days or every 1/3/6/12 months. A day the month lacks is clamped to the
 *   month's last day, but the anchor day is remembered: anchor Jan 31 gives Feb 28 (29 in
 *   leap years), then Mar 31, Apr 30, ... never drifting to the 28th.
 *
 * Periods are computed from local calendar dates and only then turned into UTC instants
 * with core/tz, so a monthly period containing a spring-forward change is one hour shorter
 * in UTC. A boundary whose local midnight does not exist (a DST gap at midnight, as in
 * America/Sao_Paulo until 2019) starts at the first instant of that local day: the end of
 * the gap (tz_start_of_day). A midnight that happens twice starts at its first occurrence.
 *
 * Periods are half-open [start, end): `end` is the first instant of the next period. Lago
 * reports a period's end as its last second (to_datetime "2026-01-31T23:59:59Z"); the API
 * layer subtracts one second from `end` when it renders that field.
 *
 * Day counts (Lago prorates by days in the customer's time zone) count local calendar days:
 * `period_days` is the number of local dates in the period; `period_days_remaining` counts
 * from an instant's local date (included) to the end, as Lago's days_to_bill for a
 * subscription starting mid-period; `period_days_elapsed` counts from the start to an
 * instant's local date (included), as for a termination mid-period.
 *
 * Pure functions of their arguments; the zone is borrowed and only read.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_PERIOD_H
#define TALLY_CORE_PERIOD_H

#include <stdint.h>

#include "core/timestamp.h"
#include "core/tz.h"

enum period_interval {
    PERIOD_WEEKLY,
    PERIOD_MONTHLY,
    PERIOD_QUARTERLY,
    PERIOD_SEMIANNUAL,
    PERIOD_YEARLY,
};

enum period_billing_time {
    PERIOD_CALENDAR,
    PERIOD_ANNIVERSARY,
};

enum period_status {
    PERIOD_OK = 0,
    PERIOD_ERR_ARG,     /* NULL pointer or an enum value out of range */
    PERIOD_ERR_RANGE,   /* an instant or a period boundary outside years 0001..9999 */
    PERIOD_ERR_OUTSIDE, /* the instant is not inside the given period */
};

/* How a subscription's periods are laid out. */
struct period_spec {
    enum period_interval interval;
    enum period_billing_time billing_time;
    tally_time anchor;          /* subscription start; only its local date matters, and only
                                   for anniversary billing */
    const struct tz_zone *zone; /* the customer's zone; borrowed, must outlive the calls */
};

struct period {
    tally_time start;            /* first instant (inclusive) */
    tally_time end;              /* first instant of the next period (exclusive) */
    struct civil_date first_day; /* local date of the first day */
    struct civil_date end_day;   /* local date of the next period's first day */
    int64_t index;               /* position in the series: anniversary 0 is the period that
                                    starts on the anchor's date, calendar counts from 1970 */
};

/* The period that contains instant t. */
enum period_status period_containing(const struct period_spec *spec, tally_time t,
                                     struct period *out);

/* The period after / before `p`, which must come from the same spec. */
enum period_status period_next(const struct period_spec *spec, const struct period *p,
                               struct period *out);
enum period_status period_prev(const struct period_spec *spec, const struct period *p,
                               struct period *out);

/* Local calendar days in the period (28..31 for monthly, 7 for weekly, ...). */
int64_t period_days(const struct period *p);

/*
 * Days from the local date of t (included) to the period's end: a subscription started at
 * t bills this many of period_days(p). PERIOD_ERR_OUTSIDE if t is not in [start, end).
 */
enum period_status period_days_remaining(const struct period *p, const struct tz_zone *zone,
                                         tally_time t, int64_t *out);

/* Days from the period's first day to the local date of t, both included. */
enum period_status period_days_elapsed(const struct period *p, const struct tz_zone *zone,
                                       tally_time t, int64_t *out);

#endif
