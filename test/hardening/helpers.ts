/**
 * Shared by the fault tests: a deterministic byte stream and its prefix check,
 * child processes that hold the other end, and network namespaces that are
 * removed again even when a test fails.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { backend } from '../../src/backend';
import { SOURCE } from '../net/helpers';

/** The repo's compiled entry point (dist/src/index.js), for child processes. */
export const INDEX = path.join(__dirname, '..', '..', 'src', 'index.js');

/** Byte i of the test stream is SOURCE[i % SOURCE.length]. */
export function streamChunk(at: number, len: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  for (let o = 0; o < len; ) {
    const s = (at + o) % SOURCE.length;
    const n = Math.min(len - o, SOURCE.length - s);
    SOURCE.copy(out, o, s, s + n);
    o += n;
  }
  return out;
}

/** Checks that received bytes continue the test stream; never garbage. */
export class PrefixChecker {
  bytes = 0;
  bad = -1;
  push(b: Uint8Array): void {
    if (this.bad >= 0) return;
    const want = streamChunk(this.bytes, b.length);
    const got = Buffer.from(b.buffer, b.byteOffset, b.length);
    if (!want.equals(got)) {
      let i = 0;
      while (want[i] === got[i]) i++;
      this.bad = this.bytes + i;
    }
    this.bytes += b.length;
  }
  assertClean(what: string): void {
    assert.equal(this.bad, -1, `${what}: byte ${this.bad} is not the stream's`);
  }
}

/** Node-shaped kernel error: code, negative errno, syscall. */
export function assertErrno(e: unknown, codes: string[], syscalls: string[]): void {
  assert.ok(e instanceof Error, `an Error, got ${String(e)}`);
  const err = e as Error & { code?: string; errno?: number; syscall?: string };
  assert.ok(codes.includes(err.code ?? ''), `code ${err.code} (${err.message}) not in ${codes.join(', ')}`);
  assert.equal(typeof err.errno, 'number');
  assert.ok(err.errno! < 0, `errno ${err.errno} is negative like node:net's`);
  assert.ok(syscalls.includes(err.syscall ?? ''), `syscall ${err.syscall} not in ${syscalls.join(', ')}`);
}

export const onUring = (): boolean => {
  try {
    return backend().mode === 'io_uring';
  } catch {
    return false;
  }
};

/** Spawns `node -e code` with stdout lines delivered to onLine. */
export function nodeChild(code: string, opts: { env?: NodeJS.ProcessEnv; argv?: string[]; prefix?: string[] } = {}): {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  line: (re: RegExp, what: string, limitMs?: number) => Promise<RegExpExecArray>;
} {
  const cmd = opts.prefix ? opts.prefix[0]! : process.execPath;
  const args = [...(opts.prefix ? [...opts.prefix.slice(1), process.execPath] : []), '-e', code, ...(opts.argv ?? [])];
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  let partial = '';
  child.stdout!.on('data', (d) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on('data', (d) => (err += d));
  const line = async (re: RegExp, what: string, limitMs = 60000): Promise<RegExpExecArray> => {
    const end = Date.now() + limitMs;
    for (;;) {
      for (const l of lines) {
        const m = re.exec(l);
        if (m) return m;
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        await new Promise((r) => setTimeout(r, 20));
        for (const l of lines) {
          const m = re.exec(l);
          if (m) return m;
        }
        assert.fail(`child exited (${child.exitCode ?? child.signalCode}) before ${what}; stderr: ${err}; stdout: ${lines.join('\n')}`);
      }
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}; stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { child, lines, stderr: () => err, line };
}

/** Resolves with the exit code (or signal) once the child is gone. */
export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
}

// ---- network namespaces ----------------------------------------------------

export function netnsSkip(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs `ip` from iproute2';
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return '`ip netns` does not work here';
  return false;
}

export const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * Two namespaces, `a` and `b`, joined by a veth pair: a has `addrA` on `va`,
 * b has `addrB` on `vb` (a /24 of the benchmarking range 198.18.0.0/15,
 * which exists only inside these namespaces). remove() is idempotent.
 */
export class NsPair {
  readonly a: string;
  readonly b: string;
  readonly addrA: string;
  readonly addrB: string;
  constructor(tag: string, net: number) {
    const id = `${process.pid}-${tag}`;
    this.a = `maio-fa-${id}`;
    this.b = `maio-fb-${id}`;
    this.addrA = `198.18.${net}.1`;
    this.addrB = `198.18.${net}.2`;
    this.remove();
    try {
      this.#setUp();
    } catch (e) {
      this.remove(); // nothing half made stays behind
      throw e;
    }
  }
  #setUp(): void {
    ip('netns', 'add', this.a);
    ip('netns', 'add', this.b);
    ip('-n', this.a, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', this.b);
    ip('-n', this.a, 'addr', 'add', `${this.addrA}/24`, 'dev', 'va');
    ip('-n', this.b, 'addr', 'add', `${this.addrB}/24`, 'dev', 'vb');
    for (const ns of [this.a, this.b]) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('-n', this.a, 'link', 'set', 'va', 'up');
    ip('-n', this.b, 'link', 'set', 'vb', 'up');
  }
  /** Runs node in namespace `ns` (a prefix for nodeChild). */
  exec(ns: string): string[] {
    return ['ip', 'netns', 'exec', ns];
  }
  /** The peer vanishes without a FIN or RST: b's end of the veth goes down. */
  cutB(): void {
    ip('-n', this.b, 'link', 'set', 'vb', 'down');
  }
  remove(): void {
    for (const ns of [this.a, this.b]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}
