/**
 * Client binding and reuse, on node:net and maio/net: localAddress /
 * localPort, bind errors, connect() again after close, setTimeout() on a
 * socket that never connects, remoteAddress only once connected,
 * resetAndDestroy() on an unconnected or connecting socket, server.close()
 * with a non-function.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { bounded, closed, poolGuard } from '../helpers';
import { closeServer, connectOn, freePort, impls, listen, silentListener, skip } from './common';

/** A node:net server that reports each connection's remote end. */
async function reporter(): Promise<{ srv: net.Server; port: number; next(): Promise<{ address?: string; port?: number }> }> {
  const waiting: ((a: { address?: string; port?: number }) => void)[] = [];
  const srv = net.createServer((s) => {
    waiting.shift()?.({ address: s.remoteAddress, port: s.remotePort });
    s.resume();
    s.end();
  });
  const port = await listen(srv);
  return { srv, port, next: () => new Promise((r) => waiting.push(r)) };
}

for (const [name, impl] of impls) {
  test(`localAddress / localPort bind the client before it connects (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const { srv, port, next } = await reporter();
    // 127.0.0.2 is this host too (all of 127/8 is loopback): the server sees it as the source
    const seen = next();
    const c = connectOn(impl, { port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    await bounded(once(c, 'connect'), 'connect');
    assert.equal(c.localAddress, '127.0.0.2');
    assert.deepEqual(await bounded(seen, 'the server side'), { address: '127.0.0.2', port: c.localPort });
    c.resume();
    await bounded(closed(c), 'close');

    const localPort = await freePort();
    const seen2 = next();
    const d = connectOn(impl, { port, host: '127.0.0.1', localAddress: '127.0.0.1', localPort });
    await bounded(once(d, 'connect'), 'connect');
    assert.equal(d.localPort, localPort);
    assert.deepEqual(await bounded(seen2, 'the server side'), { address: '127.0.0.1', port: localPort });
    d.resume();
    await bounded(closed(d), 'close');
    await closeServer(srv);
    await guard.check();
  });
}

test("bind errors have node:net's shape (EADDRINUSE on a taken port, EINVAL for the other family)", { skip }, async () => {
  const guard = poolGuard();
  const holder = net.createServer();
  const taken = await listen(holder);
  const target = await freePort();
  const shapeOf = async (impl: (typeof impls)[number][1], options: net.NetConnectOpts) => {
    const c = connectOn(impl, options);
    const closing = closed(c);
    const [err] = (await bounded(once(c, 'error'), "'error'")) as [NodeJS.ErrnoException & { address?: string; port?: number }];
    const hadError = await bounded(closing, 'close');
    return { code: err.code, errno: err.errno, syscall: err.syscall, address: err.address, port: err.port, message: err.message, hadError };
  };
  for (const options of [
    { port: target, host: '127.0.0.1', localAddress: '127.0.0.1', localPort: taken },
    { port: target, host: '127.0.0.1', localAddress: '::1' },
  ]) {
    const want = await shapeOf(impls[0][1], options);
    const got = await shapeOf(impls[1][1], options);
    assert.deepEqual(got, want);
    assert.equal(want.syscall, 'bind');
  }
  await closeServer(holder);
  await guard.check();
});

for (const [name, impl] of impls) {
  test(`connect() again on a socket that closed: a new connection, same object (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = net.createServer((s) => s.pipe(s));
    const port = await listen(srv);
    const c = connectOn(impl, { port, host: '127.0.0.1' });
    await bounded(once(c, 'connect'), 'connect');
    const first = c.localPort;
    c.destroy();
    await bounded(closed(c), 'close');
    assert.equal(c.destroyed, true);
    c.connect(port, '127.0.0.1');
    await bounded(once(c, 'connect'), 'connect again');
    assert.equal(c.destroyed, false);
    assert.equal(c.readyState, 'open');
    assert.notEqual(c.localPort, first);
    c.write('again');
    const [d] = await bounded(once(c, 'data'), 'the echo');
    assert.equal(String(d), 'again');
    c.end();
    assert.equal(await bounded(closed(c), 'close'), false);
    await closeServer(srv);
    await guard.check();
  });

  test(`setTimeout() on a socket that never connects fires 'timeout' and leaves it open (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const s = new (impl.Socket as typeof net.Socket)();
    let fired = 0;
    s.setTimeout(20, () => fired++);
    assert.equal(s.timeout, 20);
    await bounded(once(s, 'timeout'), "'timeout'");
    assert.equal(fired, 1);
    assert.equal(s.destroyed, false);
    s.destroy();
    await bounded(closed(s), 'close');
    await guard.check();
  });

  test(`remoteAddress, remotePort, remoteFamily: undefined until connected (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const silent = await silentListener();
    const fresh = new (impl.Socket as typeof net.Socket)();
    assert.deepEqual([fresh.remoteAddress, fresh.remotePort, fresh.remoteFamily], [undefined, undefined, undefined]);
    fresh.destroy();
    try {
      const c = connectOn(impl, { port: silent.port, host: '127.0.0.1' });
      await bounded(once(c, 'connectionAttempt'), 'the attempt');
      assert.equal(c.connecting, true);
      assert.deepEqual([c.remoteAddress, c.remotePort, c.remoteFamily], [undefined, undefined, undefined]);
      c.destroy();
      await bounded(closed(c), 'close');
    } finally {
      silent.close();
    }
    const srv = net.createServer((s) => s.end());
    const port = await listen(srv);
    const d = connectOn(impl, { port, host: '127.0.0.1' });
    await bounded(once(d, 'connect'), 'connect');
    assert.deepEqual([d.remoteAddress, d.remotePort, d.remoteFamily], ['127.0.0.1', port, 'IPv4']);
    d.resume();
    await bounded(closed(d), 'close');
    await closeServer(srv);
    await guard.check();
  });

  test(`resetAndDestroy(): never connected, ERR_SOCKET_CLOSED; while connecting, a reset once connected (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const s = new (impl.Socket as typeof net.Socket)();
    // listening for 'close' first: node:net emits it on the same tick as 'error'
    const sClosed = closed(s);
    s.resetAndDestroy();
    const [err] = (await bounded(once(s, 'error'), "'error'")) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ERR_SOCKET_CLOSED');
    assert.equal(err.message, 'Socket is closed');
    await bounded(sClosed, 'close');

    const peerErrors: string[] = [];
    let peerClosed!: () => void;
    const peerDone = new Promise<void>((r) => (peerClosed = r));
    const srv = net.createServer((p) => {
      p.on('error', (e: NodeJS.ErrnoException) => peerErrors.push(e.code!));
      p.on('close', () => peerClosed());
      p.resume();
    });
    const port = await listen(srv);
    const c = connectOn(impl, { port, host: '127.0.0.1' });
    const cClosed = closed(c);
    c.resetAndDestroy();
    await bounded(once(c, 'connect'), 'connect');
    assert.equal(await bounded(cClosed, 'close'), false);
    await bounded(peerDone, 'the peer closed');
    assert.deepEqual(peerErrors, ['ECONNRESET']);
    await closeServer(srv);
    await guard.check();
  });

  test(`server.close() with a non-function neither throws nor calls it, and closes (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = (impl.createServer as typeof net.createServer)();
    await listen(srv);
    assert.doesNotThrow(() => srv.close('not a function' as unknown as () => void));
    assert.equal(srv.listening, false);
    await bounded(once(srv, 'close'), "'close'");
    await guard.check();
  });
}
