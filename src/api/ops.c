/* api/ops: see ops.h. */
#include "api/ops.h"

#include "api/api.h"
#include "api/routes.h"
#include "store/store.h"
#include "util/jsonw.h"

#include <stdio.h>

void ops_health(struct request *req)
{
    /* a probe must see what refuses changes: a sync the disk refused (a restart heals), or a
     * store that fails them (a full disk, a damaged file: the engine's watch_store); and a
     * damaged file that only reads have met (api_error_store_read) */
    bool sync_failed = engine_failed(req->api->engine);
    int store_code = engine_store_failing(req->api->engine);
    int read_code = atomic_load(&req->api->read_failing);
    bool failed = sync_failed || store_code != 0 || read_code != 0;
    char reason[512];
    if (sync_failed)
        snprintf(reason, sizeof reason,
                 "the disk refused a sync: no change is taken until tallyd is restarted");
    else if (store_code)
        snprintf(reason, sizeof reason, "the store fails changes: %s (%s): %s",
                 store_error_name(store_code), store_error_text(store_code),
                 store_error_advice(store_code));
    else if (read_code)
        snprintf(reason, sizeof reason, "the store fails reads: %s (%s): %s",
                 store_error_name(read_code), store_error_text(read_code),
                 store_error_advice(read_code));
    struct jsonw w;
    jsonw_init(&w, api_respond(req, failed ? 503 : 200));
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "status", failed ? "failing" : "ok");
    if (failed)
        jsonw_kv_cstr(&w, "reason", reason);
    jsonw_kv_int(&w, "schema_version", store_latest_schema_version());
    jsonw_object_end(&w);
}

void ops_metrics(struct request *req)
{
    const char *names[METRICS_ROUTES_MAX];
    for (int i = 0; i < api_route_count && i < METRICS_ROUTES_MAX; i++)
        names[i] = api_routes[i].name;
    struct buf *out = api_respond(req, 200);
    req->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metrics_render(&req->api->metrics, names, api_route_count, req->api->engine, out);
}
