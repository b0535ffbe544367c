// Every ownership rule of IoPool/IoBuffer, and the typed error (with its code) for each violation.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPool, defaultPool, IoBuffer, IoPool } from '../../src/index';
import {
  AbortError,
  BufferForeignError,
  BufferLentError,
  BufferReleasedError,
  BufferTooLargeError,
  ClosedError,
  InvalidArgumentError,
  OutOfRangeError,
  PoolExhaustedError,
  QuotaExceededError,
} from '../../src/core/errors';
import { kLend, kReturn, kPoolId, kSlot } from '../../src/core/symbols';
import { LEND_EXCLUSIVE, LEND_TRANSFER } from '../../src/pool/pool';
import { defaultPoolSize, layoutClasses } from '../../src/pool/config';

const KiB = 1024;

function small(extra: Parameters<typeof createPool>[0] = {}): IoPool {
  return createPool({
    size: 64 * KiB,
    lock: false,
    register: false,
    classes: [
      { size: 256, count: 4 },
      { size: 4096, count: 2 },
    ],
    ...extra,
  });
}

function throwsCode(fn: () => unknown, cls: { CODE: string }, name?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof (cls as unknown as new () => Error), `${String(e)} is not ${name ?? cls.CODE}`);
    assert.equal((e as unknown as { code: string }).code, cls.CODE);
    return true;
  });
}

test('alloc picks the smallest class that fits; length and capacity', () => {
  const pool = small();
  const a = pool.alloc(100);
  assert.equal(a.capacity, 256);
  assert.equal(a.length, 100);
  assert.equal(a.bytes.length, 100);
  const b = pool.alloc(257);
  assert.equal(b.capacity, 4096);
  const z = pool.alloc(0);
  assert.equal(z.capacity, 256);
  assert.equal(z.bytes.length, 0);
  assert.equal(a.bytes, a.bytes, 'bytes is cached');
  a.setLength(256);
  assert.equal(a.bytes.length, 256);
  throwsCode(() => a.setLength(257), OutOfRangeError);
  throwsCode(() => a.setLength(1.5), InvalidArgumentError);
  assert.equal(pool.owns(a), true);
  for (const x of [a, b, z]) x.release();
  assert.equal(pool.owns(a), false);
  pool.close();
});

test('bytes of different buffers are disjoint pool memory', () => {
  const pool = small();
  const bufs = [pool.alloc(256), pool.alloc(256), pool.alloc(256)];
  bufs.forEach((b, i) => b.bytes.fill(i + 1));
  bufs.forEach((b, i) => assert.ok(b.bytes.every((x) => x === i + 1)));
  assert.equal(bufs[0].bytes.buffer, bufs[1].bytes.buffer, 'one region ArrayBuffer in the default mode');
  bufs.forEach((b) => b.release());
  pool.close();
});

test('typed errors: release twice, bytes after release, too large, exhausted, invalid sizes', () => {
  const pool = small();
  const a = pool.alloc(10);
  a.release();
  throwsCode(() => a.release(), BufferReleasedError);
  throwsCode(() => a.bytes, BufferReleasedError);
  throwsCode(() => a.setLength(1), BufferReleasedError);
  throwsCode(() => pool.release(a), BufferReleasedError);
  assert.equal(a.released, true);
  throwsCode(() => pool.alloc(4097), BufferTooLargeError);
  throwsCode(() => pool.tryAlloc(4097), BufferTooLargeError);
  throwsCode(() => pool.alloc(-1), OutOfRangeError);
  throwsCode(() => pool.alloc(1.5), InvalidArgumentError);
  throwsCode(() => pool.alloc('1' as unknown as number), InvalidArgumentError);
  const held = [pool.alloc(4096), pool.alloc(4000)];
  throwsCode(() => pool.alloc(3000), PoolExhaustedError);
  assert.equal(pool.tryAlloc(3000), null);
  // The small class is not used as a fallback for a large request, nor the reverse.
  const s = pool.alloc(1);
  assert.equal(s.capacity, 256);
  assert.equal(pool.stats().classes[1].failedAllocs, 2);
  held.forEach((b) => b.release());
  s.release();
  pool.close();
});

test('a stale handle never reaches the bytes of the slot’s next owner', () => {
  const pool = small({ classes: [{ size: 256, count: 1 }] });
  const old = pool.alloc(256);
  const oldView = old.bytes;
  old.release();
  const next = pool.alloc(256);
  assert.equal(next.offset, old.offset, 'the slot was reused');
  assert.equal(next[kSlot], old[kSlot]);
  next.bytes.fill(0xab);
  throwsCode(() => old.bytes, BufferReleasedError);
  throwsCode(() => old.release(), BufferReleasedError);
  throwsCode(() => pool[kLend](old), BufferReleasedError);
  throwsCode(() => pool[kReturn](old), BufferReleasedError);
  assert.equal(old.released, true);
  assert.equal(old.lent, false);
  assert.equal(next.released, false);
  // The default mode's documented cost: a view kept past release still reads pool memory.
  assert.equal(oldView[0], 0xab);
  next.release();
  pool.close();
});

test('handles cannot be forged', () => {
  const pool = small();
  const a = pool.alloc(1);
  const Ctor = IoBuffer as unknown as new (...args: unknown[]) => IoBuffer;
  throwsCode(() => new Ctor(Symbol('x'), pool, {}, 0, 10), InvalidArgumentError);
  throwsCode(() => pool.release({} as IoBuffer), InvalidArgumentError);
  a.release();
  pool.close();
});

test('foreign buffers are refused', () => {
  const p1 = small();
  const p2 = small();
  const a = p1.alloc(10);
  throwsCode(() => p2.release(a), BufferForeignError);
  throwsCode(() => p2[kLend](a), BufferForeignError);
  assert.equal(p2.owns(a), false);
  assert.equal(p1.owns(a), true);
  a.release();
  p1.close();
  p2.close();
});

test('lent buffers: bytes/release throw, fan-out counts, return makes them owned again', () => {
  const pool = small();
  const a = pool.alloc(100);
  pool[kLend](a);
  pool[kLend](a); // fan-out: two sends of the same bytes
  assert.equal(a.lent, true);
  throwsCode(() => a.bytes, BufferLentError);
  throwsCode(() => a.release(), BufferLentError);
  throwsCode(() => a.setLength(5), BufferLentError);
  throwsCode(() => pool[kLend](a, LEND_EXCLUSIVE), BufferLentError);
  assert.equal(pool.stats().lent, 1);
  assert.equal(pool[kReturn](a), false);
  assert.equal(a.lent, true, 'one send still has it');
  assert.equal(pool[kReturn](a), false);
  assert.equal(a.lent, false);
  assert.equal(a.bytes.length, 100);
  throwsCode(() => pool[kReturn](a), InvalidArgumentError);
  // Exclusive (recv): nothing else meanwhile.
  pool[kLend](a, LEND_EXCLUSIVE);
  throwsCode(() => pool[kLend](a), BufferLentError);
  pool[kReturn](a);
  a.release();
  assert.equal(pool.stats().inUse, 0);
  pool.close();
});

test('a transfer lend releases the buffer when the last lend returns', () => {
  const pool = small();
  const a = pool.alloc(100);
  pool[kLend](a);
  pool[kLend](a, LEND_TRANSFER);
  throwsCode(() => pool[kLend](a), BufferReleasedError);
  assert.equal(pool[kReturn](a), false);
  assert.equal(pool.stats().inUse, 1);
  assert.equal(pool[kReturn](a), true);
  assert.equal(a.released, true);
  throwsCode(() => a.bytes, BufferReleasedError);
  assert.equal(pool.stats().inUse, 0);
  pool.close();
});

test('using releases at scope end; dispose of a lent buffer releases it on return', () => {
  const pool = small();
  let seen: IoBuffer;
  {
    using buf = pool.alloc(100);
    buf.bytes.set([1, 2, 3]);
    seen = buf;
    assert.equal(pool.stats().inUse, 1);
  }
  assert.equal(seen.released, true);
  throwsCode(() => seen.bytes, BufferReleasedError);
  assert.equal(pool.stats().inUse, 0);
  // Released by hand inside the scope: dispose does nothing more.
  {
    using buf = pool.alloc(1);
    buf.release();
  }
  assert.equal(pool.stats().inUse, 0);
  let lent: IoBuffer;
  {
    using buf = pool.alloc(10);
    pool[kLend](buf);
    lent = buf;
  }
  assert.equal(lent.released, false, 'still with the kernel');
  assert.equal(pool.stats().inUse, 1);
  assert.equal(pool[kReturn](lent), true);
  assert.equal(lent.released, true);
  assert.equal(pool.stats().inUse, 0);
  pool.close();
});

test('quotas: charge capacity, refuse beyond the limit, credit on release', async () => {
  const pool = small();
  const q = pool.createQuota({ maxBuffers: 2, maxBytes: 4096 });
  const a = q.alloc(10);
  assert.deepEqual([q.buffers, q.bytes], [1, 256]);
  throwsCode(() => q.alloc(4096), QuotaExceededError); // 256 + 4096 bytes > 4096
  const b = q.alloc(200);
  throwsCode(() => q.alloc(1), QuotaExceededError);
  assert.equal(q.tryAlloc(1), null);
  assert.equal(q.stats().failedAllocs, 3);
  // Others can still allocate: one owner cannot take all buffers.
  const other = pool.alloc(1);
  b.release();
  assert.equal(q.buffers, 1);
  const c = q.alloc(1);
  // Credit happens whoever releases (here: the pool after a transfer lend).
  pool[kLend](c, LEND_TRANSFER);
  pool[kReturn](c);
  assert.equal(q.buffers, 1);
  // allocWait on a quota waits until the quota has room.
  const d = q.alloc(1);
  let got: IoBuffer | null = null;
  const p = q.allocWait(1).then((x) => (got = x));
  await new Promise((r) => setImmediate(r));
  assert.equal(got, null);
  d.release();
  await p;
  assert.ok(got);
  await assert.rejects(q.allocWait(4096 * 2), (e: unknown) => (e as { code: string }).code === BufferTooLargeError.CODE);
  const tiny = pool.createQuota({ maxBytes: 100 });
  await assert.rejects(tiny.allocWait(1), (e: unknown) => e instanceof QuotaExceededError);
  throwsCode(() => pool.createQuota({ maxBytes: -1 }), OutOfRangeError);
  throwsCode(() => pool.createQuota({ maxBuffers: 1.5 }), InvalidArgumentError);
  const foreign = small().createQuota();
  throwsCode(() => pool.release(foreign.alloc(1)), BufferForeignError);
  for (const x of [a, other, got as unknown as IoBuffer]) x.release();
  assert.deepEqual([q.buffers, q.bytes], [0, 0]);
  pool.close();
});

test('allocWait: immediate when free, FIFO on release, AbortSignal rejects', async () => {
  const pool = small({ classes: [{ size: 256, count: 1 }] });
  const a = await pool.allocWait(10);
  const order: number[] = [];
  const w1 = pool.allocWait(1).then((b) => (order.push(1), b));
  const w2 = pool.allocWait(2).then((b) => (order.push(2), b));
  const ac = new AbortController();
  const w3 = pool.allocWait(3, { signal: ac.signal });
  assert.equal(pool.stats().waiting, 3);
  ac.abort(new Error('stop'));
  await assert.rejects(w3, (e: unknown) => e instanceof AbortError && (e as AbortError).code === 'ABORT_ERR');
  assert.equal(pool.stats().waiting, 2);
  a.release();
  const b1 = await w1;
  assert.equal(b1.length, 1);
  b1.release();
  const b2 = await w2;
  assert.deepEqual(order, [1, 2]);
  await assert.rejects(pool.allocWait(1, { signal: AbortSignal.abort() }), AbortError);
  // close rejects the remaining waiters
  const w4 = pool.allocWait(1);
  pool.close();
  await assert.rejects(w4, ClosedError);
  b2.release();
});

test('close: later allocs throw ClosedError, live buffers stay usable, twice is safe', async () => {
  const pool = small();
  const a = pool.alloc(10);
  a.bytes[0] = 1;
  pool[kLend](a);
  pool.close();
  pool.close();
  assert.equal(pool.closed, true);
  throwsCode(() => pool.alloc(1), ClosedError);
  throwsCode(() => pool.tryAlloc(1), ClosedError);
  throwsCode(() => pool.createQuota(), ClosedError);
  await assert.rejects(pool.allocWait(1), ClosedError);
  pool[kReturn](a);
  assert.equal(a.bytes[0], 1, 'still readable: the region is mapped until every buffer is back');
  a.release();
  assert.equal(pool.stats().closed, true);
  assert.equal(pool.stats().inUse, 0);
});

test('defaultPool: one per thread, lazily, replaced after close', () => {
  const d = defaultPool();
  assert.equal(defaultPool(), d);
  assert.equal(d.size, defaultPoolSize());
  const st = d.stats();
  assert.ok(st.classes.length >= 1);
  assert.ok(typeof st.registered === 'boolean');
  assert.ok(st.poolId >= -1);
  assert.equal(d[kPoolId], st.poolId);
  d.close();
  const d2 = defaultPool();
  assert.notEqual(d2, d);
  d2.close();
});

test('defaultPoolSize: 64 MiB when lockable, else half the memlock limit', () => {
  assert.equal(defaultPoolSize(8 << 20, true), 64 << 20);
  assert.equal(defaultPoolSize(Infinity, false), 64 << 20);
  assert.equal(defaultPoolSize(8 << 20, false), 4 << 20);
  assert.equal(defaultPoolSize(64 << 10, false), 64 << 10);
  assert.equal(defaultPoolSize(0, false), 64 << 10);
});

test('options and size classes are validated', () => {
  throwsCode(() => createPool({ size: 1000 }), OutOfRangeError);
  throwsCode(() => createPool({ size: 65537 }), OutOfRangeError);
  throwsCode(() => createPool({ size: 2 ** 31 }), OutOfRangeError);
  throwsCode(() => createPool({ size: 64 * KiB, strict: 1 as unknown as boolean }), InvalidArgumentError);
  throwsCode(() => layoutClasses(64 * KiB, []), InvalidArgumentError);
  throwsCode(() => layoutClasses(64 * KiB, [{ size: 100 }]), OutOfRangeError);
  throwsCode(() => layoutClasses(64 * KiB, [{ size: 1024 }, { size: 512 }]), InvalidArgumentError);
  throwsCode(() => layoutClasses(64 * KiB, [{ size: 1024, count: 65 }]), OutOfRangeError);
  throwsCode(() => layoutClasses(64 * KiB, [{ size: 65536, share: 0.5 }]), OutOfRangeError);
  // Classes start on page boundaries.
  const l = layoutClasses(64 * KiB, [{ size: 64, count: 3 }, { size: 4096, count: 2 }]);
  assert.deepEqual(l.map((c) => c.base), [0, 4096]);
  // A small default pool keeps only the default classes it has room for.
  const tiny = createPool({ size: 64 * KiB, lock: false, register: false });
  assert.deepEqual(tiny.stats().classes.map((c) => c.size), [2048, 16384]);
  tiny.close();
});
