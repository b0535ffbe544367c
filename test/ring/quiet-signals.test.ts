/**
 * The ring's poll callback turns eventfd signals off while it reaps (native/ring.c,
 * ring_signals): what completes meanwhile, above all a loopback send completing inside the
 * callback's own submit, is reaped by the callback and must not wake the event loop again for
 * nothing. Two things are checked, in a child process per set-up (test/ring/fixtures/quiet-echo.ts:
 * maio echo server on the main thread, node:net client on a worker thread):
 *   - the path: at one connection, almost no wake-up finds the ring empty (before, one per round
 *     trip: the echo's own completion, already reaped, had signalled the eventfd);
 *   - no wake-up is lost: messages that land while signals are off (the server sleeps inside its
 *     handler) and after they are on again (the client waits 0-2 ms) all arrive; a lost one stalls
 *     the ping-pong, and the fixture stops at its deadline with round trips missing.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { backend } from '../../src/backend';

const FIXTURE = path.join(__dirname, 'fixtures', 'quiet-echo.js');

interface Result {
  roundTrips: number;
  seconds: number;
  wakeups: number;
  emptyWakeups: number;
}

function run(env: NodeJS.ProcessEnv, roundTrips: number, mode: 'prompt' | 'late'): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [FIXTURE, String(roundTrips), mode], { env, timeout: 40_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`quiet-echo failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as Result);
    });
  });
}

const b = backend();
const forced = process.env.MAIO_RING_SETUP || undefined;

/** Set-ups to run, each as its child's environment. DEFER_TASKRUN is checked for delivery only:
 * where its eventfd is late (this kernel build) a round trip takes 12-20 ms. */
function setups(): { name: string; env: NodeJS.ProcessEnv; defer: boolean }[] {
  if (b.mode === 'epoll') return [{ name: 'epoll', env: { ...process.env }, defer: false }];
  if (forced) return [{ name: `io_uring, MAIO_RING_SETUP=${forced}`, env: { ...process.env }, defer: forced === 'defer' }];
  const out = [{ name: 'io_uring, MAIO_RING_SETUP=coop', env: { ...process.env, MAIO_RING_SETUP: 'coop' }, defer: false }];
  if (b.deferEventfd !== 'unavailable') out.push({ name: 'io_uring, MAIO_RING_SETUP=defer', env: { ...process.env, MAIO_RING_SETUP: 'defer' }, defer: true });
  return out;
}

for (const s of setups()) {
  test(`one connection: wake-ups rarely find the ring empty (${s.name})`, { skip: s.defer && 'DEFER_TASKRUN: delivery only (below)' }, async () => {
    const r = await run(s.env, 400, 'prompt');
    const line = `${r.roundTrips} round trips in ${r.seconds.toFixed(2)} s: ${r.wakeups} wake-ups, ${r.emptyWakeups} empty`;
    assert.equal(r.roundTrips, 400, `round trips missing: ${line}`);
    if (b.mode === 'io_uring') assert.ok(r.emptyWakeups <= r.roundTrips * 0.2, `wake-ups for nothing: ${line}`);
  });

  test(`no completion is lost while signals are off or after (${s.name})`, async () => {
    const n = s.defer ? 80 : 300;
    const r = await run(s.env, n, 'late');
    assert.equal(r.roundTrips, n, `a completion was not delivered (stalled after ${r.roundTrips} of ${n}, ${r.seconds.toFixed(1)} s)`);
  });
}
