/*
 * core/money: exact decimal arithmetic on coef / 10^scale.
 *
 * Every operation first tries the native 128-bit path (__builtin_*_overflow tells when it
 * cannot be trusted); only then does it compute the exact result in 256 bits (a product of two
 * coefficients, or a coefficient aligned to a 38-decimal scale, needs at most 254 bits) and
 * fit it back into a value, reporting OVERFLOW or PRECISION when it will not go. Keeping the
 * wide path separate keeps the common cases fast and the rare ones obviously exact. Outside
 * the fast paths, magnitudes are unsigned and the sign travels beside them, so that no step
 * relies on the asymmetry of two's complement.
 */
#include "core/money.h"

#include <assert.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef __int128 i128;

#define COEF_LIMIT ((u128)MONEY_COEF_LIMIT)
#define E19 UINT64_C(10000000000000000000)
#define E19X(k) ((u128)E19 * UINT64_C(k))

/* 10^0 .. 10^38, every power a value's scale or a rescaling can need. */
static const u128 pow10_tab[MONEY_SCALE_MAX + 1] = {
    UINT64_C(1),
    UINT64_C(10),
    UINT64_C(100),
    UINT64_C(1000),
    UINT64_C(10000),
    UINT64_C(100000),
    UINT64_C(1000000),
    UINT64_C(10000000),
    UINT64_C(100000000),
    UINT64_C(1000000000),
    UINT64_C(10000000000),
    UINT64_C(100000000000),
    UINT64_C(1000000000000),
    UINT64_C(10000000000000),
    UINT64_C(100000000000000),
    UINT64_C(1000000000000000),
    UINT64_C(10000000000000000),
    UINT64_C(100000000000000000),
    UINT64_C(1000000000000000000),
    E19,
    E19X(10),
    E19X(100),
    E19X(1000),
    E19X(10000),
    E19X(100000),
    E19X(1000000),
    E19X(10000000),
    E19X(100000000),
    E19X(1000000000),
    E19X(10000000000),
    E19X(100000000000),
    E19X(1000000000000),
    E19X(10000000000000),
    E19X(100000000000000),
    E19X(1000000000000000),
    E19X(10000000000000000),
    E19X(100000000000000000),
    E19X(1000000000000000000),
    E19X(10000000000000000000),
};

const char *money_status_text(enum money_status status)
{
    switch (status) {
    case MONEY_OK: return "ok";
    case MONEY_ERR_SYNTAX: return "not a decimal number";
    case MONEY_ERR_OVERFLOW: return "number too large";
    case MONEY_ERR_PRECISION: return "number has too many digits to be held exactly";
    case MONEY_ERR_DIV_BY_ZERO: return "division by zero";
    case MONEY_ERR_INVALID: return "scale, exponent or rounding mode out of range";
    }
    return "unknown money status";
}

/* ---- Magnitudes and signs ---------------------------------------------------------------- */

static u128 mag_of(i128 c)
{
    return c < 0 ? (u128)0 - (u128)c : (u128)c;
}

/* The value with sign `neg` and magnitude `m` (< 10^38): zero is never negative. */
static money_t make(bool neg, u128 m, int32_t scale)
{
    assert(m < COEF_LIMIT && scale >= 0 && scale <= MONEY_SCALE_MAX);
    i128 c = (i128)m;
    return (money_t){neg ? -c : c, scale};
}

static int cmp128(u128 a, u128 b)
{
    return (a > b) - (a < b);
}

static bool scale_ok(int32_t scale)
{
    return scale >= 0 && scale <= MONEY_SCALE_MAX;
}

static bool mode_ok(enum money_round mode)
{
    return (unsigned)mode <= (unsigned)MONEY_ROUND_EXACT;
}

/* ---- 256-bit unsigned integers, for the exact wide path --------------------------------- */

typedef struct u256 {
    uint64_t w[4]; /* least significant limb first */
} u256;

static u256 u256_from(u128 a)
{
    return (u256){{(uint64_t)a, (uint64_t)(a >> 64), 0, 0}};
}

static bool u256_fits128(u256 a)
{
    return (a.w[2] | a.w[3]) == 0;
}

static u128 u256_low(u256 a)
{
    return ((u128)a.w[1] << 64) | a.w[0];
}

static bool u256_is_zero(u256 a)
{
    return (a.w[0] | a.w[1] | a.w[2] | a.w[3]) == 0;
}

static int u256_cmp(u256 a, u256 b)
{
    for (int i = 3; i >= 0; i--) {
        if (a.w[i] != b.w[i])
            return a.w[i] < b.w[i] ? -1 : 1;
    }
    return 0;
}

static u256 u256_mul(u128 a, u128 b)
{
    uint64_t a0 = (uint64_t)a, a1 = (uint64_t)(a >> 64);
    uint64_t b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
    u128 p00 = (u128)a0 * b0, p01 = (u128)a0 * b1, p10 = (u128)a1 * b0, p11 = (u128)a1 * b1;
    u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10;    /* < 3 * 2^64 */
    u128 high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64); /* < 2^128: no carry out */
    return (u256){{(uint64_t)p00, (uint64_t)mid, (uint64_t)high, (uint64_t)(high >> 64)}};
}

/* a + b; callers keep the sum below 2^256. */
static u256 u256_add(u256 a, u256 b)
{
    u256 r;
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        u128 s = (u128)a.w[i] + b.w[i] + carry;
        r.w[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    return r;
}

/* a - b; requires a >= b. */
static u256 u256_sub(u256 a, u256 b)
{
    u256 r;
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t d = a.w[i] - b.w[i];
        uint64_t out = (a.w[i] < b.w[i]) | (d < borrow);
        r.w[i] = d - borrow;
        borrow = out;
    }
    return r;
}

/* *a /= d, returning the remainder. */
static uint64_t u256_divmod_small(u256 *a, uint64_t d)
{
    u128 rem = 0;
    for (int i = 3; i >= 0; i--) {
        u128 cur = (rem << 64) | a->w[i];
        a->w[i] = (uint64_t)(cur / d);
        rem = cur % d;
    }
    return (uint64_t)rem;
}

static int u256_limbs(u256 a)
{
    int n = 4;
    while (n > 0 && a.w[n - 1] == 0)
        n--;
    return n;
}

/*
 * Knuth's algorithm D (TAOCP 4.3.1) on 64-bit limbs, as in Hacker's Delight's divmnu:
 * q = u / v, r = u % v, for m >= n >= 2 limbs with v's top limb non-zero.
 */
static void divmnu(u256 *q, u256 *r, const uint64_t *u, const uint64_t *v, int m, int n)
{
    uint64_t un[5] = {0}, vn[4] = {0};
    int s = __builtin_clzll(v[n - 1]);

    /* Normalise so that v's top bit is set. x >> (64 - s) is written (x >> 1) >> (63 - s)
     * because a shift by 64 is undefined when s is 0. */
    for (int i = n - 1; i > 0; i--)
        vn[i] = (v[i] << s) | (v[i - 1] >> 1 >> (63 - s));
    vn[0] = v[0] << s;
    un[m] = u[m - 1] >> 1 >> (63 - s);
    for (int i = m - 1; i > 0; i--)
        un[i] = (u[i] << s) | (u[i - 1] >> 1 >> (63 - s));
    un[0] = u[0] << s;

    *q = (u256){{0}};
    for (int j = m - n; j >= 0; j--) {
        u128 num = ((u128)un[j + n] << 64) | un[j + n - 1];
        u128 qhat = num / vn[n - 1];
        u128 rhat = num % vn[n - 1];
        while ((qhat >> 64) != 0 || qhat * vn[n - 2] > ((rhat << 64) | un[j + n - 2])) {
            qhat--;
            rhat += vn[n - 1];
            if ((rhat >> 64) != 0)
                break;
        }
        uint64_t borrow = 0, carry = 0;
        for (int i = 0; i < n; i++) {
            u128 p = qhat * vn[i] + carry;
            carry = (uint64_t)(p >> 64);
            uint64_t lo = (uint64_t)p, t = un[i + j] - lo;
            uint64_t out = (un[i + j] < lo) | (t < borrow);
            un[i + j] = t - borrow;
            borrow = out;
        }
        uint64_t top = un[j + n], t = top - carry;
        bool negative = (top < carry) | (t < borrow);
        un[j + n] = t - borrow;
        q->w[j] = (uint64_t)qhat;
        if (negative) { /* qhat was one too large (probability ~2/2^64): add v back */
            q->w[j]--;
            uint64_t c = 0;
            for (int i = 0; i < n; i++) {
                u128 sum = (u128)un[i + j] + vn[i] + c;
                un[i + j] = (uint64_t)sum;
                c = (uint64_t)(sum >> 64);
            }
            un[j + n] += c;
        }
    }
    *r = (u256){{0}};
    for (int i = 0; i < n - 1; i++)
        r->w[i] = (un[i] >> s) | (un[i + 1] << 1 << (63 - s));
    r->w[n - 1] = un[n - 1] >> s;
}

/* q = u / v, r = u % v; v != 0. */
static void u256_divmod(u256 u, u256 v, u256 *q, u256 *r)
{
    int m = u256_limbs(u), n = u256_limbs(v);
    assert(n > 0);
    if (m <= 2 && n <= 2) {
        u128 a = u256_low(u), b = u256_low(v);
        *q = u256_from(a / b);
        *r = u256_from(a % b);
    } else if (u256_cmp(u, v) < 0) {
        *q = (u256){{0}};
        *r = u;
    } else if (n == 1) {
        *q = u;
        *r = u256_from(u256_divmod_small(q, v.w[0]));
    } else {
        divmnu(q, r, u.w, v.w, m, n);
    }
}

/* 10^e for e in 0..2*MONEY_SCALE_MAX. */
static u256 pow10_wide(int32_t e)
{
    assert(e >= 0 && e <= 2 * MONEY_SCALE_MAX);
    if (e <= MONEY_SCALE_MAX)
        return u256_from(pow10_tab[e]);
    return u256_mul(pow10_tab[MONEY_SCALE_MAX], pow10_tab[e - MONEY_SCALE_MAX]);
}

/*
 * The exact value ±mag / 10^scale (scale <= 2 * MONEY_SCALE_MAX) as a money_t, dropping
 * trailing zeros only while the scale or the coefficient is too large; with `truncate`, any
 * digits then (toward zero).
 */
static enum money_status fit_to(bool neg, u256 mag, int32_t scale, bool truncate, money_t *out)
{
    /* |value| >= 10^38, i.e. mag >= 10^(38+scale); past scale 38 that bound exceeds 2^256. */
    if (scale <= MONEY_SCALE_MAX && u256_cmp(mag, u256_mul(COEF_LIMIT, pow10_tab[scale])) >= 0)
        return MONEY_ERR_OVERFLOW;
    while (scale > MONEY_SCALE_MAX || !u256_fits128(mag) || u256_low(mag) >= COEF_LIMIT) {
        if (u256_divmod_small(&mag, 10) != 0 && !truncate)
            return MONEY_ERR_PRECISION;
        scale--;
    }
    *out = make(neg, u256_low(mag), scale);
    return MONEY_OK;
}

static enum money_status fit(bool neg, u256 mag, int32_t scale, money_t *out)
{
    return fit_to(neg, mag, scale, false, out);
}

/* ---- Rounding ----------------------------------------------------------------------------- */

/*
 * Whether the rounded result is the truncated quotient plus one unit of magnitude. `half` is
 * the sign of (remainder - divisor/2), so ties are visible without halving an odd divisor.
 * `neg` is the sign of the exact result, which decides FLOOR and CEIL even when the truncated
 * quotient is zero.
 */
static bool rounds_away(enum money_round mode, bool neg, bool odd, bool inexact, int half)
{
    if (!inexact)
        return false;
    switch (mode) {
    case MONEY_ROUND_HALF_UP: return half >= 0;
    case MONEY_ROUND_HALF_EVEN: return half > 0 || (half == 0 && odd);
    case MONEY_ROUND_HALF_DOWN: return half > 0;
    case MONEY_ROUND_FLOOR: return neg;
    case MONEY_ROUND_CEIL: return !neg;
    case MONEY_ROUND_UP: return true;
    case MONEY_ROUND_DOWN:
    case MONEY_ROUND_EXACT: break;
    }
    return false;
}

/* Rounds the truncated quotient `q` (remainder described by inexact/half) into *out. */
static enum money_status finish(bool neg, u128 q, bool inexact, int half, int32_t scale,
                                enum money_round mode, money_t *out)
{
    if (q >= COEF_LIMIT)
        return MONEY_ERR_OVERFLOW;
    if (inexact && mode == MONEY_ROUND_EXACT)
        return MONEY_ERR_PRECISION;
    if (rounds_away(mode, neg, (q & 1) != 0, inexact, half) && ++q >= COEF_LIMIT)
        return MONEY_ERR_OVERFLOW;
    *out = make(neg, q, scale);
    return MONEY_OK;
}

static enum money_status finish_wide(bool neg, u256 q, u256 r, u256 d, int32_t scale,
                                     enum money_round mode, money_t *out)
{
    if (!u256_fits128(q))
        return MONEY_ERR_OVERFLOW;
    bool inexact = !u256_is_zero(r);
    int half = inexact ? u256_cmp(r, u256_sub(d, r)) : -1;
    return finish(neg, u256_low(q), inexact, half, scale, mode, out);
}

/* ±m / 10^e rounded, with e in 1..MONEY_SCALE_MAX: the native path of round and mul_round. */
static enum money_status round_pow10(bool neg, u128 m, int32_t e, int32_t scale,
                                     enum money_round mode, money_t *out)
{
    u128 d = pow10_tab[e], q, r;
    if ((m >> 64) == 0 && e <= 19) { /* one hardware division instead of a libgcc call */
        q = (uint64_t)m / (uint64_t)d;
        r = (uint64_t)m % (uint64_t)d;
    } else {
        q = m / d;
        r = m % d;
    }
    return finish(neg, q, r != 0, cmp128(r, d - r), scale, mode, out);
}

/* ---- Construction, parsing, formatting ------------------------------------------------- */

enum money_status money_from_coef(__int128 coef, int32_t scale, money_t *out)
{
    if (!scale_ok(scale))
        return MONEY_ERR_INVALID;
    if (mag_of(coef) >= COEF_LIMIT)
        return MONEY_ERR_OVERFLOW;
    *out = (money_t){coef, scale};
    return MONEY_OK;
}

/*
 * Exponents saturate here while parsing: past any digit count a text in memory can have,
 * so a saturated exponent classifies (overflow, precision, zero) exactly as the true one.
 */
#define EXPONENT_SATURATION INT64_C(1000000000000000)

/* The digits of a number's text: integer digits then fraction digits, '.' skipped. */
struct digits {
    const char *int_part, *frac_part;
    size_t int_len, frac_len;
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char digit_at(const struct digits *d, size_t i)
{
    return i < d->int_len ? d->int_part[i] : d->frac_part[i - d->int_len];
}

static size_t skip_digits(const char *text, size_t len, size_t i)
{
    while (i < len && is_digit(text[i]))
        i++;
    return i;
}

/* Reads [eE][+-]?[0-9]+ at *pos (which holds the 'e'). */
static bool parse_exponent(const char *text, size_t len, size_t *pos, int64_t *out)
{
    size_t i = *pos + 1;
    bool neg = false;
    if (i < len && (text[i] == '+' || text[i] == '-'))
        neg = text[i++] == '-';
    size_t start = i;
    int64_t v = 0;
    for (; i < len && is_digit(text[i]); i++) {
        if (v < EXPONENT_SATURATION)
            v = v * 10 + (text[i] - '0');
    }
    if (i == start)
        return false;
    *out = neg ? -v : v;
    *pos = i;
    return true;
}

/* The value ±digits * 10^(exponent - frac_len), keeping the written scale where it fits. */
static enum money_status build(bool neg, const struct digits *d, int64_t exponent, money_t *out)
{
    size_t total = d->int_len + d->frac_len, first = 0, last = total;
    int64_t written_scale = (int64_t)d->frac_len - exponent;

    while (first < total && digit_at(d, first) == '0')
        first++;
    if (first == total) {
        int64_t s = written_scale < 0 ? 0 : written_scale;
        *out = (money_t){0, (int32_t)(s > MONEY_SCALE_MAX ? MONEY_SCALE_MAX : s)};
        return MONEY_OK;
    }
    while (digit_at(d, last - 1) == '0')
        last--;
    /* Now value = sig * 10^e, where sig = digits[first, last) has nd digits, no zero ends. */
    int64_t nd = (int64_t)(last - first);
    int64_t e = exponent - (int64_t)d->frac_len + (int64_t)(total - last);
    if (nd + e > MONEY_DIGITS_MAX)
        return MONEY_ERR_OVERFLOW; /* value >= 10^(nd-1+e) >= 10^38 */
    if (nd > MONEY_DIGITS_MAX || e < -MONEY_SCALE_MAX)
        return MONEY_ERR_PRECISION;
    /* Largest scale <= the written one that fits; >= -e, so no non-zero digit is lost. */
    int64_t scale = written_scale < 0 ? 0 : written_scale;
    if (scale > MONEY_SCALE_MAX)
        scale = MONEY_SCALE_MAX;
    if (scale > MONEY_DIGITS_MAX - nd - e)
        scale = MONEY_DIGITS_MAX - nd - e;
    u128 m = 0;
    for (size_t i = first; i < last; i++)
        m = m * 10 + (u128)(digit_at(d, i) - '0');
    *out = make(neg, m * pow10_tab[e + scale], (int32_t)scale);
    return MONEY_OK;
}

enum money_status money_parse(const char *text, size_t len, money_t *out)
{
    struct digits d = {NULL, NULL, 0, 0};
    int64_t exponent = 0;
    bool neg = false;
    size_t i = 0;

    if (len == 0)
        return MONEY_ERR_SYNTAX;
    if (text[0] == '-') {
        neg = true;
        i++;
    }
    d.int_part = text + i;
    i = skip_digits(text, len, i);
    d.int_len = (size_t)(text + i - d.int_part);
    if (d.int_len == 0 || (d.int_len > 1 && d.int_part[0] == '0'))
        return MONEY_ERR_SYNTAX;
    if (i < len && text[i] == '.') {
        d.frac_part = text + ++i;
        i = skip_digits(text, len, i);
        d.frac_len = (size_t)(text + i - d.frac_part);
        if (d.frac_len == 0)
            return MONEY_ERR_SYNTAX;
    }
    if (i < len && (text[i] == 'e' || text[i] == 'E') && !parse_exponent(text, len, &i, &exponent))
        return MONEY_ERR_SYNTAX;
    if (i != len)
        return MONEY_ERR_SYNTAX;
    return build(neg, &d, exponent, out);
}

/* The decimal digits of m (< 10^38) into buf, most significant first; returns the count. */
static int digits_of(u128 m, char buf[MONEY_DIGITS_MAX])
{
    char rev[MONEY_DIGITS_MAX];
    int n = 0;
    uint64_t hi = 0, lo = (uint64_t)m;

    if ((m >> 64) != 0 || lo >= E19) { /* split once so the rest is 64-bit arithmetic */
        hi = (uint64_t)(m / E19);
        lo = (uint64_t)(m % E19);
    }
    do {
        rev[n++] = (char)('0' + lo % 10);
        lo /= 10;
    } while (lo != 0);
    if (hi != 0) {
        while (n < 19)
            rev[n++] = '0';
        for (; hi != 0; hi /= 10)
            rev[n++] = (char)('0' + hi % 10);
    }
    for (int i = 0; i < n; i++)
        buf[i] = rev[n - 1 - i];
    return n;
}

static size_t format_fail(char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    return 0;
}

size_t money_format_fraction(money_t v, int32_t min_fraction_digits, char *out, size_t cap)
{
    char digits[MONEY_DIGITS_MAX];
    int n = 1, scale = 0;

    /* Checked, not only asserted: this writes into the caller's buffer even under NDEBUG. */
    assert(money_is_valid(v));
    if (!money_is_valid(v) || min_fraction_digits < 0 || min_fraction_digits > MONEY_SCALE_MAX)
        return format_fail(out, cap);
    digits[0] = '0';
    if (v.coef != 0) {
        n = digits_of(mag_of(v.coef), digits);
        scale = v.scale;
        while (scale > min_fraction_digits && digits[n - 1] == '0') {
            n--;
            scale--;
        }
    }
    /* The value is now digits[0, n) / 10^scale, to be written with frac_len decimals. */
    int int_len = n > scale ? n - scale : 1;
    int from_digits = n > scale ? scale : n;
    int frac_len = scale > min_fraction_digits ? scale : min_fraction_digits;
    size_t len = (size_t)((v.coef < 0) + int_len + (frac_len > 0 ? 1 + frac_len : 0));
    if (len >= cap)
        return format_fail(out, cap);

    char *p = out;
    if (v.coef < 0)
        *p++ = '-';
    if (n > scale) {
        memcpy(p, digits, (size_t)int_len);
        p += int_len;
    } else {
        *p++ = '0';
    }
    if (frac_len > 0) {
        *p++ = '.';
        memset(p, '0', (size_t)(scale - from_digits));
        p += scale - from_digits;
        memcpy(p, digits + n - from_digits, (size_t)from_digits);
        p += from_digits;
        memset(p, '0', (size_t)(frac_len - scale));
        p += frac_len - scale;
    }
    *p = '\0';
    return len;
}

size_t money_format(money_t v, char *out, size_t cap)
{
    return money_format_fraction(v, 0, out, cap);
}

/* ---- Comparison and arithmetic ------------------------------------------------------------ */

/* Sign of (m * 10^e - other): m * 10^e past 2^128 is above any magnitude. */
static int cmp_scaled(u128 m, int32_t e, u128 other)
{
    u128 p;
    if (__builtin_mul_overflow(m, pow10_tab[e], &p))
        return 1;
    return cmp128(p, other);
}

int money_cmp(money_t a, money_t b)
{
    assert(money_is_valid(a) && money_is_valid(b));
    int sa = money_sign(a), sb = money_sign(b), c;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    u128 ma = mag_of(a.coef), mb = mag_of(b.coef);
    if (a.scale == b.scale)
        c = cmp128(ma, mb);
    else if (a.scale < b.scale)
        c = cmp_scaled(ma, b.scale - a.scale, mb);
    else
        c = -cmp_scaled(mb, a.scale - b.scale, ma);
    return sa > 0 ? c : -c;
}

static enum money_status add_wide(money_t a, money_t b, bool truncate, money_t *out)
{
    int32_t s = a.scale > b.scale ? a.scale : b.scale;
    u256 ma = u256_mul(mag_of(a.coef), pow10_tab[s - a.scale]);
    u256 mb = u256_mul(mag_of(b.coef), pow10_tab[s - b.scale]);
    bool na = a.coef < 0, nb = b.coef < 0;
    if (na == nb)
        return fit_to(na, u256_add(ma, mb), s, truncate, out);
    if (u256_cmp(ma, mb) >= 0)
        return fit_to(na, u256_sub(ma, mb), s, truncate, out);
    return fit_to(nb, u256_sub(mb, ma), s, truncate, out);
}

enum money_status money_add(money_t a, money_t b, money_t *out)
{
    assert(money_is_valid(a) && money_is_valid(b));
    i128 x = a.coef, y = b.coef, sum;
    int32_t s = a.scale;
    if (a.scale < b.scale) {
        s = b.scale;
        if (__builtin_mul_overflow(x, (i128)pow10_tab[b.scale - a.scale], &x))
            return add_wide(a, b, false, out);
    } else if (b.scale < a.scale) {
        if (__builtin_mul_overflow(y, (i128)pow10_tab[a.scale - b.scale], &y))
            return add_wide(a, b, false, out);
    }
    if (__builtin_add_overflow(x, y, &sum) || sum <= -MONEY_COEF_LIMIT || sum >= MONEY_COEF_LIMIT)
        return add_wide(a, b, false, out);
    *out = (money_t){sum, s};
    return MONEY_OK;
}

enum money_status money_sub(money_t a, money_t b, money_t *out)
{
    return money_add(a, money_neg(b), out);
}

enum money_status money_mul(money_t a, money_t b, money_t *out)
{
    assert(money_is_valid(a) && money_is_valid(b));
    int32_t s = a.scale + b.scale;
    i128 p;
    if (s <= MONEY_SCALE_MAX && !__builtin_mul_overflow(a.coef, b.coef, &p) &&
        p > -MONEY_COEF_LIMIT && p < MONEY_COEF_LIMIT) {
        *out = (money_t){p, s};
        return MONEY_OK;
    }
    bool neg = (a.coef < 0) != (b.coef < 0);
    return fit(neg, u256_mul(mag_of(a.coef), mag_of(b.coef)), s, out);
}

enum money_status money_add_truncated(money_t a, money_t b, money_t *out)
{
    enum money_status st = money_add(a, b, out);
    return st == MONEY_ERR_PRECISION ? add_wide(a, b, true, out) : st;
}

enum money_status money_mul_truncated(money_t a, money_t b, money_t *out)
{
    enum money_status st = money_mul(a, b, out);
    if (st != MONEY_ERR_PRECISION)
        return st;
    bool neg = (a.coef < 0) != (b.coef < 0);
    return fit_to(neg, u256_mul(mag_of(a.coef), mag_of(b.coef)), a.scale + b.scale, true, out);
}

/* v at a scale >= its own: exact, or OVERFLOW. */
static enum money_status scale_up(money_t v, int32_t scale, money_t *out)
{
    i128 c;
    if (__builtin_mul_overflow(v.coef, (i128)pow10_tab[scale - v.scale], &c) ||
        c <= -MONEY_COEF_LIMIT || c >= MONEY_COEF_LIMIT)
        return MONEY_ERR_OVERFLOW;
    *out = (money_t){c, scale};
    return MONEY_OK;
}

enum money_status money_round(money_t v, int32_t scale, enum money_round mode, money_t *out)
{
    assert(money_is_valid(v));
    if (!scale_ok(scale) || !mode_ok(mode))
        return MONEY_ERR_INVALID;
    if (v.scale <= scale)
        return scale_up(v, scale, out);
    return round_pow10(v.coef < 0, mag_of(v.coef), v.scale - scale, scale, mode, out);
}

enum money_status money_mul_round(money_t a, money_t b, int32_t scale, enum money_round mode,
                                  money_t *out)
{
    assert(money_is_valid(a) && money_is_valid(b));
    if (!scale_ok(scale) || !mode_ok(mode))
        return MONEY_ERR_INVALID;
    bool neg = (a.coef < 0) != (b.coef < 0);
    int32_t s = a.scale + b.scale;
    u128 ma = mag_of(a.coef), mb = mag_of(b.coef), p;
    bool wide = __builtin_mul_overflow(ma, mb, &p);

    if (s <= scale) { /* exact: the product times 10^(scale - s), if that fits */
        int32_t e = scale - s;
        if (wide || p >= pow10_tab[MONEY_DIGITS_MAX - e])
            return MONEY_ERR_OVERFLOW;
        *out = make(neg, p * pow10_tab[e], scale);
        return MONEY_OK;
    }
    if (!wide && s - scale <= MONEY_SCALE_MAX)
        return round_pow10(neg, p, s - scale, scale, mode, out);
    u256 d = pow10_wide(s - scale), q, r;
    u256_divmod(u256_mul(ma, mb), d, &q, &r);
    return finish_wide(neg, q, r, d, scale, mode, out);
}

enum money_status money_div(money_t a, money_t b, int32_t scale, enum money_round mode,
                            money_t *out)
{
    assert(money_is_valid(a) && money_is_valid(b));
    if (!scale_ok(scale) || !mode_ok(mode))
        return MONEY_ERR_INVALID;
    if (b.coef == 0)
        return MONEY_ERR_DIV_BY_ZERO;
    bool neg = (a.coef < 0) != (b.coef < 0);
    u128 ma = mag_of(a.coef), mb = mag_of(b.coef);
    /* The result's coefficient is ma * 10^k / mb, k in [-38, 76]. */
    int32_t k = scale + b.scale - a.scale;
    u256 n, d, q, r;

    if (k > MONEY_SCALE_MAX) {
        /* ma * 10^k can pass 2^256, but then the quotient is >= 10^38 anyway:
         * q >= 10^38 iff ma * 10^(k-38) >= mb, and otherwise ma * 10^(k-38) < 2^127. */
        u256 t = u256_mul(ma, pow10_tab[k - MONEY_SCALE_MAX]);
        if (u256_cmp(t, u256_from(mb)) >= 0)
            return MONEY_ERR_OVERFLOW;
        n = u256_mul(u256_low(t), pow10_tab[MONEY_SCALE_MAX]);
        d = u256_from(mb);
    } else if (k >= 0) {
        n = u256_mul(ma, pow10_tab[k]);
        d = u256_from(mb);
    } else {
        n = u256_from(ma);
        d = u256_mul(mb, pow10_tab[-k]);
    }
    u256_divmod(n, d, &q, &r);
    return finish_wide(neg, q, r, d, scale, mode, out);
}

money_t money_normalize(money_t v)
{
    assert(money_is_valid(v));
    if (v.coef == 0)
        return MONEY_ZERO;
    while (v.scale > 0 && v.coef % 10 == 0) {
        v.coef /= 10;
        v.scale--;
    }
    return v;
}

enum money_status money_to_minor_units(money_t v, int32_t exponent, enum money_round mode,
                                       int64_t *out)
{
    money_t r;
    enum money_status st = money_round(v, exponent, mode, &r);
    if (st != MONEY_OK)
        return st;
    if (r.coef < INT64_MIN || r.coef > INT64_MAX)
        return MONEY_ERR_OVERFLOW;
    *out = (int64_t)r.coef;
    return MONEY_OK;
}

enum money_status money_from_minor_units(int64_t units, int32_t exponent, money_t *out)
{
    if (!scale_ok(exponent))
        return MONEY_ERR_INVALID;
    *out = (money_t){units, exponent};
    return MONEY_OK;
}

enum money_status money_split_minor_units(int64_t total, const money_t *weights, size_t count,
                                          int64_t *shares)
{
    if (count == 0 || count > MONEY_SPLIT_PARTS_MAX)
        return MONEY_ERR_INVALID;
    if (total == INT64_MIN)
        return MONEY_ERR_OVERFLOW;
    money_t sum = money_from_int(0);
    for (size_t i = 0; i < count; i++) {
        if (money_sign(weights[i]) < 0)
            return MONEY_ERR_INVALID;
        enum money_status s = money_add(sum, weights[i], &sum);
        if (s != MONEY_OK)
            return s;
        shares[i] = 0;
    }
    if (money_is_zero(sum)) {
        shares[0] = total;
        return MONEY_OK;
    }
    /* on |total|, the sign put back at the end: rounding toward zero is then a floor */
    int64_t magnitude = total < 0 ? -total : total, left = magnitude;
    money_t remainders[MONEY_SPLIT_PARTS_MAX];
    for (size_t i = 0; i < count; i++) {
        money_t exact, share, given;
        enum money_status s = money_mul(money_from_int(magnitude), weights[i], &exact);
        if (s == MONEY_OK)
            s = money_div(exact, sum, 0, MONEY_ROUND_FLOOR, &share);
        if (s == MONEY_OK)
            s = money_mul(share, sum, &given);
        if (s == MONEY_OK)
            s = money_sub(exact, given, &remainders[i]);
        if (s == MONEY_OK)
            s = money_to_minor_units(share, 0, MONEY_ROUND_EXACT, &shares[i]);
        if (s != MONEY_OK)
            return s;
        left -= shares[i];
    }
    assert(left >= 0 && (uint64_t)left < count);
    for (; left > 0; left--) {
        size_t largest = 0;
        for (size_t i = 1; i < count; i++)
            if (money_cmp(remainders[i], remainders[largest]) > 0)
                largest = i;
        shares[largest]++;
        remainders[largest] = money_from_int(-1); /* given its unit: never again */
    }
    if (total < 0)
        for (size_t i = 0; i < count; i++)
            shares[i] = -shares[i];
    return MONEY_OK;
}
