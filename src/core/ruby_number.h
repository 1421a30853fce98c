/*
 * core/ruby_number: a number's text read as Ruby reads it, where Lago hands an event's field to
 * Ruby: BigDecimal() for a timestamp, String#to_d (Rails' decimal column) for a
 * precise_total_amount_cents, Float() for the value Lago checks before an estimate. One
 * scanner reads the three grammars, which differ only in a few marks (below), so that they
 * cannot drift apart.
 *
 * The grammar they share: ASCII whitespace around (Ruby's ISSPACE: space, \t \n \v \f \r), a
 * sign, integer digits, a fraction after '.', an exponent after 'e' or 'E' with its own sign,
 * and one '_' between two digits ("1_000.000_1", "1e1_0"). Leading zeros are digits ("007").
 * NaN and Infinity are none of them here (Tally keeps no such value).
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_RUBY_NUMBER_H
#define TALLY_CORE_RUBY_NUMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/money.h"

enum ruby_grammar {
    /* BigDecimal(text): also 'd' or 'D' for the exponent, and a '_' ending the integer part
     * when nothing follows it ("1_" is 1); "1." and ".e5" raise */
    RUBY_BIGDECIMAL,
    /* String#to_d, where it reads the whole text: BigDecimal's forms, and also a point with no
     * decimal after it ("5.", "5.e1"). What it reads only a part of ("12abc" is 12, "1_.5" is
     * 1) or none of ("abc" is 0) is not read here. */
    RUBY_TO_D,
    /* Float(text): no 'd' exponent, no '_' ending the integer part; also hexadecimal, "0x1A",
     * "0x1.8p1" (a hexadecimal fraction only with a binary exponent 'p', as Ruby's strtod) */
    RUBY_FLOAT,
};

/* An exponent's magnitude is held up to this: past it no digit of a value Tally keeps is left,
 * so a held exponent classifies (overflow, too small, zero) as the true one does. */
#define RUBY_EXPONENT_CAP INT64_C(1000000000000000)

/*
 * A decimal number as read: the value is ±D × 10^(exponent − fraction_digits), D the
 * mantissa's digits. Borrows the text.
 */
struct ruby_decimal {
    bool negative;
    const char *mantissa; /* its digits, with the '_' and the '.' between them */
    size_t mantissa_len;
    int64_t fraction_digits;
    int64_t exponent; /* within ±RUBY_EXPONENT_CAP */
};

/*
 * Reads `text` (len bytes, not NUL-terminated) as `grammar` reads a decimal number, whitespace
 * around it skipped. False if it is not one in that grammar (a hexadecimal Float() included:
 * ruby_float_reads takes it).
 */
bool ruby_decimal_read(const char *text, size_t len, enum ruby_grammar grammar,
                       struct ruby_decimal *out);

/*
 * The value exactly, as core/money holds it: false where money cannot (|value| >= 10^38, more
 * than 38 significant digits, or a non-zero digit past 38 decimals), as money_parse refuses
 * the same value written as a JSON number.
 */
bool ruby_decimal_money(const struct ruby_decimal *d, money_t *out);

/* Whether Ruby's Float(text) reads `text` (len bytes) without raising: a decimal number in
 * RUBY_FLOAT's grammar, or a hexadecimal one. */
bool ruby_float_reads(const char *text, size_t len);

/*
 * The text PostgreSQL's `properties->>'key'` gives back, in Lago's store, for a JSON number an
 * event carried: what Lago's filters, groups and unique counts compare. Rails parses a number
 * with a fraction or an exponent into a Float and writes it back with Float#to_s, which jsonb
 * keeps as a numeric: "1.50" is "1.5", "1e2" is "100.0", "1e15" is "1000000000000000",
 * "1e-5" is "0.000010", "-0.0" is "0.0". An integer is an Integer, written back as it came
 * ("-0" is "0").
 *
 * Writes the text and a NUL into out (RUBY_JSON_NUMBER_TEXT_MAX + 1 bytes) and returns true
 * when it differs from `text`; false when it is the same, when `text` is not a number, or
 * when a Float would not keep the number's digits (more than RUBY_FLOAT_DIGITS significant
 * ones, which it rounds, a subnormal magnitude, or one past DBL_MAX, which Lago writes null):
 * such a text is compared as written. A magnitude a double rounds to zero is "0.0".
 */
#define RUBY_FLOAT_DIGITS 15 /* DBL_DIG: every decimal of this many digits survives a double */
#define RUBY_JSON_NUMBER_TEXT_MAX 330
bool ruby_json_number_text(const char *text, size_t len, char *out);

#endif
