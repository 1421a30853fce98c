/* api/coupons: see coupons.h. */
#include "api/coupons.h"

#include <json-c/json.h>
#include <string.h>

#include "api/add_ons.h"
#include "api/api.h"
#include "api/errors.h"
#include "core/money.h"
#include "json/coupon_json.h"

static bool one_of(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || (c && strcmp(s, c) == 0);
}

bool coupons_parse_rate(struct json_object *obj, char *text, size_t cap, struct json_in_error *err)
{
    money_t rate;
    enum json_in_result r = json_in_decimal(obj, "percentage_rate", &rate, err);
    if (r == JSON_IN_INVALID)
        return false;
    if (r != JSON_IN_VALUE)
        return json_in_refuse(err, "percentage_rate", "value_is_mandatory");
    /* 0 to 100, checked on the rate sent; Lago keeps it in a decimal(10,5) column, which rounds
     * ties away from zero, so "0.000004" is kept as 0.0, as Lago's (0 refused, a coupon stored
     * with such a rate by an earlier Tally could no longer be renamed: an audit) */
    if (money_sign(rate) < 0 || money_cmp(rate, money_from_int(100)) > 0 ||
        money_round(rate, 5, MONEY_ROUND_HALF_UP, &rate) != MONEY_OK)
        return json_in_refuse(err, "percentage_rate", "value_is_out_of_range");
    money_format_fraction(money_normalize(rate), 1, text, cap); /* Lago: "10.0" */
    return true;
}

/*
 * plan_codes or billable_metric_codes: each must exist (404 `missing`, Lago's plural code);
 * written canonically. As Lago's coupon services read them (`.compact.uniq`), a null in the list
 * is dropped and a code named twice is kept once.
 */
static bool parse_limits(struct request *req, struct json_object *obj, const char *key,
                         enum catalog_kind kind, const char *missing, struct jsonw *w,
                         struct catalog_definition *def, bool *limited, struct json_in_error *err)
{
    struct json_object *list = NULL;
    if (json_object_object_get_ex(obj, key, &list) && json_object_is_type(list, json_type_array))
        for (size_t i = json_object_array_length(list); i-- > 0;)
            if (!json_object_array_get_idx(list, i))
                json_object_array_del_idx(list, i, 1);
    const char **codes = NULL;
    size_t n = 0, distinct = 0;
    if (json_in_string_array(obj, key, CATALOG_REFS_MAX, CATALOG_CODE_MAX, &req->arena, &codes, &n,
                             err) == JSON_IN_INVALID)
        return false;
    jsonw_key(w, key);
    jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        bool repeated = false;
        for (size_t j = 0; j < i && !repeated; j++)
            repeated = strcmp(codes[i], codes[j]) == 0;
        if (repeated)
            continue;
        distinct++;
        jsonw_cstr(w, codes[i]);
        if (!catalog_add_ref(req, def, kind, codes[i], NULL, err))
            return false;
        def->refs[def->ref_count - 1].not_found = missing;
    }
    jsonw_array_end(w);
    *limited = distinct > 0;
    return true;
}

static bool parse_discount(struct request *req, struct json_object *obj, const char *type,
                           struct jsonw *w, struct json_in_error *err)
{
    if (strcmp(type, "fixed_amount") == 0) {
        /* Lago's Coupon: amount_cents greater_than 0 (app/models/coupon.rb); an add-on's price
         * may be 0, a discount of nothing may not (an audit found one made) */
        int64_t cents;
        enum json_in_result r = json_in_int(obj, "amount_cents", 0, INT64_MAX - 1, &cents, err);
        if (r == JSON_IN_INVALID)
            return false;
        if (r == JSON_IN_VALUE && cents == 0) {
            err->message = "amount_cents: a fixed_amount coupon takes off at least 1 cent";
            return json_in_refuse(err, "amount_cents", "value_is_out_of_range");
        }
        jsonw_kv_null(w, "percentage_rate");
        return add_ons_parse_price(req, obj, "amount_cents", "amount_currency", true, w, err);
    }
    char text[MONEY_TEXT_MAX];
    if (!coupons_parse_rate(obj, text, sizeof text, err))
        return false;
    jsonw_kv_cstr(w, "percentage_rate", text);
    jsonw_kv_null(w, "amount_cents");
    jsonw_kv_null(w, "amount_currency");
    return true;
}

/*
 * As Lago's Coupon model and Coupons::ValidateService: `frequency` and `expiration` are required
 * (the model's enums refuse a missing one, value_is_invalid); `reusable` defaults to true when
 * absent, and null is refused (`exclusion: [nil]`); an `expiration_at` given is a date whatever
 * the expiration, and not of a day before the clock's (the writer checks that). The duration is
 * kept whatever the frequency, as Lago keeps it (an application overriding the frequency takes it).
 */
static bool parse_terms(struct request *req, struct json_object *obj, struct jsonw *w,
                        struct catalog_definition *out, struct json_in_error *err)
{
    const char *frequency = NULL, *expiration = NULL, *expiration_at = NULL;
    int64_t duration = 0;
    bool reusable = true;
    enum json_in_result dr, rr;
    if (json_in_string(obj, "frequency", 16, &req->arena, &frequency, err) == JSON_IN_INVALID ||
        (dr = json_in_int(obj, "frequency_duration", 1, COUPON_FREQUENCY_DURATION_MAX, &duration,
                          err)) == JSON_IN_INVALID ||
        (rr = json_in_bool(obj, "reusable", &reusable, err)) == JSON_IN_INVALID ||
        json_in_string(obj, "expiration", 16, &req->arena, &expiration, err) == JSON_IN_INVALID)
        return false;
    /* Lago passes over a blank expiration_at ("" or null) and refuses any other not a date */
    struct json_object *at_value = NULL;
    if (json_object_object_get_ex(obj, "expiration_at", &at_value) && at_value &&
        !(json_object_is_type(at_value, json_type_string) &&
          json_object_get_string_len(at_value) == 0) &&
        json_in_string(obj, "expiration_at", 64, &req->arena, &expiration_at, err) ==
            JSON_IN_INVALID)
        return json_in_refuse(err, "expiration_at", "invalid_date");
    if (!frequency || !one_of(frequency, "once", "recurring", "forever"))
        return json_in_refuse(err, "frequency", "value_is_invalid");
    bool recurring = strcmp(frequency, "recurring") == 0;
    if (recurring && dr != JSON_IN_VALUE)
        return json_in_refuse(err, "frequency_duration", "value_is_mandatory");
    if (rr == JSON_IN_NULL)
        return json_in_refuse(err, "reusable", "value_is_invalid");
    if (!expiration || !one_of(expiration, "no_expiration", "time_limit", NULL))
        return json_in_refuse(err, "expiration", "value_is_invalid");
    bool limited = strcmp(expiration, "time_limit") == 0;
    tally_time at = 0;
    if (limited && !expiration_at)
        return json_in_refuse(err, "expiration_at", "value_is_mandatory");
    if (expiration_at && !timestamp_parse_iso8601(expiration_at, strlen(expiration_at), &at))
        return json_in_refuse(err, "expiration_at", "invalid_date");
    out->has_expiration_at = expiration_at != NULL;
    out->expiration_at = at;
    jsonw_kv_cstr(w, "frequency", frequency);
    jsonw_key(w, "frequency_duration");
    if (dr == JSON_IN_VALUE)
        jsonw_int(w, duration);
    else
        jsonw_null(w);
    jsonw_kv_bool(w, "reusable", reusable);
    jsonw_kv_cstr(w, "expiration", expiration);
    jsonw_key(w, "expiration_at");
    if (limited)
        jsonw_time(w, at, false);
    else
        jsonw_null(w);
    return true;
}

static bool parse_coupon(struct request *req, struct json_object *obj,
                         struct catalog_definition *out, struct json_in_error *err)
{
    const char *name = NULL, *description = NULL, *type = NULL;
    if (!json_in_required_string(obj, "code", CATALOG_CODE_MAX, &req->arena, &out->code, err) ||
        !json_in_required_string(obj, "name", CATALOG_NAME_MAX, &req->arena, &name, err) ||
        json_in_string(obj, "description", CATALOG_DESCRIPTION_MAX, &req->arena, &description,
                       err) == JSON_IN_INVALID ||
        !json_in_required_string(obj, "coupon_type", 16, &req->arena, &type, err))
        return false;
    if (!one_of(type, "fixed_amount", "percentage", NULL))
        return json_in_refuse(err, "coupon_type", "value_is_invalid");
    struct buf b;
    struct jsonw w;
    bool limited_plans = false, limited_metrics = false;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "name", name);
    jsonw_kv_cstr(&w, "description", description);
    jsonw_kv_cstr(&w, "coupon_type", type);
    /* Lago's input nests the limits in `applies_to`; its answer, and Tally's first inputs,
     * have them at the top */
    struct json_object *limits = obj, *applies_to = NULL;
    bool ok = true;
    /* null is no limit, as absent; any other type is refused, not passed over: a coupon meant
     * for one plan was otherwise made for every plan */
    if (json_object_object_get_ex(obj, "applies_to", &applies_to) && applies_to) {
        if (json_object_is_type(applies_to, json_type_object))
            limits = applies_to;
        else
            ok = json_in_refuse(err, "applies_to", "invalid_type");
    }
    ok = ok && parse_discount(req, obj, type, &w, err) && parse_terms(req, obj, &w, out, err) &&
         parse_limits(req, limits, "plan_codes", CATALOG_PLAN, "plans_not_found", &w, out,
                      &limited_plans, err) &&
         parse_limits(req, limits, "billable_metric_codes", CATALOG_BILLABLE_METRIC,
                      "billable_metrics_not_found", &w, out, &limited_metrics, err);
    /* An update keeps a coupon whose every target was deleted limited to none (merge_coupon
     * leaves only the stored flags in obj); a client's flags are answers, never read. */
    if (ok && strcmp(req->method, "PUT") == 0 && !limited_plans && !limited_metrics)
        ok =
            json_in_bool(obj, "limited_plans", &limited_plans, err) != JSON_IN_INVALID &&
            json_in_bool(obj, "limited_billable_metrics", &limited_metrics, err) != JSON_IN_INVALID;
    /* Lago limits a coupon to plans or to metrics, not both: 405, once the codes are found to
     * exist (Coupons::CreateService checks them first), so the writer refuses it */
    if (ok && limited_plans && limited_metrics)
        out->not_allowed_code = "only_one_limitation_type_per_coupon_allowed";
    jsonw_kv_bool(&w, "limited_plans", limited_plans);
    jsonw_kv_bool(&w, "limited_billable_metrics", limited_metrics);
    jsonw_object_end(&w);
    return catalog_finish_body(req, ok, &b, out, err);
}

/*
 * An update's fields over the stored coupon. limited_plans and limited_billable_metrics are
 * Lago's answer, not its input: those sent are dropped. The stored ones stay unless the update
 * names the limits again: they are what keeps a coupon whose every target was deleted limited
 * to none (engine/catalog_edit.c, retarget_coupons), and naming the limits replaces them.
 */
static bool merge_coupon(struct request *req, struct json_object *stored, struct json_object *sent)
{
    (void)req;
    static const char *const limits[] = {"applies_to", "plan_codes", "billable_metric_codes"};
    json_object_object_del(sent, "limited_plans");
    json_object_object_del(sent, "limited_billable_metrics");
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (json_object_object_get_ex(sent, limits[i], NULL)) {
            json_object_object_del(stored, "limited_plans");
            json_object_object_del(stored, "limited_billable_metrics");
        }
    return json_in_merge(stored, sent);
}

/*
 * Lago's Coupons::UpdateService: once a coupon has been applied (the application active or
 * terminated since), an update changes its name, description and expiry only; the code, terms,
 * reusable and limits sent are passed over unread, and the answer shows them as they were.
 * Applied coupons keep their own terms anyway; this keeps the coupon what its customers took.
 */
static bool prune_coupon_update(struct request *req, const struct catalog_item *existing,
                                struct json_object *sent, bool *pruned)
{
    static const char *const editable[] = {"name", "description", "expiration", "expiration_at"};
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s =
        store_coupon_in_use(store_reader_conn(r), req->org_id, existing->lago_id, pruned);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        api_error_store_read(req);
        return false;
    }
    if (!*pruned)
        return true;
    /* the keys first: json-c cannot delete from an object it is iterating */
    size_t n = 0, len = (size_t)json_object_object_length(sent);
    const char **drop = arena_alloc(&req->arena, (len ? len : 1) * sizeof *drop);
    if (!drop) {
        api_error(req, 500, "out_of_memory", NULL);
        return false;
    }
    json_object_object_foreach(sent, key, value)
    {
        (void)value;
        bool keep = false;
        for (size_t i = 0; i < sizeof editable / sizeof editable[0] && !keep; i++)
            keep = strcmp(key, editable[i]) == 0;
        if (!keep && n < len)
            drop[n++] = key;
    }
    for (size_t i = 0; i < n; i++)
        json_object_object_del(sent, drop[i]);
    return true;
}

/* terminated_at: kept in the body once an update came after the coupon ended (the body's
 * members write it then), else its expiration_at once reached (json/coupon_json). */
static void render_coupon(struct jsonw *w, const struct catalog_item *item, struct store_conn *conn,
                          struct arena *a, tally_time now)
{
    (void)conn;
    (void)a;
    tally_time ended;
    struct json_object *body = catalog_parse_body(item->body);
    bool kept = body && json_object_object_get_ex(body, "terminated_at", NULL);
    json_object_put(body);
    catalog_open_item(w, item);
    if (!kept) {
        jsonw_key(w, "terminated_at");
        if (coupon_json_ended(item->body, now, &ended))
            jsonw_time(w, ended, false);
        else
            jsonw_null(w);
    }
    jsonw_object_end(w);
}

const struct catalog_resource coupons_resource = {
    .kind = CATALOG_COUPON,
    .parse = parse_coupon,
    .merge = merge_coupon,
    .prune_update = prune_coupon_update,
    .render = render_coupon,
};
