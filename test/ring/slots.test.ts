// The bookkeeping both rings share (src/ring/slots.ts): aux slots and pool slots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUX_BYTES, AUX_SLOT, AuxSlots, PoolSlots } from '../../src/ring/slots';
import { MAX_POOLS } from '../../src/core/native';

test('aux slots: every slot once, low slots first, then -1; a free slot comes back; bad frees are typed errors', () => {
  const aux = new AuxSlots();
  assert.equal(aux.bytes.length, AUX_BYTES);
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

test('pool slots: a pool detached with operations in flight keeps its slot until the last completes', () => {
  const dropped: number[] = [];
  const slots = new PoolSlots((i) => dropped.push(i));
  const a = slots.claim();
  slots.occupy(a, 4096);
  const b = slots.claim();
  assert.notEqual(a, b);
  slots.occupy(b);
  assert.equal(slots.size[a], 4096);

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
  assert.equal(slots.size[a], 0);

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
