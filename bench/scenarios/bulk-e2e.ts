import type { Scenario } from '../lib/types';
import { GBPS } from './common';

// Both ends are the contender (its sender into its own sink); bytes are counted by the kernel.
// CPU is the receiver's. iperf3 is the reference.
export const scenario: Scenario = {
  id: 'bulk-e2e',
  title: 'bulk end to end (same program both ends)',
  kind: 'pair',
  role: 'sink',
  contenders: ['maio', 'node', 'node-b', 'bun', 'iperf3'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: GBPS,
  cpuPer: 'GB',
  goals: [
    { label: 'maio >= best of Bun', field: 'value', refs: ['bun'], cmp: '>=', factor: 1 },
    { label: 'maio >= 0.95x iperf3', field: 'value', refs: ['iperf3'], cmp: '>=', factor: 0.95 },
  ],
};
