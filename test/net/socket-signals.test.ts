/**
 * The socket's internal signals (kOnSendsDrained, kOnReceiveStopped) that
 * sendFile and forward's switch to splice wait on instead of polling, and
 * stats() reading without side effects (it never makes the zero-copy policy).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { kOnReceiveStopped, kOnSendsDrained } from '../../src/core/symbols';
import { createServer, connect } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { zeroCopyPoliciesMade } from '../../src/net/zc-policy';
import { bounded, closed, countImmediates, netSkip, until } from './helpers';

const skip = netSkip;

/** A maio client connected to a maio server; `server` is the accepted side. */
async function pair(opts: Record<string, unknown> = {}): Promise<{ client: Socket; server: Socket; close(): Promise<void> }> {
  const accepted: Socket[] = [];
  const srv = createServer((s) => accepted.push(s));
  const { port } = await srv.listenAsync(0, '127.0.0.1');
  const client = connect({ port, host: '127.0.0.1', ...opts });
  await once(client, 'connect');
  await until(() => accepted.length === 1, 'the accept');
  const server = accepted[0];
  // listened for now: a socket may close by itself (end in both directions) before close()
  const done = Promise.all([closed(client), closed(server)]);
  return {
    client,
    server,
    async close() {
      client.destroy();
      server.destroy();
      await bounded(done, 'both sockets closed');
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

test('stats() makes no zero-copy policy: it says what the policy would start as, and small sends are counted', { skip }, async () => {
  const p = await pair();
  const made = zeroCopyPoliciesMade();
  const z = p.client.stats().zeroCopy;
  p.client.stats();
  assert.equal(zeroCopyPoliciesMade(), made, 'stats() made no policy');
  // 'auto' with a peer on this host starts plain, saying why (what the policy would be)
  assert.equal(z.state, 'plain');
  assert.match(z.reason, /on this host/);
  assert.equal(z.plainSends, 0);
  p.client.write('small');
  await until(() => p.server.bytesRead === 5, 'the small write at the server');
  const after = p.client.stats().zeroCopy;
  assert.equal(zeroCopyPoliciesMade(), made, 'a small send makes no policy either');
  assert.equal(after.plainSends, 1);
  assert.equal(after.plainBytes, 5);
  // the first send that may go zero-copy makes it, and it starts where stats() said
  const buf = p.client.pool.tryAlloc(65536)!;
  buf.setLength(65536);
  p.client.send(buf);
  await until(() => p.server.bytesRead === 5 + 65536, 'the large send at the server');
  assert.equal(zeroCopyPoliciesMade(), made + 1);
  const real = p.client.stats().zeroCopy;
  assert.equal(real.state, z.state);
  assert.equal(real.reason, z.reason);
  assert.equal(real.plainSends, 2);
  await p.close();
});

test("stats() of a socket with zeroCopy 'never' or 'always' names the forced state without making a policy", { skip }, async () => {
  for (const [mode, state] of [['never', 'forced-plain'], ['always', 'forced-zero-copy']] as const) {
    const p = await pair({ zeroCopy: mode });
    const made = zeroCopyPoliciesMade();
    assert.equal(p.client.stats().zeroCopy.state, state);
    assert.equal(zeroCopyPoliciesMade(), made);
    await p.close();
  }
});

test('kOnSendsDrained: at once when nothing is queued; after queued bytes completed; at destroy()', { skip }, async () => {
  const p = await pair();
  let now = false;
  p.client[kOnSendsDrained](() => (now = true));
  assert.ok(now, 'an idle socket is drained: called at once');

  let drained = false;
  p.client.write(Buffer.alloc(3 * 65536, 7));
  p.client[kOnSendsDrained](() => {
    drained = true;
    assert.equal(p.client.writableLength, 0);
    assert.equal(p.client.stats().sendsInFlight, 0);
  });
  assert.equal(drained, false, 'queued bytes: not yet');
  await until(() => drained, 'the drained signal');
  await until(() => p.server.bytesRead === 3 * 65536, 'the bytes at the server');

  // a peer that does not read: the sends stay queued until destroy() gives up on them
  p.server.pause();
  const big = Buffer.alloc(8 << 20, 1);
  p.client.write(big);
  let atDestroy = false;
  p.client[kOnSendsDrained](() => (atDestroy = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(atDestroy, false, 'a stuck queue is not drained');
  p.client.on('error', () => {});
  p.client.destroy();
  assert.ok(atDestroy, 'destroy() ends the wait');
  await p.close();
});

test('kOnReceiveStopped: after pause() the recv ends and says how many buffers wait; after the FIN, at once with ended', { skip }, async () => {
  const p = await pair();
  // No 'data' listener: what arrives waits in the socket.
  p.client.write(Buffer.alloc(1000, 1));
  await until(() => p.server.bytesRead === 1000, 'the bytes at the server');
  let got: [number, boolean] | null = null;
  p.server[kOnReceiveStopped]((waiting, ended) => (got = [waiting, ended]));
  assert.equal(got, null, 'the multishot recv is still armed');
  p.server.pause();
  await until(() => got !== null, 'the recv to end after pause()');
  assert.deepEqual(got, [1, false]);
  p.server.resume();
  const data = once(p.server, 'data');
  await data;

  // The FIN ends the recv by itself; a wait after it is answered at once.
  p.client.end();
  await until(() => p.server.readableEnded, "the server's 'end'");
  let late: [number, boolean] | null = null;
  p.server[kOnReceiveStopped]((waiting, ended) => (late = [waiting, ended]));
  assert.deepEqual(late, [0, true]);
  await p.close();
});

test('socket.sendFile() after a large write waits for the queue without setImmediate polling', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-signals-'));
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, Buffer.alloc(256 * 1024, 2));
  let got = 0;
  const srv = net.createServer((s) => s.on('data', (b) => (got += b.length)));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1' });
  await once(c, 'connect');
  const [sent, immediates] = await countImmediates(async () => {
    c.write(Buffer.alloc(4 << 20, 3));
    return bounded(c.sendFile(file), 'sendFile()');
  });
  assert.equal(sent, 256 * 1024);
  assert.equal(immediates, 0, 'no setImmediate while waiting for the queue');
  await until(() => got === (4 << 20) + 256 * 1024, 'every byte at the peer');
  const done = closed(c);
  c.destroy();
  await done;
  srv.close();
  fs.rmSync(dir, { recursive: true });
});
