/*
 * json/event_plain.c: see event_plain.h. A cursor over the body; every reader either
 * consumes exactly one plain JSON item or answers false, and false anywhere means "not
 * plain" for the whole body.
 */
#include "json/event_plain.h"

#include <string.h>

#include "core/money.h"
#include "core/ruby_number.h"
#include "core/subscription.h"
#include "core/timestamp.h"
#include "json/json_in.h"

/* Integers of at most this many digits fit int64 without a check, and json-c writes them
 * back as they came (but "-0"). */
#define PLAIN_INT_DIGITS_MAX 18

struct cursor {
    const char *p, *end;
};

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool take(struct cursor *c, char ch)
{
    skip_space(c);
    if (c->p >= c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

static bool take_word(struct cursor *c, const char *word)
{
    skip_space(c);
    if (c->p >= c->end || *c->p != word[0]) /* most values are not the word: no call then */
        return false;
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* A string of printable ASCII without escapes; *s and *len give its contents. */
static bool plain_string(struct cursor *c, const char **s, size_t *len)
{
    skip_space(c);
    if (c->p >= c->end || *c->p != '"')
        return false;
    const char *start = ++c->p;
    for (; c->p < c->end; c->p++) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            *s = start;
            *len = (size_t)(c->p - start);
            c->p++;
            return true;
        }
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            return false;
    }
    return false;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

enum number_kind { NUMBER_NONE, NUMBER_INT, NUMBER_DECIMAL };

/* A JSON number without exponent; integers short enough to be exact and not "-0". */
static enum number_kind plain_number(struct cursor *c, const char **s, size_t *len)
{
    skip_space(c);
    const char *p = c->p, *start = p;
    if (p < c->end && *p == '-')
        p++;
    const char *digits = p;
    if (p >= c->end || !is_digit(*p))
        return NUMBER_NONE;
    if (*p == '0')
        p++;
    else
        while (p < c->end && is_digit(*p))
            p++;
    size_t int_digits = (size_t)(p - digits);
    bool fraction = p < c->end && *p == '.';
    if (fraction) {
        p++;
        if (p >= c->end || !is_digit(*p))
            return NUMBER_NONE;
        while (p < c->end && is_digit(*p))
            p++;
    }
    if (p < c->end && (*p == 'e' || *p == 'E' || is_digit(*p)))
        return NUMBER_NONE; /* an exponent, or a leading zero followed by digits */
    if (!fraction &&
        (int_digits > PLAIN_INT_DIGITS_MAX || (p - start == 2 && *start == '-' && *digits == '0')))
        return NUMBER_NONE;
    c->p = p;
    *s = start;
    *len = (size_t)(p - start);
    return fraction ? NUMBER_DECIMAL : NUMBER_INT;
}

static int64_t int_of(const char *s, size_t len)
{
    bool negative = *s == '-';
    int64_t n = 0;
    for (size_t i = negative; i < len; i++)
        n = n * 10 + (s[i] - '0');
    return negative ? -n : n;
}

/* A required id: a plain, non-blank string of at most max bytes, copied. */
static bool plain_id(struct cursor *c, struct arena *a, size_t max, const char **out)
{
    const char *s;
    size_t len;
    if (!plain_string(c, &s, &len) || len > max || json_in_blank(s, len))
        return false; /* a blank one is refused by json/event_json */
    *out = arena_strndup(a, s, len);
    return *out != NULL;
}

enum number_or_string { READ_NOT_PLAIN, READ_NULL, READ_INT, READ_TEXT };

/* null, a number or a string, for the fields that read a value from its text (READ_TEXT: a
 * decimal number or a string) or as an integer. */
static enum number_or_string read_number_or_string(struct cursor *c, const char **s, size_t *len)
{
    if (take_word(c, "null"))
        return READ_NULL;
    switch (plain_number(c, s, len)) {
    case NUMBER_INT: return READ_INT;
    case NUMBER_DECIMAL: return READ_TEXT;
    default: return plain_string(c, s, len) ? READ_TEXT : READ_NOT_PLAIN;
    }
}

/* As event_json_timestamp: null is none; an integer is seconds; a string or a decimal is
 * read from its text. */
static bool plain_timestamp(struct cursor *c, struct event *e)
{
    const char *s;
    size_t len;
    int64_t n;
    switch (read_number_or_string(c, &s, &len)) {
    case READ_NULL: return true;
    case READ_NOT_PLAIN: return false;
    case READ_INT:
        n = int_of(s, len);
        if (n < TIMESTAMP_MIN / TIMESTAMP_USEC_PER_SEC ||
            n > EVENT_TIMESTAMP_MAX / TIMESTAMP_USEC_PER_SEC)
            return false;
        e->timestamp = n * TIMESTAMP_USEC_PER_SEC;
        break;
    case READ_TEXT:
        if (!event_parse_timestamp(s, len, &e->timestamp))
            return false;
        break;
    }
    e->has_timestamp = true;
    return true;
}

/* As event_json_precise: null or a blank string is none; a string as String#to_d reads it, a
 * decimal from its text; an integer. */
static bool plain_amount(struct cursor *c, struct event *e)
{
    const char *s;
    size_t len;
    switch (read_number_or_string(c, &s, &len)) {
    case READ_NULL: return true;
    case READ_NOT_PLAIN: return false;
    case READ_INT: e->precise_total_amount_cents = money_from_int(int_of(s, len)); break;
    case READ_TEXT:
        if (json_in_blank(s, len))
            return true;
        if (!event_parse_precise_amount(s, len, &e->precise_total_amount_cents))
            return false;
        break;
    }
    e->precise_total_amount_cents = event_precise_amount(e->precise_total_amount_cents);
    e->has_precise_total_amount_cents = true;
    return true;
}

/* One property as the cursor found it: its key, and its value's text (a string's contents,
 * a number's or literal's JSON text; NULL for null). */
struct plain_property {
    const char *key, *value;
    size_t key_len, value_len;
    bool is_string;
};

static bool plain_value(struct cursor *c, struct plain_property *p)
{
    p->is_string = false;
    p->value = NULL;
    p->value_len = 0;
    if (take_word(c, "null"))
        return true;
    skip_space(c);
    const char *start = c->p;
    if (take_word(c, "true") || take_word(c, "false")) {
        p->value = start;
        p->value_len = (size_t)(c->p - start);
        return true;
    }
    if (plain_number(c, &p->value, &p->value_len) != NUMBER_NONE)
        return true;
    p->is_string = true;
    return plain_string(c, &p->value, &p->value_len);
}

static size_t slashes(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '/';
    return n;
}

/* Writes s as json-c writes a plain string: quoted, '/' escaped. */
static char *put_string(char *out, const char *s, size_t len)
{
    *out++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/')
            *out++ = '\\';
        *out++ = s[i];
    }
    *out++ = '"';
    return out;
}

const char *event_plain_value(struct arena *a, const char *text, size_t len, bool is_string)
{
    char number[RUBY_JSON_NUMBER_TEXT_MAX + 1];
    if (!is_string && ruby_json_number_text(text, len, number))
        return arena_strndup(a, number, strlen(number));
    return arena_strndup(a, text, len);
}

/* e->properties and the canonical text json-c would write for them. */
static bool keep_properties(struct arena *a, const struct plain_property *found, size_t n,
                            struct event *e)
{
    struct event_property *pairs = arena_alloc(a, sizeof *pairs * (n ? n : 1));
    size_t text_len = 2;
    for (size_t i = 0; i < n; i++) {
        const struct plain_property *p = &found[i];
        text_len += (i > 0) + p->key_len + slashes(p->key, p->key_len) + 3 +
                    (p->value ? p->value_len : 4) +
                    (p->is_string ? 2 + slashes(p->value, p->value_len) : 0);
    }
    char *text = arena_alloc(a, text_len + 1);
    if (!pairs || !text)
        return false;
    char *out = text;
    *out++ = '{';
    for (size_t i = 0; i < n; i++) {
        const struct plain_property *p = &found[i];
        pairs[i].key = arena_strndup(a, p->key, p->key_len);
        pairs[i].value =
            p->value ? event_plain_value(a, p->value, p->value_len, p->is_string) : NULL;
        pairs[i].is_string = p->is_string;
        if (!pairs[i].key || (p->value && !pairs[i].value))
            return false;
        if (i > 0)
            *out++ = ',';
        out = put_string(out, p->key, p->key_len);
        *out++ = ':';
        if (p->is_string) {
            out = put_string(out, p->value, p->value_len);
        } else {
            memcpy(out, p->value ? p->value : "null", p->value ? p->value_len : 4);
            out += p->value ? p->value_len : 4;
        }
    }
    *out++ = '}';
    *out = '\0';
    e->properties = pairs;
    e->property_count = n;
    e->properties_json = text;
    return true;
}

/* As event_json_properties_of: null is none; else an object of plain scalars, its keys
 * unique, within the limits. */
static bool plain_properties(struct cursor *c, struct arena *a, struct event *e)
{
    if (take_word(c, "null"))
        return true;
    if (!take(c, '{'))
        return false;
    struct plain_property found[EVENT_PROPERTIES_MAX];
    size_t n = 0;
    if (!take(c, '}')) {
        do {
            if (n == EVENT_PROPERTIES_MAX)
                return false;
            struct plain_property *p = &found[n];
            if (!plain_string(c, &p->key, &p->key_len) || !take(c, ':') || !plain_value(c, p) ||
                p->key_len > EVENT_PROPERTY_KEY_MAX || p->value_len > EVENT_PROPERTY_VALUE_MAX)
                return false;
            for (size_t i = 0; i < n; i++)
                if (found[i].key_len == p->key_len && memcmp(found[i].key, p->key, p->key_len) == 0)
                    return false;
            n++;
        } while (take(c, ','));
        if (!take(c, '}'))
            return false;
    }
    return keep_properties(a, found, n, e);
}

enum field {
    FIELD_TRANSACTION_ID,
    FIELD_EXTERNAL_SUBSCRIPTION_ID,
    FIELD_CODE,
    FIELD_TIMESTAMP,
    FIELD_PROPERTIES,
    FIELD_PRECISE_TOTAL_AMOUNT_CENTS,
    FIELD_COUNT
};

static const char *const field_names[FIELD_COUNT] = {
    "transaction_id", "external_subscription_id",  "code", "timestamp",
    "properties",     "precise_total_amount_cents"};

static int field_of(const char *s, size_t len)
{
    for (int f = 0; f < FIELD_COUNT; f++)
        if (strlen(field_names[f]) == len && memcmp(field_names[f], s, len) == 0)
            return f;
    return -1;
}

static bool plain_field(struct cursor *c, struct arena *a, int field, struct event *e)
{
    switch (field) {
    case FIELD_TRANSACTION_ID: return plain_id(c, a, EVENT_TRANSACTION_ID_MAX, &e->transaction_id);
    case FIELD_EXTERNAL_SUBSCRIPTION_ID:
        return plain_id(c, a, SUBSCRIPTION_EXTERNAL_ID_MAX, &e->external_subscription_id);
    case FIELD_CODE: return plain_id(c, a, EVENT_CODE_MAX, &e->code);
    case FIELD_TIMESTAMP: return plain_timestamp(c, e);
    case FIELD_PROPERTIES: return plain_properties(c, a, e);
    default: return plain_amount(c, e);
    }
}

static bool plain_event(struct cursor *c, struct arena *a, struct event *e)
{
    const unsigned required =
        1u << FIELD_TRANSACTION_ID | 1u << FIELD_EXTERNAL_SUBSCRIPTION_ID | 1u << FIELD_CODE;
    memset(e, 0, sizeof *e);
    e->properties_json = "{}";
    if (!take(c, '{'))
        return false;
    unsigned seen = 0;
    do {
        const char *key;
        size_t key_len;
        if (!plain_string(c, &key, &key_len) || !take(c, ':'))
            return false;
        int field = field_of(key, key_len);
        if (field < 0 || (seen & 1u << field) || !plain_field(c, a, field, e))
            return false;
        seen |= 1u << field;
    } while (take(c, ','));
    return take(c, '}') && (seen & required) == required;
}

/* `{"ROOT":` */
static bool root_key(struct cursor *c, const char *root)
{
    const char *key;
    size_t key_len;
    return take(c, '{') && plain_string(c, &key, &key_len) && key_len == strlen(root) &&
           memcmp(key, root, key_len) == 0 && take(c, ':');
}

/* `}` and nothing after it but white space. */
static bool root_end(struct cursor *c)
{
    if (!take(c, '}'))
        return false;
    skip_space(c);
    return c->p == c->end;
}

bool event_plain_properties(const char *json, size_t len, struct arena *a, struct event *e)
{
    struct cursor c = {json, json + len};
    if (!plain_properties(&c, a, e))
        return false;
    skip_space(&c);
    return c.p == c.end;
}

bool event_plain_one(const char *body, size_t len, struct arena *a, struct event *event)
{
    struct cursor c = {body, body + len};
    return root_key(&c, "event") && plain_event(&c, a, event) && root_end(&c);
}

bool event_plain_batch(const char *body, size_t len, size_t max_events, struct arena *a,
                       struct event **events, size_t *count)
{
    struct cursor c = {body, body + len};
    if (!root_key(&c, "events") || !take(&c, '['))
        return false;
    size_t n = 0, cap = 0;
    struct event *list = NULL;
    do {
        if (n == max_events)
            return false;
        if (n == cap) { /* doubling in the arena: what it leaves behind is at most the final size */
            size_t grown = cap ? 2 * cap : 16;
            struct event *bigger = arena_alloc(a, sizeof *bigger * grown);
            if (!bigger)
                return false;
            if (n)
                memcpy(bigger, list, sizeof *list * n);
            list = bigger;
            cap = grown;
        }
        if (!plain_event(&c, a, &list[n]))
            return false;
        n++;
    } while (take(&c, ','));
    if (!take(&c, ']') || !root_end(&c))
        return false;
    *events = list;
    *count = n;
    return true;
}
