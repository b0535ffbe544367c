/**
 * maio/net against node:net: the same scenarios run on both, and the
 * observable behaviour (events, bytes, error shapes) must match. Every test
 * ends with the pool as it found it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import { Writable, pipeline } from 'node:stream';
import { promisify } from 'node:util';
import * as mnet from '../../src/net/compat/index';
import { ServerNotRunningError } from '../../src/core/errors';
import { TEST_BYTES, bounded, closed, nodePump, poolGuard, until } from './helpers';
import { backend } from '../../src/backend';
import { Server as MaioServer } from '../../src/net/server';

/** Runs wherever maio's sockets run: on io_uring, and on the epoll fallback once the socket layer supports it. */
const skip: string | false = (() => {
  try {
    backend();
    new MaioServer({});
    return false;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
})();
const pipelineP = promisify(pipeline);
type NetLike = typeof net | typeof mnet;
const impls: [string, NetLike][] = [
  ['node:net', net],
  ['maio/net', mnet],
];

function listen(server: net.Server | mnet.Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}
function closeServer(server: net.Server | mnet.Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

test('stream.pipeline from a maio/net socket into a sha256, byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const bytes = Math.min(TEST_BYTES, 16 << 20);
  let sent: Promise<string> | undefined;
  const server = net.createServer((s) => {
    sent = nodePump(s, bytes, 21);
  });
  const port = await listen(server);
  const c = mnet.connect(port, '127.0.0.1');
  const h = createHash('sha256');
  let n = 0;
  await pipelineP(
    c,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        assert.ok(Buffer.isBuffer(chunk));
        h.update(chunk);
        n += chunk.length;
        cb();
      },
    }),
  );
  assert.equal(n, bytes);
  assert.equal(h.digest('hex'), await sent!);
  assert.equal(c.bytesRead, bytes);
  await closeServer(server);
  await guard.check();
});

test("setEncoding('utf8'): a multi-byte character split across two reads comes out whole", { skip }, async () => {
  const guard = poolGuard();
  const euro = Buffer.from('€'); // e2 82 ac
  const server = net.createServer((s) => {
    s.write(Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]));
    // The rest only after the client has seen 'a': the character is split across two reads.
    s.once('data', () => s.end(Buffer.concat([euro.subarray(2), Buffer.from('ü end')])));
  });
  const port = await listen(server);
  const c = mnet.connect({ port, host: '127.0.0.1' });
  c.setEncoding('utf8');
  const parts: string[] = [];
  c.on('data', (d: unknown) => {
    assert.equal(typeof d, 'string');
    parts.push(d as string);
    if (parts.length === 1) c.write('ack');
  });
  await once(c, 'end');
  assert.deepEqual(parts, ['a', '€ü end']);
  await closed(c);
  await closeServer(server);
  await guard.check();
});

/** One half-close scenario on a server of `impl`; the client is always node:net. */
async function halfCloseServer(impl: NetLike, allowHalfOpen: boolean): Promise<{ server: string[]; client: string[] }> {
  const ev: string[] = [];
  let done!: () => void;
  const serverClosed = new Promise<void>((r) => (done = r));
  const server = (impl.createServer as typeof net.createServer)({ allowHalfOpen }, (s) => {
    s.on('data', (d) => ev.push(`data:${d}`));
    s.on('end', () => {
      ev.push(`end:${s.readyState}`);
      ev.push(`write:${s.write('pong', (e) => ev.push(`wcb:${e ? (e as NodeJS.ErrnoException).code : 'ok'}`))}`);
      if (allowHalfOpen) setImmediate(() => s.end('!'));
    });
    s.on('error', (e: NodeJS.ErrnoException) => ev.push(`error:${e.code}`));
    s.on('finish', () => ev.push(`finish:${s.readyState}`));
    s.on('close', (hadError) => {
      ev.push(`close:${hadError}:${s.destroyed}`);
      done();
    });
  });
  const port = await listen(server);
  const cev: string[] = [];
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => c.end('ping'));
  c.setEncoding('utf8');
  c.on('data', (d) => cev.push(`data:${d}`));
  c.on('end', () => cev.push('end'));
  await closed(c);
  await serverClosed;
  await closeServer(server);
  return { server: ev, client: [cev.filter((e) => e.startsWith('data')).map((e) => e.slice(5)).join(''), ...cev.filter((e) => !e.startsWith('data'))] };
}

for (const allowHalfOpen of [false, true]) {
  test(`half-close on the server side, allowHalfOpen ${allowHalfOpen}: same events as node:net`, { skip }, async () => {
    const guard = poolGuard();
    const want = await halfCloseServer(net, allowHalfOpen);
    const got = await halfCloseServer(mnet, allowHalfOpen);
    assert.deepEqual(got, want);
    assert.equal(got.client[0], allowHalfOpen ? 'pong!' : 'pong');
    await guard.check();
  });
}

/** The client side of a half-close: the node:net server writes and ends first. */
async function halfCloseClient(impl: NetLike, allowHalfOpen: boolean): Promise<string[]> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.resume();
    s.end('bye');
  });
  const port = await listen(server);
  const ev: string[] = [];
  const c = (impl.connect as typeof net.connect)({ port, host: '127.0.0.1', allowHalfOpen });
  c.setEncoding('utf8');
  c.on('connect', () => ev.push(`connect:${c.readyState}`));
  c.on('data', (d) => {
    ev.push(`data:${d}`);
  });
  c.on('end', () => {
    ev.push(`end:${c.readyState}`);
    if (allowHalfOpen) c.end('late');
  });
  c.on('finish', () => ev.push(`finish:${c.readyState}`));
  c.on('error', (e: NodeJS.ErrnoException) => ev.push(`error:${e.code}`));
  const hadError = await closed(c);
  ev.push(`close:${hadError}:${c.readyState}`);
  await closeServer(server);
  return ev;
}

for (const allowHalfOpen of [false, true]) {
  test(`half-close on the client side, allowHalfOpen ${allowHalfOpen}: same events as node:net`, { skip }, async () => {
    const guard = poolGuard();
    const want = await halfCloseClient(net, allowHalfOpen);
    const got = await halfCloseClient(mnet, allowHalfOpen);
    assert.deepEqual(got, want);
    await guard.check();
  });
}

test('ECONNREFUSED has node:net\'s shape (code, errno, syscall, address, port, message)', { skip }, async () => {
  const guard = poolGuard();
  // A port that was just free: listen, note it, close.
  const tmp = net.createServer();
  const port = await listen(tmp);
  await closeServer(tmp);
  const shape = async (impl: NetLike) => {
    const c = (impl.connect as typeof net.connect)(port, '127.0.0.1');
    const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException & { address?: string; port?: number }];
    const hadError = await closed(c);
    return { code: err.code, errno: err.errno, syscall: err.syscall, address: err.address, port: err.port, message: err.message, hadError, destroyed: c.destroyed };
  };
  const want = await shape(net);
  const got = await shape(mnet);
  assert.deepEqual(got, want);
  assert.equal(got.code, 'ECONNREFUSED');
  await guard.check();
});

test("setTimeout fires 'timeout' on an idle socket and leaves it open; connect({ timeout }) sets it", { skip }, async () => {
  const guard = poolGuard();
  const server = mnet.createServer((s) => s.pipe(s));
  const port = await listen(server);
  // A long timeout for connect({ timeout }): it must not fire while a busy machine is still
  // connecting (this test used to wait for 'connect' after a 30 ms timeout had fired, forever).
  const c = mnet.connect({ port, host: '127.0.0.1', timeout: 60_000 });
  assert.equal(c.timeout, 60_000);
  await bounded(once(c, 'connect'), 'connect');
  // Armed once connected, and every wait bounded: nothing here can hang.
  c.setTimeout(30);
  assert.equal(c.timeout, 30);
  await bounded(once(c, 'timeout'), 'the first timeout');
  assert.equal(c.destroyed, false);
  // Still usable after the timeout; it fires again after the next idle spell.
  c.write('x');
  const [d] = await bounded(once(c, 'data'), 'the echo');
  assert.equal(String(d), 'x');
  await bounded(once(c, 'timeout'), 'the second timeout');
  c.setTimeout(0);
  assert.equal(c.timeout, undefined);
  c.end();
  await bounded(closed(c), 'close');
  await closeServer(server);
  await guard.check();
});

test('server.close waits for open connections; getConnections counts them', { skip }, async () => {
  const guard = poolGuard();
  const server = mnet.createServer((s) => s.pipe(s));
  const port = await listen(server);
  const clients = await Promise.all(
    [0, 1, 2].map(async () => {
      const c = net.connect(port, '127.0.0.1');
      await once(c, 'connect');
      return c;
    }),
  );
  await until(() => server.connections === 3, 'three connections');
  const count = await new Promise<number>((r, j) => server.getConnections((e, n) => (e ? j(e) : r(n))));
  assert.equal(count, 3);
  let serverClosed = false;
  const closing = new Promise<void>((r) =>
    server.close(() => {
      serverClosed = true;
      r();
    }),
  );
  assert.equal(server.listening, false);
  // Still open and echoing after close().
  clients[0].write('still here');
  const [d] = await once(clients[0], 'data');
  assert.equal(String(d), 'still here');
  assert.equal(serverClosed, false);
  for (const c of clients) c.end();
  await closing;
  assert.equal(server.connections, 0);
  // close() again: node:net's ERR_SERVER_NOT_RUNNING
  const err = await new Promise<Error | undefined>((r) => server.close(r));
  assert.ok(err instanceof ServerNotRunningError);
  assert.equal((err as NodeJS.ErrnoException).code, 'ERR_SERVER_NOT_RUNNING');
  await guard.check();
});

test('new Socket().connect(): writes before the connection queue; properties like node:net', { skip }, async () => {
  const guard = poolGuard();
  const server = net.createServer((s) => s.pipe(s));
  const port = await listen(server);
  const c = new mnet.Socket();
  assert.equal(c.pending, true);
  assert.equal(c.connecting, false);
  c.connect(port, '127.0.0.1');
  assert.equal(c.connecting, true);
  assert.equal(c.readyState, 'opening');
  c.write('early ');
  c.write(Buffer.from('bytes'));
  await once(c, 'connect');
  assert.equal(c.pending, false);
  assert.equal(c.readyState, 'open');
  assert.equal(c.remoteAddress, '127.0.0.1');
  assert.equal(c.remotePort, port);
  assert.equal(c.remoteFamily, 'IPv4');
  assert.equal(c.localAddress, '127.0.0.1');
  assert.equal(typeof c.localPort, 'number');
  assert.deepEqual(c.address(), { address: '127.0.0.1', family: 'IPv4', port: c.localPort });
  c.setNoDelay(true).setKeepAlive(true, 5000).ref().unref();
  let got = '';
  for await (const chunk of c) {
    got += String(chunk);
    if (got.length >= 11) break; // leaving the loop destroys the socket, as with node:net
  }
  assert.equal(got, 'early bytes');
  assert.equal(c.bytesRead, 11);
  assert.equal(c.bytesWritten, 11);
  await until(() => c.readyState === 'closed', 'closed');
  await closeServer(server);
  await guard.check();
});

test('backpressure: a paused maio/net reader stops the maio socket; everything arrives after resume', { skip }, async () => {
  const guard = poolGuard();
  const bytes = 8 << 20;
  let sent: Promise<string> | undefined;
  const server = net.createServer((s) => {
    sent = nodePump(s, bytes, 5);
  });
  const port = await listen(server);
  const c = mnet.connect(port, '127.0.0.1');
  await once(c, 'connect');
  // Nobody reads: the readable buffer fills to its mark and the maio socket pauses.
  await until(() => c.maioSocket!.isPaused(), 'the maio socket paused');
  assert.ok(c.readableLength >= c.readableHighWaterMark);
  assert.ok(c.readableLength < bytes);
  const h = createHash('sha256');
  let n = 0;
  c.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  await once(c, 'end');
  assert.equal(n, bytes);
  assert.equal(h.digest('hex'), await sent!);
  await closed(c);
  await closeServer(server);
  await guard.check();
});

test('destroy(err) and a peer reset: node:net-shaped errors, close with hadError, pool back', { skip }, async () => {
  const guard = poolGuard();
  const server = net.createServer((s) => {
    s.on('data', () => s.resetAndDestroy());
  });
  const port = await listen(server);
  const c = mnet.connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.write('go');
  const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNRESET');
  assert.equal(typeof err.errno, 'number');
  assert.equal(await closed(c), true);

  const c2 = mnet.connect(port, '127.0.0.1');
  const mine = new Error('mine');
  c2.destroy(mine);
  const [e2] = await once(c2, 'error');
  assert.equal(e2, mine);
  assert.equal(await closed(c2), true);
  await closeServer(server);
  await guard.check();
});

test('maxConnections drops connections above it', { skip }, async () => {
  const guard = poolGuard();
  const server = mnet.createServer((s) => s.pipe(s));
  server.maxConnections = 1;
  const port = await listen(server);
  const a = net.connect(port, '127.0.0.1');
  await once(a, 'connect');
  await until(() => server.connections === 1, 'one connection');
  const dropped = once(server, 'drop');
  const b = net.connect(port, '127.0.0.1');
  b.on('error', () => {});
  const [info] = (await dropped) as [{ remotePort: number }];
  assert.equal(info.remotePort, b.localPort);
  await closed(b);
  a.end();
  await closed(a);
  await closeServer(server);
  await guard.check();
});

// Unix paths, listen({ fd }) and listen({ handle: { fd } }) are supported: test/net/compat/unix.test.ts.
test("unsupported node:net features throw typed errors (a socket adopting an fd, node's own handles)", { skip }, () => {
  assert.throws(() => new mnet.Socket({ fd: 3 }), { code: 'ERR_MAIO_INVALID_ARG' });
  const s = mnet.createServer();
  assert.throws(() => s.listen({ handle: new net.Server() }), { code: 'ERR_MAIO_INVALID_ARG' });
});

for (const [name, impl] of impls) {
  test(`listen({ port, host, backlog }, cb) and address() on ${name}`, { skip }, async () => {
    const guard = poolGuard();
    const server = (impl.createServer as typeof net.createServer)();
    await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 16 }, r));
    const a = server.address() as net.AddressInfo;
    assert.equal(a.address, '127.0.0.1');
    assert.equal(a.family, 'IPv4');
    assert.ok(a.port > 0);
    await closeServer(server);
    assert.equal(server.address(), null);
    await guard.check();
  });
}
