/**
 * Socket and server lifecycles on real loopback sockets: half-close, peer
 * reset mid-send, refused and timed-out connects, abort, server close with
 * open connections, backpressure by read quota, the data-handler buffer
 * lifetime rule, and the same API on the epoll fallback (MAIO_BACKEND=epoll).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { BufferForeignError, BufferReleasedError } from '../../src/core/errors';
import { getsockoptBytes } from '../../src/net/sockopt';
import { createServer, connect } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { createPool, defaultPool } from '../../src/pool/pool';
import type { IoBuffer } from '../../src/pool/buffer';
import { closed, silentListener, nextData, poolGuard, netSkip, until } from './helpers';

const skip = netSkip;

async function connected(port: number, opts: Record<string, unknown> = {}): Promise<Socket> {
  const c = connect({ port, host: '127.0.0.1', ...opts });
  await once(c, 'connect');
  return c;
}

test('half-close: the client ends first, the server still answers, then ends', { skip }, async () => {
  const guard = poolGuard();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const got: Buffer[] = [];
    s.on('data', (b) => got.push(Buffer.from(b.bytes)));
    s.on('end', () => {
      assert.equal(s.readyState, 'writeOnly');
      s.write(`you said ${Buffer.concat(got).toString()}`);
      s.end();
    });
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = await connected(port, { allowHalfOpen: true });
  const done = closed(c);
  const got: Buffer[] = [];
  c.on('data', (b) => got.push(Buffer.from(b.bytes)));
  c.write('hello');
  c.end();
  await once(c, 'finish');
  assert.equal(c.readyState, 'readOnly');
  await once(c, 'end');
  assert.equal(Buffer.concat(got).toString(), 'you said hello');
  await done;
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('half-close: the server ends first, the client keeps writing', { skip }, async () => {
  const guard = poolGuard();
  let received = '';
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.end('bye');
    s.on('data', (b) => (received += Buffer.from(b.bytes).toString()));
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = await connected(port, { allowHalfOpen: true });
  const done = closed(c);
  let got = '';
  c.on('data', (b) => (got += Buffer.from(b.bytes).toString()));
  await once(c, 'end');
  assert.equal(got, 'bye');
  c.write('still here');
  c.end(' and done');
  await done;
  await until(() => received === 'still here and done', 'the bytes after the server ended');
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('peer reset in the middle of a large send: the error surfaces and every buffer is back', { skip }, async () => {
  const guard = poolGuard();
  const server = net.createServer((s) => {
    let n = 0;
    s.on('data', (d) => {
      n += d.length;
      if (n > 1 << 20) s.resetAndDestroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = await connected((server.address() as net.AddressInfo).port);
  const done = closed(c);
  const errors: any[] = [];
  c.on('error', (e) => errors.push(e));
  const pool = c.pool;
  let sent = 0;
  let failedCb = 0;
  // Queue far more than the socket buffers hold, half send(), half write().
  outer: for (let i = 0; i < 256; i++) {
    const buf = pool.tryAlloc(65536);
    if (!buf) break;
    sent += 65536;
    const cb = (err?: Error | null) => {
      if (err) failedCb++;
    };
    if (i % 2) c.send(buf, cb);
    else {
      buf.release();
      c.write(Buffer.alloc(65536, i), cb);
    }
    if (c.destroyed) break outer;
    // Not events.once(c, 'drain'): it rejects on the 'error' this test waits for.
    if (c.writableNeedDrain) await Promise.race([new Promise((r) => c.once('drain', r)), done]);
    if (c.destroyed) break;
  }
  await done;
  assert.ok(sent > 1 << 20);
  assert.equal(errors.length, 1, `one error, got ${errors.map((e) => e.code)}`);
  assert.ok(['ECONNRESET', 'EPIPE'].includes(errors[0].code), errors[0].code);
  assert.equal(errors[0].syscall, errors[0].code === 'ECONNRESET' && errors[0].syscall === 'read' ? 'read' : errors[0].syscall);
  // A failed write cuts the stream short; a reset seen by the read side may come
  // just after the last queued chain completed (same completion batch).
  if (errors[0].syscall === 'write') assert.ok(c.bytesWritten < sent, 'not everything went out');
  else assert.ok(c.bytesWritten <= sent);
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('connect to a closed port: ECONNREFUSED shaped like node:net', { skip }, async () => {
  const guard = poolGuard();
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const c = connect(port, '127.0.0.1');
  const closing = closed(c);
  const [err] = (await once(c, 'error')) as [any];
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(err.errno, -111);
  assert.equal(err.syscall, 'connect');
  assert.equal(err.address, '127.0.0.1');
  assert.equal(err.port, port);
  assert.match(err.message, new RegExp(`connect ECONNREFUSED 127.0.0.1:${port}`));
  const hadError = await closing;
  assert.equal(hadError, true);
  await guard.check();
});

test('connect timeout: a listener whose accept queue is full never answers; ETIMEDOUT', { skip }, async () => {
  const silent = await silentListener();
  try {
    const port = silent.port;
    const c = connect({ port, host: '127.0.0.1', timeout: 300 });
    const closing = closed(c);
    const [err] = (await once(c, 'error')) as [any];
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(err.syscall, 'connect');
    await closing;
  } finally {
    silent.close();
  }
});

test('connect with an AbortSignal aborted already: fails with ABORT_ERR', { skip }, async () => {
  const ac = new AbortController();
  ac.abort();
  const c = connect({ port: 9, host: '127.0.0.1', signal: ac.signal });
  const closing = closed(c);
  const [err] = (await once(c, 'error')) as [any];
  assert.equal(err.code, 'ABORT_ERR');
  await closing;
});

test('connect aborted mid-connect (after connect(), before the peer answers): ABORT_ERR, no connect, everything back', { skip }, async () => {
  const guard = poolGuard();
  // A listener whose accept queue is full drops SYNs: the connect stays in flight until aborted.
  const silent = await silentListener();
  try {
    const port = silent.port;
    const ac = new AbortController();
    const c = connect({ port, host: '127.0.0.1', signal: ac.signal });
    let connected = false;
    c.on('connect', () => (connected = true));
    const closing = closed(c);
    const erred = once(c, 'error') as Promise<[any]>;
    // Let the connect reach the kernel (a few loop turns), then abort it there.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.connecting, true, 'still connecting when aborted');
    assert.ok(c.fd >= 0, 'the connect was started (the socket has its fd)');
    ac.abort(new Error('stop'));
    const [err] = await erred;
    assert.equal(err.code, 'ABORT_ERR');
    assert.equal((err.cause as Error)?.message, 'stop', "the signal's reason is the cause");
    assert.equal(await closing, true, "'close' with hadError");
    assert.equal(connected, false, "no 'connect' after the abort");
    assert.equal(c.destroyed, true);
    await guard.check();
  } finally {
    silent.close();
  }
});

test('server.close() with open connections: they go on; new ones are refused; close after the last', { skip }, async () => {
  const guard = poolGuard();
  const server = createServer((s) => s.on('data', (b) => s.send(b)));
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = await connected(port);
  await until(() => server.connections === 1, 'the connection');
  let serverClosed = false;
  server.close(() => (serverClosed = true));
  await new Promise((r) => setTimeout(r, 50));
  const pinged = nextData(c);
  c.write('ping');
  assert.equal(await pinged, 'ping');
  assert.equal(serverClosed, false, 'close waits for the open connection');
  const refused = connect(port, '127.0.0.1');
  const [err] = (await once(refused, 'error')) as [any];
  await until(() => refused.destroyed, 'refused socket closed');
  assert.equal(err.code, 'ECONNREFUSED');
  c.end();
  await until(() => serverClosed, 'server close');
  assert.equal(server.connections, 0);
  await guard.check();
});

test('backpressure: a consumer that keeps its buffers stops its socket; another keeps flowing', { skip }, async () => {
  const guard = poolGuard();
  const QUOTA = 256 * 1024;
  const TOTAL = 8 << 20;
  const kept: IoBuffer[] = [];
  const sockets: Socket[] = [];
  let flowing = 0;
  const server = createServer({ readQuota: QUOTA }, (s) => {
    const which = sockets.push(s);
    s.on('data', (b) => {
      if (which === 1) kept.push(b.retain());
      else flowing += b.length;
    });
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const stuck = net.connect(port, '127.0.0.1');
  await once(stuck, 'connect');
  await until(() => sockets.length === 1, 'first connection');
  const free = net.connect(port, '127.0.0.1');
  await once(free, 'connect');
  await until(() => sockets.length === 2, 'second connection');
  const chunk = Buffer.alloc(TOTAL, 1);
  stuck.write(chunk);
  free.write(chunk);
  await until(() => flowing === TOTAL, 'the free socket gets everything');
  await until(() => sockets[0].stats().readBlocked, 'the keeping socket stops reading');
  await new Promise((r) => setTimeout(r, 100));
  const held = sockets[0].stats();
  assert.ok(held.bytesRead < TOTAL, `stopped early: read ${held.bytesRead}`);
  assert.ok(held.receiveBytesHeld >= QUOTA);
  assert.ok(held.receiveBytesHeld <= QUOTA + 32 * 65536, `bounded: ${held.receiveBytesHeld}`);
  // Let go: it reads again, to the end.
  for (const b of kept.splice(0)) b.release();
  await until(() => {
    for (const b of kept.splice(0)) b.release();
    return sockets[0].bytesRead === TOTAL;
  }, 'the rest after release');
  for (const b of kept.splice(0)) b.release();
  stuck.destroy();
  free.destroy();
  await until(() => server.connections === 0, 'connections closed');
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('data handler lifetime: released after the handler, retained survives, sent is lent, use after release throws', { skip }, async () => {
  const guard = poolGuard();
  const seen: { buf: IoBuffer; what: string }[] = [];
  let sentBack: IoBuffer | undefined;
  const server = createServer((s) => {
    let i = 0;
    s.on('data', (b) => {
      const what = ['plain', 'retain', 'send'][i++ % 3]!;
      seen.push({ buf: b, what });
      if (what === 'retain') b.retain();
      if (what === 'send') {
        sentBack = b;
        s.send(b);
        assert.equal(b.lent, true);
      }
    });
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = await connected(port);
  const echoed = nextData(c);
  for (const m of ['one', 'two', 'three']) {
    const n = seen.length;
    c.write(m);
    await until(() => seen.length > n, `message ${m}`);
  }
  const [plain, retained, sent] = seen;
  assert.equal(plain!.buf.released, true);
  assert.throws(() => plain!.buf.bytes, BufferReleasedError);
  assert.equal(retained!.buf.released, false);
  assert.equal(Buffer.from(retained!.buf.bytes).toString(), 'two');
  retained!.buf.release();
  assert.throws(() => retained!.buf.bytes, BufferReleasedError);
  assert.equal(await echoed, 'three');
  await until(() => sentBack!.released, 'the sent buffer released after its send');
  assert.equal(sent!.what, 'send');
  // A buffer of another pool cannot be sent.
  const other = createPool({ size: 1 << 20 });
  const foreign = other.alloc(10);
  assert.throws(() => c.send(foreign), BufferForeignError);
  foreign.release();
  other.close();
  const closing = closed(c);
  c.destroy();
  await closing;
  await until(() => server.connections === 0, 'server side closed');
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('async iteration: buffers belong to the consumer until released; ends at FIN', { skip }, async () => {
  const guard = poolGuard();
  const server = createServer((s) => {
    s.write('abc');
    setTimeout(() => s.end('def'), 20);
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = await connected(port);
  const bufs: IoBuffer[] = [];
  for await (const b of c) {
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(b.released, false, 'still the consumer\'s after an await');
    bufs.push(b);
  }
  assert.equal(Buffer.concat(bufs.map((b) => Buffer.from(b.bytes))).toString(), 'abcdef');
  for (const b of bufs) b.release();
  await until(() => c.destroyed && c.readyState === 'closed', 'client closed');
  await until(() => server.connections === 0, 'server side closed');
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

/** TCP_INFO's tcpi_bytes_received: bytes the kernel took in for `fd`, read by the application or not. */
function kernelBytesReceived(fd: number): number {
  const info = getsockoptBytes(fd, 6 /* IPPROTO_TCP */, 11 /* TCP_INFO */, 136);
  assert.ok(info.length >= 136, 'TCP_INFO has tcpi_bytes_received (Linux 4.1+)');
  return Number(Buffer.from(info.buffer, info.byteOffset, info.length).readBigUInt64LE(128));
}

test('pause() stops data events; resume() delivers what waited', { skip }, async () => {
  const guard = poolGuard();
  let peer: Socket | undefined;
  const server = createServer((s) => (peer = s));
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const c = await connected(port);
  await until(() => peer !== undefined, 'peer');
  let got = '';
  c.on('data', (b) => (got += Buffer.from(b.bytes).toString()));
  c.pause();
  const before = kernelBytesReceived(c.fd);
  peer!.write('while paused');
  // The bytes reach c's kernel receive queue; paused, maio must leave them there.
  await until(() => kernelBytesReceived(c.fd) >= before + 12, "the bytes in c's kernel receive queue");
  // Turns of the loop in which an armed recv would complete (it did before pause() cancelled it).
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.stats().bytesRead, 0, 'paused: nothing read from the kernel');
  assert.equal(got, '');
  c.resume();
  await until(() => got === 'while paused', 'data after resume');
  assert.equal(c.stats().bytesRead, 12, 'read after resume');
  c.destroy();
  await until(() => server.connections === 0, 'closed');
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('IPv6 listen and connect; address(), remote and local ports; stats', { skip }, async (t) => {
  const server = createServer((s) => s.on('data', (b) => s.send(b)));
  let addr;
  try {
    addr = await server.listenAsync(0, '::1');
  } catch (e: any) {
    // No IPv6 loopback on this host (disabled, or no ::1): a skip, not a pass. Anything else fails.
    if (!['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EPROTONOSUPPORT'].includes(e?.code)) throw e;
    t.skip(`no IPv6 loopback here: listen('::1') failed with ${e.code}`);
    await new Promise<void>((r) => server.close(() => r()));
    return;
  }
  assert.equal(addr.family, 'IPv6');
  const c = await connected(addr.port, { host: '::1' });
  assert.equal(c.remoteAddress, '::1');
  assert.equal(c.remotePort, addr.port);
  assert.equal(typeof c.localPort, 'number');
  const v6 = nextData(c);
  c.write('v6');
  assert.equal(await v6, 'v6');
  const st = c.stats();
  assert.equal(st.bytesWritten, 2);
  assert.equal(st.bytesRead, 2);
  assert.equal(st.zeroCopy.state, 'plain');
  const closing = closed(c);
  c.destroy();
  await closing;
  await new Promise<void>((r) => server.close(() => r()));
});

test('MAIO_BACKEND=epoll (child processes): createServer and connect work on the fallback; backend() and the CLI banner say epoll', async () => {
  const index = path.join(__dirname, '..', '..', 'src', 'index.js');
  const code = `
    const maio = require(${JSON.stringify(index)});
    const server = maio.createServer((s) => s.on('data', (b) => s.send(b)));
    server.listen(0, '127.0.0.1', () => {
      const c = maio.connect(server.address().port, '127.0.0.1', () => c.write('ping over epoll'));
      c.once('data', (b) => {
        const got = Buffer.from(b.bytes).toString();
        const st = maio.stats();
        const pool = maio.defaultPool().stats();
        c.destroy();
        c.once('close', () => server.close(() => console.log(JSON.stringify({
          mode: maio.backend().mode, summary: maio.backend().summary, got,
          ringZc: maio.Ring.current().capabilities.zeroCopySend, submitted: st.ring && st.ring.submitted,
          poolId: pool.poolId, registered: pool.registered, registerError: pool.registerError,
        }))));
      });
    });`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, MAIO_BACKEND: 'epoll' }, encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.mode, 'epoll');
  assert.match(out.summary, /^maio backend: epoll \(.*forced by MAIO_BACKEND=epoll/);
  assert.equal(out.got, 'ping over epoll');
  assert.equal(out.ringZc, 'MSG_ZEROCOPY', 'the thread\'s Ring runs the epoll engine');
  assert.ok(out.submitted > 0, 'stats() reports the epoll engine');
  assert.ok(out.poolId >= 0, 'the default pool is attached to the ring (epoll engine)');
  assert.equal(out.registered, false);
  assert.match(out.registerError, /epoll/);

  const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
  const child = spawn(process.execPath, [cli, 'echo', '--port', '0'], { env: { ...process.env, MAIO_BACKEND: 'epoll' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    await until(() => /listening \d+\n/.test(stdout) || child.exitCode !== null, 'maio echo to listen');
    const port = Number(/listening (\d+)/.exec(stdout)?.[1]);
    assert.ok(port > 0, `listening line (stderr: ${stderr})`);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, 'one banner line');
    assert.match(lines[0]!, /^maio backend: epoll \(/);
    const c = net.connect(port, '127.0.0.1');
    await once(c, 'connect');
    c.write('hello');
    assert.equal((await once(c, 'data'))[0].toString(), 'hello');
    c.destroy();
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
  assert.equal(child.exitCode, 0);
});

void defaultPool;

test('accepted and connected sockets are both nonblocking and close-on-exec', { skip }, async () => {
  const flags = (fd: number) => {
    const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    assert.ok(m, `flags of fd ${fd}`);
    return parseInt(m[1], 8);
  };
  const O_NONBLOCK = 0o4000;
  const O_CLOEXEC = 0o2000000;
  let peer: Socket | undefined;
  const server = createServer((s) => (peer = s));
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const client = connect({ port, host: '127.0.0.1' });
  await once(client, 'connect');
  await until(() => peer !== undefined, 'the accepted socket');
  for (const [who, s] of [['accepted', peer!], ['connected', client]] as const) {
    const f = flags(s.fd);
    assert.ok(f & O_NONBLOCK, `${who} socket is blocking`);
    assert.ok(f & O_CLOEXEC, `${who} socket lacks close-on-exec`);
  }
  const done = Promise.all([closed(client), closed(peer!)]);
  client.destroy();
  peer!.destroy();
  await done;
  await new Promise<void>((r) => server.close(() => r()));
});
