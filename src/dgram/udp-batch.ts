/**
 * UdpBatch: what one receive buffer holds, as one object: the datagrams of
 * one flow laid end to end (with UDP_GRO up to 64 KiB of them, else one), all
 * `segmentSize` bytes but the last (1 to segmentSize), and their source. A
 * socket with a 'batch' listener hands it out whole (one event per buffer, so
 * a tunnel or relay pays per buffer, not per datagram); otherwise it cuts it
 * into one UdpMessage per datagram, made only as each is handed out.
 *
 * Ownership as for a received IoBuffer: the batch is the application's while
 * its 'batch' handlers run and goes back to the pool, all its datagrams
 * together, when they return, unless one retain()ed it (then release() it)
 * or sent it on (UdpSocket.send(batch): one UDP_SEGMENT send from the same
 * buffer, no copy; the batch counts as released from then on).
 * Its views throw ERR_MAIO_BUFFER_RELEASED after that. Keep the batch, not a
 * view: a view kept past release reads pool memory someone else may own.
 */
import { BufferReleasedError, OutOfRangeError } from '../core/errors';
import { kLend, kReleaseWhenReturned } from '../core/symbols';
import type { IoBuffer } from '../pool/buffer';
import type { IoPool } from '../pool/pool';
import { SharedBuffer, UdpMessage, type RemoteInfo } from './udp-message';

/** @internal the next datagram message delivery hands out (a batch a pause cut in two resumes there) */
export const kNextMessage = Symbol('maio.UdpBatch.nextMessage');
/** @internal message delivery: datagram i as a UdpMessage holding its own share of the buffer */
export const kMessageAt = Symbol('maio.UdpBatch.messageAt');
/** @internal UdpSocket.send(batch): lends the buffer for `sends` sends and gives the batch up */
export const kLendForSend = Symbol('maio.UdpBatch.lendForSend');

export class UdpBatch {
  /** Where the datagrams came from (one source per buffer: GRO merges one flow only). */
  readonly from: RemoteInfo;
  /** Datagrams in the batch, at least 1. */
  readonly count: number;
  /** Bytes of every datagram but the last (which has 1 to segmentSize); `length` when count is 1. */
  readonly segmentSize: number;
  /** Payload bytes of all the datagrams together. */
  readonly length: number;
  /** The kernel cut the last datagram short (or dropped what followed): the buffer was too small. */
  readonly truncated: boolean;
  readonly #buf: IoBuffer;
  /** memory holding the buffer: the pool's region, or the buffer's own view (strict pools) */
  readonly #mem: Uint8Array;
  /** where the payload starts in #mem */
  readonly #at: number;
  /** where the payload starts in the buffer */
  readonly #start: number;
  /**
   * Made when the first datagram is cut off as a message: the messages and the batch then share
   * the buffer. A batch handed out whole (a 'batch' listener, a relay) never makes one.
   */
  #shared: SharedBuffer | null = null;
  #released = false;
  #retained = false;
  #bytes: Uint8Array | null = null;
  [kNextMessage] = 0;

  /**
   * @internal made by parseRecvmsg: takes the buffer, whose bytes start at `base` in `mem`.
   * `start`: the payload's offset in the buffer; `groSize` 0: one datagram.
   */
  constructor(buf: IoBuffer, mem: Uint8Array, base: number, start: number, length: number, groSize: number, truncated: boolean, from: RemoteInfo) {
    this.#buf = buf;
    this.#mem = mem;
    this.#at = base + start;
    this.#start = start;
    this.length = length;
    const several = groSize > 0 && groSize < length;
    this.count = several ? Math.ceil(length / groSize) : 1;
    this.segmentSize = several ? groSize : length;
    this.truncated = truncated;
    this.from = from;
  }

  #check(): void {
    if (this.#released) throw new BufferReleasedError('the batch was released');
  }

  /** All the datagrams end to end: a view of pool memory (datagram i starts at i * segmentSize). */
  get bytes(): Uint8Array {
    this.#check();
    return (this.#bytes ??= this.#mem.subarray(this.#at, this.#at + this.length));
  }

  /** Bytes of datagram i. */
  sizeOf(i: number): number {
    this.#index(i);
    return i === this.count - 1 ? this.length - i * this.segmentSize : this.segmentSize;
  }

  /** Datagram i (0 .. count - 1): a view of pool memory, made per call. */
  datagram(i: number): Uint8Array {
    this.#check();
    this.#index(i);
    const at = this.#at + i * this.segmentSize;
    return this.#mem.subarray(at, at + (i === this.count - 1 ? this.length - i * this.segmentSize : this.segmentSize));
  }

  #index(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new OutOfRangeError(`datagram index must be an integer in [0, ${this.count - 1}], got ${String(i)}`);
  }

  /** The pool the datagrams live in. */
  get pool(): IoPool {
    return this.#buf.pool;
  }

  get released(): boolean {
    return this.#released;
  }

  /** Keeps the batch past the 'batch' handlers (which otherwise release it); release() it later. */
  retain(): this {
    this.#check();
    this.#retained = true;
    return this;
  }

  get retained(): boolean {
    return this.#retained;
  }

  /** Gives every datagram of the batch back at once: the pool buffer returns. */
  release(): void {
    this.#check();
    this.#letGo();
  }

  /** The batch's own hold on the buffer ends: the buffer goes back now, or with the last message cut from it. */
  #letGo(): void {
    this.#released = true;
    this.#bytes = null;
    if (this.#shared) this.#shared.drop();
    else this.#buf.pool[kReleaseWhenReturned](this.#buf);
  }

  /**
   * @internal Lends the slot to the kernel `sends` times more (the pool
   * counts lends; each send's completion returns one) and counts the batch
   * as released. Returns the buffer and the payload's offset in the pool's
   * region. Its bytes go back to the pool once the last send completed.
   */
  [kLendForSend](sends: number): { buf: IoBuffer; offset: number } {
    this.#check();
    const buf = this.#buf;
    for (let k = 0; k < sends; k++) buf.pool[kLend](buf, 0);
    this.#letGo();
    return { buf, offset: buf.offset + this.#start };
  }

  /** @internal */
  [kMessageAt](i: number): UdpMessage {
    if (this.#shared === null) {
      this.#shared = new SharedBuffer(this.#buf, this.#mem, this.#at - this.#start);
      this.#shared.refs = 1; // the batch's own share, dropped by release()
    }
    const at = i * this.segmentSize;
    const n = i === this.count - 1 ? this.length - at : this.segmentSize;
    // Only a datagram cut off at the end of the buffer is truncated.
    return new UdpMessage(this.#shared, this.#start + at, n, this.truncated && i === this.count - 1 && (this.count === 1 || n < this.segmentSize));
  }
}
