/*
 * json/charge_json: a charge model's properties as JSON (Lago's shapes) to and from
 * core/charge_model. Threads: any.
 */
#ifndef TALLY_JSON_CHARGE_JSON_H
#define TALLY_JSON_CHARGE_JSON_H

#include <stdbool.h>

#include "core/charge_model.h"
#include "json/json_in.h"
#include "sys/digest.h"
#include "util/arena.h"
#include "util/jsonw.h"

struct json_object;

/*
 * Reads a properties object into p (ranges allocated in `a`) and writes it canonically into
 * w (amounts as decimal strings, bounds and counts as numbers), then validates it with
 * core/charge_model. Refusals use Lago's "properties" field with the model's code.
 */
bool charge_json_properties(struct arena *a, struct json_object *props, enum charge_model_kind kind,
                            struct charge_model_properties *p, struct jsonw *w,
                            struct json_in_error *err);

/*
 * The properties a charge of `kind` gets when it is sent without any (absent, null or {}), as
 * JSON text (static storage): Lago's ChargeModels::BuildDefaultPropertiesService, which its
 * Plans::CreateService and Charges::CreateService/UpdateService call on
 * `properties.presence`: a price of zero, one open range from 0 for a ranged model. NULL for
 * a kind out of range.
 */
const char *charge_json_default_properties(enum charge_model_kind kind);

/*
 * A charge filter's lago_id, from its charge's lago_id and its values object as stored
 * ({"key": ["value", ...]}). Tally keeps no row for a filter, so its id is made from what makes
 * it the same filter in Lago: its charge and its values (on a plan update, Lago's
 * ChargeFilters::CreateOrUpdateBatchService keeps the filter whose values compare equal, keys
 * in any order, each key's values in theirs). It stays while they do, through restarts and
 * price changes, and is another once they change. False if the values do not read.
 */
bool charge_json_filter_id(const char *charge_lago_id, const char *values_json,
                           char out[UUID_TEXT]);

/*
 * The name a fee shows for its charge filter (Lago's ChargeFilter#display_name): the filter's
 * invoice_display_name, else its values in order, joined by ", ", a key that takes any value
 * (__ALL_FILTER_VALUES__) shown by its key. In `a`; NULL if the values do not read.
 */
const char *charge_json_filter_display_name(struct arena *a, const char *invoice_display_name,
                                            const char *values_json);

#endif
