/*
 * sys/bigmem: memory comes zeroed, a large allocation page aligned, every byte writable, and
 * released by size; a prefaulter faults in what it is given and leaves alone what it is told to
 * forget; and a dedup set kept in it grows through several tables into the one made ahead and
 * finds every entry, as one in calloc'd memory does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

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
                            BIGMEM_MAPPED_MIN_BYTES - 1,
                            BIGMEM_MAPPED_MIN_BYTES,
                            BIGMEM_MAPPED_MIN_BYTES + 5,
                            3 * BIGMEM_MAPPED_MIN_BYTES + 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *p = bigmem_alloc_zeroed(n);
        assert_non_null(p);
        assert_true(all_zero(p, n));
        if (n >= BIGMEM_MAPPED_MIN_BYTES)
            assert_int_equal((uintptr_t)p % BIGMEM_PAGE_BYTES, 0);
        memset(p, 0xab, n); /* every byte is there */
        if (n)
            assert_int_equal(p[n - 1], 0xab);
        bigmem_free(p, n);
    }
    bigmem_free(NULL, BIGMEM_MAPPED_MIN_BYTES); /* nothing */
}

static struct siphash128 fp_of(uint64_t id)
{
    static const uint8_t key[SIPHASH_KEY_LEN] = {3};
    return dedup_fingerprint(key, &id, sizeof id);
}

static void a_dedup_set_in_it(void **state)
{
    (void)state;
    const struct dedup_memory mapped = bigmem_dedup_memory(NULL);
    struct dedup d;
    assert_true(dedup_init_in(&d, 0, &mapped));
    enum { N = 300000 }; /* 16 MiB of slots at the end: tables calloc'd, then mapped */
    for (uint64_t i = 0; i < N; i++)
        assert_int_equal(dedup_insert(&d, fp_of(i), i % 3, i), DEDUP_INSERTED);
    assert_true(dedup_memory_bytes(&d) >= 32 * BIGMEM_MAPPED_MIN_BYTES);
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

/* Waits (at most 10 s) until the prefaulter has done `bytes`; false if it has not. */
static bool prefaulted(struct bigmem_prefaulter *pf, size_t bytes)
{
    for (int i = 0; i < 10000 && bigmem_prefaulted_bytes(pf) < bytes; i++)
        usleep(1000);
    return bigmem_prefaulted_bytes(pf) >= bytes;
}

/* Memory faulted in ahead reads as zero and takes writes; calloc'd memory is not taken. */
static void prefaulted_memory_stays_zero(void **state)
{
    (void)state;
    struct bigmem_prefaulter *pf = bigmem_prefaulter_start();
    if (!pf)
        skip(); /* a kernel before 5.14: memory faults in where it is written */
    size_t n = 3 * BIGMEM_PREFAULT_CHUNK_BYTES + 4096;
    unsigned char *p = bigmem_alloc_zeroed(n);
    assert_non_null(p);
    assert_true(bigmem_prefault(pf, p, n));
    assert_true(prefaulted(pf, n));
    assert_true(all_zero(p, n));
    memset(p, 0x5a, n);
    assert_int_equal(p[n - 1], 0x5a);
    bigmem_prefault_forget(pf, p, n);
    bigmem_free(p, n);
    unsigned char *small = bigmem_alloc_zeroed(BIGMEM_MAPPED_MIN_BYTES - 1);
    assert_false(bigmem_prefault(pf, small, BIGMEM_MAPPED_MIN_BYTES - 1));
    bigmem_free(small, BIGMEM_MAPPED_MIN_BYTES - 1);
    bigmem_prefaulter_stop(pf);
}

/* A range forgotten is left alone from then on, whatever was queued of it. */
static void a_forgotten_range_is_left_alone(void **state)
{
    (void)state;
    struct bigmem_prefaulter *pf = bigmem_prefaulter_start();
    if (!pf)
        skip();
    size_t n = (size_t)256 << 20; /* longer than a test waits for */
    unsigned char *p = bigmem_alloc_zeroed(n);
    assert_non_null(p);
    assert_true(bigmem_prefault(pf, p, n));
    bigmem_prefault_forget(pf, p, n);
    size_t done = bigmem_prefaulted_bytes(pf);
    usleep(50000);
    assert_int_equal(bigmem_prefaulted_bytes(pf), done);
    bigmem_free(p, n);
    bigmem_prefaulter_stop(pf);
}

/* Fills a set in `memory` (initially `slots`) up to the last insert before it grows, then
 * checks that the growth moves into the table made ahead and loses nothing. */
static void grow_into_the_table_made_ahead(const struct dedup_memory *memory, size_t slots)
{
    struct dedup d;
    assert_true(dedup_init_in(&d, slots / 2, memory));
    assert_int_equal(d.table.mask + 1, slots);
    uint64_t i = 0;
    while ((d.count + 1) * 4 <= slots * 3)
        assert_int_equal(dedup_insert(&d, fp_of(i), 0, i), DEDUP_INSERTED), i++;
    assert_non_null(d.next.slots);
    assert_int_equal(d.next.mask + 1, 2 * slots);
    assert_int_equal(d.prepared, 2 * slots * sizeof(struct dedup_slot));
    struct dedup_slot *ahead = d.next.slots;
    assert_int_equal(dedup_insert(&d, fp_of(i), 0, i), DEDUP_INSERTED);
    assert_ptr_equal(d.table.slots, ahead);
    assert_null(d.next.slots);
    for (uint64_t j = 0; j <= i; j++)
        assert_true(dedup_find(&d, fp_of(j), 0, NULL));
    dedup_free(&d);
}

static void growth_takes_the_table_made_ahead(void **state)
{
    (void)state;
    size_t slots = (size_t)1 << 17; /* 4 MiB of slots: tables the prefaulter takes */
    const struct dedup_memory by_hand = bigmem_dedup_memory(NULL); /* touched by the inserts */
    grow_into_the_table_made_ahead(&by_hand, slots);
    grow_into_the_table_made_ahead(NULL, slots); /* calloc'd, touched the same way */
    struct bigmem_prefaulter *pf = bigmem_prefaulter_start();
    if (!pf)
        return;
    const struct dedup_memory ahead = bigmem_dedup_memory(pf);
    grow_into_the_table_made_ahead(&ahead, slots);
    assert_true(prefaulted(pf, 2 * slots * sizeof(struct dedup_slot)));
    bigmem_prefaulter_stop(pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zeroed_aligned_and_writable),
        cmocka_unit_test(a_dedup_set_in_it),
        cmocka_unit_test(prefaulted_memory_stays_zero),
        cmocka_unit_test(a_forgotten_range_is_left_alone),
        cmocka_unit_test(growth_takes_the_table_made_ahead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
