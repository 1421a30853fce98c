/*
 * api/billable_metrics: /api/v1/billable_metrics in Lago's shapes. The rules live in
 * core/billable_metric; the routes are the catalog's (api/catalog.h).
 */
#ifndef TALLY_API_BILLABLE_METRICS_H
#define TALLY_API_BILLABLE_METRICS_H

#include "api/catalog.h"

extern const struct catalog_resource billable_metrics_resource;

#endif
