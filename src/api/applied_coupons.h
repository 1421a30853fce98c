/*
 * api/applied_coupons: coupons applied to customers, in Lago's shapes.
 *
 *   POST   /applied_coupons                                   apply (terms may be overridden)
 *   GET    /applied_coupons                                   ?external_customer_id= &status=
 *   GET    /customers/{external_id}/applied_coupons
 *   DELETE /customers/{external_id}/applied_coupons/{lago_id}  terminate
 */
#ifndef TALLY_API_APPLIED_COUPONS_H
#define TALLY_API_APPLIED_COUPONS_H

#include "api/request.h"

void applied_coupons_create(struct request *req);
void applied_coupons_list(struct request *req);
void applied_coupons_list_for_customer(struct request *req);
void applied_coupons_terminate(struct request *req);

#endif
