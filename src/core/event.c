/* core/event: see event.h. */
#include "core/event.h"

#include <string.h>

#include "core/dedup.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Ruby's ISSPACE, which BigDecimal() skips around a string's number: ASCII whitespace. */
static bool is_ruby_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* An exponent's magnitude is held up to this: past it no digit of an instant is left. */
#define EXPONENT_CAP INT64_C(1000000000000000)

/*
 * A number in Ruby's BigDecimal grammar, as Lago's BigDecimal(params[:timestamp].to_s) reads
 * it: the value is ±D × 10^(exponent − fraction_digits), D the mantissa's digits. Borrows the
 * text.
 */
struct ruby_decimal {
    bool negative;
    const char *mantissa; /* its digits, with the '_' and the '.' between them */
    size_t mantissa_len;
    int64_t fraction_digits;
    int64_t exponent; /* within ±EXPONENT_CAP */
};

/* A run of digits from t[*i], one '_' allowed between two of them; advances *i past it and
 * returns how many digits it holds (0: none). */
static int64_t digit_run(const char *t, size_t len, size_t *i)
{
    int64_t digits = 0;
    size_t at = *i;
    while (at < len) {
        if (is_digit(t[at]))
            digits++, at++;
        else if (t[at] == '_' && digits > 0 && at + 1 < len && is_digit(t[at + 1]))
            at++;
        else
            break;
    }
    *i = at;
    return digits;
}

/* The exponent's digits t[from, to) (with their '_'), its magnitude held at EXPONENT_CAP. */
static int64_t exponent_value(const char *t, size_t from, size_t to)
{
    int64_t v = 0;
    for (size_t i = from; i < to; i++)
        if (is_digit(t[i]) && (v = v * 10 + (t[i] - '0')) > EXPONENT_CAP)
            v = EXPONENT_CAP;
    return v;
}

/*
 * Reads t as BigDecimal() does: a sign, integer digits, a fraction after '.', an exponent
 * after 'e', 'E', 'd' or 'D', one '_' between digits (and one ending the integer part when
 * nothing follows it: "1_" is 1). False where BigDecimal raises ("1.", ".e5", "1__2", "1_.5")
 * and for NaN and Infinity, which are no instant.
 */
static bool ruby_decimal_read(const char *t, size_t len, struct ruby_decimal *d)
{
    size_t i = 0;
    *d = (struct ruby_decimal){0};
    if (i < len && (t[i] == '+' || t[i] == '-'))
        d->negative = t[i++] == '-';
    d->mantissa = t + i;
    int64_t integer_digits = digit_run(t, len, &i);
    if (integer_digits > 0 && i + 1 == len && t[i] == '_')
        i++;
    if (i < len && t[i] == '.') {
        i++;
        if ((d->fraction_digits = digit_run(t, len, &i)) == 0)
            return false;
    } else if (integer_digits == 0) {
        return false;
    }
    d->mantissa_len = (size_t)(t + i - d->mantissa);
    if (i < len && (t[i] == 'e' || t[i] == 'E' || t[i] == 'd' || t[i] == 'D')) {
        bool negative_exponent = false;
        if (++i < len && (t[i] == '+' || t[i] == '-'))
            negative_exponent = t[i++] == '-';
        size_t from = i;
        if (digit_run(t, len, &i) == 0)
            return false;
        d->exponent = exponent_value(t, from, i);
        if (negative_exponent)
            d->exponent = -d->exponent;
    }
    return i == len;
}

/*
 * The value in microseconds, floored, exactly: however many digits the mantissa has or however
 * far the exponent moves them (no cut before the exponent applies). False past 18 digits of
 * microseconds, which no instant has.
 */
static bool ruby_decimal_floor_micros(const struct ruby_decimal *d, int64_t *out)
{
    int64_t significant = 0;
    for (size_t i = 0; i < d->mantissa_len; i++)
        if (is_digit(d->mantissa[i]) && (significant > 0 || d->mantissa[i] != '0'))
            significant++;
    /* the microseconds are D × 10^shift: their whole part has `whole` of D's digits */
    int64_t shift = d->exponent - d->fraction_digits + 6;
    int64_t whole = significant == 0 ? 0 : significant + shift;
    if (whole > 18)
        return false;
    int64_t micros = 0, taken = 0;
    bool dropped_nonzero = false, leading = true;
    for (size_t i = 0; i < d->mantissa_len; i++) {
        char c = d->mantissa[i];
        if (!is_digit(c) || (leading && c == '0'))
            continue;
        leading = false;
        if (taken < whole)
            micros = micros * 10 + (c - '0'), taken++;
        else
            dropped_nonzero = dropped_nonzero || c != '0';
    }
    for (; taken < whole; taken++)
        micros *= 10;
    *out = d->negative ? -micros - dropped_nonzero : micros;
    return true;
}

bool event_parse_timestamp(const char *text, size_t len, tally_time *out)
{
    while (len > 0 && is_ruby_space(*text))
        text++, len--;
    while (len > 0 && is_ruby_space(text[len - 1]))
        len--;
    struct ruby_decimal d;
    int64_t n;
    if (!ruby_decimal_read(text, len, &d) || !ruby_decimal_floor_micros(&d, &n))
        return false;
    if (n < TIMESTAMP_MIN || n > EVENT_TIMESTAMP_MAX)
        return false;
    *out = n;
    return true;
}

static size_t put_part(uint8_t *buf, size_t at, size_t cap, const void *data, size_t len)
{
    if (at + 4 + len > cap)
        return 0;
    buf[at] = (uint8_t)(len >> 24);
    buf[at + 1] = (uint8_t)(len >> 16);
    buf[at + 2] = (uint8_t)(len >> 8);
    buf[at + 3] = (uint8_t)len;
    memcpy(buf + at + 4, data, len);
    return at + 4 + len;
}

size_t event_identity(int64_t org_id, const char *external_subscription_id,
                      const char *transaction_id, uint8_t *buf, size_t cap)
{
    uint8_t org[8];
    for (int i = 0; i < 8; i++)
        org[i] = (uint8_t)((uint64_t)org_id >> (56 - 8 * i));
    size_t at = put_part(buf, 0, cap, org, sizeof org);
    if (at)
        at = put_part(buf, at, cap, external_subscription_id, strlen(external_subscription_id));
    if (at)
        at = put_part(buf, at, cap, transaction_id, strlen(transaction_id));
    return at;
}

bool event_fingerprint(const uint8_t key[SIPHASH_KEY_LEN], int64_t org_id,
                       const char *external_subscription_id, const char *transaction_id,
                       struct siphash128 *out)
{
    uint8_t identity[EVENT_IDENTITY_MAX];
    size_t len =
        event_identity(org_id, external_subscription_id, transaction_id, identity, sizeof identity);
    if (len == 0)
        return false;
    *out = dedup_fingerprint(key, identity, len);
    return true;
}

const char *event_property(const struct event *e, const char *key)
{
    for (size_t i = 0; i < e->property_count; i++)
        if (strcmp(e->properties[i].key, key) == 0)
            return e->properties[i].value;
    return NULL;
}

money_t event_precise_amount(money_t sent)
{
    money_t kept;
    /* rounding to fewer decimals cannot overflow: the value only loses digits */
    return money_round(sent, EVENT_PRECISE_DECIMALS, MONEY_ROUND_HALF_UP, &kept) == MONEY_OK
               ? money_normalize(kept)
               : sent;
}
