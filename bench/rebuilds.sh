#!/usr/bin/env bash
# What the writer pays when live usage must change without a new event: tallyd (TALLYD,
# default build/tallyd) takes SECONDS_OF_INGEST of the wrk ingest (bench/events.lua: 1000
# subscriptions, a sum metric priced by each plan's one charge (bench/seed.sh), all in the
# current period),
# then, RUNS times each, prints the median and fastest latency of:
#   - a batch of 100 events for one subscription refused at its last (a duplicate): the
#     usage must lose the 99 it took (in memory, or by reading the period back);
#   - catalog writes: a new tax that is no default, and an add-on's rename, which price no
#     usage (builds before 2026-11-28 repriced every usage for any catalog write), and a new
#     default tax (applied_to_organization), for which every usage in the book is repriced;
#   - a metric edit that changes no count (its name), and one that does (its field): every
#     usage in the book is rebuilt, the second reading its events back;
# and the stored events usage builds read meanwhile (/metrics, when the build counts them).
# The writer does nothing else meanwhile, so each latency is a stall every client waits out.
#
#   bench/rebuilds.sh
#   TALLYD=/path/to/other/tallyd bench/rebuilds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/seed.sh
SECONDS_OF_INGEST=${SECONDS_OF_INGEST:-8}
RUNS=${RUNS:-5}
bench_workspace rebuilds
bench_seeded_server Rebuilds
call() { # METHOD PATH [BODY]: prints the status and the seconds it took
  curl -s -o "$work/body" -w '%{http_code} %{time_total}\n' -X "$1" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' "$url/api/v1/$2" ${3:+-d "$3"}
}
TALLY_KEY=$key TALLY_RUN=$RANDOM wrk -t2 -c64 -d"${SECONDS_OF_INGEST}s" -s bench/events.lua "$url" |
  awk '/Requests\/sec/{print "ingest:", $2 * 100, "events/s"}'
stored=$(curl -s -H "Authorization: Bearer $key" "$url/api/v1/events?per_page=1" | grep -o '"total_count":[0-9]*' | cut -d: -f2)
echo "stored events: $stored (about $((stored / 1000)) a subscription, all in the current period)"
call POST events '{"event":{"transaction_id":"kept","external_subscription_id":"s5","code":"tokens","properties":{"tokens":1}}}' >/dev/null
events_read() { curl -s "$url/metrics" | awk '/^tally_usage_events_read_total/{print $2}'; }
measure() { # LABEL EXPECTED_STATUS METHOD PATH BODY_FN
  local label=$1 want=$2 method=$3 path=$4 body=$5 times=() before after status took
  before=$(events_read)
  for run in $(seq "$RUNS"); do
    read -r status took < <(call "$method" "$path" "$($body "$run")")
    [ "$status" = "$want" ] || { echo "$label: status $status, not $want: $(head -c 300 "$work/body")" >&2; exit 1; }
    times+=("$took")
  done
  after=$(events_read)
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-46s median %8.1f ms, fastest %8.1f ms; events read back: %s\n' "$label" \
    "$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p" | awk '{print $1 * 1000}')" \
    "$(echo "$sorted" | head -1 | awk '{print $1 * 1000}')" \
    "$([ -n "$before" ] && echo $(( (after - before) / RUNS )) a time || echo "(not counted by this build)")"
}
refused_batch() {
  local events=()
  for i in $(seq 99); do
    events+=("{\"transaction_id\":\"r$1-$i\",\"external_subscription_id\":\"s5\",\"code\":\"tokens\",\"properties\":{\"tokens\":$i}}")
  done
  events+=('{"transaction_id":"kept","external_subscription_id":"s5","code":"tokens","properties":{"tokens":1}}')
  local IFS=,
  echo "{\"events\":[${events[*]}]}"
}
tax() { echo "{\"tax\":{\"code\":\"t$1\",\"name\":\"T$1\",\"rate\":\"1\"}}"; }
default_tax() { echo "{\"tax\":{\"code\":\"d$1\",\"name\":\"D$1\",\"rate\":\"0\",\"applied_to_organization\":true}}"; }
add_on_name() { echo "{\"add_on\":{\"name\":\"Setup $1\"}}"; }
metric_name() { echo "{\"billable_metric\":{\"name\":\"Tokens $1\"}}"; }
metric_field() { echo "{\"billable_metric\":{\"field_name\":\"tokens$(($1 % 2))\"}}"; }
measure "batch of 100 refused at its last event" 422 POST events/batch refused_batch
call POST add_ons '{"add_on":{"code":"setup","name":"Setup","amount_cents":100,"amount_currency":"USD"}}' >/dev/null
measure "catalog write (a tax, no default)" 200 POST taxes tax
measure "catalog write (an add-on's name)" 200 PUT add_ons/setup add_on_name
measure "catalog write (a default tax)" 200 POST taxes default_tax
measure "metric edit (its name)" 200 PUT billable_metrics/tokens metric_name
measure "metric edit (its field)" 200 PUT billable_metrics/tokens metric_field
