/*
 * core/money: exact decimal numbers for money, credits, rates and quantities.
 *
 * A value is coef / 10^scale, with an __int128 coefficient and a per-value scale. The scale
 * varies because inputs do: Lago sends "17.9699999999999988631316" (22 decimals) and floors
 * it to 5 afterwards, so a fixed scale would either round on input or waste the range.
 * Nothing here ever rounds silently: parsing and add/sub/mul are exact or fail, and the only
 * operations that round (money_round, money_div, money_mul_round, money_to_minor_units) take
 * an explicit mode.
 *
 * Limits (MONEY_DIGITS_MAX, MONEY_SCALE_MAX): |coef| < 10^38 and 0 <= scale <= 38. 10^38 is
 * the largest power of ten below 2^127, so any 38 significant digits fit in a coefficient and
 * format/parse are exact inverses. The scale limit equals the digit limit so that it adds no
 * rule of its own: a value is representable iff it has at most 38 decimals and at most 38
 * digits from its first non-zero digit to its last non-zero decimal (to its units digit, for
 * an integer). Lago's columns are decimal(30,5) and its amounts stay below 10^25: both fit.
 *
 * Failures are reported, never wrapped or clamped:
 *   MONEY_ERR_OVERFLOW   the result does not fit: |value| >= 10^38, or, where the caller
 *                        asks for a result scale s (round, div, mul_round), |value| >=
 *                        10^(38-s).
 *   MONEY_ERR_PRECISION  the magnitude fits but the exact result needs more than 38 digits
 *                        or more than 38 decimals (or a MONEY_ROUND_EXACT would round).
 * When both hold, OVERFLOW wins.
 *
 * Representation: results keep their natural scale (the larger of the operands' for add and
 * sub, the sum for mul, the text's for parse, the requested one for round, div and
 * mul_round), dropping trailing zeros only when that is what makes the result fit. So
 * 1.50 + 1 is coef 250, scale 2. Two representations of one value (1.5 and 1.50) are equal
 * under money_cmp; never compare the fields. money_format always writes the canonical text.
 *
 * Pure and allocation-free: no I/O, no globals, no floating point. The common cases (results
 * inside 128 bits) take a native fast path of about ten nanoseconds; 256-bit intermediates
 * are used only when a result needs them.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_MONEY_H
#define TALLY_CORE_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MONEY_DIGITS_MAX 38 /* |coef| < 10^38 */
#define MONEY_SCALE_MAX 38  /* 0 <= scale <= 38 */
/* 10^38, the exclusive bound on |coef|. */
#define MONEY_COEF_LIMIT                                                                           \
    ((__int128)UINT64_C(10000000000000000000) * (__int128)UINT64_C(10000000000000000000))
/*
 * Buffer size that holds any money_format/money_format_fraction output with its NUL:
 * "-" + 38 integer digits + "." + 38 fraction digits + NUL = 79.
 */
#define MONEY_TEXT_MAX 80

typedef struct money {
    __int128 coef; /* |coef| < MONEY_COEF_LIMIT */
    int32_t scale; /* 0..MONEY_SCALE_MAX */
} money_t;

#define MONEY_ZERO ((money_t){0, 0})

enum money_status {
    MONEY_OK = 0,
    MONEY_ERR_SYNTAX,      /* text is not a JSON number */
    MONEY_ERR_OVERFLOW,    /* result too large (see above) */
    MONEY_ERR_PRECISION,   /* result would need more digits than a value holds, or rounding */
    MONEY_ERR_DIV_BY_ZERO, /* divisor is zero */
    MONEY_ERR_INVALID,     /* scale, exponent or rounding mode out of range */
};

/*
 * Rounding modes, named as Ruby's BigDecimal and Java's RoundingMode name them. HALF_UP is
 * Lago's rule for fees (BigDecimal#round): ties go away from zero, 2.345 -> 2.35 and
 * -2.345 -> -2.35. EXACT rounds nothing and fails with MONEY_ERR_PRECISION instead.
 */
enum money_round {
    MONEY_ROUND_HALF_UP,   /* nearest; ties away from zero */
    MONEY_ROUND_HALF_EVEN, /* nearest; ties to the even neighbour (banker's) */
    MONEY_ROUND_HALF_DOWN, /* nearest; ties toward zero */
    MONEY_ROUND_FLOOR,     /* toward -infinity */
    MONEY_ROUND_CEIL,      /* toward +infinity */
    MONEY_ROUND_DOWN,      /* toward zero (truncate) */
    MONEY_ROUND_UP,        /* away from zero */
    MONEY_ROUND_EXACT,     /* no rounding allowed */
};

/* A static English message for `status` ("unknown money status" for values out of range). */
const char *money_status_text(enum money_status status);

/* True if `v` respects the limits. Every function below requires valid operands (asserted). */
static inline bool money_is_valid(money_t v)
{
    return v.scale >= 0 && v.scale <= MONEY_SCALE_MAX && v.coef > -MONEY_COEF_LIMIT &&
           v.coef < MONEY_COEF_LIMIT;
}

/* The integer `n` (scale 0). Always representable. */
static inline money_t money_from_int(int64_t n)
{
    return (money_t){n, 0};
}

/* -1, 0 or 1. */
static inline int money_sign(money_t v)
{
    return (v.coef > 0) - (v.coef < 0);
}

static inline bool money_is_zero(money_t v)
{
    return v.coef == 0;
}

/* -v, same scale. Cannot fail: the coefficient range is symmetric. */
static inline money_t money_neg(money_t v)
{
    return (money_t){-v.coef, v.scale};
}

/* |v|, same scale. Cannot fail. */
static inline money_t money_abs(money_t v)
{
    return (money_t){v.coef < 0 ? -v.coef : v.coef, v.scale};
}

/*
 * Builds coef / 10^scale. MONEY_ERR_INVALID if scale is outside 0..MONEY_SCALE_MAX,
 * MONEY_ERR_OVERFLOW if |coef| >= 10^38. *out is written only on MONEY_OK (as for every
 * function here that returns a status).
 */
enum money_status money_from_coef(__int128 coef, int32_t scale, money_t *out);

/*
 * Parses a JSON number (RFC 8259): -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. The same
 * grammar serves JSON number tokens and Lago's decimal strings ("10.0", "0.00001"). Rejected
 * with MONEY_ERR_SYNTAX: empty text, a leading '+', leading zeros ("01"), ".5", "5.", spaces
 * anywhere, NaN/Infinity, hex, and anything after the number. `text` is borrowed for the call
 * and need not be NUL-terminated; exactly `len` bytes are read.
 *
 * The value is exact: the result keeps the scale written in the text ("10.0" is coef 100,
 * scale 1; "1.5e3" is 1500, scale 0; "1e-7" is 1, scale 7), minus trailing zeros that would
 * not fit. A value that cannot be held exactly fails: MONEY_ERR_OVERFLOW if |value| >= 10^38,
 * otherwise MONEY_ERR_PRECISION ("1e-39", or 39 significant digits). Never rounds.
 * "-0" is zero.
 */
enum money_status money_parse(const char *text, size_t len, money_t *out);

/*
 * Writes the canonical text of `v`: plain decimal, no exponent, no trailing fraction zeros,
 * no "-0" ("10", "0.5", "-0.001", "0"). money_parse reads it back to the same value.
 * Returns the length written (without the NUL). If `cap` is too small (MONEY_TEXT_MAX always
 * suffices) writes "" when cap > 0 and returns 0; 0 is never the length of a value.
 */
size_t money_format(money_t v, char *out, size_t cap);

/*
 * As money_format, but with at least `min_fraction_digits` (0..MONEY_SCALE_MAX) digits after
 * the point, padding with zeros: 1 gives Lago's decimal strings ("10.0", "0.5", "1.25"), 2
 * gives a EUR display ("17.90"). Never drops a non-zero digit. Returns 0 as money_format
 * does, and also when min_fraction_digits is out of range or v is not valid (checked here
 * even without assertions, since this writes into the caller's buffer).
 */
size_t money_format_fraction(money_t v, int32_t min_fraction_digits, char *out, size_t cap);

/* -1, 0 or 1 as a <, =, > b, by value: 1.5 and 1.50 compare equal. Cannot fail. */
int money_cmp(money_t a, money_t b);

/*
 * Exact a + b and a - b. Result scale: max(a.scale, b.scale), less trailing zeros if needed.
 * MONEY_ERR_OVERFLOW if |result| >= 10^38, MONEY_ERR_PRECISION if it needs more than 38 digits
 * (10^37 + 0.1).
 */
enum money_status money_add(money_t a, money_t b, money_t *out);
enum money_status money_sub(money_t a, money_t b, money_t *out);

/*
 * Exact a * b. Result scale: a.scale + b.scale, less trailing zeros if needed. Fails as
 * money_add does; MONEY_ERR_PRECISION covers results past 38 decimals (1e-20 * 1e-20).
 */
enum money_status money_mul(money_t a, money_t b, money_t *out);

/*
 * a + b and a * b where a result of more than 38 significant digits keeps its first 38, the
 * decimals past them truncated toward zero, instead of failing with MONEY_ERR_PRECISION: the
 * quantities and amounts that usage adds up (a sum of one value of 1e-38 and another of 1).
 * What one result drops is below one unit of its 38th digit; a sum of several such results can
 * be that many units short (docs/ARCHITECTURE.md, "Money", says what this costs).
 * MONEY_ERR_OVERFLOW as money_add and money_mul.
 */
enum money_status money_add_truncated(money_t a, money_t b, money_t *out);
enum money_status money_mul_truncated(money_t a, money_t b, money_t *out);

/*
 * a * b rounded once, to exactly `scale` decimals with `mode`: a price times a quantity
 * straight to 5 decimals, which never fails with MONEY_ERR_PRECISION where mul-then-round
 * might (the exact product is held in 256 bits). MONEY_ERR_INVALID for a bad scale or mode,
 * MONEY_ERR_OVERFLOW if |result| >= 10^(38-scale), MONEY_ERR_PRECISION only for
 * MONEY_ROUND_EXACT.
 */
enum money_status money_mul_round(money_t a, money_t b, int32_t scale, enum money_round mode,
                                  money_t *out);

/*
 * a / b rounded to exactly `scale` decimals with `mode` (one rounding, of the exact
 * quotient). MONEY_ERR_DIV_BY_ZERO if b is zero, MONEY_ERR_INVALID for a scale outside
 * 0..MONEY_SCALE_MAX or an unknown mode, MONEY_ERR_OVERFLOW if |result| >= 10^(38-scale),
 * MONEY_ERR_PRECISION if mode is MONEY_ROUND_EXACT and the quotient has more decimals.
 */
enum money_status money_div(money_t a, money_t b, int32_t scale, enum money_round mode,
                            money_t *out);

/*
 * v rounded to exactly `scale` decimals with `mode`; the result's scale is `scale` (scaling up
 * a value with fewer decimals adds zeros). Lago's credit floor is
 * money_round(x, 5, MONEY_ROUND_FLOOR, &y): 17.9699999999999988631316 -> 17.96999.
 * MONEY_ERR_INVALID for a bad scale or mode, MONEY_ERR_OVERFLOW if |v| >= 10^(38-scale),
 * MONEY_ERR_PRECISION if mode is MONEY_ROUND_EXACT and digits would be lost.
 */
enum money_status money_round(money_t v, int32_t scale, enum money_round mode, money_t *out);

/* v without trailing fraction zeros (1.50 -> 1.5, 10.0 -> 10): the canonical representation. */
money_t money_normalize(money_t v);

/*
 * v in minor units of a currency with `exponent` decimals (ISO 4217: JPY 0, EUR 2, KWD 3),
 * rounded with `mode`: 17.97 EUR -> 1797; Lago's fee cents are MONEY_ROUND_HALF_UP.
 * MONEY_ERR_INVALID if exponent is outside 0..MONEY_SCALE_MAX (a currency without minor unit,
 * CURRENCY_EXPONENT_NONE, is rejected here), MONEY_ERR_OVERFLOW if the result leaves int64,
 * MONEY_ERR_PRECISION for MONEY_ROUND_EXACT when v has more decimals than the currency.
 */
enum money_status money_to_minor_units(money_t v, int32_t exponent, enum money_round mode,
                                       int64_t *out);

/* units / 10^exponent (1797 at exponent 2 -> 17.97). MONEY_ERR_INVALID for a bad exponent. */
enum money_status money_from_minor_units(int64_t units, int32_t exponent, money_t *out);

/*
 * `total` minor units shared between `count` parts in proportion to their weights (each >= 0):
 * each share is rounded toward zero, and the units that leaves go one each to the parts with
 * the largest remainders (the earlier part on a tie), so the shares add up to exactly `total`
 * and each is within one unit of its exact part. Weights all zero: the first part takes it
 * all. What one fee's taxes are, split between the taxes that make them. MONEY_ERR_INVALID
 * for no part, more than MONEY_SPLIT_PARTS_MAX or a negative weight, MONEY_ERR_OVERFLOW if a
 * product leaves 38 digits (or total is INT64_MIN).
 */
#define MONEY_SPLIT_PARTS_MAX 64
enum money_status money_split_minor_units(int64_t total, const money_t *weights, size_t count,
                                          int64_t *shares);

#endif
