// sendSegmentsShared(): one pool buffer of datagrams sent several times at once (counted lends),
// each send arriving whole; the buffer stays the caller's, unreadable while a send holds it, and
// OWNED again after the last. sendsPending counts sends without making a stats() snapshot.
import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import { defaultPool, type UdpSocket } from '../../src/index';
import { bounded, netSkip as skip, poolGuard, until } from '../net/helpers';
import { check, closeAll, fill, pair } from './datagrams';

const SEG = 1400;
const COUNT = 20; // datagrams per buffer

/** A receiver and a sender connected to it with GSO on; null (the test skipped, with the reason) where the kernel refuses UDP_SEGMENT. */
async function connectedPair(t: TestContext): Promise<[UdpSocket, UdpSocket] | null> {
  const [rx, tx, port] = await pair({ gro: false }, { gso: true });
  await tx.connect(port, '127.0.0.1');
  const gso = tx.stats().gso;
  if (gso.enabled) return [rx, tx];
  await closeAll(rx, tx);
  t.skip(`UDP_SEGMENT is off here: ${gso.reason}`);
  return null;
}

/** One buffer of COUNT sequence-numbered datagrams end to end. */
function segments() {
  const pool = defaultPool();
  const buf = pool.alloc(COUNT * SEG);
  buf.setLength(COUNT * SEG);
  for (let seq = 0; seq < COUNT; seq++) {
    const one = fill(pool, seq, SEG);
    buf.bytes.set(one.bytes, seq * SEG);
    one.release();
  }
  return buf;
}

test('sendSegmentsShared(): one buffer sent three times in one turn arrives three times; it stays the caller\'s, OWNED again after the last send', { skip, timeout: 20000 }, async (t) => {
  const guard = poolGuard();
  const socks = await connectedPair(t);
  if (!socks) return;
  const [rx, tx] = socks;
  const seen = new Map<number, number>();
  rx.on('message', (msg) => {
    const seq = check(msg.bytes);
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
  });
  const buf = segments();
  const results: (Error | null)[] = [];
  for (let i = 0; i < 3; i++) tx.sendSegmentsShared(buf, SEG, undefined, undefined, (err) => results.push(err));
  assert.equal(tx.sendsPending, 3, 'three sends queued');
  assert.equal(tx.stats().sendsPending, 3);
  assert.equal(buf.lent, true);
  assert.throws(() => buf.bytes, { code: 'ERR_MAIO_BUFFER_LENT' }, 'unreadable while a send holds it');
  assert.throws(() => buf.release(), { code: 'ERR_MAIO_BUFFER_LENT' }, 'not released while a send holds it');
  await until(() => results.length === 3, 'the three sends');
  assert.deepEqual(results, [null, null, null]);
  assert.equal(tx.sendsPending, 0);
  assert.equal(buf.lent, false, 'OWNED again after the last send');
  assert.equal(buf.released, false);
  assert.equal(check(buf.bytes.subarray(SEG, 2 * SEG)), 1, 'its bytes are the caller\'s again, unchanged');
  const s = tx.stats();
  assert.equal(s.gsoBatches, 3);
  assert.equal(s.datagramsOut, 3 * COUNT);
  await until(() => [...seen.values()].reduce((a, b) => a + b, 0) === 3 * COUNT, 'every datagram of the three sends');
  for (let seq = 0; seq < COUNT; seq++) assert.equal(seen.get(seq), 3, `datagram ${seq} arrived once per send`);
  assert.equal(seen.has(-1), false, 'no datagram arrived damaged');
  // Sent once more after it came back, then released by its owner.
  let again: Error | null | undefined;
  tx.sendSegmentsShared(buf, SEG, undefined, undefined, (err) => (again = err));
  await until(() => again !== undefined, 'the send after the buffer came back');
  assert.equal(again, null);
  buf.release();
  await closeAll(rx, tx);
  await guard.check();
});

test('sendSegmentsShared(): a buffer given up to sendSegments() is refused; a close drops queued shared sends and leaves the buffer with its owner', { skip, timeout: 20000 }, async (t) => {
  const guard = poolGuard();
  const socks = await connectedPair(t);
  if (!socks) return;
  const [rx, tx] = socks;
  const given = segments();
  tx.sendSegments(given, SEG);
  assert.throws(() => tx.sendSegmentsShared(given, SEG), { code: 'ERR_MAIO_BUFFER_RELEASED' }, 'given up: no longer the caller\'s to share');
  assert.throws(() => tx.sendSegmentsShared(new Uint8Array(SEG) as never, SEG), { code: 'ERR_MAIO_INVALID_ARG' });

  const buf = segments();
  assert.throws(() => tx.sendSegmentsShared(buf, 0), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  assert.throws(() => tx.sendSegmentsShared(buf, SEG, 9, '127.0.0.1'), { code: 'ERR_MAIO_INVALID_ARG' }, 'connected: no address');
  assert.equal(buf.lent, false, 'a refused call leaves the buffer as it was');
  await until(() => tx.sendsPending === 0, 'the given-up buffer\'s send');
  const errs: (Error | null)[] = [];
  tx.sendSegmentsShared(buf, SEG, undefined, undefined, (err) => errs.push(err));
  tx.sendSegmentsShared(buf, SEG, undefined, undefined, (err) => errs.push(err));
  await bounded(new Promise<void>((r) => tx.close(r)), 'close'); // before the ring's flush: both still queued
  assert.deepEqual(errs.map((e) => (e as { code?: string } | null)?.code), ['ERR_MAIO_CLOSED', 'ERR_MAIO_CLOSED']);
  assert.equal(buf.lent, false);
  assert.equal(buf.released, false, 'still the caller\'s');
  buf.release();
  await closeAll(rx);
  await guard.check();
});
