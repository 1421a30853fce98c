/*
 * store/event_block: one command's events as one stored value (a row of `event_blocks`).
 *
 * Why: stored as a row each, events cost the writer most of its time: in-process ingest ran
 * at 690k events/s with the rows left out and 230-270k with them (their B-tree cells, index
 * entries and log frames). A block is one row per command (a batch of up to --max-batch
 * events), so SQLite's cost per row is paid once a batch, and reading events back is decoding
 * a blob.
 *
 * Layout, every integer a util/varint:
 *   format, count, then per event:
 *     subscription id, timestamp, created_at,
 *     transaction id, external subscription id, code, properties: length, bytes, NUL;
 *     precise_total_amount_cents: length + 1 (0: none), then bytes and NUL if any.
 * Ids are not stored (a block holds events first_id .. first_id + count - 1, the row says
 * first_id), nor the organization (the row's). Strings keep their NUL so that a decoded event
 * points into the block itself, without a copy.
 *
 * Each block also has a summary (a row of `event_block_summaries`, beside it): its events'
 * timestamp range, the subscription and metric code when all its events share one, and a
 * Bloom filter of the subscriptions and codes it holds. A filtered GET /events reads a block
 * only when its summary says it may hold a match, and counts a block whose summary says every
 * event matches without reading it: a pass over summaries (about 100 bytes a block) instead
 * of over every event.
 *
 * Threads: any.
 */
#ifndef TALLY_STORE_EVENT_BLOCK_H
#define TALLY_STORE_EVENT_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/varint.h"

#define EVENT_BLOCK_FORMAT 1

/* Appends a block of `count` events (one organization's, consecutive ids) to out. */
void event_block_encode(struct buf *out, const struct store_event *events, size_t count);

struct event_block_reader {
    struct varint_reader in;
    int64_t next_id, org_id;
    size_t count, left; /* events in the block, and not read yet */
};

/* Starts reading the block of row (first_id, org_id, data); false if it is not one this Tally
 * writes. `data` is borrowed for as long as the events read from it are used. */
bool event_block_open(struct event_block_reader *r, const void *data, size_t len, int64_t first_id,
                      int64_t org_id);
/* The next event (its strings point into the block; the lago ids are not filled). False at
 * the end of the block, or if it is damaged (then r->in.ok is false). */
bool event_block_next(struct event_block_reader *r, struct store_event *out);
/* The events in the block, read or not. */
size_t event_block_count(const struct event_block_reader *r);

/* 512 bits, two per value: with 100 distinct subscriptions in a block, one in ten absent ones
 * still looks present (a block read for nothing, never a match missed). */
#define EVENT_BLOCK_BLOOM_BYTES 64

struct event_block_summary {
    tally_time ts_min, ts_max;
    const char *sub;  /* every event's external subscription id, if one; NULL: several */
    const char *code; /* every event's code, if one; NULL: several */
    uint8_t bloom[EVENT_BLOCK_BLOOM_BYTES];
};

/* What `count` (> 0) events hold; sub and code point into the events (borrowed). */
void event_block_summarize(const struct store_event *events, size_t count,
                           struct event_block_summary *out);

enum event_block_value { EVENT_BLOCK_SUB = 's', EVENT_BLOCK_CODE = 'c' };

/* False only if no event of the block summarized by `bloom` has that subscription (or code). */
bool event_block_may_hold(const uint8_t bloom[EVENT_BLOCK_BLOOM_BYTES], enum event_block_value kind,
                          const char *value);

#endif
