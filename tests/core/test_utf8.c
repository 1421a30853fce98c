/* util/utf8 against UTF-8 built here from code points: every scalar value's encoding passes;
 * every longer (overlong) encoding of it, every surrogate's, every 4-byte form past U+10FFFF,
 * every cut-short sequence and every byte that cannot start a character is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/utf8.h"

/* cp in exactly `len` bytes (1..4), overlong or not: the bytes a lax decoder would take */
static void encode_in(uint32_t cp, size_t len, unsigned char out[4])
{
    static const unsigned char lead[] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    for (size_t k = len - 1; k > 0; k--, cp >>= 6)
        out[k] = (unsigned char)(0x80 | (cp & 0x3F));
    out[0] = (unsigned char)(lead[len] | cp);
}

static size_t shortest(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static void scalar_values_pass_alone_and_in_text(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char s[6] = {'a'};
        size_t len = shortest(cp);
        encode_in(cp, len, s + 1);
        s[len + 1] = 'z';
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        assert_int_equal(utf8_valid(s + 1, len), !surrogate);
        assert_int_equal(utf8_valid(s, len + 2), !surrogate);
        for (size_t cut = 1; cut < len; cut++) /* cut short, at the end or before more text */
            assert_false(utf8_valid(s + 1, cut));
        if (len > 1) {
            unsigned char t[6];
            encode_in(cp, len, t);
            t[len - 1] = 'x';
            assert_false(utf8_valid(t, len));
        }
    }
}

static void overlong_forms_are_refused(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp < 0x10000; cp++)
        for (size_t len = shortest(cp) + 1; len <= 4; len++) {
            unsigned char s[4];
            encode_in(cp, len, s);
            assert_false(utf8_valid(s, len));
        }
}

static void past_u10ffff_and_bad_leads_are_refused(void **state)
{
    (void)state;
    for (uint32_t cp = 0x110000; cp <= 0x1FFFFF; cp++) {
        unsigned char s[4];
        encode_in(cp, 4, s);
        assert_false(utf8_valid(s, 4));
    }
    for (unsigned b = 0x80; b <= 0xFF; b++) {
        unsigned char s[6] = {(unsigned char)b, 0x80, 0x80, 0x80, 0x80, 0x80};
        if (b >= 0xC2 && b <= 0xF4)
            continue; /* leads that start some character */
        for (size_t len = 1; len <= 6; len++)
            assert_false(utf8_valid(s, len));
    }
    assert_true(utf8_valid("", 0));
    assert_true(utf8_valid("a\0b", 3)); /* NUL is a character; callers refuse it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalar_values_pass_alone_and_in_text),
        cmocka_unit_test(overlong_forms_are_refused),
        cmocka_unit_test(past_u10ffff_and_bad_leads_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
