// The 'batch' event of UdpSocket on real loopback sockets, on both backends:
// one event per receive buffer (a GRO batch with a short last segment arrives
// as one batch with the right counts, sizes, bytes and source), released
// together when the handler returns or when a retained batch is released (use
// after release is a typed error), every buffer back in the pool; pause and
// resume, the read quota and a pause inside a 'message' handler in the middle
// of a GRO buffer keep working; send(batch) relays a batch from its own buffer
// (one UDP_SEGMENT send with GSO, datagram by datagram without).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPool, createUdpSocket, defaultPool, type UdpBatch, type UdpMessage, type UdpSocket } from '../../src/index';
import { netSkip as skip, poolGuard, until } from '../net/helpers';
import { check, closeAll, fill, pair, readQuotaHolds } from './datagrams';


/** Every datagram of a batch as [seq, length], read through datagram(i). */
function datagrams(b: UdpBatch): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < b.count; i++) out.push([check(b.datagram(i)), b.sizeOf(i)]);
  return out;
}

test('a GRO batch with a short last segment is one batch event: counts, sizes, bytes, source; no message events; released together', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port, txPort] = await pair({ gro: true }, { gso: true });
  const gro = rx.stats().gro.enabled && tx.stats().gso.enabled;
  const lens = [...Array(30).fill(1200), 500];
  const kept: UdpBatch[] = [];
  let messages = 0;
  let inHandler: UdpBatch | null = null;
  rx.on('message', () => messages++);
  rx.on('batch', (b, from) => {
    assert.equal(from, b.from);
    assert.equal(b.released, false);
    if (inHandler === null) inHandler = b; // not retained: goes back when the handler returns
    else kept.push(b.retain());
  });
  // A first datagram alone, then one turn's 31 (one UDP_SEGMENT send when GSO is on).
  tx.send(fill(pool, 1000, 300), port, '127.0.0.1');
  await until(() => inHandler !== null, 'the first batch');
  assert.equal(inHandler!.count, 1);
  assert.equal(inHandler!.length, 300);
  assert.equal(inHandler!.segmentSize, 300, 'one datagram: segmentSize is its length');
  assert.equal(inHandler!.released, true, 'released when the handler returned');
  assert.throws(() => inHandler!.bytes, { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.throws(() => inHandler!.datagram(0), { code: 'ERR_MAIO_BUFFER_RELEASED' });

  lens.forEach((len, seq) => tx.send(fill(pool, seq, len), port, '127.0.0.1'));
  await until(() => kept.reduce((n, b) => n + b.count, 0) === lens.length, 'the 31 datagrams');
  assert.equal(messages, 0, "no 'message' while a 'batch' listener is there");
  assert.deepEqual(kept.flatMap(datagrams), lens.map((len, seq) => [seq, len]));
  for (const b of kept) {
    assert.equal(b.from.address, '127.0.0.1');
    assert.equal(b.from.port, txPort);
    assert.equal(b.length, b.bytes.length);
    assert.equal(b.length, (b.count - 1) * b.segmentSize + b.sizeOf(b.count - 1));
    assert.equal(b.truncated, false);
    // bytes is the datagrams end to end.
    assert.deepEqual(b.bytes.subarray(b.segmentSize * (b.count - 1)), b.datagram(b.count - 1));
  }
  if (gro) {
    const big = kept.find((b) => b.count > 1);
    assert.ok(big, 'at least one buffer carried several datagrams');
    assert.equal(big.segmentSize, 1200);
    assert.ok(rx.stats().groBatches >= 1);
  }
  const last = kept[kept.length - 1];
  assert.equal(last.sizeOf(last.count - 1), 500, 'the short last segment');
  assert.throws(() => last.datagram(last.count), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  assert.throws(() => last.datagram(-1), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  assert.throws(() => last.sizeOf(1.5), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  const s = rx.stats();
  assert.equal(s.datagramsIn, lens.length + 1);
  assert.equal(s.bytesIn, 300 + lens.reduce((a, b) => a + b, 0));

  // One receive buffer per batch (default size: 64 KiB, or the pool's largest), back at release.
  assert.equal(s.receiveBytesHeld, kept.length * Math.min(65536, pool.maxAllocSize));
  for (const b of kept) b.release();
  assert.equal(rx.stats().receiveBytesHeld, 0);
  assert.throws(() => last.bytes, { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.throws(() => last.release(), { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.throws(() => last.retain(), { code: 'ERR_MAIO_BUFFER_RELEASED' });
  await closeAll(rx, tx);
  await guard.check();
});

test("batches from two sources carry each one's address; without a 'batch' listener the same socket emits 'message'", { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, a, port, portA] = await pair({ gro: true });
  const b = createUdpSocket({ type: 'udp4' });
  const { port: portB } = await b.bind(0, '127.0.0.1');
  const got: [number, number][] = [];
  rx.on('batch', (batch) => {
    for (let i = 0; i < batch.count; i++) got.push([check(batch.datagram(i)), batch.from.port]);
  });
  for (let i = 0; i < 6; i++) {
    (i % 2 === 0 ? a : b).send(fill(pool, i, 200), port, '127.0.0.1');
    await until(() => got.length === i + 1, `datagram ${i}`);
  }
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5].map((i) => [i, i % 2 === 0 ? portA : portB]));

  rx.removeAllListeners(); // every listener, the socket's own hooks too: delivery must not depend on them
  const msgs: [number, number][] = [];
  rx.on('message', (m, from) => msgs.push([check(m.bytes), from.port]));
  a.send(fill(pool, 10, 200), port, '127.0.0.1');
  await until(() => msgs.length === 1, 'a message');
  b.send(fill(pool, 11, 200), port, '127.0.0.1');
  await until(() => msgs.length === 2, 'a message');
  assert.deepEqual(msgs, [[10, portA], [11, portB]]);
  await closeAll(rx, a, b);
  await guard.check();
});

test('pause() in a batch handler holds the next batches back; resume() delivers them in order', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false });
  const seqs: number[] = [];
  rx.on('batch', (b) => {
    seqs.push(check(b.bytes));
    if (seqs.length === 1) rx.pause();
  });
  tx.send(fill(pool, 0, 100), port, '127.0.0.1');
  await until(() => seqs.length === 1, 'the first batch');
  assert.equal(rx.isPaused(), true);
  for (let i = 1; i <= 10; i++) tx.send(fill(pool, i, 100), port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seqs, [0], 'nothing while paused');
  rx.resume();
  await until(() => seqs.length === 11, 'the held batches after resume');
  assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  await closeAll(rx, tx);
  await guard.check();
});

test('pause() in a message handler in the middle of a GRO buffer: the rest of that buffer waits and comes first after resume()', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: true }, { gso: true });
  const seqs: number[] = [];
  rx.on('message', (m: UdpMessage) => {
    seqs.push(check(m.bytes));
    if (seqs.length === 3) rx.pause();
  });
  for (let i = 0; i < 10; i++) tx.send(fill(pool, i, 1000), port, '127.0.0.1');
  await until(() => seqs.length === 3, 'three datagrams');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seqs, [0, 1, 2], 'nothing more while paused, though the buffer holds more');
  if (rx.stats().gro.enabled && tx.stats().gso.enabled) assert.ok(rx.stats().groBatches >= 1, 'the pause fell inside a buffer of several datagrams');
  tx.send(fill(pool, 10, 1000), port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 50));
  rx.resume();
  await until(() => seqs.length === 11, 'the rest after resume');
  assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(rx.stats().receiveBytesHeld, 0);
  await closeAll(rx, tx);
  await guard.check();
});

test('the read quota counts retained batches: the receive stops at it and goes on when they are released', { skip, timeout: 20000 }, () =>
  readQuotaHolds('batch'),
);

test('close() with batches waiting (paused) gives their buffers back; a retained batch stays readable until released', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false });
  let kept: UdpBatch | null = null;
  rx.on('batch', (b) => {
    kept = b.retain();
    rx.pause();
  });
  for (let i = 0; i < 5; i++) tx.send(fill(pool, i, 100), port, '127.0.0.1');
  await until(() => kept !== null, 'the first batch');
  await new Promise((r) => setTimeout(r, 50));
  await closeAll(rx, tx);
  assert.equal(check(kept!.bytes), 0);
  kept!.release();
  await guard.check();
});

for (const gso of [true, false]) {
  test(`send(batch) relays a received batch from its own buffer (gso ${gso}): every datagram arrives whole, in order; the batch counts as released`, { skip, timeout: 20000 }, async () => {
    const pool = defaultPool();
    const guard = poolGuard(pool);
    const [relay, tx, port] = await pair({ gro: true, gso }, { gso: true });
    const sink = createUdpSocket({ type: 'udp4' });
    const { port: sinkPort } = await sink.bind(0, '127.0.0.1');
    const lens = [...Array(20).fill(1100), 300];
    const got: [number, number][] = [];
    sink.on('message', (m) => got.push([check(m.bytes), m.length]));
    let relayed = 0;
    let batches = 0;
    let callbacks = 0;
    let sent: UdpBatch | null = null;
    relay.on('batch', (b) => {
      relayed += b.count;
      batches++;
      relay.send(b, sinkPort, '127.0.0.1', (err) => {
        assert.equal(err, null);
        callbacks++;
      });
      assert.equal(b.released, true, 'given up by the send');
      assert.throws(() => b.bytes, { code: 'ERR_MAIO_BUFFER_RELEASED' });
      sent ??= b;
    });
    lens.forEach((len, seq) => tx.send(fill(pool, seq, len), port, '127.0.0.1'));
    await until(() => got.length === lens.length, 'the relayed datagrams');
    assert.deepEqual(got, lens.map((len, seq) => [seq, len]));
    assert.equal(relayed, lens.length);
    assert.throws(() => relay.send(sent!, sinkPort, '127.0.0.1'), { code: 'ERR_MAIO_BUFFER_RELEASED' });
    await until(() => callbacks === batches, 'one callback per batch, after its last datagram');
    const s = relay.stats();
    assert.equal(s.sendsPending, 0);
    assert.equal(s.messagesSent, lens.length);
    assert.equal(s.datagramsOut, lens.length);
    if (gso && s.gso.enabled && s.groBatches > 0) assert.ok(s.gsoBatches >= 1, 'a batch of several datagrams left as one UDP_SEGMENT send');
    if (!gso) assert.equal(s.gsoBatches, 0, 'datagram by datagram without GSO');
    if (s.groBatches > 0) assert.ok(batches < lens.length, 'several datagrams per batch');
    await closeAll(relay, tx, sink);
    await guard.check();
  });
}

// A strict pool has no view of its whole region (each buffer's view is its own, detached at
// release), so a batch reads from the buffer's view there, not from the region's.
test('a strict pool: batches and the messages cut from them read their own bytes, and views kept past release read nothing', { skip, timeout: 20000 }, async () => {
  const pool = createPool({ size: 8 << 20, lock: false, strict: true, classes: [{ size: 65536, count: 64 }] });
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ pool, gro: true }, { pool, gso: true });
  const lens = [...Array(10).fill(1200), 500];
  const batches: UdpBatch[] = [];
  rx.on('batch', (b) => batches.push(b.retain()));
  lens.forEach((len, seq) => tx.send(fill(pool, seq, len), port, '127.0.0.1'));
  await until(() => batches.reduce((n, b) => n + b.count, 0) === lens.length, 'the datagrams as batches');
  assert.deepEqual(batches.flatMap(datagrams), lens.map((len, seq) => [seq, len]));
  const views = batches.map((b) => b.datagram(0));
  for (const b of batches) b.release();
  for (const v of views) assert.equal(v.length, 0, 'a strict pool detaches the views of a released buffer');

  rx.removeAllListeners('batch');
  const messages: UdpMessage[] = [];
  rx.on('message', (m) => messages.push(m.retain()));
  lens.forEach((len, seq) => tx.send(fill(pool, seq + 100, len), port, '127.0.0.1'));
  await until(() => messages.length === lens.length, 'the datagrams as messages');
  assert.deepEqual(messages.map((m) => [check(m.bytes), m.length]), lens.map((len, seq) => [seq + 100, len]));
  const kept = messages.map((m) => m.bytes);
  for (const m of messages) m.release();
  for (const v of kept) assert.equal(v.length, 0);
  await closeAll(rx, tx);
  await guard.check();
});
