/*
 * json/metric_json: a stored billable metric's definition (api/billable_metrics writes it)
 * read back into core/billable_metric's struct. Threads: any.
 */
#ifndef TALLY_JSON_METRIC_JSON_H
#define TALLY_JSON_METRIC_JSON_H

#include <stdbool.h>

#include "core/billable_metric.h"
#include "util/arena.h"

/* Strings and filters are allocated in `a`. False if the body is not a metric Tally wrote. */
bool metric_json_read(struct arena *a, const char *body, struct billable_metric *m);

#endif
