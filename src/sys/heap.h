/*
 * sys/heap: how the C library's allocator gives memory back, set once by each program.
 *
 * Why: glibc's malloc returns the free top of a heap to the kernel as soon as it passes
 * 128 KiB, and takes it back from the kernel when the next allocation needs it, a page fault a
 * page. The threads that answer commands allocate a batch's answer and free it with the
 * command's memory, over and over, so the same pages went back and were faulted in again:
 * 40,000-58,000 page faults in 6 s of HTTP ingest on the syncer's thread, and 1.1 s of its
 * CPU; 600-800 faults and 0.4 s with the top kept (docs/BENCHMARKS.md). Keeping
 * HEAP_TOP_PAD_BYTES at the top of each heap costs at most that much memory a heap. Setting
 * it also stops glibc from raising, as it sees large blocks freed, the size from which a block
 * is a mapping of its own, so that size is set where the raising would end
 * (HEAP_MMAP_THRESHOLD_BYTES): a large answer's buffer is not a fresh mapping each time.
 *
 * Threads: the program's main thread, before it starts any other.
 */
#ifndef TALLY_SYS_HEAP_H
#define TALLY_SYS_HEAP_H

#define HEAP_TOP_PAD_BYTES (16 << 20)        /* kept free at each heap's top, never given back */
#define HEAP_MMAP_THRESHOLD_BYTES (32 << 20) /* and above, a block is a mapping of its own */

/* Sets both (a no-op without glibc). */
void heap_keep_top(void);

#endif
