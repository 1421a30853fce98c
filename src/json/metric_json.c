/* json/metric_json: see metric_json.h. */
#include "json/metric_json.h"

#include <json-c/json.h>
#include <string.h>

static const char *copy(struct arena *a, struct json_object *v)
{
    return arena_strndup(a, json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

static bool read_filters(struct arena *a, struct json_object *list, struct billable_metric *m)
{
    size_t n = json_object_array_length(list);
    struct billable_metric_filter *fs = arena_alloc(a, sizeof *fs * (n + 1));
    if (!fs)
        return false;
    for (size_t i = 0; i < n; i++) {
        struct json_object *f = json_object_array_get_idx(list, i), *key, *vals;
        if (!json_object_object_get_ex(f, "key", &key) ||
            !json_object_object_get_ex(f, "values", &vals))
            return false;
        fs[i].key = copy(a, key);
        fs[i].value_count = json_object_array_length(vals);
        const char **values = arena_alloc(a, sizeof *values * (fs[i].value_count + 1));
        if (!values || !fs[i].key)
            return false;
        for (size_t k = 0; k < fs[i].value_count; k++)
            values[k] = copy(a, json_object_array_get_idx(vals, k));
        fs[i].values = values;
    }
    m->filters = fs;
    m->filter_count = n;
    return true;
}

bool metric_json_read(struct arena *a, const char *body, struct billable_metric *m)
{
    struct json_object *doc = json_tokener_parse(body), *v;
    bool ok = doc != NULL;
    memset(m, 0, sizeof *m);
    if (ok)
        ok = json_object_object_get_ex(doc, "aggregation_type", &v) &&
             billable_metric_aggregation_parse(json_object_get_string(v), &m->aggregation);
    if (ok && json_object_object_get_ex(doc, "field_name", &v) && v)
        m->field_name = copy(a, v);
    if (ok && json_object_object_get_ex(doc, "expression", &v) && v)
        m->expression = copy(a, v);
    if (ok && json_object_object_get_ex(doc, "recurring", &v))
        m->recurring = json_object_get_boolean(v);
    if (ok && json_object_object_get_ex(doc, "rounding_function", &v) && v)
        ok = billable_metric_rounding_parse(json_object_get_string(v), &m->rounding);
    if (ok && json_object_object_get_ex(doc, "rounding_precision", &v) && v)
        m->rounding_precision = (int32_t)json_object_get_int(v);
    if (ok && json_object_object_get_ex(doc, "filters", &v) && v)
        ok = read_filters(a, v, m);
    json_object_put(doc);
    return ok;
}
