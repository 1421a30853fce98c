/*
 * tally: the command-line tool. It works on a data directory directly (no server needed)
 * and refuses when a tallyd holds that directory, since the server is the only writer; but
 * backup, which only reads, and so works while tallyd runs.
 *
 *   tally [--data-dir DIR] org create NAME [--test-clock 2026-01-01T00:00:00Z]
 *   tally [--data-dir DIR] org list
 *   tally [--data-dir DIR] org rotate-key ID
 *   tally [--data-dir DIR] org reminder-days ID D,...
 *   tally [--data-dir DIR] backup FILE
 *   tally [--data-dir DIR] restore BACKUP
 *
 * A new API key is printed once, as the last line; Tally keeps only its SHA-256, so a lost
 * (or leaked) key is replaced, never recovered.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/event.h"
#include "core/timestamp.h"
#include "core/wallet.h"
#include "engine/snapshot.h"
#include "store/store.h"
#include "sys/digest.h"
#include "sys/entropy.h"
#include "sys/wallclock.h"
#include "util/cmdline.h"
#include "util/utf8.h"

#define API_KEY_RANDOM_BYTES 32
#define API_KEY_PREFIX "tly_"
/* Where scripts/run-demo.sh (`make run`) keeps the demo organization's key, in the data
 * directory, to print it at every start. */
#define DEMO_KEY_FILE "demo-api-key"

static const char usage[] =
    "usage: tally [--data-dir DIR] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  org create NAME [--test-clock T] [--reminder-days 30,7]\n"
    "                                     create an organization and print its API key\n"
    "  org list                           the organizations: ID, name, created at, test clock\n"
    "  org rotate-key ID                  give organization ID a new API key (the old one\n"
    "                                     stops working) and print it\n"
    "  org reminder-days ID D,...         change an organization's expiry reminders\n"
    "  backup FILE                        write a consistent copy of the store to FILE (a new\n"
    "                                     file), while tallyd runs or not\n"
    "  restore BACKUP                     put the backup BACKUP (a copy of tally.db) in place\n"
    "                                     of the store, with nothing of the replaced one left\n"
    "\n"
    "options (--name value or --name=value):\n"
    "  --data-dir DIR   the data directory of the tallyd to administer (default ./data);\n"
    "                   that tallyd must not be running, but for backup\n"
    "  --help           help (also after any command: tally org create --help)\n";

static const char org_usage[] =
    "usage: tally [--data-dir DIR] org create NAME [--test-clock T] [--reminder-days D,...]\n"
    "       tally [--data-dir DIR] org list\n"
    "       tally [--data-dir DIR] org rotate-key ID\n"
    "       tally [--data-dir DIR] org reminder-days ID D,...\n";

static const char org_rotate_key_usage[] =
    "usage: tally [--data-dir DIR] org rotate-key ID\n"
    "\n"
    "Gives organization ID (as org list shows it) a new API key and prints it as the last\n"
    "line of output. The old key stops working at once: tallyd must be stopped, and reads\n"
    "keys anew when it starts. DIR/demo-api-key (the key make run prints), when it holds\n"
    "this organization's key, is rewritten with the new one.\n";

static const char org_reminder_days_usage[] =
    "usage: tally [--data-dir DIR] org reminder-days ID D,...\n"
    "\n"
    "Sets the days before a grant of credits expires that organization ID (as org create\n"
    "printed it) records a credits.expiring_soon webhook event: up to 4 distinct values in\n"
    "1..365, such as 30,7. A grant already reminded that close to its expiry is not\n"
    "reminded again. tallyd must be stopped; it reads the days when it starts.\n";

static const char org_create_usage[] =
    "usage: tally [--data-dir DIR] org create NAME [--test-clock T] [--reminder-days D,...]\n"
    "\n"
    "Creates an organization and prints its API key as the last line of output. The key is\n"
    "shown once: Tally stores only its hash.\n"
    "\n"
    "  --test-clock T   the organization lives on a test clock starting at T (ISO 8601, e.g.\n"
    "                   2026-01-01T00:00:00Z); it moves only through\n"
    "                   POST /api/v1/test_clock/advance\n"
    "  --reminder-days D,...  days before a grant of credits expires that a\n"
    "                   credits.expiring_soon webhook event is recorded (default 30,7; up to 4\n"
    "                   values in 1..365)\n";
_Static_assert(WALLET_REMINDER_DAYS_MAX == 4 && WALLET_REMINDER_DAYS_LIMIT == 365,
               "org_create_usage and org_reminder_days_usage name the limits");

static const char backup_usage[] =
    "usage: tally [--data-dir DIR] backup FILE\n"
    "\n"
    "Writes a consistent copy of DIR/tally.db to FILE, while tallyd runs or not: one read\n"
    "transaction (SQLite's VACUUM INTO), which tallyd's writes meanwhile neither disturb nor\n"
    "wait for. The copy is checked as restore checks it (PRAGMA quick_check), synced, and only\n"
    "then named FILE; it is the whole store, no -wal goes with it, and tally restore FILE puts\n"
    "it back (events.snapshot need not be kept). FILE must be new (a backup never replaces a\n"
    "file) and outside DIR. Prints the copy's path, schema version and size. Without Tally's\n"
    "binaries: (umask 077; sqlite3 DIR/tally.db \"VACUUM INTO 'FILE'\") makes the same copy\n"
    "(the umask keeps it the owner's alone: it holds the API key hashes and every billing row).\n";

static const char restore_usage[] =
    "usage: tally [--data-dir DIR] restore BACKUP\n"
    "\n"
    "Puts a copy of BACKUP in place of DIR/tally.db. BACKUP is a copy tally backup made (while\n"
    "tallyd ran or not), or a tally.db copied while tallyd was stopped. It is checked first\n"
    "(a Tally store of a schema this release knows; PRAGMA quick_check ok), and DIR is left\n"
    "as it was if it is refused. Then the files of the store it replaces are\n"
    "removed: tally.db-wal and tally.db-shm (the log of a tallyd that crashed or was killed,\n"
    "which SQLite would replay onto the restored file, damaging it) and events.snapshot.\n"
    "Everything stored since the backup is gone. tallyd must be stopped; its next start\n"
    "upgrades a backup of an older schema. DIR is made (0700) if it does not exist.\n";

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

/* A new API key in `key` and its SHA-256 in `hash`, as organizations store it. False if the
 * kernel gives no random bytes. */
#define API_KEY_TEXT_MAX (sizeof API_KEY_PREFIX + 2 * API_KEY_RANDOM_BYTES)
static bool new_api_key(char key[API_KEY_TEXT_MAX], char hash[DIGEST_SHA256_HEX])
{
    unsigned char random[API_KEY_RANDOM_BYTES];
    if (!entropy_fill(random, sizeof random))
        return false;
    memcpy(key, API_KEY_PREFIX, sizeof API_KEY_PREFIX - 1);
    digest_to_hex(random, sizeof random, key + sizeof API_KEY_PREFIX - 1);
    digest_sha256_hex(key, strlen(key), hash);
    return true;
}

/* Takes the data directory's lock and opens its store; NULL (the reason printed) if either
 * fails. close_locked undoes both. `read_only`: a command that only reads, which refuses an
 * older schema rather than upgrade it. */
static struct store *open_locked(const char *data_dir, bool read_only, struct store_dir_lock *lock)
{
    char err[STORE_ERR_MAX];
    if (!store_lock(data_dir, lock, err)) {
        fprintf(stderr, "tally: %s\n", err);
        return NULL;
    }
    struct store *st = read_only ? store_open_current(data_dir, err) : store_open(data_dir, err);
    if (!st) {
        fprintf(stderr, "tally: %s\n", err);
        store_unlock(lock);
    }
    return st;
}

static void close_locked(struct store *st, struct store_dir_lock *lock)
{
    store_close(st);
    store_unlock(lock);
}

/*
 * Whether an organization's name can be shown as one field of `org list`: UTF-8 without
 * control characters (utf8_is_control: C0, DEL, C1, line and paragraph separators, bidi
 * controls), with something visible
 * (not only spaces, Unicode's included). An audit made a name holding a new line and tabs
 * print a second row that looked like organization 1, whose key an operator could rotate.
 */
static bool printable_name(const char *name)
{
    size_t len = strlen(name);
    if (!utf8_valid(name, len))
        return false;
    bool visible = false;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        i += utf8_next(name + i, len - i, &c); /* valid: never 0 */
        if (utf8_is_control(c))
            return false;
        bool space = c == ' ' || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200b) ||
                     c == 0x202f || c == 0x205f || c == 0x3000 || c == 0xfeff;
        visible |= !space;
    }
    return visible;
}

/*
 * Shows a new API key and commits the change it opens, in that order: the key is shown once
 * and kept only as its hash, so a stdout that cannot take it (a full disk, a closed pipe or
 * descriptor) rolls the change back (`not_done` says what that leaves), and a commit that fails
 * after it says the printed key opens nothing. True if committed. The key stays stdout's last
 * line.
 */
static bool show_key_and_commit(struct store *st, const char *key, const char *not_done,
                                const char *cannot)
{
    printf("API key (shown once; Tally keeps only its hash):\n%s\n", key);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tally: could not write the API key to standard output: %s\n", not_done);
        store_rollback(st);
        return false;
    }
    if (store_commit(st) != STORE_OK) {
        fprintf(stderr, "tally: %s (the key above opens nothing): %s\n", cannot,
                store_errmsg(store_conn(st)));
        store_rollback(st);
        return false;
    }
    return true;
}

static int org_create(const char *data_dir, int argc, char **argv)
{
    const char *name = NULL;
    bool has_clock = false;
    tally_time clock = 0;
    const char *reminders = NULL;
    int32_t days[WALLET_REMINDER_DAYS_MAX];
    size_t day_count;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(org_create_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--test-clock") == 0) {
            if (i + 1 >= argc ||
                !timestamp_parse_iso8601(argv[i + 1], strlen(argv[i + 1]), &clock) ||
                clock < EVENT_CLOCK_MIN || clock > EVENT_CLOCK_MAX) {
                fprintf(stderr, "tally: --test-clock wants an ISO 8601 time from 1970 to "
                                "9998-12-31T09:59:59Z, such as 2026-01-01T00:00:00Z\n");
                return 2;
            }
            has_clock = true;
            i++;
        } else if (strcmp(argv[i], "--reminder-days") == 0) {
            if (i + 1 >= argc || !wallet_reminder_days_parse(argv[i + 1], days, &day_count)) {
                fprintf(stderr,
                        "tally: --reminder-days wants 1 to %d distinct days in 1..%d, "
                        "such as 30,7\n",
                        WALLET_REMINDER_DAYS_MAX, WALLET_REMINDER_DAYS_LIMIT);
                return 2;
            }
            reminders = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "tally: unknown option '%s'%s\n%s", argv[i],
                    strcmp(argv[i], "--data-dir") == 0 ? " (--data-dir goes before the command)"
                                                       : "",
                    org_create_usage);
            return 2;
        } else if (!name) {
            name = argv[i];
        } else {
            fprintf(stderr, "tally: one NAME only (quote a name with spaces)\n");
            return 2;
        }
    }
    if (!name || !*name || strlen(name) > STORE_ORG_NAME_MAX) {
        fprintf(stderr, "tally: org create needs a NAME of 1 to %d bytes\n%s", STORE_ORG_NAME_MAX,
                org_create_usage);
        return 2;
    }
    if (!printable_name(name)) {
        fprintf(stderr, "tally: a NAME is UTF-8 text without control characters (tabs, new "
                        "lines, escapes), not only spaces\n");
        return 2;
    }

    struct store_dir_lock lock;
    struct store *st = open_locked(data_dir, false, &lock);
    if (!st)
        return 1;
    char key[API_KEY_TEXT_MAX];
    char hash[DIGEST_SHA256_HEX];
    int64_t id = 0;
    int rc = 1;
    if (!new_api_key(key, hash)) {
        fprintf(stderr, "tally: the kernel gave no random bytes\n");
        goto done;
    }
    tally_time now = has_clock ? clock : wallclock_now();
    if (store_begin(st) != STORE_OK ||
        store_org_insert(st, name, hash, has_clock, clock, now, &id) != STORE_OK ||
        (reminders && store_org_set_reminder_days(st, id, reminders) != STORE_OK)) {
        fprintf(stderr, "tally: cannot create the organization: %s\n",
                store_errmsg(store_conn(st)));
        store_rollback(st);
        goto done;
    }
    /* the key before the commit: show_key_and_commit */
    printf("organization %lld \"%s\" created in %s\n", (long long)id, name, data_dir);
    if (has_clock) {
        char t[TIMESTAMP_TEXT_MAX];
        timestamp_format(clock, false, t);
        printf("test clock: %s (advance it with POST /api/v1/test_clock/advance)\n", t);
    }
    if (show_key_and_commit(st, key, "the organization was not created",
                            "cannot create the organization"))
        rc = 0;
done:
    close_locked(st, &lock);
    return rc;
}

/* The store of a data directory that has one, locked; NULL (the reason printed) if it has
 * none: a command that changes or reads organizations does not make a store in a mistyped
 * directory. */
static struct store *open_existing(const char *data_dir, bool read_only,
                                   struct store_dir_lock *lock)
{
    char db[4096];
    snprintf(db, sizeof db, "%s/%s", data_dir, STORE_DB_FILE);
    if (access(db, F_OK) != 0) {
        if (errno == ENOENT)
            fprintf(stderr, "tally: no Tally store in %s (%s not found)\n", data_dir, db);
        else /* a store this user may not read is not a missing one */
            fprintf(stderr, "tally: %s: %s\n", db, strerror(errno));
        return NULL;
    }
    return open_locked(data_dir, read_only, lock);
}

static void print_org(const struct store_org *org, void *ctx)
{
    char created[TIMESTAMP_TEXT_MAX], clock[TIMESTAMP_TEXT_MAX];
    (void)ctx;
    timestamp_format(org->created_at, false, created);
    if (org->has_test_clock)
        timestamp_format_micros(org->test_clock_now, clock); /* as the API shows it */
    /* a name an older Tally took with control characters is shown without them */
    printf("%lld\t", (long long)org->id);
    for (const char *c = org->name; *c; c++)
        putchar((unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c);
    printf("\t%s\t%s\n", created, org->has_test_clock ? clock : "-");
}

static int org_list(const char *data_dir, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs("usage: tally [--data-dir DIR] org list\n\nPrints each organization: ID, name, "
              "created at, and its test clock (or -), tab-separated.\n",
              stdout);
        return 0;
    }
    if (argc != 0) {
        fprintf(stderr, "tally: org list takes no arguments%s\n%s",
                strcmp(argv[0], "--data-dir") == 0 ? " (--data-dir goes before the command)" : "",
                org_usage);
        return 2;
    }
    struct store_dir_lock lock;
    struct store *st = open_existing(data_dir, true, &lock);
    if (!st)
        return 1;
    printf("id\tname\tcreated_at\ttest_clock\n");
    int rc = 0;
    if (store_org_each(store_conn(st), print_org, NULL) != STORE_OK) {
        fprintf(stderr, "tally: cannot read the organizations: %s\n", store_errmsg(store_conn(st)));
        rc = 1;
    }
    close_locked(st, &lock);
    return rc;
}

/* Reads an organization ID argument; false (and why printed, with `usage_text`) if it is not. */
static bool org_id_arg(const char *arg, const char *command, const char *usage_text, int64_t *id)
{
    uint64_t v;
    if (!cmdline_parse_u64(arg, 1, INT64_MAX, &v)) {
        fprintf(stderr, "tally: org %s wants an organization ID (see org list), not '%s'\n%s",
                command, arg, usage_text);
        return false;
    }
    *id = (int64_t)v;
    return true;
}

/*
 * Whether DATA_DIR/demo-api-key holds organization `id`'s current key: then rotate-key
 * rewrites it, else `make run` printed the dead key for ever after (an audit). False when the
 * file is absent or holds another organization's key.
 */
static bool demo_key_is(struct store *st, const char *data_dir, int64_t id)
{
    char path[4096], key[256];
    snprintf(path, sizeof path, "%s/%s", data_dir, DEMO_KEY_FILE);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool read = fgets(key, sizeof key, f) != NULL;
    fclose(f);
    if (!read)
        return false;
    key[strcspn(key, "\r\n")] = '\0';
    char hash[DIGEST_SHA256_HEX];
    digest_sha256_hex(key, strlen(key), hash);
    struct arena a;
    arena_init(&a);
    struct store_org org;
    bool same = store_org_by_key_hash(store_conn(st), hash, &org, &a) == STORE_OK && org.id == id;
    arena_free(&a);
    return same;
}

/* Replaces DATA_DIR/demo-api-key with `key` (0600, whole or not at all); false on failure. */
static bool write_demo_key(const char *data_dir, const char *key)
{
    char path[4096], tmp[4096 + 8];
    snprintf(path, sizeof path, "%s/%s", data_dir, DEMO_KEY_FILE);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    size_t len = strlen(key);
    bool ok = write(fd, key, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return false;
    }
    return true;
}

static int org_rotate_key(const char *data_dir, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(org_rotate_key_usage, stdout);
        return 0;
    }
    int64_t id;
    if (argc != 1) {
        fprintf(stderr, "tally: org rotate-key wants an organization ID\n%s", org_rotate_key_usage);
        return 2;
    }
    if (!org_id_arg(argv[0], "rotate-key", org_rotate_key_usage, &id))
        return 2;
    struct store_dir_lock lock;
    struct store *st = open_existing(data_dir, false, &lock);
    if (!st)
        return 1;
    char key[API_KEY_TEXT_MAX];
    char hash[DIGEST_SHA256_HEX];
    int rc = 1;
    enum store_status s = STORE_ERROR;
    if (!new_api_key(key, hash)) {
        fprintf(stderr, "tally: the kernel gave no random bytes\n");
        goto done;
    }
    bool demo = demo_key_is(st, data_dir, id);
    if (store_begin(st) != STORE_OK || (s = store_org_set_key_hash(st, id, hash)) != STORE_OK) {
        if (s == STORE_NOT_FOUND)
            fprintf(stderr, "tally: no organization %lld in %s\n", (long long)id, data_dir);
        else
            fprintf(stderr, "tally: cannot change the key: %s\n", store_errmsg(store_conn(st)));
        store_rollback(st);
        goto done;
    }
    /* as org create: the new key is shown before the old one stops working */
    printf("organization %lld: the old API key no longer works\n", (long long)id);
    if (!show_key_and_commit(st, key, "the key was not changed",
                             "cannot change the key (the old one still works)"))
        goto done;
    if (demo && write_demo_key(data_dir, key))
        fprintf(stderr, "tally: %s/%s (the key make run prints) holds the new key\n", data_dir,
                DEMO_KEY_FILE);
    else if (demo)
        fprintf(stderr, "tally: %s/%s still holds the old key: it could not be rewritten\n",
                data_dir, DEMO_KEY_FILE);
    rc = 0;
done:
    close_locked(st, &lock);
    return rc;
}

static int org_reminder_days(const char *data_dir, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(org_reminder_days_usage, stdout);
        return 0;
    }
    int64_t id;
    int32_t days[WALLET_REMINDER_DAYS_MAX];
    size_t day_count;
    if (argc != 2) {
        fprintf(stderr, "tally: org reminder-days wants an organization ID and days\n%s",
                org_reminder_days_usage);
        return 2;
    }
    if (!org_id_arg(argv[0], "reminder-days", org_reminder_days_usage, &id))
        return 2;
    if (!wallet_reminder_days_parse(argv[1], days, &day_count)) {
        fprintf(stderr, "tally: reminder days want 1 to %d distinct days in 1..%d, such as 30,7\n",
                WALLET_REMINDER_DAYS_MAX, WALLET_REMINDER_DAYS_LIMIT);
        return 2;
    }
    struct store_dir_lock lock;
    struct store *st = open_existing(data_dir, false, &lock);
    if (!st)
        return 1;
    struct arena a;
    arena_init(&a);
    struct store_org org;
    int rc = 1;
    enum store_status found = store_org_get(store_conn(st), id, &org, &a);
    if (found == STORE_NOT_FOUND) {
        fprintf(stderr, "tally: no organization %lld in %s\n", (long long)id, data_dir);
    } else if (found != STORE_OK || store_begin(st) != STORE_OK ||
               store_org_set_reminder_days(st, id, argv[1]) != STORE_OK ||
               store_commit(st) != STORE_OK) {
        fprintf(stderr, "tally: cannot change the reminders: %s\n", store_errmsg(store_conn(st)));
    } else {
        printf("organization %lld \"%s\": credits.expiring_soon recorded %s days before a grant "
               "expires, from tallyd's next start\n",
               (long long)id, org.name, argv[1]);
        rc = 0;
    }
    arena_free(&a);
    close_locked(st, &lock);
    return rc;
}

/*
 * The backup the docs gave, sqlite3's `.backup`, never finished while tallyd took writes: it
 * starts over whenever another process commits between its steps (an audit's ran over 12
 * minutes). store_backup copies in one read transaction, and takes no lock: it only reads.
 */
static int backup(const char *data_dir, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(backup_usage, stdout);
        return 0;
    }
    if (argc != 1 || argv[0][0] == '-' || !argv[0][0]) {
        fprintf(stderr, "tally: backup wants one FILE%s\n%s",
                argc >= 1 && strcmp(argv[0], "--data-dir") == 0
                    ? " (--data-dir goes before the command)"
                    : "",
                backup_usage);
        return 2;
    }
    char err[STORE_ERR_MAX];
    struct store_backup_result done;
    if (!store_backup(data_dir, argv[0], &done, err)) {
        fprintf(stderr, "tally: %s\n", err);
        return 1;
    }
    printf("backed up %s/%s to %s (schema version %d, %lld bytes)\n", data_dir, STORE_DB_FILE,
           argv[0], done.schema_version, (long long)done.bytes);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tally: the backup %s is made, but standard output failed\n", argv[0]);
        return 1;
    }
    return 0;
}

/*
 * Restoring by hand was copying tally.db back, which left a crashed run's tally.db-wal beside
 * it: SQLite replayed that log onto the older file, and tallyd served the damaged store (an
 * audit). store_restore checks the backup and removes what belonged to the replaced store.
 */
static int restore(const char *data_dir, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(restore_usage, stdout);
        return 0;
    }
    if (argc != 1 || argv[0][0] == '-' || !argv[0][0]) {
        fprintf(stderr, "tally: restore wants one BACKUP file%s\n%s",
                argc >= 1 && strcmp(argv[0], "--data-dir") == 0
                    ? " (--data-dir goes before the command)"
                    : "",
                restore_usage);
        return 2;
    }
    const char *backup = argv[0];
    char err[STORE_ERR_MAX];
    struct store_dir_lock lock;
    if (!store_lock(data_dir, &lock, err)) {
        fprintf(stderr, "tally: %s\n", err);
        return 1;
    }
    static const char *const also_remove[] = {SNAPSHOT_FILE, NULL};
    struct store_restore_result done;
    bool ok = store_restore(data_dir, backup, also_remove, &done, err);
    store_unlock(&lock);
    if (!ok) {
        fprintf(stderr, "tally: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < done.removed_count; i++)
        printf("removed %s/%s (the replaced store's)\n", data_dir, done.removed[i]);
    printf("restored %s as %s/%s (schema version %d)\n", backup, data_dir, STORE_DB_FILE,
           done.schema_version);
    if (done.schema_version < store_latest_schema_version())
        printf("tallyd's next start upgrades it to schema version %d, for good\n",
               store_latest_schema_version());
    return 0;
}

static int run(int argc, char **argv)
{
    const char *data_dir = "./data";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--data-dir") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "tally: --data-dir needs a directory\n%s", usage);
                return 2;
            }
            data_dir = argv[++i];
            continue;
        }
        fprintf(stderr, "tally: unknown option '%s'\n%s", argv[i], usage);
        return 2;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[i], "org") == 0) {
        if (i + 1 < argc && is_help(argv[i + 1])) {
            fputs(org_usage, stdout);
            return 0;
        }
        if (i + 1 < argc && strcmp(argv[i + 1], "create") == 0)
            return org_create(data_dir, argc - i - 2, argv + i + 2);
        if (i + 1 < argc && strcmp(argv[i + 1], "list") == 0)
            return org_list(data_dir, argc - i - 2, argv + i + 2);
        if (i + 1 < argc && strcmp(argv[i + 1], "rotate-key") == 0)
            return org_rotate_key(data_dir, argc - i - 2, argv + i + 2);
        if (i + 1 < argc && strcmp(argv[i + 1], "reminder-days") == 0)
            return org_reminder_days(data_dir, argc - i - 2, argv + i + 2);
        if (i + 1 < argc)
            fprintf(stderr, "tally: unknown org command '%s'\n%s", argv[i + 1], org_usage);
        else
            fprintf(stderr,
                    "tally: org wants a command: create, list, rotate-key or "
                    "reminder-days\n%s",
                    org_usage);
        return 2;
    }
    if (strcmp(argv[i], "backup") == 0)
        return backup(data_dir, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "restore") == 0)
        return restore(data_dir, argc - i - 1, argv + i + 1);
    fprintf(stderr, "tally: unknown command '%s'\n%s", argv[i], usage);
    return 2;
}

int main(int argc, char **argv)
{
    return cmdline_run("tally", argc, argv, run);
}
