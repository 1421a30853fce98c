/*
 * engine/sweep_quarantine: the customers the real clock's sweep passes over after it failed at
 * them. Their wait starts at a minute and doubles up to an hour; the list the sweep's queries
 * leave out holds those still waiting, of one organization; a sweep that succeeds (or finds
 * nothing due) lets go of those whose time had come, not of the others. The end-to-end case
 * (a customer whose wallet no longer loads, another's hold expiring all the same) is
 * tests/api/sweep_isolation.test.mjs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "engine/sweep_quarantine.h"

#define SEC TIMESTAMP_USEC_PER_SEC

static const char *skipped(const struct sweep_quarantine *q, int64_t org, tally_time now,
                           struct arena *a)
{
    const char *list;
    assert_true(sweep_quarantine_skipped(q, org, now, a, &list));
    return list;
}

static void waits_double_up_to_an_hour(void **state)
{
    (void)state;
    struct sweep_quarantine q = {0};
    tally_time now = 1000 * SEC;
    tally_time expected[] = {60, 120, 240, 480, 960, 1920, 3600, 3600};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_int_equal(sweep_quarantine_fail(&q, 1, 7, now), expected[i] * SEC);
    assert_int_equal(sweep_quarantine_count(&q), 1);
    sweep_quarantine_free(&q);
}

static void the_skip_list_holds_an_organizations_waiting_customers(void **state)
{
    (void)state;
    struct sweep_quarantine q = {0};
    struct arena a;
    arena_init(&a);
    tally_time now = 1000 * SEC;
    assert_null(skipped(&q, 1, now, &a));
    sweep_quarantine_fail(&q, 1, 7, now);
    sweep_quarantine_fail(&q, 1, 9223372036854775807LL, now + 10 * SEC);
    sweep_quarantine_fail(&q, 2, 8, now);
    assert_string_equal(skipped(&q, 1, now + 10 * SEC, &a), "[7,9223372036854775807]");
    assert_string_equal(skipped(&q, 2, now, &a), "[8]");
    assert_null(skipped(&q, 3, now, &a));
    /* customer 7's minute is over, the other's is not */
    assert_string_equal(skipped(&q, 1, now + 60 * SEC, &a), "[9223372036854775807]");
    assert_false(sweep_quarantine_org_waits(&q, 1, now));
    arena_free(&a);
    sweep_quarantine_free(&q);
}

static void a_success_lets_go_only_of_those_it_swept(void **state)
{
    (void)state;
    struct sweep_quarantine q = {0};
    tally_time now = 1000 * SEC;
    sweep_quarantine_fail(&q, 1, 7, now);
    sweep_quarantine_fail(&q, 1, 8, now + 30 * SEC);
    sweep_quarantine_fail(&q, 2, 7, now);
    /* before anyone's time: nobody leaves */
    sweep_quarantine_passed(&q, 1, now + 59 * SEC);
    assert_int_equal(sweep_quarantine_count(&q), 3);
    /* 7 was swept with the others (its time came), 8 was passed over, org 2 is another */
    sweep_quarantine_passed(&q, 1, now + 60 * SEC);
    assert_int_equal(sweep_quarantine_count(&q), 2);
    struct arena a;
    arena_init(&a);
    assert_string_equal(skipped(&q, 1, now + 60 * SEC, &a), "[8]");
    assert_string_equal(skipped(&q, 2, now + 59 * SEC, &a), "[7]");
    /* failing again after leaving starts over at a minute */
    assert_int_equal(sweep_quarantine_fail(&q, 1, 7, now + 61 * SEC), 60 * SEC);
    arena_free(&a);
    sweep_quarantine_free(&q);
}

static void a_failure_naming_no_customer_holds_the_organization_back(void **state)
{
    (void)state;
    struct sweep_quarantine q = {0};
    struct arena a;
    arena_init(&a);
    tally_time now = 1000 * SEC;
    sweep_quarantine_fail(&q, 1, 0, now);
    assert_true(sweep_quarantine_org_waits(&q, 1, now + 59 * SEC));
    assert_false(sweep_quarantine_org_waits(&q, 2, now));
    assert_null(skipped(&q, 1, now, &a)); /* no customer of it is in the list */
    assert_false(sweep_quarantine_org_waits(&q, 1, now + 60 * SEC));
    sweep_quarantine_passed(&q, 1, now + 60 * SEC);
    assert_int_equal(sweep_quarantine_count(&q), 0);
    arena_free(&a);
    sweep_quarantine_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(waits_double_up_to_an_hour),
        cmocka_unit_test(the_skip_list_holds_an_organizations_waiting_customers),
        cmocka_unit_test(a_success_lets_go_only_of_those_it_swept),
        cmocka_unit_test(a_failure_naming_no_customer_holds_the_organization_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
