/*
 * sys/heap: once heap_keep_top has run, a megabyte of small blocks allocated and freed
 * together again and again on a thread of its own (as a command's memory is, on the threads
 * that answer commands) comes back without page faults: the heap's top is kept, not given back
 * to the kernel and faulted in again (glibc's default: 43,800 faults for these 200 rounds).
 * Meaningful with glibc's own malloc only: a sanitizer's allocator, which replaces it, skips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "sys/heap.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define REPLACED_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define REPLACED_MALLOC 1
#endif
#endif

#ifndef REPLACED_MALLOC
enum { BLOCKS = 256, BLOCK_BYTES = 4000, ROUNDS = 200 };

static long thread_faults(void)
{
    struct rusage u;
    getrusage(RUSAGE_THREAD, &u);
    return u.ru_minflt;
}

/* The page faults of ROUNDS of BLOCKS blocks allocated, written and freed together. */
static void *rounds_of_blocks(void *out)
{
    char *blocks[BLOCKS];
    long before = thread_faults();
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < BLOCKS; i++) {
            blocks[i] = malloc(BLOCK_BYTES);
            if (!blocks[i])
                return NULL;
            memset(blocks[i], round, BLOCK_BYTES);
        }
        for (int i = 0; i < BLOCKS; i++)
            free(blocks[i]);
    }
    *(long *)out = thread_faults() - before;
    return NULL;
}
#endif

static void freed_memory_comes_back_without_faults(void **state)
{
    (void)state;
#ifdef REPLACED_MALLOC
    skip();
#else
    heap_keep_top();
    long faults = -1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, rounds_of_blocks, &faults), 0);
    pthread_join(t, NULL);
    /* the first round faults its megabyte in (about 250 pages); given back each round, every
     * round would (about 43,800 in all) */
    assert_in_range(faults, 0, 2 * BLOCKS * BLOCK_BYTES / 4096);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(freed_memory_comes_back_without_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
