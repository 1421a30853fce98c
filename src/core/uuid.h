/*
 * core/uuid: a UUID's 16 bytes written as its text, the one form every lago_id takes.
 *
 * Each maker of ids lays out its own bytes and sets its own version and variant bits (a random
 * version 4 in sys/entropy, a name-based version 8 in sys/digest, a time-ordered version 7 in
 * engine/command, an event's fingerprint as version 8 in api/events); this writes what they
 * made, so the text of every id clients store has one spelling: lower-case hex, dashes after
 * bytes 4, 6, 8 and 10.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_UUID_H
#define TALLY_CORE_UUID_H

#include <stdint.h>

#define UUID_LEN 16  /* bytes */
#define UUID_TEXT 37 /* "xxxxxxxx-xxxx-Vxxx-yxxx-xxxxxxxxxxxx" + NUL */

/* Writes b as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower-case, NUL-terminated. */
void uuid_format(const uint8_t b[UUID_LEN], char out[UUID_TEXT]);

#endif
