import type { Scenario } from '../lib/types';
import { GBPS, timingArgs } from './common';

// A 1 GiB file in /dev/shm sent over and over into the C receiver (loadgen recv, 512 KiB reads);
// CPU is the sender's. iperf3 -Z (sendfile from its own buffer file, into iperf3 -s) is the
// issue's reference; the C sendfile(2) loop is the same-receiver reference.
export const scenario: Scenario = {
  id: 'file-send',
  title: 'file sending, 1 GiB from tmpfs',
  kind: 'sender',
  role: 'file',
  kindFor: { iperf3: 'iperf' },
  fileBytes: 1 << 30,
  contenders: ['maio', 'maio-splice', 'node', 'node-b', 'c-sendfile', 'iperf3'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: GBPS,
  cpuPer: 'GB',
  loadgen: (t) => ['recv', '--read', String(512 << 10), ...timingArgs(t)],
  goals: [
    { label: 'maio >= 0.95x iperf3 -Z', field: 'value', refs: ['iperf3'], cmp: '>=', factor: 0.95 },
    { label: 'maio >= 1.5x node:net streams', field: 'value', refs: ['node'], cmp: '>=', factor: 1.5 },
    { label: 'maio >= 0.95x C sendfile(2)', field: 'value', refs: ['c-sendfile'], cmp: '>=', factor: 0.95 },
  ],
};
