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
 * of a period add up to exactly its fee, whatever the charge model. (A time-weighted sum is
 * priced to the end of its period, as Lago's current usage prices it: the debit at an event
 * covers the rest of the period at the new level; a later change takes more or gives back.)
 *
 * What credits cannot cover: with limit `none` it is left to the invoice (Lago's behaviour);
 * a `soft` wallet may go below zero down to its overdraft, which a later top-up repays first;
 * past that, or with limit `hard`, the whole command is refused (COMMAND_INSUFFICIENT_CREDITS)
 * and changes nothing. Holds (authorizations) reserve credits that no other debit, hold, void
 * or expiry may take: an expiring grant keeps what holds need, for their captures only
 * (docs/ARCHITECTURE.md, Prepaid credits). The writer is the only one to touch balances, so
 * many clients racing on one wallet cannot overdraw it.
 *
 * Deferred writes. Event commands keep their wallet changes in memory (snapshots of the
 * customers they touch put them back if they are refused); wallet_book_flush writes each changed
 * wallet once per group commit, before the COMMIT. Every other command has them written first,
 * then writes through; if refused, its customers are dropped and reload from the store.
 *
 * Time. Rules (threshold: in the command that crosses; interval: each anniversary), expiries of
 * holds, grants and wallets, and expiry reminders are brought to a command's `now` whenever it
 * touches a customer, and swept by the clock (engine/wallet_clock) for the others.
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

#include "core/wallet.h"
#include "engine/command.h"
#include "engine/wallet_book.h"
#include "store/store.h"

struct usage;
struct usage_brought;

/*
 * Whether the customer has no active wallet at `now` (each is terminated, or past its
 * expiration_at): what it uses is the invoice's, and its next wallet opens its subscriptions'
 * periods (wallets_open_period). Not whether the book holds none: one that expired in the
 * current batch is still there (wallet_book_committed).
 */
bool wallets_none_active(const struct customer_wallets *cw, tally_time now);

/*
 * The customer's wallets (loaded if need be, and noted as touched by the command) brought up to
 * cmd->now (wallet_clock_bring_up_to_date): what came due before the command, a wallet past its
 * expiration_at above all, happens first, in the command, so that its answer is the one it
 * would get once the clock's sweep had run. On the real clock the sweep comes up to a second
 * later: an audit found a capture in that window captured a hold its expired wallet had
 * released, and a new wallet refused the expired one's code. Every command that decides on a
 * customer's wallets starts here. In *cw_out (may be NULL).
 */
enum command_result wallets_up_to_date(struct wallet_book *b, struct store *st, struct command *cmd,
                                       int64_t org_id, int64_t customer_id,
                                       struct customer_wallets **cw_out);

/*
 * Whether wallets pay (or have paid) the customer's usage: it has a wallet, or charges' debits
 * still kept. Writer thread; *failed set if its wallets could not be read.
 */
bool wallets_customer_pays(struct wallet_book *b, struct store *st, int64_t org_id,
                           int64_t customer_id, bool *failed);

/*
 * Whether usage of `metric_code` in `currency` by the customer may only go as far as credits
 * cover: some wallet of the customer would pay it and every such wallet is limited (hard or
 * soft), so that a debit it cannot cover is refused. False when the customer has no wallet
 * for it, or one that lets usage run on (limit none); *failed set if the wallets could not be
 * read.
 */
bool wallets_usage_is_limited(struct wallet_book *b, struct store *st, int64_t org_id,
                              int64_t customer_id, const char *currency, const char *metric_code,
                              tally_time now, bool *failed);

/* A usage an event command touched, and what each of its charges brings now (borrowed). */
struct wallets_usage_due {
    const struct usage *usage;
    const struct usage_brought *brought;
};

/*
 * Whether wallets_debit_usage cannot refuse any of the command's usages: nothing of their
 * customers' wallets comes due at cmd->now, and each charge is paid by no wallet (the invoice
 * takes it), by one that lets usage run on, or by wallets that can spend all the command may
 * take from their customer. Conservative: false when unsure, or (with *failed set) when the
 * wallets could not be read. Writer only.
 */
bool wallets_debits_covered(struct wallet_book *b, struct store *st, const struct command *cmd,
                            const struct wallets_usage_due *due, size_t count, bool *failed);

/*
 * Debits (or credits back) what the usage's charges cost since they were last debited, for
 * a subscription of `customer_id`, at cmd->now. `brought` (borrowed for the call) is what each
 * charge brings now, as usage_priced left it for this very state of the usage. COMMAND_OK
 * (also when the customer has no wallet), COMMAND_INSUFFICIENT_CREDITS (cmd says which wallet,
 * and by how much), or COMMAND_STORE_FAILED.
 */
enum command_result wallets_debit_usage(struct wallet_book *b, struct store *st,
                                        struct command *cmd, const struct usage *u,
                                        int64_t customer_id, const struct usage_brought *brought);
/*
 * The give-backs of wallets_debit_usage alone (the charges whose fee fell within their
 * period), for a command to credit them for all its usages before it debits any: a batch is
 * debited as a whole, so what one charge or subscription gives back pays what another takes,
 * whichever the plan or the batch names first (an audit found a batch that needed no credits
 * refused 402). wallets_debit_usage then settles the rest. Writer only.
 */
enum command_result wallets_give_back_first(struct wallet_book *b, struct store *st,
                                            struct command *cmd, const struct usage *u,
                                            int64_t customer_id,
                                            const struct usage_brought *brought);

/*
 * After a usage refused for lack of credits (COMMAND_INSUFFICIENT_CREDITS, undone: nothing of it
 * stays): the refused wallet's customer is brought to cmd->now and its threshold rules see the
 * usage (wallet_clock_fire_thresholds), as Lago's checks them at every usage. A hard wallet at
 * 0 refuses every debit, so a rule due there would otherwise never buy again (found by an
 * audit, after a declined payment of its top-up). Its writes belong to the refused command
 * (the key keeps the refusal). Writer only.
 */
enum command_result wallets_refused_usage(struct wallet_book *b, struct store *st,
                                          struct command *cmd);

/*
 * Gives back what usage u's charges debited this period beyond what they bring now, and all
 * that charges its plan no longer has debited: after a re-pricing (a price cut, a tax removed,
 * a charge removed) or an end moved into the period (a prorated or time-weighted charge was
 * debited to the period's end), which no later event of u may come to settle. Nothing is
 * debited here: a re-pricing's raise is wallets_debit_raised's; an ended subscription's is its
 * next debit's, or the invoice's. `brought` as for wallets_debit_usage. Writer only.
 *
 * First, with `opening` (u's usage as it stood when a wallet opened its period,
 * wallets_opened_at; NULL: none), what that opening left to the invoice is priced again: the
 * invoice's part follows the price as it is now, up (an uncovered part more) or down (given back
 * as a fee that falls is, within the part below the opening), so that the wallet pays for the
 * units after its opening alone, as a wallet made after the change would.
 */
enum command_result wallets_give_back(struct wallet_book *b, struct store *st, struct command *cmd,
                                      const struct usage *u, const struct usage_brought *brought,
                                      const struct usage *opening);

/*
 * After a re-pricing's wallets_give_back: the charges of live usage u that now bring more than
 * they debited in the period (a price or tax raised, a charge gained) are debited now, as the
 * next debit would bring them, where they waited for one: a raise with no later event was never
 * paid by credits (the period's close debits nothing). Never refused: the usage happened, and an
 * edit is not refused for credits it did not ask to spend; what credits cannot cover, past a hard
 * limit included, is the invoice's (as a period's carried units are, settle_periods). Nothing
 * for a customer with no active wallet (what it used is the invoice's). `brought` as for
 * wallets_debit_usage. Writer only.
 */
enum command_result wallets_debit_raised(struct wallet_book *b, struct store *st,
                                         struct command *cmd, const struct usage *u,
                                         const struct usage_brought *brought);

/*
 * What the customer's wallets would be debited for one more event at `now`: for each charge on
 * its metric, the event's own step (usage_estimate); for every charge, what it brings already
 * and has not debited yet (a recurring value carried into the period before its settlement,
 * or a re-pricing's raise while the customer was stuck: the next debit settles
 * them all); less what charges the plan no longer has debited this period (given back first):
 * exactly the steps wallets_debit_usage would take. With no wallet (none made, or all
 * terminated) what the charges brought is the invoice's: the steps a wallet made now would
 * take. Never below 0. False if a charge cannot preview it (*failed: if the wallets could not
 * be read).
 */
struct event;
/* One charge's step in that debit (parts[i] for u->charges[i]: its cost with the event less what
 * it debited, taxes rounded once over the charges before it; below 0 for one that gives back). */
struct wallets_hold_part {
    const char *metric_code; /* borrowed from u */
    int64_t cents;
};
bool wallets_price_event(struct wallet_book *b, struct store *st, const struct usage *u,
                         const struct event *e, tally_time now, int64_t *cents,
                         struct wallets_hold_part *parts /* u->charge_count, or NULL */,
                         bool *failed);

/*
 * Holds: prices were set by the caller (a->amount_cents, taxes included, in a->currency, and
 * each charge's part); if the wallets that may pay for `metric_code` include one and each
 * charge's part fits in the wallets that may pay for that charge (in payer order, one wallet's
 * spendable credits shared by the parts), the parts are reserved there (status authorized,
 * held_cents their sum), else nothing is (declined). A part below 0 (a charge that gives back)
 * frees nothing: the hold may so reserve more than it costs. The authorization is saved
 * either way.
 */
enum command_result wallets_hold(struct wallet_book *b, struct store *st, struct command *cmd,
                                 struct store_authorization *a, const char *metric_code,
                                 const struct wallets_hold_part *parts, size_t part_count);

/*
 * The end of a capture (its hold released with wallet_book_release, its event debited): what
 * grants past their expiry kept for the hold and the event did not spend expires now.
 */
enum command_result wallets_capture_done(struct wallet_book *b, struct store *st,
                                         struct command *cmd, const struct store_authorization *a);

/*
 * Records what each charge of live usage u has brought in its period beyond what its debits
 * recorded as charged and left to the invoice (uncovered): what a customer used while it had
 * no wallet (before its first, or since its last was terminated) is the invoice's, as what a
 * wallet could not cover is, and the next debit takes only its own step. Written out at once.
 * For a customer with no active wallet (engine: its next first wallet). Each debit keeps the
 * last stored event then (`last_event_id`) and what it then stood at: a re-pricing prices
 * that part again (wallets_give_back).
 */
enum command_result wallets_open_period(struct wallet_book *b, struct store *st,
                                        struct command *cmd, const struct usage *u,
                                        int64_t last_event_id);
/* The last stored event when a wallet opened u's current period (wallets_open_period), in
 * *event_id; -1 when none did. False on a store failure. */
bool wallets_opened_at(struct wallet_book *b, struct store *st, const struct usage *u,
                       int64_t *event_id);

/*
 * Moves what the customer's charges of one subscription have debited in the period starting at
 * `from` to the same period starting at `to` (a new time zone moved its start), and writes it
 * out. A period's debits are matched by their exact start: one that starts elsewhere is
 * another period.
 */
enum command_result wallets_move_period(struct wallet_book *b, struct store *st,
                                        struct command *cmd, int64_t customer_id,
                                        int64_t subscription_id, tally_time from, tally_time to);

/*
 * The customer's time zone changes to `timezone` (NULL: UTC; borrowed for the call), before
 * the customer is saved with it: its wallets, brought up to cmd->now in the old zone, read
 * their rules' calendar in the new one from the next anniversary on (wallet_clock_move_zone).
 */
enum command_result wallets_move_to_zone(struct wallet_book *b, struct store *st,
                                         struct command *cmd, int64_t customer_id,
                                         const char *timezone);

/*
 * Terminates every active wallet of the customer, each as DELETE /wallets does
 * (wallet_book_terminate: its open holds released and voided, what is left voided with its
 * postings), once they are brought up to cmd->now: a customer's deletion.
 */
enum command_result wallets_terminate_customer(struct wallet_book *b, struct store *st,
                                               struct command *cmd, int64_t customer_id);

/*
 * A billable metric renamed from `code` to `replacement`, or deleted (replacement NULL): every
 * wallet of the organization whose applies_to names it, terminated ones too, names it by its new
 * code, or no more (catalog_refs_retarget_wallet_metric), in the command's transaction, and its
 * customer is loaded again from the store by the next debit or hold. So a wallet follows its
 * metrics as Lago's wallet targets do, by identity: a metric made later with the old code is not
 * the wallet's. A non-event command's (the book holds no unwritten change then).
 */
enum command_result wallets_retarget_metric(struct wallet_book *b, struct store *st,
                                            struct command *cmd, const char *code,
                                            const char *replacement);

/* The wallet commands (COMMAND_WALLET_*). */
enum command_result wallets_apply(struct wallet_book *b, struct store *st, struct command *cmd);

#endif
