// Strict mode (an ArrayBuffer per allocation, detached on release) and zeroOnRelease.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPool } from '../../src/index';
import { BufferReleasedError } from '../../src/core/errors';
import { kLend, kReturn, kUncheckedBytes } from '../../src/core/symbols';
import { LEND_TRANSFER } from '../../src/pool/pool';
import { native } from '../../src/core/native';

const KiB = 1024;

test('strict: a view taken before release reads length 0 after release', () => {
  const pool = createPool({ size: 64 * KiB, lock: false, register: false, strict: true, classes: [{ size: 4096, count: 4 }] });
  const a = pool.alloc(100);
  const view = a.bytes;
  view.fill(7);
  assert.equal(view.length, 100);
  assert.equal(view.buffer.byteLength, 4096, 'its own ArrayBuffer, one slot long');
  assert.equal(view.byteOffset, 0);
  const wide = new Uint8Array(view.buffer);
  a.release();
  assert.equal(view.length, 0);
  assert.equal(view.byteLength, 0);
  assert.equal(wide.length, 0);
  assert.equal(view[0], undefined);
  assert.throws(() => a.bytes, BufferReleasedError);
  // The slot's next owner gets a fresh view of the same memory.
  const b = pool.alloc(100);
  assert.equal(b.offset, a.offset);
  assert.equal(b.bytes[0], 7, 'same memory (no zeroOnRelease)');
  assert.notEqual(b.bytes.buffer, view.buffer);
  b.release();
  pool.close();
});

test('strict: release by the pool after a transfer lend also detaches', () => {
  const pool = createPool({ size: 64 * KiB, lock: false, register: false, strict: true, classes: [{ size: 4096, count: 1 }] });
  const a = pool.alloc(10);
  const view = a.bytes;
  pool[kLend](a, LEND_TRANSFER);
  assert.equal(pool[kUncheckedBytes](a).length, 10, 'the data path still reaches the bytes while lent');
  pool[kReturn](a);
  assert.equal(view.length, 0);
  assert.equal(pool.stats().strict, true);
  pool.close();
});

test('strict: the buffer at offset 0 overlaps the region ArrayBuffer (same start pointer) safely', () => {
  // V8 once aborted on two external ArrayBuffers with one backing-store pointer;
  // Node 20 wraps external memory per buffer, so this must just work.
  const n = native();
  const r = n.poolCreate({ size: 64 * KiB, lock: false });
  const views = Array.from({ length: 64 }, (_, i) => n.poolStrictView(r.handle, (i % 4) * 4096, 8192));
  const atZero = n.poolStrictView(r.handle, 0, 64 * KiB);
  new Uint8Array(atZero)[5] = 42;
  assert.equal(new Uint8Array(r.region)[5], 42);
  assert.equal(new Uint8Array(views[0])[5], 42);
  for (const v of views) n.poolDetachView(v);
  n.poolDetachView(atZero);
  assert.equal(new Uint8Array(r.region)[5], 42, 'the region is untouched by detaching views');
  n.poolClose(r.handle);

  const pool = createPool({ size: 64 * KiB, lock: false, register: false, strict: true, classes: [{ size: 4096, count: 2 }] });
  const first = pool.alloc(4096);
  assert.equal(first.offset, 0);
  first.bytes[0] = 1;
  first.release();
  pool.close();
});

test('zeroOnRelease wipes the bytes before the slot is reused', () => {
  for (const strict of [false, true]) {
    const pool = createPool({
      size: 64 * KiB,
      lock: false,
      register: false,
      strict,
      zeroOnRelease: true,
      classes: [{ size: 256, count: 1 }],
    });
    const a = pool.alloc(256);
    const keep = a.bytes;
    a.bytes.fill(0xee);
    a.release();
    if (!strict) assert.ok(keep.every((x) => x === 0), 'an old view (default mode) sees zeros');
    const b = pool.alloc(256);
    assert.ok(b.bytes.every((x) => x === 0));
    assert.equal(pool.stats().zeroOnRelease, true);
    b.release();
    pool.close();
  }
});

test('strict allocWait hands out a buffer with its own view on release', async () => {
  const pool = createPool({ size: 64 * KiB, lock: false, register: false, strict: true, classes: [{ size: 256, count: 1 }] });
  const a = pool.alloc(1);
  const w = pool.allocWait(5);
  a.release();
  const b = await w;
  assert.equal(b.bytes.length, 5);
  assert.equal(b.bytes.buffer.byteLength, 256);
  b.release();
  pool.close();
});
