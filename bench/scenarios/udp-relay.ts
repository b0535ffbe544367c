import type { Scenario } from '../lib/types';
import { DPS, atLeast } from './common';

// One UDP flow of 1,400-byte datagrams through each contender's relay (CPU 1): the C sender
// (udp_send, UDP_SEGMENT) and the C receiver (udp_recv, UDP_GRO) both on CPU 0. The sender is
// paced to 2 M datagrams/s (22.4 Gbit/s): about what CPU 0 can send and receive at once here;
// unpaced, the sender takes the receiver's CPU and every figure falls (direct: about 1.4 M with
// half lost, against 1.8-1.9 M paced). The figure is what reached the receiver in its window;
// what the relay could not take, the kernel dropped (loss over the whole run in the progress
// line and JSON). CPU is the relay's, per GB delivered. `direct` (sender straight into
// receiver) is the ceiling of this set-up, not a goal reference.
export const scenario: Scenario = {
  id: 'udp-relay',
  title: 'UDP relay, 1,400 B datagrams, one flow',
  kind: 'udp-relay',
  role: 'udp-relay',
  contenders: ['maio', 'node', 'node-b', 'direct'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: DPS,
  cpuPer: 'GB',
  anomalyFactor: 100,
  rate: 2_000_000,
  goals: [atLeast(3, ['node'], 'node:dgram relay')],
};
