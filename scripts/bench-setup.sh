#!/usr/bin/env bash
# Installs what the benchmark scenarios need; safe to run again (does only what is missing).
# Nothing here is fatal: a peer that cannot be installed makes its scenario skip with a reason.
set -u
cd "$(dirname "$0")/.."
say() { printf 'bench-setup: %s\n' "$*" >&2; }

# Bun comes from npm (the registry package ships the binary), in bench/ so that it never
# becomes a dependency of the library.
if [ ! -x bench/node_modules/.bin/bun ] || ! bench/node_modules/.bin/bun --version >/dev/null 2>&1; then
  say "installing Bun (npm install in bench/)"
  (cd bench && npm install --no-audit --no-fund --loglevel=error) || say "npm install failed: Bun scenarios will skip"
fi

# Reference tools from Debian (wrk drives the HTTP scenarios; openssl makes their throwaway
# certificate; the package names are the command names).
missing=()
for pkg in iperf3 sockperf haproxy wrk openssl; do
  command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed"
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || say "apt-get could not install ${missing[*]}: those references will skip"
  else
    say "${missing[*]} missing and apt-get unusable (not root?): those references will skip"
  fi
fi

# The C tools (bench/c/*.c: loadgen, echo_epoll, echo_uring, sink, sendfile, udp_send, udp_recv). Rebuilt when the source or a shared header is newer.
if command -v cc >/dev/null 2>&1; then
  mkdir -p bench/build
  for src in bench/c/*.c; do
    out="bench/build/$(basename "$src" .c)"
    if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ -n "$(find bench/c -name '*.h' -newer "$out")" ]; then
      cc -O2 -Wall -o "$out" "$src" || { say "cc failed on $src"; exit 1; }
    fi
  done
else
  say "cc not found: the C tools cannot be built and the benchmark cannot run"
  exit 1
fi
say "ready"
