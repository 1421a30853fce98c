/*
 * api/billable_metrics: see billable_metrics.h.
 *
 * A metric's expression is parsed when the metric is saved, so that one that does not parse
 * is refused there, with where and why, rather than at each of its events.
 */
#include "api/billable_metrics.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "core/billable_metric.h"
#include "core/expression.h"
#include "json/event_json.h"
#include "util/jsonw.h"

/* What a metric's filters may be, in words (an audit found the limits refused unsaid). */
static const char filters_shape[] = "filters: at most 32, each {\"key\": text, \"values\": "
                                    "[text or integer, ...]} with 1 to 512 values (a key sent "
                                    "twice takes the last one's), a key 1 to 255 bytes, a value "
                                    "at most 255";
_Static_assert(BILLABLE_METRIC_FILTERS_MAX == 32 && BILLABLE_METRIC_FILTER_VALUES_MAX == 512 &&
                   BILLABLE_METRIC_FILTER_TEXT_MAX == 255,
               "filters_shape states the limits");

static bool parse_filters(struct request *req, struct json_object *obj, struct billable_metric *m,
                          struct json_in_error *err)
{
    struct json_object *list;
    if (!json_object_object_get_ex(obj, "filters", &list) || !list)
        return true;
    if (!json_object_is_type(list, json_type_array))
        return json_in_refuse(err, "filters", "invalid_type");
    size_t n = json_object_array_length(list);
    if (n > BILLABLE_METRIC_FILTERS_MAX) {
        err->message = filters_shape;
        return json_in_refuse(err, "filters", "too_many_items");
    }
    struct billable_metric_filter *filters = arena_alloc(&req->arena, sizeof *filters * (n + 1));
    if (!filters)
        return json_in_refuse(err, "filters", "out_of_memory");
    for (size_t i = 0; i < n; i++) {
        struct json_object *f = json_object_array_get_idx(list, i), *given = NULL;
        const char **values = NULL;
        /* a value may be a JSON integer, kept as its text, as Lago's string[] column keeps it */
        if (!json_object_is_type(f, json_type_object) ||
            !json_in_required_string(f, "key", BILLABLE_METRIC_FILTER_TEXT_MAX, &req->arena,
                                     &filters[i].key, err) ||
            !json_object_object_get_ex(f, "values", &given) || !given ||
            !json_in_text_list(given, "values", BILLABLE_METRIC_FILTER_VALUES_MAX,
                               BILLABLE_METRIC_FILTER_TEXT_MAX, &req->arena, &values,
                               &filters[i].value_count, err)) {
            err->message = filters_shape; /* Lago's one code; the message says the limits */
            return json_in_refuse(err, "filters", "invalid_format");
        }
        /* a value sent twice is one, as Lago's batch service takes values.uniq */
        size_t kept = 0;
        for (size_t v = 0; v < filters[i].value_count; v++) {
            bool seen = false;
            for (size_t k = 0; k < kept && !seen; k++)
                seen = strcmp(values[k], values[v]) == 0;
            if (!seen)
                values[kept++] = values[v];
        }
        filters[i].values = values;
        filters[i].value_count = kept;
    }
    /* a key sent twice is one filter with the last one's values, as Lago's batch service finds
     * the filter by key (find_or_initialize_by) and sets its values again: kept where the key
     * came first (Lago answers them by key anyway) */
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < distinct && strcmp(filters[k].key, filters[i].key) != 0)
            k++;
        filters[k] = filters[i];
        if (k == distinct)
            distinct++;
    }
    m->filters = filters;
    m->filter_count = distinct;
    return true;
}

/* NULL, "" or only white space: Ruby's blank?. */
/* NULL or json_in_blank. */
static bool is_blank(const char *text)
{
    return !text || json_in_blank(text, strlen(text));
}

/* Lago's invalid_expression, with Tally's message saying where and why. */
static bool check_expression(struct request *req, const char *text, struct json_in_error *err)
{
    struct expression *x = arena_alloc(&req->arena, sizeof *x);
    char why[EXPRESSION_MESSAGE_MAX];
    if (!x)
        return json_in_refuse(err, "expression", "out_of_memory");
    if (expression_parse(text, strlen(text), x, why) == EXPRESSION_OK)
        return true;
    err->message = arena_printf(&req->arena, "expression %s", why);
    return json_in_refuse(err, "expression", "invalid_expression");
}

static bool parse_metric(struct request *req, struct json_object *obj, struct billable_metric *m,
                         const char **name, const char **description,
                         const char **weighted_interval, struct json_in_error *err)
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
        json_in_string(obj, "expression", EXPRESSION_TEXT_MAX, &req->arena, &expression, err) ==
            JSON_IN_INVALID ||
        json_in_string(obj, "weighted_interval", 16, &req->arena, &interval, err) ==
            JSON_IN_INVALID)
        return false;
    /* blank is none, as Rails' enum casts "" to nil (an audit found "" refused) */
    if (is_blank(rounding))
        rounding = NULL;
    if (is_blank(interval))
        interval = NULL;
    if (rounding && !billable_metric_rounding_parse(rounding, &m->rounding))
        return json_in_refuse(err, "rounding_function", "value_is_invalid");
    m->rounding_precision = (int32_t)precision;
    if (is_blank(expression)) /* "" or spaces are none, as Lago's expression.blank? */
        expression = NULL;
    if (expression && !check_expression(req, expression, err))
        return false;
    m->expression = expression;
    if (m->aggregation == AGGREGATION_COUNT || is_blank(m->field_name))
        m->field_name = NULL; /* Lago clears it for a count (which reads no property); blank is
                                 none, as Lago's presence check takes it */
    /* Lago checks it `if: :weighted_sum_agg?` (app/models/billable_metric.rb) and keeps it as
     * stored or sent otherwise, so a weighted sum becomes a sum without a word of it; its only
     * value is "seconds" (another is none Lago could store). A weighted sum without one counts
     * in seconds, Tally's default. */
    if (interval && strcmp(interval, "seconds") != 0) {
        err->message = "weighted_interval: the only interval is \"seconds\"";
        return json_in_refuse(err, "weighted_interval", "value_is_invalid");
    }
    *weighted_interval =
        interval || m->aggregation != AGGREGATION_WEIGHTED_SUM ? interval : "seconds";
    if (!parse_filters(req, obj, m, err))
        return false;
    const char *field, *code;
    if (!billable_metric_validate(m, &field, &code)) {
        if (strcmp(field, "filters") == 0)
            err->message = filters_shape; /* no values, or a key twice */
        return json_in_refuse(err, field, code);
    }
    return true;
}

static bool parse_definition(struct request *req, struct json_object *obj,
                             struct catalog_definition *out, struct json_in_error *err)
{
    struct billable_metric m;
    const char *name = NULL, *description = NULL, *interval = NULL;
    if (!json_in_required_string(obj, "code", CATALOG_CODE_MAX, &req->arena, &out->code, err) ||
        !parse_metric(req, obj, &m, &name, &description, &interval, err))
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
    jsonw_kv_cstr(&w, "weighted_interval", interval);
    jsonw_kv_cstr(&w, "rounding_function", billable_metric_rounding_name(m.rounding));
    jsonw_key(&w, "rounding_precision");
    if (m.rounding == ROUNDING_NONE)
        jsonw_null(&w);
    else
        jsonw_int(&w, m.rounding_precision);
    jsonw_kv_cstr(&w, "expression", m.expression);
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

/* ---- evaluate_expression ------------------------------------------------------------------ */

/* The test event: Lago's `event` object (absent: an empty one), in the request's arena. */
static bool test_event(struct request *req, struct json_object *doc, struct event *e,
                       struct json_in_error *err)
{
    struct json_object *obj = NULL;
    memset(e, 0, sizeof *e);
    e->code = "";
    e->properties_json = "{}";
    if (!json_object_object_get_ex(doc, "event", &obj) || !obj)
        return true;
    if (!json_object_is_type(obj, json_type_object))
        return json_in_refuse(err, "event", "invalid_type");
    const char *code = NULL;
    if (json_in_string(obj, "code", EVENT_CODE_MAX, &req->arena, &code, err) == JSON_IN_INVALID ||
        !event_json_timestamp(obj, e, err) || !event_json_properties_of(&req->arena, obj, e, err))
        return false;
    if (code)
        e->code = code;
    return true;
}

void billable_metrics_evaluate_expression(struct request *req)
{
    const char *why, *text = NULL;
    struct json_object *doc = json_in_parse(req->body.data, req->body.len, &why);
    struct json_in_error err = {0};
    struct event e;
    struct expression *x = arena_alloc(&req->arena, sizeof *x);
    struct expression_scratch *scratch = arena_alloc(&req->arena, sizeof *scratch);
    char message[EXPRESSION_MESSAGE_MAX];
    struct expression_value v;
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        api_error_bad_request(req, doc ? "the body is not an object" : why);
    } else if (!x || !scratch) {
        api_error(req, 500, "out_of_memory", NULL);
    } else if (json_in_string(doc, "expression", EXPRESSION_TEXT_MAX, &req->arena, &text, &err) ==
                   JSON_IN_INVALID ||
               !test_event(req, doc, &e, &err)) {
        api_error_validation_message(req, err.field, err.code, err.message);
    } else if (is_blank(text)) {
        api_error_validation(req, "expression", "value_is_mandatory");
    } else if (expression_parse(text, strlen(text), x, message) != EXPRESSION_OK) {
        api_error_validation_message(req, "expression", "invalid_expression", message);
    } else if (!e.has_timestamp && !api_org_now(req, &e.timestamp)) {
        /* answered 500 */
    } else if (expression_evaluate(x, &e, e.timestamp, scratch, &v, message) != EXPRESSION_OK) {
        api_error_validation_message(req, "event", "invalid_event", message);
    } else {
        struct jsonw w;
        char number[MONEY_TEXT_MAX];
        const char *value;
        size_t len = expression_value_text(&v, number, &value); /* as an event's property */
        jsonw_init(&w, api_respond(req, 200));
        jsonw_object_begin(&w);
        jsonw_key(&w, "expression_result");
        jsonw_object_begin(&w);
        jsonw_key(&w, "value");
        jsonw_string(&w, value, len);
        jsonw_object_end(&w);
        jsonw_object_end(&w);
    }
    json_object_put(doc);
}
