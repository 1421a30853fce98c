/* api/invoices: see invoices.h. */
#include "api/invoices.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/customers.h"
#include "api/errors.h"
#include "api/fees.h"
#include "api/wallets.h"
#include "core/money.h"
#include "core/timestamp.h"
#include "core/wallet.h"
#include "json/json_in.h"
#include "sys/digest.h"
#include "util/jsonw.h"

static const char *const status_names[] = {[INVOICE_DRAFT] = "draft",
                                           [INVOICE_FINALIZED] = "finalized",
                                           [INVOICE_VOIDED] = "voided",
                                           [INVOICE_OPEN] = "open"};
static const char *const payment_names[] = {[INVOICE_PAYMENT_PENDING] = "pending",
                                            [INVOICE_PAYMENT_SUCCEEDED] = "succeeded",
                                            [INVOICE_PAYMENT_FAILED] = "failed"};

static bool payment_status_parse(const char *text, enum invoice_payment_status *out)
{
    for (int i = INVOICE_PAYMENT_PENDING; i <= INVOICE_PAYMENT_FAILED; i++) {
        if (strcmp(text, payment_names[i]) == 0) {
            *out = (enum invoice_payment_status)i;
            return true;
        }
    }
    return false;
}

/*
 * Lago's status filters on the list (its InvoicesQueryFiltersContract): one value or a list,
 * a value Lago does not have refused with the contract's 422 (a 400 without a code before:
 * an audit). Each masks over Tally's values first, then Lago's that Tally never gives (they
 * match no invoice); Tally's own `open` is taken too. Lago reports both spellings of each
 * (payment_status and payment_statuses[], status and statuses[]) under the first.
 */
static const char *const status_filter_names[] = {
    [INVOICE_DRAFT] = "draft", [INVOICE_FINALIZED] = "finalized", [INVOICE_VOIDED] = "voided",
    [INVOICE_OPEN] = "open",   [INVOICE_OPEN + 1] = "failed",     [INVOICE_OPEN + 2] = "pending"};
/* invoice_type has no contract: Lago compares the column with it, and a type it does not have
 * matches no invoice (nor do those Tally never issues) */
static const char *const type_filter_names[] = {[INVOICE_CREDIT] = "credit",
                                                [INVOICE_CREDIT + 1] = "subscription",
                                                [INVOICE_CREDIT + 2] = "add_on",
                                                [INVOICE_CREDIT + 3] = "one_off",
                                                [INVOICE_CREDIT + 4] = "advance_charges",
                                                [INVOICE_CREDIT + 5] = "progressive_billing"};
static const struct api_enum_filter payment_filter = {"payment_status", payment_names, 3,
                                                      "pending, succeeded, failed"};
static const struct api_enum_filter status_filter = {
    "status", status_filter_names, sizeof status_filter_names / sizeof status_filter_names[0],
    "draft, finalized, voided, failed, pending"};
static const struct api_enum_filter type_filter = {
    "invoice_type", type_filter_names, sizeof type_filter_names / sizeof type_filter_names[0],
    NULL};

/* Both spellings of one filter into its mask; false after answering. */
static bool read_mask(struct request *req, const struct api_enum_filter *f, const char *name,
                      const char *plural, int64_t *mask)
{
    uint64_t one = 0, many = 0;
    if (!api_query_enum(req, f, name, &one) || (plural && !api_query_enum(req, f, plural, &many)))
        return false;
    *mask = (int64_t)(one | many);
    return true;
}

/* An invoice as rendered: the row, the top-up it bills and the customer it is made out to. */
struct invoice_view {
    const struct store_invoice *v;
    const struct store_wallet_transaction *t; /* NULL if the top-up is gone */
    const struct customer *customer;          /* NULL if the customer is gone */
    const char *customer_taxes;               /* customers_taxes_text's */
    tally_time now;                           /* the organization's clock: payment_overdue */
};

/* A credit invoice's one fee is not a row of its own: its lago_id is made from the invoice's,
 * the same at every read and across restarts (sys/digest's name-based UUID). */
static void credit_fee_id(const struct store_invoice *v, char out[UUID_TEXT])
{
    static const char label[] = "tally credit invoice fee\n";
    const void *parts[] = {label, v->lago_id};
    const size_t lens[] = {sizeof label - 1, strlen(v->lago_id)};
    digest_uuid(parts, lens, 2, out);
}

/* Lago's fee of a credit invoice: the credits bought, in the wallet's currency. Its item is
 * the transaction, named by it or "credit" (Lago's Fee#item_name and #invoice_name, its
 * spec/models/fee_spec.rb). */
static void render_credit_fee(struct jsonw *w, const struct invoice_view *view)
{
    const struct store_invoice *v = view->v;
    const struct store_wallet_transaction *t = view->t;
    char id[UUID_TEXT], credits[MONEY_TEXT_MAX];
    credit_fee_id(v, id);
    money_t bought;
    bool has_credits =
        t && wallet_cents_to_credits(t->amount_cents, t->rate_amount,
                                     wallets_currency_exponent(t->currency), &bought) == MONEY_OK;
    if (has_credits)
        money_format_fraction(money_normalize(bought), 1, credits, sizeof credits);
    const char *name = t && t->name && *t->name ? t->name : "credit";
    /* Lago's: a partner's invoices are self-billed, and their fees say so (read from the
     * customer, which cannot change it once it has an invoice: see render_invoice) */
    const char *account = view->customer ? view->customer->text[CUSTOMER_ACCOUNT_TYPE] : NULL;
    struct fee_view f = {
        .shape = FEE_OBJECT,
        .lago_id = id,
        .invoice_lago_id = v->lago_id,
        .customer_lago_id = v->customer_lago_id,
        .external_customer_id = v->external_customer_id,
        .item = {.type = "credit",
                 .code = "credit",
                 .name = name,
                 .description = "credit",
                 .invoice_display_name = name,
                 .lago_item_id = t ? t->lago_id : NULL,
                 .item_type = "WalletTransaction"},
        .invoiceable = true,
        .self_billed = account && strcmp(account, "partner") == 0,
        .currency = v->currency,
        .exponent = wallets_currency_exponent(v->currency),
        .amount_cents = v->amount_cents,
        .taxes_precise_cents = money_from_int(0),
        .taxes_rate = money_from_int(0),
        .units = has_credits ? credits : NULL,
        .total_aggregated_units = has_credits ? credits : NULL,
        .precise_unit_amount = t ? t->rate_amount : money_from_int(0), /* a credit's price */
        .events_count = FEE_NO_EVENTS_COUNT,
        .payment_status = payment_names[v->payment_status],
        .has_created_at = true,
        .created_at = v->created_at,
    };
    jsonw_object_begin(w);
    (void)fees_write_members(w, &f); /* cents and a stored rate always show */
    jsonw_object_end(w);
}

/* The issuing date plus the net payment term, YYYY-MM-DD (the issuing date if unreadable). */
static const char *due_date(const struct store_invoice *v, char out[TIMESTAMP_TEXT_MAX])
{
    tally_time issued;
    if (v->net_payment_term == 0 ||
        !timestamp_parse_iso8601(v->issuing_date, strlen(v->issuing_date), &issued))
        return v->issuing_date;
    timestamp_format(issued + (tally_time)v->net_payment_term * TIMESTAMP_USEC_PER_DAY, false, out);
    out[10] = '\0';
    return out;
}

/*
 * Lago's payment_overdue, as its clock (Clock::MarkInvoicesAsPaymentOverdueJob and
 * Invoices::Payments::MarkOverdueService) would have set it by `now`: a finalized invoice whose
 * payment has not succeeded (pending or failed) once its payment_due_date is past, the date's
 * midnight (UTC) before now as Lago's query compares a date with the time. Read at the
 * organization's clock, a test clock's included; Tally takes no payment dispute. It was false
 * always (an audit). Store's list filter: INVOICE_FILTER.
 */
static bool payment_overdue(const struct store_invoice *v, tally_time now)
{
    if (v->status != INVOICE_FINALIZED || v->payment_status == INVOICE_PAYMENT_SUCCEEDED)
        return false;
    char text[TIMESTAMP_TEXT_MAX];
    const char *due = due_date(v, text);
    tally_time at;
    return timestamp_parse_iso8601(due, strlen(due), &at) && at < now;
}

/* One invoice. `shown` is an invoice answered alone (GET, PUT): Lago's render_invoice then
 * includes its subscriptions, billing periods, credits and error details, which its list
 * (InvoiceIndex) leaves out (app/controllers/api/v1/invoices_controller.rb,
 * app/controllers/concerns/invoice_index.rb). A credit invoice has none of them. */
static void render_invoice(struct jsonw *w, const struct invoice_view *view, bool shown)
{
    const struct store_invoice *v = view->v;
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", v->lago_id);
    jsonw_kv_null(w, "billing_entity_code");
    if (v->sequential_id > 0)
        jsonw_kv_int(w, "sequential_id", v->sequential_id);
    else
        jsonw_kv_null(w, "sequential_id"); /* not issued yet: Lago's has none until finalized */
    jsonw_kv_cstr(w, "number", v->number);
    jsonw_kv_cstr(w, "purchase_order_number", v->purchase_order_number);
    jsonw_kv_cstr(w, "issuing_date", v->issuing_date);
    char due[TIMESTAMP_TEXT_MAX];
    jsonw_kv_cstr(w, "payment_due_date", due_date(v, due));
    jsonw_kv_int(w, "net_payment_term", v->net_payment_term);
    jsonw_kv_cstr(w, "invoice_type", "credit");
    jsonw_kv_cstr(w, "status", status_names[v->status]);
    jsonw_kv_cstr(w, "payment_status", payment_names[v->payment_status]);
    jsonw_kv_null(w, "payment_dispute_lost_at"); /* Tally takes no payment to dispute */
    jsonw_kv_bool(w, "payment_overdue", payment_overdue(v, view->now));
    jsonw_kv_cstr(w, "currency", v->currency);
    const char *amounts[] = {"fees_amount_cents", "sub_total_excluding_taxes_amount_cents",
                             "sub_total_including_taxes_amount_cents", "total_amount_cents",
                             "total_due_amount_cents"};
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++)
        jsonw_kv_int(w, amounts[i],
                     i == 4 && v->payment_status == INVOICE_PAYMENT_SUCCEEDED ? 0
                                                                              : v->amount_cents);
    jsonw_kv_int(w, "total_paid_amount_cents",
                 v->payment_status == INVOICE_PAYMENT_SUCCEEDED ? v->amount_cents : 0);
    jsonw_kv_int(w, "total_offsetted_credit_note_amount_cents", 0); /* no credit notes yet */
    /* credits are not spent on a credit invoice, nor coupons, credit notes or taxes */
    const char *zeros[] = {"coupons_amount_cents",
                           "credit_notes_amount_cents",
                           "taxes_amount_cents",
                           "prepaid_credit_amount_cents",
                           "prepaid_granted_credit_amount_cents",
                           "prepaid_purchased_credit_amount_cents",
                           "progressive_billing_credit_amount_cents"};
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++)
        jsonw_kv_int(w, zeros[i], 0);
    /* Lago's: a partner's invoices are self-billed. Lago stores it on the invoice when it is
     * made; Tally reads it from the customer's account_type (and so does the list's self_billed
     * filter, store.c), which is the same thing: the account type of a customer that has an
     * invoice cannot change (engine/customer_edit.c refuses it while the customer has a wallet,
     * which every invoice Tally issues comes from, as Lago's Customer#editable? keeps it), so an
     * invoice's self_billed is the one it was issued with and no column is needed. */
    const char *account = view->customer ? view->customer->text[CUSTOMER_ACCOUNT_TYPE] : NULL;
    jsonw_kv_bool(w, "self_billed", account && strcmp(account, "partner") == 0);
    jsonw_kv_null(w, "file_url");
    jsonw_kv_null(w, "xml_url"); /* Tally makes no e-invoice */
    jsonw_kv_raw(w, "applied_invoice_custom_sections", "[]");
    jsonw_kv_int(w, "version_number", 4);
    jsonw_key(w, "created_at");
    jsonw_time(w, v->created_at, false);
    jsonw_key(w, "updated_at");
    jsonw_time(w, v->updated_at, false);
    jsonw_kv_null(w, "voided_at"); /* Tally voids no invoice yet */
    jsonw_key(w, "customer");
    if (view->customer) {
        customers_render(w, view->customer, view->customer_taxes); /* Lago's: all of it */
    } else {
        jsonw_object_begin(w);
        jsonw_kv_cstr(w, "lago_id", v->customer_lago_id);
        jsonw_kv_cstr(w, "external_id", v->external_customer_id);
        jsonw_object_end(w);
    }
    if (shown) {
        jsonw_kv_raw(w, "subscriptions", "[]");
        jsonw_kv_raw(w, "billing_periods", "[]");
    }
    /* Tally's lists show the fees too, where Lago's leave them out */
    jsonw_key(w, "fees");
    jsonw_array_begin(w);
    render_credit_fee(w, view);
    jsonw_array_end(w);
    if (shown)
        jsonw_kv_raw(w, "credits", "[]"); /* credit notes and coupons it took: none */
    jsonw_kv_raw(w, "metadata", "[]");
    jsonw_kv_raw(w, "applied_taxes", "[]");
    if (shown)
        jsonw_kv_raw(w, "error_details", "[]");
    jsonw_object_end(w);
}

/* What an invoice is rendered with: its top-up and customer, in `a`; false after a store
 * failure. */
static bool view_of(struct store_conn *c, const struct store_invoice *v, tally_time now,
                    struct invoice_view *out, struct arena *a)
{
    struct store_wallet_transaction *t = arena_alloc(a, sizeof *t);
    struct customer *customer = arena_alloc(a, sizeof *customer);
    if (!t || !customer)
        return false;
    enum store_status ts = store_wallet_transaction_by_id(c, v->wallet_transaction_id, t, a);
    enum store_status cs = store_customer_by_id(c, v->customer_id, customer, a);
    if (ts == STORE_ERROR || cs == STORE_ERROR)
        return false;
    *out = (struct invoice_view){.v = v,
                                 .t = ts == STORE_OK && t->id != 0 ? t : NULL,
                                 .customer = cs == STORE_OK ? customer : NULL,
                                 .now = now};
    if (out->customer && !(out->customer_taxes = customers_taxes_text(c, customer, a)))
        return false;
    return true;
}

static void render_one(struct buf *out, struct store_conn *c, const struct store_invoice *v,
                       tally_time now, struct arena *a)
{
    struct invoice_view view = {.v = v, .now = now};
    (void)view_of(c, v, now, &view, a); /* what could not be read is rendered without */
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "invoice");
    render_invoice(&w, &view, true);
    jsonw_object_end(&w);
}

static void render_command(struct command *cmd)
{
    if (api_error_render_command(cmd, "invoice_not_found"))
        return;
    struct store_invoice v;
    if (store_invoice_get(cmd->conn, cmd->org_id, cmd->invoice.lago_id, &v, cmd->arena) !=
        STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    cmd->http_status = 200;
    render_one(&cmd->response, cmd->conn, &v, cmd->now, cmd->arena);
}

void invoices_get(struct request *req)
{
    tally_time now;
    if (!api_org_now(req, &now))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_invoice v;
    enum store_status s =
        store_invoice_get(store_reader_conn(r), req->org_id, req->params[0], &v, &req->arena);
    if (s == STORE_OK)
        render_one(api_respond(req, 200), store_reader_conn(r), &v, now, &req->arena);
    api_reader_release(req->api, r);
    if (s == STORE_NOT_FOUND)
        api_error_not_found(req, "invoice_not_found");
    else if (s != STORE_OK)
        api_error_store_read(req);
}

/*
 * An issuing date as a query argument into *out (NULL when absent or blank): a date, or an
 * ISO 8601 date-time, which Lago's query parses (parse_datetime_filter) and its date column
 * then reads as the date written (its offset's, not UTC's). Anything else is 422
 * invalid_date under the filter's name (an audit found a 400), where Lago's invoice index
 * drops a date it cannot read and lists unfiltered: a filter dropped silently would list
 * invoices the client did not ask for (docs/API.md, Where Tally differs); false after
 * answering.
 */
static bool query_date(struct request *req, const char *name, const char **out)
{
    const char *v = api_query(req, name);
    *out = NULL;
    if (!v || !*v)
        return true;
    int y = 0, m = 0, d = 0;
    tally_time at;
    bool shaped = strlen(v) >= 10 && v[4] == '-' && v[7] == '-';
    for (int i = 0; shaped && i < 10; i++)
        shaped = i == 4 || i == 7 || (v[i] >= '0' && v[i] <= '9');
    if (shaped && sscanf(v, "%4d-%2d-%2d", &y, &m, &d) == 3 && m >= 1 && m <= 12 && d >= 1 &&
        d <= timestamp_days_in_month(y, m) && timestamp_parse_iso8601(v, strlen(v), &at)) {
        *out = strlen(v) == 10 ? v : arena_strndup(&req->arena, v, 10);
        if (*out)
            return true;
        api_error(req, 500, "out_of_memory", NULL);
        return false;
    }
    api_error_validation(req, name, "invalid_date");
    return false;
}

/* An amount in cents as a query argument (`absent` when not given); false after a 422
 * value_is_invalid naming it (Lago has no answer of its own: its query hands the text to
 * the database, which refuses it; an audit found Tally's 400). */
static bool query_cents(struct request *req, const char *name, int64_t absent, int64_t *out)
{
    const char *v = api_query(req, name);
    *out = absent;
    if (!v || !*v)
        return true;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno == 0 && *end == '\0') {
        *out = n;
        return true;
    }
    char what[96];
    snprintf(what, sizeof what, "%s must be an integer amount of cents", name);
    api_error_validation_message(req, name, "value_is_invalid", what);
    return false;
}

void invoices_list(struct request *req)
{
    int64_t page, per_page, total = 0;
    struct store_invoice_filter filter = {.currency = api_query_filter(req, "currency")};
    if (!api_pagination(req, &page, &per_page) ||
        !read_mask(req, &payment_filter, "payment_status", "payment_statuses",
                   &filter.payment_status_mask) ||
        !read_mask(req, &status_filter, "status", "statuses", &filter.status_mask) ||
        !read_mask(req, &type_filter, "invoice_type", NULL, &filter.type_mask) ||
        !query_date(req, "issuing_date_from", &filter.issuing_date_from) ||
        !query_date(req, "issuing_date_to", &filter.issuing_date_to) ||
        !query_cents(req, "amount_from", INT64_MIN, &filter.amount_from) ||
        !query_cents(req, "amount_to", INT64_MAX, &filter.amount_to))
        return;
    /* not served yet (the Invoices issue): refused rather than answered unfiltered; invoices
     * keep no metadata yet (invoices_update refuses it too) */
    static const char *const unserved[] = {"search_term",          "payment_dispute_lost",
                                           "billing_entity_codes", "metadata",
                                           "settlements",          "purchase_order_number"};
    if (!api_refuse_unserved(req, unserved, sizeof unserved / sizeof unserved[0]))
        return;
    /* a partner's invoices are self-billed (Lago's); Tally takes no payment in part: asking
     * for those matches none, asking for the others all */
    int self_billed, partially_paid, overdue;
    if (!api_query_bool_filter(req, "self_billed", &self_billed) ||
        !api_query_bool_filter(req, "partially_paid", &partially_paid) ||
        !api_query_bool_filter(req, "payment_overdue", &overdue))
        return;
    filter.self_billed = self_billed < 0 ? 0 : self_billed == 1 ? 1 : 2;
    bool none = partially_paid == 1;
    /* overdue as payment_overdue reads it: a due date on or before the day of the instant
     * just before now */
    tally_time now;
    char through[TIMESTAMP_TEXT_MAX];
    if (!api_org_now(req, &now))
        return;
    timestamp_format(now - 1, false, through);
    through[10] = '\0';
    filter.overdue = overdue < 0 ? 0 : overdue == 1 ? 1 : 2;
    filter.overdue_through = through;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    /* customer_external_id: Lago's index takes it too, when external_customer_id is not sent
     * (an audit found it ignored, and every customer's invoices listed) */
    const char *customer = api_query(req, "external_customer_id")
                               ? api_query_filter(req, "external_customer_id")
                               : api_query_filter(req, "customer_external_id");
    struct store_invoice *rows = NULL;
    size_t count = 0;
    enum store_status s = STORE_OK;
    /* the customer only filters, as in Lago (InvoicesQuery): one unknown or deleted has none */
    if (customer) {
        struct customer c;
        s = store_customer_get(conn, req->org_id, customer, &c, &req->arena);
        if (s == STORE_OK)
            filter.customer_id = c.id;
        else if (s == STORE_NOT_FOUND) {
            none = true;
            s = STORE_OK;
        }
    }
    if (s == STORE_OK && !none)
        s = store_invoice_list(conn, req->org_id, &filter, (page - 1) * per_page, per_page, &rows,
                               &count, &total, &req->arena);
    struct invoice_view *views =
        s == STORE_OK ? arena_alloc(&req->arena, (count ? count : 1) * sizeof *views) : NULL;
    for (size_t i = 0; views && i < count; i++)
        if (!view_of(conn, &rows[i], now, &views[i], &req->arena))
            views = NULL;
    api_reader_release(req->api, r);
    if (s != STORE_OK || !views) {
        api_error_store_read(req);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "invoices");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        render_invoice(&w, &views[i], false);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}

void invoices_update(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "invoice", &doc);
    struct command *cmd = obj ? api_new_command(req, COMMAND_INVOICE_UPDATE, render_command) : NULL;
    struct json_object *metadata;
    if (!cmd)
        goto done;
    /* Lago keeps an invoice's metadata: refused until Tally does (the Invoices issue), where
     * it was dropped in silence (found by a compatibility audit) */
    if (json_object_object_get_ex(obj, "metadata", &metadata) && metadata) {
        api_error_validation(req, "metadata", "not_supported");
        goto done;
    }
    /* Lago's Invoices::UpdateService: no payment_status (nor metadata) changes nothing and
     * answers the invoice; anything else than a status, null included, is value_is_invalid
     * (an audit found both 422 value_is_mandatory) */
    struct json_object *sent;
    if (!json_object_object_get_ex(obj, "payment_status", &sent)) {
        invoices_get(req);
        goto done;
    }
    if (!json_object_is_type(sent, json_type_string) ||
        !payment_status_parse(json_object_get_string(sent),
                              &cmd->as.invoice_update.payment_status)) {
        api_error_validation(req, "payment_status", "value_is_invalid");
        goto done;
    }
    cmd->as.invoice_update.lago_id = req->params[0];
    snprintf(cmd->invoice.lago_id, sizeof cmd->invoice.lago_id, "%s", req->params[0]);
    api_submit(req, cmd);
done:
    json_object_put(doc);
}
