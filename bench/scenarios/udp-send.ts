import type { Scenario } from '../lib/types';
import { DPS, atLeast } from './common';

// Each contender's sender (CPU 1) into the fastest receiver there is: C recvmmsg + UDP_GRO
// (CPU 0), one flow of 1,400-byte datagrams over loopback. The figure is what the sender sent
// (its own count over its own run); CPU is the sender's, per GB sent. The receiver's count gives
// the loss: on loopback a fast sender outruns even this receiver, but when over 90% never arrives
// the run is broken (the receiver starved, a wrong port): flagged as an anomaly, not a result.
export const scenario: Scenario = {
  id: 'udp-send',
  title: 'UDP send, 1,400 B datagrams, one flow',
  kind: 'udp-send',
  role: 'udp-send',
  contenders: ['maio', 'maio-off', 'node', 'c', 'c-seg', 'c-seg-b'],
  peer: 'node',
  // A/A: the best C program twice (the goal that is close is the one against it)
  control: ['c-seg', 'c-seg-b'],
  metric: DPS,
  cpuPer: 'GB',
  anomalyFactor: 100,
  maxLoss: 0.9,
  goals: [atLeast(3, ['node'], 'node:dgram'), atLeast(1, ['c', 'c-seg'], 'best C sender')],
};
