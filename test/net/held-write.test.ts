/**
 * Held writes: maio/net's write() of a large Buffer is sent from the caller's
 * memory (SEND_BUF, or a SENDV piece naming it), which the ring holds until
 * the send's final completion, instead of a copy into a pool buffer
 * (src/net/socket-send.ts [kWriteHeld], src/ring/ring.ts sendBuf). Real
 * sockets on both engines: the bytes stay exact and in order when held
 * writes mix with copied writes and pool-buffer sends, callbacks run once
 * each, in order, and only once the kernel has the bytes, and a socket
 * destroyed with held sends in flight gives every buffer back (the ring's
 * heldBuffers count returns to 0).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { kWriteHeld } from '../../src/core/symbols';
import * as maioNet from '../../src/net/compat';
import { markTransient } from '../../src/net/compat/pooled-chunk';
import { HELD_WRITE_MIN } from '../../src/net/socket-send';
import { stats } from '../../src/net/stats';
import { native } from '../../src/core/native';
import { currentRing } from '../../src/ring/current';
import { sockaddr } from '../../src/net/address';
import { closed, netSkip, poolGuard, rng, sinkPair, SOURCE, until } from './helpers';

const skip = netSkip;

function held(): number {
  return currentRing().stats().heldBuffers;
}

test('held writes mixed with copied writes and pool sends arrive byte-exact and in order, callbacks in order', { skip }, async () => {
  const guard = poolGuard();
  const { server, c, received } = await sinkPair();
  const h = createHash('sha256');
  const r = rng(21);
  const before = stats();
  const order: number[] = [];
  let heldCount = 0;
  let heldBytes = 0;
  // 300 writes of 1 byte to 1 MiB: held from HELD_WRITE_MIN on, copied below; every 5th a pool buffer send().
  for (let i = 0; i < 300; i++) {
    const size = 1 + Math.floor(Math.exp(r() * Math.log(1 << 20)));
    const at = Math.floor(r() * (SOURCE.length - size));
    // A copy per write: the caller's Buffer is what is held (no view of SOURCE shared by two writes).
    const chunk = Buffer.from(SOURCE.subarray(at, at + size));
    h.update(chunk);
    const done = (err?: Error | null): void => {
      assert.ifError(err);
      order.push(i);
    };
    if (i % 5 === 4 && size <= c.pool.maxAllocSize) {
      const buf = c.pool.tryAlloc(size)!;
      buf.bytes.set(chunk);
      c.send(buf, done);
    } else {
      c[kWriteHeld](chunk, done);
      if (size >= HELD_WRITE_MIN) {
        heldCount++;
        heldBytes += size;
      }
    }
  }
  const done = closed(c);
  c.end();
  const got = await received();
  assert.equal(got.hash, h.digest('hex'), 'bytes exact and in order');
  assert.deepEqual(order, Array.from({ length: 300 }, (_, i) => i), 'one callback per write, in write order');
  assert.ok(heldCount > 0, 'the sizes include held writes');
  assert.equal(stats().heldWrites - before.heldWrites, heldCount, 'writes from HELD_WRITE_MIN on were held');
  assert.equal(stats().heldWriteBytes - before.heldWriteBytes, heldBytes);
  await done;
  assert.equal(held(), 0, 'no buffer held after the last completion');
  server.close();
  await guard.check();
});

test('a held write calls back only once the kernel has every byte (a peer that reads late)', { skip }, async () => {
  const { server, c, peer, received } = await sinkPair((s) => s.pause());
  // More than the loopback socket buffers of both ends take while the peer reads nothing.
  const big = Buffer.alloc(48 << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  const want = createHash('sha256').update(big).digest('hex');
  let called = false;
  c[kWriteHeld](big, (err) => {
    assert.ifError(err);
    called = true;
  });
  await until(() => held() > 0, 'the write in flight');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(called, false, 'no callback while the kernel still reads from the buffer');
  assert.ok(held() > 0, 'the buffer is held meanwhile');
  peer().resume();
  await until(() => called, 'the callback once the peer read');
  const done = closed(c);
  c.end();
  const got = await received();
  assert.equal(got.bytes, big.length);
  assert.equal(got.hash, want);
  await done;
  assert.equal(held(), 0);
  server.close();
});

// Sends the kernel cuts short go again from the byte they stopped at (socket-send-chain.ts #resend,
// heldView); this kernel rarely cuts a SENDMSG short on loopback, so this run may not take that path.
test('held writes of one turn (SENDVs of held pieces) to a slow reader arrive exact, in order, one callback each', { skip }, async () => {
  const guard = poolGuard();
  const { server, c, peer, received } = await sinkPair((s) => s.pause());
  const h = createHash('sha256');
  const r = rng(5);
  let calls = 0;
  for (let i = 0; i < 24; i++) {
    const big = Buffer.from(SOURCE.subarray(i * 65536, i * 65536 + (1 << 20)));
    const small = Buffer.from(`between ${i}`);
    h.update(big).update(small);
    c[kWriteHeld](big, (err) => (assert.ifError(err), calls++));
    c.write(small, (err) => (assert.ifError(err), calls++));
  }
  // The peer reads a little at a time: sends come back short while the socket buffer is full.
  const p = peer();
  p.resume();
  p.on('data', () => {
    if (r() < 0.9) {
      p.pause();
      setTimeout(() => p.resume(), 2);
    }
  });
  const done = closed(c);
  c.end();
  const got = await received();
  assert.equal(got.hash, h.digest('hex'), 'bytes exact and in order');
  assert.equal(calls, 48);
  await done;
  assert.equal(held(), 0);
  server.close();
  await guard.check();
});

test('destroy() with held writes in flight: callbacks fail, every held buffer is given back', { skip }, async () => {
  const guard = poolGuard();
  const { server, c, peer } = await sinkPair((s) => s.pause());
  const errors: (Error | null | undefined)[] = [];
  for (let i = 0; i < 8; i++) c[kWriteHeld](Buffer.alloc(8 << 20, i), (err) => errors.push(err));
  c.write(Buffer.from('copied, queued behind them'), (err) => errors.push(err));
  await until(() => held() > 0, 'held writes in flight');
  c.on('error', () => {});
  const done = closed(c);
  c.destroy();
  await done;
  await until(() => errors.length === 9, 'every callback');
  assert.ok(errors.slice(1).every((e) => e instanceof Error), 'writes cut off by destroy() fail');
  await until(() => held() === 0, 'the ring holds no buffer after the cancellations complete');
  peer().destroy();
  server.close();
  await guard.check();
});

test('maio/net: write() of large Buffers is held, small ones copied; bytes exact through a node:net reader', { skip }, async () => {
  const parts = [Buffer.alloc(1 << 20, 1), Buffer.from('small'), Buffer.alloc(70000, 2), Buffer.alloc(HELD_WRITE_MIN - 1, 3), Buffer.alloc(HELD_WRITE_MIN, 4), Buffer.from('end')];
  const want = Buffer.concat(parts);
  const before = stats();
  const server = maioNet.createServer((s) => {
    for (const p of parts) s.write(p);
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => c.once('end', r));
  assert.ok(Buffer.concat(chunks).equals(want), 'bytes exact and in order');
  assert.equal(stats().heldWrites - before.heldWrites, 3, 'the 1 MiB, 70,000 and HELD_WRITE_MIN byte writes were held');
  c.destroy();
  await new Promise((r) => server.close(r));
  assert.equal(held(), 0);
});

test('write() of maio Socket still copies: the caller may reuse its buffer at once', { skip }, async () => {
  const { server, c, received } = await sinkPair();
  const buf = Buffer.alloc(256 << 10, 7);
  const before = stats();
  c.write(buf);
  buf.fill(9); // after write() returned: must not reach the peer
  const done = closed(c);
  c.end();
  const got = await received();
  assert.equal(got.hash, createHash('sha256').update(Buffer.alloc(256 << 10, 7)).digest('hex'));
  assert.equal(stats().heldWrites, before.heldWrites, 'write() held nothing');
  await done;
  server.close();
});

test('maio/net: a transientChunks chunk (pool memory that goes back soon) is copied, not held', { skip }, async () => {
  const server = net.createServer((s) => s.resume());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = maioNet.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => c.once('connect', r));
  const chunk = Buffer.alloc(1 << 20, 5);
  markTransient(chunk);
  const before = stats();
  await new Promise<void>((r, j) => c.write(chunk, (err) => (err ? j(err) : r())));
  assert.equal(stats().heldWrites, before.heldWrites, 'copied');
  await new Promise<void>((r, j) => c.write(Buffer.alloc(1 << 20, 6), (err) => (err ? j(err) : r())));
  assert.equal(stats().heldWrites, before.heldWrites + 1, 'a plain Buffer of the same size is held');
  c.destroy();
  server.close();
});

test("closing the thread's ring with a held send in flight completes it -ECANCELED and holds nothing after", { skip }, async () => {
  // The Ring directly on a raw socket (a socket object would re-arm its receive on the closed ring).
  const server = net.createServer((s) => s.pause());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  n.sockConnectSync(fd, sockaddr('127.0.0.1', (server.address() as net.AddressInfo).port));
  const ring = currentRing();
  const results: number[] = [];
  const big = Buffer.alloc(64 << 20, 1);
  await until(() => {
    // connecting: the send fails at once (ENOTCONN/EAGAIN); try again until it stays in flight
    if (results.length === 0 && ring.stats().heldBuffers === 0) ring.sendBuf({ onCompletion: (_id, res) => results.push(res) }, fd, big, big.length, 0x100 /* MSG_WAITALL */);
    else if (results.length > 0) results.length = 0;
    return ring.stats().heldBuffers === 1;
  }, 'a held send in flight');
  ring.close();
  await until(() => results.length === 1, 'its completion');
  assert.ok(results[0] === -125 || results[0] > 0, `cancelled (or cut short): ${results[0]}`);
  assert.equal(ring.stats().heldBuffers, 0);
  n.sockClose(fd);
  server.close();
});
