/*
 * sys/digest: SHA-256 through OpenSSL, for API keys (stored only as their hash) and for
 * Idempotency-Key fingerprints (a replay must carry the same request to get the first answer).
 *
 * Threads: any.
 */
#ifndef TALLY_SYS_DIGEST_H
#define TALLY_SYS_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/uuid.h"

#define DIGEST_SHA256_LEN 32
#define DIGEST_SHA256_HEX 65 /* 64 hex digits + NUL */

/* Hashes the concatenation of `count` parts (parts[i], lens[i]). */
void digest_sha256(const void *const *parts, const size_t *lens, size_t count,
                   uint8_t out[DIGEST_SHA256_LEN]);
void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX]);
void digest_to_hex(const uint8_t *bytes, size_t len, char *out /* 2*len+1 bytes */);

/*
 * A name-based UUID: the first 128 bits of the parts' SHA-256 as an RFC 9562 version 8 UUID
 * (its example of a name-based custom UUID), lower-case. The same parts always give the same
 * id, so an object Tally does not store (a credit invoice's one fee, a charge filter) has an
 * id that survives restarts without a column. Callers start the parts with a label of what the
 * id names, so that two kinds of object never share one.
 */
void digest_uuid(const void *const *parts, const size_t *lens, size_t count, char out[UUID_TEXT]);

#endif
