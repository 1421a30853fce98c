/* api/test_clock: see test_clock.h. */
#include "api/test_clock.h"

#include <json-c/json.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/json_in.h"
#include "sys/wallclock.h"
#include "util/jsonw.h"

static void render_clock(struct buf *out, tally_time now, bool is_test_clock)
{
    struct jsonw w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "test_clock");
    jsonw_object_begin(&w);
    jsonw_key(&w, "now");
    jsonw_time(&w, now, true);
    jsonw_kv_bool(&w, "enabled", is_test_clock);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
}

void test_clock_get(struct request *req)
{
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_org org;
    enum store_status s = store_org_get(store_reader_conn(r), req->org_id, &org, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        api_error(req, 500, "store_failed", NULL);
        return;
    }
    render_clock(api_respond(req, 200), org.has_test_clock ? org.test_clock_now : wallclock_now(),
                 org.has_test_clock);
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
    const char *why;
    struct json_object *root = json_in_parse(req->body.data, req->body.len, &why);
    if (!root) {
        api_error_bad_request(req, why);
        return;
    }
    struct json_object *obj = json_in_root(root, "test_clock");
    const char *to_text = NULL;
    struct json_in_error err;
    tally_time to;
    if (!obj) {
        api_error_bad_request(req, "param is missing or the value is empty: test_clock");
    } else if (json_in_string(obj, "to", 64, &req->arena, &to_text, &err) != JSON_IN_VALUE) {
        api_error_validation(req, "to", "value_is_mandatory");
    } else if (!timestamp_parse_iso8601(to_text, strlen(to_text), &to)) {
        api_error_validation(req, "to", "invalid_date");
    } else {
        struct command *cmd = arena_alloc(&req->arena, sizeof *cmd);
        if (!cmd) {
            api_error(req, 500, "out_of_memory", NULL);
        } else {
            cmd->kind = COMMAND_TEST_CLOCK_ADVANCE;
            cmd->org_id = req->org_id;
            cmd->as.test_clock_advance.to = to;
            cmd->render = render_advance;
            api_submit(req, cmd);
        }
    }
    json_object_put(root);
}
