/* engine/wallets: see wallets.h. */
#include "engine/wallets.h"

#include <assert.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/currency.h"
#include "core/ledger.h"
#include "core/period.h"
#include "sys/tzdb.h"
#include "engine/usage.h"
#include "util/vec.h"

/* Who paid (part of) a charge's debit: a grant, a soft wallet's overdraft, or nobody (left to
 * the invoice). A charge's fundings are a stack: refund steps pop the latest first. */
enum funding_kind { FUNDING_GRANT = 'g', FUNDING_OVERDRAFT = 'o', FUNDING_UNCOVERED = 'u' };

struct funding {
    enum funding_kind kind;
    int64_t wallet_id, grant_id; /* 0 where the kind has none */
    int64_t cents;
};

#define FUNDING_TEXT_MAX 64 /* one funding as text: "g:<wallet>:<grant>:<cents>;" */

/* What one charge of one subscription has debited in its current period. */
struct charge_debit {
    int64_t subscription_id;
    char *charge_lago_id; /* in the customer's arena */
    tally_time period_from;
    int64_t charged_cents;
    struct funding *fundings; /* malloc'd */
    size_t funding_count, funding_cap;
    bool dirty;
};

/* A grant's change in the current command: for its row, consumption rows and postings. */
struct grant_move {
    int64_t grant_id;
    int64_t cents; /* > 0 taken, < 0 given back */
};

struct live_wallet {
    struct store_wallet row;  /* strings in the customer's arena */
    struct wallet_book *book; /* its book: the organization's ledger balances */
    /* Its ledger accounts' balances (debit positive), for each line's balance after. */
    int64_t ledger[LEDGER_ACCOUNT_COUNT];
    /* Its threshold rule (recurring_transaction_rules), if any, and whether it may fire: it
     * fires once per crossing, then waits for the ongoing balance to rise above again. */
    bool has_rule, rule_armed, rule_requires_payment, rule_has_expiration;
    bool rule_interval_trigger; /* else a threshold rule */
    enum period_interval rule_interval;
    bool rule_has_start, rule_has_grant_duration, rule_has_rollover;
    tally_time rule_started_at;
    struct wallet_duration rule_grant_duration;
    enum wallet_rollover rule_rollover;
    int64_t rule_rollover_value; /* percent, or cents */
    struct wallet_rule rule;
    tally_time rule_expiration_at;
    const char *rule_name;
    int64_t pending_cents;                  /* paid credits waiting for their payment */
    int64_t min_paid_cents, max_paid_cents; /* paid top-up bounds, 0: none */
    /* The day's usage and refund transactions, added to until the day changes (0: none). */
    int64_t usage_tx_id, usage_day, refund_tx_id, refund_day;
    unsigned fee_types;
    const char **metric_codes;
    size_t metric_code_count;
    struct wallet_grant *grants; /* live grants in consumption order; malloc'd */
    size_t grant_count, grant_cap;
    /* The current command's changes, written and reset by flush_wallet. */
    struct grant_move *moves; /* malloc'd */
    size_t move_count, move_cap;
    int64_t taken_paid, taken_free, overdrawn_added;
    int64_t given_paid, given_free, overdraft_given;
    bool dirty;
};

struct customer_wallets {
    int64_t org_id, customer_id;
    uint64_t touched_in; /* the book's command number that last touched it */
    bool dirty;          /* in the book's dirty list: changes wait for wallets_flush */
    struct live_wallet *wallets;
    size_t wallet_count;
    struct charge_debit *debits; /* malloc'd */
    size_t debit_count, debit_cap;
    struct arena arena;
};

static enum command_result bring_up_to_date(struct store *st, struct command *cmd,
                                            struct customer_wallets *cw);
static enum command_result expire_part(struct store *st, struct command *cmd, struct live_wallet *w,
                                       int64_t grant_id, int64_t limit);

/* A customer's mutable state as it was before an event command touched it. */
struct customer_snapshot {
    int64_t customer_id;
    struct live_wallet *wallets; /* malloc'd, with their own grants and moves */
    size_t wallet_count;
    struct charge_debit *debits; /* malloc'd, with their own fundings */
    size_t debit_count;
};

static void *duplicate(const void *items, size_t count, size_t size)
{
    if (count == 0)
        return NULL;
    void *copy = malloc(count * size);
    if (copy)
        memcpy(copy, items, count * size);
    return copy;
}

static void snapshot_free(struct customer_snapshot *s)
{
    for (size_t i = 0; i < s->wallet_count; i++) {
        free(s->wallets[i].grants);
        free(s->wallets[i].moves);
    }
    for (size_t i = 0; i < s->debit_count; i++)
        free(s->debits[i].fundings);
    free(s->wallets);
    free(s->debits);
    memset(s, 0, sizeof *s);
}

static bool snapshot_take(struct customer_snapshot *s, const struct customer_wallets *cw)
{
    *s = (struct customer_snapshot){.customer_id = cw->customer_id};
    if (cw->wallet_count > 0 &&
        !(s->wallets = duplicate(cw->wallets, cw->wallet_count, sizeof *s->wallets)))
        return false;
    s->wallet_count = cw->wallet_count;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &s->wallets[i];
        const struct live_wallet *from = &cw->wallets[i];
        w->grants = duplicate(from->grants, from->grant_count, sizeof *w->grants);
        w->grant_cap = from->grant_count;
        w->moves = duplicate(from->moves, from->move_count, sizeof *w->moves);
        w->move_cap = from->move_count;
        if ((from->grant_count && !w->grants) || (from->move_count && !w->moves)) {
            w->grant_count = w->move_count = 0;
            s->wallet_count = i + 1;
            snapshot_free(s);
            return false;
        }
    }
    if (cw->debit_count > 0 &&
        !(s->debits = duplicate(cw->debits, cw->debit_count, sizeof *s->debits))) {
        snapshot_free(s);
        return false;
    }
    s->debit_count = cw->debit_count;
    for (size_t i = 0; i < cw->debit_count; i++) {
        struct charge_debit *d = &s->debits[i];
        d->fundings = duplicate(cw->debits[i].fundings, d->funding_count, sizeof *d->fundings);
        d->funding_cap = d->funding_count;
        if (d->funding_count && !d->fundings) {
            for (size_t k = i; k < s->debit_count; k++)
                s->debits[k].fundings = NULL, s->debits[k].funding_count = 0;
            snapshot_free(s);
            return false;
        }
    }
    return true;
}

/* Puts a customer back as the snapshot holds it; the snapshot's memory moves into it. */
static void snapshot_restore(struct customer_wallets *cw, struct customer_snapshot *s)
{
    assert(s->wallet_count == cw->wallet_count); /* event commands add no wallet */
    for (size_t i = 0; i < cw->wallet_count; i++) {
        free(cw->wallets[i].grants);
        free(cw->wallets[i].moves);
        cw->wallets[i] = s->wallets[i];
    }
    for (size_t i = 0; i < cw->debit_count; i++)
        free(cw->debits[i].fundings);
    free(cw->debits);
    cw->debits = s->debits;
    cw->debit_count = cw->debit_cap = s->debit_count;
    free(s->wallets);
    memset(s, 0, sizeof *s);
}

/* ---- the book ------------------------------------------------------------------------------ */

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
    for (size_t i = 0; i < b->snapshot_count; i++)
        snapshot_free(&b->snapshots[i]);
    b->snapshot_count = 0;
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
    b->org_balance_count = 0;
    drop_snapshots(b);
}

void wallet_book_free(struct wallet_book *b)
{
    wallet_book_clear(b);
    free(b->items);
    free(b->touched);
    free(b->dirty);
    free(b->snapshots);
    free(b->org_balances);
    free(b->org_saved);
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

/* Takes one customer out (backward-shift deletion keeps every other reachable). */
static void book_forget(struct wallet_book *b, int64_t customer_id)
{
    if (b->cap == 0)
        return;
    size_t i = slot_of(b, customer_id);
    while (b->items[i] && b->items[i]->customer_id != customer_id)
        i = (i + 1) & (b->cap - 1);
    if (!b->items[i])
        return;
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
}

void wallet_book_undo_command(struct wallet_book *b)
{
    /* the command's postings are gone: its organizations' balances go back too */
    if (b->org_saved_count > 0)
        memcpy(b->org_balances, b->org_saved, b->org_saved_count * sizeof *b->org_saved);
    b->org_balance_count = b->org_saved_count;
    if (b->deferring) {
        for (size_t i = b->snapshot_count; i-- > 0;) {
            struct customer_wallets *cw = book_find(b, b->snapshots[i].customer_id);
            if (cw)
                snapshot_restore(cw, &b->snapshots[i]);
            else
                snapshot_free(&b->snapshots[i]);
        }
        b->snapshot_count = 0;
        b->touched_count = b->touched_mark;
        return;
    }
    /* the store held everything before this command (wallets_flush ran first): reload */
    while (b->touched_count > b->touched_mark)
        book_forget(b, b->touched[--b->touched_count]);
}

void wallet_book_committed(struct wallet_book *b)
{
    b->touched_count = b->touched_mark = 0;
    assert(b->dirty_count == 0); /* flushed before the COMMIT */
    drop_snapshots(b);
}

static bool touch(struct wallet_book *b, struct customer_wallets *cw)
{
    if (cw->touched_in == b->command_number)
        return true;
    if (!vec_room((void **)&b->touched, &b->touched_cap, b->touched_count, sizeof *b->touched, 64))
        return false;
    if (b->deferring) {
        if (!vec_room((void **)&b->snapshots, &b->snapshot_cap, b->snapshot_count,
                      sizeof *b->snapshots, 64) ||
            !snapshot_take(&b->snapshots[b->snapshot_count], cw))
            return false;
        b->snapshot_count++;
    }
    b->touched[b->touched_count++] = cw->customer_id;
    cw->touched_in = b->command_number;
    return true;
}

static bool mark_dirty(struct wallet_book *b, struct customer_wallets *cw)
{
    if (cw->dirty)
        return true;
    if (!vec_room((void **)&b->dirty, &b->dirty_cap, b->dirty_count, sizeof *b->dirty, 64))
        return false;
    b->dirty[b->dirty_count++] = cw->customer_id;
    cw->dirty = true;
    return true;
}

/* ---- loading a customer ---------------------------------------------------------------------- */

/* applies_to from the wallet's terms; false if they cannot be read. */
/* A credits amount of the terms (decimal text) in cents at the wallet's rate; false if absent
 * or unreadable. */
static bool term_cents(const struct live_wallet *w, struct json_object *obj, const char *key,
                       int64_t *cents)
{
    struct json_object *v;
    money_t credits;
    if (!json_object_object_get_ex(obj, key, &v) || !v)
        return false;
    const char *text = json_object_get_string(v);
    const struct currency *c = currency_find(w->row.currency, strlen(w->row.currency));
    return money_parse(text, strlen(text), &credits) == MONEY_OK &&
           wallet_credits_to_cents(credits, w->row.rate_amount, c ? c->exponent : 2, cents) ==
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
                     !term_cents(w, rule, "rollover_max_credits", &w->rule_rollover_value))
                return false;
        }
    } else if (!term_cents(w, rule, "threshold_credits", &r->threshold_cents)) {
        return false;
    }
    term_cents(w, rule, "paid_credits", &r->paid_cents);
    term_cents(w, rule, "granted_credits", &r->granted_cents);
    if (r->method == WALLET_RULE_TARGET &&
        !term_cents(w, rule, "target_ongoing_balance", &r->target_cents))
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
    }
    w->min_paid_cents = term_int(terms, "paid_top_up_min_amount_cents");
    w->max_paid_cents = term_int(terms, "paid_top_up_max_amount_cents");
    ok = ok && read_rule(w, terms, a);
    json_object_put(terms);
    return ok;
}

static bool grant_insert(struct live_wallet *w, const struct wallet_grant *g)
{
    if (!vec_room((void **)&w->grants, &w->grant_cap, w->grant_count, sizeof *w->grants, 8))
        return false;
    size_t at = wallet_grant_position(w->grants, w->grant_count, g);
    memmove(&w->grants[at + 1], &w->grants[at], (w->grant_count - at) * sizeof *w->grants);
    w->grants[at] = *g;
    w->grant_count++;
    return true;
}

static struct wallet_grant grant_of(const struct store_wallet_transaction *t)
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

static bool load_grant(const struct store_wallet_transaction *t, void *ctx)
{
    struct wallet_grant g = grant_of(t);
    return t->state == WALLET_TX_SETTLED && t->type == WALLET_INBOUND ? grant_insert(ctx, &g)
                                                                      : true;
}

static struct charge_debit *find_debit(struct customer_wallets *cw, int64_t subscription_id,
                                       const char *charge_lago_id)
{
    for (size_t i = 0; i < cw->debit_count; i++)
        if (cw->debits[i].subscription_id == subscription_id &&
            strcmp(cw->debits[i].charge_lago_id, charge_lago_id) == 0)
            return &cw->debits[i];
    return NULL;
}

static bool push_funding(struct charge_debit *d, struct funding f)
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
        if (!push_funding(d, f))
            return false;
        text += used;
    }
    return true;
}

/* The debit of (subscription, charge) starting over (a new period, or first seen). */
static void debit_reset(struct charge_debit *d, tally_time period_from)
{
    d->period_from = period_from;
    d->charged_cents = 0;
    d->funding_count = 0;
}

static struct charge_debit *add_debit(struct customer_wallets *cw, int64_t subscription_id,
                                      const char *charge_lago_id, tally_time period_from)
{
    if (!vec_room((void **)&cw->debits, &cw->debit_cap, cw->debit_count, sizeof *cw->debits, 8))
        return NULL;
    char *id = arena_strndup(&cw->arena, charge_lago_id, strlen(charge_lago_id));
    if (!id)
        return NULL;
    struct charge_debit *d = &cw->debits[cw->debit_count++];
    *d = (struct charge_debit){.subscription_id = subscription_id, .charge_lago_id = id};
    debit_reset(d, period_from);
    return d;
}

static bool load_debit(const struct store_charge_debit *row, void *ctx)
{
    struct customer_wallets *cw = ctx;
    /* Rows come oldest period first: a later period's row replaces an earlier one. */
    struct charge_debit *d = find_debit(cw, row->subscription_id, row->charge_lago_id);
    if (!d && !(d = add_debit(cw, row->subscription_id, row->charge_lago_id, row->period_from)))
        return false;
    debit_reset(d, row->period_from);
    d->charged_cents = row->charged_cents;
    return parse_fundings(d, row->fundings);
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
    for (size_t i = 0; i < count; i++) {
        struct live_wallet *w = &cw->wallets[cw->wallet_count++];
        *w = (struct live_wallet){.row = rows[i], .book = b};
        if (!read_terms(w, &cw->arena) ||
            store_wallet_live_grants(conn, w->row.id, load_grant, w, &cw->arena) != STORE_OK)
            goto fail;
        /* its accounts, as every committed posting left them (the invariant check_wallet
         * asserts): credit balances for the credits, debit ones for overdraft and holds */
        for (size_t k = 0; k < w->grant_count; k++)
            w->ledger[w->grants[k].paid ? LEDGER_CUSTOMER_PAID_CREDITS
                                        : LEDGER_CUSTOMER_PROMOTIONAL_CREDITS] -=
                w->grants[k].remaining_cents;
        w->ledger[LEDGER_CUSTOMER_OVERDRAFT] = w->row.overdrawn_cents;
        w->ledger[LEDGER_CUSTOMER_HELD_CREDITS] = -w->row.held_cents;
        if (w->has_rule) {
            if (store_wallet_pending_cents(conn, w->row.id, &w->pending_cents) != STORE_OK)
                goto fail;
            /* (for a threshold rule) */
            /* a rule that is due now already fired for this crossing (or would have) */
            w->rule_armed = !wallet_rule_due(&w->rule, w->row.balance_cents - w->row.held_cents,
                                             w->pending_cents);
        }
    }
    if (count > 0 &&
        store_charge_debits_of_customer(conn, org_id, customer_id, load_debit, cw) != STORE_OK)
        goto fail;
    return cw;
fail:
    customer_free(cw);
    return NULL;
}

static struct customer_wallets *customer_get(struct wallet_book *b, struct store *st,
                                             int64_t org_id, int64_t customer_id)
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

static struct live_wallet *wallet_by_id(struct customer_wallets *cw, int64_t wallet_id)
{
    for (size_t i = 0; i < cw->wallet_count; i++)
        if (cw->wallets[i].row.id == wallet_id)
            return &cw->wallets[i];
    return NULL;
}

/* ---- balances ------------------------------------------------------------------------------- */

static int64_t grants_total(const struct live_wallet *w)
{
    int64_t sum = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        sum += w->grants[i].remaining_cents;
    return sum;
}

static void drop_empty_grants(struct live_wallet *w)
{
    size_t keep = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].remaining_cents > 0)
            w->grants[keep++] = w->grants[i];
    w->grant_count = keep;
}

static bool note_move(struct live_wallet *w, int64_t grant_id, int64_t cents)
{
    if (!vec_room((void **)&w->moves, &w->move_cap, w->move_count, sizeof *w->moves, 8))
        return false;
    w->moves[w->move_count++] = (struct grant_move){grant_id, cents};
    w->dirty = true;
    return true;
}

static bool usable(const struct live_wallet *w, tally_time now)
{
    return !w->row.has_terminated_at && !(w->row.has_expiration_at && w->row.expiration_at <= now);
}

/*
 * What the wallet can still pay: its grants, and a soft wallet's overdraft left, less what its
 * open holds reserve (a hold is only worth something if this never goes below zero).
 */
static int64_t spendable(const struct live_wallet *w)
{
    int64_t sum = grants_total(w) - w->row.held_cents;
    if (w->row.limit == WALLET_LIMIT_SOFT)
        sum += w->row.overdraft_limit_cents - w->row.overdrawn_cents;
    return sum > 0 ? sum : 0;
}

/* Takes up to `want` from one wallet (grants, then a soft wallet's overdraft), within what it
 * can spend; returns what it took. */
static int64_t take_from_wallet(struct live_wallet *w, struct charge_debit *d, int64_t want,
                                bool *failed)
{
    int64_t total = spendable(w) < want ? spendable(w) : want;
    int64_t from_grants = grants_total(w) < total ? grants_total(w) : total;
    struct wallet_take takes[64];
    int64_t taken = 0;
    while (taken < from_grants) {
        size_t n;
        /* at most 64 grants a round: a debit that spans more simply takes more rounds */
        size_t span = w->grant_count < 64 ? w->grant_count : 64;
        int64_t got = wallet_plan_take(w->grants, span, from_grants - taken, takes, &n);
        if (got == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            struct wallet_grant *g = &w->grants[takes[i].grant];
            g->remaining_cents -= takes[i].cents;
            *(g->paid ? &w->taken_paid : &w->taken_free) += takes[i].cents;
            if (!note_move(w, g->id, takes[i].cents) ||
                !push_funding(d, (struct funding){FUNDING_GRANT, w->row.id, g->id, takes[i].cents}))
                *failed = true;
        }
        taken += got;
        drop_empty_grants(w); /* a refund step loads them back */
    }
    int64_t part = total - taken;
    if (part > 0) {
        assert(w->row.limit == WALLET_LIMIT_SOFT);
        w->row.overdrawn_cents += part;
        w->overdrawn_added += part;
        w->dirty = true;
        if (!push_funding(d, (struct funding){FUNDING_OVERDRAFT, w->row.id, 0, part}))
            *failed = true;
        taken += part;
    }
    return taken;
}

/* Whether wallet w may pay a usage fee of `metric_code` in `currency`. */
static bool pays_for(const struct live_wallet *w, const char *currency, const char *metric_code,
                     tally_time now)
{
    struct wallet_applies_to a = {w->fee_types, w->metric_codes, w->metric_code_count};
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
    for (size_t i = 0; i < n && left > 0; i++)
        left -= take_from_wallet(payers[i], d, left, &failed);
    if (failed)
        return COMMAND_STORE_FAILED;
    if (left == 0)
        return COMMAND_OK;
    if (n > 0 && !any_unlimited) {
        /* The last wallet that could have paid is the one to top up. */
        const struct live_wallet *w = payers[n - 1];
        memcpy(cmd->short_wallet_lago_id, w->row.lago_id, sizeof cmd->short_wallet_lago_id);
        cmd->short_cents = left;
        return COMMAND_INSUFFICIENT_CREDITS;
    }
    return push_funding(d, (struct funding){FUNDING_UNCOVERED, 0, 0, left}) ? COMMAND_OK
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
    struct wallet_grant g = grant_of(&t);
    g.remaining_cents = 0;
    if (!grant_insert(w, &g))
        return NULL;
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].id == grant_id)
            return &w->grants[i];
    return NULL;
}

/* Gives `cents` back to the sources that paid last. */
static enum command_result give_back(struct customer_wallets *cw, struct store *st,
                                     struct command *cmd, struct charge_debit *d, int64_t cents)
{
    while (cents > 0 && d->funding_count > 0) {
        struct funding *f = &d->fundings[d->funding_count - 1];
        int64_t part = f->cents < cents ? f->cents : cents;
        struct live_wallet *w =
            f->kind == FUNDING_UNCOVERED ? NULL : wallet_by_id(cw, f->wallet_id);
        if (f->kind == FUNDING_GRANT && w) {
            struct wallet_grant *g = grant_for_refund(w, st, f->grant_id, cmd->arena);
            if (!g || !note_move(w, g->id, -part))
                return COMMAND_STORE_FAILED;
            g->remaining_cents += part;
            *(g->paid ? &w->given_paid : &w->given_free) += part;
        } else if (f->kind == FUNDING_OVERDRAFT && w) {
            /* overdraft fundings are exactly what is still owed (reassign_overdraft) */
            assert(part <= w->row.overdrawn_cents);
            w->row.overdrawn_cents -= part;
            w->overdraft_given += part;
            w->dirty = true;
        }
        /* An uncovered part lowers what the invoice will charge; a wallet terminated since
         * was voided with its credits: neither gives credits back. */
        f->cents -= part;
        if (f->cents == 0)
            d->funding_count--;
        cents -= part;
    }
    return COMMAND_OK;
}

/* ---- writing a command's changes ---------------------------------------------------------- */

static bool new_lago_id(struct command *cmd, char out[WALLET_LAGO_ID_TEXT])
{
    command_new_id(cmd, out);
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

static enum store_status post_about(struct store *st, struct live_wallet *w,
                                    int64_t wallet_transaction_id, int64_t authorization_id,
                                    tally_time at, const struct ledger_posting *p)
{
    assert(ledger_posting_balanced(p));
    int64_t after[LEDGER_LINES_MAX];
    for (size_t i = 0; i < p->count; i++) {
        enum ledger_account a = p->lines[i].account;
        if (ledger_account_is_wallet(a)) {
            after[i] = w->ledger[a] += p->lines[i].amount_cents;
            continue;
        }
        struct wallet_org_balance *o = org_balance(w->book, st, w->row.org_id, w->row.currency, a);
        if (!o)
            return STORE_ERROR;
        after[i] = o->balance += p->lines[i].amount_cents;
        o->dirty = true; /* stored by wallets_flush */
    }
    struct store_posting_ref ref = {w->row.org_id,   w->row.customer_id,    w->row.id,
                                    w->row.currency, wallet_transaction_id, at,
                                    authorization_id};
    return store_ledger_post(st, &ref, p, after);
}

static enum store_status post(struct store *st, struct live_wallet *w,
                              int64_t wallet_transaction_id, tally_time at,
                              const struct ledger_posting *p)
{
    return post_about(st, w, wallet_transaction_id, 0, at, p);
}

#define USEC_PER_DAY (INT64_C(86400) * 1000000)

/*
 * The day's usage debits (or refund steps) of a wallet are one transaction, added to by every
 * flush of that UTC day, with one consumption row per grant, added to likewise: the history a
 * person reads stays short, and a debit costs updates of rows the day already wrote.
 */
static enum store_status usage_transaction(struct store *st, struct command *cmd,
                                           struct live_wallet *w, bool refund, int64_t amount,
                                           int64_t *id)
{
    tally_time now = cmd->now;
    int64_t day = now / USEC_PER_DAY;
    int64_t *tx = refund ? &w->refund_tx_id : &w->usage_tx_id;
    int64_t *tx_day = refund ? &w->refund_day : &w->usage_day;
    bool found = false;
    if (*tx != 0 && *tx_day == day &&
        store_wallet_transaction_add_amount(st, *tx, amount, &found) != STORE_OK)
        return STORE_ERROR;
    if (!found) {
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
        if (!new_lago_id(cmd, t.lago_id) || store_wallet_transaction_insert(st, &t) != STORE_OK)
            return STORE_ERROR;
        *tx = t.id;
        *tx_day = day;
    }
    *id = *tx;
    for (size_t i = 0; i < w->move_count; i++) {
        const struct grant_move *m = &w->moves[i];
        if ((m->cents < 0) != refund)
            continue;
        char lago_id[WALLET_LAGO_ID_TEXT];
        if (!new_lago_id(cmd, lago_id) ||
            store_wallet_consumption_insert(st, w->row.org_id, lago_id, m->grant_id, *tx,
                                            refund ? -m->cents : m->cents, now) != STORE_OK)
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

/* Writes one wallet's changes of the current command: grants, transactions, postings. */
static enum store_status flush_wallet(struct store *st, struct command *cmd, struct live_wallet *w)
{
    tally_time now = cmd->now;
    int64_t taken = w->taken_paid + w->taken_free + w->overdrawn_added;
    int64_t given = w->given_paid + w->given_free + w->overdraft_given;
    int64_t id;
    if (taken > 0) {
        struct ledger_posting p;
        ledger_posting_init(&p, LEDGER_CAUSE_CONSUMPTION);
        ledger_posting_move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_PAID_CREDITS, w->taken_paid);
        ledger_posting_move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, w->taken_free);
        ledger_posting_move(&p, LEDGER_REVENUE, LEDGER_CUSTOMER_OVERDRAFT, w->overdrawn_added);
        if (usage_transaction(st, cmd, w, false, taken, &id) != STORE_OK ||
            post(st, w, id, now, &p) != STORE_OK)
            return STORE_ERROR;
    }
    if (given > 0) {
        struct ledger_posting p;
        ledger_posting_init(&p, LEDGER_CAUSE_REFUND_STEP);
        ledger_posting_move(&p, LEDGER_CUSTOMER_PAID_CREDITS, LEDGER_REVENUE, w->given_paid);
        ledger_posting_move(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, LEDGER_REVENUE, w->given_free);
        ledger_posting_move(&p, LEDGER_CUSTOMER_OVERDRAFT, LEDGER_REVENUE, w->overdraft_given);
        if (usage_transaction(st, cmd, w, true, given, &id) != STORE_OK ||
            post(st, w, id, now, &p) != STORE_OK)
            return STORE_ERROR;
    }
    for (size_t i = 0; i < w->move_count; i++) {
        int64_t grant = w->moves[i].grant_id;
        bool seen = false; /* one UPDATE per grant */
        for (size_t k = 0; k < i && !seen; k++)
            seen = w->moves[k].grant_id == grant;
        if (!seen && store_wallet_transaction_set_remaining(st, grant, grant_remaining(w, grant)) !=
                         STORE_OK)
            return STORE_ERROR;
    }
    w->row.consumed_cents += taken - given;
    w->row.balance_cents = grants_total(w) - w->row.overdrawn_cents;
    if (taken > given) {
        w->row.has_last_consumed_at = true;
        w->row.last_consumed_at = now;
    }
    w->row.updated_at = now;
    if (store_wallet_save(st, &w->row) != STORE_OK)
        return STORE_ERROR;
    w->move_count = 0;
    w->taken_paid = w->taken_free = w->overdrawn_added = 0;
    w->given_paid = w->given_free = w->overdraft_given = 0;
    w->dirty = false;
    return STORE_OK;
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
 * the writer keeps them and as the last stored entries left them. */
static void check_wallet(struct store *st, const struct live_wallet *w)
{
    int64_t paid_grants = 0, free_grants = 0;
    for (size_t i = 0; i < w->grant_count; i++)
        *(w->grants[i].paid ? &paid_grants : &free_grants) += w->grants[i].remaining_cents;
    assert(w->row.balance_cents == paid_grants + free_grants - w->row.overdrawn_cents);
    assert(w->ledger[LEDGER_CUSTOMER_PAID_CREDITS] == -paid_grants);
    assert(w->ledger[LEDGER_CUSTOMER_PROMOTIONAL_CREDITS] == -free_grants);
    assert(w->ledger[LEDGER_CUSTOMER_OVERDRAFT] == w->row.overdrawn_cents);
    assert(w->ledger[LEDGER_CUSTOMER_HELD_CREDITS] == -w->row.held_cents);
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

static enum command_result flush_customer(struct store *st, struct command *cmd,
                                          struct customer_wallets *cw)
{
    struct arena *a = cmd->arena;
    for (size_t i = 0; i < cw->wallet_count; i++) {
        if (cw->wallets[i].dirty && flush_wallet(st, cmd, &cw->wallets[i]) != STORE_OK)
            return COMMAND_STORE_FAILED;
#ifdef TALLY_CHECK_INVARIANTS
        check_wallet(st, &cw->wallets[i]);
#endif
    }
    for (size_t i = 0; i < cw->debit_count; i++) {
        struct charge_debit *d = &cw->debits[i];
        if (!d->dirty)
            continue;
        struct store_charge_debit row = {d->subscription_id,
                                         d->charge_lago_id,
                                         d->period_from,
                                         cw->org_id,
                                         cw->customer_id,
                                         d->charged_cents,
                                         NULL};
        if (!format_fundings(d, a, &row.fundings) || store_charge_debit_put(st, &row) != STORE_OK)
            return COMMAND_STORE_FAILED;
        d->dirty = false;
    }
    return COMMAND_OK;
}

/* ---- threshold rules ------------------------------------------------------------------------ */

static enum command_result add_credits(struct store *st, struct command *cmd,
                                       struct customer_wallets *cw, struct live_wallet *w,
                                       bool paid, int64_t cents, const struct wallet_credits *cr,
                                       bool pending, enum wallet_transaction_source source,
                                       int64_t *made);

/*
 * Fires the wallets' threshold rules that came due: once per crossing (Lago's condition, then
 * disarmed until the ongoing balance rises above the threshold again), in the same command as
 * what made the balance fall, so the top-up is there in the answer that follows.
 */
static enum command_result fire_rules(struct store *st, struct command *cmd,
                                      struct customer_wallets *cw)
{
    for (size_t i = 0; i < cw->wallet_count; i++) {
        struct live_wallet *w = &cw->wallets[i];
        if (!w->has_rule || w->rule_interval_trigger || w->row.has_terminated_at ||
            (w->rule_has_expiration && w->rule_expiration_at <= cmd->now))
            continue;
        int64_t ongoing = grants_total(w) - w->row.overdrawn_cents - w->row.held_cents;
        if (!wallet_rule_due(&w->rule, ongoing, w->pending_cents)) {
            w->rule_armed = true;
            continue;
        }
        if (!w->rule_armed)
            continue;
        w->rule_armed = false;
        int64_t paid, granted;
        wallet_rule_top_up(&w->rule, ongoing, w->pending_cents, w->min_paid_cents,
                           w->max_paid_cents, &paid, &granted);
        struct wallet_credits cr = {.name = w->rule_name,
                                    .priority = WALLET_PRIORITY_MAX,
                                    .invoice_requires_successful_payment =
                                        w->rule_requires_payment};
        enum command_result r = COMMAND_OK;
        if (paid > 0)
            r = add_credits(st, cmd, cw, w, true, paid, &cr, w->rule_requires_payment,
                            WALLET_SOURCE_THRESHOLD, NULL);
        if (r == COMMAND_OK && granted > 0)
            r = add_credits(st, cmd, cw, w, false, granted, &cr, false, WALLET_SOURCE_THRESHOLD,
                            NULL);
        if (r != COMMAND_OK)
            return r;
        w->dirty = true; /* its balance changed: the row is written with the rest */
    }
    return COMMAND_OK;
}

/* ---- interval rules ------------------------------------------------------------------------- */

/*
 * When the wallet's interval rule fires next after `after`: the next anniversary, in the
 * customer's zone, of its started_at (or of the wallet's creation, so never on that day), or
 * started_at itself while it is still ahead. False if the rule ends first.
 */
static bool next_interval(const struct live_wallet *w, tally_time after, tally_time *next)
{
    tally_time anchor = w->rule_has_start ? w->rule_started_at : w->row.created_at;
    if (anchor > after) {
        *next = anchor;
    } else {
        const char *name = w->row.customer_timezone ? w->row.customer_timezone : "UTC";
        const struct tz_zone *zone =
            w->book->tzdb ? tzdb_get(w->book->tzdb, name, strlen(name)) : NULL;
        struct period_spec spec = {w->rule_interval, PERIOD_ANNIVERSARY, anchor, zone};
        struct period p;
        if (!zone || period_containing(&spec, after, &p) != PERIOD_OK)
            return false;
        *next = p.end;
    }
    return !(w->rule_has_expiration && *next >= w->rule_expiration_at);
}

static void schedule_rule(struct live_wallet *w, tally_time after)
{
    w->row.has_next_rule_at = w->has_rule && w->rule_interval_trigger &&
                              !w->row.has_terminated_at &&
                              next_interval(w, after, &w->row.next_rule_at);
}

/* The grant with that id among the live ones, or NULL. */
static struct wallet_grant *live_grant(struct live_wallet *w, int64_t id)
{
    for (size_t i = 0; i < w->grant_count; i++)
        if (w->grants[i].id == id)
            return &w->grants[i];
    return NULL;
}

/*
 * The previous interval grant at a new one: what the rollover allows carries on with the new
 * grant's expiry; the rest expires now.
 */
static enum command_result roll_over(struct store *st, struct command *cmd, struct live_wallet *w,
                                     bool has_expiration, tally_time expiration_at)
{
    struct wallet_grant *g = live_grant(w, w->row.last_interval_grant_id);
    if (!g)
        return COMMAND_OK; /* used up, or expired already */
    struct store_wallet_transaction t;
    if (store_wallet_transaction_by_id(store_conn(st), g->id, &t, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    int64_t rolled = wallet_rollover_cents(w->rule_rollover, w->rule_rollover_value, t.amount_cents,
                                           g->remaining_cents);
    int64_t rest = g->remaining_cents - rolled, id = g->id;
    if (rest > 0) {
        enum command_result r = expire_part(st, cmd, w, id, rest);
        if (r != COMMAND_OK)
            return r;
    }
    if (rolled == 0 || !(g = live_grant(w, id)))
        return COMMAND_OK;
    /* same credits, later expiry: the grant moves in the consumption order */
    struct wallet_grant moved = *g;
    moved.has_expiration = has_expiration;
    moved.expiration_at = expiration_at;
    size_t at = (size_t)(g - w->grants);
    memmove(&w->grants[at], &w->grants[at + 1], (w->grant_count - at - 1) * sizeof *w->grants);
    w->grant_count--;
    if (!grant_insert(w, &moved) ||
        store_wallet_transaction_set_expiration(st, id, has_expiration, expiration_at) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

/* One anniversary of an interval rule, at `at`: its credits, after the previous grant's
 * rollover; each grant lasts grant_expires_after when the rule says so. */
static enum command_result fire_interval(struct store *st, struct command *cmd,
                                         struct customer_wallets *cw, struct live_wallet *w,
                                         tally_time at)
{
    int64_t ongoing = grants_total(w) - w->row.overdrawn_cents - w->row.held_cents;
    int64_t paid = w->rule.paid_cents, granted = w->rule.granted_cents;
    if (w->rule.method == WALLET_RULE_TARGET)
        wallet_rule_top_up(&w->rule, ongoing, w->pending_cents, w->min_paid_cents, 0, &paid,
                           &granted);
    struct wallet_credits cr = {.name = w->rule_name,
                                .priority = WALLET_PRIORITY_MAX,
                                .invoice_requires_successful_payment = w->rule_requires_payment};
    if (w->rule_has_grant_duration) {
        cr.has_expiration_at = true;
        cr.expiration_at = wallet_duration_add(at, &w->rule_grant_duration);
    }
    enum command_result r = COMMAND_OK;
    if (w->rule_has_rollover && w->row.last_interval_grant_id)
        r = roll_over(st, cmd, w, cr.has_expiration_at, cr.expiration_at);
    int64_t made = 0;
    if (r == COMMAND_OK && paid > 0)
        r = add_credits(st, cmd, cw, w, true, paid, &cr, w->rule_requires_payment,
                        WALLET_SOURCE_INTERVAL, &made);
    if (r == COMMAND_OK && granted > 0)
        r = add_credits(st, cmd, cw, w, false, granted, &cr, false, WALLET_SOURCE_INTERVAL, &made);
    if (made)
        w->row.last_interval_grant_id = made; /* the free grant when both, else the paid */
    return r;
}

/* ---- real-time debit ------------------------------------------------------------------------ */

/* A fee with its taxes (rounded half up, once, as the fee's), in cents. */
static bool with_taxes(const struct usage_charge *c, int64_t amount_cents, int64_t *cents)
{
    money_t taxes = usage_charge_taxes(c, amount_cents);
    int64_t tax_cents;
    if (money_round(taxes, 0, MONEY_ROUND_HALF_UP, &taxes) != MONEY_OK ||
        money_to_minor_units(taxes, 0, MONEY_ROUND_EXACT, &tax_cents) != MONEY_OK)
        return false;
    return !__builtin_add_overflow(amount_cents, tax_cents, cents);
}

/* A charge's cost now: its fee and the fee's taxes, in cents. */
static bool charge_cost(const struct usage *u, const struct usage_charge *c, tally_time now,
                        int64_t *cents)
{
    struct usage_amount amount;
    return usage_charge_amount(u, c, now, &amount) && with_taxes(c, amount.amount_cents, cents);
}

bool wallets_price_event(const struct usage *u, const struct event *e, tally_time now,
                         int64_t *cents)
{
    *cents = 0;
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        if (strcmp(c->metric_code, e->code) != 0)
            continue;
        struct usage_amount amount;
        struct usage_estimate step;
        int64_t before, after;
        if (!usage_charge_amount(u, c, now, &amount) || !usage_estimate(u, c, e, now, &step) ||
            !with_taxes(c, amount.amount_cents, &before) ||
            !with_taxes(c, amount.amount_cents + step.amount_cents, &after))
            return false;
        *cents += after - before;
    }
    if (*cents < 0)
        *cents = 0; /* an event that lowers the fee needs no credits */
    return true;
}

enum command_result wallets_debit_usage(struct wallet_book *b, struct store *st,
                                        struct command *cmd, const struct usage *u,
                                        int64_t customer_id)
{
    struct customer_wallets *cw = customer_get(b, st, u->org_id, customer_id);
    if (!cw)
        return COMMAND_STORE_FAILED;
    if (cw->wallet_count == 0)
        return COMMAND_OK; /* nothing to debit: the invoice will charge it all */
    if (!touch(b, cw))
        return COMMAND_STORE_FAILED;
    enum command_result due = bring_up_to_date(st, cmd, cw);
    if (due != COMMAND_OK)
        return due;
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        int64_t cost;
        if (!charge_cost(u, c, cmd->now, &cost))
            return COMMAND_STORE_FAILED;
        struct charge_debit *d = find_debit(cw, u->subscription_id, c->lago_id);
        if (!d && !(d = add_debit(cw, u->subscription_id, c->lago_id, u->from)))
            return COMMAND_STORE_FAILED;
        if (d->period_from != u->from)
            debit_reset(d, u->from); /* a new period: the last one is the invoice's */
        int64_t step = cost - d->charged_cents;
        if (step == 0)
            continue;
        cmd->usage_cost_cents += step;
        enum command_result r = step > 0 ? debit(cw, cmd, d, u->currency, c->metric_code, step)
                                         : give_back(cw, st, cmd, d, -step);
        if (r != COMMAND_OK)
            return r;
        d->charged_cents = cost;
        d->dirty = true;
    }
    enum command_result fired = fire_rules(st, cmd, cw);
    if (fired != COMMAND_OK)
        return fired;
    if (b->deferring) /* written once for the whole group, by wallets_flush */
        return mark_dirty(b, cw) ? COMMAND_OK : COMMAND_STORE_FAILED;
    return flush_customer(st, cmd, cw);
}

enum command_result wallets_flush(struct wallet_book *b, struct store *st, struct command *cmd)
{
    for (size_t i = 0; i < b->dirty_count; i++) {
        struct customer_wallets *cw = book_find(b, b->dirty[i]);
        if (!cw)
            continue; /* dropped: nothing of it is ahead of the store */
        cw->dirty = false;
        enum command_result r = flush_customer(st, cmd, cw);
        if (r != COMMAND_OK)
            return r;
    }
    b->dirty_count = 0;
    for (size_t i = 0; i < b->org_balance_count; i++) {
        struct wallet_org_balance *o = &b->org_balances[i];
        if (o->dirty && store_ledger_balance_put(st, o->org_id, o->currency, o->account,
                                                 o->balance) != STORE_OK)
            return COMMAND_STORE_FAILED;
        o->dirty = false;
    }
    return COMMAND_OK;
}

/* ---- holds ------------------------------------------------------------------------------------
 */

static enum command_result save_hold_change(struct store *st, struct command *cmd,
                                            struct live_wallet *w, int64_t authorization_id,
                                            int64_t cents, enum ledger_cause cause)
{
    struct ledger_posting p;
    ledger_posting_init(&p, cause);
    if (cents > 0) /* a hold: reserved credits */
        ledger_posting_move(&p, LEDGER_CUSTOMER_HELD_CREDITS, LEDGER_HOLDS_OUTSTANDING, cents);
    else
        ledger_posting_move(&p, LEDGER_HOLDS_OUTSTANDING, LEDGER_CUSTOMER_HELD_CREDITS, -cents);
    w->row.held_cents += cents;
    w->row.updated_at = cmd->now;
    if (post_about(st, w, 0, authorization_id, cmd->now, &p) != STORE_OK ||
        store_wallet_save(st, &w->row) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

enum command_result wallets_hold(struct wallet_book *b, struct store *st, struct command *cmd,
                                 struct store_authorization *a, const char *metric_code)
{
    struct customer_wallets *cw = customer_get(b, st, a->org_id, a->customer_id);
    if (!cw || !touch(b, cw))
        return COMMAND_STORE_FAILED;
    enum command_result due = bring_up_to_date(st, cmd, cw);
    if (due != COMMAND_OK)
        return due;
    struct live_wallet *payers[WALLET_PER_CUSTOMER_MAX * 2];
    size_t n = 0;
    int64_t can = 0;
    for (size_t i = 0; i < cw->wallet_count && n < sizeof payers / sizeof payers[0]; i++) {
        if (pays_for(&cw->wallets[i], a->currency, metric_code, cmd->now)) {
            payers[n++] = &cw->wallets[i];
            can += spendable(&cw->wallets[i]);
        }
    }
    qsort(payers, n, sizeof payers[0], payer_compare);
    a->status = can >= a->amount_cents && n > 0 ? AUTHORIZATION_AUTHORIZED : AUTHORIZATION_DECLINED;
    a->held_cents = 0;
    if (n > 0)
        memcpy(cmd->wallet_lago_id, payers[0]->row.lago_id, sizeof cmd->wallet_lago_id);
    if (store_authorization_save(st, a) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (a->status == AUTHORIZATION_DECLINED)
        return COMMAND_OK; /* recorded, nothing reserved */
    int64_t left = a->amount_cents;
    for (size_t i = 0; i < n && left > 0; i++) {
        int64_t part = spendable(payers[i]) < left ? spendable(payers[i]) : left;
        if (part == 0)
            continue;
        enum command_result r =
            save_hold_change(st, cmd, payers[i], a->id, part, LEDGER_CAUSE_HOLD);
        if (r != COMMAND_OK ||
            store_authorization_hold_put(st, a->id, payers[i]->row.id, part) != STORE_OK)
            return COMMAND_STORE_FAILED;
        left -= part;
        a->held_cents += part;
    }
    if (store_authorization_save(st, a) != STORE_OK)
        return COMMAND_STORE_FAILED;
    enum command_result fired = fire_rules(st, cmd, cw);
    return fired == COMMAND_OK ? flush_customer(st, cmd, cw) : fired;
}

enum command_result wallets_release(struct wallet_book *b, struct store *st, struct command *cmd,
                                    struct store_authorization *a, enum ledger_cause cause)
{
    struct store_hold holds[WALLET_PER_CUSTOMER_MAX * 2];
    size_t count;
    if (store_authorization_holds(store_conn(st), a->id, holds, sizeof holds / sizeof holds[0],
                                  &count) != STORE_OK)
        return COMMAND_STORE_FAILED;
    struct customer_wallets *cw = customer_get(b, st, a->org_id, a->customer_id);
    if (!cw || !touch(b, cw))
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        struct live_wallet *w = wallet_by_id(cw, holds[i].wallet_id);
        if (!w || holds[i].cents == 0)
            continue; /* terminated since: its holds went with it */
        if (save_hold_change(st, cmd, w, a->id, -holds[i].cents, cause) != COMMAND_OK ||
            store_authorization_hold_put(st, a->id, w->row.id, 0) != STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    a->held_cents = 0;
    return COMMAND_OK;
}

/* ---- expiry -----------------------------------------------------------------------------------
 */

/* Voids what is left of one grant (or, grant_id 0, of every grant) as expired; `limit` > 0
 * expires at most that much (the part of a grant that does not roll over). */
static enum command_result expire_part(struct store *st, struct command *cmd, struct live_wallet *w,
                                       int64_t grant_id, int64_t limit)
{
    struct store_wallet_transaction t = {
        .org_id = w->row.org_id,
        .wallet_id = w->row.id,
        .type = WALLET_OUTBOUND,
        .state = WALLET_TX_SETTLED,
        .status = WALLET_TX_EXPIRED,
        .source = WALLET_SOURCE_MANUAL,
        .priority = WALLET_PRIORITY_MAX,
        .has_settled_at = true,
        .settled_at = cmd->now,
        .created_at = cmd->now,
    };
    struct ledger_posting p;
    ledger_posting_init(&p, LEDGER_CAUSE_EXPIRY);
    for (size_t i = 0; i < w->grant_count; i++)
        if (grant_id == 0 || w->grants[i].id == grant_id)
            t.amount_cents += w->grants[i].remaining_cents;
    if (limit > 0 && t.amount_cents > limit)
        t.amount_cents = limit; /* one grant then: grant_id != 0 */
    if (t.amount_cents == 0)
        return COMMAND_OK;
    if (!new_lago_id(cmd, t.lago_id) || store_wallet_transaction_insert(st, &t) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < w->grant_count; i++) {
        struct wallet_grant *g = &w->grants[i];
        if ((grant_id != 0 && g->id != grant_id) || g->remaining_cents == 0)
            continue;
        int64_t part = limit > 0 && limit < g->remaining_cents ? limit : g->remaining_cents;
        if (g->paid) /* paid credits that expire unused are breakage */
            ledger_posting_move(&p, LEDGER_BREAKAGE, LEDGER_CUSTOMER_PAID_CREDITS, part);
        else
            ledger_posting_move(&p, LEDGER_PROMOTIONAL_GRANTS, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS,
                                part);
        char lago_id[WALLET_LAGO_ID_TEXT];
        if (!new_lago_id(cmd, lago_id) ||
            store_wallet_consumption_insert(st, w->row.org_id, lago_id, g->id, t.id, part,
                                            cmd->now) != STORE_OK ||
            store_wallet_transaction_set_remaining(st, g->id, g->remaining_cents - part) !=
                STORE_OK)
            return COMMAND_STORE_FAILED;
        g->remaining_cents -= part;
    }
    drop_empty_grants(w);
    if (post(st, w, t.id, cmd->now, &p) != STORE_OK)
        return COMMAND_STORE_FAILED;
    w->row.consumed_cents += t.amount_cents; /* as voided credits are (Lago's rule) */
    w->row.balance_cents = grants_total(w) - w->row.overdrawn_cents;
    w->row.updated_at = cmd->now;
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* Expires, at cmd->now, the wallet's grants that are due: memory never spends a credit past
 * its expiry, whether or not the clock's sweep got there first. */
static enum command_result expire(struct store *st, struct command *cmd, struct live_wallet *w,
                                  int64_t grant_id)
{
    return expire_part(st, cmd, w, grant_id, 0);
}

static enum command_result expire_grants_before(struct store *st, struct command *cmd,
                                                struct live_wallet *w, tally_time before)
{
    for (size_t i = 0; i < w->grant_count; i++) {
        const struct wallet_grant *g = &w->grants[i];
        if (g->has_expiration && g->expiration_at < before && g->remaining_cents > 0) {
            enum command_result r = expire(st, cmd, w, g->id);
            if (r != COMMAND_OK)
                return r;
            i = (size_t)-1; /* the list changed: look again from the start */
        }
    }
    return COMMAND_OK;
}

static enum command_result expire_due_grants(struct store *st, struct command *cmd,
                                             struct live_wallet *w)
{
    return expire_grants_before(st, cmd, w, cmd->now + 1);
}

static enum command_result fire_interval(struct store *st, struct command *cmd,
                                         struct customer_wallets *cw, struct live_wallet *w,
                                         tally_time at);
static void schedule_rule(struct live_wallet *w, tally_time after);

static enum command_result terminate_wallet(struct store *st, struct command *cmd,
                                            struct live_wallet *w, bool expired);

/* Brings a customer's wallets to cmd->now: due grants expire, due wallets terminate. */
static enum command_result bring_up_to_date(struct store *st, struct command *cmd,
                                            struct customer_wallets *cw)
{
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
            r = expire_grants_before(st, cmd, w, at);
            if (r == COMMAND_OK && !(w->row.has_expiration_at && w->row.expiration_at <= at))
                r = fire_interval(st, cmd, cw, w, at);
            schedule_rule(w, at);
            w->dirty = true;
        }
        if (r == COMMAND_OK)
            r = expire_due_grants(st, cmd, w);
        if (r == COMMAND_OK && w->row.has_expiration_at && w->row.expiration_at <= cmd->now)
            r = terminate_wallet(st, cmd, w, true);
        if (r != COMMAND_OK)
            return r;
    }
    return COMMAND_OK;
}

/* ---- wallet commands ------------------------------------------------------------------------ */

static enum command_result refuse(struct command *cmd, const char *field, const char *code)
{
    cmd->invalid_field = field;
    cmd->invalid_code = code;
    return COMMAND_INVALID;
}

static int32_t currency_exponent(const char *code)
{
    const struct currency *c = currency_find(code, strlen(code));
    return c ? c->exponent : 2;
}

/*
 * A paid top-up is billed by a credit invoice, issued with it: finalized at once, or left open
 * until its payment when the credits wait for it (invoice_requires_successful_payment).
 */
static enum command_result credit_invoice(struct store *st, struct command *cmd,
                                          const struct live_wallet *w,
                                          const struct store_wallet_transaction *t, bool open)
{
    struct customer customer;
    if (store_customer_get(store_conn(st), w->row.org_id, w->row.external_customer_id, &customer,
                           cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    char date[TIMESTAMP_TEXT_MAX];
    timestamp_format(cmd->now, false, date);
    date[10] = '\0'; /* YYYY-MM-DD, UTC */
    struct store_invoice v = {
        .org_id = w->row.org_id,
        .customer_id = w->row.customer_id,
        .customer_sequential_id = customer.sequential_id,
        .type = INVOICE_CREDIT,
        .status = open ? INVOICE_OPEN : INVOICE_FINALIZED,
        .payment_status = INVOICE_PAYMENT_PENDING,
        .amount_cents = t->amount_cents,
        .wallet_transaction_id = t->id,
        .issuing_date = date,
        .created_at = cmd->now,
        .updated_at = cmd->now,
    };
    memcpy(v.currency, w->row.currency, sizeof v.currency);
    command_new_id(cmd, v.lago_id);
    if (store_invoice_save(st, &v) != STORE_OK ||
        store_wallet_transaction_set_invoice(st, t->id, v.lago_id) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

/*
 * Credits that repay a wallet's overdraft paid, in effect, for the usage that overdrew it:
 * the charges' overdraft fundings become fundings of the new grant, so that a later refund
 * step gives the credits back to it.
 */
static bool reassign_overdraft(struct customer_wallets *cw, const struct live_wallet *w,
                               int64_t grant_id, int64_t cents)
{
    for (size_t i = 0; i < cw->debit_count && cents > 0; i++) {
        struct charge_debit *d = &cw->debits[i];
        for (size_t k = 0; k < d->funding_count && cents > 0; k++) {
            struct funding *f = &d->fundings[k];
            if (f->kind != FUNDING_OVERDRAFT || f->wallet_id != w->row.id)
                continue;
            int64_t part = f->cents < cents ? f->cents : cents;
            if (part < f->cents) { /* split: the rest stays overdraft, just after */
                if (!vec_room((void **)&d->fundings, &d->funding_cap, d->funding_count,
                              sizeof *d->fundings, 4))
                    return false;
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
    return true;
}

/* A new settled grant (or a pending purchase) and its posting; repays an overdraft first. */
static enum command_result add_credits(struct store *st, struct command *cmd,
                                       struct customer_wallets *cw, struct live_wallet *w,
                                       bool paid, int64_t cents, const struct wallet_credits *cr,
                                       bool pending, enum wallet_transaction_source source,
                                       int64_t *made)
{
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
    if (!new_lago_id(cmd, t.lago_id) || store_wallet_transaction_insert(st, &t) != STORE_OK)
        return COMMAND_STORE_FAILED;
    /* the request's own transactions are its answer; a rule's are not */
    if (source == WALLET_SOURCE_MANUAL && cmd->transaction_count < 3)
        memcpy(cmd->transaction_lago_ids[cmd->transaction_count++], t.lago_id, sizeof t.lago_id);
    if (paid && credit_invoice(st, cmd, w, &t, pending) != COMMAND_OK)
        return COMMAND_STORE_FAILED;
    if (pending) {
        w->pending_cents += cents;
        return COMMAND_OK; /* no credits until it is paid */
    }
    if (made)
        *made = t.id; /* a settled grant */
    enum ledger_account credits =
        paid ? LEDGER_CUSTOMER_PAID_CREDITS : LEDGER_CUSTOMER_PROMOTIONAL_CREDITS;
    struct ledger_posting p;
    ledger_posting_init(&p, paid ? LEDGER_CAUSE_PURCHASE : LEDGER_CAUSE_GRANT);
    ledger_posting_move(&p, credits, paid ? LEDGER_RECEIVABLE : LEDGER_PROMOTIONAL_GRANTS, cents);
    ledger_posting_move(&p, LEDGER_CUSTOMER_OVERDRAFT, credits, repay);
    if (post(st, w, t.id, cmd->now, &p) != STORE_OK)
        return COMMAND_STORE_FAILED;
    w->row.overdrawn_cents -= repay;
    if (repay > 0 && !reassign_overdraft(cw, w, t.id, repay))
        return COMMAND_STORE_FAILED;
    struct wallet_grant g = grant_of(&t);
    if (g.remaining_cents > 0 && !grant_insert(w, &g))
        return COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

/* A pending purchase, paid: settled now, as add_credits settles one at once. */
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
    struct ledger_posting p;
    ledger_posting_init(&p, LEDGER_CAUSE_PURCHASE);
    ledger_posting_move(&p, LEDGER_CUSTOMER_PAID_CREDITS, LEDGER_RECEIVABLE, cents);
    ledger_posting_move(&p, LEDGER_CUSTOMER_OVERDRAFT, LEDGER_CUSTOMER_PAID_CREDITS, repay);
    if (post(st, w, t->id, cmd->now, &p) != STORE_OK)
        return COMMAND_STORE_FAILED;
    w->row.overdrawn_cents -= repay;
    if (repay > 0 && !reassign_overdraft(cw, w, t->id, repay))
        return COMMAND_STORE_FAILED;
    struct wallet_grant g = grant_of(t);
    if (g.remaining_cents > 0 && !grant_insert(w, &g))
        return COMMAND_STORE_FAILED;
    w->row.balance_cents = grants_total(w) - w->row.overdrawn_cents;
    return COMMAND_OK;
}

/* Voids `cents` of the wallet's credits, in consumption order, as one outbound transaction. */
static enum command_result void_credits(struct store *st, struct command *cmd,
                                        struct live_wallet *w, int64_t cents, const char *name)
{
    struct store_wallet_transaction t = {
        .org_id = w->row.org_id,
        .wallet_id = w->row.id,
        .type = WALLET_OUTBOUND,
        .state = WALLET_TX_SETTLED,
        .status = WALLET_TX_VOIDED,
        .source = WALLET_SOURCE_MANUAL,
        .amount_cents = cents,
        .priority = WALLET_PRIORITY_MAX,
        .name = name,
        .has_settled_at = true,
        .settled_at = cmd->now,
        .created_at = cmd->now,
    };
    if (!new_lago_id(cmd, t.lago_id) || store_wallet_transaction_insert(st, &t) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (cmd->transaction_count < 3)
        memcpy(cmd->transaction_lago_ids[cmd->transaction_count++], t.lago_id, sizeof t.lago_id);
    struct ledger_posting p;
    ledger_posting_init(&p, LEDGER_CAUSE_VOID);
    int64_t left = cents;
    for (size_t i = 0; i < w->grant_count && left > 0; i++) {
        struct wallet_grant *g = &w->grants[i];
        int64_t part = g->remaining_cents < left ? g->remaining_cents : left;
        if (part <= 0)
            continue;
        g->remaining_cents -= part;
        left -= part;
        /* paid credits voided are breakage; free ones take back what was granted */
        if (g->paid)
            ledger_posting_move(&p, LEDGER_BREAKAGE, LEDGER_CUSTOMER_PAID_CREDITS, part);
        else
            ledger_posting_move(&p, LEDGER_PROMOTIONAL_GRANTS, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS,
                                part);
        char lago_id[WALLET_LAGO_ID_TEXT];
        if (!new_lago_id(cmd, lago_id) ||
            store_wallet_consumption_insert(st, w->row.org_id, lago_id, g->id, t.id, part,
                                            cmd->now) != STORE_OK ||
            store_wallet_transaction_set_remaining(st, g->id, g->remaining_cents) != STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    assert(left == 0);
    if (post(st, w, t.id, cmd->now, &p) != STORE_OK)
        return COMMAND_STORE_FAILED;
    drop_empty_grants(w);
    w->row.consumed_cents += cents;
    return COMMAND_OK;
}

/* Paid, granted and voided credits of one request, in that order (Lago's). */
static enum command_result move_credits(struct store *st, struct command *cmd,
                                        struct customer_wallets *cw, struct live_wallet *w,
                                        const struct wallet_credits *cr)
{
    int32_t exponent = currency_exponent(w->row.currency);
    int64_t paid = 0, granted = 0, voided = 0;
    if ((cr->has_paid &&
         wallet_credits_to_cents(cr->paid, w->row.rate_amount, exponent, &paid) != MONEY_OK) ||
        paid < 0)
        return refuse(cmd, "paid_credits", "invalid_paid_credits");
    if ((cr->has_granted && wallet_credits_to_cents(cr->granted, w->row.rate_amount, exponent,
                                                    &granted) != MONEY_OK) ||
        granted < 0)
        return refuse(cmd, "granted_credits", "invalid_granted_credits");
    if ((cr->has_voided &&
         wallet_credits_to_cents(cr->voided, w->row.rate_amount, exponent, &voided) != MONEY_OK) ||
        voided < 0)
        return refuse(cmd, "voided_credits", "invalid_voided_credits");
    if ((cr->has_paid && money_sign(cr->paid) > 0 && paid == 0) ||
        (cr->has_granted && money_sign(cr->granted) > 0 && granted == 0) ||
        (cr->has_voided && money_sign(cr->voided) > 0 && voided == 0))
        return refuse(cmd, "amount", "amount_rounds_to_zero");
    if (voided > grants_total(w))
        return refuse(cmd, "voided_credits", "insufficient_credits");
    enum command_result r = COMMAND_OK;
    if (paid > 0)
        r = add_credits(st, cmd, cw, w, true, paid, cr, cr->invoice_requires_successful_payment,
                        WALLET_SOURCE_MANUAL, NULL);
    if (r == COMMAND_OK && granted > 0)
        r = add_credits(st, cmd, cw, w, false, granted, cr, false, WALLET_SOURCE_MANUAL, NULL);
    if (r == COMMAND_OK && voided > 0)
        r = void_credits(st, cmd, w, voided, cr->name);
    if (r != COMMAND_OK)
        return r;
    w->row.balance_cents = grants_total(w) - w->row.overdrawn_cents;
    w->row.updated_at = cmd->now;
    if (store_wallet_save(st, &w->row) != STORE_OK)
        return COMMAND_STORE_FAILED;
    enum command_result fired = fire_rules(st, cmd, cw); /* a void may bring one due */
    if (fired != COMMAND_OK)
        return fired;
    return flush_customer(st, cmd, cw); /* fundings that changed hands, balances */
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
    struct customer_wallets *cw = customer_get(b, st, cmd->org_id, row.customer_id);
    if (!cw || !touch(b, cw))
        return COMMAND_STORE_FAILED;
    struct live_wallet *w = wallet_by_id(cw, row.id);
    if (!w)
        return COMMAND_STORE_FAILED; /* active on disk but not loaded: cannot be */
    enum command_result r = bring_up_to_date(st, cmd, cw);
    if (r != COMMAND_OK)
        return r;
    if (w->row.has_terminated_at) /* it expired just now */
        return refuse(cmd, "wallet_id", "wallet_is_terminated");
    *cw_out = cw;
    *w_out = w;
    return COMMAND_OK;
}

static bool code_taken(const struct customer_wallets *cw, const char *code)
{
    for (size_t i = 0; i < cw->wallet_count; i++)
        if (strcmp(cw->wallets[i].row.code, code) == 0)
            return true;
    return false;
}

static enum command_result apply_create(struct wallet_book *b, struct store *st,
                                        struct command *cmd)
{
    struct wallet_request *req = &cmd->as.wallet_create;
    struct customer customer;
    enum store_status s = store_customer_get(store_conn(st), cmd->org_id, req->external_customer_id,
                                             &customer, cmd->arena);
    if (s != STORE_OK) {
        cmd->not_found_code = "customer_not_found";
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    }
    const char *currency = customer.text[CUSTOMER_CURRENCY];
    if (currency && strcmp(currency, req->wallet.currency) != 0)
        return refuse(cmd, "currency", "currencies_does_not_match");
    struct customer_wallets *cw = customer_get(b, st, cmd->org_id, customer.id);
    if (!cw || !touch(b, cw))
        return COMMAND_STORE_FAILED;
    if (cw->wallet_count >= WALLET_PER_CUSTOMER_MAX)
        return refuse(cmd, "customer", "wallet_limit_reached");
    struct store_wallet w = req->wallet;
    if (code_taken(cw, w.code)) {
        if (!req->code_generated)
            return refuse(cmd, "code", "value_already_exist");
        /* Lago's rule for a code made from the name: the time makes it unique */
        size_t cap = strlen(w.code) + 24;
        char *code = arena_alloc(cmd->arena, cap);
        if (!code)
            return COMMAND_STORE_FAILED;
        snprintf(code, cap, "%s_%lld", w.code, (long long)(cmd->now / 1000000));
        w.code = code;
        if (code_taken(cw, w.code))
            return refuse(cmd, "code", "value_already_exist");
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
    if (!new_lago_id(cmd, w.lago_id) || store_wallet_save(st, &w) != STORE_OK)
        return COMMAND_STORE_FAILED;
    memcpy(cmd->wallet_lago_id, w.lago_id, sizeof w.lago_id);
    /* Loaded back whole (with its terms), so memory holds what the disk holds. */
    book_forget(b, customer.id);
    struct live_wallet *live;
    enum command_result r = live_wallet_of(b, st, cmd, w.lago_id, &cw, &live);
    if (r != COMMAND_OK)
        return r;
    schedule_rule(live, cmd->now); /* saved with its first credits */
    return move_credits(st, cmd, cw, live, &req->credits);
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
    if (w->row.updated_at != u->expected_updated_at)
        return COMMAND_STALE;
    struct store_wallet row = w->row; /* balances as the writer has them */
    row.name = u->wallet.name;
    row.priority = u->wallet.priority;
    row.limit = u->wallet.limit;
    row.overdraft_limit_cents = u->wallet.overdraft_limit_cents;
    row.has_expiration_at = u->wallet.has_expiration_at;
    row.expiration_at = u->wallet.expiration_at;
    row.terms_json = u->wallet.terms_json;
    row.updated_at = cmd->now;
    if (row.limit == WALLET_LIMIT_SOFT && row.overdrawn_cents > row.overdraft_limit_cents)
        return refuse(cmd, "overdraft_credits", "value_is_out_of_range");
    if (row.limit != WALLET_LIMIT_SOFT && row.overdrawn_cents > 0)
        return refuse(cmd, "limit", "wallet_is_overdrawn");
    if (store_wallet_save(st, &row) != STORE_OK)
        return COMMAND_STORE_FAILED;
    memcpy(cmd->wallet_lago_id, row.lago_id, sizeof row.lago_id);
    book_forget(b, row.customer_id); /* its terms changed: loaded again */
    /* and its rule's next anniversary follows the new terms */
    if ((r = live_wallet_of(b, st, cmd, row.lago_id, &cw, &w)) != COMMAND_OK)
        return r;
    schedule_rule(w, cmd->now);
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/*
 * Terminating a wallet (by request, or at its expiration_at) voids what is left of it: Lago
 * leaves it frozen; here the ledger says where it went. Open holds are released; an
 * overdraft stays owed.
 */
static enum command_result terminate_wallet(struct store *st, struct command *cmd,
                                            struct live_wallet *w, bool expired)
{
    enum command_result r = COMMAND_OK;
    if (expired)
        r = expire(st, cmd, w, 0);
    else if (grants_total(w) > 0)
        r = void_credits(st, cmd, w, grants_total(w), NULL);
    if (r != COMMAND_OK)
        return r;
    if (w->row.held_cents > 0) {
        struct ledger_posting p;
        ledger_posting_init(&p, LEDGER_CAUSE_RELEASE);
        ledger_posting_move(&p, LEDGER_HOLDS_OUTSTANDING, LEDGER_CUSTOMER_HELD_CREDITS,
                            w->row.held_cents);
        if (post(st, w, 0, cmd->now, &p) != STORE_OK)
            return COMMAND_STORE_FAILED;
        w->row.held_cents = 0;
    }
    w->row.balance_cents = -w->row.overdrawn_cents;
    w->row.has_terminated_at = true;
    w->row.terminated_at = cmd->now;
    w->row.updated_at = cmd->now;
    return store_wallet_save(st, &w->row) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

static enum command_result apply_terminate(struct wallet_book *b, struct store *st,
                                           struct command *cmd)
{
    struct customer_wallets *cw;
    struct live_wallet *w;
    enum command_result r = live_wallet_of(b, st, cmd, cmd->as.wallet_terminate.lago_id, &cw, &w);
    if (r == COMMAND_OK)
        r = terminate_wallet(st, cmd, w, false);
    if (r != COMMAND_OK)
        return r;
    memcpy(cmd->wallet_lago_id, w->row.lago_id, sizeof w->row.lago_id);
    book_forget(b, w->row.customer_id);
    return COMMAND_OK;
}

static enum command_result apply_top_up(struct wallet_book *b, struct store *st,
                                        struct command *cmd)
{
    struct customer_wallets *cw;
    struct live_wallet *w;
    enum command_result r =
        live_wallet_of(b, st, cmd, cmd->as.wallet_top_up.wallet_lago_id, &cw, &w);
    if (r != COMMAND_OK) {
        if (r == COMMAND_NOT_FOUND)
            cmd->not_found_code = "wallet_not_found";
        return r;
    }
    memcpy(cmd->wallet_lago_id, w->row.lago_id, sizeof w->row.lago_id);
    return move_credits(st, cmd, cw, w, &cmd->as.wallet_top_up.credits);
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
        if (r == COMMAND_INVALID) { /* the wallet was terminated since */
            cmd->invalid_field = NULL;
            return refuse(cmd, "payment_status", "wallet_is_terminated");
        }
        if (r != COMMAND_OK)
            return r;
        w->pending_cents -= t.amount_cents;
        if (to == INVOICE_PAYMENT_SUCCEEDED) {
            r = settle_purchase(st, cmd, cw, w, &t);
        } else {
            t.state = WALLET_TX_FAILED;
            t.has_failed_at = true;
            t.failed_at = cmd->now;
            r = store_wallet_transaction_set_state(st, &t) == STORE_OK ? COMMAND_OK
                                                                       : COMMAND_STORE_FAILED;
        }
        if (r == COMMAND_OK)
            r = fire_rules(st, cmd, cw); /* what was pending no longer counts */
        if (r == COMMAND_OK) {
            w->dirty = true;
            r = flush_customer(st, cmd, cw);
        }
        if (r != COMMAND_OK)
            return r;
    }
    v->payment_status = to;
    if (v->status == INVOICE_OPEN)
        v->status = INVOICE_FINALIZED;
    v->updated_at = cmd->now;
    return store_invoice_save(st, v) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
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

/* ---- the clock's sweep -------------------------------------------------------------------------
 */

#define SWEEP_ROUND 256 /* items of one kind read at a time */

/*
 * Records the due expiry reminders as webhook events (credits.expiring_soon) in the outbox,
 * delivered by the webhook sender; each grant is reminded once per threshold, the nearest
 * first (a grant already that close gets only that one).
 */
static enum command_result record_reminders(struct store *st, struct command *cmd,
                                            const struct wallet_reminders *reminders, size_t *done)
{
    struct store_due_item due[SWEEP_ROUND];
    size_t count;
    const int32_t *reminder_days = reminders->days;
    for (size_t k = 0; k < reminders->count; k++) {
        do {
            if (store_reminders_due(store_conn(st), cmd->org_id, reminder_days[k], cmd->now, due,
                                    SWEEP_ROUND, &count) != STORE_OK)
                return COMMAND_STORE_FAILED;
            for (size_t i = 0; i < count; i++) {
                char data[160];
                snprintf(data, sizeof data, "{\"days_before_expiry\":%d,\"lago_wallet_id\":\"%s\"}",
                         (int)reminder_days[k], due[i].lago_id);
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
            }
            *done += count;
        } while (count == SWEEP_ROUND);
    }
    return COMMAND_OK;
}

enum command_result wallets_sweep(struct wallet_book *b, struct store *st, struct command *cmd,
                                  const struct wallet_reminders *reminders, size_t *done)
{
    struct store_due_item due[SWEEP_ROUND];
    size_t count;
    *done = 0;
    /* Reminders first: a test clock that jumps over both a reminder's day and the expiry
     * records the reminder before the credits expire. */
    enum command_result reminded = record_reminders(st, cmd, reminders, done);
    if (reminded != COMMAND_OK)
        return reminded;
    /* Then holds (releasing them frees credits before anything else happens at `now`). */
    do {
        if (store_due(store_conn(st), cmd->org_id, STORE_DUE_HOLDS, cmd->now, due, SWEEP_ROUND,
                      &count) != STORE_OK)
            return COMMAND_STORE_FAILED;
        for (size_t i = 0; i < count; i++) {
            struct store_authorization a;
            if (store_authorization_get(store_conn(st), cmd->org_id, due[i].lago_id, &a,
                                        cmd->arena) != STORE_OK ||
                wallets_release(b, st, cmd, &a, LEDGER_CAUSE_RELEASE) != COMMAND_OK)
                return COMMAND_STORE_FAILED;
            a.status = AUTHORIZATION_EXPIRED;
            a.updated_at = cmd->now;
            if (store_authorization_save(st, &a) != STORE_OK)
                return COMMAND_STORE_FAILED;
            (*done)++;
        }
    } while (count == SWEEP_ROUND);
    /* Then every wallet with a grant or itself due: bringing it up to date does both. */
    enum store_due_kind kinds[] = {STORE_DUE_RULES, STORE_DUE_GRANTS, STORE_DUE_WALLETS};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        do {
            if (store_due(store_conn(st), cmd->org_id, kinds[k], cmd->now, due, SWEEP_ROUND,
                          &count) != STORE_OK)
                return COMMAND_STORE_FAILED;
            for (size_t i = 0; i < count; i++) {
                struct store_wallet row;
                if (store_wallet_get(store_conn(st), cmd->org_id, due[i].lago_id, &row,
                                     cmd->arena) != STORE_OK)
                    return COMMAND_STORE_FAILED;
                struct customer_wallets *cw = customer_get(b, st, cmd->org_id, row.customer_id);
                if (!cw || !touch(b, cw))
                    return COMMAND_STORE_FAILED;
                enum command_result r = bring_up_to_date(st, cmd, cw);
                if (r == COMMAND_OK)
                    r = flush_customer(st, cmd, cw); /* rules' credits, next anniversaries */
                if (r != COMMAND_OK)
                    return r;
                if (kinds[k] == STORE_DUE_WALLETS && !row.has_terminated_at &&
                    !wallet_by_id(cw, row.id))
                    return COMMAND_STORE_FAILED; /* due but not loaded: cannot be */
            }
            (*done) += count;
        } while (count == SWEEP_ROUND);
    }
    return COMMAND_OK;
}

bool wallets_due(struct store *st, int64_t org_id, const struct wallet_reminders *reminders,
                 tally_time now)
{
    struct store_due_item item;
    size_t count = 0;
    enum store_due_kind kinds[] = {STORE_DUE_HOLDS, STORE_DUE_RULES, STORE_DUE_GRANTS,
                                   STORE_DUE_WALLETS};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (store_due(store_conn(st), org_id, kinds[k], now, &item, 1, &count) != STORE_OK ||
            count > 0)
            return true; /* a failing store: let the sweep's command report it */
    for (size_t k = 0; k < reminders->count; k++)
        if (store_reminders_due(store_conn(st), org_id, reminders->days[k], now, &item, 1,
                                &count) != STORE_OK ||
            count > 0)
            return true;
    return false;
}
