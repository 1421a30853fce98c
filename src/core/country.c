/* core/country: see country.h. */
#include "core/country.h"

#include <string.h>

bool country_is_valid(const char *code, size_t len)
{
    if (len != 2)
        return false;
    size_t lo = 0, hi = country_code_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(country_codes[mid], code, 2);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}
