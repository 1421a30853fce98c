/* api/authorizations: see authorizations.h. */
#include "api/authorizations.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/events.h"
#include "api/wallets.h"
#include "json/event_json.h"
#include "json/json_in.h"
#include "util/jsonw.h"

static const char *const status_names[] = {
    [AUTHORIZATION_DECLINED] = "declined", [AUTHORIZATION_AUTHORIZED] = "authorized",
    [AUTHORIZATION_CAPTURED] = "captured", [AUTHORIZATION_VOIDED] = "voided",
    [AUTHORIZATION_EXPIRED] = "expired",
};

/* The wallet whose rate shows a hold in credits. */
struct payer {
    const char *lago_id;
    money_t rate_amount;
    const char *currency;
};

/*
 * The hold's price as an event's is written (api/events: BigDecimal's to_s, "300.0"). The
 * hold keeps money_format's canonical text, which its capture compares, so it is read back
 * here rather than stored in this form.
 */
static void write_precise(struct jsonw *w, const char *kept)
{
    money_t amount;
    char text[MONEY_TEXT_MAX];
    bool shown = kept && money_parse(kept, strlen(kept), &amount) == MONEY_OK &&
                 money_format_fraction(amount, 1, text, sizeof text) > 0;
    jsonw_kv_cstr(w, "precise_total_amount_cents", shown ? text : kept);
}

/* payer: NULL when no wallet could pay. */
static void write_authorization(struct jsonw *w, const struct store_authorization *a,
                                const struct payer *payer)
{
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", a->lago_id);
    jsonw_kv_cstr(w, "status", status_names[a->status]);
    jsonw_kv_cstr(w, "external_customer_id", a->external_customer_id);
    jsonw_kv_cstr(w, "external_subscription_id", a->external_subscription_id);
    jsonw_kv_cstr(w, "code", a->code);
    jsonw_kv_raw(w, "properties", a->properties_json);
    write_precise(w, a->precise_total_amount_cents);
    jsonw_kv_cstr(w, "currency", a->currency);
    jsonw_kv_int(w, "amount_cents", a->amount_cents);
    jsonw_key(w, "credits");
    if (payer)
        wallets_write_credits(w, a->amount_cents, payer->rate_amount, payer->currency);
    else
        jsonw_null(w);
    jsonw_kv_int(w, "held_amount_cents", a->held_cents);
    jsonw_kv_cstr(w, "lago_wallet_id", payer ? payer->lago_id : NULL);
    jsonw_key(w, "captured_amount_cents");
    a->has_captured_cents ? jsonw_int(w, a->captured_cents) : jsonw_null(w);
    jsonw_kv_cstr(w, "transaction_id", a->transaction_id);
    jsonw_key(w, "expires_at");
    jsonw_time(w, a->expires_at, false);
    jsonw_key(w, "created_at");
    jsonw_time(w, a->created_at, false);
    jsonw_key(w, "updated_at");
    jsonw_time(w, a->updated_at, false);
    jsonw_object_end(w);
}

static void render(struct buf *out, const struct store_authorization *a, const struct payer *payer)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "authorization");
    write_authorization(&w, a, payer);
    jsonw_object_end(&w);
}

/* The wallet of a hold's first part (wallet ids grow with time: the one made first). */
static bool first_holder(const struct store_hold *part, void *ctx)
{
    *(int64_t *)ctx = part->wallet_id;
    return false;
}

/*
 * The payer of a stored hold, as it was chosen when the hold was made. Holds saved before
 * schema version 20 did not keep it: for them, the wallet made first among those holding part
 * of it, else (declined) the wallet named by `fallback`. NULL if none.
 */
static const struct payer *payer_of(struct store_conn *c, const struct store_authorization *a,
                                    const char *fallback, struct payer *out, struct arena *ar)
{
    int64_t holder = 0;
    struct store_wallet w;
    enum store_status s = STORE_NOT_FOUND;
    if (a->payer_wallet_id)
        s = store_wallet_by_id(c, a->payer_wallet_id, &w, ar);
    else if (store_authorization_holds(c, a->id, first_holder, &holder) == STORE_OK && holder)
        s = store_wallet_by_id(c, holder, &w, ar);
    else if (fallback && fallback[0])
        s = store_wallet_get(c, a->org_id, fallback, &w, ar);
    if (s != STORE_OK)
        return NULL;
    char *currency = arena_strndup(ar, w.currency, strlen(w.currency));
    char *lago_id = arena_strndup(ar, w.lago_id, strlen(w.lago_id));
    if (!currency || !lago_id)
        return NULL;
    *out = (struct payer){.lago_id = lago_id, .rate_amount = w.rate_amount, .currency = currency};
    return out;
}

static void render_command(struct command *cmd)
{
    if (api_error_render_command(cmd, "authorization_not_found"))
        return;
    cmd->http_status = 200;
    struct payer payer;
    if (cmd->kind == COMMAND_AUTHORIZATION_CREATE) {
        /* the writer has the hold as saved, and its payer: nothing to read back */
        payer = (struct payer){.lago_id = cmd->wallet_lago_id,
                               .rate_amount = cmd->payer_rate_amount,
                               .currency = cmd->payer_currency};
        render(&cmd->response, &cmd->authorization, cmd->has_payer ? &payer : NULL);
        return;
    }
    struct store_authorization a;
    if (store_authorization_get(cmd->conn, cmd->org_id, cmd->authorization.lago_id, &a,
                                cmd->arena) != STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    render(&cmd->response, &a, payer_of(cmd->conn, &a, cmd->wallet_lago_id, &payer, cmd->arena));
}

void authorizations_create(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object_or_empty(req, "authorization", &doc);
    struct command *cmd =
        obj ? api_new_command(req, COMMAND_AUTHORIZATION_CREATE, render_command) : NULL;
    struct event *e = cmd ? arena_alloc(&req->arena, sizeof *e) : NULL;
    struct json_in_error err = {0};
    if (!cmd)
        goto done;
    if (!e) {
        api_error(req, 500, "out_of_memory", NULL);
        goto done;
    }
    memset(e, 0, sizeof *e);
    int64_t expires_in = AUTHORIZATION_EXPIRES_IN_DEFAULT;
    if (!json_in_required_id(obj, "external_subscription_id", SUBSCRIPTION_EXTERNAL_ID_MAX,
                             &req->arena, &e->external_subscription_id, &err) ||
        !json_in_required_string(obj, "code", EVENT_CODE_MAX, &req->arena, &e->code, &err) ||
        !events_parse_properties(req, obj, e, &err) || !event_json_precise(obj, e, &err) ||
        json_in_int(obj, "expires_in", 1, AUTHORIZATION_EXPIRES_IN_MAX, &expires_in, &err) ==
            JSON_IN_INVALID) {
        api_error_validation(req, err.field, err.code);
        goto done;
    }
    cmd->as.authorization_create.event = e;
    cmd->as.authorization_create.expires_in_sec = expires_in;
    api_submit(req, cmd);
done:
    json_object_put(doc);
}

static bool find(struct request *req, struct store_authorization *a)
{
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s =
        store_authorization_get(store_reader_conn(r), req->org_id, req->params[0], a, &req->arena);
    api_reader_release(req->api, r);
    if (s == STORE_NOT_FOUND)
        api_error_not_found(req, "authorization_not_found");
    else if (s != STORE_OK)
        api_error_store_read(req);
    return s == STORE_OK;
}

void authorizations_get(struct request *req)
{
    struct store_authorization a;
    struct payer wallet;
    if (!find(req, &a))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    const struct payer *payer = payer_of(store_reader_conn(r), &a, NULL, &wallet, &req->arena);
    api_reader_release(req->api, r);
    render(api_respond(req, 200), &a, payer);
}

static const char *const known_list_args[] = {"page", "per_page", "external_customer_id",
                                              "external_subscription_id"};

void authorizations_list(struct request *req)
{
    int64_t page, per_page, total = 0;
    if (!api_refuse_unknown(req, known_list_args,
                            sizeof known_list_args / sizeof known_list_args[0]) ||
        !api_pagination(req, &page, &per_page))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    struct store_authorization *rows = NULL;
    size_t count = 0;
    enum store_status s = store_authorization_open_list(
        conn, req->org_id, api_query_filter(req, "external_customer_id"),
        api_query_filter(req, "external_subscription_id"), (page - 1) * per_page, per_page, &rows,
        &count, &total, &req->arena);
    const struct payer **payers =
        s == STORE_OK ? arena_alloc(&req->arena, (count ? count : 1) * sizeof *payers) : NULL;
    struct payer *kept =
        payers ? arena_alloc(&req->arena, (count ? count : 1) * sizeof *kept) : NULL;
    for (size_t i = 0; kept && i < count; i++)
        payers[i] = payer_of(conn, &rows[i], NULL, &kept[i], &req->arena);
    api_reader_release(req->api, r);
    if (!kept) {
        api_error_store_read(req);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "authorizations");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        write_authorization(&w, &rows[i], payers[i]);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}

void authorizations_capture(struct request *req)
{
    struct store_authorization a;
    if (!find(req, &a))
        return;
    /* The body is optional: {"authorization": {...}} overrides what was authorized. */
    struct json_object *doc, *obj;
    if (!api_optional_body_object(req, "authorization", &doc, &obj)) {
        json_object_put(doc);
        return;
    }
    struct command *cmd = api_new_command(req, COMMAND_AUTHORIZATION_CAPTURE, render_command);
    struct event *e = cmd ? arena_alloc(&req->arena, sizeof *e) : NULL;
    struct event_result *result = e ? arena_alloc(&req->arena, sizeof *result) : NULL;
    struct json_in_error err = {0};
    if (!cmd)
        goto done;
    if (!result) {
        api_error(req, 500, "out_of_memory", NULL);
        goto done;
    }
    memset(e, 0, sizeof *e);
    e->external_subscription_id = a.external_subscription_id;
    e->code = a.code;
    e->transaction_id = arena_strndup(&req->arena, a.lago_id, strlen(a.lago_id));
    /* the actual usage: the body's properties and price, else the authorized ones */
    bool given = false, priced = false;
    struct json_object *v;
    if (obj) {
        const char *transaction_id = NULL; /* null or absent: the default stands */
        given = json_object_object_get_ex(obj, "properties", &v) && v;
        priced = json_object_object_get_ex(obj, "precise_total_amount_cents", &v) && v;
        if (json_in_id(obj, "transaction_id", EVENT_TRANSACTION_ID_MAX, &req->arena,
                       &transaction_id, &err) == JSON_IN_INVALID ||
            /* "" (or blank) as POST /events answers it: an event with an empty id cannot be
             * fetched */
            (transaction_id && json_in_blank(transaction_id, strlen(transaction_id)) &&
             !json_in_refuse(&err, "transaction_id", "value_is_mandatory")) ||
            !event_json_timestamp(obj, e, &err) ||
            (given && !events_parse_properties(req, obj, e, &err)) ||
            (priced && !event_json_precise(obj, e, &err))) {
            api_error_validation(req, err.field, err.code);
            goto done;
        }
        if (transaction_id)
            e->transaction_id = transaction_id;
    }
    struct event held = {0};
    if (!event_json_properties_text(&req->arena, a.properties_json, given ? &held : e) ||
        (!priced && !event_json_precise_text(a.precise_total_amount_cents, e))) {
        api_error(req, 500, "store_corrupt", "a stored authorization could not be read");
        goto done;
    }
    /* a client that builds the object again may send its keys in another order */
    cmd->as.events_ingest.properties_as_authorized = !given || event_same_properties(e, &held);
    cmd->as.events_ingest.events = e;
    cmd->as.events_ingest.count = 1;
    cmd->as.events_ingest.results = result;
    cmd->as.events_ingest.authorization_lago_id =
        arena_strndup(&req->arena, a.lago_id, strlen(a.lago_id));
    memcpy(cmd->authorization.lago_id, a.lago_id, sizeof a.lago_id);
    api_submit(req, cmd);
done:
    json_object_put(doc);
}

void authorizations_void(struct request *req)
{
    /* it takes no fields, but a body sent is read as on every route: a bad one is a 400 */
    struct json_object *doc, *obj;
    bool readable = api_optional_body_object(req, "authorization", &doc, &obj);
    json_object_put(doc);
    struct command *cmd =
        readable ? api_new_command(req, COMMAND_AUTHORIZATION_VOID, render_command) : NULL;
    if (!cmd)
        return;
    cmd->as.authorization_void.lago_id = req->params[0];
    snprintf(cmd->authorization.lago_id, sizeof cmd->authorization.lago_id, "%s", req->params[0]);
    api_submit(req, cmd);
}
