#!/usr/bin/env bash
# GET /events at millions of stored events: tallyd (TALLYD, default build/tallyd) with
# SECONDS_OF_INGEST of the wrk ingest (bench/events.lua, 1000 subscriptions; with
# TALLY_BATCH_SUBSCRIPTION=1 each batch is one subscription's), then each listing RUNS times:
# prints the median and the fastest time of each, and its total_count.
#
#   bench/events_list.sh
#   TALLYD=/path/to/other/tallyd TALLY_BATCH_SUBSCRIPTION=1 bench/events_list.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/seed.sh
SECONDS_OF_INGEST=${SECONDS_OF_INGEST:-8}
RUNS=${RUNS:-5}
bench_workspace list
bench_seeded_server List
TALLY_KEY=$key TALLY_RUN=$RANDOM wrk -t2 -c64 -d"${SECONDS_OF_INGEST}s" -s bench/events.lua "$url" |
  awk '/Requests\/sec/{print "ingest:", $2 * 100, "events/s"}'
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for query in "per_page=20" "per_page=20&page=1000" "external_subscription_id=s5&per_page=20" \
  "code=tokens&per_page=20" "code=tokens&per_page=20&page=1000" \
  "timestamp_from=2020-01-01T00:00:00Z&timestamp_to=2020-02-01T00:00:00Z" \
  "timestamp_to=$now&per_page=20"; do
  times=()
  for _ in $(seq "$RUNS"); do
    times+=("$(curl -s -o "$work/body" -w '%{time_total}' -H "Authorization: Bearer $key" "$url/api/v1/events?$query")")
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-72s median %7.1f ms, fastest %7.1f ms, total_count %s\n' "GET /events?$query" \
    "$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p" | awk '{print $1 * 1000}')" \
    "$(echo "$sorted" | head -1 | awk '{print $1 * 1000}')" \
    "$(grep -o '"total_count":[0-9]*' "$work/body" | cut -d: -f2)"
done
