/*
 * core/event: a usage event as Tally holds it between the API and the store: who it is
 * (organization, external subscription id, transaction id: its identity for deduplication),
 * what it measures (the billable metric's code), when (the event's own timestamp), and its
 * properties, both as pairs (the aggregations read values by key) and as canonical JSON
 * (what is stored and answered).
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_EVENT_H
#define TALLY_CORE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/money.h"
#include "core/siphash.h"
#include "core/subscription.h"
#include "core/timestamp.h"

#define EVENT_TRANSACTION_ID_MAX 255
#define EVENT_CODE_MAX 255
#define EVENT_PROPERTIES_MAX 128 /* keys per event */
#define EVENT_PROPERTY_KEY_MAX 255
#define EVENT_PROPERTY_VALUE_MAX 4096 /* bytes of one value's JSON text */
#define EVENT_BATCH_DEFAULT 100       /* Lago's LAGO_EVENTS_BATCH_MAX_LENGTH */
#define EVENT_BATCH_LIMIT 10000       /* the most --max-batch may allow */

struct event_property {
    const char *key;
    const char *value; /* a string's text, a number's as Lago's store gives it back (1.50 is
                          1.5: core/ruby_number), a literal's JSON text; NULL for null */
    bool is_string;    /* the value was a JSON string (Lago's strict numeric form applies) */
};

struct event {
    const char *transaction_id;
    const char *external_subscription_id;
    const char *code;
    bool has_timestamp; /* absent: the organization's clock when accepted */
    tally_time timestamp;
    const struct event_property *properties;
    size_t property_count;
    const char *properties_json; /* canonical object text */
    bool has_precise_total_amount_cents;
    money_t precise_total_amount_cents;
};

/*
 * Decimals an event's precise_total_amount_cents keeps: Lago's column is decimal(40, 15), so
 * PostgreSQL rounds more to 15, half away from zero. Kept so here too, a dynamic charge's sum
 * of them stays within money_t's 38 digits whatever amounts it adds (one with 30 decimals
 * beside one of 10^8 once made the next event's sum overflow).
 */
#define EVENT_PRECISE_DECIMALS 15

/* A precise_total_amount_cents as sent, as Lago keeps it (EVENT_PRECISE_DECIMALS). */
money_t event_precise_amount(money_t sent);

/*
 * A precise_total_amount_cents sent as a string, read as Lago's decimal column casts it
 * (Rails' String#to_d): every form to_d reads in full (core/ruby_number's RUBY_TO_D: "+7",
 * ".5", "5.", " 3 ", "00012", "1_0", "1e2", "2d1"), exactly, into *out (not yet rounded:
 * event_precise_amount). False for text to_d reads only a part of or none of ("12abc", "abc",
 * which Lago keeps as 12 and 0), and for a value money cannot hold. A blank text, which Rails
 * casts to nil, is the caller's to tell apart first.
 */
bool event_parse_precise_amount(const char *text, size_t len, money_t *out);

/*
 * Whether Lago's creation checks take the event's value under `key` as a number
 * (Events::ValidateCreationService#valid_number?, Ruby's Float(value), for a sum, max or
 * latest metric's field): absent or null, a JSON number, or a string Float() reads
 * (ruby_float_reads). A boolean, an object or an array is not (Float() raises TypeError on
 * them, which Lago does not catch: a 500).
 */
bool event_value_is_number(const struct event *e, const char *key);

/*
 * How far ahead of UTC a customer's zone may be: 14 hours (Pacific/Kiritimati, Etc/GMT-14; no
 * zone of the tz database is further ahead, now or by its rules for later years).
 */
#define EVENT_ZONE_AHEAD_MAX_SECONDS (14 * 3600)

/*
 * The last instant an event may carry: 9998-12-31T09:59:59.999999Z, the last instant whose
 * local date is in 9998 in every zone (EVENT_ZONE_AHEAD_MAX_SECONDS). A billing period lasts
 * a year at most, so every period of an event before it ends within years 0001..9999, where
 * instants are defined (core/timestamp.h). Set in UTC at 9998-12-31T23:59:59.999999Z before,
 * it let a zone 14 hours ahead reach 9999, where a yearly period ends in 10000: a subscription
 * there was taken but could never be priced (an audit).
 */
#define EVENT_TIMESTAMP_MAX                                                                        \
    ((INT64_C(253370764800) - EVENT_ZONE_AHEAD_MAX_SECONDS) * TIMESTAMP_USEC_PER_SEC - 1)
/*
 * Where an organization's clock (a test clock's too) may be: 1970 on (ids are time-ordered from
 * the epoch) to EVENT_TIMESTAMP_MAX, so that an event sent now is one it may carry and every
 * period current at it can be priced. A store whose test clock an older Tally moved past it is
 * brought back to it when opened (store/schema.c, migration 51).
 */
#define EVENT_CLOCK_MIN 0
#define EVENT_CLOCK_MAX EVENT_TIMESTAMP_MAX

/*
 * Lago's event timestamp: Unix seconds as an integer or decimal, in a JSON number or string
 * ("1700000000", 1700000000.123), with any number of digits and any exponent. Read exactly
 * from the text and truncated to the microsecond (the floor). ASCII whitespace around it is
 * skipped, as Lago's BigDecimal(params[:timestamp].to_s) skips it around a string (Ruby's ISSPACE:
 * space, \t \n \v \f \r; a JSON number's text has none), and the rest of BigDecimal's grammar is
 * read as it reads it ("+1700000000", "0_1700_000_000", ".17e10", "17d8"). False for what
 * BigDecimal refuses (whitespace alone or inside included), NaN and Infinity, or outside
 * [TIMESTAMP_MIN, EVENT_TIMESTAMP_MAX].
 */
bool event_parse_timestamp(const char *text, size_t len, tally_time *out);

/*
 * Writes an event's identity (organization, external subscription id, transaction id) into
 * buf as the bytes that are fingerprinted: lengths prefix each part, so no two identities
 * share bytes. Returns the length, or 0 if cap is too small.
 */
size_t event_identity(int64_t org_id, const char *external_subscription_id,
                      const char *transaction_id, uint8_t *buf, size_t cap);

/* The longest identity event_identity writes for ids within their limits (the API's). */
#define EVENT_IDENTITY_MAX (3 * 4 + 8 + EVENT_TRANSACTION_ID_MAX + SUBSCRIPTION_EXTERNAL_ID_MAX)

/*
 * The event's identity fingerprint under `key`: what deduplication keys it by and what its
 * lago_id is made of, the same wherever it is computed (ingest, the start's read-back, a read).
 * False when an id is past its limit (a damaged store: the API never takes one). Borrows the
 * texts for the call. Threads: any (pure).
 */
bool event_fingerprint(const uint8_t key[SIPHASH_KEY_LEN], int64_t org_id,
                       const char *external_subscription_id, const char *transaction_id,
                       struct siphash128 *out);

/* The value of a property by key, or NULL. */
const char *event_property(const struct event *e, const char *key);

/*
 * Whether two events carry the same properties: the same keys, each with the same value, in
 * any order (JSON objects have none). A value is its text in e->properties (a number's as
 * Lago's store gives it back: 1.50 is 1.5, json/event_plain), a string and a number apart:
 * 90.0, or "90", for 90 is another value (a unique count would read "90" as 90, not 90.0).
 */
bool event_same_properties(const struct event *a, const struct event *b);

#endif
