/* core/billable_metric: see billable_metric.h. */
#include "core/billable_metric.h"

#include <string.h>

static const char *const aggregation_names[AGGREGATION_KIND_COUNT] = {
    [AGGREGATION_COUNT] = "count_agg",   [AGGREGATION_SUM] = "sum_agg",
    [AGGREGATION_MAX] = "max_agg",       [AGGREGATION_UNIQUE_COUNT] = "unique_count_agg",
    [AGGREGATION_LATEST] = "latest_agg", [AGGREGATION_WEIGHTED_SUM] = "weighted_sum_agg",
};

static const char *const rounding_names[] = {
    [ROUNDING_NONE] = NULL,
    [ROUNDING_ROUND] = "round",
    [ROUNDING_CEIL] = "ceil",
    [ROUNDING_FLOOR] = "floor",
};

const char *billable_metric_aggregation_name(enum billable_metric_aggregation a)
{
    return aggregation_names[a];
}

bool billable_metric_aggregation_parse(const char *text, enum billable_metric_aggregation *out)
{
    for (int i = 0; i < AGGREGATION_KIND_COUNT; i++) {
        if (strcmp(text, aggregation_names[i]) == 0) {
            *out = (enum billable_metric_aggregation)i;
            return true;
        }
    }
    return false;
}

const char *billable_metric_rounding_name(enum billable_metric_rounding r)
{
    return rounding_names[r];
}

bool billable_metric_rounding_parse(const char *text, enum billable_metric_rounding *out)
{
    for (int i = ROUNDING_ROUND; i <= ROUNDING_FLOOR; i++) {
        if (strcmp(text, rounding_names[i]) == 0) {
            *out = (enum billable_metric_rounding)i;
            return true;
        }
    }
    return false;
}

static bool fail(const char **field, const char **code, const char *f, const char *c)
{
    *field = f;
    *code = c;
    return false;
}

static bool filters_valid(const struct billable_metric *m)
{
    if (m->filter_count > BILLABLE_METRIC_FILTERS_MAX)
        return false;
    for (size_t i = 0; i < m->filter_count; i++) {
        const struct billable_metric_filter *f = &m->filters[i];
        if (!f->key || !*f->key || f->value_count == 0 ||
            f->value_count > BILLABLE_METRIC_FILTER_VALUES_MAX)
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->filters[j].key, f->key) == 0)
                return false; /* one filter per key */
        for (size_t v = 0; v < f->value_count; v++)
            if (!f->values[v]) /* "" is a value, as Lago's present? takes [""] */
                return false;
    }
    return true;
}

bool billable_metric_validate(const struct billable_metric *m, const char **field,
                              const char **code)
{
    bool needs_field = m->aggregation != AGGREGATION_COUNT;
    if (needs_field && (!m->field_name || !*m->field_name))
        return fail(field, code, "field_name", "value_is_mandatory");
    if (m->recurring && (m->aggregation == AGGREGATION_COUNT || m->aggregation == AGGREGATION_MAX ||
                         m->aggregation == AGGREGATION_LATEST))
        return fail(field, code, "recurring", "not_compatible_with_aggregation_type");
    if (m->expression && m->aggregation == AGGREGATION_COUNT)
        return fail(field, code, "expression", "not_compatible_with_aggregation_type");
    if (m->rounding_precision < BILLABLE_METRIC_PRECISION_MIN ||
        m->rounding_precision > BILLABLE_METRIC_PRECISION_MAX)
        return fail(field, code, "rounding_precision", "value_is_out_of_range");
    if (!filters_valid(m))
        return fail(field, code, "filters", "invalid_format");
    return true;
}
