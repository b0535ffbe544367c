/**
 * maio proxy and forward(): half-close through the proxy (bytes after a FIN
 * still arrive), resets from either side, and 'error' events that nobody
 * listens to (no crash).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { forward, forwardBoth } from '../../src/paths/forward';
import { Proxy } from '../../src/paths/proxy';
import { receive, until } from './helpers';
import { bufferSkip, maioPair, sendChunks, spliceSkip } from './maio-helpers';
import { client, closed, upstream } from './proxy-helpers';

const MiB = 1 << 20;
const local = (port: number) => ({ host: '127.0.0.1', port });

/**
 * One client connection through a Proxy to a recording upstream; x is the side
 * named by `first`, y the other; `ends` collects each connection's end error.
 */
async function proxied(mode: 'buffers' | 'splice', first: 'client' | 'upstream') {
  const up = await upstream('u');
  const proxy = new Proxy({ listen: local(0), upstreams: [local(up.port)], mode });
  const ends: (Error | null)[] = [];
  proxy.on('connectionClose', (_info: unknown, err: Error | null) => ends.push(err));
  const addr = await proxy.listen();
  const c = await client(addr.port);
  await until(() => up.conns.length === 1, 'upstream connection');
  const U = up.conns[0]!;
  const [x, y] = first === 'client' ? [c, U] : [U, c];
  return { up, proxy, ends, c, U, x, y };
}

for (const [mode, first] of [
  ['buffers', 'client'],
  ['buffers', 'upstream'],
  ['splice', 'client'],
  ['splice', 'upstream'],
] as const) {
  const skip = mode === 'splice' ? spliceSkip : bufferSkip;
  test(`proxy (${mode}) half-close: after the ${first}'s FIN the other side still sends 8 MiB, all of it arrives, then the connection ends`, { skip }, async () => {
    const { up, proxy, ends, c, x, y } = await proxied(mode, first);
    // x: a short message, then FIN.
    const atY = receive(y);
    x.end('request');
    const gotY = await atY;
    assert.equal(gotY.bytes, 7);
    // y answers after x's FIN, in random chunks, then ends.
    const atX = receive(x);
    const sent = await sendChunks(y, 8 * MiB + 3, first === 'client' ? 21 : 22);
    const gotX = await atX;
    assert.equal(gotX.bytes, 8 * MiB + 3);
    assert.equal(gotX.digest, sent);
    await until(() => proxy.connections === 0, 'the connection to end');
    const st = proxy.stats();
    assert.equal(st.completed, 1);
    assert.equal(st.errors, 0);
    assert.deepEqual(first === 'client' ? [st.bytesUp, st.bytesDown] : [st.bytesDown, st.bytesUp], [7, 8 * MiB + 3]);
    assert.deepEqual(ends, [null]);
    c.destroy();
    await up.close();
    await proxy.close();
  });

  test(`proxy (${mode}) reset: a reset by the ${first} closes the other side, and the error is surfaced (event, stats)`, { skip }, async () => {
    const { up, proxy, ends, c, x, y } = await proxied(mode, first);
    x.write('some bytes');
    await once(y, 'data');
    const yClosed = closed(y);
    x.resetAndDestroy();
    await yClosed;
    await until(() => proxy.connections === 0, 'the connection to end');
    assert.equal(ends.length, 1);
    const err = ends[0] as NodeJS.ErrnoException;
    assert.ok(err, 'the connection ended with an error');
    assert.ok(['ECONNRESET', 'EPIPE'].includes(err.code!), `${err.code}: ${err.message}`);
    assert.equal(typeof err.errno, 'number');
    assert.equal(proxy.stats().errors, 1);
    assert.equal(proxy.stats().completed, 1);
    await up.close();
    await proxy.close();
  });
}

test("Proxy mode 'splice' on the epoll backend is refused at construction, not at the first connection", { skip: bufferSkip === false && spliceSkip !== false ? false : 'runs on the epoll backend only' }, () => {
  assert.throws(() => new Proxy({ listen: local(0), upstreams: [local(1)], mode: 'splice' }), /needs the io_uring backend/);
});

test('a Proxy without an error listener: a listen failure rejects listen() and does not crash', { skip: bufferSkip }, async () => {
  const busy = net.createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  const port = (busy.address() as net.AddressInfo).port;
  const proxy = new Proxy({ listen: local(port), upstreams: [local(1)] });
  await assert.rejects(proxy.listen(), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
  // A turn later: no 'error' was thrown from an emit (the test would fail with an uncaught exception).
  await new Promise((r) => setImmediate(r));
  await proxy.close();
  busy.close();
});

for (const mode of ['buffers', 'splice'] as const) {
  test(`${mode}: forward()/forwardBoth() with nobody listening for 'error': a reset does not crash, finished() rejects`, { skip: mode === 'splice' ? spliceSkip : bufferSkip }, async () => {
    const uncaught: Error[] = [];
    const onUncaught = (e: Error) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      for (const both of [false, true]) {
        const p = await maioPair();
        p.C.on('error', () => {});
        p.U.on('error', () => {});
        const f = both ? forwardBoth(p.a, p.b, { mode }) : forward(p.a, p.b, { mode });
        p.C.write('x'.repeat(1000));
        const fwd = both ? (f as ReturnType<typeof forwardBoth>).aToB : (f as ReturnType<typeof forward>);
        await until(() => fwd.bytes === 1000, 'first bytes');
        p.C.resetAndDestroy();
        await assert.rejects(both ? (f as ReturnType<typeof forwardBoth>).finished : fwd.finished(), (e: NodeJS.ErrnoException) => typeof e.code === 'string');
        await until(() => p.a.destroyed && p.b.destroyed, 'both sockets destroyed');
        await new Promise((r) => setTimeout(r, 20));
        p.close();
      }
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  test(`${mode}: a reset by the upstream side closes the client side; the error is emitted once`, { skip: mode === 'splice' ? spliceSkip : bufferSkip }, async () => {
    const p = await maioPair();
    p.C.on('error', () => {});
    p.U.on('error', () => {});
    const relay = forwardBoth(p.a, p.b, { mode });
    const errs: Error[] = [];
    relay.on('error', (e) => errs.push(e));
    p.U.write('y'.repeat(1000));
    await until(() => relay.bToA.bytes === 1000, 'first bytes');
    const cClosed = closed(p.C);
    p.U.resetAndDestroy();
    await assert.rejects(relay.finished, (e: NodeJS.ErrnoException) => {
      assert.ok(['ECONNRESET', 'EPIPE'].includes(e.code!), `${e.code}: ${e.message}`);
      return true;
    });
    await cClosed;
    await until(() => p.a.destroyed && p.b.destroyed, 'both sockets destroyed');
    assert.equal(errs.length, 1);
    p.close();
  });
}
