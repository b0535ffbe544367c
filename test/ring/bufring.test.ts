/** Provided-buffer rings (ringRegisterBufRing, PROVIDE descriptors) and CONNECT through the ring, on the real kernel. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { backend } from '../../src/backend';
import { ClosedError, InvalidArgumentError, InvalidHandleError, OutOfRangeError, fromNative } from '../../src/core/errors';
import { CQE_F_BUFFER, CQE_F_MORE, DESC_INTS, Op, native } from '../../src/core/native';
import { Ring, type CompletionTarget } from '../../src/ring/ring';

const uring = (() => {
  try {
    return backend().mode === 'io_uring' && backend().capabilities.pbufRing;
  } catch {
    return false;
  }
})();
const skip = uring
  ? false
  : `tests io_uring provided-buffer rings; this run's backend is ${(() => { try { return `${backend().mode} (${backend().reason || 'no IORING_REGISTER_PBUF_RING'})`; } catch (e) { return String(e); } })()}`;

function throwsNative(fn: () => unknown, cls: Function, re?: RegExp) {
  assert.throws(
    () => {
      try {
        fn();
      } catch (e) {
        throw fromNative(e);
      }
    },
    (e: any) => e instanceof cls && (!re || re.test((e as Error).message)),
  );
}

async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 20000 && !cond(); i++) await new Promise((r) => setTimeout(r, i < 100 ? 0 : 5));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

class Collector implements CompletionTarget {
  events: [number, number, number][] = [];
  onCompletion(opId: number, res: number, flags: number): void {
    this.events.push([opId, res, flags]);
  }
}

function rawRing() {
  const submit = new Int32Array(16 * DESC_INTS);
  const stats = new Float64Array(16);
  const handle = native().ringCreate({
    entries: 8,
    submit,
    completions: new Int32Array(64),
    aux: new Uint8Array(256),
    stats,
    onCompletions() {},
  });
  return { handle, submit, stats };
}

/** A TCP socket connected through the ring. */
async function ringConnect(ring: Ring, port: number): Promise<number> {
  const fd = native().sockOpen(4, 'tcp');
  const aux = ring.allocAux();
  const c = new Collector();
  ring.connect(c, fd, aux, ring.writeSockaddr(aux, '127.0.0.1', port));
  await until(() => c.events.length === 1, 'connect');
  ring.freeAux(aux);
  assert.equal(c.events[0][1], 0, 'connected');
  return fd;
}

function provideDesc(s: Int32Array, i: number, f: { pool?: number; off?: number; len?: number; group?: number; bid?: number; sqe?: number }) {
  const b = i * DESC_INTS;
  s.fill(0, b, b + DESC_INTS);
  s[b] = Op.Provide;
  s[b + 1] = -1;
  s[b + 2] = f.bid ?? 0;
  s[b + 3] = f.len ?? 4096;
  s[b + 4] = f.pool ?? 0;
  s[b + 5] = f.off ?? 0;
  s[b + 8] = f.group ?? 1;
  s[b + 9] = -1;
  s[b + 13] = f.sqe ?? 0;
}

test('ringRegisterBufRing / ringUnregisterBufRing validate their arguments', { skip }, () => {
  const n = native();
  const r = rawRing();
  try {
    throwsNative(() => (n.ringRegisterBufRing as any)(), InvalidArgumentError);
    throwsNative(() => n.ringRegisterBufRing({} as any, 1, 8), InvalidHandleError);
    throwsNative(() => n.ringRegisterBufRing(r.handle, -1, 8), OutOfRangeError, /group/);
    throwsNative(() => n.ringRegisterBufRing(r.handle, 65536, 8), OutOfRangeError, /group/);
    throwsNative(() => n.ringRegisterBufRing(r.handle, '1' as any, 8), InvalidArgumentError, /group/);
    throwsNative(() => n.ringRegisterBufRing(r.handle, 1, 0), OutOfRangeError, /entries/);
    throwsNative(() => n.ringRegisterBufRing(r.handle, 1, 3), OutOfRangeError, /power of two/);
    throwsNative(() => n.ringRegisterBufRing(r.handle, 1, 65536), OutOfRangeError, /entries/);
    n.ringRegisterBufRing(r.handle, 1, 8);
    throwsNative(() => n.ringRegisterBufRing(r.handle, 1, 8), OutOfRangeError, /registered already/);
    throwsNative(() => n.ringUnregisterBufRing(r.handle, 2), OutOfRangeError, /not registered/);
    throwsNative(() => n.ringUnregisterBufRing(r.handle, 70000), OutOfRangeError);
    n.ringUnregisterBufRing(r.handle, 1);
    n.ringRegisterBufRing(r.handle, 1, 8); // the id is free again
  } finally {
    n.ringClose(r.handle);
  }
  throwsNative(() => n.ringRegisterBufRing(r.handle, 3, 8), ClosedError);
  throwsNative(() => n.ringUnregisterBufRing(r.handle, 1), ClosedError);
});

test('a bad PROVIDE descriptor throws, naming the field, and nothing is applied or submitted', { skip }, () => {
  const n = native();
  const r = rawRing();
  const pool = n.poolCreate({ size: 1 << 20 });
  try {
    n.ringRegisterPool(r.handle, pool.handle, 0);
    n.ringRegisterBufRing(r.handle, 1, 8);
    const cases: [Parameters<typeof provideDesc>[2], string][] = [
      [{ pool: 1 }, 'pool'], // not attached
      [{ pool: -1 }, 'pool'],
      [{ pool: 64 }, 'pool'],
      [{ len: 0 }, 'len'],
      [{ len: -5 }, 'len'],
      [{ off: (1 << 20) - 100, len: 4096 }, 'bufOff'],
      [{ off: -4096 }, 'bufOff'],
      [{ bid: 65536 }, 'userData'],
      [{ bid: -1 }, 'userData'],
      [{ group: 2 }, 'bufGroup'], // not registered
      [{ group: 70000 }, 'bufGroup'],
      [{ sqe: 1 << 2 }, 'sqeFlags'], // a PROVIDE cannot be linked
    ];
    for (const [bad, field] of cases) {
      provideDesc(r.submit, 0, { bid: 0 });
      r.submit.fill(0, DESC_INTS, 2 * DESC_INTS); // a NOP
      r.submit[DESC_INTS + 1] = -1;
      provideDesc(r.submit, 2, bad);
      let err: any;
      try {
        n.ringSubmit(r.handle, 3);
      } catch (e) {
        err = e;
      }
      assert.ok(err, `PROVIDE ${JSON.stringify(bad)} was accepted`);
      assert.equal(err.code, 'ERR_MAIO_INVALID_DESCRIPTOR');
      assert.equal(err.index, 2);
      assert.equal(err.field, field, err.message);
    }
    assert.equal(r.stats[0], 0, 'no io_uring_enter');
    assert.equal(r.stats[1], 0, 'nothing submitted');
    // A batch of PROVIDEs alone never enters the kernel.
    for (let i = 0; i < 4; i++) provideDesc(r.submit, i, { bid: i, off: i * 4096 });
    assert.equal(n.ringSubmit(r.handle, 4), 4);
    assert.equal(r.stats[0], 0, 'PROVIDEs need no io_uring_enter');
  } finally {
    n.ringClose(r.handle);
    n.poolClose(pool.handle);
  }
});

test('multishot recv picks provided pool buffers; ENOBUFS ends it; re-armed after more buffers; EOF is res 0', { skip }, async () => {
  const ring = Ring.current()!;
  const n = native();
  const pool = n.poolCreate({ size: 1 << 20 });
  const att = ring.attachPool(pool.handle);
  const bytes = new Uint8Array(pool.region);
  const group = 4242;
  const failed: number[] = [];
  ring.registerBufRing(group, 8, { onProvideFailed: (bid) => failed.push(bid) });
  const BUF = 4096;
  let peer: net.Socket | undefined;
  const server = net.createServer((s) => (peer = s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // A socket only the ring reads (a node:net client would race it with epoll reads).
  const fd = await ringConnect(ring, (server.address() as net.AddressInfo).port);
  await until(() => peer !== undefined, 'server side');
  try {
    for (let bid = 0; bid < 2; bid++) ring.provide(att.index, bid * BUF, BUF, group, bid);
    const c = new Collector();
    const id = ring.recvMulti(c, fd, group);
    peer!.write(Buffer.alloc(100, 'a'));
    await until(() => c.events.length === 1, 'first recv');
    let [opId, res, flags] = c.events[0];
    assert.equal(opId, id);
    assert.equal(res, 100);
    assert.ok(flags & CQE_F_BUFFER, 'names a buffer');
    assert.ok(flags & CQE_F_MORE, 'multishot goes on');
    const bid0 = flags >>> 16;
    assert.ok(bid0 === 0 || bid0 === 1);
    assert.equal(Buffer.from(bytes.subarray(bid0 * BUF, bid0 * BUF + 100)).toString(), 'a'.repeat(100));

    // Two more messages: the second buffer, then no buffer left: -ENOBUFS ends the recv.
    peer!.write(Buffer.alloc(10, 'b'));
    await until(() => c.events.length === 2, 'second recv');
    [, res, flags] = c.events[1];
    assert.equal(res, 10);
    assert.equal(flags >>> 16, 1 - bid0);
    peer!.write(Buffer.alloc(10, 'c'));
    await until(() => c.events.length === 3, 'ENOBUFS');
    [, res, flags] = c.events[2];
    assert.equal(res, -105, 'ENOBUFS');
    assert.equal(flags & CQE_F_MORE, 0, 'the multishot recv ended');

    // Give one buffer back, arm again: the waiting bytes arrive in it.
    ring.provide(att.index, 5 * BUF, BUF, group, 5);
    const c2 = new Collector();
    ring.recvMulti(c2, fd, group);
    await until(() => c2.events.length === 1, 'recv after re-arm');
    [, res, flags] = c2.events[0];
    assert.equal(res, 10);
    assert.equal(flags >>> 16, 5);
    assert.equal(Buffer.from(bytes.subarray(5 * BUF, 5 * BUF + 10)).toString(), 'c'.repeat(10));
    ring.provide(att.index, 6 * BUF, BUF, group, 6);
    peer!.end();
    await until(() => c2.events.length === 2, 'EOF');
    assert.equal(c2.events[1][1], 0);
    assert.equal(c2.events[1][2] & CQE_F_MORE, 0);
    assert.deepEqual(failed, []);
    // A PROVIDE the ring refuses goes back to its owner.
    ring.provide(att.index, (1 << 20) - 10, BUF, group, 9);
    ring.flush();
    assert.deepEqual(failed, [9]);
  } finally {
    ring.unregisterBufRing(group);
    ring.detachPool(att.index);
    n.sockClose(fd);
    server.close();
    n.poolClose(pool.handle);
  }
});

test('CONNECT through the ring with the sockaddr in an aux slot: success and ECONNREFUSED', { skip }, async () => {
  const ring = Ring.current()!;
  const n = native();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const fd = n.sockOpen(4, 'tcp');
  const aux = ring.allocAux();
  try {
    const len = ring.writeSockaddr(aux, '127.0.0.1', port);
    const c = new Collector();
    ring.connect(c, fd, aux, len);
    await until(() => c.events.length === 1, 'connect');
    assert.equal(c.events[0][1], 0);
    await until(() => accepted === 1, 'accept');
  } finally {
    n.sockClose(fd);
  }
  await new Promise<void>((r) => server.close(() => r()));
  const fd2 = n.sockOpen(4, 'tcp');
  try {
    const len = ring.writeSockaddr(aux, '127.0.0.1', port);
    const c = new Collector();
    ring.connect(c, fd2, aux, len);
    await until(() => c.events.length === 1, 'refused connect');
    assert.equal(c.events[0][1], -111, 'ECONNREFUSED');
  } finally {
    ring.freeAux(aux);
    n.sockClose(fd2);
  }
});
