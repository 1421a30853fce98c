/*
 * api/customers: /api/v1/customers in Lago's shapes.
 *
 *   POST   /customers                 create, or update the customer with that external_id
 *   GET    /customers                 a page, newest first
 *   GET    /customers/{external_id}
 *   DELETE /customers/{external_id}   answers the deleted customer
 *
 * Parsing and validation happen here, on the HTTP thread; the change itself is a command
 * applied by the writer. Rendering is shared by both paths (customers_render).
 */
#ifndef TALLY_API_CUSTOMERS_H
#define TALLY_API_CUSTOMERS_H

#include "api/request.h"
#include "core/customer.h"
#include "util/jsonw.h"

/* Lago's limits on customer metadata. */
#define CUSTOMER_METADATA_MAX 5
#define CUSTOMER_METADATA_KEY_MAX 20
#define CUSTOMER_METADATA_VALUE_MAX 100

void customers_upsert(struct request *req);
void customers_list(struct request *req);
void customers_get(struct request *req);
void customers_delete(struct request *req);

/* Writes one customer object (without the "customer" root key). */
void customers_render(struct jsonw *w, const struct customer *c);

#endif
