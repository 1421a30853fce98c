#!/usr/bin/env bash
# Start-up time against history: tallyd with HISTORY_SECONDS of full-speed ingest timestamped
# in a past period (2026-09-21) and CURRENT_SECONDS in the current one, 1000 subscriptions;
# then starts with the snapshot a clean stop saved (engine/snapshot) beside starts without it
# (the file removed: every stored event read back, the baseline), alternating, RUNS each.
#
#   bench/startup.sh                  (bench/run.sh runs it too)
#   HISTORY_SECONDS=20 CURRENT_SECONDS=2 RUNS=3 bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/seed.sh
HISTORY_SECONDS=${HISTORY_SECONDS:-20}
CURRENT_SECONDS=${CURRENT_SECONDS:-2}
RUNS=${RUNS:-3}
bench_workspace startup

# start: runs tallyd until it listens; its start line goes to $work/start.txt
start() {
  build/tallyd --data-dir "$dir" --listen 127.0.0.1:0 --quiet >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 600); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$work/out")
  grep 'started in' "$work/err" >"$work/start.txt"
}
stop() {
  local t0 t1
  t0=$(date +%s%N)
  kill -TERM "$pid"; wait "$pid" || true; pid=
  t1=$(date +%s%N)
  stop_ms=$(( (t1 - t0) / 1000000 ))
}

key=$(build/tally --data-dir "$dir" org create Startup | tail -n 1)
start
seed_subscriptions "$url" "$key"
TALLY_KEY=$key TALLY_RUN=history TALLY_TIMESTAMP=1790000000 \
  wrk -t2 -c64 -d"${HISTORY_SECONDS}s" -s bench/events.lua "$url" | grep Requests/sec
TALLY_KEY=$key TALLY_RUN=current wrk -t2 -c64 -d"${CURRENT_SECONDS}s" -s bench/events.lua "$url" | grep Requests/sec
stop
echo "== the first stop (saving the snapshot) took ${stop_ms} ms"
echo "database $(du -m "$dir/tally.db" | cut -f1) MB, snapshot $(du -m "$dir/events.snapshot" | cut -f1) MB"
for run in $(seq "$RUNS"); do
  start; stop
  echo "with the snapshot:    $(sed 's/^tallyd: //' "$work/start.txt"); stop ${stop_ms} ms"
  rm "$dir/events.snapshot"
  start; stop
  echo "without (baseline):   $(sed 's/^tallyd: //' "$work/start.txt")"
done
