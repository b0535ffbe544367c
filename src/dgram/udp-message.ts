/**
 * A received datagram: a view of the pool buffer the kernel wrote it into,
 * never a copy (the buffer's layout: udp-recvmsg.ts). With UDP_GRO one buffer
 * can carry several datagrams: each becomes a message over its own part of
 * the same buffer, made when it is handed out (udp-batch.ts), and the buffer
 * goes back to its pool when the last of them is released.
 *
 * A message can be sent on as it is (UdpSocket.send(msg)): its region of the
 * pool buffer is lent to the kernel (the other messages of the buffer stay
 * readable: a send only reads its own region) and the message counts as
 * released. The buffer goes back when its last message is released and the
 * last send of one of them has completed (the pool's lend count and
 * release-on-return flag do that bookkeeping).
 */
import type { AddressInfo } from 'node:net';
import { BufferReleasedError } from '../core/errors';
import { kLend, kReleaseWhenReturned } from '../core/symbols';
import type { IoBuffer } from '../pool/buffer';
import type { IoPool } from '../pool/pool';

/** Where a datagram came from (node:dgram's rinfo without `size`: see message.length). */
export type RemoteInfo = Readonly<AddressInfo>;

/** A message's `bytes` view -> the message, so send(msg.bytes) can send the message itself. */
const byView = new WeakMap<Uint8Array, UdpMessage>();

/** The live message whose `bytes` this view is (the very view, not a subarray of it), or undefined. */
export function messageOfView(view: Uint8Array): UdpMessage | undefined {
  return byView.get(view);
}

/**
 * @internal One receive buffer shared by the messages cut from it (and by
 * the UdpBatch that holds them while they are handed out): it goes back to
 * the pool when the last holder lets go.
 */
export class SharedBuffer {
  refs = 0;
  /**
   * `view`: memory holding the whole buffer from `base` on (the pool's region, or the buffer's own
   * view in a strict pool), unchecked: a sibling message may be with the kernel (the slot is LENT),
   * but only its own region is; the holders check their own released state.
   */
  constructor(
    readonly buf: IoBuffer,
    readonly view: Uint8Array,
    readonly base: number,
  ) {}

  /** A holder lets go; the buffer goes back now, or when the last send of one of its regions completes. */
  drop(): void {
    if (--this.refs === 0) this.buf.pool[kReleaseWhenReturned](this.buf);
  }
}

export class UdpMessage {
  readonly #shared: SharedBuffer;
  readonly #start: number;
  /** Payload bytes in this message. */
  readonly length: number;
  /** The datagram was longer than the receive buffer: `length` bytes of it are here, the rest is lost. */
  readonly truncated: boolean;
  #released = false;
  #retained = false;
  #bytes: Uint8Array | null = null;

  /** @internal made by UdpBatch for message delivery */
  constructor(shared: SharedBuffer, start: number, length: number, truncated: boolean) {
    this.#shared = shared;
    this.#start = start;
    this.length = length;
    this.truncated = truncated;
    shared.refs++;
  }

  /** The payload, a view of pool memory. Throws ERR_MAIO_BUFFER_RELEASED after release(). */
  get bytes(): Uint8Array {
    if (this.#released) throw new BufferReleasedError('message was released');
    if (this.#bytes === null) {
      const at = this.#shared.base + this.#start;
      this.#bytes = this.#shared.view.subarray(at, at + this.length);
      byView.set(this.#bytes, this);
    }
    return this.#bytes;
  }

  /** The pool the payload lives in (a socket sends a message only from its own pool). */
  get pool(): IoPool {
    return this.#shared.buf.pool;
  }

  /**
   * @internal UdpSocket.send(msg): lends the slot to the kernel once more
   * (counted) and gives the message up. Returns the buffer to hand back to
   * the pool (kReturn) when the send completes, and the payload's offset in
   * the pool's region.
   */
  lendForSend(): { buf: IoBuffer; offset: number } {
    if (this.#released) throw new BufferReleasedError('message was released');
    const buf = this.#shared.buf;
    buf.pool[kLend](buf, 0);
    this.#released = true;
    this.#bytes = null;
    this.#shared.drop();
    return { buf, offset: buf.offset + this.#start };
  }

  get released(): boolean {
    return this.#released;
  }

  /** Keeps the message past the 'message' handlers (which otherwise release it); release() it later. */
  retain(): this {
    if (this.#released) throw new BufferReleasedError('message was released');
    this.#retained = true;
    return this;
  }

  get retained(): boolean {
    return this.#retained;
  }

  /** Gives the bytes back; the pool buffer returns when its last message is released. */
  release(): void {
    if (this.#released) throw new BufferReleasedError('message was released');
    this.#released = true;
    this.#bytes = null;
    this.#shared.drop();
  }
}
