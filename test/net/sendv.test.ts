/**
 * SENDV: a socket's queued plain sends leave as one IORING_OP_SENDMSG per run
 * of up to 16 buffers (src/net/socket.ts #submitChain, native/ring.c). The
 * bytes stay exact and in order, each send's callback runs once with its own
 * outcome, every buffer goes back, and fewer operations reach the kernel than
 * sends were queued. On epoll (no SENDV) the same transfers run one send per
 * buffer.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { backend } from '../../src/backend';
import { connect } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { stats } from '../../src/net/stats';
import { currentRing } from '../../src/ring/current';
import { closed, netSkip, nodeDrain, poolGuard, rng, sinkPair, SOURCE, until } from './helpers';

const skip = netSkip;
const uring = !netSkip && backend().mode === 'io_uring';

/** Queues `sizes.length` send()s in this turn; resolves with their callbacks' errors, in order. */
function queueSends(c: Socket, sizes: number[], seed: number, hashUpdate: (b: Uint8Array) => void): Promise<(Error | null)[]> {
  const r = rng(seed);
  const results: (Error | null | undefined)[] = sizes.map(() => undefined);
  let left = sizes.length;
  return new Promise((resolve) => {
    sizes.forEach((size, i) => {
      const buf = c.pool.tryAlloc(size);
      assert.ok(buf, 'a pool buffer');
      const at = Math.floor(r() * (SOURCE.length - size));
      buf.bytes.set(SOURCE.subarray(at, at + size));
      hashUpdate(buf.bytes);
      c.send(buf, (err) => {
        assert.equal(results[i], undefined, `send ${i}: callback ran twice`);
        results[i] = err ?? null;
        if (--left === 0) resolve(results as (Error | null)[]);
      });
    });
  });
}

test('queued send()s of one turn leave in fewer operations than sends, byte-exact, one callback each', { skip }, async () => {
  const guard = poolGuard();
  const { server, c, received } = await sinkPair();
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  const r = rng(7);
  // 200 sends from 1 byte to 64 KiB, a 0-byte one in the middle.
  const sizes = Array.from({ length: 200 }, (_, i) => (i === 100 ? 0 : 1 + Math.floor(r() * 65536)));
  const total = sizes.reduce((a, b) => a + b, 0);
  const before = stats();
  const ring0 = currentRing().stats();
  const results = await queueSends(c, sizes, 11, (b) => h.update(b));
  const ops = stats().sendOps - before.sendOps;
  const submitted = currentRing().stats().submitted - ring0.submitted;
  assert.deepEqual(results.filter((e) => e !== null), [], 'every send succeeded');
  assert.equal(c.bytesWritten, total);
  const done = closed(c);
  c.end();
  const got = await received();
  assert.equal(got.bytes, total);
  assert.equal(got.hash, h.digest('hex'));
  await done;
  if (uring) {
    assert.ok(currentRing().sendvMax > 1, 'this kernel has SENDV (SENDMSG, IORING_FEAT_SUBMIT_STABLE)');
    // Chains of 32 sends, 16 per SENDV: 2 ops a chain.
    assert.ok(ops <= Math.ceil(sizes.length / 16) + Math.ceil(sizes.length / 32), `${ops} send ops for ${sizes.length} sends`);
    assert.ok(submitted < sizes.length, `${submitted} SQEs for ${sizes.length} sends`);
  } else {
    assert.equal(currentRing().sendvMax, 0);
    assert.equal(ops, sizes.length, 'epoll: one send per buffer');
  }
  process.stderr.write(`# ${sizes.length} sends: ${ops} send ops, ${submitted} SQEs (${backend().mode})\n`);
  await new Promise<void>((r2) => server.close(() => r2()));
  await guard.check();
});

test('write()s and send()s interleaved, all zero-copy: never grouped into a SENDV, one op each, byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const { createHash } = await import('node:crypto');
  let got: Promise<{ hash: string; bytes: number }> | undefined;
  const server = net.createServer((s) => (got = nodeDrain(s)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // 'always' forces every send zero-copy, whatever its size (zc-policy's forced state): a SENDV
  // is a plain SENDMSG, so none of them may be grouped. (Writes of one turn may still merge into
  // one pool buffer before they are sent, so sends can be fewer than calls.)
  const c = connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', zeroCopy: 'always' });
  await new Promise<void>((r, j) => {
    c.once('connect', r);
    c.once('error', j);
  });
  const h = createHash('sha256');
  const r = rng(3);
  let total = 0;
  const before = stats();
  let n = 0;
  for (let round = 0; round < 8; round++) {
    for (let i = 0; i < 40; i++) {
      const size = i % 13 === 5 ? 60000 : 1 + Math.floor(r() * 20000);
      const at = Math.floor(r() * (SOURCE.length - size));
      const chunk = SOURCE.subarray(at, at + size);
      h.update(chunk);
      total += size;
      n++;
      if (i % 3 === 0) c.write(chunk);
      else {
        const buf = c.pool.tryAlloc(size)!;
        buf.bytes.set(chunk);
        c.send(buf);
      }
    }
    await new Promise((res) => setImmediate(res));
  }
  const done = closed(c);
  c.end();
  await until(() => got !== undefined, 'the accepted socket');
  const res = await got!;
  await done;
  assert.equal(res.bytes, total);
  assert.equal(res.hash, h.digest('hex'));
  assert.equal(c.bytesWritten, total);
  const ops = stats().sendOps - before.sendOps;
  const zc = c.stats().zeroCopy;
  await new Promise<void>((r2) => server.close(() => r2()));
  assert.ok(zc.zcSends > 0 && zc.plainSends === 0, `every send zero-copy: ${JSON.stringify(zc)}`);
  assert.ok(zc.zcSends <= n);
  assert.equal(ops, zc.zcSends, `${ops} send ops for ${zc.zcSends} zero-copy sends (${n} calls)`);
  await guard.check();
});

test('no free aux slot: the sends go one op each and stay byte-exact', { skip: skip || (!uring && 'io_uring only: the epoll ring has no SENDV') }, async () => {
  const guard = poolGuard();
  const { server, c, received } = await sinkPair();
  const ring = currentRing();
  const taken: number[] = [];
  for (let off = ring.allocAux(); off >= 0; off = ring.allocAux()) taken.push(off);
  try {
    const { createHash } = await import('node:crypto');
    const h = createHash('sha256');
    const sizes = Array.from({ length: 40 }, (_, i) => 1000 + i * 777);
    const before = stats();
    const results = await queueSends(c, sizes, 5, (b) => h.update(b));
    assert.deepEqual(results.filter((e) => e !== null), []);
    assert.equal(stats().sendOps - before.sendOps, sizes.length, 'one op per send');
    const done = closed(c);
    c.end();
    const got = await received();
    assert.equal(got.bytes, sizes.reduce((a, b) => a + b, 0));
    assert.equal(got.hash, h.digest('hex'));
    await done;
  } finally {
    for (const off of taken) ring.freeAux(off);
  }
  await new Promise<void>((r2) => server.close(() => r2()));
  await guard.check();
});

test('peer reset during queued runs: one error, the sends that completed are a prefix, every callback once, every buffer back', { skip }, async () => {
  const guard = poolGuard();
  let peerBytes = 0;
  const { server, c } = await sinkPair((s) => {
    s.on('data', (d: Buffer) => {
      peerBytes += d.length;
      if (peerBytes > 1 << 20) s.resetAndDestroy();
    });
  });
  const errors: Error[] = [];
  c.on('error', (e) => errors.push(e));
  const done = closed(c);
  // 128 x 64 KiB queued at once: 8 MiB, far more than the socket buffers take.
  const sizes = Array.from({ length: 128 }, () => 65536);
  const results = await queueSends(c, sizes, 9, () => {});
  await done;
  assert.equal(errors.length, 1, `one error, got ${errors.map((e) => (e as { code?: string }).code)}`);
  assert.ok(['ECONNRESET', 'EPIPE'].includes((errors[0] as { code?: string }).code!), String(errors[0]));
  const firstFailed = results.findIndex((e) => e !== null);
  assert.ok(firstFailed >= 0, 'the reset failed some sends');
  assert.ok(results.slice(firstFailed).every((e) => e !== null), 'after the first failed send, all failed');
  // Bytes of the completed sends, plus part of the first failed one at most.
  const okBytes = firstFailed * 65536;
  assert.ok(c.bytesWritten >= okBytes && c.bytesWritten <= okBytes + 65536, `bytesWritten ${c.bytesWritten}, ${firstFailed} sends completed`);
  await new Promise<void>((r2) => server.close(() => r2()));
  await guard.check();
});

/**
 * A child with MAIO_SENDV set (read once, when the thread's ring is made): it
 * queues 32 sends of 4 KiB in one turn to a node:net sink of its own and
 * prints the operations they took (maio.stats().sendOps), the ring's
 * sendvMax, the bytes the sink got, or the error making the ring threw.
 */
function sendvChild(value: string): { ok: boolean; ops?: number; sendvMax?: number; bytes?: number; code?: string; message?: string } {
  const dist = path.join(__dirname, '..', '..', 'src');
  const code = `
    const net = require('node:net');
    const { connect, stats } = require(${JSON.stringify(path.join(dist, 'index.js'))});
    const { currentRing } = require(${JSON.stringify(path.join(dist, 'ring', 'current.js'))});
    let ring;
    try { ring = currentRing(); } catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, message: e.message })); process.exit(0); }
    let bytes = 0;
    const server = net.createServer((s) => { s.on('data', (d) => (bytes += d.length)); s.on('end', () => s.end()); });
    server.listen(0, '127.0.0.1', () => {
      const c = connect({ port: server.address().port, host: '127.0.0.1', zeroCopy: 'never' }, () => {
        const before = stats().sendOps;
        for (let i = 0; i < 32; i++) { const b = c.pool.alloc(4096); b.bytes.fill(i); c.send(b); }
        c.end();
        c.on('close', () => {
          const ops = stats().sendOps - before;
          const wait = () => (bytes < 32 * 4096 ? setTimeout(wait, 5) : (console.log(JSON.stringify({ ok: true, ops, sendvMax: ring.sendvMax, bytes })), server.close()));
          wait();
        });
      });
    });`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, MAIO_SENDV: value }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `child (MAIO_SENDV=${value}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('MAIO_SENDV=0: one operation per queued send (with MAIO_SENDV=1: fewer); a bad value is a typed error', { skip }, () => {
  const off = sendvChild('0');
  assert.equal(off.ok, true, off.message);
  assert.equal(off.bytes, 32 * 4096, 'every byte arrived');
  assert.equal(off.sendvMax, 0, 'the ring takes no SENDV');
  assert.equal(off.ops, 32, 'one operation per send');
  if (uring) {
    // The contrast: with SENDV on, the same 32 sends leave in runs of up to 16.
    const on = sendvChild('1');
    assert.equal(on.ok, true, on.message);
    assert.equal(on.bytes, 32 * 4096);
    assert.ok(on.sendvMax! > 1, `sendvMax ${on.sendvMax}`);
    assert.ok(on.ops! < 32, `SENDV on: ${on.ops} operations for 32 sends`);
  }
  // The epoll ring does not read MAIO_SENDV (it has no SENDV); io_uring refuses a bad value.
  if (uring) {
    const bad = sendvChild('2');
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 'ERR_MAIO_OUT_OF_RANGE');
    assert.match(bad.message!, /MAIO_SENDV must be 0 or 1/);
  }
});
