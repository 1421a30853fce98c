/* api/applied_coupons: see applied_coupons.h. */
#include "api/applied_coupons.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/add_ons.h"
#include "api/api.h"
#include "api/catalog.h"
#include "api/coupons.h"
#include "api/errors.h"
#include "json/coupon_json.h"
#include "json/json_in.h"
#include "core/money.h"
#include "sys/entropy.h"
#include "util/jsonw.h"

/* An application as Lago's AppliedCouponSerializer writes it, its coupon's state at `now`. */
static void render_applied(struct jsonw *w, const struct store_applied_coupon *row, tally_time now)
{
    const struct applied_coupon *c = &row->coupon;
    bool fixed = c->type == COUPON_FIXED_AMOUNT;
    tally_time ended;
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", c->lago_id);
    jsonw_kv_cstr(w, "lago_coupon_id", c->coupon_lago_id);
    jsonw_kv_cstr(w, "coupon_code", c->coupon_code);
    jsonw_kv_cstr(w, "coupon_name", c->coupon_name);
    jsonw_kv_cstr(w, "lago_customer_id", row->customer_lago_id);
    jsonw_kv_cstr(w, "external_customer_id", row->customer_external_id);
    jsonw_kv_cstr(w, "status", c->has_terminated_at ? "terminated" : "active");
    /* the coupon's own: ended once its expiration_at is reached (as GET /coupons says), and
     * when it was deleted, a client cannot read it by code any more */
    jsonw_kv_cstr(w, "coupon_status",
                  row->coupon_body && coupon_json_ended(row->coupon_body, now, &ended)
                      ? "terminated"
                      : "active");
    jsonw_key(w, "coupon_deleted_at");
    row->coupon_deleted ? jsonw_time(w, row->coupon_deleted_at, false) : jsonw_null(w);
    jsonw_key(w, "amount_cents");
    fixed ? jsonw_int(w, c->amount_cents) : jsonw_null(w);
    jsonw_key(w, "amount_cents_remaining");
    fixed && c->frequency == COUPON_ONCE ? jsonw_int(w, c->amount_cents_remaining) : jsonw_null(w);
    jsonw_kv_cstr(w, "amount_currency", fixed ? c->amount_currency : NULL);
    jsonw_kv_cstr(w, "percentage_rate", fixed ? NULL : c->percentage_rate);
    jsonw_kv_cstr(w, "frequency", coupon_frequency_name(c->frequency));
    /* whatever the frequency, as Lago's (a recurring coupon applied as forever keeps its) */
    jsonw_key(w, "frequency_duration");
    c->frequency_duration > 0 ? jsonw_int(w, c->frequency_duration) : jsonw_null(w);
    jsonw_key(w, "frequency_duration_remaining");
    c->frequency_duration > 0 ? jsonw_int(w, c->frequency_duration_remaining) : jsonw_null(w);
    jsonw_key(w, "expiration_at");
    c->has_expiration_at ? jsonw_time(w, c->expiration_at, false) : jsonw_null(w);
    jsonw_key(w, "created_at");
    jsonw_time(w, c->created_at, false);
    jsonw_key(w, "terminated_at");
    c->has_terminated_at ? jsonw_time(w, c->terminated_at, false) : jsonw_null(w);
    jsonw_key(w, "credits"); /* what invoices took off: none, until usage invoices use coupons */
    jsonw_array_begin(w);
    jsonw_array_end(w);
    jsonw_object_end(w);
}

static void render_one(struct buf *out, const struct store_applied_coupon *row, tally_time now)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "applied_coupon");
    render_applied(&w, row, now);
    jsonw_object_end(&w);
}

static void render_command(struct command *cmd)
{
    struct store_applied_coupon row;
    if (api_error_render_command(cmd, "applied_coupon_not_found"))
        return;
    if (store_applied_coupon_get(cmd->conn, cmd->org_id, cmd->applied_coupon.lago_id, &row,
                                 cmd->arena) != STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    cmd->http_status = 200;
    render_one(&cmd->response, &row, cmd->now);
}

/* ---- apply --------------------------------------------------------------------------------- */

/* The stored coupon's terms, as the applied coupon starts from them. */
static bool coupon_terms(struct request *req, const struct catalog_item *item,
                         struct applied_coupon *c, bool *reusable)
{
    struct json_object *body = catalog_parse_body(item->body), *v;
    if (!body)
        return false;
    memcpy(c->coupon_lago_id, item->lago_id, sizeof c->coupon_lago_id);
    c->coupon_code = item->code;
    bool ok = json_object_object_get_ex(body, "name", &v) &&
              (c->coupon_name = arena_strndup(&req->arena, json_object_get_string(v),
                                              (size_t)json_object_get_string_len(v))) &&
              json_object_object_get_ex(body, "coupon_type", &v) &&
              coupon_type_parse(json_object_get_string(v), &c->type) &&
              json_object_object_get_ex(body, "frequency", &v) &&
              coupon_frequency_parse(json_object_get_string(v), &c->frequency);
    if (ok && json_object_object_get_ex(body, "amount_cents", &v) && v)
        ok = json_in_stored_int(v, &c->amount_cents);
    if (ok && json_object_object_get_ex(body, "amount_currency", &v) && v)
        snprintf(c->amount_currency, sizeof c->amount_currency, "%s", json_object_get_string(v));
    if (ok && json_object_object_get_ex(body, "percentage_rate", &v) && v)
        c->percentage_rate = arena_strndup(&req->arena, json_object_get_string(v),
                                           (size_t)json_object_get_string_len(v));
    if (ok && json_object_object_get_ex(body, "frequency_duration", &v) && v)
        ok = json_in_stored_int(v, &c->frequency_duration);
    if (ok && json_object_object_get_ex(body, "reusable", &v))
        *reusable = json_object_get_boolean(v);
    if (ok && json_object_object_get_ex(body, "expiration_at", &v) && v) {
        const char *t = json_object_get_string(v);
        c->has_expiration_at = timestamp_parse_iso8601(t, strlen(t), &c->expiration_at);
    }
    json_object_put(body);
    return ok;
}

/* This customer's terms, where the request overrides the coupon's (Lago allows it). */
static bool apply_overrides(struct request *req, struct json_object *obj, struct applied_coupon *c,
                            bool *currency_sent, struct json_in_error *err)
{
    int64_t cents, duration;
    const char *currency = NULL, *frequency = NULL;
    enum json_in_result r;
    if ((r = json_in_int(obj, "amount_cents", 0, INT64_MAX - 1, &cents, err)) == JSON_IN_INVALID)
        return false;
    if (r == JSON_IN_VALUE)
        c->amount_cents = cents;
    if (json_in_string(obj, "amount_currency", 3, &req->arena, &currency, err) == JSON_IN_INVALID)
        return false;
    /* it may become the customer's currency: in any case, upper case, as POST /customers takes
     * one; the writer checks it as that does (applied_coupons_apply_create) */
    *currency_sent = currency != NULL;
    if (currency) {
        size_t n = strlen(currency); /* at most 3 bytes: json_in_string refused more */
        for (size_t i = 0; i < n && i < sizeof c->amount_currency - 1; i++)
            c->amount_currency[i] = (char)toupper((unsigned char)currency[i]);
        c->amount_currency[n < sizeof c->amount_currency ? n : sizeof c->amount_currency - 1] = 0;
    }
    struct json_object *rate = NULL;
    if (json_object_object_get_ex(obj, "percentage_rate", &rate) && rate) {
        char text[MONEY_TEXT_MAX];
        if (!coupons_parse_rate(obj, text, sizeof text, err))
            return false;
        c->percentage_rate = arena_strndup(&req->arena, text, strlen(text));
    }
    if (json_in_string(obj, "frequency", 16, &req->arena, &frequency, err) == JSON_IN_INVALID)
        return false;
    if (frequency && !coupon_frequency_parse(frequency, &c->frequency))
        return json_in_refuse(err, "frequency", "value_is_invalid");
    if ((r = json_in_int(obj, "frequency_duration", 1, COUPON_FREQUENCY_DURATION_MAX, &duration,
                         err)) == JSON_IN_INVALID)
        return false;
    if (r == JSON_IN_VALUE)
        c->frequency_duration = duration;
    if (c->frequency == COUPON_RECURRING && c->frequency_duration <= 0)
        return json_in_refuse(err, "frequency_duration", "value_is_mandatory");
    return true;
}

void applied_coupons_create(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "applied_coupon", &doc);
    struct command *cmd =
        obj ? api_new_command(req, COMMAND_APPLIED_COUPON_CREATE, render_command) : NULL;
    struct json_in_error err = {0};
    const char *code = NULL;
    if (!cmd)
        goto done;
    struct applied_coupon *c = &cmd->as.applied_coupon_create.coupon;
    bool *reusable = &cmd->as.applied_coupon_create.reusable;
    *reusable = true;
    const char **external_id = &cmd->as.applied_coupon_create.external_customer_id;
    if (json_in_string(obj, "external_customer_id", CUSTOMER_EXTERNAL_ID_MAX, &req->arena,
                       external_id, &err) == JSON_IN_INVALID ||
        json_in_string(obj, "coupon_code", CATALOG_CODE_MAX, &req->arena, &code, &err) ==
            JSON_IN_INVALID) {
        api_error_validation(req, err.field, err.code);
        goto done;
    }
    /* the customer before the coupon, as Lago's AppliedCoupons::CreateService (the writer
     * looks again: either may change meanwhile); one not named is not found, as Lago's
     * controller's find_by finds none (an audit: Tally answered 422 value_is_mandatory) */
    struct store_reader *r = api_reader_acquire(req->api);
    struct customer customer;
    struct catalog_item coupon;
    const char *missing = "customer_not_found";
    enum store_status s = !*external_id ? STORE_NOT_FOUND
                                        : store_customer_get(store_reader_conn(r), req->org_id,
                                                             *external_id, &customer, &req->arena);
    if (s == STORE_OK) {
        missing = "coupon_not_found";
        s = !code ? STORE_NOT_FOUND
                  : store_catalog_get(store_reader_conn(r), req->org_id, CATALOG_COUPON, code,
                                      &coupon, &req->arena);
    }
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        s == STORE_NOT_FOUND ? api_error_not_found(req, missing) : api_error_store_read(req);
        goto done;
    }
    if (!coupon_terms(req, &coupon, c, reusable)) {
        api_error(req, 500, "store_corrupt", "a stored coupon could not be read");
        goto done;
    }
    cmd->as.applied_coupon_create.coupon_updated_at = coupon.updated_at;
    if (!apply_overrides(req, obj, c, &cmd->as.applied_coupon_create.currency_sent, &err)) {
        api_error_validation(req, err.field, err.code);
        goto done;
    }
    if (!entropy_uuid(c->lago_id)) {
        api_error(req, 500, "out_of_entropy", NULL);
        goto done;
    }
    api_submit(req, cmd);
done:
    json_object_put(doc);
}

/* ---- list and terminate ------------------------------------------------------------------- */

/* A page of applied coupons; of one customer when external_customer_id names one (in the path:
 * `named`, and an unknown customer is then a 404, as Lago's nested route; a filter finds none). */
static void list(struct request *req, const char *external_customer_id, bool named)
{
    int64_t page, per_page, total = 0, customer_id = 0;
    const char *codes = NULL;
    if (!api_pagination(req, &page, &per_page) || !api_query_list(req, "coupon_code", &codes))
        return;
    /* a status that is neither filters nothing, as Lago's AppliedCouponsQuery (valid_status?)
     * drops it (it was a 400 without a code: an audit) */
    const char *status = api_query_filter(req, "status");
    int wanted = 0;
    if (status && strcmp(status, "active") == 0)
        wanted = 1;
    else if (status && strcmp(status, "terminated") == 0)
        wanted = 2;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    struct store_applied_coupon *rows = NULL;
    size_t count = 0;
    enum store_status s = STORE_OK;
    if (external_customer_id) {
        struct customer c;
        s = store_customer_get(conn, req->org_id, external_customer_id, &c, &req->arena);
        if (s == STORE_OK)
            customer_id = c.id;
    }
    if (s == STORE_OK)
        s = store_applied_coupon_list(conn, req->org_id, customer_id, wanted, codes,
                                      (page - 1) * per_page, per_page, &rows, &count, &total,
                                      &req->arena);
    api_reader_release(req->api, r);
    if (s == STORE_ERROR) {
        api_error_store_read(req);
        return;
    }
    if (s == STORE_NOT_FOUND && named) {
        api_error_not_found(req, "customer_not_found");
        return;
    }
    tally_time now;
    if (!api_org_now(req, &now))
        return;
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "applied_coupons");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        render_applied(&w, &rows[i], now);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, s == STORE_OK ? total : 0);
    jsonw_object_end(&w);
}

void applied_coupons_list(struct request *req)
{
    list(req, api_query_filter(req, "external_customer_id"), false);
}

void applied_coupons_list_for_customer(struct request *req)
{
    list(req, req->params[0], true);
}

void applied_coupons_terminate(struct request *req)
{
    struct command *cmd = api_new_command(req, COMMAND_APPLIED_COUPON_TERMINATE, render_command);
    if (!cmd)
        return;
    cmd->as.applied_coupon_terminate.external_customer_id = req->params[0];
    cmd->as.applied_coupon_terminate.lago_id = req->params[1];
    api_submit(req, cmd);
}
