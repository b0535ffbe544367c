#!/bin/bash
# UDP over loopback, 1,400-byte datagrams, interleaved rounds: maio with GSO+GRO, maio without
# (2 KiB receive buffers), node:dgram to node:dgram. Each line: what the sender sent and what the
# receiver got (the receiver's count is the one that matters: loopback drops what overflows).
# usage: bench/udp/run.sh [rounds=3] [seconds=3]   (MAIO_BACKEND=epoll for the fallback)
# Needs a build (npm run build:ts). A taste, not a benchmark: no pinning, no A/A control.
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DUR=${2:-3}
CLI=dist/src/cli/main.js
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

port_of() { for _ in $(seq 100); do grep -q listening "$1" && break; sleep 0.1; done; awk '/listening/{print $2}' "$1"; }

maio() { # gso gro read-size
  node $CLI udp-sink --gro "$2" --read-size "$3" >"$TMP/sink.out" 2>"$TMP/sink.err" &
  local sink=$! port
  port=$(port_of "$TMP/sink.out")
  node $CLI udp-blast --port "$port" --duration "$DUR" --gso "$1" 2>&1 >/dev/null | grep 'udp-blast:'
  sleep 0.3; kill -INT $sink; wait $sink; grep 'udp-sink:' "$TMP/sink.err"
}

nodedgram() {
  node bench/udp/node-dgram.js sink >"$TMP/nsink.out" 2>"$TMP/nsink.err" &
  local sink=$! port
  port=$(port_of "$TMP/nsink.out")
  node bench/udp/node-dgram.js blast "$port" "$DUR"
  sleep 0.3; kill -INT $sink; wait $sink; cat "$TMP/nsink.err"
}

uptime
for r in $(seq "$ROUNDS"); do
  echo "== round $r: maio gso+gro"; maio 1 1 65536
  echo "== round $r: maio, no gso/gro, 2 KiB buffers"; maio 0 0 2048
  echo "== round $r: node:dgram"; nodedgram
done 2>&1
uptime
