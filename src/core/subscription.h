/*
 * core/subscription: a customer's subscription to a plan, and its rules, as pure functions.
 *
 * Shape: a subscription's state is a function of a few instants and the clock. It is
 * pending before started_at, active until it ends (terminated_at, which may lie in the
 * future for a scheduled downgrade, or ending_at), terminated after, canceled if canceled
 * before it started. Storing instants instead of a status means nothing has to run at the
 * moment a subscription starts or ends for its status to be right at any clock, test clocks
 * included; work that must happen at those moments (invoices) is scheduled from the same
 * instants by later issues.
 *
 * Plan changes follow Lago: a plan worth at least as much per year is an upgrade and takes
 * effect at once (the old subscription ends now, the new one starts now); a cheaper plan is
 * a downgrade and takes effect when the current billing period ends. Both keep the
 * subscription's anchor (subscription_at), so anniversary periods do not move.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_SUBSCRIPTION_H
#define TALLY_CORE_SUBSCRIPTION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/money.h"
#include "core/period.h"
#include "core/timestamp.h"
#include "core/uuid.h"

#define SUBSCRIPTION_EXTERNAL_ID_MAX 255
#define SUBSCRIPTION_NAME_MAX 255
#define SUBSCRIPTION_PURCHASE_ORDER_MAX 255 /* as a wallet's (WALLET_PURCHASE_ORDER_MAX) */

/* What a subscription needs to know of its plan. */
struct plan_terms {
    enum period_interval interval;
    int64_t amount_cents;
    char currency[4];
    money_t trial_period_days; /* may be fractional, as Lago's; 0 for none (null) */
    bool pay_in_advance;
    bool bill_charges_monthly; /* yearly and semiannual plans: charges are billed each month */
};

enum subscription_status {
    SUBSCRIPTION_PENDING,
    SUBSCRIPTION_ACTIVE,
    SUBSCRIPTION_TERMINATED,
    SUBSCRIPTION_CANCELED,
};

struct subscription {
    int64_t id; /* store row id; 0 before the first save */
    int64_t org_id;
    int64_t customer_id;
    char lago_id[UUID_TEXT];
    const char *external_id;
    const char *name; /* NULL when none */
    /* Lago's purchase_order_number, for the invoices of the subscription; NULL when none */
    const char *purchase_order_number;
    char plan_lago_id[UUID_TEXT];
    const char *plan_code; /* the plan's code when subscribed (its current code is the plan's) */
    const char *plan_body; /* its own plan definition (plan_overrides), or NULL for the plan's */
    enum period_billing_time billing_time;
    tally_time subscription_at; /* Lago's subscription_at: the anchor of anniversary periods */
    tally_time started_at;      /* it is active from here */
    bool has_ending_at;
    tally_time ending_at; /* set by the client: the subscription ends by itself then */
    bool has_terminated_at;
    tally_time terminated_at; /* terminated, upgraded or downgraded away: may be in the future */
    bool has_canceled_at;
    tally_time canceled_at; /* canceled before it started */
    int64_t previous_id;    /* the subscription this one replaced (plan change), or 0 */
    int64_t next_id;        /* the subscription replacing this one, or 0 */
    tally_time created_at;
    tally_time updated_at;
};

/* Lago's names: "pending", "active", "terminated", "canceled". */
const char *subscription_status_name(enum subscription_status s);
/* The instant it stops being active (the earlier of terminated_at and ending_at), or
 * TIMESTAMP_MAX when neither is set. */
tally_time subscription_end(const struct subscription *s);
enum subscription_status subscription_status_at(const struct subscription *s, tally_time now);
/* Pending or active: the subscription a new request with its external_id acts on. */
bool subscription_is_live(const struct subscription *s, tally_time now);

/* The plan's fee over a year, in cents (for upgrade vs downgrade). False on overflow. */
bool plan_terms_yearly_amount(const struct plan_terms *t, int64_t *out);

enum subscription_change {
    SUBSCRIPTION_CHANGE_NONE,      /* same plan: nothing to do */
    SUBSCRIPTION_CHANGE_UPGRADE,   /* switch now */
    SUBSCRIPTION_CHANGE_DOWNGRADE, /* switch at the end of the current period */
    SUBSCRIPTION_CHANGE_PENDING,   /* not started yet: its plan is simply replaced */
};

/*
 * What subscribing `current` (live at now, on terms `from`) to a plan means: the plan
 * `new_plan_lago_id` with terms `to`, with overrides of its own (`new_own_plan`) or not. The
 * same plan is no change, unless `current` has a plan of its own (plan_overrides) and the
 * request none: then, as in Lago, whose overridden subscription is on a child plan, it is a
 * change to the plan itself. False only if a yearly amount overflows (then nothing can be
 * decided: the caller refuses the request).
 */
bool subscription_change_kind(const struct subscription *current, const struct plan_terms *from,
                              const char *new_plan_lago_id, bool new_own_plan,
                              const struct plan_terms *to, tally_time now,
                              enum subscription_change *out);

/* The layout of the subscription's billing periods under a plan, in the customer's zone. */
struct period_spec subscription_period_spec(const struct subscription *s,
                                            const struct plan_terms *t, const struct tz_zone *zone);
/*
 * The billing period current at `now`: the period containing now, or for a subscription
 * not started yet the one containing its start, or for one that ended the one containing
 * its last instant.
 */
enum period_status subscription_current_period(const struct subscription *s,
                                               const struct plan_terms *t,
                                               const struct tz_zone *zone, tally_time now,
                                               struct period *out);

/*
 * The layout of the periods its charges (usage) are aggregated and billed over: the plan's
 * periods, or months for a yearly or semiannual plan with bill_charges_monthly (calendar
 * months, or months from subscription_at for anniversary billing), as Lago's
 * Subscriptions::Dates::YearlyService and SemiannualService take their charges' dates from
 * the monthly service. The subscription fee keeps subscription_period_spec.
 */
struct period_spec subscription_charges_period_spec(const struct subscription *s,
                                                    const struct plan_terms *t,
                                                    const struct tz_zone *zone);
/* The charges' period current at `now`, clamped to the subscription as
 * subscription_current_period is, but to its usage's last instant (subscription_usage_end). */
enum period_status subscription_charges_period(const struct subscription *s,
                                               const struct plan_terms *t,
                                               const struct tz_zone *zone, tally_time now,
                                               struct period *out);
/* Where a subscription's usage of the charges' period `p` starts: the period's start, or the
 * subscription's own start if later (a first period). Wallets' debits of the period are kept
 * under this instant, so whatever moves or matches them must use it, not p->start. */
tally_time subscription_usage_from(const struct subscription *s, const struct period *p);
/* The instant after the last its usage counts (TIMESTAMP_MAX: none). A termination decided on
 * the spot (terminated_at not after updated_at: DELETE, an upgrade) has its own instant in it:
 * the command terminates at its own `now`, and events of that instant arrived while the
 * subscription lived (Lago's range to terminated_at includes them). An end set ahead (an
 * ending_at, a downgrade's switch at the period's end) is not the subscription's: at a
 * downgrade's, the next subscription starts. */
tally_time subscription_usage_end(const struct subscription *s);
/* Where its usage of period `p` ends: the period's end, or subscription_usage_end if earlier. */
tally_time subscription_usage_to(const struct subscription *s, const struct period *p);

/*
 * When the plan's trial ends, counted from `initial_started_at`: the first start under the
 * subscription's external id (Lago's Subscription#initial_started_at), so that a plan change
 * does not restart it; plus the trial's days, to the microsecond. False when the plan has none.
 */
bool subscription_trial_end(tally_time initial_started_at, const struct plan_terms *t,
                            tally_time *out);
/*
 * Lago's trial_ended_at of s at `now`: the trial's end (subscription_trial_end) once it has
 * come while s was active. Lago's job sets it on active subscriptions only, so one that ended
 * before its trial did, or has not started, shows none (false), and one started after it (a
 * plan change) shows it from the start.
 */
bool subscription_trial_ended(const struct subscription *s, const struct plan_terms *t,
                              tally_time initial_started_at, tally_time now, tally_time *out);

/*
 * Lago's day proration of a plan fee: amount_cents / days_in_period * days_billed, rounded
 * half up to the cent. Days are local calendar days (core/period). False on bad input
 * (days_in_period <= 0, days_billed outside [0, days_in_period]) or overflow.
 */
bool subscription_prorated_cents(int64_t amount_cents, int64_t days_billed, int64_t days_in_period,
                                 int64_t *out);

#endif
