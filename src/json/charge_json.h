/*
 * json/charge_json: a charge model's properties as JSON (Lago's shapes) to and from
 * core/charge_model. Threads: any.
 */
#ifndef TALLY_JSON_CHARGE_JSON_H
#define TALLY_JSON_CHARGE_JSON_H

#include <stdbool.h>

#include "core/charge_model.h"
#include "json/json_in.h"
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

#endif
