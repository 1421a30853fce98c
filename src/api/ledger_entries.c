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

/*
 * How long the instant `text` names lasts (less a microsecond): a bound covers the whole unit
 * its text names, a date the whole day (UTC), a time to the second that second, to the
 * millisecond that millisecond (created_at shows milliseconds, stored times are
 * microseconds). Found by an audit: `to=2026-01-31` dropped all of January 31, and a `to`
 * equal to an entry's created_at left that entry out.
 */
static tally_time bound_span(const char *text)
{
    if (!strchr(text, 'T') && !strchr(text, 't') && !strchr(text, ' '))
        return (tally_time)86400 * 1000000 - 1;
    const char *dot = strchr(text, '.');
    size_t digits = dot ? strspn(dot + 1, "0123456789") : 0;
    tally_time span = 1000000;
    for (size_t i = 0; i < digits && span > 1; i++)
        span /= 10;
    return span - 1;
}

/* `?from=`/`?to=`: from the start of the unit `from` names to the end of the one `to` names. */
static bool read_bound(struct request *req, const char *name, bool end, bool *has, tally_time *at)
{
    const char *text = api_query_filter(req, name); /* blank: no bound, as other lists' filters */
    *has = text != NULL;
    if (!text)
        return true;
    if (timestamp_parse_iso8601(text, strlen(text), at)) {
        if (end)
            *at += bound_span(text);
        return true;
    }
    /* as Lago's date filters answer (BaseQuery#parse_datetime_filter): never a 400 */
    api_error_validation(req, name, "invalid_date");
    return false;
}

/* `?account=` / `?cause=`: one name, as a mask for the store; 422 value_is_invalid otherwise */
static bool read_name(struct request *req, const char *name, bool account, uint32_t *mask)
{
    const char *text = api_query_filter(req, name);
    *mask = 0;
    if (!text)
        return true;
    enum ledger_account a;
    enum ledger_cause c;
    if (account ? ledger_account_parse(text, &a) : ledger_cause_parse(text, &c)) {
        *mask = (uint32_t)1 << (account ? (int)a : (int)c);
        return true;
    }
    api_error_validation(req, name, "value_is_invalid");
    return false;
}

_Static_assert(LEDGER_ACCOUNT_COUNT <= 32 && LEDGER_CAUSE_COUNT <= 32, "a mask holds every name");

/* Every argument the ledger takes: any other is refused, never ignored (its own list). */
static const char *const known_args[] = {
    "page", "per_page", "external_customer_id", "wallet_id", "from", "to", "account", "cause"};

void ledger_entries_list(struct request *req)
{
    int64_t page, per_page, total = 0;
    struct store_ledger_filter f = {0};
    if (api_wait_for_wallets(req) ||
        !api_refuse_unknown(req, known_args, sizeof known_args / sizeof known_args[0]) ||
        !api_pagination(req, &page, &per_page) ||
        !read_bound(req, "from", false, &f.has_from, &f.from) ||
        !read_bound(req, "to", true, &f.has_to, &f.to) ||
        !read_name(req, "account", true, &f.account_mask) ||
        !read_name(req, "cause", false, &f.cause_mask))
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
        s == STORE_NOT_FOUND ? api_error_not_found(req, missing) : api_error_store_read(req);
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
