/**
 * Checksummed (sha256) transfers over loopback: each direction and both at
 * once, through send(), write() and a random mix, with chunks of 1 byte to
 * 4 MiB. MAIO_TEST_BYTES sets the bytes per transfer (default 64 MiB).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createServer, connect, type Server } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { TEST_BYTES, closed, maioDrain, maioPump, poolGuard, netSkip, type SendMode } from './helpers';

const skip = netSkip;

async function pair(): Promise<{ server: Server; client: Socket; peer: Socket }> {
  let peer: Socket | undefined;
  const server = createServer({ allowHalfOpen: true }, (s) => (peer = s));
  const addr = await server.listenAsync(0, '127.0.0.1');
  const client = connect({ port: addr.port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((r, j) => {
    client.once('connect', r);
    client.once('error', j);
  });
  while (!peer) await new Promise((r) => setTimeout(r, 1));
  return { server, client, peer };
}

for (const mode of ['send', 'write', 'mixed'] as SendMode[]) {
  for (const dir of ['client to server', 'server to client'] as const) {
    test(`${TEST_BYTES} bytes ${dir} through ${mode}(): sha256 matches`, { skip }, async () => {
      const guard = poolGuard();
      const { server, client, peer } = await pair();
      const bothClosed = Promise.all([closed(client), closed(peer)]);
      const [from, to] = dir === 'client to server' ? [client, peer] : [peer, client];
      const got = maioDrain(to);
      const t0 = performance.now();
      const sent = await maioPump(from, TEST_BYTES, mode, mode.length * 7 + dir.length);
      const r = await got;
      const secs = (performance.now() - t0) / 1000;
      assert.equal(r.bytes, TEST_BYTES);
      assert.equal(r.hash, sent);
      assert.equal(from.bytesWritten, TEST_BYTES);
      assert.equal(to.bytesRead, TEST_BYTES);
      process.stderr.write(`# ${mode} ${dir}: ${((TEST_BYTES * 8) / secs / 1e9).toFixed(2)} Gbit/s\n`);
      to.end();
      await bothClosed;
      await new Promise<void>((r) => server.close(() => r()));
      await guard.check();
    });
  }
}

test(`${TEST_BYTES} bytes both directions at once, mixed: both sha256 match`, { skip }, async () => {
  const guard = poolGuard();
  const { server, client, peer } = await pair();
  const bothClosed = Promise.all([closed(client), closed(peer)]);
  const gotAtServer = maioDrain(peer);
  const gotAtClient = maioDrain(client);
  const [up, down] = await Promise.all([maioPump(client, TEST_BYTES, 'mixed', 1), maioPump(peer, TEST_BYTES, 'mixed', 2)]);
  const [a, b] = await Promise.all([gotAtServer, gotAtClient]);
  assert.equal(a.bytes, TEST_BYTES);
  assert.equal(b.bytes, TEST_BYTES);
  assert.equal(a.hash, up);
  assert.equal(b.hash, down);
  await bothClosed;
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});
