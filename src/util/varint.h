/*
 * util/varint: signed integers as zigzag LEB128 varints (small magnitudes, positive or
 * negative, take one or two bytes), for the binary records Tally stores: the wallet journal
 * (engine/wallet_book) and event blocks (store/event_block).
 *
 * Threads: any.
 */
#ifndef TALLY_UTIL_VARINT_H
#define TALLY_UTIL_VARINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define VARINT_MAX 10 /* bytes of a 64-bit varint */

void varint_put(struct buf *out, int64_t v);

/* Reads varints from [at, end); the first that runs past the end or is too long clears `ok`,
 * and every read after it answers 0. */
struct varint_reader {
    const uint8_t *at, *end;
    bool ok;
};
int64_t varint_get(struct varint_reader *r);

#endif
