/*
 * core/charge_model: Lago's charge models (standard, graduated, graduated_percentage,
 * package, percentage, volume, dynamic) as pure functions of one period's aggregate, and the
 * rules their properties obey (Lago's validators and error codes).
 *
 * What it owns:
 *   - the properties of each model, as exact decimals (money_t) and integers;
 *   - charge_model_validate: every error Lago's Charges::Validators::* would report for them,
 *     in Lago's order, with Lago's field names and codes;
 *   - charge_model_amount: the amount in currency units, exact and unrounded, as Lago's
 *     ChargeModels::*Service#compute_amount returns it;
 *   - charge_model_fee_cents: Lago's one rounding, at the fee (Fees::ChargeService#init_fee).
 *
 * Why shaped so. The credit cost of an event is fee(after) - fee(before) (DESIGN.md §3), so
 * the functions here take everything they read as arguments (the aggregate, the event count,
 * the events' values in order) and return the same bits for the same inputs: no clock, no
 * globals, no I/O, no floating point, no rounding before the fee. Results that do not fit
 * the decimal type (38 significant digits, 38 decimals) are reported as statuses, never
 * rounded or wrapped: a wrong amount would be worse than a refused one.
 *
 * Semantics are Lago's as of its 2026 sources (lago-api app/services/charge_models,
 * app/services/charges/validators, their specs), including its edges:
 *   - graduated and graduated_percentage: tiers are reached while the previous tier's
 *     to_value is below the units; the units of a tier are min(units, to) - from, plus one
 *     when the ranges are not all "adjacent" (each from equal to the previous to) and from
 *     is not 0. The first tier's flat amount is charged even at 0 units (lago-api PR #5760,
 *     which also applies it to volume and graduated_percentage).
 *   - prorated graduated (a recurring sum with prorated: true): the events' full values stack
 *     in time order into a running total that puts each unit in its graduated tier; a unit
 *     costs the tier's price x its event's days / the period's; flat amounts follow the
 *     highest total (charge_model_input's event_value_days; charge_model.c says where Lago's
 *     own walk differs).
 *   - volume: the range is the first with from <= ceil(n) and (open or n <= to), where n is
 *     the full (unprorated) units when given, and the price applies to the (prorated) units.
 *     No matching range (n <= -1) gives 0.
 *   - package: ceil((units - free_units) / package_size) packages, 0 when units <= free_units.
 *   - percentage: see struct charge_model_input for the running total Lago builds from the
 *     events and how free units and free events come out of it.
 *   - dynamic (no properties): Σ event.precise_total_amount_cents / subunit, 0 when the units
 *     are 0 (ChargeModels::DynamicService). Lago allows it on sum_agg metrics only (the
 *     catalog's check: it needs the metric).
 *
 * Monotonicity in units (what fee(after) - fee(before) may do), for valid properties:
 *   - standard, graduated, graduated_percentage, package: non-decreasing.
 *   - volume: NOT monotone. Crossing into a cheaper range lowers the amount (ranges 0..100 at
 *     2 + flat 10 and 101.. at 1: 100 units cost 210, 101 cost 101): a negative step.
 *   - percentage: a function of the event sequence, not of units alone. For non-negative
 *     event values each new event never lowers the amount; negative values can.
 *   - dynamic: a function of the events' precise amounts, not of units (beyond 0 or not): a
 *     negative precise amount lowers it.
 *
 * Thread safety: every function is pure and may be called from any thread.
 */
#ifndef TALLY_CORE_CHARGE_MODEL_H
#define TALLY_CORE_CHARGE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/money.h"

/*
 * Most ranges one graduated, graduated_percentage or volume charge may have. Lago sets no
 * limit; 100 tiers is far beyond any price sheet, and it bounds validation and compute time.
 */
#define CHARGE_MODEL_RANGES_MAX 100
/* Most errors charge_model_validate can report: three per range (per_unit_amount or rate,
 * flat_amount, bounds), or the seven fields of percentage. */
#define CHARGE_MODEL_ERRORS_MAX (3 * CHARGE_MODEL_RANGES_MAX)
/* Longest kind name ("graduated_percentage"), without its NUL. */
#define CHARGE_MODEL_KIND_NAME_MAX 20

enum charge_model_kind {
    CHARGE_MODEL_STANDARD,
    CHARGE_MODEL_GRADUATED,
    CHARGE_MODEL_GRADUATED_PERCENTAGE,
    CHARGE_MODEL_PACKAGE,
    CHARGE_MODEL_PERCENTAGE,
    CHARGE_MODEL_VOLUME,
    CHARGE_MODEL_DYNAMIC, /* the events carry their own price: precise_total_amount_cents */
    CHARGE_MODEL_KIND_COUNT
};

/*
 * Lago's name of a kind ("standard", "graduated_percentage", ...) to the kind. `text` is
 * borrowed for the call, `len` bytes, no NUL needed. False for any other text (Lago's
 * "custom" model is not provided here). *out is written only on true.
 */
bool charge_model_kind_parse(const char *text, size_t len, enum charge_model_kind *out);

/* The Lago name of `kind` (static storage), or NULL for a value out of range. */
const char *charge_model_kind_name(enum charge_model_kind kind);

/*
 * One tier of a graduated, graduated_percentage or volume charge. Bounds may be decimals
 * (Lago accepts "adjacent" decimal ranges such as 0..0.1, 0.1..1, 1..). per_unit_amount is
 * read by graduated and volume, rate (a percent: "1.5" is 1.5%) by graduated_percentage.
 */
struct charge_model_range {
    money_t from_value;
    money_t to_value;  /* read only if has_to_value */
    bool has_to_value; /* false: Lago's null, an open range (allowed for the last only) */
    money_t per_unit_amount;
    money_t rate;
    money_t flat_amount;
};

/* Borrowed array of ranges: the caller owns it and keeps it alive across every call. */
struct charge_model_ranges {
    const struct charge_model_range *items;
    size_t count;
};

struct charge_model_standard {
    money_t amount; /* price per unit */
};

struct charge_model_package {
    money_t amount;       /* price per package */
    int64_t package_size; /* units per package, > 0 */
    int64_t free_units;   /* >= 0, subtracted before packing */
};

/* Optional fields carry has_* flags: Lago tells an absent field from a zero one. */
struct charge_model_percentage {
    money_t rate; /* percent */
    bool has_fixed_amount;
    money_t fixed_amount; /* per paid event */
    bool has_free_units_per_events;
    int64_t free_units_per_events; /* > 0 when present */
    bool has_free_units_per_total_aggregation;
    money_t free_units_per_total_aggregation;
    bool has_per_transaction_min_amount;
    money_t per_transaction_min_amount;
    bool has_per_transaction_max_amount;
    money_t per_transaction_max_amount;
};

/*
 * A charge's properties: the kind selects the union member (ranges for graduated,
 * graduated_percentage and volume). Plain data; its pointers (the ranges, the group keys) are
 * borrowed.
 */
#define CHARGE_GROUP_KEYS_MAX 10     /* pricing_group_keys one charge (or filter) may name */
#define CHARGE_GROUP_KEY_LEN_MAX 255 /* bytes of one such key */

struct charge_model_properties {
    enum charge_model_kind kind;
    union {
        struct charge_model_standard standard;
        struct charge_model_package package;
        struct charge_model_percentage percentage;
        struct charge_model_ranges ranges;
    };
    /* Lago's pricing_group_keys (formerly grouped_by): the model prices each distinct
     * combination of the events' values for these properties on its own. None: one group. */
    const char *const *group_keys;
    size_t group_key_count;
};

/* One validation error: both strings are static (Lago's field name and error code). */
struct charge_model_error {
    const char *field;
    const char *code;
};

/*
 * Checks `p` as Lago's Charges::Validators::<Kind>Service does, and returns the number of
 * errors found (0: valid). The first `cap` of them are written to `errors` (NULL allowed
 * when cap is 0), in the order Lago adds them; Lago's error_details groups them by field in
 * order of first appearance, keeping repeats ("graduated_ranges": ["invalid_graduated_ranges",
 * "invalid_graduated_ranges"] for two bad ranges). Never more than CHARGE_MODEL_ERRORS_MAX.
 *
 * Codes (field: code):
 *   standard            amount: invalid_amount (amount < 0)
 *   package             amount: invalid_amount; free_units: invalid_free_units (< 0);
 *                       package_size: invalid_package_size (<= 0)
 *   percentage          rate: invalid_rate; fixed_amount: invalid_fixed_amount;
 *                       free_units_per_events: invalid_free_units_per_events (<= 0);
 *                       free_units_per_total_aggregation:
 *                         invalid_free_units_per_total_aggregation;
 *                       per_transaction_min_amount / per_transaction_max_amount:
 *                         invalid_amount; per_transaction_max_amount:
 *                         per_transaction_max_lower_than_per_transaction_min (min > max)
 *   graduated           graduated_ranges: missing_graduated_ranges (none) or
 *                       invalid_graduated_ranges (bounds); per range per_unit_amount and
 *                       flat_amount: invalid_amount
 *   graduated_percentage graduated_percentage_ranges: missing_graduated_percentage_ranges /
 *                       invalid_graduated_percentage_ranges; per range flat_amount:
 *                       invalid_amount, rate: invalid_rate
 *   volume              volume_ranges: missing_volume_ranges / invalid_volume_ranges; per
 *                       range per_unit_amount and flat_amount: invalid_amount
 * Every amount, rate and free quantity must be >= 0. Bounds: the first range starts at 0;
 * each next from_value equals the previous to_value or the previous to_value + 1 (graduated,
 * graduated_percentage) or exactly the previous to_value + 1 (volume); a range that is not
 * the last has a to_value greater than its from_value; the last is open (no to_value).
 * More than CHARGE_MODEL_RANGES_MAX ranges is one invalid_<kind>_ranges error (Tally's limit).
 *
 * A field that is absent or not a decimal string where Lago requires one (amount, rate,
 * package_size, free_units, a range's amounts) is the JSON parser's to report, with the same
 * field and code as a negative value gets here: Lago's DecimalAmountService treats them alike.
 * An unknown kind is one error, field "charge_model", code "value_is_invalid".
 * Lago's check that percentage and graduated_percentage are not used with a latest_agg
 * metric (properties: invalid_value) needs the metric and is the catalog's.
 */
size_t charge_model_validate(const struct charge_model_properties *p,
                             struct charge_model_error *errors, size_t cap);

/*
 * How Lago's aggregation built the "running total" that the percentage model reads its free
 * units from (BillableMetrics::Aggregations::*Service#running_total):
 *   NONE          the metric has none (max_agg, weighted_sum_agg, ...): no free units value.
 *   EVENT_VALUES  sum_agg: prefix sums of the event values in order. With
 *                 free_units_per_events N set, of the first N events only; otherwise of the
 *                 events up to and including the first whose prefix sum exceeds
 *                 free_units_per_total_aggregation; empty when neither is set.
 *   UNITS         count_agg and unique_count_agg: 1, 2, ..., floor(units) whenever a free
 *                 option is set, whichever it is (held implicitly, so a large count costs
 *                 nothing); empty when neither is set.
 */
enum charge_model_running_total {
    CHARGE_MODEL_RUNNING_TOTAL_NONE,
    CHARGE_MODEL_RUNNING_TOTAL_EVENT_VALUES,
    CHARGE_MODEL_RUNNING_TOTAL_UNITS,
};

/*
 * What a charge model reads from one period (and one filter or group) of aggregated events.
 * Only the percentage model reads events_count, event_values and running_total (and a
 * prorated graduated one event_values with their days), and only volume reads full_units.
 */
struct charge_model_input {
    money_t units;        /* the aggregate after the metric's rounding; may be fractional */
    bool has_full_units;  /* set only for a prorated charge (Lago: prorated && full_units_number) */
    money_t full_units;   /* the unprorated aggregate: chooses volume's range */
    int64_t events_count; /* events aggregated (Lago's aggregation_result.count) */
    /*
     * Each event's value in Lago's order (created_at ascending), borrowed for the call: the
     * metric field for sum_agg. Read by the percentage model for the EVENT_VALUES running
     * total and, when a per-transaction min or max is set, to price each event on its own.
     * NULL is allowed when event_values_count is 0; NULL with the UNITS running total (count,
     * unique_count) stands for events_count events worth 1 each, so a count keeps no values.
     */
    const money_t *event_values;
    size_t event_values_count;
    enum charge_model_running_total running_total;
    /*
     * Σ charge_model_event_amount over every event's value, when the caller keeps it
     * (charge_model_prices_each_event): a per-transaction min or max then reads only the
     * first free_units_per_events values, not one per event.
     */
    bool has_priced_total;
    money_t priced_total;
    /*
     * Read by the dynamic model only: Σ precise_total_amount_cents of the aggregated events
     * (exact, in minor units), and the currency's exponent that turns it into currency units
     * (cents / 10^exponent, Lago's division by the subunit). Exponent 0..MONEY_SCALE_MAX.
     */
    money_t precise_total_amount_cents;
    int32_t exponent;
    /*
     * A prorated graduated charge only (NULL otherwise): for each of event_values, the days
     * it is present in the period, of period_days (Lago's charges_duration). The values are
     * then the full ones in the events' order, the carried total first (Lago's
     * per_event_aggregation; consecutive events present alike may come as one entry, their
     * sum), and units the prorated units (0: the first tier's flat only).
     */
    const int64_t *event_value_days;
    int64_t period_days;
    /* With event_value_days: the highest running total of the full values, event by event,
     * when an entry gathers several events (its flat amounts follow it); the walk takes the
     * higher of it and the totals it sees itself, so 0 leaves the entries to decide. */
    money_t peak_units;
};

enum charge_model_status {
    CHARGE_MODEL_OK = 0,
    CHARGE_MODEL_ERR_INVALID,   /* unusable properties or input (see charge_model_amount) */
    CHARGE_MODEL_ERR_OVERFLOW,  /* a value reached 10^38 (or int64, for cents) */
    CHARGE_MODEL_ERR_PRECISION, /* the exact result needs more than 38 digits or decimals */
};

/* A static English message for `status` ("unknown charge model status" out of range). */
const char *charge_model_status_text(enum charge_model_status status);

/*
 * The amount of charge `p` for `in`, in currency units, exact and unrounded, as Lago's
 * compute_amount returns it (it may be negative for negative units: the fee zeroes it).
 * Properties should have passed charge_model_validate; this function does not re-check
 * Lago's rules, but anything it cannot compute safely is CHARGE_MODEL_ERR_INVALID rather
 * than undefined behaviour: an unknown kind, no ranges or more than CHARGE_MODEL_RANGES_MAX,
 * a NULL array with a non-zero count, package_size <= 0, a negative free_units_per_events,
 * a negative events_count, a money_t outside its limits. Arithmetic that does not fit is
 * CHARGE_MODEL_ERR_OVERFLOW or _PRECISION. *amount is written only on CHARGE_MODEL_OK.
 */
enum charge_model_status charge_model_amount(const struct charge_model_properties *p,
                                             const struct charge_model_input *in, money_t *amount);

/*
 * Whether a sum's events under `p` are best priced one by one as they come: a percentage with
 * a per-transaction min or max and no free total (a free total's walk reads every value
 * anyway). The caller then sums charge_model_event_amount over the events and passes the
 * total as priced_total, and keeps only charge_model_values_read values.
 */
bool charge_model_prices_each_event(const struct charge_model_properties *p);

/*
 * What one event of `value` costs alone under `p` (a percentage with a per-transaction min or
 * max): value x rate / 100 + fixed_amount, raised to the min or lowered to the max.
 * CHARGE_MODEL_ERR_INVALID for any other properties.
 */
enum charge_model_status charge_model_event_amount(const struct charge_model_properties *p,
                                                   money_t value, money_t *amount);

/* Decimals a prorated graduated amount keeps from its one division by the period's days,
 * rounded half up: far below any currency's minor unit. */
#define CHARGE_MODEL_PRORATED_SCALE 15

/* charge_model_values_read's answer when every value may be read. */
#define CHARGE_MODEL_VALUES_ALL SIZE_MAX

/*
 * How many of the earliest event_values charge_model_amount reads under `p`, so that a sum
 * keeps no more (core/aggregation's aggregation_keep_values): 0 for every model but
 * percentage, and for a percentage with neither free units nor a per-transaction min or max;
 * free_units_per_events when it is the only one of those set, or beside
 * free_units_per_total_aggregation (the running total then stops after that many events), or
 * beside a per-transaction min or max without a free total (given priced_total: the first N
 * events are free, the rest cost what they cost alone); 0 for a min or max without free
 * units; CHARGE_MODEL_VALUES_ALL when a min or max meets a free total, or a free total alone
 * runs until the values pass it; CHARGE_MODEL_VALUES_ALL also for a `prorated` graduated charge,
 * whose tiers fill in the events' order.
 */
size_t charge_model_values_read(const struct charge_model_properties *p, bool prorated);

/*
 * Lago's fee: an amount whose units or amount is negative becomes 0; otherwise the amount is
 * rounded half-up (away from zero on ties, as BigDecimal#round) to the currency's `exponent`
 * decimals, once, and returned in minor units (17.975 EUR -> 1798 cents). `units` is the
 * input's units (Lago checks both). CHARGE_MODEL_ERR_INVALID for an exponent outside
 * 0..MONEY_SCALE_MAX or an invalid money_t, CHARGE_MODEL_ERR_OVERFLOW past int64.
 */
enum charge_model_status charge_model_fee_cents(money_t units, money_t amount, int32_t exponent,
                                                int64_t *cents);

#endif
