/*
 * sys/bigmem: memory comes zeroed, a large allocation aligned to a huge page (so that each
 * 2 MiB of it can be one), every byte writable, and released by size; and a dedup set kept in
 * it grows through several tables and finds every entry, as one in calloc'd memory does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/dedup.h"
#include "sys/bigmem.h"

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static void zeroed_aligned_and_writable(void **state)
{
    (void)state;
    const size_t sizes[] = {0,
                            1,
                            4096,
                            BIGMEM_HUGE_BYTES - 1,
                            BIGMEM_HUGE_BYTES,
                            BIGMEM_HUGE_BYTES + 5,
                            3 * BIGMEM_HUGE_BYTES + 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *p = bigmem_alloc_zeroed(n);
        assert_non_null(p);
        assert_true(all_zero(p, n));
        if (n >= BIGMEM_HUGE_BYTES)
            assert_int_equal((uintptr_t)p % BIGMEM_HUGE_BYTES, 0);
        memset(p, 0xab, n); /* every byte is there */
        if (n)
            assert_int_equal(p[n - 1], 0xab);
        bigmem_free(p, n);
    }
    bigmem_free(NULL, BIGMEM_HUGE_BYTES); /* nothing */
}

static struct siphash128 fp_of(uint64_t id)
{
    static const uint8_t key[SIPHASH_KEY_LEN] = {3};
    return dedup_fingerprint(key, &id, sizeof id);
}

static void a_dedup_set_in_it(void **state)
{
    (void)state;
    static const struct dedup_memory huge = {bigmem_alloc_zeroed, bigmem_free};
    struct dedup d;
    assert_true(dedup_init_in(&d, 0, &huge));
    enum { N = 300000 }; /* 16 MiB of slots at the end: tables below and above a huge page */
    for (uint64_t i = 0; i < N; i++)
        assert_int_equal(dedup_insert(&d, fp_of(i), i % 3, i), DEDUP_INSERTED);
    assert_true(dedup_memory_bytes(&d) >= 4 * BIGMEM_HUGE_BYTES);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v;
        assert_true(dedup_find(&d, fp_of(i), i % 3, &v));
        assert_int_equal(v, i);
        assert_int_equal(dedup_insert(&d, fp_of(i), i % 3, 0), DEDUP_EXISTS);
    }
    assert_false(dedup_find(&d, fp_of(N), N % 3, NULL));
    for (uint64_t i = 0; i < N; i += 2)
        assert_true(dedup_remove(&d, fp_of(i), i % 3));
    assert_int_equal(d.count, N / 2);
    dedup_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zeroed_aligned_and_writable),
        cmocka_unit_test(a_dedup_set_in_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
