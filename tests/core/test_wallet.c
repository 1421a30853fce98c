/*
 * Tests of core/wallet: credits <-> cents conversions on Lago's examples and a round-trip
 * property, the names of limits and fee types, which wallets may pay a charge, the grants'
 * consumption order (hand-checked cases, then random grants against an independent reference
 * of the order) and the planning of a debit over grants.
 *
 * The property tests print their seed; TALLY_SEED=<n> replays a run. Every failure message
 * names the seed and the case number.
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

#include "core/money.h"
#include "core/wallet.h"
#include "splitmix.h"

/* ---- Helpers -------------------------------------------------------------------------------- */

static money_t M(const char *text)
{
    money_t v = {0, 0};
    enum money_status st = money_parse(text, strlen(text), &v);
    if (st != MONEY_OK)
        fail_msg("money_parse(\"%s\") = %d", text, (int)st);
    return v;
}

static const char *text_of(money_t v, char buf[MONEY_TEXT_MAX])
{
    if (money_format(v, buf, MONEY_TEXT_MAX) == 0)
        fail_msg("money_format failed with MONEY_TEXT_MAX");
    return buf;
}

static void check_to_cents(const char *credits, const char *rate, int32_t exponent,
                           enum money_status want_status, int64_t want_cents)
{
    int64_t cents = -12345;
    enum money_status st = wallet_credits_to_cents(M(credits), M(rate), exponent, &cents);
    if (st != want_status)
        fail_msg("credits_to_cents(%s, rate %s, exp %d): status %d, want %d", credits, rate,
                 exponent, (int)st, (int)want_status);
    if (want_status == MONEY_OK && cents != want_cents)
        fail_msg("credits_to_cents(%s, rate %s, exp %d): %" PRId64 " cents, want %" PRId64, credits,
                 rate, exponent, cents, want_cents);
}

static void check_to_credits(int64_t cents, const char *rate, int32_t exponent,
                             const char *want_text)
{
    money_t credits = {0, 0};
    char buf[MONEY_TEXT_MAX];
    enum money_status st = wallet_cents_to_credits(cents, M(rate), exponent, &credits);
    if (st != MONEY_OK)
        fail_msg("cents_to_credits(%" PRId64 ", rate %s, exp %d): status %d", cents, rate, exponent,
                 (int)st);
    if (money_cmp(credits, M(want_text)) != 0)
        fail_msg("cents_to_credits(%" PRId64 ", rate %s, exp %d): %s, want %s", cents, rate,
                 exponent, text_of(credits, buf), want_text);
    if (money_normalize(credits).scale > WALLET_CREDITS_SCALE)
        fail_msg("cents_to_credits(%" PRId64 "): %s has more than %d decimals", cents,
                 text_of(credits, buf), WALLET_CREDITS_SCALE);
}

/* ---- Conversions ---------------------------------------------------------------------------- */

static void credits_to_cents_examples(void **state)
{
    (void)state;
    /* Lago's: the float credits are floored to 17.96999, priced at 1 and rounded to 17.97 */
    check_to_cents("17.9699999999999988631316", "1", 2, MONEY_OK, 1797);
    check_to_cents("10", "0.5", 2, MONEY_OK, 500);
    /* 0.333333 floors to 0.33333, x3 = 0.99999 EUR, half up to 1.00 */
    check_to_cents("0.333333", "3", 2, MONEY_OK, 100);
    /* the floor to 5 decimals comes before the price: 0.333339 is 0.33333 too */
    check_to_cents("0.333339", "3", 2, MONEY_OK, 100);
    /* floored, not rounded: 0.004999999 -> 0.00499 -> 0.00 EUR; 0.005 -> 0.01 EUR (half up) */
    check_to_cents("0.004999999", "1", 2, MONEY_OK, 0);
    check_to_cents("0.005", "1", 2, MONEY_OK, 1);
    check_to_cents("0.00499", "1", 2, MONEY_OK, 0);
    check_to_cents("1.005", "1", 2, MONEY_OK, 101);
    check_to_cents("1.00499", "1", 2, MONEY_OK, 100);
    /* JPY: no minor unit */
    check_to_cents("12.5", "1", 0, MONEY_OK, 13);
    check_to_cents("12.49999", "1", 0, MONEY_OK, 12);
    check_to_cents("100", "150", 0, MONEY_OK, 15000);
    check_to_cents("0.00333", "150", 0, MONEY_OK, 0); /* 0.4995 JPY */
    check_to_cents("0.00334", "150", 0, MONEY_OK, 1); /* 0.501 JPY */
    /* KWD: three decimals */
    check_to_cents("1.23456", "1", 3, MONEY_OK, 1235);
    check_to_cents("1.23449", "1", 3, MONEY_OK, 1234);
    check_to_cents("1.23456", "0.5", 3, MONEY_OK, 617); /* 0.61728 */
    check_to_cents("10", "2.5", 3, MONEY_OK, 25000);
    /* a tiny amount rounds to no cent at all (the caller refuses it) */
    check_to_cents("0.001", "1", 2, MONEY_OK, 0);
    check_to_cents("0.00001", "1", 2, MONEY_OK, 0);
    check_to_cents("0", "1", 2, MONEY_OK, 0);
    /* many decimals in the rate are fine: the product is rounded once */
    check_to_cents("3", "0.3333333333", 2, MONEY_OK, 100);
    /* the bound: WALLET_BALANCE_MAX_CENTS (10^14) cents itself converts, one more does not */
    check_to_cents("1000000000000", "1", 2, MONEY_OK, WALLET_BALANCE_MAX_CENTS);
    check_to_cents("-1000000000000", "1", 2, MONEY_OK, -WALLET_BALANCE_MAX_CENTS);
    check_to_cents("1000000000000.01", "1", 2, MONEY_ERR_OVERFLOW, 0);
    check_to_cents("-1000000000000.01", "1", 2, MONEY_ERR_OVERFLOW, 0);
    check_to_cents("100000000000001", "1", 0, MONEY_ERR_OVERFLOW, 0);
    check_to_cents("100000000000", "1", 3, MONEY_OK, WALLET_BALANCE_MAX_CENTS);
    check_to_cents("10000000000", "100", 2, MONEY_OK, WALLET_BALANCE_MAX_CENTS);
    check_to_cents("10000000000.00001", "100", 2, MONEY_OK,
                   WALLET_BALANCE_MAX_CENTS);                             /* +0.1 cent */
    check_to_cents("10000000000.00005", "100", 2, MONEY_ERR_OVERFLOW, 0); /* +1 */
    /* the audit's grant: 10^16 credits at 1 USD are 10^18 cents, far past it */
    check_to_cents("10000000000000000", "1", 2, MONEY_ERR_OVERFLOW, 0);
    /* past int64, past the money range of the product, past the floor's range */
    check_to_cents("100000000000000000000", "1", 2, MONEY_ERR_OVERFLOW, 0);
    check_to_cents("1000000000", "10000000000000", 2, MONEY_ERR_OVERFLOW, 0);
    check_to_cents("10000000000000000000000000000000000", "1", 2, MONEY_ERR_OVERFLOW, 0);
    check_to_cents("1000000000000000000000000000000", "1000000", 2, MONEY_ERR_OVERFLOW, 0);
}

/* A bound in credits is rounded down to the minor unit, so that no more than it ever passes:
 * an audit found a rollover cap of 10.6 yen carrying 11, and one of 0.5 credits at 0.33 USD
 * (16.5 cents) carrying 17. An amount (wallet_credits_to_cents) still rounds half up. */
static void cap_to_cents_examples(void **state)
{
    (void)state;
    static const struct {
        const char *credits, *rate;
        int32_t exponent;
        int64_t cap, amount;
    } cases[] = {
        {"10.6", "1", 0, 10, 11},
        {"0.5", "0.33", 2, 16, 17},
        {"0.009", "1", 2, 0, 1},
        {"0.001", "1", 2, 0, 0},
        {"1.23456", "1", 3, 1234, 1235},
        {"10", "0.5", 2, 500, 500},    /* exact: the same either way */
        {"0.333339", "3", 2, 99, 100}, /* floored to 0.33333 first, x3 = 0.99999 */
        {"1000000000000", "1", 2, WALLET_BALANCE_MAX_CENTS, WALLET_BALANCE_MAX_CENTS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t cap = -1;
        if (wallet_credits_cap_to_cents(M(cases[i].credits), M(cases[i].rate), cases[i].exponent,
                                        &cap) != MONEY_OK ||
            cap != cases[i].cap)
            fail_msg("cap %s at %s: %" PRId64 " cents, want %" PRId64, cases[i].credits,
                     cases[i].rate, cap, cases[i].cap);
        check_to_cents(cases[i].credits, cases[i].rate, cases[i].exponent, MONEY_OK,
                       cases[i].amount);
    }
    int64_t kept = 7;
    assert_int_equal(wallet_credits_cap_to_cents(M("1000000000000.01"), M("1"), 2, &kept),
                     MONEY_ERR_OVERFLOW);
    assert_int_equal(kept, 7);
}

static void cents_to_credits_examples(void **state)
{
    (void)state;
    check_to_credits(1797, "1", 2, "17.97");
    check_to_credits(500, "0.5", 2, "10");
    check_to_credits(100, "3", 2, "0.33333"); /* 0.333333... half up at 5 decimals */
    check_to_credits(200, "3", 2, "0.66667"); /* 0.666666... rounds up */
    check_to_credits(1, "3", 2, "0.00333");
    check_to_credits(0, "3", 2, "0");
    check_to_credits(-1797, "1", 2, "-17.97");
    check_to_credits(-100, "3", 2, "-0.33333");
    check_to_credits(-200, "3", 2, "-0.66667"); /* half up is away from zero */
    check_to_credits(1000, "1", 0, "1000");     /* JPY */
    check_to_credits(15000, "150", 0, "100");
    check_to_credits(1, "150", 0, "0.00667");
    check_to_credits(1235, "1", 3, "1.235"); /* KWD */
    check_to_credits(617, "0.5", 3, "1.234");
    check_to_credits(1, "1", 3, "0.001");
    check_to_credits(WALLET_BALANCE_MAX_CENTS, "1", 2, "1000000000000");
    check_to_credits(1, "0.00001", 2, "1000");
    /* at a rate so small that the balance is worth 10^33 credits or more, past what a money_t
     * holds at 5 decimals: shown with the decimals that fit, never as 0 (an audit read
     * credits_balance "0.0" for 10^14 cents at 1e-21) */
    check_to_credits(100000000000000, "0.000000000000000000001", 2,
                     "1000000000000000000000000000000000");
    check_to_credits(-100000000000000, "0.000000000000000000001", 2,
                     "-1000000000000000000000000000000000");
    check_to_credits(WALLET_LIFETIME_MAX_CENTS, "0.000000000000000000001", 2,
                     "46116860184273879040000000000000000000");
    /* a rate whose amounts could not be written at all is refused (wallet_rate_showable) */
    assert_true(wallet_rate_showable(M("0.000000000000000000001"), 2));
    assert_false(wallet_rate_showable(M("0.0000000000000000000001"), 2));
    assert_false(wallet_rate_showable(M("0.00000000000000000000000000000000001"), 2));
    assert_true(wallet_rate_showable(M("0.00001"), 0));

    /* the result is exactly at WALLET_CREDITS_SCALE decimals' precision */
    money_t credits;
    assert_int_equal(wallet_cents_to_credits(100, M("3"), 2, &credits), MONEY_OK);
    char buf[MONEY_TEXT_MAX];
    assert_string_equal(text_of(credits, buf), "0.33333");
    /* a zero rate has no credits */
    assert_int_equal(wallet_cents_to_credits(100, M("0"), 2, &credits), MONEY_ERR_DIV_BY_ZERO);
}

/* For rates whose credits are exact at 5 decimals, cents -> credits -> cents is the identity. */
static void round_trip_property(void **state)
{
    (void)state;
    static const char *const rates[] = {"1", "0.5", "0.01", "2", "4", "5", "10", "0.25"};
    static const int32_t exponents[] = {0, 2, 3};
    reseed(1);
    for (uint64_t i = 0; i < 200000; i++) {
        const char *rate = rates[below(sizeof rates / sizeof rates[0])];
        int32_t exponent = exponents[below(3)];
        int64_t cents;
        switch (below(4)) {
        case 0: cents = (int64_t)below(1000); break;
        case 1: cents = (int64_t)below(100000000); break;
        default: cents = (int64_t)below((uint64_t)WALLET_BALANCE_MAX_CENTS + 1); break;
        }
        if (below(4) == 0)
            cents = -cents;
        money_t credits;
        int64_t back = 0;
        char buf[MONEY_TEXT_MAX];
        enum money_status st = wallet_cents_to_credits(cents, M(rate), exponent, &credits);
        if (st != MONEY_OK)
            fail_msg("round trip (seed %" PRIu64 ", case %" PRIu64 "): cents_to_credits(%" PRId64
                     ", %s, %d) = %d",
                     seed, i, cents, rate, exponent, (int)st);
        st = wallet_credits_to_cents(credits, M(rate), exponent, &back);
        if (st != MONEY_OK || back != cents)
            fail_msg("round trip (seed %" PRIu64 ", case %" PRIu64 "): %" PRId64
                     " cents at rate %s exp %d -> %s credits -> status %d, %" PRId64 " cents",
                     seed, i, cents, rate, exponent, text_of(credits, buf), (int)st, back);
    }
}

/* A refused conversion leaves the caller's cents as they were (a rule's amounts are read
 * without a second look: a value past the bound must not slip through). */
static void refused_conversion_writes_nothing(void **state)
{
    (void)state;
    int64_t cents = 42;
    assert_int_equal(wallet_credits_to_cents(M("50000000000000000"), M("1"), 2, &cents),
                     MONEY_ERR_OVERFLOW);
    assert_int_equal(cents, 42);
    assert_int_equal(wallet_credits_to_cents(M("1000000000000.01"), M("1"), 2, &cents),
                     MONEY_ERR_OVERFLOW);
    assert_int_equal(cents, 42);
}

/* ---- How much a wallet may take ------------------------------------------------------------- */

static void credits_fit(void **state)
{
    (void)state;
    const int64_t max = WALLET_BALANCE_MAX_CENTS, life = WALLET_LIFETIME_MAX_CENTS;
    assert_int_equal(max, INT64_C(100000000000000));
    /* the bounds leave room: a customer's wallets, and the largest sums of them, stay in int64 */
    assert_true(life - 1 <= INT64_MAX / 2 && max * 2 * WALLET_PER_CUSTOMER_MAX < life);
    /* an empty wallet takes the limit, not a cent more */
    assert_int_equal(wallet_credits_fit(0, 0, max), WALLET_FITS);
    assert_int_equal(wallet_credits_fit(0, 0, max + 1), WALLET_FIT_BALANCE);
    assert_int_equal(wallet_credits_fit(0, 0, 1), WALLET_FITS);
    /* what it holds counts */
    assert_int_equal(wallet_credits_fit(60000000000000, 60000000000000, 40000000000000),
                     WALLET_FITS);
    assert_int_equal(wallet_credits_fit(60000000000000, 60000000000000, 40000000000001),
                     WALLET_FIT_BALANCE);
    assert_int_equal(wallet_credits_fit(max, max, 1), WALLET_FIT_BALANCE);
    /* past the limit (refund steps give back what usage took): nothing more fits */
    assert_int_equal(wallet_credits_fit(max + 5, max + 5, 1), WALLET_FIT_BALANCE);
    /* over its life: what it consumed counts too */
    assert_int_equal(wallet_credits_fit(0, life - 5, 5), WALLET_FITS);
    assert_int_equal(wallet_credits_fit(0, life - 5, 6), WALLET_FIT_LIFETIME);
    assert_int_equal(wallet_credits_fit(10, life, 1), WALLET_FIT_LIFETIME);
    /* the balance is named first when both are passed */
    assert_int_equal(wallet_credits_fit(max, life, 1), WALLET_FIT_BALANCE);
    /* sums that would leave int64 do not wrap into "fits" */
    assert_int_equal(wallet_credits_fit(INT64_MAX, 0, 1), WALLET_FIT_BALANCE);
    assert_int_equal(wallet_credits_fit(0, INT64_MAX, 1), WALLET_FIT_LIFETIME);
    assert_int_equal(wallet_credits_fit(0, 0, INT64_MAX), WALLET_FIT_BALANCE);
    /* the audit's tenth grant of 10^18 cents on a wallet holding 9 x 10^18 */
    assert_int_equal(wallet_credits_fit(INT64_C(9000000000000000000), INT64_C(9000000000000000000),
                                        INT64_C(1000000000000000000)),
                     WALLET_FIT_BALANCE);
    /* how many credits fit, in the wallet's credits: floored, so they convert back within */
    static const struct {
        int64_t cents;
        const char *rate, *want;
        int32_t exponent;
    } within[] = {
        {WALLET_BALANCE_MAX_CENTS, "1", "1000000000000", 2},
        {WALLET_BALANCE_MAX_CENTS, "100", "10000000000", 2},
        {WALLET_BALANCE_MAX_CENTS, "3", "333333333333.33333", 2},
        {WALLET_BALANCE_MAX_CENTS, "1", "100000000000000", 0},
        {WALLET_BALANCE_MAX_CENTS, "0.00001", "100000000000000000", 2},
        {200, "3", "0.66666", 2},
        {0, "7", "0", 3},
    };
    for (size_t i = 0; i < sizeof within / sizeof within[0]; i++) {
        money_t credits;
        char buf[MONEY_TEXT_MAX];
        int64_t back = 0;
        assert_int_equal(
            wallet_credits_within(within[i].cents, M(within[i].rate), within[i].exponent, &credits),
            MONEY_OK);
        if (money_cmp(credits, M(within[i].want)) != 0)
            fail_msg("within(%" PRId64 ", %s): %s, want %s", within[i].cents, within[i].rate,
                     text_of(credits, buf), within[i].want);
        assert_int_equal(
            wallet_credits_to_cents(credits, M(within[i].rate), within[i].exponent, &back),
            MONEY_OK);
        assert_true(back <= within[i].cents);
    }

    /* random cases against 128-bit sums */
    reseed(7);
    for (uint64_t i = 0; i < 200000; i++) {
        int64_t holds = (int64_t)below((uint64_t)max * 2),
                cents = (int64_t)below((uint64_t)max) + 1;
        int64_t lifetime = holds + (int64_t)(below(2) ? below((uint64_t)life) : below(1000));
        enum wallet_fit want = (__int128)holds + cents > max                 ? WALLET_FIT_BALANCE
                               : (__int128)lifetime + cents > (__int128)life ? WALLET_FIT_LIFETIME
                                                                             : WALLET_FITS;
        enum wallet_fit got = wallet_credits_fit(holds, lifetime, cents);
        if (got != want)
            fail_msg("fit (seed %" PRIu64 ", case %" PRIu64 "): holds %" PRId64
                     ", lifetime %" PRId64 ", cents %" PRId64 ": %d, want %d",
                     seed, i, holds, lifetime, cents, (int)got, (int)want);
    }
}

/* ---- Names ---------------------------------------------------------------------------------- */

static void limit_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum wallet_limit limit;
    } table[] = {
        {"none", WALLET_LIMIT_NONE},
        {"hard", WALLET_LIMIT_HARD},
        {"soft", WALLET_LIMIT_SOFT},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        assert_string_equal(wallet_limit_name(table[i].limit), table[i].name);
        enum wallet_limit l = (enum wallet_limit) - 1;
        assert_true(wallet_limit_parse(table[i].name, &l));
        assert_int_equal(l, table[i].limit);
    }
    static const char *const bad[] = {"", "HARD", "Soft", "hardx", "har", " none", "none "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum wallet_limit l;
        if (wallet_limit_parse(bad[i], &l))
            fail_msg("wallet_limit_parse(\"%s\") accepted", bad[i]);
    }
}

static void fee_type_names(void **state)
{
    (void)state;
    unsigned bit = 0;
    assert_true(wallet_fee_type_parse("charge", &bit));
    assert_int_equal(bit, WALLET_FEE_CHARGE);
    assert_true(wallet_fee_type_parse("subscription", &bit));
    assert_int_equal(bit, WALLET_FEE_SUBSCRIPTION);
    assert_true(wallet_fee_type_parse("commitment", &bit));
    assert_int_equal(bit, WALLET_FEE_COMMITMENT);
    static const char *const bad[] = {"",       "Charge", "charges", "charg", "minimum_commitment",
                                      "add_on", "credit"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wallet_fee_type_parse(bad[i], &bit))
            fail_msg("wallet_fee_type_parse(\"%s\") accepted", bad[i]);
}

/* ---- Which wallets pay ---------------------------------------------------------------------- */

static void may_pay_charge(void **state)
{
    (void)state;
    /* unrestricted: any fee */
    struct wallet_applies_to any = {0, NULL, 0, false};
    assert_true(wallet_may_pay_charge(&any, "api_calls"));
    assert_true(wallet_may_pay_charge(&any, ""));

    /* usage fees of every metric */
    struct wallet_applies_to charges = {WALLET_FEE_CHARGE, NULL, 0, false};
    assert_true(wallet_may_pay_charge(&charges, "api_calls"));
    assert_true(wallet_may_pay_charge(&charges, "storage"));
    struct wallet_applies_to charges_and_more = {
        WALLET_FEE_CHARGE | WALLET_FEE_SUBSCRIPTION | WALLET_FEE_COMMITMENT, NULL, 0, false};
    assert_true(wallet_may_pay_charge(&charges_and_more, "api_calls"));

    /* a list of metrics: those only, by exact code */
    static const char *const codes[] = {"api_calls", "storage_gb"};
    struct wallet_applies_to metrics = {0, codes, 2, false};
    assert_true(wallet_may_pay_charge(&metrics, "api_calls"));
    assert_true(wallet_may_pay_charge(&metrics, "storage_gb"));
    assert_false(wallet_may_pay_charge(&metrics, "bandwidth"));
    assert_false(wallet_may_pay_charge(&metrics, "api"));          /* not a prefix match */
    assert_false(wallet_may_pay_charge(&metrics, "api_calls_v2")); /* nor the other way */
    assert_false(wallet_may_pay_charge(&metrics, "API_CALLS"));
    assert_false(wallet_may_pay_charge(&metrics, ""));
    struct wallet_applies_to one_metric = {0, codes + 1, 1, false};
    assert_false(wallet_may_pay_charge(&one_metric, "api_calls"));
    assert_true(wallet_may_pay_charge(&one_metric, "storage_gb"));

    /* subscription-only or commitment-only wallets pay no usage fee */
    struct wallet_applies_to subscription = {WALLET_FEE_SUBSCRIPTION, NULL, 0, false};
    assert_false(wallet_may_pay_charge(&subscription, "api_calls"));
    struct wallet_applies_to commitment = {WALLET_FEE_COMMITMENT, NULL, 0, false};
    assert_false(wallet_may_pay_charge(&commitment, "api_calls"));
    struct wallet_applies_to not_charges = {WALLET_FEE_SUBSCRIPTION | WALLET_FEE_COMMITMENT, NULL,
                                            0, false};
    assert_false(wallet_may_pay_charge(&not_charges, "api_calls"));

    /* limited to metrics that were all deleted since: none, not every one (Lago keeps the
     * wallet's targets); fee type charge still pays every usage fee */
    struct wallet_applies_to gone = {0, NULL, 0, true};
    assert_false(wallet_may_pay_charge(&gone, "api_calls"));
    assert_false(wallet_may_pay_charge(&gone, ""));
    struct wallet_applies_to gone_but_charges = {WALLET_FEE_CHARGE, NULL, 0, true};
    assert_true(wallet_may_pay_charge(&gone_but_charges, "api_calls"));
}

/* ---- Consumption order ---------------------------------------------------------------------- */

#define SECOND INT64_C(1000000)
#define T0 INT64_C(1767225600000000) /* 2026-01-01T00:00:00Z */

static struct wallet_grant grant(int64_t id)
{
    return (struct wallet_grant){.id = id,
                                 .remaining_cents = 100,
                                 .priority = WALLET_PRIORITY_MAX,
                                 .paid = false,
                                 .has_expiration = false,
                                 .expiration_at = 0,
                                 .created_at = T0};
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

/* a goes strictly before b, and the comparison says so both ways. */
static void assert_before(const struct wallet_grant *a, const struct wallet_grant *b,
                          const char *why)
{
    int ab = wallet_grant_compare(a, b), ba = wallet_grant_compare(b, a);
    if (ab >= 0 || ba <= 0)
        fail_msg("%s: compare(a, b) = %d, compare(b, a) = %d", why, ab, ba);
}

static void grant_order_cases(void **state)
{
    (void)state;
    struct wallet_grant a, b;

    /* priority first, whatever else b has going for it */
    a = grant(9), b = grant(1);
    a.priority = 1, b.priority = 2;
    a.paid = true, a.created_at = T0 + 100 * SECOND;
    b.has_expiration = true, b.expiration_at = T0 + SECOND;
    assert_before(&a, &b, "lower priority first");
    a.priority = WALLET_PRIORITY_MAX - 1, b.priority = WALLET_PRIORITY_MAX;
    assert_before(&a, &b, "priority 49 before 50");

    /* then one that expires before one that does not, even far in the future */
    a = grant(9), b = grant(1);
    a.has_expiration = true, a.expiration_at = T0 + INT64_C(100) * 365 * 86400 * SECOND;
    a.paid = true, a.created_at = T0 + 100 * SECOND;
    assert_before(&a, &b, "an expiring grant before one without");

    /* soonest expiry first */
    a = grant(9), b = grant(1);
    a.has_expiration = b.has_expiration = true;
    a.expiration_at = T0 + 10 * SECOND, b.expiration_at = T0 + 11 * SECOND;
    a.paid = true, a.created_at = T0 + 100 * SECOND;
    assert_before(&a, &b, "soonest expiry first");

    /* then granted credits before paid ones: with no expiry, and with the same expiry */
    a = grant(9), b = grant(1);
    b.paid = true, a.created_at = T0 + 100 * SECOND;
    assert_before(&a, &b, "granted before paid");
    a.has_expiration = b.has_expiration = true;
    a.expiration_at = b.expiration_at = T0 + 50 * SECOND;
    assert_before(&a, &b, "granted before paid, same expiry");

    /* then the oldest */
    a = grant(9), b = grant(1);
    a.created_at = T0 - SECOND;
    assert_before(&a, &b, "oldest first");
    a.paid = b.paid = true;
    assert_before(&a, &b, "oldest first, both paid");

    /* and the id breaks the last tie */
    a = grant(1), b = grant(2);
    assert_before(&a, &b, "lowest id last");
    a.has_expiration = b.has_expiration = true;
    a.expiration_at = b.expiration_at = T0;
    a.paid = b.paid = true;
    assert_before(&a, &b, "lowest id last, with expiry and paid");

    /* an expiry that is not set is not compared */
    a = grant(9), b = grant(1);
    a.expiration_at = T0 + 1000 * SECOND, b.expiration_at = T0;
    a.created_at = T0 - SECOND;
    assert_before(&a, &b, "unset expiration_at ignored");

    /* remaining amounts do not order grants */
    a = grant(1), b = grant(2);
    a.remaining_cents = 1000000, b.remaining_cents = 1;
    assert_before(&a, &b, "remaining does not count");

    /* a grant is equal to itself, and only to itself */
    a = grant(5);
    assert_int_equal(wallet_grant_compare(&a, &a), 0);
    b = a;
    assert_int_equal(wallet_grant_compare(&a, &b), 0);
}

/* An independent reference of the order: the key tuple, compared lexicographically. */
static int reference_compare(const struct wallet_grant *a, const struct wallet_grant *b)
{
    int64_t ka[6] = {a->priority,
                     a->has_expiration ? 0 : 1,
                     a->has_expiration ? a->expiration_at : 0,
                     a->paid ? 1 : 0,
                     a->created_at,
                     a->id};
    int64_t kb[6] = {b->priority,
                     b->has_expiration ? 0 : 1,
                     b->has_expiration ? b->expiration_at : 0,
                     b->paid ? 1 : 0,
                     b->created_at,
                     b->id};
    for (int i = 0; i < 6; i++)
        if (ka[i] != kb[i])
            return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

static int qsort_compare(const void *a, const void *b)
{
    return wallet_grant_compare(a, b);
}

/* Random grants with many ties in every field but the id (unique, in random order). */
static void random_grants(struct wallet_grant *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i].id = (int64_t)i + 1;
    for (size_t i = n; i > 1; i--) { /* shuffle the ids */
        size_t j = (size_t)below(i);
        int64_t t = g[i - 1].id;
        g[i - 1].id = g[j].id;
        g[j].id = t;
    }
    for (size_t i = 0; i < n; i++) {
        g[i].remaining_cents = below(3) == 0 ? 0 : (int64_t)below(10000);
        g[i].held_cents = below(3) == 0 ? (int64_t)below((uint64_t)g[i].remaining_cents + 1) : 0;
        g[i].capturing_cents = 0;
        g[i].priority = below(2) ? WALLET_PRIORITY_MAX : WALLET_PRIORITY_MIN + (int32_t)below(3);
        g[i].paid = below(2);
        g[i].has_expiration = below(2);
        g[i].expiration_at = T0 + (int64_t)below(4) * SECOND; /* set even when not used */
        g[i].created_at = T0 - (int64_t)below(4) * SECOND;
    }
}

static void grant_order_property(void **state)
{
    (void)state;
    enum { N = 96 };
    struct wallet_grant g[N];
    reseed(2);
    for (uint64_t round = 0; round < 2000; round++) {
        size_t n = 1 + (size_t)below(N);
        random_grants(g, n);
        /* antisymmetry and agreement with the reference, on unsorted pairs */
        for (size_t k = 0; k < 4 * n; k++) {
            size_t i = (size_t)below(n), j = (size_t)below(n);
            int ij = wallet_grant_compare(&g[i], &g[j]), ji = wallet_grant_compare(&g[j], &g[i]);
            if (sign(ij) != -sign(ji) || sign(ij) != reference_compare(&g[i], &g[j]) ||
                (ij == 0) != (i == j))
                fail_msg("order (seed %" PRIu64 ", round %" PRIu64 "): ids %" PRId64 " and %" PRId64
                         ": compare %d / %d, reference %d",
                         seed, round, g[i].id, g[j].id, ij, ji, reference_compare(&g[i], &g[j]));
        }
        qsort(g, n, sizeof g[0], qsort_compare);
        /* a strict total order: every earlier grant is strictly before every later one */
        for (size_t i = 0; i < n; i++) {
            if (wallet_grant_compare(&g[i], &g[i]) != 0)
                fail_msg("order (seed %" PRIu64 ", round %" PRIu64 "): compare(a, a) != 0", seed,
                         round);
            for (size_t j = i + 1; j < n; j++)
                if (wallet_grant_compare(&g[i], &g[j]) >= 0 ||
                    wallet_grant_compare(&g[j], &g[i]) <= 0 || reference_compare(&g[i], &g[j]) >= 0)
                    fail_msg("order (seed %" PRIu64 ", round %" PRIu64 "): sorted [%zu] id %" PRId64
                             " not before [%zu] id %" PRId64,
                             seed, round, i, g[i].id, j, g[j].id);
        }
        /* each grant finds its own place */
        for (size_t i = 0; i < n; i++) {
            size_t at = wallet_grant_position(g, n, &g[i]);
            if (at != i)
                fail_msg("position (seed %" PRIu64 ", round %" PRIu64 "): [%zu] found at %zu", seed,
                         round, i, at);
        }
        /* a new grant's place: everything before it is consumed first, everything after later */
        struct wallet_grant fresh;
        random_grants(&fresh, 1);
        fresh.id = (int64_t)below(n + 2) == 0 ? 0 : (int64_t)N + 1 + (int64_t)below(10);
        size_t at = wallet_grant_position(g, n, &fresh);
        if (at > n)
            fail_msg("position (seed %" PRIu64 ", round %" PRIu64 "): %zu past %zu", seed, round,
                     at, n);
        for (size_t i = 0; i < n; i++)
            if ((i < at) != (reference_compare(&g[i], &fresh) < 0))
                fail_msg("position (seed %" PRIu64 ", round %" PRIu64
                         "): new grant at %zu, but [%zu] compares %d",
                         seed, round, at, i, reference_compare(&g[i], &fresh));
    }
    /* an empty list */
    struct wallet_grant one = grant(1);
    assert_int_equal(wallet_grant_position(NULL, 0, &one), 0);
}

/* ---- Planning a debit ----------------------------------------------------------------------- */

static void plan_take_cases(void **state)
{
    (void)state;
    struct wallet_grant g[4];
    for (int i = 0; i < 4; i++) {
        g[i] = grant(i + 1);
        g[i].created_at = T0 + i * SECOND;
    }
    g[0].remaining_cents = 100;
    g[1].remaining_cents = 0; /* used up: skipped */
    g[2].remaining_cents = 250;
    g[3].remaining_cents = 50;
    struct wallet_take t[4];
    size_t n = 99;

    /* in order, the last one partly */
    assert_int_equal(wallet_plan_take_at(g, 4, 300, T0, WALLET_TAKE_LIVE, t, &n), 300);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].grant, 0);
    assert_int_equal(t[0].cents, 100);
    assert_int_equal(t[1].grant, 2);
    assert_int_equal(t[1].cents, 200);

    /* exactly the first: nothing from later grants */
    n = 99;
    assert_int_equal(wallet_plan_take_at(g, 4, 100, T0, WALLET_TAKE_LIVE, t, &n), 100);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].grant, 0);
    assert_int_equal(t[0].cents, 100);

    /* one cent */
    n = 99;
    assert_int_equal(wallet_plan_take_at(g, 4, 1, T0, WALLET_TAKE_LIVE, t, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].grant, 0);
    assert_int_equal(t[0].cents, 1);

    /* all of it exactly */
    n = 99;
    assert_int_equal(wallet_plan_take_at(g, 4, 400, T0, WALLET_TAKE_LIVE, t, &n), 400);
    assert_int_equal(n, 3);
    assert_int_equal(t[2].grant, 3);
    assert_int_equal(t[2].cents, 50);

    /* more than the grants hold: what they cover */
    n = 99;
    assert_int_equal(wallet_plan_take_at(g, 4, 1000, T0, WALLET_TAKE_LIVE, t, &n), 400);
    assert_int_equal(n, 3);
    assert_int_equal(t[0].grant, 0);
    assert_int_equal(t[0].cents, 100);
    assert_int_equal(t[1].grant, 2);
    assert_int_equal(t[1].cents, 250);
    assert_int_equal(t[2].grant, 3);
    assert_int_equal(t[2].cents, 50);

    /* nothing wanted: nothing taken */
    n = 99;
    assert_int_equal(wallet_plan_take_at(g, 4, 0, T0, WALLET_TAKE_LIVE, t, &n), 0);
    assert_int_equal(n, 0);

    /* no grants, or none with anything left */
    n = 99;
    assert_int_equal(wallet_plan_take_at(g, 0, 500, T0, WALLET_TAKE_LIVE, t, &n), 0);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(wallet_plan_take_at(g + 1, 1, 500, T0, WALLET_TAKE_LIVE, t, &n), 0);
    assert_int_equal(n, 0);

    /* it changes nothing */
    assert_int_equal(g[0].remaining_cents, 100);
    assert_int_equal(g[2].remaining_cents, 250);

    /* what open holds reserve is nobody else's: a grant's held part is passed over */
    g[0].held_cents = 100; /* all of it */
    g[2].held_cents = 200;
    n = 99;
    assert_int_equal(wallet_plan_take_at(g, 4, 1000, T0, WALLET_TAKE_LIVE, t, &n), 100);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].grant, 2);
    assert_int_equal(t[0].cents, 50);
    assert_int_equal(t[1].grant, 3);
    assert_int_equal(t[1].cents, 50);
    assert_int_equal(wallet_grant_unheld(&g[0]), 0);
    assert_int_equal(wallet_grant_unheld(&g[2]), 50);
}

/* Grants past their expiry keep only what holds reserve: a debit passes over them; a capture
 * takes first what its hold released (capturing_cents), past the expiry too, and no more. */
static void plan_take_at_cases(void **state)
{
    (void)state;
    struct wallet_grant g[3];
    for (int i = 0; i < 3; i++)
        g[i] = grant(i + 1);
    g[0].has_expiration = true, g[0].expiration_at = T0 + 10 * SECOND, g[0].remaining_cents = 80;
    g[1].has_expiration = true, g[1].expiration_at = T0 + 20 * SECOND, g[1].remaining_cents = 30;
    g[2].remaining_cents = 50; /* never expires */
    struct wallet_take t[3];
    size_t n = 99;

    /* before any expiry, every unheld credit in consumption order */
    assert_int_equal(wallet_plan_take_at(g, 3, 100, T0, WALLET_TAKE_LIVE, t, &n), 100);
    assert_int_equal(n, 2);
    assert_int_equal(t[1].grant, 1);
    assert_int_equal(t[1].cents, 20);
    assert_int_equal(wallet_plan_take_at(g, 3, 100, T0, WALLET_TAKE_CAPTURING, t, &n), 0);
    assert_int_equal(n, 0);

    /* at the first one's expiry: a debit passes over it */
    assert_false(wallet_grant_past_expiry(&g[0], T0 + 10 * SECOND - 1));
    assert_true(wallet_grant_past_expiry(&g[0], T0 + 10 * SECOND));
    assert_int_equal(wallet_plan_take_at(g, 3, 100, T0 + 10 * SECOND, WALLET_TAKE_LIVE, t, &n), 80);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].grant, 1);
    assert_int_equal(t[0].cents, 30);
    assert_int_equal(t[1].grant, 2);
    assert_int_equal(t[1].cents, 50);

    /* a capture whose hold released 60 of the first and 5 of the third: those, past the
     * expiry or not, and no more; the second grant's credits are not its own */
    g[0].capturing_cents = 60;
    g[2].capturing_cents = 5;
    assert_int_equal(wallet_plan_take_at(g, 3, 100, T0 + 30 * SECOND, WALLET_TAKE_CAPTURING, t, &n),
                     65);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].grant, 0);
    assert_int_equal(t[0].cents, 60);
    assert_int_equal(t[1].grant, 2);
    assert_int_equal(t[1].cents, 5);
    /* what another hold still reserves is not released to it */
    g[2].held_cents = 48;
    assert_int_equal(wallet_plan_take_at(g, 3, 100, T0 + 30 * SECOND, WALLET_TAKE_CAPTURING, t, &n),
                     62);
    assert_int_equal(t[1].cents, 2);
    assert_int_equal(wallet_plan_take_at(g, 3, 90, T0 + 30 * SECOND, WALLET_TAKE_LIVE, t, &n), 2);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].grant, 2);
}

static void plan_take_property(void **state)
{
    (void)state;
    enum { N = 64 };
    struct wallet_grant g[N], copy[N];
    struct wallet_take t[N];
    reseed(3);
    for (uint64_t round = 0; round < 20000; round++) {
        size_t n = (size_t)below(N + 1);
        random_grants(g, n);
        qsort(g, n, sizeof g[0], qsort_compare);
        /* what a debit may take, reckoned here on its own: unheld credits of grants not past
         * their expiry */
        tally_time now = T0 + (int64_t)below(5) * SECOND;
        int64_t free_of[N], total = 0;
        for (size_t i = 0; i < n; i++) {
            bool past = g[i].has_expiration && g[i].expiration_at <= now;
            free_of[i] = past ? 0 : g[i].remaining_cents - g[i].held_cents;
            total += free_of[i];
        }
        int64_t want =
            below(4) == 0 ? total + (int64_t)below(1000) : (int64_t)below((uint64_t)total + 1);
        memcpy(copy, g, n * sizeof g[0]);
        size_t count = 999;
        int64_t covered = wallet_plan_take_at(g, n, want, now, WALLET_TAKE_LIVE, t, &count);
        int64_t expect = want < total ? want : total;
#define FAIL_IF(cond, ...)                                                                         \
    do {                                                                                           \
        if (cond)                                                                                  \
            fail_msg("plan (seed %" PRIu64 ", round %" PRIu64 ", want %" PRId64 "): " __VA_ARGS__, \
                     seed, round, want);                                                           \
    } while (0)
        FAIL_IF(covered != expect, "covered %" PRId64 ", want %" PRId64, covered, expect);
        FAIL_IF(count > n, "%zu takes from %zu grants", count, n);
        FAIL_IF(memcmp(copy, g, n * sizeof g[0]) != 0, "the grants changed");
        int64_t sum = 0;
        size_t next_grant = 0;
        for (size_t k = 0; k < count; k++) {
            size_t i = t[k].grant;
            FAIL_IF(i < next_grant || i >= n, "take %zu from grant %zu out of order", k, i);
            FAIL_IF(t[k].cents <= 0 || t[k].cents > free_of[i],
                    "take %zu of %" PRId64 " from a grant with %" PRId64 " free", k, t[k].cents,
                    free_of[i]);
            /* every grant skipped, and every take but the last, is emptied */
            for (size_t s = next_grant; s < i; s++)
                FAIL_IF(free_of[s] != 0, "grant %zu with %" PRId64 " free skipped", s, free_of[s]);
            FAIL_IF(k + 1 < count && t[k].cents != free_of[i],
                    "take %zu leaves %" PRId64 " in grant %zu", k, free_of[i] - t[k].cents, i);
            sum += t[k].cents;
            next_grant = i + 1;
        }
        FAIL_IF(sum != covered, "takes sum to %" PRId64 ", covered %" PRId64, sum, covered);
        /* when not all is covered, no grant after the last take holds anything */
        if (covered < want)
            for (size_t s = next_grant; s < n; s++)
                FAIL_IF(free_of[s] != 0, "grant %zu with %" PRId64 " free left untaken", s,
                        free_of[s]);
#undef FAIL_IF
    }
}

/* ---- Main ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    seed_from_env("wallet", UINT64_C(20261127));
    return 0;
}

/* Lago's threshold formulas (recurring_transaction_rules), in cents. */
static void threshold_rules(void **state)
{
    (void)state;
    int64_t paid, granted;
    /* fixed: a gap smaller than one top-up takes one */
    struct wallet_rule fixed = {.method = WALLET_RULE_FIXED,
                                .threshold_cents = 1000,
                                .paid_cents = 500,
                                .granted_cents = 0};
    assert_true(wallet_rule_due(&fixed, 1000, 0));
    assert_false(wallet_rule_due(&fixed, 1001, 0));
    assert_false(wallet_rule_due(&fixed, 900, 200)); /* what is pending counts */
    wallet_rule_top_up(&fixed, 800, 0, 0, 0, &paid, &granted);
    assert_int_equal(paid, 500); /* gap 200 < 500 */
    assert_int_equal(granted, 0);
    /* a gap of 1200 takes floor(1200/500)+1 = 3 top-ups; the granted part and pending narrow it */
    wallet_rule_top_up(&fixed, -200, 0, 0, 0, &paid, &granted);
    assert_int_equal(paid, 1500);
    fixed.granted_cents = 300;
    wallet_rule_top_up(&fixed, -200, 400, 0, 0, &paid, &granted);
    assert_int_equal(paid, 1000); /* gap 1200 - 300 - 400 = 500: floor(500/500)+1 = 2 top-ups */
    fixed.granted_cents = 0;
    wallet_rule_top_up(&fixed, -4800, 0, 0, 0, &paid, &granted);
    assert_int_equal(paid, 6000); /* gap 5800: 12 top-ups */
    wallet_rule_top_up(&fixed, -4800, 0, 0, 2500, &paid, &granted);
    assert_int_equal(paid, 2500); /* clamped to the wallet's maximum */
    fixed.ignore_paid_top_up_limits = true;
    wallet_rule_top_up(&fixed, -4800, 0, 0, 2500, &paid, &granted);
    assert_int_equal(paid, 6000);
    /* target: the gap to the target, paid (at least the minimum, no maximum) or granted */
    struct wallet_rule target = {
        .method = WALLET_RULE_TARGET, .threshold_cents = 1000, .target_cents = 5000};
    wallet_rule_top_up(&target, 700, 0, 0, 1000, &paid, &granted);
    assert_int_equal(paid, 4300);
    assert_int_equal(granted, 0);
    wallet_rule_top_up(&target, 4900, 0, 2000, 0, &paid, &granted);
    assert_int_equal(paid, 2000); /* the wallet's minimum paid top-up */
    target.grants_target_top_up = true;
    wallet_rule_top_up(&target, 700, 0, 2000, 0, &paid, &granted);
    assert_int_equal(paid, 0);
    assert_int_equal(granted, 4300);
    wallet_rule_top_up(&target, 6000, 0, 0, 0, &paid, &granted);
    assert_int_equal(paid + granted, 0); /* above the target: nothing */
}

static void reminder_days(void **state)
{
    (void)state;
    int32_t days[WALLET_REMINDER_DAYS_MAX];
    size_t n;
    assert_true(wallet_reminder_days_parse("30,7", days, &n));
    assert_int_equal(n, 2);
    assert_int_equal(days[0], 7); /* nearest first */
    assert_int_equal(days[1], 30);
    assert_true(wallet_reminder_days_parse("1,365,90,14", days, &n));
    assert_int_equal(n, 4);
    assert_int_equal(days[0], 1);
    assert_int_equal(days[3], 365);
    const char *bad[] = {"", "0", "366", "7,7", "1,2,3,4,5", "30;7", "7,", ",7", "-1", "1000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wallet_reminder_days_parse(bad[i], days, &n))
            fail_msg("accepted \"%s\"", bad[i]);
}

/* A grant's end: its months land on the rule's anniversary day, clamped to a shorter month. */
static void grant_duration_end(void **state)
{
    (void)state;
    struct {
        struct civil_date from;
        const char *duration;
        int32_t anchor_day;
        struct civil_date end;
    } cases[] = {
        {{2026, 1, 31}, "P1M", 31, {2026, 2, 28}},
        {{2026, 2, 28}, "P1M", 31, {2026, 3, 31}}, /* a clamped anniversary: to the next one */
        {{2026, 3, 31}, "P1M", 31, {2026, 4, 30}},
        {{2028, 1, 31}, "P1M", 31, {2028, 2, 29}},
        {{2026, 2, 28}, "P2M", 30, {2026, 4, 30}},
        {{2028, 2, 29}, "P1Y", 29, {2029, 2, 28}},
        {{2026, 1, 15}, "P1M", 15, {2026, 2, 15}},
        {{2026, 1, 20}, "P1M", 15, {2026, 2, 20}}, /* made after the anchor's day: its own */
        {{2026, 12, 31}, "P1M1W", 31, {2027, 2, 7}},
        {{2026, 3, 25}, "P7D", 25, {2026, 4, 1}},
        {{2026, 2, 28}, "P3D", 31, {2026, 3, 3}}, /* days alone keep the grant's day */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wallet_duration d;
        assert_true(wallet_duration_parse(cases[i].duration, &d));
        struct civil_date end = wallet_duration_end(cases[i].from, &d, cases[i].anchor_day);
        if (end.year != cases[i].end.year || end.month != cases[i].end.month ||
            end.day != cases[i].end.day)
            fail_msg("case %zu: %04d-%02d-%02d", i, end.year, end.month, end.day);
    }
}

/* A grant lasts something: a duration of nothing (P0D) would grant credits, and invoice paid
 * ones, that expire in the instant they arrive (found by a black-box audit). */
static void grant_duration_refusals(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "P0D", "P0M", "P0Y0M0W0D", "P00W", "PT1H", "P-1M", "P1.5M", "P", "", "P1", "P1D1M", "p1d",
        "P1H", "1M",
        /* past 100 years (an audit: P7974Y wedged the clock) */
        "P101Y", "P1201M", "P5314W3D", "P99Y13M", "P7974Y", "P37201D", "P5315W", "P10000Y",
        /* past any integer: refused, not wrapped */
        "P99999999999999999999D", "P4294967297D", "P18446744073709551617M"};
    struct wallet_duration d;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (wallet_duration_parse(refused[i], &d))
            fail_msg("%s was taken", refused[i]);
    assert_true(wallet_duration_parse("P0M1D", &d));
    assert_int_equal(d.days, 1);
    assert_true(wallet_duration_parse("P1Y0M", &d));
    assert_int_equal(d.years, 1);
    /* any number of digits, up to the total: the message says 37,200 days, and an audit found
     * P10000D (27 years) refused for its five digits */
    static const char *const longest[] = {
        "P100Y",   "P1200M",  "P9999D",  "P99Y12M", "P5314W2D",
        "P10000D", "P36500D", "P37200D", "P01200M", "P0000000000000000000000100Y"};
    for (size_t i = 0; i < sizeof longest / sizeof longest[0]; i++)
        if (!wallet_duration_parse(longest[i], &d))
            fail_msg("%s was refused", longest[i]);
    assert_true(wallet_duration_parse("P36500D", &d));
    assert_int_equal(d.days, 36500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(credits_to_cents_examples),
        cmocka_unit_test(cap_to_cents_examples),
        cmocka_unit_test(cents_to_credits_examples),
        cmocka_unit_test(round_trip_property),
        cmocka_unit_test(refused_conversion_writes_nothing),
        cmocka_unit_test(credits_fit),
        cmocka_unit_test(limit_names),
        cmocka_unit_test(fee_type_names),
        cmocka_unit_test(may_pay_charge),
        cmocka_unit_test(grant_order_cases),
        cmocka_unit_test(grant_order_property),
        cmocka_unit_test(plan_take_cases),
        cmocka_unit_test(plan_take_at_cases),
        cmocka_unit_test(plan_take_property),
        cmocka_unit_test(threshold_rules),
        cmocka_unit_test(reminder_days),
        cmocka_unit_test(grant_duration_end),
        cmocka_unit_test(grant_duration_refusals),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
