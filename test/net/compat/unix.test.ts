/**
 * Unix domain sockets on node:net and maio/net: listen(path) and
 * listen({ path }), connect / createConnection to a path, address() as the
 * path, no IP or port on either end, TCP-only calls harmless, the socket
 * file removed at close, EADDRINUSE for a path that exists, ENOENT and
 * ECONNREFUSED on connect, abstract names, readableAll / writableAll, and
 * listen({ fd }) / listen({ handle: { fd } }) on a bound socket. Each body
 * runs on node:net first, so what maio/net is held to is node:net's real
 * behaviour. Paths live in a temporary directory under os.tmpdir().
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../../src/core/native';
import { sockaddr } from '../../../src/net/address';
import { unixSockaddr } from '../../../src/net/unix-address';
import { bounded, closed, poolGuard } from '../helpers';
import { closeServer, impls, skip, thrown, type AnyServer, type AnySocket, type NetLike } from './common';

const SOL_SOCKET = 1;
const SO_TYPE = 3;

function tempDir(): { dir: string; done(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-compat-unix-'));
  return { dir, done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function serverOn(impl: NetLike, onConnection?: (s: net.Socket) => void): net.Server {
  return (impl.createServer as typeof net.createServer)(onConnection);
}

/** listen(...args) and wait for 'listening' (or 'error'). */
async function listening(server: AnyServer, ...args: unknown[]): Promise<void> {
  const done = Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  (server.listen as (...a: unknown[]) => unknown)(...args);
  await bounded(done, 'listening');
}

/** What an error looks like to code that reads its fields. */
function fields(e: NodeJS.ErrnoException & { address?: unknown; port?: unknown }): Record<string, unknown> {
  return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, address: e.address, port: e.port, message: e.message, keys: Object.keys(e).sort() };
}

/** A round trip 'ping' -> 'pong' on a connected client, and what both ends say about themselves. */
async function exchange(server: AnyServer, client: AnySocket): Promise<Record<string, unknown>> {
  const [[peer]] = (await bounded(Promise.all([once(server, 'connection'), once(client, 'connect')]), 'connect and accept')) as [[net.Socket], unknown];
  const report: Record<string, unknown> = {};
  for (const [side, s] of [['client', client], ['server', peer]] as const) {
    report[side] = {
      remoteAddress: s.remoteAddress,
      remotePort: s.remotePort,
      remoteFamily: s.remoteFamily,
      localAddress: s.localAddress,
      localPort: s.localPort,
      address: s.address(),
      // TCP-only calls: harmless, and chainable
      noDelay: s.setNoDelay(true) === s,
      keepAlive: s.setKeepAlive(true, 1000) === s,
    };
  }
  const clientClosed = closed(client);
  const peerClosed = closed(peer);
  peer.once('data', (d: Buffer) => peer.end(`pong ${String(d)}`));
  let got = '';
  client.on('data', (d: Buffer) => (got += String(d)));
  client.end('ping');
  await bounded(Promise.all([clientClosed, peerClosed]), 'both ends close');
  report.got = got;
  return report;
}

const EXPECTED_ENDS = {
  remoteAddress: undefined,
  remotePort: undefined,
  remoteFamily: undefined,
  localAddress: undefined,
  localPort: undefined,
  address: {},
  noDelay: true,
  keepAlive: true,
};

for (const [form, listenArgs, connectWith] of [
  ['listen(path), connect(path)', (p: string) => [p], (impl: NetLike, p: string) => (impl.connect as typeof net.connect)(p)],
  ['listen({ path }), connect({ path })', (p: string) => [{ path: p }], (impl: NetLike, p: string) => (impl.connect as typeof net.connect)({ path: p })],
  ['listen(path, backlog), createConnection({ path })', (p: string) => [p, 16], (impl: NetLike, p: string) => (impl.createConnection as typeof net.createConnection)({ path: p })],
] as const) {
  test(`${form}: address() is the path, no IP or port on either end, TCP-only calls harmless, the file goes at close`, { skip }, async () => {
    const guard = poolGuard();
    const t = tempDir();
    const reports: Record<string, unknown>[] = [];
    for (const [name, impl] of impls) {
      const file = path.join(t.dir, `${name.replace(/\W/g, '')}.sock`);
      const server = serverOn(impl);
      await listening(server, ...listenArgs(file));
      const report: Record<string, unknown> = { address: server.address(), isSocket: fs.statSync(file).isSocket() };
      Object.assign(report, await exchange(server, connectWith(impl, file)));
      await closeServer(server);
      report.fileAfterClose = fs.existsSync(file);
      // node:net keeps answering with the path once closed (its _pipeName)
      report.addressAfterClose = server.address() === file ? 'the path' : server.address();
      reports.push({ ...report, address: report.address === file ? 'the path' : report.address });
    }
    const [want, got] = reports;
    // node:net's behaviour, stated (so a change in node shows up here first)
    assert.deepEqual(want, {
      address: 'the path',
      isSocket: true,
      client: EXPECTED_ENDS,
      server: EXPECTED_ENDS,
      got: 'pong ping',
      fileAfterClose: false,
      addressAfterClose: 'the path',
    });
    assert.deepEqual(got, want);
    t.done();
    await guard.check();
  });
}

test('listen on a path that exists: EADDRINUSE with node:net\'s fields (a plain file, a listening socket)', { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const plain = path.join(t.dir, 'plain');
  fs.writeFileSync(plain, 'not a socket');
  const live = path.join(t.dir, 'live.sock');
  const holder = net.createServer();
  await listening(holder, live);
  for (const file of [plain, live]) {
    const results: Record<string, unknown>[] = [];
    for (const [, impl] of impls) {
      const server = serverOn(impl);
      server.listen(file);
      const [err] = (await bounded(once(server, 'error'), "listen's error")) as [NodeJS.ErrnoException];
      results.push({ ...fields(err), listening: server.listening, address: server.address() });
    }
    const [want, got] = results;
    assert.equal(want!.code, 'EADDRINUSE');
    assert.deepEqual(got, want);
    // nothing was unlinked: the file (and the holder's socket) are still there
    assert.ok(fs.existsSync(file));
  }
  await closeServer(holder);
  t.done();
  await guard.check();
});

test("connect to a missing path (ENOENT) and to a socket file nobody listens on (ECONNREFUSED): node:net's errors", { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const missing = path.join(t.dir, 'nobody.sock');
  // bound, never listening: the file exists, connect is refused
  const stale = path.join(t.dir, 'stale.sock');
  const n = native();
  const fd = n.sockOpen('unix', 'tcp');
  n.sockBind(fd, unixSockaddr(stale));
  for (const [file, code] of [
    [missing, 'ENOENT'],
    [stale, 'ECONNREFUSED'],
  ] as const) {
    const results: Record<string, unknown>[] = [];
    for (const [, impl] of impls) {
      const c = (impl.connect as typeof net.connect)({ path: file });
      const hadError = closed(c);
      const [err] = (await bounded(once(c, 'error'), "connect's error")) as [NodeJS.ErrnoException];
      results.push({ ...fields(err), hadError: await bounded(hadError, 'close'), destroyed: c.destroyed });
    }
    const [want, got] = results;
    assert.equal(want!.code, code);
    assert.equal(want!.address, file);
    assert.deepEqual(got, want);
  }
  n.sockClose(fd);
  t.done();
  await guard.check();
});

test('an abstract name (\\0 first): address() is the name, no file, connect() reaches it', { skip }, async () => {
  const guard = poolGuard();
  const reports: Record<string, unknown>[] = [];
  for (const [name, impl] of impls) {
    const abstract = `\0maio-compat-${process.pid}-${name}`;
    const server = serverOn(impl);
    await listening(server, { path: abstract });
    const report: Record<string, unknown> = { address: server.address() === abstract };
    Object.assign(report, await exchange(server, (impl.connect as typeof net.connect)(abstract)));
    await closeServer(server);
    reports.push(report);
  }
  const [want, got] = reports;
  assert.deepEqual(want, { address: true, client: EXPECTED_ENDS, server: EXPECTED_ENDS, got: 'pong ping' });
  assert.deepEqual(got, want);
  await guard.check();
});

test('readableAll / writableAll set the socket file\'s mode for every user', { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const modes: Record<string, string>[] = [];
  for (const [name, impl] of impls) {
    const m: Record<string, string> = {};
    for (const [label, extra] of [
      ['none', {}],
      ['readableAll', { readableAll: true }],
      ['writableAll', { writableAll: true }],
      ['both', { readableAll: true, writableAll: true }],
      ['truthy, not true', { readableAll: 1 as unknown as boolean, writableAll: 'yes' as unknown as boolean }],
    ] as const) {
      const file = path.join(t.dir, `${name.replace(/\W/g, '')}-${label}.sock`);
      const server = serverOn(impl);
      await listening(server, { path: file, ...extra });
      m[label] = (fs.statSync(file).mode & 0o777).toString(8);
      await closeServer(server);
    }
    modes.push(m);
  }
  const [want, got] = modes;
  assert.equal(want!.both, '777');
  assert.equal(want!['truthy, not true'], want!.none);
  assert.equal((parseInt(want!.readableAll!, 8) & 0o444).toString(8), '444');
  assert.equal((parseInt(want!.writableAll!, 8) & 0o222).toString(8), '222');
  assert.deepEqual(got, want);
  t.done();
  await guard.check();
});

/** A fresh stream socket, bound and not listening: a unix one at `file`, or TCP on 127.0.0.1. */
function boundFd(file: string | null): number {
  const n = native();
  const fd = n.sockOpen(file === null ? 4 : 'unix', 'tcp');
  n.sockBind(fd, file === null ? sockaddr('127.0.0.1', 0) : unixSockaddr(file));
  return fd;
}

function fdOpen(fd: number): boolean {
  try {
    native().sockGetInt(fd, SOL_SOCKET, SO_TYPE);
    return true;
  } catch {
    return false;
  }
}

for (const form of ['{ fd }', '{ handle: { fd } }'] as const) {
  test(`listen(${form}) on a bound socket: accepts, address() as node:net says, the server closes the fd`, { skip }, async () => {
    const guard = poolGuard();
    const t = tempDir();
    for (const kind of ['unix', 'tcp'] as const) {
      const reports: Record<string, unknown>[] = [];
      for (const [name, impl] of impls) {
        const file = kind === 'unix' ? path.join(t.dir, `${name.replace(/\W/g, '')}-fd.sock`) : null;
        const fd = boundFd(file);
        const server = serverOn(impl);
        await listening(server, form === '{ fd }' ? { fd } : { handle: { fd } });
        const address = server.address();
        const port = typeof address === 'object' && address !== null ? address.port : 0;
        const client =
          file === null ? (impl.connect as typeof net.connect)(port, '127.0.0.1') : (impl.connect as typeof net.connect)(file);
        const ends = await exchange(server, client);
        await closeServer(server);
        reports.push({
          address: typeof address === 'object' && address !== null ? { ...address, port: port > 0 } : address,
          got: ends.got,
          fdOpenAfterClose: fdOpen(fd),
          fileAfterClose: file === null ? null : fs.existsSync(file),
        });
      }
      const [want, got] = reports;
      assert.equal(want!.got, 'pong ping');
      assert.equal(want!.fdOpenAfterClose, false);
      assert.deepEqual(got, want, kind);
    }
    t.done();
    await guard.check();
  });
}

test("listen({ fd }) on what is not a stream socket: node:net's EINVAL", { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const results: Record<string, unknown>[] = [];
  for (const [, impl] of impls) {
    const fd = fs.openSync(path.join(t.dir, 'plain'), 'w');
    const server = serverOn(impl);
    server.listen({ fd });
    const [err] = (await bounded(once(server, 'error'), "listen's error")) as [NodeJS.ErrnoException];
    results.push({ ...fields(err), listening: server.listening });
    fs.closeSync(fd);
  }
  const [want, got] = results;
  assert.equal(want!.code, 'EINVAL');
  assert.deepEqual(got, want);
  t.done();
  await guard.check();
});

test('bad path and fd arguments throw what node:net throws', { skip }, () => {
  const calls: [string, (impl: NetLike) => unknown][] = [
    ['listen({ path: 5 })', (impl) => serverOn(impl).listen({ path: 5 as unknown as string })],
    ["listen({ path: '' })", (impl) => serverOn(impl).listen({ path: '' })],
    ['listen({ fd: -1 })', (impl) => serverOn(impl).listen({ fd: -1 })],
    ["listen({ fd: 'x' })", (impl) => serverOn(impl).listen({ fd: 'x' as unknown as number })],
    ['connect({ path: 5 })', (impl) => (impl.connect as typeof net.connect)({ path: 5 as unknown as string })],
  ];
  for (const [what, call] of calls) {
    const want = thrown(() => call(impls[0][1]));
    assert.notEqual(want, 'no throw', `node:net: ${what}`);
    assert.deepEqual(thrown(() => call(impls[1][1])), want, what);
  }
});

test('across implementations on one path: a node:net client to a maio/net server, and the reverse', { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  for (const [serverImpl, clientImpl] of [
    [impls[1][1], impls[0][1]],
    [impls[0][1], impls[1][1]],
  ] as const) {
    const file = path.join(t.dir, 'cross.sock');
    const server = serverOn(serverImpl);
    await listening(server, file);
    const report = await exchange(server, (clientImpl.connect as typeof net.connect)(file));
    assert.equal(report.got, 'pong ping');
    await closeServer(server);
    assert.equal(fs.existsSync(file), false);
  }
  t.done();
  await guard.check();
});

test("connect to a unix socket whose backlog is full: node:net's EAGAIN, at once", { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const results: Record<string, unknown>[] = [];
  for (const [name, impl] of impls) {
    // a listener that never accepts, backlog 0: one connection waits in it, the next are refused
    const file = path.join(t.dir, `${name.replace(/\W/g, '')}-full.sock`);
    const n = native();
    const fd = n.sockOpen('unix', 'tcp');
    n.sockBind(fd, unixSockaddr(file));
    n.sockListen(fd, 0);
    const outcomes: string[] = [];
    let first: Record<string, unknown> | null = null;
    const clients = [0, 1, 2].map(() => (impl.connect as typeof net.connect)(file));
    await bounded(
      Promise.all(
        clients.map(
          (c) =>
            new Promise<void>((resolve) => {
              c.once('connect', () => {
                outcomes.push('connect');
                resolve();
              });
              c.once('error', (e: NodeJS.ErrnoException) => {
                outcomes.push(String(e.code));
                first ??= fields(e);
                resolve();
              });
            }),
        ),
      ),
      'three outcomes',
    );
    for (const c of clients) c.destroy();
    await bounded(Promise.all(clients.map((c) => (c.closed ? Promise.resolve(false) : closed(c)))), 'close');
    n.sockClose(fd);
    results.push({ outcomes: outcomes.sort(), first: { ...first!, address: first!.address === file, message: String(first!.message).replace(file, 'PATH') } });
  }
  const [want, got] = results;
  assert.deepEqual(want!.outcomes, ['EAGAIN', 'EAGAIN', 'connect']);
  assert.deepEqual(got, want);
  t.done();
  await guard.check();
});
