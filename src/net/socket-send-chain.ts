/**
 * A socket's sends on the ring: the queue (filled by socket-send.ts's send()
 * and write()) leaves at the ring's flush as one chain of linked sends
 * (IOSQE_IO_LINK, MSG_WAITALL), and only one chain per socket is in flight,
 * so bytes leave in order. Runs of plain sends leave as one SENDV each where
 * the ring has it; sends socket-zc.ts picks go zero-copy, and their buffers
 * come back at the notification. Sends the kernel cut short or refused for
 * the moment go again (#resend); the shutdown of end() follows the last
 * chain.
 */
import { ClosedError, errnoError } from '../core/errors';
import { CQE_F_MORE, CQE_F_NOTIF, IOSQE_IO_LINK, NOTIF_USAGE_ZC_COPIED, Op, SENDV_MAX_LEN, SENDV_MAX_SEGS } from '../core/native';
import { kLend, kOnSendsDrained, kPoolId, kReturn } from '../core/symbols';
import { LEND_TRANSFER } from '../pool/pool';
import type { PreFlush } from '../ring/io-ring';
import { NO_ITEMS, droppedByDestroy, SendItem, giveList, kSendDone, recycleItem, takeList, type SendOwner } from './send-item';
import { Flag } from './socket-core';
import { rethrow } from './socket-receive';
import { ZeroCopySocket } from './socket-zc';
import type { SocketInit } from './socket';
import * as sockopt from './sockopt';
import { totals } from './stats';

const MSG_WAITALL = 0x100;
const MSG_NOSIGNAL = 0x4000;
const SHUT_WR = 1;
const ECANCELED = 125;
const ENOBUFS = 105;
const ENOMEM = 12;
const ENOTCONN = 107;
const EPIPE = 32;
const EAGAIN = 11;
/** Sends per linked chain: enough to fill a socket buffer, few enough to keep a flush small. */
const MAX_CHAIN = 32;
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const TCP_ESTABLISHED = 1;
const TCP_CLOSE_WAIT = 8;
/** a SENDV's (offset, length) pairs, filled per run (ring.sendv copies them) */
const sendvSegs = new Int32Array(2 * SENDV_MAX_SEGS);
/** a SENDV's caller buffers, per piece (null: a pool piece), filled per run */
const sendvHeld: (Uint8Array | null)[] = new Array<Uint8Array | null>(SENDV_MAX_SEGS).fill(null);
/** submit order of this thread's sends (SendItem.seq: resends go again in order); not a field per socket */
let nextSeq = 0;

/** The bytes of a caller-buffer send: the whole write, or what a short send left (a view: the rare path). */
function heldView(item: SendItem): Uint8Array {
  const d = item.data!;
  return item.off === 0 && item.len === d.length ? d : d.subarray(item.off, item.off + item.len);
}

export abstract class SendChainSocket extends ZeroCopySocket implements PreFlush, SendOwner {
  readonly #hwm: number;
  /** NO_ITEMS while empty (see takeList) */
  #sendQ: SendItem[] = NO_ITEMS;
  /** queued on the ring, until the kernel is done with the buffer (item.index is the position) */
  #inflight: SendItem[] = NO_ITEMS;
  #chainLeft = 0;
  /** bytes queued (writes waiting for a pool buffer too) and not yet completed */
  #queuedBytes = 0;

  constructor(init: SocketInit) {
    super(init);
    this.#hwm = init.options.writableHighWaterMark ?? 1024 * 1024;
  }

  /** Whether writes wait for a pool buffer (socket-send.ts): the shutdown waits for them. */
  protected abstract writesWaiting(): boolean;

  protected enqueue(item: SendItem): void {
    if (this.#sendQ === NO_ITEMS) this.#sendQ = takeList();
    this.#sendQ.push(item);
  }

  protected lastQueued(): SendItem | null {
    const q = this.#sendQ;
    return q.length > 0 ? q[q.length - 1] : null;
  }

  protected addQueued(bytes: number): void {
    this.#queuedBytes += bytes;
  }

  /** After a send or write was queued: flush soon; false at the high-water mark ('drain' follows). */
  protected afterQueue(): boolean {
    this.scheduleFlush();
    if (this.#queuedBytes >= this.#hwm) {
      this.setFlag(Flag.NeedDrain);
      return false;
    }
    return true;
  }

  protected scheduleFlush(): void {
    if (this.flag(Flag.Scheduled | Flag.Destroyed) || this.ring.closed) return;
    this.setFlag(Flag.Scheduled);
    this.ring.schedule(this);
  }

  /** @internal the ring is about to flush: queue the next chain of sends, or the shutdown. */
  preFlush(): void {
    this.clearFlag(Flag.Scheduled);
    if (this.flag(Flag.Destroyed | Flag.Connecting) || this.fd < 0) return;
    if (this.#chainLeft === 0 && this.#sendQ.length > 0) this.#submitChain();
    if (
      this.flag(Flag.Ending) &&
      !this.flag(Flag.WriteFinished) &&
      (this.rare === null || this.rare.shutdownOp < 0) &&
      this.#chainLeft === 0 &&
      this.#sendQ.length === 0 &&
      !this.writesWaiting()
    ) {
      this.rareState().shutdownOp = this.ring.shutdown(this, this.fd, SHUT_WR);
    }
  }

  #submitChain(): void {
    const ring = this.ring;
    const fd = this.fd;
    const n = Math.min(this.#sendQ.length, MAX_CHAIN);
    // A chain must not straddle two submits: the kernel ends a link at a submit's end.
    if (ring.room < n + 1) ring.flush();
    const items = this.#sendQ;
    const poolId = this.pool[kPoolId];
    const flags = MSG_WAITALL | MSG_NOSIGNAL;
    for (let i = 0; i < n; i++) {
      const item = items[i];
      if (item.write) {
        item.buf!.setLength(item.len);
        this.pool[kLend](item.buf!, LEND_TRANSFER);
      }
      // a caller's buffer goes plain: the kernel copies it (zero-copy needs pool memory)
      const zc = item.data === null && item.len > 0 && this.useZeroCopy(item.len);
      item.zc = zc;
      item.seq = nextSeq++;
      item.owner = this;
      if (this.#inflight === NO_ITEMS) this.#inflight = takeList();
      item.index = this.#inflight.length;
      this.#inflight.push(item);
    }
    // Runs of plain sends leave as one SENDV each (one SENDMSG, one
    // completion for the run: #onSendv); zero-copy sends one op each.
    const maxSegs = ring.sendvMax;
    let ops = 0;
    for (let i = 0; i < n; ops++) {
      const item = items[i];
      let j = i + 1;
      if (maxSegs > 1 && !item.zc) {
        let total = item.len;
        while (j < n && j - i < maxSegs && !items[j].zc && total + items[j].len <= SENDV_MAX_LEN) total += items[j++].len;
        if (j - i > 1) {
          const segs = sendvSegs;
          const held = sendvHeld;
          let anyHeld = false;
          for (let k = i; k < j; k++) {
            const it = items[k];
            if (it.data !== null) {
              held[k - i] = heldView(it);
              anyHeld = true;
              segs[2 * (k - i)] = 0;
            } else {
              held[k - i] = null;
              segs[2 * (k - i)] = it.buf!.offset + it.off;
            }
            segs[2 * (k - i) + 1] = it.len;
          }
          const opId = ring.sendv(item, fd, poolId, segs, j - i, total, flags, j < n ? IOSQE_IO_LINK : 0, anyHeld ? held : null);
          if (anyHeld) held.fill(null); // hold nothing past the call
          if (opId >= 0) {
            const run = takeList();
            for (let k = i; k < j; k++) {
              items[k].opId = opId;
              run.push(items[k]);
            }
            item.run = run;
            i = j;
            continue;
          }
          j = i + 1; // no aux slot free: one op per send
        }
      }
      const link = j < n ? IOSQE_IO_LINK : 0;
      if (item.data !== null) item.opId = ring.sendBuf(item, fd, heldView(item), item.len, flags, link);
      else item.opId = ring.queue(item, item.zc ? Op.SendZc : Op.Send, fd, item.len, poolId, item.buf!.offset + item.off, flags, 0, 0, -1, 0, link);
      i = j;
    }
    // Drop the chain from the queue without allocating: splice makes an array,
    // and length = 0 drops the backing store, which the next push makes again.
    if (n === items.length) {
      while (items.length > 0) items.pop();
      this.#sendQ = giveList(items);
    } else items.splice(0, n);
    totals.sendOps += ops;
    this.#chainLeft = n;
  }

  /** TCP_INFO's tcpi_state is ESTABLISHED or CLOSE_WAIT: the socket may still send. */
  #tcpCanSend(): boolean {
    try {
      const state = sockopt.getsockoptBytes(this.fd, IPPROTO_TCP, TCP_INFO, 8)[0];
      return state === TCP_ESTABLISHED || state === TCP_CLOSE_WAIT;
    } catch {
      return false;
    }
  }

  /** @internal a SendItem's completion (the first item's, for a SENDV) */
  [kSendDone](item: SendItem, res: number, flags: number): void {
    if (item.run !== null) this.#onSendv(item, res, flags);
    else this.#onSend(item, res, flags);
  }

  /**
   * A SENDV's one completion, handed to each of its sends in order as if
   * each had been its own linked SEND: the bytes go to the sends they
   * cover; the send where a short count ends gets its part, those after it
   * -ECANCELED (the link broke); an error goes to the first send and
   * -ECANCELED to the rest. #onSend then accounts, calls back, resends or
   * fails, and returns each buffer, once, as for single sends.
   *
   * A short SENDV that moved bytes sends the rest again (#resend, at the
   * chain's end, in order): Linux 6.18 often ends a SENDMSG early without an
   * error, MSG_WAITALL or not, once it had to wait for socket buffer space
   * (dozens of times per run of test/paths/forward.test.ts, where the reader
   * is slow; rarely with a fast reader). A dead socket then fails the resend
   * with its real error. A SENDV that moved nothing, or whose connection is
   * no longer open for sending (TCP_INFO), fails like a short send (EPIPE).
   */
  #onSendv(first: SendItem, res: number, flags: number): void {
    const run = first.run!;
    first.run = null;
    let total = 0;
    for (let k = 0; k < run.length; k++) total += run[k].len;
    // Cut short on a live connection: the rest goes again; on a dead one it fails as a short send.
    const again = res > 0 && res < total && this.#tcpCanSend();
    let left = res;
    for (let k = 0; k < run.length; k++) {
      const item = run[k];
      let r: number;
      if (res < 0) r = k === 0 ? res : -ECANCELED;
      else if (left < 0) r = -ECANCELED;
      else {
        r = Math.min(left, item.len);
        left = r < item.len ? -1 : left - r;
      }
      this.#onSend(item, r, flags, again && r >= 0 && r < item.len);
    }
    while (run.length > 0) run.pop();
    giveList(run);
  }

  #onSend(item: SendItem, res: number, flags: number, short = false): void {
    if (flags & CQE_F_NOTIF) {
      this.zeroCopyNotified(item.len, (res & NOTIF_USAGE_ZC_COPIED) !== 0);
      this.#finishItem(item);
      return;
    }
    item.resultDone = true;
    this.#chainLeft--;
    this.#queuedBytes -= item.len;
    let err: Error | null = null;
    if (this.#resend(item, res, short)) {
      // the bytes go again: no error, the callbacks moved with them
    } else if (res >= 0) {
      this.#countSent(item, res);
      if (res < item.len) err = errnoError(-EPIPE, 'write');
    } else if (res !== -ECANCELED) {
      err = errnoError(res, 'write');
    } else {
      err = this.#cancelError();
    }
    // The first real error; the rest of the chain ends with ECANCELED.
    if (err && res !== -ECANCELED && (this.rare === null || this.rare.sendError === null)) this.rareState().sendError = err;
    if (item.cbs) {
      for (const cb of item.cbs) {
        try {
          cb(err);
        } catch (e) {
          process.nextTick(rethrow, e);
        }
      }
      item.cbs = null;
    }
    if ((flags & CQE_F_MORE) === 0) this.#finishItem(item);
    if (this.#chainLeft === 0) this.#chainDone();
    if (this.flag(Flag.Destroyed)) this.maybeClose();
  }

  #chainDone(): void {
    const r = this.rare;
    if (r !== null && (r.cancelled !== null || r.resends !== null)) this.#endResends();
    if (r !== null && r.sendError !== null && !this.flag(Flag.Destroyed)) {
      this.destroy(r.sendError);
      return;
    }
    if (this.flag(Flag.NeedDrain) && this.#queuedBytes < this.#hwm && !this.flag(Flag.Destroyed)) {
      this.clearFlag(Flag.NeedDrain);
      this.emit('drain');
    }
    if (this.#sendQ.length > 0 || this.flag(Flag.Ending)) this.scheduleFlush();
    if (this.rare?.drainWaiters) this.#signalIfDrained();
  }

  #countSent(item: SendItem, bytes: number): void {
    this.bytesWritten += bytes;
    totals.bytesWritten += bytes;
    if (item.zc) this.zeroCopySent(bytes);
  }

  /** What a send cancelled without an error of its own fails with. */
  #cancelError(): Error {
    return this.rare?.sendError ?? this.rare?.error ?? new ClosedError('the send was cancelled');
  }

  /** The kernel is done with the item's buffer: it goes back (released: ownership went with the send). */
  #finishItem(item: SendItem): void {
    if (item.index < 0) return;
    const list = this.#inflight;
    const last = list.pop()!;
    if (last !== item) {
      list[item.index] = last;
      last.index = item.index;
    }
    item.index = -1;
    this.#returnBuf(item);
    // buf, off and share are copied into a resend: nothing holds the item now
    recycleItem(item);
    if (list.length === 0) {
      this.#inflight = giveList(list);
      if (this.rare?.drainWaiters) this.#signalIfDrained();
    }
    if (this.flag(Flag.Destroyed)) this.maybeClose();
  }

  #returnBuf(item: SendItem): void {
    if (item.share !== null && --item.share.n > 0) return;
    if (item.buf !== null) this.pool[kReturn](item.buf);
  }

  /**
   * A zero-copy send the kernel could not pin memory for (ENOMEM at the
   * memlock limit, ENOBUFS at optmem_max; after some bytes moved, MSG_WAITALL
   * shows it only as a short count) goes again as a plain send, from the first
   * byte not sent, and so do the sends its link chain cancelled behind it. The
   * socket turns to plain sends. A dead socket fails the resend with its
   * error, which is surfaced as usual. Returns true if the item goes again.
   * `short`: the send ends a SENDV that moved some bytes and came back short
   * (#onSendv): its rest goes again the same way. And a send that came back
   * -EAGAIN on a connection that can still send goes again whole: io_uring
   * retries a nonblocking socket's send when poll says it is writable, but
   * when that retry finds no room once more it hands the request to a worker
   * thread, where the nonblocking socket answers EAGAIN (6.18 with
   * COOP_TASKRUN: several times per test/paths/forward.test.ts run).
   */
  #resend(item: SendItem, res: number, short: boolean): boolean {
    if (this.flag(Flag.Destroyed)) return false;
    const failed =
      (item.zc && (res === -ENOMEM || res === -ENOBUFS || (res >= 0 && res < item.len))) ||
      (short && res >= 0 && res < item.len) ||
      (res === -EAGAIN && this.#tcpCanSend());
    // Cancelled by its chain: whether it goes again is known at the chain's
    // end (the CQE of the send that broke the chain may come after it).
    if (!failed && res !== -ECANCELED) return false;
    if (res === -EAGAIN) totals.sendRetries++;
    else if (failed && item.zc) this.zeroCopyFailed(res < 0 ? errnoError(res, 'write').code : 'a short send');
    const done = res > 0 ? res : 0;
    if (done > 0) this.#countSent(item, done);
    const again = new SendItem(item.buf, item.len - done, false);
    again.data = item.data;
    again.off = item.off + done;
    again.seq = item.seq;
    again.cbs = item.cbs;
    item.cbs = null;
    again.share = item.share ??= { n: 1 };
    again.share.n++;
    const r = this.rareState();
    if (failed) (r.resends ??= []).push(again);
    else (r.cancelled ??= []).push(again);
    return true;
  }

  /** The chain is done: its failed zero-copy sends and those it cancelled go again, in order; or the cancelled ones fail. */
  #endResends(): void {
    const r = this.rareState();
    const resends = r.resends;
    const cancelled = r.cancelled ?? [];
    r.resends = null;
    r.cancelled = null;
    if (resends !== null && !this.flag(Flag.Destroyed)) {
      const again = resends.concat(cancelled).sort((a, b) => a.seq - b.seq);
      for (const it of again) this.#queuedBytes += it.len;
      if (this.#sendQ === NO_ITEMS) this.#sendQ = takeList();
      this.#sendQ.unshift(...again);
      return;
    }
    for (const it of resends ?? []) cancelled.push(it);
    const err = this.#cancelError();
    for (const it of cancelled) {
      this.#returnBuf(it);
      if (it.cbs) for (const cb of it.cbs) process.nextTick(cb, err);
    }
  }

  protected onShutdown(res: number): void {
    this.rare!.shutdownOp = -1;
    if (this.flag(Flag.Destroyed)) return this.maybeClose();
    if (res < 0 && res !== -ENOTCONN && res !== -ECANCELED) {
      this.destroy(errnoError(res, 'shutdown'));
      return;
    }
    this.setFlag(Flag.WriteFinished);
    this.emit('finish');
    this.maybeAutoDestroy();
  }

  /**
   * destroy(): cancels the sends in flight (their buffers come back with
   * their last completions), gives back the buffers of sends never
   * submitted and fails their callbacks. Returns the error given to the
   * callbacks, made only if one waited (an Error captures a stack).
   */
  protected dropSends(err: Error | undefined): Error | undefined {
    const ring = this.ring;
    // A copy: a full submit array flushes inside cancel(), and a failure delivered there ends an item.
    // The sends of a SENDV share its op id: cancel it once (they sit side by side unless a swap moved one).
    let cancelled = -1;
    for (const item of this.#inflight.slice()) {
      if (item.resultDone || item.opId === cancelled) continue;
      cancelled = item.opId;
      ring.cancel(item.opId);
    }
    let cbErr: Error | undefined = err;
    // Queued, never submitted: give the buffers back now.
    let queued = this.#sendQ;
    this.#sendQ = NO_ITEMS;
    const r = this.rare;
    if (r !== null && (r.resends !== null || r.cancelled !== null)) {
      queued = [...(r.cancelled ?? []), ...(r.resends ?? []), ...queued];
      r.resends = null;
      r.cancelled = null;
    }
    for (const item of queued) {
      if (item.write) item.buf!.release();
      else this.#returnBuf(item);
      if (item.cbs) for (const cb of item.cbs) process.nextTick(cb, (cbErr ??= droppedByDestroy()));
    }
    this.#queuedBytes = 0;
    if (r?.drainWaiters) this.#signalIfDrained();
    return cbErr;
  }

  /**
   * @internal calls `cb` once nothing is queued or in flight to send (at
   * once if so; at destroy() too): what a path that writes the fd itself
   * (sendFile, a switch to splice) waits for to keep byte order.
   */
  [kOnSendsDrained](cb: () => void): void {
    if (this.#sendsDrained()) return cb();
    (this.rareState().drainWaiters ??= []).push(cb);
  }

  #sendsDrained(): boolean {
    if (this.flag(Flag.Destroyed)) return true;
    const r = this.rare;
    return (
      this.#queuedBytes === 0 &&
      this.#sendQ.length === 0 &&
      this.#inflight.length === 0 &&
      (r === null || (r.resends === null && r.cancelled === null))
    );
  }

  #signalIfDrained(): void {
    if (!this.#sendsDrained()) return;
    const r = this.rare!;
    const waiters = r.drainWaiters!;
    r.drainWaiters = null;
    for (const cb of waiters) cb();
  }

  protected get queuedBytes(): number {
    return this.#queuedBytes;
  }

  protected get sendsInFlight(): number {
    return this.#inflight.length;
  }
}
