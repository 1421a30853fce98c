/*
 * core/billable_metric: what a billable metric is (how events become a quantity) and the
 * rules its definition obeys, as Lago states them:
 *   - count_agg needs no field; every other aggregation reads properties[field_name];
 *   - recurring (values carry over periods) makes no sense for count, max or latest;
 *   - weighted_sum weighs by time, in seconds;
 *   - rounding (round half-up, ceil, floor) applies to the aggregate at a precision;
 *   - filters name property keys and the values a charge may price separately;
 *   - an expression (core/expression) computes properties[field_name] from the event's
 *     other properties as it is ingested: not for count_agg, which reads no field.
 * Aggregating events is the Events issue's; this module only defines and checks.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_BILLABLE_METRIC_H
#define TALLY_CORE_BILLABLE_METRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BILLABLE_METRIC_FIELD_NAME_MAX 255
#define BILLABLE_METRIC_FILTERS_MAX 32
#define BILLABLE_METRIC_FILTER_VALUES_MAX 512
#define BILLABLE_METRIC_FILTER_TEXT_MAX 255
#define BILLABLE_METRIC_PRECISION_MIN (-15)
#define BILLABLE_METRIC_PRECISION_MAX 15

enum billable_metric_aggregation {
    AGGREGATION_COUNT,
    AGGREGATION_SUM,
    AGGREGATION_MAX,
    AGGREGATION_UNIQUE_COUNT,
    AGGREGATION_LATEST,
    AGGREGATION_WEIGHTED_SUM,
    AGGREGATION_KIND_COUNT
};

enum billable_metric_rounding {
    ROUNDING_NONE,
    ROUNDING_ROUND, /* half up, as Ruby's BigDecimal#round */
    ROUNDING_CEIL,
    ROUNDING_FLOOR,
};

struct billable_metric_filter {
    const char *key;
    const char *const *values;
    size_t value_count;
};

struct billable_metric {
    enum billable_metric_aggregation aggregation;
    const char *field_name; /* NULL for count_agg */
    const char *expression; /* NULL: none (its text is checked by core/expression) */
    bool recurring;
    enum billable_metric_rounding rounding;
    int32_t rounding_precision;
    const struct billable_metric_filter *filters;
    size_t filter_count;
};

/* Lago's names ("count_agg", ..., "round", ...); parse returns false for unknown text. */
const char *billable_metric_aggregation_name(enum billable_metric_aggregation a);
bool billable_metric_aggregation_parse(const char *text, enum billable_metric_aggregation *out);
const char *billable_metric_rounding_name(enum billable_metric_rounding r); /* NULL for none */
bool billable_metric_rounding_parse(const char *text, enum billable_metric_rounding *out);

/* Checks the rules above; on failure sets Lago's field and error code (static strings). */
bool billable_metric_validate(const struct billable_metric *m, const char **field,
                              const char **code);

#endif
