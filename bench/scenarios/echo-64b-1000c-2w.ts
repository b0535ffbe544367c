import type { Scenario } from '../lib/types';
import { RTPS, atLeast, timingArgs } from './common';

// Every core: each contender's server on two workers (maio: a worker group of threads; node:net:
// node:cluster processes; Bun: two processes on one port with reusePort; C: two epoll threads on
// SO_REUSEPORT). Nothing is pinned: the
// servers and the load generator share the machine's CPUs, and a server's CPU time includes
// its worker processes.
export const scenario: Scenario = {
  id: 'echo-64b-1000c-2w',
  title: 'echo 64 B, 1,000 connections, 2 workers',
  kind: 'client',
  role: 'echo2',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: RTPS,
  cpuPer: 'Mmsg',
  loadgen: (t) => ['echo', '--conns', '1000', '--size', '64', ...timingArgs(t)],
  slack: 10,
  fdLimit: 4096,
  unpinned: true,
  goals: [atLeast(1, ['c'], 'C epoll, 2 threads'), atLeast(1.2, ['bun', 'c'], 'the best of Bun and C on two workers')],
};
