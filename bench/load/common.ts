/** Shared by the load scripts: the echo server child, loadgen runs, samples and their summary. */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Child } from '../lib/proc';

export const ROOT = path.join(__dirname, '..', '..', '..');
export const LOADGEN = path.join(ROOT, 'bench', 'build', 'loadgen');

export interface Sample {
  t: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  conns: number;
  peakConns: number;
  accepted: number;
  errors: number;
  errorCodes: Record<string, number>;
  bytesRead: number;
  bytesWritten: number;
  pool: { inUse: number; lent: number; bytesInUse: number; failedAllocs: number; capacity: number; residentBytes: number };
}

export function ensureLoadgen(): void {
  if (existsSync(LOADGEN)) return;
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'bench-setup.sh')], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0 || !existsSync(LOADGEN)) throw new Error('bench/build/loadgen is missing and scripts/bench-setup.sh could not build it');
}

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

export async function startServer(args: string[], nofile?: number, nodeFlags: string[] = []): Promise<{ child: Child; port: number; samples: Sample[] }> {
  const child = new Child([process.execPath, ...nodeFlags, path.join(ROOT, 'dist', 'bench', 'load', 'echo-server.js'), ...args], {
    name: 'maio echo-server',
    cwd: ROOT,
    taskset: false,
    prlimit: hasPrlimit,
    ...(nofile ? { nofile } : {}),
  });
  const m = await child.waitLine(/^listening (\d+)/, 20000);
  const samples: Sample[] = [];
  return {
    child,
    port: Number(m[1]),
    get samples(): Sample[] {
      samples.length = 0;
      for (const l of child.stdout) if (l.startsWith('{')) samples.push(JSON.parse(l) as Sample);
      return samples;
    },
  };
}

export interface LoadgenResult {
  round_trips: number;
  rtps: number;
  seconds: number;
  p50_us: number;
  p99_us: number;
  connect_s: number;
  conns: number;
}

/** One loadgen run; its exit code and stderr tail come back with the figures. */
export async function loadgen(args: string[], timeoutMs: number, nofile?: number): Promise<{ code: number | null; result: LoadgenResult | null; stderr: string }> {
  const child = new Child([LOADGEN, ...args], { name: 'loadgen', cwd: ROOT, taskset: false, prlimit: hasPrlimit, ...(nofile ? { nofile } : {}) });
  const code = await child.waitExit(timeoutMs);
  const line = child.stdout.find((l) => l.startsWith('{'));
  return { code, result: line ? (JSON.parse(line) as LoadgenResult) : null, stderr: child.stderr };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)];
}

export const MiB = (n: number): string => (n / 1048576).toFixed(1) + ' MiB';

/** `--name N` from the command line, or `dflt`. */
export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
