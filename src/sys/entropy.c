/* sys/entropy: see entropy.h. */
#include "sys/entropy.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

#ifdef TALLY_CHECK_INVARIANTS
/*
 * Test builds only: with TALLY_DETERMINISTIC_SEED set, bytes come from a seeded splitmix64
 * stream instead of the kernel, so that a simulation replays to the same ids, keys and bytes
 * (tests/api/simulation.test.mjs). Release builds have no such switch: their ids and keys are
 * never predictable.
 */
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t seeded_lock = PTHREAD_MUTEX_INITIALIZER;
static bool seeded_checked, seeded;
/* the stream of every draw, and the one of draws made or not by timing alone (entropy.h) */
static uint64_t seeded_state[2];

static bool seeded_fill(unsigned char *p, size_t len, bool aside)
{
    pthread_mutex_lock(&seeded_lock);
    if (!seeded_checked) {
        const char *seed = getenv("TALLY_DETERMINISTIC_SEED");
        seeded = seed && *seed;
        seeded_state[0] = seeded ? strtoull(seed, NULL, 0) : 0;
        seeded_state[1] = ~seeded_state[0]; /* apart from the first: never the same bytes */
        seeded_checked = true;
    }
    uint64_t *state = &seeded_state[aside];
    for (size_t i = 0; seeded && i < len; i += 8) {
        uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15)); /* splitmix64 */
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        z ^= z >> 31;
        for (size_t k = 0; k < 8 && i + k < len; k++)
            p[i + k] = (unsigned char)(z >> (8 * k));
    }
    bool used = seeded;
    pthread_mutex_unlock(&seeded_lock);
    return used;
}
#endif

static bool fill(void *buf, size_t len, bool aside)
{
    unsigned char *p = buf;
#ifdef TALLY_CHECK_INVARIANTS
    if (seeded_fill(p, len, aside))
        return true;
#else
    (void)aside;
#endif
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool entropy_fill(void *buf, size_t len)
{
    return fill(buf, len, false);
}

bool entropy_fill_aside(void *buf, size_t len)
{
    return fill(buf, len, true);
}

bool entropy_uuid(char out[UUID_TEXT])
{
    uint8_t b[UUID_LEN];
    if (!entropy_fill(b, sizeof b))
        return false;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_format(b, out);
    return true;
}
