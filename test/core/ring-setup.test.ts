/**
 * The ring set-up (native/probe.c, src/backend.ts): which way completions wake the event loop,
 * chosen from the wake-up probe's measurement, never from the kernel version; MAIO_RING_SETUP
 * forces one. Whether the chosen set-up really wakes promptly is test/ring/wakeup.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { backend } from '../../src/backend';
import { native } from '../../src/core/native';

const backendJs = path.join(__dirname, '..', '..', 'src', 'backend.js');
const ringJs = path.join(__dirname, '..', '..', 'src', 'ring', 'ring.js');

/** backend() and a real ring in a child with `env`; errors come back as { code, message }. */
function child(env: Record<string, string>): any {
  const code = `
    let r;
    try { const b = require(${JSON.stringify(backendJs)}).backend();
          const ring = require(${JSON.stringify(ringJs)}).Ring.current();
          r = { ok: true, b, ring: ring !== null }; ring && ring.close(); }
    catch (e) { r = { ok: false, code: e.code, message: e.message }; }
    console.log(JSON.stringify(r));`;
  const res = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout);
}

const p = native().probe();
const uringSkip = p.uringUsable ? false : `io_uring is not usable here: ${backend().summary}`;
const deferSkip = uringSkip || (p.deferSetupFlags === 0 ? `the kernel (${p.kernel}) refuses DEFER_TASKRUN` : false);
const DEFER_TASKRUN = 1 << 13;
const COOP_TASKRUN = 1 << 8;

test('the probe measures DEFER_TASKRUN\'s eventfd where the kernel has it', { skip: uringSkip }, () => {
  assert.ok(p.coopSetupFlags === 0 || (p.coopSetupFlags & DEFER_TASKRUN) === 0, 'the coop set-up never defers');
  if (p.deferSetupFlags === 0) {
    assert.equal(p.deferEventfd, -1);
    return;
  }
  assert.ok((p.deferSetupFlags & DEFER_TASKRUN) !== 0);
  assert.ok(p.deferEventfd === 0 || p.deferEventfd === 1, `a verdict, got ${p.deferEventfd}`);
});

test('auto takes DEFER_TASKRUN only where the probe found its eventfd prompt', { skip: uringSkip }, () => {
  const r = child({ MAIO_RING_SETUP: 'auto', MAIO_BACKEND: 'io_uring' });
  assert.equal(r.ok, true, r.message);
  const s = r.b.ringSetup;
  assert.equal(r.b.deferEventfd, p.deferEventfd === 1 ? 'prompt' : p.deferEventfd === 0 ? 'late' : 'unavailable');
  assert.equal(s.mode, r.b.deferEventfd === 'prompt' ? 'defer' : 'coop');
  assert.equal(s.forced, false);
  assert.equal(r.b.capabilities.deferTaskrun, s.mode === 'defer');
  assert.deepEqual(r.b.setupFlags, s.flags);
  assert.equal(s.flags.includes('DEFER_TASKRUN'), s.mode === 'defer');
  if (s.mode === 'coop' && (p.coopSetupFlags & COOP_TASKRUN) !== 0) assert.ok(s.flags.includes('COOP_TASKRUN'));
  assert.ok(r.b.summary.includes(s.reason), 'the summary says why');
  if (r.b.deferEventfd === 'late') assert.match(s.reason, /late/);
  assert.equal(r.ring, true);
});

test('MAIO_RING_SETUP=coop forces COOP_TASKRUN, and the ring runs with it', { skip: uringSkip }, () => {
  const r = child({ MAIO_RING_SETUP: 'coop', MAIO_BACKEND: 'io_uring' });
  assert.equal(r.ok, true, r.message);
  assert.equal(r.b.ringSetup.mode, 'coop');
  assert.equal(r.b.ringSetup.forced, true);
  assert.ok(!r.b.setupFlags.includes('DEFER_TASKRUN'));
  assert.match(r.b.summary, /MAIO_RING_SETUP=coop/);
  assert.equal(r.ring, true);
});

test('MAIO_RING_SETUP=defer forces DEFER_TASKRUN and warns where the probe found it late', { skip: deferSkip }, () => {
  const r = child({ MAIO_RING_SETUP: 'defer', MAIO_BACKEND: 'io_uring' });
  assert.equal(r.ok, true, r.message);
  assert.equal(r.b.ringSetup.mode, 'defer');
  assert.ok(r.b.setupFlags.includes('DEFER_TASKRUN') && r.b.setupFlags.includes('SINGLE_ISSUER'));
  assert.equal(r.b.capabilities.deferTaskrun, true);
  if (p.deferEventfd === 0) assert.match(r.b.summary, /late.*maio doctor/);
  else assert.doesNotMatch(r.b.summary, /late/);
  assert.equal(r.ring, true);
});

test('a bad MAIO_RING_SETUP is a typed error; on epoll there is no ring set-up', () => {
  const bad = child({ MAIO_RING_SETUP: 'fast', MAIO_BACKEND: '' });
  if (p.uringUsable) {
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 'ERR_MAIO_INVALID_ARG');
    assert.match(bad.message, /MAIO_RING_SETUP must be 'coop', 'defer' or 'auto', got 'fast'/);
  }
  const e = child({ MAIO_BACKEND: 'epoll', MAIO_RING_SETUP: 'coop' });
  assert.equal(e.ok, true, e.message);
  assert.equal(e.b.ringSetup, null);
  assert.deepEqual(e.b.setupFlags, []);
});
