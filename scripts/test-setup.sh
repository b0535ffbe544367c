#!/usr/bin/env bash
# Installs the Debian packages the tests drive, only if missing: socat (test/net/interop-c),
# and the real peers of test/net/compat/real-*.test.ts: openssl and curl (TLS), wrk (HTTP),
# redis-server (ioredis), PostgreSQL (pg: initdb and postgres live under
# /usr/lib/postgresql/<version>/bin, not on PATH).
# Fast when everything is there (one `command -v` per tool); apt-get update only when something
# is missing. Never fails the test run: a tool that cannot be installed makes its tests skip
# with a reason.
set -u
say() { printf 'test-setup: %s\n' "$*" >&2; }

# tool -> Debian package
declare -A pkgs=([socat]=socat [openssl]=openssl [curl]=curl [wrk]=wrk [redis-server]=redis-server)
missing=()
for tool in "${!pkgs[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkgs[$tool]}")
done
# PostgreSQL's server binaries (any version): the postgresql package pulls in the current one
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1 || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  say "${missing[*]} missing and apt-get not found: the tests that need them will skip"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "${missing[*]} missing and not root (apt-get needs root): the tests that need them will skip"
  exit 0
fi
say "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed"
# one at a time: a package that cannot be installed does not keep the others out
for pkg in "${missing[@]}"; do
  apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
    || say "apt-get could not install $pkg: the tests that need it will skip"
done
exit 0
