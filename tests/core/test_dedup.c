/* core/dedup: against a plain array as the reference, through inserts, lookups (by key and
 * by fingerprint alone) and removals (which must keep every other member reachable), across growth.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dedup.h"

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static struct siphash128 fp_of(uint64_t id)
{
    char text[32];
    int n = snprintf(text, sizeof text, "org1/sub/%llu", (unsigned long long)id);
    return dedup_fingerprint(key, text, (size_t)n);
}

/* Entry `id` of the reference: fingerprint id / TAGS, tag id % TAGS (tags share a probe run). */
enum { TAGS = 3 };

static void random_operations_match_a_reference(void **state)
{
    (void)state;
    enum { IDS = 60000, OPS = 400000 };
    uint64_t seed = 20261126;
    const char *env = getenv("TALLY_SEED");
    if (env)
        seed = strtoull(env, NULL, 10);
    print_message("seed %llu\n", (unsigned long long)seed);
    uint64_t x = seed | 1;
    static bool present[IDS];
    static uint64_t stored[IDS];
    memset(present, 0, sizeof present);
    struct dedup d;
    assert_true(dedup_init(&d, 0));
    size_t count = 0;
    for (int op = 0; op < OPS; op++) {
        uint64_t id = next(&x) % IDS, tag = id % TAGS, first = id - tag;
        struct siphash128 fp = fp_of(id / TAGS);
        uint64_t v;
        switch (next(&x) % 6) {
        case 0:
        case 1: {
            uint64_t value = next(&x);
            enum dedup_result r = dedup_insert(&d, fp, tag, value);
            assert_int_equal(r, present[id] ? DEDUP_EXISTS : DEDUP_INSERTED);
            if (!present[id]) {
                present[id] = true;
                stored[id] = value;
                count++;
            }
            break;
        }
        case 2:
            assert_int_equal(dedup_remove(&d, fp, tag), present[id]);
            if (present[id])
                count--;
            present[id] = false;
            break;
        case 3: { /* the greatest value under the fingerprint, whatever the tag */
            bool any = false;
            uint64_t greatest = 0;
            for (uint64_t t = first; t < first + TAGS; t++)
                if (present[t] && (!any || stored[t] > greatest))
                    greatest = stored[t], any = true;
            v = 0;
            assert_int_equal(dedup_find_greatest(&d, fp, &v), any);
            if (any)
                assert_int_equal(v, greatest);
            /* and the next ones down, below each found (GET /events/:id passes over the
             * events a metric's deletion hides), to none */
            for (uint64_t below = greatest; any; below = v) {
                bool more = false;
                uint64_t want = 0;
                for (uint64_t t = first; t < first + TAGS; t++)
                    if (present[t] && stored[t] < below && (!more || stored[t] > want))
                        want = stored[t], more = true;
                assert_int_equal(dedup_find_greatest_below(&d, fp, below, &v), more);
                if (!more)
                    break;
                assert_int_equal(v, want);
            }
            break;
        }
        default:
            if (present[id] && next(&x) % 2) { /* values can be replaced in place */
                stored[id] = next(&x);
                assert_true(dedup_set_value(&d, fp, tag, stored[id]));
            } else if (!present[id]) {
                assert_false(dedup_set_value(&d, fp, tag, 1));
            }
            assert_int_equal(dedup_find(&d, fp, tag, &v), present[id]);
            if (present[id])
                assert_int_equal(v, stored[id]);
        }
        assert_int_equal(d.count, count);
    }
    for (uint64_t id = 0; id < IDS; id++) /* every member still reachable after all removals */
        assert_int_equal(dedup_find(&d, fp_of(id / TAGS), id % TAGS, NULL), present[id]);
    assert_true(dedup_memory_bytes(&d) <= 4 * count * sizeof(struct dedup_slot) + 65536);
    dedup_free(&d);
}

/* Growing moves a little of the old table with each insert: while it does, every entry is
 * found, in whichever table it is, and the old table goes once all of it is across. */
static void growth_moves_a_little_per_insert(void **state)
{
    (void)state;
    struct dedup d;
    assert_true(dedup_init(&d, 0));
    bool saw_growth = false;
    uint64_t id = 0;
    for (int growths = 0; growths < 4;) {
        assert_int_equal(dedup_insert(&d, fp_of(id), 0, id), DEDUP_INSERTED);
        id++;
        if (d.old.slots) {
            if (!saw_growth) { /* it just doubled: the old table is still almost all there */
                saw_growth = true;
                growths++;
                assert_int_equal(d.table.mask + 1, 2 * (d.old.mask + 1));
                assert_true(d.moved <= DEDUP_MOVE_SLOTS);
            }
            for (uint64_t probe = 0; probe < id; probe += 1 + id / 64) {
                uint64_t v;
                assert_true(dedup_find(&d, fp_of(probe), 0, &v));
                assert_int_equal(v, probe);
            }
        } else {
            saw_growth = false;
        }
    }
    assert_int_equal(d.count, id);
    for (uint64_t i = 0; i < id; i++)
        assert_int_equal(dedup_insert(&d, fp_of(i), 0, 0), DEDUP_EXISTS);
    dedup_free(&d);
}

static struct dedup_table copy_table(const struct dedup_table *t)
{
    if (!t->slots)
        return (struct dedup_table){0};
    struct dedup_slot *slots = malloc((t->mask + 1) * sizeof *slots);
    assert_non_null(slots);
    memcpy(slots, t->slots, (t->mask + 1) * sizeof *slots);
    return (struct dedup_table){slots, t->mask};
}

/*
 * What the snapshot relies on: a copy of a set's tables, caught mid-growth, adopted as they
 * lay is the same set (every entry found with its value, nothing else), and it goes on
 * growing. Tables that cannot be a set's are refused, taking nothing.
 */
static void a_copy_adopted_mid_growth_is_the_same_set(void **state)
{
    (void)state;
    struct dedup d;
    assert_true(dedup_init(&d, 0));
    uint64_t id = 0;
    while (!(d.old.slots && d.table.mask + 1 >= 8192 && d.moved > 64)) {
        assert_int_equal(dedup_insert(&d, fp_of(id), id % 2, id * 3), DEDUP_INSERTED);
        id++;
    }
    struct dedup from = {
        .table = copy_table(&d.table), .old = copy_table(&d.old), .moved = d.moved};
    struct dedup back;
    assert_true(dedup_adopt(&back, &from));
    assert_int_equal(back.count, id);
    assert_int_equal(back.moved, d.moved);
    for (uint64_t i = 0; i < id; i++) {
        uint64_t v;
        assert_true(dedup_find(&back, fp_of(i), i % 2, &v));
        assert_int_equal(v, i * 3);
    }
    assert_false(dedup_find(&back, fp_of(id), id % 2, NULL));
    assert_false(dedup_find(&back, fp_of(0), 1, NULL)); /* the tag is part of the key */
    for (uint64_t i = id; i < 4 * id; i++)
        assert_int_equal(dedup_insert(&back, fp_of(i), 0, i), DEDUP_INSERTED);
    assert_true(back.table.mask > d.table.mask); /* the growth caught in the copy went on */
    assert_int_equal(dedup_insert(&back, fp_of(7), 1, 0), DEDUP_EXISTS);
    assert_int_equal(back.count, 4 * id);

    /* refused: an entry that cannot be a fingerprint, an empty slot with bytes in it, an old
     * table of the wrong size, an entry below the move cursor, too full */
    from =
        (struct dedup){.table = copy_table(&d.table), .old = copy_table(&d.old), .moved = d.moved};
    struct dedup_slot saved = from.table.slots[5];
    from.table.slots[5] = (struct dedup_slot){1, 2, 0, 3};
    assert_false(dedup_adopt(&back, &from));
    from.table.slots[5] = (struct dedup_slot){1, 0, 0, 3};
    assert_false(dedup_adopt(&back, &from));
    from.table.slots[5] = saved;
    from.old.mask /= 2;
    assert_false(dedup_adopt(&back, &from));
    from.old.mask = d.old.mask;
    from.old.slots[0] = (struct dedup_slot){9, 9, 9, 9};
    assert_false(dedup_adopt(&back, &from));
    from.old.slots[0] = (struct dedup_slot){0, 0, 0, 0};
    for (size_t i = 0; i <= from.table.mask; i++)
        from.table.slots[i] = (struct dedup_slot){i, 1, 0, 0};
    assert_false(dedup_adopt(&back, &from));
    assert_int_equal(back.count, 4 * id); /* untouched by the refusals */
    free(from.table.slots);
    free(from.old.slots);
    dedup_free(&back);
    dedup_free(&d);
}

static void fingerprints_never_look_empty(void **state)
{
    (void)state;
    for (uint64_t id = 0; id < 100000; id++)
        assert_true(fp_of(id).hi & 1);
    /* a different key gives different fingerprints for the same identity */
    uint8_t other[16] = {0};
    struct siphash128 a = dedup_fingerprint(key, "x", 1), b = dedup_fingerprint(other, "x", 1);
    assert_true(a.lo != b.lo || a.hi != b.hi);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_operations_match_a_reference),
        cmocka_unit_test(fingerprints_never_look_empty),
        cmocka_unit_test(growth_moves_a_little_per_insert),
        cmocka_unit_test(a_copy_adopted_mid_growth_is_the_same_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
