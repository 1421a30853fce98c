/*
 * engine/snapshot: the file of event identities. What is saved loads back as the same set
 * (caught mid-growth too, through a forked child as through the owner), and a file that is not
 * exactly what was saved (cut anywhere, any byte changed, saved under another key) is refused,
 * never loaded wrong. A save that cannot be written says where, and leaves the previous file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/snapshot.h"
#include "sys/bigmem.h"

static const uint8_t key[SIPHASH_KEY_LEN] = {7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* How the file begins (engine/snapshot.c, struct file_header): its magic, then its format. */
struct file_header_start {
    char magic[8];
    uint32_t format;
};

static struct siphash128 fp_of(uint64_t id, const char *space)
{
    char text[48];
    int n = snprintf(text, sizeof text, "%s/%llu", space, (unsigned long long)id);
    return dedup_fingerprint(key, text, (size_t)n);
}

/* A set as the writer keeps it, stopped in the middle of a growth: entry i is transaction
 * i / 2 of subscription tag i % 2, with value i. */
static void fill(struct dedup *identities, uint64_t *count)
{
    assert_true(dedup_init(identities, 0));
    uint64_t id = 0;
    while (
        !(identities->old.slots && identities->table.mask + 1 >= 4096 && identities->moved > 8)) {
        assert_int_equal(dedup_insert(identities, fp_of(id / 2, "tx"), id % 2, id), DEDUP_INSERTED);
        id++;
    }
    *count = id;
}

static void same_set(const struct dedup *identities, uint64_t count)
{
    assert_int_equal(identities->count, count);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t v;
        assert_true(dedup_find(identities, fp_of(i / 2, "tx"), i % 2, &v));
        assert_int_equal(v, i);
        assert_true(dedup_find_greatest(identities, fp_of(i / 2, "tx"), &v));
        assert_int_equal(v, i % 2 || i + 1 == count ? i : i + 1);
    }
    assert_false(dedup_find(identities, fp_of(count / 2 + 1, "tx"), 0, NULL));
}

static char *make_dir(void)
{
    static char dir[64];
    strcpy(dir, "/tmp/tally-snapshot-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc(*len);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, *len, f), *len);
    fclose(f);
    return bytes;
}

static void write_file(const char *path, const unsigned char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

/* Each test's data directory and the set (filled as fill() leaves it). */
struct fixture {
    char *dir;
    struct dedup identities;
    uint64_t count;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = make_dir();
    fill(&f->identities, &f->count);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dedup_free(&f->identities);
    remove_dir(f->dir);
    free(f);
    return 0;
}

static enum snapshot_status load(const char *dir, const uint8_t *with_key,
                                 struct snapshot_mark *mark, char why[SNAPSHOT_ERR_MAX])
{
    struct dedup a;
    enum snapshot_status s = snapshot_load(dir, with_key, mark, &a, NULL, why);
    if (s == SNAPSHOT_LOADED)
        dedup_free(&a);
    return s;
}

static void saves_and_loads_the_same_set(void **state)
{
    struct fixture *f = *state;
    const char *dir = f->dir;
    struct dedup *identities = &f->identities, a;
    uint64_t count = f->count;
    struct snapshot_mark mark = {(int64_t)count, {11, 13}, 42}, back;
    char why[SNAPSHOT_ERR_MAX] = "";
    same_set(identities, count);
    assert_int_equal(snapshot_load(dir, key, &back, &a, NULL, why), SNAPSHOT_ABSENT);
    assert_true(snapshot_save(dir, key, &mark, identities, why));
    assert_int_equal(snapshot_load(dir, key, &back, &a, NULL, why), SNAPSHOT_LOADED);
    assert_memory_equal(&back, &mark, sizeof mark);
    assert_non_null(a.old.slots); /* the growth, as it lay */
    assert_int_equal(a.moved, identities->moved);
    same_set(&a, count);
    dedup_free(&a);

    /* through a forked child, as the writer saves while running */
    mark.usage_from = 7;
    struct snapshot_job *job = snapshot_job_prepare(dir, key, &mark, identities, why);
    assert_non_null(job);
    pid_t pid = snapshot_job_fork(job);
    snapshot_job_free(job);
    assert_true(pid > 0);
    assert_int_equal(snapshot_child_poll(pid, true), SNAPSHOT_CHILD_SAVED);
    assert_int_equal(snapshot_load(dir, key, &back, &a, NULL, why), SNAPSHOT_LOADED);
    assert_int_equal(back.usage_from, 7);
    same_set(&a, count);
    dedup_free(&a);

    /* into the memory the writer gives its set (sys/bigmem): the same set, which grows on */
    const struct dedup_memory mapped = bigmem_dedup_memory(NULL);
    assert_int_equal(snapshot_load(dir, key, &back, &a, &mapped, why), SNAPSHOT_LOADED);
    assert_ptr_equal(a.memory, &mapped);
    same_set(&a, count);
    for (uint64_t i = 0; i < 4 * count; i++)
        assert_int_equal(dedup_insert(&a, fp_of(i, "more"), 0, i), DEDUP_INSERTED);
    assert_int_equal(a.count, 5 * count);
    for (uint64_t i = 0; i < count; i++)
        assert_true(dedup_find(&a, fp_of(i / 2, "tx"), i % 2, NULL));
    dedup_free(&a);
}

/* Cut at any length, or with any one byte changed, the file never loads. */
static void a_damaged_file_never_loads(void **state)
{
    struct fixture *f = *state;
    const char *dir = f->dir;
    struct dedup *identities = &f->identities;
    uint64_t count = f->count;
    struct snapshot_mark mark = {(int64_t)count, {1, 3}, 1}, back;
    char why[SNAPSHOT_ERR_MAX], path[128];
    assert_true(snapshot_save(dir, key, &mark, identities, why));
    snprintf(path, sizeof path, "%s/%s", dir, SNAPSHOT_FILE);
    size_t len;
    unsigned char *bytes = read_file(path, &len);
    uint64_t rng = 99;
    for (int round = 0; round < 300; round++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        size_t at = (size_t)(rng >> 33) % len;
        if (round < 100) { /* cut */
            write_file(path, bytes, round < 64 ? (size_t)round : at);
        } else { /* one byte changed (in the header, often) */
            if (round < 150)
                at %= 128;
            bytes[at] ^= (unsigned char)(1 + (rng >> 20) % 255);
            write_file(path, bytes, len);
            bytes[at] ^= (unsigned char)(1 + (rng >> 20) % 255);
        }
        assert_int_equal(load(dir, key, &back, why), SNAPSHOT_UNUSABLE);
        assert_true(why[0] != '\0');
    }
    /* a file of the format before (two sets of 24-byte slots): refused as another version's */
    uint32_t format = 1;
    memcpy(bytes + offsetof(struct file_header_start, format), &format, sizeof format);
    write_file(path, bytes, len);
    assert_int_equal(load(dir, key, &back, why), SNAPSHOT_UNUSABLE);
    assert_non_null(strstr(why, "another version of Tally (format 1; this one reads format 2)"));
    format = SNAPSHOT_FORMAT;
    memcpy(bytes + offsetof(struct file_header_start, format), &format, sizeof format);
    write_file(path, bytes, len);
    assert_int_equal(load(dir, key, &back, why), SNAPSHOT_LOADED);
    uint8_t other[SIPHASH_KEY_LEN] = {0};
    assert_int_equal(load(dir, other, &back, why), SNAPSHOT_UNUSABLE);
    assert_non_null(strstr(why, "another database"));
    free(bytes);
}

static void a_save_that_cannot_be_written_says_where_and_keeps_the_old_file(void **state)
{
    struct fixture *f = *state;
    const char *dir = f->dir;
    struct dedup *identities = &f->identities;
    uint64_t count = f->count;
    struct snapshot_mark mark = {(int64_t)count, {1, 3}, 1}, back;
    char why[SNAPSHOT_ERR_MAX];
    assert_false(snapshot_save("/nonexistent/tally", key, &mark, identities, why));
    assert_non_null(strstr(why, "/nonexistent/tally/" SNAPSHOT_FILE));
    assert_true(snapshot_save(dir, key, &mark, identities, why));
    /* the directory read-only (root ignores permissions: the temporary name taken instead) */
    char blocker[128];
    snprintf(blocker, sizeof blocker, "%s/%s.tmp", dir, SNAPSHOT_FILE);
    assert_int_equal(mkdir(blocker, 0700), 0);
    mark.last_event_id = 1;
    assert_false(snapshot_save(dir, key, &mark, identities, why));
    assert_non_null(strstr(why, "cannot"));
    assert_int_equal(load(dir, key, &back, why), SNAPSHOT_LOADED);
    assert_int_equal(back.last_event_id, (int64_t)count); /* the earlier one */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(saves_and_loads_the_same_set, setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_file_never_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_save_that_cannot_be_written_says_where_and_keeps_the_old_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
