#!/usr/bin/env bash
# Holds beside ingest, two builds in turns: authorizations at HOLD_RATE/s (open loop, 64
# connections) while events arrive at EVENT_BATCHES batches of 100 a second, each turn on a
# fresh copy of one data directory (1000 subscriptions, each customer with a hard-limited
# wallet), made once by the first build (an older build cannot open a newer one's schema:
# pass the older build first). The holds' tail on a shared 2-core host moves with the host
# from one run to the next; turns that alternate on the same data are what tells a change
# in the code from one in the host.
#
#   bench/holds_ab.sh OLD_TREE NEW_TREE [TURNS]     (each tree built: make build)
#   HOLD_RATE=10000 EVENT_BATCHES=500 DURATION=10 bench/holds_ab.sh /tmp/old . 3
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_TREE NEW_TREE [TURNS]" >&2; exit 2; }
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); turns=${3:-2}
HOLD_RATE=${HOLD_RATE:-10000}; EVENT_BATCHES=${EVENT_BATCHES:-500}; DURATION=${DURATION:-10}
work=$(mktemp -d /tmp/tally-bench-holds-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$(dirname "$0")/.."
. bench/seed.sh

key=$("$old/build/tally" --data-dir "$work/tpl" org create Holds | tail -n 1)
serve_tree "$old" "$work/tpl"
api() { curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -X POST "$url/api/v1/$1" -d "$2"; }
api billable_metrics '{"billable_metric":{"code":"tokens","name":"Tokens","aggregation_type":"sum_agg","field_name":"tokens"}}'
bm=$(curl -s -H "Authorization: Bearer $key" "$url/api/v1/billable_metrics/tokens" | grep -o '"lago_id":"[^"]*"' | head -1 | cut -d'"' -f4)
api plans "{\"plan\":{\"code\":\"p\",\"name\":\"P\",\"interval\":\"monthly\",\"amount_cents\":0,\"amount_currency\":\"USD\",\"charges\":[{\"billable_metric_id\":\"$bm\",\"charge_model\":\"standard\",\"properties\":{\"amount\":\"0.00001\"}}]}}"
for i in $(seq 0 999); do
  api subscriptions "{\"subscription\":{\"external_customer_id\":\"c$i\",\"plan_code\":\"p\",\"external_id\":\"s$i\",\"subscription_at\":\"2020-01-01T00:00:00Z\"}}"
  api wallets "{\"wallet\":{\"external_customer_id\":\"c$i\",\"currency\":\"USD\",\"rate_amount\":\"0.01\",\"name\":\"Prepaid\",\"granted_credits\":\"100000000\",\"limit\":\"hard\"}}"
done
stop_tree

echo "== authorizations at ${HOLD_RATE}/s beside ${EVENT_BATCHES} batches of 100 events a second, ${turns} turns: $old (old) and $new (new)"
measure() {
  "$3/build/release/bench/bench_open_loop" "$url" "$key" events "$EVENT_BATCHES" "$DURATION" 16 >"$work/$1-$2.events" &
  local events=$!
  sleep 1
  echo "$1 $2: $("$3/build/release/bench/bench_open_loop" "$url" "$key" authorizations "$HOLD_RATE" $((DURATION - 2)) 64 | grep -o 'answered.*')"
  wait "$events"
}
ab_turns "$old" "$new" "$turns" measure
