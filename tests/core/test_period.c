/*
 * Tests of core/period: calendar and anniversary periods of every interval, month-end
 * anchors, leap years, periods in zones with DST (boundaries at local midnight), a midnight
 * lost to a DST gap, day counts for proration, and a sweep over a century of periods in a
 * dozen zones checking that the periods tile time with no gap or overlap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/period.h"
#include "sys/tzdb.h"

#define SEC TIMESTAMP_USEC_PER_SEC
#define HOUR (3600 * SEC)
#define DAY TIMESTAMP_USEC_PER_DAY

#include "tz_fixture.h"

static struct period_spec spec(enum period_interval iv, enum period_billing_time bt,
                               const char *anchor, const char *zone_name)
{
    return (struct period_spec){iv, bt, anchor ? iso(anchor) : 0, zone(zone_name)};
}

static struct period containing(const struct period_spec *s, const char *t)
{
    struct period p;
    enum period_status st = period_containing(s, iso(t), &p);
    if (st != PERIOD_OK)
        fail_msg("period_containing(%s) failed: %d", t, st);
    return p;
}

static void check(const struct period *p, const char *start, const char *end, int64_t days)
{
    char a[TIMESTAMP_TEXT_MAX], b[TIMESTAMP_TEXT_MAX];
    timestamp_format(p->start, false, a);
    timestamp_format(p->end, false, b);
    if (p->start != iso(start) || p->end != iso(end) || period_days(p) != days)
        fail_msg("got [%s, %s) %lld days, want [%s, %s) %lld days", a, b, (long long)period_days(p),
                 start, end, (long long)days);
}

/* Walks forward from the period containing `from`, checking each against `want`. */
static void check_series(const struct period_spec *s, const char *from, const char *const *want,
                         size_t n)
{
    struct period p = containing(s, from), q;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p.start != iso(want[i]) || p.end != iso(want[i + 1])) {
            char a[TIMESTAMP_TEXT_MAX], b[TIMESTAMP_TEXT_MAX];
            timestamp_format(p.start, false, a);
            timestamp_format(p.end, false, b);
            fail_msg("period %zu: got [%s, %s), want [%s, %s)", i, a, b, want[i], want[i + 1]);
        }
        assert_int_equal(period_next(s, &p, &q), PERIOD_OK);
        struct period back;
        assert_int_equal(period_prev(s, &q, &back), PERIOD_OK);
        assert_memory_equal(&back, &p, sizeof p);
        p = q;
    }
}

static void test_monthly_calendar_utc(void **state)
{
    (void)state;
    struct period_spec s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "UTC");
    struct period p = containing(&s, "2024-02-29T12:00:00Z");
    check(&p, "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", 29);
    p = containing(&s, "2100-02-15T00:00:00Z"); /* 2100 is not a leap year */
    check(&p, "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z", 28);
    p = containing(&s, "2000-02-15T00:00:00Z"); /* 2000 is */
    check(&p, "2000-02-01T00:00:00Z", "2000-03-01T00:00:00Z", 29);
    p = containing(&s, "2026-01-31T23:59:59Z"); /* Lago's to_datetime is end - 1 s */
    check(&p, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", 31);
    assert_int_equal(p.end - SEC, iso("2026-01-31T23:59:59Z"));
    p = containing(&s, "2026-02-01T00:00:00Z");
    check(&p, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 28);
    static const char *const want[] = {"2025-11-01T00:00:00Z", "2025-12-01T00:00:00Z",
                                       "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z",
                                       "2026-03-01T00:00:00Z"};
    check_series(&s, "2025-11-30T23:59:59.999999Z", want, 5);
    /* The anchor does not matter for calendar billing. */
    s.anchor = iso("2025-07-19T08:00:00Z");
    p = containing(&s, "2026-01-15T00:00:00Z");
    check(&p, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", 31);
}

static void test_anniversary_month_end(void **state)
{
    (void)state;
    /* Anchor Jan 31: Feb 29 (leap), Mar 31, Apr 30, May 31 - the 31st is remembered. */
    struct period_spec s = spec(PERIOD_MONTHLY, PERIOD_ANNIVERSARY, "2024-01-31T10:00:00Z", "UTC");
    static const char *const leap[] = {"2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z",
                                       "2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z",
                                       "2024-05-31T00:00:00Z", "2024-06-30T00:00:00Z"};
    check_series(&s, "2024-01-31T10:00:00Z", leap, 6);
    static const char *const common[] = {"2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z",
                                         "2025-03-31T00:00:00Z"};
    check_series(&s, "2025-02-27T23:00:00Z", common, 3);
    struct period p = containing(&s, "2024-02-29T05:00:00Z");
    check(&p, "2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z", 31);
    p = containing(&s, "2024-02-28T23:59:59Z");
    check(&p, "2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z", 29);
    assert_int_equal(p.index, 0); /* the period that starts on the anchor's date */
    /* Before the anchor the series extends backwards the same way. */
    p = containing(&s, "2023-12-31T00:00:00Z");
    check(&p, "2023-12-31T00:00:00Z", "2024-01-31T00:00:00Z", 31);
    assert_int_equal(p.index, -1);

    /* Anchor 30: Feb 29 in 2024, Feb 28 in 2025, back to the 30th in March. */
    s.anchor = iso("2024-01-30T00:00:00Z");
    static const char *const a30[] = {"2025-01-30T00:00:00Z", "2025-02-28T00:00:00Z",
                                      "2025-03-30T00:00:00Z", "2025-04-30T00:00:00Z"};
    check_series(&s, "2025-02-01T00:00:00Z", a30, 4);
    p = containing(&s, "2024-03-01T00:00:00Z");
    check(&p, "2024-02-29T00:00:00Z", "2024-03-30T00:00:00Z", 30);
    /* Anchor 29: Feb 29 exists in 2024, Feb 28 in 2025 and 2100. */
    s.anchor = iso("2024-02-29T00:00:00Z");
    p = containing(&s, "2024-03-10T00:00:00Z");
    check(&p, "2024-02-29T00:00:00Z", "2024-03-29T00:00:00Z", 29);
    p = containing(&s, "2025-03-10T00:00:00Z");
    check(&p, "2025-02-28T00:00:00Z", "2025-03-29T00:00:00Z", 29);
    p = containing(&s, "2100-02-28T00:00:00Z");
    check(&p, "2100-02-28T00:00:00Z", "2100-03-29T00:00:00Z", 29);
    p = containing(&s, "2100-02-27T00:00:00Z");
    check(&p, "2100-01-29T00:00:00Z", "2100-02-28T00:00:00Z", 30);
    /* Mid-month anchor. */
    s.anchor = iso("2026-01-15T00:00:00Z");
    p = containing(&s, "2026-03-14T23:59:59Z");
    check(&p, "2026-02-15T00:00:00Z", "2026-03-15T00:00:00Z", 28);
}

static void test_weekly(void **state)
{
    (void)state;
    /* Calendar weeks start on Monday: 2026-01-01 is a Thursday. */
    struct period_spec s = spec(PERIOD_WEEKLY, PERIOD_CALENDAR, NULL, "UTC");
    struct period p = containing(&s, "2026-01-01T12:00:00Z");
    check(&p, "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z", 7);
    assert_int_equal(p.first_day.year, 2025);
    assert_int_equal(p.first_day.month, 12);
    assert_int_equal(p.first_day.day, 29);
    p = containing(&s, "2026-01-04T23:59:59Z"); /* Sunday */
    check(&p, "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z", 7);
    p = containing(&s, "2026-01-05T00:00:00Z"); /* Monday */
    check(&p, "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", 7);
    p = containing(&s, "1970-01-01T00:00:00Z"); /* before the series' day 0 */
    check(&p, "1969-12-29T00:00:00Z", "1970-01-05T00:00:00Z", 7);
    /* Anniversary weeks start on the anchor's weekday (a Wednesday here). */
    s = spec(PERIOD_WEEKLY, PERIOD_ANNIVERSARY, "2026-01-07T15:00:00Z", "UTC");
    p = containing(&s, "2026-01-20T12:00:00Z");
    check(&p, "2026-01-14T00:00:00Z", "2026-01-21T00:00:00Z", 7);
    p = containing(&s, "2026-01-21T00:00:00Z");
    check(&p, "2026-01-21T00:00:00Z", "2026-01-28T00:00:00Z", 7);
    /* In New York, the week holding the spring change is an hour short in UTC. */
    s = spec(PERIOD_WEEKLY, PERIOD_CALENDAR, NULL, "America/New_York");
    p = containing(&s, "2026-03-08T12:00:00Z");
    check(&p, "2026-03-02T05:00:00Z", "2026-03-09T04:00:00Z", 7);
    assert_int_equal(p.end - p.start, 7 * DAY - HOUR);
}

static void test_quarter_half_year(void **state)
{
    (void)state;
    struct period_spec s = spec(PERIOD_QUARTERLY, PERIOD_CALENDAR, NULL, "UTC");
    struct period p = containing(&s, "2026-05-15T00:00:00Z");
    check(&p, "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", 91);
    p = containing(&s, "2024-01-01T00:00:00Z");
    check(&p, "2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z", 91); /* leap Q1 */
    p = containing(&s, "2025-03-31T23:59:59Z");
    check(&p, "2025-01-01T00:00:00Z", "2025-04-01T00:00:00Z", 90);
    p = containing(&s, "2025-12-31T23:59:59Z");
    check(&p, "2025-10-01T00:00:00Z", "2026-01-01T00:00:00Z", 92);
    s.interval = PERIOD_SEMIANNUAL;
    p = containing(&s, "2026-08-01T00:00:00Z");
    check(&p, "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", 184);
    p = containing(&s, "2026-06-30T23:59:59Z");
    check(&p, "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z", 181);
    s.interval = PERIOD_YEARLY;
    p = containing(&s, "2024-06-01T00:00:00Z");
    check(&p, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 366);
    p = containing(&s, "2100-06-01T00:00:00Z");
    check(&p, "2100-01-01T00:00:00Z", "2101-01-01T00:00:00Z", 365);

    /* Anniversary: quarterly from Nov 30 (Feb 28, May 30, Aug 30, Nov 30). */
    s = spec(PERIOD_QUARTERLY, PERIOD_ANNIVERSARY, "2025-11-30T00:00:00Z", "UTC");
    static const char *const q[] = {"2025-11-30T00:00:00Z", "2026-02-28T00:00:00Z",
                                    "2026-05-30T00:00:00Z", "2026-08-30T00:00:00Z",
                                    "2026-11-30T00:00:00Z", "2027-02-28T00:00:00Z"};
    check_series(&s, "2025-12-01T00:00:00Z", q, 6);
    /* Semiannual from Aug 31: Feb 28, Aug 31, Feb 29 (2028). */
    s = spec(PERIOD_SEMIANNUAL, PERIOD_ANNIVERSARY, "2026-08-31T00:00:00Z", "UTC");
    static const char *const h[] = {"2026-08-31T00:00:00Z", "2027-02-28T00:00:00Z",
                                    "2027-08-31T00:00:00Z", "2028-02-29T00:00:00Z",
                                    "2028-08-31T00:00:00Z"};
    check_series(&s, "2026-09-01T00:00:00Z", h, 5);
    /* Yearly from Feb 29: Feb 28 in common years, Feb 29 again in 2028. */
    s = spec(PERIOD_YEARLY, PERIOD_ANNIVERSARY, "2024-02-29T00:00:00Z", "UTC");
    static const char *const y[] = {"2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z",
                                    "2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z",
                                    "2028-02-29T00:00:00Z"};
    check_series(&s, "2024-03-01T00:00:00Z", y, 5);
    p = containing(&s, "2025-02-28T00:00:00Z");
    check(&p, "2025-02-28T00:00:00Z", "2026-02-28T00:00:00Z", 365);
}

static void test_new_york(void **state)
{
    (void)state;
    struct period_spec s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "America/New_York");
    /* March holds the spring change: an hour short. November: an hour long. */
    struct period p = containing(&s, "2026-03-15T00:00:00Z");
    check(&p, "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z", 31);
    assert_int_equal(p.end - p.start, 31 * DAY - HOUR);
    p = containing(&s, "2026-11-15T00:00:00Z");
    check(&p, "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z", 30);
    assert_int_equal(p.end - p.start, 30 * DAY + HOUR);
    /* 04:59:59Z on March 1 is still February 28 in New York. */
    p = containing(&s, "2026-03-01T04:59:59Z");
    check(&p, "2026-02-01T05:00:00Z", "2026-03-01T05:00:00Z", 28);
    /* The anniversary anchor is read in the customer's zone: 03:00Z on Jan 31 is Jan 30. */
    s = spec(PERIOD_MONTHLY, PERIOD_ANNIVERSARY, "2026-01-31T03:00:00Z", "America/New_York");
    p = containing(&s, "2026-03-01T00:00:00Z");
    check(&p, "2026-02-28T05:00:00Z", "2026-03-30T04:00:00Z", 30);
    /* Yearly calendar in New York: starts at 05:00Z. */
    s = spec(PERIOD_YEARLY, PERIOD_CALENDAR, NULL, "America/New_York");
    p = containing(&s, "2026-01-01T04:59:59Z");
    check(&p, "2025-01-01T05:00:00Z", "2026-01-01T05:00:00Z", 365);
}

static void test_kolkata_chatham(void **state)
{
    (void)state;
    struct period_spec s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "Asia/Kolkata");
    struct period p = containing(&s, "2026-01-31T18:29:59Z"); /* 23:59:59 on Jan 31 */
    check(&p, "2025-12-31T18:30:00Z", "2026-01-31T18:30:00Z", 31);
    p = containing(&s, "2026-01-31T18:30:00Z");
    check(&p, "2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z", 28);
    s.interval = PERIOD_QUARTERLY;
    p = containing(&s, "2026-03-31T18:30:00Z");
    check(&p, "2026-03-31T18:30:00Z", "2026-06-30T18:30:00Z", 91);

    /* Chatham: April loses DST (+13:45 -> +12:45) on the 5th: 30 days and one hour. */
    s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "Pacific/Chatham");
    p = containing(&s, "2026-04-15T00:00:00Z");
    check(&p, "2026-03-31T10:15:00Z", "2026-04-30T11:15:00Z", 30);
    assert_int_equal(p.end - p.start, 30 * DAY + HOUR);
    /* September gains it on the 27th: 30 days less an hour. */
    p = containing(&s, "2026-09-15T00:00:00Z");
    check(&p, "2026-08-31T11:15:00Z", "2026-09-30T10:15:00Z", 30);
    /* Anniversary in Chatham: 2026-01-30T11:00Z is already Jan 31 there (+13:45). */
    s = spec(PERIOD_MONTHLY, PERIOD_ANNIVERSARY, "2026-01-30T11:00:00Z", "Pacific/Chatham");
    p = containing(&s, "2026-03-01T00:00:00Z");
    check(&p, "2026-02-27T10:15:00Z", "2026-03-30T10:15:00Z", 31);
    /* Lord Howe: the 30-minute change in April. */
    s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "Australia/Lord_Howe");
    p = containing(&s, "2026-04-15T00:00:00Z");
    check(&p, "2026-03-31T13:00:00Z", "2026-04-30T13:30:00Z", 30);
    assert_int_equal(p.end - p.start, 30 * DAY + HOUR / 2);
}

static void test_midnight_gap(void **state)
{
    (void)state;
    /* Sao Paulo, 2018-11-04: clocks went from 00:00 to 01:00, so the day (and the period
     * starting on it) begins at 01:00 local, 03:00Z. */
    struct period_spec s =
        spec(PERIOD_MONTHLY, PERIOD_ANNIVERSARY, "2018-10-04T15:00:00Z", "America/Sao_Paulo");
    struct period p = containing(&s, "2018-11-10T00:00:00Z");
    check(&p, "2018-11-04T03:00:00Z", "2018-12-04T02:00:00Z", 30);
    assert_int_equal(p.first_day.day, 4);
    struct period prev;
    assert_int_equal(period_prev(&s, &p, &prev), PERIOD_OK);
    check(&prev, "2018-10-04T03:00:00Z", "2018-11-04T03:00:00Z", 31);
    /* Weekly calendar in Santiago: DST starts at 24:00 Saturday, so Sunday 2026-09-06
     * begins at 01:00 local. The Monday boundaries are unaffected. */
    s = spec(PERIOD_WEEKLY, PERIOD_CALENDAR, NULL, "America/Santiago");
    p = containing(&s, "2026-09-06T12:00:00Z");
    check(&p, "2026-08-31T04:00:00Z", "2026-09-07T03:00:00Z", 7);
    /* Samoa skipped 2011-12-30: the December 2011 period still counts 31 local dates. */
    s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "Pacific/Apia");
    p = containing(&s, "2011-12-15T00:00:00Z");
    check(&p, "2011-12-01T10:00:00Z", "2011-12-31T10:00:00Z", 31);
    assert_int_equal(p.end - p.start, 30 * DAY); /* 29 days at -10, one at +14 */
}

static void test_days(void **state)
{
    (void)state;
    /* Lago's proration: a subscription starting on Jan 15 bills 17 of January's 31 days. */
    struct period_spec s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "UTC");
    struct period p = containing(&s, "2026-01-15T10:00:00Z");
    int64_t d;
    assert_int_equal(period_days_remaining(&p, s.zone, iso("2026-01-15T10:00:00Z"), &d), PERIOD_OK);
    assert_int_equal(d, 17);
    assert_int_equal(period_days_elapsed(&p, s.zone, iso("2026-01-15T10:00:00Z"), &d), PERIOD_OK);
    assert_int_equal(d, 15);
    assert_int_equal(period_days_remaining(&p, s.zone, p.start, &d), PERIOD_OK);
    assert_int_equal(d, 31);
    assert_int_equal(period_days_elapsed(&p, s.zone, p.end - 1, &d), PERIOD_OK);
    assert_int_equal(d, 31);
    assert_int_equal(period_days_remaining(&p, s.zone, p.end - 1, &d), PERIOD_OK);
    assert_int_equal(d, 1);
    assert_int_equal(period_days_remaining(&p, s.zone, p.end, &d), PERIOD_ERR_OUTSIDE);
    assert_int_equal(period_days_elapsed(&p, s.zone, p.start - 1, &d), PERIOD_ERR_OUTSIDE);
    /* Days are the customer's: 03:00Z on Jan 16 is still Jan 15 in New York. */
    s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "America/New_York");
    p = containing(&s, "2026-01-16T03:00:00Z");
    assert_int_equal(period_days_remaining(&p, s.zone, iso("2026-01-16T03:00:00Z"), &d), PERIOD_OK);
    assert_int_equal(d, 17);
    /* March in New York has 31 days although it is 743 hours long. */
    p = containing(&s, "2026-03-20T00:00:00Z");
    assert_int_equal(period_days(&p), 31);
    assert_int_equal(period_days_remaining(&p, s.zone, iso("2026-03-08T12:00:00Z"), &d), PERIOD_OK);
    assert_int_equal(d, 24);
    /* Kolkata: 20:00Z on Feb 27 is Feb 28 01:30 local: the last day. */
    s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "Asia/Kolkata");
    p = containing(&s, "2026-02-27T20:00:00Z");
    assert_int_equal(period_days_remaining(&p, s.zone, iso("2026-02-27T20:00:00Z"), &d), PERIOD_OK);
    assert_int_equal(d, 1);
    /* Weekly and yearly. */
    s = spec(PERIOD_WEEKLY, PERIOD_CALENDAR, NULL, "UTC");
    p = containing(&s, "2026-01-01T00:00:00Z"); /* Thursday: Thu..Sun remain */
    assert_int_equal(period_days_remaining(&p, s.zone, iso("2026-01-01T00:00:00Z"), &d), PERIOD_OK);
    assert_int_equal(d, 4);
    s = spec(PERIOD_YEARLY, PERIOD_CALENDAR, NULL, "UTC");
    p = containing(&s, "2024-12-31T00:00:00Z");
    assert_int_equal(period_days_elapsed(&p, s.zone, iso("2024-12-31T00:00:00Z"), &d), PERIOD_OK);
    assert_int_equal(d, 366);
}

static void test_errors(void **state)
{
    (void)state;
    struct period_spec s = spec(PERIOD_MONTHLY, PERIOD_CALENDAR, NULL, "Europe/Paris");
    struct period p;
    assert_int_equal(period_containing(NULL, 0, &p), PERIOD_ERR_ARG);
    assert_int_equal(period_containing(&s, 0, NULL), PERIOD_ERR_ARG);
    struct period_spec bad = s;
    bad.interval = (enum period_interval)99;
    assert_int_equal(period_containing(&bad, 0, &p), PERIOD_ERR_ARG);
    bad = s;
    bad.billing_time = (enum period_billing_time)7;
    assert_int_equal(period_containing(&bad, 0, &p), PERIOD_ERR_ARG);
    bad = s;
    bad.zone = NULL;
    assert_int_equal(period_containing(&bad, 0, &p), PERIOD_ERR_ARG);
    assert_int_equal(period_containing(&s, TIMESTAMP_MAX + 1, &p), PERIOD_ERR_RANGE);
    /* The last period of year 9999 would end in year 10000. */
    assert_int_equal(period_containing(&s, iso("9999-12-15T00:00:00Z"), &p), PERIOD_ERR_RANGE);
    assert_int_equal(period_containing(&s, iso("9999-11-15T00:00:00Z"), &p), PERIOD_OK);
    assert_int_equal(period_next(&s, &p, &p), PERIOD_ERR_RANGE);
    s.billing_time = PERIOD_ANNIVERSARY;
    s.anchor = TIMESTAMP_MAX + 1;
    assert_int_equal(period_containing(&s, 0, &p), PERIOD_ERR_RANGE);
    int64_t d;
    assert_int_equal(period_days_remaining(NULL, s.zone, 0, &d), PERIOD_ERR_ARG);
}

/* A century of periods in zones with every kind of oddity: the periods tile time (each ends
 * where the next starts), each starts on its first local day, containing() finds each from
 * its first and last instant, and prev() undoes next(). */
static void test_sweep(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "UTC",
        "America/New_York",
        "Europe/Paris",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "Australia/Lord_Howe",
        "America/Sao_Paulo",
        "Pacific/Apia",
        "Europe/Dublin",
        "America/Santiago",
        "Asia/Tehran",
        "America/Havana",
        "Pacific/Kiritimati",
        "Africa/Casablanca",
    };
    static const char *const anchors[] = {"2000-01-31T12:00:00Z", "2000-02-29T23:30:00Z",
                                          "2000-03-30T06:00:00Z", "2000-08-31T00:00:00Z"};
    size_t periods = 0, skipped = 0, gap_starts = 0;
    for (size_t zi = 0; zi < sizeof zones / sizeof zones[0]; zi++) {
        for (int iv = PERIOD_WEEKLY; iv <= PERIOD_YEARLY; iv++) {
            for (size_t ai = 0; ai <= sizeof anchors / sizeof anchors[0]; ai++) {
                struct period_spec s = {(enum period_interval)iv,
                                        ai == 0 ? PERIOD_CALENDAR : PERIOD_ANNIVERSARY,
                                        ai == 0 ? 0 : iso(anchors[ai - 1]), zone(zones[zi])};
                tally_time until =
                    iso(iv == PERIOD_WEEKLY ? "2030-01-01T00:00:00Z" : "2100-01-01T00:00:00Z");
                struct period p, q, r;
                assert_int_equal(period_containing(&s, iso("1970-01-01T00:00:00Z"), &p), PERIOD_OK);
                while (p.start < until) {
                    assert_true(p.start < p.end);
                    int64_t days = period_days(&p);
                    static const int64_t lo[] = {7, 28, 89, 181, 365};
                    static const int64_t hi[] = {7, 31, 92, 184, 366};
                    assert_true(days >= lo[iv] && days <= hi[iv]);
                    struct tz_local l;
                    assert_int_equal(tz_to_local(s.zone, p.start, &l), TZ_OK);
                    /* The first instant is on the first day, unless that day was skipped
                     * (Apia 2011-12-30, Kiritimati 1994-12-31). */
                    if (memcmp(&l.civil.date, &p.first_day, sizeof l.civil.date) != 0) {
                        tally_time next_day;
                        struct civil_date d =
                            timestamp_civil_from_days(timestamp_days_from_civil(p.first_day) + 1);
                        assert_int_equal(tz_start_of_day(s.zone, d, &next_day), TZ_OK);
                        assert_int_equal(next_day, p.start);
                        skipped++;
                    } else if (l.civil.hour != 0 || l.civil.minute != 0 || l.civil.second != 0) {
                        /* Not at midnight: only because midnight fell in a gap. */
                        struct tz_civil c = {p.first_day, 0, 0, 0, 0};
                        tally_time t;
                        enum tz_match m;
                        assert_int_equal(tz_from_local(s.zone, &c, TZ_FOLD_EARLIER,
                                                       TZ_GAP_SHIFT_FORWARD, &t, &m),
                                         TZ_OK);
                        assert_int_equal(m, TZ_MATCH_GAP);
                        gap_starts++;
                    }
                    assert_int_equal(period_containing(&s, p.start, &r), PERIOD_OK);
                    assert_memory_equal(&r, &p, sizeof p);
                    assert_int_equal(period_containing(&s, p.end - 1, &r), PERIOD_OK);
                    assert_memory_equal(&r, &p, sizeof p);
                    assert_int_equal(period_next(&s, &p, &q), PERIOD_OK);
                    assert_int_equal(q.start, p.end);
                    assert_int_equal(period_prev(&s, &q, &r), PERIOD_OK);
                    assert_memory_equal(&r, &p, sizeof p);
                    int64_t rem, el;
                    tally_time mid = p.start + (p.end - p.start) / 2;
                    assert_int_equal(period_days_remaining(&p, s.zone, mid, &rem), PERIOD_OK);
                    assert_int_equal(period_days_elapsed(&p, s.zone, mid, &el), PERIOD_OK);
                    assert_int_equal(rem + el, days + 1);
                    p = q;
                    periods++;
                }
            }
        }
    }
    print_message("sweep: %zu periods, %zu starting after a midnight gap, %zu on a skipped day\n",
                  periods, gap_starts, skipped);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monthly_calendar_utc),
        cmocka_unit_test(test_anniversary_month_end),
        cmocka_unit_test(test_weekly),
        cmocka_unit_test(test_quarter_half_year),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_kolkata_chatham),
        cmocka_unit_test(test_midnight_gap),
        cmocka_unit_test(test_days),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
