/**
 * Micro-benchmark of the I/O pool: alloc + release per second, small (64 B)
 * and large (64 KiB) buffers, in the default mode, strict mode (an external
 * ArrayBuffer per allocation, detached on release) and zeroOnRelease; with
 * and without touching `bytes`. Baselines: what Node code does without a
 * pool (Buffer.allocUnsafe, new Uint8Array).
 *
 * Each case runs in several short rounds (the machine is noisy); the median
 * round is reported.
 */
import { createPool, type IoPool } from '../../src/index';

const ROUNDS = Number(process.env.MAIO_BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.MAIO_BENCH_ROUND_MS ?? 200);

export interface PoolBenchCase {
  name: string;
  size: number;
  mode: string;
  opsPerSec: number;
  nsPerOp: number;
}

function measure(fn: (n: number) => void): number {
  // Warm up, then find a batch size that takes ~10 ms.
  fn(1000);
  let batch = 1000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    fn(batch);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > 10 || batch > 1e7) break;
    batch *= 2;
  }
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let ops = 0;
    const t0 = process.hrtime.bigint();
    let ns = 0;
    while (ns < ROUND_MS * 1e6) {
      fn(batch);
      ops += batch;
      ns = Number(process.hrtime.bigint() - t0);
    }
    rates.push((ops / ns) * 1e9);
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

function poolFor(mode: string): IoPool {
  return createPool({
    size: 16 << 20,
    register: false,
    strict: mode === 'strict',
    zeroOnRelease: mode === 'zeroOnRelease',
  });
}

export async function benchPool(): Promise<object> {
  const cases: PoolBenchCase[] = [];
  const add = (name: string, size: number, mode: string, fn: (n: number) => void) => {
    const opsPerSec = measure(fn);
    cases.push({ name, size, mode, opsPerSec: Math.round(opsPerSec), nsPerOp: Math.round((1e9 / opsPerSec) * 10) / 10 });
  };
  let sink = 0;
  for (const size of [64, 64 * 1024]) {
    for (const mode of ['default', 'strict', 'zeroOnRelease']) {
      const pool = poolFor(mode);
      add(`alloc+release ${size} B`, size, mode, (n) => {
        for (let i = 0; i < n; i++) pool.alloc(size).release();
      });
      add(`alloc+bytes[0]=1+release ${size} B`, size, mode, (n) => {
        for (let i = 0; i < n; i++) {
          const b = pool.alloc(size);
          b.bytes[0] = 1;
          b.release();
        }
      });
      // A working set: 64 buffers out at once, recycled round-robin.
      const ring = Array.from({ length: 64 }, () => pool.alloc(size));
      add(`recycle (64 live) ${size} B`, size, mode, (n) => {
        for (let i = 0; i < n; i++) {
          const k = i & 63;
          ring[k].release();
          ring[k] = pool.alloc(size);
        }
      });
      for (const b of ring) b.release();
      pool.close();
    }
    add(`Buffer.allocUnsafe ${size} B (baseline)`, size, 'node', (n) => {
      for (let i = 0; i < n; i++) sink += Buffer.allocUnsafe(size).length;
    });
    add(`new Uint8Array ${size} B (baseline)`, size, 'node', (n) => {
      for (let i = 0; i < n; i++) sink += new Uint8Array(size).length;
    });
  }
  cases.push(...benchZeroPerSize());
  if (sink < 0) console.log(sink);
  return { rounds: ROUNDS, roundMs: ROUND_MS, cases };
}

/**
 * What wiping costs per size class: zeroOnRelease clears the whole slot
 * (its class size, not the bytes used), so the cost follows the class.
 * Each request size is a class size of the default layout; modes:
 * default, zeroOnRelease, and strict + zeroOnRelease (the isolation setting).
 */
export function benchZeroPerSize(sizes: number[] = [2048, 16384, 65536, 262144]): PoolBenchCase[] {
  const cases: PoolBenchCase[] = [];
  for (const size of sizes) {
    for (const mode of ['default', 'zeroOnRelease', 'strict+zeroOnRelease']) {
      const pool = createPool({
        size: 16 << 20,
        register: false,
        strict: mode.startsWith('strict'),
        zeroOnRelease: mode !== 'default',
      });
      const opsPerSec = measure((n) => {
        for (let i = 0; i < n; i++) {
          const b = pool.alloc(size);
          b.bytes[0] = 1;
          b.release();
        }
      });
      cases.push({ name: `zero per size: alloc+bytes[0]=1+release ${size} B`, size, mode, opsPerSec: Math.round(opsPerSec), nsPerOp: Math.round((1e9 / opsPerSec) * 10) / 10 });
      pool.close();
    }
  }
  return cases;
}

if (require.main === module && process.argv.includes('--zero-per-size')) {
  for (const c of benchZeroPerSize()) console.log(`${String(c.size).padStart(7)} B  ${c.mode.padEnd(22)} ${String(c.nsPerOp).padStart(9)} ns/op  ${c.opsPerSec} ops/s`);
}
