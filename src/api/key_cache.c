/* api/key_cache: see key_cache.h. */
#include "api/key_cache.h"

#include <string.h>

/* The hash is hex of SHA-256, uniformly spread already: its first 16 digits pick the slot. */
static size_t home_slot(const char *key_hash)
{
    uint64_t h = 0;
    for (int i = 0; i < 16 && key_hash[i]; i++) {
        char d = key_hash[i];
        h = h << 4 | (uint64_t)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
    }
    return (size_t)(h % KEY_CACHE_SLOTS);
}

/* The slot holding key_hash, or the free slot where it would go. Under the lock. */
static struct key_cache_entry *find(struct key_cache *c, const char *key_hash)
{
    size_t i = home_slot(key_hash);
    while (c->slots[i].key_hash[0] && strcmp(c->slots[i].key_hash, key_hash) != 0)
        i = (i + 1) % KEY_CACHE_SLOTS; /* terminates: the table is never more than half full */
    return &c->slots[i];
}

void key_cache_init(struct key_cache *c)
{
    pthread_mutex_init(&c->lock, NULL);
    c->count = 0;
    memset(c->slots, 0, sizeof c->slots);
}

void key_cache_destroy(struct key_cache *c)
{
    pthread_mutex_destroy(&c->lock);
}

bool key_cache_get(struct key_cache *c, const char key_hash[DIGEST_SHA256_HEX], int64_t *org_id)
{
    if (!key_hash[0])
        return false;
    pthread_mutex_lock(&c->lock);
    const struct key_cache_entry *e = find(c, key_hash);
    bool found = e->key_hash[0] != '\0';
    if (found)
        *org_id = e->org_id;
    pthread_mutex_unlock(&c->lock);
    return found;
}

void key_cache_put(struct key_cache *c, const char key_hash[DIGEST_SHA256_HEX], int64_t org_id)
{
    if (!key_hash[0])
        return;
    pthread_mutex_lock(&c->lock);
    struct key_cache_entry *e = find(c, key_hash);
    if (!e->key_hash[0]) {
        if (c->count == KEY_CACHE_MAX) {
            memset(c->slots, 0, sizeof c->slots); /* starts over */
            c->count = 0;
            e = find(c, key_hash);
        }
        memcpy(e->key_hash, key_hash, DIGEST_SHA256_HEX);
        c->count++;
    }
    e->org_id = org_id;
    pthread_mutex_unlock(&c->lock);
}
