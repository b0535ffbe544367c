/**
 * The epoll engine: io_uring's operations and completions emulated over epoll
 * and nonblocking system calls, for machines where io_uring is blocked. It
 * takes the same descriptors from the Ring's submit array and fills the same
 * completion array, with io_uring's CQE flag semantics, as the io_uring
 * engine; the Ring above cannot tell them apart but by `capabilities`.
 *
 * Why in TypeScript: this is a state machine over per-socket queues that
 * makes one system call per step. The system calls (native/fallback.c) are
 * the cost; the bookkeeping around them is a few array reads. Moving it to C
 * would double the native core for no measured gain, and keep two copies of
 * CQE semantics in sync across a language boundary.
 *
 * How each operation is emulated:
 * - Descriptors submitted together start in submit order (PROVIDEs first). A
 *   socket operation is attempted at once; on EAGAIN it waits in its
 *   socket's FIFO (readers or writers) until an epoll edge, then is attempted
 *   again. Sockets are in the epoll set (edge-triggered) only while something
 *   waits on them.
 * - SEND / SEND_ZC complete when every byte is out (MSG_WAITALL semantics),
 *   or with the bytes sent before an error. SEND_ZC uses MSG_ZEROCOPY: its
 *   result CQE carries F_MORE, then a F_NOTIF CQE follows once the error
 *   queue has reported every one of its sends, with NOTIF_USAGE_ZC_COPIED
 *   when the kernel copied (always, on loopback).
 * - RECV_MULTI takes buffers in order from an emulated provided-buffer group
 *   (PROVIDE descriptors, registerBufRing): one CQE per read with F_BUFFER |
 *   bid << 16 | F_MORE; it ends with -ENOBUFS when it needs a buffer and the
 *   group is empty, with 0 at end of stream, or with -errno.
 * - RECVMSG_MULTI works like RECV_MULTI, one recvmmsg into the group's next
 *   buffers, one CQE per datagram, each buffer laid out as io_uring lays it
 *   out (io_uring_recvmsg_out, name, control, payload; MSG_TRUNC gives the
 *   real length). SENDMSG is one
 *   sendmsg of the aux entry (native/udp.c builds it as ring.c does): a
 *   datagram or GSO batch leaves whole or waits for writability; SENDMSGs
 *   submitted together to one socket leave in one sendmmsg. SENDMSG_ZC is
 *   one sendmsg with MSG_ZEROCOPY, its notification as SEND_ZC's.
 * - ACCEPT with multishot posts one CQE per connection with F_MORE.
 * - CONNECT completes when the socket turns writable (SO_ERROR).
 * - CLOSE, SHUTDOWN, NOP, CANCEL and every error (a bad descriptor: -EINVAL)
 *   complete in the next completion batch, never inside submit(). CLOSE first
 *   ends operations still waiting on the descriptor with -ECANCELED (a closed
 *   number may be reused).
 * - IOSQE_IO_LINK chains start each op after the previous one's result; a
 *   failure (res < 0, or a short send) ends the rest with -ECANCELED. A chain
 *   ends with its batch, as in the kernel.
 * - Completions are delivered in batches, one per epoll wakeup (an eventfd
 *   wakes the loop for completions that need no readiness).
 *
 * Differences from io_uring worth knowing: a SEND_ZC ended before it started
 * (cancelled link, close) gets one CQE without F_MORE and no notification;
 * SPLICE and SENDV complete with -EOPNOTSUPP / -EINVAL (capabilities say so);
 * a sendZc socket must be closed through a CLOSE op (its zero-copy counter is
 * tracked per descriptor number).
 */
import { InvalidArgumentError, OutOfRangeError } from '../../core/errors';
import {
  BUF_RING_MAX_ENTRIES,
  CQE_F_BUFFER,
  CQE_F_MORE,
  CQE_F_NOTIF,
  CQE_INTS,
  DESC_INTS,
  IOSQE_IO_LINK,
  MAX_BUF_RINGS,
  MAX_POOLS,
  NOTIF_USAGE_ZC_COPIED,
  Op,
  RECVMSG_CTL_MAX,
  SENDMSG_NAME_MAX,
  UDP_SEGMENT_NONE,
  RingStat,
  SLOT_MASK,
  native,
  type FallbackHandle,
  type NativeBinding,
  type PoolHandle,
} from '../../core/native';
import { typed, type Engine, type EngineArrays, type EngineAttachment, type EngineHost } from '../engine';
import type { RingCapabilities } from '../io-ring';
import { Errno, Flag } from '../linux';
import { AUX_BYTES, AUX_SLOT, AUX_TOTAL } from '../slots';
import { BufferGroup } from './epoll/buffer-group';
import { FdState } from './epoll/fd-state';

const EVENT_CAPACITY = 1024; // epoll events per JS call
const NO_BUFS: Uint8Array[] = [];
const NOTE_CAPACITY = 64; // zero-copy ranges per error-queue read
const MULTISHOT_BATCH = 32; // reads/accepts per op and wakeup before others get a turn
const MMSG_MAX = 32; // datagrams per recvmmsg
const MMSG_ROUNDS = 4; // recvmmsg calls per op and wakeup before others get a turn
const DISPATCH_ROUNDS = 64;
const INITIAL_OPS = 1024;

const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLERR = 0x8;
const EPOLLHUP = 0x10;
const EPOLLRDHUP = 0x2000;
const READABLE = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP;
const WRITABLE = EPOLLOUT | EPOLLERR | EPOLLHUP;

const IORING_RECVSEND_POLL_FIRST = 1;
const IORING_RECVSEND_BUNDLE = 1 << 4;

// Per-op record, R int32 per op slot: the descriptor's fields and the op's progress.
const R = 22;
const enum F {
  Op = 0,
  Fd = 1,
  Len = 2,
  Pool = 3,
  Off = 4,
  MsgFlags = 5,
  Ioprio = 6,
  Group = 7,
  AuxOff = 8,
  AuxLen = 9,
  SqeFlags = 10,
  State = 11,
  /** bytes done (send, recv with MSG_WAITALL); 1 = connect issued */
  Done = 12,
  /** op id of the linked successor, -1 none */
  Next = 13,
  ZcLo = 14,
  /** zero-copy sends made (counter values ZcLo .. ZcLo + ZcCount - 1) */
  ZcCount = 15,
  /** of those, not yet reported by the error queue */
  ZcLeft = 16,
  ZcCopied = 17,
  /** send the rest without MSG_ZEROCOPY (optmem ran out) */
  ZcPlain = 18,
  /** the op id in this slot */
  Id = 19,
  /** descriptor OffLo: SENDMSG / RECVMSG_MULTI name bytes */
  NameLen = 20,
  /** descriptor OffHi: SENDMSG's UDP_SEGMENT size, RECVMSG_MULTI's control bytes */
  Extra = 21,
}

const enum S {
  Free = 0,
  Queued = 1, // submitted, starts in this submit
  Held = 2, // linked behind an op that has not completed
  Reading = 3, // in its socket's readers
  Writing = 4, // in its socket's writers
  Notif = 5, // SEND_ZC result posted, notification pending
  Posted = 6, // final completion posted
}

const enum Attempt {
  Done = 0,
  Wait = 1,
  Retry = 2,
}

const IOPRIO_ALLOWED: Record<number, number> = {
  [Op.Send]: IORING_RECVSEND_POLL_FIRST,
  [Op.SendZc]: IORING_RECVSEND_POLL_FIRST,
  [Op.Recv]: IORING_RECVSEND_POLL_FIRST,
  [Op.RecvMulti]: IORING_RECVSEND_POLL_FIRST | IORING_RECVSEND_BUNDLE,
  [Op.Accept]: Flag.IORING_ACCEPT_MULTISHOT,
  [Op.RecvmsgMulti]: IORING_RECVSEND_POLL_FIRST,
  [Op.Sendmsg]: IORING_RECVSEND_POLL_FIRST,
  [Op.SendmsgZc]: IORING_RECVSEND_POLL_FIRST,
};

export class EpollEngine implements Engine {
  /** No SENDV (a send() per buffer: sendmsg would save little against epoll's own calls), no SPLICE. */
  readonly capabilities: RingCapabilities = Object.freeze({ splice: false, sendvMax: 0, fixedBuffers: false, zeroCopySend: 'MSG_ZEROCOPY' as const, zeroCopySendmsg: true });
  readonly batch: number;
  readonly #host: EngineHost;
  readonly #submit: Int32Array;
  readonly #comp: Int32Array;
  readonly #stats: Float64Array;
  readonly #native: NativeBinding;
  readonly #handle: FallbackHandle;
  readonly #events = new Int32Array(EVENT_CAPACITY * 2);
  readonly #notes = new Int32Array(NOTE_CAPACITY * 3);
  /** a recvmmsg's buffers: (pool, offset, length, bytes) each, and their buffer ids */
  readonly #mmsg = new Int32Array(MMSG_MAX * 4);
  readonly #mmsgBids = new Int32Array(MMSG_MAX);
  /** a sendmmsg's entries: (pool, auxOff, auxLen, nameLen, gso, bytes) each, and their op slots */
  readonly #mmsgSend = new Int32Array(MMSG_MAX * 6);
  readonly #mmsgSlots = new Int32Array(MMSG_MAX);
  #closed = false;

  // per-op records, indexed by op slot
  #rec = new Int32Array(INITIAL_OPS * R);
  /** ops submitted whose final completion was not posted yet */
  #inflight = 0;
  /** op ids to start (link predecessor done) or, as ~id, to cancel (it failed) */
  #runnable: number[] = [];
  #runHead = 0;

  // completions posted, not yet delivered: (op id, res, flags)
  #cq = new Int32Array(1024 * 3);
  #cqLen = 0;
  #inCallback = false;
  #wakePending = false;

  readonly #fds = new Map<number, FdState>();
  #retry: FdState[] = [];
  #retrySpare: FdState[] = [];
  readonly #groups = new Map<number, BufferGroup>();
  // pools the Ring attached: descriptors are checked against their sizes here
  readonly #poolSize = new Float64Array(MAX_POOLS);
  /** a SEND_BUF's caller buffer, by op slot, from its submit to its final completion */
  #held: (Uint8Array | undefined)[] = [];
  /** the buffer list of the submit() in progress */
  #bufs: Uint8Array[] = NO_BUFS;

  readonly #onEvents = (count: number): void => {
    if (this.#closed) return;
    this.#inCallback = true;
    this.#wakePending = false;
    const stats = this.#stats;
    stats[RingStat.Enters]++; // the epoll_wait that brought us here
    stats[RingStat.Wakeups]++;
    const completedBefore = stats[RingStat.Completed];
    try {
      if (this.#retry.length) this.#runRetries();
      const ev = this.#events;
      for (let i = 0; i < count && !this.#closed; i++) {
        const st = this.#fds.get(ev[2 * i]);
        if (st !== undefined) this.#onReady(st, ev[2 * i + 1]);
      }
      this.#drainRunnable();
      // The Ring flushes after each batch: what that starts may post more.
      for (let round = 0; round < DISPATCH_ROUNDS && this.#cqLen > 0 && !this.#closed; round++) this.#deliver();
    } finally {
      this.#inCallback = false;
    }
    if (this.#closed) return;
    if (stats[RingStat.Completed] === completedBefore) stats[RingStat.EmptyWakeups]++;
    if (this.#cqLen > 0 || this.#retry.length > 0) this.#wake();
  };

  constructor(host: EngineHost, shared: EngineArrays) {
    this.#host = host;
    this.#submit = shared.submit;
    this.#comp = shared.completions;
    this.#stats = shared.stats;
    this.batch = shared.submit.length / DESC_INTS;
    this.#native = native();
    const n = this.#native;
    this.#handle = typed(() => n.fallbackCreate({ events: this.#events, aux: shared.aux, notes: this.#notes, onEvents: this.#onEvents }));
  }

  /**
   * Takes all `count` descriptors: PROVIDEs first (as native applies them
   * before the batch's SQEs), then each op starts in order. Never throws for
   * a bad descriptor: the op completes with -EINVAL in the next batch.
   */
  submit(count: number, bufs: Uint8Array[]): number {
    const s = this.#submit;
    this.#bufs = bufs;
    // Recording starts nothing, so PROVIDEs applied in the same pass still come first.
    let ops = 0;
    let linkOpen = -1; // op id of the last op with IOSQE_IO_LINK in this batch
    for (let i = 0; i < count; i++) {
      const d = i * DESC_INTS;
      if (s[d] === Op.Provide) {
        this.#provide(d);
        continue;
      }
      linkOpen = this.#record(d, linkOpen);
      ops++;
    }
    if (ops > 0) {
      const st = this.#stats;
      st[RingStat.SubmitCalls]++;
      st[RingStat.Submitted] += ops;
      this.#inflight += ops;
      st[RingStat.Inflight] = this.#inflight;
      const r = this.#rec;
      for (let i = 0; i < count && !this.#closed; i++) {
        const d = i * DESC_INTS;
        if (s[d] === Op.Provide) continue;
        const slot = s[d + 2] & SLOT_MASK;
        if (r[slot * R + F.State] !== S.Queued) continue;
        if (s[d] === Op.Sendmsg) i += this.#startSendmsgRun(i, count) - 1;
        else this.#start(slot);
      }
    }
    this.#drainRunnable();
    this.#bufs = NO_BUFS;
    return count;
  }

  /** Copies the descriptor at `d` into its slot's record; returns the batch's open link. */
  #record(d: number, linkOpen: number): number {
    const s = this.#submit;
    const opId = s[d + 2];
    const slot = opId & SLOT_MASK;
    if ((slot + 1) * R > this.#rec.length) this.#grow(slot + 1);
    const r = this.#rec;
    const b = slot * R;
    r[b + F.Op] = s[d];
    r[b + F.Fd] = s[d + 1];
    r[b + F.Len] = s[d + 3];
    r[b + F.Pool] = s[d + 4];
    r[b + F.Off] = s[d + 5];
    r[b + F.MsgFlags] = s[d + 6];
    r[b + F.Ioprio] = s[d + 7];
    r[b + F.Group] = s[d + 8];
    r[b + F.AuxOff] = s[d + 9];
    r[b + F.AuxLen] = s[d + 10];
    r[b + F.SqeFlags] = s[d + 13];
    r[b + F.NameLen] = s[d + 11];
    r[b + F.Extra] = s[d + 12];
    r[b + F.State] = S.Queued;
    r[b + F.Done] = 0;
    r[b + F.Next] = -1;
    r[b + F.Id] = opId;
    if (s[d] === Op.SendBuf) {
      // Held from here to the final completion; a bad entry fails the op in #valid.
      const buf = this.#bufs[s[d + 5]];
      if (buf instanceof Uint8Array) {
        while (this.#held.length <= slot) this.#held.push(undefined);
        if (this.#held[slot] === undefined) this.#stats[RingStat.Held]++;
        this.#held[slot] = buf;
      }
    }
    if (s[d] === Op.SendZc || s[d] === Op.SendmsgZc) {
      // Only zero-copy sends read these.
      r[b + F.ZcLo] = 0;
      r[b + F.ZcCount] = 0;
      r[b + F.ZcLeft] = 0;
      r[b + F.ZcCopied] = 0;
      r[b + F.ZcPlain] = 0;
    }
    // Behind an open link: start only when the previous op has its result.
    if (linkOpen !== -1) {
      r[(linkOpen & SLOT_MASK) * R + F.Next] = opId;
      r[b + F.State] = S.Held;
    }
    return s[d + 13] & IOSQE_IO_LINK ? opId : -1;
  }

  #grow(slots: number): void {
    let n = this.#rec.length / R;
    while (n < slots) n *= 2;
    const rec = new Int32Array(n * R);
    rec.set(this.#rec);
    this.#rec = rec;
  }

  /** Starts linked successors whose predecessor succeeded; cancels those of failed ones. */
  #drainRunnable(): void {
    const q = this.#runnable;
    while (this.#runHead < q.length && !this.#closed) {
      const v = q[this.#runHead++];
      const id = v < 0 ? ~v : v;
      const b = (id & SLOT_MASK) * R;
      if (this.#rec[b + F.Id] !== id || this.#rec[b + F.State] !== S.Held) continue;
      if (v < 0) this.#result(id & SLOT_MASK, -Errno.ECANCELED, 0);
      else this.#start(id & SLOT_MASK);
    }
    q.length = 0;
    this.#runHead = 0;
  }

  // ---- starting and attempting ops -------------------------------------------

  #start(slot: number): void {
    const r = this.#rec;
    const b = slot * R;
    const op = r[b + F.Op];
    const fd = r[b + F.Fd];
    if (!this.#valid(b, op)) {
      this.#result(slot, -Errno.EINVAL, 0);
      return;
    }
    switch (op) {
      case Op.Nop:
        this.#result(slot, 0, 0);
        return;
      case Op.Cancel:
        this.#result(slot, this.#cancelOp(r[b + F.Len]), 0);
        return;
      case Op.Close:
        this.#closeFdNow(slot, fd);
        return;
      case Op.Shutdown:
        this.#stats[RingStat.Enters]++;
        this.#result(slot, this.#native.fallbackShutdown(this.#handle, fd, r[b + F.Len]), 0);
        return;
      case Op.Splice:
        this.#result(slot, -Errno.EOPNOTSUPP, 0);
        return;
      case Op.Send:
      case Op.SendZc:
      case Op.SendBuf:
      case Op.Sendmsg:
      case Op.SendmsgZc:
      case Op.Connect:
        this.#startOnFd(slot, fd, false);
        return;
      default: // Recv, RecvMulti, RecvmsgMulti, Accept
        this.#startOnFd(slot, fd, true);
    }
  }

  /** What ring.c's desc_check refuses, refused here (the op completes with -EINVAL). */
  #valid(b: number, op: number): boolean {
    const r = this.#rec;
    if (op < Op.Nop || op > Op.SendBuf || op === Op.Provide || op === Op.Sendv) return false;
    if (r[b + F.SqeFlags] & ~IOSQE_IO_LINK) return false;
    if (r[b + F.Ioprio] & ~(IOPRIO_ALLOWED[op] ?? 0)) return false;
    if (op !== Op.Nop && op !== Op.Cancel && r[b + F.Fd] < 0) return false;
    switch (op) {
      case Op.Send:
      case Op.SendZc:
      case Op.Recv: {
        const pool = r[b + F.Pool];
        const off = r[b + F.Off];
        const len = r[b + F.Len];
        return (
          pool >= 0 && pool < MAX_POOLS && this.#poolSize[pool] > 0 && off >= 0 && len >= 0 && off + len <= this.#poolSize[pool]
        );
      }
      case Op.SendBuf: {
        const buf = this.#held[b / R];
        const len = r[b + F.Len];
        return buf !== undefined && len >= 0 && len <= buf.length;
      }
      case Op.RecvMulti:
        return r[b + F.Group] >= 0 && r[b + F.Group] <= 0xffff && r[b + F.AuxLen] >= 0;
      case Op.RecvmsgMulti: {
        const name = r[b + F.NameLen];
        const ctl = r[b + F.Extra];
        return r[b + F.Group] >= 0 && r[b + F.Group] <= 0xffff && name >= 0 && name <= AUX_SLOT && ctl >= 0 && ctl <= RECVMSG_CTL_MAX && ctl % 8 === 0;
      }
      case Op.Sendmsg:
      case Op.SendmsgZc: {
        // The entry itself (name, pieces) is checked by native at each send.
        const pool = r[b + F.Pool];
        const off = r[b + F.AuxOff];
        const len = r[b + F.AuxLen];
        return (
          pool >= 0 && pool < MAX_POOLS && this.#poolSize[pool] > 0 && off >= 0 && off % 4 === 0 && len >= 8 && len % 8 === 0 &&
          off + SENDMSG_NAME_MAX + len <= AUX_TOTAL && r[b + F.Extra] >= 0 && r[b + F.Extra] <= UDP_SEGMENT_NONE
        );
      }
      case Op.Accept:
        return (r[b + F.MsgFlags] & ~(Flag.SOCK_NONBLOCK | Flag.SOCK_CLOEXEC)) === 0;
      case Op.Connect: {
        const off = r[b + F.AuxOff];
        const len = r[b + F.AuxLen];
        return len >= 1 && len <= AUX_SLOT && off >= 0 && off + len <= AUX_BYTES;
      }
      case Op.Shutdown:
        return r[b + F.Len] >= 0 && r[b + F.Len] <= 2;
      default:
        return true;
    }
  }

  #fdState(fd: number): FdState {
    let st = this.#fds.get(fd);
    if (st === undefined) {
      st = new FdState(fd);
      this.#fds.set(fd, st);
    }
    return st;
  }

  /** Attempts at once when nothing waits ahead on the socket, else waits in line. */
  #startOnFd(slot: number, fd: number, reader: boolean): void {
    const st = this.#fdState(fd);
    const q = reader ? st.readers : st.writers;
    if (q.length === 0) {
      const a = this.#attempt(slot, st);
      if (a === Attempt.Done) {
        this.#settle(st);
        return;
      }
      q.push(slot);
      if (a === Attempt.Retry) this.#scheduleRetry(st);
    } else {
      q.push(slot);
    }
    this.#rec[slot * R + F.State] = reader ? S.Reading : S.Writing;
    this.#watch(st);
  }

  #attempt(slot: number, st: FdState): Attempt {
    switch (this.#rec[slot * R + F.Op]) {
      case Op.Send:
      case Op.SendZc:
      case Op.SendBuf:
        return this.#attemptSend(slot, st);
      case Op.Recv:
        return this.#attemptRecv(slot, st);
      case Op.RecvMulti:
        return this.#attemptRecvMulti(slot, st);
      case Op.RecvmsgMulti:
        return this.#attemptRecvmsgMulti(slot, st);
      case Op.Sendmsg:
        return this.#attemptSendmsg(slot);
      case Op.SendmsgZc:
        return this.#attemptSendmsgZc(slot, st);
      case Op.Accept:
        return this.#attemptAccept(slot, st);
      case Op.Connect:
        return this.#attemptConnect(slot, st);
      default:
        this.#result(slot, -Errno.EINVAL, 0);
        return Attempt.Done;
    }
  }

  #attemptSend(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    const zc = r[b + F.Op] === Op.SendZc;
    const n = this.#native;
    const h = this.#handle;
    const stats = this.#stats;
    if (zc && st.zc === 0) {
      stats[RingStat.Enters]++;
      st.zc = n.fallbackZcEnable(h, st.fd) === 0 ? 1 : -1;
    }
    const fd = st.fd;
    const pool = r[b + F.Pool];
    const off = r[b + F.Off];
    const len = r[b + F.Len];
    const flags = r[b + F.MsgFlags];
    const held = r[b + F.Op] === Op.SendBuf ? this.#held[slot] : undefined;
    for (;;) {
      const done = r[b + F.Done];
      const useZc = zc && st.zc === 1 && r[b + F.ZcPlain] === 0;
      stats[RingStat.Enters]++;
      const res = useZc
        ? n.fallbackSendZc(h, fd, pool, off + done, len - done, flags)
        : held !== undefined
          ? n.fallbackSendBuf(h, fd, held, done, len - done, flags)
          : n.fallbackSend(h, fd, pool, off + done, len - done, flags);
      if (res >= 0) {
        if (useZc && res > 0) {
          // Each send that queued bytes takes the socket's next counter value.
          if (r[b + F.ZcCount] === 0) {
            r[b + F.ZcLo] = st.zcNext;
            st.zcOps.push(slot);
          }
          r[b + F.ZcCount]++;
          r[b + F.ZcLeft]++;
          st.zcNext = (st.zcNext + 1) | 0;
        }
        r[b + F.Done] = done + res;
        if (done + res >= len) {
          this.#sendDone(slot, st, done + res);
          return Attempt.Done;
        }
        if (res === 0) return Attempt.Wait;
        continue;
      }
      if (res === -Errno.EAGAIN) return Attempt.Wait;
      if (useZc && res === -Errno.ENOBUFS) {
        // Out of option memory for pinned pages: send the rest by copying.
        r[b + F.ZcPlain] = 1;
        r[b + F.ZcCopied] = 1;
        continue;
      }
      this.#sendDone(slot, st, done > 0 ? done : res);
      return Attempt.Done;
    }
  }

  /** A send's result; for SEND_ZC and SENDMSG_ZC also its notification once the error queue reported every send. */
  #sendDone(slot: number, st: FdState, res: number): void {
    const r = this.#rec;
    const b = slot * R;
    if (r[b + F.Op] !== Op.SendZc && r[b + F.Op] !== Op.SendmsgZc) {
      this.#result(slot, res, 0);
      return;
    }
    this.#result(slot, res, CQE_F_MORE);
    if (r[b + F.ZcLeft] <= 0) this.#notify(slot, st);
    else r[b + F.State] = S.Notif;
  }

  #notify(slot: number, st: FdState | undefined): void {
    const r = this.#rec;
    const b = slot * R;
    if (st !== undefined) {
      const i = st.zcOps.indexOf(slot);
      if (i >= 0) st.zcOps.splice(i, 1);
    }
    // As io_uring with SEND_ZC_REPORT_USAGE: "copied" also when nothing went zero-copy.
    const copied = r[b + F.ZcCopied] !== 0 || r[b + F.ZcCount] === 0 || (st !== undefined && st.zc !== 1);
    this.#post(slot, copied ? NOTIF_USAGE_ZC_COPIED : 0, CQE_F_NOTIF);
  }

  #attemptRecv(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    const len = r[b + F.Len];
    const flags = r[b + F.MsgFlags];
    for (;;) {
      const done = r[b + F.Done];
      this.#stats[RingStat.Enters]++;
      const res = this.#native.fallbackRecv(this.#handle, st.fd, r[b + F.Pool], r[b + F.Off] + done, len - done, flags);
      if (res === -Errno.EAGAIN) return Attempt.Wait;
      if (res > 0 && flags & Flag.MSG_WAITALL && done + res < len) {
        r[b + F.Done] = done + res;
        continue;
      }
      this.#result(slot, res > 0 ? done + res : done > 0 ? done : res, 0);
      return Attempt.Done;
    }
  }

  #attemptRecvMulti(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    const g = this.#groups.get(r[b + F.Group]);
    const flags = r[b + F.MsgFlags];
    for (let i = 0; i < MULTISHOT_BATCH; i++) {
      if (g === undefined || !g.shift()) {
        if (i > 0) return Attempt.Retry; // the next batch may bring buffers back
        this.#result(slot, -Errno.ENOBUFS, 0);
        return Attempt.Done;
      }
      if (g.off + g.len > this.#poolSize[g.pool]) {
        // The buffer's pool was detached after the buffer was provided.
        this.#result(slot, -Errno.EFAULT, 0);
        return Attempt.Done;
      }
      this.#stats[RingStat.Enters]++;
      const res = this.#native.fallbackRecv(this.#handle, st.fd, g.pool, g.off, g.len, flags);
      if (res > 0) {
        const left = r[b + F.AuxLen];
        if (left > 0) {
          // A total limit, as the kernel's (IORING_RECV_MSHOT_LIM): the read that
          // reaches it ends the op, so the overshoot is at most one buffer.
          if (res >= left) {
            this.#result(slot, res, CQE_F_BUFFER | (g.bid << 16));
            return Attempt.Done;
          }
          r[b + F.AuxLen] = left - res;
        }
        this.#post(slot, res, CQE_F_BUFFER | (g.bid << 16) | CQE_F_MORE);
        continue;
      }
      g.unshift(); // EAGAIN, end of stream or an error: the buffer was not used
      if (res === -Errno.EAGAIN) return Attempt.Wait;
      this.#result(slot, res, 0);
      return Attempt.Done;
    }
    return Attempt.Retry;
  }

  /**
   * As RECV_MULTI, one datagram per buffer laid out as io_uring's RECVMSG
   * does; the group's next buffers go to one recvmmsg, so a wakeup that finds
   * many datagrams costs a few calls, not one per datagram.
   */
  #attemptRecvmsgMulti(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    const g = this.#groups.get(r[b + F.Group]);
    const list = this.#mmsg;
    for (let round = 0; round < MMSG_ROUNDS; round++) {
      const n = g === undefined ? 0 : g.peek(list, MMSG_MAX);
      if (n === 0) {
        if (round > 0) return Attempt.Retry; // the next batch may bring buffers back
        this.#result(slot, -Errno.ENOBUFS, 0);
        return Attempt.Done;
      }
      for (let i = 0; i < n; i++) {
        if (list[4 * i + 1] + list[4 * i + 2] > this.#poolSize[list[4 * i]]) {
          // A buffer's pool was detached after the buffer was provided.
          this.#result(slot, -Errno.EFAULT, 0);
          return Attempt.Done;
        }
        this.#mmsgBids[i] = list[4 * i + 3]; // native writes the byte counts over the bids
      }
      const bids = this.#mmsgBids;
      this.#stats[RingStat.Enters]++;
      const res = this.#native.fallbackRecvmsg(this.#handle, st.fd, list, n, r[b + F.NameLen], r[b + F.Extra], r[b + F.MsgFlags]);
      if (res < 0) {
        if (res === -Errno.EAGAIN) return Attempt.Wait;
        this.#result(slot, res, 0);
        return Attempt.Done;
      }
      g!.drop(res);
      for (let i = 0; i < res; i++) this.#post(slot, list[4 * i + 3], CQE_F_BUFFER | (bids[i] << 16) | CQE_F_MORE);
      if (res < n) return Attempt.Wait; // the socket is drained
    }
    return Attempt.Retry;
  }

  /**
   * Starts the SENDMSG at descriptor `i` and those right after it to the same
   * socket (same flags, unlinked, valid): one sendmmsg for all of them when
   * nothing waits ahead on the socket. Returns how many descriptors it took.
   */
  #startSendmsgRun(i: number, count: number): number {
    const s = this.#submit;
    const r = this.#rec;
    const fd = s[i * DESC_INTS + 1];
    const flags = s[i * DESC_INTS + 6];
    const slots = this.#mmsgSlots;
    let n = 0;
    for (let j = i; j < count && n < MMSG_MAX; j++) {
      const d = j * DESC_INTS;
      const slot = s[d + 2] & SLOT_MASK;
      const b = slot * R;
      if (s[d] !== Op.Sendmsg || s[d + 1] !== fd || s[d + 6] !== flags || r[b + F.State] !== S.Queued) break;
      if (r[b + F.SqeFlags] & IOSQE_IO_LINK || !this.#valid(b, Op.Sendmsg)) break;
      slots[n++] = slot;
    }
    if (n <= 1 || this.#fdState(fd).writers.length > 0) {
      this.#start(slots[0]);
      return 1;
    }
    const list = this.#mmsgSend;
    for (let k = 0; k < n; k++) {
      const b = slots[k] * R;
      list[6 * k] = r[b + F.Pool];
      list[6 * k + 1] = r[b + F.AuxOff];
      list[6 * k + 2] = r[b + F.AuxLen];
      list[6 * k + 3] = r[b + F.NameLen];
      list[6 * k + 4] = r[b + F.Extra];
    }
    this.#stats[RingStat.Enters]++;
    let res: number;
    try {
      res = this.#native.fallbackSendmmsg(this.#handle, fd, list, n, flags);
    } catch {
      res = 0; // an entry native refuses: each goes alone, the bad one fails with -EINVAL
    }
    // The ones that left complete now; the first failure (or a full socket) and
    // those after it go the single way, which reports each one's own result.
    const sent = Math.max(res, 0);
    for (let k = 0; k < sent; k++) this.#result(slots[k], list[6 * k + 5], 0);
    for (let k = sent; k < n && !this.#closed; k++) {
      if (r[slots[k] * R + F.State] === S.Queued) this.#start(slots[k]);
    }
    return n;
  }

  /** A datagram (or GSO batch) leaves whole or not at all. */
  #attemptSendmsg(slot: number): Attempt {
    const r = this.#rec;
    const b = slot * R;
    this.#stats[RingStat.Enters]++;
    let res: number;
    try {
      res = this.#native.fallbackSendmsg(this.#handle, r[b + F.Fd], r[b + F.Pool], r[b + F.AuxOff], r[b + F.AuxLen], r[b + F.NameLen], r[b + F.Extra], r[b + F.MsgFlags]);
    } catch {
      res = -Errno.EINVAL; // a bad entry, as ring.c refuses it
    }
    if (res === -Errno.EAGAIN) return Attempt.Wait;
    this.#result(slot, res, 0);
    return Attempt.Done;
  }

  /**
   * As #attemptSendmsg with MSG_ZEROCOPY (SO_ZEROCOPY set once per socket):
   * a send that left takes the socket's next counter value, and the
   * notification follows the result once the error queue reported it.
   */
  #attemptSendmsgZc(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    const n = this.#native;
    const stats = this.#stats;
    if (st.zc === 0) {
      stats[RingStat.Enters]++;
      st.zc = n.fallbackZcEnable(this.#handle, st.fd) === 0 ? 1 : -1;
    }
    for (;;) {
      const useZc = st.zc === 1 && r[b + F.ZcPlain] === 0;
      stats[RingStat.Enters]++;
      let res: number;
      try {
        const send = useZc ? n.fallbackSendmsgZc : n.fallbackSendmsg;
        res = send(this.#handle, st.fd, r[b + F.Pool], r[b + F.AuxOff], r[b + F.AuxLen], r[b + F.NameLen], r[b + F.Extra], r[b + F.MsgFlags]);
      } catch {
        res = -Errno.EINVAL; // a bad entry, as ring.c refuses it
      }
      if (res === -Errno.EAGAIN) return Attempt.Wait;
      if (useZc && res === -Errno.ENOBUFS) {
        // Out of option memory for pinned pages: send it by copying.
        r[b + F.ZcPlain] = 1;
        r[b + F.ZcCopied] = 1;
        continue;
      }
      if (useZc && res > 0) {
        r[b + F.ZcLo] = st.zcNext;
        r[b + F.ZcCount] = 1;
        r[b + F.ZcLeft] = 1;
        st.zcOps.push(slot);
        st.zcNext = (st.zcNext + 1) | 0;
      }
      this.#sendDone(slot, st, res);
      return Attempt.Done;
    }
  }

  #attemptAccept(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    const multishot = (r[b + F.Ioprio] & Flag.IORING_ACCEPT_MULTISHOT) !== 0;
    const flags = r[b + F.MsgFlags];
    for (let i = 0; i < MULTISHOT_BATCH; i++) {
      this.#stats[RingStat.Enters]++;
      const res = this.#native.fallbackAccept(this.#handle, st.fd, flags);
      if (res === -Errno.EAGAIN) return Attempt.Wait;
      if (res >= 0 && multishot) {
        this.#post(slot, res, CQE_F_MORE);
        continue;
      }
      this.#result(slot, res, 0);
      return Attempt.Done;
    }
    return Attempt.Retry;
  }

  #attemptConnect(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    this.#stats[RingStat.Enters]++;
    let res: number;
    if (r[b + F.Done] === 0) {
      r[b + F.Done] = 1;
      res = this.#native.fallbackConnect(this.#handle, st.fd, r[b + F.AuxOff], r[b + F.AuxLen]);
    } else {
      res = this.#native.fallbackConnectResult(this.#handle, st.fd);
    }
    if (res === -Errno.EINPROGRESS) return Attempt.Wait;
    this.#result(slot, res, 0);
    return Attempt.Done;
  }

  // ---- readiness ---------------------------------------------------------------

  #onReady(st: FdState, events: number): void {
    if (events & EPOLLERR && st.zcOps.length) this.#readNotes(st);
    if (events & READABLE && st.readers.length) this.#runQueue(st, st.readers);
    if (events & WRITABLE && st.writers.length) this.#runQueue(st, st.writers);
    this.#settle(st);
  }

  /** Attempts the head of a socket's line until one has to wait. */
  #runQueue(st: FdState, q: number[]): void {
    while (q.length > 0 && !this.#closed) {
      const a = this.#attempt(q[0], st);
      if (a === Attempt.Wait) return;
      if (a === Attempt.Retry) {
        this.#scheduleRetry(st);
        return;
      }
      q.shift();
    }
  }

  #scheduleRetry(st: FdState): void {
    if (st.retry) return;
    st.retry = true;
    this.#retry.push(st);
  }

  #runRetries(): void {
    const list = this.#retry;
    this.#retry = this.#retrySpare;
    for (let i = 0; i < list.length; i++) {
      const st = list[i];
      st.retry = false;
      if (this.#fds.get(st.fd) !== st) continue; // closed meanwhile
      this.#runQueue(st, st.readers);
      this.#settle(st);
    }
    list.length = 0;
    this.#retrySpare = list;
  }

  /** Drains the error queue: zero-copy ranges the kernel is done with. */
  #readNotes(st: FdState): void {
    const r = this.#rec;
    const notes = this.#notes;
    for (;;) {
      this.#stats[RingStat.Enters]++;
      const n = this.#native.fallbackZcNotes(this.#handle, st.fd);
      if (n <= 0) return;
      for (let i = 0; i < n; i++) {
        const lo = notes[3 * i];
        const hi = notes[3 * i + 1];
        const copied = notes[3 * i + 2];
        for (let j = 0; j < st.zcOps.length; j++) {
          const b = st.zcOps[j] * R;
          // The counter is a u32 that wraps: compare relative to the op's first value.
          const from = Math.max((lo - r[b + F.ZcLo]) | 0, 0);
          const to = Math.min((hi - r[b + F.ZcLo]) | 0, r[b + F.ZcCount] - 1);
          if (to < from) continue;
          r[b + F.ZcLeft] -= to - from + 1;
          if (copied) r[b + F.ZcCopied] = 1;
        }
      }
      for (let j = st.zcOps.length - 1; j >= 0; j--) {
        const slot = st.zcOps[j];
        const b = slot * R;
        if (r[b + F.ZcLeft] <= 0 && r[b + F.State] === S.Notif) this.#notify(slot, st);
      }
      if (n < NOTE_CAPACITY) return;
    }
  }

  /** In the epoll set while something waits on the socket; out of it (and forgotten) when idle. */
  #watch(st: FdState): void {
    if (st.watched) return;
    this.#stats[RingStat.Enters]++;
    const res = this.#native.fallbackWatch(this.#handle, st.fd, true);
    if (res === 0) {
      st.watched = true;
      return;
    }
    // Not pollable (EPERM: a regular file; EBADF: closed): everything waiting fails.
    this.#abandon(st, res);
  }

  /**
   * Out of the epoll set when nothing waits. The state itself stays until
   * closeFd (no allocation per op; a MSG_ZEROCOPY counter must survive).
   */
  #settle(st: FdState): void {
    if (!st.idle) {
      if (!st.watched && !this.#closed) this.#watch(st);
      return;
    }
    if (st.watched && !this.#closed) {
      this.#stats[RingStat.Enters]++;
      this.#native.fallbackWatch(this.#handle, st.fd, false);
    }
    st.watched = false;
  }

  /** Ends everything on the socket: waiting ops with `res`, pending notifications as copied. */
  #abandon(st: FdState, res: number): void {
    this.#endAll(st, res);
    // The error queue is out of reach: report what is left as copied.
    const r = this.#rec;
    for (const z of st.zcOps.splice(0, st.zcOps.length)) {
      const b = z * R;
      r[b + F.ZcCopied] = 1;
      r[b + F.ZcLeft] = 0;
      if (r[b + F.State] === S.Notif) this.#notify(z, undefined);
    }
  }

  /** Ends every op waiting on the socket with `res` (close: -ECANCELED). */
  #endAll(st: FdState, res: number): void {
    const r = this.#rec;
    for (const q of [st.readers, st.writers]) {
      const slots = q.splice(0, q.length);
      for (const slot of slots) {
        const b = slot * R;
        const op = r[b + F.Op];
        if (op === Op.Send || op === Op.SendZc) this.#sendDone(slot, st, r[b + F.Done] > 0 ? r[b + F.Done] : res);
        else this.#result(slot, res, 0);
      }
    }
  }

  #closeFdNow(slot: number, fd: number): void {
    const st = this.#fds.get(fd);
    if (st !== undefined) {
      this.#fds.delete(fd);
      this.#abandon(st, -Errno.ECANCELED);
      st.watched = false;
    }
    this.#stats[RingStat.Enters]++;
    this.#result(slot, this.#native.fallbackCloseFd(this.#handle, fd), 0);
  }

  /** The CANCEL op: 0 when the target was ended, -ENOENT when it had completed. */
  #cancelOp(opId: number): number {
    const slot = opId & SLOT_MASK;
    const r = this.#rec;
    const b = slot * R;
    if (opId < 0 || b >= r.length || r[b + F.Id] !== opId) return -Errno.ENOENT;
    switch (r[b + F.State]) {
      case S.Queued:
      case S.Held:
        this.#result(slot, -Errno.ECANCELED, 0);
        return 0;
      case S.Reading:
      case S.Writing: {
        const st = this.#fds.get(r[b + F.Fd]);
        if (st === undefined) return -Errno.ENOENT;
        const q = r[b + F.State] === S.Reading ? st.readers : st.writers;
        const i = q.indexOf(slot);
        if (i < 0) return -Errno.ENOENT;
        q.splice(i, 1);
        const op = r[b + F.Op];
        if (op === Op.Send || op === Op.SendZc) this.#sendDone(slot, st, r[b + F.Done] > 0 ? r[b + F.Done] : -Errno.ECANCELED);
        else this.#result(slot, -Errno.ECANCELED, 0);
        // Edge-triggered: the new head may have missed its edge while it waited behind.
        if (i === 0 && q.length > 0) this.#runQueue(st, q);
        this.#settle(st);
        return 0;
      }
      default:
        return -Errno.ENOENT;
    }
  }

  // ---- completions -------------------------------------------------------------

  /** The op's result CQE; settles its link (start the next op, or cancel the rest). */
  #result(slot: number, res: number, flags: number): void {
    this.#post(slot, res, flags);
    const r = this.#rec;
    const b = slot * R;
    const next = r[b + F.Next];
    if (next === -1) return;
    r[b + F.Next] = -1;
    const op = r[b + F.Op];
    const failed =
      res < 0 ||
      ((op === Op.Send || op === Op.SendZc || op === Op.SendBuf) && res !== r[b + F.Len]) ||
      (op === Op.Recv && (r[b + F.MsgFlags] & Flag.MSG_WAITALL) !== 0 && res !== r[b + F.Len]);
    this.#runnable.push(failed ? ~next : next);
  }

  #post(slot: number, res: number, flags: number): void {
    let cq = this.#cq;
    const i = this.#cqLen * 3;
    if (i === cq.length) {
      const bigger = new Int32Array(cq.length * 2);
      bigger.set(cq);
      this.#cq = cq = bigger;
    }
    const b = slot * R;
    cq[i] = this.#rec[b + F.Id];
    cq[i + 1] = res;
    cq[i + 2] = flags;
    this.#cqLen++;
    if ((flags & CQE_F_MORE) === 0) {
      this.#rec[b + F.State] = S.Posted;
      this.#stats[RingStat.Inflight] = --this.#inflight;
      if (this.#rec[b + F.Op] === Op.SendBuf) this.#unhold(slot);
    }
    if (!this.#inCallback) this.#wake();
  }

  /** A SEND_BUF is done: its buffer is the caller's again. */
  #unhold(slot: number): void {
    if (this.#held[slot] === undefined) return;
    this.#held[slot] = undefined;
    this.#stats[RingStat.Held]--;
  }

  /** Delivery happens on a coming loop turn, from the epoll wakeup: never inside submit(). */
  #wake(): void {
    if (this.#wakePending || this.#closed) return;
    this.#wakePending = true;
    this.#stats[RingStat.Enters]++;
    this.#native.fallbackWake(this.#handle);
  }

  /** Hands the completions posted so far to the Ring, in order; those posted meanwhile wait for the next round. */
  #deliver(): void {
    const n = this.#cqLen;
    const out = this.#comp;
    const room = out.length / CQE_INTS;
    const s = this.#stats;
    for (let from = 0; from < n && !this.#closed; from += room) {
      const k = Math.min(room, n - from);
      const cq = this.#cq; // may have grown while targets ran
      for (let j = 0; j < k; j++) {
        out[j * CQE_INTS] = cq[(from + j) * 3];
        out[j * CQE_INTS + 1] = cq[(from + j) * 3 + 1];
        out[j * CQE_INTS + 2] = cq[(from + j) * 3 + 2];
      }
      s[RingStat.ReapBatches]++;
      s[RingStat.Completed] += k;
      this.#host.onCompletions(k);
    }
    if (this.#closed) return; // close() completed everything else
    this.#cq.copyWithin(0, n * 3, this.#cqLen * 3);
    this.#cqLen -= n;
  }

  /** The Ring says whether referenced ops are live (only when that changes). */
  setRef(on: boolean): void {
    if (!this.#closed) this.#native.fallbackRef(this.#handle, on);
  }

  // ---- provided-buffer groups --------------------------------------------------

  /** A PROVIDE descriptor: the buffer joins its group, or goes back to the owner (-EINVAL, -ENOBUFS: full). */
  #provide(d: number): void {
    const s = this.#submit;
    const bid = s[d + 2];
    const len = s[d + 3];
    const pool = s[d + 4];
    const off = s[d + 5];
    const group = s[d + 8];
    const g = this.#groups.get(group);
    if (g === undefined) return; // as on io_uring: nobody to tell
    const ok = pool >= 0 && pool < MAX_POOLS && this.#poolSize[pool] > 0 && len >= 1 && off >= 0 && off + len <= this.#poolSize[pool] && bid >= 0 && bid <= 0xffff;
    const res = !ok ? -Errno.EINVAL : g.push(pool, off, len, bid) ? 0 : -Errno.ENOBUFS;
    if (res !== 0) this.#host.provideFailed(group, bid, res);
  }

  /** Group `group` (0..65535) with room for `entries` buffers (a power of two <= 32768). */
  registerBufRing(group: number, entries: number): void {
    if (!Number.isInteger(group) || !Number.isInteger(entries)) throw new InvalidArgumentError('group and entries must be integers');
    if (group < 0 || group > 0xffff) throw new OutOfRangeError(`group must be in [0, 65535], got ${group}`);
    if (entries < 1 || entries > BUF_RING_MAX_ENTRIES || (entries & (entries - 1)) !== 0) {
      throw new OutOfRangeError(`entries must be a power of two in [1, ${BUF_RING_MAX_ENTRIES}], got ${entries}`);
    }
    if (this.#groups.has(group)) throw new OutOfRangeError(`buffer group ${group} is registered already`);
    if (this.#groups.size >= MAX_BUF_RINGS) throw new OutOfRangeError(`a ring holds at most ${MAX_BUF_RINGS} buffer groups`);
    this.#groups.set(group, new BufferGroup(entries));
  }

  /** Forgets the group: buffers still in it are the owner's again. */
  unregisterBufRing(group: number): void {
    this.#groups.delete(group);
  }

  // ---- pools -----------------------------------------------------------------

  /** Nothing is registered with the kernel: the pool's size bounds the descriptors that name it. */
  attachPool(handle: PoolHandle, index: number): EngineAttachment {
    this.#poolSize[index] = typed(() => this.#native.fallbackAttachPool(this.#handle, handle, index));
    return { registered: false, pending: false, error: 'the epoll fallback registers no fixed buffers' };
  }

  detachPool(index: number): void {
    this.#poolSize[index] = 0;
    typed(() => this.#native.fallbackDetachPool(this.#handle, index));
  }

  /** Closes the epoll set (sockets stay open) and forgets every op: the Ring cancels them. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#native.fallbackClose(this.#handle);
    } finally {
      this.#cqLen = 0;
      this.#runnable.length = 0;
      this.#runHead = 0;
      this.#fds.clear();
      this.#retry.length = 0;
      this.#groups.clear();
      this.#inflight = 0;
      this.#held.length = 0;
      this.#stats[RingStat.Held] = 0;
    }
  }
}
