#!/usr/bin/env bash
# Installs the Debian packages Tally needs to build, run and test, when any is missing.
# Idempotent and quiet when everything is already there (the common case).
set -euo pipefail

packages=(
  gcc make cmake ninja-build pkg-config git ca-certificates tzdata iso-codes curl
  libmicrohttpd-dev libjson-c-dev libsqlite3-dev libssl-dev
  libcmocka-dev libgmp-dev sqlite3
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# nodejs/npm may come from outside Debian's packages (a preinstalled toolchain): trust the binaries.
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "tally: missing Debian packages: ${missing[*]}" >&2
  echo "tally: run 'sudo apt-get install ${missing[*]}' or run make as root" >&2
  exit 1
fi
echo "tally: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
