/* store/event_block: see event_block.h. */
#include "store/event_block.h"

#include <string.h>

static void put_text(struct buf *out, const char *s, size_t len)
{
    varint_put(out, (int64_t)len);
    buf_append(out, s, len + 1); /* with its NUL */
}

void event_block_encode(struct buf *out, const struct store_event *events, size_t count)
{
    varint_put(out, EVENT_BLOCK_FORMAT);
    varint_put(out, (int64_t)count);
    for (size_t i = 0; i < count; i++) {
        const struct store_event *e = &events[i];
        varint_put(out, e->subscription_id);
        varint_put(out, e->timestamp);
        varint_put(out, e->created_at);
        put_text(out, e->transaction_id, strlen(e->transaction_id));
        put_text(out, e->external_subscription_id, strlen(e->external_subscription_id));
        put_text(out, e->code, strlen(e->code));
        put_text(out, e->properties_json, strlen(e->properties_json));
        if (!e->precise_total_amount_cents) {
            varint_put(out, 0);
            continue;
        }
        size_t len = strlen(e->precise_total_amount_cents);
        varint_put(out, (int64_t)len + 1);
        buf_append(out, e->precise_total_amount_cents, len + 1);
    }
}

/* A string of `len` bytes and its NUL, in place; NULL (and in->ok false) if the block ends
 * first or the NUL is not there. */
static const char *get_text(struct varint_reader *in, int64_t len)
{
    if (!in->ok || len < 0 || len >= in->end - in->at || in->at[len] != '\0') {
        in->ok = false;
        return NULL;
    }
    const char *s = (const char *)in->at;
    in->at += len + 1;
    return s;
}

bool event_block_open(struct event_block_reader *r, const void *data, size_t len, int64_t first_id,
                      int64_t org_id)
{
    r->in = (struct varint_reader){data, (const uint8_t *)data + len, data != NULL};
    r->next_id = first_id;
    r->org_id = org_id;
    int64_t format = varint_get(&r->in), count = varint_get(&r->in);
    /* each event takes at least 12 bytes: a count beyond that is damage, not a big block */
    if (!r->in.ok || format != EVENT_BLOCK_FORMAT || count < 0 || count > (int64_t)len / 12) {
        r->in.ok = false;
        r->count = r->left = 0;
        return false;
    }
    r->count = r->left = (size_t)count;
    return true;
}

size_t event_block_count(const struct event_block_reader *r)
{
    return r->count;
}

bool event_block_next(struct event_block_reader *r, struct store_event *out)
{
    if (r->left == 0 || !r->in.ok)
        return false;
    memset(out, 0, sizeof *out);
    struct varint_reader *in = &r->in;
    out->id = r->next_id;
    out->org_id = r->org_id;
    out->subscription_id = varint_get(in);
    out->timestamp = varint_get(in);
    out->created_at = varint_get(in);
    out->transaction_id = get_text(in, varint_get(in));
    out->external_subscription_id = get_text(in, varint_get(in));
    out->code = get_text(in, varint_get(in));
    out->properties_json = get_text(in, varint_get(in));
    int64_t amount = varint_get(in);
    out->precise_total_amount_cents = amount > 0 ? get_text(in, amount - 1) : NULL;
    if (!in->ok)
        return false;
    r->next_id++;
    r->left--;
    return true;
}

/* FNV-1a over the kind and the value: a block's filter is no secret, and a collision only
 * costs reading a block. */
static uint64_t value_hash(enum event_block_value kind, const char *value)
{
    uint64_t h = UINT64_C(14695981039346656037);
    h = (h ^ (uint8_t)kind) * UINT64_C(1099511628211);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return h;
}

enum { BLOOM_BITS = EVENT_BLOCK_BLOOM_BYTES * 8 };

static void bloom_add(uint8_t bloom[EVENT_BLOCK_BLOOM_BYTES], enum event_block_value kind,
                      const char *value)
{
    uint64_t h = value_hash(kind, value);
    for (int k = 0; k < 2; k++, h >>= 32) {
        unsigned bit = (unsigned)(h % BLOOM_BITS);
        bloom[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
}

bool event_block_may_hold(const uint8_t bloom[EVENT_BLOCK_BLOOM_BYTES], enum event_block_value kind,
                          const char *value)
{
    uint64_t h = value_hash(kind, value);
    for (int k = 0; k < 2; k++, h >>= 32) {
        unsigned bit = (unsigned)(h % BLOOM_BITS);
        if (!(bloom[bit / 8] & (1u << (bit % 8))))
            return false;
    }
    return true;
}

void event_block_summarize(const struct store_event *events, size_t count,
                           struct event_block_summary *out)
{
    memset(out, 0, sizeof *out);
    out->ts_min = out->ts_max = events[0].timestamp;
    out->sub = events[0].external_subscription_id;
    out->code = events[0].code;
    for (size_t i = 0; i < count; i++) {
        const struct store_event *e = &events[i];
        if (e->timestamp < out->ts_min)
            out->ts_min = e->timestamp;
        if (e->timestamp > out->ts_max)
            out->ts_max = e->timestamp;
        /* a value like the event before's is in the filter already */
        const struct store_event *before = i > 0 ? e - 1 : NULL;
        if (!before || strcmp(before->external_subscription_id, e->external_subscription_id)) {
            bloom_add(out->bloom, EVENT_BLOCK_SUB, e->external_subscription_id);
            if (before)
                out->sub = NULL;
        }
        if (!before || strcmp(before->code, e->code)) {
            bloom_add(out->bloom, EVENT_BLOCK_CODE, e->code);
            if (before)
                out->code = NULL;
        }
    }
}
