/*
 * Tests of core/currency: the generated ISO 4217 table, currency_find, rounding to a
 * currency's minor unit with core/money, and that the committed currency_table.c is exactly
 * what scripts/gen-currency-table.sh makes from the reference CSV (so nobody edits it by hand
 * and nobody forgets to regenerate it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/currency.h"
#include "core/money.h"

#define CSV_NAME "iso4217-current-minor-units.csv"

static const struct currency *find(const char *code)
{
    return currency_find(code, strlen(code));
}

static void test_known_codes(void **state)
{
    (void)state;
    static const struct {
        const char *code;
        uint16_t numeric;
        int8_t exponent;
    } cases[] = {
        {"EUR", 978, 2},
        {"USD", 840, 2},
        {"JPY", 392, 0},
        {"KWD", 414, 3},
        {"BHD", 48, 3},
        {"CLF", 990, 4},
        {"UYW", 927, 4},
        {"ISK", 352, 0},
        {"ALL", 8, 2},
        {"XAU", 959, CURRENCY_EXPONENT_NONE},
        {"XXX", 999, CURRENCY_EXPONENT_NONE},
        /* withdrawn by ISO, still in Lago's Currency enum (an audit found them refused) */
        {"BGN", 975, 2},
        {"HRK", 191, 2},
        {"ANG", 532, 2},
        {"XCG", 532, 2},
        {"MRO", 478, 2},
        {"MRU", 929, 2},
        {"SLL", 694, 2},
        {"STD", 678, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct currency *c = find(cases[i].code);
        if (c == NULL)
            fail_msg("%s not found", cases[i].code);
        assert_string_equal(c->code, cases[i].code);
        assert_int_equal(c->numeric, cases[i].numeric);
        assert_int_equal(c->exponent, cases[i].exponent);
    }
    assert_string_equal(find("EUR")->name, "Euro");
    assert_string_equal(find("TOP")->name, "Pa\xe2\x80\x99"
                                           "anga");
}

static void test_unknown_codes(void **state)
{
    (void)state;
    static const char *const misses[] = {"eur", "Eur", "EU",  "EURO", "",    "ZZZ", "AAA",
                                         "E R", "XEU", "DEM", "FRF",  "BTC", "123"};
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        if (find(misses[i]) != NULL)
            fail_msg("\"%s\" should not be found", misses[i]);
    }
    /* Exactly len bytes are read. */
    assert_non_null(currency_find("EURX", 3));
    assert_null(currency_find("EURX", 4));
    assert_null(currency_find("EU\0", 3));
    assert_null(currency_find(NULL, 0));
}

static void test_table_shape(void **state)
{
    (void)state;
    assert_true(currency_table_len > 150);
    for (size_t i = 0; i < currency_table_len; i++) {
        const struct currency *c = &currency_table[i];
        for (int k = 0; k < 3; k++)
            assert_true(c->code[k] >= 'A' && c->code[k] <= 'Z');
        assert_int_equal(c->code[3], '\0');
        assert_true(c->numeric > 0 && c->numeric < 1000);
        assert_true(c->exponent == CURRENCY_EXPONENT_NONE ||
                    (c->exponent >= 0 && c->exponent <= 4));
        assert_true(c->name != NULL && c->name[0] != '\0');
        if (i > 0 && strcmp(currency_table[i - 1].code, c->code) >= 0)
            fail_msg("table not strictly sorted at %s", c->code);
        /* Every entry is found, at its own address, by its code. */
        assert_ptr_equal(currency_find(c->code, 3), c);
    }
}

/* Lago's fee and top-up rounding, through core/money, per currency exponent. */
static void test_minor_unit_rounding(void **state)
{
    (void)state;
    money_t v, floored;
    int64_t units = 0;
    const struct currency *eur = find("EUR"), *jpy = find("JPY"), *kwd = find("KWD"),
                          *xau = find("XAU");

    /* spec/scenarios/wallets/topup_with_rounding_spec.rb: 1797 cents. */
    const char *paid = "17.9699999999999988631316";
    assert_int_equal(money_parse(paid, strlen(paid), &v), MONEY_OK);
    assert_int_equal(money_round(v, 5, MONEY_ROUND_FLOOR, &floored), MONEY_OK);
    char text[MONEY_TEXT_MAX];
    money_format(floored, text, sizeof text);
    assert_string_equal(text, "17.96999");
    assert_int_equal(money_to_minor_units(floored, eur->exponent, MONEY_ROUND_HALF_UP, &units),
                     MONEY_OK);
    assert_int_equal(units, 1797);

    assert_int_equal(money_parse("1234.5", 6, &v), MONEY_OK);
    assert_int_equal(money_to_minor_units(v, jpy->exponent, MONEY_ROUND_HALF_UP, &units), MONEY_OK);
    assert_int_equal(units, 1235);
    assert_int_equal(money_to_minor_units(v, jpy->exponent, MONEY_ROUND_HALF_EVEN, &units),
                     MONEY_OK);
    assert_int_equal(units, 1234);
    assert_int_equal(money_to_minor_units(v, eur->exponent, MONEY_ROUND_EXACT, &units), MONEY_OK);
    assert_int_equal(units, 123450);
    assert_int_equal(money_to_minor_units(v, kwd->exponent, MONEY_ROUND_EXACT, &units), MONEY_OK);
    assert_int_equal(units, 1234500);

    assert_int_equal(money_parse("1.2345", 6, &v), MONEY_OK);
    assert_int_equal(money_to_minor_units(v, kwd->exponent, MONEY_ROUND_HALF_UP, &units), MONEY_OK);
    assert_int_equal(units, 1235);
    assert_int_equal(money_to_minor_units(v, kwd->exponent, MONEY_ROUND_FLOOR, &units), MONEY_OK);
    assert_int_equal(units, 1234);
    assert_int_equal(money_to_minor_units(v, eur->exponent, MONEY_ROUND_HALF_UP, &units), MONEY_OK);
    assert_int_equal(units, 123);

    /* A code without minor unit is not money: money refuses its exponent. */
    assert_int_equal(money_to_minor_units(v, xau->exponent, MONEY_ROUND_HALF_UP, &units),
                     MONEY_ERR_INVALID);
    assert_int_equal(money_from_minor_units(1, xau->exponent, &v), MONEY_ERR_INVALID);

    /* And back: 1797 cents is 17.97 EUR. */
    assert_int_equal(money_from_minor_units(1797, eur->exponent, &v), MONEY_OK);
    money_format(v, text, sizeof text);
    assert_string_equal(text, "17.97");
}

/* ---- The committed table is the script's output ---------------------------------------------- */

static bool readable(const char *path)
{
    return access(path, R_OK) == 0;
}

/* out = a + b, false if it does not fit. */
static bool join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s", a, b);
    return n > 0 && (size_t)n < cap;
}

/* The repository root: TALLY_SOURCE_DIR, else derived from this file's path. */
static bool source_root(char *out, size_t cap)
{
    const char *env = getenv("TALLY_SOURCE_DIR");
    if (env && *env)
        return join(out, cap, env, "");
    const char *suffix = "/tests/core/test_currency.c", *file = __FILE__;
    if (file[0] != '/') /* a relative __FILE__ is relative to the compiler's directory */
        return readable(file) && getcwd(out, cap) != NULL;
    size_t n = strlen(file), k = strlen(suffix);
    if (n <= k || strcmp(file + n - k, suffix) != 0 || n - k >= cap)
        return false;
    memcpy(out, file, n - k);
    out[n - k] = '\0';
    return true;
}

/* TALLY_SHARED_DATA, else ../shared/data from the working directory, else from the root. */
static bool find_csv(const char *root, char *out, size_t cap)
{
    const char *env = getenv("TALLY_SHARED_DATA");
    if (env && *env)
        return join(out, cap, env, "/" CSV_NAME) && readable(out);
    if (join(out, cap, "../shared/data/", CSV_NAME) && readable(out))
        return true;
    return root != NULL && join(out, cap, root, "/../shared/data/" CSV_NAME) && readable(out);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 20; /* the table is ~8 KB: one read, and a file this size is wrong */
    char *buf = malloc(cap);
    *len = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    return buf;
}

static void test_table_matches_generator(void **state)
{
    (void)state;
    char root[4096], csv[4096], script[4096], committed[4096], tmp[] = "/tmp/tally-currency-XXXXXX";
    bool have_root = source_root(root, sizeof root);
    if (!find_csv(have_root ? root : NULL, csv, sizeof csv)) {
        print_message("  reference CSV not found (set TALLY_SHARED_DATA): check skipped\n");
        skip();
    }
    if (!have_root)
        fail_msg("cannot locate the source tree: set TALLY_SOURCE_DIR");
    if (!join(script, sizeof script, root, "/scripts/gen-currency-table.sh") ||
        !join(committed, sizeof committed, root, "/src/core/currency_table.c"))
        fail_msg("source path too long");

    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/bash", "bash", script, csv, tmp, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        unlink(tmp);
        fail_msg("%s %s failed (status %d)", script, csv, status);
    }

    size_t na = 0, nb = 0;
    char *a = slurp(committed, &na), *b = slurp(tmp, &nb);
    unlink(tmp);
    assert_non_null(a);
    assert_non_null(b);
    bool same = na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    if (!same)
        fail_msg("src/core/currency_table.c differs from what scripts/gen-currency-table.sh makes "
                 "of %s: rerun the script and commit its output",
                 csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_codes),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_table_shape),
        cmocka_unit_test(test_minor_unit_rounding),
        cmocka_unit_test(test_table_matches_generator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
