/**
 * PoolQuota: a share of one pool for one owner (a connection, a tenant), so
 * no single owner can take every buffer. A buffer allocated through a quota
 * is charged to it (its capacity, since that is what it holds) until it is
 * released, whoever releases it.
 */
import { InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { kQuotaAlloc, kQuotaAllocWait, kQuotaCharge, kQuotaCredit } from '../core/symbols';
import type { IoBuffer } from './buffer';
import type { AllocWaitOptions, IoPool } from './pool';

export interface QuotaOptions {
  /** Most bytes (sum of capacities) held at once. Default: unlimited. */
  maxBytes?: number;
  /** Most buffers held at once. Default: unlimited. */
  maxBuffers?: number;
}

export interface QuotaStats {
  maxBytes: number;
  maxBuffers: number;
  bytes: number;
  buffers: number;
  highWaterBytes: number;
  /** alloc/tryAlloc calls refused by this quota */
  failedAllocs: number;
}

function limit(v: unknown, name: string): number {
  if (v === undefined) return Infinity;
  if (typeof v !== 'number' || !(Number.isInteger(v) || v === Infinity)) {
    throw new InvalidArgumentError(`${name} must be an integer`);
  }
  if (v < 0) throw new OutOfRangeError(`${name} must be >= 0, got ${v}`);
  return v;
}

export class PoolQuota {
  readonly pool: IoPool;
  readonly maxBytes: number;
  readonly maxBuffers: number;
  #bytes = 0;
  #buffers = 0;
  #highWater = 0;
  /** @internal counted by the pool */
  failedAllocs = 0;

  /** @internal Use pool.createQuota(). */
  constructor(pool: IoPool, options: QuotaOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    this.pool = pool;
    this.maxBytes = limit(options.maxBytes, 'maxBytes');
    this.maxBuffers = limit(options.maxBuffers, 'maxBuffers');
  }

  /** A buffer charged to this quota; throws QuotaExceededError or PoolExhaustedError. */
  alloc(size: number): IoBuffer {
    return this.pool[kQuotaAlloc](this, size, true)!;
  }

  /** Like alloc, but null when the quota or the pool has no room. */
  tryAlloc(size: number): IoBuffer | null {
    return this.pool[kQuotaAlloc](this, size, false);
  }

  /** Waits (FIFO) until both the quota and the pool have room. */
  allocWait(size: number, options?: AllocWaitOptions): Promise<IoBuffer> {
    return this.pool[kQuotaAllocWait](this, size, options);
  }

  /** Whether a buffer of `capacity` bytes fits now. */
  fits(capacity: number): boolean {
    return this.#buffers + 1 <= this.maxBuffers && this.#bytes + capacity <= this.maxBytes;
  }

  /** Whether a buffer of `capacity` bytes could ever fit. */
  canEverFit(capacity: number): boolean {
    return this.maxBuffers >= 1 && capacity <= this.maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get buffers(): number {
    return this.#buffers;
  }

  stats(): QuotaStats {
    return {
      maxBytes: this.maxBytes,
      maxBuffers: this.maxBuffers,
      bytes: this.#bytes,
      buffers: this.#buffers,
      highWaterBytes: this.#highWater,
      failedAllocs: this.failedAllocs,
    };
  }

  [kQuotaCharge](capacity: number): void {
    this.#bytes += capacity;
    this.#buffers++;
    if (this.#bytes > this.#highWater) this.#highWater = this.#bytes;
  }

  [kQuotaCredit](capacity: number): void {
    this.#bytes -= capacity;
    this.#buffers--;
  }
}
