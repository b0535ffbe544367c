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
