/*
 * engine/settle.c: what customers' wallets pay per period: the usage an events command
 * brought (settle_debit_wallets, once per subscription the command touched, after its last
 * event), and the carried units of a recurring metric, which a period brings at its start
 * whether or not an event comes (settle_period: debited when the period begins, by the
 * sweep, a test clock's advance, or the next command on the subscription); and the periods a
 * customer's first wallet opens (settle_apply_wallet_create).
 *
 * One file because these decide together when a period's usage is the wallet's to pay and
 * when it is already the invoice's. Threads: the writer's only.
 */
#include "engine/settle.h"

#include <inttypes.h>
#include <stdio.h>

#include "engine/customer_edit.h"
#include "engine/ingest.h"
#include "engine/wallets.h"

/* ---- periods of carried units ------------------------------------------------------------ */

static bool has_recurring_charge(const struct usage *u)
{
    for (size_t i = 0; i < u->charge_count; i++)
        if (u->charges[i].metric.recurring)
            return true;
    return false;
}

/*
 * Whether debiting u now opens a period its customer's wallets pay carried units in: a
 * recurring charge not debited yet in u's period. Such a period is followed by the next,
 * which brings the carried units again whether or not an event comes: settle_periods debits
 * it at its start (found by an audit: seats that did not change were never paid by credits
 * after their first month). The wallets' debits are what is read, so a failed group, which
 * reloads them, also forgets the note it took back.
 */
static bool opens_carrying_period(struct engine *e, const struct usage *u)
{
    if (!has_recurring_charge(u))
        return false;
    struct customer_wallets *cw =
        wallet_book_customer(&e->wallets, e->store, u->org_id, u->customer_id);
    if (!cw || cw->wallet_count == 0)
        return false; /* (a store failure: the debit meets it too) */
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        if (!c->metric.recurring)
            continue;
        const struct charge_debit *d = wallet_book_find_debit(cw, u->subscription_id, c->lago_id);
        if (!d || !wallet_book_debit_same_period(d, u->from))
            return true;
    }
    return false;
}

static enum command_result debit_usage(struct engine *e, struct command *cmd, const struct usage *u,
                                       const struct usage_brought *brought)
{
    bool opens = opens_carrying_period(e, u);
    enum command_result r =
        wallets_debit_usage(&e->wallets, e->store, cmd, u, u->customer_id, brought);
    if (r == COMMAND_OK && opens &&
        store_period_settlement_set(e->store, u->org_id, u->subscription_id, u->to) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return r;
}

static enum command_result settled(enum store_status s)
{
    return s == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* Whether u holds events sent ahead to `t` or later (periods after its own): a settlement
 * pays them when their period begins, however far ahead (an audit found those of the period
 * after next never paid). */
static bool has_events_from(const struct usage *u, tally_time t)
{
    for (size_t k = 0; k < u->event_count; k++)
        if (u->events[k].timestamp >= t)
            return true;
    return false;
}

/*
 * One subscription due for its period's carried units, or for events sent ahead into the
 * period that just began (`came_due`: from the due list): its live usage is debited at cmd->now
 * as an event's debit would bring it (each charge to what it brings without an event of the
 * period: the carried units' fee, the events sent ahead), and with carried units it is due
 * again at the next period's start. A
 * subscription replaced since (a plan change) hands the duty to the live one of its external
 * id if it is the same customer's; one not begun is due at its start; one with no life or no wallet
 * left drops it. Periods a test clock jumps over whole are not debited one by one: the current one
 * is (docs/API.md).
 */
static enum command_result settle_period(struct engine *e, struct command *cmd,
                                         int64_t subscription_id, bool came_due)
{
    struct store_subscription due;
    enum store_status s = store_subscription_get(store_conn(e->store), cmd->org_id, subscription_id,
                                                 &due, cmd->arena);
    const struct store_subscription *row = NULL;
    bool exists = s == STORE_OK;
    if (exists)
        s = sub_cache_at(&e->subscriptions, store_conn(e->store), cmd->org_id, due.sub.external_id,
                         sub_cache_hash(e->fingerprint_key, due.sub.external_id), cmd->now, &row);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    if (exists && s == STORE_NOT_FOUND &&
        subscription_status_at(&due.sub, cmd->now) == SUBSCRIPTION_PENDING)
        return settled(/* not begun: its first period starts with it */
                       store_period_settlement_set(e->store, cmd->org_id, subscription_id,
                                                   due.sub.started_at));
    if (s == STORE_NOT_FOUND || row->sub.id != subscription_id) {
        if (store_period_settlement_drop(e->store, subscription_id) != STORE_OK)
            return COMMAND_STORE_FAILED;
        /* no live one, or another customer's who took the external id over: none of the duty
         * passes to it (its own periods are its own settlements' to debit) */
        if (s == STORE_NOT_FOUND || row->sub.customer_id != due.sub.customer_id)
            return COMMAND_OK;
    }
    bool failed = false;
    bool pays =
        wallets_customer_pays(&e->wallets, e->store, cmd->org_id, row->sub.customer_id, &failed);
    const char *why;
    struct usage *u = pays && !failed ? usage_book_get(&e->usage, e->store, e->tzdb, row, cmd->now,
                                                       e->fingerprint_key, &why)
                                      : NULL;
    if (failed || (pays && !u))
        return COMMAND_STORE_FAILED;
    bool carries = u && has_recurring_charge(u);
    if (!u) /* nothing to settle, now or later */
        return settled(store_period_settlement_drop(e->store, row->sub.id));
    /* without carried units, only events sent ahead are settled, when their period's start
     * comes due; a settlement set for a later start stays (settle_now, for a subscription a
     * command made or changed, leaves such a usage to its next event's debit) */
    if (!carries && !came_due)
        return COMMAND_OK;
    if (cmd->now >= u->from) {
        struct usage_brought *brought =
            arena_alloc(cmd->arena, (u->charge_count + 1) * sizeof *brought);
        if (!brought)
            return COMMAND_STORE_FAILED;
        /* a usage that no longer prices (a plan edit made it so) refuses its next event; its
         * period waits for the invoice */
        enum command_result r =
            usage_priced(u, brought)
                ? wallets_debit_usage(&e->wallets, e->store, cmd, u, u->customer_id, brought)
                : COMMAND_OK;
        if (r != COMMAND_OK)
            return r;
    }
    /* Due again at the next period's start while units carry or events wait there; at the
     * period's own start if it has not begun (a time zone moved it later since: an audit found
     * the settlement dropped then, and the period never paid). */
    tally_time next = cmd->now >= u->from ? u->to : u->from;
    if (!carries && cmd->now >= u->from && !has_events_from(u, u->to))
        return settled(store_period_settlement_drop_due(e->store, row->sub.id, cmd->now));
    return settled(store_period_settlement_set(e->store, cmd->org_id, row->sub.id, next));
}

/* settle_period at once, for a subscription a command made or changed. */
enum command_result settle_now(struct engine *e, struct command *cmd, int64_t subscription_id)
{
    bool was = cmd->settling_periods;
    cmd->settling_periods = true;
    enum command_result r = settle_period(e, cmd, subscription_id, false);
    cmd->settling_periods = was;
    return r;
}

/* Subscriptions read a round from the store's due list (each round reads the next ones). */
#define SETTLE_ROUND 32

/* The organization's subscriptions due for their periods' carried units (settle_period),
 * earliest first, `max` of them at most (each leaves the due ones when settled), but those of
 * the customers in skip_customers; *at says where it is, as wallet_clock_sweep's. */
enum command_result settle_periods(struct engine *e, struct command *cmd, size_t max,
                                   const char *skip_customers, struct sweep_failure *at)
{
    struct store_due_item due[SETTLE_ROUND];
    size_t count, settled_count = 0;
    bool was = cmd->settling_periods;
    cmd->settling_periods = true;
    enum command_result r = COMMAND_OK;
    do {
        *at = (struct sweep_failure){.doing = "reading the periods due"};
        if (store_due(store_conn(e->store), cmd->org_id, STORE_DUE_PERIODS, cmd->now,
                      skip_customers, due, sizeof due / sizeof due[0], &count) != STORE_OK) {
            r = COMMAND_STORE_FAILED;
            break;
        }
        for (size_t i = 0; i < count && r == COMMAND_OK; i++, settled_count++) {
            *at = (struct sweep_failure){.customer_id = due[i].customer_id,
                                         .doing = "settling the period of subscription"};
            snprintf(at->item, sizeof at->item, "%" PRId64, due[i].subscription_id);
            r = settle_period(e, cmd, due[i].subscription_id, true);
        }
    } while (r == COMMAND_OK && count == sizeof due / sizeof due[0] && settled_count < max);
    cmd->settling_periods = was;
    return r;
}

/* Whether the organization has a subscription due for its period's carried units (but those
 * of the customers in skip_customers). */
bool settle_periods_due(struct engine *e, int64_t org_id, const char *skip_customers,
                        tally_time now)
{
    struct store_due_item item;
    size_t count = 0;
    return store_due(store_conn(e->store), org_id, STORE_DUE_PERIODS, now, skip_customers, &item, 1,
                     &count) != STORE_OK ||
           count > 0; /* a failing store: let the sweep's command report it */
}

enum command_result settle_debit_wallets(struct engine *e, struct command *cmd)
{
    e->wallets.unrefusable = ingest_debits_unrefusable(e, cmd);
    /* what falls is given back first, for every usage: it pays what the others take */
    for (size_t i = e->touch_mark; i < e->touch_count; i++) {
        const struct usage *u = ingest_touch_usage(e, i);
        if (!u || cmd->now < u->from)
            continue;
        enum command_result r = wallets_give_back_first(&e->wallets, e->store, cmd, u,
                                                        u->customer_id, e->touches[i].brought);
        if (r != COMMAND_OK)
            return r;
    }
    for (size_t i = e->touch_mark; i < e->touch_count; i++) {
        const struct usage *u = ingest_touch_usage(e, i);
        if (!u)
            continue;
        /* A period not begun (events sent ahead, a scheduled downgrade's) is debited when it
         * does, by settle_period: found by an audit, it was debited only if another event of
         * that period came, and the period's usage was otherwise never paid by credits. */
        if (cmd->now < u->from) {
            if (store_period_settlement_set(e->store, u->org_id, u->subscription_id, u->from) !=
                STORE_OK)
                return COMMAND_STORE_FAILED;
            continue;
        }
        /* and so is the next period of the book's usage that events were sent ahead to */
        if (e->touches[i].sent_ahead &&
            store_period_settlement_set(e->store, u->org_id, u->subscription_id, u->to) != STORE_OK)
            return COMMAND_STORE_FAILED;
        enum command_result r = debit_usage(e, cmd, u, e->touches[i].brought);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/*
 * A customer's first wallet: what its live subscriptions' charges have brought in their current
 * periods so far is the invoice's (wallets_open_period), so the next event pays its own step,
 * as estimate_fees and holds quote it.
 */
static enum command_result open_wallet_periods(struct engine *e, struct command *cmd,
                                               int64_t customer_id)
{
    struct store_subscription *rows;
    size_t count;
    if (!customer_edit_active_subscriptions(e, cmd, customer_id, &rows, &count))
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        const char *external_id = rows[i].sub.external_id;
        const struct store_subscription *row;
        enum store_status s =
            sub_cache_at(&e->subscriptions, store_conn(e->store), cmd->org_id, external_id,
                         sub_cache_hash(e->fingerprint_key, external_id), cmd->now, &row);
        if (s == STORE_NOT_FOUND)
            continue;
        const char *failed;
        struct usage *u = s == STORE_OK ? usage_book_get(&e->usage, e->store, e->tzdb, row,
                                                         cmd->now, e->fingerprint_key, &failed)
                                        : NULL;
        if (!u)
            return COMMAND_STORE_FAILED;
        enum command_result r = cmd->now < u->from ? COMMAND_OK
                                                   : wallets_open_period(&e->wallets, e->store, cmd,
                                                                         u, e->last_event_id);
        if (r != COMMAND_OK)
            return r;
        /* its carried units are the wallets' from the next period on (settle_periods) */
        if (has_recurring_charge(u) &&
            store_period_settlement_set(e->store, cmd->org_id, u->subscription_id,
                                        cmd->now < u->from ? u->from : u->to) != STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    return COMMAND_OK;
}

enum command_result settle_apply_wallet_create(struct engine *e, struct command *cmd)
{
    struct customer customer;
    enum store_status s =
        store_customer_get(store_conn(e->store), cmd->org_id,
                           cmd->as.wallet_create.external_customer_id, &customer, cmd->arena);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    const struct customer_wallets *cw =
        s == STORE_OK ? wallet_book_customer(&e->wallets, e->store, cmd->org_id, customer.id)
                      : NULL;
    if (s == STORE_OK && !cw)
        return COMMAND_STORE_FAILED;
    bool first = cw && wallets_none_active(cw, cmd->now);
    enum command_result r = wallets_apply(&e->wallets, e->store, cmd);
    return r == COMMAND_OK && first ? open_wallet_periods(e, cmd, customer.id) : r;
}
