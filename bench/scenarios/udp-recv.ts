import type { Scenario } from '../lib/types';
import { DPS, atLeast } from './common';

// One UDP flow of 1,400-byte datagrams over loopback into each contender's receiver (CPU 1),
// from the fastest sender there is: C sendmmsg + UDP_SEGMENT (CPU 0). The figure is what the
// receiver got in the sender's measured window (its running totals on SIGUSR2 at the window's
// edges); what it could not take, the kernel dropped (loss in the window and over the whole run,
// warm-up included, in the progress line and JSON). CPU is the receiver's, per GB received.
export const scenario: Scenario = {
  id: 'udp-recv',
  title: 'UDP receive, 1,400 B datagrams, one flow',
  kind: 'udp-recv',
  role: 'udp-sink',
  contenders: ['maio', 'maio-off', 'node', 'c', 'c-seg', 'c-seg-b'],
  peer: 'node',
  // A/A: the best C program twice (the goal that is close is the one against it)
  control: ['c-seg', 'c-seg-b'],
  metric: DPS,
  cpuPer: 'GB',
  anomalyFactor: 100,
  goals: [atLeast(3, ['node'], 'node:dgram'), atLeast(1, ['c', 'c-seg'], 'best C receiver')],
};
