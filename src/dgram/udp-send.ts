/**
 * A UdpSocket's send side. send() lends the pool buffer to the kernel (LENT,
 * ownership goes with it: it returns to the pool when the kernel is done) and
 * queues it; at the start of the ring's next flush the queue leaves as
 * SENDMSG ops. Datagrams queued in one turn to the same destination with the
 * same size (the last may be shorter) leave as one UDP_SEGMENT send of up to
 * 64 of them: the kernel cuts it into datagrams, so a batch costs one op, not
 * one per datagram. The pieces are listed, not copied: each datagram stays in
 * its own pool buffer.
 *
 * A received message sent on (send(msg)) is a region of a receive buffer:
 * its piece is (offset, length) inside that buffer, lent by the message
 * itself. Messages cut from one GRO buffer, sent on in one turn to one
 * destination, so leave as one UDP_SEGMENT send again; their pieces lie back
 * to back in the buffer and are listed as one.
 */
import { errnoError, type ErrnoError } from '../core/errors';
import { SENDMSG_MAX_SEGS, SENDMSG_NAME_MAX } from '../core/native';
import { kLend, kPoolId, kReturn } from '../core/symbols';
import type { IoBuffer } from '../pool/buffer';
import { LEND_TRANSFER, type IoPool } from '../pool/pool';
import type { CompletionTarget, IoRing, PreFlush } from '../ring/io-ring';
import type { OffloadState } from './udp-options';
import type { UdpCounters } from './udp-stats';

export type SendCallback = (err: Error | null) => void;

interface Pending {
  buf: IoBuffer;
  /** where the first piece starts in the pool's region: buf.offset, or a message's payload inside buf */
  off: number;
  /** the datagram's further pieces (send() of several buffers), or null */
  more: IoBuffer[] | null;
  /** the datagram's length: buf's, plus the further pieces' */
  len: number;
  /** the destination sockaddr (one cached array per destination), or null: connected */
  name: Uint8Array | null;
  cb: SendCallback | undefined;
  /** sendSegments(): the segment size the kernel cuts this buffer into; 0: one datagram */
  seg: number;
}

interface Batch {
  items: Pending[];
  aux: number;
  large: boolean;
  gso: number;
}

/** Pieces a 128-byte aux slot lists after the name. */
const SMALL_SEGS = (128 - SENDMSG_NAME_MAX) >> 3;
/** One GSO send's payload at most: under IPv6's 65,487-byte datagram limit, and with
 * room for the recvmsg header, name and GRO cmsg in a 64 KiB receive buffer. */
export const GSO_MAX_BYTES = 65280;
const EINVAL = 22;
const EIO = 5;

export class UdpSender implements PreFlush, CompletionTarget {
  readonly #ring: IoRing;
  readonly #pool: IoPool;
  readonly #fd: () => number;
  readonly #stats: UdpCounters;
  readonly #onError: (err: ErrnoError) => void;
  readonly gso: OffloadState;
  readonly #segs = new Int32Array(2 * SENDMSG_MAX_SEGS);
  #queue: Pending[] = [];
  readonly #inflight = new Map<number, Batch>();
  #scheduled = false;
  #onIdle: (() => void) | null = null;

  constructor(ring: IoRing, pool: IoPool, fd: () => number, gso: OffloadState, stats: UdpCounters, onError: (err: ErrnoError) => void) {
    this.#ring = ring;
    this.#pool = pool;
    this.#fd = fd;
    this.gso = gso;
    this.#stats = stats;
    this.#onError = onError;
  }

  /** Datagrams queued or with the kernel. */
  get pending(): number {
    let n = this.#queue.length;
    for (const b of this.#inflight.values()) n += b.items.length;
    return n;
  }

  /** Takes the buffers of one datagram (checked by the caller: live, owned, distinct) and queues it for this turn's flush. */
  enqueue(buf: IoBuffer, more: IoBuffer[] | null, len: number, name: Uint8Array | null, cb: SendCallback | undefined): void {
    this.#pool[kLend](buf, LEND_TRANSFER);
    if (more !== null) for (const b of more) this.#pool[kLend](b, LEND_TRANSFER);
    this.#queue.push({ buf, off: buf.offset, more, len, name, cb, seg: 0 });
    this.#schedule();
  }

  /**
   * Takes one buffer of datagrams laid end to end, each `seg` bytes (the last
   * may be shorter), checked by the caller; it leaves alone as one UDP_SEGMENT
   * send, so the application pays one queue entry for up to 64 datagrams.
   */
  enqueueSegments(buf: IoBuffer, seg: number, name: Uint8Array | null, cb: SendCallback | undefined): void {
    this.#pool[kLend](buf, LEND_TRANSFER);
    this.#queue.push({ buf, off: buf.offset, more: null, len: buf.length, name, cb, seg });
    this.#schedule();
  }

  /**
   * Queues `len` bytes at pool offset `off` inside `buf`, already lent by its
   * owner: a received message, or (`seg` > 0) a received batch of datagrams
   * of `seg` bytes end to end, which leaves alone as one UDP_SEGMENT send.
   */
  enqueueLent(buf: IoBuffer, off: number, len: number, name: Uint8Array | null, cb: SendCallback | undefined, seg = 0): void {
    this.#queue.push({ buf, off, more: null, len, name, cb, seg });
    this.#stats.messagesSent += seg > 0 ? Math.ceil(len / seg) : 1;
    this.#schedule();
  }

  /** Lists datagrams head..head+n-1 (one piece each) in #segs, merging pieces that lie back to back; returns the count. */
  #listPieces(q: Pending[], head: number, n: number): number {
    const segs = this.#segs;
    let count = 0;
    for (let k = 0; k < n; k++) {
      const item = q[head + k];
      if (count > 0 && segs[2 * count - 2] + segs[2 * count - 1] === item.off) {
        segs[2 * count - 1] += item.len;
      } else {
        segs[2 * count] = item.off;
        segs[2 * count + 1] = item.len;
        count++;
      }
    }
    return count;
  }

  #giveBack(item: Pending): void {
    this.#pool[kReturn](item.buf);
    if (item.more !== null) for (const b of item.more) this.#pool[kReturn](b);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#ring.schedule(this);
  }

  #retry(): void {
    if (this.#queue.length === 0 || this.#ring.closed) return;
    this.#schedule();
  }

  /** @internal the ring's flush starts: the queue leaves as SENDMSG ops. */
  preFlush(): void {
    this.#scheduled = false;
    const q = this.#queue;
    let head = 0;
    while (head < q.length) {
      const first = q[head];
      const size = first.len;
      let n = 1;
      let total = size;
      // A datagram of several pieces goes alone: its pieces fill the list.
      const pieces = first.more === null ? 1 : 1 + first.more.length;
      // A buffer of segments goes alone too: it is a GSO batch already.
      if (this.gso.enabled && size > 0 && pieces === 1 && first.seg === 0) {
        while (head + n < q.length && n < SENDMSG_MAX_SEGS) {
          const next = q[head + n];
          const len = next.len;
          if (next.name !== first.name || next.more !== null || next.seg !== 0 || len > size || len === 0 || total + len > GSO_MAX_BYTES) break;
          n++;
          total += len;
          if (len < size) break; // only the last segment may be shorter
        }
      }
      let count = pieces > 1 ? pieces : this.#listPieces(q, head, n);
      let large = count > SMALL_SEGS;
      let aux = large ? this.#ring.allocAuxLarge() : this.#ring.allocAux();
      if (aux < 0 && large && pieces <= SMALL_SEGS) {
        // No large slot free: a smaller batch in a small one.
        large = false;
        n = SMALL_SEGS;
        total = 0;
        for (let k = 0; k < n; k++) total += q[head + k].len;
        count = this.#listPieces(q, head, n);
        aux = this.#ring.allocAux();
      }
      if (aux < 0) {
        // Every slot is with the kernel: one of our completions brings the next
        // flush; with none of ours in flight, other sockets hold them: look again soon.
        if (this.#inflight.size === 0) setTimeout(() => this.#retry(), 1);
        break;
      }
      const nameLen = first.name === null ? 0 : first.name.length;
      if (first.name !== null) this.#ring.aux.set(first.name, aux);
      const segs = this.#segs;
      if (pieces > 1) {
        segs[0] = first.off;
        segs[1] = first.buf.length;
        first.more!.forEach((b, k) => {
          segs[2 * k + 2] = b.offset;
          segs[2 * k + 3] = b.length;
        });
      }
      const gso = first.seg > 0 ? first.seg : n > 1 ? size : 0;
      const opId = this.#ring.sendmsg(this, this.#fd(), this.#pool[kPoolId], aux, segs, count, total, nameLen, gso);
      this.#inflight.set(opId, { items: q.slice(head, head + n), aux, large, gso });
      head += n;
    }
    this.#queue = head === q.length ? [] : q.slice(head);
  }

  /** @internal a SENDMSG completed: res is the bytes sent, or -errno */
  onCompletion(opId: number, res: number): void {
    const batch = this.#inflight.get(opId);
    if (batch === undefined) return;
    this.#inflight.delete(opId);
    if (batch.large) this.#ring.freeAuxLarge(batch.aux);
    else this.#ring.freeAux(batch.aux);
    if (res < 0 && batch.gso > 0 && (res === -EINVAL || res === -EIO) && batch.items[0].seg === 0) {
      // The kernel or the route refused segmentation: off for this socket,
      // and this batch goes again as single datagrams. (A sendSegments()
      // buffer cannot be cut here: it fails with the kernel's error below.)
      this.gso.enabled = false;
      this.gso.reason = `${res === -EIO ? 'EIO' : 'EINVAL'}: a UDP_SEGMENT send of ${batch.items.length} x ${batch.gso} bytes was refused`;
      this.#queue = batch.items.concat(this.#queue);
      this.#schedule();
      return;
    }
    const s = this.#stats;
    const err = res < 0 ? errnoError(res, 'send') : null;
    let told = false;
    for (const item of batch.items) {
      this.#giveBack(item);
      if (item.cb) {
        told = true;
        try {
          item.cb(err);
        } catch (e) {
          process.nextTick(() => {
            throw e;
          });
        }
      }
    }
    if (err === null) {
      const only = batch.items[0];
      s.datagramsOut += only.seg > 0 ? Math.ceil(only.len / only.seg) : batch.items.length;
      s.bytesOut += res;
      if (batch.gso > 0) s.gsoBatches++;
    } else {
      s.errors++;
      if (!told && res !== -125) this.#onError(err); // -ECANCELED: closing
    }
    if (this.#queue.length > 0) this.#schedule();
    else if (this.#inflight.size === 0 && this.#onIdle) {
      const cb = this.#onIdle;
      this.#onIdle = null;
      cb();
    }
  }

  /** Closing: queued datagrams go back to the pool with `err`; `cb` runs once none is with the kernel. */
  drain(err: Error, cb: () => void): void {
    const q = this.#queue;
    this.#queue = [];
    for (const item of q) {
      this.#giveBack(item);
      item.cb?.(err);
    }
    if (this.#inflight.size === 0) cb();
    else this.#onIdle = cb;
  }
}
