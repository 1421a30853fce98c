/*
 * Tests of core/tz and sys/tzdb: explicit DST cases in five zones chosen for their oddities
 * (New York, Paris, Kolkata's half-hour offset without DST, Chatham's 45-minute offsets,
 * Lord Howe's 30-minute DST), POSIX TZ strings, malformed TZif input and a mutation fuzz
 * loop (run under ASan in the sanitized build), the name checks and cache of tzdb, and a
 * comparison with glibc's localtime_r over every zone of the system's tz database.
 *
 * glibc converts through the process-wide TZ variable, which is not thread-safe and would
 * leak into other tests, so each zone's comparison runs in a forked child that sets TZ,
 * converts the instants it inherited from the parent and writes its answers to a pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/tz.h"
#include "sys/tzdb.h"

#define ZONEINFO "/usr/share/zoneinfo"
#define SEC TIMESTAMP_USEC_PER_SEC

#include "tz_fixture.h"

static struct tz_civil civil(int32_t y, int32_t mo, int32_t d, int32_t h, int32_t mi, int32_t s)
{
    return (struct tz_civil){{y, mo, d}, h, mi, s, 0};
}

static void check_local(const struct tz_zone *z, const char *utc, int32_t offset, bool dst,
                        const char *abbr, int32_t hour, int32_t minute)
{
    struct tz_local l;
    assert_int_equal(tz_to_local(z, iso(utc), &l), TZ_OK);
    if (l.utc_offset != offset || l.is_dst != dst || strcmp(l.abbr, abbr) != 0 ||
        l.civil.hour != hour || l.civil.minute != minute)
        fail_msg("%s: got offset %d dst %d %s %02d:%02d, want %d %d %s %02d:%02d", utc,
                 l.utc_offset, l.is_dst, l.abbr, l.civil.hour, l.civil.minute, offset, dst, abbr,
                 hour, minute);
}

static void check_from_local(const struct tz_zone *z, struct tz_civil c, enum tz_fold fold,
                             enum tz_gap gap, const char *want_utc, enum tz_match want_match)
{
    tally_time t;
    enum tz_match m;
    assert_int_equal(tz_from_local(z, &c, fold, gap, &t, &m), TZ_OK);
    char got[TIMESTAMP_TEXT_MAX];
    timestamp_format(t, false, got);
    if (t != iso(want_utc) || m != want_match)
        fail_msg("%04d-%02d-%02d %02d:%02d: got %s match %d, want %s match %d", c.date.year,
                 c.date.month, c.date.day, c.hour, c.minute, got, m, want_utc, want_match);
}

/* ---- explicit zones ------------------------------------------------------------------ */

static void test_utc(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("UTC");
    check_local(z, "2026-03-08T02:30:00Z", 0, false, "UTC", 2, 30);
    check_from_local(z, civil(2026, 3, 8, 2, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-03-08T02:30:00Z", TZ_MATCH_UNIQUE);
    tally_time next;
    assert_false(tz_next_transition(z, iso("2026-01-01T00:00:00Z"), &next));
}

static void test_new_york(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("America/New_York");
    /* Spring forward: 2026-03-08 02:00 EST -> 03:00 EDT at 07:00Z. */
    check_local(z, "2026-03-08T06:59:59Z", -18000, false, "EST", 1, 59);
    check_local(z, "2026-03-08T07:00:00Z", -14400, true, "EDT", 3, 0);
    /* 02:30 does not exist: shifted forward by the hour, or the end of the gap. */
    check_from_local(z, civil(2026, 3, 8, 2, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-03-08T07:30:00Z", TZ_MATCH_GAP);
    check_from_local(z, civil(2026, 3, 8, 2, 30, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-03-08T07:30:00Z", TZ_MATCH_GAP);
    check_from_local(z, civil(2026, 3, 8, 2, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_NEXT_VALID,
                     "2026-03-08T07:00:00Z", TZ_MATCH_GAP);
    check_from_local(z, civil(2026, 3, 8, 1, 59, 59), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-03-08T06:59:59Z", TZ_MATCH_UNIQUE);
    check_from_local(z, civil(2026, 3, 8, 3, 0, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-03-08T07:00:00Z", TZ_MATCH_UNIQUE);
    /* Fall back: 2026-11-01 02:00 EDT -> 01:00 EST at 06:00Z; 01:30 happens twice. */
    check_local(z, "2026-11-01T05:59:59Z", -14400, true, "EDT", 1, 59);
    check_local(z, "2026-11-01T06:00:00Z", -18000, false, "EST", 1, 0);
    check_from_local(z, civil(2026, 11, 1, 1, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-11-01T05:30:00Z", TZ_MATCH_FOLD);
    check_from_local(z, civil(2026, 11, 1, 1, 30, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-11-01T06:30:00Z", TZ_MATCH_FOLD);
    check_from_local(z, civil(2026, 11, 1, 2, 0, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-11-01T07:00:00Z", TZ_MATCH_UNIQUE);
    check_from_local(z, civil(2026, 7, 1, 12, 0, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-07-01T16:00:00Z", TZ_MATCH_UNIQUE);
    /* Microseconds survive the round trip. */
    struct tz_civil c = civil(2026, 7, 1, 12, 0, 0);
    c.usec = 123456;
    tally_time t;
    assert_int_equal(tz_from_local(z, &c, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &t, NULL), TZ_OK);
    assert_int_equal(t, iso("2026-07-01T16:00:00.123456Z"));
    /* Transitions, from the file and then from the footer's rule (2100). */
    assert_true(tz_next_transition(z, iso("2026-01-01T00:00:00Z"), &t));
    assert_int_equal(t, iso("2026-03-08T07:00:00Z"));
    assert_true(tz_next_transition(z, t, &t));
    assert_int_equal(t, iso("2026-11-01T06:00:00Z"));
    assert_true(tz_next_transition(z, iso("2100-01-01T00:00:00Z"), &t));
    assert_int_equal(t, iso("2100-03-14T07:00:00Z"));
    check_local(z, "2100-07-01T12:00:00Z", -14400, true, "EDT", 8, 0);
    /* Start of a day. */
    assert_int_equal(tz_start_of_day(z, (struct civil_date){2026, 3, 8}, &t), TZ_OK);
    assert_int_equal(t, iso("2026-03-08T05:00:00Z"));
}

static void test_paris(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("Europe/Paris");
    check_local(z, "2026-03-29T00:59:59Z", 3600, false, "CET", 1, 59);
    check_local(z, "2026-03-29T01:00:00Z", 7200, true, "CEST", 3, 0);
    check_from_local(z, civil(2026, 3, 29, 2, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-03-29T01:30:00Z", TZ_MATCH_GAP);
    check_from_local(z, civil(2026, 3, 29, 2, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_NEXT_VALID,
                     "2026-03-29T01:00:00Z", TZ_MATCH_GAP);
    check_local(z, "2026-10-25T00:59:59Z", 7200, true, "CEST", 2, 59);
    check_local(z, "2026-10-25T01:00:00Z", 3600, false, "CET", 2, 0);
    check_from_local(z, civil(2026, 10, 25, 2, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-10-25T00:30:00Z", TZ_MATCH_FOLD);
    check_from_local(z, civil(2026, 10, 25, 2, 30, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-10-25T01:30:00Z", TZ_MATCH_FOLD);
    /* Paris kept local mean time (+00:09:21) until 1891. */
    check_local(z, "1880-01-01T00:00:00Z", 561, false, "LMT", 0, 9);
}

static void test_kolkata(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("Asia/Kolkata");
    check_local(z, "2026-01-01T00:00:00Z", 19800, false, "IST", 5, 30);
    check_local(z, "2026-06-30T18:30:00Z", 19800, false, "IST", 0, 0);
    check_from_local(z, civil(2026, 7, 1, 0, 0, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-06-30T18:30:00Z", TZ_MATCH_UNIQUE);
    tally_time t;
    assert_false(tz_next_transition(z, iso("2026-01-01T00:00:00Z"), &t));
    /* 1942-09-01: war time, +06:30 (IST with DST flag set). */
    check_local(z, "1943-01-01T00:00:00Z", 23400, true, "+0630", 6, 30);
}

static void test_chatham(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("Pacific/Chatham");
    /* DST ends on the first Sunday of April at 03:45 local (+13:45 -> +12:45). */
    check_local(z, "2026-04-04T13:59:59Z", 49500, true, "+1345", 3, 44);
    check_local(z, "2026-04-04T14:00:00Z", 45900, false, "+1245", 2, 45);
    check_from_local(z, civil(2026, 4, 5, 3, 0, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-04-04T13:15:00Z", TZ_MATCH_FOLD);
    check_from_local(z, civil(2026, 4, 5, 3, 0, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-04-04T14:15:00Z", TZ_MATCH_FOLD);
    /* DST starts on the last Sunday of September at 02:45 local (+12:45 -> +13:45). */
    check_local(z, "2026-09-26T13:59:59Z", 45900, false, "+1245", 2, 44);
    check_local(z, "2026-09-26T14:00:00Z", 49500, true, "+1345", 3, 45);
    check_from_local(z, civil(2026, 9, 27, 3, 0, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-09-26T14:15:00Z", TZ_MATCH_GAP);
    check_from_local(z, civil(2026, 9, 27, 3, 0, 0), TZ_FOLD_EARLIER, TZ_GAP_NEXT_VALID,
                     "2026-09-26T14:00:00Z", TZ_MATCH_GAP);
    /* The rule region, decades past the file's last transition. */
    check_local(z, "2080-01-15T00:00:00Z", 49500, true, "+1345", 13, 45);
    check_local(z, "2080-07-15T00:00:00Z", 45900, false, "+1245", 12, 45);
}

static void test_lord_howe(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("Australia/Lord_Howe");
    /* DST (+11) ends on the first Sunday of April at 02:00 DST -> 01:30 (+10:30). */
    check_local(z, "2026-04-04T14:59:59Z", 39600, true, "+11", 1, 59);
    check_local(z, "2026-04-04T15:00:00Z", 37800, false, "+1030", 1, 30);
    check_from_local(z, civil(2026, 4, 5, 1, 45, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-04-04T14:45:00Z", TZ_MATCH_FOLD);
    check_from_local(z, civil(2026, 4, 5, 1, 45, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2026-04-04T15:15:00Z", TZ_MATCH_FOLD);
    /* DST starts on the first Sunday of October at 02:00 (+10:30) -> 02:30 (+11). */
    check_local(z, "2026-10-03T15:29:59Z", 37800, false, "+1030", 1, 59);
    check_local(z, "2026-10-03T15:30:00Z", 39600, true, "+11", 2, 30);
    check_from_local(z, civil(2026, 10, 4, 2, 15, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-10-03T15:45:00Z", TZ_MATCH_GAP);
    check_from_local(z, civil(2026, 10, 4, 2, 15, 0), TZ_FOLD_EARLIER, TZ_GAP_NEXT_VALID,
                     "2026-10-03T15:30:00Z", TZ_MATCH_GAP);
    check_from_local(z, civil(2026, 10, 4, 2, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2026-10-03T15:30:00Z", TZ_MATCH_UNIQUE);
}

static void test_odd_days(void **state)
{
    (void)state;
    tally_time a, b;
    /* Samoa skipped 2011-12-30 entirely: the day starts and ends at the same instant. */
    const struct tz_zone *apia = zone("Pacific/Apia");
    assert_int_equal(tz_start_of_day(apia, (struct civil_date){2011, 12, 30}, &a), TZ_OK);
    assert_int_equal(tz_start_of_day(apia, (struct civil_date){2011, 12, 31}, &b), TZ_OK);
    assert_int_equal(a, b);
    assert_int_equal(a, iso("2011-12-30T10:00:00Z"));
    /* Sao Paulo's DST started at midnight: 2018-11-04 began at 01:00 (-02). */
    const struct tz_zone *sp = zone("America/Sao_Paulo");
    assert_int_equal(tz_start_of_day(sp, (struct civil_date){2018, 11, 4}, &a), TZ_OK);
    assert_int_equal(a, iso("2018-11-04T03:00:00Z"));
    /* ... and ended at midnight, back to 23:00 the day before: 2019-02-16 23:xx twice. */
    check_from_local(sp, civil(2019, 2, 16, 23, 30, 0), TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD,
                     "2019-02-17T01:30:00Z", TZ_MATCH_FOLD);
    check_from_local(sp, civil(2019, 2, 16, 23, 30, 0), TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD,
                     "2019-02-17T02:30:00Z", TZ_MATCH_FOLD);
    assert_int_equal(tz_start_of_day(sp, (struct civil_date){2019, 2, 17}, &a), TZ_OK);
    assert_int_equal(a, iso("2019-02-17T03:00:00Z"));
    /* Dublin's negative DST: winter GMT is the "DST" time, summer IST is standard. */
    const struct tz_zone *dub = zone("Europe/Dublin");
    check_local(dub, "2026-01-15T12:00:00Z", 0, true, "GMT", 12, 0);
    check_local(dub, "2026-07-15T12:00:00Z", 3600, false, "IST", 13, 0);
}

/* ---- POSIX TZ strings --------------------------------------------------------------- */

static struct tz_zone *posix(const char *s)
{
    struct tz_zone *z;
    enum tz_status st = tz_from_posix(s, strlen(s), &z);
    if (st != TZ_OK)
        fail_msg("%s: %s", s, tz_status_name(st));
    return z;
}

static void test_posix_strings(void **state)
{
    (void)state;
    struct tz_zone *z = posix("EST5EDT,M3.2.0,M11.1.0");
    check_local(z, "2026-03-08T07:00:00Z", -14400, true, "EDT", 3, 0);
    check_local(z, "1960-01-01T12:00:00Z", -18000, false, "EST", 7, 0);
    tz_free(z);
    z = posix("EST5EDT"); /* no rule: the US rule of 2007 */
    check_local(z, "2026-11-01T06:00:00Z", -18000, false, "EST", 1, 0);
    check_local(z, "2026-11-01T05:59:59Z", -14400, true, "EDT", 1, 59);
    tz_free(z);
    /* The brief's Chatham variant: standard +13:45, "DST" +12:45 from September to April. */
    z = posix("<+1345>-13:45<+1245>-12:45,M9.5.0/2:45,M4.1.0/3:45");
    check_local(z, "2026-01-15T00:00:00Z", 45900, true, "+1245", 12, 45);
    check_local(z, "2026-07-15T00:00:00Z", 49500, false, "+1345", 13, 45);
    tz_free(z);
    z = posix("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
    check_local(z, "2026-10-03T15:30:00Z", 39600, true, "+11", 2, 30);
    tz_free(z);
    /* RFC 8536 all-year DST: on from Jan 1 00:00 to Dec 31 25:00, no gap at New Year. */
    z = posix("EST5EDT4,0/0,J365/25");
    check_local(z, "2026-01-01T02:00:00Z", -14400, true, "EDT", 22, 0);
    check_local(z, "2026-01-01T06:00:00Z", -14400, true, "EDT", 2, 0);
    check_local(z, "2026-07-01T06:00:00Z", -14400, true, "EDT", 2, 0);
    tz_free(z);
    /* Negative and >24h rule times (version 3): Greenland, Israel. */
    z = posix("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    /* Saturday 23:00 local (-02), i.e. 01:00 UTC like the EU. */
    check_local(z, "2026-03-29T00:59:59Z", -7200, false, "-02", 22, 59);
    check_local(z, "2026-03-29T01:00:00Z", -3600, true, "-01", 0, 0);
    tz_free(z);
    z = posix("IST-2IDT,M3.4.4/26,M10.5.0");
    check_local(z, "2026-03-27T00:00:00Z", 10800, true, "IDT", 3, 0);
    check_local(z, "2026-03-26T23:59:59Z", 7200, false, "IST", 1, 59);
    tz_free(z);
    z = posix("UTC0");
    check_local(z, "2026-03-08T02:30:00Z", 0, false, "UTC", 2, 30);
    tz_free(z);
    z = posix("<+0530>-5:30");
    check_local(z, "2026-03-08T00:00:00Z", 19800, false, "+0530", 5, 30);
    tz_free(z);

    static const char *const bad[] = {
        "",
        "E5",
        "EST",
        "EST5EDT,",
        "EST5EDT,M3.2.0",
        "EST5EDT,M13.2.0,M11.1.0",
        "EST5EDT,M3.6.0,M11.1.0",
        "EST5EDT,M3.2.7,M11.1.0",
        "EST5EDT,J0,J365",
        "EST5EDT,366,J1",
        "EST25",
        "EST5:60",
        "<+05",
        "<+0 5>-5",
        "EST5EDT,M3.2.0/168,M11.1.0",
        "EST5 ",
        "EST5EDT,M3.2.0,M11.1.0,",
        "<ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456>5",
        "EST5EDT+",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tz_zone *b = (struct tz_zone *)1;
        enum tz_status st = tz_from_posix(bad[i], strlen(bad[i]), &b);
        if (st == TZ_OK)
            fail_msg("accepted bad TZ string \"%s\"", bad[i]);
        assert_null(b);
    }
}

static void test_arguments(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("Europe/Paris");
    struct tz_local l;
    tally_time t;
    assert_int_equal(tz_to_local(NULL, 0, &l), TZ_ERR_ARG);
    assert_int_equal(tz_to_local(z, TIMESTAMP_MAX + 1, &l), TZ_ERR_RANGE);
    assert_int_equal(tz_to_local(z, TIMESTAMP_MIN - 1, &l), TZ_ERR_RANGE);
    assert_int_equal(tz_to_local(z, TIMESTAMP_MIN, &l), TZ_OK);
    assert_int_equal(tz_to_local(z, TIMESTAMP_MAX, &l), TZ_OK);
    struct tz_civil bad[] = {
        civil(2026, 2, 29, 0, 0, 0), civil(2026, 13, 1, 0, 0, 0), civil(2026, 1, 0, 0, 0, 0),
        civil(2026, 1, 1, 24, 0, 0), civil(2026, 1, 1, 0, 60, 0), civil(2026, 1, 1, 0, 0, 60),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tz_from_local(z, &bad[i], TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &t, NULL),
                         TZ_ERR_ARG);
    struct tz_civil c = civil(10000, 1, 1, 0, 0, 0);
    assert_int_equal(tz_from_local(z, &c, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &t, NULL),
                     TZ_ERR_RANGE);
    c = civil(2026, 1, 1, 0, 0, 0);
    c.usec = 1000000;
    assert_int_equal(tz_from_local(z, &c, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &t, NULL),
                     TZ_ERR_ARG);
    /* Paris was 9 minutes ahead: midnight of year 1 falls before the first instant. */
    c = civil(1, 1, 1, 0, 0, 0);
    assert_int_equal(tz_from_local(z, &c, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &t, NULL),
                     TZ_ERR_RANGE);
    c = civil(1, 1, 1, 0, 10, 0);
    assert_int_equal(tz_from_local(z, &c, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &t, NULL), TZ_OK);
    assert_int_equal(t, TIMESTAMP_MIN + 39 * SEC);
    c = civil(9999, 12, 31, 23, 59, 59);
    assert_int_equal(tz_from_local(z, &c, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &t, NULL), TZ_OK);
    assert_string_equal(tz_status_name(TZ_ERR_LIMIT), "TZ_ERR_LIMIT");
}

/* ---- hand-built TZif files ---------------------------------------------------------- */

struct tzif {
    uint8_t version; /* 0, '2', '3', '4' */
    size_t timecnt;
    int64_t times[8];
    uint8_t idx[8];
    size_t typecnt;
    int32_t utoff[4];
    uint8_t isdst[4];
    uint8_t desig[4];
    const char *chars; /* the pool, NULs included */
    size_t charcnt;
    const char *footer; /* without its newlines; version 2+ */
};

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_header(uint8_t *p, uint8_t version, size_t timecnt, size_t typecnt,
                           size_t charcnt)
{
    memcpy(p, "TZif", 4);
    p[4] = version;
    memset(p + 5, 0, 15);
    p += 20;
    p = put32(p, 0); /* isutcnt */
    p = put32(p, 0); /* isstdcnt */
    p = put32(p, 0); /* leapcnt */
    p = put32(p, (uint32_t)timecnt);
    p = put32(p, (uint32_t)typecnt);
    return put32(p, (uint32_t)charcnt);
}

static uint8_t *put_block(uint8_t *p, const struct tzif *f, size_t time_size)
{
    for (size_t i = 0; i < f->timecnt; i++) {
        if (time_size == 8)
            p = put32(p, (uint32_t)((uint64_t)f->times[i] >> 32));
        p = put32(p, (uint32_t)f->times[i]);
    }
    for (size_t i = 0; i < f->timecnt; i++)
        *p++ = f->idx[i];
    for (size_t i = 0; i < f->typecnt; i++) {
        p = put32(p, (uint32_t)f->utoff[i]);
        *p++ = f->isdst[i];
        *p++ = f->desig[i];
    }
    memcpy(p, f->chars, f->charcnt);
    return p + f->charcnt;
}

/* Offset of the 64-bit header in files from build(): after the minimal version 1 block. */
#define V2_HEADER_AT (44 + 6 + 1)

static size_t build(const struct tzif *f, uint8_t *out)
{
    uint8_t *p = out;
    if (f->version == 0) {
        p = put_header(p, 0, f->timecnt, f->typecnt, f->charcnt);
        p = put_block(p, f, 4);
        return (size_t)(p - out);
    }
    /* A minimal version 1 block (as zic -b slim writes): one type, one NUL. */
    p = put_header(p, f->version, 0, 1, 1);
    memset(p, 0, 7);
    p += 7;
    p = put_header(p, f->version, f->timecnt, f->typecnt, f->charcnt);
    p = put_block(p, f, 8);
    *p++ = '\n';
    memcpy(p, f->footer, strlen(f->footer));
    p += strlen(f->footer);
    *p++ = '\n';
    return (size_t)(p - out);
}

static const struct tzif sample = {
    .version = '2',
    .timecnt = 2,
    .times = {1000000000, 1100000000},
    .idx = {1, 0},
    .typecnt = 2,
    .utoff = {3600, 7200},
    .isdst = {0, 1},
    .desig = {0, 4},
    .chars = "AAA\0BBB\0",
    .charcnt = 8,
    .footer = "CCC-3",
};

static enum tz_status parse(const uint8_t *b, size_t n)
{
    struct tz_zone *z = (struct tz_zone *)1;
    enum tz_status st = tz_parse(b, n, &z);
    if (st == TZ_OK)
        tz_free(z);
    else
        assert_null(z);
    return st;
}

static void test_built_files(void **state)
{
    (void)state;
    uint8_t buf[4096];
    struct tz_zone *z;
    struct tz_local l;
    for (uint8_t v = '2'; v <= '4'; v++) {
        struct tzif f = sample;
        f.version = v;
        size_t n = build(&f, buf);
        assert_int_equal(tz_parse(buf, n, &z), TZ_OK);
        assert_int_equal(tz_to_local(z, 999999999 * SEC, &l), TZ_OK);
        assert_string_equal(l.abbr, "AAA"); /* type 0 before the first transition */
        assert_int_equal(tz_to_local(z, 1000000000 * SEC, &l), TZ_OK);
        assert_string_equal(l.abbr, "BBB");
        assert_int_equal(l.utc_offset, 7200);
        assert_true(l.is_dst);
        assert_int_equal(tz_to_local(z, 1100000000 * SEC, &l), TZ_OK);
        assert_string_equal(l.abbr, "CCC"); /* the footer from the last transition on */
        assert_int_equal(l.utc_offset, 10800);
        tz_free(z);
    }
    /* Version 1: 32-bit times, no footer; the last type holds forever. */
    struct tzif f1 = sample;
    f1.version = 0;
    size_t n = build(&f1, buf);
    assert_int_equal(tz_parse(buf, n, &z), TZ_OK);
    assert_int_equal(tz_to_local(z, 2000000000 * SEC, &l), TZ_OK);
    assert_string_equal(l.abbr, "AAA");
    tz_free(z);
    buf[n] = 0;
    assert_int_equal(parse(buf, n + 1), TZ_ERR_INVALID); /* trailing byte */
    /* Version 2+ with an empty footer: the last transition's type holds forever. */
    struct tzif f = sample;
    f.footer = "";
    n = build(&f, buf);
    assert_int_equal(tz_parse(buf, n, &z), TZ_OK);
    assert_int_equal(tz_to_local(z, 2000000000 * SEC, &l), TZ_OK);
    assert_string_equal(l.abbr, "AAA");
    tz_free(z);
    /* No transitions and a DST footer: the rule holds for all time. */
    f = sample;
    f.timecnt = 0;
    f.footer = "EST5EDT,M3.2.0,M11.1.0";
    n = build(&f, buf);
    assert_int_equal(tz_parse(buf, n, &z), TZ_OK);
    check_local(z, "1950-07-01T12:00:00Z", -14400, true, "EDT", 8, 0);
    tz_free(z);
    /* Transition times at the ends of int64 (zic's "big bang" is -2^59). */
    f = sample;
    f.times[0] = INT64_MIN;
    f.times[1] = INT64_MAX;
    n = build(&f, buf);
    assert_int_equal(tz_parse(buf, n, &z), TZ_OK);
    assert_int_equal(tz_to_local(z, 0, &l), TZ_OK);
    assert_string_equal(l.abbr, "BBB");
    tally_time t;
    assert_false(tz_next_transition(z, 0, &t));
    struct tz_civil c = civil(2026, 1, 1, 0, 0, 0);
    assert_int_equal(tz_from_local(z, &c, TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD, &t, NULL), TZ_OK);
    tz_free(z);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t buf[8192], bad[8192];
    size_t n = build(&sample, buf);
    assert_int_equal(parse(buf, n), TZ_OK);

    /* Every truncation fails cleanly. */
    for (size_t len = 0; len < n; len++) {
        enum tz_status st = parse(buf, len);
        if (st == TZ_OK)
            fail_msg("truncated to %zu bytes accepted", len);
    }
    assert_int_equal(parse(buf, 10), TZ_ERR_TRUNCATED);
    assert_int_equal(parse(buf, n - 1), TZ_ERR_TRUNCATED); /* footer without its '\n' */

#define MUTATE(stmt, want)                                                                         \
    do {                                                                                           \
        memcpy(bad, buf, n);                                                                       \
        size_t bn = n;                                                                             \
        stmt;                                                                                      \
        assert_int_equal(parse(bad, bn), want);                                                    \
    } while (0)

    MUTATE(bad[0] = 'X', TZ_ERR_MAGIC);
    MUTATE(bad[V2_HEADER_AT + 1] = 'X', TZ_ERR_MAGIC);
    MUTATE((bad[4] = '5', bad[V2_HEADER_AT + 4] = '5'), TZ_ERR_VERSION);
    MUTATE(bad[V2_HEADER_AT + 4] = '3', TZ_ERR_INVALID); /* headers disagree */
    /* Counts beyond the limits, in either header. */
    MUTATE(put32(bad + V2_HEADER_AT + 32, TZ_MAX_TRANSITIONS + 1), TZ_ERR_LIMIT);
    MUTATE(put32(bad + 32, 0xffffffffu), TZ_ERR_LIMIT);
    MUTATE(put32(bad + V2_HEADER_AT + 36, TZ_MAX_TYPES + 1), TZ_ERR_LIMIT);
    MUTATE(put32(bad + V2_HEADER_AT + 40, TZ_MAX_ABBR_BYTES + 1), TZ_ERR_LIMIT);
    MUTATE(put32(bad + V2_HEADER_AT + 20, 0x7fffffffu), TZ_ERR_LIMIT);
    MUTATE(put32(bad + V2_HEADER_AT + 28, 1), TZ_ERR_UNSUPPORTED); /* leap seconds */
    /* Counts within limits but more than the file holds. */
    MUTATE(put32(bad + V2_HEADER_AT + 32, 100), TZ_ERR_TRUNCATED);
    /* Semantic errors: zero types, unsorted times, a type index or designation out of
     * range, an offset beyond 26 hours, isdst not 0/1, isutcnt != typecnt. */
    size_t data = V2_HEADER_AT + 44, idx = data + 16, types = idx + 2;
    MUTATE(put32(bad + V2_HEADER_AT + 36, 0), TZ_ERR_INVALID);
    MUTATE(put32(bad + data + 12, 0), TZ_ERR_INVALID); /* times[1] < times[0] */
    MUTATE(bad[idx] = 2, TZ_ERR_INVALID);
    MUTATE(bad[types + 5] = 8, TZ_ERR_INVALID);
    MUTATE(put32(bad + types, 100000), TZ_ERR_INVALID);
    MUTATE(put32(bad + types, (uint32_t)INT32_MIN), TZ_ERR_INVALID);
    MUTATE(bad[types + 4] = 2, TZ_ERR_INVALID);
    MUTATE(put32(bad + V2_HEADER_AT + 20, 1), TZ_ERR_INVALID);
    /* A designation must end inside the pool. */
    MUTATE(bad[types + 6 + 6 + 7] = 'X', TZ_ERR_INVALID);
    /* Footers. */
    size_t foot = n - strlen(sample.footer) - 2;
    MUTATE(bad[foot] = 'X', TZ_ERR_FOOTER);
    MUTATE(bad[foot + 1] = '9', TZ_ERR_FOOTER);
    MUTATE(bad[bn++] = 'X', TZ_ERR_FOOTER); /* bytes after the footer */
    MUTATE(bn = foot, TZ_ERR_TRUNCATED);    /* no footer at all */
    MUTATE((memset(bad + foot + 1, 'A', TZ_MAX_FOOTER + 10), bn = foot + 1 + TZ_MAX_FOOTER + 10),
           TZ_ERR_LIMIT);
    MUTATE((memset(bad + foot + 1, 'A', TZ_MAX_FOOTER + 1), bad[foot + 2 + TZ_MAX_FOOTER] = '\n',
            bn = foot + 3 + TZ_MAX_FOOTER),
           TZ_ERR_LIMIT);
#undef MUTATE
    /* Oversized input, and NULL arguments. */
    static uint8_t big[TZ_MAX_INPUT_BYTES + 1];
    memcpy(big, buf, n);
    assert_int_equal(parse(big, sizeof big), TZ_ERR_LIMIT);
    struct tz_zone *z;
    assert_int_equal(tz_parse(NULL, 0, &z), TZ_ERR_ARG);
    assert_int_equal(tz_parse(buf, n, NULL), TZ_ERR_ARG);
}

/* ---- fuzzing ------------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: a fixed seed makes every run the same. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Exercises a zone that parsed: nothing may crash or trip a sanitizer. */
static void poke(const struct tz_zone *z)
{
    struct tz_local l;
    tally_time t = 0, u;
    for (int i = 0; i < 4; i++) {
        t = (tally_time)(rng() % (UINT64_C(8000000000))) * SEC - INT64_C(2000000000) * SEC;
        if (tz_to_local(z, t, &l) == TZ_OK) {
            assert_non_null(l.abbr);
            (void)tz_from_local(z, &l.civil, TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD, &u, NULL);
        }
        (void)tz_next_transition(z, t, &u);
    }
    (void)tz_to_local(z, TIMESTAMP_MIN, &l);
    (void)tz_to_local(z, TIMESTAMP_MAX, &l);
    (void)tz_start_of_day(z, (struct civil_date){1, 1, 1}, &u);
    (void)tz_start_of_day(z, (struct civil_date){9999, 12, 31}, &u);
}

static void test_fuzz(void **state)
{
    (void)state;
    static const char *const seeds[] = {"America/New_York", "Pacific/Chatham",
                                        "Australia/Lord_Howe", "Europe/Dublin", "Asia/Kolkata"};
    static uint8_t orig[TZ_MAX_INPUT_BYTES], buf[TZ_MAX_INPUT_BYTES + 64];
    rng_state = UINT64_C(0x7a11ee5eed);
    size_t accepted = 0, total = 0;
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", ZONEINFO, seeds[s]);
        size_t n = read_file(path, orig, sizeof orig);
        for (int iter = 0; iter < 3000; iter++, total++) {
            size_t len = n;
            memcpy(buf, orig, n);
            int edits = 1 + (int)(rng() % 4);
            for (int e = 0; e < edits; e++) {
                uint64_t r = rng();
                size_t at = (size_t)(rng() % len);
                switch (r % 6) {
                case 0: /* flip a bit */ buf[at] ^= (uint8_t)(1u << (r >> 8) % 8); break;
                case 1: /* random byte */ buf[at] = (uint8_t)(r >> 8); break;
                case 2: /* truncate */ len = at + 1; break;
                case 3: /* hit a header count (either header) */
                    at = (r >> 8) % 2 ? 20 + 4 * ((r >> 16) % 6) : len / 2;
                    put32(buf + at, (uint32_t)(r >> 32) % 4 ? (uint32_t)(r >> 40) % 300
                                                            : (uint32_t)(r >> 32));
                    break;
                case 4: /* scribble in the footer */
                    buf[len - 1 - (r >> 8) % (len < 40 ? len : 40)] =
                        "M.,/<>+-:0123J\n"[(r >> 16) % 15];
                    break;
                default: /* append bytes */
                    if (len < sizeof buf - 8)
                        for (int k = 0; k < 8; k++)
                            buf[len++] = (uint8_t)(rng());
                    break;
                }
                if (len == 0)
                    len = 1;
            }
            struct tz_zone *z;
            if (tz_parse(buf, len, &z) == TZ_OK) {
                accepted++;
                poke(z);
                tz_free(z);
            }
        }
    }
    /* Random TZ strings from a TZ-ish alphabet. */
    for (int iter = 0; iter < 20000; iter++, total++) {
        char s[48];
        size_t len = rng() % sizeof s;
        for (size_t i = 0; i < len; i++)
            s[i] = "ESTDM.,/<>+-:0123456789J5"[rng() % 25];
        if (rng() % 2 && len > 12)
            memcpy(s, "EST5EDT,M3.", 11);
        struct tz_zone *z;
        if (tz_from_posix(s, len, &z) == TZ_OK) {
            accepted++;
            poke(z);
            tz_free(z);
        }
    }
    print_message("fuzz: %zu inputs, %zu accepted\n", total, accepted);
}

/* Random but well-formed zones: transitions seconds apart, offsets up to 26 hours, folds
 * inside folds. Whatever the data, every instant's local time must map back to a range of
 * instants that contains it, and the ends of that range must show the same local time. */
static void test_fuzz_structured(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t n;
        int32_t off[2];
    } footers[] = {
        {"", 0, {0, 0}},
        {"EST5EDT,M3.2.0,M11.1.0", 2, {-18000, -14400}},
        {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 2, {45900, 49500}},
        {"XXX-24<YYY>+24,J1/0,J2/0", 2, {86400, -86400}},
        {"ZZZ24", 1, {-86400, 0}},
        {"EST5EDT4,0/0,J365/25", 2, {-18000, -14400}},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", 2, {3600, 0}},
    };
    uint8_t buf[4096];
    rng_state = UINT64_C(0x5eed5);
    size_t checked = 0, kinds[3] = {0};
    for (int iter = 0; iter < 3000; iter++) {
        struct tzif f = {0};
        f.version = (uint8_t) "234"[rng() % 3];
        f.typecnt = 1 + rng() % 4;
        f.timecnt = rng() % 9;
        int64_t at = (int64_t)(rng() % 400000) - 200000;
        for (size_t i = 0; i < f.timecnt; i++) {
            at += 1 + (int64_t)(rng() % 4 ? rng() % 7200 : rng() % 400000);
            f.times[i] = at;
            f.idx[i] = (uint8_t)(rng() % f.typecnt);
        }
        for (size_t i = 0; i < f.typecnt; i++) {
            f.utoff[i] = (int32_t)(rng() % (2 * TZ_MAX_OFFSET_SECONDS + 1)) - TZ_MAX_OFFSET_SECONDS;
            if (rng() % 2)
                f.utoff[i] = f.utoff[i] / 1800 * 1800;
            f.isdst[i] = (uint8_t)(rng() % 2);
            f.desig[i] = (uint8_t)(4 * (rng() % 2));
        }
        f.chars = "AAA\0BBB\0";
        f.charcnt = 8;
        size_t fi = rng() % (sizeof footers / sizeof footers[0]);
        f.footer = footers[fi].text;
        /* Every offset the zone can show, for the brute-force oracle below. */
        int32_t offs[6];
        size_t noffs = 0;
        for (size_t i = 0; i < f.typecnt; i++)
            offs[noffs++] = f.utoff[i];
        for (size_t i = 0; i < footers[fi].n; i++)
            offs[noffs++] = footers[fi].off[i];
        size_t n = build(&f, buf);
        struct tz_zone *z;
        assert_int_equal(tz_parse(buf, n, &z), TZ_OK);
        for (int k = 0; k < 40; k++) {
            tally_time t = ((int64_t)(rng() % 1200000) - 600000) * SEC;
            if (k >= 20 && f.timecnt > 0) /* right at and around transitions */
                t = (f.times[rng() % f.timecnt] + (int64_t)(rng() % 5) - 2) * SEC;
            struct tz_local l, le, ll;
            tally_time e, la;
            enum tz_match m;
            assert_int_equal(tz_to_local(z, t, &l), TZ_OK);
            assert_int_equal(
                tz_from_local(z, &l.civil, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &e, &m), TZ_OK);
            assert_int_equal(
                tz_from_local(z, &l.civil, TZ_FOLD_LATER, TZ_GAP_NEXT_VALID, &la, NULL), TZ_OK);
            assert_int_not_equal(m, TZ_MATCH_GAP);
            assert_true(e <= t && t <= la);
            assert_true(m != TZ_MATCH_UNIQUE || e == la);
            assert_int_equal(tz_to_local(z, e, &le), TZ_OK);
            assert_int_equal(tz_to_local(z, la, &ll), TZ_OK);
            assert_memory_equal(&le.civil, &l.civil, sizeof l.civil);
            assert_memory_equal(&ll.civil, &l.civil, sizeof l.civil);
            /* A random local time against the oracle: an instant t shows local time L
             * exactly when t = L - o for an offset o that the zone shows at t. */
            struct tz_civil c = l.civil;
            c.hour = (int32_t)(rng() % 24);
            c.minute = (int32_t)(rng() % 60);
            int64_t L = timestamp_days_from_civil(c.date) * 86400 + c.hour * 3600 + c.minute * 60 +
                        c.second;
            int64_t lo = INT64_MAX, hi = INT64_MIN;
            size_t count = 0;
            for (size_t i = 0; i < noffs; i++) {
                bool dup = false;
                for (size_t j = 0; j < i; j++)
                    dup = dup || offs[j] == offs[i];
                assert_int_equal(tz_to_local(z, (L - offs[i]) * SEC + c.usec, &le), TZ_OK);
                if (!dup && le.utc_offset == offs[i]) {
                    count++;
                    lo = L - offs[i] < lo ? L - offs[i] : lo;
                    hi = L - offs[i] > hi ? L - offs[i] : hi;
                }
            }
            assert_int_equal(tz_from_local(z, &c, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &e, &m),
                             TZ_OK);
            assert_int_equal(tz_from_local(z, &c, TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD, &la, NULL),
                             TZ_OK);
            kinds[m]++;
            if (count == 0) {
                assert_int_equal(m, TZ_MATCH_GAP);
            } else {
                assert_int_equal(m, count == 1 ? TZ_MATCH_UNIQUE : TZ_MATCH_FOLD);
                assert_int_equal(e, lo * SEC + c.usec);
                assert_int_equal(la, hi * SEC + c.usec);
            }
            checked++;
        }
        tz_free(z);
    }
    print_message("structured fuzz: %zu instants; random local times: %zu unique, %zu folds, "
                  "%zu gaps\n",
                  checked, kinds[TZ_MATCH_UNIQUE], kinds[TZ_MATCH_FOLD], kinds[TZ_MATCH_GAP]);
}

/* ---- tzdb --------------------------------------------------------------------------- */

static void test_tzdb_names(void **state)
{
    (void)state;
    static const char *const good[] = {"UTC",
                                       "America/New_York",
                                       "Etc/GMT+5",
                                       "Etc/GMT-14",
                                       "America/Argentina/ComodRivadavia",
                                       "America/Port-au-Prince"};
    static const char *const bad[] = {
        "",     "/etc/passwd", "../etc/passwd", "America/../UTC", "America//New_York", "America/",
        "UTC.", "zone.tab",    "a b",           "UTC\n",          "America\\New_York"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(tzdb_name_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(tzdb_name_valid(bad[i], strlen(bad[i])));
        const struct tz_zone *z = (const struct tz_zone *)1;
        assert_int_equal(tzdb_lookup(db, bad[i], strlen(bad[i]), &z), TZDB_ERR_NAME);
        assert_null(z);
    }
    char longname[TZDB_NAME_MAX + 2];
    memset(longname, 'A', sizeof longname);
    assert_true(tzdb_name_valid(longname, TZDB_NAME_MAX));
    assert_false(tzdb_name_valid(longname, TZDB_NAME_MAX + 1));
    /* Embedded NUL: the length counts, and NUL is not a name character. */
    assert_false(tzdb_name_valid("UTC\0x", 5));
    /* Not NUL-terminated: only len bytes are read. */
    assert_non_null(tzdb_get(db, "UTCxyz", 3));

    /* Files of the database that are not zones a customer may name: looked up still (a name
     * stored before they were refused loads), never taken from a request. */
    static const char *const not_zones[] = {
        "localtime", "posixrules", "Factory", "posix/UTC", "right/Europe/Paris", "posix", "right"};
    for (size_t i = 0; i < sizeof not_zones / sizeof not_zones[0]; i++)
        assert_false(tzdb_name_is_zone(not_zones[i], strlen(not_zones[i])));
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(tzdb_name_is_zone(good[i], strlen(good[i])));
    assert_true(tzdb_name_is_zone("posixtime/X", 11)); /* a prefix of a component is not one */
    assert_false(tzdb_name_is_zone("../UTC", 6));

    const struct tz_zone *z;
    assert_int_equal(tzdb_lookup(db, "Mars/Olympus_Mons", 17, &z), TZDB_ERR_NOTFOUND);
    assert_int_equal(tzdb_lookup(db, "America", 7, &z), TZDB_ERR_NOTFOUND); /* directory */
    assert_int_equal(tzdb_lookup(db, "right/UTC", 9, &z), TZDB_ERR_PARSE);  /* leap seconds */
    assert_null(tzdb_get(db, "UTC/x", 5));
    assert_ptr_equal(tzdb_get(db, "UTC", 3), tzdb_get(db, "UTC", 3));
    assert_ptr_not_equal(tzdb_get(db, "UTC", 3), tzdb_get(db, "Europe/Paris", 12));
    assert_null(tzdb_get(NULL, "UTC", 3));
    assert_null(tzdb_get(db, NULL, 3));
}

static void test_tzdb_root(void **state)
{
    (void)state;
    char dir[] = "/tmp/tally-tzdb-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/Bad", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("not a zone", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/Test", dir);
    uint8_t buf[4096];
    size_t n = build(&sample, buf);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    snprintf(path, sizeof path, "%s/Big", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i <= TZ_MAX_INPUT_BYTES; i += n)
        assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);

    struct tzdb *mine = tzdb_open(dir);
    assert_non_null(mine);
    const struct tz_zone *z;
    assert_int_equal(tzdb_lookup(mine, "Bad", 3, &z), TZDB_ERR_PARSE);
    assert_int_equal(tzdb_lookup(mine, "Big", 3, &z), TZDB_ERR_IO);
    assert_int_equal(tzdb_lookup(mine, "UTC", 3, &z), TZDB_ERR_NOTFOUND);
    assert_int_equal(tzdb_lookup(mine, "Test", 4, &z), TZDB_OK);
    struct tz_local l;
    assert_int_equal(tz_to_local(z, 1000000000 * SEC, &l), TZ_OK);
    assert_string_equal(l.abbr, "BBB");
    tzdb_close(mine);

    char longroot[TZDB_ROOT_MAX + 2];
    memset(longroot, 'a', sizeof longroot - 1);
    longroot[sizeof longroot - 1] = '\0';
    assert_null(tzdb_open(longroot));
    tzdb_close(NULL);

    snprintf(path, sizeof path, "%s/Bad", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/Big", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/Test", dir);
    unlink(path);
    rmdir(dir);
}

#define THREADS 4
static const char *const thread_zones[] = {
    "America/New_York",    "Europe/Paris",  "Asia/Kolkata",        "Pacific/Chatham",
    "Australia/Lord_Howe", "UTC",           "Asia/Tokyo",          "Africa/Cairo",
    "America/Sao_Paulo",   "Europe/London", "America/Los_Angeles", "Asia/Kathmandu",
};
#define THREAD_ZONES (sizeof thread_zones / sizeof thread_zones[0])

struct thread_arg {
    struct tzdb *db;
    const struct tz_zone *got[THREAD_ZONES];
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < THREAD_ZONES; i++) {
            const struct tz_zone *z = tzdb_get(a->db, thread_zones[i], strlen(thread_zones[i]));
            struct tz_local l;
            if (z == NULL || tz_to_local(z, (tally_time)round * 86400 * 30 * SEC, &l) != TZ_OK)
                return NULL;
            a->got[i] = z;
        }
    return a;
}

static void test_tzdb_threads(void **state)
{
    (void)state;
    struct tzdb *shared = tzdb_open(NULL);
    assert_non_null(shared);
    pthread_t th[THREADS];
    struct thread_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].db = shared;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_ptr_equal(ret, &args[i]);
    }
    /* Every thread got the same zone object for a name: loaded once, shared. */
    for (size_t z = 0; z < THREAD_ZONES; z++)
        for (int i = 1; i < THREADS; i++)
            assert_ptr_equal(args[i].got[z], args[0].got[z]);
    tzdb_close(shared);
}

/* ---- glibc comparison --------------------------------------------------------------- */

/* Zones with something to prove: half and quarter hours, negative DST, southern DST,
 * midnight transitions, date-line jumps, double summer time, rule times past 24h. */
static const char *const curated[] = {
    "America/New_York",
    "Europe/Paris",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Europe/Dublin",
    "Europe/London",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "America/St_Johns",
    "Asia/Tehran",
    "Africa/Casablanca",
    "Asia/Jerusalem",
    "America/Santiago",
    "America/Godthab",
    "Antarctica/Troll",
    "America/Havana",
    "Europe/Moscow",
    "Asia/Gaza",
    "America/Caracas",
    "Pacific/Norfolk",
    "America/Mexico_City",
    "Africa/Cairo",
    "Asia/Almaty",
    "America/Asuncion",
    "Europe/Lisbon",
    "Australia/Eucla",
    "UTC",
    "Etc/GMT+12",
};

#define YEAR_1900 INT64_C(-2208988800)
#define YEAR_2100 INT64_C(4102444800)
#define ABBR_CAP 16

struct answer {
    int64_t gmtoff;
    int32_t isdst, year, mon, mday, hour, min, sec;
    char abbr[ABBR_CAP];
};

/* The child: glibc's view of each instant, written to fd. */
static void glibc_child(const char *name, const int64_t *secs, size_t n, int fd)
{
    char tz[128];
    snprintf(tz, sizeof tz, ":%s", name);
    setenv("TZ", tz, 1);
    tzset();
    static struct answer out[1024];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        time_t t = (time_t)secs[i];
        struct tm tm;
        struct answer *a = &out[k++];
        memset(a, 0, sizeof *a);
        if (localtime_r(&t, &tm) == NULL) {
            a->isdst = -99;
        } else {
            a->gmtoff = tm.tm_gmtoff;
            a->isdst = tm.tm_isdst;
            a->year = tm.tm_year + 1900;
            a->mon = tm.tm_mon + 1;
            a->mday = tm.tm_mday;
            a->hour = tm.tm_hour;
            a->min = tm.tm_min;
            a->sec = tm.tm_sec;
            snprintf(a->abbr, sizeof a->abbr, "%s", tm.tm_zone ? tm.tm_zone : "");
        }
        if (k == sizeof out / sizeof out[0] || i + 1 == n) {
            const char *p = (const char *)out;
            size_t left = k * sizeof *out;
            while (left > 0) {
                ssize_t w = write(fd, p, left);
                if (w <= 0)
                    _exit(2);
                p += w;
                left -= (size_t)w;
            }
            k = 0;
        }
    }
    _exit(0);
}

struct compare_totals {
    size_t zones, instants, mismatches, roundtrip_failures;
};

static void compare_zone(const char *name, size_t randoms, struct compare_totals *tot)
{
    const struct tz_zone *z = tzdb_get(db, name, strlen(name));
    if (z == NULL)
        fail_msg("zone %s did not load", name);

    /* Instants: every transition in 1900..2100 and its neighbours, plus random ones. */
    size_t cap = randoms + 4096, n = 0;
    int64_t *secs = malloc(cap * sizeof *secs);
    assert_non_null(secs);
    tally_time t = YEAR_1900 * SEC, next;
    while (tz_next_transition(z, t, &next) && next < YEAR_2100 * SEC && n + 3 <= cap - randoms) {
        int64_t s = next / SEC;
        secs[n++] = s - 1;
        secs[n++] = s;
        secs[n++] = s + 1;
        t = next;
    }
    for (size_t i = 0; i < randoms; i++)
        secs[n++] = YEAR_1900 + (int64_t)(rng() % (uint64_t)(YEAR_2100 - YEAR_1900));

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        glibc_child(name, secs, n, fds[1]);
    }
    close(fds[1]);

    int printed = 0;
    for (size_t i = 0; i < n; i++) {
        struct answer g;
        size_t got = 0;
        while (got < sizeof g) {
            ssize_t r = read(fds[0], (char *)&g + got, sizeof g - got);
            if (r <= 0)
                fail_msg("%s: child stopped after %zu answers", name, i);
            got += (size_t)r;
        }
        tally_time ti = secs[i] * SEC;
        struct tz_local l;
        assert_int_equal(tz_to_local(z, ti, &l), TZ_OK);
        if (g.gmtoff != l.utc_offset || (g.isdst > 0) != l.is_dst || strcmp(g.abbr, l.abbr) != 0 ||
            g.year != l.civil.date.year || g.mon != l.civil.date.month ||
            g.mday != l.civil.date.day || g.hour != l.civil.hour || g.min != l.civil.minute ||
            g.sec != l.civil.second) {
            tot->mismatches++;
            if (printed++ < 5)
                print_message("%s @%lld: glibc %lld %d %s, tally %d %d %s\n", name,
                              (long long)secs[i], (long long)g.gmtoff, g.isdst, g.abbr,
                              l.utc_offset, l.is_dst, l.abbr);
        }
        /* The local time maps back to this instant, as its earlier or later reading. */
        tally_time e, la;
        enum tz_match m;
        if (tz_from_local(z, &l.civil, TZ_FOLD_EARLIER, TZ_GAP_SHIFT_FORWARD, &e, &m) != TZ_OK ||
            tz_from_local(z, &l.civil, TZ_FOLD_LATER, TZ_GAP_SHIFT_FORWARD, &la, NULL) != TZ_OK ||
            m == TZ_MATCH_GAP || (e != ti && la != ti) || (m == TZ_MATCH_UNIQUE && e != la)) {
            tot->roundtrip_failures++;
            if (printed++ < 5)
                print_message("%s @%lld: round trip gave %lld / %lld (match %d)\n", name,
                              (long long)secs[i], (long long)(e / SEC), (long long)(la / SEC), m);
        }
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tot->zones++;
    tot->instants += n;
    free(secs);
}

/* Every TZif file under the zoneinfo root, except the posix/ and right/ copies. */
#define MAX_ALL_ZONES 2000
static char *all_zones[MAX_ALL_ZONES];
static size_t all_zone_count;

static int collect(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    const char *rel = path + strlen(ZONEINFO) + 1;
    if (type == FTW_D && (strcmp(rel, "posix") == 0 || strcmp(rel, "right") == 0))
        return FTW_SKIP_SUBTREE;
    /* Symbolic links too (US/Eastern): tzdb and glibc follow them. */
    if ((type != FTW_F && type != FTW_SL) || all_zone_count == MAX_ALL_ZONES ||
        !tzdb_name_valid(rel, strlen(rel)))
        return FTW_CONTINUE;
    uint8_t magic[4];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return FTW_CONTINUE;
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "TZif", 4) == 0)
        all_zones[all_zone_count++] = strdup(rel);
    return FTW_CONTINUE;
}

static void test_against_glibc(void **state)
{
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rng_state = UINT64_C(0x91bc);
    struct compare_totals tot = {0};
    for (size_t i = 0; i < sizeof curated / sizeof curated[0]; i++)
        compare_zone(curated[i], 10000, &tot);
    assert_int_equal(nftw(ZONEINFO, collect, 16, FTW_PHYS | FTW_ACTIONRETVAL), 0);
    assert_true(all_zone_count > 300);
    for (size_t i = 0; i < all_zone_count; i++) {
        compare_zone(all_zones[i], 3000, &tot);
        free(all_zones[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    print_message("glibc comparison: %zu zone runs, %zu instants, %zu mismatches, "
                  "%zu round-trip failures, %ld ms\n",
                  tot.zones, tot.instants, tot.mismatches, tot.roundtrip_failures, ms);
    assert_int_equal(tot.mismatches, 0);
    assert_int_equal(tot.roundtrip_failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_paris),
        cmocka_unit_test(test_kolkata),
        cmocka_unit_test(test_chatham),
        cmocka_unit_test(test_lord_howe),
        cmocka_unit_test(test_odd_days),
        cmocka_unit_test(test_posix_strings),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_built_files),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_fuzz_structured),
        cmocka_unit_test(test_tzdb_names),
        cmocka_unit_test(test_tzdb_root),
        cmocka_unit_test(test_tzdb_threads),
        cmocka_unit_test(test_against_glibc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
