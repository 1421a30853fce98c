/*
 * engine/engine.c: the engine's interface (engine_start, engine_submit, engine_stop, the
 * counters), the organizations' clocks, the dispatch of a command to its handler, and one
 * command inside the group transaction (engine_apply_one: its answer kept under its
 * idempotency key, its undo when refused, the re-pricing it asks for).
 *
 * State the engine keeps in memory is per organization: its clock and the last customer
 * number handed out (so numbering a customer costs no query). It is changed only here, and
 * reloaded from the store whenever a transaction fails, so memory never runs ahead of disk.
 *
 * The rest of the writer is one file per concern, sharing engine/engine_internal.h: the loop
 * and group commit (writer), the events (ingest), the wallets' debits per period (settle),
 * holds and priced reads (holds), subscriptions, applied_coupons, customer_edit,
 * catalog_edit, and the start's read-back with its snapshots (readback).
 */
#include "engine/engine.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/applied_coupons.h"
#include "engine/catalog_edit.h"
#include "engine/customer_edit.h"
#include "engine/engine_internal.h"
#include "engine/holds.h"
#include "engine/ingest.h"
#include "engine/readback.h"
#include "engine/settle.h"
#include "engine/subscriptions.h"
#include "engine/wallets.h"
#include "engine/writer.h"
#include "sys/wallclock.h"
#include "util/vec.h"

/* ---- organizations' clocks ------------------------------------------------------------- */

struct org_load {
    struct org_state *items;
    size_t count, cap;
    bool failed;
};

static void collect_org(const struct store_org *o, void *ctx)
{
    struct org_load *l = ctx;
    if (l->failed)
        return;
    if (!vec_room((void **)&l->items, &l->cap, l->count, sizeof *l->items, 16)) {
        l->failed = true;
        return;
    }
    struct org_state *org = &l->items[l->count++];
    *org = (struct org_state){o->id,
                              o->has_test_clock,
                              o->test_clock_now,
                              o->last_customer_sequential_id,
                              {{0}, o->reminder_count}};
    memcpy(org->reminders.days, o->reminder_days, sizeof org->reminders.days);
}

/* Reloads what the writer numbers or clocks from (organizations, the last event id). */
bool engine_load_orgs(struct engine *e)
{
    struct org_load l = {0};
    if (store_org_each(store_conn(e->store), collect_org, &l) != STORE_OK || l.failed ||
        store_event_last_id(store_conn(e->store), &e->last_event_id) != STORE_OK) {
        free(l.items);
        return false;
    }
    free(e->orgs);
    e->orgs = l.items;
    e->org_count = l.count;
    e->reload_orgs = false;
    return true;
}

struct org_state *engine_find_org(struct engine *e, int64_t org_id)
{
    size_t lo = 0, hi = e->org_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->orgs[mid].org_id == org_id)
            return &e->orgs[mid];
        if (e->orgs[mid].org_id < org_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- command handlers ------------------------------------------------------------------- */

static enum command_result apply_test_clock_advance(struct engine *e, struct command *cmd,
                                                    struct org_state *org)
{
    tally_time to = cmd->as.test_clock_advance.to;
    if (!org->has_test_clock)
        return invalid(cmd, "test_clock", "organization_has_no_test_clock");
    if (to < org->test_clock_now)
        return invalid(cmd, "to", "cannot_move_backwards");
    if (to - org->test_clock_now > ENGINE_ADVANCE_SPAN_DAYS_MAX * TIMESTAMP_USEC_PER_DAY) {
        cmd->invalid_message = "an advance moves a test clock 50 years (18,262 days) at most: "
                               "the anniversaries of interval rules in between are made in one "
                               "command, which holds every organization's writes; advance in "
                               "steps. Nothing was changed";
        return invalid(cmd, "to", "value_is_out_of_range");
    }
    if (store_org_set_test_clock(e->store, org->org_id, to) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* What comes due in (now, to] happens at `to`: holds, grants and wallets expire. (Later:
     * period closes and reminders, each at its own instant, in order.) */
    org->test_clock_now = to;
    cmd->now = to;
    /* A sweep makes at most WALLET_RULE_CATCH_UP_MAX anniversaries of a wallet; a jump over
     * more sweeps again, so the answer's `now` has them all (an audit found a 30-year jump
     * of a weekly rule stop at 1,000 grants). Bounded: a sweep that did nothing ends it. No
     * customer is passed over (engine/sweep_quarantine.h is the real clock's): a failure is
     * the caller's answer. */
    size_t done;
    struct sweep_failure at;
    enum command_result r = COMMAND_OK;
    for (int sweeps = 0; r == COMMAND_OK && sweeps < ENGINE_ADVANCE_SWEEPS_MAX; sweeps++) {
        r = wallet_clock_sweep(&e->wallets, e->store, cmd, &org->reminders, NULL, &done, &at);
        if (r != COMMAND_OK || done == 0 ||
            !wallet_clock_due(e->store, org->org_id, &org->reminders, NULL, to))
            break;
    }
    return r == COMMAND_OK ? settle_periods(e, cmd, SIZE_MAX, NULL, &at) : r;
}

/* The real clock's sweep of an organization (sweep_real_clocks), passing over the customers
 * in quarantine; a failure says where it happened, for the quarantine. */
static enum command_result apply_sweep(struct engine *e, struct command *cmd)
{
    size_t done;
    struct org_state *org = engine_find_org(e, cmd->org_id);
    if (!org)
        return COMMAND_NOT_FOUND;
    const char *skip = cmd->as.sweep.skip_customers;
    struct sweep_failure *at = &cmd->as.sweep.failure;
    enum command_result r =
        wallet_clock_sweep(&e->wallets, e->store, cmd, &org->reminders, skip, &done, at);
    if (r == COMMAND_OK)
        r = settle_periods(e, cmd, ENGINE_SETTLE_PER_SWEEP_MAX, skip, at);
    at->failed = r != COMMAND_OK;
    return r;
}

static enum command_result dispatch(struct engine *e, struct command *cmd, struct org_state *org)
{
    switch (cmd->kind) {
    case COMMAND_CUSTOMER_UPSERT: return customer_edit_apply_upsert(e, cmd, org);
    case COMMAND_CUSTOMER_DELETE: return customer_edit_apply_delete(e, cmd);
    case COMMAND_TEST_CLOCK_ADVANCE: return apply_test_clock_advance(e, cmd, org);
    case COMMAND_CATALOG_PUT: return catalog_edit_apply_put(e, cmd);
    case COMMAND_CATALOG_DELETE: return catalog_edit_apply_delete(e, cmd);
    case COMMAND_SUBSCRIPTION_CREATE: return subscriptions_apply_create(e, cmd, org);
    case COMMAND_SUBSCRIPTION_UPDATE: return subscriptions_apply_update(e, cmd);
    case COMMAND_SUBSCRIPTION_TERMINATE: return subscriptions_apply_terminate(e, cmd);
    case COMMAND_APPLIED_COUPON_CREATE: return applied_coupons_apply_create(e, cmd);
    case COMMAND_APPLIED_COUPON_TERMINATE: return applied_coupons_apply_terminate(e, cmd);
    case COMMAND_EVENTS_INGEST: return ingest_apply(e, cmd);
    case COMMAND_USAGE_READ: return holds_apply_usage_read(e, cmd);
    case COMMAND_EVENT_FIND: return ingest_apply_event_find(e, cmd);
    case COMMAND_FEES_ESTIMATE: return holds_apply_fees_estimate(e, cmd);
    case COMMAND_WALLET_CREATE: return settle_apply_wallet_create(e, cmd);
    case COMMAND_WALLET_UPDATE:
    case COMMAND_WALLET_TERMINATE:
    case COMMAND_WALLET_TOP_UP:
    case COMMAND_INVOICE_UPDATE: return wallets_apply(&e->wallets, e->store, cmd);
    case COMMAND_AUTHORIZATION_CREATE: return holds_apply_create(e, cmd);
    case COMMAND_AUTHORIZATION_CAPTURE: return ingest_apply(e, cmd);
    case COMMAND_AUTHORIZATION_VOID: return holds_apply_void(e, cmd);
    case COMMAND_SWEEP: return apply_sweep(e, cmd);
    case COMMAND_WALLETS_SYNC: /* engine_apply_one flushed the book first */
        return cmd->as.wallets_sync.reprice_customer_id
                   ? engine_give_back_repriced(e, cmd, cmd->as.wallets_sync.reprice_customer_id)
                   : COMMAND_OK;
    /* engine_apply_one answered it from its key; here only if the key had no answer after all: the
     * request was not applied, and sending it again applies it */
    case COMMAND_KEY_REPLAY: return COMMAND_STALE;
    }
    assert(!"unknown command kind");
    return COMMAND_STORE_FAILED;
}

/* ---- one command inside the group transaction ------------------------------------------- */

/*
 * Whether a command can change an organization's current usage answers other than by
 * adding events (a price, a metric, a customer's zone, a subscription, the clock): such
 * commands are rare, and drop the organization's views rather than work out which.
 */
static bool changes_what_usage_shows(enum command_kind kind)
{
    switch (kind) {
    case COMMAND_EVENTS_INGEST:
    case COMMAND_USAGE_READ:
    case COMMAND_EVENT_FIND:
    case COMMAND_FEES_ESTIMATE:
    case COMMAND_WALLET_CREATE:
    case COMMAND_WALLET_UPDATE:
    case COMMAND_WALLET_TERMINATE:
    case COMMAND_WALLET_TOP_UP:
    case COMMAND_AUTHORIZATION_CREATE:
    case COMMAND_AUTHORIZATION_CAPTURE:
    case COMMAND_AUTHORIZATION_VOID:
    case COMMAND_SWEEP:
    case COMMAND_WALLETS_SYNC:
    case COMMAND_KEY_REPLAY:
    case COMMAND_INVOICE_UPDATE: return false;
    default: return true;
    }
}

/* An earlier answer under the same Idempotency-Key, if any: replay or conflict. */
static bool answer_from_key(struct engine *e, struct command *cmd, bool *failed)
{
    struct store_idempotent_answer prior;
    enum store_status s = store_idempotency_get(store_conn(e->store), cmd->org_id,
                                                cmd->idempotency_key, &prior, cmd->arena);
    if (s == STORE_NOT_FOUND)
        return false;
    if (s != STORE_OK) {
        *failed = true;
        return false;
    }
    if (memcmp(prior.request_hash, cmd->request_hash, sizeof prior.request_hash) != 0) {
        cmd->result = COMMAND_IDEMPOTENT_CONFLICT;
        cmd->conn = store_conn(e->store);
        cmd->render(cmd);
        cmd->conn = NULL;
        return true;
    }
    cmd->result = COMMAND_IDEMPOTENT_REPLAY;
    cmd->http_status = prior.http_status;
    buf_reset(&cmd->response);
    buf_append(&cmd->response, prior.body, prior.body_len);
    return true;
}

static bool names_missing(const char *code)
{
    static const char suffix[] = "_not_found";
    size_t n = code ? strlen(code) : 0;
    return n >= sizeof suffix - 1 && strcmp(code + n - (sizeof suffix - 1), suffix) == 0;
}

/*
 * Whether a refusal says that something the request names does not exist (a 404, or a 422
 * whose code is `<thing>_not_found`: a customer, a subscription, a metric): once it is made
 * the same request succeeds, so its key must be free to carry it. Refused, the command
 * changed nothing. Only where the lookup ran decided it before (one made before the writer
 * kept nothing, one of the writer's was kept and replayed for good: audit 2).
 */
static bool refused_as_missing(const struct command *cmd)
{
    switch (cmd->result) {
    case COMMAND_NOT_FOUND:
    case COMMAND_REF_NOT_FOUND: return true;
    case COMMAND_INVALID: break;
    default: return false;
    }
    if (names_missing(cmd->invalid_code))
        return true;
    if (cmd->kind != COMMAND_EVENTS_INGEST && cmd->kind != COMMAND_AUTHORIZATION_CAPTURE)
        return false;
    for (size_t i = 0; i < cmd->as.events_ingest.refusal_count; i++)
        if (names_missing(cmd->as.events_ingest.refusals[i].code))
            return true;
    return false;
}

static bool remember_answer(struct engine *e, struct command *cmd)
{
    struct store_idempotent_answer a;
    memcpy(a.request_hash, cmd->request_hash, sizeof a.request_hash);
    a.http_status = cmd->http_status;
    a.body = cmd->response.data ? cmd->response.data : "";
    a.body_len = cmd->response.len;
    return store_idempotency_put(e->store, cmd->org_id, cmd->idempotency_key, &a, cmd->now) ==
           STORE_OK;
}

/*
 * Live usage is a cache of the store: a change to what prices it (plans, metrics, taxes,
 * subscriptions) or an events command that did not fully apply drops it, to be rebuilt
 * from disk on next use.
 */
/* The usages of one organization in the book, or of one of its customers (customer_id). */
struct org_usages {
    int64_t org_id, customer_id;
    int64_t *ids;
    size_t count;
};

static void collect_usage(struct usage *u, void *ctx)
{
    struct org_usages *r = ctx;
    if (u->org_id == r->org_id && (!r->customer_id || u->customer_id == r->customer_id))
        r->ids[r->count++] = u->subscription_id;
}

/*
 * After a re-pricing (a plan, metric or tax edit; a customer's taxes or time zone), what the
 * live usages' charges debited this period beyond what they bring now comes back at once (a
 * price cut, a tax removed, a charge the plan no longer has): a wallet shows it without
 * waiting for the subscription's next event, which may never come. What a re-pricing adds is
 * debited then too, never refused (wallets_debit_raised): a command that asked to spend no
 * credits is not refused for them, and what they cannot cover is the invoice's. Every
 * usage of the organization (customer_id 0) or of one customer. Not while the book is
 * incomplete (a rebuild failed; the next batch rescans first): the next debits settle it then.
 * Nor for a subscription that has ended: its period was settled to its end when it ended
 * (settle_to_end) and is the invoice's since; the book may still hold its usage (a late event
 * may touch it), but a start does not build it, and a price cut gave back to it only until a
 * restart (found by tests/api/restart_usage.test.mjs).
 */
struct debited_usages {
    struct engine *e;
    struct command *cmd;
};

/* Puts the usage of a live subscription in the book, unless it is there (hold_debited_usages). */
static bool hold_debited_usage(int64_t subscription_id, void *ctx)
{
    struct debited_usages *d = ctx;
    struct engine *e = d->e;
    if (usage_book_find(&e->usage, subscription_id))
        return true;
    struct store_subscription row;
    enum store_status s = store_subscription_get(store_conn(e->store), d->cmd->org_id,
                                                 subscription_id, &row, d->cmd->arena);
    if (s != STORE_OK || !subscription_is_live(&row.sub, d->cmd->now))
        return s != STORE_ERROR;
    const char *why;
    return usage_book_get(&e->usage, e->store, e->tzdb, &row, d->cmd->now, e->fingerprint_key,
                          &why) != NULL;
}

/*
 * The usages a re-pricing gives back from that the book may lack: a start builds those whose
 * events it reads back, a live server also those its commands built, so a subscription whose
 * period's only debit came from units carried in (a recurring charge) was missing after a
 * restart, and a plan edit that cut or removed its charge gave back nothing where a live
 * server gave it back at once (a restart-twin fuzzer). Before a catalog write that re-prices,
 * each live subscription its wallets hold a debit of is built from the plan as it was, so that
 * the write's re-pricing gives back from it as from any usage the book held. A customer's edit
 * of its taxes or time zone (engine_reprice_customer) had the same gap, for its usages alone.
 */
enum command_result engine_hold_debited_usages(struct engine *e, struct command *cmd,
                                               int64_t customer_id)
{
    if (e->usage_incomplete)
        return COMMAND_OK; /* the next batch rescans the book whole */
    struct debited_usages d = {e, cmd};
    return store_debited_subscriptions(store_conn(e->store), cmd->org_id, customer_id, cmd->now,
                                       hold_debited_usage, &d) == STORE_OK
               ? COMMAND_OK
               : COMMAND_STORE_FAILED;
}

enum command_result engine_give_back_repriced(struct engine *e, struct command *cmd,
                                              int64_t customer_id)
{
    if (e->usage_incomplete)
        return COMMAND_OK;

    struct org_usages r = {cmd->org_id, customer_id, malloc(sizeof(int64_t) * (e->usage.count + 1)),
                           0};
    if (!r.ids)
        return COMMAND_STORE_FAILED;
    usage_book_each(&e->usage, collect_usage, &r);
    enum command_result result = COMMAND_OK;
    size_t live = 0; /* the live ones kept at the front of r.ids, for the second pass */
    for (size_t i = 0; i < r.count && result == COMMAND_OK; i++) {
        struct store_subscription row;
        enum store_status s =
            store_subscription_get(store_conn(e->store), cmd->org_id, r.ids[i], &row, cmd->arena);
        if (s == STORE_ERROR)
            result = COMMAND_STORE_FAILED;
        else if (s == STORE_OK && subscription_is_live(&row.sub, cmd->now)) {
            result = subscriptions_give_back_usage(e, cmd, usage_book_find(&e->usage, r.ids[i]));
            r.ids[live++] = r.ids[i];
        }
    }
    /* every fall given back before any rise is debited, as a command's events are settled
     * (settle_debit_wallets): an audit found one edit's rise on a customer's first
     * subscription left to the invoice, its fall on the second then given back to the wallet */
    for (size_t i = 0; i < live && result == COMMAND_OK; i++)
        result = subscriptions_debit_raised(e, cmd, usage_book_find(&e->usage, r.ids[i]));
    free(r.ids);
    return result;
}

/*
 * Past this many stored events to read back, a catalog write rebuilds the book with one scan of
 * the events since its earliest reference (readback_rescan_usage) instead of reading each usage's
 * references by id: spread over many usages, each of those costs a block read (28.8 s for
 * 2.9M events over 1,000 subscriptions, bench/rebuilds.sh).
 */
#define USAGE_RESCAN_MIN_EVENTS 65536

/*
 * After a catalog write, the organization's usages are priced again: the states the write
 * cannot change move over (usage_book_refresh), and those it can are read back, by id or, when
 * many, with one scan.
 */
static void reprice_organization(struct engine *e, const struct command *cmd)
{
    struct org_usages r = {cmd->org_id, 0, malloc(sizeof(int64_t) * (e->usage.count + 1)), 0};
    if (!r.ids) {
        e->usage_incomplete = true; /* out of memory: rescan before the next batch */
        return;
    }
    usage_book_each(&e->usage, collect_usage, &r);
    size_t reading = 0, to_read = 0; /* r.ids[0, reading): those that must read events */
    for (size_t i = 0; i < r.count; i++) {
        size_t would_read;
        if (!usage_book_refresh(&e->usage, e->store, e->tzdb, cmd->org_id, r.ids[i], cmd->now,
                                e->fingerprint_key, SIZE_MAX, &would_read))
            e->usage_incomplete = true;
        else if (would_read > 0) {
            r.ids[reading++] = r.ids[i];
            to_read += would_read;
        }
    }
    if (to_read >= USAGE_RESCAN_MIN_EVENTS) {
        if (!readback_rescan_usage(e))
            e->usage_incomplete = true;
    } else {
        for (size_t i = 0; i < reading; i++)
            if (!usage_book_refresh(&e->usage, e->store, e->tzdb, cmd->org_id, r.ids[i], cmd->now,
                                    e->fingerprint_key, SIZE_MAX, NULL))
                e->usage_incomplete = true;
    }
    free(r.ids);
}

static void refresh_subscriptions(struct engine *e, const struct command *cmd, const int64_t *ids,
                                  size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (ids[i] && !usage_book_refresh(&e->usage, e->store, e->tzdb, cmd->org_id, ids[i],
                                          cmd->now, e->fingerprint_key, SIZE_MAX, NULL))
            e->usage_incomplete = true;
}

/* A customer's usages, after a change to what bounds their periods (its time zone); `earlier`:
 * one of its periods starts earlier now, in the book or not. */
void engine_reprice_customer(struct engine *e, const struct command *cmd, int64_t customer_id,
                             bool earlier)
{
    e->usage_floor = e->usage_floor || earlier;
    struct org_usages r = {cmd->org_id, customer_id, malloc(sizeof(int64_t) * (e->usage.count + 1)),
                           0};
    if (!r.ids) {
        e->usage_incomplete = true; /* out of memory: rescan before the next batch */
        return;
    }
    usage_book_each(&e->usage, collect_usage, &r);
    for (size_t i = 0; i < r.count; i++) {
        tally_time was_from = usage_book_find(&e->usage, r.ids[i])->from;
        refresh_subscriptions(e, cmd, &r.ids[i], 1);
        const struct usage *u = usage_book_find(&e->usage, r.ids[i]);
        earlier = earlier || (u && u->from < was_from);
    }
    free(r.ids);
    /* A period that now starts earlier takes events its usage no longer references (they were
     * the previous period's): only a scan of every stored event finds them, and it runs now,
     * before the next command of the batch prices or debits that usage. */
    if (earlier) {
        e->usage_incomplete = true; /* the scan reads from the first event */
        if (!readback_rescan_usage(e))
            e->usage_incomplete = true;
    }
}

/*
 * Whether a subscription a command changed now leaves events its usage refers to outside its
 * life: sent ahead to it, then it was canceled (a downgrade canceled, replaced, or overtaken by
 * an upgrade), or it now ends before them. Those events belong to whichever subscription of the
 * same external id covers their time (usage_of_stored), which a scan hands them to.
 */
static bool leaves_events_behind(struct engine *e, const struct command *cmd, const int64_t *ids,
                                 size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct usage *u = ids[i] ? usage_book_find(&e->usage, ids[i]) : NULL;
        struct store_subscription row;
        if (!u || u->event_count == 0 ||
            store_subscription_get(store_conn(e->store), cmd->org_id, ids[i], &row, cmd->arena) !=
                STORE_OK)
            continue;
        tally_time end = subscription_status_at(&row.sub, cmd->now) == SUBSCRIPTION_CANCELED
                             ? TIMESTAMP_MIN
                             : subscription_usage_end(&row.sub);
        for (size_t k = 0; k < u->event_count; k++) /* (the scan tells which were sent ahead) */
            if (u->events[k].timestamp >= end && u->events[k].timestamp >= cmd->now)
                return true;
    }
    return false;
}

/* The same customer's ended subscriptions under an external id that takes_events_sent_ahead
 * looks for in the book; with more, any event of another subscription read is taken. */
#define TAKEN_OVER_MAX 16
/* The events under the external id timestamped in the subscription's life read at once; with
 * more, a second read finds the oldest, where a scan starts. */
#define TAKEN_OVER_EVENTS_MAX 64

/* Where events of `ended` timestamped at `t` or later are not its own (a scan's rule,
 * usage_of_stored): its end, or, canceled before it began, anywhere. */
static tally_time ended_own_until(const struct subscription *ended, tally_time now)
{
    return subscription_status_at(ended, now) == SUBSCRIPTION_CANCELED ? TIMESTAMP_MIN
                                                                       : subscription_end(ended);
}

/*
 * Whether the subscription a command made or changed (made anew, or its end moved later) now
 * covers the time of events the same customer sent ahead, past its end, to a subscription of
 * the same external id that has ended (terminated, or canceled before it began), and *from:
 * the first event a scan must read to hand them over. A scan counts those in the subscription
 * covering their time when it is the same customer's (usage_of_stored), as Lago reads events by
 * external id within a period's bounds; live they stayed in the ended one's usage, so the
 * customer's usage and wallet changed at a restart (found by a review of the rule for another
 * customer's, tests/api/restart_usage.test.mjs).
 *
 * The ended one's usage holds them while it is in the book (it ended since the last scan); a
 * scan drops it, and the events it found no home for then are referred to by no usage, so
 * the store is asked for the events under the external id timestamped in this one's life (a
 * superset: the scan applies the rule). A store failure leaves the book to a full rescan.
 */
static bool takes_events_sent_ahead(struct engine *e, const struct command *cmd, int64_t *from)
{
    const struct subscription *sub = &cmd->subscription;
    *from = INT64_MAX;
    if (cmd->kind != COMMAND_SUBSCRIPTION_CREATE && cmd->kind != COMMAND_SUBSCRIPTION_UPDATE)
        return false;
    const struct subscription_update *update = &cmd->as.subscription_update;
    if (cmd->kind == COMMAND_SUBSCRIPTION_UPDATE && !update->has_ending_at &&
        !update->has_subscription_at)
        return false; /* its life is as it was: what it covers was handed over then */
    struct store_subscription_filter f = {.customer_id = sub->customer_id,
                                          .status_mask = 1u << SUBSCRIPTION_TERMINATED |
                                                         1u << SUBSCRIPTION_CANCELED,
                                          .external_id = sub->external_id};
    struct store_subscription *ended;
    size_t ended_count, count;
    int64_t total;
    if (store_subscription_find(store_conn(e->store), cmd->org_id, &f, cmd->now, 0, TAKEN_OVER_MAX,
                                &ended, &ended_count, &total, cmd->arena) != STORE_OK) {
        e->usage_incomplete = true;
        return false;
    }
    bool all_known = total <= (int64_t)ended_count, in_book = all_known;
    for (size_t i = 0; i < ended_count; i++) {
        const struct usage *u = usage_book_find(&e->usage, ended[i].sub.id);
        if (!u || ended[i].sub.id == sub->id) {
            in_book = in_book && ended[i].sub.id == sub->id;
            continue;
        }
        tally_time end = ended_own_until(&ended[i].sub, cmd->now);
        for (size_t k = 0; k < u->event_count; k++)
            if (u->events[k].timestamp >= end && u->events[k].id < *from)
                *from = u->events[k].id;
    }
    if (in_book)
        return *from != INT64_MAX;
    struct store_event_filter ef = {.external_subscription_id = sub->external_id,
                                    .has_from = true,
                                    .from = sub->started_at,
                                    .has_to = sub->has_ending_at,
                                    .to = sub->ending_at};
    struct store_event *events;
    enum store_status s =
        store_event_list(store_conn(e->store), cmd->org_id, &ef, 0, TAKEN_OVER_EVENTS_MAX, &events,
                         &count, &total, cmd->arena);
    if (s == STORE_OK && total > (int64_t)count) { /* newest first: the oldest is the last */
        s = store_event_list(store_conn(e->store), cmd->org_id, &ef, total - 1, 1, &events, &count,
                             &total, cmd->arena);
        all_known = false; /* (any taken: those between were not read) */
    }
    if (s != STORE_OK) {
        e->usage_incomplete = true;
        return false;
    }
    /* What a scan handed over stays in the store under the ended one: not taken again, when
     * every candidate was read (else the oldest read stands for those between). */
    const struct usage *own = usage_book_find(&e->usage, sub->id);
    for (size_t i = 0; i < count; i++) {
        const struct store_event *ev = &events[i];
        bool taken = !all_known && ev->subscription_id != sub->id;
        for (size_t k = 0; !taken && k < ended_count; k++)
            taken = ended[k].sub.id == ev->subscription_id && ev->timestamp > ev->created_at &&
                    ev->timestamp >= ended_own_until(&ended[k].sub, cmd->now);
        if (taken && all_known && own && usage_has_counted(own, ev->id, ev->timestamp))
            taken = false;
        if (taken && ev->id < *from)
            *from = ev->id;
    }
    return *from != INT64_MAX;
}

/*
 * Commands that may change what prices every usage of the organization (plans, metrics, taxes):
 * pricing it all again costs a rebuild of each live usage, seconds for thousands of
 * subscriptions, with the writer held (an audit timed an add-on's rename at 1.3 s over 3,000).
 * Add-ons and coupons price no usage; a new plan or metric is one no subscription uses yet; a
 * new tax reaches usage only as a default of the organization. Changes and deletions of the
 * others may reach any usage, by what they name.
 */
static bool reprices_organization(const struct command *cmd)
{
    enum catalog_kind kind = cmd->kind == COMMAND_CATALOG_PUT      ? cmd->as.catalog_put.item.kind
                             : cmd->kind == COMMAND_CATALOG_DELETE ? cmd->as.catalog_delete.kind
                                                                   : 0;
    if (kind == 0 || kind == CATALOG_ADD_ON || kind == CATALOG_COUPON)
        return false;
    if (cmd->kind == COMMAND_CATALOG_PUT && cmd->as.catalog_put.item.id == 0)
        return kind == CATALOG_TAX && catalog_edit_is_default_tax(cmd->as.catalog_put.item.body);
    return true;
}

/*
 * Every start reads from event `from` on, until a clean stop's snapshot marks where the book then
 * reaches (the setting commits with the command): an event a subscription took over by a rescan
 * from below the mark of the snapshot on disk was read by no later start (an audit: taken live
 * after a clean stop, lost by the next start, clean or not, since a stop with nothing stored
 * since keeps the snapshot and its mark).
 */
static bool lower_usage_floor(struct engine *e, int64_t from)
{
    int64_t floor = INT64_MAX;
    if (e->usage_floor && store_setting_get(store_conn(e->store), ENGINE_USAGE_FLOOR_SETTING,
                                            &floor, sizeof floor) == STORE_ERROR)
        return false;
    if (from < floor &&
        store_setting_put(e->store, ENGINE_USAGE_FLOOR_SETTING, &from, sizeof from) != STORE_OK)
        return false;
    e->usage_floor = true;
    return true;
}

/*
 * Live usage is a cache of the store: a change to what prices it (plans, metrics, taxes) or to
 * a subscription's bounds rebuilds what it priced, from the plan as it is now. False if a scan
 * floor it needs could not be stored (the command fails).
 */
static bool refresh_usage(struct engine *e, const struct command *cmd)
{
    if (cmd->result != COMMAND_OK)
        return true;
    if (reprices_organization(cmd)) {
        /* a price edit that moved scheduled downgrades (subscriptions_recheck_downgrades): what
         * they leave behind is handed over as after the subscription commands below (the scan
         * prices every usage again too) */
        if (leaves_events_behind(e, cmd, cmd->moved_subscription_ids,
                                 cmd->moved_subscription_count)) {
            if (!readback_rescan_usage(e))
                e->usage_incomplete = true;
            return true;
        }
        reprice_organization(e, cmd);
        return true;
    }
    int64_t subs[2] = {0, 0};
    int64_t from;
    switch (cmd->kind) {
    case COMMAND_SUBSCRIPTION_CREATE:
    case COMMAND_SUBSCRIPTION_UPDATE:
    case COMMAND_SUBSCRIPTION_TERMINATE:
        subs[0] = cmd->subscription.id;
        subs[1] = cmd->subscription.previous_id ? cmd->subscription.previous_id
                                                : cmd->subscription.next_id;
        /* (a store failure there left the book incomplete: the next batch rescans it all) */
        bool takes = takes_events_sent_ahead(e, cmd, &from);
        if (takes && !lower_usage_floor(e, from))
            return false;
        if (takes || leaves_events_behind(e, cmd, subs, 2) ||
            leaves_events_behind(e, cmd, cmd->ended_subscription_ids,
                                 cmd->ended_subscription_count)) {
            /* from the first event the book (that usage too) refers to, or taken over */
            if (!readback_rescan_usage_from(e, from))
                e->usage_incomplete = true;
            return true;
        }
        refresh_subscriptions(e, cmd, subs, 2);
        refresh_subscriptions(e, cmd, cmd->ended_subscription_ids, cmd->ended_subscription_count);
        return true;
    case COMMAND_CUSTOMER_DELETE:
        refresh_subscriptions(e, cmd, cmd->ended_subscription_ids, cmd->ended_subscription_count);
        return true;
    default: return true;
    }
}

/* Commands that change nothing (the writer answers them from memory). */
bool engine_reads_only(const struct command *c)
{
    return c->kind == COMMAND_USAGE_READ || c->kind == COMMAND_EVENT_FIND ||
           c->kind == COMMAND_FEES_ESTIMATE;
}

/* Commands whose wallet changes wait in memory and the journal (wallet_book.h): usage and
 * holds, which only debit, hold and release; and reads, which change nothing. */
static bool defers_wallet_writes(const struct command *c)
{
    switch (c->kind) {
    case COMMAND_EVENTS_INGEST:
    case COMMAND_AUTHORIZATION_CREATE:
    case COMMAND_AUTHORIZATION_CAPTURE:
    case COMMAND_AUTHORIZATION_VOID: return true;
    default: return engine_reads_only(c);
    }
}

/* The answer of a command that needed a customer whose wallets wait for their write-out. */
#define STUCK_MESSAGE                                                                              \
    "this customer's wallet debits could not be written to its wallets (tallyd's log says "        \
    "why); they are kept and retried, and until then its wallet commands fail; nothing was "       \
    "applied, retry later"

void engine_apply_one(struct engine *e, struct command *cmd)
{
    sub_cache_release(&e->subscriptions); /* no row of the cache is borrowed between commands */
    struct org_state *org = engine_find_org(e, cmd->org_id);
    cmd->now = org && org->has_test_clock ? org->test_clock_now : wallclock_now();
    /* Event and hold commands keep their wallet writes for the flush (the group's journal
     * record meanwhile); any other command that may touch wallets first has them written,
     * outside its own savepoint (a failure there fails the batch: it holds half a flush). */
    bool defer = defers_wallet_writes(cmd);
    if (!defer && wallet_book_flush(&e->wallets, e->store, cmd) != COMMAND_OK) {
        e->batch_failed = true;
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    if (store_savepoint(e->store) != STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    bool failed = false;
    cmd->rendered = true; /* a replayed or conflicting key's answer is complete */
    e->command_mark = e->added_count;
    e->event_id_mark = e->last_event_id;
    e->touch_mark = e->touch_count;
    e->command_seq++;
    wallet_book_mark_command(&e->wallets, defer);
    if (cmd->idempotency_key && answer_from_key(e, cmd, &failed))
        goto release;
    if (failed)
        goto fail;
    if (org && changes_what_usage_shows(cmd->kind)) {
        usage_views_drop_org(&e->views, cmd->org_id); /* its next reads ask the writer */
        sub_cache_invalidate(&e->subscriptions);
    }
    /* a customer a refused command made (POST /subscriptions names a new one) gives its number
     * back with the undo: spent, the next customer's differed after a restart (an audit) */
    int64_t customer_seq_mark = org ? org->last_customer_sequential_id : 0;
    /* (what a catalog write re-prices must be in the book as it was priced before the write) */
    if (org && reprices_organization(cmd) && engine_hold_debited_usages(e, cmd, 0) != COMMAND_OK)
        e->usage_incomplete = true; /* a store failure: the next batch rescans it all */
    cmd->result = org ? dispatch(e, cmd, org) : COMMAND_NOT_FOUND;
    if (!refresh_usage(e, cmd))
        cmd->result = COMMAND_STORE_FAILED;
    if (cmd->result == COMMAND_OK && reprices_organization(cmd))
        cmd->result = engine_give_back_repriced(e, cmd, 0);
    /* a price cut through new overrides comes back at once, as a plan edit's does (it waited
     * for a later re-pricing, and was lost when the period ended first: an audit) */
    const struct usage *replanned =
        cmd->result == COMMAND_OK && cmd->replanned && !e->usage_incomplete
            ? usage_book_find(&e->usage, cmd->subscription.id)
            : NULL;
    if (replanned && (cmd->result = subscriptions_give_back_usage(e, cmd, replanned)) == COMMAND_OK)
        cmd->result = subscriptions_debit_raised(e, cmd, replanned);
    /* A subscription made or changed now may carry units into a period it starts mid-way (an
     * upgrade, one made again under the same external id): that period starts now, and is
     * debited now as each next one will be at its start (found by an audit: an upgrade's
     * first period was paid only if an event came) */
    if (cmd->result == COMMAND_OK && cmd->kind == COMMAND_SUBSCRIPTION_CREATE &&
        !e->usage_incomplete)
        cmd->result = settle_now(e, cmd, cmd->subscription.id);
    /* and so are those a plan's price edit upgraded (subscriptions_recheck_downgrades) */
    for (size_t i = 0;
         cmd->result == COMMAND_OK && !e->usage_incomplete && i < cmd->started_subscription_count;
         i++)
        cmd->result = settle_now(e, cmd, cmd->started_subscription_ids[i]);
    if (cmd->result == COMMAND_STORE_FAILED && e->wallets.refused_stuck && !cmd->failure_message)
        cmd->failure_message = STUCK_MESSAGE;
    if (cmd->result == COMMAND_STORE_FAILED)
        goto fail;
    /* A refused command leaves no trace but its answer, which the key still records. */
    if (cmd->result != COMMAND_OK) {
        sub_cache_invalidate(&e->subscriptions); /* it may hold rows the undo takes back */
        if (org)
            org->last_customer_sequential_id = customer_seq_mark;
        e->last_event_id = e->event_id_mark;
        ingest_forget_added(e, e->command_mark);
        if (!wallet_book_undo_command(&e->wallets))
            goto fail_batch;
        if (store_savepoint_undo(e->store) != STORE_OK)
            goto fail;
        ingest_forget_touches(e, e->touch_mark, e->command_seq); /* after the undo: rows gone too */
        /* a usage refused for lack of credits is still one the threshold rules see (Lago's
         * check them at every usage): a hard wallet at 0 refuses every debit, and its rule
         * would never buy again. What they buy is kept with the refusal. */
        if (cmd->result == COMMAND_INSUFFICIENT_CREDITS &&
            wallets_refused_usage(&e->wallets, e->store, cmd) != COMMAND_OK)
            goto fail;
    }
    /* an answer the key must remember is rendered here, with the change it describes */
    cmd->rendered = !cmd->render_by_owner || cmd->idempotency_key;
    if (cmd->rendered) {
        cmd->conn = store_conn(e->store);
        cmd->render(cmd);
        cmd->conn = NULL;
    }
    if (cmd->result == COMMAND_STORE_FAILED) /* rendering read the store and failed */
        goto fail;
    /* a replay that found no answer was not applied: its key stays free for the request; so
     * does a stale update's (409 concurrent_update says "retry it": kept, the retry with its
     * key would replay the 409 for ever, an audit found), and a refusal for something that
     * does not exist yet (refused_as_missing) */
    if (cmd->idempotency_key && cmd->kind != COMMAND_KEY_REPLAY && cmd->result != COMMAND_STALE &&
        !refused_as_missing(cmd) && !remember_answer(e, cmd))
        goto fail;
release:
    if (store_savepoint_release(e->store) == STORE_OK)
        return;
fail:
    store_savepoint_rollback(e->store);
    sub_cache_invalidate(&e->subscriptions);
    e->last_event_id = e->event_id_mark;
    ingest_forget_added(e, e->command_mark);
    ingest_forget_touches(e, e->touch_mark, e->command_seq);
    if (wallet_book_undo_command(&e->wallets)) {
        cmd->result = COMMAND_STORE_FAILED;
        e->reload_orgs = true; /* a handler may have moved memory ahead of the rolled-back disk */
        return;
    }
fail_batch:
    /* Memory cannot be put back as it was before this command (ingest_debits_unrefusable was wrong,
     * or the store failed under it): the whole group fails, and the wallets are rebuilt from
     * the tables and the journal before the next (counted as a failed commit). */
    e->batch_failed = true;
    cmd->result = COMMAND_STORE_FAILED;
    e->reload_orgs = true;
}

/* ---- starting, submitting, stopping ---------------------------------------------------- */

static bool sync_store(void *engine)
{
    struct engine *e = engine;
    return store_sync(e->store) == STORE_OK;
}

/* The syncer answered all: a writer waiting for that to start its next group goes on. */
static void syncer_idle(void *engine)
{
    struct engine *e = engine;
    pthread_mutex_lock(&e->lock);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

/* Frees the writer's memory and the engine itself (not the store). */
static void free_state(struct engine *e)
{
    dedup_free(&e->identities);
    bigmem_prefaulter_stop(e->prefaulter); /* after the set: its release waits for it */
    usage_book_free(&e->usage);
    usage_views_free(&e->views);
    sub_cache_free(&e->subscriptions);
    wallet_book_free(&e->wallets);
    sweep_quarantine_free(&e->quarantine);
    free(e->reprices);
    free(e->touches);
    free(e->added);
    free(e->orgs);
    free(e);
}

struct engine *engine_start(struct store *st, struct tzdb *tzdb, const struct engine_options *opts,
                            char err[STORE_ERR_MAX])
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, STORE_ERR_MAX, "engine: out of memory");
        return NULL;
    }
    e->store = st;
    e->tzdb = tzdb;
    e->prefaulter = bigmem_prefaulter_start(); /* NULL: the writer faults the set's pages in */
    /* the writer's largest table, written at random: the next growth's faulted in ahead on
     * the prefaulter's thread rather than a page at a time by the writer's inserts */
    e->identity_memory = bigmem_dedup_memory(e->prefaulter);
    e->snapshot_every = opts ? opts->snapshot_every : ENGINE_SNAPSHOT_EVERY_DEFAULT;
    usage_book_init(&e->usage);
    wallet_book_init(&e->wallets);
    e->wallets.tzdb = tzdb;
    /* (the start-up scan asks it whether metrics are recurring; the key is read before) */
    sub_cache_init(&e->subscriptions, e->fingerprint_key);
    err[0] = '\0';
    if (!engine_load_orgs(e) || !readback_load_events(e, err)) {
        if (!err[0])
            snprintf(err, STORE_ERR_MAX, "engine: cannot load organizations: %s",
                     store_errmsg(store_conn(st)));
        sub_cache_free(&e->subscriptions);
        usage_book_free(&e->usage);
        dedup_free(&e->identities);
        bigmem_prefaulter_stop(e->prefaulter);
        free(e->orgs);
        free(e);
        return NULL;
    }
    /* a journal left by a crash: readers wait for the first batch to write it out */
    int64_t journal_records = 0;
    e->recover_wallets = true;
    if (store_wallet_journal_count(store_conn(st), &journal_records) != STORE_OK)
        journal_records = 1; /* unknown: assume the worst; the first batch finds out */
    atomic_init(&e->wallets_pending, journal_records > 0);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    usage_views_init(&e->views);
    bool started =
        store_defer_sync(st, err) && (e->syncer = syncer_start(sync_store, syncer_idle, e)) != NULL;
    if (started && pthread_create(&e->thread, NULL, writer_main, e) != 0) {
        syncer_stop(e->syncer);
        started = false;
    }
    if (!started) {
        if (!err[0])
            snprintf(err, STORE_ERR_MAX, "engine: cannot start its threads");
        pthread_mutex_destroy(&e->lock);
        pthread_cond_destroy(&e->wake);
        free_state(e);
        return NULL; /* the caller still owns the store */
    }
    return e;
}

void engine_submit(struct engine *e, struct command *cmd)
{
    if (cmd->kind == COMMAND_EVENTS_INGEST || cmd->kind == COMMAND_AUTHORIZATION_CAPTURE)
        ingest_fingerprint_events(e, cmd);
    cmd->next = NULL;
    pthread_mutex_lock(&e->lock);
    assert(!e->stopping);
    struct command **head = &e->head, **tail = &e->tail;
    if (writer_urgent(cmd)) {
        head = &e->urgent_head;
        tail = &e->urgent_tail;
        atomic_store(&e->urgent_waiting, true);
    }
    if (*tail)
        (*tail)->next = cmd;
    else
        *head = cmd;
    *tail = cmd;
    atomic_fetch_add(&e->queue_depth, 1);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

bool engine_stop(struct engine *e, char err[STORE_ERR_MAX])
{
    char ignored[STORE_ERR_MAX];
    if (!err)
        err = ignored;
    err[0] = '\0';
    if (!e)
        return true;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    readback_reap_snapshot(e, true);
    bool sound = !syncer_failed(e->syncer);
    syncer_stop(e->syncer); /* answers what the writer handed over */
    /* The writer's own last write-out was not synced; should this fail, nothing acknowledged
     * is lost: the next start writes the wallet journal out again. */
    sound = store_sync(e->store) == STORE_OK && sound;
    if (!sound)
        snprintf(err, STORE_ERR_MAX, "snapshot: not saved, the log could not be synced");
    /* Nothing stored since the newest snapshot (loaded or saved): it still holds exactly
     * these sets, and its usage mark can only be lower than now, which is safe. An idle stop
     * of a large history writes nothing. */
    bool current =
        e->snapshot_events == e->last_event_id && e->snapshot_events > 0 && !e->usage_floor;
    bool saved = sound && (current || readback_save_snapshot(e, err));
    if (saved && e->usage_floor) /* the new mark reaches what the floor kept: cleared */
        readback_clear_usage_floor(e->store);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    store_close(e->store);
    free_state(e);
    return saved;
}

void engine_start_report(struct engine *e, struct engine_start_report *out)
{
    *out = e->start;
}

bool engine_wallets_pending(struct engine *e)
{
    return atomic_load(&e->wallets_pending);
}

bool engine_failed(struct engine *e)
{
    return syncer_failed(e->syncer);
}

int engine_store_failing(struct engine *e)
{
    return atomic_load(&e->store_failing);
}

struct usage_views *engine_usage_views(struct engine *e)
{
    return &e->views;
}

void engine_stats(struct engine *e, struct engine_stats *out)
{
    out->commands = atomic_load(&e->commands);
    out->commits = atomic_load(&e->commits);
    out->commit_failures = atomic_load(&e->commit_failures);
    out->queue_depth = atomic_load(&e->queue_depth);
    out->batch_size_sum = atomic_load(&e->batch_size_sum);
    for (int i = 0; i < ENGINE_BATCH_BUCKETS; i++)
        out->batch_size_buckets[i] = atomic_load(&e->batch_buckets[i]);
    out->wallet_pending_customers = atomic_load(&e->wallet_pending_customers);
    out->wallet_journal_records = atomic_load(&e->wallet_journal_records);
    out->wallet_journal_bytes = atomic_load(&e->wallet_journal_bytes);
    out->syncs = syncer_syncs(e->syncer);
    out->sync_failed = syncer_failed(e->syncer);
    out->snapshots = atomic_load(&e->snapshots);
    out->snapshot_failures = atomic_load(&e->snapshot_failures);
    out->snapshot_events = atomic_load(&e->snapshot_events_shown);
    out->usage_builds = atomic_load(&e->usage_builds_shown);
    out->usage_events_read = atomic_load(&e->usage_events_read_shown);
    out->usage_passed_over = atomic_load(&e->usage_passed_over_shown);
    out->sweep_failures = atomic_load(&e->sweep_failures);
    out->sweep_quarantined = atomic_load(&e->sweep_quarantined);
    out->writeout_failures = atomic_load(&e->writeout_failures);
    out->writeout_stuck = atomic_load(&e->writeout_stuck);
}
