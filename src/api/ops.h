/*
 * api/ops: what operators and their tools ask: GET /health (no key) and GET /metrics
 * (Prometheus text, no key: bind tallyd to a private address or put it behind a proxy).
 */
#ifndef TALLY_API_OPS_H
#define TALLY_API_OPS_H

#include "api/request.h"

void ops_health(struct request *req);
void ops_metrics(struct request *req);

#endif
