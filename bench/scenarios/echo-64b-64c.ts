import type { Scenario } from '../lib/types';
import { RTPS, atLeast, beatBunAndC, timingArgs } from './common';

export const scenario: Scenario = {
  id: 'echo-64b-64c',
  title: 'echo 64 B, 64 connections',
  kind: 'client',
  role: 'echo',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: RTPS,
  cpuPer: 'Mmsg',
  loadgen: (t) => ['echo', '--conns', '64', '--size', '64', ...timingArgs(t)],
  short: true,
  goals: [atLeast(1.3, ['c'], 'C epoll'), beatBunAndC(true)],
};
