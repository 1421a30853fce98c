/*
 * util/jsonw, util/buf, util/arena: the writer's output is valid JSON that json-c reads back
 * to the same values, for every byte string that is valid UTF-8 (random cases included).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/jsonw.h"

static json_object *parse(const struct buf *b)
{
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, b->data, (int)b->len);
    assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
    json_tokener_free(tok);
    return o;
}

static void nested_document(void **state)
{
    (void)state;
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "s", "a\"b\\c\n\t\x01");
    jsonw_kv_int(&w, "min", INT64_MIN);
    jsonw_kv_int(&w, "max", INT64_MAX);
    jsonw_kv_bool(&w, "t", true);
    jsonw_kv_null(&w, "n");
    jsonw_kv_cstr(&w, "null_string", NULL);
    jsonw_key_lit(&w, "list");
    jsonw_array_begin(&w);
    jsonw_int(&w, 1);
    jsonw_object_begin(&w);
    jsonw_object_end(&w);
    jsonw_array_begin(&w);
    jsonw_array_end(&w);
    jsonw_raw(&w, "{\"raw\":[1,2]}");
    jsonw_array_end(&w);
    jsonw_key(&w, "when");
    jsonw_time(&w, 0, true);
    jsonw_object_end(&w);
    assert_false(buf_failed(&b));
    assert_string_equal(b.data, "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\",\"min\":-9223372036854775808,"
                                "\"max\":9223372036854775807,\"t\":true,\"n\":null,"
                                "\"null_string\":null,\"list\":[1,{},[],{\"raw\":[1,2]}],"
                                "\"when\":\"1970-01-01T00:00:00.000Z\"}");
    json_object *o = parse(&b);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "s", &v));
    assert_string_equal(json_object_get_string(v), "a\"b\\c\n\t\x01");
    json_object_put(o);
    buf_free(&b);
}

/* Random valid UTF-8 strings (1- to 4-byte sequences, control characters included). */
static size_t random_utf8(uint64_t *x, char *out, size_t cap)
{
    size_t n = 0;
    while (n + 4 < cap) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        uint32_t cp;
        switch (*x % 4) {
        case 0: cp = (uint32_t)(*x >> 8) % 0x80; break;
        case 1: cp = 0x80 + (uint32_t)(*x >> 8) % (0x800 - 0x80); break;
        case 2: cp = 0x800 + (uint32_t)(*x >> 8) % (0x10000 - 0x800); break;
        default: cp = 0x10000 + (uint32_t)(*x >> 8) % (0x110000 - 0x10000); break;
        }
        if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
            continue;
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else if (cp < 0x800) {
            out[n++] = (char)(0xC0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[n++] = (char)(0xE0 | cp >> 12);
            out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[n++] = (char)(0xF0 | cp >> 18);
            out[n++] = (char)(0x80 | (cp >> 12 & 0x3F));
            out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
        if (*x % 7 == 0)
            break;
    }
    out[n] = '\0';
    return n;
}

static void random_strings_round_trip(void **state)
{
    (void)state;
    uint64_t x = 0x1234567887654321u;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 20000; i++) {
        char s[256];
        size_t n = random_utf8(&x, s, sizeof s);
        struct jsonw w;
        buf_reset(&b);
        jsonw_init(&w, &b);
        jsonw_array_begin(&w);
        jsonw_string(&w, s, n);
        jsonw_array_end(&w);
        json_object *o = parse(&b);
        json_object *v = json_object_array_get_idx(o, 0);
        assert_int_equal((size_t)json_object_get_string_len(v), n);
        assert_memory_equal(json_object_get_string(v), s, n);
        json_object_put(o);
    }
    buf_free(&b);
}

/* The escaping, byte by byte, as JSON wants it: what jsonw must write, fast path or not. */
static void reference_escape(const char *s, size_t len, char *out)
{
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            out[n++] = '\\';
            out[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20) {
            n += (size_t)sprintf(out + n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

/*
 * Strings of the bytes next to the ones that need escaping (control characters, '"', '\\',
 * DEL, bytes past ASCII), of every length around the 8-byte steps the fast path takes: the
 * text written is exactly the reference's.
 */
static void escapes_exactly_at_every_length(void **state)
{
    (void)state;
    static const char alphabet[] = {0x1f, 0x20, 0x21,       0x22,       0x23, 0x5b, 0x5c,
                                    0x5d, 0x7f, (char)0xc3, (char)0xa9, 'a',  '\n', 0x01};
    uint64_t x = 77;
    struct buf b;
    buf_init(&b);
    for (int round = 0; round < 20000; round++) {
        char s[40], want[40 * 6 + 3];
        size_t len = (size_t)round % sizeof s;
        bool plain = round % 3 == 0; /* a third without any byte to escape */
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[i] = plain ? "ab #]~"[x % 6] : alphabet[x % sizeof alphabet];
        }
        buf_reset(&b);
        struct jsonw w;
        jsonw_init(&w, &b);
        jsonw_string(&w, s, len);
        reference_escape(s, len, want);
        assert_string_equal(b.data, want);
        /* a key is escaped alike (filter values and metadata keys are the client's), its
         * colon after it whichever way it was written */
        char key[sizeof s + 1];
        memcpy(key, s, len);
        key[len] = '\0';
        if (memchr(s, '\0', len))
            continue;
        buf_reset(&b);
        jsonw_init(&w, &b);
        jsonw_object_begin(&w);
        jsonw_key(&w, key);
        assert_int_equal(b.len, 1 + strlen(want) + 1);
        assert_memory_equal(b.data + 1, want, strlen(want));
        assert_int_equal(b.data[b.len - 1], ':');
    }
    buf_free(&b);
}

/*
 * Instants in both formats, repeated and alternating (the writer keeps the last text of each
 * format): each is written as its own formatting says, whatever came before it.
 */
static void times_repeat_and_alternate(void **state)
{
    (void)state;
    static const tally_time instants[] = {0,
                                          0,
                                          1764000000123456,
                                          1764000000123456,
                                          0,
                                          -86400000000,
                                          253402300799999999,
                                          1764000000123999};
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++) {
        for (int millis = 0; millis < 2; millis++) {
            char want[TIMESTAMP_TEXT_MAX + 2] = "\"";
            size_t n = timestamp_format(instants[i], millis, want + 1);
            want[n + 1] = '"';
            buf_reset(&b);
            jsonw_time(&w, instants[i], millis);
            assert_int_equal(b.len, n + 2);
            assert_memory_equal(b.data, want, n + 2);
            w.has_items[0] = false; /* each a document of its own */
        }
    }
    buf_reset(&b);
    jsonw_init(&w, &b);
    jsonw_array_begin(&w);
    jsonw_time(&w, 1764000000123456, true);
    jsonw_time(&w, 1764000000123456, false);
    jsonw_time(&w, 1764000000123456, true);
    jsonw_array_end(&w);
    assert_string_equal(b.data, "[\"2025-11-24T16:00:00.123Z\",\"2025-11-24T16:00:00Z\","
                                "\"2025-11-24T16:00:00.123Z\"]");
    buf_free(&b);
}

/* A failed buffer takes nothing more, though it has the room (its text is not the answer). */
static void failed_buffer_takes_nothing(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_reserve(&b, 100);
    buf_append_str(&b, "kept");
    b.failed = true;
    buf_append_char(&b, 'x');
    buf_append(&b, "more", 4);
    assert_null(buf_extend(&b, 4));
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "kept");
    buf_free(&b);
}

static void buf_and_arena(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 10000; i++)
        buf_append_i64(&b, i % 2 ? -i : i);
    buf_printf(&b, "|%s|", "end");
    assert_false(buf_failed(&b));
    size_t len;
    char *taken = buf_take(&b, &len);
    assert_int_equal(strlen(taken), len);
    assert_memory_equal(taken, "0-12-34", 7);
    assert_string_equal(taken + len - 5, "|end|");
    assert_null(b.data);
    free(taken);

    struct arena a;
    arena_init(&a);
    for (int i = 1; i < 2000; i++) {
        unsigned char *p = arena_alloc(&a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        for (int j = 0; j < i; j++)
            assert_int_equal(p[j], 0);
        memset(p, 0xAB, (size_t)i);
    }
    assert_null(arena_alloc(&a, ARENA_MAX_ALLOC + 1));
    char *s = arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    unsigned char pattern[3000];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 7 + 1);
    unsigned char *copy = arena_memdup(&a, pattern, sizeof pattern);
    assert_non_null(copy);
    assert_memory_equal(copy, pattern, sizeof pattern);
    assert_non_null(arena_memdup(&a, pattern, 0));
    assert_null(arena_memdup(&a, pattern, ARENA_MAX_ALLOC + 1));
    /* a reset keeps its block, written all over above: what it hands out again is zeroed */
    arena_reset(&a);
    for (int i = 1; i < 2000; i++) {
        unsigned char *p = arena_alloc(&a, (size_t)i);
        for (int j = 0; j < i; j++)
            assert_int_equal(p[j], 0);
        memset(p, 0xCD, (size_t)i);
    }
    arena_free(&a);
}

/* Runs `misuse` on a fresh writer: whether it failed the buffer, and stayed in its depth. */
static bool fails_the_buffer(void (*misuse)(struct jsonw *w))
{
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    misuse(&w);
    bool failed = buf_failed(&b) && w.depth < JSONW_MAX_DEPTH;
    buf_free(&b);
    return failed;
}

static void key_without_value(struct jsonw *w)
{
    jsonw_object_begin(w);
    jsonw_key(w, "properties"); /* and no value: the parse gave up */
    jsonw_object_end(w);
}

static void two_keys(struct jsonw *w)
{
    jsonw_key(w, "a");
    jsonw_key_lit(w, "b");
}

static void close_unopened(struct jsonw *w)
{
    jsonw_array_end(w);
}

static void too_deep(struct jsonw *w)
{
    for (int i = 0; i < JSONW_MAX_DEPTH + 5; i++)
        jsonw_array_begin(w);
}

/*
 * A parser that gives up halfway leaves a key without its value, or levels open, and closes
 * what its callers opened: the writer fails the buffer instead of aborting (a malformed plan
 * once reached an assert here), and never writes past JSONW_MAX_DEPTH.
 */
static void misuse_fails_the_buffer(void **state)
{
    (void)state;
    assert_true(fails_the_buffer(key_without_value));
    assert_true(fails_the_buffer(two_keys));
    assert_true(fails_the_buffer(close_unopened));
    assert_true(fails_the_buffer(too_deep));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nested_document),
        cmocka_unit_test(random_strings_round_trip),
        cmocka_unit_test(escapes_exactly_at_every_length),
        cmocka_unit_test(times_repeat_and_alternate),
        cmocka_unit_test(failed_buffer_takes_nothing),
        cmocka_unit_test(buf_and_arena),
        cmocka_unit_test(misuse_fails_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
