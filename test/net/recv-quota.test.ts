// The read quota against the shared receive group: a connection holds at most
// its quota plus one receive buffer (the multishot recv carries the bytes left
// under the quota as a total limit), it resumes when the application gives
// buffers back, and it never misses data or the peer's FIN, including after a
// burst into a small group (issue 6). Real sockets on both backends.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { createHash } from 'node:crypto';
import { createPool, createServer, type IoBuffer, type Socket } from '../../src/index';
import { netSkip as skip, until } from './helpers';

const KiB = 1024;

function smallPool() {
  return createPool({ size: 4 << 20, lock: false, classes: [{ size: 2 * KiB, count: 1024 }] });
}

test('a connection that does not release holds at most readQuota + one buffer, then gets every byte and the FIN', { skip, timeout: 60000 }, async () => {
  const pool = smallPool();
  const quota = 16 * KiB;
  const bufSize = 2 * KiB;
  const total = 1 << 20;
  let server!: Socket;
  const kept: IoBuffer[] = [];
  let hold = true;
  let maxHeld = 0;
  let got = 0;
  const hash = createHash('sha256');
  let ended = false;
  const srv = createServer({ pool, readQuota: quota, readBufferSize: bufSize, readBuffersMax: 512 }, (s) => {
    server = s;
    s.on('error', () => {});
    s.on('data', (buf) => {
      got += buf.length;
      hash.update(buf.bytes);
      if (hold) {
        buf.retain();
        kept.push(buf);
      }
      maxHeld = Math.max(maxHeld, s.stats().receiveBytesHeld);
    });
    s.on('end', () => (ended = true));
  });
  const { port } = await srv.listenAsync(0, '127.0.0.1');
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  await once(c, 'connect');
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
  c.end(data);
  // The server stops at its quota; the rest waits in the kernel (and the client's send buffer).
  await until(() => server !== undefined && server.stats().readBlocked, 'the server reached its read quota');
  // Let whatever a late multishot would still deliver arrive.
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(maxHeld <= quota + bufSize, `held ${maxHeld} B, at most quota ${quota} + one buffer ${bufSize}`);
  assert.ok(got < total, 'the quota stopped reading before everything came');
  // Give the buffers back and read the rest without holding: nothing missing, FIN seen.
  hold = false;
  for (const b of kept.splice(0)) b.release();
  await until(() => ended, 'the server saw the FIN');
  assert.equal(got, total);
  assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
  assert.ok(maxHeld <= quota + bufSize, `held ${maxHeld} B over the whole run`);
  c.destroy();
  await until(() => srv.connections === 0, 'server side closed');
  const closed = once(srv, 'close');
  srv.close();
  await closed;
  pool.close();
});

test('the FIN after a 256 KiB burst into a 64-buffer group is never missed (20 rounds)', { skip, timeout: 120000 }, async () => {
  const pool = smallPool();
  let bytes = 0;
  let ends = 0;
  const srv = createServer({ pool, readBufferSize: 2 * KiB, readBuffersMax: 64 }, (s) => {
    s.on('error', () => {});
    s.on('data', (buf) => (bytes += buf.length));
    s.on('end', () => ends++);
  });
  const { port } = await srv.listenAsync(0, '127.0.0.1');
  const burst = Buffer.alloc(256 * KiB, 0xa5);
  for (let round = 1; round <= 20; round++) {
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    // Listeners before anything can happen: the server's FIN may come at once.
    const closed = once(c, 'close');
    c.resume();
    await once(c, 'connect');
    c.end(burst);
    await until(() => ends === round, `round ${round}: the server saw the FIN (bytes ${bytes})`, 20000);
    assert.equal(bytes, round * burst.length);
    await closed;
  }
  await until(() => srv.connections === 0, 'server side closed');
  const closed = once(srv, 'close');
  srv.close();
  await closed;
});
