// Socket set-up (native/sock.c) and named options (src/net/sockopt.ts) on real
// loopback sockets: listen, accept, connect, options read back from the kernel,
// and every entry point's argument validation.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { native, SOCKOPT_MAX } from '../../src/core/native';
import { InvalidArgumentError, OutOfRangeError } from '../../src/core/errors';
import { decodeSockaddr, sockaddr } from '../../src/net/address';
import * as so from '../../src/net/sockopt';

const n = native();
const EAGAIN = 11;
const EINPROGRESS = 115;
const ECONNREFUSED = 111;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
/** Bound on poll loops: generous for a busy 2-core machine, finite so a bug fails instead of hanging. */
const MAX_TRIES = 2000;

/** Opens sockets and closes whatever is still open at the end. */
function sockets() {
  const open = new Set<number>();
  return {
    open(family: 4 | 6 = 4, type: 'tcp' | 'udp' = 'tcp'): number {
      const fd = n.sockOpen(family, type);
      open.add(fd);
      return fd;
    },
    adopt(fd: number): number {
      open.add(fd);
      return fd;
    },
    close(fd: number): void {
      open.delete(fd);
      n.sockClose(fd);
    },
    [Symbol.dispose](): void {
      for (const fd of open) n.sockClose(fd);
      open.clear();
    },
  };
}

function listener(s: ReturnType<typeof sockets>, host = '127.0.0.1', family: 4 | 6 = 4): { fd: number; port: number } {
  const fd = s.open(family);
  so.setReuseAddr(fd, true);
  n.sockBind(fd, sockaddr(host, 0));
  n.sockListen(fd, 16);
  const info = decodeSockaddr(n.sockName(fd, false));
  assert.equal(info.address, host);
  assert.ok(info.port > 0 && info.port < 65536);
  return { fd, port: info.port };
}

/** O_NONBLOCK and O_CLOEXEC from /proc/self/fdinfo (flags are octal). */
function fdFlags(fd: number): number {
  const m = /flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m, 'fdinfo has flags');
  return parseInt(m[1]!, 8);
}
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

async function acceptOne(fd: number): Promise<number> {
  for (let i = 0; i < MAX_TRIES; i++) {
    const r = n.sockAccept(fd);
    if (r >= 0) return r;
    assert.equal(r, -EAGAIN);
    await sleep(5);
  }
  throw new Error(`no connection accepted after ${MAX_TRIES} tries`);
}

test('listen on 127.0.0.1:0, a node:net client connects, sockAccept takes it (nonblocking, close-on-exec)', async () => {
  using s = sockets();
  const { fd, port } = listener(s);
  assert.equal(fdFlags(fd) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK | O_CLOEXEC);
  assert.equal(n.sockAccept(fd), -EAGAIN, 'nothing queued yet, and it does not block');

  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const afd = s.adopt(await acceptOne(fd));
  assert.equal(fdFlags(afd) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK | O_CLOEXEC);
  assert.deepEqual(decodeSockaddr(n.sockName(afd, false)), { address: '127.0.0.1', family: 'IPv4', port });
  assert.deepEqual(decodeSockaddr(n.sockName(afd, true)), { address: '127.0.0.1', family: 'IPv4', port: client.localPort });
  assert.equal(n.sockError(afd), 0);

  // shutdown(SHUT_WR) on our side is an end-of-stream for the client.
  const ended = new Promise<void>((resolve) => client.once('end', resolve));
  client.resume();
  n.sockShutdown(afd, 1);
  await ended;
  client.destroy();
});

test('ss -tln shows the listening socket', (t) => {
  const probe = spawnSync('ss', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    t.skip('ss is not installed');
    return;
  }
  using s = sockets();
  const { port } = listener(s);
  const out = spawnSync('ss', ['-tlnH', `sport = :${port}`], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, new RegExp(`^LISTEN\\s.*127\\.0\\.0\\.1:${port}\\s`, 'm'));
});

async function connectTo(fd: number, addr: Uint8Array): Promise<void> {
  const r = n.sockConnectSync(fd, addr);
  assert.ok(r === 0 || r === -EINPROGRESS, `connect returned ${r}`);
  for (let i = 0; i < MAX_TRIES; i++) {
    const err = n.sockError(fd);
    if (err !== 0) throw Object.assign(new Error(`connect failed: ${err}`), { errno: err });
    try {
      n.sockName(fd, true);
      return; // getpeername works once the handshake is done
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOTCONN');
    }
    await sleep(5);
  }
  throw new Error(`not connected after ${MAX_TRIES} tries`);
}

test('sockConnectSync + sockError reach a node:net server', async () => {
  using s = sockets();
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  try {
    const fd = s.open();
    await connectTo(fd, sockaddr('127.0.0.1', port));
    const conn = await accepted;
    assert.equal(decodeSockaddr(n.sockName(fd, true)).port, port);
    assert.equal(decodeSockaddr(n.sockName(fd, false)).port, conn.remotePort);
    conn.destroy();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a refused connect shows up as -ECONNREFUSED from sockError (or is thrown at once, node:net-shaped)', async () => {
  using s = sockets();
  // A bound but not listening socket reserves a port nobody accepts on.
  const holder = s.open();
  n.sockBind(holder, sockaddr('127.0.0.1', 0));
  const port = decodeSockaddr(n.sockName(holder, false)).port;
  const fd = s.open();
  let res: number;
  try {
    res = n.sockConnectSync(fd, sockaddr('127.0.0.1', port));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    assert.equal(err.code, 'ECONNREFUSED');
    assert.equal(err.errno, -ECONNREFUSED);
    assert.equal(err.syscall, 'connect');
    return;
  }
  assert.equal(res, -EINPROGRESS);
  for (let i = 0; i < MAX_TRIES; i++) {
    const err = n.sockError(fd);
    if (err !== 0) {
      assert.equal(err, -ECONNREFUSED);
      assert.equal(n.sockError(fd), 0, 'reading SO_ERROR clears it');
      return;
    }
    await sleep(5);
  }
  assert.fail('no error reported');
});

test('IPv6: v6-only listener on [::1]:0 and a node:net client', async () => {
  using s = sockets();
  const fd = s.open(6);
  so.setV6Only(fd, true);
  assert.equal(so.getV6Only(fd), true);
  n.sockBind(fd, sockaddr('::1', 0));
  n.sockListen(fd, 4);
  const info = decodeSockaddr(n.sockName(fd, false));
  assert.equal(info.address, '::1');
  assert.equal(info.family, 'IPv6');
  const client = net.connect(info.port, '::1');
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const afd = s.adopt(await acceptOne(fd));
  assert.deepEqual(decodeSockaddr(n.sockName(afd, true)), { address: '::1', family: 'IPv6', port: client.localPort });
  client.destroy();
});

test('UDP sockets open with the right type', () => {
  using s = sockets();
  for (const [type, want] of [['udp', SOCK_DGRAM], ['tcp', SOCK_STREAM]] as const) {
    const fd = s.open(4, type);
    assert.equal(so.getsockopt(fd, so.SOL_SOCKET, so.SO_TYPE), want);
  }
  const fd = s.adopt(n.sockOpen(6, SOCK_DGRAM));
  assert.equal(so.getsockopt(fd, so.SOL_SOCKET, so.SO_TYPE), SOCK_DGRAM);
  n.sockBind(fd, sockaddr('::1', 0));
  assert.equal(decodeSockaddr(n.sockName(fd, false)).address, '::1');
});

function sysctl(name: string): number | undefined {
  try {
    return Number(fs.readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

test('every named option is set and read back from the kernel', () => {
  using s = sockets();
  const fd = s.open();

  for (const v of [true, false, true]) {
    so.setNoDelay(fd, v);
    assert.equal(so.getNoDelay(fd), v);
  }
  so.setNoDelay(fd, false);
  so.setNoDelay(fd);
  assert.equal(so.getNoDelay(fd), true, 'noDelay defaults to true, like net.Socket');

  so.setKeepAlive(fd, true, 10_000, { interval: 3_000, count: 4 });
  assert.deepEqual(so.getKeepAlive(fd), { enabled: true, idleSeconds: 10, intervalSeconds: 3, count: 4 });
  so.setKeepAlive(fd, true, 1_500);
  assert.equal(so.getKeepAlive(fd).idleSeconds, 1, 'milliseconds round down to whole seconds');
  so.setKeepAlive(fd, true, 1);
  assert.equal(so.getKeepAlive(fd).idleSeconds, 1, 'a nonzero delay is at least one second');
  so.setKeepAlive(fd, false);
  assert.equal(so.getKeepAlive(fd).enabled, false);

  // The kernel doubles the request and caps it at rmem_max / wmem_max first.
  const rmax = sysctl('rmem_max');
  const wmax = sysctl('wmem_max');
  for (const req of [16_384, 65_536, 100_000]) {
    const r = so.setRecvBufferSize(fd, req);
    assert.equal(r, so.getRecvBufferSize(fd));
    if (rmax !== undefined) assert.equal(r, 2 * Math.min(req, rmax), `SO_RCVBUF ${req}`);
    const w = so.setSendBufferSize(fd, req);
    assert.equal(w, so.getSendBufferSize(fd));
    if (wmax !== undefined) assert.equal(w, 2 * Math.min(req, wmax), `SO_SNDBUF ${req}`);
  }

  for (const v of [true, false]) {
    so.setReuseAddr(fd, v);
    assert.equal(so.getReuseAddr(fd), v);
    so.setReusePort(fd, v);
    assert.equal(so.getReusePort(fd), v);
  }

  so.setUserTimeout(fd, 5_000);
  assert.equal(so.getUserTimeout(fd), 5_000);
  so.setUserTimeout(fd, 0);
  assert.equal(so.getUserTimeout(fd), 0);

  assert.equal(so.getLinger(fd), null, 'lingering is off by default');
  so.setLinger(fd, 7);
  assert.equal(so.getLinger(fd), 7);
  so.setLinger(fd, 0);
  assert.equal(so.getLinger(fd), 0);
  so.setLinger(fd, null);
  assert.equal(so.getLinger(fd), null);

  const v6 = s.open(6);
  for (const v of [true, false]) {
    so.setV6Only(v6, v);
    assert.equal(so.getV6Only(v6), v);
  }

  so.applySocketOptions(fd, { noDelay: false, keepAlive: true, keepAliveInitialDelay: 20_000, keepAliveCount: 9, linger: 3, userTimeout: 1234 });
  assert.equal(so.getNoDelay(fd), false);
  assert.deepEqual({ ...so.getKeepAlive(fd), intervalSeconds: 0 }, { enabled: true, idleSeconds: 20, intervalSeconds: 0, count: 9 });
  assert.equal(so.getLinger(fd), 3);
  assert.equal(so.getUserTimeout(fd), 1234);
});

test('two SO_REUSEPORT listeners share a port; without it the second bind is EADDRINUSE', () => {
  using s = sockets();
  const a = s.open();
  so.setReusePort(a, true);
  n.sockBind(a, sockaddr('127.0.0.1', 0));
  n.sockListen(a, 4);
  const port = decodeSockaddr(n.sockName(a, false)).port;
  const b = s.open();
  so.setReusePort(b, true);
  n.sockBind(b, sockaddr('127.0.0.1', port));
  n.sockListen(b, 4);
  const c = s.open();
  assert.throws(() => n.sockBind(c, sockaddr('127.0.0.1', port)), { code: 'EADDRINUSE', errno: -98, syscall: 'bind' });
});

test('the raw escape: ints and bytes both ways; kernel errors keep their errno', () => {
  using s = sockets();
  const fd = s.open();
  so.setsockopt(fd, so.SOL_SOCKET, so.SO_KEEPALIVE, 1);
  assert.equal(so.getsockopt(fd, so.SOL_SOCKET, so.SO_KEEPALIVE), 1);
  assert.equal(so.getKeepAlive(fd).enabled, true);

  const linger = new Uint8Array(8);
  new DataView(linger.buffer).setInt32(0, 1, true);
  new DataView(linger.buffer).setInt32(4, 42, true);
  so.setsockopt(fd, so.SOL_SOCKET, so.SO_LINGER, linger);
  assert.deepEqual(so.getsockoptBytes(fd, so.SOL_SOCKET, so.SO_LINGER, 8), linger);
  assert.equal(so.getLinger(fd), 42);

  // An int option read as bytes: the kernel says how many it wrote.
  assert.deepEqual([...so.getsockoptBytes(fd, so.SOL_SOCKET, so.SO_TYPE)], [SOCK_STREAM, 0, 0, 0]);
  assert.equal(so.getsockoptBytes(fd, so.SOL_SOCKET, so.SO_TYPE, 0).length, 0);
  // TCP_INFO is a struct of a few hundred bytes; a short maxLen truncates.
  assert.ok(so.getsockoptBytes(fd, so.IPPROTO_TCP, 11 /* TCP_INFO */).length >= 104);
  assert.equal(so.getsockoptBytes(fd, so.IPPROTO_TCP, 11, 8).length, 8);

  assert.throws(() => so.getsockopt(fd, so.SOL_SOCKET, 9999), { code: 'ENOPROTOOPT', errno: -92, syscall: 'getsockopt' });
  assert.throws(() => so.setsockopt(fd, so.SOL_SOCKET, 9999, 1), { code: 'ENOPROTOOPT', syscall: 'setsockopt' });
  assert.throws(() => so.setsockopt(fd, so.SOL_SOCKET, so.SO_LINGER, new Uint8Array(2)), { code: 'EINVAL', errno: -22 });
  assert.throws(() => so.setsockopt(fd, so.SOL_SOCKET, so.SO_LINGER, 'x' as unknown as number), InvalidArgumentError);
});

type Case = [name: string, call: () => unknown, code: 'ERR_MAIO_INVALID_ARG' | 'ERR_MAIO_OUT_OF_RANGE'];

test('every native entry point refuses bad arguments with a typed error (table)', () => {
  using s = sockets();
  const fd = s.open();
  const a4 = sockaddr('127.0.0.1', 0);
  const bad4 = new Uint8Array(15);
  bad4[0] = 2;
  const bad6 = new Uint8Array(27);
  bad6[0] = 10;
  const A = 'ERR_MAIO_INVALID_ARG';
  const R = 'ERR_MAIO_OUT_OF_RANGE';
  const x = n as unknown as Record<string, (...args: unknown[]) => unknown>;
  const cases: Case[] = [];
  // Every fd-taking function: missing, wrong type, negative, too large, fractional.
  const fdFns: [string, unknown[]][] = [
    ['sockBind', [a4]], ['sockListen', [1]], ['sockConnectSync', [a4]], ['sockAccept', []],
    ['sockShutdown', [2]], ['sockClose', []], ['sockSetInt', [1, 9, 1]], ['sockGetInt', [1, 9]],
    ['sockSetBytes', [1, 13, new Uint8Array(8)]], ['sockGetBytes', [1, 13, 8]], ['sockName', [false]], ['sockError', []],
  ];
  for (const [name, rest] of fdFns) {
    cases.push([`${name}()`, () => x[name]!(), A]);
    cases.push([`${name}('3')`, () => x[name]!('3', ...rest), A]);
    cases.push([`${name}(null)`, () => x[name]!(null, ...rest), A]);
    cases.push([`${name}(1.5)`, () => x[name]!(1.5, ...rest), A]);
    cases.push([`${name}(NaN)`, () => x[name]!(NaN, ...rest), A]);
    cases.push([`${name}(-1)`, () => x[name]!(-1, ...rest), R]);
    cases.push([`${name}(2**31)`, () => x[name]!(2 ** 31, ...rest), R]);
    cases.push([`${name}(-2**40)`, () => x[name]!(-(2 ** 40), ...rest), R]);
  }
  cases.push(
    ['sockOpen()', () => x.sockOpen!(), A],
    ['sockOpen(4)', () => x.sockOpen!(4), A],
    ['sockOpen(5, tcp)', () => n.sockOpen(5 as 4, 'tcp'), R],
    ['sockOpen(0, tcp)', () => n.sockOpen(0 as 4, 'tcp'), R],
    ['sockOpen(2, tcp)', () => n.sockOpen(2 as 4, 'tcp'), R],
    ['sockOpen("4", tcp)', () => n.sockOpen('4' as unknown as 4, 'tcp'), A],
    ['sockOpen("unx", tcp)', () => n.sockOpen('unx' as 'unix', 'tcp'), A],
    ['sockOpen(4, sctp)', () => n.sockOpen(4, 'sctp' as 'tcp'), A],
    ['sockOpen(4, "")', () => n.sockOpen(4, '' as 'tcp'), A],
    ['sockOpen(4, "tcp\\0")', () => n.sockOpen(4, 'tcp\0' as 'tcp'), A],
    ['sockOpen(4, "TCP")', () => n.sockOpen(4, 'TCP' as 'tcp'), A],
    ['sockOpen(4, long string)', () => n.sockOpen(4, 'tcpxxxxxxxxxxxxxxxxxxxxxxxxxxx' as 'tcp'), A],
    ['sockOpen(4, 3)', () => n.sockOpen(4, 3), R],
    ['sockOpen(4, 1|SOCK_NONBLOCK)', () => n.sockOpen(4, 1 | 0o4000), R],
    ['sockOpen(4, {})', () => n.sockOpen(4, {} as number), A],
    ['sockBind(fd, 15-byte AF_INET)', () => n.sockBind(fd, bad4), R],
    ['sockBind(fd, 27-byte AF_INET6)', () => n.sockBind(fd, bad6), R],
    ['sockBind(fd, 1 byte)', () => n.sockBind(fd, new Uint8Array(1)), R],
    ['sockBind(fd, 129 bytes)', () => n.sockBind(fd, new Uint8Array(129)), R],
    ['sockBind(fd, 1 MiB)', () => n.sockBind(fd, new Uint8Array(1 << 20)), R],
    // (a short AF_UNIX address is well formed since unix sockets: the kernel judges it, test/net/unix.test.ts)
    ['sockBind(fd, AF_UNIX of 111 bytes)', () => n.sockBind(fd, Object.assign(new Uint8Array(111), { 0: 1 })), R],
    ['sockBind(fd, Int8Array)', () => n.sockBind(fd, new Int8Array(16) as unknown as Uint8Array), A],
    ['sockBind(fd, ArrayBuffer)', () => n.sockBind(fd, new ArrayBuffer(16) as unknown as Uint8Array), A],
    ['sockBind(fd, string)', () => n.sockBind(fd, '127.0.0.1' as unknown as Uint8Array), A],
    ['sockBind(fd)', () => x.sockBind!(fd), A],
    ['sockConnectSync(fd, 15-byte)', () => n.sockConnectSync(fd, bad4), R],
    ['sockConnectSync(fd, [])', () => n.sockConnectSync(fd, [] as unknown as Uint8Array), A],
    ['sockListen(fd, -1)', () => n.sockListen(fd, -1), R],
    ['sockListen(fd, 2**31)', () => n.sockListen(fd, 2 ** 31), R],
    ['sockListen(fd, "1")', () => n.sockListen(fd, '1' as unknown as number), A],
    ['sockShutdown(fd, 3)', () => n.sockShutdown(fd, 3), R],
    ['sockShutdown(fd, -1)', () => n.sockShutdown(fd, -1), R],
    ['sockSetInt(fd, -1, ...)', () => n.sockSetInt(fd, -1, 9, 1), R],
    ['sockSetInt(fd, 1, -1, ...)', () => n.sockSetInt(fd, 1, -1, 1), R],
    ['sockSetInt(fd, 1, 9, 2**31)', () => n.sockSetInt(fd, 1, 9, 2 ** 31), R],
    ['sockSetInt(fd, 1, 9, true)', () => n.sockSetInt(fd, 1, 9, true as unknown as number), A],
    ['sockSetInt(fd, 1, 9)', () => x.sockSetInt!(fd, 1, 9), A],
    ['sockGetInt(fd, 2**32, 9)', () => n.sockGetInt(fd, 2 ** 32, 9), R],
    ['sockGetInt(fd, 1, "9")', () => n.sockGetInt(fd, 1, '9' as unknown as number), A],
    ['sockSetBytes(fd, 1, 13, 4097 bytes)', () => n.sockSetBytes(fd, 1, 13, new Uint8Array(SOCKOPT_MAX + 1)), R],
    ['sockSetBytes(fd, 1, 13, 64 MiB)', () => n.sockSetBytes(fd, 1, 13, new Uint8Array(64 << 20)), R],
    ['sockSetBytes(fd, 1, 13, Uint16Array)', () => n.sockSetBytes(fd, 1, 13, new Uint16Array(4) as unknown as Uint8Array), A],
    ['sockSetBytes(fd, 1, 13, 8)', () => n.sockSetBytes(fd, 1, 13, 8 as unknown as Uint8Array), A],
    ['sockGetBytes(fd, 1, 13, 4097)', () => n.sockGetBytes(fd, 1, 13, SOCKOPT_MAX + 1), R],
    ['sockGetBytes(fd, 1, 13, 1e9)', () => n.sockGetBytes(fd, 1, 13, 1e9), R],
    ['sockGetBytes(fd, 1, 13, 2**53)', () => n.sockGetBytes(fd, 1, 13, 2 ** 53), R],
    ['sockGetBytes(fd, 1, 13, -1)', () => n.sockGetBytes(fd, 1, 13, -1), R],
    // Infinity is a number out of range (native/napi_util.c: beyond int64 is a range error)
    ['sockGetBytes(fd, 1, 13, Infinity)', () => n.sockGetBytes(fd, 1, 13, Infinity), R],
    ['sockGetBytes(fd, 1, 13)', () => x.sockGetBytes!(fd, 1, 13), A],
    ['sockName(fd, 1)', () => n.sockName(fd, 1 as unknown as boolean), A],
    ['sockName(fd)', () => x.sockName!(fd), A],
  );
  for (const [name, call, code] of cases) {
    assert.throws(call, (e: Error & { code?: string }) => {
      assert.equal(e.code, code, `${name}: ${e.message}`);
      assert.ok(e instanceof (code === A ? TypeError : RangeError), `${name}: ${e.constructor.name}`);
      return true;
    }, name);
  }
  // The socket is still fine after all that.
  n.sockBind(fd, a4);
  assert.equal(decodeSockaddr(n.sockName(fd, false)).address, '127.0.0.1');
});

test('the TypeScript option functions refuse bad values with maio error classes', () => {
  using s = sockets();
  const fd = s.open();
  const cases: [string, () => unknown, typeof InvalidArgumentError | typeof OutOfRangeError][] = [
    ['setNoDelay(fd, 1)', () => so.setNoDelay(fd, 1 as unknown as boolean), InvalidArgumentError],
    ['setNoDelay(-1)', () => so.setNoDelay(-1), OutOfRangeError],
    ['getNoDelay("x")', () => so.getNoDelay('x' as unknown as number), InvalidArgumentError],
    ['setKeepAlive(fd, "yes")', () => so.setKeepAlive(fd, 'yes' as unknown as boolean), InvalidArgumentError],
    ['setKeepAlive(fd, true, -1)', () => so.setKeepAlive(fd, true, -1), OutOfRangeError],
    ['setKeepAlive(fd, true, 1.5)', () => so.setKeepAlive(fd, true, 1.5), InvalidArgumentError],
    ['setKeepAlive(fd, true, 1e12)', () => so.setKeepAlive(fd, true, 1e12), OutOfRangeError],
    ['setKeepAlive count 0', () => so.setKeepAlive(fd, true, 1000, { count: 0 }), OutOfRangeError],
    ['setKeepAlive count 128', () => so.setKeepAlive(fd, true, 1000, { count: 128 }), OutOfRangeError],
    ['setKeepAlive interval huge', () => so.setKeepAlive(fd, true, 1000, { interval: 4e7 }), OutOfRangeError],
    ['setRecvBufferSize(fd, 0)', () => so.setRecvBufferSize(fd, 0), OutOfRangeError],
    ['setRecvBufferSize(fd, 2**31)', () => so.setRecvBufferSize(fd, 2 ** 31), OutOfRangeError],
    ['setSendBufferSize(fd, "1")', () => so.setSendBufferSize(fd, '1' as unknown as number), InvalidArgumentError],
    ['setReuseAddr(fd, undefined)', () => so.setReuseAddr(fd, undefined as unknown as boolean), InvalidArgumentError],
    ['setReusePort(2**31, true)', () => so.setReusePort(2 ** 31, true), OutOfRangeError],
    ['setV6Only(fd, null)', () => so.setV6Only(fd, null as unknown as boolean), InvalidArgumentError],
    ['setUserTimeout(fd, -5)', () => so.setUserTimeout(fd, -5), OutOfRangeError],
    ['setLinger(fd, -1)', () => so.setLinger(fd, -1), OutOfRangeError],
    ['setLinger(fd, "5")', () => so.setLinger(fd, '5' as unknown as number), InvalidArgumentError],
    ['setsockopt level -1', () => so.setsockopt(fd, -1, 1, 1), OutOfRangeError],
    ['setsockopt huge bytes', () => so.setsockopt(fd, 1, 13, new Uint8Array(SOCKOPT_MAX + 1)), OutOfRangeError],
    ['getsockoptBytes maxLen 1e6', () => so.getsockoptBytes(fd, 1, 13, 1e6), OutOfRangeError],
  ];
  for (const [name, call, Cls] of cases) assert.throws(call, Cls, name);
  // Validation happens before anything changes.
  so.setKeepAlive(fd, false);
  assert.throws(() => so.setKeepAlive(fd, true, 1000, { count: 0 }), OutOfRangeError);
  assert.equal(so.getKeepAlive(fd).enabled, false);
});

test('a closed fd gives node:net-shaped EBADF errors from every entry point; a non-socket gives ENOTSOCK', () => {
  // Nothing asynchronous runs between close and the calls, so the number is not reused meanwhile.
  const fd = n.sockOpen(4, 'tcp');
  n.sockClose(fd);
  const a4 = sockaddr('127.0.0.1', 0);
  const calls: [string, () => unknown][] = [
    ['bind', () => n.sockBind(fd, a4)],
    ['listen', () => n.sockListen(fd, 1)],
    ['connect', () => n.sockConnectSync(fd, a4)],
    ['accept', () => n.sockAccept(fd)],
    ['shutdown', () => n.sockShutdown(fd, 2)],
    ['close', () => n.sockClose(fd)],
    ['setsockopt', () => n.sockSetInt(fd, 1, 9, 1)],
    ['getsockopt', () => n.sockGetInt(fd, 1, 9)],
    ['setsockopt', () => n.sockSetBytes(fd, 1, 13, new Uint8Array(8))],
    ['getsockopt', () => n.sockGetBytes(fd, 1, 13, 8)],
    ['getsockname', () => n.sockName(fd, false)],
    ['getpeername', () => n.sockName(fd, true)],
    ['getsockopt', () => n.sockError(fd)],
    ['setsockopt', () => so.setNoDelay(fd)],
    ['getsockopt', () => so.getLinger(fd)],
  ];
  for (const [syscall, call] of calls) {
    assert.throws(call, (e: NodeJS.ErrnoException) => {
      assert.ok(e instanceof Error);
      assert.equal(e.code, 'EBADF', syscall);
      assert.equal(e.errno, -9, syscall);
      assert.equal(e.syscall, syscall);
      assert.match(e.message, new RegExp(`^${syscall} EBADF`));
      return true;
    }, syscall);
  }
  // The largest fd number is valid as an argument but never open.
  assert.throws(() => n.sockClose(2 ** 31 - 1), { code: 'EBADF', errno: -9, syscall: 'close' });

  const file = fs.openSync('/dev/null', 'r');
  try {
    assert.throws(() => n.sockBind(file, a4), { code: 'ENOTSOCK', errno: -88, syscall: 'bind' });
    assert.throws(() => n.sockAccept(file), { code: 'ENOTSOCK', syscall: 'accept' });
    assert.throws(() => so.getNoDelay(file), { code: 'ENOTSOCK', syscall: 'getsockopt' });
  } finally {
    fs.closeSync(file);
  }
});
