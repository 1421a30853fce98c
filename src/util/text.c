/* util/text: see text.h. */
#include "util/text.h"

#include <string.h>

bool text_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}
