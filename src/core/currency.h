/*
 * core/currency: the ISO 4217 currencies in circulation, with their minor-unit exponent
 * (the number of decimals of the minor unit: JPY 0, EUR 2, KWD 3).
 *
 * The table is data carried by the product, generated into currency_table.c by
 * scripts/gen-currency-table.sh from ISO 4217's list of current codes; it is never read from
 * a file at run time. Codes without a minor unit (XAU gold, XDR, the bond units...) are in the
 * table with CURRENCY_EXPONENT_NONE, so that a lookup can tell "not a currency" from "not
 * money": callers that bill in a currency reject them.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_CURRENCY_H
#define TALLY_CORE_CURRENCY_H

#include <stddef.h>
#include <stdint.h>

/* The exponent of a code that has no minor unit (ISO 4217 writes "N.A."). */
#define CURRENCY_EXPONENT_NONE (-1)

struct currency {
    char code[4];     /* alphabetic code, upper case, NUL-terminated: "EUR" */
    uint16_t numeric; /* numeric code: 978 */
    int8_t exponent;  /* minor-unit decimals 0..4, or CURRENCY_EXPONENT_NONE */
    const char *name; /* ISO's English name, UTF-8 */
};

/* Generated (currency_table.c): every current code, sorted by code for binary search. */
extern const struct currency currency_table[];
extern const size_t currency_table_len;

/*
 * The currency with alphabetic code `code` (exactly 3 bytes, upper case as ISO writes it;
 * "eur" is not found), or NULL. `code` need not be NUL-terminated. The result points into a
 * static table and lives forever. Check `exponent >= 0` before using it as money.
 */
const struct currency *currency_find(const char *code, size_t len);

#endif
