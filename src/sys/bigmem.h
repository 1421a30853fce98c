/*
 * sys/bigmem: zeroed memory for large tables read and written at random (the writer's set of
 * event identities, core/dedup), in transparent huge pages where the kernel offers them.
 *
 * Why: a table of tens of millions of slots is touched at random, so with 4 KiB pages nearly
 * every insert of a fresh table faults a page in, and nearly every probe misses the TLB. A
 * region advised MADV_HUGEPAGE (the kernel's "madvise" mode, Debian's default) is backed by
 * 2 MiB pages: one fault and one TLB entry where 512 were. bench_engine_events measured half
 * the page faults and 13% less CPU for the same 2M events (docs/BENCHMARKS.md). The advice is
 * only advice: where huge pages are off, the memory is ordinary and works the same.
 *
 * Allocations below BIGMEM_HUGE_BYTES come from calloc; larger ones are their own mapping,
 * aligned to a huge page, so that every 2 MiB of it can be one.
 *
 * Threads: any; no state.
 */
#ifndef TALLY_SYS_BIGMEM_H
#define TALLY_SYS_BIGMEM_H

#include <stddef.h>

#define BIGMEM_HUGE_BYTES ((size_t)2 << 20) /* a huge page on x86-64 and arm64 (4 KiB base) */

/* `bytes` of zeroed memory (caller frees with bigmem_free and the same bytes), or NULL. */
void *bigmem_alloc_zeroed(size_t bytes);
/* Releases what bigmem_alloc_zeroed(bytes) gave (NULL: nothing). */
void bigmem_free(void *p, size_t bytes);

#endif
