/* api/webhook_events: see webhook_events.h. */
#include "api/webhook_events.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/wallet_transactions.h"
#include "util/jsonw.h"

/* The list has no filter: any other argument is refused, never ignored (a ledger audit found a
 * client's customer filter answered with every customer's reminders). */
static const char *const known_args[] = {"page", "per_page"};

void webhook_events_list(struct request *req)
{
    int64_t page, per_page, total = 0;
    /* each event shows its transaction as it is now: debits waiting first written out */
    if (api_wait_for_wallets(req) ||
        !api_refuse_unknown(req, known_args, sizeof known_args / sizeof known_args[0]) ||
        !api_pagination(req, &page, &per_page))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    struct store_webhook *rows = NULL;
    size_t count = 0;
    enum store_status s = store_outbox_list(conn, req->org_id, (page - 1) * per_page, per_page,
                                            &rows, &count, &total, &req->arena);
    struct store_wallet_transaction *objects =
        s == STORE_OK ? arena_alloc(&req->arena, (count ? count : 1) * sizeof *objects) : NULL;
    bool *found = objects ? arena_alloc(&req->arena, (count ? count : 1) * sizeof *found) : NULL;
    for (size_t i = 0; found && i < count; i++)
        found[i] = strcmp(rows[i].object_type, "wallet_transaction") == 0 &&
                   store_wallet_transaction_by_id(conn, rows[i].object_id, &objects[i],
                                                  &req->arena) == STORE_OK;
    api_reader_release(req->api, r);
    if (s != STORE_OK || !found) {
        api_error_store_read(req);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "webhook_events");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++) {
        jsonw_object_begin(&w);
        jsonw_kv_cstr(&w, "lago_id", rows[i].lago_id);
        jsonw_kv_cstr(&w, "webhook_type", rows[i].webhook_type);
        jsonw_kv_cstr(&w, "object_type", rows[i].object_type);
        /* Lago's webhook bodies name the organization (its UUID); Tally's organizations have
         * only their ID (tally org list), given as text as Lago's is */
        char org[24];
        snprintf(org, sizeof org, "%lld", (long long)rows[i].org_id);
        jsonw_kv_cstr(&w, "organization_id", org);
        jsonw_key(&w, rows[i].object_type);
        if (found[i])
            wallet_transactions_render(&w, &objects[i]);
        else
            jsonw_null(&w);
        jsonw_kv_raw(&w, "data", rows[i].data_json);
        jsonw_key(&w, "created_at");
        jsonw_time(&w, rows[i].created_at, false);
        jsonw_key(&w, "delivered_at");
        rows[i].has_delivered_at ? jsonw_time(&w, rows[i].delivered_at, false) : jsonw_null(&w);
        jsonw_object_end(&w);
    }
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}
