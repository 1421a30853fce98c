/*
 * json/event_plain: a batch of events read straight from the body's text, when it is plain.
 *
 * Why: json-c builds a tree of allocated objects for every field, and during ingest the HTTP
 * threads spent about half their time in it and in malloc/free. Most batches are plain:
 * ASCII strings without escapes, flat properties of strings, numbers, booleans and nulls.
 * For those this reader gives, in one pass and with no allocation but the arena, the same
 * struct events as json/event_json (tests/unit/test_event_plain.c compares the two on random
 * bodies). Anything else (an escape, a byte past ASCII, a nested value, an exponent, a
 * duplicate or unknown key, a value json/event_json would refuse, a batch of the wrong size)
 * makes it answer "not plain", and the caller reads the body with json-c, whose answers and
 * errors stay the rule.
 *
 * Threads: any.
 */
#ifndef TALLY_JSON_EVENT_PLAIN_H
#define TALLY_JSON_EVENT_PLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "util/arena.h"

/*
 * Reads `{"events":[...]}` (body may be NULL when len is 0) with 1 to max_events plain events into
 * *events (in `a`, with every string they point at) and *count. False if the body is not plain:
 * nothing is promised about *events then (the arena may hold partial work).
 */
bool event_plain_batch(const char *body, size_t len, size_t max_events, struct arena *a,
                       struct event **events, size_t *count);

/* The same for one event, `{"event":{...}}` (POST /events). */
bool event_plain_one(const char *body, size_t len, struct arena *a, struct event *event);

/*
 * The same for a properties object alone (`{...}` or `null`), as the store keeps it: sets
 * e->properties, e->property_count and e->properties_json. The start-up scan reads every
 * stored event's properties through it (json-c was a quarter of that scan).
 */
bool event_plain_properties(const char *json, size_t len, struct arena *a, struct event *e);

/*
 * A property's value as e->properties keeps it, copied into `a`: a string's text, a literal's
 * JSON text, and a number's as Lago's store gives it back to its filters, groups and unique
 * counts (core/ruby_number: "1.50" is "1.5", "1e2" is "100.0"), where e->properties_json keeps
 * it as written. NULL if the arena is out of memory.
 */
const char *event_plain_value(struct arena *a, const char *text, size_t len, bool is_string);

#endif
