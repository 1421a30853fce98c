/*
 * store/store_internal.h: what the files of store/ share and nothing outside store/ sees.
 * Only the files of store/ include this; everything else goes through store.h.
 *
 * store.c was split by concern (schema.c, restore.c, events.c, customers.c, wallets.c, ...),
 * one file per family of tables, over what is here: the connection and its cache of prepared
 * statements, the enum that names every statement (its SQL is the one table in store.c, which
 * store_check_query_plans walks whole), and the small helpers that bind parameters and read
 * columns. The helpers are static inline so that each file keeps its own copy, as when they
 * were static in one file; the functions declared at the end are defined once, in the file
 * named beside them.
 */
#ifndef TALLY_STORE_STORE_INTERNAL_H
#define TALLY_STORE_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store/event_block.h"
#include "store/store.h"
#include "util/buf.h"

/* Every statement, by name: its SQL is sql[id] in store.c, its prepared copy stmts[id] of each
 * connection (store_stmt). */
enum stmt_id {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_ORG_INSERT,
    STMT_ORG_EACH,
    STMT_ORG_BY_KEY,
    STMT_ORG_GET,
    STMT_ORG_SET_CLOCK,
    STMT_ORG_SET_REMINDERS,
    STMT_ORG_SET_KEY,
    STMT_IDEM_GET,
    STMT_IDEM_PUT,
    STMT_CUSTOMER_GET,
    STMT_CUSTOMER_BY_ID,
    STMT_CUSTOMER_EXTERNAL_ID_KNOWN,
    STMT_CUSTOMER_INSERT,
    STMT_CUSTOMER_UPDATE,
    STMT_CUSTOMER_DELETE,
    STMT_CUSTOMER_COUNT,
    STMT_CUSTOMER_PAGE,
    STMT_CATALOG_GET,
    STMT_CATALOG_GET_BY_LAGO_ID,
    STMT_CATALOG_GET_ANY_BY_LAGO_ID,
    STMT_CATALOG_INSERT,
    STMT_CATALOG_UPDATE,
    STMT_CATALOG_DELETE,
    STMT_CATALOG_COUNT,
    STMT_CATALOG_PAGE,
    STMT_CATALOG_PAGE_BY_NAME,
    STMT_SUBSCRIPTION_INSERT,
    STMT_SUBSCRIPTION_UPDATE,
    STMT_SUBSCRIPTION_GET,
    STMT_SUBSCRIPTION_BY_EXTERNAL_ID,
    STMT_SUBSCRIPTION_COUNT,
    STMT_SUBSCRIPTION_PAGE,
    STMT_SUBSCRIPTION_LISTED,
    STMT_SUBSCRIPTION_CUSTOMER_LIVE,
    STMT_PLAN_LIVE_SUBSCRIPTIONS,
    STMT_PLAN_LIVE_SUBSCRIPTION_ROWS,
    STMT_PLAN_ATTACHED,
    STMT_PLAN_SCHEDULED_CHANGES,
    STMT_METRIC_IN_PLANS,
    STMT_TAX_UNTAXED_CUSTOMERS,
    STMT_TAX_IN_CUSTOMERS,
    STMT_TAX_IN_ADD_ONS,
    STMT_TAX_IN_PLANS,
    STMT_TAX_IN_OWN_PLANS,
    STMT_SUBSCRIPTION_AT,
    STMT_SUBSCRIPTION_ENDED_AT,
    STMT_SUBSCRIPTION_INITIAL_START,
    STMT_SUBSCRIPTION_OWN_PLANS,
    STMT_CUSTOMER_TAXED,
    STMT_CUSTOMER_SET_TAX_CODES,
    STMT_SUBSCRIPTION_SET_PLAN_BODY,
    STMT_SETTING_GET,
    STMT_SETTING_PUT,
    STMT_EVENT_BLOCK_INSERT,
    STMT_EVENT_LAST_ID,
    STMT_EVENT_IDENTITIES,
    STMT_EVENT_BLOCK_OF,
    STMT_EVENT_ORG_SUMMARIES,
    STMT_EVENT_BLOCK_DATA,
    STMT_EVENT_SUMMARY_INSERT,
    STMT_EVENT_LAGO_IDS,
    STMT_EVENT_COUNT,
    STMT_EVENT_COUNT_ADD,
    STMT_RECURRING_EVENT_INSERT,
    STMT_RECURRING_EVENT_IDS,
    STMT_RECURRING_LATE_COUNT,
    STMT_METRIC_FLOOR_RAISE,
    STMT_METRIC_FLOOR_GET,
    STMT_METRIC_FLOOR_DELETED,
    STMT_METRIC_FLOOR_HIDE,
    STMT_EVENT_HIDDEN,
    STMT_EVENT_CODE_SUMMARIES,
    STMT_APPLIED_COUPON_INSERT,
    STMT_APPLIED_COUPON_TERMINATE,
    STMT_APPLIED_COUPON_GET,
    STMT_APPLIED_COUPON_USES,
    STMT_COUPON_IN_USE,
    STMT_APPLIED_COUPON_COUNT,
    STMT_APPLIED_COUPON_PAGE,
    STMT_APPLIED_COUPONS_END_OF_COUPON,
    STMT_WALLET_INSERT,
    STMT_WALLET_UPDATE,
    STMT_WALLET_BALANCES,
    STMT_WALLET_GET,
    STMT_WALLET_BY_ID,
    STMT_WALLETS_OF_CUSTOMER,
    STMT_WALLETS_NAMING,
    STMT_WALLET_SET_TERMS,
    STMT_WALLET_COUNT,
    STMT_WALLET_PAGE,
    STMT_WT_INSERT,
    STMT_WT_SET_REMAINING,
    STMT_WT_SET_STATE,
    STMT_WT_GET,
    STMT_WT_BY_ID,
    STMT_WT_LIVE_GRANTS,
    STMT_WT_COUNT,
    STMT_WT_PAGE,
    STMT_CONSUMPTION_INSERT,
    STMT_CONSUMPTION_COUNT_BY_INBOUND,
    STMT_CONSUMPTION_PAGE_BY_INBOUND,
    STMT_CONSUMPTION_COUNT_BY_OUTBOUND,
    STMT_CONSUMPTION_PAGE_BY_OUTBOUND,
    STMT_POSTING_INSERT,
    STMT_ENTRY_INSERT,
    STMT_ENTRY_COUNT,
    STMT_ENTRY_PAGE,
    STMT_ENTRY_COUNT_BY_CUSTOMER,
    STMT_ENTRY_PAGE_BY_CUSTOMER,
    STMT_ENTRY_COUNT_BY_WALLET,
    STMT_ENTRY_PAGE_BY_WALLET,
    STMT_ACCOUNT_BALANCE,
    STMT_ORG_BALANCE_PUT,
    STMT_WALLET_ACCOUNT_BALANCE,
    STMT_WT_ADD_AMOUNT,
    STMT_WT_ADD_OWED,
    STMT_WT_OWED_OLDEST,
    STMT_WT_OWED_TOTAL,
    STMT_WT_LAST_DECLINED,
    STMT_WT_PENDING,
    STMT_WT_SET_EXPIRATION,
    STMT_WALLET_EXPIRY_MOVED,
    STMT_RULES_DUE,
    STMT_REMINDERS_DUE,
    STMT_WT_SET_REMINDED,
    STMT_OUTBOX_INSERT,
    STMT_OUTBOX_COUNT,
    STMT_OUTBOX_PAGE,
    STMT_WT_SET_INVOICE,
    STMT_INVOICE_INSERT,
    STMT_INVOICE_UPDATE,
    STMT_INVOICE_GET,
    STMT_INVOICE_NEXT_SEQUENCE,
    STMT_INVOICE_COUNT,
    STMT_INVOICE_PAGE,
    STMT_CHARGE_DEBIT_PUT,
    STMT_CHARGE_DEBIT_DROP,
    STMT_CHARGE_DEBITS_OF_CUSTOMER,
    STMT_DEBITED_SUBSCRIPTIONS,
    STMT_AUTH_INSERT,
    STMT_AUTH_UPDATE,
    STMT_AUTH_GET,
    STMT_AUTH_OPEN_COUNT,
    STMT_AUTH_OPEN_PAGE,
    STMT_AUTH_HOLD_PUT,
    STMT_AUTH_HOLDS,
    STMT_AUTH_HOLDS_CLEAR,
    STMT_HOLDS_AT_ROLLOVER,
    STMT_WALLET_HELD_GRANTS,
    STMT_GRANT_HOLDS_ADD,
    STMT_GRANT_HOLDS_DROP_EMPTY,
    STMT_AUTH_OPEN_IN_WALLET,
    STMT_AUTH_OPEN_OF_SUBSCRIPTION,
    STMT_AUTH_OPEN_OF_CODE,
    STMT_AUTH_REBOUND,
    STMT_AUTH_DUE,
    STMT_GRANTS_DUE,
    STMT_WALLETS_DUE,
    STMT_PERIODS_DUE,
    STMT_PERIOD_SETTLEMENT_SET,
    STMT_PERIOD_SETTLEMENT_DROP,
    STMT_PERIOD_SETTLEMENT_DROP_DUE,
    STMT_PERIOD_SETTLEMENT_MOVE,
    STMT_JOURNAL_APPEND,
    STMT_JOURNAL_CLEAR,
    STMT_JOURNAL_DROP_BEFORE,
    STMT_JOURNAL_COUNT,
    STMT_JOURNAL_NEWEST_FIRST,
    STMT_COUNT
};

/* A block's summary (event_block_summarize), bound ?1 org, ?2 first id, ?3 count, ?4..?8. */
#define EVENT_SUMMARY_INSERT                                                                       \
    "INSERT INTO event_block_summaries(org_id, first_id, count, ts_min, ts_max, sub, code, bloom)" \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"

/* The `what` of a row of a tax usage statement: its SQL writes these numbers. */
enum tax_use {
    TAX_USE_CUSTOMER = 0,
    TAX_USE_ADD_ON = 1,
    TAX_USE_PLAN = 2,
    TAX_USE_CHARGE = 3,
    TAX_USE_COMMITMENT = 4
};

struct store_conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT_COUNT];
};

struct store {
    struct store_conn conn;
    int wal_fd; /* the log, for store_sync: -1 until store_defer_sync */
    char data_dir[STORE_PATH_MAX];
    struct buf block;  /* the event block being inserted (memory kept between inserts) */
    int found_version; /* the schema the database had when opened: 0 for a new one */
};

/* Runs a bound statement that returns no rows, and resets it. */
static inline enum store_status step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static inline const char *column_text(sqlite3_stmt *s, int col, struct arena *a)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(s, col);
    return arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(s, col));
}

static inline void bind_text(sqlite3_stmt *s, int idx, const char *text)
{
    if (text)
        sqlite3_bind_text(s, idx, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, idx);
}

static inline void bind_optional_int(sqlite3_stmt *s, int idx, int32_t v)
{
    if (v == CUSTOMER_INT_NULL)
        sqlite3_bind_null(s, idx);
    else
        sqlite3_bind_int(s, idx, v);
}

/* Steps a statement expected to return at most one row. */
static inline enum store_status step_one(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : STORE_ERROR;
}

/* The integer in the first column of the one row a bound statement yields, into *out (0 when
 * it yields none); step_one's status. Resets the statement. */
static inline enum store_status read_number(sqlite3_stmt *s, int64_t *out)
{
    enum store_status r = step_one(s);
    *out = r == STORE_OK ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return r;
}

/* Reads one row into an item of a list or a lookup; false if the row is malformed. */
typedef bool row_reader(sqlite3_stmt *s, void *item, struct arena *a);

/* The one row a lookup's bound statement yields, read into `out` (strings in `a`);
 * STORE_NOT_FOUND when there is none. Resets the statement. */
static inline enum store_status read_one(sqlite3_stmt *s, row_reader *read, void *out,
                                         struct arena *a)
{
    enum store_status r = step_one(s);
    if (r == STORE_OK && !read(s, out, a))
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}

/*
 * A list query is two statements over the same filter: COUNT(*) with parameters ?1..?n, and
 * the page with the same parameters then LIMIT ?n+1 OFFSET ?n+2. Rows become items of
 * item_size bytes through `read`.
 */
/* A filter parameter: an integer, or text when `text` is set (NULL text binds NULL). */
struct page_param {
    int64_t value;
    bool is_text;
    const char *text;
};

struct page_query {
    enum stmt_id count_stmt, page_stmt;
    const struct page_param *params;
    int param_count;
    size_t item_size;
    row_reader *read;
};

static inline bool column_instant(sqlite3_stmt *s, int col, tally_time *out)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return false;
    *out = sqlite3_column_int64(s, col);
    return true;
}

/* The customers a sweep passes over (the *_DUE statements' parameter): the JSON array text, or
 * NULL (none). */
static inline void bind_skipped(sqlite3_stmt *s, int idx, const char *skip_customers)
{
    if (skip_customers)
        sqlite3_bind_text(s, idx, skip_customers, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, idx);
}

static inline void bind_instant(sqlite3_stmt *s, int idx, bool has, tally_time t)
{
    if (has)
        sqlite3_bind_int64(s, idx, t);
    else
        sqlite3_bind_null(s, idx);
}

static inline bool column_money(sqlite3_stmt *s, int col, money_t *out)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t && money_parse(t, (size_t)sqlite3_column_bytes(s, col), out) == MONEY_OK;
}

static inline void column_lago_id(sqlite3_stmt *s, int col, char out[UUID_TEXT])
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    snprintf(out, UUID_TEXT, "%s", t ? t : "");
}

/* Every customer SELECT reads CUSTOMER_COLUMNS (store.c); read_customer checks it read
 * them all. */
/* 5 fixed + 22 text + 9 tail = 36 columns; the text columns follow customer_text_fields, the
 * documents customer_doc_names. */
#define CUSTOMER_COLUMN_COUNT 36

/* ---- defined in store.c ---------------------------------------------------------------------- */

/* Sets SQLite's log callback, once per process (pthread_once(&store_watch_once, ...)), before
 * SQLite initialises: every opening of a database runs it first. */
extern pthread_once_t store_watch_once;
void store_watch_errors(void);

/* "WHAT: DETAIL" into err, cut to STORE_ERR_MAX. */
void store_set_err(char err[STORE_ERR_MAX], const char *what, const char *detail);
/* DATA_DIR/FILE, refused when longer than STORE_PATH_MAX. */
bool store_data_path(char out[STORE_PATH_MAX], const char *data_dir, const char *file,
                     char err[STORE_ERR_MAX]);
/* The statement, reset and with its bindings cleared; NULL if it cannot prepare. */
sqlite3_stmt *store_stmt(struct store_conn *c, enum stmt_id id);
/* Runs a statement without parameters that returns no rows. */
enum store_status store_exec_stmt(struct store_conn *c, enum stmt_id id);
/* The database's file name, for messages. */
const char *store_db_name(sqlite3 *db);
/* Runs a script of SQL; false with the reason in err. */
bool store_exec_script(sqlite3 *db, const char *script, char err[STORE_ERR_MAX]);
/* Runs a write whose one parameter is `value`. */
enum store_status store_exec_with_int(struct store *st, enum stmt_id id, int64_t value);
/* Runs a write whose two parameters are ?1 (a row) and ?2 (an instant or an amount). */
enum store_status store_exec_with_ints(struct store *st, enum stmt_id id, int64_t row,
                                       int64_t value);
/* A page of a list (see struct page_query) and the total the filter finds. */
enum store_status store_page_of(struct store_conn *c, const struct page_query *q, int64_t offset,
                                int64_t limit, void **out, size_t *count, int64_t *total,
                                struct arena *a);
/* Every row of a bound statement, read into an array grown in the arena. */
enum store_status store_collect_rows(sqlite3_stmt *s, size_t size, row_reader *read, void **out,
                                     size_t *count, struct arena *a);

/* ---- defined in schema.c --------------------------------------------------------------------- */

/* PRAGMA user_version, -1 when it cannot be read. */
int store_read_user_version(sqlite3 *db);
/* Brings the schema up to date (or refuses, see schema.c); found: the version it had. */
bool store_migrate(sqlite3 *db, bool may_upgrade, int *found, char err[STORE_ERR_MAX]);

/* ---- defined in events.c --------------------------------------------------------------------- */

/* Inserts the summary of `count` events (one block's) with s (EVENT_SUMMARY_INSERT). */
bool store_insert_summary(sqlite3_stmt *s, const struct store_event *events, size_t count);
/* Opens the block in the current row of s (first_id, org_id, data). */
bool store_open_block(sqlite3_stmt *s, struct event_block_reader *r);

#endif
