/* core/ledger: see ledger.h. */
#include "core/ledger.h"

#include <assert.h>
#include <string.h>

_Static_assert(LEDGER_LINES_MAX >= LEDGER_ACCOUNT_COUNT, "a posting holds a line per account");

static const char *const account_names[LEDGER_ACCOUNT_COUNT] = {
    [LEDGER_RECEIVABLE] = "receivable",
    [LEDGER_REVENUE] = "revenue",
    [LEDGER_BREAKAGE] = "breakage",
    [LEDGER_PROMOTIONAL_GRANTS] = "promotional_grants",
    [LEDGER_CUSTOMER_PAID_CREDITS] = "customer_paid_credits",
    [LEDGER_CUSTOMER_PROMOTIONAL_CREDITS] = "customer_promotional_credits",
    [LEDGER_CUSTOMER_OVERDRAFT] = "customer_overdraft",
    [LEDGER_CUSTOMER_HELD_CREDITS] = "customer_held_credits",
    [LEDGER_HOLDS_OUTSTANDING] = "holds_outstanding",
};

static const char *const cause_names[LEDGER_CAUSE_COUNT] = {
    [LEDGER_CAUSE_PURCHASE] = "purchase",
    [LEDGER_CAUSE_GRANT] = "grant",
    [LEDGER_CAUSE_CONSUMPTION] = "consumption",
    [LEDGER_CAUSE_REFUND_STEP] = "refund_step",
    [LEDGER_CAUSE_VOID] = "void",
    [LEDGER_CAUSE_EXPIRY] = "expiry",
    [LEDGER_CAUSE_HOLD] = "hold",
    [LEDGER_CAUSE_CAPTURE] = "capture",
    [LEDGER_CAUSE_RELEASE] = "release",
};

const char *ledger_account_name(enum ledger_account a)
{
    assert(a >= 0 && a < LEDGER_ACCOUNT_COUNT);
    return account_names[a];
}

bool ledger_account_parse(const char *text, enum ledger_account *out)
{
    for (int a = 0; a < LEDGER_ACCOUNT_COUNT; a++) {
        if (strcmp(text, account_names[a]) == 0) {
            *out = (enum ledger_account)a;
            return true;
        }
    }
    return false;
}

const char *ledger_cause_name(enum ledger_cause c)
{
    assert(c >= 0 && c < LEDGER_CAUSE_COUNT);
    return cause_names[c];
}

bool ledger_account_is_wallet(enum ledger_account a)
{
    return a == LEDGER_CUSTOMER_PAID_CREDITS || a == LEDGER_CUSTOMER_PROMOTIONAL_CREDITS ||
           a == LEDGER_CUSTOMER_OVERDRAFT || a == LEDGER_CUSTOMER_HELD_CREDITS;
}

bool ledger_account_debit_normal(enum ledger_account a)
{
    return a == LEDGER_RECEIVABLE || a == LEDGER_PROMOTIONAL_GRANTS ||
           a == LEDGER_CUSTOMER_OVERDRAFT || a == LEDGER_HOLDS_OUTSTANDING;
}

void ledger_posting_init(struct ledger_posting *p, enum ledger_cause cause)
{
    p->cause = cause;
    p->count = 0;
}

void ledger_posting_add(struct ledger_posting *p, enum ledger_account account, int64_t amount_cents)
{
    if (amount_cents == 0)
        return;
    for (size_t i = 0; i < p->count; i++) {
        if (p->lines[i].account != account)
            continue;
        p->lines[i].amount_cents += amount_cents;
        if (p->lines[i].amount_cents == 0) /* cancelled out: drop the line */
            p->lines[i] = p->lines[--p->count];
        return;
    }
    /* Every account has at most one line, so a posting never needs more than all of them. */
    assert(p->count < LEDGER_LINES_MAX);
    p->lines[p->count++] = (struct ledger_line){account, amount_cents};
}

void ledger_posting_move(struct ledger_posting *p, enum ledger_account from, enum ledger_account to,
                         int64_t cents)
{
    ledger_posting_add(p, to, cents);
    ledger_posting_add(p, from, -cents);
}

bool ledger_posting_balanced(const struct ledger_posting *p)
{
    __int128 sum = 0;
    for (size_t i = 0; i < p->count; i++) {
        if (p->lines[i].amount_cents == 0)
            return false;
        sum += p->lines[i].amount_cents;
    }
    return sum == 0;
}

bool ledger_posting_empty(const struct ledger_posting *p)
{
    return p->count == 0;
}
