/*
 * api/key_cache: verified API keys by hash. A key is found only after it was put; keys whose
 * slots collide are all found; past KEY_CACHE_MAX it starts over rather than grow; threads
 * may share it (the race suite runs this file under ThreadSanitizer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/key_cache.h"

/* A hash-shaped text: `prefix` (16 hex digits) picks the slot, `n` makes it unique. */
static void hash_of(char out[DIGEST_SHA256_HEX], uint64_t prefix, uint64_t n)
{
    snprintf(out, DIGEST_SHA256_HEX, "%016llx%048llx", (unsigned long long)prefix,
             (unsigned long long)n);
}

static struct key_cache cache; /* 150 KB: not on the stack */

static void found_only_after_put(void **state)
{
    (void)state;
    key_cache_init(&cache);
    char a[DIGEST_SHA256_HEX], b[DIGEST_SHA256_HEX];
    hash_of(a, 0x1234, 1);
    hash_of(b, 0x5678, 2);
    int64_t org = -1;
    assert_false(key_cache_get(&cache, a, &org));
    key_cache_put(&cache, a, 42);
    assert_true(key_cache_get(&cache, a, &org));
    assert_int_equal(org, 42);
    assert_false(key_cache_get(&cache, b, &org));
    key_cache_destroy(&cache);
}

static void colliding_slots_are_all_found(void **state)
{
    (void)state;
    key_cache_init(&cache);
    char h[DIGEST_SHA256_HEX];
    for (uint64_t i = 0; i < 50; i++) {
        hash_of(h, 0xabcdef, i); /* the same home slot for all fifty */
        key_cache_put(&cache, h, (int64_t)(100 + i));
    }
    for (uint64_t i = 0; i < 50; i++) {
        int64_t org = -1;
        hash_of(h, 0xabcdef, i);
        assert_true(key_cache_get(&cache, h, &org));
        assert_int_equal(org, (int64_t)(100 + i));
    }
    hash_of(h, 0xabcdef, 50);
    int64_t org;
    assert_false(key_cache_get(&cache, h, &org));
    key_cache_destroy(&cache);
}

static void starts_over_past_its_bound(void **state)
{
    (void)state;
    key_cache_init(&cache);
    char h[DIGEST_SHA256_HEX];
    for (uint64_t i = 0; i < KEY_CACHE_MAX; i++) {
        hash_of(h, i * 7919, i);
        key_cache_put(&cache, h, (int64_t)i);
    }
    assert_int_equal(cache.count, KEY_CACHE_MAX);
    hash_of(h, 0, 0);
    key_cache_put(&cache, h, 7); /* already there: an update, no growth */
    assert_int_equal(cache.count, KEY_CACHE_MAX);
    hash_of(h, 1, 999999);
    key_cache_put(&cache, h, 5);
    assert_int_equal(cache.count, 1);
    int64_t org = -1;
    assert_true(key_cache_get(&cache, h, &org));
    assert_int_equal(org, 5);
    hash_of(h, 7919, 1);
    assert_false(key_cache_get(&cache, h, &org));
    key_cache_destroy(&cache);
}

static void *hammer(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    char h[DIGEST_SHA256_HEX];
    for (uint64_t i = 0; i < 20000; i++) {
        uint64_t k = (i * 31 + id) % 3000; /* past the bound: starts over while others read */
        hash_of(h, k * 2654435761u, k);
        int64_t org;
        if (key_cache_get(&cache, h, &org) && org != (int64_t)k)
            return (void *)1;
        key_cache_put(&cache, h, (int64_t)k);
    }
    return NULL;
}

static void threads_share_it(void **state)
{
    (void)state;
    key_cache_init(&cache);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *wrong;
        pthread_join(t[i], &wrong);
        assert_null(wrong); /* a key never maps to another organization */
    }
    key_cache_destroy(&cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(found_only_after_put),
        cmocka_unit_test(colliding_slots_are_all_found),
        cmocka_unit_test(starts_over_past_its_bound),
        cmocka_unit_test(threads_share_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
