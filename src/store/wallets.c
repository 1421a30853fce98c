/*
 * store/wallets.c: prepaid credits as stored: wallets, wallet transactions (grants, debits,
 * top-ups) and their consumptions, the ledger's postings and balances, the debits kept per
 * charge and period, and the wallet journal (engine/wallet_book's records awaiting write-out).
 *
 * Shape: one file because these tables are written together by one command (a debit moves a
 * wallet, its grants, a posting and a charge debit at once) and read through each other (a
 * ledger entry shows its wallet and transaction). Holds are authorizations.c's. Their SQL is in
 * store.c's table.
 */
#include "store/store_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- wallets -------------------------------------------------------------------------------- */

static bool read_wallet(sqlite3_stmt *s, struct store_wallet *w, struct arena *a)
{
    memset(w, 0, sizeof *w);
    w->id = sqlite3_column_int64(s, 0);
    w->org_id = sqlite3_column_int64(s, 1);
    w->customer_id = sqlite3_column_int64(s, 2);
    column_lago_id(s, 3, w->lago_id);
    w->code = column_text(s, 4, a);
    w->name = column_text(s, 5, a);
    snprintf(w->currency, sizeof w->currency, "%s", (const char *)sqlite3_column_text(s, 6));
    bool ok = column_money(s, 7, &w->rate_amount);
    w->priority = sqlite3_column_int(s, 8);
    int limit = sqlite3_column_int(s, 9);
    w->limit = limit == WALLET_LIMIT_HARD   ? WALLET_LIMIT_HARD
               : limit == WALLET_LIMIT_SOFT ? WALLET_LIMIT_SOFT
                                            : WALLET_LIMIT_NONE;
    w->overdraft_limit_cents = sqlite3_column_int64(s, 10);
    w->balance_cents = sqlite3_column_int64(s, 11);
    w->consumed_cents = sqlite3_column_int64(s, 12);
    w->overdrawn_cents = sqlite3_column_int64(s, 13);
    w->has_expiration_at = column_instant(s, 14, &w->expiration_at);
    w->has_terminated_at = column_instant(s, 15, &w->terminated_at);
    w->has_last_consumed_at = column_instant(s, 16, &w->last_consumed_at);
    w->terms_json = column_text(s, 17, a);
    w->created_at = sqlite3_column_int64(s, 18);
    w->updated_at = sqlite3_column_int64(s, 19);
    column_lago_id(s, 20, w->customer_lago_id);
    w->external_customer_id = column_text(s, 21, a);
    w->held_cents = sqlite3_column_int64(s, 22);
    w->has_next_rule_at = column_instant(s, 23, &w->next_rule_at);
    w->last_interval_grant_id = sqlite3_column_int64(s, 24);
    w->customer_timezone = column_text(s, 25, a);
    w->last_interval_paid_grant_id = sqlite3_column_int64(s, 26);
    w->rule_unfired = sqlite3_column_int(s, 27) != 0;
    w->rollover_room_cents = sqlite3_column_int64(s, 28);
    return ok && w->code && w->terms_json && w->external_customer_id;
}

static bool read_wallet_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_wallet(s, item, a);
}

enum store_status store_wallet_save(struct store *st, struct store_wallet *w)
{
    bool insert = w->id == 0;
    sqlite3_stmt *s = store_stmt(&st->conn, insert ? STMT_WALLET_INSERT : STMT_WALLET_UPDATE);
    if (!s)
        return STORE_ERROR;
    char rate[MONEY_TEXT_MAX];
    money_format(w->rate_amount, rate, sizeof rate);
    if (!insert)
        sqlite3_bind_int64(s, 1, w->id);
    sqlite3_bind_int64(s, 2, w->org_id);
    sqlite3_bind_int64(s, 3, w->customer_id);
    bind_text(s, 4, w->lago_id);
    bind_text(s, 5, w->code);
    bind_text(s, 6, w->name);
    bind_text(s, 7, w->currency);
    bind_text(s, 8, rate);
    sqlite3_bind_int(s, 9, w->priority);
    sqlite3_bind_int(s, 10, (int)w->limit);
    sqlite3_bind_int64(s, 11, w->overdraft_limit_cents);
    sqlite3_bind_int64(s, 12, w->balance_cents);
    sqlite3_bind_int64(s, 13, w->consumed_cents);
    sqlite3_bind_int64(s, 14, w->overdrawn_cents);
    bind_instant(s, 15, w->has_expiration_at, w->expiration_at);
    bind_instant(s, 16, w->has_terminated_at, w->terminated_at);
    bind_instant(s, 17, w->has_last_consumed_at, w->last_consumed_at);
    bind_text(s, 18, w->terms_json);
    sqlite3_bind_int64(s, 19, w->created_at);
    sqlite3_bind_int64(s, 20, w->updated_at);
    sqlite3_bind_int64(s, 21, w->held_cents);
    bind_instant(s, 22, w->has_next_rule_at, w->next_rule_at);
    sqlite3_bind_int64(s, 23, w->last_interval_grant_id);
    sqlite3_bind_int64(s, 24, w->last_interval_paid_grant_id);
    sqlite3_bind_int(s, 25, w->rule_unfired ? 1 : 0);
    sqlite3_bind_int64(s, 26, w->rollover_room_cents);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    if (insert)
        w->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

static bool read_wallet_terms(sqlite3_stmt *s, void *row, struct arena *a)
{
    struct store_wallet_terms *t = row;
    t->wallet_id = sqlite3_column_int64(s, 0);
    t->customer_id = sqlite3_column_int64(s, 1);
    return (t->terms_json = column_text(s, 2, a)) != NULL;
}

enum store_status store_wallets_naming(struct store_conn *c, int64_t org_id, const char *containing,
                                       struct store_wallet_terms **out, size_t *count,
                                       struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_WALLETS_NAMING);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, containing);
    return store_collect_rows(s, sizeof **out, read_wallet_terms, (void **)out, count, a);
}

enum store_status store_wallet_set_terms(struct store *st, int64_t wallet_id,
                                         const char *terms_json)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WALLET_SET_TERMS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    bind_text(s, 2, terms_json);
    return step_done(s);
}

enum store_status store_wallet_get(struct store_conn *c, int64_t org_id, const char *lago_id,
                                   struct store_wallet *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_WALLET_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, lago_id);
    return read_one(s, read_wallet_row, out, a);
}

enum store_status store_wallet_by_id(struct store_conn *c, int64_t id, struct store_wallet *out,
                                     struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_WALLET_BY_ID);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return read_one(s, read_wallet_row, out, a);
}

enum store_status store_customer_wallets(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                         struct store_wallet **out, size_t *count, struct arena *a)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt(c, STMT_WALLETS_OF_CUSTOMER);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, customer_id);
    /* Active wallets are bounded (WALLET_PER_CUSTOMER_MAX); a few more are read if an older
     * store holds more, never silently dropped. */
    size_t cap = WALLET_PER_CUSTOMER_MAX;
    struct store_wallet *items = arena_alloc(a, cap * sizeof *items);
    int rc = SQLITE_DONE;
    while (items && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*count == cap) {
            struct store_wallet *bigger = arena_alloc(a, 2 * cap * sizeof *items);
            if (bigger)
                memcpy(bigger, items, cap * sizeof *items);
            items = bigger;
            cap *= 2;
            if (!items)
                break;
        }
        if (!read_wallet(s, &items[*count], a)) {
            items = NULL;
            break;
        }
        (*count)++;
    }
    sqlite3_reset(s);
    if (!items || rc != SQLITE_DONE)
        return STORE_ERROR;
    *out = items;
    return STORE_OK;
}

enum store_status store_wallet_list(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                    const char *currency, int64_t offset, int64_t limit,
                                    struct store_wallet **out, size_t *count, int64_t *total,
                                    struct arena *a)
{
    const struct page_param params[] = {
        {.value = org_id}, {.value = customer_id}, {.is_text = true, .text = currency}};
    const struct page_query q = {STMT_WALLET_COUNT, STMT_WALLET_PAGE, params, 3,
                                 sizeof **out,      read_wallet_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

/* ---- wallet transactions --------------------------------------------------------------------- */

static bool read_wallet_transaction(sqlite3_stmt *s, int first, struct store_wallet_transaction *t,
                                    struct arena *a)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(s, first + 0);
    t->org_id = sqlite3_column_int64(s, first + 1);
    t->wallet_id = sqlite3_column_int64(s, first + 2);
    column_lago_id(s, first + 3, t->lago_id);
    t->type = sqlite3_column_int(s, first + 4) ? WALLET_OUTBOUND : WALLET_INBOUND;
    int state = sqlite3_column_int(s, first + 5), status = sqlite3_column_int(s, first + 6),
        source = sqlite3_column_int(s, first + 7);
    if (state < WALLET_TX_PENDING || state > WALLET_TX_FAILED || status < WALLET_TX_PURCHASED ||
        status > WALLET_TX_EXPIRED || source < WALLET_SOURCE_MANUAL ||
        source > WALLET_SOURCE_THRESHOLD)
        return false;
    t->state = (enum wallet_transaction_state)state;
    t->status = (enum wallet_transaction_status)status;
    t->source = (enum wallet_transaction_source)source;
    t->amount_cents = sqlite3_column_int64(s, first + 8);
    t->remaining_cents = sqlite3_column_int64(s, first + 9);
    t->priority = sqlite3_column_int(s, first + 10);
    t->paid = sqlite3_column_int(s, first + 11) != 0;
    t->has_expiration_at = column_instant(s, first + 12, &t->expiration_at);
    t->name = column_text(s, first + 13, a);
    t->details_json = column_text(s, first + 14, a);
    t->has_settled_at = column_instant(s, first + 15, &t->settled_at);
    t->has_failed_at = column_instant(s, first + 16, &t->failed_at);
    t->created_at = sqlite3_column_int64(s, first + 17);
    column_lago_id(s, first + 18, t->wallet_lago_id);
    snprintf(t->currency, sizeof t->currency, "%s",
             (const char *)sqlite3_column_text(s, first + 20));
    t->invoice_lago_id = column_text(s, first + 21, a);
    return column_money(s, first + 19, &t->rate_amount);
}

static bool read_wallet_transaction_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_wallet_transaction(s, 0, item, a);
}

enum store_status store_wallet_transaction_insert(struct store *st,
                                                  struct store_wallet_transaction *t)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WT_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, t->org_id);
    sqlite3_bind_int64(s, 2, t->wallet_id);
    bind_text(s, 3, t->lago_id);
    sqlite3_bind_int(s, 4, (int)t->type);
    sqlite3_bind_int(s, 5, (int)t->state);
    sqlite3_bind_int(s, 6, (int)t->status);
    sqlite3_bind_int(s, 7, (int)t->source);
    sqlite3_bind_int64(s, 8, t->amount_cents);
    sqlite3_bind_int64(s, 9, t->remaining_cents);
    sqlite3_bind_int(s, 10, t->priority);
    sqlite3_bind_int(s, 11, t->paid);
    bind_instant(s, 12, t->has_expiration_at, t->expiration_at);
    bind_text(s, 13, t->name);
    bind_text(s, 14, t->details_json);
    bind_instant(s, 15, t->has_settled_at, t->settled_at);
    bind_instant(s, 16, t->has_failed_at, t->failed_at);
    sqlite3_bind_int64(s, 17, t->created_at);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    t->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_wallet_transaction_set_remaining(struct store *st, int64_t id,
                                                         int64_t remaining_cents)
{
    return store_exec_with_ints(st, STMT_WT_SET_REMAINING, id, remaining_cents);
}

enum store_status store_wallet_transaction_get(struct store_conn *c, int64_t org_id,
                                               const char *lago_id,
                                               struct store_wallet_transaction *out,
                                               struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_WT_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, lago_id);
    return read_one(s, read_wallet_transaction_row, out, a);
}

enum store_status store_wallet_transaction_by_id(struct store_conn *c, int64_t id,
                                                 struct store_wallet_transaction *out,
                                                 struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_WT_BY_ID);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return read_one(s, read_wallet_transaction_row, out, a);
}

enum store_status store_wallet_live_grants(struct store_conn *c, int64_t wallet_id,
                                           bool (*fn)(const struct store_wallet_transaction *t,
                                                      void *ctx),
                                           void *ctx, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_WT_LIVE_GRANTS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    int rc;
    enum store_status r = STORE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_wallet_transaction t;
        if (!read_wallet_transaction(s, 0, &t, a) || !fn(&t, ctx)) {
            r = STORE_ERROR;
            break;
        }
    }
    if (r == STORE_OK && rc != SQLITE_DONE)
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}

enum store_status store_wallet_transaction_list(struct store_conn *c, int64_t wallet_id,
                                                const struct store_wallet_transaction_filter *f,
                                                int64_t offset, int64_t limit,
                                                struct store_wallet_transaction **out,
                                                size_t *count, int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = wallet_id},
                                        {.value = (int64_t)f->state_mask},
                                        {.value = (int64_t)f->type_mask},
                                        {.value = (int64_t)f->status_mask},
                                        {.is_text = true, .text = f->metadata_json}};
    const struct page_query q = {
        STMT_WT_COUNT, STMT_WT_PAGE, params, 5, sizeof **out, read_wallet_transaction_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

enum store_status store_wallet_consumption_insert(struct store *st, int64_t org_id,
                                                  const char *lago_id, int64_t inbound_id,
                                                  int64_t outbound_id, int64_t amount_cents,
                                                  tally_time at)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_CONSUMPTION_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, lago_id);
    sqlite3_bind_int64(s, 3, inbound_id);
    sqlite3_bind_int64(s, 4, outbound_id);
    sqlite3_bind_int64(s, 5, amount_cents);
    sqlite3_bind_int64(s, 6, at);
    return step_done(s);
}

static bool read_consumption_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    struct store_wallet_consumption *k = item;
    k->id = sqlite3_column_int64(s, 0);
    column_lago_id(s, 1, k->lago_id);
    k->amount_cents = sqlite3_column_int64(s, 2);
    k->created_at = sqlite3_column_int64(s, 3);
    return read_wallet_transaction(s, 4, &k->other, a);
}

enum store_status store_wallet_consumption_list(struct store_conn *c, int64_t transaction_id,
                                                bool of_inbound, int64_t offset, int64_t limit,
                                                struct store_wallet_consumption **out,
                                                size_t *count, int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = transaction_id}};
    const struct page_query q = {
        of_inbound ? STMT_CONSUMPTION_COUNT_BY_INBOUND : STMT_CONSUMPTION_COUNT_BY_OUTBOUND,
        of_inbound ? STMT_CONSUMPTION_PAGE_BY_INBOUND : STMT_CONSUMPTION_PAGE_BY_OUTBOUND,
        params,
        1,
        sizeof **out,
        read_consumption_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

/* ---- the ledger ----------------------------------------------------------------------------- */

enum store_status store_ledger_post(struct store *st, const struct store_posting_ref *ref,
                                    const struct ledger_posting *p,
                                    const int64_t balance_after[LEDGER_LINES_MAX])
{
    if (!ledger_posting_balanced(p))
        return STORE_ERROR; /* never written: the engine asserts this before */
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_POSTING_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, ref->org_id);
    sqlite3_bind_int64(s, 2, ref->customer_id);
    sqlite3_bind_int64(s, 3, ref->wallet_id);
    bind_text(s, 4, ref->currency);
    sqlite3_bind_int(s, 5, (int)p->cause);
    sqlite3_bind_int64(s, 6, ref->wallet_transaction_id);
    sqlite3_bind_int64(s, 7, ref->at);
    sqlite3_bind_int64(s, 8, ref->authorization_id);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    int64_t posting_id = sqlite3_last_insert_rowid(st->conn.db);
    for (size_t i = 0; i < p->count; i++) {
        const struct ledger_line *l = &p->lines[i];
        bool wallet = ledger_account_is_wallet(l->account);
        if (!(s = store_stmt(&st->conn, STMT_ENTRY_INSERT)))
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, posting_id);
        sqlite3_bind_int64(s, 2, ref->org_id);
        sqlite3_bind_int64(s, 3, ref->customer_id);
        sqlite3_bind_int(s, 4, (int)l->account);
        sqlite3_bind_int64(s, 5, wallet ? ref->wallet_id : 0);
        bind_text(s, 6, ref->currency);
        sqlite3_bind_int64(s, 7, l->amount_cents);
        sqlite3_bind_int64(s, 8, ref->at);
        sqlite3_bind_int64(s, 9, balance_after[i]);
        if (step_done(s) != STORE_OK)
            return STORE_ERROR;
    }
    return STORE_OK;
}

enum store_status store_ledger_balance_put(struct store *st, int64_t org_id, const char *currency,
                                           enum ledger_account account, int64_t balance)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_ORG_BALANCE_PUT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, currency);
    sqlite3_bind_int(s, 3, (int)account);
    sqlite3_bind_int64(s, 4, balance);
    return step_done(s);
}

enum store_status store_ledger_wallet_balance(struct store_conn *c, int64_t wallet_id,
                                              enum ledger_account account, int64_t *balance)
{
    sqlite3_stmt *s = store_stmt(c, STMT_WALLET_ACCOUNT_BALANCE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    sqlite3_bind_int(s, 2, (int)account);
    enum store_status r = read_number(s, balance);
    return r == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

enum store_status store_wallet_transaction_add_amount(struct store *st, int64_t id, int64_t cents,
                                                      bool *found)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WT_ADD_AMOUNT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, cents);
    enum store_status r = step_done(s);
    *found = r == STORE_OK && sqlite3_changes(st->conn.db) == 1;
    return r;
}

enum store_status store_wallet_transaction_add_owed(struct store *st, int64_t id, int64_t cents)
{
    return store_exec_with_ints(st, STMT_WT_ADD_OWED, id, cents);
}

enum store_status store_wallet_oldest_owed(struct store *st, int64_t wallet_id, int64_t *id,
                                           int64_t *cents)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WT_OWED_OLDEST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    enum store_status r = step_one(s);
    *id = r == STORE_OK ? sqlite3_column_int64(s, 0) : 0;
    *cents = r == STORE_OK ? sqlite3_column_int64(s, 1) : 0;
    sqlite3_reset(s);
    return r;
}

enum store_status store_ledger_balance(struct store_conn *c, int64_t org_id, const char *currency,
                                       enum ledger_account account, int64_t *balance)
{
    sqlite3_stmt *s = store_stmt(c, STMT_ACCOUNT_BALANCE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, currency);
    sqlite3_bind_int(s, 3, (int)account);
    enum store_status r = read_number(s, balance);
    return r == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

static bool read_entry_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    struct store_ledger_entry *e = item;
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(s, 0);
    e->posting_id = sqlite3_column_int64(s, 1);
    int cause = sqlite3_column_int(s, 2), account = sqlite3_column_int(s, 3);
    if (cause < 0 || cause >= LEDGER_CAUSE_COUNT || account < 0 || account >= LEDGER_ACCOUNT_COUNT)
        return false;
    e->cause = (enum ledger_cause)cause;
    e->account = (enum ledger_account)account;
    e->amount_cents = sqlite3_column_int64(s, 4);
    e->balance_after_cents = sqlite3_column_int64(s, 5);
    snprintf(e->currency, sizeof e->currency, "%s", (const char *)sqlite3_column_text(s, 6));
    e->created_at = sqlite3_column_int64(s, 7);
    e->wallet_lago_id = ledger_account_is_wallet(e->account) ? column_text(s, 8, a) : NULL;
    e->external_customer_id = column_text(s, 9, a);
    e->wallet_transaction_lago_id = column_text(s, 10, a);
    e->authorization_lago_id = column_text(s, 11, a);
    return e->external_customer_id != NULL;
}

enum store_status store_ledger_list(struct store_conn *c, int64_t org_id,
                                    const struct store_ledger_filter *f, int64_t offset,
                                    int64_t limit, struct store_ledger_entry **out, size_t *count,
                                    int64_t *total, struct arena *a)
{
    /* A wallet is narrower than its customer: its filter wins when both are given (the API
     * passes wallet -1, which matches nothing, when they disagree). */
    bool by_customer = !f->wallet_id && f->external_customer_id;
    const struct page_param params[] = {
        {.value = org_id},
        {.value = f->wallet_id, .is_text = by_customer, .text = f->external_customer_id},
        {.value = f->from, .is_text = !f->has_from, .text = NULL}, /* NULL: no bound */
        {.value = f->to, .is_text = !f->has_to, .text = NULL},
        {.value = f->account_mask},
        {.value = f->cause_mask},
    };
    const struct page_query q = {f->wallet_id  ? STMT_ENTRY_COUNT_BY_WALLET
                                 : by_customer ? STMT_ENTRY_COUNT_BY_CUSTOMER
                                               : STMT_ENTRY_COUNT,
                                 f->wallet_id  ? STMT_ENTRY_PAGE_BY_WALLET
                                 : by_customer ? STMT_ENTRY_PAGE_BY_CUSTOMER
                                               : STMT_ENTRY_PAGE,
                                 params,
                                 (int)(sizeof params / sizeof params[0]),
                                 sizeof **out,
                                 read_entry_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

/* ---- charge debits ----------------------------------------------------------------------------
 */

enum store_status store_charge_debit_put(struct store *st, const struct store_charge_debit *d)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_CHARGE_DEBIT_PUT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, d->subscription_id);
    bind_text(s, 2, d->charge_lago_id);
    sqlite3_bind_int64(s, 3, d->period_from);
    sqlite3_bind_int64(s, 4, d->org_id);
    sqlite3_bind_int64(s, 5, d->customer_id);
    sqlite3_bind_int64(s, 6, d->charged_cents);
    bind_text(s, 7, d->fundings);
    sqlite3_bind_int64(s, 8, d->posted_tax_cents);
    sqlite3_bind_int64(s, 9, d->opened_event_id);
    sqlite3_bind_int64(s, 10, d->opened_cents);
    sqlite3_bind_int64(s, 11, d->seq);
    return step_done(s);
}

enum store_status store_charge_debit_drop(struct store *st, int64_t subscription_id,
                                          const char *charge_lago_id, tally_time period_from)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_CHARGE_DEBIT_DROP);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, subscription_id);
    bind_text(s, 2, charge_lago_id);
    sqlite3_bind_int64(s, 3, period_from);
    return step_done(s);
}

enum store_status store_debited_subscriptions(struct store_conn *c, int64_t org_id,
                                              int64_t customer_id, tally_time now,
                                              bool (*fn)(int64_t subscription_id, void *ctx),
                                              void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_DEBITED_SUBSCRIPTIONS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, customer_id);
    int rc;
    enum store_status r = STORE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (!fn(sqlite3_column_int64(s, 0), ctx)) {
            r = STORE_ERROR;
            break;
        }
    if (r == STORE_OK && rc != SQLITE_DONE)
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}

enum store_status
store_charge_debits_of_customer(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                bool (*fn)(const struct store_charge_debit *d, void *ctx),
                                void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_CHARGE_DEBITS_OF_CUSTOMER);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, customer_id);
    int rc;
    enum store_status r = STORE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_charge_debit d = {
            .subscription_id = sqlite3_column_int64(s, 0),
            .charge_lago_id = (const char *)sqlite3_column_text(s, 1),
            .period_from = sqlite3_column_int64(s, 2),
            .org_id = org_id,
            .customer_id = customer_id,
            .charged_cents = sqlite3_column_int64(s, 3),
            .fundings = (const char *)sqlite3_column_text(s, 4),
            .posted_tax_cents = sqlite3_column_int64(s, 5),
            .opened_event_id = sqlite3_column_int64(s, 6),
            .opened_cents = sqlite3_column_int64(s, 7),
            .seq = sqlite3_column_int64(s, 8),
        };
        if (!d.charge_lago_id || !d.fundings || !fn(&d, ctx)) {
            r = STORE_ERROR;
            break;
        }
    }
    if (r == STORE_OK && rc != SQLITE_DONE)
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}

/* One number a statement reads of a wallet (?1), 0 when it reads none. */
static enum store_status wallet_number(struct store_conn *c, enum stmt_id id, int64_t wallet_id,
                                       int64_t *out)
{
    sqlite3_stmt *s = store_stmt(c, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    enum store_status r = read_number(s, out);
    return r == STORE_OK ? STORE_OK : STORE_ERROR;
}

enum store_status store_wallet_pending_cents(struct store_conn *c, int64_t wallet_id,
                                             int64_t *cents)
{
    return wallet_number(c, STMT_WT_PENDING, wallet_id, cents);
}

enum store_status store_wallet_last_declined(struct store_conn *c, int64_t wallet_id,
                                             tally_time *at)
{
    return wallet_number(c, STMT_WT_LAST_DECLINED, wallet_id, at);
}

enum store_status store_wallet_owed_total(struct store_conn *c, int64_t wallet_id, int64_t *cents)
{
    return wallet_number(c, STMT_WT_OWED_TOTAL, wallet_id, cents);
}

enum store_status store_wallet_transaction_set_expiration(struct store *st, int64_t id, bool has,
                                                          tally_time expiration_at)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WT_SET_EXPIRATION);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    bind_instant(s, 2, has, expiration_at);
    return step_done(s);
}

enum store_status store_wallet_expiry_moved(struct store *st, int64_t wallet_id, bool had,
                                            tally_time was, bool has, tally_time is)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WALLET_EXPIRY_MOVED);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    bind_instant(s, 2, had, was);
    bind_instant(s, 3, has, is);
    return step_done(s);
}

enum store_status store_wallet_transaction_set_invoice(struct store *st, int64_t id,
                                                       const char *invoice_lago_id)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WT_SET_INVOICE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, invoice_lago_id);
    return step_done(s);
}

enum store_status store_wallet_transaction_set_state(struct store *st,
                                                     const struct store_wallet_transaction *t)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WT_SET_STATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, t->id);
    sqlite3_bind_int(s, 2, (int)t->state);
    sqlite3_bind_int64(s, 3, t->remaining_cents);
    bind_instant(s, 4, t->has_settled_at, t->settled_at);
    bind_instant(s, 5, t->has_failed_at, t->failed_at);
    return step_done(s);
}

enum store_status store_wallet_save_balances(struct store *st, const struct store_wallet *w)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_WALLET_BALANCES);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, w->id);
    sqlite3_bind_int64(s, 2, w->balance_cents);
    sqlite3_bind_int64(s, 3, w->consumed_cents);
    sqlite3_bind_int64(s, 4, w->overdrawn_cents);
    sqlite3_bind_int64(s, 5, w->held_cents);
    bind_instant(s, 6, w->has_last_consumed_at, w->last_consumed_at);
    sqlite3_bind_int64(s, 7, w->updated_at);
    return step_done(s);
}

/* ---- the wallet journal --------------------------------------------------------------------- */

enum store_status store_wallet_journal_append(struct store *st, const void *data, size_t len,
                                              int64_t *id)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_JOURNAL_APPEND);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_blob64(s, 1, data, len, SQLITE_STATIC);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    *id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_wallet_journal_drop_before(struct store *st, int64_t id)
{
    return store_exec_with_int(st, STMT_JOURNAL_DROP_BEFORE, id);
}

enum store_status store_wallet_journal_clear(struct store *st)
{
    return store_exec_stmt(&st->conn, STMT_JOURNAL_CLEAR);
}

enum store_status store_wallet_journal_count(struct store_conn *c, int64_t *count)
{
    sqlite3_stmt *s = store_stmt(c, STMT_JOURNAL_COUNT);
    if (!s)
        return STORE_ERROR;
    enum store_status r = STORE_ERROR;
    if (sqlite3_step(s) == SQLITE_ROW) {
        *count = sqlite3_column_int64(s, 0);
        r = STORE_OK;
    }
    sqlite3_reset(s);
    return r;
}

enum store_status store_wallet_journal_each(struct store_conn *c,
                                            bool (*fn)(const void *data, size_t len, void *ctx),
                                            void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_JOURNAL_NEWEST_FIRST);
    if (!s)
        return STORE_ERROR;
    enum store_status r = STORE_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(s, 0);
        size_t len = (size_t)sqlite3_column_bytes(s, 0);
        if (!fn(data, len, ctx)) {
            r = STORE_ERROR;
            break;
        }
    }
    if (r == STORE_OK && rc != SQLITE_DONE)
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}
