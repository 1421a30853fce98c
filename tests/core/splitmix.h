/*
 * The property tests' random numbers: splitmix64 (small, fast, a full-period stream from any
 * seed). `seed` is what a run prints and TALLY_SEED replays; reseed(salt) gives each property
 * test its own stream so that one test can be replayed alone. Included by each test file that
 * needs it (static: each test binary has its own copy).
 */
#ifndef TALLY_TESTS_SPLITMIX_H
#define TALLY_TESTS_SPLITMIX_H

#include <stdint.h>

static uint64_t seed;
static uint64_t rng;

static inline uint64_t next(void)
{
    uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform enough in [0, n); 0 when n is 0. */
static inline uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

static inline void reseed(uint64_t salt)
{
    rng = seed ^ (salt * UINT64_C(0x2545f4914f6cdd1d));
}

#endif
