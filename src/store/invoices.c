/*
 * store/invoices.c: invoices (the credit invoices of top-ups), their numbering and their list.
 *
 * Shape: an invoice is numbered when it is issued, inside the transaction that saves it
 * (invoice_number below). Its SQL is in store.c's table.
 */
#include "store/store_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- invoices ------------------------------------------------------------------------------ */

static bool read_invoice(sqlite3_stmt *s, struct store_invoice *v, struct arena *a)
{
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(s, 0);
    v->org_id = sqlite3_column_int64(s, 1);
    v->customer_id = sqlite3_column_int64(s, 2);
    column_lago_id(s, 3, v->lago_id);
    v->sequential_id = sqlite3_column_int64(s, 4);
    const unsigned char *number = sqlite3_column_text(s, 5);
    if (!number || (size_t)sqlite3_column_bytes(s, 5) >= sizeof v->number)
        return false;
    memcpy(v->number, number, (size_t)sqlite3_column_bytes(s, 5) + 1);
    int type = sqlite3_column_int(s, 6), status = sqlite3_column_int(s, 7),
        payment = sqlite3_column_int(s, 8);
    if (type != INVOICE_CREDIT || status < INVOICE_DRAFT || status > INVOICE_OPEN ||
        payment < INVOICE_PAYMENT_PENDING || payment > INVOICE_PAYMENT_FAILED)
        return false;
    v->type = (enum invoice_type)type;
    v->status = (enum invoice_status)status;
    v->payment_status = (enum invoice_payment_status)payment;
    snprintf(v->currency, sizeof v->currency, "%s", (const char *)sqlite3_column_text(s, 9));
    v->amount_cents = sqlite3_column_int64(s, 10);
    v->wallet_transaction_id = sqlite3_column_int64(s, 11);
    v->issuing_date = column_text(s, 12, a);
    v->created_at = sqlite3_column_int64(s, 13);
    v->updated_at = sqlite3_column_int64(s, 14);
    column_lago_id(s, 15, v->customer_lago_id);
    v->external_customer_id = column_text(s, 16, a);
    v->net_payment_term = sqlite3_column_int(s, 17);
    v->purchase_order_number = column_text(s, 18, a);
    return v->issuing_date && v->external_customer_id;
}

static bool read_invoice_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_invoice(s, item, a);
}

/*
 * The invoice's sequential id and number, as Lago's ensure_number gives them: "TLY-DRAFT" and
 * none until it is issued; on the save that issues it, the next of its customer's sequence
 * (the highest given + 1: invoices not issued hold none), kept from then on. The one writer
 * computes it inside the transaction that saves it, so two issued in one commit take two
 * numbers, and a command undone gives its number back with the rest.
 */
static enum store_status invoice_number(struct store *st, struct store_invoice *v)
{
    if (v->status != INVOICE_FINALIZED && v->status != INVOICE_VOIDED) {
        v->sequential_id = 0;
        snprintf(v->number, sizeof v->number, "%s-DRAFT", INVOICE_NUMBER_PREFIX);
        return STORE_OK;
    }
    if (v->sequential_id > 0)
        return STORE_OK; /* issued before: v->number is its own, as read */
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_INVOICE_NEXT_SEQUENCE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, v->org_id);
    sqlite3_bind_int64(s, 2, v->customer_id);
    enum store_status r = step_one(s);
    int64_t customer = 0;
    if (r == STORE_OK) {
        v->sequential_id = sqlite3_column_int64(s, 0);
        customer = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (r != STORE_OK || customer <= 0)
        return STORE_ERROR;
    snprintf(v->number, sizeof v->number, "%s-%03lld-%03lld", INVOICE_NUMBER_PREFIX,
             (long long)customer, (long long)v->sequential_id);
    return STORE_OK;
}

enum store_status store_invoice_save(struct store *st, struct store_invoice *v)
{
    bool insert = v->id == 0;
    if (invoice_number(st, v) != STORE_OK)
        return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(&st->conn, insert ? STMT_INVOICE_INSERT : STMT_INVOICE_UPDATE);
    if (!s)
        return STORE_ERROR;
    if (!insert)
        sqlite3_bind_int64(s, 1, v->id);
    sqlite3_bind_int64(s, 2, v->org_id);
    sqlite3_bind_int64(s, 3, v->customer_id);
    bind_text(s, 4, v->lago_id);
    sqlite3_bind_int64(s, 5, v->sequential_id);
    bind_text(s, 6, v->number);
    sqlite3_bind_int(s, 7, (int)v->type);
    sqlite3_bind_int(s, 8, (int)v->status);
    sqlite3_bind_int(s, 9, (int)v->payment_status);
    bind_text(s, 10, v->currency);
    sqlite3_bind_int64(s, 11, v->amount_cents);
    sqlite3_bind_int64(s, 12, v->wallet_transaction_id);
    bind_text(s, 13, v->issuing_date);
    sqlite3_bind_int64(s, 14, v->created_at);
    sqlite3_bind_int64(s, 15, v->updated_at);
    sqlite3_bind_int(s, 16, v->net_payment_term);
    if (insert)
        bind_text(s, 17, v->purchase_order_number); /* fixed when made */
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    if (insert)
        v->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_invoice_get(struct store_conn *c, int64_t org_id, const char *lago_id,
                                    struct store_invoice *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_INVOICE_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, lago_id);
    return read_one(s, read_invoice_row, out, a);
}

enum store_status store_invoice_list(struct store_conn *c, int64_t org_id,
                                     const struct store_invoice_filter *f, int64_t offset,
                                     int64_t limit, struct store_invoice **out, size_t *count,
                                     int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = org_id},
                                        {.value = f->customer_id},
                                        {.value = f->payment_status_mask},
                                        {.value = f->status_mask},
                                        {.value = f->type_mask},
                                        {.is_text = true, .text = f->currency},
                                        {.is_text = true, .text = f->issuing_date_from},
                                        {.is_text = true, .text = f->issuing_date_to},
                                        {.value = f->amount_from},
                                        {.value = f->amount_to},
                                        {.value = f->self_billed},
                                        {.value = f->overdue},
                                        {.is_text = true, .text = f->overdue_through}};
    const struct page_query q = {STMT_INVOICE_COUNT, STMT_INVOICE_PAGE, params, 13,
                                 sizeof **out,       read_invoice_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}
