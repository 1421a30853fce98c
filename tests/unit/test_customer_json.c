/*
 * json/customer_json and json_in_merge: what a customer upsert's objects make of the stored
 * ones (members sent replace, null included; members not sent stay), and the shallow merge
 * under them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <string.h>

#include "json/customer_json.h"
#include "json/json_in.h"

static void merge_replaces_sent_members_and_keeps_the_rest(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    const char *m = json_in_merge_text(&a, "{\"a\":1,\"b\":{\"x\":1},\"c\":\"k/v\"}",
                                       "{\"b\":{\"y\":2},\"a\":null,\"d\":[]}");
    assert_string_equal(m, "{\"a\":null,\"b\":{\"y\":2},\"c\":\"k/v\",\"d\":[]}");
    assert_null(json_in_merge_text(&a, "[1]", "{}"));
    assert_null(json_in_merge_text(&a, "{}", "not json"));
    arena_free(&a);
}

static void upsert_objects_merge_over_the_stored_ones(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    struct customer stored;
    customer_init_defaults(&stored);
    stored.doc[CUSTOMER_BILLING_CONFIGURATION] = "\"payment_provider\":\"stripe\",\"sync\":true";
    stored.doc[CUSTOMER_SHIPPING_ADDRESS] =
        "{\"address_line1\":null,\"address_line2\":null,\"city\":\"Berlin\",\"zipcode\":"
        "\"10115\",\"state\":null,\"country\":\"DE\"}";
    stored.doc[CUSTOMER_METADATA] = "[{\"key\":\"a\"}]";
    struct customer_input in = {0};
    customer_init_defaults(&in.values);
    in.has_doc[CUSTOMER_BILLING_CONFIGURATION] = true;
    in.values.doc[CUSTOMER_BILLING_CONFIGURATION] = "\"document_locale\":\"fr\",\"sync\":null";
    in.has_doc[CUSTOMER_SHIPPING_ADDRESS] = true;
    in.values.doc[CUSTOMER_SHIPPING_ADDRESS] = "{\"city\":\"Munich\"}";
    in.has_doc[CUSTOMER_METADATA] = true;
    in.values.doc[CUSTOMER_METADATA] = "[]";
    assert_true(customer_json_merge_docs(&a, &stored, &in));
    assert_string_equal(in.values.doc[CUSTOMER_BILLING_CONFIGURATION],
                        "\"payment_provider\":\"stripe\",\"sync\":null,\"document_locale\":\"fr\"");
    assert_string_equal(in.values.doc[CUSTOMER_SHIPPING_ADDRESS],
                        "{\"address_line1\":null,\"address_line2\":null,\"city\":\"Munich\","
                        "\"zipcode\":\"10115\",\"state\":null,\"country\":\"DE\"}");
    assert_string_equal(in.values.doc[CUSTOMER_METADATA], "[]"); /* a list: replaced whole */
    arena_free(&a);
}

static void a_new_customer_gets_every_address_member(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    struct customer stored;
    customer_init_defaults(&stored);
    struct customer_input in = {0};
    customer_init_defaults(&in.values);
    in.has_doc[CUSTOMER_SHIPPING_ADDRESS] = true;
    in.values.doc[CUSTOMER_SHIPPING_ADDRESS] = "{\"city\":\"Oslo\"}";
    in.has_doc[CUSTOMER_BILLING_CONFIGURATION] = true;
    in.values.doc[CUSTOMER_BILLING_CONFIGURATION] = "";
    assert_true(customer_json_merge_docs(&a, &stored, &in));
    assert_string_equal(in.values.doc[CUSTOMER_SHIPPING_ADDRESS],
                        "{\"address_line1\":null,\"address_line2\":null,\"city\":\"Oslo\","
                        "\"zipcode\":null,\"state\":null,\"country\":null}");
    assert_string_equal(in.values.doc[CUSTOMER_BILLING_CONFIGURATION], "");
    /* an object sent as null clears it: nothing to merge */
    in.values.doc[CUSTOMER_SHIPPING_ADDRESS] = NULL;
    assert_true(customer_json_merge_docs(&a, &stored, &in));
    assert_null(in.values.doc[CUSTOMER_SHIPPING_ADDRESS]);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(merge_replaces_sent_members_and_keeps_the_rest),
        cmocka_unit_test(upsert_objects_merge_over_the_stored_ones),
        cmocka_unit_test(a_new_customer_gets_every_address_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
