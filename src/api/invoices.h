/*
 * api/invoices: invoices in Lago's shape. Today Tally issues one kind, the credit invoice of a
 * paid top-up (invoice_type "credit"); the Invoices issue adds subscription and usage invoices.
 *
 *   GET /invoices              ?external_customer_id=, ?payment_status=
 *   GET /invoices/{lago_id}
 *   PUT /invoices/{lago_id}    {"invoice": {"payment_status": "succeeded"|"failed"|"pending"}}:
 *        a credit invoice paid settles its top-up's credits if they waited for the payment;
 *        failed fails the top-up. A status other than pending does not change again.
 *
 * Threads: HTTP threads (handlers); the render function on the writer.
 */
#ifndef TALLY_API_INVOICES_H
#define TALLY_API_INVOICES_H

#include "api/request.h"

void invoices_list(struct request *req);
void invoices_get(struct request *req);
void invoices_update(struct request *req);

#endif
