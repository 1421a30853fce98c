#!/usr/bin/env bash
# Runs every test against one build tree (normally build/asan: ASan + UBSan) and ends with
# the line "N passed, N failed". Exits non-zero if anything failed or crashed.
#
#   unit:   <build>/tests/test_*      cmocka binaries, TAP output
#   api:    tests/api/*.test.mjs      node:test over real HTTP against the sanitized tallyd
#   compat: tests/compat/*.test.mjs   Lago's own JavaScript client against tallyd
#   race:   (second argument, a ThreadSanitizer build) the threaded unit tests and the
#           concurrency-heavy API tests again, against that build's tallyd
#   heap:   (third argument, a build without sanitizers) the tests of glibc's own allocator,
#           which a sanitizer replaces
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/asan}
race_build=${2:-}
plain_build=${3:-}
export TALLY_BIN_DIR="$PWD/$build"
export TALLY_SHARED_DATA="${TALLY_SHARED_DATA:-$PWD/../shared/data}"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

passed=0
failed=0
log_dir="$build/test-logs"
mkdir -p "$log_dir"


# Runs cmocka binaries (TAP) and counts their results.
run_unit() {
  for t in "$@"; do
    [ -x "$t" ] || continue
    local name log rc ok bad skipped note
    name=$(basename "$t")
    log="$log_dir/$name${suffix:-}.log"
    CMOCKA_MESSAGE_OUTPUT=TAP ${runner:-} "$t" >"$log" 2>&1
    rc=$?
    ok=$(grep -cE '^ok [0-9]+' "$log")
    # cmocka writes a skipped test as "not ok N # SKIP": neither passed nor failed
    skipped=$(grep -cE '^not ok [0-9]+ # SKIP' "$log")
    bad=$(($(grep -cE '^not ok [0-9]+' "$log") - skipped))
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
      failed=$((failed + 1)) # crashed or a sanitizer stopped it: one failure more
      echo "   $name: exited $rc without a failing test (sanitizer or crash):"
      tail -n 30 "$log" | sed 's/^/     /'
    elif [ "$bad" -ne 0 ]; then
      echo "   $name: $ok passed, $bad FAILED"
      grep -E -A8 '^not ok' "$log" | sed 's/^/     /' | head -60
    else
      note=""
      [ "$skipped" -gt 0 ] && note=" ($skipped skipped here)"
      echo "   $name: $ok passed$note"
    fi
  done
}

# Runs node:test files as one suite named $1 and counts their results.
run_node() {
  local suite=$1 rc ok bad
  shift
  ${runner:-} node --test --test-concurrency=1 --test-reporter=tap "$@" >"$log_dir/$suite.log" 2>&1
  rc=$?
  ok=$(grep -E '^# pass [0-9]+' "$log_dir/$suite.log" | awk '{print $3}')
  bad=$(grep -E '^# fail [0-9]+' "$log_dir/$suite.log" | awk '{print $3}')
  ok=${ok:-0}; bad=${bad:-0}
  passed=$((passed + ok))
  failed=$((failed + bad))
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    failed=$((failed + 1))
    echo "   $suite: node exited $rc without a failing test:"; tail -n 30 "$log_dir/$suite.log" | sed 's/^/     /'
  elif [ "$bad" -ne 0 ]; then
    echo "   $suite: $ok passed, $bad FAILED"
    grep -E -B2 -A25 '^\s*not ok' "$log_dir/$suite.log" | head -120 | sed 's/^/     /'
  else
    echo "   $suite: $ok passed"
  fi
}

echo "== unit tests"
run_unit "$build"/tests/test_*
if [ -n "$plain_build" ]; then
  echo "== allocator tests (without sanitizers, $plain_build)"
  suffix=.plain run_unit "$plain_build"/tests/test_heap
fi

echo "== node dependencies"
if ! (cd tests && npm ci --no-audit --no-fund --loglevel=error >"../$log_dir/npm.log" 2>&1); then
  echo "   npm ci failed:"; tail -n 20 "$log_dir/npm.log" | sed 's/^/     /'
  failed=$((failed + 1))
fi

for suite in api compat; do
  files=(tests/$suite/*.test.mjs)
  [ -e "${files[0]}" ] || continue
  echo "== $suite tests"
  run_node "$suite" "${files[@]}"
done

# The race suite: the same server under ThreadSanitizer, driven by the tests whose requests
# cross threads the most (group commit, concurrent ingest and reads, kills during load). A
# race stops tallyd (halt_on_error), which fails the test that was talking to it.
if [ -n "$race_build" ]; then
  echo "== race tests (ThreadSanitizer, $race_build)"
  # ThreadSanitizer cannot map its shadow memory under some kernels' address randomization;
  # there the suite runs with randomization off for its processes (setarch -R).
  runner=
  if ! "$race_build/tally" --help >/dev/null 2>&1; then
    runner="setarch $(uname -m) -R"
    echo "   (tally under TSan failed to start; running the suite under $runner)"
  fi
  export runner
  suffix=.tsan run_unit "$race_build"/tests/test_engine "$race_build"/tests/test_usage_view \
    "$race_build"/tests/test_key_cache "$race_build"/tests/test_syncer "$race_build"/tests/test_bigmem
  TALLY_BIN_DIR="$PWD/$race_build" TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
    run_node race tests/api/server.test.mjs tests/api/usage_views.test.mjs \
    tests/api/events_subscriptions.test.mjs tests/api/events_durability.test.mjs \
    tests/api/idempotency.test.mjs tests/api/wallets_concurrency.test.mjs \
    tests/api/wallet_journal.test.mjs tests/api/events_snapshot.test.mjs \
    tests/api/http_connections.test.mjs
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
