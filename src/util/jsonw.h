/*
 * util/jsonw: writes JSON text into a struct buf.
 *
 * Tally renders every response itself instead of building a json-c tree: it is one pass,
 * allocates nothing but the output buffer, and decides number formatting (money is always a
 * decimal string or integer cents rendered by core/money, never a double).
 * The writer tracks commas per nesting level. Closing a level that a key still waits in, or
 * one that was never opened, and nesting past JSONW_MAX_DEPTH, fail the buffer (buf_failed),
 * as running out of memory does: a parser that gives up halfway through a definition closes
 * what it opened without minding the key it left, and its output is dropped anyway (one such
 * close was an assert that a malformed plan reached).
 *
 * Threads: one writer per thread.
 */
#ifndef TALLY_UTIL_JSONW_H
#define TALLY_UTIL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timestamp.h"
#include "util/buf.h"

#define JSONW_MAX_DEPTH 32

/* The last instant written in one of the two formats, as text: a list's rows mostly share
 * their dates (a batch's events their created_at), and formatting is most of a date's cost. */
struct jsonw_time_text {
    bool valid;
    tally_time t;
    uint8_t len;
    char text[TIMESTAMP_TEXT_MAX];
};

struct jsonw {
    struct buf *out; /* borrowed for the writer's life */
    uint32_t depth;
    bool has_items[JSONW_MAX_DEPTH]; /* per level: a comma is due before the next item */
    bool after_key;
    struct jsonw_time_text last_time[2]; /* [millis] */
};

void jsonw_init(struct jsonw *w, struct buf *out);
void jsonw_object_begin(struct jsonw *w);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w);
void jsonw_array_end(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);
/* A key the code spells, a string literal needing no escape: written without counting or
 * scanning it (a batch's answer writes a thousand keys). */
#define jsonw_key_lit(w, literal) jsonw_key_plain((w), "" literal, sizeof(literal) - 1)
void jsonw_key_plain(struct jsonw *w, const char *key, size_t len);

void jsonw_string(struct jsonw *w, const char *s, size_t len);
void jsonw_cstr(struct jsonw *w, const char *s); /* NULL writes null */
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* Writes already-valid JSON text (a stored sub-document) as one value; NULL writes null. */
void jsonw_raw(struct jsonw *w, const char *json);
/*
 * Writes already-valid object members ("a":1,"b":2) into the current object, as if each had
 * been written with jsonw_key and a value. Empty text writes nothing.
 */
void jsonw_raw_members(struct jsonw *w, const char *members, size_t len);
/* An instant as Lago formats it ("2026-01-01T00:00:00Z", or with milliseconds). */
void jsonw_time(struct jsonw *w, tally_time t, bool millis);

/* key + value in one call, the common case when rendering resources. */
void jsonw_kv_cstr(struct jsonw *w, const char *key, const char *s);
void jsonw_kv_int(struct jsonw *w, const char *key, int64_t v);
void jsonw_kv_bool(struct jsonw *w, const char *key, bool v);
void jsonw_kv_raw(struct jsonw *w, const char *key, const char *json);
void jsonw_kv_null(struct jsonw *w, const char *key);

#endif
