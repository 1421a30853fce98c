/* core/dedup: see dedup.h. Linear probing with backward-shift deletion (no tombstones). */
#include "core/dedup.h"

#include <assert.h>
#include <stdlib.h>

struct siphash128 dedup_fingerprint(const uint8_t key[SIPHASH_KEY_LEN], const void *identity,
                                    size_t len)
{
    struct siphash128 fp = siphash128(key, identity, len);
    fp.hi |= 1; /* 127 bits of fingerprint; hi == 0 stays free to mean "empty" */
    return fp;
}

struct dedup_slot *dedup_slots_alloc(const struct dedup_memory *memory, size_t count)
{
    if (count > SIZE_MAX / sizeof(struct dedup_slot))
        return NULL;
    if (!memory)
        return calloc(count, sizeof(struct dedup_slot));
    return memory->alloc_zeroed(memory->ctx, count * sizeof(struct dedup_slot));
}

void dedup_slots_free(const struct dedup_memory *memory, struct dedup_slot *slots, size_t count)
{
    if (!memory)
        free(slots);
    else if (slots)
        memory->release(memory->ctx, slots, count * sizeof(struct dedup_slot));
}

/* Releases a table's slots (none: nothing). */
static void table_free(const struct dedup *d, struct dedup_table *t)
{
    if (t->slots)
        dedup_slots_free(d->memory, t->slots, t->mask + 1);
    *t = (struct dedup_table){0};
}

bool dedup_init_in(struct dedup *d, size_t expected, const struct dedup_memory *memory)
{
    size_t slots = DEDUP_INITIAL_SLOTS;
    while (slots < DEDUP_MAX_SLOTS && slots / 4 * 3 < expected)
        slots *= 2;
    *d = (struct dedup){.memory = memory};
    d->table.slots = dedup_slots_alloc(memory, slots);
    d->table.mask = slots - 1;
    return d->table.slots != NULL;
}

bool dedup_init(struct dedup *d, size_t expected)
{
    return dedup_init_in(d, expected, NULL);
}

void dedup_free(struct dedup *d)
{
    table_free(d, &d->table);
    table_free(d, &d->old);
    table_free(d, &d->next);
    *d = (struct dedup){0};
}

void dedup_prefetch(const struct dedup *d, struct siphash128 fp)
{
    __builtin_prefetch(&d->table.slots[(size_t)fp.lo & d->table.mask], 1);
    if (d->old.slots)
        __builtin_prefetch(&d->old.slots[(size_t)fp.lo & d->old.mask], 1);
}

static bool same_fingerprint(const struct dedup_slot *s, struct siphash128 fp)
{
    return s->lo == fp.lo && s->hi == fp.hi;
}

/* The slot of t holding (fp, tag), or the empty slot that ends its probe run (where it would
 * go). Entries of fp under other tags lie in the same run: the probe walks past them. */
static struct dedup_slot *probe(const struct dedup_table *t, struct siphash128 fp, uint64_t tag)
{
    size_t i = (size_t)fp.lo & t->mask;
    while (t->slots[i].hi != 0 && !(same_fingerprint(&t->slots[i], fp) && t->slots[i].tag == tag))
        i = (i + 1) & t->mask;
    return &t->slots[i];
}

/*
 * The slot holding (fp, tag), in the table or (while growing) the old one, or NULL. An entry
 * is in one of them only: moving takes it out of the old table.
 */
static struct dedup_slot *find_slot(const struct dedup *d, struct siphash128 fp, uint64_t tag)
{
    struct dedup_slot *s = probe(&d->table, fp, tag);
    if (s->hi != 0)
        return s;
    if (d->old.slots) {
        s = probe(&d->old, fp, tag);
        if (s->hi != 0)
            return s;
    }
    return NULL;
}

bool dedup_find(const struct dedup *d, struct siphash128 fp, uint64_t tag, uint64_t *value)
{
    const struct dedup_slot *s = find_slot(d, fp, tag);
    if (s && value)
        *value = s->value;
    return s != NULL;
}

/* Raises *greatest to the values of fp's entries in t (whatever their tags) that are at most
 * at_most; true if any. */
static bool greatest_in(const struct dedup_table *t, struct siphash128 fp, uint64_t at_most,
                        uint64_t *greatest)
{
    bool found = false;
    for (size_t i = (size_t)fp.lo & t->mask; t->slots[i].hi != 0; i = (i + 1) & t->mask) {
        if (!same_fingerprint(&t->slots[i], fp) || t->slots[i].value > at_most)
            continue;
        if (!found || t->slots[i].value > *greatest)
            *greatest = t->slots[i].value;
        found = true;
    }
    return found;
}

static bool greatest_at_most(const struct dedup *d, struct siphash128 fp, uint64_t at_most,
                             uint64_t *greatest)
{
    uint64_t in_table = 0, in_old = 0;
    bool found = greatest_in(&d->table, fp, at_most, &in_table);
    bool found_old = d->old.slots && greatest_in(&d->old, fp, at_most, &in_old);
    if (greatest && (found || found_old))
        *greatest = !found ? in_old : !found_old || in_table > in_old ? in_table : in_old;
    return found || found_old;
}

bool dedup_find_greatest(const struct dedup *d, struct siphash128 fp, uint64_t *greatest)
{
    return greatest_at_most(d, fp, UINT64_MAX, greatest);
}

bool dedup_find_greatest_below(const struct dedup *d, struct siphash128 fp, uint64_t below,
                               uint64_t *greatest)
{
    return below > 0 && greatest_at_most(d, fp, below - 1, greatest);
}

bool dedup_set_value(struct dedup *d, struct siphash128 fp, uint64_t tag, uint64_t value)
{
    struct dedup_slot *s = find_slot(d, fp, tag);
    if (s)
        s->value = value;
    return s != NULL;
}

/* Takes the entry out of slot i of t, pulling later members of its probe run back so that
 * every entry stays reachable from its home slot without tombstones (backward shift). */
static void take_out(struct dedup_table *t, size_t i)
{
    size_t hole = i;
    for (size_t j = (hole + 1) & t->mask; t->slots[j].hi != 0; j = (j + 1) & t->mask) {
        size_t want = (size_t)t->slots[j].lo & t->mask;
        /* j may move to the hole if its home is not in (hole, j] (cyclically). */
        bool stays = hole <= j ? (want > hole && want <= j) : (want > hole || want <= j);
        if (!stays) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = (struct dedup_slot){0, 0, 0, 0};
}

/*
 * Moves up to `budget` slots of the old table across, from where the last move stopped. A
 * slot's entry goes to the table and leaves the old one; the backward shift that follows may
 * pull a later entry into the slot just emptied, so the slot is looked at again before the
 * cursor moves on. An entry shifted back past the cursor cannot happen: a run that wraps
 * below the cursor was moved whole when the cursor passed it.
 */
static void move_some(struct dedup *d, size_t budget)
{
    struct dedup_table *old = &d->old;
    size_t size = old->mask + 1;
    while (d->moved < size && budget-- > 0) {
        struct dedup_slot *s = &old->slots[d->moved];
        if (s->hi == 0) {
            d->moved++;
            continue;
        }
        *probe(&d->table, (struct siphash128){s->lo, s->hi}, s->tag) = *s;
        take_out(old, d->moved);
    }
    if (d->moved == size) {
        table_free(d, old);
        d->moved = 0;
    }
}

/* Faults in `bytes` of fresh memory from `p` by writing each page (a write, so the page is
 * the set's own rather than the kernel's shared zero page). */
static void touch_pages(char *p, size_t bytes)
{
    for (size_t at = 0; at < bytes; at += DEDUP_PAGE_BYTES)
        *(volatile char *)(p + at) = 0;
}

/*
 * Once the table is eleven sixteenths full (and no growth is moving), the table the next
 * growth will move into is allocated and made ready: by the memory's prefault where it has one
 * (on another thread), else here a slice at a time, DEDUP_PREPARE_BYTES an insert: twice the
 * table's bytes over the sixteenth of its slots left before it grows, so it is ready with half
 * of them to spare. Its pages are then faulted in ahead, in order, rather than by the random
 * inserts right after the growth, each of which would fault a page until the whole table had
 * been touched. Sooner would hold the larger table longer (the set's memory,
 * docs/ARCHITECTURE.md: at five eighths, 89 bytes an event on average instead of 78).
 */
static void prepare_next(struct dedup *d)
{
    size_t size = d->table.mask + 1;
    if (d->count * 16 < size * 11 || size * 2 > DEDUP_MAX_SLOTS)
        return;
    size_t total = size * 2 * sizeof(struct dedup_slot);
    if (!d->next.slots) {
        d->next.slots = dedup_slots_alloc(d->memory, size * 2);
        if (!d->next.slots)
            return; /* grow() tries again, and says if memory is short */
        d->next.mask = size * 2 - 1;
        d->prepared = d->prepare_credit = 0;
        const struct dedup_memory *m = d->memory;
        if (m && m->prefault && m->prefault(m->ctx, d->next.slots, total))
            d->prepared = total; /* in other hands */
    }
    if (d->prepared >= total)
        return;
    d->prepare_credit += DEDUP_PREPARE_BYTES;
    if (d->prepare_credit < DEDUP_PREPARE_SLICE)
        return;
    size_t slice =
        total - d->prepared < d->prepare_credit ? total - d->prepared : d->prepare_credit;
    touch_pages((char *)d->next.slots + d->prepared, slice);
    d->prepared += slice;
    d->prepare_credit = 0;
}

static bool grow(struct dedup *d)
{
    if (d->old.slots)
        move_some(d, SIZE_MAX); /* finish the last growth first (rare: growth outpaced it) */
    size_t size = (d->table.mask + 1) * 2;
    if (size > DEDUP_MAX_SLOTS)
        return false;
    assert(!d->next.slots || d->next.mask + 1 == size); /* made ahead for this very growth */
    struct dedup_slot *fresh = d->next.slots ? d->next.slots : dedup_slots_alloc(d->memory, size);
    if (!fresh)
        return false;
    d->next = (struct dedup_table){0};
    d->prepared = d->prepare_credit = 0;
    d->old = d->table;
    d->moved = 0;
    d->table = (struct dedup_table){fresh, size - 1};
    return true;
}

/* Room for one more at a load of at most three quarters of the table (probe runs stay
 * short); the entries still in the old table count against it too. */
static bool make_room(struct dedup *d)
{
    if (d->old.slots)
        move_some(d, DEDUP_MOVE_SLOTS);
    else
        prepare_next(d);
    return (d->count + 1) * 4 <= (d->table.mask + 1) * 3 || grow(d);
}

enum dedup_result dedup_insert(struct dedup *d, struct siphash128 fp, uint64_t tag, uint64_t value)
{
    if (!make_room(d))
        return DEDUP_NO_MEMORY;
    /* Touched first by a write (that changes nothing): a page of a grown table that a read
     * touched first is the kernel's shared zero page, and the insert's write then faults
     * again, copies it and interrupts the other cores to flush their TLBs. */
    __atomic_fetch_or(&d->table.slots[(size_t)fp.lo & d->table.mask].hi, 0, __ATOMIC_RELAXED);
    struct dedup_slot *s = probe(&d->table, fp, tag);
    if (s->hi != 0 || (d->old.slots && probe(&d->old, fp, tag)->hi != 0))
        return DEDUP_EXISTS;
    *s = (struct dedup_slot){fp.lo, fp.hi, tag, value};
    d->count++;
    return DEDUP_INSERTED;
}

bool dedup_remove(struct dedup *d, struct siphash128 fp, uint64_t tag)
{
    struct dedup_table *t = &d->table;
    struct dedup_slot *s = probe(t, fp, tag);
    if (s->hi == 0 && d->old.slots) {
        t = &d->old;
        s = probe(t, fp, tag);
    }
    if (s->hi == 0)
        return false;
    take_out(t, (size_t)(s - t->slots));
    d->count--;
    return true;
}

size_t dedup_memory_bytes(const struct dedup *d)
{
    size_t slots = d->table.mask + 1 + (d->old.slots ? d->old.mask + 1 : 0) +
                   (d->next.slots ? d->next.mask + 1 : 0);
    return slots * sizeof(struct dedup_slot);
}

/* Counts the entries of t's slots [from, end), or SIZE_MAX if a slot cannot be a set's. */
static size_t entries_of(const struct dedup_table *t, size_t from)
{
    size_t count = 0;
    for (size_t i = from; i <= t->mask; i++) {
        const struct dedup_slot *s = &t->slots[i];
        if (s->hi == 0 && (s->lo != 0 || s->tag != 0 || s->value != 0))
            return SIZE_MAX;
        if (s->hi != 0 && (s->hi & 1) == 0)
            return SIZE_MAX;
        count += s->hi != 0;
    }
    return count;
}

bool dedup_slot_count_ok(uint64_t slots)
{
    return slots >= DEDUP_INITIAL_SLOTS && slots <= DEDUP_MAX_SLOTS && (slots & (slots - 1)) == 0;
}

static bool table_size_ok(const struct dedup_table *t)
{
    return t->slots && dedup_slot_count_ok((uint64_t)t->mask + 1);
}

bool dedup_adopt(struct dedup *d, const struct dedup *from)
{
    const struct dedup_table *t = &from->table, *old = &from->old;
    if (!table_size_ok(t))
        return false;
    size_t count = entries_of(t, 0);
    if (count == SIZE_MAX)
        return false;
    if (old->slots) {
        if (!table_size_ok(old) || (old->mask + 1) * 2 != t->mask + 1 || from->moved > old->mask)
            return false;
        for (size_t i = 0; i < from->moved; i++) /* moved across: emptied */
            if (old->slots[i].hi != 0)
                return false;
        size_t in_old = entries_of(old, from->moved);
        if (in_old == SIZE_MAX)
            return false;
        count += in_old;
    }
    if (count * 4 > (t->mask + 1) * 3)
        return false;
    assert(!from->next.slots); /* callers describe what they read: no table made ahead */
    *d = *from;
    d->count = count;
    return true;
}
