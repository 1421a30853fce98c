/* json/json_in: see json_in.h. */
#include "json/json_in.h"

#include <json-c/json.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/money.h"
#include "json/json_build.h"
#include "json/json_check.h"
#include "util/utf8.h"

bool json_in_has_nul_escape(const char *text, size_t len)
{
    static const char escape[] = "u0000";
    const size_t n = sizeof escape - 1;
    for (const char *p = text; text && len >= n + 1 && p <= text + len - n;) {
        const char *u = memmem(p, (size_t)(text + len - p), escape, n);
        if (!u)
            return false;
        size_t backslashes = 0; /* an odd run escapes the u; an even one is escaped itself */
        while (u - backslashes > text && u[-(ptrdiff_t)backslashes - 1] == '\\')
            backslashes++;
        if (backslashes % 2 == 1)
            return true;
        p = u + 1;
    }
    return false;
}

struct json_object *json_in_parse(const char *body, size_t len, const char **why)
{
    if (len == 0) {
        *why = "the request body is empty";
        return NULL;
    }
    if (len > INT32_MAX) {
        *why = "the request body is too large";
        return NULL;
    }
    if (!utf8_valid(body, len)) { /* before json-c, whose own check lets overlong forms by */
        *why = "the body is not valid UTF-8";
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new_ex(API_JSON_DEPTH_MAX);
    if (!tok) {
        *why = "out of memory";
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr == json_tokener_error_depth) {
        json_object_put(root);
        *why = "the JSON body nests deeper than 32 levels";
        return NULL;
    }
    if (jerr != json_tokener_success || !root) {
        json_object_put(root);
        *why = jerr == json_tokener_continue ? "the JSON body is incomplete"
                                             : "the body is not valid JSON";
        return NULL;
    }
    /* Whitespace may follow the value; anything else is a second value or garbage. */
    for (; used < len; used++) {
        char c = body[used];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            json_object_put(root);
            *why = "the body holds more than one JSON value";
            return NULL;
        }
    }
    if (!json_check(body, len, why)) { /* what json-c lets through that JSON does not */
        json_object_put(root);
        return NULL;
    }
    return root;
}

bool json_in_merge(struct json_object *stored, struct json_object *sent)
{
    if (!json_object_is_type(stored, json_type_object) ||
        !json_object_is_type(sent, json_type_object))
        return false;
    struct json_build b;
    json_build_init(&b, stored);
    json_object_object_foreach(sent, key, value)
    {
        json_build_share(&b, key, value);
    }
    return !json_build_failed(&b);
}

const char *json_in_merge_text(struct arena *a, const char *stored, const char *sent)
{
    struct json_object *into = json_tokener_parse(stored), *over = json_tokener_parse(sent);
    const char *out = NULL;
    if (json_in_merge(into, over)) {
        /* '/' unescaped, as Tally's own writer leaves it */
        const char *text = json_object_to_json_string_ext(into, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        out = text ? arena_strndup(a, text, strlen(text)) : NULL;
    }
    json_object_put(into);
    json_object_put(over);
    return out;
}

struct json_object *json_in_root(struct json_object *root, const char *key)
{
    struct json_object *v;
    if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, key, &v) ||
        !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

bool json_in_exact_int64(struct json_object *v, int64_t *out)
{
    int64_t n = json_object_get_int64(v);
    if (n == INT64_MIN || (n == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX))
        return false;
    *out = n;
    return true;
}

bool json_in_stored_int(struct json_object *v, int64_t *out)
{
    return json_object_is_type(v, json_type_int) && json_in_exact_int64(v, out);
}

static enum json_in_result lookup(struct json_object *obj, const char *key, struct json_object **v)
{
    if (!json_object_object_get_ex(obj, key, v))
        return JSON_IN_ABSENT;
    return *v ? JSON_IN_VALUE : JSON_IN_NULL;
}

bool json_in_refuse(struct json_in_error *err, const char *field, const char *code)
{
    err->field = field;
    err->code = code;
    return false;
}

bool json_in_refuse_unserved(struct json_object *obj, const char *const *keys,
                             struct json_in_error *err)
{
    for (size_t i = 0; keys[i]; i++) {
        struct json_object *v;
        if (!json_object_object_get_ex(obj, keys[i], &v) || !v)
            continue;
        if (json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0)
            continue;
        return json_in_refuse(err, keys[i], "not_supported");
    }
    return true;
}

static enum json_in_result refuse(struct json_in_error *err, const char *field, const char *code)
{
    err->field = field;
    err->code = code;
    return JSON_IN_INVALID;
}

enum json_in_result json_in_string(struct json_object *obj, const char *key, size_t max_len,
                                   struct arena *a, const char **out, struct json_in_error *err)
{
    struct json_object *v;
    enum json_in_result r = lookup(obj, key, &v);
    if (r == JSON_IN_NULL)
        *out = NULL;
    if (r != JSON_IN_VALUE)
        return r;
    if (!json_object_is_type(v, json_type_string))
        return refuse(err, key, "invalid_type");
    size_t len = (size_t)json_object_get_string_len(v);
    if (len > max_len)
        return refuse(err, key, "value_is_too_long");
    const char *s = json_object_get_string(v);
    if (memchr(s, '\0', len))
        return refuse(err, key, "invalid_value"); /* "\u0000" would truncate the C string */
    *out = arena_strndup(a, s, len);
    return *out ? JSON_IN_VALUE : refuse(err, key, "out_of_memory");
}

/* Bytes of the Unicode white space (White_Space=yes, what Ruby's [[:space:]] matches) that
 * s starts with (at most len bytes), or 0. */
static size_t white_space_at(const unsigned char *s, size_t len)
{
    if (s[0] != '\0' && strchr(" \t\n\v\f\r", s[0]))
        return 1;
    if (len >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) /* NEL, NBSP */
        return 2;
    if (len < 3)
        return 0;
    if ((s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) || /* U+1680 */
        (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80))   /* U+3000 */
        return 3;
    if (s[0] == 0xe2 && s[1] == 0x80 &&
        (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 ||
         s[2] == 0xaf)) /* U+2000-200A, U+2028, 2029, 202F */
        return s[2] >= 0x80 ? 3 : 0;
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) /* U+205F */
        return 3;
    return 0;
}

bool json_in_blank(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0, n; i < len; i += n)
        if ((n = white_space_at(p + i, len - i)) == 0)
            return false;
    return true;
}

bool json_in_value_blank(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return true;
    case json_type_boolean: return !json_object_get_boolean(v);
    case json_type_array: return json_object_array_length(v) == 0;
    case json_type_object: return json_object_object_length(v) == 0;
    case json_type_string:
        return json_in_blank(json_object_get_string(v), (size_t)json_object_get_string_len(v));
    default: return false;
    }
}

const char *json_in_strip(struct arena *a, const char *s)
{
    size_t len = strlen(s), from = 0;
    while (from < len && white_space_at((const unsigned char *)s + from, 1) == 1)
        from++;
    while (len > from && white_space_at((const unsigned char *)s + len - 1, 1) == 1)
        len--;
    return from == 0 && s[len] == '\0' ? s : arena_strndup(a, s + from, len - from);
}

/* What a required text's reading `r` means: absent, null or blank is value_is_mandatory. */
static bool required(enum json_in_result r, const char *key, const char *const *out,
                     struct json_in_error *err)
{
    if (r == JSON_IN_INVALID)
        return false;
    if (r != JSON_IN_VALUE || json_in_blank(*out, strlen(*out)))
        return json_in_refuse(err, key, "value_is_mandatory");
    return true;
}

bool json_in_required_string(struct json_object *obj, const char *key, size_t max_len,
                             struct arena *a, const char **out, struct json_in_error *err)
{
    return required(json_in_string(obj, key, max_len, a, out, err), key, out, err);
}

enum json_in_result json_in_id(struct json_object *obj, const char *key, size_t max_len,
                               struct arena *a, const char **out, struct json_in_error *err)
{
    struct json_object *v;
    if (lookup(obj, key, &v) != JSON_IN_VALUE || !json_object_is_type(v, json_type_int))
        return json_in_string(obj, key, max_len, a, out, err);
    int64_t n;
    char text[24]; /* INT64_MIN's 20 characters */
    if (!json_in_exact_int64(v, &n))
        return refuse(err, key, "value_is_out_of_range");
    int len = snprintf(text, sizeof text, "%" PRId64, n);
    if ((size_t)len > max_len)
        return refuse(err, key, "value_is_too_long");
    *out = arena_strndup(a, text, (size_t)len);
    return *out ? JSON_IN_VALUE : refuse(err, key, "out_of_memory");
}

bool json_in_required_id(struct json_object *obj, const char *key, size_t max_len, struct arena *a,
                         const char **out, struct json_in_error *err)
{
    return required(json_in_id(obj, key, max_len, a, out, err), key, out, err);
}

enum json_in_result json_in_int(struct json_object *obj, const char *key, int64_t min, int64_t max,
                                int64_t *out, struct json_in_error *err)
{
    struct json_object *v;
    enum json_in_result r = lookup(obj, key, &v);
    if (r != JSON_IN_VALUE)
        return r;
    if (!json_object_is_type(v, json_type_int))
        return refuse(err, key, "invalid_type");
    int64_t n;
    if (!json_in_exact_int64(v, &n) || n < min || n > max)
        return refuse(err, key, "value_is_out_of_range");
    *out = n;
    return JSON_IN_VALUE;
}

enum json_in_result json_in_bool(struct json_object *obj, const char *key, bool *out,
                                 struct json_in_error *err)
{
    struct json_object *v;
    enum json_in_result r = lookup(obj, key, &v);
    if (r != JSON_IN_VALUE)
        return r;
    if (!json_object_is_type(v, json_type_boolean))
        return refuse(err, key, "invalid_type");
    *out = json_object_get_boolean(v);
    return JSON_IN_VALUE;
}

enum json_in_result json_in_decimal(struct json_object *obj, const char *key, money_t *out,
                                    struct json_in_error *err)
{
    struct json_object *v;
    enum json_in_result r = lookup(obj, key, &v);
    if (r != JSON_IN_VALUE)
        return r;
    const char *text;
    int64_t n;
    switch (json_object_get_type(v)) {
    case json_type_string:
    case json_type_double: /* json-c keeps a double's source text: read that, not the double */
        text = json_object_get_string(v);
        if (money_parse(text, strlen(text), out) != MONEY_OK)
            return refuse(err, key, "invalid_value");
        return JSON_IN_VALUE;
    case json_type_int:
        /* json-c keeps 64 bits of an integer and no text, so a longer one cannot be read
         * exactly; its string is (an audit found such an amount refused with no message) */
        if (!json_in_exact_int64(v, &n)) {
            refuse(err, key, "integer_out_of_range");
            err->message = JSON_IN_INTEGER_OUT_OF_RANGE_MESSAGE;
            return JSON_IN_INVALID;
        }
        *out = money_from_int(n);
        return JSON_IN_VALUE;
    default: return refuse(err, key, "invalid_type");
    }
}

enum json_in_result json_in_string_array(struct json_object *obj, const char *key, size_t max_items,
                                         size_t max_len, struct arena *a, const char ***out,
                                         size_t *count, struct json_in_error *err)
{
    struct json_object *v;
    enum json_in_result r = lookup(obj, key, &v);
    *count = 0;
    if (r == JSON_IN_NULL)
        *out = NULL;
    if (r != JSON_IN_VALUE)
        return r;
    return json_in_string_list(v, key, max_items, max_len, a, out, count, err) ? JSON_IN_VALUE
                                                                               : JSON_IN_INVALID;
}

/* json_in_string_list and json_in_text_list: `texts` also takes a JSON integer, as its
 * decimal text, and an empty string. */
static bool read_list(struct json_object *v, const char *key, size_t max_items, size_t max_len,
                      bool texts, struct arena *a, const char ***out, size_t *count,
                      struct json_in_error *err)
{
    *count = 0;
    if (!json_object_is_type(v, json_type_array))
        return json_in_refuse(err, key, "invalid_type");
    size_t n = json_object_array_length(v);
    if (n > max_items)
        return json_in_refuse(err, key, "too_many_items");
    const char **items = arena_alloc(a, sizeof *items * (n ? n : 1));
    if (!items)
        return json_in_refuse(err, key, "out_of_memory");
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        char digits[24]; /* -9223372036854775807 */
        const char *s;
        size_t len;
        int64_t number;
        if (texts && json_object_is_type(e, json_type_int)) {
            /* past 64 bits json-c keeps no exact value: refused, as elsewhere */
            if (!json_in_exact_int64(e, &number))
                return json_in_refuse(err, key, "invalid_type");
            len = (size_t)snprintf(digits, sizeof digits, "%" PRId64, number);
            s = digits;
        } else if (json_object_is_type(e, json_type_string)) {
            len = (size_t)json_object_get_string_len(e);
            s = json_object_get_string(e);
        } else {
            return json_in_refuse(err, key, "invalid_type");
        }
        if ((len == 0 && !texts) || len > max_len || memchr(s, '\0', len))
            return json_in_refuse(err, key, "invalid_value");
        items[i] = arena_strndup(a, s, len);
        if (!items[i])
            return json_in_refuse(err, key, "out_of_memory");
    }
    *out = items;
    *count = n;
    return true;
}

bool json_in_string_list(struct json_object *v, const char *key, size_t max_items, size_t max_len,
                         struct arena *a, const char ***out, size_t *count,
                         struct json_in_error *err)
{
    return read_list(v, key, max_items, max_len, false, a, out, count, err);
}

bool json_in_text_list(struct json_object *v, const char *key, size_t max_items, size_t max_len,
                       struct arena *a, const char ***out, size_t *count, struct json_in_error *err)
{
    return read_list(v, key, max_items, max_len, true, a, out, count, err);
}

enum json_in_result json_in_instant(struct json_object *obj, const char *key, tally_time *out,
                                    struct json_in_error *err)
{
    struct json_object *v;
    enum json_in_result r = lookup(obj, key, &v);
    if (r != JSON_IN_VALUE)
        return r;
    if (!json_object_is_type(v, json_type_string))
        return refuse(err, key, "invalid_date");
    /* blank is none, as ActiveRecord casts "" to nil and Lago's checks of these dates let a
     * blank one pass (an audit found "" refused on a wallet's and a top-up's expiration_at) */
    if (json_in_value_blank(v))
        return JSON_IN_NULL;
    /* as Lago reads it (Time.zone.iso8601): an audit found "2026-06-01T10:00:00", UTC's
     * there, refused, as every form but RFC 3339's was. RFC 3339's space for the T, which
     * Python's str() writes and Lago refuses, is still taken: the two readers agree on every
     * text both take (a differential fuzz), and that one is unambiguous. */
    const char *text = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (!timestamp_parse_rails_iso8601(text, len, out) && !timestamp_parse_iso8601(text, len, out))
        return refuse(err, key, "invalid_date");
    return JSON_IN_VALUE;
}
