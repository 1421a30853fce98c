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
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SNAPSHOT_MAGIC "TALLYSNP"
#define SNAPSHOT_BYTE_ORDER UINT32_C(0x01020304)
/* What the key check fingerprints: a file saved under another database's key is refused. */
#define SNAPSHOT_KEY_CHECK "tally events snapshot"

/* The file, in order: this header, the set's set_header and its slots, then the checksum
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

/* A set on disk: this, then its table and (while it grows) its old table, each as a bitmap of
 * the occupied slots (bit i%64 of word i/64) followed by the entries in slot order. An empty
 * slot (a quarter to five eighths of a table) takes one bit instead of 32 bytes, and loading
 * places entries back where they lay, without hashing. */
struct set_header {
    uint64_t slot_count, old_slot_count, moved;
};

_Static_assert(sizeof(struct file_header) == 64, "no padding in the file header");
_Static_assert(sizeof(struct dedup_slot) == 32, "slots are saved as they lie in memory");

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

struct snapshot_job {
    char path[PATH_MAX], temporary[PATH_MAX], dir[PATH_MAX];
    struct file_header header;
    const struct dedup *set;
    uint64_t *bitmap; /* room for the largest table's */
    struct dedup_slot *chunk;
};

/* One table: its bitmap, then its entries from slot `from` on (below it, none). */
static bool put_table(int fd, const struct dedup_table *t, struct snapshot_job *job,
                      struct checksum *sum)
{
    size_t slots = t->mask + 1, words = slots / 64;
    memset(job->bitmap, 0, words * sizeof *job->bitmap);
    for (size_t i = 0; i < slots; i++)
        if (t->slots[i].hi != 0)
            job->bitmap[i / 64] |= UINT64_C(1) << (i % 64);
    if (!write_all(fd, job->bitmap, words * sizeof *job->bitmap, sum))
        return false;
    size_t n = 0;
    for (size_t i = 0; i < slots; i++) {
        if (t->slots[i].hi == 0)
            continue;
        job->chunk[n++] = t->slots[i];
        if (n == SNAPSHOT_CHUNK_SLOTS) {
            if (!write_all(fd, job->chunk, n * sizeof *job->chunk, sum))
                return false;
            n = 0;
        }
    }
    return write_all(fd, job->chunk, n * sizeof *job->chunk, sum);
}

static bool put_set(int fd, const struct dedup *d, struct snapshot_job *job, struct checksum *sum)
{
    struct set_header sh = {d->table.mask + 1, d->old.slots ? d->old.mask + 1 : 0, d->moved};
    return write_all(fd, &sh, sizeof sh, sum) && put_table(fd, &d->table, job, sum) &&
           (!d->old.slots || put_table(fd, &d->old, job, sum));
}

/* The directory's entry for the renamed file reaches the disk too. */
static bool sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

struct snapshot_job *snapshot_job_prepare(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                                          const struct snapshot_mark *mark,
                                          const struct dedup *identities,
                                          char err[SNAPSHOT_ERR_MAX])
{
    struct snapshot_job *job = calloc(1, sizeof *job);
    if (!job) {
        say(err, "snapshot: out of memory");
        return NULL;
    }
    if (!file_path(job->path, data_dir, SNAPSHOT_FILE) ||
        !file_path(job->temporary, data_dir, SNAPSHOT_FILE ".tmp") ||
        strlen(data_dir) >= sizeof job->dir) {
        say(err, "snapshot: data directory path too long");
        free(job);
        return NULL;
    }
    strcpy(job->dir, data_dir);
    job->header = header_of(key, mark);
    job->set = identities;
    job->bitmap = malloc((identities->table.mask + 1) / 64 * sizeof *job->bitmap);
    job->chunk = malloc(SNAPSHOT_CHUNK_SLOTS * sizeof *job->chunk);
    if (!job->bitmap || !job->chunk) {
        say(err, "snapshot: out of memory");
        snapshot_job_free(job);
        return NULL;
    }
    return job;
}

void snapshot_job_free(struct snapshot_job *job)
{
    if (!job)
        return;
    free(job->bitmap);
    free(job->chunk);
    free(job);
}

int snapshot_job_write(struct snapshot_job *job)
{
    int fd = open(job->temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    struct checksum sum = {0, 0};
    bool ok =
        write_all(fd, &job->header, sizeof job->header, &sum) && put_set(fd, job->set, job, &sum);
    uint64_t trailer[2] = {sum.a, sum.b};
    ok = ok && write_all(fd, trailer, sizeof trailer, NULL) && fsync(fd) == 0;
    int error = ok ? 0 : errno ? errno : EIO;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error == 0 && rename(job->temporary, job->path) != 0)
        error = errno;
    if (error != 0) {
        unlink(job->temporary);
        return error;
    }
    return sync_dir(job->dir) ? 0 : errno;
}

bool snapshot_save(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                   const struct snapshot_mark *mark, const struct dedup *identities,
                   char err[SNAPSHOT_ERR_MAX])
{
    struct snapshot_job *job = snapshot_job_prepare(data_dir, key, mark, identities, err);
    if (!job)
        return false;
    int error = snapshot_job_write(job);
    if (error != 0)
        say(err, "snapshot: cannot write %s: %s", job->path, strerror(error));
    snapshot_job_free(job);
    return error == 0;
}

pid_t snapshot_job_fork(struct snapshot_job *job)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Dies with the thread that forked it: a tallyd killed meanwhile must not leave a
         * child holding the data directory's lock (inherited) while a new one starts. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(1);
        _exit(snapshot_job_write(job) == 0 ? 0 : 1); /* no atexit handlers: the parent's */
    }
    return pid;
}

enum snapshot_child snapshot_child_poll(pid_t pid, bool wait)
{
    int status;
    pid_t r;
    do
        r = waitpid(pid, &status, wait ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return SNAPSHOT_CHILD_RUNNING;
    return r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? SNAPSHOT_CHILD_SAVED
                                                                     : SNAPSHOT_CHILD_FAILED;
}

static bool header_is_ours(const struct file_header *h, const uint8_t key[SIPHASH_KEY_LEN],
                           char why[SNAPSHOT_ERR_MAX])
{
    struct file_header expected = header_of(key, NULL);
    if (memcmp(h->magic, expected.magic, sizeof h->magic) != 0 ||
        h->byte_order != SNAPSHOT_BYTE_ORDER) {
        say(why, "not a snapshot made on this machine");
        return false;
    }
    if (h->format != SNAPSHOT_FORMAT) { /* an upgrade: the start reads the events instead */
        say(why, "saved by another version of Tally (format %u; this one reads format %d)",
            (unsigned)h->format, SNAPSHOT_FORMAT);
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

/* Reads one table saved by put_table into fresh memory (*out; dedup_slots_alloc in `memory`). */
static bool get_table(int fd, size_t slot_count, const struct dedup_memory *memory,
                      struct dedup_table *out, struct checksum *sum, char why[SNAPSHOT_ERR_MAX])
{
    size_t words = slot_count / 64;
    uint64_t *bitmap = malloc(words * sizeof *bitmap);
    struct dedup_slot *slots = dedup_slots_alloc(memory, slot_count);
    struct dedup_slot *chunk = malloc(SNAPSHOT_CHUNK_SLOTS * sizeof *chunk);
    bool ok = bitmap && slots && chunk;
    if (!ok)
        say(why, "no memory for a set of %zu slots", slot_count);
    if (ok && !read_all(fd, bitmap, words * sizeof *bitmap, sum)) {
        ok = false;
        say(why, "the file ends early");
    }
    size_t count = 0;
    for (size_t i = 0; ok && i < words; i++)
        count += (size_t)__builtin_popcountll(bitmap[i]);
    /* the entries, placed in the slots the bitmap marks, in order */
    size_t word = 0;
    uint64_t bits = ok ? bitmap[0] : 0;
    for (size_t placed = 0; ok && placed < count;) {
        size_t n = count - placed < SNAPSHOT_CHUNK_SLOTS ? count - placed : SNAPSHOT_CHUNK_SLOTS;
        if (!read_all(fd, chunk, n * sizeof *chunk, sum)) {
            ok = false;
            say(why, "the file ends early");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            while (bits == 0)
                bits = bitmap[++word];
            struct dedup_slot entry = chunk[i];
            if (entry.hi == 0)
                entry.hi = 2; /* an empty entry where the bitmap says full: dedup_adopt refuses */
            slots[word * 64 + (size_t)__builtin_ctzll(bits)] = entry;
            bits &= bits - 1;
        }
        placed += n;
    }
    free(bitmap);
    free(chunk);
    if (!ok) {
        dedup_slots_free(memory, slots, slot_count);
        return false;
    }
    *out = (struct dedup_table){slots, slot_count - 1};
    return true;
}

static bool get_set(int fd, struct dedup *d, const struct dedup_memory *memory,
                    struct checksum *sum, char why[SNAPSHOT_ERR_MAX])
{
    struct set_header sh;
    if (!read_all(fd, &sh, sizeof sh, sum)) {
        say(why, "the file ends early");
        return false;
    }
    if (!dedup_slot_count_ok(sh.slot_count) ||
        (sh.old_slot_count != 0 && !dedup_slot_count_ok(sh.old_slot_count))) {
        say(why, "a set's size is damaged (%llu slots)", (unsigned long long)sh.slot_count);
        return false;
    }
    struct dedup from = {.moved = sh.moved, .memory = memory};
    if (!get_table(fd, sh.slot_count, memory, &from.table, sum, why))
        return false;
    if (sh.old_slot_count && !get_table(fd, sh.old_slot_count, memory, &from.old, sum, why)) {
        dedup_slots_free(memory, from.table.slots, sh.slot_count);
        return false;
    }
    if (!dedup_adopt(d, &from)) {
        dedup_free(&from); /* its tables, in its memory */
        say(why, "a set's table is damaged (not one Tally writes)");
        return false;
    }
    return true;
}

bool snapshot_discard(const char *data_dir, char why[SNAPSHOT_ERR_MAX])
{
    char path[PATH_MAX];
    if (!file_path(path, data_dir, SNAPSHOT_FILE)) {
        say(why, "data directory path too long");
        return false;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        say(why, "cannot remove %s: %s", path, strerror(errno));
        return false;
    }
    if (!sync_dir(data_dir)) {
        say(why, "cannot sync %s after removing %s: %s", data_dir, SNAPSHOT_FILE, strerror(errno));
        return false;
    }
    return true;
}

enum snapshot_status snapshot_load(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                                   struct snapshot_mark *mark, struct dedup *identities,
                                   const struct dedup_memory *memory, char why[SNAPSHOT_ERR_MAX])
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
    struct dedup set = {0};
    bool loaded = false;
    bool ok = read_all(fd, &h, sizeof h, &sum);
    if (!ok)
        say(why, "the file ends early");
    ok = ok && header_is_ours(&h, key, why);
    ok = ok && (loaded = get_set(fd, &set, memory, &sum, why));
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
        if (loaded)
            dedup_free(&set);
        return SNAPSHOT_UNUSABLE;
    }
    *identities = set;
    *mark = (struct snapshot_mark){
        h.last_event_id, {h.last_identity[0], h.last_identity[1]}, h.usage_from};
    return SNAPSHOT_LOADED;
}
