/* core/applied_coupon: see applied_coupon.h. */
#include "core/applied_coupon.h"

#include <string.h>

const char *coupon_type_name(enum coupon_type t)
{
    return t == COUPON_PERCENTAGE ? "percentage" : "fixed_amount";
}

const char *coupon_frequency_name(enum coupon_frequency f)
{
    switch (f) {
    case COUPON_RECURRING: return "recurring";
    case COUPON_FOREVER: return "forever";
    case COUPON_ONCE: break;
    }
    return "once";
}

bool coupon_type_parse(const char *text, enum coupon_type *out)
{
    if (strcmp(text, "fixed_amount") == 0)
        *out = COUPON_FIXED_AMOUNT;
    else if (strcmp(text, "percentage") == 0)
        *out = COUPON_PERCENTAGE;
    else
        return false;
    return true;
}

bool coupon_frequency_parse(const char *text, enum coupon_frequency *out)
{
    if (strcmp(text, "once") == 0)
        *out = COUPON_ONCE;
    else if (strcmp(text, "recurring") == 0)
        *out = COUPON_RECURRING;
    else if (strcmp(text, "forever") == 0)
        *out = COUPON_FOREVER;
    else
        return false;
    return true;
}

void applied_coupon_start(struct applied_coupon *c)
{
    c->amount_cents_remaining = c->type == COUPON_FIXED_AMOUNT ? c->amount_cents : 0;
    /* Lago's AppliedCoupons::CreateService sets both whatever the frequency */
    c->frequency_duration_remaining = c->frequency_duration;
}
