/* core/siphash: see siphash.h. Four ARX rounds' worth of state, two per message word
 * (c = 2), four at the end (d = 4); the 128-bit variant xors 0xee into v2 before finishing
 * and 0xdd into v1 before the second half of the output. */
#include "core/siphash.h"

#include <endian.h>
#include <string.h>

/* Inlined: as calls, the rounds cost three times as much (120 ns vs 43 ns for a 40-byte
 * identity, measured). */
static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v); /* SipHash reads little-endian words whatever the machine */
}

struct state {
    uint64_t v0, v1, v2, v3;
};

static inline void round_(struct state *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static inline void compress(struct state *s, uint64_t m)
{
    s->v3 ^= m;
    round_(s);
    round_(s);
    s->v0 ^= m;
}

static uint64_t finish_half(struct state *s)
{
    for (int i = 0; i < 4; i++)
        round_(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

struct siphash128 siphash128(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    struct state s = {
        .v0 = k0 ^ UINT64_C(0x736f6d6570736575),
        .v1 = k1 ^ UINT64_C(0x646f72616e646f6d) ^ 0xee,
        .v2 = k0 ^ UINT64_C(0x6c7967656e657261),
        .v3 = k1 ^ UINT64_C(0x7465646279746573),
    };
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8)
        compress(&s, load64(in + i));
    uint8_t tail[8] = {0};
    memcpy(tail, in + whole, len % 8);
    compress(&s, load64(tail) | ((uint64_t)(len & 0xff) << 56));
    s.v2 ^= 0xee;
    struct siphash128 out;
    out.lo = finish_half(&s);
    s.v1 ^= 0xdd;
    out.hi = finish_half(&s);
    return out;
}
