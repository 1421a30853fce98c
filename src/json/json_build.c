/* json/json_build: see json_build.h. */
#include "json/json_build.h"

#include <json-c/json.h>
#include <string.h>

void json_build_init(struct json_build *b, struct json_object *obj)
{
    b->obj = obj;
    b->failed = obj == NULL;
}

/* Sets obj[key] to `v`, whose one reference is the builder's to give: NULL is JSON null here,
 * the callers having told a failed making apart. json-c keeps no value it could not add (the
 * key's copy or the table's growth failed), so that reference is released then. */
static void set(struct json_build *b, const char *key, struct json_object *v)
{
    if (b->failed || json_object_object_add(b->obj, key, v) != 0) {
        json_object_put(v);
        b->failed = true;
    }
}

void json_build_take(struct json_build *b, const char *key, struct json_object *v)
{
    if (!v)
        b->failed = true;
    else
        set(b, key, v);
}

void json_build_share(struct json_build *b, const char *key, struct json_object *v)
{
    set(b, key, json_object_get(v)); /* json_object_get(NULL) is NULL: the null member */
}

void json_build_string(struct json_build *b, const char *key, const char *s)
{
    if (!s)
        b->failed = true;
    else if (!b->failed)
        json_build_take(b, key, json_object_new_string(s));
}

void json_build_string_or_null(struct json_build *b, const char *key, const char *s)
{
    if (s)
        json_build_string(b, key, s);
    else
        set(b, key, NULL);
}

void json_build_bool(struct json_build *b, const char *key, bool v)
{
    if (!b->failed)
        json_build_take(b, key, json_object_new_boolean(v));
}

void json_build_int64(struct json_build *b, const char *key, int64_t v)
{
    if (!b->failed)
        json_build_take(b, key, json_object_new_int64(v));
}

void json_build_null(struct json_build *b, const char *key)
{
    set(b, key, NULL);
}

bool json_build_failed(const struct json_build *b)
{
    return b->failed;
}

const char *json_build_text(const struct json_build *b, int flags, struct arena *a)
{
    const char *text = b->failed ? NULL : json_object_to_json_string_ext(b->obj, flags);
    return text ? arena_strndup(a, text, strlen(text)) : NULL;
}
