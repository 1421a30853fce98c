/*
 * api/usage: GET /api/v1/customers/{external_id}/current_usage?external_subscription_id=
 * in Lago's shape, answered from the writer's live aggregates (engine/usage): its cost does
 * not grow with the number of events, and it already includes every acknowledged event.
 */
#ifndef TALLY_API_USAGE_H
#define TALLY_API_USAGE_H

#include "api/request.h"

void usage_current(struct request *req);

#endif
