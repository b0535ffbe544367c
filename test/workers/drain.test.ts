/**
 * Graceful stop: every worker stops accepting (new connects are refused once
 * all have), a connection open during the drain finishes its exchange, the
 * group ends when it closes, or at the timeout (the rest reset). SIGTERM on a
 * process with `signals: true` does the same, and so does the CLI's.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import * as path from 'node:path';
import { startWorkers, type StopResult } from '../../src/index';
import { bounded, netSkip } from '../net/helpers';
import { startChild } from '../net/child';
import { ECHO_WORKER, connectTo, ending, exchange, payload } from './helpers';

const skip = netSkip;

/** Resolves once a connect to `port` is refused (the last listener closed); bounded. */
async function refused(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const code = await new Promise<string | null>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(null);
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    if (code === 'ECONNREFUSED') return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`connects to ${port} were never refused`);
}

test('stop() drains: no new connections, an open one finishes its exchange, then the workers end', { skip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 2 });
  const s = await connectTo(group.port);
  assert.ok((await exchange(s, payload(1))).equals(payload(1)));
  let result: StopResult | null = null;
  const stopped = group.stop({ timeout: 20_000 }).then((r) => (result = r));
  await refused(group.port);
  // Draining: the open connection still echoes, byte-exact, and holds the stop.
  assert.ok((await exchange(s, payload(2, 65536))).equals(payload(2, 65536)));
  assert.equal(result, null);
  s.end();
  await bounded(stopped, 'the stop', 10_000);
  assert.deepEqual(result, { drained: 2, terminated: 0 });
  assert.deepEqual(group.workers, []);
});

test('stop({ timeout }) terminates a worker whose connection stays open; that connection is reset', { skip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 2 });
  const s = await connectTo(group.port);
  assert.ok((await exchange(s, payload(3))).equals(payload(3)));
  const end = ending(s);
  const r = await group.stop({ timeout: 300 });
  assert.deepEqual(r, { drained: 1, terminated: 1 });
  assert.equal((await end)?.code, 'ECONNRESET');
});

const runs: [string, string[]][] = [
  ['a process with signals: true', [path.join(__dirname, 'fixtures', 'group-main.js')]],
  ['maio echo --workers 2', [path.join(__dirname, '..', '..', 'src', 'cli', 'main.js'), 'echo', '--workers', '2', '--port', '0']],
];
for (const [what, args] of runs) {
  test(`SIGTERM drains ${what}: refused after, the open connection finishes, exit 0`, { skip }, async () => {
    const { child, port: portP, err } = startChild(args);
    try {
      const port = await portP;
      const s = await connectTo(port);
      assert.ok((await exchange(s, payload(4))).equals(payload(4)));
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await refused(port);
      assert.ok((await exchange(s, payload(5, 32768))).equals(payload(5, 32768)));
      assert.equal(child.exitCode, null, 'still draining');
      s.end();
      const [code] = (await bounded(exited, 'the exit', 15_000)) as [number | null];
      assert.equal(code, 0, err());
    } finally {
      child.kill('SIGKILL');
    }
  });
}
