/*
 * json/charge_json's charge filter ids: the same filter (its charge, its values, keys in any
 * order) always has the same id; another charge, other values or the values of a key in
 * another order make another (Lago compares each key's values in order). And the name a fee
 * shows for its filter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "json/charge_json.h"

static const char *const charge = "0b1f2d9a-7c5e-4f1a-9d8e-3a2b1c0d9e8f";

static void same_filter_same_id(void **state)
{
    (void)state;
    char a[UUID_TEXT], b[UUID_TEXT];
    assert_true(charge_json_filter_id(charge, "{\"region\":[\"eu\"],\"tier\":[\"gold\"]}", a));
    assert_true(charge_json_filter_id(charge, "{\"tier\":[\"gold\"],\"region\":[\"eu\"]}", b));
    assert_string_equal(a, b);
    assert_int_equal(a[14], '8'); /* a name-based UUID (sys/digest) */
    assert_true(
        charge_json_filter_id(charge, "{ \"tier\" : [ \"gold\" ], \"region\": [\"eu\"] }", b));
    assert_string_equal(a, b); /* the text's spacing is not the filter's */
}

static void other_filters_other_ids(void **state)
{
    (void)state;
    char base[UUID_TEXT], other[UUID_TEXT];
    assert_true(charge_json_filter_id(charge, "{\"region\":[\"eu\",\"us\"]}", base));
    static const char *const others[] = {
        "{\"region\":[\"us\",\"eu\"]}",             /* a key's values in another order */
        "{\"region\":[\"eu\"]}",                    /* fewer values */
        "{\"region\":[\"eu\",\"us\"],\"tier\":[]}", /* another key */
        "{\"zone\":[\"eu\",\"us\"]}",               /* another key's name */
        "{\"region\":[\"eu,us\"]}",                 /* the values joined */
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_true(charge_json_filter_id(charge, others[i], other));
        assert_string_not_equal(base, other);
    }
    assert_true(charge_json_filter_id("1b1f2d9a-7c5e-4f1a-9d8e-3a2b1c0d9e8f",
                                      "{\"region\":[\"eu\",\"us\"]}", other));
    assert_string_not_equal(base, other); /* the same values on another charge */
}

static void unreadable_values_are_refused(void **state)
{
    (void)state;
    char id[UUID_TEXT];
    assert_false(charge_json_filter_id(charge, "not json", id));
    assert_false(charge_json_filter_id(charge, "[\"eu\"]", id));
    assert_false(charge_json_filter_id(charge, "{\"region\":\"eu\"}", id));
}

static void display_names(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    assert_string_equal(charge_json_filter_display_name(&a, "EU", "{\"region\":[\"eu\"]}"), "EU");
    assert_string_equal(charge_json_filter_display_name(
                            &a, NULL, "{\"region\":[\"eu\",\"us\"],\"tier\":[\"gold\"]}"),
                        "eu, us, gold");
    assert_string_equal(charge_json_filter_display_name(
                            &a, "", "{\"region\":[\"__ALL_FILTER_VALUES__\"],\"tier\":[\"gold\"]}"),
                        "region, gold"); /* a key taking any value shows as its key */
    assert_null(charge_json_filter_display_name(&a, NULL, "{\"region\":\"eu\"}"));
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_filter_same_id),
        cmocka_unit_test(other_filters_other_ids),
        cmocka_unit_test(unreadable_values_are_refused),
        cmocka_unit_test(display_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
