/* engine/wallet_book: see wallet_book.h. */
#include "engine/wallet_book.h"

#include <assert.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/currency.h"
#include "core/tz.h"
#include "json/json_build.h"
#include "sys/tzdb.h"
#include "sys/wallclock.h"
#include "util/buf.h"
#include "util/varint.h"
#include "util/vec.h"

#define USEC_PER_DAY (INT64_C(86400) * 1000000)

static void *duplicate(struct arena *a, const void *items, size_t count, size_t size)
{
    return count == 0 ? NULL : arena_memdup(a, items, count * size);
}

static bool snapshot_take(struct customer_snapshot *s, const struct customer_wallets *cw,
                          struct arena *a)
{
    *s = (struct customer_snapshot){.customer_id = cw->customer_id,
                                    .wallet_count = cw->wallet_count,
                                    .debit_count = cw->debit_count,
                                    .debit_seq = cw->debit_seq};
    s->wallets = duplicate(a, cw->wallets, cw->wallet_count, sizeof *s->wallets);
    s->debits = duplicate(a, cw->debits, cw->debit_count, sizeof *s->debits);
    if ((cw->wallet_count && !s->wallets) || (cw->debit_count && !s->debits))
        return false;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &s->wallets[i];
        w->grants = duplicate(a, w->grants, w->grant_count, sizeof *w->grants);
        w->moves = duplicate(a, w->moves, w->move_count, sizeof *w->moves);
        if ((w->grant_count && !w->grants) || (w->move_count && !w->moves))
            return false;
    }
    for (size_t i = 0; i < cw->debit_count; i++) {
        struct charge_debit *d = &s->debits[i];
        d->fundings = duplicate(a, d->fundings, d->funding_count, sizeof *d->fundings);
        if (d->funding_count && !d->fundings)
            return false;
    }
    return true;
}

/*
 * Puts a customer back as the snapshot holds it, into the customer's own arrays: an array
 * never shrinks, so each still has room for what it held when the snapshot was taken.
 */
static void snapshot_restore(struct customer_wallets *cw, const struct customer_snapshot *s)
{
    assert(s->wallet_count == cw->wallet_count); /* event commands add no wallet */
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &cw->wallets[i];
        const struct live_wallet *from = &s->wallets[i];
        struct wallet_grant *grants = w->grants;
        struct grant_move *moves = w->moves;
        size_t grant_cap = w->grant_cap, move_cap = w->move_cap;
        assert(from->grant_count <= grant_cap && from->move_count <= move_cap);
        *w = *from;
        w->grants = grants;
        w->grant_cap = grant_cap;
        w->moves = moves;
        w->move_cap = move_cap;
        if (from->grant_count)
            memcpy(grants, from->grants, from->grant_count * sizeof *grants);
        if (from->move_count)
            memcpy(moves, from->moves, from->move_count * sizeof *moves);
    }
    for (size_t i = s->debit_count; i < cw->debit_count; i++)
        free(cw->debits[i].fundings); /* added by the command undone */
    for (size_t i = 0; i < s->debit_count; i++) {
        struct charge_debit *d = &cw->debits[i];
        const struct charge_debit *from = &s->debits[i];
        struct funding *fundings = d->fundings;
        size_t funding_cap = d->funding_cap;
        assert(from->funding_count <= funding_cap);
        *d = *from;
        d->fundings = fundings;
        d->funding_cap = funding_cap;
        if (from->funding_count)
            memcpy(fundings, from->fundings, from->funding_count * sizeof *fundings);
    }
    cw->debit_count = s->debit_count;
    cw->debit_seq = s->debit_seq;
}

static void customer_free(struct customer_wallets *cw)
{
    for (size_t i = 0; i < cw->wallet_count; i++) {
        free(cw->wallets[i].grants);
        free(cw->wallets[i].moves);
    }
    for (size_t i = 0; i < cw->debit_count; i++)
        free(cw->debits[i].fundings);
    free(cw->debits);
    struct arena a = cw->arena; /* cw lives in its own arena */
    arena_free(&a);
}

static size_t slot_of(const struct wallet_book *b, int64_t customer_id)
{
    uint64_t h = (uint64_t)customer_id * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (b->cap - 1);
}

void wallet_book_init(struct wallet_book *b)
{
    memset(b, 0, sizeof *b);
}

static void drop_snapshots(struct wallet_book *b)
{
    b->snapshot_count = 0;
    arena_reset(&b->snapshot_arena);
}

void wallet_book_clear(struct wallet_book *b)
{
    for (size_t i = 0; i < b->cap; i++) {
        if (b->items[i]) {
            customer_free(b->items[i]);
            b->items[i] = NULL;
        }
    }
    b->count = 0;
    b->touched_count = b->touched_mark = 0;
    b->dirty_count = 0;
    b->unjournaled_count = 0;
    b->record_count = 0;
    b->journal_records = 0;
    b->journal_bytes = 0;
    b->must_flush = false;
    b->org_balance_count = 0;
    b->reload_count = 0; /* everyone reloads */
    drop_snapshots(b);
}

void wallet_book_free(struct wallet_book *b)
{
    wallet_book_clear(b);
    free(b->items);
    free(b->touched);
    free(b->dirty);
    free(b->unjournaled);
    free(b->records);
    free(b->snapshots);
    arena_free(&b->snapshot_arena);
    free(b->org_balances);
    free(b->org_saved);
    free(b->stuck);
    free(b->unstuck);
    free(b->rejournal);
    free(b->reload);
    arena_free(&b->writeout_arena);
    free(b->writeout_saved);
    free(b->written);
    wallet_book_init(b);
}

static struct customer_wallets *book_find(const struct wallet_book *b, int64_t customer_id)
{
    if (b->cap == 0)
        return NULL;
    for (size_t i = slot_of(b, customer_id);; i = (i + 1) & (b->cap - 1)) {
        if (!b->items[i])
            return NULL;
        if (b->items[i]->customer_id == customer_id)
            return b->items[i];
    }
}

static struct wallet_stuck *stuck_find(const struct wallet_book *b, int64_t customer_id)
{
    for (size_t i = 0; i < b->stuck_count; i++)
        if (b->stuck[i].customer_id == customer_id)
            return &b->stuck[i];
    return NULL;
}

bool wallet_book_is_stuck(const struct wallet_book *b, int64_t customer_id)
{
    return stuck_find(b, customer_id) != NULL;
}

/* Takes one customer out (backward-shift deletion keeps every other reachable). */
static void book_remove(struct wallet_book *b, int64_t customer_id)
{
    if (b->cap == 0)
        return;
    size_t i = slot_of(b, customer_id);
    while (b->items[i] && b->items[i]->customer_id != customer_id)
        i = (i + 1) & (b->cap - 1);
    if (!b->items[i])
        return;
    assert(!b->items[i]->dirty); /* the journal may name it: it must not be lost */
    customer_free(b->items[i]);
    b->items[i] = NULL;
    b->count--;
    for (size_t j = (i + 1) & (b->cap - 1); b->items[j]; j = (j + 1) & (b->cap - 1)) {
        size_t home = slot_of(b, b->items[j]->customer_id);
        /* move j back to i if its home is not in (i, j] cyclically */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            b->items[i] = b->items[j];
            b->items[j] = NULL;
            i = j;
        }
    }
}

bool wallet_book_forget(struct wallet_book *b, int64_t customer_id)
{
    if (stuck_find(b, customer_id)) {
        b->refused_stuck = true;
        return false;
    }
    book_remove(b, customer_id);
    return true;
}

/* The customer is dropped once written out (drop_reloads). False only without memory. */
static bool reload_later(struct wallet_book *b, int64_t customer_id)
{
    for (size_t i = 0; i < b->reload_count; i++)
        if (b->reload[i] == customer_id)
            return true;
    if (!vec_room((void **)&b->reload, &b->reload_cap, b->reload_count, sizeof *b->reload, 4))
        return false;
    b->reload[b->reload_count++] = customer_id;
    return true;
}

bool wallet_book_forget_later(struct wallet_book *b, int64_t customer_id)
{
    if (!stuck_find(b, customer_id)) {
        book_remove(b, customer_id);
        return true;
    }
    return reload_later(b, customer_id);
}

/* The customers waiting to reload that were written out are dropped (after a write-out). */
static void drop_reloads(struct wallet_book *b)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->reload_count; i++) {
        const struct customer_wallets *cw = book_find(b, b->reload[i]);
        if (cw && cw->dirty)
            b->reload[kept++] = b->reload[i];
        else
            book_remove(b, b->reload[i]);
    }
    b->reload_count = kept;
}

static bool book_put(struct wallet_book *b, struct customer_wallets *cw)
{
    if (2 * (b->count + 1) > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        struct customer_wallets **items = calloc(cap, sizeof *items);
        if (!items)
            return false;
        for (size_t i = 0; i < b->cap; i++) {
            if (!b->items[i])
                continue;
            size_t h =
                (size_t)(((uint64_t)b->items[i]->customer_id * UINT64_C(0x9E3779B97F4A7C15)) >>
                         32) &
                (cap - 1);
            while (items[h])
                h = (h + 1) & (cap - 1);
            items[h] = b->items[i];
        }
        free(b->items);
        b->items = items;
        b->cap = cap;
    }
    size_t i = slot_of(b, cw->customer_id);
    while (b->items[i])
        i = (i + 1) & (b->cap - 1);
    b->items[i] = cw;
    b->count++;
    return true;
}

void wallet_book_mark_command(struct wallet_book *b, bool deferring)
{
    drop_snapshots(b); /* the last command stood */
    b->command_number++;
    /* the organizations' balances are few: a copy is the undo (a failed copy: forget them) */
    if (vec_room((void **)&b->org_saved, &b->org_saved_cap, b->org_balance_count,
                 sizeof *b->org_saved, 16)) {
        if (b->org_balance_count > 0)
            memcpy(b->org_saved, b->org_balances, b->org_balance_count * sizeof *b->org_saved);
        b->org_saved_count = b->org_balance_count;
    } else {
        b->org_saved_count = b->org_balance_count = 0;
    }
    b->touched_mark = b->touched_count;
    b->deferring = deferring;
    b->unrefusable = false;
    b->refused_stuck = false;
}

bool wallet_book_undo_command(struct wallet_book *b)
{
    /* the command's postings are gone: its organizations' balances go back too */
    if (b->org_saved_count > 0)
        memcpy(b->org_balances, b->org_saved, b->org_saved_count * sizeof *b->org_saved);
    b->org_balance_count = b->org_saved_count;
    if (b->deferring) {
        if (b->unrefusable && b->touched_count > b->touched_mark)
            return false; /* no snapshot to put back, and the tables are behind memory */
        for (size_t i = b->snapshot_count; i-- > 0;) {
            struct customer_wallets *cw = book_find(b, b->snapshots[i].customer_id);
            if (cw)
                snapshot_restore(cw, &b->snapshots[i]);
        }
        drop_snapshots(b);
        b->touched_count = b->touched_mark;
        return true;
    }
    /* the store held everything before this command (wallet_book_flush ran first): reload */
    while (b->touched_count > b->touched_mark)
        wallet_book_forget(b, b->touched[--b->touched_count]); /* never stuck: never given out */
    return true;
}

/*
 * A wallet that expired in the batch (the clock's sweep, or a debit that met its
 * expiration_at) is terminated in memory, yet still one of its customer's wallets, which a
 * restart would not load (store_customer_wallets: the active ones): the customer then counted
 * as one with a wallet, and the next wallet did not open the period (wallets_open_period) nor
 * a declined hold price the step alone, so a raise on what it used with no wallet was charged
 * to the next one (an audit: a seat of 100 held at 500, and 5.0 debited, after a raise on two
 * users sent once the wallet had expired; a restart said 100 and 1.0). So, once the batch is
 * committed, such a customer is dropped, as a termination by request drops it (wallets.c), to
 * reload as a restart would: written out by then (an expiry ends the journal's stretch,
 * must_flush), or, one still pending (stuck), once written out (drop_reloads).
 */
static bool holds_terminated(const struct customer_wallets *cw)
{
    for (size_t i = 0; i < cw->wallet_count; i++)
        if (cw->wallets[i].row.has_terminated_at)
            return true;
    return false;
}

void wallet_book_committed(struct wallet_book *b)
{
    for (size_t i = 0; i < b->touched_count; i++) {
        struct customer_wallets *cw = book_find(b, b->touched[i]);
        if (!cw || !holds_terminated(cw))
            continue;
        if (!cw->dirty && !stuck_find(b, cw->customer_id))
            book_remove(b, cw->customer_id);
        else /* without memory for the note, it stays: its state is still whole */
            (void)reload_later(b, cw->customer_id);
    }
    b->touched_count = b->touched_mark = 0;
    assert(b->unjournaled_count == 0); /* flushed or journaled before the COMMIT */
    drop_snapshots(b);
}

bool wallet_book_touch(struct wallet_book *b, struct customer_wallets *cw)
{
    if (cw->touched_in == b->command_number)
        return true;
    if (!vec_room((void **)&b->touched, &b->touched_cap, b->touched_count, sizeof *b->touched, 64))
        return false;
    if (b->deferring && !b->unrefusable) {
        if (!vec_room((void **)&b->snapshots, &b->snapshot_cap, b->snapshot_count,
                      sizeof *b->snapshots, 64) ||
            !snapshot_take(&b->snapshots[b->snapshot_count], cw, &b->snapshot_arena))
            return false;
        b->snapshot_count++;
    }
    b->touched[b->touched_count++] = cw->customer_id;
    cw->touched_in = b->command_number;
    wallet_book_observe_rules(cw); /* a rise since the last look (a refund, say) counts */
    return true;
}

void wallet_book_observe_rules(struct customer_wallets *cw)
{
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &cw->wallets[i];
        w->rule_seen_cents =
            wallet_book_grants_total(w) - w->row.overdrawn_cents - w->row.held_cents;
        if (w->has_rule && !wallet_rule_due(&w->rule, w->rule_seen_cents, w->pending_cents))
            w->rule_armed = true;
    }
}

bool wallet_book_mark_dirty(struct wallet_book *b, struct customer_wallets *cw)
{
    if (!cw->dirty) {
        if (!vec_room((void **)&b->dirty, &b->dirty_cap, b->dirty_count, sizeof *b->dirty, 64))
            return false;
        b->dirty[b->dirty_count++] = cw->customer_id;
        cw->dirty = true;
    }
    if (!cw->unjournaled) {
        if (!vec_room((void **)&b->unjournaled, &b->unjournaled_cap, b->unjournaled_count,
                      sizeof *b->unjournaled, 64))
            return false;
        b->unjournaled[b->unjournaled_count++] = cw->customer_id;
        cw->unjournaled = true;
    }
    return true;
}

/* How a credits term becomes cents: an amount rounds half up (Lago's), a bound down
 * (wallet_credits_cap_to_cents: no more than it ever passes). */
enum term_kind { TERM_AMOUNT, TERM_BOUND };

/* A credits term (decimal text) in cents at the wallet's rate; false if absent or unreadable. */
static bool term_cents(const struct live_wallet *w, struct json_object *obj, const char *key,
                       enum term_kind kind, int64_t *cents)
{
    struct json_object *v;
    money_t credits;
    if (!json_object_object_get_ex(obj, key, &v) || !v)
        return false;
    const char *text = json_object_get_string(v);
    const struct currency *c = currency_find(w->row.currency, strlen(w->row.currency));
    int32_t exponent = c ? c->exponent : 2;
    return money_parse(text, strlen(text), &credits) == MONEY_OK &&
           (kind == TERM_BOUND
                ? wallet_credits_cap_to_cents(credits, w->row.rate_amount, exponent, cents)
                : wallet_credits_to_cents(credits, w->row.rate_amount, exponent, cents)) ==
               MONEY_OK;
}

static int64_t term_int(struct json_object *obj, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(obj, key, &v) && v ? json_object_get_int64(v) : 0;
}

static bool term_bool(struct json_object *obj, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(obj, key, &v) && v && json_object_get_boolean(v);
}

/* The threshold rule of the terms, if any (the API stored it normalized). */
static bool read_rule(struct live_wallet *w, struct json_object *terms, struct arena *a)
{
    struct json_object *rules, *rule, *v;
    if (!json_object_object_get_ex(terms, "recurring_transaction_rules", &rules) || !rules ||
        json_object_array_length(rules) == 0)
        return true;
    rule = json_object_array_get_idx(rules, 0);
    struct wallet_rule *r = &w->rule;
    r->method = json_object_object_get_ex(rule, "method", &v) && v &&
                        strcmp(json_object_get_string(v), "target") == 0
                    ? WALLET_RULE_TARGET
                    : WALLET_RULE_FIXED;
    w->rule_interval_trigger = json_object_object_get_ex(rule, "trigger", &v) && v &&
                               strcmp(json_object_get_string(v), "interval") == 0;
    if (w->rule_interval_trigger) {
        static const char *const intervals[] = {[PERIOD_WEEKLY] = "weekly",
                                                [PERIOD_MONTHLY] = "monthly",
                                                [PERIOD_QUARTERLY] = "quarterly",
                                                [PERIOD_SEMIANNUAL] = "semiannual",
                                                [PERIOD_YEARLY] = "yearly"};
        const char *name =
            json_object_object_get_ex(rule, "interval", &v) && v ? json_object_get_string(v) : "";
        bool known = false;
        for (int i = PERIOD_WEEKLY; i <= PERIOD_YEARLY && !known; i++)
            if ((known = strcmp(name, intervals[i]) == 0))
                w->rule_interval = (enum period_interval)i;
        if (!known)
            return false;
        if (json_object_object_get_ex(rule, "started_at", &v) && v) {
            const char *text = json_object_get_string(v);
            w->rule_has_start = timestamp_parse_iso8601(text, strlen(text), &w->rule_started_at);
        }
        if (json_object_object_get_ex(rule, "grant_expires_after", &v) && v)
            w->rule_has_grant_duration =
                wallet_duration_parse(json_object_get_string(v), &w->rule_grant_duration);
        if (json_object_object_get_ex(rule, "rollover", &v) && v) {
            w->rule_has_rollover =
                wallet_rollover_parse(json_object_get_string(v), &w->rule_rollover);
            if (w->rule_rollover == WALLET_ROLLOVER_MAX_PERCENTAGE)
                w->rule_rollover_value = term_int(rule, "rollover_percentage");
            else if (w->rule_rollover == WALLET_ROLLOVER_MAX_CREDITS &&
                     !term_cents(w, rule, "rollover_max_credits", TERM_BOUND,
                                 &w->rule_rollover_value))
                return false;
        }
    } else if (!term_cents(w, rule, "threshold_credits", TERM_BOUND, &r->threshold_cents)) {
        return false;
    }
    term_cents(w, rule, "paid_credits", TERM_AMOUNT, &r->paid_cents);
    term_cents(w, rule, "granted_credits", TERM_AMOUNT, &r->granted_cents);
    if (r->method == WALLET_RULE_TARGET &&
        !term_cents(w, rule, "target_ongoing_balance", TERM_AMOUNT, &r->target_cents))
        return false;
    r->grants_target_top_up = term_bool(rule, "grants_target_top_up");
    r->ignore_paid_top_up_limits = term_bool(rule, "ignore_paid_top_up_limits");
    w->rule_requires_payment = term_bool(rule, "invoice_requires_successful_payment");
    if (json_object_object_get_ex(rule, "expiration_at", &v) && v) {
        const char *text = json_object_get_string(v);
        w->rule_has_expiration =
            timestamp_parse_iso8601(text, strlen(text), &w->rule_expiration_at);
    }
    if (json_object_object_get_ex(rule, "transaction_name", &v) && v)
        w->rule_name =
            arena_strndup(a, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    /* its transactions' metadata, payment setting and purchase order (the rule's, else the
     * wallet's, as Lago's rule falls back), shown back as a top-up's (details_json) and put on
     * its credit invoice (credit_invoice) */
    struct json_build details;
    json_build_init(&details, json_object_new_object());
    if (json_object_object_get_ex(rule, "transaction_metadata", &v) && v &&
        json_object_array_length(v) > 0)
        json_build_share(&details, "metadata", v);
    json_build_bool(&details, "invoice_requires_successful_payment", w->rule_requires_payment);
    if ((json_object_object_get_ex(rule, "purchase_order_number", &v) && v) ||
        (json_object_object_get_ex(terms, "purchase_order_number", &v) && v))
        json_build_share(&details, "purchase_order_number", v);
    w->rule_details_json = json_build_text(&details, JSON_C_TO_STRING_PLAIN, a);
    json_object_put(details.obj);
    if (!w->rule_details_json)
        return false;
    w->has_rule = true;
    return true;
}

/* What the engine needs of a wallet's terms: applies_to, top-up bounds, its threshold rule. */
static bool read_terms(struct live_wallet *w, struct arena *a)
{
    struct json_object *terms = json_tokener_parse(w->row.terms_json), *applies, *list;
    if (!terms)
        return false;
    bool ok = true;
    if (json_object_object_get_ex(terms, "applies_to", &applies) && applies) {
        if (json_object_object_get_ex(applies, "fee_types", &list) &&
            json_object_is_type(list, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(list); i++) {
                unsigned bit;
                const char *t = json_object_get_string(json_object_array_get_idx(list, i));
                if (t && wallet_fee_type_parse(t, &bit))
                    w->fee_types |= bit;
            }
        }
        if (json_object_object_get_ex(applies, "billable_metric_codes", &list) &&
            json_object_is_type(list, json_type_array)) {
            size_t n = json_object_array_length(list);
            w->metric_codes = arena_alloc(a, (n ? n : 1) * sizeof *w->metric_codes);
            ok = w->metric_codes != NULL;
            for (size_t i = 0; ok && i < n; i++) {
                struct json_object *v = json_object_array_get_idx(list, i);
                const char *code = arena_strndup(a, json_object_get_string(v),
                                                 (size_t)json_object_get_string_len(v));
                ok = code != NULL;
                if (ok)
                    w->metric_codes[w->metric_code_count++] = code;
            }
        }
        w->metrics_deleted =
            w->metric_code_count == 0 && term_bool(applies, "limited_to_billable_metrics");
    }
    w->min_paid_cents = term_int(terms, "paid_top_up_min_amount_cents");
    w->max_paid_cents = term_int(terms, "paid_top_up_max_amount_cents");
    ok = ok && read_rule(w, terms, a);
    json_object_put(terms);
    return ok;
}

bool wallet_book_grant_insert(struct live_wallet *w, const struct wallet_grant *g)
{
    if (!vec_room((void **)&w->grants, &w->grant_cap, w->grant_count, sizeof *w->grants, 8))
        return false;
    size_t at = wallet_grant_position(w->grants, w->grant_count, g);
    memmove(&w->grants[at + 1], &w->grants[at], (w->grant_count - at) * sizeof *w->grants);
    w->grants[at] = *g;
    w->grant_count++;
    return true;
}

struct wallet_grant wallet_book_grant_of(const struct store_wallet_transaction *t)
{
    return (struct wallet_grant){
        .id = t->id,
        .remaining_cents = t->remaining_cents,
        .priority = t->priority,
        .paid = t->paid,
        .has_expiration = t->has_expiration_at,
        .expiration_at = t->expiration_at,
        .created_at = t->created_at,
    };
}

static bool hold_on_grant(const struct store_hold *part, void *ctx)
{
    struct live_wallet *w = ctx;
    struct wallet_grant *g = part->grant_id ? wallet_book_live_grant(w, part->grant_id) : NULL;
    if (!g)
        return true; /* on no grant: the wallet's (wallet_book_held_elsewhere) */
    /* a part is made of unheld credits and released before any is spent: it fits */
    g->held_cents = part->cents < g->remaining_cents ? part->cents : g->remaining_cents;
    return true;
}

/* What the open holds reserve of each live grant, from grant_holds (written with each hold and
 * release, so as current as the journal's newest record). */
static bool load_held(struct store_conn *conn, struct live_wallet *w)
{
    for (size_t i = 0; i < w->grant_count; i++)
        w->grants[i].held_cents = 0;
    return w->row.held_cents == 0 ||
           store_wallet_held_grants(conn, w->row.id, hold_on_grant, w) == STORE_OK;
}

static bool load_grant(const struct store_wallet_transaction *t, void *ctx)
{
    struct wallet_grant g = wallet_book_grant_of(t);
    return t->state == WALLET_TX_SETTLED && t->type == WALLET_INBOUND
               ? wallet_book_grant_insert(ctx, &g)
               : true;
}

struct charge_debit *wallet_book_find_debit(struct customer_wallets *cw, int64_t subscription_id,
                                            const char *charge_lago_id)
{
    for (size_t i = 0; i < cw->debit_count; i++)
        if (cw->debits[i].subscription_id == subscription_id &&
            strcmp(cw->debits[i].charge_lago_id, charge_lago_id) == 0)
            return &cw->debits[i];
    return NULL;
}

bool wallet_book_push_funding(struct charge_debit *d, struct funding f)
{
    if (d->funding_count > 0) {
        struct funding *last = &d->fundings[d->funding_count - 1];
        if (last->kind == f.kind && last->wallet_id == f.wallet_id &&
            last->grant_id == f.grant_id) {
            last->cents += f.cents;
            return true;
        }
    }
    if (!vec_room((void **)&d->fundings, &d->funding_cap, d->funding_count, sizeof *d->fundings, 4))
        return false;
    d->fundings[d->funding_count++] = f;
    return true;
}

static bool parse_fundings(struct charge_debit *d, const char *text)
{
    while (*text) {
        struct funding f = {0};
        char kind;
        long long wallet, grant, cents;
        int used = 0;
        if (sscanf(text, "%c:%lld:%lld:%lld;%n", &kind, &wallet, &grant, &cents, &used) != 4 ||
            used == 0 ||
            (kind != FUNDING_GRANT && kind != FUNDING_OVERDRAFT && kind != FUNDING_UNCOVERED))
            return false;
        f.kind = (enum funding_kind)kind;
        f.wallet_id = wallet;
        f.grant_id = grant;
        f.cents = cents;
        if (!wallet_book_push_funding(d, f))
            return false;
        text += used;
    }
    return true;
}

/* The debit of (subscription, charge) starting over (a new period, or first seen). */
void wallet_book_debit_reset(struct charge_debit *d, tally_time period_from)
{
    d->period_from = period_from;
    d->charged_cents = 0;
    d->posted_tax_cents = 0;
    d->opened_event_id = -1; /* a new period: no wallet opened in it yet */
    d->opened_cents = 0;
    d->funding_count = 0;
    d->moved = false; /* a row already written stays its period's */
}

bool wallet_book_debit_same_period(const struct charge_debit *d, tally_time from)
{
    return d->period_from == from;
}

void wallet_book_debit_move(struct charge_debit *d, tally_time from)
{
    if (d->period_from == from)
        return;
    if (!d->moved) { /* the row written is under the first start */
        d->moved = true;
        d->moved_from = d->period_from;
    }
    d->period_from = from;
    d->dirty = true;
}

struct charge_debit *wallet_book_add_debit(struct customer_wallets *cw, int64_t subscription_id,
                                           const char *charge_lago_id, tally_time period_from)
{
    if (!vec_room((void **)&cw->debits, &cw->debit_cap, cw->debit_count, sizeof *cw->debits, 8))
        return NULL;
    char *id = arena_strndup(&cw->arena, charge_lago_id, strlen(charge_lago_id));
    if (!id)
        return NULL;
    struct charge_debit *d = &cw->debits[cw->debit_count++];
    *d = (struct charge_debit){
        .subscription_id = subscription_id, .charge_lago_id = id, .seq = ++cw->debit_seq};
    wallet_book_debit_reset(d, period_from);
    return d;
}

/* A debit's number as its row or a record keeps it (seq > 0): the customer numbers new ones
 * after it. */
static void debit_numbered(struct customer_wallets *cw, struct charge_debit *d, int64_t seq)
{
    d->seq = seq;
    if (seq > cw->debit_seq)
        cw->debit_seq = seq;
}

static bool load_debit(const struct store_charge_debit *row, void *ctx)
{
    struct customer_wallets *cw = ctx;
    /* Rows come oldest period first: a later period's row replaces an earlier one. */
    struct charge_debit *d = wallet_book_find_debit(cw, row->subscription_id, row->charge_lago_id);
    if (!d && !(d = wallet_book_add_debit(cw, row->subscription_id, row->charge_lago_id,
                                          row->period_from)))
        return false;
    wallet_book_debit_reset(d, row->period_from);
    debit_numbered(cw, d, row->seq);
    d->charged_cents = row->charged_cents;
    d->posted_tax_cents = row->posted_tax_cents;
    d->opened_event_id = row->opened_event_id;
    d->opened_cents = row->opened_cents;
    return parse_fundings(d, row->fundings);
}

/* A stored wallet as the writer keeps it: its terms, live grants, ledger balances and pending
 * purchases (strings in a, arrays malloc'd: customer_free or wallet_book_unload frees them).
 * False on a store failure, w's arrays still to free. */
static bool wallet_load(struct wallet_book *b, struct store_conn *conn, struct live_wallet *w,
                        const struct store_wallet *row, struct arena *a)
{
    *w = (struct live_wallet){.row = *row, .book = b};
    if (!read_terms(w, a) ||
        store_wallet_live_grants(conn, w->row.id, load_grant, w, a) != STORE_OK ||
        !load_held(conn, w))
        return false;
    /* its accounts, as every committed posting left them (the invariant check_wallet
     * asserts): credit balances for the credits, debit ones for overdraft and holds */
    for (size_t k = 0; k < w->grant_count; k++)
        w->ledger[w->grants[k].paid ? LEDGER_CUSTOMER_PAID_CREDITS
                                    : LEDGER_CUSTOMER_PROMOTIONAL_CREDITS] -=
            w->grants[k].remaining_cents;
    w->ledger[LEDGER_CUSTOMER_OVERDRAFT] = w->row.overdrawn_cents;
    w->ledger[LEDGER_CUSTOMER_HELD_CREDITS] = -w->row.held_cents;
    /* pending purchases count against the wallet's limit, and for a threshold rule */
    if (store_wallet_pending_cents(conn, w->row.id, &w->pending_cents) != STORE_OK)
        return false;
    /* a rule that is due now already fired for this crossing (or would have), unless it is
     * new and has not fired yet */
    w->rule_seen_cents = w->row.balance_cents - w->row.held_cents;
    if (w->has_rule)
        w->rule_armed =
            w->row.rule_unfired || !wallet_rule_due(&w->rule, w->rule_seen_cents, w->pending_cents);
    return true;
}

struct live_wallet *wallet_book_load_terminated(struct wallet_book *b, struct store *st,
                                                struct command *cmd, int64_t wallet_id)
{
    struct store_wallet row;
    struct live_wallet *w = arena_alloc(cmd->arena, sizeof *w);
    if (!w || store_wallet_by_id(store_conn(st), wallet_id, &row, cmd->arena) != STORE_OK ||
        !row.has_terminated_at) /* an active wallet is in the book: cannot be */
        return NULL;
    if (!wallet_load(b, store_conn(st), w, &row, cmd->arena)) {
        wallet_book_unload(w);
        return NULL;
    }
    return w;
}

void wallet_book_unload(struct live_wallet *w)
{
    free(w->grants);
    free(w->moves);
    w->grants = NULL;
    w->moves = NULL;
    w->grant_count = w->grant_cap = w->move_count = w->move_cap = 0;
}

static struct customer_wallets *load_customer(struct wallet_book *b, struct store *st,
                                              int64_t org_id, int64_t customer_id)
{
    struct arena arena;
    arena_init(&arena);
    struct customer_wallets *cw = arena_alloc(&arena, sizeof *cw);
    if (!cw) {
        arena_free(&arena);
        return NULL;
    }
    *cw = (struct customer_wallets){.org_id = org_id, .customer_id = customer_id, .arena = arena};
    struct store_wallet *rows;
    size_t count;
    struct store_conn *conn = store_conn(st);
    if (store_customer_wallets(conn, org_id, customer_id, &rows, &count, &cw->arena) != STORE_OK)
        goto fail;
    cw->wallets = arena_alloc(&cw->arena, (count ? count : 1) * sizeof *cw->wallets);
    if (!cw->wallets)
        goto fail;
    for (size_t i = 0; i < count; i++)
        if (!wallet_load(b, conn, &cw->wallets[cw->wallet_count++], &rows[i], &cw->arena))
            goto fail;
    /* with no active wallet too: what terminated ones paid this period may come back */
    if (store_charge_debits_of_customer(conn, org_id, customer_id, load_debit, cw) != STORE_OK)
        goto fail;
    return cw;
fail:
    customer_free(cw);
    return NULL;
}

/* The customer from the book, or loaded and put in it; NULL on a failure. */
static struct customer_wallets *book_load(struct wallet_book *b, struct store *st, int64_t org_id,
                                          int64_t customer_id)
{
    struct customer_wallets *cw = book_find(b, customer_id);
    if (cw)
        return cw;
    if (!(cw = load_customer(b, st, org_id, customer_id)))
        return NULL;
    if (!book_put(b, cw)) {
        customer_free(cw);
        return NULL;
    }
    return cw;
}

struct customer_wallets *wallet_book_customer(struct wallet_book *b, struct store *st,
                                              int64_t org_id, int64_t customer_id)
{
    if (stuck_find(b, customer_id)) {
        b->refused_stuck = true; /* its debits wait for its own write-out (see the top) */
        return NULL;
    }
    return book_load(b, st, org_id, customer_id);
}

struct live_wallet *wallet_book_wallet(struct customer_wallets *cw, int64_t wallet_id)
{
    for (size_t i = 0; i < cw->wallet_count; i++)
        if (cw->wallets[i].row.id == wallet_id)
            return &cw->wallets[i];
    return NULL;
}

int64_t wallet_book_grants_total(const struct live_wallet *w)
{
    /* at most WALLET_LIFETIME_MAX_CENTS (wallet_book_lifetime_cents); in 128 bits all the same,
     * so that rows written before the limits cannot wrap it */
    __int128 sum = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        sum += w->grants[i].remaining_cents;
    return sum > INT64_MAX ? INT64_MAX : sum < -INT64_MAX ? -INT64_MAX : (int64_t)sum;
}

int64_t wallet_book_holds_cents(const struct live_wallet *w)
{
    return wallet_book_grants_total(w) + w->pending_cents;
}

int64_t wallet_book_lifetime_cents(const struct live_wallet *w)
{
    /* consumed as written, the usage since (taken less given back), and what is left to take;
     * in 128 bits, so that even rows written before the limits cannot wrap it */
    int64_t room = w->row.limit == WALLET_LIMIT_SOFT
                       ? w->row.overdraft_limit_cents - w->row.overdrawn_cents
                       : 0;
    __int128 sum = (__int128)w->row.consumed_cents + w->taken_paid + w->taken_free +
                   w->overdrawn_added - w->given_paid - w->given_free - w->overdraft_given +
                   wallet_book_holds_cents(w) + (room > 0 ? room : 0);
    return sum > INT64_MAX ? INT64_MAX : sum < 0 ? 0 : (int64_t)sum;
}

int64_t wallet_book_unposted_cents(const struct live_wallet *w)
{
    int64_t taken = w->taken_paid + w->taken_free + w->overdrawn_added;
    int64_t given = w->given_paid + w->given_free + w->overdraft_given;
    return taken > given ? taken : given;
}

void wallet_book_drop_empty_grants(struct live_wallet *w)
{
    size_t keep = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].remaining_cents > 0)
            w->grants[keep++] = w->grants[i];
    w->grant_count = keep;
}

bool wallet_book_note_move(struct live_wallet *w, int64_t grant_id, int64_t cents)
{
    w->dirty = true;
    for (size_t i = 0; i < w->move_count; i++) {
        struct grant_move *m = &w->moves[i];
        if (m->grant_id == grant_id && (m->cents < 0) == (cents < 0)) {
            m->cents += cents;
            return true;
        }
    }
    if (!vec_room((void **)&w->moves, &w->move_cap, w->move_count, sizeof *w->moves, 8))
        return false;
    w->moves[w->move_count++] = (struct grant_move){grant_id, cents};
    w->dirty = true;
    return true;
}

/* The grant with that id among the live ones, or NULL. */
struct wallet_grant *wallet_book_live_grant(struct live_wallet *w, int64_t id)
{
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].id == id)
            return &w->grants[i];
    return NULL;
}

/* An id in the time of what it names (`at`), which a write-out may do in another
 * organization's command: an audit read one organization's test clock in another's ids. */
static bool new_lago_id(struct command *cmd, tally_time at, char out[UUID_TEXT])
{
    command_new_id_at(cmd, at, out);
    return true;
}

/* The organization's balance of an account (cached by the book, loaded on first use). */
static struct wallet_org_balance *org_balance(struct wallet_book *b, struct store *st,
                                              int64_t org_id, const char *currency,
                                              enum ledger_account account)
{
    for (size_t i = 0; i < b->org_balance_count; i++) {
        struct wallet_org_balance *o = &b->org_balances[i];
        if (o->org_id == org_id && o->account == account && strcmp(o->currency, currency) == 0)
            return o;
    }
    int64_t balance;
    if (store_ledger_balance(store_conn(st), org_id, currency, account, &balance) != STORE_OK ||
        !vec_room((void **)&b->org_balances, &b->org_balance_cap, b->org_balance_count,
                  sizeof *b->org_balances, 16))
        return NULL;
    struct wallet_org_balance *o = &b->org_balances[b->org_balance_count++];
    *o = (struct wallet_org_balance){.org_id = org_id, .account = account, .balance = balance};
    snprintf(o->currency, sizeof o->currency, "%s", currency);
    return o;
}

static int32_t exponent_of(const struct live_wallet *w)
{
    const struct currency *c = currency_find(w->row.currency, strlen(w->row.currency));
    return c ? c->exponent : 2;
}

const char *wallet_book_credits_text(struct command *cmd, const struct live_wallet *w,
                                     int64_t cents, bool floor)
{
    money_t credits;
    char text[MONEY_TEXT_MAX];
    enum money_status s =
        floor ? wallet_credits_within(cents, w->row.rate_amount, exponent_of(w), &credits)
              : wallet_cents_to_credits(cents, w->row.rate_amount, exponent_of(w), &credits);
    const char *past = floor ? WALLET_CREDITS_MAX_TEXT : "more than " WALLET_CREDITS_MAX_TEXT;
    if (s != MONEY_OK || money_format_fraction(money_normalize(credits), 1, text, sizeof text) == 0)
        return past;
    char *out = arena_strndup(cmd->arena, text, strlen(text));
    return out ? out : past;
}

/* What a wallet holds at most at its rate, for a message (wallet_bound_text), in the command's
 * arena. */
static const char *bound_text(struct command *cmd, const struct live_wallet *w)
{
    char text[WALLET_BOUND_TEXT_MAX];
    const char *copy =
        wallet_bound_text(w->row.rate_amount, exponent_of(w), w->row.currency, text)
            ? arena_strndup(cmd->arena, text, strlen(text))
            : arena_printf(cmd->arena, "%s credits (%" PRId64 " minor units of %s)",
                           WALLET_CREDITS_MAX_TEXT, WALLET_BALANCE_MAX_CENTS, w->row.currency);
    return copy ? copy : "its limit";
}

/* A refusal with Tally's message (printf-style), on `field`, code value_is_out_of_range. */
static enum command_result out_of_range(struct command *cmd, const char *field, const char *format,
                                        ...) __attribute__((format(printf, 3, 4)));
static enum command_result out_of_range(struct command *cmd, const char *field, const char *format,
                                        ...)
{
    va_list ap;
    va_start(ap, format);
    cmd->invalid_message = arena_vprintf(cmd->arena, format, ap); /* whole, where it cut at 400 */
    va_end(ap);
    cmd->invalid_field = field;
    cmd->invalid_code = "value_is_out_of_range";
    return COMMAND_INVALID;
}

/* A posting refused because an account would pass its bound (on `field`, or the account's
 * name): nothing was written. */
static enum command_result ledger_refused(struct command *cmd, const char *field,
                                          const struct live_wallet *w, enum ledger_account a)
{
    if (!field)
        field = ledger_account_name(a);
    if (ledger_account_is_wallet(a))
        return out_of_range(cmd, field,
                            "wallet %s's %s account would pass what the ledger holds; nothing "
                            "was recorded",
                            w->row.lago_id, ledger_account_name(a));
    return out_of_range(cmd, field,
                        "the organization's %s account in %s would pass %" PRId64
                        " cents, the most it holds; nothing was recorded",
                        ledger_account_name(a), w->row.currency, ledger_account_max(a));
}

enum command_result wallet_book_post_about(struct store *st, struct command *cmd,
                                           struct live_wallet *w, int64_t wallet_transaction_id,
                                           int64_t authorization_id, tally_time at,
                                           const struct ledger_posting *p)
{
    assert(ledger_posting_balanced(p));
    /* every balance after is known, and checked, before any changes */
    int64_t before[LEDGER_LINES_MAX], after[LEDGER_LINES_MAX];
    size_t org_at[LEDGER_LINES_MAX]; /* indexes: a lookup may move the book's array */
    struct wallet_book *b = w->book;
    for (size_t i = 0; i < p->count; i++) {
        enum ledger_account a = p->lines[i].account;
        if (ledger_account_is_wallet(a)) {
            before[i] = w->ledger[a];
            continue;
        }
        struct wallet_org_balance *o = org_balance(b, st, w->row.org_id, w->row.currency, a);
        if (!o)
            return COMMAND_STORE_FAILED;
        org_at[i] = (size_t)(o - b->org_balances);
        before[i] = o->balance;
    }
    size_t refused;
    if (!ledger_posting_balances_after(p, before, after, &refused))
        return ledger_refused(cmd, NULL, w, p->lines[refused].account);
    for (size_t i = 0; i < p->count; i++) {
        enum ledger_account a = p->lines[i].account;
        if (ledger_account_is_wallet(a)) {
            w->ledger[a] = after[i];
        } else {
            b->org_balances[org_at[i]].balance = after[i];
            b->org_balances[org_at[i]].dirty = true; /* stored by wallet_book_flush */
        }
    }
    struct store_posting_ref ref = {w->row.org_id,   w->row.customer_id,    w->row.id,
                                    w->row.currency, wallet_transaction_id, at,
                                    authorization_id};
    return store_ledger_post(st, &ref, p, after) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

enum command_result wallet_book_post(struct store *st, struct command *cmd, struct live_wallet *w,
                                     int64_t wallet_transaction_id, tally_time at,
                                     const struct ledger_posting *p)
{
    return wallet_book_post_about(st, cmd, w, wallet_transaction_id, 0, at, p);
}

enum command_result wallet_book_check_credits(struct store *st, struct command *cmd,
                                              struct live_wallet *w, bool paid, int64_t planned,
                                              int64_t cents, const char *field)
{
    int64_t holds = wallet_book_holds_cents(w), lifetime = wallet_book_lifetime_cents(w);
    /* what the same request brings in first counts (planned <= WALLET_BALANCE_MAX_CENTS) */
    holds = holds > INT64_MAX - planned ? INT64_MAX : holds + planned;
    lifetime = lifetime > INT64_MAX - planned ? INT64_MAX : lifetime + planned;
    switch (wallet_credits_fit(holds, lifetime, cents)) {
    case WALLET_FITS: break;
    case WALLET_FIT_BALANCE:
        if (!cmd)
            return COMMAND_INVALID;
        /* a wallet being made has no id to name yet: none is kept (an audit found the message
         * naming an id that GET then answered 404) */
        if (cmd->kind == COMMAND_WALLET_CREATE)
            return out_of_range(
                cmd, field,
                "a wallet holds at most %s at its rate, and the new wallet's paid_credits and "
                "granted_credits together would pass it; no wallet was made",
                bound_text(cmd, w));
        return out_of_range(
            cmd, field,
            "a wallet holds at most %s at its rate; wallet %s holds %s, purchases waiting for "
            "payment included, so at most %s more fit; nothing was recorded",
            bound_text(cmd, w), w->row.lago_id, wallet_book_credits_text(cmd, w, holds, false),
            wallet_book_credits_text(
                cmd, w, holds < WALLET_BALANCE_MAX_CENTS ? WALLET_BALANCE_MAX_CENTS - holds : 0,
                true));
    case WALLET_FIT_LIFETIME:
        if (!cmd)
            return COMMAND_INVALID;
        return out_of_range(cmd, field,
                            "a wallet takes in at most %s credits (%" PRId64
                            " cents) over its life, what it consumed, voided or let expire "
                            "included; wallet %s has taken in %s: top up another wallet; "
                            "nothing was recorded",
                            wallet_book_credits_text(cmd, w, WALLET_LIFETIME_MAX_CENTS, true),
                            WALLET_LIFETIME_MAX_CENTS, w->row.lago_id,
                            wallet_book_credits_text(cmd, w, lifetime, false));
    }
    /* the organization's account the credits enter by, and for paid ones, the cash their
     * payment brings (receivable is relieved by it: cash is what gathers every purchase) */
    enum ledger_account by[2] = {paid ? LEDGER_RECEIVABLE : LEDGER_PROMOTIONAL_GRANTS, LEDGER_CASH};
    for (int i = 0; i < (paid ? 2 : 1); i++) {
        struct wallet_org_balance *o =
            org_balance(w->book, st, w->row.org_id, w->row.currency, by[i]);
        int64_t after;
        if (!o)
            return COMMAND_STORE_FAILED;
        if (!ledger_balance_after(by[i], o->balance, cents, &after))
            return cmd ? ledger_refused(cmd, field, w, by[i]) : COMMAND_INVALID;
    }
    return COMMAND_OK;
}

enum command_result wallet_book_check_top_up(struct store *st, struct command *cmd,
                                             struct live_wallet *w, int64_t paid, int64_t granted)
{
    enum command_result r = COMMAND_OK;
    if (paid > 0)
        r = wallet_book_check_credits(st, cmd, w, true, 0, paid, "paid_credits");
    if (r == COMMAND_OK && granted > 0)
        r = wallet_book_check_credits(st, cmd, w, false, paid, granted, "granted_credits");
    return r;
}

/*
 * The wallet's latest usage (or refund) transaction, when the book knows none: the wallet was
 * loaded since it was written (a start, a command that failed), and the day's write-outs must
 * go on adding to it. A restart once began a second transaction of the same day, so a wallet's
 * history read otherwise than had it run straight through (tests/api/restart_usage.test.mjs).
 */
static enum store_status latest_transaction(struct store *st, struct command *cmd,
                                            const struct live_wallet *w, bool refund, int64_t *tx,
                                            int64_t *tx_day, int64_t *tx_cents)
{
    struct store_wallet_transaction_filter f = {
        .status_mask = UINT64_C(1) << (refund ? WALLET_TX_USAGE_REFUND : WALLET_TX_USAGE)};
    struct store_wallet_transaction *latest = NULL;
    size_t count = 0;
    int64_t total = 0;
    if (store_wallet_transaction_list(store_conn(st), w->row.id, &f, 0, 1, &latest, &count, &total,
                                      cmd->arena) != STORE_OK)
        return STORE_ERROR;
    if (count == 1) {
        *tx = latest->id;
        *tx_day = latest->created_at / USEC_PER_DAY;
        *tx_cents = latest->amount_cents;
    }
    return STORE_OK;
}

/*
 * The day's usage debits (or refund steps) of a wallet are one transaction, added to by every
 * flush of that UTC day, with one consumption row per grant, added to likewise: the history a
 * person reads stays short, and a debit costs updates of rows the day already wrote.
 */
static enum store_status usage_transaction(struct store *st, struct command *cmd, tally_time now,
                                           struct live_wallet *w, bool refund, int64_t amount,
                                           int64_t *id)
{
    int64_t day = now / USEC_PER_DAY;
    int64_t *tx = refund ? &w->refund_tx_id : &w->usage_tx_id;
    int64_t *tx_day = refund ? &w->refund_day : &w->usage_day;
    int64_t *tx_cents = refund ? &w->refund_tx_cents : &w->usage_tx_cents;
    bool found = false;
    if (*tx == 0 && latest_transaction(st, cmd, w, refund, tx, tx_day, tx_cents) != STORE_OK)
        return STORE_ERROR;
    /* a transaction (and its consumption rows) adds up at most WALLET_DAY_TRANSACTION_MAX_CENTS:
     * past it the day goes on in a new one */
    if (*tx != 0 && *tx_day == day && *tx_cents <= WALLET_DAY_TRANSACTION_MAX_CENTS - amount &&
        store_wallet_transaction_add_amount(st, *tx, amount, &found) != STORE_OK)
        return STORE_ERROR;
    if (found) {
        *tx_cents += amount;
    } else {
        struct store_wallet_transaction t = {
            .org_id = w->row.org_id,
            .wallet_id = w->row.id,
            .type = refund ? WALLET_INBOUND : WALLET_OUTBOUND,
            .state = WALLET_TX_SETTLED,
            .status = refund ? WALLET_TX_USAGE_REFUND : WALLET_TX_USAGE,
            .source = WALLET_SOURCE_MANUAL,
            .amount_cents = amount,
            .priority = WALLET_PRIORITY_MAX,
            .has_settled_at = true,
            .settled_at = now,
            .created_at = now,
        };
        if (!new_lago_id(cmd, now, t.lago_id) ||
            store_wallet_transaction_insert(st, &t) != STORE_OK)
            return STORE_ERROR;
        *tx = t.id;
        *tx_day = day;
        *tx_cents = amount;
    }
    *id = *tx;
    /* one consumption row per grant: the group's moves of a grant (of this sign) added up */
    for (size_t i = 0; i < w->move_count; i++) {
        const struct grant_move *m = &w->moves[i];
        if ((m->cents < 0) != refund)
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = w->moves[k].grant_id == m->grant_id && (w->moves[k].cents < 0) == refund;
        if (seen)
            continue;
        int64_t cents = 0;
        for (size_t k = i; k < w->move_count; k++)
            if (w->moves[k].grant_id == m->grant_id && (w->moves[k].cents < 0) == refund)
                cents += refund ? -w->moves[k].cents : w->moves[k].cents;
        char lago_id[UUID_TEXT];
        if (!new_lago_id(cmd, now, lago_id) ||
            store_wallet_consumption_insert(st, w->row.org_id, lago_id, m->grant_id, *tx, cents,
                                            now) != STORE_OK)
            return STORE_ERROR;
    }
    return STORE_OK;
}

static int64_t grant_remaining(const struct live_wallet *w, int64_t grant_id)
{
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].id == grant_id)
            return w->grants[i].remaining_cents;
    return 0; /* emptied: it left the live list */
}

/*
 * What repays a soft wallet's overdraft settles what its usage transactions owe, oldest first:
 * each part a consumption of `inbound_id` (a grant, or a refund step's transaction that cancels
 * overdrawn usage) by that usage, so both sides account for it. The usage owes only once the
 * flush has written it: a grant that repays first has its wallet's pending debits written
 * (write_pending_first).
 */
static enum command_result settle_owed(struct store *st, struct command *cmd,
                                       const struct live_wallet *w, int64_t inbound_id,
                                       int64_t cents, tally_time now)
{
    while (cents > 0) {
        int64_t tx, owed;
        enum store_status s = store_wallet_oldest_owed(st, w->row.id, &tx, &owed);
        if (s == STORE_NOT_FOUND)
            break; /* nothing owes: check_wallet finds that the usage and the overdraft differ */
        if (s != STORE_OK)
            return COMMAND_STORE_FAILED;
        int64_t part = owed < cents ? owed : cents;
        char lago_id[UUID_TEXT];
        if (!new_lago_id(cmd, now, lago_id) ||
            store_wallet_transaction_add_owed(st, tx, -part) != STORE_OK ||
            store_wallet_consumption_insert(st, w->row.org_id, lago_id, inbound_id, tx, part,
                                            now) != STORE_OK)
            return COMMAND_STORE_FAILED;
        cents -= part;
    }
    return COMMAND_OK;
}

/*
 * Usage taken from a wallet (into revenue) or, with `refund`, given back (out of revenue):
 * its day's usage transaction and one posting over the paid, promotional and overdraft parts.
 * The overdraft part of usage is what that transaction owes; of a refund step, it settles what
 * the oldest usage owes. `tax` of it goes to taxes_payable (taken back out of it, with
 * `refund`) rather than revenue: the taxes of the fees it paid (found by an audit: the whole
 * debit, its VAT too, was booked as revenue). A tax part alone (a step that moved tax and net
 * apart, nothing taken) is a posting between the two accounts, without a transaction.
 */
static enum command_result post_usage(struct store *st, struct command *cmd, tally_time now,
                                      struct live_wallet *w, bool refund, int64_t paid,
                                      int64_t promotional, int64_t overdraft, int64_t tax)
{
    /* each part, and so their sum, is at most WALLET_UNPOSTED_MAX_CENTS and one debit's step */
    int64_t total = paid + promotional + overdraft;
    if (total <= 0 && tax == 0)
        return COMMAND_OK;
    const enum ledger_account accounts[3] = {LEDGER_CUSTOMER_PAID_CREDITS,
                                             LEDGER_CUSTOMER_PROMOTIONAL_CREDITS,
                                             LEDGER_CUSTOMER_OVERDRAFT};
    const int64_t amounts[3] = {paid, promotional, overdraft};
    struct ledger_posting p;
    ledger_posting_init(&p, refund ? LEDGER_CAUSE_REFUND_STEP : LEDGER_CAUSE_CONSUMPTION);
    for (int i = 0; i < 3; i++) {
        bool fits = refund ? ledger_posting_move(&p, accounts[i], LEDGER_REVENUE, amounts[i])
                           : ledger_posting_move(&p, LEDGER_REVENUE, accounts[i], amounts[i]);
        if (!fits)
            return ledger_refused(cmd, NULL, w, LEDGER_REVENUE);
    }
    if (!(refund ? ledger_posting_move(&p, LEDGER_REVENUE, LEDGER_TAXES_PAYABLE, tax)
                 : ledger_posting_move(&p, LEDGER_TAXES_PAYABLE, LEDGER_REVENUE, tax)))
        return ledger_refused(cmd, NULL, w, LEDGER_TAXES_PAYABLE);
    if (ledger_posting_empty(&p))
        return COMMAND_OK;
    if (total <= 0)
        return wallet_book_post(st, cmd, w, 0, now, &p);
    int64_t id;
    if (usage_transaction(st, cmd, now, w, refund, total, &id) != STORE_OK ||
        (overdraft > 0 && !refund &&
         store_wallet_transaction_add_owed(st, id, overdraft) != STORE_OK))
        return COMMAND_STORE_FAILED;
    enum command_result r =
        overdraft > 0 && refund ? settle_owed(st, cmd, w, id, overdraft, now) : COMMAND_OK;
    return r == COMMAND_OK ? wallet_book_post(st, cmd, w, id, now, &p) : r;
}

/* Writes one wallet's changes of the current command: grants, transactions, postings. */
static enum command_result flush_wallet(struct store *st, struct command *cmd,
                                        struct live_wallet *w)
{
    /* deferred debits are written as of the latest of them, not of the command that flushes */
    tally_time now = w->pending_at ? w->pending_at : cmd->now;
    int64_t taken = w->taken_paid + w->taken_free + w->overdrawn_added;
    int64_t given = w->given_paid + w->given_free + w->overdraft_given;
    int64_t consumed;
    /* consumed_cents stays within the wallet's lifetime bound (wallet_book_lifetime_cents):
     * checked all the same, so that nothing could ever wrap */
    if (__builtin_sub_overflow(taken, given, &consumed) ||
        __builtin_add_overflow(w->row.consumed_cents, consumed, &consumed))
        return out_of_range(cmd, "consumed_credits",
                            "wallet %s's consumed credits would pass what a wallet records; "
                            "nothing was recorded",
                            w->row.lago_id);
    enum command_result r = post_usage(st, cmd, now, w, false, w->taken_paid, w->taken_free,
                                       w->overdrawn_added, w->taken_tax);
    if (r == COMMAND_OK)
        r = post_usage(st, cmd, now, w, true, w->given_paid, w->given_free, w->overdraft_given,
                       w->given_tax);
    if (r != COMMAND_OK)
        return r;
    for (size_t i = 0; i < w->move_count; i++) {
        int64_t grant = w->moves[i].grant_id;
        bool seen = false; /* one UPDATE per grant */
        for (size_t k = 0; k < i && !seen; k++)
            seen = w->moves[k].grant_id == grant;
        if (!seen && store_wallet_transaction_set_remaining(st, grant, grant_remaining(w, grant)) !=
                         STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    w->row.consumed_cents = consumed;
    w->row.balance_cents = wallet_book_grants_total(w) - w->row.overdrawn_cents;
    if (taken > given) {
        w->row.has_last_consumed_at = true;
        w->row.last_consumed_at = now;
    }
    w->row.updated_at = now;
    if (store_wallet_save_balances(st, &w->row) != STORE_OK)
        return COMMAND_STORE_FAILED;
    w->pending_at = 0;
    w->move_count = 0;
    w->taken_paid = w->taken_free = w->overdrawn_added = 0;
    w->given_paid = w->given_free = w->overdraft_given = 0;
    w->taken_tax = w->given_tax = 0;
    w->dirty = false;
    return COMMAND_OK;
}

/*
 * Before a posting that moves the wallet's credits or overdraft (new credits, an expiry, a
 * void, a repayment): its pending debits and refund steps are written now, so that its ledger
 * reads in the order things happened, and the usage they overdrew owes its part before credits
 * repay it (settle_owed). Found by an audit: a threshold top-up in an event's command repaid
 * an overdraft the ledger showed drawn only after it (the account at -400), and credits given
 * back to a grant past its expiry expired before they came back. A deferred command's journal
 * stretch then ends with its commit, as after any direct write.
 */
static enum command_result write_pending_first(struct store *st, struct command *cmd,
                                               struct live_wallet *w)
{
    if (w->taken_paid == 0 && w->taken_free == 0 && w->overdrawn_added == 0 && w->given_paid == 0 &&
        w->given_free == 0 && w->overdraft_given == 0 && w->taken_tax == 0 && w->given_tax == 0)
        return COMMAND_OK;
    if (w->book && w->book->deferring)
        w->book->must_flush = true;
    return flush_wallet(st, cmd, w);
}

static bool format_fundings(const struct charge_debit *d, struct arena *a, const char **out)
{
    size_t cap = d->funding_count * FUNDING_TEXT_MAX + 1, len = 0;
    char *text = arena_alloc(a, cap);
    if (!text)
        return false;
    text[0] = '\0';
    for (size_t i = 0; i < d->funding_count; i++) {
        const struct funding *f = &d->fundings[i];
        len += (size_t)snprintf(text + len, cap - len, "%c:%" PRId64 ":%" PRId64 ":%" PRId64 ";",
                                (char)f->kind, f->wallet_id, f->grant_id, f->cents);
    }
    *out = text;
    return true;
}

#ifdef TALLY_CHECK_INVARIANTS
/* Each wallet equals the sum of its grants less its overdraft, and its ledger accounts, both as
 * the writer keeps them and as the last stored entries left them, once the debits waiting for
 * the next flush (in the journal) are posted. `capturing`: a capture is under way (its event
 * may write the wallets out when its steps turn from giving back to debiting), and what its
 * hold released is still its to spend. */
static void check_wallet(struct store *st, const struct live_wallet *w, tally_time now,
                         bool capturing)
{
    int64_t paid_grants = 0, free_grants = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        *(w->grants[i].paid ? &paid_grants : &free_grants) += w->grants[i].remaining_cents;
    if (!w->dirty)
        assert(w->row.balance_cents == paid_grants + free_grants - w->row.overdrawn_cents);
    assert(w->ledger[LEDGER_CUSTOMER_PAID_CREDITS] == -paid_grants - w->taken_paid + w->given_paid);
    assert(w->ledger[LEDGER_CUSTOMER_PROMOTIONAL_CREDITS] ==
           -free_grants - w->taken_free + w->given_free);
    assert(w->ledger[LEDGER_CUSTOMER_OVERDRAFT] ==
           w->row.overdrawn_cents - w->overdrawn_added + w->overdraft_given);
    /* what its usage owes is what it has overdrawn, as written (settle_owed) */
    int64_t owed;
    if (store_wallet_owed_total(store_conn(st), w->row.id, &owed) == STORE_OK)
        assert(owed == w->row.overdrawn_cents - w->overdrawn_added + w->overdraft_given);
    assert(w->ledger[LEDGER_CUSTOMER_HELD_CREDITS] == -w->row.held_cents);
    int64_t held_on_grants = 0;
    for (size_t i = 0; i < w->grant_count; i++) {
        const struct wallet_grant *g = &w->grants[i];
        assert(g->held_cents >= 0 && g->held_cents <= g->remaining_cents);
        assert(capturing ? g->capturing_cents >= 0
                         : g->capturing_cents == 0 && !g->capturing_at_rollover);
        held_on_grants += g->held_cents;
    }
    assert(held_on_grants <= w->row.held_cents);
    /* a wallet that owes holds no spendable credits: the next credits repay it first */
    if (w->row.overdrawn_cents > 0 && !w->row.has_terminated_at)
        for (size_t i = 0; i < w->grant_count; i++)
            assert(wallet_grant_past_expiry(&w->grants[i], now) ||
                   wallet_grant_unheld(&w->grants[i]) == 0);
    enum ledger_account accounts[] = {LEDGER_CUSTOMER_PAID_CREDITS,
                                      LEDGER_CUSTOMER_PROMOTIONAL_CREDITS,
                                      LEDGER_CUSTOMER_OVERDRAFT, LEDGER_CUSTOMER_HELD_CREDITS};
    for (size_t i = 0; i < sizeof accounts / sizeof accounts[0]; i++) {
        int64_t stored;
        if (store_ledger_wallet_balance(store_conn(st), w->row.id, accounts[i], &stored) !=
            STORE_OK)
            return; /* the store failed: the command fails on its own */
        assert(stored == w->ledger[accounts[i]]);
    }
}
#endif

#ifdef TALLY_CHECK_INVARIANTS
/* The overdraft the book's debits say each wallet funded is at most what it owes: a refund
 * step gives back overdraft from those fundings, a top-up's repayment turns them into the
 * grant's. Not equal: a charge's debit moving into a new period leaves the last period's
 * fundings to the store, while that overdraft stays owed until credits repay it. Once more
 * (a load bringing back a last period's row, restart_random seed 33), a later refund step gave
 * back overdraft the wallet did not owe. */
static void check_overdraft_fundings(const struct customer_wallets *cw)
{
    for (size_t i = 0; i < cw->wallet_count; i++) {
        const struct live_wallet *w = &cw->wallets[i];
        int64_t funded = 0;
        for (size_t j = 0; j < cw->debit_count; j++)
            for (size_t k = 0; k < cw->debits[j].funding_count; k++) {
                const struct funding *f = &cw->debits[j].fundings[k];
                if (f->kind == FUNDING_OVERDRAFT && f->wallet_id == w->row.id)
                    funded += f->cents;
            }
        assert(funded <= w->row.overdrawn_cents);
    }
}
#endif

enum command_result wallet_book_flush_customer(struct store *st, struct command *cmd,
                                               struct customer_wallets *cw)
{
    struct arena *a = cmd->arena;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        enum command_result r =
            cw->wallets[i].dirty ? flush_wallet(st, cmd, &cw->wallets[i]) : COMMAND_OK;
        if (r != COMMAND_OK)
            return r;
#ifdef TALLY_CHECK_INVARIANTS
        check_wallet(st, &cw->wallets[i], cmd->now, cmd->kind == COMMAND_AUTHORIZATION_CAPTURE);
#endif
    }
    for (size_t i = 0; i < cw->debit_count; i++) {
        struct charge_debit *d = &cw->debits[i];
        if (!d->dirty)
            continue;
        struct store_charge_debit row = {
            d->subscription_id, d->charge_lago_id, d->period_from, cw->org_id,
            cw->customer_id,    d->charged_cents,  NULL,           d->posted_tax_cents,
            d->opened_event_id, d->opened_cents,   d->seq};
        if (d->moved && d->moved_from != d->period_from &&
            store_charge_debit_drop(st, d->subscription_id, d->charge_lago_id, d->moved_from) !=
                STORE_OK)
            return COMMAND_STORE_FAILED;
        if (!format_fundings(d, a, &row.fundings) || store_charge_debit_put(st, &row) != STORE_OK)
            return COMMAND_STORE_FAILED;
        d->moved = false;
        d->dirty = false;
    }
#ifdef TALLY_CHECK_INVARIANTS
    check_overdraft_fundings(cw);
#endif
    return COMMAND_OK;
}

/* The organizations' ledger balances the postings of this transaction moved. */
static enum command_result store_org_balances(struct wallet_book *b, struct store *st)
{
    for (size_t i = 0; i < b->org_balance_count; i++) {
        struct wallet_org_balance *o = &b->org_balances[i];
        if (o->dirty && store_ledger_balance_put(st, o->org_id, o->currency, o->account,
                                                 o->balance) != STORE_OK)
            return COMMAND_STORE_FAILED;
        o->dirty = false;
    }
    return COMMAND_OK;
}

/*
 * A journal record, every integer a zigzag LEB128 varint (most are small: a record is about
 * 35 bytes a customer, 85 before version 3):
 *   version, customer count, then per customer:
 *     org id, customer id, wallet count, debit count,
 *     per wallet: id, pending_at, taken paid, taken free, overdrawn added, given paid, given
 *                 free, overdraft given, held cents, move count, taken tax, given tax, then
 *                 (grant id, cents) each;
 *     per debit:  subscription id, period from, charged cents, posted tax, the charge, funding
 *                 count, then (kind, wallet id, grant id, cents) each.
 * Versions 2 and 3 have no tax fields (their wallets' taxes are 0, their debits' posted tax
 * -1: debited before taxes had an account). Since version 5 a debit's posted tax is followed by
 * its opening (opened_event_id, opened_cents); before, a debit has none (-1, 0). Since version
 * 6 the opening is followed by the debit's seq (0: not known, a shell's from an older record);
 * before, a debit the tables do not hold is numbered after theirs, in record order.
 * Since version 3, pending_at and period from are each the difference from the record's
 * previous one (customers debited in one commit share their period and nearly their time),
 * and a charge is 0 followed by its lago_id's length and bytes the first time the record names
 * it, then k (its k-th such name) — one byte where the lago_id took 37 (about 40% of a
 * record). The journal was a third of what the writer wrote at each commit over HTTP.
 * Version 2 (absolute times, every lago_id in full) is still read, for a journal left by a
 * crash before an upgrade.
 * Every wallet and debit changed since the customer's last flush is in it, so the newest record
 * naming a customer is all that customer's pending state. A customer written out by the commit
 * is named with a wallet count of -1 (and no debits): the tables hold all of it.
 */
#define JOURNAL_VERSION 6
#define JOURNAL_VERSION_NO_SEQ 5     /* before a debit's seq */
#define JOURNAL_VERSION_NO_OPENING 4 /* before a debit's opening (opened_event_id, _cents) */
#define JOURNAL_VERSION_NO_TAX 3     /* before taxes_payable: no tax fields */
#define JOURNAL_VERSION_FULL_NAMES 2
#define JOURNAL_WRITTEN_OUT (-1)
#define JOURNAL_TEXT_MAX 256   /* a charge's lago_id, and then some */
#define JOURNAL_CHARGES_MAX 64 /* charges a record names by number; the rest in full each time */

/* What a record's writer and its reader keep between its entries. */
struct journal_context {
    tally_time pending_at, period_from; /* the previous ones (0 before the first) */
    size_t charge_count;
    const char *charges[JOURNAL_CHARGES_MAX]; /* writer: borrowed from the debits */
    size_t charge_lens[JOURNAL_CHARGES_MAX];  /* reader: into the record */
};

static void put_delta(struct buf *out, tally_time v, tally_time *previous)
{
    varint_put(out, v - *previous);
    *previous = v;
}

static void put_charge(struct buf *out, struct journal_context *jc, const char *lago_id)
{
    for (size_t k = 0; k < jc->charge_count; k++)
        if (strcmp(jc->charges[k], lago_id) == 0) {
            varint_put(out, (int64_t)k + 1);
            return;
        }
    size_t len = strlen(lago_id);
    varint_put(out, 0);
    varint_put(out, (int64_t)len);
    buf_append(out, lago_id, len);
    if (jc->charge_count < JOURNAL_CHARGES_MAX)
        jc->charges[jc->charge_count++] = lago_id;
}

static void journal_customer(struct buf *out, struct journal_context *jc,
                             const struct customer_wallets *cw)
{
    int64_t wallets = 0, debits = 0;
    for (size_t i = 0; i < cw->wallet_count; i++)
        wallets += cw->wallets[i].dirty;
    for (size_t i = 0; i < cw->debit_count; i++)
        debits += cw->debits[i].dirty;
    varint_put(out, cw->org_id);
    varint_put(out, cw->customer_id);
    varint_put(out, wallets);
    varint_put(out, debits);
    for (size_t i = 0; i < cw->wallet_count; i++) {
        const struct live_wallet *w = &cw->wallets[i];
        if (!w->dirty)
            continue;
        varint_put(out, w->row.id);
        put_delta(out, w->pending_at, &jc->pending_at);
        int64_t fields[] = {w->taken_paid,     w->taken_free,          w->overdrawn_added,
                            w->given_paid,     w->given_free,          w->overdraft_given,
                            w->row.held_cents, (int64_t)w->move_count, w->taken_tax,
                            w->given_tax};
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
            varint_put(out, fields[k]);
        for (size_t k = 0; k < w->move_count; k++) {
            varint_put(out, w->moves[k].grant_id);
            varint_put(out, w->moves[k].cents);
        }
    }
    for (size_t i = 0; i < cw->debit_count; i++) {
        const struct charge_debit *d = &cw->debits[i];
        if (!d->dirty)
            continue;
        varint_put(out, d->subscription_id);
        put_delta(out, d->period_from, &jc->period_from);
        varint_put(out, d->charged_cents);
        varint_put(out, d->posted_tax_cents);
        varint_put(out, d->opened_event_id);
        varint_put(out, d->opened_cents);
        varint_put(out, d->seq);
        put_charge(out, jc, d->charge_lago_id);
        varint_put(out, (int64_t)d->funding_count);
        for (size_t k = 0; k < d->funding_count; k++) {
            const struct funding *f = &d->fundings[k];
            varint_put(out, (int64_t)f->kind);
            varint_put(out, f->wallet_id);
            varint_put(out, f->grant_id);
            varint_put(out, f->cents);
        }
    }
}

/* A customer the commit writes out, named in its record so recovery skips its older ones. */
static void journal_written_out(struct buf *out, const struct customer_wallets *cw)
{
    varint_put(out, cw->org_id);
    varint_put(out, cw->customer_id);
    varint_put(out, JOURNAL_WRITTEN_OUT);
    varint_put(out, 0);
}

/* ---- stuck customers (wallet_book.h) ---- */

/* The customer's write-out failed at now_usec: it is stuck, or waits twice as long. False if
 * that cannot be recorded (no memory: the caller fails the batch, as before). */
static bool stuck_fail(struct wallet_book *b, const struct customer_wallets *cw, int64_t now_usec)
{
    b->writeout_failures++;
    struct wallet_stuck *s = stuck_find(b, cw->customer_id);
    if (!s) {
        if (!vec_room((void **)&b->stuck, &b->stuck_cap, b->stuck_count, sizeof *b->stuck, 4))
            return false;
        s = &b->stuck[b->stuck_count++];
        *s = (struct wallet_stuck){.org_id = cw->org_id, .customer_id = cw->customer_id};
    }
    s->wait_usec = s->wait_usec == 0                           ? WALLET_STUCK_FIRST_USEC
                   : s->wait_usec >= WALLET_STUCK_MAX_USEC / 2 ? WALLET_STUCK_MAX_USEC
                                                               : s->wait_usec * 2;
    s->retry_at_usec = now_usec + s->wait_usec;
    return true;
}

/* The stuck customer was written out: it leaves (noted in `unstuck` for the engine's log). */
static void stuck_passed(struct wallet_book *b, struct wallet_stuck *s)
{
    if (vec_room((void **)&b->unstuck, &b->unstuck_cap, b->unstuck_count, sizeof *b->unstuck, 4))
        b->unstuck[b->unstuck_count++] = *s;
    *s = b->stuck[--b->stuck_count];
}

struct recovery {
    struct wallet_book *book;
    struct store *st;
    struct command *cmd;
    int64_t now_usec;
};

static bool adopt_entry(struct recovery *rc, const struct customer_wallets *shell,
                        struct customer_wallets *cw);

/* A shell's customer loaded, its journaled state on top of its tables, in the shell's place.
 * False (nothing changed) if it still does not load or the state does not fit. */
static bool unshell(struct wallet_book *b, struct store *st, struct command *cmd,
                    struct customer_wallets **cwp)
{
    struct customer_wallets *shell = *cwp;
    struct customer_wallets *cw = load_customer(b, st, shell->org_id, shell->customer_id);
    struct recovery rc = {b, st, cmd, 0};
    if (!cw)
        return false;
    if (!adopt_entry(&rc, shell, cw)) {
        customer_free(cw);
        return false;
    }
    cw->dirty = true;
    cw->unjournaled = shell->unjournaled;
    cw->dirty_since_usec = shell->dirty_since_usec;
    cw->journal_first = shell->journal_first;
    size_t i = slot_of(b, shell->customer_id);
    while (b->items[i] != shell)
        i = (i + 1) & (b->cap - 1);
    b->items[i] = cw;
    customer_free(shell);
    *cwp = cw;
    return true;
}

enum write_out { WRITTEN, KEPT, WRITE_FAILED };

/*
 * Writes one customer out under its own savepoint (a stuck one only once its retry came). If
 * that fails, its memory and the organizations' balances go back as they were, and it is
 * stuck: KEPT, still pending. WRITE_FAILED: the batch cannot go on (memory, the savepoint).
 */
static enum write_out write_out(struct wallet_book *b, struct store *st, struct command *cmd,
                                struct customer_wallets *cw, int64_t now_usec)
{
    struct wallet_stuck *stuck = stuck_find(b, cw->customer_id);
    if (stuck && now_usec < stuck->retry_at_usec)
        return KEPT;
    if (cw->shell && !unshell(b, st, cmd, &cw))
        return stuck_fail(b, cw, now_usec) ? KEPT : WRITE_FAILED;
    arena_reset(&b->writeout_arena);
    struct customer_snapshot snap;
    size_t orgs = b->org_balance_count;
    if (!snapshot_take(&snap, cw, &b->writeout_arena) ||
        !vec_room((void **)&b->writeout_saved, &b->writeout_saved_cap, orgs,
                  sizeof *b->writeout_saved, 16))
        return WRITE_FAILED;
    if (orgs > 0)
        memcpy(b->writeout_saved, b->org_balances, orgs * sizeof *b->writeout_saved);
    /* a refusal's words set by the write-out are not the command's (out_of_range) */
    const char *field = cmd->invalid_field, *code = cmd->invalid_code,
               *message = cmd->invalid_message;
    if (store_savepoint(st) != STORE_OK)
        return WRITE_FAILED;
    if (wallet_book_flush_customer(st, cmd, cw) == COMMAND_OK &&
        store_savepoint_release(st) == STORE_OK) {
        if (stuck)
            stuck_passed(b, stuck);
        return WRITTEN;
    }
    store_savepoint_rollback(st);
    snapshot_restore(cw, &snap);
    if (orgs > 0)
        memcpy(b->org_balances, b->writeout_saved, orgs * sizeof *b->writeout_saved);
    b->org_balance_count = orgs;
    cmd->invalid_field = field;
    cmd->invalid_code = code;
    cmd->invalid_message = message;
    return stuck_fail(b, cw, now_usec) ? KEPT : WRITE_FAILED;
}

/*
 * The journal after a write-out that left customers pending (stuck): one record of all of them
 * (each customer's record holds all its pending state), every older record dropped, so that
 * none names a customer written out since.
 */
static enum command_result rewrite_journal(struct wallet_book *b, struct store *st)
{
    struct buf record;
    struct journal_context jc = {0};
    buf_init(&record);
    varint_put(&record, JOURNAL_VERSION);
    varint_put(&record, (int64_t)b->dirty_count);
    for (size_t i = 0; i < b->dirty_count; i++)
        journal_customer(&record, &jc, book_find(b, b->dirty[i]));
    int64_t id = 0;
    bool ok = !buf_failed(&record) &&
              vec_room((void **)&b->records, &b->record_cap, 0, sizeof *b->records, 64) &&
              store_wallet_journal_append(st, record.data, record.len, &id) == STORE_OK &&
              store_wallet_journal_drop_before(st, id) == STORE_OK;
    if (ok) {
        b->records[0] = (struct journal_record){id, record.len};
        b->record_count = 1;
        b->journal_records = 1;
        b->journal_bytes = record.len;
        for (size_t i = 0; i < b->dirty_count; i++)
            book_find(b, b->dirty[i])->journal_first = id;
    }
    buf_free(&record);
    return ok ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* Every customer changed since the last record is in the journal now (or written out). */
static void journaled_all(struct wallet_book *b)
{
    for (size_t i = 0; i < b->unjournaled_count; i++) {
        struct customer_wallets *cw = book_find(b, b->unjournaled[i]);
        if (cw)
            cw->unjournaled = false;
    }
    b->unjournaled_count = 0;
}

enum command_result wallet_book_flush(struct wallet_book *b, struct store *st, struct command *cmd)
{
    int64_t now_usec = wallclock_monotonic_usec();
    size_t kept = 0;
    bool wrote = false;
    for (size_t i = 0; i < b->dirty_count; i++) {
        int64_t id = b->dirty[i];
        struct customer_wallets *cw = book_find(b, id);
        if (!cw)
            continue; /* dropped: nothing of it is ahead of the store */
        switch (write_out(b, st, cmd, cw, now_usec)) {
        case WRITE_FAILED: return COMMAND_STORE_FAILED;
        case KEPT: b->dirty[kept++] = id; break;
        case WRITTEN:
            cw = book_find(b, id); /* a shell was replaced */
            cw->dirty = false;
            cw->journal_first = 0;
            wrote = true;
            break;
        }
    }
    b->dirty_count = kept;
    /* with stuck customers left, the journal becomes their one record, unless it already is
     * just that (nothing written out or changed since: an idle server writes nothing) */
    if (kept > 0 && (wrote || b->unjournaled_count > 0 || b->must_flush ||
                     b->journal_records != (int64_t)b->record_count)) {
        enum command_result r = rewrite_journal(b, st);
        if (r != COMMAND_OK)
            return r;
    }
    journaled_all(b);
    if (kept == 0) {
        if (b->journal_records > 0 && store_wallet_journal_clear(st) != STORE_OK)
            return COMMAND_STORE_FAILED;
        b->record_count = 0;
        b->journal_records = 0;
        b->journal_bytes = 0;
    }
    b->must_flush = false;
    drop_reloads(b);
    return store_org_balances(b, st);
}

bool wallet_book_pending(const struct wallet_book *b)
{
    size_t stuck = 0;
    for (size_t i = 0; i < b->stuck_count; i++) {
        const struct customer_wallets *cw = book_find(b, b->stuck[i].customer_id);
        stuck += cw && cw->dirty;
    }
    return b->dirty_count > stuck;
}

int64_t wallet_book_stuck_due(const struct wallet_book *b, int64_t now_usec)
{
    for (size_t i = 0; i < b->stuck_count; i++) {
        const struct customer_wallets *cw = book_find(b, b->stuck[i].customer_id);
        if (cw && cw->dirty && now_usec >= b->stuck[i].retry_at_usec)
            return b->stuck[i].org_id;
    }
    return 0;
}

long wallet_book_retry_stuck(struct wallet_book *b, struct store *st, struct command *cmd,
                             int64_t org_id, int64_t now_usec)
{
    assert(b->unjournaled_count == 0); /* between batches */
    long written = 0;
    size_t kept = 0;
    for (size_t i = 0; i < b->dirty_count; i++) {
        int64_t id = b->dirty[i];
        struct customer_wallets *cw = book_find(b, id);
        const struct wallet_stuck *s = stuck_find(b, id);
        if (!cw || !s || s->org_id != org_id || now_usec < s->retry_at_usec) {
            b->dirty[kept++] = id;
            continue;
        }
        switch (write_out(b, st, cmd, cw, now_usec)) {
        case WRITE_FAILED: return -1;
        case KEPT: b->dirty[kept++] = id; break;
        case WRITTEN:
            cw = book_find(b, id); /* a shell was replaced */
            cw->dirty = false;
            cw->journal_first = 0;
            written++;
            break;
        }
    }
    b->dirty_count = kept;
    if (written == 0)
        return 0;
    if (kept > 0 ? rewrite_journal(b, st) != COMMAND_OK
                 : store_wallet_journal_clear(st) != STORE_OK)
        return -1;
    if (kept == 0) {
        b->record_count = 0;
        b->journal_records = 0;
        b->journal_bytes = 0;
    }
    drop_reloads(b);
    return store_org_balances(b, st) == COMMAND_OK ? written : -1;
}

/*
 * Writes out the customers pending longest, and the stuck ones whose retry came (each on its
 * own, write_out): those written out are listed in b->written (how many is returned, -1 on a
 * failure of the batch) and leave b->dirty, which keeps its order.
 */
static long write_out_oldest(struct wallet_book *b, struct store *st, struct command *cmd,
                             int64_t now_usec)
{
    b->written_count = 0;
    b->rejournal_count = 0;
    size_t kept = 0, i = 0;
    for (; i < b->dirty_count && b->written_count < WALLET_JOURNAL_FLUSH_PER_COMMIT; i++) {
        int64_t id = b->dirty[i];
        struct customer_wallets *cw = book_find(b, id);
        assert(cw && cw->dirty);
        if (!stuck_find(b, id) && (cw->journal_first == 0 ||
                                   now_usec - cw->dirty_since_usec < WALLET_JOURNAL_AGE_MAX_USEC))
            break; /* the list is in the order they became dirty: the rest are younger */
        switch (write_out(b, st, cmd, cw, now_usec)) {
        case WRITE_FAILED: return -1;
        case KEPT:
            cw = book_find(b, id);
            /* stuck, its record old: recorded again, it moves to the end of the list */
            if (cw->journal_first > 0 && !cw->unjournaled &&
                now_usec - cw->dirty_since_usec >= WALLET_JOURNAL_AGE_MAX_USEC) {
                if (!vec_room((void **)&b->rejournal, &b->rejournal_cap, b->rejournal_count,
                              sizeof *b->rejournal, 16))
                    return -1;
                b->rejournal[b->rejournal_count++] = id;
            } else {
                b->dirty[kept++] = id;
            }
            break;
        case WRITTEN:
            if (!vec_room((void **)&b->written, &b->written_cap, b->written_count,
                          sizeof *b->written, 64))
                return -1;
            b->written[b->written_count++] = id;
            cw = book_find(b, id); /* a shell was replaced */
            cw->dirty = false;
            cw->journal_first = 0;
            break;
        }
    }
    if (kept < i && i < b->dirty_count)
        memmove(b->dirty + kept, b->dirty + i, (b->dirty_count - i) * sizeof *b->dirty);
    b->dirty_count = kept + (b->dirty_count - i);
    /* (room: they were in the list) */
    for (size_t k = 0; k < b->rejournal_count; k++)
        b->dirty[b->dirty_count++] = b->rejournal[k];
    return (long)b->written_count;
}

/* Drops the stored records that no pending customer needs any more. */
static enum store_status drop_needless_records(struct wallet_book *b, struct store *st,
                                               int64_t newest)
{
    int64_t keep_from = newest + 1;
    if (b->dirty_count > 0) {
        struct customer_wallets *head = book_find(b, b->dirty[0]);
        assert(head && head->journal_first > 0);
        keep_from = head->journal_first;
    }
    size_t needless = 0;
    while (needless < b->record_count && b->records[needless].id < keep_from)
        b->journal_bytes -= b->records[needless++].bytes;
    if (needless == 0)
        return STORE_OK;
    if (store_wallet_journal_drop_before(st, keep_from) != STORE_OK)
        return STORE_ERROR;
    b->record_count -= needless;
    memmove(b->records, b->records + needless, b->record_count * sizeof *b->records);
    b->journal_records = (int64_t)b->record_count;
    return STORE_OK;
}

enum command_result wallet_book_journal(struct wallet_book *b, struct store *st,
                                        struct command *cmd, int64_t now_usec)
{
    long written_out = write_out_oldest(b, st, cmd, now_usec);
    if (written_out < 0)
        return COMMAND_STORE_FAILED;
    size_t entries = (size_t)written_out + b->rejournal_count;
    for (size_t i = 0; i < b->unjournaled_count; i++) {
        struct customer_wallets *cw = book_find(b, b->unjournaled[i]);
        entries += cw && cw->dirty;
    }
    if (entries > 0) {
        struct buf record;
        struct journal_context jc = {0};
        buf_init(&record);
        buf_reserve(&record, entries * 64); /* most records fit: no regrowing */
        varint_put(&record, JOURNAL_VERSION);
        varint_put(&record, (int64_t)entries);
        for (long i = 0; i < written_out; i++)
            journal_written_out(&record, book_find(b, b->written[i]));
        for (size_t i = 0; i < b->unjournaled_count; i++) {
            struct customer_wallets *cw = book_find(b, b->unjournaled[i]);
            if (!cw || !cw->dirty)
                continue; /* written out above */
            journal_customer(&record, &jc, cw);
#ifdef TALLY_CHECK_INVARIANTS
            for (size_t k = 0; k < cw->wallet_count; k++)
                check_wallet(st, &cw->wallets[k], cmd->now, false);
            check_overdraft_fundings(cw);
#endif
        }
        for (size_t i = 0; i < b->rejournal_count; i++)
            journal_customer(&record, &jc, book_find(b, b->rejournal[i]));
        int64_t id = 0;
        bool ok = !buf_failed(&record) &&
                  vec_room((void **)&b->records, &b->record_cap, b->record_count,
                           sizeof *b->records, 64) &&
                  store_wallet_journal_append(st, record.data, record.len, &id) == STORE_OK;
        if (ok) {
            b->records[b->record_count++] = (struct journal_record){id, record.len};
            b->journal_records = (int64_t)b->record_count;
            b->journal_bytes += record.len;
        }
        buf_free(&record);
        if (!ok)
            return COMMAND_STORE_FAILED;
        for (size_t i = 0; i < b->unjournaled_count; i++) {
            struct customer_wallets *cw = book_find(b, b->unjournaled[i]);
            if (cw && cw->dirty && cw->journal_first == 0) {
                cw->journal_first = id;
                cw->dirty_since_usec = now_usec;
            }
        }
        for (size_t i = 0; i < b->rejournal_count; i++) {
            struct customer_wallets *cw = book_find(b, b->rejournal[i]);
            cw->journal_first = id;
            cw->dirty_since_usec = now_usec;
        }
        if (drop_needless_records(b, st, id) != STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    journaled_all(b);
    drop_reloads(b);
    return store_org_balances(b, st);
}

/* ---- recovery from the journal ---- */

/* A count from the record, sane for what remains of it (each item at least a byte). */
static size_t checked_count(struct varint_reader *r, int64_t n)
{
    if (n < 0 || n > r->end - r->at)
        r->ok = false;
    return r->ok ? (size_t)n : 0;
}

static size_t get_count(struct varint_reader *r)
{
    return checked_count(r, varint_get(r));
}

/* A record being read: its version says how times and charges are written. */
struct journal_reader {
    struct varint_reader r;
    int64_t version;
    struct journal_context jc; /* charges[k] point into the record */
};

static tally_time get_time(struct journal_reader *jr, tally_time *previous)
{
    int64_t v = varint_get(&jr->r);
    if (jr->version == JOURNAL_VERSION_FULL_NAMES)
        return v;
    if (__builtin_add_overflow(*previous, v, previous))
        jr->r.ok = false;
    return *previous;
}

/* A debit's charge lago_id into `out` (JOURNAL_TEXT_MAX bytes, NUL-terminated). */
static bool get_charge(struct journal_reader *jr, char out[JOURNAL_TEXT_MAX])
{
    struct varint_reader *r = &jr->r;
    int64_t ref = jr->version == JOURNAL_VERSION_FULL_NAMES ? 0 : varint_get(r);
    const char *name;
    int64_t len;
    if (ref > 0) {
        if ((size_t)ref > jr->jc.charge_count)
            return r->ok = false;
        name = jr->jc.charges[ref - 1];
        len = (int64_t)jr->jc.charge_lens[ref - 1];
    } else {
        len = varint_get(r);
        if (!r->ok || ref < 0 || len <= 0 || len >= JOURNAL_TEXT_MAX || r->end - r->at < len)
            return r->ok = false;
        name = (const char *)r->at;
        r->at += len;
        if (jr->version != JOURNAL_VERSION_FULL_NAMES &&
            jr->jc.charge_count < JOURNAL_CHARGES_MAX) {
            jr->jc.charges[jr->jc.charge_count] = name;
            jr->jc.charge_lens[jr->jc.charge_count++] = (size_t)len;
        }
    }
    memcpy(out, name, (size_t)len);
    out[len] = '\0';
    return true;
}

/* A grant a move names: live, or back from its row (emptied grants leave the live list). */
static struct wallet_grant *recovered_grant(struct recovery *rc, struct live_wallet *w,
                                            int64_t grant_id)
{
    struct wallet_grant *g = wallet_book_live_grant(w, grant_id);
    if (g)
        return g;
    struct store_wallet_transaction t;
    if (store_wallet_transaction_by_id(store_conn(rc->st), grant_id, &t, rc->cmd->arena) !=
            STORE_OK ||
        t.wallet_id != w->row.id)
        return NULL;
    struct wallet_grant row = wallet_book_grant_of(&t);
    return wallet_book_grant_insert(w, &row) ? wallet_book_live_grant(w, grant_id) : NULL;
}

/* One wallet of a record's entry, into the shell (NULL: skipped, a newer record had it). */
static bool parse_wallet(struct journal_reader *jr, struct customer_wallets *shell)
{
    struct varint_reader *r = &jr->r;
    int64_t id = varint_get(r);
    tally_time pending_at = get_time(jr, &jr->jc.pending_at);
    int64_t fields[7];
    for (size_t k = 0; k < 7; k++)
        fields[k] = varint_get(r);
    size_t moves = get_count(r);
    bool taxed = jr->version >= JOURNAL_VERSION_NO_OPENING;
    int64_t taken_tax = taxed ? varint_get(r) : 0, given_tax = taxed ? varint_get(r) : 0;
    struct live_wallet *w = NULL;
    if (shell && r->ok) {
        w = &shell->wallets[shell->wallet_count++]; /* room for the entry's count */
        *w = (struct live_wallet){.book = NULL, .pending_at = pending_at, .dirty = true};
        w->row.id = id;
        w->taken_paid = fields[0];
        w->taken_free = fields[1];
        w->overdrawn_added = fields[2];
        w->given_paid = fields[3];
        w->given_free = fields[4];
        w->overdraft_given = fields[5];
        w->row.held_cents = fields[6];
        w->taken_tax = taken_tax;
        w->given_tax = given_tax;
    }
    for (size_t k = 0; k < moves && r->ok; k++) {
        int64_t grant_id = varint_get(r), cents = varint_get(r);
        if (w && !wallet_book_note_move(w, grant_id, cents))
            return false;
    }
    return r->ok;
}

/* One debit of a record's entry, into the shell (NULL: skipped). */
static bool parse_debit(struct journal_reader *jr, struct customer_wallets *shell)
{
    struct varint_reader *r = &jr->r;
    int64_t subscription_id = varint_get(r);
    tally_time period_from = get_time(jr, &jr->jc.period_from);
    int64_t charged = varint_get(r);
    bool taxed = jr->version >= JOURNAL_VERSION_NO_OPENING;
    int64_t posted_tax = taxed ? varint_get(r) : -1;
    bool opened = jr->version >= JOURNAL_VERSION_NO_SEQ;
    int64_t opened_event_id = opened ? varint_get(r) : -1;
    int64_t opened_cents = opened ? varint_get(r) : 0;
    int64_t seq = jr->version == JOURNAL_VERSION ? varint_get(r) : 0;
    char charge_lago_id[JOURNAL_TEXT_MAX];
    if (!get_charge(jr, charge_lago_id) || !r->ok)
        return r->ok = false;
    struct charge_debit *d = NULL;
    if (shell) {
        d = wallet_book_find_debit(shell, subscription_id, charge_lago_id);
        if (!d && !(d = wallet_book_add_debit(shell, subscription_id, charge_lago_id, period_from)))
            return false;
        wallet_book_debit_reset(d, period_from);
        d->seq = seq < 0 ? 0 : seq; /* 0: the tables' own, or the next (adopt_entry) */
        d->charged_cents = charged;
        d->posted_tax_cents = posted_tax;
        d->opened_event_id = opened_event_id;
        d->opened_cents = opened_cents;
        d->dirty = true;
    }
    size_t fundings = get_count(r);
    for (size_t k = 0; k < fundings && r->ok; k++) {
        struct funding f = {.kind = (enum funding_kind)varint_get(r)};
        f.wallet_id = varint_get(r);
        f.grant_id = varint_get(r);
        f.cents = varint_get(r);
        if (d && !wallet_book_push_funding(d, f))
            return false;
    }
    return r->ok;
}

/*
 * A customer's journaled state (the shell) on top of what its tables hold (cw, loaded): its
 * wallets' pending debits and moves, and its charges' debits. False if it does not fit them
 * (a wallet gone, a grant taken below zero) or the store fails; cw is then to be dropped.
 */
static bool adopt_entry(struct recovery *rc, const struct customer_wallets *shell,
                        struct customer_wallets *cw)
{
    for (size_t i = 0; i < shell->wallet_count; i++) {
        const struct live_wallet *from = &shell->wallets[i];
        struct live_wallet *w = wallet_book_wallet(cw, from->row.id);
        if (!w)
            return false; /* nothing else removes a wallet while the journal names it */
        w->pending_at = from->pending_at;
        w->taken_paid = from->taken_paid;
        w->taken_free = from->taken_free;
        w->overdrawn_added = from->overdrawn_added;
        w->given_paid = from->given_paid;
        w->given_free = from->given_free;
        w->overdraft_given = from->overdraft_given;
        w->taken_tax = from->taken_tax;
        w->given_tax = from->given_tax;
        w->row.overdrawn_cents += w->overdrawn_added - w->overdraft_given;
        /* holds are posted as they are made: only the wallet row lags */
        w->row.held_cents = from->row.held_cents;
        w->ledger[LEDGER_CUSTOMER_HELD_CREDITS] = -w->row.held_cents;
        w->dirty = true;
        for (size_t k = 0; k < from->move_count; k++) {
            const struct grant_move *m = &from->moves[k];
            struct wallet_grant *g = recovered_grant(rc, w, m->grant_id);
            if (!g || !wallet_book_note_move(w, m->grant_id, m->cents))
                return false;
            g->remaining_cents -= m->cents;
        }
        for (size_t k = 0; k < w->grant_count; k++)
            if (w->grants[k].remaining_cents < 0)
                return false; /* the record does not fit the tables */
        /* grants back from their rows hold what the holds made since reserve of them */
        if (!load_held(store_conn(rc->st), w))
            return false;
        wallet_book_drop_empty_grants(w);
    }
    for (size_t i = 0; i < shell->debit_count; i++) {
        const struct charge_debit *from = &shell->debits[i];
        struct charge_debit *d =
            wallet_book_find_debit(cw, from->subscription_id, from->charge_lago_id);
        if (!d && !(d = wallet_book_add_debit(cw, from->subscription_id, from->charge_lago_id,
                                              from->period_from)))
            return false;
        wallet_book_debit_reset(d, from->period_from); /* another start is another period */
        if (from->seq > 0)
            debit_numbered(cw, d, from->seq);
        d->charged_cents = from->charged_cents;
        d->posted_tax_cents = from->posted_tax_cents;
        d->opened_event_id = from->opened_event_id;
        d->opened_cents = from->opened_cents;
        d->dirty = true;
        for (size_t k = 0; k < from->funding_count; k++)
            if (!wallet_book_push_funding(d, from->fundings[k]))
                return false;
    }
    return true;
}

/* An empty shell for a customer's entry of `wallets` wallets; NULL if memory runs out. */
static struct customer_wallets *new_shell(int64_t org_id, int64_t customer_id, size_t wallets)
{
    struct arena arena;
    arena_init(&arena);
    struct customer_wallets *cw = arena_alloc(&arena, sizeof *cw);
    if (!cw) {
        arena_free(&arena);
        return NULL;
    }
    *cw = (struct customer_wallets){
        .org_id = org_id, .customer_id = customer_id, .shell = true, .arena = arena};
    cw->wallets = arena_alloc(&cw->arena, (wallets ? wallets : 1) * sizeof *cw->wallets);
    if (!cw->wallets) {
        customer_free(cw);
        return NULL;
    }
    return cw;
}

/*
 * A customer's newest entry, read into its shell: its tables loaded with it on top, pending in
 * the book; or, if they do not load or it does not fit them, the shell itself, stuck (its
 * state kept in memory and in the journal, wallet_book.h). False only when memory runs out.
 */
static bool settle_entry(struct recovery *rc, struct customer_wallets *shell)
{
    struct wallet_book *b = rc->book;
    struct customer_wallets *cw = load_customer(b, rc->st, shell->org_id, shell->customer_id);
    if (cw && !adopt_entry(rc, shell, cw)) {
        customer_free(cw);
        cw = NULL;
    }
    struct customer_wallets *keep = cw ? cw : shell;
    if (cw)
        customer_free(shell);
    if (!book_put(b, keep)) {
        customer_free(keep);
        return false;
    }
    if (!wallet_book_mark_dirty(b, keep))
        return false;
    const struct wallet_stuck *s = stuck_find(b, keep->customer_id);
    return cw || (s && rc->now_usec < s->retry_at_usec) || stuck_fail(b, keep, rc->now_usec);
}

/* One record, newest first: a customer already recovered by a newer record is skipped. */
static bool recover_record(const void *data, size_t len, void *ctx)
{
    struct recovery *rc = ctx;
    struct journal_reader jr = {.r = {data, (const uint8_t *)data + len, true}};
    struct varint_reader *r = &jr.r;
    jr.version = varint_get(r);
    if (jr.version != JOURNAL_VERSION && jr.version != JOURNAL_VERSION_NO_SEQ &&
        jr.version != JOURNAL_VERSION_NO_OPENING && jr.version != JOURNAL_VERSION_NO_TAX &&
        jr.version != JOURNAL_VERSION_FULL_NAMES)
        return false;
    size_t customers = get_count(r);
    for (size_t i = 0; i < customers && r->ok; i++) {
        int64_t org_id = varint_get(r), customer_id = varint_get(r);
        int64_t wallet_field = varint_get(r);
        bool seen = book_find(rc->book, customer_id) != NULL;
        if (wallet_field == JOURNAL_WRITTEN_OUT) {
            /* its tables are up to date: its older records are skipped (an empty shell marks
             * it, dropped once the journal is read) */
            if (varint_get(r) != 0)
                return false;
            struct customer_wallets *mark = NULL;
            if (!seen && r->ok &&
                (!(mark = new_shell(org_id, customer_id, 0)) || !book_put(rc->book, mark))) {
                if (mark)
                    customer_free(mark);
                return false;
            }
            continue;
        }
        size_t wallets = checked_count(r, wallet_field), debits = get_count(r);
        struct customer_wallets *shell = NULL;
        if (r->ok && !seen && !(shell = new_shell(org_id, customer_id, wallets)))
            return false;
        bool ok = true;
        for (size_t k = 0; k < wallets && ok && r->ok; k++)
            ok = parse_wallet(&jr, shell);
        for (size_t k = 0; k < debits && ok && r->ok; k++)
            ok = parse_debit(&jr, shell);
        if (!ok || !r->ok) {
            if (shell)
                customer_free(shell);
            return false;
        }
        if (shell && !settle_entry(rc, shell))
            return false;
    }
    return r->ok && r->at == r->end;
}

enum command_result wallet_book_recover(struct wallet_book *b, struct store *st,
                                        struct command *cmd)
{
    assert(b->count == 0 && b->dirty_count == 0);
    int64_t records = 0;
    if (store_wallet_journal_count(store_conn(st), &records) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (records == 0)
        return COMMAND_OK;
    struct recovery rc = {b, st, cmd, wallclock_monotonic_usec()};
    enum store_status s = store_wallet_journal_each(store_conn(st), recover_record, &rc);
    /* the written-out markers go: those customers load from their tables on first use */
    for (size_t i = 0; i < b->cap;) {
        struct customer_wallets *cw = b->items[i];
        if (cw && cw->shell && !cw->dirty)
            book_remove(b, cw->customer_id); /* what shifts into slot i is looked at next */
        else
            i++;
    }
    if (s != STORE_OK)
        return COMMAND_STORE_FAILED;
    b->journal_records = records; /* so the flush empties the table */
    size_t pending = b->dirty_count;
    enum command_result r = wallet_book_flush(b, st, cmd);
    b->recovered_written = r == COMMAND_OK ? pending - b->dirty_count : 0;
    return r;
}

/* Whether take_out takes from grant g: that one, or (grant_id 0) every grant, but a void of
 * the wallet's credits passes over grants past their expiry (what they keep is held). */
static bool taken_out_of(const struct wallet_grant *g, enum wallet_transaction_status status,
                         int64_t grant_id, tally_time now)
{
    if (grant_id != 0)
        return g->id == grant_id;
    return status != WALLET_TX_VOIDED || !wallet_grant_past_expiry(g, now);
}

/*
 * Takes credits out of the wallet's grants, in consumption order, as one outbound transaction
 * (voided or expired): `cents` of them, or all (cents 0), from every grant (taken_out_of) or
 * (grant_id != 0) that one, never what open holds reserve (a termination releases them
 * first). Paid credits go to breakage; free ones take back what was granted.
 * Like a void, it counts as consumed (Lago's rule). Sets *tx to the transaction's row (0 if
 * none was due).
 */
static enum command_result take_out(struct store *st, struct command *cmd, struct live_wallet *w,
                                    enum wallet_transaction_status status, int64_t grant_id,
                                    int64_t cents, const struct wallet_credits *cr,
                                    struct store_wallet_transaction *tx)
{
    int64_t left = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        if (taken_out_of(&w->grants[i], status, grant_id, cmd->now))
            left += wallet_grant_unheld(&w->grants[i]);
    if (cents > 0 && cents < left)
        left = cents;
    *tx = (struct store_wallet_transaction){
        .org_id = w->row.org_id,
        .wallet_id = w->row.id,
        .type = WALLET_OUTBOUND,
        .state = WALLET_TX_SETTLED,
        .status = status,
        .source = WALLET_SOURCE_MANUAL,
        .amount_cents = left,
        .priority = cr ? cr->priority : WALLET_PRIORITY_MAX,
        .name = cr ? cr->name : NULL,
        .details_json = cr ? cr->void_details_json : NULL,
        .has_settled_at = true,
        .settled_at = cmd->now,
        .created_at = cmd->now,
    };
    if (left == 0)
        return COMMAND_OK;
    enum command_result r = write_pending_first(st, cmd, w);
    if (r != COMMAND_OK)
        return r;
    if (!new_lago_id(cmd, cmd->now, tx->lago_id) ||
        store_wallet_transaction_insert(st, tx) != STORE_OK)
        return COMMAND_STORE_FAILED;
    struct ledger_posting p;
    ledger_posting_init(&p, status == WALLET_TX_EXPIRED ? LEDGER_CAUSE_EXPIRY : LEDGER_CAUSE_VOID);
    for (size_t i = 0; i < w->grant_count && left > 0; i++) {
        struct wallet_grant *g = &w->grants[i];
        if (!taken_out_of(g, status, grant_id, cmd->now))
            continue;
        int64_t part = wallet_grant_unheld(g) < left ? wallet_grant_unheld(g) : left;
        if (part <= 0)
            continue;
        g->remaining_cents -= part;
        left -= part;
        /* parts of grants that held at most tx->amount_cents together */
        bool fits =
            g->paid ? ledger_posting_move(&p, LEDGER_BREAKAGE, LEDGER_CUSTOMER_PAID_CREDITS, part)
                    : ledger_posting_move(&p, LEDGER_PROMOTIONAL_GRANTS,
                                          LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, part);
        if (!fits)
            return ledger_refused(cmd, NULL, w,
                                  g->paid ? LEDGER_BREAKAGE : LEDGER_PROMOTIONAL_GRANTS);
        char lago_id[UUID_TEXT];
        if (!new_lago_id(cmd, cmd->now, lago_id) ||
            store_wallet_consumption_insert(st, w->row.org_id, lago_id, g->id, tx->id, part,
                                            cmd->now) != STORE_OK ||
            store_wallet_transaction_set_remaining(st, g->id, g->remaining_cents) != STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    assert(left == 0);
    wallet_book_drop_empty_grants(w);
    int64_t consumed;
    if (__builtin_add_overflow(w->row.consumed_cents, tx->amount_cents, &consumed))
        return out_of_range(cmd, "consumed_credits",
                            "wallet %s's consumed credits would pass what a wallet records; "
                            "nothing was recorded",
                            w->row.lago_id);
    r = wallet_book_post(st, cmd, w, tx->id, cmd->now, &p);
    if (r != COMMAND_OK)
        return r;
    w->row.consumed_cents = consumed;
    w->row.balance_cents = wallet_book_grants_total(w) - w->row.overdrawn_cents;
    return COMMAND_OK;
}

enum command_result wallet_book_settle_terminated(struct store *st, struct command *cmd,
                                                  struct live_wallet *w)
{
    assert(w->row.has_terminated_at);
    w->pending_at = cmd->now; /* the refund step is posted as of this command */
    enum command_result r = flush_wallet(st, cmd, w);
    if (r != COMMAND_OK)
        return r;
    /* a wallet terminated at its expiration_at let its credits expire: these follow them */
    bool expired = w->row.has_expiration_at && w->row.expiration_at <= w->row.terminated_at;
    wallet_book_drop_empty_grants(w);
    while (w->grant_count > 0) { /* each take_out empties grants[0], which then leaves */
        const struct wallet_grant *g = &w->grants[0];
        enum wallet_transaction_status status =
            expired || wallet_grant_past_expiry(g, cmd->now) ? WALLET_TX_EXPIRED : WALLET_TX_VOIDED;
        struct store_wallet_transaction t;
        if ((r = take_out(st, cmd, w, status, g->id, 0, NULL, &t)) != COMMAND_OK)
            return r;
    }
    w->row.updated_at = cmd->now;
    if (store_wallet_save_balances(st, &w->row) != STORE_OK)
        return COMMAND_STORE_FAILED;
#ifdef TALLY_CHECK_INVARIANTS
    check_wallet(st, w, cmd->now, false);
#endif
    /* written at once, from memory that may be ahead of the tables: the journal's stretch
     * ends with this commit */
    if (w->book->deferring)
        w->book->must_flush = true;
    return COMMAND_OK;
}

/* Expires what is left of one grant (or, grant_id 0, of every grant); `limit` > 0 expires at
 * most that much (the part of a grant that does not roll over). The wallet row is written. */
enum command_result wallet_book_expire(struct store *st, struct command *cmd, struct live_wallet *w,
                                       int64_t grant_id, int64_t limit)
{
    struct store_wallet_transaction t;
    enum command_result r = take_out(st, cmd, w, WALLET_TX_EXPIRED, grant_id, limit, NULL, &t);
    if (r != COMMAND_OK || t.amount_cents == 0)
        return r;
    w->row.updated_at = cmd->now;
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

int64_t wallet_book_held_elsewhere(const struct live_wallet *w)
{
    int64_t on_grants = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        on_grants += w->grants[i].held_cents;
    return w->row.held_cents - on_grants;
}

/* Whether a grant expires before `before` with credits no hold keeps (or captures). */
static bool expires_unheld(const struct wallet_grant *g, tally_time before)
{
    return g->has_expiration && g->expiration_at < before &&
           wallet_grant_unheld(g) - g->capturing_cents > 0;
}

enum command_result wallet_book_expire_unheld(struct store *st, struct command *cmd,
                                              struct live_wallet *w, tally_time before)
{
    /* planned first (an expiry changes the list), one expiry per grant; counted before the
     * plan is allocated, as an advance over a rule's anniversaries looks at every grant at each
     * (an audit found the command's arena grow with their square) */
    size_t count = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        count += expires_unheld(&w->grants[i], before);
    if (count == 0)
        return COMMAND_OK;
    struct grant_move *due = arena_alloc(cmd->arena, count * sizeof *due);
    if (!due)
        return COMMAND_STORE_FAILED;
    count = 0;
    for (size_t i = 0; i < w->grant_count; i++) {
        const struct wallet_grant *g = &w->grants[i];
        if (expires_unheld(g, before))
            due[count++] = (struct grant_move){g->id, wallet_grant_unheld(g) - g->capturing_cents};
    }
    for (size_t i = 0; i < count; i++) {
        enum command_result r = wallet_book_expire(st, cmd, w, due[i].grant_id, due[i].cents);
        if (r != COMMAND_OK)
            return r;
    }
    /* written at once, from memory that may be ahead of the tables: the journal's stretch
     * ends with this commit */
    if (count > 0 && w->book && w->book->deferring)
        w->book->must_flush = true;
    return COMMAND_OK;
}

enum command_result wallet_book_customer_date(const struct live_wallet *w,
                                              const struct command *cmd, const char *zone_name,
                                              char date[static 11])
{
    const struct tz_zone *zone = zone_name && w->book && w->book->tzdb
                                     ? tzdb_get(w->book->tzdb, zone_name, strlen(zone_name))
                                     : NULL;
    struct civil_date day;
    if (zone_name && w->book && w->book->tzdb && !zone)
        return COMMAND_STORE_FAILED; /* no UTC date instead of the customer's (rule_zone) */
    if (!tz_local_date(zone, cmd->now, &day) || day.year < 0 || day.year > 9999)
        return COMMAND_STORE_FAILED; /* the clock is within the zone's range */
    snprintf(date, 11, "%04d-%02d-%02d", day.year, day.month, day.day);
    return COMMAND_OK;
}

/* The member `key` of the JSON object `text` (NULL: none) as a string in `a`, into *out (NULL
 * when absent or null); false when the text cannot be read or memory runs out. */
static bool json_text_member(const char *text, const char *key, const char **out, struct arena *a)
{
    *out = NULL;
    if (!text)
        return true;
    struct json_object *doc = json_tokener_parse(text), *v;
    if (!doc)
        return false;
    bool ok = true;
    if (json_object_object_get_ex(doc, key, &v) && json_object_is_type(v, json_type_string))
        ok = (*out = arena_strndup(a, json_object_get_string(v),
                                   (size_t)json_object_get_string_len(v))) != NULL;
    json_object_put(doc);
    return ok;
}

/*
 * A paid top-up is billed by a credit invoice, issued with it: finalized at once, or left open
 * until its payment (invoice_requires_successful_payment). Its credits wait for the payment
 * either way (Lago's: the flag decides when the invoice is issued, not when credits arrive).
 * Its purchase_order_number is the top-up's (a rule's top-up carries its rule's, else its
 * wallet's: read_rule), else the wallet's, as Lago's spec says, fixed from then on.
 */
static enum command_result credit_invoice(struct store *st, struct command *cmd,
                                          const struct live_wallet *w,
                                          const struct store_wallet_transaction *t, bool open)
{
    struct customer customer;
    if (store_customer_get(store_conn(st), w->row.org_id, w->row.external_customer_id, &customer,
                           cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* the accounting date is the customer's, as Lago's: its zone's day (UTC without one) */
    char date[11];
    if (wallet_book_customer_date(w, cmd, customer.text[CUSTOMER_TIMEZONE], date) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    struct store_invoice v = {
        .org_id = w->row.org_id,
        .customer_id = w->row.customer_id,
        .type = INVOICE_CREDIT,
        .status = open ? INVOICE_OPEN : INVOICE_FINALIZED,
        .payment_status = INVOICE_PAYMENT_PENDING,
        .amount_cents = t->amount_cents,
        .wallet_transaction_id = t->id,
        .issuing_date = date,
        .net_payment_term =
            customer.net_payment_term == CUSTOMER_INT_NULL ? 0 : customer.net_payment_term,
        .created_at = cmd->now,
        .updated_at = cmd->now,
    };
    memcpy(v.currency, w->row.currency, sizeof v.currency);
    if (!json_text_member(t->details_json, "purchase_order_number", &v.purchase_order_number,
                          cmd->arena) ||
        (!v.purchase_order_number && !json_text_member(w->row.terms_json, "purchase_order_number",
                                                       &v.purchase_order_number, cmd->arena)))
        return COMMAND_STORE_FAILED;
    command_new_id(cmd, v.lago_id);
    if (store_invoice_save(st, &v) != STORE_OK ||
        store_wallet_transaction_set_invoice(st, t->id, v.lago_id) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

/* The order the overdraft was run up in: the debits by period, then as first made (seq). */
static int debit_order(const void *pa, const void *pb)
{
    const struct charge_debit *a = *(const struct charge_debit *const *)pa;
    const struct charge_debit *b = *(const struct charge_debit *const *)pb;
    if (a->period_from != b->period_from)
        return a->period_from < b->period_from ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/*
 * Credits that repay a wallet's overdraft paid, in effect, for the usage that overdrew it:
 * the charges' overdraft fundings become fundings of the new grant, so that a later refund
 * step gives the credits back to it. A partial repayment takes the charges in the order the
 * overdraft was run up, (period, seq), kept in the debits' rows and the journal: the book's
 * own array order differs after a load (a start between the debits and the top-up changed
 * which charge's overdraft became the grant's: tests/api/restart_random.test.mjs), and the
 * store's key order (subscription, charge lago id) follows random ids, so that two customers
 * fed the same requests split a later refund between a paid and a promotional grant
 * differently (tests/api/overdraft_repayment_order.test.mjs).
 */
struct charge_debit **wallet_book_debits_in_order(struct customer_wallets *cw)
{
    if (cw->debit_count == 0)
        return NULL;
    struct charge_debit **order = malloc(cw->debit_count * sizeof *order);
    if (!order)
        return NULL;
    for (size_t i = 0; i < cw->debit_count; i++)
        order[i] = &cw->debits[i];
    qsort(order, cw->debit_count, sizeof *order, debit_order);
    return order;
}

bool wallet_book_reassign_overdraft(struct customer_wallets *cw, const struct live_wallet *w,
                                    int64_t grant_id, int64_t cents)
{
    if (cw->debit_count == 0 || cents <= 0)
        return true;
    struct charge_debit **order = wallet_book_debits_in_order(cw);
    if (!order)
        return false;
    bool ok = true;
    for (size_t i = 0; i < cw->debit_count && cents > 0 && ok; i++) {
        struct charge_debit *d = order[i];
        for (size_t k = 0; k < d->funding_count && cents > 0; k++) {
            struct funding *f = &d->fundings[k];
            if (f->kind != FUNDING_OVERDRAFT || f->wallet_id != w->row.id)
                continue;
            int64_t part = f->cents < cents ? f->cents : cents;
            if (part < f->cents) { /* split: the rest stays overdraft, just after */
                if (!vec_room((void **)&d->fundings, &d->funding_cap, d->funding_count,
                              sizeof *d->fundings, 4)) {
                    ok = false;
                    break;
                }
                f = &d->fundings[k];
                memmove(f + 1, f, (d->funding_count - k) * sizeof *f);
                d->funding_count++;
                f[1].cents -= part;
            }
            *f = (struct funding){FUNDING_GRANT, w->row.id, grant_id, part};
            cents -= part;
            d->dirty = true;
        }
    }
    free(order);
    return ok;
}

/* A new settled grant and its posting (repaying an overdraft first), or a pending purchase:
 * paid credits are never given on trust (an audit found them spendable before payment and
 * kept after it failed). */
enum command_result wallet_book_add_credits(struct store *st, struct command *cmd,
                                            struct customer_wallets *cw, struct live_wallet *w,
                                            bool paid, int64_t cents,
                                            const struct wallet_credits *cr, bool open_invoice,
                                            enum wallet_transaction_source source, int64_t *made)
{
    bool pending = paid;
    struct store_wallet_transaction t = {
        .org_id = w->row.org_id,
        .wallet_id = w->row.id,
        .type = WALLET_INBOUND,
        .state = pending ? WALLET_TX_PENDING : WALLET_TX_SETTLED,
        .status = paid ? WALLET_TX_PURCHASED : WALLET_TX_GRANTED,
        .source = source,
        .amount_cents = cents,
        .remaining_cents = pending ? 0 : cents,
        .priority = cr->priority,
        .paid = paid,
        .has_expiration_at = cr->has_expiration_at,
        .expiration_at = cr->expiration_at,
        .name = cr->name,
        .details_json = cr->details_json,
        .has_settled_at = !pending,
        .settled_at = cmd->now,
        .created_at = cmd->now,
    };
    /* A soft wallet below zero is repaid first: the overdraft was usage these credits pay. */
    int64_t repay = pending ? 0 : (w->row.overdrawn_cents < cents ? w->row.overdrawn_cents : cents);
    t.remaining_cents -= repay;
    if (!new_lago_id(cmd, cmd->now, t.lago_id) ||
        store_wallet_transaction_insert(st, &t) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* the request's own transactions are its answer; a rule's are not */
    if (source == WALLET_SOURCE_MANUAL && cmd->transaction_count < 3)
        memcpy(cmd->transaction_lago_ids[cmd->transaction_count++], t.lago_id, sizeof t.lago_id);
    if (source != WALLET_SOURCE_MANUAL)
        cmd->rule_credits_made++;
    if (paid && credit_invoice(st, cmd, w, &t, open_invoice) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    if (made)
        *made = t.id; /* the grant now, or once it is paid */
    if (pending) {
        w->pending_cents += cents;
        return COMMAND_OK; /* no credits until it is paid */
    }
    return wallet_book_credit(st, cmd, cw, w, &t, repay);
}

enum command_result wallet_book_credit(struct store *st, struct command *cmd,
                                       struct customer_wallets *cw, struct live_wallet *w,
                                       const struct store_wallet_transaction *t, int64_t repay)
{
    enum ledger_account credits =
        t->paid ? LEDGER_CUSTOMER_PAID_CREDITS : LEDGER_CUSTOMER_PROMOTIONAL_CREDITS;
    enum ledger_account from = t->paid ? LEDGER_RECEIVABLE : LEDGER_PROMOTIONAL_GRANTS;
    struct ledger_posting p;
    ledger_posting_init(&p, t->paid ? LEDGER_CAUSE_PURCHASE : LEDGER_CAUSE_GRANT);
    if (!ledger_posting_move(&p, credits, from, t->amount_cents) ||
        !ledger_posting_move(&p, LEDGER_CUSTOMER_OVERDRAFT, credits, repay))
        return ledger_refused(cmd, NULL, w, from);
    enum command_result r = write_pending_first(st, cmd, w);
    if (r != COMMAND_OK || (r = wallet_book_post(st, cmd, w, t->id, cmd->now, &p)) != COMMAND_OK ||
        (r = settle_owed(st, cmd, w, t->id, repay, cmd->now)) != COMMAND_OK)
        return r;
    w->row.overdrawn_cents -= repay;
    if (repay > 0 && !wallet_book_reassign_overdraft(cw, w, t->id, repay))
        return COMMAND_STORE_FAILED;
    struct wallet_grant g = wallet_book_grant_of(t);
    if (g.remaining_cents > 0 && !wallet_book_grant_insert(w, &g))
        return COMMAND_STORE_FAILED;
    w->row.balance_cents = wallet_book_grants_total(w) - w->row.overdrawn_cents;
    return COMMAND_OK;
}

/* Voids `cents` of the wallet's credits, in consumption order: one of the request's own
 * transactions (its answer lists it). */
enum command_result wallet_book_void_credits(struct store *st, struct command *cmd,
                                             struct live_wallet *w, int64_t grant_id, int64_t cents,
                                             const struct wallet_credits *cr)
{
    struct store_wallet_transaction t;
    enum command_result r = take_out(st, cmd, w, WALLET_TX_VOIDED, grant_id, cents, cr, &t);
    if (r == COMMAND_OK && t.amount_cents > 0 && cmd->transaction_count < 3)
        memcpy(cmd->transaction_lago_ids[cmd->transaction_count++], t.lago_id, sizeof t.lago_id);
    return r;
}

/* Whose open holds to void: a wallet's or a subscription's (id), or a metric code's. */
struct holds_owner {
    enum store_status (*find)(struct store_conn *c, int64_t org_id, const struct holds_owner *owner,
                              char (*lago_ids)[UUID_TEXT], size_t cap, size_t *count);
    int64_t id;
    const char *code;
};

static enum store_status wallet_holds(struct store_conn *c, int64_t org_id,
                                      const struct holds_owner *owner, char (*lago_ids)[UUID_TEXT],
                                      size_t cap, size_t *count)
{
    return store_wallet_open_holds(c, org_id, owner->id, lago_ids, cap, count);
}

static enum store_status subscription_holds(struct store_conn *c, int64_t org_id,
                                            const struct holds_owner *owner,
                                            char (*lago_ids)[UUID_TEXT], size_t cap, size_t *count)
{
    return store_subscription_open_holds(c, org_id, owner->id, lago_ids, cap, count);
}

static enum store_status code_holds(struct store_conn *c, int64_t org_id,
                                    const struct holds_owner *owner, char (*lago_ids)[UUID_TEXT],
                                    size_t cap, size_t *count)
{
    return store_code_open_holds(c, org_id, owner->code, lago_ids, cap, count);
}

/* Releases (whole) and voids every open hold of owner. */
static enum command_result void_open_holds(struct wallet_book *b, struct store *st,
                                           struct command *cmd, int64_t org_id,
                                           const struct holds_owner *owner)
{
    enum { ROUND = 64 };
    char(*ids)[UUID_TEXT] = arena_alloc(cmd->arena, ROUND * sizeof *ids);
    if (!ids)
        return COMMAND_STORE_FAILED;
    size_t count;
    do { /* a voided hold is no longer open: each round finds the next ones */
        if (owner->find(store_conn(st), org_id, owner, ids, ROUND, &count) != STORE_OK)
            return COMMAND_STORE_FAILED;
        for (size_t i = 0; i < count; i++) {
            struct store_authorization a;
            if (store_authorization_get(store_conn(st), org_id, ids[i], &a, cmd->arena) !=
                    STORE_OK ||
                wallet_book_release(b, st, cmd, &a, LEDGER_CAUSE_RELEASE) != COMMAND_OK)
                return COMMAND_STORE_FAILED;
            a.status = AUTHORIZATION_VOIDED;
            a.updated_at = cmd->now;
            if (store_authorization_save(st, &a) != STORE_OK)
                return COMMAND_STORE_FAILED;
        }
    } while (count == ROUND);
    return COMMAND_OK;
}

static enum command_result void_holds_of(struct store *st, struct command *cmd,
                                         struct live_wallet *w)
{
    const struct holds_owner owner = {wallet_holds, w->row.id, NULL};
    return void_open_holds(w->book, st, cmd, w->row.org_id, &owner);
}

enum command_result wallet_book_void_subscription_holds(struct wallet_book *b, struct store *st,
                                                        struct command *cmd, int64_t org_id,
                                                        int64_t subscription_id)
{
    const struct holds_owner owner = {subscription_holds, subscription_id, NULL};
    return void_open_holds(b, st, cmd, org_id, &owner);
}

enum command_result wallet_book_void_code_holds(struct wallet_book *b, struct store *st,
                                                struct command *cmd, int64_t org_id,
                                                const char *code)
{
    const struct holds_owner owner = {code_holds, 0, code};
    return void_open_holds(b, st, cmd, org_id, &owner);
}

/*
 * Terminating a wallet (by request, or at its expiration_at) voids what is left of it: Lago
 * leaves it frozen; here the ledger says where it went. Its open holds are released and
 * voided first (each says so, and a capture of it is refused); an overdraft stays owed.
 */
enum command_result wallet_book_terminate(struct store *st, struct command *cmd,
                                          struct live_wallet *w, bool expired)
{
    /* its holds first: they say they were released, and what grants past their expiry kept
     * for them expires */
    enum command_result r = void_holds_of(st, cmd, w);
    if (r == COMMAND_OK)
        r = wallet_book_expire_unheld(st, cmd, w, cmd->now + 1);
    if (r != COMMAND_OK)
        return r;
    if (expired)
        r = wallet_book_expire(st, cmd, w, 0, 0);
    else if (wallet_book_grants_total(w) > 0)
        r = wallet_book_void_credits(st, cmd, w, 0, 0, NULL);
    if (r != COMMAND_OK)
        return r;
    if (w->row.held_cents > 0) { /* holds no row names (cannot be): released all the same */
        struct ledger_posting p;
        ledger_posting_init(&p, LEDGER_CAUSE_RELEASE);
        if (!ledger_posting_move(&p, LEDGER_HOLDS_OUTSTANDING, LEDGER_CUSTOMER_HELD_CREDITS,
                                 w->row.held_cents))
            return ledger_refused(cmd, NULL, w, LEDGER_HOLDS_OUTSTANDING);
        r = wallet_book_post(st, cmd, w, 0, cmd->now, &p);
        if (r != COMMAND_OK)
            return r;
        w->row.held_cents = 0;
    }
    w->row.balance_cents = -w->row.overdrawn_cents;
    w->row.has_terminated_at = true;
    w->row.terminated_at = cmd->now;
    w->row.updated_at = cmd->now;
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* ---- holds ---------------------------------------------------------------------------------- */

/* A hold reserves (cents > 0) or releases (< 0) a wallet's credits, with its memo posting. */
static enum command_result hold_change(struct store *st, struct command *cmd, struct live_wallet *w,
                                       int64_t authorization_id, int64_t cents,
                                       enum ledger_cause cause)
{
    struct ledger_posting p;
    ledger_posting_init(&p, cause);
    /* a hold is at most what its wallets can spend, a release what it held */
    bool fits =
        cents > 0 /* a hold: reserved credits */
            ? ledger_posting_move(&p, LEDGER_CUSTOMER_HELD_CREDITS, LEDGER_HOLDS_OUTSTANDING, cents)
            : ledger_posting_move(&p, LEDGER_HOLDS_OUTSTANDING, LEDGER_CUSTOMER_HELD_CREDITS,
                                  -cents);
    if (!fits)
        return ledger_refused(cmd, NULL, w, LEDGER_HOLDS_OUTSTANDING);
    enum command_result r = wallet_book_post_about(st, cmd, w, 0, authorization_id, cmd->now, &p);
    if (r != COMMAND_OK)
        return r;
    w->row.held_cents += cents;
    w->row.updated_at = cmd->now;
    if (w->book->deferring) { /* held_cents is in the journal, and written by the flush */
        /* written out as of this command unless a deferred debit came first (whose time the
         * flush keeps for its postings): the flush may come with another organization's
         * command, at its clock (an isolation audit found a real-clock wallet written out at
         * a test clock's date) */
        if (!w->pending_at)
            w->pending_at = cmd->now;
        w->dirty = true;
        return COMMAND_OK;
    }
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

enum command_result wallet_book_hold(struct store *st, struct command *cmd, struct live_wallet *w,
                                     int64_t authorization_id, int64_t cents)
{
    assert(cents > 0);
    /* the credits its capture would spend now, as a debit plans them; the rest is on no grant
     * (a soft wallet's overdraft) */
    struct wallet_take *takes = arena_alloc(cmd->arena, (w->grant_count + 1) * sizeof *takes);
    if (!takes)
        return COMMAND_STORE_FAILED;
    size_t n;
    int64_t left = cents - wallet_plan_take_at(w->grants, w->grant_count, cents, cmd->now,
                                               WALLET_TAKE_LIVE, takes, &n);
    for (size_t i = 0; i < n; i++) {
        struct wallet_grant *g = &w->grants[takes[i].grant];
        struct store_hold row = {
            .wallet_id = w->row.id, .grant_id = g->id, .cents = takes[i].cents};
        if (store_authorization_hold_put(st, authorization_id, &row) != STORE_OK ||
            store_grant_held_add(st, w->row.id, g->id, takes[i].cents) != STORE_OK)
            return COMMAND_STORE_FAILED;
        g->held_cents += takes[i].cents;
    }
    struct store_hold rest = {.wallet_id = w->row.id, .grant_id = 0, .cents = left};
    if (left > 0 && store_authorization_hold_put(st, authorization_id, &rest) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return hold_change(st, cmd, w, authorization_id, cents, LEDGER_CAUSE_HOLD);
}

/*
 * What a release lets expire at once: credits of grants whose expiry is past at `now`, but not
 * those of an interval rule's anniversary the clock has still to handle (a test clock's
 * advance releases the holds due before it brings the wallets up to date): that anniversary
 * may roll them over. Found by an audit: an advance over a hold's expiry and an anniversary
 * expired the previous grant at the release, and its unused credits never rolled over.
 */
static tally_time released_expiry_bound(const struct live_wallet *w, tally_time now)
{
    if (w->row.has_next_rule_at && w->row.next_rule_at <= now)
        return w->row.next_rule_at; /* grants expired before it: as the clock would */
    return now + 1;
}

/* What of grant g (not expiring) an overdraft takes: up to `cents` of it, repaid. */
static enum command_result repay_overdraft(struct store *st, struct command *cmd,
                                           struct customer_wallets *cw, struct live_wallet *w,
                                           struct wallet_grant *g, int64_t cents,
                                           int64_t authorization_id, enum ledger_cause cause)
{
    int64_t repay = cents < w->row.overdrawn_cents ? cents : w->row.overdrawn_cents;
    if (repay > wallet_grant_unheld(g))
        repay = wallet_grant_unheld(g);
    if (repay <= 0)
        return COMMAND_OK;
    enum command_result r = write_pending_first(st, cmd, w);
    if (r != COMMAND_OK)
        return r;
    enum ledger_account credits =
        g->paid ? LEDGER_CUSTOMER_PAID_CREDITS : LEDGER_CUSTOMER_PROMOTIONAL_CREDITS;
    struct ledger_posting p;
    ledger_posting_init(&p, cause);
    if (!ledger_posting_move(&p, LEDGER_CUSTOMER_OVERDRAFT, credits, repay))
        return ledger_refused(cmd, NULL, w, LEDGER_CUSTOMER_OVERDRAFT);
    if ((r = wallet_book_post_about(st, cmd, w, g->id, authorization_id, cmd->now, &p)) !=
            COMMAND_OK ||
        (r = settle_owed(st, cmd, w, g->id, repay, cmd->now)) != COMMAND_OK)
        return r;
    g->remaining_cents -= repay;
    w->row.overdrawn_cents -= repay;
    w->row.balance_cents = wallet_book_grants_total(w) - w->row.overdrawn_cents;
    w->row.updated_at = cmd->now;
    w->dirty = true; /* its row: written by the caller's wallet_book_settle_customer */
    if (!wallet_book_reassign_overdraft(cw, w, g->id, repay) ||
        store_wallet_transaction_set_remaining(st, g->id, g->remaining_cents) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* the grant's row is written at once, from memory that may be ahead of the tables: the
     * journal's stretch ends with this commit */
    if (w->book->deferring)
        w->book->must_flush = true;
    wallet_book_drop_empty_grants(w);
    return COMMAND_OK;
}

/* Of `cents` a hold open at the anniversary left unspent, what rolls over (the wallet's room
 * is taken by it); the rest expires now. */
static enum command_result cap_rollover(struct store *st, struct command *cmd,
                                        struct live_wallet *w, int64_t grant_id, int64_t *cents)
{
    int64_t keep = *cents < w->row.rollover_room_cents ? *cents : w->row.rollover_room_cents;
    w->row.rollover_room_cents -= keep;
    enum command_result r =
        *cents > keep ? wallet_book_expire(st, cmd, w, grant_id, *cents - keep) : COMMAND_OK;
    *cents = keep;
    if (r != COMMAND_OK)
        return r;
    if (w->book->deferring) /* (as the expiry: the journal's stretch ends with this commit) */
        w->book->must_flush = true;
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

enum command_result wallet_book_give_back_held(struct store *st, struct command *cmd,
                                               struct customer_wallets *cw, struct live_wallet *w,
                                               int64_t grant_id, int64_t cents, bool at_rollover,
                                               int64_t authorization_id, enum ledger_cause cause)
{
    struct wallet_grant *g = wallet_book_live_grant(w, grant_id);
    if (!g || cents <= 0 ||
        (g->has_expiration && g->expiration_at < released_expiry_bound(w, cmd->now)))
        return COMMAND_OK; /* those expire (wallet_book_expire_unheld) */
    if (at_rollover) {
        enum command_result r = cap_rollover(st, cmd, w, grant_id, &cents);
        if (r != COMMAND_OK)
            return r;
        if (!(g = wallet_book_live_grant(w, grant_id)))
            return COMMAND_OK; /* all of it expired */
    }
    if (w->row.overdrawn_cents <= 0)
        return COMMAND_OK;
    return repay_overdraft(st, cmd, cw, w, g, cents, authorization_id, cause);
}

/* A hold's parts, read before any is released (the release rewrites their rows). */
struct hold_parts {
    struct store_hold *items; /* in the command's arena */
    size_t count, cap;
    struct arena *arena;
    bool failed;
};

static bool collect_part(const struct store_hold *part, void *ctx)
{
    struct hold_parts *parts = ctx;
    if (part->cents == 0)
        return true; /* released before */
    if (parts->count == parts->cap) {
        size_t cap = parts->cap ? parts->cap * 2 : 8;
        struct store_hold *grown = arena_alloc(parts->arena, cap * sizeof *grown);
        if (!grown)
            return !(parts->failed = true);
        if (parts->count)
            memcpy(grown, parts->items, parts->count * sizeof *grown);
        parts->items = grown;
        parts->cap = cap;
    }
    parts->items[parts->count++] = *part;
    return true;
}

enum command_result wallet_book_release(struct wallet_book *b, struct store *st,
                                        struct command *cmd, struct store_authorization *a,
                                        enum ledger_cause cause)
{
    struct hold_parts parts = {.arena = cmd->arena};
    if (store_authorization_holds(store_conn(st), a->id, collect_part, &parts) != STORE_OK ||
        parts.failed)
        return COMMAND_STORE_FAILED;
    struct customer_wallets *cw = wallet_book_customer(b, st, a->org_id, a->customer_id);
    if (!cw || !wallet_book_touch(b, cw))
        return COMMAND_STORE_FAILED;
    /* parts come by wallet: each wallet's are released together, with one posting */
    for (size_t i = 0, next; i < parts.count; i = next) {
        int64_t wallet_id = parts.items[i].wallet_id;
        for (next = i; next < parts.count && parts.items[next].wallet_id == wallet_id; next++)
            ;
        struct live_wallet *w = wallet_book_wallet(cw, wallet_id);
        if (!w)
            continue; /* terminated since: its holds went with it */
        int64_t cents = 0;
        for (size_t k = i; k < next; k++) {
            const struct store_hold *part = &parts.items[k];
            cents += part->cents;
            if (part->grant_id &&
                store_grant_held_add(st, w->row.id, part->grant_id, -part->cents) != STORE_OK)
                return COMMAND_STORE_FAILED;
            struct wallet_grant *g =
                part->grant_id ? wallet_book_live_grant(w, part->grant_id) : NULL;
            if (!g)
                continue; /* on no grant */
            assert(g->held_cents >= part->cents);
            g->held_cents -= part->cents;
            if (cause == LEDGER_CAUSE_CAPTURE) { /* its event spends them first */
                g->capturing_cents += part->cents;
                g->capturing_at_rollover = part->at_rollover;
            }
        }
        enum command_result r = hold_change(st, cmd, w, a->id, -cents, cause);
        if (cause == LEDGER_CAUSE_CAPTURE)
            continue; /* what the capture leaves is settled by wallets_capture_done */
        /* the credits it gives back: capped by a rollover (paid credits first, as they roll
         * over first), repaying an overdraft first, and those past their expiry expire */
        for (int paid = 1; paid >= 0; paid--)
            for (size_t k = i; k < next && r == COMMAND_OK; k++) {
                const struct store_hold *part = &parts.items[k];
                const struct wallet_grant *g =
                    part->grant_id ? wallet_book_live_grant(w, part->grant_id) : NULL;
                if (g && g->paid == paid)
                    r = wallet_book_give_back_held(st, cmd, cw, w, part->grant_id, part->cents,
                                                   part->at_rollover, a->id, cause);
            }
        /* a void's or an expiry's credits are a rise the threshold rules see (and an expiry
         * of them, at once if their grant's expiry passed, a fall from it): an audit found a
         * crossing missed and the rule left disarmed */
        if (r == COMMAND_OK && cause != LEDGER_CAUSE_CAPTURE)
            wallet_book_observe_rules(cw);
        if (r == COMMAND_OK)
            r = wallet_book_expire_unheld(st, cmd, w, released_expiry_bound(w, cmd->now));
        if (r != COMMAND_OK)
            return r;
    }
    if (parts.count > 0 && store_authorization_holds_clear(st, a->id) != STORE_OK)
        return COMMAND_STORE_FAILED;
    a->held_cents = 0;
    if (cause == LEDGER_CAUSE_CAPTURE) /* its event's debit and wallets_capture_done follow */
        return !b->deferring || wallet_book_mark_dirty(b, cw) ? COMMAND_OK : COMMAND_STORE_FAILED;
    return wallet_book_settle_customer(b, st, cmd, cw);
}

enum command_result wallet_book_settle_customer(struct wallet_book *b, struct store *st,
                                                struct command *cmd, struct customer_wallets *cw)
{
    if (b->deferring)
        return wallet_book_mark_dirty(b, cw) ? COMMAND_OK : COMMAND_STORE_FAILED;
    return wallet_book_flush_customer(st, cmd, cw);
}
