/*
 * api/errors: Lago's error answers, so Lago's clients recognise them.
 *
 *   400 {"status":400,"error":"BadRequest: <what>"}
 *   401 {"status":401,"error":"Unauthorized"}
 *   404 {"status":404,"error":"Not Found","code":"<resource>_not_found"}
 *   405/409/413/500/503 {"status":N,"error":"<reason>","code":"<code>","message":"<text>"}
 *   422 {"status":422,"error":"Unprocessable Entity","code":"validation_errors",
 *        "error_details":{"<field>":["<code>"]}} (two codes where Lago names two), and
 *        Tally's "message" where it has one
 *
 * Tally adds a human "message" where Lago has none to give (limits, idempotency), keeping
 * Lago's keys so that clients that read only those still work.
 *
 * Threads: any (they only write into the request).
 */
#ifndef TALLY_API_ERRORS_H
#define TALLY_API_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/request.h"

/* A named limit as text, for a message built at compile time: "at most " API_LIMIT_TEXT(N). */
#define API_LIMIT_TEXT_OF(x) #x
#define API_LIMIT_TEXT(x) API_LIMIT_TEXT_OF(x)

void api_error_bad_request(struct request *req, const char *what);
void api_error_unauthorized(struct request *req);
void api_error_not_found(struct request *req, const char *code);
void api_error_validation(struct request *req, const char *field, const char *code);
/* The same with Tally's message (none when NULL). */
void api_error_validation_message(struct request *req, const char *field, const char *code,
                                  const char *message);
/* 422 for a refusal read from a body: its field with its code, and its second code after it
 * when it names one (json_in_error.also), and its message when it has one. */
struct json_in_error;
void api_error_json_in(struct request *req, const struct json_in_error *err);
/* A field's validation error, for answers that name several at once. */
struct api_field_error {
    const char *field, *code;
};
/* 422 naming each field with its code, in the order given (each field once). */
void api_error_validation_fields(struct request *req, const struct api_field_error *errors,
                                 size_t count);
/* 422 for one item of a list argument, as dry-validation names it: {field: {"index": [code]}}. */
void api_error_validation_item(struct request *req, const char *field, size_t index,
                               const char *code);
/* Any other status: reason phrase from the status, Tally's code and message. */
void api_error(struct request *req, int status, const char *code, const char *message);

/*
 * 500 store_failed for a read the store failed on this HTTP thread: the message names
 * SQLite's code (store_take_thread_error; api_reader_acquire cleared it), and so does a line
 * on stderr, with what to do (at most once a minute for one code); a damaged file also turns
 * /health to 503. An audit found such answers without the message API.md promises, nothing
 * on stderr and /health "ok", on a store a restore had damaged.
 */
void api_error_store_read(struct request *req);

/* Renders into a buffer (for answers rendered on the writer thread). */
void api_error_render(struct buf *out, int status, const char *error, const char *code,
                      const char *message);
void api_error_render_validation(struct buf *out, const char *field, const char *code,
                                 const char *message);
/* A batch's refusal, each refused item keyed by its index (in the order given, each index
 * once): "error_details": {"3": {"field": ["code"]}, "7": {...}}. */
void api_error_render_item_refusals(struct buf *out, const struct command_item_refusal *refusals,
                                    size_t count, const char *message);

/*
 * Writer thread: renders the answer of a command that did not succeed (not found, refused,
 * idempotency conflict) into cmd->response. Returns false when the command succeeded and the
 * caller renders the resource.
 */
bool api_error_render_command(struct command *cmd, const char *not_found_code);

#endif
