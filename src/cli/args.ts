/** A small `--key value` parser for the maio commands; unknown options are errors. */
import { backend } from '../backend';
import { InvalidArgumentError } from '../core/errors';
import { currentWorker } from '../workers/runtime';

/** 'flag': present or not (`--json`), no value. */
export type OptionSpec = Record<string, 'number' | 'string' | 'flag'>;

export function parseArgs<T extends Record<string, number | string | boolean | undefined>>(argv: string[], spec: OptionSpec, defaults: T): T {
  const out: Record<string, number | string | boolean | undefined> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new InvalidArgumentError(`unexpected argument '${arg}'`);
    const key = m[1]!;
    const kind = spec[key];
    if (!kind) throw new InvalidArgumentError(`unknown option --${key}`);
    if (kind === 'flag') {
      if (m[2] !== undefined) throw new InvalidArgumentError(`--${key} takes no value`);
      out[key] = true;
      continue;
    }
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new InvalidArgumentError(`--${key} needs a value`);
    if (kind === 'number') {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`--${key} must be a non-negative number, got '${raw}'`);
      out[key] = n;
    } else {
      out[key] = raw;
    }
  }
  return out as T;
}

/**
 * The one line every command prints on stderr once its arguments are known to be good: the
 * backend it runs on (a bad flag fails first, without it).
 */
export function announce(): void {
  if (currentWorker()) return; // the main thread of a worker group said it once
  process.stderr.write(`${backend().summary}\n`);
}

/** Runs `stop` on SIGINT/SIGTERM, then exits (forced after `graceMs`). In a group's worker the group stops it instead. */
export function onSignals(stop: () => void, graceMs = 2000): void {
  if (currentWorker()) return;
  let stopping = false;
  const handler = () => {
    if (stopping) process.exit(0);
    stopping = true;
    setTimeout(() => process.exit(0), graceMs).unref();
    try {
      stop();
    } catch {
      process.exit(0);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export function gbits(bytes: number, seconds: number): string {
  return seconds > 0 ? ((bytes * 8) / seconds / 1e9).toFixed(2) : '0';
}

/** `listening <port>` on stdout, as the benchmark harness expects; a group's workers leave it to the main thread. */
export function printListening(port: number): void {
  if (!currentWorker()) process.stdout.write(`listening ${port}\n`);
}
