/** native/fallback.c: every entry point validates its arguments with typed errors; kernel errors are numbers. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  ClosedError,
  InvalidArgumentError,
  InvalidHandleError,
  OutOfRangeError,
  fromNative,
} from '../../src/core/errors';
import { native, type FallbackHandle } from '../../src/core/native';
import { sockaddr } from '../../src/net/address';
import { listener, socketPair, until } from './helpers';

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

function create(onEvents: (n: number) => void = () => {}) {
  const events = new Int32Array(64);
  const aux = new Uint8Array(256);
  const notes = new Int32Array(24);
  const handle = native().fallbackCreate({ events, aux, notes, onEvents });
  return { handle, events, aux, notes };
}

test('fallbackCreate validates its options', () => {
  const n = native();
  const good = () => ({ events: new Int32Array(8), aux: new Uint8Array(128), notes: new Int32Array(3), onEvents() {} });
  const bad = (patch: Record<string, unknown>) => ({ ...good(), ...patch }) as any;
  throwsNative(() => n.fallbackCreate(undefined as any), InvalidArgumentError);
  throwsNative(() => (n.fallbackCreate as any)(), InvalidArgumentError, /arguments/);
  throwsNative(() => n.fallbackCreate(7 as any), InvalidArgumentError);
  for (const key of ['events', 'aux', 'notes', 'onEvents']) {
    const o: any = good();
    delete o[key];
    throwsNative(() => n.fallbackCreate(o), InvalidArgumentError, new RegExp(key));
  }
  throwsNative(() => n.fallbackCreate(bad({ events: new Uint32Array(8) })), InvalidArgumentError, /events/);
  throwsNative(() => n.fallbackCreate(bad({ events: new Int32Array(3) })), OutOfRangeError, /events/);
  throwsNative(() => n.fallbackCreate(bad({ events: [1, 2] })), InvalidArgumentError, /events/);
  throwsNative(() => n.fallbackCreate(bad({ aux: new Int8Array(128) })), InvalidArgumentError, /aux/);
  throwsNative(() => n.fallbackCreate(bad({ aux: new Uint8Array(16) })), OutOfRangeError, /aux/);
  throwsNative(() => n.fallbackCreate(bad({ notes: new Int32Array(4) })), OutOfRangeError, /notes/);
  throwsNative(() => n.fallbackCreate(bad({ onEvents: 'no' })), InvalidArgumentError, /onEvents/);
  const ok = n.fallbackCreate(good());
  n.fallbackClose(ok);
});

test('every fallback entry point checks its handle, its numbers and pool bounds', () => {
  const n = native();
  const fb = create();
  const h = fb.handle;
  const pool = n.poolCreate({ size: 1 << 20 });
  try {
    // Not a fallback handle (a pool handle, a plain object, nothing).
    const entry: [string, unknown[]][] = [
      ['fallbackClose', []],
      ['fallbackAttachPool', [pool.handle, 0]],
      ['fallbackDetachPool', [0]],
      ['fallbackWatch', [0, true]],
      ['fallbackRef', [true]],
      ['fallbackWake', []],
      ['fallbackRecv', [0, 0, 0, 1, 0]],
      ['fallbackSend', [0, 0, 0, 1, 0]],
      ['fallbackSendZc', [0, 0, 0, 1, 0]],
      ['fallbackZcEnable', [0]],
      ['fallbackZcNotes', [0]],
      ['fallbackAccept', [0, 0]],
      ['fallbackConnect', [0, 0, 16]],
      ['fallbackConnectResult', [0]],
      ['fallbackShutdown', [0, 1]],
      ['fallbackCloseFd', [0]],
    ];
    for (const [name, rest] of entry) {
      const fn = (n as any)[name] as (...a: unknown[]) => unknown;
      for (const wrong of [{}, pool.handle, null, 5]) {
        throwsNative(() => fn(wrong, ...rest), InvalidHandleError);
      }
      throwsNative(() => fn(), InvalidArgumentError, /arguments/);
    }

    assert.equal(n.fallbackAttachPool(h, pool.handle, 3), 1 << 20);
    throwsNative(() => n.fallbackAttachPool(h, pool.handle, 3), OutOfRangeError, /in use/);
    throwsNative(() => n.fallbackAttachPool(h, pool.handle, 64), OutOfRangeError);
    throwsNative(() => n.fallbackAttachPool(h, {} as any, 4), InvalidHandleError);
    throwsNative(() => n.fallbackDetachPool(h, 4), OutOfRangeError, /empty/);

    for (const name of ['fallbackRecv', 'fallbackSend', 'fallbackSendZc'] as const) {
      const fn = n[name].bind(n) as (...a: unknown[]) => number;
      throwsNative(() => fn(h, -1, 3, 0, 1, 0), OutOfRangeError, /fd/);
      throwsNative(() => fn(h, '0', 3, 0, 1, 0), InvalidArgumentError, /fd/);
      throwsNative(() => fn(h, 0, 4, 0, 1, 0), OutOfRangeError, /not attached/);
      throwsNative(() => fn(h, 0, 64, 0, 1, 0), OutOfRangeError, /pool/);
      throwsNative(() => fn(h, 0, 3, -1, 1, 0), OutOfRangeError, /offset/);
      throwsNative(() => fn(h, 0, 3, 0.5, 1, 0), InvalidArgumentError, /offset/);
      throwsNative(() => fn(h, 0, 3, (1 << 20) - 1, 2, 0), OutOfRangeError, /outside the pool/);
      throwsNative(() => fn(h, 0, 3, 0, -1, 0), OutOfRangeError, /length/);
      throwsNative(() => fn(h, 0, 3, 0, 1, 'x'), InvalidArgumentError, /msgFlags/);
    }
    throwsNative(() => n.fallbackAccept(h, 0, 1), OutOfRangeError, /SOCK_NONBLOCK/);
    throwsNative(() => n.fallbackConnect(h, 0, 0, 0), OutOfRangeError, /auxLen/);
    throwsNative(() => n.fallbackConnect(h, 0, 0, 129), OutOfRangeError, /auxLen/);
    throwsNative(() => n.fallbackConnect(h, 0, 200, 100), OutOfRangeError, /outside aux/);
    throwsNative(() => n.fallbackShutdown(h, 0, 3), OutOfRangeError, /how/);
    throwsNative(() => n.fallbackWatch(h, 0, 1 as any), InvalidArgumentError, /on/);
    throwsNative(() => n.fallbackRef(h, 'yes' as any), InvalidArgumentError, /on/);

    // Kernel errors come back as -errno, never as throws.
    const closedFd = n.sockOpen(4, 'tcp');
    n.sockClose(closedFd);
    assert.equal(n.fallbackSend(h, closedFd, 3, 0, 1, 0), -9); // EBADF
    assert.equal(n.fallbackRecv(h, closedFd, 3, 0, 1, 0), -9);
    assert.equal(n.fallbackAccept(h, closedFd, 0), -9);
    assert.equal(n.fallbackShutdown(h, closedFd, 1), -9);
    assert.equal(n.fallbackCloseFd(h, closedFd), -9);
    assert.equal(n.fallbackWatch(h, closedFd, true), -9);
    assert.equal(n.fallbackWatch(h, closedFd, false), 0, 'leaving the set is done once the fd is gone');
    assert.equal(n.fallbackZcNotes(h, closedFd), -9);
    assert.equal(n.fallbackConnectResult(h, closedFd), -9);
    const unconnected = n.sockOpen(4, 'tcp');
    assert.equal(n.fallbackRecv(h, unconnected, 3, 0, 1, 0), -107); // ENOTCONN
    assert.equal(n.fallbackSend(h, unconnected, 3, 0, 1, 0), -32); // EPIPE, no SIGPIPE
    assert.equal(n.fallbackAccept(h, unconnected, 0), -22); // EINVAL: not listening
    n.sockClose(unconnected);

    n.fallbackDetachPool(h, 3);
    throwsNative(() => n.fallbackSend(h, 0, 3, 0, 1, 0), OutOfRangeError, /not attached/);
  } finally {
    n.fallbackClose(h);
    n.fallbackClose(h); // twice is fine
    n.poolClose(pool.handle);
  }
  for (const call of [
    () => n.fallbackWake(h),
    () => n.fallbackSend(h, 0, 0, 0, 1, 0),
    () => n.fallbackWatch(h, 0, true),
    () => n.fallbackAttachPool(h, pool.handle, 0),
  ]) {
    throwsNative(call, ClosedError);
  }
  // A closed pool cannot be attached.
  const fb2 = create();
  throwsNative(() => n.fallbackAttachPool(fb2.handle, pool.handle, 0), ClosedError);
  n.fallbackClose(fb2.handle);
});

test('native wakeups: one onEvents call per batch with (fd, events) pairs; wake with no events', async () => {
  const n = native();
  const calls: number[][] = [];
  let fb!: ReturnType<typeof create>;
  fb = create((count) => {
    const pairs: number[] = [];
    for (let i = 0; i < count * 2; i++) pairs.push(fb.events[i]);
    calls.push(pairs);
  });
  const h: FallbackHandle = fb.handle;
  const s = await socketPair();
  try {
    n.fallbackRef(h, true);
    n.fallbackWake(h);
    await until(() => calls.length === 1, 'the wake');
    assert.deepEqual(calls[0], [], 'a bare wake reports no events');
    // Edge-triggered: registering a writable socket reports it once.
    assert.equal(n.fallbackWatch(h, s.a, true), 0);
    assert.equal(n.fallbackWatch(h, s.a, true), 0, 'twice re-arms');
    await until(() => calls.length >= 2, 'writable');
    const [fd, ev] = calls[1];
    assert.equal(fd, s.a);
    assert.ok(ev & 0x4, 'EPOLLOUT');
    // Readable after the peer writes (send through a pool, as the data path does).
    const pool = n.poolCreate({ size: 1 << 20 });
    n.fallbackAttachPool(h, pool.handle, 0);
    new Uint8Array(pool.region).set([1, 2, 3], 0);
    assert.equal(n.fallbackSend(h, s.b, 0, 0, 3, 0), 3);
    await until(() => calls.some((c) => c[0] === s.a && c[1] & 0x1), 'readable');
    assert.equal(n.fallbackRecv(h, s.a, 0, 100, 10, 0), 3);
    assert.deepEqual([...new Uint8Array(pool.region, 100, 3)], [1, 2, 3]);
    assert.equal(n.fallbackRecv(h, s.a, 0, 100, 10, 0), -11, 'EAGAIN, not a block');
    assert.equal(n.fallbackWatch(h, s.a, false), 0);
    // Nonblocking connect: -EINPROGRESS or 0, then the result; the sockaddr comes from aux.
    const l = listener();
    const c = n.sockOpen(4, 'tcp');
    fb.aux.set(sockaddr('127.0.0.1', l.port), 128);
    const r = n.fallbackConnect(h, c, 128, 16);
    assert.ok(r === 0 || r === -115, String(r));
    await until(() => n.fallbackConnectResult(h, c) === 0, 'connected');
    let acc = -11;
    await until(() => (acc = n.fallbackAccept(h, l.fd, 0o2000000)) >= 0, 'accepted');
    assert.equal(n.fallbackCloseFd(h, acc), 0);
    assert.equal(n.fallbackCloseFd(h, c), 0);
    n.sockClose(l.fd);
    n.fallbackDetachPool(h, 0);
    n.poolClose(pool.handle);
  } finally {
    n.fallbackRef(h, false);
    n.fallbackClose(h);
    s.close();
  }
});
