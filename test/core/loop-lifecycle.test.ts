/**
 * native/loop.c: the close funnel both engines share is safe in every order
 * (JS close then GC, GC without close, close from inside the engine's own
 * callback, a worker exiting or terminated with its handle open and
 * referenced). Each case runs in a child process (loop-lifecycle-child.ts)
 * so a crash or a hang fails the test, not the runner.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { native } from '../../src/core/native';

const child = path.join(__dirname, 'loop-lifecycle-child.js');
const scenarios = ['close-then-gc', 'gc-without-close', 'close-in-callback', 'worker-exit-open', 'worker-terminate-open'];
const uring = (() => {
  try {
    return native().probe().uringUsable;
  } catch {
    return false;
  }
})();

for (const engine of ['ring', 'fallback'] as const) {
  for (const scenario of scenarios) {
    test(`${engine} loop: ${scenario}`, { skip: engine === 'ring' && !uring ? 'io_uring is not usable here' : false }, () => {
      const r = spawnSync(process.execPath, ['--expose-gc', child, engine, scenario], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.signal, null, `killed by ${r.signal}\n${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'OK', r.stderr);
    });
  }
}
