/*
 * store/store.c: the core of store.h's SQLite implementation: connections and their statement
 * cache, every statement's SQL (the sql[] table below), opening and locking a data directory,
 * the disk's and the file's failures, transactions, the helpers the other files share
 * (store_internal.h), and the small tables: organizations, idempotency answers, settings.
 * Each family of tables has a file of its own beside it (docs/ARCHITECTURE.md lists them);
 * schema.c has the migrations.
 *
 * Shape: each connection keeps its prepared statements (prepared once, on first use, from the
 * sql[] table below), so a query costs a bind and a step. The SQL stays in that one table,
 * indexed by enum stmt_id, rather than beside each family's functions: the cache is one array
 * of STMT_COUNT slots per connection, store_check_query_plans walks every statement at once, and
 * the column lists and filters (CUSTOMER_COLUMNS, WALLET_COLUMNS, ...) are shared by statements
 * of several families (a ledger entry shows its wallet, a subscription its plan). The customer
 * columns are generated from core/customer's field table so that adding a field is one line
 * there and one migration in schema.c.
 */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/event_block.h"
#include "store/store_internal.h"
#include "store/walbuf.h"
#include "util/buf.h"

/* ---- connections and statements --------------------------------------------------------- */

#define ORG_COLUMNS                                                                                \
    "id, name, has_test_clock, test_clock_now, created_at,"                                        \
    " (SELECT COALESCE(MAX(sequential_id), 0) FROM customers c WHERE c.org_id = "                  \
    "organizations.id),"                                                                           \
    " reminder_days"
/* Column order of every customer SELECT; read_customer depends on it. */
#define CUSTOMER_FIXED_COLUMNS "id, org_id, lago_id, sequential_id, external_id"
#define CUSTOMER_TEXT_COLUMNS                                                                      \
    "name, firstname, lastname, email, phone, url, logo_url, legal_name, legal_number,"            \
    " tax_identification_number, address_line1, address_line2, city, state, zipcode, country,"     \
    " currency, timezone, account_type, customer_type, finalize_zero_amount_invoice,"              \
    " external_salesforce_id"
#define CUSTOMER_TAIL_COLUMNS                                                                      \
    "net_payment_term, invoice_grace_period, billing_configuration, shipping_address, metadata,"   \
    " tax_codes, created_at, updated_at, skip_invoice_custom_sections"
#define CUSTOMER_COLUMNS                                                                           \
    CUSTOMER_FIXED_COLUMNS ", " CUSTOMER_TEXT_COLUMNS ", " CUSTOMER_TAIL_COLUMNS

#define CATALOG_COLUMNS "id, org_id, kind, code, lago_id, body, created_at, updated_at"

/* Column order of every subscription SELECT; read_subscription depends on it. The plan code
 * is the plan's as it is now (found by id, deleted or not: a deleted plan keeps the code it
 * had), so that every answer naming a subscription's plan follows a rename; the code copied
 * into the row when the subscription was made is only a fallback. */
#define SUBSCRIPTION_COLUMNS                                                                       \
    "s.id, s.org_id, s.customer_id, s.lago_id, s.external_id, s.name, s.plan_lago_id,"             \
    " COALESCE((SELECT p.code FROM catalog_items p WHERE p.org_id = s.org_id AND p.kind = 3"       \
    " AND p.lago_id = s.plan_lago_id), s.plan_code), s.billing_time, s.subscription_at, "          \
    "s.started_at, s.ending_at,"                                                                   \
    " s.terminated_at, s.canceled_at, s.previous_id, s.next_id, s.created_at, s.updated_at,"       \
    " c.lago_id, c.external_id, c.timezone, s.plan_body, c.tax_codes, s.purchase_order_number"
/* The status of a subscription at ?2 (core/subscription.c says the same in C): 0 pending,
 * 1 active, 2 terminated, 3 canceled. */
#define SUBSCRIPTION_STATUS_AT                                                                     \
    "(CASE WHEN s.canceled_at IS NOT NULL AND s.canceled_at <= ?2 THEN 3"                          \
    " WHEN ?2 < s.started_at THEN 0"                                                               \
    " WHEN MIN(COALESCE(s.terminated_at, 9223372036854775807),"                                    \
    "          COALESCE(s.ending_at, 9223372036854775807)) <= ?2 THEN 2 ELSE 1 END)"
/* A plan code (?5) is matched against the plans as they are now, by id: a renamed plan's
 * subscriptions under its new code, a deleted plan's under the code it had (as Lago joins
 * `subscriptions.plan` with its discarded plans), never the code copied into the row. */
#define SUBSCRIPTION_FILTER                                                                        \
    " FROM subscriptions s JOIN customers c ON c.id = s.customer_id"                               \
    " WHERE s.org_id = ?1 AND (?3 = 0 OR s.customer_id = ?3)"                                      \
    " AND ((1 << " SUBSCRIPTION_STATUS_AT ") & ?4) != 0"                                           \
    " AND (?5 IS NULL OR s.plan_lago_id IN (SELECT p.lago_id FROM catalog_items p"                 \
    "      WHERE p.org_id = ?1 AND p.kind = 3 AND p.code = ?5))"                                   \
    " AND (?6 IS NULL OR s.external_id = ?6)"                                                      \
    " AND (?8 = 0 OR (s.plan_body IS NOT NULL) = (?8 = 2))"                                        \
    " AND (?7 IS NULL OR upper(?7) = COALESCE(json_extract(s.plan_body, '$.amount_currency'),"     \
    "      (SELECT json_extract(p.body, '$.amount_currency') FROM catalog_items p"                 \
    "       WHERE p.org_id = s.org_id AND p.kind = 3 AND p.lago_id = s.plan_lago_id)))"
_Static_assert(CATALOG_PLAN == 3, "SUBSCRIPTION_FILTER names plans as catalog kind 3");
_Static_assert(STORE_PRESENCE_NONE == 1 && STORE_PRESENCE_SOME == 2,
               "SUBSCRIPTION_FILTER reads own_plan as 1 none, 2 some");

/* Column order of every applied coupon SELECT; read_applied_coupon depends on it. The
 * coupon's code, name and expiration_at are its own as they are now (found by id, deleted or
 * not), as Lago's serializer reads them through the coupon, so that they follow a rename or a
 * new expiry; the copies made when it was applied are only a fallback. Its terms stay as
 * applied. */
#define APPLIED_COUPON_COLUMNS                                                                     \
    "a.id, a.org_id, a.customer_id, a.lago_id, a.coupon_lago_id,"                                  \
    " COALESCE(k.code, a.coupon_code), COALESCE(json_extract(k.body, '$.name'), a.coupon_name),"   \
    " a.coupon_type, a.amount_cents, a.amount_cents_remaining, a.amount_currency,"                 \
    " a.percentage_rate, a.frequency, a.frequency_duration, a.frequency_duration_remaining,"       \
    " a.expiration_at, a.terminated_at, a.created_at, c.lago_id, c.external_id,"                   \
    " k.id IS NOT NULL, json_extract(k.body, '$.expiration_at'), k.deleted_at, k.body"
#define APPLIED_COUPON_FROM                                                                        \
    " FROM applied_coupons a JOIN customers c ON c.id = a.customer_id"                             \
    " LEFT JOIN catalog_items k ON k.org_id = a.org_id AND k.kind = 5"                             \
    "      AND k.lago_id = a.coupon_lago_id"
_Static_assert(CATALOG_COUPON == 5, "APPLIED_COUPON_FROM names coupons as catalog kind 5");
/* Lists leave out deleted customers' applications (terminated with them), as Lago's
 * AppliedCouponsQuery, whose base scope joins live customers only; one is still read by id. */
#define APPLIED_COUPON_FILTER                                                                      \
    APPLIED_COUPON_FROM                                                                            \
    " WHERE a.org_id = ?1 AND c.deleted_at IS NULL AND (?2 = 0 OR a.customer_id = ?2)"             \
    " AND (?3 = 0 OR (?3 = 1 AND a.terminated_at IS NULL)"                                         \
    "      OR (?3 = 2 AND a.terminated_at IS NOT NULL))"                                           \
    " AND (?4 IS NULL OR k.code IN (SELECT value FROM json_each(?4)))"

/* No [key, value] pair of ?12 fails: a pair fails when the customer's metadata (a JSON array
 * of {key, value, ...}) has that key with that value (any value, where "" asks for none),
 * exactly when the pair asks for none. */
#define CUSTOMER_METADATA_FILTER                                                                   \
    " AND (?12 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?12) f"                              \
    "      WHERE (json_extract(f.value, '$[1]') = '') = EXISTS (SELECT 1"                          \
    "      FROM json_each(metadata) m"                                                             \
    "      WHERE json_extract(m.value, '$.key') = json_extract(f.value, '$[0]')"                   \
    "      AND (json_extract(f.value, '$[1]') = ''"                                                \
    "           OR json_extract(m.value, '$.value') = json_extract(f.value, '$[1]')))))"
/* Lago's customer list filters (store_customer_filter, in its order): each list a JSON array
 * of values (NULL: any), the search a LIKE pattern over the names, email and external id
 * (NULL: none), the presence filters 0 (any), 1 (none) or 2 (some). A tax id "" is none. */
#define CUSTOMER_FILTER                                                                            \
    " WHERE org_id = ?1 AND deleted_at IS NULL"                                                    \
    " AND (?2 IS NULL OR COALESCE(account_type, 'customer') IN (SELECT value FROM json_each(?2)))" \
    " AND (?3 IS NULL OR country IN (SELECT upper(value) FROM json_each(?3)))"                     \
    " AND (?4 IS NULL OR currency IN (SELECT upper(value) FROM json_each(?4)))"                    \
    " AND (?5 IS NULL OR name LIKE ?5 ESCAPE '\\' OR firstname LIKE ?5 ESCAPE '\\'"                \
    "      OR lastname LIKE ?5 ESCAPE '\\' OR legal_name LIKE ?5 ESCAPE '\\'"                      \
    "      OR email LIKE ?5 ESCAPE '\\' OR external_id LIKE ?5 ESCAPE '\\')"                       \
    " AND (?6 IS NULL OR external_id = ?6)"                                                        \
    " AND (?7 IS NULL OR state IN (SELECT value FROM json_each(?7)))"                              \
    " AND (?8 IS NULL OR zipcode IN (SELECT value FROM json_each(?8)))"                            \
    " AND (?9 = 0 OR (COALESCE(tax_identification_number, '') != '') = (?9 = 2))"                  \
    " AND (?10 IS NULL OR customer_type = ?10)"                                                    \
    " AND (?11 = 0 OR (customer_type IS NOT NULL) = (?11 = 2))" CUSTOMER_METADATA_FILTER
_Static_assert(STORE_PRESENCE_NONE == 1 && STORE_PRESENCE_SOME == 2,
               "CUSTOMER_FILTER reads presence filters as 1 none, 2 some");

/* Column order of every wallet SELECT; read_wallet depends on it. */
#define WALLET_COLUMNS                                                                             \
    "w.id, w.org_id, w.customer_id, w.lago_id, w.code, w.name, w.currency, w.rate_amount,"         \
    " w.priority, w.credit_limit, w.overdraft_limit_cents, w.balance_cents, w.consumed_cents,"     \
    " w.overdrawn_cents, w.expiration_at, w.terminated_at, w.last_consumed_at, w.terms,"           \
    " w.created_at, w.updated_at, c.lago_id, c.external_id, w.held_cents, w.next_rule_at,"         \
    " w.last_interval_grant_id, c.timezone, w.last_interval_paid_grant_id, w.rule_unfired,"        \
    " w.rollover_room_cents"
#define WALLET_FROM " FROM wallets w JOIN customers c ON c.id = w.customer_id"
/* An instant after every expiry, for comparing expiries where NULL is none. */
#define NO_EXPIRY "9223372036854775807"
#define WALLET_FILTER                                                                              \
    WALLET_FROM " WHERE w.org_id = ?1 AND (?2 = 0 OR w.customer_id = ?2)"                          \
                " AND (?3 IS NULL OR w.currency = upper(?3))"
/* Column order of every wallet transaction SELECT; read_wallet_transaction depends on it. */
#define WT_COLUMNS                                                                                 \
    "t.id, t.org_id, t.wallet_id, t.lago_id, t.transaction_type, t.status,"                        \
    " t.transaction_status, t.source, t.amount_cents, t.remaining_cents, t.priority, t.paid,"      \
    " t.expiration_at, t.name, t.details, t.settled_at, t.failed_at, t.created_at, w.lago_id,"     \
    " w.rate_amount, w.currency, t.invoice_lago_id"
#define WT_COLUMN_COUNT 22
/* A transaction's metadata is in its details ({"metadata": [{key, value}], ...}; none for a
 * debit): read for the wallet's rows only, found by its index. */
#define WT_FILTER                                                                                  \
    " FROM wallet_transactions t JOIN wallets w ON w.id = t.wallet_id"                             \
    " WHERE t.wallet_id = ?1 AND (?2 = 0 OR ((1 << t.status) & ?2) != 0)"                          \
    " AND (?3 = 0 OR ((1 << t.transaction_type) & ?3) != 0)"                                       \
    " AND (?4 = 0 OR ((1 << t.transaction_status) & ?4) != 0)"                                     \
    " AND (?5 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?5) f WHERE NOT EXISTS (SELECT 1"     \
    "      FROM json_each(t.details, '$.metadata') m"                                              \
    "      WHERE json_extract(m.value, '$.key') = json_extract(f.value, '$[0]')"                   \
    "      AND json_extract(m.value, '$.value') = json_extract(f.value, '$[1]'))))"
#define CONSUMPTION_COLUMNS "k.id, k.lago_id, k.amount_cents, k.created_at, " WT_COLUMNS
#define CONSUMPTION_FROM(other)                                                                    \
    " FROM wallet_consumptions k JOIN wallet_transactions t ON t.id = k." other                    \
    " JOIN wallets w ON w.id = t.wallet_id"
#define ENTRY_COLUMNS                                                                              \
    "e.id, e.posting_id, p.cause, e.account, e.amount_cents, e.balance_after_cents, e.currency,"   \
    " e.created_at, w.lago_id, c.external_id, t.lago_id, au.lago_id"
/*
 * Entries of an organization, or (driven by the posting's index) of a customer or a wallet:
 * ?2 is the customer's external id or the wallet's id in the last two. The filters read the
 * entries (and their postings) alone: a count walks every match, and a page finds its ids
 * first, past its offset, before the joins that show an entry are made for its rows only (they
 * were made for every entry counted or skipped: 887 ms for page 1 of 677,000 entries, an
 * audit). Every entry has its customer and wallet: neither is ever removed.
 */
#define ENTRY_SHOWN                                                                                \
    " FROM ledger_entries e JOIN ledger_postings p ON p.id = e.posting_id"                         \
    " JOIN customers c ON c.id = e.customer_id"                                                    \
    " LEFT JOIN wallets w ON w.id = e.wallet_id"                                                   \
    " LEFT JOIN wallet_transactions t ON t.id = p.wallet_transaction_id"                           \
    " LEFT JOIN authorizations au ON au.id = p.authorization_id"
#define ENTRY_TIME                                                                                 \
    " AND (?3 IS NULL OR e.created_at >= ?3) AND (?4 IS NULL OR e.created_at <= ?4)"               \
    " AND (?5 = 0 OR ((1 << e.account) & ?5) != 0)"
/* the cause, of the posting joined (p), or looked up only when asked for */
#define ENTRY_CAUSE " AND (?6 = 0 OR ((1 << p.cause) & ?6) != 0)"
#define ENTRY_CAUSE_LOOKED_UP                                                                      \
    " AND (?6 = 0 OR ((1 << (SELECT cause FROM ledger_postings WHERE id = e.posting_id)) & ?6)"    \
    " != 0)"
#define ENTRY_FILTER                                                                               \
    " FROM ledger_entries e WHERE e.org_id = ?1 AND ?2 = 0" ENTRY_TIME ENTRY_CAUSE_LOOKED_UP
#define ENTRY_FILTER_BY_WALLET                                                                     \
    " FROM ledger_postings p JOIN ledger_entries e ON e.posting_id = p.id"                         \
    " WHERE p.org_id = ?1 AND p.wallet_id = ?2" ENTRY_TIME ENTRY_CAUSE
/* every posting is a wallet's: a customer's are those of its wallets. ?2 is an external id:
 * every customer that had it, deleted ones too (customers_by_external_id). As a list of ids,
 * so the wallets are searched by customer: a join may drive from all the organization's. */
#define ENTRY_FILTER_BY_CUSTOMER                                                                   \
    " FROM wallets cw JOIN ledger_postings p ON p.wallet_id = cw.id"                               \
    " JOIN ledger_entries e ON e.posting_id = p.id"                                                \
    " WHERE cw.org_id = ?1 AND cw.customer_id IN"                                                  \
    " (SELECT id FROM customers WHERE org_id = ?1 AND external_id = ?2)" ENTRY_TIME ENTRY_CAUSE
/* A page of entries the filter finds, newest first, shown whole. */
#define ENTRY_PAGE(filter)                                                                         \
    "SELECT " ENTRY_COLUMNS ENTRY_SHOWN " WHERE e.id IN (SELECT e.id" filter                       \
    " ORDER BY e.id DESC LIMIT ?7 OFFSET ?8) ORDER BY e.id DESC"

#define AUTH_COLUMNS                                                                               \
    "a.id, a.org_id, a.lago_id, a.customer_id, a.subscription_id, a.external_subscription_id,"     \
    " a.code, a.properties, a.status, a.amount_cents, a.held_cents, a.captured_cents,"             \
    " a.currency, a.expires_at, a.transaction_id, a.created_at, a.updated_at, c.external_id,"      \
    " a.payer_wallet_id, a.precise_total_amount_cents"

/* The open holds of a list (on authorizations_due: no index by organization costs every
 * commit of holds a page): ?2 the customers' external id, ?3 the subscription's, NULL for any. */
#define AUTH_OPEN_FILTER                                                                           \
    " FROM authorizations a JOIN customers c ON c.id = a.customer_id"                              \
    " WHERE a.status = 1 AND a.org_id = ?1 AND (?2 IS NULL OR c.external_id = ?2)"                 \
    " AND (?3 IS NULL OR a.external_subscription_id = ?3)"

/* Column order of every invoice SELECT; read_invoice depends on it. */
#define INVOICE_COLUMNS                                                                            \
    "i.id, i.org_id, i.customer_id, i.lago_id, i.sequential_id, i.number, i.invoice_type,"         \
    " i.status, i.payment_status, i.currency, i.amount_cents, i.wallet_transaction_id,"            \
    " i.issuing_date, i.created_at, i.updated_at, c.lago_id, c.external_id, i.net_payment_term,"   \
    " i.purchase_order_number"
/* INVOICE_FILTER's overdue test names a finalized invoice and a succeeded payment by value */
_Static_assert(INVOICE_FINALIZED == 1 && INVOICE_PAYMENT_SUCCEEDED == 1, "INVOICE_FILTER");
/* ?11, self_billed, reads the customer's account_type: it cannot change once the customer has an
 * invoice (engine/customer_edit.c), so it is the one each invoice was issued with */
#define INVOICE_FILTER                                                                             \
    " FROM invoices i JOIN customers c ON c.id = i.customer_id"                                    \
    " WHERE i.org_id = ?1 AND (?2 = 0 OR i.customer_id = ?2)"                                      \
    " AND (?3 = 0 OR ((1 << i.payment_status) & ?3) != 0)"                                         \
    " AND (?4 = 0 OR ((1 << i.status) & ?4) != 0) AND (?5 = 0 OR ((1 << i.invoice_type) & ?5) != " \
    "0)"                                                                                           \
    " AND (?6 IS NULL OR i.currency = upper(?6))"                                                  \
    " AND (?7 IS NULL OR i.issuing_date >= ?7) AND (?8 IS NULL OR i.issuing_date <= ?8)"           \
    " AND i.amount_cents >= ?9 AND i.amount_cents <= ?10"                                          \
    " AND (?11 = 0 OR (c.account_type IS 'partner') = (?11 = 1))"                                  \
    " AND (?12 = 0 OR (i.status = 1 AND i.payment_status != 1 AND"                                 \
    " date(i.issuing_date, '+' || i.net_payment_term || ' days') <= ?13) = (?12 = 1))"

/* The id of the newest stored event (0 if none). */
#define EVENT_LAST_ID                                                                              \
    "COALESCE((SELECT first_id + count - 1 FROM event_blocks"                                      \
    " WHERE first_id = (SELECT MAX(first_id) FROM event_blocks)), 0)"

/* A tax's usage (store_tax_usage): the uses, by the codes of the array ?3, of the plan bodies
 * in column `b` of the rows `from` with `where`, as rows (code, what, count): a plan naming
 * the code in its own tax_codes (TAX_USE_PLAN), a charge naming it (TAX_USE_CHARGE, each
 * charge counted) and a minimum commitment naming it (TAX_USE_COMMITMENT). `id`: the row's
 * key, so that a body naming a code twice counts once (DISTINCT), as an EXISTS would. */
/* A charge whose metric was deleted is no plan's charge any more (the deletion took it, as
 * Lago's discards it), though its stored plan keeps it until its next update: not counted. */
#define CATALOG_METRIC_KIND_SQL "2"
_Static_assert(CATALOG_BILLABLE_METRIC == 2, "CATALOG_METRIC_KIND_SQL");
#define TAX_IN_PLAN_BODIES(id, b, from, where)                                                     \
    "SELECT t.value, 2, COUNT(DISTINCT " id ") FROM " from ", json_each(" b ", '$.tax_codes') t"   \
    " WHERE " where " AND t.value IN (SELECT value FROM json_each(?3)) GROUP BY t.value"           \
    " UNION ALL SELECT t.value, 3, COUNT(DISTINCT " id " || '/' || ch.key) FROM " from ","         \
    " json_each(" b ", '$.charges') ch, json_each(ch.value, '$.tax_codes') t"                      \
    " WHERE " where " AND t.value IN (SELECT value FROM json_each(?3))"                            \
    " AND EXISTS (SELECT 1 FROM catalog_items m WHERE m.org_id = ?1 AND m.kind "                   \
    "= " CATALOG_METRIC_KIND_SQL " AND m.lago_id = json_extract(ch.value, '$.billable_metric_id')" \
    " AND m.deleted_at IS NULL) GROUP BY t.value"                                                  \
    " UNION ALL SELECT t.value, 4, COUNT(DISTINCT " id ") FROM " from ","                          \
    " json_each(" b ", '$.minimum_commitment.tax_codes') t"                                        \
    " WHERE " where " AND t.value IN (SELECT value FROM json_each(?3)) GROUP BY t.value"

static const char *const sql[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_SAVEPOINT] = "SAVEPOINT cmd",
    [STMT_RELEASE] = "RELEASE cmd",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO cmd",
    [STMT_ORG_INSERT] = "INSERT INTO organizations(name, api_key_hash, has_test_clock,"
                        " test_clock_now, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_ORG_EACH] = "SELECT " ORG_COLUMNS " FROM organizations ORDER BY id",
    [STMT_ORG_BY_KEY] = "SELECT " ORG_COLUMNS " FROM organizations WHERE api_key_hash = ?1",
    [STMT_ORG_GET] = "SELECT " ORG_COLUMNS " FROM organizations WHERE id = ?1",
    [STMT_ORG_SET_REMINDERS] = "UPDATE organizations SET reminder_days = ?2 WHERE id = ?1",
    [STMT_ORG_SET_KEY] = "UPDATE organizations SET api_key_hash = ?2 WHERE id = ?1",
    [STMT_ORG_SET_CLOCK] = "UPDATE organizations SET test_clock_now = ?2 WHERE id = ?1",
    [STMT_IDEM_GET] = "SELECT request_hash, http_status, body FROM idempotency_keys"
                      " WHERE org_id = ?1 AND key = ?2",
    [STMT_IDEM_PUT] = "INSERT INTO idempotency_keys(org_id, key, request_hash, http_status,"
                      " body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_CUSTOMER_GET] = "SELECT " CUSTOMER_COLUMNS " FROM customers"
                          " WHERE org_id = ?1 AND external_id = ?2 AND deleted_at IS NULL",
    [STMT_CUSTOMER_BY_ID] = "SELECT " CUSTOMER_COLUMNS " FROM customers WHERE id = ?1",
    [STMT_CUSTOMER_EXTERNAL_ID_KNOWN] =
        "SELECT EXISTS (SELECT 1 FROM customers WHERE org_id = ?1 AND external_id = ?2)",
    [STMT_CUSTOMER_INSERT] =
        "INSERT INTO customers(" CUSTOMER_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26,"
        " ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36)",
    /* Same parameter numbering as the insert; ?1 (id) selects the row. */
    [STMT_CUSTOMER_UPDATE] =
        "UPDATE customers SET external_id = ?5, name = ?6, firstname = ?7, lastname = ?8,"
        " email = ?9, phone = ?10, url = ?11, logo_url = ?12, legal_name = ?13,"
        " legal_number = ?14, tax_identification_number = ?15, address_line1 = ?16,"
        " address_line2 = ?17, city = ?18, state = ?19, zipcode = ?20, country = ?21,"
        " currency = ?22, timezone = ?23, account_type = ?24, customer_type = ?25,"
        " finalize_zero_amount_invoice = ?26, external_salesforce_id = ?27,"
        " net_payment_term = ?28, invoice_grace_period = ?29, billing_configuration = ?30,"
        " shipping_address = ?31, metadata = ?32, tax_codes = ?33, updated_at = ?35,"
        " skip_invoice_custom_sections = ?36 WHERE id = ?1",
    [STMT_CUSTOMER_DELETE] = "UPDATE customers SET deleted_at = ?2 WHERE id = ?1",
    [STMT_CUSTOMER_COUNT] = "SELECT COUNT(*) FROM customers" CUSTOMER_FILTER,
    [STMT_CUSTOMER_PAGE] = "SELECT " CUSTOMER_COLUMNS " FROM customers" CUSTOMER_FILTER
                           " ORDER BY created_at DESC, id DESC LIMIT ?13 OFFSET ?14",
    [STMT_CATALOG_GET] = "SELECT " CATALOG_COLUMNS " FROM catalog_items WHERE org_id = ?1"
                         " AND kind = ?2 AND code = ?3 AND deleted_at IS NULL",
    [STMT_CATALOG_GET_BY_LAGO_ID] = "SELECT " CATALOG_COLUMNS " FROM catalog_items"
                                    " WHERE org_id = ?1 AND kind = ?2 AND lago_id = ?3"
                                    " AND deleted_at IS NULL",
    [STMT_CATALOG_GET_ANY_BY_LAGO_ID] = "SELECT " CATALOG_COLUMNS " FROM catalog_items"
                                        " WHERE org_id = ?1 AND kind = ?2 AND lago_id = ?3",
    [STMT_CATALOG_INSERT] = "INSERT INTO catalog_items(org_id, kind, code, lago_id, body,"
                            " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_CATALOG_UPDATE] = "UPDATE catalog_items SET code = ?2, body = ?3, updated_at = ?4"
                            " WHERE id = ?1",
    [STMT_CATALOG_DELETE] = "UPDATE catalog_items SET deleted_at = ?2 WHERE id = ?1",
    [STMT_CATALOG_COUNT] = "SELECT COUNT(*) FROM catalog_items WHERE org_id = ?1 AND kind = ?2"
                           " AND deleted_at IS NULL",
    [STMT_CATALOG_PAGE] = "SELECT " CATALOG_COLUMNS " FROM catalog_items WHERE org_id = ?1"
                          " AND kind = ?2 AND deleted_at IS NULL"
                          " ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4",
    /* Lago's taxes list (TaxesQuery): by name, letters in either case together as its database
     * collation sorts them, then newest first */
    [STMT_CATALOG_PAGE_BY_NAME] = "SELECT " CATALOG_COLUMNS " FROM catalog_items WHERE org_id = ?1"
                                  " AND kind = ?2 AND deleted_at IS NULL"
                                  " ORDER BY json_extract(body, '$.name') COLLATE NOCASE,"
                                  " json_extract(body, '$.name'), created_at DESC, id DESC"
                                  " LIMIT ?3 OFFSET ?4",
    [STMT_SUBSCRIPTION_INSERT] =
        "INSERT INTO subscriptions(org_id, customer_id, lago_id, external_id, name, plan_lago_id,"
        " plan_code, billing_time, subscription_at, started_at, ending_at, terminated_at,"
        " canceled_at, previous_id, next_id, created_at, updated_at, plan_body,"
        " purchase_order_number) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
        " ?15, ?16, ?17, ?18, ?19, ?20)",
    /* Same parameter numbering as the insert; ?1 (id) selects the row. */
    [STMT_SUBSCRIPTION_UPDATE] =
        "UPDATE subscriptions SET customer_id = ?3, external_id = ?5, name = ?6,"
        " plan_lago_id = ?7, plan_code = ?8, billing_time = ?9, subscription_at = ?10,"
        " started_at = ?11, ending_at = ?12, terminated_at = ?13, canceled_at = ?14,"
        " previous_id = ?15, next_id = ?16, updated_at = ?18, plan_body = ?19,"
        " purchase_order_number = ?20 WHERE id = ?1",
    [STMT_SUBSCRIPTION_GET] = "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions s"
                              " JOIN customers c ON c.id = s.customer_id"
                              " WHERE s.org_id = ?1 AND s.id = ?2",
    /* Every subscription with that external id not over at ?3, the active one first. */
    [STMT_SUBSCRIPTION_BY_EXTERNAL_ID] = "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions s"
                                         " JOIN customers c ON c.id = s.customer_id"
                                         " WHERE s.org_id = ?1 AND s.external_id = ?2 AND "
                                         "(s.canceled_at IS NULL OR s.canceled_at > ?3)"
                                         " AND MIN(COALESCE(s.terminated_at, 9223372036854775807),"
                                         "         COALESCE(s.ending_at, 9223372036854775807)) > ?3"
                                         " ORDER BY s.started_at, s.id LIMIT 1",
    [STMT_SUBSCRIPTION_COUNT] = "SELECT COUNT(*)" SUBSCRIPTION_FILTER,
    [STMT_SUBSCRIPTION_PAGE] = "SELECT " SUBSCRIPTION_COLUMNS SUBSCRIPTION_FILTER
                               " ORDER BY s.created_at DESC, s.id DESC LIMIT ?9 OFFSET ?10",
    /* Lago's order (subscription_at DESC NULLS LAST, created_at DESC; Tally's subscription_at
     * is never null), the id last so that pages never share or skip a row */
    [STMT_SUBSCRIPTION_LISTED] =
        "SELECT " SUBSCRIPTION_COLUMNS SUBSCRIPTION_FILTER
        " ORDER BY s.subscription_at DESC, s.created_at DESC, s.id DESC LIMIT ?9 OFFSET ?10",
    [STMT_SUBSCRIPTION_CUSTOMER_LIVE] =
        "SELECT COUNT(*) FROM subscriptions s WHERE s.org_id = ?1 AND s.customer_id = ?3"
        " AND ((1 << " SUBSCRIPTION_STATUS_AT ") & 3) != 0",
    [STMT_SUBSCRIPTION_AT] = "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions s"
                             " JOIN customers c ON c.id = s.customer_id"
                             " WHERE s.org_id = ?1 AND s.external_id = ?2 AND s.started_at <= ?3"
                             " AND s.canceled_at IS NULL"
                             " AND MIN(COALESCE(s.terminated_at, 9223372036854775807),"
                             "         COALESCE(s.ending_at, 9223372036854775807)) > ?3"
                             " ORDER BY s.started_at DESC LIMIT 1",
    [STMT_SUBSCRIPTION_ENDED_AT] =
        "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions s"
        " JOIN customers c ON c.id = s.customer_id"
        " WHERE s.org_id = ?1 AND s.external_id = ?2 AND s.started_at <= ?3"
        " AND s.canceled_at IS NULL AND s.terminated_at = ?3"
        " AND COALESCE(s.ending_at, 9223372036854775807) >= ?3"
        " ORDER BY s.started_at DESC LIMIT 1",
    /* started by ?4: a canceled one never was (its cancel comes at or before its start) */
    [STMT_SUBSCRIPTION_INITIAL_START] =
        "SELECT MIN(started_at) FROM subscriptions"
        " WHERE org_id = ?1 AND external_id = ?2 AND customer_id = ?3 AND started_at <= ?4"
        " AND (canceled_at IS NULL OR canceled_at > started_at)",
    [STMT_SETTING_GET] = "SELECT value FROM settings WHERE name = ?1",
    [STMT_SETTING_PUT] = "INSERT INTO settings(name, value) VALUES (?1, ?2)"
                         " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    /* the block goes in only above every stored event: ids are the writer's, never reused */
    [STMT_EVENT_BLOCK_INSERT] =
        "INSERT INTO event_blocks(first_id, org_id, count, data) SELECT ?1, ?2, ?3, ?4"
        " WHERE ?1 > " EVENT_LAST_ID,
    [STMT_EVENT_LAST_ID] = "SELECT " EVENT_LAST_ID,
    /* from the block holding event ?1 on */
    [STMT_EVENT_IDENTITIES] =
        "SELECT first_id, org_id, data FROM event_blocks WHERE first_id >= COALESCE("
        "(SELECT first_id FROM event_blocks WHERE first_id <= ?1 ORDER BY first_id DESC LIMIT 1),"
        " 0) ORDER BY first_id",
    [STMT_EVENT_BLOCK_OF] = "SELECT first_id, org_id, data FROM event_blocks WHERE first_id <= ?1"
                            " ORDER BY first_id DESC LIMIT 1",
    [STMT_EVENT_ORG_SUMMARIES] =
        "SELECT first_id, count, ts_min, ts_max, sub, code, bloom FROM event_block_summaries"
        " WHERE org_id = ?1 ORDER BY first_id DESC",
    [STMT_EVENT_BLOCK_DATA] = "SELECT first_id, org_id, data FROM event_blocks WHERE first_id = ?1",
    [STMT_EVENT_SUMMARY_INSERT] = EVENT_SUMMARY_INSERT,
    [STMT_EVENT_LAGO_IDS] = "SELECT s.lago_id, c.lago_id FROM subscriptions s"
                            " JOIN customers c ON c.id = s.customer_id WHERE s.id = ?1",
    [STMT_EVENT_COUNT] = "SELECT COALESCE((SELECT stored FROM event_counts WHERE org_id = ?1), 0)",
    [STMT_EVENT_COUNT_ADD] =
        "INSERT INTO event_counts(org_id, stored) VALUES (?1, ?2)"
        " ON CONFLICT (org_id) DO UPDATE SET stored = stored + excluded.stored",
    [STMT_RECURRING_EVENT_INSERT] =
        "INSERT INTO recurring_events(org_id, external_subscription_id, code, id,"
        " subscription_id, timestamp, properties, precise_total_amount_cents, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STMT_RECURRING_EVENT_IDS] =
        "SELECT id, subscription_id, timestamp, properties, precise_total_amount_cents,"
        " created_at FROM recurring_events"
        " WHERE org_id = ?1 AND external_subscription_id = ?2 AND code = ?3 AND id > ?7"
        " AND (CASE ?8 WHEN 0 THEN timestamp < ?4 AND created_at < ?4"
        " ELSE (timestamp >= ?4 AND subscription_id != ?5)"
        " OR (timestamp < ?4 AND created_at >= ?4) END)"
        " AND (SELECT s.customer_id FROM subscriptions s WHERE s.id = subscription_id) = ?6"
        " ORDER BY id",
    [STMT_RECURRING_LATE_COUNT] =
        "SELECT COUNT(DISTINCT id) FROM recurring_events"
        " WHERE org_id = ?1 AND external_subscription_id = ?2 AND timestamp < ?3"
        " AND created_at >= ?3 AND created_at < ?4"
        " AND (SELECT s.customer_id FROM subscriptions s WHERE s.id = subscription_id) = ?5",
    [STMT_METRIC_FLOOR_RAISE] =
        "INSERT INTO metric_history_floors(org_id, code, last_event_id) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (org_id, code) DO UPDATE"
        " SET last_event_id = MAX(last_event_id, excluded.last_event_id)",
    [STMT_METRIC_FLOOR_GET] = "SELECT COALESCE((SELECT last_event_id FROM metric_history_floors"
                              " WHERE org_id = ?1 AND code = ?2), 0)",
    [STMT_METRIC_FLOOR_DELETED] =
        "SELECT COALESCE((SELECT deleted_through FROM metric_history_floors"
        " WHERE org_id = ?1 AND code = ?2), 0)",
    /* after STMT_METRIC_FLOOR_RAISE: the row is there */
    [STMT_METRIC_FLOOR_HIDE] =
        "UPDATE metric_history_floors SET deleted_through = ?3,"
        " deleted_count = deleted_count + ?4 WHERE org_id = ?1 AND code = ?2",
    /* an organization's codes whose deletions hide events, in code order (the key's) */
    [STMT_EVENT_HIDDEN] = "SELECT code, deleted_through, deleted_count FROM metric_history_floors"
                          " WHERE org_id = ?1 AND deleted_through > 0 ORDER BY code",
    /* the blocks from the one that may hold event ?2 down, newest first (the reader stops) */
    [STMT_EVENT_CODE_SUMMARIES] = "SELECT first_id, count, code, bloom FROM event_block_summaries"
                                  " WHERE org_id = ?1 AND first_id <= ?2 ORDER BY first_id DESC",
    /* any status; on the plan itself: one on a plan of its own is on Lago's child plan */
    [STMT_PLAN_ATTACHED] = "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE org_id = ?1"
                           " AND plan_lago_id = ?2 AND plan_body IS NULL)",
    [STMT_PLAN_LIVE_SUBSCRIPTIONS] =
        "SELECT COUNT(*) FROM subscriptions s WHERE s.org_id = ?1 AND s.plan_lago_id = ?3"
        " AND ((1 << " SUBSCRIPTION_STATUS_AT ") & 3) != 0",
    /* the same subscriptions, those on a plan of their own made from it included */
    [STMT_PLAN_LIVE_SUBSCRIPTION_ROWS] =
        "SELECT " SUBSCRIPTION_COLUMNS
        " FROM subscriptions s JOIN customers c ON c.id = s.customer_id"
        " WHERE s.org_id = ?1 AND s.plan_lago_id = ?3"
        " AND ((1 << " SUBSCRIPTION_STATUS_AT ") & 3) != 0 ORDER BY s.id",
    /* on the plan itself (no plan of their own): downgrades scheduled to it (pending, with a
     * previous subscription) and active subscriptions with one scheduled from it */
    [STMT_PLAN_SCHEDULED_CHANGES] =
        "SELECT " SUBSCRIPTION_COLUMNS
        " FROM subscriptions s JOIN customers c ON c.id = s.customer_id"
        " WHERE s.org_id = ?1 AND s.plan_lago_id = ?3 AND s.plan_body IS NULL"
        " AND ((s.previous_id != 0 AND " SUBSCRIPTION_STATUS_AT " = 0)"
        "      OR (s.next_id != 0 AND " SUBSCRIPTION_STATUS_AT " = 1)) ORDER BY s.id",
    /* a plan's canonical body names each charge's metric as "billable_metric_id":"<lago_id>" */
    [STMT_METRIC_IN_PLANS] = "SELECT code FROM catalog_items WHERE org_id = ?1 AND kind = ?2"
                             " AND deleted_at IS NULL"
                             " AND instr(body, '\"billable_metric_id\":\"' || ?3 || '\"') > 0"
                             " ORDER BY code LIMIT 1",
    /* A tax's usage (store_tax_usage): each is one visit of the organization's rows of a
     * kind, whose stored JSON names taxes by code (json/catalog_refs keeps the codes current),
     * counting the uses of every code of the array ?2 or ?3 at once, as rows (code, what,
     * count): a list of taxes costs one visit, not one per tax listed (an audit measured 4 s
     * for a page of 100 taxes over 500 plans). A row naming a code twice counts once. */
    [STMT_TAX_UNTAXED_CUSTOMERS] =
        "SELECT COALESCE(SUM(tax_codes IS NULL OR json_array_length(tax_codes) = 0), 0)"
        " FROM customers WHERE org_id = ?1 AND deleted_at IS NULL",
    [STMT_TAX_IN_CUSTOMERS] = "SELECT t.value, 0, COUNT(DISTINCT c.id)"
                              " FROM customers c, json_each(c.tax_codes) t"
                              " WHERE c.org_id = ?1 AND c.deleted_at IS NULL"
                              " AND t.value IN (SELECT value FROM json_each(?2)) GROUP BY t.value",
    [STMT_TAX_IN_ADD_ONS] = "SELECT t.value, 1, COUNT(DISTINCT a.id)"
                            " FROM catalog_items a, json_each(a.body, '$.tax_codes') t"
                            " WHERE a.org_id = ?1 AND a.kind = ?2 AND a.deleted_at IS NULL"
                            " AND t.value IN (SELECT value FROM json_each(?3)) GROUP BY t.value",
    [STMT_TAX_IN_PLANS] =
        TAX_IN_PLAN_BODIES("p.id", "p.body", "catalog_items p",
                           "p.org_id = ?1 AND p.kind = ?2 AND p.deleted_at IS NULL"),
    /* a deleted plan's subscriptions' own plans are left out: Lago's Plans::DestroyJob
     * discards the child plans with their parent */
    [STMT_TAX_IN_OWN_PLANS] = TAX_IN_PLAN_BODIES(
        "s.id", "s.plan_body", "subscriptions s",
        "s.org_id = ?1 AND s.plan_body IS NOT NULL AND EXISTS (SELECT 1 FROM catalog_items p"
        " WHERE p.org_id = ?1 AND p.kind = ?2 AND p.lago_id = s.plan_lago_id"
        " AND p.deleted_at IS NULL)"),
    [STMT_SUBSCRIPTION_OWN_PLANS] = "SELECT id, updated_at, plan_body, external_id,"
                                    " terminated_at IS NOT NULL OR canceled_at IS NOT NULL"
                                    " FROM subscriptions"
                                    " WHERE org_id = ?1 AND plan_body IS NOT NULL"
                                    " AND (?2 IS NULL OR instr(plan_body, ?2) > 0) ORDER BY id",
    [STMT_CUSTOMER_TAXED] =
        "SELECT id, tax_codes FROM customers WHERE org_id = ?1"
        " AND tax_codes IS NOT NULL AND (?2 IS NULL OR instr(tax_codes, ?2) > 0)"
        " ORDER BY id",
    [STMT_CUSTOMER_SET_TAX_CODES] = "UPDATE customers SET tax_codes = ?2 WHERE id = ?1",
    [STMT_SUBSCRIPTION_SET_PLAN_BODY] =
        "UPDATE subscriptions SET plan_body = ?2, updated_at = ?3 WHERE id = ?1",
    [STMT_APPLIED_COUPON_INSERT] =
        "INSERT INTO applied_coupons(org_id, customer_id, lago_id, coupon_lago_id, coupon_code,"
        " coupon_name, coupon_type, amount_cents, amount_cents_remaining, amount_currency,"
        " percentage_rate, frequency, frequency_duration, frequency_duration_remaining,"
        " expiration_at, terminated_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [STMT_APPLIED_COUPON_TERMINATE] = "UPDATE applied_coupons SET terminated_at = ?2 WHERE id = ?1",
    [STMT_APPLIED_COUPON_GET] = "SELECT " APPLIED_COUPON_COLUMNS APPLIED_COUPON_FROM
                                " WHERE a.org_id = ?1 AND a.lago_id = ?2",
    [STMT_APPLIED_COUPON_USES] = "SELECT COUNT(*) FROM applied_coupons WHERE org_id = ?1"
                                 " AND coupon_lago_id = ?2 AND customer_id = ?3",
    [STMT_COUPON_IN_USE] = "SELECT EXISTS (SELECT 1 FROM applied_coupons WHERE org_id = ?1"
                           " AND coupon_lago_id = ?2)",
    [STMT_APPLIED_COUPON_COUNT] = "SELECT COUNT(*)" APPLIED_COUPON_FILTER,
    [STMT_APPLIED_COUPON_PAGE] = "SELECT " APPLIED_COUPON_COLUMNS APPLIED_COUPON_FILTER
                                 " ORDER BY a.created_at DESC, a.id DESC LIMIT ?5 OFFSET ?6",
    [STMT_APPLIED_COUPONS_END_OF_COUPON] =
        "UPDATE applied_coupons SET terminated_at = ?3"
        " WHERE org_id = ?1 AND coupon_lago_id = ?2 AND terminated_at IS NULL",
    [STMT_WALLET_INSERT] =
        "INSERT INTO wallets(org_id, customer_id, lago_id, code, name, currency, rate_amount,"
        " priority, credit_limit, overdraft_limit_cents, balance_cents, consumed_cents,"
        " overdrawn_cents, expiration_at, terminated_at, last_consumed_at, terms, created_at,"
        " updated_at, held_cents, next_rule_at, last_interval_grant_id,"
        " last_interval_paid_grant_id, rule_unfired, rollover_room_cents)"
        " VALUES (?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,"
        " ?24, ?25, ?26)",
    [STMT_WALLET_UPDATE] =
        "UPDATE wallets SET code = ?5, name = ?6, priority = ?9, credit_limit = ?10,"
        " overdraft_limit_cents = ?11, balance_cents = ?12, consumed_cents = ?13,"
        " overdrawn_cents = ?14, expiration_at = ?15, terminated_at = ?16,"
        " last_consumed_at = ?17, terms = ?18, updated_at = ?20, held_cents = ?21,"
        " next_rule_at = ?22, last_interval_grant_id = ?23, last_interval_paid_grant_id = ?24,"
        " rule_unfired = ?25, rollover_room_cents = ?26 WHERE id = ?1",
    /* only what debits change, so no index on the wallets table has to be rewritten */
    [STMT_WALLET_BALANCES] = "UPDATE wallets SET balance_cents = ?2, consumed_cents = ?3,"
                             " overdrawn_cents = ?4, held_cents = ?5, last_consumed_at = ?6,"
                             " updated_at = ?7 WHERE id = ?1",
    [STMT_WALLET_GET] =
        "SELECT " WALLET_COLUMNS WALLET_FROM " WHERE w.lago_id = ?2 AND w.org_id = ?1",
    [STMT_WALLET_BY_ID] = "SELECT " WALLET_COLUMNS WALLET_FROM " WHERE w.id = ?1",
    [STMT_WALLETS_OF_CUSTOMER] =
        "SELECT " WALLET_COLUMNS WALLET_FROM " WHERE w.org_id = ?1 AND w.customer_id = ?2"
        " AND w.terminated_at IS NULL ORDER BY w.created_at, w.id",
    [STMT_WALLETS_NAMING] = "SELECT id, customer_id, terms FROM wallets WHERE org_id = ?1"
                            " AND instr(terms, ?2) > 0 ORDER BY id",
    /* updated_at stays: it is shown as last_balance_sync_at, which a code change is not */
    [STMT_WALLET_SET_TERMS] = "UPDATE wallets SET terms = ?2 WHERE id = ?1",
    [STMT_WALLET_COUNT] = "SELECT COUNT(*)" WALLET_FILTER,
    [STMT_WALLET_PAGE] = "SELECT " WALLET_COLUMNS WALLET_FILTER
                         " ORDER BY w.created_at DESC, w.id DESC LIMIT ?4 OFFSET ?5",
    [STMT_WT_INSERT] =
        "INSERT INTO wallet_transactions(org_id, wallet_id, lago_id, transaction_type, status,"
        " transaction_status, source, amount_cents, remaining_cents, priority, paid,"
        " expiration_at, name, details, settled_at, failed_at, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [STMT_WT_SET_REMAINING] = "UPDATE wallet_transactions SET remaining_cents = ?2 WHERE id = ?1",
    [STMT_WT_SET_STATE] = "UPDATE wallet_transactions SET status = ?2, remaining_cents = ?3,"
                          " settled_at = ?4, failed_at = ?5 WHERE id = ?1",
    [STMT_WT_GET] =
        "SELECT " WT_COLUMNS " FROM wallet_transactions t JOIN wallets w ON w.id = t.wallet_id"
        " WHERE t.lago_id = ?2 AND t.org_id = ?1",
    [STMT_WT_BY_ID] =
        "SELECT " WT_COLUMNS " FROM wallet_transactions t JOIN wallets w ON w.id = t.wallet_id"
        " WHERE t.id = ?1",
    [STMT_WT_LIVE_GRANTS] =
        "SELECT " WT_COLUMNS " FROM wallet_transactions t JOIN wallets w ON w.id = t.wallet_id"
        " WHERE t.wallet_id = ?1 AND t.transaction_type = 0 AND t.remaining_cents > 0",
    [STMT_WT_COUNT] = "SELECT COUNT(*)" WT_FILTER,
    [STMT_WT_PAGE] = "SELECT " WT_COLUMNS WT_FILTER " ORDER BY t.id DESC LIMIT ?6 OFFSET ?7",
    [STMT_CONSUMPTION_INSERT] =
        "INSERT INTO wallet_consumptions(org_id, lago_id, inbound_id, outbound_id, amount_cents,"
        " created_at) VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT (outbound_id, inbound_id)"
        " DO UPDATE SET amount_cents = amount_cents + excluded.amount_cents",
    [STMT_CONSUMPTION_COUNT_BY_INBOUND] =
        "SELECT COUNT(*) FROM wallet_consumptions k WHERE k.inbound_id = ?1",
    [STMT_CONSUMPTION_PAGE_BY_INBOUND] = "SELECT " CONSUMPTION_COLUMNS CONSUMPTION_FROM(
        "outbound_id") " WHERE k.inbound_id = ?1 ORDER BY k.id LIMIT ?2 OFFSET ?3",
    [STMT_CONSUMPTION_COUNT_BY_OUTBOUND] =
        "SELECT COUNT(*) FROM wallet_consumptions k WHERE k.outbound_id = ?1",
    [STMT_CONSUMPTION_PAGE_BY_OUTBOUND] = "SELECT " CONSUMPTION_COLUMNS CONSUMPTION_FROM(
        "inbound_id") " WHERE k.outbound_id = ?1 ORDER BY k.id LIMIT ?2 OFFSET ?3",
    [STMT_POSTING_INSERT] = "INSERT INTO ledger_postings(org_id, customer_id, wallet_id, currency,"
                            " cause, wallet_transaction_id, created_at, authorization_id)"
                            " VALUES (?,?,?,?,?,?,?,?)",
    /* The account's balance after this line: its last line's, plus this amount. */
    [STMT_ENTRY_INSERT] =
        "INSERT INTO ledger_entries(posting_id, org_id, customer_id, account, wallet_id,"
        " currency, amount_cents, balance_after_cents, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?8)",
    [STMT_ORG_BALANCE_PUT] = "INSERT OR REPLACE INTO ledger_balances(org_id, currency, account,"
                             " balance_cents) VALUES (?,?,?,?)",
    [STMT_WALLET_ACCOUNT_BALANCE] =
        "SELECT e.balance_after_cents FROM ledger_postings p"
        " JOIN ledger_entries e ON e.posting_id = p.id"
        " WHERE p.wallet_id = ?1 AND e.account = ?2 AND e.wallet_id = ?1"
        " ORDER BY p.id DESC LIMIT 1",
    [STMT_WT_PENDING] = "SELECT COALESCE(SUM(amount_cents), 0) FROM wallet_transactions"
                        " WHERE wallet_id = ?1 AND status = 0",
    /* a new expiry is reminded anew (credits a rollover carries on): the one that counts, the
     * sooner of the grant's and its wallet's, not the grant's own moving behind the wallet's */
    [STMT_WT_SET_EXPIRATION] =
        "UPDATE wallet_transactions SET expiration_at = ?2, reminded_days = CASE"
        " WHEN min(coalesce(expiration_at, " NO_EXPIRY
        "), (SELECT coalesce(w.expiration_at, " NO_EXPIRY
        ") FROM wallets w WHERE w.id = wallet_id))"
        " = min(coalesce(?2, " NO_EXPIRY "), (SELECT coalesce(w.expiration_at, " NO_EXPIRY
        ") FROM wallets w WHERE w.id = wallet_id))"
        " THEN reminded_days ELSE 0 END WHERE id = ?1",
    /* the same when the wallet's expiry moves (?2 the old, ?3 the new): grants it no longer
     * expires with, or now does, or at another instant, are reminded for their new expiry */
    [STMT_WALLET_EXPIRY_MOVED] =
        "UPDATE wallet_transactions SET reminded_days = 0 WHERE wallet_id = ?1"
        " AND reminded_days <> 0 AND min(coalesce(expiration_at, " NO_EXPIRY
        "), coalesce(?2, " NO_EXPIRY ")) <> min(coalesce(expiration_at, " NO_EXPIRY
        "), coalesce(?3, " NO_EXPIRY "))",
    [STMT_RULES_DUE] = "SELECT w.org_id, w.lago_id, 0, w.customer_id FROM wallets w"
                       " WHERE w.next_rule_at IS NOT NULL"
                       " AND w.terminated_at IS NULL AND w.next_rule_at <= ?1 AND w.org_id = ?3"
                       " AND (?4 IS NULL OR w.customer_id NOT IN (SELECT value FROM json_each(?4)))"
                       " ORDER BY w.next_rule_at LIMIT ?2",
    /* ?4: the reminder (days before expiry) being looked for; ?5 the customers passed over */
    /* A grant's credits expire at its own expiration_at or its wallet's, whichever comes
     * first: the first part finds those due by their own (the wallet lasting as long), the
     * second those due by their wallet's (each part by its index). A grant the clock passed
     * the expiry of is not reminded: a test clock that jumps past both finds nothing. */
    [STMT_REMINDERS_DUE] =
        "SELECT t.org_id, w.lago_id, t.id, t.expiration_at AS due, w.customer_id"
        "  FROM wallet_transactions t"
        "  JOIN wallets w ON w.id = t.wallet_id"
        "  WHERE t.remaining_cents > 0 AND t.expiration_at IS NOT NULL"
        "  AND t.expiration_at <= ?1 + ?4 * 86400000000 AND t.expiration_at > ?1"
        "  AND t.org_id = ?3 AND (t.reminded_days = 0 OR t.reminded_days > ?4)"
        "  AND (w.expiration_at IS NULL OR w.expiration_at >= t.expiration_at)"
        "  AND (?5 IS NULL OR w.customer_id NOT IN (SELECT value FROM json_each(?5)))"
        " UNION ALL"
        " SELECT t.org_id, w.lago_id, t.id, w.expiration_at, w.customer_id FROM wallets w"
        "  JOIN wallet_transactions t ON t.wallet_id = w.id AND t.transaction_type = 0"
        "  WHERE w.terminated_at IS NULL AND w.expiration_at IS NOT NULL"
        "  AND w.expiration_at <= ?1 + ?4 * 86400000000 AND w.expiration_at > ?1"
        "  AND +w.org_id = ?3 AND t.remaining_cents > 0" /* by wallets_expiring, not every wallet */
        "  AND (t.expiration_at IS NULL OR t.expiration_at > w.expiration_at)"
        "  AND (t.reminded_days = 0 OR t.reminded_days > ?4)"
        "  AND (?5 IS NULL OR w.customer_id NOT IN (SELECT value FROM json_each(?5)))"
        " ORDER BY 4, 3 LIMIT ?2", /* the fourth: the instant the credits expire */
    [STMT_WT_SET_REMINDED] = "UPDATE wallet_transactions SET reminded_days = ?2 WHERE id = ?1",
    [STMT_OUTBOX_INSERT] =
        "INSERT INTO webhook_outbox(org_id, lago_id, webhook_type, object_type, object_id, data,"
        " created_at) VALUES (?,?,?,?,?,?,?)",
    [STMT_OUTBOX_COUNT] = "SELECT COUNT(*) FROM webhook_outbox WHERE org_id = ?1",
    [STMT_OUTBOX_PAGE] =
        "SELECT id, lago_id, webhook_type, object_type, object_id, data, created_at, delivered_at,"
        " org_id FROM webhook_outbox WHERE org_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
    [STMT_WT_SET_INVOICE] = "UPDATE wallet_transactions SET invoice_lago_id = ?2 WHERE id = ?1",
    [STMT_INVOICE_INSERT] =
        "INSERT INTO invoices(org_id, customer_id, lago_id, sequential_id, number, invoice_type,"
        " status, payment_status, currency, amount_cents, wallet_transaction_id, issuing_date,"
        " created_at, updated_at, net_payment_term, purchase_order_number)"
        " VALUES (?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
    [STMT_INVOICE_UPDATE] = "UPDATE invoices SET sequential_id = ?5, number = ?6, status = ?8,"
                            " payment_status = ?9, issuing_date = ?13, net_payment_term = ?16,"
                            " updated_at = ?15 WHERE id = ?1",
    [STMT_INVOICE_GET] = "SELECT " INVOICE_COLUMNS " FROM invoices i"
                         " JOIN customers c ON c.id = i.customer_id"
                         " WHERE i.lago_id = ?2 AND i.org_id = ?1",
    [STMT_INVOICE_NEXT_SEQUENCE] = "SELECT COALESCE(MAX(sequential_id), 0) + 1,"
                                   " (SELECT sequential_id FROM customers WHERE id = ?2)"
                                   " FROM invoices WHERE org_id = ?1 AND customer_id = ?2",
    [STMT_INVOICE_COUNT] = "SELECT COUNT(*)" INVOICE_FILTER,
    [STMT_INVOICE_PAGE] = "SELECT " INVOICE_COLUMNS INVOICE_FILTER
                          " ORDER BY i.issuing_date DESC, i.created_at DESC, i.id DESC"
                          " LIMIT ?14 OFFSET ?15",
    [STMT_WT_ADD_AMOUNT] =
        "UPDATE wallet_transactions SET amount_cents = amount_cents + ?2 WHERE id = ?1",
    [STMT_WT_ADD_OWED] =
        "UPDATE wallet_transactions SET owed_cents = owed_cents + ?2 WHERE id = ?1",
    [STMT_WT_OWED_OLDEST] = "SELECT id, owed_cents FROM wallet_transactions"
                            " WHERE wallet_id = ?1 AND owed_cents > 0 ORDER BY id LIMIT 1",
    [STMT_WT_LAST_DECLINED] = "SELECT COALESCE(MAX(failed_at), 0) FROM wallet_transactions"
                              " WHERE wallet_id = ?1 AND status = 2 AND source = 2",
    [STMT_WT_OWED_TOTAL] = "SELECT COALESCE(SUM(owed_cents), 0) FROM wallet_transactions"
                           " WHERE wallet_id = ?1 AND owed_cents > 0",
    [STMT_ENTRY_COUNT] = "SELECT COUNT(*)" ENTRY_FILTER,
    [STMT_ENTRY_PAGE] = ENTRY_PAGE(ENTRY_FILTER),
    [STMT_ENTRY_COUNT_BY_CUSTOMER] = "SELECT COUNT(*)" ENTRY_FILTER_BY_CUSTOMER,
    [STMT_ENTRY_PAGE_BY_CUSTOMER] = ENTRY_PAGE(ENTRY_FILTER_BY_CUSTOMER),
    [STMT_ENTRY_COUNT_BY_WALLET] = "SELECT COUNT(*)" ENTRY_FILTER_BY_WALLET,
    [STMT_ENTRY_PAGE_BY_WALLET] = ENTRY_PAGE(ENTRY_FILTER_BY_WALLET),
    [STMT_ACCOUNT_BALANCE] = "SELECT balance_cents FROM ledger_balances WHERE org_id = ?1"
                             " AND currency = ?2 AND account = ?3",
    /* an upsert, not INSERT OR REPLACE: the row changes in place */
    [STMT_CHARGE_DEBIT_DROP] = "DELETE FROM charge_debits WHERE subscription_id = ?1"
                               " AND charge_lago_id = ?2 AND period_from = ?3",
    [STMT_CHARGE_DEBIT_PUT] =
        "INSERT INTO charge_debits(subscription_id, charge_lago_id, period_from,"
        " org_id, customer_id, charged_cents, fundings, posted_tax_cents, opened_event_id,"
        " opened_cents, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (subscription_id, charge_lago_id, period_from) DO UPDATE SET"
        " charged_cents = excluded.charged_cents, fundings = excluded.fundings,"
        " posted_tax_cents = excluded.posted_tax_cents,"
        " opened_event_id = excluded.opened_event_id, opened_cents = excluded.opened_cents,"
        " seq = excluded.seq",
    [STMT_AUTH_INSERT] =
        "INSERT INTO authorizations(org_id, lago_id, customer_id, subscription_id,"
        " external_subscription_id, code, properties, status, amount_cents, held_cents,"
        " captured_cents, currency, expires_at, transaction_id, created_at, updated_at,"
        " payer_wallet_id, precise_total_amount_cents, asked_expires_at)"
        " VALUES (?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)",
    [STMT_AUTH_UPDATE] = "UPDATE authorizations SET status = ?9, held_cents = ?11,"
                         " captured_cents = ?12, transaction_id = ?15, updated_at = ?17"
                         " WHERE id = ?1",
    [STMT_AUTH_GET] = "SELECT " AUTH_COLUMNS " FROM authorizations a"
                      " JOIN customers c ON c.id = a.customer_id"
                      " WHERE a.lago_id = ?2 AND a.org_id = ?1",
    /* soonest expiry first, as the index keeps them */
    [STMT_AUTH_OPEN_COUNT] = "SELECT COUNT(*)" AUTH_OPEN_FILTER,
    [STMT_AUTH_OPEN_PAGE] =
        "SELECT " AUTH_COLUMNS AUTH_OPEN_FILTER " ORDER BY a.expires_at, a.id LIMIT ?4 OFFSET ?5",
    [STMT_AUTH_HOLD_PUT] = "INSERT OR REPLACE INTO authorization_holds(authorization_id, wallet_id,"
                           " grant_id, cents, at_rollover) VALUES (?,?,?,?,0)",
    [STMT_AUTH_HOLDS] = "SELECT wallet_id, grant_id, cents, at_rollover FROM authorization_holds"
                        " WHERE authorization_id = ?1 ORDER BY wallet_id, grant_id",
    /* (an anniversary with holds open on the grants it rolls over: through authorizations_due) */
    [STMT_HOLDS_AT_ROLLOVER] =
        "UPDATE authorization_holds SET at_rollover = (grant_id IN (?2, ?3))"
        " WHERE authorization_id IN (SELECT id FROM authorizations WHERE status = 1)"
        " AND wallet_id = ?1 AND cents > 0",
    [STMT_AUTH_HOLDS_CLEAR] = "UPDATE authorization_holds SET cents = 0"
                              " WHERE authorization_id = ?1 AND cents > 0",
    /* (released parts are zeroed: what is left is open holds', status 1 says so again) */
    [STMT_WALLET_HELD_GRANTS] = "SELECT wallet_id, grant_id, cents, 0 FROM grant_holds"
                                " WHERE wallet_id = ?1 AND cents > 0",
    [STMT_GRANT_HOLDS_ADD] =
        "INSERT INTO grant_holds(wallet_id, grant_id, cents) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (wallet_id, grant_id) DO UPDATE"
        " SET cents = cents + excluded.cents",
    [STMT_GRANT_HOLDS_DROP_EMPTY] = "DELETE FROM grant_holds"
                                    " WHERE wallet_id = ?1 AND grant_id = ?2 AND cents = 0",
    /* a wallet's open holds: few (a week at most), found through authorizations_due */
    [STMT_AUTH_OPEN_IN_WALLET] =
        "SELECT a.lago_id FROM authorizations a INDEXED BY authorizations_due"
        " WHERE a.status = 1 AND a.org_id = ?1 AND EXISTS (SELECT 1 FROM authorization_holds h"
        "  WHERE h.authorization_id = a.id AND h.wallet_id = ?2 AND h.cents > 0)"
        " ORDER BY a.id LIMIT ?3",
    /* open holds are few (a week at most), found through authorizations_due; ?2: the bound,
     * NULL for none; a hold past its expiry (the sweep not come yet) stays so */
    [STMT_AUTH_REBOUND] =
        "UPDATE authorizations SET expires_at = MIN(COALESCE(asked_expires_at, expires_at),"
        " COALESCE(?2, COALESCE(asked_expires_at, expires_at))), updated_at = ?3"
        " WHERE status = 1 AND expires_at > ?3"
        " AND expires_at != MIN(COALESCE(asked_expires_at, expires_at),"
        " COALESCE(?2, COALESCE(asked_expires_at, expires_at)))"
        " AND (customer_id, external_subscription_id) ="
        " (SELECT customer_id, external_id FROM subscriptions WHERE id = ?1)",
    [STMT_AUTH_OPEN_OF_SUBSCRIPTION] =
        "SELECT lago_id FROM authorizations WHERE status = 1 AND org_id = ?1"
        " AND (customer_id, external_subscription_id) ="
        " (SELECT customer_id, external_id FROM subscriptions WHERE id = ?2)"
        " ORDER BY id LIMIT ?3",
    [STMT_AUTH_OPEN_OF_CODE] = "SELECT lago_id FROM authorizations WHERE status = 1"
                               " AND org_id = ?1 AND code = ?2 ORDER BY id LIMIT ?3",
    /* ?4 (here and in the other *_DUE): the customers the sweep passes over, a JSON array of
     * ids or NULL (engine/sweep_quarantine.h): what is due of theirs does not keep coming back */
    [STMT_AUTH_DUE] = "SELECT org_id, lago_id, 0, customer_id FROM authorizations"
                      " WHERE status = 1 AND expires_at <= ?1 AND org_id = ?3"
                      " AND (?4 IS NULL OR customer_id NOT IN (SELECT value FROM json_each(?4)))"
                      " ORDER BY expires_at LIMIT ?2",
    /* A grant past its expiry keeps what open holds reserve of it (wallet_book_expire_unheld):
     * it is due only while it holds more than that. */
    [STMT_GRANTS_DUE] =
        "SELECT t.org_id, w.lago_id, t.id, w.customer_id"
        " FROM wallet_transactions t JOIN wallets w ON w.id = t.wallet_id"
        " WHERE t.remaining_cents > 0 AND t.expiration_at IS NOT NULL"
        " AND t.expiration_at <= ?1 AND t.org_id = ?3"
        " AND (?4 IS NULL OR w.customer_id NOT IN (SELECT value FROM json_each(?4)))"
        " AND t.remaining_cents > COALESCE((SELECT g.cents FROM grant_holds g"
        "  WHERE g.wallet_id = t.wallet_id AND g.grant_id = t.id), 0)"
        " ORDER BY t.expiration_at LIMIT ?2",
    [STMT_WALLETS_DUE] =
        "SELECT w.org_id, w.lago_id, 0, w.customer_id FROM wallets w WHERE w.terminated_at IS NULL"
        " AND w.expiration_at IS NOT NULL AND w.expiration_at <= ?1 AND w.org_id = ?3"
        " AND (?4 IS NULL OR w.customer_id NOT IN (SELECT value FROM json_each(?4)))"
        " ORDER BY w.expiration_at LIMIT ?2",
    [STMT_PERIODS_DUE] =
        "SELECT p.org_id, '', p.subscription_id, s.customer_id"
        " FROM period_settlements p JOIN subscriptions s ON s.id = p.subscription_id"
        " WHERE p.org_id = ?3 AND p.due_at <= ?1"
        " AND (?4 IS NULL OR s.customer_id NOT IN (SELECT value FROM json_each(?4)))"
        " ORDER BY p.due_at LIMIT ?2",
    [STMT_PERIOD_SETTLEMENT_SET] = "INSERT OR REPLACE INTO period_settlements(subscription_id,"
                                   " org_id, due_at) VALUES (?1, ?2, ?3)",
    [STMT_PERIOD_SETTLEMENT_DROP] = "DELETE FROM period_settlements WHERE subscription_id = ?1",
    [STMT_PERIOD_SETTLEMENT_DROP_DUE] = "DELETE FROM period_settlements WHERE subscription_id = ?1"
                                        " AND due_at <= ?2",
    [STMT_PERIOD_SETTLEMENT_MOVE] = "UPDATE period_settlements SET due_at = ?3"
                                    " WHERE subscription_id = ?1 AND due_at > ?2",
    [STMT_JOURNAL_APPEND] = "INSERT INTO wallet_journal(data) VALUES (?1)",
    [STMT_JOURNAL_CLEAR] = "DELETE FROM wallet_journal",
    [STMT_JOURNAL_DROP_BEFORE] = "DELETE FROM wallet_journal WHERE id < ?1",
    [STMT_JOURNAL_COUNT] = "SELECT COUNT(*) FROM wallet_journal",
    [STMT_JOURNAL_NEWEST_FIRST] = "SELECT data FROM wallet_journal ORDER BY id DESC",
    [STMT_CHARGE_DEBITS_OF_CUSTOMER] =
        "SELECT subscription_id, charge_lago_id, period_from, charged_cents, fundings,"
        " posted_tax_cents, opened_event_id, opened_cents, seq FROM charge_debits"
        " WHERE org_id = ?1 AND customer_id = ?2 ORDER BY period_from, seq",
    [STMT_DEBITED_SUBSCRIPTIONS] =
        "SELECT DISTINCT d.subscription_id FROM charge_debits d"
        " JOIN subscriptions s ON s.id = d.subscription_id"
        " WHERE d.org_id = ?1 AND (?3 = 0 OR d.customer_id = ?3) AND d.charged_cents <> 0"
        " AND (s.terminated_at IS NULL OR s.terminated_at > ?2)"
        " AND (s.canceled_at IS NULL OR s.canceled_at > ?2) ORDER BY d.subscription_id",
};

struct store_reader {
    struct store_conn conn;
};

void store_set_err(char err[STORE_ERR_MAX], const char *what, const char *detail)
{
    /* A long path may cut the message short; the start names the file and is enough. */
    if (snprintf(err, STORE_ERR_MAX, "%s: %s", what, detail) >= STORE_ERR_MAX)
        err[STORE_ERR_MAX - 1] = '\0';
}

/* DATA_DIR/FILE, refused when longer than STORE_PATH_MAX. */
bool store_data_path(char out[STORE_PATH_MAX], const char *data_dir, const char *file,
                     char err[STORE_ERR_MAX])
{
    int n = snprintf(out, STORE_PATH_MAX, "%s/%s", data_dir, file);
    if (n < 0 || n >= STORE_PATH_MAX) {
        store_set_err(err, "data directory", "path too long");
        return false;
    }
    return true;
}

/* Returns the statement, reset and with its bindings cleared; NULL if it cannot prepare. */
sqlite3_stmt *store_stmt(struct store_conn *c, enum stmt_id id)
{
    sqlite3_stmt *s = c->stmts[id];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    if (sqlite3_prepare_v3(c->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id], NULL) !=
        SQLITE_OK)
        return NULL;
    return c->stmts[id];
}

/* Runs a statement without parameters that returns no rows. */
enum store_status store_exec_stmt(struct store_conn *c, enum stmt_id id)
{
    sqlite3_stmt *s = store_stmt(c, id);
    return s ? step_done(s) : STORE_ERROR;
}

static void conn_close(struct store_conn *c)
{
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close(c->db);
}

const char *store_errmsg(struct store_conn *c)
{
    return sqlite3_errmsg(c->db);
}

struct store_conn *store_conn(struct store *st)
{
    return &st->conn;
}

struct store_conn *store_reader_conn(struct store_reader *r)
{
    return &r->conn;
}

/* ---- the disk's and the file's failures ---------------------------------------------------- */

/*
 * SQLite reports most errors through its log callback, with the code that caused it (a
 * statement that aborts, a read that finds a damaged page), whereas a connection's own error
 * code is overwritten by the statements that follow (a savepoint's rollback); a COMMIT's
 * failure, which it does not log, store_commit adds. Only the codes
 * that say the disk or the file failed are kept; the message is never kept or printed (it may
 * hold SQL and values).
 */
static _Atomic int disk_error;
pthread_once_t store_watch_once = PTHREAD_ONCE_INIT;
/* The last failure of any kind on this thread's connections (SQLite calls the log callback
 * on the thread that met it), for a reader's 500 to name: store_take_thread_error. */
static _Thread_local int thread_error;

static void log_error(void *ctx, int code, const char *message)
{
    (void)ctx;
    (void)message;
    switch (code & 0xff) {
    case SQLITE_NOTICE:
    case SQLITE_WARNING:
    case SQLITE_SCHEMA: break; /* not failures (a statement re-prepared is retried) */
    default: thread_error = code & 0xff; break;
    }
    switch (code & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_NOMEM: atomic_store(&disk_error, code & 0xff); break;
    default: break; /* constraints, notices, warnings: the commands' own business */
    }
}

/* Before SQLite initialises (it takes the callback only then, before 3.42). */
void store_watch_errors(void)
{
    sqlite3_config(SQLITE_CONFIG_LOG, log_error, NULL);
}

int store_take_disk_error(void)
{
    return atomic_exchange(&disk_error, 0);
}

int store_take_thread_error(void)
{
    int code = thread_error;
    thread_error = 0;
    return code;
}

const char *store_error_name(int code)
{
    switch (code) {
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    default: return "SQLITE_ERROR";
    }
}

const char *store_error_text(int code)
{
    return sqlite3_errstr(code);
}

bool store_error_lasting(int code)
{
    return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

const char *store_error_advice(int code)
{
    switch (code) {
    case SQLITE_FULL:
        return "free space on the data directory's file system; writes resume by themselves";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return "the database file is damaged and retrying will not help: stop tallyd, run "
               "sqlite3 DATA/tally.db 'PRAGMA integrity_check' and restore from a backup with "
               "tally restore (REINDEX mends a damaged index)";
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        return "the database files cannot be written (owner, mode, a read-only mount): fix "
               "that; writes resume by themselves";
    case SQLITE_NOMEM: return "the process ran out of memory";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return "another process held the database longer than the 5 s wait (a sqlite3 shell "
               "in a transaction?): end that";
    case SQLITE_ERROR:
        return "a query failed on a database Tally can read: report it with this line";
    default:
        return "the disk failed a read or a write: check the kernel log (dmesg), the disk, and "
               "the process's file-size limit (ulimit -f)";
    }
}

/* ---- opening ------------------------------------------------------------------------------ */

/* The pid the lock file names (its holder's, or its last holder's), as text; "" if none. */
static void lock_holder(const char *lock_path, char pid[32])
{
    pid[0] = '\0';
    int fd = open(lock_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = pread(fd, pid, 31, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
    }
}

/* The message for a directory another process holds, naming it from the lock file when that
 * file is still there. */
static void set_in_use(char err[STORE_ERR_MAX], const char *data_dir, const char *lock_path)
{
    char pid[32];
    lock_holder(lock_path, pid);
    if (snprintf(err, STORE_ERR_MAX,
                 "the data directory %s is in use by another Tally process (pid %s, probably "
                 "tallyd); stop it first",
                 data_dir, pid[0] ? pid : "unknown") >= STORE_ERR_MAX)
        err[STORE_ERR_MAX - 1] = '\0';
}

/*
 * Takes the directory's flock. Held by a process whose tallyd is gone (the lock file names a
 * pid that no longer runs), it is a running snapshot's child, which dies with the writer that
 * forked it (PR_SET_PDEATHSIG) a moment later: waited for, up to STORE_LOCK_ORPHAN_WAIT_MS.
 * (A restart at once after a SIGKILL found it held once, a restart-twin audit saw.)
 */
static bool lock_directory(int dir_fd, const char *lock_path)
{
    for (int waited = 0;; waited += STORE_LOCK_RETRY_MS) {
        if (flock(dir_fd, LOCK_EX | LOCK_NB) == 0)
            return true;
        char pid[32];
        lock_holder(lock_path, pid);
        char *end;
        long holder = strtol(pid, &end, 10);
        bool gone =
            pid[0] && *end == '\0' && holder > 0 && kill((pid_t)holder, 0) != 0 && errno == ESRCH;
        if (!gone || waited >= STORE_LOCK_ORPHAN_WAIT_MS)
            return false;
        nanosleep(&(struct timespec){.tv_nsec = STORE_LOCK_RETRY_MS * 1000000L}, NULL);
    }
}

/*
 * The exclusion is an flock on the data directory itself: it cannot be deleted from under a
 * running tallyd the way a lock file can (tally.lock outlives every stop and holds the last
 * pid, so it looks stale; an audit removed it and a second tallyd then wrote the same store).
 * flock locks are apart from the POSIX (fcntl) locks SQLite takes on tally.db, and SQLite
 * never locks the directory. tally.lock stays, for the holder's pid in the refusal and, also
 * flocked, to keep out an older Tally that locks only it.
 */
bool store_lock(const char *data_dir, struct store_dir_lock *lock, char err[STORE_ERR_MAX])
{
    *lock = STORE_DIR_LOCK_NONE;
    char path[STORE_PATH_MAX];
    if (!store_data_path(path, data_dir, STORE_LOCK_FILE, err))
        return false;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        /* only the directory itself is made: say so when its parent is what is missing */
        if (snprintf(err, STORE_ERR_MAX, "cannot create the data directory %s: %s%s", data_dir,
                     strerror(errno),
                     errno == ENOENT ? " (its parent directory must exist)" : "") >= STORE_ERR_MAX)
            err[STORE_ERR_MAX - 1] = '\0';
        return false;
    }
    lock->dir_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock->dir_fd < 0) {
        store_set_err(err, data_dir, strerror(errno));
        goto fail;
    }
    if (!lock_directory(lock->dir_fd, path)) {
        set_in_use(err, data_dir, path);
        goto fail;
    }
    /* tally.lock's flock keeps out a Tally from before the directory lock (which locks only
     * the file), during an upgrade */
    lock->file_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock->file_fd < 0) {
        store_set_err(err, path, strerror(errno));
        goto fail;
    }
    if (flock(lock->file_fd, LOCK_EX | LOCK_NB) != 0) {
        set_in_use(err, data_dir, path);
        goto fail;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(lock->file_fd, 0) != 0 || pwrite(lock->file_fd, pid, (size_t)len, 0) != len) {
        store_set_err(err, path, strerror(errno));
        goto fail;
    }
    return true;
fail:
    store_unlock(lock);
    return false;
}

void store_unlock(struct store_dir_lock *lock)
{
    /* closing releases the flocks */
    if (lock->file_fd >= 0)
        close(lock->file_fd);
    if (lock->dir_fd >= 0)
        close(lock->dir_fd);
    *lock = STORE_DIR_LOCK_NONE;
}

/* The database's file name, for messages ("file is not a database" said which). */
const char *store_db_name(sqlite3 *db)
{
    const char *name = sqlite3_db_filename(db, "main");
    return name && *name ? name : "database";
}

bool store_exec_script(sqlite3 *db, const char *script, char err[STORE_ERR_MAX])
{
    char *msg = NULL;
    if (sqlite3_exec(db, script, NULL, NULL, &msg) == SQLITE_OK)
        return true;
    store_set_err(err, store_db_name(db), msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return false;
}

/*
 * The database and its -wal and -shm files are the owner's alone (0600), as the lock and the
 * snapshots are: SQLite makes the database 0644 (less the umask) and gives its -wal and -shm
 * the database's mode, so a customer's email could be read from them by any local user in a
 * data directory made beforehand (an audit's). Made so before SQLite opens it, and made so
 * again for files an older Tally left open. The writer's, which creates.
 */
static bool make_private(const char *data_dir, char err[STORE_ERR_MAX])
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char path[STORE_PATH_MAX], name[64];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(name, sizeof name, "%s%s", STORE_DB_FILE, suffixes[i]);
        if (!store_data_path(path, data_dir, name, err))
            return false;
        int fd = open(path, O_RDWR | O_CLOEXEC | (i == 0 ? O_CREAT : 0), 0600);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 || fchmod(fd, 0600) != 0) {
            store_set_err(err, path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return false;
        }
        close(fd);
    }
    return true;
}

/* vfs: NULL for SQLite's default, or WALBUF_VFS_NAME (registered) for the writer's. */
static sqlite3 *open_db(const char *data_dir, int flags, const char *vfs, char err[STORE_ERR_MAX])
{
    char path[STORE_PATH_MAX];
    if (!store_data_path(path, data_dir, STORE_DB_FILE, err))
        return NULL;
    sqlite3 *db = NULL;
    if ((flags & SQLITE_OPEN_CREATE) && !make_private(data_dir, err))
        return NULL;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK) {
        store_set_err(err, path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static struct store *open_store(const char *data_dir, bool may_upgrade, char err[STORE_ERR_MAX])
{
    struct store *st = calloc(1, sizeof *st);
    if (!st) {
        store_set_err(err, "store", "out of memory");
        return NULL;
    }
    st->wal_fd = -1;
    if (strlen(data_dir) >= sizeof st->data_dir) {
        store_set_err(err, "data directory", "path too long");
        free(st);
        return NULL;
    }
    strcpy(st->data_dir, data_dir);
    pthread_once(&store_watch_once, store_watch_errors);
    /* the writer's log is written a commit at a time (store/walbuf) */
    if (!walbuf_register()) {
        store_set_err(err, "store", "cannot register the write-ahead log's VFS");
        free(st);
        return NULL;
    }
    st->conn.db =
        open_db(data_dir, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, WALBUF_VFS_NAME, err);
    if (!st->conn.db)
        goto fail;
    /* WAL + synchronous=FULL: every COMMIT fsyncs the log before returning. The log is cut
     * back to 64 MiB when a checkpoint lets it restart: one large transaction (a migration)
     * would otherwise leave a file that size for good. */
    if (!store_exec_script(st->conn.db,
                           "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                           " PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;"
                           " PRAGMA journal_size_limit = 67108864;",
                           err))
        goto fail;
    if (!store_migrate(st->conn.db, may_upgrade, &st->found_version, err))
        goto fail;
    return st;
fail:
    store_close(st);
    return NULL;
}

struct store *store_open(const char *data_dir, char err[STORE_ERR_MAX])
{
    return open_store(data_dir, true, err);
}

struct store *store_open_current(const char *data_dir, char err[STORE_ERR_MAX])
{
    return open_store(data_dir, false, err);
}

const char *store_data_dir(const struct store *st)
{
    return st->data_dir;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    conn_close(&st->conn);
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    buf_free(&st->block);
    free(st);
}

bool store_defer_sync(struct store *st, char err[STORE_ERR_MAX])
{
    assert(st->wal_fd < 0);
    /* NORMAL in WAL mode: a COMMIT writes the log without fsync; checkpoints still fsync the
     * log before copying it into the database, and the database after, so the file stays
     * whole whatever happens. Durability is store_sync's. */
    if (!store_exec_script(st->conn.db, "PRAGMA synchronous = NORMAL", err))
        return false;
    /* The log exists once the database was read in WAL mode (store_open did), and is never
     * removed while this connection is open: SQLite deletes it only when the last one closes. */
    const char *wal = sqlite3_filename_wal(sqlite3_db_filename(st->conn.db, "main"));
    st->wal_fd = wal ? open(wal, O_RDONLY | O_CLOEXEC) : -1;
    if (st->wal_fd < 0) {
        store_set_err(err, wal ? wal : "the write-ahead log", strerror(errno));
        char ignored[STORE_ERR_MAX]; /* the message above is the one that matters */
        store_exec_script(st->conn.db, "PRAGMA synchronous = FULL", ignored);
        return false;
    }
    return true;
}

enum store_status store_sync(struct store *st)
{
    assert(st->wal_fd >= 0);
    return fdatasync(st->wal_fd) == 0 ? STORE_OK : STORE_ERROR;
}

struct store_reader *store_reader_open(const char *data_dir, char err[STORE_ERR_MAX])
{
    struct store_reader *r = calloc(1, sizeof *r);
    if (!r) {
        store_set_err(err, "store", "out of memory");
        return NULL;
    }
    r->conn.db = open_db(data_dir, SQLITE_OPEN_READONLY, NULL, err);
    if (!r->conn.db) {
        free(r);
        return NULL;
    }
    return r;
}

void store_reader_close(struct store_reader *r)
{
    if (!r)
        return;
    conn_close(&r->conn);
    free(r);
}

/* Statements allowed to read a whole table: they exist to visit every row (the wallet
 * journal holds a second or so of records, read whole only to recover them). */
static bool may_scan(enum stmt_id id)
{
    return id == STMT_ORG_EACH || id == STMT_EVENT_IDENTITIES || id == STMT_JOURNAL_COUNT ||
           id == STMT_JOURNAL_NEWEST_FIRST;
}

bool store_check_query_plans(struct store *st, char err[STORE_ERR_MAX])
{
    for (int id = STMT_ORG_INSERT; id < STMT_COUNT; id++) {
        char text[2048];
        const char *statement = sql[id];
        snprintf(text, sizeof text, "EXPLAIN QUERY PLAN %s", statement);
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(st->conn.db, text, -1, &s, NULL) != SQLITE_OK) {
            store_set_err(err, statement, sqlite3_errmsg(st->conn.db));
            return false;
        }
        bool ok = true;
        while (ok && sqlite3_step(s) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(s, 3);
            /* a multi-row VALUES list is "SCAN n CONSTANT ROWS", a filter's json_each over a
             * parameter "SCAN json_each VIRTUAL TABLE": no stored table is read */
            bool table_scan = detail && strncmp(detail, "SCAN ", 5) == 0 &&
                              !strstr(detail, "CONSTANT ROW") && !strstr(detail, "VIRTUAL TABLE");
            if (table_scan && !may_scan((enum stmt_id)id)) {
                store_set_err(err, statement, detail);
                ok = false;
            }
        }
        sqlite3_finalize(s);
        if (!ok)
            return false;
    }
    return true;
}

/* ---- transactions ------------------------------------------------------------------------- */

enum store_status store_begin(struct store *st)
{
    return store_exec_stmt(&st->conn, STMT_BEGIN);
}

enum store_status store_commit(struct store *st)
{
    enum store_status s = store_exec_stmt(&st->conn, STMT_COMMIT);
    /* a COMMIT that fails writing (a full disk) sets its code without SQLite's log */
    if (s != STORE_OK)
        log_error(NULL, sqlite3_errcode(st->conn.db), NULL);
    return s;
}

void store_rollback(struct store *st)
{
    store_exec_stmt(&st->conn, STMT_ROLLBACK);
}

enum store_status store_savepoint(struct store *st)
{
    return store_exec_stmt(&st->conn, STMT_SAVEPOINT);
}

enum store_status store_savepoint_release(struct store *st)
{
    return store_exec_stmt(&st->conn, STMT_RELEASE);
}

enum store_status store_savepoint_undo(struct store *st)
{
    return store_exec_stmt(&st->conn, STMT_ROLLBACK_TO);
}

void store_savepoint_rollback(struct store *st)
{
    /* ROLLBACK TO keeps the savepoint open; RELEASE closes it. */
    store_exec_stmt(&st->conn, STMT_ROLLBACK_TO);
    store_exec_stmt(&st->conn, STMT_RELEASE);
}

/* ---- helpers for reading rows -------------------------------------------------------------- */

/* Runs a write whose one parameter is `value`. */
enum store_status store_exec_with_int(struct store *st, enum stmt_id id, int64_t value)
{
    sqlite3_stmt *s = store_stmt(&st->conn, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, value);
    return step_done(s);
}

/* Runs a write whose two parameters are ?1 (a row) and ?2 (an instant: deletions,
 * terminations; or an amount). */
enum store_status store_exec_with_ints(struct store *st, enum stmt_id id, int64_t row,
                                       int64_t value)
{
    sqlite3_stmt *s = store_stmt(&st->conn, id);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, row);
    sqlite3_bind_int64(s, 2, value);
    return step_done(s);
}

/* ---- pages of a list ---------------------------------------------------------------------- */

static void bind_params(sqlite3_stmt *s, const struct page_query *q)
{
    for (int i = 0; i < q->param_count; i++) {
        if (q->params[i].is_text)
            bind_text(s, i + 1, q->params[i].text);
        else
            sqlite3_bind_int64(s, i + 1, q->params[i].value);
    }
}

enum store_status store_page_of(struct store_conn *c, const struct page_query *q, int64_t offset,
                                int64_t limit, void **out, size_t *count, int64_t *total,
                                struct arena *a)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *s = store_stmt(c, q->count_stmt);
    if (!s)
        return STORE_ERROR;
    bind_params(s, q);
    enum store_status r = read_number(s, total);
    if (r != STORE_OK)
        return STORE_ERROR;
    if (limit <= 0 || offset >= *total)
        return STORE_OK;
    int64_t n = *total - offset < limit ? *total - offset : limit;
    unsigned char *items = arena_alloc(a, q->item_size * (size_t)n);
    if (!items || !(s = store_stmt(c, q->page_stmt)))
        return STORE_ERROR;
    bind_params(s, q);
    sqlite3_bind_int64(s, q->param_count + 1, limit);
    sqlite3_bind_int64(s, q->param_count + 2, offset);
    size_t got = 0;
    int rc = SQLITE_ROW;
    while (got < (size_t)n && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!q->read(s, items + got * q->item_size, a)) {
            sqlite3_reset(s);
            return STORE_ERROR;
        }
        got++;
    }
    sqlite3_reset(s);
    /* fewer rows than counted is a list that shrank meanwhile; an error is not its end (a code
     * review found a failed step answered as a short page, and a writer's lookup of every
     * organization tax stepping past the rows it lost) */
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return STORE_ERROR;
    *out = items;
    *count = got;
    return STORE_OK;
}

/* ---- organizations ------------------------------------------------------------------------ */

enum store_status store_org_insert(struct store *st, const char *name, const char *api_key_hash_hex,
                                   bool has_test_clock, tally_time test_clock_now,
                                   tally_time created_at, int64_t *id_out)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_ORG_INSERT);
    if (!s)
        return STORE_ERROR;
    bind_text(s, 1, name);
    bind_text(s, 2, api_key_hash_hex);
    sqlite3_bind_int(s, 3, has_test_clock);
    sqlite3_bind_int64(s, 4, test_clock_now);
    sqlite3_bind_int64(s, 5, created_at);
    if (step_done(s) != STORE_OK)
        return STORE_ERROR;
    *id_out = sqlite3_last_insert_rowid(st->conn.db);
    return STORE_OK;
}

static void read_org(sqlite3_stmt *s, struct store_org *o)
{
    o->id = sqlite3_column_int64(s, 0);
    o->name = (const char *)sqlite3_column_text(s, 1);
    o->has_test_clock = sqlite3_column_int(s, 2) != 0;
    o->test_clock_now = sqlite3_column_int64(s, 3);
    o->created_at = sqlite3_column_int64(s, 4);
    o->last_customer_sequential_id = sqlite3_column_int64(s, 5);
    const char *days = (const char *)sqlite3_column_text(s, 6);
    if (!days || !wallet_reminder_days_parse(days, o->reminder_days, &o->reminder_count))
        wallet_reminder_days_parse(WALLET_REMINDER_DAYS_DEFAULT, o->reminder_days,
                                   &o->reminder_count);
}

enum store_status store_org_each(struct store_conn *c,
                                 void (*fn)(const struct store_org *org, void *ctx), void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_ORG_EACH);
    if (!s)
        return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_org o;
        read_org(s, &o);
        fn(&o, ctx);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static enum store_status org_query(struct store_conn *c, sqlite3_stmt *s, struct store_org *out,
                                   struct arena *a)
{
    enum store_status r = step_one(s);
    if (r == STORE_OK) {
        read_org(s, out);
        out->name = column_text(s, 1, a);
    }
    sqlite3_reset(s);
    (void)c;
    return r;
}

enum store_status store_org_by_key_hash(struct store_conn *c, const char *api_key_hash_hex,
                                        struct store_org *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_ORG_BY_KEY);
    if (!s)
        return STORE_ERROR;
    bind_text(s, 1, api_key_hash_hex);
    return org_query(c, s, out, a);
}

enum store_status store_org_get(struct store_conn *c, int64_t org_id, struct store_org *out,
                                struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_ORG_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    return org_query(c, s, out, a);
}

enum store_status store_org_set_test_clock(struct store *st, int64_t org_id, tally_time now)
{
    return store_exec_with_ints(st, STMT_ORG_SET_CLOCK, org_id, now);
}

enum store_status store_org_set_reminder_days(struct store *st, int64_t org_id, const char *days)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_ORG_SET_REMINDERS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, days);
    return step_done(s);
}

enum store_status store_org_set_key_hash(struct store *st, int64_t org_id,
                                         const char *api_key_hash_hex)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_ORG_SET_KEY);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, api_key_hash_hex);
    enum store_status status = step_done(s);
    if (status == STORE_OK && sqlite3_changes(st->conn.db) == 0)
        return STORE_NOT_FOUND;
    return status;
}

/* ---- idempotency -------------------------------------------------------------------------- */

enum store_status store_idempotency_get(struct store_conn *c, int64_t org_id, const char *key,
                                        struct store_idempotent_answer *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_IDEM_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, key);
    enum store_status r = step_one(s);
    if (r == STORE_OK) {
        const void *hash = sqlite3_column_blob(s, 0);
        if (sqlite3_column_bytes(s, 0) == (int)sizeof out->request_hash && hash)
            memcpy(out->request_hash, hash, sizeof out->request_hash);
        else
            memset(out->request_hash, 0, sizeof out->request_hash);
        out->http_status = sqlite3_column_int(s, 1);
        const void *body = sqlite3_column_blob(s, 2);
        out->body_len = (size_t)sqlite3_column_bytes(s, 2);
        out->body = arena_strndup(a, body ? body : "", out->body_len);
        if (!out->body)
            r = STORE_ERROR;
    }
    sqlite3_reset(s);
    return r;
}

enum store_status store_idempotency_put(struct store *st, int64_t org_id, const char *key,
                                        const struct store_idempotent_answer *answer,
                                        tally_time created_at)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_IDEM_PUT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, key);
    sqlite3_bind_blob(s, 3, answer->request_hash, sizeof answer->request_hash, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, answer->http_status);
    sqlite3_bind_blob(s, 5, answer->body, (int)answer->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, created_at);
    return step_done(s);
}

/* ---- settings ----------------------------------------------------------------------------- */

enum store_status store_setting_get(struct store_conn *c, const char *name, void *value, size_t len)
{
    sqlite3_stmt *s = store_stmt(c, STMT_SETTING_GET);
    if (!s)
        return STORE_ERROR;
    bind_text(s, 1, name);
    enum store_status r = step_one(s);
    if (r == STORE_OK && (size_t)sqlite3_column_bytes(s, 0) != len)
        r = STORE_ERROR;
    if (r == STORE_OK)
        memcpy(value, sqlite3_column_blob(s, 0), len);
    sqlite3_reset(s);
    return r;
}

enum store_status store_setting_put(struct store *st, const char *name, const void *value,
                                    size_t len)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_SETTING_PUT);
    if (!s)
        return STORE_ERROR;
    bind_text(s, 1, name);
    sqlite3_bind_blob(s, 2, value, (int)len, SQLITE_STATIC);
    return step_done(s);
}

int64_t store_changes(struct store *st)
{
    return sqlite3_total_changes64(st->conn.db);
}
