// Load: slow clients next to healthy ones. Clients that never read and clients
// that trickle one byte per interval must not exhaust the pool (per-connection
// read quota and write high-water mark) nor stall healthy connections, whose
// bytes are counted; the server's idleTimeout / idleMinBytes close them.
// Bounded for CI: a few hundred connections, a few seconds. No timing
// assertions: progress is asserted as bytes, limits as generous waits.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, defaultPool, type Server, type Socket } from '../../src/index';
import { recvLimitSupported } from '../../src/net/socket';
import { RecvGroup } from '../../src/net/recv-group';
import { netSkip as skip, poolGuard, until } from '../net/helpers';

const KiB = 1024;
const IDLE_MS = 1000;

/** Samples the pool's use until stop(); the peak is what the hostile clients could take. */
function poolSampler() {
  const pool = defaultPool();
  let peak = 0;
  let failed0 = pool.stats().failedAllocs;
  const t = setInterval(() => {
    const s = pool.stats();
    if (s.bytesInUse > peak) peak = s.bytesInUse;
  }, 10);
  return {
    stop() {
      clearInterval(t);
      const s = pool.stats();
      return { peak: Math.max(peak, s.bytesInUse), capacity: s.capacity, failedAllocs: s.failedAllocs - failed0 };
    },
  };
}

async function stop(server: Server): Promise<void> {
  const closed = once(server, 'close');
  server.close();
  await closed;
}

function connectMany(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => {});
      await once(c, 'connect');
      return c;
    }),
  );
}


test('echo server: 100 clients that never read and 100 that trickle, next to 50 healthy ones', { skip, timeout: 60000 }, async (t) => {
  const guard = poolGuard();
  const sampler = poolSampler();
  const readQuota = 16 * KiB;
  // Default receive buffers (64 KiB), the default group size (256) and the kernel's own
  // receive buffer sizing: each multishot recv carries the bytes left under the quota as a
  // total limit, so a connection holds at most readQuota + one receive buffer, and 100
  // non-readers hold at most 100 buffers of the shared group.
  const opts = {
    idleTimeout: IDLE_MS,
    idleMinBytes: 256,
    readQuota,
    writableHighWaterMark: 64 * KiB,
    sendBufferSize: 64 * KiB,
  };
  const bufferSize = Math.min(64 * KiB, defaultPool().maxAllocSize);
  const PER_CONN_BOUND = readQuota + bufferSize;
  const serverSockets: Socket[] = [];
  let maxHeld = 0;
  const heldSampler = setInterval(() => {
    for (const s of serverSockets) if (!s.destroyed) maxHeld = Math.max(maxHeld, s.stats().receiveBytesHeld);
  }, 20);
  const server = createServer(opts, (s: Socket) => {
    serverSockets.push(s);
    s.on('error', () => {});
    // A well-behaved echo: send back what came, pause above the high-water mark.
    s.on('data', (buf) => {
      if (!s.send(buf)) {
        s.pause();
        s.once('drain', () => s.resume());
      }
    });
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  let groupPeak = 0;
  const groupSampler = setInterval(() => {
    for (const g of RecvGroup.all()) if (g.bufferSize === bufferSize) groupPeak = Math.max(groupPeak, g.withApplication);
  }, 20);

  const healthy = await connectMany(port, 50);
  const echoed = healthy.map(() => 0);
  const sent = healthy.map(() => 0);
  healthy.forEach((c, i) => c.on('data', (d: Buffer) => (echoed[i] += d.length)));
  let running = true;
  const msg = Buffer.alloc(1024, 0x61);
  // Each healthy client keeps 4 KiB in flight: a request-response stream.
  const pumps = healthy.map(async (c, i) => {
    while (running && !c.destroyed) {
      if (sent[i] - echoed[i] < 4 * KiB) {
        c.write(msg);
        sent[i] += msg.length;
      } else await sleep(1);
    }
  });

  // Non-readers send 4 MiB each and never read: the echo stalls in the kernel's buffers,
  // the server stops reading at its quota, then nothing moves.
  const silent = await connectMany(port, 100);
  const big = Buffer.alloc(4 << 20, 0x62);
  for (const c of silent) {
    c.pause();
    c.write(big);
  }
  // Trickle clients: one byte every 50 ms (20 B/s), below idleMinBytes per idleTimeout.
  const trickle = await connectMany(port, 100);
  for (const c of trickle) c.on('data', () => {});
  const trickleTimer = setInterval(() => {
    for (const c of trickle) if (!c.destroyed && c.writable) c.write('.');
  }, 50);

  await until(() => server.connections >= 250 || server.idleClosed > 0, 'all 250 accepted', 20000);
  // Healthy traffic while the hostile clients are in place: count bytes over a window.
  const before = echoed.slice();
  await sleep(300);
  const during = echoed.map((e, i) => e - before[i]);
  assert.ok(during.every((d) => d > 0), `every healthy client got echoes while the hostile ones held on (${during.filter((d) => d === 0).length} stalled)`);

  // Counted on the server's side: a paused client whose 4 MiB already sit in kernel buffers has
  // nothing to write and does not read, so it may never notice the close.
  await until(() => server.idleClosed >= 200 && server.connections === 50, 'non-readers and trickles closed by the idle timeout', 30000);
  clearInterval(trickleTimer);
  assert.equal(server.idleClosed, 200, 'exactly the 200 hostile connections were closed as idle');
  // Healthy ones still flow after the purge.
  const after = echoed.slice();
  await sleep(200);
  assert.ok(echoed.every((e, i) => e > after[i]), 'healthy clients still flowing');
  assert.ok(healthy.every((c) => !c.destroyed), 'no healthy client was closed');

  running = false;
  await Promise.all(pumps);
  await until(() => echoed.every((e, i) => e === sent[i]), 'every healthy byte echoed');
  const total = echoed.reduce((a, b) => a + b, 0);
  assert.ok(total > 0);

  const s = sampler.stop();
  clearInterval(heldSampler);
  clearInterval(groupSampler);
  t.diagnostic(`max held by one connection ${maxHeld} B; receive group peak ${groupPeak} buffers with the application`);
  // Per-connection quotas bound what one connection holds, so the pool is never exhausted.
  if (recvLimitSupported()) {
    assert.ok(maxHeld <= PER_CONN_BOUND, `a connection held at most ${maxHeld} B of receive buffers (bound: quota + one buffer, ${PER_CONN_BOUND})`);
  } else {
    t.diagnostic('kernel before 6.17: no multishot recv byte limit, the quota + one buffer bound is not asserted');
  }
  assert.ok(s.peak < s.capacity, `the pool was never exhausted (peak ${s.peak} of ${s.capacity})`);
  assert.equal(s.failedAllocs, 0, 'no allocation failed');

  for (const c of healthy) c.end();
  for (const c of [...silent, ...trickle]) c.destroy();
  await until(() => server.connections === 0, 'every server-side connection closed', 20000);
  await stop(server);
  await guard.check();
});

test('push server: 100 clients that never read cannot take the pool from 20 that do; they are closed as idle', { skip, timeout: 60000 }, async () => {
  const guard = poolGuard();
  const sampler = poolSampler();
  const hwm = 64 * KiB;
  const server = createServer({ idleTimeout: IDLE_MS, writableHighWaterMark: hwm, writeBufferSize: 16 * KiB, sendBufferSize: 64 * KiB }, (s: Socket) => {
    s.on('error', () => {});
    const chunk = Buffer.alloc(16 * KiB, 0x63);
    // Writes as fast as the peer takes them, honouring backpressure.
    const pump = (): void => {
      while (!s.destroyed && s.write(chunk));
      if (!s.destroyed) s.once('drain', pump);
    };
    pump();
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const readers = await connectMany(port, 20);
  const got = readers.map(() => 0);
  readers.forEach((c, i) => c.on('data', (d: Buffer) => (got[i] += d.length)));
  const silent = await connectMany(port, 100);
  for (const c of silent) c.pause();
  await until(() => server.connections >= 120 || server.idleClosed > 0, '120 accepted', 20000);

  const before = got.slice();
  await sleep(300);
  assert.ok(got.every((g, i) => g > before[i]), 'every reader kept receiving while 100 peers never read');

  // A paused client does not read its FIN: count on the server's side.
  await until(() => server.idleClosed === 100 && server.connections === 20, 'non-readers closed by the idle timeout', 30000);
  const mid = got.slice();
  await sleep(200);
  assert.ok(got.every((g, i) => g > mid[i]), 'readers still receiving');
  assert.ok(readers.every((c) => !c.destroyed), 'no reader was closed: bytes kept moving');

  const s = sampler.stop();
  // A connection holds at most its high-water mark plus one write buffer of queued writes.
  const bound = 120 * (hwm + 2 * 16 * KiB) + (4 << 20);
  assert.ok(s.peak <= bound, `pool peak ${s.peak} within ${bound}`);
  assert.ok(s.peak < s.capacity);
  assert.equal(s.failedAllocs, 0);

  for (const c of readers) c.destroy();
  for (const c of silent) c.destroy();
  await until(() => server.connections === 0, 'every server-side connection closed', 20000);
  await stop(server);
  await guard.check();
});
