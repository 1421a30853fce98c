/* engine/sub_cache: see sub_cache.h. */
#include "engine/sub_cache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/billable_metric.h"
#include "core/catalog.h"
#include "core/subscription.h"
#include "json/metric_json.h"

#define SUB_CACHE_INITIAL_SLOTS 1024

enum entry_kind { ENTRY_SUBSCRIPTION, ENTRY_METRIC };

struct sub_cache_entry {
    enum entry_kind kind;
    int64_t org_id;
    const char *name;               /* the subscription's external id, or the metric's code */
    tally_time from, to;            /* a subscription's row answers for events in [from, to) */
    struct store_subscription row;  /* a subscription's */
    struct sub_cache_metric metric; /* a metric's */
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

/* Forgets every entry; their memory stays until the release (rows may be borrowed). */
static void forget(struct sub_cache *c)
{
    if (c->slots)
        memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
    c->count = 0;
    c->stale = false;
    c->forgot = true;
}

void sub_cache_release(struct sub_cache *c)
{
    if (!c->forgot && c->arena.total <= SUB_CACHE_BYTES_MAX)
        return;
    forget(c);
    arena_free(&c->arena);
    arena_init(&c->arena);
    c->forgot = false;
}

uint64_t sub_cache_hash(const uint8_t hash_key[SIPHASH_KEY_LEN], const char *external_id)
{
    size_t len = strnlen(external_id, SUBSCRIPTION_EXTERNAL_ID_MAX);
    return siphash128(hash_key, external_id, len).lo;
}

/* The slot holding that key, or the free slot where it would go. Organizations using the same
 * name share a home slot, and so do a subscription and a metric of the same name: the probe
 * tells them apart. */
static struct sub_cache_slot *slot_of(struct sub_cache *c, enum entry_kind kind, int64_t org_id,
                                      const char *name, uint64_t hash)
{
    for (size_t i = (size_t)hash & c->mask;; i = (i + 1) & c->mask) {
        struct sub_cache_slot *s = &c->slots[i];
        if (!s->entry)
            return s;
        const struct sub_cache_entry *e = s->entry;
        if (s->hash == hash && e->kind == kind && e->org_id == org_id && strcmp(e->name, name) == 0)
            return s;
    }
}

/* Room for one more entry at a load of at most a half. */
static bool make_room(struct sub_cache *c)
{
    if (c->slots && 2 * (c->count + 1) <= c->mask + 1)
        return true;
    size_t slots = c->slots ? 2 * (c->mask + 1) : SUB_CACHE_INITIAL_SLOTS;
    struct sub_cache_slot *old = c->slots;
    size_t old_slots = old ? c->mask + 1 : 0;
    c->slots = calloc(slots, sizeof *c->slots);
    if (!c->slots) {
        c->slots = old;
        return false;
    }
    c->mask = slots - 1;
    for (size_t i = 0; i < old_slots; i++)
        if (old[i].entry) /* every entry is distinct: its free slot, found without comparing */
            for (size_t k = (size_t)old[i].hash & c->mask;; k = (k + 1) & c->mask)
                if (!c->slots[k].entry) {
                    c->slots[k] = old[i];
                    break;
                }
    free(old);
    return true;
}

enum store_status sub_cache_at(struct sub_cache *c, struct store_conn *conn, int64_t org_id,
                               const char *external_id, uint64_t hash, tally_time at,
                               const struct store_subscription **out)
{
    assert(hash == sub_cache_hash(c->hash_key, external_id));
    if (c->stale || c->arena.total > SUB_CACHE_BYTES_MAX)
        forget(c);
    if (!make_room(c))
        return STORE_ERROR;
    struct sub_cache_slot *slot = slot_of(c, ENTRY_SUBSCRIPTION, org_id, external_id, hash);
    if (slot->entry && at >= slot->entry->from && at < slot->entry->to) {
        *out = &slot->entry->row;
        return STORE_OK;
    }
    struct sub_cache_entry *e = arena_alloc(&c->arena, sizeof *e);
    if (!e)
        return STORE_ERROR;
    enum store_status s = store_subscription_at(conn, org_id, external_id, at, &e->row, &c->arena);
    if (s != STORE_OK)
        return s; /* the entry's memory goes with the next reset */
    e->kind = ENTRY_SUBSCRIPTION;
    e->org_id = org_id;
    e->name = e->row.sub.external_id;
    /* From the instant asked, not the row's start: another subscription of the external id
     * may cover a time between (one made again from before an ended one's start: the store
     * names the one started last), and a late event must get what the store names, as after a
     * restart (a restart-twin fuzzer found it named the new one). No subscription starts after
     * `at` within this one's life: a new one empties the cache. */
    e->from = at;
    e->to = subscription_end(&e->row.sub);
    if (!slot->entry)
        c->count++;
    /* a row of the same id for another span replaces the old one */
    *slot = (struct sub_cache_slot){hash, e};
    *out = &e->row;
    return STORE_OK;
}

enum store_status sub_cache_ended_at(struct sub_cache *c, struct store_conn *conn, int64_t org_id,
                                     const char *external_id, tally_time at,
                                     const struct store_subscription **out)
{
    struct store_subscription *row = arena_alloc(&c->arena, sizeof *row);
    if (!row)
        return STORE_ERROR;
    enum store_status s =
        store_subscription_ended_at(conn, org_id, external_id, at, row, &c->arena);
    if (s == STORE_OK)
        *out = row;
    return s; /* the row's memory goes with the arena's next reset */
}

/* A stored metric's expression parsed into the cache's arena (NULL if it has none). False if
 * it does not parse: the API parsed it before storing it, so the store is not what Tally wrote. */
static bool parse_expression(struct sub_cache *c, const char *text, const struct expression **out)
{
    *out = NULL;
    if (!text)
        return true;
    struct expression *x = arena_alloc(&c->arena, sizeof *x);
    char why[EXPRESSION_MESSAGE_MAX];
    if (!x || expression_parse(text, strlen(text), x, why) != EXPRESSION_OK)
        return false;
    *out = x;
    return true;
}

enum store_status sub_cache_metric(struct sub_cache *c, struct store_conn *conn, int64_t org_id,
                                   const char *code, const struct sub_cache_metric **out)
{
    if (c->stale || c->arena.total > SUB_CACHE_BYTES_MAX)
        forget(c);
    if (!make_room(c))
        return STORE_ERROR;
    uint64_t hash = siphash128(c->hash_key, code, strnlen(code, CATALOG_CODE_MAX)).lo;
    struct sub_cache_slot *slot = slot_of(c, ENTRY_METRIC, org_id, code, hash);
    if (slot->entry) {
        *out = &slot->entry->metric;
        return STORE_OK;
    }
    struct sub_cache_entry *e = arena_alloc(&c->arena, sizeof *e);
    struct catalog_item item;
    struct billable_metric m;
    if (!e)
        return STORE_ERROR;
    enum store_status s =
        store_catalog_get(conn, org_id, CATALOG_BILLABLE_METRIC, code, &item, &c->arena);
    if (s != STORE_OK)
        return s;
    const struct expression *expression;
    if (!metric_json_read(&c->arena, item.body, &m) ||
        !parse_expression(c, m.expression, &expression))
        return STORE_ERROR;
    *e = (struct sub_cache_entry){.kind = ENTRY_METRIC,
                                  .org_id = org_id,
                                  .name = item.code,
                                  .metric = {m.recurring, m.aggregation, m.field_name, expression}};
    c->count++;
    *slot = (struct sub_cache_slot){hash, e};
    *out = &e->metric;
    return STORE_OK;
}

enum store_status sub_cache_metric_recurring(struct sub_cache *c, struct store_conn *conn,
                                             int64_t org_id, const char *code, bool *recurring)
{
    const struct sub_cache_metric *m;
    enum store_status s = sub_cache_metric(c, conn, org_id, code, &m);
    if (s == STORE_OK)
        *recurring = m->recurring;
    return s;
}
