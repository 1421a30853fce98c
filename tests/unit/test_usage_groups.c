/*
 * engine/usage's pricing groups on a usage built by hand (no store): each group priced alone by
 * its bucket's model, a missing key as its own null group, the group limit refusing live events
 * only, a savepoint taking back what a command changed in a group and giving up (so the caller
 * rebuilds) when the command opened one, estimates priced in the event's group, and an ungrouped
 * bucket allocating nothing for groups.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine/usage.h"

static const char *const region_key[] = {"region"};

/* A usage of one count charge on "calls", priced 10 USD a package of 2, grouped by `keys`
 * (none: ungrouped). Freed with usage_release. */
static struct usage *package_usage(const char *const *keys, size_t key_count)
{
    struct arena a;
    arena_init(&a);
    struct usage *u = arena_alloc(&a, sizeof *u);
    assert_non_null(u);
    u->arena = a; /* the usage lives in its own arena, as engine/usage builds it */
    u->from = 0;
    u->to = INT64_C(86400000000) * 30;
    u->exponent = 2;
    memcpy(u->currency, "USD", 4);
    u->charges = arena_alloc(&u->arena, sizeof *u->charges);
    assert_non_null(u->charges);
    u->charge_count = 1;
    struct usage_charge *c = &u->charges[0];
    c->lago_id = "charge";
    c->charge_model = "package";
    c->metric_code = "calls";
    c->metric.aggregation = AGGREGATION_COUNT;
    c->tax_rate = money_from_int(0);
    c->buckets = arena_alloc(&u->arena, sizeof *c->buckets);
    assert_non_null(c->buckets);
    struct usage_bucket *b = &c->buckets[0];
    b->properties.kind = CHARGE_MODEL_PACKAGE;
    b->properties.package = (struct charge_model_package){money_from_int(10), 2, 0};
    b->properties.group_keys = keys;
    b->properties.group_key_count = key_count;
    assert_int_equal(aggregation_init(&b->aggregation, &c->metric, u->from, u->to), AGGREGATION_OK);
    return u;
}

static enum aggregation_status call(struct usage *u, const char *region, uint64_t seq, bool stored)
{
    struct event_property p = {"region", region, true};
    struct event e = {.code = "calls", .properties = &p, .property_count = region ? 1 : 0};
    return stored ? usage_apply_stored(u, &e, 1000, seq) : usage_apply(u, &e, 1000, seq);
}

static int64_t amount(const struct usage *u)
{
    struct usage_amount a;
    assert_true(usage_charge_amount(u, &u->charges[0], u->to, &a));
    return a.amount_cents;
}

static void each_group_is_priced_alone(void **state)
{
    (void)state;
    struct usage *u = package_usage(region_key, 1);
    const char *regions[] = {"eu", "us", "eu", NULL};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(call(u, regions[i], i + 1, false), AGGREGATION_OK);
    const struct usage_bucket *b = &u->charges[0].buckets[0];
    assert_int_equal(b->group_count, 3); /* eu, us and the null group */
    assert_null(b->groups[2]->values[0]);
    assert_int_equal(amount(u), 3000); /* a package each: ungrouped, 4 calls are 2000 */
    struct usage_amount a;
    assert_true(usage_group_amount(u, &u->charges[0], b, b->groups[0], &a));
    assert_int_equal(a.events_count, 2);
    assert_int_equal(a.amount_cents, 1000);
    usage_release(u);
}

static void an_ungrouped_bucket_keeps_no_groups(void **state)
{
    (void)state;
    struct usage *u = package_usage(NULL, 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(call(u, i ? "eu" : "us", i + 1, false), AGGREGATION_OK);
    const struct usage_bucket *b = &u->charges[0].buckets[0];
    assert_null(b->groups);
    assert_int_equal(u->charges[0].group_count, 0);
    assert_int_equal(amount(u), 2000);
    usage_release(u);
}

static void the_limit_refuses_live_events_only(void **state)
{
    (void)state;
    struct usage *u = package_usage(region_key, 1);
    char name[32];
    for (int i = 0; i < USAGE_GROUPS_MAX; i++) {
        snprintf(name, sizeof name, "r%d", i);
        assert_int_equal(call(u, name, (uint64_t)i + 1, false), AGGREGATION_OK);
    }
    assert_int_equal(amount(u), 1000 * USAGE_GROUPS_MAX);
    assert_int_equal(call(u, "one more", 5000, false), AGGREGATION_ERR_GROUPS);
    assert_int_equal(u->charges[0].group_count, USAGE_GROUPS_MAX); /* nothing opened */
    assert_int_equal(amount(u), 1000 * USAGE_GROUPS_MAX);
    assert_int_equal(call(u, "r7", 5001, false), AGGREGATION_OK); /* an existing group */
    /* a stored event was accepted: a rebuild takes it whatever the limit */
    assert_int_equal(call(u, "one more", 5002, true), AGGREGATION_OK);
    assert_int_equal(u->charges[0].group_count, USAGE_GROUPS_MAX + 1);
    usage_release(u);
}

static void a_savepoint_takes_back_a_group_s_change_but_not_a_new_group(void **state)
{
    (void)state;
    struct usage *u = package_usage(region_key, 1);
    assert_int_equal(call(u, "eu", 1, false), AGGREGATION_OK);
    assert_int_equal(call(u, "eu", 2, false), AGGREGATION_OK);
    assert_true(usage_savepoint(u, 1));
    assert_int_equal(call(u, "eu", 3, false), AGGREGATION_OK); /* a second package */
    assert_int_equal(amount(u), 2000);
    assert_true(usage_rollback(u, 1, u->savepoint_keep));
    assert_int_equal(amount(u), 1000);
    assert_true(usage_savepoint(u, 2));
    assert_int_equal(call(u, "us", 4, false), AGGREGATION_OK);
    assert_false(usage_rollback(u, 2, u->savepoint_keep)); /* the caller rebuilds instead */
    usage_release(u);
}

/* An event the sum passes over (a value that is not a number) in a group not seen before: the
 * group it opened is closed again, and nothing of it is touched after (an audit found the
 * writer writing into the freed group, and every start replaying the event doing it again). */
static void an_event_passed_over_leaves_no_group(void **state)
{
    (void)state;
    struct usage *u = package_usage(region_key, 1);
    struct usage_charge *c = &u->charges[0];
    c->metric.aggregation = AGGREGATION_SUM;
    c->metric.field_name = "v";
    struct usage_bucket *b = &c->buckets[0];
    aggregation_free(&b->aggregation);
    assert_int_equal(aggregation_init(&b->aggregation, &c->metric, u->from, u->to), AGGREGATION_OK);
    for (int stored = 0; stored < 2; stored++) {
        struct event_property p[] = {{"v", "abc", true}, {"region", stored ? "eu" : "us", true}};
        struct event e = {.code = "calls", .properties = p, .property_count = 2};
        enum aggregation_status s =
            stored ? usage_apply_stored(u, &e, 1000, 1) : usage_apply(u, &e, 1000, 1);
        assert_int_equal(s, AGGREGATION_OK);
        assert_int_equal(b->group_count, 0);
        assert_int_equal(c->group_count, 0);
    }
    struct event_property p[] = {{"v", "4", true}, {"region", "us", true}};
    struct event e = {.code = "calls", .properties = p, .property_count = 2};
    assert_int_equal(usage_apply(u, &e, 1000, 2), AGGREGATION_OK);
    assert_int_equal(b->group_count, 1);
    assert_int_equal(amount(u), 2000); /* 4 units, two packages of 2: "abc" counted nothing */
    usage_release(u);
}

static void an_estimate_is_priced_in_the_event_s_group(void **state)
{
    (void)state;
    struct usage *u = package_usage(region_key, 1);
    assert_int_equal(call(u, "eu", 1, false), AGGREGATION_OK);
    struct event_property p = {"region", "eu", true};
    struct event e = {.code = "calls", .properties = &p, .property_count = 1};
    struct usage_estimate est;
    assert_true(usage_estimate(u, &u->charges[0], &e, 1000, &est));
    assert_int_equal(est.amount_cents, 0); /* eu's package has room */
    assert_non_null(est.group);
    p.value = "us";
    assert_true(usage_estimate(u, &u->charges[0], &e, 1000, &est));
    assert_int_equal(est.amount_cents, 1000); /* a group of its own: a package of its own */
    assert_null(est.group);
    assert_int_equal(u->charges[0].group_count, 1); /* nothing taken */
    usage_release(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_group_is_priced_alone),
        cmocka_unit_test(an_ungrouped_bucket_keeps_no_groups),
        cmocka_unit_test(the_limit_refuses_live_events_only),
        cmocka_unit_test(a_savepoint_takes_back_a_group_s_change_but_not_a_new_group),
        cmocka_unit_test(an_estimate_is_priced_in_the_event_s_group),
        cmocka_unit_test(an_event_passed_over_leaves_no_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
