// A connected socket's sendSegments() buffers go as plain SENDs with the socket's own
// UDP_SEGMENT size (set once, as a C sender does); every other send on the socket then
// carries its own size, so mixed segment sizes, a short last segment, single datagrams
// longer than the socket's size, per-turn batches and zero-copy sends all arrive whole.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { defaultPool, type IoBuffer, type UdpSocket } from '../../src/index';
import { netSkip as skip, poolGuard, until } from '../net/helpers';
import { check, closeAll, fill, pair } from './datagrams';

/** One pool buffer of datagrams end to end, seq first.. with the given lengths. */
function segments(first: number, lens: number[]): IoBuffer {
  const pool = defaultPool();
  const total = lens.reduce((a, b) => a + b, 0);
  const buf = pool.alloc(total).setLength(total);
  let at = 0;
  lens.forEach((len, k) => {
    const one = fill(pool, first + k, len);
    buf.bytes.set(one.bytes, at);
    one.release();
    at += len;
  });
  return buf;
}

/** What arrives at rx: seq -> length (-1: damaged bytes). */
function collect(rx: UdpSocket): Map<number, number> {
  const seen = new Map<number, number>();
  rx.on('message', (msg) => {
    const seq = check(msg.bytes);
    seen.set(seq, seq < 0 ? -1 : msg.bytes.length);
  });
  return seen;
}

const times = (n: number, len: number): number[] => new Array<number>(n).fill(len);

test('connected sendSegments(): SENDs with the socket\'s own segment size; mixed sizes, a short last segment and long single datagrams arrive whole', { skip, timeout: 20000 }, async () => {
  const guard = poolGuard();
  const [rx, tx, port] = await pair({ gro: false, readBufferSize: 8192 }, { gso: true, zeroCopy: 'never' });
  if (!tx.stats().gso.enabled) return void (await closeAll(rx, tx));
  await tx.connect(port, '127.0.0.1');
  const seen = collect(rx);
  const expected = new Map<number, number>();
  const errs: (Error | null)[] = [];
  const cb = (err: Error | null): void => void errs.push(err);
  const expect = (first: number, lens: number[]): void => lens.forEach((len, k) => expected.set(first + k, len));
  // One turn: the first buffer sets the socket's size (1,400, a short last one);
  // the others differ from it and must keep their own.
  const a = [...times(19, 1400), 700];
  tx.sendSegments(segments(0, a), 1400, undefined, undefined, cb);
  expect(0, a);
  const b = times(10, 1000);
  tx.sendSegments(segments(100, b), 1000, undefined, undefined, cb);
  expect(100, b);
  tx.send(fill(defaultPool(), 200, 3000), undefined, undefined, cb); // one datagram, longer than the socket's size
  expected.set(200, 3000);
  for (let i = 0; i < 5; i++) tx.send(fill(defaultPool(), 300 + i, 500), undefined, undefined, cb); // a per-turn GSO batch of 500s
  expect(300, times(5, 500));
  await until(() => errs.length === 8, 'the first turn\'s sends');
  // Later turns: the socket's size again (a SEND), and a long datagram alone.
  const c = times(30, 1400);
  tx.sendSegments(segments(400, c), 1400, undefined, undefined, cb);
  expect(400, c);
  await until(() => errs.length === 9, 'the second SEND');
  tx.send(fill(defaultPool(), 500, 5000), undefined, undefined, cb);
  expected.set(500, 5000);
  await until(() => errs.length === 10, 'the long datagram');
  assert.deepEqual(errs, new Array(10).fill(null));
  await until(() => seen.size >= expected.size, 'every datagram');
  assert.deepEqual(new Map([...seen].sort((x, y) => x[0] - y[0])), expected, 'each datagram arrived once, whole, with its own length');
  const s = tx.stats();
  assert.equal(s.socketSegmentSends, 2, 'the two buffers of the socket\'s size went as SENDs, the 1,000-byte one did not');
  // The per-turn batching takes the 3,000-byte datagram with the first 500 (only the last may be shorter), then the other four.
  assert.equal(s.gsoBatches, 5, 'three sendSegments() buffers, 3,000 + 500, and 4 x 500');
  assert.equal(s.datagramsOut, expected.size);
  await closeAll(rx, tx);
  await guard.check();
});

test('sendSegments() unconnected or zero-copy: SENDMSG with a cmsg, never the socket\'s size', { skip, timeout: 20000 }, async () => {
  const guard = poolGuard();
  const [rx, tx, port] = await pair({ gro: false }, { gso: true });
  const [rx2, txZc, port2] = await pair({ gro: false }, { gso: true, zeroCopy: 'always' });
  if (!tx.stats().gso.enabled) return void (await closeAll(rx, tx, rx2, txZc));
  await txZc.connect(port2, '127.0.0.1');
  const seen = collect(rx);
  const seen2 = collect(rx2);
  const errs: (Error | null)[] = [];
  const cb = (err: Error | null): void => void errs.push(err);
  tx.sendSegments(segments(0, times(12, 1400)), 1400, port, '127.0.0.1', cb);
  txZc.sendSegments(segments(0, times(20, 1400)), 1400, undefined, undefined, cb); // 28,000 bytes: zero-copy
  await until(() => errs.length === 2, 'the sends');
  assert.deepEqual(errs, [null, null]);
  await until(() => seen.size === 12 && seen2.size === 20, 'every datagram');
  for (const [seq, len] of [...seen, ...seen2]) assert.equal(len, 1400, `datagram ${seq} whole`);
  assert.equal(tx.stats().socketSegmentSends, 0, 'unconnected: SENDMSG');
  assert.equal(txZc.stats().socketSegmentSends, 0, 'zero-copy: SENDMSG_ZC');
  assert.equal(txZc.stats().zeroCopy.zcSends, 1);
  await closeAll(rx, tx, rx2, txZc);
  await guard.check();
});
