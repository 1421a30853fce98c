/*
 * engine/subscriptions.c: the subscription commands: a subscription created (or a plan
 * change: an upgrade at once, a downgrade scheduled for the period's end), updated, terminated;
 * a plan's deletion ending its subscriptions; and what each change takes with it: the usage
 * it leaves behind given back to the wallets (subscriptions_give_back_usage), the period
 * settled to an end, the scheduled downgrade kept aligned with its subscription's end
 * (subscriptions_align_scheduled), and the open holds bounded by when the service ends
 * (subscriptions_rebound_holds).
 *
 * A plan price edit, a customer's zone or deletion, and a plan's deletion reach the same rules
 * from outside (engine/catalog_edit, engine/customer_edit): they call them here rather than
 * keep their own. Threads: the writer's only.
 */
#include "engine/subscriptions.h"

#include <string.h>

#include "engine/wallets.h"
#include "json/plan_json.h"
#include "util/vec.h"

/* ---- subscriptions -------------------------------------------------------------------- */

static const struct catalog_ref plan_ref = {CATALOG_PLAN, NULL, NULL, NULL};

const struct tz_zone *subscriptions_customer_zone(struct engine *e, const char *timezone)
{
    const char *name = timezone ? timezone : "UTC";
    return e->tzdb ? tzdb_get(e->tzdb, name, strlen(name)) : NULL;
}

/* The customer a subscription is for, created if unknown, its currency fixed by the plan. */
static enum command_result subscription_customer(struct engine *e, struct command *cmd,
                                                 struct org_state *org, struct customer *c)
{
    const struct subscription_request *rq = &cmd->as.subscription_create;
    enum store_status s = store_customer_get(store_conn(e->store), cmd->org_id,
                                             rq->external_customer_id, c, cmd->arena);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    const char *currency = c->text[CUSTOMER_CURRENCY];
    if (s == STORE_OK && currency && strcmp(currency, rq->plan.currency) != 0)
        return invalid(cmd, "currency", "currencies_does_not_match");
    if (s == STORE_OK && currency)
        return COMMAND_OK;
    if (s == STORE_NOT_FOUND) {
        customer_init_defaults(c);
        c->org_id = cmd->org_id;
        c->external_id = rq->external_customer_id;
        memcpy(c->lago_id, rq->customer_lago_id, sizeof c->lago_id);
        c->sequential_id = org->last_customer_sequential_id + 1;
        c->created_at = cmd->now;
    }
    c->text[CUSTOMER_CURRENCY] = rq->plan.currency;
    c->updated_at = cmd->now;
    if (store_customer_save(e->store, c) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (c->sequential_id > org->last_customer_sequential_id)
        org->last_customer_sequential_id = c->sequential_id;
    return COMMAND_OK;
}

/* A new subscription as `rq` asks for it, made by cmd (its organization and clock). */
static void subscription_from_request(struct subscription *sub,
                                      const struct subscription_request *rq,
                                      const struct command *cmd, int64_t customer_id)
{
    memset(sub, 0, sizeof *sub);
    sub->org_id = cmd->org_id;
    sub->customer_id = customer_id;
    memcpy(sub->lago_id, rq->lago_id, sizeof sub->lago_id);
    sub->external_id = rq->external_id;
    sub->name = rq->name;
    sub->purchase_order_number = rq->purchase_order_number;
    memcpy(sub->plan_lago_id, rq->plan_lago_id, sizeof sub->plan_lago_id);
    sub->plan_code = rq->plan_code;
    sub->plan_body = rq->plan_body;
    sub->billing_time = rq->billing_time;
    /* to the second its answers show: else an event sent for that second (a client's
     * floor of its clock right after subscribing) would be before the start (an audit) */
    sub->subscription_at =
        timestamp_floor_second(rq->has_subscription_at ? rq->subscription_at : cmd->now);
    sub->started_at = sub->subscription_at;
    sub->has_ending_at = rq->has_ending_at;
    sub->ending_at = rq->ending_at;
    sub->created_at = sub->updated_at = cmd->now;
}

/* The downgrade scheduled on sub (sub->next_id), into *next. */
static enum command_result load_scheduled(struct engine *e, struct command *cmd,
                                          const struct subscription *sub,
                                          struct store_subscription *next)
{
    return store_subscription_get(store_conn(e->store), cmd->org_id, sub->next_id, next,
                                  cmd->arena) == STORE_OK
               ? COMMAND_OK
               : COMMAND_STORE_FAILED;
}

/* Cancels the downgrade scheduled on a subscription that ends or moves to another plan first. */
static enum command_result cancel_scheduled(struct engine *e, struct command *cmd,
                                            const struct subscription *sub)
{
    if (sub->next_id == 0)
        return COMMAND_OK;
    struct store_subscription next;
    if (load_scheduled(e, cmd, sub, &next) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    /* canceled already stays so; one to be canceled only later, as of an ending_at before it,
     * is canceled now: it read pending beside the plan replacing it, two pending subscriptions
     * for one external id, and still did once that ending_at was removed (an audit) */
    if (next.sub.has_canceled_at && next.sub.canceled_at <= cmd->now)
        return COMMAND_OK;
    next.sub.has_canceled_at = true;
    next.sub.canceled_at = cmd->now;
    next.sub.updated_at = cmd->now;
    return store_subscription_save(e->store, &next.sub) == STORE_OK ? COMMAND_OK
                                                                    : COMMAND_STORE_FAILED;
}

static bool note_reprice(struct engine *e, int64_t org_id, int64_t customer_id)
{
    for (size_t i = 0; i < e->reprice_count; i++)
        if (e->reprices[i].customer_id == customer_id)
            return true;
    if (!vec_room((void **)&e->reprices, &e->reprice_cap, e->reprice_count, sizeof *e->reprices, 4))
        return false;
    e->reprices[e->reprice_count++] = (struct pending_reprice){org_id, customer_id};
    return true;
}

/*
 * What live usage u's charges bring now (usage_priced), for its customer's wallets to settle:
 * *out NULL when there is nothing to settle (a customer whose wallets never paid, or usage that
 * no longer prices: its next debit fails alike, or the invoice settles it). In cmd's arena.
 */
static enum command_result brought_for_wallets(struct engine *e, struct command *cmd,
                                               const struct usage *u, struct usage_brought **out)
{
    *out = NULL;
    bool failed = false;
    if (!wallets_customer_pays(&e->wallets, e->store, cmd->org_id, u->customer_id, &failed))
        return failed ? COMMAND_STORE_FAILED : COMMAND_OK;
    struct usage_brought *brought =
        arena_alloc(cmd->arena, (u->charge_count + 1) * sizeof *brought);
    if (!brought)
        return COMMAND_STORE_FAILED;
    if (usage_priced(u, brought))
        *out = brought;
    return COMMAND_OK;
}

/*
 * Gives back what live usage u's charges debited this period beyond what they bring now
 * (wallets_give_back), if its customer's wallets pay or have paid: after something that no
 * event of u may follow soon changed its price, or moved its end. Debits nothing: a
 * re-pricing's raise is subscriptions_debit_raised's, once every usage the re-pricing moved has
 * given back (one subscription's fall pays another's rise, whichever comes first); an ended
 * subscription's is its next debit's, or the invoice's. Usage that cannot be priced any more
 * gives nothing back (its next debit fails alike, or the invoice settles it).
 */
enum command_result subscriptions_give_back_usage(struct engine *e, struct command *cmd,
                                                  const struct usage *u)
{
    if (cmd->now < u->from)
        return COMMAND_OK; /* a period not begun (a scheduled downgrade's): nothing debited */
    /* a stuck customer's wallets wait for its write-out (wallet_book.h): the command goes on,
     * and this customer is re-priced once written out (an audit found every catalog write of
     * the organization refused while one of its customers was stuck) */
    if (wallet_book_is_stuck(&e->wallets, u->customer_id))
        return note_reprice(e, u->org_id, u->customer_id) ? COMMAND_OK : COMMAND_STORE_FAILED;
    struct usage_brought *brought;
    enum command_result r = brought_for_wallets(e, cmd, u, &brought);
    if (r != COMMAND_OK || !brought)
        return r;
    /* A wallet opened the period mid-way: the usage as it stood then, priced as it is now, for
     * the invoice's part to follow the change (wallets_give_back). Built from the events stored
     * up to then (references are in acceptance order, which ids follow). */
    int64_t mark;
    if (!wallets_opened_at(&e->wallets, e->store, u, &mark))
        return COMMAND_STORE_FAILED;
    struct usage *opening = NULL;
    if (mark >= 0) {
        size_t count = 0;
        while (count < u->event_count && u->events[count].id <= mark)
            count++;
        struct store_subscription row;
        if (store_subscription_get(store_conn(e->store), cmd->org_id, u->subscription_id, &row,
                                   cmd->arena) != STORE_OK ||
            !(opening = usage_build_apart(e->store, e->tzdb, &row, u->from, e->fingerprint_key,
                                          u->events, count, mark)))
            return COMMAND_STORE_FAILED;
    }
    r = wallets_give_back(&e->wallets, e->store, cmd, u, brought, opening);
    if (opening)
        usage_release(opening);
    return r;
}

/*
 * After a re-pricing's give-backs (subscriptions_give_back_usage, for every usage it moved):
 * what live usage u's charges bring beyond their debits is debited, never refused
 * (wallets_debit_raised). Not for a period not begun, nor a stuck customer (its re-pricing was
 * noted, and runs whole once it is written out), nor a customer whose wallets never paid.
 */
enum command_result subscriptions_debit_raised(struct engine *e, struct command *cmd,
                                               const struct usage *u)
{
    if (cmd->now < u->from || wallet_book_is_stuck(&e->wallets, u->customer_id))
        return COMMAND_OK;
    struct usage_brought *brought;
    enum command_result r = brought_for_wallets(e, cmd, u, &brought);
    if (r != COMMAND_OK || !brought)
        return r;
    return wallets_debit_raised(&e->wallets, e->store, cmd, u, brought);
}

/*
 * A subscription whose end the command moved into its current period (terminated now, ended
 * by an upgrade, or given an earlier ending_at) is priced to that end, as Lago bills it to its
 * termination date; but its wallets paid what its live usage priced before, to the period's
 * end for a prorated or time-weighted charge. What they paid for the time after comes back now:
 * no later event of the subscription may settle it. An audit found those credits kept, and
 * after an upgrade the same seats charged again by the new plan. The usage is built apart from
 * the book's references (the refresh after the command rebuilds the book's own); only a
 * customer whose wallets pay or have paid pays for the build.
 */
static enum command_result settle_to_end(struct engine *e, struct command *cmd,
                                         int64_t subscription_id)
{
    struct store_subscription row;
    if (store_subscription_get(store_conn(e->store), cmd->org_id, subscription_id, &row,
                               cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    bool failed = false;
    if (!wallets_customer_pays(&e->wallets, e->store, cmd->org_id, row.sub.customer_id, &failed))
        return failed ? COMMAND_STORE_FAILED : COMMAND_OK;
    /* The events of its period are the book's references (none when it holds no usage: no
     * event of the period came since the start). A period may have been debited without any:
     * for a late event of a recurring metric, carried into it (the build reads those from the
     * store), as an audit found. */
    const struct usage *live = usage_book_find(&e->usage, subscription_id);
    struct usage *u =
        usage_build_apart(e->store, e->tzdb, &row, cmd->now, e->fingerprint_key,
                          live ? live->events : NULL, live ? live->event_count : 0, INT64_MAX);
    enum command_result r = u ? subscriptions_give_back_usage(e, cmd, u) : COMMAND_STORE_FAILED;
    usage_release(u);
    return r;
}

/* Whether two subscriptions end by ending_at at the same instant, or neither has one. */
static bool same_ending_at(const struct subscription *a, const struct subscription *b)
{
    return a->has_ending_at == b->has_ending_at &&
           (!a->has_ending_at || a->ending_at == b->ending_at);
}

/*
 * The instant `live`'s external id stops being served (TIMESTAMP_MAX: never, as far as is
 * known now), into *end. live ends at the first of its ending_at and its termination, which a
 * scheduled downgrade sets at its switch. But the switch does not end the external id: the
 * downgrade serves it on from there, until its own end (none: never), unless it was canceled
 * (for good, or as of an end that comes at or before its switch: subscriptions_align_scheduled),
 * when live's termination at the switch is the end, with nothing after it. An audit found holds cut
 * by live's ending_at past the switch (the downgrade went on, and their capture was refused), a new
 * hold not cut by the downgrade's own end, and holds given back their whole expiry past a switch a
 * time zone move had left with nothing after it.
 */
enum command_result subscriptions_service_end(struct engine *e, struct command *cmd,
                                              const struct subscription *live, tally_time *end)
{
    *end = subscription_end(live);
    if (live->next_id == 0)
        return COMMAND_OK;
    struct store_subscription next;
    if (load_scheduled(e, cmd, live, &next) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    /* served to the switch, and on from it by the downgrade */
    if (!next.sub.has_canceled_at && next.sub.started_at <= *end)
        *end = subscription_end(&next.sub);
    return COMMAND_OK;
}

/*
 * The instant the external id's service ends (subscriptions_service_end) bounds its open holds:
 * each expires at the first of the expiry it was asked for and that end, as no capture could
 * succeed after it, and none is refused before it (docs/API.md, Subscriptions). A new hold is made
 * so (holds_apply_create), and every command that gives, moves or removes an end or a switch calls
 * this once they are saved: PUT, POST /subscriptions' plan changes (an audit found those left the
 * holds authorized past the end, their credits held), a downgrade canceled, a time zone that moves
 * a switch. Bringing them back up to the asked expiry matters as much as cutting: an end moved
 * later, or removed, left them cut by the earlier one, their credits freed and their capture
 * refused while the subscription went on (an audit). A hold from before their asked expiry was kept
 * has none: its expires_at stays all that is known of it.
 */
enum command_result subscriptions_rebound_holds(struct engine *e, struct command *cmd,
                                                const struct subscription *live)
{
    tally_time bound;
    if (subscriptions_service_end(e, cmd, live, &bound) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    return store_subscription_holds_rebound(e->store, live->id, bound != TIMESTAMP_MAX, bound,
                                            cmd->now) == STORE_OK
               ? COMMAND_OK
               : COMMAND_STORE_FAILED;
}

/*
 * Keeps the downgrade scheduled on `sub` consistent with the ends around it, after a command
 * that scheduled it or moved an end or its start. A downgrade ends when `sub` does unless it
 * was given an end of its own: one that ended as `sub` did (`was`: `sub` before the command,
 * NULL when its ending_at did not change) follows its new ending_at, moved or removed (a
 * removed end left the downgrade its old one, before its start: it started already terminated,
 * and the external id was left with no live subscription; an audit). A downgrade that would
 * start at or after an end, `sub`'s or its own, never starts: it is canceled as of that end (as
 * Lago cancels the next subscription of one it terminates), and an end moved past its start, or
 * removed, gives it back. The holds those ends bound are the caller's
 * (subscriptions_rebound_holds).
 */
enum command_result subscriptions_align_scheduled(struct engine *e, struct command *cmd,
                                                  const struct subscription *sub,
                                                  const struct subscription *was)
{
    if (sub->next_id == 0)
        return COMMAND_OK;
    struct store_subscription next;
    if (load_scheduled(e, cmd, sub, &next) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    struct subscription *n = &next.sub;
    if (n->has_canceled_at && n->canceled_at <= cmd->now)
        return COMMAND_OK; /* canceled already, for good */
    bool changed = false;
    if (was && same_ending_at(n, was) && !same_ending_at(n, sub)) {
        n->has_ending_at = sub->has_ending_at;
        n->ending_at = sub->ending_at;
        changed = true;
    }
    tally_time first_end = sub->has_ending_at ? sub->ending_at : TIMESTAMP_MAX;
    if (n->has_ending_at && n->ending_at < first_end)
        first_end = n->ending_at;
    bool ends_first = first_end <= n->started_at;
    if (n->has_canceled_at != ends_first || (ends_first && n->canceled_at != first_end)) {
        n->has_canceled_at = ends_first;
        n->canceled_at = ends_first ? first_end : 0;
        changed = true;
    }
    if (!changed)
        return COMMAND_OK;
    n->updated_at = cmd->now;
    return store_subscription_save(e->store, n) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/*
 * Moves the live subscription `old` to the plan `rq` names: the new one (into *next) starts at
 * `switch_at`. A downgrade scheduled on `old` is canceled (its id into *canceled, else 0).
 */
static enum command_result switch_plan(struct engine *e, struct command *cmd,
                                       const struct subscription_request *rq,
                                       struct subscription *old, tally_time switch_at,
                                       struct subscription *next, int64_t *canceled)
{
    /* an upgrade replaces a downgrade scheduled for later, as Lago cancels it; the usage
     * refresh drops the canceled one's usage (listed as ended) */
    *canceled = 0;
    if (old->next_id != 0) {
        enum command_result r = cancel_scheduled(e, cmd, old);
        if (r != COMMAND_OK)
            return r;
        *canceled = old->next_id;
    }
    subscription_from_request(next, rq, cmd, old->customer_id);
    next->billing_time = old->billing_time;
    next->subscription_at = old->subscription_at; /* the anchor stays: periods do not move */
    next->started_at = switch_at;
    /* and so does the end, unless the request names one (Lago's plan change services): it
     * was lost, and the next plan's subscription took events past it (an audit) */
    if (!rq->has_ending_at && !rq->ending_at_null) {
        next->has_ending_at = old->has_ending_at;
        next->ending_at = old->ending_at;
    }
    if (!rq->name)
        next->name = old->name;
    /* and its purchase order, unless the request names one: see docs/API.md (Subscriptions) */
    if (!rq->has_purchase_order_number)
        next->purchase_order_number = old->purchase_order_number;
    next->previous_id = old->id;
    if (store_subscription_save(e->store, next) != STORE_OK)
        return COMMAND_STORE_FAILED;
    old->has_terminated_at = true;
    old->terminated_at = switch_at;
    old->next_id = next->id;
    old->updated_at = cmd->now;
    /* the holds follow the end they are under now: the new plan's after an upgrade (after a
     * downgrade, the caller's once subscriptions_align_scheduled has decided whether it starts) */
    if (store_subscription_save(e->store, old) != STORE_OK ||
        (switch_at == cmd->now && subscriptions_rebound_holds(e, cmd, next) != COMMAND_OK))
        return COMMAND_STORE_FAILED;
    /* an upgrade ends it now; a downgrade at its period's end, to which it is priced already */
    return switch_at == cmd->now ? settle_to_end(e, cmd, old->id) : COMMAND_OK;
}

/* switch_plan for POST /subscriptions: the new subscription is the command's, and the
 * downgrade it cancels, if any, is listed as ended. */
static enum command_result switch_to_request(struct engine *e, struct command *cmd,
                                             struct subscription *old, tally_time switch_at)
{
    int64_t *ended = arena_alloc(cmd->arena, sizeof *ended);
    if (!ended)
        return COMMAND_STORE_FAILED;
    enum command_result r = switch_plan(e, cmd, &cmd->as.subscription_create, old, switch_at,
                                        &cmd->subscription, ended);
    if (*ended) {
        cmd->ended_subscription_ids = ended;
        cmd->ended_subscription_count = 1;
    }
    return r;
}

/*
 * Refuses new plan_overrides that would change, in place, what a live subscription's periods and
 * debits hang on (the fields a plan update may not change under it: plan_json_frozen_change),
 * as a re-override flipping a charge to pay in advance made a wallet pay its period's peak (an
 * audit). The HTTP thread takes only Lago's overridable fields over the plan's, whose own are
 * frozen while the subscription is live; this holds where those checks cannot: a plan update
 * that raced the subscription's start, or an own plan stored before them. The subscription's
 * own plan (before) and the new one are stored bodies; an unreadable one is let through (the
 * HTTP thread parsed the new one, and the old one was stored by the same parse).
 */
static enum command_result kept_frozen(struct command *cmd, const char *before, const char *after)
{
    struct plan_json_frozen change;
    if (!plan_json_frozen_change(before, after, true, &change) || !change.field)
        return COMMAND_OK;
    if (change.charge[0])
        command_set_message(cmd,
                            "charge %s: its %s cannot change while the subscription is live (%s): "
                            "subscribe with its own value, or make another plan",
                            change.charge, change.field, change.why);
    else
        command_set_message(cmd,
                            "the plan's %s cannot change while the subscription is live (%s): "
                            "subscribe with its own value, or make another plan",
                            change.field, change.why);
    return invalid(cmd, "plan_overrides", "not_overridable");
}

static enum command_result change_plan(struct engine *e, struct command *cmd,
                                       struct store_subscription *live)
{
    const struct subscription_request *rq = &cmd->as.subscription_create;
    struct subscription *old = &live->sub;
    enum subscription_change kind;
    if (!subscription_change_kind(old, &rq->current_plan, rq->plan_lago_id, rq->plan_body != NULL,
                                  &rq->plan, cmd->now, &kind))
        return invalid(cmd, "amount_cents", "value_is_out_of_range");
    struct period current;
    enum command_result r;
    switch (kind) {
    case SUBSCRIPTION_CHANGE_NONE:
        if (!rq->plan_body) { /* on the plan itself, as Lago's current subscription returned */
            cmd->subscription = *old;
            return COMMAND_OK;
        }
        /* same plan, new overrides: the subscription's own plan is replaced in place, never
         * with a field its period's debits hang on changed (kept_frozen) */
        if (old->plan_body) {
            enum command_result kept = kept_frozen(cmd, old->plan_body, rq->plan_body);
            if (kept != COMMAND_OK)
                return kept;
        }
        /* fall through */
    case SUBSCRIPTION_CHANGE_PENDING: {
        /* and takes the request's end when it names one (null: none), as PUT would and as
         * Lago's plan changes do (PlanUpgradeService or PlanDowngradeService, which are also
         * what Lago runs when an overridden subscription is subscribed again with new
         * overrides: its plan is a child of its own). Audits found it ignored, for a pending
         * one and then with overrides. */
        const struct subscription was = *old;
        bool ends = rq->has_ending_at || rq->ending_at_null;
        if (ends) {
            if (rq->has_ending_at && rq->ending_at <= old->started_at)
                return invalid(cmd, "ending_at", "invalid_date");
            old->has_ending_at = rq->has_ending_at;
            old->ending_at = rq->ending_at;
        }
        memcpy(old->plan_lago_id, rq->plan_lago_id, sizeof old->plan_lago_id);
        old->plan_code = rq->plan_code;
        old->plan_body = rq->plan_body;
        cmd->replanned = kind == SUBSCRIPTION_CHANGE_NONE;
        if (rq->name)
            old->name = rq->name;
        if (rq->has_purchase_order_number)
            old->purchase_order_number = rq->purchase_order_number;
        old->updated_at = cmd->now;
        cmd->subscription = *old;
        if (store_subscription_save(e->store, old) != STORE_OK)
            return COMMAND_STORE_FAILED;
        if (!ends)
            return COMMAND_OK;
        /* as PUT: a downgrade scheduled on it follows the end or never starts, the holds
         * follow it, and an end moved into the period gives back what was paid past it */
        r = subscriptions_align_scheduled(e, cmd, old, &was);
        if (r == COMMAND_OK)
            r = subscriptions_rebound_holds(e, cmd, old);
        if (r == COMMAND_OK && rq->has_ending_at)
            r = settle_to_end(e, cmd, old->id);
        return r;
    }
    case SUBSCRIPTION_CHANGE_UPGRADE: return switch_to_request(e, cmd, old, cmd->now);
    case SUBSCRIPTION_CHANGE_DOWNGRADE:
        /* a downgrade already scheduled is replaced (switch_plan cancels it), as Lago's
         * PlanDowngradeService does */
        if (subscription_current_period(old, &rq->current_plan,
                                        subscriptions_customer_zone(e, live->customer_timezone),
                                        cmd->now, &current) != PERIOD_OK)
            return invalid(cmd, "subscription_at", "value_is_out_of_range");
        /* an end it names must come after its start, as for any subscription: at or before
         * the switch it would start terminated, and the current plan would end with nothing
         * after it (an audit) */
        if (rq->has_ending_at && rq->ending_at <= current.end)
            return invalid(cmd, "ending_at", "invalid_date");
        r = switch_to_request(e, cmd, old, current.end);
        if (r == COMMAND_OK)
            r = subscriptions_align_scheduled(e, cmd, old, NULL);
        if (r == COMMAND_OK)
            r = subscriptions_rebound_holds(e, cmd, old);
        if (r == COMMAND_OK)
            cmd->subscription = *old; /* Lago answers the current one, naming what comes next */
        return r;
    }
    return COMMAND_STORE_FAILED;
}

enum command_result subscriptions_apply_create(struct engine *e, struct command *cmd,
                                               struct org_state *org)
{
    const struct subscription_request *rq = &cmd->as.subscription_create;
    struct catalog_item plan;
    enum store_status s = store_catalog_get_by_lago_id(
        store_conn(e->store), cmd->org_id, CATALOG_PLAN, rq->plan_lago_id, &plan, cmd->arena);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    if (s == STORE_NOT_FOUND) {
        cmd->missing_ref = &plan_ref;
        return COMMAND_REF_NOT_FOUND;
    }
    if (plan.updated_at != rq->plan_updated_at)
        return COMMAND_STALE;
    /* as an update refuses it (and Lago both): a subscription that would end before it is
     * made would be terminated from the start, before its own started_at */
    if (rq->has_ending_at && rq->ending_at <= cmd->now)
        return invalid(cmd, "ending_at", "invalid_date");
    struct customer customer;
    enum command_result r = subscription_customer(e, cmd, org, &customer);
    if (r != COMMAND_OK)
        return r;
    struct store_subscription live;
    s = store_subscription_live(store_conn(e->store), cmd->org_id, rq->external_id, cmd->now, &live,
                                cmd->arena);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    tally_time seen = s == STORE_OK ? live.sub.updated_at : 0;
    if ((s == STORE_OK ? live.sub.id : 0) != rq->current_id || seen != rq->current_updated_at)
        return COMMAND_STALE;
    if (s == STORE_OK && live.sub.customer_id != customer.id)
        return invalid(cmd, "external_id", "value_already_exist");
    if (s == STORE_OK)
        return change_plan(e, cmd, &live);
    subscription_from_request(&cmd->subscription, rq, cmd, customer.id);
    return store_subscription_save(e->store, &cmd->subscription) == STORE_OK ? COMMAND_OK
                                                                             : COMMAND_STORE_FAILED;
}

/* The terms of the plan a subscription is on: its own (plan_overrides), else the plan's,
 * deleted or not. *known is false when there are none to read. */
static enum command_result subscribed_terms(struct engine *e, struct command *cmd,
                                            const struct subscription *sub, struct plan_terms *out,
                                            bool *known)
{
    const char *body = sub->plan_body;
    struct catalog_item plan;
    if (!body) {
        enum store_status s = store_catalog_get_any_by_lago_id(
            store_conn(e->store), cmd->org_id, CATALOG_PLAN, sub->plan_lago_id, &plan, cmd->arena);
        if (s == STORE_ERROR)
            return COMMAND_STORE_FAILED;
        body = s == STORE_OK ? plan.body : NULL;
    }
    *known = body && plan_json_terms(body, out);
    return COMMAND_OK;
}

/* Refuses a credit-note choice the subscription's plan (its own, else the one it is on, deleted
 * or not) makes meaningful and Tally cannot honour: SUBSCRIPTION_CREDIT_NOTE_UNSERVED. */
static enum command_result refuse_credit_note_choice(struct engine *e, struct command *cmd,
                                                     const struct subscription *sub, bool asked)
{
    if (!asked)
        return COMMAND_OK;
    struct plan_terms terms;
    bool known;
    if (subscribed_terms(e, cmd, sub, &terms, &known) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    /* as rendered: a subscription without a readable plan answers null, as one in arrears */
    if (!known || !terms.pay_in_advance)
        return COMMAND_OK;
    command_set_message(cmd, "%s", SUBSCRIPTION_CREDIT_NOTE_UNSERVED);
    return invalid(cmd, "on_termination_credit_note", "not_supported");
}

enum command_result subscriptions_apply_update(struct engine *e, struct command *cmd)
{
    const struct subscription_update *u = &cmd->as.subscription_update;
    struct store_subscription live, scheduled;
    enum store_status s = store_subscription_live(store_conn(e->store), cmd->org_id, u->external_id,
                                                  cmd->now, &live, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    struct subscription *sub = &live.sub;
    const struct subscription *current = NULL; /* when sub is the downgrade scheduled on it */
    if (u->pending_only && subscription_status_at(sub, cmd->now) != SUBSCRIPTION_PENDING) {
        /* Lago's ?status=pending names the pending subscription of the external id: of one
         * started, the downgrade scheduled on it (the active one was changed instead, its end
         * meant for the downgrade terminating it early: an audit) */
        if (sub->next_id == 0)
            return COMMAND_NOT_FOUND;
        if (load_scheduled(e, cmd, sub, &scheduled) != COMMAND_OK)
            return COMMAND_STORE_FAILED;
        if (subscription_status_at(&scheduled.sub, cmd->now) != SUBSCRIPTION_PENDING)
            return COMMAND_NOT_FOUND;
        current = sub;
        sub = &scheduled.sub;
    }
    enum command_result refused = refuse_credit_note_choice(e, cmd, sub, u->other_credit_note);
    if (refused != COMMAND_OK)
        return refused;
    const struct subscription was = *sub;
    /* a started subscription's (or a scheduled downgrade's) subscription_at does not change:
     * the value it has passes, as a client echoing back the object it read sends it (refused,
     * a name in the same PUT was lost: an audit); another is refused, where Lago ignores it,
     * rather than answer 200 to a change not made */
    bool started =
        subscription_status_at(sub, cmd->now) != SUBSCRIPTION_PENDING || sub->previous_id;
    bool sets_start =
        u->has_subscription_at && !(started && timestamp_floor_second(u->subscription_at) ==
                                                   timestamp_floor_second(sub->subscription_at));
    if (sets_start && started)
        return invalid(cmd, "subscription_at", "cannot_change_started_subscription");
    /* an end at or before the start, the new one or the kept one, would terminate it before
     * it began (found by an audit on a pending subscription: a 500, or a subscription ended
     * before its own start) */
    tally_time start = sets_start ? timestamp_floor_second(u->subscription_at) : sub->started_at;
    bool ends = u->has_ending_at ? !u->ending_at_null : sub->has_ending_at;
    tally_time end = u->has_ending_at ? u->ending_at : sub->ending_at;
    if (ends && (end <= start || (u->has_ending_at && end <= cmd->now)))
        return invalid(cmd, "ending_at", "invalid_date");
    if (u->has_name)
        sub->name = u->name;
    if (u->has_purchase_order_number)
        sub->purchase_order_number = u->purchase_order_number;
    if (u->has_ending_at) {
        sub->has_ending_at = !u->ending_at_null;
        sub->ending_at = u->ending_at;
        enum command_result r = subscriptions_align_scheduled(e, cmd, sub, &was);
        if (r != COMMAND_OK)
            return r;
    }
    if (sets_start) /* only one not started: Lago's rule, checked above */
        sub->subscription_at = sub->started_at = start;
    sub->updated_at = cmd->now;
    cmd->subscription = *sub;
    if (store_subscription_save(e->store, sub) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* a downgrade's own end is one of those that decide whether it starts at all */
    if (current && u->has_ending_at &&
        subscriptions_align_scheduled(e, cmd, current, NULL) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    /* the holds follow the end, moved earlier, later or removed (the live one's: current
     * when sub is the downgrade scheduled on it) */
    if (u->has_ending_at &&
        subscriptions_rebound_holds(e, cmd, current ? current : sub) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    /* an ending_at moved earlier gives back at once; one moved later is debited by the
     * events that come (or invoiced) */
    return u->has_ending_at && !u->ending_at_null ? settle_to_end(e, cmd, sub->id) : COMMAND_OK;
}

/*
 * Ends a subscription now: a pending one is canceled, an active one terminated, and a downgrade
 * scheduled on it dies with it. Its external id's open holds are left to the caller.
 */
static enum command_result stop_subscription(struct engine *e, struct command *cmd,
                                             struct subscription *sub)
{
    if (subscription_status_at(sub, cmd->now) == SUBSCRIPTION_PENDING) {
        sub->has_canceled_at = true;
        sub->canceled_at = cmd->now;
    } else {
        sub->has_terminated_at = true;
        sub->terminated_at = cmd->now;
    }
    sub->updated_at = cmd->now;
    enum command_result r = cancel_scheduled(e, cmd, sub); /* it dies with it */
    if (r != COMMAND_OK)
        return r;
    if (store_subscription_save(e->store, sub) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return sub->has_terminated_at ? settle_to_end(e, cmd, sub->id) : COMMAND_OK;
}

/*
 * Ends a live subscription now (stop_subscription), and with it the external id's open holds,
 * released and voided: no capture of them could succeed. DELETE /subscriptions and a
 * customer's deletion.
 */
enum command_result subscriptions_end(struct engine *e, struct command *cmd,
                                      struct subscription *sub)
{
    enum command_result r =
        wallet_book_void_subscription_holds(&e->wallets, e->store, cmd, cmd->org_id, sub->id);
    return r == COMMAND_OK ? stop_subscription(e, cmd, sub) : r;
}

/*
 * Cancels `next`, the downgrade scheduled (pending) on the active subscription `sub`, which
 * then goes on past the date it was to end. The open holds are the external id's, so sub's:
 * they stay (voiding them with the downgrade, as ending it did, left the live subscription's
 * usage uncapturable: an audit), and an expiry the downgrade's own ending_at cut is given
 * back, as far as sub's own ending_at allows.
 */
static enum command_result unschedule_downgrade(struct engine *e, struct command *cmd,
                                                struct subscription *sub, struct subscription *next)
{
    enum command_result r = stop_subscription(e, cmd, next);
    if (r != COMMAND_OK)
        return r;
    sub->has_terminated_at = false; /* it was to end where the downgrade began */
    sub->next_id = 0;
    sub->updated_at = cmd->now;
    if (store_subscription_save(e->store, sub) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return subscriptions_rebound_holds(e, cmd, sub);
}

/*
 * DELETE /subscriptions/{id}?status=pending on an active subscription with a downgrade
 * scheduled: the downgrade is the pending one (Lago's next subscription has the same external
 * id), so it is canceled, and the current one goes on past the date it was to end.
 */
static enum command_result cancel_downgrade(struct engine *e, struct command *cmd,
                                            struct subscription *sub)
{
    struct store_subscription next;
    if (load_scheduled(e, cmd, sub, &next) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    if (subscription_status_at(&next.sub, cmd->now) != SUBSCRIPTION_PENDING)
        return COMMAND_NOT_FOUND;
    enum command_result r = refuse_credit_note_choice(
        e, cmd, &next.sub, cmd->as.subscription_terminate.other_credit_note);
    if (r == COMMAND_OK)
        r = unschedule_downgrade(e, cmd, sub, &next.sub);
    cmd->subscription = next.sub;
    return r;
}

/*
 * A downgrade scheduled from the edited plan (`current` is on it): canceled when the plan's
 * price is now below its target's, as Lago's process_downgraded_subscriptions does. Lago
 * compares the two amount_cents as they are (not per year): so does this. *canceled: its id,
 * else 0.
 */
static enum command_result cancel_dearer_downgrade(struct engine *e, struct command *cmd,
                                                   struct subscription *current,
                                                   const struct plan_terms *terms,
                                                   int64_t *canceled)
{
    struct store_subscription next;
    struct plan_terms target;
    bool known;
    *canceled = 0;
    if (load_scheduled(e, cmd, current, &next) != COMMAND_OK ||
        subscribed_terms(e, cmd, &next.sub, &target, &known) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    if (subscription_status_at(&next.sub, cmd->now) != SUBSCRIPTION_PENDING || !known ||
        terms->amount_cents >= target.amount_cents)
        return COMMAND_OK;
    *canceled = next.sub.id;
    return unschedule_downgrade(e, cmd, current, &next.sub);
}

/*
 * A downgrade scheduled to the edited plan (`pending`, on it): an upgrade when the plan is now
 * worth at least as much per year as the plan of the subscription it was to replace, as Lago's
 * process_pending_subscriptions decides. Lago then calls Subscriptions::PlanUpgradeService for
 * that subscription with the plan: here the upgrade path of POST /subscriptions (switch_plan)
 * does the same, at once: the downgrade is canceled, the current subscription ends now (its
 * wallets given back what its usage no longer brings) and a new one on the plan starts now,
 * under the downgrade's name. Its end: the earlier of the two subscriptions' (Lago keeps the
 * current one's; a downgrade given an end of its own keeps it here, and one that would never
 * have started, the current one ending first, does not outlive that end). ids[0..2]: the
 * current, the new and the canceled subscriptions (*started: whether it moved).
 */
static enum command_result upgrade_to_edited(struct engine *e, struct command *cmd,
                                             const struct subscription *pending,
                                             const struct catalog_item *plan,
                                             const struct plan_terms *terms, int64_t ids[3],
                                             bool *started)
{
    struct store_subscription row;
    struct plan_terms from;
    bool known;
    int64_t was, will;
    *started = false;
    if (store_subscription_get(store_conn(e->store), cmd->org_id, pending->previous_id, &row,
                               cmd->arena) != STORE_OK ||
        subscribed_terms(e, cmd, &row.sub, &from, &known) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    struct subscription *old = &row.sub;
    if (old->next_id != pending->id ||
        subscription_status_at(old, cmd->now) != SUBSCRIPTION_ACTIVE || !known ||
        !plan_terms_yearly_amount(&from, &was) || !plan_terms_yearly_amount(terms, &will) ||
        will < was)
        return COMMAND_OK;
    struct subscription_request rq = {
        .external_id = old->external_id,
        .name = pending->name,
        .has_purchase_order_number = true, /* the downgrade's own */
        .purchase_order_number = pending->purchase_order_number,
        .billing_time = old->billing_time,
        .plan_code = plan->code,
        .plan = *terms,
    };
    memcpy(rq.plan_lago_id, plan->lago_id, sizeof rq.plan_lago_id);
    command_new_id(cmd, rq.lago_id);
    rq.has_ending_at = old->has_ending_at || pending->has_ending_at;
    rq.ending_at_null = !rq.has_ending_at;
    rq.ending_at = old->has_ending_at ? old->ending_at : pending->ending_at;
    if (pending->has_ending_at && pending->ending_at < rq.ending_at)
        rq.ending_at = pending->ending_at;
    struct subscription next = {0};
    enum command_result r = switch_plan(e, cmd, &rq, old, cmd->now, &next, &ids[2]);
    ids[0] = old->id;
    ids[1] = next.id;
    *started = r == COMMAND_OK;
    return r;
}

/*
 * After a plan's price edit (Lago's Plans::UpdateService, app/services/plans/update_service.rb,
 * when amount_cents changes): the downgrades scheduled from it and to it are decided again,
 * those from it first, as Lago orders them (cancel_dearer_downgrade, upgrade_to_edited). Only
 * subscriptions on the plan itself: one on a plan of its own (plan_overrides) keeps its price,
 * as Lago's overridden child plans are not the plan's subscriptions. The subscriptions moved
 * are the command's (moved_subscription_ids, started_subscription_ids), whose usage, wallets
 * and carried units engine_apply_one then treats as after the subscription commands that move them
 * alike. A price edit, like any catalog write, spans the organization's customers.
 */
enum command_result subscriptions_recheck_downgrades(struct engine *e, struct command *cmd,
                                                     const struct catalog_item *was,
                                                     const struct catalog_item *plan)
{
    struct plan_terms before, terms;
    struct store_subscription *rows;
    size_t count;
    if (!plan_json_terms(was->body, &before) || !plan_json_terms(plan->body, &terms) ||
        before.amount_cents == terms.amount_cents)
        return COMMAND_OK;
    if (store_plan_scheduled_changes(store_conn(e->store), cmd->org_id, plan->lago_id, cmd->now,
                                     &rows, &count, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (count == 0)
        return COMMAND_OK;
    /* each row moves two subscriptions (a cancel) or three (an upgrade), and starts one */
    int64_t *moved = arena_alloc(cmd->arena, 3 * count * sizeof *moved);
    int64_t *started = arena_alloc(cmd->arena, count * sizeof *started);
    if (!moved || !started)
        return COMMAND_STORE_FAILED;
    size_t moved_count = 0, started_count = 0;
    enum command_result r = COMMAND_OK;
    for (size_t i = 0; r == COMMAND_OK && i < count; i++) {
        struct subscription *current = &rows[i].sub;
        int64_t canceled = 0;
        if (subscription_status_at(current, cmd->now) == SUBSCRIPTION_ACTIVE)
            r = cancel_dearer_downgrade(e, cmd, current, &terms, &canceled);
        if (canceled) {
            moved[moved_count++] = current->id;
            moved[moved_count++] = canceled;
        }
    }
    for (size_t i = 0; r == COMMAND_OK && i < count; i++) {
        bool upgraded = false;
        if (subscription_status_at(&rows[i].sub, cmd->now) == SUBSCRIPTION_PENDING)
            r = upgrade_to_edited(e, cmd, &rows[i].sub, plan, &terms, &moved[moved_count],
                                  &upgraded);
        if (upgraded) {
            started[started_count++] = moved[moved_count + 1];
            moved_count += 3;
        }
    }
    sub_cache_invalidate(&e->subscriptions); /* it may hold rows as they were */
    cmd->moved_subscription_ids = moved;
    cmd->moved_subscription_count = moved_count;
    cmd->started_subscription_ids = started;
    cmd->started_subscription_count = started_count;
    return r;
}

enum command_result subscriptions_apply_terminate(struct engine *e, struct command *cmd)
{
    struct store_subscription live;
    enum store_status s = store_subscription_live(store_conn(e->store), cmd->org_id,
                                                  cmd->as.subscription_terminate.external_id,
                                                  cmd->now, &live, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    struct subscription *sub = &live.sub;
    bool pending = subscription_status_at(sub, cmd->now) == SUBSCRIPTION_PENDING;
    if (cmd->as.subscription_terminate.pending_only && !pending && sub->next_id != 0)
        return cancel_downgrade(e, cmd, sub);
    if (cmd->as.subscription_terminate.pending_only != pending)
        return COMMAND_NOT_FOUND;
    enum command_result r =
        refuse_credit_note_choice(e, cmd, sub, cmd->as.subscription_terminate.other_credit_note);
    if (r != COMMAND_OK)
        return r;
    r = subscriptions_end(e, cmd, sub);
    cmd->subscription = *sub;
    return r;
}

/* ---- deleting a plan ----------------------------------------------------------------- */

/*
 * Before a plan is deleted, its live subscriptions end, as Lago's Plans::DestroyJob has
 * Plans::DestroyService do for the plan and for each of its overridden children (here the
 * subscriptions on a plan of their own made from it: plan_overrides): the active ones are
 * terminated and the pending ones canceled, each as DELETE /subscriptions/{external_id} ends
 * it (subscriptions_end: open holds released and voided, a downgrade scheduled on it canceled,
 * its wallets given back what its usage no longer brings); a downgrade scheduled to the plan is
 * canceled as DELETE ?status=pending cancels it, and the subscription it was to replace goes
 * on. The subscriptions moved are the command's (moved_subscription_ids), whose usage
 * refresh_usage rebuilds as after those commands.
 */
enum command_result subscriptions_end_of_plan(struct engine *e, struct command *cmd,
                                              const struct catalog_item *plan)
{
    struct store_subscription *rows;
    size_t count;
    if (store_plan_live_subscription_rows(store_conn(e->store), cmd->org_id, plan->lago_id,
                                          cmd->now, &rows, &count, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (count == 0)
        return COMMAND_OK;
    int64_t *moved = arena_alloc(cmd->arena, 2 * count * sizeof *moved); /* each moves two */
    if (!moved)
        return COMMAND_STORE_FAILED;
    size_t moved_count = 0;
    enum command_result r = COMMAND_OK;
    for (size_t i = 0; r == COMMAND_OK && i < count; i++) {
        struct store_subscription cur, prev; /* as it is now: one before may have ended it */
        if (store_subscription_get(store_conn(e->store), cmd->org_id, rows[i].sub.id, &cur,
                                   cmd->arena) != STORE_OK)
            return COMMAND_STORE_FAILED;
        struct subscription *sub = &cur.sub;
        if (!subscription_is_live(sub, cmd->now))
            continue;
        bool downgrade = false;
        if (subscription_status_at(sub, cmd->now) == SUBSCRIPTION_PENDING && sub->previous_id) {
            if (store_subscription_get(store_conn(e->store), cmd->org_id, sub->previous_id, &prev,
                                       cmd->arena) != STORE_OK)
                return COMMAND_STORE_FAILED;
            downgrade = prev.sub.next_id == sub->id &&
                        subscription_status_at(&prev.sub, cmd->now) == SUBSCRIPTION_ACTIVE;
        }
        if (downgrade) {
            r = unschedule_downgrade(e, cmd, &prev.sub, sub);
            moved[moved_count++] = prev.sub.id;
        } else {
            r = subscriptions_end(e, cmd, sub);
            if (sub->next_id)
                moved[moved_count++] = sub->next_id;
        }
        moved[moved_count++] = sub->id;
    }
    sub_cache_invalidate(&e->subscriptions); /* it may hold rows as they were */
    cmd->moved_subscription_ids = moved;
    cmd->moved_subscription_count = moved_count;
    return r;
}
