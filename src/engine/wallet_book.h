/*
 * engine/wallet_book: the writer's in-memory wallets, and how they reach the store.
 *
 * The book holds, per customer, the active wallets with their live grants, the rules read from
 * their terms, the ledger balances of their accounts, and what each usage charge of the
 * customer's subscriptions has debited so far in its period: a cache of the store, loaded on
 * first use. It also owns the writes: the movements of credits (new credits, voids, expiry,
 * termination) that write at once, and the flush that writes what event commands deferred, one
 * posting and a few row updates per changed wallet per group commit.
 *
 * Undo: an event command's customers are copied when it first touches them and put back if it
 * is refused; any other command's are dropped and reloaded (its writes are undone by its
 * savepoint, and the book was flushed before it began).
 *
 * The journal: writing each debited wallet's rows at every group commit costs about eight row
 * writes per wallet, whatever the number of events; with a thousand customers a commit, that
 * was two thirds of the writer's time. So an event commit writes one journal record instead:
 * every changed customer's debits since the last flush (grant moves, amounts taken and given
 * back, overdraft, what each charge has debited), as one blob. The flush (materialization)
 * runs when the journal is old or large, before any other command, before a read of wallet
 * state (the API asks for it), and when an event command wrote wallet rows itself (an expiry,
 * a rule firing); it writes the rows and empties the journal in the same transaction. Because
 * nothing else writes wallets while the journal is not empty, the tables plus the newest
 * record of each customer are the whole state: wallet_book_recover rebuilds it from them after
 * a crash or a failed commit.
 *
 * Stuck customers: each customer is written out on its own, under its own savepoint. One whose
 * write-out fails (its rows refuse the write, its wallets no longer load at recovery, its record
 * does not fit its tables) is rolled back alone: its memory and the organizations' balances go
 * back as they were, and it stays pending, "stuck" (struct wallet_stuck), retried no sooner than
 * its backoff (WALLET_STUCK_FIRST_USEC, doubling to WALLET_STUCK_MAX_USEC); every other customer
 * is written out and the batch commits. Before, that one customer failed every batch for ever,
 * for every organization, silently (an audit). Invariants:
 * - a stuck customer's pending state is never lost: it is in the newest journal record naming
 *   it, and in memory (loaded, or a "shell" read from the journal alone when its tables do not
 *   load); a write-out that leaves stuck customers rewrites the journal as one record holding
 *   all of them (and drops the rest), so the tables plus that record are still the whole state;
 * - nothing but its own write-out touches a stuck customer: wallet_book_customer answers NULL
 *   for it (refused_stuck: the command fails with 500 store_failed saying why) and
 *   wallet_book_forget will not drop it, so nothing writes its wallets around its debits;
 * - the stuck list survives wallet_book_clear (a failed batch), so the backoff and the one log
 *   line hold across recoveries; a restart forgets it and tries everyone at once.
 * Retries come at the writer's batches and, idle, at its second's wake-up
 * (wallet_book_retry_stuck: those alone, nothing committed if they fail again); a stuck
 * customer's old record is recorded again so the journal is still trimmed; a re-pricing passes
 * a stuck customer over and the engine re-prices it once written out (engine/writer.c).
 *
 * Threads: the engine's writer only.
 */
#ifndef TALLY_ENGINE_WALLET_BOOK_H
#define TALLY_ENGINE_WALLET_BOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ledger.h"
#include "core/period.h"
#include "core/wallet.h"
#include "engine/command.h"
#include "store/store.h"

/* Who paid (part of) a charge's debit: a grant, a soft wallet's overdraft, or nobody (left to
 * the invoice). A charge's fundings are a stack: refund steps pop the latest first. */
enum funding_kind { FUNDING_GRANT = 'g', FUNDING_OVERDRAFT = 'o', FUNDING_UNCOVERED = 'u' };

struct funding {
    enum funding_kind kind;
    int64_t wallet_id, grant_id; /* 0 where the kind has none */
    int64_t cents;
};

/* A customer's journaled changes are written out once they are this old, at most this many
 * customers a commit (so no commit stalls on all of them); the whole journal is written out
 * when it is this large or keeps this many customers pending. Recovery reads at most that. */
#define WALLET_JOURNAL_AGE_MAX_USEC INT64_C(1000000)
#define WALLET_JOURNAL_FLUSH_PER_COMMIT 128
#define WALLET_JOURNAL_BYTES_MAX ((size_t)64 << 20)
#define WALLET_JOURNAL_CUSTOMERS_MAX 100000

struct journal_record {
    int64_t id;
    size_t bytes;
};

#define FUNDING_TEXT_MAX 64 /* one funding as text: "g:<wallet>:<grant>:<cents>;" */

/* A wallet's usage taken or given back since its last write-out, either way, past which an
 * event command writes the customer out before its next debit (2^58: refund steps that give
 * back what the last step took never pile up towards int64 in memory, in a posting or in the
 * day's transaction). */
#define WALLET_UNPOSTED_MAX_CENTS ((int64_t)1 << 58)
/* The most the day's usage (or refund) transaction of a wallet adds up: the next starts anew. */
#define WALLET_DAY_TRANSACTION_MAX_CENTS ((int64_t)1 << 61)

/* What one charge of one subscription has debited in its current period. */
struct charge_debit {
    int64_t subscription_id;
    char *charge_lago_id; /* in the customer's arena */
    tally_time period_from;
    /* Its place among the customer's debits: numbered when the book first made it (the
     * customer's next debit_seq), kept in its rows and the journal. A partial overdraft
     * repayment takes the debits by (period_from, seq), the order the overdraft was run up
     * (wallet_book_reassign_overdraft): the same live and after any load, and a function of
     * the commands alone (not of the charges' random lago ids). */
    int64_t seq;
    int64_t charged_cents;
    /* The tax part of what wallets paid of it (its fundings but the uncovered ones), as posted
     * to taxes_payable (wallets.c, settle_tax); -1: debited before taxes had an account (the
     * tax of its earlier steps went to revenue and stays there). */
    int64_t posted_tax_cents;
    /*
     * A wallet opened in the middle of its period, when the customer had none (a first one, or
     * one after the last was terminated: wallets_open_period): the last event stored then
     * (-1: none opened so in this period), and what the debit then stood at, all of it the
     * invoice's or earlier wallets'. A re-pricing prices those events again
     * (wallets.c, reprice_opening): the invoice's part follows the new price, and the wallet pays
     * only for the units after, as if it had been made after the change (an audit found a
     * raise on the units before a wallet charged to it).
     */
    int64_t opened_event_id, opened_cents;
    struct funding *fundings; /* malloc'd */
    size_t funding_count, funding_cap;
    bool dirty;
    /* The period's start moved (wallet_book_debit_move) since its row was written: that row,
     * under moved_from, goes at the next write-out. */
    bool moved;
    tally_time moved_from;
};

/*
 * How far a new time zone may move a current period's start and leave it the same period
 * (then its debits move with it): at most 26 hours (UTC-12 to UTC+14), and the shortest
 * period is a week.
 */
#define WALLET_PERIOD_MOVE_MAX ((tally_time)2 * 86400 * 1000000)

/* A grant's change in the current command: for its row, consumption rows and postings. */
struct grant_move {
    int64_t grant_id;
    int64_t cents; /* > 0 taken, < 0 given back */
};

struct live_wallet {
    struct store_wallet row;  /* strings in the customer's arena */
    struct wallet_book *book; /* its book: the organization's ledger balances */
    /* Its ledger accounts' balances (debit positive), for each line's balance after. */
    int64_t ledger[LEDGER_ACCOUNT_COUNT];
    /* Its threshold rule (recurring_transaction_rules), if any, and whether it may fire: it
     * fires once per fall, then waits for the ongoing balance to rise above again or for its
     * own top-up to settle (granted at once, paid once paid). */
    bool has_rule, rule_armed, rule_requires_payment, rule_has_expiration;
    /* The book's command number that last fired its threshold rule: a usage fires it once per
     * command (wallet_clock_fire_thresholds). */
    uint64_t rule_fired_in;
    /* Its ongoing balance at the threshold rules' last look (wallet_book_observe_rules): its
     * rule fires only on a fall of its own balance since (a debit, hold, void or expiry of
     * it), never on another wallet's top-up or expiry (an audit found a rule made below its
     * threshold buying credits when a sibling wallet was topped up). */
    int64_t rule_seen_cents;
    bool rule_interval_trigger; /* else a threshold rule */
    enum period_interval rule_interval;
    bool rule_has_start, rule_has_grant_duration, rule_has_rollover;
    tally_time rule_started_at;
    struct wallet_duration rule_grant_duration;
    enum wallet_rollover rule_rollover;
    int64_t rule_rollover_value; /* percent, or cents */
    struct wallet_rule rule;
    tally_time rule_expiration_at;
    const char *rule_name;
    const char *rule_details_json; /* its transactions' metadata ({"metadata":[...]}), or NULL */
    int64_t pending_cents;         /* paid credits waiting for their payment */
    int64_t min_paid_cents, max_paid_cents; /* paid top-up bounds, 0: none */
    /* The day's usage and refund transactions, added to until the day changes (0: none), and
     * what this book has added to each (a new one starts before either passes
     * WALLET_DAY_TRANSACTION_MAX_CENTS). */
    int64_t usage_tx_id, usage_day, refund_tx_id, refund_day;
    int64_t usage_tx_cents, refund_tx_cents;
    unsigned fee_types;
    const char **metric_codes;
    size_t metric_code_count;
    bool metrics_deleted;        /* wallet_applies_to's */
    struct wallet_grant *grants; /* live grants in consumption order; malloc'd */
    size_t grant_count, grant_cap;
    /* The changes since the last flush, written and reset by flush_wallet (one move per grant
     * and direction: a grant's moves add up). */
    struct grant_move *moves; /* malloc'd */
    size_t move_count, move_cap;
    int64_t taken_paid, taken_free, overdrawn_added;
    int64_t given_paid, given_free, overdraft_given;
    /* The tax part of what was taken (posted to taxes_payable, the rest to revenue) and of what
     * was given back (taken out of taxes_payable); either may be non-zero alone, or exceed its
     * amounts, when a step moves tax and net apart (a rate change, the tax rounded once over
     * the charges). */
    int64_t taken_tax, given_tax;
    tally_time pending_at; /* when the latest deferred debit was made, 0: none */
    bool dirty;
};

struct customer_wallets {
    int64_t org_id, customer_id;
    /* Read from the journal alone (its tables did not load, or its record did not fit them):
     * its wallets hold only what the record says (row.id, the pending fields, the moves), its
     * debits the record's. Stuck, never used by a command; written out once it loads. */
    bool shell;
    /* What the book's command `stepped_in` takes from it, at most (wallets_debits_covered) */
    uint64_t stepped_in;
    int64_t step_cents;
    uint64_t touched_in;      /* the book's command number that last touched it */
    bool dirty;               /* in the book's dirty list: changes wait for wallet_book_flush */
    bool unjournaled;         /* in the book's unjournaled list: changed since the last record */
    int64_t dirty_since_usec; /* when it became dirty (the writer's monotonic clock) */
    int64_t journal_first;    /* the first journal record naming it since then, 0: none */
    struct live_wallet *wallets;
    size_t wallet_count;
    struct charge_debit *debits; /* malloc'd */
    size_t debit_count, debit_cap;
    int64_t debit_seq; /* the highest seq of its debits, loaded or made (0: none) */
    struct arena arena;
};

/* A customer's mutable state as it was before an event command touched it (its arrays in
 * the book's snapshot arena). */
struct customer_snapshot {
    int64_t customer_id;
    struct live_wallet *wallets; /* with their own grants and moves */
    size_t wallet_count;
    struct charge_debit *debits; /* with their own fundings */
    size_t debit_count;
    int64_t debit_seq;
};

struct customer_snapshot;

/* An organization's ledger account balance, cached by the writer. */
struct wallet_org_balance {
    int64_t org_id;
    char currency[4];
    enum ledger_account account;
    int64_t balance; /* debit positive */
    bool dirty;      /* not yet in ledger_balances: written by wallet_book_flush */
};

struct tzdb;

/* A customer whose write-out failed: retried from retry_at_usec (the writer's monotonic
 * clock), the wait doubling from WALLET_STUCK_FIRST_USEC to WALLET_STUCK_MAX_USEC. */
#define WALLET_STUCK_FIRST_USEC INT64_C(1000000)
#define WALLET_STUCK_MAX_USEC INT64_C(60000000)
struct wallet_stuck {
    int64_t org_id, customer_id;
    int64_t retry_at_usec, wait_usec;
    bool reported; /* said on stderr (by the engine) */
};

struct wallet_book {
    struct tzdb *tzdb; /* borrowed: customers' zones, for interval rules (may be NULL: UTC) */
    struct customer_wallets **items; /* open addressing by customer id, at most half full */
    size_t count, cap;
    /* Customers changed by the current command / batch: dropped if it does not commit. */
    int64_t *touched;
    size_t touched_count, touched_cap, touched_mark;
    /*
     * Event commands defer their writes: their debits are written once per wallet by
     * wallet_book_flush, and meanwhile recorded by wallet_book_journal. `dirty` names the
     * customers whose memory is ahead of the tables, and `snapshots` hold the customers the
     * current event command touched as they were before it, to put back if it is refused.
     */
    bool deferring;
    /* The current event command's debits cannot be refused (wallets_debits_covered said so):
     * its customers are touched without a snapshot, and if it is undone all the same the
     * batch fails (wallet_book_undo_command), to be rebuilt from the tables and journal. */
    bool unrefusable;
    uint64_t command_number; /* counts commands, so a customer knows it was touched by this one */
    int64_t *dirty;
    size_t dirty_count, dirty_cap;
    struct customer_snapshot *snapshots;
    size_t snapshot_count, snapshot_cap;
    struct arena snapshot_arena; /* the snapshots' arrays, taken back when the command stood */
    /* The journal: customers changed since its last record; its records still stored (id and
     * size, oldest first) and their bytes; whether an event command wrote wallet rows itself
     * (a full flush must follow). `dirty` is in the order customers became dirty, so its head
     * is the customer waiting longest, and the oldest record any pending customer needs. */
    int64_t *unjournaled;
    size_t unjournaled_count, unjournaled_cap;
    struct journal_record *records;
    size_t record_count, record_cap;
    int64_t journal_records; /* records stored (after a crash: before recovery knew them) */
    size_t journal_bytes;
    bool must_flush;
    /* The organizations' ledger balances, as the postings written so far left them (put back
     * as they were when a command is undone; stored by wallet_book_flush). */
    struct wallet_org_balance *org_balances;
    size_t org_balance_count, org_balance_cap;
    struct wallet_org_balance *org_saved; /* as they were when the current command began */
    size_t org_saved_count, org_saved_cap;
    /* Stuck customers (see the top), which survive wallet_book_clear; those written out at
     * last since the engine last looked (for its log); write-outs that failed, ever; whether
     * the current command asked for a stuck customer. */
    struct wallet_stuck *stuck;
    size_t stuck_count, stuck_cap;
    struct wallet_stuck *unstuck;
    size_t unstuck_count, unstuck_cap;
    uint64_t writeout_failures;
    bool refused_stuck;
    /* Scratch of a customer's isolated write-out: its snapshot, the organizations' balances,
     * and the customers a journal commit wrote out. */
    struct arena writeout_arena;
    struct wallet_org_balance *writeout_saved;
    size_t writeout_saved_cap;
    int64_t *written;
    size_t written_count, written_cap;
    /* Stuck customers whose journal record is old (WALLET_JOURNAL_AGE_MAX_USEC): recorded again
     * in the group's record, so older records can be dropped (an audit found the journal kept
     * every record since, up to WALLET_JOURNAL_BYTES_MAX, while one customer was stuck). */
    int64_t *rejournal;
    size_t rejournal_count, rejournal_cap;
    /* Stuck customers whose wallets' terms changed in the store meanwhile (a metric deleted):
     * dropped, to reload, once written out. */
    int64_t *reload;
    size_t reload_count, reload_cap;
    /* Customers the last wallet_book_recover wrote out (for the engine's log at a start). */
    size_t recovered_written;
};

void wallet_book_init(struct wallet_book *b);
void wallet_book_free(struct wallet_book *b);
/* Where the current command starts (for wallet_book_undo_command); `deferring` for event
 * commands, whose writes wait for wallet_book_flush. */
void wallet_book_mark_command(struct wallet_book *b, bool deferring);
/* Takes back what the current command changed in memory (it was refused or failed): an event
 * command's customers are put back as they were; others are dropped, to reload. False if it
 * cannot: an `unrefusable` command touched customers without their snapshots; the caller then
 * fails the batch (the book is cleared and recovered from the store). */
bool wallet_book_undo_command(struct wallet_book *b);
/* Drops everything (the batch did not commit). */
void wallet_book_clear(struct wallet_book *b);
/* The batch committed: nothing to undo any more. */
void wallet_book_committed(struct wallet_book *b);
/*
 * Writes every deferred change (debits, grants, usage transactions, postings, and the
 * organizations' ledger balances) in the current transaction, with cmd's ids, and empties the
 * journal. The engine calls it before any command that writes wallets directly (outside that
 * command's savepoint) and before a COMMIT when the journal is due. A failure fails the batch.
 */
enum command_result wallet_book_flush(struct wallet_book *b, struct store *st, struct command *cmd);
/*
 * Instead of the flush, before an event group's COMMIT (now_usec: the writer's monotonic
 * clock): writes out the customers pending longest (WALLET_JOURNAL_AGE_MAX_USEC, at most
 * WALLET_JOURNAL_FLUSH_PER_COMMIT), then one journal record of the customers changed since the
 * last record and of those written out, drops the records no pending customer needs, and
 * stores the organizations' ledger balances. Ids from cmd. A failure fails the batch.
 */
enum command_result wallet_book_journal(struct wallet_book *b, struct store *st,
                                        struct command *cmd, int64_t now_usec);
/* Whether changes wait in memory and the journal for a flush (stuck customers' aside: a flush
 * does not write them before their retry). */
bool wallet_book_pending(const struct wallet_book *b);
/* Whether the customer is stuck (see the top). */
bool wallet_book_is_stuck(const struct wallet_book *b, int64_t customer_id);
/* The organization of a stuck customer whose retry has come at now_usec (the writer's
 * monotonic clock), 0 if none: the engine retries it even when no request comes. */
int64_t wallet_book_stuck_due(const struct wallet_book *b, int64_t now_usec);
/*
 * Retries the write-out of the organization's stuck customers whose retry has come, and of
 * them alone, in the current transaction (cmd's ids): how many were written out (the journal
 * then rewritten as the record of those still pending), 0 if none (nothing written: the caller
 * rolls back, and commits nothing), -1 if the batch cannot go on.
 */
long wallet_book_retry_stuck(struct wallet_book *b, struct store *st, struct command *cmd,
                             int64_t org_id, int64_t now_usec);
/*
 * After a crash or a failed commit (the book is empty): loads the customers the journal names,
 * puts the newest record of each on top of what the tables hold, and flushes, in the current
 * transaction, with cmd's ids. A record that does not fit the tables is a store failure.
 */
enum command_result wallet_book_recover(struct wallet_book *b, struct store *st,
                                        struct command *cmd);

/* ---- for engine/wallets and engine/wallet_clock (the writer) ---- */

/* Cents as the wallet's credits (floored to what cents can hold, with `floor`), for a
 * message, in cmd's arena. Worth more credits than Tally counts (a tiny rate): with `floor`
 * (a bound) the most it counts, WALLET_CREDITS_MAX_TEXT, else "more than" it. */
const char *wallet_book_credits_text(struct command *cmd, const struct live_wallet *w,
                                     int64_t cents, bool floor);
/* The customer's wallets, loaded from the store on first use; NULL on a store failure, or if the
 * customer is stuck (b->refused_stuck is then set). */
struct customer_wallets *wallet_book_customer(struct wallet_book *b, struct store *st,
                                              int64_t org_id, int64_t customer_id);
/* Drops a customer (it reloads on next use). False, dropping nothing, if it is stuck
 * (b->refused_stuck set): its pending debits are only in memory and the journal, and the
 * caller fails. */
bool wallet_book_forget(struct wallet_book *b, int64_t customer_id);
/* Drops a customer whose stored terms changed: now, or, if it is stuck, once it is written out
 * (nothing reads a stuck customer's terms before). False only without memory. */
bool wallet_book_forget_later(struct wallet_book *b, int64_t customer_id);
/* Notes that the current command changes the customer (for undo). */
bool wallet_book_touch(struct wallet_book *b, struct customer_wallets *cw);
/*
 * The threshold rules' look at the customer's wallets now (rule_seen_cents: a rule fires on a
 * fall from here), arming a rule whose wallet stands above its threshold: at a command's start
 * (wallet_book_touch), after a hold's release, and after the rules fire. Writer thread.
 */
void wallet_book_observe_rules(struct customer_wallets *cw);
/* Notes that the customer has changes waiting for wallet_book_flush. */
bool wallet_book_mark_dirty(struct wallet_book *b, struct customer_wallets *cw);
/* The customer's wallet with that row id, or NULL. */
struct live_wallet *wallet_book_wallet(struct customer_wallets *cw, int64_t wallet_id);
/* Grants: what they hold, dropping emptied ones, keeping the consumption order. */
int64_t wallet_book_grants_total(const struct live_wallet *w);
/* What counts against WALLET_BALANCE_MAX_CENTS (its grants and pending purchases) and against
 * WALLET_LIFETIME_MAX_CENTS (that, and what it consumed, voided or let expire, and the overdraft
 * it may still draw). */
int64_t wallet_book_holds_cents(const struct live_wallet *w);
int64_t wallet_book_lifetime_cents(const struct live_wallet *w);
/* The usage taken from, or given back to, the wallet since its last write-out (the larger). */
int64_t wallet_book_unposted_cents(const struct live_wallet *w);
/*
 * Whether `cents` more credits (paid or free) fit the wallet, `planned` more being already on
 * their way in by the same request, and the organization's account they enter the ledger by
 * (receivable or promotional_grants, ledger_account_max). Changes nothing. COMMAND_INVALID when
 * they do not: with cmd, on `field` with code value_is_out_of_range and a message saying how
 * much fits; with cmd NULL, silently (a rule's top-up that does not fit is not made).
 */
enum command_result wallet_book_check_credits(struct store *st, struct command *cmd,
                                              struct live_wallet *w, bool paid, int64_t planned,
                                              int64_t cents, const char *field);
/*
 * Whether a top-up of `paid` and `granted` credits fits: wallet_book_check_credits on the paid
 * ones, then on the granted ones on top of them (the order the top-up adds them in). Changes
 * nothing. With cmd, a refusal names paid_credits or granted_credits; with cmd NULL it is
 * silent (a rule's top-up that does not fit is not made).
 */
enum command_result wallet_book_check_top_up(struct store *st, struct command *cmd,
                                             struct live_wallet *w, int64_t paid, int64_t granted);
void wallet_book_drop_empty_grants(struct live_wallet *w);
bool wallet_book_grant_insert(struct live_wallet *w, const struct wallet_grant *g);
struct wallet_grant wallet_book_grant_of(const struct store_wallet_transaction *t);
/* Records a grant's change in the current command, for its rows and postings. */
bool wallet_book_note_move(struct live_wallet *w, int64_t grant_id, int64_t cents);
/* The live grant with that id, or NULL. */
struct wallet_grant *wallet_book_live_grant(struct live_wallet *w, int64_t id);
/* A charge's debit and the stack of what paid it. */
bool wallet_book_push_funding(struct charge_debit *d, struct funding f);
struct charge_debit *wallet_book_find_debit(struct customer_wallets *cw, int64_t subscription_id,
                                            const char *charge_lago_id);
struct charge_debit *wallet_book_add_debit(struct customer_wallets *cw, int64_t subscription_id,
                                           const char *charge_lago_id, tally_time period_from);
void wallet_book_debit_reset(struct charge_debit *d, tally_time period_from);
/* Whether a debit's period is the one starting at `from`: exactly, since a new time zone moves
 * the debits with the start (wallets_move_period), and a start a few hours off may be another
 * period (a short first one). */
bool wallet_book_debit_same_period(const struct charge_debit *d, tally_time from);
/* Moves the debit's period to start at `from`, keeping what it debited. */
void wallet_book_debit_move(struct charge_debit *d, tally_time from);
/* Writes a balanced posting with each line's balance after (about a hold, or not): every
 * balance is checked first (ledger_posting_balances_after), and a posting that would take an
 * account past its bound changes nothing and is COMMAND_INVALID (the account named, with a
 * message). */
enum command_result wallet_book_post_about(struct store *st, struct command *cmd,
                                           struct live_wallet *w, int64_t wallet_transaction_id,
                                           int64_t authorization_id, tally_time at,
                                           const struct ledger_posting *p);
enum command_result wallet_book_post(struct store *st, struct command *cmd, struct live_wallet *w,
                                     int64_t wallet_transaction_id, tally_time at,
                                     const struct ledger_posting *p);
/* Writes a customer's changes now (a non-deferred command, or the flush). */
enum command_result wallet_book_flush_customer(struct store *st, struct command *cmd,
                                               struct customer_wallets *cw);
/*
 * A wallet terminated since it paid part of a charge, for that charge's refund step: loaded
 * from the store for the current command (the book holds active wallets only, and those that
 * expired in the batch so far: wallet_book_committed). NULL on a store failure, or if it is not
 * terminated. The caller owns it (in cmd's arena): wallet_book_unload frees its arrays.
 */
struct live_wallet *wallet_book_load_terminated(struct wallet_book *b, struct store *st,
                                                struct command *cmd, int64_t wallet_id);
void wallet_book_unload(struct live_wallet *w);
/*
 * A refund step gave back to a terminated wallet (credits to its grants, or overdraft it no
 * longer owes): writes it now, its refund posting first, then voids what came back to its
 * grants (expires it, for a wallet terminated at its expiration_at or a grant past its own),
 * so revenue follows the fee and a terminated wallet never holds credits. Direct writes: the
 * journal's stretch ends with this commit (must_flush).
 */
enum command_result wallet_book_settle_terminated(struct store *st, struct command *cmd,
                                                  struct live_wallet *w);
/* Credit movements, each with its transactions and postings, written at once: expiring a
 * grant (limit > 0: at most that much; grant_id 0: every grant), the overdraft a new grant
 * repays, new credits (a purchase billed by a credit invoice, or a grant), voids, and the
 * termination of a wallet (its credits voided, or expired). */
enum command_result wallet_book_expire(struct store *st, struct command *cmd, struct live_wallet *w,
                                       int64_t grant_id, int64_t limit);
/*
 * Each grant past its expiry (expiration_at < before) keeps what open holds reserve of it
 * (held_cents, and capturing_cents during a capture); the rest of it expires now. Holds are
 * never left without the credits they reserve, and no credit outlives its expiry longer than
 * the holds that reserve it.
 */
enum command_result wallet_book_expire_unheld(struct store *st, struct command *cmd,
                                              struct live_wallet *w, tally_time before);
/* What the wallet's open holds reserve on none of its grants: a soft wallet's overdraft (and
 * parts of holds made before reservations were per grant, schema 33). */
int64_t wallet_book_held_elsewhere(const struct live_wallet *w);
/* The customer's debits in the order the overdraft was run up, (period_from, seq): a malloc'd
 * array of debit_count pointers into cw->debits (the caller frees it; stale once a debit is
 * added). NULL if memory runs out, or there are no debits. */
struct charge_debit **wallet_book_debits_in_order(struct customer_wallets *cw);
bool wallet_book_reassign_overdraft(struct customer_wallets *cw, const struct live_wallet *w,
                                    int64_t grant_id, int64_t cents);
/* New credits of the wallet: a settled grant, or paid credits, always pending until their
 * credit invoice is paid (Lago's), that invoice issued at once or left open until then
 * (open_invoice: invoice_requires_successful_payment; false for a grant); *made (may be NULL)
 * is its transaction's id either way. */
enum command_result wallet_book_add_credits(struct store *st, struct command *cmd,
                                            struct customer_wallets *cw, struct live_wallet *w,
                                            bool paid, int64_t cents,
                                            const struct wallet_credits *cr, bool open_invoice,
                                            enum wallet_transaction_source source, int64_t *made);
/* The customer's date at cmd->now (its time zone's; UTC without one), as YYYY-MM-DD in
 * date[11]: a credit invoice's accounting date, as Lago's. */
enum command_result wallet_book_customer_date(const struct live_wallet *w,
                                              const struct command *cmd, const char *zone_name,
                                              char date[static 11]);
/* Voids `cents` (0: all) of the grant grant_id (0: any, in consumption order); the request's
 * name, priority and metadata (cr, NULL for none) go on the void's transaction, as Lago's. */
enum command_result wallet_book_void_credits(struct store *st, struct command *cmd,
                                             struct live_wallet *w, int64_t grant_id, int64_t cents,
                                             const struct wallet_credits *cr);
/*
 * Holds. wallet_book_hold reserves `cents` (> 0, at most what the wallet can spend) of the
 * wallet for a hold: the unheld credits of its live grants in consumption order (those its
 * capture would spend now), then the rest on no grant (a soft wallet's overdraft), each part a
 * row of the hold, with the memo posting. wallet_book_release releases a whole hold (capture,
 * void, expiry: the posting's cause): a release other than a capture lets expire at once what
 * grants past their expiry kept for it; a capture leaves each grant's part for its event to
 * spend first (capturing_cents, reset by wallets_capture_done).
 */
enum command_result wallet_book_hold(struct store *st, struct command *cmd, struct live_wallet *w,
                                     int64_t authorization_id, int64_t cents);
/*
 * Credits a hold gave back (`cents` of grant grant_id, unheld now): those open at its rule's
 * last anniversary on the previous grants (at_rollover) roll over only within the room the
 * rollover's cap left them (rollover_room_cents), the rest expiring, so that a hold voided
 * after the anniversary leaves what a void before it would have left (found by an audit: the
 * cap was passed, or everything lost, depending on whether an unheld cent rolled over). What
 * stays repays the wallet's overdraft first, as new credits do (wallet_book_credit), with a
 * posting of the release's cause: else the wallet would hold spendable credits while it owes,
 * and a termination or an expiry would take them while the overdraft stayed owed (found by an
 * audit). Credits past their expiry expire instead (wallet_book_expire_unheld, after). The
 * wallet's row and the debits whose overdraft became the grant's wait for
 * wallet_book_settle_customer.
 */
enum command_result wallet_book_give_back_held(struct store *st, struct command *cmd,
                                               struct customer_wallets *cw, struct live_wallet *w,
                                               int64_t grant_id, int64_t cents, bool at_rollover,
                                               int64_t authorization_id, enum ledger_cause cause);
enum command_result wallet_book_release(struct wallet_book *b, struct store *st,
                                        struct command *cmd, struct store_authorization *a,
                                        enum ledger_cause cause);
/* The customer's changes reach the store: now (wallet_book_flush_customer), or with the
 * journal when the book defers. */
enum command_result wallet_book_settle_customer(struct wallet_book *b, struct store *st,
                                                struct command *cmd, struct customer_wallets *cw);
/* The credits of a settled inbound transaction arrive: its posting (purchase or grant), the
 * overdraft it repays first (`repay`, already taken off its remaining amount), its grant. */
enum command_result wallet_book_credit(struct store *st, struct command *cmd,
                                       struct customer_wallets *cw, struct live_wallet *w,
                                       const struct store_wallet_transaction *t, int64_t repay);
/* Terminates a wallet (by request, or expired): its open holds are released whole (every
 * wallet's part) and voided, then its credits are voided (or expire). */
enum command_result wallet_book_terminate(struct store *st, struct command *cmd,
                                          struct live_wallet *w, bool expired);
/* Releases whole and voids the open holds of a subscription that ends: no capture of them
 * could succeed, so their credits would stay reserved until they expired. */
enum command_result wallet_book_void_subscription_holds(struct wallet_book *b, struct store *st,
                                                        struct command *cmd, int64_t org_id,
                                                        int64_t subscription_id);
/* The same for the open holds of a billable metric's code, when the metric is deleted. */
enum command_result wallet_book_void_code_holds(struct wallet_book *b, struct store *st,
                                                struct command *cmd, int64_t org_id,
                                                const char *code);

#endif
