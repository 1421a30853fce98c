/* engine/snapshot: see snapshot.h. */
#include "engine/snapshot.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SNAPSHOT_MAGIC "TALLYSNP"
#define SNAPSHOT_BYTE_ORDER UINT32_C(0x01020304)
#define SNAPSHOT_SETS 2
/* What the key check fingerprints: a file saved under another database's key is refused. */
#define SNAPSHOT_KEY_CHECK "tally events snapshot"

/* The file, in order: this header, per set a set_header and its slots, then the checksum
 * of everything before it (two 64-bit words). Written in the machine's byte order. */
struct file_header {
    char magic[8];
    uint32_t format;
    uint32_t byte_order;
    uint64_t key_check[2];
    int64_t last_event_id;
    uint64_t last_identity[2];
    int64_t usage_from;
};

/* A set on disk: this, a bitmap of its table's occupied slots (bit i%64 of word i/64), then
 * the entries in slot order. An empty slot (a quarter to five eighths of a table) takes one
 * bit instead of 24 bytes, and loading is still no hashing, only placing. */
struct set_header {
    uint64_t slot_count, count;
};

_Static_assert(sizeof(struct file_header) == 64, "no padding in the file header");
_Static_assert(sizeof(struct dedup_slot) == 24, "slots are saved as they lie in memory");

/* A Fletcher-style sum over 64-bit words: catches a torn, cut or damaged file (the file is
 * not a defence against someone who can write the data directory). */
struct checksum {
    uint64_t a, b;
};

static void checksum_add(struct checksum *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        c->a += w;
        c->b += c->a;
    }
}

static bool file_path(char out[PATH_MAX], const char *data_dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", data_dir, name);
    return n > 0 && n < PATH_MAX;
}

static void say(char out[SNAPSHOT_ERR_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, SNAPSHOT_ERR_MAX, fmt, ap);
    va_end(ap);
}

static bool write_all(int fd, const void *data, size_t len, struct checksum *sum)
{
    if (sum)
        checksum_add(sum, data, len);
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Exactly len bytes, or false (an error, or the file ended first). */
static bool read_all(int fd, void *data, size_t len, struct checksum *sum)
{
    char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = read(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        left -= (size_t)n;
    }
    if (sum)
        checksum_add(sum, data, len);
    return true;
}

static struct file_header header_of(const uint8_t key[SIPHASH_KEY_LEN],
                                    const struct snapshot_mark *mark)
{
    struct file_header h = {.format = SNAPSHOT_FORMAT, .byte_order = SNAPSHOT_BYTE_ORDER};
    memcpy(h.magic, SNAPSHOT_MAGIC, sizeof h.magic);
    struct siphash128 check = siphash128(key, SNAPSHOT_KEY_CHECK, strlen(SNAPSHOT_KEY_CHECK));
    h.key_check[0] = check.lo;
    h.key_check[1] = check.hi;
    if (mark) {
        h.last_event_id = mark->last_event_id;
        h.last_identity[0] = mark->last_identity.lo;
        h.last_identity[1] = mark->last_identity.hi;
        h.usage_from = mark->usage_from;
    }
    return h;
}

#define SNAPSHOT_CHUNK_SLOTS 16384 /* entries gathered per write, and per read (384 KiB) */

static bool put_set(int fd, const struct dedup *d, struct checksum *sum)
{
    assert(!d->old.slots); /* settled by the caller */
    size_t slots = d->table.mask + 1, words = slots / 64;
    uint64_t *bitmap = calloc(words, sizeof *bitmap);
    struct dedup_slot *chunk = malloc(SNAPSHOT_CHUNK_SLOTS * sizeof *chunk);
    bool ok = bitmap && chunk;
    for (size_t i = 0; ok && i < slots; i++)
        if (d->table.slots[i].hi != 0)
            bitmap[i / 64] |= UINT64_C(1) << (i % 64);
    struct set_header sh = {slots, d->count};
    ok = ok && write_all(fd, &sh, sizeof sh, sum) &&
         write_all(fd, bitmap, words * sizeof *bitmap, sum);
    size_t n = 0;
    for (size_t i = 0; ok && i < slots; i++) {
        if (d->table.slots[i].hi == 0)
            continue;
        chunk[n++] = d->table.slots[i];
        if (n == SNAPSHOT_CHUNK_SLOTS) {
            ok = write_all(fd, chunk, n * sizeof *chunk, sum);
            n = 0;
        }
    }
    ok = ok && write_all(fd, chunk, n * sizeof *chunk, sum);
    free(bitmap);
    free(chunk);
    return ok;
}

/* The directory's entry for the renamed file reaches the disk too. */
static bool sync_dir(const char *data_dir)
{
    int fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

bool snapshot_save(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                   const struct snapshot_mark *mark, const struct dedup *accepted,
                   const struct dedup *by_transaction, char err[SNAPSHOT_ERR_MAX])
{
    char path[PATH_MAX], temporary[PATH_MAX];
    if (!file_path(path, data_dir, SNAPSHOT_FILE) ||
        !file_path(temporary, data_dir, SNAPSHOT_FILE ".tmp")) {
        say(err, "snapshot: data directory path too long");
        return false;
    }
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        say(err, "snapshot: cannot create %s: %s", temporary, strerror(errno));
        return false;
    }
    struct checksum sum = {0, 0};
    struct file_header h = header_of(key, mark);
    bool ok = write_all(fd, &h, sizeof h, &sum) && put_set(fd, accepted, &sum) &&
              put_set(fd, by_transaction, &sum);
    uint64_t trailer[2] = {sum.a, sum.b};
    ok = ok && write_all(fd, trailer, sizeof trailer, NULL) && fsync(fd) == 0;
    int saved_errno = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved_errno = errno;
    }
    if (ok && rename(temporary, path) != 0) {
        ok = false;
        saved_errno = errno;
    }
    if (!ok) {
        say(err, "snapshot: cannot write %s: %s", temporary, strerror(saved_errno));
        unlink(temporary);
        return false;
    }
    if (!sync_dir(data_dir)) {
        say(err, "snapshot: cannot sync %s: %s", data_dir, strerror(errno));
        return false;
    }
    return true;
}

static bool header_is_ours(const struct file_header *h, const uint8_t key[SIPHASH_KEY_LEN],
                           char why[SNAPSHOT_ERR_MAX])
{
    struct file_header expected = header_of(key, NULL);
    if (memcmp(h->magic, expected.magic, sizeof h->magic) != 0 ||
        h->byte_order != SNAPSHOT_BYTE_ORDER || h->format != SNAPSHOT_FORMAT) {
        say(why, "not a snapshot of format %d on this machine", SNAPSHOT_FORMAT);
        return false;
    }
    if (memcmp(h->key_check, expected.key_check, sizeof h->key_check) != 0) {
        say(why, "saved for another database (its fingerprint key differs)");
        return false;
    }
    if (h->last_event_id < 0 || h->usage_from < 1) {
        say(why, "a mark out of range");
        return false;
    }
    return true;
}

/* Puts `count` entries, in order, into the slots `bitmap` marks, from *word on. */
static void scatter(struct dedup_slot *slots, const uint64_t *bitmap, size_t *word, uint64_t *bits,
                    const struct dedup_slot *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        while (*bits == 0)
            *bits = bitmap[++*word];
        slots[*word * 64 + (size_t)__builtin_ctzll(*bits)] = entries[i];
        *bits &= *bits - 1;
    }
}

static size_t bits_set(const uint64_t *bitmap, size_t words)
{
    size_t n = 0;
    for (size_t i = 0; i < words; i++)
        n += (size_t)__builtin_popcountll(bitmap[i]);
    return n;
}

static bool get_set(int fd, struct dedup *d, struct checksum *sum, char why[SNAPSHOT_ERR_MAX])
{
    struct set_header sh;
    if (!read_all(fd, &sh, sizeof sh, sum)) {
        say(why, "the file ends early");
        return false;
    }
    if (sh.slot_count < DEDUP_INITIAL_SLOTS || sh.slot_count > DEDUP_MAX_SLOTS ||
        (sh.slot_count & (sh.slot_count - 1)) != 0 || sh.count > sh.slot_count) {
        say(why, "a set's size is damaged (%llu slots)", (unsigned long long)sh.slot_count);
        return false;
    }
    size_t words = sh.slot_count / 64;
    uint64_t *bitmap = malloc(words * sizeof *bitmap);
    struct dedup_slot *slots = calloc(sh.slot_count, sizeof *slots);
    struct dedup_slot *chunk = malloc(SNAPSHOT_CHUNK_SLOTS * sizeof *chunk);
    bool ok = bitmap && slots && chunk;
    if (!ok)
        say(why, "no memory for a set of %llu slots", (unsigned long long)sh.slot_count);
    if (ok && !read_all(fd, bitmap, words * sizeof *bitmap, sum)) {
        ok = false;
        say(why, "the file ends early");
    }
    if (ok && bits_set(bitmap, words) != sh.count) {
        ok = false;
        say(why, "a set's table is damaged (its bitmap and count disagree)");
    }
    size_t word = 0;
    uint64_t bits = ok && words ? bitmap[0] : 0;
    for (size_t placed = 0; ok && placed < sh.count;) {
        size_t n = sh.count - placed < SNAPSHOT_CHUNK_SLOTS ? sh.count - placed
                                                          : SNAPSHOT_CHUNK_SLOTS;
        if (!read_all(fd, chunk, n * sizeof *chunk, sum)) {
            ok = false;
            say(why, "the file ends early");
            break;
        }
        scatter(slots, bitmap, &word, &bits, chunk, n);
        placed += n;
    }
    if (ok && !dedup_adopt(d, slots, sh.slot_count)) {
        ok = false;
        say(why, "a set's table is damaged (not one Tally writes)");
    } else if (ok && d->count != sh.count) {
        dedup_free(d); /* frees slots */
        slots = NULL;
        ok = false;
        say(why, "a set's table is damaged (an empty entry)");
    }
    free(bitmap);
    free(chunk);
    if (!ok)
        free(slots);
    return ok;
}

enum snapshot_status snapshot_load(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                                   struct snapshot_mark *mark, struct dedup *accepted,
                                   struct dedup *by_transaction, char why[SNAPSHOT_ERR_MAX])
{
    char path[PATH_MAX];
    if (!file_path(path, data_dir, SNAPSHOT_FILE)) {
        say(why, "data directory path too long");
        return SNAPSHOT_UNUSABLE;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return SNAPSHOT_ABSENT;
        say(why, "cannot open %s: %s", path, strerror(errno));
        return SNAPSHOT_UNUSABLE;
    }
    struct checksum sum = {0, 0};
    struct file_header h;
    struct dedup sets[SNAPSHOT_SETS];
    memset(sets, 0, sizeof sets);
    size_t loaded = 0;
    bool ok = read_all(fd, &h, sizeof h, &sum);
    if (!ok)
        say(why, "the file ends early");
    ok = ok && header_is_ours(&h, key, why);
    while (ok && loaded < SNAPSHOT_SETS && (ok = get_set(fd, &sets[loaded], &sum, why)))
        loaded++;
    uint64_t trailer[2];
    char extra;
    if (ok && (!read_all(fd, trailer, sizeof trailer, NULL) || read(fd, &extra, 1) != 0)) {
        ok = false;
        say(why, "the file's length is wrong");
    }
    if (ok && (trailer[0] != sum.a || trailer[1] != sum.b)) {
        ok = false;
        say(why, "its checksum does not match (a damaged file)");
    }
    close(fd);
    if (!ok) {
        for (size_t i = 0; i < loaded; i++)
            dedup_free(&sets[i]);
        return SNAPSHOT_UNUSABLE;
    }
    *accepted = sets[0];
    *by_transaction = sets[1];
    *mark = (struct snapshot_mark){h.last_event_id, {h.last_identity[0], h.last_identity[1]},
                                   h.usage_from};
    return SNAPSHOT_LOADED;
}
