/*
 * json/coupon_json: when a stored coupon (api/coupons writes its body) ended. Lago's clock
 * terminates a coupon once it is past its expiration_at (status terminated, terminated_at), and
 * nothing brings it back: Coupons::UpdateService leaves the status alone, and
 * AppliedCoupons::CreateService finds active coupons only. Tally has no such job: a coupon is
 * terminated at its expiration_at itself, read against the organization's clock, and the writer
 * keeps that instant in the body (`terminated_at`) when an update would move or drop its expiry.
 *
 * Threads: any.
 */
#ifndef TALLY_JSON_COUPON_JSON_H
#define TALLY_JSON_COUPON_JSON_H

#include <stdbool.h>

#include "core/timestamp.h"
#include "util/arena.h"

/* Whether the coupon has ended at `now`, and when (*at): its kept terminated_at, else its
 * expiration_at once reached. False for a body that is not an object. */
bool coupon_json_ended(const char *body, tally_time now, tally_time *at);

/* The body with terminated_at set to `at`, in `a`; NULL if it is not an object or memory ran
 * out. */
const char *coupon_json_set_ended(struct arena *a, const char *body, tally_time at);

#endif
