import type { Scenario } from '../lib/types';
import { RTPS, timingArgs } from './common';

// maio's worker scaling: echo-64b-1000c-2w's load against `maio echo --workers 1` and
// `--workers 2`, unpinned like it. The headline is the ratio of 2 workers to 1. The ideal is not
// 2x here: the load generator shares the two vCPUs. With per-message CPU s (server) and l
// (loadgen), 1 worker reaches 1/s (when s >= l); 2 workers at best 2/(s+l) (both CPUs busy), so
// the ideal ratio is 2s/(s+l): 1.0x when both cost the same, under 2x always.
export const scenario: Scenario = {
  id: 'echo-64b-1000c-scale',
  title: 'echo 64 B, 1,000 connections, maio 2 workers / 1 worker',
  kind: 'client',
  role: 'echo2',
  contenders: ['maio-1w', 'maio-1w-b', 'maio'],
  peer: 'maio-1w',
  control: ['maio-1w', 'maio-1w-b'],
  metric: RTPS,
  cpuPer: 'Mmsg',
  loadgen: (t) => ['echo', '--conns', '1000', '--size', '64', ...timingArgs(t)],
  slack: 10,
  fdLimit: 4096,
  unpinned: true,
  goals: [{ label: 'maio 2 workers >= 1.0x 1 worker (no loss from the group)', field: 'value', refs: ['maio-1w'], cmp: '>=', factor: 1 }],
};
