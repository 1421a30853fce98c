/*
 * engine/sub_cache: the subscriptions and billable metrics events name, remembered by the
 * writer.
 *
 * Every event names its subscription by external id and is priced by the one active at its
 * timestamp. Reading that row from SQLite for each event was a third of the writer's time
 * when a batch spreads over many subscriptions, so the writer keeps each row it read, with
 * the span of time it covers, keyed by (organization, external id). Each event also names a
 * billable metric by code, and whether that metric is recurring decides where the event
 * counts: reading and parsing its definition once per command was a twentieth of the
 * writer's time, so the same table keeps that too, keyed by (organization, code), with the
 * metric's expression parsed (each of its events is evaluated with it).
 *
 * Each slot holds its entry's hash beside the pointer, so a probe passes other entries
 * without reading them (each would be a cache miss).
 *
 * It is a cache of committed state and of the batch being applied, and it is dropped whole
 * (lazily, at the next lookup) whenever it could be wrong: before any command that can
 * change a subscription or what its row carries (the customer's zone, the plan), and after a
 * command or commit that failed. Dropping is a flag, so commands that do it thousands of
 * times a second (customer upserts) pay nothing. Past SUB_CACHE_BYTES_MAX it starts over.
 *
 * A row it answers is borrowed for the whole command that asked (a command looks up its
 * subscriptions, then metrics, then reads the rows again): a drop within a command only
 * forgets the entries, and their memory goes at sub_cache_release, which the writer calls
 * between commands. (Freed at the next lookup, as it once was, a row an event had found was
 * read after the metric lookup that freed it.) So the memory is bounded by SUB_CACHE_BYTES_MAX
 * plus what one command looks up.
 *
 * Threads: the engine's writer only.
 */
#ifndef TALLY_ENGINE_SUB_CACHE_H
#define TALLY_ENGINE_SUB_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/billable_metric.h"
#include "core/expression.h"
#include "core/siphash.h"
#include "store/store.h"
#include "util/arena.h"

#define SUB_CACHE_BYTES_MAX ((size_t)64 << 20)

struct sub_cache_entry;
struct sub_cache_slot {
    uint64_t hash;                 /* the entry's */
    struct sub_cache_entry *entry; /* NULL: free */
};

struct sub_cache {
    struct sub_cache_slot *slots; /* open addressing */
    size_t mask, count;
    struct arena arena;      /* every entry and the rows' strings */
    bool stale;              /* drop everything before the next lookup */
    bool forgot;             /* dropped within a command: its memory waits for the release */
    const uint8_t *hash_key; /* borrowed: the engine's secret, so ids cannot be made to collide */
};

void sub_cache_init(struct sub_cache *c, const uint8_t hash_key[SIPHASH_KEY_LEN]);
void sub_cache_free(struct sub_cache *c);
/* Marks everything stale: the next lookup starts from an empty cache. */
void sub_cache_invalidate(struct sub_cache *c);
/* Between commands, when no row is borrowed: frees what a drop forgot (or all of it, past
 * SUB_CACHE_BYTES_MAX). */
void sub_cache_release(struct sub_cache *c);

/*
 * The keyed hash of an external subscription id (under the engine's secret, so ids cannot be
 * made to collide): where the cache looks for it, and the tag of an event's identity, which
 * engine_submit makes off the writer and the writer then passes to sub_cache_at.
 */
uint64_t sub_cache_hash(const uint8_t hash_key[SIPHASH_KEY_LEN], const char *external_id);

/*
 * The subscription with that external id active at `at`, from memory or else from the
 * store (then remembered). `hash` is sub_cache_hash(c->hash_key, external_id). The row is
 * borrowed until the next sub_cache_release.
 */
enum store_status sub_cache_at(struct sub_cache *c, struct store_conn *conn, int64_t org_id,
                               const char *external_id, uint64_t hash, tally_time at,
                               const struct store_subscription **out);

/*
 * The subscription with that external id terminated at exactly `at`
 * (store_subscription_ended_at), for an event sub_cache_at found no subscription for: Lago's
 * Event#subscription counts the termination's instant as the subscription's (terminated_at >=
 * timestamp), where the span sub_cache_at answers for stops before it (the subscription that
 * starts at that instant, an upgrade's, takes its live events). Read from the store each
 * time, not remembered: only an event that would otherwise be refused asks. The row is
 * borrowed until the next sub_cache_release.
 */
enum store_status sub_cache_ended_at(struct sub_cache *c, struct store_conn *conn, int64_t org_id,
                                     const char *external_id, tally_time at,
                                     const struct store_subscription **out);

/* What the writer needs of a billable metric to take its events. */
struct sub_cache_metric {
    bool recurring;
    enum billable_metric_aggregation aggregation; /* what event ingest checks an event against */
    const char *field_name;                       /* where its expression's result goes */
    const struct expression *expression;          /* NULL: none */
};

/*
 * The organization's billable metric `code`, from memory or else from the store (then
 * remembered), borrowed until the next sub_cache_release. STORE_NOT_FOUND if it has none of
 * that code.
 */
enum store_status sub_cache_metric(struct sub_cache *c, struct store_conn *conn, int64_t org_id,
                                   const char *code, const struct sub_cache_metric **out);

/* Whether that metric is recurring (sub_cache_metric's answer, for the callers that need only
 * that). */
enum store_status sub_cache_metric_recurring(struct sub_cache *c, struct store_conn *conn,
                                             int64_t org_id, const char *code, bool *recurring);

#endif
