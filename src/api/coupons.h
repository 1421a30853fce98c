/*
 * api/coupons: /api/v1/coupons in Lago's shapes: a fixed amount (in a currency) or a
 * percentage off, once, for N periods (recurring) or forever, optionally limited to plans
 * or to billable metrics, optionally expiring. The routes are the catalog's.
 */
#ifndef TALLY_API_COUPONS_H
#define TALLY_API_COUPONS_H

#include "api/catalog.h"

#define COUPON_FREQUENCY_DURATION_MAX 1200 /* periods: a century of monthly invoices */

extern const struct catalog_resource coupons_resource;

/*
 * obj's `percentage_rate`, required, as Lago keeps it (5 decimals, ties away from zero) and
 * answers it ("10.0"), into text (MONEY_TEXT_MAX bytes): above 0 and at most 100, else
 * value_is_out_of_range. A coupon's and an application's override.
 */
bool coupons_parse_rate(struct json_object *obj, char *text, size_t cap, struct json_in_error *err);

#endif
