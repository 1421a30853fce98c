/*
 * core/event: the timestamp reader against Ruby's BigDecimal, which Lago reads event
 * timestamps with. Each expected value below is Ruby 3.1's `(BigDecimal(text) * 1000000).floor`
 * (refused: BigDecimal raised, the value is NaN or Infinity, or it is outside 0001-01-01 to
 * 9998-12-31T09:59:59.999999Z).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"

struct reading {
    const char *text;
    bool read;
    int64_t micros;
};

static const struct reading readings[] = {
    {"1769904000", true, INT64_C(1769904000000000)},
    {"+1769904000", true, INT64_C(1769904000000000)},
    {"-1", true, INT64_C(-1000000)},
    {"-0", true, INT64_C(0)},
    {"0", true, INT64_C(0)},
    {"-0.0000001", true, INT64_C(-1)},
    {"-0.000001", true, INT64_C(-1)},
    {"1769904000.9999999", true, INT64_C(1769904000999999)},
    {".00000000000000000000000012e34", true, INT64_C(1200000000000000)},
    {"0.0000000000000000000000001769904000e34", true, INT64_C(1769904000000000)},
    {"0.0000000000000017699040009999999999999999E24", true, INT64_C(1769904000999999)},
    {"0.0000000000225878895399999999999999e20", true, INT64_C(2258788953999999)},
    {"1769904000123456789012345678901234567890e-30", true, INT64_C(1769904000123456)},
    {"176990400000000.0000000000000000000000001e-5", true, INT64_C(1769904000000000)},
    {"17699040000000000000000000000000000000000000000000000000000000000e-55", true,
     INT64_C(1769904000000000)},
    {"1769904000e-00000000000000000000000000000000000000000000000000000000000000000000000000000000",
     true, INT64_C(1769904000000000)},
    {"1e-400", true, INT64_C(0)},
    {"-1e-400", true, INT64_C(-1)},
    {"1e400", false, 0},
    {"1_769_904_000", true, INT64_C(1769904000000000)},
    {"1769904000_", true, INT64_C(1769904000000000)},
    {".1769904000e10", true, INT64_C(1769904000000000)},
    {"1.769904d9", true, INT64_C(1769904000000000)},
    {"0_1769904000", true, INT64_C(1769904000000000)},
    {"1769904000.2_5", true, INT64_C(1769904000250000)},
    {"1769904000.", false, 0},
    {"1769904000__0", false, 0},
    {"1769904000_.5", false, 0},
    {"1769904000._5", false, 0},
    {"1769904000.5_", false, 0},
    {"1769904000e_0", false, 0},
    {"1769904000e0_", false, 0},
    {"+-1769904000", false, 0},
    {"1769904000d", false, 0},
    {"_1769904000", false, 0},
    {"+_1769904000", false, 0},
    {".", false, 0},
    {"+", false, 0},
    {"-.e5", false, 0},
    {"", false, 0},
    {"1e1_0", true, INT64_C(10000000000000000)},
    {"-62135596800", true, INT64_C(-62135596800000000)},
    {"-62135596800.000001", false, 0},
    {"253370714399.999999", true, INT64_C(253370714399999999)},
    {"253370714400", false, 0},
    {"253370764799", false, 0},
    {"17699040000000000000e-10", true, INT64_C(1769904000000000)},
    {"100000000000000000", false, 0},
    {"1000000000000", false, 0},
    {"1.5e-7", true, INT64_C(0)},
    {"-1.5e-7", true, INT64_C(-1)},
    {"0e99999999999999999999", true, INT64_C(0)},
    {"1e-99999999999999999999", true, INT64_C(0)},
    {"999999999999999999999999999999e-21", true, INT64_C(999999999999999)},
    {"0.000000000000000000000000000000000000001e39", true, INT64_C(1000000)},
};

static void reads_as_ruby_bigdecimal(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof readings / sizeof readings[0]; i++) {
        const struct reading *r = &readings[i];
        tally_time t = 42;
        bool read = event_parse_timestamp(r->text, strlen(r->text), &t);
        if (read != r->read || (read && t != r->micros))
            fail_msg("\"%s\": read %d, %lld", r->text, read, (long long)t);
        if (!read)
            assert_int_equal(t, 42); /* untouched */
    }
}

/*
 * A fraction of any length before an exponent that moves it: each digit counts where it lands
 * (a reader that cut the fraction to 24 digits before the exponent applied stored such a
 * timestamp at another instant: a fuzz against Ruby found it).
 */
static void long_mantissas_move_whole(void **state)
{
    (void)state;
    enum { ZEROS = 5000 };
    char *text = malloc(ZEROS + 64);
    assert_non_null(text);
    /* 0.000...0001769904000123456e(ZEROS + 10): 1769904000.123456 s */
    size_t n = (size_t)sprintf(text, "0.");
    memset(text + n, '0', ZEROS);
    n += ZEROS;
    n += (size_t)sprintf(text + n, "1769904000123456e%d", ZEROS + 10);
    tally_time t;
    assert_true(event_parse_timestamp(text, n, &t));
    assert_int_equal(t, INT64_C(1769904000123456));
    /* the same digits as a long integer brought back by a negative exponent */
    n = (size_t)sprintf(text, "1769904000123456");
    memset(text + n, '0', ZEROS);
    n += ZEROS;
    n += (size_t)sprintf(text + n, "e-%d", ZEROS + 6);
    assert_true(event_parse_timestamp(text, n, &t));
    assert_int_equal(t, INT64_C(1769904000123456));
    /* and a last digit far past the microsecond still floors a negative instant */
    n = (size_t)sprintf(text, "-1.");
    memset(text + n, '0', ZEROS);
    n += ZEROS;
    text[n++] = '1';
    assert_true(event_parse_timestamp(text, n, &t));
    assert_int_equal(t, INT64_C(-1000001));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_as_ruby_bigdecimal),
        cmocka_unit_test(long_mantissas_move_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
