#!/bin/bash
# UDP over loopback and over veth, 1,400-byte datagrams: now scenarios of the benchmark suite
# (udp-recv, udp-send, udp-recv-veth, udp-recv-2m, udp-send-veth; bench/README.md). This wrapper runs just those.
# usage: bench/udp/run.sh [rounds=3] [seconds=3]   (MAIO_BACKEND=epoll for the fallback)
set -e
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DUR=${2:-3}
[ -f dist/bench/run.js ] || npm run build:ts
exec node dist/bench/run.js --only udp-recv,udp-send,udp-recv-veth,udp-recv-2m,udp-send-veth --rounds "$ROUNDS" --warmup 1 --duration "$DUR"
