#!/usr/bin/env bash
# Tally's benchmarks, each beside its baseline measured in the same run. Prints figures;
# docs/BENCHMARKS.md records them with this command. Needs root for apt (wrk, postgresql).
#
#   make bench                        (or bench/run.sh)
#   DURATION=10 CONNECTIONS=64 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/seed.sh
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PG_PORT=${PG_PORT:-5499}

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/tally-bench-XXXXXX)
chmod 755 "$work"
cleanup() {
  if [ -n "${tallyd_pid:-}" ]; then
    kill "$tallyd_pid" 2>/dev/null || true
    wait "$tallyd_pid" 2>/dev/null || true # a stopping tallyd still writes its snapshot
  fi
  if [ -f "$work/pg/postmaster.pid" ]; then
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# The in-process benches make their store under $TMPDIR: here, so that the trap removes it when
# a run is interrupted (an audit's Ctrl-C left a /tmp/tally-bench-* of 5 MB behind).
inproc() { TMPDIR="$work" "$@"; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ)"

echo "== engine in-process (no HTTP): customer upserts, group commit, fsync per commit"
inproc build/release/bench/bench_engine_customers 200000 4 256
inproc build/release/bench/bench_engine_customers 20000 1 1

echo "== HTTP: tallyd, wrk $CONNECTIONS connections, ${DURATION}s, POST /customers (unique ids)"
key=$(build/tally --data-dir "$work/tally" org create Bench | tail -n 1)
build/tallyd --data-dir "$work/tally" --listen 127.0.0.1:0 --quiet >"$work/tallyd.out" 2>"$work/tallyd.err" &
tallyd_pid=$!
for _ in $(seq 50); do grep -q listening "$work/tallyd.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/tallyd.out")
TALLY_KEY=$key TALLY_RUN=$RANDOM wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/customers.lua "$url" | tee "$work/wrk.txt"
tally_rps=$(awk '/Requests\/sec/{print $2}' "$work/wrk.txt")
echo "tallyd peak RSS: $(awk '/VmHWM/{print $2, $3}' /proc/$tallyd_pid/status)"
stored=$(curl -s -H "Authorization: Bearer $key" "$url/api/v1/customers?per_page=1" | grep -o '"total_count":[0-9]*')
echo "tallyd stored customers: $stored"
kill -TERM "$tallyd_pid"; wait "$tallyd_pid" || true; tallyd_pid=

echo "== engine in-process (no HTTP): events in batches of 100 over 1000 subscriptions"
inproc build/release/bench/bench_engine_events 500000 2 100 1000
# the same, the metric with an expression: each event evaluated and rewritten before it is stored
inproc build/release/bench/bench_engine_events 500000 2 100 1000 0 1
# as many batches in flight as wrk's connections below: what the engine takes when it is busy
inproc build/release/bench/bench_engine_events 1000000 "$CONNECTIONS" 100 1000
# the largest batches (--max-batch 10000), each over many subscriptions
inproc build/release/bench/bench_engine_events 500000 2 10000 10000
build/release/bench/bench_dedup 10000000
# one price of a prorated graduated charge as its period fills (it reads every value once)
build/release/bench/bench_prorated_walk

echo "== HTTP: tallyd, wrk $CONNECTIONS connections, ${DURATION}s, POST /events/batch (100 unique events each)"
ekey=$(build/tally --data-dir "$work/tally-events" org create Events | tail -n 1)
build/tallyd --data-dir "$work/tally-events" --listen 127.0.0.1:0 --quiet >"$work/tallyd-events.out" 2>&1 &
tallyd_pid=$!
for _ in $(seq 50); do grep -q listening "$work/tallyd-events.out" 2>/dev/null && break; sleep 0.1; done
eurl=$(grep -o 'http://[^ ]*' "$work/tallyd-events.out")
seed_subscriptions "$eurl" "$ekey"
TALLY_KEY=$ekey TALLY_RUN=$RANDOM wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/events.lua "$eurl" | tee "$work/wrk-events.txt"
events_rps=$(awk '/Requests\/sec/{print $2 * 100}' "$work/wrk-events.txt")
echo "tallyd events/s: $events_rps; peak RSS: $(awk '/VmHWM/{print $2, $3}' /proc/$tallyd_pid/status)"
echo "== HTTP: current usage reads at 1,000/s (bench_open_loop: open loop, latency from when due) while the same ingest runs again"
node bench/usage_probe.mjs "$eurl" "$ekey"
build/release/bench/bench_open_loop "$eurl" "$ekey" usage 1000 $((DURATION - 2)) 16 >"$work/reads.txt" &
reads_pid=$!
TALLY_KEY=$ekey TALLY_RUN=$RANDOM wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/events.lua "$eurl" | grep -E 'Requests/sec|50%|99%'
wait "$reads_pid" || echo "(some reads failed or were not answered)"; cat "$work/reads.txt"
echo "tallyd stored events: $(curl -s -H "Authorization: Bearer $ekey" "$eurl/api/v1/events?per_page=1" | grep -o '"total_count":[0-9]*')"
kill -TERM "$tallyd_pid"; wait "$tallyd_pid" || true; tallyd_pid=

echo "== baseline: PostgreSQL 15, pgbench $CONNECTIONS clients, ${DURATION}s, one INSERT per transaction (fsync on)"
mkdir -p "$work/pg" "$work/pgsock" && chown postgres "$work/pg" "$work/pgsock"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$work/pg" >/dev/null
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$work/pg" -l "$work/pg/log" \
  -o "-p $PG_PORT -k $work/pgsock -c max_connections=200 -c fsync=on -c synchronous_commit=on" start >/dev/null
psql_() { runuser -u postgres -- psql -q -h "$work/pgsock" -p "$PG_PORT" -d postgres "$@"; }
psql_ -c "CREATE TABLE customers (id bigserial PRIMARY KEY, org_id bigint NOT NULL, lago_id uuid NOT NULL UNIQUE,
  sequential_id bigint NOT NULL, external_id text NOT NULL, name text, currency text, timezone text, country text,
  email text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, deleted_at timestamptz);
  CREATE UNIQUE INDEX ON customers (org_id, external_id) WHERE deleted_at IS NULL;
  CREATE SEQUENCE customer_seq;"
cp bench/pg_customers.sql "$work/pg_customers.sql" && chmod 644 "$work/pg_customers.sql"
runuser -u postgres -- pgbench -n -h "$work/pgsock" -p "$PG_PORT" -c "$CONNECTIONS" -j 2 -T "$DURATION" \
  -f "$work/pg_customers.sql" postgres | tee "$work/pgbench.txt"
pg_tps=$(awk '/^tps/{print $3; exit}' "$work/pgbench.txt")

echo "== baseline: PostgreSQL 15, Lago's event write path: 100 events per transaction, unique ids, JSON properties"
psql_ -c "CREATE TABLE events (id bigserial PRIMARY KEY, org_id bigint NOT NULL, external_subscription_id text NOT NULL,
  transaction_id text NOT NULL, code text NOT NULL, timestamp timestamptz NOT NULL, properties jsonb NOT NULL,
  created_at timestamptz NOT NULL);
  CREATE UNIQUE INDEX ON events (org_id, external_subscription_id, transaction_id);"
cp bench/pg_events.sql "$work/pg_events.sql" && chmod 644 "$work/pg_events.sql"
runuser -u postgres -- pgbench -n -h "$work/pgsock" -p "$PG_PORT" -c "$CONNECTIONS" -j 2 -T "$DURATION" \
  -f "$work/pg_events.sql" postgres | tee "$work/pgbench-events.txt"
pg_events=$(awk '/^tps/{print $3 * 100; exit}' "$work/pgbench-events.txt")
echo "== summary: tallyd ${tally_rps} customers/s over HTTP vs PostgreSQL ${pg_tps} inserts/s: ratio $(awk -v a="$tally_rps" -v b="$pg_tps" 'BEGIN{printf "%.1f", a/b}')x"
echo "== summary: tallyd ${events_rps} events/s over HTTP vs PostgreSQL ${pg_events} events/s: ratio $(awk -v a="$events_rps" -v b="$pg_events" 'BEGIN{printf "%.2f", a/b}')x"

echo "== current usage beside the ingest, HTTP threads and reader under SCHED_FIFO or not: bench/realtime.sh"
DURATION=$DURATION CONNECTIONS=$CONNECTIONS bench/realtime.sh

echo "== prepaid credits: bench/wallets.sh"
DURATION=$DURATION CONNECTIONS=$CONNECTIONS bench/wallets.sh

echo "== start-up against history: bench/startup.sh"
bench/startup.sh
