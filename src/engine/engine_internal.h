/*
 * engine/engine_internal.h: what the writer's files share: the engine's state (struct engine),
 * an organization's clock and numbering (struct org_state), an accepted event's identity, the
 * usages a group touched, and the few helpers every command handler uses.
 *
 * Only the engine's own .c files include this: it is not the engine's interface (engine/engine.h
 * is). The writer thread alone touches what it declares, but for the fields struct engine marks as
 * guarded by its lock or atomic. engine.c was one file of several concerns; it was cut along
 * them, and each file's header says which functions it lends the others.
 */
#ifndef TALLY_ENGINE_ENGINE_INTERNAL_H
#define TALLY_ENGINE_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/dedup.h"
#include "core/expression.h"
#include "core/siphash.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/sub_cache.h"
#include "engine/sweep_quarantine.h"
#include "engine/syncer.h"
#include "engine/usage.h"
#include "engine/usage_view.h"
#include "engine/wallet_book.h"
#include "engine/wallet_clock.h"
#include "sys/bigmem.h"
#include "sys/tzdb.h"

/* What every command of an organization reads: its clock, and its customer numbering. */
struct org_state {
    int64_t org_id;
    bool has_test_clock;
    tally_time test_clock_now;
    int64_t last_customer_sequential_id;
    struct wallet_reminders reminders;
};

/* An accepted event's key in the engine's identities: the fingerprint of (organization,
 * transaction id), tagged by its external subscription id's (Lago's uniqueness is the three). */
struct identity {
    struct siphash128 transaction;
    uint64_t subscription;
};

struct usage_touch {
    int64_t org_id, subscription_id;
    size_t keep;
    struct usage_brought *brought; /* per charge, as check_priced priced them (cmd's arena) */
    bool sent_ahead;               /* the command sent events for a later period (check_priced) */
};

struct engine {
    struct store *store;
    struct tzdb *tzdb; /* borrowed: customers' zones, for billing periods */
    pthread_t thread;
    struct syncer *syncer;                /* answers each committed group once the disk has it */
    struct bigmem_prefaulter *prefaulter; /* faults the identity set's next table in ahead */
    struct dedup_memory identity_memory;  /* where the identity set's tables live */

    pthread_mutex_t lock; /* guards the queues and `stopping` */
    pthread_cond_t wake;
    struct command *head, *tail;
    /* Commands someone waits on to go ahead (holds): applied in a group of their own, and the
     * group being applied when one arrives is cut short and committed (engine_submit). */
    struct command *urgent_head, *urgent_tail;
    atomic_bool urgent_waiting;
    bool stopping;

    /* Writer-thread state. */
    struct org_state *orgs; /* sorted by org_id */
    size_t org_count;
    bool reload_orgs;
    /* Event ids are the writer's: the last one given, and where the current command began. */
    int64_t last_event_id, event_id_mark;
    uint8_t fingerprint_key[SIPHASH_KEY_LEN]; /* secret: event identities' fingerprints */
    struct dedup identities;                  /* every accepted event's identity -> its id */
    struct usage_book usage;                  /* live usage per subscription (a cache) */
    struct usage_views views;       /* committed usage answers, for readers (the writer renders) */
    struct sub_cache subscriptions; /* the subscriptions events named (a cache) */
    struct wallet_book wallets;     /* customers' wallets and charges' debits (a cache) */
    struct sweep_quarantine quarantine;           /* customers the real clock's sweep passes over */
    struct expression_scratch expression_scratch; /* metrics' expressions write strings here */
    bool recover_wallets; /* the book was dropped: the journal goes back in before a batch */
    bool batch_failed;    /* a wallet flush failed: the batch must not commit */
    uint64_t batch_number;
    bool usage_incomplete; /* a usage left the book: rescan the events before the next batch */
    bool usage_floor;      /* ENGINE_USAGE_FLOOR_SETTING is set: a clean stop saves and clears */
    struct engine_start_report start; /* what engine_start read back, for the owner */
    /* Snapshots while running: the policy, the newest usable one's events, and the child
     * writing one (0: none) with the events it holds. */
    int64_t snapshot_every, snapshot_events;
    pid_t snapshot_child;
    int64_t snapshot_child_events;
    /* the events of the last one tried that failed: the next is due counted from here (0:
     * none failed) */
    int64_t snapshot_tried_events;
    bool sync_refusal_said; /* the log says a sync was refused (say_sync_refused) */
    /* Identities added since the last commit, to take back out if it fails (memory never
     * runs ahead of the disk); `command_mark` is where the current command's start. */
    struct identity *added;
    size_t added_count, added_cap, command_mark;
    /* Live usages events were added to since the last commit, with how many references each
     * had before: a failed command or commit rebuilds them without its events. */
    /* The usages the group's commands touched, the first touch of each a command. */
    struct usage_touch *touches;
    size_t touch_count, touch_cap, touch_mark;
    uint64_t command_seq; /* numbers the commands applied, from 1: usage savepoints */

    /* Whether wallet tables lag the acknowledged debits (the journal is not empty): set before
     * an event commit's answers leave, cleared once a flush committed. Read by the API. */
    atomic_bool wallets_pending;

    /* Counters: written by the writer, read by anyone. */
    _Atomic uint64_t commands, commits, commit_failures, queue_depth, batch_size_sum;
    _Atomic uint64_t batch_buckets[ENGINE_BATCH_BUCKETS];
    _Atomic uint64_t wallet_pending_customers, wallet_journal_records, wallet_journal_bytes;
    _Atomic uint64_t snapshots, snapshot_failures, snapshot_events_shown;
    _Atomic uint64_t usage_builds_shown, usage_events_read_shown; /* e->usage's, per batch */
    _Atomic uint64_t usage_passed_over_shown;                     /* idem */
    _Atomic uint64_t sweep_failures, sweep_quarantined; /* the real clock's sweeps that failed */
    _Atomic uint64_t writeout_failures, writeout_stuck; /* the wallet book's (wallet_book.h) */

    /* Customers a re-pricing passed over because they were stuck (subscriptions_give_back_usage):
     * what it would have given back is given back by a re-pricing of that customer right after its
     * write-out (run_reprices), since its next debit may never come in the period. Memory
     * only (a restart forgets it: documented). */
    struct pending_reprice {
        int64_t org_id, customer_id;
    } * reprices;
    size_t reprice_count, reprice_cap;
    /* What the start's recovery wrote out of the journal, said once committed (0: nothing). */
    size_t recovered_note;
    bool recovered_once;
    /* The disk or the database file failing the writer's changes (watch_store): SQLite's
     * code, 0 while they succeed. Written by the writer, read by /health. The writer's own:
     * when the last line saying so was printed, and whether it was since the last recovery. */
    _Atomic int store_failing;
    int store_failing_said_code;
    int64_t store_failing_said_usec;
    bool store_failing_said;
};

/* Lookups for one event, and what consecutive events of a batch share (the metric). */
struct ingest_cache {
    const struct store_subscription *sub; /* borrowed from e->subscriptions, for one event */
    uint64_t sub_hash;                    /* that event's subscription id's sub_cache_hash */
    const char *code;
    const struct sub_cache_metric *metric; /* the metric of `code`, borrowed for the command */
};

/* Refuses the command as invalid: `field` (the request's) and `code` (Lago's) say why. */
static inline enum command_result invalid(struct command *cmd, const char *field, const char *code)
{
    cmd->invalid_field = field;
    cmd->invalid_code = code;
    return COMMAND_INVALID;
}

/* Refuses the command as naming something missing: `code` (Lago's) says what. */
static inline enum command_result not_found(struct command *cmd, const char *code)
{
    cmd->not_found_code = code;
    return COMMAND_NOT_FOUND;
}

/* What engine.c lends the other files (each function's comment is at its definition; the
 * writer thread only). */

struct org_state *engine_find_org(struct engine *e, int64_t org_id);
bool engine_load_orgs(struct engine *e);
void engine_apply_one(struct engine *e, struct command *cmd);
bool engine_reads_only(const struct command *c);
enum command_result engine_give_back_repriced(struct engine *e, struct command *cmd,
                                              int64_t customer_id);
void engine_reprice_customer(struct engine *e, const struct command *cmd, int64_t customer_id,
                             bool earlier);
/* Builds into the book, as priced now, the usage of every live subscription whose wallets hold a
 * debit this period (of one customer, or customer_id 0: the organization's), before a change
 * that re-prices them: a start builds only usages whose events it reads back. COMMAND_OK while
 * the book is incomplete (the next batch rescans it). Writer thread. */
enum command_result engine_hold_debited_usages(struct engine *e, struct command *cmd,
                                               int64_t customer_id);

#endif
