/*
 * api/fees: Lago's fee object, one writer for every answer that shows fees: an invoice's fees
 * (GET and PUT /invoices/{id}, GET /invoices) and the fees an event would bring (POST
 * /events/estimate_fees, estimate_instant_fees, batch_estimate_instant_fees).
 *
 * Lago's V1::FeeSerializer (app/serializers/v1/fee_serializer.rb) writes every member on every
 * fee, null where the fee has none; only the dates (a charge's, a subscription's or an add-on's
 * fee) and event_transaction_id (a fee paid in advance) depend on the fee. The caller says
 * what it knows in a fee_view; the writer writes all of it, in Lago's order and types. An
 * audit found invoice fees without a lago_id and both kinds short of a dozen members, each
 * writer having its own list.
 *
 * Tally's fees are whole minor units (the fee rounds once, Lago's rule): the precise amounts
 * are the amount in currency units, exact, and the taxes' precise amount the unrounded taxes
 * the caller gives.
 *
 * Threads: any.
 */
#ifndef TALLY_API_FEES_H
#define TALLY_API_FEES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/money.h"
#include "core/timestamp.h"

struct jsonw;

/* FeeObject (Lago's serializer: decimals as strings), or FeeEstimateObject (Lago's instant
 * estimates, whose spec types the precise amounts and the unit amount as numbers, the unit
 * amount in minor units: Fees::EstimateInstant::BaseService's unit_amount_cents). */
enum fee_shape { FEE_OBJECT, FEE_ESTIMATE };

#define FEE_NO_EVENTS_COUNT INT64_MIN /* events_count null */

struct fee_item {
    const char *type, *code, *name, *description, *invoice_display_name;
    const char *filters_json; /* the charge filter's values object, or NULL */
    const char *filter_invoice_display_name;
    const char *lago_item_id, *item_type;
    const char *grouped_by_json; /* an object; NULL writes {} (Lago's default) */
};

struct fee_view {
    enum fee_shape shape;
    const char *lago_id; /* NULL: a fee not saved (an estimate's) */
    const char *charge_lago_id, *charge_filter_lago_id, *invoice_lago_id;
    const char *subscription_lago_id, *external_subscription_id;
    const char *customer_lago_id, *external_customer_id;
    struct fee_item item;
    bool pay_in_advance, invoiceable, self_billed;
    const char *currency;
    int32_t exponent; /* the currency's decimals */
    int64_t amount_cents, taxes_amount_cents;
    money_t taxes_precise_cents;                /* the taxes before rounding, in minor units */
    money_t taxes_rate;                         /* percent */
    const char *units, *total_aggregated_units; /* decimal text */
    money_t precise_unit_amount; /* in currency units; FEE_ESTIMATE: in minor units (Lago's) */
    int64_t events_count;        /* or FEE_NO_EVENTS_COUNT */
    const char *payment_status;
    bool has_created_at, has_dates;
    tally_time created_at, from_date, to_date;
    const char *event_transaction_id; /* written for a fee paid in advance; NULL is null */
};

/* Writes the fee's members into the object the caller has opened (which may add its own, as
 * applied_taxes, before closing it). False, having written nothing, if an amount cannot be
 * shown in the currency's units. */
bool fees_write_members(struct jsonw *w, const struct fee_view *f);

#endif
