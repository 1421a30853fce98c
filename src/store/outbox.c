/*
 * store/outbox.c: the webhook outbox (an event for the organization's webhooks, recorded in the
 * commit that caused it, and its list) and the reminders that feed it: grants whose credits
 * expire soon (store_reminders_due, store_wallet_transaction_set_reminded).
 *
 * Shape: apart from wallets.c because it is what Tally tells the organization, not what it
 * keeps of the credits. Its SQL is in store.c's table.
 */
#include "store/store_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- reminders and the webhook outbox ------------------------------------------------------- */

enum store_status store_reminders_due(struct store_conn *c, int64_t org_id, int32_t days,
                                      tally_time now, const char *skip_customers,
                                      struct store_due_item *out, size_t cap, size_t *count)
{
    sqlite3_stmt *s = store_stmt(c, STMT_REMINDERS_DUE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, (int64_t)cap);
    sqlite3_bind_int64(s, 3, org_id);
    sqlite3_bind_int(s, 4, days);
    bind_skipped(s, 5, skip_customers);
    *count = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_due_item *d = &out[(*count)++];
        d->org_id = sqlite3_column_int64(s, 0);
        column_lago_id(s, 1, d->lago_id);
        d->grant_id = sqlite3_column_int64(s, 2);
        d->due_at = sqlite3_column_int64(s, 3);
        d->customer_id = sqlite3_column_int64(s, 4);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_status store_wallet_transaction_set_reminded(struct store *st, int64_t id, int32_t days)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WT_SET_REMINDED);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, days);
    return step_done(s);
}

enum store_status store_outbox_insert(struct store *st, const struct store_webhook *w)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_OUTBOX_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, w->org_id);
    bind_text(s, 2, w->lago_id);
    bind_text(s, 3, w->webhook_type);
    bind_text(s, 4, w->object_type);
    sqlite3_bind_int64(s, 5, w->object_id);
    bind_text(s, 6, w->data_json);
    sqlite3_bind_int64(s, 7, w->created_at);
    return step_done(s);
}

static bool read_webhook_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    struct store_webhook *w = item;
    memset(w, 0, sizeof *w);
    w->id = sqlite3_column_int64(s, 0);
    column_lago_id(s, 1, w->lago_id);
    w->webhook_type = column_text(s, 2, a);
    w->object_type = column_text(s, 3, a);
    w->object_id = sqlite3_column_int64(s, 4);
    w->data_json = column_text(s, 5, a);
    w->created_at = sqlite3_column_int64(s, 6);
    w->has_delivered_at = column_instant(s, 7, &w->delivered_at);
    w->org_id = sqlite3_column_int64(s, 8);
    return w->webhook_type && w->object_type && w->data_json;
}

enum store_status store_outbox_list(struct store_conn *c, int64_t org_id, int64_t offset,
                                    int64_t limit, struct store_webhook **out, size_t *count,
                                    int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = org_id}};
    const struct page_query q = {STMT_OUTBOX_COUNT, STMT_OUTBOX_PAGE, params, 1,
                                 sizeof **out,      read_webhook_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}
