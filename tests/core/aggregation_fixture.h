/*
 * What the core/aggregation test files share: exact numbers and instants from text, events of
 * each kind, zones, and checks of a status or a prorated result that fail with what they saw.
 * Included after cmocka.h by each file that needs it (static inline: each binary its own copy).
 */
#ifndef TALLY_TESTS_AGGREGATION_FIXTURE_H
#define TALLY_TESTS_AGGREGATION_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "core/aggregation.h"
#include "core/money.h"
#include "core/timestamp.h"
#include "core/tz.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define HOUR (INT64_C(3600) * TIMESTAMP_USEC_PER_SEC)
#define DAY TIMESTAMP_USEC_PER_DAY

static inline money_t M(const char *text)
{
    money_t v = {0, 0};
    if (money_parse(text, strlen(text), &v) != MONEY_OK)
        fail_msg("money_parse(\"%s\") failed", text);
    return v;
}

static inline const char *fmt(money_t v, char buf[MONEY_TEXT_MAX])
{
    if (!money_is_valid(v) || money_format(v, buf, MONEY_TEXT_MAX) == 0)
        snprintf(buf, MONEY_TEXT_MAX, "<invalid>");
    return buf;
}

static inline tally_time T(const char *iso)
{
    tally_time t = 0;
    if (!timestamp_parse_iso8601(iso, strlen(iso), &t))
        fail_msg("bad timestamp %s", iso);
    return t;
}

static inline struct tz_zone *zone_of(const char *posix)
{
    struct tz_zone *z = NULL;
    if (tz_from_posix(posix, strlen(posix), &z) != TZ_OK)
        fail_msg("tz_from_posix(%s)", posix);
    return z;
}

/* An event whose property is a JSON number (or absent when value is NULL). */
static inline struct aggregation_event EV(tally_time t, uint64_t seq, const char *value) {
    return (struct aggregation_event){
        .timestamp = t, .sequence = seq, .value = value, .value_len = value ? strlen(value) : 0};
}

/* An event whose property is a JSON string. */
static inline struct aggregation_event
EVS(tally_time t, uint64_t seq, const char *value) {
    struct aggregation_event e = EV(t, seq, value);
    e.value_is_string = true;
    return e;
}

/* A unique_count event: op NULL means no operation_type. */
static inline struct aggregation_event
EVU(tally_time t, uint64_t seq, const char *value, const char *op) {
    struct aggregation_event e = EVS(t, seq, value);
    e.operation_type = op;
    return e;
}

#define expect_st(expr, want)                                                                      \
    do {                                                                                           \
        enum aggregation_status st_ = (expr);                                                      \
        if (st_ != (want))                                                                         \
            fail_msg("%s: %s, want %s (line %d)", #expr, aggregation_status_text(st_),             \
                     aggregation_status_text(want), __LINE__);                                     \
    } while (0)

static inline void
expect_prorated(const struct aggregation *a, const char *want)
{
    money_t got = {0, 0};
    char b[MONEY_TEXT_MAX];
    expect_st(aggregation_prorated_units(a, &got), AGGREGATION_OK);
    if (money_cmp(got, M(want)) != 0)
        fail_msg("prorated units: got %s, want %s", fmt(got, b), want);
}

#endif
