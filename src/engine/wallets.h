/*
 * engine/wallets: prepaid credits in the writer. Every customer's active wallets with their
 * live grants, and what each usage charge of the customer's subscriptions has debited so far
 * in its period, kept in memory as a cache of the store (like engine/usage): loaded on first
 * use, and never ahead of the transaction that will commit it (see "Deferred writes").
 *
 * Real-time debit. A usage charge's cost is its period fee with the fee's taxes, in cents.
 * After the events of a command are applied, each charge they touched is priced again and
 * the difference with what it has debited so far is taken from the wallets that may pay for
 * it (currency, applies_to, then wallet priority), grant by grant in core/wallet's order; a
 * negative difference (volume pricing, `latest`) gives credits back to the sources that paid
 * last, in reverse order. Because each command debits `cost now - debited so far`, the debits
 * of a period add up to exactly its fee, whatever the charge model, and the part of a
 * time-weighted fee that accrues between events is debited at the next one.
 *
 * What credits cannot cover: with limit `none` it is left to the invoice (Lago's behaviour);
 * a `soft` wallet may go below zero down to its overdraft, which a later top-up repays first;
 * past that, or with limit `hard`, the whole command is refused (COMMAND_INSUFFICIENT_CREDITS)
 * and changes nothing. Holds (authorizations) reserve credits that no other debit or hold may
 * spend. The writer is the only one to touch balances, so many clients racing on one wallet
 * cannot overdraw it.
 *
 * Deferred writes. Event commands keep their wallet changes in memory (snapshots of the
 * customers they touch put them back if they are refused); wallets_flush writes each changed
 * wallet once per group commit, before the COMMIT. Every other command has them written first,
 * then writes through; if refused, its customers are dropped and reload from the store.
 *
 * Time. Rules (threshold: in the command that crosses; interval: each anniversary), expiries of
 * holds, grants and wallets, and expiry reminders are brought to a command's `now` whenever it
 * touches a customer, and swept by the clock (wallets_sweep) for the others.
 *
 * Every balance change is a ledger posting (core/ledger.h) written in the same transaction.
 *
 * Threads: the engine's writer only.
 */
#ifndef TALLY_ENGINE_WALLETS_H
#define TALLY_ENGINE_WALLETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ledger.h"
#include "core/wallet.h"
#include "engine/command.h"
#include "store/store.h"

struct usage;
struct customer_wallets;

struct customer_snapshot;

/* An organization's ledger account balance, cached by the writer. */
struct wallet_org_balance {
    int64_t org_id;
    char currency[4];
    enum ledger_account account;
    int64_t balance; /* debit positive */
    bool dirty;      /* not yet in ledger_balances: written by wallets_flush */
};

struct tzdb;

struct wallet_book {
    struct tzdb *tzdb; /* borrowed: customers' zones, for interval rules (may be NULL: UTC) */
    struct customer_wallets **items; /* open addressing by customer id, at most half full */
    size_t count, cap;
    /* Customers changed by the current command / batch: dropped if it does not commit. */
    int64_t *touched;
    size_t touched_count, touched_cap, touched_mark;
    /*
     * Event commands defer their writes: the debits of a whole group commit are written once
     * per wallet by wallets_flush, before the COMMIT. Until then `dirty` names the customers
     * whose memory is ahead of the transaction, and `snapshots` hold the customers the current
     * event command touched as they were before it, to put back if it is refused.
     */
    bool deferring;
    uint64_t command_number; /* counts commands, so a customer knows it was touched by this one */
    int64_t *dirty;
    size_t dirty_count, dirty_cap;
    struct customer_snapshot *snapshots;
    size_t snapshot_count, snapshot_cap;
    /* The organizations' ledger balances, as the postings written so far left them (put back
     * as they were when a command is undone; stored by wallets_flush). */
    struct wallet_org_balance *org_balances;
    size_t org_balance_count, org_balance_cap;
    struct wallet_org_balance *org_saved; /* as they were when the current command began */
    size_t org_saved_count, org_saved_cap;
};

void wallet_book_init(struct wallet_book *b);
void wallet_book_free(struct wallet_book *b);
/* Where the current command starts (for wallet_book_undo_command); `deferring` for event
 * commands, whose writes wait for wallets_flush. */
void wallet_book_mark_command(struct wallet_book *b, bool deferring);
/* Takes back what the current command changed in memory (it was refused or failed): an event
 * command's customers are put back as they were; others are dropped, to reload. */
void wallet_book_undo_command(struct wallet_book *b);
/*
 * Writes every deferred change (debits, grants, usage transactions, postings, and the
 * organizations' ledger balances) in the current transaction, its rows made at cmd->now with
 * cmd's ids. The engine calls it before any command that writes wallets directly (outside that
 * command's savepoint) and before COMMIT. A failure fails the whole batch.
 */
enum command_result wallets_flush(struct wallet_book *b, struct store *st, struct command *cmd);
/* Drops everything (the batch did not commit). */
void wallet_book_clear(struct wallet_book *b);
/* The batch committed: nothing to undo any more. */
void wallet_book_committed(struct wallet_book *b);

/*
 * Debits (or credits back) what the usage's charges cost since they were last debited, for
 * a subscription of `customer_id`, at cmd->now. COMMAND_OK (also when the customer has no
 * wallet), COMMAND_INSUFFICIENT_CREDITS (cmd says which wallet, and by how much), or
 * COMMAND_STORE_FAILED.
 */
enum command_result wallets_debit_usage(struct wallet_book *b, struct store *st,
                                        struct command *cmd, const struct usage *u,
                                        int64_t customer_id);

/* What one more event would add to its subscription's usage charges (fees and their taxes),
 * at `now`; never below 0. False if a charge cannot preview it. */
struct event;
bool wallets_price_event(const struct usage *u, const struct event *e, tally_time now,
                         int64_t *cents);

/*
 * Holds: prices were set by the caller (a->amount_cents, taxes included, in a->currency); if
 * the wallets that may pay for `metric_code` can spend that much, it is reserved across them
 * in payer order (status authorized), else nothing is (declined). The authorization is saved
 * either way.
 */
enum command_result wallets_hold(struct wallet_book *b, struct store *st, struct command *cmd,
                                 struct store_authorization *a, const char *metric_code);
/* Releases what a hold reserves (capture, void, expiry: the posting's cause). */
enum command_result wallets_release(struct wallet_book *b, struct store *st, struct command *cmd,
                                    struct store_authorization *a, enum ledger_cause cause);
/*
 * What the organization's clock brings at cmd->now: expired holds released (status
 * expired), interval rules' anniversaries, expired grants voided as breakage or reversed
 * grants, expired wallets terminated, and credits.expiring_soon reminders (the organization's
 * days) recorded in the webhook outbox. *done counts what it handled.
 */
struct wallet_reminders {
    int32_t days[WALLET_REMINDER_DAYS_MAX]; /* before a grant expires, nearest first */
    size_t count;
};
enum command_result wallets_sweep(struct wallet_book *b, struct store *st, struct command *cmd,
                                  const struct wallet_reminders *reminders, size_t *done);

/* Whether anything is due for wallets_sweep in the organization at `now` (reads only). */
bool wallets_due(struct store *st, int64_t org_id, const struct wallet_reminders *reminders,
                 tally_time now);

/* The wallet commands (COMMAND_WALLET_*). */
enum command_result wallets_apply(struct wallet_book *b, struct store *st, struct command *cmd);

#endif
