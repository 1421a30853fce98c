/* core/event: see event.h. */
#include "core/event.h"

#include <string.h>

#include "core/dedup.h"
#include "core/ruby_number.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
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
    struct ruby_decimal d;
    int64_t n;
    if (!ruby_decimal_read(text, len, RUBY_BIGDECIMAL, &d) || !ruby_decimal_floor_micros(&d, &n))
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

static const struct event_property *property_of(const struct event *e, const char *key)
{
    for (size_t i = 0; i < e->property_count; i++)
        if (strcmp(e->properties[i].key, key) == 0)
            return &e->properties[i];
    return NULL;
}

const char *event_property(const struct event *e, const char *key)
{
    const struct event_property *p = property_of(e, key);
    return p ? p->value : NULL;
}

bool event_same_properties(const struct event *a, const struct event *b)
{
    if (a->property_count != b->property_count)
        return false;
    /* keys are unique within an event, so a pairing of each of a's keys is the whole match */
    for (size_t i = 0; i < a->property_count; i++) {
        const struct event_property *x = &a->properties[i], *y = property_of(b, x->key);
        if (!y || x->is_string != y->is_string || (x->value == NULL) != (y->value == NULL) ||
            (x->value && strcmp(x->value, y->value) != 0))
            return false;
    }
    return true;
}

money_t event_precise_amount(money_t sent)
{
    money_t kept;
    /* rounding to fewer decimals cannot overflow: the value only loses digits */
    return money_round(sent, EVENT_PRECISE_DECIMALS, MONEY_ROUND_HALF_UP, &kept) == MONEY_OK
               ? money_normalize(kept)
               : sent;
}

bool event_parse_precise_amount(const char *text, size_t len, money_t *out)
{
    struct ruby_decimal d;
    return ruby_decimal_read(text, len, RUBY_TO_D, &d) && ruby_decimal_money(&d, out);
}

bool event_value_is_number(const struct event *e, const char *key)
{
    for (size_t i = 0; i < e->property_count; i++) {
        const struct event_property *p = &e->properties[i];
        if (strcmp(p->key, key) != 0)
            continue;
        if (!p->value) /* null */
            return true;
        if (p->is_string)
            return ruby_float_reads(p->value, strlen(p->value));
        return p->value[0] == '-' || is_digit(p->value[0]); /* a JSON number's text */
    }
    return true;
}
