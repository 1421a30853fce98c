/* engine/sweep_quarantine: see sweep_quarantine.h. A plain array scanned whole: it holds the
 * few customers whose data the sweep could not process, normally none. */
#include "engine/sweep_quarantine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/vec.h"

void sweep_quarantine_free(struct sweep_quarantine *q)
{
    free(q->entries);
    *q = (struct sweep_quarantine){0};
}

static struct sweep_quarantine_entry *find(const struct sweep_quarantine *q, int64_t org_id,
                                           int64_t customer_id)
{
    for (size_t i = 0; i < q->count; i++)
        if (q->entries[i].org_id == org_id && q->entries[i].customer_id == customer_id)
            return &q->entries[i];
    return NULL;
}

bool sweep_quarantine_org_waits(const struct sweep_quarantine *q, int64_t org_id, tally_time now)
{
    const struct sweep_quarantine_entry *e = find(q, org_id, 0);
    return e && now < e->retry_at;
}

/* Whether an entry is one of the organization's customers passed over at `now`. */
static bool skips(const struct sweep_quarantine_entry *e, int64_t org_id, tally_time now)
{
    return e->org_id == org_id && e->customer_id != 0 && now < e->retry_at;
}

bool sweep_quarantine_skipped(const struct sweep_quarantine *q, int64_t org_id, tally_time now,
                              struct arena *a, const char **skip_customers)
{
    *skip_customers = NULL;
    size_t n = 0;
    for (size_t i = 0; i < q->count; i++)
        n += skips(&q->entries[i], org_id, now);
    if (n == 0)
        return true;
    /* "[" and "]", each id at most 20 characters and a comma, and the terminator */
    size_t size = n * 21 + 3, used = 0;
    char *text = arena_alloc(a, size);
    if (!text)
        return false;
    text[used++] = '[';
    for (size_t i = 0; i < q->count; i++)
        if (skips(&q->entries[i], org_id, now))
            used += (size_t)snprintf(text + used, size - used, "%s%" PRId64, used > 1 ? "," : "",
                                     q->entries[i].customer_id);
    snprintf(text + used, size - used, "]");
    *skip_customers = text;
    return true;
}

tally_time sweep_quarantine_fail(struct sweep_quarantine *q, int64_t org_id, int64_t customer_id,
                                 tally_time now)
{
    struct sweep_quarantine_entry *e = find(q, org_id, customer_id);
    if (!e) {
        if (!vec_room((void **)&q->entries, &q->cap, q->count, sizeof *q->entries, 4))
            return 0;
        e = &q->entries[q->count++];
        *e = (struct sweep_quarantine_entry){.org_id = org_id, .customer_id = customer_id};
    }
    e->wait = e->wait == 0                               ? SWEEP_QUARANTINE_FIRST_USEC
              : e->wait >= SWEEP_QUARANTINE_MAX_USEC / 2 ? SWEEP_QUARANTINE_MAX_USEC
                                                         : e->wait * 2;
    e->retry_at = now + e->wait;
    return e->wait;
}

void sweep_quarantine_passed(struct sweep_quarantine *q, int64_t org_id, tally_time now)
{
    size_t kept = 0;
    for (size_t i = 0; i < q->count; i++)
        if (q->entries[i].org_id != org_id || now < q->entries[i].retry_at)
            q->entries[kept++] = q->entries[i];
    q->count = kept;
}

size_t sweep_quarantine_count(const struct sweep_quarantine *q)
{
    return q->count;
}
