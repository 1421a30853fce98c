/*
 * core/aggregation: how accepted events become a billable quantity, one event at a time.
 *
 * What it owns:
 *   - struct aggregation: the state of one (charge, filter bucket, billing period) for one of
 *     Lago's six aggregation types, updated exactly by each event (aggregation_add) and
 *     readable at any moment (aggregation_units) at a cost that does not grow with the number
 *     of events;
 *   - the rule by which Lago decides that an event's property counts as a number;
 *   - carrying a recurring metric's state into the next period, and late events;
 *   - the metric's rounding of units (aggregation_round);
 *   - which charge filter an event belongs to (aggregation_filter_matches/_bucket);
 *   - for a sum priced by the dynamic charge model, Σ of its events' precise_total_amount_cents
 *     (aggregation_keep_precise), Lago's aggregation_result.precise_total_amount_cents;
 *   - for a sum or a unique count priced by a prorated charge, its prorated units
 *     (aggregation_set_prorated).
 *
 * Why shaped so. The credit cost of an event is fee(units after) - fee(units before)
 * (DESIGN.md §3), so every type is an incremental state rather than a query over stored
 * events, and every type is exact: numbers are money_t (38 digits) and the time-weighted sum
 * keeps its integral in 512-bit integers, so the only failures are reported ones. Results do
 * not depend on the order in which events arrive, only on their (timestamp, sequence):
 * Lago recomputes from stored events ordered by timestamp, so a late event must land where
 * a recomputation would put it (see "Order" below).
 *
 * Lago's semantics (lago-api app/services/billable_metrics/aggregations/<type>_service.rb and
 * app/services/events/stores/postgres_store.rb, postgres/{unique_count,weighted_sum}_query.rb):
 *
 *   type          units                                       events_count (Lago's count)
 *   count         events                                      events
 *   sum           Σ value (recurring: since the first period) numeric events (idem)
 *   max           max value, 0 with none (may be negative)    numeric events
 *   latest        value of the greatest (timestamp, sequence), numeric events
 *                 0 with none, and 0 when it is negative
 *   unique_count  values whose last operation is "add"        = units (Lago sets count so)
 *   weighted_sum  ceil20(∫ level dt / duration), see below     numeric events of the period
 *
 *   Numbers. sum, max, latest and weighted_sum read only events whose property is present
 *   and numeric (Lago's presence and numeric conditions): others answer AGGREGATION_IGNORED
 *   and change nothing, not even the count. Lago's test is the regex ^-?\d+(\.\d+)?$ on the
 *   property's text: a JSON number always passes (it may carry an exponent: 1e3 is 1000),
 *   a JSON string passes only in that plain form ("007" is 7, "1e3", "+1", " 1", "1." and
 *   ".5" are not numbers). A number that passes but does not fit a money_t (more than 38
 *   digits or decimals) is AGGREGATION_ERR_OVERFLOW / _PRECISION: Tally cannot hold it
 *   exactly, so the caller refuses the event rather than bill something else.
 *
 *   unique_count. Per distinct value text, the operation of the event with the greatest
 *   (timestamp, sequence) decides: "add" (or no operation_type) makes it present, "remove"
 *   absent. This is what Lago's LAG window over events ordered by timestamp sums to. An
 *   absent property is one distinct value of its own (Lago's SQL groups NULLs together),
 *   distinct from "". Any operation_type other than "add"/"remove" is refused
 *   (AGGREGATION_ERR_OPERATION): Lago does not validate it and its SQL then counts such an
 *   event as a removal, even of a value never added, which can make the count negative.
 *
 *   weighted_sum. The property is a delta to a level that starts at the initial value (0, or
 *   the previous period's final level for a recurring metric) at `from`. Lago's query sums
 *   level_i × seconds(t_i → t_i+1) / (charges_duration_in_days × 86400) with the last
 *   segment running to the period's end, then ceils to 20 decimals. Here the integral is
 *   kept as ∫ = level × (x - from) - Σ delta_i × (t_i - from), which is linear in the events,
 *   so an out-of-order event lands exactly where a time-sorted recomputation puts it, in O(1)
 *   time and memory. The denominator is `duration` (aggregation_set_duration; default
 *   to - from): Lago divides by the whole billing period's days even when the subscription
 *   started within it, and by whole days across a DST change. Tally divides exactly and
 *   ceils once at 20 decimals; Lago divides each segment in PostgreSQL numeric (about 20
 *   significant digits) before summing, so the two may differ beyond the 16th digit.
 *   Current usage: Lago computes it up to the period's end (charges_to_datetime), i.e. it
 *   assumes the current level holds until `to`. aggregation_units with now >= to gives that;
 *   an earlier `now` gives the part accrued so far (Tally's addition). With now = to the
 *   units change only when an event arrives (d × (to - t) / duration), never with time
 *   alone, so debiting fee(after) - fee(before) per event telescopes to the period's fee
 *   with nothing left to accrue at period close: the engine should read units at `to`.
 *
 *   Prorated sum (a recurring sum_agg whose charge has prorated: true). Lago's
 *   Events::Stores::PostgresStore#prorated_sum weighs each event of the period by the days
 *   from its local date to the period's last local date, both included, over the billing
 *   period's days: value × (DATE(to) - DATE(timestamp) + 1) / charges_duration_in_days, in
 *   the customer's zone; the value carried from earlier periods weighs the days from `from`
 *   (persisted_duration / charges_duration, ProratedAggregations::SumService#persisted_sum),
 *   up to the last day, or to the day before it for a subscription that ended by an upgrade
 *   (Subscription#date_diff_with_timezone's day off, aggregation_set_upgraded);
 *   the total is ceiled to 5 decimals (compute_event_aggregation.ceil(5)). A negative value
 *   (a removal) takes back the days from its own date on: the day of a removal is not
 *   billed, the day of an addition is. Kept exactly:
 *   Σ value × days in a money_t beside the sum, divided once when read, so a prorated sum is
 *   as order-independent as a sum and costs a local date per event.
 *
 *   Prorated unique count (a recurring unique_count_agg whose charge has prorated: true).
 *   Lago's Events::Stores::Postgres::UniqueCountQuery#prorated_query, per value over its
 *   events ordered by timestamp, all of them since the first (recurring), dates in the
 *   customer's zone: (1) a remove is ignored when a later event of the value on the same local
 *   date is an add; (2) of the rest, an operation equal to the previous one (a remove when
 *   there is none) is dropped; (3) each remaining add counts DATE(next + 1 day) -
 *   DATE(max(add, from)) days, `next` the following remaining event (its remove) or the
 *   period's end, 0 when that remove is before `from`; Σ / charges_duration_in_days, ceiled to
 *   5 decimals (UniqueCountService: .ceil(5)). Put otherwise, a local day of the period counts
 *   for a value when the value is present at the day's start or is added on it: the day of a
 *   removal counts, an add and a removal on one day count that day, a removal and a re-add on
 *   one day change nothing, a value present before the period counts from its first day.
 *   Kept here as that: per value, its last operation before `from` (the carry) and one record
 *   per local day of the period with operations (any add that day, the day's last
 *   operation), each operation changing one of them and the state's Σ days (an int64) by a
 *   difference over the days up to the value's next record, so the result is exact and
 *   order-independent. Tally counts calendar days where Lago adds 24 hours before taking the
 *   date (they differ only when a clock change falls in the day after a removal near
 *   midnight), and divides the whole Σ once where Lago divides each add's days in numeric
 *   before summing (they may differ in the last of the 5 decimals, Lago's being the higher).
 *
 * Order. Every type is a function of the set of events and their (timestamp, sequence), never
 * of arrival order: count, sum and weighted_sum are sums; max is a max; latest and
 * unique_count compare (timestamp, sequence), the sequence (arrival order, unique and
 * increasing) breaking timestamp ties as Lago's created_at does. Where Lago itself depends
 * on order: its latest ties go to the greater created_at (same rule), and its unique_count
 * and weighted_sum ties on timestamp are decided by PostgreSQL's unspecified row order
 * (weighted_sum is unaffected: tied rows get zero-length segments). The only order-dependent
 * outcome here is an overflow of a sum whose intermediate total leaves money_t while the
 * final one would not: the offending event is refused with the state unchanged.
 *
 * Late events (timestamp before the current period's `from`). The rule:
 *   1. An event belongs to the period containing its timestamp. aggregation_add refuses any
 *      other (AGGREGATION_ERR_OUT_OF_PERIOD) and the caller routes it; nothing is dropped
 *      silently here.
 *   2. If the caller still holds that past period's state (not yet invoiced, or kept for a
 *      grace period), it applies the event there with aggregation_add: the result equals a
 *      recomputation of that period, whatever the order. What to bill for a period already
 *      invoiced (a credit, an adjustment, nothing as Lago does) is the caller's decision.
 *   3. For a recurring metric (sum, unique_count, weighted_sum) the event also changes every
 *      later period, because Lago's recurring scope reads all events since the start: the
 *      caller applies it to each later state with aggregation_add_carried, which gives
 *      exactly what aggregation_carry_over would have carried had the event arrived in time.
 *      A state built from nothing takes the events that came before its period began with
 *      aggregation_carry_in instead: the same state, its peak starting where carry-over
 *      starts it.
 *      Non-recurring metrics (and count, max, latest, never recurring) ignore other periods.
 *   4. An event later than `to` (a future period) is refused the same way.
 *
 * Memory (sizeof(struct aggregation): 256 bytes on x86-64; no heap for most types):
 *   count, max, latest, weighted_sum: O(1), no allocation, ever.
 *   sum: O(1), its precise amounts too; with aggregation_keep_values (for the percentage
 *        model), 48 bytes per numeric event (value + order key), arrays doubled on growth;
 *        an out-of-order event costs a memmove of the kept values after it.
 *   unique_count: one table entry (40 bytes, load ≤ 3/4) per distinct value ever seen in
 *        the period, present or removed (a removed value must stay to order a late add),
 *        plus the value's bytes once. Carry-over copies the table. Prorated, also a track per
 *        table slot (40 bytes) and 40 bytes per (value, local day of the period with an
 *        operation of that value), at most AGGREGATION_UNIQUE_DAY_RECORDS_MAX of them; an
 *        out-of-order operation costs a memmove of the value's later day records (at most a
 *        period's days). Carry-over starts the next period's tracks from the table alone.
 *
 * Thread safety: no globals; a state belongs to one thread at a time (the engine's writer).
 * Every function may be called from any thread on states that thread owns; the filter
 * functions read only their arguments.
 */
#ifndef TALLY_CORE_AGGREGATION_H
#define TALLY_CORE_AGGREGATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/billable_metric.h"
#include "core/event.h"
#include "core/money.h"
#include "core/timestamp.h"
#include "core/tz.h"

/* Most distinct values one unique_count state holds (present or removed). */
#define AGGREGATION_UNIQUE_VALUES_MAX (1u << 20)
/* Longest value text a unique_count state keeps, in bytes (event.h's property limit). */
#define AGGREGATION_VALUE_TEXT_MAX EVENT_PROPERTY_VALUE_MAX
/* Longest billing period a prorated sum counts days over (a leap year). */
#define AGGREGATION_PRORATED_DAYS_MAX 366
/* Most day records a prorated unique_count state keeps, over all its values: one per value and
 * local day of the period on which that value has an operation (AGGREGATION_ERR_LIMIT past it;
 * 40 bytes each). A value has at most a period's days of them. */
#define AGGREGATION_UNIQUE_DAY_RECORDS_MAX (1u << 21)
/* Most per-event values a sum state keeps for the percentage model
 * (AGGREGATION_ERR_KEPT_VALUES past it). */
#define AGGREGATION_KEPT_VALUES_MAX (1u << 20)
/* aggregation_keep_values's `first` for every value (up to AGGREGATION_KEPT_VALUES_MAX). */
#define AGGREGATION_KEEP_ALL SIZE_MAX
/* Lago ceils a weighted sum to this many decimals (WeightedSumService: .ceil(20)). */
#define AGGREGATION_WEIGHTED_SCALE 20
/* Lago's wildcard in a charge filter's values: the one value ["__ALL_FILTER_VALUES__"]. */
#define AGGREGATION_FILTER_WILDCARD "__ALL_FILTER_VALUES__"
/* Lago ceils a prorated sum to this many decimals (ProratedAggregations::SumService .ceil(5)). */
#define AGGREGATION_PRORATED_SCALE 5
/* 512-bit integers: weighted_sum's exact integral (see aggregation.c for the bound). */
#define AGGREGATION_WIDE_LIMBS 8

enum aggregation_status {
    AGGREGATION_OK = 0,
    AGGREGATION_IGNORED,              /* not counted, as Lago: property absent or not numeric */
    AGGREGATION_ERR_OUT_OF_PERIOD,    /* timestamp outside the state's period: route it */
    AGGREGATION_ERR_OVERFLOW,         /* a value or result reaches 10^38 (money_t's bound) */
    AGGREGATION_ERR_PRECISION,        /* exact value needs more than 38 digits or decimals */
    AGGREGATION_ERR_OPERATION,        /* operation_type is neither "add" nor "remove" */
    AGGREGATION_ERR_LIMIT,            /* a named limit above is reached */
    AGGREGATION_ERR_NO_MEMORY,        /* malloc/realloc failed; the state is unchanged */
    AGGREGATION_ERR_NOW_BEFORE_EVENT, /* weighted_sum read at `now` before an event it holds */
    AGGREGATION_ERR_INVALID,          /* bad arguments (NULL, from >= to, wrong type, ...) */
    AGGREGATION_ERR_GROUPS, /* engine/usage: the event would open a pricing group past its limit */
    AGGREGATION_ERR_KEPT_VALUES, /* a sum keeping every value holds AGGREGATION_KEPT_VALUES_MAX */
};

/* A static English message for `status` ("unknown aggregation status" out of range). */
const char *aggregation_status_text(enum aggregation_status status);

/* One event as an aggregation reads it. Everything is borrowed for the call. */
struct aggregation_event {
    tally_time timestamp;
    /* Arrival order: unique and increasing per organization (Lago's created_at). It breaks
     * ties of timestamp for latest and unique_count. */
    uint64_t sequence;
    /* properties[field_name] as Lago's properties->>field reads it: a string's contents, a
     * number's or boolean's JSON text. NULL when absent or JSON null. Not read by count. */
    const char *value;
    size_t value_len;
    /* The property was a JSON string: Lago's strict numeric form applies (no exponent).
     * false (a number, or not known) also accepts a JSON number's exponent. */
    bool value_is_string;
    /* properties.operation_type, read by unique_count only: NULL or "add" adds, "remove"
     * removes, anything else is refused. NUL-terminated. */
    const char *operation_type;
    /* The event's precise_total_amount_cents, NULL when it has none (it then adds 0). Read
     * only by a sum state that keeps them (aggregation_keep_precise). */
    const money_t *precise_total_amount_cents;
    /* What the event's value costs alone (the percentage model's per-transaction price), set
     * by the caller from aggregation_number: read only by a sum state that keeps the total
     * (aggregation_keep_priced), which refuses a numeric event without it (INVALID). */
    const money_t *priced_amount;
};

/* Where a sum's kept values are ordered: (timestamp, sequence). */
struct aggregation_order {
    tally_time timestamp;
    uint64_t sequence;
};

struct aggregation_unique_entry; /* aggregation.c */
struct aggregation_walk_cache;   /* aggregation.c */
struct aggregation_unique_walk;  /* aggregation.c */
struct aggregation_unique_track; /* aggregation.c */

/* What a prorated state counts days in: the customer's zone (borrowed from the tz database,
 * which outlives every state), the local day numbers of `from` and of the last day before
 * `to`, and the billing period's days, Lago's divisor. `carried_day_off`: a sum's value
 * carried from before `from` does not weigh the last day (aggregation_set_upgraded). */
struct aggregation_days {
    const struct tz_zone *zone;
    int64_t first_day, last_day, period_days;
    bool carried_day_off;
};

/*
 * One state. The caller owns the struct (it may live in an array); the fields are private:
 * read and change them only through the functions below. Initialize with aggregation_init,
 * release with aggregation_free.
 */
struct aggregation {
    enum billable_metric_aggregation kind;
    bool recurring;
    /* nothing but aggregation_carry_in and aggregation_carry_over took events yet: the peak
     * follows the carried units */
    bool past_only;
    size_t keep_values; /* how many of the earliest values to keep: 0 none */
    bool keep_precise;
    money_t precise; /* sum with keep_precise: Σ precise_total_amount_cents, exact */
    bool keep_priced;
    money_t priced; /* sum with keep_priced: Σ priced_amount, exact */
    tally_time from, to, duration;
    int64_t events_count;
    /* count, sum, unique_count: the most the units reached since the period began (carried
     * values included), never below 0; what a pay-in-advance charge bills (aggregation_peak) */
    money_t peak;
    union {
        struct {
            money_t total;
            /* Prorated (aggregation_set_prorated): Σ value × days present. */
            bool prorated;
            money_t day_units;
            struct aggregation_days days;
            /* A prorated sum keeping every value: its walk (aggregation_prorated_values), kept
             * from its first value on; NULL before. */
            struct aggregation_walk_cache *walk;
        } sum;
        struct {
            bool has_value;
            money_t value;
        } max;
        struct {
            bool has_value;
            money_t value;
            struct aggregation_order at;
        } latest;
        struct {
            struct aggregation_unique_entry *entries; /* open addressing, capacity 2^k */
            size_t capacity, used, present;
            char *pool; /* the values' bytes, back to back */
            size_t pool_len, pool_cap;
            uint64_t key[2]; /* SipHash key */
            /* Prorated (aggregation_set_prorated): Σ over values of their days present, exact,
             * and per value (by the entry's ordinal) what decides those days; day_records
             * counts the tracks' day records together (AGGREGATION_UNIQUE_DAY_RECORDS_MAX). */
            bool prorated;
            int64_t day_units;
            struct aggregation_unique_track *tracks;
            size_t day_records;
            struct aggregation_days days;
            /* Prorated: every value's walk operations, kept in order once a walk was read
             * (aggregation_prorated_values); allocated by aggregation_set_prorated. */
            struct aggregation_unique_walk *walk;
        } unique;
        struct {
            uint64_t level[AGGREGATION_WIDE_LIMBS];  /* initial + Σ delta, × 10^38 */
            uint64_t moment[AGGREGATION_WIDE_LIMBS]; /* Σ delta × (t - from) µs, × 10^38 */
            bool has_events;
            tally_time last; /* greatest timestamp aggregated */
        } weighted;
    } u;
    struct {
        struct aggregation_order *order;
        money_t *values;
        size_t count, cap;
    } kept;
};

/*
 * Starts an empty state for metric `m` (its aggregation and recurring flag are copied; m is
 * not kept) over the period [from, to). AGGREGATION_ERR_INVALID for a NULL argument, an
 * unknown type, from >= to, or a recurring flag on count, max or latest. The state owns no
 * memory yet; a state that did must be freed first.
 */
enum aggregation_status aggregation_init(struct aggregation *a, const struct billable_metric *m,
                                         tally_time from, tally_time to);

/* Releases what the state owns. Safe on a zeroed or already freed state; init again to reuse. */
void aggregation_free(struct aggregation *a);

/*
 * weighted_sum's denominator, in microseconds: Lago's charges_duration_in_days × 86400 s,
 * which is the full billing period even when the subscription starts inside it. Defaults to
 * to - from. AGGREGATION_ERR_INVALID if duration <= 0 or the state is another type.
 */
enum aggregation_status aggregation_set_duration(struct aggregation *a, tally_time duration);

/*
 * unique_count's hash key (SipHash-1-3). Values come from clients, so the engine should pass
 * a secret random key (sys/entropy) to keep crafted values from colliding; the default is a
 * fixed key. Only on an empty unique_count state (AGGREGATION_ERR_INVALID otherwise).
 */
enum aggregation_status aggregation_set_hash_key(struct aggregation *a, uint64_t k0, uint64_t k1);

/*
 * Keeps the values of a sum state's `first` earliest numeric events by (timestamp, sequence),
 * for the percentage charge model (aggregation_values): AGGREGATION_KEEP_ALL keeps every one
 * (AGGREGATION_ERR_KEPT_VALUES past AGGREGATION_KEPT_VALUES_MAX), 0 none. A bounded state holds at
 * most `first` values whatever the number of events: a later event is counted but not kept,
 * an earlier one pushes the latest kept value out. Only on an empty sum state
 * (AGGREGATION_ERR_INVALID otherwise). count needs none: its values are all 1.
 */
enum aggregation_status aggregation_keep_values(struct aggregation *a, size_t first);

/*
 * Sums the precise_total_amount_cents of a sum state's events (aggregation_precise_total), for
 * the dynamic charge model, over the same events as its units: those Lago's sum counts (a
 * numeric field; Lago's store sums the precise amounts over the same scope), the carried ones
 * of a recurring metric included. Only on an empty sum state (AGGREGATION_ERR_INVALID
 * otherwise). Other states need none: dynamic is refused on them. A sum that does not keep
 * them never fails on a precise amount it could not hold.
 */
enum aggregation_status aggregation_keep_precise(struct aggregation *a, bool keep);

/*
 * Sums the priced_amount of a sum state's events (aggregation_priced_total), for the
 * percentage model's per-transaction min and max: the total over every event, so that a
 * price needs only the first events' values beside it (charge_model_input.priced_total).
 * Carried into the next period as the units are. What the caller prices with is its own: a
 * state keeps the total of one pricing, and a new pricing needs a new state. Only on an empty
 * sum state (AGGREGATION_ERR_INVALID otherwise).
 */
enum aggregation_status aggregation_keep_priced(struct aggregation *a, bool keep);

/* Whether the state sums its events' prices (aggregation_keep_priced). */
bool aggregation_keeps_priced(const struct aggregation *a);

/* Σ priced_amount of the events taken (0 when the state keeps none). */
money_t aggregation_priced_total(const struct aggregation *a);

/*
 * What aggregation_priced_total would be after aggregation_add(e), without changing the state:
 * unchanged for an event the sum ignores or a state that keeps none.
 */
enum aggregation_status aggregation_preview_priced(const struct aggregation *a,
                                                   const struct aggregation_event *e,
                                                   money_t *priced);

/*
 * The value a sum state would take from e, exactly as aggregation_add reads it:
 * AGGREGATION_IGNORED when Lago would not count it (absent, not numeric), an error when it
 * does not fit. Reads only e's value; INVALID for a state that is not a sum.
 */
enum aggregation_status aggregation_number(const struct aggregation *a,
                                           const struct aggregation_event *e, money_t *value);

/*
 * What a state of type `kind` makes of event e alone, with no state: AGGREGATION_OK or
 * AGGREGATION_IGNORED (it would be taken, or passed over as Lago passes it over), or the
 * refusal aggregation_add would answer whatever the state holds: OPERATION (a unique count's
 * operation_type), OVERFLOW or PRECISION (a number that does not fit a money_t). Read by the
 * same functions aggregation_add reads e with, so the two never differ. A refusal that depends
 * on the state (a total past 10^38, a limit) is aggregation_add's alone. Why: an event is
 * checked against its metric's rules when it is accepted, whether or not a charge counts it
 * yet; one accepted unchecked made a later charge's usage fail on it (an audit).
 */
enum aggregation_status aggregation_check(enum billable_metric_aggregation kind,
                                          const struct aggregation_event *e);

/*
 * Makes an empty sum or unique_count state prorated: beside the sum (the count) it weighs each
 * value by the days it is present in the period (see "Prorated sum" and "Prorated unique
 * count" above), counted in local dates of `zone` (borrowed; must outlive the state and
 * its copies), over `period_days` (Lago's charges_duration_in_days: the whole billing period's
 * days, even when the state's [from, to) is shorter). AGGREGATION_ERR_INVALID for another type,
 * a state that took something, period_days outside 1..AGGREGATION_PRORATED_DAYS_MAX or fewer
 * than [from, to) spans, or a zone that cannot read from or to; AGGREGATION_ERR_NO_MEMORY (a
 * unique count's table that grew before its first value was refused), the state then not
 * prorated.
 */
enum aggregation_status aggregation_set_prorated(struct aggregation *a, const struct tz_zone *zone,
                                                 int64_t period_days);

/*
 * Marks an empty prorated state as the usage of a subscription that ended by an upgrade, its
 * termination's local day being the state's last: a sum's value carried from before `from`
 * then weighs the days from the first to the day before the last (0 when the state has one
 * day), as Lago's Subscription#date_diff_with_timezone takes a day off when `terminated? &&
 * upgraded?` for ProratedAggregations::SumService#persisted_sum: the new plan's subscription
 * weighs that day from its own start, so the carried units cost the period once. Values of the
 * period keep their days (Lago bills the upgrade day in both invoices for them), and so does a
 * unique count (Lago's prorated unique count query has no such correction): for those this
 * is a no-op. AGGREGATION_ERR_INVALID on a state that is not prorated or took something.
 */
enum aggregation_status aggregation_set_upgraded(struct aggregation *a);

/* Whether the state is a prorated sum or unique count (aggregation_set_prorated). */
bool aggregation_is_prorated(const struct aggregation *a);

/*
 * A prorated state's prorated units before the metric's rounding: Σ value × days / period_days
 * (a unique count: Σ days present / period_days), ceiled to AGGREGATION_PRORATED_SCALE
 * decimals (a sum's may be negative). AGGREGATION_ERR_INVALID on
 * a state that is not prorated, OVERFLOW if it does not fit.
 */
enum aggregation_status aggregation_prorated_units(const struct aggregation *a, money_t *units);

/*
 * What aggregation_prorated_units would be after aggregation_add(e) (or, for an event before
 * `from`, aggregation_add_carried), without changing the state.
 */
enum aggregation_status aggregation_preview_prorated(const struct aggregation *a,
                                                     const struct aggregation_event *e,
                                                     money_t *units);

/* Whether the state sums its events' precise amounts (aggregation_keep_precise). */
bool aggregation_keeps_precise(const struct aggregation *a);

/* Σ precise_total_amount_cents of the events taken (0 when none are kept). */
money_t aggregation_precise_total(const struct aggregation *a);

/*
 * What aggregation_precise_total would be after aggregation_add(e), without changing the
 * state: unchanged for an event the sum ignores or a state that keeps none.
 */
enum aggregation_status aggregation_preview_precise(const struct aggregation *a,
                                                    const struct aggregation_event *e,
                                                    money_t *precise);

/*
 * Applies one event. AGGREGATION_OK: aggregated. AGGREGATION_IGNORED: Lago would not count
 * it (see "Numbers"); nothing changed. Any error leaves the state exactly as it was:
 * OUT_OF_PERIOD (timestamp not in [from, to)), OVERFLOW/PRECISION (the value or the new
 * total does not fit), OPERATION, LIMIT, NO_MEMORY, INVALID.
 */
enum aggregation_status aggregation_add(struct aggregation *a, const struct aggregation_event *e);

/*
 * Applies to a recurring state an event of an earlier period (timestamp < from, else
 * AGGREGATION_ERR_OUT_OF_PERIOD), as carry-over would have brought it: sum adds the value
 * and counts the event, unique_count records the operation at its own (timestamp,
 * sequence), weighted_sum adds the delta to the initial level (not counted: Lago counts
 * only the period's events). AGGREGATION_ERR_INVALID on a non-recurring state.
 * A late event: it came while the period ran, so the units it leaves count toward the peak
 * like a period's event's (aggregation_peak: in the order the events came).
 */
enum aggregation_status aggregation_add_carried(struct aggregation *a,
                                                const struct aggregation_event *e);

/*
 * The same for an event that was there when the period began, as a build from nothing takes
 * the past it carries: the state ends as aggregation_add_carried leaves it, but the peak is
 * the units the carried past comes to (never below 0), as aggregation_carry_over starts it,
 * not the most they reached along the way (that was an earlier period's peak: an audit found
 * a restart billing a pay-in-advance charge on it). Only before anything else of the period:
 * AGGREGATION_ERR_INVALID once the state took an event by aggregation_add or
 * aggregation_add_carried (the peak they raised is billed already and must not go down).
 */
enum aggregation_status aggregation_carry_in(struct aggregation *a,
                                             const struct aggregation_event *e);

/*
 * Starts `next` (initialized, empty, same type, recurring, next->from >= prev->to) from
 * `prev`'s end state: sum's total, count and kept values; unique_count's table (with the
 * hash key); weighted_sum's final level as the initial one. `prev` is unchanged.
 * AGGREGATION_ERR_INVALID otherwise; AGGREGATION_ERR_NO_MEMORY leaves `next` empty.
 */
enum aggregation_status aggregation_carry_over(const struct aggregation *prev,
                                               struct aggregation *next);

/*
 * The units before the metric's rounding. `now` is read by weighted_sum only: the integral
 * runs to clamp(now, from, to) (now >= to: Lago's value, see weighted_sum above);
 * AGGREGATION_ERR_NOW_BEFORE_EVENT if that instant precedes an event the state holds.
 * OVERFLOW/PRECISION when the value does not fit a money_t (weighted_sum only).
 */
enum aggregation_status aggregation_units(const struct aggregation *a, tally_time now,
                                          money_t *units);

/*
 * What aggregation_add would make of the state, without changing it: the units (before
 * rounding) and events count after the event, to the period's end, for every type (estimates
 * and holds price an event's step with it). An event Lago would ignore leaves both as they
 * are.
 */
enum aggregation_status aggregation_preview(const struct aggregation *a,
                                            const struct aggregation_event *e, money_t *units,
                                            int64_t *events_count);

/*
 * The most the units reached since the period began, in the order the events were added
 * (never below 0): Lago's max_aggregation, on which it bills a pay-in-advance charge, so that
 * what an event billed is never taken back by a later one that lowers the aggregate (a unique
 * count's remove, a negative sum). 0 for max, latest and weighted_sum (never in advance).
 */
money_t aggregation_peak(const struct aggregation *a);

/* Lago's aggregation count (the table above): the charge model's events_count. */
int64_t aggregation_events_count(const struct aggregation *a);

/*
 * weighted_sum's current level: the initial value plus every delta (Lago's
 * total_aggregated_units). AGGREGATION_ERR_INVALID for another type.
 */
enum aggregation_status aggregation_weighted_level(const struct aggregation *a, money_t *level);

/*
 * Whether the state has taken nothing: no event (not even one a unique count removed again),
 * no kept value, no carried level.
 */
bool aggregation_is_empty(const struct aggregation *a);

/*
 * Whether the whole state lies in the struct (count, max, latest, weighted_sum, and a sum that
 * keeps no values): a copy of the struct is then a snapshot of it, and copying it back takes
 * later events out. False for states that own memory (unique_count, a sum keeping values).
 */
bool aggregation_is_flat(const struct aggregation *a);

/* How many of its earliest events' values the state keeps (aggregation_keep_values): 0 none,
 * AGGREGATION_KEEP_ALL every one. */
size_t aggregation_keeps_values(const struct aggregation *a);

/*
 * The kept values of a sum state in (timestamp, sequence) order, Lago's events_values order
 * (ORDER BY timestamp): borrowed until the state next changes. Count 0 and NULL when none
 * are kept.
 */
void aggregation_values(const struct aggregation *a, const money_t **values, size_t *count);

/*
 * The kept values as they would be after aggregation_add(e), `value` being what the sum takes
 * from e: e's in its (timestamp, sequence) place, the latest pushed out past a bounded keep.
 * `out` (the caller's) holds at least aggregation_values' count + 1; *count gets how many are
 * written. Only for a state that keeps values and an event it would take.
 */
void aggregation_preview_values(const struct aggregation *a, const struct aggregation_event *e,
                                money_t value, money_t *out, size_t *count);

/*
 * What a prorated graduated charge walks (charge_model_input's event_value_days): the full
 * values in (timestamp, sequence) order, consecutive ones present alike gathered into one
 * entry (the walk telescopes over them), so there are about as many as the period has days.
 * Start it zeroed; aggregation_walk_free releases its arrays.
 */
struct aggregation_walk {
    money_t *values;
    int64_t *days; /* each entry's days present */
    size_t count, cap;
    int64_t period_days; /* the divisor (aggregation_set_prorated's) */
    money_t running;     /* the running total after the last entry */
    money_t peak;        /* the highest running total, value by value (the flat amounts') */
};

void aggregation_walk_free(struct aggregation_walk *walk);

/*
 * A prorated sum keeping every value, as a prorated graduated charge walks it, into `walk`
 * (zeroed or used before; the caller frees it): first the values before the period as one,
 * their total, when above 0 (Lago's recurring_value), present the period's days from `from`;
 * then the values of the period in (timestamp, sequence) order with the days from their local
 * date to the period's last, both included, consecutive ones of the same days in one entry.
 * With `e` (NULL for none), `value` comes in e's place, as aggregation_add(e) would put it.
 * The running total starts at the carried entry (else 0), and `peak` is the highest it reaches
 * after any one value.
 * Cost: the state keeps its walk as of its last change and follows the values appended after
 * it (the usual arrival, in time order): then this copies the walk's entries (about one a day)
 * and adds e's if e comes last. A value arriving out of order, or before the period, makes the
 * next call read every kept value again (about 20 ns each). Only the thread that owns the
 * state may call this: it refills that kept walk.
 * A prorated unique count walks its values' operations instead (`value` unused): in
 * (timestamp, sequence) order, each add that makes a value present as 1 with the days it is
 * present from it (its own local day to its removal's, both included, or to the period's
 * last), each removal of a present value as -1 with none; the values present at `from` come
 * first, in the order of their earliest add before it (Lago's: the add that made the value
 * present, which adds sent again do not move), present from the first day. Which
 * operations count is Lago's (aggregation.h, "Prorated unique count"): on a day a value is
 * absent at the start of, its first add; on a day it ends absent after being present, its
 * last operation. With `e`, as aggregation_add(e) would leave the state. Cost: the first call
 * reads every value's day records and sorts their operations, which the state then keeps in
 * order as events change them (a binary search and a move of the operations after the
 * changed one: none for an event after the others); each call then lays out the walk from the
 * kept operations, about 5 ns each, with e's value's own replaced.
 * AGGREGATION_ERR_INVALID for another state or a zone that cannot read a timestamp, OVERFLOW if
 * a total does not fit, NO_MEMORY.
 */
enum aggregation_status aggregation_prorated_values(const struct aggregation *a,
                                                    const struct aggregation_event *e,
                                                    money_t value, struct aggregation_walk *walk);

/*
 * The metric's rounding of units (Lago's ApplyRoundingService): none, round (half up),
 * ceil or floor at rounding_precision decimals; a negative precision rounds to tens,
 * hundreds... (123.456 at -2: round 100, ceil 200). AGGREGATION_ERR_INVALID for a precision
 * outside BILLABLE_METRIC_PRECISION_MIN..MAX, OVERFLOW if the result reaches 10^38.
 */
enum aggregation_status aggregation_round(const struct billable_metric *m, money_t units,
                                          money_t *out);

/* ---- Charge filters --------------------------------------------------------------------- */

/* One key of a charge filter and the values it accepts (all borrowed). */
struct aggregation_filter_key {
    const char *key;
    const char *const *values; /* exactly {AGGREGATION_FILTER_WILDCARD}: the wildcard */
    size_t value_count;
};

/* A charge filter's `values` object: every key must match. */
struct aggregation_filter {
    const struct aggregation_filter_key *keys;
    size_t key_count;
};

/*
 * Whether an event's properties match filter `f` (Lago's ChargeFilters::EventMatchingService):
 * for every key, the event has the property and its value is one of the key's values, or
 * the key's values are the wildcard. What the wildcard accepts depends on `m`:
 *   m == NULL: any present value (EventMatchingService, which Lago uses for pay in advance);
 *   m != NULL: a value declared for that key in the metric's filters (Lago's invoice query
 *              expands the wildcard so: a value the metric does not declare falls to the
 *              default bucket at invoicing). The engine should pass the metric.
 * A property whose value is NULL (JSON null) matches only a wildcard, and only with m NULL.
 * A key a filter repeats in the properties: the first occurrence is read.
 */
bool aggregation_filter_matches(const struct billable_metric *m, const struct aggregation_filter *f,
                                const struct event_property *props, size_t n);

/*
 * The bucket of an event among a charge's filters, or filter_count for the default bucket (no
 * filter matches). One event goes to exactly one bucket. Of matching filters that nest, the
 * narrowest takes it, as Lago's ChargeFilters::MatchingAndIgnoredService: a filter nests in
 * another when it has each of the other's keys with values among the other's (a wildcard is
 * every value the metric declares), so {region: us} nests in {region: [us, eu]} and in
 * {region: __ALL_FILTER_VALUES__}, and {region: us, cloud: aws} in {region: us}. Between
 * matching filters that overlap without nesting ({region: us} and {cloud: aws}), the one with
 * the most keys, the first in the charge's order on a tie: Lago counts such an event in both
 * fees, a double charge Tally does not reproduce.
 */
size_t aggregation_filter_bucket(const struct billable_metric *m,
                                 const struct aggregation_filter *filters, size_t filter_count,
                                 const struct event_property *props, size_t n);

#endif
