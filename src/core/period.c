/*
 * core/period: see period.h. A period series is numbered by an index n; the local date of
 * the first day of period n is pure calendar arithmetic (a day count for weekly periods, a
 * month count plus the clamped anchor day for the others), and instants come from
 * tz_start_of_day. Finding the period of an instant guesses n from the instant's local date
 * and then checks the guess against the instants themselves, because around a DST fold that
 * crosses midnight an instant's local date can disagree with the boundary instants.
 */
#include "core/period.h"

#include <stdbool.h>

/* 1970-01-05, the first Monday on or after the epoch: day 0 of the calendar weekly series. */
#define PERIOD_MONDAY_DAY0 4
#define PERIOD_MONTHS_PER_YEAR 12
/* A guess is at most one period off; allow a little more before giving up. */
#define PERIOD_MAX_ADJUST 4

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bool spec_valid(const struct period_spec *spec)
{
    return spec != NULL && spec->zone != NULL && (int)spec->interval >= PERIOD_WEEKLY &&
           spec->interval <= PERIOD_YEARLY && (int)spec->billing_time >= PERIOD_CALENDAR &&
           spec->billing_time <= PERIOD_ANNIVERSARY;
}

static int64_t months_per_period(enum period_interval iv)
{
    switch (iv) {
    case PERIOD_WEEKLY: break;
    case PERIOD_MONTHLY: return 1;
    case PERIOD_QUARTERLY: return 3;
    case PERIOD_SEMIANNUAL: return 6;
    case PERIOD_YEARLY: return 12;
    }
    return 0;
}

static int64_t month_number(struct civil_date d)
{
    return (int64_t)d.year * PERIOD_MONTHS_PER_YEAR + (d.month - 1);
}

/* Where series index 0 starts: a day number (weekly) or a month number plus a day. */
struct series {
    bool weekly;
    int64_t months; /* per period, 0 for weekly */
    int64_t base;   /* weekly: day number of period 0; else month number of period 0 */
    int32_t day;    /* day of month the periods start on (1 for calendar) */
};

static enum period_status series_of(const struct period_spec *spec, struct series *s)
{
    s->weekly = spec->interval == PERIOD_WEEKLY;
    s->months = months_per_period(spec->interval);
    if (spec->billing_time == PERIOD_CALENDAR) {
        /* Month number 0 is January of year 0: every k-month calendar series (k divides
         * 12) starts its periods on multiples of k. */
        s->base = s->weekly ? PERIOD_MONDAY_DAY0 : 0;
        s->day = 1;
        return PERIOD_OK;
    }
    struct tz_local a;
    if (tz_to_local(spec->zone, spec->anchor, &a) != TZ_OK)
        return PERIOD_ERR_RANGE;
    s->base = s->weekly ? timestamp_days_from_civil(a.civil.date) : month_number(a.civil.date);
    s->day = a.civil.date.day;
    return PERIOD_OK;
}

/* Day number of the first day of period n; false if out of years 0001..9999. */
static bool series_start_day(const struct series *s, int64_t n, int64_t *day)
{
    /* Bound n first so that the products below cannot overflow. */
    if (n < -INT64_C(10000000) || n > INT64_C(10000000))
        return false;
    if (s->weekly) {
        *day = s->base + 7 * n;
        struct civil_date d = timestamp_civil_from_days(*day);
        return d.year >= 1 && d.year <= 9999;
    }
    int64_t m = s->base + s->months * n;
    int64_t year = floor_div(m, PERIOD_MONTHS_PER_YEAR);
    if (year < 1 || year > 9999)
        return false;
    int32_t month = (int32_t)(m - year * PERIOD_MONTHS_PER_YEAR + 1);
    int32_t dim = timestamp_days_in_month((int32_t)year, month);
    struct civil_date d = {(int32_t)year, month, s->day < dim ? s->day : dim};
    *day = timestamp_days_from_civil(d);
    return true;
}

static enum period_status build(const struct period_spec *spec, const struct series *s, int64_t n,
                                struct period *out)
{
    int64_t d0, d1;
    if (!series_start_day(s, n, &d0) || !series_start_day(s, n + 1, &d1))
        return PERIOD_ERR_RANGE;
    struct period p;
    p.first_day = timestamp_civil_from_days(d0);
    p.end_day = timestamp_civil_from_days(d1);
    p.index = n;
    if (tz_start_of_day(spec->zone, p.first_day, &p.start) != TZ_OK ||
        tz_start_of_day(spec->zone, p.end_day, &p.end) != TZ_OK)
        return PERIOD_ERR_RANGE;
    *out = p;
    return PERIOD_OK;
}

/* The index of the period whose first local day is the last one on or before `d`. */
static int64_t guess_index(const struct series *s, struct civil_date d)
{
    if (s->weekly)
        return floor_div(timestamp_days_from_civil(d) - s->base, 7);
    int64_t n = floor_div(month_number(d) - s->base, s->months);
    /* Within its first month the period may start late (anchor day 31 in a 31-day month
     * vs. the 15th): then d still belongs to the previous period. */
    int64_t m = s->base + s->months * n;
    if (m == month_number(d)) {
        int32_t dim = timestamp_days_in_month(d.year, d.month);
        int32_t start = s->day < dim ? s->day : dim;
        if (d.day < start)
            n--;
    }
    return n;
}

enum period_status period_containing(const struct period_spec *spec, tally_time t,
                                     struct period *out)
{
    if (!spec_valid(spec) || out == NULL)
        return PERIOD_ERR_ARG;
    struct series s;
    enum period_status st = series_of(spec, &s);
    if (st != PERIOD_OK)
        return st;
    struct tz_local lt;
    if (tz_to_local(spec->zone, t, &lt) != TZ_OK)
        return PERIOD_ERR_RANGE;
    int64_t n = guess_index(&s, lt.civil.date);
    struct period p;
    for (int i = 0; i <= PERIOD_MAX_ADJUST; i++) {
        st = build(spec, &s, n, &p);
        if (st != PERIOD_OK)
            return st;
        if (t < p.start)
            n--;
        else if (t >= p.end)
            n++;
        else {
            *out = p;
            return PERIOD_OK;
        }
    }
    return PERIOD_ERR_RANGE; /* boundaries not monotonic: a zone no real data produces */
}

enum period_status period_next(const struct period_spec *spec, const struct period *p,
                               struct period *out)
{
    if (!spec_valid(spec) || p == NULL || out == NULL)
        return PERIOD_ERR_ARG;
    struct series s;
    enum period_status st = series_of(spec, &s);
    return st != PERIOD_OK ? st : build(spec, &s, p->index + 1, out);
}

enum period_status period_prev(const struct period_spec *spec, const struct period *p,
                               struct period *out)
{
    if (!spec_valid(spec) || p == NULL || out == NULL)
        return PERIOD_ERR_ARG;
    struct series s;
    enum period_status st = series_of(spec, &s);
    return st != PERIOD_OK ? st : build(spec, &s, p->index - 1, out);
}

int64_t period_days(const struct period *p)
{
    return timestamp_days_from_civil(p->end_day) - timestamp_days_from_civil(p->first_day);
}

/* The local day number of t, clamped into the period's days: around a fold that crosses
 * midnight an instant inside the period can read as the day before its first day. */
static enum period_status local_day_in(const struct period *p, const struct tz_zone *zone,
                                       tally_time t, int64_t *day)
{
    if (p == NULL || zone == NULL || day == NULL)
        return PERIOD_ERR_ARG;
    if (t < p->start || t >= p->end)
        return PERIOD_ERR_OUTSIDE;
    struct tz_local lt;
    if (tz_to_local(zone, t, &lt) != TZ_OK)
        return PERIOD_ERR_RANGE;
    int64_t d = timestamp_days_from_civil(lt.civil.date);
    int64_t first = timestamp_days_from_civil(p->first_day);
    int64_t last = timestamp_days_from_civil(p->end_day) - 1;
    *day = d < first ? first : d > last ? last : d;
    return PERIOD_OK;
}

enum period_status period_days_remaining(const struct period *p, const struct tz_zone *zone,
                                         tally_time t, int64_t *out)
{
    int64_t d;
    enum period_status st = local_day_in(p, zone, t, &d);
    if (st != PERIOD_OK)
        return st;
    if (out == NULL)
        return PERIOD_ERR_ARG;
    *out = timestamp_days_from_civil(p->end_day) - d;
    return PERIOD_OK;
}

enum period_status period_days_elapsed(const struct period *p, const struct tz_zone *zone,
                                       tally_time t, int64_t *out)
{
    int64_t d;
    enum period_status st = local_day_in(p, zone, t, &d);
    if (st != PERIOD_OK)
        return st;
    if (out == NULL)
        return PERIOD_ERR_ARG;
    *out = d - timestamp_days_from_civil(p->first_day) + 1;
    return PERIOD_OK;
}
