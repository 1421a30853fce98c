/* api/ledger_entries: see ledger_entries.h. */
#include "api/ledger_entries.h"

#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "util/jsonw.h"

static void render_entry(struct jsonw *w, const struct store_ledger_entry *e)
{
    /* Balances in the account's normal direction: debit-normal accounts as they are, the
     * others negated, so that each account's usual balance reads positive. */
    int64_t sign = ledger_account_debit_normal(e->account) ? 1 : -1;
    int64_t after = sign * e->balance_after_cents, before = after - sign * e->amount_cents;
    jsonw_object_begin(w);
    jsonw_kv_int(w, "id", e->id);
    jsonw_kv_int(w, "posting_id", e->posting_id);
    jsonw_kv_cstr(w, "cause", ledger_cause_name(e->cause));
    jsonw_kv_cstr(w, "account", ledger_account_name(e->account));
    jsonw_kv_cstr(w, "direction", e->amount_cents > 0 ? "debit" : "credit");
    jsonw_kv_int(w, "amount_cents", e->amount_cents > 0 ? e->amount_cents : -e->amount_cents);
    jsonw_kv_int(w, "balance_before_cents", before);
    jsonw_kv_int(w, "balance_after_cents", after);
    jsonw_kv_cstr(w, "currency", e->currency);
    jsonw_kv_cstr(w, "external_customer_id", e->external_customer_id);
    jsonw_kv_cstr(w, "lago_wallet_id", e->wallet_lago_id);
    jsonw_kv_cstr(w, "lago_wallet_transaction_id", e->wallet_transaction_lago_id);
    jsonw_kv_cstr(w, "lago_authorization_id", e->authorization_lago_id);
    jsonw_key(w, "created_at");
    jsonw_time(w, e->created_at, true);
    jsonw_object_end(w);
}

static bool read_bound(struct request *req, const char *name, bool *has, tally_time *at)
{
    const char *text = api_query_filter(req, name); /* blank: no bound, as other lists' filters */
    *has = text != NULL;
    if (!text || timestamp_parse_iso8601(text, strlen(text), at))
        return true;
    api_error_bad_request(req, "from and to must be ISO 8601 instants");
    return false;
}

void ledger_entries_list(struct request *req)
{
    int64_t page, per_page, total = 0;
    struct store_ledger_filter f = {0};
    if (api_wait_for_wallets(req) || !api_pagination(req, &page, &per_page) ||
        !read_bound(req, "from", &f.has_from, &f.from) || !read_bound(req, "to", &f.has_to, &f.to))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    const char *customer = api_query_filter(req, "external_customer_id"),
               *wallet = api_query_filter(req, "wallet_id");
    const char *missing = NULL;
    enum store_status s = STORE_OK;
    if (customer) {
        /* Every customer that had the external id, deleted ones too: their entries read it,
         * and a deleted customer's stay in the ledger (found by an audit: the live customer
         * alone was taken, so a deleted one's history was 404 or, once its external id was
         * reused, left out). An external id no customer ever had is unknown. */
        bool known = false;
        s = store_customer_external_id_known(conn, req->org_id, customer, &known);
        if (s == STORE_OK && !known)
            s = STORE_NOT_FOUND;
        f.external_customer_id = customer;
        missing = "customer_not_found";
    }
    if (s == STORE_OK && wallet) {
        struct store_wallet w;
        s = store_wallet_get(conn, req->org_id, wallet, &w, &req->arena);
        /* a wallet of a customer without the external id named: no entry is both */
        f.wallet_id =
            customer && s == STORE_OK && strcmp(w.external_customer_id, customer) != 0 ? -1 : w.id;
        missing = "wallet_not_found";
    }
    struct store_ledger_entry *rows = NULL;
    size_t count = 0;
    if (s == STORE_OK)
        s = store_ledger_list(conn, req->org_id, &f, (page - 1) * per_page, per_page, &rows, &count,
                              &total, &req->arena);
    api_reader_release(req->api, r);
    if (s != STORE_OK) {
        s == STORE_NOT_FOUND ? api_error_not_found(req, missing)
                             : api_error(req, 500, "store_failed", NULL);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "ledger_entries");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        render_entry(&w, &rows[i]);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}
