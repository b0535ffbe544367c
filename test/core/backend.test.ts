/** backend(): the probe seen from JS, MAIO_BACKEND, and a blocked io_uring (seccomp, io_uring_disabled) in a child. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { backend } from '../../src/backend';
import { native } from '../../src/core/native';

const backendJs = path.join(__dirname, '..', '..', 'src', 'backend.js');
const ringJs = path.join(__dirname, '..', '..', 'src', 'ring', 'ring.js');
const currentJs = path.join(__dirname, '..', '..', 'src', 'ring', 'current.js');

function childBackend(env: Record<string, string>): { status: number | null; out: any; stderr: string } {
  const code = `
    let r;
    try { const b = require(${JSON.stringify(backendJs)}).backend();
          const ring = require(${JSON.stringify(ringJs)}).Ring.current();
          const current = require(${JSON.stringify(currentJs)}).currentRing();
          r = { ok: true, b, ring: ring.capabilities.zeroCopySend, current: current === ring }; }
    catch (e) { r = { ok: false, code: e.code, name: e.name, message: e.message }; }
    console.log(JSON.stringify(r));`;
  const res = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: res.status, out: res.stdout ? JSON.parse(res.stdout) : undefined, stderr: res.stderr };
}

test('backend() agrees with the native probe and is frozen', () => {
  const b = backend();
  const p = native().probe();
  assert.ok(Object.isFrozen(b) && Object.isFrozen(b.capabilities) && Object.isFrozen(b.ops));
  assert.equal(backend(), b, 'computed once');
  assert.ok(b.summary.startsWith(`maio backend: ${b.mode} (`), b.summary);
  assert.ok(b.summary.includes(p.kernel));
  assert.equal(b.kernel, p.kernel);
  assert.match(b.kernel, /^\d+\.\d+/);
  for (let i = 1; i < p.ops.length; i++) assert.ok(p.ops[i] > p.ops[i - 1], 'ops ascending');
  if (!p.uringUsable) {
    assert.equal(b.mode, 'epoll');
    assert.match(b.reason, new RegExp(p.setupError));
    return;
  }
  if (process.env.MAIO_BACKEND === 'epoll') {
    assert.equal(b.mode, 'epoll');
    assert.equal(b.forced, true);
    assert.match(b.summary, /^maio backend: epoll \(/);
    return;
  }
  assert.equal(b.mode, 'io_uring');
  assert.equal(b.reason, '');
  assert.equal(b.forced, process.env.MAIO_BACKEND === 'io_uring');
  assert.ok(p.ops.every((op) => op <= p.lastOp));
  assert.equal(b.ops.length, p.ops.length);
  assert.ok(b.ops.includes('NOP') && b.ops.includes('SEND') && b.ops.includes('RECV') && b.ops.includes('ACCEPT'));
  assert.ok(b.features.includes('NODROP') && b.features.includes('FAST_POLL'));
  assert.equal(b.capabilities.deferTaskrun, b.setupFlags.includes('DEFER_TASKRUN'));
  if (b.setupFlags.includes('DEFER_TASKRUN')) assert.ok(b.setupFlags.includes('SINGLE_ISSUER'));
  assert.equal(b.capabilities.sendZc, b.ops.includes('SEND_ZC'));
  assert.equal(b.capabilities.pbufRing, p.pbufRing);
  assert.equal(b.capabilities.pbufRingInc, p.pbufRingInc);
  if (p.pbufRingInc) assert.ok(p.pbufRing);
  for (const v of Object.values(b.capabilities)) assert.equal(typeof v, 'boolean');
  const [major, minor] = b.kernel.split('.').map(Number);
  if (major > 6 || (major === 6 && minor >= 1)) {
    // This machine (6.18): the features maio is built around.
    assert.ok(b.ops.includes('SEND_ZC') && b.ops.includes('SENDMSG_ZC'));
    assert.ok(b.capabilities.multishotRecv && b.capabilities.multishotAccept && b.capabilities.pbufRing);
    assert.ok(b.summary.includes('SEND_ZC') && b.summary.includes('multishot recv'), b.summary);
  }
  if (major > 6 || (major === 6 && minor >= 12)) assert.ok(b.capabilities.pbufRingInc);
});

test('MAIO_BACKEND=epoll forces the fallback (child process)', () => {
  const r = childBackend({ MAIO_BACKEND: 'epoll' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.out.ok, true);
  assert.equal(r.out.b.mode, 'epoll');
  assert.equal(r.out.b.forced, true);
  assert.match(r.out.b.reason, /MAIO_BACKEND=epoll/);
  assert.match(r.out.b.summary, /^maio backend: epoll/);
  assert.equal(r.out.ring, 'MSG_ZEROCOPY', 'the thread\'s Ring runs the epoll engine');
  assert.equal(r.out.current, true, 'currentRing() is Ring.current()');
  // What the fallback gives, not what io_uring would.
  const c = r.out.b.capabilities;
  assert.equal(c.multishotRecv, true, 'emulated buffer groups');
  assert.equal(c.multishotAccept, true);
  assert.equal(c.sendZc, true, 'MSG_ZEROCOPY (SO_ZEROCOPY since 4.14)');
  for (const k of ['sendmsgZc', 'pbufRing', 'pbufRingInc', 'bundle', 'fixedBuffers', 'deferTaskrun', 'recvZc', 'bindListen']) {
    assert.equal(c[k], false, `${k} needs io_uring`);
  }
  assert.match(r.out.b.summary, /MSG_ZEROCOPY/);
});

test('MAIO_BACKEND=io_uring insists on io_uring; a bad value is refused', (t) => {
  const r = childBackend({ MAIO_BACKEND: 'io_uring' });
  assert.equal(r.status, 0, r.stderr);
  if (native().probe().uringUsable) {
    assert.equal(r.out.b.mode, 'io_uring');
    assert.equal(r.out.b.forced, true);
    assert.equal(r.out.ring, 'SEND_ZC', 'the thread\'s Ring runs the io_uring engine');
    assert.equal(r.out.current, true, 'currentRing() is Ring.current()');
  } else {
    assert.equal(r.out.code, 'ERR_MAIO_BACKEND_UNAVAILABLE');
  }
  const bad = childBackend({ MAIO_BACKEND: 'kqueue' });
  assert.equal(bad.out.ok, false);
  assert.equal(bad.out.code, 'ERR_MAIO_INVALID_ARG');
});

/**
 * Runs `node -e <childCode>` with io_uring_setup blocked for that process alone:
 * python3 (ctypes; Node has no seccomp API) sets no_new_privs, installs a seccomp
 * filter that fails io_uring_setup with EPERM (what a container's default profile
 * does) and execs node. Nothing host-wide changes, so other processes on the
 * machine keep their rings and a kill in between leaves nothing behind.
 * `wrap` goes in front (e.g. unshare for a private mount namespace).
 */
const SECCOMP_EXEC = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
ul = ctypes.c_ulong
# struct sock_filter {u16 code; u8 jt, jf; u32 k}: load the syscall number; 425 is
# io_uring_setup on every architecture (the unified numbers since 5.1).
def ins(code, k, jt=0, jf=0): return struct.pack('HBBI', code, jt, jf, k)
prog = (ins(0x20, 0) + ins(0x15, 425, 0, 1)  # ld [nr]; jeq 425
        + ins(0x06, 0x00050000 | 1)           # ret SECCOMP_RET_ERRNO | EPERM
        + ins(0x06, 0x7fff0000))              # ret SECCOMP_RET_ALLOW
buf = ctypes.create_string_buffer(prog, len(prog))
class Fprog(ctypes.Structure): _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
fp = Fprog(len(prog) // 8, ctypes.addressof(buf))
if libc.prctl(ul(38), ul(1), ul(0), ul(0), ul(0)) != 0: sys.exit('PR_SET_NO_NEW_PRIVS: errno %d' % ctypes.get_errno())
if libc.prctl(ul(22), ul(2), ctypes.byref(fp), ul(0), ul(0)) != 0: sys.exit('PR_SET_SECCOMP: errno %d' % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
`;

const BLOCKED_CHILD = `
  let r;
  try { r = { ok: true, b: require(${JSON.stringify(backendJs)}).backend(), current: require(${JSON.stringify(currentJs)}).currentRing().capabilities.zeroCopySend }; }
  catch (e) { r = { ok: false, code: e.code, message: e.message }; }
  console.log(JSON.stringify(r));`;

function hasPython(): boolean {
  return spawnSync('python3', ['-c', 'import ctypes'], { stdio: 'ignore' }).status === 0;
}

function runBlocked(wrap: string[]): { status: number | null; out: any; stderr: string } {
  const args = [...wrap, 'python3', '-c', SECCOMP_EXEC, process.execPath, '-e', BLOCKED_CHILD];
  const res = spawnSync(args[0], args.slice(1), { env: { ...process.env, MAIO_BACKEND: '' }, encoding: 'utf8', timeout: 30_000 });
  let out: any;
  try {
    out = JSON.parse(res.stdout);
  } catch {
    out = undefined;
  }
  return { status: res.status, out, stderr: `${res.stderr}${res.error ? String(res.error) : ''}` };
}

test('io_uring_setup blocked by seccomp (this child only): the process falls back to epoll, saying why', (t) => {
  if (!hasPython()) return t.skip('needs python3 with ctypes to install a seccomp filter in the child (Node has no seccomp API)');
  const r = runBlocked([]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.out.ok, true, JSON.stringify(r.out));
  assert.equal(r.out.b.mode, 'epoll');
  assert.equal(r.out.b.forced, false);
  assert.equal(r.out.current, 'MSG_ZEROCOPY', 'the epoll engine');
  assert.match(r.out.b.reason, /io_uring_setup failed with EPERM/);
  if (r.out.b.ioUringDisabled === 0) assert.match(r.out.b.reason, /seccomp/);
  assert.match(r.out.b.summary, /^maio backend: epoll /);
  // Only that child: a new process without the filter gets io_uring as before (if this host has it).
  const after = childBackend({ MAIO_BACKEND: '' });
  assert.equal(after.out.b.mode, native().probe().uringUsable ? 'io_uring' : 'epoll', after.stderr);
});

test('kernel.io_uring_disabled=2 as the child sees it (private mount namespace + seccomp): the reason names the sysctl', (t) => {
  if (!hasPython()) return t.skip('needs python3 with ctypes to install a seccomp filter in the child');
  if (!fs.existsSync('/proc/sys/kernel/io_uring_disabled')) return t.skip('kernel has no kernel.io_uring_disabled (before 6.6)');
  // The real sysctl is host-wide; instead the child gets its own mount namespace in which a
  // file saying 2 is bind-mounted over it, and seccomp gives the EPERM the kernel would.
  const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { stdio: 'ignore' });
  if (probe.status !== 0) return t.skip('unshare -m (a private mount namespace) is not permitted here');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-iud-'));
  try {
    const file = path.join(dir, 'io_uring_disabled');
    fs.writeFileSync(file, '2\n');
    const r = runBlocked([
      'unshare', '-m', '--propagation', 'private', 'sh', '-c',
      'f=$1; shift; mount --bind "$f" /proc/sys/kernel/io_uring_disabled && exec "$@"', 'sh', file,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.out.ok, true, JSON.stringify(r.out));
    assert.equal(r.out.b.mode, 'epoll');
    assert.equal(r.out.b.ioUringDisabled, 2);
    assert.match(r.out.b.reason, /EPERM/);
    assert.match(r.out.b.reason, /kernel\.io_uring_disabled=2/);
    assert.match(r.out.b.summary, /^maio backend: epoll .*io_uring_disabled/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
