/*
 * api/subscriptions: see subscriptions.h.
 *
 * The HTTP thread reads what a subscription request depends on (the plan, the live
 * subscription and its plan) and hands it to the writer, which refuses the command as stale
 * if any of it changed in between; the decisions themselves (new, same plan, upgrade,
 * downgrade) are core/subscription's.
 */
#include "api/subscriptions.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "json/json_in.h"
#include "api/plans.h"
#include "core/subscription.h"
#include "core/tz.h"
#include "sys/entropy.h"
#include "util/jsonw.h"

/* ---- rendering ------------------------------------------------------------------------------ */

/* A stored plan as a subscription sees it: its own definition if it has one. */
static struct catalog_item as_subscribed(const struct catalog_item *plan, const char *own_body)
{
    struct catalog_item item = *plan;
    if (own_body)
        item.body = own_body;
    return item;
}

static void time_or_null_as(struct jsonw *w, const char *key, bool has, tally_time t, bool millis)
{
    jsonw_key(w, key);
    if (has)
        jsonw_time(w, t, millis);
    else
        jsonw_null(w);
}

static void time_or_null(struct jsonw *w, const char *key, bool has, tally_time t)
{
    time_or_null_as(w, key, has, t, false);
}

static void write_local_date(struct jsonw *w, const struct tz_zone *zone, tally_time t)
{
    struct tz_local local;
    if (!zone || tz_to_local(zone, t, &local) != TZ_OK) {
        jsonw_null(w);
        return;
    }
    char text[16];
    snprintf(text, sizeof text, "%04d-%02d-%02d", (int)local.civil.date.year,
             (int)local.civil.date.month, (int)local.civil.date.day);
    jsonw_cstr(w, text);
}

/* Plan changes around `sub`: where it came from, where it goes and when. */
static void render_plan_changes(struct jsonw *w, const struct subscription *sub, tally_time now,
                                const struct tz_zone *zone, struct store_conn *conn,
                                struct arena *a)
{
    struct store_subscription other;
    jsonw_key(w, "previous_plan_code");
    if (sub->previous_id &&
        store_subscription_get(conn, sub->org_id, sub->previous_id, &other, a) == STORE_OK)
        jsonw_cstr(w, other.sub.plan_code);
    else
        jsonw_null(w);
    /* the plan that replaced it or will (Lago's next_subscription, the upgrade's too), unless
     * that change was canceled */
    bool next = sub->next_id &&
                store_subscription_get(conn, sub->org_id, sub->next_id, &other, a) == STORE_OK &&
                !(other.sub.has_canceled_at && other.sub.canceled_at <= now);
    bool scheduled = next && subscription_status_at(&other.sub, now) == SUBSCRIPTION_PENDING;
    jsonw_kv_cstr(w, "next_plan_code", next ? other.sub.plan_code : NULL);
    jsonw_key(w, "downgrade_plan_date");
    if (scheduled)
        write_local_date(w, zone, other.sub.started_at);
    else
        jsonw_null(w);
}

/*
 * Lago's trial_ended_at (subscription_trial_ended): counted from the first start under the
 * external id, not from sub's own (a plan change restarted the trial: an audit). Looked up only
 * for a plan with a trial; false when none shows or the store cannot say.
 */
static bool trial_ended(struct store_conn *conn, const struct subscription *sub,
                        const struct plan_terms *terms, tally_time now, tally_time *out)
{
    if (!terms || money_sign(terms->trial_period_days) <= 0)
        return false;
    tally_time first = sub->started_at;
    enum store_status s = store_subscription_initial_start(conn, sub->org_id, sub->customer_id,
                                                           sub->external_id, now, &first);
    if (s == STORE_ERROR)
        return false;
    return subscription_trial_ended(sub, terms, first, now, out);
}

static void render_periods(struct jsonw *w, const struct subscription *sub,
                           const struct plan_terms *terms, const struct tz_zone *zone,
                           tally_time now, struct store_conn *conn)
{
    /* Lago's serializer writes its DatesService's charges_from/to_datetime: the charges'
     * period, the month of a yearly or semiannual plan with bill_charges_monthly (an audit
     * found the year here), the one current usage covers; the fee keeps the plan's period */
    /* As its charges_from/to_datetime, within the subscription's life: none before it starts
     * (pending, canceled), from its start in a first period, to its termination in a last one
     * (an audit found the bare period: Jan 1 for a subscription made on Jan 10, which its
     * current usage counts from) */
    struct period p;
    enum subscription_status status = subscription_status_at(sub, now);
    bool known = terms && zone &&
                 (status == SUBSCRIPTION_ACTIVE || status == SUBSCRIPTION_TERMINATED) &&
                 subscription_charges_period(sub, terms, zone, now, &p) == PERIOD_OK;
    time_or_null(w, "current_billing_period_started_at", known,
                 known ? subscription_usage_from(sub, &p) : 0);
    /* Lago reports a period's end as its last second, a termination as its instant */
    tally_time end = subscription_end(sub);
    bool cut = status == SUBSCRIPTION_TERMINATED && known && end < p.end;
    time_or_null(w, "current_billing_period_ending_at", known,
                 !known ? 0
                 : cut  ? end
                        : p.end - TIMESTAMP_USEC_PER_SEC); /* p only if known */
    tally_time trial_end;
    bool ended = trial_ended(conn, sub, terms, now, &trial_end);
    time_or_null(w, "trial_ended_at", ended, ended ? trial_end : 0);
}

static void render_subscription(struct jsonw *w, const struct store_subscription *row,
                                tally_time now, struct request *req, struct store_conn *conn)
{
    const struct subscription *sub = &row->sub;
    const char *tz = row->customer_timezone ? row->customer_timezone : "UTC";
    const struct tz_zone *zone = tzdb_get(req->api->tzdb, tz, strlen(tz));
    struct catalog_item stored, plan;
    struct plan_terms terms;
    /* the plan it had, even deleted: a terminated subscription keeps its history */
    bool has_plan =
        store_catalog_get_any_by_lago_id(conn, sub->org_id, CATALOG_PLAN, sub->plan_lago_id,
                                         &stored, &req->arena) == STORE_OK;
    if (has_plan) {
        plan = as_subscribed(&stored, sub->plan_body);
        has_plan = plans_terms(&plan, &terms);
    }
    enum subscription_status status = subscription_status_at(sub, now);
    tally_time end = subscription_end(sub);

    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", sub->lago_id);
    jsonw_kv_cstr(w, "external_id", sub->external_id);
    jsonw_kv_cstr(w, "lago_customer_id", row->customer_lago_id);
    jsonw_kv_cstr(w, "external_customer_id", row->customer_external_id);
    jsonw_kv_cstr(w, "billing_time",
                  sub->billing_time == PERIOD_ANNIVERSARY ? "anniversary" : "calendar");
    jsonw_kv_cstr(w, "name", sub->name);
    jsonw_kv_cstr(w, "purchase_order_number", sub->purchase_order_number);
    jsonw_kv_cstr(w, "plan_code", has_plan ? plan.code : sub->plan_code);
    /* the plan's price as subscribed (with its overrides) */
    jsonw_key(w, "plan_amount_cents");
    if (has_plan)
        jsonw_int(w, terms.amount_cents);
    else
        jsonw_null(w);
    jsonw_kv_cstr(w, "plan_amount_currency", has_plan ? terms.currency : NULL);
    jsonw_kv_cstr(w, "status", subscription_status_name(status));
    jsonw_key(w, "created_at");
    jsonw_time(w, sub->created_at, false);
    jsonw_key(w, "subscription_at");
    jsonw_time(w, sub->subscription_at, false);
    /* Lago's serializer writes this one alone with milliseconds (iso8601(3)) */
    time_or_null_as(w, "started_at",
                    status != SUBSCRIPTION_PENDING && status != SUBSCRIPTION_CANCELED,
                    sub->started_at, true);
    time_or_null(w, "ending_at", sub->has_ending_at, sub->ending_at);
    time_or_null(w, "terminated_at", status == SUBSCRIPTION_TERMINATED, end);
    time_or_null(w, "canceled_at", status == SUBSCRIPTION_CANCELED, sub->canceled_at);
    render_plan_changes(w, sub, now, zone, conn, &req->arena);
    render_periods(w, sub, has_plan ? &terms : NULL, zone, now, conn);
    /* Lago's defaults, the only choices taken until the Invoices issue bills terminations
     * (read_termination_choices): a credit note for the unused time of a plan paid in
     * advance, an invoice for unbilled usage */
    jsonw_kv_cstr(w, "on_termination_credit_note",
                  has_plan && terms.pay_in_advance ? "credit" : NULL);
    jsonw_kv_cstr(w, "on_termination_invoice", "generate");
    /* Lago's V1::SubscriptionSerializer members of what Tally does not serve (progressive
     * billing, invoice grouping and custom sections, payment methods), as Lago answers a
     * subscription at their defaults: a client reads them unconditionally (an audit) */
    jsonw_kv_bool(w, "progressive_billing_disabled", false);
    jsonw_kv_bool(w, "consolidate_invoice", true);
    api_write_no_payment_method(w);
    jsonw_kv_raw(w, "applicable_usage_thresholds", "[]");
    jsonw_kv_raw(w, "applied_invoice_custom_sections", "[]");
    jsonw_key(w, "plan");
    if (has_plan)
        plans_resource.render(w, &plan, conn, &req->arena, now);
    else
        jsonw_null(w);
    jsonw_object_end(w);
}

static void render_one(struct buf *out, const struct store_subscription *row, tally_time now,
                       struct request *req, struct store_conn *conn)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "subscription");
    render_subscription(&w, row, now, req, conn);
    jsonw_object_end(&w);
}

/* Writer thread: render the subscription as saved, with its customer, at the command's clock. */
static void render_command(struct command *cmd)
{
    struct request *req = cmd->owner;
    struct store_subscription row;
    if (api_error_render_command(cmd, "subscription_not_found"))
        return;
    if (store_subscription_get(cmd->conn, cmd->org_id, cmd->subscription.id, &row, cmd->arena) !=
        STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        api_error_render_command(cmd, NULL);
        return;
    }
    cmd->http_status = 200;
    render_one(&cmd->response, &row, cmd->now, req, cmd->conn);
}

/* ---- termination choices ------------------------------------------------------------------ */

/*
 * Lago's on_termination_invoice and on_termination_credit_note, on update and DELETE (its
 * query string; its create ignores them). Tally bills no termination yet (the Invoices issue) and
 * answers Lago's defaults (render_subscription), so a value equal to that answer is taken and any
 * other choice refused, 422 not_supported with a message, rather than taken and ignored (an audit):
 * once terminations are billed, such a subscription would have been ended with the opposite choice.
 */
struct termination_choices {
    const char *invoice;     /* borrowed from the request's body or query; NULL if none */
    const char *credit_note; /* the same */
    bool invalid;            /* one that is not a string (a body's) */
    const char *invalid_field;
};

static const char *const invoice_choices[] = {"generate", "skip", NULL};
/* Lago's model's enum (its DELETE documents the first three) */
static const char *const credit_note_choices[] = {"credit", "skip", "refund", "offset", NULL};

static bool is_one_of(const char *value, const char *const *set)
{
    for (size_t i = 0; set[i]; i++)
        if (strcmp(value, set[i]) == 0)
            return true;
    return false;
}

static void body_choice(struct json_object *obj, const char *key, const char **out,
                        struct termination_choices *c)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !v)
        return; /* null: Lago's blank, none */
    if (!json_object_is_type(v, json_type_string)) {
        if (!c->invalid)
            c->invalid_field = key;
        c->invalid = true;
        return;
    }
    *out = json_object_get_string(v);
}

static struct termination_choices body_choices(struct json_object *obj)
{
    struct termination_choices c = {0};
    body_choice(obj, "on_termination_invoice", &c.invoice, &c);
    body_choice(obj, "on_termination_credit_note", &c.credit_note, &c);
    return c;
}

/*
 * Checks the choices as Lago's Subscriptions::ValidateService does (blank is none; a value
 * outside its enums is invalid_value) and refuses on_termination_invoice other than generate,
 * every subscription's answer. *other_credit_note: a credit-note choice other than credit,
 * refused where the plan is paid in advance (SUBSCRIPTION_CREDIT_NOTE_UNSERVED; the writer
 * checks the plan of an existing subscription). False with the refusal in *err.
 */
static bool read_termination_choices(const struct termination_choices *c, bool *other_credit_note,
                                     struct json_in_error *err)
{
    *other_credit_note = false;
    if (c->invalid)
        return json_in_refuse(err, c->invalid_field, "invalid_value");
    bool has_invoice = c->invoice && *c->invoice, has_note = c->credit_note && *c->credit_note;
    if (has_invoice && !is_one_of(c->invoice, invoice_choices))
        return json_in_refuse(err, "on_termination_invoice", "invalid_value");
    if (has_note && !is_one_of(c->credit_note, credit_note_choices))
        return json_in_refuse(err, "on_termination_credit_note", "invalid_value");
    if (has_invoice && strcmp(c->invoice, "generate") != 0) {
        err->message = "Tally bills no termination yet: on_termination_invoice can only be "
                       "generate (its answer)";
        return json_in_refuse(err, "on_termination_invoice", "not_supported");
    }
    *other_credit_note = has_note && strcmp(c->credit_note, "credit") != 0;
    return true;
}

/* ---- create ------------------------------------------------------------------------------- */

/* Whether obj's `key` is a string of white space alone: Lago's "no value" for ending_at
 * (ValidateService takes it blank, ActiveRecord casts it to nil), as null is (an audit found
 * "" refused, invalid_date, where a form's empty field sends it), which json_in_instant reads
 * as null; but a blank subscription_at is refused, as Lago's ValidateService refuses it. */
static bool is_blank_text(struct json_object *obj, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
           json_in_value_blank(v);
}

static bool read_instant(struct json_object *obj, const char *key, bool *has, tally_time *out,
                         struct json_in_error *err)
{
    enum json_in_result r = json_in_instant(obj, key, out, err);
    *has = r == JSON_IN_VALUE;
    return r != JSON_IN_INVALID;
}

/* subscription_at: read_instant, a blank one refused (is_blank_text) */
static bool read_subscription_at(struct json_object *obj, bool *has, tally_time *out,
                                 struct json_in_error *err)
{
    if (is_blank_text(obj, "subscription_at"))
        return json_in_refuse(err, "subscription_at", "invalid_date");
    return read_instant(obj, "subscription_at", has, out, err);
}

/* Lago's subscription fields of features not served yet (progressive billing, activation) */
static const char *const unserved_fields[] = {"usage_thresholds", "activation_rules", NULL};

static bool parse_request(struct request *req, struct json_object *obj,
                          struct subscription_request *rq, const char **plan_code,
                          struct json_object **plan_overrides, struct json_in_error *err)
{
    const char *billing_time = NULL;
    struct json_object *overrides;
    enum json_in_result ending, po;
    if (!json_in_refuse_unserved(obj, unserved_fields, err) ||
        /* an integer id is its decimal text, as Lago's `to_s` makes it (an audit found it
         * refused, invalid_type) */
        !json_in_required_id(obj, "external_customer_id", CUSTOMER_EXTERNAL_ID_MAX, &req->arena,
                             &rq->external_customer_id, err) ||
        /* none names no plan: read_context's 404, as Lago's controller finds none by it */
        json_in_string(obj, "plan_code", CATALOG_CODE_MAX, &req->arena, plan_code, err) ==
            JSON_IN_INVALID ||
        json_in_id(obj, "external_id", SUBSCRIPTION_EXTERNAL_ID_MAX, &req->arena, &rq->external_id,
                   err) == JSON_IN_INVALID ||
        json_in_string(obj, "name", SUBSCRIPTION_NAME_MAX, &req->arena, &rq->name, err) ==
            JSON_IN_INVALID ||
        (po = json_in_string(obj, "purchase_order_number", SUBSCRIPTION_PURCHASE_ORDER_MAX,
                             &req->arena, &rq->purchase_order_number, err)) == JSON_IN_INVALID ||
        json_in_string(obj, "billing_time", 16, &req->arena, &billing_time, err) ==
            JSON_IN_INVALID ||
        !read_subscription_at(obj, &rq->has_subscription_at, &rq->subscription_at, err) ||
        (ending = json_in_instant(obj, "ending_at", &rq->ending_at, err)) == JSON_IN_INVALID)
        return false;
    rq->has_ending_at = ending == JSON_IN_VALUE;
    rq->ending_at_null = ending == JSON_IN_NULL;
    rq->has_purchase_order_number = po != JSON_IN_ABSENT;
    /* Lago's Subscriptions::CreateService strips both (an audit found " s1 " kept: a
     * subscription events for "s1" could not name, and a second one made beside it) */
    if ((rq->external_id && !(rq->external_id = json_in_strip(&req->arena, rq->external_id))) ||
        (rq->name && !(rq->name = json_in_strip(&req->arena, rq->name))))
        return false;
    /* Lago: without an external_id, the subscription takes the customer's; a blank one is
     * none (an audit found "   " made a subscription no event could name) */
    if (!rq->external_id || json_in_blank(rq->external_id, strlen(rq->external_id)))
        rq->external_id = rq->external_customer_id;
    if (billing_time && strcmp(billing_time, "calendar") != 0 &&
        strcmp(billing_time, "anniversary") != 0)
        return json_in_refuse(err, "billing_time", "value_is_invalid");
    rq->billing_time = billing_time && strcmp(billing_time, "anniversary") == 0 ? PERIOD_ANNIVERSARY
                                                                                : PERIOD_CALENDAR;
    if (json_object_object_get_ex(obj, "plan_overrides", &overrides) && overrides)
        *plan_overrides = overrides;
    if (rq->has_ending_at && rq->has_subscription_at && rq->ending_at <= rq->subscription_at)
        return json_in_refuse(err, "ending_at", "invalid_date");
    return true;
}

/* Reads, as of now, what the writer will check again: the plan, the live subscription. */
static bool read_context(struct request *req, struct subscription_request *rq,
                         const char *plan_code, struct json_object *overrides)
{
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    struct catalog_item plan;
    struct store_subscription live;
    tally_time now;
    bool ok = false;
    enum store_status s = plan_code ? store_catalog_get(conn, req->org_id, CATALOG_PLAN, plan_code,
                                                        &plan, &req->arena)
                                    : STORE_NOT_FOUND;
    if (s == STORE_NOT_FOUND) {
        api_error_not_found(req, "plan_not_found");
        goto done;
    }
    if (s != STORE_OK)
        goto fail;
    struct json_in_error err = {0};
    if (overrides && !plans_apply_overrides(req, &plan, overrides, &rq->plan_body, &err)) {
        /* an unknown tax is a 404, as POST /plans answers it (an audit found a 422) */
        if (err.code && strcmp(err.code, "tax_not_found") == 0)
            api_error_not_found(req, err.code);
        else
            api_error_validation_message(req, err.field, err.code, err.message);
        goto done;
    }
    struct catalog_item subscribed = as_subscribed(&plan, rq->plan_body);
    if (!plans_terms(&subscribed, &rq->plan))
        goto fail;
    memcpy(rq->plan_lago_id, plan.lago_id, sizeof rq->plan_lago_id);
    rq->plan_code = plan.code;
    rq->plan_updated_at = plan.updated_at;
    api_reader_release(req->api, r);
    r = NULL;
    if (!api_org_now(req, &now))
        return false;
    r = api_reader_acquire(req->api);
    conn = store_reader_conn(r);
    s = store_subscription_live(conn, req->org_id, rq->external_id, now, &live, &req->arena);
    if (s == STORE_OK) {
        rq->current_id = live.sub.id;
        rq->current_updated_at = live.sub.updated_at;
        /* A plan deleted since keeps its subscriptions; changing away from it is an upgrade. */
        if (store_catalog_get_by_lago_id(conn, req->org_id, CATALOG_PLAN, live.sub.plan_lago_id,
                                         &plan, &req->arena) == STORE_OK) {
            struct catalog_item current = as_subscribed(&plan, live.sub.plan_body);
            plans_terms(&current, &rq->current_plan);
        }
    } else if (s != STORE_NOT_FOUND) {
        goto fail;
    }
    ok = true;
    goto done;
fail:
    api_error_store_read(req);
done:
    if (r)
        api_reader_release(req->api, r);
    return ok;
}

void subscriptions_create(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "subscription", &doc);
    struct command *cmd =
        obj ? api_new_command(req, COMMAND_SUBSCRIPTION_CREATE, render_command) : NULL;
    struct json_in_error err = {0};
    const char *plan_code = NULL;
    struct json_object *overrides = NULL;
    if (!cmd)
        goto done;
    struct subscription_request *rq = &cmd->as.subscription_create;
    /* on_termination_* are not read here: Lago's create neither validates nor keeps them (its
     * UpdateService and TerminateService do), so they change nothing there either */
    if (!parse_request(req, obj, rq, &plan_code, &overrides, &err)) {
        if (err.code)
            api_error_validation_message(req, err.field, err.code, err.message);
        else
            api_error(req, 500, "out_of_memory", NULL);
        goto done;
    }
    if (!read_context(req, rq, plan_code, overrides))
        goto done;
    if (!entropy_uuid(rq->lago_id) || !entropy_uuid(rq->customer_lago_id)) {
        api_error(req, 500, "out_of_entropy", NULL);
        goto done;
    }
    api_submit(req, cmd);
done:
    json_object_put(doc);
}

/* ---- reads --------------------------------------------------------------------------------- */

struct status_filter {
    unsigned mask;
    bool invalid;
};

static void add_status(const char *value, void *ctx)
{
    struct status_filter *f = ctx;
    for (int st = SUBSCRIPTION_PENDING; st <= SUBSCRIPTION_CANCELED; st++) {
        if (strcmp(value, subscription_status_name((enum subscription_status)st)) == 0) {
            f->mask |= 1u << st;
            return;
        }
    }
    f->invalid = true;
}

/* Reads ?status= (and status[]=): false, answered, if one is not a status. */
static bool read_status_filter(struct request *req, struct status_filter *filter)
{
    api_query_each(req, "status[]", add_status, filter);
    api_query_each(req, "status", add_status, filter);
    if (filter->invalid)
        api_error_bad_request(req, "status must be pending, active, terminated or canceled");
    return !filter->invalid;
}

/*
 * The list's statuses as Lago's newest reads them: its controller takes status[] alone
 * (active when none is named), and SubscriptionsQuery filters by them only when each is a
 * status, else lists every status (valid_status?). Tally also reads a lone ?status= of its
 * own; one that is not a status is dropped, as Lago drops the lone argument. Each was a 400
 * without a code (an audit).
 */
static unsigned list_statuses(struct request *req)
{
    const unsigned every = (1u << (SUBSCRIPTION_CANCELED + 1)) - 1;
    struct status_filter listed = {0}, lone = {0};
    api_query_each(req, "status[]", add_status, &listed);
    api_query_each(req, "status", add_status, &lone);
    unsigned mask = listed.invalid ? every : listed.mask | (lone.invalid ? 0 : lone.mask);
    return mask ? mask : 1u << SUBSCRIPTION_ACTIVE;
}

/* The newest subscription with the path's external id whose status is in `mask`. */
static enum store_status subscription_with_status(struct request *req, struct store_conn *conn,
                                                  unsigned mask, tally_time now,
                                                  struct store_subscription *out)
{
    struct store_subscription *rows = NULL;
    size_t count = 0;
    int64_t total = 0;
    const struct store_subscription_filter f = {.status_mask = mask, .external_id = req->params[0]};
    enum store_status s = store_subscription_find(conn, req->org_id, &f, now, 0, 1, &rows, &count,
                                                  &total, &req->arena);
    if (s == STORE_OK && count == 0)
        s = STORE_NOT_FOUND;
    if (s == STORE_OK)
        *out = rows[0];
    return s;
}

void subscriptions_get(struct request *req)
{
    tally_time now;
    struct status_filter filter = {0};
    if (!api_org_now(req, &now) || !read_status_filter(req, &filter))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_subscription row;
    /* the live one; Lago's ?status= names another (a terminated one, say) */
    enum store_status s =
        filter.mask ? subscription_with_status(req, store_reader_conn(r), filter.mask, now, &row)
                    : store_subscription_live(store_reader_conn(r), req->org_id, req->params[0],
                                              now, &row, &req->arena);
    if (s == STORE_OK)
        render_one(api_respond(req, 200), &row, now, req, store_reader_conn(r));
    api_reader_release(req->api, r);
    if (s == STORE_NOT_FOUND)
        api_error_not_found(req, "subscription_not_found");
    else if (s != STORE_OK)
        api_error_store_read(req);
}

/* Lago's `overridden` (and `overriden`, the spelling it still reads): subscriptions on a plan
 * of their own (plan_overrides), or on the plan itself. */
static enum store_presence read_overridden(struct request *req)
{
    int v = api_query_flag_given(req, api_query(req, "overridden") ? "overridden" : "overriden");
    return v < 0 ? STORE_PRESENCE_ANY : v ? STORE_PRESENCE_SOME : STORE_PRESENCE_NONE;
}

void subscriptions_list(struct request *req)
{
    /* Tally has no billing entities: refused rather than answered unfiltered */
    static const char *const unserved[] = {"billing_entity_codes"};
    int64_t page, per_page, total = 0, customer_id = 0;
    tally_time now;
    if (!api_pagination(req, &page, &per_page) ||
        !api_refuse_unserved(req, unserved, sizeof unserved / sizeof unserved[0]) ||
        !api_org_now(req, &now))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    const char *customer = api_query_filter(req, "external_customer_id");
    struct store_subscription *rows = NULL;
    size_t count = 0;
    enum store_status s = STORE_OK;
    if (customer) {
        struct customer c;
        s = store_customer_get(conn, req->org_id, customer, &c, &req->arena);
        if (s == STORE_OK)
            customer_id = c.id;
    }
    if (s == STORE_OK)
        s = store_subscription_find(
            conn, req->org_id,
            &(struct store_subscription_filter){.customer_id = customer_id,
                                                .status_mask = list_statuses(req),
                                                .plan_code = api_query_filter(req, "plan_code"),
                                                .external_id = api_query_filter(req, "external_id"),
                                                .currency = api_query_filter(req, "currency"),
                                                .own_plan = read_overridden(req),
                                                .lago_order = true},
            now, (page - 1) * per_page, per_page, &rows, &count, &total, &req->arena);
    if (s == STORE_ERROR) {
        api_reader_release(req->api, r);
        api_error_store_read(req);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "subscriptions");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        render_subscription(&w, &rows[i], now, req, conn);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, s == STORE_OK ? total : 0);
    jsonw_object_end(&w);
    api_reader_release(req->api, r);
}

/* ---- changes ------------------------------------------------------------------------------- */

/* Lago's ?status= of PUT and DELETE, which subscription of the external id they act on: false,
 * answered, if it is neither active nor pending. */
static bool read_active_or_pending(struct request *req, bool *pending)
{
    const char *status = api_query(req, "status");
    if (status && strcmp(status, "pending") != 0 && strcmp(status, "active") != 0) {
        api_error_bad_request(req, "status must be active or pending");
        return false;
    }
    *pending = status && strcmp(status, "pending") == 0;
    return true;
}

void subscriptions_update(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "subscription", &doc);
    struct command *cmd =
        obj ? api_new_command(req, COMMAND_SUBSCRIPTION_UPDATE, render_command) : NULL;
    struct json_in_error err = {0};
    if (!cmd)
        goto done;
    struct subscription_update *u = &cmd->as.subscription_update;
    u->external_id = req->params[0];
    if (!read_active_or_pending(req, &u->pending_only))
        goto done;
    enum json_in_result name =
        json_in_string(obj, "name", SUBSCRIPTION_NAME_MAX, &req->arena, &u->name, &err);
    enum json_in_result po =
        name == JSON_IN_INVALID
            ? JSON_IN_ABSENT
            : json_in_string(obj, "purchase_order_number", SUBSCRIPTION_PURCHASE_ORDER_MAX,
                             &req->arena, &u->purchase_order_number, &err);
    struct json_object *ending;
    u->has_ending_at = json_object_object_get_ex(obj, "ending_at", &ending);
    u->ending_at_null = u->has_ending_at && (!ending || is_blank_text(obj, "ending_at"));
    bool has_ending = false;
    struct termination_choices choices = body_choices(obj);
    if (name == JSON_IN_INVALID || po == JSON_IN_INVALID ||
        !json_in_refuse_unserved(obj, unserved_fields, &err) ||
        (u->has_ending_at && !u->ending_at_null &&
         !read_instant(obj, "ending_at", &has_ending, &u->ending_at, &err)) ||
        !read_subscription_at(obj, &u->has_subscription_at, &u->subscription_at, &err) ||
        !read_termination_choices(&choices, &u->other_credit_note, &err)) {
        api_error_validation_message(req, err.field, err.code, err.message);
        goto done;
    }
    /* Lago's PUT may replace the subscription's own plan; Tally does that through POST (the
     * same external_id and plan_code): refused here rather than ignored (an audit) */
    struct json_object *overrides;
    if (json_object_object_get_ex(obj, "plan_overrides", &overrides)) {
        api_error_validation(req, "plan_overrides", "not_supported");
        goto done;
    }
    u->has_name = name != JSON_IN_ABSENT;
    u->has_purchase_order_number = po != JSON_IN_ABSENT;
    api_submit(req, cmd);
done:
    json_object_put(doc);
}

void subscriptions_terminate(struct request *req)
{
    struct command *cmd = api_new_command(req, COMMAND_SUBSCRIPTION_TERMINATE, render_command);
    if (!cmd)
        return;
    /* Lago's terminate reads status=pending as the pending subscription and anything else as
     * the active one (where its update, and Tally's, refuse another value) */
    const char *status = api_query(req, "status");
    cmd->as.subscription_terminate.pending_only = status && strcmp(status, "pending") == 0;
    struct json_in_error err = {0};
    const struct termination_choices choices = {.invoice = api_query(req, "on_termination_invoice"),
                                                .credit_note =
                                                    api_query(req, "on_termination_credit_note")};
    if (!read_termination_choices(&choices, &cmd->as.subscription_terminate.other_credit_note,
                                  &err)) {
        api_error_validation_message(req, err.field, err.code, err.message);
        return;
    }
    cmd->as.subscription_terminate.external_id = req->params[0];
    api_submit(req, cmd);
}
