/*
 * core/tz: time zones from TZif bytes (RFC 8536), and conversions between UTC instants and
 * local civil time.
 *
 * Why this exists: Debian's ICU carries stale zone data, and switching the process-wide TZ
 * for glibc's localtime_r is not thread-safe (DESIGN.md section 5). So Tally reads the
 * system's TZif files itself into immutable zone objects that any thread may share.
 *
 * Shape:
 * - tz_parse() takes the bytes of a TZif file (versions 1 to 4) that the caller read; core/
 *   never does I/O (sys/tzdb finds, reads and caches the files). For version 2+ files the
 *   64-bit data block is used, and the POSIX TZ string of the footer governs every instant
 *   after the last transition (and every instant when the file lists no transitions).
 * - Every size the input drives has a named limit below; input beyond a limit, or malformed
 *   in any way, gives an error status. The input may come from disk or a fuzzer: parsing
 *   never reads out of bounds, never overflows, never aborts.
 * - A zone is immutable after tz_parse()/tz_from_posix() return, so any number of threads
 *   may call the conversion functions on one zone at once without locks.
 * - Files with leap-second records (the right/ tree) are refused: their instants count leap
 *   seconds, while a tally_time, like POSIX time, does not.
 *
 * Local -> UTC policy (tz_from_local):
 * - Fold (a local time that happens twice, e.g. 01:30 on the night clocks go back): the
 *   caller picks the earlier or the later instant with enum tz_fold.
 * - Gap (a local time that never happens, e.g. 02:30 on the night clocks go forward): the
 *   caller picks enum tz_gap. TZ_GAP_SHIFT_FORWARD moves the time forward by the length of
 *   the gap (02:30 in New York's spring gap becomes 03:30 EDT), which is what java.time,
 *   Python's zoneinfo (fold=0) and JavaScript Temporal ("compatible") do: the time is read
 *   with the offset in force before the gap. TZ_GAP_NEXT_VALID answers the transition
 *   instant itself, the first instant after the gap: tz_start_of_day() uses it, so a day
 *   whose midnight is skipped starts at the first instant that exists on it.
 */
#ifndef TALLY_CORE_TZ_H
#define TALLY_CORE_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timestamp.h"

/* Limits on what a TZif file may declare. The largest real zone (tzdata 2025b, Debian's
 * "fat" files) has 310 transitions, 18 types, 40 abbreviation bytes and a 46-byte footer;
 * these are tzcode's own limits or more, so every real file fits with room to spare. */
#define TZ_MAX_TRANSITIONS 2000 /* transition times per data block (tzcode TZ_MAX_TIMES) */
#define TZ_MAX_TYPES 256        /* local time types (tzcode TZ_MAX_TYPES) */
#define TZ_MAX_ABBR_BYTES 512   /* bytes of the abbreviation pool, NULs included */
#define TZ_MAX_FOOTER 256       /* bytes of the POSIX TZ string in the footer */
#define TZ_MAX_ABBR_LEN 32      /* one abbreviation in a TZ string, without its NUL */
/* A whole TZif file: both data blocks at the limits above fit in about 34 KiB. */
#define TZ_MAX_INPUT_BYTES (64 * 1024)
/* UT offsets are refused outside +-25:59:59 (RFC 8536 suggests [-89999, 93599]). */
#define TZ_MAX_OFFSET_SECONDS 93599

enum tz_status {
    TZ_OK = 0,
    TZ_ERR_ARG,         /* NULL pointer, or a civil time with fields out of range */
    TZ_ERR_TRUNCATED,   /* the bytes end before the header or data they announce */
    TZ_ERR_MAGIC,       /* not "TZif" */
    TZ_ERR_VERSION,     /* a version byte other than NUL, '2', '3', '4' */
    TZ_ERR_LIMIT,       /* a count or length beyond the TZ_MAX_* limits */
    TZ_ERR_INVALID,     /* inconsistent data: unsorted times, bad indexes, bad offsets... */
    TZ_ERR_FOOTER,      /* the footer or a POSIX TZ string does not parse */
    TZ_ERR_UNSUPPORTED, /* leap-second records (right/ zones) */
    TZ_ERR_NOMEM,
    TZ_ERR_RANGE, /* an instant or civil time outside years 0001..9999 */
};

/* Names for logs and test messages ("TZ_ERR_LIMIT"); never NULL. */
const char *tz_status_name(enum tz_status status);

/* An immutable zone. Opaque: built by tz_parse or tz_from_posix, freed by tz_free. */
struct tz_zone;

/*
 * Parses the bytes of a TZif file. `data` is borrowed for the call only; on TZ_OK, *out
 * receives a new zone that the caller owns and frees with tz_free(). On error *out is set to
 * NULL and nothing is allocated.
 */
enum tz_status tz_parse(const uint8_t *data, size_t len, struct tz_zone **out);

/*
 * Builds a zone from a POSIX TZ string alone ("UTC0", "EST5EDT,M3.2.0,M11.1.0",
 * "<+0530>-5:30"), with RFC 8536's extensions (hours up to 167 and negative in rule times).
 * The rule governs every instant. `text` is borrowed (need not be NUL-terminated); the caller
 * owns *out and frees it with tz_free().
 */
enum tz_status tz_from_posix(const char *text, size_t len, struct tz_zone **out);

/* Frees a zone made by tz_parse or tz_from_posix. NULL is a no-op. The caller must make sure
 * no other thread still uses the zone. */
void tz_free(struct tz_zone *zone);

/* A wall-clock reading: a date and a time of day, without an offset. */
struct tz_civil {
    struct civil_date date;
    int32_t hour;   /* 0..23 */
    int32_t minute; /* 0..59 */
    int32_t second; /* 0..59 */
    int32_t usec;   /* 0..999999 */
};

/* What an instant looks like in a zone. */
struct tz_local {
    struct tz_civil civil;
    int32_t utc_offset; /* seconds east of UTC: local = UTC + utc_offset */
    bool is_dst;
    const char *abbr; /* "EDT", "+1345": NUL-terminated, borrowed from the zone (lives as
                         long as the zone) */
};

/* UTC instant -> local time. TZ_ERR_RANGE outside [TIMESTAMP_MIN, TIMESTAMP_MAX]. */
enum tz_status tz_to_local(const struct tz_zone *zone, tally_time t, struct tz_local *out);
/* The local date of instant t in the zone; a NULL zone reads UTC. False where tz_to_local
 * fails. */
bool tz_local_date(const struct tz_zone *zone, tally_time t, struct civil_date *out);

enum tz_fold {
    TZ_FOLD_EARLIER, /* the first occurrence (the offset before the clocks went back) */
    TZ_FOLD_LATER,   /* the second occurrence (the offset after) */
};

enum tz_gap {
    TZ_GAP_SHIFT_FORWARD, /* add the gap's length: the time read with the earlier offset */
    TZ_GAP_NEXT_VALID,    /* the transition instant: the first instant after the gap */
};

/* How a local time maps to instants. */
enum tz_match {
    TZ_MATCH_UNIQUE, /* exactly one instant */
    TZ_MATCH_FOLD,   /* two (or, in contrived zones, more): enum tz_fold chose */
    TZ_MATCH_GAP,    /* none: enum tz_gap chose */
};

/*
 * Local time -> UTC instant, with the caller's fold and gap policies (see the file header).
 * `match` may be NULL; if not, it tells which case applied. TZ_ERR_ARG for fields out of
 * range (including a day the month does not have), TZ_ERR_RANGE when the local time or the
 * instant it maps to is outside [TIMESTAMP_MIN, TIMESTAMP_MAX].
 */
enum tz_status tz_from_local(const struct tz_zone *zone, const struct tz_civil *local,
                             enum tz_fold fold, enum tz_gap gap, tally_time *out,
                             enum tz_match *match);

/*
 * The first instant of the local day `date`: local midnight, its earlier occurrence if
 * midnight happens twice, and the instant the gap ends if midnight does not exist (then the
 * day starts at, say, 01:00). A day skipped entirely (Pacific/Apia, 2011-12-30) starts at the
 * same instant as the next day, so it lasts zero seconds.
 */
enum tz_status tz_start_of_day(const struct tz_zone *zone, struct civil_date date, tally_time *out);

/*
 * The first transition strictly after `t`: an instant where the offset, the DST flag or the
 * abbreviation may change (files can list transitions that change nothing visible).
 * Returns false if there is none within the supported range (e.g. a fixed-offset zone).
 */
bool tz_next_transition(const struct tz_zone *zone, tally_time t, tally_time *out);

#endif
