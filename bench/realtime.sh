#!/usr/bin/env bash
# Current usage read while the wrk ingest runs at full speed, with tallyd's HTTP threads at
# ordinary priority and under SCHED_FIFO (--realtime-http), the reader (bench_open_loop, 1,000
# reads a second) at ordinary priority and under SCHED_FIFO. On two cores shared with wrk, a
# reader at ordinary priority measures its own wait for a core as much as the server's; under
# SCHED_FIFO it stands for a client on another machine. Needs CAP_SYS_NICE (chrt,
# --realtime-http), which root in a container may lack.
#
#   bench/realtime.sh                 (after make build; bench/run.sh calls it too)
#   DURATION=10 CONNECTIONS=64 bench/realtime.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/seed.sh
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
bench_workspace realtime
for server in ordinary realtime; do
  dir=$work/$server
  flags=()
  [ "$server" = realtime ] && flags=(--realtime-http)
  bench_seeded_server "$server" "${flags[@]}"
  node bench/usage_probe.mjs "$url" "$key" >/dev/null # every view published once
  for reader in ordinary fifo; do
    run=()
    [ "$reader" = fifo ] && run=(chrt -f 1)
    "${run[@]}" build/release/bench/bench_open_loop "$url" "$key" usage 1000 $((DURATION - 2)) 16 >"$work/reads.txt" &
    reads=$!
    TALLY_KEY=$key TALLY_RUN=$RANDOM wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/events.lua "$url" >"$work/wrk.txt"
    wait "$reads" || echo "(some reads failed or were not answered)"
    echo "== HTTP threads $server, reader $reader: ingest $(awk '/Requests\/sec/{print $2 * 100}' "$work/wrk.txt") events/s"
    cat "$work/reads.txt"
  done
  kill -TERM "$pid"; wait "$pid" || true; pid=
done
