/*
 * json/event_plain against json/event_json (json-c), the reference: on random batches built
 * from plain and not-plain pieces (escapes, non-ASCII, nesting, exponents, duplicate and
 * unknown keys, bad values, limits), whenever the plain reader accepts a body, json-c must
 * accept it too and give the same events, field by field and byte for byte. Both outcomes
 * must occur often, so the comparison cannot pass by accepting nothing. The same for one event
 * (POST /events).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "json/event_json.h"
#include "json/event_plain.h"
#include "util/buf.h"

#define MAX_EVENTS 4

/* json-c's reading of a batch, as POST /events/batch does it; false where it refuses. */
static bool reference(const char *body, size_t len, struct arena *a, struct event *out,
                      size_t *count)
{
    const char *why;
    struct json_object *doc = json_in_parse(body, len, &why), *list;
    bool ok = doc && json_object_is_type(doc, json_type_object) &&
              json_object_object_get_ex(doc, "events", &list) &&
              json_object_is_type(list, json_type_array) && json_object_array_length(list) > 0 &&
              json_object_array_length(list) <= MAX_EVENTS;
    *count = ok ? json_object_array_length(list) : 0;
    for (size_t i = 0; ok && i < *count; i++) {
        struct json_in_error err = {0};
        ok = event_json_event(a, json_object_array_get_idx(list, i), &out[i], &err);
    }
    json_object_put(doc);
    return ok;
}

static void same_text(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void same_event(const struct event *a, const struct event *b)
{
    same_text(a->transaction_id, b->transaction_id);
    same_text(a->external_subscription_id, b->external_subscription_id);
    same_text(a->code, b->code);
    assert_int_equal(a->has_timestamp, b->has_timestamp);
    if (a->has_timestamp)
        assert_int_equal(a->timestamp, b->timestamp);
    assert_int_equal(a->has_precise_total_amount_cents, b->has_precise_total_amount_cents);
    if (a->has_precise_total_amount_cents)
        assert_int_equal(money_cmp(a->precise_total_amount_cents, b->precise_total_amount_cents),
                         0);
    same_text(a->properties_json, b->properties_json);
    assert_int_equal(a->property_count, b->property_count);
    for (size_t i = 0; i < a->property_count; i++) {
        same_text(a->properties[i].key, b->properties[i].key);
        same_text(a->properties[i].value, b->properties[i].value);
        assert_int_equal(a->properties[i].is_string, b->properties[i].is_string);
    }
}

static uint64_t rng_state;

static unsigned pick(unsigned n)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (unsigned)(rng_state >> 33) % n;
}

static const char *pick_of(const char *const *list, size_t n)
{
    return list[pick((unsigned)n)];
}
#define PICK(list) pick_of(list, sizeof list / sizeof list[0])

static const char *const ids[] = {"\"t1\"",       "\"sub-9\"", "\"a/b\"", "\"\"", "\"caf\xc3\xa9\"",
                                  "\"q\\\"x\"",   "\"x y\"",   "null",    "12",   "\"tokens\"",
                                  "\"s\\u0041\"", "\"z\""};
static const char *const scalars[] = {"0",
                                      "-5",
                                      "1234567890123",
                                      "9223372036854775807",
                                      "99999999999999999999",
                                      "-0",
                                      "1.50",
                                      "-0.0",
                                      "1e3",
                                      "2.5E-1",
                                      "01",
                                      "true",
                                      "false",
                                      "null",
                                      "\"large\"",
                                      "\"\"",
                                      "\"a/b\"",
                                      "\"\\n\"",
                                      "\"\xc3\xa9\"",
                                      "{\"n\":1}",
                                      "[1,2]",
                                      "1.",
                                      "\"1700000000\"",
                                      "1700000000",
                                      "1700000000.123456789",
                                      "\"12.5\"",
                                      "-1700000000000",
                                      "\"abc\"",
                                      "3.14159",
                                      "\" 1700000000 \"",
                                      "\"\\t1700000000.5\\n\"",
                                      "\" \"",
                                      "\"1700000000 1\""};
static const char *const keys[] = {"tokens", "model",  "kind",        "a/b",
                                   "",       "tokens", "caf\xc3\xa9", "x\\\"y"};
static const char *const fields[] = {"transaction_id",
                                     "external_subscription_id",
                                     "code",
                                     "timestamp",
                                     "properties",
                                     "precise_total_amount_cents",
                                     "external_customer_id"};
static const char *const spaces[] = {"", "", "", " ", "\n", "\t "};
/* Batches built from these alone are plain, so most of them must be accepted. */
static const char *const plain_scalars[] = {"0",         "-5",   "1234567890123", "1.50",
                                            "-0.0",      "true", "false",         "null",
                                            "\"large\"", "\"\"", "\"a/b\"",       "3.14159"};
static const char *const plain_keys[] = {"tokens", "model", "kind", "a/b", ""};
static const char *const plain_timestamps[] = {
    "1700000000", "\"1700000000\"", "1700000000.123456789", "null", "\" 1700000000.5 \""};
static const char *const plain_amounts[] = {"\"12.5\"", "7", "null", "1.25"};
static bool plain_mode;

static void put_properties(struct buf *b)
{
    if (pick(8) == 0) {
        buf_append_str(b, pick(2) ? "null" : "[]");
        return;
    }
    buf_append_char(b, '{');
    unsigned n = pick(5);
    for (unsigned i = 0; i < n; i++) {
        if (i)
            buf_append_char(b, ',');
        if (plain_mode)
            buf_printf(b, "%s\"%s\"%s:%s", PICK(spaces), plain_keys[i], PICK(spaces),
                       pick(8) ? PICK(plain_scalars) : PICK(scalars)); /* now and then not */
        else
            buf_printf(b, "%s\"%s\"%s:%s", PICK(spaces), PICK(keys), PICK(spaces), PICK(scalars));
    }
    buf_append_char(b, '}');
}

static void put_event(struct buf *b)
{
    buf_append_char(b, '{');
    /* mostly the three required fields first, then some of the rest, any order (in plain
     * mode: each field once, none unknown) */
    unsigned n = 3 + pick(4), written = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned f = plain_mode ? i : i < 3 && pick(10) ? i : pick(7);
        if (written++)
            buf_append_char(b, ',');
        buf_printf(b, "%s\"%s\":%s", PICK(spaces), fields[f], PICK(spaces));
        if (f == 4)
            put_properties(b);
        else if (f < 3 && pick(3))
            buf_printf(b, "\"id%u\"", pick(1000));
        else if (f < 3)
            buf_append_str(b, plain_mode ? "\"a/b\"" : PICK(ids));
        else if (plain_mode && f == 3)
            buf_append_str(b, PICK(plain_timestamps));
        else if (plain_mode)
            buf_append_str(b, PICK(plain_amounts));
        else
            buf_append_str(b, PICK(scalars));
    }
    buf_append_char(b, '}');
}

static void agrees_with_json_c_on_random_batches(void **state)
{
    (void)state;
    rng_state = 20261126;
    int accepted = 0, declined = 0, both_refused = 0;
    for (int round = 0; round < 20000; round++) {
        struct buf body;
        buf_init(&body);
        plain_mode = pick(2);
        buf_printf(&body, "%s{\"events\":%s[", PICK(spaces), PICK(spaces));
        unsigned n = pick(10) == 0 ? 0 : 1 + pick(MAX_EVENTS + 1);
        for (unsigned i = 0; i < n; i++) {
            if (i)
                buf_append_char(&body, ',');
            put_event(&body);
        }
        buf_printf(&body, "]%s}%s", PICK(spaces), pick(50) ? "" : "x");
        assert_false(buf_failed(&body));
        struct arena a;
        arena_init(&a);
        struct event *plain = NULL, ref[MAX_EVENTS + 1];
        size_t plain_count = 0, ref_count = 0;
        bool fast = event_plain_batch(body.data, body.len, MAX_EVENTS, &a, &plain, &plain_count);
        bool slow = reference(body.data, body.len, &a, ref, &ref_count);
        if (fast) {
            if (!slow)
                fail_msg("plain accepted what json-c refuses: %s", body.data);
            assert_int_equal(plain_count, ref_count);
            for (size_t i = 0; i < plain_count; i++)
                same_event(&plain[i], &ref[i]);
            accepted++;
        } else if (slow) {
            declined++; /* plain but unusual: json-c reads it */
        } else {
            both_refused++;
        }
        arena_free(&a);
        buf_free(&body);
    }
    print_message("plain accepted %d, left to json-c %d, refused by both %d\n", accepted, declined,
                  both_refused);
    assert_true(accepted > 1000);
    assert_true(declined > 1000);
    assert_true(both_refused > 1000);
}

/* One event, {"event":{...}}: the same comparison, with json-c reading the root key. */
static void one_event_agrees_with_json_c(void **state)
{
    (void)state;
    rng_state = 11;
    int accepted = 0, declined = 0;
    for (int round = 0; round < 5000; round++) {
        struct buf body;
        buf_init(&body);
        plain_mode = pick(2);
        buf_printf(&body, "{%s\"event\":", PICK(spaces));
        put_event(&body);
        buf_printf(&body, "}%s", PICK(spaces));
        struct arena a;
        arena_init(&a);
        struct event plain, ref;
        bool fast = event_plain_one(body.data, body.len, &a, &plain);
        const char *why;
        struct json_object *doc = json_in_parse(body.data, body.len, &why);
        struct json_object *obj = doc ? json_in_root(doc, "event") : NULL;
        struct json_in_error err = {0};
        bool slow = obj && event_json_event(&a, obj, &ref, &err);
        json_object_put(doc);
        if (fast) {
            if (!slow)
                fail_msg("plain accepted what json-c refuses: %s", body.data);
            same_event(&plain, &ref);
            accepted++;
        } else if (slow) {
            declined++;
        }
        arena_free(&a);
        buf_free(&body);
    }
    assert_true(accepted > 500);
    assert_true(declined > 100);
}

/* Random properties (plain or not) read by json-c into `e`, in `a`, as the API stores them;
 * false when json-c refuses them. */
static bool random_properties(struct arena *a, struct event *e)
{
    struct buf body;
    buf_init(&body);
    plain_mode = pick(2);
    put_properties(&body);
    const char *why;
    struct json_object *doc = json_in_parse(body.data, body.len, &why);
    struct json_in_error err = {0};
    *e = (struct event){.properties_json = "{}"};
    bool ok =
        doc && json_object_is_type(doc, json_type_object) && event_json_properties(a, doc, e, &err);
    json_object_put(doc);
    buf_free(&body);
    return ok;
}

/*
 * Stored properties (what the start-up scan and usage rebuilds read back): for random objects,
 * written canonically by json-c as the store keeps them, the plain reader's pairs and text are
 * json-c's whenever it accepts, and it accepts the plain ones.
 */
static void stored_properties_agree_with_json_c(void **state)
{
    (void)state;
    rng_state = 7;
    int accepted = 0, declined = 0;
    for (int round = 0; round < 20000; round++) {
        struct arena a;
        arena_init(&a);
        struct event ref, plain = {.properties_json = "{}"};
        bool slow = random_properties(&a, &ref);
        if (slow) { /* the canonical text, as stored */
            bool fast = event_plain_properties(ref.properties_json, strlen(ref.properties_json), &a,
                                               &plain);
            if (fast) {
                same_event(&plain, &ref);
                accepted++;
            } else {
                declined++;
            }
            struct event through = {.properties_json = "{}"};
            assert_true(event_json_properties_text(&a, ref.properties_json, &through));
            same_event(&through, &ref);
        }
        arena_free(&a);
    }
    print_message("stored properties: plain %d, left to json-c %d\n", accepted, declined);
    assert_true(accepted > 5000);
    assert_true(declined > 100);
    struct arena a;
    arena_init(&a);
    struct event e;
    assert_false(event_plain_properties("{\"a\":1} x", 9, &a, &e)); /* trailing bytes */
    assert_false(event_plain_properties("{\"a\":1,\"a\":2}", 13, &a, &e));
    arena_free(&a);
}

/*
 * json/event_json's rewrite of one property (a metric's expression writing its result): the
 * rewritten text, read back as the store reads it, gives the rewritten pairs exactly, with the
 * key in place if it was there and added last if not, and the other properties as they were.
 */
static void a_set_property_reads_back(void **state)
{
    (void)state;
    static const char *const values[] = {"2100", "a/b", "x\"y\n", "caf\xc3\xa9", ""};
    static const char *const set_keys[] = {"tokens", "model", "total", "a/b", "caf\xc3\xa9"};
    int replaced = 0, added = 0;
    for (int round = 0; round < 5000; round++) {
        struct arena a;
        arena_init(&a);
        struct event in, out, back = {.properties_json = "{}"};
        if (random_properties(&a, &in)) {
            const char *key = PICK(set_keys), *value = PICK(values);
            bool had = false;
            for (size_t i = 0; i < in.property_count; i++)
                had = had || strcmp(in.properties[i].key, key) == 0;
            assert_true(event_json_set_property(&a, &in, key, value, strlen(value), &out));
            assert_true(event_json_properties_text(&a, out.properties_json, &back));
            same_event(&back, &(struct event){.properties = out.properties,
                                              .property_count = out.property_count,
                                              .properties_json = back.properties_json});
            size_t at = 0;
            while (strcmp(out.properties[at].key, key) != 0)
                at++;
            assert_string_equal(out.properties[at].value, value);
            assert_true(out.properties[at].is_string);
            assert_int_equal(out.property_count, in.property_count + !had);
            for (size_t i = 0; i < in.property_count; i++)
                if (i != at) {
                    same_text(out.properties[i].key, in.properties[i].key);
                    same_text(out.properties[i].value, in.properties[i].value);
                }
            if (had)
                replaced++;
            else
                added++;
        }
        arena_free(&a);
    }
    print_message("set property: replaced %d, added %d\n", replaced, added);
    assert_true(replaced > 200 && added > 200);
}

/* What clients send most (bench/events.lua's shape) is plain. */
/* A timestamp string with ASCII whitespace around it (Lago's BigDecimal skips it): read alike
 * by both readers, escaped whitespace by json-c alone; whitespace alone or inside is refused. */
static void padded_timestamps_read_alike(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        bool plain;    /* the plain reader takes it (no escape) */
        tally_time at; /* 0: refused */
    } cases[] = {
        {"\" 1700000000\"", true, INT64_C(1700000000000000)},
        {"\"1700000000 \"", true, INT64_C(1700000000000000)},
        {"\"  1700000000.5  \"", true, INT64_C(1700000000500000)},
        {"\"\\t\\n\\u000b\\f\\r1700000000.25\\r\\n \"", false, INT64_C(1700000000250000)},
        {"\" \"", false, 0},
        {"\"1700000000 1\"", false, 0},
        {"\"- 1700000000\"", false, 0},
        {"\"\\u00a01700000000\"", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"event\":{\"transaction_id\":\"t\",\"external_subscription_id\":\"s\","
                 "\"code\":\"c\",\"timestamp\":%s}}",
                 cases[i].json);
        struct arena a;
        arena_init(&a);
        struct event plain, ref;
        bool fast = event_plain_one(body, strlen(body), &a, &plain);
        const char *why;
        struct json_object *doc = json_in_parse(body, strlen(body), &why);
        struct json_object *obj = doc ? json_in_root(doc, "event") : NULL;
        struct json_in_error err = {0};
        bool slow = obj && event_json_event(&a, obj, &ref, &err);
        json_object_put(doc);
        if (cases[i].at == 0) {
            assert_false(fast);
            assert_false(slow);
            assert_string_equal(err.field, "timestamp");
        } else {
            assert_true(slow);
            assert_int_equal(ref.timestamp, cases[i].at);
            assert_int_equal(fast, cases[i].plain);
            if (fast)
                same_event(&plain, &ref);
        }
        arena_free(&a);
    }
}

static void a_typical_batch_is_plain(void **state)
{
    (void)state;
    const char *body =
        "{\"events\":[{\"transaction_id\":\"r-1-1\",\"external_subscription_id\":\"s1\","
        "\"code\":\"tokens\",\"properties\":{\"tokens\":101,\"model\":\"large\","
        "\"kind\":\"output\"}},{\"transaction_id\":\"r-1-2\",\"external_subscription_id\":\"s2\","
        "\"code\":\"tokens\",\"timestamp\":1700000000.5,\"properties\":{\"tokens\":\"7\"},"
        "\"precise_total_amount_cents\":\"12.25\"}]}";
    struct arena a;
    arena_init(&a);
    struct event *events;
    size_t count;
    assert_true(event_plain_batch(body, strlen(body), 100, &a, &events, &count));
    assert_int_equal(count, 2);
    assert_string_equal(events[0].properties_json,
                        "{\"tokens\":101,\"model\":\"large\",\"kind\":\"output\"}");
    assert_int_equal(events[1].timestamp, INT64_C(1700000000500000));
    assert_false(event_plain_batch(body, strlen(body), 1, &a, &events, &count)); /* too many */
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agrees_with_json_c_on_random_batches),
        cmocka_unit_test(one_event_agrees_with_json_c),
        cmocka_unit_test(stored_properties_agree_with_json_c),
        cmocka_unit_test(a_typical_batch_is_plain),
        cmocka_unit_test(a_set_property_reads_back),
        cmocka_unit_test(padded_timestamps_read_alike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
