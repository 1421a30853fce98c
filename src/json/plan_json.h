/*
 * json/plan_json: what is read back from a stored plan definition (api/plans writes it): the
 * terms a subscription lives by. Threads: any.
 */
#ifndef TALLY_JSON_PLAN_JSON_H
#define TALLY_JSON_PLAN_JSON_H

#include <stdbool.h>

#include "core/subscription.h"

/* Interval, fee, currency, trial, pay_in_advance and bill_charges_monthly of a stored plan
 * body. */
bool plan_json_terms(const char *body, struct plan_terms *out);

/*
 * What a live subscription's periods, money and charges hang on, which a plan update (api/plans)
 * and a subscription's new plan_overrides (engine/subscriptions) may not change under it.
 */
enum { PLAN_JSON_CHARGE_ID_MAX = 64 };
struct plan_json_frozen {
    const char *field;                    /* the member's name; NULL when nothing changes */
    const char *why;                      /* why it is kept (static text) */
    char charge[PLAN_JSON_CHARGE_ID_MAX]; /* the charge's lago_id for a charge's; else "" */
};
/*
 * The first such field `after` changes from `before` (stored plan bodies): the plan's interval,
 * bill_charges_monthly, amount_currency and pay_in_advance, then, for each charge of `after`
 * with a charge of `before` by its lago_id (charges added or removed change none), its
 * charge_model, billable_metric_id, pay_in_advance, prorated, invoiceable, regroup_paid_fees
 * and min_amount_cents, the last unless `overriding` (Lago's Charges::OverrideService takes it,
 * and nothing is priced by it). False if either body does not read (out->field NULL).
 */
bool plan_json_frozen_change(const char *before, const char *after, bool overriding,
                             struct plan_json_frozen *out);
/*
 * Whether `key` is one of those charge fields; *absent then gets the JSON text a charge stored
 * without the member has (Tally's parse writes them all; older bodies may lack one).
 */
bool plan_json_charge_field_frozen(const char *key, const char **absent);

/* Lago's names of the intervals, indexed by enum period_interval. */
const char *plan_json_interval_name(enum period_interval interval);
bool plan_json_interval_parse(const char *text, enum period_interval *out);

#endif
