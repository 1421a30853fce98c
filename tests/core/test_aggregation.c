/*
 * Tests of core/aggregation: Lago's own examples for every aggregation type (ported from
 * lago-api spec/services/billable_metrics/aggregations/<type>_service_spec.rb, each test
 * citing its file), Lago's numeric rule, decimal limits, rounding (apply_rounding_service_spec),
 * charge filters (ChargeFilters::EventMatchingService), and property tests against
 * independent references:
 *   - unique_count: random add/remove sequences applied in many shuffled orders equal a
 *     per-value "last (timestamp, sequence) wins" reference;
 *   - weighted_sum: random deltas arriving out of order equal a segment-by-segment
 *     recomputation over time-sorted events in GMP rationals, ceiled at 20 decimals;
 *   - recurring metrics over three periods, with late events routed by the header's rule
 *     (own period + aggregation_add_carried to later ones), equal a recomputation per period.
 *
 * The property tests print their seed; TALLY_SEED=<n> replays a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <gmp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aggregation.h"
#include "core/money.h"
#include "core/timestamp.h"
#include "core/tz.h"

/* ---- Helpers -------------------------------------------------------------------------------- */

#include "aggregation_fixture.h"
#include "splitmix.h"
static uint64_t total_cases;

static struct billable_metric metric(enum billable_metric_aggregation kind, bool recurring)
{
    return (struct billable_metric){.aggregation = kind,
                                    .field_name = kind == AGGREGATION_COUNT ? NULL : "value",
                                    .recurring = recurring};
}

static void expect_units_at(const struct aggregation *a, tally_time now, const char *want)
{
    money_t got = {0, 0};
    char b[MONEY_TEXT_MAX];
    expect_st(aggregation_units(a, now, &got), AGGREGATION_OK);
    if (money_cmp(got, M(want)) != 0)
        fail_msg("units: got %s, want %s", fmt(got, b), want);
}

static void expect_units(const struct aggregation *a, const char *want)
{
    expect_units_at(a, a->to, want);
}

static void add_ok(struct aggregation *a, struct aggregation_event e)
{
    expect_st(aggregation_add(a, &e), AGGREGATION_OK);
}

static void carried_ok(struct aggregation *a, struct aggregation_event e)
{
    expect_st(aggregation_add_carried(a, &e), AGGREGATION_OK);
}

static enum aggregation_status carry_in(struct aggregation *a, struct aggregation_event e)
{
    return aggregation_carry_in(a, &e);
}

/* ---- Prorated sums (Lago's PostgresStore#prorated_sum) ------------------------------------- */

/* A prorated sum over April 2026 in `zone`, Lago's divisor 30. */
static void april(struct aggregation *a, const struct tz_zone *zone, tally_time from)
{
    struct billable_metric m = metric(AGGREGATION_SUM, true);
    expect_st(aggregation_init(a, &m, from, T("2026-05-01T00:00:00Z")), AGGREGATION_OK);
    expect_st(aggregation_set_prorated(a, zone, 30), AGGREGATION_OK);
}

static void test_prorated_sum_days(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct aggregation a;
    april(&a, utc, T("2026-04-01T00:00:00Z"));
    expect_prorated(&a, "0");
    /* added on the 20th: days 20..30, 11 of 30 = 0.3666.. ceiled at 5 decimals */
    add_ok(&a, EV(T("2026-04-20T10:00:00Z"), 1, "1"));
    expect_prorated(&a, "0.36667");
    expect_units(&a, "1");
    /* removed on the 25th: takes back days 25..30, so the seat is billed 20..24 */
    add_ok(&a, EV(T("2026-04-25T00:00:00Z"), 2, "-1"));
    expect_prorated(&a, "0.16667");
    expect_units(&a, "0");
    /* the last instant of the period still weighs its whole day */
    add_ok(&a, EV(T("2026-04-30T23:59:59Z"), 3, "3"));
    expect_prorated(&a, "0.26667"); /* (5 + 3) / 30 */
    /* a value carried from March weighs every day of April */
    carried_ok(&a, EV(T("2026-03-03T00:00:00Z"), 4, "2"));
    expect_prorated(&a, "2.26667"); /* (8 + 60) / 30 */
    aggregation_free(&a);
    tz_free(utc);
}

static void test_prorated_sum_zone_and_start(void **state)
{
    (void)state;
    struct tz_zone *ny = zone_of("EST5EDT,M3.2.0,M11.1.0");
    struct aggregation a;
    /* a subscription started on April 10th at noon in New York (16:00 UTC): the divisor stays
     * the month's 30 days, and a carried value weighs the 21 days from the 10th */
    april(&a, ny, T("2026-04-10T16:00:00Z"));
    carried_ok(&a, EV(T("2026-03-20T00:00:00Z"), 1, "1"));
    expect_prorated(&a, "0.7");
    /* 02:00 UTC on the 20th is the 19th in New York: 12 days, not 11 */
    add_ok(&a, EV(T("2026-04-20T02:00:00Z"), 2, "1"));
    expect_prorated(&a, "1.1"); /* (21 + 12) / 30 */
    aggregation_free(&a);
    tz_free(ny);
}

static void test_prorated_sum_carry_over_and_limits(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct billable_metric m = metric(AGGREGATION_SUM, true);
    struct aggregation march, next;
    expect_st(aggregation_init(&march, &m, T("2026-03-01T00:00:00Z"), T("2026-04-01T00:00:00Z")),
              AGGREGATION_OK);
    expect_st(aggregation_set_prorated(&march, utc, 31), AGGREGATION_OK);
    add_ok(&march, EV(T("2026-03-11T08:00:00Z"), 1, "2"));
    expect_prorated(&march, "1.35484"); /* 2 × 21 / 31 = 1.354838.. */
    april(&next, utc, T("2026-04-01T00:00:00Z"));
    expect_st(aggregation_carry_over(&march, &next), AGGREGATION_OK);
    expect_prorated(&next, "2"); /* present the whole period: counts whole */
    expect_units(&next, "2");
    /* a preview is what adding gives */
    money_t previewed;
    struct aggregation_event e = EV(T("2026-04-16T00:00:00Z"), 2, "1.5");
    expect_st(aggregation_preview_prorated(&next, &e, &previewed), AGGREGATION_OK);
    add_ok(&next, e);
    money_t got;
    expect_st(aggregation_prorated_units(&next, &got), AGGREGATION_OK);
    assert_int_equal(money_cmp(previewed, got), 0);
    expect_prorated(&next, "2.75"); /* (60 + 1.5 × 15) / 30 */
    /* the sum fits, its 29 days do not: refused, the state as it was */
    struct aggregation_event huge = EV(T("2026-04-02T00:00:00Z"), 3, "5e36");
    expect_st(aggregation_add(&next, &huge), AGGREGATION_ERR_OVERFLOW);
    expect_prorated(&next, "2.75");
    expect_units(&next, "3.5");
    /* setting it: an empty sum only, a divisor covering the state's days */
    expect_st(aggregation_set_prorated(&next, utc, 30), AGGREGATION_ERR_INVALID);
    struct aggregation other;
    april(&other, utc, T("2026-04-01T00:00:00Z"));
    aggregation_free(&other);
    expect_st(aggregation_init(&other, &m, T("2026-04-01T00:00:00Z"), T("2026-05-01T00:00:00Z")),
              AGGREGATION_OK);
    expect_st(aggregation_set_prorated(&other, utc, 29), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_set_prorated(&other, utc, AGGREGATION_PRORATED_DAYS_MAX + 1),
              AGGREGATION_ERR_INVALID);
    expect_st(aggregation_prorated_units(&other, &got), AGGREGATION_ERR_INVALID);
    /* a weighted sum weighs time already: never prorated (a unique count may be: see
     * test_aggregation_prorated_unique.c) */
    struct billable_metric u = metric(AGGREGATION_WEIGHTED_SUM, true);
    aggregation_free(&other);
    expect_st(aggregation_init(&other, &u, T("2026-04-01T00:00:00Z"), T("2026-05-01T00:00:00Z")),
              AGGREGATION_OK);
    expect_st(aggregation_set_prorated(&other, utc, 30), AGGREGATION_ERR_INVALID);
    assert_false(aggregation_is_prorated(&other));
    aggregation_free(&other);
    aggregation_free(&march);
    aggregation_free(&next);
    tz_free(utc);
}

/* What a prorated graduated charge walks: the entry at `i`, its days. */
static void expect_walked(const struct aggregation_walk *w, size_t i, const char *value,
                          int64_t want_days)
{
    char b[MONEY_TEXT_MAX];
    if (i >= w->count || money_cmp(w->values[i], M(value)) != 0 || w->days[i] != want_days)
        fail_msg("walked %zu of %zu: %s for %" PRId64 " days, want %s for %" PRId64, i, w->count,
                 i < w->count ? fmt(w->values[i], b) : "-", i < w->count ? w->days[i] : 0, value,
                 want_days);
}

static void expect_peak(const struct aggregation_walk *w, const char *want)
{
    char b[MONEY_TEXT_MAX];
    if (money_cmp(w->peak, M(want)) != 0)
        fail_msg("walk's peak: %s, want %s", fmt(w->peak, b), want);
}

static void test_prorated_sum_walk(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct billable_metric m = metric(AGGREGATION_SUM, true);
    struct aggregation march, april_state;
    expect_st(aggregation_init(&march, &m, T("2026-03-01T00:00:00Z"), T("2026-04-01T00:00:00Z")),
              AGGREGATION_OK);
    expect_st(aggregation_set_prorated(&march, utc, 31), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&march, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
    struct aggregation_walk w = {0};
    /* a state that does not keep every value has no walk */
    struct aggregation plain;
    april(&plain, utc, T("2026-04-01T00:00:00Z"));
    expect_st(aggregation_prorated_values(&plain, NULL, MONEY_ZERO, &w), AGGREGATION_ERR_INVALID);
    aggregation_free(&plain);
    /* in time order whatever the arrival: days from each local date to the 31st */
    add_ok(&march, EV(T("2026-03-20T00:00:00Z"), 1, "3"));
    add_ok(&march, EV(T("2026-03-11T08:00:00Z"), 2, "2"));
    add_ok(&march, EV(T("2026-03-25T00:00:00Z"), 3, "-1"));
    expect_st(aggregation_prorated_values(&march, NULL, MONEY_ZERO, &w), AGGREGATION_OK);
    assert_int_equal(w.count, 3);
    assert_int_equal(w.period_days, 31);
    expect_walked(&w, 0, "2", 21);
    expect_walked(&w, 1, "3", 12);
    expect_walked(&w, 2, "-1", 7);
    expect_peak(&w, "5");
    /* a previewed event in its place, the state unchanged */
    struct aggregation_event e = EV(T("2026-03-15T00:00:00Z"), 4, "5");
    expect_st(aggregation_prorated_values(&march, &e, M("5"), &w), AGGREGATION_OK);
    assert_int_equal(w.count, 4);
    expect_walked(&w, 1, "5", 17);
    expect_walked(&w, 2, "3", 12);
    expect_peak(&w, "10");
    /* events of one day walk as one entry; the peak still sees each: 6 then -4 on the 25th */
    add_ok(&march, EV(T("2026-03-25T10:00:00Z"), 5, "6"));
    add_ok(&march, EV(T("2026-03-25T12:00:00Z"), 6, "-4"));
    expect_st(aggregation_prorated_values(&march, NULL, MONEY_ZERO, &w), AGGREGATION_OK);
    assert_int_equal(w.count, 3);
    expect_walked(&w, 2, "1", 7);
    expect_peak(&w, "10");
    /* the next period walks what came before as one value, present all of it, and keeps
     * it as one: a late event before the period joins it */
    april(&april_state, utc, T("2026-04-01T00:00:00Z"));
    expect_st(aggregation_keep_values(&april_state, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&march, &april_state), AGGREGATION_OK);
    add_ok(&april_state, EV(T("2026-04-21T00:00:00Z"), 7, "1"));
    carried_ok(&april_state, EV(T("2026-03-30T00:00:00Z"), 8, "4"));
    size_t kept;
    aggregation_values(&april_state, NULL, &kept);
    assert_int_equal(kept, 2);
    expect_st(aggregation_prorated_values(&april_state, NULL, MONEY_ZERO, &w), AGGREGATION_OK);
    assert_int_equal(w.count, 2);
    expect_walked(&w, 0, "10", 30);
    expect_walked(&w, 1, "1", 10);
    expect_peak(&w, "11");
    /* a total before the period at or below 0 is left out, as Lago's recurring_value */
    carried_ok(&april_state, EV(T("2026-03-31T00:00:00Z"), 9, "-10"));
    expect_st(aggregation_prorated_values(&april_state, NULL, MONEY_ZERO, &w), AGGREGATION_OK);
    assert_int_equal(w.count, 1);
    expect_walked(&w, 0, "1", 10);
    expect_peak(&w, "1");
    expect_units(&april_state, "1");
    aggregation_walk_free(&w);
    aggregation_free(&march);
    aggregation_free(&april_state);
    tz_free(utc);
}

/* The walk's days are the prorated sum's own: Σ value × days over its entries, divided and
 * ceiled as aggregation_prorated_units does, is those units, for random events in random order
 * across New York's March clock change (the walk reads days a zone lookup per offset change). */
static void prop_prorated_walk_days(void **state)
{
    (void)state;
    struct tz_zone *ny = zone_of("EST5EDT,M3.2.0,M11.1.0");
    struct billable_metric m = metric(AGGREGATION_SUM, true);
    struct aggregation_walk w = {0};
    for (int c = 0; c < 300; c++) {
        struct aggregation a;
        expect_st(aggregation_init(&a, &m, T("2026-03-01T05:00:00Z"), T("2026-04-01T04:00:00Z")),
                  AGGREGATION_OK);
        expect_st(aggregation_set_prorated(&a, ny, 31), AGGREGATION_OK);
        expect_st(aggregation_keep_values(&a, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
        int events = 1 + (int)below(40);
        for (int i = 0; i < events; i++) {
            /* anywhere in the month: before and after the change (2026-03-08, 07:00 UTC) */
            tally_time t =
                T("2026-03-01T05:00:00Z") + (tally_time)(next() % (31 * 86400 - 3600)) * 1000000;
            char v[16];
            snprintf(v, sizeof v, "%d", (int)below(21) - 7);
            add_ok(&a, EV(t, (uint64_t)i + 1, v));
        }
        expect_st(aggregation_prorated_values(&a, NULL, MONEY_ZERO, &w), AGGREGATION_OK);
        money_t weighed = MONEY_ZERO, part, units, want;
        for (size_t i = 0; i < w.count; i++) {
            assert_int_equal(money_mul(w.values[i], money_from_int(w.days[i]), &part), MONEY_OK);
            assert_int_equal(money_add(weighed, part, &weighed), MONEY_OK);
        }
        assert_int_equal(money_div(weighed, money_from_int(31), AGGREGATION_PRORATED_SCALE,
                                   MONEY_ROUND_CEIL, &units),
                         MONEY_OK);
        expect_st(aggregation_prorated_units(&a, &want), AGGREGATION_OK);
        assert_int_equal(money_cmp(units, want), 0);
        total_cases++;
        aggregation_free(&a);
    }
    aggregation_walk_free(&w);
    tz_free(ny);
}

/* ---- The kept walk against one laid out from the events ------------------------------------- */

struct walked_event {
    tally_time t;
    uint64_t seq;
    int64_t v;
};

static int walked_cmp(const void *x, const void *y)
{
    const struct walked_event *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The walk of `events` (with `extra` if not NULL) laid out here, from tz_to_local per event:
 * the carried total first when above 0, then runs of equal days, and the peak. */
static void reference_walk(const struct walked_event *events, size_t n,
                           const struct walked_event *extra, const struct tz_zone *zone,
                           tally_time from, tally_time to, struct aggregation_walk *want)
{
    struct walked_event *all = malloc((n + 1) * sizeof *all);
    assert_non_null(all);
    memcpy(all, events, n * sizeof *all);
    if (extra)
        all[n++] = *extra;
    qsort(all, n, sizeof *all, walked_cmp);
    struct tz_local lt;
    assert_int_equal(tz_to_local(zone, from, &lt), TZ_OK);
    int64_t first = timestamp_days_from_civil(lt.civil.date);
    assert_int_equal(tz_to_local(zone, to - 1, &lt), TZ_OK);
    int64_t last = timestamp_days_from_civil(lt.civil.date);
    int64_t carried = 0, running = 0, peak = 0;
    size_t i = 0;
    for (; i < n && all[i].t < from; i++)
        carried += all[i].v;
    want->count = 0;
    if (carried > 0) {
        want->values[want->count] = money_from_int(carried);
        want->days[want->count++] = last - first + 1;
        running = peak = carried;
    }
    for (; i < n; i++) {
        assert_int_equal(tz_to_local(zone, all[i].t, &lt), TZ_OK);
        int64_t day = timestamp_days_from_civil(lt.civil.date);
        day = day < first ? first : day > last ? last : day;
        int64_t days = last - day + 1;
        running += all[i].v;
        peak = running > peak ? running : peak;
        if (want->count > 0 && want->days[want->count - 1] == days) {
            int64_t sum = (int64_t)want->values[want->count - 1].coef + all[i].v;
            want->values[want->count - 1] = money_from_int(sum);
        } else {
            want->values[want->count] = money_from_int(all[i].v);
            want->days[want->count++] = days;
        }
    }
    want->peak = money_from_int(peak);
    free(all);
}

static void expect_same_walk(const struct aggregation_walk *got,
                             const struct aggregation_walk *want, int c, size_t step)
{
    char gb[MONEY_TEXT_MAX], wb[MONEY_TEXT_MAX];
    if (money_cmp(got->peak, want->peak) != 0)
        fail_msg("case %d step %zu: peak %s, want %s", c, step, fmt(got->peak, gb),
                 fmt(want->peak, wb));
    /* entries of the same days that sum to 0 may stand apart in one and not the other: compare
     * what the walk reads, value × days by days, in order, skipping zero entries */
    size_t i = 0, j = 0;
    for (;;) {
        while (i < got->count && money_is_zero(got->values[i]))
            i++;
        while (j < want->count && money_is_zero(want->values[j]))
            j++;
        if (i == got->count || j == want->count)
            break;
        if (got->days[i] != want->days[j] || money_cmp(got->values[i], want->values[j]) != 0)
            fail_msg("case %d step %zu: entry %zu is %s for %" PRId64 " days, want %s for %" PRId64,
                     c, step, i, fmt(got->values[i], gb), got->days[i], fmt(want->values[j], wb),
                     want->days[j]);
        i++;
        j++;
    }
    if (i != got->count || j != want->count)
        fail_msg("case %d step %zu: %zu entries, want %zu", c, step, got->count, want->count);
}

/*
 * The walk a state keeps and follows event by event (aggregation_prorated_values between
 * adds, with previews) is the walk laid out from its events, whatever the arrival: mostly in
 * time order (the kept walk follows), some late within the period and some before it (the
 * walk is laid out again), across New York's clock change.
 */
static void prop_prorated_walk_kept(void **state)
{
    (void)state;
    enum { EVENTS = 60 };
    struct tz_zone *ny = zone_of("EST5EDT,M3.2.0,M11.1.0");
    struct billable_metric m = metric(AGGREGATION_SUM, true);
    tally_time from = T("2026-03-01T05:00:00Z"), to = T("2026-04-01T04:00:00Z");
    struct aggregation_walk got = {0};
    money_t want_values[2 * EVENTS + 2];
    int64_t want_days[2 * EVENTS + 2];
    struct aggregation_walk want = {.values = want_values, .days = want_days};
    for (int c = 0; c < 200; c++) {
        struct aggregation a;
        expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
        expect_st(aggregation_set_prorated(&a, ny, 31), AGGREGATION_OK);
        expect_st(aggregation_keep_values(&a, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
        struct walked_event events[EVENTS];
        tally_time clock = from;
        for (size_t i = 0; i < EVENTS; i++) {
            uint32_t kind = (uint32_t)below(10);
            tally_time t;
            if (kind == 0) /* before the period: carried */
                t = from - 1000000 * (tally_time)(1 + below(40 * 86400));
            else if (kind == 1) /* late, within the period */
                t = from + (tally_time)(next() % (uint64_t)(clock - from + 1));
            else { /* in order, a few hours on */
                tally_time step = 1000000 * (tally_time)below(12 * 3600);
                t = clock = clock + step < to - 1 ? clock + step : clock;
            }
            events[i] = (struct walked_event){t, i + 1, (int64_t)below(9) - 3};
            char v[16];
            snprintf(v, sizeof v, "%" PRId64, events[i].v);
            struct aggregation_event e = EV(t, i + 1, v);
            if (t < from)
                carried_ok(&a, e);
            else
                add_ok(&a, e);
            if (below(2) == 0)
                continue; /* some adds are not read: the kept walk follows unread */
            expect_st(aggregation_prorated_values(&a, NULL, MONEY_ZERO, &got), AGGREGATION_OK);
            reference_walk(events, i + 1, NULL, ny, from, to, &want);
            expect_same_walk(&got, &want, c, i);
            /* a preview: next in order most often, or anywhere in the period */
            struct walked_event x = {below(4) ? clock + 1000000 * (tally_time)below(3600)
                                              : from + (tally_time)(next() % (uint64_t)(to - from)),
                                     EVENTS + 1, (int64_t)below(5) - 1};
            if (x.t >= to)
                continue;
            snprintf(v, sizeof v, "%" PRId64, x.v);
            struct aggregation_event xe = EV(x.t, x.seq, v);
            expect_st(aggregation_prorated_values(&a, &xe, money_from_int(x.v), &got),
                      AGGREGATION_OK);
            reference_walk(events, i + 1, &x, ny, from, to, &want);
            expect_same_walk(&got, &want, c, i);
            total_cases++;
        }
        aggregation_free(&a);
    }
    aggregation_walk_free(&got);
    tz_free(ny);
}

/* Random integer values at random instants of April, in a random order: the prorated units are
 * ceil(10^5 × Σ v × (30 - day + 1) / 30) / 10^5, counted here in plain integers, whatever the
 * order. */
static void prop_prorated_sum_brute_force(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    reseed(0x9e0);
    tally_time from = T("2026-04-01T00:00:00Z");
    for (int round = 0; round < 2000; round++) {
        struct aggregation a;
        april(&a, utc, from);
        int64_t weighed = 0;
        int n = (int)below(20);
        for (int i = 0; i < n; i++) {
            tally_time t = from + (tally_time)below((uint64_t)(30 * DAY));
            int64_t v = (int64_t)below(21) - 10;
            char text[24];
            snprintf(text, sizeof text, "%" PRId64, v);
            add_ok(&a, EV(t, (uint64_t)i, text));
            weighed += v * (30 - (t - from) / DAY);
            total_cases++;
        }
        int64_t scaled = weighed * 100000, q = scaled / 30;
        if (q * 30 < scaled)
            q++; /* the ceiling, for either sign */
        char want[32];
        snprintf(want, sizeof want, "%s%" PRId64 ".%05" PRId64, q < 0 ? "-" : "",
                 (q < 0 ? -q : q) / 100000, (q < 0 ? -q : q) % 100000);
        expect_prorated(&a, want);
        aggregation_free(&a);
    }
    tz_free(utc);
}

/* ---- Statuses and life cycle ---------------------------------------------------------------- */

static void test_status_text(void **state)
{
    (void)state;
    for (int s = AGGREGATION_OK; s <= AGGREGATION_ERR_KEPT_VALUES; s++) {
        const char *t = aggregation_status_text((enum aggregation_status)s);
        assert_non_null(t);
        assert_string_not_equal(t, "unknown aggregation status");
    }
    assert_string_equal(aggregation_status_text((enum aggregation_status)99),
                        "unknown aggregation status");
}

static void test_init_rules(void **state)
{
    (void)state;
    struct aggregation a;
    struct billable_metric m = metric(AGGREGATION_SUM, false);
    expect_st(aggregation_init(&a, &m, 10, 10), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_init(&a, &m, 11, 10), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_init(NULL, &m, 0, 10), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_init(&a, NULL, 0, 10), AGGREGATION_ERR_INVALID);
    /* Lago: recurring is not_compatible_with_aggregation_type for count, max, latest. */
    enum billable_metric_aggregation never[] = {AGGREGATION_COUNT, AGGREGATION_MAX,
                                                AGGREGATION_LATEST};
    for (size_t i = 0; i < COUNT(never); i++) {
        m = metric(never[i], true);
        expect_st(aggregation_init(&a, &m, 0, 10), AGGREGATION_ERR_INVALID);
    }
    m = metric((enum billable_metric_aggregation)AGGREGATION_KIND_COUNT, false);
    expect_st(aggregation_init(&a, &m, 0, 10), AGGREGATION_ERR_INVALID);

    m = metric(AGGREGATION_SUM, false);
    expect_st(aggregation_init(&a, &m, 0, 10), AGGREGATION_OK);
    expect_st(aggregation_set_duration(&a, 5), AGGREGATION_ERR_INVALID); /* not weighted */
    expect_st(aggregation_set_hash_key(&a, 1, 2), AGGREGATION_ERR_INVALID);
    money_t lv;
    expect_st(aggregation_weighted_level(&a, &lv), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_add_carried(&a, &(struct aggregation_event){.timestamp = -1}),
              AGGREGATION_ERR_INVALID); /* not recurring */
    aggregation_free(&a);
    aggregation_free(&a); /* twice is harmless */

    m = metric(AGGREGATION_WEIGHTED_SUM, false);
    expect_st(aggregation_init(&a, &m, 0, 10), AGGREGATION_OK);
    expect_st(aggregation_set_duration(&a, 0), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_set_duration(&a, -3), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_set_duration(&a, 20), AGGREGATION_OK);
    aggregation_free(&a);

    m = metric(AGGREGATION_UNIQUE_COUNT, false);
    expect_st(aggregation_init(&a, &m, 0, 10), AGGREGATION_OK);
    expect_st(aggregation_set_hash_key(&a, 1, 2), AGGREGATION_OK);
    add_ok(&a, EVU(1, 1, "x", NULL));
    expect_st(aggregation_set_hash_key(&a, 3, 4), AGGREGATION_ERR_INVALID); /* not empty */
    expect_units(&a, "1");
    aggregation_free(&a);
}

/* ---- count ---------------------------------------------------------------------------------- */

/* lago-api spec/services/billable_metrics/aggregations/count_service_spec.rb */
static void test_count_lago(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_COUNT, false);
    struct aggregation a;
    tally_time from = T("2023-07-01T00:00:00Z"), to = T("2023-08-01T00:00:00Z");
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_units(&a, "0");
    /* "aggregates the events": 4 events in the period -> 4 (any properties, or none). */
    add_ok(&a, EV(to - DAY, 1, NULL));
    add_ok(&a, EV(to - DAY, 2, "foo"));
    add_ok(&a, EV(to - DAY, 3, "12"));
    add_ok(&a, EV(from, 4, NULL)); /* the first instant belongs to the period */
    expect_units(&a, "4");
    assert_int_equal(aggregation_events_count(&a), 4);
    /* "when events are out of bounds": not counted here, and said so. */
    struct aggregation_event late = EV(from - 1, 5, NULL), after = EV(to, 6, NULL);
    expect_st(aggregation_add(&a, &late), AGGREGATION_ERR_OUT_OF_PERIOD);
    expect_st(aggregation_add(&a, &after), AGGREGATION_ERR_OUT_OF_PERIOD);
    expect_units(&a, "4");
    const money_t *vals;
    size_t n;
    aggregation_values(&a, &vals, &n);
    assert_int_equal(n, 0);
    assert_null(vals);
    expect_st(aggregation_keep_values(&a, AGGREGATION_KEEP_ALL),
              AGGREGATION_ERR_INVALID); /* count: all 1 */
    aggregation_free(&a);
}

/* ---- sum ------------------------------------------------------------------------------------ */

/* lago-api spec/services/billable_metrics/aggregations/sum_service_spec.rb */
static void expect_peak_units(const struct aggregation *a, const char *want)
{
    char b[MONEY_TEXT_MAX];
    if (money_cmp(aggregation_peak(a), M(want)) != 0)
        fail_msg("peak: got %s, want %s", fmt(aggregation_peak(a), b), want);
}

/*
 * The peak a pay-in-advance charge is billed on (Lago's max_aggregation): the most the units
 * reached, in the order the events came, never below 0; a remove or a negative value lowers
 * the units, not the peak; a new period starts from what it carries.
 */
static void test_peak(void **state)
{
    (void)state;
    tally_time from = T("2026-05-01T00:00:00Z"), to = T("2026-06-01T00:00:00Z");
    struct billable_metric m = metric(AGGREGATION_SUM, false);
    struct aggregation a;
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_peak_units(&a, "0");
    add_ok(&a, EV(from + DAY, 1, "-3")); /* a first negative value bills nothing */
    expect_peak_units(&a, "0");
    add_ok(&a, EV(from + DAY, 2, "10"));
    add_ok(&a, EV(from + DAY, 3, "-7"));
    expect_units(&a, "0");
    expect_peak_units(&a, "7");
    add_ok(&a, EV(from + DAY, 4, "5"));
    expect_peak_units(&a, "7");
    add_ok(&a, EV(from + DAY, 5, "4"));
    expect_peak_units(&a, "9");
    aggregation_free(&a);

    m = metric(AGGREGATION_UNIQUE_COUNT, false);
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    add_ok(&a, EVU(from + DAY, 1, "b", "add"));
    add_ok(&a, EVU(from + DAY, 2, "b", "remove"));
    add_ok(&a, EVU(from + DAY, 3, "b", "add"));
    expect_units(&a, "1");
    expect_peak_units(&a, "1");
    add_ok(&a, EVU(from + DAY, 4, "c", "add"));
    add_ok(&a, EVU(from + DAY, 5, "c", "remove"));
    expect_units(&a, "1");
    expect_peak_units(&a, "2");
    aggregation_free(&a);

    /* recurring: the next period's peak is what it carries, not the last period's peak */
    m = metric(AGGREGATION_SUM, true);
    struct aggregation next;
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    add_ok(&a, EV(from + DAY, 1, "8"));
    add_ok(&a, EV(from + DAY, 2, "-5"));
    expect_st(aggregation_init(&next, &m, to, T("2026-07-01T00:00:00Z")), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &next), AGGREGATION_OK);
    expect_peak_units(&next, "3");
    carried_ok(&next, EV(from + 2 * DAY, 3, "4")); /* a late event of May, carried in */
    expect_peak_units(&next, "7");
    aggregation_free(&a);
    aggregation_free(&next);
}

/*
 * A state built from nothing takes the past it carries with aggregation_carry_in: its peak is
 * then the units that past comes to, as carry-over starts it, and not the previous period's
 * peak (an audit: a restart billed April on March's 10 GB and 5 seats for 2 GB and 1 seat).
 * A late event after it still raises the peak in the order the events came; once the period
 * took an event, carrying in is refused (it would lower a peak already billed).
 */
static void test_peak_carried_in(void **state)
{
    (void)state;
    tally_time from = T("2026-04-01T00:00:00Z"), to = T("2026-05-01T00:00:00Z");
    tally_time march = T("2026-03-10T12:00:00Z");
    struct billable_metric m = metric(AGGREGATION_SUM, true);
    struct aggregation a;
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_st(carry_in(&a, EV(march, 1, "10")), AGGREGATION_OK);
    expect_st(carry_in(&a, EV(march, 2, "-8")), AGGREGATION_OK);
    expect_units(&a, "2");
    expect_peak_units(&a, "2"); /* not March's 10 */
    expect_st(carry_in(&a, EV(from, 3, "1")), AGGREGATION_ERR_OUT_OF_PERIOD);
    carried_ok(&a, EV(march, 4, "10")); /* late: 12 */
    carried_ok(&a, EV(march, 5, "-10"));
    expect_units(&a, "2");
    expect_peak_units(&a, "12");
    expect_st(carry_in(&a, EV(march, 6, "1")), AGGREGATION_ERR_INVALID);
    expect_units(&a, "2");
    aggregation_free(&a);

    /* a carried past below 0 starts the peak at 0; a period's event then refuses carrying in */
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_st(carry_in(&a, EV(march, 1, "-3")), AGGREGATION_OK);
    expect_peak_units(&a, "0");
    add_ok(&a, EV(from, 2, "4"));
    expect_peak_units(&a, "1");
    expect_st(carry_in(&a, EV(march, 3, "5")), AGGREGATION_ERR_INVALID);
    aggregation_free(&a);

    /* a unique count: five seats added, four removed, one carried */
    m = metric(AGGREGATION_UNIQUE_COUNT, true);
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    const char *seats[] = {"a", "b", "c", "d", "e"};
    uint64_t seq = 1;
    for (size_t i = 0; i < 5; i++)
        expect_st(carry_in(&a, EVU(march, seq++, seats[i], "add")), AGGREGATION_OK);
    for (size_t i = 1; i < 5; i++)
        expect_st(carry_in(&a, EVU(march, seq++, seats[i], "remove")), AGGREGATION_OK);
    expect_units(&a, "1");
    expect_peak_units(&a, "1");
    add_ok(&a, EVU(from, seq++, "f", "add"));
    expect_peak_units(&a, "2");
    aggregation_free(&a);

    /* the same events carried over from the period before give the same state and peak */
    struct aggregation prev, next;
    expect_st(aggregation_init(&prev, &m, T("2026-03-01T00:00:00Z"), from), AGGREGATION_OK);
    seq = 1;
    for (size_t i = 0; i < 5; i++)
        add_ok(&prev, EVU(march, seq++, seats[i], "add"));
    for (size_t i = 1; i < 5; i++)
        add_ok(&prev, EVU(march, seq++, seats[i], "remove"));
    expect_peak_units(&prev, "5");
    expect_st(aggregation_init(&next, &m, from, to), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&prev, &next), AGGREGATION_OK);
    expect_units(&next, "1");
    expect_peak_units(&next, "1");
    aggregation_free(&prev);
    aggregation_free(&next);

    /* refused on a state that does not recur */
    m = metric(AGGREGATION_SUM, false);
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_st(carry_in(&a, EV(march, 1, "1")), AGGREGATION_ERR_INVALID);
    aggregation_free(&a);
}

static void test_sum_lago(void **state)
{
    (void)state;
    tally_time started = T("2023-01-01T00:00:00Z");
    tally_time p3_from = T("2023-04-01T00:00:00Z"), p3_to = T("2023-05-01T00:00:00Z");
    tally_time from = T("2023-06-01T00:00:00Z"), to = T("2023-07-01T00:00:00Z");
    struct billable_metric m = metric(AGGREGATION_SUM, false);
    struct aggregation a;
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    /* old_events: 2 × 2.5 three months after the start, outside the period. */
    struct aggregation_event old = EV(started + 90 * DAY, 1, "2.5");
    expect_st(aggregation_add(&a, &old), AGGREGATION_ERR_OUT_OF_PERIOD);
    /* latest_events: 4 × 12 the day before to_datetime -> 48, count 4. */
    for (uint64_t i = 0; i < 4; i++)
        add_ok(&a, EV(to - DAY, 10 + i, "12"));
    expect_units(&a, "48");
    assert_int_equal(aggregation_events_count(&a), 4);

    /* "when properties is not a number": "foo_bar" is ignored; 48, count 4. */
    struct aggregation_event foo = EVS(to - DAY, 20, "foo_bar");
    expect_st(aggregation_add(&a, &foo), AGGREGATION_IGNORED);
    /* "when properties is not found on events": counts as zero, count 0. */
    struct aggregation_event none = EV(to - DAY, 21, NULL);
    expect_st(aggregation_add(&a, &none), AGGREGATION_IGNORED);
    expect_units(&a, "48");
    assert_int_equal(aggregation_events_count(&a), 4);
    /* "when properties is a float": + 4.5 -> 52.5. */
    add_ok(&a, EV(to - DAY, 22, "4.5"));
    expect_units(&a, "52.5");
    assert_int_equal(aggregation_events_count(&a), 5);
    aggregation_free(&a);

    /* "when billable metric is recurring": 53, count 6 (the old events carry over). */
    m = metric(AGGREGATION_SUM, true);
    struct aggregation p3, cur;
    expect_st(aggregation_init(&p3, &m, p3_from, p3_to), AGGREGATION_OK);
    add_ok(&p3, EV(started + 90 * DAY, 1, "2.5"));
    add_ok(&p3, EV(started + 90 * DAY, 2, "2.5"));
    expect_st(aggregation_init(&cur, &m, from, to), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&p3, &cur), AGGREGATION_OK);
    for (uint64_t i = 0; i < 4; i++)
        add_ok(&cur, EV(to - DAY, 10 + i, "12"));
    expect_units(&cur, "53");
    assert_int_equal(aggregation_events_count(&cur), 6);
    /* "when subscription was upgraded in the period": an event of 10 five days before
     * from_datetime on the previous subscription -> 63. Late here: carried. */
    struct aggregation_event upg = EV(from - 5 * DAY, 30, "10");
    expect_st(aggregation_add(&cur, &upg), AGGREGATION_ERR_OUT_OF_PERIOD);
    expect_st(aggregation_add_carried(&cur, &upg), AGGREGATION_OK);
    expect_units(&cur, "63");
    aggregation_free(&p3);
    aggregation_free(&cur);

    /* "when filters are given" ({region: [europe]}): 12 + 8 europe, 12 africa -> 20, 2. */
    m = metric(AGGREGATION_SUM, false);
    const char *europe[] = {"europe"};
    struct aggregation_filter_key fk = {"region", europe, 1};
    struct aggregation_filter f = {&fk, 1};
    struct aggregation buckets[2];
    for (int i = 0; i < 2; i++)
        expect_st(aggregation_init(&buckets[i], &m, from, to), AGGREGATION_OK);
    struct {
        const char *v, *region;
    } evs[] = {{"12", "europe"}, {"8", "europe"}, {"12", "africa"}};
    for (size_t i = 0; i < COUNT(evs); i++) {
        struct event_property props[] = {{"value", evs[i].v, false},
                                         {"region", evs[i].region, false}};
        size_t b = aggregation_filter_bucket(NULL, &f, 1, props, 2);
        add_ok(&buckets[b], EV(to - DAY, 40 + i, evs[i].v));
    }
    expect_units(&buckets[0], "20");
    assert_int_equal(aggregation_events_count(&buckets[0]), 2);
    expect_units(&buckets[1], "12"); /* the default bucket */
    for (int i = 0; i < 2; i++)
        aggregation_free(&buckets[i]);
}

/*
 * Lago's numeric rule: PostgresStore#numeric_condition, ^-?\d+(\.\d+)?$ on the text
 * (properties->>field); a JSON number's text always passes.
 */
static void test_sum_numeric_rule(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_SUM, false);
    struct aggregation a;
    expect_st(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    struct {
        const char *text;
        bool is_string;
        const char *want; /* NULL: ignored */
    } cases[] = {
        {"12", true, "12"},         {"007", true, "7"},         {"-007.50", true, "-7.5"},
        {"0", true, "0"},           {"-0", true, "0"},          {"000.000", true, "0"},
        {"1e3", true, NULL}, /* a string with an exponent is not numeric for Lago */
        {"1e3", false, "1000"},     {"1.5E-2", false, "0.015"}, {"-2e+2", false, "-200"},
        {"+1", true, NULL},         {" 1", true, NULL},         {"1 ", true, NULL},
        {"1.", true, NULL},         {".5", true, NULL},         {"-", true, NULL},
        {"", true, NULL},           {"--1", true, NULL},        {"1.2.3", true, NULL},
        {"0x10", true, NULL},       {"true", false, NULL},      {"NaN", false, NULL},
        {"Infinity", false, NULL},  {"1e", false, NULL},        {"1e+", false, NULL},
        {"１", true, NULL}, /* a full-width digit */
        {"{\"a\":1}", false, NULL},
    };
    uint64_t seq = 1;
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct aggregation_event e = EV(1, seq++, cases[i].text);
        e.value_is_string = cases[i].is_string;
        money_t before, after;
        expect_st(aggregation_units(&a, 0, &before), AGGREGATION_OK);
        enum aggregation_status st = aggregation_add(&a, &e);
        if (!cases[i].want) {
            if (st != AGGREGATION_IGNORED)
                fail_msg("\"%s\" (string %d): %s, want IGNORED", cases[i].text, cases[i].is_string,
                         aggregation_status_text(st));
            continue;
        }
        if (st != AGGREGATION_OK)
            fail_msg("\"%s\": %s, want OK", cases[i].text, aggregation_status_text(st));
        expect_st(aggregation_units(&a, 0, &after), AGGREGATION_OK);
        money_t diff;
        assert_int_equal(money_sub(after, before, &diff), MONEY_OK);
        char b[MONEY_TEXT_MAX];
        if (money_cmp(diff, M(cases[i].want)) != 0)
            fail_msg("\"%s\": added %s, want %s", cases[i].text, fmt(diff, b), cases[i].want);
    }
    /* An embedded NUL ends nothing: the length is the value's. */
    struct aggregation_event nul = {
        .timestamp = 1, .sequence = seq++, .value = "1\0002", .value_len = 3};
    expect_st(aggregation_add(&a, &nul), AGGREGATION_IGNORED);
    aggregation_free(&a);
}

/* Sums near money_t's limits: errors are reported and leave the state unchanged. */
static void test_sum_limits(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_SUM, false);
    struct aggregation a;
    const char *max38 = "99999999999999999999999999999999999999";
    expect_st(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    add_ok(&a, EV(1, 1, max38));
    struct aggregation_event one = EV(2, 2, "1");
    expect_st(aggregation_add(&a, &one), AGGREGATION_ERR_OVERFLOW);
    expect_units(&a, max38);
    assert_int_equal(aggregation_events_count(&a), 1);
    add_ok(&a, EV(3, 3, "-1")); /* back inside: the refused event changed nothing */
    expect_units(&a, "99999999999999999999999999999999999998");
    aggregation_free(&a);

    expect_st(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    add_ok(&a, EV(1, 1, "-99999999999999999999999999999999999999"));
    struct aggregation_event neg = EV(2, 2, "-1");
    expect_st(aggregation_add(&a, &neg), AGGREGATION_ERR_OVERFLOW);
    aggregation_free(&a);

    /* 10^37 + 0.1 needs 39 digits: the sum keeps its first 38, the rest truncated. Refusing
     * it refused every later event of the period whose sum had more (an audit found one event
     * of 1e-38 followed by one of 1 refused, and each after it). */
    expect_st(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    add_ok(&a, EV(1, 1, "10000000000000000000000000000000000000"));
    add_ok(&a, EV(2, 2, "0.1"));
    expect_units(&a, "10000000000000000000000000000000000000");
    aggregation_free(&a);
    expect_st(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    add_ok(&a, EV(1, 1, "0.00000000000000000000000000000000000001"));
    add_ok(&a, EV(2, 2, "1"));
    add_ok(&a, EV(3, 3, "0.3333333333333333333333333333"));
    add_ok(&a, EV(4, 4, "9999999999"));
    expect_units(&a, "10000000000.333333333333333333333333333");
    aggregation_free(&a);

    /* Values Lago counts but a money_t cannot hold: refused, never rounded. */
    expect_st(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    struct aggregation_event big = EVS(1, 1, "100000000000000000000000000000000000000");
    expect_st(aggregation_add(&a, &big), AGGREGATION_ERR_OVERFLOW);
    struct aggregation_event bige = EV(1, 2, "1e38");
    expect_st(aggregation_add(&a, &bige), AGGREGATION_ERR_OVERFLOW);
    struct aggregation_event tiny = EVS(1, 3, "0.000000000000000000000000000000000000001");
    expect_st(aggregation_add(&a, &tiny), AGGREGATION_ERR_PRECISION);
    /* ...but 38 decimals and leading zeros beyond 38 characters are fine. */
    add_ok(
        &a,
        EVS(1, 4,
            "0000000000000000000000000000000000000000000.00000000000000000000000000000000000001"));
    expect_units(&a, "0.00000000000000000000000000000000000001");
    assert_int_equal(aggregation_events_count(&a), 1);
    aggregation_free(&a);
}

static void expect_values(const struct aggregation *a, const char *const *want, size_t count)
{
    const money_t *vals;
    size_t n;
    aggregation_values(a, &vals, &n);
    assert_int_equal(n, count);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(money_cmp(vals[i], M(want[i])), 0);
}

/* A bounded keep holds the earliest `first` values whatever the arrival order, counts every
 * event, and takes more events than AGGREGATION_KEPT_VALUES_MAX (a keep of all refuses). */
static void test_sum_kept_first_values(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_SUM, false);
    struct billable_metric rm = metric(AGGREGATION_SUM, true);
    struct aggregation a, b;
    expect_st(aggregation_init(&a, &m, 100, 200), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&a, 3), AGGREGATION_OK);
    assert_int_equal(aggregation_keeps_values(&a), 3);
    money_t first[1];
    size_t n_first;
    struct aggregation_event none_yet = EV(150, 0, "8");
    aggregation_preview_values(&a, &none_yet, M("8"), first, &n_first); /* nothing kept yet */
    assert_int_equal(n_first, 1);
    assert_int_equal(money_cmp(first[0], M("8")), 0);
    add_ok(&a, EV(150, 1, "5"));
    add_ok(&a, EV(160, 2, "6"));
    add_ok(&a, EV(170, 3, "7"));
    add_ok(&a, EV(180, 4, "8")); /* past the first three: counted, not kept */
    expect_values(&a, (const char *[]){"5", "6", "7"}, 3);
    add_ok(&a, EV(110, 5, "1")); /* earlier: pushes 7 out */
    expect_values(&a, (const char *[]){"1", "5", "6"}, 3);
    add_ok(&a, EV(150, 0, "4")); /* same instant as 5, sent before it */
    expect_values(&a, (const char *[]){"1", "4", "5"}, 3);
    add_ok(&a, EV(199, 6, "9"));
    expect_values(&a, (const char *[]){"1", "4", "5"}, 3);
    expect_units(&a, "40");
    /* a preview puts the event in its place, as the add would */
    money_t after[4];
    size_t n_after;
    struct aggregation_event early = EV(140, 7, "2"), late = EV(190, 8, "2");
    aggregation_preview_values(&a, &early, M("2"), after, &n_after);
    assert_int_equal(n_after, 3);
    assert_int_equal(money_cmp(after[0], M("1")), 0);
    assert_int_equal(money_cmp(after[1], M("2")), 0);
    assert_int_equal(money_cmp(after[2], M("4")), 0);
    aggregation_preview_values(&a, &late, M("2"), after, &n_after);
    assert_int_equal(n_after, 3);
    assert_int_equal(money_cmp(after[2], M("5")), 0);
    assert_int_equal(aggregation_events_count(&a), 7);
    aggregation_free(&a);

    /* more events than a keep of all may hold */
    expect_st(aggregation_init(&a, &m, 0, INT64_MAX), AGGREGATION_OK);
    expect_st(aggregation_init(&b, &m, 0, INT64_MAX), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&a, 2), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&b, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
    for (int64_t i = 0; i < (int64_t)AGGREGATION_KEPT_VALUES_MAX; i++) {
        struct aggregation_event e = EV(1 + i, (uint64_t)i, "1");
        expect_st(aggregation_add(&a, &e), AGGREGATION_OK);
        expect_st(aggregation_add(&b, &e), AGGREGATION_OK);
    }
    struct aggregation_event last = EV(0, AGGREGATION_KEPT_VALUES_MAX, "2");
    expect_st(aggregation_add(&a, &last), AGGREGATION_OK);
    expect_st(aggregation_add(&b, &last), AGGREGATION_ERR_KEPT_VALUES);
    expect_values(&a, (const char *[]){"2", "1"}, 2);
    assert_int_equal(aggregation_events_count(&a), AGGREGATION_KEPT_VALUES_MAX + 1);
    expect_units(&a, "1048578");
    aggregation_free(&a);
    aggregation_free(&b);

    /* carried: a bound no larger takes the first values; a larger one cannot (not kept) */
    expect_st(aggregation_init(&a, &rm, 100, 200), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&a, 2), AGGREGATION_OK);
    add_ok(&a, EV(120, 1, "3"));
    add_ok(&a, EV(110, 2, "2"));
    add_ok(&a, EV(130, 3, "4"));
    expect_st(aggregation_init(&b, &rm, 200, 300), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&b, 3), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_ERR_INVALID);
    expect_st(aggregation_init(&b, &rm, 200, 300), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&b, 1), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_OK);
    expect_values(&b, (const char *[]){"2"}, 1);
    add_ok(&b, EV(250, 4, "5"));
    expect_values(&b, (const char *[]){"2"}, 1);
    expect_units(&b, "14");
    aggregation_free(&a);
    aggregation_free(&b);
}

/* A sum that keeps its events' prices: each numeric event adds the price it comes with, an
 * ignored one adds nothing, a numeric one without a price is refused and changes nothing;
 * the preview agrees with the add; the total carries into the next period. */
static void test_sum_priced_total(void **state)
{
    (void)state;
    struct billable_metric rm = metric(AGGREGATION_SUM, true);
    struct aggregation a, b;
    expect_st(aggregation_init(&a, &rm, 100, 200), AGGREGATION_OK);
    expect_st(aggregation_keep_priced(&a, true), AGGREGATION_OK);
    assert_true(aggregation_keeps_priced(&a));
    money_t one = M("1.25"), two = M("0.5"), value;
    struct aggregation_event e = EV(150, 1, "10");
    expect_st(aggregation_add(&a, &e), AGGREGATION_ERR_INVALID); /* no price */
    assert_true(aggregation_is_empty(&a));
    expect_st(aggregation_number(&a, &e, &value), AGGREGATION_OK);
    assert_int_equal(money_cmp(value, M("10")), 0);
    e.priced_amount = &one;
    add_ok(&a, e);
    struct aggregation_event skip = EVS(160, 2, "n/a");
    expect_st(aggregation_number(&a, &skip, &value), AGGREGATION_IGNORED);
    expect_st(aggregation_add(&a, &skip), AGGREGATION_IGNORED);
    struct aggregation_event f = EV(120, 3, "4");
    f.priced_amount = &two;
    money_t previewed;
    expect_st(aggregation_preview_priced(&a, &f, &previewed), AGGREGATION_OK);
    assert_int_equal(money_cmp(previewed, M("1.75")), 0);
    expect_st(aggregation_preview_priced(&a, &skip, &previewed), AGGREGATION_OK);
    assert_int_equal(money_cmp(previewed, M("1.25")), 0);
    add_ok(&a, f);
    assert_int_equal(money_cmp(aggregation_priced_total(&a), M("1.75")), 0);
    expect_st(aggregation_keep_priced(&a, false), AGGREGATION_ERR_INVALID); /* not empty */

    expect_st(aggregation_init(&b, &rm, 200, 300), AGGREGATION_OK);
    expect_st(aggregation_keep_priced(&b, true), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_OK);
    assert_int_equal(money_cmp(aggregation_priced_total(&b), M("1.75")), 0);
    struct aggregation_event late = EV(110, 4, "2");
    late.priced_amount = &one;
    expect_st(aggregation_add_carried(&b, &late), AGGREGATION_OK);
    assert_int_equal(money_cmp(aggregation_priced_total(&b), M("3")), 0);
    aggregation_free(&b);

    /* a state that did not sum the prices cannot hand them on */
    struct aggregation plain;
    expect_st(aggregation_init(&plain, &rm, 100, 200), AGGREGATION_OK);
    add_ok(&plain, EV(150, 5, "1"));
    expect_st(aggregation_init(&b, &rm, 200, 300), AGGREGATION_OK);
    expect_st(aggregation_keep_priced(&b, true), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&plain, &b), AGGREGATION_ERR_INVALID);
    assert_true(aggregation_is_empty(&b));
    /* nor does a state that keeps none report any */
    assert_int_equal(money_cmp(aggregation_priced_total(&plain), M("0")), 0);
    aggregation_free(&plain);
    aggregation_free(&a);
    aggregation_free(&b);
}

/* Kept values for the percentage model: (timestamp, sequence) order, whatever the arrival. */
static void test_sum_kept_values(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_SUM, true);
    struct aggregation a, b;
    expect_st(aggregation_init(&a, &m, 100, 200), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&a, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
    add_ok(&a, EV(150, 5, "5"));
    add_ok(&a, EV(110, 9, "1"));
    add_ok(&a, EV(150, 3, "4"));
    add_ok(&a, EV(199, 1, "9"));
    struct aggregation_event skip = EVS(120, 10, "x");
    expect_st(aggregation_add(&a, &skip), AGGREGATION_IGNORED);
    add_ok(&a, EV(120, 11, "2"));
    const money_t *vals;
    size_t n;
    aggregation_values(&a, &vals, &n);
    const char *want[] = {"1", "2", "4", "5", "9"};
    assert_int_equal(n, COUNT(want));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(money_cmp(vals[i], M(want[i])), 0);
    expect_st(aggregation_keep_values(&a, 0), AGGREGATION_ERR_INVALID); /* not empty */

    /* Carried into the next period, then a late event of the first one. */
    expect_st(aggregation_init(&b, &m, 200, 300), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&b, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_OK);
    add_ok(&b, EV(250, 12, "7"));
    struct aggregation_event late = EV(105, 13, "0.5");
    add_ok(&a, late);
    expect_st(aggregation_add_carried(&b, &late), AGGREGATION_OK);
    aggregation_values(&b, &vals, &n);
    money_t previewed[8];
    size_t n_previewed;
    struct aggregation_event between = EV(115, 14, "3");
    aggregation_preview_values(&b, &between, M("3"), previewed, &n_previewed);
    assert_int_equal(n_previewed, 8); /* a keep of all grows by one, in place */
    assert_int_equal(money_cmp(previewed[1], M("1")), 0);
    assert_int_equal(money_cmp(previewed[2], M("3")), 0);
    assert_int_equal(money_cmp(previewed[7], M("7")), 0);
    const char *want2[] = {"0.5", "1", "2", "4", "5", "9", "7"};
    assert_int_equal(n, COUNT(want2));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(money_cmp(vals[i], M(want2[i])), 0);
    expect_units(&b, "28.5");
    assert_int_equal(aggregation_events_count(&b), 7);
    aggregation_free(&a);
    aggregation_free(&b);
}

/* ---- max ------------------------------------------------------------------------------------ */

/* lago-api spec/services/billable_metrics/aggregations/max_service_spec.rb */
static void test_max_lago(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_MAX, false);
    struct aggregation a;
    tally_time now = T("2024-03-10T12:00:00Z");
    tally_time from = now - 30 * DAY, to = now + DAY;
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_units(&a, "0"); /* no events: 0 */
    /* 4 events of rand(10) two days ago, one of 12 yesterday -> 12, count 5. */
    const char *small[] = {"3", "9", "0", "7"};
    for (uint64_t i = 0; i < 4; i++)
        add_ok(&a, EV(now - 2 * DAY, i + 1, small[i]));
    add_ok(&a, EV(now - DAY, 5, "12"));
    expect_units(&a, "12");
    assert_int_equal(aggregation_events_count(&a), 5);
    /* "when properties is not a number" / "is missing": ignored, not counted. */
    struct aggregation_event foo = EVS(now, 6, "foo_bar"), none = EV(now, 7, NULL);
    expect_st(aggregation_add(&a, &foo), AGGREGATION_IGNORED);
    expect_st(aggregation_add(&a, &none), AGGREGATION_IGNORED);
    assert_int_equal(aggregation_events_count(&a), 5);
    aggregation_free(&a);

    /* "when properties is a float": 14.2. */
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    add_ok(&a, EV(now - DAY, 1, "14.2"));
    expect_units(&a, "14.2");
    aggregation_free(&a);

    /* Negative values stay negative (MaxService: event_store.max || 0). */
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    add_ok(&a, EV(now - DAY, 1, "-5"));
    add_ok(&a, EV(now - DAY, 2, "-3.5"));
    add_ok(&a, EV(now - DAY, 3, "-4"));
    expect_units(&a, "-3.5");
    aggregation_free(&a);
}

/* ---- latest --------------------------------------------------------------------------------- */

/* lago-api spec/services/billable_metrics/aggregations/latest_service_spec.rb */
static void test_latest_lago(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_LATEST, false);
    struct aggregation a;
    tally_time now = T("2024-03-10T12:00:00Z");
    tally_time from = now - 30 * DAY, to = now + DAY;
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_units(&a, "0");
    /* 4 × 18 two days ago, 14 yesterday -> 14, count 5. */
    for (uint64_t i = 0; i < 4; i++)
        add_ok(&a, EV(now - 2 * DAY, i + 1, "18"));
    add_ok(&a, EV(now - DAY, 5, "14"));
    expect_units(&a, "14");
    assert_int_equal(aggregation_events_count(&a), 5);
    /* A late event (older timestamp, later arrival) does not replace the newer value. */
    add_ok(&a, EV(now - 3 * DAY, 6, "99"));
    expect_units(&a, "14");
    assert_int_equal(aggregation_events_count(&a), 6);
    /* Same timestamp: the later arrival wins (Lago: created_at DESC). */
    add_ok(&a, EV(now - DAY, 7, "15"));
    expect_units(&a, "15");
    /* A later non-numeric event is not "the latest" (the numeric filter comes first). */
    struct aggregation_event foo = EVS(now, 8, "foo");
    expect_st(aggregation_add(&a, &foo), AGGREGATION_IGNORED);
    expect_units(&a, "15");
    /* "when properties is negative": returns zero. */
    add_ok(&a, EV(now, 9, "-5"));
    expect_units(&a, "0");
    /* ...and a newer positive one shows again. */
    add_ok(&a, EV(now + 1, 10, "14.2"));
    expect_units(&a, "14.2");
    aggregation_free(&a);

    /* "when filters are given": europe 12 (t-2s), europe 8 (t-1s), africa 12 -> 8, count 2. */
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    const char *europe[] = {"europe"};
    struct aggregation_filter_key fk = {"region", europe, 1};
    struct aggregation_filter f = {&fk, 1};
    struct {
        tally_time t;
        const char *v, *region;
    } evs[] = {{now - 2 * TIMESTAMP_USEC_PER_SEC, "12", "europe"},
               {now - TIMESTAMP_USEC_PER_SEC, "8", "europe"},
               {now - TIMESTAMP_USEC_PER_SEC, "12", "africa"}};
    for (size_t i = 0; i < COUNT(evs); i++) {
        struct event_property props[] = {{"region", evs[i].region, true}};
        if (aggregation_filter_matches(NULL, &f, props, 1))
            add_ok(&a, EV(evs[i].t, i + 1, evs[i].v));
    }
    expect_units(&a, "8");
    assert_int_equal(aggregation_events_count(&a), 2);
    aggregation_free(&a);
}

/* latest is order-independent: every permutation of a few events gives the same value. */
static void prop_latest_order(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_LATEST, false);
    for (int round = 0; round < 300; round++) {
        struct aggregation_event evs[12];
        char texts[12][24];
        size_t n = 1 + below(COUNT(evs));
        size_t best = 0;
        for (size_t i = 0; i < n; i++) {
            snprintf(texts[i], sizeof texts[i], "%" PRId64, (int64_t)below(200) - 50);
            evs[i] = EV((tally_time)below(4), i + 1, texts[i]);
            if (evs[i].timestamp > evs[best].timestamp ||
                (evs[i].timestamp == evs[best].timestamp && evs[i].sequence > evs[best].sequence))
                best = i;
        }
        money_t want = M(texts[best]);
        if (money_sign(want) < 0)
            want = MONEY_ZERO;
        for (int shuffle = 0; shuffle < 5; shuffle++) {
            for (size_t i = n; i > 1; i--) {
                size_t j = below(i);
                struct aggregation_event t = evs[i - 1];
                evs[i - 1] = evs[j];
                evs[j] = t;
            }
            struct aggregation a;
            expect_st(aggregation_init(&a, &m, 0, 10), AGGREGATION_OK);
            for (size_t i = 0; i < n; i++)
                add_ok(&a, evs[i]);
            money_t got;
            expect_st(aggregation_units(&a, 10, &got), AGGREGATION_OK);
            assert_int_equal(money_cmp(got, want), 0);
            aggregation_free(&a);
            total_cases++;
        }
    }
}

/* ---- unique_count --------------------------------------------------------------------------- */

/*
 * lago-api spec/services/billable_metrics/aggregations/unique_count_service_spec.rb: a
 * recurring unique_count metric on an anniversary subscription, period 2022-07-09 ..
 * 2022-08-08 23:59:59, one value added a month before the period.
 */
static void test_unique_count_lago(void **state)
{
    (void)state;
    struct billable_metric rec = metric(AGGREGATION_UNIQUE_COUNT, true);
    struct billable_metric plain = metric(AGGREGATION_UNIQUE_COUNT, false);
    tally_time from = T("2022-07-09T00:00:00Z"), to = T("2022-08-09T00:00:00Z");
    tally_time prev_from = T("2022-06-09T00:00:00Z");
    tally_time added_at = T("2022-06-09T00:00:00Z"); /* from_datetime - 1.month */
    struct aggregation prev, a;

    /* "when there is persisted event and event added in period" -> 2. */
    expect_st(aggregation_init(&prev, &rec, prev_from, from), AGGREGATION_OK);
    add_ok(&prev, EVU(added_at, 1, "uuid-1", NULL));
    expect_st(aggregation_init(&a, &rec, from, to), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&prev, &a), AGGREGATION_OK);
    expect_units(&a, "1"); /* "with persisted metric on full period" -> 1 */
    add_ok(&a, EVU(from + 10 * DAY, 2, "uuid-2", NULL));
    expect_units(&a, "2");
    assert_int_equal(aggregation_events_count(&a), 2); /* Lago: count = aggregation */
    aggregation_free(&a);

    /* "... but billable metric is not recurring" -> only the period's: 1. */
    expect_st(aggregation_init(&a, &plain, from, to), AGGREGATION_OK);
    struct aggregation_event old = EVU(added_at, 1, "uuid-1", NULL);
    expect_st(aggregation_add(&a, &old), AGGREGATION_ERR_OUT_OF_PERIOD);
    add_ok(&a, EVU(from + 10 * DAY, 2, "uuid-2", NULL));
    expect_units(&a, "1");
    aggregation_free(&a);

    /* "with persisted metrics terminated in the period": remove 15 days before the end -> 0;
     * "when removed on the last day of the period" (to_datetime itself) -> 0. */
    tally_time removals[] = {to - 15 * DAY - 1, to - 1};
    for (size_t i = 0; i < COUNT(removals); i++) {
        expect_st(aggregation_init(&a, &rec, from, to), AGGREGATION_OK);
        expect_st(aggregation_carry_over(&prev, &a), AGGREGATION_OK);
        add_ok(&a, EVU(removals[i], 3, "uuid-1", "remove"));
        expect_units(&a, "0");
        aggregation_free(&a);
    }
    aggregation_free(&prev);

    /* "with persisted metrics added in the period" (+15 days, or on the first instant) -> 1;
     * "added and terminated in the period" -> 0; "added and removed the same day" -> 0. */
    tally_time adds[] = {from + 15 * DAY, from};
    for (size_t i = 0; i < COUNT(adds); i++) {
        expect_st(aggregation_init(&a, &rec, from, to), AGGREGATION_OK);
        add_ok(&a, EVU(adds[i], 1, "u", NULL));
        expect_units(&a, "1");
        aggregation_free(&a);
    }
    expect_st(aggregation_init(&a, &rec, from, to), AGGREGATION_OK);
    add_ok(&a, EVU(from + DAY, 1, "u", "add"));
    add_ok(&a, EVU(to - DAY - 1, 2, "u", "remove"));
    expect_units(&a, "0");
    aggregation_free(&a);
    expect_st(aggregation_init(&a, &rec, from, to), AGGREGATION_OK);
    add_ok(&a, EVU(from + DAY, 1, "u", "add"));
    add_ok(&a, EVU(from + 2 * DAY - 1, 2, "u", "remove")); /* added_at.end_of_day */
    expect_units(&a, "0");
    aggregation_free(&a);
}

/* The edges of unique_count that Lago's SQL decides and Tally follows or refuses. */
static void test_unique_count_edges(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_UNIQUE_COUNT, false);
    struct aggregation a;
    expect_st(aggregation_init(&a, &m, 0, 100), AGGREGATION_OK);
    /* The absent property is one value of its own (SQL groups NULLs), apart from "". */
    add_ok(&a, EVU(1, 1, NULL, NULL));
    add_ok(&a, EVU(2, 2, NULL, NULL));
    expect_units(&a, "1");
    add_ok(&a, EVU(3, 3, "", NULL));
    expect_units(&a, "2");
    /* Texts are compared byte for byte: "1" and "1.0" are two values. */
    add_ok(&a, EVU(4, 4, "1", NULL));
    add_ok(&a, EVU(4, 5, "1.0", NULL));
    expect_units(&a, "4");
    /* Removing a value never added changes nothing; re-adding after a remove counts it. */
    add_ok(&a, EVU(5, 6, "ghost", "remove"));
    expect_units(&a, "4");
    add_ok(&a, EVU(6, 7, NULL, "remove"));
    expect_units(&a, "3");
    add_ok(&a, EVU(7, 8, NULL, "add"));
    expect_units(&a, "4");
    /* A late add older than the ghost's removal stays removed. */
    add_ok(&a, EVU(4, 9, "ghost", "add"));
    expect_units(&a, "4");
    /* An operation_type other than add/remove is refused (Lago's SQL would count -1). */
    const char *bad[] = {"", "ADD", "delete", "remove "};
    for (size_t i = 0; i < COUNT(bad); i++) {
        struct aggregation_event e = EVU(8, 10 + i, "x", bad[i]);
        expect_st(aggregation_add(&a, &e), AGGREGATION_ERR_OPERATION);
    }
    expect_units(&a, "4");
    assert_int_equal(aggregation_events_count(&a), 4);
    /* Values longer than AGGREGATION_VALUE_TEXT_MAX are refused; at the limit, kept. */
    char *longv = malloc(AGGREGATION_VALUE_TEXT_MAX + 1);
    assert_non_null(longv);
    memset(longv, 'v', AGGREGATION_VALUE_TEXT_MAX + 1);
    struct aggregation_event e = {.timestamp = 9,
                                  .sequence = 20,
                                  .value = longv,
                                  .value_len = AGGREGATION_VALUE_TEXT_MAX + 1};
    expect_st(aggregation_add(&a, &e), AGGREGATION_ERR_LIMIT);
    e.value_len = AGGREGATION_VALUE_TEXT_MAX;
    expect_st(aggregation_add(&a, &e), AGGREGATION_OK);
    expect_units(&a, "5");
    free(longv);
    /* Embedded NULs are part of the value. */
    struct aggregation_event n1 = {.timestamp = 9, .sequence = 21, .value = "a\0b", .value_len = 3};
    struct aggregation_event n2 = {.timestamp = 9, .sequence = 22, .value = "a\0c", .value_len = 3};
    add_ok(&a, n1);
    add_ok(&a, n2);
    expect_units(&a, "7");
    aggregation_free(&a);
}

/* AGGREGATION_UNIQUE_VALUES_MAX distinct values fit; one more is refused, not dropped. */
/* aggregation_check answers, with no state, what aggregation_add refuses for the event itself:
 * what event ingest checks on a metric no charge counts yet (an audit found those unchecked). */
static void test_check_without_state(void **state)
{
    (void)state;
    struct aggregation_event e = EVU(0, 1, "x", "REMOVE");
    expect_st(aggregation_check(AGGREGATION_UNIQUE_COUNT, &e), AGGREGATION_ERR_OPERATION);
    e = EVU(0, 1, "x", "remove");
    expect_st(aggregation_check(AGGREGATION_UNIQUE_COUNT, &e), AGGREGATION_OK);
    e = EVU(0, 1, NULL, NULL);
    expect_st(aggregation_check(AGGREGATION_UNIQUE_COUNT, &e), AGGREGATION_OK);
    const enum billable_metric_aggregation numeric[] = {
        AGGREGATION_SUM, AGGREGATION_MAX, AGGREGATION_LATEST, AGGREGATION_WEIGHTED_SUM};
    for (size_t i = 0; i < COUNT(numeric); i++) {
        e = EV(0, 1, "1e308");
        expect_st(aggregation_check(numeric[i], &e), AGGREGATION_ERR_OVERFLOW);
        e = EVS(0, 1, "1e308"); /* a string with an exponent is no number: ignored */
        expect_st(aggregation_check(numeric[i], &e), AGGREGATION_IGNORED);
        e = EV(0, 1, "0.0000000000000000000000000000000000000001");
        expect_st(aggregation_check(numeric[i], &e), AGGREGATION_ERR_PRECISION);
        e = EV(0, 1, "12.5");
        expect_st(aggregation_check(numeric[i], &e), AGGREGATION_OK);
        e = EVS(0, 1, "abc");
        expect_st(aggregation_check(numeric[i], &e), AGGREGATION_IGNORED);
    }
    e = EVU(0, 1, "1e308", "REMOVE");
    expect_st(aggregation_check(AGGREGATION_COUNT, &e), AGGREGATION_OK);
    expect_st(aggregation_check(AGGREGATION_SUM, NULL), AGGREGATION_ERR_INVALID);
}

static void test_unique_count_limit(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_UNIQUE_COUNT, false);
    struct aggregation a;
    expect_st(aggregation_init(&a, &m, 0, 100), AGGREGATION_OK);
    char buf[32];
    for (uint32_t i = 0; i < AGGREGATION_UNIQUE_VALUES_MAX; i++) {
        int len = snprintf(buf, sizeof buf, "%" PRIu32, i);
        struct aggregation_event e = {
            .timestamp = 1, .sequence = i + 1, .value = buf, .value_len = (size_t)len};
        if (aggregation_add(&a, &e) != AGGREGATION_OK)
            fail_msg("value %" PRIu32 " refused", i);
    }
    struct aggregation_event more = EVU(2, UINT64_MAX - 1, "one-more", NULL);
    expect_st(aggregation_add(&a, &more), AGGREGATION_ERR_LIMIT);
    /* Known values still update. */
    add_ok(&a, EVU(3, UINT64_MAX, "7", "remove"));
    money_t u;
    expect_st(aggregation_units(&a, 100, &u), AGGREGATION_OK);
    assert_int_equal(money_cmp(u, money_from_int(AGGREGATION_UNIQUE_VALUES_MAX - 1)), 0);
    aggregation_free(&a);
}

/*
 * Property: unique_count is order-independent and equals, per value, "the last (timestamp,
 * sequence) operation decides" (Lago's LAG sum). Small value domains and few timestamps
 * make ties and repeated operations common; large domains make the table grow.
 */
static void prop_unique_count_shuffles(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_UNIQUE_COUNT, false);
    enum { EVENTS_MAX = 400, DOMAIN_MAX = 300 };
    struct aggregation_event *evs = malloc(EVENTS_MAX * sizeof *evs);
    char(*texts)[16] = malloc(DOMAIN_MAX * sizeof *texts);
    assert_non_null(evs);
    assert_non_null(texts);
    for (int d = 0; d < DOMAIN_MAX; d++)
        snprintf(texts[d], sizeof texts[d], "v%d", d);
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + below(EVENTS_MAX);
        size_t domain = 1 + below(round % 2 ? DOMAIN_MAX : 8);
        uint64_t stamps = 1 + below(20);
        /* reference: per value, the op of the greatest (t, seq); index DOMAIN_MAX = NULL */
        tally_time best_t[DOMAIN_MAX + 1];
        uint64_t best_s[DOMAIN_MAX + 1];
        int best_op[DOMAIN_MAX + 1]; /* -1 none, 0 remove, 1 add */
        for (size_t d = 0; d <= DOMAIN_MAX; d++)
            best_op[d] = -1;
        for (size_t i = 0; i < n; i++) {
            size_t d = below(domain + 1); /* domain itself: the absent value */
            const char *v = d == domain ? NULL : texts[d];
            size_t ref = d == domain ? DOMAIN_MAX : d;
            uint64_t r = below(3);
            const char *op = r == 0 ? "remove" : r == 1 ? "add" : NULL;
            evs[i] = EVU((tally_time)below(stamps), i + 1, v, op);
            if (best_op[ref] < 0 || evs[i].timestamp > best_t[ref] ||
                (evs[i].timestamp == best_t[ref] && evs[i].sequence > best_s[ref])) {
                best_t[ref] = evs[i].timestamp;
                best_s[ref] = evs[i].sequence;
                best_op[ref] = r != 0;
            }
        }
        int64_t want = 0;
        for (size_t d = 0; d <= DOMAIN_MAX; d++)
            want += best_op[d] == 1;
        for (int shuffle = 0; shuffle < 6; shuffle++) {
            for (size_t i = n; i > 1; i--) {
                size_t j = below(i);
                struct aggregation_event t = evs[i - 1];
                evs[i - 1] = evs[j];
                evs[j] = t;
            }
            struct aggregation a;
            expect_st(aggregation_init(&a, &m, 0, 100), AGGREGATION_OK);
            expect_st(aggregation_set_hash_key(&a, next(), next()), AGGREGATION_OK);
            for (size_t i = 0; i < n; i++)
                add_ok(&a, evs[i]);
            money_t got;
            expect_st(aggregation_units(&a, 100, &got), AGGREGATION_OK);
            if (money_cmp(got, money_from_int(want)) != 0) {
                char b[MONEY_TEXT_MAX];
                fail_msg("seed %" PRIu64 " round %d shuffle %d: got %s, want %" PRId64, seed, round,
                         shuffle, fmt(got, b), want);
            }
            assert_int_equal(aggregation_events_count(&a), want);
            aggregation_free(&a);
            total_cases++;
        }
    }
    free(evs);
    free(texts);
}

/* Decimal text of a (scale 0..38) as an exact GMP rational. */
static void mpq_from_text(mpq_t out, const char *text)
{
    char digits[MONEY_TEXT_MAX];
    size_t n = 0, decimals = 0;
    bool frac = false;
    for (const char *p = text; *p; p++) {
        if (*p == '.') {
            frac = true;
            continue;
        }
        digits[n++] = *p;
        if (frac)
            decimals++;
    }
    digits[n] = 0;
    mpz_t num, den;
    mpz_init_set_str(num, digits, 10);
    mpz_init(den);
    mpz_ui_pow_ui(den, 10, decimals);
    mpq_set_num(out, num);
    mpq_set_den(out, den);
    mpq_canonicalize(out);
    mpz_clears(num, den, NULL);
}

/* ceil(q × 10^20) / 10^20 as a money_t; false when it does not fit one. */
static bool money_from_mpq_ceil20(const mpq_t q, money_t *out)
{
    mpz_t c;
    mpz_init(c);
    mpz_ui_pow_ui(c, 10, 20);
    mpz_mul(c, c, mpq_numref(q));
    mpz_cdiv_q(c, c, mpq_denref(q));
    char *s = mpz_get_str(NULL, 10, c);
    bool neg = s[0] == '-';
    const char *d = s + neg;
    size_t len = strlen(d);
    char text[256];
    size_t k = 0;
    if (neg)
        text[k++] = '-';
    if (len <= 20) {
        text[k++] = '0';
        text[k++] = '.';
        for (size_t z = len; z < 20; z++)
            text[k++] = '0';
        memcpy(text + k, d, len);
        k += len;
    } else if (len < 200) {
        memcpy(text + k, d, len - 20);
        k += len - 20;
        text[k++] = '.';
        memcpy(text + k, d + len - 20, 20);
        k += 20;
    }
    bool ok = len < 200 && money_parse(text, k, out) == MONEY_OK;
    free(s);
    mpz_clear(c);
    return ok;
}

/* ---- weighted_sum --------------------------------------------------------------------------- */

/*
 * lago-api spec/services/billable_metrics/aggregations/weighted_sum_service_spec.rb: period
 * 2023-08-01 .. 2023-08-31 23:59:59.999 (ceiled to 09-01 00:00), charges_duration 31 days.
 */
static void test_weighted_sum_lago(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_WEIGHTED_SUM, false);
    tally_time from = T("2023-08-01T00:00:00Z"), to = T("2023-09-01T00:00:00Z");
    struct {
        const char *at, *v;
    } evs[] = {{"2023-08-01T00:00:00Z", "2"},  {"2023-08-01T01:00:00Z", "3"},
               {"2023-08-01T01:30:00Z", "1"},  {"2023-08-01T02:00:00Z", "-4"},
               {"2023-08-01T04:00:00Z", "-2"}, {"2023-08-01T05:00:00Z", "10"},
               {"2023-08-01T05:30:00Z", "-10"}};
    struct aggregation a;
    /* In order, then in reverse: the same exact value. 59400 s / 2678400 s, ceiled at 20. */
    for (int reverse = 0; reverse < 2; reverse++) {
        expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
        for (size_t k = 0; k < COUNT(evs); k++) {
            size_t i = reverse ? COUNT(evs) - 1 - k : k;
            add_ok(&a, EV(T(evs[i].at), i + 1, evs[i].v));
        }
        money_t u, r;
        expect_st(aggregation_units(&a, to, &u), AGGREGATION_OK);
        assert_int_equal(money_round(u, 5, MONEY_ROUND_HALF_UP, &r), MONEY_OK);
        assert_int_equal(money_cmp(r, M("0.02218")), 0); /* "aggregates the events" */
        assert_int_equal(money_cmp(u, M("0.02217741935483870968")), 0);
        assert_int_equal(aggregation_events_count(&a), 7);
        money_t level;
        expect_st(aggregation_weighted_level(&a, &level), AGGREGATION_OK);
        assert_true(money_is_zero(level)); /* variation 0 */
        aggregation_free(&a);
    }

    /* "with a single event": 1000 at from -> 1000. "with no events" -> 0. */
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    expect_units(&a, "0");
    add_ok(&a, EV(from, 1, "1000"));
    expect_units(&a, "1000");
    aggregation_free(&a);
    /* "with events with the same timestamp": 3 and 3 at from -> 6, count 2. */
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    add_ok(&a, EV(from, 1, "3"));
    add_ok(&a, EV(from, 2, "3"));
    expect_units(&a, "6");
    assert_int_equal(aggregation_events_count(&a), 2);
    aggregation_free(&a);

    /* "when billable metric is recurring": the persisted value 1000 starts the level;
     * no events -> 1000, count 0, total 1000; with the 7 events -> 1000.02218. */
    struct billable_metric rm = metric(AGGREGATION_WEIGHTED_SUM, true);
    struct aggregation prev;
    expect_st(aggregation_init(&prev, &rm, T("2023-07-01T00:00:00Z"), from), AGGREGATION_OK);
    add_ok(&prev, EV(from - DAY, 1, "1000"));
    expect_st(aggregation_init(&a, &rm, from, to), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&prev, &a), AGGREGATION_OK);
    expect_units(&a, "1000");
    assert_int_equal(aggregation_events_count(&a), 0);
    for (size_t i = 0; i < COUNT(evs); i++)
        add_ok(&a, EV(T(evs[i].at), i + 10, evs[i].v));
    money_t u, r, level;
    expect_st(aggregation_units(&a, to, &u), AGGREGATION_OK);
    assert_int_equal(money_round(u, 5, MONEY_ROUND_HALF_UP, &r), MONEY_OK);
    assert_int_equal(money_cmp(r, M("1000.02218")), 0);
    expect_st(aggregation_weighted_level(&a, &level), AGGREGATION_OK);
    assert_int_equal(money_cmp(level, M("1000")), 0); /* total_aggregated_units */
    assert_int_equal(aggregation_events_count(&a), 7);
    aggregation_free(&a);
    aggregation_free(&prev);

    /* A subscription started mid-period: Lago divides by the whole period's days. */
    expect_st(aggregation_init(&a, &m, from + 16 * DAY, to), AGGREGATION_OK);
    expect_st(aggregation_set_duration(&a, 31 * DAY), AGGREGATION_OK);
    add_ok(&a, EV(from + 16 * DAY, 1, "31"));
    expect_units(&a, "15"); /* 31 × 15 days / 31 days */
    aggregation_free(&a);
}

/* `now`: accrued so far; Lago's value at now >= to; a `now` before an event is refused. */
static void test_weighted_sum_now(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_WEIGHTED_SUM, false);
    struct aggregation a;
    expect_st(aggregation_init(&a, &m, 0, 100 * HOUR), AGGREGATION_OK);
    expect_units_at(&a, -5, "0");
    add_ok(&a, EV(10 * HOUR, 1, "50"));
    expect_units_at(&a, 10 * HOUR, "0");
    expect_units_at(&a, 30 * HOUR, "10");   /* 50 × 20 h / 100 h */
    expect_units_at(&a, 100 * HOUR, "45");  /* Lago: to the period's end */
    expect_units_at(&a, 1000 * HOUR, "45"); /* clamped */
    money_t u;
    expect_st(aggregation_units(&a, 9 * HOUR, &u), AGGREGATION_ERR_NOW_BEFORE_EVENT);
    /* A delta at t changes the units at `to` by d × (to - t) / duration: nothing accrues
     * with time alone, so per-event debits telescope to the period's fee. */
    add_ok(&a, EV(60 * HOUR, 2, "-20"));
    expect_units(&a, "37"); /* 45 - 20 × 40/100 */
    /* 1/3 is not a terminating decimal: ceil at 20 decimals, negative toward +inf. */
    aggregation_free(&a);
    expect_st(aggregation_init(&a, &m, 0, 3), AGGREGATION_OK);
    add_ok(&a, EV(2, 1, "1"));
    expect_units(&a, "0.33333333333333333334");
    aggregation_free(&a);
    expect_st(aggregation_init(&a, &m, 0, 3), AGGREGATION_OK);
    add_ok(&a, EV(2, 1, "-1"));
    expect_units(&a, "-0.33333333333333333333");
    aggregation_free(&a);
}

/* Extreme deltas: the integral is exact; only a result money_t cannot hold is refused. */
static void test_weighted_sum_limits(void **state)
{
    (void)state;
    struct billable_metric m = metric(AGGREGATION_WEIGHTED_SUM, false);
    struct aggregation a;
    const char *max38 = "99999999999999999999999999999999999999";
    expect_st(aggregation_init(&a, &m, 0, 4), AGGREGATION_OK);
    for (uint64_t i = 0; i < 4; i++)
        add_ok(&a, EV(0, i + 1, max38)); /* level 4 × (10^38 - 1): beyond money_t */
    money_t u, level;
    expect_st(aggregation_units(&a, 4, &u), AGGREGATION_ERR_OVERFLOW);
    expect_st(aggregation_weighted_level(&a, &level), AGGREGATION_ERR_OVERFLOW);
    for (uint64_t i = 0; i < 4; i++)
        add_ok(&a, EV(3, i + 10,
                      "-"
                      "99999999999999999999999999999999999999"));
    /* Level back to 0 but 3/4 of the time at 4 × max38: 3 × max38, still too large. */
    expect_st(aggregation_units(&a, 4, &u), AGGREGATION_ERR_OVERFLOW);
    expect_st(aggregation_weighted_level(&a, &level), AGGREGATION_OK);
    assert_true(money_is_zero(level));
    aggregation_free(&a);

    /* 10^37 + 10^-38 as a level needs 76 digits: PRECISION, not a rounded value. */
    expect_st(aggregation_init(&a, &m, 0, 4), AGGREGATION_OK);
    add_ok(&a, EV(0, 1, "10000000000000000000000000000000000000"));
    add_ok(&a, EV(0, 2, "0.00000000000000000000000000000000000001"));
    expect_st(aggregation_weighted_level(&a, &level), AGGREGATION_ERR_PRECISION);
    /* The units are ceiled at 20 decimals: 10^37 + 10^-20 has 58 digits. */
    expect_st(aggregation_units(&a, 4, &u), AGGREGATION_ERR_PRECISION);
    add_ok(&a, EV(0, 3, "-0.00000000000000000000000000000000000001"));
    expect_st(aggregation_weighted_level(&a, &level), AGGREGATION_OK);
    assert_int_equal(money_cmp(level, M("10000000000000000000000000000000000000")), 0);
    expect_units(&a, "10000000000000000000000000000000000000");
    aggregation_free(&a);

    /* A century-long period, many digits on both sides: still exact (checked with GMP). */
    tally_time from = T("1950-01-01T00:00:00Z"), to = T("2050-01-01T00:00:00Z");
    expect_st(aggregation_init(&a, &m, from, to), AGGREGATION_OK);
    add_ok(&a, EV(from, 1, "1234567890.123456789012345678"));
    add_ok(&a, EV(to - 1, 2, "-1234567890.123456789012345678"));
    expect_st(aggregation_units(&a, to, &u), AGGREGATION_OK);
    /* want: ceil20(X × (to - 1 - from) / (to - from)) */
    mpq_t q, r;
    mpq_inits(q, r, NULL);
    mpq_set_str(q, "1234567890123456789012345678/1000000000000000000", 10);
    mpq_canonicalize(q);
    mpz_t num, den;
    mpz_init_set_si(num, to - 1 - from);
    mpz_init_set_si(den, to - from);
    mpq_set_num(r, num);
    mpq_set_den(r, den);
    mpq_canonicalize(r);
    mpq_mul(q, q, r);
    money_t want;
    assert_true(money_from_mpq_ceil20(q, &want));
    char b[MONEY_TEXT_MAX], wb[MONEY_TEXT_MAX];
    if (money_cmp(u, want) != 0)
        fail_msg("century: got %s, want %s", fmt(u, b), fmt(want, wb));
    mpz_clears(num, den, NULL);
    mpq_clears(q, r, NULL);
    aggregation_free(&a);
}

struct wevent {
    tally_time t;
    char text[MONEY_TEXT_MAX];
};

static int wevent_cmp(const void *pa, const void *pb)
{
    const struct wevent *a = pa, *b = pb;
    return (a->t > b->t) - (a->t < b->t);
}

/*
 * A random decimal delta, either sign: mostly small; with `wide`, sometimes many digits and
 * decimals (up to 38), so that the 512-bit integral and the conversions back are exercised.
 */
static void random_delta(char out[MONEY_TEXT_MAX], bool wide)
{
    uint64_t kind = below(100);
    __int128 coef;
    int32_t scale;
    if (kind < 75 || (!wide && kind < 97)) {
        coef = (__int128)below(2001) - 1000;
        scale = (int32_t)below(4);
    } else if (kind < 97) {
        coef = (__int128)(next() >> 1) * (__int128)(next() >> 40);
        scale = 12 + (int32_t)below(27);
    } else {
        coef = (__int128)(next() >> 2) * (__int128)(next() >> 2) % MONEY_COEF_LIMIT;
        scale = (int32_t)below(39);
    }
    if (below(2))
        coef = -coef;
    money_t v;
    if (money_from_coef(coef, scale, &v) != MONEY_OK)
        v = MONEY_ZERO;
    money_format(v, out, MONEY_TEXT_MAX);
}

/*
 * Property: weighted_sum with events arriving in any order equals Lago's computation done
 * independently, segment by segment over time-sorted events, in GMP rationals: Σ level_i ×
 * (t_i+1 - t_i) / duration, the level starting at the initial value at `from`, the last
 * segment running to x (x = to, or an instant after the last event), ceiled at 20 decimals.
 */
static void prop_weighted_sum_brute_force(void **state)
{
    (void)state;
    enum { EVENTS_MAX = 60 };
    struct wevent evs[EVENTS_MAX], sorted[EVENTS_MAX];
    size_t order[EVENTS_MAX];
    struct billable_metric rm = metric(AGGREGATION_WEIGHTED_SUM, true);
    mpq_t integral, level, d, seg;
    mpq_inits(integral, level, d, seg, NULL);
    uint64_t fitting = 0, all = 0;
    for (int round = 0; round < 1500; round++) {
        tally_time from = T("2023-08-01T00:00:00Z") + (tally_time)below(DAY);
        tally_time len = (tally_time)(1 + below(round % 3 ? 31 * (uint64_t)DAY : 1000));
        tally_time to = from + len;
        tally_time duration = below(4) == 0 ? len + (tally_time)below(5 * (uint64_t)DAY) : len;
        size_t n = below(EVENTS_MAX + 1);
        uint64_t pool = 1 + below(8); /* few distinct instants: ties */
        tally_time instants[8];
        for (size_t i = 0; i < 8; i++)
            instants[i] = from + (tally_time)below((uint64_t)len);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = below(10);
            evs[i].t = r == 0   ? from
                       : r == 1 ? to - 1
                       : r < 5  ? instants[below(pool)]
                                : from + (tally_time)below((uint64_t)len);
            random_delta(evs[i].text, round % 4 == 0);
            order[i] = i;
        }
        char init_text[MONEY_TEXT_MAX];
        random_delta(init_text, round % 4 == 0);

        /* Tally: a previous period's level carried in, events in a random order. */
        struct aggregation prev, a;
        expect_st(aggregation_init(&prev, &rm, from - DAY, from), AGGREGATION_OK);
        add_ok(&prev, EV(from - 1, 1, init_text));
        expect_st(aggregation_init(&a, &rm, from, to), AGGREGATION_OK);
        expect_st(aggregation_set_duration(&a, duration), AGGREGATION_OK);
        expect_st(aggregation_carry_over(&prev, &a), AGGREGATION_OK);
        for (size_t i = n; i > 1; i--) {
            size_t j = below(i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        for (size_t k = 0; k < n; k++)
            add_ok(&a, EV(evs[order[k]].t, k + 2, evs[order[k]].text));

        /* Reference, over sorted events. */
        memcpy(sorted, evs, n * sizeof *evs);
        qsort(sorted, n, sizeof *sorted, wevent_cmp);
        tally_time last = n ? sorted[n - 1].t : from;
        tally_time xs[2] = {to, last + (tally_time)below((uint64_t)(to - last) + 1)};
        for (int xi = 0; xi < 2; xi++) {
            tally_time x = xs[xi];
            mpq_from_text(level, init_text);
            mpq_set_ui(integral, 0, 1);
            tally_time prev_t = from;
            for (size_t i = 0; i <= n; i++) {
                tally_time t = i < n ? sorted[i].t : x;
                mpz_t dt;
                mpz_init_set_si(dt, t - prev_t);
                mpq_set_z(seg, dt);
                mpz_clear(dt);
                mpq_mul(seg, seg, level);
                mpq_add(integral, integral, seg);
                if (i < n) {
                    mpq_from_text(d, sorted[i].text);
                    mpq_add(level, level, d);
                }
                prev_t = t;
            }
            mpz_t dur;
            mpz_init_set_si(dur, duration);
            mpq_set_z(seg, dur);
            mpz_clear(dur);
            mpq_div(integral, integral, seg);
            money_t want, got;
            bool fits = money_from_mpq_ceil20(integral, &want);
            enum aggregation_status st = aggregation_units(&a, x, &got);
            fitting += fits;
            if (!fits) {
                if (st != AGGREGATION_ERR_OVERFLOW && st != AGGREGATION_ERR_PRECISION)
                    fail_msg("seed %" PRIu64 " round %d: %s for a result that does not fit", seed,
                             round, aggregation_status_text(st));
            } else if (st != AGGREGATION_OK || money_cmp(got, want) != 0) {
                char gb[MONEY_TEXT_MAX], wb[MONEY_TEXT_MAX];
                fail_msg("seed %" PRIu64 " round %d x%d: %s %s, want %s", seed, round, xi,
                         aggregation_status_text(st), fmt(got, gb), fmt(want, wb));
            }
            total_cases++;
            all++;
        }
        /* The final level: initial + Σ deltas. */
        money_t lv;
        enum aggregation_status lst = aggregation_weighted_level(&a, &lv);
        mpq_t lq;
        mpq_init(lq);
        mpq_from_text(lq, init_text);
        for (size_t i = 0; i < n; i++) {
            mpq_from_text(d, evs[i].text);
            mpq_add(lq, lq, d);
        }
        if (lst == AGGREGATION_OK) {
            mpq_t diff;
            mpq_init(diff);
            char lb[MONEY_TEXT_MAX];
            money_format(lv, lb, sizeof lb);
            mpq_from_text(diff, lb);
            assert_true(mpq_equal(diff, lq));
            mpq_clear(diff);
        } else if (lst != AGGREGATION_ERR_OVERFLOW && lst != AGGREGATION_ERR_PRECISION)
            fail_msg("level: %s", aggregation_status_text(lst));
        mpq_clear(lq);
        aggregation_free(&prev);
        aggregation_free(&a);
    }
    mpq_clears(integral, level, d, seg, NULL);
    print_message("weighted_sum: %" PRIu64 " of %" PRIu64 " results fit a money_t\n", fitting, all);
    assert_true(fitting * 2 > all); /* the comparison, not only the refusals, is exercised */
}

/* ---- Recurring metrics and late events --------------------------------------------------------
 */

static void test_carry_over_rules(void **state)
{
    (void)state;
    struct billable_metric rs = metric(AGGREGATION_SUM, true), ps = metric(AGGREGATION_SUM, false);
    struct billable_metric ru = metric(AGGREGATION_UNIQUE_COUNT, true);
    struct aggregation a, b;
    expect_st(aggregation_init(&a, &rs, 0, 10), AGGREGATION_OK);
    add_ok(&a, EV(1, 1, "5"));
    expect_st(aggregation_init(&b, &ps, 10, 20), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_ERR_INVALID); /* next not recurring */
    expect_st(aggregation_init(&b, &ru, 10, 20), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_ERR_INVALID); /* another type */
    aggregation_free(&b);
    expect_st(aggregation_init(&b, &rs, 5, 20), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_ERR_INVALID); /* overlapping */
    expect_st(aggregation_init(&b, &rs, 10, 20), AGGREGATION_OK);
    add_ok(&b, EV(11, 2, "1"));
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_ERR_INVALID); /* not empty */
    expect_st(aggregation_init(&b, &rs, 10, 20), AGGREGATION_OK);
    expect_st(aggregation_keep_values(&b, AGGREGATION_KEEP_ALL), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_ERR_INVALID); /* values not kept */
    expect_st(aggregation_init(&b, &rs, 20, 30), AGGREGATION_OK);       /* a gap is fine */
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_OK);
    expect_units(&b, "5");
    expect_st(aggregation_carry_over(&a, &a), AGGREGATION_ERR_INVALID);
    /* add_carried takes only events before `from`. */
    struct aggregation_event in = EV(25, 3, "1");
    expect_st(aggregation_add_carried(&b, &in), AGGREGATION_ERR_OUT_OF_PERIOD);
    aggregation_free(&a);
    aggregation_free(&b);

    /* unique_count: the carried table is a copy (prev unchanged by next's removals). */
    expect_st(aggregation_init(&a, &ru, 0, 10), AGGREGATION_OK);
    add_ok(&a, EVU(1, 1, "x", NULL));
    add_ok(&a, EVU(2, 2, "y", NULL));
    add_ok(&a, EVU(3, 3, "y", "remove"));
    expect_st(aggregation_init(&b, &ru, 10, 20), AGGREGATION_OK);
    expect_st(aggregation_carry_over(&a, &b), AGGREGATION_OK);
    add_ok(&b, EVU(12, 4, "x", "remove"));
    add_ok(&b, EVU(13, 5, "z", NULL));
    /* a late add of y at t=2.5 in period 1: older than its removal, still absent */
    struct aggregation_event late_y = EVU(2, 6, "y", "add");
    add_ok(&a, late_y);
    expect_st(aggregation_add_carried(&b, &late_y), AGGREGATION_OK);
    expect_units(&a, "1");
    expect_units(&b, "1");
    /* and a late add of w in period 1 reaches period 2 */
    struct aggregation_event late_w = EVU(9, 7, "w", NULL);
    add_ok(&a, late_w);
    expect_st(aggregation_add_carried(&b, &late_w), AGGREGATION_OK);
    expect_units(&a, "2");
    expect_units(&b, "2");
    aggregation_free(&a);
    aggregation_free(&b);
}

/* One period's recomputation from scratch, the way Lago's queries read all events. */
static void recompute(enum billable_metric_aggregation kind, const struct aggregation_event *evs,
                      size_t n, tally_time from, tally_time to, mpq_t out)
{
    mpq_t v, seg;
    mpq_inits(v, seg, NULL);
    mpq_set_ui(out, 0, 1);
    if (kind == AGGREGATION_SUM) {
        for (size_t i = 0; i < n; i++)
            if (evs[i].timestamp < to) {
                mpq_from_text(v, evs[i].value);
                mpq_add(out, out, v);
            }
    } else if (kind == AGGREGATION_UNIQUE_COUNT) {
        for (size_t i = 0; i < n; i++) {
            if (evs[i].timestamp >= to)
                continue;
            bool last = true,
                 add = !evs[i].operation_type || strcmp(evs[i].operation_type, "add") == 0;
            for (size_t j = 0; j < n && last; j++)
                if (j != i && evs[j].timestamp < to && strcmp(evs[j].value, evs[i].value) == 0 &&
                    (evs[j].timestamp > evs[i].timestamp ||
                     (evs[j].timestamp == evs[i].timestamp && evs[j].sequence > evs[i].sequence)))
                    last = false;
            if (last && add) {
                mpq_set_ui(v, 1, 1);
                mpq_add(out, out, v);
            }
        }
    } else {
        /* weighted: initial = Σ deltas before from; then segments to `to` */
        mpq_t level;
        mpq_init(level);
        for (size_t i = 0; i < n; i++)
            if (evs[i].timestamp < from) {
                mpq_from_text(v, evs[i].value);
                mpq_add(level, level, v);
            }
        for (tally_time t = from; t < to; t++) { /* periods here are tiny: walk each instant */
            for (size_t i = 0; i < n; i++)
                if (evs[i].timestamp == t) {
                    mpq_from_text(v, evs[i].value);
                    mpq_add(level, level, v);
                }
            mpq_add(out, out, level);
        }
        mpz_t dur;
        mpz_init_set_si(dur, to - from);
        mpq_set_z(seg, dur);
        mpz_clear(dur);
        mpq_div(out, out, seg);
        mpq_clear(level);
    }
    mpq_clears(v, seg, NULL);
}

/*
 * Property: recurring metrics over three periods, events arriving late (in a later phase
 * than their period's), routed by the header's rule: aggregation_add to their own period,
 * aggregation_add_carried to each later period already open. Each period then equals a
 * recomputation over all events up to its end.
 */
static void prop_recurring_late_events(void **state)
{
    (void)state;
    enum { PERIODS = 3, LEN = 40, EVENTS_MAX = 50 };
    enum billable_metric_aggregation kinds[] = {AGGREGATION_SUM, AGGREGATION_UNIQUE_COUNT,
                                                AGGREGATION_WEIGHTED_SUM};
    static const char *const uvalues[] = {"a", "b", "c", "d", "e"};
    char texts[EVENTS_MAX][MONEY_TEXT_MAX];
    struct aggregation_event evs[EVENTS_MAX];
    size_t phase[EVENTS_MAX], idx[EVENTS_MAX];
    mpq_t want;
    mpq_init(want);
    for (int round = 0; round < 600; round++) {
        enum billable_metric_aggregation kind = kinds[round % 3];
        struct billable_metric m = metric(kind, true);
        size_t n = below(EVENTS_MAX + 1);
        for (size_t i = 0; i < n; i++) {
            tally_time t = (tally_time)below(PERIODS * LEN);
            size_t p = (size_t)(t / LEN);
            const char *op = NULL;
            if (kind == AGGREGATION_UNIQUE_COUNT) {
                snprintf(texts[i], sizeof texts[i], "%s", uvalues[below(COUNT(uvalues))]);
                op = below(3) == 0 ? "remove" : NULL;
            } else {
                snprintf(texts[i], sizeof texts[i], "%" PRId64 ".%02u", (int64_t)below(200) - 100,
                         (unsigned)below(100));
            }
            evs[i] = EVU(t, i + 1, texts[i], op);
            evs[i].value_is_string = false;
            /* arrives in its own period's phase, or late in a later one */
            phase[i] = p + (below(3) == 0 ? below(PERIODS - p) : 0);
            idx[i] = i;
        }
        /* arrival: by phase, shuffled within a phase */
        for (size_t i = n; i > 1; i--) {
            size_t j = below(i), t = idx[i - 1];
            idx[i - 1] = idx[j];
            idx[j] = t;
        }
        for (size_t i = 1; i < n; i++) /* stable insertion sort by phase */
            for (size_t j = i; j > 0 && phase[idx[j - 1]] > phase[idx[j]]; j--) {
                size_t t = idx[j];
                idx[j] = idx[j - 1];
                idx[j - 1] = t;
            }
        struct aggregation st[PERIODS];
        for (size_t p = 0; p < PERIODS; p++)
            expect_st(aggregation_init(&st[p], &m, (tally_time)p * LEN, (tally_time)(p + 1) * LEN),
                      AGGREGATION_OK);
        size_t open = 1;
        for (size_t k = 0; k < n; k++) {
            size_t i = idx[k];
            while (open <= phase[i]) { /* period close: carry into the next */
                expect_st(aggregation_carry_over(&st[open - 1], &st[open]), AGGREGATION_OK);
                open++;
            }
            size_t p = (size_t)(evs[i].timestamp / LEN);
            add_ok(&st[p], evs[i]);
            for (size_t q = p + 1; q < open; q++)
                expect_st(aggregation_add_carried(&st[q], &evs[i]), AGGREGATION_OK);
        }
        while (open < PERIODS) {
            expect_st(aggregation_carry_over(&st[open - 1], &st[open]), AGGREGATION_OK);
            open++;
        }
        for (size_t p = 0; p < PERIODS; p++) {
            recompute(kind, evs, n, (tally_time)p * LEN, (tally_time)(p + 1) * LEN, want);
            money_t wm, got;
            assert_true(money_from_mpq_ceil20(want, &wm));
            expect_st(aggregation_units(&st[p], st[p].to, &got), AGGREGATION_OK);
            if (money_cmp(got, wm) != 0) {
                char gb[MONEY_TEXT_MAX], wb[MONEY_TEXT_MAX];
                fail_msg("seed %" PRIu64 " round %d kind %d period %zu: got %s, want %s", seed,
                         round, (int)kind, p, fmt(got, gb), fmt(wm, wb));
            }
            total_cases++;
        }
        for (size_t p = 0; p < PERIODS; p++)
            aggregation_free(&st[p]);
    }
    mpq_clear(want);
}

/* ---- Rounding ------------------------------------------------------------------------------- */

/* lago-api spec/services/billable_metrics/aggregations/apply_rounding_service_spec.rb */
static void test_rounding_lago(void **state)
{
    (void)state;
    struct {
        enum billable_metric_rounding r;
        int32_t p;
        const char *units, *want;
    } cases[] = {
        {ROUNDING_ROUND, 2, "123.456", "123.46"},
        {ROUNDING_ROUND, 0, "123.456", "123"}, /* "without precision" */
        {ROUNDING_ROUND, -2, "123.456", "100"},
        {ROUNDING_CEIL, 2, "123.456", "123.46"},
        {ROUNDING_CEIL, 0, "123.456", "124"},
        {ROUNDING_CEIL, -2, "123.456", "200"},
        {ROUNDING_FLOOR, 2, "123.456", "123.45"},
        {ROUNDING_FLOOR, 0, "123.456", "123"},
        {ROUNDING_FLOOR, -2, "123.456", "100"},
        {ROUNDING_NONE, 2, "123.456", "123.456"},
        /* BigDecimal semantics beyond the spec: half up away from zero, floor/ceil by sign */
        {ROUNDING_ROUND, 1, "2.25", "2.3"},
        {ROUNDING_ROUND, 1, "-2.25", "-2.3"},
        {ROUNDING_ROUND, -1, "15", "20"},
        {ROUNDING_ROUND, -1, "-15", "-20"},
        {ROUNDING_FLOOR, 0, "-1.5", "-2"},
        {ROUNDING_CEIL, 0, "-1.5", "-1"},
        {ROUNDING_CEIL, -15, "1", "1000000000000000"},
        {ROUNDING_FLOOR, -15, "999999999999999", "0"},
        {ROUNDING_ROUND, 15, "0.0000000000000005", "0.000000000000001"},
        {ROUNDING_CEIL, 3, "7", "7"},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct billable_metric m = {.aggregation = AGGREGATION_SUM,
                                    .rounding = cases[i].r,
                                    .rounding_precision = cases[i].p};
        money_t got;
        expect_st(aggregation_round(&m, M(cases[i].units), &got), AGGREGATION_OK);
        char b[MONEY_TEXT_MAX];
        if (money_cmp(got, M(cases[i].want)) != 0)
            fail_msg("case %zu: %s -> %s, want %s", i, cases[i].units, fmt(got, b), cases[i].want);
    }
    struct billable_metric bad = {.rounding = ROUNDING_ROUND, .rounding_precision = 16};
    money_t out;
    expect_st(aggregation_round(&bad, M("1"), &out), AGGREGATION_ERR_INVALID);
    bad.rounding_precision = -16;
    expect_st(aggregation_round(&bad, M("1"), &out), AGGREGATION_ERR_INVALID);
    bad.rounding = (enum billable_metric_rounding)42;
    bad.rounding_precision = 0;
    expect_st(aggregation_round(&bad, M("1"), &out), AGGREGATION_ERR_INVALID);
    /* Overflow is reported: 10^37 × 9.9 ceiled to a multiple of 10^15 still fits; at 10^38
     * it does not. */
    struct billable_metric c15 = {.rounding = ROUNDING_CEIL, .rounding_precision = -15};
    expect_st(aggregation_round(&c15, M("99999999999999999999999999999999999999"), &out),
              AGGREGATION_ERR_OVERFLOW);
    struct billable_metric r15 = {.rounding = ROUNDING_ROUND, .rounding_precision = 15};
    expect_st(aggregation_round(&r15, M("99999999999999999999999999999999999999"), &out),
              AGGREGATION_ERR_OVERFLOW);
}

/* ---- Filters -------------------------------------------------------------------------------- */

/* ChargeFilters::EventMatchingService and the invoice query's wildcard expansion. */
static void test_filters(void **state)
{
    (void)state;
    const char *regions[] = {"us", "europe", "africa"};
    const char *clouds[] = {"aws", "gcp"};
    struct billable_metric_filter mfs[] = {{"region", regions, 3}, {"cloud", clouds, 2}};
    struct billable_metric m = {
        .aggregation = AGGREGATION_COUNT, .filters = mfs, .filter_count = 2};

    const char *us[] = {"us"};
    const char *us_eu[] = {"us", "europe"};
    const char *aws[] = {"aws"};
    const char *all[] = {AGGREGATION_FILTER_WILDCARD};
    const char *all_and_us[] = {AGGREGATION_FILTER_WILDCARD, "us"};
    struct aggregation_filter_key k_us = {"region", us, 1}, k_useu = {"region", us_eu, 2},
                                  k_aws = {"cloud", aws, 1}, k_all_region = {"region", all, 1},
                                  k_all_cloud = {"cloud", all, 1},
                                  k_mixed = {"region", all_and_us, 2};
    struct aggregation_filter_key us_aws[] = {k_us, k_aws};
    struct aggregation_filter_key all_all[] = {k_all_region, k_all_cloud};
    struct aggregation_filter f_us = {&k_us, 1}, f_useu = {&k_useu, 1}, f_aws = {&k_aws, 1},
                              f_us_aws = {us_aws, 2}, f_all = {&k_all_region, 1},
                              f_all_all = {all_all, 2}, f_mixed = {&k_mixed, 1};

    struct event_property p_us_aws[] = {
        {"value", "3", true}, {"region", "us", true}, {"cloud", "aws", true}};
    struct event_property p_eu[] = {{"region", "europe", true}};
    struct event_property p_mars[] = {{"region", "mars", true}, {"cloud", "aws", true}};
    struct event_property p_null[] = {{"region", NULL, true}};
    struct event_property p_none[] = {{"other", "us", true}};
    struct event_property p_dup[] = {{"region", "europe", true}, {"region", "us", true}};

    assert_true(aggregation_filter_matches(&m, &f_us, p_us_aws, 3));
    assert_false(aggregation_filter_matches(&m, &f_us, p_eu, 1));
    assert_true(aggregation_filter_matches(&m, &f_useu, p_eu, 1));
    assert_false(aggregation_filter_matches(&m, &f_us, p_none, 1)); /* key absent */
    assert_false(aggregation_filter_matches(&m, &f_us, NULL, 0));
    assert_true(aggregation_filter_matches(&m, &f_us_aws, p_us_aws, 3));
    assert_false(aggregation_filter_matches(&m, &f_us_aws, p_eu, 1));
    assert_false(aggregation_filter_matches(&m, &f_us, p_dup, 2)); /* first occurrence read */
    /* The wildcard: any present value (no metric), or a declared one (with the metric). */
    assert_true(aggregation_filter_matches(NULL, &f_all, p_eu, 1));
    assert_true(aggregation_filter_matches(&m, &f_all, p_eu, 1));
    assert_true(aggregation_filter_matches(NULL, &f_all, p_mars, 2));
    assert_false(aggregation_filter_matches(&m, &f_all, p_mars, 2));
    assert_true(aggregation_filter_matches(NULL, &f_all, p_null, 1)); /* key? only */
    assert_false(aggregation_filter_matches(&m, &f_all, p_null, 1));
    assert_false(aggregation_filter_matches(NULL, &f_us, p_null, 1));
    assert_false(aggregation_filter_matches(NULL, &f_all, p_none, 1));
    assert_true(aggregation_filter_matches(&m, &f_all_all, p_us_aws, 3));
    /* The wildcard only as the sole value; beside others it is a literal. */
    assert_false(aggregation_filter_matches(NULL, &f_mixed, p_eu, 1));
    assert_true(aggregation_filter_matches(NULL, &f_mixed, p_us_aws, 3));

    /* Buckets: the most specific match; the first of equals; else the default (count). */
    struct aggregation_filter charge1[] = {f_us, f_us_aws, f_aws};
    assert_int_equal(aggregation_filter_bucket(&m, charge1, 3, p_us_aws, 3), 1);
    struct event_property p_us_gcp[] = {{"region", "us", true}, {"cloud", "gcp", true}};
    assert_int_equal(aggregation_filter_bucket(&m, charge1, 3, p_us_gcp, 2), 0);
    struct event_property p_eu_aws[] = {{"region", "europe", true}, {"cloud", "aws", true}};
    assert_int_equal(aggregation_filter_bucket(&m, charge1, 3, p_eu_aws, 2), 2);
    assert_int_equal(aggregation_filter_bucket(&m, charge1, 3, p_eu, 1), 3); /* default */
    struct aggregation_filter charge2[] = {f_aws, f_us}; /* overlapping, not nested */
    assert_int_equal(aggregation_filter_bucket(&m, charge2, 2, p_us_aws, 3), 0);
    struct aggregation_filter charge3[] = {f_us, f_aws};
    assert_int_equal(aggregation_filter_bucket(&m, charge3, 2, p_us_aws, 3), 0);
    /* Same keys, nested values: the narrower takes the event whatever the order, as in Lago
     * (the wildcard is every declared value, so {region: us} nests in it). */
    struct aggregation_filter charge4[] = {f_all, f_us};
    assert_int_equal(aggregation_filter_bucket(&m, charge4, 2, p_us_aws, 3), 1);
    assert_int_equal(aggregation_filter_bucket(&m, charge4, 2, p_eu, 1), 0);
    assert_int_equal(aggregation_filter_bucket(&m, charge4, 2, p_mars, 2), 2); /* undeclared */
    assert_int_equal(aggregation_filter_bucket(NULL, charge4, 2, p_mars, 2), 0);
    struct aggregation_filter charge4b[] = {f_us, f_all};
    assert_int_equal(aggregation_filter_bucket(&m, charge4b, 2, p_us_aws, 3), 0);
    struct aggregation_filter charge4c[] = {f_useu, f_us};
    assert_int_equal(aggregation_filter_bucket(&m, charge4c, 2, p_us_aws, 3), 1);
    assert_int_equal(aggregation_filter_bucket(&m, charge4c, 2, p_eu, 1), 0);
    /* {region: [us, eu], cloud: *} holds {region: us, cloud: aws}, either order */
    struct aggregation_filter_key useu_all[] = {k_useu, k_all_cloud};
    struct aggregation_filter f_useu_all = {useu_all, 2};
    struct aggregation_filter charge4d[] = {f_useu_all, f_us_aws};
    assert_int_equal(aggregation_filter_bucket(&m, charge4d, 2, p_us_aws, 3), 1);
    struct aggregation_filter charge4e[] = {f_us_aws, f_useu_all};
    assert_int_equal(aggregation_filter_bucket(&m, charge4e, 2, p_us_aws, 3), 0);
    /* the same filter twice: not nested, the first of equals */
    struct aggregation_filter charge4f[] = {f_us, f_us};
    assert_int_equal(aggregation_filter_bucket(&m, charge4f, 2, p_us_aws, 3), 0);
    struct aggregation_filter charge5[] = {f_all, f_all_all};
    assert_int_equal(aggregation_filter_bucket(&m, charge5, 2, p_us_aws, 3), 1);
    assert_int_equal(aggregation_filter_bucket(&m, NULL, 0, p_us_aws, 3), 0); /* no filters */
}

/* ---- Setup ---------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    seed_from_env("aggregation", UINT64_C(20261125));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    seed_report("aggregation", total_cases);
    return 0;
}

/* aggregation_preview says what aggregation_add then does, for every type a charge prices
 * an event's step for (estimates and holds), over random sequences (unique values added and
 * removed out of order, weighted sums' events out of order, included). */
static void test_preview_matches_add(void **state)
{
    (void)state;
    static const char *const values[] = {"a", "b", "c", "7", "1.5", "abc", NULL};
    static const char *const ops[] = {NULL, "add", "remove"};
    enum billable_metric_aggregation kinds[] = {AGGREGATION_COUNT,        AGGREGATION_SUM,
                                                AGGREGATION_UNIQUE_COUNT, AGGREGATION_MAX,
                                                AGGREGATION_LATEST,       AGGREGATION_WEIGHTED_SUM};
    uint64_t x = 0x5DEECE66Du;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct billable_metric m = metric(kinds[k], false);
        for (int run = 0; run < 200; run++) {
            struct aggregation a;
            assert_int_equal(aggregation_init(&a, &m, 0, 1000000), AGGREGATION_OK);
            for (uint64_t seq = 1; seq <= 30; seq++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                struct aggregation_event e = EV((tally_time)(x % 1000), seq, values[x % 7]);
                e.operation_type = ops[(x >> 8) % 3];
                money_t preview_units, units;
                int64_t preview_events;
                assert_int_equal(aggregation_preview(&a, &e, &preview_units, &preview_events),
                                 AGGREGATION_OK);
                enum aggregation_status st = aggregation_add(&a, &e);
                assert_true(st == AGGREGATION_OK || st == AGGREGATION_IGNORED);
                assert_int_equal(aggregation_units(&a, 1000000, &units), AGGREGATION_OK);
                assert_int_equal(money_cmp(units, preview_units), 0);
                assert_int_equal(aggregation_events_count(&a), preview_events);
            }
            aggregation_free(&a);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preview_matches_add),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_init_rules),
        cmocka_unit_test(test_count_lago),
        cmocka_unit_test(test_sum_lago),
        cmocka_unit_test(test_peak),
        cmocka_unit_test(test_peak_carried_in),
        cmocka_unit_test(test_sum_numeric_rule),
        cmocka_unit_test(test_sum_limits),
        cmocka_unit_test(test_prorated_sum_walk),
        cmocka_unit_test(prop_prorated_walk_days),
        cmocka_unit_test(prop_prorated_walk_kept),
        cmocka_unit_test(test_sum_kept_values),
        cmocka_unit_test(test_sum_kept_first_values),
        cmocka_unit_test(test_sum_priced_total),
        cmocka_unit_test(test_max_lago),
        cmocka_unit_test(test_latest_lago),
        cmocka_unit_test(prop_latest_order),
        cmocka_unit_test(test_unique_count_lago),
        cmocka_unit_test(test_unique_count_edges),
        cmocka_unit_test(test_unique_count_limit),
        cmocka_unit_test(test_check_without_state),
        cmocka_unit_test(prop_unique_count_shuffles),
        cmocka_unit_test(test_weighted_sum_lago),
        cmocka_unit_test(test_weighted_sum_now),
        cmocka_unit_test(test_weighted_sum_limits),
        cmocka_unit_test(prop_weighted_sum_brute_force),
        cmocka_unit_test(test_carry_over_rules),
        cmocka_unit_test(prop_recurring_late_events),
        cmocka_unit_test(test_rounding_lago),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_prorated_sum_days),
        cmocka_unit_test(test_prorated_sum_zone_and_start),
        cmocka_unit_test(test_prorated_sum_carry_over_and_limits),
        cmocka_unit_test(prop_prorated_sum_brute_force),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
