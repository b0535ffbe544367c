/**
 * Bad input to the public API (src/index.ts, maio/net, the paths on a
 * socket): wrong types, negative / huge / NaN / fractional sizes,
 * out-of-range ports, malformed addresses, names that do not resolve,
 * buffers of another pool, double release, use after release, operations
 * after destroy() and after end(), sendFile on a destroyed socket, forward on
 * closed sockets. Each must throw (or reject, or emit 'error') a typed error
 * with a stable code, never crash, and leave the pool's accounting as it was.
 * Runs on both backends; io_uring-only paths skip with a reason on epoll.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as maio from '../../src/index';
import * as maioNet from '../../src/net/compat/index';
import { forward, forwardBoth } from '../../src/paths/forward';
import { fanOut } from '../../src/paths/fan-out';
import { netSkip, until } from '../net/helpers';

const { createPool, createServer, connect, IoBuffer } = maio;
type Socket = maio.Socket;

/** Values that are not what any size, length or count parameter accepts. */
const BAD_SIZES: [string, unknown][] = [
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['2**53', 2 ** 53],
  ['1e300', 1e300],
  ["'64'", '64'],
  ['null', null],
  ['{}', {}],
  ['10n', 10n],
  ['symbol', Symbol('s')],
];

const CODE = /^(ERR_MAIO_[A-Z_]+|ERR_[A-Z_]+|ABORT_ERR|E[A-Z0-9]+)$/;

/** The call throws a MaioError (or, with `codes`, one of those codes). */
function throwsTyped(fn: () => unknown, what: string, codes?: string[]): maio.MaioError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `${what}: did not throw`);
  assert.ok(caught instanceof Error, `${what}: threw a non-Error ${String(caught)}`);
  const code = (caught as { code?: unknown }).code;
  assert.ok(typeof code === 'string' && CODE.test(code), `${what}: threw ${(caught as Error).name} without a stable code: ${(caught as Error).message}`);
  if (codes) assert.ok(codes.includes(code), `${what}: code ${code} (${(caught as Error).message}), expected ${codes.join(' | ')}`);
  return caught as maio.MaioError;
}

async function rejectsTyped(p: Promise<unknown>, what: string, codes?: string[]): Promise<Error> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `${what}: did not reject`);
  const code = (caught as { code?: unknown }).code;
  assert.ok(typeof code === 'string' && CODE.test(code), `${what}: rejected without a stable code: ${String(caught)}`);
  if (codes) assert.ok(codes.includes(code), `${what}: code ${code} (${(caught as Error).message}), expected ${codes.join(' | ')}`);
  return caught as Error;
}

/** Pool accounting: every slot is free, owned or lent, and nothing is in use. */
function assertIdle(pool: maio.IoPool, what: string): void {
  const s = pool.stats();
  for (const c of s.classes) {
    assert.ok(c.inUse >= 0 && c.lent >= 0 && c.lent <= c.inUse && c.inUse <= c.total, `${what}: class ${c.size}: ${JSON.stringify(c)}`);
  }
  assert.equal(s.inUse, 0, `${what}: ${s.inUse} buffers still in use`);
  assert.equal(s.lent, 0, `${what}: ${s.lent} buffers still lent`);
}

async function pair(pool: maio.IoPool, opts: maio.MaioSocketOptions = {}) {
  const server = createServer({ pool, ...opts });
  const addr = await server.listenAsync(0, '127.0.0.1');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const c = connect({ port: addr.port, host: '127.0.0.1', pool, ...opts });
  await once(c, 'connect');
  const [s] = await accepted;
  // Peers reset by the tests below emit 'error' (ECONNRESET): expected, like node:net's.
  const swallow = (e: unknown) => assert.ok(typeof (e as { code?: unknown }).code === 'string', `socket 'error' without a code: ${String(e)}`);
  c.on('error', swallow);
  s.on('error', swallow);
  return {
    c,
    s,
    server,
    async close() {
      c.destroy();
      s.destroy();
      await Promise.all([c.destroyed && c.readyState === 'closed' ? null : once(c, 'close').catch(() => null), s.readyState === 'closed' ? null : once(s, 'close').catch(() => null)]);
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('createPool: bad options throw typed errors', () => {
  const bad: [string, unknown][] = [
    ['size -1', { size: -1 }],
    ['size 1.5', { size: 1.5 }],
    ['size NaN', { size: NaN }],
    ['size Infinity', { size: Infinity }],
    ['size 2**53', { size: 2 ** 53 }],
    ['size not a page multiple', { size: 65536 + 1 }],
    ['size too small', { size: 4096 }],
    ["size '1'", { size: '1' }],
    ['classes not an array', { size: 1 << 20, classes: 5 }],
    ['class size 0', { size: 1 << 20, classes: [{ size: 0 }] }],
    ['class size -64', { size: 1 << 20, classes: [{ size: -64 }] }],
    ['class size NaN', { size: 1 << 20, classes: [{ size: NaN }] }],
    ['class size > pool', { size: 1 << 20, classes: [{ size: 2 << 20 }] }],
    ['class share -1', { size: 1 << 20, classes: [{ size: 4096, share: -1 }] }],
    ['class count 1.5', { size: 1 << 20, classes: [{ size: 4096, count: 1.5 }] }],
    ['class null', { size: 1 << 20, classes: [null] }],
    ['strict "yes"', { size: 1 << 20, strict: 'yes' }],
    ['options 7', 7],
    ['options "x"', 'x'],
  ];
  for (const [what, opts] of bad) throwsTyped(() => createPool(opts as never), `createPool(${what})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE']);
});

test('pool and buffers: bad sizes, foreign buffers, double release, use after release, after close', async () => {
  const pool = createPool({ size: 1 << 20, lock: false, classes: [{ size: 4096 }, { size: 65536 }] });
  const other = createPool({ size: 1 << 20, lock: false, classes: [{ size: 4096 }] });
  for (const [label, v] of BAD_SIZES) {
    throwsTyped(() => pool.alloc(v as number), `alloc(${label})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE', 'ERR_MAIO_BUFFER_TOO_LARGE']);
    throwsTyped(() => pool.tryAlloc(v as number), `tryAlloc(${label})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE', 'ERR_MAIO_BUFFER_TOO_LARGE']);
    await rejectsTyped(pool.allocWait(v as number), `allocWait(${label})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE', 'ERR_MAIO_BUFFER_TOO_LARGE']);
  }
  throwsTyped(() => pool.alloc(65537), 'alloc above the largest class', ['ERR_MAIO_BUFFER_TOO_LARGE']);
  assertIdle(pool, 'after bad allocs');

  const b = pool.alloc(100);
  for (const [label, v] of BAD_SIZES) throwsTyped(() => b.setLength(v as number), `setLength(${label})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE']);
  throwsTyped(() => b.setLength(4097), 'setLength above capacity', ['ERR_MAIO_OUT_OF_RANGE']);
  const f = other.alloc(10);
  throwsTyped(() => pool.release(f), 'release of a foreign buffer', ['ERR_MAIO_BUFFER_FOREIGN']);
  for (const v of [null, undefined, {}, 5, new Uint8Array(4), Buffer.alloc(4)]) throwsTyped(() => pool.release(v as never), `release(${String(v)})`, ['ERR_MAIO_INVALID_ARG']);
  assert.equal(pool.owns(f), false);
  assert.equal(other.owns(f), true);
  b.release();
  throwsTyped(() => b.release(), 'double release', ['ERR_MAIO_BUFFER_RELEASED']);
  throwsTyped(() => pool.release(b), 'pool.release after release', ['ERR_MAIO_BUFFER_RELEASED']);
  throwsTyped(() => b.bytes, 'bytes after release', ['ERR_MAIO_BUFFER_RELEASED']);
  throwsTyped(() => b.setLength(1), 'setLength after release', ['ERR_MAIO_BUFFER_RELEASED']);
  throwsTyped(() => b.retain(), 'retain after release', ['ERR_MAIO_BUFFER_RELEASED']);
  // A stale handle never reaches the slot's next owner.
  const next = pool.alloc(100);
  next.bytes.fill(7);
  throwsTyped(() => b.bytes, 'stale handle after the slot was reused', ['ERR_MAIO_BUFFER_RELEASED']);
  throwsTyped(() => b.release(), 'stale release after reuse', ['ERR_MAIO_BUFFER_RELEASED']);
  assert.equal(next.released, false, 'the stale release freed the new owner\'s buffer');
  next.release();
  f.release();
  // IoBuffer cannot be made by hand.
  throwsTyped(() => new (IoBuffer as unknown as new (...a: unknown[]) => unknown)(Symbol('x'), pool, {}, 0, 1), 'new IoBuffer()');
  // Quotas.
  for (const [label, v] of BAD_SIZES.filter(([l]) => ['-1', '1.5', 'NaN', "'64'", '{}'].includes(l))) throwsTyped(() => pool.createQuota({ maxBytes: v as number }), `createQuota(maxBytes ${label})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE']);
  const q = pool.createQuota({ maxBuffers: 1 });
  const qb = q.alloc(10);
  throwsTyped(() => q.alloc(10), 'quota exceeded', ['ERR_MAIO_QUOTA_EXCEEDED']);
  assert.equal(q.tryAlloc(10), null);
  qb.release();
  // Exhaustion.
  const all: maio.IoBuffer[] = [];
  for (let x = other.tryAlloc(4096); x; x = other.tryAlloc(4096)) all.push(x);
  throwsTyped(() => other.alloc(4096), 'alloc from an exhausted pool', ['ERR_MAIO_POOL_EXHAUSTED']);
  const ac = new AbortController();
  const waiting = other.allocWait(4096, { signal: ac.signal });
  ac.abort();
  await rejectsTyped(waiting, 'allocWait aborted', ['ABORT_ERR']);
  for (const x of all) x.release();
  assertIdle(pool, 'pool');
  assertIdle(other, 'other');
  // After close.
  const held = other.alloc(10);
  other.close();
  throwsTyped(() => other.alloc(10), 'alloc after close', ['ERR_MAIO_CLOSED']);
  await rejectsTyped(other.allocWait(10), 'allocWait after close', ['ERR_MAIO_CLOSED']);
  held.release(); // releasing after close is allowed and does not throw
  other.close(); // idempotent
  pool.close();
});

test('listen and connect: bad ports, malformed addresses, names that do not resolve', { skip: netSkip }, async () => {
  const pool = createPool({ size: 1 << 20, lock: false });
  // ({} as listen options means port 0, as in node:net.)
  const badPorts: unknown[] = [-1, 65536, 70000, 1.5, NaN, Infinity, 'abc', '65536', '-1', '1.5', true, 10n];
  for (const port of badPorts) {
    const srv = createServer({ pool });
    throwsTyped(() => srv.listen({ port: port as number }), `listen({ port: ${String(port)} })`, ['ERR_MAIO_BAD_PORT', 'ERR_MAIO_INVALID_ARG']);
    throwsTyped(() => connect({ port: port as number, host: '127.0.0.1', pool }), `connect(port ${String(port)})`, ['ERR_MAIO_BAD_PORT', 'ERR_MAIO_INVALID_ARG']);
    // As an argument of its own, a string that is not a number >= 0 ('abc', '-1') is a unix socket path (node:net's rule)
    if (typeof port === 'string' && !(Number(port) >= 0)) continue;
    throwsTyped(() => srv.listen(port as number), `listen(${String(port)})`, ['ERR_MAIO_BAD_PORT', 'ERR_MAIO_INVALID_ARG']);
    await rejectsTyped(srv.listenAsync(port as number), `listenAsync(${String(port)})`, ['ERR_MAIO_BAD_PORT', 'ERR_MAIO_INVALID_ARG']);
    throwsTyped(() => connect(port as number, '127.0.0.1'), `connect(${String(port)}, host)`, ['ERR_MAIO_BAD_PORT', 'ERR_MAIO_INVALID_ARG']);
  }
  // Malformed literals are refused up front or fail to resolve: either a throw or an 'error' event, typed.
  const badHosts = ['999.1.1.1', '1.2.3.4.5', '::g', ':::1', '1::2::3', 'fe80::1%', '[::1]', '', ' ', 'no-such-host.invalid', 'a'.repeat(300), 'x\u0000y'];
  for (const host of badHosts) {
    let sock: Socket | undefined;
    try {
      sock = connect({ port: 9, host, pool });
    } catch (e) {
      throwsTyped(() => {
        throw e;
      }, `connect(host ${JSON.stringify(host)})`);
      continue;
    }
    const closedP = new Promise((r) => sock!.once('close', r));
    const [err] = (await once(sock, 'error')) as [Error & { code?: string }];
    assert.ok(typeof err.code === 'string' && CODE.test(err.code), `connect(host ${JSON.stringify(host)}) emitted ${String(err)} without a code`);
    await closedP;
    // A socket destroyed while its name was looked up is closed, not 'opening' (it said so before).
    assert.equal(sock.readyState, 'closed');
    assert.equal(sock.connecting, false);
  }
  // (a number in the host position is the backlog, as in node:net)
  for (const host of ['999.1.1.1', '::g', 'no-such-host.invalid', 'x y']) {
    const srv = createServer({ pool });
    await rejectsTyped(srv.listenAsync(0, host), `listenAsync(0, ${JSON.stringify(host)})`);
  }
  // Nobody listening: ECONNREFUSED as an 'error' event with node:net's shape.
  const probe = createServer({ pool });
  const { port } = await probe.listenAsync(0, '127.0.0.1');
  await new Promise<void>((r) => probe.close(() => r()));
  const s = connect({ port, host: '127.0.0.1', pool });
  const [err] = (await once(s, 'error')) as [Error & { code?: string; errno?: number; syscall?: string }];
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(typeof err.errno, 'number');
  assert.equal(typeof err.syscall, 'string');
  // Bad options to connect/createServer.
  for (const [what, o] of [
    ['timeout -1', { timeout: -1 }],
    ['timeout NaN', { timeout: NaN }],
    ['readQuota -5', { readQuota: -5 }],
    ['readBufferSize 1.5', { readBufferSize: 1.5 }],
    ['writeBufferSize NaN', { writeBufferSize: NaN }],
    ['writableHighWaterMark -1', { writableHighWaterMark: -1 }],
    ['zeroCopy "maybe"', { zeroCopy: 'maybe' }],
    ['pool {}', { pool: {} }],
    ['family 5', { family: 5 }],
    ['signal {}', { signal: {} }],
  ] as [string, object][]) {
    let sock: Socket | undefined;
    try {
      sock = connect({ port: 9, host: '127.0.0.1', pool, ...o });
    } catch (e) {
      throwsTyped(() => {
        throw e;
      }, `connect(${what})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE']);
      continue;
    }
    sock.destroy();
    assert.fail(`connect(${what}) accepted the option`);
  }
  for (const o of [5, 'x', { pool: 5 }, { readQuota: 'big' }]) {
    throwsTyped(() => createServer(o as never), `createServer(${JSON.stringify(o)})`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE']);
  }
  await until(() => pool.stats().inUse === 0, 'pool idle');
  assertIdle(pool, 'after listen/connect errors');
  pool.close();
});

test('a socket: bad send/write arguments, foreign and released buffers, after end(), after destroy()', { skip: netSkip }, async () => {
  const pool = createPool({ size: 4 << 20, lock: false });
  const other = createPool({ size: 1 << 20, lock: false });
  const p = await pair(pool);
  const { c, s } = p;
  s.on('data', () => {});
  // send(): only IoBuffers of this socket's pool, owned by the caller.
  for (const v of [null, undefined, 5, 'x', Buffer.from('x'), new Uint8Array(3), {}]) throwsTyped(() => c.send(v as never), `send(${String(v)})`, ['ERR_MAIO_INVALID_ARG']);
  const foreign = other.alloc(10);
  throwsTyped(() => c.send(foreign), 'send of a foreign buffer', ['ERR_MAIO_BUFFER_FOREIGN']);
  assert.equal(foreign.released, false, 'a refused send took the buffer');
  foreign.release();
  const rel = pool.alloc(10);
  rel.release();
  const lent = pool.alloc(10);
  lent.bytes.fill(1);
  c.send(lent);
  // A buffer the caller no longer owns (released, or given to a send already) fails that
  // send on its socket ('error', destroyed: its stream would have a gap), never by a throw
  // (from a 'data' handler a throw would be an uncaught exception).
  for (const [what, b] of [['released', rel], ['already sent', lent]] as const) {
    const p2 = await pair(pool);
    const errs: unknown[] = [];
    p2.c.on('error', (e) => errs.push(e));
    assert.equal(p2.c.send(b), false, `send of a ${what} buffer`);
    await until(() => errs.length > 0, `'error' of the send of a ${what} buffer`);
    assert.equal((errs[0] as { code?: unknown }).code, 'ERR_MAIO_BUFFER_RELEASED', `send of a ${what} buffer: ${String(errs[0])}`);
    assert.equal(p2.c.destroyed, true, `send of a ${what} buffer: the socket is destroyed`);
    await p2.close();
  }
  throwsTyped(() => lent.release(), 'release of a lent buffer', ['ERR_MAIO_BUFFER_LENT', 'ERR_MAIO_BUFFER_RELEASED']);
  throwsTyped(() => lent.bytes, 'bytes of a lent buffer', ['ERR_MAIO_BUFFER_LENT', 'ERR_MAIO_BUFFER_RELEASED']);
  // write(): strings and bytes only.
  for (const v of [null, undefined, 5, {}, [1, 2], 10n, Symbol('s')]) throwsTyped(() => c.write(v as never), `write(${String(v)})`, ['ERR_MAIO_INVALID_ARG']);
  throwsTyped(() => c.write('x', 'no-such-encoding' as BufferEncoding), 'write with a bad encoding', ['ERR_MAIO_INVALID_ARG', 'ERR_UNKNOWN_ENCODING']);
  // options
  throwsTyped(() => c.setsockopt('x' as never, 1, 1), 'setsockopt level string', ['ERR_MAIO_INVALID_ARG']);
  throwsTyped(() => c.setsockopt(1, 1.5, 1), 'setsockopt name 1.5', ['ERR_MAIO_INVALID_ARG']);
  throwsTyped(() => c.setsockopt(1, 7, {} as never), 'setsockopt value {}', ['ERR_MAIO_INVALID_ARG']);
  throwsTyped(() => c.setsockopt(-1, 7, 1), 'setsockopt level -1', ['ERR_MAIO_OUT_OF_RANGE']);
  throwsTyped(() => c.getsockopt(1, -7), 'getsockopt name -7', ['ERR_MAIO_OUT_OF_RANGE']);
  throwsTyped(() => c.setKeepAlive(true, -1), 'setKeepAlive delay -1', ['ERR_MAIO_OUT_OF_RANGE', 'ERR_MAIO_INVALID_ARG']);
  throwsTyped(() => c.setKeepAlive(true, NaN), 'setKeepAlive delay NaN', ['ERR_MAIO_OUT_OF_RANGE', 'ERR_MAIO_INVALID_ARG']);
  // end() then write/send: typed errors, and the buffer stays the caller's.
  c.end();
  c.end(); // a second end() is a no-op
  const late = pool.alloc(10);
  throwsTyped(() => c.send(late), 'send after end()', ['ERR_MAIO_CLOSED']);
  assert.equal(late.released, false);
  let writeErr: unknown;
  try {
    const ok = c.write('late', (e) => {
      writeErr = e;
    });
    void ok;
    await until(() => writeErr !== undefined, 'write-after-end callback');
  } catch (e) {
    writeErr = e;
  }
  assert.ok(writeErr && typeof (writeErr as { code?: unknown }).code === 'string', `write after end(): ${String(writeErr)}`);
  // destroy() then everything: typed errors, no crash.
  c.destroy();
  c.destroy(); // idempotent
  throwsTyped(() => c.send(late), 'send after destroy()', ['ERR_MAIO_CLOSED']);
  assert.equal(late.released, false);
  late.release();
  const shared = pool.alloc(1);
  throwsTyped(() => c.sendShared(shared), 'sendShared after destroy()', ['ERR_MAIO_CLOSED']);
  shared.release();
  c.pause();
  c.resume();
  c.setNoDelay(true);
  assert.equal(c.destroyed, true);
  throwsTyped(() => c.setsockopt(1, 7, 65536), 'setsockopt after destroy()', ['ERR_MAIO_CLOSED', 'EBADF']);
  await p.close();
  await until(() => pool.stats().inUse === 0, `pool idle (${JSON.stringify(pool.stats().inUse)})`);
  assertIdle(pool, 'after the socket');
  assertIdle(other, 'other');
  pool.close();
  other.close();
});

test('sendFile: bad arguments and a destroyed socket', { skip: netSkip }, async () => {
  const pool = createPool({ size: 4 << 20, lock: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-bad-'));
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, Buffer.alloc(1000, 1));
  const p = await pair(pool);
  p.s.on('data', () => {});
  try {
    await rejectsTyped(p.c.sendFile(path.join(dir, 'missing')), 'sendFile of a missing file', ['ENOENT']);
    await rejectsTyped(p.c.sendFile(dir), 'sendFile of a directory', ['EISDIR', 'EINVAL', 'ERR_MAIO_INVALID_ARG']);
    for (const v of [null, 5.5, -1, {}, 2 ** 31]) await rejectsTyped(p.c.sendFile(v as never), `sendFile(${String(v)})`);
    // (null means the default, as undefined)
    for (const [label, v] of BAD_SIZES.filter(([l]) => l !== 'null')) {
      await rejectsTyped(p.c.sendFile(file, { offset: v as number }), `sendFile offset ${label}`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE']);
      await rejectsTyped(p.c.sendFile(file, { length: v as number }), `sendFile length ${label}`, ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE']);
    }
    await rejectsTyped(p.c.sendFile(file, { offset: 2000 }), 'sendFile offset past the end', ['ERR_MAIO_OUT_OF_RANGE', 'ERR_MAIO_FILE_SHRUNK']);
    await rejectsTyped(p.c.sendFile(file, { offset: 500, length: 600 }), 'sendFile range past the end', ['ERR_MAIO_OUT_OF_RANGE', 'ERR_MAIO_FILE_SHRUNK']);
    p.c.destroy();
    await rejectsTyped(p.c.sendFile(file), 'sendFile on a destroyed socket', ['ERR_MAIO_CLOSED']);
  } finally {
    await p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await until(() => pool.stats().inUse === 0, 'pool idle');
  assertIdle(pool, 'after sendFile');
  pool.close();
});

test('forward, forwardBoth and fanOut: bad arguments and closed sockets', { skip: netSkip }, async () => {
  const pool = createPool({ size: 4 << 20, lock: false });
  const p = await pair(pool);
  const q = await pair(pool);
  for (const v of [null, undefined, 5, {}, 'x']) {
    throwsTyped(() => forward(v as never, q.c), `forward(${String(v)}, b)`, ['ERR_MAIO_INVALID_ARG']);
    throwsTyped(() => forward(p.c, v as never), `forward(a, ${String(v)})`, ['ERR_MAIO_INVALID_ARG']);
    throwsTyped(() => forwardBoth(p.c, v as never), `forwardBoth(a, ${String(v)})`, ['ERR_MAIO_INVALID_ARG']);
  }
  throwsTyped(() => forward(p.c, p.c), 'forward(a, a)', ['ERR_MAIO_INVALID_ARG']);
  throwsTyped(() => forward(p.c, q.c, { mode: 'teleport' as never }), 'forward mode', ['ERR_MAIO_INVALID_ARG']);
  // fanOut
  const b = pool.alloc(10);
  for (const v of [null, 5, {}, [null], [5]]) throwsTyped(() => fanOut(b, v as never), `fanOut(buf, ${JSON.stringify(v)})`, ['ERR_MAIO_INVALID_ARG']);
  throwsTyped(() => fanOut(null as never, [p.c]), 'fanOut(null)', ['ERR_MAIO_INVALID_ARG']);
  assert.equal(b.released, false, 'a refused fanOut took the buffer');
  b.release();
  // One forward() per source: a second would send each received buffer twice.
  const fw1 = forward(p.s, q.s);
  throwsTyped(() => forward(p.s, q.c), 'a second forward() of one source', ['ERR_MAIO_INVALID_ARG']);
  // A 'data' handler that gives the buffer away before the forwarder's: the forwarder
  // fails with a typed error (it was an uncaught exception out of the socket's 'data').
  const r1 = await pair(pool);
  const r2 = await pair(pool);
  r1.s.on('data', (buf: maio.IoBuffer) => r2.c.send(buf));
  const fw2 = forward(r1.s, r2.s);
  const fwErr = new Promise<Error>((resolve) => fw2.on('error', resolve));
  r1.c.write('x'.repeat(1000));
  const e2 = await fwErr;
  assert.ok(typeof (e2 as { code?: unknown }).code === 'string' && /^ERR_MAIO_BUFFER_/.test((e2 as unknown as { code: string }).code), `forwarder error: ${String(e2)}`);
  await r1.close();
  await r2.close();
  void fw1;
  // Closed sockets: forward refuses them (or errors at once), and frees nothing twice.
  p.c.destroy();
  q.c.destroy();
  for (const [a, z, what] of [
    [p.c, q.s, 'a destroyed'],
    [q.s, p.c, 'b destroyed'],
  ] as [Socket, Socket, string][]) {
    let fw: { on(e: string, f: (...a: unknown[]) => void): unknown } | undefined;
    try {
      fw = forward(a, z);
    } catch (e) {
      throwsTyped(() => {
        throw e;
      }, `forward with ${what}`, ['ERR_MAIO_CLOSED', 'ERR_MAIO_INVALID_ARG']);
      continue;
    }
    await new Promise<void>((resolve) => {
      fw!.on('error', (e: unknown) => {
        assert.ok(typeof (e as { code?: unknown }).code === 'string', `forward with ${what}: error without a code`);
        resolve();
      });
      fw!.on('close', () => resolve());
      fw!.on('end', () => resolve());
    });
  }
  // fanOut skips destroyed sockets and says so; the buffer goes back (release: true).
  const ds = pool.alloc(4);
  const r = fanOut(ds, [p.c]);
  assert.deepEqual([r.queued, r.skipped.length], [0, 1]);
  await r.done;
  assert.equal(ds.released, true);
  const kept = pool.alloc(4);
  fanOut(kept, [p.c], { release: false });
  assert.equal(kept.released, false, 'release: false keeps the buffer');
  kept.release();
  await p.close();
  await q.close();
  await until(() => pool.stats().inUse === 0, 'pool idle');
  assertIdle(pool, 'after forward');
  pool.close();
});

test('maio/net: node:net-shaped errors for bad ports, hosts and writes after end', { skip: netSkip }, async () => {
  // node:net throws ERR_SOCKET_BAD_PORT at once; maio/net may also emit it as 'error'.
  const portCodes = ['ERR_SOCKET_BAD_PORT', 'ERR_MAIO_BAD_PORT', 'ERR_INVALID_ARG_TYPE', 'ERR_MAIO_INVALID_ARG'];
  // ('abc' is left out: node:net takes a string that is not a number as a unix socket path)
  for (const port of [-1, 65536, 1.5, NaN, '1.5']) {
    let s: maioNet.Socket | undefined;
    try {
      s = maioNet.connect(port as number, '127.0.0.1');
    } catch (e) {
      assert.ok(portCodes.includes((e as { code?: string }).code!), `net.connect(${String(port)}) threw ${String(e)}`);
    }
    if (s) {
      const [e] = (await once(s, 'error')) as [Error & { code?: string }];
      assert.ok(portCodes.includes(e.code!), `net.connect(${String(port)}) emitted ${String(e)}`);
    }
    const srv = maioNet.createServer();
    let lerr: unknown;
    try {
      srv.listen(port as number);
      [lerr] = await once(srv, 'error');
    } catch (e) {
      lerr = e;
    }
    assert.ok(portCodes.includes((lerr as { code?: string }).code!), `net server.listen(${String(port)}): ${String(lerr)}`);
    srv.close(() => {});
  }
  const sock = maioNet.connect({ port: 9, host: 'no-such-host.invalid' });
  const [err] = (await once(sock, 'error')) as [Error & { code?: string }];
  assert.ok(typeof err.code === 'string', `lookup failure without a code: ${String(err)}`);
  const srv = maioNet.createServer((s) => s.resume());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  const c = maioNet.connect(port, '127.0.0.1');
  await once(c, 'connect');
  for (const [what, f] of [
    ['write(5)', () => c.write(5 as never)],
    ['write(null)', () => c.write(null as never)],
    ['write({})', () => c.write({} as never)],
    ['setTimeout(-1)', () => c.setTimeout(-1)],
    ["setTimeout('x')", () => c.setTimeout('x' as never)],
    ['a second connect()', () => c.connect(1, '127.0.0.1')],
    ['createServer(5)', () => maioNet.createServer(5 as never)],
  ] as [string, () => unknown][]) {
    throwsTyped(f, `net ${what}`);
  }
  // node:net takes a negative keep-alive delay as 0 (no throw); so does maio/net
  c.setKeepAlive(true, -5);
  c.end();
  const [werr] = await new Promise<[Error & { code?: string }]>((resolve) => {
    c.on('error', (e) => resolve([e]));
    c.write('late', (e) => e && resolve([e as Error & { code?: string }]));
  });
  assert.equal(werr.code, 'ERR_STREAM_WRITE_AFTER_END');
  c.destroy();
  c.destroy();
  const [derr] = await new Promise<[Error & { code?: string }]>((resolve) => c.write('x', (e) => resolve([e as Error & { code?: string }])));
  assert.ok(['ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END'].includes(derr.code!), String(derr));
  await new Promise<void>((r) => srv.close(() => r()));
});

// The ring's own bad-input cases (both engines, closeFd(t, NaN) included) are test/ring/contract.test.ts's.

test('sendFile: a peer reset mid-transfer rejects with the socket error (ECONNRESET/EPIPE), never EBADF', { skip: netSkip }, async () => {
  // libuv reports EPOLLERR on the sendfile poll as UV_EBADF; native/sendfile.c reads SO_ERROR instead.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-sf-'));
  const file = path.join(dir, 'big');
  fs.writeFileSync(file, Buffer.alloc(4 << 20, 7));
  const seen = new Map<string, number>();
  try {
    for (let i = 0; i < 60; i++) {
      const srv = createServer();
      let peer: Socket | undefined;
      srv.on('connection', (s: Socket) => {
        peer = s;
        s.on('error', () => {});
      });
      const { port } = await srv.listenAsync(0, '127.0.0.1');
      const c = connect({ port, host: '127.0.0.1' });
      c.on('error', () => {});
      await once(c, 'connect');
      await until(() => peer !== undefined, 'accepted');
      const p = c.sendFile(file).then(
        () => 'ok',
        (e: Error & { code?: string }) => e.code ?? String(e),
      );
      await new Promise((r) => setTimeout(r, i % 3));
      peer!.destroy();
      const code = await p;
      seen.set(code, (seen.get(code) ?? 0) + 1);
      c.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const codes = [...seen.keys()];
  assert.ok(codes.every((k) => ['ok', 'ECONNRESET', 'EPIPE', 'ERR_MAIO_CLOSED'].includes(k)), `sendFile outcomes: ${JSON.stringify([...seen])}`);
});
