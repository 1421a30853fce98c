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

#endif
