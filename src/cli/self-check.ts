/**
 * maio self-check: one process, one loopback connection on this thread's backend and ring
 * set-up (MAIO_BACKEND, MAIO_RING_SETUP), measured twice: a 64-byte ping-pong, then a short bulk
 * stream. Prints one JSON object on stdout. `maio doctor` runs it once per backend and set-up in
 * child processes, and test/ring/wakeup.test.ts runs it to catch late wake-ups; `--impl node`
 * measures node:net the same way, as the reference line.
 *
 * The server end runs on this thread and the client end on a worker thread (its own ring), so a
 * late wake-up on either side shows in the round trip.
 */
import * as net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { backend } from '../backend';
import { connect, createServer } from '../net/server';
import type { Socket } from '../net/socket';
import type { IoBuffer } from '../pool/buffer';
import { announce, parseArgs } from './args';

export const usage = 'maio self-check [--round-trips N] [--duration-ms MS] [--bulk-ms MS] [--impl maio|node]';
export const help = `  --round-trips N    stop the ping-pong after N round trips (default: no limit, --duration-ms ends it)
  --duration-ms MS   longest the ping-pong runs (default 1000)
  --bulk-ms MS       length of the bulk stream after it (default 500; 0: none)
  --impl maio|node   maio's sockets (default) or node:net's, measured the same way
  Prints one JSON object: round trips/s, p50/p99, stalls of 10 ms or more, Gbit/s.`;

/** A round trip this long is a stalled wake-up, not a slow machine (a busy 2-core one stays far below). */
export const STALL_US = 10_000;

export interface PingPongResult {
  roundTrips: number;
  seconds: number;
  perSecond: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** round trips of STALL_US or more */
  stalls: number;
}

export interface BulkResult {
  bytes: number;
  seconds: number;
  gbits: number;
}

export interface SelfCheckResult {
  impl: 'maio' | 'node';
  /** backend().summary, or 'node:net' */
  backend: string;
  mode: string;
  setup: string;
  pingPong: PingPongResult;
  bulk: BulkResult | null;
}

const MSG = 64;
const CHUNK = 64 * 1024;

type Impl = 'maio' | 'node';
type Role = { impl: Impl; kind: 'ping' | 'blast'; port: number; roundTrips: number; durationMs: number };

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]! : 0;
}

/**
 * The server end, on this thread: echo (send each buffer back) or sink (count bytes).
 * The client end runs in a worker thread, so every wake-up crosses threads as it does
 * between processes: within one thread, data sent on loopback is delivered during the
 * sender's own system call and the reap loop finds it without ever sleeping, which
 * hides a late eventfd completely.
 */
async function startServer(impl: Impl, echo: boolean): Promise<{ port: number; received(): number; close(): Promise<void> }> {
  let received = 0;
  const peers = new Set<{ destroy(): void }>();
  let close: (cb: () => void) => void;
  let port: number;
  if (impl === 'maio') {
    const server = createServer((s: Socket) => {
      peers.add(s);
      s.on('error', () => {});
      s.on('close', () => peers.delete(s));
      s.on('data', (buf: IoBuffer) => {
        if (!echo) received += buf.length;
        else if (!s.send(buf)) s.pause();
      });
      s.on('drain', () => s.resume());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    port = (server.address() as net.AddressInfo).port;
    close = (cb) => server.close(cb);
  } else {
    const server = net.createServer((s) => {
      peers.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.on('close', () => peers.delete(s));
      s.on('data', (d: Buffer) => {
        if (echo) s.write(d);
        else received += d.length;
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    port = (server.address() as net.AddressInfo).port;
    close = (cb) => server.close(() => cb());
  }
  return {
    port,
    received: () => received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of peers) p.destroy();
        close(resolve);
      }),
  };
}

/** The client end (in the worker): resolves with the round-trip latencies in microseconds, or [] for a blast. */
async function runClient(role: Role): Promise<number[]> {
  const client: { write(b: Uint8Array): boolean; on(ev: string, f: (...a: any[]) => void): unknown; destroy(): void } =
    role.impl === 'maio'
      ? connect({ port: role.port, host: '127.0.0.1' })
      : net.connect({ port: role.port, host: '127.0.0.1', noDelay: true });
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    client.on('connect', () => resolve());
    client.on('error', reject);
  });
  const lat: number[] = [];
  const start = performance.now();
  const deadline = start + role.durationMs;
  try {
    await new Promise<void>((resolve) => {
      // A ring that never wakes at all must still end the check.
      setTimeout(resolve, role.durationMs + 2000).unref();
      if (role.kind === 'blast') {
        const chunk = new Uint8Array(CHUNK).fill(0x62);
        const pump = (): void => {
          while (performance.now() < deadline) if (!client.write(chunk)) return; // 'drain' resumes
          resolve();
        };
        client.on('drain', pump);
        pump();
        return;
      }
      const msg = new Uint8Array(MSG).fill(0x70);
      let got = 0;
      let sent = performance.now();
      client.on('data', (chunk: { length: number }) => {
        got += chunk.length;
        if (got < MSG) return;
        got -= MSG;
        const now = performance.now();
        lat.push((now - sent) * 1000);
        if (lat.length >= role.roundTrips || now >= deadline) return resolve();
        sent = now;
        client.write(msg);
      });
      client.write(msg);
    });
  } finally {
    // Let the last writes reach the server before the connection goes (bounded).
    await new Promise((r) => setTimeout(r, role.kind === 'blast' ? 50 : 0));
    client.destroy();
  }
  return lat;
}

function inWorker(role: Role): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: { maioSelfCheck: role } });
    w.once('message', (lat: number[]) => resolve(lat));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`self-check worker exited with code ${code}`)));
  });
}

/** 64-byte round trips until `roundTrips` are done or `durationMs` has passed. */
export async function pingPong(impl: Impl, roundTrips: number, durationMs: number): Promise<PingPongResult> {
  const server = await startServer(impl, true);
  const start = performance.now();
  let lat: number[];
  try {
    lat = await inWorker({ impl, kind: 'ping', port: server.port, roundTrips, durationMs });
  } finally {
    await server.close();
  }
  const seconds = lat.reduce((a, b) => a + b, 0) / 1e6 || (performance.now() - start) / 1000;
  const sorted = [...lat].sort((a, b) => a - b);
  return {
    roundTrips: lat.length,
    seconds,
    perSecond: seconds > 0 ? lat.length / seconds : 0,
    p50Us: quantile(sorted, 0.5),
    p99Us: quantile(sorted, 0.99),
    maxUs: sorted.length ? sorted[sorted.length - 1]! : 0,
    stalls: lat.filter((x) => x >= STALL_US).length,
  };
}

/** One connection sending 64 KiB writes for `durationMs`; this thread's server counts what arrived. */
export async function bulk(impl: Impl, durationMs: number): Promise<BulkResult> {
  const server = await startServer(impl, false);
  const start = performance.now();
  let seconds: number;
  try {
    await inWorker({ impl, kind: 'blast', port: server.port, roundTrips: 0, durationMs });
    seconds = (performance.now() - start) / 1000;
  } finally {
    await server.close();
  }
  const bytes = server.received();
  return { bytes, seconds, gbits: seconds > 0 ? (bytes * 8) / seconds / 1e9 : 0 };
}

export async function selfCheck(impl: Impl, roundTrips: number, durationMs: number, bulkMs: number): Promise<SelfCheckResult> {
  const b = impl === 'maio' ? backend() : null;
  const pp = await pingPong(impl, roundTrips, durationMs);
  const bk = bulkMs > 0 ? await bulk(impl, bulkMs) : null;
  return {
    impl,
    backend: b ? b.summary : `node:net (node ${process.version})`,
    mode: b ? b.mode : 'node:net',
    setup: b?.ringSetup?.mode ?? '',
    pingPong: pp,
    bulk: bk,
  };
}

export function run(argv: string[]): void {
  const o = parseArgs(
    argv,
    { 'round-trips': 'number', 'duration-ms': 'number', 'bulk-ms': 'number', impl: 'string' },
    { 'round-trips': 1_000_000 as number, 'duration-ms': 1000 as number, 'bulk-ms': 500 as number, impl: 'maio' as string },
  );
  if (o.impl !== 'maio' && o.impl !== 'node') throw new Error(`--impl must be 'maio' or 'node', got '${o.impl}'`);
  announce();
  selfCheck(o.impl, o['round-trips'], o['duration-ms'], o['bulk-ms']).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`maio self-check: ${err.message}\n`);
      process.exit(1);
    },
  );
}

// Loaded as the self-check's worker: run the client end and post its latencies.
if (!isMainThread && workerData?.maioSelfCheck) {
  runClient(workerData.maioSelfCheck as Role).then(
    (lat) => {
      parentPort!.postMessage(lat);
      setImmediate(() => process.exit(0));
    },
    (err: Error) => {
      throw err;
    },
  );
}
