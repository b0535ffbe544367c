/**
 * Worker groups (src/workers/): connections land on every worker, stats sum
 * up, messages go both ways, count 'auto' follows the affinity mask, bad
 * options are typed errors. Real sockets, node:net clients.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as fs from 'node:fs';
import type * as net from 'node:net';

import { backend } from '../../src/backend';
import { InvalidArgumentError, OutOfRangeError, WorkerStartError } from '../../src/core/errors';
import { WorkerGroup, allowedCpus, formatCpuList, parseCpuList, startWorkers } from '../../src/index';
import { sumPrometheus } from '../../src/workers/aggregate';
import { bounded, netSkip, until } from '../net/helpers';
import { ECHO_WORKER, connectTo, exchange, payload, whichWorker } from './helpers';

const skip = netSkip;

test('64 connections to 2 workers: each worker serves some, every echo byte-exact, stats sum up', { skip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 2, workerData: { greet: true } });
  const socks: net.Socket[] = [];
  try {
    assert.equal(group.workers.length, 2);
    assert.ok(group.port > 0);
    const served = [0, 0];
    for (let i = 0; i < 64; i++) {
      const s = await connectTo(group.port);
      socks.push(s);
      served[await whichWorker(s)]!++;
    }
    assert.ok(served[0]! > 0 && served[1]! > 0, `connections per worker: ${served}`);
    const echoes = await Promise.all(socks.map((s, i) => exchange(s, payload(i + 1))));
    echoes.forEach((e, i) => assert.ok(e.equals(payload(i + 1)), `connection ${i} echoed other bytes`));
    const stats = await group.stats();
    assert.deepEqual(stats.missing, []);
    assert.deepEqual(stats.workers.map((w) => w.index).sort(), [0, 1]);
    // Each worker runs the engine this process runs (MAIO_BACKEND reaches the threads).
    for (const w of stats.workers) assert.equal(w.backend, backend().mode);
    for (const w of stats.workers) assert.equal(w.accepted, served[w.index], `worker ${w.index} accepted`);
    const total = stats.total as { accepted: number; connections: number; net: { bytesRead: number }; app: { echoServer: number } };
    assert.equal(total.accepted, 64);
    assert.equal(total.connections, 64);
    assert.equal(total.app.echoServer, 2);
    // 4 bytes "who\n" (answered, not echoed) + 4096 echoed per connection
    assert.equal(total.net.bytesRead, 64 * (4 + 4096));
    assert.equal(total.net.bytesRead, stats.workers.reduce((a, w) => a + w.net.bytesRead!, 0));
    const metrics = await group.metrics();
    assert.match(metrics, /^test_workers 2$/m);
    assert.match(metrics, /^test_index_sum 1$/m);
    assert.equal(metrics.match(/# TYPE test_workers/g)?.length, 1);
  } finally {
    for (const s of socks) s.destroy();
    await group.stop({ timeout: 5000 });
  }
});

test('messages both ways; a worker thread has its own kernel thread id', { skip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 2 });
  try {
    const answers = new Map<number, unknown>();
    const got = new Promise<void>((resolve) =>
      group.on('message', (w, m) => {
        answers.set(w.index, m);
        if (answers.size === 2) resolve();
      }),
    );
    group.broadcast('hi');
    await bounded(got, 'both answers', 10_000);
    assert.deepEqual(answers.get(0), { hi: 0 });
    assert.deepEqual(answers.get(1), { hi: 1 });
    const tids = group.workers.map((w) => w.threadId);
    assert.equal(new Set(tids).size, 2);
    for (const tid of tids) {
      assert.notEqual(tid, process.pid);
      assert.ok(fs.existsSync(`/proc/self/task/${tid}`), `thread ${tid} of this process`);
    }
  } finally {
    await group.stop({ timeout: 5000 });
  }
});

test("count 'auto' is the number of CPUs in this process's affinity mask (taskset -p), not os.cpus()", { skip }, async () => {
  const cpus = allowedCpus();
  let fromTaskset: number[] | null = null;
  try {
    const out = execFileSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
    fromTaskset = parseCpuList(/:\s*(\S+)\s*$/.exec(out.trim())![1]!);
  } catch {
    /* no taskset: /proc alone */
  }
  if (fromTaskset) assert.deepEqual(cpus, fromTaskset);
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  assert.equal(formatCpuList(cpus), /^Cpus_allowed_list:\s*(\S+)/m.exec(status)![1]);
  const group = await startWorkers({ module: ECHO_WORKER, count: 'auto' });
  try {
    assert.equal(group.count, cpus.length);
    assert.equal(group.workers.length, cpus.length);
  } finally {
    await group.stop({ timeout: 5000 });
  }
  // A narrower mask (taskset on a child process) gives fewer workers.
  if (cpus.length >= 2) {
    const script = `require(${JSON.stringify(require.resolve('../../src/index'))}).startWorkers({ module: ${JSON.stringify(ECHO_WORKER)} }).then(async (g) => { console.log(g.count); await g.stop({ timeout: 2000 }); })`;
    try {
      const out = execFileSync('taskset', ['-c', String(cpus[0]), process.execPath, '-e', script], { encoding: 'utf8', timeout: 20000 });
      assert.equal(out.trim(), '1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
});

test('CPU lists parse like Linux prints them; bad lists and options are typed errors', async () => {
  assert.deepEqual(parseCpuList('0-3,8,10-11'), [0, 1, 2, 3, 8, 10, 11]);
  assert.deepEqual(parseCpuList([3, 1, 1]), [1, 3]);
  assert.equal(formatCpuList([0, 1, 2, 5, 7, 8]), '0-2,5,7-8');
  for (const bad of ['', 'x', '3-1', '1,,2', '-1']) assert.throws(() => parseCpuList(bad), InvalidArgumentError, bad);
  assert.throws(() => parseCpuList('0-99999'), OutOfRangeError);
  assert.throws(() => parseCpuList([1.5]), InvalidArgumentError);
  await assert.rejects(startWorkers({ module: ECHO_WORKER, count: 0 }), OutOfRangeError);
  await assert.rejects(startWorkers({ module: ECHO_WORKER, count: 1.5 }), InvalidArgumentError);
  await assert.rejects(startWorkers({ module: '/nonexistent/worker.js', count: 1 }), InvalidArgumentError);
  await assert.rejects(startWorkers({ module: ECHO_WORKER, count: 1, steer: 'x' as 'cpu' }), InvalidArgumentError);
  await assert.rejects(startWorkers({ module: ECHO_WORKER, count: 1, restart: { minDelay: -1 } }), InvalidArgumentError);
  await assert.rejects(startWorkers(null as never), InvalidArgumentError);
});

test('a module that throws at start: startWorkers rejects with WorkerStartError and ends the others', { skip }, async () => {
  const err = await startWorkers({ module: ECHO_WORKER, count: 2, workerData: { crashAtStart: true }, readyTimeout: 10000 }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkerStartError, String(err));
  assert.match(String((err as Error & { cause?: Error }).cause?.message), /crash at start/);
});

test('Prometheus text from workers sums sample by sample, HELP/TYPE once', () => {
  const a = '# HELP x_total Things.\n# TYPE x_total counter\nx_total{u="a"} 3\nx_total{u="b"} 1\ny 2\n';
  const b = '# HELP x_total Things.\n# TYPE x_total counter\nx_total{u="a"} 4\ny 5\n';
  const sum = sumPrometheus([a, b]);
  assert.match(sum, /^x_total\{u="a"\} 7$/m);
  assert.match(sum, /^x_total\{u="b"\} 1$/m);
  assert.match(sum, /^y 7$/m);
  assert.equal(sum.match(/# HELP x_total/g)?.length, 1);
});


test('an ES module runs as a worker: import from maio, workerData, currentWorker(), a file: URL', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-esm-worker-'));
  const file = path.join(dir, 'server.mjs');
  const entry = pathToFileURL(path.join(__dirname, '..', '..', 'src', 'index.mjs')).href;
  fs.writeFileSync(
    file,
    `import { workerData } from 'node:worker_threads';
import { createServer, currentWorker } from ${JSON.stringify(entry)};
const ctx = currentWorker();
ctx.send({ index: ctx.index, data: workerData });
createServer((s) => s.on('data', (b) => s.send(b))).listen(0, '127.0.0.1');
`,
  );
  const seen = new Map<number, unknown>();
  // Listeners before the start: the workers send at once.
  const group = new WorkerGroup({ module: pathToFileURL(file), count: 2, workerData: { tag: 'esm' } });
  group.on('message', (w, m) => seen.set(w.index, m));
  await group.start();
  await assert.rejects(group.start(), InvalidArgumentError);
  try {
    await until(() => seen.size === 2, 'a message from each worker', 10_000);
    assert.deepEqual(seen.get(0), { index: 0, data: { tag: 'esm' } });
    assert.deepEqual(seen.get(1), { index: 1, data: { tag: 'esm' } });
    const s = await connectTo(group.port);
    assert.ok((await exchange(s, payload(9))).equals(payload(9)));
    s.destroy();
  } finally {
    await group.stop({ timeout: 5000 });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
