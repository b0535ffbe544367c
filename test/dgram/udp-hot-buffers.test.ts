// A UDP receiver's buffer group gives the kernel at most HOT_BUFFERS buffers at once (recv-group.ts,
// hotBuffers): a burst larger than that runs the kernel dry (-ENOBUFS, counted) and the recv is
// armed again without the group growing past the cap, every datagram still arriving in order;
// buffers the application held beyond the cap wait in the group as spares when released, and the
// kernel's buffers stay at the cap. On both backends, real loopback sockets.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { defaultPool, type UdpBatch } from '../../src/index';
import { HOT_BUFFERS, RecvGroup, type RecvGroupStats } from '../../src/net/recv-group';
import { netSkip as skip, poolGuard, until } from '../net/helpers';
import { check, closeAll, fill, pair } from './datagrams';

/** The one receive group of this test's thread (no TCP socket here). */
function group(): RecvGroupStats {
  const all = RecvGroup.all();
  assert.equal(all.length, 1, `expected one receive group, got ${JSON.stringify(all)}`);
  return all[0]!;
}

test(`a burst of more than ${HOT_BUFFERS} buffers: all arrive in order, the kernel ran dry and the group stayed at the cap`, { skip, timeout: 30000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  // GRO off: one datagram per buffer, so N datagrams need N buffers.
  const [rx, tx, port] = await pair({ gro: false, recvBufferSize: 4 << 20 });
  const n = HOT_BUFFERS * 16; // without the cap the group grows by one per -ENOBUFS: past 32
  const seen: number[] = [];
  rx.on('message', (m) => seen.push(check(m.bytes)));
  rx.pause(); // the datagrams wait in the socket, then come as one burst
  for (let i = 0; i < n; i++) tx.send(fill(pool, i, 200), port, '127.0.0.1');
  await until(() => tx.stats().datagramsOut >= n, 'the sends');
  await new Promise((r) => setTimeout(r, 50));
  rx.resume();
  await until(() => seen.length >= n, `${n} datagrams (got ${seen.length})`);
  assert.deepEqual(seen, [...Array(n).keys()]);
  const g = group();
  assert.ok(g.buffers <= HOT_BUFFERS, `the group grew to ${g.buffers} buffers`);
  assert.ok(g.inKernel <= HOT_BUFFERS);
  assert.ok(rx.stats().noBufferEvents >= 1, 'the burst never ran the kernel out of buffers');
  await closeAll(rx, tx);
  await guard.check();
});

test('buffers held past the cap come back as spares: the kernel keeps the cap, the rest wait in the group', { skip, timeout: 30000 }, async () => {
  const pool = defaultPool();
  const guard = poolGuard(pool);
  const [rx, tx, port] = await pair({ gro: false, recvBufferSize: 4 << 20, readQuota: 64 << 20 });
  const n = HOT_BUFFERS + 16;
  const kept: UdpBatch[] = [];
  rx.on('batch', (b) => kept.push(b.retain()));
  for (let i = 0; i < n; i++) tx.send(fill(pool, i, 100), port, '127.0.0.1');
  await until(() => kept.length >= n, `${n} batches held (got ${kept.length})`);
  assert.deepEqual(
    kept.map((b) => check(b.datagram(0))),
    [...Array(n).keys()],
  );
  const held = group();
  assert.ok(held.buffers >= n, `the application holds ${n} buffers, the group has ${held.buffers}`);
  for (const b of kept) b.release();
  const g = group();
  assert.equal(g.inKernel, HOT_BUFFERS, JSON.stringify(g));
  assert.equal(g.spare, g.buffers - HOT_BUFFERS, JSON.stringify(g));
  assert.ok(g.spare >= n - HOT_BUFFERS, JSON.stringify(g));
  assert.equal(g.withApplication, 0);
  // The spares are used again: another round arrives whole.
  kept.length = 0;
  for (let i = 0; i < n; i++) tx.send(fill(pool, i, 100), port, '127.0.0.1');
  await until(() => kept.length >= n, `a second ${n} batches (got ${kept.length})`);
  for (const b of kept) b.release();
  await closeAll(rx, tx);
  await guard.check();
});
