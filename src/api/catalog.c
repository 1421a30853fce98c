/* api/catalog: see catalog.h. */
#include "api/catalog.h"

#include <json-c/json.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "core/timestamp.h"
#include "json/json_build.h"
#include "sys/entropy.h"

/* ---- helpers for resources ---------------------------------------------------------------- */

bool catalog_finish_body(struct request *req, bool ok, struct buf *b,
                         struct catalog_definition *def, struct json_in_error *err)
{
    if (ok &&
        (buf_failed(b) || b->len < 2 || !(def->body = arena_strndup(&req->arena, b->data, b->len))))
        ok = json_in_refuse(err, catalog_kind_singular(req->resource->kind), "out_of_memory");
    buf_free(b);
    return ok;
}

void catalog_render_plain(struct jsonw *w, const struct catalog_item *item, struct store_conn *conn,
                          struct arena *a, tally_time now)
{
    (void)conn;
    (void)a;
    (void)now;
    catalog_open_item(w, item);
    jsonw_object_end(w);
}

void catalog_write_body_members(struct jsonw *w, const char *body)
{
    /* The body is an object Tally wrote: its members are the text between the braces. */
    size_t len = strlen(body);
    if (len > 2)
        jsonw_raw_members(w, body + 1, len - 2);
}

struct json_object *catalog_parse_body(const char *body)
{
    return json_tokener_parse(body);
}

void catalog_open_item(struct jsonw *w, const struct catalog_item *item)
{
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", item->lago_id);
    jsonw_kv_cstr(w, "code", item->code);
    catalog_write_body_members(w, item->body);
    jsonw_key(w, "created_at");
    jsonw_time(w, item->created_at, false);
    jsonw_key(w, "updated_at");
    jsonw_time(w, item->updated_at, false);
}

bool catalog_add_ref(struct request *req, struct catalog_definition *def, enum catalog_kind kind,
                     const char *code, const char *lago_id, struct json_in_error *err)
{
    if (!def->refs) {
        def->refs = arena_alloc(&req->arena, sizeof *def->refs * CATALOG_REFS_MAX);
        if (!def->refs) {
            err->field = catalog_kind_plural(kind);
            err->code = "out_of_memory";
            return false;
        }
    }
    if (def->ref_count == CATALOG_REFS_MAX) {
        err->field = catalog_kind_plural(kind);
        err->code = "too_many_items";
        return false;
    }
    def->refs[def->ref_count++] = (struct catalog_ref){kind, code, lago_id, NULL};
    return true;
}

const char catalog_taxes_message[] = "a fee carries at most " API_LIMIT_TEXT(
    CATALOG_TAXES_MAX) " taxes: name at most " API_LIMIT_TEXT(CATALOG_TAXES_MAX) " in tax_codes";

size_t catalog_distinct_codes(const char **codes, size_t n)
{
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        bool repeated = false;
        for (size_t j = 0; j < distinct && !repeated; j++)
            repeated = strcmp(codes[i], codes[j]) == 0;
        if (!repeated)
            codes[distinct++] = codes[i];
    }
    return distinct;
}

bool catalog_parse_tax_codes(struct request *req, struct json_object *obj, struct jsonw *w,
                             struct catalog_definition *def, struct json_in_error *err)
{
    const char **codes = NULL;
    size_t n = 0;
    enum json_in_result r = json_in_string_array(obj, "tax_codes", CATALOG_REFS_MAX,
                                                 CATALOG_CODE_MAX, &req->arena, &codes, &n, err);
    if (r == JSON_IN_INVALID)
        return false;
    n = catalog_distinct_codes(codes, n);
    if (n > CATALOG_TAXES_MAX) { /* an audit found the 33rd kept and not applied */
        err->message = catalog_taxes_message;
        return json_in_refuse(err, "tax_codes", "too_many_items");
    }
    jsonw_key(w, "tax_codes");
    jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        jsonw_cstr(w, codes[i]);
        if (!catalog_add_ref(req, def, CATALOG_TAX, codes[i], NULL, err))
            return false;
    }
    jsonw_array_end(w);
    return true;
}

void catalog_render_tax_array(struct jsonw *w, struct json_object *codes, int64_t org_id,
                              struct store_conn *conn, struct arena *a)
{
    jsonw_array_begin(w);
    for (size_t i = 0;
         json_object_is_type(codes, json_type_array) && i < json_object_array_length(codes); i++) {
        const char *code = json_object_get_string(json_object_array_get_idx(codes, i));
        struct catalog_item tax;
        if (store_catalog_get(conn, org_id, CATALOG_TAX, code, &tax, a) != STORE_OK)
            continue;
        catalog_open_item(w, &tax);
        jsonw_object_end(w);
    }
    jsonw_array_end(w);
}

void catalog_render_taxes(struct jsonw *w, struct json_object *body, int64_t org_id,
                          struct store_conn *conn, struct arena *a)
{
    struct json_object *codes = NULL;
    jsonw_key(w, "taxes");
    if (body)
        json_object_object_get_ex(body, "tax_codes", &codes);
    catalog_render_tax_array(w, codes, org_id, conn, a);
}

/* ---- rendering answers -------------------------------------------------------------------- */

/* A resource's counted members (catalog_resource.count) of n items, each as text without the
 * braces, in out[i] (in the arena). False if the store failed or memory ran out. */
static bool count_members(const struct catalog_resource *r, struct store_conn *conn, int64_t org_id,
                          const char *const *codes, const char *const *bodies, size_t n,
                          struct arena *a, const char **out)
{
    struct buf *b = arena_alloc(a, sizeof *b * (n ? n : 1));
    struct jsonw *w = arena_alloc(a, sizeof *w * (n ? n : 1));
    if (!b || !w)
        return false;
    for (size_t i = 0; i < n; i++) {
        buf_init(&b[i]);
        jsonw_init(&w[i], &b[i]);
        jsonw_object_begin(&w[i]);
    }
    bool ok = n == 0 || r->count(w, conn, org_id, codes, bodies, n, a);
    for (size_t i = 0; i < n; i++) {
        jsonw_object_end(&w[i]);
        if (ok && (buf_failed(&b[i]) || !(out[i] = arena_strndup(a, b[i].data + 1, b[i].len - 2))))
            ok = false;
        buf_free(&b[i]);
    }
    return ok;
}

/* One item of a resource that counts: its common shape and the members counted. */
static void write_counted(struct jsonw *w, const struct catalog_item *item, const char *counted)
{
    catalog_open_item(w, item);
    jsonw_raw_members(w, counted, strlen(counted));
    jsonw_object_end(w);
}

/* `counted`: the members counted for the item, when the resource counts (else NULL). */
static void render_item(struct buf *out, const struct catalog_resource *r,
                        const struct catalog_item *item, struct store_conn *conn, struct arena *a,
                        tally_time now, const char *counted)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, catalog_kind_singular(r->kind));
    if (r->count)
        write_counted(&w, item, counted);
    else
        r->render(&w, item, conn, a, now);
    jsonw_object_end(&w);
}

/* Writer thread. The command's owner is the request, whose route names the resource and
 * holds what it counted before submitting. */
static void render_command(struct command *cmd)
{
    struct request *req = cmd->owner;
    const struct catalog_resource *r = req->resource;
    if (api_error_render_command(cmd, catalog_kind_not_found_code(r->kind)))
        return;
    cmd->http_status = 200;
    render_item(&cmd->response, r, &cmd->item, cmd->conn, cmd->arena, cmd->now, req->counted);
}

/* Before a change of a resource that counts is submitted: its counted members in
 * req->counted. False after answering 500. */
static bool count_change(struct request *req, const char *code, const char *body)
{
    const struct catalog_resource *r = req->resource;
    if (!r->count)
        return true;
    struct store_reader *reader = code ? api_reader_acquire(req->api) : NULL;
    const char *counted = NULL;
    bool ok = count_members(r, reader ? store_reader_conn(reader) : NULL, req->org_id, &code, &body,
                            1, &req->arena, &counted);
    if (reader)
        api_reader_release(req->api, reader);
    req->counted = ok ? counted : NULL;
    if (!req->counted)
        api_error_store_read(req);
    return req->counted != NULL;
}

/* ---- handlers ---------------------------------------------------------------------------- */

static bool parse_definition(struct request *req, struct json_object *obj,
                             struct catalog_definition *def)
{
    struct json_in_error err = {0};
    memset(def, 0, sizeof *def);
    if (!req->resource->parse(req, obj, def, &err)) {
        api_error_validation_message(req, err.field, err.code, err.message);
        return false;
    }
    return true;
}

/* Whether the stored item already expires at `at` (a coupon's expiration_at kept by an update). */
static bool keeps_expiration(const struct catalog_item *existing, tally_time at)
{
    struct json_object *stored = catalog_parse_body(existing->body), *v;
    tally_time was;
    bool same = stored && json_object_object_get_ex(stored, "expiration_at", &v) && v &&
                json_object_is_type(v, json_type_string) &&
                timestamp_parse_iso8601(json_object_get_string(v),
                                        (size_t)json_object_get_string_len(v), &was) &&
                was == at;
    json_object_put(stored);
    return same;
}

static void submit_put(struct request *req, const struct catalog_definition *def,
                       const struct catalog_item *existing, bool terms_kept)
{
    /* what names the item names it by the code it has until the writer renames it */
    if (!count_change(req, existing ? existing->code : def->code, def->body))
        return;
    struct command *cmd = api_new_command(req, COMMAND_CATALOG_PUT, render_command);
    if (!cmd)
        return;
    struct catalog_item *it = &cmd->as.catalog_put.item;
    it->kind = req->resource->kind;
    it->code = def->code;
    it->body = def->body;
    if (existing) {
        it->id = existing->id;
        memcpy(it->lago_id, existing->lago_id, sizeof it->lago_id);
        cmd->as.catalog_put.expected_updated_at = existing->updated_at;
    } else if (!entropy_uuid(it->lago_id)) {
        api_error(req, 500, "out_of_entropy", "no random bytes for an id");
        return;
    }
    cmd->as.catalog_put.refs = def->refs;
    cmd->as.catalog_put.ref_count = def->ref_count;
    /* an expiry the request sets must be ahead of the clock; one an update keeps need not */
    cmd->as.catalog_put.has_expiration_at =
        def->has_expiration_at && !(existing && keeps_expiration(existing, def->expiration_at));
    cmd->as.catalog_put.expiration_at = def->expiration_at;
    cmd->as.catalog_put.terms_kept = terms_kept;
    cmd->as.catalog_put.not_allowed_code = def->not_allowed_code;
    api_submit(req, cmd);
}

void catalog_create(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj =
        api_body_object(req, catalog_kind_singular(req->resource->kind), &doc);
    struct catalog_definition def = {0};
    if (obj && req->resource->prepare_create && !req->resource->prepare_create(req, obj))
        api_error(req, 500, "out_of_memory", "the definition could not be read");
    else if (obj && parse_definition(req, obj, &def))
        submit_put(req, &def, NULL, false);
    json_object_put(doc);
}

static enum store_status read_item(struct request *req, const char *code, struct catalog_item *out)
{
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s = store_catalog_get(store_reader_conn(r), req->org_id, req->resource->kind,
                                            code, out, &req->arena);
    api_reader_release(req->api, r);
    if (s == STORE_NOT_FOUND)
        api_error_not_found(req, catalog_kind_not_found_code(req->resource->kind));
    else if (s != STORE_OK)
        api_error_store_read(req);
    return s;
}

void catalog_update(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj =
        api_body_object(req, catalog_kind_singular(req->resource->kind), &doc);
    struct catalog_item existing;
    struct json_object *merged = NULL;
    struct catalog_definition def = {0};
    bool pruned = false;
    if (!obj || read_item(req, req->params[0], &existing) != STORE_OK ||
        (req->resource->prune_update && !req->resource->prune_update(req, &existing, obj, &pruned)))
        goto done;
    merged = catalog_parse_body(existing.body);
    if (!merged) {
        api_error(req, 500, "store_corrupt", "a stored definition could not be read");
        goto done;
    }
    struct json_build with_code;
    json_build_init(&with_code, merged);
    json_build_string(&with_code, "code", existing.code);
    if (json_build_failed(&with_code) ||
        !(req->resource->merge ? req->resource->merge(req, merged, obj)
                               : json_in_merge(merged, obj))) {
        api_error(req, 500, "out_of_memory", "the update could not be merged");
        goto done;
    }
    if (parse_definition(req, merged, &def) &&
        (!req->resource->check_update || req->resource->check_update(req, &existing, &def)))
        submit_put(req, &def, &existing, pruned);
done:
    json_object_put(merged);
    json_object_put(doc);
}

void catalog_get(struct request *req)
{
    struct catalog_item item;
    tally_time now;
    if (read_item(req, req->params[0], &item) != STORE_OK || !api_org_now(req, &now))
        return;
    const struct catalog_resource *res = req->resource;
    struct store_reader *r = api_reader_acquire(req->api);
    const char *counted = NULL;
    const char *code = item.code, *body = item.body;
    if (res->count && !count_members(res, store_reader_conn(r), req->org_id, &code, &body, 1,
                                     &req->arena, &counted))
        api_error_store_read(req);
    else
        render_item(api_respond(req, 200), res, &item, store_reader_conn(r), &req->arena, now,
                    counted);
    api_reader_release(req->api, r);
}

void catalog_list(struct request *req)
{
    int64_t page, per_page, total;
    tally_time now;
    if (!api_pagination(req, &page, &per_page) || !api_org_now(req, &now))
        return;
    const struct catalog_resource *res = req->resource;
    struct catalog_item *items;
    size_t count;
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s = (res->listed_by_name ? store_catalog_list_by_name : store_catalog_list)(
        store_reader_conn(r), req->org_id, res->kind, (page - 1) * per_page, per_page, &items,
        &count, &total, &req->arena);
    if (s != STORE_OK) {
        api_reader_release(req->api, r);
        api_error_store_read(req);
        return;
    }
    const char **counted = NULL;
    if (res->count) { /* counted before the answer is begun: a failure answers 500 alone */
        size_t room = count ? count : 1;
        const char **codes = arena_alloc(&req->arena, sizeof *codes * room);
        const char **bodies = arena_alloc(&req->arena, sizeof *bodies * room);
        counted = arena_alloc(&req->arena, sizeof *counted * room);
        for (size_t i = 0; codes && bodies && i < count; i++) {
            codes[i] = items[i].code;
            bodies[i] = items[i].body;
        }
        if (!codes || !bodies || !counted ||
            !count_members(res, store_reader_conn(r), req->org_id, codes, bodies, count,
                           &req->arena, counted)) {
            api_reader_release(req->api, r);
            api_error_store_read(req);
            return;
        }
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, catalog_kind_plural(res->kind));
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        if (counted)
            write_counted(&w, &items[i], counted[i]);
        else
            res->render(&w, &items[i], store_reader_conn(r), &req->arena, now);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
    api_reader_release(req->api, r);
}

void catalog_delete(struct request *req)
{
    if (!count_change(req, NULL, NULL))
        return;
    struct command *cmd = api_new_command(req, COMMAND_CATALOG_DELETE, render_command);
    if (!cmd)
        return;
    cmd->as.catalog_delete.kind = req->resource->kind;
    cmd->as.catalog_delete.code = req->params[0];
    api_submit(req, cmd);
}
