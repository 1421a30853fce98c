/*
 * engine/usage_view: current usage answers, rendered once by the writer and read by any
 * thread without it.
 *
 * The live usage (engine/usage) belongs to the writer, which is busy with a batch most of
 * the time under load: a read that waited for it would wait for the batch and its fsync
 * (tens of milliseconds). So the writer publishes, for each subscription someone reads, the
 * answer itself: Lago's `customer_usage` body as of the last commit. An HTTP thread that
 * finds a view answers from it at once; one that finds none asks the writer, whose answer
 * then becomes the view.
 *
 * A view is never ahead of the disk and never behind an acknowledgement:
 *   - the writer renders views only between batches, from committed state;
 *   - after a commit, before any answer of the batch leaves, it renders again every view
 *     whose subscription the batch's events touched;
 *   - any other write of an organization (catalog, customers, subscriptions, its test clock)
 *     drops all the organization's views before it is applied: the next read asks the writer;
 *   - a view of an organization on the real clock is valid until its period ends
 *     (`valid_until`); after that the reader asks the writer, which opens the next period.
 * A view nobody read for USAGE_VIEW_IDLE_USEC is dropped instead of rendered again, so the
 * writer's cost follows what is read, not what is ingested.
 *
 * Views are immutable and reference-counted: a reader holds one while it copies the body;
 * the writer replaces it under the map's lock, which is held only for a lookup.
 *
 * Threads: usage_views_get, usage_views_count, usage_view_touch and usage_view_release from
 * any thread; every
 * other function from the engine's writer only (usage_view_render: any thread that owns
 * the usage it renders).
 */
#ifndef TALLY_ENGINE_USAGE_VIEW_H
#define TALLY_ENGINE_USAGE_VIEW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timestamp.h"
#include "engine/usage.h"
#include "util/buf.h"

#define USAGE_VIEWS_BUCKETS 4096
#define USAGE_VIEWS_MAX 65536                               /* views at once; then: the writer */
#define USAGE_VIEW_IDLE_USEC (600 * TIMESTAMP_USEC_PER_SEC) /* unread this long: not renewed */

struct usage_view {
    _Atomic uint32_t refs;
    _Atomic int64_t last_read; /* wall clock of the last reader */
    int64_t org_id;
    int64_t subscription_id;
    tally_time valid_until; /* wall clock; INT64_MAX for test-clock organizations */
    uint64_t rendered_in;   /* the writer's batch number */
    const char *external_subscription_id;
    const char *external_customer_id;
    const char *customer_timezone; /* NULL: UTC */
    const char *body;              /* Lago's {"customer_usage": ...} */
    size_t body_len;
    struct usage_view *next; /* the map's chain */
};

struct usage_views {
    pthread_mutex_t lock; /* guards the buckets and chains */
    struct usage_view *buckets[USAGE_VIEWS_BUCKETS];
    _Atomic size_t count;      /* changed by the writer under the lock; read by anyone */
    _Atomic uint64_t answered; /* reads answered from a view: readers add, metrics read */
};

/* What a current usage answer shows (Lago's query arguments): the charges of one billable
 * metric, or one charge (by lago_id), NULL for any; and whether taxes are applied. */
struct usage_view_filter {
    const char *billable_metric_code;
    const char *charge_lago_id;
    bool apply_taxes;
};

/*
 * Writes Lago's current usage answer for `u` into `out` (appending). With `filter` (NULL: every
 * charge, taxes applied, the published answer), the totals are those of the charges shown,
 * their taxes rounded once over them, and without taxes 0 and the total the amount. False if
 * an amount is out of range (`out` then holds a partial body).
 */
bool usage_view_render(const struct usage *u, const struct usage_view_filter *filter,
                       struct buf *out);

/* NULL when `filter` shows a charge of `u`, else why not, as Lago's 404 code: the metric no
 * charge of the plan has ("billable_metric_not_found"), else "charge_not_found". */
const char *usage_view_filter_unmatched(const struct usage *u,
                                        const struct usage_view_filter *filter);

/* A new view with one reference (the caller's); the strings and the body are copied. NULL
 * when memory runs out. */
struct usage_view *usage_view_new(const struct usage *u, const char *external_customer_id,
                                  const char *customer_timezone, tally_time valid_until,
                                  uint64_t rendered_in, const char *body, size_t body_len);
void usage_view_release(struct usage_view *v);
/* A reader used the view at `now` (wall clock). */
void usage_view_touch(struct usage_view *v, tally_time now);

void usage_views_init(struct usage_views *m);
void usage_views_free(struct usage_views *m); /* no reader may hold a view any more */

/* The view of (organization, external subscription id) with a reference for the caller, or
 * NULL. */
struct usage_view *usage_views_get(struct usage_views *m, int64_t org_id,
                                   const char *external_subscription_id);
/* Takes `v`, replacing the view of the same subscription. False (and `v` released) when the
 * map is full. */
bool usage_views_put(struct usage_views *m, struct usage_view *v);
void usage_views_drop(struct usage_views *m, int64_t org_id, const char *external_subscription_id);
void usage_views_drop_org(struct usage_views *m, int64_t org_id);
void usage_views_clear(struct usage_views *m);
/* How many views there are. Any thread. */
size_t usage_views_count(struct usage_views *m);

#endif
