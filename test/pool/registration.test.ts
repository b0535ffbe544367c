// Pools attach to this thread's io_uring ring (fixed buffer) and detach when closed and drained.
// An eager pool registers at creation; a lazy one (the default) at its first SEND_ZC.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { createPool } from '../../src/index';
import { kPoolId } from '../../src/core/symbols';
import { Ring, type CompletionTarget } from '../../src/ring/ring';
import { backend } from '../../src/backend';
import { createServer, connect } from '../../src/net/server';
import { closed, until } from '../net/helpers';

const isRoot = process.getuid?.() === 0;

test('a pool registers with the ring as a fixed buffer and detaches after close once drained', (t) => {
  const ring = Ring.current();
  if (!ring.capabilities.fixedBuffers) return t.skip('the backend is not io_uring here');
  const pool = createPool({ size: 4 << 20, eager: true });
  const st = pool.stats();
  assert.ok(st.poolId >= 0, `attached (registerError '${st.registerError}')`);
  assert.equal(pool[kPoolId], st.poolId);
  if (isRoot) {
    assert.equal(st.registered, true, st.registerError);
    assert.equal(st.residency, 'registered');
    assert.equal(st.registerPending, false);
  }
  const unregistered = createPool({ size: 64 << 10, register: false });
  assert.equal(unregistered.stats().poolId, -1);
  assert.equal(unregistered.stats().registered, false);
  assert.equal(unregistered.stats().registerPending, false);
  unregistered.close();

  const buf = pool.alloc(100);
  pool.close();
  assert.equal(pool.stats().poolId, st.poolId, 'still attached while a buffer is out');
  buf.release();
  assert.equal(pool.stats().poolId, -1);
  assert.equal(pool.stats().registered, false);
  // The slot is free again: the next pool can take it.
  const again = createPool({ size: 64 << 10 });
  assert.ok(again.stats().poolId >= 0);
  again.close();
});

test('a lazy pool (the default) is attached with its registration pending, nothing resident', (t) => {
  const ring = Ring.current();
  if (!ring.capabilities.fixedBuffers) return t.skip('the backend is not io_uring here');
  const pool = createPool({ size: 4 << 20 });
  const st = pool.stats();
  assert.ok(st.poolId >= 0, 'attached: descriptors may use it');
  assert.equal(st.registered, false);
  assert.equal(st.registerPending, true);
  assert.equal(st.residency, 'lazy');
  assert.equal(st.residentBytes, 0, 'attaching pins nothing');
  assert.equal(st.locked, false);
  pool.close();
  assert.equal(pool.stats().registerPending, false, 'detached');
});

/** Collects completions of raw ring operations. */
class Collector implements CompletionTarget {
  events: [number, number, number][] = [];
  onCompletion(id: number, res: number, flags: number): void {
    this.events.push([id, res, flags]);
  }
}

test('a SEND_ZC outside a lazy pool is refused and registers nothing', async (t) => {
  const ring = Ring.current();
  if (!ring.capabilities.fixedBuffers) return t.skip('the backend is not io_uring here');
  if (!backend().capabilities.sendZc) return t.skip('no IORING_OP_SEND_ZC');
  const size = 1 << 20;
  const pool = createPool({ size });
  try {
    const c = new Collector();
    // fd 1 is never reached: the descriptor is refused before an SQE is filled.
    ring.sendZc(c, 1, pool[kPoolId], size - 2, 5);
    await until(() => c.events.length === 1, 'the refused send completes');
    assert.equal(c.events[0][1], -22, 'EINVAL');
    const st = pool.stats();
    assert.equal(st.registered, false);
    assert.equal(st.registerPending, true, 'still pending: the refused send pinned nothing');
    assert.equal(st.residentBytes, 0);
  } finally {
    pool.close();
  }
});

test("a lazy pool's first SEND_ZC registers (pins) it: stats say so; the bytes arrive intact", async (t) => {
  const ring = Ring.current();
  if (!ring.capabilities.fixedBuffers) return t.skip('the backend is not io_uring here (the epoll engine registers nothing)');
  if (!backend().capabilities.sendZc) return t.skip('no IORING_OP_SEND_ZC');
  const size = 4 << 20;
  const pool = createPool({ size });
  let got = Buffer.alloc(0);
  const server = createServer((s) => s.on('data', (b) => (got = Buffer.concat([got, Buffer.from(b.bytes)]))));
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = connect({ port, host: '127.0.0.1', pool, zeroCopy: 'always' });
  try {
    await once(c, 'connect');
    assert.equal(pool.stats().registerPending, true, 'connecting and receiving pin nothing');
    const buf = pool.alloc(65536);
    for (let i = 0; i < buf.length; i++) buf.bytes[i] = i * 7;
    const expect = Buffer.from(buf.bytes);
    c.send(buf);
    await until(() => got.length === expect.length, 'every byte at the server');
    await until(() => c.stats().sendsInFlight === 0, 'the notification');
    assert.ok(got.equals(expect), 'payload intact');
    assert.equal(c.stats().zeroCopy.zcSends, 1);
    const st = pool.stats();
    if (isRoot) {
      assert.equal(st.registered, true, st.registerError);
      assert.equal(st.residency, 'registered');
      assert.equal(st.registerPending, false);
      assert.equal(st.residentBytes, size, 'pinning faulted in the whole region');
      assert.equal(st.locked, true, `locked once pinned (lockError ${st.lockError})`);
    } else {
      // Under a small memlock limit the kernel may refuse; then stats say why.
      assert.ok(st.registered || /^E[A-Z]+/.test(st.registerError), st.registerError);
    }
  } finally {
    const done = closed(c);
    c.end();
    await done;
    await new Promise<void>((r) => server.close(() => r()));
    pool.close();
  }
});

test('on the epoll fallback a pool is never registered; zero-copy sends leave it lazy', async (t) => {
  if (Ring.current().capabilities.fixedBuffers) return t.skip('io_uring backend: covered above');
  const pool = createPool({ size: 1 << 20 });
  const st = pool.stats();
  assert.equal(st.registered, false);
  assert.equal(st.registerPending, false);
  assert.equal(st.residency, 'lazy');
  pool.close();
});
