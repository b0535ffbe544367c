/**
 * Faults in a real network between two namespaces joined by a veth pair: the
 * peer vanishes without a FIN or RST (its end of the veth goes down), and
 * maio detects it in bounded time through TCP_USER_TIMEOUT (sends
 * outstanding) or keepalive probes (only a receive armed); a connect to an
 * address that never answers times out; a connect to a closed port is
 * refused. maio runs in a child inside namespace A (fixtures/ns-maio.ts),
 * node:net peers in namespace B. Each case ends with a node:net-shaped error
 * and the child's pool back to where it started. Both backends (the child
 * inherits MAIO_BACKEND).
 *
 * Existing coverage: test/net/lifecycle.test.ts ('connect timeout' with a
 * full accept queue, 'connect to a closed port' on loopback), and
 * test/net/compat.test.ts (ECONNREFUSED through maio/net).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { NsPair, exited, netnsSkip, nodeChild, onUring } from './helpers';

const MAIO = path.join(__dirname, 'fixtures', 'ns-maio.js');
const skip = netnsSkip();
const children: { kill(sig: NodeJS.Signals): boolean; exitCode: number | null; signalCode: NodeJS.Signals | null }[] = [];
let ns: NsPair | undefined;

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  ns?.remove();
});

function pair(tag: string, net: number): NsPair {
  ns?.remove();
  ns = new NsPair(tag, net);
  return ns;
}

/** node:net in namespace B: a server that reads and discards, or a client that connects and idles. */
function peerInB(p: NsPair, code: string) {
  const c = nodeChild(code, { prefix: p.exec(p.b) });
  children.push(c.child);
  return c;
}

function runMaio(p: NsPair, args: string[]) {
  const c = nodeChild(`process.argv.splice(1, 0, ${JSON.stringify(MAIO)}); require(${JSON.stringify(MAIO)})`, { prefix: p.exec(p.a), argv: args });
  children.push(c.child);
  return c;
}

async function verdict(c: ReturnType<typeof runMaio>): Promise<any> {
  const m = await c.line(/^\{.*\}$/, 'the JSON verdict', 120_000);
  await exited(c.child);
  return JSON.parse(m[0]);
}

test('half-open while sending: the peer vanishes without FIN; TCP_USER_TIMEOUT ends it with ETIMEDOUT; pool back', { skip }, async () => {
  const p = pair('send', 61);
  const peer = peerInB(p, `require('node:net').createServer((s) => { s.resume(); s.on('error', () => {}); }).listen(7001, ${JSON.stringify(p.addrB)}, () => console.log('up'))`);
  await peer.line(/^up$/, 'the peer listening');
  const m = runMaio(p, ['send', p.addrB, '7001']);
  await m.line(/^sending$/, 'maio sending');
  p.cutB();
  const v = await verdict(m);
  // io_uring: a send that had moved some bytes before the socket failed
  // completes with the bytes moved (MSG_WAITALL), and the kernel has already
  // consumed the socket error (ETIMEDOUT) inside that send, so the receive sees
  // EOF and the cause is gone: maio can only say EPIPE. The epoll backend's
  // plain send() returns the ETIMEDOUT itself.
  if (v.code === 'EPIPE') {
    assert.equal(onUring(), true, `EPIPE only on io_uring: ${JSON.stringify(v)}`);
    assert.equal(v.errno, -32);
    assert.equal(v.syscall, 'write');
  } else {
    assert.equal(v.code, 'ETIMEDOUT', JSON.stringify(v));
    assert.equal(v.errno, -110);
    assert.ok(['read', 'write'].includes(v.syscall), v.syscall);
  }
  assert.equal(v.hadError, true);
  assert.ok(v.written < v.queued, `sends were outstanding (written ${v.written} of ${v.queued})`);
  assert.equal(v.poolBack, true);
});

test('half-open while idle: only a receive armed on an accepted socket; keepalive probes end it with ETIMEDOUT; pool back', { skip }, async () => {
  const p = pair('idle', 62);
  const m = runMaio(p, ['idle', p.addrA, '7002']);
  await m.line(/^listening$/, 'maio listening');
  const peer = peerInB(p, `const c = require('node:net').connect(7002, ${JSON.stringify(p.addrA)}, () => console.log('connected')); c.on('error', () => {});`);
  await peer.line(/^connected$/, 'the peer connected');
  await m.line(/^accepted$/, 'maio accepted');
  p.cutB();
  const v = await verdict(m);
  assert.equal(v.code, 'ETIMEDOUT', JSON.stringify(v));
  assert.equal(v.errno, -110);
  assert.equal(v.syscall, 'read');
  assert.equal(v.hadError, true);
  assert.equal(v.poolBack, true);
});

test('connect timeout: SYNs to an address that never answers; connect({ timeout }) fails with ETIMEDOUT connect; pool back', { skip }, async () => {
  const p = pair('conn', 63);
  p.cutB();
  const v = await verdict(runMaio(p, ['connect', p.addrB, '7003']));
  assert.equal(v.code, 'ETIMEDOUT', JSON.stringify(v));
  assert.equal(v.errno, -110);
  assert.equal(v.syscall, 'connect');
  assert.equal(v.hadError, true);
  assert.equal(v.poolBack, true);
});

test('ECONNREFUSED from a host across the veth (its kernel answers the SYN with a RST); pool back', { skip }, async () => {
  const p = pair('refused', 64);
  const v = await verdict(runMaio(p, ['refused', p.addrB, '7004']));
  assert.equal(v.code, 'ECONNREFUSED', JSON.stringify(v));
  assert.equal(v.errno, -111);
  assert.equal(v.syscall, 'connect');
  assert.match(v.message, new RegExp(`connect ECONNREFUSED ${p.addrB.replace(/\./g, '\\.')}:7004`));
  assert.equal(v.hadError, true);
  assert.equal(v.poolBack, true);
});
