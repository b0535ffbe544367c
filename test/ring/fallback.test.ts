/** The epoll fallback ring on real loopback sockets: the Ring's semantics, emulated. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { ClosedError, InvalidArgumentError, OutOfRangeError } from '../../src/core/errors';
import {
  CQE_F_BUFFER,
  CQE_F_MORE,
  CQE_F_NOTIF,
  NOTIF_USAGE_ZC_COPIED,
  native,
  type PoolCreateResult,
} from '../../src/core/native';
import { FallbackRing } from '../../src/ring/fallback-ring';
import type { IoRing } from '../../src/ring/io-ring';
import type { CompletionTarget, Ring } from '../../src/ring/ring';
import {
  Collector,
  ECANCELED,
  ECONNREFUSED,
  EINVAL,
  ENOBUFS,
  ENOENT,
  EPIPE,
  listener,
  socketPair,
  tick,
  until,
} from './fallback-helpers';

const ringJs = path.join(__dirname, '..', '..', 'src', 'ring', 'fallback-ring.js');
const nativeJs = path.join(__dirname, '..', '..', 'src', 'core', 'native.js');
const IOSQE_IO_LINK = 1 << 2;

function withPool(ring: FallbackRing, size = 1 << 20): { pool: PoolCreateResult; index: number; bytes: Uint8Array; done: () => void } {
  const n = native();
  const pool = n.poolCreate({ size });
  const att = ring.attachPool(pool.handle);
  assert.equal(att.registered, false);
  return {
    pool,
    index: att.index,
    bytes: new Uint8Array(pool.region),
    done() {
      if (!ring.closed) ring.detachPool(att.index);
      n.poolClose(pool.handle);
    },
  };
}

// Compile-time: both backends offer the whole seam.
const ringIsIoRing = (r: Ring): IoRing => r;
const fallbackIsIoRing = (r: FallbackRing): IoRing => r;
void ringIsIoRing;
void fallbackIsIoRing;

test('FallbackRing satisfies IoRing and is one per thread', () => {
  const ring: IoRing = FallbackRing.current();
  assert.equal(FallbackRing.current(), ring);
  assert.throws(() => new (FallbackRing as any)(Symbol('x')), InvalidArgumentError);
});

test('1,000 NOPs in one turn: each op id completes exactly once, in one flush, never inside queue()', async () => {
  const ring = FallbackRing.current();
  const before = ring.stats();
  const ids = new Set<number>();
  const seen = new Map<number, number>();
  const target: CompletionTarget = {
    onCompletion(opId, res, flags) {
      assert.equal(res, 0);
      assert.equal(flags, 0);
      seen.set(opId, (seen.get(opId) ?? 0) + 1);
    },
  };
  for (let i = 0; i < 1000; i++) ids.add(ring.nop(target));
  assert.equal(ids.size, 1000);
  assert.equal(ring.pending, 1000);
  ring.flush();
  assert.equal(seen.size, 0, 'completions are never delivered inside queue() or flush()');
  await until(() => seen.size === 1000, '1000 completions');
  for (const id of ids) assert.equal(seen.get(id), 1, `op ${id} completed once`);
  const after = ring.stats();
  assert.equal(after.submitted - before.submitted, 1000);
  assert.equal(after.completed - before.completed, 1000);
  assert.equal(after.submitCalls - before.submitCalls, 1);
  assert.ok(after.reapBatches - before.reapBatches >= 1);
  assert.ok(after.completionsPerBatch > 1);
  assert.equal(after.inflight, 0);
  assert.equal(ring.pending, 0);
});

test('schedule(): preFlush runs once at the start of the next flush, its ops go in that flush; room counts down', async () => {
  const ring = FallbackRing.current();
  const c = new Collector();
  await until(() => ring.pending === 0, 'an idle ring');
  const room = ring.room;
  assert.equal(room, 1024);
  ring.nop(c);
  assert.equal(ring.room, room - 1);
  let calls = 0;
  const hook = {
    preFlush() {
      calls++;
      ring.nop(c);
      ring.nop(c);
    },
  };
  ring.schedule(hook);
  const before = ring.stats().submitCalls;
  await tick();
  assert.equal(calls, 1);
  assert.equal(ring.stats().submitCalls - before, 1, 'one flush took the NOP and the hook\'s two');
  assert.equal(ring.room, room);
  await until(() => c.events.length === 3, '3 completions');
  // A hook scheduled from a hook runs in the same flush.
  const order: string[] = [];
  ring.schedule({ preFlush: () => (order.push('a'), ring.schedule({ preFlush: () => order.push('b') })) });
  ring.flush();
  assert.deepEqual(order, ['a', 'b']);
  // A closed ring refuses, as the Ring does (a fresh ring for the rest of the file).
  const w = spawnSync(process.execPath, ['-e', `
    const { FallbackRing } = require(${JSON.stringify(ringJs)});
    const r = FallbackRing.current(); r.close();
    try { r.schedule({ preFlush() {} }); console.log('no error'); } catch (e) { console.log(e.code); }`], { encoding: 'utf8' });
  assert.equal(w.stdout.trim(), 'ERR_MAIO_CLOSED', w.stderr);
});

test('stats add up with more ops than one flush takes; stale ids cannot be cancelled', async () => {
  const ring = FallbackRing.current();
  const before = ring.stats();
  const c = new Collector();
  for (let i = 0; i < 2500; i++) ring.nop(c);
  await until(() => c.events.length === 2500, '2500 completions');
  const s = ring.stats();
  assert.equal(s.submitted - before.submitted, 2500);
  assert.equal(s.completed - before.completed, 2500);
  assert.ok(s.submitCalls - before.submitCalls >= 3, 'the op list holds 1,024: queue() flushed by itself');
  assert.equal(s.inflight, 0);
  assert.equal(s.cqOverflow, 0);
  assert.equal(new Set(c.events.map((e) => e[0])).size, 2500);
  assert.equal(ring.cancel(c.events[0][0]), false);
  assert.equal(ring.cancel(-5), false);
  assert.equal(ring.cancel(1.5), false);
});

test('send and recv through a pool between two loopback sockets', async () => {
  const ring = FallbackRing.current();
  const p = withPool(ring);
  const s = await socketPair();
  try {
    // recv first: nothing there yet, so it waits for EPOLLIN.
    const rc = new Collector();
    const rid = ring.recv(rc, s.b, p.index, 4096, 100);
    await tick();
    await tick();
    assert.deepEqual(rc.events, []);
    assert.equal(ring.stats().inflight, 1);
    p.bytes.set(Buffer.from('hello fallback'), 0);
    const sc = new Collector();
    const sid = ring.send(sc, s.a, p.index, 0, 14);
    await until(() => rc.events.length === 1 && sc.events.length === 1, 'send and recv');
    assert.deepEqual(sc.events, [[sid, 14, 0]]);
    assert.deepEqual(rc.events, [[rid, 14, 0]]);
    assert.equal(Buffer.from(p.bytes.subarray(4096, 4096 + 14)).toString(), 'hello fallback');

    // Out of the pool's bounds, or a pool that is not attached: -EINVAL, as the Ring.
    const bad = new Collector();
    ring.send(bad, s.a, p.index, (1 << 20) - 2, 5);
    ring.recv(bad, s.b, 63, 0, 5);
    ring.send(bad, -1, p.index, 0, 5);
    ring.queue(bad, 1 /* SEND */, s.a, 1, p.index, 0, 0, 0, 0, -1, 0, 1 << 3 /* IOSQE_ASYNC */);
    ring.queue(bad, 99 as any, s.a);
    await until(() => bad.events.length === 5, 'refused ops');
    assert.deepEqual(bad.events.map((e) => e[1]), [EINVAL, EINVAL, EINVAL, EINVAL, EINVAL]);

    // Half-close: the reader sees end of stream (0).
    const eof = new Collector();
    ring.recv(eof, s.b, p.index, 0, 64);
    const sh = new Collector();
    ring.shutdown(sh, s.a, 1);
    await until(() => eof.events.length === 1 && sh.events.length === 1, 'shutdown and EOF');
    assert.equal(sh.events[0][1], 0);
    assert.equal(eof.events[0][1], 0);
    assert.equal(ring.pending, 0);
  } finally {
    s.close();
    p.done();
  }
});

test('recv with MSG_WAITALL completes only with the full length', async () => {
  const ring = FallbackRing.current();
  const p = withPool(ring);
  const s = await socketPair();
  try {
    const rc = new Collector();
    ring.recv(rc, s.b, p.index, 8192, 10, 0x100 /* MSG_WAITALL */);
    p.bytes.set(Buffer.from('01234'), 0);
    const sc = new Collector();
    ring.send(sc, s.a, p.index, 0, 5);
    await until(() => sc.events.length === 1, 'first half');
    await tick();
    await tick();
    assert.deepEqual(rc.events, [], 'half of the bytes do not complete a MSG_WAITALL recv');
    p.bytes.set(Buffer.from('56789'), 100);
    ring.send(sc, s.a, p.index, 100, 5);
    await until(() => rc.events.length === 1, 'second half');
    assert.equal(rc.events[0][1], 10);
    assert.equal(Buffer.from(p.bytes.subarray(8192, 8202)).toString(), '0123456789');
  } finally {
    s.close();
    p.done();
  }
});

test('multishot recv with an emulated buffer group: F_BUFFER | bid << 16 | F_MORE, then -ENOBUFS when empty', async () => {
  const ring = FallbackRing.current();
  const p = withPool(ring);
  const s = await socketPair();
  const failed: [number, number][] = [];
  const owner = { onProvideFailed: (bid: number, res: number) => failed.push([bid, res]) };
  const group = 7;
  ring.registerBufRing(group, 4, owner);
  try {
    assert.throws(() => ring.registerBufRing(group, 4, owner), OutOfRangeError);
    assert.throws(() => ring.registerBufRing(8, 3, owner), OutOfRangeError);
    assert.throws(() => ring.registerBufRing(70000, 4, owner), OutOfRangeError);
    assert.throws(() => ring.registerBufRing(8, 4, {} as any), InvalidArgumentError);

    // No buffers at all: the kernel's answer is -ENOBUFS at once.
    const empty = new Collector();
    ring.recvMulti(empty, s.b, group);
    await until(() => empty.events.length === 1, 'ENOBUFS');
    assert.deepEqual(empty.events[0].slice(1), [ENOBUFS, 0]);

    // Two 8-byte buffers (ids 11 and 12) and 16 bytes on the wire.
    ring.provide(p.index, 1000, 8, group, 11);
    ring.provide(p.index, 2000, 8, group, 12);
    // Refused: a pool that is not attached, an empty buffer, a bid out of range.
    ring.provide(60, 0, 8, group, 13);
    ring.provide(p.index, 0, 0, group, 14);
    ring.provide(p.index, 0, 8, group, 70000);
    const mc = new Collector();
    const mid = ring.recvMulti(mc, s.b, group);
    p.bytes.set(Buffer.from('AAAAAAAABBBBBBBB'), 0);
    const sc = new Collector();
    ring.send(sc, s.a, p.index, 0, 16);
    await until(() => mc.events.length >= 3, 'two buffers and the end');
    assert.deepEqual(failed, [
      [13, EINVAL],
      [14, EINVAL],
      [70000 | 0, EINVAL],
    ]);
    const [e1, e2, e3] = mc.events;
    assert.equal(e1[0], mid);
    assert.equal(e1[1], 8);
    assert.equal(e1[2], CQE_F_BUFFER | CQE_F_MORE | (11 << 16));
    assert.equal(e2[1], 8);
    assert.equal(e2[2], CQE_F_BUFFER | CQE_F_MORE | (12 << 16));
    assert.equal(e2[2] >>> 16, 12);
    assert.equal(Buffer.from(p.bytes.subarray(1000, 1008)).toString(), 'AAAAAAAA');
    assert.equal(Buffer.from(p.bytes.subarray(2000, 2008)).toString(), 'BBBBBBBB');
    // The group ran dry: the op ends without F_MORE.
    assert.deepEqual(e3.slice(1), [ENOBUFS, 0]);
    assert.equal(mc.events.length, 3);

    // A full group refuses a buffer.
    for (let bid = 0; bid < 5; bid++) ring.provide(p.index, 4096 * (bid + 1), 64, group, bid);
    await tick();
    await until(() => failed.length === 4, 'the fifth buffer refused');
    assert.deepEqual(failed[3], [4, ENOBUFS]);

    // Re-armed: data, then end of stream (res 0, no buffer consumed, final).
    const again = new Collector();
    ring.recvMulti(again, s.b, group);
    p.bytes.set(Buffer.from('xyz'), 0);
    ring.send(sc, s.a, p.index, 0, 3);
    await until(() => again.events.length === 1, 'data');
    assert.equal(again.events[0][1], 3);
    assert.equal(again.events[0][2] >>> 16, 0, 'the oldest buffer first');
    native().sockShutdown(s.a, 1);
    await until(() => again.events.length === 2, 'end of stream');
    assert.deepEqual(again.events[1].slice(1), [0, 0]);
  } finally {
    ring.unregisterBufRing(group);
    s.close();
    p.done();
  }
});

test('multishot accept: one CQE with F_MORE per connection, cancel ends it with -ECANCELED', async () => {
  const ring = FallbackRing.current();
  const n = native();
  const l = listener();
  const ac = new Collector();
  const id = ring.accept(ac, l.fd, true);
  const clients: number[] = [];
  const cc = new Collector();
  try {
    for (let i = 0; i < 3; i++) {
      const fd = n.sockOpen(4, 'tcp');
      clients.push(fd);
      const aux = ring.allocAux();
      const len = ring.writeSockaddr(aux, '127.0.0.1', l.port);
      ring.connect(cc, fd, aux, len);
      ring.flush(); // the sockaddr is read when the op starts
      ring.freeAux(aux);
    }
    await until(() => ac.events.length === 3 && cc.events.length === 3, 'three connections');
    assert.deepEqual(cc.events.map((e) => e[1]), [0, 0, 0]);
    for (const [opId, res, flags] of ac.events) {
      assert.equal(opId, id);
      assert.ok(res >= 0, `accepted fd ${res}`);
      assert.equal(flags, CQE_F_MORE);
      assert.equal(n.sockName(res, true).length, 16, 'a connected socket');
    }
    assert.equal(ring.cancel(id), true);
    await until(() => ac.events.length === 4, 'cancelled');
    assert.deepEqual(ac.events[3], [id, ECANCELED, 0]);
    assert.equal(ring.cancel(id), false);
    for (const e of ac.events.slice(0, 3)) n.sockClose(e[1]);
  } finally {
    for (const fd of clients) n.sockClose(fd);
    n.sockClose(l.fd);
  }
});

test('connect to a closed port completes with -ECONNREFUSED', async () => {
  const ring = FallbackRing.current();
  const n = native();
  const l = listener();
  n.sockClose(l.fd); // nobody listens on the port now
  const fd = n.sockOpen(4, 'tcp');
  try {
    const c = new Collector();
    const aux = ring.allocAux();
    ring.connect(c, fd, aux, ring.writeSockaddr(aux, '127.0.0.1', l.port));
    ring.flush();
    ring.freeAux(aux);
    await until(() => c.events.length === 1, 'connect');
    assert.equal(c.events[0][1], ECONNREFUSED);
    // A bad sockaddr slot is refused like the Ring refuses the descriptor.
    const bad = new Collector();
    ring.connect(bad, fd, 1 << 20, 16);
    ring.connect(bad, fd, 0, 0);
    await until(() => bad.events.length === 2, 'refused');
    assert.deepEqual(bad.events.map((e) => e[1]), [EINVAL, EINVAL]);
  } finally {
    n.sockClose(fd);
  }
});

test('linked sends run in order; a failing link cancels the rest with -ECANCELED', async () => {
  const ring = FallbackRing.current();
  const p = withPool(ring);
  const s = await socketPair();
  try {
    const words = ['one ', 'two ', 'three ', 'four'];
    let off = 0;
    const c = new Collector();
    const ids: number[] = [];
    for (const [i, w] of words.entries()) {
      p.bytes.set(Buffer.from(w), off);
      ids.push(ring.queue(c, 1 /* SEND */, s.a, w.length, p.index, off, 0, 0, 0, -1, 0, i < words.length - 1 ? IOSQE_IO_LINK : 0));
      off += 64;
    }
    const rc = new Collector();
    ring.recv(rc, s.b, p.index, 65536, 100, 0x100 /* MSG_WAITALL */);
    await until(() => c.events.length === 4, 'four sends');
    assert.deepEqual(c.events.map((e) => e[0]), ids, 'completed in link order');
    assert.deepEqual(c.events.map((e) => e[1]), words.map((w) => w.length));
    ring.shutdown(new Collector(), s.a, 1);
    await until(() => rc.events.length === 1, 'the bytes');
    assert.equal(Buffer.from(p.bytes.subarray(65536, 65536 + rc.events[0][1])).toString(), 'one two three four');

    // A send on a shut-down socket fails with -EPIPE; what is linked behind it is cancelled.
    const f = new Collector();
    const a = ring.queue(f, 0 /* NOP */, -1, 0, -1, 0, 0, 0, 0, -1, 0, IOSQE_IO_LINK);
    const b = ring.queue(f, 1, s.a, 4, p.index, 0, 0, 0, 0, -1, 0, IOSQE_IO_LINK);
    const d = ring.queue(f, 1, s.b, 4, p.index, 0, 0, 0, 0, -1, 0, IOSQE_IO_LINK);
    const e = ring.nop(f);
    const after = ring.nop(f); // not linked: runs whatever happens
    await until(() => f.events.length === 5, 'the chain');
    const res = new Map(f.events.map(([id, r]) => [id, r]));
    assert.equal(res.get(a), 0);
    assert.equal(res.get(b), EPIPE);
    assert.equal(res.get(d), ECANCELED);
    assert.equal(res.get(e), ECANCELED);
    assert.equal(res.get(after), 0);
  } finally {
    s.close();
    p.done();
  }
});

test('SEND_ZC over loopback: the result with F_MORE, then a notification that reports the copy', async () => {
  const ring = FallbackRing.current();
  const p = withPool(ring);
  const s = await socketPair();
  try {
    const size = 256 << 10;
    for (let i = 0; i < size; i++) p.bytes[i] = (i * 7) & 0xff;
    const zc = new Collector();
    const id = ring.sendZc(zc, s.a, p.index, 0, size);
    // Drain the other side so a large send can finish.
    let got = 0;
    const reader: CompletionTarget = {
      onCompletion(_id, res) {
        got += Math.max(res, 0);
        if (res > 0 && got < size) ring.recv(reader, s.b, p.index, size, 65536);
      },
    };
    ring.recv(reader, s.b, p.index, size, 65536);
    await until(() => zc.events.length === 2 && got === size, 'result, notification and data');
    assert.deepEqual(zc.events.map((e) => e[0]), [id, id]);
    assert.equal(zc.events[0][1], size);
    assert.ok(zc.events[0][2] & CQE_F_MORE);
    assert.ok(zc.events[1][2] & CQE_F_NOTIF);
    assert.equal(zc.events[1][2] & CQE_F_MORE, 0);
    // kernel-facts: local delivery copies zero-copy pages, and says so.
    assert.equal(zc.events[1][1], NOTIF_USAGE_ZC_COPIED);
    assert.equal(ring.pending, 0);
  } finally {
    s.close();
    p.done();
  }
});

test('closeFd completes in a later batch and ends ops still waiting on the socket', async () => {
  const ring = FallbackRing.current();
  const p = withPool(ring);
  const s = await socketPair();
  try {
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
    // Cancel of something that is not there.
    const x = new Collector();
    ring.queue(x, 9 /* CANCEL */, -1, 12345);
    await until(() => x.events.length === 1, 'cancel');
    assert.equal(x.events[0][1], ENOENT);
  } finally {
    try {
      native().sockClose(s.a);
    } catch {}
    p.done();
  }
});

test('a target that closes the ring mid-batch: every op still completes exactly once', async () => {
  const ring = FallbackRing.current();
  const seen = new Map<number, number[]>();
  const t: CompletionTarget = {
    onCompletion(opId, res) {
      seen.set(opId, [...(seen.get(opId) ?? []), res]);
      if (seen.size === 3) ring.close();
    },
  };
  const ids: number[] = [];
  for (let i = 0; i < 10; i++) ids.push(ring.nop(t));
  await until(() => seen.size === 10, 'ten completions');
  await tick();
  for (const id of ids) assert.equal(seen.get(id)!.length, 1);
  const results = ids.map((id) => seen.get(id)![0]);
  assert.deepEqual(results.slice(0, 3), [0, 0, 0]);
  assert.deepEqual(results.slice(3), Array(7).fill(ECANCELED));
  assert.equal(ring.closed, true);
  assert.notEqual(FallbackRing.current(), ring);
});

test('close() completes ops in flight and queued with -ECANCELED; then ERR_MAIO_CLOSED', async () => {
  const ring = FallbackRing.current();
  const n = native();
  const l = listener();
  const c = new Collector();
  const id = ring.accept(c, l.fd, true);
  await tick();
  assert.equal(ring.stats().inflight, 1);
  const queuedOnly = new Collector();
  const qid = ring.nop(queuedOnly);
  ring.close();
  ring.close();
  n.sockClose(l.fd);
  assert.equal(ring.closed, true);
  assert.deepEqual(c.events, [[id, ECANCELED, 0]]);
  assert.deepEqual(queuedOnly.events, [[qid, ECANCELED, 0]]);
  assert.throws(() => ring.nop(c), ClosedError);
  assert.throws(() => ring.flush(), ClosedError);
  assert.throws(() => ring.provide(0, 0, 1, 0, 0), ClosedError);
  assert.equal(ring.cancel(id), false);
  const next = FallbackRing.current();
  assert.notEqual(next, ring);
  const c2 = new Collector();
  next.nop(c2);
  await until(() => c2.events.length === 1, 'NOP on the new ring');
});

test('an idle fallback ring does not keep the process alive', () => {
  const code = `
    const { FallbackRing } = require(${JSON.stringify(ringJs)});
    const ring = FallbackRing.current();
    ring.nop({ onCompletion(id, res) { console.log('done ' + res); } });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.signal, null, 'the child had to be killed: something kept it alive');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done 0');
});

test('an op waiting for readiness keeps the process alive until it completes', () => {
  const code = `
    const net = require('node:net');
    const n = require(${JSON.stringify(nativeJs)}).native();
    const { FallbackRing } = require(${JSON.stringify(ringJs)});
    const ring = FallbackRing.current();
    const pool = n.poolCreate({ size: 1 << 20 });
    const { index } = ring.attachPool(pool.handle);
    const server = net.createServer((s) => {
      setTimeout(() => s.end('late'), 100).unref();
    }).listen(0, '127.0.0.1', () => {
      const client = net.connect(server.address().port, '127.0.0.1');
      client.pause();
      client.on('connect', () => {
        ring.recv({ onCompletion(id, res) {
          console.log('received ' + Buffer.from(pool.region, 0, res).toString());
          client.destroy();
          server.close();
        } }, client._handle.fd, index, 0, 64);
        client.unref();
        server.unref();
      });
    });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.signal, null, 'killed: the child never finished');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'received late');
});

function runWorker(code: string): Promise<{ exit: number; messages: any[] }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    const messages: any[] = [];
    w.on('message', (m) => messages.push(m));
    w.on('error', reject);
    w.on('exit', (exit) => resolve({ exit, messages }));
  });
}

test('worker threads: their own fallback ring, clean exit with ops in flight, terminate()', async () => {
  const main = FallbackRing.current();
  const { exit, messages } = await runWorker(`
    const { parentPort } = require('node:worker_threads');
    const { FallbackRing } = require(${JSON.stringify(ringJs)});
    const ring = FallbackRing.current();
    let left = 100;
    const t = { onCompletion() { if (--left === 0) parentPort.postMessage(ring.stats()); } };
    for (let i = 0; i < 100; i++) ring.nop(t);`);
  assert.equal(exit, 0);
  assert.equal(messages[0].submitted, 100);
  assert.equal(messages[0].completed, 100);
  for (let round = 0; round < 3; round++) {
    const r = await runWorker(`
      const { parentPort } = require('node:worker_threads');
      const net = require('node:net');
      const { FallbackRing } = require(${JSON.stringify(ringJs)});
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const ring = FallbackRing.current();
        ring.accept({ onCompletion() {} }, server._handle.fd, true);
        ring.nop({ onCompletion() { parentPort.postMessage(ring.stats().inflight); process.exit(${round}); } });
      });`);
    assert.equal(r.exit, round);
    assert.deepEqual(r.messages, [1]);
  }
  for (let i = 0; i < 5; i++) {
    const w = new Worker(
      `const net = require('node:net');
       const { parentPort } = require('node:worker_threads');
       const { FallbackRing } = require(${JSON.stringify(ringJs)});
       const server = net.createServer().listen(0, '127.0.0.1', () => {
         const ring = FallbackRing.current();
         ring.accept({ onCompletion() {} }, server._handle.fd, true);
         ring.nop({ onCompletion() { parentPort.postMessage('ready'); } });
       });`,
      { eval: true },
    );
    await new Promise((r) => w.once('message', r));
    assert.equal(await w.terminate(), 1);
  }
  assert.equal(FallbackRing.current(), main);
  const c = new Collector();
  main.nop(c);
  await until(() => c.events.length === 1, 'main ring still works');
});
