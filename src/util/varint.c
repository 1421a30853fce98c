/* util/varint: see varint.h. */
#include "util/varint.h"

void varint_put(struct buf *out, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
    uint8_t bytes[VARINT_MAX];
    size_t n = 0;
    do {
        bytes[n] = (uint8_t)(z & 0x7f);
        z >>= 7;
        bytes[n] |= z ? 0x80 : 0;
        n++;
    } while (z);
    buf_append(out, bytes, n);
}

int64_t varint_get(struct varint_reader *r)
{
    uint64_t z = 0;
    for (int shift = 0; r->ok; shift += 7) {
        if (r->at == r->end || shift >= 7 * VARINT_MAX) {
            r->ok = false;
            break;
        }
        uint8_t byte = *r->at++;
        z |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    }
    return 0;
}
