// Pools attach to this thread's io_uring ring (fixed buffer) and detach when closed and drained.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPool } from '../../src/index';
import { kPoolId } from '../../src/core/symbols';
import { Ring } from '../../src/ring/ring';

test('a pool registers with the ring as a fixed buffer and detaches after close once drained', (t) => {
  const ring = Ring.current();
  if (!ring) return t.skip('the backend is not io_uring here');
  const pool = createPool({ size: 4 << 20 });
  const st = pool.stats();
  assert.ok(st.poolId >= 0, `attached (registerError '${st.registerError}')`);
  assert.equal(pool[kPoolId], st.poolId);
  if (process.getuid?.() === 0) assert.equal(st.registered, true, st.registerError);
  const unregistered = createPool({ size: 64 << 10, register: false });
  assert.equal(unregistered.stats().poolId, -1);
  assert.equal(unregistered.stats().registered, false);
  unregistered.close();

  const buf = pool.alloc(100);
  pool.close();
  assert.equal(pool.stats().poolId, st.poolId, 'still attached while a buffer is out');
  buf.release();
  assert.equal(pool.stats().poolId, -1);
  assert.equal(pool.stats().registered, false);
  // The slot is free again: the next pool can take it.
  const again = createPool({ size: 64 << 10 });
  assert.ok(again.stats().poolId >= 0);
  again.close();
});
