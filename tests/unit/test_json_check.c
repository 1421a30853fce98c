/*
 * json/json_check: JSON as RFC 8259 writes it, against what json-c (strict) lets through.
 * A table of forms each side of the line, then random documents: every one built from JSON's
 * grammar is accepted (by json-c too), and the same document with one number or escape put
 * out of the grammar is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "json/json_check.h"
#include "json/json_in.h"
#include "util/buf.h"

static bool check(const char *text)
{
    const char *why = NULL;
    bool ok = json_check(text, strlen(text), &why);
    assert_true(ok || why != NULL);
    return ok;
}

static void test_forms(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "0",
        "-0",
        "12",
        "-12.5",
        "1e5",
        "1E+5",
        "1.25e-7",
        "0.0",
        "\"\"",
        "true",
        "false",
        "null",
        " {} ",
        "[]",
        "{\"a\":[1,{\"b\":null}],\"c\":\"x\"}",
        "[1 , 2\n,\t3]",
        "\"\\ud83d\\ude00\"",
        "\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
        "{\"k\":-0.5E-0}",
        "\"\xc3\xa9\"",
    };
    static const char *const invalid[] = {
        "NaN",
        "Infinity",
        "-Infinity",
        "05",
        "05.5",
        "-05",
        "00",
        "1.",
        "1.e5",
        ".5",
        "+1",
        "1e",
        "1e+",
        "-",
        "{\"gb\":NaN}",
        "[1,Infinity]",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800x\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800\\\"",
        "\"\\x\"",
        "\"a",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "[1 2]",
        "1 2",
        "",
        "   ",
        "{",
        "tru",
        "\"\\u12\"",
        "\"tab\there\"",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!check(valid[i]))
            fail_msg("refused valid JSON: %s", valid[i]);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (check(invalid[i]))
            fail_msg("accepted what JSON is not: %s", invalid[i]);
}

static void test_parse_refuses_what_json_c_takes(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"event\":{\"properties\":{\"gb\":NaN}}}",
        "{\"event\":{\"properties\":{\"gb\":05.5}}}",
        "{\"event\":{\"properties\":{\"gb\":1.}}}",
        "{\"event\":{\"transaction_id\":\"\\ud800\"}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        const char *why = NULL;
        struct json_object *doc = json_in_parse(bodies[i], strlen(bodies[i]), &why);
        if (doc)
            fail_msg("json_in_parse took %s", bodies[i]);
        assert_non_null(why);
        assert_non_null(strstr(why, "not valid JSON"));
    }
}

/* ---- random documents ---- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned below(unsigned n)
{
    return (unsigned)(next() % n);
}

static void number(struct buf *b)
{
    if (below(3) == 0)
        buf_append(b, "-", 1);
    if (below(4) == 0)
        buf_append(b, "0", 1);
    else
        buf_printf(b, "%u", 1 + below(100000));
    if (below(2))
        buf_printf(b, ".%u", below(1000));
    if (below(4) == 0)
        buf_printf(b, "%s%s%u", below(2) ? "e" : "E", below(2) ? "-" : "", below(30));
}

static void string(struct buf *b)
{
    static const char *const pieces[] = {
        "a", "Zz", " ", "\\n", "\\\"", "\\u00e9", "\\ud83d\\ude00", "\xc3\xa9", "\\/"};
    buf_append(b, "\"", 1);
    for (unsigned n = below(4); n > 0; n--) {
        const char *p = pieces[below(sizeof pieces / sizeof pieces[0])];
        buf_append(b, p, strlen(p));
    }
    buf_append(b, "\"", 1);
}

static void value(struct buf *b, int depth)
{
    switch (depth > 4 ? below(3) : below(5)) {
    case 0: number(b); break;
    case 1: string(b); break;
    case 2: buf_printf(b, "%s", below(3) == 0 ? "null" : below(2) ? "true" : "false"); break;
    case 3:
        buf_append(b, "[", 1);
        for (unsigned n = below(4), i = 0; i < n; i++) {
            const char *comma = below(2) ? "," : " ,\n";
            if (i)
                buf_append(b, comma, strlen(comma));
            value(b, depth + 1);
        }
        buf_append(b, "]", 1);
        break;
    default:
        buf_append(b, "{", 1);
        for (unsigned n = below(4), i = 0; i < n; i++) {
            if (i)
                buf_append(b, ",", 1);
            string(b);
            const char *colon = below(2) ? ":" : " : ";
            buf_append(b, colon, strlen(colon));
            value(b, depth + 1);
        }
        buf_append(b, "}", 1);
    }
}

static void prop_random_documents(void **state)
{
    (void)state;
    static const char *const breakers[] = {"NaN",  "Infinity",    "-Infinity",   "05",   "1.",
                                           "1.e5", "\"\\ud800\"", "\"\\udfff\"", "-05.5"};
    for (int round = 0; round < 5000; round++) {
        struct buf doc;
        buf_init(&doc);
        buf_append(&doc, "{\"k\":[", 6);
        value(&doc, 0);
        size_t cut = doc.len;
        buf_append(&doc, "]}", 2);
        const char *why = NULL;
        if (!json_check(doc.data, doc.len, &why))
            fail_msg("refused valid JSON (%s): %.*s", why, (int)doc.len, doc.data);
        struct json_object *parsed = json_in_parse(doc.data, doc.len, &why);
        if (!parsed)
            fail_msg("json_in_parse refused valid JSON (%s): %.*s", why, (int)doc.len, doc.data);
        json_object_put(parsed);
        /* the same document with an invalid value after the first one */
        struct buf bad;
        buf_init(&bad);
        buf_append(&bad, doc.data, cut);
        const char *breaker = breakers[below(sizeof breakers / sizeof breakers[0])];
        buf_printf(&bad, ",%s]}", breaker);
        if (json_check(bad.data, bad.len, &why))
            fail_msg("accepted %s in: %.*s", breaker, (int)bad.len, bad.data);
        parsed = json_in_parse(bad.data, bad.len, &why);
        assert_null(parsed);
        buf_free(&bad);
        buf_free(&doc);
    }
}

/* Blank as Lago's `blank?` reads it (/\A[[:space:]]*\z/): Unicode's white space too, not
 * every invisible character. An audit saw a metadata filter of U+3000 filter everything out. */
static void blank_is_unicode_white_space(void **state)
{
    (void)state;
    static const char *const blank[] = {"",
                                        " \t\r\n\v\f",
                                        "\xc2\xa0",
                                        "\xc2\x85",
                                        "\xe3\x80\x80",
                                        "\xe2\x80\x80\xe2\x80\x8a",
                                        "\xe2\x80\xa8\xe2\x80\xa9",
                                        "\xe2\x80\xaf",
                                        "\xe2\x81\x9f",
                                        "\xe1\x9a\x80",
                                        " \xe3\x80\x80 "};
    static const char *const not_blank[] = {"a",
                                            " a ",
                                            "\xe2\x80\x8b" /* zero width */,
                                            "\xef\xbb\xbf" /* BOM */,
                                            "\xc2",
                                            "\xe3\x80",
                                            "\xe2\x80\x8c",
                                            "\xc2\xa1",
                                            "\xe3\x80\x81"};
    for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++)
        assert_true(json_in_blank(blank[i], strlen(blank[i])));
    for (size_t i = 0; i < sizeof not_blank / sizeof not_blank[0]; i++)
        assert_false(json_in_blank(not_blank[i], strlen(not_blank[i])));
    assert_false(json_in_blank(" \0 ", 3)); /* a NUL is not white space */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(blank_is_unicode_white_space),
        cmocka_unit_test(test_parse_refuses_what_json_c_takes),
        cmocka_unit_test(prop_random_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
