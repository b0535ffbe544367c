/**
 * Shared by the real-*.test.ts files: real, unmodified clients and servers
 * (openssl, curl, wrk, undici, pg + PostgreSQL, ioredis + redis-server)
 * driven over maio/net sockets and over node:net, results compared
 * byte-exact. Tools come from scripts/test-setup.sh; a missing one makes its
 * test skip with that reason. Every server a test starts is stopped in
 * `after` (or finally), also when the test failed.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as nodeNet from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { bounded } from '../helpers';

/** The first executable named `tool` on PATH (or in `extraDirs`), or null. */
export function which(tool: string, extraDirs: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extraDirs]) {
    if (!dir) continue;
    const p = path.join(dir, tool);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** A skip reason naming the tools that are missing, or false. */
export function toolSkip(...tools: string[]): string | false {
  const missing = tools.filter((t) => which(t) === null);
  if (missing.length === 0) return false;
  return `${missing.join(', ')} not installed (scripts/test-setup.sh installs it with apt-get as root)`;
}

/** A fresh temp dir, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `maio-${prefix}-`));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** `n` deterministic pseudo-random bytes (AES-128-CTR over zeros: fast, no repeats to hide a misordering). */
export function payload(n: number, seed = 1): Buffer {
  const key = Buffer.alloc(16, seed);
  const iv = Buffer.alloc(16, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(n));
}

export function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (polls; bounded). */
export async function waitForPort(port: number, what: string, limitMs = 20000): Promise<void> {
  const end = Date.now() + limitMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = nodeNet.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} to listen on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A child server process whose output is kept (for the failure message) and that stop() ends. */
export interface Child {
  proc: ChildProcess;
  output(): string;
  /** SIGTERM (or `signal`), then SIGKILL after 5 s; resolves once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startChild(cmd: string, args: string[], options: SpawnOptions = {}): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString('utf8');
    if (out.length > 20000) out = out.slice(-10000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.on('error', (e) => (out += `\nspawn error: ${e.message}`));
  const exited = new Promise<void>((r) => {
    if (proc.exitCode !== null || proc.signalCode !== null) r();
    else proc.once('exit', () => r());
  });
  return {
    proc,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Runs a command to completion; rejects (with its output) on a non-zero exit or after `limitMs`. */
export function run(cmd: string, args: string[], options: SpawnOptions & { limitMs?: number; input?: Buffer } = {}): Promise<{ stdout: Buffer; stderr: string }> {
  const { limitMs = 60000, input, ...spawnOptions } = options;
  const p = new Promise<{ stdout: Buffer; stderr: string }>((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...spawnOptions });
    const out: Buffer[] = [];
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => out.push(d));
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
    if (input) proc.stdin!.end(input);
    const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}${signal === 'SIGKILL' ? ` (killed after ${limitMs} ms)` : ''}: ${err.slice(-2000)}`));
    });
  });
  return bounded(p, `${path.basename(cmd)} to finish`, limitMs + 5000);
}

/** A throwaway self-signed certificate for localhost and 127.0.0.1, made by `openssl req -x509`. */
export function makeCert(dir: string): { key: string; cert: string; keyPem: Buffer; certPem: Buffer } {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl req -x509 failed: ${r.stderr}`);
  return { key, cert, keyPem: fs.readFileSync(key), certPem: fs.readFileSync(cert) };
}
