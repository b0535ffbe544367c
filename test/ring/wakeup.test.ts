/**
 * Wake-ups that never wait: one loopback connection, 2,000 ping-pong round trips, fails when more
 * than 1% of them take 10 ms or more (a completion that reached the event loop late). It asserts
 * the absence of stalls, not speed, so it holds on a busy 2-core machine. Each set-up runs in its
 * own process (`maio self-check`: server on the main thread, client on a worker, so every wake-up
 * crosses threads as between processes).
 *
 * MAIO_RING_SETUP in the environment runs that set-up only: `MAIO_RING_SETUP=defer` shows the
 * test failing on a kernel that signals DEFER_TASKRUN's eventfd late.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { backend } from '../../src/backend';
import type { SelfCheckResult } from '../../src/cli/self-check';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const ROUND_TRIPS = 2000;
const MAX_STALL_SHARE = 0.01;

function selfCheck(env: NodeJS.ProcessEnv, roundTrips: number, durationMs: number): Promise<SelfCheckResult> {
  const args = [CLI, 'self-check', '--round-trips', String(roundTrips), '--duration-ms', String(durationMs), '--bulk-ms', '0'];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { env, timeout: durationMs + 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`self-check failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as SelfCheckResult);
    });
  });
}

function describe(r: SelfCheckResult): string {
  const p = r.pingPong;
  return `${p.roundTrips} round trips in ${p.seconds.toFixed(2)} s, p50 ${p.p50Us.toFixed(0)} us, p99 ${p.p99Us.toFixed(0)} us, ` +
    `max ${(p.maxUs / 1000).toFixed(1)} ms, ${p.stalls} of them >= 10 ms (${r.backend})`;
}

const b = backend();
const forcedSetup = process.env.MAIO_RING_SETUP || undefined;

/** The set-ups to hold to the no-stall rule on this backend, each as the env of its child. */
function setups(): [string, NodeJS.ProcessEnv][] {
  if (b.mode === 'epoll') return [[`epoll (${b.reason})`, { ...process.env }]];
  if (forcedSetup) return [[`io_uring, MAIO_RING_SETUP=${forcedSetup}`, { ...process.env }]];
  const out: [string, NodeJS.ProcessEnv][] = [
    [`io_uring, default set-up (${b.ringSetup!.mode}: ${b.ringSetup!.reason})`, { ...process.env, MAIO_RING_SETUP: 'auto' }],
    ['io_uring, MAIO_RING_SETUP=coop', { ...process.env, MAIO_RING_SETUP: 'coop' }],
  ];
  // DEFER_TASKRUN is held to the rule only where the probe found it prompt; the test below checks
  // that the probe is right where it found it late.
  if (b.deferEventfd === 'prompt') out.push(['io_uring, MAIO_RING_SETUP=defer', { ...process.env, MAIO_RING_SETUP: 'defer' }]);
  return out;
}

for (const [name, env] of setups()) {
  test(`no stalled wake-ups: ${ROUND_TRIPS} round trips, ${name}`, async () => {
    const r = await selfCheck(env, ROUND_TRIPS, 20_000);
    const { roundTrips, stalls } = r.pingPong;
    assert.ok(stalls <= roundTrips * MAX_STALL_SHARE, `more than 1% of round trips stalled: ${describe(r)}`);
    assert.equal(roundTrips, ROUND_TRIPS, `the check ran out of time: ${describe(r)}`);
  });
}

const verdictSkip =
  b.mode !== 'io_uring' ? 'ring set-ups are io_uring\'s (this run is on epoll)'
  : forcedSetup ? `MAIO_RING_SETUP=${forcedSetup} is forced for this run`
  : b.deferEventfd === 'unavailable' ? 'this kernel has no DEFER_TASKRUN: nothing to probe'
  : b.deferEventfd === 'prompt' ? 'the probe found DEFER_TASKRUN prompt here; the no-stall test above holds it to that'
  : false;

test('the wake-up probe is right: where it says DEFER_TASKRUN is late, a forced DEFER ring stalls and auto avoids it', { skip: verdictSkip }, async () => {
  assert.equal(b.ringSetup!.mode, 'coop', 'auto must not pick DEFER_TASKRUN where the probe found it late');
  // Bounded by time: at 12-20 ms per round trip, 2,000 would take 30 s.
  const r = await selfCheck({ ...process.env, MAIO_RING_SETUP: 'defer' }, 200, 1500);
  assert.ok(r.pingPong.roundTrips >= 10, `too few round trips to judge: ${describe(r)}`);
  assert.ok(r.pingPong.stalls > r.pingPong.roundTrips / 2, `the probe said late, but DEFER_TASKRUN did not stall: ${describe(r)}`);
});
