#!/bin/bash
# CPU per echo of one server and of the load generator, over the loadgen's measured window
# (BENCHMARKS.md, "what the kernel alone allows"). The scenario's load: 1,000 connections, 64 B.
#
#   bench/load/echo-cpu.sh LABEL COMMAND...   (PORT in COMMAND is replaced by a free port)
#   e.g. bench/load/echo-cpu.sh maio node dist/src/cli/main.js echo --port PORT --workers 2
#        bench/load/echo-cpu.sh c bench/build/echo_epoll PORT 65536 2
#
# Server: utime/stime of its process (threads included, children not) between the loadgen's
# "phase measure" and "phase done" lines; loadgen: its loadgen_cpu_s minus its CPU at "phase
# measure". Prints microseconds per round trip. LOADGEN (bench/build/loadgen), DURATION (5).
label=$1
shift
loadgen=${LOADGEN:-bench/build/loadgen}
tmp=$(mktemp -d)
ulimit -n 8192
port=$((20000 + RANDOM % 10000))
"${@//PORT/$port}" >"$tmp/server" 2>&1 &
spid=$!
sleep 1.5
"$loadgen" echo --port $port --conns 1000 --size 64 --warmup 1 --duration "${DURATION:-5}" >"$tmp/out" 2>"$tmp/err" &
lpid=$!
cpu() { awk '{print $14, $15}' /proc/$1/stat; }
until grep -q "phase measure" "$tmp/err"; do sleep 0.01; done
a="$(cpu $spid) $(cpu $lpid)"
until grep -q "phase done" "$tmp/err"; do sleep 0.01; done
b="$(cpu $spid)"
wait $lpid
kill $spid
wait $spid 2>/dev/null
node -e '
const [label, file, hzArg, ...v] = process.argv.slice(1);
const [su0, ss0, lu0, ls0, su1, ss1] = v.map(Number);
const r = JSON.parse(require("fs").readFileSync(file, "utf8").trim().split("\n").pop());
const hz = Number(hzArg), us = (t) => (t * 1e6) / r.round_trips;
const user = us((su1 - su0) / hz), sys = us((ss1 - ss0) / hz), lg = us(r.loadgen_cpu_s - (lu0 + ls0) / hz);
const f = (x) => x.toFixed(2);
console.log(`${label} rt/s ${r.rtps} | server us/echo user ${f(user)} sys ${f(sys)} total ${f(user + sys)} | loadgen ${f(lg)} | sum ${f(user + sys + lg)}`);
' "$label" "$tmp/out" "$(getconf CLK_TCK)" $a $b
rm -rf "$tmp"
