/** backend(): the probe seen from JS, MAIO_BACKEND, and io_uring_disabled. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { backend } from '../../src/backend';
import { native } from '../../src/core/native';

const backendJs = path.join(__dirname, '..', '..', 'src', 'backend.js');
const ringJs = path.join(__dirname, '..', '..', 'src', 'ring', 'ring.js');
const currentJs = path.join(__dirname, '..', '..', 'src', 'ring', 'current.js');
const SYSCTL = '/proc/sys/kernel/io_uring_disabled';

function childBackend(env: Record<string, string>): { status: number | null; out: any; stderr: string } {
  const code = `
    let r;
    try { const b = require(${JSON.stringify(backendJs)}).backend();
          const ring = require(${JSON.stringify(ringJs)}).Ring.current();
          const current = require(${JSON.stringify(currentJs)}).currentRing();
          r = { ok: true, b, ring: ring !== null, current: current.constructor.name }; }
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
  assert.equal(r.out.ring, false, 'Ring.current() is null on epoll');
  assert.equal(r.out.current, 'FallbackRing', 'currentRing() is the fallback on epoll');
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
    assert.equal(r.out.ring, true);
    assert.equal(r.out.current, 'Ring', 'currentRing() is the io_uring Ring');
  } else {
    assert.equal(r.out.code, 'ERR_MAIO_BACKEND_UNAVAILABLE');
  }
  const bad = childBackend({ MAIO_BACKEND: 'kqueue' });
  assert.equal(bad.out.ok, false);
  assert.equal(bad.out.code, 'ERR_MAIO_INVALID_ARG');
});

test('kernel.io_uring_disabled=2 makes a new process fall back, saying why', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to change kernel.io_uring_disabled');
  if (!fs.existsSync(SYSCTL)) return t.skip('kernel has no kernel.io_uring_disabled (before 6.6)');
  const old = fs.readFileSync(SYSCTL, 'utf8').trim();
  // The child loads everything first and probes only on our word, so the
  // sysctl is changed for milliseconds (other processes on the machine may
  // be setting up rings too).
  const code = `
    const { backend } = require(${JSON.stringify(backendJs)});
    require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'core', 'native.js'))}).native();
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      let r;
      try { r = { ok: true, b: backend(), uringForced: null }; } catch (e) { r = { ok: false, code: e.code }; }
      process.stdout.write(JSON.stringify(r) + '\\n');
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['-e', code], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, MAIO_BACKEND: '' },
  });
  let buf = '';
  const lines: string[] = [];
  const waitLine = () =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const i = buf.indexOf('\n');
        if (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          child.stdout.off('data', onData);
          child.off('exit', onExit);
          resolve(line);
          return true;
        }
        return false;
      };
      const onData = (d: Buffer) => {
        buf += d.toString();
        check();
      };
      const onExit = () => reject(new Error('child exited early'));
      if (!check()) {
        child.stdout.on('data', onData);
        child.on('exit', onExit);
      }
    });
  try {
    assert.equal(await waitLine(), 'ready');
    fs.writeFileSync(SYSCTL, '2');
    child.stdin.write('go\n');
    lines.push(await waitLine());
  } finally {
    fs.writeFileSync(SYSCTL, old);
    child.kill();
  }
  assert.equal(fs.readFileSync(SYSCTL, 'utf8').trim(), old, 'sysctl restored');
  const r = JSON.parse(lines[0]);
  assert.equal(r.ok, true);
  assert.equal(r.b.mode, 'epoll');
  assert.equal(r.b.forced, false);
  assert.equal(r.b.ioUringDisabled, 2);
  assert.match(r.b.reason, /EPERM/);
  assert.match(r.b.reason, /io_uring_disabled/);
  assert.match(r.b.summary, /^maio backend: epoll .*io_uring_disabled/);
});
