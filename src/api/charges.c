/* api/charges: see charges.h. */
#include "api/charges.h"

#include <json-c/json.h>
#include <string.h>

#include "core/billable_metric.h"
#include "json/charge_json.h"
#include "json/metric_json.h"
#include "store/store.h"
#include "sys/entropy.h"

#define ALL_FILTER_VALUES "__ALL_FILTER_VALUES__" /* Lago's wildcard in a charge filter */

/* ---- filters ------------------------------------------------------------------------------ */

/* A charge filter's values: each key a filter of the metric, each value one of its values, or
 * the wildcard alone. */
static bool parse_filter_values(struct request *req, struct json_object *values,
                                const struct billable_metric *m, struct jsonw *w,
                                struct json_in_error *err)
{
    if (!values || !json_object_is_type(values, json_type_object) ||
        json_object_object_length(values) == 0)
        return json_in_refuse(err, "filters", "invalid_format");
    jsonw_key(w, "values");
    jsonw_object_begin(w);
    json_object_object_foreach(values, key, list)
    {
        const struct billable_metric_filter *mf = NULL;
        for (size_t i = 0; m && i < m->filter_count && !mf; i++)
            if (strcmp(m->filters[i].key, key) == 0)
                mf = &m->filters[i];
        const char **items;
        size_t n;
        bool ok = json_in_text_list(list, "filters", BILLABLE_METRIC_FILTER_VALUES_MAX,
                                    BILLABLE_METRIC_FILTER_TEXT_MAX, &req->arena, &items, &n, err);
        if (!ok || n == 0 || (m && !mf))
            return json_in_refuse(err, "filters", "invalid_format");
        /* the wildcard is a key's one value, as Lago's ChargeFilterValue#validate_values takes
         * it: among others it was stored and meant only the others (an audit's) */
        for (size_t v = 0; n > 1 && v < n; v++)
            if (strcmp(items[v], ALL_FILTER_VALUES) == 0) {
                err->message = "a charge filter's " ALL_FILTER_VALUES " must be its key's only "
                               "value";
                return json_in_refuse(err, "filters", "invalid_format");
            }
        jsonw_key(w, key);
        jsonw_array_begin(w);
        for (size_t v = 0; v < n; v++) {
            bool known = strcmp(items[v], ALL_FILTER_VALUES) == 0;
            for (size_t k = 0; mf && k < mf->value_count && !known; k++)
                known = strcmp(mf->values[k], items[v]) == 0;
            if (!known && m)
                return json_in_refuse(err, "filters", "invalid_format");
            jsonw_cstr(w, items[v]);
        }
        jsonw_array_end(w);
    }
    jsonw_object_end(w);
    return true;
}

/*
 * Whether properties `p` price a period without usage in int64 minor units of the currency:
 * what a charge (or a filter) costs at zero units (a graduated or volume first range's
 * flat_amount) is in every current usage of its subscriptions, so one that does not fit made
 * every such read 422 amount_out_of_range, even with no events (an audit's 37-digit
 * flat_amount). Refused here instead, with Tally's code for an amount that does not fit; a
 * price only a usage reaches stays the event's to refuse.
 */
static bool fee_at_zero_fits(const struct charge_model_properties *p, int32_t exponent,
                             struct json_in_error *err)
{
    if (exponent < 0)
        return true;
    struct charge_model_input in = {.units = MONEY_ZERO,
                                    .full_units = MONEY_ZERO,
                                    .precise_total_amount_cents = MONEY_ZERO,
                                    .exponent = exponent,
                                    .peak_units = MONEY_ZERO};
    money_t amount;
    int64_t cents;
    if (charge_model_amount(p, &in, &amount) == CHARGE_MODEL_OK &&
        charge_model_fee_cents(in.units, amount, exponent, &cents) == CHARGE_MODEL_OK)
        return true;
    err->message = "the charge's fee without any usage (a first range's flat_amount) does not "
                   "fit in the currency's minor units (at most 9223372036854775807 cents)";
    return json_in_refuse(err, "properties", "amount_out_of_range");
}

static bool parse_filters(struct request *req, struct json_object *charge,
                          enum charge_model_kind kind, const struct billable_metric *m,
                          int32_t exponent, struct jsonw *w, struct json_in_error *err)
{
    struct json_object *list;
    jsonw_key(w, "filters");
    jsonw_array_begin(w);
    if (json_object_object_get_ex(charge, "filters", &list) && list) {
        if (!json_object_is_type(list, json_type_array) ||
            json_object_array_length(list) > CHARGE_FILTERS_MAX)
            return json_in_refuse(err, "filters", "invalid_format");
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            struct json_object *f = json_object_array_get_idx(list, i), *props = NULL,
                               *values = NULL;
            const char *display = NULL;
            struct charge_model_properties p;
            if (!json_object_is_type(f, json_type_object))
                return json_in_refuse(err, "filters", "invalid_format");
            json_object_object_get_ex(f, "properties", &props);
            json_object_object_get_ex(f, "values", &values);
            if (json_in_string(f, "invoice_display_name", CATALOG_NAME_MAX, &req->arena, &display,
                               err) == JSON_IN_INVALID)
                return false;
            jsonw_object_begin(w);
            jsonw_kv_cstr(w, "invoice_display_name", display);
            jsonw_key(w, "properties");
            if (!charge_json_properties(&req->arena, props, kind, &p, w, err) ||
                !fee_at_zero_fits(&p, exponent, err) ||
                !parse_filter_values(req, values, m, w, err))
                return false;
            jsonw_object_end(w);
        }
    }
    jsonw_array_end(w);
    return true;
}

/* ---- the charge -------------------------------------------------------------------------- */

/* The metric a charge names, as the reader sees it now; false if it does not exist. */
static bool load_metric(struct request *req, struct store_conn *conn, const char *lago_id,
                        struct billable_metric *m)
{
    struct catalog_item item;
    return store_catalog_get_by_lago_id(conn, req->org_id, CATALOG_BILLABLE_METRIC, lago_id, &item,
                                        &req->arena) == STORE_OK &&
           metric_json_read(&req->arena, item.body, m);
}

/* Lago's rules that join a charge and its metric (app/models/charge.rb). */
static bool check_against_metric(const struct billable_metric *m, enum charge_model_kind kind,
                                 bool pay_in_advance, bool prorated, int64_t min_amount_cents,
                                 struct json_in_error *err)
{
    if (pay_in_advance &&
        (kind == CHARGE_MODEL_VOLUME || m->aggregation == AGGREGATION_MAX ||
         m->aggregation == AGGREGATION_LATEST || m->aggregation == AGGREGATION_WEIGHTED_SUM))
        return json_in_refuse(err, "pay_in_advance", "invalid_aggregation_type_or_charge_model");
    if (pay_in_advance && min_amount_cents > 0)
        return json_in_refuse(err, "min_amount_cents", "not_compatible_with_pay_in_advance");
    if (prorated &&
        !(m->recurring && m->aggregation != AGGREGATION_WEIGHTED_SUM &&
          (kind == CHARGE_MODEL_STANDARD ||
           (!pay_in_advance && (kind == CHARGE_MODEL_VOLUME || kind == CHARGE_MODEL_GRADUATED)))))
        return json_in_refuse(err, "prorated", "invalid_billable_metric_or_charge_model");
    /* Tally prorates a recurring sum or unique count priced in arrears (engine/usage). Pay in
     * advance's per-event fees are not built: billed whole instead, a seat added on the last
     * day would cost a full period, so they are refused. */
    if (prorated &&
        ((m->aggregation != AGGREGATION_SUM && m->aggregation != AGGREGATION_UNIQUE_COUNT) ||
         pay_in_advance))
        return json_in_refuse(err, "prorated", "not_supported");
    /* the validators' billable_metric: invalid_value, which Lago's ChargePropertiesValidation
     * files under properties with every validator's code */
    if ((kind == CHARGE_MODEL_PERCENTAGE || kind == CHARGE_MODEL_GRADUATED_PERCENTAGE) &&
        m->aggregation == AGGREGATION_LATEST)
        return json_in_refuse(err, "properties", "invalid_value");
    /* Charge#validate_dynamic (app/models/charge.rb): sum_agg only */
    if (kind == CHARGE_MODEL_DYNAMIC && m->aggregation != AGGREGATION_SUM)
        return json_in_refuse(err, "charge_model", "invalid_aggregation_type_or_charge_model");
    return true;
}

bool charges_parse(struct request *req, struct store_conn *conn, struct json_object *charge,
                   int32_t exponent, struct jsonw *w, struct catalog_definition *def,
                   struct json_in_error *err)
{
    const char *metric_id = NULL, *model = NULL, *display = NULL, *regroup = NULL, *lago_id = NULL,
               *code = NULL;
    bool pay_in_advance = false, invoiceable = true, prorated = false, targets = false;
    int64_t min_amount_cents = 0;
    enum charge_model_kind kind;
    struct billable_metric metric;
    struct json_object *props = NULL;
    if (!json_object_is_type(charge, json_type_object))
        return json_in_refuse(err, "charges", "invalid_type");
    if (!json_in_required_string(charge, "billable_metric_id", UUID_TEXT - 1, &req->arena,
                                 &metric_id, err) ||
        !json_in_required_string(charge, "charge_model", CHARGE_MODEL_KIND_NAME_MAX, &req->arena,
                                 &model, err) ||
        json_in_bool(charge, "pay_in_advance", &pay_in_advance, err) == JSON_IN_INVALID ||
        json_in_bool(charge, "invoiceable", &invoiceable, err) == JSON_IN_INVALID ||
        json_in_bool(charge, "prorated", &prorated, err) == JSON_IN_INVALID ||
        json_in_int(charge, "min_amount_cents", 0, INT64_MAX - 1, &min_amount_cents, err) ==
            JSON_IN_INVALID ||
        json_in_string(charge, "invoice_display_name", CATALOG_NAME_MAX, &req->arena, &display,
                       err) == JSON_IN_INVALID ||
        json_in_string(charge, "regroup_paid_fees", 16, &req->arena, &regroup, err) ==
            JSON_IN_INVALID ||
        json_in_string(charge, "code", CATALOG_CODE_MAX, &req->arena, &code, err) ==
            JSON_IN_INVALID ||
        json_in_bool(charge, "accepts_target_wallet", &targets, err) == JSON_IN_INVALID ||
        json_in_string(charge, "lago_id", UUID_TEXT - 1, &req->arena, &lago_id, err) ==
            JSON_IN_INVALID)
        return false;
    /* Lago's clients name an existing charge by "id" when they update a plan. */
    if (!lago_id &&
        json_in_string(charge, "id", UUID_TEXT - 1, &req->arena, &lago_id, err) == JSON_IN_INVALID)
        return false;
    /* an event's target_wallet_code choosing the wallet that pays (a Lago premium feature):
     * Tally's wallets pay in their order, so a charge that asks for it is refused rather than
     * debited from another wallet than the event names (an audit found it taken and ignored) */
    if (targets)
        return json_in_refuse(err, "accepts_target_wallet", "not_supported");
    if (!charge_model_kind_parse(model, strlen(model), &kind))
        return json_in_refuse(err, "charge_model", "value_is_invalid");
    if (regroup && strcmp(regroup, "invoice") != 0)
        return json_in_refuse(err, "regroup_paid_fees", "value_is_invalid");
    if (regroup && !(pay_in_advance && !invoiceable))
        return json_in_refuse(err, "regroup_paid_fees",
                              "only_compatible_with_pay_in_advance_and_non_invoiceable");
    if (!invoiceable && !pay_in_advance)
        return json_in_refuse(err, "invoiceable", "must_be_true_unless_pay_in_advance");
    bool metric_known = load_metric(req, conn, metric_id, &metric);
    if (metric_known &&
        !check_against_metric(&metric, kind, pay_in_advance, prorated, min_amount_cents, err))
        return false;
    if (!catalog_add_ref(req, def, CATALOG_BILLABLE_METRIC, NULL, metric_id, err))
        return false;
    /* Lago's Plans::ChargeablesValidationService answers an unknown metric so, plural, on a
     * create and an update (an audit found the singular) */
    def->refs[def->ref_count - 1].not_found = "billable_metrics_not_found";
    char id[UUID_TEXT];
    if (!lago_id || strlen(lago_id) != UUID_TEXT - 1) {
        if (!entropy_uuid(id))
            return json_in_refuse(err, "charges", "out_of_entropy");
        lago_id = id;
    }
    /* none, null or {}: the model's defaults, as Lago's `properties.presence ||
     * BuildDefaultPropertiesService` (a charge named by id that leaves them out kept its own
     * in merge_charges, api/plans.c) */
    struct json_object *defaults = NULL;
    json_object_object_get_ex(charge, "properties", &props);
    if (!props ||
        (json_object_is_type(props, json_type_object) && json_object_object_length(props) == 0)) {
        if (!(defaults = json_tokener_parse(charge_json_default_properties(kind))))
            return json_in_refuse(err, "properties", "out_of_memory");
        props = defaults;
    }
    struct charge_model_properties p;
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", lago_id);
    jsonw_kv_cstr(w, "billable_metric_id", metric_id);
    jsonw_kv_cstr(w, "code", code); /* kept and answered: Tally names a charge by its id */
    jsonw_kv_cstr(w, "invoice_display_name", display);
    jsonw_kv_cstr(w, "charge_model", charge_model_kind_name(kind));
    jsonw_kv_bool(w, "pay_in_advance", pay_in_advance);
    jsonw_kv_bool(w, "invoiceable", invoiceable);
    jsonw_kv_bool(w, "prorated", prorated);
    jsonw_kv_int(w, "min_amount_cents", min_amount_cents);
    jsonw_kv_cstr(w, "regroup_paid_fees", regroup);
    jsonw_key(w, "properties");
    bool ok = charge_json_properties(&req->arena, props, kind, &p, w, err) &&
              fee_at_zero_fits(&p, exponent, err);
    json_object_put(defaults); /* p borrows nothing of it: ranges are in the arena */
    if (!ok || !parse_filters(req, charge, kind, metric_known ? &metric : NULL, exponent, w, err) ||
        !catalog_parse_tax_codes(req, charge, w, def, err))
        return false;
    jsonw_object_end(w);
    return true;
}

void charges_render(struct jsonw *w, struct json_object *charge, int64_t org_id,
                    tally_time created_at, struct store_conn *conn, struct arena *a)
{
    struct json_object *v;
    const char *metric_id = NULL;
    if (json_object_object_get_ex(charge, "billable_metric_id", &v))
        metric_id = json_object_get_string(v);
    struct catalog_item metric;
    bool found = metric_id && store_catalog_get_by_lago_id(conn, org_id, CATALOG_BILLABLE_METRIC,
                                                           metric_id, &metric, a) == STORE_OK;
    if (!found)
        return; /* the charge went with its metric, as in Lago (engine/usage.c read_charge) */
    jsonw_object_begin(w);
    json_object_object_foreach(charge, key, value)
    {
        if (strcmp(key, "billable_metric_id") == 0 || strcmp(key, "tax_codes") == 0)
            continue;
        jsonw_key(w, key);
        jsonw_raw(w, json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN));
    }
    jsonw_kv_cstr(w, "lago_billable_metric_id", metric_id);
    jsonw_kv_cstr(w, "billable_metric_code", metric.code);
    /* Lago's V1::ChargeSerializer members of what Tally does not serve (pricing units, wallet
     * targeting, override parents: an overridden plan keeps its parent's charge ids,
     * docs/API.md), as Lago answers a charge without them; a charge stored before its code was
     * kept has none */
    if (!json_object_object_get_ex(charge, "code", &v))
        jsonw_kv_null(w, "code");
    jsonw_kv_null(w, "applied_pricing_unit");
    jsonw_kv_bool(w, "accepts_target_wallet", false);
    jsonw_kv_null(w, "lago_parent_id");
    jsonw_key(w, "created_at");
    jsonw_time(w, created_at, false);
    jsonw_key(w, "tax_codes");
    jsonw_raw(w, json_object_object_get_ex(charge, "tax_codes", &v)
                     ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
                     : "[]");
    catalog_render_taxes(w, charge, org_id, conn, a);
    jsonw_object_end(w);
}
