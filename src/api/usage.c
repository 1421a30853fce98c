/* api/usage: see usage.h. */
#include "api/usage.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "engine/engine.h"
#include "engine/usage_view.h"
#include "sys/wallclock.h"

/* Writer thread: the live usage is valid for the length of this call. */
static void render_usage(struct command *cmd)
{
    if (api_error_render_command(cmd, "subscription_not_found"))
        return;
    buf_reset(&cmd->response);
    const struct usage_view_filter *filter = cmd->as.usage_read.filter;
    const char *unmatched = filter && (filter->billable_metric_code || filter->charge_lago_id)
                                ? usage_view_filter_unmatched(cmd->usage, filter)
                                : NULL;
    if (unmatched) {
        cmd->http_status = 404;
        api_error_render(&cmd->response, 404, "Not Found", unmatched, NULL);
        return;
    }
    if (!usage_view_render(cmd->usage, cmd->as.usage_read.filter, &cmd->response)) {
        buf_reset(&cmd->response);
        cmd->http_status = 422;
        api_error_render_validation(&cmd->response, "usage", "amount_out_of_range", NULL);
        return;
    }
    cmd->http_status = 200;
}

/* The writer's published answer, if it is still the answer: same customer, same period. */
static bool answer_from_view(struct request *req, const char *external_subscription_id)
{
    struct usage_views *views = engine_usage_views(req->api->engine);
    struct usage_view *v = usage_views_get(views, req->org_id, external_subscription_id);
    if (!v)
        return false;
    tally_time now = wallclock_now();
    bool current = now < v->valid_until && strcmp(v->external_customer_id, req->params[0]) == 0;
    if (current) {
        usage_view_touch(v, now);
        atomic_fetch_add(&views->answered, 1);
        buf_append(api_respond(req, 200), v->body, v->body_len);
    }
    usage_view_release(v);
    return current;
}

/*
 * Lago's query arguments: apply_taxes, and the charges of one billable metric or one charge;
 * NULL in *out for the whole answer. False after answering 422 for what Tally does not serve:
 * charges have no code here, usage is not grouped on demand, and usage since the subscription
 * started is not kept (ignoring them would answer a filter with everything).
 */
static bool read_filter(struct request *req, struct usage_view_filter **out)
{
    static const char *const unserved[] = {"charge_code", "filter_by_charge_code", "group",
                                           "filter_by_group", "filter_by_presentation"};
    *out = NULL;
    if (!api_refuse_unserved(req, unserved, sizeof unserved / sizeof unserved[0]))
        return false;
    if (api_query_flag(req, "full_usage", false)) {
        api_error_validation(req, "full_usage", "not_supported");
        return false;
    }
    const char *metric = api_query(req, "billable_metric_code");
    const char *charge = api_query(req, "charge_id");
    if (!charge)
        charge = api_query(req, "filter_by_charge_id");
    bool taxes = api_query_flag(req, "apply_taxes", true);
    if (!(metric && *metric) && !(charge && *charge) && taxes)
        return true;
    struct usage_view_filter *f = arena_alloc(&req->arena, sizeof *f);
    if (!f) {
        api_error(req, 500, "out_of_memory", NULL);
        return false;
    }
    *f = (struct usage_view_filter){
        .billable_metric_code = metric && *metric ? metric : NULL,
        .charge_lago_id = charge && *charge ? charge : NULL,
        .apply_taxes = taxes,
    };
    *out = f;
    return true;
}

void usage_current(struct request *req)
{
    /* Lago reads it without requiring it: none names no subscription of the customer, 404
     * subscription_not_found once the customer is found (it was a 400 without a code: an
     * audit) */
    const char *sub = api_query(req, "external_subscription_id");
    if (!sub)
        sub = "";
    struct usage_view_filter *filter;
    if (!read_filter(req, &filter))
        return;
    if (!filter && answer_from_view(req, sub)) /* the published answer is the whole one */
        return;
    struct command *cmd = api_new_command(req, COMMAND_USAGE_READ, render_usage);
    if (!cmd)
        return;
    cmd->as.usage_read.external_customer_id = req->params[0];
    cmd->as.usage_read.external_subscription_id = arena_strndup(&req->arena, sub, strlen(sub));
    cmd->as.usage_read.filter = filter;
    api_submit(req, cmd);
}
