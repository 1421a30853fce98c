/* api/events: see events.h. */
#include "api/events.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/fees.h"
#include "json/charge_json.h"
#include "json/event_json.h"
#include "json/event_plain.h"
#include "json/json_in.h"
#include "core/subscription.h"
#include "engine/engine.h"
#include "engine/usage.h"
#include "util/jsonw.h"

/* ---- rendering ------------------------------------------------------------------------------ */

/* About what one event's answer takes (three lago ids, two dates, the ids and properties a
 * client sent): a batch's answer is written in one allocation instead of doubling its way
 * there, copying itself each time. */
#define RENDERED_EVENT_BYTES 512

/* An event's lago_id: its identity fingerprint written as a UUID (version 8, custom). */
void events_lago_id(struct siphash128 fp, char out[UUID_TEXT])
{
    uint8_t b[UUID_LEN];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(fp.hi >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(fp.lo >> (56 - 8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x80);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

struct event_view {
    struct siphash128 fingerprint;
    const char *transaction_id, *external_subscription_id, *code, *properties_json;
    tally_time timestamp, created_at;
    const char *subscription_lago_id, *customer_lago_id;
    bool has_precise_total_amount_cents;
    char precise_total_amount_cents[MONEY_TEXT_MAX]; /* as Lago's serializer writes it */
};

/*
 * The view's precise_total_amount_cents as Lago's V1::EventSerializer writes it,
 * `precise_total_amount_cents&.to_s`, BigDecimal's to_s: at least one decimal ("100.0",
 * "-5.0", "0.5"; an audit found "100"). False if it cannot be written (no amount Tally keeps).
 */
static bool view_precise(struct event_view *v, const money_t *amount)
{
    v->has_precise_total_amount_cents = amount != NULL;
    return !amount || money_format_fraction(*amount, 1, v->precise_total_amount_cents,
                                            sizeof v->precise_total_amount_cents) > 0;
}

static void render_event(struct jsonw *w, const struct event_view *v)
{
    char lago_id[UUID_TEXT];
    events_lago_id(v->fingerprint, lago_id);
    jsonw_object_begin(w);
    jsonw_key_lit(w, "lago_id");
    jsonw_string(w, lago_id, 36);
    jsonw_key_lit(w, "transaction_id");
    jsonw_cstr(w, v->transaction_id);
    jsonw_key_lit(w, "lago_customer_id");
    jsonw_cstr(w, v->customer_lago_id);
    jsonw_key_lit(w, "code");
    jsonw_cstr(w, v->code);
    jsonw_key_lit(w, "timestamp");
    jsonw_time(w, v->timestamp, true);
    jsonw_key_lit(w, "precise_total_amount_cents");
    jsonw_cstr(w, v->has_precise_total_amount_cents ? v->precise_total_amount_cents : NULL);
    jsonw_key_lit(w, "properties");
    jsonw_raw(w, v->properties_json);
    jsonw_key_lit(w, "lago_subscription_id");
    jsonw_cstr(w, v->subscription_lago_id);
    jsonw_key_lit(w, "external_subscription_id");
    jsonw_cstr(w, v->external_subscription_id);
    jsonw_key_lit(w, "created_at");
    jsonw_time(w, v->created_at, false);
    jsonw_object_end(w);
}

/* The accepted events, or the refusal naming the event (by index in a batch). Reads the
 * command alone, so command_done renders it off the writer (render_by_owner). */
static void render_ingest(struct command *cmd, bool batch)
{
    if (cmd->result == COMMAND_INVALID && batch) {
        cmd->http_status = 422;
        api_error_render_item_refusals(&cmd->response, cmd->as.events_ingest.refusals,
                                       cmd->as.events_ingest.refusal_count, cmd->invalid_message);
        return;
    }
    if (api_error_render_command(cmd, "event_not_found"))
        return;
    struct jsonw w;
    cmd->http_status = 200;
    buf_reset(&cmd->response);
    buf_reserve(&cmd->response, cmd->as.events_ingest.count * RENDERED_EVENT_BYTES);
    jsonw_init(&w, &cmd->response);
    jsonw_object_begin(&w);
    jsonw_key(&w, batch ? "events" : "event");
    if (batch)
        jsonw_array_begin(&w);
    for (size_t i = 0; i < cmd->as.events_ingest.count; i++) {
        const struct event *e = &cmd->as.events_ingest.events[i];
        const struct event_result *r = &cmd->as.events_ingest.results[i];
        struct event_view v = {.fingerprint = r->fingerprint,
                               .transaction_id = e->transaction_id,
                               .external_subscription_id = e->external_subscription_id,
                               .code = e->code,
                               .properties_json = e->properties_json,
                               .timestamp = r->timestamp,
                               .created_at = cmd->now,
                               .subscription_lago_id = r->subscription_lago_id,
                               .customer_lago_id = r->customer_lago_id};
        /* (a kept amount is within money's limits, so it always writes) */
        if (!view_precise(&v, e->has_precise_total_amount_cents ? &e->precise_total_amount_cents
                                                                : NULL)) {
            cmd->http_status = 500;
            api_error_render(&cmd->response, 500, NULL, "store_failed", NULL);
            return;
        }
        render_event(&w, &v);
    }
    if (batch)
        jsonw_array_end(&w);
    jsonw_object_end(&w);
}

/* The route's shape, not the path's text: POST /events/ is POST /events (a code review found it
 * answered as a batch) */
static void render_one_event(struct command *cmd)
{
    render_ingest(cmd, false);
}

static void render_batch(struct command *cmd)
{
    render_ingest(cmd, true);
}

/* ---- parsing -------------------------------------------------------------------------------- */

bool events_parse_properties(struct request *req, struct json_object *obj, struct event *e,
                             struct json_in_error *err)
{
    return event_json_properties_of(&req->arena, obj, e, err);
}

static void submit(struct request *req, struct event *events, size_t count,
                   command_render_fn render)
{
    struct command *cmd = api_new_command(req, COMMAND_EVENTS_INGEST, render);
    struct event_result *results = arena_alloc(&req->arena, sizeof *results * count);
    if (!cmd || !results) {
        if (cmd)
            api_error(req, 500, "out_of_memory", NULL);
        return;
    }
    cmd->as.events_ingest.events = events;
    cmd->as.events_ingest.count = count;
    cmd->as.events_ingest.results = results;
    cmd->render_by_owner = true;
    api_submit(req, cmd);
}

void events_create(struct request *req)
{
    struct event *e = arena_alloc(&req->arena, sizeof *e);
    if (!e) {
        api_error(req, 500, "out_of_memory", NULL);
        return;
    }
    if (event_plain_one(req->body.data, req->body.len, &req->arena, e)) {
        submit(req, e, 1, render_one_event); /* the common case, read without json-c */
        return;
    }
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "event", &doc);
    struct json_in_error err = {0};
    if (obj && !event_json_event(&req->arena, obj, e, &err))
        api_error_json_in(req, &err); /* with the message a limit has */
    else if (obj)
        submit(req, e, 1, render_one_event);
    json_object_put(doc);
}

/* Reads one event of a batch from its JSON object (strings in the request's arena). */
typedef bool (*event_reader)(struct request *req, struct json_object *obj, struct event *e,
                             struct json_in_error *err);

/*
 * How a body without a list of events is answered. Lago's routes read the list with
 * params.permit(events: [...]), never require: what leaves no list (no key, null, a scalar,
 * an object, a body that is not an object, which Rails keeps under _json) is nil, and an empty
 * object stays one.
 */
enum events_list {
    /* POST /events/batch: Lago's CreateBatchService answers a blank list 422 no_events (an
     * audit found these 400) */
    EVENTS_TO_INGEST,
    /* POST /events/batch_estimate_instant_fees: Lago's controller groups the list, so an empty
     * one (or an empty object) is no fees; with no list at all it fails (a 500), where Tally
     * says 400 that the list is missing */
    EVENTS_TO_ESTIMATE,
};

/*
 * The body's {"events": [...]}, at most the batch limit of them (and at least one, to ingest),
 * each read by `read`, in the request's arena, into *events and *count; false after answering
 * 400, or 422 naming every event refused by its index (as Lago does: a client can tell which to
 * fix without sending the batch again and again).
 */
static bool body_events(struct request *req, event_reader read, enum events_list kind,
                        struct event **events, size_t *count)
{
    const char *why;
    struct json_object *list = NULL, *doc = json_in_parse(req->body.data, req->body.len, &why);
    *events = NULL;
    *count = 0;
    if (!doc) {
        api_error_bad_request(req, why);
        return false;
    }
    if (json_object_is_type(doc, json_type_object))
        json_object_object_get_ex(doc, "events", &list);
    bool listed = json_object_is_type(list, json_type_array);
    bool empty_object =
        json_object_is_type(list, json_type_object) && json_object_object_length(list) == 0;
    size_t n = listed ? json_object_array_length(list) : 0;
    bool read_all = false;
    if (kind == EVENTS_TO_INGEST && n == 0) {
        api_error_validation(req, "events", "no_events");
    } else if (kind == EVENTS_TO_ESTIMATE && !listed && !empty_object) {
        api_error_bad_request(req, "param is missing or the value is empty: events");
    } else if (n > req->api->config.event_batch_max) {
        api_error_validation(req, "events", "too_many_events");
    } else if (!(*events = arena_alloc(&req->arena, (n ? n : 1) * sizeof **events))) {
        api_error(req, 500, "out_of_memory", NULL);
    } else {
        struct command_item_refusal *refusals = NULL;
        size_t refused = 0;
        read_all = true;
        for (size_t i = 0; i < n; i++) {
            struct json_in_error err = {0};
            if (read(req, json_object_array_get_idx(list, i), &(*events)[i], &err))
                continue;
            if (!refusals && !(refusals = arena_alloc(&req->arena, n * sizeof *refusals))) {
                api_error(req, 500, "out_of_memory", NULL);
                read_all = false;
                break;
            }
            refusals[refused++] = (struct command_item_refusal){i, err.field, err.code};
        }
        if (read_all && refused > 0) {
            req->status = 422;
            api_error_render_item_refusals(&req->response, refusals, refused, NULL);
            read_all = false;
        }
    }
    json_object_put(doc);
    *count = n;
    return read_all;
}

static bool read_event(struct request *req, struct json_object *obj, struct event *e,
                       struct json_in_error *err)
{
    return event_json_event(&req->arena, obj, e, err);
}

void events_create_batch(struct request *req)
{
    struct event *events;
    size_t count;
    if (event_plain_batch(req->body.data, req->body.len, req->api->config.event_batch_max,
                          &req->arena, &events, &count)) {
        submit(req, events, count, render_batch); /* the common case, read without json-c */
        return;
    }
    if (body_events(req, read_event, EVENTS_TO_INGEST, &events, &count))
        submit(req, events, count, render_batch);
}

/* ---- reads ---------------------------------------------------------------------------------- */

/* The stored event as answers show it; false when its ids are past their limits (a damaged
 * store: it has no fingerprint, so no lago_id) or its amount does not read. */
static bool view_of(const struct store_event *e, const uint8_t key[16], struct event_view *out)
{
    struct siphash128 fp;
    money_t amount;
    const char *text = e->precise_total_amount_cents; /* money_format's text, or NULL */
    if (!event_fingerprint(key, e->org_id, e->external_subscription_id, e->transaction_id, &fp) ||
        (text && money_parse(text, strlen(text), &amount) != MONEY_OK))
        return false;
    *out = (struct event_view){.fingerprint = fp,
                               .transaction_id = e->transaction_id,
                               .external_subscription_id = e->external_subscription_id,
                               .code = e->code,
                               .properties_json = e->properties_json,
                               .timestamp = e->timestamp,
                               .created_at = e->created_at,
                               .subscription_lago_id = e->subscription_lago_id,
                               .customer_lago_id = e->customer_lago_id};
    return view_precise(out, text ? &amount : NULL);
}

/* Writer thread: the event the transaction id points at, read from the store by id. */
static void render_found(struct command *cmd)
{
    if (api_error_render_command(cmd, "event_not_found"))
        return;
    uint8_t key[SIPHASH_KEY_LEN];
    if (store_setting_get(cmd->conn, ENGINE_FINGERPRINT_KEY_SETTING, key, sizeof key) != STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    struct jsonw w;
    struct event_view v;
    if (!view_of(&cmd->event, key, &v)) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    cmd->http_status = 200;
    buf_reset(&cmd->response);
    jsonw_init(&w, &cmd->response);
    jsonw_object_begin(&w);
    jsonw_key(&w, "event");
    render_event(&w, &v);
    jsonw_object_end(&w);
}

void events_get(struct request *req)
{
    struct command *cmd = api_new_command(req, COMMAND_EVENT_FIND, render_found);
    if (!cmd)
        return;
    cmd->as.event_find.transaction_id = req->params[0];
    api_submit(req, cmd);
}

/*
 * timestamp_from/_to as Lago's parse_datetime_filter reads them: Ruby's DateTime.iso8601, so
 * every form it takes (audit 9: basic, week and ordinal dates, minutes without seconds were
 * refused), a date left out taken from the organization's clock, as Ruby takes it from the
 * day's. Given blank, it is still read, and refused, as Lago's `if filters.timestamp_from` is
 * true for "". 422 invalid_date under the filter's name where Ruby raises (an audit found a
 * 400); false after answering.
 */
static bool query_instant(struct request *req, const char *name, tally_time now, bool *has,
                          tally_time *out)
{
    const char *text = api_query(req, name);
    *has = text != NULL;
    if (text && !timestamp_parse_ruby_iso8601(text, strlen(text), now, out)) {
        api_error_validation(req, name, "invalid_date");
        return false;
    }
    return true;
}

/*
 * Lago's timestamp_from_started_at (with external_subscription_id): the events from when that
 * subscription started, in place of timestamp_from. Lago's pick of the subscription: the one
 * made last under that external id (the live one, or the pending one beside it, or the one
 * terminated last); a pending one has not started, so it bounds nothing (Lago's started_at is
 * null until then). False after answering 500.
 */
static bool from_started_at(struct request *req, struct store_conn *conn, tally_time now,
                            struct store_event_filter *f, bool *found)
{
    const struct store_subscription_filter by_id = {.status_mask = ~0u,
                                                    .external_id = f->external_subscription_id};
    struct store_subscription *rows;
    size_t count;
    int64_t total;
    if (store_subscription_find(conn, req->org_id, &by_id, now, 0, 1, &rows, &count, &total,
                                &req->arena) != STORE_OK) {
        api_error_store_read(req);
        return false;
    }
    *found = count == 1;
    if (count == 1) {
        bool pending = subscription_status_at(&rows[0].sub, now) == SUBSCRIPTION_PENDING;
        f->has_from = !pending;
        f->from = rows[0].sub.started_at;
    }
    return true;
}

/* Lago's present?, and so its blank?: absent, empty, or ASCII whitespace only. */
static bool query_present(struct request *req, const char *name)
{
    const char *v = api_query(req, name);
    return v && !json_in_blank(v, strlen(v));
}

/*
 * Lago's Queries::EventsQueryFiltersContract: timestamp_from_started_at is "true" or "false",
 * else that error alone (dry-validation runs its rules only once the schema passed); true
 * takes an external_subscription_id and no timestamp_from, each rule that fails named with
 * Lago's message (an audit found both taken silently, the caller's timestamp_from dropped).
 * *started: the flag. False after answering 422.
 */
static bool started_at_filters(struct request *req, bool *started)
{
    const char *flag = api_query(req, "timestamp_from_started_at");
    *started = flag && strcmp(flag, "true") == 0;
    if (flag && !*started && strcmp(flag, "false") != 0) {
        api_error_validation(req, "timestamp_from_started_at", "must be one of: true, false");
        return false;
    }
    struct api_field_error errors[2];
    size_t n = 0;
    if (*started && query_present(req, "timestamp_from"))
        errors[n++] = (struct api_field_error){"timestamp_from",
                                               "cannot be used with timestamp_from_started_at"};
    if (*started && !query_present(req, "external_subscription_id"))
        errors[n++] = (struct api_field_error){"external_subscription_id",
                                               "required with timestamp_from_started_at"};
    if (n > 0)
        api_error_validation_fields(req, errors, n);
    return n == 0;
}

void events_list(struct request *req)
{
    int64_t page, per_page, total;
    /* Lago's EventsQuery filters by a code or a subscription given blank as by any other
     * (where(code: "")), unlike the other lists: no event has a blank one, so none is listed */
    struct store_event_filter f = {.code = api_query(req, "code"),
                                   .external_subscription_id =
                                       api_query(req, "external_subscription_id")};
    bool started, found = false;
    tally_time now = 0;
    /* With the flag, timestamp_from is blank (started_at_filters) and the subscription's
     * started_at bounds in its place; with no such subscription, Lago's query falls back to
     * timestamp_from, which a blank one fails (below). timestamp_to is read after it, as
     * Lago's query reads them. */
    if (!api_pagination(req, &page, &per_page) || !started_at_filters(req, &started))
        return;
    bool timed = api_query(req, "timestamp_from") || api_query(req, "timestamp_to");
    if (((started || timed) && !api_org_now(req, &now)) ||
        (!started && !query_instant(req, "timestamp_from", now, &f.has_from, &f.from)))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    if (started && !from_started_at(req, store_reader_conn(r), now, &f, &found)) {
        api_reader_release(req->api, r);
        return;
    }
    if ((started && !found && !query_instant(req, "timestamp_from", now, &f.has_from, &f.from)) ||
        !query_instant(req, "timestamp_to", now, &f.has_to, &f.to)) {
        api_reader_release(req->api, r);
        return;
    }
    struct store_event *rows;
    size_t count;
    uint8_t key[SIPHASH_KEY_LEN];
    enum store_status s =
        store_event_list(store_reader_conn(r), req->org_id, &f, (page - 1) * per_page, per_page,
                         &rows, &count, &total, &req->arena);
    enum store_status k =
        store_setting_get(store_reader_conn(r), ENGINE_FINGERPRINT_KEY_SETTING, key, sizeof key);
    api_reader_release(req->api, r);
    struct event_view *views = arena_alloc(&req->arena, (count + 1) * sizeof *views);
    bool viewed = s == STORE_OK && (k == STORE_OK || count == 0) && views;
    for (size_t i = 0; viewed && i < count; i++)
        viewed = view_of(&rows[i], key, &views[i]);
    if (!viewed) {
        api_error_store_read(req);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "events");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        render_event(&w, &views[i]);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}

/* ---- estimates: estimate_fees, estimate_instant_fees, batch_estimate_instant_fees ------- */

/* A fee's item.grouped_by (Lago's format_grouped_by in Fees::CreatePayInAdvanceService): the
 * event's values for the charge's group keys, null for one it lacks; {} for a charge not
 * grouped. NULL if memory runs out. */
static const char *grouped_by_json(struct arena *a, const struct charge_model_properties *p,
                                   const struct event *ev)
{
    if (p->group_key_count == 0)
        return "{}";
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    for (size_t i = 0; i < p->group_key_count; i++) {
        jsonw_key(&w, p->group_keys[i]);
        jsonw_cstr(&w, event_property(ev, p->group_keys[i])); /* NULL writes null */
    }
    jsonw_object_end(&w);
    const char *text = buf_failed(&b) ? NULL : arena_strndup(a, b.data, b.len);
    buf_free(&b);
    return text;
}

_Static_assert(USAGE_TAXES_MAX <= MONEY_SPLIT_PARTS_MAX, "a charge's taxes can share its fee's");

/* Lago's applied_taxes of a fee not saved: each tax the charge's fee carries, with its share
 * of the fee's taxes (in proportion to its rate, so that the shares add up to the fee's
 * taxes_amount_cents); false if a share leaves what cents hold. */
static bool write_applied_taxes(struct jsonw *w, const struct usage_charge *c, int64_t tax_cents,
                                const char *currency)
{
    money_t rates[USAGE_TAXES_MAX];
    int64_t shares[USAGE_TAXES_MAX];
    for (size_t i = 0; i < c->tax_count; i++)
        rates[i] = c->taxes[i].rate;
    if (c->tax_count > 0 &&
        money_split_minor_units(tax_cents, rates, c->tax_count, shares) != MONEY_OK)
        return false;
    jsonw_key(w, "applied_taxes");
    jsonw_array_begin(w);
    for (size_t i = 0; i < c->tax_count; i++) {
        const struct usage_tax *tax = &c->taxes[i];
        char rate[MONEY_TEXT_MAX];
        money_format_fraction(money_normalize(tax->rate), 1, rate, sizeof rate);
        jsonw_object_begin(w);
        jsonw_kv_null(w, "lago_id");
        jsonw_kv_null(w, "lago_fee_id");
        jsonw_kv_cstr(w, "lago_tax_id", tax->lago_id);
        jsonw_kv_cstr(w, "tax_name", tax->name);
        jsonw_kv_cstr(w, "tax_code", tax->code);
        jsonw_kv_raw(w, "tax_rate", rate); /* a number in Lago's schema */
        jsonw_kv_cstr(w, "tax_description", tax->description);
        jsonw_kv_int(w, "amount_cents", shares[i]);
        jsonw_kv_cstr(w, "amount_currency", currency);
        jsonw_kv_null(w, "created_at");
        jsonw_object_end(w);
    }
    jsonw_array_end(w);
    return true;
}

/* The fee's taxes are what the event changes in the usage's taxes rounded once (fee by fee in
 * the plan's order), so that the fees' totals add up to exactly what the event's debit takes;
 * `taxes_precise` is the charge's own taxes' change before rounding (in cents). False if its
 * taxes cannot be shared in cents. Written by api/fees, as an invoice's fees are: Lago's
 * estimate_fees renders its FeeSerializer with applied_taxes, estimate_instant_fees its
 * FeeEstimateObject (Fees::EstimateInstant::BaseService), which has no taxes (0, the total
 * the amount) and its unit amount in cents (unit_amount_cents; an audit found it in the
 * currency's units, 100 times smaller, and taxes added). */
static bool render_fee(struct jsonw *w, const struct command *cmd, size_t index,
                       const struct usage_charge *c, const struct usage_estimate *est,
                       int64_t tax_cents, money_t taxes_precise)
{
    const struct usage *u = cmd->as.fees_estimate.usages[index];
    const struct store_subscription *row = &cmd->as.fees_estimate.subscriptions[index];
    const struct event *ev = &cmd->as.fees_estimate.priced[index];
    bool instant = cmd->as.fees_estimate.instant;
    char units[MONEY_TEXT_MAX];
    money_format_fraction(money_normalize(est->units), 1, units, sizeof units);
    /* Lago's precise_unit_amount: the fee over its units, in currency units (FeeSerializer),
     * in cents (an instant estimate's unit_amount_cents) */
    money_t fee = money_from_int(est->amount_cents), per_unit = money_from_int(0);
    if (!money_is_zero(est->units) &&
        (instant || money_from_minor_units(est->amount_cents, u->exponent, &fee) == MONEY_OK) &&
        money_div(fee, est->units, 15, MONEY_ROUND_HALF_UP, &per_unit) != MONEY_OK)
        per_unit = money_from_int(0);
    if (instant) { /* Lago's instant estimate: taxes_amount_cents and taxes_rate 0 */
        tax_cents = 0;
        taxes_precise = money_from_int(0);
    }
    const char *grouped_by = grouped_by_json(cmd->arena, &est->bucket->properties, ev);
    char filter_id[UUID_TEXT];
    const char *values = est->bucket->values_json; /* NULL: the default bucket, no filter's */
    const char *filter_name = NULL;
    if (!grouped_by || (values && (!charge_json_filter_id(c->lago_id, values, filter_id) ||
                                   !(filter_name = charge_json_filter_display_name(
                                         cmd->arena, est->bucket->invoice_display_name, values)))))
        return false;
    struct fee_view f = {
        .shape = instant ? FEE_ESTIMATE : FEE_OBJECT,
        .charge_lago_id = c->lago_id,
        .charge_filter_lago_id = values ? filter_id : NULL, /* the filter that priced it */
        .subscription_lago_id = row->sub.lago_id,
        .external_subscription_id = row->sub.external_id,
        .customer_lago_id = row->customer_lago_id,
        .external_customer_id = row->customer_external_id,
        .item = {.type = "charge",
                 .code = c->metric_code,
                 .name = c->metric_name,
                 .description = c->metric_description,
                 /* Lago's fallback: the charge's name on invoices, else its metric's */
                 .invoice_display_name =
                     c->invoice_display_name ? c->invoice_display_name : c->metric_name,
                 .filters_json = est->bucket->values_json,
                 .filter_invoice_display_name = filter_name,
                 .lago_item_id = c->metric_lago_id, /* Lago's item of a charge fee: its metric */
                 .item_type = "BillableMetric",
                 .grouped_by_json = grouped_by},
        .pay_in_advance = true,
        .invoiceable = c->invoiceable,
        .currency = u->currency,
        .exponent = u->exponent,
        .amount_cents = est->amount_cents,
        .taxes_amount_cents = tax_cents,
        .taxes_precise_cents = taxes_precise,
        .taxes_rate = instant ? money_from_int(0) : c->tax_rate,
        .units = units,
        .total_aggregated_units = units,
        .precise_unit_amount = per_unit,
        .events_count = 1,
        .payment_status = "pending",
        .has_dates = true,
        .from_date = u->from,
        .to_date = u->period_end - TIMESTAMP_USEC_PER_SEC, /* the period's, as current usage */
        /* the one sent (instant estimates); Lago's estimate_fees names a random id for an
         * event it never keeps, Tally none */
        .event_transaction_id = instant ? ev->transaction_id : NULL,
    };
    jsonw_object_begin(w);
    if (!fees_write_members(w, &f))
        return false;
    /* Lago's FeeObject has them; its FeeEstimateObject (instant estimates) does not */
    if (!instant && !write_applied_taxes(w, c, tax_cents, u->currency))
        return false;
    jsonw_object_end(w);
    return true;
}

/* The fees one event of the command would bring, each as if it came alone (none for an event
 * a batch passed over); false if one leaves what cents hold. */
static bool render_event_fees(struct jsonw *w, const struct command *cmd, size_t index)
{
    const struct usage *u = cmd->as.fees_estimate.usages[index];
    const struct event *ev = &cmd->as.fees_estimate.priced[index];
    money_t taxes; /* the usage's, unrounded, as the fees before this one leave them */
    if (!u)
        return true;
    if (!usage_taxes_brought(u, &taxes))
        return false;
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        struct usage_estimate est;
        money_t own_before, own_after, taxes_after;
        int64_t brought, rounded_before, rounded_after, amount_after;
        if (!usage_charge_estimated(c, ev->code, cmd->as.fees_estimate.instant))
            continue;
        if (!usage_estimate(u, c, ev, cmd->now, &est) ||
            !usage_charge_brought_amount(u, c, &brought) ||
            __builtin_add_overflow(brought, est.amount_cents, &amount_after) ||
            !usage_charge_taxes(c, brought, &own_before) ||
            !usage_charge_taxes(c, amount_after, &own_after) ||
            money_sub(own_after, own_before, &own_after) != MONEY_OK ||
            money_add(taxes, own_after, &taxes_after) != MONEY_OK ||
            !usage_taxes_cents(taxes, &rounded_before) ||
            !usage_taxes_cents(taxes_after, &rounded_after) ||
            !render_fee(w, cmd, index, c, &est, rounded_after - rounded_before, own_after))
            return false;
        taxes = taxes_after;
    }
    return true;
}

/* An event of a batch to estimate, where its fees go: its subscription's group, ranked by
 * the group's first event, then its own place. */
struct estimate_place {
    int64_t subscription_id;
    size_t group_rank, index;
};

static int by_subscription(const void *a, const void *b)
{
    const struct estimate_place *x = a, *y = b;
    if (x->subscription_id != y->subscription_id)
        return x->subscription_id < y->subscription_id ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int by_group(const void *a, const void *b)
{
    const struct estimate_place *x = a, *y = b;
    if (x->group_rank != y->group_rank)
        return x->group_rank < y->group_rank ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/*
 * The order of the command's events in the answer: Lago's batch controller groups the events
 * by external_subscription_id (Ruby's group_by: the groups in the order of their first events,
 * each in the events' order) and estimates group by group. A subscription has one external id,
 * so its subscription's id groups an event alike. In the command's arena; NULL if memory runs
 * out. Sorted twice, n log n: a batch holds up to --max-batch events.
 */
static struct estimate_place *estimate_order(struct command *cmd)
{
    size_t n = cmd->as.fees_estimate.count;
    struct estimate_place *places = arena_alloc(cmd->arena, n * sizeof *places);
    if (!places)
        return NULL;
    for (size_t i = 0; i < n; i++)
        places[i] = (struct estimate_place){cmd->as.fees_estimate.subscriptions[i].sub.id, 0, i};
    qsort(places, n, sizeof *places, by_subscription);
    for (size_t i = 0; i < n; i++)
        places[i].group_rank = i > 0 && places[i].subscription_id == places[i - 1].subscription_id
                                   ? places[i - 1].group_rank
                                   : places[i].index;
    qsort(places, n, sizeof *places, by_group);
    return places;
}

/* Writer thread, before any write of the batch: nothing changes. */
static void render_estimate(struct command *cmd)
{
    if (api_error_render_command(cmd, "subscription_not_found"))
        return;
    struct estimate_place *order = estimate_order(cmd);
    if (!order) {
        cmd->http_status = 500;
        api_error_render(&cmd->response, 500, NULL, "out_of_memory", NULL);
        return;
    }
    struct jsonw w;
    buf_reset(&cmd->response);
    jsonw_init(&w, &cmd->response);
    jsonw_object_begin(&w);
    jsonw_key(&w, "fees");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < cmd->as.fees_estimate.count; i++) {
        if (!render_event_fees(&w, cmd, order[i].index)) {
            cmd->http_status = 422;
            buf_reset(&cmd->response);
            api_error_render_validation(&cmd->response, "properties", "value_is_out_of_range",
                                        NULL);
            return;
        }
    }
    jsonw_array_end(&w);
    jsonw_object_end(&w);
    cmd->http_status = 200;
}

/*
 * One event to estimate, from its JSON object; the transaction id only where Lago takes one.
 * An external_subscription_id that names none (absent, null, blank, or not an id) is "", which
 * no subscription has: 404 subscription_not_found, Lago's answer (estimate_fees:
 * Events::ValidateCreationService's first check; the instant ones: Event#subscription finds
 * none). A code absent, null or blank is "", which no metric has: estimate_fees' 404
 * billable_metric_not_found, an instant estimate's charge matching none, as Lago's (an audit
 * found these 422 value_is_mandatory).
 */
static bool parse_estimated(struct request *req, struct json_object *obj, bool instant,
                            struct event *e, struct json_in_error *err)
{
    *e = (struct event){0};
    if (!json_object_is_type(obj, json_type_object))
        return json_in_refuse(err, "event", "invalid_type");
    struct json_in_error unread = {0};
    if (!json_in_required_id(obj, "external_subscription_id", SUBSCRIPTION_EXTERNAL_ID_MAX,
                             &req->arena, &e->external_subscription_id, &unread)) {
        if (strcmp(unread.code, "out_of_memory") == 0)
            return json_in_refuse(err, unread.field, unread.code);
        e->external_subscription_id = "";
    }
    enum json_in_result code =
        json_in_string(obj, "code", EVENT_CODE_MAX, &req->arena, &e->code, err);
    if (code == JSON_IN_INVALID)
        return false;
    if (code != JSON_IN_VALUE || json_in_blank(e->code, strlen(e->code)))
        e->code = "";
    /* estimate_fees checks the timestamp's form as an event's and prices at the clock's now;
     * an object or an array is none, as Lago's `permit` drops it (an audit found "garbage"
     * taken, where Lago answers invalid_format) */
    struct json_object *ts;
    struct event stamped = {0};
    if (!instant && json_object_object_get_ex(obj, "timestamp", &ts) &&
        !json_object_is_type(ts, json_type_object) && !json_object_is_type(ts, json_type_array) &&
        !event_json_timestamp(obj, &stamped, err))
        return false;
    return (!instant || json_in_id(obj, "transaction_id", EVENT_TRANSACTION_ID_MAX, &req->arena,
                                   &e->transaction_id, err) != JSON_IN_INVALID) &&
           events_parse_properties(req, obj, e, err) &&
           /* Lago's estimate takes it too: a dynamic charge's fee is the event's own amount */
           event_json_precise(obj, e, err);
}

static void submit_estimate(struct request *req, const struct event *events, size_t count,
                            bool instant, bool batch)
{
    struct command *cmd = api_new_command(req, COMMAND_FEES_ESTIMATE, render_estimate);
    if (!cmd)
        return;
    cmd->as.fees_estimate.events = events;
    cmd->as.fees_estimate.count = count;
    cmd->as.fees_estimate.instant = instant;
    cmd->as.fees_estimate.batch = batch;
    req->idempotency_key = NULL; /* it changes nothing: there is nothing to replay */
    api_submit(req, cmd);
}

/* POST /events/estimate_fees and /events/estimate_instant_fees: {"event": {...}}. */
static void estimate_one(struct request *req, bool instant)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "event", &doc);
    struct event *e = obj ? arena_alloc(&req->arena, sizeof *e) : NULL;
    struct json_in_error err = {0};
    if (obj && !e)
        api_error(req, 500, "out_of_memory", NULL);
    else if (e && !parse_estimated(req, obj, instant, e, &err))
        api_error_json_in(req, &err);
    else if (e)
        submit_estimate(req, e, 1, instant, false);
    json_object_put(doc);
}

void events_estimate_fees(struct request *req)
{
    estimate_one(req, false); /* Lago's takes no transaction id */
}

void events_estimate_instant_fees(struct request *req)
{
    estimate_one(req, true);
}

static bool read_estimated(struct request *req, struct json_object *obj, struct event *e,
                           struct json_in_error *err)
{
    return parse_estimated(req, obj, true, e, err);
}

/* POST /events/batch_estimate_instant_fees: {"events": [...]}, each estimated alone, at most
 * as many as a batch of events may hold; none is no fees (Lago's controller groups nothing). */
void events_batch_estimate_instant_fees(struct request *req)
{
    size_t count;
    struct event *events;
    if (!body_events(req, read_estimated, EVENTS_TO_ESTIMATE, &events, &count))
        return;
    if (count > 0) {
        submit_estimate(req, events, count, true, true);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "fees");
    jsonw_array_begin(&w);
    jsonw_array_end(&w);
    jsonw_object_end(&w);
}
