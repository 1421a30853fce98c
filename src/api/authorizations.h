/*
 * api/authorizations: holds on prepaid credits, a Tally addition (Lago has none).
 *
 *   POST /authorizations               {"authorization": {"external_subscription_id", "code",
 *                                        "properties", "expires_in"}}
 *        prices one event with those properties (the change it would make to its charges'
 *        fees, taxes included) and, if the customer's wallets can spend that much, holds it:
 *        status "authorized"; else "declined" and nothing is held. Held credits count against
 *        the wallets' ongoing balance, and against every other debit, at once.
 *   POST /authorizations/{id}/capture  {"authorization": {"properties", "transaction_id"?,
 *                                        "timestamp"?}} records the event, releases the hold
 *        and debits what the event actually costs (refused like any event if credits fall short)
 *   POST /authorizations/{id}/void     releases the hold
 *   GET  /authorizations/{id}
 *   GET  /authorizations               ?external_customer_id= &external_subscription_id=
 *        &page= &per_page=: the open holds (authorized), soonest expiry first
 *
 * An authorized hold not captured by expires_at is released by the clock (status "expired").
 *
 * Threads: HTTP threads (handlers); render functions on the writer.
 */
#ifndef TALLY_API_AUTHORIZATIONS_H
#define TALLY_API_AUTHORIZATIONS_H

#include "api/request.h"

#define AUTHORIZATION_EXPIRES_IN_DEFAULT 600     /* seconds */
#define AUTHORIZATION_EXPIRES_IN_MAX (7 * 86400) /* a week */

void authorizations_create(struct request *req);
void authorizations_get(struct request *req);
void authorizations_list(struct request *req);
void authorizations_capture(struct request *req);
void authorizations_void(struct request *req);

#endif
