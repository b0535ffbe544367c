import type { Scenario } from '../lib/types';
import { RTPS, atLeast, beatBunAndC, timingArgs } from './common';

// The servers are the echo servers: a 1 KiB request gets a 1 KiB response.
export const scenario: Scenario = {
  id: 'reqresp-1k-256c',
  title: 'request/response 1 KiB, 256 connections',
  kind: 'client',
  role: 'echo',
  contenders: ['maio', 'node', 'node-b', 'bun', 'c'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: RTPS,
  cpuPer: 'Mmsg',
  loadgen: (t) => ['reqresp', '--conns', '256', '--size', '1024', '--resp', '1024', ...timingArgs(t)],
  slack: 5,
  goals: [atLeast(1.0, ['c'], 'C epoll'), beatBunAndC(true)],
};
