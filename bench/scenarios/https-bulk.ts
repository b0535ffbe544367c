import type { Scenario } from '../lib/types';
import { GBPS } from './common';

// 1 MiB responses over HTTPS with keep-alive: node:https fed by maio/net against node:https
// listening itself (and Bun.serve with TLS), a throwaway P-256 certificate made with openssl for
// the scenario. Driven by wrk over TLS (Debian's wrk is built with OpenSSL): one C thread on the
// load CPU that decrypts and discards each body, no JavaScript and no copy into a client runtime,
// so the client's cost per byte is the decryption alone and the server (encryption, node:http,
// the socket) is what limits; a Node client would spend more per byte than the server it
// measures, and a curl loop is one connection with a gap per request. 4 connections keep a
// response in flight while another is being requested. Figure: bodies delivered (wrk's
// requests/s x 1 MiB, headers not counted) in Gbit/s; CPU is the server's per GB of bodies.
export const scenario: Scenario = {
  id: 'https-bulk',
  title: 'HTTPS keep-alive, 1 MiB responses, 4 connections (wrk)',
  kind: 'wrk',
  role: 'https',
  contenders: ['maio', 'node', 'node-b', 'bun'],
  peer: 'node',
  control: ['node', 'node-b'],
  metric: GBPS,
  cpuPer: 'GB',
  wrk: { connections: 4, bodyBytes: 1 << 20, tls: true },
  goals: [
    { label: 'maio >= 1.0x node:https', field: 'value', refs: ['node'], cmp: '>=', factor: 1 },
    { label: 'maio CPU/GB <= node:https', field: 'cpuPerUnit', refs: ['node'], cmp: '<=', factor: 1 },
  ],
};
