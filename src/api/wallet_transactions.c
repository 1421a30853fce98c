/* api/wallet_transactions: see wallet_transactions.h. */
#include "api/wallet_transactions.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/wallets.h"
#include "json/json_build.h"
#include "json/json_in.h"
#include "util/jsonw.h"

#define WALLET_TX_METADATA_MAX 15 /* key/value pairs, Lago's limit */
#define WALLET_TX_METADATA_TEXT_MAX 255

static void detail(struct jsonw *w, struct json_object *details, const char *key,
                   const char *fallback)
{
    struct json_object *v;
    jsonw_key(w, key);
    if (details && json_object_object_get_ex(details, key, &v) && v)
        jsonw_raw(w, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    else
        jsonw_raw(w, fallback);
}

static void time_or_null(struct jsonw *w, const char *key, bool has, tally_time t)
{
    jsonw_key(w, key);
    has ? jsonw_time(w, t, false) : jsonw_null(w);
}

void wallet_transactions_render(struct jsonw *w, const struct store_wallet_transaction *t)
{
    struct json_object *details = t->details_json ? json_tokener_parse(t->details_json) : NULL;
    bool inbound = t->type == WALLET_INBOUND;
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", t->lago_id);
    jsonw_kv_cstr(w, "lago_wallet_id", t->wallet_lago_id);
    jsonw_kv_cstr(w, "lago_invoice_id", t->invoice_lago_id);
    jsonw_kv_null(w, "lago_credit_note_id");
    jsonw_kv_null(w, "lago_voided_invoice_id");
    jsonw_kv_null(w, "billing_entity_code");
    jsonw_kv_cstr(w, "status", wallet_transaction_state_name(t->state));
    jsonw_kv_cstr(w, "source", wallet_transaction_source_name(t->source));
    jsonw_kv_cstr(w, "transaction_status", wallet_transaction_status_name(t->status));
    jsonw_kv_cstr(w, "transaction_type", wallet_transaction_type_name(t->type));
    jsonw_key(w, "amount");
    wallets_write_amount(w, t->amount_cents, t->currency);
    jsonw_key(w, "credit_amount");
    wallets_write_credits(w, t->amount_cents, t->rate_amount, t->currency);
    /* a grant's: Lago sets it on granted credits at once and on purchased ones when they are
     * paid, so a purchase waiting for its payment (or whose payment failed) has none */
    bool remains = inbound && (t->status != WALLET_TX_PURCHASED || t->state == WALLET_TX_SETTLED);
    jsonw_key(w, "remaining_amount_cents");
    remains ? jsonw_int(w, t->remaining_cents) : jsonw_null(w);
    jsonw_key(w, "remaining_credit_amount");
    if (remains)
        wallets_write_credits(w, t->remaining_cents, t->rate_amount, t->currency);
    else
        jsonw_null(w);
    jsonw_kv_int(w, "priority", t->priority);
    detail(w, details, "purchase_order_number", "null");
    time_or_null(w, "settled_at", t->has_settled_at, t->settled_at);
    time_or_null(w, "failed_at", t->has_failed_at, t->failed_at);
    time_or_null(w, "created_at", true, t->created_at);
    /* only a purchase waits for a payment: Lago's granted credits leave the flag false
     * whatever the wallet's or the request's (they share the request's details here) */
    if (t->status == WALLET_TX_PURCHASED)
        detail(w, details, "invoice_requires_successful_payment", "false");
    else
        jsonw_kv_bool(w, "invoice_requires_successful_payment", false);
    detail(w, details, "metadata", "[]");
    jsonw_kv_cstr(w, "name", t->name);
    api_write_no_payment_method(w);
    time_or_null(w, "expiration_at", t->has_expiration_at, t->expiration_at); /* Tally */
    jsonw_object_end(w);
    json_object_put(details);
}

static void render_created(struct command *cmd)
{
    if (api_error_render_command(cmd, "wallet_not_found"))
        return;
    struct store_wallet_transaction rows[3];
    for (size_t i = 0; i < cmd->transaction_count; i++) {
        if (store_wallet_transaction_get(cmd->conn, cmd->org_id, cmd->transaction_lago_ids[i],
                                         &rows[i], cmd->arena) != STORE_OK) {
            cmd->result = COMMAND_STORE_FAILED;
            return;
        }
    }
    struct jsonw w;
    cmd->http_status = 200;
    buf_reset(&cmd->response);
    jsonw_init(&w, &cmd->response);
    jsonw_object_begin(&w);
    jsonw_key(&w, "wallet_transactions");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < cmd->transaction_count; i++)
        wallet_transactions_render(&w, &rows[i]);
    jsonw_array_end(&w);
    jsonw_object_end(&w);
}

/* ---- create -------------------------------------------------------------------------------- */

enum json_in_result wallet_transactions_read_name(struct json_object *obj, const char *key,
                                                  struct arena *a, const char **out,
                                                  struct json_in_error *err)
{
    enum json_in_result r = json_in_string(obj, key, WALLET_NAME_MAX, a, out, err);
    if (r == JSON_IN_VALUE && (*out)[0] == '\0') {
        err->message = "a transaction's name is 1 to " API_LIMIT_TEXT(
            WALLET_NAME_MAX) " bytes: send null, or leave it out, for none";
        json_in_refuse(err, key, "value_is_invalid");
        return JSON_IN_INVALID;
    }
    return r;
}

/* A type error is invalid_type; a list or a text past its limit is Tally's code for that
 * limit, with a message saying it (an audit found both invalid_type, with no word of the
 * limit: a client checking its JSON types found them right). */
bool wallet_transactions_valid_metadata(struct json_object *v, const char *field,
                                        struct json_in_error *err)
{
    static const char shape[] = "metadata is a list of {\"key\": string, \"value\": string or "
                                "null} objects";
    if (!json_object_is_type(v, json_type_array)) {
        err->message = shape;
        return json_in_refuse(err, field, "invalid_type");
    }
    if (json_object_array_length(v) > WALLET_TX_METADATA_MAX) {
        err->message =
            "metadata holds at most " API_LIMIT_TEXT(WALLET_TX_METADATA_MAX) " key/value pairs";
        return json_in_refuse(err, field, "too_many_items");
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        struct json_object *item = json_object_array_get_idx(v, i), *key, *value;
        if (!json_object_is_type(item, json_type_object) ||
            !json_object_object_get_ex(item, "key", &key) ||
            !json_object_is_type(key, json_type_string) ||
            !json_object_object_get_ex(item, "value", &value) ||
            (value && !json_object_is_type(value, json_type_string))) {
            err->message = shape;
            return json_in_refuse(err, field, "invalid_type");
        }
        if (json_object_get_string_len(key) > WALLET_TX_METADATA_TEXT_MAX ||
            (value && json_object_get_string_len(value) > WALLET_TX_METADATA_TEXT_MAX)) {
            err->message = "a metadata key or value is at most " API_LIMIT_TEXT(
                WALLET_TX_METADATA_TEXT_MAX) " bytes";
            return json_in_refuse(err, field, "value_is_too_long");
        }
    }
    return true;
}

/*
 * An amount of credits, set only when not zero (Lago skips a zero one). One that is not a
 * decimal, or is below zero, is refused as Lago's WalletTransactions::ValidateService refuses
 * it: invalid_<field> (`code`) and invalid_amount (an audit found invalid_value and
 * invalid_amount alone). A JSON number is taken too, where Lago takes only strings; an integer
 * past 64 bits keeps json_in_decimal's integer_out_of_range and its message: it may be a
 * right amount, sent in a way Tally cannot read exactly.
 */
static bool read_credits(struct json_object *obj, const char *key, const char *code, bool *has,
                         money_t *out, struct json_in_error *err)
{
    enum json_in_result r = json_in_decimal(obj, key, out, err);
    if (r == JSON_IN_INVALID && strcmp(err->code, "integer_out_of_range") == 0)
        return false;
    if (r == JSON_IN_INVALID || (r == JSON_IN_VALUE && money_sign(*out) < 0)) {
        err->also = "invalid_amount";
        return json_in_refuse(err, key, code);
    }
    *has = r == JSON_IN_VALUE && money_sign(*out) != 0;
    return true;
}

/* The built object's JSON text on the request's arena, or NULL (it failed, or memory ran out). */
static const char *text_of(struct request *req, const struct json_build *b)
{
    return json_build_text(b, JSON_C_TO_STRING_PLAIN, &req->arena);
}

/* details: what the transaction shows back (metadata, purchase order, payment rule); and the
 * void's, its metadata only (c->void_details_json; an audit found a void dropping it). */
static const char *details_of(struct request *req, struct json_object *obj, bool requires_payment,
                              struct wallet_credits *c, struct json_in_error *err)
{
    struct json_object *v;
    struct json_build details;
    const char *out = NULL, *po = NULL;
    json_build_init(&details, json_object_new_object());
    if (json_build_failed(&details))
        return NULL;
    if (json_object_object_get_ex(obj, "metadata", &v) && v) {
        if (!wallet_transactions_valid_metadata(v, "metadata", err))
            goto done;
        json_build_share(&details, "metadata", v);
        if (!(c->void_details_json = text_of(req, &details)))
            goto done;
    }
    if (json_in_string(obj, "purchase_order_number", WALLET_PURCHASE_ORDER_MAX, &req->arena, &po,
                       err) == JSON_IN_INVALID)
        goto done;
    if (po)
        json_build_string(&details, "purchase_order_number", po);
    json_build_bool(&details, "invoice_requires_successful_payment", requires_payment);
    out = text_of(req, &details);
done:
    json_object_put(details.obj);
    return out;
}

void wallet_transactions_create(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "wallet_transaction", &doc);
    struct command *cmd = obj ? api_new_command(req, COMMAND_WALLET_TOP_UP, render_created) : NULL;
    struct json_in_error err = {0};
    const char *wallet_id = NULL;
    if (!cmd)
        goto done;
    struct wallet_credits *c = &cmd->as.wallet_top_up.credits;
    if (!json_in_required_string(obj, "wallet_id", 64, &req->arena, &wallet_id, &err))
        goto refused;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_wallet wallet;
    enum store_status s =
        store_wallet_get(store_reader_conn(r), req->org_id, wallet_id, &wallet, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK) { /* Lago's WalletTransactions::ValidateService: a field of the body */
        s == STORE_NOT_FOUND ? api_error_validation(req, "wallet_id", "wallet_not_found")
                             : api_error_store_read(req);
        goto done;
    }
    cmd->as.wallet_top_up.wallet_lago_id = wallet_id;
    int64_t priority;
    enum json_in_result jr;
    bool ignore_limits = false;
    c->invoice_requires_successful_payment = wallets_terms_require_payment(wallet.terms_json);
    c->priority = WALLET_PRIORITY_MAX;
    if (!read_credits(obj, "paid_credits", "invalid_paid_credits", &c->has_paid, &c->paid, &err) ||
        !read_credits(obj, "granted_credits", "invalid_granted_credits", &c->has_granted,
                      &c->granted, &err) ||
        !read_credits(obj, "voided_credits", "invalid_voided_credits", &c->has_voided, &c->voided,
                      &err) ||
        wallet_transactions_read_name(obj, "name", &req->arena, &c->name, &err) ==
            JSON_IN_INVALID ||
        (jr = json_in_int(obj, "priority", WALLET_PRIORITY_MIN, WALLET_PRIORITY_MAX, &priority,
                          &err)) == JSON_IN_INVALID ||
        json_in_bool(obj, "invoice_requires_successful_payment",
                     &c->invoice_requires_successful_payment, &err) == JSON_IN_INVALID ||
        json_in_bool(obj, "ignore_paid_top_up_limits", &ignore_limits, &err) == JSON_IN_INVALID)
        goto refused;
    if (jr == JSON_IN_VALUE)
        c->priority = (int32_t)priority;
    if ((jr = json_in_instant(obj, "expiration_at", &c->expiration_at, &err)) == JSON_IN_INVALID)
        goto refused;
    c->has_expiration_at = jr == JSON_IN_VALUE;
    if (c->has_expiration_at && !wallets_in_future(req, c->expiration_at)) {
        json_in_refuse(&err, "expiration_at", "invalid_date");
        goto refused;
    }
    if (json_in_string(obj, "voided_transaction_id", 64, &req->arena,
                       &c->voided_transaction_lago_id, &err) == JSON_IN_INVALID)
        goto refused;
    /* voided_credits given as zero void nothing, of a named grant too: only an absent amount
     * voids all that is left of it (a round-2 audit found "0" voiding it all) */
    struct json_object *voided;
    if (c->voided_transaction_lago_id && !c->has_voided &&
        json_object_object_get_ex(obj, "voided_credits", &voided) && voided)
        c->voided_transaction_lago_id = NULL;
    int64_t paid_cents = 0;
    if (c->has_paid && !ignore_limits &&
        wallet_credits_to_cents(c->paid, wallet.rate_amount,
                                wallets_currency_exponent(wallet.currency),
                                &paid_cents) == MONEY_OK &&
        paid_cents > 0 && !wallets_top_up_bounds_ok(wallet.terms_json, paid_cents, &err))
        goto refused;
    if (!(c->details_json = details_of(req, obj, c->invoice_requires_successful_payment, c, &err)))
        goto refused;
    api_submit(req, cmd);
    goto done;
refused:
    if (err.code)
        api_error_json_in(req, &err);
    else
        api_error(req, 500, "out_of_memory", NULL);
done:
    json_object_put(doc);
}

/* ---- reads ---------------------------------------------------------------------------------- */

static bool find_transaction(struct request *req, struct store_wallet_transaction *out)
{
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s = store_wallet_transaction_get(store_reader_conn(r), req->org_id,
                                                       req->params[0], out, &req->arena);
    api_reader_release(req->api, r);
    if (s == STORE_NOT_FOUND)
        api_error_not_found(req, "wallet_transaction_not_found");
    else if (s != STORE_OK)
        api_error_store_read(req);
    return s == STORE_OK;
}

void wallet_transactions_get(struct request *req)
{
    struct store_wallet_transaction t;
    if (api_wait_for_wallets(req) || !find_transaction(req, &t))
        return;
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "wallet_transaction");
    wallet_transactions_render(&w, &t);
    jsonw_object_end(&w);
}

/*
 * Lago's filters on a wallet's transactions, as its newest WalletTransactionsQuery and its
 * filter contract take them: status, transaction_type and transaction_status one value or a
 * list, refused with the contract's 422 when one is not Lago's (Tally's own usage,
 * usage_refund and expired transaction statuses are taken too); metadata[key]=value pairs,
 * all of which a transaction's metadata must hold (a blank value skipped, as with_metadata
 * skips it; found ignored by an audit: the whole list came back). False after answering.
 */
static bool read_list_filter(struct request *req, struct store_wallet_transaction_filter *f)
{
    static const char *const states[] = {[WALLET_TX_PENDING] = "pending",
                                         [WALLET_TX_SETTLED] = "settled",
                                         [WALLET_TX_FAILED] = "failed"};
    static const char *const types[] = {
        [WALLET_INBOUND] = "inbound", [WALLET_OUTBOUND] = "outbound"};
    static const char *const statuses[] = {
        [WALLET_TX_PURCHASED] = "purchased", [WALLET_TX_GRANTED] = "granted",
        [WALLET_TX_VOIDED] = "voided",       [WALLET_TX_INVOICED] = "invoiced",
        [WALLET_TX_USAGE] = "usage",         [WALLET_TX_USAGE_REFUND] = "usage_refund",
        [WALLET_TX_EXPIRED] = "expired"};
    static const struct api_enum_filter state = {"status", states, 3, "pending, settled, failed"};
    static const struct api_enum_filter type = {"transaction_type", types, 2, "inbound, outbound"};
    static const struct api_enum_filter status = {"transaction_status", statuses,
                                                  sizeof statuses / sizeof statuses[0],
                                                  "purchased, granted, voided, invoiced"};
    *f = (struct store_wallet_transaction_filter){0};
    return api_query_enum(req, &state, "status", &f->state_mask) &&
           api_query_enum(req, &type, "transaction_type", &f->type_mask) &&
           api_query_enum(req, &status, "transaction_status", &f->status_mask) &&
           api_query_metadata(req, true, &f->metadata_json);
}

void wallet_transactions_list_for_wallet(struct request *req)
{
    int64_t page, per_page, total = 0;
    struct store_wallet_transaction_filter f;
    if (api_wait_for_wallets(req) || !api_pagination(req, &page, &per_page) ||
        !read_list_filter(req, &f))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    struct store_wallet wallet;
    struct store_wallet_transaction *rows = NULL;
    size_t count = 0;
    enum store_status s = store_wallet_get(conn, req->org_id, req->params[0], &wallet, &req->arena);
    if (s == STORE_OK)
        s = store_wallet_transaction_list(conn, wallet.id, &f, (page - 1) * per_page, per_page,
                                          &rows, &count, &total, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        s == STORE_NOT_FOUND ? api_error_not_found(req, "wallet_not_found")
                             : api_error_store_read(req);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "wallet_transactions");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        wallet_transactions_render(&w, &rows[i]);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}

/* Consumptions of a grant (of_inbound), or fundings of a debit: the other side of each. */
static void traces(struct request *req, bool of_inbound)
{
    int64_t page, per_page, total = 0;
    struct store_wallet_transaction t;
    if (!api_pagination(req, &page, &per_page) || !find_transaction(req, &t))
        return;
    /* Lago's WalletTransactionConsumptionsQuery: consumptions of an inbound transaction,
     * fundings of an outbound one; Tally's refund steps, inbound, have fundings too */
    bool traced = of_inbound ? t.type == WALLET_INBOUND
                             : t.type == WALLET_OUTBOUND || t.status == WALLET_TX_USAGE_REFUND;
    if (!traced) {
        api_error_validation_message(
            req, "transaction_type", "invalid_transaction_type",
            of_inbound ? "only an inbound wallet transaction has consumptions; read an outbound "
                         "one's fundings"
                       : "only an outbound wallet transaction (or a usage_refund) has fundings; "
                         "read an inbound one's consumptions");
        return;
    }
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_wallet_consumption *rows = NULL;
    size_t count = 0;
    enum store_status s =
        store_wallet_consumption_list(store_reader_conn(r), t.id, of_inbound, (page - 1) * per_page,
                                      per_page, &rows, &count, &total, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        api_error_store_read(req);
        return;
    }
    const char *root =
        of_inbound ? "wallet_transaction_consumptions" : "wallet_transaction_fundings";
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, root);
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++) {
        jsonw_object_begin(&w);
        jsonw_kv_cstr(&w, "lago_id", rows[i].lago_id);
        jsonw_kv_int(&w, "amount_cents", rows[i].amount_cents);
        jsonw_key(&w, "credit_amount");
        wallets_write_credits(&w, rows[i].amount_cents, t.rate_amount, t.currency);
        jsonw_key(&w, "created_at");
        jsonw_time(&w, rows[i].created_at, false);
        jsonw_key(&w, "wallet_transaction");
        wallet_transactions_render(&w, &rows[i].other);
        jsonw_object_end(&w);
    }
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}

void wallet_transactions_consumptions(struct request *req)
{
    if (!api_wait_for_wallets(req))
        traces(req, true);
}

void wallet_transactions_fundings(struct request *req)
{
    if (!api_wait_for_wallets(req))
        traces(req, false);
}
