/*
 * api/request: one HTTP request as the handlers see it.
 *
 * A request owns an arena: everything allocated while serving it (parsed JSON copies,
 * commands, rendered bodies' scratch) is freed at once when the connection reports the
 * request complete. Handlers answer either at once (api_respond_*) or by submitting a
 * command to the engine (api_submit), in which case the answer is sent after the commit.
 *
 * Threads: a request is served by the HTTP thread that owns its connection; while a command
 * is in the engine, only the writer thread touches that command.
 */
#ifndef TALLY_API_REQUEST_H
#define TALLY_API_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/command.h"
#include "util/arena.h"
#include "util/buf.h"

struct api;
struct conn_slot;
struct MHD_Connection;
struct catalog_resource;

#define API_PATH_PARAMS_MAX 3

enum request_state {
    REQUEST_READING, /* receiving the body */
    REQUEST_WAITING, /* a command is in the engine; the connection is suspended */
    REQUEST_ANSWERED,
    REQUEST_SYNCED, /* the writer wrote its wallet journal out for this read: dispatch again */
};

struct request {
    struct arena arena;
    struct api *api;             /* borrowed: lives as long as the server */
    struct MHD_Connection *conn; /* borrowed from libmicrohttpd for the request's life */
    struct conn_slot *slot;      /* the connection's in api/conn_watch (NULL: not watched) */
    const char *method;
    const char *path;      /* decoded, without the query string */
    const char *raw_path;  /* as sent, without the query string: routes split it, then decode */
    const char *raw_query; /* as sent, after the '?' ("" when none) */
    size_t target_len;     /* of the request-target as libmicrohttpd first handed it out */
    int route;             /* index in the route table, -1 when unmatched */
    const char *params[API_PATH_PARAMS_MAX]; /* path segments the route captures */
    const struct catalog_resource *resource; /* the route's, for catalog handlers */
    /* a change's counted members (catalog_resource.count), for the writer's answer */
    const char *counted;

    struct buf body; /* the request body as received */
    bool body_too_large;
    /* its route is unknown or its key refused (api.c, body_wanted): its body is read and
     * thrown away, not kept, and the answer (401, 404, 405) comes once it is read */
    bool body_unwanted;
    uint64_t body_received; /* bytes of body read, kept or thrown away (api.c, access_cb) */
    bool must_close; /* answered with Connection: close: what follows on it cannot be trusted */

    int64_t org_id;              /* set once the API key is checked */
    const char *idempotency_key; /* the header, NULL when absent */

    enum request_state state;
    int status;
    struct buf response; /* JSON (or text for /metrics) */
    const char *content_type;
    const char *allow;   /* a 405's Allow header, in the arena; NULL: none */
    struct command *cmd; /* when submitted */
    /* submitted, but handed to the writer only on libmicrohttpd's next call (api.c, submit);
     * counted in api->waiting already */
    bool unsubmitted;
    bool wallets_synced; /* wallet tables hold every debit acknowledged before this request */
    bool answering;      /* counted in api->answering: read whole, its answer not yet sent */
    int64_t started_usec;
};

#endif
