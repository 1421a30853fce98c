/*
 * api/billable_metrics: /api/v1/billable_metrics in Lago's shapes. The rules live in
 * core/billable_metric; the routes are the catalog's (api/catalog.h).
 */
#ifndef TALLY_API_BILLABLE_METRICS_H
#define TALLY_API_BILLABLE_METRICS_H

#include "api/catalog.h"

extern const struct catalog_resource billable_metrics_resource;

/*
 * POST /api/v1/billable_metrics/evaluate_expression {"expression", "event": {"code",
 * "timestamp", "properties"}}: what the expression makes of that event, changing nothing:
 * {"expression_result": {"value": ...}}, a number as its decimal text. Answered on the
 * request's thread (it reads no state). Threads: any.
 */
void billable_metrics_evaluate_expression(struct request *req);

#endif
