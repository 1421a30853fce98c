/* sys/bigmem: see bigmem.h. */
#include "sys/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* What a large allocation maps: its bytes rounded up to whole huge pages. */
static size_t mapped_bytes(size_t bytes)
{
    return (bytes + BIGMEM_HUGE_BYTES - 1) & ~(BIGMEM_HUGE_BYTES - 1);
}

void *bigmem_alloc_zeroed(size_t bytes)
{
    if (bytes < BIGMEM_HUGE_BYTES)
        return calloc(1, bytes ? bytes : 1);
    size_t len = mapped_bytes(bytes);
    if (len < bytes || len + BIGMEM_HUGE_BYTES < len)
        return NULL;
    /* a huge page more than needed, then the ends cut off, leaves a region aligned to one */
    char *raw = mmap(NULL, len + BIGMEM_HUGE_BYTES, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start =
        ((uintptr_t)raw + BIGMEM_HUGE_BYTES - 1) & ~(uintptr_t)(BIGMEM_HUGE_BYTES - 1);
    size_t head = start - (uintptr_t)raw, tail = BIGMEM_HUGE_BYTES - head;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((char *)start + len, tail);
    (void)madvise((void *)start, len, MADV_HUGEPAGE); /* advice: refused, the pages stay small */
    return (void *)start;
}

void bigmem_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes < BIGMEM_HUGE_BYTES)
        free(p);
    else
        munmap(p, mapped_bytes(bytes));
}
