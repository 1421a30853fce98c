/*
 * api/api: the HTTP face of Tally (libmicrohttpd), and what handlers share.
 *
 * Threads: libmicrohttpd runs API_THREADS_DEFAULT event-loop threads (epoll); each request is
 * served start to finish by one of them. Reads are answered on that thread from a read-only
 * store connection (a consistent WAL snapshot, never blocking the writer). Writes become
 * commands: the connection is suspended, the engine's writer applies and commits, and its
 * `done` resumes the connection, so no HTTP thread ever waits on a commit.
 *
 * Limits, each named and answered with a clear error: body size (413), header size (431,
 * answered by libmicrohttpd), JSON nesting (400), string lengths (422), page size (400).
 */
#ifndef TALLY_API_API_H
#define TALLY_API_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/key_cache.h"
#include "api/metrics.h"
#include "api/request.h"
#include "engine/engine.h"
#include "store/store.h"
#include "sys/tzdb.h"

#define API_THREADS_DEFAULT 2
#define API_BODY_MAX_DEFAULT ((size_t)1 << 20) /* 1 MiB */
/* How far past the body limit a declared body is still read (and thrown away) to answer 413
 * to a client that is sending it; further, it is refused before it is read (api.c). */
#define API_BODY_DISCARD_MAX ((uint64_t)64 << 20)
#define API_HEADER_MAX ((size_t)32 << 10) /* per connection, headers included */
/* A query string's bytes and arguments at most: libmicrohttpd keeps each argument in the
 * connection's API_HEADER_MAX bytes and, when they do not fit, neither answers nor releases
 * the request (api.c, uri_cb). Well under what fits, well over what any route reads. */
#define API_QUERY_MAX ((size_t)8 << 10)
#define API_QUERY_ARGS_MAX 256
#define API_CONNECTIONS_MAX 4096
/* Descriptors tallyd needs besides its client connections: the store and its readers (a
 * database, its -wal and -shm each), the lock, the snapshot, each HTTP thread's epoll and wake
 * descriptors, the listening socket, stdio, time zone files being read. */
#define API_FILES_RESERVE(threads) (64u + 8u * (threads))
#define API_CONNECTION_TIMEOUT_SEC 60
#define API_PAGE_SIZE_DEFAULT 100 /* Lago's default per_page */
#define API_PAGE_SIZE_MAX 1000
#define API_DRAIN_TIMEOUT_SEC 30

struct api_config {
    const char *host;     /* numeric IPv4 or IPv6 address, for messages */
    uint16_t port;        /* the port bound (api_bind's, port 0's too) */
    int listen_fd;        /* api_bind's socket: taken by api_start, which closes it on failure */
    const char *data_dir; /* for the read-only connections */
    unsigned threads;
    size_t body_max;
    size_t event_batch_max; /* events per POST /events/batch (EVENT_BATCH_DEFAULT..LIMIT) */
    bool log_requests;      /* one JSON line per request on stderr */
    bool realtime_http;     /* HTTP threads under SCHED_FIFO (sys/rtprio); refused if not allowed */
    /* client connections held at once, at most API_CONNECTIONS_MAX (0: that); fewer when the
     * open-files limit allows no more (tallyd.c) */
    unsigned connections_max;
};

struct reader_pool;
struct conn_watch;

struct api {
    struct api_config config;
    struct engine *engine;       /* borrowed; outlives the api */
    struct tzdb *tzdb;           /* borrowed */
    struct reader_pool *readers; /* owned */
    struct key_cache keys;       /* API keys verified, by hash */
    struct metrics metrics;
    struct MHD_Daemon *daemon;
    struct conn_watch *watch; /* closes connections whose client left unseen (owned) */
    _Atomic int64_t waiting;  /* requests whose command is in the engine */
    /* Requests read whole and being answered (a body still arriving is not: the drain does
     * not wait for a client that stalls mid-body, which no change can come of). */
    _Atomic int64_t answering;
    /* A read the store failed (api_error_store_read): the lasting failure a read met (a
     * damaged file: SQLITE_CORRUPT, SQLITE_NOTADB), which /health reports until a restart,
     * and the last line said of one, so that a client polling a broken read does not print a
     * line per request. */
    _Atomic int read_failing;
    _Atomic int read_failure_said_code;
    _Atomic int64_t read_failure_said_usec;
    _Atomic bool draining; /* shutting down: no new changes */
    _Atomic bool stopping; /* drained: no command at all, the daemon is about to stop */
};

/*
 * Binds host:port, before the store is opened: a start refused for its address then makes no
 * store (an audit found an empty one left in a mistyped --data-dir), and the port is held
 * through the start's read-back. api_start listens: until then a client is refused at once,
 * not left waiting in the backlog. Returns the socket and the port bound in *bound (port 0
 * picks one), or -1 with a message that says what to do. Main thread.
 */
int api_bind(const char *host, uint16_t port, uint16_t *bound, char err[STORE_ERR_MAX]);

/* Listens on cfg->listen_fd and serves. Returns NULL with a message on failure. Main thread. */
struct api *api_start(const struct api_config *cfg, struct engine *engine, struct tzdb *tzdb,
                      char err[STORE_ERR_MAX]);
/*
 * Stops accepting connections and commands and waits (up to API_DRAIN_TIMEOUT_SEC) until
 * every submitted command has been answered and every answer sent. False if commands still
 * wait for the engine then (a sync stuck on the disk). Main thread.
 */
bool api_drain(struct api *api);
/* The port actually bound (useful with port 0). Any thread. */
uint16_t api_port(struct api *api);
/* Closes every connection and frees the api, once every waiting command is answered (however
 * long a stuck disk takes). Call after api_drain, before engine_stop. Main thread. */
void api_stop(struct api *api);

/* ---- for handlers (HTTP threads) ---------------------------------------------------------- */

/* A read-only store connection for the length of one handler call. */
struct store_reader *api_reader_acquire(struct api *api);
void api_reader_release(struct api *api, struct store_reader *r);

/*
 * Hands a command to the engine; the answer is sent when cmd->done runs. The command must be
 * allocated in req->arena; the api fills in owner, done, arena and the idempotency fields.
 */
void api_submit(struct request *req, struct command *cmd);

/*
 * For handlers that read wallet state from the tables (balances, transactions, ledger): while
 * acknowledged debits wait in the writer's journal, asks the writer to write them out and
 * returns true: the handler returns, and runs again once they are (or the request is answered
 * 500). False: read now.
 */
bool api_wait_for_wallets(struct request *req);

/*
 * Parses the body and returns the object under Lago's root key (`{"customer": {...}}`).
 * On failure answers 400 (malformed JSON, or the root key missing or empty: Lago's
 * `params.require`, which takes an empty object for a missing one) and returns NULL. The
 * whole document is returned in *doc for the caller to release with json_object_put, on
 * success and failure alike (it may be NULL).
 */
struct json_object;
struct json_object *api_body_object(struct request *req, const char *root_key,
                                    struct json_object **doc);
/* The same, an empty root object taken (Tally's own resources, whose members are optional). */
struct json_object *api_body_object_or_empty(struct request *req, const char *root_key,
                                             struct json_object **doc);

/*
 * The same for a route whose body may be left out (a hold's capture or void): no body, `{}`
 * and a null root are no fields (*obj NULL). Anything else that is not `{root_key: {...}}` is
 * a 400, as on other routes: malformed JSON, a document or a root that is not an object, and
 * members sent beside a missing root (the fields meant for it, which would be ignored: an
 * audit saw a capture's real usage dropped so, and the hold's recorded instead). False after
 * answering; *doc as for api_body_object.
 */
bool api_optional_body_object(struct request *req, const char *root_key, struct json_object **doc,
                              struct json_object **obj);

/*
 * A zeroed command of `kind` for the request's organization, in the request arena; NULL
 * after answering 500 when memory runs out. Submit it with api_submit.
 */
struct command *api_new_command(struct request *req, enum command_kind kind,
                                command_render_fn render);

/* Starts a JSON answer: sets the status and returns the response buffer, emptied. */
struct buf *api_respond(struct request *req, int status);

/* Calls fn for every value of a repeated query argument ("status[]=a&status[]=b"). */
void api_query_each(struct request *req, const char *name, void (*fn)(const char *value, void *ctx),
                    void *ctx);

/*
 * The organization's clock for a read: its test clock, or the real time. False after
 * answering 500 if the store fails.
 */
bool api_org_now(struct request *req, tally_time *now);
/* The same, and whether that clock is a test clock. */
bool api_org_clock(struct request *req, tally_time *now, bool *is_test_clock);

/* A query-string argument of the request, or NULL; repeated, its last value (as Rails reads
 * it, so a client that appends a parameter to a URL holding it gets what it sent last). */
const char *api_query(struct request *req, const char *name);
/* The same, NULL when empty too: a filter given blank filters nothing, as Lago's (Rails'
 * `present?`) do. */
const char *api_query_filter(struct request *req, const char *name);
/* A query-string flag as Rails casts one (ActiveModel::Type::Boolean): absent or empty is
 * `absent`; "0", "f", "false", "off" (lower or upper case, or capitalized) are false; anything
 * else is true. */
bool api_query_flag(struct request *req, const char *name, bool absent);
/* A query-string flag that filters only when given: -1 when absent or empty, else 1 or 0 as
 * api_query_flag casts it. */
int api_query_flag_given(struct request *req, const char *name);
/* A boolean filter of a Lago contract's `maybe(:bool)`: as api_query_flag_given into *out, but
 * a value Lago's Params coercion does not read as a boolean answers its 422 ("must be boolean"
 * under `name`) and returns false. */
bool api_query_bool_filter(struct request *req, const char *name, int *out);
/* Whether the query names an argument `name`, alone or indexed (group[cloud]=aws). */
bool api_query_names(struct request *req, const char *name);
/* Query arguments Lago takes that Tally does not serve: false after answering 422
 * `{name: ["not_supported"]}` for the first the query names, rather than an answer that
 * ignores it; one given empty (`search_term=`) filters nothing and passes, as Lago's do. */
bool api_refuse_unserved(struct request *req, const char *const *names, size_t count);
/* For Tally's own lists, which have no Lago filters to follow: false after answering 422
 * `{name: ["not_supported"]}` for the first query argument that is none of `known` (an indexed
 * one, `name[]` or `name[k]`, named by its name), rather than an answer that ignores it. */
bool api_refuse_unknown(struct request *req, const char *const *known, size_t count);

/* Calls fn for every argument `name[INDEX]=value` of the query (Rails' hash of strings, as
 * "metadata[tier]=gold"); false when the query names `name` in another shape (alone, `name[]`,
 * `name[a][b]`), which is not such a hash. */
bool api_query_indexed(struct request *req, const char *name,
                       void (*fn)(const char *index, size_t index_len, const char *value,
                                  void *ctx),
                       void *ctx);

/* Values one list filter may name ("countries[]=FR&countries[]=DE"). */
#define API_QUERY_LIST_MAX 100

/*
 * The values of a list filter (`name[]=`, repeated, and `name=`) as a JSON array of strings,
 * in req->arena, for the store to match against; NULL when the request names none. False
 * after answering 400 when it names more than API_QUERY_LIST_MAX.
 */
bool api_query_list(struct request *req, const char *name, const char **json);

/*
 * Lago's metadata[key]=value filters as a JSON array of [key, value] pairs for the store, in
 * req->arena; NULL when none. Each key once, with the value named last (as Rails reads a
 * query). With skip_blank a pair whose value is blank is left out (Lago's wallet transactions
 * skip it; its customers read it as "without that key": written as "", the value the store
 * reads so, blank with spaces or not). False after answering 422
 * `{metadata: ["value_is_invalid"]}` for an argument that is not one string per key
 * (`metadata=x`, `metadata[]=`, `metadata[a][b]=`), or 400 for more than API_QUERY_LIST_MAX.
 */
bool api_query_metadata(struct request *req, bool skip_blank, const char **json);

/*
 * One of Lago's enum filters, as its queries' filter contracts check one (dry-validation's
 * `value(:string, included_in?: VALUES) | array(:string, included_in?: VALUES)`).
 */
struct api_enum_filter {
    const char *field;        /* the name Lago's contract reports an error under */
    const char *const *names; /* the values Tally takes, bit i for names[i] (NULL: a gap) */
    size_t count;             /* at most 63 */
    /* Lago's values, in its order, for its message ("pending, settled, failed"); NULL for a
     * filter Lago checks with no contract, where a value it does not have matches no row (an
     * enum column compared with it, as Rails' where does) */
    const char *lago_values;
};
/*
 * Reads `param=` (one value, the last named) and `param[]=` (a list) into *mask, the bits of
 * f's names they name (0: none named; a blank value names none; bit 63 for a value no row
 * has). False after answering Lago's 422: `{field: ["must be one of: V or must be an
 * array"]}` for a value, `{field: {"i": ["must be one of: V"]}}` for the list's item i.
 */
bool api_query_enum(struct request *req, const struct api_enum_filter *f, const char *param,
                    uint64_t *mask);

/*
 * Reads ?page=&per_page= as Lago does (defaults 1 and 100). False after answering 400 when
 * either is not a positive integer or per_page exceeds API_PAGE_SIZE_MAX.
 */
bool api_pagination(struct request *req, int64_t *page, int64_t *per_page);
/* Writes Lago's "meta" member for a page of a list of `total` items (the page may be past the
 * last: Lago then answers it with the real totals). */
struct jsonw;
void api_write_meta(struct jsonw *w, int64_t page, int64_t per_page, int64_t total);
/* Writes Lago's "payment_method" member as Lago answers it when none is set (Tally takes no
 * payment method: wallets, their transactions and subscriptions are paid by the provider's). */
void api_write_no_payment_method(struct jsonw *w);

#endif
