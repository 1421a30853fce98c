#!/usr/bin/env bash
# Prepaid credits at speed: HTTP ingest with every event debited from its customer's wallet in
# the same commit, beside the same ingest without wallets (same plan, same charge, same 1000
# subscriptions, same run); then authorization (hold) latency at a stated rate, alone, beside
# ingest at stated rates and beside that ingest at full speed.
# Prints figures; docs/BENCHMARKS.md records them with this command.
#
# The two ingests alternate ROUNDS times, each on a fresh copy of a data directory set up once
# (the catalog, subscriptions and wallets), and the ratio is that of their medians: one run of
# each on this machine spread the ratio over 72-85% for one build.
#
#   bench/wallets.sh                   (after make build; bench/run.sh calls it too)
#   DURATION=10 CONNECTIONS=64 HOLD_RATE=10000 ROUNDS=3 bench/wallets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
HOLD_RATE=${HOLD_RATE:-10000}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

work=$(mktemp -d /tmp/tally-bench-wallets-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # a stopping tallyd still writes (its snapshot): gone first, or the directory is not empty
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# serve DIR: starts tallyd on DIR; sets url and pid.
serve() {
  build/tallyd --data-dir "$1" --listen 127.0.0.1:0 --quiet >"$1.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do grep -q listening "$1.out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$1.out")
}

# stop: a clean stop of the last tallyd served.
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; }

# setup NAME WALLETS: the data directory $work/NAME.tpl with 1000 subscriptions priced per
# token; WALLETS=yes gives each customer a hard-limited wallet that never runs dry. Its API
# key in $work/NAME.key.
setup() {
  local dir="$work/$1.tpl" key
  key=$(build/tally --data-dir "$dir" org create "$1" | tail -n 1)
  echo "$key" >"$work/$1.key"
  serve "$dir"
  api() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -X POST "$url/api/v1/$1" -d "$2"; }
  api billable_metrics '{"billable_metric":{"code":"tokens","name":"Tokens","aggregation_type":"sum_agg","field_name":"tokens"}}' >/dev/null
  local bm
  bm=$(curl -s -H "Authorization: Bearer $key" "$url/api/v1/billable_metrics/tokens" | grep -o '"lago_id":"[^"]*"' | head -1 | cut -d'"' -f4)
  api plans "{\"plan\":{\"code\":\"p\",\"name\":\"P\",\"interval\":\"monthly\",\"amount_cents\":0,\"amount_currency\":\"USD\",\"charges\":[{\"billable_metric_id\":\"$bm\",\"charge_model\":\"standard\",\"properties\":{\"amount\":\"0.00001\"}}]}}" >/dev/null
  for i in $(seq 0 999); do
    api subscriptions "{\"subscription\":{\"external_customer_id\":\"c$i\",\"plan_code\":\"p\",\"external_id\":\"s$i\",\"subscription_at\":\"2020-01-01T00:00:00Z\"}}" >/dev/null
    if [ "$2" = yes ]; then
      api wallets "{\"wallet\":{\"external_customer_id\":\"c$i\",\"currency\":\"USD\",\"rate_amount\":\"0.01\",\"name\":\"Prepaid\",\"granted_credits\":\"100000000\",\"limit\":\"hard\"}}" >/dev/null
    fi
  done
  stop
}

# start NAME ROUND: tallyd on a fresh copy of NAME's template; sets url, pid and key.
start() {
  cp -a "$work/$1.tpl" "$work/$1-$2"
  serve "$work/$1-$2"
  key=$(cat "$work/$1.key")
}

# ingest NAME: prints wrk's rate and latencies; events/s into $work/NAME.rate
ingest() {
  TALLY_KEY=$key TALLY_RUN=$RANDOM wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/events.lua "$url" >"$work/$1.txt"
  grep -E 'Requests/sec|50%|99%' "$work/$1.txt"
  awk '/Requests\/sec/{print $2 * 100}' "$work/$1.txt" >"$work/$1.rate"
  echo "events/s: $(cat "$work/$1.rate")"
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

setup plain no
setup wallets yes
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS: HTTP ingest, no wallets: wrk $CONNECTIONS connections, ${DURATION}s, 100 events a request, 1000 subscriptions"
  start plain "$round"
  ingest "plain-$round"
  cat "$work/plain-$round.rate" >>"$work/plain.rates"
  stop
  rm -rf "$work/plain-$round"
  echo "== round $round of $ROUNDS: HTTP ingest, every customer with a hard-limited wallet, each event debited in its commit"
  start wallets "$round"
  ingest "wallets-$round"
  cat "$work/wallets-$round.rate" >>"$work/wallets.rates"
  if [ "$round" -lt "$ROUNDS" ]; then
    stop
    rm -rf "$work/wallets-$round"
  fi
done
plain=$(median <"$work/plain.rates")
debited=$(median <"$work/wallets.rates")
echo "tallyd peak RSS: $(awk '/VmHWM/{print $2, $3}' /proc/$pid/status)"
echo "wallet c0 after ingest: $(curl -s -H "Authorization: Bearer $key" "$url/api/v1/customers/c0/wallets/prepaid" | grep -o '"consumed_amount_cents":[0-9]*')"

# Holds at a stated rate from an open-loop client (bench/open_loop.c): each is due at its time
# whatever happened before, and its latency runs from then, so queueing behind slow answers
# counts (closed-loop clients such as wrk send less when the server slows, and report less).
open_loop() { build/release/bench/bench_open_loop "$url" "$key" "$@" || echo "(some requests failed or were not answered)"; }
echo "== authorizations at ${HOLD_RATE}/s alone (open loop, 64 connections)"
open_loop authorizations "$HOLD_RATE" "$DURATION" 64
for rate in 100 500; do
  echo "== authorizations at ${HOLD_RATE}/s while events arrive at $((rate * 100))/s (open loop, $rate batches of 100 a second)"
  open_loop events "$rate" "$DURATION" 16 >"$work/events-$rate.txt" &
  events_pid=$!
  sleep 1
  open_loop authorizations "$HOLD_RATE" $((DURATION - 2)) 64
  wait "$events_pid"; cat "$work/events-$rate.txt"
done
echo "== authorizations at ${HOLD_RATE}/s while the wrk ingest above runs again as fast as it can"
open_loop authorizations "$HOLD_RATE" $((DURATION - 2)) 64 >"$work/auth.txt" &
auth_pid=$!
ingest wallets-again
wait "$auth_pid"; cat "$work/auth.txt"

echo "== summary: ingest with real-time debit ${debited} events/s vs ${plain} without wallets (medians of $ROUNDS: $(tr '\n' ' ' <"$work/wallets.rates")vs $(tr '\n' ' ' <"$work/plain.rates")): $(awk -v a="$debited" -v b="$plain" 'BEGIN{printf "%.0f%%", 100*a/b}')"
