/**
 * What only the io_uring engine does: native validation of options and
 * descriptors, enters per flush, CQ overflow, fixed-buffer registration.
 * The behaviour both engines share is test/ring/contract.test.ts's.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import fc from 'fast-check';
import { backend } from '../../src/backend';
import {
  ClosedError,
  InvalidArgumentError,
  InvalidDescriptorError,
  InvalidHandleError,
  OutOfRangeError,
  fromNative,
} from '../../src/core/errors';
import { CQE_F_MORE, CQE_F_NOTIF, DESC_INTS, native, type RingHandle } from '../../src/core/native';
import { Ring, type CompletionTarget } from '../../src/ring/ring';

const uring = (() => {
  try {
    return backend().mode === 'io_uring';
  } catch {
    return false;
  }
})();
const skip = uring
  ? false
  : `tests the io_uring Ring itself; this run's backend is ${(() => { try { return `${backend().mode} (${backend().reason})`; } catch (e) { return String(e); } })()}`;

/** A ring made directly through the binding, with its own arrays. */
function rawRing(capacity = 16) {
  const submit = new Int32Array(capacity * DESC_INTS);
  const completions = new Int32Array(capacity * 4);
  const aux = new Uint8Array(256);
  const stats = new Float64Array(16);
  const seen: number[] = [];
  const handle = native().ringCreate({
    entries: 8,
    submit,
    completions,
    aux,
    stats,
    onCompletions(n: number) {
      for (let i = 0; i < n; i++) seen.push(completions[i * 4]);
    },
  });
  return { handle, submit, stats, seen };
}

function put(submit: Int32Array, i: number, f: Partial<Record<'op' | 'fd' | 'ud' | 'len' | 'pool' | 'off' | 'msg' | 'ioprio' | 'group' | 'auxOff' | 'auxLen' | 'sqe', number>>) {
  const b = i * DESC_INTS;
  submit.fill(0, b, b + DESC_INTS);
  submit[b] = f.op ?? 0;
  submit[b + 1] = f.fd ?? -1;
  submit[b + 2] = f.ud ?? i;
  submit[b + 3] = f.len ?? 0;
  submit[b + 4] = f.pool ?? -1;
  submit[b + 5] = f.off ?? 0;
  submit[b + 6] = f.msg ?? 0;
  submit[b + 7] = f.ioprio ?? 0;
  submit[b + 8] = f.group ?? 0;
  submit[b + 9] = f.auxOff ?? -1;
  submit[b + 10] = f.auxLen ?? 0;
  submit[b + 13] = f.sqe ?? 0;
}

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

const tick = () => new Promise((r) => setImmediate(r));
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

test('ringCreate validates its options with typed errors', { skip }, () => {
  const n = native();
  const good = () => ({
    entries: 8,
    submit: new Int32Array(DESC_INTS * 4),
    completions: new Int32Array(16),
    aux: new Uint8Array(128),
    stats: new Float64Array(16),
    onCompletions() {},
  });
  const bad = (patch: Record<string, unknown>) => ({ ...good(), ...patch }) as any;
  throwsNative(() => n.ringCreate(undefined as any), InvalidArgumentError);
  throwsNative(() => n.ringCreate(42 as any), InvalidArgumentError);
  const noEntries: any = good();
  delete noEntries.entries;
  throwsNative(() => n.ringCreate(noEntries), InvalidArgumentError, /entries/);
  throwsNative(() => n.ringCreate(bad({ entries: '8' })), InvalidArgumentError, /entries/);
  throwsNative(() => n.ringCreate(bad({ entries: 8.5 })), InvalidArgumentError);
  throwsNative(() => n.ringCreate(bad({ entries: 12 })), OutOfRangeError, /power of two/);
  throwsNative(() => n.ringCreate(bad({ entries: 4 })), OutOfRangeError);
  throwsNative(() => n.ringCreate(bad({ entries: 65536 })), OutOfRangeError);
  throwsNative(() => n.ringCreate(bad({ submit: new Uint32Array(64) })), InvalidArgumentError, /submit/);
  throwsNative(() => n.ringCreate(bad({ submit: [1, 2, 3] })), InvalidArgumentError, /submit/);
  throwsNative(() => n.ringCreate(bad({ submit: new Int32Array(8) })), OutOfRangeError, /submit/);
  throwsNative(() => n.ringCreate(bad({ submit: new Int32Array(20) })), OutOfRangeError, /multiple/);
  throwsNative(() => n.ringCreate(bad({ completions: new Int32Array(3) })), OutOfRangeError, /completions/);
  throwsNative(() => n.ringCreate(bad({ aux: new Int8Array(256) })), InvalidArgumentError, /aux/);
  throwsNative(() => n.ringCreate(bad({ aux: new Uint8Array(16) })), OutOfRangeError, /aux/);
  throwsNative(() => n.ringCreate(bad({ stats: new Float32Array(16) })), InvalidArgumentError, /stats/);
  throwsNative(() => n.ringCreate(bad({ stats: new Float64Array(4) })), OutOfRangeError, /stats/);
  throwsNative(() => n.ringCreate(bad({ onCompletions: 'no' })), InvalidArgumentError, /onCompletions/);
  throwsNative(() => n.ringCreate(bad({ setup: 0 })), OutOfRangeError, /setup/);
  throwsNative(() => n.ringCreate(bad({ setup: 3 })), OutOfRangeError, /setup/);
  throwsNative(() => n.ringCreate(bad({ setup: 'defer' })), InvalidArgumentError, /setup/);
  throwsNative(() => n.ringCreate(bad({ setup: 1.5 })), InvalidArgumentError, /setup/);
  throwsNative(() => n.ringSubmit({} as any, 0), InvalidHandleError);
  throwsNative(() => n.ringClose(null as any), InvalidHandleError);
  assert.throws(() => new (Ring as any)(Symbol('x')), InvalidArgumentError);
});

test('a bad descriptor throws ERR_MAIO_INVALID_DESCRIPTOR naming it, and nothing is submitted', { skip }, async () => {
  const n = native();
  const r = rawRing();
  try {
    const cases: [Parameters<typeof put>[2], string][] = [
      [{ op: 99 }, 'op'],
      [{ op: -1 }, 'op'],
      [{ op: 10 }, 'fd'], // SPLICE needs an input fd (test/paths/ checks the rest)
      [{ op: 1, fd: -1, pool: 0, len: 1 }, 'fd'], // SEND
      [{ op: 1, fd: 0, pool: 0, len: 1 }, 'pool'], // no pool attached
      [{ op: 3, fd: 0, pool: 70, len: 1 }, 'pool'],
      [{ op: 0, sqe: 1 << 3 }, 'sqeFlags'], // IOSQE_ASYNC not allowed
      [{ op: 0, sqe: 1 << 6 }, 'sqeFlags'], // CQE_SKIP_SUCCESS would break in-flight counting
      [{ op: 1, fd: 0, ioprio: 1 << 2, pool: 0 }, 'ioprio'], // FIXED_BUF is native's to set
      [{ op: 6, fd: 0, auxOff: 200, auxLen: 100 }, 'auxOff'],
      [{ op: 6, fd: 0, auxOff: 0, auxLen: 0 }, 'auxLen'],
      [{ op: 6, fd: 0, auxOff: -1, auxLen: 16 }, 'auxOff'],
      [{ op: 8, fd: 0, len: 7 }, 'len'],
      [{ op: 4, fd: 0, group: 70000 }, 'bufGroup'],
      // SENDV (its segment lists: test/hardening/native-args-child.ts)
      [{ op: 12, fd: 0, pool: 70, len: 8, auxOff: 0, auxLen: 8 }, 'pool'],
      [{ op: 12, fd: 0, ioprio: 1 << 2, pool: 0, auxOff: 0, auxLen: 8 }, 'ioprio'],
      // RECVMSG_MULTI and SENDMSG (their entries: test/hardening/native-args-child.ts)
      [{ op: 13, fd: 0, group: 70000 }, 'bufGroup'],
      [{ op: 13, fd: 0, ioprio: 1 << 1, group: 3 }, 'ioprio'], // MULTISHOT is native's to set
      [{ op: 14, fd: 0, pool: 70, len: 8, auxOff: 0, auxLen: 8 }, 'pool'],
      [{ op: 15, fd: 0, pool: 70, len: 8, auxOff: 0, auxLen: 8 }, 'pool'], // SENDMSG_ZC
      [{ op: 15, fd: 0, ioprio: 1 << 2, pool: 0, auxOff: 0, auxLen: 8 }, 'ioprio'], // FIXED_BUF is native's to set
      // SEND_BUF names an entry of ringSubmit's buffer list, and none was given (the rest: native-args-child.ts)
      [{ op: 16, fd: 0, len: 1 }, 'bufOff'],
    ];
    for (const [bad, field] of cases) {
      put(r.submit, 0, { op: 0 });
      put(r.submit, 1, { op: 0 });
      put(r.submit, 2, bad);
      let err: any = undefined;
      try {
        n.ringSubmit(r.handle, 3);
      } catch (e) {
        err = e;
      }
      assert.ok(err, `descriptor ${JSON.stringify(bad)} was accepted`);
      assert.equal(err.code, 'ERR_MAIO_INVALID_DESCRIPTOR');
      assert.ok((err as object) instanceof RangeError);
      assert.equal(err.index, 2);
      assert.equal(err.field, field, err.message);
      assert.match(err.message, /descriptor 2/);
      assert.ok(fromNative(err) instanceof InvalidDescriptorError);
    }
    throwsNative(() => n.ringSubmit(r.handle, 17), OutOfRangeError, /count/);
    throwsNative(() => n.ringSubmit(r.handle, -1), OutOfRangeError);
    // Property: any op number outside the allow list is refused wherever it sits.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.nat(),
        // MAIO_OP_COUNT (17) and up; SENDV (12), RECVMSG_MULTI (13), SENDMSG (14), SENDMSG_ZC (15), SEND_BUF (16) are checked in the table above.
        fc.oneof(fc.integer({ min: 17, max: 1 << 30 }), fc.integer({ min: -(1 << 30), max: -1 })),
        (count, pos, op) => {
          const at = pos % count;
          for (let i = 0; i < count; i++) put(r.submit, i, { op: 0 });
          put(r.submit, at, { op });
          try {
            n.ringSubmit(r.handle, count);
            return false;
          } catch (e: any) {
            return e.code === 'ERR_MAIO_INVALID_DESCRIPTOR' && e.index === at && e.field === 'op';
          }
        },
      ),
    );
    assert.equal(r.stats[1], 0, 'submitted');
    assert.equal(r.stats[0], 0, 'no io_uring_enter');
    await tick();
    await tick();
    assert.deepEqual(r.seen, []);
    // The same ring still works.
    put(r.submit, 0, { op: 0, ud: 7 });
    assert.equal(n.ringSubmit(r.handle, 1), 1);
    await until(() => r.seen.length === 1, 'the NOP');
    assert.deepEqual(r.seen, [7]);
    assert.equal(r.stats[5], 0, 'inflight');
  } finally {
    n.ringClose(r.handle);
  }
});

test('1,000 NOPs queued in one turn: each op id completes exactly once, in few enters', { skip }, async () => {
  const ring = Ring.current()!;
  assert.equal(Ring.current(), ring, 'one ring per thread');
  const before = ring.stats();
  const ids = new Set<number>();
  const seen = new Map<number, number>();
  let finals = 0;
  const target: CompletionTarget = {
    onCompletion(opId, res, flags) {
      seen.set(opId, (seen.get(opId) ?? 0) + 1);
      assert.equal(res, 0);
      if (!(flags & CQE_F_MORE)) finals++;
    },
  };
  for (let i = 0; i < 1000; i++) ids.add(ring.nop(target));
  assert.equal(ids.size, 1000, 'distinct op ids');
  assert.equal(ring.pending, 1000);
  await until(() => finals === 1000, '1000 completions');
  assert.equal(seen.size, 1000);
  for (const id of ids) assert.equal(seen.get(id), 1, `op ${id} completed once`);
  const after = ring.stats();
  const enters = after.enters - before.enters;
  const submitCalls = after.submitCalls - before.submitCalls;
  const submitted = after.submitted - before.submitted;
  assert.equal(submitted, 1000);
  assert.equal(submitCalls, 1, 'one flush for one turn');
  // Each flush makes one enter (the SQ holds 1024); the poll wakeup may add
  // one GETEVENTS enter per batch.
  const reaps = after.reapBatches - before.reapBatches;
  assert.ok(enters <= submitCalls + reaps + 1, `enters ${enters}, flushes ${submitCalls}, reaps ${reaps}`);
  assert.ok(submitted / enters > 1, `submitted per enter ${submitted / enters}`);
  assert.ok(after.completionsPerBatch > 1);
  assert.equal(ring.pending, 0);
});

test('more completions than the CQ holds: overflow is flushed, nothing dropped or repeated', { skip }, async () => {
  const ring = Ring.current()!;
  const before = ring.stats();
  const counts = new Uint8Array(1 << 21);
  let done = 0;
  const target: CompletionTarget = {
    onCompletion(opId) {
      counts[opId & 0x1fffff]++;
      done++;
    },
  };
  // 6,000 NOPs in one turn: six submits (the submit array holds 1,024), all
  // completing inside them, before any reaping: more than the 4,096-entry CQ.
  const ids: number[] = [];
  for (let i = 0; i < 6000; i++) ids.push(ring.nop(target));
  await until(() => done === 6000, '6000 completions');
  assert.equal(new Set(ids).size, 6000);
  for (const id of ids) assert.equal(counts[id & 0x1fffff], 1);
  const after = ring.stats();
  assert.equal(after.cqOverflow, 0, 'the kernel dropped CQEs');
  assert.ok(after.cqFlushes > before.cqFlushes, 'the CQ overflowed and was flushed');
  assert.equal(after.submitted - before.submitted, 6000);
  assert.equal(after.completed - before.completed, 6000);
  assert.equal(after.inflight, 0);
});

test('pools: attach, send and receive through the ring, SEND_ZC notification, detach', { skip }, async () => {
  const ring = Ring.current()!;
  const n = native();
  const pool = n.poolCreate({ size: 1 << 20 });
  const att = ring.attachPool(pool.handle);
  assert.ok(att.index >= 0 && att.index < 64);
  if (process.getuid?.() === 0) assert.equal(att.registered, true, att.error);
  else assert.equal(typeof att.error, 'string');
  const bytes = new Uint8Array(pool.region);
  const received: Buffer[] = [];
  let serverSock: net.Socket | undefined;
  const server = net.createServer((s) => {
    serverSock = s;
    s.on('data', (d) => received.push(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  await until(() => serverSock !== undefined, 'the server side');
  client.pause(); // the ring reads this socket, not node
  try {
    const fd = (client as any)._handle.fd as number;
    bytes.set(Buffer.from('hello'), 4096);
    const c = new Collector();
    ring.send(c, fd, att.index, 4096, 5);
    await until(() => c.events.length === 1, 'send');
    assert.equal(c.events[0][1], 5);
    bytes.set(Buffer.from(' world'), 8192);
    const zc = new Collector();
    const zid = ring.sendZc(zc, fd, att.index, 8192, 6);
    await until(() => zc.events.length === 2, 'SEND_ZC result and notification');
    assert.deepEqual(zc.events.map((e) => e[0]), [zid, zid]);
    assert.equal(zc.events[0][1], 6);
    assert.ok(zc.events[0][2] & CQE_F_MORE);
    assert.ok(zc.events[1][2] & CQE_F_NOTIF);
    assert.equal(zc.events[1][2] & CQE_F_MORE, 0);
    await until(() => Buffer.concat(received).toString() === 'hello world', 'data at the server');

    serverSock!.write('ping');
    const rc = new Collector();
    ring.recv(rc, fd, att.index, 100, 64);
    await until(() => rc.events.length === 1, 'recv');
    assert.equal(rc.events[0][1], 4);
    assert.equal(Buffer.from(bytes.subarray(100, 104)).toString(), 'ping');

    // Out of the pool's bounds: the ring refuses; the op completes with -EINVAL.
    const oob = new Collector();
    ring.send(oob, fd, att.index, (1 << 20) - 2, 5);
    await until(() => oob.events.length === 1, 'refused send');
    assert.equal(oob.events[0][1], -22);
    assert.equal(ring.stats().inflight, 0);
  } finally {
    ring.detachPool(att.index);
    client.destroy();
    server.close();
    n.poolClose(pool.handle);
  }
  // The slot is free again.
  const pool2 = n.poolCreate({ size: 1 << 20 });
  const att2 = ring.attachPool(pool2.handle);
  assert.equal(att2.index, att.index);
  ring.detachPool(att2.index);
  n.poolClose(pool2.handle);
});

test('a raw ring closed through the binding throws ERR_MAIO_CLOSED (twice is fine)', { skip }, () => {
  const n = native();
  const raw = rawRing();
  n.ringClose(raw.handle);
  n.ringClose(raw.handle);
  throwsNative(() => n.ringSubmit(raw.handle, 0), ClosedError);
  throwsNative(() => n.ringUnregisterPool(raw.handle, 0), ClosedError);
});

