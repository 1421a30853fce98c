/*
 * Tests of core/charge_model: Lago's own examples (ported from lago-api's specs and
 * getlago.com's docs, each table citing its source), edges at every tier boundary, the
 * validators' error codes, overflow, and property tests against independent references:
 * graduated fees never decrease with units and equal a unit-by-unit sum, standard is the
 * exact product (checked with GMP), volume matches a brute-force tier search done in GMP
 * rationals.
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

#include "core/charge_model.h"
#include "core/money.h"

typedef unsigned __int128 u128;
typedef __int128 i128;

/* ---- Helpers -------------------------------------------------------------------------------- */

static money_t M(const char *text)
{
    money_t v = {0, 0};
    if (money_parse(text, strlen(text), &v) != MONEY_OK)
        fail_msg("money_parse(\"%s\") failed", text);
    return v;
}

static const char *fmt(money_t v, char buf[MONEY_TEXT_MAX])
{
    if (!money_is_valid(v) || money_format(v, buf, MONEY_TEXT_MAX) == 0)
        snprintf(buf, MONEY_TEXT_MAX, "<invalid>");
    return buf;
}

static const char *st_name(enum charge_model_status st)
{
    static const char *const names[] = {"OK", "INVALID", "OVERFLOW", "PRECISION"};
    return (unsigned)st < 4 ? names[st] : "?";
}

/* A graduated or volume range; to == NULL is an open range. */
static struct charge_model_range RG(const char *from, const char *to, const char *per_unit,
                                    const char *flat) {
    struct charge_model_range r = {.from_value = M(from),
                                   .to_value = MONEY_ZERO,
                                   .has_to_value = to != NULL,
                                   .per_unit_amount = M(per_unit),
                                   .rate = MONEY_ZERO,
                                   .flat_amount = M(flat)};
    if (to)
        r.to_value = M(to);
    return r;
}

/* A graduated_percentage range. */
static struct charge_model_range
RP(const char *from, const char *to, const char *rate, const char *flat) {
    struct charge_model_range r = RG(from, to, "0", flat);
    r.rate = M(rate);
    return r;
}

static struct charge_model_properties
ranged(enum charge_model_kind kind, const struct charge_model_range *items, size_t n)
{
    struct charge_model_properties p = {.kind = kind};
    p.ranges = (struct charge_model_ranges){items, n};
    return p;
}

static struct charge_model_properties standard(const char *amount)
{
    struct charge_model_properties p = {.kind = CHARGE_MODEL_STANDARD};
    p.standard.amount = M(amount);
    return p;
}

static struct charge_model_properties package(const char *amount, int64_t size, int64_t free)
{
    struct charge_model_properties p = {.kind = CHARGE_MODEL_PACKAGE};
    p.package = (struct charge_model_package){M(amount), size, free};
    return p;
}

static struct charge_model_input U(const char *units) {
    return (struct charge_model_input){.units = M(units)};
}

static void
expect_amount(const char *what, const struct charge_model_properties *p,
              const struct charge_model_input *in, const char *want)
{
    money_t got = {0, 0};
    char gb[MONEY_TEXT_MAX], ub[MONEY_TEXT_MAX];
    enum charge_model_status st = charge_model_amount(p, in, &got);
    if (st != CHARGE_MODEL_OK)
        fail_msg("%s (units %s): status %s, want amount %s", what, fmt(in->units, ub), st_name(st),
                 want);
    if (money_cmp(got, M(want)) != 0)
        fail_msg("%s (units %s): got %s, want %s", what, fmt(in->units, ub), fmt(got, gb), want);
}

static void expect_status(const char *what, const struct charge_model_properties *p,
                          const struct charge_model_input *in, enum charge_model_status want)
{
    money_t got = {0, 0};
    enum charge_model_status st = charge_model_amount(p, in, &got);
    if (st != want)
        fail_msg("%s: status %s, want %s", what, st_name(st), st_name(want));
}

struct units_case {
    const char *units;
    const char *want;
};

static void run_units_table(const char *what, const struct charge_model_properties *p,
                            const struct units_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct charge_model_input in = U(cases[i].units);
        expect_amount(what, p, &in, cases[i].want);
    }
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Kinds and statuses --------------------------------------------------------------------- */

static void test_kind_names(void **state)
{
    (void)state;
    const char *names[] = {"standard", "graduated", "graduated_percentage", "package", "percentage",
                           "volume",   "dynamic"};
    for (int k = 0; k < CHARGE_MODEL_KIND_COUNT; k++) {
        enum charge_model_kind got;
        assert_string_equal(charge_model_kind_name((enum charge_model_kind)k), names[k]);
        assert_true(strlen(names[k]) <= CHARGE_MODEL_KIND_NAME_MAX);
        assert_true(charge_model_kind_parse(names[k], strlen(names[k]), &got));
        assert_int_equal(got, k);
    }
    const char *bad[] = {"", "Standard", "standard ", "dynamics", "custom", "graduated_", "vol"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        enum charge_model_kind got = CHARGE_MODEL_VOLUME;
        assert_false(charge_model_kind_parse(bad[i], strlen(bad[i]), &got));
        assert_int_equal(got, CHARGE_MODEL_VOLUME);
    }
    /* Length is honoured: "volumes" cut to 6 bytes is "volume". */
    enum charge_model_kind got;
    assert_true(charge_model_kind_parse("volumes", 6, &got));
    assert_int_equal(got, CHARGE_MODEL_VOLUME);
    assert_false(charge_model_kind_parse(NULL, 0, &got));
    assert_null(charge_model_kind_name(CHARGE_MODEL_KIND_COUNT));
    assert_null(charge_model_kind_name((enum charge_model_kind) - 1));
    assert_string_equal(charge_model_status_text(CHARGE_MODEL_OK), "ok");
    assert_string_equal(charge_model_status_text((enum charge_model_status)99),
                        "unknown charge model status");
}

/* ---- Standard ------------------------------------------------------------------------------- */

static void test_standard(void **state)
{
    (void)state;
    /* spec/services/charge_models/standard_service_spec.rb: 10 units at 5.12345. */
    struct charge_model_properties p = standard("5.12345");
    static const struct units_case lago[] = {{"10", "51.2345"}};
    run_units_table("standard_service_spec", &p, lago, COUNT(lago));

    static const struct units_case edges[] = {
        {"0", "0"},         {"1", "5.12345"},       {"0.5", "2.561725"}, {"0.0001", "0.000512345"},
        {"-2", "-10.2469"}, {"1000000", "5123450"},
    };
    run_units_table("standard edges", &p, edges, COUNT(edges));

    struct charge_model_properties free = standard("0");
    struct charge_model_input in = U("123.456");
    expect_amount("standard at 0", &free, &in, "0");
}

/* ---- Graduated ------------------------------------------------------------------------------ */

static const struct charge_model_range *graduated_spec_ranges(void)
{
    /* spec/services/charge_models/graduated_service_spec.rb */
    static struct charge_model_range r[3];
    r[0] = RG("0", "10", "10", "2");
    r[1] = RG("11", "20", "5", "3");
    r[2] = RG("21", NULL, "5", "3");
    return r;
}

static void test_graduated_lago(void **state)
{
    (void)state;
    struct charge_model_properties p = ranged(CHARGE_MODEL_GRADUATED, graduated_spec_ranges(), 3);
    /* graduated_service_spec.rb. 0 units costs the first tier's flat amount ("applies the flat
     * amount from the first tier", lago-api PR #5760). */
    static const struct units_case lago[] = {
        {"0", "2"}, {"1", "12"}, {"10", "102"}, {"11", "110"}, {"12", "115"}, {"21", "163"},
    };
    run_units_table("graduated_service_spec", &p, lago, COUNT(lago));

    /* graduated_service_spec.rb "when first tier flat amount is zero". */
    struct charge_model_range zero_first[] = {
        RG("0", "0.01", "0", "0"), RG("0.01", "10", "10", "2"), RG("11", NULL, "5", "3")};
    struct charge_model_properties pz = ranged(CHARGE_MODEL_GRADUATED, zero_first, 3);
    struct charge_model_input in = U("0");
    expect_amount("graduated first flat zero", &pz, &in, "0");

    /* graduated_service_spec.rb "with decimal adjacent ranges". */
    struct charge_model_range dec[] = {RG("0", "0.1", "10", "0"), RG("0.1", "1", "5", "0"),
                                       RG("1", NULL, "2", "0")};
    struct charge_model_properties pd = ranged(CHARGE_MODEL_GRADUATED, dec, 3);
    static const struct units_case dec_cases[] = {
        {"0.05", "0.5"},
        {"0.5", "3.0"},
        /* and beyond the spec: whole second tier, into the third */
        {"1", "5.5"},
        {"2.5", "8.5"},
    };
    run_units_table("graduated decimal adjacent", &pd, dec_cases, COUNT(dec_cases));

    /* amount_details/range_graduated_service_spec.rb, one tier isolated between free ones:
     * range 11..20 at 8 + flat 1 holds 5 of 15 units -> 41; range 0..10 at 10 + 2 -> 102. */
    struct charge_model_range iso[] = {RG("0", "10", "0", "0"), RG("11", "20", "8", "1"),
                                       RG("21", NULL, "0", "0")};
    struct charge_model_properties pi = ranged(CHARGE_MODEL_GRADUATED, iso, 3);
    in = U("15");
    expect_amount("range_graduated_service_spec 11..20", &pi, &in, "41");
    struct charge_model_range first[] = {RG("0", "10", "10", "2"), RG("11", NULL, "0", "0")};
    struct charge_model_properties pf = ranged(CHARGE_MODEL_GRADUATED, first, 2);
    expect_amount("range_graduated_service_spec 0..10", &pf, &in, "102");
    /* range_graduated_service_spec.rb, adjacent model: 0.5 units in 0.1..2 at 5 -> 0.4 units. */
    struct charge_model_range adj[] = {RG("0", "0.1", "0", "0"), RG("0.1", "2", "5", "0"),
                                       RG("2", NULL, "0", "0")};
    struct charge_model_properties pa = ranged(CHARGE_MODEL_GRADUATED, adj, 3);
    in = U("0.5");
    expect_amount("range_graduated_service_spec adjacent", &pa, &in, "2.0");

    /* getlago.com/docs/guide/plans/charges/charge-models/graduated: $1 for the first 100
     * units, $0.50 for the next 100, $0.10 after. 250 units: 100 + 50 + 5. */
    struct charge_model_range docs[] = {RG("0", "100", "1", "0"), RG("101", "200", "0.50", "0"),
                                        RG("201", NULL, "0.10", "0")};
    struct charge_model_properties pdocs = ranged(CHARGE_MODEL_GRADUATED, docs, 3);
    static const struct units_case docs_cases[] = {
        {"100", "100"}, {"200", "150"}, {"250", "155"}, {"0", "0"}};
    run_units_table("graduated docs", &pdocs, docs_cases, COUNT(docs_cases));
}

/* Every tier boundary exactly and +-0.0001, for "+1" integer ranges and adjacent ones. */
static void test_graduated_boundaries(void **state)
{
    (void)state;
    struct charge_model_properties p = ranged(CHARGE_MODEL_GRADUATED, graduated_spec_ranges(), 3);
    static const struct units_case plus_one[] = {
        {"0.0001", "2.001"},     {"9.9999", "101.999"}, {"10", "102"},
        {"10.0001", "105.0005"}, /* 0.0001 units into tier 2, its flat charged */
        {"10.9999", "109.9995"}, {"11", "110"},         {"11.0001", "110.0005"},
        {"19.9999", "154.9995"}, {"20", "155"},         {"20.0001", "158.0005"},
        {"20.9999", "162.9995"}, {"21", "163"},         {"21.0001", "163.0005"},
        {"1000", "5058"},
    };
    run_units_table("graduated +1 boundaries", &p, plus_one, COUNT(plus_one));

    /* Adjacent: 0..10, 10..20, 20.. count (from, to]. Same prices. */
    struct charge_model_range adj[] = {RG("0", "10", "10", "2"), RG("10", "20", "5", "3"),
                                       RG("20", NULL, "5", "3")};
    struct charge_model_properties pa = ranged(CHARGE_MODEL_GRADUATED, adj, 3);
    static const struct units_case adjacent[] = {
        {"0", "2"},    {"9.9999", "101.999"},   {"10", "102"}, {"10.0001", "105.0005"},
        {"11", "110"}, {"19.9999", "154.9995"}, {"20", "155"}, {"20.0001", "158.0005"},
        {"21", "163"},
    };
    run_units_table("graduated adjacent boundaries", &pa, adjacent, COUNT(adjacent));

    /* Mixed: 0..10, 10..20 touch but 21.. is one apart, so Lago counts every tier the "+1"
     * way (AdjacentRanges needs all of them adjacent): 11 units bill 10 + 2 in tier 2. */
    struct charge_model_range mixed[] = {RG("0", "10", "10", "2"), RG("10", "20", "5", "3"),
                                         RG("21", NULL, "5", "3")};
    struct charge_model_properties pm = ranged(CHARGE_MODEL_GRADUATED, mixed, 3);
    static const struct units_case mixed_cases[] = {
        {"10", "102"}, {"10.0001", "110.0005"}, {"11", "115"}, {"20", "160"}, {"21", "168"},
    };
    run_units_table("graduated mixed adjacency", &pm, mixed_cases, COUNT(mixed_cases));

    /* One open range. */
    struct charge_model_range one[] = {RG("0", NULL, "0.25", "1")};
    struct charge_model_properties po = ranged(CHARGE_MODEL_GRADUATED, one, 1);
    static const struct units_case one_cases[] = {{"0", "1"}, {"4", "2"}, {"0.4", "1.1"}};
    run_units_table("graduated single range", &po, one_cases, COUNT(one_cases));
}

/* ---- Graduated percentage ------------------------------------------------------------------- */

static void test_graduated_percentage_lago(void **state)
{
    (void)state;
    /* spec/services/charge_models/graduated_percentage_service_spec.rb */
    struct charge_model_range r[] = {RP("0", "10", "1", "200"), RP("11", "20", "2", "300"),
                                     RP("21", NULL, "3", "400")};
    struct charge_model_properties p = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, r, 3);
    /* At 0 units the spec in the stored tree says 0 ("does not apply the flat amount"); lago-api
     * PR #5760 (merged after it) applies the first flat fee at zero usage for graduated
     * percentage too, so Tally charges 200. */
    static const struct units_case lago[] = {
        {"0", "200"},     {"1", "200.01"},  {"10", "200.1"},
        {"11", "500.12"}, {"12", "500.14"}, {"21", "900.33"},
    };
    run_units_table("graduated_percentage_service_spec", &p, lago, COUNT(lago));

    /* getlago.com/docs/.../graduated-percentage: 0..1000 1% +200, 1001..10000 2% +300,
     * 10001.. 3% +400. Transactions of 500, 550, 4000 cost 205, 306, 80 (each the fee after
     * minus the fee before). */
    struct charge_model_range d[] = {RP("0", "1000", "1", "200"), RP("1001", "10000", "2", "300"),
                                     RP("10001", NULL, "3", "400")};
    struct charge_model_properties pd = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, d, 3);
    static const struct units_case docs[] = {{"500", "205"}, {"1050", "511"}, {"5050", "591"}};
    run_units_table("graduated percentage docs", &pd, docs, COUNT(docs));

    /* amount_details/range_graduated_percentage_service_spec.rb, tiers isolated: range 7..10 at
     * 2.9% + 2 holds 4 of 15 units -> 2.116; range 11..20 at 1% + 1 holds 5 -> 1.05. */
    struct charge_model_range i1[] = {RP("0", "6", "0", "0"), RP("7", "10", "2.9", "2"),
                                      RP("11", NULL, "0", "0")};
    struct charge_model_properties p1 = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, i1, 3);
    struct charge_model_input in = U("15");
    expect_amount("range_graduated_percentage_service_spec 7..10", &p1, &in, "2.116");
    struct charge_model_range i2[] = {RP("0", "10", "0", "0"), RP("11", "20", "1", "1"),
                                      RP("21", NULL, "0", "0")};
    struct charge_model_properties p2 = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, i2, 3);
    expect_amount("range_graduated_percentage_service_spec 11..20", &p2, &in, "1.05");

    /* Boundaries and decimal adjacent tiers. */
    static const struct units_case bounds[] = {
        {"9.9999", "200.099999"}, {"10.0001", "500.100002"}, {"20.0001", "900.300003"}};
    run_units_table("graduated percentage boundaries", &p, bounds, COUNT(bounds));
    struct charge_model_range a[] = {RP("0", "0.5", "10", "0"), RP("0.5", "1.5", "20", "1"),
                                     RP("1.5", NULL, "1", "0")};
    struct charge_model_properties pa = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, a, 3);
    static const struct units_case adj[] = {{"0.25", "0.025"}, {"1", "1.15"}, {"2", "1.255"}};
    run_units_table("graduated percentage adjacent", &pa, adj, COUNT(adj));
    /* Touching integer ranges price each unit once, where Lago prices the boundary unit in
     * both tiers (1.30 here: docs/API.md, "Where Tally differs"; an audit's case). */
    struct charge_model_range t[] = {RP("0", "10", "10", "0"), RP("10", NULL, "5", "0")};
    struct charge_model_properties pt = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, t, 2);
    static const struct units_case touching[] = {{"10", "1"}, {"11", "1.05"}, {"15", "1.25"}};
    run_units_table("graduated percentage touching", &pt, touching, COUNT(touching));
}

/* ---- Volume --------------------------------------------------------------------------------- */

static const struct charge_model_range *volume_spec_ranges(void)
{
    /* spec/services/charge_models/volume_service_spec.rb */
    static struct charge_model_range r[3];
    r[0] = RG("0", "100", "2", "10");
    r[1] = RG("101", "200", "1", "0");
    r[2] = RG("201", NULL, "0.5", "50");
    return r;
}

static void test_volume_lago(void **state)
{
    (void)state;
    struct charge_model_properties p = ranged(CHARGE_MODEL_VOLUME, volume_spec_ranges(), 3);
    static const struct units_case lago[] = {
        {"0", "10"}, /* the first range's flat amount: lago-api#5760 (2026-06) removed the
                        spec's "when aggregation is 0: does not apply the flat amount" */
        {"-5", "0"}, /* "charges nothing as no range applies" */
        {"1", "12"},    {"100", "210"}, {"100.5", "100.5"}, {"101", "101"},
        {"200", "200"}, {"300", "200"}, {"210", "155"}, /* "when charge is a fixed charge" */
    };
    run_units_table("volume_service_spec", &p, lago, COUNT(lago));

    /* volume_service_spec.rb "when first tier flat amount is zero". */
    struct charge_model_range z[] = {RG("0", "1", "0", "0"), RG("2", "100", "2", "10"),
                                     RG("101", NULL, "0.5", "50")};
    struct charge_model_properties pz = ranged(CHARGE_MODEL_VOLUME, z, 3);
    struct charge_model_input in = U("0");
    expect_amount("volume first flat zero", &pz, &in, "0");

    /* volume_service_spec.rb "when charge is prorated": 198.6 prorated units, 300 full ones:
     * the third range's price applies to the prorated units. */
    in = U("198.6");
    in.has_full_units = true;
    in.full_units = M("300");
    expect_amount("volume prorated", &p, &in, "149.3");
    /* Without full units, 198.6 is in the second range. */
    in.has_full_units = false;
    expect_amount("volume unprorated", &p, &in, "198.6");

    /* getlago.com/docs/.../volume: 65,000 calls cost 65,000 x 0.0006 + 10 = 49. */
    struct charge_model_range d[] = {
        RG("0", "10000", "0.0010", "10"), RG("10001", "50000", "0.0008", "10"),
        RG("50001", "100000", "0.0006", "10"), RG("100001", NULL, "0.0004", "10")};
    struct charge_model_properties pd = ranged(CHARGE_MODEL_VOLUME, d, 4);
    static const struct units_case docs[] = {
        {"65000", "49"}, {"10000", "20"}, {"10001", "18.0008"}, {"200000", "90"}};
    run_units_table("volume docs", &pd, docs, COUNT(docs));
}

static void test_volume_boundaries(void **state)
{
    (void)state;
    struct charge_model_properties p = ranged(CHARGE_MODEL_VOLUME, volume_spec_ranges(), 3);
    /* The range is chosen by ceil(units): anything in (100, 101] is in 101..200. */
    static const struct units_case b[] = {
        {"99.9999", "209.9998"},
        {"100", "210"},
        {"100.0001", "100.0001"},
        {"100.9999", "100.9999"},
        {"101", "101"},
        {"101.0001", "101.0001"},
        {"199.9999", "199.9999"},
        {"200.0001", "150.00005"},
        {"201", "150.5"},
        {"0.0001", "10.0002"},
        /* -1 < units <= 0: ceil is 0, the first range applies (the fee zeroes it). */
        {"-0.5", "9"},
        {"-0.9999", "8.0002"},
        {"-1", "0"},
    };
    run_units_table("volume boundaries", &p, b, COUNT(b));

    /* Decimal bounds one apart leave a hole: 10.7 units has ceil 11 < 11.5 and 10.7 > 10.5, so
     * no range matches Lago's rule (its compute fails); the units are past the first range, so
     * they take the next one rather than being given away. */
    struct charge_model_range h[] = {RG("0", "10.5", "1", "0"), RG("11.5", NULL, "2", "0")};
    struct charge_model_properties ph = ranged(CHARGE_MODEL_VOLUME, h, 2);
    assert_int_equal(charge_model_validate(&ph, NULL, 0), 0);
    static const struct units_case hole[] = {
        {"10.5", "10.5"}, {"10.7", "21.4"}, {"11", "22"}, {"11.2", "22.4"}, {"11.5", "23"}};
    run_units_table("volume decimal hole", &ph, hole, COUNT(hole));

    /* Not monotone: 100 units cost more than 101 (the step fee(101) - fee(100) is negative). */
    money_t a100, a101;
    struct charge_model_input i100 = U("100"), i101 = U("101");
    assert_int_equal(charge_model_amount(&p, &i100, &a100), CHARGE_MODEL_OK);
    assert_int_equal(charge_model_amount(&p, &i101, &a101), CHARGE_MODEL_OK);
    assert_true(money_cmp(a101, a100) < 0);
}

/* ---- Package -------------------------------------------------------------------------------- */

static void test_package(void **state)
{
    (void)state;
    /* spec/services/charge_models/package_service_spec.rb: 121 units, 100 per 10. */
    struct charge_model_properties p = package("100", 10, 0);
    struct charge_model_input in = U("121");
    expect_amount("package_service_spec", &p, &in, "1300");
    p.package.free_units = 10;
    expect_amount("package_service_spec free 10", &p, &in, "1200");
    p.package.free_units = 200;
    expect_amount("package_service_spec free 200", &p, &in, "0");

    /* getlago.com/docs/.../package: $5 per 100 units, first 100 free; 201 units cost $10. */
    struct charge_model_properties d = package("5", 100, 100);
    static const struct units_case docs[] = {
        {"201", "10"}, {"100", "0"},  {"100.5", "5"}, {"200", "5"}, {"200.0001", "10"},
        {"300", "10"}, {"301", "15"}, {"0", "0"},     {"-3", "0"},  {"99.9999", "0"},
    };
    run_units_table("package docs", &d, docs, COUNT(docs));

    /* Partial packages and fractional units, no free units. */
    struct charge_model_properties q = package("0.75", 3, 0);
    static const struct units_case frac[] = {
        {"0", "0"},        {"0.0001", "0.75"}, {"3", "0.75"},   {"3.0001", "1.5"},
        {"5.9999", "1.5"}, {"6", "1.5"},       {"6.5", "2.25"}, {"-0.5", "0"},
    };
    run_units_table("package partial", &q, frac, COUNT(frac));

    /* Beyond a double's 17 digits the ceiling stays exact (Lago's fdiv would round it). */
    struct charge_model_properties big = package("1", 10, 0);
    in = U("30.0000000000000000001");
    expect_amount("package exact ceiling", &big, &in, "4");
}

/* ---- Percentage ----------------------------------------------------------------------------- */

struct pct {
    struct charge_model_properties p;
    struct charge_model_input in;
    money_t values[8];
};

/*
 * The fixture of spec/services/charge_models/percentage_service_spec.rb: rate 1.3, fixed 2.0,
 * 3 free events, 250.0 free; 4 events for 800 units with running total [50, 150, 400], which
 * event values 50, 100, 250, 400 reproduce (sum aggregation, first 3 events or up to the one
 * past 250).
 */
static void pct_fixture(struct pct *t)
{
    memset(t, 0, sizeof *t);
    t->p.kind = CHARGE_MODEL_PERCENTAGE;
    struct charge_model_percentage *pc = &t->p.percentage;
    pc->rate = M("1.3");
    pc->has_fixed_amount = true;
    pc->fixed_amount = M("2.0");
    pc->has_free_units_per_events = true;
    pc->free_units_per_events = 3;
    pc->has_free_units_per_total_aggregation = true;
    pc->free_units_per_total_aggregation = M("250.0");
    pc->per_transaction_min_amount = MONEY_ZERO;
    pc->per_transaction_max_amount = MONEY_ZERO;
    const char *v[] = {"50", "100", "250", "400"};
    for (int i = 0; i < 4; i++)
        t->values[i] = M(v[i]);
    t->in = (struct charge_model_input){.units = M("800"),
                                        .events_count = 4,
                                        .event_values = t->values,
                                        .event_values_count = 4,
                                        .running_total = CHARGE_MODEL_RUNNING_TOTAL_EVENT_VALUES};
}

static void test_percentage_lago(void **state)
{
    (void)state;
    struct pct t;

    pct_fixture(&t); /* "when fixed amount value is 0": (800 - 250) x 1.3% + (4 - 2) x 2 */
    expect_amount("percentage_service_spec base", &t.p, &t.in, "11.15");

    pct_fixture(&t); /* "when aggregation value is 0" */
    t.in.units = M("0");
    expect_amount("percentage_service_spec 0", &t.p, &t.in, "0");

    pct_fixture(&t); /* "with small units amount" */
    t.p.percentage.has_fixed_amount = false;
    t.p.percentage.has_free_units_per_events = false;
    t.p.percentage.has_free_units_per_total_aggregation = false;
    t.p.percentage.rate = M("2.9");
    t.in.units = M("4");
    expect_amount("percentage_service_spec small units", &t.p, &t.in, "0.116");

    pct_fixture(&t); /* "when rate is 0" */
    t.p.percentage.has_free_units_per_events = false;
    t.p.percentage.has_free_units_per_total_aggregation = false;
    t.p.percentage.rate = M("0");
    expect_amount("percentage_service_spec rate 0", &t.p, &t.in, "8");

    pct_fixture(&t); /* "when free_units_per_events is nil" */
    t.p.percentage.has_free_units_per_events = false;
    expect_amount("percentage_service_spec no free events", &t.p, &t.in, "11.15");

    pct_fixture(&t); /* "when free_units_per_total_aggregation is nil" */
    t.p.percentage.has_free_units_per_total_aggregation = false;
    expect_amount("percentage_service_spec no free total", &t.p, &t.in, "7.2");

    pct_fixture(&t); /* "when free units are not set" */
    t.p.percentage.has_free_units_per_events = false;
    t.p.percentage.has_free_units_per_total_aggregation = false;
    expect_amount("percentage_service_spec no free units", &t.p, &t.in, "18.4");

    pct_fixture(&t); /* "when free_units_per_total_aggregation > last running total" */
    t.p.percentage.free_units_per_total_aggregation = M("500.0");
    expect_amount("percentage_service_spec free total 500", &t.p, &t.in, "7.2");

    pct_fixture(&t); /* "when free_units_count > number of events" */
    t.p.percentage.free_units_per_events = 5;
    t.p.percentage.has_free_units_per_total_aggregation = false;
    t.in.units = M("400");
    expect_amount("percentage_service_spec free events > events", &t.p, &t.in, "0");
}

/* percentage_service_spec.rb "when applying min / max amount per transaction". */
static void min_max_fixture(struct pct *t)
{
    pct_fixture(t);
    struct charge_model_percentage *pc = &t->p.percentage;
    pc->rate = M("2.99");
    pc->fixed_amount = M("0");
    pc->has_free_units_per_events = false;
    pc->free_units_per_total_aggregation = M("0");
    pc->has_per_transaction_min_amount = true;
    pc->per_transaction_min_amount = M("1.75");
    pc->has_per_transaction_max_amount = true;
    pc->per_transaction_max_amount = M("12");
    t->values[0] = M("10");
    t->values[1] = M("80");
    t->values[2] = M("10000");
    t->in.units = M("10090");
    t->in.events_count = 3;
    t->in.event_values_count = 3;
}

static void test_percentage_min_max_lago(void **state)
{
    (void)state;
    struct pct t;

    min_max_fixture(&t); /* without min and max (Lago without premium): 10090 x 2.99% */
    t.p.percentage.has_per_transaction_min_amount = false;
    t.p.percentage.has_per_transaction_max_amount = false;
    expect_amount("min/max spec, none", &t.p, &t.in, "301.691");

    min_max_fixture(&t); /* 1.75 (min) + 2.392 + 12 (max) */
    expect_amount("min/max spec", &t.p, &t.in, "16.142");

    min_max_fixture(&t); /* with fixed_amount 2.0: 2.299 + 4.392 + 12 */
    t.p.percentage.fixed_amount = M("2.0");
    expect_amount("min/max spec fixed", &t.p, &t.in, "18.691");

    min_max_fixture(&t); /* with 2 free events: only 10000 pays, capped at 12 */
    t.p.percentage.has_free_units_per_events = true;
    t.p.percentage.free_units_per_events = 2;
    expect_amount("min/max spec free events", &t.p, &t.in, "12");

    min_max_fixture(&t); /* 30 free: 10 free, 60 of 80 pays 1.794, then 12 */
    t.p.percentage.free_units_per_total_aggregation = M("30");
    expect_amount("min/max spec free total", &t.p, &t.in, "13.794");

    min_max_fixture(&t); /* 3 free events and 10000 free: the free amount outlasts the events */
    t.p.percentage.has_free_units_per_events = true;
    t.p.percentage.free_units_per_events = 3;
    t.p.percentage.free_units_per_total_aggregation = M("10000");
    expect_amount("min/max spec both", &t.p, &t.in, "2.691");

    /* Beyond the spec. */
    min_max_fixture(&t); /* 3 free events but only 30 free: the free amount runs out inside
                          * event 2, which ends the free events too: 1.794 + 12 */
    t.p.percentage.has_free_units_per_events = true;
    t.p.percentage.free_units_per_events = 3;
    t.p.percentage.free_units_per_total_aggregation = M("30");
    expect_amount("free amount ends the free events", &t.p, &t.in, "13.794");
    min_max_fixture(&t); /* min only: 1.75 + 2.392 + 299 */
    t.p.percentage.has_per_transaction_max_amount = false;
    expect_amount("min only", &t.p, &t.in, "303.142");
    min_max_fixture(&t); /* max only: 0.299 + 2.392 + 12 */
    t.p.percentage.has_per_transaction_min_amount = false;
    expect_amount("max only", &t.p, &t.in, "14.691");
    min_max_fixture(&t); /* the event that exhausts the free amount pays its rest plus fixed,
                          * raised to the min: 10 free of 10 + 0.001 of 80... */
    t.p.percentage.free_units_per_total_aggregation = M("89.999");
    t.p.percentage.fixed_amount = M("0.5");
    /* event 2: 0.001 x 2.99% + 0.5 = 0.5000299 < 1.75 -> 1.75; event 3: 12 */
    expect_amount("free amount ends inside an event", &t.p, &t.in, "13.75");
    min_max_fixture(&t); /* a free amount equal to the first value: that event is not free (Lago
                          * frees only while the remaining amount exceeds the value), it pays
                          * 0 + fixed, raised to the min: 1.75 + 2.892 + 12 */
    t.p.percentage.free_units_per_total_aggregation = M("10");
    t.p.percentage.fixed_amount = M("0.5");
    expect_amount("free amount equal to a value", &t.p, &t.in, "16.642");
    min_max_fixture(&t); /* min above max (refused by validation): Lago tests the min first */
    t.p.percentage.per_transaction_min_amount = M("20");
    t.p.percentage.per_transaction_max_amount = M("12");
    expect_amount("min above max", &t.p, &t.in, "52"); /* 20 + 20 + 12 */
    min_max_fixture(&t);                               /* no events: nothing, whatever the units */
    t.in.event_values_count = 0;
    t.in.event_values = NULL;
    expect_amount("min/max no events", &t.p, &t.in, "0");
    min_max_fixture(&t); /* a missing values array is refused, not read */
    t.in.event_values = NULL;
    expect_status("min/max NULL values", &t.p, &t.in, CHARGE_MODEL_ERR_INVALID);
}

/* Each free-units option on its own, with each running-total shape. */
static void test_percentage_free_units(void **state)
{
    (void)state;
    struct pct t;
    pct_fixture(&t);
    struct charge_model_percentage *pc = &t.p.percentage;
    pc->rate = M("10");
    pc->fixed_amount = M("1");
    t.values[0] = M("10");
    t.values[1] = M("20");
    t.values[2] = M("30");
    t.in.units = M("60");
    t.in.events_count = 3;
    t.in.event_values_count = 3;

    /* 2 free events: running total [10, 30]; 30 free units, 2 free events -> 3 + 1. */
    pc->has_free_units_per_total_aggregation = false;
    pc->free_units_per_events = 2;
    expect_amount("free events only", &t.p, &t.in, "4");

    /* 25 free: running total [10, 30] (stops after passing 25): 25 free units, 1 event below
     * 25 -> 35 x 10% + 2 x 1. */
    pc->has_free_units_per_events = false;
    pc->has_free_units_per_total_aggregation = true;
    pc->free_units_per_total_aggregation = M("25");
    expect_amount("free total only", &t.p, &t.in, "5.5");

    /* Both: 1 free event and 25 free: running total [10]: 10 free units, 1 free event. */
    pc->has_free_units_per_events = true;
    pc->free_units_per_events = 1;
    expect_amount("free events and total", &t.p, &t.in, "7");

    /* A prefix sum equal to the free total is not below it: 30 free, 1 free event. */
    pc->has_free_units_per_events = false;
    pc->free_units_per_total_aggregation = M("30");
    expect_amount("prefix sum equal to free total", &t.p, &t.in, "5");

    /* Negative values: the running total can fall back under the free total after reaching
     * it (Lago adds the value after the one that reached it): [30, 10, 15], 15 free units,
     * 2 events below 30 -> 0 x 10% + 1 x 1. */
    t.values[0] = M("30");
    t.values[1] = M("-20");
    t.values[2] = M("5");
    t.in.units = M("15");
    expect_amount("negative event values", &t.p, &t.in, "1");
    t.values[0] = M("10");
    t.values[1] = M("20");
    t.values[2] = M("30");
    t.in.units = M("60");

    /* Free total above everything: all units free, and every event below it is free. */
    pc->has_free_units_per_events = false;
    pc->free_units_per_total_aggregation = M("1000");
    expect_amount("free total above all", &t.p, &t.in, "0");

    /* A metric without running total (max_agg): no free units value, free events still count. */
    pc->has_free_units_per_events = true;
    pc->free_units_per_events = 2;
    t.in.running_total = CHARGE_MODEL_RUNNING_TOTAL_NONE;
    expect_amount("no running total", &t.p, &t.in, "7");

    /* count_agg (running total 1..units): 5 events, 2 free -> element [1] = 2 free units. */
    t.in.running_total = CHARGE_MODEL_RUNNING_TOTAL_UNITS;
    t.in.units = M("5");
    t.in.events_count = 5;
    t.in.event_values = NULL;
    t.in.event_values_count = 0;
    pc->has_free_units_per_total_aggregation = false;
    expect_amount("count free events", &t.p, &t.in, "3.3"); /* 3 x 10% + 3 x 1 */
    /* Both set on a count metric: the N-th element wins even past the free total (a Lago
     * quirk a sum metric does not have): 5 free units, not 3; 2 free events. */
    pc->free_units_per_events = 5;
    pc->has_free_units_per_total_aggregation = true;
    pc->free_units_per_total_aggregation = M("3");
    t.in.units = M("10");
    t.in.events_count = 10;
    expect_amount("count both", &t.p, &t.in, "8.5"); /* 5 x 10% + (10 - 2) x 1 */
    /* Neither set: the running total is empty, nothing is free. */
    pc->has_free_units_per_events = false;
    pc->has_free_units_per_total_aggregation = false;
    expect_amount("count no free", &t.p, &t.in, "11");
    /* Free total only on a count: 3.5 free -> elements 1, 2, 3 below it. */
    pc->has_free_units_per_total_aggregation = true;
    pc->free_units_per_total_aggregation = M("3.5");
    expect_amount("count free total", &t.p, &t.in, "7.65"); /* 6.5 x 10% + 7 x 1 */
    /* unique_count_agg: 5 unique values over 8 events, 100 free: the running total 1..5 has 5
     * elements below 100, so 3 events pay the fixed fee. */
    t.in.units = M("5");
    t.in.events_count = 8;
    pc->free_units_per_total_aggregation = M("100");
    expect_amount("unique count free total", &t.p, &t.in, "3");
    /* A huge count costs nothing to hold. */
    t.in.units = M("100000000000000000000000000000");
    t.in.events_count = INT64_MAX;
    pc->free_units_per_total_aggregation = M("2");
    money_t got;
    assert_int_equal(charge_model_amount(&t.p, &t.in, &got), CHARGE_MODEL_OK);

    /* units 0 drops every fixed fee. */
    pct_fixture(&t);
    t.p.percentage.has_free_units_per_events = false;
    t.p.percentage.has_free_units_per_total_aggregation = false;
    t.in.units = M("0");
    expect_amount("units 0", &t.p, &t.in, "0");

    /* Values required for the sum running total. */
    pct_fixture(&t);
    t.in.event_values = NULL;
    expect_status("NULL values", &t.p, &t.in, CHARGE_MODEL_ERR_INVALID);
    pct_fixture(&t);
    t.in.events_count = -1;
    expect_status("negative events_count", &t.p, &t.in, CHARGE_MODEL_ERR_INVALID);
    pct_fixture(&t);
    t.in.running_total = (enum charge_model_running_total)7;
    expect_status("unknown running total", &t.p, &t.in, CHARGE_MODEL_ERR_INVALID);
}

/* ---- Negative units, overflow, invalid input, fee ------------------------------------------ */

static void test_negative_units(void **state)
{
    (void)state;
    struct charge_model_properties s = standard("3");
    struct charge_model_properties g = ranged(CHARGE_MODEL_GRADUATED, graduated_spec_ranges(), 3);
    struct charge_model_properties v = ranged(CHARGE_MODEL_VOLUME, volume_spec_ranges(), 3);
    struct charge_model_properties k = package("5", 10, 0);
    struct {
        const struct charge_model_properties *p;
        const char *want;
    } cases[] = {{&s, "-6"}, {&g, "-18"}, {&v, "0"}, {&k, "0"}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct charge_model_input in = U("-2");
        expect_amount("negative units", cases[i].p, &in, cases[i].want);
        money_t a;
        int64_t cents = -1;
        assert_int_equal(charge_model_amount(cases[i].p, &in, &a), CHARGE_MODEL_OK);
        assert_int_equal(charge_model_fee_cents(in.units, a, 2, &cents), CHARGE_MODEL_OK);
        assert_int_equal(cents, 0);
    }
    /* A positive amount with negative units is zeroed too (Lago checks both). */
    int64_t cents = -1;
    assert_int_equal(charge_model_fee_cents(M("-1"), M("9"), 2, &cents), CHARGE_MODEL_OK);
    assert_int_equal(cents, 0);
}

static void test_fee_cents(void **state)
{
    (void)state;
    struct {
        const char *amount;
        int32_t exponent;
        int64_t cents;
    } cases[] = {
        {"17.975", 2, 1798},  {"17.974999", 2, 1797},
        {"0.005", 2, 1},      {"0.0049999", 2, 0},
        {"51.2345", 2, 5123}, {"2.5", 0, 3},
        {"1.0005", 3, 1001},  {"0", 2, 0},
        {"100.5", 2, 10050},  {"92233720368547758.07", 2, INT64_MAX},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        int64_t cents = -1;
        enum charge_model_status st =
            charge_model_fee_cents(M("1"), M(cases[i].amount), cases[i].exponent, &cents);
        if (st != CHARGE_MODEL_OK || cents != cases[i].cents)
            fail_msg("fee_cents(%s, %d): %s %" PRId64 ", want %" PRId64, cases[i].amount,
                     cases[i].exponent, st_name(st), cents, cases[i].cents);
    }
    int64_t cents = 0;
    assert_int_equal(charge_model_fee_cents(M("1"), M("-0.001"), 2, &cents), CHARGE_MODEL_OK);
    assert_int_equal(cents, 0);
    assert_int_equal(charge_model_fee_cents(M("1"), M("92233720368547758.08"), 2, &cents),
                     CHARGE_MODEL_ERR_OVERFLOW);
    assert_int_equal(charge_model_fee_cents(M("1"), M("1"), -1, &cents), CHARGE_MODEL_ERR_INVALID);
    assert_int_equal(charge_model_fee_cents(M("1"), M("1"), 39, &cents), CHARGE_MODEL_ERR_INVALID);
    assert_int_equal(charge_model_fee_cents(M("1"), (money_t){1, 99}, 2, &cents),
                     CHARGE_MODEL_ERR_INVALID);
}

static void test_limits(void **state)
{
    (void)state;
    /* Products past 10^38 are reported, never wrapped; past 38 digits, the first 38 are kept
     * and the rest truncated: a fraction of a cent, not a refused event (an audit's). */
    struct charge_model_properties s = standard("100");
    struct charge_model_input in = U("10000000000000000000000000000000000000"); /* 10^37 */
    expect_status("standard overflow", &s, &in, CHARGE_MODEL_ERR_OVERFLOW);
    in = U("99999999999999999999999999999999999");
    expect_amount("standard near limit", &s, &in, "9999999999999999999999999999999999900");
    struct charge_model_properties fine = standard("0.0000000000000000000001"); /* 22 decimals */
    in = U("1.00000000000000000001");                                           /* 20 decimals */
    expect_amount("standard precision", &fine, &in, "0.00000000000000000000010000000000000000");

    /* Flat amounts adding up past the limit. */
    struct charge_model_range big[] = {
        RG("0", "1", "0", "90000000000000000000000000000000000000"),
        RG("2", NULL, "0", "90000000000000000000000000000000000000")};
    struct charge_model_properties g = ranged(CHARGE_MODEL_GRADUATED, big, 2);
    in = U("1");
    expect_amount("graduated one big flat", &g, &in, "90000000000000000000000000000000000000");
    in = U("2");
    expect_status("graduated flats overflow", &g, &in, CHARGE_MODEL_ERR_OVERFLOW);

    /* Volume: 38 nines at 0.5 needs 39 digits (its half truncated, then the flat 50 added);
     * 10^37 at 10 reaches 10^38. */
    struct charge_model_properties v = ranged(CHARGE_MODEL_VOLUME, volume_spec_ranges(), 3);
    in = U("99999999999999999999999999999999999999");
    expect_amount("volume precision", &v, &in, "50000000000000000000000000000000000049");
    struct charge_model_range ten[] = {RG("0", NULL, "10", "0")};
    struct charge_model_properties vt = ranged(CHARGE_MODEL_VOLUME, ten, 1);
    in = U("10000000000000000000000000000000000000");
    expect_status("volume overflow", &vt, &in, CHARGE_MODEL_ERR_OVERFLOW);

    /* Package: packages x amount past the limit. */
    struct charge_model_properties k = package("10000000000000000000", 1, 0);
    in = U("100000000000000000000");
    expect_status("package overflow", &k, &in, CHARGE_MODEL_ERR_OVERFLOW);
    k = package("1", INT64_MAX, INT64_MAX);
    in = U("0");
    expect_amount("package int64 extremes", &k, &in, "0");
    in = U("99999999999999999999999999999999999999");
    expect_amount("package many packages", &k, &in, "10842021724855044341");

    /* Percentage rate on a huge total. */
    struct pct t;
    pct_fixture(&t);
    t.p.percentage.rate = M("99999999999999999999");
    t.in.units = M("99999999999999999999");
    expect_status("percentage overflow", &t.p, &t.in, CHARGE_MODEL_ERR_OVERFLOW);
}

static void test_invalid_input(void **state)
{
    (void)state;
    struct charge_model_input in = U("1");
    struct charge_model_properties p = package("1", 0, 0);
    expect_status("package size 0", &p, &in, CHARGE_MODEL_ERR_INVALID);
    p = package("1", 1, -1);
    expect_status("package negative free", &p, &in, CHARGE_MODEL_ERR_INVALID);

    struct charge_model_properties r = ranged(CHARGE_MODEL_GRADUATED, NULL, 0);
    expect_status("no ranges", &r, &in, CHARGE_MODEL_ERR_INVALID);
    r = ranged(CHARGE_MODEL_VOLUME, NULL, 2);
    expect_status("NULL ranges", &r, &in, CHARGE_MODEL_ERR_INVALID);
    r = ranged(CHARGE_MODEL_GRADUATED, graduated_spec_ranges(), CHARGE_MODEL_RANGES_MAX + 1);
    expect_status("too many ranges", &r, &in, CHARGE_MODEL_ERR_INVALID);

    struct charge_model_range bad[] = {RG("0", NULL, "1", "0")};
    bad[0].flat_amount = (money_t){1, 40};
    r = ranged(CHARGE_MODEL_GRADUATED, bad, 1);
    expect_status("invalid money in a range", &r, &in, CHARGE_MODEL_ERR_INVALID);

    struct charge_model_properties s = standard("1");
    in.units = (money_t){MONEY_COEF_LIMIT, 0};
    expect_status("invalid units", &s, &in, CHARGE_MODEL_ERR_INVALID);
    in = U("1");
    in.has_full_units = true;
    in.full_units = (money_t){1, -1};
    struct charge_model_properties v = ranged(CHARGE_MODEL_VOLUME, volume_spec_ranges(), 3);
    expect_status("invalid full units", &v, &in, CHARGE_MODEL_ERR_INVALID);

    s.kind = (enum charge_model_kind)42;
    in = U("1");
    expect_status("unknown kind", &s, &in, CHARGE_MODEL_ERR_INVALID);
    s = standard("1");
    s.standard.amount = (money_t){1, 39};
    expect_status("invalid standard amount", &s, &in, CHARGE_MODEL_ERR_INVALID);

    struct pct t;
    pct_fixture(&t);
    t.values[1] = (money_t){5, 77};
    expect_status("invalid event value", &t.p, &t.in, CHARGE_MODEL_ERR_INVALID);
    pct_fixture(&t);
    t.p.percentage.free_units_per_events = -1;
    expect_status("negative free events", &t.p, &t.in, CHARGE_MODEL_ERR_INVALID);
}

/* ---- Validation ----------------------------------------------------------------------------- */

/* Expects exactly the listed "field:code" errors, in order. */
static void expect_errors(const char *what, const struct charge_model_properties *p,
                          const char *const *want, size_t n_want)
{
    struct charge_model_error errs[CHARGE_MODEL_ERRORS_MAX];
    size_t n = charge_model_validate(p, errs, CHARGE_MODEL_ERRORS_MAX);
    if (n != n_want)
        fail_msg("%s: %zu errors (first %s:%s), want %zu", what, n, n ? errs[0].field : "-",
                 n ? errs[0].code : "-", n_want);
    for (size_t i = 0; i < n; i++) {
        char got[160];
        snprintf(got, sizeof got, "%s:%s", errs[i].field, errs[i].code);
        if (strcmp(got, want[i]) != 0)
            fail_msg("%s: error %zu is %s, want %s", what, i, got, want[i]);
    }
}

#define EXPECT_ERRORS(what, p, ...)                                                                \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        expect_errors(what, p, want_, COUNT(want_));                                               \
    } while (0)
#define EXPECT_VALID(what, p) expect_errors(what, p, NULL, 0)

static void test_validate_simple(void **state)
{
    (void)state;
    /* spec/services/charges/validators/standard_service_spec.rb */
    struct charge_model_properties s = standard("0");
    EXPECT_VALID("standard 0", &s);
    s = standard("-0.01");
    EXPECT_ERRORS("standard negative", &s, "amount:invalid_amount");
    s.standard.amount = (money_t){1, 50};
    EXPECT_ERRORS("standard invalid money", &s, "amount:invalid_amount");

    /* spec/services/charges/validators/package_service_spec.rb */
    struct charge_model_properties k = package("100", 10, 10);
    EXPECT_VALID("package", &k);
    k = package("-3", 10, 10);
    EXPECT_ERRORS("package negative amount", &k, "amount:invalid_amount");
    k = package("100", -3, 10);
    EXPECT_ERRORS("package negative size", &k, "package_size:invalid_package_size");
    k = package("100", 0, 10);
    EXPECT_ERRORS("package zero size", &k, "package_size:invalid_package_size");
    k = package("100", 10, -3);
    EXPECT_ERRORS("package negative free", &k, "free_units:invalid_free_units");
    k = package("100", 10, 0);
    EXPECT_VALID("package free 0", &k);
    k = package("-1", 0, -1); /* Lago's order: amount, free_units, package_size */
    EXPECT_ERRORS("package all", &k, "amount:invalid_amount", "free_units:invalid_free_units",
                  "package_size:invalid_package_size");

    /* spec/services/charges/validators/percentage_service_spec.rb */
    struct pct t;
    pct_fixture(&t);
    EXPECT_VALID("percentage", &t.p);
    t.p.percentage.rate = M("-1");
    EXPECT_ERRORS("percentage rate", &t.p, "rate:invalid_rate");
    pct_fixture(&t);
    t.p.percentage.fixed_amount = M("-1");
    EXPECT_ERRORS("percentage fixed", &t.p, "fixed_amount:invalid_fixed_amount");
    pct_fixture(&t);
    t.p.percentage.free_units_per_events = 0;
    EXPECT_ERRORS("percentage free events 0", &t.p,
                  "free_units_per_events:invalid_free_units_per_events");
    t.p.percentage.free_units_per_events = -2;
    EXPECT_ERRORS("percentage free events -2", &t.p,
                  "free_units_per_events:invalid_free_units_per_events");
    t.p.percentage.has_free_units_per_events = false; /* absent: fine */
    EXPECT_VALID("percentage no free events", &t.p);
    pct_fixture(&t);
    t.p.percentage.free_units_per_total_aggregation = M("-0.5");
    EXPECT_ERRORS("percentage free total", &t.p,
                  "free_units_per_total_aggregation:invalid_free_units_per_total_aggregation");
    t.p.percentage.free_units_per_total_aggregation = M("0");
    EXPECT_VALID("percentage free total 0", &t.p);
    pct_fixture(&t);
    t.p.percentage.has_per_transaction_min_amount = true;
    t.p.percentage.per_transaction_min_amount = M("-1");
    EXPECT_ERRORS("percentage min", &t.p, "per_transaction_min_amount:invalid_amount");
    pct_fixture(&t);
    t.p.percentage.has_per_transaction_max_amount = true;
    t.p.percentage.per_transaction_max_amount = M("-1");
    EXPECT_ERRORS("percentage max", &t.p, "per_transaction_max_amount:invalid_amount");
    pct_fixture(&t);
    t.p.percentage.has_per_transaction_min_amount = true;
    t.p.percentage.per_transaction_min_amount = M("5");
    t.p.percentage.has_per_transaction_max_amount = true;
    t.p.percentage.per_transaction_max_amount = M("3");
    EXPECT_ERRORS("percentage max < min", &t.p,
                  "per_transaction_max_amount:per_transaction_max_lower_than_per_transaction_min");
    t.p.percentage.per_transaction_max_amount = M("5");
    EXPECT_VALID("percentage max = min", &t.p);
    /* Everything at once, in Lago's order; the two negatives are still compared. */
    pct_fixture(&t);
    struct charge_model_percentage *pc = &t.p.percentage;
    pc->rate = M("-1");
    pc->fixed_amount = M("-1");
    pc->free_units_per_events = 0;
    pc->free_units_per_total_aggregation = M("-1");
    pc->has_per_transaction_min_amount = true;
    pc->per_transaction_min_amount = M("-1");
    pc->has_per_transaction_max_amount = true;
    pc->per_transaction_max_amount = M("-2");
    EXPECT_ERRORS("percentage all", &t.p, "rate:invalid_rate", "fixed_amount:invalid_fixed_amount",
                  "free_units_per_events:invalid_free_units_per_events",
                  "free_units_per_total_aggregation:invalid_free_units_per_total_aggregation",
                  "per_transaction_min_amount:invalid_amount",
                  "per_transaction_max_amount:invalid_amount",
                  "per_transaction_max_amount:per_transaction_max_lower_than_per_transaction_min");

    struct charge_model_properties u = {.kind = (enum charge_model_kind)9};
    EXPECT_ERRORS("unknown kind", &u, "charge_model:value_is_invalid");
}

static void test_validate_ranges(void **state)
{
    (void)state;
    /* spec/services/charges/validators/graduated_service_spec.rb */
    struct charge_model_range ok[] = {RG("0", "10", "0", "0"), RG("11", "20", "10", "20"),
                                      RG("21", NULL, "15", "30")};
    struct charge_model_properties g = ranged(CHARGE_MODEL_GRADUATED, ok, 3);
    EXPECT_VALID("graduated", &g);
    g = ranged(CHARGE_MODEL_GRADUATED, ok, 0);
    EXPECT_ERRORS("graduated empty", &g, "graduated_ranges:missing_graduated_ranges");
    g = ranged(CHARGE_MODEL_GRADUATED, NULL, 0);
    EXPECT_ERRORS("graduated nil", &g, "graduated_ranges:missing_graduated_ranges");

    struct charge_model_range neg_start[] = {RG("-1", "100", "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, neg_start, 1);
    EXPECT_ERRORS("graduated not starting at 0", &g, "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range one_start[] = {RG("1", NULL, "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, one_start, 1);
    EXPECT_ERRORS("graduated starting at 1", &g, "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range closed[] = {RG("0", "100", "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, closed, 1);
    EXPECT_ERRORS("graduated not ending at infinity", &g,
                  "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range holes[] = {RG("0", "100", "0", "0"), RG("120", "100", "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, holes, 2);
    EXPECT_ERRORS("graduated holes", &g, "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range overlap[] = {RG("0", "100", "0", "0"), RG("90", "100", "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, overlap, 2);
    EXPECT_ERRORS("graduated overlapping", &g, "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range open_mid[] = {RG("0", NULL, "0", "0"), RG("0", NULL, "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, open_mid, 2);
    EXPECT_ERRORS("graduated open range not last", &g, "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range empty_tier[] = {RG("0", "0", "0", "0"), RG("0", NULL, "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, empty_tier, 2);
    EXPECT_ERRORS("graduated to = from", &g, "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range two_bad[] = {RG("0", "10", "0", "0"), RG("12", "20", "0", "0"),
                                           RG("25", NULL, "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, two_bad, 3);
    EXPECT_ERRORS("graduated two holes repeat the code", &g,
                  "graduated_ranges:invalid_graduated_ranges",
                  "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range amounts[] = {RG("0", NULL, "-2", "-2")};
    g = ranged(CHARGE_MODEL_GRADUATED, amounts, 1);
    EXPECT_ERRORS("graduated negative amounts", &g, "per_unit_amount:invalid_amount",
                  "flat_amount:invalid_amount");
    struct charge_model_range dec[] = {RG("0", "0.1", "10", "0"), RG("0.1", "1", "5", "0"),
                                       RG("1", NULL, "2", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, dec, 3);
    EXPECT_VALID("graduated decimal adjacent", &g);
    struct charge_model_range dec_gap[] = {RG("0", "0.1", "10", "0"), RG("0.5", NULL, "5", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, dec_gap, 2);
    EXPECT_ERRORS("graduated decimal gap", &g, "graduated_ranges:invalid_graduated_ranges");
    struct charge_model_range mixed[] = {RG("0", "10", "0", "0"), RG("10", "20", "0", "0"),
                                         RG("21", NULL, "0", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, mixed, 3);
    EXPECT_VALID("graduated mixed adjacency", &g);

    /* Error order within a range, and the cap. */
    struct charge_model_range all_bad[] = {RG("5", "1", "-1", "-1"), RG("1", NULL, "-1", "0")};
    g = ranged(CHARGE_MODEL_GRADUATED, all_bad, 2);
    EXPECT_ERRORS("graduated order", &g, "per_unit_amount:invalid_amount",
                  "flat_amount:invalid_amount", "graduated_ranges:invalid_graduated_ranges",
                  "per_unit_amount:invalid_amount");
    struct charge_model_error one;
    assert_int_equal(charge_model_validate(&g, &one, 1), 4);
    assert_string_equal(one.field, "per_unit_amount");
    assert_int_equal(charge_model_validate(&g, NULL, 0), 4);

    /* Tally's limit on the number of ranges. */
    static struct charge_model_range many[CHARGE_MODEL_RANGES_MAX + 1];
    for (int i = 0; i <= CHARGE_MODEL_RANGES_MAX; i++) {
        char from[24], to[24];
        snprintf(from, sizeof from, "%d", i == 0 ? 0 : i * 10 + 1);
        snprintf(to, sizeof to, "%d", i * 10 + 10);
        many[i] = RG(from, i == CHARGE_MODEL_RANGES_MAX - 1 ? NULL : to, "1", "0");
    }
    g = ranged(CHARGE_MODEL_GRADUATED, many, CHARGE_MODEL_RANGES_MAX);
    EXPECT_VALID("graduated at the limit", &g);
    many[CHARGE_MODEL_RANGES_MAX - 1] = RG("991", "1000", "1", "0");
    many[CHARGE_MODEL_RANGES_MAX] = RG("1001", NULL, "1", "0");
    g = ranged(CHARGE_MODEL_GRADUATED, many, CHARGE_MODEL_RANGES_MAX + 1);
    EXPECT_ERRORS("graduated past the limit", &g, "graduated_ranges:invalid_graduated_ranges");

    /* spec/services/charges/validators/graduated_percentage_service_spec.rb */
    struct charge_model_range gp[] = {RP("0", "10", "1", "0"), RP("11", NULL, "2", "1")};
    struct charge_model_properties p = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, gp, 2);
    EXPECT_VALID("graduated percentage", &p);
    p = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, gp, 0);
    EXPECT_ERRORS("graduated percentage empty", &p,
                  "graduated_percentage_ranges:missing_graduated_percentage_ranges");
    struct charge_model_range gp_bad[] = {RP("0", "10", "-1", "-1"), RP("12", NULL, "1", "0")};
    p = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, gp_bad, 2);
    EXPECT_ERRORS("graduated percentage bad", &p, "flat_amount:invalid_amount", "rate:invalid_rate",
                  "graduated_percentage_ranges:invalid_graduated_percentage_ranges");
    struct charge_model_range gp_adj[] = {RP("0", "0.5", "1", "0"), RP("0.5", NULL, "1", "0")};
    p = ranged(CHARGE_MODEL_GRADUATED_PERCENTAGE, gp_adj, 2);
    EXPECT_VALID("graduated percentage adjacent", &p);

    /* spec/services/charges/validators/volume_service_spec.rb */
    struct charge_model_range vok[] = {RG("0", "10", "0", "0"), RG("11", "20", "10", "20"),
                                       RG("21", NULL, "15", "30")};
    struct charge_model_properties v = ranged(CHARGE_MODEL_VOLUME, vok, 3);
    EXPECT_VALID("volume", &v);
    v = ranged(CHARGE_MODEL_VOLUME, vok, 0);
    EXPECT_ERRORS("volume empty", &v, "volume_ranges:missing_volume_ranges");
    v = ranged(CHARGE_MODEL_VOLUME, neg_start, 1);
    EXPECT_ERRORS("volume not starting at 0", &v, "volume_ranges:invalid_volume_ranges");
    v = ranged(CHARGE_MODEL_VOLUME, closed, 1);
    EXPECT_ERRORS("volume not ending at infinity", &v, "volume_ranges:invalid_volume_ranges");
    v = ranged(CHARGE_MODEL_VOLUME, holes, 2);
    EXPECT_ERRORS("volume holes", &v, "volume_ranges:invalid_volume_ranges");
    v = ranged(CHARGE_MODEL_VOLUME, overlap, 2);
    EXPECT_ERRORS("volume overlapping", &v, "volume_ranges:invalid_volume_ranges");
    v = ranged(CHARGE_MODEL_VOLUME, amounts, 1);
    EXPECT_ERRORS("volume negative amounts", &v, "per_unit_amount:invalid_amount",
                  "flat_amount:invalid_amount");
    /* Volume ranges start exactly one after the previous: adjacent ones and a gap of 2 fail. */
    struct charge_model_range vadj[] = {RG("0", "10", "1", "0"), RG("10", NULL, "1", "0")};
    v = ranged(CHARGE_MODEL_VOLUME, vadj, 2);
    EXPECT_ERRORS("volume adjacent", &v, "volume_ranges:invalid_volume_ranges");
    struct charge_model_range vgap[] = {RG("0", "10", "1", "0"), RG("12", NULL, "1", "0")};
    v = ranged(CHARGE_MODEL_VOLUME, vgap, 2);
    EXPECT_ERRORS("volume gap of 2", &v, "volume_ranges:invalid_volume_ranges");
    struct charge_model_range vbadmoney[] = {RG("0", NULL, "1", "0")};
    vbadmoney[0].from_value = (money_t){0, 45};
    v = ranged(CHARGE_MODEL_VOLUME, vbadmoney, 1);
    EXPECT_ERRORS("volume invalid bound", &v, "volume_ranges:invalid_volume_ranges");
}

/* ---- Property tests ------------------------------------------------------------------------- */

#include "splitmix.h"
static uint64_t total_cases;

static money_t rand_money(uint64_t max_coef, int32_t max_scale)
{
    return (money_t){(i128)(next() % (max_coef + 1)), (int32_t)below((uint32_t)max_scale + 1)};
}

static void mpz_set_i128(mpz_t z, i128 v)
{
    u128 m = v < 0 ? (u128)0 - (u128)v : (u128)v;
    mpz_set_ui(z, (unsigned long)(uint64_t)(m >> 64));
    mpz_mul_2exp(z, z, 64);
    mpz_add_ui(z, z, (unsigned long)(uint64_t)m);
    if (v < 0)
        mpz_neg(z, z);
}

static void mpq_set_money(mpq_t q, money_t v)
{
    mpz_t den;
    mpz_init(den);
    mpz_set_i128(mpq_numref(q), v.coef);
    mpz_ui_pow_ui(den, 10, (unsigned long)v.scale);
    mpz_set(mpq_denref(q), den);
    mpq_canonicalize(q);
    mpz_clear(den);
}

static int cmp_money(const void *a, const void *b)
{
    return money_cmp(*(const money_t *)a, *(const money_t *)b);
}

/*
 * Random valid ranges: `n` tiers with bounds in hundredths (or integers when `integer`),
 * each boundary adjacent or one apart (per `style`: 0 all adjacent, 1 all +1, 2 mixed).
 * Graduated and graduated_percentage take both; volume only +1.
 */
static void rand_ranges(struct charge_model_range *r, size_t n, bool integer, int style)
{
    money_t to = MONEY_ZERO;
    for (size_t i = 0; i < n; i++) {
        money_t from = MONEY_ZERO;
        if (i > 0) {
            bool adjacent = style == 0 || (style == 2 && below(2) == 0);
            from = to;
            if (!adjacent)
                assert_int_equal(money_add(to, money_from_int(1), &from), MONEY_OK);
        }
        money_t width =
            integer ? money_from_int(1 + (int64_t)below(12)) : (money_t){1 + (i128)below(1500), 2};
        assert_int_equal(money_add(from, width, &to), MONEY_OK);
        r[i] = (struct charge_model_range){
            .from_value = from,
            .to_value = to,
            .has_to_value = i + 1 < n,
            .per_unit_amount = rand_money(100000, 4),
            .rate = rand_money(10000, 3),
            .flat_amount = below(3) == 0 ? MONEY_ZERO : rand_money(100000, 3),
        };
    }
}

/* Units to probe: every bound and its +-0.0001 neighbours, plus random values. */
static size_t probe_units(const struct charge_model_range *r, size_t n, money_t *out, size_t cap)
{
    size_t k = 0;
    money_t eps = {1, 4};
    for (size_t i = 0; i < n && k + 6 <= cap; i++) {
        money_t b[2] = {r[i].from_value, r[i].has_to_value ? r[i].to_value : r[i].from_value};
        for (int j = 0; j < 2; j++) {
            out[k++] = b[j];
            assert_int_equal(money_add(b[j], eps, &out[k++]), MONEY_OK);
            assert_int_equal(money_sub(b[j], eps, &out[k++]), MONEY_OK);
        }
    }
    /* Random units from -1 to 15 past the last from_value, with 4 decimals. */
    money_t top;
    assert_int_equal(money_round(r[n - 1].from_value, 0, MONEY_ROUND_FLOOR, &top), MONEY_OK);
    uint64_t span = ((uint64_t)top.coef + 16) * 10000;
    while (k < cap)
        out[k++] = (money_t){(i128)(next() % span) - 10000, 4};
    return k;
}

/* Graduated and graduated_percentage fees never decrease with units. */
static void prop_graduated_monotone(void **state)
{
    (void)state;
    reseed(1);
    struct charge_model_range r[8];
    money_t units[64];
    uint64_t cases = 0;
    for (int iter = 0; iter < 1500; iter++) {
        size_t n = 1 + below(7);
        rand_ranges(r, n, below(2) == 0, (int)below(3));
        enum charge_model_kind kind =
            below(2) ? CHARGE_MODEL_GRADUATED : CHARGE_MODEL_GRADUATED_PERCENTAGE;
        struct charge_model_properties p = ranged(kind, r, n);
        if (charge_model_validate(&p, NULL, 0) != 0)
            fail_msg("generated ranges invalid (seed %" PRIu64 ", case %d)", seed, iter);
        size_t m = probe_units(r, n, units, COUNT(units));
        qsort(units, m, sizeof units[0], cmp_money);
        money_t prev = MONEY_ZERO;
        for (size_t i = 0; i < m; i++) {
            struct charge_model_input in = {.units = units[i]};
            money_t a;
            enum charge_model_status st = charge_model_amount(&p, &in, &a);
            if (st != CHARGE_MODEL_OK)
                fail_msg("monotone (seed %" PRIu64 ", case %d): status %s", seed, iter,
                         st_name(st));
            if (i > 0 && money_cmp(a, prev) < 0) {
                char b1[MONEY_TEXT_MAX], b2[MONEY_TEXT_MAX], b3[MONEY_TEXT_MAX], b4[MONEY_TEXT_MAX];
                fail_msg("%s decreases (seed %" PRIu64 ", case %d): f(%s) = %s > f(%s) = %s",
                         charge_model_kind_name(kind), seed, iter, fmt(units[i - 1], b1),
                         fmt(prev, b2), fmt(units[i], b3), fmt(a, b4));
            }
            prev = a;
            cases++;
        }
    }
    total_cases += cases;
}

/*
 * Graduated against a unit-by-unit sum over integer ranges (all +1 or all adjacent), in GMP:
 * unit k (1-based) belongs to the tier with from <= k <= to (+1 ranges; the first tier holds
 * 1..to) or from < k <= to (adjacent); a tier's flat amount is due once the units reach past
 * the previous tier's to_value, and the first tier's always.
 */
static void prop_graduated_brute_force(void **state)
{
    (void)state;
    reseed(2);
    struct charge_model_range r[8];
    mpq_t want, got, t, per_units, hundred, price[8];
    mpq_inits(want, got, t, per_units, hundred, NULL);
    for (int i = 0; i < 8; i++)
        mpq_init(price[i]);
    mpq_set_ui(hundred, 100, 1);
    for (int iter = 0; iter < 1500; iter++) {
        size_t n = 1 + below(6);
        int style = (int)below(2); /* 0 adjacent, 1 +1 */
        rand_ranges(r, n, true, style);
        bool pct = below(2) == 0;
        struct charge_model_properties p =
            ranged(pct ? CHARGE_MODEL_GRADUATED_PERCENTAGE : CHARGE_MODEL_GRADUATED, r, n);
        /* Each tier's price per unit, as a rational. */
        for (size_t i = 0; i < n; i++) {
            mpq_set_money(price[i], pct ? r[i].rate : r[i].per_unit_amount);
            if (pct)
                mpq_div(price[i], price[i], hundred);
        }
        int64_t top = (int64_t)r[n - 1].from_value.coef + 5;
        mpq_set_ui(per_units, 0, 1);
        for (int64_t u = 0; u <= top; u++) {
            if (u >= 1) {
                /* unit u is in the first tier whose to_value is >= u */
                size_t tier = n - 1;
                for (size_t i = 0; i + 1 < n; i++) {
                    if (u <= (int64_t)r[i].to_value.coef) {
                        tier = i;
                        break;
                    }
                }
                mpq_add(per_units, per_units, price[tier]);
            }
            mpq_set(want, per_units);
            for (size_t i = 0; i < n; i++) {
                bool reached = i == 0 || u > (int64_t)r[i - 1].to_value.coef;
                if (reached) {
                    mpq_set_money(t, r[i].flat_amount);
                    mpq_add(want, want, t);
                }
            }
            struct charge_model_input in = {.units = money_from_int(u)};
            money_t a;
            assert_int_equal(charge_model_amount(&p, &in, &a), CHARGE_MODEL_OK);
            mpq_set_money(got, a);
            if (!mpq_equal(got, want)) {
                char b[MONEY_TEXT_MAX];
                fail_msg("graduated brute force (seed %" PRIu64 ", case %d, %s, style %d): "
                         "f(%" PRId64 ") = %s, want %s",
                         seed, iter, pct ? "percentage" : "per unit", style, u, fmt(a, b),
                         mpq_get_str(NULL, 10, want));
            }
            total_cases++;
        }
    }
    mpq_clears(want, got, t, per_units, hundred, NULL);
    for (int i = 0; i < 8; i++)
        mpq_clear(price[i]);
}

/* standard = units x amount, exactly (GMP), or an error exactly when it does not fit. */
static void prop_standard_exact(void **state)
{
    (void)state;
    reseed(3);
    mpz_t prod, lim, tmp;
    mpz_inits(prod, lim, tmp, NULL);
    mpz_ui_pow_ui(lim, 10, 38);
    for (int iter = 0; iter < 200000; iter++) {
        int digits_u = 1 + (int)below(20), digits_a = 1 + (int)below(20);
        i128 cu = (i128)(next() % UINT64_C(10000000000000000000)), ca = (i128)next();
        /* Trim to the chosen digit counts. */
        i128 pu = 1, pa = 1;
        for (int i = 0; i < digits_u; i++)
            pu *= 10;
        for (int i = 0; i < digits_a; i++)
            pa *= 10;
        cu %= pu;
        ca %= pa;
        if (below(4) == 0)
            cu = -cu;
        money_t u = {cu, (int32_t)below(25)}, a = {ca, (int32_t)below(25)};
        struct charge_model_properties p = {.kind = CHARGE_MODEL_STANDARD};
        p.standard.amount = a;
        struct charge_model_input in = {.units = u};
        money_t got;
        enum charge_model_status st = charge_model_amount(&p, &in, &got);
        /* Exact product: coefficient cu*ca at scale su+sa; strip trailing zeros to see what
         * must fit (38 digits, scale <= 38). */
        mpz_set_i128(prod, cu);
        mpz_set_i128(tmp, ca);
        mpz_mul(prod, prod, tmp);
        int32_t scale = u.scale + a.scale;
        while (scale > 0 && mpz_divisible_ui_p(prod, 10) && mpz_sgn(prod) != 0) {
            mpz_divexact_ui(prod, prod, 10);
            scale--;
        }
        if (mpz_sgn(prod) == 0)
            scale = 0;
        mpz_abs(tmp, prod);
        bool fits = mpz_cmp(tmp, lim) < 0 && scale <= MONEY_SCALE_MAX;
        /* Past 38 digits the product keeps its first 38, truncated toward zero (money.h's
         * money_mul_truncated); only an integer part of more than 38 digits overflows. */
        while (!fits && scale > 0 && (scale > MONEY_SCALE_MAX || mpz_cmpabs(prod, lim) >= 0)) {
            mpz_tdiv_q_ui(prod, prod, 10);
            scale--;
        }
        if (!fits && mpz_cmpabs(prod, lim) >= 0) {
            if (st != CHARGE_MODEL_ERR_OVERFLOW)
                fail_msg("standard (seed %" PRIu64 ", case %d): %s for a product past 10^38", seed,
                         iter, st_name(st));
            total_cases++;
            continue;
        }
        while (scale > 0 && mpz_divisible_ui_p(prod, 10) && mpz_sgn(prod) != 0) {
            mpz_divexact_ui(prod, prod, 10);
            scale--;
        }
        if (mpz_sgn(prod) == 0)
            scale = 0;
        if (st != CHARGE_MODEL_OK)
            fail_msg("standard (seed %" PRIu64 ", case %d): %s for a product that fits", seed, iter,
                     st_name(st));
        /* got.coef / 10^got.scale == prod / 10^scale */
        mpz_set_i128(tmp, got.coef);
        int32_t gs = got.scale;
        while (gs > scale) {
            if (!mpz_divisible_ui_p(tmp, 10))
                break;
            mpz_divexact_ui(tmp, tmp, 10);
            gs--;
        }
        if (gs != scale || mpz_cmp(tmp, prod) != 0) {
            char b[MONEY_TEXT_MAX];
            fail_msg("standard (seed %" PRIu64 ", case %d): got %s, want %s e-%d", seed, iter,
                     fmt(got, b), mpz_get_str(NULL, 10, prod), scale);
        }
        total_cases++;
    }
    mpz_clears(prod, lim, tmp, NULL);
}

/*
 * Volume against a brute-force search in GMP rationals over integer "+1" ranges: no range for
 * n <= -1; otherwise the first range whose to_value is at least n (or the open last one),
 * since for integer bounds ceil(n) >= from_value exactly when n > the previous to_value. The
 * amount is units x per_unit + flat, with n the full units when given.
 */
static void prop_volume_brute_force(void **state)
{
    (void)state;
    reseed(4);
    struct charge_model_range r[8];
    mpq_t want, n_q, t, minus_one, to_q;
    mpq_inits(want, n_q, t, minus_one, to_q, NULL);
    mpq_set_si(minus_one, -1, 1);
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 1 + below(7);
        rand_ranges(r, n, true, 1);
        struct charge_model_properties p = ranged(CHARGE_MODEL_VOLUME, r, n);
        if (charge_model_validate(&p, NULL, 0) != 0)
            fail_msg("volume ranges invalid (seed %" PRIu64 ", case %d)", seed, iter);
        int64_t top = (int64_t)r[n - 1].from_value.coef + 5;
        for (int j = 0; j < 40; j++) {
            money_t units = {(i128)(next() % (uint64_t)((top + 2) * 1000)) - 2000, 3};
            struct charge_model_input in = {.units = units};
            if (below(4) == 0) {
                in.has_full_units = true;
                in.full_units = (money_t){(i128)(next() % (uint64_t)((top + 2) * 100)) - 200, 2};
            }
            mpq_set_money(n_q, in.has_full_units ? in.full_units : in.units);
            mpq_set_ui(want, 0, 1);
            /* at 0 units too: the range's flat amount (Lago since lago-api#5760) */
            if (mpq_cmp(n_q, minus_one) > 0) {
                size_t tier = n - 1;
                for (size_t i = 0; i + 1 < n; i++) {
                    mpq_set_money(to_q, r[i].to_value);
                    if (mpq_cmp(n_q, to_q) <= 0) {
                        tier = i;
                        break;
                    }
                }
                mpq_set_money(want, units);
                mpq_set_money(t, r[tier].per_unit_amount);
                mpq_mul(want, want, t);
                mpq_set_money(t, r[tier].flat_amount);
                mpq_add(want, want, t);
            }
            money_t a;
            assert_int_equal(charge_model_amount(&p, &in, &a), CHARGE_MODEL_OK);
            mpq_set_money(t, a);
            if (!mpq_equal(t, want)) {
                char b1[MONEY_TEXT_MAX], b2[MONEY_TEXT_MAX];
                fail_msg("volume (seed %" PRIu64 ", case %d): f(%s) = %s, want %s", seed, iter,
                         fmt(units, b1), fmt(a, b2), mpq_get_str(NULL, 10, want));
            }
            total_cases++;
        }
    }
    mpq_clears(want, n_q, t, minus_one, to_q, NULL);
}

/*
 * A count's events keep no values (each is worth 1): with a per-transaction min or max, the
 * closed form priced from events_count alone equals pricing each of that many 1s in turn, for
 * any free events, free amount (fractions included), fixed amount, min and max.
 */
/*
 * charge_model_values_read tells a sum how many of its earliest values to keep: the amount
 * from those alone equals the amount from all of them, for random percentage properties and
 * values (negative ones too, which make a free total's walk run on), and every other model
 * reads none.
 */
static void prop_percentage_values_read(void **state)
{
    (void)state;
    money_t values[40];
    int priced_cases = 0;
    for (int round = 0; round < 20000; round++) {
        struct charge_model_properties p = {.kind = CHARGE_MODEL_PERCENTAGE};
        struct charge_model_percentage *pc = &p.percentage;
        pc->rate = rand_money(5000, 2);
        pc->has_fixed_amount = below(2);
        pc->fixed_amount = rand_money(300, 2);
        pc->has_per_transaction_min_amount = below(4) == 0;
        pc->per_transaction_min_amount = rand_money(200, 2);
        pc->has_per_transaction_max_amount = below(4) == 0;
        pc->per_transaction_max_amount = rand_money(400, 2);
        if (pc->has_per_transaction_min_amount && pc->has_per_transaction_max_amount &&
            money_cmp(pc->per_transaction_min_amount, pc->per_transaction_max_amount) > 0)
            pc->has_per_transaction_max_amount = false;
        pc->has_free_units_per_events = below(2);
        pc->free_units_per_events = 1 + (int64_t)below(45);
        pc->has_free_units_per_total_aggregation = below(2);
        pc->free_units_per_total_aggregation = rand_money(4500, (int32_t)below(3));
        size_t n = below(COUNT(values) + 1);
        money_t units = MONEY_ZERO;
        for (size_t i = 0; i < n; i++) {
            values[i] = rand_money(3000, (int32_t)below(3));
            if (below(8) == 0)
                values[i] = money_neg(values[i]);
            assert_int_equal(money_add(units, values[i], &units), MONEY_OK);
        }
        struct charge_model_input all = {.units = units,
                                         .events_count = (int64_t)n,
                                         .event_values = values,
                                         .event_values_count = n,
                                         .running_total = CHARGE_MODEL_RUNNING_TOTAL_EVENT_VALUES};
        struct charge_model_input first = all;
        /* priced one by one as they come: the total of every event's price beside them */
        if (charge_model_prices_each_event(&p)) {
            first.has_priced_total = true;
            first.priced_total = MONEY_ZERO;
            for (size_t i = 0; i < n; i++) {
                money_t alone;
                assert_int_equal(charge_model_event_amount(&p, values[i], &alone), CHARGE_MODEL_OK);
                assert_int_equal(money_add(first.priced_total, alone, &first.priced_total),
                                 MONEY_OK);
            }
            priced_cases++;
        }
        size_t read = charge_model_values_read(&p, false);
        if (read < first.event_values_count)
            first.event_values_count = read;
        if (first.event_values_count == 0)
            first.event_values = NULL;
        money_t a, b;
        char ab[MONEY_TEXT_MAX], bb[MONEY_TEXT_MAX];
        assert_int_equal(charge_model_amount(&p, &all, &a), CHARGE_MODEL_OK);
        assert_int_equal(charge_model_amount(&p, &first, &b), CHARGE_MODEL_OK);
        if (money_cmp(a, b) != 0)
            fail_msg("%zu events, %zu read: all %s, first %s", n, read, fmt(a, ab), fmt(b, bb));
        total_cases++;
    }
    assert_true(priced_cases > 1000);
    assert_int_equal(charge_model_values_read(
                         &(struct charge_model_properties){.kind = CHARGE_MODEL_STANDARD}, false),
                     0);
    struct charge_model_properties p = {.kind = CHARGE_MODEL_PERCENTAGE};
    p.percentage.rate = M("1");
    assert_int_equal(charge_model_values_read(&p, false), 0);
    p.percentage.has_free_units_per_total_aggregation = true;
    p.percentage.free_units_per_total_aggregation = M("0");
    assert_int_equal(charge_model_values_read(&p, false), 0);
    p.percentage.free_units_per_total_aggregation = M("5");
    assert_true(charge_model_values_read(&p, false) == CHARGE_MODEL_VALUES_ALL);
    p.percentage.has_free_units_per_events = true;
    p.percentage.free_units_per_events = 7;
    assert_int_equal(charge_model_values_read(&p, false), 7);
    p.percentage.has_per_transaction_max_amount = true;
    p.percentage.per_transaction_max_amount = M("5");
    assert_true(charge_model_values_read(&p, false) == CHARGE_MODEL_VALUES_ALL);
    assert_false(charge_model_prices_each_event(&p)); /* a free total walks every value */
    p.percentage.has_free_units_per_total_aggregation = false;
    assert_true(charge_model_prices_each_event(&p));
    assert_int_equal(charge_model_values_read(&p, false), 7); /* the free events only */
    p.percentage.has_free_units_per_events = false;
    assert_int_equal(charge_model_values_read(&p, false), 0);
    /* alone: 200 x 1% = 2 stays under the max of 5; 1000 x 1% = 10 is lowered to it */
    money_t alone;
    assert_int_equal(charge_model_event_amount(&p, M("200"), &alone), CHARGE_MODEL_OK);
    assert_int_equal(money_cmp(alone, M("2")), 0);
    assert_int_equal(charge_model_event_amount(&p, M("1000"), &alone), CHARGE_MODEL_OK);
    assert_int_equal(money_cmp(alone, M("5")), 0);
    p.percentage.has_per_transaction_max_amount = false;
    assert_int_equal(charge_model_event_amount(&p, M("1"), &alone), CHARGE_MODEL_ERR_INVALID);
}

static void prop_percentage_min_max_count(void **state)
{
    (void)state;
    money_t ones[40];
    for (size_t i = 0; i < COUNT(ones); i++)
        ones[i] = money_from_int(1);
    for (int round = 0; round < 20000; round++) {
        struct charge_model_properties p = {.kind = CHARGE_MODEL_PERCENTAGE};
        struct charge_model_percentage *pc = &p.percentage;
        pc->rate = rand_money(5000, 2);
        pc->has_fixed_amount = below(2);
        pc->fixed_amount = rand_money(300, 2);
        pc->has_per_transaction_min_amount = below(3) != 0;
        pc->per_transaction_min_amount = rand_money(200, 2);
        pc->has_per_transaction_max_amount = !pc->has_per_transaction_min_amount || below(2);
        pc->per_transaction_max_amount = rand_money(400, 2);
        pc->has_free_units_per_events = below(2);
        pc->free_units_per_events = 1 + (int64_t)below(45);
        pc->has_free_units_per_total_aggregation = below(2);
        pc->free_units_per_total_aggregation = rand_money(4500, (int32_t)below(3));
        int64_t events = (int64_t)below(COUNT(ones) + 1);
        struct charge_model_input counted = {.units = money_from_int(events),
                                             .events_count = events,
                                             .running_total = CHARGE_MODEL_RUNNING_TOTAL_UNITS};
        struct charge_model_input listed = {.units = money_from_int(events),
                                            .events_count = events,
                                            .event_values = ones,
                                            .event_values_count = (size_t)events,
                                            .running_total =
                                                CHARGE_MODEL_RUNNING_TOTAL_EVENT_VALUES};
        money_t a, b;
        char ab[MONEY_TEXT_MAX], bb[MONEY_TEXT_MAX], fb[MONEY_TEXT_MAX];
        assert_int_equal(charge_model_amount(&p, &counted, &a), CHARGE_MODEL_OK);
        assert_int_equal(charge_model_amount(&p, &listed, &b), CHARGE_MODEL_OK);
        if (money_cmp(a, b) != 0)
            fail_msg("%lld events, free amount %s: counted %s, listed %s", (long long)events,
                     fmt(pc->free_units_per_total_aggregation, fb), fmt(a, ab), fmt(b, bb));
        total_cases++;
    }
    /* Lago: each event 1 x 10% + 0.05 = 0.15, raised to the min of 1: two events, 2 */
    struct charge_model_properties p = {.kind = CHARGE_MODEL_PERCENTAGE};
    p.percentage.rate = M("10");
    p.percentage.has_fixed_amount = true;
    p.percentage.fixed_amount = M("0.05");
    p.percentage.has_per_transaction_min_amount = true;
    p.percentage.per_transaction_min_amount = M("1");
    struct charge_model_input two = {.units = money_from_int(2),
                                     .events_count = 2,
                                     .running_total = CHARGE_MODEL_RUNNING_TOTAL_UNITS};
    expect_amount("count with a min", &p, &two, "2");
}

/* Package against ceil((units - free) / size) computed in GMP; never decreasing in units. */
static void prop_package(void **state)
{
    (void)state;
    reseed(5);
    mpz_t num, den, q;
    mpz_inits(num, den, q, NULL);
    for (int iter = 0; iter < 100000; iter++) {
        int64_t size = 1 + (int64_t)below(1000), free = (int64_t)below(500);
        money_t amount = rand_money(1000000, 4);
        struct charge_model_properties p = {.kind = CHARGE_MODEL_PACKAGE};
        p.package = (struct charge_model_package){amount, size, free};
        money_t units = {(i128)(next() % 100000000) - 1000000, (int32_t)below(5)};
        struct charge_model_input in = {.units = units};
        money_t a;
        assert_int_equal(charge_model_amount(&p, &in, &a), CHARGE_MODEL_OK);
        /* paid = units - free as a fraction num / 10^scale; packages = ceil(num / (size*10^s)) */
        mpz_set_i128(num, units.coef);
        mpz_ui_pow_ui(den, 10, (unsigned long)units.scale);
        mpz_submul_ui(num, den, (unsigned long)free);
        mpz_mul_ui(den, den, (unsigned long)size);
        if (mpz_sgn(num) < 0)
            mpz_set_ui(q, 0);
        else
            mpz_cdiv_q(q, num, den);
        money_t want;
        assert_int_equal(money_mul(money_from_int((int64_t)mpz_get_si(q)), amount, &want),
                         MONEY_OK);
        if (money_cmp(a, want) != 0) {
            char b1[MONEY_TEXT_MAX], b2[MONEY_TEXT_MAX], b3[MONEY_TEXT_MAX];
            fail_msg("package (seed %" PRIu64 ", case %d): f(%s) = %s, want %s", seed, iter,
                     fmt(units, b1), fmt(a, b2), fmt(want, b3));
        }
        total_cases++;
    }
    mpz_clears(num, den, q, NULL);
}

/* ---- Prorated graduated --------------------------------------------------------------------- */

/* The walk's input: full values in order, each present `days` of `period_days`. */
static struct charge_model_input walk_input(const char *units, const money_t *values,
                                            const int64_t *days, size_t n, int64_t period_days)
{
    struct charge_model_input in = U(units);
    in.event_values = values;
    in.event_values_count = n;
    in.event_value_days = days;
    in.period_days = period_days;
    return in;
}

static void test_prorated_graduated(void **state)
{
    (void)state;
    struct charge_model_range r[] = {RG("0", "5", "1", "0"), RG("6", NULL, "2", "0")};
    struct charge_model_properties p = ranged(CHARGE_MODEL_GRADUATED, r, 2);
    /* 4 seats all month, 3 more from the 20th of a 30-day month (11 days): the 5th seat in
     * the first tier, the 6th and 7th in the second, each 11/30 of its price. */
    money_t v[] = {M("4"), M("3")};
    int64_t d[] = {30, 11};
    struct charge_model_input in = walk_input("5.1", v, d, 2, 30);
    expect_amount("prorated graduated, seats added", &p, &in, "5.833333333333333");
    /* every event all period: graduated's own amount */
    int64_t whole[] = {30, 30};
    in = walk_input("7", v, whole, 2, 30);
    expect_amount("prorated graduated, whole period", &p, &in, "9");
    /* 8 all month, 4 removed for the last 10 days: units 8, 7, 6 leave the second tier and
     * unit 5 the first, at 10/30: (5 + 3x2) - (3x2 + 1) x 10/30 */
    money_t rv[] = {M("8"), M("-4")};
    int64_t rd[] = {30, 10};
    in = walk_input("6.66667", rv, rd, 2, 30);
    expect_amount("prorated graduated, removal across a tier", &p, &in, "8.666666666666667");
    /* flat amounts follow the highest total, even after a removal brings it down */
    struct charge_model_range rf[] = {RG("0", "5", "1", "10"), RG("6", NULL, "2", "100")};
    struct charge_model_properties pf = ranged(CHARGE_MODEL_GRADUATED, rf, 2);
    in = walk_input("6.66667", rv, rd, 2, 30);
    expect_amount("prorated graduated, flats of the peak", &pf, &in, "118.666666666666667");
    /* zero prorated units: the first tier's flat amount alone */
    in = walk_input("0", NULL, NULL, 0, 30);
    expect_amount("prorated graduated, nothing", &pf, &in, "10");
    /* a negative final total costs nothing; a negative variable part counts 0 */
    money_t nv[] = {M("-3")};
    int64_t nd[] = {30};
    in = walk_input("0.1", nv, nd, 1, 30);
    expect_amount("prorated graduated, below zero", &pf, &in, "0");
    money_t uv[] = {M("2"), M("-2"), M("1")};
    int64_t ud[] = {5, 30, 1};
    in = walk_input("0.1", uv, ud, 3, 30);
    expect_amount("prorated graduated, credits past the charges", &pf, &in, "10");
    /* spec/services/charge_models/prorated_graduated_service_spec.rb, its prorated values as
     * days of 30 (3.5 of 5 is 21 days; the spec rounds 16/30 of 5 to 2.66667) */
    struct charge_model_range spec[] = {RG("0", "5", "10", "100"), RG("6", NULL, "5", "50")};
    struct charge_model_properties ps = ranged(CHARGE_MODEL_GRADUATED, spec, 2);
    money_t s1[] = {M("5"), M("5"), M("10"), M("-6")}, s2[] = {M("2"), M("5"), M("10"), M("-6")};
    int64_t sd[] = {21, 16, 6, 11};
    in = walk_input("5.96667", s1, sd, 4, 30);
    expect_amount("prorated_graduated_service_spec", &ps, &in, "197.333333333333333");
    in = walk_input("3.86667", s2, sd, 4, 30);
    expect_amount("prorated_graduated_service_spec, split event", &ps, &in, "184.333333333333333");
    struct charge_model_range spec3[] = {RG("0", "5", "10", "100"), RG("6", "15", "5", "50"),
                                         RG("16", NULL, "2", "0")};
    struct charge_model_properties ps3 = ranged(CHARGE_MODEL_GRADUATED, spec3, 3);
    money_t s4[] = {M("75")};
    int64_t s4d[] = {30};
    in = walk_input("75", s4, s4d, 1, 30);
    expect_amount("prorated_graduated_service_spec, two overflows", &ps3, &in, "370");
    /* the spec's "three ranges and one overflow" expects 190.33, written for an earlier walk:
     * the walk of Lago's current source gives 187 (prop_prorated_graduated_lago's port) */
    money_t s3[] = {M("2"), M("5"), M("-6"), M("10"), M("4"), M("60")};
    int64_t s3d[] = {21, 15, 11, 6, 5, 1};
    in = walk_input("6.36", s3, s3d, 6, 30);
    expect_amount("prorated_graduated_service_spec, three ranges", &ps3, &in, "187");
    /* bad input */
    int64_t bad_days[] = {31};
    in = walk_input("1", nv, bad_days, 1, 30);
    expect_status("prorated graduated, days past the period", &p, &in, CHARGE_MODEL_ERR_INVALID);
    in = walk_input("1", nv, nd, 1, 0);
    expect_status("prorated graduated, no period", &p, &in, CHARGE_MODEL_ERR_INVALID);
}

/*
 * Lago's ProratedGraduatedService#compute_amount walked as its source does (overflow carried
 * from step to step, a range picked by the units reached), in exact rationals: the reference
 * for totals that never cross a tier boundary going down, where its walk and Tally's unit
 * stack agree. Integer values and "+1" integer ranges, as Lago's tiers are.
 */
struct lago_walk {
    const struct charge_model_range *r;
    size_t n;
};

static int64_t money_int(money_t v)
{
    money_t i;
    assert_int_equal(money_round(v, 0, MONEY_ROUND_EXACT, &i), MONEY_OK);
    return (int64_t)i.coef;
}

static size_t lago_range(const struct lago_walk *w, int64_t full, int64_t overflow,
                         const int64_t *next)
{
    if (full <= 0)
        return 0;
    int64_t units = overflow == 0 ? full : overflow > 0 ? full - overflow + 1 : full + overflow;
    for (size_t i = 0; i < w->n; i++) {
        const struct charge_model_range *g = &w->r[i];
        bool at_to = g->has_to_value && units == money_int(g->to_value);
        if (at_to && next && *next > 0)
            return i + 1;
        if (at_to)
            return i;
        if (units >= money_int(g->from_value) &&
            (!g->has_to_value || units < money_int(g->to_value)))
            return i;
    }
    return 0;
}

/* The walk's end of a tier: the overflow (at coef) leaves the tier's prorated sum, which is
 * priced into out and starts again from 0. */
static void close_tier(mpq_t prorated_sum, int64_t overflow, const mpq_t coef, const mpq_t price,
                       mpq_t out)
{
    mpq_t t;
    mpq_init(t);
    mpq_set_si(t, overflow, 1);
    mpq_mul(t, t, coef);
    mpq_sub(prorated_sum, prorated_sum, t);
    mpq_mul(t, prorated_sum, price);
    mpq_add(out, out, t);
    mpq_set_ui(prorated_sum, 0, 1);
    mpq_clear(t);
}

static void lago_walk_amount(const struct lago_walk *w, const int64_t *full, const int64_t *days,
                             size_t count, int64_t period_days, mpq_t out)
{
    mpq_t prorated_sum, t, price, coef;
    mpq_inits(prorated_sum, t, price, coef, NULL);
    mpq_set_ui(out, 0, 1);
    int64_t overflow = 0, full_sum = 0, max_full = 0;
    size_t index = 0, range = 0;
    while (index < count || overflow != 0) {
        range = lago_range(w, full_sum, overflow, index < count ? &full[index] : NULL);
        const struct charge_model_range *g = &w->r[range];
        mpq_set_money(price, g->per_unit_amount);
        if (overflow != 0) {
            mpq_set_si(coef, days[index - 1], (unsigned long)period_days);
            mpq_canonicalize(coef);
            mpq_set_si(t, overflow, 1);
            mpq_mul(t, t, coef);
            mpq_add(prorated_sum, prorated_sum, t);
            if (g->has_to_value && full_sum >= money_int(g->to_value)) {
                overflow = full_sum - money_int(g->to_value);
                close_tier(prorated_sum, overflow, coef, price, out);
                continue;
            }
            overflow = 0;
        }
        if (index >= count)
            break;
        full_sum += full[index];
        if (full_sum > max_full)
            max_full = full_sum;
        mpq_set_si(coef, days[index], (unsigned long)period_days);
        mpq_canonicalize(coef);
        mpq_set_si(t, full[index], 1);
        mpq_mul(t, t, coef);
        mpq_add(prorated_sum, prorated_sum, t);
        index++;
        int64_t from = money_int(g->from_value);
        bool skip = g->has_to_value ? full_sum < money_int(g->to_value) && full_sum >= from
                                    : full_sum >= from - 1;
        if (skip)
            continue;
        overflow = !g->has_to_value                     ? full_sum - from + 1
                   : full_sum >= money_int(g->to_value) ? full_sum - money_int(g->to_value)
                                                        : full_sum - from + 1;
        close_tier(prorated_sum, overflow, coef, price, out);
    }
    mpq_set_money(price, w->r[range].per_unit_amount);
    mpq_mul(t, prorated_sum, price);
    mpq_add(out, out, t);
    if (full_sum < 0) {
        mpq_set_ui(out, 0, 1);
    } else {
        if (mpq_sgn(out) < 0)
            mpq_set_ui(out, 0, 1);
        for (size_t i = 0; i < w->n; i++) {
            mpq_set_money(t, w->r[i].flat_amount);
            mpq_add(out, out, t);
            if (!w->r[i].has_to_value || max_full <= money_int(w->r[i].to_value))
                break;
        }
    }
    mpq_clears(prorated_sum, t, price, coef, NULL);
}

/* How many tier boundaries (to_values) lie in [low, high). */
static int boundaries_between(const struct charge_model_range *r, size_t n, int64_t low,
                              int64_t high)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        if (r[i].has_to_value && money_int(r[i].to_value) >= low && money_int(r[i].to_value) < high)
            k++;
    return k;
}

static void prop_prorated_graduated_lago(void **state)
{
    (void)state;
    enum { CASES = 4000, EVENTS_MAX = 12 };
    mpq_t want, got, half;
    mpq_inits(want, got, half, NULL);
    int compared = 0;
    for (int c = 0; c < CASES; c++) {
        struct charge_model_range r[5];
        size_t n = 1 + below(5);
        rand_ranges(r, n, true, 1);
        struct charge_model_properties p = ranged(CHARGE_MODEL_GRADUATED, r, n);
        int64_t period_days = 28 + below(4);
        size_t count = 1 + below(EVENTS_MAX);
        int64_t full[EVENTS_MAX], days[EVENTS_MAX], total = 0;
        money_t values[EVENTS_MAX];
        bool comparable = true;
        for (size_t i = 0; i < count; i++) {
            bool removal = c % 2 == 1 && total > 0 && below(3) == 0;
            full[i] = removal ? -(int64_t)(1 + below((uint32_t)total)) : (int64_t)(1 + below(15));
            /* Lago's walk credits a removal across a tier boundary at other tiers' prices */
            if (removal && boundaries_between(r, n, total + full[i], total) > 0)
                comparable = false;
            total += full[i];
            values[i] = money_from_int(full[i]);
            days[i] = 1 + below((uint32_t)period_days);
        }
        struct charge_model_input in = walk_input("1", values, days, count, period_days);
        money_t amount;
        assert_int_equal(charge_model_amount(&p, &in, &amount), CHARGE_MODEL_OK);
        if (!comparable)
            continue;
        struct lago_walk w = {r, n};
        lago_walk_amount(&w, full, days, count, period_days, want);
        /* Tally keeps CHARGE_MODEL_PRORATED_SCALE decimals, half up */
        mpq_set_money(got, amount);
        mpq_sub(got, got, want);
        mpq_abs(got, got);
        mpz_ui_pow_ui(mpq_denref(half), 10, CHARGE_MODEL_PRORATED_SCALE);
        mpz_mul_ui(mpq_denref(half), mpq_denref(half), 2);
        mpz_set_ui(mpq_numref(half), 1);
        mpq_canonicalize(half);
        if (mpq_cmp(got, half) > 0) {
            char ab[MONEY_TEXT_MAX];
            for (size_t i = 0; i < n; i++) {
                char f[MONEY_TEXT_MAX], t2[MONEY_TEXT_MAX], pu[MONEY_TEXT_MAX];
                print_message("range %s..%s at %s\n", fmt(r[i].from_value, f),
                              r[i].has_to_value ? fmt(r[i].to_value, t2) : "",
                              fmt(r[i].per_unit_amount, pu));
            }
            for (size_t i = 0; i < count; i++)
                print_message("event %" PRId64 " days %" PRId64 "/%" PRId64 "\n", full[i], days[i],
                              period_days);
            fail_msg("case %d: Tally %s, Lago's walk %f (%zu ranges, %zu events)", c,
                     fmt(amount, ab), mpq_get_d(want), n, count);
        }
        compared++;
        total_cases++;
    }
    assert_true(compared > CASES / 2);
    mpq_clears(want, got, half, NULL);
}

/*
 * A prorated graduated walk sums the tiers below a running total once per tier and keeps them
 * while the totals stay in that tier: its amount must equal, to the digit, the walk priced
 * with graduated's own amount at every total (flat amounts zero, so that amount is the
 * variable part alone). Decimal, adjacent and "+1" ranges, sometimes one that starts past the
 * last one's end or a closed last tier, and decimal values going up and down across tiers, at
 * any days.
 */
static void prop_prorated_graduated_tiers_kept(void **state)
{
    (void)state;
    enum { CASES = 4000, EVENTS_MAX = 16 };
    for (int c = 0; c < CASES; c++) {
        struct charge_model_range r[5];
        size_t n = 1 + below(5);
        rand_ranges(r, n, below(2) == 0, (int)below(3));
        for (size_t i = 0; i < n; i++)
            r[i].flat_amount = MONEY_ZERO;
        if (below(4) == 0) { /* a closed last tier: totals past it are capped */
            r[n - 1].has_to_value = true;
            assert_int_equal(money_add(r[n - 1].from_value, money_from_int(3), &r[n - 1].to_value),
                             MONEY_OK);
        }
        if (n > 1 && below(5) == 0) { /* a range that does not start where the last ends */
            size_t i = 1 + below((uint32_t)n - 1);
            assert_int_equal(money_add(r[i].from_value, (money_t){5, 1}, &r[i].from_value),
                             MONEY_OK);
        }
        struct charge_model_properties p = ranged(CHARGE_MODEL_GRADUATED, r, n);
        int64_t period_days = 28 + below(4);
        size_t count = 1 + below(EVENTS_MAX);
        money_t values[EVENTS_MAX], total = MONEY_ZERO, g_before = MONEY_ZERO, weighed = MONEY_ZERO;
        int64_t days[EVENTS_MAX];
        for (size_t i = 0; i < count; i++) {
            values[i] = rand_money(1500, 2);
            if (money_sign(total) > 0 && below(3) == 0)
                values[i].coef = -values[i].coef;
            const struct charge_model_range *b = &r[below((uint32_t)n)];
            if (below(3) == 0) /* onto a bound */
                assert_int_equal(
                    money_sub(below(2) && b->has_to_value ? b->to_value : b->from_value, total,
                              &values[i]),
                    MONEY_OK);
            days[i] = (int64_t)below((uint32_t)period_days + 1);
            assert_int_equal(money_add(total, values[i], &total), MONEY_OK);
            money_t g, step;
            if (money_sign(total) < 0) {
                assert_int_equal(money_mul(total, r[0].per_unit_amount, &g), MONEY_OK);
            } else {
                struct charge_model_input at = {.units = total};
                assert_int_equal(charge_model_amount(&p, &at, &g), CHARGE_MODEL_OK);
            }
            assert_int_equal(money_sub(g, g_before, &step), MONEY_OK);
            assert_int_equal(money_mul(step, money_from_int(days[i]), &step), MONEY_OK);
            assert_int_equal(money_add(weighed, step, &weighed), MONEY_OK);
            g_before = g;
        }
        money_t want = MONEY_ZERO, got;
        if (money_sign(total) >= 0) {
            assert_int_equal(money_div(weighed, money_from_int(period_days),
                                       CHARGE_MODEL_PRORATED_SCALE, MONEY_ROUND_HALF_UP, &want),
                             MONEY_OK);
            if (money_sign(want) < 0)
                want = MONEY_ZERO;
        }
        struct charge_model_input in = walk_input("1", values, days, count, period_days);
        assert_int_equal(charge_model_amount(&p, &in, &got), CHARGE_MODEL_OK);
        if (money_cmp(got, want) != 0) {
            char g[MONEY_TEXT_MAX], w[MONEY_TEXT_MAX];
            fail_msg("case %d: the walk priced %s, graduated at each total %s", c, fmt(got, g),
                     fmt(want, w));
        }
        total_cases++;
    }
}

/* ---- Main ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    seed_from_env("charge_model", UINT64_C(20261125));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    seed_report("charge_model", total_cases);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_standard),
        cmocka_unit_test(test_graduated_lago),
        cmocka_unit_test(test_graduated_boundaries),
        cmocka_unit_test(test_graduated_percentage_lago),
        cmocka_unit_test(test_volume_lago),
        cmocka_unit_test(test_volume_boundaries),
        cmocka_unit_test(test_package),
        cmocka_unit_test(test_percentage_lago),
        cmocka_unit_test(test_percentage_min_max_lago),
        cmocka_unit_test(test_percentage_free_units),
        cmocka_unit_test(test_negative_units),
        cmocka_unit_test(test_fee_cents),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_validate_simple),
        cmocka_unit_test(test_validate_ranges),
        cmocka_unit_test(prop_graduated_monotone),
        cmocka_unit_test(prop_graduated_brute_force),
        cmocka_unit_test(prop_standard_exact),
        cmocka_unit_test(prop_volume_brute_force),
        cmocka_unit_test(prop_package),
        cmocka_unit_test(prop_percentage_min_max_count),
        cmocka_unit_test(prop_percentage_values_read),
        cmocka_unit_test(test_prorated_graduated),
        cmocka_unit_test(prop_prorated_graduated_lago),
        cmocka_unit_test(prop_prorated_graduated_tiers_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
