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
/* Lago's names of the intervals, indexed by enum period_interval. */
const char *plan_json_interval_name(enum period_interval interval);
bool plan_json_interval_parse(const char *text, enum period_interval *out);

#endif
