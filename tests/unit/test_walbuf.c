/*
 * store/walbuf: a commit reaches the log in one write, and nothing is lost or seen early for
 * it. Under the VFS sits a counting one (registered as SQLite's default before walbuf wraps
 * it), so the tests count the writes that reach the log file and check, with a second
 * connection on the plain default VFS, that every commit is readable the moment it returns:
 *   - a commit of many pages is one write; a transaction rewriting its own pages too;
 *   - a transaction larger than cache (pages spilled to the log and read back in it) and one
 *     larger than WALBUF_BYTES_MAX come back whole;
 *   - checkpoints, a truncated log and a reopened database keep every row;
 *   - a process killed after its commits returned left them all in the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/walbuf.h"

/* ---- a default VFS that counts the writes reaching each log ---------------------------------- */

static sqlite3_vfs *unix_vfs;
static sqlite3_vfs counting_vfs;
static sqlite3_io_methods counting_methods;
static const sqlite3_io_methods *unix_methods;
static int log_writes;

struct counted_file {
    sqlite3_file base;
    bool is_log;
    sqlite3_file *real;
};

static int counted_write(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset)
{
    struct counted_file *c = (struct counted_file *)f;
    if (c->is_log)
        log_writes++;
    return c->real->pMethods->xWrite(c->real, data, amount, offset);
}

static int counted_close(sqlite3_file *f)
{
    struct counted_file *c = (struct counted_file *)f;
    return c->real->pMethods->xClose(c->real);
}

/* Every other method: the same file's, reached through the unix file after the header. */
#define FORWARD(name, ret, params, args)                                                           \
    static ret counted_##name params                                                               \
    {                                                                                              \
        struct counted_file *c = (struct counted_file *)f;                                         \
        return c->real->pMethods->name args;                                                       \
    }
FORWARD(xRead, int, (sqlite3_file * f, void *d, int n, sqlite3_int64 o), (c->real, d, n, o))
FORWARD(xTruncate, int, (sqlite3_file * f, sqlite3_int64 s), (c->real, s))
FORWARD(xSync, int, (sqlite3_file * f, int fl), (c->real, fl))
FORWARD(xFileSize, int, (sqlite3_file * f, sqlite3_int64 *s), (c->real, s))
FORWARD(xLock, int, (sqlite3_file * f, int l), (c->real, l))
FORWARD(xUnlock, int, (sqlite3_file * f, int l), (c->real, l))
FORWARD(xCheckReservedLock, int, (sqlite3_file * f, int *o), (c->real, o))
FORWARD(xFileControl, int, (sqlite3_file * f, int op, void *a), (c->real, op, a))
FORWARD(xSectorSize, int, (sqlite3_file * f), (c->real))
FORWARD(xDeviceCharacteristics, int, (sqlite3_file * f), (c->real))
FORWARD(xShmMap, int, (sqlite3_file * f, int r, int s, int e, void volatile **o),
        (c->real, r, s, e, o))
FORWARD(xShmLock, int, (sqlite3_file * f, int o, int n, int fl), (c->real, o, n, fl))
FORWARD(xShmUnmap, int, (sqlite3_file * f, int d), (c->real, d))
FORWARD(xFetch, int, (sqlite3_file * f, sqlite3_int64 o, int n, void **p), (c->real, o, n, p))
FORWARD(xUnfetch, int, (sqlite3_file * f, sqlite3_int64 o, void *p), (c->real, o, p))

static void counted_barrier(sqlite3_file *f)
{
    struct counted_file *c = (struct counted_file *)f;
    c->real->pMethods->xShmBarrier(c->real);
}

static int counted_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                        int *out)
{
    (void)vfs;
    struct counted_file *c = (struct counted_file *)f;
    c->real = (sqlite3_file *)(c + 1);
    c->is_log = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = unix_vfs->xOpen(unix_vfs, name, c->real, flags, out);
    c->base.pMethods = rc == SQLITE_OK && c->real->pMethods ? &counting_methods : NULL;
    if (c->real->pMethods)
        unix_methods = c->real->pMethods;
    return rc;
}

static void install_counting_vfs(void)
{
    unix_vfs = sqlite3_vfs_find(NULL);
    assert_non_null(unix_vfs);
    counting_vfs = *unix_vfs;
    counting_vfs.zName = "counting";
    counting_vfs.szOsFile = (int)sizeof(struct counted_file) + unix_vfs->szOsFile;
    counting_vfs.xOpen = counted_open;
    counting_vfs.pNext = NULL;
    counting_methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = counted_close,
        .xRead = counted_xRead,
        .xWrite = counted_write,
        .xTruncate = counted_xTruncate,
        .xSync = counted_xSync,
        .xFileSize = counted_xFileSize,
        .xLock = counted_xLock,
        .xUnlock = counted_xUnlock,
        .xCheckReservedLock = counted_xCheckReservedLock,
        .xFileControl = counted_xFileControl,
        .xSectorSize = counted_xSectorSize,
        .xDeviceCharacteristics = counted_xDeviceCharacteristics,
        .xShmMap = counted_xShmMap,
        .xShmLock = counted_xShmLock,
        .xShmBarrier = counted_barrier,
        .xShmUnmap = counted_xShmUnmap,
        .xFetch = counted_xFetch,
        .xUnfetch = counted_xUnfetch,
    };
    assert_int_equal(sqlite3_vfs_register(&counting_vfs, 1), SQLITE_OK);
    assert_true(walbuf_register()); /* over the counting VFS, now the default */
    assert_true(walbuf_register()); /* idempotent */
}

/* ---- helpers ------------------------------------------------------------------------------ */

static char dir[] = "/tmp/tally-walbuf-XXXXXX";
static char path[128];

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void expect_whole(sqlite3 *db)
{
    sqlite3_stmt *ok;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &ok, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(ok), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(ok, 0), "ok");
    sqlite3_finalize(ok);
}

/* The writer through walbuf, as store_open opens it (WAL, synchronous NORMAL). */
static sqlite3 *open_writer(int cache_pages)
{
    sqlite3 *db;
    assert_int_equal(
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, WALBUF_VFS_NAME),
        SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = %d;"
             " PRAGMA journal_size_limit = 65536;",
             cache_pages);
    exec(db, sql);
    exec(db, "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)");
    return db;
}

/* A reader on the plain default VFS, as the API's readers are. */
static sqlite3 *open_reader(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

static int setup(void **state)
{
    (void)state;
    memcpy(dir, "/tmp/tally-walbuf-XXXXXX", sizeof dir);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* 200 commits of 8 rows of 1 KiB each (five frames, ten writes without walbuf): one write
 * each, each seen at once by another connection. */
static void test_a_commit_is_one_write_and_seen_at_once(void **state)
{
    (void)state;
    sqlite3 *w = open_writer(2000), *r = open_reader();
    for (int i = 0; i < 200; i++) {
        int before = log_writes;
        exec(w, "BEGIN");
        for (int k = 0; k < 8; k++)
            exec(w, "INSERT INTO t (v) VALUES (randomblob(1024))");
        exec(w, "COMMIT");
        int writes = log_writes - before;
        /* one, or two when the log starts again and its header goes first */
        if (writes < 1 || writes > 2)
            fail_msg("commit %d: %d writes reached the log", i, writes);
        assert_int_equal(scalar(r, "SELECT count(*) FROM t"), 8 * (i + 1));
    }
    /* a transaction writing the same page again and again: one write */
    int before = log_writes;
    exec(w, "BEGIN");
    for (int k = 0; k < 50; k++)
        exec(w, "UPDATE t SET v = randomblob(100) WHERE id = 1");
    exec(w, "COMMIT");
    assert_int_equal(log_writes - before, 1);
    assert_int_equal(scalar(r, "SELECT length(v) FROM t WHERE id = 1"), 100);
    expect_whole(r);
    sqlite3_close(r);
    sqlite3_close(w);
}

/* Pages spilled from a small cache are written to the log in the middle of a transaction
 * and read back in it; a transaction of 12 MiB is larger than what walbuf gathers. */
static void test_spills_and_large_transactions_come_back_whole(void **state)
{
    (void)state;
    sqlite3 *w = open_writer(20), *r = open_reader();
    int64_t rows = scalar(r, "SELECT count(*) FROM t");
    exec(w, "BEGIN");
    for (int k = 0; k < 3000; k++)
        exec(w, "INSERT INTO t (v) VALUES (zeroblob(4000))");
    exec(w, "UPDATE t SET v = randomblob(10) WHERE id % 7 = 0"); /* reads spilled pages back */
    exec(w, "COMMIT");
    assert_int_equal(scalar(r, "SELECT count(*) FROM t"), rows + 3000);
    assert_int_equal(scalar(r, "SELECT count(*) FROM t WHERE length(v) = 10"),
                     scalar(w, "SELECT count(*) FROM t WHERE id % 7 = 0"));
    expect_whole(r);
    sqlite3_close(r);
    sqlite3_close(w);
}

/* Checkpoints (one truncating the log) between commits, then a reopen: every row is there. */
static void test_checkpoints_and_reopen_keep_every_row(void **state)
{
    (void)state;
    sqlite3 *w = open_writer(2000);
    int64_t rows = scalar(w, "SELECT count(*) FROM t");
    for (int i = 0; i < 30; i++) {
        exec(w, "INSERT INTO t (v) VALUES (randomblob(3000))");
        if (i % 10 == 9)
            exec(w, i == 19 ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint");
    }
    sqlite3_close(w);
    sqlite3 *r = open_reader();
    assert_int_equal(scalar(r, "SELECT count(*) FROM t"), rows + 30);
    sqlite3_close(r);
}

/* A process killed right after its commits returned: they are all in the file (nothing was
 * left gathered), and the database opens whole. */
static void test_commits_survive_a_kill(void **state)
{
    (void)state;
    sqlite3 *r0 = open_reader();
    int64_t rows = scalar(r0, "SELECT count(*) FROM t");
    sqlite3_close(r0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        sqlite3 *w = open_writer(2000);
        for (int i = 0; i < 100; i++)
            exec(w, "INSERT INTO t (v) VALUES (randomblob(500))");
        char done = 1;
        if (write(pipefd[1], &done, 1) != 1)
            _exit(2);
        for (;;)
            pause(); /* killed here, the connection still open */
    }
    char done = 0;
    assert_int_equal(read(pipefd[0], &done, 1), 1);
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    sqlite3 *w = open_writer(2000); /* recovers the log */
    assert_int_equal(scalar(w, "SELECT count(*) FROM t"), rows + 100);
    sqlite3_close(w);
}

int main(void)
{
    install_counting_vfs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_commit_is_one_write_and_seen_at_once),
        cmocka_unit_test(test_spills_and_large_transactions_come_back_whole),
        cmocka_unit_test(test_checkpoints_and_reopen_keep_every_row),
        cmocka_unit_test(test_commits_survive_a_kill),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
