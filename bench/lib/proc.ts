// Child processes of the benchmark: each runs in its own process group so that it can be
// killed with everything it started, every wait has a timeout, and every live group is
// killed when the harness exits for any reason.
import { spawn, ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import * as net from 'node:net';

const live = new Set<ChildProcess>();
/** Every pid this process ever started (the test checks that none is alive afterwards). */
export const startedPids: number[] = [];

export class BenchProcessError extends Error {
  constructor(message: string, readonly tail: string) {
    super(tail ? `${message}\n    ${tail.trim().split('\n').slice(-4).join('\n    ')}` : message);
    this.name = 'BenchProcessError';
  }
}

export interface SpawnOptions {
  name: string;
  cpu?: number; // pin with taskset
  nofile?: number; // raise RLIMIT_NOFILE with prlimit
  cwd: string;
  env?: NodeJS.ProcessEnv;
  taskset: boolean;
  prlimit: boolean;
}

/** A child process and its output, read line by line. */
export class Child {
  readonly pid: number;
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;
  private readonly proc: ChildProcess;
  private stdoutLines: string[] = [];
  private stderrTail = '';
  private lineWaiters: Array<() => void> = [];
  private stderrListeners: Array<(line: string) => void> = [];

  constructor(argv: string[], readonly opts: SpawnOptions) {
    let cmd = argv;
    if (opts.nofile && opts.prlimit) cmd = ['prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, ...cmd];
    if (opts.cpu !== undefined && opts.taskset) cmd = ['taskset', '-c', String(opts.cpu), ...cmd];
    // taskset and prlimit exec the command: the pid stays the measured program's pid.
    this.proc = spawn(cmd[0], cmd.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.proc.pid === undefined) throw new BenchProcessError(`${opts.name}: could not start ${cmd[0]}`, '');
    this.pid = this.proc.pid;
    startedPids.push(this.pid);
    live.add(this.proc);
    this.proc.on('error', () => undefined); // reported through the exit code
    this.exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        live.delete(this.proc);
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(this.exitCode);
        this.wake();
      });
    });
    splitLines(this.proc.stdout!, (line) => {
      this.stdoutLines.push(line);
      this.wake();
    });
    splitLines(this.proc.stderr!, (line) => {
      this.stderrTail = (this.stderrTail + line + '\n').slice(-2000);
      for (const l of this.stderrListeners) l(line);
    });
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  get stdout(): string[] {
    return this.stdoutLines;
  }

  get stderr(): string {
    return this.stderrTail;
  }

  onStderrLine(fn: (line: string) => void): void {
    this.stderrListeners.push(fn);
  }

  /** Resolves with the first stdout line matching `re`; rejects on exit or timeout. */
  async waitLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.stdoutLines) {
        const m = line.match(re);
        if (m) return m;
      }
      if (!this.alive) {
        throw new BenchProcessError(`${this.opts.name} exited (code ${this.exitCode}) before printing ${re}`, this.output());
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new BenchProcessError(`${this.opts.name}: no ${re} within ${timeoutMs} ms`, this.output());
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.lineWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the exit; kills the group and rejects after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      await this.kill();
      throw new BenchProcessError(`${this.opts.name}: still running after ${timeoutMs} ms, killed`, this.output());
    }
    return r;
  }

  /** SIGTERM to the group, SIGKILL after a grace period; resolves when it is gone. */
  async kill(graceMs = 1000): Promise<void> {
    if (!this.alive) return;
    signalGroup(this.pid, 'SIGTERM');
    const t = setTimeout(() => signalGroup(this.pid, 'SIGKILL'), graceMs);
    let give: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((r) => (give = setTimeout(r, graceMs + 3000)))]);
    clearTimeout(t);
    clearTimeout(give);
    signalGroup(this.pid, 'SIGKILL'); // anything the program forked and left behind
  }

  output(): string {
    return [...this.stdoutLines.slice(-3), this.stderrTail].join('\n');
  }

  private wake(): void {
    const ws = this.lineWaiters;
    this.lineWaiters = [];
    for (const w of ws) w();
  }
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (buf.length > 1 << 16) buf = buf.slice(-(1 << 16));
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
  });
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

/** Kills every live group at once, synchronously (usable from an 'exit' handler). */
export function killAllSync(): void {
  for (const p of live) if (p.pid !== undefined) signalGroup(p.pid, 'SIGKILL');
}

let guarded = false;
/** Makes sure no child outlives the harness: on exit, on SIGINT/SIGTERM, on an uncaught error. */
export function guardProcessExit(): void {
  if (guarded) return;
  guarded = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${live.size} process(es)\n`);
      killAllSync();
      process.exit(130);
    });
  }
}

/** True when the pid exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

const CLK_TCK = 100; // USER_HZ is 100 on Linux for every architecture Node supports

/** utime + stime of a process in seconds, or NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 of stat; f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Every live process's children, by parent pid. */
function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  return children;
}

/** The programs the harness puts in front of a command: they exec it, or (some versions) fork it. */
const WRAPPERS = new Set(['taskset', 'prlimit', 'ip']);

/**
 * The pid of the program behind `pid`'s wrappers (taskset, prlimit, `ip netns exec`): `pid`
 * itself once they have exec'd it, else a wrapper's only child, so that a signal meant for the
 * program reaches it and not a wrapper (to which SIGUSR2 would be fatal).
 */
export function programPid(pid: number): number {
  let p = pid;
  for (let depth = 0; depth < 4; depth++) {
    let comm: string;
    try {
      comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return p; // gone: the caller finds out
    }
    if (!WRAPPERS.has(comm)) return p;
    const kids = childrenByParent().get(p) ?? [];
    if (kids.length !== 1) return p;
    p = kids[0];
  }
  return p;
}

/** CPU seconds of a process and of its descendants that are alive (node:cluster workers). */
export function treeCpuSeconds(pid: number): number {
  const children = childrenByParent();
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    const c = cpuSeconds(p);
    if (Number.isFinite(c)) total += c;
    stack.push(...(children.get(p) ?? []));
  }
  return total;
}

/** VmHWM (peak) and VmRSS of a process in MiB. */
export function memoryMiB(pid: number): { peak: number; rss: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
    return { peak: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 };
  } catch {
    return { peak: NaN, rss: NaN };
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a short command and returns its stdout, or null when it fails. */
export function capture(argv: string[], timeoutMs = 5000): Promise<string | null> {
  return new Promise((resolve) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => (out += d));
    p.on('error', () => {
      clearTimeout(t);
      resolve(null);
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve(code === 0 ? out : null);
    });
  });
}
