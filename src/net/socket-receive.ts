/**
 * A socket's receive side: one multishot recv on the thread's receive group
 * for the pool (recv-group.ts). Each completion is a pool buffer the
 * application owns ('data' event, or async iteration). A 'data' buffer is
 * released when the handlers return unless one of them kept it
 * (buf.retain()) or passed it on (socket.send(buf)). Received bytes not yet
 * released count against the socket's `readQuota`: above it the socket stops
 * reading until the application releases enough; other sockets are
 * unaffected.
 */
import { errnoError } from '../core/errors';
import { CQE_F_MORE } from '../core/native';
import { kHoldData, kOnReceiveStopped, kReleaseWhenReturned } from '../core/symbols';
import type { IoBuffer } from '../pool/buffer';
import { RecvGroup, type RecvGroupOptions, type RecvGroupUser } from './recv-group';
import { Flag, SocketCore, type SocketEvents } from './socket-core';
import type { Listener } from '../core/typed-events';
import type { SocketInit } from './socket';
import { totals } from './stats';

const ECANCELED = 125;
const ENOBUFS = 105;
const EINVAL = 22;

/**
 * Whether the kernel takes a multishot recv's total byte limit (6.17+); the
 * first -EINVAL of a limited recv turns it off for the thread, and the read
 * quota is then checked per completion only (a multishot drains the socket
 * buffer before the cancel lands).
 */
let recvLimitWorks = true;

/** @internal false once this thread's kernel refused a multishot recv's byte limit (tests). */
export function recvLimitSupported(): boolean {
  return recvLimitWorks;
}

/** Bytes a socket whose 'data' is held (kHoldData) receives before its recv stops as after pause(). */
const HOLD_BYTES = 256 * 1024;

/** Empty and shared by every socket (frozen: a push into it throws). */
const NO_BUFFERS = Object.freeze([]) as unknown as IoBuffer[];
/** the receive group options of a socket that sets none (shared: no object per accept) */
const NO_GROUP_OPTIONS: Readonly<RecvGroupOptions> = Object.freeze({});

export function rethrow(err: unknown): never {
  throw err;
}

export abstract class ReceivingSocket extends SocketCore implements RecvGroupUser {
  readonly #quota: number;
  #group: RecvGroup | null = null;
  #recvOp = -1;
  #held = 0;
  #heldBuffers = 0;
  /** NO_BUFFERS until a buffer waits: an idle socket holds no array */
  #pending: IoBuffer[] = NO_BUFFERS;

  constructor(init: SocketInit) {
    super(init);
    const o = init.options;
    this.#quota = o.readQuota ?? 1024 * 1024;
  }

  // A 'data' listener starts the flow (buffers that waited go first). These
  // overrides replace a 'newListener' closure per socket (node:net's Readable
  // overrides on() the same way): 10,000 idle sockets paid for 10,000 closures.
  override on<K extends keyof SocketEvents & string>(event: K, listener: Listener<SocketEvents, K>): this {
    super.on(event, listener);
    if (event === 'data') this.#dataListenerAdded();
    return this;
  }
  override addListener<K extends keyof SocketEvents & string>(event: K, listener: Listener<SocketEvents, K>): this {
    return this.on(event, listener);
  }
  override prependListener<K extends keyof SocketEvents & string>(event: K, listener: Listener<SocketEvents, K>): this {
    super.prependListener(event, listener);
    if (event === 'data') this.#dataListenerAdded();
    return this;
  }

  #dataListenerAdded(): void {
    if (this.flag(Flag.Paused)) return;
    // Nothing waits and the recv is armed (a server's new connection): from
    // now on buffers go straight to 'data', so there is nothing to flush.
    if (this.#pending.length === 0 && !this.flag(Flag.ReadEnded) && this.#recvOp >= 0) return;
    process.nextTick(ReceivingSocket.#flushPendingOf, this);
  }

  /** A nextTick callback shared by every socket (no closure per call). */
  static #flushPendingOf(s: ReceivingSocket): void {
    s.#flushPending();
  }

  /** @internal the recv's completions here; the rest (connect, shutdown, close) to the Socket */
  onCompletion(opId: number, res: number, flags: number): void {
    if (opId === this.#recvOp) return this.#onRecv(res, flags);
    this.onControlCompletion(opId, res);
  }

  protected abstract onControlCompletion(opId: number, res: number): void;

  #canRead(): boolean {
    return (
      !this.flag(Flag.Destroyed | Flag.Connecting | Flag.ReadEnded | Flag.Paused | Flag.WaitingBuffers) &&
      this.fd >= 0 &&
      this.#held < this.#quota &&
      !(this.#held >= HOLD_BYTES && this.flag(Flag.DataHeld))
    );
  }

  protected armRecv(): void {
    if (this.#recvOp >= 0 || !this.#canRead() || this.ring.closed) return;
    const group = this.#groupForArm();
    // The recv ends by itself once the bytes left under the quota came in (at
    // most one buffer more): a cancel sent at the quota lands only after the
    // kernel drained the socket buffer into the shared group (~200 KiB held
    // against a 16 KiB quota). It is re-armed at its last CQE while under quota.
    if (recvLimitWorks) this.setFlag(Flag.RecvLimited);
    else this.clearFlag(Flag.RecvLimited);
    const limit = recvLimitWorks ? Math.max(1, Math.min(Math.floor(this.#quota - this.#held), 0x7fffffff)) : 0;
    this.#recvOp = this.ring.recvMulti(this, this.fd, group.id, 0, limit);
  }

  /**
   * Small receives: the group the next recv arms on. A socket whose options
   * name no buffer size receives in the default size (64 KiB) and, once its
   * last two receives fit in half of the pool's smallest class (2 KiB), moves to
   * that class's group at the next arm; a small buffer filled to the brim
   * sends it back (#onRecv). Re-arms come with group pressure (-ENOBUFS ends
   * the recv): 1,000 echoing connections kept 1,000 64 KiB buffers lent from
   * recv to send completion, the 64 KiB group (230 buffers of a 64 MiB pool)
   * ran dry every turn and each message cost five recv arms. A socket keeps
   * both groups until it closes: buffers it still holds report their release
   * to it through the group they came from.
   */
  #groupForArm(): RecvGroup {
    let group = this.#group;
    if (group === null) {
      const o = this.opts;
      if (o.readBufferSize === undefined && o.readBuffersMax === undefined) {
        group = RecvGroup.acquire(this.ring, this.pool, NO_GROUP_OPTIONS);
        if (group.smallSize > 0) this.setFlag(Flag.RecvAdaptive);
      } else {
        group = RecvGroup.acquire(this.ring, this.pool, {
          ...(o.readBufferSize !== undefined ? { bufferSize: o.readBufferSize } : {}),
          ...(o.readBuffersMax !== undefined ? { maxBuffers: o.readBuffersMax } : {}),
        });
      }
      this.#group = group;
    }
    const small = this.flag(Flag.RecvSmall);
    if (this.flag(Flag.RecvAdaptive) && small !== this.flag(Flag.RecvInSmallGroup)) {
      const options = this.#otherGroupOptions(group);
      // The first switch acquires the other group; the socket then holds both until it closes
      // (a flag, not a field: an idle socket pays nothing), so neither can dissolve meanwhile.
      let other = this.flag(Flag.RecvBothGroups) ? RecvGroup.held(this.ring, this.pool, options) : null;
      if (other === null) {
        other = RecvGroup.acquire(this.ring, this.pool, options);
        this.setFlag(Flag.RecvBothGroups);
      }
      this.#group = group = other;
      if (small) this.setFlag(Flag.RecvInSmallGroup);
      else this.clearFlag(Flag.RecvInSmallGroup);
    }
    return group;
  }

  /** The options of the small-receives group a socket is not using now (the default one's, or the small one's). */
  #otherGroupOptions(current: RecvGroup): RecvGroupOptions {
    return this.flag(Flag.RecvInSmallGroup) ? NO_GROUP_OPTIONS : { bufferSize: current.smallSize, smallReceives: true };
  }

  /** Cancels the recv in flight (its last completion still comes). */
  protected stopRecv(): void {
    if (this.#recvOp >= 0 && !this.flag(Flag.RecvCancelling)) {
      this.setFlag(Flag.RecvCancelling);
      this.ring.cancel(this.#recvOp);
    }
  }

  /** A recv is in flight. */
  protected get receiving(): boolean {
    return this.#recvOp >= 0;
  }

  #onRecv(res: number, flags: number): void {
    const final = (flags & CQE_F_MORE) === 0;
    if (final) {
      this.#recvOp = -1;
      this.clearFlag(Flag.RecvCancelling);
    }
    if (res > 0) {
      const buf = this.#group!.take(flags >>> 16, res, this);
      this.bytesRead += res;
      totals.bytesRead += res;
      totals.recvCompletions++;
      this.#held += buf.capacity;
      this.#heldBuffers++;
      // A final data completion is cut by the recv's byte limit, not by the sender: no evidence.
      if (!final && this.flag(Flag.RecvAdaptive)) this.#noteRecvSize(res);
      if (this.flag(Flag.Destroyed)) buf.release();
      else this.#deliver(buf);
      if (!final && (this.#held >= this.#quota || (this.#held >= HOLD_BYTES && this.flag(Flag.DataHeld)))) this.stopRecv();
    } else if (res === 0) {
      this.setFlag(Flag.ReadEnded);
      if (this.#pending.length === 0) this.#emitEnd();
      this.wakeIterator();
    } else if (res === -ENOBUFS) {
      if (!this.flag(Flag.Destroyed) && !this.#group!.noBuffers(this)) this.setFlag(Flag.WaitingBuffers);
    } else if (res === -EINVAL && final && this.flag(Flag.RecvLimited) && recvLimitWorks) {
      recvLimitWorks = false; // a kernel before 6.17: re-armed below without the limit
    } else if (res !== -ECANCELED) {
      this.destroy(errnoError(res, 'read'));
    }
    if (final) {
      if (this.flag(Flag.Destroyed)) this.maybeClose();
      // Ring.close() cancelled the recv: the ring is gone, so is the socket ('close', no error).
      else if (this.ring.closed) this.destroy();
      else this.armRecv();
      if (this.#recvOp < 0 && this.rare?.recvStopWaiters) this.#receiveStopped();
    }
  }

  /** Small receives (#groupForArm): whether the next arm takes the small group; a full small buffer stops the recv now. */
  #noteRecvSize(res: number): void {
    const small = this.#group!.smallSize;
    if (res <= small >> 1) {
      // Two in a row: a bulk stream's tail pieces (a 64 KiB write is one 65,483-byte loopback
      // segment and a 53-byte one) come one at a time between large ones.
      if (this.flag(Flag.RecvSmallOnce)) this.setFlag(Flag.RecvSmall);
      else this.setFlag(Flag.RecvSmallOnce);
      return;
    }
    this.clearFlag(Flag.RecvSmall | Flag.RecvSmallOnce);
    // A small buffer filled: bulk in 2 KiB pieces would cost a CQE each.
    if (res >= small && this.flag(Flag.RecvInSmallGroup)) this.stopRecv();
  }

  /**
   * @internal calls `cb` once no recv is in flight (at once if none is; after
   * pause() or destroy() its last completion ends it), with the number of
   * buffers waiting for 'data' and whether the peer's FIN came: what a
   * switch to another read path needs to take over in byte order.
   */
  [kOnReceiveStopped](cb: (waiting: number, ended: boolean) => void): void {
    if (this.#recvOp < 0) return cb(this.#pending.length, this.flag(Flag.ReadEnded));
    (this.rareState().recvStopWaiters ??= []).push(cb);
  }

  #receiveStopped(): void {
    const r = this.rare!;
    const waiters = r.recvStopWaiters!;
    r.recvStopWaiters = null;
    for (const cb of waiters) cb(this.#pending.length, this.flag(Flag.ReadEnded));
  }

  /** @internal the application released a buffer this socket received */
  onRecvBufferReleased(capacity: number): void {
    this.#held -= capacity;
    this.#heldBuffers--;
    if (this.#recvOp < 0 && !this.flag(Flag.Destroyed)) this.armRecv();
  }

  /** @internal the receive group has buffers again */
  onRecvBuffersAvailable(): void {
    this.clearFlag(Flag.WaitingBuffers);
    this.armRecv();
  }

  #flowing(): boolean {
    return !this.flag(Flag.Paused | Flag.Iterating | Flag.DataHeld) && this.listenerCount('data') > 0;
  }

  /**
   * @internal holds 'data' back while the recv stays armed: buffers wait as
   * after pause(), but a short hold costs no cancel and no re-arm. Past
   * HOLD_BYTES held the recv stops as after pause() (a paused pipe() must not
   * fill the pool up to every socket's read quota). false lets them flow again.
   */
  [kHoldData](hold: boolean): void {
    if (hold) {
      this.setFlag(Flag.DataHeld);
      return;
    }
    if (!this.flag(Flag.DataHeld)) return;
    this.clearFlag(Flag.DataHeld);
    process.nextTick(ReceivingSocket.#flushPendingOf, this);
  }

  #deliver(buf: IoBuffer): void {
    if (this.#pending.length > 0 || !this.#flowing()) {
      if (this.#pending === NO_BUFFERS) this.#pending = [];
      this.#pending.push(buf);
      this.wakeIterator();
      return;
    }
    this.#emitData(buf);
  }

  #emitData(buf: IoBuffer): void {
    try {
      this.emit('data', buf);
    } catch (err) {
      process.nextTick(rethrow, err);
    }
    // The lifetime rule: released when the handlers return unless kept or sent; a buffer the
    // handlers only lent with sendShared() is released when its last shared send completes.
    if (!buf.released && !buf.retained) buf.pool[kReleaseWhenReturned](buf);
  }

  #flushPending(): void {
    while (this.#pending.length > 0 && this.#flowing() && !this.flag(Flag.Destroyed)) this.#emitData(this.#pending.shift()!);
    if (this.flag(Flag.ReadEnded) && this.#pending.length === 0) this.#emitEnd();
    this.armRecv();
  }

  #emitEnd(): void {
    if (this.flag(Flag.EndEmitted | Flag.Destroyed)) return;
    this.setFlag(Flag.EndEmitted);
    this.emit('end');
    // read here, not kept in a field: a field costs every idle socket 8 bytes
    if (!(this.opts.allowHalfOpen ?? false)) this.end();
    this.maybeAutoDestroy();
  }

  protected wakeIterator(): void {
    const w = this.rare?.iterWake;
    if (w) {
      this.rare!.iterWake = null;
      w();
    }
  }

  /** Stops reading ('data' stops; buffers that arrive meanwhile wait). */
  pause(): this {
    this.setFlag(Flag.Paused);
    this.stopRecv();
    return this;
  }

  /** Reads again; waiting buffers are delivered first. */
  resume(): this {
    if (!this.flag(Flag.Paused)) return this;
    this.clearFlag(Flag.Paused);
    process.nextTick(ReceivingSocket.#flushPendingOf, this);
    return this;
  }

  isPaused(): boolean {
    return this.flag(Flag.Paused);
  }

  /**
   * Received buffers, each owned by the consumer until it releases it.
   * Ends at the peer's FIN; throws the socket's error; leaving the loop early
   * destroys the socket.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<IoBuffer, void, undefined> {
    this.setFlag(Flag.Iterating);
    this.armRecv();
    let finished = false;
    try {
      for (;;) {
        const buf = this.#pending.length > 0 ? this.#pending.shift() : undefined;
        if (buf !== undefined) {
          if (this.#pending.length === 0) this.armRecv();
          yield buf;
          continue;
        }
        const err = this.rare?.error;
        if (err) throw err;
        if (this.flag(Flag.ReadEnded | Flag.Destroyed)) {
          finished = true;
          this.#emitEnd();
          return;
        }
        await new Promise<void>((resolve) => (this.rareState().iterWake = resolve));
      }
    } finally {
      this.clearFlag(Flag.Iterating);
      if (!finished) this.destroy();
    }
  }

  /** destroy(): the buffers waiting go back, the group forgets a wait for buffers, the iterator wakes. */
  protected dropReceived(): void {
    const pending = this.#pending;
    this.#pending = NO_BUFFERS;
    for (const b of pending) if (!b.released) b.release();
    if (this.#group && this.flag(Flag.WaitingBuffers)) this.#group.forget(this);
    this.wakeIterator();
  }

  /** close: the socket no longer uses the thread's receive group. */
  protected leaveGroup(): void {
    const group = this.#group;
    if (group) {
      group.forget(this);
      group.release();
      this.#group = null;
    }
    if (group !== null && this.flag(Flag.RecvBothGroups)) {
      this.clearFlag(Flag.RecvBothGroups);
      const other = RecvGroup.held(this.ring, this.pool, this.#otherGroupOptions(group));
      if (other) {
        other.forget(this);
        other.release();
      }
    }
  }

  protected get receiveBuffersHeld(): number {
    return this.#heldBuffers;
  }

  protected get receiveBytesHeld(): number {
    return this.#held;
  }

  protected get readQuota(): number {
    return this.#quota;
  }
}
