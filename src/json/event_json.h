/*
 * json/event_json: an event's properties from JSON to core/event's pairs. The API reads a
 * client's properties with it, and the engine a stored event's when it rebuilds usage: the
 * pairs an aggregation sees are the same either way. Threads: any.
 */
#ifndef TALLY_JSON_EVENT_JSON_H
#define TALLY_JSON_EVENT_JSON_H

#include <stdbool.h>

#include "core/event.h"
#include "json/json_in.h"
#include "util/arena.h"

struct json_object;

/*
 * Fills e->properties (pairs: a string's contents, or a number's or boolean's JSON text;
 * NULL for null) and e->properties_json (canonical text) from a properties object, in `a`.
 * Refuses more than EVENT_PROPERTIES_MAX keys, over-long keys or values, and integers past
 * the 64-bit range (json-c would silently saturate them).
 */
bool event_json_properties(struct arena *a, struct json_object *props, struct event *e,
                           struct json_in_error *err);

/* An event object's `properties` (absent or null: none, "{}"). */
bool event_json_properties_of(struct arena *a, struct json_object *event, struct event *e,
                              struct json_in_error *err);

/* An event object's `timestamp` (absent or null: none, the clock at acceptance). */
bool event_json_timestamp(struct json_object *event, struct event *e, struct json_in_error *err);

/* A whole event as POST /events and /events/batch read it, strings copied into `a`. */
bool event_json_event(struct arena *a, struct json_object *obj, struct event *e,
                      struct json_in_error *err);

/*
 * `in` with properties[key] set to the string `value` (`len` bytes), as Ruby's Hash#[]= sets
 * it: in place of the key's value if it has one, else added last; the pairs and the canonical
 * text rewritten in `a` (the rest of the event is shared with `in`). False on out of memory,
 * or if the key is new and the event already has EVENT_PROPERTIES_MAX.
 */
bool event_json_set_property(struct arena *a, const struct event *in, const char *key,
                             const char *value, size_t len, struct event *out);

/* The same from stored canonical text. False if it is not an object Tally wrote. */
bool event_json_properties_text(struct arena *a, const char *json, struct event *e);

/*
 * A stored event's precise_total_amount_cents text (NULL: it had none) into `e`, so that a
 * rebuild prices the dynamic model as ingest did. False if it is not a decimal Tally wrote.
 */
bool event_json_precise_text(const char *text, struct event *e);

/*
 * An event's precise_total_amount_cents from its JSON object, as Lago keeps it
 * (event_precise_amount); absent or null is none. False, with *err, if it is not a decimal.
 */
bool event_json_precise(struct json_object *event, struct event *e, struct json_in_error *err);

#endif
