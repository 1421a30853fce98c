/*
 * core/ledger: double-entry postings under every credit balance.
 *
 * A posting is a set of lines, each an amount in minor units on one account, signed debit
 * positive and credit negative; its lines sum to zero (ledger_posting_balanced), and nothing
 * that does not balance is ever written. Accounts are per organization and currency; the
 * customer accounts are also per wallet:
 *
 *   receivable                    asset      what customers owe for credits bought
 *   revenue                       income     credits consumed by usage
 *   breakage                      income     paid credits voided or expired unused
 *   promotional_grants            expense    free credits given (reversed when voided/expired)
 *   customer_paid_credits         liability  a wallet's unused paid credits (deferred revenue)
 *   customer_promotional_credits  liability  a wallet's unused free credits
 *   customer_overdraft            asset      what a soft-limited wallet has overdrawn
 *   customer_held_credits         memo       credits a wallet's open holds reserve
 *   holds_outstanding             memo       the other side of every open hold
 *
 * The two memo accounts track holds (authorizations) without touching a balance: a hold
 * credits customer_held_credits and debits holds_outstanding; capture and release reverse it.
 *
 * So a wallet's balance is paid + promotional credits (credit balances) less its overdraft,
 * and that is also the sum of its grants' remaining amounts less the overdraft: the engine
 * checks both after every command in test builds.
 *
 * Pure: no I/O, no clock, no globals. Any thread.
 */
#ifndef TALLY_CORE_LEDGER_H
#define TALLY_CORE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEDGER_LINES_MAX 12 /* lines of one posting: one per account at most */

enum ledger_account {
    LEDGER_RECEIVABLE,
    LEDGER_REVENUE,
    LEDGER_BREAKAGE,
    LEDGER_PROMOTIONAL_GRANTS,
    LEDGER_CUSTOMER_PAID_CREDITS,
    LEDGER_CUSTOMER_PROMOTIONAL_CREDITS,
    LEDGER_CUSTOMER_OVERDRAFT,
    LEDGER_CUSTOMER_HELD_CREDITS,
    LEDGER_HOLDS_OUTSTANDING,
    LEDGER_ACCOUNT_COUNT
};

/* Why a posting was made. */
enum ledger_cause {
    LEDGER_CAUSE_PURCHASE,    /* paid credits settled */
    LEDGER_CAUSE_GRANT,       /* free credits granted */
    LEDGER_CAUSE_CONSUMPTION, /* usage debited */
    LEDGER_CAUSE_REFUND_STEP, /* usage whose fee went down gave credits back */
    LEDGER_CAUSE_VOID,        /* credits voided (by request, or with the wallet) */
    LEDGER_CAUSE_EXPIRY,      /* a grant expired */
    LEDGER_CAUSE_HOLD,        /* credits reserved by an authorization */
    LEDGER_CAUSE_CAPTURE,     /* a hold settled by its event */
    LEDGER_CAUSE_RELEASE,     /* a hold voided or expired */
    LEDGER_CAUSE_COUNT
};

const char *ledger_account_name(enum ledger_account a);
bool ledger_account_parse(const char *text, enum ledger_account *out);
const char *ledger_cause_name(enum ledger_cause c);
/* Whether the account is a wallet's (else the organization's, per currency). */
bool ledger_account_is_wallet(enum ledger_account a);
/* Whether a balance on the account is normally a debit (assets, expenses). */
bool ledger_account_debit_normal(enum ledger_account a);

struct ledger_line {
    enum ledger_account account;
    int64_t amount_cents; /* debit > 0, credit < 0 */
};

struct ledger_posting {
    enum ledger_cause cause;
    struct ledger_line lines[LEDGER_LINES_MAX];
    size_t count;
};

void ledger_posting_init(struct ledger_posting *p, enum ledger_cause cause);
/* Adds `amount_cents` (debit > 0) to the account's line, merging lines of one account. Zero
 * amounts add nothing. */
void ledger_posting_add(struct ledger_posting *p, enum ledger_account account,
                        int64_t amount_cents);
/* Moves `cents` from one account to another: debits `to`, credits `from`. */
void ledger_posting_move(struct ledger_posting *p, enum ledger_account from, enum ledger_account to,
                         int64_t cents);
/* True when the lines sum to zero (and every line is non-zero). */
bool ledger_posting_balanced(const struct ledger_posting *p);
/* True when the posting has no line left (every move cancelled out). */
bool ledger_posting_empty(const struct ledger_posting *p);

#endif
