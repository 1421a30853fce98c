/*
 * engine/ingest.c: an events command applied: each event's identity checked and taken, its
 * subscription and metric resolved, its expression evaluated, its value aggregated into the
 * live usage of its subscription (carried into a successor's where it belongs), the batch's
 * pricing checked, the rows stored, and the wallets debited (engine/settle.c); and an event
 * found again by its transaction id.
 *
 * One file for the path every event takes, the engine's hottest: the identities a command
 * added and the usages it touched are remembered here (ingest_forget_added,
 * ingest_forget_touches), so that a refused command or a failed commit takes them back out
 * and memory never runs ahead of the disk. Threads: the writer's, but ingest_fingerprint_events,
 * which engine_submit runs on the submitting thread before the command is queued.
 */
#include "engine/ingest.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "engine/holds.h"
#include "engine/settle.h"
#include "engine/wallets.h"
#include "json/event_json.h"
#include "sys/wallclock.h"
#include "util/vec.h"

/* ---- events ------------------------------------------------------------------------- */

static bool note_added(struct engine *e, struct identity id)
{
    if (!vec_room((void **)&e->added, &e->added_cap, e->added_count, sizeof *e->added, 1024))
        return false;
    e->added[e->added_count++] = id;
    return true;
}

/* Takes the identities added from `mark` on back out of the set. */
void ingest_forget_added(struct engine *e, size_t mark)
{
    while (e->added_count > mark) {
        const struct identity *id = &e->added[--e->added_count];
        dedup_remove(&e->identities, id->transaction, id->subscription);
    }
}

static struct siphash128 transaction_fingerprint(const struct engine *e, int64_t org_id,
                                                 const char *transaction_id)
{
    /* An empty subscription id: no event identity has one, so the spaces never meet. */
    struct siphash128 fp;
    bool made = event_fingerprint(e->fingerprint_key, org_id, "", transaction_id, &fp);
    assert(made); /* the API bounds the id */
    (void)made;
    return fp;
}

/* The tag of a subscription's identities (core/dedup): keyed, so no one can make two collide;
 * the subscription cache's hash, so an event's pays for both lookups. */
static uint64_t subscription_tag(const struct engine *e, const char *external_subscription_id)
{
    return sub_cache_hash(e->fingerprint_key, external_subscription_id);
}

struct identity ingest_identity_of(const struct engine *e, int64_t org_id,
                                   const char *external_subscription_id, const char *transaction_id)
{
    return (struct identity){transaction_fingerprint(e, org_id, transaction_id),
                             subscription_tag(e, external_subscription_id)};
}

/* Remembers the command's first touch of a usage, and starts the usage's savepoint. */
static bool note_touch(struct engine *e, int64_t org_id, struct usage *u)
{
    if (!usage_savepoint(u, e->command_seq))
        return true;
    if (!vec_room((void **)&e->touches, &e->touch_cap, e->touch_count, sizeof *e->touches, 256))
        return false;
    e->touches[e->touch_count++] =
        (struct usage_touch){org_id, u->subscription_id, u->event_count, NULL, false};
    return true;
}

/* The clock a command of this organization would read now (for rebuilding usage). */
tally_time ingest_org_now(struct engine *e, int64_t org_id)
{
    struct org_state *org = engine_find_org(e, org_id);
    return org && org->has_test_clock ? org->test_clock_now : wallclock_now();
}

/*
 * Takes the events of failed work back out of the live usages it touched (from `mark` on):
 * in memory when the work is the one command `command` and the usage kept what it changed
 * (usage_rollback), else by rebuilding the usage from the store without them. If even that
 * fails, the usage leaves the book and is built again on next use: never left ahead of the
 * disk.
 */
void ingest_forget_touches(struct engine *e, size_t mark, uint64_t command)
{
    while (e->touch_count > mark) {
        const struct usage_touch *t = &e->touches[--e->touch_count];
        struct usage *u = usage_book_find(&e->usage, t->subscription_id);
        if (u && usage_rollback(u, command, t->keep))
            continue;
        if (!usage_book_refresh(&e->usage, e->store, e->tzdb, t->org_id, t->subscription_id,
                                ingest_org_now(e, t->org_id), e->fingerprint_key, t->keep, NULL))
            e->usage_incomplete = true;
    }
}

/* Names event `index` among the command's refused events (after those named before it). */
static enum command_result refuse_event(struct command *cmd, size_t index, const char *field,
                                        const char *code)
{
    struct command_item_refusal **refusals = &cmd->as.events_ingest.refusals;
    size_t *count = &cmd->as.events_ingest.refusal_count;
    if (!*refusals &&
        !(*refusals = arena_alloc(cmd->arena, cmd->as.events_ingest.count * sizeof **refusals)))
        return COMMAND_STORE_FAILED;
    assert(*count < cmd->as.events_ingest.count);
    assert(*count == 0 || (*refusals)[*count - 1].index < index);
    (*refusals)[(*count)++] = (struct command_item_refusal){index, field, code};
    return *count == 1 ? invalid(cmd, field, code) : COMMAND_INVALID;
}

/*
 * Whether event i's identity is taken already: by a stored event, or an earlier one of the
 * batch. A probe of the identity set, which only a refusal pays (take_identity's insert is
 * the hot path's one probe).
 */
static bool identity_taken(const struct engine *e, const struct command *cmd, size_t i)
{
    const struct event_result *res = &cmd->as.events_ingest.results[i];
    return dedup_find(&e->identities, res->transaction_fingerprint, res->subscription_tag, NULL);
}

/*
 * Refuses event i for a check made before its identity is taken (its subscription, its metric,
 * its metric's expression), unless the identity is taken: then it is a retry of an event
 * acknowledged before, answered as every retry is (value_already_exist, Lago's answer to its
 * unique index on organization, external subscription id and transaction id), whatever
 * changed since (the subscription ended, the metric was deleted). An audit found a retry
 * after a termination answered subscription_not_found, which a client takes for an event
 * never recorded.
 */
static enum command_result refuse_unless_retry(struct engine *e, struct command *cmd, size_t i,
                                               const char *field, const char *code)
{
    if (identity_taken(e, cmd, i))
        return refuse_event(cmd, i, "transaction_id", "value_already_exist");
    return refuse_event(cmd, i, field, code);
}

/* What taking event i into a usage (usage_apply) makes of the command. */
static enum command_result aggregated(struct command *cmd, size_t i, enum aggregation_status s)
{
    switch (s) {
    case AGGREGATION_OK: return COMMAND_OK;
    case AGGREGATION_ERR_OPERATION:
        return refuse_event(cmd, i, "properties", "invalid_operation_type");
    case AGGREGATION_ERR_LIMIT: return refuse_event(cmd, i, "properties", "too_many_unique_values");
    case AGGREGATION_ERR_KEPT_VALUES: /* a free total's walk reads every value of the period */
        return refuse_event(cmd, i, "properties", "too_many_events_in_period");
    case AGGREGATION_ERR_GROUPS: /* USAGE_GROUPS_MAX */
        return refuse_event(cmd, i, "properties", "too_many_pricing_groups");
    case AGGREGATION_ERR_OVERFLOW:
    case AGGREGATION_ERR_PRECISION:
        return refuse_event(cmd, i, "properties", "value_is_out_of_range");
    default: return COMMAND_STORE_FAILED;
    }
}

/*
 * The subscription event `ev` at `at` belongs to: the one active then, else the one terminated
 * at that very instant, whose late event it is (Lago's Event#subscription counts the
 * termination's instant as the subscription's own, docs/API.md). The second lookup reads the
 * store, but only for an event that would be refused without it.
 */
enum command_result ingest_resolve_subscription(struct engine *e, struct command *cmd,
                                                struct ingest_cache *c, const struct event *ev,
                                                tally_time at)
{
    enum store_status s = sub_cache_at(&e->subscriptions, store_conn(e->store), cmd->org_id,
                                       ev->external_subscription_id, c->sub_hash, at, &c->sub);
    if (s == STORE_NOT_FOUND)
        s = sub_cache_ended_at(&e->subscriptions, store_conn(e->store), cmd->org_id,
                               ev->external_subscription_id, at, &c->sub);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

static enum command_result resolve_metric(struct engine *e, struct ingest_cache *c, int64_t org_id,
                                          const char *code)
{
    if (c->code && strcmp(c->code, code) == 0)
        return COMMAND_OK;
    enum store_status s =
        sub_cache_metric(&e->subscriptions, store_conn(e->store), org_id, code, &c->metric);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    c->code = code;
    return COMMAND_OK;
}

/*
 * `in` as its metric's expression makes it (Lago evaluates the expression as the event is
 * created): the result (expression_value_text) is properties[field_name],
 * in place of what was sent there or added last. Written into *out (which may be `in`), in the
 * command's arena. COMMAND_INVALID, with Lago's code (for `properties`) and Tally's message, if
 * the expression cannot be evaluated for this event.
 */
enum command_result ingest_evaluate_expression(struct engine *e, struct command *cmd,
                                               const struct sub_cache_metric *m,
                                               const struct event *in, tally_time timestamp,
                                               struct event *out, const char **code,
                                               const char **message)
{
    struct expression_value v;
    char why[EXPRESSION_MESSAGE_MAX], number[MONEY_TEXT_MAX];
    if (expression_evaluate(m->expression, in, timestamp, &e->expression_scratch, &v, why) !=
        EXPRESSION_OK) {
        char *text = arena_printf(cmd->arena, "expression_evaluation_failed: %s", why);
        if (!text)
            return COMMAND_STORE_FAILED;
        *code = "expression_evaluation_failed";
        *message = text;
        return COMMAND_INVALID;
    }
    const char *text;
    size_t len = expression_value_text(&v, number, &text);
    if (event_json_set_property(cmd->arena, in, m->field_name, text, len, out))
        return COMMAND_OK;
    if (in->property_count < EVENT_PROPERTIES_MAX)
        return COMMAND_STORE_FAILED;
    *code = "too_many_items";
    *message = "the expression's result would be one property too many";
    return COMMAND_INVALID;
}

/*
 * Event i of the command with its metric's expression applied, once: a command applied again
 * (a group retry) finds it done, so an expression that reads its own field never reads its
 * own result. A refusal names the event.
 */
static enum command_result apply_expression(struct engine *e, struct command *cmd,
                                            const struct ingest_cache *cache, size_t i)
{
    struct event *ev = &cmd->as.events_ingest.events[i];
    struct event_result *res = &cmd->as.events_ingest.results[i];
    if (!cache->metric->expression || res->evaluated)
        return COMMAND_OK;
    tally_time at = ev->has_timestamp ? ev->timestamp : cmd->now;
    const char *code, *message;
    enum command_result r =
        ingest_evaluate_expression(e, cmd, cache->metric, ev, at, ev, &code, &message);
    if (r != COMMAND_INVALID) {
        res->evaluated = r == COMMAND_OK;
        return r;
    }
    if (identity_taken(e, cmd, i)) /* a retry (refuse_unless_retry): not the expression's */
        return refuse_event(cmd, i, "transaction_id", "value_already_exist");
    if (cmd->as.events_ingest.refusal_count == 0)
        cmd->invalid_message = message; /* (one message a batch: its first refusal's) */
    return refuse_event(cmd, i, "properties", code);
}

/*
 * The live usage a subscription's event moves, or NULL if none does. A subscription that has
 * ended has none: like a closed period, it is the invoices' to settle, so its late event is
 * stored and deduplicated but moves no live usage and no wallet (a usage rebuilt for it
 * would hold only the late events, and the debit, the fee less what the period already paid,
 * gave that back). A recurring metric's value lives on in the subscription that followed it
 * under the same external id for the same customer (a plan change, or the subscription made
 * again): the event is carried into that one's period. Not into another customer's who took
 * the external id over: a build reads the recurring index for the usage's customer only
 * (store_recurring_event_each), and a start carries it as this does (carried_to_live). An
 * audit found the next owner's wallet paying for the first owner's late seat every period,
 * until a restart dropped it.
 */
static enum command_result live_usage_of(struct engine *e, struct command *cmd,
                                         const struct ingest_cache *cache, const struct event *ev,
                                         struct usage **out)
{
    *out = NULL;
    const struct store_subscription *sub = cache->sub;
    if (subscription_status_at(&sub->sub, cmd->now) >= SUBSCRIPTION_TERMINATED) {
        if (!cache->metric->recurring)
            return COMMAND_OK;
        int64_t customer_id = sub->sub.customer_id; /* (the lookup may drop the row) */
        enum store_status s =
            sub_cache_at(&e->subscriptions, store_conn(e->store), cmd->org_id,
                         ev->external_subscription_id, cache->sub_hash, cmd->now, &sub);
        if (s != STORE_OK)
            return s == STORE_NOT_FOUND ? COMMAND_OK : COMMAND_STORE_FAILED;
        if (subscription_status_at(&sub->sub, cmd->now) >= SUBSCRIPTION_TERMINATED ||
            sub->sub.customer_id != customer_id)
            return COMMAND_OK;
    }
    const char *failed;
    *out = usage_book_get(&e->usage, e->store, e->tzdb, sub, cmd->now, e->fingerprint_key, &failed);
    return *out ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/*
 * Fingerprints every event of the command into its result (engine_submit, on the submitting
 * thread: three SipHashes an event the writer does not pay). Reads only the key, which does
 * not change once the engine has started.
 */
void ingest_fingerprint_events(const struct engine *e, struct command *cmd)
{
    for (size_t i = 0; i < cmd->as.events_ingest.count; i++) {
        const struct event *ev = &cmd->as.events_ingest.events[i];
        struct event_result *res = &cmd->as.events_ingest.results[i];
        bool made = event_fingerprint(e->fingerprint_key, cmd->org_id, ev->external_subscription_id,
                                      ev->transaction_id, &res->fingerprint);
        assert(made); /* the API bounds both ids */
        (void)made;
        struct identity id =
            ingest_identity_of(e, cmd->org_id, ev->external_subscription_id, ev->transaction_id);
        res->transaction_fingerprint = id.transaction;
        res->subscription_tag = id.subscription;
    }
}

/* Starts loading every event's slot of the identity set: the batch then waits for its cache
 * misses together rather than one by one (the set outgrows the caches long before memory). */
static void prefetch_identities(struct engine *e, const struct command *cmd)
{
    for (size_t i = 0; i < cmd->as.events_ingest.count; i++)
        dedup_prefetch(&e->identities, cmd->as.events_ingest.results[i].transaction_fingerprint);
}

/*
 * A recurring metric's event also counts in the usage of the subscription a scheduled
 * downgrade will put in its place, if the book holds one (built for an event sent ahead): it
 * carries everything before its period. Debited when that period begins (settle_debit_wallets).
 * Accepted before that period began, it is part of the units the period starts with, not a
 * late event that may raise its peak: the usage is built again when the period begins
 * (rebuild_at_start). Taken as a late event, an April -4 after a +7 sent ahead to May billed
 * May on 5 + 7 GB where it starts with 1 (an audit; a restart gave 8).
 */
static enum command_result carry_into_successor(struct engine *e, struct command *cmd,
                                                const struct usage *usage, const struct event *ev,
                                                const struct event_result *res, size_t i)
{
    struct usage *next =
        usage->successor_id ? usage_book_find(&e->usage, usage->successor_id) : NULL;
    if (!next)
        return COMMAND_OK;
    if (!note_touch(e, cmd->org_id, next) || !usage_note(next, res->id, res->timestamp))
        return COMMAND_STORE_FAILED;
    if (cmd->now < next->from && res->timestamp < next->from)
        next->rebuild_at_start = true;
    return aggregated(cmd, i, usage_apply(next, ev, res->timestamp, (uint64_t)res->id));
}

/*
 * Event i against its metric's rules, whatever the plan charges (usage_check_event): a unique
 * count's operation_type, a number that does not fit. A charge checks them as it counts the
 * event, but an event of a metric no charge counted was accepted unchecked, and the charge a
 * plan edit (or an upgrade) added later failed on it at every build: the subscription's usage
 * and events 500, and no start (an audit). A check only: nothing is priced or kept.
 */
static enum command_result check_against_metric(struct command *cmd,
                                                const struct ingest_cache *cache, size_t i)
{
    enum aggregation_status s = usage_check_event(
        cache->metric->aggregation, cache->metric->field_name, &cmd->as.events_ingest.events[i]);
    return s == AGGREGATION_IGNORED ? COMMAND_OK : aggregated(cmd, i, s);
}

/*
 * Adds event i's identity to the set (its fingerprints made by engine_submit), or refuses it
 * as a duplicate. Taken at once (one probe), so that a duplicate later in the batch is refused
 * too; a refused or failed command takes its identities back out (ingest_forget_added). With the id
 * the event gets if it is accepted: ids are given in order, one an event.
 */
static enum command_result take_identity(struct engine *e, struct command *cmd, size_t i)
{
    const struct event_result *res = &cmd->as.events_ingest.results[i];
    struct identity identity = {res->transaction_fingerprint, res->subscription_tag};
    switch (dedup_insert(&e->identities, identity.transaction, identity.subscription,
                         (uint64_t)(e->last_event_id + 1))) {
    case DEDUP_INSERTED: break;
    case DEDUP_EXISTS: return refuse_event(cmd, i, "transaction_id", "value_already_exist");
    case DEDUP_NO_MEMORY: return COMMAND_STORE_FAILED; /* refuse rather than forget one */
    }
    if (!note_added(e, identity)) {
        dedup_remove(&e->identities, identity.transaction, identity.subscription);
        return COMMAND_STORE_FAILED;
    }
    return COMMAND_OK;
}

/* Checks and applies event i in memory (its fingerprints made by engine_submit), and
 * leaves its row in `row` for the command's INSERTs (store_events_insert), which follow its
 * last event. */
static enum command_result ingest_one(struct engine *e, struct command *cmd,
                                      struct ingest_cache *cache, size_t i, struct store_event *row,
                                      int64_t *usage_of)
{
    const struct event *ev = &cmd->as.events_ingest.events[i];
    struct event_result *res = &cmd->as.events_ingest.results[i];
    res->timestamp = ev->has_timestamp ? ev->timestamp : cmd->now;
    cache->sub_hash = res->subscription_tag;
    enum command_result r = ingest_resolve_subscription(e, cmd, cache, ev, res->timestamp);
    if (r != COMMAND_OK)
        return r == COMMAND_NOT_FOUND ? refuse_unless_retry(e, cmd, i, "external_subscription_id",
                                                            "subscription_not_found")
                                      : r;
    r = resolve_metric(e, cache, cmd->org_id, ev->code);
    if (r != COMMAND_OK)
        return r == COMMAND_NOT_FOUND
                   ? refuse_unless_retry(e, cmd, i, "code", "billable_metric_not_found")
                   : r;
    if ((r = apply_expression(e, cmd, cache, i)) != COMMAND_OK)
        return r;
    r = take_identity(e, cmd, i);
    if (r != COMMAND_OK)
        return r;
    if ((r = check_against_metric(cmd, cache, i)) != COMMAND_OK)
        return r;
    /* The event's subscription (by its timestamp), kept before live_usage_of may look up
     * another one (the cache may then drop this row). */
    int64_t subscription_id = cache->sub->sub.id;
    memcpy(res->subscription_lago_id, cache->sub->sub.lago_id, sizeof res->subscription_lago_id);
    memcpy(res->customer_lago_id, cache->sub->customer_lago_id, sizeof res->customer_lago_id);
    /* The usage is built (from stored events) before this one is stored, then takes it. */
    struct usage *usage;
    r = live_usage_of(e, cmd, cache, ev, &usage);
    if (r != COMMAND_OK)
        return r;
    /* An event of a later period counts (and is debited) only once that period is current: a
     * customer whose credits limit usage would have it accepted unpriced, past the limit. So
     * does one of a subscription that has not started (a scheduled downgrade): it may never. */
    if (usage && (res->timestamp >= usage->to || cmd->now < usage->from)) {
        bool unreadable = false;
        bool limited =
            wallets_usage_is_limited(&e->wallets, e->store, cmd->org_id, usage->customer_id,
                                     usage->currency, ev->code, cmd->now, &unreadable);
        if (unreadable)
            return COMMAND_STORE_FAILED;
        if (limited)
            return refuse_event(cmd, i, "timestamp", "after_current_period");
    }
    /* A capture settles what its hold reserved: timestamped in a period that is over, it would
     * be a late event that no wallet pays for (unless its metric is recurring), and its hold
     * would be released unpaid. */
    if (usage && cmd->as.events_ingest.authorization_lago_id && res->timestamp < usage->from &&
        !cache->metric->recurring)
        return refuse_event(cmd, i, "timestamp", "before_current_period");
    /* so would one timestamped while a subscription since ended (upgraded, or past its
     * ending_at) was live: no usage takes it */
    if (!usage && cmd->as.events_ingest.authorization_lago_id)
        return refuse_event(cmd, i, "timestamp", "subscription_ended");
    *row = (struct store_event){
        .id = ++e->last_event_id,
        .org_id = cmd->org_id,
        .subscription_id = subscription_id,
        .transaction_id = ev->transaction_id,
        .external_subscription_id = ev->external_subscription_id,
        .code = ev->code,
        .timestamp = res->timestamp,
        .properties_json = ev->properties_json,
        .created_at = cmd->now,
    };
    if (ev->has_precise_total_amount_cents) {
        char *amount = arena_alloc(cmd->arena, MONEY_TEXT_MAX);
        if (!amount)
            return COMMAND_STORE_FAILED;
        money_format(ev->precise_total_amount_cents, amount, MONEY_TEXT_MAX);
        row->precise_total_amount_cents = amount;
    }
    res->id = row->id;
    *usage_of = usage ? usage->subscription_id : 0;
    if (usage) {
        if (!note_touch(e, cmd->org_id, usage) || !usage_note(usage, res->id, res->timestamp))
            return COMMAND_STORE_FAILED;
        if (cache->metric->recurring) /* (another metric's late event moves nothing) */
            usage_note_late(usage, res->id, res->timestamp, cmd->now);
        r = aggregated(cmd, i, usage_apply(usage, ev, res->timestamp, (uint64_t)res->id));
        if (r == COMMAND_OK && cache->metric->recurring)
            r = carry_into_successor(e, cmd, usage, ev, res, i);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/*
 * After event `first` refused the command, names the later events that would be refused too
 * by the checks that need no usage: an unknown subscription or metric, a transaction id taken
 * by a stored event or an earlier one of the batch. Lago lists every event of a batch it
 * refuses, so a client that retries a batch learns each duplicate at once, not one a round
 * trip. Their identities join the set, and leave it with the command's (ingest_forget_added). Only
 * a refusal runs this.
 */
static enum command_result refuse_later_events(struct engine *e, struct command *cmd, size_t first)
{
    struct ingest_cache cache = {0};
    for (size_t i = first + 1; i < cmd->as.events_ingest.count; i++) {
        const struct event *ev = &cmd->as.events_ingest.events[i];
        const struct event_result *res = &cmd->as.events_ingest.results[i];
        cache.sub_hash = res->subscription_tag;
        enum command_result r = ingest_resolve_subscription(
            e, cmd, &cache, ev, ev->has_timestamp ? ev->timestamp : cmd->now);
        if (r == COMMAND_NOT_FOUND)
            r = refuse_unless_retry(e, cmd, i, "external_subscription_id",
                                    "subscription_not_found");
        else if (r == COMMAND_OK &&
                 (r = resolve_metric(e, &cache, cmd->org_id, ev->code)) == COMMAND_NOT_FOUND)
            r = refuse_unless_retry(e, cmd, i, "code", "billable_metric_not_found");
        else if (r == COMMAND_OK && (r = apply_expression(e, cmd, &cache, i)) == COMMAND_OK &&
                 (r = take_identity(e, cmd, i)) == COMMAND_OK)
            r = check_against_metric(cmd, &cache, i);
        if (r != COMMAND_OK && r != COMMAND_INVALID)
            return r;
    }
    return COMMAND_INVALID;
}

/*
 * Names the event of the command after which subscription `sub`'s usage no longer prices:
 * the usage goes back to what it held before the command (`keep` references) and takes the
 * command's events on it again one by one, priced after each. Only a refusal runs this, so
 * the hot path prices each usage once a command, not once an event.
 */
static enum command_result refuse_unpriced(struct engine *e, struct command *cmd,
                                           const struct store_event *rows, const int64_t *usage_of,
                                           int64_t org_id, int64_t sub, size_t keep)
{
    if (!usage_book_refresh(&e->usage, e->store, e->tzdb, org_id, sub, cmd->now, e->fingerprint_key,
                            keep, NULL))
        return COMMAND_STORE_FAILED;
    struct usage *u = usage_book_find(&e->usage, sub);
    if (!u)
        return COMMAND_STORE_FAILED;
    bool priced = usage_priced(u, NULL); /* false: so before the command, its first event on it */
    for (size_t i = 0; i < cmd->as.events_ingest.count; i++) {
        if (usage_of[i] != sub)
            continue;
        if (priced) {
            if (usage_apply(u, &cmd->as.events_ingest.events[i], rows[i].timestamp,
                            (uint64_t)rows[i].id) != AGGREGATION_OK)
                return COMMAND_STORE_FAILED; /* it took this very event a moment ago */
            priced = usage_priced(u, NULL);
        }
        if (!priced)
            return refuse_event(cmd, i, "properties", "amount_out_of_range");
    }
    return COMMAND_STORE_FAILED; /* it prices with all of them after all: not what failed */
}

/*
 * The command's events on t's subscription sent ahead, for a period after the book's usage
 * `u`: the book counts them only when their period comes, so each is taken and priced now in
 * a usage of its own period, built apart (with the command's earlier events of that period).
 * Acknowledged unpriced, such an event would poison that period from its first day.
 */
static enum command_result check_later_periods(struct engine *e, struct command *cmd,
                                               const struct store_event *rows,
                                               const struct usage *u, const struct usage_touch *t)
{
    const struct event *events = cmd->as.events_ingest.events;
    struct usage *later = NULL;
    struct store_subscription row;
    bool have_row = false;
    enum command_result r = COMMAND_OK;
    for (size_t i = 0; r == COMMAND_OK && i < cmd->as.events_ingest.count; i++) {
        if (rows[i].subscription_id != t->subscription_id || rows[i].timestamp < u->to)
            continue;
        if (!later || rows[i].timestamp < later->from || rows[i].timestamp >= later->to) {
            usage_release(later);
            later = NULL;
            if (!have_row &&
                store_subscription_get(store_conn(e->store), t->org_id, t->subscription_id, &row,
                                       cmd->arena) != STORE_OK)
                return COMMAND_STORE_FAILED;
            have_row = true;
            /* u's first `keep` references are the stored events, later periods' included */
            later = usage_build_apart(e->store, e->tzdb, &row, rows[i].timestamp,
                                      e->fingerprint_key, u->events, t->keep, INT64_MAX);
            if (!later)
                return COMMAND_STORE_FAILED;
            for (size_t j = 0; r == COMMAND_OK && j < i; j++)
                if (rows[j].subscription_id == t->subscription_id &&
                    rows[j].timestamp >= later->from && rows[j].timestamp < later->to)
                    r = aggregated(
                        cmd, j,
                        usage_apply(later, &events[j], rows[j].timestamp, (uint64_t)rows[j].id));
            if (r == COMMAND_OK && !usage_priced(later, NULL))
                r = refuse_event(cmd, i, "properties", "amount_out_of_range");
            if (r != COMMAND_OK)
                break;
        }
        r = aggregated(cmd, i,
                       usage_apply(later, &events[i], rows[i].timestamp, (uint64_t)rows[i].id));
        if (r == COMMAND_OK && !usage_priced(later, NULL))
            r = refuse_event(cmd, i, "properties", "amount_out_of_range");
    }
    usage_release(later);
    return r;
}

/*
 * The usage of the command's touch i. note_touch records one touch a usage and command, so
 * each is checked and debited once a command; the exception, a usage rebuilt within the
 * command (refuse_unpriced), may come twice, which a check or a debit repeats harmlessly (a
 * debit settles each charge to what it brings). NULL if the usage left the book. (A search
 * for an earlier touch of the same subscription here made a batch of 10,000 events over
 * 10,000 subscriptions quadratic: half the writer's time.)
 */
const struct usage *ingest_touch_usage(struct engine *e, size_t i)
{
    return usage_book_find(&e->usage, e->touches[i].subscription_id);
}

/*
 * Refuses the command if a usage its events touched can no longer be priced: an event
 * acknowledged then would leave its subscription's current usage unreadable and its debits
 * failing for the rest of the period. (The caller's undo takes the events back out.)
 */
static enum command_result check_priced(struct engine *e, struct command *cmd,
                                        const struct store_event *rows, const int64_t *usage_of)
{
    for (size_t i = e->touch_mark; i < e->touch_count; i++) {
        struct usage_touch *t = &e->touches[i];
        const struct usage *u = ingest_touch_usage(e, i);
        if (!u)
            continue;
        t->brought = arena_alloc(cmd->arena, (u->charge_count + 1) * sizeof *t->brought);
        if (!t->brought)
            return COMMAND_STORE_FAILED;
        if (!usage_priced(u, t->brought))
            return refuse_unpriced(e, cmd, rows, usage_of, t->org_id, t->subscription_id, t->keep);
        bool ahead = false; /* the command's references are u's from `keep` on */
        for (size_t k = t->keep; k < u->event_count && !ahead; k++)
            ahead = u->events[k].timestamp >= u->to;
        t->sent_ahead = ahead;
        enum command_result r = ahead ? check_later_periods(e, cmd, rows, u, t) : COMMAND_OK;
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/*
 * Debits the wallets of every subscription the command's events touched, once each, now
 * that all its events are in the usages: a batch is paid for, or refused, as a whole.
 */
/*
 * Whether the command's debits cannot be refused (wallets_debits_covered): then its customers
 * need no snapshot to be put back from, which was half of what a debit cost the writer. Only
 * plain event commands: a capture has touched its wallets already.
 */
bool ingest_debits_unrefusable(struct engine *e, struct command *cmd)
{
    if (cmd->kind != COMMAND_EVENTS_INGEST || !e->wallets.deferring)
        return false;
    size_t n = 0;
    struct wallets_usage_due *due =
        arena_alloc(cmd->arena, (e->touch_count - e->touch_mark + 1) * sizeof *due);
    if (!due)
        return false;
    for (size_t i = e->touch_mark; i < e->touch_count; i++) {
        const struct usage *u = ingest_touch_usage(e, i);
        if (u && cmd->now >= u->from)
            due[n++] = (struct wallets_usage_due){u, e->touches[i].brought};
    }
    bool failed = false; /* the debits that follow meet the same failure, and report it */
    return wallets_debits_covered(&e->wallets, e->store, cmd, due, n, &failed);
}

enum command_result ingest_apply(struct engine *e, struct command *cmd)
{
    bool capture = cmd->as.events_ingest.authorization_lago_id != NULL;
    cmd->as.events_ingest.refusal_count = 0; /* a command may be applied again (group retry) */
    if (capture) {
        enum command_result r = holds_settle(e, cmd);
        if (r != COMMAND_OK)
            return r;
    }
    struct ingest_cache cache = {0};
    size_t count = cmd->as.events_ingest.count;
    struct store_event *rows = arena_alloc(cmd->arena, count * sizeof *rows);
    bool *recurring = arena_alloc(cmd->arena, count * sizeof *recurring);
    int64_t *usage_of = arena_alloc(cmd->arena, count * sizeof *usage_of); /* whose usage took it */
    if (!rows || !recurring || !usage_of)
        return COMMAND_STORE_FAILED;
    prefetch_identities(e, cmd);
    bool any_recurring = false;
    for (size_t i = 0; i < count; i++) {
        enum command_result r = ingest_one(e, cmd, &cache, i, &rows[i], &usage_of[i]);
        if (r == COMMAND_INVALID)
            r = refuse_later_events(e, cmd, i);
        if (r != COMMAND_OK)
            return r; /* engine_apply_one undoes the memory: identities, ids, usages, wallets */
        recurring[i] = cache.metric->recurring;
        any_recurring = any_recurring || cache.metric->recurring;
    }
    enum command_result r = check_priced(e, cmd, rows, usage_of);
    if (r != COMMAND_OK)
        return r;
    if (store_events_insert(e->store, rows, count) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; any_recurring && i < count; i++)
        if (recurring[i] && store_recurring_event_note(e->store, &rows[i]) != STORE_OK)
            return COMMAND_STORE_FAILED;
    r = settle_debit_wallets(e, cmd);
    if (r == COMMAND_INVALID) /* the batch is debited as a whole, after its last event */
        r = refuse_event(cmd, count - 1, cmd->invalid_field, cmd->invalid_code);
    if (r == COMMAND_OK && capture)
        r = wallets_capture_done(&e->wallets, e->store, cmd, &cmd->authorization);
    return r == COMMAND_OK && capture ? holds_captured(e, cmd) : r;
}

enum command_result ingest_apply_event_find(struct engine *e, struct command *cmd)
{
    uint64_t id;
    /* a transaction id longer than an event's may be (the path does not bound it) names none */
    if (strnlen(cmd->as.event_find.transaction_id, EVENT_TRANSACTION_ID_MAX + 1) >
        EVENT_TRANSACTION_ID_MAX)
        return not_found(cmd, "event_not_found");
    /* the newest event with it that no metric's deletion hides (Lago's default scope): one
     * of another subscription may be older and shown */
    struct siphash128 fp =
        transaction_fingerprint(e, cmd->org_id, cmd->as.event_find.transaction_id);
    for (bool found = dedup_find_greatest(&e->identities, fp, &id); found;
         found = dedup_find_greatest_below(&e->identities, fp, id, &id)) {
        enum store_status s = store_event_get(store_conn(e->store), cmd->org_id, (int64_t)id,
                                              &cmd->event, cmd->arena);
        /* another organization's fingerprint cannot match: the key has the org */
        bool hidden = false;
        if (s == STORE_OK)
            s = store_event_hidden(store_conn(e->store), cmd->org_id, cmd->event.code,
                                   cmd->event.id, &hidden);
        if (s != STORE_OK)
            return s == STORE_NOT_FOUND ? not_found(cmd, "event_not_found") : COMMAND_STORE_FAILED;
        if (!hidden)
            return COMMAND_OK;
    }
    return not_found(cmd, "event_not_found");
}
