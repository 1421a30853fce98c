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
