/*
 * Tests of Lago's dynamic charge model across core/aggregation (a sum state that also sums
 * its events' precise_total_amount_cents) and core/charge_model (the amount is that sum over
 * the currency's subunit, 0 without units; the fee rounds it half up once).
 *
 * The property test compares, over random events (numeric or ignored values, precise amounts
 * with up to six decimals or none, arriving in random order, carried into a next period), the
 * exact state and fee against an independent reference: the precise amounts as integers
 * scaled by 10^6, summed and rounded half up with integer arithmetic only.
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
#include "core/charge_model.h"
#include "core/money.h"

#include "splitmix.h"

#define SCALE 6 /* decimals of the generated precise amounts */
#define SCALE_POW INT64_C(1000000)
#define EVENTS_MAX 64
#define CASES 2000

static money_t M(const char *text)
{
    money_t v = {0, 0};
    if (money_parse(text, strlen(text), &v) != MONEY_OK)
        fail_msg("money_parse(\"%s\") failed", text);
    return v;
}

static struct billable_metric sum_metric(bool recurring)
{
    return (struct billable_metric){
        .aggregation = AGGREGATION_SUM, .field_name = "value", .recurring = recurring};
}

/* The fee of a dynamic charge at `units` with precise cents `precise` in a currency. */
static int64_t dynamic_fee(money_t units, money_t precise, int32_t exponent)
{
    struct charge_model_properties p = {.kind = CHARGE_MODEL_DYNAMIC};
    struct charge_model_input in = {
        .units = units, .precise_total_amount_cents = precise, .exponent = exponent};
    money_t amount;
    int64_t cents = -1;
    assert_int_equal(charge_model_amount(&p, &in, &amount), CHARGE_MODEL_OK);
    assert_int_equal(charge_model_fee_cents(units, amount, exponent, &cents), CHARGE_MODEL_OK);
    return cents;
}

/* ---- The model -------------------------------------------------------------------------- */

static void test_kind(void **state)
{
    (void)state;
    enum charge_model_kind k;
    assert_true(charge_model_kind_parse("dynamic", 7, &k));
    assert_int_equal(k, CHARGE_MODEL_DYNAMIC);
    assert_string_equal(charge_model_kind_name(CHARGE_MODEL_DYNAMIC), "dynamic");
    struct charge_model_properties p = {.kind = CHARGE_MODEL_DYNAMIC};
    assert_int_equal(charge_model_validate(&p, NULL, 0), 0);
}

static void test_amounts(void **state)
{
    (void)state;
    /* EUR: 1234.5 cents is 12.345 EUR, rounded half up to 12.35 */
    assert_int_equal(dynamic_fee(M("3"), M("1234.5"), 2), 1235);
    assert_int_equal(dynamic_fee(M("3"), M("1234.4999999"), 2), 1234);
    assert_int_equal(dynamic_fee(M("3"), M("0.5"), 2), 1);
    assert_int_equal(dynamic_fee(M("3"), M("0.49"), 2), 0);
    /* no units: nothing, whatever the events paid (DynamicService: return 0 if units zero) */
    assert_int_equal(dynamic_fee(M("0"), M("1234.5"), 2), 0);
    /* negative amount or units: the fee is zeroed, as every fee */
    assert_int_equal(dynamic_fee(M("1"), M("-10"), 2), 0);
    assert_int_equal(dynamic_fee(M("-1"), M("10"), 2), 0);
    /* JPY (exponent 0) and KWD (3): the precise cents are minor units there too */
    assert_int_equal(dynamic_fee(M("1"), M("12.5"), 0), 13);
    assert_int_equal(dynamic_fee(M("1"), M("12.4995"), 3), 12);
    assert_int_equal(dynamic_fee(M("1"), M("12.5"), 3), 13);
    /* the division keeps every decimal: 38 decimals over a subunit of 100 cannot be held */
    struct charge_model_properties p = {.kind = CHARGE_MODEL_DYNAMIC};
    struct charge_model_input in = {.units = M("1"),
                                    .precise_total_amount_cents =
                                        M("0.00000000000000000000000000000000000001"),
                                    .exponent = 2};
    money_t amount;
    assert_int_equal(charge_model_amount(&p, &in, &amount), CHARGE_MODEL_ERR_PRECISION);
    in.exponent = -1;
    assert_int_equal(charge_model_amount(&p, &in, &amount), CHARGE_MODEL_ERR_INVALID);
}

/* ---- The aggregation -------------------------------------------------------------------- */

static void test_keep_precise_rules(void **state)
{
    (void)state;
    struct billable_metric m = sum_metric(false);
    struct aggregation a;
    money_t five = M("5.5");
    struct aggregation_event e = {.timestamp = 10,
                                  .sequence = 1,
                                  .value = "2",
                                  .value_len = 1,
                                  .precise_total_amount_cents = &five};
    /* a sum that does not keep them reads none */
    assert_int_equal(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    assert_int_equal(aggregation_add(&a, &e), AGGREGATION_OK);
    assert_int_equal(money_cmp(aggregation_precise_total(&a), MONEY_ZERO), 0);
    /* only on an empty sum */
    assert_int_equal(aggregation_keep_precise(&a, true), AGGREGATION_ERR_INVALID);
    aggregation_free(&a);
    struct billable_metric count = {.aggregation = AGGREGATION_COUNT};
    assert_int_equal(aggregation_init(&a, &count, 0, 1000), AGGREGATION_OK);
    assert_int_equal(aggregation_keep_precise(&a, true), AGGREGATION_ERR_INVALID);
    aggregation_free(&a);
    /* an ignored event (no numeric value) brings no amount either */
    assert_int_equal(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
    assert_int_equal(aggregation_keep_precise(&a, true), AGGREGATION_OK);
    assert_true(aggregation_is_flat(&a));
    struct aggregation_event ignored = e;
    ignored.value = NULL;
    ignored.value_len = 0;
    money_t preview;
    assert_int_equal(aggregation_preview_precise(&a, &ignored, &preview), AGGREGATION_OK);
    assert_int_equal(money_cmp(preview, MONEY_ZERO), 0);
    assert_int_equal(aggregation_add(&a, &ignored), AGGREGATION_IGNORED);
    assert_true(aggregation_is_empty(&a));
    assert_int_equal(aggregation_add(&a, &e), AGGREGATION_OK);
    assert_int_equal(money_cmp(aggregation_precise_total(&a), five), 0);
    /* an amount that cannot be held refuses the event and changes nothing */
    money_t huge = M("99999999999999999999999999999999999999");
    e.precise_total_amount_cents = &huge;
    e.sequence = 2;
    assert_int_equal(aggregation_add(&a, &e), AGGREGATION_ERR_OVERFLOW);
    assert_int_equal(money_cmp(aggregation_precise_total(&a), five), 0);
    assert_int_equal(aggregation_events_count(&a), 1);
    aggregation_free(&a);
}

/* ---- Property: random events against integers scaled by 10^6 ---------------------------- */

struct gen_event {
    int64_t value;    /* the metric field, when numeric */
    bool numeric;     /* false: the field is absent (the sum ignores the event) */
    bool has_precise; /* false: the event carries no precise_total_amount_cents */
    int64_t precise;  /* × 10^-6 cents */
    char value_text[24];
    money_t precise_money;
};

/* A precise amount of up to six decimals (some negative), as text parsed by money_parse. */
static void gen_precise(struct gen_event *g)
{
    int decimals = (int)below(SCALE + 1);
    int64_t pow = 1;
    for (int i = 0; i < decimals; i++)
        pow *= 10;
    int64_t coef = (int64_t)below(UINT64_C(100000000000)); /* below 10^11 */
    if (below(8) == 0)
        coef = -coef;
    g->precise = coef * (SCALE_POW / pow);
    char text[48];
    int64_t mag = coef < 0 ? -coef : coef;
    if (decimals == 0)
        snprintf(text, sizeof text, "%s%" PRId64, coef < 0 ? "-" : "", mag);
    else
        snprintf(text, sizeof text, "%s%" PRId64 ".%0*" PRId64, coef < 0 ? "-" : "", mag / pow,
                 decimals, mag % pow);
    g->precise_money = M(text);
}

static void gen_events(struct gen_event *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g[i] = (struct gen_event){.numeric = below(6) != 0, .has_precise = below(4) != 0};
        g[i].value = (int64_t)below(4); /* zeros too: a period may have no units */
        snprintf(g[i].value_text, sizeof g[i].value_text, "%" PRId64, g[i].value);
        if (g[i].has_precise)
            gen_precise(&g[i]);
    }
}

static struct aggregation_event as_event(const struct gen_event *g, tally_time t, uint64_t seq)
{
    return (struct aggregation_event){.timestamp = t,
                                      .sequence = seq,
                                      .value = g->numeric ? g->value_text : NULL,
                                      .value_len = g->numeric ? strlen(g->value_text) : 0,
                                      .precise_total_amount_cents =
                                          g->has_precise ? &g->precise_money : NULL};
}

/* The reference fee: round half up of Σ/10^6 cents, 0 without units or below zero. */
static int64_t reference_fee(int64_t units, int64_t scaled)
{
    if (units <= 0 || scaled <= 0)
        return 0;
    return (scaled + SCALE_POW / 2) / SCALE_POW;
}

static void check_state(const struct aggregation *a, int64_t units, int64_t scaled)
{
    money_t want, got_units;
    assert_int_equal(money_from_coef(scaled, SCALE, &want), MONEY_OK);
    if (money_cmp(aggregation_precise_total(a), want) != 0)
        fail_msg("precise total differs from the scaled sum %" PRId64, scaled);
    assert_int_equal(aggregation_units(a, a->to, &got_units), AGGREGATION_OK);
    assert_int_equal(money_cmp(got_units, money_from_int(units)), 0);
    assert_int_equal(dynamic_fee(got_units, aggregation_precise_total(a), 2),
                     reference_fee(units, scaled));
}

static void prop_dynamic_sum(void **state)
{
    (void)state;
    reseed(71);
    struct billable_metric m = sum_metric(true);
    for (int c = 0; c < CASES; c++) {
        struct gen_event g[EVENTS_MAX];
        size_t n = (size_t)below(EVENTS_MAX + 1);
        gen_events(g, n);
        struct aggregation a, next;
        assert_int_equal(aggregation_init(&a, &m, 0, 1000), AGGREGATION_OK);
        assert_int_equal(aggregation_keep_precise(&a, true), AGGREGATION_OK);
        int64_t units = 0, scaled = 0;
        for (size_t i = 0; i < n; i++) {
            /* random timestamps: the result must not depend on arrival order */
            struct aggregation_event e = as_event(&g[i], (tally_time)below(1000), i + 1);
            money_t preview;
            assert_int_equal(aggregation_preview_precise(&a, &e, &preview), AGGREGATION_OK);
            assert_int_equal(aggregation_add(&a, &e),
                             g[i].numeric ? AGGREGATION_OK : AGGREGATION_IGNORED);
            assert_int_equal(money_cmp(preview, aggregation_precise_total(&a)), 0);
            if (g[i].numeric) {
                units += g[i].value;
                scaled += g[i].has_precise ? g[i].precise : 0;
            }
        }
        check_state(&a, units, scaled);
        /* a recurring metric carries the amounts with the units, as Lago's scope reads all */
        assert_int_equal(aggregation_init(&next, &m, 1000, 2000), AGGREGATION_OK);
        assert_int_equal(aggregation_keep_precise(&next, true), AGGREGATION_OK);
        assert_int_equal(aggregation_carry_over(&a, &next), AGGREGATION_OK);
        check_state(&next, units, scaled);
        aggregation_free(&a);
        aggregation_free(&next);
    }
}

static int setup(void **state)
{
    (void)state;
    seed_from_env("dynamic", UINT64_C(20261126));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind),
        cmocka_unit_test(test_amounts),
        cmocka_unit_test(test_keep_precise_rules),
        cmocka_unit_test(prop_dynamic_sum),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
