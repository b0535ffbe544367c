#!/bin/bash
# Datagrams through a UDP relay over loopback, interleaved rounds: maio udp-blast (1,400-byte
# datagrams, GSO) into maio udp-sink directly, through `maio proxy --udp`, and through a node:dgram
# relay (bench/servers/node-udp-relay.js). Each line: what the sender sent and what the sink got
# (the sink's count is the one that matters: loopback drops what overflows a socket buffer).
# usage: bench/udp/relay.sh [rounds=3] [seconds=3]   (MAIO_BACKEND=epoll for the fallback)
# Needs a build (npm run build:ts). A taste, not a benchmark: no pinning, no A/A control.
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DUR=${2:-3}
CLI=dist/src/cli/main.js
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

port_of() { for _ in $(seq 100); do grep -q listening "$1" && break; sleep 0.1; done; awk '/listening/{print $2}' "$1"; }

round() { # via: direct | maio | node
  node $CLI udp-sink --port 0 >"$TMP/sink.out" 2>"$TMP/sink.err" &
  local sink=$! port relay=
  port=$(port_of "$TMP/sink.out")
  case $1 in
    maio) node $CLI proxy --udp --listen 127.0.0.1:0 --upstream "127.0.0.1:$port" >"$TMP/relay.out" 2>/dev/null & relay=$! ;;
    node) node bench/servers/node-udp-relay.js --upstream "$port" >"$TMP/relay.out" 2>/dev/null & relay=$! ;;
  esac
  [ -n "$relay" ] && port=$(port_of "$TMP/relay.out")
  node $CLI udp-blast --port "$port" --duration "$DUR" --gso 1 2>&1 >/dev/null | grep 'udp-blast:'
  sleep 0.3
  [ -n "$relay" ] && { kill -TERM $relay; wait $relay; }
  kill -INT $sink; wait $sink; grep 'udp-sink:' "$TMP/sink.err"
}

uptime
for r in $(seq "$ROUNDS"); do
  for via in direct maio node; do echo "== round $r: $via"; round $via; done
done 2>&1
uptime
