/* core/ruby_number: see ruby_number.h. */
#include "core/ruby_number.h"

#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex_digit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Ruby's ISSPACE, which all three readings skip around a number: ASCII whitespace. */
static bool is_ruby_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* text[*from, *to) without the whitespace around it. */
static void trim(const char *text, size_t *from, size_t *to)
{
    while (*from < *to && is_ruby_space(text[*from]))
        (*from)++;
    while (*to > *from && is_ruby_space(text[*to - 1]))
        (*to)--;
}

/* A run of digits (hexadecimal ones if `hex`) from t[*i], one '_' allowed between two of
 * them; advances *i past it and returns how many digits it holds (0: none). */
static int64_t digit_run(const char *t, size_t len, size_t *i, bool hex)
{
    int64_t digits = 0;
    size_t at = *i;
    while (at < len) {
        if (hex ? is_hex_digit(t[at]) : is_digit(t[at]))
            digits++, at++;
        else if (t[at] == '_' && digits > 0 && at + 1 < len &&
                 (hex ? is_hex_digit(t[at + 1]) : is_digit(t[at + 1])))
            at++;
        else
            break;
    }
    *i = at;
    return digits;
}

/* The exponent's digits t[from, to) (with their '_'), its magnitude held at the cap. */
static int64_t exponent_value(const char *t, size_t from, size_t to)
{
    int64_t v = 0;
    for (size_t i = from; i < to; i++)
        if (is_digit(t[i]) && (v = v * 10 + (t[i] - '0')) > RUBY_EXPONENT_CAP)
            v = RUBY_EXPONENT_CAP;
    return v;
}

/* A signed exponent's digits from t[*i] (just past its letter): advances *i past them and
 * sets *out; false if there are none. */
static bool exponent_read(const char *t, size_t len, size_t *i, int64_t *out)
{
    bool negative = false;
    if (*i < len && (t[*i] == '+' || t[*i] == '-'))
        negative = t[(*i)++] == '-';
    size_t from = *i;
    if (digit_run(t, len, i, false) == 0)
        return false;
    *out = exponent_value(t, from, *i);
    if (negative)
        *out = -*out;
    return true;
}

static bool is_exponent_mark(char c, enum ruby_grammar g)
{
    return c == 'e' || c == 'E' || (g != RUBY_FLOAT && (c == 'd' || c == 'D'));
}

bool ruby_decimal_read(const char *text, size_t len, enum ruby_grammar grammar,
                       struct ruby_decimal *out)
{
    size_t i = 0;
    trim(text, &i, &len);
    struct ruby_decimal d = {0};
    if (i < len && (text[i] == '+' || text[i] == '-'))
        d.negative = text[i++] == '-';
    d.mantissa = text + i;
    int64_t integer_digits = digit_run(text, len, &i, false);
    /* BigDecimal's "1_": a '_' may end the integer part when nothing follows it */
    if (grammar != RUBY_FLOAT && integer_digits > 0 && i + 1 == len && text[i] == '_')
        i++;
    if (i < len && text[i] == '.') {
        i++;
        d.fraction_digits = digit_run(text, len, &i, false);
        /* a point with no decimal after it: only to_d reads it, after integer digits */
        if (d.fraction_digits == 0 && (grammar != RUBY_TO_D || integer_digits == 0))
            return false;
    } else if (integer_digits == 0) {
        return false;
    }
    d.mantissa_len = (size_t)(text + i - d.mantissa);
    if (i < len && is_exponent_mark(text[i], grammar)) {
        i++;
        if (!exponent_read(text, len, &i, &d.exponent))
            return false;
    }
    if (i != len)
        return false;
    *out = d;
    return true;
}

bool ruby_decimal_money(const struct ruby_decimal *d, money_t *out)
{
    /* D's significant digits into coef, trailing zeros left out (counted in `zeros`): the
     * value is coef × 10^(exponent − fraction_digits + zeros) */
    __int128 coef = 0;
    int64_t digits = 0, zeros = 0;
    for (size_t i = 0; i < d->mantissa_len; i++) {
        char c = d->mantissa[i];
        if (!is_digit(c) || (digits == 0 && c == '0'))
            continue;
        if (c == '0') {
            zeros++;
            continue;
        }
        if (digits + zeros + 1 > MONEY_DIGITS_MAX)
            return false; /* more significant digits than a value holds */
        for (; zeros > 0; zeros--, digits++)
            coef *= 10;
        coef = coef * 10 + (c - '0');
        digits++;
    }
    if (digits == 0) {
        *out = MONEY_ZERO;
        return true;
    }
    int64_t power = d->exponent - d->fraction_digits + zeros;
    if (power < 0)
        return power >= -MONEY_SCALE_MAX &&
               money_from_coef(d->negative ? -coef : coef, (int32_t)-power, out) == MONEY_OK;
    if (digits + power > MONEY_DIGITS_MAX)
        return false; /* 10^38 or more */
    for (; power > 0; power--)
        coef *= 10;
    return money_from_coef(d->negative ? -coef : coef, 0, out) == MONEY_OK;
}

/* Float()'s hexadecimal form, whitespace trimmed: [sign] 0x digits ['.' digits] ['p' exponent],
 * '_' between the integer digits and the exponent's; a fraction only with an exponent. */
static bool hex_float_reads(const char *t, size_t len)
{
    size_t i = 0;
    if (i < len && (t[i] == '+' || t[i] == '-'))
        i++;
    if (len - i < 2 || t[i] != '0' || (t[i + 1] != 'x' && t[i + 1] != 'X'))
        return false;
    i += 2;
    if (digit_run(t, len, &i, true) == 0)
        return false;
    bool fraction = false;
    if (i < len && t[i] == '.') {
        size_t from = ++i;
        while (i < len && is_hex_digit(t[i]))
            i++;
        if (i == from)
            return false;
        fraction = true;
    }
    int64_t exponent;
    if (i < len && (t[i] == 'p' || t[i] == 'P')) {
        i++;
        if (!exponent_read(t, len, &i, &exponent))
            return false;
    } else if (fraction) {
        return false;
    }
    return i == len;
}

bool ruby_float_reads(const char *text, size_t len)
{
    struct ruby_decimal d;
    if (ruby_decimal_read(text, len, RUBY_FLOAT, &d))
        return true;
    size_t from = 0;
    trim(text, &from, &len);
    return hex_float_reads(text + from, len - from);
}

/* Float#to_s keeps a point for magnitudes from 1e-4 to below 1e15 (flo_to_s: -3 to DBL_DIG
 * digits before the point, so 1e15 is "1.0e+15", an audit found); outside, it writes an
 * exponent, which jsonb's numeric turns back into plain digits. A double holds normal
 * magnitudes from DBL_MIN to DBL_MAX (their digits below); under half the least subnormal it
 * is 0.0. */
#define FLOAT_FIXED_DECPT_MIN (-3)
#define FLOAT_FIXED_DECPT_MAX 15
#define FLOAT_DECPT_MIN (-307)
#define FLOAT_DECPT_MAX 309
#define FLOAT_ZERO_DECPT_MAX (-324)
#define DOUBLE_MAX_DIGITS "17976931348623157" /* 0.179...e309 */
#define DOUBLE_MIN_DIGITS "22250738585072014" /* 0.222...e-307 */

/* Digits d[0..n) against a double's extreme's digits at the same decimal exponent. */
static int compare_digits(const char *d, size_t n, const char *extreme)
{
    size_t len = strlen(extreme);
    for (size_t i = 0; i < len; i++) {
        char c = i < n ? d[i] : '0';
        if (c != extreme[i])
            return c < extreme[i] ? -1 : 1;
    }
    return 0;
}

/* Whether 0.D x 10^decpt is a normal double's value (finite, not subnormal). */
static bool normal_double(const char *digits, size_t n, int64_t decpt)
{
    if (decpt > FLOAT_DECPT_MAX || decpt < FLOAT_DECPT_MIN)
        return false;
    if (decpt == FLOAT_DECPT_MAX)
        return compare_digits(digits, n, DOUBLE_MAX_DIGITS) <= 0;
    if (decpt == FLOAT_DECPT_MIN)
        return compare_digits(digits, n, DOUBLE_MIN_DIGITS) >= 0;
    return true;
}

static char *put_zeros(char *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        *out++ = '0';
    return out;
}

bool ruby_json_number_text(const char *text, size_t len, char *out)
{
    if (!memchr(text, '.', len) && !memchr(text, 'e', len) && !memchr(text, 'E', len)) {
        if (len != 2 || memcmp(text, "-0", 2) != 0)
            return false; /* an Integer: as written */
        memcpy(out, "0", 2);
        return true;
    }
    struct ruby_decimal d;
    if (!ruby_decimal_read(text, len, RUBY_FLOAT, &d))
        return false;
    /* the value is 0.D x 10^decpt, D its significant digits */
    char digits[RUBY_FLOAT_DIGITS];
    size_t n = 0;
    int64_t decpt = d.exponent - d.fraction_digits, zeros_held = 0;
    for (size_t i = 0; i < d.mantissa_len; i++) {
        char c = d.mantissa[i];
        if (!is_digit(c))
            continue;
        decpt++;
        if (n == 0 && c == '0') {
            decpt--; /* a leading zero */
            continue;
        }
        if (c == '0') {
            zeros_held++; /* significant only if a digit follows */
            continue;
        }
        if (n + (size_t)zeros_held + 1 > RUBY_FLOAT_DIGITS)
            return false;
        for (; zeros_held > 0; zeros_held--)
            digits[n++] = '0';
        digits[n++] = c;
    }
    char *o = out;
    if (n == 0 || decpt <= FLOAT_ZERO_DECPT_MAX) { /* 0.0, or what a double rounds to it */
        memcpy(out, "0.0", 4);
        return len != 3 || memcmp(text, "0.0", 3) != 0;
    }
    if (!normal_double(digits, n, decpt))
        return false; /* subnormal, or past DBL_MAX (Lago's null): as written */
    if (d.negative)
        *o++ = '-';
    int64_t count = (int64_t)n;
    if (decpt > FLOAT_FIXED_DECPT_MAX) { /* 1.0e+20: numeric's integer digits */
        memcpy(o, digits, n);
        o = put_zeros(o + n, decpt - count);
    } else if (decpt > 0) { /* 123.45, 100.0 */
        int64_t whole = count < decpt ? count : decpt;
        memcpy(o, digits, (size_t)whole);
        o = put_zeros(o + whole, decpt - whole);
        *o++ = '.';
        if (count > decpt) {
            memcpy(o, digits + decpt, (size_t)(count - decpt));
            o += count - decpt;
        } else {
            *o++ = '0';
        }
    } else { /* 0.0012; past FLOAT_FIXED_DECPT_MIN, 1.0e-05 is numeric's 0.000010 */
        *o++ = '0';
        *o++ = '.';
        o = put_zeros(o, -decpt);
        memcpy(o, digits, n);
        o += n;
        if (decpt < FLOAT_FIXED_DECPT_MIN && n == 1)
            *o++ = '0'; /* the exponent form's mantissa "1.0" kept its one decimal */
    }
    *o = '\0';
    return (size_t)(o - out) != len || memcmp(out, text, len) != 0;
}
