/* core/event: see event.h. */
#include "core/event.h"

#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Lago reads a timestamp string with Ruby's BigDecimal(), whose grammar is wider than a JSON
 * number's: a '+' sign, leading zeros ("0_1" is 1), ".5", one '_' between digits (and one
 * after the integer part's last digit when nothing follows it), 'd' or 'D' for the exponent.
 * Rewrites the text as the JSON number money_parse reads, its fraction cut to
 * EVENT_TIMESTAMP_FRACTION_DIGITS with a last 1 standing for the digits cut when any was not
 * 0: the same floor at the microsecond. Returns the length written; 0 when BigDecimal refuses
 * the text ("1.", "1__2", "1_.5") or it cannot be an instant in range (longer than `out`).
 */
static size_t ruby_decimal_as_json(const char *t, size_t len, char out[EVENT_TIMESTAMP_TEXT_MAX])
{
    enum { INTEGER, FRACTION, EXPONENT } part = INTEGER;
    size_t n = 0, i = 0, fraction_digits = 0;
    bool cut_nonzero = false;
    if (i < len && (t[i] == '+' || t[i] == '-') && t[i++] == '-')
        out[n++] = '-';
    size_t integer_from = n;
    for (; i < len; i++) {
        char c = t[i];
        if (c == '_') {
            bool between = i + 1 < len && is_digit(t[i + 1]);
            bool last = i + 1 == len && part == INTEGER;
            if (i == 0 || !is_digit(t[i - 1]) || !(between || last))
                return 0;
            continue;
        }
        if (is_digit(c)) {
            size_t next = i + 1 < len && t[i + 1] == '_' ? i + 2 : i + 1;
            if (part == INTEGER && n == integer_from && c == '0' && next < len && is_digit(t[next]))
                continue; /* a leading zero */
            if (part == FRACTION && ++fraction_digits > EVENT_TIMESTAMP_FRACTION_DIGITS) {
                cut_nonzero = cut_nonzero || c != '0';
                continue;
            }
        } else if (c == '.' && part == INTEGER) {
            if (n == integer_from)
                out[n++] = '0'; /* ".5" */
            part = FRACTION;
        } else if ((c == 'e' || c == 'E' || c == 'd' || c == 'D') && part != EXPONENT) {
            if (cut_nonzero)
                out[n++] = '1';
            cut_nonzero = false;
            part = EXPONENT;
            c = 'e';
        } else if (!((c == '+' || c == '-') && part == EXPONENT && out[n - 1] == 'e')) {
            return 0;
        }
        if (n + 2 >= EVENT_TIMESTAMP_TEXT_MAX) /* room for this, a '0' or a cut's 1 */
            return 0;
        out[n++] = c;
    }
    if (cut_nonzero)
        out[n++] = '1';
    return n;
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
    len = ruby_decimal_as_json(text, len, buf);
    if (len == 0 || money_parse(buf, len, &seconds) != MONEY_OK ||
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
