/* api/errors: see errors.h. */
#include "api/errors.h"

#include <stdio.h>

#include "api/api.h"
#include "json/json_in.h"
#include "store/store.h"
#include "sys/wallclock.h"
#include "util/jsonw.h"

#define READ_FAILURE_REPEAT_USEC (60 * 1000000LL) /* one code said again at most this often */

static const char *reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

void api_error_render(struct buf *out, int status, const char *error, const char *code,
                      const char *message)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_kv_int(&w, "status", status);
    jsonw_kv_cstr(&w, "error", error ? error : reason(status));
    if (code)
        jsonw_kv_cstr(&w, "code", code);
    if (message)
        jsonw_kv_cstr(&w, "message", message);
    jsonw_object_end(&w);
}

static void validation_begin(struct jsonw *w, const char *message)
{
    jsonw_object_begin(w);
    jsonw_kv_int(w, "status", 422);
    jsonw_kv_cstr(w, "error", "Unprocessable Entity");
    jsonw_kv_cstr(w, "code", "validation_errors");
    if (message)
        jsonw_kv_cstr(w, "message", message);
    jsonw_key(w, "error_details");
    jsonw_object_begin(w);
}

/* field: [code] or, with a second code (also, or NULL), [code, also] */
static void field_error(struct jsonw *w, const char *field, const char *code, const char *also)
{
    jsonw_key(w, field);
    jsonw_array_begin(w);
    jsonw_cstr(w, code);
    if (also)
        jsonw_cstr(w, also);
    jsonw_array_end(w);
}

static void render_field_refusal(struct buf *out, const char *field, const char *code,
                                 const char *also, const char *message)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    validation_begin(&w, message);
    field_error(&w, field, code, also);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
}

void api_error_render_validation(struct buf *out, const char *field, const char *code,
                                 const char *message)
{
    render_field_refusal(out, field, code, NULL, message);
}

void api_error_render_item_refusals(struct buf *out, const struct command_item_refusal *refusals,
                                    size_t count, const char *message)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    validation_begin(&w, message);
    for (size_t i = 0; i < count; i++) {
        char index[24];
        snprintf(index, sizeof index, "%zu", refusals[i].index);
        jsonw_key(&w, index);
        jsonw_object_begin(&w);
        field_error(&w, refusals[i].field, refusals[i].code, NULL);
        jsonw_object_end(&w);
    }
    jsonw_object_end(&w);
    jsonw_object_end(&w);
}

void api_error_bad_request(struct request *req, const char *what)
{
    struct buf text;
    buf_init(&text);
    buf_printf(&text, "BadRequest: %s", what);
    req->status = 400;
    api_error_render(&req->response, 400, text.data, NULL, NULL);
    buf_free(&text);
}

void api_error_unauthorized(struct request *req)
{
    req->status = 401;
    api_error_render(&req->response, 401, "Unauthorized", NULL, NULL);
}

void api_error_not_found(struct request *req, const char *code)
{
    req->status = 404;
    api_error_render(&req->response, 404, "Not Found", code, NULL);
}

void api_error_validation(struct request *req, const char *field, const char *code)
{
    api_error_validation_message(req, field, code, NULL);
}

void api_error_validation_message(struct request *req, const char *field, const char *code,
                                  const char *message)
{
    req->status = 422;
    api_error_render_validation(&req->response, field, code, message);
}

void api_error_json_in(struct request *req, const struct json_in_error *err)
{
    req->status = 422;
    render_field_refusal(&req->response, err->field, err->code, err->also, err->message);
}

void api_error_validation_fields(struct request *req, const struct api_field_error *errors,
                                 size_t count)
{
    struct jsonw w;
    req->status = 422;
    buf_reset(&req->response);
    jsonw_init(&w, &req->response);
    validation_begin(&w, NULL);
    for (size_t i = 0; i < count; i++)
        field_error(&w, errors[i].field, errors[i].code, NULL);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
}

void api_error(struct request *req, int status, const char *code, const char *message)
{
    req->status = status;
    api_error_render(&req->response, status, NULL, code, message);
}

void api_error_store_read(struct request *req)
{
    struct api *api = req->api;
    int code = store_take_thread_error();
    char message[256];
    if (code)
        snprintf(message, sizeof message, "the store could not be read: %s (%s)",
                 store_error_name(code), store_error_text(code));
    else /* no SQLite failure: memory ran out around the query */
        snprintf(message, sizeof message, "the store could not be read (out of memory?)");
    api_error(req, 500, "store_failed", message);
    if (store_error_lasting(code))
        atomic_store(&api->read_failing, code);
    /* one thread says it: the one that moves the time on */
    int64_t now = wallclock_monotonic_usec();
    int64_t said = atomic_load(&api->read_failure_said_usec);
    if ((said != 0 && code == atomic_load(&api->read_failure_said_code) &&
         now - said < READ_FAILURE_REPEAT_USEC) ||
        !atomic_compare_exchange_strong(&api->read_failure_said_usec, &said, now))
        return;
    atomic_store(&api->read_failure_said_code, code);
    if (code)
        fprintf(stderr, "tallyd: a read failed in the store: %s (%s): %s\n", store_error_name(code),
                store_error_text(code), store_error_advice(code));
    else
        fprintf(stderr, "tallyd: a read failed in the store with no SQLite error (out of "
                        "memory?)\n");
}

bool api_error_render_command(struct command *cmd, const char *not_found_code)
{
    switch (cmd->result) {
    case COMMAND_OK:
    case COMMAND_IDEMPOTENT_REPLAY: return false;
    case COMMAND_NOT_FOUND:
        cmd->http_status = 404;
        api_error_render(&cmd->response, 404, "Not Found",
                         cmd->not_found_code ? cmd->not_found_code : not_found_code, NULL);
        return true;
    case COMMAND_INVALID:
        cmd->http_status = 422;
        api_error_render_validation(&cmd->response, cmd->invalid_field, cmd->invalid_code,
                                    cmd->invalid_message);
        return true;
    case COMMAND_STALE:
        cmd->http_status = 409;
        api_error_render(&cmd->response, 409, NULL, "concurrent_update",
                         "the resource changed while this request was applied; retry it");
        return true;
    case COMMAND_REF_NOT_FOUND:
        cmd->http_status = 404;
        api_error_render(&cmd->response, 404, "Not Found",
                         cmd->missing_ref->not_found
                             ? cmd->missing_ref->not_found
                             : catalog_kind_not_found_code(cmd->missing_ref->kind),
                         NULL);
        return true;
    case COMMAND_IDEMPOTENT_CONFLICT:
        cmd->http_status = 409;
        api_error_render(&cmd->response, 409, NULL, "idempotency_key_reused",
                         "this Idempotency-Key was already used with a different request");
        return true;
    case COMMAND_STORE_FAILED:
    case COMMAND_NOT_DURABLE:
        cmd->http_status = 500;
        api_error_render(&cmd->response, 500, NULL, "store_failed", NULL);
        return true;
    case COMMAND_NOT_ALLOWED:
        cmd->http_status = 405;
        api_error_render(&cmd->response, 405, "Method Not Allowed", cmd->not_allowed_code, NULL);
        return true;
    case COMMAND_INSUFFICIENT_CREDITS: {
        /* what the refusal's look at the rules bought is kept: "nothing" is of the usage */
        char message[256];
        snprintf(message, sizeof message,
                 "wallet %s cannot pay for this usage: at least %lld cents short; "
                 "nothing of the usage was recorded%s",
                 cmd->short_wallet_lago_id, (long long)cmd->short_cents,
                 cmd->short_kept_credits ? " (credits the customer's recurring rules made "
                                           "meanwhile were kept)"
                                         : "");
        cmd->http_status = 402;
        api_error_render(&cmd->response, 402, NULL, "insufficient_credits", message);
        return true;
    }
    }
    return false;
}

void api_error_validation_item(struct request *req, const char *field, size_t index,
                               const char *code)
{
    struct jsonw w;
    char at[24];
    snprintf(at, sizeof at, "%zu", index);
    req->status = 422;
    buf_reset(&req->response);
    jsonw_init(&w, &req->response);
    validation_begin(&w, NULL);
    jsonw_key(&w, field);
    jsonw_object_begin(&w);
    field_error(&w, at, code, NULL);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
}
