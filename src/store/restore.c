/*
 * store/restore.c: backups of a data directory's database and putting one back: store_backup,
 * a consistent copy made while tallyd runs, and store_restore, the copy put in place of the
 * database with tallyd stopped (DEVELOPERS.md, "Upgrades and backups").
 *
 * Shape: a backup is one read transaction of SQLite's (VACUUM INTO: vacuum_into says why)
 * into a new file beside FILE, checked as a restore checks it, synced and only then named
 * FILE, which it never replaces. A restore refuses a copy unless it is a Tally store of a
 * schema this release knows that passes PRAGMA quick_check; then the files of the store it
 * replaces (its -wal and -shm, and the caller's, such as the events snapshot) go, and the copy
 * is written beside the database, synced and renamed over it. Apart from store.c because
 * neither opens a store: they work on files, with connections of their own.
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
 * `path` as a SQLite URI with `query` ("" or "?..." ) after it, malloc'd (NULL: no memory): the
 * path's bytes other than unreserved ones escaped, so that no name is read as a query or a
 * fragment; an absolute path after an empty authority ("file://" + "/..."), so that one
 * starting "//" names no host.
 */
static char *file_uri(const char *path, const char *query)
{
    char *uri = malloc(strlen(path) * 3 + strlen(query) + sizeof "file://");
    if (!uri)
        return NULL;
    strcpy(uri, path[0] == '/' ? "file://" : "file:");
    char *u = uri + strlen(uri);
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("/-._~", *c))
            *u++ = (char)*c;
        else
            u += sprintf(u, "%%%02X", *c);
    strcpy(u, query);
    return uri;
}

/*
 * Checks the database file at `path` (`shown` names it in messages): opened immutable, so
 * that SQLite reads the file alone, as it will be installed, and makes no -wal or -shm
 * beside it.
 */
static bool check_backup(const char *path, const char *shown, int *version, char err[STORE_ERR_MAX])
{
    char *uri = file_uri(path, "?immutable=1");
    if (!uri) {
        store_set_err(err, shown, "out of memory");
        return false;
    }
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

/* The refusal of a backup with a log beside it, saying how to make a whole copy of the two:
 * tally backup when the file is a data directory's tally.db, SQLite's VACUUM INTO for any. */
static void refuse_logged(char err[STORE_ERR_MAX], const char *backup, const char *wal)
{
    const char *slash = strrchr(backup, '/');
    if (strcmp(slash ? slash + 1 : backup, STORE_DB_FILE) == 0) {
        int dir_len = !slash ? 1 : slash == backup ? 1 : (int)(slash - backup);
        set_errf(err,
                 "%s has a write-ahead log beside it (%s) holding changes the file alone lacks "
                 "(a copy taken while a tallyd ran, or after it crashed): make a whole copy with "
                 "tally --data-dir %.*s backup COPY and restore COPY",
                 backup, wal, dir_len, slash ? backup : ".");
    } else {
        set_errf(err,
                 "%s has a write-ahead log beside it (%s) holding changes the file alone lacks "
                 "(a copy taken while a tallyd ran, or after it crashed): make a whole copy with "
                 "sqlite3 %s \"VACUUM INTO 'COPY'\" and restore COPY",
                 backup, wal, backup);
    }
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
        refuse_logged(err, backup, path);
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

/* ---- making a backup ------------------------------------------------------------------------ */

/* The copy is made under FILE's name and this suffix, and named FILE once whole and synced:
 * a backup that stops half way (killed, a full disk) leaves no FILE that looks whole. */
#define BACKUP_PARTIAL_SUFFIX ".partial"
/* How long the copy's read transaction may wait for a lock (a tallyd recovering its log). */
#define BACKUP_BUSY_WAIT_MS 5000

/*
 * Copies the database at `db_path` into the empty file `out` in one read transaction.
 *
 * VACUUM INTO rather than SQLite's backup API: both read in one transaction when the API is
 * stepped once with -1 (the sqlite3 shell's `.backup` steps 100 pages at a time and starts
 * over whenever another process commits between two steps: with tallyd committing all the
 * time it never finished, an audit's ran over 12 minutes), but VACUUM INTO is one statement
 * that cannot start over, needs no connection to the copy, writes it compact (no free pages)
 * in rollback-journal mode, a file that stands alone, and is what the docs give for a machine
 * without Tally's binaries (`sqlite3 tally.db "VACUUM INTO 'FILE'"`), so both make the same
 * copy. It costs more CPU than copying pages (its B-trees are built anew): 1.25 s for the
 * audit's 76 MB store under load. The source is opened read-only: the backup changes nothing
 * the store holds and takes no lock of Tally's (tallyd may be running); a stopped store gets
 * an empty tally.db-wal and tally.db-shm beside it, which SQLite's WAL mode needs to read and
 * tallyd's next start takes as its own. `shown`: FILE, for messages.
 */
static bool vacuum_into(const char *db_path, const char *out, const char *shown,
                        char err[STORE_ERR_MAX])
{
    char *src = file_uri(db_path, ""), *dst = file_uri(out, "");
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    bool ok = false;
    char table[64];
    if (!src || !dst) {
        store_set_err(err, db_path, "out of memory");
        goto done;
    }
    if (sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        set_errf(err, "%s cannot be opened: %s", db_path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(db, BACKUP_BUSY_WAIT_MS);
    int version = store_read_user_version(db);
    if (version < 0 || !query_text(db,
                                   "SELECT name FROM sqlite_master WHERE type = 'table' AND name = "
                                   "'organizations'",
                                   table, sizeof table)) {
        set_errf(err, "%s cannot be read: %s", db_path, sqlite3_errmsg(db));
        goto done;
    }
    if (version == 0 || !table[0]) {
        set_errf(err, "%s is a SQLite database but not a Tally store (schema version %d, %s)",
                 db_path, version, table[0] ? "no migration recorded" : "no organizations table");
        goto done;
    }
    if (version > store_latest_schema_version()) {
        set_errf(err,
                 "%s has schema version %d, newer than this Tally knows (%d): back it up with "
                 "the release that wrote it",
                 db_path, version, store_latest_schema_version());
        goto done;
    }
    if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_text(s, 1, dst, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_DONE) {
        set_errf(err, "cannot copy %s to %s: %s", db_path, shown, sqlite3_errmsg(db));
        goto done;
    }
    ok = true;
done:
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(src);
    free(dst);
    return ok;
}

/*
 * Gives the whole, synced copy `partial` the name `file`, unless something has that name by
 * now: link(2) never replaces (and the partial name goes after); a file system without hard
 * links (FAT, some network shares) gets renameat2 with RENAME_NOREPLACE, which never replaces
 * either. Never rename(2): it would replace a backup made meanwhile under the same name.
 */
static bool name_copy(const char *partial, const char *file, char err[STORE_ERR_MAX])
{
    if (link(partial, file) == 0) {
        unlink(partial);
        return true;
    }
    if ((errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS) &&
        renameat2(AT_FDCWD, partial, AT_FDCWD, file, RENAME_NOREPLACE) == 0)
        return true;
    if (errno == EEXIST)
        set_errf(err, "%s exists: made while the backup ran; a backup never replaces a file", file);
    else
        set_errf(err, "cannot name the copy %s: %s", file, strerror(errno));
    return false;
}

/* Whether `path` still names the file open as `fd`: a second backup to the same FILE, told to
 * remove a FILE.partial it found, may have made its own there meanwhile (a review found the
 * first then checked, and on failure removed, the second's half-written copy: both failed). */
static bool still_names(const char *path, int fd)
{
    struct stat open_file, named;
    return fstat(fd, &open_file) == 0 && lstat(path, &named) == 0 &&
           open_file.st_dev == named.st_dev && open_file.st_ino == named.st_ino;
}

bool store_backup(const char *data_dir, const char *file, struct store_backup_result *result,
                  char err[STORE_ERR_MAX])
{
    pthread_once(&store_watch_once, store_watch_errors);
    *result = (struct store_backup_result){0};
    char db[STORE_PATH_MAX], partial[STORE_PATH_MAX], journal[STORE_PATH_MAX], dir[STORE_PATH_MAX];
    struct stat there, data, in;
    if (!store_data_path(db, data_dir, STORE_DB_FILE, err))
        return false;
    if (stat(db, &there) != 0) {
        if (errno == ENOENT)
            set_errf(err, "no Tally store in %s (%s not found)", data_dir, db);
        else
            store_set_err(err, db, strerror(errno));
        return false;
    }
    /* FILE's directory: what precedes its last slash ("/" for a file at the root; "." when
     * there is none) */
    const char *slash = strrchr(file, '/');
    int dir_len = !slash ? 1 : slash == file ? 1 : (int)(slash - file);
    if (snprintf(dir, sizeof dir, "%.*s", dir_len, slash ? file : ".") >= (int)sizeof dir ||
        snprintf(partial, sizeof partial, "%s%s", file, BACKUP_PARTIAL_SUFFIX) >=
            (int)sizeof partial ||
        /* the rollback journal VACUUM INTO keeps beside the copy while it writes */
        snprintf(journal, sizeof journal, "%s-journal", partial) >= (int)sizeof journal) {
        store_set_err(err, file, "path too long");
        return false;
    }
    if (lstat(file, &there) == 0) {
        set_errf(err, "%s exists: a backup never replaces a file; name a new one", file);
        return false;
    }
    if (stat(dir, &in) != 0) {
        store_set_err(err, dir, strerror(errno));
        return false;
    }
    if (stat(data_dir, &data) == 0 && data.st_dev == in.st_dev && data.st_ino == in.st_ino) {
        set_errf(err,
                 "%s is in the data directory %s: put the backup elsewhere, where what befalls "
                 "the directory does not take it too",
                 file, data_dir);
        return false;
    }
    int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            set_errf(err,
                     "%s exists: another backup to %s is running, or one stopped half way; if "
                     "none runs, remove it and back up again",
                     partial, file);
        else
            set_errf(err, "cannot create %s: %s", partial, strerror(errno));
        return false;
    }
    bool ok = vacuum_into(db, partial, file, err), ours = still_names(partial, fd);
    if (ok && !ours) {
        set_errf(err,
                 "%s was removed or replaced while the backup ran (another backup to %s?): "
                 "back up again",
                 partial, file);
        ok = false;
    }
    /* the copy is checked as a restore checks it (and its schema version read from it) */
    ok = ok && check_backup(partial, file, &result->schema_version, err);
    if (ok && (fsync(fd) != 0 || fstat(fd, &there) != 0)) {
        set_errf(err, "cannot sync %s: %s", partial, strerror(errno));
        ok = false;
    }
    if (close(fd) != 0 && ok) {
        set_errf(err, "cannot write %s: %s", partial, strerror(errno));
        ok = false;
    }
    if (!ok || !name_copy(partial, file, err)) {
        if (ours) { /* (another backup's files are its own to remove) */
            unlink(partial);
            unlink(journal); /* left by a VACUUM INTO that failed (a full disk) */
        }
        return false;
    }
    result->bytes = (int64_t)there.st_size;
    if (sync_dir(dir, err))
        return true;
    /* the copy is whole, checked and synced under its name; only that name may not survive
     * a crash (an audit found the message leave a retry to say FILE exists) */
    char why[STORE_ERR_MAX];
    snprintf(why, sizeof why, "%s", err);
    set_errf(err,
             "%s is whole and checked, but its directory could not be synced (%s): a crash now "
             "could lose its name; sync the directory (or copy the file elsewhere) to keep it",
             file, why);
    return false;
}
