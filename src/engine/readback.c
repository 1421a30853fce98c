/*
 * engine/readback.c: what a start reads back, and the snapshots that spare it the reading.
 *
 * The identity set (every accepted event's identity -> its id) and the live usages are
 * memory only: a start takes the identities from the snapshot a clean stop or a running
 * writer saved (engine/snapshot.h holds the file's format, this file the writer's side of
 * it), and scans the stored events after it; the same scan rebuilds every live usage after a
 * usage left the book (readback_rescan_usage). One file because the snapshot's mark and the
 * scan's starting point are the same question: the first event any live usage may still count
 * (usage_scan_from).
 *
 * Threads: the writer's (engine_start runs these before the writer thread starts, and a
 * snapshot's child process only writes the file).
 */
#include "engine/readback.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/ingest.h"
#include "engine/wallets.h"
#include "engine/writer.h"
#include "json/event_json.h"
#include "sys/entropy.h"

/* Subscriptions the startup scan found not live: their events feed no usage. */
/*
 * Identities read by the start-up scan wait this many events between their fingerprint's
 * prefetch and their insert: the set's slots are random cache misses, and taken one by one
 * they were a quarter of the scan.
 */
#define SCAN_PREFETCH_DEPTH 16

struct scan_pending {
    struct identity identity;
    uint64_t id;
};

struct scan {
    struct engine *e;
    struct dedup not_live;
    struct arena scratch;
    /* Identities are taken from this id on: those below are known already (a snapshot held
     * them, or this rescan only rebuilds usage). */
    int64_t identities_from;
    int64_t scanned;
    bool ok;
    struct scan_pending pending[SCAN_PREFETCH_DEPTH]; /* a ring, oldest at `next` once full */
    size_t pending_count, next;
    /* A start that reads every stored event counts them per organization (e->orgs' order;
     * NULL otherwise), and those of an organization the engine does not know, for
     * counts_agree. `org_hint`: the last one found (a block is one organization's). */
    int64_t *org_events;
    int64_t orphan_events;
    size_t org_hint;
};

/* Feeds one stored event to the live usage of its subscription (built on first sight). */
/* The usage of a live subscription row: the book's, or built now. */
static bool usage_of_row(struct scan *sc, const struct store_subscription *row, tally_time now,
                         struct usage **out)
{
    struct engine *e = sc->e;
    const char *failed;
    *out = usage_book_find(&e->usage, row->sub.id);
    if (!*out)
        *out = usage_book_get(&e->usage, e->store, e->tzdb, row, now, e->fingerprint_key, &failed);
    return *out != NULL;
}

/*
 * The usage (*out) of the subscription that held the stored event's external id at `at`, if
 * that is another subscription than the event's own, is live and is customer_id's (the event's
 * subscription's customer: another customer who took the external id over takes none of its
 * events); *out untouched otherwise.
 */
static bool usage_of_other(struct scan *sc, const struct store_event *stored, tally_time at,
                           tally_time now, int64_t customer_id, struct usage **out)
{
    struct store_subscription row;
    enum store_status s =
        store_subscription_at(store_conn(sc->e->store), stored->org_id,
                              stored->external_subscription_id, at, &row, &sc->scratch);
    if (s == STORE_ERROR)
        return false;
    if (s == STORE_NOT_FOUND || row.sub.id == stored->subscription_id ||
        !subscription_is_live(&row.sub, now) || row.sub.customer_id != customer_id)
        return true;
    return usage_of_row(sc, &row, now, out);
}

/*
 * A late event of a recurring metric that arrived after its subscription ended (`end`) was
 * carried into the subscription then live under the same external id for the same customer
 * (live_usage_of), and debited there: that one's usage is built (*out), so that it notes the
 * event (late_from) and a re-pricing finds the debit in the book. Its value comes from the
 * recurring index, as for any build, which reads the customer's own events only: another
 * customer's subscription under the id takes neither. An audit found an upgraded
 * subscription's late event, its successor's only debit of the period, left out of the book by
 * every start (tests/api/restart_usage.test.mjs).
 */
static bool carried_to_live(struct scan *sc, const struct store_event *stored, tally_time now,
                            tally_time end, struct usage **out)
{
    struct engine *e = sc->e;
    /* Arrived while it lived, or sent ahead past its end: not carried. One of its end's very
     * instant is its own late event when it arrived after it (a termination's instant is the
     * subscription's: ingest_resolve_subscription), and was carried as any; arrived at that instant
     * (a test clock that had not moved), it came before the end or found no other subscription
     * live then (one starting then would have taken it): not carried. */
    if (stored->created_at < end || stored->timestamp > end ||
        (stored->timestamp == end && stored->created_at == end))
        return true;
    bool recurring = false; /* (a deleted metric's: nothing charges for it) */
    enum store_status m = sub_cache_metric_recurring(&e->subscriptions, store_conn(e->store),
                                                     stored->org_id, stored->code, &recurring);
    if (m == STORE_ERROR)
        return false;
    if (!recurring)
        return true;
    struct store_subscription own; /* (read for these late events only: few) */
    if (store_subscription_get(store_conn(e->store), stored->org_id, stored->subscription_id, &own,
                               &sc->scratch) != STORE_OK)
        return false;
    return usage_of_other(sc, stored, now, now, own.sub.customer_id, out);
}

/*
 * The usage a stored event counts in (*out NULL: none): its subscription's, unless it was sent
 * ahead and its time falls outside that subscription's life, as for an event sent to a downgrade
 * since canceled, replaced or overtaken by an upgrade, or past an end a plan change set since.
 * Such an event counts in the subscription of the same external id covering its time if it is
 * the same customer's, as Lago reads events by external id (a recurring metric's is carried
 * there from the index already, which reads the customer's own too).
 * Subscriptions not live are remembered with their end: their events before it are skipped
 * without a read, but for a recurring metric's that arrived after it (carried_to_live).
 */
static bool usage_of_stored(struct scan *sc, const struct store_event *stored, tally_time now,
                            struct usage **out)
{
    struct engine *e = sc->e;
    struct siphash128 key = {(uint64_t)stored->subscription_id, 1};
    uint64_t ended;
    *out = NULL;
    /* sent ahead: timestamped after it arrived (an event at the instant its subscription then
     * ended arrived while it lived, and is its own) */
    bool ahead = stored->timestamp > stored->created_at;
    if (dedup_find(&sc->not_live, key, 0, &ended) &&
        (stored->timestamp < (tally_time)ended || !ahead))
        return carried_to_live(sc, stored, now, (tally_time)ended, out);
    struct usage *u = usage_book_find(&e->usage, stored->subscription_id);
    if (u && stored->timestamp < u->to) { /* its period's, or a late one: its own */
        *out = u;
        return true;
    }
    struct store_subscription row;
    if (store_subscription_get(store_conn(e->store), stored->org_id, stored->subscription_id, &row,
                               &sc->scratch) != STORE_OK)
        return false;
    tally_time end = subscription_status_at(&row.sub, now) == SUBSCRIPTION_CANCELED
                         ? TIMESTAMP_MIN /* it never started: nothing is its own */
                         : subscription_end(&row.sub);
    if (stored->timestamp < end || !ahead) {
        if (subscription_is_live(&row.sub, now))
            return usage_of_row(sc, &row, now, out);
        return dedup_insert(&sc->not_live, key, 0, (uint64_t)end) != DEDUP_NO_MEMORY &&
               carried_to_live(sc, stored, now, end, out);
    }
    bool recurring = false; /* (a deleted metric's: nothing charges for it) */
    enum store_status m = sub_cache_metric_recurring(&e->subscriptions, store_conn(e->store),
                                                     stored->org_id, stored->code, &recurring);
    if (m == STORE_ERROR)
        return false;
    /* the same customer's (a plan change's): another customer who took the external id over
     * counts none (live it never did; a start did, and its wallet paid for the first owner's
     * event: an audit) */
    return recurring ||
           usage_of_other(sc, stored, stored->timestamp, now, row.sub.customer_id, out);
}

static bool feed_usage(struct scan *sc, const struct store_event *stored)
{
    struct engine *e = sc->e;
    struct usage *u;
    if (!e->tzdb)
        return true;
    if (!usage_of_stored(sc, stored, ingest_org_now(e, stored->org_id), &u))
        return false;
    if (!u)
        return true;
    if (!usage_note(u, stored->id, stored->timestamp))
        return false;
    if (stored->timestamp < u->from && stored->created_at >= u->from) {
        /* arrived in the period, late: a recurring metric's was carried in, and debited */
        bool recurring = false;
        if (sub_cache_metric_recurring(&e->subscriptions, store_conn(e->store), stored->org_id,
                                       stored->code, &recurring) == STORE_ERROR)
            return false;
        if (recurring)
            usage_note_late(u, stored->id, stored->timestamp, stored->created_at);
    }
    if (stored->timestamp < u->from || stored->timestamp >= u->to)
        return true; /* another period's: nothing to add, no properties to read */
    if (stored->subscription_id != u->subscription_id) {
        /* another subscription's, carried in (carried_to_live): a recurring metric's, timestamped
         * in the period, was taken by the build from the recurring index already (carry_recurring,
         * what came in the period), as live; applied again here, a start counted it twice (an
         * audit: the same customer made the external id again from before its time) */
        bool recurring = false;
        if (sub_cache_metric_recurring(&e->subscriptions, store_conn(e->store), stored->org_id,
                                       stored->code, &recurring) == STORE_ERROR)
            return false;
        if (recurring)
            return true;
    }
    struct event ev = {.code = stored->code};
    return event_json_properties_text(&sc->scratch, stored->properties_json, &ev) &&
           event_json_precise_text(stored->precise_total_amount_cents, &ev) &&
           usage_apply_stored(u, &ev, stored->timestamp, (uint64_t)stored->id) == AGGREGATION_OK;
}

static bool insert_pending(struct engine *e, const struct scan_pending *p)
{
    return dedup_insert(&e->identities, p->identity.transaction, p->identity.subscription, p->id) !=
           DEDUP_NO_MEMORY;
}

/* Queues an event's identity for insert, its slot prefetched; inserts the oldest queued once
 * the queue is full. */
static bool queue_identities(struct scan *sc, const struct store_event *stored)
{
    struct engine *e = sc->e;
    if (!stored->external_subscription_id || !stored->transaction_id)
        return false;
    struct scan_pending p = {ingest_identity_of(e, stored->org_id, stored->external_subscription_id,
                                                stored->transaction_id),
                             (uint64_t)stored->id};
    dedup_prefetch(&e->identities, p.identity.transaction);
    if (sc->pending_count < SCAN_PREFETCH_DEPTH) {
        sc->pending[sc->pending_count++] = p;
        return true;
    }
    bool ok = insert_pending(e, &sc->pending[sc->next]);
    sc->pending[sc->next] = p;
    sc->next = (sc->next + 1) % SCAN_PREFETCH_DEPTH;
    return ok;
}

/* Inserts what the queue still holds, oldest first (after the scan's last event). */
static bool drain_identities(struct scan *sc)
{
    for (size_t i = 0; i < sc->pending_count; i++)
        if (!insert_pending(sc->e, &sc->pending[(sc->next + i) % SCAN_PREFETCH_DEPTH]))
            return false;
    sc->pending_count = 0;
    sc->next = 0;
    return true;
}

/* Counts a stored event for its organization (sc->org_events). */
static void count_org_event(struct scan *sc, int64_t org_id)
{
    struct engine *e = sc->e;
    if (sc->org_hint >= e->org_count || e->orgs[sc->org_hint].org_id != org_id) {
        const struct org_state *org = engine_find_org(e, org_id);
        if (!org) {
            sc->orphan_events++;
            return;
        }
        sc->org_hint = (size_t)(org - e->orgs);
    }
    sc->org_events[sc->org_hint]++;
}

/*
 * Whether the events a start read, every stored one, are what event_counts says is stored
 * (false, and err says so, if not or if the counts cannot be read). They always are in a
 * healthy store: the commit that stores events adds them to their organization's count, and
 * no event is ever removed (a metric's deletion hides its events from lists but keeps them,
 * counting the hidden ones apart, in metric_history_floors); organizations are never removed
 * either. They are not in a database that is a mix of two states: a tally.db copied back
 * alone over a directory a crash left, beside the newer store's tally.db-wal, which SQLite
 * replays onto it. An audit's such store started without a word and passed PRAGMA
 * integrity_check, with the newer run's counts and wallet journal over the older file's
 * events and wallets: GET /events counted events it did not list, wallets paid more than
 * their usage, held credits were held by no hold. Such a store is refused, never served: what
 * it holds cannot be told from what it lost. (A start from a snapshot that reads only the
 * later events cannot tell; counting every organization's stored events then would cost what
 * the snapshot spares.)
 */
static bool counts_agree(struct engine *e, const struct scan *sc, char err[STORE_ERR_MAX])
{
    int64_t counted_total = 0;
    size_t off = e->org_count; /* the first organization whose count disagrees */
    int64_t off_counted = 0;
    for (size_t i = 0; i < e->org_count; i++) {
        int64_t counted;
        if (store_event_count(store_conn(e->store), e->orgs[i].org_id, &counted) != STORE_OK) {
            snprintf(err, STORE_ERR_MAX, "engine: cannot read the event counts: %s",
                     store_errmsg(store_conn(e->store)));
            return false;
        }
        counted_total += counted;
        if (counted != sc->org_events[i] && off == e->org_count) {
            off = i;
            off_counted = counted;
        }
    }
    if (off == e->org_count && sc->orphan_events == 0)
        return true;
    char which[128] = "";
    if (off < e->org_count)
        snprintf(which, sizeof which, " (organization %lld: %lld held, %lld counted)",
                 (long long)e->orgs[off].org_id, (long long)sc->org_events[off],
                 (long long)off_counted);
    else
        snprintf(which, sizeof which, " (%lld of an organization it does not have)",
                 (long long)sc->orphan_events);
    /* (it fits whole even with every number 20 characters long) */
    if (snprintf(err, STORE_ERR_MAX,
                 "engine: the store is damaged: tally.db holds %lld events but counts %lld as "
                 "stored%s. Most likely a tally.db was copied back alone over a directory a crash "
                 "left, and SQLite replayed the tally.db-wal there (the replaced store's) onto it: "
                 "events, wallets and holds are a mix. tallyd will not serve it: put a backup in "
                 "place with tally restore (DEVELOPERS.md, \"Upgrades and backups\")",
                 (long long)sc->scanned, (long long)counted_total, which) >= STORE_ERR_MAX)
        err[STORE_ERR_MAX - 1] = '\0';
    return false;
}

/* One stored event at start: its identity, its transaction id, its usage. */
static bool load_event(const struct store_event *stored, void *ctx)
{
    struct scan *sc = ctx;
    sc->scanned++;
    if (sc->org_events)
        count_org_event(sc, stored->org_id);
    sc->ok = (stored->id < sc->identities_from || queue_identities(sc, stored)) &&
             feed_usage(sc, stored);
    if (sc->scratch.total > ((size_t)1 << 20)) { /* keep the scan's memory flat */
        arena_free(&sc->scratch);
        arena_init(&sc->scratch);
    }
    return sc->ok;
}

static int64_t usage_scan_from(struct engine *e);

/* Rebuilds every live usage from one scan of the stored events since the book's earliest
 * reference (all of them after a usage left the book), or since event `floor` if earlier. */
bool readback_rescan_usage_from(struct engine *e, int64_t floor)
{
    struct scan sc = {.e = e, .identities_from = INT64_MAX, .ok = true};
    arena_init(&sc.scratch);
    int64_t from = usage_scan_from(e);
    if (floor < from)
        from = floor;
    usage_book_clear(&e->usage);
    usage_book_hold(&e->usage); /* the late events take their place among the scanned ones */
    bool ok = dedup_init(&sc.not_live, 0) &&
              store_event_each(store_conn(e->store), from, load_event, &sc) == STORE_OK;
    ok = usage_book_settle(&e->usage) && ok;
    e->usage.events_read += (uint64_t)sc.scanned;
    dedup_free(&sc.not_live);
    arena_free(&sc.scratch);
    if (ok)
        e->usage_incomplete = false;
    return ok;
}

bool readback_rescan_usage(struct engine *e)
{
    return readback_rescan_usage_from(e, INT64_MAX);
}

struct stored_identity {
    const uint8_t *key;
    struct siphash128 fingerprint;
};

static bool fingerprint_stored(const struct store_event *stored, void *ctx)
{
    struct stored_identity *p = ctx;
    return event_fingerprint(p->key, stored->org_id, stored->external_subscription_id,
                             stored->transaction_id, &p->fingerprint);
}

/*
 * The sets from the snapshot (engine/snapshot.h), if one is there and the database holds the
 * event its mark ends at (*used): a database restored from an older copy, or another one under
 * the same directory, has not, and the start scans everything instead. Such a file is removed
 * before the start goes on: the new history could store an event of the same identity at its
 * mark (a client resending a batch it had no answer for), and a start after a crash, before a
 * newer snapshot replaced it, took it (an audit: acknowledged events accepted again, the ones
 * lost with the restore refused forever). False if it could not be removed (err says why).
 */
static bool load_snapshot(struct engine *e, struct snapshot_mark *mark, bool *used,
                          char err[STORE_ERR_MAX])
{
    struct engine_start_report *r = &e->start;
    *used = false;
    enum snapshot_status s = snapshot_load(store_data_dir(e->store), e->fingerprint_key, mark,
                                           &e->identities, &e->identity_memory, r->snapshot_note);
    if (s != SNAPSHOT_LOADED)
        return true;
    struct stored_identity last = {.key = e->fingerprint_key};
    bool holds_it = mark->last_event_id <= e->last_event_id;
    if (holds_it && mark->last_event_id > 0)
        holds_it = store_event_raw(store_conn(e->store), mark->last_event_id, fingerprint_stored,
                                   &last) == STORE_OK &&
                   last.fingerprint.lo == mark->last_identity.lo &&
                   last.fingerprint.hi == mark->last_identity.hi;
    if (!holds_it) {
        snprintf(r->snapshot_note, sizeof r->snapshot_note,
                 "it ends at event %lld, which this database does not hold; removed",
                 (long long)mark->last_event_id);
        dedup_free(&e->identities);
        char why[SNAPSHOT_ERR_MAX];
        if (!snapshot_discard(store_data_dir(e->store), why)) {
            snprintf(err, STORE_ERR_MAX,
                     "engine: the snapshot of event identities ends at event %lld, which this "
                     "database does not hold, and %s; remove it before starting",
                     (long long)mark->last_event_id, why);
            return false;
        }
        return true;
    }
    *used = true;
    return true;
}

/* The fingerprint key (made on first start) and the set of every accepted identity. */

/* The start's refusal for a key it could not `what` (read, create), with the disk's error
 * and its advice where the store saw one (an audit found the message say nothing of it). */
static bool key_failure(char err[STORE_ERR_MAX], const char *what)
{
    int code = store_take_disk_error();
    if (code)
        snprintf(err, STORE_ERR_MAX, "engine: cannot %s the event fingerprint key: %s (%s): %s",
                 what, store_error_name(code), store_error_text(code), store_error_advice(code));
    else
        snprintf(err, STORE_ERR_MAX, "engine: cannot %s the event fingerprint key", what);
    return false;
}

bool readback_load_events(struct engine *e, char err[STORE_ERR_MAX])
{
    enum store_status s = store_setting_get(store_conn(e->store), ENGINE_FINGERPRINT_KEY_SETTING,
                                            e->fingerprint_key, sizeof e->fingerprint_key);
    if (s == STORE_NOT_FOUND) {
        if (!entropy_fill(e->fingerprint_key, sizeof e->fingerprint_key)) {
            snprintf(err, STORE_ERR_MAX,
                     "engine: cannot create the event fingerprint key: the system gave no "
                     "random bytes (getrandom)");
            return false;
        }
        if (store_begin(e->store) != STORE_OK ||
            store_setting_put(e->store, ENGINE_FINGERPRINT_KEY_SETTING, e->fingerprint_key,
                              sizeof e->fingerprint_key) != STORE_OK ||
            store_commit(e->store) != STORE_OK) {
            store_rollback(e->store);
            return key_failure(err, "create");
        }
    } else if (s != STORE_OK) {
        return key_failure(err, "read");
    }
    struct scan sc = {.e = e, .identities_from = 1, .ok = true};
    arena_init(&sc.scratch);
    int64_t scan_from = 1;
    bool ok;
    struct snapshot_mark mark;
    int64_t floor = INT64_MAX;
    enum store_status fs =
        store_setting_get(store_conn(e->store), ENGINE_USAGE_FLOOR_SETTING, &floor, sizeof floor);
    if (fs == STORE_ERROR) {
        snprintf(err, STORE_ERR_MAX, "engine: cannot read the usage scan floor");
        return false;
    }
    e->usage_floor = fs == STORE_OK && floor != INT64_MAX;
    bool from_snapshot;
    if (!load_snapshot(e, &mark, &from_snapshot, err))
        return false;
    if (from_snapshot) {
        sc.identities_from = mark.last_event_id + 1;
        scan_from = mark.usage_from < sc.identities_from ? mark.usage_from : sc.identities_from;
        if (e->usage_floor && floor < scan_from)
            scan_from = floor;
        e->start.snapshot_events = mark.last_event_id;
        e->snapshot_events = mark.last_event_id;
        atomic_store(&e->snapshot_events_shown, (uint64_t)mark.last_event_id);
        ok = true;
    } else {
        /* ids are dense (a refused command's are given again), so the last one counts them */
        size_t stored = (size_t)e->last_event_id;
        ok = dedup_init_in(&e->identities, stored, &e->identity_memory);
    }
    /* reading every stored event (a snapshot's live usage may reach back to the first too, as
     * an audit's damaged store's empty one did), the scan counts them for counts_agree */
    if (ok && scan_from <= 1) {
        sc.org_events = calloc(e->org_count ? e->org_count : 1, sizeof *sc.org_events);
        ok = sc.org_events != NULL;
    }
    usage_book_hold(&e->usage); /* the late events take their place among the scanned ones */
    ok = ok && dedup_init(&sc.not_live, 0) &&
         store_event_each(store_conn(e->store), scan_from, load_event, &sc) == STORE_OK &&
         drain_identities(&sc);
    ok = usage_book_settle(&e->usage) && ok;
    e->start.scanned_events = sc.scanned;
    e->usage.events_read += (uint64_t)sc.scanned; /* the start's usages read them (an audit) */
    writer_publish_usage_counters(e);             /* says what the scan's usages passed over */
    dedup_free(&sc.not_live);
    arena_free(&sc.scratch);
    if (!ok)
        snprintf(err, STORE_ERR_MAX, "engine: cannot load the stored events");
    ok = ok && (!sc.org_events || counts_agree(e, &sc, err));
    free(sc.org_events);
    return ok;
}

/* ---- snapshots of the identity set (engine/snapshot.h) ----------------------------------- */

/*
 * The first event id any live usage may still count: its earliest reference. Subscriptions
 * only leave liveness (pending, active, then terminated), so a usage the next start needs is
 * one of these; after a usage left the book nothing is known (1).
 */
static void earliest_reference(struct usage *u, void *ctx)
{
    int64_t *from = ctx;
    for (size_t i = 0; i < u->event_count; i++)
        if (u->events[i].id < *from)
            *from = u->events[i].id;
    /* a late event carried into the period, debited there: without it, a usage debited only
     * through such events would not be built again, and a re-pricing after the start would not
     * give back what it debited (found by tests/api/restart_usage.test.mjs) */
    if (u->late_from != 0 && u->late_from < *from)
        *from = u->late_from;
}

static int64_t usage_scan_from(struct engine *e)
{
    if (e->usage_incomplete)
        return 1;
    int64_t from = e->last_event_id + 1;
    usage_book_each(&e->usage, earliest_reference, &from);
    return from;
}

/* The mark of the sets as they are now (writer or owner, between groups, all of it synced). */
static bool mark_now(struct engine *e, struct snapshot_mark *mark, char err[STORE_ERR_MAX])
{
    *mark = (struct snapshot_mark){e->last_event_id, {0, 0}, usage_scan_from(e)};
    struct stored_identity last = {.key = e->fingerprint_key};
    if (mark->last_event_id > 0 && store_event_raw(store_conn(e->store), mark->last_event_id,
                                                   fingerprint_stored, &last) != STORE_OK) {
        snprintf(err, STORE_ERR_MAX, "snapshot: cannot read event %lld back",
                 (long long)mark->last_event_id);
        return false;
    }
    mark->last_identity = last.fingerprint;
    return true;
}

/* At a clean stop, once a snapshot marks where the rebuilt book reaches: starts may trust the
 * mark again. Best effort: left set, the next start merely reads more. */
void readback_clear_usage_floor(struct store *st)
{
    int64_t none = INT64_MAX;
    if (store_begin(st) != STORE_OK)
        return;
    if (store_setting_put(st, ENGINE_USAGE_FLOOR_SETTING, &none, sizeof none) != STORE_OK ||
        store_commit(st) != STORE_OK) {
        store_rollback(st);
        return;
    }
    (void)store_sync(st); /* unsynced, the floor stays set: safe */
}

bool readback_save_snapshot(struct engine *e, char err[STORE_ERR_MAX])
{
    struct snapshot_mark mark;
    char why[SNAPSHOT_ERR_MAX];
    if (!mark_now(e, &mark, err))
        return false;
    if (!snapshot_save(store_data_dir(e->store), e->fingerprint_key, &mark, &e->identities, why)) {
        snprintf(err, STORE_ERR_MAX, "%s", why);
        return false;
    }
    return true;
}

/* Notes how the running child ended, if it did (or waits for it, killed, with `stop`). */
void readback_reap_snapshot(struct engine *e, bool stop)
{
    if (e->snapshot_child <= 0)
        return;
    if (stop)
        kill(e->snapshot_child, SIGKILL); /* the stop saves a newer one */
    enum snapshot_child c = snapshot_child_poll(e->snapshot_child, stop);
    if (c == SNAPSHOT_CHILD_RUNNING)
        return;
    if (c == SNAPSHOT_CHILD_SAVED) {
        e->snapshot_events = e->snapshot_child_events;
        atomic_fetch_add(&e->snapshots, 1);
        atomic_store(&e->snapshot_events_shown, (uint64_t)e->snapshot_events);
    } else if (!stop) {
        atomic_fetch_add(&e->snapshot_failures, 1);
        /* tried again when next due, not after the next batch (an audit counted 361 children
         * for 400 events, each writing the whole file onto a disk that refused it) */
        e->snapshot_tried_events = e->snapshot_child_events;
    }
    e->snapshot_child = 0;
}

/*
 * Snapshots while running (ENGINE_SNAPSHOT_EVERY_DEFAULT): once due, the writer syncs the log
 * (the file must vouch only for what is on disk), forks, and goes on; the child writes the sets
 * as they were at the fork (copy-on-write) and exits. A crash then reads back only the events
 * after it. One child at a time. A failure is counted and tried again when next due.
 */
void readback_snapshot_while_running(struct engine *e)
{
    readback_reap_snapshot(e, false);
    int64_t from = e->snapshot_tried_events > e->snapshot_events ? e->snapshot_tried_events
                                                                 : e->snapshot_events;
    int64_t since = e->last_event_id - from;
    int64_t due =
        e->snapshot_events / 4 > e->snapshot_every ? e->snapshot_events / 4 : e->snapshot_every;
    if (e->snapshot_child > 0 || e->snapshot_every <= 0 || since < due || syncer_failed(e->syncer))
        return;
    char err[STORE_ERR_MAX];
    struct snapshot_mark mark;
    struct snapshot_job *job = NULL;
    /* through the syncer: a failure here fails what it has yet to answer, as its own do */
    if (syncer_sync_now(e->syncer) && mark_now(e, &mark, err))
        job = snapshot_job_prepare(store_data_dir(e->store), e->fingerprint_key, &mark,
                                   &e->identities, err);
    pid_t pid = job ? snapshot_job_fork(job) : -1;
    snapshot_job_free(job);
    if (pid < 0) {
        atomic_fetch_add(&e->snapshot_failures, 1);
        e->snapshot_tried_events = e->last_event_id; /* not again at once: when next due */
        return;
    }
    e->snapshot_child = pid;
    e->snapshot_child_events = mark.last_event_id;
}
