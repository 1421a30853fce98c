/* api/fees: see fees.h. */
#include "api/fees.h"

#include "util/jsonw.h"

/* v / 10^exponent, exact (the scale grows), as decimal text with at least one decimal. */
static bool units_text(money_t v, int32_t exponent, char out[MONEY_TEXT_MAX])
{
    money_t shifted;
    return money_from_coef(v.coef, v.scale + exponent, &shifted) == MONEY_OK &&
           money_format_fraction(money_normalize(shifted), 1, out, MONEY_TEXT_MAX) > 0;
}

/* A decimal as FeeObject writes it (a string) or FeeEstimateObject (a number). */
static void kv_decimal(struct jsonw *w, const struct fee_view *f, const char *key, const char *text)
{
    if (f->shape == FEE_ESTIMATE)
        jsonw_kv_raw(w, key, text);
    else
        jsonw_kv_cstr(w, key, text);
}

static void kv_time(struct jsonw *w, const char *key, bool has, tally_time t)
{
    jsonw_key(w, key);
    has ? jsonw_time(w, t, false) : jsonw_null(w);
}

static void write_item(struct jsonw *w, const struct fee_item *item)
{
    jsonw_key(w, "item");
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "type", item->type);
    jsonw_kv_cstr(w, "code", item->code);
    jsonw_kv_cstr(w, "name", item->name);
    jsonw_kv_cstr(w, "description", item->description);
    jsonw_kv_cstr(w, "invoice_display_name", item->invoice_display_name);
    jsonw_kv_raw(w, "filters", item->filters_json ? item->filters_json : "null");
    jsonw_kv_cstr(w, "filter_invoice_display_name", item->filter_invoice_display_name);
    jsonw_kv_cstr(w, "lago_item_id", item->lago_item_id);
    jsonw_kv_cstr(w, "item_type", item->item_type);
    jsonw_kv_raw(w, "grouped_by", item->grouped_by_json ? item->grouped_by_json : "{}");
    jsonw_object_end(w);
}

bool fees_write_members(struct jsonw *w, const struct fee_view *f)
{
    /* every amount first: a failure writes nothing */
    char amount[MONEY_TEXT_MAX], total[MONEY_TEXT_MAX], taxes[MONEY_TEXT_MAX], rate[MONEY_TEXT_MAX],
        unit_amount[MONEY_TEXT_MAX], subtotal[MONEY_TEXT_MAX];
    money_t total_cents;
    if (money_add(money_from_int(f->amount_cents), f->taxes_precise_cents, &total_cents) !=
            MONEY_OK ||
        !units_text(money_from_int(f->amount_cents), f->exponent, amount) ||
        !units_text(total_cents, f->exponent, total) ||
        !units_text(f->taxes_precise_cents, f->exponent, taxes) ||
        money_format_fraction(money_normalize(f->taxes_rate), 1, rate, sizeof rate) == 0 ||
        money_format_fraction(money_normalize(f->precise_unit_amount), 1, unit_amount,
                              sizeof unit_amount) == 0 ||
        money_format_fraction(money_from_int(f->amount_cents), 1, subtotal, sizeof subtotal) == 0)
        return false;
    jsonw_kv_cstr(w, "lago_id", f->lago_id);
    jsonw_kv_cstr(w, "lago_charge_id", f->charge_lago_id);
    jsonw_kv_cstr(w, "lago_charge_filter_id", f->charge_filter_lago_id);
    jsonw_kv_null(w, "lago_fixed_charge_id"); /* Tally has no fixed charges */
    jsonw_kv_cstr(w, "lago_invoice_id", f->invoice_lago_id);
    jsonw_kv_null(w, "lago_true_up_fee_id"); /* nor minimum charges' true-ups */
    jsonw_kv_null(w, "lago_true_up_parent_fee_id");
    jsonw_kv_null(w, "lago_original_fee_id"); /* nor fees regenerated from another */
    jsonw_kv_cstr(w, "lago_subscription_id", f->subscription_lago_id);
    jsonw_kv_cstr(w, "external_subscription_id", f->external_subscription_id);
    jsonw_kv_cstr(w, "lago_customer_id", f->customer_lago_id);
    jsonw_kv_cstr(w, "external_customer_id", f->external_customer_id);
    write_item(w, &f->item);
    jsonw_kv_bool(w, "pay_in_advance", f->pay_in_advance);
    jsonw_kv_bool(w, "invoiceable", f->invoiceable);
    jsonw_kv_int(w, "amount_cents", f->amount_cents);
    jsonw_kv_cstr(w, "amount_currency", f->currency);
    kv_decimal(w, f, "precise_amount", amount);
    kv_decimal(w, f, "precise_total_amount", total);
    jsonw_kv_int(w, "taxes_amount_cents", f->taxes_amount_cents);
    kv_decimal(w, f, "taxes_precise_amount", taxes);
    jsonw_kv_raw(w, "taxes_rate", rate); /* a number in both of Lago's schemas */
    jsonw_kv_cstr(w, "total_aggregated_units", f->total_aggregated_units);
    jsonw_kv_int(w, "total_amount_cents", f->amount_cents + f->taxes_amount_cents);
    jsonw_kv_cstr(w, "total_amount_currency", f->currency);
    jsonw_kv_cstr(w, "units", f->units);
    jsonw_kv_null(w, "description"); /* a one-off invoice's fee has one: Tally issues none */
    kv_decimal(w, f, "precise_unit_amount", unit_amount);
    jsonw_kv_cstr(w, "precise_coupons_amount_cents", "0.0"); /* no coupon reaches a fee yet */
    jsonw_kv_int(w, "sub_total_excluding_taxes_amount_cents", f->amount_cents);
    jsonw_kv_cstr(w, "sub_total_excluding_taxes_precise_amount_cents", subtotal);
    jsonw_key(w, "events_count");
    f->events_count == FEE_NO_EVENTS_COUNT ? jsonw_null(w) : jsonw_int(w, f->events_count);
    jsonw_kv_cstr(w, "payment_status", f->payment_status);
    kv_time(w, "created_at", f->has_created_at, f->created_at);
    /* Lago sets none of the three on a fee whose invoice's payment changes (its
     * UpdateFeesPaymentStatusJob writes payment_status alone) */
    jsonw_kv_null(w, "succeeded_at");
    jsonw_kv_null(w, "failed_at");
    jsonw_kv_null(w, "refunded_at");
    /* Lago's details of a percentage or graduated percentage fee: not computed (docs/API.md);
     * an instant estimate's are null in Lago (Fees::EstimateInstant::BaseService) */
    jsonw_kv_raw(w, "amount_details", f->shape == FEE_ESTIMATE ? "null" : "{}");
    jsonw_kv_bool(w, "self_billed", f->self_billed);
    jsonw_kv_null(w, "pricing_unit_details"); /* no pricing units */
    jsonw_kv_raw(w, "presentation_breakdowns", "[]");
    if (f->has_dates) {
        kv_time(w, "from_date", true, f->from_date);
        kv_time(w, "to_date", true, f->to_date);
    }
    if (f->pay_in_advance)
        jsonw_kv_cstr(w, "event_transaction_id", f->event_transaction_id);
    return true;
}
