/*
 * core/country: ISO 3166-1 alpha-2 country codes (a customer's billing country, and later
 * the country that picks a tax rate). The table is generated into country_table.c from
 * Debian's iso-codes data by scripts/gen-country-table.sh.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_COUNTRY_H
#define TALLY_CORE_COUNTRY_H

#include <stdbool.h>
#include <stddef.h>

extern const char country_codes[][3]; /* upper case, sorted */
extern const size_t country_code_count;

/* True if `code` (exactly two letters, upper case) is an assigned ISO 3166-1 code. */
bool country_is_valid(const char *code, size_t len);

#endif
