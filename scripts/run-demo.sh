#!/usr/bin/env bash
# `make run`: starts tallyd on DATA_DIR with a demo organization, creating it on first use.
# The demo key is kept in DATA_DIR/demo-api-key (mode 0600) so that every `make run` prints
# the same one; real organizations are made with `tally org create`, whose key is shown once.
set -euo pipefail
tallyd=$1 tally=$2 data_dir=$3 listen=$4

# a port something already listens on: said before anything is made or printed (an audit saw
# the banner, the key and a curl example, then tallyd's bind fail under them)
host=${listen%:*} port=${listen##*:}
host=${host#[} host=${host%]}
if [ "$port" != 0 ] && (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  echo "make run: something already listens on $listen; choose another address with LISTEN=127.0.0.1:PORT make run (and another store with DATA_DIR=...)" >&2
  exit 1
fi

# a store another Tally process holds (its lock): said before anything is printed too (an
# audit's second `make run` on one DATA_DIR printed the banner and the key, then tallyd
# refused the directory)
if [ -e "$data_dir/tally.db" ] && ! in_use=$("$tally" --data-dir "$data_dir" org list 2>&1 >/dev/null); then
  echo "make run: $in_use" >&2
  exit 1
fi

# 0700, as tallyd makes one (docs/ARCHITECTURE.md): its files are the owner's alone
(umask 077; mkdir -p "$data_dir")
key_file="$data_dir/demo-api-key"
# a key kept from a store since removed would be printed and refused: made again with it
if [ ! -s "$key_file" ] || [ ! -e "$data_dir/tally.db" ]; then
  out=$("$tally" --data-dir "$data_dir" org create "Demo")
  (umask 077; printf '%s\n' "$out" | tail -n 1 >"$key_file")
fi
key=$(cat "$key_file")
url="http://$listen"
cat <<MSG
Tally is starting on the embedded SQLite store in $data_dir.

  URL:     $url
  API key: $key

  curl -s -X POST $url/api/v1/customers -H "Authorization: Bearer $key" \\
       -H 'Content-Type: application/json' -d '{"customer":{"external_id":"acme_1","name":"Acme"}}'

Stop with Ctrl-C (SIGINT/SIGTERM drain in-flight requests and exit cleanly).
MSG
exec "$tallyd" --data-dir "$data_dir" --listen "$listen"
