/* util/jsonw: see jsonw.h. */
#include "util/jsonw.h"

#include <assert.h>
#include <string.h>

void jsonw_init(struct jsonw *w, struct buf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

/* Called before every value: writes the comma that separates it from its sibling. */
static void before_value(struct jsonw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->has_items[w->depth])
        buf_append_char(w->out, ',');
    w->has_items[w->depth] = true;
}

/* The output is not JSON any more: its buffer fails, as when memory runs out (jsonw.h). */
static void misused(struct jsonw *w)
{
    w->out->failed = true;
}

static void open_level(struct jsonw *w, char c)
{
    if (w->depth + 1 >= JSONW_MAX_DEPTH) {
        misused(w);
        return;
    }
    before_value(w);
    buf_append_char(w->out, c);
    w->depth++;
    w->has_items[w->depth] = false;
}

static void close_level(struct jsonw *w, char c)
{
    if (w->depth == 0 || w->after_key) {
        misused(w);
        return;
    }
    w->depth--;
    buf_append_char(w->out, c);
}

void jsonw_object_begin(struct jsonw *w)
{
    open_level(w, '{');
}

void jsonw_object_end(struct jsonw *w)
{
    close_level(w, '}');
}

void jsonw_array_begin(struct jsonw *w)
{
    open_level(w, '[');
}

void jsonw_array_end(struct jsonw *w)
{
    close_level(w, ']');
}

/* Whether any of 8 bytes is a control character, '"' or '\\' (may say yes wrongly after a
 * byte that is one: the caller then looks byte by byte; never says no wrongly). */
static bool any_to_escape(uint64_t x)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    uint64_t below_space = (x - ones * 0x20) & ~x;
    return ((below_space | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) &
            highs) != 0;
}

/* Most strings need no escape: those are checked 8 bytes at a time and written in one go,
 * with `then` after the closing quote unless it is '\0' (a key's colon). False: nothing was
 * written, the string needs escapes. */
static bool write_plain(struct buf *out, const char *s, size_t len, char then)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, sizeof x);
        if (any_to_escape(x))
            return false;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            return false;
    }
    char *at = buf_extend(out, len + 2 + (then != '\0'));
    if (at) {
        at[0] = '"';
        memcpy(at + 1, s, len);
        at[len + 1] = '"';
        if (then != '\0')
            at[len + 2] = then;
    }
    return true;
}

static void write_escaped(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (write_plain(out, s, len, '\0'))
        return;
    buf_append_char(out, '"');
    size_t run = 0; /* start of the current run of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': buf_append(out, "\\\"", 2); break;
        case '\\': buf_append(out, "\\\\", 2); break;
        case '\n': buf_append(out, "\\n", 2); break;
        case '\r': buf_append(out, "\\r", 2); break;
        case '\t': buf_append(out, "\\t", 2); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(out, esc, 6);
        }
        }
    }
    buf_append(out, s + run, len - run);
    buf_append_char(out, '"');
}

void jsonw_key(struct jsonw *w, const char *key)
{
    if (w->after_key) {
        misused(w);
        return;
    }
    before_value(w);
    size_t len = strlen(key);
    if (!write_plain(w->out, key, len, ':')) {
        write_escaped(w->out, key, len);
        buf_append_char(w->out, ':');
    }
    w->after_key = true;
}

void jsonw_key_plain(struct jsonw *w, const char *key, size_t len)
{
    if (w->after_key) {
        misused(w);
        return;
    }
    before_value(w);
    char *at = buf_extend(w->out, len + 3);
    if (at) {
        at[0] = '"';
        memcpy(at + 1, key, len);
        at[len + 1] = '"';
        at[len + 2] = ':';
    }
    w->after_key = true;
#ifndef NDEBUG
    for (size_t i = 0; i < len; i++)
        assert((unsigned char)key[i] >= 0x20 && key[i] != '"' && key[i] != '\\');
#endif
}

void jsonw_string(struct jsonw *w, const char *s, size_t len)
{
    before_value(w);
    write_escaped(w->out, s, len);
}

void jsonw_cstr(struct jsonw *w, const char *s)
{
    if (!s) {
        jsonw_null(w);
        return;
    }
    jsonw_string(w, s, strlen(s));
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    before_value(w);
    buf_append_i64(w->out, v);
}

void jsonw_bool(struct jsonw *w, bool v)
{
    before_value(w);
    buf_append_str(w->out, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w)
{
    before_value(w);
    buf_append(w->out, "null", 4);
}

void jsonw_raw(struct jsonw *w, const char *json)
{
    if (!json) {
        jsonw_null(w);
        return;
    }
    before_value(w);
    buf_append_str(w->out, json);
}

void jsonw_raw_members(struct jsonw *w, const char *members, size_t len)
{
    if (w->after_key) {
        misused(w);
        return;
    }
    if (len == 0)
        return;
    before_value(w);
    buf_append(w->out, members, len);
}

void jsonw_time(struct jsonw *w, tally_time t, bool millis)
{
    struct jsonw_time_text *last = &w->last_time[millis];
    if (!last->valid || last->t != t) {
        last->len = (uint8_t)timestamp_format(t, millis, last->text);
        last->t = t;
        last->valid = true;
    }
    before_value(w);
    char *at = buf_extend(w->out, last->len + 2u); /* digits, '-', ':', 'T', '.', 'Z' */
    if (at) {
        at[0] = '"';
        memcpy(at + 1, last->text, last->len);
        at[last->len + 1] = '"';
    }
}

void jsonw_kv_cstr(struct jsonw *w, const char *key, const char *s)
{
    jsonw_key(w, key);
    jsonw_cstr(w, s);
}

void jsonw_kv_int(struct jsonw *w, const char *key, int64_t v)
{
    jsonw_key(w, key);
    jsonw_int(w, v);
}

void jsonw_kv_bool(struct jsonw *w, const char *key, bool v)
{
    jsonw_key(w, key);
    jsonw_bool(w, v);
}

void jsonw_kv_raw(struct jsonw *w, const char *key, const char *json)
{
    jsonw_key(w, key);
    jsonw_raw(w, json);
}

void jsonw_kv_null(struct jsonw *w, const char *key)
{
    jsonw_key(w, key);
    jsonw_null(w);
}
