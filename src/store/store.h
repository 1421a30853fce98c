/*
 * store/: what Tally keeps on disk, behind a narrow interface. SQL never leaves store/.
 *
 * The only implementation today is SQLite (store.c) in WAL mode with synchronous=FULL, so a
 * COMMIT returns only once the write-ahead log is fsynced; the engine's store instead syncs
 * the log itself (store_defer_sync, store_sync) so that a fsync overlaps the next group's
 * work. Either way the engine acknowledges nothing before the fsync. Two kinds of handle:
 *
 *  - struct store: the one read-write connection. Only the engine's writer thread uses it
 *    (the CLI uses it too, but only on a data directory no tallyd holds: see store_lock).
 *  - struct store_reader: read-only connections for HTTP threads. WAL gives each read a
 *    consistent snapshot and readers never block the writer.
 *
 * Both kinds answer the same queries (customer_get, ...) through the functions below that
 * take a `struct store_conn *`: get one with store_conn / store_reader_conn.
 *
 * Memory: strings returned in structs are allocated in the arena the caller passes and live
 * as long as it.
 */
#ifndef TALLY_STORE_STORE_H
#define TALLY_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/applied_coupon.h"
#include "core/catalog.h"
#include "core/customer.h"
#include "core/subscription.h"
#include "core/ledger.h"
#include "core/money.h"
#include "core/wallet.h"
#include "core/timestamp.h"
#include "util/arena.h"

#define STORE_ERR_MAX 512
#define STORE_PATH_MAX 4096 /* a data directory path plus its file name */
#define STORE_DB_FILE "tally.db"
#define STORE_LOCK_FILE "tally.lock"
/* How long a start waits for the lock of a tallyd that is gone, which its snapshot's child
 * holds until it dies with it (store_lock), and how often it looks. */
#define STORE_LOCK_ORPHAN_WAIT_MS 3000
#define STORE_LOCK_RETRY_MS 50

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,
    STORE_ERROR, /* the database failed: disk, corruption; the message says which */
};

struct store;
struct store_reader;
struct store_conn;

/* ---- opening ---------------------------------------------------------------------------- */

/* A held data-directory lock: the directory's descriptor and tally.lock's, both flocked,
 * owned by whoever store_lock filled it for until store_unlock. -1: not held. */
struct store_dir_lock {
    int dir_fd, file_fd;
};
#define STORE_DIR_LOCK_NONE ((struct store_dir_lock){.dir_fd = -1, .file_fd = -1})

/*
 * Locks the data directory (an exclusive flock on the directory itself, and on its tally.lock,
 * which names the holder's pid; held until store_unlock), so that one process at a time owns
 * a data directory, even after someone removes tally.lock. True with *lock filled; false with
 * *lock STORE_DIR_LOCK_NONE and a message naming the process that holds it. Any thread.
 */
bool store_lock(const char *data_dir, struct store_dir_lock *lock, char err[STORE_ERR_MAX]);
/* Releases *lock (closing both descriptors releases the flocks) and sets it to
 * STORE_DIR_LOCK_NONE; nothing for a lock not held. */
void store_unlock(struct store_dir_lock *lock);

/*
 * Opens (creating if needed) DATA_DIR/tally.db, applies pending migrations in order and
 * records the schema version. Refuses a database written by a newer Tally. Returns NULL
 * with a message on failure. The caller owns the result (store_close).
 */
struct store *store_open(const char *data_dir, char err[STORE_ERR_MAX]);
/* store_open for a reader that must not upgrade: a database of an older schema is refused
 * with a message saying what upgrades it (an upgrade cannot be undone). */
struct store *store_open_current(const char *data_dir, char err[STORE_ERR_MAX]);
void store_close(struct store *st);
/* The directory store_open was given (borrowed until store_close): files that live beside the
 * database, such as the engine's snapshot, go there. */
const char *store_data_dir(const struct store *st);

/*
 * Durability in two steps, for a writer that overlaps them (engine/syncer.h): after this, a
 * COMMIT on `st` writes the log without waiting for the disk, and store_sync makes every
 * commit that returned before it was called durable (one fdatasync of the log). Without it,
 * every COMMIT waits for its own fsync. Returns false with a message if the log cannot be
 * opened (the store keeps syncing each commit). Writer thread, once, before any transaction.
 */
bool store_defer_sync(struct store *st, char err[STORE_ERR_MAX]);
/* Any thread, alongside the writer's transactions; STORE_ERROR if the disk refused. */
enum store_status store_sync(struct store *st);
int store_schema_version(struct store *st);
/* The schema the database had when store_open found it, before it was upgraded: 0 when it was
 * new (made by that open, or an empty file), so a caller can say a store was made or upgraded. */
int store_found_schema_version(const struct store *st);
/* The newest schema this build knows. */
int store_latest_schema_version(void);

/*
 * Checks that no statement reads a whole table where an index should serve (a per-row cost
 * that grows with the table: the kind of bug a benchmark finds and a test should). Tests only.
 */
bool store_check_query_plans(struct store *st, char err[STORE_ERR_MAX]);

/*
 * Restores a backup: puts a copy of the SQLite database file `backup` in DATA_DIR as its
 * tally.db, for a caller that holds store_lock. The copy is made first (DATA_DIR/tally.db.
 * restoring, synced) and checked: a Tally store (schema version 1 to this build's) whose
 * PRAGMA quick_check is ok. Only then are the files of the store it replaces removed:
 * tally.db-wal, tally.db-shm, tally.db-journal and each of `also_remove` (names in DATA_DIR,
 * NULL-terminated, or NULL), the directory synced, and the copy renamed over tally.db and
 * the directory synced again. A crashed tallyd's log left beside the restored file would be
 * replayed onto it at the next open and damage it (an audit's restore over a SIGKILLed
 * directory: a store tallyd served with 500s). Refused, leaving DATA_DIR as it was: a file
 * that is not such a database, DATA_DIR's own tally.db, and a backup with a non-empty -wal
 * beside it (changes the file alone lacks). False with a message; on success *result says
 * the backup's schema version and which files were removed (static names, or also_remove's).
 */
#define STORE_RESTORE_REMOVED_MAX 8
struct store_restore_result {
    int schema_version;
    const char *removed[STORE_RESTORE_REMOVED_MAX];
    size_t removed_count;
};
bool store_restore(const char *data_dir, const char *backup, const char *const *also_remove,
                   struct store_restore_result *result, char err[STORE_ERR_MAX]);

/*
 * Backs up DATA_DIR/tally.db into `file`, while a tallyd runs or not, without store_lock: the
 * database is opened read-only and copied in one read transaction (SQLite's VACUUM INTO), so
 * that tallyd's commits meanwhile neither disturb the copy nor are disturbed. The copy is
 * made as FILE.partial (0600, created exclusively), checked as store_restore checks a backup
 * (a Tally store of a known schema, PRAGMA quick_check), synced, named `file` without replacing
 * anything, and its directory synced. It stands alone: no -wal goes with it, and its journal
 * mode is rollback's (tallyd makes it WAL again at its first start on it). Refused: a `file`
 * that exists, one in DATA_DIR itself, a DATA_DIR with no tally.db (none is made), a leftover
 * FILE.partial (another backup to `file` running, or one that stopped half way). False with a
 * message, nothing of its own left behind; on success *result says the copy's schema version
 * and size.
 */
struct store_backup_result {
    int schema_version;
    int64_t bytes;
};
bool store_backup(const char *data_dir, const char *file, struct store_backup_result *result,
                  char err[STORE_ERR_MAX]);

/* Read-only connection on an opened data directory. Owned by the caller (store_reader_close). */
struct store_reader *store_reader_open(const char *data_dir, char err[STORE_ERR_MAX]);
void store_reader_close(struct store_reader *r);

struct store_conn *store_conn(struct store *st);
struct store_conn *store_reader_conn(struct store_reader *r);
/* The last error's text on this connection, for logs and 500 bodies. */
const char *store_errmsg(struct store_conn *c);

/*
 * The last failure of the disk or the database file SQLite met on any connection since the
 * last call (its primary result code: SQLITE_FULL, SQLITE_CORRUPT, SQLITE_IOERR, ...), or 0;
 * the call clears it. Watched from the first store_open. Any thread.
 */
int store_take_disk_error(void);
/*
 * The primary code of the last failure SQLite met on this thread's connections since the last
 * call (any kind: SQLITE_CORRUPT, SQLITE_BUSY, ...), or 0; the call clears it. What a reader
 * that failed says, after clearing it before its queries. Watched from the first store_open.
 */
int store_take_thread_error(void);
/* Such a code's name ("SQLITE_FULL"), SQLite's text for it ("database or disk is full"), and
 * what an operator does about it; static strings. Whether it lasts until someone mends the
 * file (a damaged database), rather than until the disk recovers. Any thread. */
const char *store_error_name(int code);
const char *store_error_text(int code);
const char *store_error_advice(int code);
bool store_error_lasting(int code);

/* ---- transactions (writer only) ---------------------------------------------------------- */

enum store_status store_begin(struct store *st);
/* Durable when it returns OK, unless store_defer_sync was called: then once store_sync is. */
enum store_status store_commit(struct store *st);
void store_rollback(struct store *st);
/* One command = one savepoint inside the group-commit transaction. */
enum store_status store_savepoint(struct store *st);
enum store_status store_savepoint_release(struct store *st);
/* Abandons the command: undoes its changes and closes its savepoint. */
void store_savepoint_rollback(struct store *st);
/* Undoes the command's changes but keeps its savepoint open (to record its refusal). */
enum store_status store_savepoint_undo(struct store *st);

/* ---- organizations ------------------------------------------------------------------------ */

/* The longest organization name (bytes): `tally org create` refuses a longer one. */
#define STORE_ORG_NAME_MAX 255

struct store_org {
    int64_t id;
    const char *name;
    bool has_test_clock;
    tally_time test_clock_now; /* meaningful when has_test_clock */
    tally_time created_at;
    int64_t last_customer_sequential_id;             /* 0 before the first customer */
    int32_t reminder_days[WALLET_REMINDER_DAYS_MAX]; /* expiry reminders, nearest first */
    size_t reminder_count;
};

enum store_status store_org_insert(struct store *st, const char *name, const char *api_key_hash_hex,
                                   bool has_test_clock, tally_time test_clock_now,
                                   tally_time created_at, int64_t *id_out);
/* Calls fn for each organization; strings live until fn returns. */
enum store_status store_org_each(struct store_conn *c,
                                 void (*fn)(const struct store_org *org, void *ctx), void *ctx);
enum store_status store_org_by_key_hash(struct store_conn *c, const char *api_key_hash_hex,
                                        struct store_org *out, struct arena *a);
enum store_status store_org_set_test_clock(struct store *st, int64_t org_id, tally_time now);
/* The organization's expiry reminders, as wallet_reminder_days_parse reads them ("30,7"). */
enum store_status store_org_set_reminder_days(struct store *st, int64_t org_id, const char *days);
enum store_status store_org_get(struct store_conn *c, int64_t org_id, struct store_org *out,
                                struct arena *a);
/* The code of a plan (live, the first by code) with a charge on the metric; STORE_NOT_FOUND
 * if none has one. The code is in `a`. */
enum store_status store_metric_plan(struct store_conn *c, int64_t org_id,
                                    const char *metric_lago_id, const char **plan_code,
                                    struct arena *a);
/* Replaces the organization's API key (its SHA-256); STORE_NOT_FOUND if there is no such id. */
enum store_status store_org_set_key_hash(struct store *st, int64_t org_id,
                                         const char *api_key_hash_hex);

/* ---- idempotency --------------------------------------------------------------------------- */

struct store_idempotent_answer {
    uint8_t request_hash[32];
    int http_status;
    const char *body; /* the first answer's bytes */
    size_t body_len;
};
enum store_status store_idempotency_get(struct store_conn *c, int64_t org_id, const char *key,
                                        struct store_idempotent_answer *out, struct arena *a);
enum store_status store_idempotency_put(struct store *st, int64_t org_id, const char *key,
                                        const struct store_idempotent_answer *answer,
                                        tally_time created_at);

/* ---- customers ---------------------------------------------------------------------------- */

/* Live (not deleted) customer by external id. */
enum store_status store_customer_get(struct store_conn *c, int64_t org_id, const char *external_id,
                                     struct customer *out, struct arena *a);
/* A customer by row id, deleted ones too (what an invoice was made out to). */
enum store_status store_customer_by_id(struct store_conn *c, int64_t id, struct customer *out,
                                       struct arena *a);
/* Whether any customer of the organization, live or deleted, has had this external id. */
enum store_status store_customer_external_id_known(struct store_conn *c, int64_t org_id,
                                                   const char *external_id, bool *known);
/* Inserts (c->id == 0, sets it) or updates the row. */
enum store_status store_customer_save(struct store *st, struct customer *c);
enum store_status store_customer_delete(struct store *st, int64_t customer_id, tally_time at);
/* A filter on whether a field is set: 0 (any) matches every row. */
enum store_presence { STORE_PRESENCE_ANY, STORE_PRESENCE_NONE, STORE_PRESENCE_SOME };
/* Lago's customer list filters; zero fields match every customer. */
struct store_customer_filter {
    const char *external_id; /* exact */
    /* JSON arrays of values, each matched exactly (country and currency in any case) */
    const char *account_types_json, *countries_json, *currencies_json, *states_json, *zipcodes_json;
    const char *search_pattern; /* a LIKE pattern ('\\' escapes), over names, email, ids */
    enum store_presence has_tax_identification_number, has_customer_type;
    const char *customer_type; /* exact */
    /* a JSON array of [key, value] pairs, all to hold: that key with that value, or, where
     * the value is "", no such key */
    const char *metadata_json;
};
/* A page of the live customers the filter matches, newest first; *total counts them all. */
enum store_status store_customer_list(struct store_conn *c, int64_t org_id,
                                      const struct store_customer_filter *f, int64_t offset,
                                      int64_t limit, struct customer **out, size_t *count,
                                      int64_t *total, struct arena *a);

/* ---- catalog (core/catalog.h) ------------------------------------------------------------ */

/* The live item of that kind and code (or lago_id). */
enum store_status store_catalog_get(struct store_conn *c, int64_t org_id, enum catalog_kind kind,
                                    const char *code, struct catalog_item *out, struct arena *a);
enum store_status store_catalog_get_by_lago_id(struct store_conn *c, int64_t org_id,
                                               enum catalog_kind kind, const char *lago_id,
                                               struct catalog_item *out, struct arena *a);
/* The item with that lago_id, live or deleted (a deleted one as it was when deleted): what
 * a subscription was subscribed to stays readable after its plan is gone, as Lago keeps
 * deleted plans for the subscriptions that had them. */
enum store_status store_catalog_get_any_by_lago_id(struct store_conn *c, int64_t org_id,
                                                   enum catalog_kind kind, const char *lago_id,
                                                   struct catalog_item *out, struct arena *a);
/* Inserts (it->id == 0, sets it) or updates code, body and updated_at. */
enum store_status store_catalog_save(struct store *st, struct catalog_item *it);
enum store_status store_catalog_delete(struct store *st, int64_t item_id, tally_time at);
/* A page of live items of a kind, newest first; *total counts them all. */
enum store_status store_catalog_list(struct store_conn *c, int64_t org_id, enum catalog_kind kind,
                                     int64_t offset, int64_t limit, struct catalog_item **out,
                                     size_t *count, int64_t *total, struct arena *a);
/* The same by `name` (ASCII letters in either case together), then newest first. */
enum store_status store_catalog_list_by_name(struct store_conn *c, int64_t org_id,
                                             enum catalog_kind kind, int64_t offset, int64_t limit,
                                             struct catalog_item **out, size_t *count,
                                             int64_t *total, struct arena *a);

/*
 * What names a tax in an organization, for its answer (Lago's V1::TaxSerializer counts): live
 * customers whose own tax_codes name the tax, and those with none (a tax applied to the
 * organization is theirs); live add-ons naming it; live plans and the subscriptions' own
 * plans of live plans (Lago's child plans) naming it themselves, in a charge (each counted) or
 * in their minimum commitment. Read at answer time, on a reader's connection: nothing keeps
 * these on writes. out[i] is codes[i]'s; all n are counted in one visit of the organization's
 * rows of each kind, so a page of taxes costs what one tax does.
 */
struct store_tax_usage {
    int64_t customers, untaxed_customers, add_ons, plans, charges, commitments;
};
enum store_status store_tax_usage(struct store_conn *c, int64_t org_id, const char *const *codes,
                                  size_t n, struct store_tax_usage *out);

/* ---- subscriptions (core/subscription.h) ------------------------------------------------- */

/* A subscription with what answers about it need from its customer. */
struct store_subscription {
    struct subscription sub;
    char customer_lago_id[UUID_TEXT];
    const char *customer_external_id;
    const char *customer_timezone;  /* NULL: UTC */
    const char *customer_tax_codes; /* the customer's own taxes (JSON array of codes), or NULL */
};

/* Inserts (sub->id == 0, sets it) or updates every field. */
enum store_status store_subscription_save(struct store *st, struct subscription *sub);
enum store_status store_subscription_get(struct store_conn *c, int64_t org_id, int64_t id,
                                         struct store_subscription *out, struct arena *a);
/*
 * The subscription with that external id that is not over at `now`: the active one, or the
 * pending one if none is active (a scheduled downgrade is pending beside its active one).
 */
enum store_status store_subscription_live(struct store_conn *c, int64_t org_id,
                                          const char *external_id, tally_time now,
                                          struct store_subscription *out, struct arena *a);
/*
 * A page of subscriptions, newest first, whose status at `now` is in status_mask (bit
 * 1 << enum subscription_status), of one customer (customer_id) or all (0).
 */
enum store_status store_subscription_list(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                          unsigned status_mask, tally_time now, int64_t offset,
                                          int64_t limit, struct store_subscription **out,
                                          size_t *count, int64_t *total, struct arena *a);
/* Lago's subscription filters: 0 and NULL fields match every subscription. */
struct store_subscription_filter {
    int64_t customer_id;
    unsigned status_mask; /* as store_subscription_list's */
    const char *plan_code, *external_id;
    const char *currency;         /* the plan's, overrides included */
    enum store_presence own_plan; /* made with plan_overrides (Lago's `overridden`) or not */
    /* the page in Lago's list order (SubscriptionsQuery: subscription_at, latest first, then
     * the newest made); else the newest made first, whose first row is the one made last */
    bool lago_order;
};
/* The same, with every filter. */
enum store_status store_subscription_find(struct store_conn *c, int64_t org_id,
                                          const struct store_subscription_filter *f, tally_time now,
                                          int64_t offset, int64_t limit,
                                          struct store_subscription **out, size_t *count,
                                          int64_t *total, struct arena *a);
/* A subscription's own plan (plan_overrides), as stored. */
struct store_own_plan {
    int64_t subscription_id;
    tally_time updated_at;
    const char *plan_body;
    const char *external_id;
    bool ended; /* terminated or canceled */
};
/*
 * Every subscription of the organization, whatever its status, with a plan of its own whose
 * stored text holds `containing` (NULL: every one); in `a`. A coarse filter: the caller reads
 * each body for what it is looking for.
 */
enum store_status store_subscription_own_plans(struct store_conn *c, int64_t org_id,
                                               const char *containing, struct store_own_plan **out,
                                               size_t *count, struct arena *a);
/* A customer's own taxes (core/customer.h, CUSTOMER_TAX_CODES), as stored. */
struct store_customer_taxes {
    int64_t customer_id;
    const char *tax_codes; /* canonical JSON array of codes */
};
/*
 * The organization's customers (deleted ones too) naming taxes whose stored codes hold
 * `containing` (NULL: every one), in `a`; the caller reads each list for the code.
 */
enum store_status store_customers_taxed(struct store_conn *c, int64_t org_id,
                                        const char *containing, struct store_customer_taxes **out,
                                        size_t *count, struct arena *a);
/* Replaces a customer's own taxes (NULL: none). Writer only. */
enum store_status store_customer_set_tax_codes(struct store *st, int64_t customer_id,
                                               const char *tax_codes);
/* Replaces a subscription's own plan; updated_at must move (it tells versions apart). */
enum store_status store_subscription_set_plan_body(struct store *st, int64_t subscription_id,
                                                   const char *plan_body, tally_time updated_at);
/* How many subscriptions to a plan are pending or active at `now`, those on a plan of their
 * own made from it (plan_overrides) included. */
enum store_status store_plan_live_subscriptions(struct store_conn *c, int64_t org_id,
                                                const char *plan_lago_id, tally_time now,
                                                int64_t *count);
/* Those subscriptions themselves, in `a`, oldest first (by id). */
enum store_status store_plan_live_subscription_rows(struct store_conn *c, int64_t org_id,
                                                    const char *plan_lago_id, tally_time now,
                                                    struct store_subscription **out, size_t *count,
                                                    struct arena *a);
/* Whether any subscription, of any status, is on the plan itself (not on a plan of its own:
 * plan_overrides): Lago's Plan#attached_to_subscriptions?, which keeps a plan's trial. Once
 * true it stays so (subscriptions are never removed). */
enum store_status store_plan_attached(struct store_conn *c, int64_t org_id,
                                      const char *plan_lago_id, bool *attached);
/*
 * The subscriptions on the plan itself (not on a plan of their own: plan_overrides) whose
 * scheduled plan change a price edit of it may decide again (Lago's Plans::UpdateService): the
 * downgrades to it, pending at `now` with a previous subscription, and the active ones with a
 * downgrade scheduled from it (next_id); in `a`, by id.
 */
enum store_status store_plan_scheduled_changes(struct store_conn *c, int64_t org_id,
                                               const char *plan_lago_id, tally_time now,
                                               struct store_subscription **out, size_t *count,
                                               struct arena *a);
/* How many of a customer's subscriptions are pending or active at `now`. */
enum store_status store_customer_live_subscriptions(struct store_conn *c, int64_t org_id,
                                                    int64_t customer_id, tally_time now,
                                                    int64_t *count);

/* ---- applied coupons (core/applied_coupon.h) ---------------------------------------------- */

struct store_applied_coupon {
    struct applied_coupon coupon;
    char customer_lago_id[UUID_TEXT];
    const char *customer_external_id;
    /* the coupon as it is now (Lago's coupon_status, coupon_deleted_at): its definition, NULL
     * if it is gone, and when it was deleted */
    const char *coupon_body;
    bool coupon_deleted;
    tally_time coupon_deleted_at;
};

enum store_status store_applied_coupon_insert(struct store *st, struct applied_coupon *c);
enum store_status store_applied_coupon_terminate(struct store *st, int64_t id, tally_time at);
enum store_status store_applied_coupon_get(struct store_conn *c, int64_t org_id,
                                           const char *lago_id, struct store_applied_coupon *out,
                                           struct arena *a);
/* How many times a coupon was ever applied to a customer (for non-reusable coupons). */
enum store_status store_applied_coupon_uses(struct store_conn *c, int64_t org_id,
                                            const char *coupon_lago_id, int64_t customer_id,
                                            int64_t *count);
/* Whether a coupon was ever applied, to anyone (Lago then keeps its terms: Coupons::UpdateService).
 */
enum store_status store_coupon_in_use(struct store_conn *c, int64_t org_id,
                                      const char *coupon_lago_id, bool *in_use);
/* Terminates at `at` every active application of a coupon (its deletion); *ended counts them. */
enum store_status store_applied_coupons_end_of_coupon(struct store *st, int64_t org_id,
                                                      const char *coupon_lago_id, tally_time at,
                                                      int64_t *ended);
/* A page, newest first; customer_id 0 for all; status 0 any, 1 active, 2 terminated; of the
 * coupons a JSON array of codes names (NULL: any). */
enum store_status store_applied_coupon_list(struct store_conn *c, int64_t org_id,
                                            int64_t customer_id, int status,
                                            const char *coupon_codes_json, int64_t offset,
                                            int64_t limit, struct store_applied_coupon **out,
                                            size_t *count, int64_t *total, struct arena *a);

/* ---- settings (database-wide values) -------------------------------------------------------- */

/* A fixed-size setting; STORE_ERROR if it exists with another size. */
enum store_status store_setting_get(struct store_conn *c, const char *name, void *value,
                                    size_t len);
enum store_status store_setting_put(struct store *st, const char *name, const void *value,
                                    size_t len);

/* ---- events ------------------------------------------------------------------------------ */

struct store_event {
    int64_t id; /* the writer gives it, in acceptance order */
    int64_t org_id;
    int64_t subscription_id;
    const char *transaction_id;
    const char *external_subscription_id;
    const char *code;
    tally_time timestamp;
    const char *properties_json;
    const char *precise_total_amount_cents; /* decimal text, or NULL */
    tally_time created_at;
    /* filled when read back */
    char subscription_lago_id[UUID_TEXT];
    char customer_lago_id[UUID_TEXT];
};

/*
 * Appends events whose ids the writer gave (each above every stored id, increasing): each run
 * of one organization's consecutive ids is one block (store/event_block.h), so a command's
 * batch is one row. Refused (nothing kept) unless above every stored id. Writer only, inside
 * its transaction.
 */
enum store_status store_events_insert(struct store *st, const struct store_event *events,
                                      size_t count);
/*
 * Indexes a stored event of a recurring metric under its external subscription and code, with
 * what live usage reads of it (its org_id, external_subscription_id, code, id,
 * subscription_id, timestamp, properties_json, precise_total_amount_cents and created_at are
 * read). Writer only, inside its transaction, in the command that stores the event.
 */
enum store_status store_recurring_event_note(struct store *st, const struct store_event *e);
/* The two parts of the index a usage of a period starting at `from` is built from. */
enum store_recurring_part {
    /* timestamped and accepted (created_at) before `from`: the past the period starts with */
    STORE_RECURRING_CARRIED,
    /* the rest it counts: timestamped at or after `from` and stored under another subscription
     * than except_subscription_id (sent ahead before a plan change), and timestamped before
     * `from` but accepted at or after it (late events, which came while the period ran) */
    STORE_RECURRING_LATER,
};
/*
 * The events indexed by store_recurring_event_note under that external subscription and code,
 * of a subscription of customer_id (another customer who took the external id over inherits
 * none of them), after event after_id (0: any; store_metric_history_floor), of one `part` (from
 * INT64_MAX: the whole index, CARRIED), in acceptance order: id, org_id, subscription_id,
 * external_subscription_id, code, timestamp, properties_json, precise_total_amount_cents and
 * created_at are filled (strings valid until fn returns). fn false stops with an error. Events
 * indexed before schema 47 have the created_at of their stored event.
 */
enum store_status store_recurring_event_each(struct store_conn *c, int64_t org_id,
                                             const char *external_subscription_id, const char *code,
                                             int64_t customer_id, enum store_recurring_part part,
                                             tally_time from, int64_t except_subscription_id,
                                             int64_t after_id,
                                             bool (*fn)(const struct store_event *e, void *ctx),
                                             void *ctx);
/*
 * How many events store_recurring_event_note indexed under that external subscription (any
 * code), of a subscription of customer_id, are timestamped before `from` and were accepted
 * (created_at) in [from, to): late events that a period starting anywhere in [from, to]
 * counts as its own or as part of the past it starts with, depending on where it starts (a
 * customer's time zone moving that start, engine/customer_edit.c check_paid_events_stay).
 */
enum store_status store_recurring_late_count(struct store_conn *c, int64_t org_id,
                                             const char *external_subscription_id,
                                             int64_t customer_id, tally_time from, tally_time to,
                                             int64_t *count);
/*
 * A billable metric's history ends with its deletion or its code's change: the organization's
 * stored events of its code up to event last_event_id (the last id given then) are the old
 * metric's, and no usage of a metric made later with that code counts them (Lago's
 * DeleteEventsJob marks them deleted; events here are never changed). Only raises the line.
 * `deleted`: a deletion drew it, and those events are hidden from then on as Lago's default
 * scope hides deleted ones (store_event_list, store_event_hidden; counted here, once, by
 * reading the blocks since the code's last deletion); a code change hides none, as Lago's
 * leaves the events as they were. Writer only, inside its transaction.
 */
enum store_status store_metric_history_end(struct store *st, int64_t org_id, const char *code,
                                           int64_t last_event_id, bool deleted);
/* Whether event `id` of that code is a deleted metric's (store_metric_history_end), and so
 * neither listed nor found. */
enum store_status store_event_hidden(struct store_conn *c, int64_t org_id, const char *code,
                                     int64_t id, bool *hidden);
/* The last stored event of that code that was a deleted metric's (0: none ever was): a metric
 * with the code counts only the events after it. */
enum store_status store_metric_history_floor(struct store_conn *c, int64_t org_id, const char *code,
                                             int64_t *last_event_id);
/* The highest stored event id (0 if none): where the writer's numbering resumes. */
enum store_status store_event_last_id(struct store_conn *c, int64_t *id);
/*
 * How many events of the organization are stored, as event_counts says (the commit that
 * stores events adds them there): every one, the deleted metrics' hidden ones too, since none
 * is ever removed. GET /events answers its total from it.
 */
enum store_status store_event_count(struct store_conn *c, int64_t org_id, int64_t *stored);
/*
 * Every stored event from id `from_id` on, in acceptance order, read straight from the row
 * (strings valid until fn returns; the subscription and customer lago ids are not filled). fn
 * false stops with an error. The writer rebuilds its memory (deduplication, live usage) from
 * this at start.
 */
enum store_status store_event_each(struct store_conn *c, int64_t from_id,
                                   bool (*fn)(const struct store_event *e, void *ctx), void *ctx);
/* One event by id, the same way; STORE_NOT_FOUND if there is none. */
enum store_status store_event_raw(struct store_conn *c, int64_t id,
                                  bool (*fn)(const struct store_event *e, void *ctx), void *ctx);
/*
 * The events with these ids (strictly increasing), each read as store_event_raw reads it, in
 * that order: a block is read once for all the ids it holds. STORE_NOT_FOUND (after calling fn
 * for the ids before) if one is not stored; fn false stops with an error. Rebuilding live
 * usage reads its references so.
 */
enum store_status store_events_by_id(struct store_conn *c, const int64_t *ids, size_t count,
                                     bool (*fn)(const struct store_event *e, void *ctx), void *ctx);
/* An event by its id (the writer finds ids by transaction id in memory). */
enum store_status store_event_get(struct store_conn *c, int64_t org_id, int64_t id,
                                  struct store_event *out, struct arena *a);

struct store_event_filter {
    const char *code;                     /* NULL: any */
    const char *external_subscription_id; /* NULL: any */
    bool has_from, has_to;
    tally_time from, to; /* timestamp in [from, to]: Lago's query includes both */
};
/* A page of events, newest accepted first, without the deleted metrics' (store_event_hidden):
 * the total counts neither. */
enum store_status store_event_list(struct store_conn *c, int64_t org_id,
                                   const struct store_event_filter *f, int64_t offset,
                                   int64_t limit, struct store_event **out, size_t *count,
                                   int64_t *total, struct arena *a);

/*
 * The subscription with that external id that was active at `at` (started, not yet ended):
 * the one an event with that timestamp belongs to.
 */
enum store_status store_subscription_at(struct store_conn *c, int64_t org_id,
                                        const char *external_id, tally_time at,
                                        struct store_subscription *out, struct arena *a);
/*
 * The subscription with that external id terminated at exactly `at` (ended then by its
 * termination, not by an earlier ending_at; not canceled), the one started last if several
 * were: Lago's Event#subscription counts the termination's instant as the subscription's own.
 */
enum store_status store_subscription_ended_at(struct store_conn *c, int64_t org_id,
                                              const char *external_id, tally_time at,
                                              struct store_subscription *out, struct arena *a);

/*
 * The first start under a customer's external id (Lago's Subscription#initial_started_at): the
 * earliest started_at of its subscriptions started by `now`, whatever their plan or status
 * since (one canceled before its start never started). STORE_NOT_FOUND when none has.
 */
enum store_status store_subscription_initial_start(struct store_conn *c, int64_t org_id,
                                                   int64_t customer_id, const char *external_id,
                                                   tally_time now, tally_time *out);

/* ---- wallets (core/wallet.h) ----------------------------------------------------------- */

struct store_wallet {
    int64_t id; /* 0 before the first save */
    int64_t org_id, customer_id;
    char lago_id[UUID_TEXT];
    const char *code, *name;
    char currency[4];
    money_t rate_amount; /* the price of one credit, in currency units */
    int32_t priority;
    enum wallet_limit limit;
    int64_t overdraft_limit_cents; /* soft limit: how far below zero usage may take it */
    int64_t balance_cents;         /* the grants' remaining amounts less the overdrawn part */
    int64_t consumed_cents;        /* usage (net of refund steps) and voids, ever */
    int64_t overdrawn_cents;       /* owed by a soft-limited wallet below zero */
    int64_t held_cents;            /* reserved by open holds (authorizations) */
    bool has_next_rule_at;
    tally_time next_rule_at; /* when its interval rule fires next */
    /* The rule's last grants, whose unused part may roll over: the free one (or the paid one
     * when the rule made only that), and the paid one when it made both. 0: none. */
    int64_t last_interval_grant_id, last_interval_paid_grant_id;
    /* Its threshold rule, new or changed, has not fired yet for the balance it started at:
     * the next command that leaves the balance at or below it fires it, restart or not. */
    bool rule_unfired;
    /* What the parts of holds open at its rule's last anniversary (store_hold.at_rollover) may
     * still roll over, once their holds leave them unspent: the room the rollover's cap left,
     * and as much as they would have repaid of an overdraft the new grant repaid instead. */
    int64_t rollover_room_cents;
    bool has_expiration_at, has_terminated_at, has_last_consumed_at;
    tally_time expiration_at, terminated_at, last_consumed_at;
    const char *terms_json; /* Lago's other fields (applies_to, top-up bounds, ...) as JSON */
    tally_time created_at, updated_at;
    /* filled when read */
    char customer_lago_id[UUID_TEXT];
    const char *external_customer_id;
    const char *customer_timezone; /* NULL: UTC */
};

/* Inserts (w->id == 0, sets it) or updates every mutable column. Writer only. */
enum store_status store_wallet_save(struct store *st, struct store_wallet *w);
/* Writes only the balances (balance, consumed, overdrawn, held, last consumed, updated_at). */
enum store_status store_wallet_save_balances(struct store *st, const struct store_wallet *w);
enum store_status store_wallet_get(struct store_conn *c, int64_t org_id, const char *lago_id,
                                   struct store_wallet *out, struct arena *a);
enum store_status store_wallet_by_id(struct store_conn *c, int64_t id, struct store_wallet *out,
                                     struct arena *a);
/* A customer's active wallets, oldest first (at most WALLET_PER_CUSTOMER_MAX are). */
enum store_status store_customer_wallets(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                         struct store_wallet **out, size_t *count, struct arena *a);
/* A wallet's stored terms (store_wallet.terms_json), for what changes them alone. */
struct store_wallet_terms {
    int64_t wallet_id, customer_id;
    const char *terms_json;
};
/*
 * The organization's wallets (terminated ones too) whose stored terms hold the text
 * `containing`, in `a`: a coarse filter, the caller reads each one's terms for what it looks for
 * (a billable metric's code in applies_to).
 */
enum store_status store_wallets_naming(struct store_conn *c, int64_t org_id, const char *containing,
                                       struct store_wallet_terms **out, size_t *count,
                                       struct arena *a);
/* Replaces a wallet's terms and nothing else (its updated_at stays). Writer only. */
enum store_status store_wallet_set_terms(struct store *st, int64_t wallet_id,
                                         const char *terms_json);
/* A page of wallets (customer_id 0 and currency NULL: any), newest first. */
enum store_status store_wallet_list(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                    const char *currency, int64_t offset, int64_t limit,
                                    struct store_wallet **out, size_t *count, int64_t *total,
                                    struct arena *a);

struct store_wallet_transaction {
    int64_t id; /* 0 before the insert */
    int64_t org_id, wallet_id;
    char lago_id[UUID_TEXT];
    enum wallet_transaction_type type;
    enum wallet_transaction_state state;
    enum wallet_transaction_status status;
    enum wallet_transaction_source source;
    int64_t amount_cents;
    int64_t remaining_cents; /* inbound and settled: what is left of the grant */
    int32_t priority;
    bool paid; /* the grant's cost basis: paid credits, or free ones */
    bool has_expiration_at, has_settled_at, has_failed_at;
    tally_time expiration_at, settled_at, failed_at, created_at;
    const char *name;
    const char *details_json;    /* metadata, purchase_order_number, ... as JSON, or NULL */
    const char *invoice_lago_id; /* a paid top-up's credit invoice, or NULL */
    /* filled when read: the wallet's, to show credits */
    char wallet_lago_id[UUID_TEXT];
    money_t rate_amount;
    char currency[4];
};

enum store_status store_wallet_transaction_insert(struct store *st,
                                                  struct store_wallet_transaction *t);
enum store_status store_wallet_transaction_set_remaining(struct store *st, int64_t id,
                                                         int64_t remaining_cents);
enum store_status store_wallet_transaction_set_expiration(struct store *st, int64_t id, bool has,
                                                          tally_time expiration_at);
/* Adds to a transaction's amount (the day's usage debits); *found false if there is no such
 * transaction. */
enum store_status store_wallet_transaction_add_amount(struct store *st, int64_t id, int64_t cents,
                                                      bool *found);
/* Adds to what a usage transaction owes: the part of it a soft wallet's overdraft paid that no
 * credits have repaid yet (negative: repaid). */
enum store_status store_wallet_transaction_add_owed(struct store *st, int64_t id, int64_t cents);
/* The wallet's oldest usage transaction that still owes, and how much; STORE_NOT_FOUND: none. */
enum store_status store_wallet_oldest_owed(struct store *st, int64_t wallet_id, int64_t *id,
                                           int64_t *cents);
/* What the wallet's usage transactions owe together (its overdraft, as written). */
enum store_status store_wallet_owed_total(struct store_conn *c, int64_t wallet_id, int64_t *cents);
enum store_status store_wallet_transaction_get(struct store_conn *c, int64_t org_id,
                                               const char *lago_id,
                                               struct store_wallet_transaction *out,
                                               struct arena *a);
enum store_status store_wallet_transaction_by_id(struct store_conn *c, int64_t id,
                                                 struct store_wallet_transaction *out,
                                                 struct arena *a);
/* What the wallet's pending transactions (paid credits waiting for payment) add up to. */
/* When the payment of the wallet's latest threshold top-up to fail was declined (0: none). */
enum store_status store_wallet_last_declined(struct store_conn *c, int64_t wallet_id,
                                             tally_time *at);
enum store_status store_wallet_pending_cents(struct store_conn *c, int64_t wallet_id,
                                             int64_t *cents);
/* Calls fn for each settled inbound transaction of the wallet with credits left. */
enum store_status store_wallet_live_grants(struct store_conn *c, int64_t wallet_id,
                                           bool (*fn)(const struct store_wallet_transaction *t,
                                                      void *ctx),
                                           void *ctx, struct arena *a);
/* Filters of a wallet's transactions; a negative value: any. */
/* A wallet's transactions: each mask the values it lists, bit i for value i (0: any); the
 * metadata a JSON array of [key, value] pairs a transaction's metadata must all hold, each
 * key with that value exactly (NULL: any), as Lago's WalletTransactionsQuery#with_metadata. */
struct store_wallet_transaction_filter {
    uint64_t state_mask, type_mask, status_mask;
    const char *metadata_json;
};
enum store_status store_wallet_transaction_list(struct store_conn *c, int64_t wallet_id,
                                                const struct store_wallet_transaction_filter *f,
                                                int64_t offset, int64_t limit,
                                                struct store_wallet_transaction **out,
                                                size_t *count, int64_t *total, struct arena *a);

/* Which grant (inbound) paid for which debit (outbound, or a refund step given back); one row
 * per pair, added to. */
struct store_wallet_consumption {
    int64_t id;
    char lago_id[UUID_TEXT];
    int64_t amount_cents;
    tally_time created_at;
    struct store_wallet_transaction other; /* the transaction on the other side */
};
enum store_status store_wallet_consumption_insert(struct store *st, int64_t org_id,
                                                  const char *lago_id, int64_t inbound_id,
                                                  int64_t outbound_id, int64_t amount_cents,
                                                  tally_time at);
/* The consumptions of an inbound transaction (of_inbound) or the fundings of a debit. */
enum store_status store_wallet_consumption_list(struct store_conn *c, int64_t transaction_id,
                                                bool of_inbound, int64_t offset, int64_t limit,
                                                struct store_wallet_consumption **out,
                                                size_t *count, int64_t *total, struct arena *a);

/* ---- the ledger (core/ledger.h) ------------------------------------------------------- */

/* Who and what a posting is about. */
struct store_posting_ref {
    int64_t org_id, customer_id, wallet_id;
    const char *currency;
    int64_t wallet_transaction_id; /* or 0 */
    tally_time at;
    int64_t authorization_id; /* the hold a memo posting is about, or 0 */
};
/*
 * Writes a balanced posting: its wallet accounts are the wallet's, the others the
 * organization's in that currency. balance_after[i] is line i's account balance after it (the
 * writer keeps them: a wallet's follow from its grants, the organization's are stored beside,
 * in ledger_balances, by store_ledger_balance_put before the transaction commits).
 */
enum store_status store_ledger_post(struct store *st, const struct store_posting_ref *ref,
                                    const struct ledger_posting *p,
                                    const int64_t balance_after[LEDGER_LINES_MAX]);
enum store_status store_ledger_balance_put(struct store *st, int64_t org_id, const char *currency,
                                           enum ledger_account account, int64_t balance);
/* An organization account's balance (debit positive); 0 before its first posting. */
enum store_status store_ledger_balance(struct store_conn *c, int64_t org_id, const char *currency,
                                       enum ledger_account account, int64_t *balance);
/* A wallet account's balance as its last entry left it (debit positive): for checks. */
enum store_status store_ledger_wallet_balance(struct store_conn *c, int64_t wallet_id,
                                              enum ledger_account account, int64_t *balance);

struct store_ledger_entry {
    int64_t id, posting_id;
    enum ledger_cause cause;
    enum ledger_account account;
    int64_t amount_cents, balance_after_cents; /* debit positive */
    char currency[4];
    tally_time created_at;
    const char *wallet_lago_id; /* NULL for the organization's accounts */
    const char *external_customer_id;
    const char *wallet_transaction_lago_id; /* the transaction the posting belongs to */
    const char *authorization_lago_id;      /* or the hold */
};
struct store_ledger_filter {
    /* NULL: any; else the entries of every customer, live or deleted, with that external id */
    const char *external_customer_id;
    int64_t wallet_id; /* 0: any; else every line of the wallet's postings */
    bool has_from, has_to;
    tally_time from, to; /* created_at in [from, to] */
    /* 0: any; else bit (1 << account) / (1 << cause) of the entries kept (read beside the
     * organization's, customer's or wallet's entries: no index of their own) */
    uint32_t account_mask, cause_mask;
};
/* A page of entries, newest first. */
enum store_status store_ledger_list(struct store_conn *c, int64_t org_id,
                                    const struct store_ledger_filter *f, int64_t offset,
                                    int64_t limit, struct store_ledger_entry **out, size_t *count,
                                    int64_t *total, struct arena *a);

/* ---- what usage charges have debited (engine/wallets.c) ----------------------------------- */

struct store_charge_debit {
    int64_t subscription_id;
    const char *charge_lago_id;
    tally_time period_from;
    int64_t org_id, customer_id;
    int64_t charged_cents;
    const char *fundings; /* the engine's text: which sources paid, in order */
    /* The tax part of what wallets paid of it, as posted to taxes_payable; -1: debited before
     * taxes had an account */
    int64_t posted_tax_cents;
    /* A new wallet's opening in the period: the last event stored then (-1: none) and the
     * cost it left to the invoice (engine/wallet_book.h, struct charge_debit) */
    int64_t opened_event_id, opened_cents;
    /* its place among the customer's debits (engine/wallet_book.h, struct charge_debit) */
    int64_t seq;
};
enum store_status store_charge_debit_put(struct store *st, const struct store_charge_debit *d);
/* Deletes the row of a period that moved (a customer's new time zone): its debit is put again
 * under the new start. Writer only. */
enum store_status store_charge_debit_drop(struct store *st, int64_t subscription_id,
                                          const char *charge_lago_id, tally_time period_from);
/* Every row of a customer, oldest period first; strings valid until fn returns. */
enum store_status
store_charge_debits_of_customer(struct store_conn *c, int64_t org_id, int64_t customer_id,
                                bool (*fn)(const struct store_charge_debit *d, void *ctx),
                                void *ctx);

/* The subscriptions of an organization (or of one of its customers; customer_id 0: all) whose
 * wallets hold a debit of theirs that is not zero, in any period, but those terminated or
 * canceled by `now` (no later read need build their usage), by id; fn returns false to stop
 * (an error). */
enum store_status store_debited_subscriptions(struct store_conn *c, int64_t org_id,
                                              int64_t customer_id, tally_time now,
                                              bool (*fn)(int64_t subscription_id, void *ctx),
                                              void *ctx);

/* ---- authorizations: holds on credits (a Tally addition) --------------------------------- */

enum authorization_status {
    AUTHORIZATION_DECLINED,
    AUTHORIZATION_AUTHORIZED, /* holding credits */
    AUTHORIZATION_CAPTURED,
    AUTHORIZATION_VOIDED,
    AUTHORIZATION_EXPIRED,
};

struct store_authorization {
    int64_t id; /* 0 before the insert */
    int64_t org_id;
    char lago_id[UUID_TEXT];
    int64_t customer_id, subscription_id;
    const char *external_subscription_id, *code, *properties_json;
    const char
        *precise_total_amount_cents; /* the priced usage's own price (decimal text), or NULL */
    enum authorization_status status;
    int64_t amount_cents; /* the usage's price when authorized, taxes included */
    int64_t held_cents;   /* what is still held (0 once settled) */
    bool has_captured_cents;
    int64_t captured_cents; /* what the captured event cost */
    char currency[4];
    tally_time expires_at;
    /* written only: the expiry it was asked for, before any ending_at bounded it (0: expires_at) */
    tally_time asked_expires_at;
    const char *transaction_id; /* the captured event's */
    tally_time created_at, updated_at;
    const char *external_customer_id; /* filled when read */
    /* The wallet its credits are shown in (the holding wallet made first; declined: the first
     * that could have paid); 0 if none could, or if saved before schema version 20. */
    int64_t payer_wallet_id;
};

/* A part of a hold: what it reserves of one grant of one wallet (grant 0: on no grant, a soft
 * wallet's overdraft, or a hold's part from before parts were per grant). */
struct store_hold {
    int64_t wallet_id;
    int64_t grant_id;
    int64_t cents;
    /* it was open on a previous grant at its rule's last anniversary: what its hold leaves
     * unspent rolls over within the wallet's rollover_room_cents */
    bool at_rollover;
};

/* Inserts (a->id == 0, sets it) or updates status, held, captured and transaction id. */
enum store_status store_authorization_save(struct store *st, struct store_authorization *a);
enum store_status store_authorization_get(struct store_conn *c, int64_t org_id, const char *lago_id,
                                          struct store_authorization *out, struct arena *a);
/* A page of the organization's open holds (status authorized), soonest expiry first, and how
 * many there are: of customers with that external id (deleted ones too) and of subscriptions
 * with that one (ended ones too), each NULL for any. */
enum store_status store_authorization_open_list(struct store_conn *c, int64_t org_id,
                                                const char *external_customer_id,
                                                const char *external_subscription_id,
                                                int64_t offset, int64_t limit,
                                                struct store_authorization **out, size_t *count,
                                                int64_t *total, struct arena *a);
enum store_status store_authorization_hold_put(struct store *st, int64_t authorization_id,
                                               const struct store_hold *part);
/* Adds `cents` (< 0: takes them off) to what open holds reserve of the grant (grant_holds,
 * read by store_wallet_held_grants): written with each hold's part and each release. */
enum store_status store_grant_held_add(struct store *st, int64_t wallet_id, int64_t grant_id,
                                       int64_t cents);
/* Marks the open parts of the wallet's holds on those grants (an anniversary's previous ones;
 * 0: none) at_rollover, and only those. */
enum store_status store_wallet_holds_at_rollover(struct store *st, int64_t wallet_id,
                                                 int64_t grant_id, int64_t paid_grant_id);
/* Zeroes the hold's parts: released. */
enum store_status store_authorization_holds_clear(struct store *st, int64_t authorization_id);
/* Calls fn for each part of the hold (released ones zeroed), by wallet then grant, until fn
 * returns false (still STORE_OK: the caller knows why it stopped). */
enum store_status store_authorization_holds(struct store_conn *c, int64_t authorization_id,
                                            bool (*fn)(const struct store_hold *part, void *ctx),
                                            void *ctx);
/* Calls fn for each grant of the wallet open holds reserve credits of, with what they reserve
 * of it together (store_grant_held_add), until fn returns false. */
enum store_status store_wallet_held_grants(struct store_conn *c, int64_t wallet_id,
                                           bool (*fn)(const struct store_hold *part, void *ctx),
                                           void *ctx);

/* The open (authorized) holds with credits in the wallet, at most cap of them, oldest first. */
enum store_status store_wallet_open_holds(struct store_conn *c, int64_t org_id, int64_t wallet_id,
                                          char (*lago_ids)[UUID_TEXT], size_t cap, size_t *count);
/* Brings the open holds of a subscription (and of those it replaced, as below), those not past
 * their expiry at `now`, to expire at the expiry they were asked for, or at `at` if `bounded` and
 * it comes first: `at` is the first of the ends that bound the external id (no capture could
 * succeed after it), moved, removed or given. Writer only. */
enum store_status store_subscription_holds_rebound(struct store *st, int64_t subscription_id,
                                                   bool bounded, tally_time at, tally_time now);
/* The open (authorized) holds of a subscription, at most cap of them, oldest first: those
 * priced on the subscriptions it replaced too (an upgrade or a downgrade keeps its external id,
 * and a hold made before one is captured in the live subscription). */
enum store_status store_subscription_open_holds(struct store_conn *c, int64_t org_id,
                                                int64_t subscription_id,
                                                char (*lago_ids)[UUID_TEXT], size_t cap,
                                                size_t *count);

/* The open (authorized) holds of a billable metric's code, at most cap of them, oldest first:
 * those its deletion voids. */
enum store_status store_code_open_holds(struct store_conn *c, int64_t org_id, const char *code,
                                        char (*lago_ids)[UUID_TEXT], size_t cap, size_t *count);

/* ---- what comes due with time ----------------------------------------------------------- */

enum store_due_kind {
    STORE_DUE_HOLDS,   /* authorized holds past expires_at */
    STORE_DUE_GRANTS,  /* grants with credits left past their expiration_at, beyond what
                        * open holds keep in them */
    STORE_DUE_WALLETS, /* active wallets past their expiration_at */
    STORE_DUE_RULES,   /* active wallets whose interval rule is due */
    STORE_DUE_PERIODS, /* subscriptions whose next period wallets pay carried units of */
};
struct store_due_item {
    int64_t org_id;
    char lago_id[UUID_TEXT]; /* the hold's, or the wallet's */
    int64_t grant_id;        /* STORE_DUE_GRANTS, store_reminders_due */
    tally_time due_at;       /* store_reminders_due: when the grant's credits expire */
    int64_t subscription_id; /* STORE_DUE_PERIODS */
    int64_t customer_id;     /* whose it is (the hold's, wallet's, subscription's) */
};
/* Up to cap items of a kind due at `now` in an organization, the earliest first, leaving out
 * those of the customers in skip_customers (a JSON array of customer ids; NULL: none), which
 * the real clock's sweep passes over for a while (engine/sweep_quarantine.h). */
enum store_status store_due(struct store_conn *c, int64_t org_id, enum store_due_kind kind,
                            tally_time now, const char *skip_customers, struct store_due_item *out,
                            size_t cap, size_t *count);

/* A subscription whose wallets pay carried units (a recurring metric's), or events sent ahead
 * into its next period, is due at due_at, that period's start, to be debited then although no
 * event comes (engine: settle_periods); set again at each settlement while units carry,
 * dropped once it has no wallet, no life or nothing left to settle. Writer only. */
enum store_status store_period_settlement_set(struct store *st, int64_t org_id,
                                              int64_t subscription_id, tally_time due_at);
enum store_status store_period_settlement_drop(struct store *st, int64_t subscription_id);
/* The same, only if it is due by `now` (one set for a later period start stays). Writer only. */
enum store_status store_period_settlement_drop_due(struct store *st, int64_t subscription_id,
                                                   tally_time now);
/* The subscription's settlement, if one is set after `now` (one due already stays), set to
 * due_at instead: the same period start after the customer's zone moved it. Writer only. */
enum store_status store_period_settlement_move(struct store *st, int64_t subscription_id,
                                               tally_time now, tally_time due_at);

/* ---- the webhook outbox ------------------------------------------------------------------- */

/* An event for the organization's webhooks, recorded in the commit that caused it. */
struct store_webhook {
    int64_t id;
    int64_t org_id;
    char lago_id[UUID_TEXT];
    const char *webhook_type; /* "credits.expiring_soon", ... */
    const char *object_type;  /* "wallet_transaction", ... */
    int64_t object_id;        /* the object's row id */
    const char *data_json;    /* what else the event says, as JSON */
    tally_time created_at;
    bool has_delivered_at;
    tally_time delivered_at;
};
enum store_status store_outbox_insert(struct store *st, const struct store_webhook *w);
/* A page of the organization's recorded events, newest first. */
enum store_status store_outbox_list(struct store_conn *c, int64_t org_id, int64_t offset,
                                    int64_t limit, struct store_webhook **out, size_t *count,
                                    int64_t *total, struct arena *a);
/* Grants with credits left that expire within `days` of `now` and have had no reminder that
 * close yet (grant_id, and due_at: the sooner of its expiration_at and its wallet's), earliest
 * first; skip_customers as store_due's. */
enum store_status store_reminders_due(struct store_conn *c, int64_t org_id, int32_t days,
                                      tally_time now, const char *skip_customers,
                                      struct store_due_item *out, size_t cap, size_t *count);
enum store_status store_wallet_transaction_set_reminded(struct store *st, int64_t id, int32_t days);
/* A wallet's expiration_at moves (from was, if had, to is, if has): its grants whose credits now
 * expire at another instant (the sooner of their own and the wallet's) have their reminders
 * recorded anew for it. Writer only. */
enum store_status store_wallet_expiry_moved(struct store *st, int64_t wallet_id, bool had,
                                            tally_time was, bool has, tally_time is);

/* ---- invoices (credit invoices of paid top-ups, for now) ------------------------------------ */

enum invoice_type { INVOICE_CREDIT };
enum invoice_status { INVOICE_DRAFT, INVOICE_FINALIZED, INVOICE_VOIDED, INVOICE_OPEN };
enum invoice_payment_status {
    INVOICE_PAYMENT_PENDING,
    INVOICE_PAYMENT_SUCCEEDED,
    INVOICE_PAYMENT_FAILED,
};

/* An invoice's number: "TLY-<customer>-<invoice>" once it is issued (finalized), the sequences
 * written with at least 3 digits, and "TLY-DRAFT" before (Lago's, document_number_prefix TLY) */
#define INVOICE_NUMBER_PREFIX "TLY"
#define INVOICE_NUMBER_MAX 48 /* the prefix, two 19-digit sequences and the dashes */

struct store_invoice {
    int64_t id; /* 0 before the insert */
    int64_t org_id, customer_id;
    char lago_id[UUID_TEXT];
    /* per customer, from 1, given when it is issued (set by the save that finalizes it); 0 before
     * (Lago's null) */
    int64_t sequential_id;
    char number[INVOICE_NUMBER_MAX]; /* set by each save */
    enum invoice_type type;
    enum invoice_status status;
    enum invoice_payment_status payment_status;
    char currency[4];
    int64_t amount_cents;
    int64_t wallet_transaction_id; /* the top-up it bills */
    const char *issuing_date;      /* YYYY-MM-DD */
    int32_t net_payment_term;      /* days to pay from the issuing date, the customer's then */
    /* Lago's purchase_order_number, set when it is made (a save that updates keeps it); NULL
     * when none */
    const char *purchase_order_number;
    tally_time created_at, updated_at;
    /* filled when read */
    char customer_lago_id[UUID_TEXT];
    const char *external_customer_id;
};
/* Inserts (v->id == 0: sets id) or updates its statuses, issuing date and payment term (an open
 * invoice issued when paid). An invoice saved finalized for the first time takes the next of its
 * customer's sequence and its number then, as Lago's (app/models/invoice.rb, ensure_number and
 * should_assign_sequential_id?): so issued numbers follow the order they were issued in, and an
 * invoice never issued (open, its payment failed) leaves no gap among them. */
enum store_status store_invoice_save(struct store *st, struct store_invoice *v);
enum store_status store_invoice_get(struct store_conn *c, int64_t org_id, const char *lago_id,
                                    struct store_invoice *out, struct arena *a);
/* Which invoices a list shows: each mask a bit (1 << value) per value it takes, 0 for any;
 * customer_id 0 and currency NULL for any. */
struct store_invoice_filter {
    int64_t customer_id;
    int64_t payment_status_mask, status_mask, type_mask;
    const char *currency;
    const char *issuing_date_from, *issuing_date_to; /* YYYY-MM-DD, both included; NULL: any */
    int64_t amount_from, amount_to;                  /* cents, both included: INT64_MIN/MAX */
    int64_t self_billed; /* 0: any; 1: a partner's (self-billed) only; 2: the others' only */
    /* 0: any; 1: overdue only; 2: the others only. Overdue: finalized, its payment not
     * succeeded, and its due date (issuing_date + net_payment_term days) on or before
     * overdue_through (YYYY-MM-DD: the day of the instant just before now, so that a due
     * date's midnight, UTC, is before now, as Lago's clock compares them) */
    int64_t overdue;
    const char *overdue_through;
};
/* A page of the invoices the filter matches, newest first. */
enum store_status store_invoice_list(struct store_conn *c, int64_t org_id,
                                     const struct store_invoice_filter *f, int64_t offset,
                                     int64_t limit, struct store_invoice **out, size_t *count,
                                     int64_t *total, struct arena *a);
enum store_status store_wallet_transaction_set_invoice(struct store *st, int64_t id,
                                                       const char *invoice_lago_id);
/* Writes a transaction's state, remaining amount, settled_at and failed_at. */
enum store_status store_wallet_transaction_set_state(struct store *st,
                                                     const struct store_wallet_transaction *t);

/*
 * The wallet journal (engine/wallet_book): opaque records, one per event commit, of what its
 * debits changed that the wallet tables do not hold yet. Emptied when they are written out.
 * Writer only; each_ reads newest first, data valid until fn returns.
 */
enum store_status store_wallet_journal_append(struct store *st, const void *data, size_t len,
                                              int64_t *id);
enum store_status store_wallet_journal_clear(struct store *st);
/* Drops the records before `id` (their customers' tables caught up). */
enum store_status store_wallet_journal_drop_before(struct store *st, int64_t id);
enum store_status store_wallet_journal_count(struct store_conn *c, int64_t *count);
enum store_status store_wallet_journal_each(struct store_conn *c,
                                            bool (*fn)(const void *data, size_t len, void *ctx),
                                            void *ctx);
/* Rows changed by the writer's connection since it opened: a cheap "did this write?" test. */
int64_t store_changes(struct store *st);

#endif
