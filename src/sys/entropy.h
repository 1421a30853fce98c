/*
 * sys/entropy: random bytes from the kernel, and the identifiers made from them.
 *
 * Identifiers (lago_id UUIDs, API keys) are drawn in the API threads and carried inside
 * commands, so the engine itself stays deterministic: replaying a command log gives the
 * same ids. (File name chosen so it never shadows the system's <sys/random.h>.)
 *
 * Threads: any.
 */
#ifndef TALLY_SYS_ENTROPY_H
#define TALLY_SYS_ENTROPY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/uuid.h"

/* Fills buf with len bytes from getrandom(2). False only if the kernel refuses. */
bool entropy_fill(void *buf, size_t len);
/*
 * The same, for a draw that timing alone decides whether it is made: a command a cache may
 * answer instead of the writer (a usage read), or one only pending wallet debits call for (a
 * read's write-out). Test builds with TALLY_DETERMINISTIC_SEED draw these from a stream of
 * their own, so that a replay that made more or fewer of them than the first run still gives
 * every other command the same bytes (a determinism audit found one slow step move every id
 * made after it). Release builds: the kernel's, as entropy_fill.
 */
bool entropy_fill_aside(void *buf, size_t len);
/* Writes a random (version 4) UUID in lower-case text. */
bool entropy_uuid(char out[UUID_TEXT]);

#endif
