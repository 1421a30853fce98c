/*
 * api/add_ons: /api/v1/add_ons in Lago's shapes: a one-off item with a price in cents and a
 * currency, billed on its own invoice (the invoices issue bills them). Taxes are named by
 * tax_codes and answered as full tax objects. The routes are the catalog's (api/catalog.h).
 */
#ifndef TALLY_API_ADD_ONS_H
#define TALLY_API_ADD_ONS_H

#include "api/catalog.h"

extern const struct catalog_resource add_ons_resource;

/*
 * Reads an amount in a currency's minor units with its currency ("amount_cents",
 * "amount_currency"), as plans, add-ons and coupons carry prices. Writes both canonically.
 */
bool add_ons_parse_price(struct request *req, struct json_object *obj, const char *cents_key,
                         const char *currency_key, bool required, struct jsonw *w,
                         struct json_in_error *err);

#endif
