/*
 * engine/customer_edit.c: a customer made, updated or deleted. An update that changes the
 * customer's time zone moves its subscriptions' current periods (and a scheduled downgrade's
 * switch, and the open holds' bounds) into the new zone, refused where wallets paid events the
 * move would put into another period; one that changes its zone or taxes prices its usage
 * again. A deletion ends its live subscriptions and applied coupons, as Lago's
 * Customers::DestroyService does.
 *
 * The subscription rules these call are engine/subscriptions'. Threads: the writer's only.
 */
#include "engine/customer_edit.h"

#include <json-c/json.h>
#include <string.h>

#include "engine/applied_coupons.h"
#include "engine/settle.h"
#include "engine/subscriptions.h"
#include "engine/wallets.h"
#include "json/customer_json.h"
#include "json/plan_json.h"
#include "util/text.h"

/*
 * A downgrade is scheduled for the end of the current period: when a new time zone moves that
 * end, the switch moves with it (the old plan ends, the new one starts, at the new end), and
 * may move past an end the downgrade then never starts by (it started already terminated).
 */
static enum command_result move_scheduled_switch(struct engine *e, struct command *cmd,
                                                 struct subscription *old, tally_time end_was,
                                                 tally_time end_is)
{
    if (!old->next_id || !old->has_terminated_at || old->terminated_at != end_was ||
        end_is == end_was)
        return COMMAND_OK;
    struct store_subscription next;
    if (store_subscription_get(store_conn(e->store), cmd->org_id, old->next_id, &next,
                               cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (subscription_status_at(&next.sub, cmd->now) != SUBSCRIPTION_PENDING ||
        next.sub.started_at != end_was)
        return COMMAND_OK;
    next.sub.started_at = end_is;
    next.sub.updated_at = cmd->now;
    old->terminated_at = end_is;
    old->updated_at = cmd->now;
    sub_cache_invalidate(&e->subscriptions); /* it may hold either row as it was */
    /* the downgrade's own settlement, if events were sent ahead into it, waits for its start */
    if (store_subscription_save(e->store, &next.sub) != STORE_OK ||
        store_subscription_save(e->store, old) != STORE_OK ||
        store_period_settlement_move(e->store, next.sub.id, cmd->now, end_is) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* and the holds follow where the external id now ends: the switch, if the downgrade is
     * canceled by it (they stayed cut by the downgrade's end: an audit) */
    enum command_result r = subscriptions_align_scheduled(e, cmd, old, NULL);
    return r == COMMAND_OK ? subscriptions_rebound_holds(e, cmd, old) : r;
}

/* The customer's active subscriptions (in cmd's arena); false if they cannot be read. */
bool customer_edit_active_subscriptions(struct engine *e, struct command *cmd, int64_t customer_id,
                                        struct store_subscription **rows, size_t *count)
{
    unsigned active = 1u << SUBSCRIPTION_ACTIVE;
    int64_t total;
    return store_subscription_list(store_conn(e->store), cmd->org_id, customer_id, active, cmd->now,
                                   0, 1, rows, count, &total, cmd->arena) == STORE_OK &&
           (total <= 1 || store_subscription_list(store_conn(e->store), cmd->org_id, customer_id,
                                                  active, cmd->now, 0, total, rows, count, &total,
                                                  cmd->arena) == STORE_OK);
}

/* A subscription's current periods in a customer's zone before and after a change of zone:
 * its charges' (which usage and wallet debits follow; months under bill_charges_monthly)
 * and its fee's (which a scheduled downgrade follows). */
struct zone_move {
    struct period charges_was, charges_is, fee_was, fee_is;
};

static bool zone_move_of(const struct subscription *sub, const struct plan_terms *terms,
                         const struct tz_zone *was, const struct tz_zone *will, tally_time now,
                         struct zone_move *m)
{
    return subscription_charges_period(sub, terms, was, now, &m->charges_was) == PERIOD_OK &&
           subscription_charges_period(sub, terms, will, now, &m->charges_is) == PERIOD_OK &&
           subscription_current_period(sub, terms, was, now, &m->fee_was) == PERIOD_OK &&
           subscription_current_period(sub, terms, will, now, &m->fee_is) == PERIOD_OK;
}

static tally_time start_gap(const struct period *a, const struct period *b)
{
    return a->start > b->start ? a->start - b->start : b->start - a->start;
}

/*
 * A start of the current period moved from `was` to `is` moves the subscription's events
 * timestamped between them into the other period: back into the last one (whose debits paid
 * it without them), or out of it into this one (which would debit them again); and so its late
 * events of a recurring metric accepted between them (store_recurring_late_count). Where wallets
 * pay the customer's usage, that is refused while such events exist (an audit found usage paid
 * twice moving east, and left unpaid moving west); without wallets only the usage shown moves.
 */
static enum command_result check_paid_events_stay(struct engine *e, struct command *cmd,
                                                  const struct subscription *sub, tally_time was,
                                                  tally_time is)
{
    if (was == is)
        return COMMAND_OK;
    bool failed = false;
    bool pays =
        wallets_customer_pays(&e->wallets, e->store, cmd->org_id, sub->customer_id, &failed);
    if (failed)
        return COMMAND_STORE_FAILED;
    if (!pays)
        return COMMAND_OK;
    struct store_event_filter f = {.external_subscription_id = sub->external_id,
                                   .has_from = true,
                                   .from = was < is ? was : is,
                                   .has_to = true,
                                   .to = (was < is ? is : was) - 1};
    struct store_event *none;
    size_t listed;
    int64_t moved;
    if (store_event_list(store_conn(e->store), cmd->org_id, &f, 0, 0, &none, &listed, &moved,
                         cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    char from[TIMESTAMP_TEXT_MAX], to[TIMESTAMP_TEXT_MAX];
    timestamp_format(f.from, false, from);
    timestamp_format(f.to + 1, false, to);
    if (moved > 0) {
        command_set_message(
            cmd,
            "in that time zone, %lld events of subscription %s (timestamped from %s to %s) would "
            "move into another billing period than the one its wallets paid them in; change the "
            "time zone once the next period has begun",
            (long long)moved, sub->external_id, from, to);
        return invalid(cmd, "timezone", "would_move_paid_events");
    }
    /* A recurring metric's late event belongs to the period it was accepted in (usage.c,
     * carry_recurring): accepted between the two starts, it would become the new period's own
     * (moving east: a peak already paid raised again) or part of the past it starts with
     * (moving west: the peak it raised given back). An audit found the first. */
    int64_t late;
    if (store_recurring_late_count(store_conn(e->store), cmd->org_id, sub->external_id,
                                   sub->customer_id, f.from, f.to + 1, &late) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (late == 0)
        return COMMAND_OK;
    command_set_message(
        cmd,
        "in that time zone, %lld late events of a recurring metric of subscription %s (accepted "
        "from %s to %s) would count in another billing period than the one its wallets paid "
        "them in; change the time zone once the next period has begun",
        (long long)late, sub->external_id, from, to);
    return invalid(cmd, "timezone", "would_move_paid_events");
}

/*
 * A customer's new time zone may move its subscriptions' current periods by a few hours, and
 * what their charges have debited moves with them here (wallets_move_period), as does a
 * downgrade scheduled for the period's end (move_scheduled_switch), not into
 * another period: near a boundary the current period would become the one before, whose
 * debits a wallet has settled apart (an audit found such a change paying the period again,
 * and again at each restart). Refused then, with when it may be made. (Debits used to follow a
 * start that moved by less than two days wherever they met it, which also took a short first
 * period's debits for the next period's: a later audit found that period unpaid.)
 */
static enum command_result move_periods_to_zone(struct engine *e, struct command *cmd,
                                                int64_t customer_id, const char *had,
                                                const char *has, bool *earlier)
{
    *earlier = false;
    struct store_subscription *rows;
    size_t count;
    if (!customer_edit_active_subscriptions(e, cmd, customer_id, &rows, &count))
        return COMMAND_STORE_FAILED;
    const struct tz_zone *was = subscriptions_customer_zone(e, had),
                         *will = subscriptions_customer_zone(e, has);
    for (size_t i = 0; was && will && i < count; i++) {
        const struct subscription *sub = &rows[i].sub;
        struct catalog_item plan;
        const char *body = sub->plan_body;
        if (!body && store_catalog_get_by_lago_id(store_conn(e->store), cmd->org_id, CATALOG_PLAN,
                                                  sub->plan_lago_id, &plan, cmd->arena) == STORE_OK)
            body = plan.body;
        struct plan_terms terms;
        struct zone_move m;
        if (!body || !plan_json_terms(body, &terms) ||
            !zone_move_of(sub, &terms, was, will, cmd->now, &m))
            continue; /* nothing priced by it to move */
        if (start_gap(&m.charges_was, &m.charges_is) < WALLET_PERIOD_MOVE_MAX &&
            start_gap(&m.fee_was, &m.fee_is) < WALLET_PERIOD_MOVE_MAX) {
            *earlier = *earlier || m.charges_is.start < m.charges_was.start;
            /* Debits are kept under the usage's start, which a first period clamps to the
             * subscription's: a start moved east of it leaves them where they are (an audit
             * found them moved to the period's start, away from the usage's, and the whole
             * period paid again at the next event). */
            tally_time was_from = subscription_usage_from(sub, &m.charges_was),
                       is_from = subscription_usage_from(sub, &m.charges_is);
            /* and its end: events sent ahead into the period's last hours were paid in it,
             * and an end moved earlier would have the next period pay them again (an audit
             * found a hard wallet then refusing the next month's first event) */
            tally_time ends = subscription_end(sub),
                       was_to = m.charges_was.end < ends ? m.charges_was.end : ends,
                       is_to = m.charges_is.end < ends ? m.charges_is.end : ends;
            enum command_result r = check_paid_events_stay(e, cmd, sub, was_from, is_from);
            if (r == COMMAND_OK)
                r = check_paid_events_stay(e, cmd, sub, was_to, is_to);
            if (r == COMMAND_OK && was_from != is_from)
                r = wallets_move_period(&e->wallets, e->store, cmd, customer_id, sub->id, was_from,
                                        is_from);
            if (r == COMMAND_OK)
                r = move_scheduled_switch(e, cmd, &rows[i].sub, m.fee_was.end, m.fee_is.end);
            /* The next period's start, when its wallets pay what it carries (settle_periods),
             * was set as the old zone had it: moving east the period began and its carried
             * units waited hours for the old zone's midnight, while after a restart the next
             * event set the new zone's (an audit found live and restarted wallets apart).
             * Moving west the old midnight comes first and only finds the period not over.
             * A live subscription's settlement after now is always its current period's end
             * (the switch's, read after the downgrade moved it); one due already is not
             * touched. */
            tally_time next =
                m.charges_is.end < subscription_end(sub) ? m.charges_is.end : subscription_end(sub);
            if (r == COMMAND_OK &&
                store_period_settlement_move(e->store, sub->id, cmd->now, next) != STORE_OK)
                r = COMMAND_STORE_FAILED;
            if (r != COMMAND_OK)
                return r;
            continue;
        }
        command_set_message(cmd,
                            "in that time zone, subscription %s would be in another billing "
                            "period than its current one; change the time zone more than a day "
                            "away from the period's boundary",
                            sub->external_id);
        return invalid(cmd, "timezone", "would_change_current_period");
    }
    return COMMAND_OK;
}

static bool same_zone(const char *a, const char *b)
{
    return strcmp(a ? a : "UTC", b ? b : "UTC") == 0;
}

/* The taxes a customer names exist (Lago's Customers::ApplyTaxesService: 404 otherwise). */
static enum command_result check_customer_taxes(struct engine *e, struct command *cmd,
                                                const char *codes_text)
{
    struct json_object *codes = codes_text ? json_tokener_parse(codes_text) : NULL;
    enum command_result r = COMMAND_OK;
    for (size_t i = 0; r == COMMAND_OK && json_object_is_type(codes, json_type_array) &&
                       i < json_object_array_length(codes);
         i++) {
        struct catalog_item tax;
        switch (store_catalog_get(store_conn(e->store), cmd->org_id, CATALOG_TAX,
                                  json_object_get_string(json_object_array_get_idx(codes, i)), &tax,
                                  cmd->arena)) {
        case STORE_OK: break;
        case STORE_NOT_FOUND: r = not_found(cmd, "tax_not_found"); break;
        default: r = COMMAND_STORE_FAILED; break;
        }
    }
    json_object_put(codes);
    return r;
}

/*
 * Whether a customer is editable in Lago's sense (Customer#editable?, app/models/customer.rb):
 * only while it has no subscription, wallet, invoice, applied add-on or fixed-amount applied
 * coupon, of any status. Lago's Customers::UpdateCurrencyService refuses a currency change
 * (customer_update: true) otherwise, and UpsertFromApiService keeps its account_type; Tally
 * refuses both (check_editable), naming what holds the customer. Each holder is in the currency
 * it had: a wallet pays only for usage in its own currency, so a currency moved away from it
 * left it silently paying for nothing (found by an audit), and a subscription or coupon that
 * ended still was in it. (Tally's invoices are a wallet's paid top-ups, and it has no applied
 * add-ons: its wallet refuses first.)
 */
enum edit_holder { HOLDER_NONE, HOLDER_WALLET, HOLDER_SUBSCRIPTION, HOLDER_COUPON };

struct edit_hold {
    enum edit_holder by;
    const char *name;     /* the wallet's code, subscription's external id or coupon's code */
    const char *currency; /* the holder's currency; NULL: the customer's */
};

static enum command_result find_edit_hold(struct engine *e, struct command *cmd,
                                          int64_t customer_id, struct edit_hold *hold)
{
    struct store_conn *conn = store_conn(e->store);
    struct store_wallet *wallets;
    struct store_subscription *subs;
    struct store_applied_coupon *coupons;
    size_t count;
    int64_t total;
    *hold = (struct edit_hold){HOLDER_NONE, NULL, NULL};
    if (store_wallet_list(conn, cmd->org_id, customer_id, NULL, 0, 1, &wallets, &count, &total,
                          cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (count > 0) {
        *hold = (struct edit_hold){HOLDER_WALLET, wallets[0].code, wallets[0].currency};
        return COMMAND_OK;
    }
    const unsigned any = 1u << SUBSCRIPTION_PENDING | 1u << SUBSCRIPTION_ACTIVE |
                         1u << SUBSCRIPTION_TERMINATED | 1u << SUBSCRIPTION_CANCELED;
    if (store_subscription_list(conn, cmd->org_id, customer_id, any, cmd->now, 0, 1, &subs, &count,
                                &total, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (count > 0) {
        *hold = (struct edit_hold){HOLDER_SUBSCRIPTION, subs[0].sub.external_id, NULL};
        return COMMAND_OK;
    }
    if (store_applied_coupon_list(conn, cmd->org_id, customer_id, 0, NULL, 0, INT64_MAX, &coupons,
                                  &count, &total, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        const struct applied_coupon *a = &coupons[i].coupon;
        if (a->type != COUPON_FIXED_AMOUNT)
            continue; /* a percentage has no currency */
        *hold = (struct edit_hold){HOLDER_COUPON, a->coupon_code, a->amount_currency};
        return COMMAND_OK;
    }
    return COMMAND_OK;
}

/*
 * Refuses a change of `field` (its error under `code`, `why` after the message's reason)
 * while the customer is not editable; `currency` is the customer's, as it was.
 */
static enum command_result check_editable(struct engine *e, struct command *cmd,
                                          int64_t customer_id, const char *currency,
                                          const char *field, const char *code, const char *why)
{
    struct edit_hold hold;
    enum command_result r = find_edit_hold(e, cmd, customer_id, &hold);
    if (r != COMMAND_OK || hold.by == HOLDER_NONE)
        return r;
    const char *in = hold.currency ? hold.currency : currency;
    switch (hold.by) {
    case HOLDER_WALLET:
        command_set_message(cmd,
                            "the customer has wallet %s, in %s: its %s cannot change once it has "
                            "a wallet, even a terminated one%s",
                            hold.name, in ? in : "no currency", field, why);
        break;
    case HOLDER_SUBSCRIPTION:
        command_set_message(cmd,
                            "the customer has subscription %s, in %s: its %s cannot change once "
                            "it has a subscription, even an ended one%s",
                            hold.name, in ? in : "no currency", field, why);
        break;
    default:
        command_set_message(cmd,
                            "coupon %s was applied to this customer in %s: its %s cannot change "
                            "once a fixed-amount coupon has been applied, even one terminated "
                            "since%s",
                            hold.name, in ? in : "no currency", field, why);
        break;
    }
    return invalid(cmd, field, code);
}

static const char *account_type_of(const char *stored)
{
    return stored ? stored : "customer"; /* Lago's default, and the column's */
}

enum command_result customer_edit_apply_upsert(struct engine *e, struct command *cmd,
                                               struct org_state *org)
{
    const struct customer_input *in = &cmd->as.customer_upsert.input;
    struct customer *c = &cmd->customer;
    enum store_status s = store_customer_get(store_conn(e->store), cmd->org_id,
                                             in->values.external_id, c, cmd->arena);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    if (s == STORE_NOT_FOUND) {
        customer_init_defaults(c);
        c->org_id = cmd->org_id;
        c->external_id = in->values.external_id;
        memcpy(c->lago_id, in->values.lago_id, sizeof c->lago_id);
        c->created_at = cmd->now;
        c->sequential_id = org->last_customer_sequential_id + 1;
    }
    /* what the edit may re-price, in the book as priced before it (engine_reprice_customer
     * walks the book; a start left out a period debited only for units carried in: a fuzzer) */
    if (s == STORE_OK && (in->has_doc[CUSTOMER_TAX_CODES] || in->has_text[CUSTOMER_TIMEZONE]) &&
        engine_hold_debited_usages(e, cmd, c->id) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    const char *had = c->text[CUSTOMER_CURRENCY];
    const char *had_zone = c->text[CUSTOMER_TIMEZONE];
    const char *had_taxes = c->doc[CUSTOMER_TAX_CODES];
    const char *had_account = account_type_of(c->text[CUSTOMER_ACCOUNT_TYPE]);
    if (in->has_doc[CUSTOMER_TAX_CODES]) {
        enum command_result r = check_customer_taxes(e, cmd, in->values.doc[CUSTOMER_TAX_CODES]);
        if (r != COMMAND_OK)
            return r;
    }
    /* Merged here, on the stored customer this command changes, so that two partial
     * updates sent together both stay. */
    struct customer_input merged = *in;
    if (!customer_json_merge_docs(cmd->arena, c, &merged))
        return COMMAND_STORE_FAILED;
    customer_apply(c, &merged);
    const char *has = c->text[CUSTOMER_CURRENCY];
    /* A partner's invoices are self-billed, and an invoice reads it from its customer's
     * account_type (api/invoices.c): refused once the customer may have one, so that no invoice
     * ever changes after it is issued. Lago keeps the account type then, silently; a client
     * told nothing would believe the change made. */
    if (s == STORE_OK &&
        strcmp(had_account, account_type_of(c->text[CUSTOMER_ACCOUNT_TYPE])) != 0) {
        enum command_result r =
            check_editable(e, cmd, c->id, had, "account_type", "not_editable",
                           " (an invoice's self_billed follows its customer's account_type, and "
                           "must not change once the invoice is issued)");
        if (r != COMMAND_OK)
            return r;
    }
    bool earlier = false;
    if (s == STORE_OK && !same_zone(had_zone, c->text[CUSTOMER_TIMEZONE])) {
        enum command_result r =
            move_periods_to_zone(e, cmd, c->id, had_zone, c->text[CUSTOMER_TIMEZONE], &earlier);
        if (r == COMMAND_OK)
            r = wallets_move_to_zone(&e->wallets, e->store, cmd, c->id, c->text[CUSTOMER_TIMEZONE]);
        if (r != COMMAND_OK)
            return r;
    }
    /* A period that starts earlier now may take events from before anything the book or the
     * snapshot's mark reaches: every start reads from the first event until a clean stop's
     * snapshot marks where the rebuilt book reaches (the setting commits with the change). */
    int64_t floor = 1;
    if (earlier &&
        store_setting_put(e->store, ENGINE_USAGE_FLOOR_SETTING, &floor, sizeof floor) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (s == STORE_OK && had && (!has || strcmp(had, has) != 0)) {
        enum command_result r =
            check_editable(e, cmd, c->id, had, "currency", "currencies_does_not_match", "");
        if (r != COMMAND_OK)
            return r;
    }
    c->updated_at = cmd->now;
    if (store_customer_save(e->store, c) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (c->sequential_id > org->last_customer_sequential_id)
        org->last_customer_sequential_id = c->sequential_id;
    const char *has_zone = c->text[CUSTOMER_TIMEZONE];
    /* its periods are its zone's days; its taxes are in each charge's fee */
    if (s == STORE_OK &&
        (!same_zone(had_zone, has_zone) || !text_same(had_taxes, c->doc[CUSTOMER_TAX_CODES]))) {
        engine_reprice_customer(e, cmd, c->id, earlier);
        return engine_give_back_repriced(e, cmd, c->id);
    }
    return COMMAND_OK;
}

/* ---- deleting a customer ------------------------------------------------------------- */

/*
 * Its live subscriptions end (active ones terminated, pending ones canceled, each as DELETE
 * /subscriptions ends it), noted in cmd for refresh_usage.
 */
static enum command_result end_customer_subscriptions(struct engine *e, struct command *cmd,
                                                      int64_t customer_id)
{
    unsigned live = 1u << SUBSCRIPTION_PENDING | 1u << SUBSCRIPTION_ACTIVE;
    struct store_subscription *rows;
    size_t count;
    int64_t total;
    if (store_subscription_list(store_conn(e->store), cmd->org_id, customer_id, live, cmd->now, 0,
                                1, &rows, &count, &total, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (total == 0)
        return COMMAND_OK;
    if (store_subscription_list(store_conn(e->store), cmd->org_id, customer_id, live, cmd->now, 0,
                                total, &rows, &count, &total, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    int64_t *ended = arena_alloc(cmd->arena, 2 * count * sizeof *ended);
    if (!ended)
        return COMMAND_STORE_FAILED;
    cmd->ended_subscription_ids = ended;
    cmd->ended_subscription_count = 0;
    for (size_t i = count; i-- > 0;) { /* oldest first: a downgrade goes with what it follows */
        struct store_subscription cur; /* as it is now: a successor was canceled just now */
        if (store_subscription_get(store_conn(e->store), cmd->org_id, rows[i].sub.id, &cur,
                                   cmd->arena) != STORE_OK)
            return COMMAND_STORE_FAILED;
        if (!subscription_is_live(&cur.sub, cmd->now))
            continue; /* canceled with the subscription it was to follow */
        enum command_result r = subscriptions_end(e, cmd, &cur.sub);
        if (r != COMMAND_OK)
            return r;
        ended[cmd->ended_subscription_count++] = cur.sub.id;
        if (cur.sub.next_id)
            ended[cmd->ended_subscription_count++] = cur.sub.next_id;
    }
    return COMMAND_OK;
}

/* Its active applied coupons are terminated, each as DELETE .../applied_coupons/{id} does. */
static enum command_result end_customer_coupons(struct engine *e, struct command *cmd,
                                                int64_t customer_id)
{
    struct store_applied_coupon *rows;
    size_t count;
    int64_t total;
    if (store_applied_coupon_list(store_conn(e->store), cmd->org_id, customer_id, 1, NULL, 0, 1,
                                  &rows, &count, &total, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (total == 0)
        return COMMAND_OK;
    if (store_applied_coupon_list(store_conn(e->store), cmd->org_id, customer_id, 1, NULL, 0, total,
                                  &rows, &count, &total, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        enum command_result r = applied_coupons_end(e, cmd, &rows[i].coupon);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/*
 * DELETE /customers/{external_id}, as Lago's Customers::TerminateRelationsService: in this one
 * command, its subscriptions end, its wallets are terminated as DELETE /wallets terminates them
 * (open holds released and voided, what is left voided with its postings), its applied coupons
 * are terminated, and then the customer is deleted. Nothing of it can be reached afterwards,
 * and a customer made again with the same external id starts with none of it.
 */
enum command_result customer_edit_apply_delete(struct engine *e, struct command *cmd)
{
    struct customer *c = &cmd->customer;
    cmd->ended_subscription_ids = NULL;
    cmd->ended_subscription_count = 0;
    enum store_status s = store_customer_get(store_conn(e->store), cmd->org_id,
                                             cmd->as.customer_delete.external_id, c, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    enum command_result r = end_customer_subscriptions(e, cmd, c->id);
    if (r == COMMAND_OK)
        r = wallets_terminate_customer(&e->wallets, e->store, cmd, c->id);
    if (r == COMMAND_OK)
        r = end_customer_coupons(e, cmd, c->id);
    if (r != COMMAND_OK)
        return r;
    return store_customer_delete(e->store, c->id, cmd->now) == STORE_OK ? COMMAND_OK
                                                                        : COMMAND_STORE_FAILED;
}
