/* engine/sub_cache: see sub_cache.h. */
#include "engine/sub_cache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/subscription.h"

#define SUB_CACHE_INITIAL_SLOTS 1024

struct sub_cache_entry {
    int64_t org_id;
    const char *external_id;
    uint64_t hash;       /* sub_cache_hash of external_id: growth places it again without hashing */
    tally_time from, to; /* the row answers for events in [from, to) */
    struct store_subscription row;
};

void sub_cache_init(struct sub_cache *c, const uint8_t hash_key[SIPHASH_KEY_LEN])
{
    memset(c, 0, sizeof *c);
    arena_init(&c->arena);
    c->hash_key = hash_key;
}

void sub_cache_free(struct sub_cache *c)
{
    free(c->slots);
    arena_free(&c->arena);
    memset(c, 0, sizeof *c);
}

void sub_cache_invalidate(struct sub_cache *c)
{
    c->stale = true;
}

static void reset(struct sub_cache *c)
{
    if (c->slots)
        memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
    c->count = 0;
    arena_free(&c->arena);
    arena_init(&c->arena);
    c->stale = false;
}

uint64_t sub_cache_hash(const uint8_t hash_key[SIPHASH_KEY_LEN], const char *external_id)
{
    size_t len = strnlen(external_id, SUBSCRIPTION_EXTERNAL_ID_MAX);
    return siphash128(hash_key, external_id, len).lo;
}

/* The slot holding that key, or the free slot where it would go. Organizations using the same
 * external id share a home slot: the probe tells them apart. */
static struct sub_cache_entry **slot_of(struct sub_cache *c, int64_t org_id,
                                        const char *external_id, uint64_t hash)
{
    for (size_t i = (size_t)hash & c->mask;; i = (i + 1) & c->mask) {
        struct sub_cache_entry **s = &c->slots[i];
        if (!*s || ((*s)->org_id == org_id && strcmp((*s)->external_id, external_id) == 0))
            return s;
    }
}

/* Room for one more entry at a load of at most a half. */
static bool make_room(struct sub_cache *c)
{
    if (c->slots && 2 * (c->count + 1) <= c->mask + 1)
        return true;
    size_t slots = c->slots ? 2 * (c->mask + 1) : SUB_CACHE_INITIAL_SLOTS;
    struct sub_cache_entry **old = c->slots;
    size_t old_slots = old ? c->mask + 1 : 0;
    c->slots = calloc(slots, sizeof *c->slots);
    if (!c->slots) {
        c->slots = old;
        return false;
    }
    c->mask = slots - 1;
    for (size_t i = 0; i < old_slots; i++)
        if (old[i])
            *slot_of(c, old[i]->org_id, old[i]->external_id, old[i]->hash) = old[i];
    free(old);
    return true;
}

enum store_status sub_cache_at(struct sub_cache *c, struct store_conn *conn, int64_t org_id,
                               const char *external_id, uint64_t hash, tally_time at,
                               const struct store_subscription **out)
{
    assert(hash == sub_cache_hash(c->hash_key, external_id));
    if (c->stale || c->arena.total > SUB_CACHE_BYTES_MAX)
        reset(c);
    if (!make_room(c))
        return STORE_ERROR;
    struct sub_cache_entry **slot = slot_of(c, org_id, external_id, hash);
    if (*slot && at >= (*slot)->from && at < (*slot)->to) {
        *out = &(*slot)->row;
        return STORE_OK;
    }
    struct sub_cache_entry *e = arena_alloc(&c->arena, sizeof *e);
    if (!e)
        return STORE_ERROR;
    enum store_status s = store_subscription_at(conn, org_id, external_id, at, &e->row, &c->arena);
    if (s != STORE_OK)
        return s; /* the entry's memory goes with the next reset */
    e->org_id = org_id;
    e->external_id = e->row.sub.external_id;
    e->hash = hash;
    e->from = e->row.sub.started_at;
    e->to = subscription_end(&e->row.sub);
    if (!*slot)
        c->count++;
    *slot = e; /* a row of the same id for another span replaces the old one */
    *out = &e->row;
    return STORE_OK;
}
