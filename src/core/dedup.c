/* core/dedup: see dedup.h. Linear probing with backward-shift deletion (no tombstones). */
#include "core/dedup.h"

#include <stdlib.h>

struct siphash128 dedup_fingerprint(const uint8_t key[SIPHASH_KEY_LEN], const void *identity,
                                    size_t len)
{
    struct siphash128 fp = siphash128(key, identity, len);
    fp.hi |= 1; /* 127 bits of fingerprint; hi == 0 stays free to mean "empty" */
    return fp;
}

bool dedup_init(struct dedup *d)
{
    d->slots = calloc(DEDUP_INITIAL_SLOTS, sizeof *d->slots);
    d->mask = DEDUP_INITIAL_SLOTS - 1;
    d->count = 0;
    return d->slots != NULL;
}

void dedup_free(struct dedup *d)
{
    free(d->slots);
    d->slots = NULL;
    d->count = 0;
}

static size_t home(const struct dedup *d, struct siphash128 fp)
{
    return (size_t)fp.lo & d->mask;
}

static bool same(const struct dedup_slot *s, struct siphash128 fp)
{
    return s->lo == fp.lo && s->hi == fp.hi;
}

/* The slot holding fp, or the empty slot that ends its probe run (where it would go). */
static size_t probe(const struct dedup *d, struct siphash128 fp)
{
    size_t i = home(d, fp);
    while (d->slots[i].hi != 0 && !same(&d->slots[i], fp))
        i = (i + 1) & d->mask;
    return i;
}

bool dedup_find(const struct dedup *d, struct siphash128 fp, uint64_t *value)
{
    const struct dedup_slot *s = &d->slots[probe(d, fp)];
    if (s->hi == 0)
        return false;
    if (value)
        *value = s->value;
    return true;
}

bool dedup_set_value(struct dedup *d, struct siphash128 fp, uint64_t value)
{
    struct dedup_slot *s = &d->slots[probe(d, fp)];
    if (s->hi == 0)
        return false;
    s->value = value;
    return true;
}

static void place(struct dedup *d, struct dedup_slot slot)
{
    size_t i = (size_t)slot.lo & d->mask;
    while (d->slots[i].hi != 0)
        i = (i + 1) & d->mask;
    d->slots[i] = slot;
}

static bool grow(struct dedup *d)
{
    size_t old_size = d->mask + 1, size = old_size * 2;
    if (size > DEDUP_MAX_SLOTS)
        return false;
    struct dedup_slot *old = d->slots, *fresh = calloc(size, sizeof *fresh);
    if (!fresh)
        return false;
    d->slots = fresh;
    d->mask = size - 1;
    for (size_t i = 0; i < old_size; i++)
        if (old[i].hi != 0)
            place(d, old[i]);
    free(old);
    return true;
}

/* Room for one more at a load of at most three quarters (probe runs stay short). */
static bool make_room(struct dedup *d)
{
    return (d->count + 1) * 4 <= (d->mask + 1) * 3 || grow(d);
}

enum dedup_result dedup_insert(struct dedup *d, struct siphash128 fp, uint64_t value)
{
    uint64_t ignored;
    return dedup_put(d, fp, value, false, &ignored);
}

enum dedup_result dedup_put(struct dedup *d, struct siphash128 fp, uint64_t value, bool replace,
                            uint64_t *previous)
{
    if (!make_room(d))
        return DEDUP_NO_MEMORY;
    struct dedup_slot *s = &d->slots[probe(d, fp)];
    if (s->hi != 0) {
        *previous = s->value;
        if (replace)
            s->value = value;
        return DEDUP_EXISTS;
    }
    *s = (struct dedup_slot){fp.lo, fp.hi, value};
    d->count++;
    return DEDUP_INSERTED;
}

bool dedup_remove(struct dedup *d, struct siphash128 fp)
{
    size_t i = home(d, fp);
    while (!same(&d->slots[i], fp)) {
        if (d->slots[i].hi == 0)
            return false;
        i = (i + 1) & d->mask;
    }
    /* Backward shift: pull later members of the probe run into the hole, so that every
     * entry stays reachable from its home slot without tombstones. */
    size_t hole = i;
    for (size_t j = (hole + 1) & d->mask; d->slots[j].hi != 0; j = (j + 1) & d->mask) {
        size_t want = (size_t)d->slots[j].lo & d->mask;
        /* j may move to the hole if its home is not in (hole, j] (cyclically). */
        bool stays = hole <= j ? (want > hole && want <= j) : (want > hole || want <= j);
        if (!stays) {
            d->slots[hole] = d->slots[j];
            hole = j;
        }
    }
    d->slots[hole] = (struct dedup_slot){0, 0, 0};
    d->count--;
    return true;
}

size_t dedup_memory_bytes(const struct dedup *d)
{
    return (d->mask + 1) * sizeof *d->slots;
}
