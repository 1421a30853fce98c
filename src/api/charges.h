/*
 * api/charges: a plan's charge in Lago's JSON: which billable metric, which charge model
 * with which properties, its options (pay_in_advance, invoiceable, prorated,
 * min_amount_cents, regroup_paid_fees), per-filter properties and its taxes.
 *
 * Parsing reads the billable metric through the caller's store connection to apply Lago's
 * rules that join a charge and its metric (pay in advance, proration, filters, the
 * percentage models' ban on latest_agg); the writer still checks the metric exists when the
 * plan is saved. Properties go through json/charge_json, which the engine also uses to read
 * stored plans.
 */
#ifndef TALLY_API_CHARGES_H
#define TALLY_API_CHARGES_H

#include <stdbool.h>
#include <stddef.h>

#include "api/catalog.h"
#include "core/charge_model.h"

#define CHARGES_PER_PLAN_MAX 100
#define CHARGE_FILTERS_MAX 100

struct json_object;
struct store_conn;

/*
 * Parses charge `index` of a plan and writes it canonically into w (an array element).
 * References (metric, tax codes) are added to def. A charge keeps the id it names (an update's
 * charge naming a stored one, or an override's); else it gets a new one. `exponent` is the
 * plan's currency's minor-unit exponent (negative: unknown, its fee is not checked): a charge
 * whose fee at zero units does not fit in int64 minor units is refused.
 */
bool charges_parse(struct request *req, struct store_conn *conn, struct json_object *charge,
                   int32_t exponent, struct jsonw *w, struct catalog_definition *def,
                   struct json_in_error *err);

/* Writes a stored charge as Lago answers it (metric code and taxes looked up through conn);
 * nothing for a charge whose metric was deleted, which Lago deletes with it. */
void charges_render(struct jsonw *w, struct json_object *charge, int64_t org_id,
                    tally_time created_at, struct store_conn *conn, struct arena *a);

#endif
