/*
 * engine/applied_coupons.c: coupons applied to customers: an application made (refused where
 * a coupon of the customer already covers one of its plans or metrics, as Lago's
 * plan_overlapping), terminated, or ended with its customer (applied_coupons_end); and the
 * rule that a coupon in use keeps its terms (applied_coupons_check_update, for the catalog's
 * update of a coupon).
 *
 * Threads: the writer's only.
 */
#include "engine/applied_coupons.h"

#include <json-c/json.h>
#include <string.h>

#include "json/catalog_refs.h"
#include "json/coupon_json.h"

/* ---- applied coupons ------------------------------------------------------------------ */

/* The codes a coupon is limited to under `key` (its body's plan_codes or
 * billable_metric_codes; NULL when none), owned by the caller (json_object_put). */
static struct json_object *coupon_targets(const char *body, const char *key)
{
    struct json_object *doc = body ? json_tokener_parse(body) : NULL, *codes;
    if (doc && json_object_object_get_ex(doc, key, &codes) &&
        json_object_is_type(codes, json_type_array) && json_object_array_length(codes) > 0) {
        struct json_object *kept = json_object_get(codes);
        json_object_put(doc);
        return kept;
    }
    json_object_put(doc);
    return NULL;
}

/* Whether two arrays of codes (either may be NULL) share one. */
static bool share_a_code(struct json_object *codes, struct json_object *others)
{
    for (size_t i = 0; codes && others && i < json_object_array_length(codes); i++)
        for (size_t k = 0; k < json_object_array_length(others); k++)
            if (strcmp(json_object_get_string(json_object_array_get_idx(codes, i)),
                       json_object_get_string(json_object_array_get_idx(others, k))) == 0)
                return true;
    return false;
}

/* Whether one of the plans `plan_codes` charges one of the metrics `metric_codes` (either may
 * be NULL; codes no longer in the catalog charge nothing): sets *charges. */
static enum command_result plans_charge_metrics(struct engine *e, struct command *cmd,
                                                struct json_object *plan_codes,
                                                struct json_object *metric_codes, bool *charges)
{
    struct store_conn *conn = store_conn(e->store);
    *charges = false;
    for (size_t m = 0; plan_codes && metric_codes && m < json_object_array_length(metric_codes);
         m++) {
        struct catalog_item metric, plan;
        enum store_status s =
            store_catalog_get(conn, cmd->org_id, CATALOG_BILLABLE_METRIC,
                              json_object_get_string(json_object_array_get_idx(metric_codes, m)),
                              &metric, cmd->arena);
        if (s == STORE_NOT_FOUND)
            continue;
        if (s != STORE_OK)
            return COMMAND_STORE_FAILED;
        for (size_t p = 0; p < json_object_array_length(plan_codes); p++) {
            s = store_catalog_get(conn, cmd->org_id, CATALOG_PLAN,
                                  json_object_get_string(json_object_array_get_idx(plan_codes, p)),
                                  &plan, cmd->arena);
            if (s == STORE_NOT_FOUND)
                continue;
            int charged =
                s == STORE_OK ? catalog_refs_charges_metric(plan.body, metric.lago_id) : -1;
            if (charged < 0)
                return COMMAND_STORE_FAILED;
            if (charged) {
                *charges = true;
                return COMMAND_OK;
            }
        }
    }
    return COMMAND_OK;
}

/*
 * Lago's plan_overlapping (AppliedCoupons::CreateService#plan_limitation_overlapping?): a
 * coupon limited to plans or to billable metrics is refused (405) next to an active applied
 * coupon of the customer limited to one of its plans or metrics, to a plan that charges one of
 * its metrics, or to a metric one of its plans charges: two limited discounts never stack on
 * the same fees. Found by an audit: only plans were compared, so two coupons on one metric, or
 * one on a metric beside one on a plan that charges it, both applied.
 */
static enum command_result refuse_plan_overlap(struct engine *e, struct command *cmd,
                                               const struct catalog_item *coupon,
                                               int64_t customer_id)
{
    struct json_object *plans = coupon_targets(coupon->body, "plan_codes");
    struct json_object *metrics = coupon_targets(coupon->body, "billable_metric_codes");
    struct store_conn *conn = store_conn(e->store);
    struct store_applied_coupon *active = NULL;
    size_t count = 0;
    int64_t total;
    enum command_result r = COMMAND_OK;
    if ((plans || metrics) &&
        store_applied_coupon_list(conn, cmd->org_id, customer_id, 1, NULL, 0, INT64_MAX, &active,
                                  &count, &total, cmd->arena) != STORE_OK)
        r = COMMAND_STORE_FAILED;
    for (size_t i = 0; r == COMMAND_OK && i < count; i++) {
        /* another application of this very coupon (a reusable one) has its limits too */
        struct catalog_item other = *coupon;
        enum store_status s =
            strcmp(active[i].coupon.coupon_lago_id, coupon->lago_id) == 0
                ? STORE_OK
                : store_catalog_get_by_lago_id(conn, cmd->org_id, CATALOG_COUPON,
                                               active[i].coupon.coupon_lago_id, &other, cmd->arena);
        if (s == STORE_NOT_FOUND)
            continue; /* its coupon was deleted: it ended with it */
        if (s != STORE_OK) {
            r = COMMAND_STORE_FAILED;
            break;
        }
        struct json_object *other_plans = coupon_targets(other.body, "plan_codes");
        struct json_object *other_metrics = coupon_targets(other.body, "billable_metric_codes");
        bool overlap = share_a_code(plans, other_plans) || share_a_code(metrics, other_metrics);
        if (!overlap)
            r = plans_charge_metrics(e, cmd, other_plans, metrics, &overlap);
        if (r == COMMAND_OK && !overlap)
            r = plans_charge_metrics(e, cmd, plans, other_metrics, &overlap);
        if (r == COMMAND_OK && overlap) {
            cmd->not_allowed_code = "plan_overlapping";
            r = COMMAND_NOT_ALLOWED;
        }
        json_object_put(other_plans);
        json_object_put(other_metrics);
    }
    json_object_put(plans);
    json_object_put(metrics);
    return r;
}

/*
 * A coupon applied keeps its terms (Lago's Coupons::UpdateService): the request dropped them
 * from an update (prune_coupon_update) if it was applied when read; one read before its first
 * application is refused as stale, and its retry keeps them. Applications are never removed, so
 * a coupon in use stays so. (This also keeps plan_overlapping true, as it was checked when each
 * application was made: an audit found a PUT that limited an applied coupon to a plan another
 * of the customer's coupons covered.)
 */
enum command_result applied_coupons_check_update(struct engine *e, struct command *cmd,
                                                 const struct catalog_item *current)
{
    bool in_use;
    if (cmd->as.catalog_put.terms_kept)
        return COMMAND_OK;
    if (store_coupon_in_use(store_conn(e->store), cmd->org_id, current->lago_id, &in_use) !=
        STORE_OK)
        return COMMAND_STORE_FAILED;
    return in_use ? COMMAND_STALE : COMMAND_OK;
}

enum command_result applied_coupons_apply_create(struct engine *e, struct command *cmd)
{
    struct applied_coupon *c = &cmd->applied_coupon;
    *c = cmd->as.applied_coupon_create.coupon;
    c->org_id = cmd->org_id;
    c->created_at = cmd->now;
    /* Lago's order (AppliedCoupons::CreateService#check_preconditions): the customer, then the
     * coupon, overlap, reuse, then the currency */
    struct customer customer;
    enum store_status s = store_customer_get(store_conn(e->store), cmd->org_id,
                                             cmd->as.applied_coupon_create.external_customer_id,
                                             &customer, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? not_found(cmd, "customer_not_found") : COMMAND_STORE_FAILED;
    struct catalog_item coupon;
    s = store_catalog_get_by_lago_id(store_conn(e->store), cmd->org_id, CATALOG_COUPON,
                                     c->coupon_lago_id, &coupon, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? not_found(cmd, "coupon_not_found") : COMMAND_STORE_FAILED;
    if (coupon.updated_at != cmd->as.applied_coupon_create.coupon_updated_at)
        return COMMAND_STALE;
    tally_time ended;
    if (coupon_json_ended(coupon.body, cmd->now, &ended)) {
        char text[TIMESTAMP_TEXT_MAX];
        timestamp_format(ended, false, text);
        command_set_message(cmd,
                            "coupon %s is terminated: it expired at %s, and a coupon past its "
                            "expiry stays terminated whatever expiry an update gives it",
                            coupon.code, text);
        return invalid(cmd, "coupon", "coupon_expired");
    }
    enum command_result overlap = refuse_plan_overlap(e, cmd, &coupon, customer.id);
    if (overlap != COMMAND_OK)
        return overlap;
    if (!cmd->as.applied_coupon_create.reusable) {
        int64_t uses;
        if (store_applied_coupon_uses(store_conn(e->store), cmd->org_id, c->coupon_lago_id,
                                      customer.id, &uses) != STORE_OK)
            return COMMAND_STORE_FAILED;
        if (uses > 0)
            return invalid(cmd, "coupon", "coupon_is_not_reusable");
    }
    /*
     * A fixed amount is in the customer's currency, and gives a customer without one its own,
     * as a subscription does. Lago sets it through the customer, so it is checked as
     * POST /customers checks one (found by an audit: "XYZ" was given to a customer, who then
     * could neither subscribe nor change it). A percentage coupon's override gives nothing,
     * but Lago's applied coupon validates it too.
     */
    const char *currency = customer.text[CUSTOMER_CURRENCY];
    struct customer_input as_customer = {0};
    const char *field = NULL, *code = NULL;
    as_customer.has_text[CUSTOMER_CURRENCY] = true;
    as_customer.values.text[CUSTOMER_CURRENCY] = c->amount_currency;
    if (c->type == COUPON_FIXED_AMOUNT && currency && strcmp(currency, c->amount_currency) != 0)
        return invalid(cmd, "currency", "currencies_does_not_match");
    if (c->type == COUPON_FIXED_AMOUNT && !currency) {
        if (!customer_input_validate(&as_customer, &field, &code))
            return invalid(cmd, field, code);
        customer_apply(&customer, &as_customer);
        customer.updated_at = cmd->now;
        if (store_customer_save(e->store, &customer) != STORE_OK)
            return COMMAND_STORE_FAILED;
    }
    if (c->type != COUPON_FIXED_AMOUNT && cmd->as.applied_coupon_create.currency_sent &&
        !customer_input_validate(&as_customer, &field, &code))
        return invalid(cmd, "amount_currency", code);
    c->customer_id = customer.id;
    applied_coupon_start(c);
    return store_applied_coupon_insert(e->store, c) == STORE_OK ? COMMAND_OK : COMMAND_STORE_FAILED;
}

/* Terminates an applied coupon now: DELETE .../applied_coupons/{id} and a customer's deletion. */
enum command_result applied_coupons_end(struct engine *e, struct command *cmd,
                                        struct applied_coupon *c)
{
    c->has_terminated_at = true;
    c->terminated_at = cmd->now;
    return store_applied_coupon_terminate(e->store, c->id, cmd->now) == STORE_OK
               ? COMMAND_OK
               : COMMAND_STORE_FAILED;
}

enum command_result applied_coupons_apply_terminate(struct engine *e, struct command *cmd)
{
    /* the customer first, as Lago's customer routes find it */
    struct customer customer;
    enum store_status s = store_customer_get(store_conn(e->store), cmd->org_id,
                                             cmd->as.applied_coupon_terminate.external_customer_id,
                                             &customer, cmd->arena);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? not_found(cmd, "customer_not_found") : COMMAND_STORE_FAILED;
    struct store_applied_coupon found;
    s = store_applied_coupon_get(store_conn(e->store), cmd->org_id,
                                 cmd->as.applied_coupon_terminate.lago_id, &found, cmd->arena);
    if (s == STORE_ERROR)
        return COMMAND_STORE_FAILED;
    /* one of this customer's, by its id: a deleted customer's applied coupon has the same
     * external id when the id was taken again (an audit found the new customer's route reaching
     * it), and Lago finds it among the live customer's applied coupons only */
    if (s == STORE_NOT_FOUND || found.coupon.customer_id != customer.id)
        return not_found(cmd, "applied_coupon_not_found");
    cmd->applied_coupon = found.coupon;
    /* one already terminated is answered as it is, as Lago's TerminateService leaves it: a
     * retried DELETE whose answer was lost is not told the coupon does not exist */
    if (found.coupon.has_terminated_at)
        return COMMAND_OK;
    enum command_result r = applied_coupons_end(e, cmd, &found.coupon);
    cmd->applied_coupon = found.coupon;
    return r;
}
