import type { Scenario } from '../lib/types';
import { GBPS } from './common';

// iperf3 client -> proxy -> iperf3 server over loopback, one stream. The proxy is the measured
// process (CPU 1); both iperf3 ends run on CPU 0. Bytes are counted by the kernel on the iperf3
// server's sockets; CPU is the proxy's. iperf3 direct (client on CPU 1) is the reference.
export const scenario: Scenario = {
  id: 'proxy',
  title: 'TCP proxy, iperf3 through it (one stream)',
  kind: 'proxy',
  role: 'proxy',
  contenders: ['maio', 'maio-splice', 'node', 'node-b', 'haproxy', 'haproxy-splice', 'iperf3'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: GBPS,
  cpuPer: 'GB',
  goals: [
    { label: 'maio >= 2.5x node:net pipe proxy', field: 'value', refs: ['node'], cmp: '>=', factor: 2.5 },
    { label: 'maio >= 1.0x HAProxy', field: 'value', refs: ['haproxy', 'haproxy-splice'], cmp: '>=', factor: 1 },
    { label: 'maio proxy CPU/GB < node:net, HAProxy', field: 'cpuPerUnit', refs: ['node', 'haproxy', 'haproxy-splice'], cmp: '<=', factor: 1 },
  ],
};
