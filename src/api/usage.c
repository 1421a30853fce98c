/* api/usage: see usage.h. */
#include "api/usage.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "core/aggregation.h"
#include "core/tz.h"
#include "engine/usage.h"
#include "util/jsonw.h"

static void write_units(struct jsonw *w, const char *key, money_t units)
{
    char text[MONEY_TEXT_MAX];
    money_format_fraction(money_normalize(units), 1, text, sizeof text); /* Lago: "12.0" */
    jsonw_kv_cstr(w, key, text);
}

static void write_date(struct jsonw *w, const char *key, tally_time t, const struct tz_zone *zone)
{
    struct tz_local local;
    char text[16];
    jsonw_key(w, key);
    if (!zone || tz_to_local(zone, t, &local) != TZ_OK) {
        jsonw_null(w);
        return;
    }
    snprintf(text, sizeof text, "%04d-%02d-%02d", (int)local.civil.date.year,
             (int)local.civil.date.month, (int)local.civil.date.day);
    jsonw_cstr(w, text);
}

/* One charge's usage; false if its amount cannot be computed (an overflow). */
static bool write_charge(struct jsonw *w, const struct usage *u, const struct usage_charge *c,
                         tally_time now, int64_t *amount_cents, money_t *taxes)
{
    struct usage_amount total;
    if (!usage_charge_amount(u, c, now, &total))
        return false;
    *amount_cents = total.amount_cents;
    *taxes = usage_charge_taxes(c, total.amount_cents);
    jsonw_object_begin(w);
    write_units(w, "units", total.units);
    jsonw_kv_int(w, "events_count", total.events_count);
    jsonw_kv_int(w, "amount_cents", total.amount_cents);
    jsonw_kv_cstr(w, "amount_currency", u->currency);
    jsonw_key(w, "charge");
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", c->lago_id);
    jsonw_kv_cstr(w, "charge_model", c->charge_model);
    jsonw_kv_cstr(w, "invoice_display_name", c->invoice_display_name);
    jsonw_object_end(w);
    jsonw_key(w, "billable_metric");
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", c->metric_lago_id);
    jsonw_kv_cstr(w, "name", c->metric_name);
    jsonw_kv_cstr(w, "code", c->metric_code);
    jsonw_kv_cstr(w, "aggregation_type", billable_metric_aggregation_name(c->metric.aggregation));
    jsonw_object_end(w);
    jsonw_key(w, "filters");
    jsonw_array_begin(w);
    for (size_t k = 0; c->filter_count > 0 && k <= c->filter_count; k++) {
        const struct usage_bucket *b = &c->buckets[k];
        struct usage_amount part;
        if (!usage_bucket_amount(u, c, b, now, &part))
            return false;
        jsonw_object_begin(w);
        write_units(w, "units", part.units);
        jsonw_kv_int(w, "amount_cents", part.amount_cents);
        jsonw_kv_int(w, "events_count", part.events_count);
        jsonw_kv_cstr(w, "invoice_display_name", b->invoice_display_name);
        jsonw_kv_raw(w, "values", b->values_json);
        jsonw_object_end(w);
    }
    jsonw_array_end(w);
    jsonw_key(w, "grouped_usage");
    jsonw_array_begin(w);
    jsonw_array_end(w);
    jsonw_object_end(w);
    return true;
}

/* Writer thread: the live usage is valid for the length of this call. */
static void render_usage(struct command *cmd)
{
    struct request *req = cmd->owner;
    if (api_error_render_command(cmd, "subscription_not_found"))
        return;
    const struct usage *u = cmd->usage;
    const char *tz = cmd->usage_subscription.customer_timezone
                         ? cmd->usage_subscription.customer_timezone
                         : "UTC";
    const struct tz_zone *zone = tzdb_get(req->api->tzdb, tz, strlen(tz));
    struct jsonw w;
    buf_reset(&cmd->response);
    jsonw_init(&w, &cmd->response);
    jsonw_object_begin(&w);
    jsonw_key(&w, "customer_usage");
    jsonw_object_begin(&w);
    jsonw_key(&w, "from_datetime");
    jsonw_time(&w, u->from, false);
    jsonw_key(&w, "to_datetime");
    jsonw_time(&w, u->to - TIMESTAMP_USEC_PER_SEC, false);
    write_date(&w, "issuing_date", u->to - TIMESTAMP_USEC_PER_SEC, zone);
    jsonw_kv_cstr(&w, "currency", u->currency);
    jsonw_kv_null(&w, "lago_invoice_id");
    jsonw_key(&w, "charges_usage");
    jsonw_array_begin(&w);
    int64_t amount = 0;
    money_t taxes = money_from_int(0);
    bool ok = true;
    for (size_t i = 0; ok && i < u->charge_count; i++) {
        int64_t charge_cents;
        money_t charge_taxes;
        ok = write_charge(&w, u, &u->charges[i], cmd->now, &charge_cents, &charge_taxes) &&
             !__builtin_add_overflow(amount, charge_cents, &amount) &&
             money_add(taxes, charge_taxes, &taxes) == MONEY_OK;
    }
    jsonw_array_end(&w);
    /* Taxes are summed unrounded and rounded once, as Lago's invoice does. */
    int64_t tax_cents = 0;
    ok = ok && money_to_minor_units(taxes, 0, MONEY_ROUND_HALF_UP, &tax_cents) == MONEY_OK;
    jsonw_kv_int(&w, "amount_cents", amount);
    jsonw_kv_int(&w, "taxes_amount_cents", tax_cents);
    jsonw_kv_int(&w, "total_amount_cents", amount + tax_cents);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
    if (!ok) {
        cmd->http_status = 422;
        api_error_render_validation(&cmd->response, "usage", "amount_out_of_range");
        return;
    }
    cmd->http_status = 200;
}

void usage_current(struct request *req)
{
    const char *sub = api_query(req, "external_subscription_id");
    if (!sub || !*sub) {
        api_error_bad_request(req,
                              "param is missing or the value is empty: external_subscription_id");
        return;
    }
    struct command *cmd = api_new_command(req, COMMAND_USAGE_READ, render_usage);
    if (!cmd)
        return;
    cmd->as.usage_read.external_customer_id = req->params[0];
    cmd->as.usage_read.external_subscription_id = arena_strndup(&req->arena, sub, strlen(sub));
    api_submit(req, cmd);
}
