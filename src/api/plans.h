/*
 * api/plans: /api/v1/plans in Lago's shapes: an interval, a subscription fee (amount_cents
 * in amount_currency, in advance or in arrears), a trial, taxes, a minimum commitment and
 * the charges that price usage (api/charges.h). The routes are the catalog's.
 *
 * Editing a plan changes its definition for every subscription on it from then on; invoices
 * already issued keep the amounts they were issued with (docs/API.md, "Plan changes").
 */
#ifndef TALLY_API_PLANS_H
#define TALLY_API_PLANS_H

#include "api/catalog.h"

#define PLAN_TRIAL_PERIOD_MAX_DAYS 3650

extern const struct catalog_resource plans_resource;

struct plan_terms;
struct json_object;

/*
 * A subscription's own plan: the stored plan with Lago's plan_overrides laid over it
 * (amount, currency, names, trial, taxes, minimum commitment; charges named by id take what
 * Lago's Charges::OverrideService takes), parsed and validated as a plan. Refusals name
 * "plan_overrides" or the plan's field; an unknown tax is code "tax_not_found" (a 404).
 */
bool plans_apply_overrides(struct request *req, const struct catalog_item *plan,
                           struct json_object *overrides, const char **body,
                           struct json_in_error *err);
/* Reads what a subscription needs from a stored plan (interval, fee, currency, trial). */
bool plans_terms(const struct catalog_item *plan, struct plan_terms *out);

#endif
