import type { Scenario } from '../lib/types';
import { RPS, atLeast } from './common';

// node:http answering a 13-byte body with keep-alive, fed by maio/net (README's "Add maio to your
// app": net.createServer((socket) => httpServer.emit('connection', socket))) against node:http
// listening itself; Bun.serve as the outside reference. wrk (one thread, pinned to the load CPU)
// with 64 connections, one request in flight each; the warm-up is a wrk run of its own; wrk's
// -d takes whole seconds, so the warm-up and duration are rounded up. Figure: wrk's requests/s;
// p50/p99 from wrk --latency; CPU is the server's, per million requests.
export const scenario: Scenario = {
  id: 'http-64c',
  title: 'HTTP keep-alive, 13 B body, 64 connections (wrk)',
  kind: 'wrk',
  role: 'http',
  contenders: ['maio', 'node', 'node-b', 'bun'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: RPS,
  cpuPer: 'Mmsg',
  wrk: { connections: 64 },
  goals: [atLeast(1.3, ['node'], 'node:http')],
};
