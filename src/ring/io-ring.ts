/**
 * What the layers above the ring (src/net/, src/paths/, src/pool/) may use:
 * "submit an operation, complete an operation" (not readiness). The Ring
 * implements it over either engine (io_uring, or epoll emulating it), so the
 * socket layer runs unchanged on both. Completions keep io_uring's CQE
 * semantics on both: F_MORE for multishot results and SEND_ZC's first CQE,
 * F_BUFFER with the buffer id in flags >>> 16, F_NOTIF for zero-copy
 * notifications.
 */
import type { Op, PoolHandle } from '../core/native';
import type { CompletionTarget, PoolAttachment, PreFlush, ProvideOwner, RingStats } from './ring';

export type { CompletionTarget, PoolAttachment, PreFlush, ProvideOwner, RingStats };

/**
 * What this thread's ring can do. Layers above src/ring/ branch on these,
 * never on which engine runs.
 */
export interface RingCapabilities {
  /** SPLICE operations (file and pipe paths that never enter user memory). */
  readonly splice: boolean;
  /** Pieces one sendv() takes; 0: no SENDV, send one buffer per op. */
  readonly sendvMax: number;
  /** Pools can be registered with the kernel as fixed buffers. */
  readonly fixedBuffers: boolean;
  /** How a zero-copy send is made, for messages: io_uring's SEND_ZC or a send(2) with MSG_ZEROCOPY. */
  readonly zeroCopySend: 'SEND_ZC' | 'MSG_ZEROCOPY';
  /** sendmsgZc() works: SENDMSG_ZC on io_uring, sendmsg with MSG_ZEROCOPY on epoll. */
  readonly zeroCopySendmsg: boolean;
}

export interface IoRing {
  readonly closed: boolean;
  readonly capabilities: RingCapabilities;
  /** Operations queued or in flight. */
  readonly pending: number;
  /** Operations the current batch still takes before queue() must flush (a link must not straddle two). */
  readonly room: number;

  queue(
    target: CompletionTarget,
    op: Op,
    fd: number,
    len?: number,
    pool?: number,
    bufOff?: number,
    msgFlags?: number,
    ioprio?: number,
    bufGroup?: number,
    auxOff?: number,
    auxLen?: number,
    sqeFlags?: number,
  ): number;
  nop(target: CompletionTarget): number;
  send(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags?: number): number;
  sendZc(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags?: number): number;
  /** Pieces one sendv() takes (0: this ring has no SENDV; send one buffer per op). */
  readonly sendvMax: number;
  /**
   * One plain send of `count` pieces of pool `pool`: segs[2k] is piece k's
   * offset in the pool, segs[2k + 1] its length, `len` their sum. One
   * completion: bytes sent from the first piece on, or -errno. Returns the op
   * id, or -1 when it cannot be queued now (no SENDV, no free aux slot):
   * send the pieces one by one then.
   */
  sendv(target: CompletionTarget, fd: number, pool: number, segs: Int32Array, count: number, len: number, msgFlags?: number, sqeFlags?: number, held?: readonly (Uint8Array | null)[] | null): number;
  /** A plain send from the caller's `buf` (its first `len` bytes), held until the final completion: no copy into a pool buffer. */
  sendBuf(target: CompletionTarget, fd: number, buf: Uint8Array, len: number, msgFlags?: number, sqeFlags?: number): number;
  recv(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags?: number): number;
  /**
   * `totalLen` > 0: the multishot ends (a data CQE without F_MORE) once that
   * many bytes came in, at most one buffer more (io_uring: kernel 6.17+, -EINVAL before).
   */
  recvMulti(target: CompletionTarget, fd: number, bufGroup: number, msgFlags?: number, totalLen?: number): number;
  /** Multishot recvmsg: one completion per datagram (see Ring.recvmsgMulti). */
  recvmsgMulti(target: CompletionTarget, fd: number, bufGroup: number, nameLen: number, ctlLen: number, msgFlags?: number): number;
  /** One datagram (or, with gso > 0, a UDP_SEGMENT batch) from pool pieces through the aux entry at auxOff (see Ring.sendmsg). */
  sendmsg(target: CompletionTarget, fd: number, pool: number, auxOff: number, segs: Int32Array, count: number, len: number, nameLen: number, gso?: number, msgFlags?: number): number;
  /** sendmsg, zero-copy (capabilities.zeroCopySendmsg): the result (F_MORE when it worked), then the notification (F_NOTIF); the pieces are lent until the notification. */
  sendmsgZc(target: CompletionTarget, fd: number, pool: number, auxOff: number, segs: Int32Array, count: number, len: number, nameLen: number, gso?: number, msgFlags?: number): number;
  accept(target: CompletionTarget, fd: number, multishot?: boolean, flags?: number): number;
  connect(target: CompletionTarget, fd: number, auxOff: number, auxLen: number): number;
  closeFd(target: CompletionTarget, fd: number): number;
  shutdown(target: CompletionTarget, fd: number, how: number): number;
  splice(target: CompletionTarget, fdIn: number, offIn: number, fdOut: number, len: number, flags?: number, sqeFlags?: number): number;
  cancel(opId: number): boolean;
  /**
   * node:net's ref()/unref() for `target`: with false, its waits for input
   * (recv, accept) stop keeping the event loop alive, those live and those
   * queued later; its other ops keep it alive whatever this says.
   */
  setRef(target: CompletionTarget, referenced: boolean): void;
  flush(): void;
  /** Calls `p.preFlush()` once at the start of the next flush (scheduled if need be). */
  schedule(p: PreFlush): void;

  provide(pool: number, off: number, len: number, group: number, bid: number): void;
  registerBufRing(group: number, entries: number, owner: ProvideOwner): void;
  unregisterBufRing(group: number): void;

  /** lazy: register the pool as a fixed buffer at its first zero-copy send, not now (io_uring only). */
  attachPool(handle: PoolHandle, lazy?: boolean): PoolAttachment;
  detachPool(index: number): void;

  readonly aux: Uint8Array;
  allocAux(): number;
  freeAux(offset: number): void;
  /** A 1 KiB aux slot (a sendmsg entry of up to 64 pieces), or -1. */
  allocAuxLarge(): number;
  freeAuxLarge(offset: number): void;
  writeSockaddr(offset: number, host: string, port: number): number;

  stats(): RingStats;
  close(): void;
}
