/**
 * CPU sets: the list syntax Linux prints (`0-3,8`), the CPUs this process may
 * run on (its affinity mask, not os.cpus(): a container or `taskset` narrows
 * it), and pinning the calling thread (native/affinity.c).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { InvalidArgumentError, OutOfRangeError, fromNative } from '../core/errors';
import { native } from '../core/native';

/** The kernel's largest CPU number + 1 (NR_CPUS ceiling), and native/affinity.c's mask size. */
export const MAX_CPUS = 8192;

/** "0-3,8" or [0, 1, 2, 3, 8] -> sorted unique CPU numbers. */
export function parseCpuList(list: string | readonly number[], what = 'cpus'): number[] {
  const out = new Set<number>();
  const add = (n: number, raw: unknown) => {
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${what}: '${String(raw)}' is not a CPU number`);
    if (n < 0 || n >= MAX_CPUS) throw new OutOfRangeError(`${what}: CPU ${n} is outside 0..${MAX_CPUS - 1}`);
    out.add(n);
  };
  if (Array.isArray(list)) {
    for (const v of list) add(typeof v === 'number' ? v : NaN, v);
  } else if (typeof list === 'string') {
    for (const part of list.split(',')) {
      const p = part.trim();
      const m = /^(\d+)(?:-(\d+))?$/.exec(p);
      if (!m) throw new InvalidArgumentError(`${what}: '${p}' is not a CPU or a range (e.g. 0-3,8)`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo) throw new InvalidArgumentError(`${what}: range '${p}' runs backwards`);
      if (hi >= MAX_CPUS) throw new OutOfRangeError(`${what}: CPU ${hi} is outside 0..${MAX_CPUS - 1}`);
      for (let c = lo; c <= hi; c++) add(c, c);
    }
  } else {
    throw new InvalidArgumentError(`${what} must be a list string like '0-3,8' or an array of CPU numbers`);
  }
  if (out.size === 0) throw new InvalidArgumentError(`${what} names no CPU`);
  return [...out].sort((a, b) => a - b);
}

/** [0, 1, 2, 5] -> "0-2,5" */
export function formatCpuList(cpus: readonly number[]): string {
  const s = [...cpus].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * The CPUs this process may run on: its Cpus_allowed_list (the main thread's
 * sched_getaffinity mask, as `taskset -p` shows it). os.availableParallelism()
 * only where /proc is not readable.
 */
export function allowedCpus(): number[] {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
    if (m) return parseCpuList(m[1]!.trim(), 'Cpus_allowed_list');
  } catch {
    /* no /proc: fall through */
  }
  return Array.from({ length: os.availableParallelism() }, (_, i) => i);
}

function toMask(cpus: readonly number[]): Uint8Array {
  const mask = new Uint8Array(Math.floor(Math.max(...cpus) / 8) + 1);
  for (const c of cpus) mask[c >> 3]! |= 1 << (c & 7);
  return mask;
}

/** Pins the calling thread to these CPUs (sched_setaffinity on this thread only). */
export function setThreadAffinity(cpus: string | readonly number[]): void {
  const list = parseCpuList(cpus);
  try {
    native().threadSetAffinity(toMask(list));
  } catch (err) {
    throw fromNative(err);
  }
}

/** The CPUs the calling thread may run on. */
export function threadAffinity(): number[] {
  const mask = native().threadGetAffinity();
  const out: number[] = [];
  for (let i = 0; i < mask.length * 8; i++) if (mask[i >> 3]! & (1 << (i & 7))) out.push(i);
  return out;
}

/** The kernel's id of the calling thread (its /proc/self/task/<tid>). */
export function threadId(): number {
  return native().threadId();
}
