/*
 * engine/: the single writer. One thread applies every command, in arrival order (holds go
 * ahead, below), and commits them in groups: it takes everything queued (up to
 * ENGINE_BATCH_MAX), applies each inside its own savepoint of one transaction, commits once,
 * and tells each submitter only once an fsync of the log covers the commit (engine/syncer.h:
 * with a queue, that fsync overlaps the next group). Throughput comes from the group, latency
 * from never waiting for a batch to fill.
 *
 * Holds have a queue of their own, taken first: one that arrives while a group is applied
 * cuts the group short at the next command boundary and joins it, so a hold waits for one
 * command and a commit rather than for a group of event batches. A group of holds still takes
 * one command from the main queue, so a stream of holds cannot starve it.
 *
 * Because only this thread mutates state, nothing it owns needs a lock, and the order of
 * commands is the order of the log. Time is an input: each command is applied at its
 * organization's clock (the real clock, or a test clock that moves only when told).
 *
 * Threads: engine_submit, engine_stats and engine_usage_views from any thread;
 * engine_start/engine_stop from the thread that owns the engine (main).
 */
#ifndef TALLY_ENGINE_ENGINE_H
#define TALLY_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/command.h"
#include "engine/snapshot.h"
#include "store/store.h"

#define ENGINE_BATCH_MAX 1024
/* A group is cut short for a hold once it has been applied this long (0: at the next command
 * boundary). Measured with bench/wallets.sh, holds from 2 clients while ingesting: 2 ms gave
 * holds p50 4.2 ms, p99 20.5 ms, ingest 131k events/s; 0 gave p50 2.2 ms, p99 14.7 ms, ingest
 * 104k. A client waiting on a hold is waiting to serve a request: 0. */
#define ENGINE_GROUP_CUT_AFTER_USEC 0
/* While the previous group's sync runs, the writer starts the next group only once this many
 * commands wait (or the sync ends). */
#define ENGINE_OVERLAP_MIN 8
#define ENGINE_FINGERPRINT_KEY_SETTING "event_fingerprint_key"
/* The lowest event id a start must read for live usage, whatever its snapshot says (set when a
 * new time zone moved a period's start earlier; cleared by the next snapshot of a clean stop). */
#define ENGINE_USAGE_FLOOR_SETTING "usage_scan_floor"
#define ENGINE_SWEEP_INTERVAL_SEC 1 /* how often the real clock's expiries are looked for */
/* Subscriptions one real-clock sweep settles for their periods' carried units at most: a
 * calendar month's start makes them all due at once, and the writer answers nothing while a
 * command runs; the next sweep, a second later, goes on (a test clock's advance settles all). */
#define ENGINE_SETTLE_PER_SWEEP_MAX 512
/* Sweeps one test-clock advance runs while interval rules are still behind (each makes up to
 * WALLET_RULE_CATCH_UP_MAX anniversaries a wallet): a million a wallet; more, at the next. */
#define ENGINE_ADVANCE_SWEEPS_MAX 1000
/* How far one test-clock advance may move its clock: 18,262 days, 50 years. Every
 * anniversary of an interval rule in between is made in that one command, which holds every
 * organization's writes while it runs: a jump to 9998 of one wallet's weekly rule held them
 * two minutes (an audit). Farther, in steps. */
#define ENGINE_ADVANCE_SPAN_DAYS_MAX 18262
#define ENGINE_BATCH_BUCKETS 12 /* histogram of batch sizes: <=1, <=2, <=4, ... <=1024, more */

/*
 * Snapshots of the event identity set while running (engine/snapshot.h): one is taken, by a
 * forked child while the writer goes on, once this many events (or a quarter of those the
 * last one held, whichever is more, so that the writing stays a bounded share of the disk's
 * work) have been stored since the last. About 3.5 s of start-up scan on this machine.
 */
#define ENGINE_SNAPSHOT_EVERY_DEFAULT 5000000

struct engine;

struct engine_options {
    int64_t snapshot_every; /* events between snapshots while running; 0: only at a clean stop */
};

struct engine_stats {
    uint64_t commands;
    uint64_t commits;
    uint64_t commit_failures;
    uint64_t queue_depth;
    uint64_t batch_size_buckets[ENGINE_BATCH_BUCKETS]; /* counts per bucket (not cumulative) */
    uint64_t batch_size_sum;
    /* The wallet journal as the last commit left it: customers whose wallet rows lag their
     * debits, and the journal's records and bytes (engine/wallet_book.h). */
    uint64_t wallet_pending_customers, wallet_journal_records, wallet_journal_bytes;
    /* fdatasyncs of the log (each acknowledged every group committed before it began), and
     * whether one failed: the engine then refuses every change until restarted. */
    uint64_t syncs;
    bool sync_failed;
    /* Snapshots saved while running and failed (engine/snapshot.h), and the events the newest
     * usable one holds (saved, or loaded at start). */
    uint64_t snapshots, snapshot_failures, snapshot_events;
    /* Live usages built from the store (start, new periods, changes, failed commands that
     * could not be rolled back in memory) and the stored events they read back, as of the
     * last batch. */
    uint64_t usage_builds, usage_events_read;
    /* Stored events those builds (and the start's scan) passed over: a charge cannot count them
     * (engine/usage.h, usage.passed_over), each build that meets one counts it again. */
    uint64_t usage_passed_over;
    /* The real clock's sweeps of an organization that failed, and the customers (or whole
     * organizations) its sweeps pass over for now (engine/sweep_quarantine.h). */
    uint64_t sweep_failures, sweep_quarantined;
    /* Customers' wallet write-outs that failed, and the customers stuck for now (their debits
     * wait in memory and the journal for a retry: engine/wallet_book.h). */
    uint64_t writeout_failures, writeout_stuck;
};

/*
 * Starts the writer thread over an opened store, which the engine takes (closed by
 * engine_stop). The tz database is borrowed and must outlive the engine; opts (NULL: the
 * defaults) is read here. Returns NULL with a message if the store cannot be read.
 */
struct tzdb;
struct engine *engine_start(struct store *st, struct tzdb *tzdb, const struct engine_options *opts,
                            char err[STORE_ERR_MAX]);

/* Queues a command. The caller keeps it alive until cmd->done(cmd) has run. */
void engine_submit(struct engine *e, struct command *cmd);

/*
 * Applies and commits everything already queued, stops the thread, saves the sets of event
 * identities (engine/snapshot.h: the next start reads back only the events after them) and
 * frees all. False, with why in err (may be NULL), if the snapshot could not be saved or was
 * not (a sync failed: memory may hold what the disk lost); the next start then reads back
 * the events after the previous snapshot, nothing is lost either way. NULL e does nothing.
 */
bool engine_stop(struct engine *e, char err[STORE_ERR_MAX]);

/* What the start read back: for the owner's log line and for tests. */
struct engine_start_report {
    int64_t snapshot_events;              /* identities the snapshot held (0: none used) */
    int64_t scanned_events;               /* stored events read back */
    char snapshot_note[SNAPSHOT_ERR_MAX]; /* why a snapshot there was not used ("" if none) */
};
void engine_start_report(struct engine *e, struct engine_start_report *out);

void engine_stats(struct engine *e, struct engine_stats *out);

/*
 * Whether wallet tables lag acknowledged debits (engine/wallet_book.h, the journal): a reader
 * of wallet state submits a COMMAND_WALLETS_SYNC first when true. Any thread.
 */
bool engine_wallets_pending(struct engine *e);

/* Whether the disk refused a sync: from then on every change is refused until a restart
 * (engine/syncer.h says why). Any thread. */
bool engine_failed(struct engine *e);

/* While the store fails the writer's changes (a full disk, a damaged database file), SQLite's
 * code for why (store_error_name and store_error_advice say it), else 0. A damaged file stays
 * until a restart; a full disk clears at the next change that succeeds. Any thread. */
int engine_store_failing(struct engine *e);

/* The published current-usage answers (engine/usage_view.h says how to read them). They
 * live as long as the engine. Any thread. */
struct usage_views;
struct usage_views *engine_usage_views(struct engine *e);

#endif
