/*
 * engine/writer.c: the writer thread's loop: take what is queued (the holds waiting first),
 * apply it as one group in one transaction, commit, hand the group to the syncer or answer it,
 * and between groups the real clock's sweeps, the wallet book's write-out, re-pricings of
 * customers a stuck write-out passed over, and snapshots when due.
 *
 * What one command does inside the group's transaction is engine.c's (engine_apply_one); this
 * file owns what is around it: the queues' draining, group commit and its failure (memory
 * reloaded, never ahead of the disk), the published usage views and counters, and what a stop
 * writes out. Threads: writer_main is the writer thread; writer_urgent runs on any thread that
 * submits (engine_submit); everything else on the writer.
 */
#include "engine/writer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/ingest.h"
#include "engine/readback.h"
#include "engine/settle.h"
#include "engine/wallets.h"
#include "sys/wallclock.h"
#include "util/utf8.h"

/* ---- the writer loop -------------------------------------------------------------------- */

/* How long a view of this usage stays the answer on the real clock: to its period's end.
 * A test clock moves only by a command, which drops the organization's views. */
static tally_time view_valid_until(struct engine *e, const struct usage *u)
{
    struct org_state *org = engine_find_org(e, u->org_id);
    return org && org->has_test_clock ? INT64_MAX : u->to;
}

/* A usage read the writer answered from committed state becomes the view later reads use;
 * not one filtered by its query (a part of the answer). */
static void publish_read(struct engine *e, const struct command *cmd)
{
    if (cmd->kind != COMMAND_USAGE_READ || cmd->result != COMMAND_OK || cmd->http_status != 200 ||
        cmd->as.usage_read.filter)
        return;
    const struct store_subscription *row = &cmd->usage_subscription;
    struct usage_view *v = usage_view_new(cmd->usage, row->customer_external_id,
                                          row->customer_timezone, view_valid_until(e, cmd->usage),
                                          e->batch_number, cmd->response.data, cmd->response.len);
    if (!v)
        return; /* the reads keep asking the writer */
    usage_view_touch(v, wallclock_now());
    usage_views_put(&e->views, v);
}

/* Renders `u`'s view again (committed state), or drops it if nobody read it lately. */
static void renew_view(struct engine *e, const struct usage *u, struct usage_view *old,
                       tally_time now)
{
    int64_t last_read = atomic_load(&old->last_read);
    struct usage_view *v = NULL;
    if (now - last_read <= USAGE_VIEW_IDLE_USEC) {
        struct buf body;
        buf_init(&body);
        if (usage_view_render(u, NULL, &body))
            v = usage_view_new(u, old->external_customer_id, old->customer_timezone,
                               view_valid_until(e, u), e->batch_number, body.data, body.len);
        buf_free(&body);
    }
    if (!v) {
        usage_views_drop(&e->views, u->org_id, u->external_id);
        return;
    }
    usage_view_touch(v, last_read);
    usage_views_put(&e->views, v);
}

/*
 * After a commit and before any of its answers leave: every view whose subscription the
 * batch's events changed is rendered again, so that a read after an acknowledgement sees it.
 */
static void renew_touched_views(struct engine *e)
{
    if (usage_views_count(&e->views) == 0)
        return;
    e->batch_number++;
    tally_time now = wallclock_now();
    int64_t previous = 0;
    for (size_t i = 0; i < e->touch_count; i++) {
        const struct usage_touch *t = &e->touches[i];
        if (t->subscription_id == previous)
            continue;
        previous = t->subscription_id;
        const struct usage *u = usage_book_find(&e->usage, t->subscription_id);
        if (!u) { /* it left the book: its view cannot be found, so none can be trusted */
            usage_views_clear(&e->views);
            return;
        }
        struct usage_view *old = usage_views_get(&e->views, u->org_id, u->external_id);
        /* Views are keyed by external id, which an ended subscription (upgraded, downgraded,
         * terminated) shares with its successor, and a late event may still touch it. The
         * view is the live one's, rendered by a read; the ended one must not replace it. */
        if (old && old->subscription_id == u->subscription_id &&
            old->rendered_in != e->batch_number)
            renew_view(e, u, old, now);
        usage_view_release(old);
    }
}

static void count_batch(struct engine *e, size_t n)
{
    size_t bucket = 0;
    while (bucket < ENGINE_BATCH_BUCKETS - 1 && ((size_t)1 << bucket) < n)
        bucket++;
    atomic_fetch_add(&e->batch_buckets[bucket], 1);
    atomic_fetch_add(&e->batch_size_sum, n);
    atomic_fetch_add(&e->commands, n);
}

/*
 * Says on stderr each usage that passed over stored events its charges cannot count (engine/
 * usage.c, passes_over): once a usage, not once a build meeting the same events. Writer thread.
 */
static void report_passed_over(struct engine *e)
{
    struct usage_passed_report r;
    while (usage_book_take_report(&e->usage, &r))
        fprintf(stderr,
                "tallyd: the usage of subscription %s (organization %" PRId64
                ") passed over %" PRIu64 " stored event%s its charges cannot count, the first "
                "event %" PRId64 " of metric %s (%s): each counts as an event its aggregation "
                "ignores (docs/API.md, Events)\n",
                r.external_id, r.org_id, r.count, r.count == 1 ? "" : "s", r.event_id, r.code,
                aggregation_status_text(r.why));
}

/* The usage book's counters for engine_stats, before the answers that follow them leave. */
void writer_publish_usage_counters(struct engine *e)
{
    atomic_store(&e->usage_builds_shown, e->usage.builds);
    atomic_store(&e->usage_events_read_shown, e->usage.events_read);
    atomic_store(&e->usage_passed_over_shown, e->usage.passed_over);
    report_passed_over(e);
}

/*
 * Reads that need the writer's memory (live usage, the transaction-id map) are answered
 * before the batch's writes, from the committed state, and at once: they change nothing, so
 * they need no commit and do not wait for the group's fsync. A read sees every write that
 * was acknowledged before it arrived (those were committed by an earlier batch).
 */
static struct command *answer_reads(struct engine *e, struct command *batch, size_t *n)
{
    struct command *writes = NULL, **tail = &writes;
    while (batch) {
        struct command *next = batch->next;
        batch->next = NULL;
        if (engine_reads_only(batch) && !e->reload_orgs && !e->usage_incomplete) {
            engine_apply_one(e, batch);
            publish_read(e, batch);
            writer_publish_usage_counters(e); /* a read may build a usage */
            batch->done(batch);
            (*n)--;
        } else {
            *tail = batch;
            tail = &batch->next;
        }
        batch = next;
    }
    return writes;
}

/*
 * After a crash or a failed commit the book is empty and the journal holds what the wallet
 * tables lack: it goes back in (and out to the tables) first, in the batch's transaction.
 */
bool writer_recover_wallets(struct engine *e, struct command *first)
{
    if (!e->recover_wallets)
        return true;
    struct org_state *org = engine_find_org(e, first->org_id);
    first->now = org && org->has_test_clock ? org->test_clock_now : wallclock_now();
    if (wallet_book_recover(&e->wallets, e->store, first) != COMMAND_OK)
        return false;
    e->recover_wallets = false; /* set again if the batch does not commit */
    if (!e->recovered_once)     /* the start's: said once committed (apply_batch) */
        e->recovered_note = e->wallets.recovered_written;
    return true;
}

/*
 * Before an event group's COMMIT: the wallets it debited are recorded in the journal (and the
 * customers pending longest written out), or everything is written out when the journal is
 * large or was ended by a direct write (wallet_book.h).
 */
static enum command_result write_wallets(struct engine *e, struct command *last)
{
    struct wallet_book *b = &e->wallets;
    bool all_due = b->must_flush || b->journal_bytes >= WALLET_JOURNAL_BYTES_MAX ||
                   b->dirty_count >= WALLET_JOURNAL_CUSTOMERS_MAX;
    return all_due ? wallet_book_flush(b, e->store, last)
                   : wallet_book_journal(b, e->store, last, wallclock_monotonic_usec());
}

/* The writer's own commands (the clock's sweeps, the write-out at stop): nobody waits. */
static void own_render(struct command *cmd)
{
    cmd->http_status = 200;
}

static void own_done(struct command *cmd)
{
    (void)cmd;
}

/* Whether a command goes ahead of the queue: a hold gates a client's request. */
bool writer_urgent(const struct command *c)
{
    return c->kind == COMMAND_AUTHORIZATION_CREATE;
}

/* Unlinks up to `max` commands from the front of a list, in order (NULL if it is empty).
 * Under e->lock. */
static struct command *take_front(struct engine *e, struct command **head, struct command **tail,
                                  size_t max, size_t *count)
{
    struct command *first = *head, *last = first;
    *count = 0;
    if (!first)
        return NULL;
    *count = 1;
    while (last->next && *count < max) {
        last = last->next;
        (*count)++;
    }
    *head = last->next;
    if (!*head)
        *tail = NULL;
    last->next = NULL;
    atomic_fetch_sub(&e->queue_depth, *count);
    return first;
}

/* Takes the holds waiting (the whole list, in order; NULL if none). */
static struct command *take_urgent(struct engine *e, size_t *count)
{
    pthread_mutex_lock(&e->lock);
    struct command *list = take_front(e, &e->urgent_head, &e->urgent_tail, SIZE_MAX, count);
    atomic_store(&e->urgent_waiting, false);
    pthread_mutex_unlock(&e->lock);
    return list;
}

/* Takes up to `max` commands from the head of the queue, in order (NULL if it is empty). */
static struct command *take_queued(struct engine *e, size_t max, size_t *count)
{
    pthread_mutex_lock(&e->lock);
    struct command *first = take_front(e, &e->head, &e->tail, max, count);
    pthread_mutex_unlock(&e->lock);
    return first;
}

/* Puts commands not applied back at the head of the queue, in their order. */
static void requeue(struct engine *e, struct command *first)
{
    struct command *last = first;
    size_t n = 1;
    while (last->next) {
        last = last->next;
        n++;
    }
    pthread_mutex_lock(&e->lock);
    last->next = e->head;
    e->head = first;
    if (!e->tail)
        e->tail = last;
    atomic_fetch_add(&e->queue_depth, n);
    pthread_mutex_unlock(&e->lock);
}

/* An organization's name and a customer's external id for a log line (utf8_loggable), or "?"
 * and "#<row id>" when they cannot be read. */
static void describe_customer(struct engine *e, int64_t org_id, int64_t customer_id,
                              struct arena *a, char *org, size_t org_size, char *customer,
                              size_t customer_size)
{
    struct store_conn *conn = store_conn(e->store);
    struct store_org o;
    struct customer c;
    utf8_loggable(org, org_size, store_org_get(conn, org_id, &o, a) == STORE_OK ? o.name : NULL);
    if (store_customer_by_id(conn, customer_id, &c, a) == STORE_OK)
        utf8_loggable(customer, customer_size, c.external_id);
    else
        snprintf(customer, customer_size, "#%" PRId64, customer_id);
}

/*
 * The wallet book's stuck customers (wallet_book.h): each said once on stderr when it first
 * gets stuck (its organization and customer; never the store's message, which may hold data),
 * and once when it is written out at last; counted for /metrics. Between batches.
 */
static void report_stuck(struct engine *e)
{
    struct wallet_book *b = &e->wallets;
    atomic_store(&e->writeout_failures, b->writeout_failures);
    atomic_store(&e->writeout_stuck, (uint64_t)b->stuck_count);
    bool any = b->unstuck_count > 0;
    for (size_t i = 0; i < b->stuck_count && !any; i++)
        any = !b->stuck[i].reported;
    if (!any)
        return;
    struct arena a;
    arena_init(&a);
    for (size_t i = 0; i < b->stuck_count; i++) {
        struct wallet_stuck *s = &b->stuck[i];
        if (s->reported)
            continue;
        s->reported = true;
        char org[STORE_ORG_NAME_MAX + 1], customer[CUSTOMER_EXTERNAL_ID_MAX + 1];
        describe_customer(e, s->org_id, s->customer_id, &a, org, sizeof org, customer,
                          sizeof customer);
        fprintf(stderr,
                "tallyd: the wallet debits of organization %" PRId64 " (%s) customer %s could "
                "not be written out to its wallets (its wallet rows refuse the write, or no longer "
                "load); they stay in the wallet journal and are retried, and its wallet commands "
                "fail until then; every other customer goes on\n",
                s->org_id, org, customer);
    }
    for (size_t i = 0; i < b->unstuck_count; i++) {
        const struct wallet_stuck *s = &b->unstuck[i];
        if (!s->reported)
            continue; /* never said stuck: nothing to take back */
        char org[STORE_ORG_NAME_MAX + 1], customer[CUSTOMER_EXTERNAL_ID_MAX + 1];
        describe_customer(e, s->org_id, s->customer_id, &a, org, sizeof org, customer,
                          sizeof customer);
        fprintf(stderr,
                "tallyd: the wallet debits of organization %" PRId64 " (%s) customer %s were "
                "written out at last\n",
                s->org_id, org, customer);
    }
    b->unstuck_count = 0;
    arena_free(&a);
}

#define STORE_FAILING_REPEAT_USEC (60 * 1000000LL) /* a failure said again at most this often */

/*
 * Says on stderr when the store starts failing the writer's changes, with SQLite's code and
 * what to do, and when they succeed again; /health reads the state. An audit saw a full disk
 * and a damaged page answer every write 500 "retry later" with nothing on stderr and /health
 * "ok". `failed`: the batch did not commit, or one of its commands failed on the store. Once
 * a minute at most for one kind, so a disk that takes small writes and refuses large ones does
 * not print a line per request. A damaged file stays failing until a restart: other writes
 * succeeding does not mend it. Writer thread, after each batch.
 */
static void watch_store(struct engine *e, bool failed)
{
    int code = store_take_disk_error();
    int was = atomic_load(&e->store_failing);
    if (failed && code) {
        if (store_error_lasting(was))
            return; /* said; it stays until a restart */
        atomic_store(&e->store_failing, code);
        int64_t now = wallclock_monotonic_usec();
        if (code == e->store_failing_said_code &&
            now - e->store_failing_said_usec < STORE_FAILING_REPEAT_USEC)
            return;
        fprintf(stderr,
                "tallyd: the store fails changes: %s (%s): %s; GET /health answers 503 "
                "meanwhile, and nothing acknowledged is lost\n",
                store_error_name(code), store_error_text(code), store_error_advice(code));
        e->store_failing_said_code = code;
        e->store_failing_said_usec = now;
        e->store_failing_said = true;
    } else if (!failed && was && !store_error_lasting(was)) {
        atomic_store(&e->store_failing, 0);
        if (e->store_failing_said)
            fprintf(stderr, "tallyd: the store takes changes again (it failed with %s)\n",
                    store_error_name(was));
        e->store_failing_said = false;
    }
}

/*
 * Applies a group of commands in one transaction and answers them once it is committed. With
 * `may_cut`, a hold arriving meanwhile ends the group at the next command boundary: the holds
 * waiting are applied last and share the group's commit; the rest goes back to the queue.
 */
/* Says once on stderr that the disk refused a sync (the syncer's, or the writer's before a
 * snapshot), as watch_store says a failing store: every change is refused from then on, and an
 * audit found nothing in the log until the stop. Writer thread. */
static void say_sync_refused(struct engine *e)
{
    if (e->sync_refusal_said || !syncer_failed(e->syncer))
        return;
    e->sync_refusal_said = true;
    fprintf(stderr, "tallyd: the disk refused a sync of the log: every change is refused until "
                    "tallyd is restarted (GET /health answers 503); what was acknowledged before "
                    "is on disk, what was not is answered as not saved\n");
}

static void apply_batch(struct engine *e, struct command *batch, size_t n, bool may_cut)
{
    batch = answer_reads(e, batch, &n);
    if (!batch)
        return;
    say_sync_refused(e);
    /* Memory that may be stale (a failed command or commit) is reloaded before anything is
     * applied on top of it; if it cannot be, the batch fails rather than run on stale state. */
    bool began = !syncer_failed(e->syncer) && (!e->reload_orgs || engine_load_orgs(e)) &&
                 (!e->usage_incomplete || readback_rescan_usage(e)) &&
                 store_begin(e->store) == STORE_OK;
    struct command *last = batch;
    e->batch_failed = began && !writer_recover_wallets(e, batch);
    size_t applied = 0;
    int64_t started = wallclock_monotonic_usec();
    for (struct command *c = batch; c; c = c->next) {
        if (may_cut && applied > 0 && began && !e->batch_failed &&
            atomic_load_explicit(&e->urgent_waiting, memory_order_relaxed) &&
            wallclock_monotonic_usec() - started >= ENGINE_GROUP_CUT_AFTER_USEC) {
            /* the rest waits; the holds end this group and share its commit */
            requeue(e, c);
            size_t urgent_count;
            last->next = take_urgent(e, &urgent_count);
            n = applied + urgent_count;
            may_cut = false;
            c = last; /* the loop goes on with the holds */
            continue;
        }
        if (began && !e->batch_failed)
            engine_apply_one(e, c);
        else
            c->result = COMMAND_STORE_FAILED;
        last = c;
        applied++;
    }
    /* The group's deferred wallet writes: journaled, or written out with the last command's
     * ids when due. */
    bool flushed = began && !e->batch_failed && write_wallets(e, last) == COMMAND_OK;
    bool committed = flushed && store_commit(e->store) == STORE_OK;
    if (began && !committed) {
        store_rollback(e->store);
        sub_cache_invalidate(&e->subscriptions);
        e->reload_orgs = true;
        ingest_forget_added(e, 0);
        ingest_forget_touches(e, 0, 0); /* a whole group: rebuilt from the store */
        wallet_book_clear(&e->wallets);
        e->recover_wallets = true;
    }
    wallet_book_committed(&e->wallets);
    report_stuck(e);
    /* the start's write-out of what the journal held (customers stuck at the last stop, or
     * pending at a crash): their last line on stderr may have said they were not written out */
    if (committed && !e->recovered_once && !e->recover_wallets) {
        e->recovered_once = true;
        if (e->recovered_note > 0)
            fprintf(stderr,
                    "tallyd: the wallet debits of %zu customer%s waiting in the wallet journal "
                    "at the start were written out\n",
                    e->recovered_note, e->recovered_note == 1 ? "" : "s");
    }
    e->recovered_note = committed ? 0 : e->recovered_note;
    if (committed) { /* before any answer of the batch leaves */
        atomic_store(&e->wallets_pending, wallet_book_pending(&e->wallets));
        atomic_store(&e->wallet_pending_customers, e->wallets.dirty_count);
        atomic_store(&e->wallet_journal_records, (uint64_t)e->wallets.journal_records);
        atomic_store(&e->wallet_journal_bytes, e->wallets.journal_bytes);
    }
    if (committed)
        renew_touched_views(e);
    writer_publish_usage_counters(e);
    e->added_count = 0; /* committed, or taken back out */
    e->touch_count = 0;
    atomic_fetch_add(committed ? &e->commits : &e->commit_failures, 1);
    bool any_failed = !committed;
    for (struct command *c = batch; c && !any_failed; c = c->next)
        any_failed = c->result == COMMAND_STORE_FAILED;
    if (began) /* a failed sync refuses without asking the store: /health says so already */
        watch_store(e, any_failed);
    if (batch->done != own_done) /* the writer's own work is not a client's command */
        count_batch(e, n);
    if (e->reload_orgs)
        engine_load_orgs(e); /* or at the next batch, which will not start without it */
    if (!committed)
        for (struct command *c = batch; c; c = c->next)
            c->result = COMMAND_STORE_FAILED;
    if (batch->done == own_done) /* nobody waits, and its memory goes when this returns */
        return;
    /* Answered once every change in the batch is on disk (or, failed, none is): by the writer
     * itself when nothing else waits, else by the syncer while the writer goes on. */
    if (atomic_load(&e->queue_depth) >= ENGINE_OVERLAP_MIN || !syncer_settle_here(e->syncer, batch))
        syncer_hand_over(e->syncer, batch);
}

/* A command's result as the log names it. */
static const char *result_name(enum command_result r)
{
    switch (r) {
    case COMMAND_OK: return "ok";
    case COMMAND_NOT_FOUND: return "not found";
    case COMMAND_INVALID: return "refused";
    case COMMAND_STORE_FAILED: return "its data could not be read or written";
    case COMMAND_INSUFFICIENT_CREDITS: return "insufficient credits";
    default: return "failed";
    }
}

/*
 * One line on stderr (tallyd's log) for a sweep that failed: the organization, the customer
 * and item it failed at, and for how long they are passed over. Between batches: its reads see
 * what the failed command left, which is what was there before it.
 */
static void report_sweep_failure(struct engine *e, const struct command *c, tally_time wait,
                                 struct arena *a)
{
    const struct sweep_failure *f = &c->as.sweep.failure;
    char org_name[256], external_id[CUSTOMER_EXTERNAL_ID_MAX + 1];
    describe_customer(e, c->org_id, f->customer_id, a, org_name, sizeof org_name, external_id,
                      sizeof external_id);
    char who[CUSTOMER_EXTERNAL_ID_MAX + 32] = "";
    if (f->customer_id != 0)
        snprintf(who, sizeof who, " at customer %s", external_id);
    char retry[96] = "it could not be passed over: tried again at the next sweep";
    if (wait > 0)
        snprintf(retry, sizeof retry, "%s passed over for %" PRId64 " s%s",
                 f->customer_id ? "that customer is" : "its whole sweep is",
                 wait / TIMESTAMP_USEC_PER_SEC, f->customer_id ? ", the others go on" : "");
    fprintf(stderr,
            "tallyd: the clock's sweep of organization %" PRId64
            " (%s) failed%s (%s%s%s: %s); %s\n",
            c->org_id, org_name, who, f->doing ? f->doing : "sweeping", f->item[0] ? " " : "",
            f->item, result_name(c->result), retry);
}

/*
 * The real clock's sweep: what came due (holds, grants, wallets expiring, periods to settle)
 * in every organization on the real clock, as one COMMAND_SWEEP each, applied and committed
 * like any batch. (Test clocks sweep when they are advanced.)
 *
 * A sweep that fails is undone whole (engine_apply_one). So that one customer's data cannot stop
 * the organization's clock, the customer it failed at goes into e->quarantine (engine/
 * sweep_quarantine.h), is said on stderr and counted, and the next sweep, a second later,
 * passes it over until its time comes; the others go on. Invariant: the quarantine is the
 * writer's alone, judged here once per sweep at `now` (the skip list each command carries),
 * and changed here after the batch, from the commands' results; nothing else reads it.
 */
static void sweep_real_clocks(struct engine *e)
{
    struct arena arena;
    arena_init(&arena);
    struct command *cmds = arena_alloc(&arena, (e->org_count ? e->org_count : 1) * sizeof *cmds);
    struct command *head = NULL, **tail = &head;
    size_t n = 0;
    tally_time now = wallclock_now();
    struct sweep_quarantine *q = &e->quarantine;
    for (size_t i = 0; cmds && i < e->org_count; i++) {
        int64_t org_id = e->orgs[i].org_id;
        const char *skip;
        if (e->orgs[i].has_test_clock || sweep_quarantine_org_waits(q, org_id, now) ||
            !sweep_quarantine_skipped(q, org_id, now, &arena, &skip))
            continue;
        /* only where something is due: an idle server writes nothing (what is due for the
         * customers passed over included) */
        if (!wallet_clock_due(e->store, org_id, &e->orgs[i].reminders, skip, now) &&
            !settle_periods_due(e, org_id, skip, now)) {
            sweep_quarantine_passed(q, org_id, now); /* those whose time came had nothing due */
            continue;
        }
        struct command *c = &cmds[n++];
        *c = (struct command){.kind = COMMAND_SWEEP,
                              .org_id = org_id,
                              .arena = &arena,
                              .render = own_render,
                              .done = own_done,
                              .as.sweep.skip_customers = skip};
        /* its ids come from what it is (organization, instant) under the engine's secret */
        int64_t what[2] = {org_id, now};
        struct siphash128 seed = siphash128(e->fingerprint_key, what, sizeof what);
        memcpy(c->id_seed, &seed, sizeof c->id_seed);
        *tail = c;
        tail = &c->next;
    }
    if (n > 0)
        apply_batch(e, head, n, false);
    for (size_t i = 0; i < n; i++) {
        const struct command *c = &cmds[i];
        const struct sweep_failure *f = &c->as.sweep.failure;
        if (c->result == COMMAND_OK) {
            sweep_quarantine_passed(q, c->org_id, now); /* swept with the others: it is well */
        } else if (f->failed) {
            atomic_fetch_add(&e->sweep_failures, 1);
            tally_time wait = sweep_quarantine_fail(q, c->org_id, f->customer_id, now);
            report_sweep_failure(e, c, wait, &arena);
        }
        /* else it was sound, but its group failed to commit (counted there): tried again at
         * the next sweep, as it was */
    }
    atomic_store(&e->sweep_quarantined, (uint64_t)sweep_quarantine_count(q));
    for (size_t i = 0; i < n; i++)
        buf_free(&cmds[i].response);
    arena_free(&arena);
}

/*
 * On a clean stop, the wallet journal is written out (one COMMAND_WALLETS_SYNC of the writer's
 * own), so the next start has nothing to recover. A crash leaves it to recovery.
 */
static void write_out_on_stop(struct engine *e)
{
    if (!wallet_book_pending(&e->wallets))
        return;
    struct arena arena;
    arena_init(&arena);
    struct command cmd = {
        .kind = COMMAND_WALLETS_SYNC, .arena = &arena, .render = own_render, .done = own_done};
    /* Its clock (the ids it makes start with it) is the real one, unless every organization
     * runs on a test clock: then the latest of those, so that a replayed run writes the same. */
    int64_t what[2] = {0, wallclock_now()};
    for (size_t i = 0; i < e->org_count && what[0] >= 0; i++) {
        const struct org_state *o = &e->orgs[i];
        if (!o->has_test_clock)
            what[0] = -1;
        else if (what[0] == 0 || o->test_clock_now > what[1])
            what[0] = o->org_id, what[1] = o->test_clock_now;
    }
    if (what[0] > 0)
        cmd.org_id = what[0];
    else
        what[1] = wallclock_now();
    struct siphash128 seed = siphash128(e->fingerprint_key, what, sizeof what);
    memcpy(cmd.id_seed, &seed, sizeof cmd.id_seed);
    apply_batch(e, &cmd, 1, false);
    buf_free(&cmd.response);
    arena_free(&arena);
}

/* A writer's own command of the organization (0: none), at its clock, ids seeded from `tag`
 * and what it is about under the engine's secret (deterministic, as the sweep's). */
static void own_command(struct engine *e, struct command *cmd, enum command_kind kind,
                        int64_t org_id, int64_t tag, int64_t about, struct arena *arena)
{
    const struct org_state *o = engine_find_org(e, org_id);
    *cmd = (struct command){
        .kind = kind, .org_id = org_id, .arena = arena, .render = own_render, .done = own_done};
    cmd->now = o && o->has_test_clock ? o->test_clock_now : wallclock_now();
    int64_t what[4] = {tag, org_id, about, cmd->now};
    struct siphash128 seed = siphash128(e->fingerprint_key, what, sizeof what);
    memcpy(cmd->id_seed, &seed, sizeof cmd->id_seed);
}

/*
 * Stuck customers whose retry has come are written out even when no request comes (the
 * writer wakes every ENGINE_SWEEP_INTERVAL_SEC; retries start a second apart): before, only a
 * request's batch retried them, and an idle server kept a mended customer stuck. Only those
 * customers are written; a retry that fails is rolled back, so an idle server commits nothing.
 */
static void retry_stuck(struct engine *e)
{
    struct wallet_book *b = &e->wallets;
    for (;;) {
        if (e->recover_wallets || e->reload_orgs || e->usage_incomplete || syncer_failed(e->syncer))
            return; /* the next batch mends these first, and retries on its way */
        int64_t now_usec = wallclock_monotonic_usec();
        int64_t org_id = wallet_book_stuck_due(b, now_usec);
        if (org_id == 0)
            return;
        struct arena arena;
        arena_init(&arena);
        struct command cmd;
        own_command(e, &cmd, COMMAND_WALLETS_SYNC, org_id, -2, 0, &arena);
        long written = -1;
        bool committed = false;
        if (store_begin(e->store) == STORE_OK) {
            written = wallet_book_retry_stuck(b, e->store, &cmd, org_id, now_usec);
            committed = written > 0 && store_commit(e->store) == STORE_OK;
            if (!committed)
                store_rollback(e->store);
        }
        if (committed) {
            atomic_fetch_add(&e->commits, 1);
            atomic_store(&e->wallets_pending, wallet_book_pending(b));
            atomic_store(&e->wallet_pending_customers, b->dirty_count);
            atomic_store(&e->wallet_journal_records, (uint64_t)b->journal_records);
            atomic_store(&e->wallet_journal_bytes, b->journal_bytes);
        } else if (written != 0) { /* memory may be ahead of the rolled-back tables */
            wallet_book_clear(b);
            e->recover_wallets = true;
        }
        report_stuck(e);
        buf_free(&cmd.response);
        arena_free(&arena);
        if (written == 0 && wallet_book_stuck_due(b, now_usec) == org_id)
            return; /* (cannot be: a failed retry waits) */
    }
}

/*
 * The re-pricings passed over while their customers were stuck (subscriptions_give_back_usage),
 * each once its customer is written out: one writer's own command, right after the batch that wrote
 * it out. One that fails waits for the next turn of the writer (a batch, or the clock's second).
 */
static void run_reprices(struct engine *e)
{
    for (size_t i = 0; i < e->reprice_count;) {
        struct pending_reprice p = e->reprices[i];
        if (e->recover_wallets || wallet_book_is_stuck(&e->wallets, p.customer_id)) {
            i++;
            continue;
        }
        struct arena arena;
        arena_init(&arena);
        struct command cmd;
        own_command(e, &cmd, COMMAND_WALLETS_SYNC, p.org_id, -3, p.customer_id, &arena);
        cmd.as.wallets_sync.reprice_customer_id = p.customer_id;
        apply_batch(e, &cmd, 1, false);
        bool done = cmd.result == COMMAND_OK;
        buf_free(&cmd.response);
        arena_free(&arena);
        if (!done)
            return;
        /* (stuck again meanwhile: subscriptions_give_back_usage noted it anew, at the end) */
        for (size_t k = 0; k < e->reprice_count; k++)
            if (e->reprices[k].customer_id == p.customer_id &&
                !wallet_book_is_stuck(&e->wallets, p.customer_id)) {
                e->reprices[k] = e->reprices[--e->reprice_count];
                break;
            }
        i = 0;
    }
}

/* At a clean stop, the stuck customers: their debits stay in the journal, for the next start. */
static void report_stuck_on_stop(struct engine *e)
{
    struct wallet_book *b = &e->wallets;
    struct arena a;
    arena_init(&a);
    for (size_t i = 0; i < b->stuck_count; i++) {
        const struct wallet_stuck *s = &b->stuck[i];
        char org[STORE_ORG_NAME_MAX + 1], customer[CUSTOMER_EXTERNAL_ID_MAX + 1];
        describe_customer(e, s->org_id, s->customer_id, &a, org, sizeof org, customer,
                          sizeof customer);
        fprintf(stderr,
                "tallyd: stopping with the wallet debits of organization %" PRId64 " (%s) "
                "customer %s not written out: they stay in the wallet journal, written out by "
                "the next start that can%s\n",
                s->org_id, org, customer,
                e->reprice_count > 0 ? " (a re-pricing made while it was stuck is lost)" : "");
    }
    arena_free(&a);
}

void *writer_main(void *arg)
{
    struct engine *e = arg;
    pthread_setname_np(pthread_self(), "tally-writer"); /* for top -H and /proc; best effort */
    tally_time last_sweep = 0;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        bool sweep_due = false;
        while (!e->head && !e->urgent_head && !e->stopping && !sweep_due) {
            tally_time next = last_sweep + ENGINE_SWEEP_INTERVAL_SEC * TIMESTAMP_USEC_PER_SEC;
            struct timespec until = {(time_t)(next / TIMESTAMP_USEC_PER_SEC),
                                     (long)(next % TIMESTAMP_USEC_PER_SEC) * 1000};
            sweep_due = wallclock_now() >= next ||
                        pthread_cond_timedwait(&e->wake, &e->lock, &until) == ETIMEDOUT;
        }
        /* While a sync runs, a short queue waits for it to end, and grows meanwhile: its group
         * could not be acknowledged before the next sync anyway, and one commit for all of it
         * writes less than one each. A long queue starts at once: its work overlaps the sync. */
        while ((e->head || e->urgent_head) && !e->stopping && syncer_busy(e->syncer) &&
               atomic_load(&e->queue_depth) < ENGINE_OVERLAP_MIN)
            pthread_cond_wait(&e->wake, &e->lock);
        bool waiting = e->head || e->urgent_head;
        if (!waiting && sweep_due && !e->stopping) {
            pthread_mutex_unlock(&e->lock);
            last_sweep = wallclock_now();
            retry_stuck(e);
            sweep_real_clocks(e);
            if (e->reprice_count > 0)
                run_reprices(e);
            continue;
        }
        if (!waiting) {
            pthread_mutex_unlock(&e->lock);
            write_out_on_stop(e);
            report_stuck_on_stop(e);
            break;
        }
        pthread_mutex_unlock(&e->lock);
        /* Holds waiting go first, followed by one command of the queue (if any): holds
         * arriving faster than groups commit must not starve the queue, nor wait for a whole
         * group of it; such a group is never cut. Without holds, the queue's commands, cut
         * short if one arrives. */
        size_t holds, n;
        struct command *batch = take_urgent(e, &holds);
        struct command *queued = take_queued(e, holds > 0 ? 1 : ENGINE_BATCH_MAX, &n);
        if (!batch) {
            batch = queued;
        } else {
            struct command *tail = batch;
            while (tail->next)
                tail = tail->next;
            tail->next = queued;
        }
        apply_batch(e, batch, holds + n, holds == 0);
        if (e->reprice_count > 0)
            run_reprices(e);
        readback_snapshot_while_running(e);
    }
    return NULL;
}
