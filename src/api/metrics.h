/*
 * api/metrics: the counters behind GET /metrics (Prometheus text format 0.0.4).
 *
 * Requests are counted by route and status, durations go into one histogram; the engine's
 * own counters (commit batch sizes, queue depth) are read from engine_stats when rendering.
 * Every counter is a relaxed atomic so that HTTP threads never contend on a lock to count.
 *
 * Threads: any.
 */
#ifndef TALLY_API_METRICS_H
#define TALLY_API_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/buf.h"

#define METRICS_ROUTES_MAX 96   /* route table size, plus one slot for unmatched paths */
#define METRICS_STATUS_SLOTS 16 /* the statuses Tally answers, plus "other" */
#define METRICS_LATENCY_BUCKETS 15

struct metrics {
    _Atomic uint64_t requests[METRICS_ROUTES_MAX][METRICS_STATUS_SLOTS];
    _Atomic uint64_t latency_buckets[METRICS_LATENCY_BUCKETS]; /* not cumulative */
    _Atomic uint64_t latency_sum_usec;
    _Atomic uint64_t latency_count;
    _Atomic int64_t in_flight;
    _Atomic int64_t connections;  /* open now */
    int64_t connections_max;      /* the limit in effect, set once at start */
    _Atomic uint64_t peer_closes; /* connections shut by api/conn_watch */
};

/* route: index in the route table, or -1 for unmatched paths. */
void metrics_count_request(struct metrics *m, int route, int status, int64_t duration_usec);

/*
 * Writes every metric. route_names[i] names route i (route_count of them); `engine` may be
 * NULL (no engine metrics).
 */
void metrics_render(struct metrics *m, const char *const *route_names, int route_count,
                    struct engine *engine, struct buf *out);

#endif
