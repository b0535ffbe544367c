/** The native entry points of the paths (native/pipe.c) and the SPLICE descriptor: typed errors, nothing submitted. */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, InvalidDescriptorError, OutOfRangeError, fromNative } from '../../src/core/errors';
import { DESC_INTS, Desc, Op, native } from '../../src/core/native';

const IOSQE_IO_LINK = 1 << 2;
import { Ring, type CompletionTarget } from '../../src/ring/ring';
import { closeFd, skip, tmpDir as makeTmpDir, until } from './helpers';

const dirs: string[] = [];
const tmpDir = (): string => {
  const d = makeTmpDir();
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function throwsNative(fn: () => unknown, check: (e: any) => boolean, what: string) {
  assert.throws(
    () => {
      try {
        fn();
      } catch (e) {
        throw fromNative(e);
      }
    },
    (e: any) => check(e),
    what,
  );
}

test('pipeOpen: sizes, the pipe-max-size cap, typed errors', { skip }, () => {
  const n = native();
  const max = Number(fs.readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
  const p = n.pipeOpen();
  assert.equal(p.size, Math.min(1 << 20, max));
  assert.ok(p.readFd >= 0 && p.writeFd >= 0 && p.readFd !== p.writeFd);
  // Blocking: O_NONBLOCK is clear (fdSetBlocking reports the old state).
  assert.equal(n.fdSetBlocking(p.readFd, true), true);
  fs.writeSync(p.writeFd, Buffer.from('abc'));
  const b = Buffer.alloc(8);
  assert.equal(fs.readSync(p.readFd, b), 3);
  closeFd(p.readFd);
  closeFd(p.writeFd);
  const small = n.pipeOpen(4096);
  assert.equal(small.size, 4096);
  closeFd(small.readFd);
  closeFd(small.writeFd);
  const capped = n.pipeOpen(1 << 30);
  assert.ok(capped.size <= Math.max(max, 1 << 20), `${capped.size}`);
  closeFd(capped.readFd);
  closeFd(capped.writeFd);
  const odd = n.pipeOpen(100_000); // the kernel rounds up to a power of two of pages
  assert.ok(odd.size >= 100_000);
  closeFd(odd.readFd);
  closeFd(odd.writeFd);
  throwsNative(() => n.pipeOpen(4095), (e) => e instanceof OutOfRangeError, 'too small');
  throwsNative(() => n.pipeOpen(2 ** 31), (e) => e instanceof OutOfRangeError, 'too big');
  throwsNative(() => n.pipeOpen(-1), (e) => e instanceof OutOfRangeError, 'negative');
  throwsNative(() => n.pipeOpen('1' as any), (e) => e instanceof InvalidArgumentError, 'string');
  throwsNative(() => n.pipeOpen(8192.5), (e) => e instanceof InvalidArgumentError, 'fraction');
});

test('fdSetBlocking validates its arguments', { skip }, () => {
  const n = native();
  throwsNative(() => n.fdSetBlocking(-1, true), (e) => e instanceof OutOfRangeError, 'fd -1');
  throwsNative(() => n.fdSetBlocking(0, 'yes' as any), (e) => e instanceof InvalidArgumentError, 'bool');
  throwsNative(() => (n.fdSetBlocking as any)(0), (e) => e instanceof InvalidArgumentError, 'argc');
  throwsNative(() => n.fdSetBlocking(987654, true), (e) => e.code === 'EBADF' && e.errno === -9 && e.syscall === 'fcntl(F_GETFL)', 'EBADF');
  const p = n.pipeOpen(4096);
  assert.equal(n.fdSetBlocking(p.writeFd, false), true);
  assert.equal(n.fdSetBlocking(p.writeFd, true), false);
  // sendfileSync (plain sendfile(2)) left the addon: the benchmark runs bench/c/sendfile.
  assert.equal((n as unknown as Record<string, unknown>).sendfileSync, undefined);
  closeFd(p.readFd);
  closeFd(p.writeFd);
});

/** A ring made directly through the binding, to see the descriptor checks. */
function rawRing() {
  const submit = new Int32Array(4 * DESC_INTS);
  const stats = new Float64Array(16);
  const handle = native().ringCreate({
    entries: 8,
    submit,
    completions: new Int32Array(16),
    aux: new Uint8Array(256),
    stats,
    onCompletions() {},
  });
  return { handle, submit, stats };
}

test('a bad SPLICE descriptor is refused naming its field, and nothing is submitted', { skip }, () => {
  const n = native();
  const r = rawRing();
  const good = (): Record<number, number> => ({
    [Desc.Op]: Op.Splice,
    [Desc.Fd]: 0,
    [Desc.FdOut]: 1,
    [Desc.Len]: 10,
    [Desc.OffLo]: -1,
    [Desc.OffHi]: -1,
    [Desc.MsgFlags]: 1,
  });
  const cases: [Record<number, number>, string][] = [
    [{ [Desc.Fd]: -1 }, 'fd'],
    [{ [Desc.FdOut]: -1 }, 'fdOut'],
    [{ [Desc.FdOut]: -(2 ** 31) }, 'fdOut'],
    [{ [Desc.Len]: 0 }, 'len'],
    [{ [Desc.Len]: -5 }, 'len'],
    [{ [Desc.OffLo]: -2, [Desc.OffHi]: -1 }, 'offset'], // -2
    [{ [Desc.OffLo]: 0, [Desc.OffHi]: -1 }, 'offset'], // -2^32
    [{ [Desc.MsgFlags]: 8 }, 'msgFlags'], // SPLICE_F_GIFT
    [{ [Desc.MsgFlags]: 1 << 31 }, 'msgFlags'], // SPLICE_F_FD_IN_FIXED: no fixed files
    [{ [Desc.Ioprio]: 1 }, 'ioprio'],
    [{ [Desc.SqeFlags]: 1 << 4 }, 'sqeFlags'], // IOSQE_ASYNC
  ];
  try {
    for (const [patch, field] of cases) {
      r.submit.fill(0);
      const d = { ...good(), ...patch };
      for (const [k, v] of Object.entries(d)) r.submit[Number(k)] = v;
      let err: any;
      try {
        n.ringSubmit(r.handle, 1);
      } catch (e) {
        err = e;
      }
      assert.ok(err, `${JSON.stringify(patch)} was accepted`);
      assert.equal(err.code, 'ERR_MAIO_INVALID_DESCRIPTOR');
      assert.equal(err.field, field, err.message);
      assert.ok(fromNative(err) instanceof InvalidDescriptorError);
    }
    assert.equal(r.stats[1], 0, 'submitted');
    assert.equal(r.stats[0], 0, 'no io_uring_enter');
  } finally {
    n.ringClose(r.handle);
  }
});

test('Ring.splice: offsets from -1 to past 2^32 reach the kernel; bad ones throw before queueing', { skip }, async () => {
  const ring = Ring.current()!;
  const n = native();
  const dir = tmpDir();
  const file = path.join(dir, 'off');
  const fd0 = fs.openSync(file, 'w');
  const at = 2 ** 32 + 3;
  fs.writeSync(fd0, Buffer.from('HIGH'), 0, 4, at);
  fs.writeSync(fd0, Buffer.from('low'), 0, 3, 5);
  fs.closeSync(fd0);
  const fd = fs.openSync(file, 'r');
  // Several pages: a one-page pipe holds one buffer, and a second splice would wait.
  const p = n.pipeOpen(65536);
  const res: number[] = [];
  const t: CompletionTarget = { onCompletion: (_id, r) => void res.push(r) };
  ring.splice(t, fd, at, p.writeFd, 4, 0, IOSQE_IO_LINK); // linked: in this order
  ring.splice(t, fd, 5, p.writeFd, 3);
  await until(() => res.length === 2, 'splices');
  assert.deepEqual(res, [4, 3]);
  const b = Buffer.alloc(16);
  assert.equal(b.subarray(0, fs.readSync(p.readFd, b)).toString(), 'HIGHlow');
  // -1: the pipe's own position (none): pipe -> pipe
  const q = n.pipeOpen(65536);
  fs.writeSync(p.writeFd, Buffer.from('xyz'));
  ring.splice(t, p.readFd, -1, q.writeFd, 3);
  await until(() => res.length === 3, 'pipe splice');
  assert.equal(res[2], 3);
  // An offset on a pipe is the kernel's ESPIPE, as a completion.
  ring.splice(t, p.readFd, 0, q.writeFd, 3);
  await until(() => res.length === 4, 'ESPIPE');
  assert.equal(res[3], -29);
  const before = ring.stats().submitted;
  assert.throws(() => ring.splice(t, fd, -2, p.writeFd, 1), OutOfRangeError);
  assert.throws(() => ring.splice(t, fd, 1.5, p.writeFd, 1), OutOfRangeError);
  assert.throws(() => ring.splice(t, fd, 2 ** 53, p.writeFd, 1), OutOfRangeError);
  // A bad fd or length goes to native, which refuses that descriptor alone: EINVAL completion.
  ring.splice(t, fd, 0, -1, 1);
  ring.splice(t, fd, 0, p.writeFd, 0);
  await until(() => res.length === 6, 'refused descriptors');
  assert.deepEqual(res.slice(4), [-22, -22]);
  assert.equal(ring.stats().submitted, before, 'nothing submitted');
  for (const f of [p.readFd, p.writeFd, q.readFd, q.writeFd, fd]) closeFd(f);
});
