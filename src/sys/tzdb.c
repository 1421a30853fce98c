/*
 * sys/tzdb: see tzdb.h. The cache is a sorted array of (name, zone) searched by binary
 * search under a mutex; a miss reads and parses the file without the lock held, then
 * inserts unless another thread got there first (then its zone wins and ours is freed), so
 * a slow disk never blocks lookups of zones already loaded.
 */
#include "sys/tzdb.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tzdb_entry {
    char name[TZDB_NAME_MAX + 1];
    struct tz_zone *zone; /* owned by the database */
};

struct tzdb {
    char root[TZDB_ROOT_MAX + 1];
    pthread_mutex_t lock;       /* guards entries and count */
    struct tzdb_entry *entries; /* sorted by name (strcmp) */
    size_t count;
};

struct tzdb *tzdb_open(const char *root)
{
    if (root == NULL)
        root = TZDB_DEFAULT_ROOT;
    size_t rlen = strlen(root);
    if (rlen == 0 || rlen > TZDB_ROOT_MAX)
        return NULL;
    struct tzdb *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    db->entries = calloc(TZDB_MAX_ZONES, sizeof *db->entries);
    if (db->entries == NULL || pthread_mutex_init(&db->lock, NULL) != 0) {
        free(db->entries);
        free(db);
        return NULL;
    }
    memcpy(db->root, root, rlen + 1);
    return db;
}

void tzdb_close(struct tzdb *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->count; i++)
        tz_free(db->entries[i].zone);
    free(db->entries);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

bool tzdb_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > TZDB_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '+' || c == '-' || c == '/';
        if (!ok)
            return false;
        /* No empty component: no leading, trailing or doubled slash. Without '.', no
         * "." or ".." component can exist either. */
        if (c == '/' && (i == 0 || i + 1 == len || name[i + 1] == '/'))
            return false;
    }
    return true;
}

/* Whether the first len bytes of name are `word`, whole or as the first component. */
static bool names(const char *name, size_t len, const char *word, bool as_directory)
{
    size_t n = strlen(word);
    if (len < n || memcmp(name, word, n) != 0)
        return false;
    return len == n || (as_directory && name[n] == '/');
}

bool tzdb_name_is_zone(const char *name, size_t len)
{
    return tzdb_name_valid(name, len) && !names(name, len, "localtime", false) &&
           !names(name, len, "posixrules", false) && !names(name, len, "Factory", false) &&
           !names(name, len, "posix", true) && !names(name, len, "right", true);
}

/* Index of `name` in the cache, or where it would go. Caller holds the lock. */
static size_t find(const struct tzdb *db, const char *name, bool *found)
{
    size_t lo = 0, hi = db->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(db->entries[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Reads <root>/<name> whole into buf (at most TZ_MAX_INPUT_BYTES). */
static enum tzdb_status read_zone_file(const struct tzdb *db, const char *name, uint8_t *buf,
                                       size_t *len)
{
    char path[TZDB_ROOT_MAX + 1 + TZDB_NAME_MAX + 1];
    int n = snprintf(path, sizeof path, "%s/%s", db->root, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return TZDB_ERR_NAME; /* cannot happen: both parts are bounded */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? TZDB_ERR_NOTFOUND : TZDB_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return TZDB_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return TZDB_ERR_NOTFOUND; /* "America" is a directory, not a zone */
    }
    size_t got = 0;
    for (;;) {
        /* Ask for one byte more than the limit to notice an oversized file. */
        ssize_t r = read(fd, buf + got, TZ_MAX_INPUT_BYTES + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            return TZDB_ERR_IO;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > TZ_MAX_INPUT_BYTES) {
            close(fd);
            return TZDB_ERR_IO;
        }
    }
    close(fd);
    *len = got;
    return TZDB_OK;
}

enum tzdb_status tzdb_lookup(struct tzdb *db, const char *name, size_t len,
                             const struct tz_zone **out)
{
    if (out == NULL)
        return TZDB_ERR_ARG;
    *out = NULL;
    if (db == NULL || name == NULL)
        return TZDB_ERR_ARG;
    if (!tzdb_name_valid(name, len))
        return TZDB_ERR_NAME;
    char key[TZDB_NAME_MAX + 1];
    memcpy(key, name, len);
    key[len] = '\0';

    bool found;
    pthread_mutex_lock(&db->lock);
    size_t at = find(db, key, &found);
    if (found)
        *out = db->entries[at].zone;
    pthread_mutex_unlock(&db->lock);
    if (found)
        return TZDB_OK;

    uint8_t *buf = malloc(TZ_MAX_INPUT_BYTES + 1);
    if (buf == NULL)
        return TZDB_ERR_NOMEM;
    size_t flen = 0;
    enum tzdb_status st = read_zone_file(db, key, buf, &flen);
    struct tz_zone *zone = NULL;
    if (st == TZDB_OK) {
        enum tz_status ts = tz_parse(buf, flen, &zone);
        if (ts == TZ_ERR_NOMEM)
            st = TZDB_ERR_NOMEM;
        else if (ts != TZ_OK)
            st = TZDB_ERR_PARSE;
    }
    free(buf);
    if (st != TZDB_OK)
        return st;

    pthread_mutex_lock(&db->lock);
    at = find(db, key, &found);
    if (found) {
        *out = db->entries[at].zone; /* another thread loaded it meanwhile */
    } else if (db->count == TZDB_MAX_ZONES) {
        st = TZDB_ERR_FULL;
    } else {
        memmove(&db->entries[at + 1], &db->entries[at], (db->count - at) * sizeof *db->entries);
        memcpy(db->entries[at].name, key, len + 1);
        db->entries[at].zone = zone;
        db->count++;
        *out = zone;
        zone = NULL;
    }
    pthread_mutex_unlock(&db->lock);
    tz_free(zone);
    return st;
}

const struct tz_zone *tzdb_get(struct tzdb *db, const char *name, size_t len)
{
    const struct tz_zone *zone;
    return tzdb_lookup(db, name, len, &zone) == TZDB_OK ? zone : NULL;
}
