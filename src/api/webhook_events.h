/*
 * api/webhook_events: GET /api/v1/webhook_events, the organization's webhook outbox as it
 * stands (a Tally addition): each event recorded in the commit that caused it, with the object
 * it is about rendered as now, and whether it was delivered. Today the outbox holds the
 * credits.expiring_soon reminders; the Webhooks issue adds the sender and the other types.
 *
 * Threads: HTTP threads.
 */
#ifndef TALLY_API_WEBHOOK_EVENTS_H
#define TALLY_API_WEBHOOK_EVENTS_H

#include "api/request.h"

void webhook_events_list(struct request *req);

#endif
