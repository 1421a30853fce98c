/*
 * util/vec: growing a malloc'd array by doubling, the one way Tally's growable arrays (undo
 * logs, event references) make room. Threads: the array's owner.
 */
#ifndef TALLY_UTIL_VEC_H
#define TALLY_UTIL_VEC_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Makes room for one more element in *items (count used, *cap allocated, of `size` bytes
 * each), doubling from `first`. False (array unchanged) when memory or size_t runs out.
 */
bool vec_room(void **items, size_t *cap, size_t count, size_t size, size_t first);

#endif
