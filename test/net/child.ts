/**
 * A node child process the CLI tests talk to: its first stdout line, the port
 * of its `listening <port>` line, and what it printed so far.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/** The compiled `maio` command. */
export const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

export interface Child {
  child: ChildProcess;
  /** the first line on stdout */
  line: Promise<string>;
  /** the port of a `listening <port>` line on stdout */
  port: Promise<number>;
  out(): string;
  err(): string;
}

/** Starts `node ...args`; both promises reject if it exits first. */
export function startChild(args: string[]): Child {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  let gotLine: (l: string) => void;
  let gotPort: (p: number) => void;
  const line = new Promise<string>((resolve) => (gotLine = resolve));
  const port = new Promise<number>((resolve) => (gotPort = resolve));
  child.stdout!.on('data', (d) => {
    out += d;
    const nl = out.indexOf('\n');
    if (nl >= 0) gotLine(out.slice(0, nl));
    const m = /^listening (\d+)$/m.exec(out);
    if (m) gotPort(Number(m[1]));
  });
  const early = new Promise<never>((_, reject) => {
    child.once('exit', (code) => reject(new Error(`exited ${code} before the line it was waited for: ${err}`)));
  });
  const first = Promise.race([line, early]);
  const listening = Promise.race([port, early]);
  // A test waits on one of them at most: the other's rejection is no failure.
  for (const p of [early, first, listening]) p.catch(() => {});
  return { child, line: first, port: listening, out: () => out, err: () => err };
}

/** Starts the maio command with `args`. */
export function startCli(args: string[]): Child {
  return startChild([CLI, ...args]);
}
