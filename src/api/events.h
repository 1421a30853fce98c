/*
 * api/events: usage events in Lago's shapes.
 *
 *   POST /events          {"event": {...}}     one event
 *   POST /events/batch    {"events": [...]}    up to the configured batch size, all or nothing
 *   GET  /events          ?code= &external_subscription_id= &timestamp_from= &timestamp_to=
 *   GET  /events/{transaction_id}
 *
 * Tally checks synchronously what Lago checks later (the subscription exists at the event's
 * time, the metric code exists): an event it accepts is billable, and a 200 means it is on
 * disk and counted. Duplicates (same subscription and transaction id, however late) are 422
 * value_already_exist, found in the writer's in-memory set (core/dedup).
 */
#ifndef TALLY_API_EVENTS_H
#define TALLY_API_EVENTS_H

#include "api/request.h"
#include "core/siphash.h"
#include "core/uuid.h"

void events_create(struct request *req);
void events_create_batch(struct request *req);
void events_get(struct request *req);
void events_list(struct request *req);
/* An event's `properties` (absent or null: none), as POST /events reads them; false with
 * *err set. */
struct json_object;
struct json_in_error;
bool events_parse_properties(struct request *req, struct json_object *obj, struct event *e,
                             struct json_in_error *err);
/* POST /events/estimate_fees: what an event would cost under the pay-in-advance charges. */
void events_estimate_fees(struct request *req);
/* POST /events/estimate_instant_fees and batch_estimate_instant_fees: the same for standard
 * and percentage pay-in-advance charges, each event alone, its transaction id echoed. */
void events_estimate_instant_fees(struct request *req);
void events_batch_estimate_instant_fees(struct request *req);
/* An event's lago_id: its identity fingerprint as a version 8 (custom) UUID, hi word first,
 * each word big-endian. Threads: any (pure). */
void events_lago_id(struct siphash128 fp, char out[UUID_TEXT]);

#endif
