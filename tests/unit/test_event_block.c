/*
 * store/event_block: a block decodes to exactly the events encoded (every field, amounts
 * present or not, empty and long strings), and a block cut at any length, or with garbage in
 * its count, is read no further than its bytes: the reader stops and says so, under ASan.
 * A block's summary holds its timestamp range, its one subscription and code when it has one,
 * and a filter that never forgets a value it holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/event_block.h"

#define EVENTS 40

static char texts[EVENTS][4][600];

static void make_events(struct store_event *ev)
{
    for (int i = 0; i < EVENTS; i++) {
        snprintf(texts[i][0], sizeof texts[i][0], "tx-%d", i * 7919);
        snprintf(texts[i][1], sizeof texts[i][1], "%s", i % 5 == 0 ? "" : "sub-a");
        memset(texts[i][2], 'k', (size_t)(i * 13 % 500));
        texts[i][2][i * 13 % 500] = '\0';
        snprintf(texts[i][3], sizeof texts[i][3], "{\"n\":%d}", -i);
        ev[i] = (struct store_event){.id = 1000 + i,
                                     .org_id = 3,
                                     .subscription_id = i % 3 + 1,
                                     .transaction_id = texts[i][0],
                                     .external_subscription_id = texts[i][1],
                                     .code = texts[i][2],
                                     .timestamp = (i % 2 ? -1 : 1) * (INT64_C(1) << (i + 10)),
                                     .properties_json = texts[i][3],
                                     .precise_total_amount_cents = i % 4 == 0   ? "12.50"
                                                                   : i % 4 == 1 ? ""
                                                                                : NULL,
                                     .created_at = INT64_C(1790000000000000) + i};
    }
}

static void same(const struct store_event *a, const struct store_event *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->org_id, b->org_id);
    assert_int_equal(a->subscription_id, b->subscription_id);
    assert_int_equal(a->timestamp, b->timestamp);
    assert_int_equal(a->created_at, b->created_at);
    assert_string_equal(a->transaction_id, b->transaction_id);
    assert_string_equal(a->external_subscription_id, b->external_subscription_id);
    assert_string_equal(a->code, b->code);
    assert_string_equal(a->properties_json, b->properties_json);
    if (!a->precise_total_amount_cents)
        assert_null(b->precise_total_amount_cents);
    else
        assert_string_equal(a->precise_total_amount_cents, b->precise_total_amount_cents);
}

static void decodes_what_was_encoded(void **state)
{
    (void)state;
    struct store_event ev[EVENTS], back;
    make_events(ev);
    struct buf b;
    buf_init(&b);
    event_block_encode(&b, ev, EVENTS);
    struct event_block_reader r;
    assert_true(event_block_open(&r, b.data, b.len, 1000, 3));
    assert_int_equal(event_block_count(&r), EVENTS);
    for (int i = 0; i < EVENTS; i++) {
        assert_true(event_block_next(&r, &back));
        same(&ev[i], &back);
    }
    assert_false(event_block_next(&r, &back));
    assert_true(r.in.ok);
    assert_int_equal(event_block_count(&r), EVENTS);
    buf_free(&b);
}

/* Every shorter length, copied to a buffer of exactly that size (ASan sees any read past). */
static void a_cut_block_stops_where_its_bytes_end(void **state)
{
    (void)state;
    struct store_event ev[EVENTS], back;
    make_events(ev);
    struct buf b;
    buf_init(&b);
    event_block_encode(&b, ev, EVENTS);
    for (size_t len = 0; len < b.len; len++) {
        unsigned char *cut = malloc(len ? len : 1);
        assert_non_null(cut);
        memcpy(cut, b.data, len);
        struct event_block_reader r;
        int got = 0;
        if (event_block_open(&r, len ? cut : NULL, len, 1000, 3)) {
            while (event_block_next(&r, &back)) {
                same(&ev[got], &back);
                got++;
            }
        }
        assert_true(got < EVENTS);
        assert_false(r.in.ok);
        free(cut);
    }
    /* a count no block of this size could hold */
    unsigned char lying[] = {2 /* format 1 */, 0xfe, 0xff, 0x7f /* a huge count */, 0, 0};
    struct event_block_reader r;
    assert_false(event_block_open(&r, lying, sizeof lying, 1, 1));
    buf_free(&b);
}

static void a_summary_says_what_its_block_holds(void **state)
{
    (void)state;
    struct store_event ev[EVENTS];
    make_events(ev);
    struct event_block_summary sum;
    event_block_summarize(ev, EVENTS, &sum);
    tally_time lo = ev[0].timestamp, hi = ev[0].timestamp;
    for (int i = 0; i < EVENTS; i++) {
        lo = ev[i].timestamp < lo ? ev[i].timestamp : lo;
        hi = ev[i].timestamp > hi ? ev[i].timestamp : hi;
        assert_true(
            event_block_may_hold(sum.bloom, EVENT_BLOCK_SUB, ev[i].external_subscription_id));
        assert_true(event_block_may_hold(sum.bloom, EVENT_BLOCK_CODE, ev[i].code));
    }
    assert_int_equal(sum.ts_min, lo);
    assert_int_equal(sum.ts_max, hi);
    assert_null(sum.sub); /* "" and "sub-a" */
    assert_null(sum.code);
    /* a block of one subscription and one code names them; other values are not in its
     * filter (two bits of 512 set for each kind: these few are known to miss them) */
    event_block_summarize(ev + 1, 4, &sum);
    assert_string_equal(sum.sub, "sub-a");
    assert_null(sum.code);
    event_block_summarize(ev + 1, 1, &sum);
    assert_string_equal(sum.sub, "sub-a");
    assert_string_equal(sum.code, ev[1].code);
    assert_int_equal(sum.ts_min, ev[1].timestamp);
    assert_int_equal(sum.ts_max, ev[1].timestamp);
    const char *absent[] = {"sub-b", "sub-A", "sub-a ", ""};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        assert_false(event_block_may_hold(sum.bloom, EVENT_BLOCK_SUB, absent[i]));
    /* a subscription's value is not taken for the same text as a code */
    assert_false(event_block_may_hold(sum.bloom, EVENT_BLOCK_CODE, "sub-a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_what_was_encoded),
        cmocka_unit_test(a_cut_block_stops_where_its_bytes_end),
        cmocka_unit_test(a_summary_says_what_its_block_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
