// UdpSocket's zero-copy sends on loopback, on both engines (SENDMSG_ZC on
// io_uring, sendmsg with MSG_ZEROCOPY on epoll): with zero-copy forced the
// datagrams arrive byte-exact and every notification says the kernel copied
// (local delivery always copies); 'auto' sees that and turns to plain sends;
// a zero-copy send's buffer stays lent until its notification, also inside
// its callback; close while zero-copy sends are with the kernel brings every
// buffer back. The proof that the zero-copy path is really taken (reported
// NOT copied) needs a device without local delivery: test/net/udp-zerocopy.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { BufferLentError, createPool, createUdpSocket, InvalidArgumentError, OutOfRangeError, type IoPool, type UdpSocket } from '../../src/index';
import { bounded, netSkip as skip, until } from '../net/helpers';

const SEG = 1400;

/** `count` datagrams of SEG bytes laid end to end in one buffer; datagram d holds (seq + d) and a pattern of it. */
function segments(pool: IoPool, seq: number, count: number) {
  const buf = pool.alloc(SEG * count);
  const b = buf.bytes;
  for (let d = 0; d < count; d++) {
    const s = seq + d;
    new DataView(b.buffer, b.byteOffset + d * SEG, 4).setUint32(0, s);
    for (let i = 4; i < SEG; i++) b[d * SEG + i] = (s * 31 + i * 7) & 0xff;
  }
  return buf;
}

/** The seq of a datagram made by segments(), or -1 when a byte is wrong. */
function check(bytes: Uint8Array): number {
  if (bytes.length !== SEG) return -1;
  const seq = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  for (let i = 4; i < SEG; i++) if (bytes[i] !== ((seq * 31 + i * 7) & 0xff)) return -1;
  return seq;
}

async function closeAll(...socks: UdpSocket[]): Promise<void> {
  await Promise.all(socks.map((s) => bounded(new Promise<void>((r) => s.close(r)), 'close')));
}

async function receiver(): Promise<[UdpSocket, number, Set<number>, { corrupt: number }]> {
  const rx = createUdpSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  const seen = new Set<number>();
  const bad = { corrupt: 0 };
  rx.on('message', (msg) => {
    const seq = check(msg.bytes);
    if (seq < 0) bad.corrupt++;
    else seen.add(seq);
  });
  const { port } = await rx.bind(0, '127.0.0.1');
  return [rx, port, seen, bad];
}

test("zeroCopy 'always' on loopback: GSO batches arrive byte-exact, every notification reports a copy", { skip, timeout: 30000 }, async () => {
  const pool = createPool({ size: 8 << 20 });
  const [rx, port, seen, bad] = await receiver();
  const tx = createUdpSocket({ type: 'udp4', pool, zeroCopy: 'always' });
  const rounds = 8;
  const perRound = 4;
  let seq = 0;
  let errors = 0;
  for (let r = 0; r < rounds; r++) {
    // sendSegments(): one buffer of 40 datagrams per send.
    for (let b = 0; b < perRound; b++) {
      tx.sendSegments(segments(pool, seq, 40), SEG, port, '127.0.0.1', (err) => {
        if (err) errors++;
      });
      seq += 40;
    }
    // send(): 16 datagrams of their own buffers, batched by the socket.
    for (let d = 0; d < 16; d++) tx.send(segments(pool, seq++, 1), port, '127.0.0.1');
    // Paced by the receiver: loopback drops nothing then.
    await until(() => seen.size === seq, `round ${r}: ${seq} datagrams`, 10000);
  }
  await until(() => tx.stats().sendsPending === 0, 'every notification');
  assert.equal(errors, 0);
  assert.equal(bad.corrupt, 0, 'every datagram arrived with its bytes');
  assert.equal(seen.size, seq);
  const z = tx.stats().zeroCopy;
  assert.equal(z.state, 'forced-zero-copy');
  assert.equal(z.zcSends, rounds * (perRound + 1), `every batch went zero-copy: ${JSON.stringify(z)}`);
  assert.equal(z.copiedSends, z.zcSends, 'local delivery copies every zero-copy send, and the kernel says so');
  assert.equal(z.notCopiedSends, 0);
  assert.equal(tx.stats().datagramsOut, seq);
  await closeAll(tx, rx);
  assert.equal(pool.stats().inUse, 0, 'every buffer back in the pool');
  pool.close();
});

test("zeroCopy 'auto' on loopback: the probes come back copied and the socket turns to plain sends", { skip, timeout: 30000 }, async () => {
  const pool = createPool({ size: 8 << 20 });
  const [rx, port, seen] = await receiver();
  const tx = createUdpSocket({ type: 'udp4', pool });
  assert.equal(tx.stats().zeroCopy.state, 'probing', "'auto' is the default");
  let seq = 0;
  for (let r = 0; r < 6; r++) {
    for (let b = 0; b < 4; b++) {
      tx.sendSegments(segments(pool, seq, 40), SEG, port, '127.0.0.1');
      seq += 40;
    }
    await until(() => tx.stats().sendsPending === 0 && seen.size === seq, `round ${r}`, 10000);
  }
  const z = tx.stats().zeroCopy;
  assert.equal(z.state, 'plain', z.reason);
  assert.match(z.reason, /copied 8 of 8/);
  assert.equal(z.zcSends, 8, 'only the probe went zero-copy');
  assert.equal(z.copiedSends, 8);
  assert.equal(z.plainSends, 24 - 8, 'the rest went plain');
  assert.equal(z.switches, 1);
  // Small sends never count as candidates.
  tx.send(segments(pool, seq++, 1), port, '127.0.0.1');
  await until(() => seen.size === seq, 'a small datagram');
  assert.equal(tx.stats().zeroCopy.zcSends, 8);
  await closeAll(tx, rx);
  assert.equal(pool.stats().inUse, 0);
  pool.close();
});

test('a zero-copy send keeps its buffer lent until the notification: touching it throws, also in its callback', { skip, timeout: 30000 }, async () => {
  const pool = createPool({ size: 4 << 20 });
  const [rx, port, seen] = await receiver();
  const tx = createUdpSocket({ type: 'udp4', pool, zeroCopy: 'always' });
  const buf = segments(pool, 0, 20);
  let inCallback: unknown = null;
  let called = false;
  tx.sendSegments(buf, SEG, port, '127.0.0.1', (err) => {
    assert.equal(err, null);
    called = true;
    // The result is in, the notification not yet handled: the kernel may still read the pages.
    try {
      void buf.bytes;
    } catch (e) {
      inCallback = e;
    }
  });
  assert.throws(() => buf.bytes, BufferLentError);
  assert.throws(() => buf.bytes.fill(0), BufferLentError);
  assert.throws(() => buf.release(), BufferLentError);
  assert.throws(() => tx.sendSegments(buf, SEG, port, '127.0.0.1'), BufferLentError);
  assert.throws(() => tx.send(buf, port, '127.0.0.1'), BufferLentError);
  await until(() => called && tx.stats().sendsPending === 0, 'the result and the notification');
  assert.ok(inCallback instanceof BufferLentError, `inside the callback: ${String(inCallback)}`);
  // After the notification the buffer went back to the pool (ownership went with the send).
  assert.equal(buf.released, true);
  await until(() => seen.size === 20, 'the datagrams');
  await closeAll(tx, rx);
  assert.equal(pool.stats().inUse, 0);
  pool.close();
});

test('close while zero-copy sends are with the kernel: callbacks run, every buffer comes back, then close', { skip, timeout: 30000 }, async () => {
  const pool = createPool({ size: 8 << 20 });
  const [rx, port] = await receiver();
  const tx = createUdpSocket({ type: 'udp4', pool, zeroCopy: 'always' });
  await tx.bind(0, '127.0.0.1');
  let calls = 0;
  for (let b = 0; b < 16; b++) tx.sendSegments(segments(pool, b * 20, 20), SEG, port, '127.0.0.1', () => calls++);
  // The ring's flush (a microtask) hands them to the kernel; their completions need a loop turn.
  await new Promise<void>((r) => queueMicrotask(r));
  await new Promise<void>((r) => queueMicrotask(r));
  assert.ok(tx.stats().sendsPending > 0, 'sends in flight at close');
  assert.ok(pool.stats().lent > 0, 'buffers lent at close');
  let closed = false;
  tx.close(() => (closed = true));
  await until(() => closed, "'close'");
  assert.equal(calls, 16, 'every callback ran');
  assert.equal(pool.stats().lent, 0, 'nothing lent after close');
  assert.equal(pool.stats().inUse, 0, 'every buffer back in the pool');
  await closeAll(rx);
  pool.close();
});

test("zeroCopy 'never' sends plain; bad zeroCopy options are typed errors", { skip }, async () => {
  const pool = createPool({ size: 4 << 20 });
  const [rx, port, seen] = await receiver();
  const tx = createUdpSocket({ type: 'udp4', pool, zeroCopy: 'never' });
  tx.sendSegments(segments(pool, 0, 40), SEG, port, '127.0.0.1');
  await until(() => seen.size === 40 && tx.stats().sendsPending === 0, 'the datagrams');
  const z = tx.stats().zeroCopy;
  assert.equal(z.state, 'forced-plain');
  assert.equal(z.zcSends, 0);
  assert.equal(z.plainSends, 1);
  await closeAll(tx, rx);
  pool.close();
  assert.throws(() => createUdpSocket({ type: 'udp4', zeroCopy: true as never }), InvalidArgumentError);
  assert.throws(() => createUdpSocket({ type: 'udp4', zeroCopy: 'yes' as never }), InvalidArgumentError);
  assert.throws(() => createUdpSocket({ type: 'udp4', zeroCopyMinBytes: -1 }), OutOfRangeError);
  assert.throws(() => createUdpSocket({ type: 'udp4', zeroCopyMinBytes: 1.5 }), InvalidArgumentError);
  assert.throws(() => createUdpSocket({ type: 'udp4', zeroCopyProbeSends: 0 }), OutOfRangeError);
});
