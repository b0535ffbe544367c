import type { Scenario } from '../lib/types';
import { CPU_HALF_NODE, GBPS, atLeast, beatBunAndC, cpuAtMost, timingArgs } from './common';

// The C sender (loadgen send, 64 KiB writes) into each contender's sink; CPU is the receiver's.
export const scenario: Scenario = {
  id: 'bulk-recv',
  title: 'bulk receive from a C sender (64 KiB writes)',
  kind: 'client',
  role: 'sink',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c', 'c-512k'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: GBPS,
  cpuPer: 'GB',
  loadgen: (t) => ['send', '--write', '65536', ...timingArgs(t)],
  short: true,
  goals: [atLeast(1.2, ['c', 'c-512k'], 'best C reader'), cpuAtMost(['c', 'c-512k'], 'best C reader'), beatBunAndC(true, ['bun', 'c', 'c-512k']), CPU_HALF_NODE],
};
