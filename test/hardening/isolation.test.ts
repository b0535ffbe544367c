// Isolation: no connection observes another's bytes when the pool zeroes on
// release (and, as the control, it does in the default mode, which is why the
// mode exists); a fork()ed child does not get the pool's mapping; a pool's
// region cannot be moved to another thread by transferring a view of it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { Worker } from 'node:worker_threads';
import { createPool, createServer, defaultPool, type IoPool, type Socket } from '../../src/index';
import { netSkip as skip, until } from '../net/helpers';

const SECRET = 0xa5;

/**
 * Connection A sends 256 KiB of SECRET and closes; then connection B sends
 * single bytes (0x01). Every buffer B's server side receives is stretched to
 * its capacity (setLength) and scanned: bytes of A's data there are a leak.
 */
async function leakedBytes(pool: IoPool): Promise<{ leaked: number; buffersSeen: number }> {
  let leaked = 0;
  let buffersSeen = 0;
  let aBytes = 0;
  let bBytes = 0;
  const server = createServer({ pool, readBufferSize: 2048, readBuffersMax: 64 }, (s: Socket) => {
    s.on('error', () => {});
    s.on('data', (buf) => {
      const first = buf.bytes[0];
      if (first === SECRET) {
        aBytes += buf.length;
        return; // released when the handler returns
      }
      bBytes += buf.length;
      buffersSeen++;
      const n = buf.length;
      buf.setLength(buf.capacity);
      const all = buf.bytes;
      for (let i = n; i < all.length; i++) if (all[i] === SECRET) leaked++;
    });
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const a = net.connect(port, '127.0.0.1');
  await once(a, 'connect');
  a.write(Buffer.alloc(256 * 1024, SECRET));
  // A's buffers went back (zeroed or not) when its handler returned; A stays open meanwhile.
  await until(() => aBytes === 256 * 1024, "A's bytes received");
  const b = net.connect(port, '127.0.0.1');
  b.setNoDelay(true);
  await once(b, 'connect');
  for (let i = 0; i < 64; i++) {
    b.write(Buffer.from([1]));
    await until(() => bBytes === i + 1, 'a byte of B');
  }
  // RST both: the server side closes on the error, whatever else is in flight.
  a.resetAndDestroy();
  b.resetAndDestroy();
  await until(() => server.connections === 0, 'server connections closed');
  const closed = once(server, 'close');
  server.close();
  await closed;
  return { leaked, buffersSeen };
}

test('zeroOnRelease: a connection never sees the bytes an earlier connection received into the same buffers', { skip, timeout: 100000 }, async () => {
  const classes = [{ size: 2048, count: 256 }];
  const zeroing = createPool({ size: 1 << 20, lock: false, strict: true, zeroOnRelease: true, classes });
  const r = await leakedBytes(zeroing);
  assert.ok(r.buffersSeen >= 64);
  assert.equal(r.leaked, 0, 'no byte of A in any buffer B received');
  zeroing.close();

  // Control: the same run without zeroing shows A's bytes in B's buffers, so the scan can see a leak.
  const plain = createPool({ size: 1 << 20, lock: false, classes });
  const c = await leakedBytes(plain);
  assert.ok(c.leaked > 0, `the default mode leaves old bytes behind (${c.leaked} seen): what zeroOnRelease is for`);
  plain.close();
});

/**
 * test/hardening/fixtures/fork-probe.c, compiled here with the C compiler
 * node-gyp used: a raw fork() without exec, as a native library might make,
 * whose child reports whether an address range is still mapped in it.
 */
function forkProbe(): { probe: { mappedInChild(start: bigint, length: number): boolean; addressOf(ab: ArrayBuffer): bigint } | null; why: string } {
  const headers = [
    path.join(path.dirname(process.execPath), '..', 'include', 'node'),
    path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
    '/usr/include/node',
  ].find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
  if (headers === undefined) return { probe: null, why: 'no node_api.h (Node headers) on this machine' };
  const src = path.join(__dirname, '..', '..', '..', 'test', 'hardening', 'fixtures', 'fork-probe.c');
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'maio-fork-probe-')), 'fork-probe.node');
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O1', `-I${headers}`, '-o', out, src], { encoding: 'utf8' });
  if (cc.error) return { probe: null, why: `no C compiler: ${cc.error.message}` };
  assert.equal(cc.status, 0, `cc fork-probe.c: ${cc.stderr}`);
  const probe = require(out);
  fs.rmSync(path.dirname(out), { recursive: true, force: true }); // loaded: the mapping outlives the file
  return { probe, why: '' };
}

test('a fork()ed child (no exec) does not have the pool region mapped; an ordinary buffer it does; the parent region is intact', async (t) => {
  const { probe, why } = forkProbe();
  if (probe === null) {
    t.skip(why);
    return;
  }
  const pool = defaultPool();
  const st = pool.stats();
  assert.equal(st.dontFork, true, 'MADV_DONTFORK accepted');
  const b = pool.alloc(64);
  b.bytes.fill(0x5c);
  // The control: memory without MADV_DONTFORK is copied into the child, so the probe can say yes.
  const plain = new ArrayBuffer(1 << 20);
  new Uint8Array(plain).fill(1);
  assert.equal(probe.mappedInChild(probe.addressOf(plain), plain.byteLength), true, 'an ordinary ArrayBuffer is mapped in the forked child');
  assert.equal(probe.mappedInChild(BigInt('0x' + pool.address), st.capacity), false, 'the pool region is not mapped in the forked child');
  assert.ok(b.bytes.every((x) => x === 0x5c), 'the parent’s buffer is intact');
  assert.ok(fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => l.startsWith(pool.address + '-')));
  b.release();
});

test('transferring a view of the region to a worker copies it: the region stays with its pool and thread', async () => {
  for (const strict of [false, true]) {
    const pool = createPool({ size: 1 << 20, lock: false, register: false, strict });
    const b = pool.alloc(100);
    b.bytes.fill(7);
    const view = b.bytes;
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads');
       parentPort.once('message', (u8) => { u8.fill(9); parentPort.postMessage(u8.byteLength); });`,
      { eval: true },
    );
    let threw = false;
    try {
      w.postMessage(view, [view.buffer as ArrayBuffer]);
    } catch {
      threw = true; // a non-detachable buffer may also be refused outright: equally safe
    }
    if (!threw) {
      const [len] = (await once(w, 'message')) as [number];
      assert.equal(len, 100);
    }
    await w.terminate();
    assert.equal(b.bytes.length, 100, `strict=${strict}: the buffer still has its bytes`);
    assert.ok(b.bytes.every((x) => x === 7), `strict=${strict}: the worker's writes did not reach the pool`);
    b.release();
    pool.close();
  }
});
