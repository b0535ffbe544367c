#!/bin/bash
# Datagrams through a UDP relay over loopback: now the udp-relay scenario of the benchmark suite
# (maio proxy --udp, a node:dgram relay twice, and direct; pinned, A/A control; bench/README.md).
# This wrapper runs just that one.
# usage: bench/udp/relay.sh [rounds=3] [seconds=3]   (MAIO_BACKEND=epoll for the fallback)
set -e
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DUR=${2:-3}
[ -f dist/bench/run.js ] || npm run build:ts
exec node dist/bench/run.js --only udp-relay --rounds "$ROUNDS" --warmup 1 --duration "$DUR"
