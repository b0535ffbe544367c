/**
 * maio's own API on unix domain sockets: createServer().listen(path) and
 * connect(path), byte-exact bulk transfer both ways at once, many
 * connections, an abstract name, an adopted fd, zero-copy left alone,
 * forward() and sendFile() in each mode, and close: the socket file goes,
 * every buffer returns to the pool. Paths live
 * in a temporary directory under os.tmpdir().
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../src/core/native';
import { forward } from '../../src/paths/forward';
import { currentRing } from '../../src/ring/current';
import { createServer, connect, type Server } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { unixSockaddr } from '../../src/net/unix-address';
import { bounded, closed, maioDrain, maioPump, poolGuard, netSkip } from './helpers';

const skip = netSkip;
const BULK = 4 << 20;

function tempDir(): { dir: string; done(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-unix-'));
  return { dir, done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

async function accepted(server: Server, client: Socket): Promise<Socket> {
  const [[peer]] = (await bounded(Promise.all([once(server, 'connection'), once(client, 'connect')]), 'connect and accept')) as [[Socket], unknown[]];
  return peer;
}

test('listen(path) and connect(path): a few MiB each way at once, byte-exact; the socket file goes at close', { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const file = path.join(t.dir, 'bulk.sock');
  const server = createServer({ allowHalfOpen: true });
  assert.equal(await bounded(server.listenAsync(file), 'listen'), file);
  assert.equal(server.address(), file);
  assert.ok(fs.statSync(file).isSocket());
  const client = connect(file, () => undefined);
  assert.equal(client.connecting, true);
  const peer = await accepted(server, client);
  // no IP, no port on either end (as node:net), and the TCP option calls do nothing
  for (const s of [client, peer]) {
    assert.equal(s.remoteAddress, undefined);
    assert.equal(s.remotePort, undefined);
    assert.equal(s.localAddress, undefined);
    assert.deepEqual(s.address(), {});
    assert.equal(s.setNoDelay(true), s);
    assert.equal(s.setKeepAlive(true, 5), s);
  }
  const bothClosed = Promise.all([closed(client), closed(peer)]);
  const toPeer = maioDrain(peer);
  const toClient = maioDrain(client);
  const [sentUp, sentDown] = await bounded(Promise.all([maioPump(client, BULK, 'mixed', 1), maioPump(peer, BULK, 'mixed', 2)]), 'both pumps');
  const [up, down] = await bounded(Promise.all([toPeer, toClient]), 'both drains');
  assert.deepEqual(up, { hash: sentUp, bytes: BULK });
  assert.deepEqual(down, { hash: sentDown, bytes: BULK });
  assert.deepEqual(await bounded(bothClosed, 'both close'), [false, false]);
  server.close();
  await bounded(once(server, 'close'), "the server's close");
  assert.equal(fs.existsSync(file), false, 'the socket file is removed at close');
  assert.equal(server.address(), null);
  t.done();
  await guard.check();
});

test('many connections to one unix server, each echoed byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const file = path.join(t.dir, 'many.sock');
  const server = createServer((s) => {
    s.on('data', (buf) => s.send(buf.retain()));
    s.on('end', () => s.end());
  });
  await bounded(server.listenAsync({ path: file, backlog: 1024 }), 'listen');
  const N = 200;
  const clients = await bounded(
    Promise.all(
      Array.from({ length: N }, (_, i) => {
        const c = connect({ path: file });
        const msg = `connection ${i} `.repeat(1 + (i % 7));
        return new Promise<string>((resolve, reject) => {
          let got = '';
          c.once('connect', () => {
            c.write(msg);
            c.end();
          });
          c.on('data', (buf) => (got += Buffer.from(buf.bytes).toString()));
          c.once('error', reject);
          c.once('close', () => resolve(got === msg ? 'ok' : `connection ${i}: got ${JSON.stringify(got.slice(0, 40))}`));
        });
      }),
    ),
    `${N} echoes`,
  );
  assert.deepEqual(clients, new Array(N).fill('ok'));
  await bounded(until0(() => server.connections), 'the server sees every connection close');
  server.close();
  await bounded(once(server, 'close'), "the server's close");
  assert.equal(fs.existsSync(file), false);
  t.done();
  await guard.check();
});

/** Everything a maio socket receives until the peer's FIN, as text. */
function readAll(s: Socket): Promise<string> {
  let got = '';
  s.on('data', (buf) => (got += Buffer.from(buf.bytes).toString()));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(got));
    s.once('error', reject);
  });
}

async function until0(count: () => number): Promise<void> {
  while (count() !== 0) await new Promise((r) => setTimeout(r, 5));
}

test('an abstract name: no file, address() is the name, connect() reaches it', { skip }, async () => {
  const guard = poolGuard();
  const name = `\0maio-unix-test-${process.pid}-${Date.now()}`;
  const server = createServer((s) => s.end(Buffer.from('abstract')));
  assert.equal(await bounded(server.listenAsync({ path: name }), 'listen'), name);
  const c = connect({ path: name });
  const cClosed = closed(c); // before 'end': the close may follow it within the same turn
  assert.equal(await bounded(readAll(c), 'data'), 'abstract');
  await bounded(cClosed, 'close');
  server.close();
  await bounded(once(server, 'close'), "the server's close");
  await guard.check();
});

test('listen({ fd }) adopts a bound unix socket; connect errors and bad paths are typed', { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const file = path.join(t.dir, 'fd.sock');
  const n = native();
  const fd = n.sockOpen('unix', 'tcp');
  n.sockBind(fd, unixSockaddr(file));
  const server = createServer((s) => s.end(Buffer.from('by fd')));
  assert.equal(await bounded(server.listenAsync({ fd }), 'listen'), file);
  const c = connect(file);
  const cClosed = closed(c);
  assert.equal(await bounded(readAll(c), 'data'), 'by fd');
  await bounded(cClosed, 'close');
  server.close();
  await bounded(once(server, 'close'), "the server's close");
  // the server closed the fd it adopted (node:net does too); the file was not its own to remove
  assert.throws(() => n.sockGetInt(fd, 1, 3), { code: 'EBADF' });
  assert.equal(fs.existsSync(file), true);

  const missing = connect(path.join(t.dir, 'nobody-here.sock'));
  const [err] = (await bounded(once(missing, 'error'), "connect's error").catch((e: unknown) => [e])) as [NodeJS.ErrnoException & { address?: string }];
  assert.equal(err.code, 'ENOENT');
  assert.equal(err.syscall, 'connect');
  assert.equal(err.address, path.join(t.dir, 'nobody-here.sock'));

  assert.throws(() => connect({ path: `/tmp/${'x'.repeat(120)}` }), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => createServer().listen({ path: '' }), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => createServer().listen({ fd: -1 }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => createServer().listen({ path: file, port: 0 }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => createServer().listen({ path: file, fd: 0 }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => connect({ path: file, port: 80 }), { code: 'ERR_MAIO_INVALID_ARG' });
  // not a socket: listen's 'error' is EINVAL, as node:net's
  const notSocket = fs.openSync(path.join(t.dir, 'plain-file'), 'w');
  const bad = createServer();
  bad.listen({ fd: notSocket });
  const [listenErr] = (await bounded(once(bad, 'error'), "listen's error")) as [NodeJS.ErrnoException];
  assert.equal(listenErr.code, 'EINVAL');
  assert.equal(listenErr.syscall, 'listen');
  assert.equal(bad.listening, false);
  fs.closeSync(notSocket);
  t.done();
  await guard.check();
});

test("zero-copy sends never go out on a unix socket, not even with zeroCopy 'always': plain from the start, no probing", { skip }, async () => {
  const guard = poolGuard();
  const t = tempDir();
  const file = path.join(t.dir, 'zc.sock');
  const server = createServer(); // 'auto' here, 'always' on the client: both stay plain
  await bounded(server.listenAsync(file), 'listen');
  const client = connect({ path: file, zeroCopy: 'always' });
  const peer = await accepted(server, client);
  const bothClosed = Promise.all([closed(client), closed(peer)]);
  for (const s of [client, peer]) {
    const z = s.stats().zeroCopy;
    assert.equal(z.state, 'plain');
    assert.match(z.reason, /unix domain socket/);
  }
  const got = maioDrain(peer);
  const sent = await maioPump(client, 1 << 20, 'send', 3);
  assert.deepEqual(await bounded(got, 'drain'), { hash: sent, bytes: 1 << 20 });
  const z = client.stats().zeroCopy;
  assert.equal(z.zcSends, 0);
  assert.equal(z.zeroCopyBytesSent, 0);
  assert.ok(z.plainBytes >= 1 << 20, `plain bytes ${z.plainBytes}`);
  assert.equal(z.state, 'plain');
  await bounded(bothClosed, 'close');
  server.close();
  await bounded(once(server, 'close'), "the server's close");
  t.done();
  await guard.check();
});

/** A connected pair of maio sockets over a unix socket in `dir`: [client, accepted peer], and the server. */
async function unixPair(dir: string, name: string): Promise<{ server: Server; client: Socket; peer: Socket }> {
  const server = createServer({ allowHalfOpen: true });
  await bounded(server.listenAsync(path.join(dir, name)), 'listen');
  const client = connect({ path: path.join(dir, name), allowHalfOpen: true });
  const peer = await accepted(server, client);
  return { server, client, peer };
}

async function stop(server: Server): Promise<void> {
  server.close();
  await bounded(once(server, 'close'), "the server's close");
}

for (const mode of ['buffers', 'splice'] as const) {
  test(`forward() between unix sockets, mode '${mode}': a few MiB byte-exact`, { skip: skip || (mode === 'splice' && !currentRing().capabilities.splice ? 'splice needs io_uring' : false) }, async () => {
    const guard = poolGuard();
    const t = tempDir();
    // source client -> [peer a] forward [b client] -> sink peer
    const src = await unixPair(t.dir, 'src.sock');
    const dst = await unixPair(t.dir, 'dst.sock');
    const fwd = forward(src.peer, dst.client, { mode });
    assert.equal(fwd.mode, mode);
    const done = once(fwd, 'done');
    const got = maioDrain(dst.peer);
    const sent = await maioPump(src.client, BULK, 'mixed', 4);
    assert.deepEqual(await bounded(got, 'the sink'), { hash: sent, bytes: BULK });
    const [err, bytes] = (await bounded(done, "the forwarder's done")) as [Error | null, number];
    assert.equal(err, null);
    assert.equal(bytes, BULK);
    for (const s of [src.client, src.peer, dst.client, dst.peer]) s.destroy();
    await stop(src.server);
    await stop(dst.server);
    t.done();
    await guard.check();
  });
}

for (const mode of ['sendfile', 'splice'] as const) {
  test(`sendFile() to a unix socket, mode '${mode}': the file's bytes, exact`, { skip: skip || (mode === 'splice' && !currentRing().capabilities.splice ? 'splice needs io_uring' : false) }, async () => {
    const guard = poolGuard();
    const t = tempDir();
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
    const file = path.join(t.dir, 'data.bin');
    fs.writeFileSync(file, data);
    const { server, client, peer } = await unixPair(t.dir, 'file.sock');
    const got = maioDrain(client);
    assert.equal(await bounded(peer.sendFile(file, { mode }), 'sendFile'), data.length);
    peer.end();
    const r = await bounded(got, 'the receiver');
    assert.equal(r.bytes, data.length);
    assert.equal(r.hash, createHash('sha256').update(data).digest('hex'));
    client.destroy();
    peer.destroy();
    await stop(server);
    t.done();
    await guard.check();
  });
}
