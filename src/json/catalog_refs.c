/* json/catalog_refs: see catalog_refs.h. */
#include "json/catalog_refs.h"

#include <json-c/json.h>
#include <string.h>

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
    json_object_object_add(doc, "codes", codes); /* taken by doc */
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
