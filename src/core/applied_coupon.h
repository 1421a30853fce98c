/*
 * core/applied_coupon: a coupon applied to a customer, as Lago models it: the coupon's terms
 * as they were when applied (possibly overridden for this customer), and what is left of it
 * (the remaining amount of a fixed "once" coupon, the remaining periods of a recurring one).
 * Invoices consume it (the invoices issue); this module defines it and its starting state.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_APPLIED_COUPON_H
#define TALLY_CORE_APPLIED_COUPON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/timestamp.h"
#include "core/uuid.h"

enum coupon_type { COUPON_FIXED_AMOUNT, COUPON_PERCENTAGE };
enum coupon_frequency { COUPON_ONCE, COUPON_RECURRING, COUPON_FOREVER };

struct applied_coupon {
    int64_t id; /* store row id; 0 before the first save */
    int64_t org_id;
    int64_t customer_id;
    char lago_id[UUID_TEXT];
    char coupon_lago_id[UUID_TEXT];
    const char *coupon_code;
    const char *coupon_name;
    enum coupon_type type;
    int64_t amount_cents;           /* fixed_amount only */
    int64_t amount_cents_remaining; /* fixed_amount once: what invoices have not used yet */
    char amount_currency[4];        /* fixed_amount only */
    const char *percentage_rate;    /* percentage only: Lago's decimal string, "10.0" */
    enum coupon_frequency frequency;
    int64_t frequency_duration;           /* periods (used by recurring; 0: none) */
    int64_t frequency_duration_remaining; /* what is left of them */
    bool has_expiration_at;
    tally_time expiration_at; /* the coupon's: read as it is now, the copy made when applied
                               * answered only if the coupon could not be found */
    bool has_terminated_at;
    tally_time terminated_at;
    tally_time created_at;
};

const char *coupon_type_name(enum coupon_type t);           /* "fixed_amount", "percentage" */
const char *coupon_frequency_name(enum coupon_frequency f); /* "once", "recurring", "forever" */
bool coupon_type_parse(const char *text, enum coupon_type *out);
bool coupon_frequency_parse(const char *text, enum coupon_frequency *out);

/* Sets what remains to the whole: a new application has used nothing. */
void applied_coupon_start(struct applied_coupon *c);

#endif
