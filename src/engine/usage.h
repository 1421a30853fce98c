/*
 * engine/usage: each subscription's live usage in its current billing period: for every
 * charge of its plan and every filter bucket of the charge, an aggregation state
 * (core/aggregation) that each accepted event updates in the same command. The period's fee
 * is therefore known at every moment, at a cost that does not grow with the events.
 *
 * A subscription's usage is built on first need (an event, a read) from its plan and from the
 * events already stored for its current period, then kept up to date event by event. It is
 * a cache of the store, never ahead of it: whenever a command or a commit fails, or a plan,
 * metric, tax or subscription changes, the engine drops the states and they are rebuilt from
 * disk on next use. Events timestamped outside the current period are stored but do not
 * count here: earlier periods are the invoices' (a later issue), and a future period's events
 * are read when that period becomes current.
 *
 * Threads: the engine's writer only.
 */
#ifndef TALLY_ENGINE_USAGE_H
#define TALLY_ENGINE_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/aggregation.h"
#include "core/charge_model.h"
#include "core/event.h"
#include "store/store.h"
#include "sys/tzdb.h"
#include "util/arena.h"

#define USAGE_TAXES_MAX 32 /* taxes one charge applies */

struct usage_bucket {
    struct aggregation aggregation;
    struct charge_model_properties properties;
    const char *invoice_display_name; /* a filter's, or NULL */
    const char *values_json;          /* a filter's values object, or NULL (default bucket) */
};

struct usage_charge {
    const char *lago_id;
    const char *charge_model;
    const char *invoice_display_name;
    const char *metric_lago_id, *metric_code, *metric_name;
    struct billable_metric metric;
    struct aggregation_filter *filters;
    size_t filter_count;
    struct usage_bucket *buckets; /* filter_count + 1: the last is the default bucket */
    money_t tax_rate;             /* the sum of the charge's (or plan's) tax rates, percent */
};

struct usage {
    int64_t subscription_id;
    tally_time from, to; /* the period [from, to) */
    char currency[4];
    int32_t exponent;
    struct usage_charge *charges;
    size_t charge_count;
    struct arena arena; /* owns everything above */
};

/* What a charge (or one of its buckets) costs now. */
struct usage_amount {
    money_t units; /* after the metric's rounding */
    int64_t events_count;
    int64_t amount_cents;
};

/* subscription id -> usage, for the writer (a hash table). */
struct usage_book {
    struct usage **items; /* cap slots, NULL when free */
    size_t count, cap;
};

void usage_book_init(struct usage_book *b);
/* Drops every state (they rebuild from the store on next use). */
void usage_book_clear(struct usage_book *b);
void usage_book_free(struct usage_book *b);

/*
 * The usage of a subscription for the period containing `now`, built (or rebuilt, when the
 * period moved on) from its plan and stored events. NULL on a store failure or a plan Tally
 * cannot read; *failed says which field then refuses the caller's command (static strings).
 */
struct usage *usage_book_get(struct usage_book *b, struct store *st, struct tzdb *tzdb,
                             const struct store_subscription *row, tally_time now,
                             const uint8_t hash_key[16], const char **failed);

/*
 * Applies one accepted event (stored with id `sequence`) to every charge of its metric.
 * AGGREGATION_OK also when the event lies outside the period (it does not count here) or
 * Lago would ignore its value; another status refuses the event (the state may then be
 * partly updated: the caller drops the book).
 */
enum aggregation_status usage_apply(struct usage *u, const struct event *e, tally_time timestamp,
                                    uint64_t sequence);

/* The cost of one bucket, or of a whole charge (every bucket), at `now`. */
bool usage_bucket_amount(const struct usage *u, const struct usage_charge *c,
                         const struct usage_bucket *b, tally_time now, struct usage_amount *out);
bool usage_charge_amount(const struct usage *u, const struct usage_charge *c, tally_time now,
                         struct usage_amount *out);
/* The taxes of a charge's amount, unrounded, in cents. */
money_t usage_charge_taxes(const struct usage_charge *c, int64_t amount_cents);

#endif
