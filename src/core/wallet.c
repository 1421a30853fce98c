/* core/wallet: see wallet.h. */
#include "core/wallet.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const limit_names[] = {
    [WALLET_LIMIT_NONE] = "none",
    [WALLET_LIMIT_HARD] = "hard",
    [WALLET_LIMIT_SOFT] = "soft",
};

const char *wallet_limit_name(enum wallet_limit l)
{
    assert(l >= WALLET_LIMIT_NONE && l <= WALLET_LIMIT_SOFT);
    return limit_names[l];
}

bool wallet_limit_parse(const char *text, enum wallet_limit *out)
{
    for (int l = WALLET_LIMIT_NONE; l <= WALLET_LIMIT_SOFT; l++) {
        if (strcmp(text, limit_names[l]) == 0) {
            *out = (enum wallet_limit)l;
            return true;
        }
    }
    return false;
}

bool wallet_fee_type_parse(const char *text, unsigned *bit)
{
    static const struct {
        const char *name;
        unsigned bit;
    } types[] = {
        {"charge", WALLET_FEE_CHARGE},
        {"subscription", WALLET_FEE_SUBSCRIPTION},
        {"commitment", WALLET_FEE_COMMITMENT},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(text, types[i].name) == 0) {
            *bit = types[i].bit;
            return true;
        }
    }
    return false;
}

bool wallet_may_pay_charge(const struct wallet_applies_to *a, const char *metric_code)
{
    if (a->fee_types == 0 && a->metric_code_count == 0 && !a->metrics_deleted)
        return true; /* unrestricted */
    if (a->fee_types & WALLET_FEE_CHARGE)
        return true;
    for (size_t i = 0; i < a->metric_code_count; i++)
        if (strcmp(a->metric_codes[i], metric_code) == 0)
            return true;
    return false;
}

bool wallet_credits_countable(money_t credits)
{
    money_t floored;
    return money_round(credits, WALLET_CREDITS_SCALE, MONEY_ROUND_FLOOR, &floored) !=
           MONEY_ERR_OVERFLOW;
}

bool wallet_credits_floor_to_zero(money_t credits)
{
    money_t floored;
    return money_round(credits, WALLET_CREDITS_SCALE, MONEY_ROUND_FLOOR, &floored) == MONEY_OK &&
           money_sign(floored) == 0;
}

/* Credits floored to WALLET_CREDITS_SCALE decimals, priced at rate_amount, rounded to the minor
 * unit by `rounding`. */
static enum money_status credits_in_cents(money_t credits, money_t rate_amount, int32_t exponent,
                                          enum money_round rounding, int64_t *cents)
{
    money_t floored, amount;
    int64_t minor = 0;
    enum money_status s = money_round(credits, WALLET_CREDITS_SCALE, MONEY_ROUND_FLOOR, &floored);
    if (s == MONEY_OK)
        s = money_mul_round(floored, rate_amount, exponent, rounding, &amount);
    if (s == MONEY_OK)
        s = money_to_minor_units(amount, exponent, MONEY_ROUND_EXACT, &minor);
    if (s == MONEY_OK && (minor > WALLET_BALANCE_MAX_CENTS || minor < -WALLET_BALANCE_MAX_CENTS))
        s = MONEY_ERR_OVERFLOW;
    if (s == MONEY_OK)
        *cents = minor;
    return s;
}

enum money_status wallet_credits_to_cents(money_t credits, money_t rate_amount, int32_t exponent,
                                          int64_t *cents)
{
    return credits_in_cents(credits, rate_amount, exponent, MONEY_ROUND_HALF_UP, cents);
}

enum money_status wallet_credits_cap_to_cents(money_t credits, money_t rate_amount,
                                              int32_t exponent, int64_t *cents)
{
    return credits_in_cents(credits, rate_amount, exponent, MONEY_ROUND_FLOOR, cents);
}

enum wallet_fit wallet_credits_fit(int64_t holds, int64_t lifetime, int64_t cents)
{
    assert(cents > 0);
    int64_t sum;
    if (__builtin_add_overflow(holds, cents, &sum) || sum > WALLET_BALANCE_MAX_CENTS)
        return WALLET_FIT_BALANCE;
    if (__builtin_add_overflow(lifetime, cents, &sum) || sum > WALLET_LIFETIME_MAX_CENTS)
        return WALLET_FIT_LIFETIME;
    return WALLET_FITS;
}

static enum money_status cents_in_credits(int64_t cents, money_t rate_amount, int32_t exponent,
                                          enum money_round rounding, money_t *credits)
{
    money_t amount;
    enum money_status s = money_from_minor_units(cents, exponent, &amount);
    if (s == MONEY_OK)
        s = money_div(amount, rate_amount, WALLET_CREDITS_SCALE, rounding, credits);
    return s;
}

enum money_status wallet_cents_to_credits(int64_t cents, money_t rate_amount, int32_t exponent,
                                          money_t *credits)
{
    /* At a rate small enough, an amount is worth 10^33 credits or more, past what a money_t
     * holds at WALLET_CREDITS_SCALE decimals: it is then shown with the decimals that fit (an
     * audit read a balance of 10^14 cents at 1e-21 as "0.0" credits). */
    enum money_status s = MONEY_ERR_OVERFLOW;
    for (int32_t scale = WALLET_CREDITS_SCALE; scale >= 0 && s == MONEY_ERR_OVERFLOW; scale--) {
        money_t amount;
        s = money_from_minor_units(cents, exponent, &amount);
        if (s == MONEY_OK)
            s = money_div(amount, rate_amount, scale, MONEY_ROUND_HALF_UP, credits);
    }
    return s;
}

bool wallet_rate_showable(money_t rate_amount, int32_t exponent)
{
    money_t credits;
    return wallet_cents_to_credits(WALLET_LIFETIME_MAX_CENTS, rate_amount, exponent, &credits) ==
               MONEY_OK &&
           wallet_cents_to_credits(-WALLET_LIFETIME_MAX_CENTS, rate_amount, exponent, &credits) ==
               MONEY_OK;
}

enum money_status wallet_credits_within(int64_t cents, money_t rate_amount, int32_t exponent,
                                        money_t *credits)
{
    return cents_in_credits(cents, rate_amount, exponent, MONEY_ROUND_FLOOR, credits);
}

static int compare_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

int wallet_grant_compare(const struct wallet_grant *a, const struct wallet_grant *b)
{
    int c = compare_i64(a->priority, b->priority);
    if (c)
        return c;
    if (a->has_expiration != b->has_expiration)
        return a->has_expiration ? -1 : 1; /* a grant that expires goes before one that does not */
    if (a->has_expiration && (c = compare_i64(a->expiration_at, b->expiration_at)))
        return c;
    if (a->paid != b->paid)
        return a->paid ? 1 : -1; /* the lowest cost basis first: granted credits */
    if ((c = compare_i64(a->created_at, b->created_at)))
        return c;
    return compare_i64(a->id, b->id);
}

size_t wallet_grant_position(const struct wallet_grant *grants, size_t count,
                             const struct wallet_grant *g)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (wallet_grant_compare(&grants[mid], g) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool wallet_grant_past_expiry(const struct wallet_grant *g, tally_time now)
{
    return g->has_expiration && g->expiration_at <= now;
}

int64_t wallet_grant_unheld(const struct wallet_grant *g)
{
    assert(g->held_cents >= 0 && g->held_cents <= g->remaining_cents);
    return g->remaining_cents - g->held_cents;
}

/* What of grant g a take `from` may have at `now`. */
static int64_t takeable(const struct wallet_grant *g, tally_time now, enum wallet_take_from from)
{
    int64_t unheld = wallet_grant_unheld(g);
    if (from == WALLET_TAKE_CAPTURING)
        return g->capturing_cents < unheld ? g->capturing_cents : unheld;
    return wallet_grant_past_expiry(g, now) ? 0 : unheld;
}

int64_t wallet_plan_take_at(const struct wallet_grant *grants, size_t count, int64_t want,
                            tally_time now, enum wallet_take_from from, struct wallet_take *takes,
                            size_t *take_count)
{
    assert(want >= 0);
    int64_t covered = 0;
    *take_count = 0;
    for (size_t i = 0; i < count && covered < want; i++) {
        assert(i == 0 || wallet_grant_compare(&grants[i - 1], &grants[i]) < 0);
        int64_t part = takeable(&grants[i], now, from);
        if (part <= 0)
            continue;
        if (part > want - covered)
            part = want - covered;
        takes[(*take_count)++] = (struct wallet_take){i, part};
        covered += part;
    }
    return covered;
}

static const char *const type_names[] = {
    [WALLET_INBOUND] = "inbound", [WALLET_OUTBOUND] = "outbound"};
static const char *const state_names[] = {[WALLET_TX_PENDING] = "pending",
                                          [WALLET_TX_SETTLED] = "settled",
                                          [WALLET_TX_FAILED] = "failed"};
static const char *const status_names[] = {
    [WALLET_TX_PURCHASED] = "purchased", [WALLET_TX_GRANTED] = "granted",
    [WALLET_TX_VOIDED] = "voided",       [WALLET_TX_INVOICED] = "invoiced",
    [WALLET_TX_USAGE] = "usage",         [WALLET_TX_USAGE_REFUND] = "usage_refund",
    [WALLET_TX_EXPIRED] = "expired",
};
static const char *const source_names[] = {[WALLET_SOURCE_MANUAL] = "manual",
                                           [WALLET_SOURCE_INTERVAL] = "interval",
                                           [WALLET_SOURCE_THRESHOLD] = "threshold"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t count, int value)
{
    (void)count; /* for the assertion */
    assert(value >= 0 && (size_t)value < count);
    return names[value];
}

static bool parse_name(const char *const *names, size_t count, const char *text, int *out)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], text) == 0) {
            *out = (int)i;
            return true;
        }
    }
    return false;
}

const char *wallet_transaction_type_name(enum wallet_transaction_type t)
{
    return name_of(type_names, COUNT_OF(type_names), t);
}

const char *wallet_transaction_state_name(enum wallet_transaction_state s)
{
    return name_of(state_names, COUNT_OF(state_names), s);
}

const char *wallet_transaction_status_name(enum wallet_transaction_status s)
{
    return name_of(status_names, COUNT_OF(status_names), s);
}

const char *wallet_transaction_source_name(enum wallet_transaction_source s)
{
    return name_of(source_names, COUNT_OF(source_names), s);
}

bool wallet_transaction_type_parse(const char *text, enum wallet_transaction_type *out)
{
    int v;
    if (!parse_name(type_names, COUNT_OF(type_names), text, &v))
        return false;
    *out = (enum wallet_transaction_type)v;
    return true;
}

bool wallet_transaction_state_parse(const char *text, enum wallet_transaction_state *out)
{
    int v;
    if (!parse_name(state_names, COUNT_OF(state_names), text, &v))
        return false;
    *out = (enum wallet_transaction_state)v;
    return true;
}

bool wallet_transaction_status_parse(const char *text, enum wallet_transaction_status *out)
{
    int v;
    if (!parse_name(status_names, COUNT_OF(status_names), text, &v))
        return false;
    *out = (enum wallet_transaction_status)v;
    return true;
}

bool wallet_rule_due(const struct wallet_rule *r, int64_t ongoing, int64_t pending)
{
    return ongoing <= r->threshold_cents && ongoing + pending <= r->threshold_cents;
}

void wallet_rule_top_up(const struct wallet_rule *r, int64_t ongoing, int64_t pending,
                        int64_t min_paid, int64_t max_paid, int64_t *paid, int64_t *granted)
{
    *paid = *granted = 0;
    if (r->method == WALLET_RULE_TARGET) {
        int64_t gap = r->target_cents - ongoing;
        if (gap <= 0)
            return;
        if (r->grants_target_top_up)
            *granted = gap;
        else
            *paid = gap < min_paid ? min_paid : gap; /* Lago applies no maximum here */
        return;
    }
    *granted = r->granted_cents;
    if (r->paid_cents <= 0)
        return;
    int64_t gap = r->threshold_cents - ongoing - r->granted_cents - pending;
    *paid = gap < r->paid_cents ? r->paid_cents : r->paid_cents * (gap / r->paid_cents + 1);
    if (max_paid > 0 && *paid > max_paid && !r->ignore_paid_top_up_limits)
        *paid = max_paid;
}

bool wallet_duration_parse(const char *text, struct wallet_duration *out)
{
    *out = (struct wallet_duration){0};
    if (text[0] != 'P' || !text[1])
        return false;
    const char *order = "YMWD", *p = text + 1;
    size_t next = 0;
    while (*p) {
        int32_t n = 0;
        const char *digits = p;
        /* any number of digits; a part past the whole limit is refused as it is read, before
         * it could overflow (each unit is at least a day) */
        for (; *p >= '0' && *p <= '9'; p++)
            if ((n = n * 10 + (*p - '0')) > WALLET_DURATION_DAYS_MAX)
                return false;
        if (p == digits)
            return false;
        const char *unit = strchr(order + next, *p);
        if (!*p || !unit)
            return false; /* no unit, a unit out of order, or a time part */
        next = (size_t)(unit - order) + 1;
        switch (*p++) {
        case 'Y': out->years = n; break;
        case 'M': out->months = n; break;
        case 'W': out->days += 7 * n; break;
        case 'D': out->days += n; break;
        }
    }
    int64_t longest = ((int64_t)out->years * 12 + out->months) * 31 + out->days;
    return longest > 0 && longest <= WALLET_DURATION_DAYS_MAX; /* a grant lasts something */
}

struct civil_date wallet_duration_end(struct civil_date from, const struct wallet_duration *d,
                                      int32_t anchor_day)
{
    int64_t month = (int64_t)from.year * 12 + (from.month - 1) + (int64_t)d->years * 12 + d->months;
    struct civil_date end = {(int32_t)(month / 12), (int32_t)(month % 12) + 1,
                             from.day > anchor_day ? from.day : anchor_day};
    if (d->years || d->months) {
        int32_t last = timestamp_days_in_month(end.year, end.month);
        end.day = end.day < last ? end.day : last;
    } else {
        end.day = from.day;
    }
    return timestamp_civil_from_days(timestamp_days_from_civil(end) + d->days);
}

static const char *const rollover_names[] = {
    [WALLET_ROLLOVER_NONE] = "none",
    [WALLET_ROLLOVER_ALL] = "all",
    [WALLET_ROLLOVER_MAX_PERCENTAGE] = "max_percentage",
    [WALLET_ROLLOVER_MAX_CREDITS] = "max_credits",
};

bool wallet_rollover_parse(const char *text, enum wallet_rollover *out)
{
    int v;
    if (!parse_name(rollover_names, COUNT_OF(rollover_names), text, &v))
        return false;
    *out = (enum wallet_rollover)v;
    return true;
}

const char *wallet_rollover_name(enum wallet_rollover r)
{
    return name_of(rollover_names, COUNT_OF(rollover_names), r);
}

int64_t wallet_rollover_cents(enum wallet_rollover r, int64_t value, int64_t amount,
                              int64_t remaining)
{
    int64_t cap = 0;
    switch (r) {
    case WALLET_ROLLOVER_NONE: cap = 0; break;
    case WALLET_ROLLOVER_ALL: cap = remaining; break;
    case WALLET_ROLLOVER_MAX_PERCENTAGE: cap = (int64_t)((__int128)amount * value / 100); break;
    case WALLET_ROLLOVER_MAX_CREDITS: cap = value; break;
    }
    if (cap < 0)
        cap = 0;
    return remaining < cap ? remaining : cap;
}

bool wallet_reminder_days_parse(const char *text, int32_t days[WALLET_REMINDER_DAYS_MAX],
                                size_t *count)
{
    *count = 0;
    const char *p = text;
    for (;;) {
        int32_t n = 0, digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            n = n * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || n < 1 || n > WALLET_REMINDER_DAYS_LIMIT ||
            *count == WALLET_REMINDER_DAYS_MAX)
            return false;
        for (size_t i = 0; i < *count; i++)
            if (days[i] == n)
                return false;
        /* kept in ascending order: the nearest reminder first */
        size_t at = *count;
        while (at > 0 && days[at - 1] > n) {
            days[at] = days[at - 1];
            at--;
        }
        days[at] = n;
        (*count)++;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

bool wallet_bound_text(money_t rate_amount, int32_t exponent, const char *currency,
                       char out[static WALLET_BOUND_TEXT_MAX])
{
    money_t credits;
    char text[MONEY_TEXT_MAX];
    if (wallet_credits_within(WALLET_BALANCE_MAX_CENTS, rate_amount, exponent, &credits) !=
            MONEY_OK ||
        money_format_fraction(money_normalize(credits), 1, text, sizeof text) == 0)
        return false;
    if (money_sign(credits) == 0)
        snprintf(out, WALLET_BOUND_TEXT_MAX,
                 "%" PRId64 " minor units of %s, under " WALLET_CREDITS_SMALLEST_TEXT " credits,",
                 WALLET_BALANCE_MAX_CENTS, currency);
    else
        snprintf(out, WALLET_BOUND_TEXT_MAX, "%s credits (%" PRId64 " minor units of %s)", text,
                 WALLET_BALANCE_MAX_CENTS, currency);
    return true;
}
