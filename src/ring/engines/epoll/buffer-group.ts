/**
 * A provided-buffer group, emulated for the epoll engine: what the kernel's provided-buffer ring
 * is for io_uring (IORING_REGISTER_PBUF_RING), a FIFO of (pool, offset,
 * length, buffer id) entries that a multishot recv takes from in order.
 * Unlike the kernel's ring, a full group refuses a buffer instead of
 * overwriting an entry nobody consumed.
 */
export class BufferGroup {
  readonly entries: number;
  readonly #e: Int32Array;
  readonly #mask: number;
  #head = 0;
  #count = 0;

  // the entry shift() took last
  pool = -1;
  off = 0;
  len = 0;
  bid = 0;

  constructor(entries: number) {
    this.entries = entries;
    this.#e = new Int32Array(entries * 4);
    this.#mask = entries - 1;
  }

  get count(): number {
    return this.#count;
  }

  /** False when the group is full. */
  push(pool: number, off: number, len: number, bid: number): boolean {
    if (this.#count === this.entries) return false;
    const b = ((this.#head + this.#count) & this.#mask) * 4;
    const e = this.#e;
    e[b] = pool;
    e[b + 1] = off;
    e[b + 2] = len;
    e[b + 3] = bid;
    this.#count++;
    return true;
  }

  /** Takes the oldest entry into pool/off/len/bid; false when empty. */
  shift(): boolean {
    if (this.#count === 0) return false;
    const b = this.#head * 4;
    const e = this.#e;
    this.pool = e[b];
    this.off = e[b + 1];
    this.len = e[b + 2];
    this.bid = e[b + 3];
    this.#head = (this.#head + 1) & this.#mask;
    this.#count--;
    return true;
  }

  /** Copies up to `max` of the oldest entries, without taking them, into out as (pool, off, len, bid); returns how many. */
  peek(out: Int32Array, max: number): number {
    const n = Math.min(max, this.#count);
    const e = this.#e;
    for (let i = 0; i < n; i++) {
      const b = ((this.#head + i) & this.#mask) * 4;
      out[4 * i] = e[b];
      out[4 * i + 1] = e[b + 1];
      out[4 * i + 2] = e[b + 2];
      out[4 * i + 3] = e[b + 3];
    }
    return n;
  }

  /** Takes the `n` oldest entries (after peek()). */
  drop(n: number): void {
    this.#head = (this.#head + n) & this.#mask;
    this.#count -= n;
  }

  /** Puts the entry shift() just took back in front (the recv found no data). */
  unshift(): void {
    this.#head = (this.#head - 1) & this.#mask;
    this.#count++;
  }
}
