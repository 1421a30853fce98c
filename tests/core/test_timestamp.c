/*
 * core/timestamp: calendar arithmetic checked against glibc (timegm/gmtime_r) over every
 * day of years 1..9999, and ISO 8601 parsing/formatting by example and by round trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "core/timestamp.h"
#include "splitmix.h"

static void every_day_matches_glibc(void **state)
{
    (void)state;
    struct civil_date first = {1, 1, 1};
    int64_t day = timestamp_days_from_civil(first);
    assert_int_equal(day * 86400, TIMESTAMP_MIN / TIMESTAMP_USEC_PER_SEC);
    int64_t checked = 0;
    for (int32_t y = 1; y <= 9999; y++) {
        for (int32_t m = 1; m <= 12; m++) {
            int32_t dim = timestamp_days_in_month(y, m);
            for (int32_t d = 1; d <= dim; d++, day++, checked++) {
                struct civil_date c = {y, m, d};
                assert_int_equal(timestamp_days_from_civil(c), day);
                struct civil_date back = timestamp_civil_from_days(day);
                assert_true(back.year == y && back.month == m && back.day == d);
                /* glibc agrees on a sample (every 97th day keeps the test fast). */
                if (checked % 97 == 0) {
                    time_t secs = (time_t)(day * 86400);
                    struct tm tm;
                    assert_non_null(gmtime_r(&secs, &tm));
                    assert_int_equal(tm.tm_year + 1900, y);
                    assert_int_equal(tm.tm_mon + 1, m);
                    assert_int_equal(tm.tm_mday, d);
                    assert_int_equal((tm.tm_wday + 6) % 7, timestamp_weekday_from_days(day));
                }
            }
        }
    }
    assert_int_equal(day * 86400 * TIMESTAMP_USEC_PER_SEC - 1, TIMESTAMP_MAX);
    assert_int_equal(checked, 3652059); /* days in 1..9999 */
}

static void leap_years(void **state)
{
    (void)state;
    assert_true(timestamp_is_leap_year(2024));
    assert_true(timestamp_is_leap_year(2000));
    assert_false(timestamp_is_leap_year(1900));
    assert_false(timestamp_is_leap_year(2100));
    assert_int_equal(timestamp_days_in_month(2024, 2), 29);
    assert_int_equal(timestamp_days_in_month(2100, 2), 28);
    assert_int_equal(timestamp_days_in_month(2026, 4), 30);
}

static tally_time parse(const char *s)
{
    tally_time t = 42;
    assert_true(timestamp_parse_iso8601(s, strlen(s), &t));
    return t;
}

static void parse_refuses(const char *s)
{
    tally_time t = 42;
    assert_false(timestamp_parse_iso8601(s, strlen(s), &t));
    assert_int_equal(t, 42); /* untouched */
}

static void parses_iso8601(void **state)
{
    (void)state;
    assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse("2026-01-01T00:00:00Z"), INT64_C(1767225600) * 1000000);
    assert_int_equal(parse("2026-01-01"), INT64_C(1767225600) * 1000000);
    assert_int_equal(parse("2026-01-01T01:00:00+01:00"), INT64_C(1767225600) * 1000000);
    assert_int_equal(parse("2025-12-31T23:00:00-01:00"), INT64_C(1767225600) * 1000000);
    assert_int_equal(parse("2026-01-01T00:00:00.5Z"), INT64_C(1767225600) * 1000000 + 500000);
    assert_int_equal(parse("2026-01-01t00:00:00.000123z"), INT64_C(1767225600) * 1000000 + 123);
    assert_int_equal(parse("1969-12-31T23:59:59.999999Z"), -1);
    assert_int_equal(parse("0001-01-01T00:00:00Z"), TIMESTAMP_MIN);
    assert_int_equal(parse("9999-12-31T23:59:59.999999Z"), TIMESTAMP_MAX);
    assert_int_equal(parse("2024-02-29T12:00:00Z"), INT64_C(1709208000) * 1000000);
    const char *bad[] = {"",
                         "2026",
                         "2026-1-01",
                         "2026-02-30",
                         "2025-02-29",
                         "2026-13-01",
                         "2026-00-10",
                         "2026-01-01T24:00:00Z",
                         "2026-01-01T00:60:00Z",
                         "2026-01-01T00:00:60Z",
                         "2026-01-01T00:00:00",
                         "2026-01-01T00:00Z",
                         "2026-01-01T00:00:00.Z",
                         "2026-01-01T00:00:00.1234567Z",
                         "2026-01-01T00:00:00+0100",
                         "2026-01-01T00:00:00+24:00",
                         "2026-01-01T00:00:00Zjunk",
                         " 2026-01-01",
                         "0000-01-01",
                         "0001-01-01T00:00:00+00:01",
                         "9999-12-31T23:59:59-00:01",
                         "abcd-ef-gh"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_refuses(bad[i]);
    /* Not NUL-terminated: the length bounds the parse. */
    tally_time t;
    assert_true(timestamp_parse_iso8601("2026-01-01XXXX", 10, &t));
}

static void formats_as_lago_does(void **state)
{
    (void)state;
    char out[TIMESTAMP_TEXT_MAX];
    assert_int_equal(timestamp_format(0, false, out), 20);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    timestamp_format(parse("2026-03-08T07:30:05.123456Z"), true, out);
    assert_string_equal(out, "2026-03-08T07:30:05.123Z");
    timestamp_format(-1, true, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    assert_int_equal(timestamp_floor_second(-1), -TIMESTAMP_USEC_PER_SEC);
    assert_int_equal(timestamp_floor_second(-TIMESTAMP_USEC_PER_SEC), -TIMESTAMP_USEC_PER_SEC);
    timestamp_format(TIMESTAMP_MIN, false, out);
    assert_string_equal(out, "0001-01-01T00:00:00Z");
    timestamp_format(TIMESTAMP_MAX, true, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    /* a test clock's now: every microsecond it keeps */
    assert_int_equal(timestamp_format_micros(parse("2026-03-08T07:30:05.0009Z"), out), 27);
    assert_string_equal(out, "2026-03-08T07:30:05.000900Z");
    timestamp_format_micros(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
    timestamp_format_micros(TIMESTAMP_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999999Z");
}

static void format_parse_round_trip(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tally_time t = TIMESTAMP_MIN + (tally_time)(x % (uint64_t)(TIMESTAMP_MAX - TIMESTAMP_MIN));
        /* what a resource's time shows, read back, is that time without its fraction */
        char out[TIMESTAMP_TEXT_MAX];
        size_t n = timestamp_format(t, false, out);
        tally_time back;
        assert_true(timestamp_parse_iso8601(out, n, &back));
        assert_int_equal(back, timestamp_floor_second(t));
        assert_true(t - back >= 0 && t - back < TIMESTAMP_USEC_PER_SEC);
        assert_int_equal(timestamp_floor_second(back), back);
        /* a test clock's now, read back, is that very instant */
        n = timestamp_format_micros(t, out);
        assert_true(timestamp_parse_iso8601(out, n, &back));
        assert_int_equal(back, t);
    }
}

/* What timestamp_parse_ruby_iso8601 makes of `s`, as text; "MIN"/"MAX" past the range. The
 * organization's clock reads 2026-02-01T12:00:00Z (a Sunday, ISO week 2026-W05). Expected
 * values were checked against Ruby 3.1's DateTime.iso8601. */
static const char *ruby(const char *s)
{
    static char text[TIMESTAMP_TEXT_MAX];
    tally_time today = (INT64_C(1769904000) + 12 * 3600) * 1000000, t = 42;
    if (!timestamp_parse_ruby_iso8601(s, strlen(s), today, &t)) {
        assert_int_equal(t, 42); /* untouched */
        return "refused";
    }
    if (t == TIMESTAMP_MIN - 1)
        return "MIN";
    if (t == TIMESTAMP_MAX + 1)
        return "MAX";
    assert_true(t >= TIMESTAMP_MIN && t <= TIMESTAMP_MAX);
    timestamp_format_micros(t, text);
    return text;
}

static void parses_as_ruby_datetime_iso8601(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        /* extended and basic calendar dates, with and without a time */
        {"2026-05-01", "2026-05-01T00:00:00.000000Z"},
        {"20260501", "2026-05-01T00:00:00.000000Z"},
        {"2026-05-01T10:00:00Z", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01T10:00", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01T10:00Z", "2026-05-01T10:00:00.000000Z"},
        {"20260501T100000Z", "2026-05-01T10:00:00.000000Z"},
        {"20260501T1000", "2026-05-01T10:00:00.000000Z"},
        {"202605011000", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01t10:00:00z", "2026-05-01T10:00:00.000000Z"},
        /* week and ordinal dates */
        {"2026-W18-5", "2026-05-01T00:00:00.000000Z"},
        {"2026W185", "2026-05-01T00:00:00.000000Z"},
        {"2026-w18-5T10:00", "2026-05-01T10:00:00.000000Z"},
        {"2026-W53-7", "2027-01-03T00:00:00.000000Z"},
        {"2020-W53-7", "2021-01-03T00:00:00.000000Z"},
        {"2026-121", "2026-05-01T00:00:00.000000Z"},
        {"2026121", "2026-05-01T00:00:00.000000Z"},
        {"2024-366", "2024-12-31T00:00:00.000000Z"},
        /* fractions of any length, cut to the microsecond; a comma as well as a point */
        {"2026-05-01T10:00:00.5Z", "2026-05-01T10:00:00.500000Z"},
        {"2026-05-01T10:00:00,123456789Z", "2026-05-01T10:00:00.123456Z"},
        {"20260501T100000.0000009", "2026-05-01T10:00:00.000000Z"},
        /* offsets: hh, hhmm, hh:mm; past a day ignored; minutes not checked */
        {"2026-05-01T12:00:00+02", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01T12:00:00+0200", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01T12:00+02:00", "2026-05-01T10:00:00.000000Z"},
        {"20260501T0800-0200", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01T10:00-24", "2026-05-02T10:00:00.000000Z"},
        {"2026-05-01T10:00+25", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01T10:00+23:99", "2026-05-01T10:00:00.000000Z"},
        {"2026-05-01T10:00+01:99", "2026-05-01T07:21:00.000000Z"},
        /* white space around (Ruby's \s), signs, two- and three-digit years */
        {" \t2026-05-01\n\v\f\r", "2026-05-01T00:00:00.000000Z"},
        {"+2026-05-01", "2026-05-01T00:00:00.000000Z"},
        {"26-05-01", "2026-05-01T00:00:00.000000Z"},
        {"69-05-01", "1969-05-01T00:00:00.000000Z"},
        {"+26-05-01", "2026-05-01T00:00:00.000000Z"},
        {"-05-01", "1995-01-01T00:00:00.000000Z"},
        {"126-05-01", "2026-05-01T00:00:00.000000Z"},
        {"260501", "2026-05-01T00:00:00.000000Z"},
        /* Ruby's odd readings: 24:00 is the next midnight, second 60 is 59 (past 60 only
         * where the date was completed), a year without its month is that year's first day */
        {"2026-05-01T24:00:00Z", "2026-05-02T00:00:00.000000Z"},
        {"2026-05-01T24:00:00.5Z", "2026-05-02T00:00:00.500000Z"},
        {"2026-05-01T10:00:60Z", "2026-05-01T10:00:59.000000Z"},
        {"2026-121T10:00:99", "2026-05-01T10:00:59.000000Z"},
        {"2026-", "2026-01-01T00:00:00.000000Z"},
        {"2026-T10:00", "2026-01-01T00:00:00.000000Z"},
        {"2026--15", "2026-01-15T00:00:00.000000Z"},
        {"2026-05", "2026-05-01T00:00:00.000000Z"},
        /* what the text leaves out comes from the clock's date */
        {"10:00", "2026-02-01T10:00:00.000000Z"},
        {"1000", "2026-02-01T10:00:00.000000Z"},
        {"2026", "2026-02-01T20:26:00.000000Z"},
        {"10:00:00+05:00", "2026-02-01T05:00:00.000000Z"},
        {"--05-01", "2026-05-01T00:00:00.000000Z"},
        {"--05", "2026-05-01T00:00:00.000000Z"},
        {"---15", "2026-02-15T00:00:00.000000Z"},
        {"-121", "2026-05-01T00:00:00.000000Z"},
        {"-w-5", "2026-01-30T00:00:00.000000Z"},
        {"-W185", "2026-05-01T00:00:00.000000Z"},
        /* Ruby's calendar is Julian before 1582-10-15; the instant is the date it shows */
        {"1582-10-04", "1582-10-04T00:00:00.000000Z"},
        {"1582-10-15", "1582-10-15T00:00:00.000000Z"},
        {"1582-288", "1582-10-25T00:00:00.000000Z"},
        {"0004-02-29", "0004-02-29T00:00:00.000000Z"},
        /* years of any length: before or after every instant kept */
        {"0000-01-01", "MIN"},
        {"-0004-02-29", "MIN"},
        {"0001-01-01T00:00:00+00:01", "MIN"},
        {"9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.999999Z"},
        {"9999-12-31T24:00:00Z", "MAX"},
        {"10000-01-01", "MAX"},
        {"+123456789012345678901234567890-05-01", "MAX"},
        {"-123456789012345678901234567890-05-01", "MIN"},
        /* refused: no form matches */
        {"", "refused"},
        {" ", "refused"},
        {"soon", "refused"},
        {"T10:00", "refused"},
        {"10:00Z", "refused"},
        {"2026/05/01", "refused"},
        {"2026-05-01 10:00:00Z", "refused"},
        {"2026-05-01T10:00:00 Z", "refused"},
        {"2026-05-01T10Z", "refused"},
        {"2026-05-01T1000", "refused"},
        {"2026-05-01T10:00:00.Z", "refused"},
        {"2026-05-01T10:00:00+02:00:00", "refused"},
        {"2026-05-01\xc2\xa0", "refused"},
        {"\xef\xbc\x92"
         "026-05-01",
         "refused"},
        /* refused: no such date or time */
        {"2026-02-29", "refused"},
        {"2100-02-29", "refused"},
        {"-0001-02-29", "refused"},
        {"2026-13-01", "refused"},
        {"2026-00-01", "refused"},
        {"2026-05-00", "refused"},
        {"1582-10-10", "refused"},
        {"2026-000", "refused"},
        {"2026-366", "refused"},
        {"2026-W00-1", "refused"},
        {"2027-W53-1", "refused"},
        {"2026-W18-0", "refused"},
        {"2026-W18-8", "refused"},
        {"2026-05-01T25:00", "refused"},
        {"2026-05-01T24:01", "refused"},
        {"2026-05-01T24:00:01", "refused"},
        {"2026-05-01T10:60", "refused"},
        {"2026-05-01T10:00:61Z", "refused"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = ruby(cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            fail_msg("\"%s\": %s, not %s", cases[i][0], got, cases[i][1]);
    }
    /* more than 128 bytes is refused before it is read, as Ruby's `limit:` */
    char text[160];
    memset(text, ' ', sizeof text);
    memcpy(text + 118, "2026-05-01", 10);
    tally_time today = 0, t;
    assert_true(timestamp_parse_ruby_iso8601(text, 128, today, &t));
    assert_false(timestamp_parse_ruby_iso8601(text, 129, today, &t));
    /* not NUL-terminated: the length bounds the parse */
    assert_true(timestamp_parse_ruby_iso8601("2026-05-01XXXX", 10, today, &t));
}

/* What timestamp_parse_rails_iso8601 makes of `s`, as text, or "refused". Expected values
 * follow ActiveSupport's TimeZone#iso8601 (Date._iso8601's parts into Time.new, in UTC), but
 * for an impossible day of the month, which Time.new rolls into the next month and Tally
 * refuses (a subscription's start on 2026-02-30 is a typing error, not March 2nd). */
static const char *rails(const char *s)
{
    static char text[TIMESTAMP_TEXT_MAX];
    tally_time t = 42;
    if (!timestamp_parse_rails_iso8601(s, strlen(s), &t)) {
        assert_int_equal(t, 42); /* untouched */
        return "refused";
    }
    timestamp_format_micros(t, text);
    return text;
}

static void parses_as_rails_time_zone_iso8601(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        /* what RFC 3339 takes */
        {"2026-06-01T10:00:00Z", "2026-06-01T10:00:00.000000Z"},
        {"2026-06-01T10:00:00.25+02:00", "2026-06-01T08:00:00.250000Z"},
        {"2026-06-01", "2026-06-01T00:00:00.000000Z"},
        {" 2026-06-01t10:00:00z ", "2026-06-01T10:00:00.000000Z"},
        /* and what it does not, that Lago takes: no offset is UTC's, no seconds, the basic
         * form, offsets without a colon or minutes, ordinal dates, long fractions (truncated) */
        {"2026-06-01T10:00:00", "2026-06-01T10:00:00.000000Z"},
        {"2026-06-01T10:00", "2026-06-01T10:00:00.000000Z"},
        {"20260601T100000Z", "2026-06-01T10:00:00.000000Z"},
        {"2026-06-01T10:00:00+0200", "2026-06-01T08:00:00.000000Z"},
        {"2026-06-01T10:00:00-02", "2026-06-01T12:00:00.000000Z"},
        {"2026-152T10:00:00Z", "2026-06-01T10:00:00.000000Z"},
        {"2024-366", "2024-12-31T00:00:00.000000Z"},
        {"2026-06-01T10:00:00.1234567Z", "2026-06-01T10:00:00.123456Z"},
        /* Time.new's carries */
        {"2026-06-01T23:59:60Z", "2026-06-02T00:00:00.000000Z"},
        {"2026-06-01T24:00:00Z", "2026-06-02T00:00:00.000000Z"},
        /* no whole date, or none that exists */
        {"2026-W22-1T10:00:00Z", "refused"},
        {"10:00:00", "refused"},
        {"2026-06", "refused"},
        {"2025-366", "refused"},
        {"2026-02-29T00:00:00Z", "refused"},
        {"2026-02-30", "refused"},
        {"2026-06-01T24:00:01Z", "refused"},
        {"2026-06-01T10:00:61Z", "refused"},
        {"2026-06-01T10:00:00+24:00", "refused"},
        {"0000-12-31T23:59:59Z", "refused"},
        {"10000-01-01", "refused"},
        {"tomorrow", "refused"},
        {"", "refused"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = rails(cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            fail_msg("\"%s\": %s, not %s", cases[i][0], got, cases[i][1]);
    }
}

/*
 * The body's date readers side by side (json_in_instant takes either): where both take a text
 * they read the same instant, and Lago's reader never answers one outside Tally's range. Texts
 * made of date characters, and valid ones with characters changed. A first differential run
 * found RFC 3339's space for the T taken by the strict reader alone (json_in_instant keeps it).
 */
static void rails_and_rfc3339_readers_agree(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789--::TtZz+.,Ww  0000111122229";
    static const char *const valid[] = {"2026-06-01T10:00:00Z", "20260601T100000+0200",
                                        "2026-152T10:00", "2024-02-29T23:59:60.123456789-02:30",
                                        "2026-12-31T24:00:00+14:00"};
    seed = rng = UINT64_C(20261128);
    char text[48];
    uint64_t both = 0;
    for (int it = 0; it < 200000; it++) {
        size_t len;
        if (below(2) == 0) {
            len = (size_t)below(sizeof text);
            for (size_t i = 0; i < len; i++)
                text[i] = alphabet[below(sizeof alphabet - 1)];
        } else {
            const char *v = valid[below(sizeof valid / sizeof valid[0])];
            len = strlen(v);
            memcpy(text, v, len);
            for (uint64_t k = below(4); k > 0; k--)
                text[below(len)] = alphabet[below(sizeof alphabet - 1)];
        }
        tally_time rails = 0, strict = 0;
        bool r = timestamp_parse_rails_iso8601(text, len, &rails);
        bool s = timestamp_parse_iso8601(text, len, &strict);
        if (r && (rails < TIMESTAMP_MIN || rails > TIMESTAMP_MAX))
            fail_msg("\"%.*s\": out of range", (int)len, text);
        if (r && s && rails != strict)
            fail_msg("\"%.*s\": %lld against %lld", (int)len, text, (long long)rails,
                     (long long)strict);
        both += r && s;
    }
    assert_true(both > 1000); /* the comparison happened */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_day_matches_glibc),
        cmocka_unit_test(leap_years),
        cmocka_unit_test(parses_iso8601),
        cmocka_unit_test(formats_as_lago_does),
        cmocka_unit_test(format_parse_round_trip),
        cmocka_unit_test(parses_as_ruby_datetime_iso8601),
        cmocka_unit_test(parses_as_rails_time_zone_iso8601),
        cmocka_unit_test(rails_and_rfc3339_readers_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
