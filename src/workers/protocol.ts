/**
 * Messages between a worker group (main thread) and its workers. maio's own
 * messages carry the TAG key; anything else is the application's.
 */
import { BufferCrossThreadError } from '../core/errors';
import { IoBuffer } from '../pool/buffer';
import { isPoolMemory } from '../pool/thread-bound';
import type { FdTableMemory } from './fd-table';
import type { SteeringState } from './steering';

export const TAG = '__maio';

/** What the bootstrap of every worker receives (workerData[TAG]). */
export interface WorkerBoot {
  index: number;
  id: number;
  count: number;
  /** the module to load: an absolute path or file: URL */
  module: string;
  /** CPUs to pin this worker to, or null */
  cpus: number[] | null;
  /** attach CPU steering to the group (worker 0 only does it, at the first start) */
  steer: boolean;
  /** the group's CPU list (worker i on groupCpus[i % length]), for the steering table */
  groupCpus: number[] | null;
  fdTable: FdTableMemory;
  /** per listen call k of a worker: [2k] the group's port, [2k + 1] listeners joined so far */
  ports: Int32Array;
  /** a first start, not a replacement: joins the reuseport group in index order */
  initial: boolean;
}

export type ToGroup =
  | { [TAG]: 'boot'; threadId: number; cpus: number[]; pinError: string | null }
  /** k: the worker's k-th listen call (0: the group's main port) */
  | { [TAG]: 'listening'; port: number; k: number; steering: SteeringState | null }
  | { [TAG]: 'steering'; steering: SteeringState }
  | { [TAG]: 'ready' }
  | { [TAG]: 'stats'; req: number; stats: WorkerStats }
  | { [TAG]: 'metrics'; req: number; text: string }
  | { [TAG]: 'drained' };

export type ToWorker =
  | { [TAG]: 'stats'; req: number }
  | { [TAG]: 'metrics'; req: number }
  | { [TAG]: 'stop' }
  /** attach the steering program with this table to the worker's listeners */
  | { [TAG]: 'steer'; table: number[] };

/** One worker's figures, as group.stats() reports them per worker. */
export interface WorkerStats {
  index: number;
  id: number;
  /** the kernel's thread id (/proc/self/task/<threadId>) */
  threadId: number;
  /** CPUs the thread may run on now */
  cpus: number[];
  /** the engine of this worker's ring: 'io_uring' or 'epoll' (backend().mode) */
  backend: string;
  listeners: number;
  /** open connections on this worker's listeners */
  connections: number;
  /** connections accepted since the worker started */
  accepted: number;
  /** maio.stats() of the worker's thread, numbers only */
  net: Record<string, number>;
  /** what the worker's onStats() provider returned */
  app: unknown;
}

export function isInternal(msg: unknown): msg is { [TAG]: string } {
  return typeof msg === 'object' && msg !== null && typeof (msg as Record<string, unknown>)[TAG] === 'string';
}

/**
 * Refuses pool memory in a message (an IoBuffer, or a view of a pool region),
 * looked for down to a few levels of arrays and plain objects: structured
 * clone would copy the whole region (or, transferred, take it from this
 * thread's kernel operations).
 */
export function checkNoPoolMemory(value: unknown, depth = 0): void {
  if (typeof value !== 'object' || value === null || depth > 4) return;
  if (value instanceof IoBuffer) {
    throw new BufferCrossThreadError('an IoBuffer cannot be sent to another thread: copy its bytes (Buffer.from(buf.bytes)) and release it');
  }
  if (ArrayBuffer.isView(value)) {
    if (isPoolMemory(value.buffer)) throw new BufferCrossThreadError('a view of pool memory cannot be sent to another thread: copy it first');
    return;
  }
  if (value instanceof ArrayBuffer) {
    if (isPoolMemory(value)) throw new BufferCrossThreadError('a pool region cannot be sent to another thread');
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) checkNoPoolMemory(v, depth + 1);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    for (const k of Object.keys(value)) checkNoPoolMemory((value as Record<string, unknown>)[k], depth + 1);
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      checkNoPoolMemory(k, depth + 1);
      checkNoPoolMemory(v, depth + 1);
    }
  }
}
