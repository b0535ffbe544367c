import type { Scenario } from '../lib/types';
import { scenario as http64c } from './http-64c';

// As http-64c, with one connection: one request at a time, so the figure is the round trip and
// the goal is latency (p99 from wrk --latency, in us).
export const scenario: Scenario = {
  ...http64c,
  id: 'http-1c',
  title: 'HTTP keep-alive, 13 B body, 1 connection (wrk)',
  wrk: { connections: 1 },
  goals: [{ label: 'maio p99 <= node:http p99', field: 'p99', refs: ['node'], cmp: '<=', factor: 1 }],
};
