#!/usr/bin/env bash
# Installs the Debian packages the tests drive (socat for test/net/interop-c), only if missing.
# Fast when everything is there (one `command -v` per tool); apt-get update only when something
# is missing. Never fails the test run: a tool that cannot be installed makes its tests skip
# with a reason.
set -u
say() { printf 'test-setup: %s\n' "$*" >&2; }

# tool -> Debian package
declare -A pkgs=([socat]=socat)
missing=()
for tool in "${!pkgs[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkgs[$tool]}")
done
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
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || say "apt-get could not install ${missing[*]}: the tests that need them will skip"
exit 0
