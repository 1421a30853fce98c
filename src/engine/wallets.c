/* engine/wallets: see wallets.h. */
#include "engine/wallets.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/currency.h"
#include "core/ledger.h"
#include "engine/usage.h"
#include "engine/wallet_clock.h"
#include "json/catalog_refs.h"
#include "util/vec.h"
#include "util/text.h"

/* Grants one round of a debit plans its takes over (a stack array of takes): how many grants a
 * wallet holds is input, and a debit spanning more of them takes more rounds. */
#define TAKES_PER_ROUND 64

static bool usable(const struct live_wallet *w, tally_time now)
{
    return !w->row.has_terminated_at && !(w->row.has_expiration_at && w->row.expiration_at <= now);
}

bool wallets_none_active(const struct customer_wallets *cw, tally_time now)
{
    for (size_t i = 0; i < cw->wallet_count; i++)
        if (usable(&cw->wallets[i], now))
            return false;
    return true;
}

enum command_result wallets_up_to_date(struct wallet_book *b, struct store *st, struct command *cmd,
                                       int64_t org_id, int64_t customer_id,
                                       struct customer_wallets **cw_out)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, org_id, customer_id);
    if (!cw || !wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    if (cw_out)
        *cw_out = cw;
    return wallet_clock_bring_up_to_date(st, cmd, cw);
}

/* A soft wallet's overdraft it may still draw (0: not a soft wallet). */
static int64_t overdraft_left(const struct store_wallet *row)
{
    return row->limit == WALLET_LIMIT_SOFT ? row->overdraft_limit_cents - row->overdrawn_cents : 0;
}

/* The unheld credits of the wallet's grants not past their expiry at `now`. */
static int64_t live_unheld(const struct live_wallet *w, tally_time now)
{
    int64_t sum = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        if (!wallet_grant_past_expiry(&w->grants[i], now))
            sum += wallet_grant_unheld(&w->grants[i]);
    return sum;
}

/*
 * What the wallet can still pay at `now`: the unheld credits of its live grants (not past
 * their expiry), and a soft wallet's overdraft left, less what its open holds reserve on no
 * grant (a hold is only worth something if this never goes below zero). During a capture, what
 * its hold released of grants past their expiry is the capture's to spend too.
 */
static int64_t unreserved(const struct live_wallet *w, tally_time now)
{
    /* one pass (every debit asks): held_on_grants gives what is held elsewhere */
    int64_t sum = 0, held_on_grants = 0;
    for (size_t i = 0; i < w->grant_count; i++) {
        const struct wallet_grant *g = &w->grants[i];
        held_on_grants += g->held_cents;
        if (!wallet_grant_past_expiry(g, now))
            sum += wallet_grant_unheld(g);
        else if (g->capturing_cents > 0)
            sum += g->capturing_cents < wallet_grant_unheld(g) ? g->capturing_cents
                                                               : wallet_grant_unheld(g);
    }
    int64_t held_elsewhere = w->row.held_cents - held_on_grants;
    return sum - held_elsewhere + overdraft_left(&w->row); /* < 0: holds reserve more */
}

/* What a void may take: the unheld credits of live grants, less what holds reserve on no grant
 * beyond a soft wallet's overdraft left (parts of holds from before reservations were per
 * grant). */
static int64_t voidable_unheld(const struct live_wallet *w, tally_time now)
{
    int64_t unheld = live_unheld(w, now);
    int64_t beyond = wallet_book_held_elsewhere(w) - overdraft_left(&w->row);
    if (beyond <= 0)
        return unheld;
    return unheld > beyond ? unheld - beyond : 0;
}

static int64_t spendable(const struct live_wallet *w, tally_time now)
{
    int64_t sum = unreserved(w, now);
    return sum > 0 ? sum : 0;
}

/* Takes up to `want` from the grants `from` names, in consumption order; returns what it took.
 * Emptied grants stay in the list (the caller drops them). */
static int64_t take_from_grants(struct live_wallet *w, struct charge_debit *d, int64_t want,
                                tally_time now, enum wallet_take_from from, bool *failed)
{
    struct wallet_take takes[TAKES_PER_ROUND];
    int64_t taken = 0;
    /* a debit that spans more grants than a round takes simply takes more rounds */
    for (size_t at = 0; taken < want && at < w->grant_count; at += TAKES_PER_ROUND) {
        size_t n,
            span = w->grant_count - at < TAKES_PER_ROUND ? w->grant_count - at : TAKES_PER_ROUND;
        int64_t got = wallet_plan_take_at(w->grants + at, span, want - taken, now, from, takes, &n);
        for (size_t i = 0; i < n; i++) {
            struct wallet_grant *g = &w->grants[at + takes[i].grant];
            g->remaining_cents -= takes[i].cents;
            if (from == WALLET_TAKE_CAPTURING)
                g->capturing_cents -= takes[i].cents;
            *(g->paid ? &w->taken_paid : &w->taken_free) += takes[i].cents;
            if (!wallet_book_note_move(w, g->id, takes[i].cents) ||
                !wallet_book_push_funding(
                    d, (struct funding){FUNDING_GRANT, w->row.id, g->id, takes[i].cents}))
                *failed = true;
        }
        taken += got;
    }
    return taken;
}

/* During a capture: takes up to `want` of what its hold released of the wallet's grants (past
 * their expiry too); returns what it took. */
static int64_t take_capturing(struct live_wallet *w, struct charge_debit *d, int64_t want,
                              tally_time now, bool *failed)
{
    int64_t got = take_from_grants(w, d, want, now, WALLET_TAKE_CAPTURING, failed);
    wallet_book_drop_empty_grants(w); /* a refund step loads them back */
    return got;
}

/* Takes up to `want` of one wallet's live grants, within what it can spend; returns what it
 * took. */
static int64_t take_live(struct live_wallet *w, struct charge_debit *d, int64_t want,
                         tally_time now, bool *failed)
{
    int64_t can = spendable(w, now);
    int64_t taken = take_from_grants(w, d, can < want ? can : want, now, WALLET_TAKE_LIVE, failed);
    wallet_book_drop_empty_grants(w); /* a refund step loads them back */
    return taken;
}

/* Takes up to `want` from one wallet (live grants, then a soft wallet's overdraft), within
 * what it can spend; returns what it took. */
static int64_t take_from_wallet(struct live_wallet *w, struct charge_debit *d, int64_t want,
                                tally_time now, bool *failed)
{
    int64_t total = spendable(w, now) < want ? spendable(w, now) : want;
    int64_t taken = take_from_grants(w, d, total, now, WALLET_TAKE_LIVE, failed);
    wallet_book_drop_empty_grants(w); /* a refund step loads them back */
    int64_t part = total - taken;
    if (part > 0) {
        assert(w->row.limit == WALLET_LIMIT_SOFT);
        w->row.overdrawn_cents += part;
        w->overdrawn_added += part;
        w->dirty = true;
        if (!wallet_book_push_funding(d, (struct funding){FUNDING_OVERDRAFT, w->row.id, 0, part}))
            *failed = true;
        taken += part;
    }
    return taken;
}

/* Whether wallet w may pay a usage fee of `metric_code` in `currency`. */
static bool pays_for(const struct live_wallet *w, const char *currency, const char *metric_code,
                     tally_time now)
{
    struct wallet_applies_to a = {w->fee_types, w->metric_codes, w->metric_code_count,
                                  w->metrics_deleted};
    return usable(w, now) && strcmp(w->row.currency, currency) == 0 &&
           wallet_may_pay_charge(&a, metric_code);
}

/* Wallet order for paying a fee: priority, then the oldest. */
static int payer_compare(const void *pa, const void *pb)
{
    const struct live_wallet *a = *(const struct live_wallet *const *)pa,
                             *b = *(const struct live_wallet *const *)pb;
    if (a->row.priority != b->row.priority)
        return a->row.priority < b->row.priority ? -1 : 1;
    if (a->row.created_at != b->row.created_at)
        return a->row.created_at < b->row.created_at ? -1 : 1;
    return (a->row.id > b->row.id) - (a->row.id < b->row.id);
}

bool wallets_customer_pays(struct wallet_book *b, struct store *st, int64_t org_id,
                           int64_t customer_id, bool *failed)
{
    const struct customer_wallets *cw = wallet_book_customer(b, st, org_id, customer_id);
    if (!cw)
        *failed = true;
    return cw && (cw->wallet_count > 0 || cw->debit_count > 0);
}

bool wallets_usage_is_limited(struct wallet_book *b, struct store *st, int64_t org_id,
                              int64_t customer_id, const char *currency, const char *metric_code,
                              tally_time now, bool *failed)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, org_id, customer_id);
    if (!cw) {
        *failed = true;
        return false;
    }
    bool any_payer = false;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        if (!pays_for(&cw->wallets[i], currency, metric_code, now))
            continue;
        if (cw->wallets[i].row.limit == WALLET_LIMIT_NONE)
            return false; /* debit() leaves a shortfall to the invoice */
        any_payer = true;
    }
    return any_payer;
}

/* What a charge's debit would take now: its cost less what it took this period. */
static bool charge_step(const struct customer_wallets *cw, const struct usage *u,
                        const struct usage_charge *c, const struct usage_brought *brought,
                        int64_t *step)
{
    const struct charge_debit *d =
        wallet_book_find_debit((struct customer_wallets *)cw, u->subscription_id, c->lago_id);
    int64_t charged = d && wallet_book_debit_same_period(d, u->from) ? d->charged_cents : 0;
    return !__builtin_sub_overflow(brought->cost_cents, charged, step);
}

/* Whether bringing the wallets to `now` would move anything: an anniversary, a grant or a
 * wallet past its expiry (wallet_clock_bring_up_to_date). */
static bool anything_due(const struct customer_wallets *cw, tally_time now)
{
    for (size_t i = 0; i < cw->wallet_count; i++) {
        const struct live_wallet *w = &cw->wallets[i];
        if (w->row.has_terminated_at)
            continue;
        if ((w->row.has_next_rule_at && w->row.next_rule_at <= now) ||
            (w->row.has_expiration_at && w->row.expiration_at <= now))
            return true;
        for (size_t k = 0; k < w->grant_count; k++)
            if (w->grants[k].has_expiration && w->grants[k].expiration_at <= now)
                return true;
    }
    return false;
}

/* Whether debit() cannot refuse a step of the charge up to `needed`: no wallet pays it, one
 * lets usage run on, or those that pay it can spend that much together. */
static bool charge_covered(const struct customer_wallets *cw, const struct usage *u,
                           const struct usage_charge *c, int64_t needed, tally_time now)
{
    bool any_payer = false;
    int64_t can = 0;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        const struct live_wallet *w = &cw->wallets[i];
        if (!pays_for(w, u->currency, c->metric_code, now))
            continue;
        if (w->row.limit == WALLET_LIMIT_NONE)
            return true;
        any_payer = true;
        if (__builtin_add_overflow(can, spendable(w, now), &can) || can >= needed)
            return true;
    }
    return !any_payer;
}

bool wallets_debits_covered(struct wallet_book *b, struct store *st, const struct command *cmd,
                            const struct wallets_usage_due *due, size_t count, bool *failed)
{
    /* what the command may take from each customer, all its subscriptions together; and
     * every step, either way, within what the debit's own sums hold (fee_out_of_range) */
    int64_t moved = 0;
    for (size_t i = 0; i < count; i++) {
        const struct usage *u = due[i].usage;
        struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, u->customer_id);
        if (!cw) {
            *failed = true;
            return false;
        }
        if (cw->stepped_in != b->command_number) {
            cw->stepped_in = b->command_number;
            cw->step_cents = 0;
        }
        for (size_t k = 0; cw->wallet_count > 0 && k < u->charge_count; k++) {
            int64_t step;
            if (!charge_step(cw, u, &u->charges[k], &due[i].brought[k], &step) ||
                step < -WALLET_BALANCE_MAX_CENTS || step > WALLET_BALANCE_MAX_CENTS ||
                __builtin_add_overflow(moved, step < 0 ? -step : step, &moved) ||
                moved > WALLET_LIFETIME_MAX_CENTS ||
                (step > 0 && __builtin_add_overflow(cw->step_cents, step, &cw->step_cents)))
                return false;
        }
    }
    for (size_t i = 0; i < count; i++) {
        const struct usage *u = due[i].usage;
        const struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, u->customer_id);
        if (!cw) {
            *failed = true;
            return false;
        }
        if (cw->wallet_count == 0 || cw->step_cents == 0)
            continue; /* nothing taken: only give-backs, which refuse nothing */
        if (cw->step_cents > WALLET_BALANCE_MAX_CENTS || anything_due(cw, cmd->now))
            return false;
        for (size_t k = 0; k < u->charge_count; k++)
            if (!charge_covered(cw, u, &u->charges[k], cw->step_cents, cmd->now))
                return false;
    }
    return true;
}

static enum command_result debit(struct customer_wallets *cw, struct command *cmd,
                                 struct charge_debit *d, const char *currency,
                                 const char *metric_code, int64_t want)
{
    struct live_wallet *payers[WALLET_PER_CUSTOMER_MAX * 2];
    size_t n = 0;
    bool any_unlimited = false, failed = false;
    for (size_t i = 0; i < cw->wallet_count && n < sizeof payers / sizeof payers[0]; i++) {
        if (!pays_for(&cw->wallets[i], currency, metric_code, cmd->now))
            continue;
        payers[n++] = &cw->wallets[i];
        any_unlimited |= cw->wallets[i].row.limit == WALLET_LIMIT_NONE;
    }
    qsort(payers, n, sizeof payers[0], payer_compare);
    int64_t left = want;
    /* a capture spends first, in any of its wallets, the credits its hold reserved (so that
     * it costs what the event would have cost when the hold was made: those past their expiry
     * would expire while others paid) */
    for (size_t i = 0; i < n && left > 0; i++)
        left -= take_capturing(payers[i], d, left, cmd->now, &failed);
    /* every payer's credits before any soft wallet's overdraft: a customer does not run into
     * debt while prepaid credits that may pay are left (found by an audit) */
    for (size_t i = 0; i < n && left > 0; i++)
        left -= take_live(payers[i], d, left, cmd->now, &failed);
    for (size_t i = 0; i < n && left > 0; i++)
        left -= take_from_wallet(payers[i], d, left, cmd->now, &failed);
    if (failed)
        return COMMAND_STORE_FAILED;
    if (left == 0)
        return COMMAND_OK;
    /* A hold was priced when it was made: usage since may have made the same usage dearer (a
     * later tier, taxes rounded up). Its merchant was told "authorized": the capture of that
     * usage goes through, and what credits cannot pay is the invoice's. */
    bool promised =
        (cmd->kind == COMMAND_AUTHORIZATION_CAPTURE && cmd->as.events_ingest.as_authorized) ||
        cmd->settling_periods;
    if (n > 0 && !any_unlimited && !promised) {
        /* The last wallet that could have paid is the one to top up. */
        const struct live_wallet *w = payers[n - 1];
        memcpy(cmd->short_wallet_lago_id, w->row.lago_id, sizeof cmd->short_wallet_lago_id);
        cmd->short_cents = left;
        return COMMAND_INSUFFICIENT_CREDITS;
    }
    return wallet_book_push_funding(d, (struct funding){FUNDING_UNCOVERED, 0, 0, left})
               ? COMMAND_OK
               : COMMAND_STORE_FAILED;
}

/* A grant by id: live, or loaded back from the store (emptied grants leave the live list). */
static struct wallet_grant *grant_for_refund(struct live_wallet *w, struct store *st,
                                             int64_t grant_id, struct arena *a)
{
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].id == grant_id)
            return &w->grants[i];
    struct store_wallet_transaction t;
    if (store_wallet_transaction_by_id(store_conn(st), grant_id, &t, a) != STORE_OK)
        return NULL;
    struct wallet_grant g = wallet_book_grant_of(&t);
    g.remaining_cents = 0;
    if (!wallet_book_grant_insert(w, &g))
        return NULL;
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].id == grant_id)
            return &w->grants[i];
    return NULL;
}

/* Takes up to `cents` off the charge's uncovered parts, wherever they are in its stack;
 * returns what it took. */
static int64_t give_back_uncovered(struct charge_debit *d, int64_t cents)
{
    int64_t taken = 0;
    for (size_t k = d->funding_count; k-- > 0 && taken < cents;) {
        struct funding *f = &d->fundings[k];
        if (f->kind != FUNDING_UNCOVERED)
            continue;
        int64_t part = f->cents < cents - taken ? f->cents : cents - taken;
        f->cents -= part;
        taken += part;
        if (f->cents == 0) {
            memmove(f, f + 1, (d->funding_count - k - 1) * sizeof *f);
            d->funding_count--;
        }
    }
    return taken;
}

/*
 * Gives `part` of a funding back to the wallet that paid it: to its grant, or off the
 * overdraft it owes. Credits back in a live grant of a wallet that owes an overdraft repay it
 * first, as new credits do (wallet_book_credit): that part goes off the overdraft, and as much
 * of the charges' overdraft fundings become the grant's (found by an audit: the credits stayed
 * in the grant beside the debt, and a termination or an expiry then voided them while the
 * customer still owed it all). Sets *expired_since if the grant is past its expiry: those
 * credits are not spent, they expire.
 */
static enum command_result give_back_to(struct customer_wallets *cw, struct live_wallet *w,
                                        struct store *st, struct command *cmd,
                                        const struct funding *f, int64_t part, int64_t tax,
                                        bool *expired_since)
{
    /* its tax part comes out of taxes_payable, with the refund step's posting */
    w->given_tax += tax;
    w->dirty = w->dirty || tax != 0;
    if (part == 0) /* the tax alone (give_back, no covered part given back) */
        return w->row.has_terminated_at ? wallet_book_settle_terminated(st, cmd, w) : COMMAND_OK;
    if (f->kind == FUNDING_GRANT) {
        struct wallet_grant *g = grant_for_refund(w, st, f->grant_id, cmd->arena);
        if (!g)
            return COMMAND_STORE_FAILED;
        bool expired = g->has_expiration && g->expiration_at <= cmd->now;
        int64_t repay = expired ? 0 : w->row.overdrawn_cents < part ? w->row.overdrawn_cents : part;
        if ((part > repay && !wallet_book_note_move(w, g->id, -(part - repay))) ||
            !wallet_book_reassign_overdraft(cw, w, g->id, repay))
            return COMMAND_STORE_FAILED;
        g->remaining_cents += part - repay;
        *(g->paid ? &w->given_paid : &w->given_free) += part - repay;
        w->row.overdrawn_cents -= repay;
        w->overdraft_given += repay;
        w->dirty = w->dirty || repay > 0;
        *expired_since |= expired;
    } else {
        /* overdraft fundings are at most what is still owed (check_overdraft_fundings) */
        assert(f->kind == FUNDING_OVERDRAFT && part <= w->row.overdrawn_cents);
        w->row.overdrawn_cents -= part;
        w->overdraft_given += part;
        w->dirty = true;
    }
    /* A wallet terminated since it paid gets its part back all the same (else revenue would
     * keep usage the fee no longer has): written now, and what came back to its grants is
     * voided with it at once. */
    return w->row.has_terminated_at ? wallet_book_settle_terminated(st, cmd, w) : COMMAND_OK;
}

/* What wallets paid of a charge: its fundings but the uncovered ones (left to the invoice). */
static int64_t covered_cents(const struct charge_debit *d)
{
    int64_t sum = 0;
    for (size_t k = 0; k < d->funding_count; k++)
        if (d->fundings[k].kind != FUNDING_UNCOVERED)
            sum += d->fundings[k].cents;
    return sum;
}

/* a * b / c rounded half up (c > 0), in 128 bits: |a|, |b| < 2^63, so nothing wraps */
static int64_t mul_div_half_up(int64_t a, int64_t b, int64_t c)
{
    __int128 n = (__int128)a * b * 2 + c, d = (__int128)c * 2;
    __int128 q = n / d;
    if (n % d != 0 && n < 0) /* floor, for a negative tax */
        q--;
    return (int64_t)q;
}

/*
 * The tax part of the `covered` cents wallets paid of a charge that costs `cost` with `tax` of
 * taxes: all its tax when they paid all of it, none when nothing, else its share, rounded half
 * up as the cost's own taxes were. Found by an audit: usage paid with credits booked its
 * taxes as revenue. Each step posts the change of this share (so rounding never drifts, and
 * a charge given back whole gives back exactly the tax it posted).
 */
static int64_t covered_tax(int64_t cost, int64_t tax, int64_t covered)
{
    if (covered <= 0 || cost <= 0)
        return 0;
    return covered >= cost ? tax : mul_div_half_up(tax, covered, cost);
}

/* The `k`-th of `n` cumulative shares of `tax` over `total` cents, `upto` cents in: the parts
 * sum to `tax` exactly. */
static int64_t tax_share(int64_t tax, int64_t upto_before, int64_t upto, int64_t total)
{
    return (int64_t)((__int128)tax * upto / total - (__int128)tax * upto_before / total);
}

/* The wallet of the charge's newest covered funding, if the book holds it: the one a change of
 * tax with no covered cents moving is posted on (a posting between revenue and
 * taxes_payable alone). */
static struct live_wallet *newest_payer(struct customer_wallets *cw, const struct charge_debit *d)
{
    for (size_t k = d->funding_count; k-- > 0;)
        if (d->fundings[k].kind != FUNDING_UNCOVERED)
            return wallet_book_wallet(cw, d->fundings[k].wallet_id);
    return NULL;
}

/* Gives `cents` back: first to what the invoice would have charged (the uncovered parts), then
 * to the sources that paid last, terminated wallets included. Sets *expired_since if a grant it
 * gave to is past its expiry (those credits must expire before anything reads the balance). */
static enum command_result give_back(struct wallet_book *b, struct customer_wallets *cw,
                                     struct store *st, struct command *cmd, struct charge_debit *d,
                                     int64_t cents, int64_t tax, int64_t covered,
                                     bool *expired_since)
{
    /* `tax` comes out of taxes_payable with the `covered` cents given back to wallets, each
     * part its share; with none, from the wallet that paid last */
    int64_t given_covered = 0;
    cents -= give_back_uncovered(d, cents);
    if (covered == 0 && tax != 0) {
        struct live_wallet *w = newest_payer(cw, d);
        if (w) {
            struct funding none = {FUNDING_OVERDRAFT, w->row.id, 0, 0};
            enum command_result r = give_back_to(cw, w, st, cmd, &none, 0, tax, expired_since);
            if (r != COMMAND_OK)
                return r;
            d->posted_tax_cents -= tax;
        }
    }
    while (cents > 0 && d->funding_count > 0) {
        /* taken off the funding first: a repayment moves the debits' overdraft fundings,
         * this one's array included */
        struct funding f = d->fundings[d->funding_count - 1];
        int64_t part = f.cents < cents ? f.cents : cents;
        d->fundings[d->funding_count - 1].cents -= part;
        if (part == f.cents)
            d->funding_count--;
        cents -= part;
        if (f.kind == FUNDING_UNCOVERED)
            continue;
        /* the book holds active wallets (and those that expired in the batch): one deleted
         * since is loaded for this step alone */
        struct live_wallet *w = wallet_book_wallet(cw, f.wallet_id), *loaded = NULL;
        if (!w && !(w = loaded = wallet_book_load_terminated(b, st, cmd, f.wallet_id)))
            return COMMAND_STORE_FAILED;
        int64_t part_tax =
            covered > 0 ? tax_share(tax, given_covered, given_covered + part, covered) : 0;
        given_covered += part;
        d->posted_tax_cents -= part_tax;
        enum command_result r = give_back_to(cw, w, st, cmd, &f, part, part_tax, expired_since);
        if (loaded)
            wallet_book_unload(loaded);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/* The customer's stored zone no longer loads (the host's tz database lost the name): its
 * wallets' calendar cannot be read, and nothing is changed (wallet_clock.c, rule_zone). */
static enum command_result zone_lost(struct command *cmd)
{
    cmd->failure_message = "the customer's time zone cannot be loaded from this host's time zone "
                           "database, so its wallets' interval rule cannot be scheduled; nothing "
                           "was applied. Give the customer a timezone the host knows";
    return COMMAND_STORE_FAILED;
}

static enum command_result refuse(struct command *cmd, const char *field, const char *code)
{
    cmd->invalid_field = field;
    cmd->invalid_code = code;
    return COMMAND_INVALID;
}

/* Whether d is what a charge of u's subscription, no longer in its plan, debited this period. */
static bool is_orphan(const struct charge_debit *d, const struct usage *u)
{
    if (d->subscription_id != u->subscription_id || !wallet_book_debit_same_period(d, u->from) ||
        d->charged_cents <= 0)
        return false;
    for (size_t i = 0; i < u->charge_count; i++)
        if (strcmp(u->charges[i].lago_id, d->charge_lago_id) == 0)
            return false;
    return true;
}

bool wallets_price_event(struct wallet_book *b, struct store *st, const struct usage *u,
                         const struct event *e, tally_time now, int64_t *cents,
                         struct wallets_hold_part *parts, bool *failed)
{
    *cents = 0;
    struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, u->customer_id);
    if (!cw) {
        *failed = true;
        return false;
    }
    /* the very debit wallets_debit_usage will make, unless the period moves on: every charge
     * brought to what it brings with the event's step (a charge of another metric too: its
     * carried recurring fee or a repricing is settled by whichever debit comes first), less
     * what they have taken; their costs add up to the usage's cost, taxes rounded once */
    struct usage_total after;
    usage_total_init(&after);
    bool ok = true;
    int64_t cost_before = 0; /* of the charges before this one, taxes rounded once over them */
    for (size_t i = 0; ok && i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        struct usage_estimate step = {0};
        const struct charge_debit *d = wallet_book_find_debit(cw, u->subscription_id, c->lago_id);
        int64_t charged = d && wallet_book_debit_same_period(d, u->from) ? d->charged_cents : 0,
                brought, amount;
        /* no wallet: what the charge brought so far is the invoice's, and a wallet made now
         * would start from it (wallets_open_period). Without this a declined hold priced every
         * unbilled cent of the period (an audit: 700 for one call of 100, 6 used before). */
        struct usage_brought open;
        if (wallets_none_active(cw, now)) {
            ok = usage_charge_brought(u, c, &open);
            if (ok && open.cost_cents > charged)
                charged = open.cost_cents;
        }
        ok = ok && (strcmp(c->metric_code, e->code) != 0 || usage_estimate(u, c, e, now, &step)) &&
             usage_charge_brought_amount(u, c, &brought) &&
             !__builtin_add_overflow(brought, step.amount_cents, &amount) &&
             usage_total_add(&after, c, amount) && !__builtin_sub_overflow(*cents, charged, cents);
        if (ok && parts) { /* the charge's own step: its cost now less what it debited */
            struct usage_total upto = after;
            ok = usage_total_finish(&upto) &&
                 !__builtin_sub_overflow(upto.total_cents, cost_before, &parts[i].cents) &&
                 !__builtin_sub_overflow(parts[i].cents, charged, &parts[i].cents);
            parts[i].metric_code = c->metric_code;
            cost_before = upto.total_cents;
        }
    }
    if (!ok || !usage_total_finish(&after) ||
        __builtin_add_overflow(*cents, after.total_cents, cents))
        return false;
    for (size_t i = 0; i < cw->debit_count; i++) /* what removed charges will give back first */
        if (is_orphan(&cw->debits[i], u) &&
            __builtin_sub_overflow(*cents, cw->debits[i].charged_cents, cents))
            return false;
    if (*cents < 0)
        *cents = 0; /* an event that lowers the fee needs no credits */
    return true;
}

/* A fee whose change leaves int64 (or whose steps add past it in one command). */
static enum command_result fee_out_of_range(struct command *cmd)
{
    cmd->invalid_field = "properties";
    cmd->invalid_code = "amount_out_of_range"; /* as check_priced's refusals */
    cmd->invalid_message = "this usage would change a fee by more than cents can count; nothing "
                           "was recorded";
    return COMMAND_INVALID;
}

/*
 * Whether a wallet of the customer waits to write steps the other way (refund steps before a
 * debit, debits before a refund step). A write-out posts what it waits for as one consumption
 * and then one refund step; written out before the direction turns, a wallet's ledger reads in
 * the order things happened. Found by two audits: 10.00 taken, 9.00 given back and 5.00 taken
 * posted as 15.00 consumed (the account at -5.00) and then 9.00 given back.
 */
static bool turns_direction(const struct customer_wallets *cw, bool taking)
{
    for (size_t k = 0; k < cw->wallet_count; k++) {
        const struct live_wallet *w = &cw->wallets[k];
        int64_t other = taking ? w->given_paid + w->given_free + w->overdraft_given
                               : w->taken_paid + w->taken_free + w->overdrawn_added;
        if (other > 0)
            return true;
    }
    return false;
}

/*
 * After a debit of d: posts the change of the tax part of what wallets paid of it (`cost`,
 * `tax` of it taxes) with what each wallet took in the step (`taken_before[k]`: what
 * cw->wallets[k] had taken before it; NULL: nothing moved), each its share; with nothing taken,
 * on the wallet that paid last.
 */
static void settle_debit_tax(struct customer_wallets *cw, struct charge_debit *d, int64_t cost,
                             int64_t tax, const int64_t *taken_before)
{
    int64_t covered = covered_cents(d);
    int64_t change = covered_tax(cost, tax, covered) - d->posted_tax_cents;
    if (change == 0)
        return;
    int64_t total = 0;
    for (size_t k = 0; taken_before && k < cw->wallet_count; k++) {
        const struct live_wallet *w = &cw->wallets[k];
        total += w->taken_paid + w->taken_free + w->overdrawn_added - taken_before[k];
    }
    if (total <= 0) {
        struct live_wallet *w = newest_payer(cw, d);
        if (!w)
            return; /* posted at the charge's next step */
        w->taken_tax += change;
        w->dirty = true;
        d->posted_tax_cents += change;
        return;
    }
    int64_t upto = 0;
    for (size_t k = 0; k < cw->wallet_count; k++) {
        struct live_wallet *w = &cw->wallets[k];
        int64_t took = w->taken_paid + w->taken_free + w->overdrawn_added - taken_before[k];
        if (took <= 0)
            continue;
        int64_t share = tax_share(change, upto, upto + took, total);
        upto += took;
        w->taken_tax += share;
        w->dirty = true;
    }
    d->posted_tax_cents += change;
}

/*
 * Brings what charge debit d has taken to `cost`, the charge's fee (with taxes) now, `tax` of
 * it its taxes: debits the difference, or gives it back (give_back sets *expired_since). The
 * tax part of what wallets paid goes to taxes_payable, the rest to revenue (covered_tax).
 */
static enum command_result settle_charge(struct wallet_book *b, struct store *st,
                                         struct command *cmd, struct customer_wallets *cw,
                                         const struct usage *u, struct charge_debit *d,
                                         const char *metric_code, int64_t cost, int64_t tax,
                                         bool *expired_since)
{
    if (!wallet_book_debit_same_period(d, u->from)) {
        wallet_book_debit_reset(d, u->from); /* a new period: the last one is the invoice's */
        /* written even if nothing is taken: the store's newest row for the charge must be the
         * book's, or a load brings the last period's fundings back as this one's (overdraft
         * a top-up has repaid since, which the next partial top-up or refund step then
         * counts as owed: restart_random, seed 33) */
        d->dirty = true;
    }
    int64_t step;
    if (__builtin_sub_overflow(cost, d->charged_cents, &step) || step == INT64_MIN ||
        __builtin_add_overflow(cmd->usage_cost_cents, step, &cmd->usage_cost_cents))
        return fee_out_of_range(cmd);
    int64_t covered = covered_cents(d);
    if (d->posted_tax_cents < 0) {
        /* Debited before taxes had an account: the taxes its wallets paid were posted to
         * revenue, none to taxes_payable. Moved there now, on the wallet that paid last, so
         * that what the steps from now give back comes from where it was posted (counted as
         * posted already, a refund in full took the old taxes out of taxes_payable, below 0,
         * and left them in revenue: an audit). */
        d->posted_tax_cents = 0;
        settle_debit_tax(cw, d, cost, tax, NULL);
        d->dirty = true;
    }
    if (step == 0) {
        /* the fee may still have moved between its net and its taxes */
        if (covered_tax(cost, tax, covered) != d->posted_tax_cents) {
            settle_debit_tax(cw, d, cost, tax, NULL);
            d->dirty = true;
        }
        return COMMAND_OK;
    }
    enum command_result r = COMMAND_OK;
    if (turns_direction(cw, step > 0)) {
        if ((r = wallet_book_flush_customer(st, cmd, cw)) != COMMAND_OK)
            return r;
        b->must_flush |= b->deferring;
    }
    if (step > 0) {
        int64_t *before = arena_alloc(cmd->arena, (cw->wallet_count + 1) * sizeof *before);
        if (!before)
            return COMMAND_STORE_FAILED;
        for (size_t k = 0; k < cw->wallet_count; k++) {
            const struct live_wallet *w = &cw->wallets[k];
            before[k] = w->taken_paid + w->taken_free + w->overdrawn_added;
        }
        r = debit(cw, cmd, d, u->currency, metric_code, step);
        if (r == COMMAND_OK)
            settle_debit_tax(cw, d, cost, tax, before);
    } else {
        /* what goes back to wallets: all but what the uncovered parts take first */
        int64_t uncovered = 0;
        for (size_t k = 0; k < d->funding_count; k++)
            if (d->fundings[k].kind == FUNDING_UNCOVERED)
                uncovered += d->fundings[k].cents;
        int64_t to_wallets = -step > uncovered ? -step - uncovered : 0;
        if (to_wallets > covered)
            to_wallets = covered;
        int64_t tax_back = d->posted_tax_cents - covered_tax(cost, tax, covered - to_wallets);
        r = give_back(b, cw, st, cmd, d, -step, tax_back, to_wallets, expired_since);
    }
    if (r != COMMAND_OK)
        return r;
    d->charged_cents = cost;
    d->dirty = true;
    /* Refund steps that give back what the last step took would pile up what waits for the
     * write-out without bound: past WALLET_UNPOSTED_MAX_CENTS it is written out now (and the
     * whole book at the end of the group, as after any direct write). */
    for (size_t k = 0; k < cw->wallet_count; k++) {
        if (wallet_book_unposted_cents(&cw->wallets[k]) <= WALLET_UNPOSTED_MAX_CENTS)
            continue;
        for (size_t j = 0; j < cw->wallet_count; j++)
            if (cw->wallets[j].dirty) /* posted as of now, the latest debit they sum */
                cw->wallets[j].pending_at = cmd->now;
        if ((r = wallet_book_flush_customer(st, cmd, cw)) != COMMAND_OK)
            return r;
        b->must_flush |= b->deferring;
        break;
    }
    return COMMAND_OK;
}

/* Whether the tax part posted of what wallets paid of d is no longer what it carries of `cost`
 * with `tax` of taxes (covered_tax), and a wallet the book holds can take the change. */
static bool split_moved(struct customer_wallets *cw, const struct charge_debit *d, int64_t cost,
                        int64_t tax)
{
    return (d->posted_tax_cents < 0 ||
            covered_tax(cost, tax, covered_cents(d)) != d->posted_tax_cents) &&
           newest_payer(cw, d) != NULL;
}

/* Moves the tax part posted of what wallets paid of d to what they carry of `cost` now, no
 * credits moving: one posting of revenue and taxes_payable alone, on the wallet that paid last
 * (docs/API.md, Ledger). A charge debited before taxes had an account moves them first, as
 * settle_charge does. */
static void resplit_tax(struct customer_wallets *cw, struct charge_debit *d, int64_t cost,
                        int64_t tax)
{
    if (d->posted_tax_cents < 0)
        d->posted_tax_cents = 0;
    settle_debit_tax(cw, d, cost, tax, NULL);
    d->dirty = true;
}

/*
 * Gives back what u's charges debited this period beyond what they bring now (`brought`), and
 * all that charges the plan no longer has debited; debits nothing. Revenue must not keep usage
 * the fee no longer has: for a customer with no active wallet (what goes up is the invoice's,
 * and the next wallet's first debit starts from the fee then, wallets_open_period), and
 * whenever no debit of u is there to settle it (wallets_give_back). Charge by charge, even
 * when another charge's cost rose (wallets_debit_raised's, after): the wallets that
 * may pay one charge are not always another's (applies_to), and a subscription that has ended
 * is debited no more. A fix that netted the charges kept a wallet's credits for another
 * wallet's usage (an audit's); so a rise of one charge's taxes that lowers another charge's
 * share of the taxes rounded once gives that cent back at once. A charge whose cost did not
 * fall has the tax part of what wallets paid re-split at once all the same (resplit_tax).
 */
static enum command_result give_back_fallen(struct wallet_book *b, struct store *st,
                                            struct command *cmd, struct customer_wallets *cw,
                                            const struct usage *u,
                                            const struct usage_brought *brought)
{
    bool touched = false, expired_since = false;
    /* orphans in the order their overdraft was run up, as a repayment takes it: the book's
     * array order differs after a load */
    struct charge_debit **order = wallet_book_debits_in_order(cw);
    if (cw->debit_count > 0 && !order)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < cw->debit_count + u->charge_count; i++) {
        struct charge_debit *d;
        int64_t cost = 0; /* a charge the plan no longer has brings nothing */
        if (i < cw->debit_count) {
            d = order[i];
            if (!is_orphan(d, u))
                continue;
        } else {
            const struct usage_charge *c = &u->charges[i - cw->debit_count];
            d = wallet_book_find_debit(cw, u->subscription_id, c->lago_id);
            cost = brought[i - cw->debit_count].cost_cents;
            if (!d || !wallet_book_debit_same_period(d, u->from))
                continue;
            /* a cost that did not fall is a debit's, but what wallets paid of it carries
             * its taxes now (an audit: a tax raise the credits could not pay, or a cut the
             * invoice's part took, left taxes_payable as it was until the next event) */
            if (cost >= d->charged_cents &&
                !split_moved(cw, d, cost, cost - brought[i - cw->debit_count].amount_cents))
                continue;
        }
        if (!touched && !wallet_book_touch(b, cw)) {
            free(order);
            return COMMAND_STORE_FAILED;
        }
        touched = true;
        int64_t tax = i < cw->debit_count ? 0 : cost - brought[i - cw->debit_count].amount_cents;
        enum command_result r = COMMAND_OK;
        if (i >= cw->debit_count && cost >= d->charged_cents)
            resplit_tax(cw, d, cost, tax);
        else
            r = settle_charge(b, st, cmd, cw, u, d, NULL, cost, tax, &expired_since);
        if (r != COMMAND_OK) {
            free(order);
            return r;
        }
    }
    free(order);
    if (!touched)
        return COMMAND_OK;
    /* credits given back to a grant past its expiry expire now (a credit is never spendable,
     * nor shown, past its expiry) */
    enum command_result r = expired_since && cw->wallet_count > 0
                                ? wallet_clock_bring_up_to_date(st, cmd, cw)
                                : COMMAND_OK;
    if (r != COMMAND_OK)
        return r;
    if (!b->deferring)
        return wallet_book_flush_customer(st, cmd, cw);
    return wallet_book_mark_dirty(b, cw) ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/*
 * A debit whose period a wallet opened mid-way is two parts, its stack's bottom and its top:
 * below, what it stood at then (the invoice's, and wallets terminated before), which a
 * re-pricing brings to what the usage then costs now (d->opened_cents, the figure); above,
 * what came after, the opening wallet's to pay. The two parts are moved apart, each by its
 * own figure (reprice_opening), never one through the other's fundings: an audit found a cut
 * given back twice from the invoice's part while the wallet kept what it paid at the old
 * price, and a raise then a cut that freed memory twice (a split piece merged back).
 */

/* Makes a boundary in d's stack where its bottom sums to `below`, splitting the funding across
 * it in two (side by side, not merged back). Sets *at to the count of fundings below; false on
 * a failed allocation. */
static bool split_stack(struct charge_debit *d, int64_t below, size_t *at)
{
    int64_t sum = 0;
    size_t k = 0;
    while (k < d->funding_count && sum + d->fundings[k].cents <= below)
        sum += d->fundings[k++].cents;
    *at = k;
    if (sum >= below || k == d->funding_count)
        return true;
    if (!vec_room((void **)&d->fundings, &d->funding_cap, d->funding_count, sizeof *d->fundings, 4))
        return false;
    memmove(&d->fundings[k + 1], &d->fundings[k], (d->funding_count - k) * sizeof *d->fundings);
    d->funding_count++;
    d->fundings[k].cents = below - sum;
    d->fundings[k + 1].cents -= below - sum;
    *at = k + 1;
    return true;
}

/*
 * Gives `cents` back from d's fundings [from, to) alone, as give_back gives from a whole stack
 * (its uncovered parts first, then the sources that paid last); the others are set aside
 * meanwhile and put back around them. `cost`, `tax`: the charge's now (its tax part posted
 * follows what wallets still pay of it, covered_tax).
 */
static enum command_result give_back_within(struct wallet_book *b, struct customer_wallets *cw,
                                            struct store *st, struct command *cmd,
                                            struct charge_debit *d, size_t from, size_t to,
                                            int64_t cents, int64_t cost, int64_t tax,
                                            bool *expired_since)
{
    size_t high = d->funding_count - to;
    struct funding *low_aside = arena_alloc(cmd->arena, (from + 1) * sizeof *low_aside),
                   *high_aside = arena_alloc(cmd->arena, (high + 1) * sizeof *high_aside);
    if (!low_aside || !high_aside)
        return COMMAND_STORE_FAILED;
    int64_t all_covered = covered_cents(d);
    memcpy(low_aside, d->fundings, from * sizeof *d->fundings);
    memcpy(high_aside, &d->fundings[to], high * sizeof *d->fundings);
    memmove(d->fundings, &d->fundings[from], (to - from) * sizeof *d->fundings);
    d->funding_count = to - from;
    int64_t uncovered = 0, covered = covered_cents(d);
    for (size_t k = 0; k < d->funding_count; k++)
        if (d->fundings[k].kind == FUNDING_UNCOVERED)
            uncovered += d->fundings[k].cents;
    int64_t to_wallets = cents > uncovered ? cents - uncovered : 0;
    if (to_wallets > covered)
        to_wallets = covered;
    /* with no credits going back the tax part still moves (a cut the uncovered part takes:
     * give_back posts it on the wallet that paid last) */
    int64_t tax_back = d->posted_tax_cents - covered_tax(cost, tax, all_covered - to_wallets);
    enum command_result r =
        give_back(b, cw, st, cmd, d, cents, tax_back, to_wallets, expired_since);
    /* put back around what is left of the part, whatever give_back did */
    size_t part = d->funding_count;
    while (d->funding_cap < from + part + high)
        if (!vec_room((void **)&d->fundings, &d->funding_cap, d->funding_cap, sizeof *d->fundings,
                      4))
            return COMMAND_STORE_FAILED;
    memmove(&d->fundings[from], d->fundings, part * sizeof *d->fundings);
    memcpy(d->fundings, low_aside, from * sizeof *d->fundings);
    memcpy(&d->fundings[from + part], high_aside, high * sizeof *d->fundings);
    d->funding_count = from + part + high;
    return r;
}

/*
 * A re-pricing of u's charges whose period a wallet opened mid-way (`opening`: u's usage as it
 * stood then, priced as it is now). For each, with `now` the usage then at today's price and
 * `cost` the fee now:
 *  - the part above (the wallet's) is at most cost - now, what the units after the opening
 *    cost now: the excess is given back from the top's fundings alone (its uncovered parts
 *    first); a rise is debited after, as any re-pricing's (wallets_debit_raised);
 *  - the part below (the invoice's) becomes `now`: a raise is an uncovered part more at the
 *    bottom; a cut is given back from the bottom's fundings alone (uncovered first, then the
 *    wallets terminated before the opening).
 * So the wallet pays for the units after its opening alone, as a wallet opened after the change
 * would (an audit: a raise on 6 calls before the wallet was debited to it, 800 for a call of
 * 200). A charge the plan gained since, with no debit yet, is opened now as it would have been.
 * Sets *changed when a debit changed (to be written).
 */
static enum command_result reprice_opening(struct wallet_book *b, struct store *st,
                                           struct command *cmd, struct customer_wallets *cw,
                                           const struct usage *u, const struct usage *opening,
                                           int64_t mark, const struct usage_brought *brought,
                                           bool *changed, bool *expired_since)
{
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        int64_t open_now = 0;
        for (size_t k = 0; k < opening->charge_count; k++) {
            if (strcmp(opening->charges[k].lago_id, c->lago_id) != 0)
                continue;
            struct usage_brought was;
            if (!usage_charge_brought(opening, &opening->charges[k], &was))
                return fee_out_of_range(cmd);
            open_now = was.cost_cents;
            break;
        }
        int64_t cost = brought[i].cost_cents, tax = cost - brought[i].amount_cents;
        struct charge_debit *d = wallet_book_find_debit(cw, u->subscription_id, c->lago_id);
        bool current = d && wallet_book_debit_same_period(d, u->from);
        /* a charge debited from its first event of the period on is the wallets' whole */
        if (current && d->opened_event_id < 0 && d->charged_cents != 0)
            continue;
        int64_t share_now;
        if (__builtin_sub_overflow(cost, open_now, &share_now))
            return fee_out_of_range(cmd);
        if (share_now < 0)
            share_now = 0; /* less than the usage then: what falls below is the invoice's */
        if (current && d->opened_event_id >= 0 && d->opened_cents == open_now &&
            d->charged_cents -
                    (d->opened_cents < d->charged_cents ? d->opened_cents : d->charged_cents) <=
                share_now)
            continue;
        if (!current && open_now == 0)
            continue;
        if (!*changed && !wallet_book_touch(b, cw))
            return COMMAND_STORE_FAILED;
        *changed = true;
        if (!d && !(d = wallet_book_add_debit(cw, u->subscription_id, c->lago_id, u->from)))
            return COMMAND_STORE_FAILED;
        if (!current)
            wallet_book_debit_reset(d, u->from);
        if (d->opened_event_id < 0) { /* a charge the plan gained: nothing left to it yet */
            d->opened_event_id = mark;
            d->opened_cents = 0;
        }
        int64_t below = d->opened_cents < 0                  ? 0
                        : d->opened_cents < d->charged_cents ? d->opened_cents
                                                             : d->charged_cents;
        int64_t above = d->charged_cents - below;
        size_t at;
        enum command_result r = COMMAND_OK;
        if (above > share_now) { /* the wallet's part falls */
            if (!split_stack(d, below, &at))
                return COMMAND_STORE_FAILED;
            r = give_back_within(b, cw, st, cmd, d, at, d->funding_count, above - share_now, cost,
                                 tax, expired_since);
            if (r != COMMAND_OK)
                return r;
            d->charged_cents -= above - share_now;
        }
        int64_t delta;
        if (__builtin_sub_overflow(open_now, d->opened_cents, &delta))
            return fee_out_of_range(cmd);
        if (delta > 0) { /* the invoice's part rises: uncovered, at the bottom */
            if (__builtin_add_overflow(d->charged_cents, delta, &d->charged_cents))
                return fee_out_of_range(cmd);
            if (d->funding_count > 0 && d->fundings[0].kind == FUNDING_UNCOVERED) {
                d->fundings[0].cents += delta;
            } else {
                if (!vec_room((void **)&d->fundings, &d->funding_cap, d->funding_count,
                              sizeof *d->fundings, 4))
                    return COMMAND_STORE_FAILED;
                memmove(&d->fundings[1], d->fundings, d->funding_count * sizeof *d->fundings);
                d->funding_count++;
                d->fundings[0] = (struct funding){FUNDING_UNCOVERED, 0, 0, delta};
            }
        } else if (delta < 0 && below > 0) { /* falls: from the bottom's fundings alone */
            int64_t give = -delta < below ? -delta : below;
            if (!split_stack(d, below, &at))
                return COMMAND_STORE_FAILED;
            r = give_back_within(b, cw, st, cmd, d, 0, at, give, cost, tax, expired_since);
            if (r != COMMAND_OK)
                return r;
            d->charged_cents -= give;
        }
        d->opened_cents = open_now;
        d->dirty = true;
    }
    return COMMAND_OK;
}

bool wallets_opened_at(struct wallet_book *b, struct store *st, const struct usage *u,
                       int64_t *event_id)
{
    *event_id = -1;
    struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, u->customer_id);
    if (!cw)
        return false;
    for (size_t i = 0; i < cw->debit_count; i++) {
        const struct charge_debit *d = &cw->debits[i];
        if (d->subscription_id == u->subscription_id && wallet_book_debit_same_period(d, u->from) &&
            d->opened_event_id > *event_id)
            *event_id = d->opened_event_id;
    }
    return true;
}

enum command_result wallets_give_back(struct wallet_book *b, struct store *st, struct command *cmd,
                                      const struct usage *u, const struct usage_brought *brought,
                                      const struct usage *opening)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, u->customer_id);
    if (!cw)
        return COMMAND_STORE_FAILED;
    if (cw->debit_count == 0)
        return COMMAND_OK;
    if (cw->wallet_count > 0) { /* what came due before now happens first, as for a debit */
        if (!wallet_book_touch(b, cw))
            return COMMAND_STORE_FAILED;
        enum command_result r = wallet_clock_bring_up_to_date(st, cmd, cw);
        if (r != COMMAND_OK)
            return r;
    }
    bool changed = false, expired_since = false;
    int64_t mark;
    enum command_result r = COMMAND_OK;
    if (opening && wallets_opened_at(b, st, u, &mark) && mark >= 0)
        r = reprice_opening(b, st, cmd, cw, u, opening, mark, brought, &changed, &expired_since);
    if (r == COMMAND_OK)
        r = give_back_fallen(b, st, cmd, cw, u, brought);
    if (r != COMMAND_OK || !changed)
        return r;
    if (expired_since && cw->wallet_count > 0 &&
        (r = wallet_clock_bring_up_to_date(st, cmd, cw)) != COMMAND_OK)
        return r;
    if (!b->deferring)
        return wallet_book_flush_customer(st, cmd, cw);
    return wallet_book_mark_dirty(b, cw) ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* A usage's changes to the customer's wallets: written now, or, in a batch of events that
 * defers them, marked pending as of cmd->now for wallet_book_flush (recorded meanwhile by
 * wallet_book_journal). */
static enum command_result write_or_defer(struct wallet_book *b, struct store *st,
                                          struct command *cmd, struct customer_wallets *cw)
{
    if (!b->deferring)
        return wallet_book_flush_customer(st, cmd, cw);
    for (size_t i = 0; i < cw->wallet_count; i++)
        if (cw->wallets[i].dirty)
            cw->wallets[i].pending_at = cmd->now;
    return wallet_book_mark_dirty(b, cw) ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* settle_charge for u's i-th charge, to what it brings now (`brought`, usage_priced's). */
static enum command_result settle_usage_charge(struct wallet_book *b, struct store *st,
                                               struct command *cmd, struct customer_wallets *cw,
                                               const struct usage *u, size_t i,
                                               struct charge_debit *d,
                                               const struct usage_brought *brought,
                                               bool *expired_since)
{
    return settle_charge(b, st, cmd, cw, u, d, u->charges[i].metric_code, brought[i].cost_cents,
                         brought[i].cost_cents - brought[i].amount_cents, expired_since);
}

/* Whether charge debit d's fee falls to `cost` within its period: a step that gives back. */
static bool gives_back(const struct charge_debit *d, const struct usage *u, int64_t cost)
{
    return d && wallet_book_debit_same_period(d, u->from) && cost < d->charged_cents;
}

enum command_result wallets_give_back_first(struct wallet_book *b, struct store *st,
                                            struct command *cmd, const struct usage *u,
                                            int64_t customer_id,
                                            const struct usage_brought *brought)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, customer_id);
    if (!cw)
        return COMMAND_STORE_FAILED;
    bool any = false;
    for (size_t i = 0; cw->wallet_count > 0 && i < u->charge_count && !any; i++)
        any = gives_back(wallet_book_find_debit(cw, u->subscription_id, u->charges[i].lago_id), u,
                         brought[i].cost_cents);
    if (!any) /* the common case: nothing falls, or no wallet (wallets_debit_usage's) */
        return COMMAND_OK;
    if (!wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    enum command_result r = wallet_clock_bring_up_to_date(st, cmd, cw);
    bool expired_since = false;
    for (size_t i = 0; i < u->charge_count && r == COMMAND_OK; i++) {
        struct charge_debit *d =
            wallet_book_find_debit(cw, u->subscription_id, u->charges[i].lago_id);
        if (gives_back(d, u, brought[i].cost_cents))
            r = settle_usage_charge(b, st, cmd, cw, u, i, d, brought, &expired_since);
    }
    if (r == COMMAND_OK && expired_since) /* as wallets_debit_usage: expired at once */
        r = wallet_clock_bring_up_to_date(st, cmd, cw);
    return r;
}

enum command_result wallets_debit_usage(struct wallet_book *b, struct store *st,
                                        struct command *cmd, const struct usage *u,
                                        int64_t customer_id, const struct usage_brought *brought)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, customer_id);
    if (!cw)
        return COMMAND_STORE_FAILED;
    if (cw->wallet_count == 0)
        return cw->debit_count == 0 ? COMMAND_OK /* nothing to debit: the invoice charges it */
                                    : give_back_fallen(b, st, cmd, cw, u, brought);
    if (!wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    enum command_result r = wallet_clock_bring_up_to_date(st, cmd, cw);
    if (r != COMMAND_OK)
        return r;
    /* A charge the plan no longer has (removed, or replaced by one with a new id) brings
     * nothing to this period any more: what it debited goes back, as its replacement debits
     * the whole period from its first debit (an edit once charged those units twice). Given
     * back first, so that the replacement's debit can use it. */
    bool expired_since = false;
    struct charge_debit **order = wallet_book_debits_in_order(cw); /* as give_back_fallen */
    if (cw->debit_count > 0 && !order)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < cw->debit_count && r == COMMAND_OK; i++)
        if (is_orphan(order[i], u))
            r = settle_charge(b, st, cmd, cw, u, order[i], NULL, 0, 0, &expired_since);
    free(order);
    if (r != COMMAND_OK)
        return r;
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
#ifndef NDEBUG
        struct usage_brought now; /* the caller's prices are this state's */
        assert(usage_charge_brought(u, c, &now) && now.amount_cents == brought[i].amount_cents &&
               now.cost_cents == brought[i].cost_cents);
#endif
        struct charge_debit *d = wallet_book_find_debit(cw, u->subscription_id, c->lago_id);
        if (!d && !(d = wallet_book_add_debit(cw, u->subscription_id, c->lago_id, u->from)))
            return COMMAND_STORE_FAILED;
        r = settle_usage_charge(b, st, cmd, cw, u, i, d, brought, &expired_since);
        /* where the balance first crosses a rule, charge by charge: its granted top-up pays
         * the subscription's next charges (an audit found a hard wallet refuse, for ever, a
         * batch over two charges of one subscription that the top-up would have paid, and
         * another wallet leave the second charge to the invoice); not while credits given
         * back wait to expire (below) */
        if (r == COMMAND_OK && !expired_since)
            r = wallet_clock_fire_thresholds(st, cmd, cw, true);
        if (r != COMMAND_OK)
            return r;
    }
    /* credits given back to a grant past its expiry expire now, before thresholds read the
     * balance (a credit is never spendable, nor shown, past its expiry); then the rules look,
     * unless the last charge's look above saw the balance as it is (a usage: Lago checks its
     * rules) */
    if (expired_since && (r = wallet_clock_bring_up_to_date(st, cmd, cw)) != COMMAND_OK)
        return r;
    if (expired_since || u->charge_count == 0)
        r = wallet_clock_fire_thresholds(st, cmd, cw, true);
    return r == COMMAND_OK ? write_or_defer(b, st, cmd, cw) : r;
}

enum command_result wallets_debit_raised(struct wallet_book *b, struct store *st,
                                         struct command *cmd, const struct usage *u,
                                         const struct usage_brought *brought)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, u->customer_id);
    if (!cw)
        return COMMAND_STORE_FAILED;
    if (cw->wallet_count == 0)
        return COMMAND_OK;
    bool rose = false;
    for (size_t i = 0; i < u->charge_count && !rose; i++) {
        const struct charge_debit *d =
            wallet_book_find_debit(cw, u->subscription_id, u->charges[i].lago_id);
        int64_t charged = d && wallet_book_debit_same_period(d, u->from) ? d->charged_cents : 0;
        rose = brought[i].cost_cents > charged; /* a charge gained: all it brings */
    }
    if (!rose)
        return COMMAND_OK;
    bool was = cmd->settling_periods;
    cmd->settling_periods = true; /* never refused: what credits cannot pay is the invoice's */
    enum command_result r = wallets_debit_usage(b, st, cmd, u, u->customer_id, brought);
    cmd->settling_periods = was;
    return r;
}

enum command_result wallets_refused_usage(struct wallet_book *b, struct store *st,
                                          struct command *cmd)
{
    if (!cmd->short_wallet_lago_id[0])
        return COMMAND_OK;
    struct store_wallet row;
    enum store_status s =
        store_wallet_get(store_conn(st), cmd->org_id, cmd->short_wallet_lago_id, &row, cmd->arena);
    if (s == STORE_NOT_FOUND)
        return COMMAND_OK;
    if (s != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* a command of its own for the book: its customer is touched (and snapshot) afresh, so
     * that a failure from here puts it back as the refusal left it */
    wallet_book_mark_command(b, b->deferring);
    struct customer_wallets *cw = wallet_book_customer(b, st, cmd->org_id, row.customer_id);
    if (!cw || !wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    int made = cmd->rule_credits_made;
    enum command_result r = wallet_clock_bring_up_to_date(st, cmd, cw);
    if (r == COMMAND_OK)
        r = wallet_clock_fire_thresholds(st, cmd, cw, true);
    if (r != COMMAND_OK)
        return r;
    cmd->short_kept_credits = cmd->rule_credits_made > made; /* the 402 says so */
    return write_or_defer(b, st, cmd, cw);
}

/* The wallet a hold's answer shows its credits in (NULL: none could pay). */
static void show_payer(struct command *cmd, const struct live_wallet *w)
{
    cmd->has_payer = w != NULL;
    if (!w)
        return;
    memcpy(cmd->wallet_lago_id, w->row.lago_id, sizeof cmd->wallet_lago_id);
    cmd->payer_rate_amount = w->row.rate_amount;
    memcpy(cmd->payer_currency, w->row.currency, sizeof cmd->payer_currency);
}

/*
 * Reserves each charge's part in the wallets that may pay for that charge, in payer order, as
 * the debit would take it (a part another charge's payers cannot reach is not held by the
 * event's: found by an audit, a hold on one metric reserved another charge's owed tax in a
 * wallet that may not pay it, and its capture left it to the invoice past a hard limit).
 * reserved[k] is what cw->wallets[k] holds; false if a part does not fit.
 */
static bool reserve_parts(const struct customer_wallets *cw, const struct store_authorization *a,
                          const struct wallets_hold_part *parts, size_t part_count, tally_time now,
                          int64_t *reserved)
{
    for (size_t p = 0; p < part_count; p++) {
        struct live_wallet *payers[WALLET_PER_CUSTOMER_MAX * 2];
        size_t n = 0;
        int64_t left = parts[p].cents;
        for (size_t k = 0; left > 0 && k < cw->wallet_count && n < WALLET_PER_CUSTOMER_MAX * 2; k++)
            if (pays_for(&cw->wallets[k], a->currency, parts[p].metric_code, now))
                payers[n++] = &cw->wallets[k];
        qsort(payers, n, sizeof payers[0], payer_compare);
        /* as debit() takes: every payer's live credits, then soft wallets' overdrafts */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t j = 0; j < n && left > 0; j++) {
                size_t k = (size_t)(payers[j] - cw->wallets);
                int64_t spend = spendable(payers[j], now), live = live_unheld(payers[j], now);
                int64_t can = (pass == 0 && live < spend ? live : spend) - reserved[k];
                int64_t take = can < left ? (can > 0 ? can : 0) : left;
                reserved[k] += take;
                left -= take;
            }
        }
        if (left > 0)
            return false;
    }
    return true;
}

enum command_result wallets_hold(struct wallet_book *b, struct store *st, struct command *cmd,
                                 struct store_authorization *a, const char *metric_code,
                                 const struct wallets_hold_part *parts, size_t part_count)
{
    struct customer_wallets *cw = NULL;
    enum command_result due = wallets_up_to_date(b, st, cmd, a->org_id, a->customer_id, &cw);
    if (due != COMMAND_OK)
        return due;
    int64_t *reserved = arena_alloc(cmd->arena, (cw->wallet_count + 1) * sizeof *reserved);
    if (!reserved)
        return COMMAND_STORE_FAILED;
    memset(reserved, 0, (cw->wallet_count + 1) * sizeof *reserved);
    const struct live_wallet *first = NULL; /* the event's own metric's first payer */
    for (size_t k = 0; k < cw->wallet_count; k++) {
        const struct live_wallet *w = &cw->wallets[k];
        if (pays_for(w, a->currency, metric_code, cmd->now) &&
            (!first || payer_compare(&w, &first) < 0))
            first = w;
    }
    bool authorized = first && reserve_parts(cw, a, parts, part_count, cmd->now, reserved);
    a->status = authorized ? AUTHORIZATION_AUTHORIZED : AUTHORIZATION_DECLINED;
    /* the parts are known before anything is written: the hold is saved once, with what it
     * holds, and its id keys the parts. Its answer shows the holding wallet made first, as a
     * later read of the hold does (declined, or nothing held: the first payer). */
    int64_t held = 0;
    const struct live_wallet *shown = NULL;
    for (size_t k = 0; authorized && k < cw->wallet_count; k++) {
        held += reserved[k];
        if (reserved[k] > 0 && (!shown || cw->wallets[k].row.id < shown->row.id))
            shown = &cw->wallets[k];
    }
    if (!shown)
        shown = first;
    a->held_cents = held;
    a->payer_wallet_id = shown ? shown->row.id : 0;
    show_payer(cmd, shown);
    if (store_authorization_save(st, a) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* declined: recorded, nothing reserved; a usage all the same, which the rules see */
    for (size_t k = 0; authorized && k < cw->wallet_count; k++) {
        enum command_result r = reserved[k] > 0
                                    ? wallet_book_hold(st, cmd, &cw->wallets[k], a->id, reserved[k])
                                    : COMMAND_OK;
        if (r != COMMAND_OK)
            return r;
    }
    enum command_result fired = wallet_clock_fire_thresholds(st, cmd, cw, true);
    if (fired != COMMAND_OK)
        return fired;
    if (!b->deferring)
        return wallet_book_flush_customer(st, cmd, cw);
    /* the hold's postings are written; the wallet row waits for the flush, its held cents in
     * the journal meanwhile */
    return wallet_book_mark_dirty(b, cw) ? COMMAND_OK : COMMAND_STORE_FAILED;
}

enum command_result wallets_capture_done(struct wallet_book *b, struct store *st,
                                         struct command *cmd, const struct store_authorization *a)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, a->org_id, a->customer_id);
    if (!cw || !wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &cw->wallets[i];
        /* what its hold released and the capture did not spend repays an overdraft first:
         * listed before (a repayment may take a grant out of the list) */
        struct wallet_grant *left = arena_alloc(cmd->arena, (w->grant_count + 1) * sizeof *left);
        if (!left)
            return COMMAND_STORE_FAILED;
        size_t count = 0;
        for (int paid = 1; paid >= 0; paid--) /* paid credits first: they roll over first */
            for (size_t k = 0; k < w->grant_count; k++)
                if (w->grants[k].paid == paid && w->grants[k].capturing_cents > 0)
                    left[count++] = w->grants[k];
        for (size_t k = 0; k < w->grant_count; k++) {
            w->grants[k].capturing_cents = 0;
            w->grants[k].capturing_at_rollover = false;
        }
        if (w->row.has_terminated_at)
            continue;
        enum command_result r = COMMAND_OK;
        for (size_t k = 0; k < count && r == COMMAND_OK; k++)
            r = wallet_book_give_back_held(st, cmd, cw, w, left[k].id, left[k].capturing_cents,
                                           left[k].capturing_at_rollover, a->id,
                                           LEDGER_CAUSE_CAPTURE);
        /* (every wallet: a refund step of the capture may have given credits back to a grant
         * past its expiry) */
        if (r == COMMAND_OK)
            r = wallet_book_expire_unheld(st, cmd, w, cmd->now + 1);
        if (r != COMMAND_OK)
            return r;
    }
    return wallet_book_settle_customer(b, st, cmd, cw);
}

static int32_t currency_exponent(const char *code)
{
    const struct currency *c = currency_find(code, strlen(code));
    return c ? c->exponent : 2;
}

/* Cents of the wallet as credits, as the API shows them ("8.0"). */
static void credits_text(const struct live_wallet *w, int64_t cents, char text[MONEY_TEXT_MAX])
{
    money_t credits;
    if (wallet_cents_to_credits(cents, w->row.rate_amount, currency_exponent(w->row.currency),
                                &credits) != MONEY_OK)
        credits = money_from_int(0); /* a stored rate is > 0: cannot happen */
    money_format_fraction(money_normalize(credits), 1, text, MONEY_TEXT_MAX);
}

/* A void that would take credits open holds reserve: 422, saying how many are held. */
static enum command_result refuse_held(struct command *cmd, const struct live_wallet *w,
                                       int64_t unheld)
{
    char held[MONEY_TEXT_MAX], most[MONEY_TEXT_MAX];
    credits_text(w, w->row.held_cents, held);
    credits_text(w, unheld, most);
    command_set_message(cmd,
                        "%s credits of this wallet are held by open authorizations: at most %s "
                        "credits can be voided; nothing was changed",
                        held, most);
    return refuse(cmd, "voided_credits", "credits_are_held");
}

/*
 * A pending purchase, paid: its credits arrive now (the purchase posting, repaying an
 * overdraft first, as a grant does), and the payment relieves what was receivable for them
 * (cash for receivable), so receivable holds only what is owed.
 */
static enum command_result settle_purchase(struct store *st, struct command *cmd,
                                           struct customer_wallets *cw, struct live_wallet *w,
                                           struct store_wallet_transaction *t)
{
    int64_t cents = t->amount_cents;
    int64_t repay = w->row.overdrawn_cents < cents ? w->row.overdrawn_cents : cents;
    t->state = WALLET_TX_SETTLED;
    t->remaining_cents = cents - repay;
    t->has_settled_at = true;
    t->settled_at = cmd->now;
    if (store_wallet_transaction_set_state(st, t) != STORE_OK)
        return COMMAND_STORE_FAILED;
    enum command_result r = wallet_book_credit(st, cmd, cw, w, t, repay);
    if (r != COMMAND_OK)
        return r;
    struct ledger_posting p;
    ledger_posting_init(&p, LEDGER_CAUSE_PAYMENT);
    if (!ledger_posting_move(&p, LEDGER_RECEIVABLE, LEDGER_CASH, cents))
        return COMMAND_STORE_FAILED; /* cents <= WALLET_BALANCE_MAX_CENTS: cannot be */
    return wallet_book_post(st, cmd, w, t->id, cmd->now, &p);
}

/* An amount given (`has`) of some credits that come to no cents at the wallet's rate: refused
 * (amount_rounds_to_zero). Credits that floor to none at 5 decimals ("0.000001") are no
 * amount, as Lago's top-up reads them (`floor(5)`, then `return if zero?`): nothing is made,
 * where an audit found them refused. */
static bool rounds_to_zero(bool has, money_t credits, int64_t cents)
{
    return has && money_sign(credits) > 0 && cents == 0 && !wallet_credits_floor_to_zero(credits);
}

/* Paid, granted and voided credits of one request, in that order (Lago's); a new wallet's
 * first ones (new_wallet: it is saved with them, even with none). */
static enum command_result move_credits(struct store *st, struct command *cmd,
                                        struct customer_wallets *cw, struct live_wallet *w,
                                        const struct wallet_credits *cr, bool new_wallet)
{
    int32_t exponent = currency_exponent(w->row.currency);
    int64_t paid = 0, granted = 0, voided = 0;
    enum money_status ms;
    /* more credits than Tally counts: said so, as no wallet's bound at its rate is the reason */
    const char *uncountable = cr->has_paid && !wallet_credits_countable(cr->paid) ? "paid_credits"
                              : cr->has_granted && !wallet_credits_countable(cr->granted)
                                  ? "granted_credits"
                                  : NULL;
    if (uncountable) {
        command_set_message(cmd,
                            "%s is more credits than Tally counts, at most " WALLET_CREDITS_MAX_TEXT
                            "; nothing was recorded",
                            uncountable);
        return refuse(cmd, uncountable, "value_is_out_of_range");
    }
    /* an amount past what a wallet holds is refused as such, with how much fits */
    if (cr->has_paid &&
        (ms = wallet_credits_to_cents(cr->paid, w->row.rate_amount, exponent, &paid)) != MONEY_OK)
        return ms == MONEY_ERR_OVERFLOW && money_sign(cr->paid) > 0
                   ? wallet_book_check_credits(st, cmd, w, true, 0, INT64_MAX, "paid_credits")
                   : refuse(cmd, "paid_credits", "invalid_paid_credits");
    if (paid < 0)
        return refuse(cmd, "paid_credits", "invalid_paid_credits");
    if (cr->has_granted && (ms = wallet_credits_to_cents(cr->granted, w->row.rate_amount, exponent,
                                                         &granted)) != MONEY_OK)
        return ms == MONEY_ERR_OVERFLOW && money_sign(cr->granted) > 0
                   ? wallet_book_check_credits(st, cmd, w, false, 0, INT64_MAX, "granted_credits")
                   : refuse(cmd, "granted_credits", "invalid_granted_credits");
    if (granted < 0)
        return refuse(cmd, "granted_credits", "invalid_granted_credits");
    if ((cr->has_voided &&
         wallet_credits_to_cents(cr->voided, w->row.rate_amount, exponent, &voided) != MONEY_OK) ||
        voided < 0)
        return refuse(cmd, "voided_credits", "invalid_voided_credits");
    /* named by the field that rounds to zero, as Lago's validator does (an audit found all
     * three under `amount`: with several amounts a client could not tell which to fix) */
    if (rounds_to_zero(cr->has_paid, cr->paid, paid))
        return refuse(cmd, "paid_credits", "amount_rounds_to_zero");
    if (rounds_to_zero(cr->has_granted, cr->granted, granted))
        return refuse(cmd, "granted_credits", "amount_rounds_to_zero");
    if (rounds_to_zero(cr->has_voided, cr->voided, voided))
        return refuse(cmd, "voided_credits", "amount_rounds_to_zero");
    /* A void takes only credits no open hold reserves (`unheld`): not the grants' held parts,
     * and not what holds reserve on no grant beyond a soft wallet's overdraft left (those
     * holds' parts from before reservations were per grant). */
    int64_t unheld = voidable_unheld(w, cmd->now), voidable = wallet_book_grants_total(w);
    /* voided_transaction_id: from that grant, all of what is left of it unless voided_credits
     * says how much */
    int64_t void_grant = 0;
    if (cr->voided_transaction_lago_id) {
        struct store_wallet_transaction g;
        enum store_status s = store_wallet_transaction_get(
            store_conn(st), cmd->org_id, cr->voided_transaction_lago_id, &g, cmd->arena);
        if (s == STORE_ERROR)
            return COMMAND_STORE_FAILED;
        const struct wallet_grant *live =
            s == STORE_OK && g.wallet_id == w->row.id ? wallet_book_live_grant(w, g.id) : NULL;
        if (!live)
            return refuse(cmd, "voided_transaction_id", "no_remaining_amount");
        void_grant = live->id;
        voidable = live->remaining_cents;
        if (wallet_grant_past_expiry(live, cmd->now))
            unheld = 0; /* all it kept past its expiry is held */
        else if (unheld > wallet_grant_unheld(live))
            unheld = wallet_grant_unheld(live);
        if (!cr->has_voided)
            voided = voidable;
    }
    if (voided > voidable)
        return refuse(cmd, "voided_credits", "insufficient_credits");
    if (voided > unheld)
        return refuse_held(cmd, w, unheld);
    /* A top-up that moves nothing (no amount, or zeros) is no transaction, as Lago's skips a
     * zero amount: the wallet is not even saved, so no threshold rule fires and updated_at
     * stays (an audit found such a request refused paid_credits: value_is_mandatory). */
    if (paid == 0 && granted == 0 && voided == 0 && !new_wallet)
        return COMMAND_OK;
    /* What comes in must fit the wallet (WALLET_BALANCE_MAX_CENTS, WALLET_LIFETIME_MAX_CENTS)
     * and the organization's account it enters the ledger by: checked before anything
     * changes, paid credits first, then granted ones on top of them (voids come last). */
    enum command_result r = wallet_book_check_top_up(st, cmd, w, paid, granted);
    if (r != COMMAND_OK)
        return r;
    if (paid > 0)
        r = wallet_book_add_credits(st, cmd, cw, w, true, paid, cr,
                                    cr->invoice_requires_successful_payment, WALLET_SOURCE_MANUAL,
                                    NULL);
    if (r == COMMAND_OK && granted > 0)
        r = wallet_book_add_credits(st, cmd, cw, w, false, granted, cr, false, WALLET_SOURCE_MANUAL,
                                    NULL);
    if (r == COMMAND_OK && voided > 0 &&
        (r = wallet_book_void_credits(st, cmd, w, void_grant, voided, cr)) == COMMAND_OK) {
        /* voided credits are consumed now, as Lago's void (Wallets::Balance::DecreaseService)
         * counts them; a termination's void is not one of these: Lago's terminated wallet
         * keeps its credits, its consumption and its last_consumed_credit_at (an audit found
         * voids counted as consumed with no time of last consumption) */
        w->row.has_last_consumed_at = true;
        w->row.last_consumed_at = cmd->now;
    }
    if (r != COMMAND_OK)
        return r;
    w->row.balance_cents = wallet_book_grants_total(w) - w->row.overdrawn_cents;
    w->row.updated_at = cmd->now;
    if (store_wallet_save(st, &w->row) != STORE_OK)
        return COMMAND_STORE_FAILED;
    enum command_result fired =
        wallet_clock_fire_thresholds(st, cmd, cw, false); /* a void may bring one due */
    if (fired != COMMAND_OK)
        return fired;
    return wallet_book_flush_customer(st, cmd, cw); /* fundings that changed hands, balances */
}

/* The customer's live wallet with that lago id, loading the customer if needed. */
static enum command_result live_wallet_of(struct wallet_book *b, struct store *st,
                                          struct command *cmd, const char *lago_id,
                                          struct customer_wallets **cw_out,
                                          struct live_wallet **w_out)
{
    struct store_wallet row;
    enum store_status s = store_wallet_get(store_conn(st), cmd->org_id, lago_id, &row, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    if (row.has_terminated_at)
        return refuse(cmd, "wallet_id", "wallet_is_terminated");
    struct customer_wallets *cw = NULL;
    enum command_result r = wallets_up_to_date(b, st, cmd, cmd->org_id, row.customer_id, &cw);
    if (r != COMMAND_OK)
        return r;
    struct live_wallet *w = wallet_book_wallet(cw, row.id);
    if (!w) /* active on disk but not loaded: cannot be */
        return COMMAND_STORE_FAILED;
    if (w->row.has_terminated_at) /* it expired just now */
        return refuse(cmd, "wallet_id", "wallet_is_terminated");
    *cw_out = cw;
    *w_out = w;
    return COMMAND_OK;
}

/* Whether one of the customer's active wallets at `now` has the code (a terminated one may stay
 * in the book until its batch is committed: wallet_book_committed). */
static bool code_taken(const struct customer_wallets *cw, const char *code, tally_time now)
{
    for (size_t i = 0; i < cw->wallet_count; i++)
        if (usable(&cw->wallets[i], now) && strcmp(cw->wallets[i].row.code, code) == 0)
            return true;
    return false;
}

/* The customer's active wallets at `now`, as code_taken counts them. */
static size_t active_count(const struct customer_wallets *cw, tally_time now)
{
    size_t n = 0;
    for (size_t i = 0; i < cw->wallet_count; i++)
        n += usable(&cw->wallets[i], now);
    return n;
}

/*
 * A free code for a wallet whose code Tally made from its name (the client sent none) and
 * that is taken: Lago's `<code>_<unix seconds>`, then `_2`, `_3`, ... after that while it is
 * taken too (an audit found the third wallet made within one second refused
 * value_already_exist, a field its client never sent). The base is shortened so that the
 * code stays within WALLET_CODE_MAX and can be sent back (it is ASCII: code_from_name). On the
 * arena; NULL if out of memory.
 */
_Static_assert(WALLET_PER_CUSTOMER_MAX + 2 <= 9, "free_code's counters are one digit");

static const char *free_code(const struct customer_wallets *cw, const char *base, tally_time now,
                             struct arena *a)
{
    char *code = arena_alloc(a, WALLET_CODE_MAX + 1);
    if (!code)
        return NULL;
    long long seconds = (long long)(now / 1000000);
    /* the customer has fewer than WALLET_PER_CUSTOMER_MAX wallets, and the codes of the
     * counters 2 to WALLET_PER_CUSTOMER_MAX + 2 (one digit: one length) differ in their last
     * character, so one of them is free */
    for (int n = 1; n <= WALLET_PER_CUSTOMER_MAX + 2; n++) {
        char suffix[48];
        if (n == 1)
            snprintf(suffix, sizeof suffix, "_%lld", seconds);
        else
            snprintf(suffix, sizeof suffix, "_%lld_%d", seconds, n);
        size_t room = WALLET_CODE_MAX - strlen(suffix), len = strlen(base);
        snprintf(code, WALLET_CODE_MAX + 1, "%.*s%s", (int)(len < room ? len : room), base, suffix);
        if (!code_taken(cw, code, now))
            return code;
    }
    assert(!"free_code: one of the counters is always free");
    return NULL;
}

/*
 * A threshold rule new or changed has not fired for the balance its wallet is at: it fires at
 * the next command that leaves the balance at or below it, as Lago's fires at the next usage
 * it sees, so a wallet made empty and funded by the next request does not fire first (found
 * by a black-box audit: it waited for the balance to rise above the threshold first). The
 * wallet's row keeps it (rule_unfired, saved by the caller), as a load takes a rule that is
 * due for fired.
 */
static void arm_new_rule(struct live_wallet *w)
{
    if (w->has_rule && !w->rule_interval_trigger)
        w->rule_armed = w->row.rule_unfired = true;
}

/*
 * Whether every billable metric the wallet's applies_to names still exists: the API checked them
 * when it read the request, and a rename or deletion may have come between (it retargets stored
 * wallets only). Refused as the API refuses an unknown code, else the wallet would name a code
 * no metric has, which a metric made later with it would take over.
 */
static enum command_result check_metrics(struct store *st, struct command *cmd,
                                         const struct live_wallet *w)
{
    for (size_t i = 0; i < w->metric_code_count; i++) {
        struct catalog_item metric;
        enum store_status s =
            store_catalog_get(store_conn(st), cmd->org_id, CATALOG_BILLABLE_METRIC,
                              w->metric_codes[i], &metric, cmd->arena);
        if (s == STORE_ERROR)
            return COMMAND_STORE_FAILED;
        if (s == STORE_NOT_FOUND) {
            command_set_message(cmd,
                                "billable_metric_codes: no billable metric has the code \"%s\" "
                                "(renamed or deleted meanwhile)",
                                w->metric_codes[i]);
            return refuse(cmd, "applies_to", "invalid_limitations");
        }
    }
    return COMMAND_OK;
}

static enum command_result apply_create(struct wallet_book *b, struct store *st,
                                        struct command *cmd)
{
    struct wallet_request *req = &cmd->as.wallet_create;
    struct customer customer;
    enum store_status s = store_customer_get(store_conn(st), cmd->org_id, req->external_customer_id,
                                             &customer, cmd->arena);
    if (s != STORE_OK) /* Lago's Wallets::ValidateService: a field of the request */
        return s == STORE_NOT_FOUND ? refuse(cmd, "customer", "customer_not_found")
                                    : COMMAND_STORE_FAILED;
    const char *currency = customer.text[CUSTOMER_CURRENCY];
    if (currency && strcmp(currency, req->wallet.currency) != 0)
        return refuse(cmd, "currency", "currencies_does_not_match");
    /* a wallet past its expiration_at ends first, as the sweep would end it: its code is free
     * and it counts no more, whether the sweep came yet or not */
    struct customer_wallets *cw = NULL;
    enum command_result due = wallets_up_to_date(b, st, cmd, cmd->org_id, customer.id, &cw);
    if (due != COMMAND_OK)
        return due;
    if (active_count(cw, cmd->now) >= WALLET_PER_CUSTOMER_MAX)
        return refuse(cmd, "customer", "wallet_limit_reached");
    struct store_wallet w = req->wallet;
    if (code_taken(cw, w.code, cmd->now)) {
        if (!req->code_generated)
            return refuse(cmd, "code", "value_already_exist");
        if (!(w.code = free_code(cw, w.code, cmd->now, cmd->arena)))
            return COMMAND_STORE_FAILED;
    }
    if (!currency) { /* Lago: a wallet gives a customer without one its currency */
        customer.text[CUSTOMER_CURRENCY] = req->wallet.currency;
        customer.updated_at = cmd->now;
        if (store_customer_save(st, &customer) != STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    w.org_id = cmd->org_id;
    w.customer_id = customer.id;
    w.created_at = w.updated_at = cmd->now;
    if (!(command_new_id(cmd, w.lago_id), true) || store_wallet_save(st, &w) != STORE_OK)
        return COMMAND_STORE_FAILED;
    memcpy(cmd->wallet_lago_id, w.lago_id, sizeof w.lago_id);
    /* Loaded back whole (with its terms), so memory holds what the disk holds. */
    if (!wallet_book_forget(b, customer.id))
        return COMMAND_STORE_FAILED; /* stuck: its debits wait for their write-out */
    struct live_wallet *live;
    enum command_result r = live_wallet_of(b, st, cmd, w.lago_id, &cw, &live);
    if (r == COMMAND_OK)
        r = check_metrics(st, cmd, live);
    if (r != COMMAND_OK)
        return r;
    if (!wallet_clock_schedule(live, cmd->now)) /* saved with its first credits */
        return zone_lost(cmd);
    live->row.rule_unfired = live->has_rule && !live->rule_interval_trigger; /* saved with them */
    r = move_credits(st, cmd, cw, live, &req->credits, true);
    arm_new_rule(live); /* after its first credits: their command does not fire it */
    return r;
}

static bool same_rule(const struct wallet_rule *a, const struct wallet_rule *b)
{
    return a->method == b->method && a->threshold_cents == b->threshold_cents &&
           a->paid_cents == b->paid_cents && a->granted_cents == b->granted_cents &&
           a->target_cents == b->target_cents &&
           a->grants_target_top_up == b->grants_target_top_up &&
           a->ignore_paid_top_up_limits == b->ignore_paid_top_up_limits;
}

/* Whether two versions of a wallet have the same terms (what an update may change). */
static bool same_terms(const struct store_wallet *a, const struct store_wallet *b)
{
    return text_same(a->code, b->code) && text_same(a->name, b->name) &&
           a->priority == b->priority && a->limit == b->limit &&
           a->overdraft_limit_cents == b->overdraft_limit_cents &&
           a->has_expiration_at == b->has_expiration_at &&
           (!a->has_expiration_at || a->expiration_at == b->expiration_at) &&
           text_same(a->terms_json, b->terms_json);
}

/* Whether new terms would leave open holds reserving more than the wallet can pay (a smaller
 * overdraft, or none, where holds reserve it): a hold is a promise to its merchant, kept until
 * it settles. Sets the refusal's message when so. */
static bool takes_held_credits(struct command *cmd, const struct live_wallet *w,
                               const struct store_wallet *terms)
{
    if (w->row.held_cents == 0)
        return false;
    struct live_wallet after = *w; /* the same grants, under the new terms */
    after.row.limit = terms->limit;
    after.row.overdraft_limit_cents = terms->overdraft_limit_cents;
    /* what holds reserve of the overdraft stays the overdraft's: other credits are not theirs */
    int64_t on_overdraft = wallet_book_held_elsewhere(w) < overdraft_left(&w->row)
                               ? wallet_book_held_elsewhere(w)
                               : overdraft_left(&w->row);
    if (overdraft_left(&after.row) >= on_overdraft && unreserved(&after, cmd->now) >= 0)
        return false;
    char held[MONEY_TEXT_MAX];
    credits_text(w, w->row.held_cents, held);
    command_set_message(cmd,
                        "%s credits of this wallet are held by open authorizations, which these "
                        "terms would no longer cover; capture or void them first. Nothing was "
                        "changed",
                        held);
    return true;
}

/* What a wallet pays for (applies_to), copied into the command's arena: the book's copy goes
 * when the wallet is loaded again. */
struct applies_to_copy {
    unsigned fee_types;
    const char **codes;
    size_t count;
    bool metrics_deleted;
};

static bool applies_to_copy(struct command *cmd, const struct live_wallet *w,
                            struct applies_to_copy *out)
{
    *out = (struct applies_to_copy){w->fee_types, NULL, w->metric_code_count, w->metrics_deleted};
    if (w->metric_code_count == 0)
        return true;
    out->codes = arena_alloc(cmd->arena, w->metric_code_count * sizeof *out->codes);
    for (size_t i = 0; out->codes && i < w->metric_code_count; i++)
        if (!(out->codes[i] =
                  arena_strndup(cmd->arena, w->metric_codes[i], strlen(w->metric_codes[i]))))
            return false;
    return out->codes != NULL;
}

static bool has_code(const char *const *codes, size_t count, const char *code)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(codes[i], code) == 0)
            return true;
    return false;
}

/* Whether the wallet pays for what it did: the same fee types and set of metric codes (in any
 * order, repeated or not). */
static bool same_applies_to(const struct applies_to_copy *was, const struct live_wallet *w)
{
    if (was->fee_types != w->fee_types || was->metrics_deleted != w->metrics_deleted)
        return false;
    for (size_t i = 0; i < was->count; i++)
        if (!has_code(w->metric_codes, w->metric_code_count, was->codes[i]))
            return false;
    for (size_t i = 0; i < w->metric_code_count; i++)
        if (!has_code(was->codes, was->count, w->metric_codes[i]))
            return false;
    return true;
}

static enum command_result apply_update(struct wallet_book *b, struct store *st,
                                        struct command *cmd)
{
    struct wallet_update *u = &cmd->as.wallet_update;
    struct customer_wallets *cw;
    struct live_wallet *w;
    enum command_result r = live_wallet_of(b, st, cmd, u->wallet.lago_id, &cw, &w);
    if (r != COMMAND_OK)
        return r;
    if (!same_terms(&w->row, &u->read))
        return COMMAND_STALE;
    struct store_wallet row = w->row; /* balances as the writer has them */
    if (strcmp(u->wallet.code, row.code) != 0 && code_taken(cw, u->wallet.code, cmd->now))
        return refuse(cmd, "code", "value_already_exist");
    row.code = u->wallet.code;
    row.name = u->wallet.name;
    row.priority = u->wallet.priority;
    row.limit = u->wallet.limit;
    row.overdraft_limit_cents = u->wallet.overdraft_limit_cents;
    row.has_expiration_at = u->wallet.has_expiration_at;
    row.expiration_at = u->wallet.expiration_at;
    row.terms_json = u->wallet.terms_json;
    row.updated_at = cmd->now;
    if (row.limit == WALLET_LIMIT_SOFT && row.overdrawn_cents > row.overdraft_limit_cents) {
        command_set_message(cmd,
                            "the wallet owes %s credits of overdraft already: overdraft_credits "
                            "cannot be less until credits repay it",
                            wallet_book_credits_text(cmd, w, row.overdrawn_cents, false));
        return refuse(cmd, "overdraft_credits", "value_is_out_of_range");
    }
    if (row.limit != WALLET_LIMIT_SOFT && row.overdrawn_cents > 0) {
        command_set_message(cmd,
                            "the wallet owes %s credits of overdraft: it stays soft until "
                            "credits repay it",
                            wallet_book_credits_text(cmd, w, row.overdrawn_cents, false));
        return refuse(cmd, "limit", "wallet_is_overdrawn");
    }
    if (takes_held_credits(cmd, w, &row))
        return refuse(cmd, row.limit == WALLET_LIMIT_SOFT ? "overdraft_credits" : "limit",
                      "credits_are_held");
    struct applies_to_copy was;
    if (!applies_to_copy(cmd, w, &was) || store_wallet_save(st, &row) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* the reminders sent were for the old date: a new one is reminded anew, as a rollover's */
    if ((w->row.has_expiration_at != row.has_expiration_at ||
         (row.has_expiration_at && w->row.expiration_at != row.expiration_at)) &&
        store_wallet_expiry_moved(st, row.id, w->row.has_expiration_at, w->row.expiration_at,
                                  row.has_expiration_at, row.expiration_at) != STORE_OK)
        return COMMAND_STORE_FAILED;
    bool had_threshold = w->has_rule && !w->rule_interval_trigger;
    struct wallet_rule old_rule = w->rule;
    int64_t held = row.held_cents;
    memcpy(cmd->wallet_lago_id, row.lago_id, sizeof row.lago_id);
    if (!wallet_book_forget(b, row.customer_id)) /* its terms changed: loaded again */
        return COMMAND_STORE_FAILED;
    /* and its rule's next anniversary follows the new terms */
    if ((r = live_wallet_of(b, st, cmd, row.lago_id, &cw, &w)) != COMMAND_OK)
        return r;
    if (!same_applies_to(&was, w) && (r = check_metrics(st, cmd, w)) != COMMAND_OK)
        return r;
    /* an open hold's credits were reserved for its metric: the wallet keeps paying for what it
     * did until they settle (the savepoint takes the row back) */
    if (held > 0 && !same_applies_to(&was, w)) {
        cmd->invalid_message = "credits of this wallet are held by open authorizations for what "
                               "it pays for now; capture or void them before changing applies_to. "
                               "Nothing was changed";
        return refuse(cmd, "applies_to", "credits_are_held");
    }
    if (!wallet_clock_schedule(w, cmd->now))
        return zone_lost(cmd);
    if (!had_threshold || !same_rule(&old_rule, &w->rule))
        arm_new_rule(w); /* the same rule kept stays as it was: it fired for this crossing */
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

static enum command_result apply_terminate(struct wallet_book *b, struct store *st,
                                           struct command *cmd)
{
    struct customer_wallets *cw;
    struct live_wallet *w;
    struct store_wallet row;
    if (store_wallet_get(store_conn(st), cmd->org_id, cmd->as.wallet_terminate.lago_id, &row,
                         cmd->arena) == STORE_OK &&
        row.has_terminated_at) { /* Lago's TerminateService: done already, the wallet as it is */
        memcpy(cmd->wallet_lago_id, row.lago_id, sizeof row.lago_id);
        return COMMAND_OK;
    }
    enum command_result r = live_wallet_of(b, st, cmd, cmd->as.wallet_terminate.lago_id, &cw, &w);
    if (r == COMMAND_OK)
        r = wallet_book_terminate(st, cmd, w, false);
    if (r != COMMAND_OK)
        return r;
    memcpy(cmd->wallet_lago_id, w->row.lago_id, sizeof w->row.lago_id);
    wallet_book_forget(b, w->row.customer_id);
    return COMMAND_OK;
}

enum command_result wallets_open_period(struct wallet_book *b, struct store *st,
                                        struct command *cmd, const struct usage *u,
                                        int64_t last_event_id)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, u->org_id, u->customer_id);
    if (!cw || !wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    bool any = false;
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        struct usage_brought brought;
        if (!usage_charge_brought(u, c, &brought))
            return fee_out_of_range(cmd);
        struct charge_debit *d = wallet_book_find_debit(cw, u->subscription_id, c->lago_id);
        if (!d && !(d = wallet_book_add_debit(cw, u->subscription_id, c->lago_id, u->from)))
            return COMMAND_STORE_FAILED;
        if (!wallet_book_debit_same_period(d, u->from)) {
            wallet_book_debit_reset(d, u->from);
            d->dirty = true; /* written, as in settle_charge: the last period's row is not this */
            any = true;
        }
        /* a wallet terminated earlier in the period paid what it recorded: the rest is open */
        int64_t open = brought.cost_cents - d->charged_cents;
        if (open > 0) {
            d->charged_cents = brought.cost_cents;
            if (!wallet_book_push_funding(d, (struct funding){FUNDING_UNCOVERED, 0, 0, open}))
                return COMMAND_STORE_FAILED;
        }
        /* where the wallet's part starts, re-priced by a price or tax change (reprice_opening) */
        d->opened_event_id = last_event_id;
        d->opened_cents = d->charged_cents;
        d->dirty = true;
        any = true;
    }
    return any ? wallet_book_flush_customer(st, cmd, cw) : COMMAND_OK;
}

enum command_result wallets_move_period(struct wallet_book *b, struct store *st,
                                        struct command *cmd, int64_t customer_id,
                                        int64_t subscription_id, tally_time from, tally_time to)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, cmd->org_id, customer_id);
    if (!cw || !wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    bool moved = false;
    for (size_t i = 0; i < cw->debit_count; i++) {
        struct charge_debit *d = &cw->debits[i];
        if (d->subscription_id == subscription_id && d->period_from == from) {
            wallet_book_debit_move(d, to);
            moved = true;
        }
    }
    return moved ? wallet_book_flush_customer(st, cmd, cw) : COMMAND_OK;
}

enum command_result wallets_move_to_zone(struct wallet_book *b, struct store *st,
                                         struct command *cmd, int64_t customer_id,
                                         const char *timezone)
{
    struct customer_wallets *cw = wallet_book_customer(b, st, cmd->org_id, customer_id);
    if (!cw || !wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    return wallet_clock_move_zone(st, cmd, cw, timezone);
}

enum command_result wallets_terminate_customer(struct wallet_book *b, struct store *st,
                                               struct command *cmd, int64_t customer_id)
{
    struct customer_wallets *cw = NULL;
    enum command_result r = wallets_up_to_date(b, st, cmd, cmd->org_id, customer_id, &cw);
    for (size_t i = 0; r == COMMAND_OK && i < cw->wallet_count; i++)
        if (!cw->wallets[i].row.has_terminated_at) /* else it expired just now */
            r = wallet_book_terminate(st, cmd, &cw->wallets[i], false);
    if (r == COMMAND_OK)
        wallet_book_forget(b, customer_id);
    return r;
}

/* Whether a code is written as itself in terms json-c wrote (printable ASCII, no quote,
 * backslash or slash, which it escapes), so that the store may look for it in their text. */
static bool written_verbatim(const char *code)
{
    for (const unsigned char *c = (const unsigned char *)code; *c; c++)
        if (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\' || *c == '/')
            return false;
    return true;
}

enum command_result wallets_retarget_metric(struct wallet_book *b, struct store *st,
                                            struct command *cmd, const char *code,
                                            const char *replacement)
{
    struct store_wallet_terms *rows;
    size_t count;
    /* a code json-c may have escaped is looked for in every wallet's terms */
    const char *containing = written_verbatim(code) ? code : "billable_metric_codes";
    if (store_wallets_naming(store_conn(st), cmd->org_id, containing, &rows, &count, cmd->arena) !=
        STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        const char *terms;
        switch (catalog_refs_retarget_wallet_metric(cmd->arena, rows[i].terms_json, code,
                                                    replacement, &terms)) {
        case CATALOG_REFS_UNCHANGED: continue;
        case CATALOG_REFS_FAILED: return COMMAND_STORE_FAILED;
        case CATALOG_REFS_CHANGED: break;
        }
        if (store_wallet_set_terms(st, rows[i].wallet_id, terms) != STORE_OK)
            return COMMAND_STORE_FAILED;
        /* the book's copy of its terms is stale: read again on next use (an update read
         * before now no longer matches them, and is refused as stale) */
        if (!wallet_book_forget_later(b, rows[i].customer_id))
            return COMMAND_STORE_FAILED; /* a stuck one: once written out */
    }
    return COMMAND_OK;
}

static enum command_result apply_top_up(struct wallet_book *b, struct store *st,
                                        struct command *cmd)
{
    struct customer_wallets *cw;
    struct live_wallet *w;
    enum command_result r =
        live_wallet_of(b, st, cmd, cmd->as.wallet_top_up.wallet_lago_id, &cw, &w);
    if (r == COMMAND_NOT_FOUND) /* Lago's WalletTransactions::ValidateService: a field */
        return refuse(cmd, "wallet_id", "wallet_not_found");
    if (r != COMMAND_OK)
        return r;
    memcpy(cmd->wallet_lago_id, w->row.lago_id, sizeof w->row.lago_id);
    return move_credits(st, cmd, cw, w, &cmd->as.wallet_top_up.credits, false);
}

/* A purchase whose payment failed: no credits will come of it. */
static enum command_result fail_purchase(struct store *st, struct command *cmd,
                                         struct store_wallet_transaction *t)
{
    t->state = WALLET_TX_FAILED;
    t->has_failed_at = true;
    t->failed_at = cmd->now;
    return store_wallet_transaction_set_state(st, t) == STORE_OK ? COMMAND_OK
                                                                 : COMMAND_STORE_FAILED;
}

/*
 * The invoice's new payment status. An open invoice is issued by its payment only, as Lago's
 * FinalizeOpenCreditService: finalized, issued and due on the day paid, the customer's date
 * (w: its wallet); a failed payment leaves it open, no claim on the customer for credits
 * that never arrive (an audit found it finalized, the whole amount due).
 */
static enum command_result invoice_paid(struct store *st, struct command *cmd,
                                        const struct live_wallet *w, struct store_invoice *v,
                                        enum invoice_payment_status to)
{
    v->payment_status = to;
    if (v->status == INVOICE_OPEN && to == INVOICE_PAYMENT_SUCCEEDED) {
        struct customer customer;
        char *date = arena_alloc(cmd->arena, 11);
        if (!w || !date ||
            store_customer_get(store_conn(st), w->row.org_id, w->row.external_customer_id,
                               &customer, cmd->arena) != STORE_OK ||
            wallet_book_customer_date(w, cmd, customer.text[CUSTOMER_TIMEZONE], date) != COMMAND_OK)
            return COMMAND_STORE_FAILED;
        v->status = INVOICE_FINALIZED;
        v->issuing_date = date;
        v->net_payment_term = 0; /* due the day it is issued: Lago's payment_due_date */
    }
    v->updated_at = cmd->now;
    return store_invoice_save(st, v) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/*
 * An interval rule's purchase paid after the rule's next anniversary came: paid on time, that
 * anniversary's rollover would have decided its credits (carried on what the policy allows,
 * for one more grant's life, and expired the rest), but paid late no rollover ever sees them.
 * Refused as credits past their own expiry are (mark the payment failed, and refund it),
 * whatever the policy, `all` included: so a late payment never outlives an on-time one.
 * (Before, anniversaries were told apart by the last grant's id: one that made nothing, a
 * target reached or a top-up that did not fit, left the late top-up "the current one", kept
 * until the anniversary after; and `all` settled it with the current grant's expiry, so two
 * anniversaries late outlived the on-time credits; audits found both.)
 * Its anniversary is known by the instant it was made at: an anniversary's purchase is dated
 * when the clock fires it (cmd->now), so the next anniversary after that instant, by the rule's
 * schedule, has come if it is not after now. A catch-up fires several anniversaries at one
 * instant: a later one of them that made credits is a newer last grant (ids grow), and one that
 * made nothing leaves this purchase the last anniversary's, which the next rollover decides as
 * it would have had it been paid at once. Without a rollover policy nothing would have carried
 * it on nor expired it: it keeps its own expiry (checked by the caller).
 */
static enum command_result late_anniversary(struct command *cmd, const struct live_wallet *w,
                                            const struct store_wallet_transaction *t)
{
    if (!w->has_rule || !w->rule_interval_trigger || !w->rule_has_rollover)
        return COMMAND_OK;
    int64_t last = w->row.last_interval_grant_id > w->row.last_interval_paid_grant_id
                       ? w->row.last_interval_grant_id
                       : w->row.last_interval_paid_grant_id;
    bool newer_grant = last > t->id && t->id != w->row.last_interval_grant_id &&
                       t->id != w->row.last_interval_paid_grant_id;
    bool has_next = false;
    tally_time next = 0;
    if (!wallet_clock_next_after(w, t->created_at, &has_next, &next))
        return COMMAND_STORE_FAILED; /* the zone no longer loads: never a guess */
    if (!newer_grant && !(has_next && next <= cmd->now))
        return COMMAND_OK;
    cmd->invalid_message = "the top-up's credits were an anniversary's of its rule, and the "
                           "rule's next anniversary came before it was paid: the rule's "
                           "rollover policy decides an anniversary's credits at the next one, "
                           "so they can no longer arrive; mark the payment failed (and refund "
                           "it). Nothing was changed";
    return refuse(cmd, "payment_status", "credits_expired");
}

/*
 * PUT /invoices/{id} with a payment status, for a credit invoice: its top-up's credits arrive
 * when it is paid (if they were waiting), or the top-up fails. Anything else changes only the
 * invoice's own status.
 */
static enum command_result apply_invoice_payment(struct wallet_book *b, struct store *st,
                                                 struct command *cmd)
{
    struct store_invoice *v = &cmd->invoice;
    enum store_status s = store_invoice_get(store_conn(st), cmd->org_id,
                                            cmd->as.invoice_update.lago_id, v, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    enum invoice_payment_status to = cmd->as.invoice_update.payment_status;
    if (v->payment_status == to)
        return COMMAND_OK;
    if (v->payment_status != INVOICE_PAYMENT_PENDING)
        return refuse(cmd, "payment_status", "invalid_payment_status_transition");
    struct store_wallet_transaction t;
    if (store_wallet_transaction_by_id(store_conn(st), v->wallet_transaction_id, &t, cmd->arena) !=
        STORE_OK)
        return COMMAND_STORE_FAILED;
    if (t.state == WALLET_TX_PENDING) {
        struct customer_wallets *cw;
        struct live_wallet *w;
        enum command_result r = live_wallet_of(b, st, cmd, t.wallet_lago_id, &cw, &w);
        if (r == COMMAND_INVALID) { /* the wallet was terminated since: nothing can arrive */
            if (to == INVOICE_PAYMENT_FAILED)
                return fail_purchase(st, cmd, &t) == COMMAND_OK ? invoice_paid(st, cmd, NULL, v, to)
                                                                : COMMAND_STORE_FAILED;
            cmd->invalid_field = NULL;
            cmd->invalid_message = "the wallet was terminated: its credits can no longer arrive; "
                                   "mark the payment failed (and refund it). Nothing was changed";
            return refuse(cmd, "payment_status", "wallet_is_terminated");
        }
        if (r != COMMAND_OK)
            return r;
        if (to == INVOICE_PAYMENT_SUCCEEDED && t.source == WALLET_SOURCE_INTERVAL &&
            (r = late_anniversary(cmd, w, &t)) != COMMAND_OK)
            return r;
        /* Its credits' own expiry passed while it waited: they would expire as they arrive,
         * the money taken for nothing (an audit found it so). Refused as a terminated
         * wallet's is. */
        if (to == INVOICE_PAYMENT_SUCCEEDED && t.has_expiration_at && t.expiration_at <= cmd->now) {
            cmd->invalid_message = "the top-up's credits expired (its expiration_at passed) "
                                   "before it was paid: they can no longer arrive; mark the "
                                   "payment failed (and refund it). Nothing was changed";
            return refuse(cmd, "payment_status", "credits_expired");
        }
        w->pending_cents -= t.amount_cents;
        if (to == INVOICE_PAYMENT_SUCCEEDED)
            r = store_wallet_transaction_set_expiration(st, t.id, t.has_expiration_at,
                                                        t.expiration_at) == STORE_OK
                    ? settle_purchase(st, cmd, cw, w, &t)
                    : COMMAND_STORE_FAILED;
        else
            r = fail_purchase(st, cmd, &t);
        /* Its rule's top-up settled: paid, the rule is armed again, so the next fall at or
         * below its threshold fires (fire_thresholds arms a granted top-up's at once);
         * declined, the rule has not bought for this fall, and fires at the first usage (or
         * fall) after its back-off. A restart between or not: rule_unfired is kept (an audit
         * found a restart disarming it for good). */
        if (r == COMMAND_OK && t.source == WALLET_SOURCE_THRESHOLD && w->has_rule &&
            !w->rule_interval_trigger) {
            w->rule_armed = w->row.rule_unfired = true;
            if (store_wallet_save(st, &w->row) != STORE_OK)
                r = COMMAND_STORE_FAILED;
        }
        if (r == COMMAND_OK)
            r = wallet_clock_fire_thresholds(st, cmd, cw,
                                             false); /* what was pending no longer counts */
        if (r == COMMAND_OK) {
            w->dirty = true;
            r = wallet_book_flush_customer(st, cmd, cw);
        }
        if (r != COMMAND_OK)
            return r;
        return invoice_paid(st, cmd, w, v, to);
    }
    return invoice_paid(st, cmd, NULL, v, to);
}

enum command_result wallets_apply(struct wallet_book *b, struct store *st, struct command *cmd)
{
    switch (cmd->kind) {
    case COMMAND_WALLET_CREATE: return apply_create(b, st, cmd);
    case COMMAND_WALLET_UPDATE: return apply_update(b, st, cmd);
    case COMMAND_WALLET_TERMINATE: return apply_terminate(b, st, cmd);
    case COMMAND_WALLET_TOP_UP: return apply_top_up(b, st, cmd);
    case COMMAND_INVOICE_UPDATE: return apply_invoice_payment(b, st, cmd);
    default: break;
    }
    assert(!"not a wallet command");
    return COMMAND_STORE_FAILED;
}
