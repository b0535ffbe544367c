/** Shared by the test/net tests: skips, waiting, pool snapshots, checksummed transfers. */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import { backend } from '../../src/backend';
import { native } from '../../src/core/native';
import { decodeSockaddr, sockaddr } from '../../src/net/address';
import { defaultPool, type IoPool } from '../../src/pool/pool';
import { connect } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';

/**
 * For tests of the public socket API, which run on either backend (npm test
 * runs the suite once per backend): a reason only when no backend is usable.
 */
export const netSkip: string | false = (() => {
  try {
    backend();
    return false;
  } catch (e) {
    return String(e);
  }
})();

/** For tests of io_uring itself (SEND_ZC with fixed buffers, provided-buffer rings). */
export const uringSkip: string | false = (() => {
  try {
    const b = backend();
    if (b.mode !== 'io_uring') return `backend is ${b.mode}: ${b.reason}`;
    if (!b.capabilities.pbufRing || !b.capabilities.multishotRecv) return 'io_uring lacks provided-buffer rings or multishot recv';
    return false;
  } catch (e) {
    return String(e);
  }
})();

/** MAIO_TEST_BYTES (default 64 MiB): bytes per checksummed transfer. */
export const TEST_BYTES = Number(process.env.MAIO_TEST_BYTES ?? 64 * 1024 * 1024);

export async function until(cond: () => boolean, what: string, limitMs = 30000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * `p`, or a failed assertion naming `what` after `limitMs`: every wait of a
 * test bounded, so a missing event fails the test instead of hanging it.
 */
export async function bounded<T>(p: PromiseLike<T>, what: string, limitMs = 30000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `timed out waiting for ${what}` })), limitMs);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `fn` and counts the calls of the global setImmediate meanwhile (maio's
 * own code calls the global): a wait must be signalled, not polled.
 */
export async function countImmediates<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const real = globalThis.setImmediate;
  let calls = 0;
  globalThis.setImmediate = ((...args: Parameters<typeof setImmediate>) => {
    calls++;
    return real(...args);
  }) as typeof setImmediate;
  try {
    return [await fn(), calls];
  } finally {
    globalThis.setImmediate = real;
  }
}

/** Records the pool's use now; check() waits until it is back to that. */
export function poolGuard(pool: IoPool = defaultPool()) {
  const before = pool.stats();
  return {
    async check(what = 'the pool'): Promise<void> {
      await until(() => {
        const s = pool.stats();
        return s.inUse === before.inUse && s.lent === before.lent;
      }, `${what} back as it was (inUse ${before.inUse}, lent ${before.lent}; now ${JSON.stringify((({ inUse, lent }) => ({ inUse, lent }))(pool.stats()))})`);
    },
  };
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 8 MiB of pseudo-random bytes that chunks are cut from. */
export const SOURCE: Buffer = (() => {
  const r = rng(12345);
  const b = Buffer.alloc(8 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((r() * 4294967296) >>> 0, i);
  return b;
})();

/** Log-uniform chunk sizes from 1 byte to `max`. */
export function chunkSize(r: () => number, max = 4 << 20): number {
  return Math.max(1, Math.min(max, Math.floor(Math.exp(r() * Math.log(max + 1)))));
}

export type SendMode = 'send' | 'write' | 'mixed';

/**
 * Sends `total` bytes of random chunks from a maio socket (send(), write(),
 * or both at random), honouring backpressure, then end(). Returns the sha256.
 */
export async function maioPump(sock: Socket, total: number, mode: SendMode, seed: number): Promise<string> {
  const r = rng(seed);
  const h = createHash('sha256');
  const pool = sock.pool;
  let sent = 0;
  let at = 0;
  while (sent < total) {
    const size = Math.min(chunkSize(r), total - sent);
    if (at + size > SOURCE.length) at = 0;
    const chunk = SOURCE.subarray(at, at + size);
    at += size;
    h.update(chunk);
    let ok = true;
    if (mode === 'send' || (mode === 'mixed' && r() < 0.5)) {
      for (let o = 0; o < size; ) {
        const n = Math.min(size - o, pool.maxAllocSize);
        const buf = pool.tryAlloc(n) ?? (await pool.allocWait(n));
        buf.bytes.set(chunk.subarray(o, o + n));
        ok = sock.send(buf);
        o += n;
      }
    } else {
      ok = sock.write(chunk);
    }
    sent += size;
    if (!ok) await once(sock, 'drain');
  }
  sock.end();
  return h.digest('hex');
}

/** Same from a node:net socket (write() only). */
export async function nodePump(sock: net.Socket, total: number, seed: number): Promise<string> {
  const r = rng(seed);
  const h = createHash('sha256');
  let sent = 0;
  let at = 0;
  while (sent < total) {
    const size = Math.min(chunkSize(r), total - sent);
    if (at + size > SOURCE.length) at = 0;
    const chunk = SOURCE.subarray(at, at + size);
    at += size;
    h.update(chunk);
    sent += size;
    if (!sock.write(chunk)) await once(sock, 'drain');
  }
  sock.end();
  return h.digest('hex');
}

/** Hashes everything a maio socket receives until 'end'. */
export function maioDrain(sock: Socket): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  sock.on('data', (buf) => {
    h.update(buf.bytes);
    bytes += buf.length;
  });
  return new Promise((resolve, reject) => {
    sock.once('end', () => resolve({ hash: h.digest('hex'), bytes }));
    sock.once('error', reject);
  });
}

export function nodeDrain(sock: net.Socket): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  sock.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  return new Promise((resolve, reject) => {
    sock.once('end', () => resolve({ hash: h.digest('hex'), bytes }));
    sock.once('error', reject);
  });
}

/** Resolves with hadError at 'close' (unlike events.once, an 'error' does not reject it). */
export function closed(s: { once(ev: 'close', f: (hadError?: boolean) => void): unknown }): Promise<boolean> {
  return new Promise((r) => s.once('close', (hadError?: boolean) => r(hadError === true)));
}

/** The next 'data' buffer's bytes, copied (the buffer is released when the handler returns). */
export function nextData(s: { once(ev: 'data', f: (b: { bytes: Uint8Array }) => void): unknown }): Promise<string> {
  return new Promise((r) => s.once('data', (b) => r(Buffer.from(b.bytes).toString())));
}

/**
 * A listening socket that never accepts, its accept queue filled: later SYNs
 * are dropped, so a connect to it stays in progress (backlog 0 holds one).
 */
export async function silentListener(): Promise<{ port: number; close(): void }> {
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  n.sockBind(fd, sockaddr('127.0.0.1', 0));
  n.sockListen(fd, 0);
  const port = decodeSockaddr(n.sockName(fd, false)).port;
  const filler = net.connect(port, '127.0.0.1');
  filler.on('error', () => {});
  await bounded(new Promise<void>((resolve) => filler.once('connect', () => resolve())), 'the filler to connect');
  return {
    port,
    close() {
      filler.destroy();
      n.sockClose(fd);
    },
  };
}

/**
 * A node:net server that hashes what it receives, and a maio client connected
 * to it (plain sends: zeroCopy 'never'). `onSocket` sees the accepted socket
 * first (e.g. to pause it); `peer()` is that socket.
 */
export async function sinkPair(onSocket?: (s: net.Socket) => void) {
  let accepted: net.Socket | undefined;
  let got: Promise<{ hash: string; bytes: number }> | undefined;
  const server = net.createServer((s) => {
    accepted = s;
    got = nodeDrain(s);
    onSocket?.(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', zeroCopy: 'never' });
  await new Promise<void>((r, j) => {
    c.once('connect', r);
    c.once('error', j);
  });
  await until(() => got !== undefined, 'the accepted socket');
  return { server, c, peer: () => accepted!, received: () => got! };
}
