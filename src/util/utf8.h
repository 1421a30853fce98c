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
#include <stdint.h>

/* Whether s[0..n) is UTF-8: no overlong form, no surrogate (U+D800..U+DFFF), nothing past
 * U+10FFFF, no sequence cut short. NUL is a character here; callers that cannot hold one
 * refuse it themselves. */
bool utf8_valid(const void *s, size_t n);

/* The character at s[0..n) into *c: its length in bytes, or 0 when n is 0 or s does not start
 * with a UTF-8 character (utf8_valid's rules). */
size_t utf8_next(const void *s, size_t n, uint32_t *c);

/*
 * Whether a character must not reach an operator's terminal or log line as it is: C0 controls,
 * DEL, C1 controls (U+0080..U+009F: CSI U+009B is an escape to terminals that honour C1, NEL
 * U+0085 a line break to Unicode-aware readers), the line and paragraph separators, and the bidi
 * controls (embeddings, overrides U+202A..U+202E, isolates U+2066..U+2069, marks) that reorder
 * what follows on the line. The one list: `tally org create` refuses names holding one, and
 * tallyd's log lines replace them (utf8_loggable).
 */
bool utf8_is_control(uint32_t c);

/*
 * A client's text (a name, an external id; NULL reads "?") for one log line, into out[size]
 * (size > 0): each character utf8_is_control names, and each byte that is not UTF-8, becomes
 * '?'; cut at a character's boundary when out is too small.
 */
void utf8_loggable(char *out, size_t size, const char *text);

#endif
