/*
 * api/subscriptions: /api/v1/subscriptions in Lago's shapes.
 *
 *   POST   /subscriptions                  subscribe (the customer is created if unknown), or
 *                                          change the plan of the live subscription: upgrade
 *                                          at once, downgrade at the end of the period
 *   GET    /subscriptions                  ?external_customer_id= &external_id= &plan_code=
 *                                          &currency= &overridden= &status[]= (default active)
 *   GET    /subscriptions/{external_id}    the live one (active, else pending)
 *   PUT    /subscriptions/{external_id}    name, ending_at, subscription_at (not started)
 *   DELETE /subscriptions/{external_id}    terminate now (?status=pending cancels a pending one)
 *
 * Every answer carries the status and the current billing period at the organization's
 * clock, computed in the customer's time zone by core/period.
 */
#ifndef TALLY_API_SUBSCRIPTIONS_H
#define TALLY_API_SUBSCRIPTIONS_H

#include "api/request.h"

void subscriptions_create(struct request *req);
void subscriptions_list(struct request *req);
void subscriptions_get(struct request *req);
void subscriptions_update(struct request *req);
void subscriptions_terminate(struct request *req);

#endif
