import type { Scenario } from '../lib/types';
import { GBPS } from './common';

// iperf3 with 4 parallel streams through a proxy on two workers: `maio proxy --workers 2`
// (a worker group: two threads, SO_REUSEPORT), HAProxy with nbthread 2, the node:net pipe proxy
// on node:cluster (two processes). Nothing pinned: the proxy and both iperf3 ends share the two
// CPUs; the proxy's CPU includes its child processes. iperf3 direct is the reference.
export const scenario: Scenario = {
  id: 'proxy-2w',
  title: 'TCP proxy on 2 workers, iperf3 -P 4 through it',
  kind: 'proxy',
  role: 'proxy2',
  contenders: ['maio', 'node', 'node-b', 'haproxy', 'iperf3'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: GBPS,
  cpuPer: 'GB',
  streams: 4,
  unpinned: true,
  goals: [{ label: 'maio >= 1.2x HAProxy (nbthread 2)', field: 'value', refs: ['haproxy'], cmp: '>=', factor: 1.2 }],
};
