/* json/event_json: see event_json.h. */
#include "json/event_json.h"

#include <json-c/json.h>
#include <string.h>

#include "core/subscription.h"
#include "json/event_plain.h"
#include "util/jsonw.h"

/*
 * json-c keeps no text for integers and clamps those past int64 silently: such a value
 * inside properties would be stored wrong. Refuse it instead (send it as a string).
 */
static bool integers_exact(struct json_object *v, int depth)
{
    if (depth > API_JSON_DEPTH_MAX)
        return false;
    switch (json_object_get_type(v)) {
    case json_type_int: {
        int64_t n;
        return json_in_exact_int64(v, &n);
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!integers_exact(json_object_array_get_idx(v, i), depth + 1))
                return false;
        return true;
    case json_type_object: {
        json_object_object_foreach(v, key, value)
        {
            (void)key;
            if (!integers_exact(value, depth + 1))
                return false;
        }
        return true;
    }
    default: return true;
    }
}

/* the limits the refusals' messages name */
_Static_assert(EVENT_PROPERTIES_MAX == 128 && EVENT_PROPERTY_KEY_MAX == 255 &&
                   EVENT_PROPERTY_VALUE_MAX == 4096,
               "the property limits' messages name them");

bool event_json_properties(struct arena *a, struct json_object *props, struct event *e,
                           struct json_in_error *err)
{
    if (!json_object_is_type(props, json_type_object))
        return json_in_refuse(err, "properties", "invalid_type");
    size_t n = (size_t)json_object_object_length(props);
    if (n > EVENT_PROPERTIES_MAX) {
        err->message = "properties holds at most 128 keys";
        return json_in_refuse(err, "properties", "too_many_items");
    }
    if (!integers_exact(props, 0))
        return json_in_refuse(err, "properties", "integer_out_of_range");
    struct event_property *pairs = arena_alloc(a, sizeof *pairs * (n ? n : 1));
    if (!pairs)
        return json_in_refuse(err, "properties", "out_of_memory");
    size_t i = 0;
    json_object_object_foreach(props, key, value)
    {
        bool is_string = json_object_is_type(value, json_type_string);
        const char *text = is_string
                               ? json_object_get_string(value)
                               : json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN);
        size_t len = strlen(text);
        if (strlen(key) > EVENT_PROPERTY_KEY_MAX || len > EVENT_PROPERTY_VALUE_MAX) {
            err->message = "a property's key is at most 255 bytes, and its value's JSON text "
                           "4096 bytes";
            return json_in_refuse(err, "properties", "value_is_too_long");
        }
        pairs[i].key = arena_strndup(a, key, strlen(key));
        pairs[i].value = value ? event_plain_value(a, text, len, is_string) : NULL;
        pairs[i].is_string = is_string;
        i++;
    }
    const char *text = json_object_to_json_string_ext(props, JSON_C_TO_STRING_PLAIN);
    e->properties = pairs;
    e->property_count = n;
    e->properties_json = arena_strndup(a, text, strlen(text));
    return e->properties_json != NULL || json_in_refuse(err, "properties", "out_of_memory");
}

bool event_json_set_property(struct arena *a, const struct event *in, const char *key,
                             const char *value, size_t len, struct event *out)
{
    size_t at = 0; /* keys are unique: json-c keeps one value a key, event_plain refuses repeats */
    while (at < in->property_count && strcmp(in->properties[at].key, key) != 0)
        at++;
    size_t count = in->property_count + (at == in->property_count);
    if (count > EVENT_PROPERTIES_MAX)
        return false;
    struct event_property *pairs = arena_alloc(a, sizeof *pairs * count);
    char *copy = arena_strndup(a, value, len);
    if (!pairs || !copy)
        return false;
    if (in->property_count > 0) /* (an event sent without properties has none: NULL) */
        memcpy(pairs, in->properties, sizeof *pairs * in->property_count);
    pairs[at] = (struct event_property){at < in->property_count ? pairs[at].key : key, copy, true};
    struct buf text;
    struct jsonw w;
    buf_init(&text);
    jsonw_init(&w, &text);
    jsonw_object_begin(&w);
    for (size_t i = 0; i < count; i++) {
        jsonw_key(&w, pairs[i].key);
        if (!pairs[i].value)
            jsonw_null(&w);
        else if (pairs[i].is_string)
            jsonw_string(&w, pairs[i].value, strlen(pairs[i].value));
        else
            jsonw_raw(&w, pairs[i].value);
    }
    jsonw_object_end(&w);
    *out = *in;
    out->properties = pairs;
    out->property_count = count;
    out->properties_json = text.failed ? NULL : arena_strndup(a, text.data, text.len);
    buf_free(&text);
    return out->properties_json != NULL;
}

bool event_json_properties_text(struct arena *a, const char *json, struct event *e)
{
    /* what the store keeps is canonical and nearly always plain: no json-c tree for it */
    if (event_plain_properties(json, strlen(json), a, e))
        return true;
    struct json_object *props = json_tokener_parse(json);
    struct json_in_error err;
    bool ok = props && event_json_properties(a, props, e, &err);
    json_object_put(props);
    return ok;
}

bool event_json_precise_text(const char *text, struct event *e)
{
    e->has_precise_total_amount_cents = text != NULL;
    if (!text) {
        e->precise_total_amount_cents = MONEY_ZERO;
        return true;
    }
    return money_parse(text, strlen(text), &e->precise_total_amount_cents) == MONEY_OK;
}

bool event_json_properties_of(struct arena *a, struct json_object *event, struct event *e,
                              struct json_in_error *err)
{
    struct json_object *props;
    e->properties_json = "{}";
    if (!json_object_object_get_ex(event, "properties", &props) || !props)
        return true;
    return event_json_properties(a, props, e, err);
}

bool event_json_timestamp(struct json_object *event, struct event *e, struct json_in_error *err)
{
    struct json_object *v;
    if (!json_object_object_get_ex(event, "timestamp", &v) || !v)
        return true;
    const char *text;
    int64_t n;
    switch (json_object_get_type(v)) {
    case json_type_int:
        if (!json_in_exact_int64(v, &n) || n < TIMESTAMP_MIN / TIMESTAMP_USEC_PER_SEC ||
            n > EVENT_TIMESTAMP_MAX / TIMESTAMP_USEC_PER_SEC)
            return json_in_refuse(err, "timestamp", "invalid_format");
        e->timestamp = n * TIMESTAMP_USEC_PER_SEC;
        e->has_timestamp = true;
        return true;
    case json_type_double: /* the source text, never the double */
    case json_type_string:
        text = json_object_get_string(v);
        if (!event_parse_timestamp(text, strlen(text), &e->timestamp))
            return json_in_refuse(err, "timestamp", "invalid_format");
        e->has_timestamp = true;
        return true;
    case json_type_boolean: /* false is none, as Lago's `params[:timestamp] ? ... : now` */
        return !json_object_get_boolean(v) || json_in_refuse(err, "timestamp", "invalid_format");
    default: return json_in_refuse(err, "timestamp", "invalid_format");
    }
}

bool event_json_event(struct arena *a, struct json_object *obj, struct event *e,
                      struct json_in_error *err)
{
    memset(e, 0, sizeof *e);
    if (!json_object_is_type(obj, json_type_object))
        return json_in_refuse(err, "event", "invalid_type");
    /* blank ids are value_is_mandatory, as Lago's `blank?` (json_in_blank) */
    return json_in_required_id(obj, "transaction_id", EVENT_TRANSACTION_ID_MAX, a,
                               &e->transaction_id, err) &&
           json_in_required_id(obj, "external_subscription_id", SUBSCRIPTION_EXTERNAL_ID_MAX, a,
                               &e->external_subscription_id, err) &&
           json_in_required_string(obj, "code", EVENT_CODE_MAX, a, &e->code, err) &&
           event_json_timestamp(obj, e, err) && event_json_properties_of(a, obj, e, err) &&
           event_json_precise(obj, e, err);
}

/*
 * A string as Lago's decimal column casts it (event_parse_precise_amount: every form String#to_d
 * reads in full; an audit found "+7", ".5", "5." and "1_0" refused), a blank one as nil (Rails'
 * numeric cast takes `value.presence`); a number from its text.
 */
bool event_json_precise(struct json_object *event, struct event *e, struct json_in_error *err)
{
    static const char key[] = "precise_total_amount_cents";
    struct json_object *v;
    enum json_in_result amount;
    if (json_object_object_get_ex(event, key, &v) && json_object_is_type(v, json_type_string)) {
        const char *text = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        amount = json_in_blank(text, len) ? JSON_IN_NULL
                 : event_parse_precise_amount(text, len, &e->precise_total_amount_cents)
                     ? JSON_IN_VALUE
                     : (json_in_refuse(err, key, "invalid_value"), JSON_IN_INVALID);
    } else {
        amount = json_in_decimal(event, key, &e->precise_total_amount_cents, err);
    }
    if (amount == JSON_IN_INVALID)
        return false;
    e->has_precise_total_amount_cents = amount == JSON_IN_VALUE;
    e->precise_total_amount_cents = e->has_precise_total_amount_cents
                                        ? event_precise_amount(e->precise_total_amount_cents)
                                        : MONEY_ZERO;
    return true;
}
