/* core/customer and core/country: the rules a customer's fields obey. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/country.h"
#include "core/customer.h"

static struct customer_input input_with(enum customer_text field, const char *value)
{
    struct customer_input in;
    memset(&in, 0, sizeof in);
    customer_init_defaults(&in.values);
    in.values.external_id = "c";
    in.values.text[field] = value;
    in.has_text[field] = true;
    return in;
}

static void expect_refused(struct customer_input in, const char *field, const char *code)
{
    const char *f = NULL, *c = NULL;
    assert_false(customer_input_validate(&in, &f, &c));
    assert_string_equal(f, field);
    assert_string_equal(c, code);
}

static void expect_accepted(struct customer_input in)
{
    const char *f = NULL, *c = NULL;
    assert_true(customer_input_validate(&in, &f, &c));
}

static void currencies(void **state)
{
    (void)state;
    expect_accepted(input_with(CUSTOMER_CURRENCY, "EUR"));
    expect_accepted(input_with(CUSTOMER_CURRENCY, "JPY"));
    expect_accepted(input_with(CUSTOMER_CURRENCY, "KWD"));
    expect_accepted(input_with(CUSTOMER_CURRENCY, NULL)); /* null clears it */
    expect_refused(input_with(CUSTOMER_CURRENCY, "XAU"), "currency", "value_is_invalid");
    expect_refused(input_with(CUSTOMER_CURRENCY, "eur"), "currency", "value_is_invalid");
    expect_refused(input_with(CUSTOMER_CURRENCY, "EURO"), "currency", "value_is_too_long");
    expect_refused(input_with(CUSTOMER_CURRENCY, ""), "currency", "value_is_invalid");
    /* the same rule, as the customer list's currencies[] filter asks it */
    assert_true(customer_currency_is_valid("EUR", 3));
    assert_true(customer_currency_is_valid("MRO", 3)); /* withdrawn, still Lago's */
    assert_false(customer_currency_is_valid("XAU", 3));
    assert_false(customer_currency_is_valid("eur", 3));
    assert_false(customer_currency_is_valid("EURO", 4));
    assert_false(customer_currency_is_valid("", 0));
}

static void countries(void **state)
{
    (void)state;
    expect_accepted(input_with(CUSTOMER_COUNTRY, "FR"));
    expect_accepted(input_with(CUSTOMER_COUNTRY, "US"));
    expect_refused(input_with(CUSTOMER_COUNTRY, "XX"), "country", "country_code_invalid");
    expect_refused(input_with(CUSTOMER_COUNTRY, "fr"), "country", "country_code_invalid");
    expect_refused(input_with(CUSTOMER_COUNTRY, "F"), "country", "country_code_invalid");
    assert_true(country_code_count > 240 && country_code_count < 260);
    for (size_t i = 1; i < country_code_count; i++)
        assert_true(memcmp(country_codes[i - 1], country_codes[i], 2) < 0); /* sorted, unique */
}

static void country_table_is_generated_from_iso_codes(void **state)
{
    (void)state;
    const char *src = "/usr/share/iso-codes/json/iso_3166-1.json";
    FILE *f = fopen(src, "r");
    if (!f)
        skip();
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && scripts/gen-country-table.sh %s /tmp/tally-country-%d.c && "
             "cmp -s /tmp/tally-country-%d.c src/core/country_table.c",
             TALLY_SOURCE_DIR, src, (int)getpid(), (int)getpid());
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "/tmp/tally-country-%d.c", (int)getpid());
    remove(cmd);
    assert_int_equal(rc, 0);
}

static void enums_and_integers(void **state)
{
    (void)state;
    expect_refused(input_with(CUSTOMER_ACCOUNT_TYPE, "robot"), "account_type", "value_is_invalid");
    expect_refused(input_with(CUSTOMER_ACCOUNT_TYPE, NULL), "account_type", "value_is_invalid");
    expect_accepted(input_with(CUSTOMER_ACCOUNT_TYPE, "partner"));
    expect_accepted(input_with(CUSTOMER_CUSTOMER_TYPE, "company"));
    expect_accepted(input_with(CUSTOMER_CUSTOMER_TYPE, NULL));
    expect_refused(input_with(CUSTOMER_CUSTOMER_TYPE, "alien"), "customer_type",
                   "value_is_invalid");
    expect_refused(input_with(CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE, "maybe"),
                   "finalize_zero_amount_invoice", "invalid_value"); /* Lago's code */
    struct customer_input in = input_with(CUSTOMER_NAME, "n");
    in.has_net_payment_term = true;
    in.values.net_payment_term = 366;
    expect_refused(in, "net_payment_term", "value_is_out_of_range");
    in.values.net_payment_term = CUSTOMER_INT_NULL;
    expect_accepted(in);
    in.has_invoice_grace_period = true;
    in.values.invoice_grace_period = -1;
    expect_refused(in, "invoice_grace_period", "value_is_out_of_range");
    in.values.invoice_grace_period = 365;
    expect_accepted(in);
}

static void emails(void **state)
{
    (void)state;
    /* several addresses, comma-separated, each one checked (Lago's EmailValidator; an audit
     * found them refused) */
    const char *good[] = {"a@b.co", "first.last+tag@example.com", "", "a@b.co,c@d.co",
                          "a@b.co, c@d.co ,e@f.co"};
    const char *bad[] = {
        "a",        "@b.co",    "a@",       "a@b",     "a@b.",           "a@@b.co",
        "a b@c.co", "a@b@c.co", "a,b@c.co", "a@b.co,", "a@b.co,,c@d.co", "a@b.co;c@d.co"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        expect_accepted(input_with(CUSTOMER_EMAIL, good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(input_with(CUSTOMER_EMAIL, bad[i]), "email", "invalid_email_format");
}

static void lengths(void **state)
{
    (void)state;
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    expect_refused(input_with(CUSTOMER_NAME, long_name), "name", "value_is_too_long");
    long_name[255] = '\0';
    expect_accepted(input_with(CUSTOMER_NAME, long_name));
}

static void apply_replaces_only_named_fields(void **state)
{
    (void)state;
    struct customer c;
    customer_init_defaults(&c);
    c.text[CUSTOMER_NAME] = "Old";
    c.text[CUSTOMER_CITY] = "Paris";
    c.net_payment_term = 30;
    struct customer_input in = input_with(CUSTOMER_NAME, "New");
    in.has_text[CUSTOMER_EMAIL] = true; /* named as null: cleared */
    c.text[CUSTOMER_EMAIL] = "x@y.z";
    customer_apply(&c, &in);
    assert_string_equal(c.text[CUSTOMER_NAME], "New");
    assert_string_equal(c.text[CUSTOMER_CITY], "Paris");
    assert_null(c.text[CUSTOMER_EMAIL]);
    assert_int_equal(c.net_payment_term, 30);
    assert_string_equal(c.text[CUSTOMER_ACCOUNT_TYPE], "customer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(currencies),
        cmocka_unit_test(countries),
        cmocka_unit_test(country_table_is_generated_from_iso_codes),
        cmocka_unit_test(enums_and_integers),
        cmocka_unit_test(emails),
        cmocka_unit_test(lengths),
        cmocka_unit_test(apply_replaces_only_named_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
