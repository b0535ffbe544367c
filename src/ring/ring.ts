/**
 * The ring: this thread's submission and completion queue, seen from
 * JavaScript, over one of two engines (src/ring/engine.ts): io_uring, or
 * epoll where io_uring is blocked. Everything callers see lives here, once.
 *
 * Operations are queued with positional arguments into a shared Int32Array
 * (one 16-int descriptor each, layout in native/maio.h); the first queue() of
 * a turn schedules one flush (a microtask), so everything queued in a turn
 * goes to the engine in one submit. Completions come back as one batch per
 * wake-up in another shared array; each is dispatched to the
 * CompletionTarget that queued the op, then whatever those targets queued is
 * flushed at once.
 *
 * Nothing is allocated per operation: op ids are slots from an Int32Array
 * free list, targets are objects that already exist (sockets, ...), not
 * closures. An op id carries a generation, so a stale id never reaches the
 * op that reused its slot; the slot is reused only after the op's final
 * completion (the first one without IORING_CQE_F_MORE).
 *
 * Keep-alive: the ring keeps the event loop alive while a referenced op is
 * live. Every op is referenced except a wait for input (RECV, multishot
 * RECV, ACCEPT) queued by a target unref'd with setRef(target, false): as in
 * node:net, an unref'd handle's reading and listening hold nothing, its
 * requests (connect, writes, shutdown, close) still do. Two counts (live
 * ops, live waits of unref'd targets) and a per-slot mark; the engine is
 * told only when "any referenced op live" changes.
 */
import { BackendUnavailableError, ClosedError, InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { CQE_F_MORE, CQE_INTS, DESC_INTS, GEN_MASK, MAX_POOLS, Op, SENDMSG_MAX_SEGS, SENDMSG_NAME_MAX, SENDV_MAX_LEN, RING_STATS, RingStat, SLOT_BITS, SLOT_MASK, type PoolHandle } from '../core/native';
import { engineArrays, type Engine, type EngineHost, type OpenEngine } from './engine';
import type { IoRing, RingCapabilities } from './io-ring';
import { Errno, Flag } from './linux';
import { AUX_BYTES, AUX_LARGE_SLOT as AUX_LARGE, AUX_SLOT, AUX_TOTAL, AuxSlots, PoolSlots, PreFlushQueue, checkOpArgs } from './slots';

/** Receives the completions of the operations it queued. */
export interface CompletionTarget {
  /**
   * `res` is the kernel's result (>= 0, or -errno); `flags` the CQE flags.
   * Called more than once for one opId while `flags` has IORING_CQE_F_MORE.
   */
  onCompletion(opId: number, res: number, flags: number): void;
}

export interface RingStats {
  enters: number;
  submitted: number;
  completed: number;
  submitCalls: number;
  reapBatches: number;
  inflight: number;
  /** CQEs the kernel had to drop (should stay 0: IORING_FEAT_NODROP) */
  cqOverflow: number;
  /** times the CQ overflowed into the kernel's backlog and was flushed */
  cqFlushes: number;
  sqFull: number;
  /** wake-ups that first waited for a larger batch because the ring was receiving in bulk (MAIO_BATCH_WAIT_US) */
  batchWaits: number;
  /** caller buffers held for sends in flight (sendBuf, sendv pieces of caller memory): 0 when none is in flight */
  heldBuffers: number;
  /** times the event loop woke the ring (io_uring: the eventfd's poll callback; epoll: the epoll set's) */
  wakeups: number;
  /** wake-ups that found no completion to deliver */
  emptyWakeups: number;
  submittedPerEnter: number;
  completionsPerBatch: number;
}

/** Queues its ops at the start of the next flush (corking: writes of one turn become one op). */
export interface PreFlush {
  preFlush(): void;
}

/** Owns a provided-buffer group: told when the ring refused one of its PROVIDEs. */
export interface ProvideOwner {
  /** The buffer `bid` never reached the kernel (res is -errno); it is the owner's again. */
  onProvideFailed(bid: number, res: number): void;
}

export interface PoolAttachment {
  index: number;
  registered: boolean;
  /** Registration deferred to the pool's first SEND_ZC (attachPool(handle, true)). */
  pending?: boolean;
  error: string;
}

const SUBMIT_CAPACITY = 1024; // descriptors per flush (an engine may take fewer: Engine.batch)
const COMPLETION_CAPACITY = 1024; // completions per onCompletions call

const INITIAL_OPS = 1024;
const MAX_OPS = 1 << SLOT_BITS;
const MAX_SUBMIT_RETRIES = 3;

function rethrow(err: unknown): never {
  throw err;
}

/** Swallows the completion of the ASYNC_CANCEL ops cancel() queues. */
const ignore: CompletionTarget = { onCompletion() {} };

let current: Ring | null = null;
const constructing = Symbol('maio.ring.construct');

export class Ring implements IoRing {
  readonly #engine: Engine;
  /** descriptors one flush takes (the engine's batch) */
  readonly #batch: number;
  /** the arrays shared with the engine, views of one buffer (engineArrays) */
  readonly #shared = engineArrays(SUBMIT_CAPACITY * DESC_INTS, COMPLETION_CAPACITY * CQE_INTS, AUX_TOTAL, RING_STATS);
  readonly #submit = this.#shared.submit;
  readonly #comp = this.#shared.completions;
  readonly #aux = new AuxSlots(this.#shared.aux);
  readonly #stats = this.#shared.stats;
  /** the aux array as int32: SENDV segment lists */
  readonly #auxWords = new Int32Array(this.#aux.bytes.buffer, this.#aux.bytes.byteOffset, AUX_TOTAL >> 2);
  /** aux slots of the SENDVs queued in this batch: free once it is submitted (the kernel copied them) */
  readonly #sendvAux = new Int32Array(AUX_BYTES / AUX_SLOT);
  #sendvAuxCount = 0;
  /** caller buffers the batch's SEND_BUF descriptors and SENDV pieces name by index (the engine holds each until its op's final completion) */
  readonly #bufs: Uint8Array[] = [];
  readonly #sendvMax: number;
  readonly capabilities: RingCapabilities;
  #queued = 0;
  #flushScheduled = false;
  /** completions are being dispatched: the flush that ends the batch takes what they queue */
  #dispatching = false;
  #closed = false;

  // op table, indexed by slot
  #targets: (CompletionTarget | undefined)[] = [];
  #ids = new Int32Array(INITIAL_OPS).fill(-1);
  #opPool = new Int8Array(INITIAL_OPS).fill(-1);
  #free = new Int32Array(INITIAL_OPS);
  #freeTop = 0;
  #capacity = 0;
  #live = 0;

  // keep-alive (see the file comment): per slot 0 not a wait, 1 a wait, 2 a wait of an unref'd target
  #wait = new Uint8Array(INITIAL_OPS);
  #unrefLive = 0;
  /** targets unref'd with setRef(target, false); weak: a target dropped without ref() is no leak */
  readonly #unrefTargets = new WeakSet<CompletionTarget>();
  /** >= the targets in #unrefTargets (one collected unref'd is not subtracted): 0 skips the lookup */
  #unrefTargetCount = 0;
  /** what the engine was last told */
  #refed = false;

  // failures found while flushing, delivered after the flush: (slot, res) pairs
  readonly #failed = new Int32Array(SUBMIT_CAPACITY * 2);
  #failedCount = 0;
  // PROVIDEs refused while flushing, told to their owners after it: (group, bid, res)
  #refused: number[] = [];

  // pool slots; a slot given up is detached from the engine (its close drops them all)
  readonly #pools = new PoolSlots((index) => {
    if (!this.#closed) this.#engine.detachPool(index);
  });

  // provided-buffer groups and who owns each
  readonly #groups = new Map<number, ProvideOwner>();

  // objects that queue their ops at the start of the next flush
  readonly #preFlush = new PreFlushQueue();

  readonly #flushTask = (): void => {
    if (this.#flushScheduled) this.#flush();
  };

  readonly #onCompletions = (count: number): void => {
    const c = this.#comp;
    // Saved and restored: an engine may dispatch from inside a submit of this batch.
    const outer = this.#dispatching;
    this.#dispatching = true;
    try {
      this.#dispatch(c, count);
    } finally {
      this.#dispatching = outer;
    }
    this.#flush();
  };

  #dispatch(c: Int32Array, count: number): void {
    for (let i = 0; i < count; i++) {
      const b = i * CQE_INTS;
      const opId = c[b];
      const res = c[b + 1];
      const flags = c[b + 2];
      const slot = opId & SLOT_MASK;
      if (slot >= this.#capacity || this.#ids[slot] !== opId) continue;
      const target = this.#targets[slot];
      // undefined: a target closed the ring mid-batch, which completed the rest.
      if (target === undefined) continue;
      if ((flags & CQE_F_MORE) === 0) this.#release(slot);
      try {
        target.onCompletion(opId, res, flags);
      } catch (err) {
        // One target's bug must not lose the other completions of the batch.
        process.nextTick(rethrow, err);
      }
    }
  }

  readonly #host: EngineHost = {
    onCompletions: this.#onCompletions,
    provideFailed: (group, bid, res) => this.#provideFailed(group, bid, res),
  };

  /** This thread's ring, created on first use (again after a close), on the engine backend() chose. */
  static current(): Ring {
    if (current !== null && !current.#closed) return current;
    // Lazy: current.ts names the engines, and they import this file.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { openEngine } = require('./current') as typeof import('./current');
    current = new Ring(constructing, openEngine);
    return current;
  }

  /** @internal use Ring.current(): one ring per thread. */
  constructor(token: symbol, openEngine: OpenEngine) {
    if (token !== constructing) throw new InvalidArgumentError('use Ring.current(): there is one ring per thread');
    this.#engine = openEngine(this.#host, this.#shared);
    this.#batch = this.#engine.batch;
    this.capabilities = this.#engine.capabilities;
    this.#sendvMax = this.capabilities.sendvMax;
    this.#grow(INITIAL_OPS);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Descriptors the submit array still takes before the ring must flush. */
  get room(): number {
    return this.#batch - this.#queued;
  }

  /** Operations queued or in flight. */
  get pending(): number {
    return this.#live;
  }

  // ---- queueing ------------------------------------------------------------

  /**
   * Queues one operation; returns its op id (a positive int32). The target's
   * onCompletion receives it with each completion. Arguments after `fd`
   * follow the descriptor layout in native/maio.h.
   */
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
    if (this.#queued === this.#batch) this.#flush();
    if (this.#freeTop === 0) this.#grow(this.#capacity * 2);
    const slot = this.#free[--this.#freeTop];
    const gen = ((this.#ids[slot] >>> SLOT_BITS) + 1) & GEN_MASK;
    const opId = (gen << SLOT_BITS) | slot;
    this.#ids[slot] = opId;
    this.#targets[slot] = target;
    this.#live++;
    if (op === Op.RecvMulti || op === Op.Accept || op === Op.Recv || op === Op.RecvmsgMulti) {
      // A wait: once per connection (or resume), not per send, so the lookup costs nothing that counts.
      if (this.#unrefTargetCount !== 0 && this.#unrefTargets.has(target)) {
        this.#wait[slot] = 2;
        this.#unrefLive++;
      } else {
        this.#wait[slot] = 1;
      }
    }
    const usesPool = (op === Op.Send || op === Op.SendZc || op === Op.Recv || op === Op.Sendv || op === Op.Sendmsg || op === Op.SendmsgZc) && pool >= 0 && pool < MAX_POOLS;
    this.#opPool[slot] = usesPool ? pool : -1;
    if (usesPool) this.#pools.opStarted(pool);

    const s = this.#submit;
    const b = this.#queued * DESC_INTS;
    s[b] = op;
    s[b + 1] = fd;
    s[b + 2] = opId;
    s[b + 3] = len;
    s[b + 4] = pool;
    s[b + 5] = bufOff;
    s[b + 6] = msgFlags;
    s[b + 7] = ioprio;
    s[b + 8] = bufGroup;
    s[b + 9] = auxOff;
    s[b + 10] = auxLen;
    s[b + 11] = 0;
    s[b + 12] = 0;
    s[b + 13] = sqeFlags;
    this.#queued++;
    if (!this.#flushScheduled) this.#scheduleFlush();
    return opId;
  }

  nop(target: CompletionTarget): number {
    return this.queue(target, Op.Nop, -1);
  }

  send(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags = 0): number {
    return this.queue(target, Op.Send, fd, len, pool, off, msgFlags);
  }

  /**
   * A plain send of `buf`'s first `len` bytes from the caller's memory, not a
   * pool: the engine holds `buf` (io_uring: a reference native takes) until
   * the op's final completion; the caller must not change the bytes until
   * then. For sends the kernel copies anyway, this skips the copy into a
   * pool buffer.
   */
  sendBuf(target: CompletionTarget, fd: number, buf: Uint8Array, len: number, msgFlags = 0, sqeFlags = 0): number {
    if (this.#closed) throw new ClosedError('the ring is closed');
    if (!(buf instanceof Uint8Array)) throw new InvalidArgumentError('sendBuf takes a Uint8Array');
    if (!Number.isInteger(len) || len < 0 || len > buf.length) throw new OutOfRangeError(`sendBuf length must be in [0, ${buf.length}], got ${len}`);
    // The index names an entry of this batch's list: flush first if the batch is full.
    if (this.#queued === this.#batch) this.#flush();
    const k = this.#bufs.push(buf) - 1;
    return this.queue(target, Op.SendBuf, fd, len, -1, k, msgFlags, 0, 0, -1, 0, sqeFlags);
  }

  /** Pieces one sendv() takes; 0 when this kernel cannot (see the constructor) or MAIO_SENDV=0. */
  get sendvMax(): number {
    return this.#sendvMax;
  }

  /**
   * One SENDMSG of `count` pieces of pool `pool` (segs: offset, length pairs;
   * `len` their sum). The list goes to native through an aux slot that is
   * free again once this batch is submitted. Returns the op id, or -1 when
   * no aux slot is free or SENDV is off: send the pieces one by one.
   * `held[k]`, if given and not null, makes piece k the first segs[2k + 1]
   * bytes of that caller buffer instead of pool memory (as sendBuf()).
   */
  sendv(target: CompletionTarget, fd: number, pool: number, segs: Int32Array, count: number, len: number, msgFlags = 0, sqeFlags = 0, held: readonly (Uint8Array | null)[] | null = null): number {
    if (this.#closed) throw new ClosedError('the ring is closed');
    if (this.#sendvMax === 0) return -1;
    if (!Number.isInteger(count) || count < 1 || count > this.#sendvMax || count * 2 > segs.length) {
      throw new OutOfRangeError(`sendv takes 1 to ${this.#sendvMax} pieces, got ${count}`);
    }
    if (!Number.isInteger(len) || len < 0 || len > SENDV_MAX_LEN) throw new OutOfRangeError(`sendv length must be in [0, ${SENDV_MAX_LEN}], got ${len}`);
    if (held !== null) {
      for (let k = 0; k < count; k++) {
        const b = held[k];
        if (b !== null && b !== undefined && (!(b instanceof Uint8Array) || segs[2 * k + 1] > b.length)) throw new OutOfRangeError(`sendv piece ${k} is longer than its buffer`);
      }
    }
    // A flush frees this batch's slots: make it before taking one.
    if (this.#queued === this.#batch) this.#flush();
    const aux = this.#aux.alloc();
    if (aux < 0) return -1;
    const w = this.#auxWords;
    const base = aux >> 2;
    for (let k = 0; k < count * 2; k++) w[base + k] = segs[k];
    if (held !== null) {
      for (let k = 0; k < count; k++) {
        const b = held[k];
        if (b !== null && b !== undefined) w[base + 2 * k] = -this.#bufs.push(b); // -(index + 1)
      }
    }
    this.#sendvAux[this.#sendvAuxCount++] = aux;
    return this.queue(target, Op.Sendv, fd, len, pool, 0, msgFlags, 0, 0, aux, count * 8, sqeFlags);
  }

  /** Two completions: the result (with F_MORE when it worked), then the notification (F_NOTIF). */
  sendZc(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags = 0): number {
    return this.queue(target, Op.SendZc, fd, len, pool, off, msgFlags);
  }

  recv(target: CompletionTarget, fd: number, pool: number, off: number, len: number, msgFlags = 0): number {
    return this.queue(target, Op.Recv, fd, len, pool, off, msgFlags);
  }

  /** Multishot recv into provided buffers of group `bufGroup`. */
  recvMulti(target: CompletionTarget, fd: number, bufGroup: number, msgFlags = 0, totalLen = 0): number {
    // RECV_MULTI has no aux data: auxLen carries the total byte limit (sqe->optlen).
    return this.queue(target, Op.RecvMulti, fd, 0, -1, 0, msgFlags, 0, bufGroup, -1, totalLen);
  }

  /**
   * Multishot recvmsg into provided buffers of `bufGroup`: one completion per
   * datagram, its buffer laid out as io_uring_recvmsg_out, `nameLen` bytes
   * for the source address, `ctlLen` for control messages (a multiple of 8),
   * then the payload.
   */
  recvmsgMulti(target: CompletionTarget, fd: number, bufGroup: number, nameLen: number, ctlLen: number, msgFlags = 0): number {
    const opId = this.queue(target, Op.RecvmsgMulti, fd, 0, -1, 0, msgFlags, 0, bufGroup);
    const s = this.#submit;
    const b = (this.#queued - 1) * DESC_INTS;
    s[b + 11] = nameLen | 0;
    s[b + 12] = ctlLen | 0;
    return opId;
  }

  /**
   * One sendmsg of `count` pieces of pool `pool` (segs: offset, length pairs,
   * `len` their sum) through the aux entry at `auxOff` (a small slot for up to
   * 12 pieces, a large one for up to 64), which must already hold the
   * destination sockaddr of `nameLen` bytes (0: connected socket). `gso` > 0
   * adds UDP_SEGMENT. The caller keeps the entry until the completion.
   */
  sendmsg(target: CompletionTarget, fd: number, pool: number, auxOff: number, segs: Int32Array, count: number, len: number, nameLen: number, gso = 0, msgFlags = 0): number {
    return this.#sendmsgOp(Op.Sendmsg, target, fd, pool, auxOff, segs, count, len, nameLen, gso, msgFlags);
  }

  /**
   * sendmsg() as SENDMSG_ZC (epoll: MSG_ZEROCOPY), where capabilities.zeroCopySendmsg:
   * two completions, the result (with F_MORE when it worked), then the
   * notification (F_NOTIF); the pieces and the entry are the kernel's until then.
   */
  sendmsgZc(target: CompletionTarget, fd: number, pool: number, auxOff: number, segs: Int32Array, count: number, len: number, nameLen: number, gso = 0, msgFlags = 0): number {
    if (!this.capabilities.zeroCopySendmsg) throw new BackendUnavailableError('this ring has no zero-copy sendmsg (IORING_OP_SENDMSG_ZC)');
    return this.#sendmsgOp(Op.SendmsgZc, target, fd, pool, auxOff, segs, count, len, nameLen, gso, msgFlags);
  }

  #sendmsgOp(op: Op, target: CompletionTarget, fd: number, pool: number, auxOff: number, segs: Int32Array, count: number, len: number, nameLen: number, gso: number, msgFlags: number): number {
    if (this.#closed) throw new ClosedError('the ring is closed');
    const room = ((auxOff >= AUX_BYTES ? AUX_LARGE : AUX_SLOT) - SENDMSG_NAME_MAX) >> 3;
    if (!Number.isInteger(count) || count < 1 || count > Math.min(room, SENDMSG_MAX_SEGS) || count * 2 > segs.length) {
      throw new OutOfRangeError(`sendmsg takes 1 to ${Math.min(room, SENDMSG_MAX_SEGS)} pieces here, got ${count}`);
    }
    const w = this.#auxWords;
    const base = (auxOff + SENDMSG_NAME_MAX) >> 2;
    for (let k = 0; k < count * 2; k++) w[base + k] = segs[k];
    const opId = this.queue(target, op, fd, len, pool, 0, msgFlags, 0, 0, auxOff, count * 8);
    const s = this.#submit;
    const b = (this.#queued - 1) * DESC_INTS;
    s[b + 11] = nameLen | 0;
    s[b + 12] = gso | 0;
    return opId;
  }

  /**
   * Adds a pool buffer to provided-buffer group `group` as buffer id `bid`
   * (no op id, no completion: the buffer comes back in a recv CQE that names
   * `bid`). Applied in the next flush, before that flush's SQEs.
   */
  provide(pool: number, off: number, len: number, group: number, bid: number): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    if (this.#queued === this.#batch) this.#flush();
    const s = this.#submit;
    const b = this.#queued * DESC_INTS;
    // Every field written: a fill() here is a C++ builtin call per buffer.
    s[b] = Op.Provide;
    s[b + 1] = -1;
    s[b + 2] = bid;
    s[b + 3] = len;
    s[b + 4] = pool;
    s[b + 5] = off;
    s[b + 6] = 0;
    s[b + 7] = 0;
    s[b + 8] = group;
    s[b + 9] = -1;
    s[b + 10] = 0;
    s[b + 11] = 0;
    s[b + 12] = 0;
    s[b + 13] = 0;
    s[b + 14] = 0;
    s[b + 15] = 0;
    this.#queued++;
    if (!this.#flushScheduled) this.#scheduleFlush();
  }

  /** Registers a provided-buffer ring for `group` (0..65535) with `entries` slots (a power of two). */
  registerBufRing(group: number, entries: number, owner: ProvideOwner): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    if (typeof owner?.onProvideFailed !== 'function') throw new InvalidArgumentError('owner must have onProvideFailed(bid, res)');
    this.#engine.registerBufRing(group, entries);
    this.#groups.set(group, owner);
  }

  /**
   * Unregisters the group: buffers still provided are the owner's again.
   * Call only when no recv on the group is in flight. No-op once closed.
   */
  unregisterBufRing(group: number): void {
    if (this.#closed || !this.#groups.has(group)) return;
    // PROVIDEs still queued for the group would be refused: apply them first.
    if (this.#queued) this.#flush();
    this.#groups.delete(group);
    this.#engine.unregisterBufRing(group);
  }

  /**
   * Splices `len` bytes (>= 1) from `fdIn`, read at `offIn` (a file) or -1 (a
   * pipe or socket), to `fdOut` (a pipe or socket). `flags`: SPLICE_F_*.
   * `sqeFlags` IOSQE_IO_LINK chains the next op queued behind this one. The
   * kernel runs it in a worker that waits on blocking fds (src/paths/).
   */
  splice(target: CompletionTarget, fdIn: number, offIn: number, fdOut: number, len: number, flags = 0, sqeFlags = 0): number {
    if (!Number.isSafeInteger(offIn) || offIn < -1) throw new OutOfRangeError(`splice offset must be an integer >= -1, got ${offIn}`);
    const opId = this.queue(target, Op.Splice, fdIn, len, -1, 0, flags, 0, 0, -1, 0, sqeFlags);
    const s = this.#submit;
    const b = (this.#queued - 1) * DESC_INTS;
    const hi = Math.floor(offIn / 0x100000000);
    s[b + 11] = offIn - hi * 0x100000000; // the Int32Array keeps the low 32 bits
    s[b + 12] = hi;
    s[b + 14] = fdOut;
    return opId;
  }

  accept(target: CompletionTarget, fd: number, multishot = false, flags: number = Flag.SOCK_CLOEXEC): number {
    return this.queue(target, Op.Accept, fd, 0, -1, 0, flags, multishot ? Flag.IORING_ACCEPT_MULTISHOT : 0);
  }

  /** Connects to the sockaddr at aux[auxOff, auxOff + auxLen) (see allocAux/writeSockaddr). */
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

  /**
   * Asks the kernel to cancel an op (its target then sees -ECANCELED, or the
   * real result if it won the race). False when the op is already done.
   */
  cancel(opId: number): boolean {
    if (this.#closed) return false;
    const slot = opId & SLOT_MASK;
    if (!Number.isInteger(opId) || opId < 0 || slot >= this.#capacity || this.#ids[slot] !== opId) return false;
    if (this.#targets[slot] === undefined) return false;
    this.queue(ignore, Op.Cancel, -1, opId);
    return true;
  }

  /**
   * Whether `target`'s waits for input (RECV, multishot RECV, ACCEPT: what
   * node:net's reading and listening are) keep the event loop alive, as
   * node:net's ref()/unref(): from now on, and for those already live. Its
   * other ops (connect, sends, shutdown, close) always do, as node:net's
   * requests do. A scan of the op table, so for ref()/unref() calls, not per
   * operation.
   */
  setRef(target: CompletionTarget, referenced: boolean): void {
    if (this.#closed) return;
    if (referenced ? !this.#unrefTargets.delete(target) : this.#unrefTargets.has(target)) return;
    if (referenced) this.#unrefTargetCount--;
    else {
      this.#unrefTargets.add(target);
      this.#unrefTargetCount++;
    }
    const from = referenced ? 2 : 1;
    const to = referenced ? 1 : 2;
    const wait = this.#wait;
    const targets = this.#targets;
    for (let slot = 0; slot < this.#capacity; slot++) {
      if (wait[slot] === from && targets[slot] === target) {
        wait[slot] = to;
        this.#unrefLive += referenced ? -1 : 1;
      }
    }
    this.#syncRef();
  }

  /** Tells the engine when "a referenced op is live" changes (a native call per change, none per op). */
  #syncRef(): void {
    const want = this.#live > this.#unrefLive;
    if (want === this.#refed || this.#closed) return;
    this.#refed = want;
    this.#engine.setRef(want);
  }

  /** Submits everything queued now instead of at the end of the turn. */
  flush(): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    this.#flush();
  }

  /**
   * Calls `p.preFlush()` once at the start of the next flush, which is
   * scheduled if need be: whatever it queues goes to the kernel in that
   * flush. The same object may be scheduled once per flush.
   */
  schedule(p: PreFlush): void {
    if (this.#closed) throw new ClosedError('the ring is closed');
    this.#preFlush.add(p);
    if (!this.#flushScheduled) this.#scheduleFlush();
  }

  /**
   * Flushes at the end of this turn's synchronous work. While a batch of
   * completions is dispatched, the flush that ends the batch comes first: no
   * microtask (Node's queueMicrotask costs an async resource and a bound
   * function per call, once per batch on a busy ring).
   */
  #scheduleFlush(): void {
    this.#flushScheduled = true;
    if (!this.#dispatching) queueMicrotask(this.#flushTask);
  }

  #flush(): void {
    if (this.#preFlush.pending) this.#preFlush.run();
    this.#flushScheduled = false;
    let n = this.#queued;
    if (n === 0 || this.#closed) {
      this.#freeSendvAux();
      if (this.#bufs.length !== 0) this.#bufs.length = 0;
      // Completions were dispatched, or setRef changed, since the last look.
      this.#syncRef();
      return;
    }
    const s = this.#submit;
    let retries = 0;
    while (n > 0) {
      let done: number;
      try {
        done = this.#engine.submit(n, this.#bufs);
      } catch (err) {
        const e = err as { code?: unknown; index?: unknown; errno?: unknown };
        if (e.code === 'ERR_MAIO_INVALID_DESCRIPTOR' && typeof e.index === 'number') {
          // The batch went nowhere: fail the bad op alone and try the rest.
          const b = e.index * DESC_INTS;
          if (s[b] === Op.Provide) this.#provideFailed(s[b + 8], s[b + 2], -Errno.EINVAL);
          else this.#fail(s[b + 2], -Errno.EINVAL);
          s.copyWithin(e.index * DESC_INTS, (e.index + 1) * DESC_INTS, n * DESC_INTS);
          n--;
          continue;
        }
        const res = typeof e.errno === 'number' ? e.errno : -Errno.EIO;
        // A valid batch applied its PROVIDEs even when the enter failed.
        for (let i = 0; i < n; i++) if (s[i * DESC_INTS] !== Op.Provide) this.#fail(s[i * DESC_INTS + 2], res);
        n = 0;
        break;
      }
      if (done === n) break;
      // The kernel stopped early (out of request memory): retry the rest a few
      // times, without the PROVIDEs, which native applied already.
      let m = 0;
      for (let i = done; i < n; i++) {
        if (s[i * DESC_INTS] === Op.Provide) continue;
        if (m !== i) s.copyWithin(m * DESC_INTS, i * DESC_INTS, (i + 1) * DESC_INTS);
        m++;
      }
      n = m;
      if (++retries > MAX_SUBMIT_RETRIES) {
        for (let i = 0; i < n; i++) this.#fail(s[i * DESC_INTS + 2], -Errno.EAGAIN);
        n = 0;
      }
    }
    this.#queued = 0;
    this.#freeSendvAux();
    // The engine took its references (or failed the ops): the list is this batch's only.
    if (this.#bufs.length !== 0) this.#bufs.length = 0;
    if (this.#refused.length) this.#deliverRefused();
    if (this.#failedCount) this.#deliverFailures();
    this.#syncRef();
  }

  /** The batch is submitted (or failed): the kernel copied its SENDV segment lists. */
  #freeSendvAux(): void {
    const n = this.#sendvAuxCount;
    this.#sendvAuxCount = 0;
    for (let i = 0; i < n; i++) this.#aux.free(this.#sendvAux[i]);
  }

  /** Noted now, told after the flush: an owner may queue again, which must not land in the batch being submitted. */
  #provideFailed(group: number, bid: number, res: number): void {
    this.#refused.push(group, bid, res);
  }

  #deliverRefused(): void {
    const list = this.#refused;
    this.#refused = [];
    for (let i = 0; i < list.length; i += 3) {
      const owner = this.#groups.get(list[i]);
      if (!owner) continue;
      try {
        owner.onProvideFailed(list[i + 1], list[i + 2]);
      } catch (err) {
        process.nextTick(rethrow, err);
      }
    }
  }

  #fail(opId: number, res: number): void {
    const i = this.#failedCount++ * 2;
    this.#failed[i] = opId;
    this.#failed[i + 1] = res;
  }

  #deliverFailures(): void {
    const count = this.#failedCount;
    this.#failedCount = 0;
    for (let i = 0; i < count; i++) {
      const opId = this.#failed[i * 2];
      const res = this.#failed[i * 2 + 1];
      const slot = opId & SLOT_MASK;
      if (this.#ids[slot] !== opId) continue;
      const target = this.#targets[slot] as CompletionTarget;
      this.#release(slot);
      try {
        target.onCompletion(opId, res, 0);
      } catch (err) {
        process.nextTick(rethrow, err);
      }
    }
  }

  #release(slot: number): void {
    this.#targets[slot] = undefined;
    this.#free[this.#freeTop++] = slot;
    this.#live--;
    const wait = this.#wait[slot];
    if (wait !== 0) {
      this.#wait[slot] = 0;
      if (wait === 2) this.#unrefLive--;
    }
    const pool = this.#opPool[slot];
    if (pool >= 0) {
      this.#opPool[slot] = -1;
      this.#pools.opDone(pool);
    }
  }

  #grow(capacity: number): void {
    if (capacity > MAX_OPS) throw new OutOfRangeError(`more than ${MAX_OPS} operations in flight`);
    const old = this.#capacity;
    if (old) {
      const ids = new Int32Array(capacity).fill(-1);
      ids.set(this.#ids);
      this.#ids = ids;
      const opPool = new Int8Array(capacity).fill(-1);
      opPool.set(this.#opPool);
      this.#opPool = opPool;
      const wait = new Uint8Array(capacity);
      wait.set(this.#wait);
      this.#wait = wait;
      const free = new Int32Array(capacity);
      free.set(this.#free.subarray(0, this.#freeTop));
      this.#free = free;
    }
    // Hand out low slots first.
    for (let slot = capacity - 1; slot >= old; slot--) this.#free[this.#freeTop++] = slot;
    for (let slot = old; slot < capacity; slot++) this.#targets.push(undefined);
    this.#capacity = capacity;
  }

  // ---- pools ---------------------------------------------------------------

  /**
   * Gives the pool a slot in this ring (0..63) so descriptors can use its
   * memory, and tries to register it with the kernel as a fixed buffer:
   * now, or with `lazy` at the pool's first SEND_ZC (registering pins the
   * whole region). Called by the pool module when a pool is created on this
   * thread.
   */
  attachPool(handle: PoolHandle, lazy = false): PoolAttachment {
    if (this.#closed) throw new ClosedError('the ring is closed');
    const index = this.#pools.claim();
    const r = this.#engine.attachPool(handle, index, lazy);
    this.#pools.occupy(index);
    return { index, registered: r.registered, pending: r.pending, error: r.error };
  }

  /**
   * Takes the pool out of its slot. Operations still using its memory keep
   * it attached until their final completion.
   */
  detachPool(index: number): void {
    this.#pools.detach(index);
  }

  // ---- aux slots: sockaddrs and other per-op side data ---------------------

  /** The aux array: write a slot's bytes here. */
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

  /** A free 1 KiB aux slot's offset (a sendmsg of up to 64 pieces), or -1 when all are in use. */
  allocAuxLarge(): number {
    return this.#aux.allocLarge();
  }

  freeAuxLarge(offset: number): void {
    this.#aux.freeLarge(offset);
  }

  /** Encodes host:port (an IP literal) into the aux slot at `offset`; returns its length. */
  writeSockaddr(offset: number, host: string, port: number): number {
    return this.#aux.writeSockaddr(offset, host, port);
  }

  // ---- observation and lifecycle -------------------------------------------

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
      cqOverflow: s[RingStat.CqOverflow],
      cqFlushes: s[RingStat.CqFlushes],
      sqFull: s[RingStat.SqFull],
      batchWaits: s[RingStat.BatchWaits],
      heldBuffers: s[RingStat.Held],
      wakeups: s[RingStat.Wakeups],
      emptyWakeups: s[RingStat.EmptyWakeups],
      submittedPerEnter: enters ? submitted / enters : 0,
      completionsPerBatch: reapBatches ? completed / reapBatches : 0,
    };
  }

  /**
   * Cancels what is in flight, closes the ring, then completes every op that
   * had no final completion yet with -ECANCELED. Safe to call twice. The
   * servers and sockets on it close with it ('close', no 'error'); the
   * thread's next Ring.current() is a new ring, with a new default pool. A
   * pool made with createPool() serves only the ring it was made on: handed
   * to a server or socket on the next ring it is an ERR_MAIO_CLOSED error.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#flushScheduled = false;
    this.#queued = 0;
    this.#freeSendvAux();
    this.#bufs.length = 0;
    if (current === this) current = null;
    this.#groups.clear();
    this.#preFlush.clear();
    try {
      this.#engine.close();
    } finally {
      this.#stats[RingStat.Inflight] = 0;
      // The engine let its held buffers go (or, for an op the kernel kept past close, left them to the env).
      this.#stats[RingStat.Held] = 0;
      for (let slot = 0; slot < this.#capacity; slot++) {
        const target = this.#targets[slot];
        if (target === undefined) continue;
        const opId = this.#ids[slot];
        this.#release(slot);
        try {
          target.onCompletion(opId, -Errno.ECANCELED, 0);
        } catch (err) {
          process.nextTick(rethrow, err);
        }
      }
    }
  }
}
