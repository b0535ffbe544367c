/** fanOut(): one pool buffer to many sockets (counted lends), and socket.sendFile(); on io_uring and on epoll. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { BufferLentError, InvalidArgumentError } from '../../src/core/errors';
import { connect } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { defaultPool } from '../../src/pool/pool';
import { fanOut } from '../../src/paths/fan-out';
import { fileDigest, listen, randomFile, receive, tmpDir, until } from './helpers';
// fanOut() and socket.sendFile()'s default (sendfile(2)) mode need sockets only: both backends.
import { netSkip as skip } from '../net/helpers';

async function clients(n: number): Promise<{ socks: Socket[]; peers: net.Socket[]; close(): void }> {
  const peers: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => peers.push(s));
  const port = await listen(server);
  const socks: Socket[] = [];
  for (let i = 0; i < n; i++) socks.push(connect({ port, host: '127.0.0.1' }));
  await Promise.all(socks.map((s) => once(s, 'connect')));
  await until(() => peers.length === n, 'accepts');
  return {
    socks,
    peers,
    close() {
      for (const s of socks) s.destroy();
      for (const p of peers) p.destroy();
      server.close();
    },
  };
}

function poolState() {
  const s = defaultPool().stats();
  return { inUse: s.inUse, lent: s.lent };
}

test('one buffer to 100 sockets: each receives exactly its bytes; lent meanwhile; back in the pool after the last send', { skip }, async () => {
  const c = await clients(100);
  const before = poolState();
  const pool = defaultPool();
  const payload = randomBytes(60000);
  const buf = pool.alloc(payload.length);
  buf.bytes.set(payload);
  const got = c.peers.map((p) => receive(p));
  const r = fanOut(buf, c.socks);
  assert.equal(r.queued, 100);
  assert.ok(buf.lent, 'lent while the sends hold it');
  assert.throws(() => buf.bytes, BufferLentError);
  assert.throws(() => buf.release(), BufferLentError);
  await r.done;
  await until(() => buf.released, 'the buffer to go back to the pool');
  for (const s of c.socks) s.end();
  const digest = createHash('sha256').update(payload).digest('hex');
  for (const g of await Promise.all(got)) {
    assert.equal(g.bytes, payload.length);
    assert.equal(g.digest, digest);
  }
  c.close();
  await until(() => {
    const s = poolState();
    return s.inUse <= before.inUse && s.lent <= before.lent;
  }, 'pool back');
});

test('fanOut with release: false gives the buffer back OWNED; bad arguments are typed errors', { skip }, async () => {
  const c = await clients(3);
  const buf = defaultPool().alloc(100);
  buf.bytes.fill(42);
  const r = fanOut(buf, c.socks, { release: false });
  await r.done;
  await until(() => !buf.lent, 'all sends back');
  assert.equal(buf.released, false);
  assert.equal(buf.bytes[99], 42, 'owned again: bytes readable');
  buf.release();
  assert.throws(() => fanOut({} as any, c.socks), InvalidArgumentError);
  const b2 = defaultPool().alloc(10);
  assert.throws(() => fanOut(b2, [{} as any]), InvalidArgumentError);
  assert.equal(b2.lent, false, 'nothing lent after a rejected call');
  b2.release();
  c.close();
});

test('socket.sendFile(): 0 bytes, 1 byte, unaligned range, 16 MiB; sha256 and progress', { skip }, async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'f');
    randomFile(file, 16 << 20);
    const cases = [
      { offset: 0, length: 0 },
      { offset: 5, length: 1 },
      { offset: 4097, length: 1_000_003 },
      { offset: 0, length: 16 << 20 },
    ];
    for (const range of cases) {
      const c = await clients(1);
      const [s] = c.socks;
      const atPeer = receive(c.peers[0]!);
      let progress = 0;
      s!.on('sendFileProgress', (sent: number, total: number) => {
        assert.ok(sent >= progress && sent <= total);
        progress = sent;
      });
      s!.write('head'); // queued before: must arrive first
      const sent = await s!.sendFile(file, range);
      assert.equal(sent, range.length);
      s!.end();
      const got = await atPeer;
      assert.equal(got.bytes, 4 + range.length);
      const h = createHash('sha256').update('head');
      if (range.length > 0) {
        const fd = fs.openSync(file, 'r');
        const b = Buffer.alloc(range.length);
        fs.readSync(fd, b, 0, range.length, range.offset);
        fs.closeSync(fd);
        h.update(b);
      }
      assert.equal(got.digest, h.digest('hex'), `range ${JSON.stringify(range)}`);
      if (range.length > 1 << 20) assert.ok(progress > 0);
      c.close();
    }
    assert.ok(fileDigest(file, 0, 16) !== '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
