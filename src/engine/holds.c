/*
 * engine/holds.c: authorizations (holds): a hold made on what an event would cost, voided, or
 * captured by an events command (holds_settle before its event is ingested, holds_captured
 * after); and the two reads that price usage without storing an event, a usage read and a fee
 * estimate, which share with holds the lookup of the live usage an event would go to
 * (usage_for_event, usage_for_read).
 *
 * The wallet book keeps the holds' credits (engine/wallet_book, engine/wallets); this file is
 * the commands' side: which usage, which expiry, which state. Threads: the writer's only.
 */
#include "engine/holds.h"

#include <string.h>

#include "engine/ingest.h"
#include "engine/subscriptions.h"
#include "engine/wallets.h"

/* ---- authorizations (holds) --------------------------------------------------------------- */

static enum command_result usage_for_read(struct engine *e, struct command *cmd,
                                          const char *external_subscription_id);

/*
 * The event as its metric makes it (into *priced, in the command's arena), in the usage
 * cmd->usage already found: the metric known (404 billable_metric_not_found), then, where
 * `lago_numbers` (estimate_fees: Lago's Events::ValidateCreationService runs first), a sum,
 * max or latest field Ruby's Float() does not read refused (422 value_is_not_valid_number;
 * an audit found it estimated at 0), then its expression applied.
 */
static enum command_result priced_event(struct engine *e, struct command *cmd,
                                        const struct event *ev, bool lago_numbers,
                                        struct event *priced)
{
    const struct sub_cache_metric *m;
    enum store_status s =
        sub_cache_metric(&e->subscriptions, store_conn(e->store), cmd->org_id, ev->code, &m);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? not_found(cmd, "billable_metric_not_found")
                                    : COMMAND_STORE_FAILED;
    bool checked = m->aggregation == AGGREGATION_SUM || m->aggregation == AGGREGATION_MAX ||
                   m->aggregation == AGGREGATION_LATEST;
    if (lago_numbers && checked && m->field_name && !event_value_is_number(ev, m->field_name))
        return invalid(cmd, "properties", "value_is_not_valid_number");
    *priced = *ev;
    if (!m->expression)
        return COMMAND_OK;
    const char *code, *message;
    enum command_result r = ingest_evaluate_expression(
        e, cmd, m, ev, ev->has_timestamp ? ev->timestamp : cmd->now, priced, &code, &message);
    if (r != COMMAND_INVALID)
        return r;
    cmd->invalid_message = message;
    return invalid(cmd, "properties", code);
}

/* The live usage an event would go to, its metric known, and the event as that metric's
 * expression makes it (into *priced, in the command's arena): what pricing one needs. */
static enum command_result usage_for_event(struct engine *e, struct command *cmd,
                                           const struct event *ev, struct event *priced)
{
    enum command_result r = usage_for_read(e, cmd, ev->external_subscription_id);
    return r == COMMAND_OK ? priced_event(e, cmd, ev, false, priced) : r;
}

/* A hold asked to last until `asked`: to the next whole second, the instant its expires_at
 * states (an audit captured a hold 150 ms past the expires_at it was answered, which had
 * dropped the fraction). */
static tally_time hold_asked_expiry(tally_time asked)
{
    tally_time part = asked % TIMESTAMP_USEC_PER_SEC;
    return part > 0 ? asked + TIMESTAMP_USEC_PER_SEC - part : asked;
}

/* When a hold asked to last until `asked` expires: then (hold_asked_expiry), or when its
 * external id's service ends (subscriptions_service_end of its live subscription) if that comes
 * first: no capture could succeed after it, and its credits would stay reserved. The same rule as
 * subscriptions_rebound_holds (an audit found a new hold not cut by a scheduled downgrade's own
 * end). */
static enum command_result hold_expiry(struct engine *e, struct command *cmd,
                                       const struct subscription *live, tally_time asked,
                                       tally_time *out)
{
    tally_time end;
    if (subscriptions_service_end(e, cmd, live, &end) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    asked = hold_asked_expiry(asked);
    *out = end < asked ? end : asked;
    return COMMAND_OK;
}

/* An event's precise amount as the text a hold keeps (canonical: two equal amounts read the
 * same), in the command's arena; NULL without one. */
static const char *precise_text(struct command *cmd, const struct event *ev)
{
    if (!ev->has_precise_total_amount_cents)
        return NULL;
    char text[MONEY_TEXT_MAX];
    money_format(ev->precise_total_amount_cents, text, sizeof text);
    return arena_strndup(cmd->arena, text, strlen(text));
}

enum command_result holds_apply_create(struct engine *e, struct command *cmd)
{
    const struct event *ev = cmd->as.authorization_create.event;
    struct event priced; /* as the capture's event will be stored: with its expression's result */
    enum command_result r = usage_for_event(e, cmd, ev, &priced);
    if (r != COMMAND_OK)
        return r;
    int64_t price;
    bool unreadable = false;
    struct wallets_hold_part *parts =
        arena_alloc(cmd->arena, (cmd->usage->charge_count + 1) * sizeof *parts);
    if (!parts)
        return COMMAND_STORE_FAILED;
    if (!wallets_price_event(&e->wallets, e->store, cmd->usage, &priced, cmd->now, &price, parts,
                             &unreadable))
        return unreadable ? COMMAND_STORE_FAILED : invalid(cmd, "properties", "cannot_be_priced");
    const struct store_subscription *sub = &cmd->usage_subscription;
    struct store_authorization *a = &cmd->authorization;
    tally_time asked =
        cmd->now + cmd->as.authorization_create.expires_in_sec * TIMESTAMP_USEC_PER_SEC;
    tally_time expires_at;
    if (hold_expiry(e, cmd, &sub->sub, asked, &expires_at) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    *a = (struct store_authorization){
        .org_id = cmd->org_id,
        .customer_id = sub->sub.customer_id,
        .subscription_id = sub->sub.id,
        .external_subscription_id = ev->external_subscription_id,
        .code = ev->code,
        .properties_json = ev->properties_json,
        .precise_total_amount_cents = precise_text(cmd, ev),
        .amount_cents = price,
        .expires_at = expires_at,
        .asked_expires_at = hold_asked_expiry(asked), /* given back if that end is taken back */
        .created_at = cmd->now,
        .updated_at = cmd->now,
        .external_customer_id = sub->customer_external_id,
    };
    memcpy(a->currency, cmd->usage->currency, sizeof a->currency);
    command_new_id(cmd, a->lago_id);
    return wallets_hold(&e->wallets, e->store, cmd, a, ev->code, parts, cmd->usage->charge_count);
}

/* The hold a capture or void names, read into cmd->authorization; refused unless it holds. */
static enum command_result read_open_hold(struct engine *e, struct command *cmd,
                                          const char *lago_id)
{
    struct store_authorization *a = &cmd->authorization;
    enum store_status s =
        store_authorization_get(store_conn(e->store), cmd->org_id, lago_id, a, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? not_found(cmd, "authorization_not_found")
                                    : COMMAND_STORE_FAILED;
    switch (a->status) {
    case AUTHORIZATION_AUTHORIZED:
        /* past its expiry, though the clock's sweep has not released it yet: a capture and a
         * void are both refused so, or a void could follow the capture's "expired" */
        if (a->expires_at <= cmd->now)
            return invalid(cmd, "authorization", "expired");
        break;
    case AUTHORIZATION_DECLINED: return invalid(cmd, "authorization", "declined");
    case AUTHORIZATION_CAPTURED: return invalid(cmd, "authorization", "already_captured");
    case AUTHORIZATION_VOIDED: return invalid(cmd, "authorization", "voided");
    case AUTHORIZATION_EXPIRED: return invalid(cmd, "authorization", "expired");
    }
    return COMMAND_OK;
}

/*
 * The open hold a capture or void names, in cmd->authorization, as of cmd->now: its customer's
 * wallets are brought up to it first (wallets_up_to_date), as the wallet routes' are, so that
 * a wallet past its expiration_at has released the hold (voided) whether the clock's sweep came
 * yet or not. Found by an audit: in the second before the sweep a capture released the hold
 * first, its wallet then expired with the held credits, and a sibling wallet paid the usage
 * (200 captured, where the sweep's answer is 422 voided). A hold's own expiry is read first,
 * as the sweep releases expired holds before it ends wallets.
 */
static enum command_result open_hold(struct engine *e, struct command *cmd, const char *lago_id)
{
    enum command_result r = read_open_hold(e, cmd, lago_id);
    if (r != COMMAND_OK)
        return r;
    const struct store_authorization *a = &cmd->authorization;
    r = wallets_up_to_date(&e->wallets, e->store, cmd, a->org_id, a->customer_id, NULL);
    return r == COMMAND_OK ? read_open_hold(e, cmd, lago_id) : r; /* voided, maybe, just now */
}

enum command_result holds_apply_void(struct engine *e, struct command *cmd)
{
    enum command_result r = open_hold(e, cmd, cmd->as.authorization_void.lago_id);
    if (r == COMMAND_OK)
        r = wallet_book_release(&e->wallets, e->store, cmd, &cmd->authorization,
                                LEDGER_CAUSE_RELEASE);
    if (r != COMMAND_OK)
        return r;
    cmd->authorization.status = AUTHORIZATION_VOIDED;
    cmd->authorization.updated_at = cmd->now;
    return store_authorization_save(e->store, &cmd->authorization) == STORE_OK
               ? COMMAND_OK
               : COMMAND_STORE_FAILED;
}

/* A capture releases its hold, then its event is ingested and debited like any other. */
enum command_result holds_settle(struct engine *e, struct command *cmd)
{
    enum command_result r = open_hold(e, cmd, cmd->as.events_ingest.authorization_lago_id);
    if (r != COMMAND_OK)
        return r;
    const struct event *ev = &cmd->as.events_ingest.events[0];
    const char *price = precise_text(cmd, ev),
               *held_price = cmd->authorization.precise_total_amount_cents;
    /* The authorized usage: the same properties and price, at or after the instant the hold
     * priced it (a capture timestamped earlier is dearer where time counts, a time-weighted sum
     * or a prorated charge: other usage, held to the limits as an event; an audit found one
     * leave 2850 cents on a hard wallet's invoice); within the hold's own second, as a client
     * stamping in whole seconds sends it */
    tally_time at = ev->has_timestamp ? ev->timestamp : cmd->now;
    cmd->as.events_ingest.as_authorized =
        cmd->as.events_ingest.properties_as_authorized &&
        (price ? held_price && strcmp(price, held_price) == 0 : !held_price) &&
        at >= timestamp_floor_second(cmd->authorization.created_at);
    return wallet_book_release(&e->wallets, e->store, cmd, &cmd->authorization,
                               LEDGER_CAUSE_CAPTURE);
}

enum command_result holds_captured(struct engine *e, struct command *cmd)
{
    struct store_authorization *a = &cmd->authorization;
    a->status = AUTHORIZATION_CAPTURED;
    a->has_captured_cents = true;
    a->captured_cents = cmd->usage_cost_cents;
    a->transaction_id = cmd->as.events_ingest.events[0].transaction_id;
    a->updated_at = cmd->now;
    return store_authorization_save(e->store, a) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* The live usage of an active subscription for a read; its row is left in the command. */
static enum command_result usage_for_read(struct engine *e, struct command *cmd,
                                          const char *external_subscription_id)
{
    /* the row events use, remembered by the writer; its strings stay valid for this command
     * (the cache drops nothing before its next lookup) */
    const struct store_subscription *cached;
    enum store_status s = sub_cache_at(
        &e->subscriptions, store_conn(e->store), cmd->org_id, external_subscription_id,
        sub_cache_hash(e->fingerprint_key, external_subscription_id), cmd->now, &cached);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    struct store_subscription *row = &cmd->usage_subscription;
    if (s == STORE_OK)
        *row = *cached;
    if (s == STORE_NOT_FOUND || subscription_status_at(&row->sub, cmd->now) != SUBSCRIPTION_ACTIVE)
        return not_found(cmd, "subscription_not_found");
    const char *failed;
    cmd->usage =
        usage_book_get(&e->usage, e->store, e->tzdb, row, cmd->now, e->fingerprint_key, &failed);
    return cmd->usage ? COMMAND_OK : COMMAND_STORE_FAILED;
}

enum command_result holds_apply_usage_read(struct engine *e, struct command *cmd)
{
    struct customer customer;
    enum store_status s =
        store_customer_get(store_conn(e->store), cmd->org_id,
                           cmd->as.usage_read.external_customer_id, &customer, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? not_found(cmd, "customer_not_found") : COMMAND_STORE_FAILED;
    enum command_result r = usage_for_read(e, cmd, cmd->as.usage_read.external_subscription_id);
    if (r == COMMAND_OK && cmd->usage_subscription.sub.customer_id != customer.id)
        return not_found(cmd, "subscription_not_found");
    return r;
}

/* Whether a charge of the usage would estimate an event of `code` (any code: NULL). */
static bool any_charge_estimates(const struct usage *u, const char *code, bool instant)
{
    for (size_t k = 0; k < u->charge_count; k++)
        if (usage_charge_estimated(&u->charges[k], code, instant))
            return true;
    return false;
}

/*
 * Each event's usage, subscription and priced event, refused as Lago's services refuse:
 * - estimate_fees (Fees::EstimatePayInAdvanceService): the subscription, the metric, the
 *   field's number, the expression, then a pay-in-advance charge of the code;
 * - an instant estimate (Fees::EstimateInstant::PayInAdvanceService) looks no metric up: an
 *   event of a code no instant charge takes, an unknown metric's or none, is refused
 *   does_not_match_an_instant_charge;
 * - a batch of them (BatchPayInAdvanceService) refuses only a subscription whose plan has no
 *   instant charge at all, and passes over an event no instant charge takes (its usage NULL:
 *   no fee). An audit found such a batch refused whole.
 */
enum command_result holds_apply_fees_estimate(struct engine *e, struct command *cmd)
{
    size_t n = cmd->as.fees_estimate.count;
    bool instant = cmd->as.fees_estimate.instant, batch = cmd->as.fees_estimate.batch;
    const struct usage **usages = arena_alloc(cmd->arena, n * sizeof *usages);
    struct store_subscription *subs = arena_alloc(cmd->arena, n * sizeof *subs);
    struct event *priced = arena_alloc(cmd->arena, n * sizeof *priced);
    if (!usages || !subs || !priced)
        return COMMAND_STORE_FAILED;
    /* a usage got for one event stays valid for the others: the book replaces a usage only
     * when its own period moves on, which `now` does not within a command */
    for (size_t i = 0; i < n; i++) {
        const struct event *ev = &cmd->as.fees_estimate.events[i];
        enum command_result r = usage_for_read(e, cmd, ev->external_subscription_id);
        if (r != COMMAND_OK)
            return r;
        subs[i] = cmd->usage_subscription;
        usages[i] = NULL;
        priced[i] = *ev;
        if (batch && !any_charge_estimates(cmd->usage, NULL, true))
            return invalid(cmd, "code", "does_not_match_an_instant_charge");
        bool estimated = any_charge_estimates(cmd->usage, ev->code, instant);
        if (instant && !estimated && batch)
            continue; /* no fee, and no metric looked up */
        /* estimate_fees prices the event (or refuses it) before it looks at the charges */
        if (!instant || estimated)
            r = priced_event(e, cmd, ev, !instant, &priced[i]);
        if (r != COMMAND_OK)
            return r;
        if (!estimated)
            return invalid(cmd, "code", "does_not_match_an_instant_charge");
        usages[i] = cmd->usage;
    }
    cmd->as.fees_estimate.usages = usages;
    cmd->as.fees_estimate.subscriptions = subs;
    cmd->as.fees_estimate.priced = priced;
    return COMMAND_OK;
}
