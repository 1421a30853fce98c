/* engine/wallet_clock: see wallet_clock.h. */
#include "engine/wallet_clock.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "core/timestamp.h"
#include "sys/tzdb.h"

#define SWEEP_ROUND 256 /* items of one kind read at a time */

/*
 * Fires the wallets' threshold rules that came due: once per crossing (Lago's condition, then
 * disarmed until the ongoing balance rises above the threshold again, its own top-up
 * included, or until its own top-up has settled: granted at once, paid once paid), when the
 * wallet's own balance fell since the rules' last look (rule_seen_cents: the command's start, a
 * hold's release, the rules' own top-ups), in the same command as what made the balance fall, so
 * the top-up is there in the answer that follows. A usage of the customer (`usage`: an event or
 * capture that debits, a hold, or one refused for lack of credits) fires an armed rule that is due
 * whether or not the balance fell, as Lago's checks the rule at every usage: a wallet at 0 never
 * falls again (a hard one refuses every debit, a `none` one stays at 0), so a rule whose top-up
 * failed there, or a new rule made below its threshold, never bought again (an audit found it). For
 * an hour after a payment of its top-up was declined it does not fire
 * (WALLET_RULE_DECLINE_BACKOFF_USEC): the decline itself leaves the balance due again, and without
 * the pause each usage would buy again at once.
 */
static enum command_result fire_thresholds(struct store *st, struct command *cmd,
                                           struct customer_wallets *cw, bool usage)
{
    /* rule_seen_cents is this command's (wallet_book_touch looked first) */
    assert(cw->wallet_count == 0 || cw->touched_in == cw->wallets[0].book->command_number);
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &cw->wallets[i];
        if (!w->has_rule || w->rule_interval_trigger || w->row.has_terminated_at ||
            (w->rule_has_expiration && w->rule_expiration_at <= cmd->now))
            continue;
        int64_t ongoing = wallet_book_grants_total(w) - w->row.overdrawn_cents - w->row.held_cents;
        bool fell = ongoing < w->rule_seen_cents; /* since the last look */
        if (!wallet_rule_due(&w->rule, ongoing, w->pending_cents)) {
            w->rule_armed = true;
            continue;
        }
        if (!w->rule_armed)
            continue;
        /* Armed and due, it waits for a usage (or a fall), or for its back-off after a declined
         * payment to pass: the row says so (rule_unfired), as a restart takes a rule that is
         * due for fired. An audit found a restart disarming one a failed purchase had brought
         * due (pending credits had lifted it above), the wallet's next usage topped up by the
         * server that ran on and refused (402) by the one restarted. */
        /* A usage fires it once per command, as Lago checks a rule once per balance refresh:
         * a batch over a customer's subscriptions (an edit, a period's start) fired it at each
         * one's debit, its granted top-up re-arming it for the next (an audit: 30 granted
         * twice for one fall, net). It fires where the balance first crosses, so a hard
         * wallet's top-up pays the rest of the command; due still, it waits for the next
         * usage, as one backing off does. */
        bool again =
            usage && w->book->command_number != 0 && w->rule_fired_in == w->book->command_number;
        tally_time declined = 0;
        if ((fell || usage) && !again &&
            store_wallet_last_declined(store_conn(st), w->row.id, &declined) != STORE_OK)
            return COMMAND_STORE_FAILED;
        if (!(fell || usage) || again ||
            (declined != 0 && cmd->now - declined < WALLET_RULE_DECLINE_BACKOFF_USEC)) {
            if (!w->row.rule_unfired) {
                w->row.rule_unfired = true;
                if (store_wallet_save(st, &w->row) != STORE_OK)
                    return COMMAND_STORE_FAILED;
            }
            continue;
        }
        w->rule_armed = false;
        w->rule_fired_in = w->book->command_number;
        if (w->row.rule_unfired) { /* fired now: a restart takes it for fired too */
            w->row.rule_unfired = false;
            if (store_wallet_save(st, &w->row) != STORE_OK)
                return COMMAND_STORE_FAILED;
        }
        int64_t paid, granted;
        wallet_rule_top_up(&w->rule, ongoing, w->pending_cents, w->min_paid_cents,
                           w->max_paid_cents, &paid, &granted);
        struct wallet_credits cr = {.name = w->rule_name,
                                    .details_json = w->rule_details_json,
                                    .priority = WALLET_PRIORITY_MAX,
                                    .invoice_requires_successful_payment =
                                        w->rule_requires_payment};
        /* A rule's top-up that does not fit the wallet and the ledger is not made (silently:
         * no cmd), and the rule waits for its next crossing or anniversary. A rule's amounts
         * are each within WALLET_BALANCE_MAX_CENTS; what they add up to over time is not. */
        enum command_result r = wallet_book_check_top_up(st, NULL, w, paid, granted);
        if (r == COMMAND_INVALID)
            continue; /* not made: the wallet (or the ledger) would hold too much */
        if (r == COMMAND_OK && paid > 0)
            r = wallet_book_add_credits(st, cmd, cw, w, true, paid, &cr, w->rule_requires_payment,
                                        WALLET_SOURCE_THRESHOLD, NULL);
        if (r == COMMAND_OK && granted > 0)
            r = wallet_book_add_credits(st, cmd, cw, w, false, granted, &cr, false,
                                        WALLET_SOURCE_THRESHOLD, NULL);
        if (r != COMMAND_OK)
            return r;
        w->dirty = true; /* its balance changed: the row is written with the rest */
        /* Its own top-up may lift the balance above the threshold: the next fall below is
         * then a new crossing (as a restart, which arms every rule not due, also sees it).
         * Left at or below, the rule is armed again once its top-up has settled: at once when
         * it was all granted, once paid when it bought credits (apply_invoice_payment), so the
         * next fall fires again (an audit found a rule granting 5 at a threshold of 10 firing
         * once, then never). The row keeps it (rule_unfired), as a restart takes a rule that
         * is due for fired. */
        ongoing = wallet_book_grants_total(w) - w->row.overdrawn_cents - w->row.held_cents;
        bool still_due = wallet_rule_due(&w->rule, ongoing, w->pending_cents);
        w->rule_armed = !still_due || paid == 0;
        if (still_due && paid == 0) {
            w->row.rule_unfired = true;
            if (store_wallet_save(st, &w->row) != STORE_OK)
                return COMMAND_STORE_FAILED;
        }
    }
    wallet_book_observe_rules(cw); /* the next fall is from here, top-ups made included */
    return COMMAND_OK;
}

/*
 * The customer's zone, where its rule's anniversaries fall, into *zone (NULL without a tz
 * database: unit tests, where interval rules are not scheduled). False when its stored name no
 * longer loads (a host whose tz database dropped it, as newer Debian releases moved US/Eastern
 * and the like to tzdata-legacy): whatever needed the zone then fails, and changes nothing.
 * Invariant: a zone that cannot be read never changes stored state quietly (an audit found an
 * interval rule that fired once more, then had its next anniversary cleared for good, as a
 * success; a grant's end would have fallen at UTC's midnight instead of the customer's).
 */
static bool rule_zone(const struct live_wallet *w, const struct tz_zone **zone)
{
    const char *name = w->row.customer_timezone ? w->row.customer_timezone : "UTC";
    *zone = w->book->tzdb ? tzdb_get(w->book->tzdb, name, strlen(name)) : NULL;
    return *zone || !w->book->tzdb;
}

/* Whether the wallet's interval rule can read its calendar (rule_zone); true without a rule. */
static bool rule_zone_loads(const struct live_wallet *w)
{
    const struct tz_zone *zone;
    return !w->has_rule || !w->rule_interval_trigger || rule_zone(w, &zone);
}

static tally_time rule_anchor(const struct live_wallet *w)
{
    return w->rule_has_start ? w->rule_started_at : w->row.created_at;
}

/* Whether instants a and b fall on the same local date in `zone`. */
static bool same_local_date(const struct tz_zone *zone, tally_time a, tally_time b)
{
    struct tz_local la, lb;
    return tz_to_local(zone, a, &la) == TZ_OK && tz_to_local(zone, b, &lb) == TZ_OK &&
           la.civil.date.year == lb.civil.date.year && la.civil.date.month == lb.civil.date.month &&
           la.civil.date.day == lb.civil.date.day;
}

/*
 * When the wallet's interval rule fires next after `after`: the next anniversary, in the
 * customer's zone, of its started_at (or of the wallet's creation), or started_at itself while
 * it is still ahead; *has false if the rule ends first. Never on the local date the wallet was
 * made, as Lago's CreateIntervalWalletTransactionsService leaves out wallets created that day: a
 * started_at later that day fires first at its next anniversary (an audit found it fired at
 * started_at). False if the zone does not load (rule_zone).
 */
static bool next_interval(const struct live_wallet *w, tally_time after, bool *has,
                          tally_time *next)
{
    tally_time anchor = rule_anchor(w);
    *has = false;
    const struct tz_zone *zone;
    if (!rule_zone(w, &zone)) {
        return false;
    } else if (anchor > after && (!zone || !same_local_date(zone, anchor, w->row.created_at))) {
        *next = anchor;
    } else {
        struct period_spec spec = {w->rule_interval, PERIOD_ANNIVERSARY, anchor, zone};
        struct period p;
        if (!zone || period_containing(&spec, anchor > after ? anchor : after, &p) != PERIOD_OK)
            return true;
        *next = p.end;
    }
    *has = !(w->rule_has_expiration && *next >= w->rule_expiration_at);
    return true;
}

bool wallet_clock_next_after(const struct live_wallet *w, tally_time after, bool *has,
                             tally_time *next)
{
    *has = false;
    if (!w->has_rule || !w->rule_interval_trigger)
        return true;
    return next_interval(w, after, has, next);
}

bool wallet_clock_schedule(struct live_wallet *w, tally_time after)
{
    bool has = false;
    tally_time next = 0;
    if (w->has_rule && w->rule_interval_trigger && !w->row.has_terminated_at &&
        !next_interval(w, after, &has, &next))
        return false; /* left as it was */
    w->row.has_next_rule_at = has;
    if (has)
        w->row.next_rule_at = next;
    return true;
}

/* Grants that expired before `before`: what open holds reserve stays in them (until the holds
 * are captured, voided or expire), the rest expires. */
static enum command_result expire_grants_before(struct store *st, struct command *cmd,
                                                struct live_wallet *w, tally_time before)
{
    return wallet_book_expire_unheld(st, cmd, w, before);
}

static enum command_result expire_due_grants(struct store *st, struct command *cmd,
                                             struct live_wallet *w)
{
    return expire_grants_before(st, cmd, w, cmd->now + 1);
}

/* Expires `expire_cents` of a grant and gives what is left the new expiry: same credits,
 * later expiry, so the grant moves in the consumption order. */
static enum command_result carry_on(struct store *st, struct command *cmd, struct live_wallet *w,
                                    int64_t id, int64_t expire_cents, bool has_expiration,
                                    tally_time expiration_at)
{
    if (expire_cents > 0) {
        enum command_result r = wallet_book_expire(st, cmd, w, id, expire_cents);
        if (r != COMMAND_OK)
            return r;
    }
    struct wallet_grant *g = wallet_book_live_grant(w, id);
    if (!g)
        return COMMAND_OK; /* all of it expired */
    struct wallet_grant moved = *g;
    moved.has_expiration = has_expiration;
    moved.expiration_at = expiration_at;
    size_t pos = (size_t)(g - w->grants);
    memmove(&w->grants[pos], &w->grants[pos + 1], (w->grant_count - pos - 1) * sizeof *w->grants);
    w->grant_count--;
    if (!wallet_book_grant_insert(w, &moved) ||
        store_wallet_transaction_set_expiration(st, id, has_expiration, expiration_at) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

/*
 * The previous anniversary's grants (its paid and its free one) at a new one (at `at`): what
 * open holds reserve of them stays, and of the rest, what the rollover allows carries on with
 * the new grant's expiry, paid credits first (the customer's money); the rest expires now.
 * The holds reserve particular credits, as their captures would spend them: before (found by
 * a black-box audit), the anniversary expired them whenever the new grant could back the
 * holds, and the captures then spent the new grant. A grant nothing of
 * which carries on keeps its reserved part past its expiry, set to now, until the holds
 * settle (wallet_book_expire_unheld); one that carries some on carries its reserved part with
 * it. Credits carried on once are not the previous anniversary's at the next: they last one
 * more grant's life, and no longer.
 */
static enum command_result roll_over(struct store *st, struct command *cmd, struct live_wallet *w,
                                     tally_time at, bool has_expiration, tally_time expiration_at)
{
    int64_t ids[2] = {w->row.last_interval_paid_grant_id, w->row.last_interval_grant_id};
    int64_t remaining[2] = {0, 0}, held[2] = {0, 0}, amount = 0, unheld = 0;
    for (int i = 0; i < 2; i++) {
        if (!ids[i])
            continue;
        /* the cap is of both grants' amounts, one used up as much as the other */
        struct store_wallet_transaction t;
        if (store_wallet_transaction_by_id(store_conn(st), ids[i], &t, cmd->arena) != STORE_OK)
            return COMMAND_STORE_FAILED;
        if (t.has_settled_at)
            amount += t.amount_cents;
        const struct wallet_grant *g = wallet_book_live_grant(w, ids[i]);
        if (!g || (g->has_expiration && g->expiration_at < at)) {
            ids[i] = 0; /* used up, or expired already (what it keeps is for holds) */
            continue;
        }
        remaining[i] = g->remaining_cents;
        held[i] = g->held_cents;
        unheld += remaining[i] - held[i];
    }
    /* what the holds leave unspent may roll over later, within the room the cap leaves:
     * what it would have rolled over had those credits been unused now */
    int64_t held_total = held[0] + held[1];
    w->row.rollover_room_cents = 0;
    if (held_total > 0 && store_wallet_holds_at_rollover(st, w->row.id, ids[1], ids[0]) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (remaining[0] + remaining[1] == 0)
        return COMMAND_OK;
    int64_t rolled =
        wallet_rollover_cents(w->rule_rollover, w->rule_rollover_value, amount, unheld);
    if (held_total > 0) {
        w->row.rollover_room_cents = wallet_rollover_cents(w->rule_rollover, w->rule_rollover_value,
                                                           amount, unheld + held_total) -
                                     rolled;
        /* Given back now, held credits would repay the overdraft first, uncapped; the new
         * grant repays it instead, so as much of them carries on past the cap. (An overdraft
         * leaves no unheld credits: the cap above is of the held ones alone.) */
        int64_t owed = w->row.overdrawn_cents;
        w->row.rollover_room_cents += owed < held_total ? owed : held_total;
    }
    bool carries = rolled > 0 || w->row.rollover_room_cents > 0;
    for (int i = 0; i < 2; i++) {
        if (!ids[i])
            continue;
        int64_t free_part = remaining[i] - held[i];
        int64_t carried = free_part < rolled ? free_part : rolled;
        rolled -= carried;
        enum command_result r =
            carry_on(st, cmd, w, ids[i], free_part - carried, carries ? has_expiration : true,
                     carries ? expiration_at : at);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/*
 * When a rule's grant made at `at` ends: grant_expires_after later on the customer's local
 * calendar, at the start of that local day (wallet_duration_end), so that it ends with an
 * anniversary, across DST and month ends, whatever the zone's offset. A weekly rule has no day
 * of the month: its grant's months count from the grant's own day (an audit found grants made
 * on Feb 7, 14, 21 and 28 by a weekly rule of the 31st all ending on Mar 31). False if that
 * day cannot be read or is past TIMESTAMP_MAX. *zone_loads false if the zone does not load: no
 * end in UTC instead.
 */
static bool grant_end(const struct live_wallet *w, tally_time at, tally_time *out, bool *zone_loads)
{
    const struct tz_zone *zone;
    if (!(*zone_loads = rule_zone(w, &zone)))
        return false;
    struct civil_date from, anchor;
    if (!tz_local_date(zone, at, &from) || !tz_local_date(zone, rule_anchor(w), &anchor))
        return false;
    int32_t day = w->rule_interval == PERIOD_WEEKLY ? from.day : anchor.day;
    struct civil_date end = wallet_duration_end(from, &w->rule_grant_duration, day);
    if (zone) {
        if (tz_start_of_day(zone, end, out) != TZ_OK)
            return false;
    } else {
        *out = timestamp_days_from_civil(end) * TIMESTAMP_USEC_PER_DAY;
    }
    return *out <= TIMESTAMP_MAX; /* past it: an end no answer could write */
}

/* One anniversary of an interval rule, at `at`: its credits, after the previous grants'
 * rollover; each grant lasts grant_expires_after when the rule says so. A target is reached
 * from the balance the anniversary leaves: after the rollover, and after the expiry of what
 * ends at this very instant. */
static enum command_result fire_interval(struct store *st, struct command *cmd,
                                         struct customer_wallets *cw, struct live_wallet *w,
                                         tally_time at)
{
    struct wallet_credits cr = {.name = w->rule_name,
                                .details_json = w->rule_details_json,
                                .priority = WALLET_PRIORITY_MAX,
                                .invoice_requires_successful_payment = w->rule_requires_payment};
    /* An end past the last instant Tally keeps (a rule stored before WALLET_DURATION_DAYS_MAX,
     * or a test clock near the year 9999) is no end: the grant is made without one, rather
     * than the anniversary failing, and with it every sweep of the organization. */
    bool zone_loads = true;
    if (w->rule_has_grant_duration)
        cr.has_expiration_at = grant_end(w, at, &cr.expiration_at, &zone_loads);
    if (!zone_loads)
        return COMMAND_STORE_FAILED;
    bool rolls_over = w->rule_has_rollover &&
                      (w->row.last_interval_grant_id || w->row.last_interval_paid_grant_id);
    int64_t paid = w->rule.paid_cents, granted = w->rule.granted_cents;
    enum command_result r = COMMAND_OK;
    if (w->rule.method == WALLET_RULE_TARGET) {
        /* the new credits are not known yet: none of them backs a hold in the rollover */
        if (rolls_over)
            r = roll_over(st, cmd, w, at, cr.has_expiration_at, cr.expiration_at);
        if (r == COMMAND_OK)
            r = expire_grants_before(st, cmd, w, at + 1);
        if (r != COMMAND_OK)
            return r;
        int64_t ongoing = wallet_book_grants_total(w) - w->row.overdrawn_cents - w->row.held_cents;
        wallet_rule_top_up(&w->rule, ongoing, w->pending_cents, w->min_paid_cents, 0, &paid,
                           &granted);
    } else if (rolls_over) {
        r = roll_over(st, cmd, w, at, cr.has_expiration_at, cr.expiration_at);
    }
    if (r == COMMAND_OK &&
        (r = wallet_book_check_top_up(st, NULL, w, paid, granted)) == COMMAND_INVALID)
        return COMMAND_OK; /* this anniversary's credits are not made */
    int64_t made_paid = 0, made_free = 0;
    if (r == COMMAND_OK && paid > 0)
        r = wallet_book_add_credits(st, cmd, cw, w, true, paid, &cr, w->rule_requires_payment,
                                    WALLET_SOURCE_INTERVAL, &made_paid);
    if (r == COMMAND_OK && granted > 0)
        r = wallet_book_add_credits(st, cmd, cw, w, false, granted, &cr, false,
                                    WALLET_SOURCE_INTERVAL, &made_free);
    if (made_paid || made_free) {
        w->row.last_interval_grant_id = made_free ? made_free : made_paid;
        w->row.last_interval_paid_grant_id = made_free ? made_paid : 0;
    }
    return r;
}

/*
 * Brings a customer's wallets to cmd->now: due grants expire, due wallets terminate. A wallet
 * whose rule has more anniversaries due than one pass makes (WALLET_RULE_CATCH_UP_MAX) stays
 * where its last one left it: what expires or ends after it waits for the next pass, which
 * makes the rest first (*behind: some wallet is so). Expired and ended as of `now` at once,
 * the grant the next anniversary would roll over expired before it, and a wallet expiring
 * within the jump skipped the anniversaries before its expiry (an audit found both).
 */
static enum command_result bring_up_to_date(struct store *st, struct command *cmd,
                                            struct customer_wallets *cw, bool *behind)
{
    *behind = false;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &cw->wallets[i];
        if (w->row.has_terminated_at)
            continue;
        enum command_result r = COMMAND_OK;
        /* each anniversary of an interval rule in order, grants that expired before it first
         * (one that expires at the very instant may roll over) */
        for (int n = 0; r == COMMAND_OK && w->row.has_next_rule_at &&
                        w->row.next_rule_at <= cmd->now && n < WALLET_RULE_CATCH_UP_MAX;
             n++) {
            tally_time at = w->row.next_rule_at;
            /* an anniversary in a zone that no longer loads is a failure (the sweep's
             * quarantine names the customer), never fired and then unscheduled */
            if (!rule_zone_loads(w)) {
                r = COMMAND_STORE_FAILED;
                break;
            }
            r = expire_grants_before(st, cmd, w, at);
            if (r == COMMAND_OK && !(w->row.has_expiration_at && w->row.expiration_at <= at))
                r = fire_interval(st, cmd, cw, w, at);
            if (!wallet_clock_schedule(w, at) && r == COMMAND_OK)
                r = COMMAND_STORE_FAILED;
            w->dirty = true;
            /* the next anniversary and the last grant are not balances: the row, whole */
            if (r == COMMAND_OK && store_wallet_save(st, &w->row) != STORE_OK)
                r = COMMAND_STORE_FAILED;
        }
        if (w->row.has_next_rule_at && w->row.next_rule_at <= cmd->now) {
            *behind = true;
            if (r != COMMAND_OK)
                return r;
            continue;
        }
        if (r == COMMAND_OK)
            r = expire_due_grants(st, cmd, w);
        if (r == COMMAND_OK && w->row.has_expiration_at && w->row.expiration_at <= cmd->now)
            r = wallet_book_terminate(st, cmd, w, true);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/*
 * What the clock and the rules move is written at once, from memory that may be ahead of the
 * wallet tables (debits waiting in the journal): the journal's stretch then ends with this
 * commit (wallet_book.h, must_flush).
 */
static void note_direct_writes(struct store *st, struct customer_wallets *cw, int64_t before)
{
    if (cw->wallet_count > 0 && store_changes(st) != before && cw->wallets[0].book->deferring)
        cw->wallets[0].book->must_flush = true;
}

enum command_result wallet_clock_fire_thresholds(struct store *st, struct command *cmd,
                                                 struct customer_wallets *cw, bool usage)
{
    int64_t before = store_changes(st);
    enum command_result r = fire_thresholds(st, cmd, cw, usage);
    note_direct_writes(st, cw, before);
    return r;
}

/* bring_up_to_date, then the threshold rules its expiries brought due. */
static enum command_result catch_up(struct store *st, struct command *cmd,
                                    struct customer_wallets *cw, bool *behind)
{
    int64_t before = store_changes(st);
    enum command_result r = bring_up_to_date(st, cmd, cw, behind);
    /* a grant that expired took the balance down as a debit does: a threshold rule fires
     * now, or a hard-limited wallet refuses the debit that would have fired it, forever
     * (only when something came due: nothing else moved a balance since the last look) */
    if (r == COMMAND_OK && store_changes(st) != before)
        r = fire_thresholds(st, cmd, cw, false);
    note_direct_writes(st, cw, before);
    return r;
}

enum command_result wallet_clock_bring_up_to_date(struct store *st, struct command *cmd,
                                                  struct customer_wallets *cw)
{
    bool behind;
    return catch_up(st, cmd, cw, &behind);
}

/*
 * How far before an anniversary an instant is surely in the period that ends with it, in any
 * zone: a new zone moves an anniversary by at most about two days (a day of offset, and a day
 * of the anchor's local date), and the shortest interval is a week.
 */
#define ZONE_MOVE_PROBE_USEC ((tally_time)3 * TIMESTAMP_USEC_PER_DAY)

/*
 * Whether `at` is an anniversary of the wallet's rule in the zone `was`, and if so the same
 * anniversary (the same count of intervals from the anchor) in the wallet's zone now, in
 * *out. In the new zone the anchor's local date may be another day: the 15th at 23:00 in UTC
 * is the 16th in Tokyo, so the same anniversary there is on the 16th (found by an audit: one
 * moved to the 15th fired, and the 16th fired again the next day).
 */
static bool same_anniversary(const struct live_wallet *w, const struct tz_zone *was, tally_time at,
                             tally_time *out)
{
    const struct tz_zone *will;
    if (!rule_zone(w, &will))
        will = NULL;
    tally_time probe = at - ZONE_MOVE_PROBE_USEC;
    if (!was || !will || probe < rule_anchor(w))
        return false;
    struct period_spec old_spec = {w->rule_interval, PERIOD_ANNIVERSARY, rule_anchor(w), was};
    struct period_spec new_spec = {w->rule_interval, PERIOD_ANNIVERSARY, rule_anchor(w), will};
    struct period p, q;
    if (period_containing(&old_spec, probe, &p) != PERIOD_OK || p.end != at ||
        period_containing(&new_spec, probe, &q) != PERIOD_OK)
        return false;
    *out = q.end;
    return true;
}

/*
 * The wallet's rule grants end at its anniversaries (grant_expires_after lands on them, and
 * rolled-over credits take the next grant's end): each such end moves with the zone to the
 * same anniversary there, or the previous grant would expire hours before the anniversary that
 * rolls it over (an audit's: a move west lost `rollover: all`'s credits). Other ends stay.
 */
static enum command_result move_grant_ends(struct store *st, struct command *cmd,
                                           struct live_wallet *w, const struct tz_zone *was)
{
    int64_t *ids = arena_alloc(cmd->arena, (w->grant_count + 1) * sizeof *ids);
    tally_time *ends = arena_alloc(cmd->arena, (w->grant_count + 1) * sizeof *ends);
    if (!ids || !ends)
        return COMMAND_STORE_FAILED;
    size_t n = 0;
    for (size_t i = 0; i < w->grant_count; i++) {
        const struct wallet_grant *g = &w->grants[i];
        tally_time end;
        if (!g->has_expiration || !same_anniversary(w, was, g->expiration_at, &end) ||
            end == g->expiration_at)
            continue;
        struct store_wallet_transaction t;
        if (store_wallet_transaction_by_id(store_conn(st), g->id, &t, cmd->arena) != STORE_OK)
            return COMMAND_STORE_FAILED;
        if (t.source != WALLET_SOURCE_INTERVAL)
            continue; /* a top-up's own expiration_at is an instant the client chose */
        ids[n] = g->id;
        ends[n++] = end;
    }
    /* moved after the walk: a grant that moves changes its place in the consumption order */
    for (size_t i = 0; i < n; i++) {
        enum command_result r = carry_on(st, cmd, w, ids[i], 0, true, ends[i]);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

enum command_result wallet_clock_move_zone(struct store *st, struct command *cmd,
                                           struct customer_wallets *cw, const char *timezone)
{
    int64_t before = store_changes(st);
    /* what came due in the old zone happens in it first; but if the old zone no longer loads
     * (the very thing a new zone mends), in the new one, after the move: else the customer
     * could never leave a zone its host lost */
    bool old_zone_loads = true, behind;
    for (size_t i = 0; i < cw->wallet_count; i++)
        old_zone_loads &= rule_zone_loads(&cw->wallets[i]);
    enum command_result r = old_zone_loads ? bring_up_to_date(st, cmd, cw, &behind) : COMMAND_OK;
    if (r == COMMAND_OK && store_changes(st) != before)
        r = fire_thresholds(st, cmd, cw, false);
    for (size_t i = 0; r == COMMAND_OK && i < cw->wallet_count; i++) {
        struct live_wallet *w = &cw->wallets[i];
        const struct tz_zone *was;
        if (!rule_zone(w, &was))
            was = NULL; /* its anniversaries and grant ends stay the instants they are */
        w->row.customer_timezone =
            timezone ? arena_strndup(&cw->arena, timezone, strlen(timezone)) : NULL;
        if (timezone && !w->row.customer_timezone) {
            r = COMMAND_STORE_FAILED;
            break;
        }
        if (!w->has_rule || !w->rule_interval_trigger)
            continue; /* its calendar is its rule's */
        tally_time next;
        if (w->row.has_next_rule_at && same_anniversary(w, was, w->row.next_rule_at, &next)) {
            w->row.next_rule_at = next;
            w->row.has_next_rule_at = !(w->rule_has_expiration && next >= w->rule_expiration_at);
        }
        r = move_grant_ends(st, cmd, w, was);
        if (r == COMMAND_OK && store_wallet_save(st, &w->row) != STORE_OK)
            r = COMMAND_STORE_FAILED;
    }
    if (r == COMMAND_OK && !old_zone_loads) {
        int64_t moved = store_changes(st);
        r = bring_up_to_date(st, cmd, cw, &behind);
        if (r == COMMAND_OK && store_changes(st) != moved)
            r = fire_thresholds(st, cmd, cw, false);
    }
    note_direct_writes(st, cw, before);
    return r;
}

/* Where the sweep is now: on an item of a customer, or between items (customer 0). */
static void sweeping(struct sweep_failure *at, int64_t customer_id, const char *doing,
                     const char *item)
{
    at->customer_id = customer_id;
    at->doing = doing ? doing : "reading what came due";
    snprintf(at->item, sizeof at->item, "%s", item ? item : "");
}

/*
 * Records the due expiry reminders as webhook events (credits.expiring_soon) in the outbox,
 * delivered by the webhook sender; each grant is reminded once per threshold, the nearest
 * first (a grant already that close gets only that one). Its data says the threshold crossed
 * (days_before_expiry: the credits expire within that many days of the event) and the instant
 * they expire, which the transaction alone does not say when its wallet's expiry is the one.
 */
static enum command_result record_reminders(struct store *st, struct command *cmd,
                                            const struct wallet_reminders *reminders,
                                            const char *skip_customers, size_t *done,
                                            struct sweep_failure *at)
{
    struct store_due_item due[SWEEP_ROUND];
    size_t count;
    const int32_t *reminder_days = reminders->days;
    for (size_t k = 0; k < reminders->count; k++) {
        do {
            if (store_reminders_due(store_conn(st), cmd->org_id, reminder_days[k], cmd->now,
                                    skip_customers, due, SWEEP_ROUND, &count) != STORE_OK)
                return COMMAND_STORE_FAILED;
            for (size_t i = 0; i < count; i++) {
                sweeping(at, due[i].customer_id, "recording an expiry reminder of wallet",
                         due[i].lago_id);
                char data[192], expires[TIMESTAMP_TEXT_MAX];
                timestamp_format(due[i].due_at, false, expires);
                snprintf(data, sizeof data,
                         "{\"days_before_expiry\":%d,\"expiration_at\":\"%s\","
                         "\"lago_wallet_id\":\"%s\"}",
                         (int)reminder_days[k], expires, due[i].lago_id);
                struct store_webhook w = {.org_id = cmd->org_id,
                                          .webhook_type = "credits.expiring_soon",
                                          .object_type = "wallet_transaction",
                                          .object_id = due[i].grant_id,
                                          .data_json = data,
                                          .created_at = cmd->now};
                command_new_id(cmd, w.lago_id);
                if (store_outbox_insert(st, &w) != STORE_OK ||
                    store_wallet_transaction_set_reminded(st, due[i].grant_id, reminder_days[k]) !=
                        STORE_OK)
                    return COMMAND_STORE_FAILED;
                sweeping(at, 0, NULL, NULL);
            }
            *done += count;
        } while (count == SWEEP_ROUND);
    }
    return COMMAND_OK;
}

enum command_result wallet_clock_sweep(struct wallet_book *b, struct store *st, struct command *cmd,
                                       const struct wallet_reminders *reminders,
                                       const char *skip_customers, size_t *done,
                                       struct sweep_failure *at)
{
    struct store_due_item due[SWEEP_ROUND];
    size_t count;
    *done = 0;
    sweeping(at, 0, NULL, NULL);
    /* Holds first (releasing them frees credits before anything else happens at `now`). */
    do {
        if (store_due(store_conn(st), cmd->org_id, STORE_DUE_HOLDS, cmd->now, skip_customers, due,
                      SWEEP_ROUND, &count) != STORE_OK)
            return COMMAND_STORE_FAILED;
        for (size_t i = 0; i < count; i++) {
            /* the customer's wallets loaded apart, so that a failure says which it was */
            sweeping(at, due[i].customer_id, "loading the wallets, for expired hold",
                     due[i].lago_id);
            if (!wallet_book_customer(b, st, cmd->org_id, due[i].customer_id))
                return COMMAND_STORE_FAILED;
            sweeping(at, due[i].customer_id, "releasing expired hold", due[i].lago_id);
            struct store_authorization a;
            if (store_authorization_get(store_conn(st), cmd->org_id, due[i].lago_id, &a,
                                        cmd->arena) != STORE_OK ||
                wallet_book_release(b, st, cmd, &a, LEDGER_CAUSE_RELEASE) != COMMAND_OK)
                return COMMAND_STORE_FAILED;
            a.status = AUTHORIZATION_EXPIRED;
            a.updated_at = cmd->now;
            if (store_authorization_save(st, &a) != STORE_OK)
                return COMMAND_STORE_FAILED;
            (*done)++;
            sweeping(at, 0, NULL, NULL);
        }
    } while (count == SWEEP_ROUND);
    /* Then every wallet with a grant or itself due: bringing it up to date does both. */
    bool behind = false; /* a wallet with anniversaries left for the next sweep */
    enum store_due_kind kinds[] = {STORE_DUE_RULES, STORE_DUE_GRANTS, STORE_DUE_WALLETS};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        do {
            if (store_due(store_conn(st), cmd->org_id, kinds[k], cmd->now, skip_customers, due,
                          SWEEP_ROUND, &count) != STORE_OK)
                return COMMAND_STORE_FAILED;
            for (size_t i = 0; i < count; i++) {
                sweeping(at, due[i].customer_id, "reading wallet", due[i].lago_id);
                struct store_wallet row;
                if (store_wallet_get(store_conn(st), cmd->org_id, due[i].lago_id, &row,
                                     cmd->arena) != STORE_OK)
                    return COMMAND_STORE_FAILED;
                sweeping(at, due[i].customer_id, "loading the wallets, for wallet", due[i].lago_id);
                struct customer_wallets *cw =
                    wallet_book_customer(b, st, cmd->org_id, row.customer_id);
                if (!cw || !wallet_book_touch(b, cw))
                    return COMMAND_STORE_FAILED;
                sweeping(at, due[i].customer_id, "bringing up to date wallet", due[i].lago_id);
                bool left;
                enum command_result r = catch_up(st, cmd, cw, &left);
                behind |= left;
                if (r == COMMAND_OK)
                    r = wallet_book_flush_customer(st, cmd,
                                                   cw); /* rules' credits, next anniversaries */
                if (r != COMMAND_OK)
                    return r;
                if (kinds[k] == STORE_DUE_WALLETS && !row.has_terminated_at &&
                    !wallet_book_wallet(cw, row.id))
                    return COMMAND_STORE_FAILED; /* due but not loaded: cannot be */
                sweeping(at, 0, NULL, NULL);
            }
            (*done) += count;
        } while (count == SWEEP_ROUND);
    }
    /* Reminders last, of the grants as the sweep left them: one an anniversary just made may
     * be within a reminder already (the real clock's next sweep, a second later, would find it;
     * a test clock stepped one interval at a time would find it at its next threshold or
     * never), and one whose credits a rollover carried on no longer expires on the date it had
     * (reminded before the anniversary, it was told of a date nothing expired on: audits found
     * both). A grant whose expiry the clock passed is not reminded (STMT_REMINDERS_DUE). While
     * a wallet is behind, none: the next sweep's anniversaries may roll them over (an audit
     * saw a grant reminded of a date, then rolled over and reminded again). */
    return behind ? COMMAND_OK : record_reminders(st, cmd, reminders, skip_customers, done, at);
}

bool wallet_clock_due(struct store *st, int64_t org_id, const struct wallet_reminders *reminders,
                      const char *skip_customers, tally_time now)
{
    struct store_due_item item;
    size_t count = 0;
    enum store_due_kind kinds[] = {STORE_DUE_HOLDS, STORE_DUE_RULES, STORE_DUE_GRANTS,
                                   STORE_DUE_WALLETS};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (store_due(store_conn(st), org_id, kinds[k], now, skip_customers, &item, 1, &count) !=
                STORE_OK ||
            count > 0)
            return true; /* a failing store: let the sweep's command report it */
    for (size_t k = 0; k < reminders->count; k++)
        if (store_reminders_due(store_conn(st), org_id, reminders->days[k], now, skip_customers,
                                &item, 1, &count) != STORE_OK ||
            count > 0)
            return true;
    return false;
}
