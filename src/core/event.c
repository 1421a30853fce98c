/* core/event: see event.h. */
#include "core/event.h"

#include <string.h>

/*
 * The text with its fraction cut to EVENT_TIMESTAMP_FRACTION_DIGITS, and a last 1 standing for
 * the digits cut when any was not 0: the same floor at the microsecond, within what
 * money_parse reads. NULL (use the text as it is) when the fraction is short enough.
 */
static const char *cut_fraction(const char *text, size_t *len, char buf[EVENT_TIMESTAMP_TEXT_MAX])
{
    const char *dot = memchr(text, '.', *len);
    if (!dot)
        return NULL;
    size_t from = (size_t)(dot - text) + 1, end = from;
    while (end < *len && text[end] >= '0' && text[end] <= '9')
        end++;
    if (end - from <= EVENT_TIMESTAMP_FRACTION_DIGITS)
        return NULL;
    size_t keep = from + EVENT_TIMESTAMP_FRACTION_DIGITS, tail = *len - end;
    if (keep + 1 + tail > EVENT_TIMESTAMP_TEXT_MAX)
        return NULL; /* a long exponent too: money_parse refuses it as it is */
    bool cut_nonzero = false;
    for (size_t i = keep; i < end; i++)
        cut_nonzero = cut_nonzero || text[i] != '0';
    memcpy(buf, text, keep);
    size_t n = keep;
    if (cut_nonzero)
        buf[n++] = '1';
    memcpy(buf + n, text + end, tail);
    *len = n + tail;
    return buf;
}

/* Ruby's ISSPACE, which BigDecimal() skips around a string's number: ASCII whitespace. */
static bool is_ruby_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

bool event_parse_timestamp(const char *text, size_t len, tally_time *out)
{
    money_t seconds, usec;
    int64_t n;
    char buf[EVENT_TIMESTAMP_TEXT_MAX];
    while (len > 0 && is_ruby_space(*text))
        text++, len--;
    while (len > 0 && is_ruby_space(text[len - 1]))
        len--;
    const char *cut = cut_fraction(text, &len, buf);
    if (cut)
        text = cut;
    if (money_parse(text, len, &seconds) != MONEY_OK ||
        money_mul_round(seconds, money_from_int(TIMESTAMP_USEC_PER_SEC), 0, MONEY_ROUND_FLOOR,
                        &usec) != MONEY_OK ||
        money_to_minor_units(usec, 0, MONEY_ROUND_FLOOR, &n) != MONEY_OK)
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
