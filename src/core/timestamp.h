/*
 * core/timestamp: instants in UTC and the proleptic Gregorian calendar.
 *
 * An instant is an int64 count of microseconds since 1970-01-01T00:00:00Z (tally_time).
 * Microseconds cover Lago's millisecond event timestamps with room to spare, and an int64
 * of them spans ±292,000 years, so arithmetic on instants never needs an overflow check
 * inside the supported range [TIMESTAMP_MIN, TIMESTAMP_MAX] (years 0001..9999).
 *
 * Pure functions only: no clock reads (the engine passes `now` in), no time zones (core/tz).
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_TIMESTAMP_H
#define TALLY_CORE_TIMESTAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t tally_time; /* microseconds since the Unix epoch, UTC */

#define TIMESTAMP_USEC_PER_SEC INT64_C(1000000)
#define TIMESTAMP_USEC_PER_DAY (INT64_C(86400) * TIMESTAMP_USEC_PER_SEC)
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z */
#define TIMESTAMP_MIN (INT64_C(-62135596800) * TIMESTAMP_USEC_PER_SEC)
#define TIMESTAMP_MAX (INT64_C(253402300800) * TIMESTAMP_USEC_PER_SEC - 1)

/* Longest text timestamp_format writes, with its NUL: "2026-01-01T00:00:00.000000Z". */
#define TIMESTAMP_TEXT_MAX 32

struct civil_date {
    int32_t year;  /* 1..9999 in the supported range */
    int32_t month; /* 1..12 */
    int32_t day;   /* 1..31 */
};

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. Any valid date. */
int64_t timestamp_days_from_civil(struct civil_date d);
struct civil_date timestamp_civil_from_days(int64_t days);

bool timestamp_is_leap_year(int32_t year);
int32_t timestamp_days_in_month(int32_t year, int32_t month);
/* 0 = Monday .. 6 = Sunday (ISO 8601). */
int32_t timestamp_weekday_from_days(int64_t days);

/*
 * Parses an ISO 8601 / RFC 3339 date-time: "2026-01-01T00:00:00Z", with an optional
 * fraction of up to 6 digits, and "Z" or "+hh:mm"/"-hh:mm". A bare date "2026-01-01" means
 * midnight UTC. `text` is borrowed for the call and need not be NUL-terminated.
 * Returns false (and leaves *out untouched) on anything else, including impossible dates.
 */
bool timestamp_parse_iso8601(const char *text, size_t len, tally_time *out);

/*
 * Reads `text` as Ruby's DateTime.iso8601 reads it (Ruby's date library, 3.2), which Lago's
 * event list reads its timestamp_from/_to with: every ISO 8601 form it takes, extended and
 * basic ("2026-05-01T10:00:00Z", "20260501T100000Z"), ordinal ("2026-121") and week dates
 * ("2026-W18-5"), minutes without seconds, fractions of any length, offsets "+02", "+0200",
 * "+02:00", white space around, letters in either case, years of any length (two digits:
 * 1969..2068), and what it makes of the odd ones ("24:00:00" is the next midnight, second 60
 * is 59, an offset past a day is ignored, "2026-" is 2026-01-01). A text that leaves out the
 * date, or part of it ("10:00", "--05-01", "-w-5"), takes it from `today`'s UTC date, as Ruby
 * takes it from the day's. Returns false where Ruby raises: no form matches, no such date or
 * time (Julian before 1582-10-15, as Ruby's calendar is), more than 128 bytes. *out: the
 * instant, truncated to the microsecond; one before TIMESTAMP_MIN is TIMESTAMP_MIN - 1, one
 * after TIMESTAMP_MAX is TIMESTAMP_MAX + 1 (before or after every instant Tally keeps).
 */
bool timestamp_parse_ruby_iso8601(const char *text, size_t len, tally_time today, tally_time *out);

/*
 * Reads `text` as Lago reads a date-time it is sent in a body (subscription_at, ending_at, a
 * wallet's expiration_at): ActiveSupport's Time.zone.iso8601 in UTC, from the same ISO 8601
 * parts as timestamp_parse_ruby_iso8601 (extended and basic forms, ordinal dates, minutes
 * without seconds, offsets "+02", "+0200", "+02:00", white space around), but a whole date is
 * needed (a year with its month and day, or its day of the year; no week date), a time without
 * an offset is UTC's, and "23:59:60" is the next minute as Time.new makes it. Returns false on
 * anything else, and outside [TIMESTAMP_MIN, TIMESTAMP_MAX]. *out: truncated to the microsecond.
 */
bool timestamp_parse_rails_iso8601(const char *text, size_t len, tally_time *out);

/*
 * Writes `t` as "YYYY-MM-DDTHH:MM:SSZ" (Lago's resource timestamps). With `millis` true,
 * writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (Lago's event timestamps). `out` must hold
 * TIMESTAMP_TEXT_MAX bytes. Returns the length written (without the NUL).
 */
size_t timestamp_format(tally_time t, bool millis, char out[TIMESTAMP_TEXT_MAX]);
/* Writes "YYYY-MM-DDTHH:MM:SS.ffffffZ": every microsecond of `t`, so that parsing it gives `t`
 * back (a test clock's now, which a client may send back as the instant to advance to). */
size_t timestamp_format_micros(tally_time t, char out[TIMESTAMP_TEXT_MAX]);

/* `t` without its fraction of a second (towards the past, before 1970 too): what
 * timestamp_format writes without millis, as an instant. */
tally_time timestamp_floor_second(tally_time t);

#endif
