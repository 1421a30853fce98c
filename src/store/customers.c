/*
 * store/customers.c: customers, the catalog (metrics, plans, add-ons, coupons, taxes, ...),
 * subscriptions and applied coupons, and the reads that cross them (a plan's live
 * subscriptions, a metric's plans, a tax's uses, a subscription at an instant).
 *
 * Shape: one file for the four because their rows are read through each other: a subscription
 * shows its customer and its plan's current code, an applied coupon its customer and its
 * coupon's current name, a tax's usage counts customers, add-ons and plans; apart, each file
 * would reach into the others' row readers. Their SQL is in store.c's table.
 */
#include "store/store_internal.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonw.h"

/* ---- customers ---------------------------------------------------------------------------- */

static bool read_customer(sqlite3_stmt *s, struct customer *c, struct arena *a)
{
    int col = 0;
    c->id = sqlite3_column_int64(s, col++);
    c->org_id = sqlite3_column_int64(s, col++);
    const unsigned char *lago_id = sqlite3_column_text(s, col++);
    snprintf(c->lago_id, sizeof c->lago_id, "%s", lago_id ? (const char *)lago_id : "");
    c->sequential_id = sqlite3_column_int64(s, col++);
    c->external_id = column_text(s, col++, a);
    for (int i = 0; i < CUSTOMER_TEXT_COUNT; i++)
        c->text[i] = column_text(s, col++, a);
    c->net_payment_term =
        sqlite3_column_type(s, col) == SQLITE_NULL ? CUSTOMER_INT_NULL : sqlite3_column_int(s, col);
    col++;
    c->invoice_grace_period =
        sqlite3_column_type(s, col) == SQLITE_NULL ? CUSTOMER_INT_NULL : sqlite3_column_int(s, col);
    col++;
    for (int i = 0; i < CUSTOMER_DOC_COUNT; i++)
        c->doc[i] = column_text(s, col++, a);
    c->created_at = sqlite3_column_int64(s, col++);
    c->updated_at = sqlite3_column_int64(s, col++);
    c->skip_invoice_custom_sections = sqlite3_column_int(s, col++) != 0;
    return col == CUSTOMER_COLUMN_COUNT && c->external_id;
}

static bool read_customer_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_customer(s, item, a);
}

enum store_status store_customer_get(struct store_conn *c, int64_t org_id, const char *external_id,
                                     struct customer *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_CUSTOMER_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, external_id);
    return read_one(s, read_customer_row, out, a);
}

enum store_status store_customer_by_id(struct store_conn *c, int64_t id, struct customer *out,
                                       struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_CUSTOMER_BY_ID);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return read_one(s, read_customer_row, out, a);
}

/* What statement `id`, a SELECT EXISTS over (org_id, text), answers. */
static enum store_status exists_with_text(struct store_conn *c, enum stmt_id id, int64_t org_id,
                                          const char *text, bool *out)
{
    sqlite3_stmt *s = store_stmt(c, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, text);
    enum store_status r = step_one(s);
    *out = r == STORE_OK && sqlite3_column_int64(s, 0) != 0;
    sqlite3_reset(s);
    return r == STORE_OK ? STORE_OK : STORE_ERROR; /* EXISTS always answers a row */
}

enum store_status store_customer_external_id_known(struct store_conn *c, int64_t org_id,
                                                   const char *external_id, bool *known)
{
    return exists_with_text(c, STMT_CUSTOMER_EXTERNAL_ID_KNOWN, org_id, external_id, known);
}

enum store_status store_customer_save(struct store *st, struct customer *c)
{
    bool insert = c->id == 0;
    sqlite3_stmt *s = store_stmt(&st->conn, insert ? STMT_CUSTOMER_INSERT : STMT_CUSTOMER_UPDATE);
    if (!s)
        return STORE_ERROR;
    int p = 1;
    if (insert)
        sqlite3_bind_null(s, p++); /* id: SQLite assigns the rowid */
    else
        sqlite3_bind_int64(s, p++, c->id);
    sqlite3_bind_int64(s, p++, c->org_id);
    bind_text(s, p++, c->lago_id);
    sqlite3_bind_int64(s, p++, c->sequential_id);
    bind_text(s, p++, c->external_id);
    for (int i = 0; i < CUSTOMER_TEXT_COUNT; i++)
        bind_text(s, p++, c->text[i]);
    bind_optional_int(s, p++, c->net_payment_term);
    bind_optional_int(s, p++, c->invoice_grace_period);
    for (int i = 0; i < CUSTOMER_DOC_COUNT; i++)
        bind_text(s, p++, c->doc[i]);
    sqlite3_bind_int64(s, p++, c->created_at);
    sqlite3_bind_int64(s, p++, c->updated_at);
    sqlite3_bind_int(s, p++, c->skip_invoice_custom_sections);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    if (insert)
        c->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_customer_delete(struct store *st, int64_t customer_id, tally_time at)
{
    return store_exec_with_ints(st, STMT_CUSTOMER_DELETE, customer_id, at);
}

static bool read_customer_item(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_customer(s, item, a);
}

enum store_status store_customer_list(struct store_conn *c, int64_t org_id,
                                      const struct store_customer_filter *f, int64_t offset,
                                      int64_t limit, struct customer **out, size_t *count,
                                      int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = org_id},
                                        {.is_text = true, .text = f->account_types_json},
                                        {.is_text = true, .text = f->countries_json},
                                        {.is_text = true, .text = f->currencies_json},
                                        {.is_text = true, .text = f->search_pattern},
                                        {.is_text = true, .text = f->external_id},
                                        {.is_text = true, .text = f->states_json},
                                        {.is_text = true, .text = f->zipcodes_json},
                                        {.value = (int64_t)f->has_tax_identification_number},
                                        {.is_text = true, .text = f->customer_type},
                                        {.value = (int64_t)f->has_customer_type},
                                        {.is_text = true, .text = f->metadata_json}};
    const struct page_query q = {
        STMT_CUSTOMER_COUNT, STMT_CUSTOMER_PAGE, params, (int)(sizeof params / sizeof params[0]),
        sizeof **out,        read_customer_item};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

/* ---- catalog ------------------------------------------------------------------------------ */

static bool read_catalog_item(sqlite3_stmt *s, struct catalog_item *it, struct arena *a)
{
    it->id = sqlite3_column_int64(s, 0);
    it->org_id = sqlite3_column_int64(s, 1);
    /* a kind this Tally never writes (a damaged or newer store) is a failed read: the name
     * lookups index a table by it (core/catalog). Every query binds the kind today. */
    int kind = sqlite3_column_int(s, 2);
    if (kind < CATALOG_TAX || kind > CATALOG_COUPON)
        return false;
    it->kind = (enum catalog_kind)kind;
    it->code = column_text(s, 3, a);
    const unsigned char *lago_id = sqlite3_column_text(s, 4);
    snprintf(it->lago_id, sizeof it->lago_id, "%s", lago_id ? (const char *)lago_id : "");
    it->body = column_text(s, 5, a);
    it->created_at = sqlite3_column_int64(s, 6);
    it->updated_at = sqlite3_column_int64(s, 7);
    return it->code && it->body;
}

static bool read_catalog_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_catalog_item(s, item, a);
}

enum store_status store_catalog_get(struct store_conn *c, int64_t org_id, enum catalog_kind kind,
                                    const char *code, struct catalog_item *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_CATALOG_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int(s, 2, (int)kind);
    bind_text(s, 3, code);
    return read_one(s, read_catalog_row, out, a);
}

/* The item of `lago_id` read by statement `id` (live items only, or deleted ones too). */
static enum store_status catalog_by_lago_id(struct store_conn *c, enum stmt_id id, int64_t org_id,
                                            enum catalog_kind kind, const char *lago_id,
                                            struct catalog_item *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int(s, 2, (int)kind);
    bind_text(s, 3, lago_id);
    return read_one(s, read_catalog_row, out, a);
}

enum store_status store_catalog_get_by_lago_id(struct store_conn *c, int64_t org_id,
                                               enum catalog_kind kind, const char *lago_id,
                                               struct catalog_item *out, struct arena *a)
{
    return catalog_by_lago_id(c, STMT_CATALOG_GET_BY_LAGO_ID, org_id, kind, lago_id, out, a);
}

enum store_status store_catalog_get_any_by_lago_id(struct store_conn *c, int64_t org_id,
                                                   enum catalog_kind kind, const char *lago_id,
                                                   struct catalog_item *out, struct arena *a)
{
    return catalog_by_lago_id(c, STMT_CATALOG_GET_ANY_BY_LAGO_ID, org_id, kind, lago_id, out, a);
}

enum store_status store_catalog_save(struct store *st, struct catalog_item *it)
{
    bool insert = it->id == 0;
    sqlite3_stmt *s = store_stmt(&st->conn, insert ? STMT_CATALOG_INSERT : STMT_CATALOG_UPDATE);
    if (!s)
        return STORE_ERROR;
    if (insert) {
        sqlite3_bind_int64(s, 1, it->org_id);
        sqlite3_bind_int(s, 2, (int)it->kind);
        bind_text(s, 3, it->code);
        bind_text(s, 4, it->lago_id);
        bind_text(s, 5, it->body);
        sqlite3_bind_int64(s, 6, it->created_at);
        sqlite3_bind_int64(s, 7, it->updated_at);
    } else {
        sqlite3_bind_int64(s, 1, it->id);
        bind_text(s, 2, it->code);
        bind_text(s, 3, it->body);
        sqlite3_bind_int64(s, 4, it->updated_at);
    }
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    if (insert)
        it->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_catalog_delete(struct store *st, int64_t item_id, tally_time at)
{
    return store_exec_with_ints(st, STMT_CATALOG_DELETE, item_id, at);
}

static enum store_status catalog_page(struct store_conn *c, enum stmt_id page, int64_t org_id,
                                      enum catalog_kind kind, int64_t offset, int64_t limit,
                                      struct catalog_item **out, size_t *count, int64_t *total,
                                      struct arena *a)
{
    const struct page_param params[] = {{.value = org_id}, {.value = (int64_t)kind}};
    const struct page_query q = {STMT_CATALOG_COUNT, page, params, 2, sizeof **out,
                                 read_catalog_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

enum store_status store_catalog_list(struct store_conn *c, int64_t org_id, enum catalog_kind kind,
                                     int64_t offset, int64_t limit, struct catalog_item **out,
                                     size_t *count, int64_t *total, struct arena *a)
{
    return catalog_page(c, STMT_CATALOG_PAGE, org_id, kind, offset, limit, out, count, total, a);
}

enum store_status store_catalog_list_by_name(struct store_conn *c, int64_t org_id,
                                             enum catalog_kind kind, int64_t offset, int64_t limit,
                                             struct catalog_item **out, size_t *count,
                                             int64_t *total, struct arena *a)
{
    return catalog_page(c, STMT_CATALOG_PAGE_BY_NAME, org_id, kind, offset, limit, out, count,
                        total, a);
}

/* ---- subscriptions ------------------------------------------------------------------------- */

static bool read_subscription(sqlite3_stmt *s, struct store_subscription *out, struct arena *a)
{
    struct subscription *sub = &out->sub;
    memset(out, 0, sizeof *out);
    sub->id = sqlite3_column_int64(s, 0);
    sub->org_id = sqlite3_column_int64(s, 1);
    sub->customer_id = sqlite3_column_int64(s, 2);
    snprintf(sub->lago_id, sizeof sub->lago_id, "%s", (const char *)sqlite3_column_text(s, 3));
    sub->external_id = column_text(s, 4, a);
    sub->name = column_text(s, 5, a);
    snprintf(sub->plan_lago_id, sizeof sub->plan_lago_id, "%s",
             (const char *)sqlite3_column_text(s, 6));
    sub->plan_code = column_text(s, 7, a);
    sub->billing_time = sqlite3_column_int(s, 8) ? PERIOD_ANNIVERSARY : PERIOD_CALENDAR;
    sub->subscription_at = sqlite3_column_int64(s, 9);
    sub->started_at = sqlite3_column_int64(s, 10);
    sub->has_ending_at = column_instant(s, 11, &sub->ending_at);
    sub->has_terminated_at = column_instant(s, 12, &sub->terminated_at);
    sub->has_canceled_at = column_instant(s, 13, &sub->canceled_at);
    sub->previous_id = sqlite3_column_int64(s, 14);
    sub->next_id = sqlite3_column_int64(s, 15);
    sub->created_at = sqlite3_column_int64(s, 16);
    sub->updated_at = sqlite3_column_int64(s, 17);
    snprintf(out->customer_lago_id, sizeof out->customer_lago_id, "%s",
             (const char *)sqlite3_column_text(s, 18));
    out->customer_external_id = column_text(s, 19, a);
    out->customer_timezone = column_text(s, 20, a);
    sub->plan_body = column_text(s, 21, a);
    out->customer_tax_codes = column_text(s, 22, a);
    sub->purchase_order_number = column_text(s, 23, a);
    return sub->external_id && sub->plan_code && out->customer_external_id;
}

static bool read_subscription_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_subscription(s, item, a);
}

enum store_status store_subscription_save(struct store *st, struct subscription *sub)
{
    bool insert = sub->id == 0;
    sqlite3_stmt *s =
        store_stmt(&st->conn, insert ? STMT_SUBSCRIPTION_INSERT : STMT_SUBSCRIPTION_UPDATE);
    if (!s)
        return STORE_ERROR;
    if (!insert)
        sqlite3_bind_int64(s, 1, sub->id);
    sqlite3_bind_int64(s, 2, sub->org_id);
    sqlite3_bind_int64(s, 3, sub->customer_id);
    bind_text(s, 4, sub->lago_id);
    bind_text(s, 5, sub->external_id);
    bind_text(s, 6, sub->name);
    bind_text(s, 7, sub->plan_lago_id);
    bind_text(s, 8, sub->plan_code);
    sqlite3_bind_int(s, 9, sub->billing_time == PERIOD_ANNIVERSARY);
    sqlite3_bind_int64(s, 10, sub->subscription_at);
    sqlite3_bind_int64(s, 11, sub->started_at);
    bind_instant(s, 12, sub->has_ending_at, sub->ending_at);
    bind_instant(s, 13, sub->has_terminated_at, sub->terminated_at);
    bind_instant(s, 14, sub->has_canceled_at, sub->canceled_at);
    sqlite3_bind_int64(s, 15, sub->previous_id);
    sqlite3_bind_int64(s, 16, sub->next_id);
    sqlite3_bind_int64(s, 17, sub->created_at);
    sqlite3_bind_int64(s, 18, sub->updated_at);
    bind_text(s, 19, sub->plan_body);
    bind_text(s, 20, sub->purchase_order_number);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    if (insert)
        sub->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_subscription_get(struct store_conn *c, int64_t org_id, int64_t id,
                                         struct store_subscription *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_SUBSCRIPTION_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, id);
    return read_one(s, read_subscription_row, out, a);
}

/* The subscription over an external id that one of three statements picks at an instant: the
   live one, the one active then, the one its termination ended then. */
static enum store_status subscription_by_external_id(struct store_conn *c, enum stmt_id stmt,
                                                     int64_t org_id, const char *external_id,
                                                     tally_time at, struct store_subscription *out,
                                                     struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, stmt);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, external_id);
    sqlite3_bind_int64(s, 3, at);
    return read_one(s, read_subscription_row, out, a);
}

enum store_status store_subscription_live(struct store_conn *c, int64_t org_id,
                                          const char *external_id, tally_time now,
                                          struct store_subscription *out, struct arena *a)
{
    return subscription_by_external_id(c, STMT_SUBSCRIPTION_BY_EXTERNAL_ID, org_id, external_id,
                                       now, out, a);
}

enum store_status store_subscription_list(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                          unsigned status_mask, tally_time now, int64_t offset,
                                          int64_t limit, struct store_subscription **out,
                                          size_t *count, int64_t *total, struct arena *a)
{
    const struct store_subscription_filter f = {.customer_id = customer_id,
                                                .status_mask = status_mask};
    return store_subscription_find(c, org_id, &f, now, offset, limit, out, count, total, a);
}

enum store_status store_subscription_find(struct store_conn *c, int64_t org_id,
                                          const struct store_subscription_filter *f, tally_time now,
                                          int64_t offset, int64_t limit,
                                          struct store_subscription **out, size_t *count,
                                          int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = org_id},
                                        {.value = now},
                                        {.value = f->customer_id},
                                        {.value = (int64_t)f->status_mask},
                                        {.is_text = true, .text = f->plan_code},
                                        {.is_text = true, .text = f->external_id},
                                        {.is_text = true, .text = f->currency},
                                        {.value = (int64_t)f->own_plan}};
    const struct page_query q = {STMT_SUBSCRIPTION_COUNT,
                                 f->lago_order ? STMT_SUBSCRIPTION_LISTED : STMT_SUBSCRIPTION_PAGE,
                                 params,
                                 (int)(sizeof params / sizeof params[0]),
                                 sizeof **out,
                                 read_subscription_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

enum store_status store_customer_live_subscriptions(struct store_conn *c, int64_t org_id,
                                                    int64_t customer_id, tally_time now,
                                                    int64_t *count)
{
    sqlite3_stmt *s = store_stmt(c, STMT_SUBSCRIPTION_CUSTOMER_LIVE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, customer_id);
    enum store_status r = read_number(s, count);
    return r;
}

/* ---- applied coupons ---------------------------------------------------------------------- */

static bool read_applied_coupon(sqlite3_stmt *s, struct store_applied_coupon *out, struct arena *a)
{
    struct applied_coupon *c = &out->coupon;
    memset(out, 0, sizeof *out);
    c->id = sqlite3_column_int64(s, 0);
    c->org_id = sqlite3_column_int64(s, 1);
    c->customer_id = sqlite3_column_int64(s, 2);
    snprintf(c->lago_id, sizeof c->lago_id, "%s", (const char *)sqlite3_column_text(s, 3));
    snprintf(c->coupon_lago_id, sizeof c->coupon_lago_id, "%s",
             (const char *)sqlite3_column_text(s, 4));
    c->coupon_code = column_text(s, 5, a);
    c->coupon_name = column_text(s, 6, a);
    c->type = sqlite3_column_int(s, 7) ? COUPON_PERCENTAGE : COUPON_FIXED_AMOUNT;
    c->amount_cents = sqlite3_column_int64(s, 8);
    c->amount_cents_remaining = sqlite3_column_int64(s, 9);
    const unsigned char *currency = sqlite3_column_text(s, 10);
    snprintf(c->amount_currency, sizeof c->amount_currency, "%s",
             currency ? (const char *)currency : "");
    c->percentage_rate = column_text(s, 11, a);
    int frequency = sqlite3_column_int(s, 12);
    if (frequency < COUPON_ONCE || frequency > COUPON_FOREVER)
        return false; /* as a kind above: never written, so a damaged or newer store */
    c->frequency = (enum coupon_frequency)frequency;
    c->frequency_duration = sqlite3_column_int64(s, 13);
    c->frequency_duration_remaining = sqlite3_column_int64(s, 14);
    if (sqlite3_column_int(s, 20)) {
        /* the coupon's body writes its expiry as ISO 8601 (api/coupons.c), or null */
        const char *at = (const char *)sqlite3_column_text(s, 21);
        c->has_expiration_at = at && timestamp_parse_iso8601(at, strlen(at), &c->expiration_at);
    } else {
        c->has_expiration_at = column_instant(s, 15, &c->expiration_at);
    }
    c->has_terminated_at = column_instant(s, 16, &c->terminated_at);
    c->created_at = sqlite3_column_int64(s, 17);
    snprintf(out->customer_lago_id, sizeof out->customer_lago_id, "%s",
             (const char *)sqlite3_column_text(s, 18));
    out->customer_external_id = column_text(s, 19, a);
    out->coupon_deleted = column_instant(s, 22, &out->coupon_deleted_at);
    out->coupon_body = sqlite3_column_type(s, 23) == SQLITE_NULL ? NULL : column_text(s, 23, a);
    return c->coupon_code && c->coupon_name && out->customer_external_id;
}

static bool read_applied_coupon_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_applied_coupon(s, item, a);
}

enum store_status store_applied_coupon_insert(struct store *st, struct applied_coupon *c)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_APPLIED_COUPON_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, c->org_id);
    sqlite3_bind_int64(s, 2, c->customer_id);
    bind_text(s, 3, c->lago_id);
    bind_text(s, 4, c->coupon_lago_id);
    bind_text(s, 5, c->coupon_code);
    bind_text(s, 6, c->coupon_name);
    sqlite3_bind_int(s, 7, c->type == COUPON_PERCENTAGE);
    sqlite3_bind_int64(s, 8, c->amount_cents);
    sqlite3_bind_int64(s, 9, c->amount_cents_remaining);
    bind_text(s, 10, c->type == COUPON_FIXED_AMOUNT ? c->amount_currency : NULL);
    bind_text(s, 11, c->percentage_rate);
    sqlite3_bind_int(s, 12, (int)c->frequency);
    sqlite3_bind_int64(s, 13, c->frequency_duration);
    sqlite3_bind_int64(s, 14, c->frequency_duration_remaining);
    bind_instant(s, 15, c->has_expiration_at, c->expiration_at);
    bind_instant(s, 16, c->has_terminated_at, c->terminated_at);
    sqlite3_bind_int64(s, 17, c->created_at);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    c->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_applied_coupon_terminate(struct store *st, int64_t id, tally_time at)
{
    return store_exec_with_ints(st, STMT_APPLIED_COUPON_TERMINATE, id, at);
}

enum store_status store_applied_coupon_get(struct store_conn *c, int64_t org_id,
                                           const char *lago_id, struct store_applied_coupon *out,
                                           struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_APPLIED_COUPON_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, lago_id);
    return read_one(s, read_applied_coupon_row, out, a);
}

enum store_status store_applied_coupon_uses(struct store_conn *c, int64_t org_id,
                                            const char *coupon_lago_id, int64_t customer_id,
                                            int64_t *count)
{
    sqlite3_stmt *s = store_stmt(c, STMT_APPLIED_COUPON_USES);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, coupon_lago_id);
    sqlite3_bind_int64(s, 3, customer_id);
    enum store_status r = read_number(s, count);
    return r;
}

enum store_status store_coupon_in_use(struct store_conn *c, int64_t org_id,
                                      const char *coupon_lago_id, bool *in_use)
{
    return exists_with_text(c, STMT_COUPON_IN_USE, org_id, coupon_lago_id, in_use);
}

enum store_status store_applied_coupons_end_of_coupon(struct store *st, int64_t org_id,
                                                      const char *coupon_lago_id, tally_time at,
                                                      int64_t *ended)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_APPLIED_COUPONS_END_OF_COUPON);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, coupon_lago_id);
    sqlite3_bind_int64(s, 3, at);
    enum store_status r = step_done(s);
    *ended = r == STORE_OK ? sqlite3_changes(st->conn.db) : 0;
    return r;
}

enum store_status store_applied_coupon_list(struct store_conn *c, int64_t org_id,
                                            int64_t customer_id, int status,
                                            const char *coupon_codes_json, int64_t offset,
                                            int64_t limit, struct store_applied_coupon **out,
                                            size_t *count, int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = org_id},
                                        {.value = customer_id},
                                        {.value = status},
                                        {.is_text = true, .text = coupon_codes_json}};
    const struct page_query q = {
        STMT_APPLIED_COUPON_COUNT, STMT_APPLIED_COUPON_PAGE, params, 4, sizeof **out,
        read_applied_coupon_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

/*
 * Steps a bound statement to its end, reading each row into an array grown in the arena
 * (`read` fills one row of `size` bytes, false when it cannot); the statement is reset. The
 * outgrown copies stay in the arena until it goes: these lists are a command's, and short.
 */
enum store_status store_collect_rows(sqlite3_stmt *s, size_t size, row_reader *read, void **out,
                                     size_t *count, struct arena *a)
{
    enum store_status r = STORE_OK;
    size_t n = 0, cap = 0;
    char *rows = NULL;
    int rc;
    while (r == STORE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t more = cap ? 2 * cap : 16;
            char *grown = arena_alloc(a, more * size);
            if (!grown) {
                r = STORE_ERROR;
                break;
            }
            if (n)
                memcpy(grown, rows, n * size);
            rows = grown;
            cap = more;
        }
        if (!read(s, rows + n * size, a))
            r = STORE_ERROR;
        n++;
    }
    if (r == STORE_OK && rc != SQLITE_DONE)
        r = STORE_ERROR;
    sqlite3_reset(s);
    *out = r == STORE_OK ? rows : NULL;
    *count = r == STORE_OK ? n : 0;
    return r;
}

static bool read_own_plan(sqlite3_stmt *s, void *row, struct arena *a)
{
    struct store_own_plan *p = row;
    p->subscription_id = sqlite3_column_int64(s, 0);
    p->updated_at = sqlite3_column_int64(s, 1);
    p->ended = sqlite3_column_int(s, 4) != 0;
    return (p->plan_body = column_text(s, 2, a)) != NULL &&
           (p->external_id = column_text(s, 3, a)) != NULL;
}

enum store_status store_subscription_own_plans(struct store_conn *c, int64_t org_id,
                                               const char *containing, struct store_own_plan **out,
                                               size_t *count, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_SUBSCRIPTION_OWN_PLANS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, containing);
    return store_collect_rows(s, sizeof **out, read_own_plan, (void **)out, count, a);
}

static bool read_customer_taxes(sqlite3_stmt *s, void *row, struct arena *a)
{
    struct store_customer_taxes *t = row;
    t->customer_id = sqlite3_column_int64(s, 0);
    return (t->tax_codes = column_text(s, 1, a)) != NULL;
}

enum store_status store_customers_taxed(struct store_conn *c, int64_t org_id,
                                        const char *containing, struct store_customer_taxes **out,
                                        size_t *count, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_CUSTOMER_TAXED);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, containing);
    return store_collect_rows(s, sizeof **out, read_customer_taxes, (void **)out, count, a);
}

enum store_status store_customer_set_tax_codes(struct store *st, int64_t customer_id,
                                               const char *tax_codes)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_CUSTOMER_SET_TAX_CODES);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, customer_id);
    bind_text(s, 2, tax_codes);
    return step_done(s);
}

enum store_status store_subscription_set_plan_body(struct store *st, int64_t subscription_id,
                                                   const char *plan_body, tally_time updated_at)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_SUBSCRIPTION_SET_PLAN_BODY);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, subscription_id);
    bind_text(s, 2, plan_body);
    sqlite3_bind_int64(s, 3, updated_at);
    return step_done(s);
}

enum store_status store_plan_live_subscriptions(struct store_conn *c, int64_t org_id,
                                                const char *plan_lago_id, tally_time now,
                                                int64_t *count)
{
    sqlite3_stmt *s = store_stmt(c, STMT_PLAN_LIVE_SUBSCRIPTIONS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, now);
    bind_text(s, 3, plan_lago_id);
    enum store_status r = read_number(s, count);
    return r;
}

/* The subscription rows statement `which` lists for a plan at `now`. */
static enum store_status plan_subscription_rows(struct store_conn *c, enum stmt_id which,
                                                int64_t org_id, const char *plan_lago_id,
                                                tally_time now, struct store_subscription **out,
                                                size_t *count, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, which);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, now);
    bind_text(s, 3, plan_lago_id);
    return store_collect_rows(s, sizeof **out, read_subscription_row, (void **)out, count, a);
}

enum store_status store_plan_live_subscription_rows(struct store_conn *c, int64_t org_id,
                                                    const char *plan_lago_id, tally_time now,
                                                    struct store_subscription **out, size_t *count,
                                                    struct arena *a)
{
    return plan_subscription_rows(c, STMT_PLAN_LIVE_SUBSCRIPTION_ROWS, org_id, plan_lago_id, now,
                                  out, count, a);
}

enum store_status store_plan_attached(struct store_conn *c, int64_t org_id,
                                      const char *plan_lago_id, bool *attached)
{
    return exists_with_text(c, STMT_PLAN_ATTACHED, org_id, plan_lago_id, attached);
}

enum store_status store_plan_scheduled_changes(struct store_conn *c, int64_t org_id,
                                               const char *plan_lago_id, tally_time now,
                                               struct store_subscription **out, size_t *count,
                                               struct arena *a)
{
    return plan_subscription_rows(c, STMT_PLAN_SCHEDULED_CHANGES, org_id, plan_lago_id, now, out,
                                  count, a);
}

enum store_status store_metric_plan(struct store_conn *c, int64_t org_id,
                                    const char *metric_lago_id, const char **plan_code,
                                    struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_METRIC_IN_PLANS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int(s, 2, CATALOG_PLAN);
    bind_text(s, 3, metric_lago_id);
    enum store_status r = step_one(s);
    if (r == STORE_OK && !(*plan_code = column_text(s, 0, a)))
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}

/* A code asked about and its place in store_tax_usage's arrays, sorted by code to be found. */
struct tax_code_at {
    const char *code;
    size_t at;
};

static int tax_code_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tax_code_at *)a)->code, ((const struct tax_code_at *)b)->code);
}

/* Steps a bound tax usage statement, whose rows are (code, what, count), adding each row's
 * count to the usage of every code asked about that it is (sorted: by_code, n). Resets it. */
static enum store_status add_tax_uses(sqlite3_stmt *s, const struct tax_code_at *by_code, size_t n,
                                      struct store_tax_usage *out)
{
    int rc;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct tax_code_at key = {(const char *)sqlite3_column_text(s, 0), 0};
        int64_t count = sqlite3_column_int64(s, 2);
        if (!key.code) /* a JSON null in a list of codes: no code asked about is null */
            continue;
        const struct tax_code_at *hit = bsearch(&key, by_code, n, sizeof *by_code, tax_code_cmp);
        while (hit && hit > by_code && strcmp(hit[-1].code, key.code) == 0)
            hit--;
        for (; hit && hit < by_code + n && strcmp(hit->code, key.code) == 0; hit++) {
            struct store_tax_usage *u = &out[hit->at];
            switch (sqlite3_column_int(s, 1)) {
            case TAX_USE_CUSTOMER: u->customers += count; break;
            case TAX_USE_ADD_ON: u->add_ons += count; break;
            case TAX_USE_PLAN: u->plans += count; break;
            case TAX_USE_CHARGE: u->charges += count; break;
            case TAX_USE_COMMITMENT: u->commitments += count; break;
            default: ok = false;
            }
        }
    }
    sqlite3_reset(s);
    return ok && rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_status store_tax_usage(struct store_conn *c, int64_t org_id, const char *const *codes,
                                  size_t n, struct store_tax_usage *out)
{
    memset(out, 0, n * sizeof *out);
    if (n == 0)
        return STORE_OK;
    sqlite3_stmt *s = store_stmt(c, STMT_TAX_UNTAXED_CUSTOMERS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    enum store_status r = step_one(s);
    for (size_t i = 0; r == STORE_OK && i < n; i++)
        out[i].untaxed_customers = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (r != STORE_OK) /* an aggregate always has its row */
        return STORE_ERROR;

    /* the codes as a JSON array, which each statement reads with json_each, and sorted, to
     * find the rows' codes among them */
    struct tax_code_at *by_code = malloc(n * sizeof *by_code);
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_array_begin(&w);
    for (size_t i = 0; by_code && i < n; i++) {
        jsonw_cstr(&w, codes[i]);
        by_code[i] = (struct tax_code_at){codes[i], i};
    }
    jsonw_array_end(&w);
    if (!by_code || buf_failed(&b) || b.len > INT_MAX) {
        free(by_code);
        buf_free(&b);
        return STORE_ERROR;
    }
    qsort(by_code, n, sizeof *by_code, tax_code_cmp);
    static const struct {
        enum stmt_id id;
        enum catalog_kind kind; /* bound as ?2 (the customers' statement has none) */
    } visits[] = {{STMT_TAX_IN_CUSTOMERS, 0},
                  {STMT_TAX_IN_ADD_ONS, CATALOG_ADD_ON},
                  {STMT_TAX_IN_PLANS, CATALOG_PLAN},
                  {STMT_TAX_IN_OWN_PLANS, CATALOG_PLAN}};
    for (size_t v = 0; r == STORE_OK && v < sizeof visits / sizeof *visits; v++) {
        if (!(s = store_stmt(c, visits[v].id))) {
            r = STORE_ERROR;
            break;
        }
        int codes_at = 2;
        sqlite3_bind_int64(s, 1, org_id);
        if (visits[v].id != STMT_TAX_IN_CUSTOMERS)
            sqlite3_bind_int(s, codes_at++, visits[v].kind);
        sqlite3_bind_text(s, codes_at, b.data, (int)b.len, SQLITE_STATIC);
        r = add_tax_uses(s, by_code, n, out);
    }
    free(by_code);
    buf_free(&b);
    return r;
}

enum store_status store_subscription_at(struct store_conn *c, int64_t org_id,
                                        const char *external_id, tally_time at,
                                        struct store_subscription *out, struct arena *a)
{
    return subscription_by_external_id(c, STMT_SUBSCRIPTION_AT, org_id, external_id, at, out, a);
}

enum store_status store_subscription_ended_at(struct store_conn *c, int64_t org_id,
                                              const char *external_id, tally_time at,
                                              struct store_subscription *out, struct arena *a)
{
    return subscription_by_external_id(c, STMT_SUBSCRIPTION_ENDED_AT, org_id, external_id, at, out,
                                       a);
}

enum store_status store_subscription_initial_start(struct store_conn *c, int64_t org_id,
                                                   int64_t customer_id, const char *external_id,
                                                   tally_time now, tally_time *out)
{
    sqlite3_stmt *s = store_stmt(c, STMT_SUBSCRIPTION_INITIAL_START);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, external_id);
    sqlite3_bind_int64(s, 3, customer_id);
    sqlite3_bind_int64(s, 4, now);
    enum store_status r = STORE_ERROR;
    if (sqlite3_step(s) == SQLITE_ROW) {
        r = sqlite3_column_type(s, 0) == SQLITE_NULL ? STORE_NOT_FOUND : STORE_OK;
        if (r == STORE_OK)
            *out = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    return r;
}
