/*
 * The property tests' random numbers: splitmix64 (small, fast, a full-period stream from any
 * seed). `seed` is what a run prints and TALLY_SEED replays (seed_from_env); reseed(salt) gives
 * each property test its own stream so that one test can be replayed alone. Included by each test
 * file that needs it (static: each test binary has its own copy).
 */
#ifndef TALLY_TESTS_SPLITMIX_H
#define TALLY_TESTS_SPLITMIX_H

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

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

/* Takes the seed from TALLY_SEED, else `fallback`, and says which (a cmocka group's setup):
 * a failing property test is replayed from the seed its run printed. */
static inline void seed_from_env(const char *suite, uint64_t fallback)
{
    const char *env = getenv("TALLY_SEED");
    seed = env && *env ? strtoull(env, NULL, 0) : fallback;
    rng = seed;
    print_message("%s: seed %" PRIu64 " (set TALLY_SEED to replay another)\n", suite, seed);
}

/* Says how many cases the property tests generated (a cmocka group's teardown). */
static inline void seed_report(const char *suite, uint64_t cases)
{
    print_message("%s: %" PRIu64 " generated cases (seed %" PRIu64 ")\n", suite, cases, seed);
}

#endif
