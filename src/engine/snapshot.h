/*
 * engine/snapshot: the writer's set of event identities (core/dedup) saved beside the
 * database, so that a start reads back only the events stored after it.
 *
 * Why: the set is rebuilt at start from every stored event, a time that grows with the whole
 * history (5.3 s for 5.5M events here; an hour for a billion). The set is a pure function of
 * the stored events, and stored events are never changed or removed (ids are dense and only
 * appended), so a set saved when it held exactly events 1..N stays true for those events
 * forever: a later start loads it and scans events N+1.. for identities, however many
 * restarts or crashes came in between. Only the live usage still needs the events its current
 * periods may count, from `usage_from` on (engine/readback.c chooses it).
 *
 * Shape: one file, DATA_DIR/SNAPSHOT_FILE: a header (format, byte order, a check of the
 * fingerprint key, the mark), the set's entries in the order of its table's slots with a
 * bitmap of the slots they fill (about 32 bytes an event; loading places them back where they
 * lay, no hashing), and a checksum of all of it. It is written whole under a temporary name,
 * synced, and renamed over the old one, so a crash leaves the old file or the new one, never a
 * mix. Anything unexpected in a file (another format or key, a torn or damaged file, a mark the
 * database contradicts) makes it unusable, never wrong: the start scans everything; a file the
 * database contradicts is removed too (snapshot_discard), lest it agree with a later history.
 *
 * Threads: the engine's owner while no writer runs (engine_start, engine_stop), and the
 * writer (a save by a forked child, while it goes on).
 */
#ifndef TALLY_ENGINE_SNAPSHOT_H
#define TALLY_ENGINE_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/dedup.h"
#include "core/siphash.h"

#define SNAPSHOT_FILE "events.snapshot"
#define SNAPSHOT_FORMAT 2 /* 1: two sets of 24-byte slots, refused (the start scans) */
#define SNAPSHOT_ERR_MAX 256

struct snapshot_mark {
    int64_t last_event_id;           /* the set holds exactly the stored events 1..this */
    struct siphash128 last_identity; /* that event's identity fingerprint (0, 0 if none) */
    int64_t usage_from; /* no live usage counts an event below this id (1 if unknown) */
};

/*
 * Writes `identities` (borrowed) with `mark` to DATA_DIR/SNAPSHOT_FILE, replacing any earlier
 * file only once the new one is on disk. False with a reason in err.
 */
bool snapshot_save(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                   const struct snapshot_mark *mark, const struct dedup *identities,
                   char err[SNAPSHOT_ERR_MAX]);

/*
 * The same in steps, for a save by a forked child while the writer goes on (engine/readback.c): the
 * job, prepared by the parent, holds every path and buffer, so that writing it allocates
 * nothing (in a child of a threaded process another thread may have held the allocator's
 * lock). The set is borrowed: in the child it is its copy, frozen at the fork.
 */
struct snapshot_job;
struct snapshot_job *snapshot_job_prepare(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                                          const struct snapshot_mark *mark,
                                          const struct dedup *identities,
                                          char err[SNAPSHOT_ERR_MAX]);
/* Writes, syncs and renames into place; 0 or an errno. */
int snapshot_job_write(struct snapshot_job *job);
void snapshot_job_free(struct snapshot_job *job);
/* Forks a child that writes the job and exits: its pid, or -1 (errno). The caller still
 * frees its own job. */
pid_t snapshot_job_fork(struct snapshot_job *job);

enum snapshot_child { SNAPSHOT_CHILD_RUNNING, SNAPSHOT_CHILD_SAVED, SNAPSHOT_CHILD_FAILED };
/* How a child forked above is doing; `wait` blocks until it exits. Once it answers SAVED or
 * FAILED the child is reaped: do not ask again. */
enum snapshot_child snapshot_child_poll(pid_t pid, bool wait);

enum snapshot_status {
    SNAPSHOT_LOADED,   /* the set and mark are filled: the caller owns the set */
    SNAPSHOT_ABSENT,   /* no file: nothing was saved yet */
    SNAPSHOT_UNUSABLE, /* a file that cannot be trusted (why says which way); set untouched */
};

/*
 * Reads DATA_DIR/SNAPSHOT_FILE saved under `key` into *identities (which holds nothing on
 * entry; its tables in `memory`, as dedup_init_in) and *mark. The caller checks the mark
 * against the database before using the set (snapshot_mark is all a file can vouch for itself).
 */
enum snapshot_status snapshot_load(const char *data_dir, const uint8_t key[SIPHASH_KEY_LEN],
                                   struct snapshot_mark *mark, struct dedup *identities,
                                   const struct dedup_memory *memory, char why[SNAPSHOT_ERR_MAX]);

/*
 * Removes DATA_DIR/SNAPSHOT_FILE (none there is fine) and syncs the directory, for a file whose
 * mark the database contradicts: such a file is not only useless but a trap, since the new
 * history may later store an event with the same identity at its mark (a client resending what
 * it had no answer for), and a start after a crash would take it. False with a reason in why.
 */
bool snapshot_discard(const char *data_dir, char why[SNAPSHOT_ERR_MAX]);

#endif
