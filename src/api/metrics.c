/* api/metrics: see metrics.h. */
#include "api/metrics.h"

#include <inttypes.h>

#include "engine/usage_view.h"

static const int status_codes[METRICS_STATUS_SLOTS - 1] = {
    200, 201, 400, 401, 402, 403, 404, 405, 409, 413, 422, 429, 431, 500, 503,
};

/* Bucket upper bounds in microseconds, and the same bounds as Prometheus labels (seconds). */
static const int64_t latency_bounds_usec[METRICS_LATENCY_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};
static const char *const latency_labels[METRICS_LATENCY_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "+Inf",
};

static int status_slot(int status)
{
    for (int i = 0; i < METRICS_STATUS_SLOTS - 1; i++)
        if (status_codes[i] == status)
            return i;
    return METRICS_STATUS_SLOTS - 1;
}

void metrics_count_request(struct metrics *m, int route, int status, int64_t duration_usec)
{
    int r = route < 0 || route >= METRICS_ROUTES_MAX - 1 ? METRICS_ROUTES_MAX - 1 : route;
    atomic_fetch_add_explicit(&m->requests[r][status_slot(status)], 1, memory_order_relaxed);
    int b = 0;
    while (b < METRICS_LATENCY_BUCKETS - 1 && duration_usec > latency_bounds_usec[b])
        b++;
    atomic_fetch_add_explicit(&m->latency_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_usec,
                              (uint64_t)(duration_usec > 0 ? duration_usec : 0),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_count, 1, memory_order_relaxed);
}

/* Seconds as decimal text from microseconds, without floating point. */
static void append_seconds(struct buf *out, uint64_t usec)
{
    buf_printf(out, "%" PRIu64 ".%06" PRIu64, usec / 1000000, usec % 1000000);
}

static void render_requests(struct metrics *m, const char *const *route_names, int route_count,
                            struct buf *out)
{
    buf_append_str(out, "# HELP tally_http_requests_total HTTP requests answered, by route and "
                        "status.\n# TYPE tally_http_requests_total counter\n");
    for (int r = 0; r < METRICS_ROUTES_MAX; r++) {
        const char *name = r < route_count ? route_names[r] : "unmatched";
        if (r >= route_count && r != METRICS_ROUTES_MAX - 1)
            continue;
        for (int s = 0; s < METRICS_STATUS_SLOTS; s++) {
            uint64_t n = atomic_load_explicit(&m->requests[r][s], memory_order_relaxed);
            if (n == 0)
                continue;
            buf_printf(out, "tally_http_requests_total{route=\"%s\",status=\"", name);
            if (s < METRICS_STATUS_SLOTS - 1)
                buf_printf(out, "%d", status_codes[s]);
            else
                buf_append_str(out, "other");
            buf_printf(out, "\"} %" PRIu64 "\n", n);
        }
    }
}

static void render_latency(struct metrics *m, struct buf *out)
{
    buf_append_str(out, "# HELP tally_http_request_duration_seconds Time from the first byte of "
                        "a request to its answer.\n"
                        "# TYPE tally_http_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (int b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
        cumulative += atomic_load_explicit(&m->latency_buckets[b], memory_order_relaxed);
        buf_printf(out, "tally_http_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                   latency_labels[b], cumulative);
    }
    buf_append_str(out, "tally_http_request_duration_seconds_sum ");
    append_seconds(out, atomic_load_explicit(&m->latency_sum_usec, memory_order_relaxed));
    buf_printf(out, "\ntally_http_request_duration_seconds_count %" PRIu64 "\n",
               atomic_load_explicit(&m->latency_count, memory_order_relaxed));
    buf_printf(out,
               "# HELP tally_http_requests_in_flight Requests being served now.\n"
               "# TYPE tally_http_requests_in_flight gauge\ntally_http_requests_in_flight %" PRId64
               "\n",
               atomic_load_explicit(&m->in_flight, memory_order_relaxed));
    buf_printf(out,
               "# HELP tally_http_connections Client connections open now.\n"
               "# TYPE tally_http_connections gauge\ntally_http_connections %" PRId64 "\n"
               "# HELP tally_http_connections_max Client connections held at most; past them "
               "new ones wait in the listen backlog.\n"
               "# TYPE tally_http_connections_max gauge\ntally_http_connections_max %" PRId64 "\n"
               "# HELP tally_http_peer_closes_total Connections closed because their client had "
               "closed its side with no request to answer.\n"
               "# TYPE tally_http_peer_closes_total counter\ntally_http_peer_closes_total %" PRIu64
               "\n",
               atomic_load_explicit(&m->connections, memory_order_relaxed), m->connections_max,
               atomic_load_explicit(&m->peer_closes, memory_order_relaxed));
}

static void render_engine(struct engine *engine, struct buf *out)
{
    struct engine_stats s;
    engine_stats(engine, &s);
    buf_append_str(out, "# HELP tally_engine_commit_batch_size Commands per group commit.\n"
                        "# TYPE tally_engine_commit_batch_size histogram\n");
    uint64_t cumulative = 0, batches = 0;
    for (int b = 0; b < ENGINE_BATCH_BUCKETS; b++) {
        cumulative += s.batch_size_buckets[b];
        if (b < ENGINE_BATCH_BUCKETS - 1)
            buf_printf(out, "tally_engine_commit_batch_size_bucket{le=\"%d\"} %" PRIu64 "\n",
                       1 << b, cumulative);
        else
            buf_printf(out, "tally_engine_commit_batch_size_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                       cumulative);
    }
    batches = cumulative;
    buf_printf(out,
               "tally_engine_commit_batch_size_sum %" PRIu64 "\n"
               "tally_engine_commit_batch_size_count %" PRIu64 "\n"
               "# HELP tally_engine_queue_depth Commands waiting for the writer.\n"
               "# TYPE tally_engine_queue_depth gauge\ntally_engine_queue_depth %" PRIu64 "\n"
               "# HELP tally_engine_commands_total Commands the writer took, applied or refused.\n"
               "# TYPE tally_engine_commands_total counter\ntally_engine_commands_total %" PRIu64
               "\n"
               "# HELP tally_engine_commits_total Group commits.\n"
               "# TYPE tally_engine_commits_total counter\ntally_engine_commits_total %" PRIu64 "\n"
               "# HELP tally_engine_commit_failures_total Group commits that failed (nothing "
               "applied).\n"
               "# TYPE tally_engine_commit_failures_total counter\n"
               "tally_engine_commit_failures_total %" PRIu64 "\n",
               s.batch_size_sum, batches, s.queue_depth, s.commands, s.commits, s.commit_failures);
    buf_printf(out,
               "# HELP tally_engine_syncs_total fdatasyncs of the log; each acknowledges every "
               "group committed before it.\n"
               "# TYPE tally_engine_syncs_total counter\ntally_engine_syncs_total %" PRIu64 "\n"
               "# HELP tally_engine_sync_failed 1 once the disk refused a sync: changes are "
               "refused until tallyd restarts.\n"
               "# TYPE tally_engine_sync_failed gauge\ntally_engine_sync_failed %d\n",
               s.syncs, s.sync_failed ? 1 : 0);
    buf_printf(
        out,
        "# HELP tally_engine_snapshots_total Snapshots of the event identity set saved "
        "while running (a clean stop saves one too).\n"
        "# TYPE tally_engine_snapshots_total counter\ntally_engine_snapshots_total %" PRIu64 "\n"
        "# HELP tally_engine_snapshot_failures_total Snapshots that could not be saved "
        "(tried again when next due).\n"
        "# TYPE tally_engine_snapshot_failures_total counter\n"
        "tally_engine_snapshot_failures_total %" PRIu64 "\n"
        "# HELP tally_engine_snapshot_events Events the newest usable snapshot holds: a "
        "start reads back the events after them, and every event from the oldest one a "
        "current billing period counts.\n"
        "# TYPE tally_engine_snapshot_events gauge\ntally_engine_snapshot_events %" PRIu64 "\n",
        s.snapshots, s.snapshot_failures, s.snapshot_events);
    buf_printf(out,
               "# HELP tally_usage_builds_total Live usages built from the store: at start, "
               "for a new period, after a change to what prices them, or to take back a "
               "refused command that memory could not.\n"
               "# TYPE tally_usage_builds_total counter\ntally_usage_builds_total %" PRIu64 "\n"
               "# HELP tally_usage_events_read_total Stored events those builds read back.\n"
               "# TYPE tally_usage_events_read_total counter\n"
               "tally_usage_events_read_total %" PRIu64 "\n"
               "# HELP tally_usage_events_passed_over_total Stored events a usage's charge could "
               "not count and passed over (a value its metric refuses now), each build that "
               "meets one counting it; each usage is said once on stderr.\n"
               "# TYPE tally_usage_events_passed_over_total counter\n"
               "tally_usage_events_passed_over_total %" PRIu64 "\n",
               s.usage_builds, s.usage_events_read, s.usage_passed_over);
    buf_printf(out,
               "# HELP tally_sweep_failures_total The real clock's sweeps of an organization that "
               "failed (each said on stderr with the customer it failed at).\n"
               "# TYPE tally_sweep_failures_total counter\ntally_sweep_failures_total %" PRIu64 "\n"
               "# HELP tally_sweep_quarantined_customers Customers (or whole organizations, for a "
               "failure that named none) the real clock's sweep passes over until they are "
               "retried.\n"
               "# TYPE tally_sweep_quarantined_customers gauge\n"
               "tally_sweep_quarantined_customers %" PRIu64 "\n",
               s.sweep_failures, s.sweep_quarantined);
    buf_printf(out,
               "# HELP tally_wallet_writeout_failures_total Write-outs of one customer's pending "
               "wallet debits to the wallet tables that failed (each customer said once on "
               "stderr; the others are written out).\n"
               "# TYPE tally_wallet_writeout_failures_total counter\n"
               "tally_wallet_writeout_failures_total %" PRIu64 "\n"
               "# HELP tally_wallet_writeout_stuck_customers Customers whose debits wait in the "
               "wallet journal for their write-out to be retried (their commands fail until "
               "then).\n"
               "# TYPE tally_wallet_writeout_stuck_customers gauge\n"
               "tally_wallet_writeout_stuck_customers %" PRIu64 "\n",
               s.writeout_failures, s.writeout_stuck);
    buf_printf(out,
               "# HELP tally_wallet_pending_customers Customers whose wallet rows lag their "
               "debits (kept in the wallet journal).\n"
               "# TYPE tally_wallet_pending_customers gauge\n"
               "tally_wallet_pending_customers %" PRIu64 "\n"
               "# HELP tally_wallet_journal_records Records in the wallet journal.\n"
               "# TYPE tally_wallet_journal_records gauge\ntally_wallet_journal_records %" PRIu64
               "\n"
               "# HELP tally_wallet_journal_bytes Bytes of the wallet journal's records.\n"
               "# TYPE tally_wallet_journal_bytes gauge\ntally_wallet_journal_bytes %" PRIu64 "\n",
               s.wallet_pending_customers, s.wallet_journal_records, s.wallet_journal_bytes);
    struct usage_views *views = engine_usage_views(engine);
    buf_printf(out,
               "# HELP tally_usage_views Current usage answers published for readers.\n"
               "# TYPE tally_usage_views gauge\ntally_usage_views %zu\n"
               "# HELP tally_usage_view_answers_total Current usage reads answered from a view, "
               "without the writer.\n"
               "# TYPE tally_usage_view_answers_total counter\n"
               "tally_usage_view_answers_total %" PRIu64 "\n",
               usage_views_count(views), atomic_load(&views->answered));
}

void metrics_render(struct metrics *m, const char *const *route_names, int route_count,
                    struct engine *engine, struct buf *out)
{
    render_requests(m, route_names, route_count, out);
    render_latency(m, out);
    if (engine)
        render_engine(engine, out);
}
