/*
 * api/key_cache: the API keys already verified, by their SHA-256, so that authenticating a
 * request costs a hash and a table lookup instead of a read transaction on a store connection
 * (before it, a fifth of an HTTP thread's time per hold went to that transaction).
 *
 * Only keys that matched an organization are kept: an unknown key is looked up in the store
 * every time, so a client sending random keys cannot fill the table. Nothing is ever removed:
 * an organization's key cannot change while tallyd runs (keys are made by `tally org create`,
 * which needs the data directory's lock that tallyd holds); whatever comes to rotate or revoke
 * keys in-process must empty this cache too. Bounded by KEY_CACHE_MAX; past it, it starts over.
 *
 * Threads: any; one mutex, held for the length of a lookup.
 */
#ifndef TALLY_API_KEY_CACHE_H
#define TALLY_API_KEY_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sys/digest.h"

#define KEY_CACHE_MAX 1024                  /* organizations remembered */
#define KEY_CACHE_SLOTS (2 * KEY_CACHE_MAX) /* open addressing, at most half full */

struct key_cache_entry {
    char key_hash[DIGEST_SHA256_HEX]; /* "" marks a free slot */
    int64_t org_id;
};

struct key_cache {
    pthread_mutex_t lock;
    size_t count;
    struct key_cache_entry slots[KEY_CACHE_SLOTS];
};

void key_cache_init(struct key_cache *c);
void key_cache_destroy(struct key_cache *c);
/* The organization whose key has this SHA-256 (hex), if remembered. */
bool key_cache_get(struct key_cache *c, const char key_hash[DIGEST_SHA256_HEX], int64_t *org_id);
/* Remembers a key the store matched to org_id. */
void key_cache_put(struct key_cache *c, const char key_hash[DIGEST_SHA256_HEX], int64_t org_id);

#endif
