/**
 * Micro-benchmark behind maio/net's held-write threshold (HELD_WRITE_MIN in
 * src/net/socket-send.ts): a maio/net socket writes fresh Buffers of one
 * size (as TLS hands over each encrypted write) into the C sink
 * (bench/build/sink, another process), once with every write copied into
 * pool buffers ('copy') and once with every write sent from the caller's
 * Buffer ('held'). Figures: Gbit/s and this process's CPU ns per KiB
 * written. Each mode runs in a child process (the threshold is read at
 * load, from MAIO_HELD_WRITE_MIN); rounds alternate the order.
 * Run: `npm run build:ts && node dist/bench/micro/held-write.js`
 * (MAIO_BENCH_ROUNDS, default 3; MAIO_BENCH_SECONDS, default 1;
 * MAIO_BENCH_SIZES=a,b: sizes in bytes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROUNDS = Number(process.env.MAIO_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.MAIO_BENCH_SECONDS ?? 1);
const SIZES = (process.env.MAIO_BENCH_SIZES ?? '1024,4096,16384,65536').split(',').filter(Boolean).map(Number);
const root = path.resolve(__dirname, '..', '..', '..');
const sinkPath = path.join(root, 'bench', 'build', 'sink');

interface Sample {
  gbps: number;
  nsPerKiB: number;
}

/** Child: writes `size`-byte Buffers to the sink for SECONDS, prints a Sample. */
async function child(port: number, size: number): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mnet = require('../../src/net/compat/index') as typeof import('../../src/net/compat/index');
  const s = mnet.connect(port, '127.0.0.1');
  await once(s, 'connect');
  const end = Date.now() + SECONDS * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  while (Date.now() < end) {
    let ok = true;
    for (let i = 0; i < 64 && ok; i++) {
      ok = s.write(Buffer.allocUnsafe(size));
      bytes += size;
    }
    if (!ok) await once(s, 'drain');
    else await new Promise((r) => setImmediate(r));
  }
  await new Promise<void>((r) => s.end(r));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const sample: Sample = { gbps: (bytes * 8) / secs / 1e9, nsPerKiB: ((cpu.user + cpu.system) * 1000) / (bytes / 1024) };
  process.stdout.write(JSON.stringify(sample) + '\n');
  s.destroy();
}

/**
 * No peer: what each way costs per write, in this process. 'copy' is a
 * write's copy into a pool buffer (the bytes in cache, as a just-encrypted
 * record is); 'hold' is the ring's side of a held piece: 64 SENDVs of 16
 * pieces per flush to an unconnected socket (the kernel fails each at
 * once), held pieces against pool pieces, so the difference per piece is
 * the buffer list, the reference taken at submit and dropped at the CQE.
 * CPU time, not wall time: the machine these run on is shared.
 */
async function costs(): Promise<Record<string, number | string>[]> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { defaultPool } = require('../../src/pool/pool') as typeof import('../../src/pool/pool');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { currentRing } = require('../../src/ring/current') as typeof import('../../src/ring/current');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { native } = require('../../src/core/native') as typeof import('../../src/core/native');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { kPoolId } = require('../../src/core/symbols') as typeof import('../../src/core/symbols');
  const rows: Record<string, number | string>[] = [];
  const pool = defaultPool();
  const dst = pool.tryAlloc(65536)!;
  for (const size of [256, 1024, 4096, 16384, 65536]) {
    const src = Buffer.allocUnsafe(size);
    const n = Math.max(2000, (64 << 20) / size);
    const bytes = dst.bytes;
    for (let i = 0; i < 1000; i++) bytes.set(src);
    const t0 = cpuNs();
    for (let i = 0; i < n; i++) bytes.set(src);
    rows.push({ what: `copy ${size} B into a pool buffer`, ns: Math.round((cpuNs() - t0) / n) });
  }
  dst.release();
  const ring = currentRing();
  if (ring.sendvMax < 16) return rows;
  const fd = native().sockOpen(4, 'tcp');
  const piece = pool.tryAlloc(4096)!;
  const segs = new Int32Array(32);
  for (let k = 0; k < 16; k++) {
    segs[2 * k] = piece.offset;
    segs[2 * k + 1] = 256;
  }
  const bufs = Array.from({ length: 16 }, () => Buffer.allocUnsafe(256));
  let left = 0;
  let wake: () => void = () => {};
  const target = { onCompletion: () => { if (--left === 0) wake(); } };
  const run = async (held: Buffer[] | null, batches: number): Promise<number> => {
    const t0 = cpuNs();
    for (let b = 0; b < batches; b++) {
      const done = new Promise<void>((r) => (wake = r));
      left = 64;
      for (let i = 0; i < 64; i++) ring.sendv(target, fd, (pool as unknown as Record<symbol, number>)[kPoolId], segs, 16, 16 * 256, 0, 0, held);
      ring.flush();
      await done;
    }
    return (cpuNs() - t0) / (batches * 64 * 16);
  };
  await run(null, 50);
  await run(bufs, 50);
  const plain: number[] = [];
  const heldNs: number[] = [];
  for (let r = 0; r < 5; r++) {
    plain.push(await run(null, 300));
    heldNs.push(await run(bufs, 300));
  }
  piece.release();
  native().sockClose(fd);
  const p = median(plain);
  const h = median(heldNs);
  rows.push({ what: 'SENDV piece of pool memory (submit, CQE, dispatch; /16 per op)', ns: Math.round(p) });
  rows.push({ what: 'SENDV piece of a held Buffer', ns: Math.round(h) });
  rows.push({ what: 'holding a piece, the difference', ns: Math.round(h - p) });
  return rows;
}

/** This process's CPU time (user + system), ns: a busy machine stretches wall time, not this. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export async function benchHeldWrite(): Promise<object> {
  if (!fs.existsSync(sinkPath)) throw new Error('bench/build/sink is missing: run `bash scripts/bench-setup.sh`');
  const sink = spawn(sinkPath, ['0', String(512 << 10)], { stdio: ['ignore', 'pipe', 'inherit'] });
  process.on('exit', () => sink.kill());
  const [line] = (await once(sink.stdout!, 'data')) as [Buffer];
  const port = Number(/listening (\d+)/.exec(line.toString())![1]);
  const modes: [string, string][] = [
    ['copy', String(2 ** 31)],
    ['held', '0'],
  ];
  const rows: Record<string, number | string>[] = [];
  const perOp = await costs();
  for (const size of SIZES) {
    const got = new Map<string, Sample[]>(modes.map(([m]) => [m, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? modes : [...modes].reverse();
      for (const [mode, min] of order) {
        const out = execFileSync(process.execPath, [__filename, 'child', String(port), String(size)], {
          env: { ...process.env, MAIO_HELD_WRITE_MIN: min },
          encoding: 'utf8',
        });
        got.get(mode)!.push(JSON.parse(out.trim().split('\n').pop()!) as Sample);
      }
    }
    const row: Record<string, number | string> = { size };
    for (const [mode] of modes) {
      const xs = got.get(mode)!;
      row[`${mode} Gbit/s`] = +median(xs.map((x) => x.gbps)).toFixed(2);
      row[`${mode} ns/KiB`] = Math.round(median(xs.map((x) => x.nsPerKiB)));
    }
    row['held/copy CPU'] = +((row['held ns/KiB'] as number) / (row['copy ns/KiB'] as number)).toFixed(2);
    rows.push(row);
  }
  sink.kill();
  return { costs: perOp, writes: rows };
}

if (require.main === module) {
  if (process.argv[2] === 'child') {
    child(Number(process.argv[3]), Number(process.argv[4])).catch((err) => {
      console.error(err);
      process.exit(1);
    });
  } else {
    benchHeldWrite().then(
      (r) => {
        console.table((r as { costs: object[] }).costs);
        console.table((r as { writes: object[] }).writes);
        process.exit(0);
      },
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
}
