// Pools never cross threads: each worker has its own default pool, and a
// worker that exits without closing its pools leaves nothing mapped.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { defaultPool } from '../../src/index';

const INDEX = path.join(__dirname, '..', '..', 'src', 'index.js');

const workerCode = `
const { createPool, defaultPool } = require(${JSON.stringify(INDEX)});
const strict = createPool({ size: 1 << 20, strict: true, register: false });
const held = Array.from({ length: 8 }, () => strict.alloc(100));
held[0].release();
const d = defaultPool();
const b = d.alloc(10);
b.bytes[0] = 1;
require('node:worker_threads').parentPort.postMessage({ addresses: [strict.address, d.address] });
`;

function mapped(address: string): boolean {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => l.startsWith(address + '-'));
}

test('a worker has its own default pool; its pools are unmapped when it exits', async () => {
  const mine = defaultPool();
  const addresses: string[] = [];
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const w = new Worker(workerCode, { eval: true });
      w.on('message', (m: { addresses: string[] }) => addresses.push(...m.addresses));
      w.on('error', reject);
      w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exit ${code}`))));
    });
  }
  assert.equal(addresses.length, 6);
  assert.ok(!addresses.includes(mine.address), 'not the main thread’s default pool');
  for (const a of addresses) assert.equal(mapped(a), false, `${a} unmapped after its worker exited`);
  assert.equal(mapped(mine.address), true);
});

// Each worker runs its own ring: a server on the worker's ring and a client on
// the main thread's ring talk to each other; an IoBuffer posted to a worker
// arrives as a plain clone that every entry point refuses with a typed error.
const ringWorkerCode = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createServer, defaultPool, backend } = require(${JSON.stringify(INDEX)});
const uringFds = () => fs.readdirSync('/proc/self/fd').filter((f) => { try { return fs.readlinkSync('/proc/self/fd/' + f) === 'anon_inode:[io_uring]'; } catch { return false; } }).length;
const server = createServer((s) => s.on('data', (buf) => s.send(buf)));
server.listen(0, '127.0.0.1', () => {
  parentPort.postMessage({ port: server.address().port, uringFds: uringFds(), mode: backend().mode, pool: defaultPool().address });
});
parentPort.on('message', (m) => {
  if (m === 'stop') { server.close(); return; }
  const pool = defaultPool();
  const errors = [];
  for (const f of [() => pool.release(m), () => pool.owns(m) || (() => { throw new Error('not owned'); })()]) {
    try { f(); errors.push(null); } catch (e) { errors.push(e.code || e.message); }
  }
  parentPort.postMessage({ clone: Object.prototype.toString.call(m), keys: Object.keys(m).sort(), errors });
});
`;

test('a worker has its own ring: its server and a main-thread client echo through two rings; a posted IoBuffer is refused there', async () => {
  const { connect, defaultPool: mainPool, backend: mainBackend } = await import('../../src/index');
  const uringFds = (): number =>
    fs.readdirSync('/proc/self/fd').filter((f) => {
      try {
        return fs.readlinkSync('/proc/self/fd/' + f) === 'anon_inode:[io_uring]';
      } catch {
        return false;
      }
    }).length;
  // The main thread's ring exists before the worker starts.
  const probe = connect({ port: 1, host: '127.0.0.1' });
  probe.on('error', () => {});
  await new Promise((r) => probe.once('close', r));
  const mainFds = uringFds();
  const w = new Worker(ringWorkerCode, { eval: true });
  const next = (): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  const info = (await next()) as { port: number; uringFds: number; mode: string; pool: string };
  assert.equal(info.mode, mainBackend().mode);
  assert.notEqual(info.pool, mainPool().address, 'the worker has its own default pool');
  if (info.mode === 'io_uring') assert.equal(info.uringFds, mainFds + 1, 'the worker made one io_uring of its own');

  const c = connect({ port: info.port, host: '127.0.0.1' });
  let got = '';
  c.on('data', (buf) => (got += Buffer.from(buf.bytes).toString()));
  await new Promise((r) => c.once('connect', r));
  c.write('across two rings');
  const deadline = Date.now() + 20000;
  while (got !== 'across two rings' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(got, 'across two rings');

  const buf = mainPool().alloc(64);
  w.postMessage(buf);
  const r = (await next()) as { clone: string; keys: string[]; errors: (string | null)[] };
  assert.equal(r.clone, '[object Object]', 'a plain clone arrives, not an IoBuffer');
  assert.deepEqual(r.errors, ['ERR_MAIO_INVALID_ARG', 'not owned']);
  assert.equal(buf.released, false, 'the original is still the main thread’s');
  buf.release();
  c.destroy();
  await new Promise((r2) => c.once('close', r2));
  w.postMessage('stop');
  await new Promise((r2) => setTimeout(r2, 50));
  await w.terminate();
});
