/**
 * Redis over maio/net: ioredis (a published client, unmodified) whose
 * public `Connector` option (a subclass of its exported AbstractConnector)
 * hands it a maio/net socket, against a real redis-server started here
 * (free port, no persistence). The same workload (get/set, binary values,
 * a 1000-command pipeline, 16 MiB values, MULTI/EXEC with and without an
 * error, WATCH, pub/sub) runs over node:net and over maio/net; the replies
 * must match. Then again over TLS (redis-server's TLS port, tls.connect({
 * socket }) on the maio/net socket in the Connector).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import Redis, { AbstractConnector } from 'ioredis';
import * as mnet from '../../../src/net/compat/index';
import { bounded, poolGuard } from '../helpers';
import { connectOn, freePort, impls, skip as netSkip, type NetLike } from './common';
import { makeCert, payload, sha256, startChild, tempDir, toolSkip, waitForPort, type Child } from './real-common';

const skip = netSkip || toolSkip('redis-server');
const tlsSkip = skip || toolSkip('openssl');

let tmp: ReturnType<typeof tempDir> | null = null;
let server: Child | null = null;
let port = 0;
/** redis-server's TLS port (when openssl is there to make a certificate) */
let tlsPort = 0;
let certs: ReturnType<typeof makeCert> | null = null;

before(async () => {
  if (skip) return;
  tmp = tempDir('redis');
  port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp.dir, '--protected-mode', 'no'];
  if (!tlsSkip) {
    certs = makeCert(tmp.dir);
    tlsPort = await freePort();
    args.push('--tls-port', String(tlsPort), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.cert, '--tls-auth-clients', 'no');
  }
  server = startChild('redis-server', args);
  await waitForPort(port, 'redis-server');
  if (tlsPort) await waitForPort(tlsPort, "redis-server's TLS port");
});

after(async () => {
  await server?.stop();
  tmp?.remove();
});

/**
 * ioredis' Connector that opens its stream with `impl` (counts the connections
 * it made); with `ca`, TLS over it: tls.connect({ socket }).
 */
function connectorOn(impl: NetLike, made: net.Socket[], ca?: Buffer) {
  return class extends AbstractConnector {
    readonly #o: { host: string; port: number; disconnectTimeout: number };
    constructor(options: unknown) {
      const o = options as { host: string; port: number; disconnectTimeout: number };
      super(o.disconnectTimeout);
      this.#o = o;
    }
    connect(): Promise<net.Socket> {
      this.connecting = true;
      return new Promise((resolve, reject) => {
        process.nextTick(() => {
          if (!this.connecting) return reject(new Error('Connection is closed.'));
          const s = connectOn(impl, { host: this.#o.host, port: this.#o.port });
          made.push(s);
          // (ioredis waits for 'secureConnect' when its tls option is set)
          this.stream = ca ? tls.connect({ socket: s, ca, servername: 'localhost' }) : s;
          resolve(this.stream);
        });
      });
    }
  };
}

/** A reply made comparable: Buffers by length and sha256, errors by message. */
function norm(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.length > 64 ? { length: v.length, sha256: sha256(v) } : v.toString('hex');
  if (v instanceof Error) return { error: v.message };
  if (Array.isArray(v)) return v.map(norm);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

async function workload(client: Redis, name: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const step = async (what: string, p: Promise<unknown>): Promise<unknown> => {
    const v = norm(await bounded(p, `${name}: ${what}`, 20000));
    out.push([what, v]);
    return v;
  };
  await step('flushall', client.flushall());
  await step('set', client.set('greeting', 'hello, maio'));
  await step('get', client.get('greeting'));
  await step('get missing', client.get('nope'));
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  await step('set binary', client.set(Buffer.from('bin\r\n\0key'), binary));
  await step('getBuffer binary', client.getBuffer(Buffer.from('bin\r\n\0key')));
  await step('hset', client.hset('h', { a: '1', b: 'two', c: 'three' }));
  await step('hgetall', client.hgetall('h'));
  await step('rpush', client.rpush('l', ...Array.from({ length: 100 }, (_, i) => `item${i}`)));
  await step('lrange', client.lrange('l', 0, -1));

  // 1000 commands in one pipeline (one write, replies parsed as they stream in)
  const pipe = client.pipeline();
  for (let i = 0; i < 333; i++) pipe.set(`k${i}`, `v${i}`.repeat(i % 50)).incr('counter').get(`k${i}`);
  pipe.get('counter');
  await step('pipeline x1000', pipe.exec());

  // large values: 16 MiB and a pipeline of four 2 MiB values
  const big = payload(16 << 20, 9);
  await step('set 16 MiB', client.set('big', big));
  const gotBig = (await bounded(client.getBuffer('big'), `${name}: getBuffer 16 MiB`)) as Buffer;
  assert.equal(gotBig.length, big.length, `${name}: 16 MiB value length`);
  assert.equal(sha256(gotBig), sha256(big), `${name}: 16 MiB value sha256`);
  out.push(['get 16 MiB', norm(gotBig)]);
  await step('strlen', client.strlen('big'));
  const p2 = client.pipeline();
  for (let i = 0; i < 4; i++) p2.set(`m${i}`, big.subarray(i << 21, (i + 1) << 21));
  for (let i = 0; i < 4; i++) p2.getBuffer(`m${i}`);
  await step('pipeline of 2 MiB values', p2.exec());

  // MULTI/EXEC: queued commands, one failing inside (EXEC still runs the rest)
  await step('multi/exec', client.multi().set('t', '1').incr('t').incrby('t', 10).get('t').exec());
  await step('multi/exec with an error', client.multi().set('s', 'text').incr('s').get('s').exec());
  // WATCH: a change from another connection aborts the transaction (EXEC answers null)
  await step('watch', client.watch('w'));
  const other = client.duplicate();
  try {
    await step('set w from another connection', other.set('w', 'changed'));
  } finally {
    other.disconnect();
  }
  await step('exec after watch broke', client.multi().set('w', 'mine').exec());
  await step('get w', client.get('w'));
  await step('dbsize', client.dbsize());

  // pub/sub: messages the server pushes on its own, small and 1 MiB, in order
  const sub = client.duplicate();
  try {
    await step('subscribe', sub.subscribe('news'));
    const got: unknown[] = [];
    const all = new Promise<void>((resolve) =>
      sub.on('messageBuffer', (ch: Buffer, msg: Buffer) => {
        got.push([ch.toString(), norm(msg)]);
        if (got.length === 101) resolve();
      }),
    );
    for (let i = 0; i < 100; i++) await step(`publish ${i}`, client.publish('news', `message ${i}`));
    await step('publish 1 MiB', client.publish('news', big.subarray(0, 1 << 20)));
    await bounded(all, `${name}: 101 messages on the subscriber`);
    out.push(['messages', got]);
  } finally {
    sub.disconnect();
  }
  return out;
}

/** The workload over node:net, then over maio/net; maio/net's replies must equal node:net's. */
async function compare(useTls: boolean): Promise<void> {
  const guard = poolGuard();
  const results: Record<string, unknown[]> = {};
  for (const [name, impl] of impls) {
    const made: net.Socket[] = [];
    const Connector = connectorOn(impl, made, useTls ? certs!.certPem : undefined);
    const client = new Redis({
      host: '127.0.0.1',
      port: useTls ? tlsPort : port,
      Connector,
      ...(useTls ? { tls: { ca: certs!.certPem } } : {}),
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    client.on('error', () => undefined); // a failure shows in the command that hit it
    try {
      await bounded(client.connect(), `${name}: ioredis connected`);
      results[name] = await workload(client, name);
      assert.ok(made.length >= 3, `${name}: the client and its duplicate()s connected through the Connector`);
      assert.ok(made.every((s) => (impl === mnet ? s instanceof mnet.Socket : !(s instanceof mnet.Socket))), `${name}: the sockets are ${name}'s`);
      assert.equal(await bounded(client.quit(), `${name}: QUIT`), 'OK');
    } finally {
      client.disconnect();
      for (const s of made) s.destroy();
    }
  }
  // the workload did what it says (checked on node:net's replies; maio/net's must equal them)
  const r = Object.fromEntries(results['node:net'] as [string, unknown][]);
  assert.equal(r['get'], 'hello, maio');
  assert.deepEqual(r['getBuffer binary'], norm(Buffer.from(Array.from({ length: 256 }, (_, i) => i))));
  assert.equal((r['pipeline x1000'] as unknown[]).length, 1000);
  assert.deepEqual((r['pipeline x1000'] as unknown[])[999], [null, '333']);
  assert.deepEqual(r['multi/exec'], [[null, 'OK'], [null, 2], [null, 12], [null, '12']]);
  assert.match(JSON.stringify(r['multi/exec with an error']), /not an integer/);
  assert.equal(r['exec after watch broke'], null);
  assert.equal(r['get w'], 'changed');
  assert.equal((r['messages'] as unknown[]).length, 101);
  assert.deepEqual((r['messages'] as unknown[])[7], ['news', Buffer.from('message 7').toString('hex')]);
  assert.deepEqual(results['maio/net'], results['node:net']);
  await guard.check('the pool after the maio/net runs');
}

test('ioredis over node:net and over maio/net (its Connector option) against redis-server: the same replies, 16 MiB values intact', { skip, timeout: 60000 }, async () => {
  await compare(false);
});

test("ioredis with TLS over maio/net (tls.connect({ socket }) in the Connector) against redis-server's TLS port: the same replies as over node:net", { skip: tlsSkip, timeout: 60000 }, async () => {
  await compare(true);
});

test('ioredis with enableAutoPipelining over maio/net: 5000 commands issued at once, batched by the client, the same replies as over node:net', { skip, timeout: 60000 }, async () => {
  const guard = poolGuard();
  const results: Record<string, unknown[]> = {};
  for (const [name, impl] of impls) {
    const made: net.Socket[] = [];
    const client = new Redis({ host: '127.0.0.1', port, Connector: connectorOn(impl, made), enableAutoPipelining: true, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      await bounded(client.connect(), `${name}: ioredis connected`);
      await client.del('auto');
      const replies = await bounded(
        Promise.all(Array.from({ length: 5000 }, (_, i) => (i % 2 ? client.incr('auto') : client.set(`auto:${i}`, 'x'.repeat(i % 1000))))),
        `${name}: 5000 auto-pipelined commands`,
      );
      const back = await bounded(Promise.all(Array.from({ length: 2500 }, (_, i) => client.strlen(`auto:${i * 2}`))), `${name}: 2500 auto-pipelined reads`);
      assert.equal(made.length, 1);
      results[name] = [replies, back];
    } finally {
      client.disconnect();
      for (const s of made) s.destroy();
    }
  }
  assert.equal((results['node:net'][0] as unknown[])[4999], 2500);
  assert.deepEqual(results['maio/net'], results['node:net']);
  await guard.check('the pool after the maio/net runs');
});
