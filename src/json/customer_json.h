/*
 * json/customer_json: a customer's JSON sub-documents as they are stored (api/customers
 * writes them): what an upsert's objects make of the stored ones. Threads: any.
 */
#ifndef TALLY_JSON_CUSTOMER_JSON_H
#define TALLY_JSON_CUSTOMER_JSON_H

#include <stdbool.h>

#include "core/customer.h"
#include "util/arena.h"

struct json_object;

/* A shipping address with no member set, as it is answered. */
extern const char *const customer_json_empty_shipping_address;

/*
 * Lays each object the input sends (billing_configuration, shipping_address) over the
 * customer's stored one, in place in `in`, so that the members not sent stay (Lago's
 * Customers::UpsertFromApiService sets a member only when its key is given). An object sent
 * as null still clears the whole; metadata, a list, is replaced whole. The merged texts live
 * in `a`. False if a stored document cannot be read or memory ran out.
 */
bool customer_json_merge_docs(struct arena *a, const struct customer *stored,
                              struct customer_input *in);

/*
 * The stored billing_configuration members (an object's members without their braces) read
 * as an object, or NULL if they cannot be read (memory). Caller puts it.
 */
struct json_object *customer_json_billing_members(const char *members);

#endif
