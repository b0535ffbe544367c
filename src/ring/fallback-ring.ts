/**
 * FallbackRing: the ring's interface (IoRing) over epoll and nonblocking
 * system calls, for machines where io_uring is blocked. The socket layer
 * queues the same operations and receives the same completions, with
 * io_uring's CQE flag semantics, as on the real Ring.
 *
 * How each operation is emulated:
 * - Operations queued in a turn start in one flush (a microtask), in queue
 *   order. A socket operation is attempted at once; on EAGAIN it waits in its
 *   socket's FIFO (readers or writers) until an epoll edge, then is attempted
 *   again. Sockets are in the epoll set (edge-triggered) only while something
 *   waits on them.
 * - SEND / SEND_ZC complete when every byte is out (MSG_WAITALL semantics),
 *   or with the bytes sent before an error. SEND_ZC uses MSG_ZEROCOPY: its
 *   result CQE carries F_MORE, then a F_NOTIF CQE follows once the error
 *   queue has reported every one of its sends, with NOTIF_USAGE_ZC_COPIED
 *   when the kernel copied (always, on loopback).
 * - RECV_MULTI takes buffers in order from an emulated provided-buffer group
 *   (provide / registerBufRing): one CQE per read with F_BUFFER | bid << 16 |
 *   F_MORE; it ends with -ENOBUFS when it needs a buffer and the group is
 *   empty, with 0 at end of stream, or with -errno.
 * - ACCEPT with multishot posts one CQE per connection with F_MORE.
 * - CONNECT completes when the socket turns writable (SO_ERROR).
 * - CLOSE, SHUTDOWN, NOP, CANCEL and every error complete in the next
 *   completion batch, never inside queue(). CLOSE first ends operations still
 *   waiting on the descriptor with -ECANCELED (a closed number may be reused).
 * - IOSQE_IO_LINK chains start each op after the previous one's result; a
 *   failure (res < 0, or a short send) ends the rest with -ECANCELED.
 * - Completions are delivered in batches, one per epoll wakeup (an eventfd
 *   wakes the loop for completions that need no readiness).
 *
 * Differences from io_uring worth knowing: a SEND_ZC ended before it started
 * (cancelled link, close) gets one CQE without F_MORE and no notification;
 * SPLICE completes with -EOPNOTSUPP; a sendZc socket must be closed through
 * closeFd (its zero-copy counter is tracked per descriptor number).
 */
import { ClosedError, InvalidArgumentError, OutOfRangeError, fromNative } from '../core/errors';
import {
  CQE_F_BUFFER,
  CQE_F_MORE,
  CQE_F_NOTIF,
  MAX_POOLS,
  NOTIF_USAGE_ZC_COPIED,
  Op,
  RING_STATS,
  RingStat,
  native,
  type FallbackHandle,
  type NativeBinding,
  type PoolHandle,
} from '../core/native';
import { BufferGroup } from './fallback/buffer-group';
import { FdState } from './fallback/fd-state';
import type { CompletionTarget, IoRing, PoolAttachment, PreFlush, ProvideOwner, RingCapabilities, RingStats } from './io-ring';
import { AUX_BYTES, AUX_SLOT, AuxSlots, PoolSlots, PreFlushQueue, checkOpArgs } from './slots';

const SUBMIT_CAPACITY = 1024; // ops per flush, as the Ring's submit array
const EVENT_CAPACITY = 1024; // epoll events per JS call
const NOTE_CAPACITY = 64; // zero-copy ranges per error-queue read
const MULTISHOT_BATCH = 32; // reads/accepts per op and wakeup before others get a turn
const DISPATCH_ROUNDS = 64;
const MAX_BUF_RINGS = 64;
const BUF_RING_MAX_ENTRIES = 32768;

const SLOT_BITS = 20;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const GEN_MASK = 0x7ff;
const INITIAL_OPS = 1024;
const MAX_OPS = 1 << SLOT_BITS;

const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLERR = 0x8;
const EPOLLHUP = 0x10;
const EPOLLRDHUP = 0x2000;
const READABLE = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP;
const WRITABLE = EPOLLOUT | EPOLLERR | EPOLLHUP;

const ENOENT = 2;
const EAGAIN = 11;
const EFAULT = 14;
const EINVAL = 22;
const EOPNOTSUPP = 95;
const ENOBUFS = 105;
const EINPROGRESS = 115;
const ECANCELED = 125;

const MSG_WAITALL = 0x100;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const IOSQE_IO_LINK = 1 << 2;
const IORING_ACCEPT_MULTISHOT = 1;
const IORING_RECVSEND_POLL_FIRST = 1;
const IORING_RECVSEND_BUNDLE = 1 << 4;

// Op record: R int32 per slot.
const R = 20;
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
  /** counted as submitted/in flight */
  Counted = 19,
}

const enum S {
  Free = 0,
  Queued = 1, // queued this turn, starts at the flush
  Held = 2, // linked behind an op that has not completed
  Reading = 3, // in its socket's readers
  Writing = 4, // in its socket's writers
  Notif = 5, // SEND_ZC result posted, notification pending
  Posted = 6, // final completion posted, not yet dispatched
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
  [Op.Accept]: IORING_ACCEPT_MULTISHOT,
};

function rethrow(err: unknown): never {
  throw err;
}

/** Swallows the completions of the CANCEL ops cancel() queues. */
const ignore: CompletionTarget = { onCompletion() {} };

let current: FallbackRing | null = null;
const constructing = Symbol('maio.fallback-ring.construct');

export class FallbackRing implements IoRing {
  readonly #native: NativeBinding;
  readonly #handle: FallbackHandle;
  readonly #events = new Int32Array(EVENT_CAPACITY * 2);
  readonly #notes = new Int32Array(NOTE_CAPACITY * 3);
  readonly #aux = new AuxSlots();
  readonly #stats = new Float64Array(RING_STATS);
  #closed = false;

  // op table, indexed by slot
  #targets: (CompletionTarget | undefined)[] = [];
  #ids = new Int32Array(INITIAL_OPS).fill(-1);
  #rec = new Int32Array(INITIAL_OPS * R);
  #opPool = new Int8Array(INITIAL_OPS).fill(-1);
  #free = new Int32Array(INITIAL_OPS);
  #freeTop = 0;
  #capacity = 0;
  #live = 0;
  #inflight = 0;

  // this turn's ops, started by the flush
  readonly #submit = new Int32Array(SUBMIT_CAPACITY);
  #queued = 0;
  #flushScheduled = false;
  /** op id of the last op queued with IOSQE_IO_LINK this turn, -1 none */
  #linkOpen = -1;
  /** op ids to start (link predecessor done) or, as ~id, to cancel (it failed) */
  #runnable: number[] = [];
  #runHead = 0;
  // provide(): (pool, off, len, group, bid), applied at the start of the flush
  #provides = new Int32Array(5 * 64);
  #provideCount = 0;
  // objects that queue their ops at the start of the next flush (Ring.schedule)
  readonly #preFlush = new PreFlushQueue();

  // completions posted, not yet dispatched: (op id, res, flags)
  #cq = new Int32Array(1024 * 3);
  #cqLen = 0;
  #inCallback = false;
  #wakePending = false;
  #refed = false;

  readonly #fds = new Map<number, FdState>();
  #retry: FdState[] = [];
  #retrySpare: FdState[] = [];
  readonly #groups = new Map<number, BufferGroup>();

  // pool slots (with sizes: this ring checks bounds itself); a slot given up is detached natively
  readonly #pools = new PoolSlots((index) => {
    if (this.#closed) return;
    try {
      this.#native.fallbackDetachPool(this.#handle, index);
    } catch (err) {
      throw fromNative(err);
    }
  });

  readonly #flushTask = (): void => {
    if (this.#flushScheduled && !this.#closed) this.#flush();
  };

  readonly #onEvents = (count: number): void => {
    if (this.#closed) return;
    this.#inCallback = true;
    this.#wakePending = false;
    this.#stats[RingStat.Enters]++; // the epoll_wait that brought us here
    try {
      if (this.#retry.length) this.#runRetries();
      const ev = this.#events;
      for (let i = 0; i < count && !this.#closed; i++) {
        const st = this.#fds.get(ev[2 * i]);
        if (st !== undefined) this.#onReady(st, ev[2 * i + 1]);
      }
      this.#drainRunnable();
      for (let round = 0; round < DISPATCH_ROUNDS && this.#cqLen > 0 && !this.#closed; round++) {
        this.#dispatch();
        if (!this.#closed) this.#flush();
      }
    } finally {
      this.#inCallback = false;
    }
    if (this.#closed) return;
    if (this.#cqLen > 0 || this.#retry.length > 0) this.#wake();
    this.#syncRef();
  };

  /** This thread's fallback ring, created on first use (whatever backend() says). */
  static current(): FallbackRing {
    if (current !== null && !current.#closed) return current;
    current = new FallbackRing(constructing);
    return current;
  }

  /** @internal use FallbackRing.current(): one per thread. */
  constructor(token: symbol) {
    if (token !== constructing) {
      throw new InvalidArgumentError('use FallbackRing.current(): there is one ring per thread');
    }
    this.#native = native();
    try {
      this.#handle = this.#native.fallbackCreate({
        events: this.#events,
        aux: this.#aux.bytes,
        notes: this.#notes,
        onEvents: this.#onEvents,
      });
    } catch (err) {
      throw fromNative(err);
    }
    this.#grow(INITIAL_OPS);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Operations queued or in flight. */
  get pending(): number {
    return this.#live;
  }

  /** Ops this turn's batch still takes before queue() flushes (a link chain ends with its batch). */
  get room(): number {
    return SUBMIT_CAPACITY - this.#queued;
  }

  // ---- queueing ------------------------------------------------------------

  /** As Ring.queue: returns the op id; arguments after `fd` follow native/maio.h's descriptor. */
  queue(
    target: CompletionTarget,
    op: Op,
    fd: number,
    len = 0,
    pool = -1,
    bufOff = 0,
    msgFlags = 0,
    ioprio = 0,
    bufGroup = 0,
    auxOff = -1,
    auxLen = 0,
    sqeFlags = 0,
  ): number {
    if (this.#closed) throw new ClosedError('the ring is closed');
    checkOpArgs(target, fd, len, pool, bufOff, msgFlags, ioprio, bufGroup, auxOff, auxLen, sqeFlags);
    if (this.#queued === SUBMIT_CAPACITY) this.#flush();
    if (this.#freeTop === 0) this.#grow(this.#capacity * 2);
    const slot = this.#free[--this.#freeTop];
    const gen = ((this.#ids[slot] >>> SLOT_BITS) + 1) & GEN_MASK;
    const opId = (gen << SLOT_BITS) | slot;
    this.#ids[slot] = opId;
    this.#targets[slot] = target;
    this.#live++;
    const usesPool = (op === Op.Send || op === Op.SendZc || op === Op.Recv) && pool >= 0 && pool < MAX_POOLS;
    this.#opPool[slot] = usesPool ? pool : -1;
    if (usesPool) this.#pools.opStarted(pool);

    const r = this.#rec;
    const b = slot * R;
    r[b + F.Op] = op | 0;
    r[b + F.Fd] = fd | 0;
    r[b + F.Len] = len | 0;
    r[b + F.Pool] = pool | 0;
    r[b + F.Off] = bufOff | 0;
    r[b + F.MsgFlags] = msgFlags | 0;
    r[b + F.Ioprio] = ioprio | 0;
    r[b + F.Group] = bufGroup | 0;
    r[b + F.AuxOff] = auxOff | 0;
    r[b + F.AuxLen] = auxLen | 0;
    r[b + F.SqeFlags] = sqeFlags | 0;
    r[b + F.State] = S.Queued;
    r[b + F.Done] = 0;
    r[b + F.Next] = -1;
    r[b + F.ZcLo] = 0;
    r[b + F.ZcCount] = 0;
    r[b + F.ZcLeft] = 0;
    r[b + F.ZcCopied] = 0;
    r[b + F.ZcPlain] = 0;
    r[b + F.Counted] = 0;
    // Behind an open link: start only when the previous op has its result.
    const prev = this.#linkOpen;
    if (prev !== -1) {
      r[(prev & SLOT_MASK) * R + F.Next] = opId;
      r[b + F.State] = S.Held;
    }
    this.#linkOpen = sqeFlags & IOSQE_IO_LINK ? opId : -1;
    this.#submit[this.#queued++] = slot;
    this.#scheduleFlush();
    return opId;
  }

  nop(target: CompletionTarget): number {
    return this.queue(target, Op.Nop, -1);
  }

  send(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags = 0): number {
    return this.queue(target, Op.Send, fd, len, pool, off, msgFlags);
  }

  /** No SENDV here: a send() per buffer (sendmsg per op would save little against epoll's own calls). */
  readonly sendvMax = 0;

  readonly capabilities: RingCapabilities = Object.freeze({ splice: false, sendvMax: 0, fixedBuffers: false, zeroCopySend: 'MSG_ZEROCOPY' as const });

  /** Always -1: the caller sends the pieces one by one (see sendvMax). */
  sendv(_target: CompletionTarget, _fd: number, _pool: number, _segs: Int32Array, _count: number, _len: number, _msgFlags = 0, _sqeFlags = 0): number {
    return -1;
  }

  /** Two completions: the result (with F_MORE), then the notification (F_NOTIF). */
  sendZc(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags = 0): number {
    return this.queue(target, Op.SendZc, fd, len, pool, off, msgFlags);
  }

  recv(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags = 0): number {
    return this.queue(target, Op.Recv, fd, len, pool, off, msgFlags);
  }

  /** Multishot recv into provided buffers of group `bufGroup`. */
  recvMulti(target: CompletionTarget, fd: number, bufGroup: number, msgFlags = 0, totalLen = 0): number {
    // As on the Ring, auxLen carries the total byte limit; the bytes left are counted down in it.
    return this.queue(target, Op.RecvMulti, fd, 0, -1, 0, msgFlags, 0, bufGroup, -1, totalLen);
  }

  accept(target: CompletionTarget, fd: number, multishot = false, flags = SOCK_CLOEXEC): number {
    return this.queue(target, Op.Accept, fd, 0, -1, 0, flags, multishot ? IORING_ACCEPT_MULTISHOT : 0);
  }

  /** Connects to the sockaddr at aux[auxOff, auxOff + auxLen) (read when the op starts). */
  connect(target: CompletionTarget, fd: number, auxOff: number, auxLen: number): number {
    return this.queue(target, Op.Connect, fd, 0, -1, 0, 0, 0, 0, auxOff, auxLen);
  }

  closeFd(target: CompletionTarget, fd: number): number {
    return this.queue(target, Op.Close, fd);
  }

  /** how: 0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR */
  shutdown(target: CompletionTarget, fd: number, how: number): number {
    return this.queue(target, Op.Shutdown, fd, how);
  }

  /** Not emulated yet: completes with -EOPNOTSUPP (after the same argument checks as Ring). */
  splice(target: CompletionTarget, fdIn: number, offIn: number, fdOut: number, len: number, flags = 0, sqeFlags = 0): number {
    if (!Number.isSafeInteger(offIn) || offIn < -1) throw new OutOfRangeError(`splice offset must be an integer >= -1, got ${offIn}`);
    return this.queue(target, Op.Splice, fdIn, len, -1, 0, flags, 0, 0, -1, 0, sqeFlags);
  }

  /**
   * Cancels an op (its target then sees -ECANCELED, or the real result if it
   * completed first). False when the op is already done.
   */
  cancel(opId: number): boolean {
    if (this.#closed) return false;
    const slot = opId & SLOT_MASK;
    if (!Number.isInteger(opId) || opId < 0 || slot >= this.#capacity || this.#ids[slot] !== opId) return false;
    if (this.#targets[slot] === undefined) return false;
    this.queue(ignore, Op.Cancel, -1, opId);
    return true;
  }

  /** Starts everything queued now instead of at the end of the turn. */
  flush(): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    this.#flush();
  }

  /**
   * As Ring.schedule: `p.preFlush()` runs once at the start of the next
   * flush, which is scheduled if need be; what it queues starts in that flush.
   */
  schedule(p: PreFlush): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    this.#preFlush.add(p);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushTask);
    }
  }

  #flush(): void {
    if (this.#preFlush.pending && !this.#closed) this.#preFlush.run();
    this.#flushScheduled = false;
    if (this.#closed) return;
    if (this.#provideCount) this.#applyProvides();
    const n = this.#queued;
    this.#queued = 0;
    this.#linkOpen = -1; // a chain ends with its batch, as in the kernel
    if (n > 0) {
      const s = this.#stats;
      s[RingStat.SubmitCalls]++;
      s[RingStat.Submitted] += n;
      const r = this.#rec;
      for (let i = 0; i < n; i++) {
        const slot = this.#submit[i];
        r[slot * R + F.Counted] = 1;
      }
      this.#inflight += n;
      for (let i = 0; i < n && !this.#closed; i++) {
        const slot = this.#submit[i];
        if (r[slot * R + F.State] === S.Queued) this.#start(slot);
      }
    }
    this.#drainRunnable();
    if (!this.#closed) this.#syncRef();
  }

  /** Starts linked successors whose predecessor succeeded; cancels those of failed ones. */
  #drainRunnable(): void {
    const q = this.#runnable;
    while (this.#runHead < q.length && !this.#closed) {
      const v = q[this.#runHead++];
      const id = v < 0 ? ~v : v;
      const slot = id & SLOT_MASK;
      if (this.#ids[slot] !== id || this.#rec[slot * R + F.State] !== S.Held) continue;
      if (v < 0) this.#result(slot, -ECANCELED, 0);
      else this.#start(slot);
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
      this.#result(slot, -EINVAL, 0);
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
        this.#result(slot, -EOPNOTSUPP, 0);
        return;
      case Op.Send:
      case Op.SendZc:
      case Op.Connect:
        this.#startOnFd(slot, fd, false);
        return;
      default: // Recv, RecvMulti, Accept
        this.#startOnFd(slot, fd, true);
    }
  }

  /** What ring.c's desc_check refuses, refused here (the op completes with -EINVAL). */
  #valid(b: number, op: number): boolean {
    const r = this.#rec;
    if (op < Op.Nop || op > Op.Splice) return false;
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
          pool >= 0 && pool < MAX_POOLS && this.#pools.attached[pool] === 1 && off >= 0 && len >= 0 && off + len <= this.#pools.size[pool]
        );
      }
      case Op.RecvMulti:
        return r[b + F.Group] >= 0 && r[b + F.Group] <= 0xffff && r[b + F.AuxLen] >= 0;
      case Op.Accept:
        return (r[b + F.MsgFlags] & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) === 0;
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
        return this.#attemptSend(slot, st);
      case Op.Recv:
        return this.#attemptRecv(slot, st);
      case Op.RecvMulti:
        return this.#attemptRecvMulti(slot, st);
      case Op.Accept:
        return this.#attemptAccept(slot, st);
      case Op.Connect:
        return this.#attemptConnect(slot, st);
      default:
        this.#result(slot, -EINVAL, 0);
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
    for (;;) {
      const done = r[b + F.Done];
      const useZc = zc && st.zc === 1 && r[b + F.ZcPlain] === 0;
      stats[RingStat.Enters]++;
      const res = useZc
        ? n.fallbackSendZc(h, fd, pool, off + done, len - done, flags)
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
      if (res === -EAGAIN) return Attempt.Wait;
      if (useZc && res === -ENOBUFS) {
        // Out of option memory for pinned pages: send the rest by copying.
        r[b + F.ZcPlain] = 1;
        r[b + F.ZcCopied] = 1;
        continue;
      }
      this.#sendDone(slot, st, done > 0 ? done : res);
      return Attempt.Done;
    }
  }

  /** A send's result; for SEND_ZC also its notification once the error queue reported every send. */
  #sendDone(slot: number, st: FdState, res: number): void {
    const r = this.#rec;
    const b = slot * R;
    if (r[b + F.Op] !== Op.SendZc) {
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
      if (res === -EAGAIN) return Attempt.Wait;
      if (res > 0 && flags & MSG_WAITALL && done + res < len) {
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
        this.#result(slot, -ENOBUFS, 0);
        return Attempt.Done;
      }
      if (!this.#pools.attached[g.pool] || g.off + g.len > this.#pools.size[g.pool]) {
        // The buffer's pool was detached after the buffer was provided.
        this.#result(slot, -EFAULT, 0);
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
      if (res === -EAGAIN) return Attempt.Wait;
      this.#result(slot, res, 0);
      return Attempt.Done;
    }
    return Attempt.Retry;
  }

  #attemptAccept(slot: number, st: FdState): Attempt {
    const r = this.#rec;
    const b = slot * R;
    const multishot = (r[b + F.Ioprio] & IORING_ACCEPT_MULTISHOT) !== 0;
    const flags = r[b + F.MsgFlags];
    for (let i = 0; i < MULTISHOT_BATCH; i++) {
      this.#stats[RingStat.Enters]++;
      const res = this.#native.fallbackAccept(this.#handle, st.fd, flags);
      if (res === -EAGAIN) return Attempt.Wait;
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
    if (res === -EINPROGRESS) return Attempt.Wait;
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
      this.#abandon(st, -ECANCELED);
      st.watched = false;
    }
    this.#stats[RingStat.Enters]++;
    this.#result(slot, this.#native.fallbackCloseFd(this.#handle, fd), 0);
  }

  /** The CANCEL op: 0 when the target was ended, -ENOENT when it had completed. */
  #cancelOp(opId: number): number {
    const slot = opId & SLOT_MASK;
    if (opId < 0 || slot >= this.#capacity || this.#ids[slot] !== opId || this.#targets[slot] === undefined) return -ENOENT;
    const r = this.#rec;
    const b = slot * R;
    switch (r[b + F.State]) {
      case S.Queued:
      case S.Held:
        this.#result(slot, -ECANCELED, 0);
        return 0;
      case S.Reading:
      case S.Writing: {
        const st = this.#fds.get(r[b + F.Fd]);
        if (st === undefined) return -ENOENT;
        const q = r[b + F.State] === S.Reading ? st.readers : st.writers;
        const i = q.indexOf(slot);
        if (i < 0) return -ENOENT;
        q.splice(i, 1);
        const op = r[b + F.Op];
        if (op === Op.Send || op === Op.SendZc) this.#sendDone(slot, st, r[b + F.Done] > 0 ? r[b + F.Done] : -ECANCELED);
        else this.#result(slot, -ECANCELED, 0);
        // Edge-triggered: the new head may have missed its edge while it waited behind.
        if (i === 0 && q.length > 0) this.#runQueue(st, q);
        this.#settle(st);
        return 0;
      }
      default:
        return -ENOENT;
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
      ((op === Op.Send || op === Op.SendZc) && res !== r[b + F.Len]) ||
      (op === Op.Recv && (r[b + F.MsgFlags] & MSG_WAITALL) !== 0 && res !== r[b + F.Len]);
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
    cq[i] = this.#ids[slot];
    cq[i + 1] = res;
    cq[i + 2] = flags;
    this.#cqLen++;
    if ((flags & CQE_F_MORE) === 0) this.#rec[slot * R + F.State] = S.Posted;
    if (!this.#inCallback) this.#wake();
  }

  /** Delivery happens on a coming loop turn, from the epoll wakeup: never inside queue() or flush(). */
  #wake(): void {
    if (this.#wakePending || this.#closed) return;
    this.#wakePending = true;
    this.#stats[RingStat.Enters]++;
    this.#native.fallbackWake(this.#handle);
  }

  /** Dispatches the completions posted so far, in order; those posted meanwhile wait for the next round. */
  #dispatch(): void {
    const n = this.#cqLen;
    const s = this.#stats;
    s[RingStat.ReapBatches]++;
    s[RingStat.Completed] += n;
    for (let i = 0; i < n; i++) {
      const c = this.#cq; // may grow while targets run
      const opId = c[i * 3];
      const res = c[i * 3 + 1];
      const flags = c[i * 3 + 2];
      const slot = opId & SLOT_MASK;
      if (this.#ids[slot] !== opId) continue;
      const target = this.#targets[slot];
      if (target === undefined) continue;
      if ((flags & CQE_F_MORE) === 0) this.#release(slot);
      try {
        target.onCompletion(opId, res, flags);
      } catch (err) {
        process.nextTick(rethrow, err);
      }
      if (this.#closed) return; // close() completed everything else
    }
    this.#cq.copyWithin(0, n * 3, this.#cqLen * 3);
    this.#cqLen -= n;
    s[RingStat.Inflight] = this.#inflight;
  }

  #release(slot: number): void {
    const b = slot * R;
    this.#targets[slot] = undefined;
    this.#free[this.#freeTop++] = slot;
    this.#live--;
    if (this.#rec[b + F.Counted]) this.#stats[RingStat.Inflight] = --this.#inflight;
    this.#rec[b + F.State] = S.Free;
    const pool = this.#opPool[slot];
    if (pool >= 0) {
      this.#opPool[slot] = -1;
      this.#pools.opDone(pool);
    }
  }

  /** The event loop stays alive exactly while ops are live. */
  #syncRef(): void {
    this.#stats[RingStat.Inflight] = this.#inflight;
    const want = this.#live > 0;
    if (want === this.#refed || this.#closed) return;
    this.#refed = want;
    this.#native.fallbackRef(this.#handle, want);
  }

  #grow(capacity: number): void {
    if (capacity > MAX_OPS) throw new OutOfRangeError(`more than ${MAX_OPS} operations in flight`);
    const old = this.#capacity;
    if (old) {
      const ids = new Int32Array(capacity).fill(-1);
      ids.set(this.#ids);
      this.#ids = ids;
      const rec = new Int32Array(capacity * R);
      rec.set(this.#rec);
      this.#rec = rec;
      const opPool = new Int8Array(capacity).fill(-1);
      opPool.set(this.#opPool);
      this.#opPool = opPool;
      const free = new Int32Array(capacity);
      free.set(this.#free.subarray(0, this.#freeTop));
      this.#free = free;
    }
    for (let slot = capacity - 1; slot >= old; slot--) this.#free[this.#freeTop++] = slot;
    for (let slot = old; slot < capacity; slot++) this.#targets.push(undefined);
    this.#capacity = capacity;
  }

  // ---- provided-buffer groups --------------------------------------------------

  /**
   * Adds a pool buffer to group `group` as buffer id `bid` (no op id, no
   * completion: it comes back in a RECV_MULTI CQE naming `bid`). Applied in
   * the next flush, before that flush's ops. A refused buffer (invalid, or
   * the group is full) is reported to the group's owner, onProvideFailed.
   */
  provide(pool: number, off: number, len: number, group: number, bid: number): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    let p = this.#provides;
    const i = this.#provideCount * 5;
    if (i === p.length) {
      const bigger = new Int32Array(p.length * 2);
      bigger.set(p);
      this.#provides = p = bigger;
    }
    p[i] = pool | 0;
    p[i + 1] = off | 0;
    p[i + 2] = len | 0;
    p[i + 3] = group | 0;
    p[i + 4] = bid | 0;
    this.#provideCount++;
    this.#scheduleFlush();
  }

  #applyProvides(): void {
    const p = this.#provides;
    const n = this.#provideCount;
    this.#provideCount = 0;
    for (let i = 0; i < n; i++) {
      const pool = p[i * 5];
      const off = p[i * 5 + 1];
      const len = p[i * 5 + 2];
      const group = p[i * 5 + 3];
      const bid = p[i * 5 + 4];
      const g = this.#groups.get(group);
      if (g === undefined) continue; // as the Ring: nobody to tell
      const ok =
        pool >= 0 && pool < MAX_POOLS && this.#pools.attached[pool] === 1 && len >= 1 && off >= 0 &&
        off + len <= this.#pools.size[pool] && bid >= 0 && bid <= 0xffff;
      const res = !ok ? -EINVAL : g.push(pool, off, len, bid) ? 0 : -ENOBUFS;
      if (res === 0) continue;
      try {
        g.owner.onProvideFailed(bid, res);
      } catch (err) {
        process.nextTick(rethrow, err);
      }
    }
  }

  /** Registers group `group` (0..65535) with room for `entries` buffers (a power of two <= 32768). */
  registerBufRing(group: number, entries: number, owner: ProvideOwner): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    if (!Number.isInteger(group) || !Number.isInteger(entries)) throw new InvalidArgumentError('group and entries must be integers');
    if (group < 0 || group > 0xffff) throw new OutOfRangeError(`group must be in [0, 65535], got ${group}`);
    if (entries < 1 || entries > BUF_RING_MAX_ENTRIES || (entries & (entries - 1)) !== 0) {
      throw new OutOfRangeError(`entries must be a power of two in [1, ${BUF_RING_MAX_ENTRIES}], got ${entries}`);
    }
    if (typeof owner?.onProvideFailed !== 'function') throw new InvalidArgumentError('owner must have onProvideFailed(bid, res)');
    if (this.#groups.has(group)) throw new OutOfRangeError(`buffer group ${group} is registered already`);
    if (this.#groups.size >= MAX_BUF_RINGS) throw new OutOfRangeError(`a ring holds at most ${MAX_BUF_RINGS} buffer groups`);
    this.#groups.set(group, new BufferGroup(entries, owner));
  }

  /** Forgets the group: buffers still in it are the owner's again. No-op once closed. */
  unregisterBufRing(group: number): void {
    if (this.#closed || !this.#groups.has(group)) return;
    if (this.#provideCount) this.#applyProvides();
    this.#groups.delete(group);
  }

  // ---- pools -----------------------------------------------------------------

  /** Gives the pool a slot (0..63) so ops can use its memory. Nothing is registered with the kernel. */
  attachPool(handle: PoolHandle): PoolAttachment {
    if (this.#closed) throw new ClosedError('the ring is closed');
    const index = this.#pools.claim();
    let size: number;
    try {
      size = this.#native.fallbackAttachPool(this.#handle, handle, index);
    } catch (err) {
      throw fromNative(err);
    }
    this.#pools.occupy(index, size);
    return { index, registered: false, error: 'the epoll fallback registers no fixed buffers' };
  }

  /** Takes the pool out of its slot; ops still using it keep it until their final completion. */
  detachPool(index: number): void {
    this.#pools.detach(index);
  }

  // ---- aux slots -------------------------------------------------------------

  get aux(): Uint8Array {
    return this.#aux.bytes;
  }

  /** A free 128-byte aux slot's offset, or -1 when all are in use. */
  allocAux(): number {
    return this.#aux.alloc();
  }

  freeAux(offset: number): void {
    this.#aux.free(offset);
  }

  /** Encodes host:port (an IP literal) into the aux slot at `offset`; returns its length. */
  writeSockaddr(offset: number, host: string, port: number): number {
    return this.#aux.writeSockaddr(offset, host, port);
  }

  // ---- observation and lifecycle ---------------------------------------------

  /**
   * The Ring's counters, read for epoll: enters are system calls made for the
   * data path (epoll_wait, epoll_ctl, each send/recv/accept/...), submitted
   * the ops started by flushes, reapBatches the completion batches.
   */
  stats(): RingStats {
    const s = this.#stats;
    const enters = s[RingStat.Enters];
    const submitted = s[RingStat.Submitted];
    const completed = s[RingStat.Completed];
    const reapBatches = s[RingStat.ReapBatches];
    return {
      enters,
      submitted,
      completed,
      submitCalls: s[RingStat.SubmitCalls],
      reapBatches,
      inflight: s[RingStat.Inflight],
      cqOverflow: 0,
      cqFlushes: 0,
      sqFull: 0,
      batchWaits: 0,
      submittedPerEnter: enters ? submitted / enters : 0,
      completionsPerBatch: reapBatches ? completed / reapBatches : 0,
    };
  }

  /**
   * Closes the epoll set, then completes every op that had no final
   * completion yet with -ECANCELED. Sockets stay open. Safe to call twice.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#flushScheduled = false;
    this.#queued = 0;
    this.#provideCount = 0;
    this.#preFlush.clear();
    if (current === this) current = null;
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
      this.#stats[RingStat.Inflight] = 0;
      for (let slot = 0; slot < this.#capacity; slot++) {
        const target = this.#targets[slot];
        if (target === undefined) continue;
        const opId = this.#ids[slot];
        this.#release(slot);
        try {
          target.onCompletion(opId, -ECANCELED, 0);
        } catch (err) {
          process.nextTick(rethrow, err);
        }
      }
      this.#inflight = 0;
    }
  }
}
