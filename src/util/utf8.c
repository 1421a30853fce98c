/* util/utf8: see utf8.h. */
#include "util/utf8.h"

#include <stdint.h>

bool utf8_valid(const void *text, size_t n)
{
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000}; /* by length: no overlong */
    const unsigned char *s = text;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) { /* most of what is checked: bodies are mostly ASCII */
            i++;
            continue;
        }
        size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || n - i < len)
            return false;
        uint32_t cp = c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}
