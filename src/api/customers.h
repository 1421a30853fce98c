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
#include "store/store.h"
#include "util/jsonw.h"

/* Lago's limits on customer metadata. */
#define CUSTOMER_METADATA_MAX 5
#define CUSTOMER_METADATA_KEY_MAX 20
#define CUSTOMER_METADATA_VALUE_MAX 100

void customers_upsert(struct request *req);
void customers_list(struct request *req);
void customers_get(struct request *req);
void customers_delete(struct request *req);

/*
 * The customer's taxes as Lago answers them: full tax objects read now through `conn` (one
 * deleted since is left out), as JSON array text in `a`. Any thread holding a connection.
 */
const char *customers_taxes_text(struct store_conn *conn, const struct customer *c,
                                 struct arena *a);

/* Writes one customer object (without the "customer" root key); `taxes` is
 * customers_taxes_text's (NULL: none could be read, written as []). */
void customers_render(struct jsonw *w, const struct customer *c, const char *taxes);

#endif
