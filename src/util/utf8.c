/* util/utf8: see utf8.h. */
#include "util/utf8.h"

#include <string.h>

/* The character at s[0..n) (n > 0, s[0] >= 0x80): its length, or 0 if it is not UTF-8. */
static size_t decode_multibyte(const unsigned char *s, size_t n, uint32_t *out)
{
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000}; /* by length: no overlong */
    unsigned char c = s[0];
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || n < len)
        return 0;
    uint32_t cp = c & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *out = cp;
    return len;
}

bool utf8_valid(const void *text, size_t n)
{
    const unsigned char *s = text;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) { /* most of what is checked: bodies are mostly ASCII */
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = decode_multibyte(s + i, n - i, &cp);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

size_t utf8_next(const void *text, size_t n, uint32_t *c)
{
    const unsigned char *s = text;
    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *c = s[0];
        return 1;
    }
    return decode_multibyte(s, n, c);
}

bool utf8_is_control(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) ||      /* C0, DEL, C1 (CSI U+009B, NEL U+0085) */
           c == 0x2028 || c == 0x2029 ||                /* line and paragraph separators */
           c == 0x061C || c == 0x200E || c == 0x200F || /* bidi marks */
           (c >= 0x202A && c <= 0x202E) ||              /* bidi embeddings and overrides */
           (c >= 0x2066 && c <= 0x2069);                /* bidi isolates */
}

void utf8_loggable(char *out, size_t size, const char *text)
{
    if (size == 0)
        return;
    if (!text)
        text = "?";
    size_t n = strlen(text), used = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t len = utf8_next(text + i, n - i, &c);
        bool shown = len > 0 && !utf8_is_control(c);
        size_t take = shown ? len : 1;
        if (used + take >= size)
            break; /* cut at a character's boundary */
        if (shown)
            memcpy(out + used, text + i, len);
        else
            out[used] = '?';
        used += take;
        i += len > 0 ? len : 1;
    }
    out[used] = '\0';
}
