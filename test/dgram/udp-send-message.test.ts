// send(msg): a received UdpMessage goes out again from the pool buffer it
// arrived in, on both backends. Datagrams relayed so arrive byte-exact, no
// pool buffer is allocated for them (pool.alloc is counted), a GRO buffer's
// datagrams leave as one UDP_SEGMENT batch, the shared buffer goes back only
// after its last view is released and its last send completed, and
// forwardUdp() does the same between two sockets.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createUdpSocket, defaultPool, forwardUdp, type IoPool, type UdpMessage, type UdpSocket } from '../../src/index';
import { bounded, netSkip as skip, poolGuard, until } from '../net/helpers';
import { check, fill } from './datagrams';


async function closeAll(...socks: UdpSocket[]): Promise<void> {
  await Promise.all(socks.map((s) => bounded(new Promise<void>((r) => s.close(r)), 'close')));
}

/** Counts pool.alloc calls from now on: a relay that copied would allocate. */
function countAllocs(pool: IoPool): { count: number; stop(): void } {
  const orig = pool.alloc;
  const c = {
    count: 0,
    stop: () => {
      pool.alloc = orig;
    },
  };
  pool.alloc = function (this: IoPool, ...args: Parameters<IoPool['alloc']>) {
    c.count++;
    return orig.apply(this, args);
  } as IoPool['alloc'];
  return c;
}

test('a GRO batch relayed with send(msg) leaves as a GSO batch from the same pool buffer, byte-exact', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const tx = createUdpSocket({ type: 'udp4' });
  const relay = createUdpSocket({ type: 'udp4', gro: true });
  const sink = createUdpSocket({ type: 'udp4', gro: false });
  const { port: relayPort } = await relay.bind(0, '127.0.0.1');
  const { port: sinkPort } = await sink.bind(0, '127.0.0.1');
  await tx.bind(0, '127.0.0.1');
  if (!relay.stats().gro.enabled || !tx.stats().gso.enabled) {
    await closeAll(tx, relay, sink);
    return assert.ok(relay.stats().gro.reason || tx.stats().gso.reason, 'off, with a reason');
  }
  const lens = [...Array(30).fill(1200), 500];
  const got: [number, number][] = [];
  sink.on('message', (m) => got.push([check(m.bytes), m.length]));
  let allocs: ReturnType<typeof countAllocs> | null = null;
  relay.on('message', (m) => {
    allocs ??= countAllocs(pool);
    relay.send(m, sinkPort, '127.0.0.1');
    assert.throws(() => m.bytes, { code: 'ERR_MAIO_BUFFER_RELEASED' }, 'a sent message is given up');
  });
  lens.forEach((len, seq) => tx.send(fill(pool, seq, len), relayPort, '127.0.0.1')); // one turn: one GSO batch
  await until(() => got.length === lens.length, 'the relayed batch');
  allocs!.stop();
  assert.deepEqual(got, lens.map((len, seq) => [seq, len]));
  assert.equal(allocs!.count, 0, 'no pool buffer allocated to relay');
  const rs = relay.stats();
  assert.ok(rs.groBatches >= 1, 'the relay received GRO batches');
  assert.equal(rs.messagesSent, lens.length, 'every datagram sent from its receive buffer');
  assert.equal(rs.datagramsOut, lens.length);
  assert.ok(rs.gsoBatches >= 1 && rs.gsoBatches <= rs.groBatches, `GRO batches went on as GSO batches (gro ${rs.groBatches}, gso ${rs.gsoBatches})`);
  await closeAll(tx, relay, sink);
  await guard.check();
});

test('a GRO buffer shared by a sent message and held ones: siblings stay readable, the buffer returns after the last release and send', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const tx = createUdpSocket({ type: 'udp4' });
  const relay = createUdpSocket({ type: 'udp4', gro: true });
  const sink = createUdpSocket({ type: 'udp4', gro: false });
  const { port: relayPort } = await relay.bind(0, '127.0.0.1');
  const { port: sinkPort } = await sink.bind(0, '127.0.0.1');
  await tx.bind(0, '127.0.0.1');
  if (!relay.stats().gro.enabled || !tx.stats().gso.enabled) {
    await closeAll(tx, relay, sink);
    return;
  }
  const kept: UdpMessage[] = [];
  relay.on('message', (m) => kept.push(m.retain()));
  for (let seq = 0; seq < 8; seq++) tx.send(fill(pool, seq, 1000), relayPort, '127.0.0.1');
  await until(() => kept.length === 8, 'the batch');
  assert.ok(relay.stats().groBatches >= 1);
  const got: number[] = [];
  sink.on('message', (m) => got.push(check(m.bytes)));
  const sent = new Promise<Error | null>((resolve) => relay.send(kept[0], sinkPort, '127.0.0.1', resolve));
  // The slot is lent now, but only message 0's region is with the kernel.
  assert.equal(check(kept[1].bytes), 1, 'a sibling stays readable while one is sent');
  assert.throws(() => relay.send(kept[0], sinkPort, '127.0.0.1'), { code: 'ERR_MAIO_BUFFER_RELEASED' }, 'sent twice');
  assert.throws(() => kept[0].release(), { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.equal(await bounded(sent, 'send callback'), null);
  for (const m of kept.slice(1, 7)) m.release();
  const held = relay.stats().receiveBytesHeld;
  assert.ok(held > 0, 'the last view holds the buffer');
  relay.send(kept[7], sinkPort, '127.0.0.1'); // the last view goes out: the buffer returns when that send completes
  await until(() => got.length === 2, 'both sent datagrams');
  assert.deepEqual(got.sort(), [0, 7]);
  await until(() => relay.stats().receiveBytesHeld === 0, 'the shared buffer back after its last send');
  await closeAll(tx, relay, sink);
  await guard.check();
});

test('send(msg): typed errors for a message of another pool, a connected socket with an address, an unconnected one without', { skip, timeout: 20000 }, async () => {
  const other = (await import('../../src/index')).createPool({ size: 1 << 20 });
  const tx = createUdpSocket({ type: 'udp4' });
  const rx = createUdpSocket({ type: 'udp4' });
  const foreign = createUdpSocket({ type: 'udp4', pool: other });
  const conn = createUdpSocket({ type: 'udp4' });
  const { port } = await rx.bind(0, '127.0.0.1');
  await conn.connect(port, '127.0.0.1');
  let msg: UdpMessage | null = null;
  rx.on('message', (m) => (msg = m.retain()));
  tx.send(fill(defaultPool(), 1, 100), port, '127.0.0.1');
  await until(() => msg !== null, 'a datagram');
  assert.throws(() => foreign.send(msg!, port, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => conn.send(msg!, port, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => tx.send(msg!), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => tx.send(msg!, 70000), { code: 'ERR_MAIO_BAD_PORT' });
  assert.equal(check(msg!.bytes), 1, 'a refused send leaves the message as it was');
  assert.throws(() => tx.send(msg!.bytes.subarray(1), port), { code: 'ERR_MAIO_INVALID_ARG' }, 'a subarray is not the message');
  assert.throws(() => tx.send(new Uint8Array(4) as never, port), { code: 'ERR_MAIO_INVALID_ARG' });
  const view = msg!.bytes;
  msg!.release();
  assert.throws(() => tx.send(msg!, port), { code: 'ERR_MAIO_BUFFER_RELEASED' });
  assert.throws(() => tx.send(view, port), { code: 'ERR_MAIO_INVALID_ARG' }, 'the view of a released message');
  await closeAll(tx, rx, foreign, conn);
  other.close();
});

test('send(msg.bytes): the view of a received message sends the message itself, byte-exact, no allocation', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const tx = createUdpSocket({ type: 'udp4' });
  const relay = createUdpSocket({ type: 'udp4' });
  const sink = createUdpSocket({ type: 'udp4' });
  const { port: relayPort } = await relay.bind(0, '127.0.0.1');
  const { port: sinkPort } = await sink.bind(0, '127.0.0.1');
  const got: number[] = [];
  sink.on('message', (m) => got.push(check(m.bytes)));
  relay.on('message', (m) => {
    const bytes = m.bytes;
    if (check(bytes) >= 0) relay.send(bytes, sinkPort, '127.0.0.1'); // look, then pass the view on
  });
  for (let seq = 0; seq < 5; seq++) tx.send(fill(pool, seq, 300), relayPort, '127.0.0.1');
  const relayAllocs = countAllocs(pool);
  await until(() => got.length === 5, 'the relayed datagrams');
  relayAllocs.stop();
  assert.deepEqual(got.sort((a, b) => a - b), [0, 1, 2, 3, 4]);
  assert.equal(relayAllocs.count, 0);
  assert.equal(relay.stats().messagesSent, 5);
  await closeAll(tx, relay, sink);
  await guard.check();
});

test('forwardUdp(a, b): datagrams on a leave b byte-exact from their pool buffers; stats; bad arguments are typed errors', { skip, timeout: 20000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const tx = createUdpSocket({ type: 'udp4' });
  const a = createUdpSocket({ type: 'udp4' });
  const b = createUdpSocket({ type: 'udp4' });
  const sink = createUdpSocket({ type: 'udp4', gro: false });
  const { port: aPort } = await a.bind(0, '127.0.0.1');
  const { port: sinkPort } = await sink.bind(0, '127.0.0.1');
  await b.connect(sinkPort, '127.0.0.1');
  assert.throws(() => forwardUdp(a, a), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => forwardUdp(a, b, { port: 9 }), { code: 'ERR_MAIO_INVALID_ARG' }, 'b is connected');
  assert.throws(() => forwardUdp(a, tx), { code: 'ERR_MAIO_INVALID_ARG' }, 'no destination');
  assert.throws(() => forwardUdp(a, {} as UdpSocket), { code: 'ERR_MAIO_INVALID_ARG' });
  const f = forwardUdp(a, b);
  const got: number[] = [];
  sink.on('message', (m) => got.push(check(m.bytes)));
  const total = 300;
  let sent = 0;
  while (sent < total) {
    const upTo = Math.min(total, sent + 50);
    for (; sent < upTo; sent++) tx.send(fill(pool, sent, 100 + (sent % 700)), aPort, '127.0.0.1');
    await until(() => got.length === sent, `datagrams up to ${sent}`);
  }
  assert.deepEqual(got, [...Array(total).keys()]);
  const s = f.stats();
  assert.equal(s.datagrams, total);
  assert.equal(s.bytes, [...Array(total).keys()].reduce((n, i) => n + 100 + (i % 700), 0));
  assert.equal(s.dropped, 0);
  assert.equal(b.stats().messagesSent, total);
  f.stop();
  await closeAll(tx, a, b, sink);
  await guard.check();
});
