// UdpSocket on real loopback sockets, on both backends: datagrams arrive
// whole and in order at a paced rate (loss and reorder counted), GSO batches
// (with a short last segment) arrive as the right datagrams, a GRO receiver
// splits a buffer of several datagrams into views released together,
// truncation is reported, ICMP errors reach a connected socket, bad input is
// a typed error, and every pool buffer comes back.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPool, createUdpSocket, defaultPool, type UdpMessage, type UdpSocket } from '../../src/index';
import { native } from '../../src/core/native';
import { bounded, netSkip as skip, poolGuard, until } from '../net/helpers';
import { check, closeAll, fill, pair, readQuotaHolds } from './datagrams';

for (const gso of [false, true]) {
  test(`sequence-numbered datagrams arrive whole and in order at a paced rate (gso ${gso}); loss and reorder counted`, { skip, timeout: 30000 }, async () => {
    const pool = defaultPool();
    const guard = poolGuard(pool);
    const [rx, tx, port] = await pair({ recvBufferSize: 4 << 20 }, { gso });
    const total = 3000;
    const window = 64; // in flight at most: the rate follows the receiver, so the kernel never has to drop
    let next = 0;
    let got = 0;
    let reordered = 0;
    let corrupt = 0;
    let last = -1;
    const seen = new Uint8Array(total);
    rx.on('message', (msg) => {
      const seq = check(msg.bytes);
      if (seq < 0 || seq >= total) corrupt++;
      else {
        if (seq < last) reordered++;
        last = Math.max(last, seq);
        seen[seq] = 1;
      }
      got++;
    });
    while (next < total) {
      while (next < total && next - got < window) tx.send(fill(pool, next, 1400), port, '127.0.0.1'), next++;
      await new Promise((r) => setImmediate(r));
      await until(() => next - got < window / 2 || next === total, `the receiver to catch up at ${next}`, 10000).catch(() => {});
      if (next - got >= window / 2 && next < total) break; // lost: counted below
    }
    await until(() => got >= next, 'every datagram', 5000).catch(() => {});
    const lost = next - seen.reduce((a, b) => a + b, 0);
    assert.equal(corrupt, 0, 'every datagram arrived with its bytes');
    assert.equal(reordered, 0, 'in order on loopback');
    assert.equal(lost, 0, `lost ${lost} of ${next} at a paced rate`);
    assert.equal(next, total);
    const ts = tx.stats();
    assert.equal(ts.datagramsOut, total);
    assert.equal(ts.bytesOut, total * 1400);
    if (!gso) assert.equal(ts.gsoBatches, 0);
    assert.equal(rx.stats().datagramsIn, total);
    await closeAll(rx, tx);
    await guard.check();
  });
}

test('a GSO batch with a short last segment arrives as the right datagrams (no GRO at the receiver)', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false });
  const lens = [...Array(20).fill(1000), 300];
  const got: { seq: number; len: number }[] = [];
  rx.on('message', (msg) => got.push({ seq: check(msg.bytes), len: msg.length }));
  lens.forEach((len, seq) => tx.send(fill(pool, seq, len), port, '127.0.0.1')); // one turn: one batch
  await until(() => got.length === lens.length, 'the batch');
  assert.deepEqual(got, lens.map((len, seq) => ({ seq, len })));
  const ts = tx.stats();
  if (ts.gso.enabled) assert.equal(ts.gsoBatches, 1, 'one UDP_SEGMENT send');
  else assert.ok(ts.gso.reason.length > 0, 'GSO off says why');
  assert.equal(ts.datagramsOut, lens.length);
  assert.equal(rx.stats().groBatches, 0);
  await closeAll(rx, tx);
  await guard.check();
});

test('GRO: a GSO batch reaches a GRO receiver as several datagrams per buffer, split right, the buffer back after the last view', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: true }, { gso: true });
  const rs = rx.stats();
  if (!rs.gro.enabled || !tx.stats().gso.enabled) {
    await closeAll(rx, tx);
    return assert.ok(rs.gro.reason || tx.stats().gso.reason, 'off, with a reason');
  }
  const lens = [...Array(30).fill(1200), 500];
  const kept: UdpMessage[] = [];
  rx.on('message', (msg) => kept.push(msg.retain()));
  lens.forEach((len, seq) => tx.send(fill(pool, seq, len), port, '127.0.0.1'));
  await until(() => kept.length === lens.length, 'the batch');
  assert.deepEqual(kept.map((m) => [check(m.bytes), m.length]), lens.map((len, seq) => [seq, len]));
  assert.ok(rx.stats().groBatches >= 1, 'at least one buffer carried several datagrams');
  const before = pool.stats().inUse;
  // All but one view released: their buffer stays with the application.
  for (const m of kept.slice(1)) m.release();
  assert.equal(check(kept[0].bytes), 0, 'the remaining view still reads its datagram');
  assert.equal(pool.stats().inUse, before, 'no buffer went back while a view of it is held');
  kept[0].release();
  assert.throws(() => kept[0].bytes, { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.throws(() => kept[0].release(), { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.equal(rx.stats().receiveBytesHeld, 0);
  await closeAll(rx, tx);
  await guard.check();
});

test('a datagram longer than the receive buffer is reported truncated (flag and stats)', { skip, timeout: 20000 }, async () => {
  const pool = createPool({ size: 8 << 20, lock: false, classes: [{ size: 2048, count: 1024 }, { size: 16384, count: 64 }] });
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ pool, readBufferSize: 2048, gro: false }, { pool });
  const got: { len: number; truncated: boolean; seq: number }[] = [];
  rx.on('message', (msg) => got.push({ len: msg.length, truncated: msg.truncated, seq: new DataView(msg.bytes.buffer, msg.bytes.byteOffset).getUint32(0) }));
  tx.send(fill(pool, 7, 5000), port, '127.0.0.1');
  tx.send(fill(pool, 8, 100), port, '127.0.0.1');
  await until(() => got.length === 2, 'both datagrams');
  assert.equal(got[0].truncated, true);
  assert.equal(got[0].seq, 7);
  assert.ok(got[0].len < 2048 && got[0].len > 1900, `the part that fit: ${got[0].len}`);
  assert.deepEqual(got[1], { len: 100, truncated: false, seq: 8 });
  assert.equal(rx.stats().truncated, 1);
  await closeAll(rx, tx);
  await guard.check();
});

test('a connected socket gets ECONNREFUSED after sending to a closed port, and keeps working', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const gone = createUdpSocket({ type: 'udp4' });
  const { port: closedPort } = await gone.bind(0, '127.0.0.1');
  await closeAll(gone);
  const c = createUdpSocket({ type: 'udp4' });
  await c.connect(closedPort, '127.0.0.1');
  assert.equal(c.remoteAddress().port, closedPort);
  const errors: string[] = [];
  c.on('error', (e) => errors.push((e as { code?: string }).code ?? String(e)));
  const sent: (string | null)[] = [];
  for (let i = 0; i < 20 && errors.length === 0 && !sent.includes('ECONNREFUSED'); i++) {
    c.send(fill(pool, i, 64), undefined, undefined, (err) => sent.push(err ? (err as { code?: string }).code ?? 'error' : null));
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(errors.includes('ECONNREFUSED') || sent.includes('ECONNREFUSED'), `ECONNREFUSED came (errors ${errors}, sends ${sent})`);
  assert.ok(c.stats().errors >= 1);
  // Still usable: disconnect and talk to a live peer.
  c.disconnect();
  const peer = createUdpSocket({ type: 'udp4' });
  const { port } = await peer.bind(0, '127.0.0.1');
  const got = new Promise<number>((resolve) => peer.once('message', (msg) => resolve(check(msg.bytes))));
  c.send(fill(pool, 99, 64), port, '127.0.0.1');
  assert.equal(await bounded(got, 'a datagram after the error'), 99);
  await closeAll(c, peer);
  await guard.check();
});

test('oversize datagrams and bad addresses are typed errors; the buffer stays the caller\'s', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const s = createUdpSocket({ type: 'udp4' });
  await s.bind(0, '127.0.0.1');
  const big = pool.alloc(65508);
  big.setLength(65508);
  assert.throws(() => s.send(big, 9, '127.0.0.1'), { code: 'ERR_MAIO_DATAGRAM_TOO_LARGE' });
  big.setLength(65507); // the largest that fits; goes nowhere (port 9, discard) without error
  const small = fill(pool, 1, 10);
  assert.throws(() => s.send(small, 9, 42 as never), { code: 'ERR_MAIO_INVALID_ADDRESS' }, 'a host that is not a string (a name is looked up: udp-host-names.test.ts)');
  assert.throws(() => s.send(small, 9, '::1'), { code: 'ERR_MAIO_INVALID_ADDRESS' }, 'IPv6 on udp4');
  assert.throws(() => s.send(small, 70000, '127.0.0.1'), { code: 'ERR_MAIO_BAD_PORT' });
  assert.throws(() => s.send(small), { code: 'ERR_MAIO_INVALID_ARG' }, 'unconnected needs a port');
  assert.throws(() => s.send(new Uint8Array(4) as never, 9), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.equal(small.lent, false, 'a refused send leaves the buffer with the caller');
  small.release();
  big.release();
  assert.throws(() => createUdpSocket({ type: 'udp5' as never }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => createUdpSocket({ type: 'udp4', readQuota: -1 }), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  await assert.rejects(s.bind(0, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' }, 'bound already');
  const c = createUdpSocket({ type: 'udp4' });
  await c.connect(9, '127.0.0.1');
  const b = fill(pool, 2, 10);
  assert.throws(() => c.send(b, 9, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' }, 'connected takes no address');
  b.release();
  const v6 = createUdpSocket({ type: 'udp6' });
  await assert.rejects(v6.bind(0, 42 as never), { code: 'ERR_MAIO_INVALID_ADDRESS' }, 'a host that is not a string');
  await closeAll(s, c, v6);
  const late = fill(pool, 3, 1);
  assert.throws(() => s.send(late, 9), { code: 'ERR_MAIO_CLOSED' });
  late.release();
  await guard.check();
});

test('a kept message stays valid while more arrive; pause holds messages back, resume delivers them', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false });
  let first: UdpMessage | null = null;
  let count = 0;
  rx.on('message', (msg) => {
    if (first === null) first = msg.retain();
    count++;
  });
  tx.send(fill(pool, 0, 500), port, '127.0.0.1');
  await until(() => count === 1, 'the first datagram');
  for (let i = 1; i <= 300; i++) {
    tx.send(fill(pool, i, 500), port, '127.0.0.1');
    if (i % 50 === 0) await until(() => count === i + 1, `datagram ${i}`);
  }
  assert.equal(check(first!.bytes), 0, 'the kept message still holds datagram 0');
  first!.release();

  rx.pause();
  assert.equal(rx.isPaused(), true);
  const before = count;
  for (let i = 0; i < 10; i++) tx.send(fill(pool, 1000 + i, 100), port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(count, before, 'nothing while paused');
  rx.resume();
  await until(() => count === before + 10, 'the held datagrams after resume');
  await closeAll(rx, tx);
  await guard.check();
});

test('udp6: bind, send to ::1 and to an IPv4 host through its mapped address', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const rx = createUdpSocket({ type: 'udp6' });
  const { port, family } = await rx.bind(0, '::');
  assert.equal(family, 'IPv6');
  const tx = createUdpSocket({ type: 'udp6' });
  const from: string[] = [];
  rx.on('message', (msg, rinfo) => {
    assert.equal(check(msg.bytes), from.length);
    from.push(rinfo.address);
  });
  tx.send(fill(pool, 0, 200), port, '::1');
  await until(() => from.length === 1, 'the IPv6 datagram');
  tx.send(fill(pool, 1, 200), port, '127.0.0.1');
  await until(() => from.length === 2, 'the IPv4-mapped datagram');
  assert.equal(from[0], '::1');
  assert.match(from[1], /127\.0\.0\.1/);
  await closeAll(rx, tx);
  await guard.check();
});

test('the read quota: held messages stop the receive; releasing them brings the datagrams that waited in the kernel', { skip, timeout: 20000 }, () =>
  readQuotaHolds('message'),
);

test('a GSO batch the kernel refuses turns GSO off for the socket (reason in stats) and its datagrams still go, one by one', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false }, { gso: true });
  if (!tx.stats().gso.enabled) {
    await closeAll(rx, tx);
    return;
  }
  // SO_NO_CHECK (no UDP checksum): the kernel refuses UDP_SEGMENT sends with EINVAL.
  native().sockSetInt(tx.fd, 1 /* SOL_SOCKET */, 11 /* SO_NO_CHECK */, 1);
  const got: number[] = [];
  rx.on('message', (msg) => got.push(check(msg.bytes)));
  for (let i = 0; i < 10; i++) tx.send(fill(pool, i, 800), port, '127.0.0.1');
  await until(() => got.length === 10, 'the refused batch, sent again one by one');
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const s = tx.stats();
  assert.equal(s.gso.enabled, false);
  assert.match(s.gso.reason, /EINVAL/);
  assert.equal(s.gsoBatches, 0);
  assert.equal(s.datagramsOut, 10);
  await closeAll(rx, tx);
  await guard.check();
});

test('unref(): a bound socket waiting for datagrams lets the process exit; a referenced one holds it', { skip, timeout: 20000 }, () => {
  const index = require.resolve('../../src/index');
  const script = (unref: boolean) =>
    `const m = require(${JSON.stringify(index)}); const s = m.createUdpSocket({ type: 'udp4' });` +
    ` s.bind(0, '127.0.0.1').then(() => { ${unref ? 's.unref();' : ''} process.stdout.write('bound'); });`;
  const free = spawnSync(process.execPath, ['-e', script(true)], { encoding: 'utf8', timeout: 10000 });
  assert.equal(free.stdout, 'bound');
  assert.equal(free.status, 0, 'exited by itself');
  const held = spawnSync(process.execPath, ['-e', script(false)], { encoding: 'utf8', timeout: 1500 });
  assert.equal(held.stdout, 'bound');
  assert.equal(held.signal, 'SIGTERM', 'still running when the time was up');
});

test('send() of several buffers: one datagram of their bytes in order (up to 64 pieces), never merged into a GSO batch', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false });
  const got: Buffer[] = [];
  rx.on('message', (msg) => got.push(Buffer.from(msg.bytes)));
  const piece = (text: string) => {
    const b = pool.alloc(text.length);
    b.setLength(text.length);
    b.bytes.set(Buffer.from(text));
    return b;
  };
  const word = (i: number) => `w${String(i).padStart(2, '0')}.`;
  tx.send(piece('x'.repeat(50)), port, '127.0.0.1');
  tx.send([piece('head:'), piece('body:'), piece('tail')], port, '127.0.0.1');
  tx.send(piece('x'.repeat(50)), port, '127.0.0.1');
  tx.send(Array.from({ length: 20 }, (_, i) => piece(word(i))), port, '127.0.0.1'); // a large aux entry
  await until(() => got.length === 4, 'four datagrams');
  assert.deepEqual(got.map(String), ['x'.repeat(50), 'head:body:tail', 'x'.repeat(50), Array.from({ length: 20 }, (_, i) => word(i)).join('')]);
  const a = piece('a');
  assert.throws(() => tx.send([a, a], port, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' }, 'the same buffer twice');
  assert.throws(() => tx.send([], port, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' });
  const gone = piece('g');
  gone.release();
  assert.throws(() => tx.send([a, gone], port, '127.0.0.1'), { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.equal(a.lent, false, 'a refused send lends nothing');
  a.release();
  await closeAll(rx, tx);
  await guard.check();
});

test('sendSegments(): one buffer of datagrams end to end leaves as one UDP_SEGMENT send and arrives as each datagram; bad calls are typed errors', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false }, { gso: true });
  if (!tx.stats().gso.enabled) {
    // Where the kernel has no UDP_SEGMENT the call says so, typed.
    const buf = pool.alloc(100);
    buf.setLength(100);
    assert.throws(() => tx.sendSegments(buf, 10, port, '127.0.0.1'), { code: 'ERR_MAIO_BACKEND_UNAVAILABLE' });
    buf.release();
    await closeAll(rx, tx);
    return;
  }
  const seg = 1400;
  const lens = [...Array(45).fill(seg), 700]; // 63,700 bytes: 46 datagrams, the last short
  const total = lens.reduce((a, b) => a + b, 0);
  const buf = pool.alloc(total);
  buf.setLength(total);
  lens.forEach((len, seq) => {
    const one = fill(pool, seq, len);
    buf.bytes.set(one.bytes, seq * seg);
    one.release();
  });
  const got: { seq: number; len: number }[] = [];
  rx.on('message', (msg) => got.push({ seq: check(msg.bytes), len: msg.length }));
  let sent: Error | null | undefined;
  tx.sendSegments(buf, seg, port, '127.0.0.1', (err) => (sent = err));
  assert.equal(buf.lent, true, 'lent to the kernel until the send completes');
  await until(() => got.length === lens.length && sent !== undefined, 'the segmented buffer');
  assert.equal(sent, null);
  assert.deepEqual(got, lens.map((len, seq) => ({ seq, len })));
  const s = tx.stats();
  assert.equal(s.gsoBatches, 1);
  assert.equal(s.datagramsOut, lens.length);
  assert.equal(s.bytesOut, total);

  const b = pool.alloc(65536);
  b.setLength(65281);
  assert.throws(() => tx.sendSegments(b, 1400, port, '127.0.0.1'), { code: 'ERR_MAIO_DATAGRAM_TOO_LARGE' }, 'over 65,280 bytes');
  b.setLength(6500);
  assert.throws(() => tx.sendSegments(b, 100, port, '127.0.0.1'), { code: 'ERR_MAIO_DATAGRAM_TOO_LARGE' }, '65 segments');
  for (const bad of [0, -1, 1.5, 65508, NaN]) {
    assert.throws(() => tx.sendSegments(b, bad, port, '127.0.0.1'), { code: 'ERR_MAIO_OUT_OF_RANGE' }, `segmentSize ${bad}`);
  }
  assert.throws(() => tx.sendSegments(b, 1000), { code: 'ERR_MAIO_INVALID_ARG' }, 'no port on an unconnected socket');
  assert.throws(() => tx.sendSegments(b.bytes as never, 1000, port, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.equal(b.lent, false, 'a refused call leaves the buffer with the caller');

  // A segmented send the kernel refuses (SO_NO_CHECK: EINVAL) fails with that error; it is not cut up here.
  native().sockSetInt(tx.fd, 1 /* SOL_SOCKET */, 11 /* SO_NO_CHECK */, 1);
  let refused: Error | null | undefined;
  tx.sendSegments(b, 1000, port, '127.0.0.1', (err) => (refused = err));
  await until(() => refused !== undefined, 'the refused send');
  assert.equal((refused as { code?: string }).code, 'EINVAL');
  assert.equal(tx.stats().gso.enabled, true, 'a refused sendSegments() does not turn GSO off for send()');
  await closeAll(rx, tx);
  await guard.check();
});
