/**
 * Micro-benchmark of maio/net's stream data path against node:net, all
 * contenders in one run, in rotated order, a fresh server per round, the C
 * loadgen (bench/build/loadgen, `bash scripts/bench-setup.sh` builds it) as
 * the peer in another process:
 *
 *   bulk    loadgen send (64 KiB writes) -> a sink in this process
 *           (`socket.on('data', () => {})`): Gbit/s and this process's CPU
 *           s per GB
 *   rr      loadgen reqresp, 1 connection, 64 B -> an echo server in this
 *           process: round trips/s and CPU us per round trip
 *   proxy   loadgen send -> a proxy in this process (`a.pipe(b)`) -> the C
 *           sink: Gbit/s and CPU s per GB
 *   costs   no sockets: ns per chunk of each step of the receive path in
 *           this process (copy into Buffer.allocUnsafe, a Buffer view over
 *           pool memory, push() -> 'data', write() -> _write), 64 B and 64 KiB
 *
 * maio/net runs as it is, with its pipe fast path off ('fast path off': the
 * copy path of before), and with the transientChunks opt-in. node:net runs
 * twice ('node:net' and 'node:net (A/A)'): the spread between them is the
 * noise of the run. Each row is the median over rounds, with the
 * lowest and highest round.
 * Run: `npm run build:ts && node dist/bench/micro/stream-receive.js`
 * (MAIO_BENCH_ROUNDS, default 5; MAIO_BENCH_SECONDS, default 2;
 * MAIO_BENCH_ONLY=bulk|rr|proxy; MAIO_BENCH_CONTENDERS=a,b: a subset by name).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import * as mnet from '../../src/net/compat/index';
import { setPooledPipe } from '../../src/net/compat/pooled-chunk';
import { stats as maioStats } from '../../src/net/stats';

const ROUNDS = Number(process.env.MAIO_BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.MAIO_BENCH_SECONDS ?? 2);
const ONLY = process.env.MAIO_BENCH_ONLY;
const PICK = process.env.MAIO_BENCH_CONTENDERS?.split(',');
const root = path.resolve(__dirname, '..', '..', '..');
const loadgenPath = path.join(root, 'bench', 'build', 'loadgen');
const sinkPath = path.join(root, 'bench', 'build', 'sink');

type NetLike = { createServer: typeof net.createServer; connect: typeof net.connect };
interface Contender {
  name: string;
  net: NetLike;
  /** socket options for both ends (maio/net options included) */
  options?: Record<string, unknown>;
  /** maio/net's pipe fast path (pool buffers passed without a copy) on or off */
  pooledPipe?: boolean;
}

const contenders: Contender[] = [
  { name: 'node:net', net },
  { name: 'maio/net', net: mnet as unknown as NetLike, pooledPipe: true },
  { name: 'maio/net (fast path off)', net: mnet as unknown as NetLike, pooledPipe: false },
  { name: 'maio/net transientChunks', net: mnet as unknown as NetLike, options: { transientChunks: true } },
  { name: 'node:net (A/A)', net },
].filter((c) => !PICK || PICK.includes(c.name));

interface Sample {
  rate: number;
  cpu: number;
}

function loadgen(args: string[]): Promise<Record<string, number>> {
  const child = spawn(loadgenPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return once(child, 'close').then(([code]) => {
    if (code !== 0) throw new Error(`loadgen ${args.join(' ')} exited with ${code}: ${out}`);
    return JSON.parse(out.trim().split('\n').pop()!);
  });
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** CPU seconds this process used while `f` ran (all threads). */
async function cpuOf<T>(f: () => Promise<T>): Promise<[T, number]> {
  const c0 = process.cpuUsage();
  const r = await f();
  const c = process.cpuUsage(c0);
  return [r, (c.user + c.system) / 1e6];
}

const timing = () => ['--duration', String(SECONDS), '--warmup', '0.3'];

async function bulk(c: Contender): Promise<Sample> {
  const server = c.net.createServer(c.options ?? {}, (s) => {
    s.on('error', () => s.destroy());
    s.on('data', () => {});
  });
  const port = await listen(server);
  const [r, cpu] = await cpuOf(() => loadgen(['send', '--port', String(port), '--write', '65536', ...timing()]));
  server.close();
  return { rate: r.gbps, cpu: cpu / ((r.bytes / 1e9) * ((SECONDS + 0.3) / SECONDS)) };
}

async function rr(c: Contender): Promise<Sample> {
  const server = c.net.createServer(c.options ?? {}, (s) => {
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  const port = await listen(server);
  const [r, cpu] = await cpuOf(() => loadgen(['reqresp', '--port', String(port), '--size', '64', ...timing()]));
  server.close();
  return { rate: r.rtps, cpu: (cpu / (r.round_trips * ((SECONDS + 0.3) / SECONDS))) * 1e6 };
}

async function proxy(c: Contender, sinkPort: number): Promise<Sample> {
  const server = c.net.createServer(c.options ?? {}, (a) => {
    const b = c.net.connect({ ...(c.options ?? {}), port: sinkPort, host: '127.0.0.1' });
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.pipe(b);
    b.pipe(a);
  });
  const port = await listen(server);
  const [r, cpu] = await cpuOf(() => loadgen(['send', '--port', String(port), '--write', '65536', ...timing()]));
  server.close();
  return { rate: r.gbps, cpu: cpu / ((r.bytes / 1e9) * ((SECONDS + 0.3) / SECONDS)) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** ns per call of f, median of 7 timed batches (after a warm-up batch). */
function nsPer(f: () => void, n: number): number {
  const runs: number[] = [];
  for (let r = 0; r < 8; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f();
    if (r > 0) runs.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return median(runs);
}

/** What each step of a stream receive costs per chunk, in this process (no kernel). */
function costs(): void {
  const region = new ArrayBuffer(64 << 20); // stands for the pool's region
  const src = new Uint8Array(region, 1 << 20, 65536).fill(7);
  const rows = [];
  for (const size of [64, 65536]) {
    const bytes = src.subarray(0, size);
    const n = size === 64 ? 200_000 : 20_000;
    const keep = new WeakMap<Uint8Array, number>();
    let sink: Uint8Array = bytes;
    const copy = nsPer(() => {
      const b = Buffer.allocUnsafe(size);
      b.set(bytes);
      sink = b;
    }, n);
    const allocOnly = nsPer(() => (sink = Buffer.allocUnsafe(size)), n);
    const view = nsPer(() => {
      const b = Buffer.from(region, 1 << 20, size);
      keep.set(b, 1);
      sink = b;
    }, n);
    const r = new Readable({ read() {} });
    r.on('data', (d: Uint8Array) => (sink = d));
    const push = nsPer(() => r.push(bytes), n);
    const w = new Writable({ write: (_c, _e, cb) => cb() });
    const write = nsPer(() => w.write(bytes), n);
    rows.push({
      'chunk bytes': size,
      'allocUnsafe + copy ns': Math.round(copy),
      'allocUnsafe alone ns': Math.round(allocOnly),
      'Buffer view + WeakMap ns': Math.round(view),
      "push() -> 'data' ns": Math.round(push),
      'write() -> _write ns': Math.round(write),
    });
    void sink;
  }
  console.log('\n== costs (ns per chunk, median of 7 batches) ==');
  console.table(rows);
}

async function main(): Promise<void> {
  if (!ONLY || ONLY === 'costs') costs();
  if (ONLY === 'costs') return;
  if (!fs.existsSync(loadgenPath)) throw new Error('bench/build/loadgen is missing: run `bash scripts/bench-setup.sh`');
  let sinkPort = 0;
  const sink = spawn(sinkPath, ['0', String(512 << 10)], { stdio: ['ignore', 'pipe', 'inherit'] });
  process.on('exit', () => sink.kill()); // also when a round throws
  const [line] = (await once(sink.stdout!, 'data')) as [Buffer];
  sinkPort = Number(/listening (\d+)/.exec(line.toString())![1]);
  const scenarios: [string, string, string, (c: Contender) => Promise<Sample>][] = [
    ['bulk', 'Gbit/s', 'CPU s/GB', bulk],
    ['rr', 'round trips/s', 'CPU us/rt', rr],
    ['proxy', 'Gbit/s', 'CPU s/GB', (c) => proxy(c, sinkPort)],
  ];
  for (const [id, unit, cpuUnit, run] of scenarios) {
    if (ONLY && ONLY !== id) continue;
    const samples = new Map<string, Sample[]>(contenders.map((c) => [c.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order each round: no contender always goes first
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(i + round) % contenders.length];
        setPooledPipe(c.pooledPipe ?? true);
        samples.get(c.name)!.push(await run(c));
      }
    }
    console.log(`\n== ${id} (${ROUNDS} rounds of ${SECONDS} s) ==`);
    console.table(
      contenders.map((c) => {
        const s = samples.get(c.name)!;
        const rates = s.map((x) => x.rate);
        const cpus = s.map((x) => x.cpu);
        return {
          contender: c.name,
          [unit]: +median(rates).toFixed(2),
          [`${unit} min-max`]: `${Math.min(...rates).toFixed(1)}-${Math.max(...rates).toFixed(1)}`,
          [cpuUnit]: +median(cpus).toFixed(3),
          [`${cpuUnit} min-max`]: `${Math.min(...cpus).toFixed(3)}-${Math.max(...cpus).toFixed(3)}`,
        };
      }),
    );
  }
  const s = maioStats() as unknown as Record<string, unknown>;
  const fast = Object.keys(s).filter((k) => /^stream/.test(k));
  if (fast.length) console.log(Object.fromEntries(fast.map((k) => [k, s[k]])));
  sink.kill();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
