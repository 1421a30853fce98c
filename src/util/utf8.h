/*
 * util/utf8: whether bytes are UTF-8 as RFC 3629 defines it, the one check for every text a
 * client sends (request bodies in json/json_in, path segments in api/routes).
 *
 * Strict because what passes is stored, compared byte for byte and written back into JSON:
 * json-c's own check let overlong forms (C0 AF), UTF-16 surrogates written as UTF-8
 * (ED A0 80) and lead bytes past U+10FFFF (F4 90.., F5..FF) through, and the path's stricter
 * check then refused the very id the body had created, while every list holding it stopped
 * being UTF-8 for the clients that read it.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_UTIL_UTF8_H
#define TALLY_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..n) is UTF-8: no overlong form, no surrogate (U+D800..U+DFFF), nothing past
 * U+10FFFF, no sequence cut short. NUL is a character here; callers that cannot hold one
 * refuse it themselves. */
bool utf8_valid(const void *s, size_t n);

#endif
