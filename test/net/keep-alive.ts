/**
 * Shared by the ref()/unref() tests: a node child process running a small
 * script, watched from outside, because "the process exits on its own" is
 * only observable from another process. The child inherits the environment,
 * so MAIO_BACKEND=epoll (the suite's epoll pass) reaches it.
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/** dist/src/net/compat/index.js and dist/src/index.js, for the child scripts. */
export const compatJs = path.join(__dirname, '..', '..', 'src', 'net', 'compat', 'index.js');
export const maioJs = path.join(__dirname, '..', '..', 'src', 'index.js');

/** Generous: a child that should exit does so in well under a second, even on a busy machine. */
const EXIT_LIMIT_MS = 20000;
/** How long a child that must stay alive is watched: an exiting one is gone in milliseconds. */
export const ALIVE_MS = 500;

export class Child {
  readonly proc: ChildProcess;
  #out = '';
  #err = '';
  #waiters: (() => void)[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** Runs `script` in a new node process; `args` reach it as process.argv[1...]. */
  constructor(script: string, args: string[] = []) {
    this.proc = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.#out += d.toString();
      for (const w of this.#waiters.splice(0)) w();
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.#err += d.toString()));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      for (const w of this.#waiters.splice(0)) w();
      resolve({ code, signal });
    }));
  }

  get stdout(): string {
    return this.#out;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves with the first stdout line starting with `prefix` (the rest of it); fails if the child exits first. */
  async line(prefix: string): Promise<string> {
    const deadline = Date.now() + EXIT_LIMIT_MS;
    for (;;) {
      const found = this.#out.split('\n').find((l) => l.startsWith(prefix));
      if (found !== undefined) return found.slice(prefix.length).trim();
      assert.ok(this.running, `the child exited before printing '${prefix}': ${this.#out}${this.#err}`);
      assert.ok(Date.now() < deadline, `no '${prefix}' from the child within ${EXIT_LIMIT_MS} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The child exits by itself, cleanly, within the limit (killed and failed otherwise). */
  async exitsOnItsOwn(what: string): Promise<void> {
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), EXIT_LIMIT_MS);
    const { code, signal } = await this.exited;
    clearTimeout(timer);
    assert.equal(signal, null, `${what}: the child was still running after ${EXIT_LIMIT_MS} ms and had to be killed (stdout: ${this.#out})`);
    assert.equal(code, 0, `${what}: ${this.#err}`);
  }

  /** The child is still running ALIVE_MS from now (and goes on running). */
  async stillRunning(what: string): Promise<void> {
    await new Promise((r) => setTimeout(r, ALIVE_MS));
    assert.ok(this.running, `${what}: the child exited on its own (stdout: ${this.#out}, stderr: ${this.#err})`);
  }

  /** The child is still running ALIVE_MS from now; then it is killed. */
  async staysAlive(what: string): Promise<void> {
    try {
      await this.stillRunning(what);
    } finally {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}
