/*
 * engine/syncer: answers committed groups once the disk has them, on a thread of its own
 * when the writer has other work.
 *
 * Why: the writer used to wait for each group's fsync before it applied the next group, and
 * on two cores that wait was a third of the in-process ingest (500,000 events: 196k/s with
 * the wait, 300k/s without any fsync). Now the writer's COMMIT only writes the log
 * (store_defer_sync). When commands wait, the writer hands the group's commands here and goes
 * on: this thread takes every group handed over since its last round, makes the log durable
 * with one sync (an fdatasync of the log covers every commit written before it began), then
 * answers them, so a group's fsync overlaps the next group's work, and the groups committed
 * during one fsync share the next. When nothing waits, the writer syncs and answers itself
 * (syncer_settle_here): a hold alone would otherwise pay for waking a second thread.
 *
 * Invariants (tests/unit/test_syncer.c):
 * - a command is answered only after a sync that began after its group's COMMIT returned,
 *   so a 2xx still means the change is on disk;
 * - answers leave in the order their groups were committed;
 * - a group that did not commit (every command already COMMAND_STORE_FAILED) is answered
 *   without waiting for a sync, but still in order;
 * - once a sync fails, every answer from then on is a failure and syncer_failed() stays true:
 *   a later sync that succeeds does not prove that the pages of the failed one reached the
 *   disk (the kernel may have dropped them), so the writer stops applying anything.
 *
 * A read answered by the writer (or a reader connection) may see a change a moment before
 * that change is acknowledged, never after: a crash in between loses the change, and the
 * client, never told it succeeded, sends it again.
 *
 * Threads: syncer_hand_over, syncer_settle_here and syncer_sync_now from the writer only;
 * syncer_busy, syncer_failed and syncer_syncs from any thread. The sync function and done() run on
 * the syncer's thread, or on the writer's inside syncer_settle_here. syncer_start and syncer_stop
 * from the engine's owner.
 */
#ifndef TALLY_ENGINE_SYNCER_H
#define TALLY_ENGINE_SYNCER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/command.h"

/* Makes every commit written so far durable; false if the disk refused. */
typedef bool (*syncer_sync_fn)(void *ctx);
/* Called on the syncer's thread each time it has answered everything handed over. */
typedef void (*syncer_idle_fn)(void *ctx);

struct syncer;

/* Starts the thread; `ctx` is borrowed until syncer_stop, and given to both functions (`idle`
 * may be NULL). NULL if the thread cannot start. */
struct syncer *syncer_start(syncer_sync_fn sync, syncer_idle_fn idle, void *ctx);

/*
 * Takes a group's commands (a list linked by `next`, in commit order): each is answered with
 * done() after the next sync, or at once in order if none of them needs one. The caller gives
 * up the list: it must not touch the commands again.
 */
void syncer_hand_over(struct syncer *s, struct command *group);

/*
 * Syncs and answers `group` on the calling thread (the writer), in the same way, if nothing
 * handed over is still unanswered; else returns false and the caller hands it over. For a
 * writer with nothing else to do: waking another thread to wait for the disk costs more
 * than it saves then.
 */
bool syncer_settle_here(struct syncer *s, struct command *group);

/* Whether something handed over is not answered yet (a sync runs or is about to). Any
 * thread; after it turns false, the idle function runs. */
bool syncer_busy(struct syncer *s);

/* Whether a sync has failed (sticky). */
bool syncer_failed(struct syncer *s);

/*
 * Makes every commit written so far durable now, on the calling thread (the writer's, before
 * a running snapshot vouches for them), one sync at a time with the syncer's own: false if a
 * sync has failed, this one or an earlier, which then fails every answer from here on as the
 * syncer's own failures do.
 */
bool syncer_sync_now(struct syncer *s);

/* Syncs performed so far (each answered one or more groups). */
uint64_t syncer_syncs(struct syncer *s);

/* Answers everything handed over (syncing once more if needed), then stops and frees. */
void syncer_stop(struct syncer *s);

#endif
