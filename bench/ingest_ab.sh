#!/usr/bin/env bash
# HTTP ingest, two builds in turns: wrk sends 100-event batches (bench/events.lua) over the
# 1,000 priced subscriptions of bench/seed.sh for DURATION seconds, each turn on a fresh copy of
# one data directory made once by the first build (an older build cannot open a newer one's
# schema: pass the older build first). On a shared 2-core host one run moves with the host;
# turns that alternate on the same data tell a change in the code from one in the host.
#
#   bench/ingest_ab.sh OLD_TREE NEW_TREE [TURNS]     (each tree built: make build)
#   DURATION=8 CONNECTIONS=64 bench/ingest_ab.sh /tmp/old . 3
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_TREE NEW_TREE [TURNS]" >&2; exit 2; }
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); turns=${3:-2}
DURATION=${DURATION:-8}; CONNECTIONS=${CONNECTIONS:-64}
cd "$(dirname "$0")/.."
. bench/seed.sh
bench_workspace ingest-ab

key=$("$old/build/tally" --data-dir "$work/tpl" org create Ingest | tail -n 1)
serve_tree "$old" "$work/tpl"
seed_subscriptions "$url" "$key"
stop_tree

echo "== HTTP ingest, wrk -c$CONNECTIONS ${DURATION}s, 100 events a batch, $turns turns: $old (old) and $new (new)"
measure() {
  local out
  out=$(TALLY_KEY=$key TALLY_RUN="$1$2" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/events.lua "$url")
  echo "$1 $2: $(awk '/Requests\/sec/{printf "%d events/s", $2 * 100}' <<<"$out"), batch p50 $(awk '$1=="50%"{print $2}' <<<"$out"), p99 $(awk '$1=="99%"{print $2}' <<<"$out"), non-2xx $(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0)"
}
ab_turns "$old" "$new" "$turns" measure
