/* util/varint: see varint.h. */
#include "util/varint.h"

void varint_put(struct buf *out, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
    size_t n = 1;
    for (uint64_t rest = z >> 7; rest; rest >>= 7)
        n++;
    /* written in place: the journal writes several per customer at every commit */
    uint8_t *p = (uint8_t *)buf_extend(out, n);
    if (!p)
        return; /* the buffer is marked failed */
    for (size_t i = 0; i < n; i++, z >>= 7)
        p[i] = (uint8_t)((z & 0x7f) | (i + 1 < n ? 0x80 : 0));
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
