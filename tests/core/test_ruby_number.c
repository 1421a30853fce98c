/*
 * core/ruby_number: String#to_d and Float() against Ruby 3.1 (BigDecimal() is tested through
 * the event timestamp, tests/core/test_event.c). Each to_d value below is Ruby's
 * `text.to_d.to_s("F")` for a text to_d reads in full; each Float() answer is whether Ruby's
 * `Float(text)` raised.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/event.h"
#include "core/money.h"
#include "core/ruby_number.h"

struct to_d_reading {
    const char *text;
    const char *value; /* NULL: to_d reads only a part of it, or none */
};

static const struct to_d_reading to_d_readings[] = {
    {"1", "1.0"},
    {"+7", "7.0"},
    {".5", "0.5"},
    {"5.", "5.0"},
    {"-5.", "-5.0"},
    {"5.e1", "50.0"},
    {"1.d2", "100.0"},
    {" 3 ", "3.0"},
    {"\t3\n", "3.0"},
    {"\v3\f", "3.0"},
    {"00012", "12.0"},
    {"1_0", "10.0"},
    {"1_000.000_1", "1000.0001"},
    {"1e2", "100.0"},
    {"1E-3", "0.001"},
    {"2d1", "20.0"},
    {"2D1", "20.0"},
    {"-.5", "-0.5"},
    {"+.5e1", "5.0"},
    {"-0", "0.0"}, /* Ruby's -0.0: money has no negative zero, nor has Lago's column */
    {"1_", "1.0"},
    {"1e1_0", "10000000000.0"},
    {"1234.5678901234567895123", "1234.5678901234567895123"},
    {"0.000000000000000000000000000000000000010", "0.00000000000000000000000000000000000001"},
    {"100000000000000000000000000000000000000e-1", "10000000000000000000000000000000000000.0"},
    /* to_d reads a part: "12abc" is 12, "1_.5" 1, "1e2.5" 100 */
    {"12abc", NULL},
    {"1_.5", NULL},
    {"1._5", NULL},
    {"1__0", NULL},
    {"1e", NULL},
    {"1e+", NULL},
    {"1.5.", NULL},
    {"1 2", NULL},
    {"1e2.5", NULL},
    {"1ee2", NULL},
    {"5._", NULL},
    /* or none: 0 */
    {"abc", NULL},
    {"_1", NULL},
    {"0x10", NULL},
    {".", NULL},
    {"-", NULL},
    {"+", NULL},
    {".e1", NULL},
    {"- 1", NULL},
    {"\xc2\xa0"
     "3",
     NULL}, /* U+00A0 is not Ruby's space */
    {"", NULL},
    /* read, but past what money holds: 10^38, 39 significant digits, a digit past 38 decimals */
    {"1e38", NULL},
    {"123456789012345678901234567890123456789", NULL},
    {"1e-39", NULL},
};

static void to_d_reads_as_ruby(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof to_d_readings / sizeof to_d_readings[0]; i++) {
        const struct to_d_reading *r = &to_d_readings[i];
        money_t v = money_from_int(42);
        bool read = event_parse_precise_amount(r->text, strlen(r->text), &v);
        char text[MONEY_TEXT_MAX] = "";
        if (read)
            money_format_fraction(v, 1, text, sizeof text);
        if (read != (r->value != NULL) || (read && strcmp(text, r->value) != 0))
            fail_msg("\"%s\": read %d, %s", r->text, read, text);
    }
}

/* The grammars differ in their marks only: 'd', a '_' ending the integer part, a bare point. */
static void grammars_differ_in_their_marks(void **state)
{
    (void)state;
    struct ruby_decimal d;
    assert_true(ruby_decimal_read("1_", 2, RUBY_BIGDECIMAL, &d));
    assert_false(ruby_decimal_read("1_", 2, RUBY_FLOAT, &d));
    assert_true(ruby_decimal_read("1d2", 3, RUBY_BIGDECIMAL, &d));
    assert_false(ruby_decimal_read("1d2", 3, RUBY_FLOAT, &d));
    assert_false(ruby_decimal_read("5.", 2, RUBY_BIGDECIMAL, &d));
    assert_true(ruby_decimal_read("5.", 2, RUBY_TO_D, &d));
    assert_false(ruby_decimal_read("5.", 2, RUBY_FLOAT, &d));
}

struct float_reading {
    const char *text;
    bool reads;
};

static const struct float_reading float_readings[] = {
    {"1", true},         {" 1 ", true},        {"\t2\n", true},   {"\v3", true},
    {"1_0", true},       {"1_000.5_5", true},  {".5", true},      {"-.5", true},
    {"+.5", true},       {"+5", true},         {"007", true},     {"00.5", true},
    {"1e5", true},       {"1E+5", true},       {"1e5_0", true},   {"1.5e+0_3", true},
    {"1e1000", true},    {"1e-1000", true},    {"-0", true},      {"0x1A", true},
    {"0X1a", true},      {"-0x1A", true},      {"+0x1", true},    {"0x1p3", true},
    {"0x1P-1", true},    {"0x1_0p1", true},    {"0x1p1_0", true}, {"0xA.Bp+2", true},
    {"0x1.8p0", true},   {"0x00001", true},    {" 0x1 ", true},   {"0x1e1", true},
    {"0x1.8p1 ", true},  {"\t0x1p1\n", true},  {"-0x1p-2", true}, {" 3", true},
    {"", false},         {"  ", false},        {"1__0", false},   {"_1", false},
    {"1_", false},       {"5.", false},        {"1e", false},     {"1d5", false},
    {"Infinity", false}, {"NaN", false},       {"0b101", false},  {"0o17", false},
    {"abc", false},      {"12abc", false},     {"1.5.", false},   {"0x", false},
    {"0x_1", false},     {"0x1__0", false},    {"0x1_", false},   {"0x.8", false},
    {"0x1.", false},     {"0x1.p1", false},    {"0xp1", false},   {"0x1p", false},
    {"0x1.8", false},    {"0x1.8_8p1", false}, {"0x1p_1", false}, {"0x1.8p1_", false},
    {"0xg", false},      {"0x1g", false},      {"1_e5", false},   {"1._5", false},
    {"1.5_", false},     {"1e0_", false},      {"1 2", false},    {"- 1", false},
    {"+-1", false},      {".", false},         {"-.e1", false},   {"0x+1", false},
};

static void float_reads_as_ruby(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof float_readings / sizeof float_readings[0]; i++) {
        const struct float_reading *r = &float_readings[i];
        if (ruby_float_reads(r->text, strlen(r->text)) != r->reads)
            fail_msg("Float(\"%s\"): expected %s", r->text, r->reads ? "a number" : "to raise");
    }
}

/* An event's value as Lago's creation checks take it: a JSON number, null or absent too. */
static void event_values_as_lago_checks_them(void **state)
{
    (void)state;
    const struct event_property props[] = {
        {"s", "0x1A", true},  {"bad", "abc", true},      {"n", "-1.5e3", false},
        {"t", "true", false}, {"o", "{\"a\":1}", false}, {"a", "[1]", false},
        {"z", NULL, false},
    };
    struct event e = {.properties = props, .property_count = sizeof props / sizeof props[0]};
    assert_true(event_value_is_number(&e, "s"));
    assert_false(event_value_is_number(&e, "bad"));
    assert_true(event_value_is_number(&e, "n"));
    assert_false(event_value_is_number(&e, "t"));
    assert_false(event_value_is_number(&e, "o"));
    assert_false(event_value_is_number(&e, "a"));
    assert_true(event_value_is_number(&e, "z"));
    assert_true(event_value_is_number(&e, "absent"));
}

/* An event's number as Lago's store gives it back: what a Float and jsonb's numeric make of it. */
static void json_numbers_as_lago_stores_them(void **state)
{
    (void)state;
    static const struct {
        const char *text, *stored; /* NULL: compared as written */
    } numbers[] = {
        {"1.50", "1.5"},
        {"1.5", NULL},
        {"100.0", NULL},
        {"100.00", "100.0"},
        {"1e2", "100.0"},
        {"1E2", "100.0"},
        {"1.0E+2", "100.0"},
        {"-2.50e1", "-25.0"},
        {"0.0010", "0.001"},
        {"1e-4", "0.0001"},
        {"1e-5", "0.000010"}, /* Float#to_s "1.0e-05", numeric keeps its mantissa's decimal */
        {"1.5e-7", "0.00000015"},
        {"1e14", "100000000000000.0"},
        {"1e15", "1000000000000000"}, /* Float#to_s "1.0e+15", an integer to numeric */
        {"2.5e15", "2500000000000000"},
        {"1e16", "10000000000000000"},
        {"2.5e20", "250000000000000000000"},
        {"0.0", NULL},
        {"-0.0", "0.0"},
        {"0e7", "0.0"},
        {"-0", "0"},
        {"42", NULL},
        {"-7", NULL},
        {"12345678901234.50", "12345678901234.5"}, /* 15 digits: kept by a double */
        {"1234567890123456.0", NULL},              /* 16: a Float would round it */
        {"0.1234567890123456", NULL},
        {"1.8e308", NULL}, /* past DBL_MAX: Lago's null */
        {"1e400", NULL},
        {"1e-308", NULL}, /* subnormal: a double keeps fewer digits */
        {"2.2e-308", NULL},
        {"1e-330", "0.0"}, /* rounds to zero */
        {"-1e-400", "0.0"},
        {"true", NULL},
        {"[1.50]", NULL},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char out[RUBY_JSON_NUMBER_TEXT_MAX + 1];
        const char *text = numbers[i].text;
        bool changed = ruby_json_number_text(text, strlen(text), out);
        if (!numbers[i].stored) {
            if (changed)
                fail_msg("%s: expected as written, got %s", text, out);
        } else if (!changed || strcmp(out, numbers[i].stored) != 0) {
            fail_msg("%s: expected %s, got %s", text, numbers[i].stored,
                     changed ? out : "as written");
        }
    }
}

/* A double's extremes, written whole as jsonb's numeric writes them. */
static void json_numbers_at_a_doubles_extremes(void **state)
{
    (void)state;
    char out[RUBY_JSON_NUMBER_TEXT_MAX + 1], want[RUBY_JSON_NUMBER_TEXT_MAX + 1];
    assert_true(ruby_json_number_text("1e308", 5, out)); /* "1.0e+308": 309 digits */
    snprintf(want, sizeof want, "1%0308d", 0);
    assert_string_equal(out, want);
    assert_true(ruby_json_number_text("1.7976931348623e308", 19, out));
    assert_int_equal(strlen(out), 309);
    assert_true(ruby_json_number_text("-3e-307", 7, out)); /* normal: above DBL_MIN */
    snprintf(want, sizeof want, "-0.%0306d30", 0);
    assert_string_equal(out, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(to_d_reads_as_ruby),
        cmocka_unit_test(grammars_differ_in_their_marks),
        cmocka_unit_test(float_reads_as_ruby),
        cmocka_unit_test(event_values_as_lago_checks_them),
        cmocka_unit_test(json_numbers_as_lago_stores_them),
        cmocka_unit_test(json_numbers_at_a_doubles_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
