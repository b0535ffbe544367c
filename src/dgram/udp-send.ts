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
 * On a connected socket, the first sendSegments() buffer sets the socket's
 * own UDP_SEGMENT size (setsockopt, once: ops already queued would read a
 * changed one), as a C sender does; buffers of that segment size then leave
 * as plain SEND ops of the pool buffer: no msghdr, cmsg or iovec for the
 * kernel to copy per send. Every other send on the socket from then on
 * carries its own UDP_SEGMENT cmsg (0 for one datagram), which overrides
 * the socket's size, so mixed sizes stay whole.
 *
 * A received message sent on (send(msg)) is a region of a receive buffer:
 * its piece is (offset, length) inside that buffer, lent by the message
 * itself. Messages cut from one GRO buffer, sent on in one turn to one
 * destination, so leave as one UDP_SEGMENT send again; their pieces lie back
 * to back in the buffer and are listed as one.
 *
 * Large sends (zeroCopyMinBytes, 16 KiB by default: a GSO batch of a dozen
 * datagrams) may go zero-copy (udp-zero-copy.ts decides): SENDMSG_ZC, whose
 * pieces stay lent until the kernel's notification, not just its result;
 * the callbacks run at the result, the buffers go back at the notification.
 * Batches of more separate buffers than one packet's page fragments (17 on
 * a default kernel build) go zero-copy (cut to fit) only
 * once zero-copy is proven or forced, so 'auto' probes with what fits as
 * it is (sendSegments() buffers, relayed GRO regions, smaller batches).
 */
import * as fs from 'node:fs';
import { errnoError, type ErrnoError } from '../core/errors';
import { CQE_F_MORE, CQE_F_NOTIF, NOTIF_USAGE_ZC_COPIED, SENDMSG_MAX_SEGS, SENDMSG_NAME_MAX, SLOT_MASK, SOL_UDP, UDP_SEGMENT, UDP_SEGMENT_NONE, native } from '../core/native';
import { kLend, kPoolId, kReturn } from '../core/symbols';
import type { IoBuffer } from '../pool/buffer';
import { LEND_TRANSFER, type IoPool } from '../pool/pool';
import type { CompletionTarget, IoRing, PreFlush } from '../ring/io-ring';
import type { OffloadState } from './udp-options';
import type { UdpCounters } from './udp-stats';
import type { UdpZeroCopy } from './udp-zero-copy';

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
  /** a zero-copy send of it failed: it goes plain */
  plain: boolean;
}

const enum Again {
  No = 0,
  /** the zero-copy send failed: the items go again as plain sends */
  Plain = 1,
  /** the kernel refused UDP_SEGMENT: the items go again one by one */
  Singly = 2,
}

interface Batch {
  /** the ring's op id: its slot indexes #inflight */
  opId: number;
  items: Pending[];
  /** the SENDMSG's aux entry; -1: a SEND with the socket's own segment size */
  aux: number;
  large: boolean;
  gso: number;
  /** bytes of the send */
  total: number;
  zc: boolean;
  /** a zero-copy send's result said the kernel took the bytes: its notification counts */
  sent: boolean;
  again: Again;
}

/** Pieces a 128-byte aux slot lists after the name. */
const SMALL_SEGS = (128 - SENDMSG_NAME_MAX) >> 3;
/** One GSO send's payload at most: under IPv6's 65,487-byte datagram limit, and with
 * room for the recvmsg header, name and GRO cmsg in a 64 KiB receive buffer. */
export const GSO_MAX_BYTES = 65280;
/**
 * The kernel hangs a zero-copy send's pages on one skb as page fragments, at
 * most MAX_SKB_FRAGS, and fails the send with EMSGSIZE beyond; a batch is cut
 * to fit before it goes zero-copy. MAX_SKB_FRAGS is a build option (17 by
 * default); the net.core.max_skb_frags sysctl starts at it and cannot exceed
 * it, so reading the sysctl never overshoots. Pool offsets count from the
 * region's page-aligned start.
 */
const MAX_FRAGS = readMaxFrags();

function readMaxFrags(): number {
  try {
    const n = Number(fs.readFileSync('/proc/sys/net/core/max_skb_frags', 'utf8').trim());
    if (Number.isInteger(n) && n >= 1) return n;
  } catch {
    // no /proc (a container without it): the default build's value
  }
  return 17;
}
const PAGE = 4096;
const EMSGSIZE = 90;
const EINVAL = 22;
const EIO = 5;
const ENOMEM = 12;
const ENOBUFS = 105;
const EOPNOTSUPP = 95;
const ECANCELED = 125;

export class UdpSender implements PreFlush, CompletionTarget {
  readonly #ring: IoRing;
  readonly #pool: IoPool;
  readonly #fd: () => number;
  readonly #stats: UdpCounters;
  readonly #onError: (err: ErrnoError) => void;
  readonly gso: OffloadState;
  readonly #zc: UdpZeroCopy;
  readonly #segs = new Int32Array(2 * SENDMSG_MAX_SEGS);
  #queue: Pending[] = [];
  /** batches with the kernel, at their op id's slot (the ring reuses a slot only after the op's final completion): no Map churn per send */
  readonly #inflight: (Batch | undefined)[] = [];
  #inflightCount = 0;
  /** queue entries in the #inflight batches: pending without a walk */
  #inflightItems = 0;
  #scheduled = false;
  #onIdle: (() => void) | null = null;
  /** the socket's own UDP_SEGMENT size (set once, never changed), 0: none */
  #socketSeg = 0;
  /** setsockopt(UDP_SEGMENT) failed: per-send cmsgs only */
  #socketSegRefused = false;
  /** drain() was called: nothing goes again */
  #closeError: Error | null = null;

  constructor(ring: IoRing, pool: IoPool, fd: () => number, gso: OffloadState, zc: UdpZeroCopy, stats: UdpCounters, onError: (err: ErrnoError) => void) {
    this.#ring = ring;
    this.#pool = pool;
    this.#fd = fd;
    this.gso = gso;
    this.#zc = zc;
    this.#stats = stats;
    this.#onError = onError;
  }

  /** Sends queued or with the kernel (a buffer of segments counts once). */
  get pending(): number {
    return this.#queue.length + this.#inflightItems;
  }

  /** Takes the buffers of one datagram (checked by the caller: live, owned, distinct) and queues it for this turn's flush. */
  enqueue(buf: IoBuffer, more: IoBuffer[] | null, len: number, name: Uint8Array | null, cb: SendCallback | undefined): void {
    this.#pool[kLend](buf, LEND_TRANSFER);
    if (more !== null) for (const b of more) this.#pool[kLend](b, LEND_TRANSFER);
    this.#queue.push({ buf, off: buf.offset, more, len, name, cb, seg: 0, plain: false });
    this.#schedule();
  }

  /**
   * Takes one buffer of datagrams laid end to end, each `seg` bytes (the last
   * may be shorter), checked by the caller; it leaves alone as one UDP_SEGMENT
   * send, so the application pays one queue entry for up to 64 datagrams.
   * `shared`: a counted lend, the buffer stays the caller's (sendSegmentsShared).
   */
  enqueueSegments(buf: IoBuffer, seg: number, name: Uint8Array | null, cb: SendCallback | undefined, shared = false): void {
    this.#pool[kLend](buf, shared ? 0 : LEND_TRANSFER);
    this.#queue.push({ buf, off: buf.offset, more: null, len: buf.length, name, cb, seg, plain: false });
    this.#schedule();
  }

  /**
   * Queues `len` bytes at pool offset `off` inside `buf`, already lent by its
   * owner: a received message, or (`seg` > 0) a received batch of datagrams
   * of `seg` bytes end to end, which leaves alone as one UDP_SEGMENT send.
   */
  enqueueLent(buf: IoBuffer, off: number, len: number, name: Uint8Array | null, cb: SendCallback | undefined, seg = 0): void {
    this.#queue.push({ buf, off, more: null, len, name, cb, seg, plain: false });
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

  /** How many of items head..head+n-1 fit MAX_FRAGS page fragments, pieces back to back merged as #listPieces merges them. */
  #fitting(q: Pending[], head: number, n: number): number {
    let frags = 0;
    let end = -1;
    for (let k = 0; k < n; k++) {
      const { off, len } = q[head + k];
      const first = Math.floor(off / PAGE);
      let add = Math.floor((off + Math.max(len, 1) - 1) / PAGE) - first + 1;
      if (off === end && end % PAGE !== 0) add--; // continues the previous piece's page
      if (frags + add > MAX_FRAGS) return k;
      frags += add;
      end = off + len;
    }
    return n;
  }

  /** Page fragments of a datagram of several buffers. */
  #fragsOfMany(item: Pending): number {
    const pages = (off: number, len: number): number => Math.floor((off + Math.max(len, 1) - 1) / PAGE) - Math.floor(off / PAGE) + 1;
    let frags = pages(item.off, item.buf.length);
    for (const b of item.more!) frags += pages(b.offset, b.length);
    return frags;
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

  /**
   * Whether a connected socket's buffer of `seg`-byte segments can go as a
   * plain SEND: the socket's own UDP_SEGMENT size is `seg`, or is set to it
   * now (only with none of this socket's sends queued or with the kernel:
   * they were built without a cmsg of their own).
   */
  #socketSegFor(seg: number): boolean {
    if (this.#socketSeg === seg) return true;
    if (this.#socketSeg !== 0 || this.#socketSegRefused || this.#inflightCount !== 0) return false;
    try {
      native().sockSetInt(this.#fd(), SOL_UDP, UDP_SEGMENT, seg);
    } catch {
      this.#socketSegRefused = true;
      return false;
    }
    this.#socketSeg = seg;
    return true;
  }

  #track(opId: number, batch: Batch): void {
    const slot = opId & SLOT_MASK;
    // Filled up to the slot, never sparse: the array stays a fast one.
    while (this.#inflight.length <= slot) this.#inflight.push(undefined);
    this.#inflight[slot] = batch;
    this.#inflightCount++;
    this.#inflightItems += batch.items.length;
  }

  /** @internal the ring's flush starts: the queue leaves as SEND and SENDMSG ops. */
  preFlush(): void {
    this.#scheduled = false;
    const q = this.#queue;
    let head = 0;
    while (head < q.length) {
      const first = q[head];
      const size = first.len;
      if (first.seg > 0 && first.name === null && (first.plain || !this.#zc.wouldUse(size)) && this.#socketSegFor(first.seg)) {
        // A connected socket's buffer of segments of its own size: a plain SEND.
        if (!first.plain) this.#zc.plain(size);
        const opId = this.#ring.send(this, this.#fd(), this.#pool[kPoolId], first.off, size);
        this.#stats.socketSegmentSends++;
        this.#track(opId, { opId, items: [first], aux: -1, large: false, gso: first.seg, total: size, zc: false, sent: false, again: Again.No });
        head++;
        continue;
      }
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
      let plain = false;
      for (let k = 0; k < n; k++) if (q[head + k].plain) plain = true;
      // Zero-copy where the policy would send it so and it fits the kernel's
      // fragments; a batch too fragmented is cut to fit only once zero-copy is
      // settled (proven or forced): probes never reshape the batches.
      let zcFits = false;
      if (!plain && this.#zc.wouldUse(total)) {
        const fit = pieces > 1 ? (this.#fragsOfMany(first) <= MAX_FRAGS ? 1 : 0) : this.#fitting(q, head, n);
        let fitTotal = 0;
        for (let k = 0; k < fit; k++) fitTotal += q[head + k].len;
        if (fit === n) zcFits = true;
        else if (fit > 0 && this.#zc.settled && this.#zc.wouldUse(fitTotal)) {
          n = fit;
          total = fitTotal;
          zcFits = true;
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
        if (this.#inflightCount === 0) setTimeout(() => this.#retry(), 1);
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
      // With the socket's own size set, every SENDMSG says its own (0: one datagram).
      const gsoOut = gso === 0 && this.#socketSeg !== 0 ? UDP_SEGMENT_NONE : gso;
      let zc = false;
      if (zcFits) zc = this.#zc.use(total);
      else if (!plain) this.#zc.plain(total);
      const opId = zc
        ? this.#ring.sendmsgZc(this, this.#fd(), this.#pool[kPoolId], aux, segs, count, total, nameLen, gsoOut)
        : this.#ring.sendmsg(this, this.#fd(), this.#pool[kPoolId], aux, segs, count, total, nameLen, gsoOut);
      this.#track(opId, { opId, items: n === 1 ? [first] : q.slice(head, head + n), aux, large, gso, total, zc, sent: false, again: Again.No });
      head += n;
    }
    this.#queue = head === q.length ? [] : q.slice(head);
  }

  /**
   * @internal a SENDMSG's completion: res is the bytes sent, or -errno. A
   * SENDMSG_ZC has two: the result (F_MORE when the kernel took the pages),
   * then the notification (F_NOTIF), when the buffers go back.
   */
  onCompletion(opId: number, res: number, flags: number): void {
    const batch = this.#inflight[opId & SLOT_MASK];
    if (batch === undefined || batch.opId !== opId) return;
    if (flags & CQE_F_NOTIF) {
      if (batch.sent) {
        const copied = (res & NOTIF_USAGE_ZC_COPIED) !== 0;
        this.#zc.notified(batch.total, copied);
      }
      this.#finish(opId, batch);
      return;
    }
    const final = (flags & CQE_F_MORE) === 0;
    batch.again = this.#again(batch, res);
    if (batch.again === Again.No) {
      // A plain send's buffers go back before its callbacks run, as they always did.
      if (final && !batch.zc) this.#giveBackAll(batch);
      this.#report(batch, res);
    }
    if (final) this.#finish(opId, batch);
  }

  /** Whether a failed send goes again, and how. */
  #again(batch: Batch, res: number): Again {
    if (res >= 0 || res === -ECANCELED) return Again.No;
    const gsoRefused = batch.gso > 0 && (res === -EINVAL || res === -EIO) && batch.items[0].seg === 0;
    if (batch.zc && !gsoRefused && (res === -ENOMEM || res === -ENOBUFS || res === -EOPNOTSUPP || res === -EINVAL)) {
      // No memory to pin (memlock, optmem), or no zero-copy for this socket: plain sends from now on.
      this.#zc.failed(errnoError(res, 'send').code);
      for (const item of batch.items) item.plain = true;
      return Again.Plain;
    }
    if (batch.zc && res === -EMSGSIZE) {
      // More page fragments than this kernel takes (built with fewer than
      // MAX_FRAGS?): this batch goes plain; the policy is not to blame.
      for (const item of batch.items) item.plain = true;
      return Again.Plain;
    }
    if (gsoRefused) {
      // The kernel or the route refused segmentation: off for this socket,
      // and this batch goes again as single datagrams. (A sendSegments()
      // buffer cannot be cut here: it fails with the kernel's error below.)
      this.gso.enabled = false;
      this.gso.reason = `${res === -EIO ? 'EIO' : 'EINVAL'}: a UDP_SEGMENT send of ${batch.items.length} x ${batch.gso} bytes was refused`;
      return Again.Singly;
    }
    return Again.No;
  }

  /** A send's result: callbacks and counters. */
  #report(batch: Batch, res: number): void {
    const s = this.#stats;
    const err = res < 0 ? errnoError(res, 'send') : null;
    let told = false;
    for (const item of batch.items) {
      const cb = item.cb;
      if (cb) {
        told = true;
        try {
          cb(err);
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
      if (batch.zc) batch.sent = true;
    } else {
      s.errors++;
      if (!told && res !== -ECANCELED) this.#onError(err);
    }
  }

  #giveBackAll(batch: Batch): void {
    for (const item of batch.items) this.#giveBack(item);
  }

  /** The op's final completion: its aux entry is free, its buffers go back (or go again). */
  #finish(opId: number, batch: Batch): void {
    this.#inflight[opId & SLOT_MASK] = undefined;
    this.#inflightCount--;
    this.#inflightItems -= batch.items.length;
    if (batch.large) this.#ring.freeAuxLarge(batch.aux);
    else if (batch.aux >= 0) this.#ring.freeAux(batch.aux); // a SEND has none
    if (batch.again !== Again.No && this.#closeError === null) {
      this.#queue = batch.items.concat(this.#queue);
      this.#schedule();
      return;
    }
    // A zero-copy send's buffers come back only now (a plain one's went at its result).
    if (batch.zc || batch.again !== Again.No) this.#giveBackAll(batch);
    if (batch.again !== Again.No) for (const item of batch.items) item.cb?.(this.#closeError);
    if (this.#queue.length > 0) this.#schedule();
    else if (this.#inflightCount === 0 && this.#onIdle) {
      const cb = this.#onIdle;
      this.#onIdle = null;
      cb();
    }
  }

  /** Closing: queued datagrams go back to the pool with `err`; `cb` runs once none is with the kernel. */
  drain(err: Error, cb: () => void): void {
    this.#closeError = err;
    const q = this.#queue;
    this.#queue = [];
    for (const item of q) {
      this.#giveBack(item);
      item.cb?.(err);
    }
    if (this.#inflightCount === 0) cb();
    else this.#onIdle = cb;
  }
}
