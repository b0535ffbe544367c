/**
 * What the application queues on a socket. send(buf) lends the buffer to the
 * kernel for good (released when the kernel is done); sendShared(buf) lends it
 * counted; write(data) copies into pool buffers, coalescing the writes of one
 * event-loop turn, and waits for a buffer when the pool has none. All of it
 * goes into one queue, which socket-send-chain.ts sends.
 */
import { BufferForeignError, BufferLentError, BufferReleasedError, ClosedError, InvalidArgumentError } from '../core/errors';
import { kLend, kUncheckedBytes, kWriteHeld } from '../core/symbols';
import { IoBuffer } from '../pool/buffer';
import { LEND_TRANSFER } from '../pool/pool';
import { droppedByDestroy, newItem, type SendItem, type WriteCallback } from './send-item';
import { SendChainSocket } from './socket-send-chain';
import { Flag } from './socket-core';
import { totals } from './stats';

/**
 * Writes from this size on are sent from the caller's buffer ([kWriteHeld]).
 * Holding one costs ~300-400 ns of CPU (the buffer list, a reference taken
 * at submit and dropped at the completion: the generic Node-API calls), as
 * much as copying 16 KiB that are in cache, as a just-made Buffer is
 * (bench/micro/held-write.ts); below it the copy is cheaper, and small
 * writes of one turn coalesce into one pool piece. MAIO_HELD_WRITE_MIN
 * overrides it, for measurements.
 */
export const HELD_WRITE_MIN = heldWriteMin(process.env.MAIO_HELD_WRITE_MIN);

function heldWriteMin(v: string | undefined): number {
  if (v === undefined || v === '') return 16384;
  if (!/^\d{1,10}$/.test(v)) throw new InvalidArgumentError(`MAIO_HELD_WRITE_MIN must be a byte count, got '${v}'`);
  return Number(v);
}

/** A write waiting for a pool buffer. */
interface Pending {
  data: Uint8Array;
  cb: WriteCallback | null;
}

/** Empty and shared by every socket (frozen: a push into it throws). */
const NO_PENDING = Object.freeze([]) as unknown as Pending[];

export abstract class SendingSocket extends SendChainSocket {
  /** NO_PENDING until a write waits for a pool buffer */
  #overflow: Pending[] = NO_PENDING;

  /** Pool buffer size writes are copied into (read from the options: a field costs every idle socket 8 bytes). */
  #writeSize(): number {
    return Math.min(this.opts.writeBufferSize ?? 65536, this.pool.maxAllocSize);
  }

  /**
   * Sends a buffer of this socket's pool; ownership passes to the kernel (it
   * is released when the kernel is done). Returns false above the
   * high-water mark ('drain' follows). `cb` runs once the bytes are handed
   * to the kernel.
   *
   * A buffer the caller no longer owns (released, or given to another send
   * already: the natural mistake of sending one received buffer to several
   * sockets) fails this send, not the caller's event handler: `cb(err)` if
   * given, the socket is destroyed with `err` ('error', then 'close'; its
   * byte stream would have a gap) and send() returns false. Arguments of
   * the wrong kind and a socket already ended or destroyed still throw.
   */
  send(buf: IoBuffer, cb?: WriteCallback): boolean {
    if (!(buf instanceof IoBuffer)) throw new InvalidArgumentError('send() takes an IoBuffer; use write() for other data');
    this.#assertCanSend(buf);
    if (this.#overflow.length > 0) {
      // Writes waiting for pool buffers go first: keep the order (rare: the pool ran dry).
      if (buf.released || buf.lent) return this.#refuseSend(buf, 'send', cb);
      const data = Buffer.from(buf.bytes);
      buf.release();
      this.#overflow.push({ data, cb: cb ?? null }); // length > 0: not the shared one
      this.addQueued(data.length);
      return this.afterQueue();
    }
    return this.#lendAndQueue(buf, LEND_TRANSFER, 'send', cb);
  }

  /**
   * Sends a buffer that stays the caller's (counted lend, DESIGN.md rule 4):
   * it is LENT until this send completes, and may be lent to other sockets'
   * sends meanwhile (fan-out: src/paths/fan-out.ts). Returns like send(),
   * and fails like it for a buffer the caller no longer owns.
   */
  sendShared(buf: IoBuffer, cb?: WriteCallback): boolean {
    if (!(buf instanceof IoBuffer)) throw new InvalidArgumentError('sendShared() takes an IoBuffer');
    this.#assertCanSend(buf);
    if (buf.released) return this.#refuseSend(buf, 'sendShared', cb);
    if (this.#overflow.length > 0) {
      // Writes waiting for pool buffers go first: copy (the buffer may be lent already).
      return this.write(Buffer.from(this.pool[kUncheckedBytes](buf)), cb);
    }
    return this.#lendAndQueue(buf, 0, 'sendShared', cb);
  }

  #assertCanSend(buf: IoBuffer): void {
    if (buf.pool !== this.pool) throw new BufferForeignError('the buffer belongs to another pool than this socket\'s');
    if (this.flag(Flag.Destroyed)) throw new ClosedError('the socket is destroyed');
    if (this.flag(Flag.Ending)) throw new ClosedError('send() after end()');
  }

  #lendAndQueue(buf: IoBuffer, lend: number, what: 'send' | 'sendShared', cb: WriteCallback | undefined): boolean {
    try {
      this.pool[kLend](buf, lend);
    } catch (err) {
      if (err instanceof BufferReleasedError || err instanceof BufferLentError) return this.#refuseSend(buf, what, cb);
      throw err;
    }
    const item = newItem(buf, buf.length, false);
    if (cb) item.cbs = [cb];
    this.enqueue(item);
    this.addQueued(item.len);
    return this.afterQueue();
  }

  /**
   * A send of a buffer the caller does not own: the error says what to do
   * instead, and reaches `cb` and this socket's 'error' (never an exception
   * out of the 'data' handler that called send(), which would be uncaught).
   */
  #refuseSend(buf: IoBuffer, what: 'send' | 'sendShared', cb?: WriteCallback): false {
    let err: Error;
    if (buf.released) {
      err = new BufferReleasedError(
        `${what}() of a released buffer: a send() takes ownership (the buffer is released when the kernel is done), ` +
          "and a 'data' buffer is released when its handler returns unless the handler calls buf.retain(). " +
          'To send one buffer to several sockets use maio.fanOut(buf, sockets), or sendShared(buf) to all but the last and send(buf) to the last',
      );
    } else if (what === 'send') {
      err = new BufferReleasedError(
        'send() of a buffer given to another send() already (it is released when the kernel returns it). ' +
          'To send one buffer to several sockets use maio.fanOut(buf, sockets), or sendShared(buf) to all but the last ' +
          'and send(buf) to the last (the buffer is released when every send is done)',
      );
    } else {
      err = new BufferLentError(`${what}() of a buffer lent exclusively (a receive holds it)`);
    }
    if (cb) process.nextTick(cb, err);
    this.destroy(err);
    return false;
  }

  /**
   * Copies `data` into pool buffers; writes of one event-loop turn coalesce.
   * Returns false above the high-water mark ('drain' follows). `cb` runs
   * once the bytes are handed to the kernel.
   */
  write(data: Uint8Array | string, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    let bytes: Uint8Array;
    if (typeof data === 'string') bytes = Buffer.from(data, encoding ?? 'utf8');
    else if (data instanceof Uint8Array) bytes = data;
    else throw new InvalidArgumentError('write() takes a Uint8Array, Buffer or string');
    if (this.flag(Flag.Destroyed | Flag.Ending)) {
      const err = new ClosedError(this.flag(Flag.Destroyed) ? 'write() after destroy()' : 'write() after end()');
      if (cb) process.nextTick(cb, err);
      else process.nextTick(() => this.emit('error', err));
      return false;
    }
    this.addQueued(bytes.length);
    this.#copyIn(bytes, cb ?? null);
    return this.afterQueue();
  }

  /**
   * @internal write() for maio/net (node:net's contract: the caller leaves
   * the bytes alone until the callback): a Uint8Array of at least
   * HELD_WRITE_MIN bytes is sent from the caller's memory, held until the
   * send completes (one copy, the kernel's, as node:net), not copied into a
   * pool buffer first; smaller ones are copied and coalesce as in write().
   */
  [kWriteHeld](data: Uint8Array, cb?: WriteCallback): boolean {
    if (data.length < HELD_WRITE_MIN || this.#overflow.length > 0 || this.flag(Flag.Destroyed | Flag.Ending)) return this.write(data, cb);
    const item = newItem(null, data.length, false);
    item.data = data;
    if (cb) item.cbs = [cb];
    this.enqueue(item);
    this.addQueued(data.length);
    totals.heldWrites++;
    totals.heldWriteBytes += data.length;
    return this.afterQueue();
  }

  /** The last queued item if it is a write buffer with room. */
  #tail(): SendItem | null {
    const t = this.lastQueued();
    return t !== null && t.write && t.len < t.buf!.capacity ? t : null;
  }

  #copyIn(data: Uint8Array, cb: WriteCallback | null): void {
    let off = 0;
    if (this.#overflow.length === 0) {
      while (off < data.length) {
        let item = this.#tail();
        if (item === null) {
          const buf = this.pool.tryAlloc(this.#writeSize());
          if (buf === null) break;
          buf.setLength(buf.capacity);
          item = newItem(buf, 0, true);
          this.enqueue(item);
        }
        const wbuf = item.buf!;
        const n = Math.min(wbuf.capacity - item.len, data.length - off);
        wbuf.bytes.set(n === data.length && off === 0 ? data : data.subarray(off, off + n), item.len);
        item.len += n;
        off += n;
      }
    }
    if (off < data.length) {
      if (this.#overflow === NO_PENDING) this.#overflow = [];
      this.#overflow.push({ data: off === 0 ? data : data.subarray(off), cb });
      this.#waitForBuffer();
      return;
    }
    if (cb) {
      const last = this.lastQueued();
      if (last) (last.cbs ??= []).push(cb);
      else process.nextTick(cb, null);
    }
  }

  /** The pool ran out of write buffers: wait for one, then move waiting writes in. */
  #waitForBuffer(): void {
    if (this.flag(Flag.WaitingAlloc)) return;
    this.setFlag(Flag.WaitingAlloc);
    this.pool.allocWait(this.#writeSize()).then(
      (buf) => {
        this.clearFlag(Flag.WaitingAlloc);
        if (this.flag(Flag.Destroyed)) {
          buf.release();
          return;
        }
        buf.setLength(buf.capacity);
        this.enqueue(newItem(buf, 0, true));
        const waiting = this.#overflow;
        this.#overflow = NO_PENDING;
        for (let i = 0; i < waiting.length; i++) {
          if (this.#overflow.length > 0) this.#overflow.push(waiting[i]);
          else this.#copyIn(waiting[i].data, waiting[i].cb);
        }
        this.scheduleFlush();
      },
      (err: Error) => {
        this.clearFlag(Flag.WaitingAlloc);
        this.destroy(err);
      },
    );
  }

  /** Half-closes after everything queued has left (shutdown SHUT_WR through the ring). 'finish' follows. */
  end(data?: Uint8Array | string | WriteCallback, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): this {
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const closing = this.flag(Flag.Ending | Flag.Destroyed);
    if (data !== undefined && data !== null && !closing) this.write(data, encoding as BufferEncoding | undefined);
    if (cb) {
      if (this.flag(Flag.WriteFinished)) process.nextTick(cb);
      else this.once('finish', cb);
    }
    if (closing) return this;
    this.setFlag(Flag.Ending);
    this.scheduleFlush();
    return this;
  }

  protected writesWaiting(): boolean {
    return this.#overflow.length > 0;
  }

  protected override dropSends(err: Error | undefined): Error | undefined {
    let cbErr = super.dropSends(err);
    for (const p of this.#overflow) if (p.cb) process.nextTick(p.cb, (cbErr ??= droppedByDestroy()));
    this.#overflow = NO_PENDING;
    return cbErr;
  }
}
