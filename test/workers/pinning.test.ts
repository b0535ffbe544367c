/**
 * CPU pinning and steering: each pinned worker thread's Cpus_allowed_list
 * (/proc/self/task/<tid>/status) is its CPU; with steer 'cpu' the CBPF
 * reuseport program attaches (or the test says why not) and a client
 * connecting from CPU c lands on worker c, also after worker 0 was replaced; a CPU that cannot be used is
 * reported, not fatal; bad masks are typed errors.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { OutOfRangeError } from '../../src/core/errors';
import { native } from '../../src/core/native';
import { allowedCpus, probeCpuSteering, setThreadAffinity, startWorkers } from '../../src/index';
import { bounded, netSkip } from '../net/helpers';
import { ECHO_WORKER } from './helpers';

const cpus = allowedCpus();
const two = cpus.length >= 2 ? cpus.slice(0, 2) : null;

function taskCpus(tid: number): string {
  return /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))![1]!;
}

test('each pinned worker thread may run only on its CPU (/proc/self/task/<tid>/status)', { skip: netSkip || (!two && 'needs 2 CPUs') }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, cpus: two!, steer: 'hash' });
  try {
    assert.equal(group.count, 2);
    for (const w of group.workers) {
      assert.equal(w.pinError, null);
      assert.equal(taskCpus(w.threadId), String(two![w.index]));
      assert.deepEqual(w.cpus, [two![w.index]]);
    }
    const stats = await group.stats();
    for (const s of stats.workers) assert.deepEqual(s.cpus, [two![s.index]]);
    // The main thread is not pinned by it.
    assert.equal(taskCpus(process.pid), /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
    assert.equal(group.steering.attached, false);
  } finally {
    await group.stop({ timeout: 5000 });
  }
});

/** From a thread pinned to `cpu`: which worker each of n connections reaches. */
async function landingsFrom(cpu: number, port: number, n: number): Promise<number[]> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    require(${JSON.stringify(require.resolve('../../src/index'))}).setThreadAffinity([workerData.cpu]);
    const h = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))});
    (async () => {
      const out = [];
      for (let i = 0; i < workerData.n; i++) {
        const s = await h.connectTo(workerData.port);
        out.push(await h.whichWorker(s));
        s.destroy();
      }
      parentPort.postMessage(out);
    })();`;
  const w = new Worker(code, { eval: true, workerData: { cpu, port, n } });
  const [out] = (await bounded(once(w, 'message'), `landings from CPU ${cpu}`, 20_000)) as [number[]];
  await w.terminate();
  return out;
}

test("steer 'cpu': the CBPF program attaches and a client on CPU c reaches worker c", { skip: netSkip || (!two && 'needs 2 CPUs') }, async (t) => {
  const probe = probeCpuSteering();
  if (!probe.attached) {
    t.skip(`the kernel refused SO_ATTACH_REUSEPORT_CBPF: ${probe.reason}`);
    return;
  }
  const group = await startWorkers({ module: ECHO_WORKER, cpus: two!, workerData: { greet: true }, restart: { minDelay: 20 } });
  try {
    assert.equal(group.steering.mode, 'cpu');
    assert.equal(group.steering.attached, true, group.steering.reason);
    for (const i of [0, 1]) {
      const landed = await landingsFrom(two![i]!, group.port, 16);
      assert.deepEqual(landed, new Array(16).fill(i), `from CPU ${two![i]}`);
    }
    // Worker 0 replaced: the kernel moved worker 1's socket into its place and appended the
    // new one; the group re-attaches the program with a table, so CPU c still reaches worker c.
    const steered = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (/through \[1, 0\]/.test(group.steering.reason)) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const back = new Promise<void>((resolve) => group.on('ready', (w) => w.index === 0 && resolve()));
    group.workers.find((w) => w.index === 0)!.send('exit');
    await bounded(back, 'the replacement', 10_000);
    await bounded(steered, 'the new steering table', 10_000);
    for (const i of [0, 1]) {
      const landed = await landingsFrom(two![i]!, group.port, 16);
      assert.deepEqual(landed, new Array(16).fill(i), `after the replacement, from CPU ${two![i]}`);
    }
  } finally {
    await group.stop({ timeout: 5000 });
  }
});

test('a CPU the kernel refuses is reported per worker; the worker still runs', { skip: netSkip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 1, cpus: [4095], steer: 'hash' });
  try {
    const w = group.workers[0]!;
    assert.match(w.pinError ?? '', /EINVAL/);
    assert.equal(taskCpus(w.threadId), /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
  } finally {
    await group.stop({ timeout: 5000 });
  }
});

test('bad affinity masks are typed errors before any system call', () => {
  assert.throws(() => native().threadSetAffinity(new Uint8Array(0)), (e: Error & { code?: string }) => e.code === 'ERR_MAIO_OUT_OF_RANGE');
  assert.throws(() => native().threadSetAffinity(new Uint8Array(8)), (e: Error & { code?: string }) => e.code === 'ERR_MAIO_OUT_OF_RANGE');
  assert.throws(() => native().threadSetAffinity(new Uint8Array(2048)), (e: Error & { code?: string }) => e.code === 'ERR_MAIO_OUT_OF_RANGE');
  assert.throws(() => setThreadAffinity('99999'), OutOfRangeError);
  assert.throws(() => native().sockAttachReuseportCpu(0, 0), (e: Error & { code?: string }) => e.code === 'ERR_MAIO_OUT_OF_RANGE');
  assert.throws(() => native().sockAttachReuseportCpu(-1, 2), (e: Error & { code?: string }) => e.code === 'ERR_MAIO_OUT_OF_RANGE');
});
