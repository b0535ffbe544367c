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
 *
 * node:net runs twice ('node:net' and 'node:net (A/A)'): the spread between
 * them is the noise of the run. Each row is the median over rounds, with the
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
  { name: 'maio/net, fast path off', net: mnet as unknown as NetLike, pooledPipe: false },
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

async function main(): Promise<void> {
  if (!fs.existsSync(loadgenPath)) throw new Error('bench/build/loadgen is missing: run `bash scripts/bench-setup.sh`');
  let sinkPort = 0;
  const sink = spawn(sinkPath, ['0', String(512 << 10)], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  const fast = Object.keys(s).filter((k) => /stream/i.test(k));
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
