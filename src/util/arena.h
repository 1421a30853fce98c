/*
 * util/arena: bump allocation for memory that dies together.
 *
 * Each HTTP request and each engine command gets one arena; everything allocated while
 * serving it is freed at once when the request completes. This removes per-object free()
 * calls (and the leaks and double frees that come with them) from the request path.
 * Blocks grow geometrically; nothing is ever moved, so pointers stay valid until
 * arena_reset or arena_free.
 *
 * Threads: an arena belongs to one thread at a time (the one serving its request).
 */
#ifndef TALLY_UTIL_ARENA_H
#define TALLY_UTIL_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#define ARENA_FIRST_BLOCK 4096
/* A single allocation larger than this fails: every caller bounds its sizes far below. */
#define ARENA_MAX_ALLOC ((size_t)256 << 20)

struct arena_block;
struct arena {
    struct arena_block *head;
    size_t total; /* bytes handed out, for metrics and limits */
};

void arena_init(struct arena *a);
/* Returns zeroed memory aligned for any type, owned by the arena; NULL on out of memory. */
void *arena_alloc(struct arena *a, size_t size);
/* Copies `size` bytes (not zeroed first); the copy is owned by the arena. NULL on out of
 * memory. */
void *arena_memdup(struct arena *a, const void *src, size_t size);
/* Copies len bytes and appends a NUL; the copy is owned by the arena. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
/* printf's text, as long as it comes out, owned by the arena; NULL on out of memory. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list args)
    __attribute__((format(printf, 2, 0)));
/* Frees every block. The arena may be reused after arena_init. */
void arena_free(struct arena *a);
/* Takes everything back but keeps the largest block, for an arena refilled over and over. */
void arena_reset(struct arena *a);

#endif
