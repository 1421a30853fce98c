/*
 * engine/usage: each subscription's live usage in its current billing period: for every
 * charge of its plan and every filter bucket of the charge, an aggregation state
 * (core/aggregation) that each accepted event updates in the same command. The period's fee
 * is therefore known at every moment, at a cost that does not grow with the events.
 *
 * A subscription's usage is built from its plan when first needed, fed by the writer's
 * startup scan of the stored events and then by each accepted event, and remembers which
 * stored events it may count (`events`). No index on the events table is needed to rebuild
 * it: when its plan, metric or taxes change, when a command that touched it fails, or when
 * its period moves on, it is rebuilt from its plan and those references, read back by id.
 * It is therefore a cache of the store, never ahead of it. Events timestamped before the
 * current period are stored but do not count here (earlier periods are the invoices'); events
 * of a later period count when that period becomes current.
 *
 * A metric deleted takes its events with it (Lago's DeleteEventsJob marks them deleted): a
 * metric made later under its code counts only the events stored after the deletion
 * (usage_charge.history_after), in every build and replay, as it counts its own.
 *
 * Recurring metrics are the exception: their value is every event since the first, as Lago's
 * recurring scope reads them (by external subscription id, so across plan changes). A build
 * therefore starts each recurring charge from the store's index of such events
 * (store_recurring_event_each): those timestamped and accepted before the period are carried
 * into it as the past it starts with (aggregation_carry_in), then those of the period stored
 * under an earlier subscription of the same external id and the late events accepted in the
 * period count in it, taken with the period's own events in the order all of them were accepted
 * (aggregation_add_carried for the late ones), as they came live. A late event
 * of a recurring metric is carried into the current period the same way when it arrives. A charge
 * holding a carried value brings its fee from the period's first debit on, even before any event of
 * the period.
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
#include "core/siphash.h"
#include "core/subscription.h"
#include "store/store.h"
#include "sys/tzdb.h"
#include "util/arena.h"

#define USAGE_TAXES_MAX 32 /* taxes one charge applies */

/* A tax a charge's fee carries, as its catalog item was when the usage was built (Lago's
 * applied tax names it by what it was then too). Strings in the usage's arena. */
struct usage_tax {
    const char *lago_id, *code, *name;
    const char *description; /* or NULL */
    money_t rate;            /* percent */
};
/* Pricing groups one charge may hold in a period, over its filter buckets: an event that would
 * open one more is refused (AGGREGATION_ERR_GROUPS). A rebuild from stored events is not
 * bounded by it (a plan edit that adds group keys must still price what was accepted): there
 * a charge holds at most a group per event of the period. */
#define USAGE_GROUPS_MAX 1000

/*
 * One pricing group of a grouped bucket (its properties name group keys): the events whose
 * values for the keys are `values`, each NULL when the event lacked that key (Lago's SQL groups
 * those under a null value). One allocation holding the values: a savepoint keeps pointers to
 * its state, so groups never move.
 */
struct usage_group {
    struct aggregation aggregation;
    bool carried;
    const char **values; /* properties.group_key_count of them, in the group's allocation */
};

struct usage_bucket {
    struct aggregation aggregation;
    bool carried; /* a recurring value from earlier periods is in it */
    struct charge_model_properties properties;
    const char *invoice_display_name; /* a filter's, or NULL */
    const char *values_json;          /* a filter's values object, or NULL (default bucket) */
    /* A grouped bucket (properties.group_key_count > 0) prices each group alone and adds the
     * fees; its own aggregation stays empty, the template each new group's state starts from.
     * groups and hashes (a group's values hashed, scanned before any value is compared) are
     * malloc'd and owned, as each group is; the arrays of an ungrouped bucket stay NULL. */
    struct usage_group **groups;
    uint64_t *hashes;
    size_t group_count, group_cap;
};

struct usage_charge {
    const char *lago_id;
    const char *charge_model;
    const char *invoice_display_name;
    const char *metric_lago_id, *metric_code, *metric_name, *metric_description;
    struct billable_metric metric;
    /* The last stored event of its metric's code that a deleted metric of that code took with
     * it (store_metric_history_floor; 0: none): the charge counts only the events after it,
     * so a metric made again under a deleted one's code starts with nothing. */
    int64_t history_after;
    struct aggregation_filter *filters;
    size_t filter_count;
    struct usage_bucket *buckets; /* filter_count + 1: the last is the default bucket */
    /* The taxes its fee carries (charge, else plan, else customer, else organization:
     * usage.c charge_taxes), in the order they were named, and the sum of their rates. */
    const struct usage_tax *taxes;
    size_t tax_count;
    money_t tax_rate; /* percent */
    bool pay_in_advance, invoiceable;
    /* Lago's prorated flag, on a recurring sum or unique count (the API refuses it elsewhere):
     * its states weigh each value by the days it is present (aggregation_set_prorated), the
     * model prices those prorated units, and volume picks its range from the full ones. */
    bool prorated;
    /* What its aggregation states depend on (the metric as stored, the filters, whether values
     * are kept), hashed: a rebuild in the same period hands the states of a charge with the
     * same key over instead of reading the events back (a price or tax edit reads none). */
    struct siphash128 state_key;
    size_t group_count; /* its buckets' groups together (USAGE_GROUPS_MAX) */
    bool handed_over;   /* while building: its states come from the usage rebuilt */
    bool carried_over;  /* while building: its recurring states from the previous period's */
};

/* A state (a bucket's or a group's) as it was before a command changed it (usage_savepoint). */
struct usage_saved_bucket {
    struct aggregation *state; /* borrowed from the usage */
    bool *carried;
    struct aggregation aggregation; /* a flat state's copy (aggregation_is_flat) */
    bool was_carried;
};

/* A stored event the usage may count: now, or when its period comes. */
struct usage_event_ref {
    int64_t id;
    tally_time timestamp;
};

/* An event a build read from the recurring index that the period counts as it came (a late
 * event, or one of the period stored under an earlier subscription), waiting for its place
 * among the period's own events: strings in the usage's held_arena. */
struct usage_held {
    int64_t id;
    tally_time timestamp;
    const char *code, *properties_json, *precise_total_amount_cents;
};

struct usage {
    int64_t subscription_id;
    int64_t org_id;
    int64_t customer_id;
    int64_t successor_id;    /* the subscription replacing it at a scheduled downgrade, or 0 */
    const char *external_id; /* the subscription's */
    tally_time from, to;     /* the period [from, to): what is priced, to the subscription's end */
    /* The charges' period's own end, at or after `to`: what answers show as the period's last
     * second (to_datetime, issuing_date), as Lago's DatesService#charges_to_datetime cuts the
     * period at the subscription's end only once it is terminated, and the subscription's
     * current_billing_period_ending_at does. Usage is read only of an active subscription, so
     * an end ahead (an ending_at) does not cut it there; pricing stops at `to`. */
    tally_time period_end;
    /* The end of the plan's own period holding this one: its last second's UTC date is the
     * answer's issuing_date, as Lago's next_end_of_period, which keeps the year or half year
     * under bill_charges_monthly (the charges' month is period_end's). */
    tally_time plan_period_end;
    char currency[4];
    int32_t exponent;
    struct usage_charge *charges;
    size_t charge_count;
    /* The charges as current usage lists them: by metric name ignoring ASCII case, as Lago
     * orders them (lower(billable_metrics.name)), the plan's order on a tie; charge_count
     * indexes into `charges`, in the arena. The plan's order stays the one prices follow. */
    size_t *shown_order;
    /* Every stored event of the subscription timestamped at or after `from`, in acceptance
     * order: what a rebuild (a plan edit, a failed command, the next period) replays. 16
     * bytes an event of the current period (and of later ones sent early). */
    struct usage_event_ref *events;
    size_t event_count, event_cap;
    /* The first stored event that arrived in the period but is timestamped before it (0: none):
     * a recurring metric's late event, carried in and debited here, is no reference, yet the
     * usage then holds a debit of the period that a re-pricing must be able to give back. A
     * start must read from it to build the usage again (the snapshot's mark counts it). */
    int64_t late_from;
    /* The events a build read from the recurring index that came in the period (usage_held),
     * in acceptance order, from held_next on not applied yet: each is applied before the first
     * of the period's own events accepted after it, so that a pay-in-advance peak is the one
     * the events made as they came. Empty once a build returns, but during the start-up scan,
     * which feeds the own events itself (usage_book_settle). */
    struct usage_held *held;
    size_t held_count, held_next, held_cap;
    struct arena held_arena;
    /* An earlier period's event came while the period had not begun (a scheduled downgrade's,
     * built for an event sent ahead): it is part of the past the period starts with, which a
     * live usage cannot take once it took an event of the period (aggregation_carry_in), so
     * usage_book_get builds it again from the store when the period begins. */
    bool rebuild_at_start;
    /* The command whose changes usage_rollback can take back (0: none), the references it
     * found, and the buckets it changed as they were, while all of them were flat. */
    uint64_t savepoint;
    size_t savepoint_keep;
    bool savepoint_complete;
    struct usage_saved_bucket *saved;
    size_t saved_count, saved_cap;
    uint64_t events_read; /* stored events its build read back */
    /* Stored events a charge could not count and passed over (apply): an event an earlier
     * build accepted unchecked (a unique count's operation_type, a number past 10^38), or one
     * its metric's new aggregation cannot read, or a sum whose stored total would pass 10^38.
     * Refused, it would fail this usage and every start (an audit). The first one is named
     * (its id, metric code and why), for the book to say once on stderr. */
    uint64_t passed_over;
    int64_t passed_over_id;
    const char *passed_over_code; /* in the arena */
    enum aggregation_status passed_over_why;
    uint64_t passed_over_counted; /* of passed_over, those the book counted */
    bool passed_over_said;        /* the book has its report */
    uint8_t hash_key[16];         /* the book's SipHash key: unique values, pricing groups */
    struct arena arena; /* owns everything above but `events` and `saved` (malloc'd, grow) */
};

/* What a charge (or one of its buckets) costs now. */
struct usage_amount {
    money_t units; /* after the metric's rounding */
    /* the units its fee is priced on (rounded): `units`, but a pay-in-advance charge's peak
     * (usage_bills_peak) */
    money_t billed_units;
    /* Lago's total_aggregated_units: `units`, but a weighted sum's level now (the initial
     * value plus the period's deltas), where `units` are its time-weighted units */
    money_t aggregated_units;
    int64_t events_count;
    int64_t amount_cents;
    bool carried; /* part of it is a recurring value carried from earlier periods */
    /* an event of the period reached it: a unique count's removals too, although its
     * events_count (Lago's) shows only the values present */
    bool received;
};

/* A usage that passed over stored events, to be said on stderr (usage_book_take_report). */
struct usage_passed_report {
    int64_t org_id, subscription_id;
    char external_id[SUBSCRIPTION_EXTERNAL_ID_MAX + 1];
    uint64_t count;
    int64_t event_id;
    char code[EVENT_CODE_MAX + 1];
    enum aggregation_status why;
};

/* subscription id -> usage, for the writer (a hash table). */
struct usage_book {
    struct usage **items; /* cap slots, NULL when free */
    size_t count, cap;
    /* Usages built into the book (first use, a new period, a change, a rebuild after a failed
     * command) and the stored events those builds read back: what a failed command costs
     * when its usages cannot be rolled back in memory. */
    uint64_t builds, events_read;
    /* The stored events usages passed over (usage.passed_over), counted at each build or
     * start-up scan that met them; and the usages that passed some over and are not said on
     * stderr yet (usage_book_take_report), each said once while its period and what it passes
     * over stay the same. */
    uint64_t passed_over;
    struct usage_passed_report *reports;
    size_t report_count, report_cap;
    /* During the start-up scan (usage_book_hold): its builds keep the events they hold
     * (usage.held) for the scan's events to take their place among, until usage_book_settle. */
    bool holding;
};

/* Moves the book's oldest unsaid report into *out; false when there is none. */
bool usage_book_take_report(struct usage_book *b, struct usage_passed_report *out);

void usage_book_init(struct usage_book *b);
/* Drops every state (they rebuild from the store on next use). */
void usage_book_clear(struct usage_book *b);
void usage_book_free(struct usage_book *b);

/*
 * A scan of the stored events in acceptance order is about to feed the book's usages their
 * period's own events (usage_apply_stored): the usages built until usage_book_settle keep the
 * late events they read from the recurring index, each applied when the scan passes its place
 * (before the first own event accepted after it). usage_book_settle applies those left (after
 * every own event), and ends it: false if one cannot be applied (the book is then to be
 * rebuilt). The scan's usages are priced only after it.
 */
void usage_book_hold(struct usage_book *b);
bool usage_book_settle(struct usage_book *b);

/*
 * The usage of a subscription for the period containing `now`, built (or rebuilt, when the
 * period moved on) from its plan and stored events. NULL on a store failure or a plan Tally
 * cannot read; *failed says which field then refuses the caller's command (static strings).
 */
struct usage *usage_book_get(struct usage_book *b, struct store *st, struct tzdb *tzdb,
                             const struct store_subscription *row, tally_time now,
                             const uint8_t hash_key[16], const char **failed);

/*
 * A usage of the subscription's period containing `at`, built apart from the book from the
 * first `ref_count` of `refs` (stored events): to price events sent ahead for a later period
 * without moving the book's usage on, or the usage as it stood at an earlier event. Late
 * events accepted in the period after event `late_through` are left out (INT64_MAX: none
 * are): a usage as it stood when a wallet opened its period must not count a late event that
 * came after (an audit's twin found it counted, and the wallet given back what it paid for
 * it). NULL on a store failure or a plan Tally cannot read. Freed with usage_release.
 */
struct usage *usage_build_apart(struct store *st, struct tzdb *tzdb,
                                const struct store_subscription *row, tally_time at,
                                const uint8_t hash_key[16], const struct usage_event_ref *refs,
                                size_t ref_count, int64_t late_through);
void usage_release(struct usage *u);

/* The book's usage for a subscription, or NULL (no lookup in the store). */
struct usage *usage_book_find(struct usage_book *b, int64_t subscription_id);
/* Takes one subscription's usage out of the book (it is built again on next use). */
void usage_book_forget(struct usage_book *b, int64_t subscription_id);
/* Calls fn for every usage in the book. */
void usage_book_each(struct usage_book *b, void (*fn)(struct usage *u, void *ctx), void *ctx);
/*
 * Rebuilds one subscription's usage (if the book has it) from the store and the first `keep`
 * of its references: after a change to what prices it (SIZE_MAX: all of them, and the states
 * of charges whose state_key and period are unchanged move over instead of being read back),
 * or to take back the events of a failed command. A subscription gone from the store leaves
 * the book. False on a store failure. With would_read (only with keep SIZE_MAX) it reads no
 * stored event: if it would have to, the usage is left as it was and *would_read says how
 * many (the caller may rather rebuild many usages with one scan).
 */
bool usage_book_refresh(struct usage_book *b, struct store *st, struct tzdb *tzdb, int64_t org_id,
                        int64_t subscription_id, tally_time now, const uint8_t hash_key[16],
                        size_t keep, size_t *would_read);

/*
 * Taking a refused command back out of a usage without reading the store. usage_savepoint
 * starts recording for `command` (a number the caller never reuses, not 0): from then on each
 * bucket usage_apply changes is copied first, once, if its state is flat; a state that owns
 * memory makes the savepoint incomplete. Calling it again for the same command does nothing
 * and answers false; a new command starts over and answers true (the command's first touch).
 * usage_rollback puts back what `command` changed and forgets its references from `keep` on
 * (the command's first touch of the usage found that many); false if it cannot (another
 * command's savepoint, a usage rebuilt since or one whose savepoint began elsewhere, a state
 * that owns memory): the caller then rebuilds the usage from the store (usage_book_refresh).
 * Rolling back twice is harmless.
 */
bool usage_savepoint(struct usage *u, uint64_t command);
bool usage_rollback(struct usage *u, uint64_t command, size_t keep);

/* Remembers a stored event the usage may count (now or in a later period). */
bool usage_note(struct usage *u, int64_t id, tally_time timestamp);
/* Whether the usage counts stored event `id` timestamped at `timestamp` or never can: one of
 * an earlier period, or one it remembers (usage_note). */
bool usage_has_counted(const struct usage *u, int64_t id, tally_time timestamp);
/* Remembers a recurring metric's stored event that arrived at `arrived`, in the usage's
 * period, timestamped before it (late_from); any other event is left to usage_note. */
void usage_note_late(struct usage *u, int64_t id, tally_time timestamp, tally_time arrived);

/*
 * Applies one accepted event (stored with id `sequence`) to every charge of its metric: in
 * the period it is added, before it a recurring metric's is carried in (and another's does
 * not count), after it nothing counts yet. AGGREGATION_OK also when it does not count or
 * Lago would ignore its value; another status refuses the event (the state may then be
 * partly updated: the caller drops the book). Replays of stored events skip those before the
 * period: a build has carried them already.
 */
/*
 * Event e checked against the rules of a metric of type `kind` reading `field_name` (NULL:
 * none), as any charge of it would read e (aggregation_check): OK or IGNORED, or the refusal
 * of every charge of the metric, whatever the plan. What event ingest checks for every event,
 * charged or not: a stored event is then one a charge added later can count.
 */
enum aggregation_status usage_check_event(enum billable_metric_aggregation kind,
                                          const char *field_name, const struct event *e);

enum aggregation_status usage_apply(struct usage *u, const struct event *e, tally_time timestamp,
                                    uint64_t sequence);
/* The same for an event already stored (a build, the start-up scan): USAGE_GROUPS_MAX does not
 * refuse it, it was accepted (under other group keys, maybe), and a charge that cannot count it
 * passes over it (usage.passed_over) rather than fail. The late events the usage holds that
 * were accepted before it (a lower id) are applied first (usage_book_hold). */
enum aggregation_status usage_apply_stored(struct usage *u, const struct event *e,
                                           tally_time timestamp, uint64_t sequence);

/* The cost of one bucket, or of a whole charge (every bucket), at `now`. A charge's units add
 * its buckets' that are above 0: Lago zeroes a fee's negative units. A grouped bucket's cost
 * adds its groups' fees, each priced alone and rounded to the cent (Lago's one fee a group),
 * and its units those of its groups above 0. */
bool usage_bucket_amount(const struct usage *u, const struct usage_charge *c,
                         const struct usage_bucket *b, tally_time now, struct usage_amount *out);
bool usage_charge_amount(const struct usage *u, const struct usage_charge *c, tally_time now,
                         struct usage_amount *out);
/* An amount of nothing, and a part (a group, a bucket) added to a sum: its units only when
 * above 0, its aggregated units (a weighted sum's level, below 0 or not) unless its units or
 * amount are below 0 (Fees::ChargeService zeroes both in such a fee). False if a sum does not
 * fit. */
void usage_amount_zero(struct usage_amount *out);
bool usage_amount_add(struct usage_amount *sum, const struct usage_amount *part);
/* The cost of one group of bucket b (whose properties price it). */
bool usage_group_amount(const struct usage *u, const struct usage_charge *c,
                        const struct usage_bucket *b, const struct usage_group *g,
                        struct usage_amount *out);
/* Bucket b's group with the same values as g (which may be another bucket's), or NULL. */
const struct usage_group *usage_bucket_group_like(const struct usage *u,
                                                  const struct usage_bucket *b,
                                                  const struct usage_bucket *of,
                                                  const struct usage_group *g);
/*
 * What a charge has brought in its period so far, as the wallets are debited for it: its
 * amount and its cost, both 0 while no event of the period counts in it. Its cost is its
 * amount and its share of the usage's taxes: those of the charges up to it in the plan's
 * order, summed unrounded and rounded half up, less those of the charges before it, so that
 * the charges' costs add up to the usage's total exactly (Lago's invoice rounds its taxes
 * once, not per fee). Its current usage shows a first tier's flat amount even then
 * (Lago's invoice bills it at 0 units), but that flat amount is what the charge's first event
 * brings: the step from nothing, as Lago's pay-in-advance fee of a first event charges it.
 */
/* Whether an estimate of an event of metric `code` prices charge c: a pay-in-advance charge
 * of that metric (of any, `code` NULL; `instant`, Lago's instant estimate: only standard and
 * percentage ones, whose fee the event alone decides). */
bool usage_charge_estimated(const struct usage_charge *c, const char *code, bool instant);

struct usage_brought {
    int64_t amount_cents, cost_cents;
};
bool usage_charge_brought(const struct usage *u, const struct usage_charge *c,
                          struct usage_brought *out);
/* Its amount alone (what the cost needs the charges before it for). */
bool usage_charge_brought_amount(const struct usage *u, const struct usage_charge *c,
                                 int64_t *cents);

/*
 * What one more event would bring under a charge, without changing anything: the change of
 * the amount usage_charge_brought says that taking it would make (Lago's estimate_fees, and a
 * hold's price, add the taxes it brings to the usage's). Also the bucket it would fall in and
 * its units (that bucket's aggregate's change). False if the charge's aggregation cannot
 * preview or an amount does not fit.
 */
struct usage_estimate {
    const struct usage_bucket *bucket;
    const struct usage_group *group; /* its group in a grouped bucket, NULL when new or none */
    money_t units;
    int64_t amount_cents;
};
bool usage_estimate(const struct usage *u, const struct usage_charge *c, const struct event *e,
                    tally_time timestamp, struct usage_estimate *out);

/* The taxes of a charge's amount, unrounded, in cents. False if they do not fit. */
bool usage_charge_taxes(const struct usage_charge *c, int64_t amount_cents, money_t *taxes);
/* The taxes of what the usage's charges have brought, summed unrounded, in cents. */
bool usage_taxes_brought(const struct usage *u, money_t *taxes);
/* Taxes (unrounded, in cents) rounded half up to the cent. False if they do not fit. */
bool usage_taxes_cents(money_t taxes, int64_t *cents);

/*
 * A usage's totals as its current usage answer shows them: the charges' amounts, their taxes
 * summed unrounded and rounded half up once, and the two together. Built charge by charge by
 * whoever prices the charges anyway (usage_total_add, then usage_total_finish); false when
 * something does not fit in cents.
 */
struct usage_total {
    int64_t amount_cents;
    money_t taxes;
    int64_t taxes_cents, total_cents;
};
void usage_total_init(struct usage_total *t);
/* Adds a charge's amount and its taxes; false also if the charge's own cost does not fit. */
bool usage_total_add(struct usage_total *t, const struct usage_charge *c, int64_t amount_cents);
bool usage_total_finish(struct usage_total *t);

/*
 * Whether the usage can be priced: every charge's amount and cost, and the totals. An event
 * that makes it false must be refused, not acknowledged: its current usage could no longer be
 * answered, nor its charges debited, and a retry would meet the same sums. What each charge
 * has brought (usage_charge_brought of charges[i]) is left in brought[i] (`brought` may be
 * NULL): a command's debit, which follows its check with the usage unchanged, reads them
 * instead of pricing every charge again.
 */
bool usage_priced(const struct usage *u, struct usage_brought *brought);

#endif
