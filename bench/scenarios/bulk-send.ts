import type { Scenario } from '../lib/types';
import { beatBunAndC, GBPS, timingArgs } from './common';

// Each contender's sender into the C receiver (loadgen recv, 64 KiB reads); CPU is the sender's.
export const scenario: Scenario = {
  id: 'bulk-send',
  title: 'bulk send into a C receiver (64 KiB reads)',
  kind: 'sender',
  role: 'sender',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: GBPS,
  cpuPer: 'GB',
  loadgen: (t) => ['recv', '--read', '65536', ...timingArgs(t)],
  goals: [beatBunAndC(true)],
};
