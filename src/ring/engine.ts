/**
 * The seam between the Ring (src/ring/ring.ts) and the engine that does its
 * I/O: io_uring (engines/uring.ts) or epoll (engines/epoll.ts).
 *
 * The Ring owns everything callers see: the op table, queueing, the flush,
 * dispatch, pools, buffer-group owners, stats and close. An engine only
 * moves operations and results through memory the Ring shares with it:
 *
 *  submit array       DESC_INTS int32 per descriptor (native/maio.h). The
 *                     Ring writes descriptors, then calls submit(count).
 *                     PROVIDE descriptors (no op id, no completion) travel
 *                     here too, applied before the batch's other ops.
 *  completion array   CQE_INTS int32 per completion: op id, res, flags, with
 *                     io_uring's CQE semantics (F_MORE, F_BUFFER | bid << 16,
 *                     F_NOTIF). The engine fills it, then calls
 *                     host.onCompletions(count), never inside submit().
 *  aux, stats         per-op side data (sockaddrs, SENDV lists) and the
 *                     RingStat counters.
 *  bufs               per batch (submit's argument): caller Uint8Arrays that
 *                     SEND_BUF descriptors (BufOff) and SENDV pieces (offset
 *                     -(k + 1)) name by index. The engine holds each until
 *                     its op's final completion (RingStat.Held counts them).
 *
 * An op id is (generation << SLOT_BITS) | slot; the slot (id & SLOT_MASK) is
 * unique among the ops in flight, so an engine may index per-op state by it.
 * The Ring reuses a slot only after dispatching the op's final completion.
 */
import { fromNative } from '../core/errors';
import type { PoolHandle } from '../core/native';
import type { RingCapabilities } from './io-ring';

export interface EngineArrays {
  readonly submit: Int32Array;
  readonly completions: Int32Array;
  readonly aux: Uint8Array;
  readonly stats: Float64Array;
}

/**
 * The four arrays as views of one ArrayBuffer: native code then finds them
 * all with one lookup of that buffer per call (native/loop.h
 * maio_loop_arrays), where four typed-array lookups cost about 0.7 us per
 * event-loop turn. Separate arrays still work, looked up one by one.
 */
export function engineArrays(submitInts: number, completionInts: number, auxBytes: number, statCount: number): EngineArrays {
  // Float64 first (8-byte aligned), then the int32 arrays, then the bytes.
  const statsAt = 0;
  const submitAt = statsAt + statCount * 8;
  const compAt = submitAt + submitInts * 4;
  const auxAt = compAt + completionInts * 4;
  const buf = new ArrayBuffer(auxAt + auxBytes);
  return {
    stats: new Float64Array(buf, statsAt, statCount),
    submit: new Int32Array(buf, submitAt, submitInts),
    completions: new Int32Array(buf, compAt, completionInts),
    aux: new Uint8Array(buf, auxAt, auxBytes),
  };
}

/** What the Ring gives its engine. */
export interface EngineHost {
  /** `count` records are in the completion array: dispatch them (then the Ring flushes). */
  onCompletions(count: number): void;
  /** A PROVIDE was refused after submit() took it (-errno): tell the group's owner. */
  provideFailed(group: number, bid: number, res: number): void;
}

export interface EngineAttachment {
  registered: boolean;
  /** registration deferred to the pool's first SEND_ZC */
  pending: boolean;
  error: string;
}

export interface Engine {
  readonly capabilities: RingCapabilities;
  /** Descriptors one submit() takes at most (<= the submit array's capacity). */
  readonly batch: number;
  /**
   * Starts the first `count` descriptors of the submit array; returns how
   * many it took (fewer: the rest may be retried, PROVIDEs excluded: they
   * were applied). Throws ERR_MAIO_INVALID_DESCRIPTOR with `index` when a
   * descriptor is refused before anything started, or an errno error when
   * nothing could be started. An engine that starts each op itself may
   * instead complete a bad op with -EINVAL.
   */
  submit(count: number, bufs: Uint8Array[]): number;
  attachPool(handle: PoolHandle, index: number, lazy: boolean): EngineAttachment;
  /** The Ring gave the slot up (no op uses the pool's memory any more). */
  detachPool(index: number): void;
  registerBufRing(group: number, entries: number): void;
  unregisterBufRing(group: number): void;
  /**
   * Keep the event loop alive (true) or not. The Ring calls it when the
   * answer changes: referenced ops live or none (never per operation).
   */
  setRef(on: boolean): void;
  /** Stops all I/O; no completion follows. The Ring then cancels what was live. */
  close(): void;
}

/** Opens the engine of this thread's backend (src/ring/current.ts). */
export type OpenEngine = (host: EngineHost, shared: EngineArrays) => Engine;

/** Runs a native call with its errors made typed (src/core/errors.ts); for set-up calls, not per op. */
export function typed<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw fromNative(err);
  }
}
