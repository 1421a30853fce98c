/* sys/entropy: see entropy.h. */
#include "sys/entropy.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

bool entropy_fill(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool entropy_uuid(char out[ENTROPY_UUID_TEXT])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    if (!entropy_fill(b, sizeof b))
        return false;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return true;
}
