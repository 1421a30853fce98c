/*
 * core/siphash: SipHash-2-4 with a 128-bit output (Aumasson and Bernstein), a keyed
 * pseudo-random function.
 *
 * Tally fingerprints event identities with it (core/dedup): a keyed PRF makes collisions
 * unpredictable to whoever chooses transaction ids, so no client can forge a "duplicate"
 * that would silently drop another event. Written from the published specification; the
 * tests check it against OpenSSL's implementation.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_SIPHASH_H
#define TALLY_CORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

struct siphash128 {
    uint64_t lo, hi; /* the 16 output bytes, as two little-endian words */
};

/* Hashes `len` bytes under a 16-byte key. */
struct siphash128 siphash128(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len);

#endif
