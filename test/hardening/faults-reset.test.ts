/**
 * Faults: the peer resets (SO_LINGER 0) while maio has sends queued or a
 * receive armed, and the peer process is killed with SIGKILL in the middle
 * of a transfer in both directions. Each ends with the error surfaced in
 * node:net's shape, every received byte being the stream's (never garbage)
 * and every buffer back in the pool.
 *
 * Existing coverage this does not repeat: test/net/lifecycle.test.ts ('peer
 * reset in the middle of a large send', plain sends, in-process node:net
 * peer), test/net/compat.test.ts (reset after a write, maio/net adapter),
 * test/paths/forward.test.ts (reset propagation through a forwarder).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createServer, connect } from '../../src/net/server';
import { Ring } from '../../src/ring/ring';
import type { Socket } from '../../src/net/socket';
import type { IoBuffer } from '../../src/pool/buffer';
import { closed, netSkip, poolGuard, until } from '../net/helpers';
import { INDEX, PrefixChecker, assertErrno, exited, nodeChild, onUring, streamChunk } from './helpers';

const skip = netSkip;
const HELPERS = path.join(__dirname, 'helpers.js');

async function connected(port: number, opts: Record<string, unknown> = {}): Promise<Socket> {
  const c = connect({ port, host: '127.0.0.1', ...opts });
  await once(c, 'connect');
  return c;
}

/**
 * Sends the test stream from a maio socket (64 KiB pool buffers with send(),
 * or write() copies) until it is destroyed or `limit` bytes are queued.
 */
async function pumpUntilDead(sock: Socket, how: 'send' | 'write', limit: number): Promise<number> {
  const done = closed(sock);
  let at = 0;
  // The peer's FIN ends this side too (allowHalfOpen false): send() after that throws.
  while (!sock.destroyed && !sock.writableEnded && at < limit) {
    const n = 65536;
    if (how === 'send') {
      const buf = sock.pool.tryAlloc(n) ?? (await Promise.race([sock.pool.allocWait(n), done.then(() => null)]));
      if (buf === null) break;
      if (sock.destroyed || sock.writableEnded) {
        buf.release();
        break;
      }
      buf.bytes.set(streamChunk(at, n));
      sock.send(buf, () => {});
    } else {
      sock.write(streamChunk(at, n), () => {});
    }
    at += n;
    if (sock.writableNeedDrain) await Promise.race([new Promise((r) => sock.once('drain', r)), done]);
  }
  return at;
}

let cPeer: string | null | undefined;
after(() => {
  if (cPeer) fs.rmSync(path.dirname(cPeer), { recursive: true, force: true });
});
/** The C reset peer, compiled once into a temp dir; null without a C compiler. */
function cResetPeer(): string | null {
  if (cPeer !== undefined) return cPeer;
  const src = path.join(__dirname, '..', '..', '..', 'test', 'hardening', 'fixtures', 'reset-peer.c');
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'maio-reset-peer-')), 'reset-peer');
  const r = spawnSync('cc', ['-O2', '-o', out, src], { encoding: 'utf8' });
  cPeer = r.status === 0 ? out : null;
  return cPeer;
}

test('peer reset during receive: a node:net peer resets mid-stream while maio holds buffers; ECONNRESET, bytes are the stream, pool back', { skip }, async (t) => {
  const guard = poolGuard();
  const check = new PrefixChecker();
  const kept: IoBuffer[] = [];
  let accepted: Socket | undefined;
  const server = createServer((s) => {
    accepted = s;
    let i = 0;
    s.on('data', (b) => {
      check.push(b.bytes);
      if (i++ % 8 === 0) kept.push(b.retain()); // the application still holds some
    });
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  t.after(() => void server.close());
  const peer = net.connect(port, '127.0.0.1');
  peer.on('error', () => {});
  await once(peer, 'connect');
  await until(() => accepted !== undefined, 'the connection');
  const s = accepted!;
  const errs: any[] = [];
  s.on('error', (e) => errs.push(e));
  const sClosed = closed(s);
  // Far more than the socket buffers hold; reset once some of it arrived.
  peer.write(streamChunk(0, 32 << 20));
  await until(() => check.bytes >= 1 << 20, 'the first MiB');
  peer.resetAndDestroy();
  assert.equal(await sClosed, true, "'close' with hadError");
  assert.equal(errs.length, 1, `one error, got ${errs.map((e) => e.code)}`);
  assertErrno(errs[0], ['ECONNRESET'], ['read']);
  check.assertClean('maio receiver');
  assert.ok(check.bytes < 32 << 20, 'the reset cut the stream short');
  // Buffers the application holds stay valid and its own to release.
  for (const b of kept) assert.equal(b.released, false);
  for (const b of kept.splice(0)) b.release();
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('peer reset with the receive armed and idle, on the client and on the accepted side: ECONNRESET read, pool back', { skip }, async (t) => {
  const guard = poolGuard();
  // maio as client: the node:net server resets without ever sending.
  const nodeServer = net.createServer((s) => setTimeout(() => s.resetAndDestroy(), 20));
  await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
  t.after(() => void nodeServer.close());
  const c = await connected((nodeServer.address() as net.AddressInfo).port);
  const cErr = once(c, 'error');
  const cClosed = closed(c);
  const [e1] = (await cErr) as [any];
  assertErrno(e1, ['ECONNRESET'], ['read']);
  assert.equal(await cClosed, true);
  await new Promise<void>((r) => nodeServer.close(() => r()));
  // maio as server: the node:net client resets.
  let accepted: Socket | undefined;
  const server = createServer((s) => (accepted = s));
  const { port } = await server.listenAsync(0, '127.0.0.1');
  t.after(() => void server.close());
  const peer = net.connect(port, '127.0.0.1');
  peer.on('error', () => {});
  await once(peer, 'connect');
  await until(() => accepted !== undefined, 'the connection');
  const sErr = once(accepted!, 'error');
  const sClosed = closed(accepted!);
  peer.resetAndDestroy();
  const [e2] = (await sErr) as [any];
  assertErrno(e2, ['ECONNRESET'], ['read']);
  assert.equal(await sClosed, true);
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

for (const zeroCopy of ['never', 'always'] as const) {
  test(`peer reset during send from a C peer (SO_LINGER 0, another process), zeroCopy '${zeroCopy}': EPIPE/ECONNRESET, every buffer back`, { skip }, async (t) => {
    const bin = cResetPeer();
    if (bin === null) return t.skip('no C compiler (cc) for the C peer');
    const guard = poolGuard();
    let accepted: Socket | undefined;
    const server = createServer({ zeroCopy }, (s) => (accepted = s));
    const { port } = await server.listenAsync(0, '127.0.0.1');
    t.after(() => void server.close());
    const peer = spawn(bin, [String(port), String(2 << 20)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    peer.stdout!.on('data', (d) => (out += d));
    await until(() => accepted !== undefined, 'the C peer connects');
    const s = accepted!;
    const errs: any[] = [];
    s.on('error', (e) => errs.push(e));
    const sClosed = closed(s);
    const halfSend = pumpUntilDead(s, 'send', 1 << 30);
    const queued = await halfSend;
    assert.equal(await exited(peer), 0, `C peer: ${out}`);
    assert.match(out, /^read \d+/);
    assert.equal(await sClosed, true);
    assert.ok(queued >= 2 << 20, `queued ${queued}`);
    assert.equal(errs.length, 1, `one error, got ${errs.map((e) => e.code)}`);
    assertErrno(errs[0], ['ECONNRESET', 'EPIPE'], ['write', 'read']);
    // A failed send cuts the stream short; a reset seen first by the receive
    // may come after everything queued so far was sent.
    if (errs[0].syscall === 'write') assert.ok(s.bytesWritten < queued, 'the reset cut the sends short');
    else assert.ok(s.bytesWritten <= queued);
    const zc = s.stats().zeroCopy;
    if (zeroCopy === 'always' && onUring()) assert.ok(zc.zeroCopyBytesSent > 0, 'SEND_ZC was used');
    t.diagnostic(`queued ${queued}, written ${s.bytesWritten}, ${errs[0].code}/${errs[0].syscall}, zero-copy bytes ${zc.zeroCopyBytesSent}`);
    await new Promise<void>((r) => server.close(() => r()));
    await guard.check('the pool after the reset (zero-copy buffers come back at their notification)');
    // The ring's in-flight count (what holds the event loop and what close
    // waits for) comes back to zero: SEND_ZCs cancelled with their chain post
    // a notification after their -ECANCELED, and counting both drove it below
    // zero (the loop then exited with operations in flight).
    if (onUring()) await until(() => Ring.current()!.stats().inflight === 0, `ring inflight back to 0 (now ${Ring.current()!.stats().inflight})`);
  });
}

/**
 * The peer is a child process (node:net) that sends the test stream and
 * reads (discarding) what maio sends; it is killed with SIGKILL mid-transfer.
 */
const childPeer = `
const net = require('node:net');
const { streamChunk } = require(${JSON.stringify(HELPERS)});
const c = net.connect(Number(process.argv[1]), '127.0.0.1', () => {
  let at = 0;
  const pump = () => { while (at < (1 << 30) && c.write(streamChunk(at, 65536))) at += 65536; at += 65536; };
  c.on('drain', pump);
  pump();
});
let got = 0;
c.on('data', (d) => { got += d.length; if (got >= (2 << 20) && !c.said) { c.said = true; console.log('got ' + got); } });
c.on('error', () => {});
`;

for (const zeroCopy of ['never', 'always'] as const) {
  test(`peer killed with SIGKILL during a transfer in both directions (zeroCopy '${zeroCopy}'): an error or an end, never garbage, pool back`, { skip }, async (t) => {
    const guard = poolGuard();
    const check = new PrefixChecker();
    let accepted: Socket | undefined;
    const server = createServer({ zeroCopy }, (s) => {
      accepted = s;
      s.on('data', (b) => check.push(b.bytes));
    });
    const { port } = await server.listenAsync(0, '127.0.0.1');
    t.after(() => void server.close());
    const p = nodeChild(childPeer, { argv: [String(port)] });
    try {
      await until(() => accepted !== undefined, 'the child connects');
      const s = accepted!;
      const errs: any[] = [];
      let ended = false;
      s.on('error', (e) => errs.push(e));
      s.on('end', () => (ended = true));
      const sClosed = closed(s);
      const pumping = pumpUntilDead(s, 'send', 1 << 30);
      await p.line(/^got \d+/, 'the child reading 2 MiB');
      await until(() => check.bytes >= 2 << 20, 'maio receiving 2 MiB');
      p.child.kill('SIGKILL');
      assert.equal(await exited(p.child), 'SIGKILL');
      await pumping;
      await sClosed;
      check.assertClean('maio receiver');
      // The kernel closes the dead process's socket: a RST (it had unread
      // bytes), seen by maio's send or receive; or, when maio's sends were
      // all read, a FIN first ('end') and the reset on the next send.
      assert.ok(errs.length === 1 || (errs.length === 0 && ended), `an error or an end: errors ${errs.map((e) => e.code)}, ended ${ended}`);
      if (errs.length) assertErrno(errs[0], ['ECONNRESET', 'EPIPE'], ['read', 'write']);
      t.diagnostic(`received ${check.bytes}, written ${s.bytesWritten}, ${errs[0]?.code ?? 'end'}/${errs[0]?.syscall ?? ''}`);
      await new Promise<void>((r) => server.close(() => r()));
      await guard.check();
    } finally {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
  });
}

test('maio as the client, the server process killed with SIGKILL while maio receives and sends: pool back', { skip }, async (t) => {
  const guard = poolGuard();
  const serverCode = `
const net = require('node:net');
const { streamChunk } = require(${JSON.stringify(HELPERS)});
const srv = net.createServer((c) => {
  c.on('error', () => {});
  let at = 0;
  const pump = () => { while (c.write(streamChunk(at, 65536))) at += 65536; at += 65536; };
  c.on('drain', pump);
  pump();
  c.resume();
});
srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
`;
  const p = nodeChild(serverCode);
  try {
    const port = Number((await p.line(/^port (\d+)/, 'the child listening'))[1]);
    const check = new PrefixChecker();
    const c = await connected(port);
    c.on('data', (b) => check.push(b.bytes));
    const errs: any[] = [];
    c.on('error', (e) => errs.push(e));
    const cClosed = closed(c);
    const pumping = pumpUntilDead(c, 'write', 1 << 30);
    await until(() => check.bytes >= 4 << 20 && c.bytesWritten >= 1 << 20, 'traffic both ways');
    p.child.kill('SIGKILL');
    await exited(p.child);
    await pumping;
    await cClosed;
    check.assertClean('maio client');
    assert.equal(errs.length, 1, `one error, got ${errs.map((e) => e.code)}`);
    assertErrno(errs[0], ['ECONNRESET', 'EPIPE'], ['read', 'write']);
    await guard.check();
  } finally {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
});

void INDEX;
