/**
 * The pool's bookkeeping, all in typed arrays allocated once: per-slot state,
 * generation, lend count and flags, and one free stack per size class. Alloc
 * and release are O(1) and allocate nothing on the JS heap.
 *
 * Slots are numbered globally; class c owns slots [firstSlot, firstSlot+count)
 * and the same range of the `free` array as its stack.
 */
import type { ClassLayout } from './config';

export const enum SlotState {
  Free = 0,
  Owned = 1,
  Lent = 2,
}

export const enum SlotFlag {
  /** release when the last lend returns (ownership went with a send, or disposed while lent) */
  ReleaseOnReturn = 1,
  /** lent exclusively (the kernel writes into it: recv); no other lend meanwhile */
  Exclusive = 2,
}

export class SlotTable {
  readonly classes: readonly ClassLayout[];
  readonly slotCount: number;
  /** SlotState per slot */
  readonly state: Uint8Array;
  /** bumped on every release: a handle whose generation differs is stale */
  readonly gen: Uint32Array;
  readonly lends: Uint16Array;
  readonly flags: Uint8Array;
  /** byte offset of each slot in the region */
  readonly offset: Int32Array;
  readonly slotClass: Uint8Array;
  /** free stacks, one range per class */
  readonly free: Int32Array;
  /** per class: number of entries on its free stack */
  readonly top: Int32Array;
  readonly inUse: Int32Array;
  readonly lent: Int32Array;
  readonly highWater: Int32Array;
  readonly failed: Float64Array;
  /** class sizes, for the linear search in classFor (few classes) */
  readonly #sizes: Int32Array;

  constructor(layout: readonly ClassLayout[]) {
    this.classes = layout;
    const n = layout.reduce((a, c) => a + c.count, 0);
    const k = layout.length;
    this.slotCount = n;
    this.state = new Uint8Array(n);
    this.gen = new Uint32Array(n);
    this.lends = new Uint16Array(n);
    this.flags = new Uint8Array(n);
    this.offset = new Int32Array(n);
    this.slotClass = new Uint8Array(n);
    this.free = new Int32Array(n);
    this.top = new Int32Array(k);
    this.inUse = new Int32Array(k);
    this.lent = new Int32Array(k);
    this.highWater = new Int32Array(k);
    this.failed = new Float64Array(k);
    this.#sizes = new Int32Array(k);
    layout.forEach((c, ci) => {
      this.#sizes[ci] = c.size;
      for (let i = 0; i < c.count; i++) {
        const s = c.firstSlot + i;
        this.offset[s] = c.base + i * c.size;
        this.slotClass[s] = ci;
        // Lowest offsets on top: a fresh pool hands out its start first.
        this.free[c.firstSlot + i] = c.firstSlot + c.count - 1 - i;
      }
      this.top[ci] = c.count;
    });
  }

  /** The smallest class whose buffers hold `size` bytes, or -1. */
  classFor(size: number): number {
    const sizes = this.#sizes;
    for (let c = 0; c < sizes.length; c++) if (size <= sizes[c]) return c;
    return -1;
  }

  /** Pops a free slot of class c (now OWNED), or -1 when the class is empty. */
  take(c: number): number {
    const t = this.top[c];
    if (t === 0) return -1;
    const s = this.free[this.classes[c].firstSlot + t - 1];
    this.top[c] = t - 1;
    this.state[s] = SlotState.Owned;
    const used = ++this.inUse[c];
    if (used > this.highWater[c]) this.highWater[c] = used;
    return s;
  }

  /** Returns slot s to its class's free stack; stale handles see a new generation. */
  put(s: number): void {
    const c = this.slotClass[s];
    this.gen[s] = (this.gen[s] + 1) >>> 0;
    this.state[s] = SlotState.Free;
    this.lends[s] = 0;
    this.flags[s] = 0;
    this.free[this.classes[c].firstSlot + this.top[c]] = s;
    this.top[c]++;
    this.inUse[c]--;
  }

  totalInUse(): number {
    let n = 0;
    for (let c = 0; c < this.inUse.length; c++) n += this.inUse[c];
    return n;
  }
}
