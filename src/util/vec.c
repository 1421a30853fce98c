/* util/vec: see vec.h. */
#include "util/vec.h"

#include <stdint.h>
#include <stdlib.h>

bool vec_room(void **items, size_t *cap, size_t count, size_t size, size_t first)
{
    if (count < *cap)
        return true;
    size_t fresh = *cap ? *cap * 2 : first;
    if (fresh < *cap || fresh > SIZE_MAX / size)
        return false;
    void *p = realloc(*items, fresh * size);
    if (!p)
        return false;
    *items = p;
    *cap = fresh;
    return true;
}
