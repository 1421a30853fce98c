# Sourced by the benchmark scripts. bench_workspace NAME installs wrk if missing, makes $work
# (a fresh directory, removed at exit with the tallyd whose PID is in $pid) and $dir (the
# data directory in it). bench_seeded_server ORG then starts $TALLYD (default build/tallyd) on
# $dir with an organization ORG made by $TALLY and seeded, setting $key, $pid and $url; any
# further arguments go to tallyd.
# seed_subscriptions URL KEY gives an organization the metric bench/events.lua sends (tokens,
# a sum) and the 1,000 subscriptions s0..s999 (customers c0..c999) its events name, spread over
# four plans with one charge each on that metric in another of Lago's charge models (standard,
# graduated, package, percentage): every event is priced as it is taken, as issue 4's
# benchmark asks.
seed_subscriptions() {
  local url=$1 key=$2
  api_() { curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -X POST "$url/api/v1/$1" -d "$2"; }
  api_ billable_metrics '{"billable_metric":{"code":"tokens","name":"Tokens","aggregation_type":"sum_agg","field_name":"tokens"}}'
  local bm
  bm=$(curl -s -H "Authorization: Bearer $key" "$url/api/v1/billable_metrics/tokens" | grep -o '"lago_id":"[^"]*"' | head -1 | cut -d'"' -f4)
  local models=(
    '"charge_model":"standard","properties":{"amount":"0.00001"}'
    '"charge_model":"graduated","properties":{"graduated_ranges":[{"from_value":0,"to_value":100000,"per_unit_amount":"0.00002","flat_amount":"0"},{"from_value":100001,"to_value":null,"per_unit_amount":"0.00001","flat_amount":"1"}]}'
    '"charge_model":"package","properties":{"amount":"0.01","package_size":1000,"free_units":500}'
    '"charge_model":"percentage","properties":{"rate":"0.5","fixed_amount":"0.001","free_units_per_events":10}'
  )
  for m in 0 1 2 3; do
    api_ plans "{\"plan\":{\"code\":\"p$m\",\"name\":\"P$m\",\"interval\":\"monthly\",\"amount_cents\":0,\"amount_currency\":\"USD\",\"charges\":[{\"billable_metric_id\":\"$bm\",${models[$m]}}]}}"
  done
  for i in $(seq 0 999); do
    api_ subscriptions "{\"subscription\":{\"external_customer_id\":\"c$i\",\"plan_code\":\"p$((i % 4))\",\"external_id\":\"s$i\",\"subscription_at\":\"2020-01-01T00:00:00Z\"}}"
  done
}

bench_workspace() {
  command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  work=$(mktemp -d "/tmp/tally-$1-XXXXXX")
  pid=
  trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; fi; rm -rf "$work"' EXIT
  dir=$work/data
}

bench_seeded_server() {
  key=$("${TALLY:-build/tally}" --data-dir "$dir" org create "$1" | tail -n 1)
  "${TALLYD:-build/tallyd}" --data-dir "$dir" --listen 127.0.0.1:0 --quiet "${@:2}" >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$work/out")
  seed_subscriptions "$url" "$key"
}

# For the scripts that compare two builds in turns (bench/holds_ab.sh, bench/ingest_ab.sh):
# serve_tree TREE DIR starts that tree's tallyd on DIR, setting url and pid; stop_tree stops it.
serve_tree() {
  "$1/build/tallyd" --data-dir "$2" --listen 127.0.0.1:0 --quiet >"$2.out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$2.out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$2.out")
}
stop_tree() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# ab_turns OLD NEW TURNS MEASURE: TURNS times, each build in turn serves a fresh copy of
# $work/tpl and MEASURE SIDE TURN TREE runs against it ($url set), printing one line.
ab_turns() {
  local turn side tree dir
  for turn in $(seq "$3"); do
    for side in old new; do
      tree=$([ $side = old ] && echo "$1" || echo "$2")
      dir="$work/$side-$turn"
      cp -a "$work/tpl" "$dir"
      serve_tree "$tree" "$dir"
      "$4" "$side" "$turn" "$tree"
      stop_tree
      rm -rf "$dir"
    done
  done
}
