/**
 * What only the epoll engine does (src/ring/engines/epoll.ts); the behaviour
 * both engines share is test/ring/contract.test.ts's.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { backend } from '../../src/backend';
import { OutOfRangeError } from '../../src/core/errors';
import { Ring } from '../../src/ring/ring';
import { Collector, ECANCELED, ENOBUFS, tick, until, withBufferGroup, withPoolAndPair } from './helpers';

const skip = backend().mode === 'epoll' ? false : 'tests the epoll engine; this run is on io_uring';

test('emulated buffer groups: registerBufRing checks its numbers, a full group refuses a buffer, an empty one ends a recv at once', { skip }, async () => {
  const ring = Ring.current();
  await withBufferGroup(ring, async (p, s, group, owner, failed) => {
    assert.throws(() => ring.registerBufRing(group, 4, owner), OutOfRangeError);
    assert.throws(() => ring.registerBufRing(8, 3, owner), OutOfRangeError);
    assert.throws(() => ring.registerBufRing(70000, 4, owner), OutOfRangeError);
    // Unlike the kernel's ring, which would overwrite an entry, a full group refuses.
    for (let bid = 0; bid < 5; bid++) ring.provide(p.index, 4096 * (bid + 1), 64, group, bid);
    ring.flush();
    assert.deepEqual(failed, [[4, ENOBUFS]]);
    // Four 64-byte buffers, 3 bytes: one read, then the group is not empty and the recv waits.
    const mc = new Collector();
    ring.recvMulti(mc, s.b, group);
    p.bytes.set(Buffer.from('xyz'), 0);
    ring.send(new Collector(), s.a, p.index, 0, 3);
    await until(() => mc.events.length === 1, 'data');
    assert.equal(mc.events[0][2] >>> 16, 0, 'the oldest buffer first');
    await tick();
    assert.equal(mc.events.length, 1);
    ring.cancel(mc.events[0][0]);
    await until(() => mc.events.length === 2, 'cancelled');
  });
});

test('closeFd completes in a later batch and ends ops still waiting on the socket', { skip }, async () => {
  // io_uring's CLOSE leaves an op in flight on the file alone (it holds its own reference).
  const ring = Ring.current();
  await withPoolAndPair(ring, async (p, s) => {
    const rc = new Collector();
    const rid = ring.recv(rc, s.b, p.index, 0, 64);
    await tick();
    const cc = new Collector();
    const cid = ring.closeFd(cc, s.b);
    ring.flush();
    assert.deepEqual(cc.events, [], 'not inside queue() or flush()');
    await until(() => cc.events.length === 1, 'close');
    assert.deepEqual(cc.events, [[cid, 0, 0]]);
    assert.deepEqual(rc.events, [[rid, ECANCELED, 0]]);
  });
});
