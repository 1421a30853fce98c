/*
 * api/api.c: libmicrohttpd glue: the request lifecycle, authentication, limits,
 * suspension while the engine commits, logging and metrics. Resource logic lives in the
 * handler files (customers.c, test_clock.c, ops.c); this file knows none of it.
 *
 * Lifecycle of a request (libmicrohttpd calls access() several times per request):
 *   0. the request line is read: allocate the request and its arena, keep the path as sent
 *      (uri_cb; libmicrohttpd decodes the path before access() sees it, and a decoded %2F
 *      could not be told from a '/' between segments);
 *   1. first call: take the method and the decoded path; a request whose request line or
 *      header lines cannot be read as sent, or whose body cannot be framed for sure
 *      (api/http_rules), or that declares one past the limit, is answered here, before a byte
 *      of the body is read;
 *   2. calls with body bytes: append, up to the body limit (further bytes are discarded and
 *      the request answered 413 once complete);
 *   3. last call: check the query (api/http_rules), route, authenticate, run the handler. A
 *      handler that submits a command leaves the request WAITING, and libmicrohttpd's next call
 *      suspends the connection and hands the command to the writer (submit says why not at once);
 *   4. the engine's done() (once the change is on disk) resumes the connection; libmicrohttpd
 *      calls access() once more and the answer is queued;
 *   5. completed(): log, count, free the arena.
 *
 * Every connection is registered with api/conn_watch while open (connection_cb), which closes
 * those whose client has gone with nothing to answer: libmicrohttpd's epoll misses such a close.
 */
#include "api/api.h"

#include <errno.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "api/conn_watch.h"
#include "api/errors.h"
#include "api/http_rules.h"
#include "json/json_in.h"
#include "api/routes.h"
#include "sys/digest.h"
#include "sys/entropy.h"
#include "sys/rtprio.h"
#include "sys/wallclock.h"
#include "util/cmdline.h"
#include "util/jsonw.h"
#include "util/utf8.h"

/* ---- read-only connections -------------------------------------------------------------- */

struct reader_pool {
    pthread_mutex_t lock;
    pthread_cond_t available;
    struct store_reader **free_list;
    size_t free_count, size;
};

static void reader_pool_free(struct reader_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->free_count; i++)
        store_reader_close(p->free_list[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->available);
    free(p->free_list);
    free(p);
}

static struct reader_pool *reader_pool_new(const char *data_dir, size_t size,
                                           char err[STORE_ERR_MAX])
{
    struct reader_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->available, NULL);
    p->free_list = calloc(size, sizeof *p->free_list);
    p->size = size;
    if (!p->free_list)
        goto fail;
    for (size_t i = 0; i < size; i++) {
        struct store_reader *r = store_reader_open(data_dir, err);
        if (!r)
            goto fail;
        p->free_list[p->free_count++] = r;
    }
    return p;
fail:
    reader_pool_free(p);
    return NULL;
}

struct store_reader *api_reader_acquire(struct api *api)
{
    struct reader_pool *p = api->readers;
    pthread_mutex_lock(&p->lock);
    while (p->free_count == 0)
        pthread_cond_wait(&p->available, &p->lock);
    struct store_reader *r = p->free_list[--p->free_count];
    pthread_mutex_unlock(&p->lock);
    store_take_thread_error(); /* a failure of these queries is then theirs to name */
    return r;
}

void api_reader_release(struct api *api, struct store_reader *r)
{
    struct reader_pool *p = api->readers;
    pthread_mutex_lock(&p->lock);
    p->free_list[p->free_count++] = r;
    pthread_cond_signal(&p->available);
    pthread_mutex_unlock(&p->lock);
}

/* ---- helpers for handlers --------------------------------------------------------------- */

struct buf *api_respond(struct request *req, int status)
{
    req->status = status;
    buf_reset(&req->response);
    return &req->response;
}

struct query_each {
    const char *name;
    void (*fn)(const char *value, void *ctx);
    void *ctx;
};

static enum MHD_Result visit_argument(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct query_each *q = cls;
    (void)kind;
    if (key && value && strcmp(key, q->name) == 0)
        q->fn(value, q->ctx);
    return MHD_YES;
}

void api_query_each(struct request *req, const char *name, void (*fn)(const char *value, void *ctx),
                    void *ctx)
{
    struct query_each q = {name, fn, ctx};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, visit_argument, &q);
}

static void keep_last(const char *value, void *ctx)
{
    *(const char **)ctx = value;
}

const char *api_query(struct request *req, const char *name)
{
    const char *last = NULL;
    api_query_each(req, name, keep_last, &last);
    return last;
}

const char *api_query_filter(struct request *req, const char *name)
{
    const char *v = api_query(req, name);
    return v && *v ? v : NULL;
}

bool api_query_flag(struct request *req, const char *name, bool absent)
{
    static const char *const falses[] = {"0",   "f",   "F",     "false", "FALSE",
                                         "off", "OFF", "False", "Off"};
    const char *v = api_query(req, name);
    if (!v || !*v)
        return absent;
    for (size_t i = 0; i < sizeof falses / sizeof falses[0]; i++)
        if (strcmp(v, falses[i]) == 0)
            return false;
    return true;
}

int api_query_flag_given(struct request *req, const char *name)
{
    const char *v = api_query(req, name);
    return !v || !*v ? -1 : api_query_flag(req, name, false);
}

bool api_query_bool_filter(struct request *req, const char *name, int *out)
{
    /* dry-types' Params coercion, what Lago's `maybe(:bool)` contracts read as a boolean */
    static const char *const booleans[] = {"1",     "on",  "On",  "ON",  "t",   "true",  "True",
                                           "TRUE",  "T",   "y",   "yes", "Yes", "YES",   "Y",
                                           "0",     "off", "Off", "OFF", "f",   "false", "False",
                                           "FALSE", "F",   "n",   "no",  "No",  "NO",    "N"};
    *out = api_query_flag_given(req, name);
    if (*out < 0)
        return true;
    const char *v = api_query(req, name);
    for (size_t i = 0; i < sizeof booleans / sizeof booleans[0]; i++)
        if (strcmp(v, booleans[i]) == 0)
            return true;
    api_error_validation(req, name, "must be boolean");
    return false;
}

/* Whether a query key is `name` (n bytes) itself or one of its bracketed forms (name[...]). */
static bool key_names(const char *key, const char *name, size_t n)
{
    return key && strncmp(key, name, n) == 0 && (key[n] == '\0' || key[n] == '[');
}

static enum MHD_Result find_name(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    const char **name = cls;
    (void)kind;
    (void)value;
    if (key_names(key, *name, strlen(*name))) {
        *name = NULL; /* found */
        return MHD_NO;
    }
    return MHD_YES;
}

bool api_query_names(struct request *req, const char *name)
{
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, find_name, &name);
    return name == NULL;
}

/* find_name, passing over `name=` given empty: a filter given blank filters nothing */
static enum MHD_Result find_given(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    const char **name = cls;
    if (key && strcmp(key, *name) == 0 && (!value || !*value))
        return MHD_YES;
    return find_name(cls, kind, key, value);
}

bool api_refuse_unserved(struct request *req, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *name = names[i];
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, find_given, &name);
        if (!name) {
            api_error_validation(req, names[i], "not_supported");
            return false;
        }
    }
    return true;
}

struct unknown_arg {
    const char *const *known;
    size_t count;
    const char *found; /* the first argument not known, or NULL */
};

static enum MHD_Result find_unknown(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct unknown_arg *u = cls;
    (void)kind;
    (void)value;
    if (!key || !key[0])
        return MHD_YES;
    for (size_t i = 0; i < u->count; i++)
        if (strcmp(key, u->known[i]) == 0)
            return MHD_YES;
    u->found = key;
    return MHD_NO;
}

bool api_refuse_unknown(struct request *req, const char *const *known, size_t count)
{
    struct unknown_arg u = {known, count, NULL};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, find_unknown, &u);
    if (!u.found)
        return true;
    const char *name = arena_strndup(&req->arena, u.found, strcspn(u.found, "["));
    api_error_validation(req, name ? name : "query", "not_supported");
    return false;
}

struct query_indexed {
    const char *name;
    size_t len;
    void (*fn)(const char *index, size_t index_len, const char *value, void *ctx);
    void *ctx;
    bool malformed;
};

static enum MHD_Result visit_indexed(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct query_indexed *q = cls;
    (void)kind;
    if (!key_names(key, q->name, q->len))
        return MHD_YES;
    /* name[INDEX] and nothing more: Rails makes a list of name[], a string of name alone and
     * a nested hash of name[a][b], none of them one string per index */
    const char *index = key[q->len] == '[' ? key + q->len + 1 : NULL;
    size_t n = index ? strcspn(index, "[]") : 0;
    if (n == 0 || index[n] != ']' || index[n + 1] != '\0') {
        q->malformed = true;
        return MHD_NO;
    }
    q->fn(index, n, value ? value : "", q->ctx);
    return MHD_YES;
}

bool api_query_indexed(struct request *req, const char *name,
                       void (*fn)(const char *index, size_t index_len, const char *value,
                                  void *ctx),
                       void *ctx)
{
    struct query_indexed q = {name, strlen(name), fn, ctx, false};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, visit_indexed, &q);
    return !q.malformed;
}

struct query_list {
    struct jsonw w;
    size_t count;
};

static void add_to_list(const char *value, void *ctx)
{
    struct query_list *l = ctx;
    if (l->count++ < API_QUERY_LIST_MAX)
        jsonw_cstr(&l->w, value);
}

bool api_query_list(struct request *req, const char *name, const char **json)
{
    char bracketed[64];
    *json = NULL;
    if ((size_t)snprintf(bracketed, sizeof bracketed, "%s[]", name) >= sizeof bracketed)
        return true; /* no such filter name */
    struct buf b;
    struct query_list l = {.count = 0};
    buf_init(&b);
    jsonw_init(&l.w, &b);
    jsonw_array_begin(&l.w);
    api_query_each(req, bracketed, add_to_list, &l);
    api_query_each(req, name, add_to_list, &l);
    jsonw_array_end(&l.w);
    bool within = l.count <= API_QUERY_LIST_MAX, ok = within && !buf_failed(&b);
    if (ok && l.count > 0)
        ok = (*json = arena_strndup(&req->arena, b.data, b.len)) != NULL;
    buf_free(&b);
    if (!within) {
        char what[128];
        snprintf(what, sizeof what, "%s names more than %d values", name, API_QUERY_LIST_MAX);
        api_error_bad_request(req, what);
    } else if (!ok) {
        api_error(req, 500, "out_of_memory", "the request could not be served");
    }
    return ok;
}

/* metadata[key]=value filters, each key once with the value named last (as Rails reads a
 * query), at most API_QUERY_LIST_MAX of them. */
struct metadata_filters {
    struct arena *arena;
    const char *keys[API_QUERY_LIST_MAX], *values[API_QUERY_LIST_MAX];
    size_t count;
    bool over, failed;
};

static void add_metadata_filter(const char *key, size_t key_len, const char *value, void *ctx)
{
    struct metadata_filters *m = ctx;
    size_t i = 0;
    while (i < m->count && !(strncmp(m->keys[i], key, key_len) == 0 && m->keys[i][key_len] == 0))
        i++;
    if (i == API_QUERY_LIST_MAX) {
        m->over = true;
        return;
    }
    if (i == m->count) {
        if (!(m->keys[i] = arena_strndup(m->arena, key, key_len))) {
            m->failed = true;
            return;
        }
        m->count++;
    }
    m->values[i] = value;
}

bool api_query_metadata(struct request *req, bool skip_blank, const char **json)
{
    struct metadata_filters m = {.arena = &req->arena};
    *json = NULL;
    if (!api_query_indexed(req, "metadata", add_metadata_filter, &m)) {
        api_error_validation(req, "metadata", "value_is_invalid");
        return false;
    }
    if (m.over) {
        char what[96];
        snprintf(what, sizeof what, "metadata names more than %d keys", API_QUERY_LIST_MAX);
        api_error_bad_request(req, what);
        return false;
    }
    struct buf b;
    struct jsonw w;
    size_t pairs = 0;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_array_begin(&w);
    for (size_t i = 0; i < m.count && !m.failed; i++) {
        bool blank = json_in_blank(m.values[i], strlen(m.values[i]));
        if (skip_blank && blank)
            continue;
        jsonw_array_begin(&w);
        jsonw_cstr(&w, m.keys[i]);
        jsonw_cstr(&w, blank ? "" : m.values[i]); /* blank as Lago's blank?, spaces or not */
        jsonw_array_end(&w);
        pairs++;
    }
    jsonw_array_end(&w);
    bool ok = !m.failed && !buf_failed(&b) &&
              (pairs == 0 || (*json = arena_strndup(&req->arena, b.data, b.len)));
    buf_free(&b);
    if (!ok)
        api_error(req, 500, "out_of_memory", "the request could not be served");
    return ok;
}

/* What api_query_enum gathers: the mask, and the first value of the list that is not one. */
struct enum_read {
    const struct api_enum_filter *f;
    uint64_t mask;
    size_t index;     /* of the list's next value */
    size_t bad_index; /* SIZE_MAX: none */
};

/* The bit of `value` in f's names: false when it is none of them. */
static bool enum_bit(const struct api_enum_filter *f, const char *value, uint64_t *bit)
{
    for (size_t i = 0; i < f->count; i++) {
        if (f->names[i] && strcmp(value, f->names[i]) == 0) {
            *bit = UINT64_C(1) << i;
            return true;
        }
    }
    return false;
}

static void add_enum_item(const char *value, void *ctx)
{
    struct enum_read *e = ctx;
    size_t at = e->index++;
    uint64_t bit;
    if (!*value) /* a blank item names nothing, as a blank value */
        return;
    if (enum_bit(e->f, value, &bit))
        e->mask |= bit;
    else if (e->f->lago_values && e->bad_index == SIZE_MAX)
        e->bad_index = at;
    else if (!e->f->lago_values)
        e->mask |= UINT64_C(1) << 63; /* a value no row has: it matches none */
}

bool api_query_enum(struct request *req, const struct api_enum_filter *f, const char *param,
                    uint64_t *mask)
{
    char bracketed[64];
    snprintf(bracketed, sizeof bracketed, "%s[]", param);
    struct enum_read e = {f, 0, 0, SIZE_MAX};
    const char *one = api_query_filter(req, param);
    uint64_t bit;
    *mask = 0;
    if (one && !enum_bit(f, one, &bit) && f->lago_values) {
        char what[160];
        snprintf(what, sizeof what, "must be one of: %s or must be an array", f->lago_values);
        api_error_validation(req, f->field, what);
        return false;
    }
    if (one)
        e.mask = enum_bit(f, one, &bit) ? bit : UINT64_C(1) << 63;
    api_query_each(req, bracketed, add_enum_item, &e);
    if (e.bad_index != SIZE_MAX) {
        char what[160];
        snprintf(what, sizeof what, "must be one of: %s", f->lago_values);
        api_error_validation_item(req, f->field, e.bad_index, what);
        return false;
    }
    *mask = e.mask;
    return true;
}

bool api_org_clock(struct request *req, tally_time *now, bool *is_test_clock)
{
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_org org;
    enum store_status s = store_org_get(store_reader_conn(r), req->org_id, &org, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        api_error_store_read(req);
        return false;
    }
    *is_test_clock = org.has_test_clock;
    *now = org.has_test_clock ? org.test_clock_now : wallclock_now();
    return true;
}

bool api_org_now(struct request *req, tally_time *now)
{
    bool is_test_clock;
    return api_org_clock(req, now, &is_test_clock);
}

enum positive { POSITIVE, NOT_POSITIVE, POSITIVE_TOO_LARGE };

/* A decimal integer > 0; one past 64 bits is told apart, so that its answer says so. */
static enum positive parse_positive(const char *s, int64_t *out)
{
    int64_t v = 0;
    bool overflow = false;
    if (!s || !*s)
        return NOT_POSITIVE;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return NOT_POSITIVE;
        int d = *s - '0';
        if (overflow || v > (INT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (overflow)
        return POSITIVE_TOO_LARGE;
    *out = v;
    return v > 0 ? POSITIVE : NOT_POSITIVE;
}

bool api_pagination(struct request *req, int64_t *page, int64_t *per_page)
{
    const char *p = api_query(req, "page"), *pp = api_query(req, "per_page");
    *page = 1;
    *per_page = API_PAGE_SIZE_DEFAULT;
    enum positive rp = p ? parse_positive(p, page) : POSITIVE;
    enum positive rpp = pp ? parse_positive(pp, per_page) : POSITIVE;
    if (rp == NOT_POSITIVE) {
        api_error_bad_request(req, "page must be a positive integer");
        return false;
    }
    if (rpp == NOT_POSITIVE) {
        api_error_bad_request(req, "per_page must be a positive integer");
        return false;
    }
    if (rpp == POSITIVE_TOO_LARGE || *per_page > API_PAGE_SIZE_MAX) {
        api_error_bad_request(req, "per_page must be at most " API_LIMIT_TEXT(API_PAGE_SIZE_MAX));
        return false;
    }
    if (rp == POSITIVE_TOO_LARGE || *page > INT64_MAX / *per_page) {
        api_error_bad_request(req, "page is too large");
        return false;
    }
    return true;
}

void api_write_meta(struct jsonw *w, int64_t page, int64_t per_page, int64_t total)
{
    int64_t pages = (total + per_page - 1) / per_page;
    jsonw_key(w, "meta");
    jsonw_object_begin(w);
    /* Lago's Pagination concern: an empty list has current_page and total_pages 0 and no
     * next or previous page; else the page asked, even past the last (no items), with the
     * page before it as prev_page (Lago computes it from the page, where Kaminari's says
     * none out of range; its older concern answered all zeros on any empty page). */
    jsonw_kv_int(w, "current_page", total == 0 ? 0 : page);
    jsonw_key(w, "next_page");
    if (page < pages)
        jsonw_int(w, page + 1);
    else
        jsonw_null(w);
    jsonw_key(w, "prev_page");
    if (page > 1 && total > 0)
        jsonw_int(w, page - 1);
    else
        jsonw_null(w);
    jsonw_kv_int(w, "total_pages", pages);
    jsonw_kv_int(w, "total_count", total);
    jsonw_object_end(w);
}

void api_write_no_payment_method(struct jsonw *w)
{
    jsonw_kv_raw(w, "payment_method",
                 "{\"payment_method_type\":\"provider\",\"payment_method_id\":null}");
}

static struct json_object *body_object(struct request *req, const char *root_key, bool empty_ok,
                                       struct json_object **doc)
{
    const char *why;
    *doc = json_in_parse(req->body.data, req->body.len, &why);
    if (!*doc) {
        api_error_bad_request(req, why);
        return NULL;
    }
    struct json_object *obj = json_in_root(*doc, root_key);
    if (obj && !empty_ok && json_object_object_length(obj) == 0)
        obj = NULL; /* Rails' params.require: an empty hash is blank, so missing */
    if (!obj) {
        char what[128];
        snprintf(what, sizeof what, "param is missing or the value is empty: %s", root_key);
        api_error_bad_request(req, what);
    }
    return obj;
}

struct json_object *api_body_object(struct request *req, const char *root_key,
                                    struct json_object **doc)
{
    return body_object(req, root_key, false, doc);
}

struct json_object *api_body_object_or_empty(struct request *req, const char *root_key,
                                             struct json_object **doc)
{
    return body_object(req, root_key, true, doc);
}

bool api_optional_body_object(struct request *req, const char *root_key, struct json_object **doc,
                              struct json_object **obj)
{
    *doc = *obj = NULL;
    if (req->body.len == 0)
        return true;
    const char *why;
    if (!(*doc = json_in_parse(req->body.data, req->body.len, &why))) {
        api_error_bad_request(req, why);
        return false;
    }
    if (!json_object_is_type(*doc, json_type_object)) {
        api_error_bad_request(req, "the body is not an object");
        return false;
    }
    struct json_object *root = NULL;
    bool named = json_object_object_get_ex(*doc, root_key, &root); /* root NULL: a null */
    if (named ? root && !json_object_is_type(root, json_type_object)
              : json_object_object_length(*doc) > 0) {
        char what[128];
        snprintf(what, sizeof what, "param is missing or the value is empty: %s", root_key);
        api_error_bad_request(req, what);
        return false;
    }
    *obj = root;
    return true;
}

struct command *api_new_command(struct request *req, enum command_kind kind,
                                command_render_fn render)
{
    struct command *cmd = arena_alloc(&req->arena, sizeof *cmd);
    if (!cmd) {
        api_error(req, 500, "out_of_memory", "the request could not be served");
        return NULL;
    }
    cmd->kind = kind;
    cmd->org_id = req->org_id;
    cmd->render = render;
    /* a usage read a cache may answer, and a read's write-out of wallet debits, are made or
     * not by timing: their seed comes from the stream set aside for such draws */
    bool by_timing = kind == COMMAND_USAGE_READ || kind == COMMAND_WALLETS_SYNC;
    if (!(by_timing ? entropy_fill_aside : entropy_fill)(cmd->id_seed, sizeof cmd->id_seed)) {
        api_error(req, 500, "out_of_entropy", "the request could not be served");
        return NULL;
    }
    return cmd;
}

/* ---- commands --------------------------------------------------------------------------- */

/* Engine thread: hands the request back to its HTTP thread, in `state`. */
static void resume(struct request *req, enum request_state state)
{
    /* Counted out only once MHD_resume_connection has returned: api_drain lets the daemon be
     * stopped when none wait, and stopping it while a resume was still inside MHD raced
     * (ThreadSanitizer, at SIGTERM). req may be gone once resumed: its api is read first. */
    struct api *api = req->api;
    req->state = state;
    MHD_resume_connection(req->conn);
    atomic_fetch_sub(&api->waiting, 1);
}

/* Engine thread: the command failed; `message` says what became of its change. */
static void answer_store_failed(struct request *req, const char *message)
{
    req->status = 500;
    api_error_render(&req->response, 500, NULL, "store_failed", message);
    resume(req, REQUEST_ANSWERED);
}

#define NOT_DURABLE_MESSAGE                                                                        \
    "the disk did not confirm this change, so it may or may not have been saved; tallyd takes "    \
    "no more changes until it is restarted; then retry (events, and requests with an "             \
    "Idempotency-Key, are never applied twice)"

/* Syncer thread, or the writer: the batch holding the command is durable (or failed). */
static void command_done(struct command *cmd)
{
    struct request *req = cmd->owner;
    if (cmd->result == COMMAND_STORE_FAILED) {
        answer_store_failed(req, engine_failed(req->api->engine)
                                     ? "the disk refused an earlier sync, so tallyd takes no "
                                       "changes until it is restarted; nothing was applied"
                                 : cmd->failure_message ? cmd->failure_message
                                                        : "the change could not be saved; nothing "
                                                          "was applied, retry later");
        return;
    }
    if (cmd->result == COMMAND_NOT_DURABLE) {
        answer_store_failed(req, NOT_DURABLE_MESSAGE);
        return;
    }
    if (!cmd->rendered) /* left to us: here rather than on an HTTP thread, which reads wait for */
        cmd->render(cmd);
    req->status = cmd->http_status;
    struct buf tmp = req->response;
    req->response = cmd->response;
    cmd->response = tmp;
    resume(req, REQUEST_ANSWERED);
}

/* Hands the command to the writer, which calls done(cmd) once its batch is durable. */
static void submit(struct request *req, struct command *cmd, void (*done)(struct command *))
{
    struct api *api = req->api;
    cmd->owner = req;
    cmd->done = done;
    cmd->arena = &req->arena;
    buf_init(&cmd->response);
    /* Counted in before `stopping` is read, as api_drain sets it before its last count: a
     * command either is waited for, or sees the stop and is not submitted. A connection still
     * suspended when the daemon stops is a fatal error in libmicrohttpd (a request that had
     * passed the draining check when SIGTERM came did that, under ThreadSanitizer). */
    atomic_fetch_add(&api->waiting, 1);
    if (atomic_load(&api->stopping)) {
        atomic_fetch_sub(&api->waiting, 1);
        api_error(req, 503, "shutting_down", "the server is stopping; retry on its successor");
        return;
    }
    req->cmd = cmd;
    req->state = REQUEST_WAITING;
    conn_watch_busy(req->slot, true); /* its client may half-close and wait for the answer */
    /* Handed over on libmicrohttpd's next call (hand_over), not now: told that a whole request
     * has no answer yet, libmicrohttpd stops reading the socket for it, and a connection
     * suspended from there is not read when resumed either. Suspended at once, it was resumed
     * still reading (its read state is left as it was at suspension), read the FIN of a client
     * that had half-closed after its request and closed the connection as broken: the change
     * was made and its answer never sent (an audit, with the writer busy). */
    req->unsubmitted = true;
}

/* libmicrohttpd calls again for a request whose command was submitted (see submit). */
static enum MHD_Result hand_over(struct request *req)
{
    req->unsubmitted = false;
    /* Suspend before submitting: the writer may finish (and resume) before we return. */
    MHD_suspend_connection(req->conn);
    engine_submit(req->api->engine, req->cmd);
    return MHD_YES;
}

/*
 * The request's Idempotency-Key and fingerprint go on its own command only: a command the server
 * sends first on the request's behalf (the wallet journal's write-out) carrying the key had its
 * empty answer stored under it, and the request itself, arriving next, was taken for its replay.
 */
static void take_key(struct request *req, struct command *cmd)
{
    if (!req->idempotency_key)
        return;
    /* the query counts (DELETE /subscriptions/{id}?status=pending is another request);
     * without one the bytes are those hashed before it did, so stored keys still match.
     * The path as sent: decoded, /customers/x%3Fy read as /customers/x?y, and
     * /customers/c%2Fwallets%2Fw as the wallet route's path, each the other's replay */
    bool query = req->raw_query && req->raw_query[0];
    const void *parts[7] = {req->method,
                            "\n",
                            req->raw_path,
                            "?",
                            req->raw_query,
                            "\n",
                            req->body.data ? req->body.data : ""};
    size_t lens[7] = {
        strlen(req->method), 1, strlen(req->raw_path), query, query ? strlen(req->raw_query) : 0, 1,
        req->body.len};
    cmd->idempotency_key = req->idempotency_key;
    digest_sha256(parts, lens, 7, cmd->request_hash);
}

void api_submit(struct request *req, struct command *cmd)
{
    take_key(req, cmd);
    submit(req, cmd, command_done);
}

/* ---- authentication ------------------------------------------------------------------------ */

#define AUTH_KEY_MAX 256 /* bytes of a key looked up at most (Tally's are 68) */

/*
 * The key an Authorization header gives (*len bytes), or NULL: the scheme "Bearer" in any case
 * (RFC 9110 11.1), whitespace, the key, and whitespace at most, which is not part of a field
 * value (RFC 9110 5.5) though libmicrohttpd keeps what trails. Lago reads the second word.
 */
static const char *bearer_key(const char *h, size_t *len)
{
    static const char scheme[] = "Bearer", blank[] = " \t";
    const size_t n = sizeof scheme - 1;
    if (!h || strncasecmp(h, scheme, n) != 0 || !h[n] || !strchr(blank, h[n]))
        return NULL;
    const char *key = h + n + strspn(h + n, blank);
    *len = strcspn(key, blank);
    return key[*len + strspn(key + *len, blank)] == '\0' ? key : NULL;
}

static bool authenticate(struct request *req)
{
    size_t len;
    const char *key =
        bearer_key(MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization"), &len);
    if (!key || len == 0 || len > AUTH_KEY_MAX)
        return false;
    char hash[DIGEST_SHA256_HEX];
    digest_sha256_hex(key, len, hash);
    if (key_cache_get(&req->api->keys, hash, &req->org_id))
        return true;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_org org;
    enum store_status s = store_org_by_key_hash(store_reader_conn(r), hash, &org, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK)
        return false;
    key_cache_put(&req->api->keys, hash, org.id);
    req->org_id = org.id;
    return true;
}

static bool read_idempotency_key(struct request *req)
{
    const char *k = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (!k)
        return true;
    if (!http_rules_one_value(req->conn, "Idempotency-Key")) {
        api_error_bad_request(req, "Idempotency-Key is sent more than once with different values");
        return false;
    }
    size_t len = http_rules_value_len(k, strlen(k));
    if (len == 0 || len > COMMAND_IDEMPOTENCY_KEY_MAX) {
        api_error_bad_request(req, "Idempotency-Key must be 1 to " API_LIMIT_TEXT(
                                       COMMAND_IDEMPOTENCY_KEY_MAX) " characters");
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (k[i] < 0x21 || k[i] > 0x7e) {
            api_error_bad_request(req, "Idempotency-Key must be printable ASCII without spaces");
            return false;
        }
    }
    req->idempotency_key = arena_strndup(&req->arena, k, len);
    return true;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* Syncer thread: the wallet journal is written out (or the batch failed). */
static void wallets_synced(struct command *cmd)
{
    if (cmd->result == COMMAND_STORE_FAILED)
        answer_store_failed(cmd->owner,
                            "wallet balances could not be brought up to date; retry later");
    else if (cmd->result == COMMAND_NOT_DURABLE)
        answer_store_failed(cmd->owner, NOT_DURABLE_MESSAGE);
    else
        resume(cmd->owner, REQUEST_SYNCED);
}

static void render_nothing(struct command *cmd)
{
    cmd->http_status = 200;
}

bool api_wait_for_wallets(struct request *req)
{
    if (req->wallets_synced || !engine_wallets_pending(req->api->engine))
        return false;
    struct command *cmd = api_new_command(req, COMMAND_WALLETS_SYNC, render_nothing);
    if (cmd)
        submit(req, cmd, wallets_synced); /* dispatched again once they are written out */
    return true;
}

static void render_replay(struct command *cmd)
{
    api_error_render_command(cmd, NULL); /* a replay's answer is already in cmd->response */
}

/*
 * A keyed request whose key already has an answer gets that answer before its handler
 * validates anything: what was valid then may not be now (an `expiration_at` the clock has
 * since passed), and a client retrying a change that succeeded must not be told it failed.
 * The answer goes through the writer like any other, so it leaves only once durable; a key
 * not found here is looked up again by the writer when the request itself arrives there.
 */
static bool replay_from_key(struct request *req)
{
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_idempotent_answer prior;
    enum store_status s = store_idempotency_get(store_reader_conn(r), req->org_id,
                                                req->idempotency_key, &prior, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK)
        return false; /* on a read error too: the writer's own lookup is the one that counts */
    struct command *cmd = api_new_command(req, COMMAND_KEY_REPLAY, render_replay);
    if (cmd)
        api_submit(req, cmd);
    return true;
}

static void dispatch(struct request *req)
{
    struct api *api = req->api;
    const char *query = http_rules_query(req->conn);
    if (query) { /* before routing: no handler reads an argument cut short */
        api_error_bad_request(req, query);
        return;
    }
    char allow[ROUTES_ALLOW_MAX];
    enum route_match m =
        routes_match(req->method, req->raw_path, &req->route, req->params, &req->arena, allow);
    if (m == ROUTE_BAD_SEGMENT) {
        api_error_bad_request(req, "a path segment is not valid percent-encoded UTF-8");
        return;
    }
    if (m == ROUTE_NO_PATH) {
        api_error_not_found(req, "resource_not_found");
        return;
    }
    if (m == ROUTE_WRONG_METHOD) {
        req->allow = arena_strndup(&req->arena, allow, strlen(allow)); /* NULL: none sent */
        api_error(req, 405, "method_not_allowed", "this path does not accept that method");
        return;
    }
    const struct route *route = &api_routes[req->route];
    req->resource = route->resource;
    if (req->body_too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than the limit of %zu bytes",
                 api->config.body_max);
        api_error(req, 413, "body_too_large", msg);
        return;
    }
    if (route->authenticated && !authenticate(req)) {
        api_error_unauthorized(req);
        return;
    }
    if (req->body_unwanted) { /* its key failed to read when it came (body_wanted): not kept */
        api_error(req, 503, "service_unavailable", "the request could not be read; send it again");
        return;
    }
    /* After the key, as Lago looks at no body before it, and only where a handler reads the
     * body: no GET, HEAD or DELETE handler does, and a body they ignore is not refused. */
    bool mutating = strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
    if (mutating && strcmp(req->method, "DELETE") != 0 &&
        json_in_has_nul_escape(req->body.data, req->body.len)) {
        api_error_bad_request(req, "a JSON string holds \\u0000, which no key or value may");
        return;
    }
    if (mutating && atomic_load(&api->draining)) {
        api_error(req, 503, "shutting_down", "the server is stopping; retry on its successor");
        return;
    }
    if (mutating && !read_idempotency_key(req))
        return;
    if (req->idempotency_key && replay_from_key(req))
        return;
    route->handle(req);
}

static enum MHD_Result queue_answer(struct request *req)
{
    size_t len;
    char *body = buf_take(&req->response, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
        len, body ? body : (char *)"", body ? free : NULL);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->content_type ? req->content_type
                                              : "application/json; charset=utf-8");
    if (req->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
    if (req->must_close || atomic_load(&req->api->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    conn_watch_busy(req->slot, true); /* not shut while it is sent */
    return r;
}

static bool query_fits(const char *query)
{
    size_t args = 1, len = 0;
    for (; query[len]; len++)
        args += query[len] == '&';
    return len <= API_QUERY_MAX && args <= API_QUERY_ARGS_MAX;
}

#define QUERY_TOO_LARGE_BODY                                                                       \
    "{\"status\":414,\"error\":\"URI Too Long\",\"code\":\"query_too_large\",\"message\":\"the "   \
    "query "                                                                                       \
    "string holds more than " API_LIMIT_TEXT(API_QUERY_ARGS_MAX) " arguments or 8192 bytes\"}"
_Static_assert(API_QUERY_MAX == 8192, "QUERY_TOO_LARGE_BODY names the limit");

/*
 * Answers a query that is too large on the socket itself, then shuts the socket so that
 * libmicrohttpd closes the connection. It parses the query's arguments into the connection's
 * memory right after uri_cb, and one that does not fit (about 500 short arguments) left the
 * connection without an answer until its timeout, and the request's context never released:
 * no later callback comes for it. Nothing has been written on the socket yet.
 */
static void refuse_query(struct MHD_Connection *conn)
{
    char answer[512];
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 414 URI Too Long\r\nContent-Type: application/json; "
                     "charset=utf-8\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof QUERY_TOO_LARGE_BODY - 1, QUERY_TOO_LARGE_BODY);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info || n <= 0 || (size_t)n >= sizeof answer)
        return;
    ssize_t sent = send(info->connect_fd, answer, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent; /* a client that cannot take it gets the closed connection alone */
    shutdown(info->connect_fd, SHUT_RDWR);
}

/* The connection's slot in api/conn_watch (NULL: not watched). */
static struct conn_slot *slot_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* A connection opens or closes (its HTTP thread; a close comes before its socket's). */
static void connection_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct api *api = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = info ? conn_watch_add(api->watch, info->connect_fd) : NULL;
        atomic_fetch_add_explicit(&api->metrics.connections, 1, memory_order_relaxed);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_watch_remove(api->watch, *socket_context);
        *socket_context = NULL;
        atomic_fetch_sub_explicit(&api->metrics.connections, 1, memory_order_relaxed);
    }
}

/* The request line was read: the request starts here, with the path as the client sent it.
 * What this returns is the request's context in every later callback (NULL: none, the
 * connection is closed). */
static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct conn_slot *slot = slot_of(conn);
    conn_watch_touch(slot);
    const char *query = strchr(uri, '?');
    if (query && !query_fits(query + 1)) {
        refuse_query(conn);
        return NULL;
    }
    struct arena a;
    arena_init(&a);
    struct request *req = arena_alloc(&a, sizeof *req);
    if (!req) {
        arena_free(&a);
        return NULL;
    }
    req->arena = a;
    req->api = cls;
    req->conn = conn;
    req->slot = slot;
    req->target_len = strlen(uri);
    const char *target = http_rules_origin_form(uri);
    size_t path_len = strcspn(target, "?");
    req->raw_path = arena_strndup(&req->arena, target, path_len);
    req->raw_query = target[path_len] ? target + path_len + 1 : "";
    req->raw_query = arena_strndup(&req->arena, req->raw_query, strlen(req->raw_query));
    req->route = -1;
    req->started_usec = wallclock_monotonic_usec();
    buf_init(&req->body);
    buf_init(&req->response);
    return req;
}

static void request_free(struct request *req)
{
    if (req->cmd)
        buf_free(&req->cmd->response);
    buf_free(&req->body);
    buf_free(&req->response);
    struct arena a = req->arena; /* req itself lives in the arena */
    arena_free(&a);
}

/*
 * Whether the request's Content-Length is past the body limit so far that it is refused before
 * a byte of the body is read: a client declaring 10 GB otherwise uploads all of it to hear
 * 413. Within API_BODY_DISCARD_MAX past the limit the body is read and thrown away instead,
 * because a client still sending when the connection closes often never reads the answer;
 * unless it waits for "100 Continue", as it then sends nothing before the answer.
 */
static bool declares_too_large_body(struct request *req)
{
    const char *declared =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *expect = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Expect");
    uint64_t length, max = req->api->config.body_max;
    if (!declared || !cmdline_parse_u64(declared, 0, UINT64_MAX, &length) || length <= max)
        return false;
    return (expect && strcasecmp(expect, "100-continue") == 0) ||
           length - max > API_BODY_DISCARD_MAX;
}

/*
 * Whether a body past the limit has been thrown away for more than API_BODY_DISCARD_MAX bytes
 * past it: it is then answered 413 mid-body and its connection closed. A Content-Length that far
 * past is refused before it is read (declares_too_large_body), but a chunked body declares no
 * length, and without this cap a client streaming one (or one chunk declaring 2^48 bytes) kept
 * an HTTP thread reading and discarding for as long as it sent. Within the cap it is read whole,
 * as a Content-Length body is, so that a client still sending reads its answer.
 */
static bool discarded_too_much(const struct request *req)
{
    uint64_t max = req->api->config.body_max;
    return req->body_too_large && req->body_received - max > API_BODY_DISCARD_MAX;
}

/*
 * Sends the request's answer on the socket itself and shuts the socket, in the middle of its
 * body: libmicrohttpd 0.9.75 queues a response only before the body or once it is whole
 * (MHD_queue_response refuses one in between), and closes the connection when the access
 * callback says no. Nothing has been written on the socket for this request yet, and a
 * pipelined one before it was answered whole before this one was read. The answer is small
 * enough for an empty socket buffer; a client that cannot take it gets the closed connection.
 */
static void answer_mid_body(struct request *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return;
    char head[256];
    size_t len = buf_failed(&req->response) ? 0 : req->response.len;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                     req->status, MHD_get_reason_phrase_for((unsigned)req->status), len);
    if (n > 0 && (size_t)n < sizeof head) {
        struct iovec parts[2] = {{head, (size_t)n}, {req->response.data, len}};
        struct msghdr msg = {.msg_iov = parts, .msg_iovlen = len ? 2 : 1};
        ssize_t sent = sendmsg(info->connect_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)sent; /* a client that cannot take it gets the closed connection alone */
    }
    shutdown(info->connect_fd, SHUT_RDWR);
}

/*
 * Whether a request that waits for "100 Continue" before sending its body is refused for its
 * key first (answered here): a client without a valid key was otherwise invited to upload its
 * whole body to hear 401. Without that header the body is read as ever, then refused: a client
 * already sending often misses an answer sent on a connection that closes under it.
 */
static bool refused_before_body(struct request *req)
{
    const char *expect = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Expect");
    if (!expect || strcasecmp(expect, "100-continue") != 0)
        return false;
    const char *params[API_PATH_PARAMS_MAX];
    char allow[ROUTES_ALLOW_MAX];
    int route = -1;
    if (routes_match(req->method, req->raw_path, &route, params, &req->arena, allow) !=
            ROUTE_FOUND ||
        !api_routes[route].authenticated || authenticate(req))
        return false; /* the rest is answered once the body is read, as ever */
    req->route = route;
    api_error_unauthorized(req);
    return true;
}

/*
 * Whether a request's body can be of any use: its route exists and its key is good (or the
 * route takes none). One refused for either is answered once its body is read, as ever, but
 * the body is thrown away as it comes rather than kept: an audit filled a gigabyte of memory
 * with a hundred bodies sent under a wrong key.
 */
static bool body_wanted(struct request *req)
{
    /* no body coming (most reads): nothing to keep, and no route or key to look at twice */
    const char *length = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Length");
    if (!MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Transfer-Encoding") &&
        (!length || strcmp(length, "0") == 0))
        return true;
    const char *params[API_PATH_PARAMS_MAX];
    char allow[ROUTES_ALLOW_MAX];
    int route = -1;
    return routes_match(req->method, req->raw_path, &route, params, &req->arena, allow) ==
               ROUTE_FOUND &&
           (!api_routes[route].authenticated || authenticate(req));
}

/* HTTP threads: a connection made while the server drains is closed at once (api_drain). */
static enum MHD_Result accept_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    struct api *api = cls;
    return atomic_load(&api->draining) ? MHD_NO : MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct api *api = cls;
    struct request *req = *con_cls;
    if (!req || !req->raw_path)
        return MHD_NO; /* out of memory when the request line came */
    conn_watch_touch(req->slot);
    if (req->unsubmitted)
        return hand_over(req);
    if (!req->method) {
        req->method = arena_strndup(&req->arena, method, strlen(method));
        const char *path = http_rules_origin_form(url);
        req->path = arena_strndup(&req->arena, path, strlen(path));
        if (!req->method || !req->path)
            return MHD_NO;
        atomic_fetch_add_explicit(&api->metrics.in_flight, 1, memory_order_relaxed);
        int framing_status;
        struct http_request_line line = {method, url, version, req->target_len};
        const char *framing = http_rules_framing(conn, &line, &framing_status);
        if (framing) {
            /* answered before the body is read, and the connection closed after the answer:
             * no byte past these headers is read, as a body or as a request */
            req->must_close = true;
            req->state = REQUEST_ANSWERED;
            if (framing_status == 400)
                api_error_bad_request(req, framing);
            else
                api_error(req, framing_status, "transfer_coding_not_supported", framing);
            return queue_answer(req);
        }
        /* answered before the body is read: libmicrohttpd then sends no 100 Continue, reads
         * no more of it and closes the connection after the answer */
        if (declares_too_large_body(req)) {
            req->body_too_large = true;
            req->state = REQUEST_ANSWERED;
            dispatch(req);
            return queue_answer(req);
        }
        if (!refused_before_body(req)) {
            req->body_unwanted = !body_wanted(req);
            return MHD_YES;
        }
        req->must_close = true; /* a body sent uninvited is not read as the next request */
        req->state = REQUEST_ANSWERED;
        return queue_answer(req);
    }
    if (req->state == REQUEST_ANSWERED && *upload_data_size > 0) {
        *upload_data_size = 0; /* the rest of a body refused before it came */
        return MHD_YES;
    }
    if (req->state == REQUEST_SYNCED) { /* the read waited for the wallet journal */
        buf_free(&req->cmd->response);
        req->cmd = NULL;
        req->wallets_synced = true;
        req->state = REQUEST_READING;
    }
    if (req->state == REQUEST_READING && *upload_data_size > 0) {
        req->body_received += *upload_data_size;
        if (req->body_too_large || req->body_received > api->config.body_max)
            req->body_too_large = true;
        else if (!req->body_unwanted)
            buf_append(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        if (!discarded_too_much(req))
            return MHD_YES;
        req->must_close = true;
        req->state = REQUEST_ANSWERED;
        dispatch(req);
        answer_mid_body(req);
        return MHD_NO; /* libmicrohttpd closes the connection: no more of the body is read */
    }
    if (req->state == REQUEST_READING) {
        if (!req->answering) { /* read whole: from here the drain waits for its answer */
            req->answering = true;
            atomic_fetch_add_explicit(&api->answering, 1, memory_order_relaxed);
            /* and the watch leaves it be: handling a big batch takes longer than two looks,
             * and a client that half-closed after its request lost the answer (an audit) */
            conn_watch_busy(req->slot, true);
        }
        if (buf_failed(&req->body))
            api_error(req, 500, "out_of_memory", "the request could not be buffered");
        else
            dispatch(req);
        /* req->cmd, not req->state: once submitted, the writer may already be answering
         * (command_done writes the state), and this thread must not read it until resumed. */
        if (req->cmd)
            return MHD_YES; /* suspended on the next call (hand_over); command_done resumes */
        req->state = REQUEST_ANSWERED;
    }
    return queue_answer(req);
}

static void log_request(struct request *req, int64_t duration)
{
    char ts[TIMESTAMP_TEXT_MAX];
    timestamp_format(wallclock_now(), true, ts);
    struct buf line;
    struct jsonw w;
    buf_init(&line);
    jsonw_init(&w, &line);
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "ts", ts);
    jsonw_kv_cstr(&w, "method", req->method);
    /* a path that is not UTF-8 (answered 400) would make the line no JSON text (an audit) */
    size_t path_size = strlen(req->path) + 1;
    char *path = arena_alloc(&req->arena, path_size);
    if (path)
        utf8_loggable(path, path_size, req->path);
    jsonw_kv_cstr(&w, "path", path ? path : "?");
    jsonw_kv_cstr(&w, "route", req->route >= 0 ? api_routes[req->route].name : NULL);
    jsonw_kv_int(&w, "status", req->status);
    jsonw_kv_int(&w, "duration_us", duration);
    jsonw_kv_int(&w, "bytes_in", (int64_t)req->body.len);
    if (req->org_id)
        jsonw_kv_int(&w, "org", req->org_id);
    if (req->idempotency_key)
        jsonw_kv_cstr(&w, "idempotency_key", req->idempotency_key);
    jsonw_object_end(&w);
    buf_append_char(&line, '\n');
    if (!buf_failed(&line))
        fwrite(line.data, 1, line.len, stderr);
    buf_free(&line);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api *api = cls;
    struct request *req = *con_cls;
    struct conn_slot *slot = slot_of(conn);
    conn_watch_touch(slot);
    conn_watch_busy(slot, false); /* its answer is sent, or never will be */
    if (!req)
        return;
    *con_cls = NULL;
    if (req->unsubmitted) /* closed before its command was handed over: it never will be */
        atomic_fetch_sub(&api->waiting, 1);
    if (!req->method || !req->path) { /* never handled: libmicrohttpd answered it, or nobody */
        request_free(req);
        return;
    }
    int64_t duration = wallclock_monotonic_usec() - req->started_usec;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->status == 0)
        req->status = 499; /* the client went away before an answer */
    metrics_count_request(&api->metrics, req->route, req->status, duration);
    if (api->config.log_requests)
        log_request(req, duration);
    atomic_fetch_sub_explicit(&api->metrics.in_flight, 1, memory_order_relaxed);
    if (req->answering)
        atomic_fetch_sub_explicit(&api->answering, 1, memory_order_relaxed);
    request_free(req);
}

/* ---- start and stop ------------------------------------------------------------------------ */

int api_bind(const char *host, uint16_t port, uint16_t *bound, char err[STORE_ERR_MAX])
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *addr = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    int gai = getaddrinfo(host, service, &hints, &addr);
    if (gai != 0) {
        snprintf(err, STORE_ERR_MAX, "cannot listen on %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int one = 1;
    int fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* as libmicrohttpd's own: a restart binds while the last run's connections linger, and
     * an IPv6 address is that address alone */
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
              (addr->ai_family != AF_INET6 ||
               setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0) &&
              bind(fd, addr->ai_addr, addr->ai_addrlen) == 0;
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    ok = ok && getsockname(fd, (struct sockaddr *)&local, &local_len) == 0;
    int error = errno;
    freeaddrinfo(addr);
    if (!ok) {
        snprintf(err, STORE_ERR_MAX, "cannot listen on %s:%u: %s%s", host, port, strerror(error),
                 error == EADDRINUSE      ? " (another process holds that port: stop it, or "
                                            "give tallyd another with --listen HOST:PORT)"
                 : error == EADDRNOTAVAIL ? " (no interface of this machine has that "
                                            "address: see --listen)"
                                          : "");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *bound = ntohs(local.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&local)->sin6_port
                                               : ((struct sockaddr_in *)&local)->sin_port);
    return fd;
}

struct api *api_start(const struct api_config *cfg, struct engine *engine, struct tzdb *tzdb,
                      char err[STORE_ERR_MAX])
{
    bool handed = false;
    struct api *api = calloc(1, sizeof *api);
    if (!api) {
        close(cfg->listen_fd);
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return NULL;
    }
    api->config = *cfg;
    api->engine = engine;
    api->tzdb = tzdb;
    unsigned connections = cfg->connections_max && cfg->connections_max < API_CONNECTIONS_MAX
                               ? cfg->connections_max
                               : API_CONNECTIONS_MAX;
    api->metrics.connections_max = connections;
    key_cache_init(&api->keys);
    /* One reader per HTTP thread, plus one for /metrics-style side work. */
    api->readers = reader_pool_new(cfg->data_dir, cfg->threads + 1, err);
    if (!api->readers)
        goto fail;
    api->watch = conn_watch_start(&api->metrics.peer_closes);
    if (!api->watch) {
        snprintf(err, STORE_ERR_MAX, "cannot start the connection watch thread");
        goto fail;
    }
    struct sockaddr_storage local = {0};
    socklen_t local_len = sizeof local;
    (void)getsockname(cfg->listen_fd, (struct sockaddr *)&local, &local_len);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     (local.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* The HTTP threads take this thread's policy when the daemon makes them (sys/rtprio). */
    struct rtprio_saved saved;
    char why[RTPRIO_ERR_MAX];
    if (cfg->realtime_http && !rtprio_raise(&saved, why)) {
        snprintf(err, STORE_ERR_MAX, "--realtime-http: %s", why);
        goto fail;
    }
    if (listen(cfg->listen_fd, SOMAXCONN) != 0) {
        snprintf(err, STORE_ERR_MAX, "cannot listen on %s:%u: %s", cfg->host, cfg->port,
                 strerror(errno));
        goto fail;
    }
    handed = true; /* libmicrohttpd's now, whether it starts or not */
    api->daemon = MHD_start_daemon(
        flags, cfg->port, accept_cb, api, access_cb, api, MHD_OPTION_NOTIFY_COMPLETED, completed_cb,
        api, MHD_OPTION_URI_LOG_CALLBACK, uri_cb, api, MHD_OPTION_NOTIFY_CONNECTION, connection_cb,
        api, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)cfg->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT, API_HEADER_MAX,
        MHD_OPTION_CONNECTION_LIMIT, connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)API_CONNECTION_TIMEOUT_SEC, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (cfg->realtime_http)
        rtprio_restore(&saved);
    if (!api->daemon) {
        snprintf(err, STORE_ERR_MAX, "cannot serve on %s:%u: the HTTP server did not start",
                 cfg->host, cfg->port);
        goto fail;
    }
    return api;
fail:
    if (!handed)
        close(cfg->listen_fd);
    conn_watch_stop(api->watch);
    reader_pool_free(api->readers);
    key_cache_destroy(&api->keys);
    free(api);
    return NULL;
}

uint16_t api_port(struct api *api)
{
    return api->config.port;
}

bool api_drain(struct api *api)
{
    /* new connections are closed as they come from now on (accept_cb). Not by quiescing the
     * daemon: libmicrohttpd's MHD_quiesce_daemon races its epoll workers' own removal of the
     * listening socket and aborts the process when it loses (daemon.c's "Failed to remove
     * listen FD from epoll set": a stop under the suite's load did, once) */
    atomic_store(&api->draining, true);
    int64_t deadline = wallclock_monotonic_usec() + (int64_t)API_DRAIN_TIMEOUT_SEC * 1000000;
    while (atomic_load(&api->waiting) > 0 && wallclock_monotonic_usec() < deadline)
        usleep(1000);
    /* reads may still come on open connections: from here none is submitted (submit), and
     * those counted in before this are waited for */
    atomic_store(&api->stopping, true);
    while (atomic_load(&api->waiting) > 0 && wallclock_monotonic_usec() < deadline)
        usleep(1000);
    /* an answer handed back is not yet sent: the daemon's stop would close its connection,
     * and a client whose change was made would see it dropped (and might send it again); a
     * request whose body never finished arriving changed nothing, and is not waited for */
    while (atomic_load_explicit(&api->answering, memory_order_relaxed) > 0 &&
           wallclock_monotonic_usec() < deadline)
        usleep(1000);
    return atomic_load(&api->waiting) == 0;
}

void api_stop(struct api *api)
{
    if (!api)
        return;
    /* libmicrohttpd aborts the process if a connection is still suspended when it stops: a
     * command the drain left waiting (a sync stuck on the disk) is answered by the engine,
     * which runs until after this, whenever the disk returns */
    while (atomic_load(&api->waiting) > 0)
        usleep(1000);
    MHD_stop_daemon(api->daemon);
    conn_watch_stop(api->watch); /* after: the daemon's last closes remove their slots */
    reader_pool_free(api->readers);
    key_cache_destroy(&api->keys);
    free(api);
}
