/*
 * api/billable_metrics: see billable_metrics.h.
 *
 * Expressions (Lago computes a property from others at ingestion) are not evaluated by
 * Tally yet; a definition that sets one is refused rather than silently ignored.
 */
#include "api/billable_metrics.h"

#include <json-c/json.h>
#include <string.h>

#include "core/billable_metric.h"

static bool parse_filters(struct request *req, struct json_object *obj, struct billable_metric *m,
                          struct json_in_error *err)
{
    struct json_object *list;
    if (!json_object_object_get_ex(obj, "filters", &list) || !list)
        return true;
    if (!json_object_is_type(list, json_type_array))
        return json_in_refuse(err, "filters", "invalid_type");
    size_t n = json_object_array_length(list);
    if (n > BILLABLE_METRIC_FILTERS_MAX)
        return json_in_refuse(err, "filters", "too_many_items");
    struct billable_metric_filter *filters = arena_alloc(&req->arena, sizeof *filters * (n + 1));
    if (!filters)
        return json_in_refuse(err, "filters", "out_of_memory");
    for (size_t i = 0; i < n; i++) {
        struct json_object *f = json_object_array_get_idx(list, i);
        const char **values = NULL;
        if (!json_object_is_type(f, json_type_object))
            return json_in_refuse(err, "filters", "invalid_format");
        if (!json_in_required_string(f, "key", BILLABLE_METRIC_FILTER_TEXT_MAX, &req->arena,
                                     &filters[i].key, err))
            return json_in_refuse(err, "filters", "invalid_format");
        if (json_in_string_array(f, "values", BILLABLE_METRIC_FILTER_VALUES_MAX,
                                 BILLABLE_METRIC_FILTER_TEXT_MAX, &req->arena, &values,
                                 &filters[i].value_count, err) != JSON_IN_VALUE)
            return json_in_refuse(err, "filters", "invalid_format");
        filters[i].values = values;
    }
    m->filters = filters;
    m->filter_count = n;
    return true;
}

static bool parse_metric(struct request *req, struct json_object *obj, struct billable_metric *m,
                         const char **name, const char **description, struct json_in_error *err)
{
    const char *aggregation = NULL, *rounding = NULL, *expression = NULL, *interval = NULL;
    int64_t precision = 0;
    memset(m, 0, sizeof *m);
    if (!json_in_required_string(obj, "name", CATALOG_NAME_MAX, &req->arena, name, err) ||
        json_in_string(obj, "description", CATALOG_DESCRIPTION_MAX, &req->arena, description,
                       err) == JSON_IN_INVALID ||
        !json_in_required_string(obj, "aggregation_type", 32, &req->arena, &aggregation, err))
        return false;
    if (!billable_metric_aggregation_parse(aggregation, &m->aggregation))
        return json_in_refuse(err, "aggregation_type", "value_is_invalid");
    if (json_in_string(obj, "field_name", BILLABLE_METRIC_FIELD_NAME_MAX, &req->arena,
                       &m->field_name, err) == JSON_IN_INVALID ||
        json_in_bool(obj, "recurring", &m->recurring, err) == JSON_IN_INVALID ||
        json_in_string(obj, "rounding_function", 16, &req->arena, &rounding, err) ==
            JSON_IN_INVALID ||
        json_in_int(obj, "rounding_precision", BILLABLE_METRIC_PRECISION_MIN,
                    BILLABLE_METRIC_PRECISION_MAX, &precision, err) == JSON_IN_INVALID ||
        json_in_string(obj, "expression", 4096, &req->arena, &expression, err) == JSON_IN_INVALID ||
        json_in_string(obj, "weighted_interval", 16, &req->arena, &interval, err) ==
            JSON_IN_INVALID)
        return false;
    if (rounding && !billable_metric_rounding_parse(rounding, &m->rounding))
        return json_in_refuse(err, "rounding_function", "value_is_invalid");
    m->rounding_precision = (int32_t)precision;
    if (expression && *expression)
        return json_in_refuse(err, "expression", "not_supported");
    if (m->aggregation == AGGREGATION_COUNT)
        m->field_name = NULL; /* Lago clears it: a count reads no property */
    if (interval && (m->aggregation != AGGREGATION_WEIGHTED_SUM || strcmp(interval, "seconds")))
        return json_in_refuse(err, "weighted_interval", "value_is_invalid");
    if (!parse_filters(req, obj, m, err))
        return false;
    const char *field, *code;
    if (!billable_metric_validate(m, &field, &code))
        return json_in_refuse(err, field, code);
    return true;
}

static bool parse_definition(struct request *req, struct json_object *obj,
                             struct catalog_definition *out, struct json_in_error *err)
{
    struct billable_metric m;
    const char *name = NULL, *description = NULL;
    if (!json_in_required_string(obj, "code", CATALOG_CODE_MAX, &req->arena, &out->code, err) ||
        !parse_metric(req, obj, &m, &name, &description, err))
        return false;
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "name", name);
    jsonw_kv_cstr(&w, "description", description);
    jsonw_kv_cstr(&w, "aggregation_type", billable_metric_aggregation_name(m.aggregation));
    jsonw_kv_cstr(&w, "field_name", m.field_name);
    jsonw_kv_bool(&w, "recurring", m.recurring);
    jsonw_kv_cstr(&w, "weighted_interval",
                  m.aggregation == AGGREGATION_WEIGHTED_SUM ? "seconds" : NULL);
    jsonw_kv_cstr(&w, "rounding_function", billable_metric_rounding_name(m.rounding));
    jsonw_key(&w, "rounding_precision");
    if (m.rounding == ROUNDING_NONE)
        jsonw_null(&w);
    else
        jsonw_int(&w, m.rounding_precision);
    jsonw_kv_null(&w, "expression");
    jsonw_key(&w, "filters");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < m.filter_count; i++) {
        jsonw_object_begin(&w);
        jsonw_kv_cstr(&w, "key", m.filters[i].key);
        jsonw_key(&w, "values");
        jsonw_array_begin(&w);
        for (size_t v = 0; v < m.filters[i].value_count; v++)
            jsonw_cstr(&w, m.filters[i].values[v]);
        jsonw_array_end(&w);
        jsonw_object_end(&w);
    }
    jsonw_array_end(&w);
    jsonw_object_end(&w);
    return catalog_finish_body(req, true, &b, out, err);
}

const struct catalog_resource billable_metrics_resource = {
    .kind = CATALOG_BILLABLE_METRIC,
    .parse = parse_definition,
    .render = catalog_render_plain,
};
