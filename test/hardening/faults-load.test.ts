/**
 * Faults under load, each in a child process (fixtures/echo-load.ts: a maio
 * echo server and many maio clients in one process, every echoed byte
 * checked with sha256):
 * - completion queue overflow: MAIO_RING_ENTRIES=64 (a 256-entry CQ) under
 *   300 echoing connections; the CQ overflows, the kernel keeps the overflow
 *   and maio flushes it: no completion lost (every echo exact, none dropped);
 * - pool exhaustion: 200 connections on a 256 KiB pool of 64 buffers (4 KiB,
 *   below the default receive size), and 1,000 on 256 buffers: tryAlloc()
 *   returns null, allocWait() waits for buffers others release, receiving
 *   slows down (backpressure) and nothing is corrupted or deadlocked.
 * Each ends with the pool back where it started.
 *
 * Existing coverage: test/ring/ring.test.ts ('more completions than the CQ
 * holds': 6,000 NOPs); test/pool/ownership.test.ts (allocWait FIFO, abort,
 * exhaustion errors); test/net/interop.test.ts (many echoing connections).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { netSkip, uringSkip } from '../net/helpers';
import { INDEX } from './helpers';

const LOAD = path.join(__dirname, 'fixtures', 'echo-load.js');

function load(args: string[], env: NodeJS.ProcessEnv = {}): any {
  // Well under the runner's 120 s per test: a stalled child (a deadlock) fails here, with its output.
  const r = spawnSync(process.execPath, [LOAD, ...args], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, ...env } });
  assert.equal(r.status, 0, `child failed or stalled (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('CQ overflow: 300 connections echoing through a 64-entry ring (256 CQEs); every echo exact, nothing dropped, pool back', { skip: uringSkip }, (t) => {
  const v = load(['300', String(256 << 10)], { MAIO_RING_ENTRIES: '64' });
  t.diagnostic(JSON.stringify(v.ring));
  assert.deepEqual(v.errors, []);
  assert.equal(v.mismatches, 0);
  assert.equal(v.exact, 300);
  assert.equal(v.ring.cqOverflow, 0, 'the kernel dropped completions');
  assert.ok(v.ring.cqFlushes > 0, 'the CQ overflowed and was flushed (else the test did not test it)');
  assert.equal(v.ring.inflight, 0);
  assert.equal(v.poolAfter, v.poolBefore);
});

test('MAIO_RING_ENTRIES that is not a power of two in [64, 32768] is a typed error when the ring is made', { skip: uringSkip }, () => {
  for (const bad of ['100', '32', '65536', 'lots']) {
    const r = spawnSync(process.execPath, ['-e', `try { require(${JSON.stringify(INDEX)}).Ring.current(); console.log('made'); } catch (e) { console.log(e.code + ' ' + e.message); }`], {
      encoding: 'utf8',
      env: { ...process.env, MAIO_RING_ENTRIES: bad },
    });
    assert.match(r.stdout, new RegExp(`^ERR_MAIO_OUT_OF_RANGE MAIO_RING_ENTRIES must be a power of two from 64 to 32768, got '${bad}'`), r.stdout + r.stderr);
  }
});

test('pool exhaustion: 200 connections on 64 pool buffers; tryAlloc null, allocWait waits, every echo exact, pool back', { skip: netSkip }, (t) => {
  const v = load(['200', String(64 << 10), String(256 << 10)]);
  t.diagnostic(JSON.stringify({ backend: v.backend, tryAllocNull: v.tryAllocNull, allocWaited: v.allocWaited, noBufferEvents: v.noBufferEvents, ring: v.ring }));
  assert.equal(v.capacity, 256 << 10);
  assert.deepEqual(v.errors, []);
  assert.equal(v.mismatches, 0);
  assert.equal(v.exact, 200);
  assert.ok(v.tryAllocNull > 0, 'the pool ran dry (else the test did not test it)');
  assert.equal(v.allocWaited, v.tryAllocNull, 'every allocWait() was answered');
  assert.ok(v.noBufferEvents > 0, 'receives found no pool buffer and waited (else the receive side was not exhausted)');
  assert.equal(v.poolAfter, v.poolBefore);
});

test('pool exhaustion with more connections than buffers (1,000 on 256): the receive group leaves senders buffers; no deadlock, every echo exact', { skip: netSkip }, (t) => {
  // The receive group once took every buffer of the class into the kernel, idle;
  // the senders' allocWait() then waited for buffers only their sends could free.
  const v = load(['1000', String(64 << 10), String(1 << 20)]);
  t.diagnostic(JSON.stringify({ backend: v.backend, tryAllocNull: v.tryAllocNull, noBufferEvents: v.noBufferEvents }));
  assert.deepEqual(v.errors, []);
  assert.equal(v.mismatches, 0);
  assert.equal(v.exact, 1000);
  assert.ok(v.tryAllocNull > 0, 'the pool ran dry');
  assert.equal(v.poolAfter, v.poolBefore);
});
