/*
 * Tests of core/expression: tables of hand-computed results (precedence, unary minus, each
 * function and spelling, properties as numbers and strings, the timestamp), every evaluation
 * error with its message, the parser's refusals and limits, and a property test that writes
 * random arithmetic as text and compares each result with an independent evaluation of the
 * same tree in GMP rationals.
 *
 * The property test prints its seed; TALLY_SEED=<n> replays a run.
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

#include "core/expression.h"
#include "splitmix.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static struct expression_scratch scratch; /* 16 KiB: kept off the stack */

#define E1 "\xc3\xa9" /* é: two bytes */
#define E6 E1 E1 E1 E1 E1 E1
#define E19 E6 E6 E6 E1

/* An event with code "tokens", 2023-11-14T22:13:20.9Z, and these properties. */
static const struct event_property properties[] = {
    {"input", "1200", false},
    {"output", "345", false},
    {"rate", "2.5", true},
    {"user", "u_42", true},
    {"flag", "true", false},
    {"nothing", NULL, false},
    {"exp", "1e3", true},
    {"half", ".5", true},
    {"plus", "+7", true},
    {"zeros", "007.50", true},
    {"neg", "-0.25", false},
    {"empty", "", true},
    {"nested", "{\"a\":1}", false},
    {"huge", "1e40", false},
    {"id", "123", true},
    {"dup", "1", false},
    {"dup", "2", false},
    {"accents", "a" E19 E6, true},
};

static struct event test_event(void)
{
    return (struct event){
        .code = "tokens", .properties = properties, .property_count = COUNT(properties)};
}

#define TIMESTAMP (INT64_C(1700000000) * TIMESTAMP_USEC_PER_SEC + 900000)

/* Evaluates `text` on the test event; the result's text (a number's canonical form). */
static enum expression_status run(const char *text, char result[EXPRESSION_STRING_MAX + 1],
                                  bool *is_string, char message[EXPRESSION_MESSAGE_MAX])
{
    static struct expression x;
    enum expression_status st = expression_parse(text, strlen(text), &x, message);
    if (st != EXPRESSION_OK)
        return st;
    struct event e = test_event();
    struct expression_value v;
    st = expression_evaluate(&x, &e, TIMESTAMP, &scratch, &v, message);
    if (st != EXPRESSION_OK)
        return st;
    *is_string = v.is_string;
    if (v.is_string)
        snprintf(result, EXPRESSION_STRING_MAX + 1, "%.*s", (int)v.len, v.text);
    else
        money_format(v.number, result, MONEY_TEXT_MAX);
    return EXPRESSION_OK;
}

static void test_values(void **state)
{
    (void)state;
    static const struct {
        const char *text, *result;
        bool is_string;
    } cases[] = {
        /* precedence and associativity */
        {"1 + 2 * 3", "7", false},
        {"(1 + 2) * 3", "9", false},
        {"10 - 4 - 3", "3", false},
        {"8 / 4 / 2", "1", false},
        {"2*3+4*5", "26", false},
        {"-2 * 3", "-6", false},
        {"2 * -3", "-6", false},
        {"2 - -3", "5", false},
        {"-(1 + 2)", "-3", false},
        {"-(-1)", "1", false},
        {"007 + 1", "8", false},
        {"1.50 * 2", "3", false},
        {"  1  +  2  ", "3", false},
        /* results past 38 digits keep the most decimals that fit; the result keeps 15 */
        {"1 / 3", "0.333333333333333", false},
        {"2 / 3", "0.666666666666667", false},
        {"-2 / 3", "-0.666666666666667", false},
        {"1 / 8", "0.125", false},
        {"10000000000000000000000000000000 / 3", "3333333333333333333333333333333.3333333", false},
        {"ceil(400 / 1000000000000000000)", "1", false}, /* 4e-16 is kept until ceil */
        {"1 / 3 * 1000000000000000000", "333333333333333333.333333333333333", false},
        {"(1 / 3) * (1 / 3) * (1 / 3)", "0.037037037037037", false},
        {"1234567 / 3 * (7654321 / 3)", "1049974679334.111111111111111", false},
        {"5 + 1 / 3", "5.333333333333333", false},
        {"1 / 3 - 5", "-4.666666666666667", false},
        {"floor(1 / 3 * 3)", "0", false}, /* 0.99...9 (38 digits), as Lago's 100 give 0 too */
        /* a sum past 38 digits, its 38th digit shown by moving it up 22 places */
        {"(2 / 3 + 2 / 3) * 10000000000000000000000", "13333333333333333333333.333333333333333",
         false},
        {"(-2 / 3 - 2 / 3) * 10000000000000000000000", "-13333333333333333333333.333333333333333",
         false},
        {"(5 + 1 / 3) * 10000000000000000000000", "53333333333333333333333.333333333333333", false},
        {"(5 - 1 / 3) * 10000000000000000000000", "46666666666666666666666.666666666666667", false},
        {"(1 / 3 - 5) * 10000000000000000000000", "-46666666666666666666666.666666666666667",
         false},
        /* min and max */
        {"min(3, 1, 2)", "1", false},
        {"MAX(event.properties.input, 2000)", "2000", false},
        {"Min(-1.5)", "-1.5", false},
        /* rounding functions, their spellings and their decimals */
        {"round(12.5)", "13", false},
        {"round(-12.5)", "-13", false},
        {"round(12.49)", "12", false},
        {"ROUND(2.5)", "3", false},
        {"Round(2.5)", "3", false},
        {"round(12.345, 2)", "12.35", false},
        {"round(12, 2)", "12", false},
        {"round(1234.5, -2)", "1200", false},
        {"round(1250, -2)", "1300", false},
        {"round(2.567, 1.9)", "2.6", false},
        {"round(1.5, 39)", "1.5", false},
        {"round(1234, -38)", "0", false},
        {"floor(5, -40)", "0", false},
        {"ceil(-5, -40)", "0", false},
        {"round (1.5)", "2", false},
        {"ceil(12.3)", "13", false},
        {"ceil(-12.3)", "-12", false},
        {"CEIL(12.351, 1)", "12.4", false},
        {"ceil(1201, -2)", "1300", false},
        {"floor(12.7)", "12", false},
        {"floor(-12.3)", "-13", false},
        {"Floor(12.351, 1)", "12.3", false},
        {"floor(-1201, -2)", "-1300", false},
        {"ceil(event.properties.input / 1000)", "2", false},
        /* strings */
        {"'abc'", "abc", true},
        {"''", "", true},
        {"concat('a', '-', 1.50)", "a-1.5", true},
        {"CONCAT(event.code, '/', event.properties.user)", "tokens/u_42", true},
        {"Concat(event.properties.input * 2)", "2400", true},
        {"concat(event.properties.flag, event.properties.nothing, '!')", "true!", true},
        {"concat(event.properties.nested)", "{\"a\":1}", true},
        {"concat('it''s')", NULL, false}, /* no escapes: two strings side by side */
        /* properties as numbers (JSON numbers, and strings that read as one) */
        {"event.properties.input + event.properties.output", "1545", false},
        {"event.properties.input * event.properties.rate", "3000", false},
        {"event.properties.exp + 0", "1000", false},
        {"event.properties.half * 2", "1", false},
        {"event.properties.plus + 1", "8", false},
        {"event.properties.zeros * 2", "15", false},
        {"event.properties.neg * 4", "-1", false},
        {"event.properties.id + 1", "124", false},
        {"event.properties.dup", "2", false},
        {"event.properties.user", "u_42", true},
        {"event.properties.empty", "", true},
        /* the event's own attributes */
        {"event.code", "tokens", true},
        {"event.timestamp", "1700000000", false},
        {"event.timestamp - 1699999999", "1", false},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        char result[EXPRESSION_STRING_MAX + 1], message[EXPRESSION_MESSAGE_MAX];
        bool is_string = false;
        enum expression_status st = run(cases[i].text, result, &is_string, message);
        if (!cases[i].result) {
            if (st != EXPRESSION_ERR_SYNTAX)
                fail_msg("%s: expected a syntax error, got %d", cases[i].text, st);
            continue;
        }
        if (st != EXPRESSION_OK)
            fail_msg("%s: status %d (%s)", cases[i].text, st, message);
        if (strcmp(result, cases[i].result) != 0 || is_string != cases[i].is_string)
            fail_msg("%s: got %s%s%s, expected %s%s%s", cases[i].text, is_string ? "'" : "", result,
                     is_string ? "'" : "", cases[i].is_string ? "'" : "", cases[i].result,
                     cases[i].is_string ? "'" : "");
    }
}

static void test_timestamp_floored(void **state)
{
    (void)state;
    struct expression x;
    char message[EXPRESSION_MESSAGE_MAX];
    assert_int_equal(expression_parse("event.timestamp", 15, &x, message), EXPRESSION_OK);
    struct event e = test_event();
    struct expression_value v;
    assert_int_equal(
        expression_evaluate(&x, &e, -3 * TIMESTAMP_USEC_PER_SEC / 2, &scratch, &v, message),
        EXPRESSION_OK);
    assert_int_equal(money_cmp(v.number, money_from_int(-2)), 0); /* -1.5 s floors to -2 */
}

static void test_evaluation_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum expression_status status;
        const char *message;
    } cases[] = {
        {"event.properties.missing + 1", EXPRESSION_ERR_VARIABLE, "Variable: missing not found"},
        {"event.properties.user * 2", EXPRESSION_ERR_TYPE,
         "Expected a decimal, got the string 'u_42'"},
        {"-event.code", EXPRESSION_ERR_TYPE, "Expected a decimal, got the string 'tokens'"},
        {"round('x')", EXPRESSION_ERR_TYPE, "Expected a decimal, got the string 'x'"},
        {"event.properties.flag + 0", EXPRESSION_ERR_TYPE,
         "Expected a decimal, got the string 'true'"},
        {"event.properties.nothing + 0", EXPRESSION_ERR_TYPE,
         "Expected a decimal, got the string ''"},
        {"1 / 0", EXPRESSION_ERR_DIV_BY_ZERO, "Division by zero"},
        {"1 / (event.properties.input - 1200)", EXPRESSION_ERR_DIV_BY_ZERO, "Division by zero"},
        {"round(1, 99999999999999999999)", EXPRESSION_ERR_RANGE, "decimals past a 64-bit integer"},
        {"ceil(5, -40)", EXPRESSION_ERR_RANGE, "a result past 38 digits"},
        {"round(60000000000000000000000000000000000000, -38)", EXPRESSION_ERR_RANGE,
         "a result past 38 digits"},
        {"min(1, 'x')", EXPRESSION_ERR_TYPE, "Expected a decimal, got the string 'x'"},
        {"event.properties.accents * 2", EXPRESSION_ERR_TYPE, /* cut before a whole character */
         "Expected a decimal, got the string 'a" E19 "'"},
        {"99999999999999999999999999999999999999 * 10", EXPRESSION_ERR_RANGE,
         "a result past 38 digits"},
        {"ceil(99999999999999999999999999999999999999, -37)", EXPRESSION_ERR_RANGE,
         "a result past 38 digits"},
        {"event.properties.huge + 1", EXPRESSION_ERR_RANGE,
         "event.properties.huge: a number past 38 digits"},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        char result[EXPRESSION_STRING_MAX + 1], message[EXPRESSION_MESSAGE_MAX];
        bool is_string;
        enum expression_status st = run(cases[i].text, result, &is_string, message);
        if (st != cases[i].status || strcmp(message, cases[i].message) != 0)
            fail_msg("%s: got %d '%s', expected %d '%s'", cases[i].text, st, message,
                     cases[i].status, cases[i].message);
    }
}

static void test_concat_too_long(void **state)
{
    (void)state;
    static char long_value[2101];
    memset(long_value, 'w', 2100);
    const struct event_property props[] = {{"long", long_value, true}};
    struct event e = {.code = "c", .properties = props, .property_count = 1};
    static const struct {
        const char *text;
        size_t len; /* of the result; 0 for EXPRESSION_ERR_TOO_LONG */
        const char *message;
    } cases[] = {
        {"concat(event.properties.long, 'x')", 2101, ""},
        {"concat(event.properties.long, event.properties.long)", 0, "a string past 4096 bytes"},
        {"concat(concat(event.properties.long, 'a'), concat(event.properties.long, 'b'))", 0,
         "a string past 4096 bytes"},
        /* each level gives its argument's bytes back: any depth fits */
        {"concat(concat(concat(concat(concat(concat(concat(concat(event.properties.long, 'a'), "
         "'b'), 'c'), 'd'), 'e'), 'f'), 'g'), 'h')",
         2108, ""},
        /* eight strings alive at once pass the scratch's 16384 bytes */
        {"concat(concat(event.properties.long, '1'), concat(event.properties.long, '2'), "
         "concat(event.properties.long, '3'), concat(event.properties.long, '4'), "
         "concat(event.properties.long, '5'), concat(event.properties.long, '6'), "
         "concat(event.properties.long, '7'), concat(event.properties.long, '8'))",
         0, "strings past 16384 bytes at once"},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct expression x;
        char message[EXPRESSION_MESSAGE_MAX];
        assert_int_equal(expression_parse(cases[i].text, strlen(cases[i].text), &x, message),
                         EXPRESSION_OK);
        struct expression_value v = {0};
        enum expression_status st = expression_evaluate(&x, &e, 0, &scratch, &v, message);
        if (st != (cases[i].len ? EXPRESSION_OK : EXPRESSION_ERR_TOO_LONG) ||
            strcmp(message, cases[i].message) != 0 || (cases[i].len && v.len != cases[i].len))
            fail_msg("%s: got %d '%s' (%zu bytes)", cases[i].text, st, message, v.len);
    }
}

static void test_syntax_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum expression_status status;
        const char *message;
    } cases[] = {
        {"", EXPRESSION_ERR_SYNTAX, "at 0: expected a value, found the end"},
        {"1 +", EXPRESSION_ERR_SYNTAX, "at 3: expected a value, found the end"},
        {"(1", EXPRESSION_ERR_SYNTAX, "at 2: expected ')'"},
        {"1)", EXPRESSION_ERR_SYNTAX, "at 1: unexpected ')'"},
        {"1 + )", EXPRESSION_ERR_SYNTAX,
         "at 4: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"round()", EXPRESSION_ERR_SYNTAX,
         "at 6: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"round(1, 2, 3)", EXPRESSION_ERR_SYNTAX,
         "at 0: round takes a value and, optionally, decimals"},
        {"round 1", EXPRESSION_ERR_SYNTAX, "at 6: expected '('"},
        {"event.foo", EXPRESSION_ERR_SYNTAX,
         "at 0: expected event.code, event.timestamp or event.properties.<name>"},
        {"event.properties", EXPRESSION_ERR_SYNTAX,
         "at 0: expected event.code, event.timestamp or event.properties.<name>"},
        {"event.properties.", EXPRESSION_ERR_SYNTAX,
         "at 17: expected a property name (a letter first)"},
        {"event.properties.1a", EXPRESSION_ERR_SYNTAX,
         "at 17: expected a property name (a letter first)"},
        {"event.properties.a.b", EXPRESSION_ERR_SYNTAX, "at 18: unexpected '.'"},
        {"event.properties.a-b", EXPRESSION_ERR_SYNTAX, /* a minus b, and b is no value */
         "at 19: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"event. code", EXPRESSION_ERR_SYNTAX,
         "at 0: expected event.code, event.timestamp or event.properties.<name>"},
        {"event.codes", EXPRESSION_ERR_SYNTAX,
         "at 0: expected event.code, event.timestamp or event.properties.<name>"},
        {"'abc", EXPRESSION_ERR_SYNTAX, "at 0: a string without its closing quote"},
        {"1..2", EXPRESSION_ERR_SYNTAX, "at 2: expected a digit after '.'"},
        {"1.", EXPRESSION_ERR_SYNTAX, "at 2: expected a digit after '.'"},
        {".5", EXPRESSION_ERR_SYNTAX,
         "at 0: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"--1", EXPRESSION_ERR_SYNTAX,
         "at 1: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"1e3", EXPRESSION_ERR_SYNTAX, "at 1: unexpected 'e'"},
        {"foo(1)", EXPRESSION_ERR_SYNTAX,
         "at 0: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"cEIL(1)", EXPRESSION_ERR_SYNTAX,
         "at 0: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"1\t+ 2", EXPRESSION_ERR_SYNTAX, "at 1: unexpected '\t'"},
        {"1 \xc3\x97 2", EXPRESSION_ERR_SYNTAX, "at 2: unexpected '\xc3\x97'"}, /* a whole × */
        {"1 \xff", EXPRESSION_ERR_SYNTAX, "at 2: unexpected byte 0xFF"},
        {"min()", EXPRESSION_ERR_SYNTAX,
         "at 4: expected a number, a 'string', event.<attribute>, a function or '('"},
        {"1 2", EXPRESSION_ERR_SYNTAX, "at 2: unexpected '2'"},
        {"123456789012345678901234567890123456789", EXPRESSION_ERR_LIMIT,
         "at 0: a number past 38 digits"},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct expression x;
        char message[EXPRESSION_MESSAGE_MAX];
        enum expression_status st =
            expression_parse(cases[i].text, strlen(cases[i].text), &x, message);
        if (st != cases[i].status || strcmp(message, cases[i].message) != 0)
            fail_msg("%s: got %d '%s', expected %d '%s'", cases[i].text, st, message,
                     cases[i].status, cases[i].message);
    }
}

static void test_limits(void **state)
{
    (void)state;
    static char text[2 * EXPRESSION_TEXT_MAX];
    static struct expression x;
    char message[EXPRESSION_MESSAGE_MAX];
    size_t n = 0;
    /* nesting: 32 levels parse, 33 do not */
    for (int depth = 31; depth <= 32; depth++) {
        n = 0;
        for (int i = 0; i < depth; i++)
            text[n++] = '(';
        text[n++] = '1';
        for (int i = 0; i < depth; i++)
            text[n++] = ')';
        assert_int_equal(expression_parse(text, n, &x, message),
                         depth < EXPRESSION_DEPTH_MAX ? EXPRESSION_OK : EXPRESSION_ERR_LIMIT);
    }
    assert_string_equal(message, "at 32: nested deeper than 32");
    /* terms: 1+1+... with 128 ones is 255 nodes; 129 ones is 257 */
    for (int ones = 128; ones <= 129; ones++) {
        n = 0;
        for (int i = 0; i < ones; i++)
            n += (size_t)snprintf(text + n, sizeof text - n, i ? "+1" : "1");
        assert_int_equal(expression_parse(text, n, &x, message),
                         ones == 128 ? EXPRESSION_OK : EXPRESSION_ERR_LIMIT);
    }
    assert_string_equal(message, "at 257: more than 256 terms");
    /* values alive at once: 1*(1*(1*... keeps one per level; concat keeps one per argument */
    n = (size_t)snprintf(text, sizeof text, "concat(");
    for (int i = 0; i < EXPRESSION_ARGS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, i ? ",%d" : "%d", i);
    text[n++] = ')';
    assert_int_equal(expression_parse(text, n, &x, message), EXPRESSION_OK);
    text[n - 1] = ',';
    text[n++] = '1';
    text[n++] = ')';
    assert_int_equal(expression_parse(text, n, &x, message), EXPRESSION_ERR_LIMIT);
    assert_true(strstr(message, "more than 64 arguments") != NULL);
    /* the text itself */
    memset(text, ' ', EXPRESSION_TEXT_MAX + 1);
    text[0] = '1';
    assert_int_equal(expression_parse(text, EXPRESSION_TEXT_MAX, &x, message), EXPRESSION_OK);
    assert_int_equal(expression_parse(text, EXPRESSION_TEXT_MAX + 1, &x, message),
                     EXPRESSION_ERR_LIMIT);
    assert_string_equal(message, "longer than 4096 bytes");
    assert_int_equal(expression_parse("1\0", 2, &x, message), EXPRESSION_ERR_SYNTAX);
    assert_string_equal(message, "at 1: a NUL byte");
}

/* ---- property: random arithmetic against GMP -------------------------------------------- */

/*
 * A random tree written as text, with the fewest parentheses its precedence needs and random
 * spaces, and evaluated beside it in rationals with the module's rules: each sum, product and
 * quotient exact if 38 digits and 38 decimals hold it, else rounded half up at the most
 * decimals that do; round/ceil/floor at their decimals; the result rounded half up at 15
 * decimals. `big` marks a value of 10^38 or more, which the module refuses
 * (EXPRESSION_ERR_RANGE).
 */
struct oracle {
    char *text;
    size_t len, cap;
    bool big, div_by_zero;
};

enum { PREC_SUM = 1, PREC_PRODUCT = 2, PREC_ATOM = 3 };

static void put(struct oracle *o, const char *s)
{
    size_t n = strlen(s);
    assert_true(o->len + n < o->cap);
    memcpy(o->text + o->len, s, n);
    o->len += n;
    o->text[o->len] = '\0';
}

static void space(struct oracle *o)
{
    if (below(3) == 0)
        put(o, " ");
}

/* q rounded to `digits` decimals: 0 half up, 1 ceil, 2 floor. */
static void q_round(mpq_t q, long digits, int mode)
{
    mpz_t scale, n;
    mpz_inits(scale, n, NULL);
    mpz_ui_pow_ui(scale, 10, (unsigned long)(digits < 0 ? -digits : digits));
    mpq_t t;
    mpq_init(t);
    if (digits >= 0) {
        mpz_mul(mpq_numref(t), mpq_numref(q), scale);
        mpz_set(mpq_denref(t), mpq_denref(q));
    } else {
        mpz_set(mpq_numref(t), mpq_numref(q));
        mpz_mul(mpq_denref(t), mpq_denref(q), scale);
    }
    mpq_canonicalize(t);
    if (mode == 1) {
        mpz_cdiv_q(n, mpq_numref(t), mpq_denref(t));
    } else if (mode == 2) {
        mpz_fdiv_q(n, mpq_numref(t), mpq_denref(t));
    } else { /* half up: away from zero on a tie */
        mpq_t h;
        mpq_init(h);
        mpq_set_ui(h, 1, 2);
        if (mpq_sgn(t) >= 0) {
            mpq_add(t, t, h);
            mpz_fdiv_q(n, mpq_numref(t), mpq_denref(t));
        } else {
            mpq_sub(t, t, h);
            mpz_cdiv_q(n, mpq_numref(t), mpq_denref(t));
        }
        mpq_clear(h);
    }
    if (digits >= 0) {
        mpz_set(mpq_numref(q), n);
        mpz_set(mpq_denref(q), scale);
    } else {
        mpz_mul(mpq_numref(q), n, scale);
        mpz_set_ui(mpq_denref(q), 1);
    }
    mpq_canonicalize(q);
    mpq_clear(t);
    mpz_clears(scale, n, NULL);
}

/* Whether q is a decimal of at most 38 decimals and 38 digits: what a money_t holds. */
static bool q_fits(const mpq_t q)
{
    mpz_t den, factor, digits;
    mpz_inits(den, factor, digits, NULL);
    mpz_set(den, mpq_denref(q));
    mpz_set_ui(factor, 2);
    mp_bitcnt_t twos = mpz_remove(den, den, factor);
    mpz_set_ui(factor, 5);
    mp_bitcnt_t fives = mpz_remove(den, den, factor);
    bool fits = false;
    if (mpz_cmp_ui(den, 1) == 0 && twos <= 38 && fives <= 38) {
        mpz_ui_pow_ui(factor, 10, twos > fives ? twos : fives);
        mpz_abs(digits, mpq_numref(q));
        mpz_mul(digits, digits, factor);
        mpz_tdiv_q(digits, digits, mpq_denref(q));
        mpz_ui_pow_ui(factor, 10, 38);
        fits = mpz_cmp(digits, factor) < 0;
    }
    mpz_clears(den, factor, digits, NULL);
    return fits;
}

/* q as the module keeps a result: exact if it fits, else half up at the most decimals that
 * fit; `big` when none does. */
static void q_fit(struct oracle *o, mpq_t q)
{
    if (q_fits(q))
        return;
    mpq_t r;
    mpq_init(r);
    for (long t = 38; t >= 0; t--) {
        mpq_set(r, q);
        q_round(r, t, 0);
        if (q_fits(r)) {
            mpq_set(q, r);
            mpq_clear(r);
            return;
        }
    }
    mpq_clear(r);
    o->big = true;
}

/* Writes a random tree of `depth` levels at most into o->text and its value into q; `prec` is
 * the precedence its context needs (a lower one is parenthesized). */
static void gen(struct oracle *o, int depth, int prec, mpq_t q)
{
    unsigned kind = depth == 0 ? 0 : (unsigned)below(9);
    if (kind <= 1) { /* a literal: up to 6 integer digits and 3 decimals */
        char lit[32];
        uint64_t whole = below(4) == 0 ? below(10) : below(1000000);
        int decimals = (int)below(4);
        uint64_t frac = below(1000);
        if (decimals == 0)
            snprintf(lit, sizeof lit, "%" PRIu64, whole);
        else
            snprintf(lit, sizeof lit, "%" PRIu64 ".%0*" PRIu64, whole, decimals,
                     frac % (decimals == 1   ? 10
                             : decimals == 2 ? 100
                                             : 1000));
        put(o, lit);
        mpq_set_str(q, "0", 10);
        char *point = strchr(lit, '.');
        if (point) {
            char digits[40];
            snprintf(digits, sizeof digits, "%.*s%s", (int)(point - lit), lit, point + 1);
            mpz_set_str(mpq_numref(q), digits, 10);
            mpz_ui_pow_ui(mpq_denref(q), 10, strlen(point + 1));
        } else {
            mpz_set_str(mpq_numref(q), lit, 10);
        }
        mpq_canonicalize(q);
        return;
    }
    mpq_t a, b;
    mpq_inits(a, b, NULL);
    if (kind == 2) { /* negation of an atom (itself parenthesized right after another) */
        bool wrapped = prec > PREC_ATOM;
        if (wrapped)
            put(o, "(");
        put(o, "-");
        space(o);
        bool paren = below(2) == 0;
        if (paren)
            put(o, "(");
        gen(o, depth - 1, paren ? PREC_SUM : PREC_ATOM + 1, a);
        if (paren)
            put(o, ")");
        if (wrapped)
            put(o, ")");
        mpq_neg(q, a);
    } else if (kind <= 6) { /* a binary operator */
        static const char ops[] = "+-*/";
        char op = ops[kind - 3];
        int own = op == '+' || op == '-' ? PREC_SUM : PREC_PRODUCT;
        bool paren = own < prec;
        if (paren)
            put(o, "(");
        gen(o, depth - 1, own, a);
        space(o);
        char s[2] = {op, 0};
        put(o, s);
        space(o);
        gen(o, depth - 1, own + 1, b); /* the right operand binds tighter: left associative */
        if (paren)
            put(o, ")");
        if (op == '+')
            mpq_add(q, a, b);
        else if (op == '-')
            mpq_sub(q, a, b);
        else if (op == '*')
            mpq_mul(q, a, b);
        else if (mpq_sgn(b) == 0) {
            o->div_by_zero = true;
            mpq_set_ui(q, 0, 1);
        } else {
            mpq_div(q, a, b);
        }
        q_fit(o, q);
    } else { /* round, ceil or floor, with decimals or not */
        static const char *const names[] = {"round", "ceil", "floor"};
        int mode = (int)(kind - 7 + below(2)) % 3;
        long digits = below(2) ? (long)below(8) - 3 : 0;
        put(o, names[mode]);
        put(o, "(");
        gen(o, depth - 1, PREC_SUM, a);
        if (digits != 0 || below(2)) {
            char d[32];
            snprintf(d, sizeof d, ",%s%ld", below(2) ? " " : "", digits);
            put(o, d);
        }
        put(o, ")");
        mpq_set(q, a);
        q_round(q, digits, mode);
        if (!q_fits(q))
            o->big = true; /* rounded up to 10^38 */
    }
    mpq_clears(a, b, NULL);
}

static void prop_arithmetic_gmp(void **state)
{
    (void)state;
    reseed(1);
    static char text[EXPRESSION_TEXT_MAX];
    static struct expression x;
    struct event e = test_event();
    mpq_t want, got;
    mpq_inits(want, got, NULL);
    int compared = 0;
    for (int iter = 0; iter < 20000; iter++) {
        struct oracle o = {.text = text, .cap = sizeof text};
        text[0] = '\0';
        gen(&o, 1 + (int)below(5), PREC_SUM, want);
        char message[EXPRESSION_MESSAGE_MAX];
        if (expression_parse(text, o.len, &x, message) != EXPRESSION_OK)
            fail_msg("seed %" PRIu64 " case %d: %s does not parse: %s", seed, iter, text, message);
        struct expression_value v;
        enum expression_status st = expression_evaluate(&x, &e, 0, &scratch, &v, message);
        if (o.div_by_zero) {
            if (st != EXPRESSION_ERR_DIV_BY_ZERO && !(o.big && st == EXPRESSION_ERR_RANGE))
                fail_msg("seed %" PRIu64 " case %d: %s: status %d, expected a division by zero",
                         seed, iter, text, st);
            continue;
        }
        if (o.big) {
            if (st != EXPRESSION_ERR_RANGE)
                fail_msg("seed %" PRIu64 " case %d: %s: status %d, expected a result past 38 "
                         "digits",
                         seed, iter, text, st);
            continue;
        }
        mpq_t ulp; /* the result keeps 15 decimals */
        mpq_init(ulp);
        mpq_set(ulp, want);
        q_round(ulp, EXPRESSION_RESULT_DECIMALS, 0);
        mpq_set(want, ulp);
        mpq_clear(ulp);
        if (st != EXPRESSION_OK || v.is_string)
            fail_msg("seed %" PRIu64 " case %d: %s: status %d (%s)", seed, iter, text, st, message);
        char digits[MONEY_TEXT_MAX];
        money_format(v.number, digits, sizeof digits);
        char *point = strchr(digits, '.');
        size_t decimals = point ? strlen(point + 1) : 0;
        if (point)
            memmove(point, point + 1, decimals + 1);
        mpz_set_str(mpq_numref(got), digits, 10);
        mpz_ui_pow_ui(mpq_denref(got), 10, decimals);
        mpq_canonicalize(got);
        if (!mpq_equal(got, want)) {
            char *w = mpq_get_str(NULL, 10, want);
            fail_msg("seed %" PRIu64 " case %d: %s = %s, expected %s", seed, iter, text,
                     money_format(v.number, digits, sizeof digits) ? digits : "?", w);
        }
        compared++;
    }
    assert_true(compared > 15000); /* the generator is not all overflow and zero divisors */
    mpq_clears(want, got, NULL);
}

static int setup(void **state)
{
    (void)state;
    seed_from_env("expression", UINT64_C(20261127));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_timestamp_floored),
        cmocka_unit_test(test_evaluation_errors),
        cmocka_unit_test(test_concat_too_long),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(prop_arithmetic_gmp),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
