/*
 * engine/catalog_edit.c: the catalog's writes (billable metrics, plans, coupons, add-ons,
 * taxes): an item made or updated (catalog_edit_apply_put), with the checks an update must
 * pass (a metric's filters and aggregation while plans charge it, a plan's trial, a coupon in
 * use, the organization's default taxes), and an item deleted (catalog_edit_apply_delete); and
 * what a deletion or a new code takes with it: whatever names the item follows its new code or
 * lets it go, in the same command, as Lago links them by id.
 *
 * The HTTP thread parsed and validated the item (api/catalog.c); what needs the store's
 * current state is here. Threads: the writer's only.
 */
#include "engine/catalog_edit.h"

#include <json-c/json.h>
#include <string.h>

#include "engine/applied_coupons.h"
#include "engine/subscriptions.h"
#include "engine/wallets.h"
#include "json/catalog_refs.h"
#include "json/coupon_json.h"
#include "json/metric_json.h"
#include "json/plan_json.h"
#include "util/text.h"

static enum command_result retarget(struct engine *e, struct command *cmd, enum catalog_kind kind,
                                    const char *code, const char *replacement);

/* The UTC day of t, counted from the epoch (floored: a day before it is negative). */
static int64_t utc_day(tally_time t)
{
    int64_t d = t / TIMESTAMP_USEC_PER_DAY;
    return t % TIMESTAMP_USEC_PER_DAY < 0 ? d - 1 : d;
}

static enum command_result check_refs(struct engine *e, struct command *cmd)
{
    for (size_t i = 0; i < cmd->as.catalog_put.ref_count; i++) {
        const struct catalog_ref *ref = &cmd->as.catalog_put.refs[i];
        struct catalog_item found;
        enum store_status s =
            ref->lago_id ? store_catalog_get_by_lago_id(store_conn(e->store), cmd->org_id,
                                                        ref->kind, ref->lago_id, &found, cmd->arena)
                         : store_catalog_get(store_conn(e->store), cmd->org_id, ref->kind,
                                             ref->code, &found, cmd->arena);
        if (s == STORE_ERROR)
            return COMMAND_STORE_FAILED;
        if (s == STORE_NOT_FOUND) {
            cmd->missing_ref = ref;
            return COMMAND_REF_NOT_FOUND;
        }
    }
    return COMMAND_OK;
}

/*
 * What a metric update may not change:
 *   - `recurring`, for life: only the events of a metric recurring when they arrived are
 *     indexed for carrying (store_recurring_event_note), so one made recurring later would carry
 *     nothing of its past, and one made not recurring would drop what it carried;
 *   - its aggregation while a plan charges for it (Lago keeps it too, silently): the charges'
 *     prices were set for that kind of measure, and the change could make the plan itself
 *     invalid (a pay-in-advance charge on a max, a percentage on a latest), so that no later
 *     edit of the plan would pass; and, for the same while, its code, expression and
 *     weighted_interval (check_metric_update says why). Its field and rounding may change: the
 *     usages that charge for it then count the period's events again (docs/ARCHITECTURE.md,
 *     "Live usage").
 */
static enum command_result catalog_items(struct engine *e, struct command *cmd,
                                         enum catalog_kind kind, struct catalog_item **items,
                                         size_t *count);

/* Whether an update takes a value (or a whole key) out of a metric's filters. */
static bool filters_narrowed(const struct billable_metric *was, const struct billable_metric *will)
{
    for (size_t i = 0; i < was->filter_count; i++) {
        const struct billable_metric_filter *f = &was->filters[i], *g = NULL;
        for (size_t j = 0; j < will->filter_count && !g; j++)
            if (strcmp(will->filters[j].key, f->key) == 0)
                g = &will->filters[j];
        if (!g)
            return true;
        for (size_t v = 0; v < f->value_count; v++) {
            bool kept = false;
            for (size_t w = 0; w < g->value_count && !kept; w++)
                kept = strcmp(g->values[w], f->values[v]) == 0;
            if (!kept)
                return true;
        }
    }
    return false;
}

/*
 * A metric's filters may lose a value only when no charge filter names it, in the catalog's
 * plans or in a subscription's own plan: such a filter would go on billing a value its metric
 * no longer declares, and its plan could never be saved again (a charge filter's values must
 * be its metric's). Lago takes the value out of those charge filters in the same update;
 * Tally refuses it instead, naming the plan, rather than change prices behind the plan's back.
 */
static enum command_result check_filters_unused(struct engine *e, struct command *cmd,
                                                const char *metric_lago_id,
                                                const struct billable_metric *will)
{
    struct catalog_item *plans;
    size_t count;
    const char *key, *value;
    enum command_result r = catalog_items(e, cmd, CATALOG_PLAN, &plans, &count);
    for (size_t i = 0; r == COMMAND_OK && i < count; i++) {
        int found = catalog_refs_undeclared_filter(cmd->arena, plans[i].body, metric_lago_id,
                                                   will->filters, will->filter_count, &key, &value);
        if (found < 0)
            return COMMAND_STORE_FAILED;
        if (found) {
            command_set_message(cmd,
                                "plan %s has a charge filter on %s: \"%s\", which the metric would "
                                "no longer declare: take it out of the plan's charge filters first",
                                plans[i].code, key, value);
            return invalid(cmd, "filters", "value_used_by_charge_filters");
        }
    }
    if (r != COMMAND_OK)
        return r;
    struct store_own_plan *own;
    if (store_subscription_own_plans(store_conn(e->store), cmd->org_id, metric_lago_id, &own,
                                     &count, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        if (own[i].ended)
            continue; /* it bills nothing more, and cannot be edited */
        int found = catalog_refs_undeclared_filter(cmd->arena, own[i].plan_body, metric_lago_id,
                                                   will->filters, will->filter_count, &key, &value);
        if (found < 0)
            return COMMAND_STORE_FAILED;
        if (found) {
            command_set_message(
                cmd,
                "subscription %s's plan overrides have a charge filter on %s: \"%s\", "
                "which the metric would no longer declare: take it out of them "
                "first",
                own[i].external_id, key, value);
            return invalid(cmd, "filters", "value_used_by_charge_filters");
        }
    }
    return COMMAND_OK;
}

/* A field a metric keeps while a plan charges for it: its name in errors, in the message, and
 * why it is kept. */
struct kept_field {
    const char *field, *what, *why;
};

/* Whether two stored bodies have the same JSON for a member (absent and null alike). A body
 * that does not read is the same: check_metric_update read both already. */
static bool same_member(const char *a_body, const char *b_body, const char *key)
{
    struct json_object *a = json_tokener_parse(a_body), *b = json_tokener_parse(b_body), *x = NULL,
                       *y = NULL;
    if (a)
        json_object_object_get_ex(a, key, &x);
    if (b)
        json_object_object_get_ex(b, key, &y);
    bool same = !a || !b || json_object_equal(x, y);
    json_object_put(a);
    json_object_put(b);
    return same;
}

static enum command_result check_metric_update(struct engine *e, struct command *cmd,
                                               const struct catalog_item *current,
                                               const struct catalog_item *next)
{
    struct billable_metric was, will;
    if (!metric_json_read(cmd->arena, current->body, &was) ||
        !metric_json_read(cmd->arena, next->body, &will))
        return COMMAND_STORE_FAILED;
    if (was.recurring != will.recurring)
        return invalid(cmd, "recurring", "value_is_immutable");
    if (filters_narrowed(&was, &will)) {
        enum command_result r = check_filters_unused(e, cmd, current->lago_id, &will);
        if (r != COMMAND_OK)
            return r;
    }
    /* Events name their metric by code: renamed, the period's events would leave the usage
     * that charges for it (its debits given back), and a new metric of the old code would
     * bill them (an audit's). Lago keeps the code of a metric its plans use, silently, and so
     * its expression and weighted_interval (BillableMetrics::UpdateService, `unless
     * billable_metric.plans.exists?`): an expression set there had the client's events, which
     * lacked what it reads, refused (an audit's), and the period's stored events keep the
     * values the old one gave them. */
    struct kept_field kept = {NULL, NULL, NULL};
    if (strcmp(current->code, next->code) != 0)
        kept = (struct kept_field){"code", "code", "events name it by its code"};
    else if (was.aggregation != will.aggregation)
        kept = (struct kept_field){"aggregation_type", "aggregation",
                                   "its charges' prices were set for that measure"};
    else if (!text_same(was.expression, will.expression))
        kept = (struct kept_field){"expression", "expression",
                                   "the period's stored events keep the values it gave them, "
                                   "and events without what it reads would be refused"};
    else if (!same_member(current->body, next->body, "weighted_interval"))
        kept = (struct kept_field){"weighted_interval", "weighted_interval",
                                   "its charges' prices were set for that measure"};
    const char *field = kept.field, *what = kept.what, *why = kept.why;
    if (!field)
        return COMMAND_OK;
    const char *plan;
    enum store_status s =
        store_metric_plan(store_conn(e->store), cmd->org_id, current->lago_id, &plan, cmd->arena);
    if (s != STORE_OK && s != STORE_NOT_FOUND)
        return COMMAND_STORE_FAILED;
    if (s == STORE_OK) {
        command_set_message(cmd,
                            "plan %s charges for this metric: its %s cannot change while a plan "
                            "uses it (%s; remove its charges, or make another metric)",
                            plan, what, why);
        return invalid(cmd, field, "metric_used_by_plans");
    }
    /* a subscription's own plan (plan_overrides) charges for it as much (an audit renamed a
     * metric only such a plan charged, and its usage went) */
    struct store_own_plan *own;
    size_t count;
    if (store_subscription_own_plans(store_conn(e->store), cmd->org_id, current->lago_id, &own,
                                     &count, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        if (own[i].ended)
            continue;
        int charges = catalog_refs_charges_metric(own[i].plan_body, current->lago_id);
        if (charges < 0)
            return COMMAND_STORE_FAILED;
        if (!charges)
            continue;
        command_set_message(cmd,
                            "subscription %s's own plan charges for this metric: its %s cannot "
                            "change while a plan uses it (%s; remove its charges, or make another "
                            "metric)",
                            own[i].external_id, what, why);
        return invalid(cmd, field, "metric_used_by_plans");
    }
    return COMMAND_OK;
}

static enum command_result check_default_taxes(struct engine *e, struct command *cmd,
                                               const struct catalog_item *tax);

/*
 * A plan with subscriptions keeps its trial_period (the HTTP thread drops it from the update:
 * prune_plan_update in api/plans.c). An update that read the plan before its first subscription
 * and would change the trial is refused as stale: its retry drops it. A plan stays attached.
 */
static enum command_result check_plan_trial(struct engine *e, struct command *cmd,
                                            const struct catalog_item *current,
                                            const struct catalog_item *plan)
{
    struct plan_terms was, will;
    bool attached;
    if (cmd->as.catalog_put.terms_kept || !plan_json_terms(current->body, &was) ||
        !plan_json_terms(plan->body, &will) ||
        money_cmp(was.trial_period_days, will.trial_period_days) == 0)
        return COMMAND_OK;
    if (store_plan_attached(store_conn(e->store), cmd->org_id, current->lago_id, &attached) !=
        STORE_OK)
        return COMMAND_STORE_FAILED;
    return attached ? COMMAND_STALE : COMMAND_OK;
}

enum command_result catalog_edit_apply_put(struct engine *e, struct command *cmd)
{
    struct catalog_item *it = &cmd->item;
    *it = cmd->as.catalog_put.item;
    it->org_id = cmd->org_id;
    struct catalog_item same_code, current;
    enum store_status s = store_catalog_get(store_conn(e->store), cmd->org_id, it->kind, it->code,
                                            &same_code, cmd->arena);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    if (s == STORE_OK && same_code.id != it->id)
        return invalid(cmd, "code", "value_already_exist");
    if (it->id != 0) {
        s = store_catalog_get_by_lago_id(store_conn(e->store), cmd->org_id, it->kind, it->lago_id,
                                         &current, cmd->arena);
        if (s != STORE_OK)
            return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
        if (current.updated_at != cmd->as.catalog_put.expected_updated_at)
            return COMMAND_STALE;
        if (it->kind == CATALOG_BILLABLE_METRIC || it->kind == CATALOG_COUPON ||
            it->kind == CATALOG_PLAN) {
            enum command_result r =
                it->kind == CATALOG_COUPON ? applied_coupons_check_update(e, cmd, &current)
                : it->kind == CATALOG_PLAN ? check_plan_trial(e, cmd, &current, it)
                                           : check_metric_update(e, cmd, &current, it);
            if (r != COMMAND_OK)
                return r;
        }
        /* renamed: what names it follows (Lago links by id) */
        bool renamed = strcmp(current.code, it->code) != 0;
        enum command_result r =
            renamed ? retarget(e, cmd, it->kind, current.code, it->code) : COMMAND_OK;
        if (r != COMMAND_OK)
            return r;
        /* and the events stored under a metric's old code stay the old code's, of no metric:
         * one made later with it starts with nothing, as after a deletion (an audit saw a
         * new metric count a renamed one's events); they stay listed, as Lago's code change
         * leaves its events as they were */
        if (renamed && it->kind == CATALOG_BILLABLE_METRIC &&
            store_metric_history_end(e->store, cmd->org_id, current.code, e->last_event_id,
                                     false) != STORE_OK)
            return COMMAND_STORE_FAILED;
        /* a coupon that ended stays so whatever expiry the update gives it (json/coupon_json;
         * an audit brought an expired one back with no_expiration and applied it again) */
        tally_time ended;
        if (it->kind == CATALOG_COUPON && coupon_json_ended(current.body, cmd->now, &ended) &&
            !(it->body = coupon_json_set_ended(cmd->arena, it->body, ended)))
            return COMMAND_STORE_FAILED;
        it->created_at = current.created_at;
    } else {
        it->created_at = cmd->now;
    }
    /* Lago's Coupons::ValidateService: a coupon is not made, nor given an expiry, of a day
     * before the clock's (UTC dates compared, as `to_date >= Time.current.to_date`: one earlier
     * today is taken, and the coupon is terminated at it); an update that keeps its expiry
     * carries none here (found by an audit: an update set a past one) */
    if (cmd->as.catalog_put.has_expiration_at &&
        utc_day(cmd->as.catalog_put.expiration_at) < utc_day(cmd->now))
        return invalid(cmd, "expiration_at", "invalid_date");
    enum command_result r = check_refs(e, cmd);
    if (r == COMMAND_OK && cmd->as.catalog_put.not_allowed_code) {
        cmd->not_allowed_code = cmd->as.catalog_put.not_allowed_code;
        return COMMAND_NOT_ALLOWED;
    }
    if (r == COMMAND_OK && it->kind == CATALOG_TAX)
        r = check_default_taxes(e, cmd, it);
    if (r != COMMAND_OK)
        return r;
    /* updated_at tells versions apart (the check above): it must move on every save. */
    bool update = it->id != 0;
    it->updated_at = update && cmd->now <= cmd->as.catalog_put.expected_updated_at
                         ? cmd->as.catalog_put.expected_updated_at + 1
                         : cmd->now;
    if (store_catalog_save(e->store, it) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return update && it->kind == CATALOG_PLAN
               ? subscriptions_recheck_downgrades(e, cmd, &current, it)
               : COMMAND_OK;
}

/* ---- what a deletion or a new code takes with it ---------------------------------------- */

/* Every live item of a kind, in the command's arena. */
static enum command_result catalog_items(struct engine *e, struct command *cmd,
                                         enum catalog_kind kind, struct catalog_item **items,
                                         size_t *count)
{
    int64_t total;
    if (store_catalog_list(store_conn(e->store), cmd->org_id, kind, 0, 1, items, count, &total,
                           cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    if (total > 1 && store_catalog_list(store_conn(e->store), cmd->org_id, kind, 0, total, items,
                                        count, &total, cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    return COMMAND_OK;
}

/*
 * Saves an item whose references a deletion changed. updated_at moves as for any update, so an
 * update read before the deletion is refused as stale rather than bring the dead code back.
 */
static enum command_result resave_item(struct engine *e, struct command *cmd,
                                       struct catalog_item *item, const char *body)
{
    item->body = body;
    item->updated_at = cmd->now > item->updated_at ? cmd->now : item->updated_at + 1;
    return store_catalog_save(e->store, item) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/*
 * Whether a code is surely written as itself inside a JSON string (printable ASCII, no quote or
 * backslash), so that the store may look for it in stored text; otherwise every body is read.
 */
static bool written_verbatim(const char *code)
{
    for (const unsigned char *c = (const unsigned char *)code; *c; c++)
        if (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\')
            return false;
    return true;
}

/*
 * What names a tax follows it (`replacement`: its new code) or lets it go (NULL: deleted), as
 * Lago links applied taxes by id and its Taxes::DestroyService destroys them: plans (their
 * charges and minimum commitment too), add-ons, subscriptions' own plans and customers. A code
 * left behind made each of those impossible to update (404 tax_not_found) and named any new
 * tax made with that code. The usages that paid it are priced again after the command
 * (refresh_usage), as after any catalog write.
 */
static enum command_result retarget_tax(struct engine *e, struct command *cmd, const char *code,
                                        const char *replacement)
{
    static const enum catalog_kind naming[] = {CATALOG_PLAN, CATALOG_ADD_ON};
    for (size_t k = 0; k < sizeof naming / sizeof naming[0]; k++) {
        struct catalog_item *items;
        size_t count;
        enum command_result r = catalog_items(e, cmd, naming[k], &items, &count);
        for (size_t i = 0; r == COMMAND_OK && i < count; i++) {
            const char *body;
            switch (
                catalog_refs_retarget_tax(cmd->arena, items[i].body, code, replacement, &body)) {
            case CATALOG_REFS_UNCHANGED: break;
            case CATALOG_REFS_CHANGED: r = resave_item(e, cmd, &items[i], body); break;
            case CATALOG_REFS_FAILED: r = COMMAND_STORE_FAILED; break;
            }
        }
        if (r != COMMAND_OK)
            return r;
    }
    const char *containing = written_verbatim(code) ? code : NULL;
    struct store_own_plan *own;
    size_t count;
    if (store_subscription_own_plans(store_conn(e->store), cmd->org_id, containing, &own, &count,
                                     cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        const char *body;
        enum catalog_refs_result r =
            catalog_refs_retarget_tax(cmd->arena, own[i].plan_body, code, replacement, &body);
        if (r == CATALOG_REFS_FAILED)
            return COMMAND_STORE_FAILED;
        /* updated_at moves, as the plan's: a subscription change read before is stale */
        tally_time at = cmd->now > own[i].updated_at ? cmd->now : own[i].updated_at + 1;
        if (r == CATALOG_REFS_CHANGED &&
            store_subscription_set_plan_body(e->store, own[i].subscription_id, body, at) !=
                STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    struct store_customer_taxes *taxed;
    if (store_customers_taxed(store_conn(e->store), cmd->org_id, containing, &taxed, &count,
                              cmd->arena) != STORE_OK)
        return COMMAND_STORE_FAILED;
    for (size_t i = 0; i < count; i++) {
        const char *kept;
        enum catalog_refs_result r =
            catalog_refs_retarget_listed(cmd->arena, taxed[i].tax_codes, code, replacement, &kept);
        if (r == CATALOG_REFS_FAILED ||
            (r == CATALOG_REFS_CHANGED &&
             store_customer_set_tax_codes(e->store, taxed[i].customer_id, kept) != STORE_OK))
            return COMMAND_STORE_FAILED;
    }
    return COMMAND_OK;
}

/*
 * The coupons limited to a plan or billable metric (`key`: plan_codes or
 * billable_metric_codes) follow its new code (`replacement`), or let it go (NULL: deleted), as
 * Lago links a coupon's targets by id and discards them with the target. A coupon whose every
 * target goes keeps its limited_* flag, so it applies to none (Lago's coupon keeps its flag
 * too) rather than becoming a coupon for every plan.
 */
static enum command_result retarget_coupons(struct engine *e, struct command *cmd, const char *key,
                                            const char *code, const char *replacement)
{
    struct catalog_item *coupons;
    size_t count;
    enum command_result r = catalog_items(e, cmd, CATALOG_COUPON, &coupons, &count);
    for (size_t i = 0; r == COMMAND_OK && i < count; i++) {
        const char *body;
        switch (catalog_refs_retarget_code(cmd->arena, coupons[i].body, key, code, replacement,
                                           &body)) {
        case CATALOG_REFS_UNCHANGED: break;
        case CATALOG_REFS_CHANGED: r = resave_item(e, cmd, &coupons[i], body); break;
        case CATALOG_REFS_FAILED: r = COMMAND_STORE_FAILED; break;
        }
    }
    return r;
}

/* What names an item follows its new code (`replacement`), or lets it go (NULL: deleted): Lago
 * links them by id. */
static enum command_result retarget(struct engine *e, struct command *cmd, enum catalog_kind kind,
                                    const char *code, const char *replacement)
{
    switch (kind) {
    case CATALOG_TAX: return retarget_tax(e, cmd, code, replacement);
    case CATALOG_PLAN: return retarget_coupons(e, cmd, "plan_codes", code, replacement);
    case CATALOG_BILLABLE_METRIC: {
        /* coupons and wallets limited to it (Lago's coupon and wallet targets) */
        enum command_result r =
            retarget_coupons(e, cmd, "billable_metric_codes", code, replacement);
        return r == COMMAND_OK
                   ? wallets_retarget_metric(&e->wallets, e->store, cmd, code, replacement)
                   : r;
    }
    case CATALOG_COUPON:
    case CATALOG_ADD_ON: return COMMAND_OK;
    }
    return COMMAND_OK;
}

/* What names the item stops naming it, in the deletion's own command (Lago's destroy services). */
static enum command_result delete_cascade(struct engine *e, struct command *cmd,
                                          const struct catalog_item *it)
{
    int64_t ended;
    switch (it->kind) {
    case CATALOG_TAX:
    case CATALOG_PLAN: return retarget(e, cmd, it->kind, it->code, NULL);
    case CATALOG_BILLABLE_METRIC: {
        enum command_result r = retarget(e, cmd, it->kind, it->code, NULL);
        if (r != COMMAND_OK)
            return r;
        /* Its events go with it, as Lago's DeleteEventsJob marks them deleted: every one
         * stored so far under its code (ids are given in order, and an event of a code no
         * metric has is refused), so a metric made later with the code starts with nothing.
         * The line is kept, not the events changed: GET /events hides them by it, as Lago's
         * default scope hides deleted events, and their transaction ids stay taken, as Lago's
         * unique index keeps deleted events (docs/API.md). */
        if (store_metric_history_end(e->store, cmd->org_id, it->code, e->last_event_id, true) !=
            STORE_OK)
            return COMMAND_STORE_FAILED;
        /* no capture of its open holds could succeed (nothing charges the code), and they
         * would keep their credits reserved until they expired: released and voided, as a
         * subscription's when it ends */
        return wallet_book_void_code_holds(&e->wallets, e->store, cmd, cmd->org_id, it->code);
    }
    case CATALOG_COUPON:
        /* Lago's Coupons::DestroyService terminates the coupon's active applications with it:
         * a customer must not keep a discount whose coupon is gone */
        return store_applied_coupons_end_of_coupon(e->store, cmd->org_id, it->lago_id, cmd->now,
                                                   &ended) == STORE_OK
                   ? COMMAND_OK
                   : COMMAND_STORE_FAILED;
    case CATALOG_ADD_ON: return COMMAND_OK;
    }
    return COMMAND_OK;
}

enum command_result catalog_edit_apply_delete(struct engine *e, struct command *cmd)
{
    struct catalog_item *it = &cmd->item;
    enum store_status s =
        store_catalog_get(store_conn(e->store), cmd->org_id, cmd->as.catalog_delete.kind,
                          cmd->as.catalog_delete.code, it, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? COMMAND_NOT_FOUND : COMMAND_STORE_FAILED;
    enum command_result r =
        it->kind == CATALOG_PLAN ? subscriptions_end_of_plan(e, cmd, it) : COMMAND_OK;
    if (r == COMMAND_OK)
        r = delete_cascade(e, cmd, it);
    if (r != COMMAND_OK)
        return r;
    return store_catalog_delete(e->store, it->id, cmd->now) == STORE_OK ? COMMAND_OK
                                                                        : COMMAND_STORE_FAILED;
}

/* Whether a tax's body makes it one of the organization's default taxes. */
bool catalog_edit_is_default_tax(const char *body)
{
    struct json_object *doc = json_tokener_parse(body), *applied = NULL;
    bool is = doc && json_object_object_get_ex(doc, "applied_to_organization", &applied) &&
              json_object_get_boolean(applied);
    json_object_put(doc);
    return is;
}

/* An organization has at most CATALOG_TAXES_MAX default taxes: every fee without taxes of its
 * own carries them all (an audit found the 33rd kept and not applied). */
static enum command_result check_default_taxes(struct engine *e, struct command *cmd,
                                               const struct catalog_item *tax)
{
    if (!catalog_edit_is_default_tax(tax->body))
        return COMMAND_OK;
    struct catalog_item *items;
    size_t count, others = 0;
    enum command_result r = catalog_items(e, cmd, CATALOG_TAX, &items, &count);
    if (r != COMMAND_OK)
        return r;
    for (size_t i = 0; i < count; i++)
        others += items[i].id != tax->id && catalog_edit_is_default_tax(items[i].body);
    if (others < CATALOG_TAXES_MAX)
        return COMMAND_OK;
    command_set_message(cmd,
                        "an organization has at most %d default taxes (applied_to_organization): "
                        "a fee carries them all",
                        CATALOG_TAXES_MAX);
    return invalid(cmd, "applied_to_organization", "too_many_items");
}
