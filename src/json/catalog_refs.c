/* json/catalog_refs: see catalog_refs.h. */
#include "json/catalog_refs.h"

#include <json-c/json.h>
#include <string.h>

#include "core/aggregation.h"
#include "json/json_build.h"

/* Replaces every `code` in the string array obj[key] by `replacement`, or removes it (NULL);
 * how many it changed. */
static size_t retarget_in(struct json_object *obj, const char *key, const char *code,
                          const char *replacement)
{
    struct json_object *codes;
    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &codes) ||
        !json_object_is_type(codes, json_type_array))
        return 0;
    size_t changed = 0;
    for (size_t i = json_object_array_length(codes); i-- > 0;) {
        const char *s = json_object_get_string(json_object_array_get_idx(codes, i));
        if (!s || strcmp(s, code) != 0)
            continue;
        if (replacement) {
            struct json_object *v = json_object_new_string(replacement);
            if (v && json_object_array_put_idx(codes, i, v) == 0)
                changed++;
            else
                json_object_put(v);
        } else if (json_object_array_del_idx(codes, i, 1) == 0) {
            changed++;
        }
    }
    return changed;
}

static enum catalog_refs_result finish(struct arena *a, struct json_object *doc, size_t changed,
                                       const char **out)
{
    enum catalog_refs_result r = CATALOG_REFS_UNCHANGED;
    if (changed > 0) {
        /* '/' unescaped, as Tally's own writer leaves it */
        const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
        *out = text ? arena_strndup(a, text, strlen(text)) : NULL;
        r = *out ? CATALOG_REFS_CHANGED : CATALOG_REFS_FAILED;
    }
    json_object_put(doc);
    return r;
}

enum catalog_refs_result catalog_refs_retarget_tax(struct arena *a, const char *body,
                                                   const char *code, const char *replacement,
                                                   const char **out)
{
    struct json_object *doc = body ? json_tokener_parse(body) : NULL, *v;
    if (!json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        return CATALOG_REFS_FAILED;
    }
    size_t changed = retarget_in(doc, "tax_codes", code, replacement);
    if (json_object_object_get_ex(doc, "minimum_commitment", &v))
        changed += retarget_in(v, "tax_codes", code, replacement);
    if (json_object_object_get_ex(doc, "charges", &v) && json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v); i++)
            changed += retarget_in(json_object_array_get_idx(v, i), "tax_codes", code, replacement);
    return finish(a, doc, changed, out);
}

enum catalog_refs_result catalog_refs_retarget_code(struct arena *a, const char *body,
                                                    const char *key, const char *code,
                                                    const char *replacement, const char **out)
{
    struct json_object *doc = body ? json_tokener_parse(body) : NULL;
    if (!json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        return CATALOG_REFS_FAILED;
    }
    return finish(a, doc, retarget_in(doc, key, code, replacement), out);
}

enum catalog_refs_result catalog_refs_retarget_wallet_metric(struct arena *a, const char *terms,
                                                             const char *code,
                                                             const char *replacement,
                                                             const char **out)
{
    struct json_object *doc = terms ? json_tokener_parse(terms) : NULL, *applies, *codes;
    if (!json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        return CATALOG_REFS_FAILED;
    }
    if (!json_object_object_get_ex(doc, "applies_to", &applies) ||
        !json_object_object_get_ex(applies, "billable_metric_codes", &codes) ||
        !json_object_is_type(codes, json_type_array)) {
        json_object_put(doc);
        return CATALOG_REFS_UNCHANGED;
    }
    bool listed = false;
    for (size_t i = 0; replacement && !listed && i < json_object_array_length(codes); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(codes, i));
        listed = s && strcmp(s, replacement) == 0;
    }
    size_t before = json_object_array_length(codes);
    size_t changed =
        retarget_in(applies, "billable_metric_codes", code, listed ? NULL : replacement);
    if (changed > 0 && before > 0 && json_object_array_length(codes) == 0) {
        struct json_build b;
        json_build_init(&b, applies);
        json_build_bool(&b, "limited_to_billable_metrics", true);
        if (json_build_failed(&b)) {
            json_object_put(doc);
            return CATALOG_REFS_FAILED;
        }
    }
    return finish(a, doc, changed, out);
}

enum catalog_refs_result catalog_refs_retarget_listed(struct arena *a, const char *list,
                                                      const char *code, const char *replacement,
                                                      const char **out)
{
    struct json_object *doc = json_object_new_object();
    struct json_object *codes = list ? json_tokener_parse(list) : NULL;
    if (!doc || !json_object_is_type(codes, json_type_array)) {
        json_object_put(codes);
        json_object_put(doc);
        return CATALOG_REFS_FAILED;
    }
    struct json_build b;
    json_build_init(&b, doc);
    json_build_take(&b, "codes", codes); /* taken by doc, or released */
    if (json_build_failed(&b)) {
        json_object_put(doc);
        return CATALOG_REFS_FAILED;
    }
    size_t changed = retarget_in(doc, "codes", code, replacement);
    if (changed > 0 && json_object_array_length(codes) == 0) {
        json_object_put(doc);
        *out = NULL;
        return CATALOG_REFS_CHANGED;
    }
    json_object_get(codes); /* finish writes and releases the array alone */
    json_object_put(doc);
    return finish(a, codes, changed, out);
}

/* Whether `declared` has `key` with `value` among its values (any value: value NULL). */
static bool declares(const struct billable_metric_filter *declared, size_t count, const char *key,
                     const char *value)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(declared[i].key, key) != 0)
            continue;
        if (!value)
            return true;
        for (size_t v = 0; v < declared[i].value_count; v++)
            if (strcmp(declared[i].values[v], value) == 0)
                return true;
        return false;
    }
    return false;
}

/* The first value of a charge filter's `values` object that `declared` does not hold. */
static bool undeclared_in(struct json_object *values, const struct billable_metric_filter *declared,
                          size_t count, const char **key, const char **value)
{
    if (!json_object_is_type(values, json_type_object))
        return false;
    json_object_object_foreach(values, k, list)
    {
        if (!json_object_is_type(list, json_type_array))
            continue;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            const char *v = json_object_get_string(json_object_array_get_idx(list, i));
            bool wildcard = v && strcmp(v, AGGREGATION_FILTER_WILDCARD) == 0;
            if (v && !declares(declared, count, k, wildcard ? NULL : v)) {
                *key = k;
                *value = v;
                return true;
            }
        }
    }
    return false;
}

int catalog_refs_charges_metric(const char *body, const char *metric_lago_id)
{
    struct json_object *doc = body ? json_tokener_parse(body) : NULL, *charges, *v;
    if (!json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        return -1;
    }
    int found = 0;
    if (json_object_object_get_ex(doc, "charges", &charges) &&
        json_object_is_type(charges, json_type_array))
        for (size_t i = 0; !found && i < json_object_array_length(charges); i++)
            found = json_object_object_get_ex(json_object_array_get_idx(charges, i),
                                              "billable_metric_id", &v) &&
                    json_object_is_type(v, json_type_string) &&
                    strcmp(json_object_get_string(v), metric_lago_id) == 0;
    json_object_put(doc);
    return found;
}

int catalog_refs_undeclared_filter(struct arena *a, const char *body, const char *metric_lago_id,
                                   const struct billable_metric_filter *declared,
                                   size_t declared_count, const char **key, const char **value)
{
    struct json_object *doc = body ? json_tokener_parse(body) : NULL, *charges, *v;
    if (!json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        return -1;
    }
    int found = 0;
    const char *k = NULL, *val = NULL;
    if (json_object_object_get_ex(doc, "charges", &charges) &&
        json_object_is_type(charges, json_type_array)) {
        for (size_t i = 0; !found && i < json_object_array_length(charges); i++) {
            struct json_object *charge = json_object_array_get_idx(charges, i), *filters;
            const char *metric = json_object_object_get_ex(charge, "billable_metric_id", &v)
                                     ? json_object_get_string(v)
                                     : NULL;
            if (!metric || strcmp(metric, metric_lago_id) != 0 ||
                !json_object_object_get_ex(charge, "filters", &filters) ||
                !json_object_is_type(filters, json_type_array))
                continue;
            for (size_t f = 0; !found && f < json_object_array_length(filters); f++)
                if (json_object_object_get_ex(json_object_array_get_idx(filters, f), "values",
                                              &v) &&
                    undeclared_in(v, declared, declared_count, &k, &val))
                    found = 1;
        }
    }
    if (found && (!(*key = arena_strndup(a, k, strlen(k))) ||
                  !(*value = arena_strndup(a, val, strlen(val)))))
        found = -1;
    json_object_put(doc);
    return found;
}
