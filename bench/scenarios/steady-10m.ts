import type { Metric, Scenario } from '../lib/types';

// A maio echo server under 10 million 64-byte round trips (64 connections, 4 in flight each) from
// the C load generator. The server (servers/maio-steady.js: `maio echo` plus measurements) takes the
// live heap after a forced full GC at the end of warm-up (1 M messages) and every million after,
// sums the GC time of the measured part (perf_hooks, forced collections excluded), and reports RSS
// and pool stats when the load generator is done. The figure: live heap at the end / after warm-up.
const HEAP: Metric = { key: 'heapRatio', label: 'live JS heap, end / after warm-up', unit: 'x', higherIsBetter: false };

export const scenario: Scenario = {
  id: 'steady-10m',
  title: 'steady state, 10 million messages',
  kind: 'client',
  role: 'steady',
  contenders: ['maio', 'maio-b'],
  peer: 'maio',
  control: ['maio', 'maio-b'],
  metric: HEAP,
  cpuPer: 'Mmsg',
  // Warm-up by time for the load generator; the measured window ends at 10 M round trips (a long
  // --duration is only the safety net). The server's own warm-up is its first million messages.
  loadgen: (t) => ['echo', '--conns', '64', '--depth', '4', '--size', '64', '--warmup', String(t.warmup), '--duration', '600', '--messages', '10000000'],
  slack: 600,
  rounds: 1,
  serverReport: true,
  serverArgs: ['--warmup-messages', '1000000', '--sample-every', '1000000'],
  goals: [{ label: 'maio heap flat within 5% after warm-up', field: 'value', refs: [], cmp: '<=', factor: 1, limit: 1.05 }],
};
