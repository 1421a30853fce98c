/*
 * store/restore.c: putting a backup in place of a data directory's database (store_restore;
 * DEVELOPERS.md, "Upgrades and backups"), with tallyd stopped.
 *
 * Shape: the copy is refused unless it is a Tally store of a schema this release knows that
 * passes PRAGMA quick_check; then the files of the store it replaces (its -wal and -shm, and
 * the caller's, such as the events snapshot) go, and the copy is written beside the database,
 * synced and renamed over it. Apart from store.c because it opens no store: it works on files,
 * with a connection of its own to the copy.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- restoring a backup -------------------------------------------------------------------- */

static void set_errf(char err[STORE_ERR_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_errf(char err[STORE_ERR_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(err, STORE_ERR_MAX, fmt, ap) >= STORE_ERR_MAX)
        err[STORE_ERR_MAX - 1] = '\0';
    va_end(ap);
}

static bool sync_dir(const char *dir, char err[STORE_ERR_MAX])
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        set_errf(err, "cannot sync the directory %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    close(fd);
    return true;
}

/* Copies `in` to `out` whole and syncs it. */
static bool copy_synced(int in, int out)
{
    char block[65536];
    for (;;) {
        ssize_t n = read(in, block, sizeof block);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        if (n == 0)
            return fsync(out) == 0;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, block + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return false;
            done += w;
        }
    }
}

/* The first row of a one-column query in `out` ("" when none); false if the query fails. */
static bool query_text(sqlite3 *db, const char *query, char *out, size_t len)
{
    sqlite3_stmt *s;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, query, -1, &s, NULL) != SQLITE_OK)
        return false;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

/*
 * Checks the database file at `path` (`shown` names it in messages): opened immutable, so
 * that SQLite reads the file alone, as it will be installed, and makes no -wal or -shm
 * beside it.
 */
static bool check_backup(const char *path, const char *shown, int *version, char err[STORE_ERR_MAX])
{
    /* a URI: the path's bytes other than unreserved ones escaped; an absolute path after an
     * empty authority ("file://" + "/..."), so that one starting "//" names no host */
    size_t len = strlen(path);
    char *uri = malloc(len * 3 + 32);
    if (!uri) {
        store_set_err(err, shown, "out of memory");
        return false;
    }
    strcpy(uri, path[0] == '/' ? "file://" : "file:");
    char *u = uri + strlen(uri);
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("/-._~", *c))
            *u++ = (char)*c;
        else
            u += sprintf(u, "%%%02X", *c);
    strcpy(u, "?immutable=1");
    sqlite3 *db = NULL;
    bool ok = false;
    char text[256];
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        set_errf(err, "%s cannot be opened: %s", shown, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    *version = store_read_user_version(db);
    if (*version < 0) {
        set_errf(err, "%s is not a SQLite database Tally can restore: %s", shown,
                 sqlite3_errmsg(db));
        goto done;
    }
    if (!query_text(db,
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = "
                    "'organizations'",
                    text, sizeof text)) {
        set_errf(err, "%s cannot be read: %s", shown, sqlite3_errmsg(db));
        goto done;
    }
    if (*version == 0 || !text[0]) {
        set_errf(err, "%s is a SQLite database but not a Tally store (schema version %d, %s)",
                 shown, *version, text[0] ? "no migration recorded" : "no organizations table");
        goto done;
    }
    if (*version > store_latest_schema_version()) {
        set_errf(err,
                 "%s has schema version %d, newer than this Tally knows (%d): restore it with "
                 "the release that made it, or a later one",
                 shown, *version, store_latest_schema_version());
        goto done;
    }
    if (!query_text(db, "PRAGMA quick_check", text, sizeof text)) {
        set_errf(err, "%s is damaged: PRAGMA quick_check failed: %s", shown, sqlite3_errmsg(db));
        goto done;
    }
    if (strcmp(text, "ok") != 0) {
        set_errf(err, "%s is damaged: PRAGMA quick_check says: %s", shown, text);
        goto done;
    }
    ok = true;
done:
    sqlite3_close(db);
    free(uri);
    return ok;
}

/* Removes DATA_DIR/name if there, noting it in result; false (and why) if it cannot be. */
static bool remove_stale(const char *data_dir, const char *name,
                         struct store_restore_result *result, char err[STORE_ERR_MAX])
{
    char path[STORE_PATH_MAX];
    if (!store_data_path(path, data_dir, name, err))
        return false;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return true;
        set_errf(err, "cannot remove %s: %s (nothing was restored)", path, strerror(errno));
        return false;
    }
    if (result->removed_count < STORE_RESTORE_REMOVED_MAX)
        result->removed[result->removed_count++] = name;
    return true;
}

bool store_restore(const char *data_dir, const char *backup, const char *const *also_remove,
                   struct store_restore_result *result, char err[STORE_ERR_MAX])
{
    /* SQLite takes the log callback only before it initialises (store_watch_errors) */
    pthread_once(&store_watch_once, store_watch_errors);
    *result = (struct store_restore_result){0};
    char db[STORE_PATH_MAX], copy[STORE_PATH_MAX], path[STORE_PATH_MAX];
    if (!store_data_path(db, data_dir, STORE_DB_FILE, err) ||
        !store_data_path(copy, data_dir, STORE_DB_FILE ".restoring", err))
        return false;
    int in = open(backup, O_RDONLY | O_CLOEXEC);
    struct stat from, there;
    if (in < 0 || fstat(in, &from) != 0) {
        store_set_err(err, backup, strerror(errno));
        if (in >= 0)
            close(in);
        return false;
    }
    bool refused = true;
    if (!S_ISREG(from.st_mode))
        set_errf(err, "%s is not a file", backup);
    else if (stat(db, &there) == 0 && there.st_dev == from.st_dev && there.st_ino == from.st_ino)
        set_errf(err, "%s is the data directory's own %s", backup, STORE_DB_FILE);
    else if (snprintf(path, sizeof path, "%s-wal", backup) < (int)sizeof path &&
             stat(path, &there) == 0 && there.st_size > 0)
        set_errf(err,
                 "%s has a write-ahead log beside it (%s) holding changes the file alone lacks "
                 "(a copy taken while a tallyd ran, or after it crashed): make a whole copy with "
                 "sqlite3 %s \".backup COPY\" and restore COPY",
                 backup, path, backup);
    else
        refused = false;
    if (refused) {
        close(in);
        return false;
    }
    unlink(copy); /* a restore that stopped half way */
    int out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        set_errf(err, "cannot create %s: %s", copy, strerror(errno));
        close(in);
        return false;
    }
    bool copied = copy_synced(in, out);
    int copy_errno = errno;
    if (close(out) != 0 && copied) {
        copied = false;
        copy_errno = errno;
    }
    close(in);
    if (!copied) {
        set_errf(err, "cannot copy %s to %s: %s", backup, copy, strerror(copy_errno));
        unlink(copy);
        return false;
    }
    if (!check_backup(copy, backup, &result->schema_version, err)) {
        unlink(copy);
        return false;
    }
    /* Nothing of the replaced store may outlive it: its log first, so that a crash before the
     * rename leaves the old file without its log (restore again), never the new one with it. */
    static const char *const own[] = {STORE_DB_FILE "-wal", STORE_DB_FILE "-shm",
                                      STORE_DB_FILE "-journal"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!remove_stale(data_dir, own[i], result, err)) {
            unlink(copy);
            return false;
        }
    for (size_t i = 0; also_remove && also_remove[i]; i++)
        if (!remove_stale(data_dir, also_remove[i], result, err)) {
            unlink(copy);
            return false;
        }
    if (!sync_dir(data_dir, err)) {
        unlink(copy);
        return false;
    }
    if (rename(copy, db) != 0) {
        set_errf(err, "cannot rename %s to %s: %s", copy, db, strerror(errno));
        unlink(copy);
        return false;
    }
    return sync_dir(data_dir, err);
}
