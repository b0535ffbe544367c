// The bookkeeping both rings share (src/ring/slots.ts): aux slots, pool slots, the pre-flush queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUX_BYTES, AUX_LARGE_BYTES, AUX_LARGE_SLOT, AUX_SLOT, AUX_TOTAL, AuxSlots, PoolSlots, PreFlushQueue } from '../../src/ring/slots';
import { MAX_POOLS } from '../../src/core/native';

test('aux slots: every slot once, low slots first, then -1; a free slot comes back; bad frees are typed errors', () => {
  const aux = new AuxSlots();
  assert.equal(aux.bytes.length, AUX_TOTAL);
  const got: number[] = [];
  for (let off = aux.alloc(); off >= 0; off = aux.alloc()) got.push(off);
  assert.equal(got.length, AUX_BYTES / AUX_SLOT);
  assert.deepEqual(got.slice(0, 3), [0, AUX_SLOT, 2 * AUX_SLOT]);
  assert.equal(new Set(got).size, got.length);
  aux.free(5 * AUX_SLOT);
  assert.equal(aux.alloc(), 5 * AUX_SLOT);
  aux.free(7 * AUX_SLOT);
  for (const bad of [7 * AUX_SLOT, 3, -AUX_SLOT, AUX_BYTES, NaN]) {
    assert.throws(() => aux.free(bad), { code: 'ERR_MAIO_INVALID_ARG' }, `free(${bad})`);
  }
  const n = aux.writeSockaddr(0, '127.0.0.1', 80);
  assert.equal(n, 16); // sizeof(struct sockaddr_in)
});

test('large aux slots: after the small ones, each once, then -1; bad frees are typed errors', () => {
  const aux = new AuxSlots();
  const got: number[] = [];
  for (let off = aux.allocLarge(); off >= 0; off = aux.allocLarge()) got.push(off);
  assert.equal(got.length, AUX_LARGE_BYTES / AUX_LARGE_SLOT);
  assert.equal(got[0], AUX_BYTES);
  assert.ok(got.every((o) => o >= AUX_BYTES && o + AUX_LARGE_SLOT <= AUX_TOTAL));
  assert.ok(aux.alloc() >= 0, 'small slots are separate');
  aux.freeLarge(got[3]);
  assert.equal(aux.allocLarge(), got[3]);
  for (const bad of [0, AUX_BYTES + 1, AUX_TOTAL, NaN]) {
    assert.throws(() => aux.freeLarge(bad), { code: 'ERR_MAIO_INVALID_ARG' }, `freeLarge(${bad})`);
  }
});

test('pool slots: a pool detached with operations in flight keeps its slot until the last completes', () => {
  const dropped: number[] = [];
  const slots = new PoolSlots((i) => dropped.push(i));
  const a = slots.claim();
  slots.occupy(a);
  const b = slots.claim();
  assert.notEqual(a, b);
  slots.occupy(b);

  slots.opStarted(a);
  slots.opStarted(a);
  slots.detach(a);
  assert.deepEqual(dropped, [], 'kept while operations use it');
  assert.equal(slots.attached[a], 1);
  slots.detach(a); // twice: still one drop
  slots.opDone(a);
  assert.deepEqual(dropped, []);
  slots.opDone(a);
  assert.deepEqual(dropped, [a]);
  assert.equal(slots.attached[a], 0);

  slots.detach(b); // idle: dropped at once
  assert.deepEqual(dropped, [a, b]);
  slots.detach(b); // not attached: nothing
  assert.deepEqual(dropped, [a, b]);
  for (const bad of [-1, MAX_POOLS, 1.5, NaN]) {
    assert.throws(() => slots.detach(bad), { code: 'ERR_MAIO_OUT_OF_RANGE' }, `detach(${bad})`);
  }
});

test('pool slots: all 64 taken is a typed error', () => {
  const slots = new PoolSlots(() => {});
  for (let i = 0; i < MAX_POOLS; i++) slots.occupy(slots.claim());
  assert.throws(() => slots.claim(), { code: 'ERR_MAIO_OUT_OF_RANGE' });
});

test('pre-flush queue: each object once in order, those queued meanwhile too (also from a nested run); a throw goes to the next tick and the rest still run', (t) => {
  const q = new PreFlushQueue();
  assert.equal(q.pending, false);
  const calls: string[] = [];
  const boom = new Error('boom');
  const late = { preFlush: () => calls.push('late') };
  const nested = { preFlush: () => calls.push('nested') };
  q.add({
    preFlush() {
      calls.push('a');
      q.add(late);
    },
  });
  q.add({
    preFlush() {
      calls.push('b');
      throw boom;
    },
  });
  q.add({
    preFlush() {
      calls.push('c');
      // A full batch flushes from inside a preFlush: that flush runs the queue again.
      q.add(nested);
      q.run();
    },
  });
  // Catch what run() defers instead of letting it reach the test runner as an uncaught exception.
  const deferred: [(...a: unknown[]) => void, unknown[]][] = [];
  const tickMock = t.mock.method(process, 'nextTick', (fn: (...a: unknown[]) => void, ...args: unknown[]) => {
    deferred.push([fn, args]);
  });
  try {
    q.run();
  } finally {
    tickMock.mock.restore();
  }
  assert.deepEqual(calls, ['a', 'b', 'c', 'late', 'nested']);
  assert.equal(q.pending, false);
  assert.equal(deferred.length, 1);
  assert.throws(() => deferred[0][0](...deferred[0][1]), (e) => e === boom);
  // The emptied list is reused: a later run calls only what was added since.
  const again: string[] = [];
  const x = { preFlush: () => again.push('x') };
  const y = { preFlush: () => again.push('y') };
  q.add(x);
  q.add(y);
  q.run();
  q.add(x);
  q.run();
  q.run();
  assert.deepEqual(again, ['x', 'y', 'x']);
  q.add(late);
  assert.equal(q.pending, true);
  q.clear();
  assert.equal(q.pending, false);
  q.run();
  assert.deepEqual(calls, ['a', 'b', 'c', 'late', 'nested']);
});
