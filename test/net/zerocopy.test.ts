/** Adaptive zero-copy end to end over loopback, with the kernel's own notifications. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { backend } from '../../src/backend';
import { createServer, connect } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { stats } from '../../src/net/stats';
import { closed, netSkip, poolGuard, until } from './helpers';

// SEND_ZC on io_uring, MSG_ZEROCOPY on the epoll fallback: the same policy and notifications.
const skip =
  netSkip ||
  (backend().capabilities.sendZc ? false : backend().mode === 'io_uring' ? 'no IORING_OP_SEND_ZC' : 'the kernel refuses SO_ZEROCOPY (no MSG_ZEROCOPY)');
const SENDS = 64;

async function blast(opts: Record<string, unknown>): Promise<Socket> {
  let got = 0;
  const server = createServer((s) => s.on('data', (b) => (got += b.length)));
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = connect({ port, host: '127.0.0.1', ...opts });
  await once(c, 'connect');
  for (let i = 0; i < SENDS; i++) {
    const buf = c.pool.tryAlloc(65536) ?? (await c.pool.allocWait(65536));
    if (!c.send(buf)) await once(c, 'drain');
  }
  await until(() => got === SENDS * 65536, 'every byte at the server');
  await until(() => c.stats().sendsInFlight === 0, 'every notification');
  const done = closed(c);
  c.end();
  await done;
  await new Promise<void>((r) => server.close(() => r()));
  return c;
}

test("'auto' probing on loopback: 64 KiB sends end in plain mode, the copied notifications counted and named", { skip }, async () => {
  const guard = poolGuard();
  const before = stats().zeroCopyCopiedBytes;
  const c = await blast({ zeroCopyProbeLocal: true });
  const z = c.stats().zeroCopy;
  assert.equal(z.state, 'plain');
  assert.match(z.reason, /the kernel copied \d+ of \d+ zero-copy sends/);
  assert.ok(z.copiedSends >= 8, `copied notifications: ${z.copiedSends}`);
  assert.equal(z.notCopiedSends, 0, 'loopback delivery always copies');
  assert.equal(z.zcSends, z.copiedSends);
  assert.ok(z.plainSends > 0 && z.zcSends + z.plainSends === SENDS);
  assert.equal(z.copiedBytesReported, z.copiedSends * 65536);
  assert.ok(stats().zeroCopyCopiedBytes - before >= z.copiedBytesReported);
  await guard.check();
});

test("'auto' without probing: a peer on this host starts plain and says why", { skip }, async () => {
  const c = await blast({});
  const z = c.stats().zeroCopy;
  assert.equal(z.state, 'plain');
  assert.match(z.reason, /on this host/);
  assert.equal(z.zcSends, 0);
  assert.equal(z.plainSends, SENDS);
});

test("'always' sends every eligible buffer zero-copy (each notification back before close); 'never' none", { skip }, async () => {
  const guard = poolGuard();
  const a = (await blast({ zeroCopy: 'always' })).stats().zeroCopy;
  assert.equal(a.state, 'forced-zero-copy');
  assert.equal(a.zcSends, SENDS);
  assert.equal(a.copiedSends + a.notCopiedSends, SENDS);
  const n = (await blast({ zeroCopy: 'never' })).stats().zeroCopy;
  assert.equal(n.state, 'forced-plain');
  assert.equal(n.zcSends, 0);
  await guard.check();
});
