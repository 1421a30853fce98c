/*
 * Tests of core/aggregation's prorated unique count (a recurring unique_count_agg whose charge
 * has prorated: true): Lago's rules from app/services/events/stores/postgres/
 * unique_count_query.rb (prorated_query) as worked examples, carry-over, previews, limits, and
 * a property test: random adds and removes (some of earlier periods, some carried over, some
 * late) arriving in random order give exactly what a literal transcription of Lago's three SQL
 * steps computes over the time-sorted events, in plain integers.
 *
 * The property test prints its seed; TALLY_SEED=<n> replays a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aggregation.h"
#include "core/money.h"
#include "core/timestamp.h"
#include "core/tz.h"

#include "aggregation_fixture.h"
#include "splitmix.h"
static uint64_t total_cases;

static const struct billable_metric seats = {
    .aggregation = AGGREGATION_UNIQUE_COUNT, .field_name = "user", .recurring = true};

static void expect_count(const struct aggregation *a, int64_t want)
{
    money_t got;
    expect_st(aggregation_units(a, a->to, &got), AGGREGATION_OK);
    assert_int_equal(money_cmp(got, money_from_int(want)), 0);
}

/* Adds e (or carries it, before `from`) after checking that the preview says what it does. */
static void take(struct aggregation *a, struct aggregation_event e)
{
    money_t previewed, got;
    expect_st(aggregation_preview_prorated(a, &e, &previewed), AGGREGATION_OK);
    if (e.timestamp < a->from)
        expect_st(aggregation_add_carried(a, &e), AGGREGATION_OK);
    else
        expect_st(aggregation_add(a, &e), AGGREGATION_OK);
    expect_st(aggregation_prorated_units(a, &got), AGGREGATION_OK);
    assert_int_equal(money_cmp(previewed, got), 0);
}

/* A prorated unique count over March 2026 (31 days) in `zone`, from `from` (its first instant,
 * later when the subscription started within March). */
static void march(struct aggregation *a, const struct tz_zone *zone, tally_time from)
{
    /* April 1st 00:00 local: UTC, or UTC+2 (the only zones used here) */
    tally_time to = T("2026-04-01T00:00:00Z") - (from % DAY == 0 ? 0 : 2 * HOUR);
    expect_st(aggregation_init(a, &seats, from, to), AGGREGATION_OK);
    expect_st(aggregation_set_prorated(a, zone, 31), AGGREGATION_OK);
}

/* ---- Lago's rules as examples -----------------------------------------------------------------
 */

/* A seat added on the 11th and removed on the 21st counts 11 days, both included; re-added on the
 * 25th, 7 more. */
static void test_add_remove_readd(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct aggregation a;
    march(&a, utc, T("2026-03-01T00:00:00Z"));
    expect_prorated(&a, "0");
    take(&a, EVU(T("2026-03-11T09:00:00Z"), 1, "ann", NULL));
    expect_prorated(&a, "0.67742"); /* 21/31 = 0.677419.. ceiled at 5 decimals */
    expect_count(&a, 1);
    take(&a, EVU(T("2026-03-21T17:00:00Z"), 2, "ann", "remove"));
    expect_prorated(&a, "0.35484"); /* 11/31 = 0.354838.. */
    expect_count(&a, 0);
    take(&a, EVU(T("2026-03-25T08:00:00Z"), 3, "ann", "add"));
    expect_prorated(&a, "0.58065"); /* (11 + 7)/31 = 0.580645.. */
    expect_count(&a, 1);
    /* a second seat for the whole month, added on the 1st */
    take(&a, EVU(T("2026-03-01T00:00:00Z"), 4, "bob", "add"));
    expect_prorated(&a, "1.58065");
    aggregation_free(&a);
    tz_free(utc);
}

/* Lago's same-day rules (unique_count_query.rb: ignore_remove_events_sql, operation_value_sql):
 * a removal followed by an add on the same local day is ignored, so is an add of a value already
 * present; an add then a removal on the same day still count that day. */
static void test_same_day(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct aggregation a;
    march(&a, utc, T("2026-03-01T00:00:00Z"));
    /* removed at 10:00 and back at 11:00 on the 21st: present all along from the 11th */
    take(&a, EVU(T("2026-03-11T09:00:00Z"), 1, "ann", NULL));
    take(&a, EVU(T("2026-03-21T10:00:00Z"), 2, "ann", "remove"));
    take(&a, EVU(T("2026-03-21T11:00:00Z"), 3, "ann", "add"));
    expect_prorated(&a, "0.67742"); /* 21/31 */
    /* added and removed within the 5th: that day */
    take(&a, EVU(T("2026-03-05T10:00:00Z"), 4, "bob", "add"));
    take(&a, EVU(T("2026-03-05T11:00:00Z"), 5, "bob", "remove"));
    expect_prorated(&a, "0.70968"); /* 22/31 */
    /* the example in Lago's comments: add, remove, add on the 27th, remove on the 28th, add on
     * the 30th: the 27th-28th and the 30th-31st (the period here runs to the 31st) */
    take(&a, EVU(T("2026-03-27T08:00:00Z"), 6, "cid", "add"));
    take(&a, EVU(T("2026-03-27T09:00:00Z"), 7, "cid", "remove"));
    take(&a, EVU(T("2026-03-27T10:00:00Z"), 8, "cid", "add"));
    take(&a, EVU(T("2026-03-28T10:00:00Z"), 9, "cid", "add")); /* present already: nothing */
    take(&a, EVU(T("2026-03-28T11:00:00Z"), 10, "cid", "remove"));
    take(&a, EVU(T("2026-03-30T11:00:00Z"), 11, "cid", "add"));
    expect_prorated(&a, "0.83871"); /* (22 + 2 + 2)/31 = 0.838709.. */
    /* a removal alone, of a value never added: nothing */
    take(&a, EVU(T("2026-03-12T11:00:00Z"), 12, "dan", "remove"));
    expect_prorated(&a, "0.83871");
    expect_count(&a, 2);
    aggregation_free(&a);
    tz_free(utc);
}

/* The same events in the reverse order give the same days. */
static void test_reverse_order(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct aggregation a;
    march(&a, utc, T("2026-03-01T00:00:00Z"));
    take(&a, EVU(T("2026-03-30T11:00:00Z"), 11, "cid", "add"));
    take(&a, EVU(T("2026-03-28T11:00:00Z"), 10, "cid", "remove"));
    take(&a, EVU(T("2026-03-28T10:00:00Z"), 9, "cid", "add"));
    take(&a, EVU(T("2026-03-27T10:00:00Z"), 8, "cid", "add"));
    take(&a, EVU(T("2026-03-27T09:00:00Z"), 7, "cid", "remove"));
    take(&a, EVU(T("2026-03-27T08:00:00Z"), 6, "cid", "add"));
    expect_prorated(&a, "0.12904"); /* 4/31 = 0.129032.. */
    expect_count(&a, 1);
    aggregation_free(&a);
    tz_free(utc);
}

/* Days are the customer's: 23:30 UTC on the 10th is the 11th in UTC+2. A carried value counts
 * from the period's first day, and a subscription started within the month still divides by
 * the month's 31 days. */
static void test_zone_carried_and_start(void **state)
{
    (void)state;
    struct tz_zone *plus2 = zone_of("<+02>-2");
    struct aggregation a;
    /* the period starts at the subscription's start, the 16th 00:00 local (14:00 UTC... the
     * 15th 22:00 UTC) */
    march(&a, plus2, T("2026-03-15T22:00:00Z"));
    take(&a, EVU(T("2026-02-10T12:00:00Z"), 1, "old", "add"));    /* carried: from the 16th */
    expect_prorated(&a, "0.51613");                               /* 16/31 */
    take(&a, EVU(T("2026-03-20T23:30:00Z"), 2, "new", "add"));    /* the 21st local: 11 days */
    expect_prorated(&a, "0.87097");                               /* 27/31 = 0.870967.. */
    take(&a, EVU(T("2026-03-17T21:59:00Z"), 3, "old", "remove")); /* the 17th local: 2 days */
    expect_prorated(&a, "0.41936");                               /* 13/31 = 0.419354.. */
    expect_count(&a, 1);
    /* a late removal before the period of the carried value: it was never present then */
    take(&a, EVU(T("2026-02-20T12:00:00Z"), 4, "old", "remove"));
    expect_prorated(&a, "0.35484"); /* 11/31 */
    aggregation_free(&a);
    struct tz_zone *utc = zone_of("UTC0");
    march(&a, utc, T("2026-03-01T00:00:00Z"));
    take(&a, EVU(T("2026-03-20T23:30:00Z"), 2, "new", "add")); /* the 20th in UTC: 12 days */
    expect_prorated(&a, "0.3871");
    aggregation_free(&a);
    tz_free(utc);
    tz_free(plus2);
}

/* Carry-over: what is present at the end of February counts whole in March; a late event of
 * February then carried into March changes March as if it had come in time. */
static void test_carry_over(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct aggregation feb, mar;
    expect_st(aggregation_init(&feb, &seats, T("2026-02-01T00:00:00Z"), T("2026-03-01T00:00:00Z")),
              AGGREGATION_OK);
    expect_st(aggregation_set_prorated(&feb, utc, 28), AGGREGATION_OK);
    take(&feb, EVU(T("2026-02-15T00:00:00Z"), 1, "ann", NULL));
    take(&feb, EVU(T("2026-02-20T00:00:00Z"), 2, "bob", NULL));
    take(&feb, EVU(T("2026-02-25T00:00:00Z"), 3, "bob", "remove"));
    expect_prorated(&feb, "0.71429"); /* (14 + 6)/28 */
    march(&mar, utc, T("2026-03-01T00:00:00Z"));
    expect_st(aggregation_carry_over(&feb, &mar), AGGREGATION_OK);
    expect_prorated(&mar, "1");
    expect_count(&mar, 1);
    take(&mar, EVU(T("2026-03-10T00:00:00Z"), 4, "ann", "remove"));
    expect_prorated(&mar, "0.32259"); /* 10/31 = 0.322580.. */
    /* late: bob back on Feb 27th, so present from March 1st */
    take(&feb, EVU(T("2026-02-27T00:00:00Z"), 5, "bob", "add"));
    take(&mar, EVU(T("2026-02-27T00:00:00Z"), 5, "bob", "add"));
    expect_prorated(&mar, "1.32259");
    expect_count(&mar, 1);
    /* a non-prorated next period carries the table alone */
    struct aggregation plain;
    expect_st(
        aggregation_init(&plain, &seats, T("2026-03-01T00:00:00Z"), T("2026-04-01T00:00:00Z")),
        AGGREGATION_OK);
    expect_st(aggregation_carry_over(&feb, &plain), AGGREGATION_OK);
    assert_false(aggregation_is_prorated(&plain));
    money_t got;
    expect_st(aggregation_prorated_units(&plain, &got), AGGREGATION_ERR_INVALID);
    aggregation_free(&plain);
    aggregation_free(&feb);
    aggregation_free(&mar);
    tz_free(utc);
}

/* Setting it: an empty recurring unique count; errors leave the state unchanged. */
static void test_rules(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct aggregation a;
    march(&a, utc, T("2026-03-01T00:00:00Z"));
    assert_true(aggregation_is_prorated(&a));
    take(&a, EVU(T("2026-03-11T09:00:00Z"), 1, "ann", NULL));
    expect_st(aggregation_set_prorated(&a, utc, 31), AGGREGATION_ERR_INVALID); /* not empty */
    struct aggregation_event bad = EVU(T("2026-03-12T09:00:00Z"), 2, "ann", "delete");
    money_t got;
    expect_st(aggregation_add(&a, &bad), AGGREGATION_ERR_OPERATION);
    expect_st(aggregation_preview_prorated(&a, &bad, &got), AGGREGATION_ERR_OPERATION);
    char long_value[AGGREGATION_VALUE_TEXT_MAX + 2];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = 0;
    struct aggregation_event big = EVU(T("2026-03-12T09:00:00Z"), 3, long_value, NULL);
    expect_st(aggregation_add(&a, &big), AGGREGATION_ERR_LIMIT);
    expect_prorated(&a, "0.67742");
    aggregation_free(&a);
    /* a period shorter than its divisor's days, never longer */
    expect_st(aggregation_init(&a, &seats, T("2026-03-01T00:00:00Z"), T("2026-04-01T00:00:00Z")),
              AGGREGATION_OK);
    expect_st(aggregation_set_prorated(&a, utc, 30), AGGREGATION_ERR_INVALID);
    assert_false(aggregation_is_prorated(&a));
    aggregation_free(&a);
    tz_free(utc);
}

/* AGGREGATION_UNIQUE_DAY_RECORDS_MAX: a new (value, day) past it is refused, the state as it
 * was; operations on days already recorded still go in. */
static void test_day_records_limit(void **state)
{
    (void)state;
    struct tz_zone *utc = zone_of("UTC0");
    struct aggregation a;
    march(&a, utc, T("2026-03-01T00:00:00Z"));
    tally_time from = a.from;
    uint64_t seq = 1;
    size_t records = 0;
    char v[32];
    for (uint32_t i = 0; records < AGGREGATION_UNIQUE_DAY_RECORDS_MAX; i++) {
        snprintf(v, sizeof v, "u%" PRIu32, i);
        for (int d = 0; d < 31 && records < AGGREGATION_UNIQUE_DAY_RECORDS_MAX; d++, records++) {
            struct aggregation_event e = EVU(from + d * DAY, seq++, v, d % 2 ? "remove" : "add");
            expect_st(aggregation_add(&a, &e), AGGREGATION_OK);
        }
    }
    money_t before, after;
    expect_st(aggregation_prorated_units(&a, &before), AGGREGATION_OK);
    struct aggregation_event e = EVU(from + 3 * HOUR, seq++, "fresh", NULL);
    expect_st(aggregation_add(&a, &e), AGGREGATION_ERR_LIMIT);
    e = EVU(from + 3 * HOUR, seq++, "u0", "remove"); /* u0's 1st is recorded */
    expect_st(aggregation_add(&a, &e), AGGREGATION_OK);
    e = EVU(from - 3 * HOUR, seq++, "fresh2", "add"); /* a carry needs no record */
    expect_st(aggregation_add_carried(&a, &e), AGGREGATION_OK);
    expect_st(aggregation_prorated_units(&a, &after), AGGREGATION_OK);
    assert_int_not_equal(money_cmp(before, after), 0);
    aggregation_free(&a);
    tz_free(utc);
}

/* ---- Property: Lago's SQL, transcribed, over random events ------------------------------------
 */

#define PROP_VALUES 5
#define PROP_EVENTS_MAX 40

struct pevent {
    tally_time t;
    uint64_t seq;
    int value; /* index in values[], PROP_VALUES: the absent property */
    bool add;
};

static const char *const values[PROP_VALUES] = {"a", "b", "", "d", "e"};

static int pevent_cmp(const void *pa, const void *pb)
{
    const struct pevent *a = pa, *b = pb;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int64_t day_in(const struct tz_zone *z, tally_time t)
{
    struct tz_local lt;
    if (tz_to_local(z, t, &lt) != TZ_OK)
        fail_msg("tz_to_local");
    return timestamp_days_from_civil(lt.civil.date);
}

/*
 * Lago's prorated_query for one period [from, to), one value's events sorted by time:
 *   1. a remove is ignored when a later event of the value on the same local day is an add
 *      (ignore_remove_events_sql);
 *   2. of the rest, an operation equal to the one before it (a remove when there is none) is
 *      dropped (operation_value_sql, adjusted_value = 0);
 *   3. each remaining add counts DATE(next + 1 day) - DATE(max(add, from)), next being the
 *      following remaining event (a remove), or the period's end; 0 when that next event is
 *      before `from` (period_ratio_sql). Calendar days: Tally's reading of "+ 1 day".
 */
static int64_t lago_days(const struct tz_zone *z, const struct pevent *ev, size_t n, int value,
                         tally_time from, tally_time to)
{
    const struct pevent *mine[PROP_EVENTS_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].value == value)
            mine[k++] = &ev[i];
    bool ignored[PROP_EVENTS_MAX] = {false};
    for (size_t i = 0; i < k; i++) {
        if (mine[i]->add)
            continue;
        for (size_t j = i + 1; j < k; j++)
            if (mine[j]->add && day_in(z, mine[j]->t) == day_in(z, mine[i]->t))
                ignored[i] = true;
    }
    const struct pevent *kept[PROP_EVENTS_MAX];
    size_t m = 0;
    bool prev_add = false;
    for (size_t i = 0; i < k; i++) {
        if (ignored[i])
            continue;
        if (mine[i]->add != prev_add)
            kept[m++] = mine[i];
        prev_add = mine[i]->add;
    }
    int64_t first = day_in(z, from), end_of_period = day_in(z, to - 1) + 1, days = 0;
    for (size_t i = 0; i < m; i++) {
        if (!kept[i]->add)
            continue;
        int64_t start = day_in(z, kept[i]->t < from ? from : kept[i]->t);
        int64_t end;
        if (i + 1 == m)
            end = end_of_period;
        else if (kept[i + 1]->t < from)
            end = first;
        else
            end = day_in(z, kept[i + 1]->t) + 1;
        days += end - start;
    }
    return days;
}

static bool lago_present(const struct pevent *ev, size_t n, int value)
{
    bool present = false;
    for (size_t i = 0; i < n; i++)
        if (ev[i].value == value)
            present = ev[i].add;
    return present;
}

/* The events in a random arrival order (Fisher-Yates). */
static void shuffle(struct pevent *ev, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = below(i);
        struct pevent tmp = ev[i - 1];
        ev[i - 1] = ev[j];
        ev[j] = tmp;
    }
}

static struct aggregation_event pevent_of(const struct pevent *p)
{
    return EVU(p->t, p->seq, p->value < PROP_VALUES ? values[p->value] : NULL,
               p->add ? (below(3) ? "add" : NULL) : "remove");
}

/* Applies p to a, whichever side of a's `from` it falls. */
static void apply(struct aggregation *a, const struct pevent *p)
{
    struct aggregation_event e = pevent_of(p);
    money_t previewed, got;
    expect_st(aggregation_preview_prorated(a, &e, &previewed), AGGREGATION_OK);
    if (p->t < a->from)
        expect_st(aggregation_add_carried(a, &e), AGGREGATION_OK);
    else
        expect_st(aggregation_add(a, &e), AGGREGATION_OK);
    expect_st(aggregation_prorated_units(a, &got), AGGREGATION_OK);
    if (money_cmp(previewed, got) != 0)
        fail_msg("preview differs from add");
}

static void prop_lago_brute_force(void **state)
{
    (void)state;
    reseed(1);
    /* CET with its change to summer time inside March 2026 (the 29th) */
    struct tz_zone *cet = zone_of("CET-1CEST,M3.5.0,M10.5.0/3");
    struct tz_zone *utc = zone_of("UTC0");
    for (int round = 0; round < 6000; round++) {
        bool in_utc = round % 4 == 3;
        const struct tz_zone *z = in_utc ? utc : cet;
        /* February's, March's and April's first instants, local */
        const tally_time feb = T(in_utc ? "2026-02-01T00:00:00Z" : "2026-01-31T23:00:00Z"),
                         mar = T(in_utc ? "2026-03-01T00:00:00Z" : "2026-02-28T23:00:00Z"),
                         apr = T(in_utc ? "2026-04-01T00:00:00Z" : "2026-03-31T22:00:00Z");
        /* the March state starts on the 1st or, a subscription started within it, later */
        tally_time from =
            below(4) ? mar : mar + (tally_time)below(20) * DAY + (tally_time)below(24) * HOUR;
        struct pevent ev[PROP_EVENTS_MAX];
        size_t n = 1 + below(PROP_EVENTS_MAX);
        /* days cluster so that same-day pairs are common; instants anywhere from mid-January */
        for (size_t i = 0; i < n; i++) {
            tally_time base = below(3) == 0 ? feb - 15 * DAY : from - 2 * DAY;
            tally_time span = apr - base;
            tally_time t = base + (tally_time)(next() % (uint64_t)span);
            if (below(3) == 0 && i > 0)
                t = ev[below(i)].t + (tally_time)below(6 * HOUR) - 3 * HOUR; /* near another */
            if (t >= apr)
                t = apr - 1;
            ev[i] = (struct pevent){t, (uint64_t)i + 1, (int)below(PROP_VALUES + 1), below(5) < 3};
        }
        struct pevent sorted[PROP_EVENTS_MAX];
        memcpy(sorted, ev, sizeof ev[0] * n);
        qsort(sorted, n, sizeof sorted[0], pevent_cmp);
        int64_t want_days = 0, want_present = 0;
        for (int v = 0; v <= PROP_VALUES; v++) {
            want_days += lago_days(z, sorted, n, v, from, apr);
            want_present += lago_present(sorted, n, v) ? 1 : 0;
        }
        /* arrival: shuffled; some of the events before `from` go through February's state and a
         * carry-over, the rest arrive late */
        shuffle(ev, n);
        struct aggregation prev, a;
        expect_st(aggregation_init(&prev, &seats, feb - 40 * DAY, from), AGGREGATION_OK);
        bool carry = below(2);
        bool prev_prorated = below(2);
        if (prev_prorated)
            expect_st(aggregation_set_prorated(&prev, z, 366), AGGREGATION_OK);
        size_t i = 0;
        if (carry) {
            for (; i < n && ev[i].t < from; i++) {
                struct aggregation_event e = pevent_of(&ev[i]);
                expect_st(aggregation_add(&prev, &e), AGGREGATION_OK);
            }
        }
        expect_st(aggregation_init(&a, &seats, from, apr), AGGREGATION_OK);
        expect_st(aggregation_set_prorated(&a, z, 31), AGGREGATION_OK);
        if (carry && below(2)) { /* a walk read before the carry: of nothing, and not kept */
            struct aggregation_walk none = {0};
            expect_st(aggregation_prorated_values(&a, NULL, MONEY_ZERO, &none), AGGREGATION_OK);
            assert_int_equal(none.count, 0);
            aggregation_walk_free(&none);
        }
        if (carry)
            expect_st(aggregation_carry_over(&prev, &a), AGGREGATION_OK);
        for (; i < n; i++)
            apply(&a, &ev[i]);
        /* ceil(Σ days / 31) at 5 decimals, in integers */
        int64_t scaled = (want_days * 100000 + 30) / 31;
        money_t want, got;
        assert_int_equal(money_from_coef(scaled, 5, &want), MONEY_OK);
        expect_st(aggregation_prorated_units(&a, &got), AGGREGATION_OK);
        if (money_cmp(want, got) != 0) {
            char b[MONEY_TEXT_MAX];
            for (size_t x = 0; x < n; x++)
                print_message("  ev t=%" PRId64 " day=%" PRId64 " seq=%" PRIu64 " v=%d add=%d %s\n",
                              sorted[x].t, day_in(z, sorted[x].t) - day_in(z, from), sorted[x].seq,
                              sorted[x].value, sorted[x].add, sorted[x].t < from ? "carried" : "");
            for (int v = 0; v <= PROP_VALUES; v++) {
                struct aggregation one;
                aggregation_init(&one, &seats, from, apr);
                aggregation_set_prorated(&one, z, 31);
                for (size_t x = 0; x < n; x++)
                    if (sorted[x].value == v)
                        apply(&one, &sorted[x]);
                money_t u1;
                aggregation_prorated_units(&one, &u1);
                char b1[MONEY_TEXT_MAX];
                money_format(u1, b1, sizeof b1);
                print_message("  value %d: %" PRId64 " days, tally %s\n", v,
                              lago_days(z, sorted, n, v, from, apr), b1);
                aggregation_free(&one);
            }
            print_message("  carry %d prev_prorated %d from %" PRId64 "\n", carry, prev_prorated,
                          from);
            money_format(got, b, sizeof b);
            fail_msg("round %d: got %s, want %" PRId64 " days / 31", round, b, want_days);
        }
        money_t units;
        expect_st(aggregation_units(&a, apr, &units), AGGREGATION_OK);
        assert_int_equal(money_cmp(units, money_from_int(want_present)), 0);
        aggregation_free(&prev);
        aggregation_free(&a);
        total_cases++;
    }
    tz_free(cet);
    tz_free(utc);
}

/* ---- Property: the walk a prorated graduated charge reads -------------------------------------
 *
 * Lago's rows for ProratedGraduatedService (its ClickHouse store's prorated_breakdown_query
 * with_remove), transcribed per value over its events sorted by time: a remove survives only
 * as the last event of its local day; of the survivors, an
 * operation equal to the previous one (a remove with none before) is dropped; each surviving
 * add counts the local days from max(its day, `from`'s) to its removal's, both included, or to
 * the period's last, and none when that removal is before `from`. Tally's one choice: an add
 * before the period that is present at `from` walks in the order of its value's earliest add
 * (Lago's, that add when the value was never removed before the period; Lago's walk reads the
 * earlier history, where a removal of another value can lower the running total: docs/API.md).
 * The walk is every add with days as +1, every
 * removal in the period as -1 with none, in (timestamp, sequence) order, consecutive entries
 * of the same days summed.
 */
struct walk_op {
    tally_time t;
    uint64_t seq;
    int64_t days;
    int value; /* +1 or -1 */
};

static int walk_op_cmp(const void *pa, const void *pb)
{
    const struct walk_op *a = pa, *b = pb;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static size_t lago_walk_ops(const struct tz_zone *z, const struct pevent *ev, size_t n, int value,
                            tally_time from, tally_time to, struct walk_op *out)
{
    const struct pevent *mine[PROP_EVENTS_MAX];
    size_t k = 0, m = 0, count = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].value == value)
            mine[k++] = &ev[i];
    const struct pevent *kept[PROP_EVENTS_MAX];
    bool prev_add = false;
    for (size_t i = 0; i < k; i++) {
        bool last_of_day = i + 1 == k || day_in(z, mine[i + 1]->t) != day_in(z, mine[i]->t);
        if (!mine[i]->add && !last_of_day)
            continue;
        if (mine[i]->add != prev_add)
            kept[m++] = mine[i];
        prev_add = mine[i]->add;
    }
    const struct pevent *first_add = NULL; /* the value's earliest add before `from` */
    for (size_t i = 0; i < k && mine[i]->t < from && !first_add; i++)
        if (mine[i]->add)
            first_add = mine[i];
    int64_t last = day_in(z, to - 1);
    for (size_t i = 0; i < m; i++) {
        if (!kept[i]->add) {
            if (kept[i]->t >= from)
                out[count++] = (struct walk_op){kept[i]->t, kept[i]->seq, 0, -1};
            continue;
        }
        int64_t start = day_in(z, kept[i]->t < from ? from : kept[i]->t), days;
        if (i + 1 == m)
            days = last - start + 1;
        else if (kept[i + 1]->t < from)
            days = 0;
        else
            days = day_in(z, kept[i + 1]->t) - start + 1;
        if (days == 0)
            continue;
        const struct pevent *at = kept[i]->t < from ? first_add : kept[i];
        out[count++] = (struct walk_op){at->t, at->seq, days, 1};
    }
    return count;
}

/* The walk of `a` (with e taken, e NULL: none) against the transcription's `want` (sorted). */
static void expect_walk(const struct aggregation *a, const struct aggregation_event *e,
                        const struct walk_op *want, size_t n, int round)
{
    struct aggregation_walk walk = {0};
    expect_st(aggregation_prorated_values(a, e, MONEY_ZERO, &walk), AGGREGATION_OK);
    size_t j = 0;
    int64_t running = 0, peak = 0;
    for (size_t i = 0; i < n; j++) {
        int64_t sum = 0, days = want[i].days;
        for (; i < n && want[i].days == days; i++) {
            sum += want[i].value;
            running += want[i].value;
            if (running > peak)
                peak = running;
        }
        if (j >= walk.count || walk.days[j] != days ||
            money_cmp(walk.values[j], money_from_int(sum)) != 0)
            fail_msg("round %d: walk entry %zu differs (want %" PRId64 " x %" PRId64 " days)",
                     round, j, sum, days);
    }
    assert_int_equal(walk.count, j);
    assert_int_equal(money_cmp(walk.peak, money_from_int(peak)), 0);
    assert_int_equal(walk.period_days, 31);
    aggregation_walk_free(&walk);
}

static void prop_walk_lago(void **state)
{
    (void)state;
    reseed(2);
    struct tz_zone *cet = zone_of("CET-1CEST,M3.5.0,M10.5.0/3");
    const tally_time feb = T("2026-01-31T23:00:00Z"), mar = T("2026-02-28T23:00:00Z"),
                     apr = T("2026-03-31T22:00:00Z");
    for (int round = 0; round < 3000; round++) {
        tally_time from = below(3) ? mar : mar + (tally_time)below(20) * DAY;
        struct pevent ev[PROP_EVENTS_MAX];
        size_t n = 1 + below(PROP_EVENTS_MAX);
        for (size_t i = 0; i < n; i++) {
            tally_time base = below(4) == 0 ? feb - 15 * DAY : from - 2 * DAY;
            tally_time t = base + (tally_time)(next() % (uint64_t)(apr - base));
            if (below(3) == 0 && i > 0)
                t = ev[below(i)].t + (tally_time)below(6 * HOUR) - 3 * HOUR;
            if (t >= apr)
                t = apr - 1;
            ev[i] = (struct pevent){t, (uint64_t)i + 1, (int)below(PROP_VALUES + 1), below(5) < 3};
        }
        /* arrival: shuffled; the events before `from` through a carry-over or late */
        shuffle(ev, n);
        struct aggregation prev, a;
        expect_st(aggregation_init(&prev, &seats, feb - 40 * DAY, from), AGGREGATION_OK);
        /* prorated as the engine's is (the same charge the period before): its days tell the
         * next period each value's earliest add */
        expect_st(aggregation_set_prorated(&prev, cet, 366), AGGREGATION_OK);
        expect_st(aggregation_init(&a, &seats, from, apr), AGGREGATION_OK);
        expect_st(aggregation_set_prorated(&a, cet, 31), AGGREGATION_OK);
        size_t i = 0;
        bool carry = below(2);
        for (; carry && i < n && ev[i].t < from; i++) {
            struct aggregation_event e = pevent_of(&ev[i]);
            expect_st(aggregation_add(&prev, &e), AGGREGATION_OK);
        }
        if (carry)
            expect_st(aggregation_carry_over(&prev, &a), AGGREGATION_OK);
        /* the state keeps its walk's operations from its first walk on: read it from the
         * first event, or only from a later one (the operations laid out then, and followed
         * after) */
        size_t first_read = i + (below(3) == 0 ? below(n - i + 1) : 0);
        for (; i < n; i++) {
            if (i < first_read) {
                apply(&a, &ev[i]);
                continue;
            }
            /* the walk with the event previewed is the walk after it */
            struct pevent taken[PROP_EVENTS_MAX];
            memcpy(taken, ev, sizeof ev[0] * (i + 1));
            qsort(taken, i + 1, sizeof taken[0], pevent_cmp);
            struct walk_op want[PROP_EVENTS_MAX];
            size_t w = 0;
            for (int v = 0; v <= PROP_VALUES; v++)
                w += lago_walk_ops(cet, taken, i + 1, v, from, apr, want + w);
            qsort(want, w, sizeof want[0], walk_op_cmp);
            struct aggregation_event e = pevent_of(&ev[i]);
            expect_walk(&a, &e, want, w, round);
            apply(&a, &ev[i]);
            expect_walk(&a, NULL, want, w, round);
            /* its adds' days are the state's Σ days */
            int64_t days = 0;
            for (size_t x = 0; x < w; x++)
                days += want[x].value > 0 ? want[x].days : 0;
            money_t units, expected;
            expect_st(aggregation_prorated_units(&a, &units), AGGREGATION_OK);
            assert_int_equal(money_from_coef((days * 100000 + 30) / 31, 5, &expected), MONEY_OK);
            if (money_cmp(units, expected) != 0)
                fail_msg("round %d: the walk's days are not the state's", round);
        }
        aggregation_free(&prev);
        aggregation_free(&a);
        total_cases++;
    }
    tz_free(cet);
}

static int setup(void **state)
{
    (void)state;
    seed_from_env("prorated unique", UINT64_C(20261125));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    seed_report("prorated unique", total_cases);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_readd),  cmocka_unit_test(test_same_day),
        cmocka_unit_test(test_reverse_order),     cmocka_unit_test(test_zone_carried_and_start),
        cmocka_unit_test(test_carry_over),        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_day_records_limit), cmocka_unit_test(prop_lago_brute_force),
        cmocka_unit_test(prop_walk_lago),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
