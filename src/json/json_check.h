/*
 * json/json_check: whether a body json-c accepted is JSON as RFC 8259 writes it.
 *
 * json-c, even in strict mode, takes number forms JSON does not have (NaN, Infinity, -Infinity,
 * 05.5, 1., 1.e5) and turns an escaped lone UTF-16 surrogate (\ud800) into U+FFFD. Tally keeps
 * a number's text as it was sent and writes it back: an event with {"gb": NaN} made every later
 * page of the organization's events unreadable JSON, for every client; and three different
 * lone surrogates in a transaction id became one id, refused as a duplicate of one never sent.
 * So json_in_parse checks each body json-c accepted once more, in one pass that allocates
 * nothing, and refuses it with a reason a person can act on.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_JSON_JSON_CHECK_H
#define TALLY_JSON_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether `text` (len bytes) is one JSON value, with whitespace around it, whose numbers are
 * written as JSON writes them and whose \u escapes are characters (a high surrogate followed by
 * a low one, never either alone). False with a short reason in *why (a static string). Nesting
 * deeper than JSON_CHECK_DEPTH_MAX is left to json-c's own limit (true).
 */
#define JSON_CHECK_DEPTH_MAX 64
bool json_check(const char *text, size_t len, const char **why);

#endif
