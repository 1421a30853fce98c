/*
 * json/json_build: a value whose making failed (NULL where one was meant), or a member json-c
 * refuses to add, fails the build, and it stays failed; nulls set on purpose do not. What a
 * build that did not fail writes is what json_object_object_add would have, member for member
 * and in order. Under ASan, no reference is leaked or dropped twice on either path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <string.h>

#include "json/json_build.h"
#include "util/arena.h"

static const char *text(struct json_object *obj)
{
    return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
}

static void every_kind_as_json_c_sets_it(void **state)
{
    (void)state;
    struct json_object *shared = json_tokener_parse("{\"k\":\"v\"}");
    struct json_object *obj = json_object_new_object();
    struct json_build b;
    json_build_init(&b, obj);
    json_build_string(&b, "s", "x/y");
    json_build_string_or_null(&b, "sn", "z");
    json_build_bool(&b, "t", true);
    json_build_bool(&b, "f", false);
    json_build_int64(&b, "i", INT64_MIN);
    json_build_take(&b, "a", json_object_new_array());
    json_build_share(&b, "shared", shared);
    assert_false(json_build_failed(&b));
    assert_string_equal(text(obj), "{\"s\":\"x\\/y\",\"sn\":\"z\",\"t\":true,\"f\":false,"
                                   "\"i\":-9223372036854775808,\"a\":[],\"shared\":{\"k\":\"v\"}}");
    /* the same members through json_object_object_add, as the callers set them before */
    struct json_object *direct = json_object_new_object();
    json_object_object_add(direct, "s", json_object_new_string("x/y"));
    json_object_object_add(direct, "sn", json_object_new_string("z"));
    json_object_object_add(direct, "t", json_object_new_boolean(true));
    json_object_object_add(direct, "f", json_object_new_boolean(false));
    json_object_object_add(direct, "i", json_object_new_int64(INT64_MIN));
    json_object_object_add(direct, "a", json_object_new_array());
    json_object_object_add(direct, "shared", json_object_get(shared));
    assert_string_equal(text(obj), text(direct));
    json_object_put(direct);
    /* a shared value is held by the object as well as by its first owner */
    json_object_put(shared);
    struct json_object *v;
    assert_true(json_object_object_get_ex(obj, "shared", &v));
    assert_string_equal(text(v), "{\"k\":\"v\"}");
    json_object_put(obj);
}

static void intended_nulls_do_not_fail(void **state)
{
    (void)state;
    struct json_object *obj = json_object_new_object();
    struct json_build b;
    json_build_init(&b, obj);
    json_build_string_or_null(&b, "po", NULL);
    json_build_null(&b, "interval");
    json_build_share(&b, "metadata", NULL);
    assert_false(json_build_failed(&b));
    assert_string_equal(text(obj), "{\"po\":null,\"interval\":null,\"metadata\":null}");
    json_object_put(obj);
}

/* A member set again replaces the first in its place, as json_object_object_add does: a
 * stored document merged over keeps its members' order. */
static void a_member_set_again_keeps_its_place(void **state)
{
    (void)state;
    struct json_object *obj = json_tokener_parse("{\"a\":1,\"b\":2,\"c\":null}");
    struct json_build b;
    json_build_init(&b, obj);
    json_build_string(&b, "a", "one");
    json_build_null(&b, "b");
    json_build_int64(&b, "c", 3);
    json_build_bool(&b, "d", true);
    assert_false(json_build_failed(&b));
    assert_string_equal(text(obj), "{\"a\":\"one\",\"b\":null,\"c\":3,\"d\":true}");
    json_object_put(obj);
}

/* NULL from a maker (json_object_new_string and its kin when memory runs out) is no JSON null:
 * the build fails, nothing later is set, and a value handed over later is released. */
static void a_failed_value_fails_the_build(void **state)
{
    (void)state;
    struct json_object *obj = json_object_new_object();
    struct json_build b;
    json_build_init(&b, obj);
    json_build_string(&b, "before", "kept");
    json_build_take(&b, "made", NULL);
    assert_true(json_build_failed(&b));
    json_build_string(&b, "after", "x");
    json_build_take(&b, "list", json_object_new_array()); /* released: ASan sees no leak */
    json_build_null(&b, "n");
    json_build_share(&b, "shared", obj); /* no reference taken, none dropped */
    assert_true(json_build_failed(&b));
    assert_string_equal(text(obj), "{\"before\":\"kept\"}");
    json_object_put(obj);

    /* text that could not be made (a NULL string where one is meant) fails it too */
    obj = json_object_new_object();
    json_build_init(&b, obj);
    json_build_string(&b, "lago_id", NULL);
    assert_true(json_build_failed(&b));
    assert_int_equal(json_object_object_length(obj), 0);
    json_object_put(obj);
}

/* An object whose own making failed: the builder starts failed, and releases what it is
 * given. */
static void no_object_starts_failed(void **state)
{
    (void)state;
    struct json_build b;
    json_build_init(&b, NULL);
    assert_true(json_build_failed(&b));
    json_build_take(&b, "a", json_object_new_array());
    json_build_string(&b, "s", "x");
    json_build_null(&b, "n");
    assert_true(json_build_failed(&b));
}

/* json_object_object_add refusing a member (here the one refusal that needs no lack of
 * memory: an object set into itself) fails the build, and the value's reference handed over
 * is released, not kept nor dropped twice. */
static void a_refused_add_fails_the_build(void **state)
{
    (void)state;
    struct json_object *obj = json_object_new_object();
    struct json_build b;
    json_build_init(&b, obj);
    json_build_take(&b, "self", json_object_get(obj));
    assert_true(json_build_failed(&b));
    json_object_put(obj); /* the last reference: ASan sees it freed once, nothing leaked */

    obj = json_object_new_object();
    json_build_init(&b, obj);
    json_build_share(&b, "self", obj);
    assert_true(json_build_failed(&b));
    json_object_put(obj);
}

static void text_only_of_a_build_that_held(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    struct json_object *obj = json_object_new_object();
    struct json_build b;
    json_build_init(&b, obj);
    json_build_string(&b, "url", "a/b");
    const char *plain = json_build_text(&b, JSON_C_TO_STRING_PLAIN, &a);
    const char *unescaped =
        json_build_text(&b, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &a);
    assert_non_null(plain);
    assert_string_equal(plain, "{\"url\":\"a\\/b\"}");
    assert_string_equal(unescaped, "{\"url\":\"a/b\"}");
    json_build_take(&b, "lost", NULL);
    assert_null(json_build_text(&b, JSON_C_TO_STRING_PLAIN, &a));
    json_object_put(obj);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_kind_as_json_c_sets_it),
        cmocka_unit_test(intended_nulls_do_not_fail),
        cmocka_unit_test(a_member_set_again_keeps_its_place),
        cmocka_unit_test(a_failed_value_fails_the_build),
        cmocka_unit_test(no_object_starts_failed),
        cmocka_unit_test(a_refused_add_fails_the_build),
        cmocka_unit_test(text_only_of_a_build_that_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
