/* api/plans: see plans.h. */
#include "api/plans.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/add_ons.h"
#include "api/api.h"
#include "api/charges.h"
#include "api/errors.h"
#include "json/charge_json.h"
#include "json/json_build.h"
#include "json/plan_json.h"
#include "core/currency.h"
#include "core/money.h"
#include "core/subscription.h"
#include "sys/entropy.h"

static bool known_interval(const char *s)
{
    enum period_interval ignored;
    return plan_json_interval_parse(s, &ignored);
}

/* The intervals bill_charges_monthly is for (Lago's billable_monthly?). */
static bool is_long_interval(const char *s)
{
    return strcmp(s, "yearly") == 0 || strcmp(s, "semiannual") == 0;
}

static bool is_empty_object(struct json_object *v)
{
    return json_object_is_type(v, json_type_object) && json_object_object_length(v) == 0;
}

/* keep_id: the commitment's lago_id is the stored one's (an update's, merge_plan) or the
 * parent plan's (plan_overrides); else, or without one, it gets its own. */
static bool parse_commitment(struct request *req, struct json_object *obj, bool keep_id,
                             struct jsonw *w, struct catalog_definition *def,
                             struct json_in_error *err)
{
    struct json_object *mc;
    /* none, null or {} is none (an update's null kept the stored one, and {} removed it, in
     * merge_plan), stored without the member: Lago's V1::PlanSerializer writes it only for a
     * commitment (an audit found null answered) */
    if (!json_object_object_get_ex(obj, "minimum_commitment", &mc) || !mc || is_empty_object(mc))
        return true;
    if (!json_object_is_type(mc, json_type_object))
        return json_in_refuse(err, "minimum_commitment", "invalid_type");
    jsonw_key(w, "minimum_commitment");
    int64_t cents;
    const char *display = NULL;
    /* at least 1, as Lago's Commitment validates it (greater_than: 0, value_is_out_of_range in
     * its locale; an audit found 0 taken) */
    enum json_in_result r = json_in_int(mc, "amount_cents", 1, INT64_MAX - 1, &cents, err);
    if (r == JSON_IN_INVALID)
        return false;
    if (r != JSON_IN_VALUE)
        return json_in_refuse(err, "minimum_commitment", "value_is_mandatory");
    if (json_in_string(mc, "invoice_display_name", CATALOG_NAME_MAX, &req->arena, &display, err) ==
        JSON_IN_INVALID)
        return false;
    const char *kept = NULL;
    char id[UUID_TEXT];
    if (keep_id &&
        json_in_string(mc, "lago_id", UUID_TEXT - 1, &req->arena, &kept, err) == JSON_IN_VALUE &&
        strlen(kept) == UUID_TEXT - 1)
        snprintf(id, sizeof id, "%s", kept);
    else if (!entropy_uuid(id))
        return json_in_refuse(err, "minimum_commitment", "invalid_type");
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", id);
    jsonw_kv_int(w, "amount_cents", cents);
    jsonw_kv_cstr(w, "invoice_display_name", display);
    bool ok = catalog_parse_tax_codes(req, mc, w, def, err);
    jsonw_object_end(w);
    return ok;
}

/* The id a sent charge names it by: lago_id, or id as Lago's clients send it; NULL if none. */
static const char *charge_named_id(struct json_object *charge)
{
    struct json_object *id = NULL;
    if (!json_object_object_get_ex(charge, "lago_id", &id) || !id)
        json_object_object_get_ex(charge, "id", &id);
    return json_object_is_type(id, json_type_string) ? json_object_get_string(id) : NULL;
}

/* Whether two charges of the list name the same one: their debits and usage would be one. */
static bool names_a_charge_twice(struct json_object *list)
{
    size_t n = json_object_array_length(list);
    for (size_t i = 0; i < n; i++) {
        const char *a = charge_named_id(json_object_array_get_idx(list, i));
        for (size_t k = 0; a && k < i; k++) {
            const char *b = charge_named_id(json_object_array_get_idx(list, k));
            if (b && strcmp(a, b) == 0)
                return true;
        }
    }
    return false;
}

/* The minor-unit exponent of the plan's amount_currency (checked before the charges), or -1. */
static int32_t currency_exponent(struct json_object *obj)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, "amount_currency", &v) ||
        !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) != 3)
        return -1;
    char code[4] = "";
    for (size_t i = 0; i < 3; i++)
        code[i] = (char)toupper((unsigned char)json_object_get_string(v)[i]);
    const struct currency *cur = currency_find(code, 3);
    return cur ? cur->exponent : -1;
}

static bool parse_charges(struct request *req, struct json_object *obj, struct jsonw *w,
                          struct catalog_definition *def, struct json_in_error *err)
{
    struct json_object *list;
    jsonw_key(w, "charges");
    jsonw_array_begin(w);
    bool ok = true;
    if (json_object_object_get_ex(obj, "charges", &list) && list) {
        if (!json_object_is_type(list, json_type_array))
            return json_in_refuse(err, "charges", "invalid_type");
        if (json_object_array_length(list) > CHARGES_PER_PLAN_MAX)
            return json_in_refuse(err, "charges", "too_many_items");
        if (names_a_charge_twice(list))
            return json_in_refuse(err, "charges", "value_already_exist");
        /* (an update's charges that name no stored charge lost their ids in merge_charges) */
        int32_t exponent = currency_exponent(obj);
        struct store_reader *r = api_reader_acquire(req->api);
        for (size_t i = 0; ok && i < json_object_array_length(list); i++)
            ok = charges_parse(req, store_reader_conn(r), json_object_array_get_idx(list, i),
                               exponent, w, def, err);
        api_reader_release(req->api, r);
    }
    jsonw_array_end(w);
    return ok;
}

/* Lago's plan fields of features not served yet (progressive billing, fixed charges) */
static const char *const unserved[] = {"usage_thresholds", "fixed_charges", NULL};

static bool parse_fields(struct request *req, struct json_object *obj, struct jsonw *w,
                         struct json_in_error *err)
{
    const char *name = NULL, *display = NULL, *description = NULL, *interval = NULL;
    bool pay_in_advance = false, monthly = false, cascade = false;
    money_t trial = money_from_int(0);
    enum json_in_result has_trial;
    if (!json_in_refuse_unserved(obj, unserved, err) ||
        !json_in_required_string(obj, "name", CATALOG_NAME_MAX, &req->arena, &name, err) ||
        json_in_string(obj, "invoice_display_name", CATALOG_NAME_MAX, &req->arena, &display, err) ==
            JSON_IN_INVALID ||
        json_in_string(obj, "description", CATALOG_DESCRIPTION_MAX, &req->arena, &description,
                       err) == JSON_IN_INVALID ||
        !json_in_required_string(obj, "interval", 16, &req->arena, &interval, err) ||
        json_in_bool(obj, "pay_in_advance", &pay_in_advance, err) == JSON_IN_INVALID ||
        json_in_bool(obj, "bill_charges_monthly", &monthly, err) == JSON_IN_INVALID ||
        (has_trial = json_in_decimal(obj, "trial_period", &trial, err)) == JSON_IN_INVALID ||
        json_in_bool(obj, "cascade_updates", &cascade, err) == JSON_IN_INVALID)
        return false;
    /* Lago's children plans take the parent's edits with it; a subscription's own plan
     * (plan_overrides) keeps its prices here, so a 200 would say done what was not (an
     * audit's): refused, false or absent passes */
    if (cascade) {
        err->message = "cascade_updates is not supported: a subscription with plan_overrides "
                       "keeps its own plan; send its new prices in plan_overrides";
        return json_in_refuse(err, "cascade_updates", "not_supported");
    }
    if (!known_interval(interval))
        return json_in_refuse(err, "interval", "value_is_invalid");
    if (money_sign(trial) < 0 || money_cmp(trial, money_from_int(PLAN_TRIAL_PERIOD_MAX_DAYS)) > 0)
        return json_in_refuse(err, "trial_period", "value_is_out_of_range");
    bool long_interval = is_long_interval(interval);
    if (monthly && !long_interval)
        return json_in_refuse(err, "bill_charges_monthly", "only_with_yearly_or_semiannual");
    char trial_text[MONEY_TEXT_MAX];
    money_format_fraction(money_normalize(trial), 1, trial_text, sizeof trial_text);
    jsonw_kv_cstr(w, "name", name);
    jsonw_kv_cstr(w, "invoice_display_name", display);
    jsonw_kv_cstr(w, "description", description);
    jsonw_kv_cstr(w, "interval", interval);
    jsonw_kv_bool(w, "pay_in_advance", pay_in_advance);
    jsonw_key(w, "bill_charges_monthly");
    if (long_interval)
        jsonw_bool(w, monthly);
    else
        jsonw_null(w);
    /* days, a number as Lago answers it; null when not sent, as Lago stores it (no default:
     * an audit found 0.0, which says a trial of no days was set) */
    jsonw_key(w, "trial_period");
    if (has_trial == JSON_IN_VALUE)
        jsonw_raw(w, trial_text);
    else
        jsonw_null(w);
    return true;
}

/* keep_commitment_id as parse_commitment's keep_id */
static bool parse_plan_body(struct request *req, struct json_object *obj, bool keep_commitment_id,
                            struct catalog_definition *out, struct json_in_error *err)
{
    if (!json_in_required_string(obj, "code", CATALOG_CODE_MAX, &req->arena, &out->code, err))
        return false;
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    bool ok = parse_fields(req, obj, &w, err) &&
              add_ons_parse_price(req, obj, "amount_cents", "amount_currency", true, &w, err) &&
              catalog_parse_tax_codes(req, obj, &w, out, err) &&
              parse_commitment(req, obj, keep_commitment_id, &w, out, err) &&
              parse_charges(req, obj, &w, out, err);
    jsonw_object_end(&w);
    return catalog_finish_body(req, ok, &b, out, err);
}

/* An update keeps the stored commitment's id (merge_plan laid the update over it); a new plan's
 * commitment is new. */
static bool parse_plan(struct request *req, struct json_object *obj, struct catalog_definition *out,
                       struct json_in_error *err)
{
    return parse_plan_body(req, obj, strcmp(req->method, "PUT") == 0, out, err);
}

/* Lago's MinimumCommitmentObject: what the plan stored, with the plan's code, interval and
 * dates (the commitment is made and changed with it), and its taxes as full objects, as the
 * plan's and its charges' are (Lago answers those, not tax_codes; an audit found them left
 * out). conn and a as render_plan's. */
static void render_commitment(struct jsonw *w, struct json_object *stored,
                              const struct catalog_item *item, struct json_object *plan,
                              struct store_conn *conn, struct arena *a)
{
    struct json_object *interval = NULL;
    json_object_object_get_ex(plan, "interval", &interval);
    jsonw_object_begin(w);
    json_object_object_foreach(stored, key, value)
    {
        jsonw_key(w, key);
        jsonw_raw(w, json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN));
    }
    if (!json_object_object_get_ex(stored, "lago_id", NULL))
        jsonw_kv_null(w, "lago_id"); /* stored before commitments had their own id */
    jsonw_kv_cstr(w, "plan_code", item->code);
    jsonw_kv_cstr(w, "interval", interval ? json_object_get_string(interval) : NULL);
    catalog_render_taxes(w, stored, item->org_id, conn, a);
    jsonw_key(w, "created_at");
    jsonw_time(w, item->created_at, false);
    jsonw_key(w, "updated_at");
    jsonw_time(w, item->updated_at, false);
    jsonw_object_end(w);
}

/*
 * The members Lago's plan answer always has, for features Tally does not serve (progressive
 * billing, fixed charges, entitlements, plan children), as Lago answers a plan without them:
 * a client reads them unconditionally (`plan.usage_thresholds.length`; an audit found them
 * missing). Lago's V1::PlanSerializer writes the three counts as the constant 0.
 */
static void render_unserved(struct jsonw *w)
{
    jsonw_kv_raw(w, "usage_thresholds", "[]");
    jsonw_kv_raw(w, "fixed_charges", "[]");
    jsonw_kv_raw(w, "entitlements", "[]");
    jsonw_kv_null(w, "bill_fixed_charges_monthly");
    jsonw_kv_int(w, "customers_count", 0);
    jsonw_kv_int(w, "active_subscriptions_count", 0);
    jsonw_kv_int(w, "draft_invoices_count", 0);
    jsonw_kv_null(w, "parent_id");
}

static void render_plan(struct jsonw *w, const struct catalog_item *item, struct store_conn *conn,
                        struct arena *a, tally_time now)
{
    (void)now;
    struct json_object *body = catalog_parse_body(item->body);
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", item->lago_id);
    jsonw_kv_cstr(w, "code", item->code);
    json_object_object_foreach(body, key, value)
    {
        if (strcmp(key, "minimum_commitment") == 0) {
            if (value) { /* a plan stored with null has none: no member, as Lago's */
                jsonw_key(w, key);
                render_commitment(w, value, item, body, conn, a);
            }
            continue;
        }
        jsonw_key(w, key);
        if (strcmp(key, "charges") != 0) {
            jsonw_raw(w, json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN));
            continue;
        }
        jsonw_array_begin(w);
        for (size_t i = 0; i < json_object_array_length(value); i++)
            charges_render(w, json_object_array_get_idx(value, i), item->org_id, item->created_at,
                           conn, a);
        jsonw_array_end(w);
    }
    catalog_render_taxes(w, body, item->org_id, conn, a);
    render_unserved(w);
    jsonw_key(w, "created_at");
    jsonw_time(w, item->created_at, false);
    jsonw_key(w, "updated_at");
    jsonw_time(w, item->updated_at, false);
    jsonw_object_end(w);
    json_object_put(body);
}

/* The stored charge a sent one names by lago_id (or by id, as Lago's clients do), or NULL. */
static struct json_object *named_charge(struct json_object *stored, struct json_object *sent)
{
    if (!json_object_is_type(stored, json_type_array) ||
        !json_object_is_type(sent, json_type_object))
        return NULL;
    const char *id = charge_named_id(sent);
    for (size_t i = 0; id && i < json_object_array_length(stored); i++) {
        struct json_object *c = json_object_array_get_idx(stored, i), *lago_id;
        if (json_object_object_get_ex(c, "lago_id", &lago_id) &&
            strcmp(json_object_get_string(lago_id), id) == 0)
            return c;
    }
    return NULL;
}

/* The charges sent, each one that names a stored charge laid over a copy of it. */
static bool merge_charges(struct json_object *plan, struct json_object *stored,
                          struct json_object *sent)
{
    struct json_object *list = json_object_new_array();
    struct json_build b;
    json_build_init(&b, plan);
    json_build_take(&b, "charges", list); /* held by the plan from here on */
    if (json_build_failed(&b))
        return false;
    for (size_t i = 0; i < json_object_array_length(sent); i++) {
        struct json_object *given = json_object_array_get_idx(sent, i);
        struct json_object *base = named_charge(stored, given), *item = NULL;
        if (!json_object_is_type(given, json_type_object)) {
            item = json_object_get(given); /* refused by the parse */
        } else if (!base) {
            /* a new charge: an id the plan does not have is not kept (a charge removed
             * earlier would take its debits back) */
            if (json_object_deep_copy(given, &item, NULL) != 0)
                return false;
            json_object_object_del(item, "id");
            json_object_object_del(item, "lago_id");
        } else if (json_object_deep_copy(base, &item, NULL) != 0 || !json_in_merge(item, given)) {
            json_object_put(item);
            return false;
        }
        if (json_object_array_add(list, item) != 0) {
            json_object_put(item);
            return false;
        }
    }
    return true;
}

/*
 * A new plan's charges are new: the ids they are sent with are not kept, as Lago's
 * Plans::CreateService gives each its own (an isolation audit found a plan taking another
 * organization's charge id, or any 36 bytes, as its charge's).
 */
static bool prepare_plan_create(struct request *req, struct json_object *sent)
{
    (void)req;
    struct json_object *charges;
    if (!json_object_object_get_ex(sent, "charges", &charges) ||
        !json_object_is_type(charges, json_type_array))
        return true;          /* none, or not a list: the parse judges it */
    json_object_get(charges); /* merge_charges replaces it in the plan */
    bool ok = merge_charges(sent, NULL, charges);
    json_object_put(charges);
    return ok;
}

/* A commitment sent over a stored one keeps its id and what it does not send (Lago's
 * Commitments::UpdateService changes the amount, name and taxes given); a new one takes no id
 * it is sent with (parse_commitment gives it its own). */
static bool merge_commitment(struct json_object *plan, struct json_object *stored,
                             struct json_object *sent)
{
    struct json_object *id, *item = NULL;
    if (!json_object_is_type(sent, json_type_object))
        return true; /* one to refuse: as sent */
    if (!json_object_is_type(stored, json_type_object) ||
        !json_object_object_get_ex(stored, "lago_id", &id)) {
        struct json_build in_plan;
        if (json_object_deep_copy(sent, &item, NULL) != 0)
            return false;
        json_object_object_del(item, "lago_id");
        json_build_init(&in_plan, plan);
        json_build_take(&in_plan, "minimum_commitment", item);
        return !json_build_failed(&in_plan);
    }
    struct json_build in_item, in_plan;
    if (json_object_deep_copy(stored, &item, NULL) != 0 || !json_in_merge(item, sent)) {
        json_object_put(item);
        return false;
    }
    json_build_init(&in_item, item);
    json_build_share(&in_item, "lago_id", id);
    if (json_build_failed(&in_item)) {
        json_object_put(item);
        return false;
    }
    json_build_init(&in_plan, plan);
    json_build_take(&in_plan, "minimum_commitment", item);
    return !json_build_failed(&in_plan);
}

/*
 * Takes out of a stored plan's charges those whose metric was deleted since: the deletion took
 * them (docs/API.md: the plan no longer shows them, usage no longer prices them), as Lago's
 * BillableMetrics::DestroyService discards them. Before an update or a subscription's
 * plan_overrides is laid over it, so that one not sending the charges does not carry them
 * back (an audit: every such update refused 404 billable_metric_not_found), and one naming a
 * taken charge by its id names nothing, as in Lago: a new charge, refused 404 if of the
 * deleted metric, else made from what it sends alone (a second audit: a charge sent by the
 * taken one's id with a new metric kept its lago_id and its taxes). A failed read is not a
 * deletion: the charge stays, and the parse reads it again. False only if memory ran out.
 */
static bool drop_taken_charges(struct request *req, struct json_object *plan)
{
    struct json_object *charges = NULL, *kept;
    json_object_object_get_ex(plan, "charges", &charges);
    if (!json_object_is_type(charges, json_type_array))
        return true; /* none, or not a list: the parse judges it */
    if (!(kept = json_object_new_array()))
        return false;
    struct store_reader *r = api_reader_acquire(req->api);
    bool ok = true;
    for (size_t i = 0; ok && i < json_object_array_length(charges); i++) {
        struct json_object *charge = json_object_array_get_idx(charges, i), *metric_id;
        struct catalog_item metric;
        bool taken =
            json_object_object_get_ex(charge, "billable_metric_id", &metric_id) &&
            json_object_is_type(metric_id, json_type_string) &&
            store_catalog_get_by_lago_id(store_reader_conn(r), req->org_id, CATALOG_BILLABLE_METRIC,
                                         json_object_get_string(metric_id), &metric,
                                         &req->arena) == STORE_NOT_FOUND;
        if (!taken)
            ok = json_object_array_add(kept, json_object_get(charge)) == 0;
    }
    api_reader_release(req->api, r);
    if (!ok) {
        json_object_put(kept);
        return false;
    }
    struct json_build b;
    json_build_init(&b, plan);
    json_build_take(&b, "charges", kept);
    return !json_build_failed(&b);
}

/*
 * A charge named by id keeps what the update does not send (its metric, model, flags,
 * properties, filters, taxes), as Lago's Charges::UpdateService does for filters and
 * flags; Tally keeps properties too (see docs/API.md). Charges left out of the list go.
 */
static bool merge_plan(struct request *req, struct json_object *stored, struct json_object *sent)
{
    if (!drop_taken_charges(req, stored))
        return false;
    struct json_object *before = NULL, *charges, *commitment = NULL, *sent_commitment;
    if (json_object_object_get_ex(stored, "charges", &before))
        json_object_get(before); /* the merge below replaces it in the plan */
    if (json_object_object_get_ex(stored, "minimum_commitment", &commitment))
        json_object_get(commitment);
    bool ok = json_in_merge(stored, sent);
    /* bill_charges_monthly not sent: cleared when the interval is now neither yearly nor
     * semiannual, as Lago's Plans::UpdateService#bill_charges_monthly? does, instead of the
     * stored flag refusing the interval change (an audit's 422 only_with_yearly_or_semiannual
     * for a flag the client never sent); one sent true with such an interval is still refused */
    struct json_object *interval = NULL;
    if (ok && !json_object_object_get_ex(sent, "bill_charges_monthly", NULL) &&
        json_object_object_get_ex(stored, "interval", &interval) &&
        json_object_is_type(interval, json_type_string) &&
        !is_long_interval(json_object_get_string(interval)))
        json_object_object_del(stored, "bill_charges_monthly");
    if (ok && json_object_object_get_ex(sent, "charges", &charges) &&
        json_object_is_type(charges, json_type_array))
        ok = merge_charges(stored, before, charges);
    /* charges: null is no charges sent, as Lago reads it (only an array replaces them; []
     * removes them all): a client writing its unset fields as null renamed a plan and took
     * every charge, and the period's usage, with it (an audit's) */
    if (ok && json_object_object_get_ex(sent, "charges", &charges) && !charges && before) {
        struct json_build b;
        json_build_init(&b, stored);
        json_build_share(&b, "charges", before);
        ok = !json_build_failed(&b);
    }
    /* minimum_commitment: null is none sent (kept), as Lago's Plans::UpdateService reads it
     * (`if params[:minimum_commitment]`), and {} removes it (`destroy! if params.blank?`): an
     * audit found them the other way round, a client writing unset fields as null losing it */
    if (ok && json_object_object_get_ex(sent, "minimum_commitment", &sent_commitment)) {
        struct json_build b;
        json_build_init(&b, stored);
        if (!sent_commitment && commitment)
            json_build_share(&b, "minimum_commitment", commitment);
        else if (!sent_commitment || is_empty_object(sent_commitment))
            json_object_object_del(stored, "minimum_commitment");
        else
            ok = merge_commitment(stored, commitment, sent_commitment);
        ok = ok && !json_build_failed(&b);
    }
    json_object_put(before);
    json_object_put(commitment);
    return ok;
}

/*
 * What an update may not change while any subscription to the plan is live (pending or active,
 * those on a plan of their own made from it, plan_overrides, included):
 *   - the plan's interval, bill_charges_monthly and amount_currency: live subscriptions bill on
 *     its interval and in its currency (their periods and invoices would silently change
 *     meaning); and bill_charges_monthly makes their charges' periods months or years: wallets
 *     have paid each charges' period as it went, and a year's debits cannot be split into
 *     months' (or months' joined into a year's) without paying some usage twice or not at all;
 *   - its code and pay_in_advance, and a charge's model, metric, pay_in_advance, prorated,
 *     invoiceable, min_amount_cents and regroup_paid_fees: Lago's Plans::UpdateService and
 *     Charges::UpdateService pass these over on a plan attached_to_subscriptions? and answer
 *     200; applied, a live subscription's charge changed model or metric under its lago_id and
 *     its period was priced again by it, and a new code made the plan vanish under its old one
 *     (an audit's). Refused rather than passed over, as the interval is: a 200 would say done
 *     what was not.
 * A field sent with its value as it is passes, so a client sending its whole plan again still
 * changes its prices. Prices (properties, amount_cents), charges added or removed, names and
 * taxes change: they apply from the edit on. The check runs on the HTTP thread; a subscription
 * created in the instant between it and the write is the one case it can miss.
 */
static bool check_plan_update(struct request *req, const struct catalog_item *existing,
                              const struct catalog_definition *updated)
{
    struct plan_json_frozen change = {0};
    if (strcmp(existing->code, updated->code) != 0)
        change = (struct plan_json_frozen){.field = "code",
                                           .why = "clients subscribe to it and read it by it"};
    else if (!plan_json_frozen_change(existing->body, updated->body, false, &change))
        return true; /* unreadable terms are the parser's to refuse */
    if (!change.field)
        return true;
    tally_time now;
    if (!api_org_now(req, &now))
        return false;
    struct store_reader *r = api_reader_acquire(req->api);
    int64_t live = 0;
    enum store_status s = store_plan_live_subscriptions(store_reader_conn(r), req->org_id,
                                                        existing->lago_id, now, &live);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        api_error_store_read(req);
        return false;
    }
    if (live == 0)
        return true;
    const char *message =
        change.charge[0]
            ? arena_printf(&req->arena,
                           "charge %s: its %s cannot change while the plan has live "
                           "subscriptions (%s; Lago passes such a change over): add a charge in "
                           "its place, or make another plan",
                           change.charge, change.field, change.why)
            : arena_printf(&req->arena,
                           "the plan's %s cannot change while the plan has live subscriptions "
                           "(%s; Lago passes such a change over): make another plan, or end "
                           "them first",
                           change.field, change.why);
    api_error_validation_message(req, change.field, "plan_has_subscriptions", message);
    return false;
}

/*
 * A plan any subscription is on (of any status, not one on a plan of its own) keeps its
 * trial_period, as Lago's Plans::UpdateService ignores it on a plan attached_to_subscriptions?:
 * their trial_ended_at is read from it, and an edit moved an ended trial or made it vanish (an
 * audit). Ignored rather than refused, as Lago does; the writer checks again (terms_kept).
 */
static bool prune_plan_update(struct request *req, const struct catalog_item *existing,
                              struct json_object *sent, bool *pruned)
{
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s =
        store_plan_attached(store_reader_conn(r), req->org_id, existing->lago_id, pruned);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        api_error_store_read(req);
        return false;
    }
    if (*pruned)
        json_object_object_del(sent, "trial_period");
    return true;
}

const struct catalog_resource plans_resource = {
    .kind = CATALOG_PLAN,
    .parse = parse_plan,
    .merge = merge_plan,
    .prepare_create = prepare_plan_create,
    .prune_update = prune_plan_update,
    .check_update = check_plan_update,
    .render = render_plan,
};

bool plans_terms(const struct catalog_item *plan, struct plan_terms *out)
{
    return plan_json_terms(plan->body, out);
}

/* A charge's fields Lago's Charges::OverrideService takes from plan_overrides (it copies the
 * parent's charge for the rest); id and lago_id name the charge. */
static const char *const overridable_charge_fields[] = {
    "properties", "min_amount_cents", "invoice_display_name", "filters", "tax_codes", NULL,
};

static const char *const overridable[] = {
    "amount_cents", "amount_currency",
    "name",         "invoice_display_name",
    "description",  "trial_period",
    "tax_codes",    "minimum_commitment",
    "charges",      NULL,
};

static bool is_listed(const char *const *list, const char *key)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

/* Whether `sent` is the charge's own value of `key` (`absent`'s text when it has none). */
static bool same_member(struct json_object *charge, const char *key, const char *absent,
                        struct json_object *sent)
{
    struct json_object *v;
    const char *stored = json_object_object_get_ex(charge, key, &v)
                             ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
                             : absent;
    return strcmp(stored, json_object_to_json_string_ext(sent, JSON_C_TO_STRING_PLAIN)) == 0;
}

/* Refuses a plan field plan_overrides does not take (the message names it). */
static bool refuse_plan_field(struct request *req, const char *key, struct json_in_error *err)
{
    err->message = arena_printf(&req->arena,
                                "%s cannot be overridden (plan_overrides takes amount_cents, "
                                "amount_currency, name, invoice_display_name, description, "
                                "trial_period, tax_codes, minimum_commitment and charges)",
                                key);
    return json_in_refuse(err, "plan_overrides", "not_overridable");
}

/*
 * Refuses an override charge's value of a field Lago's Charges::OverrideService does not take
 * (it keeps the parent's): applied, a subscription's charge turned to pay in advance, and a live
 * one's wallet paid its period's peak (an audit's); passed over, a 200 would say done what was
 * not (another audit: a charge_model dropped, its package's properties priced per unit by the
 * old model). The message names the field.
 */
static bool refuse_charge_field(struct request *req, struct json_object *charge, const char *key,
                                struct json_in_error *err)
{
    struct json_object *id = NULL;
    json_object_object_get_ex(charge, "lago_id", &id);
    err->message = arena_printf(&req->arena,
                                "charge %s: its %s cannot be overridden (plan_overrides takes a "
                                "charge's properties, min_amount_cents, invoice_display_name, "
                                "filters and tax_codes, as Lago's; send the charge's own value, "
                                "or leave it out)",
                                json_object_get_string(id), key);
    return json_in_refuse(err, "plan_overrides", "not_overridable");
}

/*
 * An override's properties null or {} are refused as the charge's model refuses them (a
 * standard charge's {} is invalid_amount; a dynamic one takes {}): Lago's
 * Charges::OverrideService sets them as sent, where a new or updated charge gets its model's
 * defaults (charges_parse). True if they pass.
 */
static bool check_override_properties(struct request *req, struct json_object *target,
                                      struct json_object *properties, struct json_in_error *err)
{
    struct json_object *model;
    enum charge_model_kind kind;
    if ((properties && (!json_object_is_type(properties, json_type_object) ||
                        json_object_object_length(properties) > 0)) ||
        !json_object_object_get_ex(target, "charge_model", &model) ||
        !charge_model_kind_parse(json_object_get_string(model),
                                 (size_t)json_object_get_string_len(model), &kind))
        return true; /* anything else is the parse's to judge */
    struct buf b;
    struct jsonw w;
    struct charge_model_properties p;
    buf_init(&b);
    jsonw_init(&w, &b);
    bool ok = charge_json_properties(&req->arena, properties, kind, &p, &w, err);
    buf_free(&b);
    return ok;
}

/* Lays each override charge (named by id) over the stored charge with that lago_id: the fields
 * Lago's Charges::OverrideService takes; another of the charge's sent with a value other than
 * its own is refused (the same passes, so a charge sent back as read does); the rest is not
 * read, as Lago's permitted parameters. */
static bool override_charges(struct request *req, struct json_object *stored,
                             struct json_object *given, struct json_in_error *err)
{
    if (!given)
        return true; /* null: no charge overridden, as charges null on a plan update */
    if (!json_object_is_type(given, json_type_array)) {
        err->message = "plan_overrides.charges must be a list of charges, each named by its id";
        return json_in_refuse(err, "plan_overrides", "invalid_type");
    }
    for (size_t i = 0; i < json_object_array_length(given); i++) {
        struct json_object *o = json_object_array_get_idx(given, i), *id, *target = NULL;
        /* a null id names no charge: json-c reads it as a NULL string */
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "id", &id) ||
            json_object_is_type(id, json_type_null))
            return json_in_refuse(err, "plan_overrides", "charge_id_is_mandatory");
        for (size_t k = 0; stored && k < json_object_array_length(stored) && !target; k++) {
            struct json_object *c = json_object_array_get_idx(stored, k), *lago_id;
            if (json_object_object_get_ex(c, "lago_id", &lago_id) &&
                strcmp(json_object_get_string(lago_id), json_object_get_string(id)) == 0)
                target = c;
        }
        if (!target)
            return json_in_refuse(err, "plan_overrides", "charge_not_found");
        /* what names the charge stays the stored charge's: a lago_id sent over it re-made the
         * charge under another id (its debits given back, nothing taken again: an audit), and
         * a null one crashed tallyd (a NULL string compared) */
        struct json_object *properties;
        if (json_object_object_get_ex(o, "properties", &properties) &&
            !check_override_properties(req, target, properties, err))
            return false;
        struct json_build b;
        json_build_init(&b, target);
        json_object_object_foreach(o, key, value)
        {
            const char *absent;
            if (is_listed(overridable_charge_fields, key))
                json_build_share(&b, key, value);
            else if (plan_json_charge_field_frozen(key, &absent) &&
                     !same_member(target, key, absent, value))
                return refuse_charge_field(req, target, key, err);
        }
        if (json_build_failed(&b))
            return json_in_refuse(err, "plan_overrides", "out_of_memory");
    }
    return true;
}

/*
 * Lays an override's minimum_commitment over the plan's: null is none sent (the plan's stays),
 * {} removes it, as on a plan update; one sent replaces it whole (Lago's Plans::OverrideService
 * makes a new Commitment of what is sent) under the plan's commitment's lago_id, as the
 * subscription's own plan and charges keep the plan's (an audit found a new id at each
 * override), or a new one if the plan has none.
 */
static bool override_commitment(struct json_object *plan, struct json_object *sent,
                                struct json_in_error *err)
{
    struct json_object *stored = NULL, *id = NULL, *item = NULL;
    if (!sent)
        return true;
    struct json_build b;
    json_build_init(&b, plan);
    if (!json_object_is_type(sent, json_type_object)) {
        json_build_share(&b, "minimum_commitment", sent); /* refused by the parse */
    } else {
        if (json_object_object_get_ex(plan, "minimum_commitment", &stored) &&
            json_object_is_type(stored, json_type_object))
            json_object_object_get_ex(stored, "lago_id", &id);
        /* one that names only an id is no commitment to make (Lago's new Commitment without
         * an amount is invalid), not {}, which removes it: an audit found it removed */
        if (json_object_object_length(sent) > 0 &&
            json_object_object_length(sent) ==
                (json_object_object_get_ex(sent, "lago_id", NULL) ? 1 : 0))
            return json_in_refuse(err, "minimum_commitment", "value_is_mandatory");
        if (json_object_deep_copy(sent, &item, NULL) != 0)
            return json_in_refuse(err, "plan_overrides", "out_of_memory");
        json_object_object_del(item, "lago_id");
        if (id && json_object_object_length(item) > 0) {
            struct json_build in_item;
            json_build_init(&in_item, item);
            json_build_share(&in_item, "lago_id", id);
            if (json_build_failed(&in_item)) {
                json_object_put(item);
                return json_in_refuse(err, "plan_overrides", "out_of_memory");
            }
        }
        json_build_take(&b, "minimum_commitment", item);
    }
    return !json_build_failed(&b) || json_in_refuse(err, "plan_overrides", "out_of_memory");
}

bool plans_apply_overrides(struct request *req, const struct catalog_item *plan,
                           struct json_object *overrides, const char **body,
                           struct json_in_error *err)
{
    if (!json_object_is_type(overrides, json_type_object))
        return json_in_refuse(err, "plan_overrides", "invalid_type");
    struct json_object *merged = catalog_parse_body(plan->body), *charges = NULL;
    if (!merged)
        return json_in_refuse(err, "plan_overrides", "store_corrupt");
    struct json_build b;
    json_build_init(&b, merged);
    json_build_string(&b, "code", plan->code);
    if (json_build_failed(&b) || !drop_taken_charges(req, merged)) {
        json_object_put(merged);
        return json_in_refuse(err, "plan_overrides", "out_of_memory");
    }
    json_object_object_get_ex(merged, "charges", &charges);
    /* Lago takes these in overrides too: null or [] passes and a set one is not_supported, as
     * at the top level (an audit found [] refused not_overridable) */
    bool ok = json_in_refuse_unserved(overrides, unserved, err);
    json_object_object_foreach(overrides, key, value)
    {
        if (!ok)
            break;
        if (is_listed(unserved, key))
            continue;
        if (!is_listed(overridable, key))
            ok = refuse_plan_field(req, key, err);
        else if (strcmp(key, "charges") == 0)
            ok = override_charges(req, charges, value, err);
        else if (strcmp(key, "minimum_commitment") == 0)
            ok = override_commitment(merged, value, err);
        else
            json_build_share(&b, key, value);
    }
    if (ok && json_build_failed(&b))
        ok = json_in_refuse(err, "plan_overrides", "out_of_memory");
    struct catalog_definition def = {0};
    if (ok && parse_plan_body(req, merged, true, &def, err)) {
        *body = def.body;
        /* the plan's own references were checked when it was saved; new tax codes now (404
         * tax_not_found, as elsewhere: subscriptions' read_context) */
        struct store_reader *r = api_reader_acquire(req->api);
        for (size_t i = 0; ok && i < def.ref_count; i++) {
            struct catalog_item found;
            if (def.refs[i].kind == CATALOG_TAX &&
                store_catalog_get(store_reader_conn(r), req->org_id, CATALOG_TAX, def.refs[i].code,
                                  &found, &req->arena) != STORE_OK)
                ok = json_in_refuse(err, "plan_overrides", "tax_not_found");
        }
        api_reader_release(req->api, r);
    } else if (ok) {
        ok = false; /* parse_plan's refusal stands, under its own field */
    }
    json_object_put(merged);
    return ok;
}
