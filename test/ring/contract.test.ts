/**
 * The Ring's contract, whichever engine runs it: every test uses this
 * thread's ring (Ring.current()), so the io_uring run and the epoll run
 * (scripts/run-tests.js runs each file on both) check the same behaviour.
 * What only one engine does stays in ring.test.ts / bufring.test.ts
 * (io_uring) and fallback*.test.ts (epoll).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { backend } from '../../src/backend';
import { ClosedError, InvalidArgumentError } from '../../src/core/errors';
import { CQE_F_BUFFER, CQE_F_MORE, CQE_F_NOTIF, IOSQE_IO_LINK, NOTIF_USAGE_ZC_COPIED, Op, native } from '../../src/core/native';
import { currentRing } from '../../src/ring/current';
import type { IoRing } from '../../src/ring/io-ring';
import { Ring, type CompletionTarget } from '../../src/ring/ring';
import { Child } from '../net/keep-alive';
import {
  Collector,
  ECANCELED,
  ECONNREFUSED,
  EINVAL,
  ENOBUFS,
  ENOENT,
  EPIPE,
  listener,
  nativeJs,
  ringJs,
  runWorker,
  tick,
  until,
  withBufferGroup,
  withPool,
  withPoolAndPair,
} from './helpers';

const uring = backend().mode === 'io_uring';
/** What a recv CQE's flags say in both engines (io_uring may add F_SOCK_NONEMPTY, F_BUF_MORE). */
const RECV_FLAGS = CQE_F_BUFFER | CQE_F_MORE | 0xffff0000;

test('one Ring per thread, made only by Ring.current(); currentRing() is it; capabilities name the engine', () => {
  const ring: IoRing = Ring.current();
  assert.equal(Ring.current(), ring);
  assert.equal(currentRing(), ring);
  assert.throws(() => new (Ring as any)(Symbol('x')), InvalidArgumentError);
  const caps = ring.capabilities;
  assert.ok(Object.isFrozen(caps));
  assert.equal(caps.splice, uring);
  assert.equal(caps.fixedBuffers, uring);
  assert.equal(caps.zeroCopySend, uring ? 'SEND_ZC' : 'MSG_ZEROCOPY');
  assert.equal(caps.sendvMax, ring.sendvMax);
  if (!uring) assert.equal(ring.sendv(new Collector(), 0, 0, new Int32Array(2), 1, 1), -1, 'no SENDV: send piece by piece');
});

test('1,000 NOPs in one turn: each op id completes exactly once, in one flush, never inside queue() or flush()', async () => {
  const ring = Ring.current();
  await until(() => ring.pending === 0, 'an idle ring');
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
  assert.equal(ids.size, 1000, 'distinct op ids');
  assert.equal(ring.pending, 1000);
  ring.flush();
  assert.equal(seen.size, 0, 'completions are never delivered inside queue() or flush()');
  await until(() => seen.size === 1000, '1000 completions');
  for (const id of ids) assert.equal(seen.get(id), 1, `op ${id} completed once`);
  const after = ring.stats();
  assert.equal(after.submitted - before.submitted, 1000);
  assert.equal(after.completed - before.completed, 1000);
  assert.equal(after.submitCalls - before.submitCalls, 1, 'one flush for one turn');
  assert.ok(after.reapBatches - before.reapBatches >= 1);
  assert.ok(after.completionsPerBatch > 1);
  assert.ok(after.submittedPerEnter > 0);
  assert.equal(after.inflight, 0);
  assert.equal(ring.pending, 0);
});

test('schedule(): preFlush runs once at the start of the next flush, its ops go in that flush; room counts down', async () => {
  const ring = Ring.current();
  const c = new Collector();
  await until(() => ring.pending === 0, 'an idle ring');
  const room = ring.room;
  assert.ok(room >= 64 && room <= 1024, `room ${room}`);
  ring.nop(c);
  assert.equal(ring.room, room - 1);
  let calls = 0;
  ring.schedule({
    preFlush() {
      calls++;
      ring.nop(c);
      ring.nop(c);
    },
  });
  const before = ring.stats().submitCalls;
  await tick();
  assert.equal(calls, 1);
  assert.equal(ring.stats().submitCalls - before, 1, "one flush took the NOP and the hook's two");
  assert.equal(ring.room, room);
  await until(() => c.events.length === 3, '3 completions');
  // A hook scheduled from a hook runs in the same flush.
  const order: string[] = [];
  ring.schedule({ preFlush: () => (order.push('a'), ring.schedule({ preFlush: () => order.push('b') })) });
  ring.flush();
  assert.deepEqual(order, ['a', 'b']);
});

test('ops queued by completion handlers go out with the flush that ends their batch, also after a handler flushed; later ops flush by themselves', async () => {
  const ring = Ring.current();
  await until(() => ring.pending === 0, 'an idle ring');
  const c = new Collector();
  let round = 0;
  // Each completion queues the next op from inside the dispatch; the second
  // also flushes there (a full batch does) and queues after that flush.
  const chain: CompletionTarget = {
    onCompletion() {
      round++;
      if (round === 1) ring.nop(chain);
      else if (round === 2) {
        ring.nop(c);
        ring.flush();
        ring.nop(chain);
      }
    },
  };
  ring.nop(chain);
  await until(() => round === 3 && c.events.length === 1, 'the ops queued by handlers completed');
  // Outside any dispatch, a queued op still gets its own flush at the end of the turn.
  await new Promise((r) => setTimeout(r, 1));
  ring.nop(c);
  await until(() => c.events.length === 2, 'a NOP queued from a timer completed');
  assert.equal(ring.pending, 0);
});

test('more ops than one flush takes: queue() flushes by itself, stats add up; stale ids cannot be cancelled', async () => {
  const ring = Ring.current();
  await until(() => ring.pending === 0, 'an idle ring');
  const before = ring.stats();
  const c = new Collector();
  for (let i = 0; i < 2500; i++) ring.nop(c);
  await until(() => c.events.length === 2500, '2500 completions');
  const s = ring.stats();
  assert.equal(s.submitted - before.submitted, 2500);
  assert.equal(s.completed - before.completed, 2500);
  assert.ok(s.submitCalls - before.submitCalls >= 3, 'a flush takes at most 1,024');
  assert.ok(s.enters >= s.submitCalls);
  assert.equal(s.inflight, 0);
  assert.equal(s.cqOverflow, 0);
  assert.equal(new Set(c.events.map((e) => e[0])).size, 2500);
  // Op ids are recycled with a new generation: a stale id cannot be cancelled.
  assert.equal(ring.cancel(c.events[0][0]), false);
  assert.equal(ring.cancel(-5), false);
  assert.equal(ring.cancel(1.5), false);
  assert.equal(ring.cancel(NaN), false);
  assert.equal(ring.cancel(12345678), false);
});

test('send and recv through a pool; bad ops complete with -EINVAL; shutdown gives end of stream; a detached slot is reused', async () => {
  const ring = Ring.current();
  let index = -1;
  await withPoolAndPair(ring, async (p, s) => {
    index = p.index;
    // recv first: nothing there yet, so it waits.
    const rc = new Collector();
    const rid = ring.recv(rc, s.b, p.index, 4096, 100);
    await tick();
    await tick();
    assert.deepEqual(rc.events, []);
    assert.equal(ring.stats().inflight, 1);
    p.bytes.set(Buffer.from('hello ring'), 0);
    const sc = new Collector();
    const sid = ring.send(sc, s.a, p.index, 0, 10);
    await until(() => rc.events.length === 1 && sc.events.length === 1, 'send and recv');
    assert.deepEqual(sc.events, [[sid, 10, 0]]);
    assert.deepEqual(rc.events, [[rid, 10, 0]]);
    assert.equal(Buffer.from(p.bytes.subarray(4096, 4106)).toString(), 'hello ring');

    // Out of the pool's bounds, a pool that is not attached, no fd, a flag it does not take, no such op.
    const bad = new Collector();
    ring.send(bad, s.a, p.index, (1 << 20) - 2, 5);
    ring.recv(bad, s.b, 63, 0, 5);
    ring.send(bad, -1, p.index, 0, 5);
    ring.queue(bad, Op.Send, s.a, 1, p.index, 0, 0, 0, 0, -1, 0, 1 << 3 /* IOSQE_ASYNC */);
    ring.queue(bad, 99 as Op, s.a);
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
    assert.equal(ring.stats().inflight, 0);
  });
  const again = withPool(ring);
  assert.equal(again.index, index, 'the slot is free again');
  again.done();
});

test('recv with MSG_WAITALL completes only with the full length', async () => {
  const ring = Ring.current();
  await withPoolAndPair(ring, async (p, s) => {
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
  });
});

test('multishot recv from a provided-buffer group: F_BUFFER | bid << 16 | F_MORE, -ENOBUFS when empty, refused PROVIDEs go back to the owner', async () => {
  const ring = Ring.current();
  await withBufferGroup(ring, async (p, s, group, owner, failed) => {
    assert.throws(() => ring.registerBufRing(group, 4, owner), (e: any) => typeof e.code === 'string', 'registered already');
    assert.throws(() => ring.registerBufRing(8, 4, {} as any), InvalidArgumentError);

    // No buffers at all: -ENOBUFS at once.
    const empty = new Collector();
    ring.recvMulti(empty, s.b, group);
    await until(() => empty.events.length === 1, 'ENOBUFS');
    assert.deepEqual(empty.events[0].slice(1), [ENOBUFS, 0]);

    // Two 8-byte buffers (ids 11 and 12) and 17 bytes on the wire.
    ring.provide(p.index, 1000, 8, group, 11);
    ring.provide(p.index, 2000, 8, group, 12);
    // Refused: a pool that is not attached, an empty buffer, a bid out of range.
    ring.provide(60, 0, 8, group, 13);
    ring.provide(p.index, 0, 0, group, 14);
    ring.provide(p.index, 0, 8, group, 70000);
    ring.flush();
    assert.deepEqual(failed, [
      [13, EINVAL],
      [14, EINVAL],
      [70000, EINVAL],
    ], 'told inside the flush that refused them');
    const mc = new Collector();
    const mid = ring.recvMulti(mc, s.b, group);
    p.bytes.set(Buffer.from('AAAAAAAABBBBBBBBC'), 0);
    const sc = new Collector();
    ring.send(sc, s.a, p.index, 0, 17);
    await until(() => mc.events.length >= 3, 'two buffers and the end');
    const [e1, e2, e3] = mc.events;
    assert.equal(e1[0], mid);
    assert.equal(e1[1], 8);
    assert.equal(e1[2] & RECV_FLAGS, CQE_F_BUFFER | CQE_F_MORE | (11 << 16));
    assert.equal(e2[1], 8);
    assert.equal(e2[2] & RECV_FLAGS, CQE_F_BUFFER | CQE_F_MORE | (12 << 16));
    assert.equal(Buffer.from(p.bytes.subarray(1000, 1008)).toString(), 'AAAAAAAA');
    assert.equal(Buffer.from(p.bytes.subarray(2000, 2008)).toString(), 'BBBBBBBB');
    // The group ran dry with a byte left: the op ends without F_MORE.
    assert.deepEqual(e3.slice(1), [ENOBUFS, 0]);
    assert.equal(mc.events.length, 3);

    // Re-armed with three buffers: the byte left, new data, then end of stream (res 0, final).
    for (let bid = 0; bid < 3; bid++) ring.provide(p.index, 4096 * (bid + 1), 64, group, bid);
    const again = new Collector();
    ring.recvMulti(again, s.b, group);
    await until(() => again.events.length === 1, 'the byte left');
    assert.deepEqual([again.events[0][1], again.events[0][2] & RECV_FLAGS], [1, CQE_F_BUFFER | CQE_F_MORE]);
    assert.equal(Buffer.from(p.bytes.subarray(4096, 4097)).toString(), 'C');
    p.bytes.set(Buffer.from('xyz'), 0);
    ring.send(sc, s.a, p.index, 0, 3);
    await until(() => again.events.length === 2, 'data');
    assert.deepEqual([again.events[1][1], again.events[1][2] & RECV_FLAGS], [3, CQE_F_BUFFER | CQE_F_MORE | (1 << 16)]);
    native().sockShutdown(s.a, 1);
    await until(() => again.events.length === 3, 'end of stream');
    assert.deepEqual([again.events[2][1], again.events[2][2] & CQE_F_MORE], [0, 0]);
    assert.equal(failed.length, 3);
  });
});

test('multishot accept: one CQE with F_MORE per connection; cancel() ends it with -ECANCELED and frees the op', async () => {
  const ring = Ring.current();
  const n = native();
  const l = listener();
  const ac = new Collector();
  await until(() => ring.pending === 0, 'an idle ring');
  const id = ring.accept(ac, l.fd, true);
  await tick();
  assert.equal(ring.stats().inflight, 1);
  const clients: number[] = [];
  const cc = new Collector();
  try {
    for (let i = 0; i < 3; i++) {
      const fd = n.sockOpen(4, 'tcp');
      clients.push(fd);
      const aux = ring.allocAux();
      const len = ring.writeSockaddr(aux, '127.0.0.1', l.port);
      ring.connect(cc, fd, aux, len);
      ring.flush(); // the sockaddr is read by the time the flush returns
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
    await until(() => ring.stats().inflight === 0 && ring.pending === 0, 'nothing in flight');
    for (const e of ac.events.slice(0, 3)) n.sockClose(e[1]);
    // CANCEL of an op that is not there.
    const x = new Collector();
    ring.queue(x, Op.Cancel, -1, 12345);
    await until(() => x.events.length === 1, 'cancel');
    assert.equal(x.events[0][1], ENOENT);
  } finally {
    for (const fd of clients) n.sockClose(fd);
    n.sockClose(l.fd);
  }
});

test('connect to a closed port completes with -ECONNREFUSED; a bad sockaddr slot with -EINVAL', async () => {
  const ring = Ring.current();
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
  const ring = Ring.current();
  await withPoolAndPair(ring, async (p, s) => {
    const words = ['one ', 'two ', 'three ', 'four'];
    let off = 0;
    const c = new Collector();
    const ids: number[] = [];
    for (const [i, w] of words.entries()) {
      p.bytes.set(Buffer.from(w), off);
      ids.push(ring.queue(c, Op.Send, s.a, w.length, p.index, off, 0, 0, 0, -1, 0, i < words.length - 1 ? IOSQE_IO_LINK : 0));
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
    const a = ring.queue(f, Op.Nop, -1, 0, -1, 0, 0, 0, 0, -1, 0, IOSQE_IO_LINK);
    const b = ring.queue(f, Op.Send, s.a, 4, p.index, 0, 0, 0, 0, -1, 0, IOSQE_IO_LINK);
    const d = ring.queue(f, Op.Send, s.b, 4, p.index, 0, 0, 0, 0, -1, 0, IOSQE_IO_LINK);
    const e = ring.nop(f);
    const after = ring.nop(f); // not linked: runs whatever happens
    await until(() => f.events.length === 5, 'the chain');
    const res = new Map(f.events.map(([id, r]) => [id, r]));
    assert.equal(res.get(a), 0);
    assert.equal(res.get(b), EPIPE);
    assert.equal(res.get(d), ECANCELED);
    assert.equal(res.get(e), ECANCELED);
    assert.equal(res.get(after), 0);
  });
});

test('SEND_ZC over loopback: the result with F_MORE, then a notification that reports the copy', async () => {
  const ring = Ring.current();
  await withPoolAndPair(ring, async (p, s) => {
    const size = 256 << 10;
    for (let i = 0; i < size; i++) p.bytes[i] = (i * 7) & 0xff;
    const zc = new Collector();
    const id = ring.sendZc(zc, s.a, p.index, 0, size, 0x100 /* MSG_WAITALL: io_uring may otherwise stop short */);
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
  });
});

test('non-int32 numbers and bad targets are refused before they reach the submit array; closeFd(t, NaN) leaves fd 0 alone', async () => {
  const ring = Ring.current();
  const target = new Collector();
  const before = ring.pending;
  // NaN, 1.5 and 2**32 + 1 would become fd 0, 1 and 1 in an Int32Array.
  for (const v of [NaN, 1.5, 2 ** 32 + 1, Infinity, '3' as unknown as number, undefined as unknown as number]) {
    assert.throws(() => ring.send(target, v, 0, 0, 1), { code: 'ERR_MAIO_INVALID_ARG' }, `send(fd ${String(v)})`);
    assert.throws(() => ring.shutdown(target, v, 1), { code: 'ERR_MAIO_INVALID_ARG' }, `shutdown(fd ${String(v)})`);
    if (v !== undefined) assert.throws(() => ring.recv(target, 5, 0, v, 1), { code: 'ERR_MAIO_INVALID_ARG' }, `recv(offset ${String(v)})`);
  }
  for (const t of [null, {}, { onCompletion: 5 }]) assert.throws(() => ring.nop(t as never), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.equal(ring.pending, before, 'a refused op was queued');
  // Numbers of the right type but wrong meaning: the op completes with -EINVAL.
  ring.send(target, -5, 63, 0, 1);
  ring.recv(target, 5, 0, -1, 1);
  await until(() => target.events.length === 2, 'the two invalid ops to complete');
  assert.deepEqual(target.events.map((e) => e[1]), [EINVAL, EINVAL]);
  assert.throws(() => ring.freeAux(3), { code: 'ERR_MAIO_INVALID_ARG' });
  // The case that once closed fd 0 on epoll.
  const stdinOpen = fs.existsSync('/proc/self/fd/0');
  assert.throws(() => ring.closeFd(target, NaN), { code: 'ERR_MAIO_INVALID_ARG' });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fs.existsSync('/proc/self/fd/0'), stdinOpen, 'fd 0 untouched');
  assert.equal(ring.pending, before);
});

test('a target that closes the ring mid-batch: every op still completes exactly once', async () => {
  const ring = Ring.current();
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
  assert.notEqual(Ring.current(), ring, 'a new ring after close');
});

test('close() completes ops in flight and queued with -ECANCELED; then ERR_MAIO_CLOSED; a new ring after', async () => {
  const ring = Ring.current();
  const n = native();
  const l = listener();
  const c = new Collector();
  const id = ring.accept(c, l.fd, true);
  await tick();
  assert.equal(ring.stats().inflight, 1);
  const queuedOnly = new Collector();
  const qid = ring.nop(queuedOnly); // queued, not yet flushed
  ring.close();
  ring.close();
  n.sockClose(l.fd);
  assert.equal(ring.closed, true);
  assert.deepEqual(c.events, [[id, ECANCELED, 0]]);
  assert.deepEqual(queuedOnly.events, [[qid, ECANCELED, 0]]);
  assert.equal(ring.stats().inflight, 0);
  assert.throws(() => ring.nop(c), ClosedError);
  assert.throws(() => ring.flush(), ClosedError);
  assert.throws(() => ring.provide(0, 0, 1, 0, 0), ClosedError);
  assert.throws(() => ring.schedule({ preFlush() {} }), ClosedError);
  assert.throws(() => ring.registerBufRing(1, 4, { onProvideFailed() {} }), ClosedError);
  assert.equal(ring.cancel(id), false);
  ring.unregisterBufRing(1); // no-op once closed
  const next = Ring.current();
  assert.notEqual(next, ring);
  const c2 = new Collector();
  next.nop(c2);
  await until(() => c2.events.length === 1, 'NOP on the new ring');
});

test('an idle ring does not keep the process alive', () => {
  const code = `
    const { Ring } = require(${JSON.stringify(ringJs)});
    const ring = Ring.current();
    ring.nop({ onCompletion(id, res) { console.log('done ' + res); } });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.signal, null, 'the child had to be killed: something kept it alive');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done 0');
});

test('an op in flight keeps the process alive until it completes', () => {
  // Only the ring's recv references the loop: node neither reads the client
  // (paused) nor keeps the server or the timer alive (unref).
  const code = `
    const net = require('node:net');
    const n = require(${JSON.stringify(nativeJs)}).native();
    const { Ring } = require(${JSON.stringify(ringJs)});
    const ring = Ring.current();
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

/** A child whose ring arms a multishot accept for a target unref'd with setRef(); `then` runs after. */
function acceptChild(then: string): string {
  // node's own server is unref'd and never sees a connection: only the ring's ops may hold the child.
  return `
    const net = require('node:net');
    const { Ring } = require(${JSON.stringify(ringJs)});
    const ring = Ring.current();
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      srv.unref();
      const target = { onCompletion(id, res) { console.log((id === nop ? 'nop ' : 'accept ') + res); } };
      ring.setRef(target, false);
      ring.accept(target, srv._handle.fd, true);
      let nop = -1;
      ${then}
    });`;
}

test("setRef(target, false): the target's accept does not keep the process alive, its other ops do", () => {
  // The NOP is not a wait: it holds the process until its completion, then nothing does.
  const r = spawnSync(process.execPath, ['-e', acceptChild('nop = ring.nop(target);')], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.signal, null, 'the child had to be killed: the unref\'d accept kept it alive');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'nop 0');
});

test('setRef(target, true) after false: the accept already armed keeps the process alive again', async () => {
  const c = new Child(acceptChild("ring.setRef(target, true); console.log('ready');"));
  await c.line('ready');
  await c.staysAlive('a target ref()ed again');
});

test('worker threads: their own ring, clean exit with ops in flight, terminate()', async () => {
  const main = Ring.current();
  const { exit, messages } = await runWorker(`
    const { parentPort } = require('node:worker_threads');
    const { Ring } = require(${JSON.stringify(ringJs)});
    const ring = Ring.current();
    let left = 100;
    const t = { onCompletion() { if (--left === 0) parentPort.postMessage(ring.stats()); } };
    for (let i = 0; i < 100; i++) ring.nop(t);`);
  assert.equal(exit, 0);
  assert.equal(messages.length, 1);
  assert.equal(messages[0].submitted, 100, 'the worker counted only its own ops');
  assert.equal(messages[0].completed, 100);
  // Exits with an accept in flight: the env cleanup closes the worker's ring.
  for (let round = 0; round < 3; round++) {
    const r = await runWorker(`
      const { parentPort } = require('node:worker_threads');
      const net = require('node:net');
      const { Ring } = require(${JSON.stringify(ringJs)});
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const ring = Ring.current();
        ring.accept({ onCompletion() {} }, server._handle.fd, true);
        ring.nop({ onCompletion() { parentPort.postMessage(ring.stats().inflight); process.exit(${round}); } });
      });`);
    assert.equal(r.exit, round);
    assert.deepEqual(r.messages, [1]);
  }
  for (let i = 0; i < 8; i++) {
    const w = new Worker(
      `const net = require('node:net');
       const { parentPort } = require('node:worker_threads');
       const { Ring } = require(${JSON.stringify(ringJs)});
       const server = net.createServer().listen(0, '127.0.0.1', () => {
         const ring = Ring.current();
         ring.accept({ onCompletion() {} }, server._handle.fd, true);
         ring.nop({ onCompletion() { parentPort.postMessage('ready'); } });
       });`,
      { eval: true },
    );
    await new Promise((r) => w.once('message', r));
    assert.equal(await w.terminate(), 1);
  }
  assert.equal(Ring.current(), main);
  const c = new Collector();
  main.nop(c);
  await until(() => c.events.length === 1, 'main ring still works');
});
