// Small receives: a socket of small messages moves from the 64 KiB receive group to the pool's
// smallest class when the big group runs dry (many connections, each holding a buffer from its
// recv to its send's completion), and back when a small buffer fills. Without it 100 echoing
// connections on a 28-buffer 64 KiB group ended their recv with -ENOBUFS several times per
// message. Real sockets on both backends.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { createHash } from 'node:crypto';
import { createPool, createServer, stats, type IoBuffer, type Socket } from '../../src/index';
import { netSkip as skip, until } from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;

/** 8 MiB, default classes: 38 buffers of 64 KiB (a group takes 28), 1,024 of 2 KiB. */
function smallPool() {
  return createPool({ size: 8 * MiB, lock: false });
}

function echoServer(pool: ReturnType<typeof smallPool>, capacities: Map<number, number>) {
  const srv = createServer({ pool }, (s: Socket) => {
    s.on('error', () => {});
    s.on('data', (buf: IoBuffer) => {
      capacities.set(buf.capacity, (capacities.get(buf.capacity) ?? 0) + 1);
      if (!s.send(buf)) s.pause();
    });
    s.on('drain', () => s.resume());
  });
  return srv;
}

/** `conns` node:net clients, each `rounds` round trips of a 64-byte message; checks every answer. */
async function pingPong(port: number, conns: number, rounds: number): Promise<net.Socket[]> {
  const clients: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: conns }, async (_, i) => {
      const c = net.connect(port, '127.0.0.1');
      clients.push(c);
      await once(c, 'connect');
      for (let r = 0; r < rounds; r++) {
        const msg = Buffer.alloc(64, (i + r) & 0xff);
        let got = Buffer.alloc(0);
        const answered = new Promise<void>((resolve) => {
          const onData = (d: Buffer) => {
            got = Buffer.concat([got, d]);
            if (got.length >= 64) {
              c.off('data', onData);
              resolve();
            }
          };
          c.on('data', onData);
        });
        c.write(msg);
        await answered;
        assert.deepEqual(got, msg);
      }
    }),
  );
  return clients;
}

test('100 connections of 64-byte messages move to the small group: few -ENOBUFS, every echo exact', { skip, timeout: 60000 }, async () => {
  const pool = smallPool();
  const capacities = new Map<number, number>();
  const srv = echoServer(pool, capacities);
  const { port } = await srv.listenAsync(0, '127.0.0.1');
  const conns = 100;
  const rounds = 30;
  const clients = await pingPong(port, conns, rounds);
  const noBuffers = stats().recvGroups.reduce((a, g) => a + g.noBufferEvents, 0);
  assert.ok((capacities.get(2 * KiB) ?? 0) > 0, `some messages came in 2 KiB buffers: ${JSON.stringify([...capacities])}`);
  // The small group grows by one buffer per -ENOBUFS up to what the connections hold; the 64 KiB
  // group alone ran dry at every turn (several -ENOBUFS per message).
  assert.ok(noBuffers < (conns * rounds) / 4, `${noBuffers} -ENOBUFS ends for ${conns * rounds} messages`);
  for (const c of clients) c.destroy();
  await until(() => srv.connections === 0, 'server side closed');
  const closed = once(srv, 'close');
  srv.close();
  await closed;
  pool.close();
});

test('a re-arm after a small message takes the small group; bulk data after it goes back to 64 KiB buffers, every byte in order', { skip, timeout: 60000 }, async () => {
  const pool = smallPool();
  const seen: number[] = [];
  let received = 0;
  const hash = createHash('sha256');
  let server!: Socket;
  let kept: IoBuffer | null = null;
  const srv = createServer({ pool }, (s: Socket) => {
    server = s;
    s.on('error', () => {});
    s.on('data', (buf: IoBuffer) => {
      seen.push(buf.capacity);
      received += buf.length;
      hash.update(buf.bytes);
      // The first message: kept across the switch (its release must still reach the socket's
      // count), and pause and resume, so that the recv ends and is armed again.
      if (seen.length === 1) {
        kept = buf.retain();
        s.pause();
        setTimeout(() => s.resume(), 20);
      }
    });
  });
  const { port } = await srv.listenAsync(0, '127.0.0.1');
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  await once(c, 'connect');
  const first = Buffer.alloc(64, 1);
  c.write(first);
  await until(() => seen.length === 1, 'the first message');
  assert.equal(seen[0], 64 * KiB, 'a new socket receives in 64 KiB buffers');
  await new Promise((r) => setTimeout(r, 50));
  const second = Buffer.alloc(64, 2);
  c.write(second);
  await until(() => seen.length === 2, 'the second message');
  assert.equal(seen[1], 2 * KiB, 'armed again after a small message: the small group');
  assert.equal(server.stats().receiveBytesHeld, 64 * KiB, 'the kept 64 KiB buffer counts');
  kept!.release();
  assert.equal(server.stats().receiveBytesHeld, 0, 'its release reached the socket through the group it came from');
  const total = 8 * MiB;
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i++) data[i] = (i * 13 + (i >> 12)) & 0xff;
  c.write(data);
  await until(() => received >= total + 128, `${total} bytes received (got ${received - 128})`);
  assert.equal(received, total + 128);
  assert.equal(hash.digest('hex'), createHash('sha256').update(first).update(second).update(data).digest('hex'));
  // A filled 2 KiB buffer stops the small recv; the re-arm takes the 64 KiB group.
  const bulk = seen.slice(2);
  const big = bulk.filter((x) => x === 64 * KiB).length;
  assert.ok(big > 0, `bulk data came in 64 KiB buffers again (${bulk.length} buffers, ${big} of 64 KiB)`);
  assert.ok(big * 64 * KiB >= total / 2, `most bulk bytes came in 64 KiB buffers (${bulk.length - big} of 2 KiB)`);
  assert.equal(server.stats().receiveBuffersHeld, 0);
  c.destroy();
  await until(() => srv.connections === 0, 'server side closed');
  // Both groups were the socket's alone: closing it dissolved them.
  assert.equal(stats().recvGroups.filter((g) => g.sockets > 0).length, 0, JSON.stringify(stats().recvGroups));
  const closed = once(srv, 'close');
  srv.close();
  await closed;
  pool.close();
});
