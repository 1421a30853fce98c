/*
 * json/charge_json: a charge model's properties, from JSON to core/charge_model's structs.
 * The API reads a client's properties with it (writing them back canonically), and the engine
 * reads stored plans with it: one reader, so what was validated is what is priced.
 */
#include "json/charge_json.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "core/aggregation.h"

static void write_decimal(struct jsonw *w, const char *key, money_t v, bool as_string)
{
    char text[MONEY_TEXT_MAX];
    money_format(money_normalize(v), text, sizeof text);
    jsonw_key(w, key);
    if (as_string)
        jsonw_cstr(w, text);
    else
        jsonw_raw(w, text);
}

/*
 * An amount in the properties: a decimal (string or number). Absent or malformed is the
 * model's code, as Lago's decimal check reports it. *present says whether it was given.
 */
static bool read_amount(struct json_object *props, const char *key, const char *code, bool required,
                        money_t *out, bool *present, struct json_in_error *err)
{
    struct json_in_error ignored;
    enum json_in_result r = json_in_decimal(props, key, out, &ignored);
    if (r == JSON_IN_INVALID || (required && r != JSON_IN_VALUE))
        return json_in_refuse(err, "properties", code);
    if (present)
        *present = r == JSON_IN_VALUE;
    return true;
}

static bool read_count(struct json_object *props, const char *key, const char *code, int64_t min,
                       bool required, int64_t *out, bool *present, struct json_in_error *err)
{
    struct json_in_error ignored;
    enum json_in_result r = json_in_int(props, key, min, INT64_MAX - 1, out, &ignored);
    if (r == JSON_IN_INVALID || (required && r != JSON_IN_VALUE))
        return json_in_refuse(err, "properties", code);
    if (present)
        *present = r == JSON_IN_VALUE;
    return true;
}

/* Each tiered model's list key and Lago's codes for a missing or malformed list. */
struct ranges_names {
    const char *key, *missing, *invalid;
};

static struct ranges_names ranges_names(enum charge_model_kind kind)
{
    switch (kind) {
    case CHARGE_MODEL_GRADUATED:
        return (struct ranges_names){"graduated_ranges", "missing_graduated_ranges",
                                     "invalid_graduated_ranges"};
    case CHARGE_MODEL_GRADUATED_PERCENTAGE:
        return (struct ranges_names){"graduated_percentage_ranges",
                                     "missing_graduated_percentage_ranges",
                                     "invalid_graduated_percentage_ranges"};
    default:
        return (struct ranges_names){"volume_ranges", "missing_volume_ranges",
                                     "invalid_volume_ranges"};
    }
}

static bool parse_ranges(struct arena *a, struct json_object *props, enum charge_model_kind kind,
                         struct charge_model_properties *p, struct jsonw *w,
                         struct json_in_error *err)
{
    struct ranges_names names = ranges_names(kind);
    const char *key = names.key, *invalid_code = names.invalid;
    bool percentage = kind == CHARGE_MODEL_GRADUATED_PERCENTAGE;
    struct json_object *list;
    if (!json_object_object_get_ex(props, key, &list) || !list)
        return json_in_refuse(err, "properties", names.missing);
    if (!json_object_is_type(list, json_type_array) ||
        json_object_array_length(list) > CHARGE_MODEL_RANGES_MAX)
        return json_in_refuse(err, "properties", invalid_code);
    size_t n = json_object_array_length(list);
    struct charge_model_range *ranges = arena_alloc(a, sizeof *ranges * (n ? n : 1));
    if (!ranges)
        return json_in_refuse(err, "properties", "out_of_memory");
    jsonw_key(w, key);
    jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        struct json_object *r = json_object_array_get_idx(list, i);
        struct charge_model_range *g = &ranges[i];
        struct json_in_error ignored;
        if (!json_object_is_type(r, json_type_object) ||
            json_in_decimal(r, "from_value", &g->from_value, &ignored) != JSON_IN_VALUE)
            return json_in_refuse(err, "properties", invalid_code);
        enum json_in_result to = json_in_decimal(r, "to_value", &g->to_value, &ignored);
        if (to == JSON_IN_INVALID)
            return json_in_refuse(err, "properties", invalid_code);
        g->has_to_value = to == JSON_IN_VALUE;
        if (!read_amount(r, percentage ? "rate" : "per_unit_amount",
                         percentage ? "invalid_rate" : "invalid_amount", true,
                         percentage ? &g->rate : &g->per_unit_amount, NULL, err) ||
            !read_amount(r, "flat_amount", "invalid_amount", true, &g->flat_amount, NULL, err))
            return false;
        jsonw_object_begin(w);
        write_decimal(w, "from_value", g->from_value, false);
        if (g->has_to_value)
            write_decimal(w, "to_value", g->to_value, false);
        else
            jsonw_kv_null(w, "to_value");
        if (percentage)
            write_decimal(w, "rate", g->rate, true);
        else
            write_decimal(w, "per_unit_amount", g->per_unit_amount, true);
        write_decimal(w, "flat_amount", g->flat_amount, true);
        jsonw_object_end(w);
    }
    jsonw_array_end(w);
    p->ranges.items = ranges;
    p->ranges.count = n;
    return true;
}

static bool parse_percentage(struct json_object *props, struct charge_model_percentage *pc,
                             struct jsonw *w, struct json_in_error *err)
{
    if (!read_amount(props, "rate", "invalid_rate", true, &pc->rate, NULL, err) ||
        !read_amount(props, "fixed_amount", "invalid_fixed_amount", false, &pc->fixed_amount,
                     &pc->has_fixed_amount, err) ||
        !read_count(props, "free_units_per_events", "invalid_free_units_per_events", 1, false,
                    &pc->free_units_per_events, &pc->has_free_units_per_events, err) ||
        !read_amount(props, "free_units_per_total_aggregation",
                     "invalid_free_units_per_total_aggregation", false,
                     &pc->free_units_per_total_aggregation,
                     &pc->has_free_units_per_total_aggregation, err) ||
        !read_amount(props, "per_transaction_min_amount", "invalid_amount", false,
                     &pc->per_transaction_min_amount, &pc->has_per_transaction_min_amount, err) ||
        !read_amount(props, "per_transaction_max_amount", "invalid_amount", false,
                     &pc->per_transaction_max_amount, &pc->has_per_transaction_max_amount, err))
        return false;
    write_decimal(w, "rate", pc->rate, true);
    if (pc->has_fixed_amount)
        write_decimal(w, "fixed_amount", pc->fixed_amount, true);
    if (pc->has_free_units_per_events)
        jsonw_kv_int(w, "free_units_per_events", pc->free_units_per_events);
    if (pc->has_free_units_per_total_aggregation)
        write_decimal(w, "free_units_per_total_aggregation", pc->free_units_per_total_aggregation,
                      true);
    if (pc->has_per_transaction_min_amount)
        write_decimal(w, "per_transaction_min_amount", pc->per_transaction_min_amount, true);
    if (pc->has_per_transaction_max_amount)
        write_decimal(w, "per_transaction_max_amount", pc->per_transaction_max_amount, true);
    return true;
}

/*
 * presentation_group_keys: how an invoice presents a charge's fees, kept with its properties
 * for any model when present, as Lago's FilterProperties::BaseService slices it. Tally prices
 * nothing by it (it issues no usage invoice): kept and answered as sent, an array of strings
 * bounded as the group keys are, else invalid_type; blank (null, [], "") is none. An audit
 * found it dropped in silence.
 */
static bool read_presentation_keys(struct json_object *props, struct jsonw *w,
                                   struct json_in_error *err)
{
    static const char name[] = "presentation_group_keys";
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(props, name, &v) || json_in_value_blank(v))
        return true;
    if (!json_object_is_type(v, json_type_array))
        return json_in_refuse(err, name, "invalid_type");
    size_t n = json_object_array_length(v);
    if (n > CHARGE_GROUP_KEYS_MAX)
        return json_in_refuse(err, name, "too_many_group_keys");
    for (size_t i = 0; i < n; i++) {
        struct json_object *k = json_object_array_get_idx(v, i);
        if (!json_object_is_type(k, json_type_string))
            return json_in_refuse(err, name, "invalid_type");
        if ((size_t)json_object_get_string_len(k) > CHARGE_GROUP_KEY_LEN_MAX)
            return json_in_refuse(err, name, "value_is_too_long");
    }
    jsonw_key(w, name);
    jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        jsonw_cstr(w, json_object_get_string(json_object_array_get_idx(v, i)));
    jsonw_array_end(w);
    return true;
}

/*
 * The group keys, as Lago's ChargeModels::FilterProperties::BaseService#slice_properties
 * takes them before anything checks them: pricing_group_keys, or its older name grouped_by
 * when pricing_group_keys is blank (absent, null, [], "", {}: `.blank?`, so [] with grouped_by
 * groups by grouped_by: an audit found it priced ungrouped; both blank is no grouping, as Lago
 * then keeps neither), then without its empty strings
 * (`reject(&:empty?)`: ["region", ""] is ["region"], [""] groups nothing; the fallback is
 * decided first, so [""] with grouped_by groups nothing, as in Lago). What is left is checked
 * as Lago's Charges::Validators::BaseService does: an array of strings none blank, or
 * invalid_type on the name given. Tally also bounds them (CHARGE_GROUP_KEYS_MAX keys of
 * CHARGE_GROUP_KEY_LEN_MAX bytes) and refuses a key named twice, which would give a group's
 * grouped_by object the same member twice. Written back under the name given; when the keys
 * come from grouped_by and pricing_group_keys was sent too (blank), under both, as Lago
 * stores them as pricing_group_keys and answers both names. An empty list writes nothing.
 */
static bool read_group_keys(struct arena *a, struct json_object *props,
                            struct charge_model_properties *p, struct jsonw *w,
                            struct json_in_error *err)
{
    struct json_object *pricing = NULL, *grouped = NULL, *v;
    bool sent_pricing = json_object_object_get_ex(props, "pricing_group_keys", &pricing);
    json_object_object_get_ex(props, "grouped_by", &grouped);
    const char *name;
    if (!json_in_value_blank(pricing)) {
        name = "pricing_group_keys";
        v = pricing;
    } else if (!json_in_value_blank(grouped)) {
        name = "grouped_by";
        v = grouped;
    } else {
        return true; /* both blank ("" and {} too): Lago keeps neither */
    }
    if (!json_object_is_type(v, json_type_array))
        return json_in_refuse(err, name, "invalid_type");
    size_t n = json_object_array_length(v), kept = 0;
    const char **keys = arena_alloc(a, sizeof *keys * CHARGE_GROUP_KEYS_MAX); /* the arena's */
    if (!keys)
        return json_in_refuse(err, "properties", "out_of_memory");
    for (size_t i = 0; i < n; i++) {
        struct json_object *k = json_object_array_get_idx(v, i);
        if (!json_object_is_type(k, json_type_string))
            return json_in_refuse(err, name, "invalid_type");
        size_t len = (size_t)json_object_get_string_len(k);
        if (len == 0)
            continue; /* Lago's reject(&:empty?) */
        if (json_in_blank(json_object_get_string(k), len))
            return json_in_refuse(err, name, "invalid_type"); /* not present? */
        if (len > CHARGE_GROUP_KEY_LEN_MAX)
            return json_in_refuse(err, name, "value_is_too_long");
        const char *key = arena_strndup(a, json_object_get_string(k), len);
        if (!key)
            return json_in_refuse(err, "properties", "out_of_memory");
        for (size_t j = 0; j < kept; j++)
            if (strcmp(keys[j], key) == 0)
                return json_in_refuse(err, name, "value_is_duplicated");
        if (kept == CHARGE_GROUP_KEYS_MAX)
            return json_in_refuse(err, name, "too_many_group_keys");
        keys[kept++] = key;
    }
    if (kept == 0)
        return true;
    p->group_keys = keys;
    p->group_key_count = kept;
    bool both = v == grouped && sent_pricing;
    for (int pass = both ? 0 : 1; pass < 2; pass++) {
        jsonw_key(w, pass == 0 ? "pricing_group_keys" : name);
        jsonw_array_begin(w);
        for (size_t i = 0; i < kept; i++)
            jsonw_cstr(w, keys[i]);
        jsonw_array_end(w);
    }
    return true;
}

const char *charge_json_default_properties(enum charge_model_kind kind)
{
    switch (kind) {
    case CHARGE_MODEL_STANDARD: return "{\"amount\":\"0\"}";
    case CHARGE_MODEL_GRADUATED:
        return "{\"graduated_ranges\":[{\"from_value\":0,\"to_value\":null,"
               "\"per_unit_amount\":\"0\",\"flat_amount\":\"0\"}]}";
    case CHARGE_MODEL_PACKAGE: return "{\"package_size\":1,\"amount\":\"0\",\"free_units\":0}";
    case CHARGE_MODEL_PERCENTAGE: return "{\"rate\":\"0\"}";
    case CHARGE_MODEL_VOLUME:
        return "{\"volume_ranges\":[{\"from_value\":0,\"to_value\":null,"
               "\"per_unit_amount\":\"0\",\"flat_amount\":\"0\"}]}";
    /* Lago's range also has fixed_amount "0", which no graduated_percentage price reads and
     * Tally's ranges do not keep */
    case CHARGE_MODEL_GRADUATED_PERCENTAGE:
        return "{\"graduated_percentage_ranges\":[{\"from_value\":0,\"to_value\":null,"
               "\"rate\":\"0\",\"flat_amount\":\"0\"}]}";
    case CHARGE_MODEL_DYNAMIC: return "{}";
    case CHARGE_MODEL_KIND_COUNT: break;
    }
    return NULL;
}

bool charge_json_properties(struct arena *a, struct json_object *props, enum charge_model_kind kind,
                            struct charge_model_properties *p, struct jsonw *w,
                            struct json_in_error *err)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    /* dynamic prices from the events: Lago takes it with properties {} or none */
    if (kind == CHARGE_MODEL_DYNAMIC && !props) {
        jsonw_object_begin(w);
        jsonw_object_end(w);
        return true;
    }
    if (!props || !json_object_is_type(props, json_type_object))
        return json_in_refuse(err, "properties", props ? "invalid_type" : "value_is_mandatory");
    jsonw_object_begin(w);
    bool ok = true;
    switch (kind) {
    case CHARGE_MODEL_STANDARD:
        ok = read_amount(props, "amount", "invalid_amount", true, &p->standard.amount, NULL, err);
        if (ok)
            write_decimal(w, "amount", p->standard.amount, true);
        break;
    case CHARGE_MODEL_PACKAGE:
        ok = read_amount(props, "amount", "invalid_amount", true, &p->package.amount, NULL, err) &&
             read_count(props, "package_size", "invalid_package_size", 1, true,
                        &p->package.package_size, NULL, err) &&
             read_count(props, "free_units", "invalid_free_units", 0, false, &p->package.free_units,
                        NULL, err);
        if (ok) {
            write_decimal(w, "amount", p->package.amount, true);
            jsonw_kv_int(w, "package_size", p->package.package_size);
            jsonw_kv_int(w, "free_units", p->package.free_units);
        }
        break;
    case CHARGE_MODEL_PERCENTAGE: ok = parse_percentage(props, &p->percentage, w, err); break;
    case CHARGE_MODEL_GRADUATED:
    case CHARGE_MODEL_GRADUATED_PERCENTAGE:
    case CHARGE_MODEL_VOLUME: ok = parse_ranges(a, props, kind, p, w, err); break;
    case CHARGE_MODEL_DYNAMIC: break; /* no properties of its own */
    case CHARGE_MODEL_KIND_COUNT:
        ok = json_in_refuse(err, "charge_model", "value_is_invalid");
        break;
    }
    ok = ok && read_group_keys(a, props, p, w, err) && read_presentation_keys(props, w, err);
    jsonw_object_end(w);
    if (!ok)
        return false;
    struct charge_model_error first;
    if (charge_model_validate(p, &first, 1) > 0)
        return json_in_refuse(err, "properties", first.code);
    return true;
}

static int compare_keys(const void *pa, const void *pb)
{
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* Keys a filter names at most: a metric's filters' keys, far fewer in practice. */
#define FILTER_KEYS_MAX 64

bool charge_json_filter_id(const char *charge_lago_id, const char *values_json, char out[UUID_TEXT])
{
    struct json_object *values = json_tokener_parse(values_json);
    const char *keys[FILTER_KEYS_MAX];
    size_t n = 0;
    bool ok = values && json_object_is_type(values, json_type_object) &&
              (size_t)json_object_object_length(values) <= FILTER_KEYS_MAX;
    if (ok) {
        json_object_object_foreach(values, key, unused)
        {
            (void)unused;
            keys[n++] = key;
        }
        qsort(keys, n, sizeof *keys, compare_keys);
    }
    /* the values with their keys sorted, written canonically: the same filter, the same text */
    struct buf text;
    struct jsonw w;
    buf_init(&text);
    jsonw_init(&w, &text);
    jsonw_object_begin(&w);
    for (size_t i = 0; ok && i < n; i++) {
        struct json_object *listed = NULL;
        json_object_object_get_ex(values, keys[i], &listed);
        if (!json_object_is_type(listed, json_type_array)) {
            ok = false;
            break;
        }
        jsonw_key(&w, keys[i]);
        jsonw_array_begin(&w);
        for (size_t k = 0; k < json_object_array_length(listed); k++)
            jsonw_cstr(&w, json_object_get_string(json_object_array_get_idx(listed, k)));
        jsonw_array_end(&w);
    }
    jsonw_object_end(&w);
    ok = ok && !buf_failed(&text);
    if (ok) {
        static const char label[] = "tally charge filter\n";
        const void *parts[] = {label, charge_lago_id, "\n", text.data};
        const size_t lens[] = {sizeof label - 1, strlen(charge_lago_id), 1, text.len};
        digest_uuid(parts, lens, 4, out);
    }
    buf_free(&text);
    json_object_put(values);
    return ok;
}

const char *charge_json_filter_display_name(struct arena *a, const char *invoice_display_name,
                                            const char *values_json)
{
    if (invoice_display_name && *invoice_display_name)
        return invoice_display_name;
    struct json_object *values = json_tokener_parse(values_json);
    bool ok = values && json_object_is_type(values, json_type_object);
    struct buf text;
    buf_init(&text);
    if (ok) {
        json_object_object_foreach(values, key, listed)
        {
            if (!json_object_is_type(listed, json_type_array)) {
                ok = false;
                break;
            }
            size_t n = json_object_array_length(listed);
            const char *first =
                n ? json_object_get_string(json_object_array_get_idx(listed, 0)) : "";
            if (n == 1 && strcmp(first, AGGREGATION_FILTER_WILDCARD) == 0) {
                buf_append_str(&text, text.len ? ", " : "");
                buf_append_str(&text, key);
                continue;
            }
            for (size_t k = 0; k < n; k++) {
                buf_append_str(&text, text.len ? ", " : "");
                buf_append_str(&text, json_object_get_string(json_object_array_get_idx(listed, k)));
            }
        }
    }
    const char *name =
        ok && !buf_failed(&text) ? arena_strndup(a, text.data ? text.data : "", text.len) : NULL;
    buf_free(&text);
    json_object_put(values);
    return name;
}
