/** maio against node:net, byte-exact, both ways round; and 1,000 connections echoing at once. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { createServer, connect } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { TEST_BYTES, closed, maioDrain, maioPump, nodeDrain, nodePump, poolGuard, netSkip, until } from './helpers';

const skip = netSkip;
const BYTES = Math.min(TEST_BYTES, 64 << 20);

test('maio client -> node:net server and back (node echoes), byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const server = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const done = closed(client);
  await once(client, 'connect');
  const back = maioDrain(client);
  const sent = await maioPump(client, BYTES, 'mixed', 7);
  const got = await back;
  assert.equal(got.bytes, BYTES);
  assert.equal(got.hash, sent);
  await done;
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('node:net client -> maio server that sends every buffer back (send()), byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (buf) => {
      if (!s.send(buf)) s.pause();
    });
    s.on('drain', () => s.resume());
    s.on('end', () => s.end());
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(client, 'connect');
  const back = nodeDrain(client);
  const sent = await nodePump(client, BYTES, 9);
  const got = await back;
  assert.equal(got.bytes, BYTES);
  assert.equal(got.hash, sent);
  client.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('node:net server sends to a maio client; maio server receives from a node:net client (one direction each)', { skip }, async () => {
  const guard = poolGuard();
  let nodeSent: Promise<string> | undefined;
  const nserver = net.createServer((s) => {
    nodeSent = nodePump(s, BYTES, 11);
  });
  await new Promise<void>((r) => nserver.listen(0, '127.0.0.1', r));
  const client = connect({ port: (nserver.address() as net.AddressInfo).port, host: '127.0.0.1' });
  const got = await maioDrain(client);
  assert.equal(got.bytes, BYTES);
  assert.equal(got.hash, await nodeSent!);
  await new Promise<void>((r) => nserver.close(() => r()));

  let received: Promise<{ hash: string; bytes: number }> | undefined;
  const mserver = createServer((s) => {
    received = maioDrain(s);
  });
  const { port } = await mserver.listenAsync(0, '127.0.0.1');
  const nclient = net.connect(port, '127.0.0.1');
  await once(nclient, 'connect');
  const sent = await nodePump(nclient, BYTES, 13);
  await until(() => received !== undefined, 'the connection');
  const r = await received!;
  assert.equal(r.bytes, BYTES);
  assert.equal(r.hash, sent);
  await new Promise<void>((res) => mserver.close(() => res()));
  await guard.check();
});

const fdLimit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
const CONNS = 1000;
test(`${CONNS} concurrent maio connections echoing through a maio server`, { skip: skip || (fdLimit < 2 * CONNS + 100 ? `ulimit -n is ${fdLimit}, need ${2 * CONNS + 100}` : false) }, async () => {
  const guard = poolGuard();
  const server = createServer((s) => {
    s.on('data', (buf) => s.send(buf));
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const ROUNDS = 3;
  const clients: Socket[] = [];
  const finished: Promise<void>[] = [];
  for (let i = 0; i < CONNS; i++) {
    const c = connect({ port, host: '127.0.0.1' });
    clients.push(c);
    finished.push(
      new Promise<void>((resolve, reject) => {
        const msg = Buffer.from(`connection ${i.toString().padStart(4, '0')} says hello, round `);
        let round = 0;
        let got = Buffer.alloc(0);
        const expect = () => Buffer.concat([msg, Buffer.from(String(round))]);
        c.on('connect', () => c.write(expect()));
        c.on('data', (buf) => {
          got = Buffer.concat([got, buf.bytes]);
          const want = expect();
          if (got.length < want.length) return;
          if (!got.equals(want)) return reject(new Error(`connection ${i}: got ${got.toString()}`));
          got = Buffer.alloc(0);
          if (++round === ROUNDS) {
            c.end();
            resolve();
          } else c.write(expect());
        });
        c.on('error', reject);
      }),
    );
  }
  await Promise.all(finished);
  await until(() => server.connections === 0, 'every connection closed', 60000);
  await Promise.all(clients.map((c) => (c.destroyed ? Promise.resolve() : closed(c))));
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});
