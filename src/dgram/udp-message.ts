/**
 * A received datagram: a view of the pool buffer the kernel wrote it into,
 * never a copy. A RECVMSG buffer starts with struct io_uring_recvmsg_out,
 * then the source address, then control messages, then the payload; the
 * message covers only the payload. With UDP_GRO one buffer can carry several
 * datagrams (the control message says the segment size): each becomes a
 * message over its own part of the same buffer, and the buffer goes back to
 * its pool when the last of them is released.
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
import { RECVMSG_OUT, SOL_UDP, UDP_GRO } from '../core/native';
import { kLend, kReleaseWhenReturned, kUncheckedBytes } from '../core/symbols';
import type { IoBuffer } from '../pool/buffer';
import type { IoPool } from '../pool/pool';
import { decodeSockaddr } from '../net/address';

/** Where a datagram came from (node:dgram's rinfo without `size`: see message.length). */
export type RemoteInfo = Readonly<AddressInfo>;

const MSG_TRUNC = 0x20;
const CMSG_HDR = 16; // struct cmsghdr on 64-bit Linux: size_t len, int level, int type

/** A message's `bytes` view -> the message, so send(msg.bytes) can send the message itself. */
const byView = new WeakMap<Uint8Array, UdpMessage>();

/** The live message whose `bytes` this view is (the very view, not a subarray of it), or undefined. */
export function messageOfView(view: Uint8Array): UdpMessage | undefined {
  return byView.get(view);
}

/** One pool buffer shared by the messages cut from it. */
class SharedBuffer {
  refs = 0;
  constructor(readonly buf: IoBuffer) {}
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

  /** @internal made by parseDatagrams */
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
    // Unchecked: a sibling message of the same GRO buffer may be with the kernel (the slot is
    // LENT), but only its own region is; this one's is still the application's.
    if (this.#bytes === null) {
      const buf = this.#shared.buf;
      this.#bytes = buf.pool[kUncheckedBytes](buf).subarray(this.#start, this.#start + this.length);
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
    if (--this.#shared.refs === 0) buf.pool[kReleaseWhenReturned](buf);
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
    // Now, or when the last send of a sibling message completes.
    if (--this.#shared.refs === 0) this.#shared.buf.pool[kReleaseWhenReturned](this.#shared.buf);
  }
}

/** What one receive buffer held. */
export interface ParsedDatagrams {
  from: RemoteInfo;
  messages: UdpMessage[];
  /** the kernel cut the datagram (or GRO batch) short: it did not fit the buffer */
  truncated: boolean;
  /** UDP_GRO segment size, 0 when the buffer holds one datagram */
  groSize: number;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** The last source seen, so a flow from one peer makes one rinfo object, not one per datagram. */
let lastName = new Uint8Array(0);
let lastFrom: RemoteInfo | null = null;

function sameName(b: Uint8Array, at: number, len: number): boolean {
  if (lastName.length !== len) return false;
  for (let i = 0; i < len; i++) if (b[at + i] !== lastName[i]) return false;
  return true;
}

/**
 * Reads a RECVMSG buffer of `res` bytes (`nameLen` and `ctlLen` reserved, as
 * the op was armed) into messages. The buffer is then owned by the messages.
 */
export function parseDatagrams(buf: IoBuffer, res: number, nameLen: number, ctlLen: number): ParsedDatagrams {
  const b = buf.bytes;
  const gotName = Math.min(u32(b, 0), nameLen);
  const gotCtl = Math.min(u32(b, 4), ctlLen);
  const payloadLen = u32(b, 8);
  const flags = u32(b, 12);
  const start = RECVMSG_OUT + nameLen + ctlLen;
  const copied = Math.max(0, res - start);
  const truncated = (flags & MSG_TRUNC) !== 0 || payloadLen > copied;

  const nameAt = RECVMSG_OUT;
  let from: RemoteInfo;
  if (lastFrom !== null && sameName(b, nameAt, gotName)) {
    from = lastFrom;
  } else {
    from = gotName > 0 ? Object.freeze(decodeSockaddr(b.subarray(nameAt, nameAt + gotName))) : Object.freeze({ address: '', family: '', port: 0 });
    lastName = b.slice(nameAt, nameAt + gotName);
    lastFrom = from;
  }

  let groSize = 0;
  for (let c = RECVMSG_OUT + nameLen; c + CMSG_HDR <= RECVMSG_OUT + nameLen + gotCtl; ) {
    const len = u32(b, c); // the high half of a size_t cmsg_len is 0
    const level = u32(b, c + 8);
    const type = u32(b, c + 12);
    if (len < CMSG_HDR) break;
    if (level === SOL_UDP && type === UDP_GRO && len >= CMSG_HDR + 4) groSize = u32(b, c + CMSG_HDR);
    c += (len + 7) & ~7;
  }

  const shared = new SharedBuffer(buf);
  const messages: UdpMessage[] = [];
  if (groSize > 0 && groSize < copied) {
    for (let off = 0; off < copied; off += groSize) {
      const n = Math.min(groSize, copied - off);
      // Only the segment cut off at the end of the buffer is truncated.
      messages.push(new UdpMessage(shared, start + off, n, truncated && off + n === copied && n < groSize));
    }
  } else {
    messages.push(new UdpMessage(shared, start, copied, truncated));
  }
  return { from, messages, truncated, groSize };
}
