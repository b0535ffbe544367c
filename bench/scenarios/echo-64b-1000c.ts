import type { Scenario } from '../lib/types';
import { RTPS, atLeast, beatBunAndC, timingArgs } from './common';

export const scenario: Scenario = {
  id: 'echo-64b-1000c',
  title: 'echo 64 B, 1,000 connections',
  kind: 'client',
  role: 'echo',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: RTPS,
  cpuPer: 'Mmsg',
  loadgen: (t) => ['echo', '--conns', '1000', '--size', '64', ...timingArgs(t)],
  slack: 10,
  fdLimit: 4096,
  goals: [atLeast(1.2, ['bun', 'c'], 'best of Bun, C')],
};
