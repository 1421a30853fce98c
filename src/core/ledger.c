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
    [LEDGER_CASH] = "cash",
    [LEDGER_TAXES_PAYABLE] = "taxes_payable",
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
    [LEDGER_CAUSE_PAYMENT] = "payment",
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

bool ledger_cause_parse(const char *text, enum ledger_cause *out)
{
    for (int c = 0; c < LEDGER_CAUSE_COUNT; c++) {
        if (strcmp(text, cause_names[c]) == 0) {
            *out = (enum ledger_cause)c;
            return true;
        }
    }
    return false;
}

bool ledger_account_is_wallet(enum ledger_account a)
{
    return a == LEDGER_CUSTOMER_PAID_CREDITS || a == LEDGER_CUSTOMER_PROMOTIONAL_CREDITS ||
           a == LEDGER_CUSTOMER_OVERDRAFT || a == LEDGER_CUSTOMER_HELD_CREDITS;
}

bool ledger_account_debit_normal(enum ledger_account a)
{
    return a == LEDGER_RECEIVABLE || a == LEDGER_CASH || a == LEDGER_PROMOTIONAL_GRANTS ||
           a == LEDGER_CUSTOMER_OVERDRAFT || a == LEDGER_HOLDS_OUTSTANDING;
}

void ledger_posting_init(struct ledger_posting *p, enum ledger_cause cause)
{
    p->cause = cause;
    p->count = 0;
}

int64_t ledger_account_max(enum ledger_account a)
{
    return a == LEDGER_RECEIVABLE || a == LEDGER_CASH || a == LEDGER_PROMOTIONAL_GRANTS
               ? LEDGER_INFLOW_MAX
               : INT64_MAX;
}

/* |v| for any int64 (INT64_MIN's is 2^63, which uint64 holds). */
static uint64_t magnitude(int64_t v)
{
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

bool ledger_balance_after(enum ledger_account a, int64_t before, int64_t amount, int64_t *after)
{
    int64_t sum;
    if (__builtin_add_overflow(before, amount, &sum) || sum == INT64_MIN)
        return false;
    if (magnitude(sum) > (uint64_t)ledger_account_max(a) && magnitude(sum) > magnitude(before))
        return false;
    *after = sum;
    return true;
}

bool ledger_posting_add(struct ledger_posting *p, enum ledger_account account, int64_t amount_cents)
{
    if (amount_cents == INT64_MIN)
        return false;
    if (amount_cents == 0)
        return true;
    for (size_t i = 0; i < p->count; i++) {
        if (p->lines[i].account != account)
            continue;
        int64_t sum;
        if (__builtin_add_overflow(p->lines[i].amount_cents, amount_cents, &sum) ||
            sum == INT64_MIN)
            return false;
        p->lines[i].amount_cents = sum;
        if (sum == 0) /* cancelled out: drop the line */
            p->lines[i] = p->lines[--p->count];
        return true;
    }
    /* Every account has at most one line, so a posting never needs more than all of them. */
    assert(p->count < LEDGER_LINES_MAX);
    p->lines[p->count++] = (struct ledger_line){account, amount_cents};
    return true;
}

bool ledger_posting_move(struct ledger_posting *p, enum ledger_account from, enum ledger_account to,
                         int64_t cents)
{
    if (cents == INT64_MIN)
        return false;
    struct ledger_posting next = *p; /* both sides, or neither */
    if (!ledger_posting_add(&next, to, cents) || !ledger_posting_add(&next, from, -cents))
        return false;
    *p = next;
    return true;
}

bool ledger_posting_balances_after(const struct ledger_posting *p, const int64_t before[],
                                   int64_t after[], size_t *line)
{
    for (size_t i = 0; i < p->count; i++) {
        if (!ledger_balance_after(p->lines[i].account, before[i], p->lines[i].amount_cents,
                                  &after[i])) {
            *line = i;
            return false;
        }
    }
    return true;
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
