/** maio proxy: the Proxy class in-process, and the CLI (SIGTERM drain, metrics, errors) as a child process. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Proxy, parseHostPort } from '../../src/paths/proxy';
import { listen, receive, until } from './helpers';
import { bufferSkip, sendChunks } from './maio-helpers';

const MiB = 1 << 20;
/** Bytes each way in the byte-exact test: small in CI, MAIO_TEST_BYTES=1073741824 for the full 1 GiB by hand. */
const BYTES = Number(process.env.MAIO_TEST_BYTES ?? 32 * MiB);
const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** An upstream that records what each connection sent and answers with its own bytes. */
async function upstream(name: string) {
  const conns: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.push(s);
    s.on('error', () => {});
  });
  const port = await listen(server);
  return { name, port, conns, server, close: () => (conns.forEach((c) => c.destroy()), server.close()) };
}

async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

function client(port: number): Promise<net.Socket> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  return once(c, 'connect').then(() => c);
}

test(`${BYTES} bytes each way (random chunks) go through the proxy unchanged, both directions at once`, { skip: bufferSkip }, async () => {
  const up = await upstream('u');
  const proxy = new Proxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: up.port }] });
  const addr = await proxy.listen();
  const c = await client(addr.port);
  await until(() => up.conns.length === 1, 'upstream connection');
  const U = up.conns[0]!;
  const atU = receive(U);
  const atC = receive(c);
  const [s1, s2] = await Promise.all([sendChunks(c, BYTES, 3), sendChunks(U, BYTES + 7, 4)]);
  const [gU, gC] = await Promise.all([atU, atC]);
  assert.equal(gU.bytes, BYTES);
  assert.equal(gU.digest, s1);
  assert.equal(gC.bytes, BYTES + 7);
  assert.equal(gC.digest, s2);
  await until(() => proxy.connections === 0, 'the connection to end');
  const st = proxy.stats();
  assert.equal(st.bytesUp, BYTES);
  assert.equal(st.bytesDown, BYTES + 7);
  assert.equal(st.completed, 1);
  await proxy.close();
  c.destroy();
  up.close();
});

test('round-robin spreads connections over two upstreams; least-connections picks the idle one', { skip: bufferSkip }, async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const ups = [{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }];
  const proxy = new Proxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: ups });
  const addr = await proxy.listen();
  const cs: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    cs.push(await client(addr.port));
    await until(() => a.conns.length + b.conns.length === i + 1, 'upstream connection');
  }
  assert.equal(a.conns.length, 2);
  assert.equal(b.conns.length, 2);
  cs.forEach((c) => c.destroy());
  [...a.conns, ...b.conns].forEach((c) => c.destroy());
  await proxy.close();

  const lc = new Proxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: ups, balance: 'least-connections' });
  const addr2 = await lc.listen();
  const before = [a.conns.length, b.conns.length];
  const x = await client(addr2.port);
  await until(() => lc.stats().upstreams.some((u) => u.active === 1), 'first');
  const y = await client(addr2.port);
  await until(() => lc.stats().upstreams.every((u) => u.active === 1), 'one each');
  await until(() => a.conns.length - before[0]! === 1 && b.conns.length - before[1]! === 1, 'one new connection on each upstream');
  x.destroy();
  y.destroy();
  [...a.conns, ...b.conns].forEach((c) => c.destroy());
  await lc.close();
  a.close();
  b.close();
});

test('failover: a connect failure marks the upstream down and the next one takes the connection', { skip: bufferSkip }, async () => {
  const live = await upstream('live');
  const dead = await deadPort();
  const proxy = new Proxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: live.port }] });
  const events: boolean[] = [];
  proxy.on('upstream', (_u, healthy: boolean) => events.push(healthy));
  const addr = await proxy.listen();
  for (let i = 0; i < 3; i++) {
    const c = await client(addr.port);
    await until(() => live.conns.length === i + 1, 'the live upstream to get the connection');
    c.write('ping');
    const U = live.conns[i]!;
    const [d] = (await once(U, 'data')) as [Buffer];
    assert.equal(d.toString(), 'ping');
    c.destroy();
  }
  const st = proxy.stats();
  assert.equal(st.upstreams[0]!.healthy, false);
  assert.ok(st.upstreams[0]!.connectFailures >= 1);
  assert.deepEqual(events, [false]);
  assert.deepEqual(await proxy.checkHealth(), [false, true]);
  // All upstreams down: the client is closed, and the failure is counted.
  const proxy2 = new Proxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: dead }] });
  const errs: string[] = [];
  proxy2.on('connectionError', (e: Error) => errs.push(e.message));
  const addr2 = await proxy2.listen();
  const c2 = await client(addr2.port);
  c2.on('error', () => {});
  c2.resume();
  await once(c2, 'end');
  c2.destroy();
  assert.equal(proxy2.stats().failed, 1);
  assert.match(errs[0]!, /no upstream reachable.*ECONNREFUSED/);
  await proxy2.close();
  live.conns.forEach((c) => c.destroy());
  await proxy.close();
  live.close();
});

test('parseHostPort gives one-line typed errors', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
  assert.deepEqual(parseHostPort('[::1]:8080'), { host: '::1', port: 8080 });
  assert.deepEqual(parseHostPort('9000'), { host: '127.0.0.1', port: 9000 });
  assert.throws(() => parseHostPort('nope'), /must be HOST:PORT/);
  assert.throws(() => parseHostPort('h:70000'), /0\.\.65535/);
});

function cli(args: string[]): { child: ChildProcess; port: Promise<number>; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, 'proxy', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  let out = '';
  const port = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`proxy exited ${code}: ${err}`)));
  });
  port.catch(() => {});
  return { child, port, stderr: () => err };
}

test('CLI: SIGTERM stops accepting, drains the open connection, exits 0; metrics endpoint counts', { skip: bufferSkip }, async () => {
  const up = await upstream('u');
  const p = cli(['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up.port}`, '--metrics', '127.0.0.1:0', '--health-interval', '1']);
  try {
    const port = await p.port;
    const mport = Number(/metrics on http:\/\/[^:]+:(\d+)/.exec(p.stderr())![1]);
    const c = await client(port);
    c.write('before ');
    // The upstream also sees the proxy's health-check connections: ours is the one with bytes.
    await until(() => up.conns.some((s) => s.bytesRead >= 7), 'first bytes');
    const U = up.conns.find((s) => s.bytesRead >= 7)!;
    const atU = receive(U); // the upstream helper never reads, so 'before ' is still buffered
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: mport, path: '/metrics' }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    assert.match(body, /^maio_proxy_connections_accepted_total 1$/m);
    assert.match(body, /^maio_proxy_connections_active 1$/m);
    assert.match(body, /^maio_proxy_bytes_total\{direction="up"\} 7$/m);
    assert.match(body, new RegExp(`^maio_proxy_upstream_up\\{upstream="127.0.0.1:${up.port}"\\} 1$`, 'm'));
    assert.match(body, /# TYPE maio_proxy_bytes_total counter/);
    const exited = once(p.child, 'exit');
    p.child.kill('SIGTERM');
    await until(() => /stopping/.test(p.stderr()), 'the stop message');
    // No new connections: refused once the listener is closed; one that got into the
    // backlog while it was closing is closed without reaching the upstream.
    const before = up.conns.length;
    try {
      const late = await client(port);
      late.on('error', () => {});
      late.write('late');
      late.resume();
      await new Promise((resolve) => (late.once('end', resolve), late.once('close', resolve)));
      late.destroy();
    } catch (err) {
      // Refused after the close; reset when its handshake completed in the backlog of the closing listener.
      assert.ok(['ECONNREFUSED', 'ECONNRESET'].includes((err as NodeJS.ErrnoException).code ?? ''), String(err));
    }
    assert.ok(up.conns.slice(before).every((s) => s.bytesRead === 0), 'no late client bytes reached the upstream');
    // The open one still works in both directions, then ends.
    c.end('after');
    assert.equal((await atU).bytes, 12);
    const atC = receive(c);
    U.end('bye');
    assert.equal((await atC).bytes, 3);
    const [code] = await exited;
    assert.equal(code, 0, p.stderr());
  } finally {
    p.child.kill('SIGKILL');
    up.close();
  }
});

test('CLI: bad addresses, a port in use and a bad config are one-line errors with exit 1', { skip: bufferSkip }, async () => {
  const busy = net.createServer();
  const busyPort = await listen(busy);
  const cases: [string[], RegExp][] = [
    [['--listen', 'nope', '--upstream', '127.0.0.1:1'], /--listen must be HOST:PORT/],
    [['--listen', '127.0.0.1:0'], /at least one --upstream/],
    [['--listen', `127.0.0.1:${busyPort}`, '--upstream', '127.0.0.1:1'], /cannot listen on 127\.0\.0\.1:\d+ \(proxy\): address in use/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--balance', 'random'], /--balance must be/],
    [['--config', '/nonexistent.json'], /cannot read config/],
  ];
  try {
    for (const [args, re] of cases) {
      const p = cli(args);
      const [code] = await once(p.child, 'exit');
      assert.equal(code, 1, `${args.join(' ')}: ${p.stderr()}`);
      const lines = p.stderr().trim().split('\n').filter((l) => l.startsWith('maio') && !l.startsWith('maio backend'));
      assert.equal(lines.length, 1, p.stderr());
      assert.match(lines[0]!, re);
    }
  } finally {
    busy.close();
  }
});
