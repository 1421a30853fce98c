/*
 * api/usage: GET /api/v1/customers/{external_id}/current_usage?external_subscription_id=
 * in Lago's shape, answered from the writer's live aggregates (engine/usage): its cost does
 * not grow with the number of events, and it already includes every acknowledged event.
 * The HTTP thread answers from the writer's published view (engine/usage_view) when there is
 * one, without waiting for the writer; otherwise it asks the writer, whose answer becomes
 * the view for the next reads.
 */
#ifndef TALLY_API_USAGE_H
#define TALLY_API_USAGE_H

#include "api/request.h"

void usage_current(struct request *req);

#endif
