/*
 * core/charge_model: Lago's charge models and their property rules. See charge_model.h for
 * the semantics; this file cites the Lago source each rule comes from, so that a divergence
 * can be traced to the line it diverges from.
 *
 * All arithmetic goes through core/money, exact or failing: a step that cannot be held in
 * 38 digits stops the computation with a status instead of rounding, because Lago's
 * BigDecimal never rounds before the fee either.
 */
#include "core/charge_model.h"

#include <string.h>

/* ---- Kinds ---------------------------------------------------------------------------------- */

static const char *const kind_names[CHARGE_MODEL_KIND_COUNT] = {
    [CHARGE_MODEL_STANDARD] = "standard",
    [CHARGE_MODEL_GRADUATED] = "graduated",
    [CHARGE_MODEL_GRADUATED_PERCENTAGE] = "graduated_percentage",
    [CHARGE_MODEL_PACKAGE] = "package",
    [CHARGE_MODEL_PERCENTAGE] = "percentage",
    [CHARGE_MODEL_VOLUME] = "volume",
    [CHARGE_MODEL_DYNAMIC] = "dynamic",
};

bool charge_model_kind_parse(const char *text, size_t len, enum charge_model_kind *out)
{
    if (text == NULL)
        return false;
    for (int k = 0; k < CHARGE_MODEL_KIND_COUNT; k++) {
        if (strlen(kind_names[k]) == len && memcmp(kind_names[k], text, len) == 0) {
            *out = (enum charge_model_kind)k;
            return true;
        }
    }
    return false;
}

const char *charge_model_kind_name(enum charge_model_kind kind)
{
    if ((unsigned)kind >= CHARGE_MODEL_KIND_COUNT)
        return NULL;
    return kind_names[kind];
}

const char *charge_model_status_text(enum charge_model_status status)
{
    switch (status) {
    case CHARGE_MODEL_OK: return "ok";
    case CHARGE_MODEL_ERR_INVALID: return "invalid charge model properties or input";
    case CHARGE_MODEL_ERR_OVERFLOW: return "amount too large";
    case CHARGE_MODEL_ERR_PRECISION: return "amount needs more than 38 digits";
    }
    return "unknown charge model status";
}

/* ---- Checked arithmetic --------------------------------------------------------------------- */

static enum charge_model_status from_money(enum money_status st)
{
    switch (st) {
    case MONEY_OK: return CHARGE_MODEL_OK;
    case MONEY_ERR_OVERFLOW: return CHARGE_MODEL_ERR_OVERFLOW;
    case MONEY_ERR_PRECISION: return CHARGE_MODEL_ERR_PRECISION;
    default: return CHARGE_MODEL_ERR_INVALID;
    }
}

/* A fee's arithmetic keeps 38 significant digits, truncating past them (money.h): a price of
 * 19 decimals times a quantity of 28 is a fraction of a cent, never a refused event. */
static enum charge_model_status add(money_t a, money_t b, money_t *out)
{
    return from_money(money_add_truncated(a, b, out));
}

static enum charge_model_status sub(money_t a, money_t b, money_t *out)
{
    return from_money(money_add_truncated(a, money_neg(b), out));
}

static enum charge_model_status mul(money_t a, money_t b, money_t *out)
{
    return from_money(money_mul_truncated(a, b, out));
}

/*
 * x * rate / 100, exactly. Lago writes `x * rate / 100` in BigDecimal; dividing by 100 only
 * moves the decimal point, so multiplying by 0.01 is the same value with no rounding.
 */
static enum charge_model_status percent_of(money_t x, money_t rate, money_t *out)
{
    enum charge_model_status st;
    money_t t;
    if ((st = mul(x, rate, &t)) != CHARGE_MODEL_OK)
        return st;
    return mul(t, (money_t){1, 2}, out);
}

static bool valid(money_t v)
{
    return money_is_valid(v);
}

/* ---- Validation ----------------------------------------------------------------------------- */

/* Collects errors in Lago's order; counts past `cap` so the caller learns the total. */
struct error_sink {
    struct charge_model_error *errors;
    size_t cap;
    size_t count;
};

static void report(struct error_sink *sink, const char *field, const char *code)
{
    if (sink->count < sink->cap)
        sink->errors[sink->count] = (struct charge_model_error){field, code};
    sink->count++;
}

/*
 * Validators::DecimalAmountService#valid_amount?: a finite decimal, zero or positive. The
 * "is it a decimal string at all" half is the parser's; an invalid money_t counts as not one.
 */
static bool valid_amount(money_t v)
{
    return valid(v) && money_sign(v) >= 0;
}

/* The field and codes a ranged kind reports under. */
struct ranges_names {
    const char *field;
    const char *missing;
    const char *invalid;
};

static const struct ranges_names graduated_names = {"graduated_ranges", "missing_graduated_ranges",
                                                    "invalid_graduated_ranges"};
static const struct ranges_names graduated_percentage_names = {
    "graduated_percentage_ranges", "missing_graduated_percentage_ranges",
    "invalid_graduated_percentage_ranges"};
static const struct ranges_names volume_names = {"volume_ranges", "missing_volume_ranges",
                                                 "invalid_volume_ranges"};

/*
 * Validators::RangeBoundsValidator#valid_bounds? with the next from_value the kind's
 * validator passes. Graduated and graduated_percentage pass the previous to_value and accept
 * it or it + 1 (decimal adjacent ranges, or integer ranges one unit apart). Volume passes
 * the previous to_value + 1; Tally accepts exactly that. Lago's shared check would also take
 * to_value + 2 there, which leaves a hole no range covers (its compute then fails on a nil
 * range), so Tally refuses it. The first range must start at 0 exactly: Lago's "+ 1" would
 * also let it start at 1, which its own spec calls "does not start at 0".
 */
static bool valid_bounds(const struct charge_model_ranges *r, size_t i, bool volume)
{
    const struct charge_model_range *range = &r->items[i];
    if (!valid(range->from_value) || (range->has_to_value && !valid(range->to_value)))
        return false;
    if (i == 0) {
        if (!money_is_zero(range->from_value))
            return false;
    } else {
        const struct charge_model_range *prev = &r->items[i - 1];
        if (!valid(prev->from_value) || (prev->has_to_value && !valid(prev->to_value)))
            return false;
        /* Lago: (range[:to_value] || 0), so an open range before this one counts as 0. */
        money_t next = prev->has_to_value ? prev->to_value : MONEY_ZERO;
        money_t next_plus_one;
        if (money_add(next, money_from_int(1), &next_plus_one) != MONEY_OK)
            return false;
        bool ok = volume ? money_cmp(range->from_value, next_plus_one) == 0
                         : (money_cmp(range->from_value, next) == 0 ||
                            money_cmp(range->from_value, next_plus_one) == 0);
        if (!ok)
            return false;
    }
    if (i + 1 == r->count)
        return !range->has_to_value;
    /* (range[:to_value] || 0) > from_value: an open range that is not the last fails. */
    money_t to = range->has_to_value ? range->to_value : MONEY_ZERO;
    return money_cmp(to, range->from_value) > 0;
}

static void validate_ranges(const struct charge_model_properties *p, struct error_sink *sink)
{
    const struct ranges_names *names = p->kind == CHARGE_MODEL_GRADUATED ? &graduated_names
                                       : p->kind == CHARGE_MODEL_VOLUME
                                           ? &volume_names
                                           : &graduated_percentage_names;
    const struct charge_model_ranges *r = &p->ranges;
    if (r->count == 0 || r->items == NULL) {
        report(sink, names->field, names->missing);
        return;
    }
    if (r->count > CHARGE_MODEL_RANGES_MAX) {
        report(sink, names->field, names->invalid);
        return;
    }
    for (size_t i = 0; i < r->count; i++) {
        const struct charge_model_range *range = &r->items[i];
        if (p->kind == CHARGE_MODEL_GRADUATED_PERCENTAGE) {
            /* Charges::Validators::GraduatedPercentageService#validate_rate_and_amounts */
            if (!valid_amount(range->flat_amount))
                report(sink, "flat_amount", "invalid_amount");
            if (!valid_amount(range->rate))
                report(sink, "rate", "invalid_rate");
        } else {
            /* GraduatedService / VolumeService#validate_amounts */
            if (!valid_amount(range->per_unit_amount))
                report(sink, "per_unit_amount", "invalid_amount");
            if (!valid_amount(range->flat_amount))
                report(sink, "flat_amount", "invalid_amount");
        }
        if (!valid_bounds(r, i, p->kind == CHARGE_MODEL_VOLUME))
            report(sink, names->field, names->invalid);
    }
}

/* Charges::Validators::PercentageService#valid?, in its order. */
static void validate_percentage(const struct charge_model_percentage *pc, struct error_sink *sink)
{
    if (!valid_amount(pc->rate))
        report(sink, "rate", "invalid_rate");
    if (pc->has_fixed_amount && !valid_amount(pc->fixed_amount))
        report(sink, "fixed_amount", "invalid_fixed_amount");
    if (pc->has_free_units_per_events && pc->free_units_per_events <= 0)
        report(sink, "free_units_per_events", "invalid_free_units_per_events");
    if (pc->has_free_units_per_total_aggregation &&
        !valid_amount(pc->free_units_per_total_aggregation))
        report(sink, "free_units_per_total_aggregation",
               "invalid_free_units_per_total_aggregation");
    if (pc->has_per_transaction_min_amount && !valid_amount(pc->per_transaction_min_amount))
        report(sink, "per_transaction_min_amount", "invalid_amount");
    if (pc->has_per_transaction_max_amount && !valid_amount(pc->per_transaction_max_amount))
        report(sink, "per_transaction_max_amount", "invalid_amount");
    /* Lago compares the two whenever both are present, valid or not. */
    if (pc->has_per_transaction_min_amount && pc->has_per_transaction_max_amount &&
        valid(pc->per_transaction_min_amount) && valid(pc->per_transaction_max_amount) &&
        money_cmp(pc->per_transaction_min_amount, pc->per_transaction_max_amount) > 0)
        report(sink, "per_transaction_max_amount",
               "per_transaction_max_lower_than_per_transaction_min");
}

size_t charge_model_validate(const struct charge_model_properties *p,
                             struct charge_model_error *errors, size_t cap)
{
    struct error_sink sink = {errors, errors ? cap : 0, 0};
    switch (p->kind) {
    case CHARGE_MODEL_STANDARD:
        if (!valid_amount(p->standard.amount))
            report(&sink, "amount", "invalid_amount");
        break;
    case CHARGE_MODEL_PACKAGE:
        /* Charges::Validators::PackageService: amount, free_units, package_size. */
        if (!valid_amount(p->package.amount))
            report(&sink, "amount", "invalid_amount");
        if (p->package.free_units < 0)
            report(&sink, "free_units", "invalid_free_units");
        if (p->package.package_size <= 0)
            report(&sink, "package_size", "invalid_package_size");
        break;
    case CHARGE_MODEL_PERCENTAGE: validate_percentage(&p->percentage, &sink); break;
    case CHARGE_MODEL_GRADUATED:
    case CHARGE_MODEL_GRADUATED_PERCENTAGE:
    case CHARGE_MODEL_VOLUME: validate_ranges(p, &sink); break;
    case CHARGE_MODEL_DYNAMIC: break; /* Charges::Validators::DynamicService: no properties */
    default: report(&sink, "charge_model", "value_is_invalid"); break;
    }
    return sink.count;
}

/* ---- Graduated and graduated_percentage ----------------------------------------------------- */

static bool ranges_usable(const struct charge_model_ranges *r)
{
    if (r->count == 0 || r->count > CHARGE_MODEL_RANGES_MAX || r->items == NULL)
        return false;
    for (size_t i = 0; i < r->count; i++) {
        const struct charge_model_range *g = &r->items[i];
        if (!valid(g->from_value) || (g->has_to_value && !valid(g->to_value)) ||
            !valid(g->per_unit_amount) || !valid(g->rate) || !valid(g->flat_amount))
            return false;
    }
    return true;
}

/*
 * ChargeModels::AdjacentRanges.adjacent?: at least two ranges and every from_value equal to
 * the previous to_value (an open previous range counts as 0). One range that is not so makes
 * the whole charge count units the "+1" way, even where two ranges touch.
 */
static bool ranges_adjacent(const struct charge_model_ranges *r)
{
    if (r->count < 2)
        return false;
    for (size_t i = 1; i < r->count; i++) {
        const struct charge_model_range *prev = &r->items[i - 1];
        money_t prev_to = prev->has_to_value ? prev->to_value : MONEY_ZERO;
        if (money_cmp(r->items[i].from_value, prev_to) != 0)
            return false;
    }
    return true;
}

/*
 * The tiers `units` reaches, as ChargeModels::AmountDetails::RangeGraduatedService#units and
 * RangeGraduatedPercentageService#units count them: their units priced (`variable`, Σ tier
 * units x price or rate) and their flat amounts (`flat`):
 *   effective = min(units, to)          (units when the range is open)
 *   tier units = effective              when from = 0
 *              = effective - from       when the ranges are adjacent
 *              = effective - from + 1   otherwise (integer ranges 0..10, 11..20)
 * and the walk stops after the first tier whose to_value is >= units (or that is open).
 * The first tier's flat amount is included at 0 units: lago-api PR #5760 removed the
 * zero-units guards ("apply flat fee even when usage is zero").
 * Graduated_percentage counts touching ranges the same way, deliberately: Lago's
 * RangeGraduatedPercentageService takes no adjacent_model flag and always adds the 1, so at
 * ranges its validator accepts (0..10, 10..) it bills the boundary unit in both tiers
 * (docs/API.md, "Where Tally differs").
 */
static enum charge_model_status graduated_tiers(const struct charge_model_ranges *r, money_t units,
                                                bool percentage, money_t *variable, money_t *flat)
{
    enum charge_model_status st;
    bool adjacent = ranges_adjacent(r);
    *variable = MONEY_ZERO;
    *flat = MONEY_ZERO;
    for (size_t i = 0; i < r->count; i++) {
        const struct charge_model_range *g = &r->items[i];
        bool capped = g->has_to_value && money_cmp(units, g->to_value) >= 0;
        money_t tier_units = capped ? g->to_value : units;
        if (!money_is_zero(g->from_value)) {
            if ((st = sub(tier_units, g->from_value, &tier_units)) != CHARGE_MODEL_OK)
                return st;
            if (!adjacent) {
                if ((st = add(tier_units, money_from_int(1), &tier_units)) != CHARGE_MODEL_OK)
                    return st;
            }
        }
        money_t part;
        if (percentage) {
            if ((st = percent_of(tier_units, g->rate, &part)) != CHARGE_MODEL_OK)
                return st;
        } else {
            if ((st = mul(tier_units, g->per_unit_amount, &part)) != CHARGE_MODEL_OK)
                return st;
        }
        if ((st = add(*variable, part, variable)) != CHARGE_MODEL_OK)
            return st;
        if ((st = add(*flat, g->flat_amount, flat)) != CHARGE_MODEL_OK)
            return st;
        if (!g->has_to_value || money_cmp(g->to_value, units) >= 0)
            break;
    }
    return CHARGE_MODEL_OK;
}

static enum charge_model_status graduated_amount(const struct charge_model_ranges *r, money_t units,
                                                 bool percentage, money_t *out)
{
    enum charge_model_status st;
    money_t variable, flat;
    if ((st = graduated_tiers(r, units, percentage, &variable, &flat)) != CHARGE_MODEL_OK)
        return st;
    return add(variable, flat, out);
}

/*
 * Graduated's priced units at a running total: graduated_tiers' variable part, and below 0 the
 * first tier's price per unit (ProratedGraduatedService picks the first range for a total at
 * or under 0).
 */
static enum charge_model_status graduated_variable(const struct charge_model_ranges *r,
                                                   money_t total, money_t *out)
{
    money_t flat;
    if (money_sign(total) < 0)
        return mul(total, r->items[0].per_unit_amount, out);
    return graduated_tiers(r, total, false, out, &flat);
}

/*
 * graduated_variable at the successive running totals of a walk, the same value by the same
 * operations: the tier holding a total is the first whose to_value is at or above it (or open),
 * and graduated_tiers sums the tiers below it capped, which this sums once per tier (at the
 * tier below's to_value) and keeps while the totals stay in it. Ranges whose to_values do not
 * rise strictly, or a total past the last to_value, go through graduated_variable.
 */
struct graduated_walker {
    const struct charge_model_ranges *r;
    bool adjacent, rising;
    size_t tier;   /* the last total's */
    bool has_base; /* base is the tiers' below `tier` */
    money_t base;
};

static void walker_start(struct graduated_walker *w, const struct charge_model_ranges *r)
{
    *w = (struct graduated_walker){.r = r, .adjacent = ranges_adjacent(r), .rising = true};
    for (size_t i = 0; i < r->count; i++)
        if (i + 1 < r->count && (!r->items[i].has_to_value ||
                                 (r->items[i + 1].has_to_value &&
                                  money_cmp(r->items[i + 1].to_value, r->items[i].to_value) <= 0)))
            w->rising = false;
}

static enum charge_model_status walker_g(struct graduated_walker *w, money_t total, money_t *out)
{
    enum charge_model_status st;
    const struct charge_model_ranges *r = w->r;
    if (!w->rising || money_sign(total) < 0)
        return graduated_variable(r, total, out);
    size_t k = w->tier;
    while (k > 0 && money_cmp(r->items[k - 1].to_value, total) >= 0)
        k--;
    while (k < r->count && r->items[k].has_to_value && money_cmp(r->items[k].to_value, total) < 0)
        k++;
    if (k == r->count)
        return graduated_variable(r, total, out); /* every tier capped */
    if (k != w->tier || !w->has_base) {
        money_t flat;
        w->base = MONEY_ZERO;
        if (k > 0) {
            if ((st = graduated_tiers(r, r->items[k - 1].to_value, false, &w->base, &flat)) !=
                CHARGE_MODEL_OK)
                return st;
        }
        w->tier = k;
        w->has_base = true;
    }
    const struct charge_model_range *g = &r->items[k];
    money_t tier_units = total, part;
    if (!money_is_zero(g->from_value)) {
        if ((st = sub(tier_units, g->from_value, &tier_units)) != CHARGE_MODEL_OK)
            return st;
        if (!w->adjacent) {
            if ((st = add(tier_units, money_from_int(1), &tier_units)) != CHARGE_MODEL_OK)
                return st;
        }
    }
    if ((st = mul(tier_units, g->per_unit_amount, &part)) != CHARGE_MODEL_OK)
        return st;
    return add(w->base, part, out);
}

/*
 * ChargeModels::ProratedGraduatedService, a unit at a time. The events, in order, stack their
 * full values into a running total, which puts each unit in the tier graduated would put it in
 * at that total; the unit costs its tier's price x its event's days / period_days, and a
 * negative value takes the top units off at its own days. With S_e the running total after
 * event e and G graduated_variable:
 *   variable = Σ_e days_e x (G(S_e) - G(S_e-1)) / period_days
 * (with every event present all period it is graduated's own variable part, G(S_last)). The
 * flat amounts are those of the tiers up to the one holding the highest running total (Lago's
 * max_full_sum); a negative variable part counts 0, a negative final total costs nothing, and
 * zero prorated units (in->units) cost the first tier's flat amount.
 * Lago walks tiers with an overflow carried from event to event and a floating-point
 * coefficient, and picks the tier after a removal's boundary from full_sum + overflow, which
 * can credit it at another tier's price. Here each unit leaves the tier it was in (docs/API.md
 * names the gap; the walks agree otherwise).
 * Σ days x ΔG is exact; one division, to CHARGE_MODEL_PRORATED_SCALE decimals half up.
 */
static enum charge_model_status prorated_graduated_amount(const struct charge_model_ranges *r,
                                                          const struct charge_model_input *in,
                                                          money_t *out)
{
    enum charge_model_status st;
    if (in->period_days < 1 || (in->event_values_count > 0 && !in->event_values))
        return CHARGE_MODEL_ERR_INVALID;
    money_t variable, flat;
    if (money_is_zero(in->units)) {
        if ((st = graduated_tiers(r, MONEY_ZERO, false, &variable, &flat)) != CHARGE_MODEL_OK)
            return st;
        *out = flat;
        return CHARGE_MODEL_OK;
    }
    if (!valid(in->peak_units))
        return CHARGE_MODEL_ERR_INVALID;
    money_t total = MONEY_ZERO, peak = in->peak_units, weighed = MONEY_ZERO, g_before = MONEY_ZERO;
    struct graduated_walker walker;
    walker_start(&walker, r);
    for (size_t i = 0; i < in->event_values_count; i++) {
        int64_t days = in->event_value_days[i];
        if (!valid(in->event_values[i]) || days < 0 || days > in->period_days)
            return CHARGE_MODEL_ERR_INVALID;
        money_t g_after, step;
        if ((st = add(total, in->event_values[i], &total)) != CHARGE_MODEL_OK)
            return st;
        if ((st = walker_g(&walker, total, &g_after)) != CHARGE_MODEL_OK)
            return st;
        if ((st = sub(g_after, g_before, &step)) != CHARGE_MODEL_OK)
            return st;
        if ((st = mul(step, money_from_int(days), &step)) != CHARGE_MODEL_OK)
            return st;
        if ((st = add(weighed, step, &weighed)) != CHARGE_MODEL_OK)
            return st;
        g_before = g_after;
        if (money_cmp(total, peak) > 0)
            peak = total;
    }
    if (money_sign(total) < 0) {
        *out = MONEY_ZERO;
        return CHARGE_MODEL_OK;
    }
    if ((st = from_money(money_div(weighed, money_from_int(in->period_days),
                                   CHARGE_MODEL_PRORATED_SCALE, MONEY_ROUND_HALF_UP, &variable))) !=
        CHARGE_MODEL_OK)
        return st;
    if (money_sign(variable) < 0)
        variable = MONEY_ZERO;
    money_t ignored;
    if ((st = graduated_tiers(r, peak, false, &ignored, &flat)) != CHARGE_MODEL_OK)
        return st;
    return add(variable, flat, out);
}

/* ---- Volume --------------------------------------------------------------------------------- */

/*
 * ChargeModels::VolumeService: the first range (in from_value order, which validation
 * guarantees) with from_value <= ceil(n) and (open or n <= to_value), n being the full units
 * for a prorated charge; then units x per_unit_amount + flat_amount. At 0 units that is the
 * first range's flat amount, as graduated's first tier (Lago since lago-api#5760, 2026-06,
 * which dropped VolumeService's "nothing at 0 units").
 * The ceiling is what puts 100.5 units in the 101.. range. Units at or below -1 match no range
 * and charge nothing, as Lago's spec "when aggregation is negative" says. Units in a hole
 * between decimal bounds (0..10.5 then 11.5..: 10.7 units, whose ceiling 11 is below 11.5)
 * match none either: Lago's compute then fails on a nil range and bills nothing until the
 * plan is fixed, and charging nothing here would give those units away (an audit's finding),
 * so they take the range above, the one their size passed into, as graduated tiers price them.
 */
static enum charge_model_status volume_amount(const struct charge_model_ranges *r,
                                              const struct charge_model_input *in, money_t *out)
{
    enum charge_model_status st;
    money_t n = in->has_full_units ? in->full_units : in->units;
    money_t ceil_n;
    if ((st = from_money(money_round(n, 0, MONEY_ROUND_CEIL, &ceil_n))) != CHARGE_MODEL_OK)
        return st;
    for (size_t i = 0; i < r->count; i++) {
        const struct charge_model_range *g = &r->items[i];
        if (g->has_to_value && money_cmp(n, g->to_value) > 0)
            continue;
        /* past every earlier range: a hole's units take this one, but none is below the first */
        if (i == 0 && money_cmp(g->from_value, ceil_n) > 0)
            break;
        money_t per_unit_total;
        if ((st = mul(in->units, g->per_unit_amount, &per_unit_total)) != CHARGE_MODEL_OK)
            return st;
        return add(per_unit_total, g->flat_amount, out);
    }
    *out = MONEY_ZERO;
    return CHARGE_MODEL_OK;
}

/* ---- Package -------------------------------------------------------------------------------- */

/*
 * ChargeModels::PackageService: paid = units - free_units; nothing when negative; otherwise
 * ceil(paid / package_size) packages at `amount` each. Lago divides with Float#fdiv, which
 * rounds past 15-17 significant digits; Tally's ceiling is exact, so the two agree wherever
 * the double is exact and Tally is right where it is not.
 */
static enum charge_model_status package_amount(const struct charge_model_package *pk, money_t units,
                                               money_t *out)
{
    enum charge_model_status st;
    if (pk->package_size <= 0 || pk->free_units < 0 || !valid(pk->amount))
        return CHARGE_MODEL_ERR_INVALID;
    money_t paid;
    if ((st = sub(units, money_from_int(pk->free_units), &paid)) != CHARGE_MODEL_OK)
        return st;
    if (money_sign(paid) < 0) {
        *out = MONEY_ZERO;
        return CHARGE_MODEL_OK;
    }
    money_t packages;
    if ((st = from_money(money_div(paid, money_from_int(pk->package_size), 0, MONEY_ROUND_CEIL,
                                   &packages))) != CHARGE_MODEL_OK)
        return st;
    return mul(packages, pk->amount, out);
}

/* ---- Percentage ----------------------------------------------------------------------------- */

/* A free total the running total walks to (validated not negative). */
static bool has_free_total(const struct charge_model_percentage *pc)
{
    return pc->has_free_units_per_total_aggregation &&
           !money_is_zero(pc->free_units_per_total_aggregation);
}

/* A per-transaction min or max: each event is priced alone. */
static bool has_min_max(const struct charge_model_percentage *pc)
{
    return pc->has_per_transaction_min_amount || pc->has_per_transaction_max_amount;
}

/*
 * What the percentage model reads from Lago's running total: its last element, its length,
 * its element N-1 when N < length, and how many elements are below the free total. Lengths
 * are money_t because the UNITS running total is as long as the (unbounded) units.
 */
struct running_total_view {
    money_t last;  /* 0 when empty (Lago: running_total&.last || 0) */
    money_t count; /* number of elements */
    money_t at_n;  /* element free_units_per_events - 1, if it exists */
    bool has_at_n;
    money_t below_free_total; /* elements < free_units_per_total_aggregation */
};

static enum charge_model_status running_total_units(money_t units, int64_t n, money_t free_total,
                                                    struct running_total_view *rt)
{
    enum charge_model_status st;
    /* CountService#running_total: [] when neither free option is set, else
     * (1..aggregation).to_a: 1, 2, ..., floor(units), empty below 1. */
    *rt = (struct running_total_view){
        .last = MONEY_ZERO, .count = MONEY_ZERO, .below_free_total = MONEY_ZERO};
    if (n == 0 && money_is_zero(free_total))
        return CHARGE_MODEL_OK;
    money_t k = MONEY_ZERO;
    if (money_cmp(units, money_from_int(1)) >= 0) {
        if ((st = from_money(money_round(units, 0, MONEY_ROUND_FLOOR, &k))) != CHARGE_MODEL_OK)
            return st;
    }
    rt->last = k;
    rt->count = k;
    rt->has_at_n = n > 0 && money_cmp(money_from_int(n), k) < 0;
    if (rt->has_at_n)
        rt->at_n = money_from_int(n);
    /* Integers j in 1..k with j < F are 1..min(k, ceil(F) - 1). */
    rt->below_free_total = MONEY_ZERO;
    if (money_cmp(free_total, money_from_int(1)) > 0) {
        money_t c;
        if ((st = from_money(money_round(free_total, 0, MONEY_ROUND_CEIL, &c))) != CHARGE_MODEL_OK)
            return st;
        if ((st = sub(c, money_from_int(1), &c)) != CHARGE_MODEL_OK)
            return st;
        rt->below_free_total = money_cmp(c, k) < 0 ? c : k;
    }
    return CHARGE_MODEL_OK;
}

/*
 * BillableMetrics::Aggregations::SumService#running_total: nothing when neither free option
 * is set; the prefix sums of the first N events when free_units_per_events is set; else the
 * prefix sums up to and including the first one past the free total (the loop checks
 * "free_total < total" before adding each value).
 */
static enum charge_model_status running_total_events(const struct charge_model_input *in, int64_t n,
                                                     money_t free_total,
                                                     struct running_total_view *rt)
{
    enum charge_model_status st;
    *rt = (struct running_total_view){
        .last = MONEY_ZERO, .count = MONEY_ZERO, .below_free_total = MONEY_ZERO};
    if (n == 0 && money_is_zero(free_total))
        return CHARGE_MODEL_OK;
    if (in->event_values == NULL && in->event_values_count > 0)
        return CHARGE_MODEL_ERR_INVALID;
    money_t total = MONEY_ZERO;
    size_t taken = 0, below = 0;
    for (size_t i = 0; i < in->event_values_count; i++) {
        if (n > 0) {
            if ((uint64_t)taken >= (uint64_t)n)
                break;
        } else if (money_cmp(free_total, total) < 0) {
            break;
        }
        if (!valid(in->event_values[i]))
            return CHARGE_MODEL_ERR_INVALID;
        if ((st = add(total, in->event_values[i], &total)) != CHARGE_MODEL_OK)
            return st;
        taken++;
        if (money_cmp(total, free_total) < 0)
            below++;
    }
    rt->last = taken > 0 ? total : MONEY_ZERO;
    /* taken and below are at most SIZE_MAX / 16 here (array lengths): they fit int64. */
    rt->count = money_from_int((int64_t)taken);
    rt->below_free_total = money_from_int((int64_t)below);
    /* The prefix list is at most N long, so "N < length" never holds: no element N-1. */
    rt->has_at_n = false;
    return CHARGE_MODEL_OK;
}

/* What one paid event of `value` costs under a per-transaction min or max: value x rate / 100
 * + fixed_amount, raised to the min if below it, else lowered to the max if above it. */
static enum charge_model_status min_max_event(const struct charge_model_percentage *pc,
                                              money_t value, money_t fixed, money_t *out)
{
    enum charge_model_status st;
    money_t amount;
    if ((st = percent_of(value, pc->rate, &amount)) != CHARGE_MODEL_OK)
        return st;
    if ((st = add(amount, fixed, &amount)) != CHARGE_MODEL_OK)
        return st;
    if (pc->has_per_transaction_min_amount && money_cmp(amount, pc->per_transaction_min_amount) < 0)
        amount = pc->per_transaction_min_amount;
    else if (pc->has_per_transaction_max_amount &&
             money_cmp(amount, pc->per_transaction_max_amount) > 0)
        amount = pc->per_transaction_max_amount;
    *out = amount;
    return CHARGE_MODEL_OK;
}

/*
 * The same over `count` events worth 1 each (count_agg), in closed form: a loop would cost an
 * event each at every pricing. With a free amount F > 0, the first ceil(F) - 1 events are free
 * (F stays above each), the next pays 1 - what F has left, and both allowances end: the free
 * events play no part. Without one, the first N events are free.
 */
static enum charge_model_status min_max_ones(const struct charge_model_percentage *pc,
                                             int64_t count, int64_t free_events,
                                             money_t free_amount, money_t fixed, money_t *out)
{
    enum charge_model_status st;
    money_t one = money_from_int(1), events = money_from_int(count);
    money_t each, paid, total = MONEY_ZERO;
    if ((st = min_max_event(pc, one, fixed, &each)) != CHARGE_MODEL_OK)
        return st;
    if (money_sign(free_amount) > 0) {
        money_t covered, left, partial;
        if ((st = from_money(money_round(free_amount, 0, MONEY_ROUND_CEIL, &covered))) !=
            CHARGE_MODEL_OK)
            return st;
        if ((st = sub(covered, one, &covered)) != CHARGE_MODEL_OK)
            return st;
        if (money_cmp(covered, events) >= 0) {
            *out = MONEY_ZERO;
            return CHARGE_MODEL_OK;
        }
        if ((st = sub(free_amount, covered, &left)) != CHARGE_MODEL_OK)
            return st; /* in (0, 1] */
        if ((st = sub(one, left, &left)) != CHARGE_MODEL_OK)
            return st;
        if ((st = min_max_event(pc, left, fixed, &partial)) != CHARGE_MODEL_OK)
            return st;
        if ((st = sub(events, covered, &paid)) != CHARGE_MODEL_OK)
            return st;
        if ((st = sub(paid, one, &paid)) != CHARGE_MODEL_OK)
            return st;
        total = partial;
    } else {
        if ((st = sub(events, money_from_int(free_events < count ? free_events : count), &paid)) !=
            CHARGE_MODEL_OK)
            return st;
    }
    if ((st = mul(paid, each, &paid)) != CHARGE_MODEL_OK)
        return st;
    if ((st = add(total, paid, out)) != CHARGE_MODEL_OK)
        return st;
    return CHARGE_MODEL_OK;
}

/*
 * The same from the total price of every event (priced_total) and the first events' values:
 * without a free total the walk below makes the first N events free and prices every later
 * one alone, so the amount is the total less what the free ones would have cost.
 */
static enum charge_model_status min_max_priced(const struct charge_model_percentage *pc,
                                               const struct charge_model_input *in,
                                               int64_t free_events, money_t fixed, money_t *out)
{
    enum charge_model_status st;
    if (has_free_total(pc) || !valid(in->priced_total))
        return CHARGE_MODEL_ERR_INVALID;
    uint64_t free = (uint64_t)(free_events < in->events_count ? free_events : in->events_count);
    if (in->event_values_count < free || (free > 0 && in->event_values == NULL))
        return CHARGE_MODEL_ERR_INVALID; /* the free events' values were not kept */
    money_t total = in->priced_total;
    for (size_t i = 0; i < free; i++) {
        money_t event_amount;
        if (!valid(in->event_values[i]))
            return CHARGE_MODEL_ERR_INVALID;
        if ((st = min_max_event(pc, in->event_values[i], fixed, &event_amount)) != CHARGE_MODEL_OK)
            return st;
        if ((st = sub(total, event_amount, &total)) != CHARGE_MODEL_OK)
            return st;
    }
    *out = total;
    return CHARGE_MODEL_OK;
}

/*
 * ChargeModels::PercentageService#compute_amount with per-transaction min or max
 * (#compute_amount_with_transaction_min_max): each event is priced alone, in order.
 *   - While free events remain (N counts down) or free amount remains (F counts down by each
 *     value), an event is free; when the free amount runs out inside an event, the rest of
 *     that event is paid (and both allowances end).
 *   - A paid event costs min_max_event of its value.
 * Lago's reduce returns 0 for a free event ("next 0"), which resets its accumulator; free
 * events always come first (the allowances only shrink), so that is the same as adding 0.
 * Units play no part: only the events' values do (a count's, 1 each: min_max_ones).
 */
static enum charge_model_status percentage_min_max(const struct charge_model_percentage *pc,
                                                   const struct charge_model_input *in,
                                                   money_t *out)
{
    enum charge_model_status st;
    if (in->event_values == NULL && in->event_values_count > 0)
        return CHARGE_MODEL_ERR_INVALID;
    int64_t free_events = pc->has_free_units_per_events ? pc->free_units_per_events : 0;
    money_t free_amount = pc->has_free_units_per_total_aggregation
                              ? pc->free_units_per_total_aggregation
                              : MONEY_ZERO;
    money_t fixed = pc->has_fixed_amount ? pc->fixed_amount : MONEY_ZERO;
    if (in->event_values == NULL && in->running_total == CHARGE_MODEL_RUNNING_TOTAL_UNITS)
        return min_max_ones(pc, in->events_count, free_events, free_amount, fixed, out);
    if (in->has_priced_total)
        return min_max_priced(pc, in, free_events, fixed, out);
    money_t total = MONEY_ZERO;
    for (size_t i = 0; i < in->event_values_count; i++) {
        money_t value = in->event_values[i];
        if (!valid(value))
            return CHARGE_MODEL_ERR_INVALID;
        if (free_events > 0 || money_sign(free_amount) > 0) {
            /* Only the sign of the free-event counter is ever read: stop at 0 so it cannot
             * wrap, where Lago's Integer goes on to -1, -2, ... */
            if (free_events > 0)
                free_events--;
            if (money_sign(free_amount) <= 0) {
                total = MONEY_ZERO;
                continue;
            }
            if (money_cmp(free_amount, value) > 0) {
                if ((st = sub(free_amount, value, &free_amount)) != CHARGE_MODEL_OK)
                    return st;
                total = MONEY_ZERO;
                continue;
            }
            if ((st = sub(value, free_amount, &value)) != CHARGE_MODEL_OK)
                return st;
            free_amount = MONEY_ZERO;
            free_events = 0;
        }
        money_t event_amount;
        if ((st = min_max_event(pc, value, fixed, &event_amount)) != CHARGE_MODEL_OK)
            return st;
        if ((st = add(total, event_amount, &total)) != CHARGE_MODEL_OK)
            return st;
    }
    *out = total;
    return CHARGE_MODEL_OK;
}

/*
 * ChargeModels::PercentageService#compute_amount without min/max:
 *   free_units_value = 0                       if the running total's last element is 0
 *                    = running_total[N - 1]    if 0 < N < its length
 *                    = last                    if the free total is 0 or last <= it
 *                    = free total              otherwise
 *   free_units_count = the smallest non-zero of [N, elements below the free total], or 0
 *   amount = (units - free_units_value) x rate / 100   (0 if free_units_value > units)
 *          + (events_count - free_units_count) x fixed (0 if units is 0 or
 *                                                       free_units_count >= events_count)
 */
static enum charge_model_status percentage_amount(const struct charge_model_percentage *pc,
                                                  const struct charge_model_input *in, money_t *out)
{
    enum charge_model_status st;
    if (!valid(pc->rate) || (pc->has_fixed_amount && !valid(pc->fixed_amount)) ||
        (pc->has_free_units_per_total_aggregation &&
         !valid(pc->free_units_per_total_aggregation)) ||
        (pc->has_per_transaction_min_amount && !valid(pc->per_transaction_min_amount)) ||
        (pc->has_per_transaction_max_amount && !valid(pc->per_transaction_max_amount)) ||
        (pc->has_free_units_per_events && pc->free_units_per_events < 0) || in->events_count < 0)
        return CHARGE_MODEL_ERR_INVALID;
    if (pc->has_per_transaction_min_amount || pc->has_per_transaction_max_amount)
        return percentage_min_max(pc, in, out);

    /* properties["free_units_per_events"].to_i and BigDecimal(... || 0): absent is 0. */
    int64_t n = pc->has_free_units_per_events ? pc->free_units_per_events : 0;
    money_t free_total = pc->has_free_units_per_total_aggregation
                             ? pc->free_units_per_total_aggregation
                             : MONEY_ZERO;
    struct running_total_view rt = {
        .last = MONEY_ZERO, .count = MONEY_ZERO, .below_free_total = MONEY_ZERO};
    switch (in->running_total) {
    case CHARGE_MODEL_RUNNING_TOTAL_NONE: break;
    case CHARGE_MODEL_RUNNING_TOTAL_EVENT_VALUES:
        if ((st = running_total_events(in, n, free_total, &rt)) != CHARGE_MODEL_OK)
            return st;
        break;
    case CHARGE_MODEL_RUNNING_TOTAL_UNITS:
        if ((st = running_total_units(in->units, n, free_total, &rt)) != CHARGE_MODEL_OK)
            return st;
        break;
    default: return CHARGE_MODEL_ERR_INVALID;
    }

    money_t free_value;
    if (money_is_zero(rt.last))
        free_value = MONEY_ZERO;
    else if (rt.has_at_n)
        free_value = rt.at_n;
    else if (money_is_zero(free_total) || money_cmp(rt.last, free_total) <= 0)
        free_value = rt.last;
    else
        free_value = free_total;

    money_t free_count = MONEY_ZERO;
    bool have_count = false;
    if (n != 0) {
        free_count = money_from_int(n);
        have_count = true;
    }
    if (!money_is_zero(rt.below_free_total) &&
        (!have_count || money_cmp(rt.below_free_total, free_count) < 0))
        free_count = rt.below_free_total;

    money_t percentage = MONEY_ZERO;
    if (money_cmp(free_value, in->units) <= 0) {
        money_t paid;
        if ((st = sub(in->units, free_value, &paid)) != CHARGE_MODEL_OK)
            return st;
        if ((st = percent_of(paid, pc->rate, &percentage)) != CHARGE_MODEL_OK)
            return st;
    }

    money_t fixed_total = MONEY_ZERO;
    money_t events = money_from_int(in->events_count);
    if (!money_is_zero(in->units) && pc->has_fixed_amount && money_cmp(free_count, events) < 0) {
        money_t paid_events;
        if ((st = sub(events, free_count, &paid_events)) != CHARGE_MODEL_OK)
            return st;
        if ((st = mul(paid_events, pc->fixed_amount, &fixed_total)) != CHARGE_MODEL_OK)
            return st;
    }
    return add(percentage, fixed_total, out);
}

/* ---- Dynamic -------------------------------------------------------------------------------- */

/*
 * ChargeModels::DynamicService#compute_amount: 0 without units, else the events' precise
 * cents over the currency's subunit. Dividing by 10^exponent only moves the decimal point, so
 * it is exact whenever the result keeps 38 decimals at most.
 */
static enum charge_model_status dynamic_amount(const struct charge_model_input *in, money_t *out)
{
    if (!valid(in->precise_total_amount_cents) || in->exponent < 0 ||
        in->exponent > MONEY_SCALE_MAX)
        return CHARGE_MODEL_ERR_INVALID;
    if (money_is_zero(in->units)) {
        *out = money_from_int(0);
        return CHARGE_MODEL_OK;
    }
    money_t cents = money_normalize(in->precise_total_amount_cents);
    if (cents.scale + in->exponent > MONEY_SCALE_MAX)
        return CHARGE_MODEL_ERR_PRECISION;
    return from_money(money_from_coef(cents.coef, cents.scale + in->exponent, out));
}

/* ---- Entry points --------------------------------------------------------------------------- */

enum charge_model_status charge_model_amount(const struct charge_model_properties *p,
                                             const struct charge_model_input *in, money_t *amount)
{
    if (p == NULL || in == NULL || amount == NULL || !valid(in->units) ||
        (in->has_full_units && !valid(in->full_units)))
        return CHARGE_MODEL_ERR_INVALID;
    switch (p->kind) {
    case CHARGE_MODEL_STANDARD:
        /* ChargeModels::StandardService: units x amount. */
        if (!valid(p->standard.amount))
            return CHARGE_MODEL_ERR_INVALID;
        return mul(in->units, p->standard.amount, amount);
    case CHARGE_MODEL_GRADUATED:
    case CHARGE_MODEL_GRADUATED_PERCENTAGE:
        if (!ranges_usable(&p->ranges))
            return CHARGE_MODEL_ERR_INVALID;
        if (in->event_value_days && p->kind == CHARGE_MODEL_GRADUATED)
            return prorated_graduated_amount(&p->ranges, in, amount);
        return graduated_amount(&p->ranges, in->units, p->kind == CHARGE_MODEL_GRADUATED_PERCENTAGE,
                                amount);
    case CHARGE_MODEL_VOLUME:
        if (!ranges_usable(&p->ranges))
            return CHARGE_MODEL_ERR_INVALID;
        return volume_amount(&p->ranges, in, amount);
    case CHARGE_MODEL_PACKAGE: return package_amount(&p->package, in->units, amount);
    case CHARGE_MODEL_PERCENTAGE: return percentage_amount(&p->percentage, in, amount);
    case CHARGE_MODEL_DYNAMIC: return dynamic_amount(in, amount);
    default: return CHARGE_MODEL_ERR_INVALID;
    }
}

_Static_assert(SIZE_MAX >= INT64_MAX, "a free_units_per_events fits a size_t");

bool charge_model_prices_each_event(const struct charge_model_properties *p)
{
    return p->kind == CHARGE_MODEL_PERCENTAGE && has_min_max(&p->percentage) &&
           !has_free_total(&p->percentage);
}

enum charge_model_status charge_model_event_amount(const struct charge_model_properties *p,
                                                   money_t value, money_t *amount)
{
    if (p->kind != CHARGE_MODEL_PERCENTAGE || !has_min_max(&p->percentage) || !valid(value))
        return CHARGE_MODEL_ERR_INVALID;
    const struct charge_model_percentage *pc = &p->percentage;
    return min_max_event(pc, value, pc->has_fixed_amount ? pc->fixed_amount : MONEY_ZERO, amount);
}

size_t charge_model_values_read(const struct charge_model_properties *p, bool prorated)
{
    if (prorated && p->kind == CHARGE_MODEL_GRADUATED)
        return CHARGE_MODEL_VALUES_ALL;
    if (p->kind != CHARGE_MODEL_PERCENTAGE)
        return 0;
    const struct charge_model_percentage *pc = &p->percentage;
    size_t first_n = pc->has_free_units_per_events && pc->free_units_per_events > 0
                         ? (size_t)pc->free_units_per_events
                         : 0;
    if (has_free_total(pc))
        /* a min or max walks every event; without one the walk stops after N, if set */
        return has_min_max(pc) || first_n == 0 ? CHARGE_MODEL_VALUES_ALL : first_n;
    /* running_total_events stops after N; a min or max given priced_total reads the N free */
    return first_n;
}

enum charge_model_status charge_model_fee_cents(money_t units, money_t amount, int32_t exponent,
                                                int64_t *cents)
{
    if (!valid(units) || !valid(amount) || exponent < 0 || exponent > MONEY_SCALE_MAX)
        return CHARGE_MODEL_ERR_INVALID;
    /* Fees::ChargeService#init_fee: "Prevent trying to create a fee with negative units or
     * amount." */
    if (money_sign(units) < 0 || money_sign(amount) < 0) {
        *cents = 0;
        return CHARGE_MODEL_OK;
    }
    return from_money(money_to_minor_units(amount, exponent, MONEY_ROUND_HALF_UP, cents));
}
