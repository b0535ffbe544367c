/**
 * Redis over maio/net: ioredis (a published client, unmodified) whose
 * public `Connector` option (a subclass of its exported AbstractConnector)
 * hands it a maio/net socket, against a real redis-server started here
 * (free port, no persistence). The same workload (get/set, binary values,
 * a 1000-command pipeline, 16 MiB values, MULTI/EXEC with and without an
 * error, WATCH) runs over node:net and over maio/net; the replies must match.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';
import Redis, { AbstractConnector } from 'ioredis';
import * as mnet from '../../../src/net/compat/index';
import { bounded, poolGuard } from '../helpers';
import { connectOn, freePort, impls, skip as netSkip, type NetLike } from './common';
import { payload, sha256, startChild, tempDir, toolSkip, waitForPort, type Child } from './real-common';

const skip = netSkip || toolSkip('redis-server');

let tmp: ReturnType<typeof tempDir> | null = null;
let server: Child | null = null;
let port = 0;

before(async () => {
  if (skip) return;
  tmp = tempDir('redis');
  port = await freePort();
  server = startChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp.dir, '--protected-mode', 'no']);
  await waitForPort(port, 'redis-server');
});

after(async () => {
  await server?.stop();
  tmp?.remove();
});

/** ioredis' Connector that opens its stream with `impl` (counts the connections it made). */
function connectorOn(impl: NetLike, made: net.Socket[]) {
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
          this.stream = s;
          resolve(s);
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
  return out;
}

test('ioredis over node:net and over maio/net (its Connector option) against redis-server: the same replies, 16 MiB values intact', { skip, timeout: 60000 }, async () => {
  const guard = poolGuard();
  const results: Record<string, unknown[]> = {};
  for (const [name, impl] of impls) {
    const made: net.Socket[] = [];
    const client = new Redis({ host: '127.0.0.1', port, Connector: connectorOn(impl, made), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined); // a failure shows in the command that hit it
    try {
      await bounded(client.connect(), `${name}: ioredis connected`);
      results[name] = await workload(client, name);
      assert.ok(made.length >= 2, `${name}: the client and its duplicate() connected through the Connector`);
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
  assert.deepEqual(results['maio/net'], results['node:net']);
  await guard.check('the pool after the maio/net runs');
});
