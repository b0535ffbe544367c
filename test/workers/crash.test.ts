/**
 * A worker that dies (process.exit, an uncaught throw) is replaced: its
 * connections end with ECONNRESET (the group resets the sockets the dead
 * thread left open, its listener included), the other workers' connections go
 * on echoing byte-exact, and the replacement takes connections again. A
 * module that keeps crashing at start is restarted with a growing delay.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as net from 'node:net';
import { startWorkers, type MaioWorker, type WorkerExitInfo, type WorkerGroup } from '../../src/index';
import { bounded, netSkip } from '../net/helpers';
import { ECHO_WORKER, connectTo, ending, exchange, payload, whichWorker } from './helpers';

const skip = netSkip;

interface Conn {
  s: net.Socket;
  worker: number;
}

async function openSpread(group: WorkerGroup, n: number): Promise<Conn[]> {
  const conns: Conn[] = [];
  for (let i = 0; i < n; i++) {
    const s = await connectTo(group.port);
    conns.push({ s, worker: await whichWorker(s) });
  }
  return conns;
}

function nextExit(group: WorkerGroup, index: number): Promise<{ w: MaioWorker; code: number; info: WorkerExitInfo }> {
  return new Promise((resolve) => {
    const on = (w: MaioWorker, code: number, info: WorkerExitInfo) => {
      if (w.index !== index) return;
      group.off('exit', on);
      resolve({ w, code, info });
    };
    group.on('exit', on);
  });
}

function nextReady(group: WorkerGroup, index: number): Promise<MaioWorker> {
  return new Promise((resolve) => {
    const on = (w: MaioWorker) => {
      if (w.index !== index) return;
      group.off('ready', on);
      resolve(w);
    };
    group.on('ready', on);
  });
}

for (const how of ['exit', 'throw'] as const) {
  test(`a worker that ${how === 'exit' ? 'calls process.exit' : 'throws'} is replaced; its connections reset, the others echo on`, { skip }, async () => {
    const group = await startWorkers({ module: ECHO_WORKER, count: 2, workerData: { greet: true }, restart: { minDelay: 50 } });
    const conns: Conn[] = [];
    try {
      conns.push(...(await openSpread(group, 32)));
      const victim = how === 'exit' ? 0 : 1;
      const mine = conns.filter((c) => c.worker === victim);
      const others = conns.filter((c) => c.worker !== victim);
      assert.ok(mine.length > 0 && others.length > 0, `spread: ${mine.length} / ${others.length}`);
      const ends = mine.map((c) => ending(c.s));
      const errors: Error[] = [];
      group.on('error', (_w, e) => errors.push(e));
      const exited = nextExit(group, victim);
      const replaced = nextReady(group, victim);
      const old = group.workers.find((w) => w.index === victim)!;
      old.send(how);
      const { w, code, info } = await bounded(exited, 'the exit', 10_000);
      assert.equal(w, old);
      assert.equal(code, how === 'exit' ? 3 : 1);
      assert.equal(info.expected, false);
      assert.equal(info.restartIn, 50);
      // Its accepted sockets and its listener.
      assert.equal(info.socketsReset, mine.length + 1);
      if (how === 'throw') assert.match(errors[0]?.message ?? '', /boom/);
      for (const err of await Promise.all(ends)) assert.equal(err?.code, 'ECONNRESET');
      // The other worker's connections, while the victim is down: byte-exact.
      const echoes = await Promise.all(others.map((c, i) => exchange(c.s, payload(100 + i, 16384))));
      echoes.forEach((e, i) => assert.ok(e.equals(payload(100 + i, 16384)), `connection ${i} of the live worker`));
      const fresh = await bounded(replaced, 'the replacement', 10_000);
      assert.notEqual(fresh.id, old.id);
      assert.equal(group.workers.length, 2);
      // New connections reach the replacement too (and never the dead listener: none hangs).
      const after = await openSpread(group, 32);
      conns.push(...after);
      assert.ok(after.some((c) => c.worker === victim), 'the replacement accepts');
      assert.ok(after.some((c) => c.worker !== victim), 'the other worker accepts');
      const again = await Promise.all(after.map((c, i) => exchange(c.s, payload(200 + i))));
      again.forEach((e, i) => assert.ok(e.equals(payload(200 + i))));
      const stats = await group.stats();
      assert.equal(stats.workers.find((s) => s.index === victim)!.id, fresh.id);
    } finally {
      for (const c of conns) c.s.destroy();
      await group.stop({ timeout: 5000 });
    }
  });
}

test('a module that crashes at every start is restarted with a doubling delay, and runs once it can', { skip }, async () => {
  const flag = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'maio-workers-')), 'crash');
  const group = await startWorkers({
    module: ECHO_WORKER,
    count: 2,
    workerData: { crashIfExists: flag },
    restart: { minDelay: 40, maxDelay: 1000, resetAfter: 60_000 },
  });
  try {
    const delays: number[] = [];
    const crashedEnough = new Promise<void>((resolve) =>
      group.on('exit', (w, _code, info) => {
        if (w.index !== 0) return;
        delays.push(info.restartIn!);
        if (delays.length === 4) {
          fs.rmSync(flag);
          resolve();
        }
      }),
    );
    fs.writeFileSync(flag, '');
    const back = new Promise<MaioWorker>((resolve) => group.on('ready', (w) => w.index === 0 && resolve(w)));
    group.workers[0]!.send('exit');
    await bounded(crashedEnough, 'four crashes', 20_000);
    assert.deepEqual(delays, [40, 80, 160, 320]);
    const w = await bounded(back, 'the replacement', 10_000);
    assert.equal(w.state, 'ready');
    const s = await connectTo(group.port);
    assert.ok((await exchange(s, payload(7))).equals(payload(7)));
    s.destroy();
  } finally {
    fs.rmSync(path.dirname(flag), { recursive: true, force: true });
    await group.stop({ timeout: 5000 });
  }
});

test('a connection handler that throws: that connection and the listener are reset too', { skip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 1, workerData: { throwOnConnection: true }, restart: { minDelay: 60_000 } });
  try {
    const exited = nextExit(group, 0);
    const s = await connectTo(group.port);
    const end = ending(s);
    const { code, info } = await bounded(exited, 'the exit', 10_000);
    assert.equal(code, 1);
    assert.equal(info.socketsReset, 2, 'the accepted socket and the listener');
    assert.equal((await end)?.code, 'ECONNRESET');
  } finally {
    await group.stop({ timeout: 1000 });
  }
});

test('a worker whose onStats throws or returns what cannot be cloned still answers stats', { skip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 2 });
  try {
    const [a, b] = [...group.workers].sort((x, y) => x.index - y.index);
    const acks = new Promise<void>((resolve) => {
      let n = 0;
      group.on('message', () => ++n === 2 && resolve());
    });
    a!.send('stats-throw');
    b!.send('stats-uncloneable');
    await bounded(acks, 'the acks', 10_000);
    const stats = await group.stats();
    assert.deepEqual(stats.missing, []);
    const app = (i: number) => stats.workers.find((w) => w.index === i)!.app as { error: string };
    assert.match(app(0).error, /no stats today/);
    assert.match(app(1).error, /could not be cloned/);
    assert.equal(group.workers.length, 2);
  } finally {
    await group.stop({ timeout: 5000 });
  }
});
