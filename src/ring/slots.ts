/**
 * The Ring's smaller books: the one argument check of queue(), the aux
 * array's fixed slots, which pool holds each of the ring's 64 pool slots, and
 * the objects to call at the start of the next flush.
 */
import { InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { MAX_POOLS } from '../core/native';
import { encodeSockaddr } from '../net/address';
import type { PreFlush } from './ring';

/**
 * The one argument check of queue(). The submit array is an Int32Array: NaN, 1.5 or 2**32 + 1 would silently become another number
 * there (fd 0 or 1 for a CLOSE), and a target without onCompletion would throw inside the
 * completion callback.
 */
export function checkOpArgs(
  target: unknown, fd: number, len: number, pool: number, bufOff: number, msgFlags: number,
  ioprio: number, bufGroup: number, auxOff: number, auxLen: number, sqeFlags: number,
): void {
  // Fixed arity, no rest array: this runs once per queued operation.
  if (
    typeof (target as { onCompletion?: unknown } | null)?.onCompletion !== 'function' ||
    (fd | 0) !== fd || (len | 0) !== len || (pool | 0) !== pool || (bufOff | 0) !== bufOff ||
    (msgFlags | 0) !== msgFlags || (ioprio | 0) !== ioprio || (bufGroup | 0) !== bufGroup ||
    (auxOff | 0) !== auxOff || (auxLen | 0) !== auxLen || (sqeFlags | 0) !== sqeFlags
  ) {
    throw new InvalidArgumentError('ring op arguments must be int32 integers and the target a CompletionTarget');
  }
}

export const AUX_BYTES = 64 << 10;
export const AUX_SLOT = 128; // sizeof(struct sockaddr_storage)
/** Large slots follow the small ones: a datagram batch's name and up to 64 pieces (native/maio.h SENDMSG). */
export const AUX_LARGE_SLOT = 1024;
export const AUX_LARGE_BYTES = 64 << 10;
/** The whole aux array: small slots, then large ones. */
export const AUX_TOTAL = AUX_BYTES + AUX_LARGE_BYTES;

/** The aux array, shared with native code, cut into 128-byte slots (sockaddrs and other per-op side data) and 1 KiB large slots. */
export class AuxSlots {
  /** The array the native ring reads: write a slot's bytes here. */
  readonly bytes: Uint8Array;
  readonly #free = new Int32Array(AUX_BYTES / AUX_SLOT);
  readonly #used = new Uint8Array(AUX_BYTES / AUX_SLOT);
  #top = 0;
  readonly #largeFree = new Int32Array(AUX_LARGE_BYTES / AUX_LARGE_SLOT);
  readonly #largeUsed = new Uint8Array(AUX_LARGE_BYTES / AUX_LARGE_SLOT);
  #largeTop = 0;

  /** `bytes`: AUX_TOTAL bytes the ring shares with native code (a fresh array by default). */
  constructor(bytes: Uint8Array = new Uint8Array(AUX_TOTAL)) {
    if (bytes.length !== AUX_TOTAL || bytes.byteOffset % 4 !== 0) throw new InvalidArgumentError(`the aux array must be ${AUX_TOTAL} bytes, 4-byte aligned`);
    this.bytes = bytes;
    // Hand out low slots first.
    for (let i = this.#free.length - 1; i >= 0; i--) this.#free[this.#top++] = i;
    for (let i = this.#largeFree.length - 1; i >= 0; i--) this.#largeFree[this.#largeTop++] = i;
  }

  /** A free 1 KiB slot's byte offset, or -1 when all are in use. */
  allocLarge(): number {
    if (this.#largeTop === 0) return -1;
    const i = this.#largeFree[--this.#largeTop];
    this.#largeUsed[i] = 1;
    return AUX_BYTES + i * AUX_LARGE_SLOT;
  }

  freeLarge(offset: number): void {
    const i = (offset - AUX_BYTES) / AUX_LARGE_SLOT;
    if (!Number.isInteger(i) || i < 0 || i >= this.#largeUsed.length || !this.#largeUsed[i]) {
      throw new InvalidArgumentError(`${offset} is not an allocated large aux slot`);
    }
    this.#largeUsed[i] = 0;
    this.#largeFree[this.#largeTop++] = i;
  }

  /** A free slot's byte offset, or -1 when all are in use. */
  alloc(): number {
    if (this.#top === 0) return -1;
    const i = this.#free[--this.#top];
    this.#used[i] = 1;
    return i * AUX_SLOT;
  }

  free(offset: number): void {
    const i = offset / AUX_SLOT;
    if (!Number.isInteger(i) || i < 0 || i >= this.#used.length || !this.#used[i]) {
      throw new InvalidArgumentError(`${offset} is not an allocated aux slot`);
    }
    this.#used[i] = 0;
    this.#free[this.#top++] = i;
  }

  /** Encodes host:port (an IP literal) at `offset`; returns its length. */
  writeSockaddr(offset: number, host: string, port: number): number {
    return encodeSockaddr(host, port, this.bytes, offset);
  }
}

/**
 * A ring's pool slots: which are taken, each pool's size, and how many
 * operations in flight use each pool's memory. A pool detached while
 * operations still use it keeps its slot until the last one completes.
 */
export class PoolSlots {
  /** 1 where a pool occupies the slot (descriptors may name it). */
  readonly attached = new Uint8Array(MAX_POOLS);
  readonly #inflight = new Int32Array(MAX_POOLS);
  readonly #detachPending = new Uint8Array(MAX_POOLS);
  readonly #drop: (index: number) => void;

  /** `drop(index)` runs when a slot is finally given up: tell the engine. */
  constructor(drop: (index: number) => void) {
    this.#drop = drop;
  }

  /** A free slot's index; throws when all 64 are taken. */
  claim(): number {
    for (let i = 0; i < MAX_POOLS; i++) {
      if (!this.attached[i] && !this.#detachPending[i]) return i;
    }
    throw new OutOfRangeError(`a ring holds at most ${MAX_POOLS} pools`);
  }

  occupy(index: number): void {
    this.attached[index] = 1;
  }

  /** An operation using the pool's memory was queued. */
  opStarted(index: number): void {
    this.#inflight[index]++;
  }

  /** Its final completion came. */
  opDone(index: number): void {
    if (--this.#inflight[index] === 0 && this.#detachPending[index]) this.#release(index);
  }

  detach(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= MAX_POOLS) {
      throw new OutOfRangeError(`pool index must be in [0, ${MAX_POOLS - 1}], got ${index}`);
    }
    if (!this.attached[index] || this.#detachPending[index]) return;
    if (this.#inflight[index] > 0) this.#detachPending[index] = 1;
    else this.#release(index);
  }

  #release(index: number): void {
    this.#detachPending[index] = 0;
    this.attached[index] = 0;
    this.#drop(index);
  }
}

function rethrow(err: unknown): never {
  throw err;
}

/**
 * The objects whose preFlush() runs once at the start of a ring's next flush
 * (Ring.schedule). The ring decides when to run and schedules the flush. A
 * throwing preFlush is rethrown on the next tick: the others still run.
 */
export class PreFlushQueue {
  #list: PreFlush[] = [];
  /** the last run's list, emptied with its backing store kept: the next run fills it without growing a new one */
  #spare: PreFlush[] | null = null;

  get pending(): boolean {
    return this.#list.length > 0;
  }

  add(p: PreFlush): void {
    this.#list.push(p);
  }

  /** Calls each queued object once, including any queued while this runs. */
  run(): void {
    while (this.#list.length > 0) {
      // Another list (the spare) takes what is added meanwhile: a preFlush may
      // flush (a full batch), which runs this again, and may schedule again.
      const list = this.#list;
      this.#list = this.#spare ?? [];
      this.#spare = null;
      for (let i = 0; i < list.length; i++) {
        try {
          list[i].preFlush();
        } catch (err) {
          process.nextTick(rethrow, err);
        }
      }
      // pop, not length = 0, which drops the backing store
      while (list.length > 0) list.pop();
      // a nested run may have kept its own list already
      if (this.#spare === null) this.#spare = list;
    }
  }

  /** The ring closed: forget them (a run in progress finishes its current list). */
  clear(): void {
    this.#list = [];
    this.#spare = null;
  }
}
