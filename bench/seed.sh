# Sourced by the benchmark scripts. bench_workspace NAME installs wrk if missing, makes $work
# (a fresh directory, removed at exit with the tallyd whose PID is in $pid) and $dir (the
# data directory in it). bench_seeded_server ORG then starts $TALLYD (default build/tallyd) on
# $dir with an organization ORG made by $TALLY and seeded, setting $key, $pid and $url; any
# further arguments go to tallyd.
# seed_subscriptions URL KEY gives an organization the
# metric bench/events.lua sends (tokens, a sum), a plan without charges, and the 1,000
# subscriptions s0..s999 (customers c0..c999) its events name.
seed_subscriptions() {
  local url=$1 key=$2
  api_() { curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -X POST "$url/api/v1/$1" -d "$2"; }
  api_ billable_metrics '{"billable_metric":{"code":"tokens","name":"Tokens","aggregation_type":"sum_agg","field_name":"tokens"}}'
  api_ plans '{"plan":{"code":"p","name":"P","interval":"monthly","amount_cents":0,"amount_currency":"USD"}}'
  for i in $(seq 0 999); do
    api_ subscriptions "{\"subscription\":{\"external_customer_id\":\"c$i\",\"plan_code\":\"p\",\"external_id\":\"s$i\",\"subscription_at\":\"2020-01-01T00:00:00Z\"}}"
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
