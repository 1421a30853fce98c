/*
 * store/events.c: stored events (event_blocks, their summaries, the count per code), the index
 * of recurring events, the history floors a metric's deletion draws, and every read of
 * events: the start-up scan, by id, one by lago id, a page of a list.
 *
 * Shape: events are kept a block per command (store/event_block.h), each with a summary (its
 * time range, its one subscription and code when it has one, a bloom filter) that lets a list
 * pass over blocks without decoding them; the API above is still one event at a time. Its SQL
 * is in store.c's table, as every family's.
 */
#include "store/store_internal.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- events -------------------------------------------------------------------------------- */

/* Events are kept a block per command (store/event_block.h); every function below reads
 * or writes blocks, and the API above them is still one event at a time. */

/* Inserts the summary of `count` events (one block's) with s (EVENT_SUMMARY_INSERT). */
bool store_insert_summary(sqlite3_stmt *s, const struct store_event *events, size_t count)
{
    struct event_block_summary sum;
    event_block_summarize(events, count, &sum);
    sqlite3_bind_int64(s, 1, events[0].org_id);
    sqlite3_bind_int64(s, 2, events[0].id);
    sqlite3_bind_int64(s, 3, (int64_t)count);
    sqlite3_bind_int64(s, 4, sum.ts_min);
    sqlite3_bind_int64(s, 5, sum.ts_max);
    bind_text(s, 6, sum.sub);
    bind_text(s, 7, sum.code);
    sqlite3_bind_blob(s, 8, sum.bloom, sizeof sum.bloom, SQLITE_STATIC);
    bool ok = sqlite3_step(s) == SQLITE_DONE;
    sqlite3_reset(s);
    return ok;
}

/* One run of `count` events (one organization's, consecutive ids) as one block row. */
static enum store_status insert_block(struct store *st, const struct store_event *events,
                                      size_t count)
{
    buf_reset(&st->block);
    event_block_encode(&st->block, events, count);
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_EVENT_BLOCK_INSERT);
    if (buf_failed(&st->block) || !s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, events[0].id);
    sqlite3_bind_int64(s, 2, events[0].org_id);
    sqlite3_bind_int64(s, 3, (int64_t)count);
    sqlite3_bind_blob(s, 4, st->block.data, (int)st->block.len, SQLITE_STATIC);
    if (step_done(s) != STORE_OK || sqlite3_changes(st->conn.db) != 1)
        return STORE_ERROR; /* not above every stored event */
    s = store_stmt(&st->conn, STMT_EVENT_SUMMARY_INSERT);
    if (!s || !store_insert_summary(s, events, count))
        return STORE_ERROR;
    s = store_stmt(&st->conn, STMT_EVENT_COUNT_ADD);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, events[0].org_id);
    sqlite3_bind_int64(s, 2, (int64_t)count);
    return step_done(s);
}

enum store_status store_events_insert(struct store *st, const struct store_event *events,
                                      size_t count)
{
    for (size_t run = 0; run < count;) {
        size_t end = run + 1;
        while (end < count && events[end].org_id == events[run].org_id &&
               events[end].id == events[end - 1].id + 1)
            end++;
        if (insert_block(st, events + run, end - run) != STORE_OK)
            return STORE_ERROR;
        run = end;
    }
    return STORE_OK;
}

enum store_status store_recurring_event_note(struct store *st, const struct store_event *e)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_RECURRING_EVENT_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->org_id);
    bind_text(s, 2, e->external_subscription_id);
    bind_text(s, 3, e->code);
    sqlite3_bind_int64(s, 4, e->id);
    sqlite3_bind_int64(s, 5, e->subscription_id);
    sqlite3_bind_int64(s, 6, e->timestamp);
    bind_text(s, 7, e->properties_json);
    bind_text(s, 8, e->precise_total_amount_cents);
    sqlite3_bind_int64(s, 9, e->created_at);
    return step_done(s);
}

enum store_status store_recurring_event_each(struct store_conn *c, int64_t org_id,
                                             const char *external_subscription_id, const char *code,
                                             int64_t customer_id, enum store_recurring_part part,
                                             tally_time from, int64_t except_subscription_id,
                                             int64_t after_id,
                                             bool (*fn)(const struct store_event *e, void *ctx),
                                             void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_RECURRING_EVENT_IDS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, external_subscription_id);
    bind_text(s, 3, code);
    sqlite3_bind_int64(s, 4, from);
    sqlite3_bind_int64(s, 5, except_subscription_id);
    sqlite3_bind_int64(s, 6, customer_id);
    sqlite3_bind_int64(s, 7, after_id);
    sqlite3_bind_int(s, 8, part == STORE_RECURRING_CARRIED ? 0 : 1);
    int rc = SQLITE_DONE;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_event e = {
            .id = sqlite3_column_int64(s, 0),
            .org_id = org_id,
            .subscription_id = sqlite3_column_int64(s, 1),
            .external_subscription_id = external_subscription_id,
            .code = code,
            .timestamp = sqlite3_column_int64(s, 2),
            .properties_json = (const char *)sqlite3_column_text(s, 3),
            .precise_total_amount_cents = (const char *)sqlite3_column_text(s, 4),
            .created_at = sqlite3_column_int64(s, 5),
        };
        ok = e.properties_json && fn(&e, ctx);
    }
    ok = ok && rc == SQLITE_DONE;
    sqlite3_reset(s);
    return ok ? STORE_OK : STORE_ERROR;
}

enum store_status store_recurring_late_count(struct store_conn *c, int64_t org_id,
                                             const char *external_subscription_id,
                                             int64_t customer_id, tally_time from, tally_time to,
                                             int64_t *count)
{
    sqlite3_stmt *s = store_stmt(c, STMT_RECURRING_LATE_COUNT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, external_subscription_id);
    sqlite3_bind_int64(s, 3, from);
    sqlite3_bind_int64(s, 4, to);
    sqlite3_bind_int64(s, 5, customer_id);
    bool ok = sqlite3_step(s) == SQLITE_ROW;
    *count = ok ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return ok ? STORE_OK : STORE_ERROR;
}

/*
 * How many of the organization's events of `code` have ids in (after, through]: read from
 * the blocks' summaries newest first, down to the one holding event after + 1; a block of
 * one code is counted from its summary, and only a mixed one whose bloom may hold the code is
 * read. (A deletion pays this once, so that no list has to.)
 */
static enum store_status count_code_events(struct store_conn *c, int64_t org_id, const char *code,
                                           int64_t after, int64_t through, int64_t *count)
{
    *count = 0;
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_CODE_SUMMARIES);
    sqlite3_stmt *data = store_stmt(c, STMT_EVENT_BLOCK_DATA);
    if (!s || !data)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    sqlite3_bind_int64(s, 2, through);
    int rc = SQLITE_DONE;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(s, 0), last = first + sqlite3_column_int64(s, 1) - 1;
        if (last <= after)
            break; /* this block and the older ones: counted when the line was drawn there */
        int64_t lo = first > after ? first : after + 1, hi = last < through ? last : through;
        const char *only = (const char *)sqlite3_column_text(s, 2);
        if (only) {
            *count += strcmp(only, code) == 0 ? hi - lo + 1 : 0;
            continue;
        }
        const uint8_t *bloom = sqlite3_column_blob(s, 3);
        if (bloom && sqlite3_column_bytes(s, 3) == EVENT_BLOCK_BLOOM_BYTES &&
            !event_block_may_hold(bloom, EVENT_BLOCK_CODE, code))
            continue;
        struct event_block_reader rd;
        struct store_event e;
        sqlite3_bind_int64(data, 1, first);
        ok = sqlite3_step(data) == SQLITE_ROW && store_open_block(data, &rd);
        while (ok && event_block_next(&rd, &e))
            *count += e.id >= lo && e.id <= hi && strcmp(e.code, code) == 0;
        ok = ok && rd.in.ok;
        sqlite3_reset(data);
    }
    ok = ok && (rc == SQLITE_ROW || rc == SQLITE_DONE);
    sqlite3_reset(s);
    return ok ? STORE_OK : STORE_ERROR;
}

/* How far the code's deletions hide its events (0: none). */
static enum store_status deleted_through(struct store_conn *c, int64_t org_id, const char *code,
                                         int64_t *through)
{
    sqlite3_stmt *s = store_stmt(c, STMT_METRIC_FLOOR_DELETED);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, code);
    enum store_status r = read_number(s, through);
    return r == STORE_OK ? STORE_OK : STORE_ERROR;
}

enum store_status store_metric_history_end(struct store *st, int64_t org_id, const char *code,
                                           int64_t last_event_id, bool deleted)
{
    sqlite3_stmt *s = store_stmt(&st->conn, STMT_METRIC_FLOOR_RAISE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, code);
    sqlite3_bind_int64(s, 3, last_event_id);
    int64_t through, hidden;
    if (step_done(s) != STORE_OK ||
        (deleted && deleted_through(&st->conn, org_id, code, &through) != STORE_OK))
        return STORE_ERROR;
    if (!deleted || last_event_id <= through)
        return STORE_OK;
    if (count_code_events(&st->conn, org_id, code, through, last_event_id, &hidden) != STORE_OK ||
        !(s = store_stmt(&st->conn, STMT_METRIC_FLOOR_HIDE)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, code);
    sqlite3_bind_int64(s, 3, last_event_id);
    sqlite3_bind_int64(s, 4, hidden);
    return step_done(s);
}

enum store_status store_event_hidden(struct store_conn *c, int64_t org_id, const char *code,
                                     int64_t id, bool *hidden)
{
    int64_t through;
    enum store_status r = deleted_through(c, org_id, code, &through);
    *hidden = r == STORE_OK && id <= through;
    return r;
}

enum store_status store_metric_history_floor(struct store_conn *c, int64_t org_id, const char *code,
                                             int64_t *last_event_id)
{
    sqlite3_stmt *s = store_stmt(c, STMT_METRIC_FLOOR_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    bind_text(s, 2, code);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *last_event_id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : STORE_ERROR;
}

enum store_status store_event_last_id(struct store_conn *c, int64_t *id)
{
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_LAST_ID);
    if (!s || sqlite3_step(s) != SQLITE_ROW)
        return STORE_ERROR;
    *id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return STORE_OK;
}

enum store_status store_event_count(struct store_conn *c, int64_t org_id, int64_t *stored)
{
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_COUNT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    enum store_status r = read_number(s, stored);
    return r == STORE_OK ? STORE_OK : STORE_ERROR;
}

/* Opens the block in the current row of s (first_id, org_id, data). */
bool store_open_block(sqlite3_stmt *s, struct event_block_reader *r)
{
    const void *data = sqlite3_column_blob(s, 2);
    return event_block_open(r, data, (size_t)sqlite3_column_bytes(s, 2), sqlite3_column_int64(s, 0),
                            sqlite3_column_int64(s, 1));
}

enum store_status store_event_each(struct store_conn *c, int64_t from_id,
                                   bool (*fn)(const struct store_event *e, void *ctx), void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_IDENTITIES);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, from_id);
    int rc;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct event_block_reader r;
        struct store_event e;
        ok = store_open_block(s, &r);
        while (ok && event_block_next(&r, &e))
            ok = e.id < from_id || fn(&e, ctx);
        ok = ok && r.in.ok;
    }
    sqlite3_reset(s);
    return ok && rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Finds event `id` in its block (the row stays current in s until the caller resets it). */
static enum store_status find_in_block(sqlite3_stmt *s, int64_t id, struct store_event *out)
{
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return STORE_NOT_FOUND;
    struct event_block_reader r;
    if (rc != SQLITE_ROW || !store_open_block(s, &r))
        return STORE_ERROR;
    while (event_block_next(&r, out))
        if (out->id == id)
            return STORE_OK;
    return r.in.ok ? STORE_NOT_FOUND : STORE_ERROR;
}

enum store_status store_event_raw(struct store_conn *c, int64_t id,
                                  bool (*fn)(const struct store_event *e, void *ctx), void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_BLOCK_OF);
    if (!s)
        return STORE_ERROR;
    struct store_event e;
    enum store_status r = find_in_block(s, id, &e);
    if (r == STORE_OK && !fn(&e, ctx))
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}

enum store_status store_events_by_id(struct store_conn *c, const int64_t *ids, size_t count,
                                     bool (*fn)(const struct store_event *e, void *ctx), void *ctx)
{
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_BLOCK_OF);
    if (!s)
        return STORE_ERROR;
    struct event_block_reader r = {0};
    bool open = false; /* r reads the block in s's current row */
    enum store_status status = STORE_OK;
    for (size_t i = 0; status == STORE_OK && i < count; i++) {
        assert(i == 0 || ids[i] > ids[i - 1]);
        /* the block read so far may hold it: ids in a block are consecutive */
        if (!open || ids[i] < r.next_id || ids[i] >= r.next_id + (int64_t)r.left) {
            sqlite3_reset(s);
            sqlite3_bind_int64(s, 1, ids[i]);
            int rc = sqlite3_step(s);
            open = rc == SQLITE_ROW && store_open_block(s, &r);
            if (!open) {
                status = rc == SQLITE_DONE ? STORE_NOT_FOUND : STORE_ERROR;
                break;
            }
        }
        struct store_event e;
        bool found = false;
        while (!found && event_block_next(&r, &e))
            found = e.id == ids[i];
        if (!found)
            status = r.in.ok ? STORE_NOT_FOUND : STORE_ERROR;
        else if (!fn(&e, ctx))
            status = STORE_ERROR;
    }
    sqlite3_reset(s);
    return status;
}

/* An event decoded from a block, copied into `a` (the block goes with the statement's row),
 * with its subscription's and customer's lago ids. */
static bool keep_event(struct store_conn *c, const struct store_event *e, struct store_event *out,
                       struct arena *a)
{
    *out = *e;
    out->transaction_id = arena_strndup(a, e->transaction_id, strlen(e->transaction_id));
    out->external_subscription_id =
        arena_strndup(a, e->external_subscription_id, strlen(e->external_subscription_id));
    out->code = arena_strndup(a, e->code, strlen(e->code));
    out->properties_json = arena_strndup(a, e->properties_json, strlen(e->properties_json));
    if (e->precise_total_amount_cents)
        out->precise_total_amount_cents =
            arena_strndup(a, e->precise_total_amount_cents, strlen(e->precise_total_amount_cents));
    if (!out->transaction_id || !out->external_subscription_id || !out->code ||
        !out->properties_json ||
        (e->precise_total_amount_cents && !out->precise_total_amount_cents))
        return false;
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_LAGO_IDS);
    if (!s)
        return false;
    sqlite3_bind_int64(s, 1, e->subscription_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) { /* (a subscription row is never removed; without one, none shown) */
        snprintf(out->subscription_lago_id, sizeof out->subscription_lago_id, "%s",
                 (const char *)sqlite3_column_text(s, 0));
        snprintf(out->customer_lago_id, sizeof out->customer_lago_id, "%s",
                 (const char *)sqlite3_column_text(s, 1));
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

enum store_status store_event_get(struct store_conn *c, int64_t org_id, int64_t id,
                                  struct store_event *out, struct arena *a)
{
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_BLOCK_OF);
    if (!s)
        return STORE_ERROR;
    struct store_event e;
    enum store_status r = find_in_block(s, id, &e);
    if (r == STORE_OK && e.org_id != org_id)
        r = STORE_NOT_FOUND;
    if (r == STORE_OK && !keep_event(c, &e, out, a))
        r = STORE_ERROR;
    sqlite3_reset(s);
    return r;
}

/* An organization's codes whose deletions hide events (STMT_EVENT_HIDDEN), in code order. */
struct hidden_codes {
    size_t count;
    const char **codes;
    int64_t *through; /* the code's events up to this id are hidden */
    int64_t events;   /* how many they are, all codes together */
    int64_t newest;   /* the greatest `through`: no event after it is hidden */
};

static enum store_status hidden_codes_read(struct store_conn *c, int64_t org_id,
                                           struct hidden_codes *h, struct arena *a)
{
    *h = (struct hidden_codes){0};
    sqlite3_stmt *s = store_stmt(c, STMT_EVENT_HIDDEN);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, org_id);
    size_t cap = 0;
    int rc = SQLITE_DONE;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (h->count == cap) { /* few: an organization deletes metrics by hand */
            size_t more = cap ? cap * 2 : 8;
            const char **codes = arena_alloc(a, sizeof *codes * more);
            int64_t *through = arena_alloc(a, sizeof *through * more);
            ok = codes && through;
            if (ok && cap) {
                memcpy(codes, h->codes, sizeof *codes * cap);
                memcpy(through, h->through, sizeof *through * cap);
            }
            h->codes = codes;
            h->through = through;
            cap = more;
        }
        const char *code = (const char *)sqlite3_column_text(s, 0);
        ok = ok && code && (h->codes[h->count] = arena_strndup(a, code, strlen(code))) != NULL;
        if (!ok)
            break;
        h->through[h->count] = sqlite3_column_int64(s, 1);
        h->events += sqlite3_column_int64(s, 2);
        if (h->through[h->count] > h->newest)
            h->newest = h->through[h->count];
        h->count++;
    }
    ok = ok && rc == SQLITE_DONE;
    sqlite3_reset(s);
    return ok ? STORE_OK : STORE_ERROR;
}

/* How far the code's events are hidden (0: none), by bisection: the codes are in SQLite's
 * BINARY order, which strcmp's is. */
static int64_t hidden_through(const struct hidden_codes *h, const char *code)
{
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->codes[mid], code);
        if (c == 0)
            return h->through[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* A deleted metric's event: Lago's default scope (deleted_at IS NULL) leaves it out. */
static bool event_hidden(const struct hidden_codes *h, const struct store_event *e)
{
    return e->id <= h->newest && e->id <= hidden_through(h, e->code);
}

static bool event_matches(const struct store_event *e, const struct store_event_filter *f)
{
    return (!f->code || strcmp(e->code, f->code) == 0) &&
           (!f->external_subscription_id ||
            strcmp(e->external_subscription_id, f->external_subscription_id) == 0) &&
           (!f->has_from || e->timestamp >= f->from) && (!f->has_to || e->timestamp <= f->to);
}

enum block_match { BLOCK_NONE, BLOCK_SOME, BLOCK_ALL };

/* How the events of the block whose summary is the current row of s (STMT_EVENT_ORG_SUMMARIES)
 * stand against f, as far as the summary tells. */
static enum block_match summary_match(sqlite3_stmt *s, const struct store_event_filter *f)
{
    tally_time ts_min = sqlite3_column_int64(s, 2), ts_max = sqlite3_column_int64(s, 3);
    if ((f->has_from && ts_max < f->from) || (f->has_to && ts_min > f->to))
        return BLOCK_NONE;
    bool all = (!f->has_from || ts_min >= f->from) && (!f->has_to || ts_max <= f->to);
    const uint8_t *bloom = sqlite3_column_blob(s, 6);
    bool has_bloom = bloom && sqlite3_column_bytes(s, 6) == EVENT_BLOCK_BLOOM_BYTES;
    const struct {
        const char *wanted;
        int column;
        enum event_block_value kind;
    } values[] = {{f->external_subscription_id, 4, EVENT_BLOCK_SUB},
                  {f->code, 5, EVENT_BLOCK_CODE}};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        if (!values[i].wanted)
            continue;
        const char *only = (const char *)sqlite3_column_text(s, values[i].column);
        if (only) { /* every event of the block has this one */
            if (strcmp(only, values[i].wanted) != 0)
                return BLOCK_NONE;
            continue;
        }
        if (has_bloom && !event_block_may_hold(bloom, values[i].kind, values[i].wanted))
            return BLOCK_NONE;
        all = false;
    }
    return all ? BLOCK_ALL : BLOCK_SOME;
}

/* `m` (how the block of the current row of s stands against the filter) once hidden events
 * are left out: none left if the summary's one code hides them all, some if it may hide
 * some. */
static enum block_match hidden_match(sqlite3_stmt *s, const struct hidden_codes *h,
                                     enum block_match m)
{
    int64_t first = sqlite3_column_int64(s, 0), last = first + sqlite3_column_int64(s, 1) - 1;
    if (m == BLOCK_NONE || first > h->newest)
        return m;
    const char *only = (const char *)sqlite3_column_text(s, 5);
    if (only) {
        int64_t through = hidden_through(h, only);
        return through >= last ? BLOCK_NONE : through >= first ? BLOCK_SOME : m;
    }
    const uint8_t *bloom = sqlite3_column_blob(s, 6);
    bool has_bloom = bloom && sqlite3_column_bytes(s, 6) == EVENT_BLOCK_BLOOM_BYTES;
    for (size_t i = 0; i < h->count; i++)
        if (h->through[i] >= first &&
            (!has_bloom || event_block_may_hold(bloom, EVENT_BLOCK_CODE, h->codes[i])))
            return BLOCK_SOME;
    return m;
}

/*
 * Newest first: the organization's blocks from the last, each read from its end. Without a
 * filter the total is the kept count less the hidden events (counted when their metric was
 * deleted) and the walk stops at the page; with one, every block's summary is read to count
 * the matches, and a block itself only where its summary cannot tell (or the page lies in it):
 * blocks that cannot match are skipped, and blocks whose every event matches are counted
 * whole. A block that may hold hidden events (at or below a deleted code's line, of that code
 * or mixed with its bloom saying it may hold it) is read, its hidden events left out.
 */
enum store_status store_event_list(struct store_conn *c, int64_t org_id,
                                   const struct store_event_filter *f, int64_t offset,
                                   int64_t limit, struct store_event **out, size_t *count,
                                   int64_t *total, struct arena *a)
{
    *out = NULL;
    *count = 0;
    *total = 0;
    bool filtered = f->code || f->external_subscription_id || f->has_from || f->has_to;
    int64_t kept;
    if (store_event_count(c, org_id, &kept) != STORE_OK)
        return STORE_ERROR;
    struct hidden_codes hidden;
    if (hidden_codes_read(c, org_id, &hidden, a) != STORE_OK)
        return STORE_ERROR;
    if (limit < 0)
        limit = 0;
    struct store_event *items = limit ? arena_alloc(a, sizeof *items * (size_t)limit) : NULL;
    struct store_event *block = NULL; /* one block's events, to walk from its end */
    size_t block_cap = 0;
    int64_t matched = 0;
    int rc = SQLITE_DONE;
    sqlite3_stmt *s = NULL, *data = store_stmt(c, STMT_EVENT_BLOCK_DATA);
    bool ok = (!limit || items) && data && (s = store_stmt(c, STMT_EVENT_ORG_SUMMARIES)) != NULL;
    if (ok)
        sqlite3_bind_int64(s, 1, org_id);
    while (ok && (filtered || matched < offset + limit) && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(s, 1);
        enum block_match m = filtered ? summary_match(s, f) : BLOCK_ALL;
        if (hidden.count)
            m = hidden_match(s, &hidden, m);
        if (m == BLOCK_NONE)
            continue;
        if (m == BLOCK_ALL && (matched + n <= offset || matched >= offset + limit)) {
            matched += n; /* not in the page: counted, not read */
            continue;
        }
        struct event_block_reader rd;
        sqlite3_bind_int64(data, 1, sqlite3_column_int64(s, 0));
        ok = sqlite3_step(data) == SQLITE_ROW && store_open_block(data, &rd) &&
             (int64_t)event_block_count(&rd) == n;
        if (ok && (size_t)n > block_cap) {
            block = arena_alloc(a, sizeof *block * (size_t)n);
            block_cap = block ? (size_t)n : 0;
            ok = block != NULL;
        }
        size_t got = 0;
        while (ok && got < (size_t)n && event_block_next(&rd, &block[got]))
            got++;
        ok = ok && got == (size_t)n;
        for (size_t k = got; ok && k-- > 0;) {
            if (!event_matches(&block[k], f) || (hidden.count && event_hidden(&hidden, &block[k])))
                continue;
            if (matched >= offset && matched < offset + limit) {
                ok = keep_event(c, &block[k], &items[*count], a);
                (*count)++;
            }
            matched++;
        }
        sqlite3_reset(data);
    }
    ok = ok && (rc == SQLITE_ROW || rc == SQLITE_DONE); /* ROW: stopped at a full page */
    if (s)
        sqlite3_reset(s);
    if (!ok)
        return STORE_ERROR;
    *out = items;
    *total = filtered ? matched : kept - hidden.events;
    return STORE_OK;
}
