/* util/arena: see arena.h. */
#include "util/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

void arena_init(struct arena *a)
{
    a->head = NULL;
    a->total = 0;
}

static size_t align_up(size_t n)
{
    size_t al = alignof(max_align_t);
    return (n + al - 1) & ~(al - 1);
}

/* `size` bytes, not cleared: for callers that write every byte at once. */
static void *take(struct arena *a, size_t size)
{
    if (size > ARENA_MAX_ALLOC)
        return NULL;
    size = align_up(size ? size : 1);
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = b ? b->cap * 2 : ARENA_FIRST_BLOCK;
        while (cap < size)
            cap *= 2;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    a->total += size;
    return p;
}

void *arena_alloc(struct arena *a, size_t size)
{
    void *p = take(a, size);
    if (p)
        memset(p, 0, size);
    return p;
}

void *arena_memdup(struct arena *a, const void *src, size_t size)
{
    void *p = take(a, size);
    if (p && size)
        memcpy(p, src, size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = take(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list args)
{
    va_list again;
    va_copy(again, args);
    int len = vsnprintf(NULL, 0, fmt, args); /* measured first: the text is written once */
    char *p = len >= 0 ? take(a, (size_t)len + 1) : NULL;
    if (p)
        vsnprintf(p, (size_t)len + 1, fmt, again);
    va_end(again);
    return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    char *p = arena_vprintf(a, fmt, args);
    va_end(args);
    return p;
}

void arena_reset(struct arena *a)
{
    struct arena_block *keep = a->head; /* the newest block is the largest */
    if (!keep)
        return;
    struct arena_block *b = keep->next;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    keep->next = NULL;
    keep->used = 0;
    a->total = 0;
}

void arena_free(struct arena *a)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}
