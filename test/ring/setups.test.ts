/**
 * The ring's reap, overflow, close and bulk-batching paths under each ring set-up forced in
 * turn (MAIO_RING_SETUP=coop, then defer where the kernel has it): the default run covers only
 * the set-up the probe picked, and the two differ in when task work runs (native/ring.c's header).
 * Each set-up runs the files below in a child `node --test`.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { backend } from '../../src/backend';
import { native } from '../../src/core/native';

const FILES = [
  'ring/ring.test.js', // reap, CQ overflow
  'ring/contract.test.js', // cancel, close with ops in flight, worker rings
  'ring/batch-wait.test.js', // the bulk-batching wait (eventfd muted while it waits)
  'hardening/faults-load.test.js', // CQ overflow under 300 echoing connections
  'net/lifecycle.test.js', // socket close and cancellation
].map((f) => path.join(__dirname, '..', f));

const b = backend();
const p = native().probe();
const skip = b.mode !== 'io_uring' ? 'ring set-ups are io_uring\'s (this run is on epoll)' : false;

for (const setup of ['coop', 'defer'] as const) {
  const why = skip || (setup === 'defer' && p.deferSetupFlags === 0 ? `the kernel (${b.kernel}) refuses DEFER_TASKRUN` : false);
  test(`reap, overflow, close and batching tests pass with MAIO_RING_SETUP=${setup}`, { skip: why }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, MAIO_BACKEND: 'io_uring', MAIO_RING_SETUP: setup };
    delete env.NODE_TEST_CONTEXT; // else the child reports to this runner instead of printing TAP
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', ...FILES], { env, timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout) => {
        if (err && !stdout) return reject(err);
        resolve(stdout);
      });
    });
    const count = (k: string) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(out)?.[1] ?? NaN);
    const failed = out.split('\n').filter((l) => /^\s*not ok /.test(l));
    assert.equal(count('fail'), 0, `with MAIO_RING_SETUP=${setup}:\n${failed.join('\n')}`);
    assert.ok(count('pass') > 20, `the child ran the tests (${count('pass')} passed)`);
    const backendJs = path.join(__dirname, '..', '..', 'src', 'backend.js');
    const inForce = execFileSync(process.execPath, ['-p', `require(${JSON.stringify(backendJs)}).backend().ringSetup.mode`], { env, encoding: 'utf8' });
    assert.equal(inForce.trim(), setup, 'the children ran with that set-up');
  });
}
