/*
 * sys/bigmem: zeroed memory for large tables written at random (the writer's set of event
 * identities, core/dedup), and a thread that faults it in ahead of need.
 *
 * Why: every insert into the set lands on a random slot, so the inserts after a growth fault
 * the fresh table in a page at a time, each fault an exception the writer takes in the middle
 * of a command (a quarter of bench_engine_events' samples were page faults, most of them the
 * set's). A prefaulter faults a table in before the set needs it (the table its next growth
 * will move into), on a thread of its own, with MADV_POPULATE_WRITE (Linux 5.14): no exception
 * per page, none of it on the writer. Populating never changes a byte, so the owner may start
 * using the memory while it runs; it must only forget a range (bigmem_prefault_forget) before
 * unmapping it. Transparent huge pages were measured for these tables twice and not kept
 * (docs/BENCHMARKS.md): faster in process, but the holds' tail beside ingest was worse.
 *
 * Allocations below BIGMEM_MAPPED_MIN_BYTES come from calloc; larger ones are mappings of
 * their own, page aligned, so that the prefaulter may take them.
 *
 * Threads: the allocation functions from any thread, no state. bigmem_prefault,
 * bigmem_prefault_forget and bigmem_prefaulted_bytes from any thread; bigmem_prefaulter_stop
 * from the one that started it, once no other can call those.
 */
#ifndef TALLY_SYS_BIGMEM_H
#define TALLY_SYS_BIGMEM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/dedup.h"

#define BIGMEM_PAGE_BYTES ((size_t)4096)                /* the page the kernel maps at least */
#define BIGMEM_MAPPED_MIN_BYTES ((size_t)256 << 10)     /* and above: a mapping of its own */
#define BIGMEM_PREFAULT_CHUNK_BYTES ((size_t)256 << 10) /* populated in one call, unlocked */

/* `bytes` of zeroed memory (caller frees with bigmem_free and the same bytes), or NULL. */
void *bigmem_alloc_zeroed(size_t bytes);
/* Releases what bigmem_alloc_zeroed(bytes) gave (NULL: nothing). */
void bigmem_free(void *p, size_t bytes);

#define BIGMEM_PREFAULT_QUEUE 8 /* ranges waiting for the prefaulter at most */

struct bigmem_prefaulter;

/* A prefaulter and its thread (caller stops it), or NULL if the kernel cannot populate memory
 * ahead (tried once on a mapping of its own) or the thread cannot start: memory then faults in
 * where it is first written, as without one. */
struct bigmem_prefaulter *bigmem_prefaulter_start(void);
/* Stops the thread (what is queued is dropped) and frees the prefaulter. NULL: nothing. */
void bigmem_prefaulter_stop(struct bigmem_prefaulter *pf);
/* Queues what bigmem_alloc_zeroed(bytes) gave at p to be faulted in on the prefaulter's thread;
 * false (nothing queued) if the queue is full or the memory is not a mapping of its own. */
bool bigmem_prefault(struct bigmem_prefaulter *pf, void *p, size_t bytes);
/* Drops what is queued within [p, p + bytes) and waits until the thread is not populating any
 * of it: then the range may be unmapped. */
void bigmem_prefault_forget(struct bigmem_prefaulter *pf, void *p, size_t bytes);
/* Bytes the prefaulter has faulted in so far. */
size_t bigmem_prefaulted_bytes(struct bigmem_prefaulter *pf);

/* The memory an identity set (core/dedup) keeps its tables in here: the next growth's table
 * faulted in ahead by `pf` (borrowed for the set's life; NULL: none). */
struct dedup_memory bigmem_dedup_memory(struct bigmem_prefaulter *pf);

#endif
