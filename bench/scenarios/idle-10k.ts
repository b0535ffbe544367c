import type { Scenario } from '../lib/types';
import { beatBunAndC, RSS, timingArgs } from './common';

// 10,000 connections, each answered once, held idle, then 1% of them echo 64 B.
// The figure is the server's peak RSS (VmHWM).
export const scenario: Scenario = {
  id: 'idle-10k',
  title: '10,000 idle connections, then 1% active',
  kind: 'client',
  role: 'echo',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: RSS,
  cpuPer: 'Mmsg',
  loadgen: (t) => ['idle', '--conns', '10000', '--active-pct', '1', '--size', '64', '--hold', '1', '--batch', '256', ...timingArgs(t)],
  slack: 40,
  fdLimit: 10000 + 512,
  goals: [
    beatBunAndC(false),
    { label: 'maio RSS <= 0.5x node:net', field: 'rssPeakMiB', refs: ['node'], cmp: '<=', factor: 0.5 },
    { label: 'maio RSS <= Bun', field: 'rssPeakMiB', refs: ['bun'], cmp: '<=', factor: 1 },
  ],
};
