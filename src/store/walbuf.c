/*
 * store/walbuf: gathers a commit's write-ahead log writes into one (see walbuf.h for when the
 * bytes reach the file and why that keeps every commit whole).
 *
 * Each file opened through the VFS is a struct walbuf_file followed by the default VFS's own
 * file, which does the I/O. A log's gathered bytes are one contiguous run [start, start + len)
 * of the file; a write inside the run patches it (SQLite rewrites a frame of the same
 * transaction in place), the next byte extends it, anything else flushes it first.
 */
#include "store/walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* SQLite's log layout: a 32-byte file header, then frames of a 24-byte header and a page.
 * Bytes 4-7 of a frame header are the database's size in pages after a commit frame, 0 in
 * every other frame. */
#define WAL_FRAME_HEADER 24
#define WAL_FRAME_COMMIT_SIZE_AT 4

struct walbuf_file {
    sqlite3_file base;  /* pMethods: &log_methods or &db_methods */
    sqlite3_file *real; /* the default VFS's file, in the same allocation, after this one */
    /* the database file: its log while open (for the barrier); the log: its database */
    struct walbuf_file *peer;
    unsigned char *gathered; /* the log: bytes not yet written, for [start, start + len) */
    size_t len, cap;
    sqlite3_int64 start;
    bool commit_frame; /* the last header gathered was a commit frame's: flush after its page */
    int failed;        /* a flush at the barrier failed: every later write and sync fails */
};

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *default_vfs;

static struct walbuf_file *walbuf_of(sqlite3_file *f)
{
    return (struct walbuf_file *)f;
}

/* Writes the gathered bytes, if any, in pieces of at most WALBUF_WRITE_MAX. */
static int flush(struct walbuf_file *w)
{
    int rc = SQLITE_OK;
    for (size_t at = 0; at < w->len && rc == SQLITE_OK; at += WALBUF_WRITE_MAX) {
        size_t n = w->len - at < WALBUF_WRITE_MAX ? w->len - at : WALBUF_WRITE_MAX;
        rc = w->real->pMethods->xWrite(w->real, w->gathered + at, (int)n,
                                       w->start + (sqlite3_int64)at);
    }
    w->len = 0;
    w->commit_frame = false;
    return rc;
}

static int gather(struct walbuf_file *w, const void *data, int amount, sqlite3_int64 offset)
{
    size_t n = (size_t)amount;
    if (w->len > 0 && offset >= w->start && offset + amount <= w->start + (sqlite3_int64)w->len) {
        memcpy(w->gathered + (offset - w->start), data, n); /* a frame rewritten in place */
        return SQLITE_OK;
    }
    bool next = w->len > 0 && offset == w->start + (sqlite3_int64)w->len;
    if (!next || w->len + n > WALBUF_BYTES_MAX) {
        int rc = flush(w);
        if (rc != SQLITE_OK)
            return rc;
        w->start = offset;
    }
    if (n > WALBUF_WRITE_MAX) /* larger than a write: straight to the file (SQLite's are not) */
        return w->real->pMethods->xWrite(w->real, data, amount, offset);
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64 * 1024;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *grown = realloc(w->gathered, cap);
        if (!grown)
            return SQLITE_IOERR_NOMEM;
        w->gathered = grown;
        w->cap = cap;
    }
    memcpy(w->gathered + w->len, data, n);
    w->len += n;
    return SQLITE_OK;
}

/* ---- the log's methods ---------------------------------------------------------------------- */

static int log_write(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset)
{
    struct walbuf_file *w = walbuf_of(f);
    if (w->failed)
        return w->failed;
    bool commit_page = w->commit_frame && amount != WAL_FRAME_HEADER;
    if (amount == WAL_FRAME_HEADER) {
        const unsigned char *h = data;
        w->commit_frame = (h[WAL_FRAME_COMMIT_SIZE_AT] | h[WAL_FRAME_COMMIT_SIZE_AT + 1] |
                           h[WAL_FRAME_COMMIT_SIZE_AT + 2] | h[WAL_FRAME_COMMIT_SIZE_AT + 3]) != 0;
    }
    int rc = gather(w, data, amount, offset);
    if (rc != SQLITE_OK)
        return rc;
    return commit_page ? flush(w) : SQLITE_OK;
}

static int log_read(sqlite3_file *f, void *data, int amount, sqlite3_int64 offset)
{
    struct walbuf_file *w = walbuf_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, data, amount, offset);
}

static int log_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct walbuf_file *w = walbuf_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int log_sync(sqlite3_file *f, int flags)
{
    struct walbuf_file *w = walbuf_of(f);
    if (w->failed)
        return w->failed;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int log_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct walbuf_file *w = walbuf_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int log_file_control(sqlite3_file *f, int op, void *arg)
{
    struct walbuf_file *w = walbuf_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int file_close(sqlite3_file *f)
{
    struct walbuf_file *w = walbuf_of(f);
    int rc = flush(w);
    if (w->peer)
        w->peer->peer = NULL;
    free(w->gathered);
    int closed = w->real->pMethods->xClose(w->real);
    return rc != SQLITE_OK ? rc : closed;
}

/* ---- pass-through, for both kinds of file -----------------------------------------------------
 */

static int pass_read(sqlite3_file *f, void *data, int amount, sqlite3_int64 offset)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xRead(r, data, amount, offset);
}

static int pass_write(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xWrite(r, data, amount, offset);
}

static int pass_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xTruncate(r, size);
}

static int pass_sync(sqlite3_file *f, int flags)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xSync(r, flags);
}

static int pass_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xFileSize(r, size);
}

static int pass_lock(sqlite3_file *f, int level)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xLock(r, level);
}

static int pass_unlock(sqlite3_file *f, int level)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xUnlock(r, level);
}

static int pass_check_reserved_lock(sqlite3_file *f, int *out)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xCheckReservedLock(r, out);
}

static int pass_file_control(sqlite3_file *f, int op, void *arg)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xFileControl(r, op, arg);
}

static int pass_sector_size(sqlite3_file *f)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xSectorSize(r);
}

static int pass_device_characteristics(sqlite3_file *f)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xDeviceCharacteristics(r);
}

static int pass_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xShmMap(r, region, size, extend, out);
}

static int pass_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xShmLock(r, offset, n, flags);
}

static int pass_shm_unmap(sqlite3_file *f, int delete_flag)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xShmUnmap(r, delete_flag);
}

static int pass_fetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xFetch(r, offset, amount, out);
}

static int pass_unfetch(sqlite3_file *f, sqlite3_int64 offset, void *page)
{
    sqlite3_file *r = walbuf_of(f)->real;
    return r->pMethods->xUnfetch(r, offset, page);
}

/* The database's barrier: SQLite calls it before it publishes a commit to readers, so the
 * log's bytes must be in the file by then (they are, unless a commit frame went unseen). */
static void db_shm_barrier(sqlite3_file *f)
{
    struct walbuf_file *w = walbuf_of(f);
    if (w->peer && w->peer->len > 0) {
        int rc = flush(w->peer);
        if (rc != SQLITE_OK && !w->peer->failed)
            w->peer->failed = rc;
    }
    w->real->pMethods->xShmBarrier(w->real);
}

static const sqlite3_io_methods log_methods = {
    .iVersion = 3,
    .xClose = file_close,
    .xRead = log_read,
    .xWrite = log_write,
    .xTruncate = log_truncate,
    .xSync = log_sync,
    .xFileSize = log_file_size,
    .xLock = pass_lock,
    .xUnlock = pass_unlock,
    .xCheckReservedLock = pass_check_reserved_lock,
    .xFileControl = log_file_control,
    .xSectorSize = pass_sector_size,
    .xDeviceCharacteristics = pass_device_characteristics,
    .xShmMap = pass_shm_map,
    .xShmLock = pass_shm_lock,
    .xShmBarrier = NULL, /* SQLite maps shared memory through the database file only */
    .xShmUnmap = pass_shm_unmap,
    .xFetch = pass_fetch,
    .xUnfetch = pass_unfetch,
};

static const sqlite3_io_methods db_methods = {
    .iVersion = 3,
    .xClose = file_close,
    .xRead = pass_read,
    .xWrite = pass_write,
    .xTruncate = pass_truncate,
    .xSync = pass_sync,
    .xFileSize = pass_file_size,
    .xLock = pass_lock,
    .xUnlock = pass_unlock,
    .xCheckReservedLock = pass_check_reserved_lock,
    .xFileControl = pass_file_control,
    .xSectorSize = pass_sector_size,
    .xDeviceCharacteristics = pass_device_characteristics,
    .xShmMap = pass_shm_map,
    .xShmLock = pass_shm_lock,
    .xShmBarrier = db_shm_barrier,
    .xShmUnmap = pass_shm_unmap,
    .xFetch = pass_fetch,
    .xUnfetch = pass_unfetch,
};

/* ---- the VFS ------------------------------------------------------------------------------ */

static int walbuf_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                       int *out_flags)
{
    (void)vfs;
    struct walbuf_file *w = walbuf_of(f);
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(w + 1);
    int rc = default_vfs->xOpen(default_vfs, name, w->real, flags, out_flags);
    /* SQLite closes a file, even one whose open failed, when its pMethods is set: ours then
     * closes the default file if that one has something to close */
    if (rc != SQLITE_OK || !w->real->pMethods) {
        w->base.pMethods = w->real->pMethods ? &db_methods : NULL;
        return rc;
    }
    if (flags & SQLITE_OPEN_WAL) {
        w->base.pMethods = &log_methods;
        sqlite3_file *db = name ? sqlite3_database_file_object(name) : NULL;
        if (db && db->pMethods == &db_methods) {
            w->peer = walbuf_of(db);
            w->peer->peer = w;
        }
    } else {
        /* the database, and any other file: straight through (the barrier flushes the log of
         * a database that has one) */
        w->base.pMethods = &db_methods;
    }
    return SQLITE_OK;
}

static int walbuf_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return default_vfs->xDelete(default_vfs, name, sync_dir);
}

static int walbuf_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return default_vfs->xAccess(default_vfs, name, flags, out);
}

static int walbuf_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return default_vfs->xFullPathname(default_vfs, name, n, out);
}

static void *walbuf_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return default_vfs->xDlOpen(default_vfs, name);
}

static void walbuf_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    default_vfs->xDlError(default_vfs, n, out);
}

static void (*walbuf_dl_sym(sqlite3_vfs *vfs, void *lib, const char *sym))(void)
{
    (void)vfs;
    return default_vfs->xDlSym(default_vfs, lib, sym);
}

static void walbuf_dl_close(sqlite3_vfs *vfs, void *lib)
{
    (void)vfs;
    default_vfs->xDlClose(default_vfs, lib);
}

static int walbuf_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return default_vfs->xRandomness(default_vfs, n, out);
}

static int walbuf_sleep(sqlite3_vfs *vfs, int microseconds)
{
    (void)vfs;
    return default_vfs->xSleep(default_vfs, microseconds);
}

static int walbuf_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return default_vfs->xCurrentTime(default_vfs, out);
}

static int walbuf_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return default_vfs->xGetLastError ? default_vfs->xGetLastError(default_vfs, n, out) : 0;
}

static int walbuf_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return default_vfs->xCurrentTimeInt64(default_vfs, out);
}

static pthread_once_t registered = PTHREAD_ONCE_INIT;
static bool registered_ok;

static void register_once(void)
{
    default_vfs = sqlite3_vfs_find(NULL);
    if (!default_vfs || default_vfs->iVersion < 2 || !default_vfs->xCurrentTimeInt64)
        return;
    walbuf_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct walbuf_file) + default_vfs->szOsFile,
        .mxPathname = default_vfs->mxPathname,
        .zName = WALBUF_VFS_NAME,
        .xOpen = walbuf_open,
        .xDelete = walbuf_delete,
        .xAccess = walbuf_access,
        .xFullPathname = walbuf_full_pathname,
        .xDlOpen = walbuf_dl_open,
        .xDlError = walbuf_dl_error,
        .xDlSym = walbuf_dl_sym,
        .xDlClose = walbuf_dl_close,
        .xRandomness = walbuf_randomness,
        .xSleep = walbuf_sleep,
        .xCurrentTime = walbuf_current_time,
        .xGetLastError = walbuf_get_last_error,
        .xCurrentTimeInt64 = walbuf_current_time_int64,
    };
    registered_ok = sqlite3_vfs_register(&walbuf_vfs, 0) == SQLITE_OK;
}

bool walbuf_register(void)
{
    return pthread_once(&registered, register_once) == 0 && registered_ok;
}
