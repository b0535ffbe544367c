// UdpSocket with host names, on real loopback sockets, both backends: bind,
// connect, send, sendSegments and send(msg) to 'localhost' resolve through
// dns.lookup; a name that does not resolve fails with dns.lookup's own error
// (ENOTFOUND, node's shape) in the callback, the promise or 'error'; the
// socket's family is what the lookup is asked for; buffers are held while a
// name resolves and come back to the pool whatever happens.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dns from 'node:dns';
import { createUdpSocket, defaultPool, type IoPool, type UdpMessage, type UdpSocket } from '../../src/index';
import { bounded, netSkip as skip, poolGuard, until } from '../net/helpers';

const NOWHERE = 'nowhere.invalid';

function datagram(pool: IoPool, text: string) {
  const buf = pool.alloc(text.length);
  buf.setLength(text.length);
  buf.bytes.set(Buffer.from(text));
  return buf;
}

function closeAll(...socks: UdpSocket[]): Promise<void[]> {
  return Promise.all(socks.map((s) => new Promise<void>((r) => s.close(r))));
}

/** The next datagram's text and source. */
function next(s: UdpSocket): Promise<[string, number]> {
  return new Promise((r) => s.once('message', (m: UdpMessage, from) => r([Buffer.from(m.bytes).toString(), from.port])));
}

/** What dns.lookup itself says about a name (the error maio must hand on as it is). */
function lookupError(host: string, family: 4 | 6): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve, reject) => dns.lookup(host, family, (err) => (err ? resolve(err) : reject(new Error(`${host} resolved`)))));
}

const shape = (e: NodeJS.ErrnoException & { hostname?: string }) => ({ code: e.code, errno: e.errno, syscall: e.syscall, hostname: e.hostname, message: e.message });

test("bind, connect, send, sendSegments and send(msg) to 'localhost': looked up (A for udp4), byte-exact", { skip }, async () => {
  const guard = poolGuard(defaultPool());
  const rx = createUdpSocket({ type: 'udp4' });
  const addr = await rx.bind(0, 'localhost');
  assert.equal(addr.address, '127.0.0.1');
  const tx = createUdpSocket({ type: 'udp4' });
  const buf = datagram(tx.pool, 'to localhost');
  let got = next(rx);
  let sentErr: Error | null | undefined;
  tx.send(buf, addr.port, 'localhost', (err) => (sentErr = err));
  assert.equal(buf.lent, true, 'held from the send on, while the name resolves');
  const [text, from] = await bounded(got, 'the datagram');
  assert.equal(text, 'to localhost');
  await until(() => sentErr !== undefined, 'the send callback');
  assert.equal(sentErr, null);
  assert.equal(from, tx.address().port, 'the first send bound the socket');

  // An echo through a name: the received message goes back from its own buffer.
  rx.once('message', (m, f) => rx.send(m, f.port, 'localhost'));
  got = next(tx);
  tx.send(datagram(tx.pool, 'echo me'), addr.port, '127.0.0.1');
  assert.equal((await bounded(got, 'the echo'))[0], 'echo me');

  const c = createUdpSocket({ type: 'udp4' });
  const connecting = c.connect(addr.port, 'localhost');
  assert.equal(c.connected, false, 'connected once the name resolved');
  await connecting;
  assert.equal(c.connected, true);
  assert.equal(c.remoteAddress().address, '127.0.0.1');
  got = next(rx);
  c.send(datagram(c.pool, 'connected'));
  assert.equal((await bounded(got, 'the connected send'))[0], 'connected');

  if (tx.stats().gso.enabled) {
    const seg = tx.pool.alloc(30);
    seg.setLength(30);
    seg.bytes.set(Buffer.from('aaaaaaaaaabbbbbbbbbbcccccccccc'));
    const texts: string[] = [];
    rx.on('message', (m) => texts.push(Buffer.from(m.bytes).toString()));
    tx.sendSegments(seg, 10, addr.port, 'localhost');
    await until(() => texts.length === 3, 'three segments');
    assert.deepEqual(texts, ['aaaaaaaaaa', 'bbbbbbbbbb', 'cccccccccc']);
  }
  await closeAll(rx, tx, c);
  await guard.check();
});

test("a name that does not resolve: dns.lookup's error as it is, in the callback, the promise or 'error'; the buffer goes back", { skip }, async () => {
  const guard = poolGuard(defaultPool());
  const want = shape(await lookupError(NOWHERE, 4));
  const s = createUdpSocket({ type: 'udp4' });
  const buf = datagram(s.pool, 'lost');
  const err = await new Promise<Error | null>((r) => s.send(buf, 9, NOWHERE, r));
  assert.ok(err);
  assert.deepEqual(shape(err as NodeJS.ErrnoException), want);
  assert.equal(buf.released, true, 'ownership went with the send');
  // Without a callback: 'error'.
  const e2 = new Promise<Error>((r) => s.once('error', r));
  s.send(datagram(s.pool, 'lost too'), 9, NOWHERE);
  assert.deepEqual(shape((await bounded(e2, "'error'")) as NodeJS.ErrnoException), want);
  await assert.rejects(s.connect(9, NOWHERE), (e: NodeJS.ErrnoException) => (assert.deepEqual(shape(e), want), true));
  assert.equal(s.connected, false);
  await assert.rejects(s.bind(0, NOWHERE), (e: NodeJS.ErrnoException) => (assert.deepEqual(shape(e), want), true));
  // Still usable: the failed bind left it unbound.
  assert.equal((await s.bind(0, '127.0.0.1')).address, '127.0.0.1');
  // Bad ports are refused at once, before any lookup.
  const kept = datagram(s.pool, 'x');
  assert.throws(() => s.send(kept, 70000, 'localhost'), { code: 'ERR_MAIO_BAD_PORT' });
  assert.equal(kept.lent, false, 'a refused send leaves the buffer with its owner');
  kept.release();
  await closeAll(s);
  await guard.check();
});

test("the socket's family picks what is looked up (the lookup option sees it); a close while a name resolves gives the buffer back", { skip }, async () => {
  const guard = poolGuard(defaultPool());
  const asked: [string, number][] = [];
  let release: (() => void) | null = null;
  const lookup = (host: string, family: 4 | 6, cb: (err: Error | null, address: string, family?: number) => void) => {
    asked.push([host, family]);
    if (host === 'slow.test') release = () => cb(null, '::1', 6);
    else setImmediate(() => cb(null, family === 6 ? '::1' : '127.0.0.1', family));
  };
  const rx = createUdpSocket({ type: 'udp6' });
  const { port } = await rx.bind(0, '::1');
  const tx = createUdpSocket({ type: 'udp6', lookup });
  const got = next(rx);
  tx.send(datagram(tx.pool, 'over AAAA'), port, 'v6.test');
  assert.equal((await bounded(got, 'the datagram'))[0], 'over AAAA');
  const u4 = createUdpSocket({ type: 'udp4', lookup });
  await u4.bind(0, 'v4.test');
  assert.equal(u4.address().address, '127.0.0.1');
  assert.deepEqual(asked, [
    ['v6.test', 6],
    ['v4.test', 4],
  ]);

  // Closed while 'slow.test' resolves: the send fails with ERR_MAIO_CLOSED and its buffer is freed.
  const buf = datagram(tx.pool, 'never');
  const failed = new Promise<Error | null>((r) => tx.send(buf, port, 'slow.test', r));
  await until(() => release !== null, 'the lookup started');
  const closed = new Promise<void>((r) => tx.close(r));
  await closed;
  release!();
  const err = await bounded(failed, 'the send callback');
  assert.equal((err as { code?: string })?.code, 'ERR_MAIO_CLOSED');
  assert.equal(buf.released, true);
  assert.throws(() => createUdpSocket({ type: 'udp4', lookup: 'dns' as never }), { code: 'ERR_MAIO_INVALID_ARG' });
  await closeAll(rx, u4);
  await guard.check();
});
