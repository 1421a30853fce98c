/*
 * engine/usage_view: the map of published current-usage answers. A reader's view outlives
 * its replacement; drops are per subscription, per organization or all; the map refuses new
 * subscriptions past USAGE_VIEWS_MAX but still renews the ones it has; and a reader thread
 * racing the writer's replacements never reads freed memory (run under ASan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/usage_view.h"

static struct usage_view *view(int64_t org_id, const char *external_id, const char *body,
                               uint64_t rendered_in)
{
    struct usage u = {.org_id = org_id, .subscription_id = 7, .external_id = external_id};
    struct usage_view *v =
        usage_view_new(&u, "customer", "Europe/Paris", INT64_MAX, rendered_in, body, strlen(body));
    assert_non_null(v);
    return v;
}

static void a_reader_keeps_the_view_it_holds(void **state)
{
    (void)state;
    static struct usage_views m;
    usage_views_init(&m);
    assert_true(usage_views_put(&m, view(1, "sub", "{\"first\":1}", 1)));
    struct usage_view *held = usage_views_get(&m, 1, "sub");
    assert_non_null(held);
    assert_true(usage_views_put(&m, view(1, "sub", "{\"second\":2}", 2)));
    assert_int_equal(usage_views_count(&m), 1);
    assert_string_equal(held->body, "{\"first\":1}"); /* still whole */
    assert_string_equal(held->external_customer_id, "customer");
    assert_string_equal(held->customer_timezone, "Europe/Paris");
    usage_view_release(held);
    struct usage_view *now = usage_views_get(&m, 1, "sub");
    assert_string_equal(now->body, "{\"second\":2}");
    assert_int_equal(now->body_len, strlen("{\"second\":2}"));
    assert_int_equal(now->rendered_in, 2);
    usage_view_release(now);
    assert_null(usage_views_get(&m, 2, "sub")); /* another organization's id is another key */
    assert_null(usage_views_get(&m, 1, "su"));
    usage_views_free(&m);
}

static void drops_by_subscription_organization_or_all(void **state)
{
    (void)state;
    static struct usage_views m;
    usage_views_init(&m);
    char id[32];
    for (int org = 1; org <= 3; org++)
        for (int i = 0; i < 100; i++) {
            snprintf(id, sizeof id, "s%d", i);
            assert_true(usage_views_put(&m, view(org, id, "{}", 1)));
        }
    assert_int_equal(usage_views_count(&m), 300);
    usage_views_drop(&m, 2, "s5");
    assert_null(usage_views_get(&m, 2, "s5"));
    assert_int_equal(usage_views_count(&m), 299);
    usage_views_drop(&m, 2, "s5"); /* twice: nothing */
    assert_int_equal(usage_views_count(&m), 299);
    usage_views_drop_org(&m, 1);
    assert_int_equal(usage_views_count(&m), 199);
    assert_null(usage_views_get(&m, 1, "s0"));
    struct usage_view *kept = usage_views_get(&m, 3, "s99");
    assert_non_null(kept);
    usage_view_release(kept);
    usage_views_clear(&m);
    assert_int_equal(usage_views_count(&m), 0);
    assert_null(usage_views_get(&m, 3, "s99"));
    usage_views_free(&m);
}

static void full_map_refuses_new_subscriptions_only(void **state)
{
    (void)state;
    static struct usage_views m;
    usage_views_init(&m);
    char id[32];
    for (int i = 0; i < USAGE_VIEWS_MAX; i++) {
        snprintf(id, sizeof id, "s%d", i);
        assert_true(usage_views_put(&m, view(1, id, "{}", 1)));
    }
    assert_false(usage_views_put(&m, view(1, "one too many", "{}", 1)));
    assert_true(usage_views_put(&m, view(1, "s42", "{\"renewed\":true}", 2)));
    struct usage_view *v = usage_views_get(&m, 1, "s42");
    assert_string_equal(v->body, "{\"renewed\":true}");
    usage_view_release(v);
    assert_int_equal(usage_views_count(&m), USAGE_VIEWS_MAX);
    usage_views_free(&m);
}

struct race {
    struct usage_views *m;
    _Atomic int stop;
    long reads;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->stop)) {
        struct usage_view *v = usage_views_get(r->m, 1, "hot");
        if (v) {
            /* every published body is "{"n":N}" with its length: a torn or freed one is not */
            if (v->body_len != strlen(v->body) || v->body[0] != '{')
                abort();
            usage_view_touch(v, 1);
            usage_view_release(v);
            r->reads++;
        }
    }
    return NULL;
}

static void readers_race_the_writer(void **state)
{
    (void)state;
    static struct usage_views m;
    usage_views_init(&m);
    struct race r = {.m = &m};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, reader, &r), 0);
    char body[32];
    for (int i = 0; i < 200000; i++) {
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        if (i % 1000 == 999)
            usage_views_drop_org(&m, 1);
        else
            assert_true(usage_views_put(&m, view(1, "hot", body, (uint64_t)i)));
    }
    atomic_store(&r.stop, 1);
    pthread_join(thread, NULL);
    assert_true(r.reads > 0);
    usage_views_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_reader_keeps_the_view_it_holds),
        cmocka_unit_test(drops_by_subscription_organization_or_all),
        cmocka_unit_test(full_map_refuses_new_subscriptions_only),
        cmocka_unit_test(readers_race_the_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
