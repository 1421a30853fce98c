/*
 * core/dedup: the set of event identities already accepted, in memory, exact to the
 * fingerprint.
 *
 * Why: a unique index on random transaction ids costs a random B-tree write per event, the
 * wall DESIGN.md §5 measured (51k rows/s). Instead the writer keeps every accepted identity
 * in an open-addressing table and the store only appends events. An entry's key is a 128-bit
 * keyed fingerprint (core/siphash) of what the caller looks entries up by, plus a 64-bit tag
 * that tells apart entries sharing that fingerprint: the engine fingerprints (organization,
 * transaction id) and tags with its subscription's, so one probe both refuses a duplicate
 * (same fingerprint, same tag) and finds the latest event of a transaction id (the greatest
 * value under the fingerprint, any tag), where two sets cost two cache misses an event. Two
 * different keys collide with probability about n^2 / 2^128 (1e-14 for a trillion events), and
 * the key is secret, so nobody can aim for one. The table is rebuilt from the stored events
 * at start (or loaded from engine/snapshot).
 *
 * Memory: 32 bytes a slot (fingerprint, tag, value), at most 3/4 full, so 43 to 85 bytes an
 * event in the table. Growth doubles the table without a pause: the larger table takes new
 * entries at once, and each later insert moves the next DEDUP_MOVE_SLOTS slots of the old one
 * across (lookups read both meanwhile), so the old table is empty long before the new one
 * fills. Moving it all at once cost the writer 0.66 s at 3M events. The larger table is made
 * ready a slice at a time before the growth (prepare_next in dedup.c), so that inserts do not
 * fault its pages in one at a time; with it, bench_dedup measures 78 bytes an event on average
 * over sizes from 1M to 10M events (68 without it) and 136 at most (125).
 *
 * Threads: one owner (the engine's writer).
 */
#ifndef TALLY_CORE_DEDUP_H
#define TALLY_CORE_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/siphash.h"

#define DEDUP_INITIAL_SLOTS 1024
#define DEDUP_MAX_SLOTS ((size_t)1 << 34) /* 16G slots: past any single machine's memory */

struct dedup_slot {
    uint64_t lo, hi; /* hi == 0 marks an empty slot (fingerprints have hi's low bit set) */
    uint64_t tag;    /* with the fingerprint, the entry's key */
    uint64_t value;
};

#define DEDUP_MOVE_SLOTS 16 /* old slots moved across by each insert while growing */

struct dedup_table {
    struct dedup_slot *slots; /* NULL: no table */
    size_t mask;              /* slots - 1; slots is a power of two */
};

/*
 * Where a set's tables live: `alloc_zeroed` gives zeroed memory of `bytes` (NULL on failure),
 * `release` takes it back with the same bytes, each given `ctx`. `prefault` (optional) starts
 * faulting in memory alloc_zeroed gave, elsewhere than on the caller's thread, true if it
 * will; release must then wait for it to leave that memory. The set borrows all of it for its
 * life. A set without one (NULL) uses calloc and free; the engine gives its identities
 * mappings of their own and a thread that faults them in ahead (sys/bigmem).
 */
struct dedup_memory {
    void *(*alloc_zeroed)(void *ctx, size_t bytes);
    void (*release)(void *ctx, void *p, size_t bytes);
    bool (*prefault)(void *ctx, void *p, size_t bytes);
    void *ctx;
};

#define DEDUP_PAGE_BYTES 4096           /* the smallest page a set's memory may come in */
#define DEDUP_PREPARE_BYTES 2048        /* of the next table made ready each insert (below) */
#define DEDUP_PREPARE_SLICE (64 * 1024) /* made ready at a time: one call, a bounded pause */

struct dedup {
    struct dedup_table table;          /* where entries go */
    struct dedup_table old;            /* while growing: the table being moved into `table` */
    size_t moved;                      /* slots of `old` moved so far */
    size_t count;                      /* entries in all */
    const struct dedup_memory *memory; /* borrowed; NULL: calloc and free */
    /* Made ahead of the next growth (prepare_next in dedup.c): the table it will move into,
     * empty, its first `prepared` bytes faulted in (or handed to the memory's prefault); credit
     * counts bytes owed to it since. */
    struct dedup_table next;
    size_t prepared, prepare_credit;
};

enum dedup_result { DEDUP_INSERTED, DEDUP_EXISTS, DEDUP_NO_MEMORY };

/* The table's fingerprint of an identity: never has hi == 0. */
struct siphash128 dedup_fingerprint(const uint8_t key[SIPHASH_KEY_LEN], const void *identity,
                                    size_t len);

/* An empty set with room for `expected` entries before it first grows (the writer's start-up
 * knows how many events it will read back), its tables in `memory` (borrowed; NULL: calloc). */
bool dedup_init(struct dedup *d, size_t expected);
bool dedup_init_in(struct dedup *d, size_t expected, const struct dedup_memory *memory);
void dedup_free(struct dedup *d);
/* True if (fp, tag) is present; *value (may be NULL) receives what was stored with it. */
bool dedup_find(const struct dedup *d, struct siphash128 fp, uint64_t tag, uint64_t *value);
/* True if fp is present under any tag; *greatest (may be NULL) receives the greatest value
 * stored under it. */
bool dedup_find_greatest(const struct dedup *d, struct siphash128 fp, uint64_t *greatest);
/* The same among the values below `below` only: the next one down, after one found was not
 * wanted. */
bool dedup_find_greatest_below(const struct dedup *d, struct siphash128 fp, uint64_t below,
                               uint64_t *greatest);
/*
 * Adds (fp, tag) with value, unless present (DEDUP_EXISTS, nothing changed). One probe: a
 * caller that must know whether an identity is new and remember it pays one cache miss.
 */
enum dedup_result dedup_insert(struct dedup *d, struct siphash128 fp, uint64_t tag, uint64_t value);
/*
 * Starts loading the slot fp's probe begins at, for an insert or find soon after: a batch
 * that prefetches all its fingerprints first waits for its cache misses together, not one by
 * one. Changes nothing.
 */
void dedup_prefetch(const struct dedup *d, struct siphash128 fp);
/* Replaces the value stored with a present (fp, tag). False if absent. */
bool dedup_set_value(struct dedup *d, struct siphash128 fp, uint64_t tag, uint64_t value);
/* Removes (fp, tag) (undoing an insert whose commit failed). False if absent. */
bool dedup_remove(struct dedup *d, struct siphash128 fp, uint64_t tag);
size_t dedup_memory_bytes(const struct dedup *d);

/* Zeroed slots for a table a set in `memory` will adopt (NULL on failure), and their release
 * (the same count) when it does not. */
struct dedup_slot *dedup_slots_alloc(const struct dedup_memory *memory, size_t count);
void dedup_slots_free(const struct dedup_memory *memory, struct dedup_slot *slots, size_t count);

/*
 * Makes *d the set whose tables lie as `from` says (a set's `table`, `old` and `moved` as they
 * were in memory, copied elsewhere), taking the tables' allocations (dedup_slots_alloc in
 * from->memory, which the set then keeps). False, taking
 * nothing, unless they look like a set's: power-of-two sizes in range, the old table half the
 * new one (or absent), every slot empty (all zero) or a fingerprint (hi odd), the old table's
 * slots below `moved` empty, at most three quarters full. `from->count` is ignored: counted.
 */
bool dedup_adopt(struct dedup *d, const struct dedup *from);
/* Whether a table of this many slots could be a set's (a power of two in range): checked
 * before memory is given to one read from outside. */
bool dedup_slot_count_ok(uint64_t slots);

#endif
