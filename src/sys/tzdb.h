/*
 * sys/tzdb: time zones by IANA name, from the system's tz database files.
 *
 * core/tz parses TZif bytes but never touches the disk; this module finds the file
 * (<root>/<Name>, root /usr/share/zoneinfo unless a test points elsewhere), reads it,
 * parses it and keeps the immutable zone in a cache for the life of the database object,
 * so each zone is read once and every thread shares it without further locking.
 *
 * Names are validated before any path is built: 1..TZDB_NAME_MAX bytes of [A-Za-z0-9_+-/],
 * no leading, trailing or doubled '/', hence no "." or ".." component: a name from an API
 * request can never leave the root. Names are case-sensitive, like the files.
 *
 * Threads: tzdb_open and tzdb_close on one thread, with no tzdb_get running during
 * tzdb_close. tzdb_get and tzdb_lookup from any thread, concurrently (a mutex guards the
 * cache; files are read outside it).
 */
#ifndef TALLY_SYS_TZDB_H
#define TALLY_SYS_TZDB_H

#include <stdbool.h>
#include <stddef.h>

#include "core/tz.h"

#define TZDB_NAME_MAX 64 /* longest real name, "America/Argentina/ComodRivadavia", is 32 */
#define TZDB_ROOT_MAX 512
#define TZDB_MAX_ZONES 1024 /* cache capacity; tzdata 2025b has about 600 zone files */
#define TZDB_DEFAULT_ROOT "/usr/share/zoneinfo"

enum tzdb_status {
    TZDB_OK = 0,
    TZDB_ERR_ARG,      /* NULL database or name */
    TZDB_ERR_NAME,     /* not a well-formed zone name */
    TZDB_ERR_NOTFOUND, /* no such file, or not a regular file */
    TZDB_ERR_IO,       /* the file exists but could not be read, or is too large */
    TZDB_ERR_PARSE,    /* the file is not a zone core/tz accepts */
    TZDB_ERR_FULL,     /* TZDB_MAX_ZONES zones are cached already */
    TZDB_ERR_NOMEM,
};

struct tzdb;

/* Opens a database rooted at `root` (copied; NULL means TZDB_DEFAULT_ROOT). Reads nothing
 * yet. Returns NULL if out of memory or root is longer than TZDB_ROOT_MAX. The caller owns
 * the result and frees it with tzdb_close. */
struct tzdb *tzdb_open(const char *root);

/* Frees the database and every zone it handed out. NULL is a no-op. */
void tzdb_close(struct tzdb *db);

/* True if `name` (len bytes, not necessarily NUL-terminated) is a well-formed zone name. */
bool tzdb_name_valid(const char *name, size_t len);
/*
 * True if `name` is well formed and names a zone a customer may be in: not one of the files
 * beside the zones (`localtime`, the host's own setting, which would move with the host;
 * `posixrules`, a deprecated link; `Factory`, the placeholder; the `posix/` and `right/`
 * copies). tzdb_lookup still loads those: a name stored before they were refused keeps working.
 */
bool tzdb_name_is_zone(const char *name, size_t len);

/*
 * The zone called `name` (len bytes, not necessarily NUL-terminated), loaded on first use.
 * On TZDB_OK, *out is borrowed from the database: valid until tzdb_close, immutable, safe
 * to use from any thread. On error *out is NULL.
 */
enum tzdb_status tzdb_lookup(struct tzdb *db, const char *name, size_t len,
                             const struct tz_zone **out);

/* tzdb_lookup without the reason: NULL if the zone is unknown, unreadable or malformed. */
const struct tz_zone *tzdb_get(struct tzdb *db, const char *name, size_t len);

#endif
