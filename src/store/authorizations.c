/*
 * store/authorizations.c: holds (authorizations, the parts of grants they reserve, and the
 * totals held per grant), what the real clock's sweep finds due (store_due: expired holds and
 * grants, ended wallets, periods to settle, recurring rules), and period settlements.
 *
 * Shape: store_due is here because its first and most frequent kind is expired holds, and the
 * other kinds are read with the same row shape and the same skipped customers. Their SQL is in
 * store.c's table.
 */
#include "store/store_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- authorizations (holds) --------------------------------------------------------------------
 */

static bool read_authorization(sqlite3_stmt *s, struct store_authorization *a, struct arena *ar)
{
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(s, 0);
    a->org_id = sqlite3_column_int64(s, 1);
    column_lago_id(s, 2, a->lago_id);
    a->customer_id = sqlite3_column_int64(s, 3);
    a->subscription_id = sqlite3_column_int64(s, 4);
    a->external_subscription_id = column_text(s, 5, ar);
    a->code = column_text(s, 6, ar);
    a->properties_json = column_text(s, 7, ar);
    int status = sqlite3_column_int(s, 8);
    if (status < AUTHORIZATION_DECLINED || status > AUTHORIZATION_EXPIRED)
        return false;
    a->status = (enum authorization_status)status;
    a->amount_cents = sqlite3_column_int64(s, 9);
    a->held_cents = sqlite3_column_int64(s, 10);
    a->has_captured_cents = sqlite3_column_type(s, 11) != SQLITE_NULL;
    a->captured_cents = sqlite3_column_int64(s, 11);
    snprintf(a->currency, sizeof a->currency, "%s", (const char *)sqlite3_column_text(s, 12));
    a->expires_at = sqlite3_column_int64(s, 13);
    a->transaction_id = column_text(s, 14, ar);
    a->created_at = sqlite3_column_int64(s, 15);
    a->updated_at = sqlite3_column_int64(s, 16);
    a->external_customer_id = column_text(s, 17, ar);
    a->payer_wallet_id = sqlite3_column_int64(s, 18); /* NULL reads as 0 */
    a->precise_total_amount_cents = column_text(s, 19, ar);
    return a->external_subscription_id && a->code && a->properties_json && a->external_customer_id;
}

static bool read_authorization_row(sqlite3_stmt *s, void *item, struct arena *a)
{
    return read_authorization(s, item, a);
}

enum store_status store_authorization_save(struct store *st, struct store_authorization *a)
{
    bool insert = a->id == 0;
    sqlite3_stmt *s = store_stmt(&st->conn, insert ? STMT_AUTH_INSERT : STMT_AUTH_UPDATE);
    if (!s)
        return STORE_ERROR;
    if (!insert)
        sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int64(s, 2, a->org_id);
    bind_text(s, 3, a->lago_id);
    sqlite3_bind_int64(s, 4, a->customer_id);
    sqlite3_bind_int64(s, 5, a->subscription_id);
    bind_text(s, 6, a->external_subscription_id);
    bind_text(s, 7, a->code);
    bind_text(s, 8, a->properties_json);
    sqlite3_bind_int(s, 9, (int)a->status);
    sqlite3_bind_int64(s, 10, a->amount_cents);
    sqlite3_bind_int64(s, 11, a->held_cents);
    if (a->has_captured_cents)
        sqlite3_bind_int64(s, 12, a->captured_cents);
    else
        sqlite3_bind_null(s, 12);
    bind_text(s, 13, a->currency);
    sqlite3_bind_int64(s, 14, a->expires_at);
    bind_text(s, 15, a->transaction_id);
    sqlite3_bind_int64(s, 16, a->created_at);
    sqlite3_bind_int64(s, 17, a->updated_at);
    if (insert && a->payer_wallet_id)
        sqlite3_bind_int64(s, 18, a->payer_wallet_id);
    else if (insert)
        sqlite3_bind_null(s, 18);
    if (insert)
        bind_text(s, 19, a->precise_total_amount_cents);
    if (insert)
        sqlite3_bind_int64(s, 20, a->asked_expires_at ? a->asked_expires_at : a->expires_at);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    if (insert)
        a->id = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

enum store_status store_authorization_get(struct store_conn *c, int64_t org_id, const char *lago_id,
                                          struct store_authorization *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_AUTH_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, lago_id);
    return read_one(s, read_authorization_row, out, a);
}

enum store_status store_authorization_open_list(struct store_conn *c, int64_t org_id,
                                                const char *external_customer_id,
                                                const char *external_subscription_id,
                                                int64_t offset, int64_t limit,
                                                struct store_authorization **out, size_t *count,
                                                int64_t *total, struct arena *a)
{
    const struct page_param params[] = {{.value = org_id},
                                        {.is_text = true, .text = external_customer_id},
                                        {.is_text = true, .text = external_subscription_id}};
    const struct page_query q = {STMT_AUTH_OPEN_COUNT, STMT_AUTH_OPEN_PAGE,   params, 3,
                                 sizeof **out,         read_authorization_row};
    void *items;
    enum store_status r = store_page_of(c, &q, offset, limit, &items, count, total, a);
    *out = items;
    return r;
}

enum store_status store_authorization_hold_put(struct store *st, int64_t authorization_id,
                                               const struct store_hold *part)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_AUTH_HOLD_PUT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, authorization_id);
    sqlite3_bind_int64(s, 2, part->wallet_id);
    sqlite3_bind_int64(s, 3, part->grant_id);
    sqlite3_bind_int64(s, 4, part->cents);
    return step_done(s);
}

enum store_status store_grant_held_add(struct store *st, int64_t wallet_id, int64_t grant_id,
                                       int64_t cents)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_GRANT_HOLDS_ADD);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    sqlite3_bind_int64(s, 2, grant_id);
    sqlite3_bind_int64(s, 3, cents);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    if (cents >= 0)
        return STORE_OK;
    /* a grant no hold reserves any more has no row: the table stays as small as the holds */
    if (!(s = store_stmt(&st->conn, STMT_GRANT_HOLDS_DROP_EMPTY)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    sqlite3_bind_int64(s, 2, grant_id);
    return step_done(s);
}

enum store_status store_wallet_holds_at_rollover(struct store *st, int64_t wallet_id,
                                                 int64_t grant_id, int64_t paid_grant_id)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_HOLDS_AT_ROLLOVER);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, wallet_id);
    sqlite3_bind_int64(s, 2, grant_id);
    sqlite3_bind_int64(s, 3, paid_grant_id);
    return step_done(s);
}

enum store_status store_authorization_holds_clear(struct store *st, int64_t authorization_id)
{
    return store_exec_with_int(st, STMT_AUTH_HOLDS_CLEAR, authorization_id);
}

/* Calls fn for each (wallet, grant, cents) row of hold parts statement `id` finds for `owner`
 * (its ?1), until fn returns false. */
static enum store_status each_hold_part(struct store_conn *c, enum stmt_id id, int64_t owner,
                                        bool (*fn)(const struct store_hold *part, void *ctx),
                                        void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, owner);
    int rc;
    bool go_on = true;
    while (go_on && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_hold part = {.wallet_id = sqlite3_column_int64(s, 0),
                                  .grant_id = sqlite3_column_int64(s, 1),
                                  .cents = sqlite3_column_int64(s, 2),
                                  .at_rollover = sqlite3_column_int(s, 3) != 0};
        go_on = fn(&part, ctx);
    }
    sqlite3_reset(s);
    return !go_on || rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_status store_authorization_holds(struct store_conn *c, int64_t authorization_id,
                                            bool (*fn)(const struct store_hold *part, void *ctx),
                                            void *ctx)
{
    return each_hold_part(c, STMT_AUTH_HOLDS, authorization_id, fn, ctx);
}

enum store_status store_wallet_held_grants(struct store_conn *c, int64_t wallet_id,
                                           bool (*fn)(const struct store_hold *part, void *ctx),
                                           void *ctx)
{
    return each_hold_part(c, STMT_WALLET_HELD_GRANTS, wallet_id, fn, ctx);
}

/* Lago ids of the first `cap` rows statement `id` finds for (org_id, owner_id). */
/* The open holds of an owner: named by its id, or by its code (owner_code not NULL). */
static enum store_status open_holds(struct store_conn *c, enum stmt_id id, int64_t org_id,
                                    int64_t owner_id, const char *owner_code,
                                    char (*lago_ids)[UUID_TEXT], size_t cap, size_t *count)
{
    sqlite3_stmt *s = store_stmt(c, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    if (owner_code)
        bind_text(s, 2, owner_code);
    else
        sqlite3_bind_int64(s, 2, owner_id);
    sqlite3_bind_int64(s, 3, (int64_t)cap);
    *count = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        column_lago_id(s, 0, lago_ids[(*count)++]);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_status store_wallet_open_holds(struct store_conn *c, int64_t org_id, int64_t wallet_id,
                                          char (*lago_ids)[UUID_TEXT], size_t cap, size_t *count)
{
    return open_holds(c, STMT_AUTH_OPEN_IN_WALLET, org_id, wallet_id, NULL, lago_ids, cap, count);
}

enum store_status store_subscription_holds_rebound(struct store *st, int64_t subscription_id,
                                                   bool bounded, tally_time at, tally_time now)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_AUTH_REBOUND);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, subscription_id);
    if (bounded)
        sqlite3_bind_int64(s, 2, at);
    else
        sqlite3_bind_null(s, 2);
    sqlite3_bind_int64(s, 3, now);
    return step_done(s);
}

enum store_status store_subscription_open_holds(struct store_conn *c, int64_t org_id,
                                                int64_t subscription_id,
                                                char (*lago_ids)[UUID_TEXT], size_t cap,
                                                size_t *count)
{
    return open_holds(c, STMT_AUTH_OPEN_OF_SUBSCRIPTION, org_id, subscription_id, NULL, lago_ids,
                      cap, count);
}

enum store_status store_code_open_holds(struct store_conn *c, int64_t org_id, const char *code,
                                        char (*lago_ids)[UUID_TEXT], size_t cap, size_t *count)
{
    return open_holds(c, STMT_AUTH_OPEN_OF_CODE, org_id, 0, code, lago_ids, cap, count);
}

enum store_status store_due(struct store_conn *c, int64_t org_id, enum store_due_kind kind,
                            tally_time now, const char *skip_customers, struct store_due_item *out,
                            size_t cap, size_t *count)
{
    enum stmt_id id = kind == STORE_DUE_HOLDS     ? STMT_AUTH_DUE
                      : kind == STORE_DUE_GRANTS  ? STMT_GRANTS_DUE
                      : kind == STORE_DUE_WALLETS ? STMT_WALLETS_DUE
                      : kind == STORE_DUE_PERIODS ? STMT_PERIODS_DUE
                                                  : STMT_RULES_DUE;
    sqlite3_stmt *s = store_stmt(c, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, (int64_t)cap);
    sqlite3_bind_int64(s, 3, org_id);
    bind_skipped(s, 4, skip_customers);
    *count = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_due_item *d = &out[(*count)++];
        d->org_id = sqlite3_column_int64(s, 0);
        column_lago_id(s, 1, d->lago_id);
        d->grant_id = kind == STORE_DUE_GRANTS ? sqlite3_column_int64(s, 2) : 0;
        d->subscription_id = kind == STORE_DUE_PERIODS ? sqlite3_column_int64(s, 2) : 0;
        d->customer_id = sqlite3_column_int64(s, 3);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_status store_period_settlement_set(struct store *st, int64_t org_id,
                                              int64_t subscription_id, tally_time due_at)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_PERIOD_SETTLEMENT_SET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, subscription_id);
    sqlite3_bind_int64(s, 2, org_id);
    sqlite3_bind_int64(s, 3, due_at);
    return step_done(s);
}

enum store_status store_period_settlement_drop(struct store *st, int64_t subscription_id)
{
    return store_exec_with_int(st, STMT_PERIOD_SETTLEMENT_DROP, subscription_id);
}

enum store_status store_period_settlement_drop_due(struct store *st, int64_t subscription_id,
                                                   tally_time now)
{
    return store_exec_with_ints(st, STMT_PERIOD_SETTLEMENT_DROP_DUE, subscription_id, now);
}

enum store_status store_period_settlement_move(struct store *st, int64_t subscription_id,
                                               tally_time now, tally_time due_at)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_PERIOD_SETTLEMENT_MOVE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, subscription_id);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, due_at);
    return step_done(s);
}
