/**
 * IoBuffer: a small handle to one slot of an IoPool. It owns nothing itself;
 * every access checks the slot's state and generation in the pool's typed
 * arrays, so a handle that was released (and whose slot may now belong to
 * someone else) can never reach the bytes again.
 */
import { inspect } from 'node:util';
import { BufferLentError, BufferReleasedError, InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { kGeneration, kSlot } from '../core/symbols';
import { SlotFlag, SlotState, type SlotTable } from './slots';
import type { IoPool } from './pool';

// Node 20.0-20.3 lack Symbol.dispose; Node's own polyfill uses this registry symbol.
if (typeof (Symbol as { dispose?: symbol }).dispose !== 'symbol') {
  Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('nodejs.dispose') });
}

/** What a buffer needs from its pool to make views: shared by all its buffers. */
export interface BufferHost {
  readonly table: SlotTable;
  /** the whole region; null once the pool is finalized (no buffer is live then) */
  region: ArrayBuffer | null;
  /** strict mode: one ArrayBuffer per live slot */
  readonly views: (ArrayBuffer | null)[] | null;
}

const kCreate = Symbol('maio.IoBuffer.create');

/** For IoPool only: handles cannot be forged from outside. */
export function makeBuffer(pool: IoPool, host: BufferHost, slot: number, length: number): IoBuffer {
  return new IoBuffer(kCreate, pool, host, slot, length);
}

export class IoBuffer {
  /** The pool this buffer belongs to. */
  readonly pool: IoPool;
  /** Byte offset of the buffer inside the pool's region (what the ring puts in descriptors). */
  readonly offset: number;
  /** Bytes the buffer can hold (its size class). */
  readonly capacity: number;
  readonly [kSlot]: number;
  readonly [kGeneration]: number;
  readonly #host: BufferHost;
  #length: number;
  #bytes: Uint8Array | null = null;
  #retained = false;

  /** @internal Use pool.alloc(). */
  constructor(token: symbol, pool: IoPool, host: BufferHost, slot: number, length: number) {
    if (token !== kCreate) throw new InvalidArgumentError('IoBuffer cannot be constructed directly; use pool.alloc()');
    this.pool = pool;
    this.#host = host;
    this[kSlot] = slot;
    this[kGeneration] = host.table.gen[slot];
    this.offset = host.table.offset[slot];
    this.capacity = host.table.classes[host.table.slotClass[slot]].size;
    this.#length = length;
  }

  /** Throws unless the handle is live and its slot is OWNED. */
  #check(): void {
    const t = this.#host.table;
    const s = this[kSlot];
    if (t.gen[s] !== this[kGeneration]) throw new BufferReleasedError();
    if (t.state[s] !== SlotState.Owned) throw new BufferLentError();
  }

  /**
   * The bytes [offset, offset + length) as a Uint8Array, made once and cached.
   * Throws ERR_MAIO_BUFFER_RELEASED after release and ERR_MAIO_BUFFER_LENT
   * while the kernel has the buffer. Keep the handle, not the view: a view
   * kept past release still reads pool memory unless the pool is strict.
   */
  get bytes(): Uint8Array {
    this.#check();
    return (this.#bytes ??= this.#view());
  }

  #view(): Uint8Array {
    const h = this.#host;
    if (h.views) return new Uint8Array(h.views[this[kSlot]]!, 0, this.#length);
    return new Uint8Array(h.region!, this.offset, this.#length);
  }

  /** Bytes in use (what `bytes` covers), 0..capacity. */
  get length(): number {
    return this.#length;
  }

  /** Sets how many bytes are in use, e.g. after filling part of the buffer. */
  setLength(n: number): this {
    this.#check();
    if (!Number.isInteger(n)) throw new InvalidArgumentError('length must be an integer');
    if (n < 0 || n > this.capacity) throw new OutOfRangeError(`length must be in [0, ${this.capacity}], got ${n}`);
    if (n !== this.#length) {
      this.#length = n;
      this.#bytes = null;
    }
    return this;
  }

  /** True once released (by the owner, or by the pool after a send that took ownership). */
  get released(): boolean {
    return this.#host.table.gen[this[kSlot]] !== this[kGeneration];
  }

  /** True while lent to the kernel. */
  get lent(): boolean {
    const t = this.#host.table;
    const s = this[kSlot];
    return t.gen[s] === this[kGeneration] && t.state[s] === SlotState.Lent;
  }

  /**
   * Keeps a received buffer past the 'data' handler that got it (which
   * otherwise releases it when the handler returns). The caller then owns it
   * and must release() it. Throws like `bytes` when not OWNED.
   */
  retain(): this {
    this.#check();
    this.#retained = true;
    return this;
  }

  /** True after retain(). */
  get retained(): boolean {
    return this.#retained;
  }

  /** Gives the buffer back to its pool. Throws while lent or when already released. */
  release(): void {
    this.pool.release(this);
  }

  /**
   * `using buf = pool.alloc(n)`: releases at scope end if still owned. If the
   * buffer is lent then, it is released when the kernel gives it back.
   */
  [Symbol.dispose](): void {
    const t = this.#host.table;
    const s = this[kSlot];
    if (t.gen[s] !== this[kGeneration]) return;
    if (t.state[s] === SlotState.Lent) t.flags[s] |= SlotFlag.ReleaseOnReturn;
    else this.pool.release(this);
  }

  [inspect.custom](): string {
    const state = this.released ? 'released' : this.lent ? 'lent' : 'owned';
    return `IoBuffer { offset: ${this.offset}, length: ${this.#length}, capacity: ${this.capacity}, ${state} }`;
  }
}
