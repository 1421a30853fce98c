/* api/test_clock: see test_clock.h. */
#include "api/test_clock.h"

#include <json-c/json.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "core/event.h"
#include "core/timestamp.h"
#include "json/json_in.h"
#include "util/jsonw.h"

static void render_clock(struct buf *out, tally_time now, bool is_test_clock)
{
    /* Every microsecond the clock keeps (a `to` may carry them): the instant shown is the
     * clock's own, so an advance to it stays put. Cut to the millisecond, as events show
     * time, it read up to 999 us before the clock, and sending it back was
     * cannot_move_backwards (found by an audit). */
    char text[TIMESTAMP_TEXT_MAX];
    timestamp_format_micros(now, text);
    struct jsonw w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "test_clock");
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "now", text);
    jsonw_kv_bool(&w, "enabled", is_test_clock);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
}

void test_clock_get(struct request *req)
{
    tally_time now;
    bool is_test_clock;
    if (!api_org_clock(req, &now, &is_test_clock))
        return; /* answered */
    render_clock(api_respond(req, 200), now, is_test_clock);
}

static void render_advance(struct command *cmd)
{
    if (api_error_render_command(cmd, "test_clock_not_found"))
        return;
    cmd->http_status = 200;
    buf_reset(&cmd->response);
    render_clock(&cmd->response, cmd->now, true);
}

void test_clock_advance(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object_or_empty(req, "test_clock", &doc);
    const char *to_text = NULL;
    struct json_in_error err = {0};
    enum json_in_result r;
    tally_time to;
    struct command *cmd;
    if (!obj) {
        /* answered */
    } else if ((r = json_in_string(obj, "to", 64, &req->arena, &to_text, &err)) ==
               JSON_IN_INVALID) {
        api_error_validation(req, err.field, err.code); /* a number or boolean: invalid_type */
    } else if (r != JSON_IN_VALUE) {
        api_error_validation(req, "to", "value_is_mandatory");
    } else if (!timestamp_parse_iso8601(to_text, strlen(to_text), &to)) {
        api_error_validation(req, "to", "invalid_date");
    } else if (to > EVENT_CLOCK_MAX) { /* (before the clock is refused by the writer) */
        api_error_validation_message(req, "to", "value_is_out_of_range",
                                     "a clock goes up to 9998-12-31T09:59:59Z, the last "
                                     "instant an event may carry: in 9998 in every time zone");
    } else if ((cmd = api_new_command(req, COMMAND_TEST_CLOCK_ADVANCE, render_advance))) {
        cmd->as.test_clock_advance.to = to;
        api_submit(req, cmd);
    }
    json_object_put(doc);
}
