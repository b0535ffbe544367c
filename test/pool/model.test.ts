// Model test: random sequences of alloc/tryAlloc/release/lend/return/dispose
// over small real pools, checked against a plain model after every step.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { createPool, IoBuffer, IoPool } from '../../src/index';
import {
  BufferLentError,
  BufferReleasedError,
  BufferTooLargeError,
  InvalidArgumentError,
  PoolExhaustedError,
} from '../../src/core/errors';
import { kLend, kReturn } from '../../src/core/symbols';
import { LEND_EXCLUSIVE, LEND_TRANSFER } from '../../src/pool/pool';

const CLASSES = [64, 256, 4096];

type Op =
  | { kind: 'alloc' | 'tryAlloc'; size: number }
  | { kind: 'release' | 'return' | 'dispose' | 'stale'; pick: number }
  | { kind: 'lend'; pick: number; transfer: boolean; exclusive: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constantFrom('alloc' as const, 'tryAlloc' as const), size: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 5000 })) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('release' as const, 'return' as const, 'dispose' as const, 'stale' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('lend' as const), pick: fc.nat(), transfer: fc.boolean(), exclusive: fc.boolean() }) },
);

interface Live {
  buf: IoBuffer;
  cls: number;
  tag: number;
  lends: number;
  transfer: boolean;
  exclusive: boolean;
}

function expectCode(fn: () => unknown, cls: { CODE: string }): void {
  assert.throws(fn, (e: unknown) => (e as { code?: string }).code === cls.CODE);
}

function run(counts: number[], ops: Op[]): void {
  const pool: IoPool = createPool({
    size: 64 * 1024,
    lock: false,
    register: false,
    classes: CLASSES.map((size, i) => ({ size, count: counts[i] })),
  });
  const live: Live[] = [];
  const dead: IoBuffer[] = [];
  const inUse = [0, 0, 0];
  const high = [0, 0, 0];
  const failed = [0, 0, 0];
  let nextTag = 1;

  const classOf = (size: number) => CLASSES.findIndex((c) => size <= c);
  const fill = (l: Live) => {
    const b = l.buf.bytes;
    if (b.length > 0) {
      b[0] = l.tag & 0xff;
      if (b.length > 1) b[b.length - 1] = (l.tag >> 8) & 0xff;
    }
  };
  const drop = (i: number) => {
    const [l] = live.splice(i, 1);
    inUse[l.cls]--;
    dead.push(l.buf);
  };

  const check = () => {
    const st = pool.stats();
    for (let c = 0; c < CLASSES.length; c++) {
      assert.equal(st.classes[c].inUse, inUse[c], `inUse of class ${CLASSES[c]}`);
      assert.equal(st.classes[c].highWater, high[c]);
      assert.equal(st.classes[c].failedAllocs, failed[c]);
      assert.equal(st.classes[c].lent, live.filter((l) => l.cls === c && l.lends > 0).length);
      assert.equal(st.classes[c].total, counts[c]);
    }
    assert.equal(st.inUse, live.length);
    // Live buffers lie inside the region and never overlap.
    const spans = live.map((l) => [l.buf.offset, l.buf.offset + l.buf.capacity] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < spans.length; i++) {
      assert.ok(spans[i][0] >= 0 && spans[i][1] <= pool.size, 'inside the region');
      if (i > 0) assert.ok(spans[i - 1][1] <= spans[i][0], 'no overlap');
    }
    for (const l of live) {
      assert.equal(l.buf.released, false);
      assert.equal(l.buf.capacity, CLASSES[l.cls]);
      assert.equal(l.buf.lent, l.lends > 0);
      if (l.lends > 0) {
        expectCode(() => l.buf.bytes, BufferLentError);
      } else {
        // Nobody else wrote into this buffer.
        const b = l.buf.bytes;
        if (b.length > 0) {
          assert.equal(b[0], l.tag & 0xff);
          if (b.length > 1) assert.equal(b[b.length - 1], (l.tag >> 8) & 0xff);
        }
      }
    }
    for (const d of dead.slice(-8)) {
      assert.equal(d.released, true);
      expectCode(() => d.bytes, BufferReleasedError);
    }
  };

  for (const op of ops) {
    switch (op.kind) {
      case 'alloc':
      case 'tryAlloc': {
        const c = classOf(op.size);
        if (c < 0) {
          expectCode(() => (op.kind === 'alloc' ? pool.alloc(op.size) : pool.tryAlloc(op.size)), BufferTooLargeError);
          break;
        }
        if (inUse[c] === counts[c]) {
          failed[c]++;
          if (op.kind === 'alloc') expectCode(() => pool.alloc(op.size), PoolExhaustedError);
          else assert.equal(pool.tryAlloc(op.size), null);
          break;
        }
        const buf = op.kind === 'alloc' ? pool.alloc(op.size) : pool.tryAlloc(op.size);
        assert.ok(buf);
        assert.equal(buf.length, op.size);
        inUse[c]++;
        high[c] = Math.max(high[c], inUse[c]);
        const l: Live = { buf, cls: c, tag: nextTag++, lends: 0, transfer: false, exclusive: false };
        live.push(l);
        fill(l);
        break;
      }
      case 'release': {
        if (!live.length) break;
        const i = op.pick % live.length;
        const l = live[i];
        if (l.lends > 0) {
          expectCode(() => l.buf.release(), BufferLentError);
        } else {
          l.buf.release();
          drop(i);
        }
        break;
      }
      case 'dispose': {
        if (!live.length) break;
        const i = op.pick % live.length;
        const l = live[i];
        l.buf[Symbol.dispose]();
        if (l.lends > 0) l.transfer = true;
        else drop(i);
        break;
      }
      case 'lend': {
        if (!live.length) break;
        const l = live[op.pick % live.length];
        const flags = (op.transfer ? LEND_TRANSFER : 0) | (op.exclusive ? LEND_EXCLUSIVE : 0);
        if (l.lends > 0 && l.transfer) {
          expectCode(() => pool[kLend](l.buf, flags), BufferReleasedError);
        } else if (l.lends > 0 && (l.exclusive || op.exclusive)) {
          expectCode(() => pool[kLend](l.buf, flags), BufferLentError);
        } else {
          pool[kLend](l.buf, flags);
          l.lends++;
          l.transfer ||= op.transfer;
          l.exclusive ||= op.exclusive;
        }
        break;
      }
      case 'return': {
        if (!live.length) break;
        const i = op.pick % live.length;
        const l = live[i];
        if (l.lends === 0) {
          expectCode(() => pool[kReturn](l.buf), InvalidArgumentError);
          break;
        }
        const released = pool[kReturn](l.buf);
        l.lends--;
        const expectRelease = l.lends === 0 && l.transfer;
        assert.equal(released, expectRelease);
        if (l.lends === 0) l.exclusive = false;
        if (expectRelease) drop(i);
        break;
      }
      case 'stale': {
        if (!dead.length) break;
        const d = dead[op.pick % dead.length];
        expectCode(() => d.bytes, BufferReleasedError);
        expectCode(() => d.release(), BufferReleasedError);
        expectCode(() => pool[kLend](d), BufferReleasedError);
        break;
      }
    }
    check();
  }

  // Nothing leaks: return every lend, release everything, then every slot is allocatable again.
  for (const l of [...live]) {
    while (l.lends > 0) {
      pool[kReturn](l.buf);
      l.lends--;
    }
    if (!l.transfer) l.buf.release();
  }
  const st = pool.stats();
  assert.equal(st.inUse, 0);
  assert.equal(st.lent, 0);
  const all: IoBuffer[] = [];
  for (let c = 0; c < CLASSES.length; c++) {
    for (let k = 0; k < counts[c]; k++) all.push(pool.alloc(CLASSES[c]));
    assert.equal(pool.tryAlloc(CLASSES[c]), null);
  }
  assert.equal(new Set(all.map((b) => b.offset)).size, all.length);
  for (const b of all) b.release();
  assert.equal(pool.stats().inUse, 0);
  pool.close();
}

test('pool model: random alloc/release/lend/return sequences keep every invariant', () => {
  fc.assert(
    fc.property(
      fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 })),
      fc.array(opArb, { maxLength: 120 }),
      (counts, ops) => run(counts, ops),
    ),
    { numRuns: Number(process.env.MAIO_FC_RUNS ?? 150) },
  );
});
