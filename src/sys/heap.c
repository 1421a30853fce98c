/* sys/heap: see heap.h. */
#include "sys/heap.h"

#include <stdlib.h> /* first: on glibc it defines __GLIBC__, which the rest asks about */

#ifdef __GLIBC__
#include <malloc.h>
#endif

void heap_keep_top(void)
{
#ifdef __GLIBC__
    /* advice: a refusal leaves glibc's own policy, which works, only slower */
    (void)mallopt(M_TOP_PAD, HEAP_TOP_PAD_BYTES);
    (void)mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD_BYTES);
#endif
}
