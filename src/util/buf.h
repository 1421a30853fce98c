/*
 * util/buf: a growable byte buffer, the one way Tally builds text (JSON bodies, SQL-free
 * log lines, metrics). Appends never fail silently: on out-of-memory the buffer records the
 * failure and ignores further appends, and the caller checks buf_failed() once at the end
 * instead of after every append.
 *
 * Ownership: the buffer owns its bytes; buf_take hands them to the caller (free()).
 * Threads: one thread at a time.
 */
#ifndef TALLY_UTIL_BUF_H
#define TALLY_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    bool failed;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* keeps the memory */
/* Makes room for `extra` more bytes and the NUL, or fails the buffer: the slow path of the
 * appends below, which answers most calls inline (a rendered answer is made of thousands of
 * short appends). */
bool buf_grow(struct buf *b, size_t extra);
static inline bool buf_has_room(const struct buf *b, size_t extra)
{
    return !b->failed && extra < b->cap - b->len; /* cap > len whenever cap > 0 (the NUL) */
}
static inline void buf_append(struct buf *b, const void *data, size_t len)
{
    if (!buf_has_room(b, len) && !buf_grow(b, len))
        return;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}
static inline void buf_append_char(struct buf *b, char c)
{
    if (!buf_has_room(b, 1) && !buf_grow(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
/* Makes room for `extra` more bytes at once, so that a body whose size is roughly known is
 * not copied by each doubling on its way there. False if it cannot (the buffer has failed). */
bool buf_reserve(struct buf *b, size_t extra);
/* Grows the buffer by len bytes and returns where they start, for the caller to fill at once
 * (they hold whatever was there); NULL if it cannot grow (the buffer has failed). */
char *buf_extend(struct buf *b, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_i64(struct buf *b, int64_t v);
void buf_append_u64(struct buf *b, uint64_t v);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool buf_failed(const struct buf *b);
/* Fails the buffer for a cause its writer met outside it (a value that could not be made for
 * want of memory): what it holds is not the text meant, and later appends are ignored. */
void buf_fail(struct buf *b);
/* Hands the bytes to the caller, who frees them with free(); the buffer is left empty. */
char *buf_take(struct buf *b, size_t *len);

#endif
