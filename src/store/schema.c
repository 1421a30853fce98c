/*
 * store/schema.c: the schema and its migrations (store_migrate, run by every opening of a
 * store; store_schema_version, store_latest_schema_version).
 *
 * Shape: migrations are an ordered list of SQL scripts; PRAGMA user_version records how many
 * have run, and each runs in a transaction of its own with the bump of that number. A
 * migration that shipped is never edited: a schema change is a new one appended to the list.
 * Three move data in C as well (events into blocks, the blocks' summaries, recurring events'
 * arrival times), in their script's transaction, through the event block helpers
 * (store_open_block, store_insert_summary). Apart from store.c because it only grows;
 * store_restore checks a backup against the version it knows.
 */
#include "store/store_internal.h"

#include "core/event.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- schema ------------------------------------------------------------------------------- */

static const char *const migrations[] = {
    /* 1: organizations, idempotency answers, customers */
    "CREATE TABLE organizations ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  api_key_hash TEXT NOT NULL UNIQUE,"
    "  has_test_clock INTEGER NOT NULL DEFAULT 0,"
    "  test_clock_now INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE idempotency_keys ("
    "  org_id INTEGER NOT NULL REFERENCES organizations(id),"
    "  key TEXT NOT NULL,"
    "  request_hash BLOB NOT NULL,"
    "  http_status INTEGER NOT NULL,"
    "  body BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (org_id, key)) WITHOUT ROWID;"
    "CREATE TABLE customers ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES organizations(id),"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  sequential_id INTEGER NOT NULL,"
    "  external_id TEXT NOT NULL,"
    "  name TEXT, firstname TEXT, lastname TEXT, email TEXT, phone TEXT, url TEXT,"
    "  logo_url TEXT, legal_name TEXT, legal_number TEXT, tax_identification_number TEXT,"
    "  address_line1 TEXT, address_line2 TEXT, city TEXT, state TEXT, zipcode TEXT,"
    "  country TEXT, currency TEXT, timezone TEXT, account_type TEXT, customer_type TEXT,"
    "  finalize_zero_amount_invoice TEXT,"
    "  net_payment_term INTEGER, invoice_grace_period INTEGER,"
    "  billing_configuration TEXT, shipping_address TEXT, metadata TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER);"
    "CREATE UNIQUE INDEX customers_live_external_id ON customers(org_id, external_id)"
    "  WHERE deleted_at IS NULL;"
    "CREATE INDEX customers_by_org_created ON customers(org_id, created_at, id);"
    "CREATE UNIQUE INDEX customers_by_org_sequence ON customers(org_id, sequential_id);",
    /* 2: the catalog (core/catalog.h): one table for every kind of definition */
    "CREATE TABLE catalog_items ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES organizations(id),"
    "  kind INTEGER NOT NULL,"
    "  code TEXT NOT NULL,"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  body TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER);"
    "CREATE UNIQUE INDEX catalog_live_code ON catalog_items(org_id, kind, code)"
    "  WHERE deleted_at IS NULL;"
    "CREATE INDEX catalog_by_lago_id ON catalog_items(org_id, kind, lago_id);"
    "CREATE INDEX catalog_by_created ON catalog_items(org_id, kind, created_at, id);",
    /* 3: subscriptions (core/subscription.h): instants, not a status */
    "CREATE TABLE subscriptions ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES organizations(id),"
    "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  external_id TEXT NOT NULL,"
    "  name TEXT,"
    "  plan_lago_id TEXT NOT NULL,"
    "  plan_code TEXT NOT NULL,"
    "  billing_time INTEGER NOT NULL,"
    "  subscription_at INTEGER NOT NULL, started_at INTEGER NOT NULL,"
    "  ending_at INTEGER, terminated_at INTEGER, canceled_at INTEGER,"
    "  previous_id INTEGER, next_id INTEGER,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX subscriptions_by_external_id ON subscriptions(org_id, external_id, started_at);"
    "CREATE INDEX subscriptions_by_customer ON subscriptions(org_id, customer_id, created_at);"
    "CREATE INDEX subscriptions_by_created ON subscriptions(org_id, created_at, id);"
    "CREATE INDEX subscriptions_by_plan ON subscriptions(org_id, plan_lago_id);",
    /* 4: coupons applied to customers (core/applied_coupon.h) */
    "CREATE TABLE applied_coupons ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES organizations(id),"
    "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  coupon_lago_id TEXT NOT NULL, coupon_code TEXT NOT NULL, coupon_name TEXT NOT NULL,"
    "  coupon_type INTEGER NOT NULL,"
    "  amount_cents INTEGER NOT NULL, amount_cents_remaining INTEGER NOT NULL,"
    "  amount_currency TEXT, percentage_rate TEXT,"
    "  frequency INTEGER NOT NULL, frequency_duration INTEGER NOT NULL,"
    "  frequency_duration_remaining INTEGER NOT NULL,"
    "  expiration_at INTEGER, terminated_at INTEGER, created_at INTEGER NOT NULL);"
    "CREATE INDEX applied_coupons_by_customer ON applied_coupons(org_id, customer_id, created_at);"
    "CREATE INDEX applied_coupons_by_coupon ON applied_coupons(org_id, coupon_lago_id, "
    "customer_id);"
    "CREATE INDEX applied_coupons_by_created ON applied_coupons(org_id, created_at, id);",
    /* 5: a subscription's own plan definition when created with plan_overrides */
    "ALTER TABLE subscriptions ADD COLUMN plan_body TEXT;",
    /* 6: usage events, appended; settings (the event fingerprint key) */
    "CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  subscription_id INTEGER NOT NULL,"
    "  transaction_id TEXT NOT NULL,"
    "  external_subscription_id TEXT NOT NULL,"
    "  code TEXT NOT NULL,"
    "  timestamp INTEGER NOT NULL,"
    "  properties TEXT NOT NULL,"
    "  precise_total_amount_cents TEXT,"
    "  created_at INTEGER NOT NULL);"
    /* rows arrive in id order: this index grows at its end, never in the middle; no index
     * is keyed by a random value (docs/BENCHMARKS.md shows what one costs) */
    "CREATE INDEX events_by_org ON events(org_id, id);",
    /* 7: prepaid credits (core/wallet.h): wallets, their transactions (inbound ones are the
     * grants), which grants paid for what, the ledger (core/ledger.h), and what each usage
     * charge has debited so far in its period */
    "CREATE TABLE wallets ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  customer_id INTEGER NOT NULL,"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  code TEXT NOT NULL, name TEXT, currency TEXT NOT NULL, rate_amount TEXT NOT NULL,"
    "  priority INTEGER NOT NULL, credit_limit INTEGER NOT NULL,"
    "  overdraft_limit_cents INTEGER NOT NULL,"
    "  balance_cents INTEGER NOT NULL, consumed_cents INTEGER NOT NULL,"
    "  overdrawn_cents INTEGER NOT NULL,"
    "  expiration_at INTEGER, terminated_at INTEGER, last_consumed_at INTEGER,"
    "  terms TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX wallets_by_customer ON wallets(org_id, customer_id, created_at, id);"
    "CREATE INDEX wallets_by_org ON wallets(org_id, created_at, id);"
    "CREATE TABLE wallet_transactions ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  wallet_id INTEGER NOT NULL,"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  transaction_type INTEGER NOT NULL, status INTEGER NOT NULL,"
    "  transaction_status INTEGER NOT NULL, source INTEGER NOT NULL,"
    "  amount_cents INTEGER NOT NULL, remaining_cents INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL, paid INTEGER NOT NULL, expiration_at INTEGER,"
    "  name TEXT, details TEXT,"
    "  settled_at INTEGER, failed_at INTEGER, created_at INTEGER NOT NULL);"
    "CREATE INDEX wallet_transactions_by_wallet ON wallet_transactions(wallet_id, id);"
    "CREATE INDEX wallet_transactions_live_grants ON wallet_transactions(wallet_id)"
    "  WHERE remaining_cents > 0;"
    "CREATE TABLE wallet_consumptions ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  inbound_id INTEGER NOT NULL, outbound_id INTEGER NOT NULL,"
    "  amount_cents INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX wallet_consumptions_by_inbound ON wallet_consumptions(inbound_id, id);"
    "CREATE INDEX wallet_consumptions_by_outbound ON wallet_consumptions(outbound_id, id);"
    "CREATE TABLE ledger_postings ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL, customer_id INTEGER NOT NULL, wallet_id INTEGER NOT NULL,"
    "  currency TEXT NOT NULL, cause INTEGER NOT NULL, wallet_transaction_id INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE ledger_entries ("
    "  id INTEGER PRIMARY KEY,"
    "  posting_id INTEGER NOT NULL,"
    "  org_id INTEGER NOT NULL, customer_id INTEGER NOT NULL,"
    "  account INTEGER NOT NULL, wallet_id INTEGER NOT NULL, currency TEXT NOT NULL,"
    "  amount_cents INTEGER NOT NULL, balance_after_cents INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX ledger_entries_by_org ON ledger_entries(org_id, id);"
    "CREATE INDEX ledger_entries_by_account ON ledger_entries(org_id, currency, account,"
    "  wallet_id, id);"
    "CREATE INDEX ledger_entries_by_customer ON ledger_entries(org_id, customer_id, id);"
    "CREATE INDEX ledger_entries_by_wallet ON ledger_entries(wallet_id, id);"
    "CREATE TABLE charge_debits ("
    "  subscription_id INTEGER NOT NULL, charge_lago_id TEXT NOT NULL,"
    "  period_from INTEGER NOT NULL,"
    "  org_id INTEGER NOT NULL, customer_id INTEGER NOT NULL,"
    "  charged_cents INTEGER NOT NULL, fundings TEXT NOT NULL,"
    "  PRIMARY KEY (subscription_id, charge_lago_id, period_from)) WITHOUT ROWID;"
    "CREATE INDEX charge_debits_by_customer ON charge_debits(org_id, customer_id, period_from);",
    /* 8: holds (authorizations) on wallets, and what the clock must find when it comes due:
     * holds, grants and wallets that expire */
    "ALTER TABLE wallets ADD COLUMN held_cents INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE authorizations ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  customer_id INTEGER NOT NULL, subscription_id INTEGER NOT NULL,"
    "  external_subscription_id TEXT NOT NULL, code TEXT NOT NULL, properties TEXT NOT NULL,"
    "  status INTEGER NOT NULL, amount_cents INTEGER NOT NULL, held_cents INTEGER NOT NULL,"
    "  captured_cents INTEGER, currency TEXT NOT NULL, expires_at INTEGER NOT NULL,"
    "  transaction_id TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX authorizations_due ON authorizations(status, expires_at);"
    "CREATE INDEX authorizations_by_org ON authorizations(org_id, id);"
    "CREATE TABLE authorization_holds ("
    "  authorization_id INTEGER NOT NULL, wallet_id INTEGER NOT NULL, cents INTEGER NOT NULL,"
    "  PRIMARY KEY (authorization_id, wallet_id)) WITHOUT ROWID;"
    "CREATE INDEX grants_expiring ON wallet_transactions(expiration_at)"
    "  WHERE remaining_cents > 0 AND expiration_at IS NOT NULL;"
    "CREATE INDEX wallets_expiring ON wallets(expiration_at)"
    "  WHERE terminated_at IS NULL AND expiration_at IS NOT NULL;"
    "ALTER TABLE ledger_postings ADD COLUMN authorization_id INTEGER NOT NULL DEFAULT 0;",
    /* 9: fewer indexes on the debit path. A consumption is never looked up by its lago_id,
     * and a ledger entry is found by customer or wallet through its posting: each index keyed
     * by wallet costs a random page write per row. */
    "CREATE TABLE wallet_consumptions_new ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  lago_id TEXT NOT NULL,"
    "  inbound_id INTEGER NOT NULL, outbound_id INTEGER NOT NULL,"
    "  amount_cents INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "INSERT INTO wallet_consumptions_new SELECT * FROM wallet_consumptions;"
    "DROP TABLE wallet_consumptions;"
    "ALTER TABLE wallet_consumptions_new RENAME TO wallet_consumptions;"
    "CREATE INDEX wallet_consumptions_by_inbound ON wallet_consumptions(inbound_id, id);"
    "CREATE INDEX wallet_consumptions_by_outbound ON wallet_consumptions(outbound_id, id);"
    "DROP INDEX ledger_entries_by_customer;"
    "DROP INDEX ledger_entries_by_wallet;"
    "CREATE INDEX ledger_entries_by_posting ON ledger_entries(posting_id);"
    "CREATE INDEX ledger_postings_by_customer ON ledger_postings(org_id, customer_id, id);"
    "CREATE INDEX ledger_postings_by_wallet ON ledger_postings(wallet_id, id);",
    /* 10: the organization's ledger balances kept beside its entries (the writer knows each
     * line's balance after; wallet accounts follow from the wallet's grants), so no index keyed
     * by wallet is needed to find the last one; one consumption row per grant and debit
     * transaction, added to */
    "CREATE TABLE ledger_balances ("
    "  org_id INTEGER NOT NULL, currency TEXT NOT NULL, account INTEGER NOT NULL,"
    "  balance_cents INTEGER NOT NULL,"
    "  PRIMARY KEY (org_id, currency, account)) WITHOUT ROWID;"
    "INSERT INTO ledger_balances SELECT e.org_id, e.currency, e.account, e.balance_after_cents"
    "  FROM ledger_entries e WHERE e.wallet_id = 0 AND e.id = (SELECT MAX(id) FROM ledger_entries"
    "  x WHERE x.org_id = e.org_id AND x.currency = e.currency AND x.account = e.account"
    "  AND x.wallet_id = 0);"
    "DROP INDEX ledger_entries_by_account;"
    "DROP INDEX wallet_consumptions_by_outbound;"
    "CREATE UNIQUE INDEX wallet_consumptions_pair ON wallet_consumptions(outbound_id, inbound_id);",
    /* 11: paid credits waiting for their payment, which threshold rules count */
    "CREATE INDEX wallet_transactions_pending ON wallet_transactions(wallet_id)"
    "  WHERE status = 0;",
    /* 12: interval rules: when a wallet's rule fires next, and its last grant (for rollover) */
    "ALTER TABLE wallets ADD COLUMN next_rule_at INTEGER;"
    "ALTER TABLE wallets ADD COLUMN last_interval_grant_id INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX wallets_rules_due ON wallets(next_rule_at)"
    "  WHERE next_rule_at IS NOT NULL AND terminated_at IS NULL;",
    /* 13: the webhook outbox (events recorded in the commit that caused them, delivered by the
     * Webhooks issue's sender), and which expiry reminder each grant had */
    "CREATE TABLE webhook_outbox ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  lago_id TEXT NOT NULL,"
    "  webhook_type TEXT NOT NULL, object_type TEXT NOT NULL, object_id INTEGER NOT NULL,"
    "  data TEXT NOT NULL, created_at INTEGER NOT NULL, delivered_at INTEGER);"
    "CREATE INDEX webhook_outbox_by_org ON webhook_outbox(org_id, id);"
    "ALTER TABLE wallet_transactions ADD COLUMN reminded_days INTEGER NOT NULL DEFAULT 0;",
    /* 14: invoices, credit invoices first (a paid top-up's): the Invoices issue adds the rest */
    "CREATE TABLE invoices ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL, customer_id INTEGER NOT NULL,"
    "  lago_id TEXT NOT NULL UNIQUE,"
    "  sequential_id INTEGER NOT NULL, number TEXT NOT NULL,"
    "  invoice_type INTEGER NOT NULL, status INTEGER NOT NULL, payment_status INTEGER NOT NULL,"
    "  currency TEXT NOT NULL, amount_cents INTEGER NOT NULL,"
    "  wallet_transaction_id INTEGER NOT NULL, issuing_date TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX invoices_by_org ON invoices(org_id, created_at, id);"
    "CREATE INDEX invoices_by_customer ON invoices(org_id, customer_id, sequential_id);"
    "ALTER TABLE wallet_transactions ADD COLUMN invoice_lago_id TEXT;",
    /* 15: each organization's expiry reminders (days before a grant expires) */
    "ALTER TABLE organizations ADD COLUMN reminder_days TEXT NOT NULL DEFAULT '30,7';",
    /* 16: a customer's postings are found through its wallets: one index less to write */
    "DROP INDEX ledger_postings_by_customer;",
    /* 17: live grants found among a wallet's inbound transactions, by an index that a change
     * of remaining_cents does not touch (the old one's WHERE read it, so every debit rewrote
     * its entry) */
    "DROP INDEX wallet_transactions_live_grants;"
    "CREATE INDEX wallet_transactions_inbound ON wallet_transactions(wallet_id)"
    "  WHERE transaction_type = 0;",
    /* 18: the wallet journal: what event commits debited and the wallet tables do not hold
     * yet, one record per commit, written out (and emptied) by the writer's materialization */
    "CREATE TABLE wallet_journal (id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
    /* 19: no query reads holds by organization: the index was a page of WAL in every commit
     * of holds for nothing */
    "DROP INDEX authorizations_by_org;",
    /* 20: the wallet a hold's credits are shown in, kept so that reading it back shows what
     * its answer showed (declined holds hold nothing to find it by) */
    "ALTER TABLE authorizations ADD COLUMN payer_wallet_id INTEGER;",
    /* 21: each organization's stored events, counted as they are appended (in the commit
     * that stores them): GET /events answers its total without counting millions of rows */
    "CREATE TABLE event_counts (org_id INTEGER PRIMARY KEY, stored INTEGER NOT NULL);"
    "INSERT INTO event_counts SELECT org_id, COUNT(*) FROM events GROUP BY org_id;",
    /* 22: events kept a block per command (store/event_block.h): one row, one B-tree cell and
     * one index entry a batch instead of an event. The rows of `events` are moved into blocks
     * by migrate_events_into_blocks, which then drops the table. */
    "CREATE TABLE event_blocks (first_id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL,"
    "  count INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX event_blocks_by_org ON event_blocks(org_id, first_id);",
    /* 23: what each block holds (store/event_block.h), so that a filtered GET /events reads
     * only the blocks that may match; summarize_event_blocks fills it for the stored ones */
    "CREATE TABLE event_block_summaries (org_id INTEGER NOT NULL, first_id INTEGER NOT NULL,"
    "  count INTEGER NOT NULL, ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL, sub TEXT,"
    "  code TEXT, bloom BLOB NOT NULL, PRIMARY KEY (org_id, first_id)) WITHOUT ROWID;"
    "DROP INDEX event_blocks_by_org;",
    /* 24: the events of recurring metrics, by external subscription and code, with what a
     * usage reads of them: a recurring value is every such event since the first (Lago's
     * scope has no lower bound), across plan changes, so a period's usage starts from them
     * (engine/usage.c), read in one range instead of a block each. Only those events pay for
     * this copy; recurring metrics were refused before, so there is nothing to fill. */
    "CREATE TABLE recurring_events (org_id INTEGER NOT NULL,"
    "  external_subscription_id TEXT NOT NULL, code TEXT NOT NULL, id INTEGER NOT NULL,"
    "  subscription_id INTEGER NOT NULL, timestamp INTEGER NOT NULL, properties TEXT NOT NULL,"
    "  PRIMARY KEY (org_id, external_subscription_id, code, id)) WITHOUT ROWID;",
    /* 25: an interval rule that makes paid and free credits at each anniversary rolls both
     * over: its paid grant, beside the free one last_interval_grant_id names */
    "ALTER TABLE wallets ADD COLUMN last_interval_paid_grant_id INTEGER NOT NULL DEFAULT 0;",
    /* 26: the open holds of a subscription, which its termination releases (they could never
     * be captured); partial, so captures and releases leave it and it stays small */
    "CREATE INDEX authorizations_open_by_subscription ON authorizations(subscription_id, id)"
    "  WHERE status = 1;",
    /* 27: ... and dropped again: every hold wrote an entry in it at a random place, which took
     * holds at 10,000/s from p99 1.5 ms to 3.9 ms (bench/wallets.sh's holds, alternating). A
     * subscription's open holds are found as a wallet's are, through authorizations_due:
     * open holds are few (a week at most), and a subscription ends rarely. */
    "DROP INDEX IF EXISTS authorizations_open_by_subscription;",
    /* 28: a credit invoice's net payment term, the customer's when it was issued (its due
     * date follows from it) */
    "ALTER TABLE invoices ADD COLUMN net_payment_term INTEGER NOT NULL DEFAULT 0;",
    /* 29: a customer's own taxes (core/customer.h, CUSTOMER_TAX_CODES) */
    "ALTER TABLE customers ADD COLUMN tax_codes TEXT;",
    /* 30: a recurring metric's events carry their precise amounts into later periods (the
     * dynamic charge model's price); rows from before have none, as no charge read them */
    "ALTER TABLE recurring_events ADD COLUMN precise_total_amount_cents TEXT;",
    /* 31: a hold's priced usage may carry its own price (a dynamic charge's), as an event */
    "ALTER TABLE authorizations ADD COLUMN precise_total_amount_cents TEXT;",
    /* 32: a threshold rule new or changed that has not fired yet for the balance it started
     * at (a load otherwise takes a due rule for fired) */
    "ALTER TABLE wallets ADD COLUMN rule_unfired INTEGER NOT NULL DEFAULT 0;",
    /* 33: a hold reserves particular grants' credits (engine/wallet_book.h): its parts are per
     * wallet and grant, grant 0 being what it reserves on no grant (a soft wallet's
     * overdraft). Holds open across this migration keep their parts on no grant: their
     * wallets' amounts stay reserved as before, and no grant's credits are kept for them past
     * its expiry. The live parts are found by wallet and grant (a wallet's load, the expiry
     * sweep): released parts are zeroed, so the index keeps only open ones. */
    "CREATE TABLE authorization_holds_by_grant ("
    "  authorization_id INTEGER NOT NULL, wallet_id INTEGER NOT NULL,"
    "  grant_id INTEGER NOT NULL, cents INTEGER NOT NULL,"
    "  PRIMARY KEY (authorization_id, wallet_id, grant_id)) WITHOUT ROWID;"
    "INSERT INTO authorization_holds_by_grant"
    "  SELECT authorization_id, wallet_id, 0, cents FROM authorization_holds;"
    "DROP TABLE authorization_holds;"
    "ALTER TABLE authorization_holds_by_grant RENAME TO authorization_holds;"
    "CREATE INDEX authorization_holds_live ON authorization_holds(wallet_id, grant_id)"
    "  WHERE cents > 0;",
    /* 34: what holds open at an interval rule's anniversary reserve of its previous grants
     * rolls over, once they leave it unspent, within the room the rollover's cap left
     * (engine/wallet_clock.c, roll_over): the parts it applies to, and the room */
    "ALTER TABLE authorization_holds ADD COLUMN at_rollover INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE wallets ADD COLUMN rollover_room_cents INTEGER NOT NULL DEFAULT 0;",
    /* 35: what open holds reserve of each grant, kept as one row a grant (a wallet's load and
     * the expiry sweep read it by key) in place of 33's index on the holds' parts: that index
     * took an entry a hold at a random place in a table that grows with every hold, and the
     * holds' p99 beside ingest went from about 40 ms to 170-400 ms in some runs
     * (bench/holds_ab.sh; an earlier session's index on open holds did the same, 27) */
    "DROP INDEX IF EXISTS authorization_holds_live;"
    "CREATE TABLE grant_holds (wallet_id INTEGER NOT NULL, grant_id INTEGER NOT NULL,"
    "  cents INTEGER NOT NULL, PRIMARY KEY (wallet_id, grant_id)) WITHOUT ROWID;"
    "INSERT INTO grant_holds SELECT h.wallet_id, h.grant_id, SUM(h.cents)"
    "  FROM authorization_holds h JOIN authorizations a ON a.id = h.authorization_id"
    "  WHERE a.status = 1 AND h.cents > 0 AND h.grant_id != 0 GROUP BY h.wallet_id, h.grant_id;",
    /* 36: when each subscription whose wallets pay a recurring charge's carried units starts
     * its next period (engine: settle_periods), so that a period without events is debited
     * too. Those with recurring events are due at once: their current period is settled by
     * the first sweep, as their first event would have. */
    "CREATE TABLE period_settlements (subscription_id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL, due_at INTEGER NOT NULL);"
    "CREATE INDEX period_settlements_due ON period_settlements(org_id, due_at);"
    "INSERT OR IGNORE INTO period_settlements SELECT DISTINCT subscription_id, org_id, 0"
    "  FROM recurring_events;",
    /* 37: what of each usage transaction a soft wallet's overdraft paid and nothing has repaid
     * yet (engine/wallet_book.c, settle_owed), found oldest first by the credits that repay
     * it; the index holds only the few rows that owe. A wallet overdrawn before has what it
     * owes laid on its usage transactions newest first, each up to the part no grant paid:
     * repayments made before were not linked to the usage they paid, so which older usage
     * they settled is not known. */
    "ALTER TABLE wallet_transactions ADD COLUMN owed_cents INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX wallet_transactions_owed ON wallet_transactions(wallet_id, id)"
    "  WHERE owed_cents > 0;"
    "WITH unpaid AS (SELECT t.id, t.wallet_id, w.overdrawn_cents AS owed,"
    "  t.amount_cents - COALESCE((SELECT SUM(k.amount_cents) FROM wallet_consumptions k"
    "  WHERE k.outbound_id = t.id), 0) AS cents"
    "  FROM wallet_transactions t JOIN wallets w ON w.id = t.wallet_id"
    "  WHERE w.overdrawn_cents > 0 AND t.transaction_type = 1 AND t.transaction_status = 4),"
    " newest AS (SELECT id, owed, cents,"
    "  SUM(cents) OVER (PARTITION BY wallet_id ORDER BY id DESC) - cents AS newer"
    "  FROM unpaid WHERE cents > 0)"
    " UPDATE wallet_transactions SET owed_cents = MIN(n.cents, n.owed - n.newer)"
    "  FROM newest n WHERE wallet_transactions.id = n.id AND n.newer < n.owed;",
    /* 38: customers by external id, deleted ones too (customers_live_external_id holds only
     * the live one): the ledger's external_customer_id filter answers every customer that had
     * it, as their entries read it */
    "CREATE INDEX customers_by_external_id ON customers(org_id, external_id);",
    /* 39: two members of Lago's customer, kept as sent: its Salesforce id, and whether its
     * invoices leave out the invoice custom sections */
    "ALTER TABLE customers ADD COLUMN external_salesforce_id TEXT;"
    "ALTER TABLE customers ADD COLUMN skip_invoice_custom_sections INTEGER NOT NULL DEFAULT 0;",
    /* 40: where a code's history starts again: the stored events of a code up to
     * last_event_id were a deleted billable metric's, and no usage counts them (Lago's
     * DeleteEventsJob marks them deleted). Events are never changed, so the line is kept here. */
    "CREATE TABLE metric_history_floors (org_id INTEGER NOT NULL, code TEXT NOT NULL,"
    "  last_event_id INTEGER NOT NULL, PRIMARY KEY (org_id, code)) WITHOUT ROWID;",
    /* 41: a wallet's applies_to follows its billable metrics' renames and deletions (engine:
     * wallets_retarget_metric); before, it kept their old codes. A code no live metric of its
     * organization has is dropped: its metric was renamed or deleted, and the wallet has not
     * paid for it since, nor should it pay for a metric made later with it. A list that leaves
     * empty is marked as json/catalog_refs marks one, so that the wallet goes on paying for none
     * rather than for all. (A code a metric made again since has is kept: which one the wallet
     * meant is not known.) */
    "WITH kept AS (SELECT w.id, (SELECT json_group_array(j.value)"
    "  FROM json_each(w.terms, '$.applies_to.billable_metric_codes') j"
    "  WHERE EXISTS (SELECT 1 FROM catalog_items m WHERE m.org_id = w.org_id AND m.kind = 2"
    "   AND m.code = j.value AND m.deleted_at IS NULL)) AS codes"
    "  FROM wallets w WHERE json_valid(w.terms)"
    "  AND json_type(w.terms, '$.applies_to.billable_metric_codes') = 'array'"
    "  AND json_array_length(w.terms, '$.applies_to.billable_metric_codes') > 0)"
    " UPDATE wallets SET terms = CASE json_array_length(k.codes) WHEN 0"
    "  THEN json_set(terms, '$.applies_to.billable_metric_codes', json('[]'),"
    "   '$.applies_to.limited_to_billable_metrics', json('true'))"
    "  ELSE json_set(terms, '$.applies_to.billable_metric_codes', json(k.codes)) END"
    " FROM kept k WHERE wallets.id = k.id"
    "  AND json_array_length(k.codes) < json_array_length(wallets.terms,"
    "   '$.applies_to.billable_metric_codes');",
    /* 42: the expiry a hold was asked for (expires_in), before an ending_at bounded it: an end
     * taken back (a scheduled downgrade's, when the downgrade is canceled) gives it back. A
     * hold from before has none: its expires_at, cut or not, is all that is known of it. */
    "ALTER TABLE authorizations ADD COLUMN asked_expires_at INTEGER;",
    /* 43: the part of a code's line a deletion drew (a rename draws one too, but Lago's code
     * change leaves the events shown): GET /events hides the code's events up to
     * deleted_through, as Lago's default scope hides the events DeleteEventsJob marked, and
     * deleted_count is how many those are, so that an unfiltered list answers its total
     * without reading them. Lines drawn before say nothing of which drew them: they hide none. */
    "ALTER TABLE metric_history_floors ADD COLUMN deleted_through INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE metric_history_floors ADD COLUMN deleted_count INTEGER NOT NULL DEFAULT 0;",
    /* 44: the subscription list in Lago's order (subscription_at, then created_at, latest
     * first), read from the index rather than sorted whole for each page */
    "CREATE INDEX subscriptions_by_subscription_at"
    "  ON subscriptions(org_id, subscription_at, created_at, id);",
    /* 45: answers an older Tally kept under a key that no retry should get: an empty 200 (the
     * wallet journal's write-out, sent first for a keyed wallet change, took the change's
     * key, and the change itself was then taken for its replay, for good) and refusals that
     * something did not exist (kept on some routes, so the same key could never succeed once
     * it did). A refusal changed nothing, and every answer of a change has a body: dropping
     * these lets a retry apply the request once, and cannot apply anything twice. */
    "DELETE FROM idempotency_keys WHERE length(body) = 0 OR http_status = 404"
    "  OR (http_status = 422 AND CAST(body AS TEXT) LIKE '%\\_not\\_found\"%' ESCAPE '\\');",
    /* 46: the tax part of what a charge's wallets paid this period, as posted to taxes_payable
     * (engine/wallets.c, settle_tax); -1 for a debit written before taxes had an account (its
     * taxes went to revenue, and stay there) */
    "ALTER TABLE charge_debits ADD COLUMN posted_tax_cents INTEGER NOT NULL DEFAULT -1;",
    /* 47: when each indexed recurring event was accepted (its created_at): a usage built from
     * nothing carries those accepted before its period as the units it starts with, and those
     * accepted in it (late events) as its own, which may raise a pay-in-advance peak
     * (engine/usage.c, carry_recurring). date_recurring_events reads the stored ones' from
     * their blocks. */
    "ALTER TABLE recurring_events ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;",
    /* 48: where a charge's debit was opened by a customer's new wallet in the middle of its
     * period (engine/wallets.c, wallets_open_period): the last event then stored (-1: not
     * opened so) and the cost then given to the invoice, which a re-pricing re-prices */
    "ALTER TABLE charge_debits ADD COLUMN opened_event_id INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE charge_debits ADD COLUMN opened_cents INTEGER NOT NULL DEFAULT 0;",
    /* 49: an invoice is numbered when it is issued (store_invoice_save), as Lago's; an open one
     * (a top-up's credit invoice waiting for its payment) took the next number when it was made,
     * before. It gives it back: "TLY-DRAFT" and no sequential id until its payment issues it,
     * numbered then after those issued before it. (A number it held below an issued invoice's
     * stays a gap: issued numbers are not changed.) */
    "UPDATE invoices SET sequential_id = 0, number = 'TLY-DRAFT'"
    "  WHERE status IN (0, 3) AND sequential_id <> 0;", /* draft (none made yet), open */
    /* 50: each debit's place among its customer's debits, numbered when it is first made: a
     * partial overdraft repayment takes them by (period_from, seq), the order the overdraft was
     * run up (engine/wallet_book.c, wallet_book_reassign_overdraft). They went by the charges'
     * lago ids before, random, so that two customers fed the same requests split a refund
     * between their grants differently. Rows written before are numbered in that old order, so
     * that what they hold is repaid as it would have been. */
    "ALTER TABLE charge_debits ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
    "UPDATE charge_debits SET seq = n.seq FROM (SELECT subscription_id AS s,"
    "  charge_lago_id AS c, period_from AS p, ROW_NUMBER() OVER (PARTITION BY org_id,"
    "  customer_id ORDER BY period_from, subscription_id, charge_lago_id) AS seq"
    "  FROM charge_debits) AS n"
    "  WHERE n.s = charge_debits.subscription_id AND n.c = charge_debits.charge_lago_id"
    "  AND n.p = charge_debits.period_from;",
    /* 51: a test clock goes up to EVENT_CLOCK_MAX, 9998-12-31T09:59:59.999999Z, where every
     * zone is still in 9998 (core/event.h); it went to 9998-12-31T23:59:59.999999Z before, where
     * a zone 14 hours ahead is in 9999 and a yearly period there ends in 10000, past what Tally
     * can price. A clock left past it comes back to it, once, as the store is opened. */
    "UPDATE organizations SET test_clock_now = 253370714399999999"
    "  WHERE has_test_clock <> 0 AND test_clock_now > 253370714399999999;",
    /* 52: a subscription's purchase order number (Lago's purchase_order_number, for its
     * invoices); one from before has none */
    "ALTER TABLE subscriptions ADD COLUMN purchase_order_number TEXT;",
    /* 53: an invoice's purchase order number, fixed when it is made: a credit invoice's is its
     * top-up's, else its wallet's (engine/wallet_book.c, credit_invoice). One from before
     * takes its top-up's, else its wallet's as it is now (what it was then is not known). */
    "ALTER TABLE invoices ADD COLUMN purchase_order_number TEXT;"
    "UPDATE invoices SET purchase_order_number = COALESCE("
    "  (SELECT json_extract(t.details, '$.purchase_order_number') FROM wallet_transactions t"
    "   WHERE t.id = invoices.wallet_transaction_id AND json_valid(t.details)),"
    "  (SELECT json_extract(w.terms, '$.purchase_order_number') FROM wallet_transactions t"
    "   JOIN wallets w ON w.id = t.wallet_id"
    "   WHERE t.id = invoices.wallet_transaction_id AND json_valid(w.terms)));",
};
_Static_assert(EVENT_CLOCK_MAX == INT64_C(253370714399999999), "migration 51 writes it out");
#define MIGRATION_EVENT_BLOCKS 22
#define MIGRATION_EVENT_SUMMARIES 23
#define MIGRATION_RECURRING_ARRIVALS 47
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

int store_read_user_version(sqlite3 *db)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

#define MIGRATION_BLOCK_EVENTS 100 /* events a block made from `events` rows holds at most */

/* Writes one block of the events collected so far (migration 22). */
static bool migrate_block(sqlite3_stmt *insert, struct store_event *events, size_t count,
                          struct buf *block)
{
    buf_reset(block);
    event_block_encode(block, events, count);
    if (buf_failed(block))
        return false;
    sqlite3_bind_int64(insert, 1, events[0].id);
    sqlite3_bind_int64(insert, 2, events[0].org_id);
    sqlite3_bind_int64(insert, 3, (int64_t)count);
    sqlite3_bind_blob(insert, 4, block->data, (int)block->len, SQLITE_STATIC);
    bool ok = sqlite3_step(insert) == SQLITE_DONE;
    sqlite3_reset(insert);
    return ok;
}

/* Migration 22's moving of `events` rows into blocks (runs of one organization's consecutive
 * ids, at most MIGRATION_BLOCK_EVENTS), in its transaction; then the table goes. */
static bool migrate_events_into_blocks(sqlite3 *db, char err[STORE_ERR_MAX])
{
    sqlite3_stmt *read = NULL, *insert = NULL;
    struct store_event run[MIGRATION_BLOCK_EVENTS];
    size_t n = 0;
    struct arena a;
    arena_init(&a);
    struct buf block;
    buf_init(&block);
    bool ok = sqlite3_prepare_v2(db,
                                 "SELECT id, org_id, subscription_id, transaction_id,"
                                 " external_subscription_id, code, timestamp, properties,"
                                 " precise_total_amount_cents, created_at FROM events ORDER BY id",
                                 -1, &read, NULL) == SQLITE_OK &&
              sqlite3_prepare_v2(db,
                                 "INSERT INTO event_blocks(first_id, org_id, count, data)"
                                 " VALUES (?1, ?2, ?3, ?4)",
                                 -1, &insert, NULL) == SQLITE_OK;
    int rc = SQLITE_DONE;
    while (ok && (rc = sqlite3_step(read)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(read, 0), org_id = sqlite3_column_int64(read, 1);
        bool joins = n > 0 && n < MIGRATION_BLOCK_EVENTS && org_id == run[0].org_id &&
                     id == run[n - 1].id + 1;
        if (n > 0 && !joins) { /* the run ends: its block, then its strings go */
            ok = migrate_block(insert, run, n, &block);
            n = 0;
            arena_free(&a);
            arena_init(&a);
        }
        struct store_event e = {.id = id,
                                .org_id = org_id,
                                .subscription_id = sqlite3_column_int64(read, 2),
                                .transaction_id = column_text(read, 3, &a),
                                .external_subscription_id = column_text(read, 4, &a),
                                .code = column_text(read, 5, &a),
                                .timestamp = sqlite3_column_int64(read, 6),
                                .properties_json = column_text(read, 7, &a),
                                .precise_total_amount_cents = column_text(read, 8, &a),
                                .created_at = sqlite3_column_int64(read, 9)};
        ok = ok && e.transaction_id && e.external_subscription_id && e.code && e.properties_json;
        if (ok)
            run[n++] = e;
    }
    ok = ok && rc == SQLITE_DONE && (n == 0 || migrate_block(insert, run, n, &block));
    if (!ok)
        store_set_err(err, "moving events into blocks", sqlite3_errmsg(db));
    sqlite3_finalize(read);
    sqlite3_finalize(insert);
    arena_free(&a);
    buf_free(&block);
    return ok && store_exec_script(db, "DROP TABLE events;", err);
}

/* Migration 23's summaries of the blocks already stored, in its transaction. */
static bool summarize_event_blocks(sqlite3 *db, char err[STORE_ERR_MAX])
{
    sqlite3_stmt *read = NULL, *insert = NULL;
    struct store_event *events = NULL;
    size_t cap = 0;
    bool ok = sqlite3_prepare_v2(db, "SELECT first_id, org_id, data FROM event_blocks ORDER BY 1",
                                 -1, &read, NULL) == SQLITE_OK &&
              sqlite3_prepare_v2(db, EVENT_SUMMARY_INSERT, -1, &insert, NULL) == SQLITE_OK;
    int rc = SQLITE_DONE;
    while (ok && (rc = sqlite3_step(read)) == SQLITE_ROW) {
        struct event_block_reader r;
        ok = store_open_block(read, &r);
        size_t n = ok ? event_block_count(&r) : 0;
        if (ok && n > cap) {
            free(events);
            events = malloc(sizeof *events * n);
            cap = events ? n : 0;
            ok = events != NULL;
        }
        size_t got = 0;
        while (ok && got < n && event_block_next(&r, &events[got]))
            got++;
        ok = ok && got == n && n > 0 && store_insert_summary(insert, events, n);
    }
    ok = ok && rc == SQLITE_DONE;
    if (!ok)
        store_set_err(err, "summarizing event blocks", sqlite3_errmsg(db));
    sqlite3_finalize(read);
    sqlite3_finalize(insert);
    free(events);
    return ok;
}

/* Migration 47's arrival times of the recurring events indexed before it, read from the blocks
 * that hold the events (ids in a block are consecutive, and the index is read in id order, so
 * each block is opened once), in its transaction. */
static bool date_recurring_events(sqlite3 *db, char err[STORE_ERR_MAX])
{
    sqlite3_stmt *ids = NULL, *block = NULL, *keep = NULL;
    bool ok =
        sqlite3_exec(db,
                     "CREATE TEMP TABLE recurring_arrivals (id INTEGER PRIMARY KEY,"
                     " created_at INTEGER NOT NULL)",
                     NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT DISTINCT id FROM recurring_events ORDER BY id", -1, &ids,
                           NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT first_id, org_id, data FROM event_blocks WHERE first_id <= ?1"
                           " ORDER BY first_id DESC LIMIT 1",
                           -1, &block, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "INSERT INTO temp.recurring_arrivals VALUES (?1, ?2)", -1, &keep,
                           NULL) == SQLITE_OK;
    struct event_block_reader r = {0};
    bool open = false; /* r reads the block in `block`'s current row */
    int rc = SQLITE_DONE;
    while (ok && (rc = sqlite3_step(ids)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(ids, 0);
        if (!open || id < r.next_id || id >= r.next_id + (int64_t)r.left) {
            sqlite3_reset(block);
            sqlite3_bind_int64(block, 1, id);
            open = sqlite3_step(block) == SQLITE_ROW && store_open_block(block, &r);
            if (!open)
                continue; /* no block holds it (never so): it keeps 0, accepted long ago */
        }
        struct store_event e;
        bool found = false;
        while (!found && event_block_next(&r, &e))
            found = e.id == id;
        if (!found)
            continue;
        sqlite3_bind_int64(keep, 1, id);
        sqlite3_bind_int64(keep, 2, e.created_at);
        ok = sqlite3_step(keep) == SQLITE_DONE;
        sqlite3_reset(keep);
    }
    ok = ok && rc == SQLITE_DONE &&
         sqlite3_exec(db,
                      "UPDATE recurring_events SET created_at = a.created_at"
                      " FROM temp.recurring_arrivals a WHERE a.id = recurring_events.id",
                      NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        store_set_err(err, "dating recurring events", sqlite3_errmsg(db));
    sqlite3_finalize(ids);
    sqlite3_finalize(block);
    sqlite3_finalize(keep);
    sqlite3_exec(db, "DROP TABLE IF EXISTS temp.recurring_arrivals", NULL, NULL, NULL);
    return ok;
}

/* found: the version the database had (0 for a new one), read before any migration. */
bool store_migrate(sqlite3 *db, bool may_upgrade, int *found, char err[STORE_ERR_MAX])
{
    int version = store_read_user_version(db);
    if (version < 0) {
        store_set_err(err, store_db_name(db), sqlite3_errmsg(db));
        return false;
    }
    *found = version;
    /* an upgrade cannot be undone (the release before refuses the store after it), so a read
     * does not make one behind the operator's back, as `tally org list` did (an audit) */
    if (version < MIGRATION_COUNT && !may_upgrade) {
        if (snprintf(err, STORE_ERR_MAX,
                     "%s has schema version %d, older than this Tally's (%d): starting tallyd (or "
                     "a tally command that changes something) upgrades it, for good; back it up "
                     "first: tally backup FILE (DEVELOPERS.md, \"Upgrades and backups\")",
                     store_db_name(db), version, MIGRATION_COUNT) >= STORE_ERR_MAX)
            err[STORE_ERR_MAX - 1] = '\0';
        return false;
    }
    if (version > MIGRATION_COUNT) {
        snprintf(err, STORE_ERR_MAX,
                 "the database has schema version %d, newer than this Tally knows (%d): it was "
                 "written by a newer release; run that release or a later one",
                 version, MIGRATION_COUNT);
        return false;
    }
    for (int v = version; v < MIGRATION_COUNT; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", v + 1);
        if (!store_exec_script(db, "BEGIN IMMEDIATE", err))
            return false;
        if (!store_exec_script(db, migrations[v], err) ||
            (v + 1 == MIGRATION_EVENT_BLOCKS && !migrate_events_into_blocks(db, err)) ||
            (v + 1 == MIGRATION_EVENT_SUMMARIES && !summarize_event_blocks(db, err)) ||
            (v + 1 == MIGRATION_RECURRING_ARRIVALS && !date_recurring_events(db, err)) ||
            !store_exec_script(db, bump, err) || !store_exec_script(db, "COMMIT", err)) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return false;
        }
    }
    return true;
}

int store_found_schema_version(const struct store *st)
{
    return st->found_version;
}

int store_schema_version(struct store *st)
{
    return store_read_user_version(st->conn.db);
}

int store_latest_schema_version(void)
{
    return MIGRATION_COUNT;
}
