/*
 * core/ledger: double-entry postings under every credit balance.
 *
 * A posting is a set of lines, each an amount in minor units on one account, signed debit
 * positive and credit negative; its lines sum to zero (ledger_posting_balanced), and nothing
 * that does not balance is ever written. Accounts are per organization and currency; the
 * customer accounts are also per wallet:
 *
 *   receivable                    asset      what customers owe for credits bought
 *   cash                          asset      what customers paid for credits bought
 *   revenue                       income     credits consumed by usage, net of the fees' taxes
 *   taxes_payable                 liability  the taxes of the fees credits paid, owed to the
 *                                            tax authority
 *   breakage                      income     paid credits voided or expired unused
 *   promotional_grants            expense    free credits given (reversed when voided/expired)
 *   customer_paid_credits         liability  a wallet's unused paid credits (deferred revenue)
 *   customer_promotional_credits  liability  a wallet's unused free credits
 *   customer_overdraft            asset      what a soft-limited wallet has overdrawn
 *   customer_held_credits         memo       credits a wallet's open holds reserve
 *   holds_outstanding             memo       the other side of every open hold
 *
 * Paid credits arrive only once their credit invoice is paid: the purchase posting (paid
 * credits from receivable) is followed, in the same command, by the payment posting (cash from
 * receivable), so receivable holds only what is owed and no unpaid credit is ever spent,
 * voided or expired (as breakage). Postings written before paid credits waited for their
 * payment may still leave an amount there.
 *
 * The two memo accounts track holds (authorizations) without touching a balance: a hold
 * credits customer_held_credits and debits holds_outstanding; capture and release reverse it.
 *
 * So a wallet's balance is paid + promotional credits (credit balances) less its overdraft,
 * and that is also the sum of its grants' remaining amounts less the overdraft: the engine
 * checks both after every command in test builds.
 *
 * Nothing wraps. A line that would leave int64 is refused (ledger_posting_add/move return
 * false and change nothing), and so is a posting that would take an account's balance past
 * ledger_account_max (ledger_posting_balances_after): the caller writes nothing and reports
 * it. Money enters the ledger through two organization accounts only, receivable (paid
 * credits, then cash once they are paid) and promotional_grants (free credits), and every other
 * balance is made of what came in through them (or of a soft wallet's overdraft,
 * WALLET_BALANCE_MAX_CENTS at most each): so those (and cash, which gathers every payment) are
 * bounded at LEDGER_INFLOW_MAX, an eighth of int64, and revenue, breakage and the
 * customers' accounts stay far inside int64 however the money moves afterwards (it would take
 * some 20,000 wallets overdrawn by the most at once to come near). The others are bounded by
 * int64 alone (never INT64_MIN: every balance has an opposite), checked all the same.
 *
 * Pure: no I/O, no clock, no globals. Any thread.
 */
#ifndef TALLY_CORE_LEDGER_H
#define TALLY_CORE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEDGER_LINES_MAX 12 /* lines of one posting: one per account at most */
/* The most an organization's receivable or promotional_grants account holds, either way, per
 * currency: 2^60 minor units (11.5 quadrillion dollars). */
#define LEDGER_INFLOW_MAX ((int64_t)1 << 60)

#if defined(__GNUC__)
#define LEDGER_MUST_CHECK __attribute__((warn_unused_result))
#else
#define LEDGER_MUST_CHECK
#endif

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
    LEDGER_CASH,          /* after the others: their stored numbers stay */
    LEDGER_TAXES_PAYABLE, /* last: likewise */
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
    LEDGER_CAUSE_PAYMENT,     /* a credit invoice paid: cash for what was receivable */
    LEDGER_CAUSE_COUNT
};

const char *ledger_account_name(enum ledger_account a);
bool ledger_account_parse(const char *text, enum ledger_account *out);
const char *ledger_cause_name(enum ledger_cause c);
bool ledger_cause_parse(const char *text, enum ledger_cause *out);
/* Whether the account is a wallet's (else the organization's, per currency). */
bool ledger_account_is_wallet(enum ledger_account a);
/* Whether a balance on the account is normally a debit (assets, expenses). */
bool ledger_account_debit_normal(enum ledger_account a);
/* The most the account's balance may reach either way: LEDGER_INFLOW_MAX for receivable, cash
 * and promotional_grants, INT64_MAX for the others. */
int64_t ledger_account_max(enum ledger_account a);
/*
 * The account's balance after a line of `amount`: false, and *after untouched, if the sum
 * leaves int64 or is INT64_MIN, or if it is past ledger_account_max and further from zero than
 * `before` (a balance already past it, written before the bound, may only come back).
 */
bool ledger_balance_after(enum ledger_account a, int64_t before, int64_t amount,
                          int64_t *after) LEDGER_MUST_CHECK;

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
 * amounts add nothing. False, and the posting unchanged, if the amount or the merged line would
 * be INT64_MIN or leave int64. */
bool ledger_posting_add(struct ledger_posting *p, enum ledger_account account,
                        int64_t amount_cents) LEDGER_MUST_CHECK;
/* Moves `cents` from one account to another: debits `to`, credits `from`. Both sides or
 * neither: false, and the posting unchanged, if either would not fit. */
bool ledger_posting_move(struct ledger_posting *p, enum ledger_account from, enum ledger_account to,
                         int64_t cents) LEDGER_MUST_CHECK;
/*
 * Each line's account balance after the posting: after[i] = before[i] + lines[i], by
 * ledger_balance_after. False if any is refused, with *line the first such line's index
 * (`after` is then partial): the posting must not be written.
 */
bool ledger_posting_balances_after(const struct ledger_posting *p, const int64_t before[],
                                   int64_t after[], size_t *line) LEDGER_MUST_CHECK;
/* True when the lines sum to zero (and every line is non-zero). */
bool ledger_posting_balanced(const struct ledger_posting *p);
/* True when the posting has no line left (every move cancelled out). */
bool ledger_posting_empty(const struct ledger_posting *p);

#endif
