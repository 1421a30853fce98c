/*
 * store/checkpointer: copies the write-ahead log into the database on a thread of its own,
 * so that the writer never waits for a checkpoint.
 *
 * Why: SQLite checkpoints on the connection whose COMMIT takes the log past 1,000 pages. For
 * the engine's writer that was about 30 checkpoints a second while ingesting, each 2.1 to
 * 2.6 ms (two fsyncs and a few megabytes of page copies), and every hold or event that
 * arrived meanwhile waited for it: the largest part of a hold's p99 (docs/BENCHMARKS.md).
 * Here the writer's commit only notes how long the log is (a WAL hook, which also turns the
 * connection's own automatic checkpoint off), and when the log has grown by a checkpoint's
 * worth of pages since the last one, this thread runs a PASSIVE checkpoint on a connection of
 * its own. A PASSIVE checkpoint never blocks the writer nor waits for readers: it copies what
 * no reader still needs from the log, and the writer restarts the log from its beginning at
 * its next transaction once everything was copied, as it did before.
 *
 * Durability is unchanged: a checkpoint syncs the log before it copies a frame into the
 * database and syncs the database after, so a crash at any point leaves every committed frame
 * in one of the two; acknowledgements still wait for store_sync (store.h).
 *
 * Threads: checkpointer_start and checkpointer_stop on the thread that owns the writer's
 * connection, while it runs no transaction; the hook runs on that thread at each commit;
 * checkpointer_stats from any thread.
 */
#ifndef TALLY_STORE_CHECKPOINTER_H
#define TALLY_STORE_CHECKPOINTER_H

#include <sqlite3.h>
#include <stdint.h>

/* How much the log grows between checkpoints, in pages: SQLite's own default. */
#define CHECKPOINTER_PAGES 1000

struct checkpointer;

struct checkpointer_stats {
    uint64_t runs;     /* checkpoints run */
    uint64_t failures; /* of which failed (the log keeps the frames: nothing is lost) */
};

/*
 * Starts the thread. `writer` is borrowed until checkpointer_stop: its commits are watched.
 * `own` is taken: a read-write connection on the same database, used only by the thread
 * (closed by checkpointer_stop, or here on failure). NULL if the thread cannot start.
 */
struct checkpointer *checkpointer_start(sqlite3 *writer, sqlite3 *own);

/* Waits for a checkpoint in progress, stops the thread, gives the writer's connection its
 * automatic checkpoints back, closes the thread's connection and frees. NULL is a no-op. */
void checkpointer_stop(struct checkpointer *c);

void checkpointer_stats(struct checkpointer *c, struct checkpointer_stats *out);

#endif
