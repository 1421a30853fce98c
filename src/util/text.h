/*
 * util/text: comparisons of NUL-terminated texts that may be absent (NULL), as a stored
 * field that was never set is. One definition, where the engine's edits compared a field
 * before and after a change in three copies of their own. Threads: any (pure).
 */
#ifndef TALLY_UTIL_TEXT_H
#define TALLY_UTIL_TEXT_H

#include <stdbool.h>

/* Whether a and b are the same text, or both absent. Borrows both for the call. */
bool text_same(const char *a, const char *b);

#endif
