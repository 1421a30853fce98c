/*
 * engine/wallet_clock: what time does to wallets. Interval rules fire at each anniversary
 * (rolling the previous grant over and expiring the rest), threshold rules in the command that
 * brings the ongoing balance down to them, or at a usage while it is there (once per fall:
 * again once the balance rose above, or once the rule's own top-up settled),
 * holds, grants and wallets expire,
 * and expiry reminders are recorded in the webhook outbox. A command brings the customers it
 * touches up to its `now` (wallet_clock_bring_up_to_date); the sweep does it for the others,
 * when a test clock is advanced and every second on the real clock.
 *
 * Threads: the engine's writer only.
 */
#ifndef TALLY_ENGINE_WALLET_CLOCK_H
#define TALLY_ENGINE_WALLET_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sweep_quarantine.h"
#include "engine/wallet_book.h"

/* An organization's expiry reminders. */
struct wallet_reminders {
    int32_t days[WALLET_REMINDER_DAYS_MAX]; /* before a grant expires, nearest first */
    size_t count;
};

/* Fires the customer's threshold rules that came due (once per fall, fire_thresholds): on a fall of
 * their wallet's balance, or at any usage of the customer (`usage`: a debit, a hold, or one refused
 * for lack of credits) while due and not backing off after a declined payment. */
enum command_result wallet_clock_fire_thresholds(struct store *st, struct command *cmd,
                                                 struct customer_wallets *cw, bool usage);
/* Sets the wallet's next anniversary after `after` (none if it has no interval rule). False,
 * changing nothing, if the customer's zone no longer loads (the caller fails: a rule is never
 * unscheduled by a zone the host lost). */
bool wallet_clock_schedule(struct live_wallet *w, tally_time after);
/* The wallet's interval rule's first anniversary strictly after `after`, by its schedule
 * (*has false: none, the rule ends first or is not an interval one). False if the customer's
 * zone no longer loads. */
bool wallet_clock_next_after(const struct live_wallet *w, tally_time after, bool *has,
                             tally_time *next);
/* Brings the customer's wallets to cmd->now: anniversaries in order, then due grants expire and
 * due wallets terminate. */
enum command_result wallet_clock_bring_up_to_date(struct store *st, struct command *cmd,
                                                  struct customer_wallets *cw);
/*
 * The customer moved to `timezone` (NULL: UTC), borrowed for the call: what came due is
 * brought up to cmd->now in the old zone, then its wallets read their calendar in the new one
 * and each next anniversary becomes the same day's midnight there, written at once. Scheduled
 * afresh from the new zone, the anniversary that just fired would come again hours later.
 */
enum command_result wallet_clock_move_zone(struct store *st, struct command *cmd,
                                           struct customer_wallets *cw, const char *timezone);
/*
 * What the organization's clock brings at cmd->now: expired holds released (status expired),
 * interval rules' anniversaries, expired grants voided, expired wallets terminated, then the
 * reminders due of the grants as those left them. *done counts what it handled. What is due
 * for the customers in skip_customers (store_due's; NULL: none) is left alone. *at says where
 * the sweep is (the customer and item it is on, or none between them): on a failure, where it
 * failed (engine/sweep_quarantine.h).
 */
enum command_result wallet_clock_sweep(struct wallet_book *b, struct store *st, struct command *cmd,
                                       const struct wallet_reminders *reminders,
                                       const char *skip_customers, size_t *done,
                                       struct sweep_failure *at);
/* Whether anything is due for wallet_clock_sweep in the organization at `now`, leaving out the
 * customers in skip_customers (reads only). */
bool wallet_clock_due(struct store *st, int64_t org_id, const struct wallet_reminders *reminders,
                      const char *skip_customers, tally_time now);

#endif
