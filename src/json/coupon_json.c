/* json/coupon_json: see coupon_json.h. */
#include "json/coupon_json.h"

#include <json-c/json.h>

#include "json/json_build.h"

/* The instant a member of the body holds, if it is a timestamp. */
static bool member_time(struct json_object *doc, const char *key, tally_time *out)
{
    struct json_object *v;
    return json_object_object_get_ex(doc, key, &v) && json_object_is_type(v, json_type_string) &&
           timestamp_parse_iso8601(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                                   out);
}

bool coupon_json_ended(const char *body, tally_time now, tally_time *at)
{
    struct json_object *doc = body ? json_tokener_parse(body) : NULL;
    bool ended = false;
    if (json_object_is_type(doc, json_type_object))
        ended = member_time(doc, "terminated_at", at) ||
                (member_time(doc, "expiration_at", at) && *at <= now);
    json_object_put(doc);
    return ended;
}

const char *coupon_json_set_ended(struct arena *a, const char *body, tally_time at)
{
    struct json_object *doc = body ? json_tokener_parse(body) : NULL;
    const char *out = NULL;
    char text[TIMESTAMP_TEXT_MAX];
    timestamp_format(at, false, text);
    if (json_object_is_type(doc, json_type_object)) {
        struct json_build b;
        json_build_init(&b, doc);
        json_build_string(&b, "terminated_at", text);
        /* '/' unescaped, as Tally's own writer leaves it */
        out = json_build_text(&b, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, a);
    }
    json_object_put(doc);
    return out;
}
