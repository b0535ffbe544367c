import type { Scenario } from '../lib/types';
import { P99_VS_NODE, RTPS, atLeast, beatBunAndC, timingArgs } from './common';

export const scenario: Scenario = {
  id: 'echo-64b-1c',
  title: 'echo 64 B, 1 connection',
  kind: 'client',
  role: 'echo',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: RTPS,
  cpuPer: 'Mmsg',
  loadgen: (t) => ['echo', '--conns', '1', '--size', '64', ...timingArgs(t)],
  short: true,
  goals: [atLeast(1.3, ['c'], 'C epoll'), beatBunAndC(true), P99_VS_NODE],
};
