/*
 * core/wallet: the rules of prepaid credits, as plain data: how credits convert to money and
 * back, which wallets may pay for a fee, in which order a wallet's grants are consumed, and
 * how a debit is split over grants, an overdraft and what credits leave uncovered.
 *
 * Credits are a display unit. What a wallet holds is money, in the minor units of its
 * currency (int64 cents), because that is what was paid and what will be invoiced: a credit
 * is worth `rate_amount` currency units and every amount snaps to whole cents on the way in,
 * as Lago's do (`round(credits x rate_amount, exponent)`). The ledger therefore balances to the
 * cent, and credits shown are cents / 10^exponent / rate_amount at WALLET_CREDITS_SCALE.
 *
 * A grant is one inbound credit (a purchase, a free grant, a rollover): its own remaining
 * amount, cost basis (paid credits cost rate_amount each, granted ones nothing), priority,
 * creation time and optional expiry. Grants are consumed in wallet_grant_compare's order:
 * priority (lower first), then the soonest expiry (none last), then the lowest cost basis
 * (granted before paid), then the oldest; the row id breaks the last ties so that the order
 * is total and a replay consumes the same grants.
 *
 * Pure: no I/O, no clock, no globals. Any thread.
 */
#ifndef TALLY_CORE_WALLET_H
#define TALLY_CORE_WALLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/money.h"
#include "core/timestamp.h"
#include "core/uuid.h"

#define WALLET_CREDITS_SCALE 5 /* credits are read and shown with 5 decimals, as Lago's */
#define WALLET_CREDITS_SMALLEST_TEXT "0.00001" /* one at WALLET_CREDITS_SCALE */
/* The most credits Tally counts: a money_t at WALLET_CREDITS_SCALE holds 38 digits, so fewer
 * than 10^33. At a rate small enough, a wallet's WALLET_BALANCE_MAX_CENTS is worth more: this
 * is then the bound a message states (an audit found "at most ?"). */
#define WALLET_CREDITS_MAX_TEXT "999999999999999999999999999999999.99999"
#define WALLET_PRIORITY_MIN 1
#define WALLET_PRIORITY_MAX 50       /* and the default: applied last */
#define WALLET_PER_CUSTOMER_MAX 6    /* active wallets of one customer (Lago's limit) */
#define WALLET_LIVE_GRANTS_MAX 10000 /* grants with credits left in one wallet */
#define WALLET_NAME_MAX 255
#define WALLET_CODE_MAX 255
#define WALLET_METRIC_CODES_MAX 100    /* applies_to.billable_metric_codes */
#define WALLET_REMINDER_DAYS_MAX 4     /* expiry reminders an organization may ask for */
#define WALLET_REMINDER_DAYS_LIMIT 365 /* the earliest: a year before */
#define WALLET_REMINDER_DAYS_DEFAULT "30,7"
#define WALLET_RULE_CATCH_UP_MAX 1000 /* anniversaries of an interval rule handled at once */
/* A threshold rule waits this long after a declined payment of its top-up before it fires
 * again (Lago's back-off), so a declined card is not charged again by the decline itself. */
#define WALLET_RULE_DECLINE_BACKOFF_USEC (INT64_C(3600) * 1000000)
/*
 * How much one wallet holds, at most: its grants' remaining amounts and the paid credits
 * waiting for their payment, together, in minor units of its currency. 10^14 is a trillion
 * dollars (10^12 credits at a rate of 1 USD), still millions of dollars in the weakest
 * currencies, and 92,000 times short of int64: a customer's six wallets, and any sum over them,
 * stay far inside it. Every single amount a wallet takes (a top-up, an overdraft, a rule's
 * threshold, target, top-up or rollover cap, paid top-up bounds) is at most this too. Lago
 * bounds credits at 10^25 - 1; Tally bounds the money, which is what it adds up.
 */
#define WALLET_BALANCE_MAX_CENTS INT64_C(100000000000000)
/*
 * What one wallet may take in over its life: every credit it has consumed, voided or let
 * expire, plus what it holds and may still overdraw (2^62). Refund steps and voids move credits
 * within that sum, so it only grows with new credits, and it bounds the wallet's
 * consumed_cents and anything refund steps may give back.
 */
#define WALLET_LIFETIME_MAX_CENTS ((int64_t)1 << 62)

enum wallet_limit {
    WALLET_LIMIT_NONE, /* usage goes on; what credits do not cover is invoiced (Lago) */
    WALLET_LIMIT_HARD, /* usage credits cannot cover is refused */
    WALLET_LIMIT_SOFT, /* usage may overdraw the wallet down to its overdraft, then is refused */
};

const char *wallet_limit_name(enum wallet_limit l);
bool wallet_limit_parse(const char *text, enum wallet_limit *out);

/* Which fees a wallet may pay (Lago's applies_to). Empty lists: any fee. */
enum wallet_fee_type {
    WALLET_FEE_CHARGE = 1 << 0,
    WALLET_FEE_SUBSCRIPTION = 1 << 1,
    WALLET_FEE_COMMITMENT = 1 << 2,
};
bool wallet_fee_type_parse(const char *text, unsigned *bit);

struct wallet_applies_to {
    unsigned fee_types; /* WALLET_FEE_* bits */
    const char *const *metric_codes;
    size_t metric_code_count;
    /* Its metrics were all deleted since it named them (the list is empty): it is limited to
     * none of them, not open to every one, as Lago keeps a wallet's targets. */
    bool metrics_deleted;
};

/* Whether a wallet with these terms may pay a usage fee of metric `metric_code`. */
bool wallet_may_pay_charge(const struct wallet_applies_to *a, const char *metric_code);

/*
 * Credits to cents: credits are floored to WALLET_CREDITS_SCALE decimals, priced at
 * rate_amount and rounded half up to the currency's minor unit. MONEY_ERR_OVERFLOW past
 * WALLET_BALANCE_MAX_CENTS either way (*cents is then left as it was). The credits a positive
 * amount names may round to 0 cents: the caller refuses that (amount_rounds_to_zero).
 */
/* Whether Tally counts that many credits (WALLET_CREDITS_MAX_TEXT at most, either sign): one
 * past it is refused as such, whatever a wallet could hold at its rate. */
bool wallet_credits_countable(money_t credits);
/* Whether credits floored to WALLET_CREDITS_SCALE decimals are none ("0.000001"): no amount,
 * as Lago's `floor(5)` then `zero?` reads them, rather than one that rounds to zero cents. */
bool wallet_credits_floor_to_zero(money_t credits);
enum money_status wallet_credits_to_cents(money_t credits, money_t rate_amount, int32_t exponent,
                                          int64_t *cents);
/*
 * A bound in credits to cents: floored to WALLET_CREDITS_SCALE decimals, priced at rate_amount
 * and rounded DOWN to the minor unit, the most whole cents worth no more than the credits. For
 * a maximum (a rollover's max_credits, an overdraft) that nothing may pass, and for a
 * threshold a balance is "at or below": a balance in cents is at or below the credits exactly
 * when it is at or below this. (Rounded half up, a cap of 10.6 yen let 11 roll over, an audit
 * found.) MONEY_ERR_OVERFLOW as wallet_credits_to_cents.
 */
enum money_status wallet_credits_cap_to_cents(money_t credits, money_t rate_amount,
                                              int32_t exponent, int64_t *cents);
/* Cents to credits, rounded half up to WALLET_CREDITS_SCALE decimals, or to as many as fit when
 * the credits are 10^33 or more (a tiny rate). MONEY_ERR_OVERFLOW past 10^38 credits. */
enum money_status wallet_cents_to_credits(int64_t cents, money_t rate_amount, int32_t exponent,
                                          money_t *credits);
/* Whether every amount a wallet may carry at this rate (WALLET_LIFETIME_MAX_CENTS either way)
 * can be shown in credits: a rate below is refused, as its balances could not be written. */
bool wallet_rate_showable(money_t rate_amount, int32_t exponent);
/* The most credits that convert back to at most `cents` (>= 0) at this rate: cents to credits,
 * floored to WALLET_CREDITS_SCALE decimals (how many credits fit, say). */
enum money_status wallet_credits_within(int64_t cents, money_t rate_amount, int32_t exponent,
                                        money_t *credits);

#define WALLET_BOUND_TEXT_MAX (MONEY_TEXT_MAX + 96)
/*
 * What a wallet holds at most (WALLET_BALANCE_MAX_CENTS) at this rate, for a message, into out:
 * "N credits (C minor units of USD)", or, at a rate so high that no credit Tally writes fits,
 * "C minor units of USD, under 0.00001 credits," (an audit read "at most 0.0 credits"). False,
 * out untouched, when the bound in credits is more than Tally writes (a tiny rate): the caller
 * says so its own way.
 */
bool wallet_bound_text(money_t rate_amount, int32_t exponent, const char *currency,
                       char out[static WALLET_BOUND_TEXT_MAX]);

/* Whether new credits fit a wallet (checked in this order; nothing wraps). */
enum wallet_fit {
    WALLET_FITS,
    WALLET_FIT_BALANCE,  /* it would hold more than WALLET_BALANCE_MAX_CENTS */
    WALLET_FIT_LIFETIME, /* it would have taken in more than WALLET_LIFETIME_MAX_CENTS */
};
/*
 * Whether `cents` (> 0) more credits fit a wallet that holds `holds` (its grants' remaining
 * amounts and its pending paid credits) and has taken in `lifetime` over its life (what it
 * consumed, voided or let expire, what it holds, and the overdraft it may still draw).
 */
enum wallet_fit wallet_credits_fit(int64_t holds, int64_t lifetime, int64_t cents);

/*
 * A grant's credits: what is left of it, and of that what open holds reserve. A hold reserves
 * particular credits, those its capture would spend were it captured at once (consumption
 * order, made when it is): nothing else spends, voids or expires them while it is open, and a
 * grant that comes later is never spoken for by it (else a grant added after a hold and
 * consumed first kept credits for it past its own expiry). Invariant: 0 <= held_cents <=
 * remaining_cents, so a grant that holds credits stays live.
 */
struct wallet_grant {
    int64_t id; /* its inbound wallet transaction's */
    int64_t remaining_cents;
    int64_t held_cents;
    /* During a capture: what its hold released of this grant, which the capture's debit takes
     * first (past the grant's expiry too), and whether that part was open on it at its rule's
     * last anniversary (what the capture leaves of it is capped by the rollover); zero and
     * false outside one. */
    int64_t capturing_cents;
    bool capturing_at_rollover;
    int32_t priority;
    bool paid; /* cost basis: rate_amount a credit; granted credits cost nothing */
    bool has_expiration;
    tally_time expiration_at;
    tally_time created_at;
};

/* <0 if a is consumed before b, >0 after, 0 only for the same grant. */
int wallet_grant_compare(const struct wallet_grant *a, const struct wallet_grant *b);

/* Where the grant belongs in grants[0..count) kept in consumption order. */
size_t wallet_grant_position(const struct wallet_grant *grants, size_t count,
                             const struct wallet_grant *g);

/* One part of a debit: `cents` taken from grants[grant]. */
struct wallet_take {
    size_t grant;
    int64_t cents;
};

/* Whether a grant is past its expiry at `now`: what is left of it is kept only for the open
 * holds that reserve it (the rest expired), and only their captures spend it. */
bool wallet_grant_past_expiry(const struct wallet_grant *g, tally_time now);

/* What of a grant no hold reserves. */
int64_t wallet_grant_unheld(const struct wallet_grant *g);

/* Which credits wallet_plan_take_at takes. */
enum wallet_take_from {
    WALLET_TAKE_LIVE,      /* unheld, of grants not past their expiry: what any debit spends */
    WALLET_TAKE_CAPTURING, /* what a capture's hold released (capturing_cents), past expiry
                              too: what the capture spends first */
};

/*
 * Plans taking up to `want` cents from grants[0..count), kept in consumption order, of the
 * credits `from` names at `now`: fills takes[] (at most `count` of them) and returns the cents
 * covered (<= want). Changes nothing: the caller applies the takes.
 */
int64_t wallet_plan_take_at(const struct wallet_grant *grants, size_t count, int64_t want,
                            tally_time now, enum wallet_take_from from, struct wallet_take *takes,
                            size_t *take_count);

/*
 * A threshold rule (Lago's recurring_transaction_rules with trigger "threshold"): when the
 * ongoing balance falls to threshold_cents, credits are topped up, by a fixed amount (enough
 * multiples of paid_cents to clear the gap) or up to a target. All amounts in cents at the
 * wallet's rate.
 */
enum wallet_rule_method { WALLET_RULE_FIXED, WALLET_RULE_TARGET };

struct wallet_rule {
    enum wallet_rule_method method;
    int64_t threshold_cents;
    int64_t paid_cents, granted_cents; /* fixed: the amounts of one top-up */
    int64_t target_cents;              /* target: the ongoing balance to reach */
    bool grants_target_top_up;         /* target: the gap is granted, not paid */
    bool ignore_paid_top_up_limits;
};

/*
 * What a threshold rule tops up when the ongoing balance is `ongoing` and `pending` paid
 * credits are already on their way (Lago's formulas): target: the gap to the target, paid (at
 * least min_paid when given) or granted; fixed: granted_cents, and paid_cents times enough to
 * clear the gap below the threshold (at most max_paid when given, unless the rule ignores
 * limits). min_paid/max_paid are the wallet's paid top-up bounds, or 0 for none.
 */
void wallet_rule_top_up(const struct wallet_rule *r, int64_t ongoing, int64_t pending,
                        int64_t min_paid, int64_t max_paid, int64_t *paid, int64_t *granted);
/* Whether the rule is due: the ongoing balance at or below the threshold, counting what is
 * pending (Lago's condition). */
bool wallet_rule_due(const struct wallet_rule *r, int64_t ongoing, int64_t pending);

/*
 * Interval rules (Tally's additions): how long each grant lasts (an ISO 8601 duration of whole
 * years, months, weeks and days: "P1M", "P30D", "P1Y2M") and how much of the previous grant's
 * unused credits roll over into the next period; the rest expires when the next grant comes.
 */
struct wallet_duration {
    int32_t years, months, days; /* weeks are 7 days */
};
#define WALLET_DURATION_TEXT_MAX 32
/* The longest a grant may last: 100 years, counted as 1,200 months of 31 days (37,200 days;
 * P100Y, P1200M and P5314W2D all fit). Far longer, a grant's end could pass the last instant
 * Tally keeps (9999-12-31) (an audit: P7974Y was taken, then wedged the clock). */
#define WALLET_DURATION_DAYS_MAX 37200
/* False for anything but P[nY][nM][nW][nD] with at least one part (n any whole number, of any
 * number of digits), for a duration of nothing (P0D), and for one longer than
 * WALLET_DURATION_DAYS_MAX (P37200D is the longest in days). */
bool wallet_duration_parse(const char *text, struct wallet_duration *out);
/*
 * The day a grant made on `from` (a local date) ends: the duration later on the calendar, its
 * years and months landing on `anchor_day` (the rule's anniversary day, or `from`'s if later;
 * a shorter month's last day instead), so that a grant lasting its rule's interval ends on the
 * next anniversary's day (Jan 31, Feb 28, Mar 31). A rule with no day of the month (weekly)
 * passes `from`'s own: Feb 7 + P1M is Mar 7, Jan 31 + P1M Feb 28. The grant ends at that day's
 * local start.
 */
struct civil_date wallet_duration_end(struct civil_date from, const struct wallet_duration *d,
                                      int32_t anchor_day);

enum wallet_rollover {
    WALLET_ROLLOVER_NONE,           /* nothing carries over */
    WALLET_ROLLOVER_ALL,            /* every unused credit carries over */
    WALLET_ROLLOVER_MAX_PERCENTAGE, /* up to `value` percent of the previous grant */
    WALLET_ROLLOVER_MAX_CREDITS,    /* up to `value` cents */
};
bool wallet_rollover_parse(const char *text, enum wallet_rollover *out);
const char *wallet_rollover_name(enum wallet_rollover r);
/* What of a previous grant of `amount` with `remaining` left rolls over (<= remaining). */
int64_t wallet_rollover_cents(enum wallet_rollover r, int64_t value, int64_t amount,
                              int64_t remaining);

/*
 * An organization's expiry reminders: days before a grant expires, "30,7" (1 to
 * WALLET_REMINDER_DAYS_MAX distinct values in 1..WALLET_REMINDER_DAYS_LIMIT), returned
 * nearest first. False for anything else.
 */
bool wallet_reminder_days_parse(const char *text, int32_t days[WALLET_REMINDER_DAYS_MAX],
                                size_t *count);

/* Wallet transactions, as Lago names them; Tally adds transaction statuses for usage debited
 * in real time, `usage` (outbound) and `usage_refund` (inbound, a fee that went down), and
 * `expired` (outbound, what a grant had left when it expired). */
enum wallet_transaction_type { WALLET_INBOUND, WALLET_OUTBOUND };
enum wallet_transaction_state { WALLET_TX_PENDING, WALLET_TX_SETTLED, WALLET_TX_FAILED };
enum wallet_transaction_status {
    WALLET_TX_PURCHASED,
    WALLET_TX_GRANTED,
    WALLET_TX_VOIDED,
    WALLET_TX_INVOICED,
    WALLET_TX_USAGE,
    WALLET_TX_USAGE_REFUND,
    WALLET_TX_EXPIRED, /* Tally: what was left of a grant when it expired */
};
enum wallet_transaction_source {
    WALLET_SOURCE_MANUAL,
    WALLET_SOURCE_INTERVAL,
    WALLET_SOURCE_THRESHOLD
};

const char *wallet_transaction_type_name(enum wallet_transaction_type t);
const char *wallet_transaction_state_name(enum wallet_transaction_state s);
const char *wallet_transaction_status_name(enum wallet_transaction_status s);
const char *wallet_transaction_source_name(enum wallet_transaction_source s);
/* Parsers for list filters; false for an unknown name. */
bool wallet_transaction_type_parse(const char *text, enum wallet_transaction_type *out);
bool wallet_transaction_state_parse(const char *text, enum wallet_transaction_state *out);
bool wallet_transaction_status_parse(const char *text, enum wallet_transaction_status *out);

#endif
