/** Shared by the ring tests (both engines): loopback socket pairs, pools, waiting, workers. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { native, type PoolCreateResult } from '../../src/core/native';
import { sockaddr } from '../../src/net/address';
import type { IoRing } from '../../src/ring/io-ring';
import type { CompletionTarget } from '../../src/ring/ring';

/** dist/src/ring/ring.js and dist/src/core/native.js, for child processes and workers. */
export const ringJs = path.join(__dirname, '..', '..', 'src', 'ring', 'ring.js');
export const nativeJs = path.join(__dirname, '..', '..', 'src', 'core', 'native.js');

export const ECANCELED = -125;
export const ENOBUFS = -105;
export const ECONNREFUSED = -111;
export const EPIPE = -32;
export const EINVAL = -22;
export const ENOENT = -2;

export const tick = () => new Promise((r) => setImmediate(r));

export async function until(cond: () => boolean, what: string): Promise<void> {
  let ok = cond();
  for (let i = 0; i < 20000 && !ok; i++) {
    await new Promise((r) => setTimeout(r, i < 100 ? 0 : 5));
    ok = cond();
  }
  assert.ok(ok, `timed out waiting for ${what}`);
}

export class Collector implements CompletionTarget {
  events: [number, number, number][] = [];
  onCompletion(opId: number, res: number, flags: number): void {
    this.events.push([opId, res, flags]);
  }
}

export function portOf(addr: Uint8Array): number {
  return (addr[2] << 8) | addr[3];
}

/** A listening socket on 127.0.0.1, port chosen by the kernel. */
export function listener(backlog = 64): { fd: number; port: number } {
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  n.sockBind(fd, sockaddr('127.0.0.1', 0));
  n.sockListen(fd, backlog);
  return { fd, port: portOf(n.sockName(fd, false)) };
}

/** A connected loopback pair of nonblocking sockets made with the native set-up calls. */
export async function socketPair(): Promise<{ a: number; b: number; close: () => void }> {
  const n = native();
  const l = listener();
  const a = n.sockOpen(4, 'tcp');
  const r = n.sockConnectSync(a, sockaddr('127.0.0.1', l.port));
  assert.ok(r === 0 || r === -115, `connect: ${r}`);
  let b = -11;
  await until(() => (b = n.sockAccept(l.fd)) >= 0, 'accept');
  n.sockClose(l.fd);
  await until(() => n.sockError(a) === 0 && safePeer(a), 'connected');
  return {
    a,
    b,
    close() {
      for (const fd of [a, b]) {
        try {
          n.sockClose(fd);
        } catch {
          // closed by the test already
        }
      }
    },
  };
}

function safePeer(fd: number): boolean {
  try {
    native().sockName(fd, true);
    return true;
  } catch {
    return false;
  }
}

/** A pool of `size` bytes attached to `ring`; done() detaches and closes it. */
export function withPool(ring: IoRing, size = 1 << 20): { pool: PoolCreateResult; index: number; bytes: Uint8Array; done: () => void } {
  const n = native();
  const pool = n.poolCreate({ size });
  const att = ring.attachPool(pool.handle);
  return {
    pool,
    index: att.index,
    bytes: new Uint8Array(pool.region),
    done() {
      if (!ring.closed) ring.detachPool(att.index);
      n.poolClose(pool.handle);
    },
  };
}

/** A pool attached to `ring` and a connected loopback pair, for `body`; both undone after it. */
export async function withPoolAndPair(
  ring: IoRing,
  body: (p: ReturnType<typeof withPool>, s: Awaited<ReturnType<typeof socketPair>>) => Promise<void>,
): Promise<void> {
  const p = withPool(ring);
  const s = await socketPair();
  try {
    await body(p, s);
  } finally {
    s.close();
    p.done();
  }
}

/**
 * withPoolAndPair, with provided-buffer group 7 (4 entries) registered for
 * `body`: its owner records each refused buffer in `failed` as (bid, res).
 */
export async function withBufferGroup(
  ring: IoRing,
  body: (
    p: ReturnType<typeof withPool>,
    s: Awaited<ReturnType<typeof socketPair>>,
    group: number,
    owner: { onProvideFailed(bid: number, res: number): void },
    failed: [number, number][],
  ) => Promise<void>,
): Promise<void> {
  const group = 7;
  const failed: [number, number][] = [];
  const owner = { onProvideFailed: (bid: number, res: number) => failed.push([bid, res]) };
  await withPoolAndPair(ring, async (p, s) => {
    ring.registerBufRing(group, 4, owner);
    try {
      await body(p, s, group, owner, failed);
    } finally {
      ring.unregisterBufRing(group);
    }
  });
}

/** Runs `code` in a worker thread: its exit code and the messages it posted. */
export function runWorker(code: string): Promise<{ exit: number; messages: any[] }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    const messages: any[] = [];
    w.on('message', (m) => messages.push(m));
    w.on('error', reject);
    w.on('exit', (exit) => resolve({ exit, messages }));
  });
}
