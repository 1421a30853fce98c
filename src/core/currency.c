/*
 * core/currency: lookup in the generated ISO 4217 table. A binary search over ~180 sorted
 * codes is 8 comparisons of 3 bytes, with no hashing or initialisation to get wrong.
 */
#include "core/currency.h"

#include <string.h>

const struct currency *currency_find(const char *code, size_t len)
{
    size_t lo = 0, hi = currency_table_len;

    if (len != 3)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(code, currency_table[mid].code, 3);
        if (c == 0)
            return &currency_table[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
