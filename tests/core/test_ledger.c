/*
 * Tests of core/ledger: the accounts' names and kinds against the table in ledger.h, how lines
 * merge and cancel in a posting, moves and balance, and random moves against a per-account
 * reference.
 *
 * The property test prints its seed; TALLY_SEED=<n> replays a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ledger.h"
#include "splitmix.h"

/* ---- Accounts ------------------------------------------------------------------------------- */

/* The table of ledger.h: name, whether a wallet's, whether debit-normal (asset or expense). */
static const struct {
    enum ledger_account account;
    const char *name;
    bool wallet;
    bool debit_normal;
} accounts[] = {
    {LEDGER_RECEIVABLE, "receivable", false, true},                       /* asset */
    {LEDGER_REVENUE, "revenue", false, false},                            /* income */
    {LEDGER_BREAKAGE, "breakage", false, false},                          /* income */
    {LEDGER_PROMOTIONAL_GRANTS, "promotional_grants", false, true},       /* expense */
    {LEDGER_CUSTOMER_PAID_CREDITS, "customer_paid_credits", true, false}, /* liability */
    {LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, "customer_promotional_credits", true, false}, /* liab. */
    {LEDGER_CUSTOMER_OVERDRAFT, "customer_overdraft", true, true},                      /* asset */
    {LEDGER_CUSTOMER_HELD_CREDITS, "customer_held_credits", true, false},               /* memo */
    {LEDGER_HOLDS_OUTSTANDING, "holds_outstanding", false, true},                       /* memo */
    {LEDGER_CASH, "cash", false, true},                                                 /* asset */
    {LEDGER_TAXES_PAYABLE, "taxes_payable", false, false}, /* liability */
};
#define ACCOUNTS (sizeof accounts / sizeof accounts[0])

static void account_table(void **state)
{
    (void)state;
    assert_int_equal(ACCOUNTS, LEDGER_ACCOUNT_COUNT);
    for (size_t i = 0; i < ACCOUNTS; i++) {
        enum ledger_account a = accounts[i].account;
        assert_string_equal(ledger_account_name(a), accounts[i].name);
        enum ledger_account back = LEDGER_ACCOUNT_COUNT;
        assert_true(ledger_account_parse(accounts[i].name, &back));
        assert_int_equal(back, a);
        if (ledger_account_is_wallet(a) != accounts[i].wallet)
            fail_msg("%s: is_wallet %d", accounts[i].name, ledger_account_is_wallet(a));
        if (ledger_account_debit_normal(a) != accounts[i].debit_normal)
            fail_msg("%s: debit_normal %d", accounts[i].name, ledger_account_debit_normal(a));
    }
    /* every account by its number, too: names are distinct and parse back */
    for (int a = 0; a < LEDGER_ACCOUNT_COUNT; a++) {
        const char *name = ledger_account_name((enum ledger_account)a);
        assert_non_null(name);
        enum ledger_account back = LEDGER_ACCOUNT_COUNT;
        assert_true(ledger_account_parse(name, &back));
        assert_int_equal(back, a);
        for (int b = 0; b < a; b++)
            assert_string_not_equal(name, ledger_account_name((enum ledger_account)b));
    }
    static const char *const bad[] = {"",         "Receivable", "receivables", "receivabl",
                                      "customer", "customer_",  "overdraft",   "revenue "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum ledger_account out;
        if (ledger_account_parse(bad[i], &out))
            fail_msg("ledger_account_parse(\"%s\") accepted", bad[i]);
    }
}

static void cause_names(void **state)
{
    (void)state;
    static const char *const names[LEDGER_CAUSE_COUNT] = {
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
    for (int c = 0; c < LEDGER_CAUSE_COUNT; c++)
        assert_non_null(names[c]);
    for (int c = 0; c < LEDGER_CAUSE_COUNT; c++)
        assert_string_equal(ledger_cause_name((enum ledger_cause)c), names[c]);
}

/* ---- Postings ------------------------------------------------------------------------------- */

/* Adds and moves that must succeed (the cases below stay far inside int64). */
static void add(struct ledger_posting *p, enum ledger_account a, int64_t cents)
{
    if (!ledger_posting_add(p, a, cents))
        fail_msg("ledger_posting_add(%s, %" PRId64 ") refused", ledger_account_name(a), cents);
}

static void move(struct ledger_posting *p, enum ledger_account from, enum ledger_account to,
                 int64_t cents)
{
    if (!ledger_posting_move(p, from, to, cents))
        fail_msg("ledger_posting_move(%s -> %s, %" PRId64 ") refused", ledger_account_name(from),
                 ledger_account_name(to), cents);
}

/* The amount on the account's line, 0 if none; fails if the account has two lines. */
static int64_t line_of(const struct ledger_posting *p, enum ledger_account a)
{
    int64_t amount = 0;
    int lines = 0;
    for (size_t i = 0; i < p->count; i++) {
        if (p->lines[i].account == a) {
            amount = p->lines[i].amount_cents;
            lines++;
        }
    }
    if (lines > 1)
        fail_msg("%s has %d lines", ledger_account_name(a), lines);
    if (lines == 1 && amount == 0)
        fail_msg("%s has a zero line", ledger_account_name(a));
    return amount;
}

static void init_is_empty(void **state)
{
    (void)state;
    struct ledger_posting p;
    memset(&p, 0x5a, sizeof p);
    ledger_posting_init(&p, LEDGER_CAUSE_EXPIRY);
    assert_int_equal(p.cause, LEDGER_CAUSE_EXPIRY);
    assert_int_equal(p.count, 0);
    assert_true(ledger_posting_empty(&p));
}

static void add_merges_and_cancels(void **state)
{
    (void)state;
    struct ledger_posting p;
    ledger_posting_init(&p, LEDGER_CAUSE_CONSUMPTION);

    /* zero adds nothing */
    add(&p, LEDGER_REVENUE, 0);
    assert_true(ledger_posting_empty(&p));

    /* one account's amounts merge into one line */
    add(&p, LEDGER_REVENUE, -100);
    add(&p, LEDGER_REVENUE, -50);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.lines[0].account, LEDGER_REVENUE);
    assert_int_equal(p.lines[0].amount_cents, -150);
    assert_false(ledger_posting_balanced(&p)); /* a line alone does not balance */

    /* three lines; the first cancels and goes, the others stay as they were */
    add(&p, LEDGER_CUSTOMER_PAID_CREDITS, 120);
    add(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, 30);
    assert_int_equal(p.count, 3);
    assert_true(ledger_posting_balanced(&p));
    add(&p, LEDGER_REVENUE, 150);
    assert_int_equal(p.count, 2);
    assert_int_equal(line_of(&p, LEDGER_REVENUE), 0);
    assert_int_equal(line_of(&p, LEDGER_CUSTOMER_PAID_CREDITS), 120);
    assert_int_equal(line_of(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS), 30);
    assert_false(ledger_posting_balanced(&p));

    /* the last line cancels too */
    add(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, -30);
    assert_int_equal(p.count, 1);
    assert_int_equal(line_of(&p, LEDGER_CUSTOMER_PAID_CREDITS), 120);
    add(&p, LEDGER_CUSTOMER_PAID_CREDITS, -120);
    assert_true(ledger_posting_empty(&p));

    /* a line that crosses zero changes side and stays one line */
    add(&p, LEDGER_BREAKAGE, 10);
    add(&p, LEDGER_BREAKAGE, -25);
    assert_int_equal(p.count, 1);
    assert_int_equal(line_of(&p, LEDGER_BREAKAGE), -15);

    /* every account at once fits */
    ledger_posting_init(&p, LEDGER_CAUSE_VOID);
    for (int a = 0; a < LEDGER_ACCOUNT_COUNT; a++)
        add(&p, (enum ledger_account)a, a + 1);
    for (int a = 0; a < LEDGER_ACCOUNT_COUNT; a++)
        add(&p, (enum ledger_account)a, 1000);
    assert_int_equal(p.count, LEDGER_ACCOUNT_COUNT);
    for (int a = 0; a < LEDGER_ACCOUNT_COUNT; a++)
        assert_int_equal(line_of(&p, (enum ledger_account)a), a + 1001);
    assert_int_equal(p.cause, LEDGER_CAUSE_VOID);
}

static void moves_and_balance(void **state)
{
    (void)state;
    struct ledger_posting p;

    /* a purchase: the customer owes what the wallet now holds */
    ledger_posting_init(&p, LEDGER_CAUSE_PURCHASE);
    move(&p, LEDGER_CUSTOMER_PAID_CREDITS, LEDGER_RECEIVABLE, 1797);
    assert_int_equal(p.count, 2);
    assert_int_equal(line_of(&p, LEDGER_RECEIVABLE), 1797);             /* debit */
    assert_int_equal(line_of(&p, LEDGER_CUSTOMER_PAID_CREDITS), -1797); /* credit */
    assert_true(ledger_posting_balanced(&p));
    assert_false(ledger_posting_empty(&p));

    /* a line added alone unbalances it, and its opposite rebalances it */
    add(&p, LEDGER_REVENUE, -1);
    assert_false(ledger_posting_balanced(&p));
    add(&p, LEDGER_BREAKAGE, 1);
    assert_true(ledger_posting_balanced(&p));

    /* a move and its reverse leave nothing */
    ledger_posting_init(&p, LEDGER_CAUSE_CONSUMPTION);
    move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_PAID_CREDITS, 500);
    move(&p, LEDGER_CUSTOMER_PAID_CREDITS, LEDGER_REVENUE, 500);
    assert_true(ledger_posting_empty(&p));
    assert_int_equal(p.count, 0);

    /* a consumption over paid, free and overdraft credits */
    ledger_posting_init(&p, LEDGER_CAUSE_CONSUMPTION);
    move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_PAID_CREDITS, 300);
    move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, 200);
    move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_OVERDRAFT, 50);
    assert_int_equal(p.count, 4);
    assert_int_equal(line_of(&p, LEDGER_REVENUE), -550);
    assert_int_equal(line_of(&p, LEDGER_CUSTOMER_PAID_CREDITS), 300);
    assert_int_equal(line_of(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS), 200);
    assert_int_equal(line_of(&p, LEDGER_CUSTOMER_OVERDRAFT), 50);
    assert_true(ledger_posting_balanced(&p));

    /* a move of nothing, or onto the same account, adds no line */
    ledger_posting_init(&p, LEDGER_CAUSE_GRANT);
    move(&p, LEDGER_PROMOTIONAL_GRANTS, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, 0);
    assert_true(ledger_posting_empty(&p));
    move(&p, LEDGER_REVENUE, LEDGER_REVENUE, 42);
    assert_true(ledger_posting_empty(&p));

    /* large amounts: the sum does not wrap */
    ledger_posting_init(&p, LEDGER_CAUSE_PURCHASE);
    move(&p, LEDGER_CUSTOMER_PAID_CREDITS, LEDGER_RECEIVABLE, INT64_MAX);
    assert_true(ledger_posting_balanced(&p));
    struct ledger_posting wrap = {.cause = LEDGER_CAUSE_PURCHASE,
                                  .lines = {{LEDGER_RECEIVABLE, INT64_MAX},
                                            {LEDGER_CUSTOMER_OVERDRAFT, INT64_MAX},
                                            {LEDGER_PROMOTIONAL_GRANTS, 2}},
                                  .count = 3}; /* 2^64: zero in 64 bits */
    assert_false(ledger_posting_balanced(&wrap));
    struct ledger_posting big = {.cause = LEDGER_CAUSE_PURCHASE,
                                 .lines = {{LEDGER_RECEIVABLE, INT64_MAX},
                                           {LEDGER_CUSTOMER_OVERDRAFT, INT64_MAX},
                                           {LEDGER_REVENUE, -INT64_MAX},
                                           {LEDGER_BREAKAGE, -INT64_MAX}},
                                 .count = 4};
    assert_true(ledger_posting_balanced(&big));

    /* a zero line is not balanced, even when the sum is zero */
    struct ledger_posting zero = {
        .cause = LEDGER_CAUSE_VOID,
        .lines = {{LEDGER_REVENUE, 5}, {LEDGER_BREAKAGE, 0}, {LEDGER_RECEIVABLE, -5}},
        .count = 3};
    assert_false(ledger_posting_balanced(&zero));
}

/* Lines never wrap: an add or a move that would take a line out of int64 (or to INT64_MIN,
 * which has no opposite) is refused and leaves the posting as it was. */
static void checked_lines(void **state)
{
    (void)state;
    struct ledger_posting p, was;
    ledger_posting_init(&p, LEDGER_CAUSE_GRANT);
    add(&p, LEDGER_PROMOTIONAL_GRANTS, INT64_MAX);
    was = p;
    assert_false(ledger_posting_add(&p, LEDGER_PROMOTIONAL_GRANTS, 1));
    assert_memory_equal(&p, &was, sizeof p);
    assert_false(ledger_posting_add(&p, LEDGER_REVENUE, INT64_MIN));
    assert_memory_equal(&p, &was, sizeof p);
    add(&p, LEDGER_PROMOTIONAL_GRANTS, -1); /* back inside */
    assert_int_equal(line_of(&p, LEDGER_PROMOTIONAL_GRANTS), INT64_MAX - 1);
    add(&p, LEDGER_REVENUE, -INT64_MAX);
    was = p;
    assert_false(ledger_posting_add(&p, LEDGER_REVENUE, -1)); /* would be INT64_MIN */
    assert_memory_equal(&p, &was, sizeof p);

    /* a move is whole or nothing: here its debit fits and its credit does not */
    ledger_posting_init(&p, LEDGER_CAUSE_CONSUMPTION);
    add(&p, LEDGER_REVENUE, -INT64_MAX);
    was = p;
    assert_false(ledger_posting_move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_PAID_CREDITS, 1));
    assert_memory_equal(&p, &was, sizeof p);
    /* and its credit fits where its debit does not */
    ledger_posting_init(&p, LEDGER_CAUSE_CONSUMPTION);
    add(&p, LEDGER_CUSTOMER_PAID_CREDITS, INT64_MAX);
    was = p;
    assert_false(ledger_posting_move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_PAID_CREDITS, 1));
    assert_memory_equal(&p, &was, sizeof p);
    /* a move of INT64_MIN has no opposite side */
    ledger_posting_init(&p, LEDGER_CAUSE_VOID);
    assert_false(ledger_posting_move(&p, LEDGER_BREAKAGE, LEDGER_RECEIVABLE, INT64_MIN));
    assert_true(ledger_posting_empty(&p));
    /* the largest move there is */
    move(&p, LEDGER_BREAKAGE, LEDGER_RECEIVABLE, INT64_MAX);
    assert_true(ledger_posting_balanced(&p));
}

/* The balances a posting leaves: checked against int64 and each account's bound. */
static void balances_after(void **state)
{
    (void)state;
    /* the accounts money enters by are bounded at LEDGER_INFLOW_MAX, the others by int64 */
    for (int a = 0; a < LEDGER_ACCOUNT_COUNT; a++) {
        bool inflow = a == LEDGER_RECEIVABLE || a == LEDGER_CASH || a == LEDGER_PROMOTIONAL_GRANTS;
        assert_int_equal(ledger_account_max((enum ledger_account)a),
                         inflow ? LEDGER_INFLOW_MAX : INT64_MAX);
    }
    assert_true(LEDGER_INFLOW_MAX - 1 <= INT64_MAX / 8); /* an eighth of int64 */

    int64_t after = 7;
    assert_true(ledger_balance_after(LEDGER_REVENUE, -100, -50, &after));
    assert_int_equal(after, -150);
    assert_true(ledger_balance_after(LEDGER_REVENUE, -INT64_MAX + 5, -5, &after));
    assert_int_equal(after, -INT64_MAX);
    after = 7;
    assert_false(ledger_balance_after(LEDGER_REVENUE, -INT64_MAX + 5, -6, &after)); /* INT64_MIN */
    assert_false(ledger_balance_after(LEDGER_REVENUE, INT64_MIN, 0, &after));
    assert_false(ledger_balance_after(LEDGER_BREAKAGE, -INT64_MAX, INT64_MIN, &after));
    assert_false(ledger_balance_after(LEDGER_CUSTOMER_OVERDRAFT, INT64_MAX, 1, &after));
    assert_false(ledger_balance_after(LEDGER_HOLDS_OUTSTANDING, 1, INT64_MAX, &after));
    assert_int_equal(after, 7); /* a refusal writes nothing */
    assert_true(ledger_balance_after(LEDGER_CUSTOMER_OVERDRAFT, INT64_MAX, -INT64_MAX, &after));
    assert_int_equal(after, 0);

    /* an inflow account: up to its bound, either way, and not one cent past */
    assert_true(ledger_balance_after(LEDGER_RECEIVABLE, LEDGER_INFLOW_MAX - 10, 10, &after));
    assert_int_equal(after, LEDGER_INFLOW_MAX);
    assert_false(ledger_balance_after(LEDGER_RECEIVABLE, LEDGER_INFLOW_MAX - 10, 11, &after));
    assert_false(ledger_balance_after(LEDGER_PROMOTIONAL_GRANTS, -LEDGER_INFLOW_MAX, -1, &after));
    /* one already past it (written before the bound) may only come back towards zero */
    assert_true(
        ledger_balance_after(LEDGER_PROMOTIONAL_GRANTS, LEDGER_INFLOW_MAX + 100, -50, &after));
    assert_int_equal(after, LEDGER_INFLOW_MAX + 50);
    assert_false(
        ledger_balance_after(LEDGER_PROMOTIONAL_GRANTS, LEDGER_INFLOW_MAX + 100, 1, &after));
    /* (to the other side, no further from zero than it was: still coming back) */
    assert_true(ledger_balance_after(LEDGER_PROMOTIONAL_GRANTS, LEDGER_INFLOW_MAX + 100,
                                     -2 * LEDGER_INFLOW_MAX - 200, &after));
    assert_false(ledger_balance_after(LEDGER_PROMOTIONAL_GRANTS, LEDGER_INFLOW_MAX + 100,
                                      -2 * LEDGER_INFLOW_MAX - 201, &after));

    /* a whole posting: the audit's tenth grant of 10^18 cents, onto accounts holding 9 x 10^18 */
    int64_t out[LEDGER_LINES_MAX];
    struct ledger_posting p;
    ledger_posting_init(&p, LEDGER_CAUSE_GRANT);
    move(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, LEDGER_PROMOTIONAL_GRANTS,
         INT64_C(1000000000000000000));
    int64_t lines_before[LEDGER_LINES_MAX];
    for (size_t i = 0; i < p.count; i++)
        lines_before[i] = p.lines[i].account == LEDGER_PROMOTIONAL_GRANTS
                              ? INT64_C(9000000000000000000)
                              : INT64_C(-9000000000000000000);
    size_t line = 99;
    assert_false(ledger_posting_balances_after(&p, lines_before, out, &line));
    assert_true(line < p.count);
    /* both lines pass int64 here; the first refused is the first in the posting */
    assert_int_equal(line, 0);
    /* on empty accounts it fits (the wallet's own limit refuses it first) ... */
    for (size_t i = 0; i < p.count; i++)
        lines_before[i] = 0;
    assert_true(ledger_posting_balances_after(&p, lines_before, out, &line));
    /* ... and onto a promotional_grants account that already took in 2^60 - 10^18, it does not:
     * the customer's side fits, the organization's does not */
    for (size_t i = 0; i < p.count; i++)
        lines_before[i] = p.lines[i].account == LEDGER_PROMOTIONAL_GRANTS
                              ? LEDGER_INFLOW_MAX - INT64_C(1000000000000000000) + 1
                              : 0;
    assert_false(ledger_posting_balances_after(&p, lines_before, out, &line));
    assert_int_equal(p.lines[line].account, LEDGER_PROMOTIONAL_GRANTS);
    /* and a grant that fits gives each line's balance after */
    ledger_posting_init(&p, LEDGER_CAUSE_GRANT);
    move(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, LEDGER_PROMOTIONAL_GRANTS, 100);
    for (size_t i = 0; i < p.count; i++)
        lines_before[i] = p.lines[i].account == LEDGER_PROMOTIONAL_GRANTS ? 1000 : -400;
    assert_true(ledger_posting_balances_after(&p, lines_before, out, &line));
    for (size_t i = 0; i < p.count; i++)
        assert_int_equal(out[i], p.lines[i].account == LEDGER_PROMOTIONAL_GRANTS ? 1100 : -500);

    /* random balances and lines against 128-bit sums */
    reseed(3);
    static const int64_t edges[] = {0,
                                    1,
                                    -1,
                                    INT64_MAX,
                                    -INT64_MAX,
                                    INT64_MIN,
                                    LEDGER_INFLOW_MAX,
                                    -LEDGER_INFLOW_MAX,
                                    LEDGER_INFLOW_MAX + 1,
                                    INT64_MAX / 2};
    for (uint64_t i = 0; i < 200000; i++) {
        enum ledger_account a = (enum ledger_account)below(LEDGER_ACCOUNT_COUNT);
        /* near the edges, wrapping on purpose (in uint64) to land either side of them */
        int64_t b = (int64_t)(below(3) ? next() : (uint64_t)edges[below(10)] + below(3) - 1);
        int64_t amount = (int64_t)(below(3) ? next() : (uint64_t)edges[below(10)] - below(3) + 1);
        if (below(2))
            amount >>= below(63);
        __int128 sum = (__int128)b + amount;
        __int128 max = ledger_account_max(a);
        __int128 mag_before = b < 0 ? -(__int128)b : b, mag_after = sum < 0 ? -sum : sum;
        bool want =
            sum <= INT64_MAX && sum > INT64_MIN && (mag_after <= max || mag_after <= mag_before);
        int64_t got_after = 0;
        bool got = ledger_balance_after(a, b, amount, &got_after);
        if (got != want || (got && got_after != (int64_t)sum))
            fail_msg("balance after (seed %" PRIu64 ", case %" PRIu64 "): %s %" PRId64 " + %" PRId64
                     ": %d, want %d",
                     seed, i, ledger_account_name(a), b, amount, got, want);
    }
}

/* Random moves and adds against per-account sums; undoing them all leaves the posting empty. */
static void random_moves_property(void **state)
{
    (void)state;
    enum { MOVES = 24 };
    reseed(1);
    for (uint64_t round = 0; round < 50000; round++) {
        struct ledger_posting p;
        ledger_posting_init(&p, (enum ledger_cause)below(LEDGER_CAUSE_COUNT));
        int64_t sums[LEDGER_ACCOUNT_COUNT] = {0};
        struct {
            enum ledger_account from, to;
            int64_t cents;
        } moves[MOVES];
        size_t n = (size_t)below(MOVES + 1);
        for (size_t k = 0; k < n; k++) {
            moves[k].from = (enum ledger_account)below(LEDGER_ACCOUNT_COUNT);
            moves[k].to = (enum ledger_account)below(LEDGER_ACCOUNT_COUNT);
            /* small amounts, so that lines often cancel */
            moves[k].cents = below(2) ? (int64_t)below(4) : (int64_t)below(1000000);
            move(&p, moves[k].from, moves[k].to, moves[k].cents);
            sums[moves[k].to] += moves[k].cents;
            sums[moves[k].from] -= moves[k].cents;
            size_t nonzero = 0;
            for (int a = 0; a < LEDGER_ACCOUNT_COUNT; a++) {
                nonzero += sums[a] != 0;
                if (line_of(&p, (enum ledger_account)a) != sums[a])
                    fail_msg("moves (seed %" PRIu64 ", round %" PRIu64
                             ", move %zu): %s has %" PRId64 ", want %" PRId64,
                             seed, round, k, ledger_account_name((enum ledger_account)a),
                             line_of(&p, (enum ledger_account)a), sums[a]);
            }
            if (p.count != nonzero || !ledger_posting_balanced(&p) ||
                ledger_posting_empty(&p) != (nonzero == 0))
                fail_msg("moves (seed %" PRIu64 ", round %" PRIu64 ", move %zu): %zu lines, want "
                         "%zu, balanced %d",
                         seed, round, k, p.count, nonzero, ledger_posting_balanced(&p));
        }
        /* one line more unbalances it, unless it is zero */
        struct ledger_posting extra = p;
        int64_t cents = (int64_t)below(5);
        add(&extra, (enum ledger_account)below(LEDGER_ACCOUNT_COUNT), cents);
        if (ledger_posting_balanced(&extra) != (cents == 0))
            fail_msg("moves (seed %" PRIu64 ", round %" PRIu64 "): adding %" PRId64
                     " leaves it balanced %d",
                     seed, round, cents, ledger_posting_balanced(&extra));
        /* undo in a shuffled order: nothing is left */
        for (size_t k = n; k > 1; k--) {
            size_t j = (size_t)below(k);
            __typeof__(moves[0]) t = moves[k - 1];
            moves[k - 1] = moves[j];
            moves[j] = t;
        }
        for (size_t k = 0; k < n; k++)
            move(&p, moves[k].to, moves[k].from, moves[k].cents);
        if (!ledger_posting_empty(&p))
            fail_msg("moves (seed %" PRIu64 ", round %" PRIu64 "): %zu lines after undoing", seed,
                     round, p.count);
    }
}

/* ---- Main ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    seed_from_env("ledger", UINT64_C(20261127));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(account_table),     cmocka_unit_test(cause_names),
        cmocka_unit_test(init_is_empty),     cmocka_unit_test(add_merges_and_cancels),
        cmocka_unit_test(moves_and_balance), cmocka_unit_test(random_moves_property),
        cmocka_unit_test(checked_lines),     cmocka_unit_test(balances_after),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
