/**
 * Socket for `maio/net`: node:net's Socket (a stream.Duplex of Buffers) over
 * a maio socket, so that pipe(), stream.pipeline, setEncoding, `for await`
 * and libraries written for node:net work unchanged.
 *
 * Copies per direction, against node:net:
 *  - receive: the kernel copies skb -> pool buffer (as node: skb -> libuv's
 *    buffer), then this adapter copies the pool buffer into a fresh Buffer the
 *    consumer may keep (node:net hands over libuv's buffer: no second copy).
 *    The pool buffer goes back to the provided ring before push() returns, so
 *    the stream's buffering never holds receive memory of the kernel's ring.
 *    Receive: 2 copies here, 1 in node:net. With the `onread` option the
 *    bytes are copied into the caller's buffer instead (no Buffer per read).
 *  - send: write() copies the Buffer into a pool buffer, the kernel copies it
 *    into the skb (node:net: only the kernel copy, from the caller's Buffer).
 *    Send: 2 copies here, 1 in node:net.
 * What maio saves here is system calls (one io_uring_enter per batch, not one
 * read/write per chunk), not copies. Code that wants the 1-copy paths uses
 * maio's own Socket (IoBuffer 'data', send(buf)) instead of this adapter.
 * Two exceptions skip the copies for chunks of 4 KiB or more, where nothing
 * can keep the chunk: pipe() into a maio/net socket as the only consumer
 * (the pool buffer itself is sent: #pushPooled, pooled-chunk.ts), and the
 * transientChunks opt-in (chunks valid until the 'data' listeners return:
 * #pushLent).
 *
 * Backpressure: push() returning false pauses the maio socket (its multishot
 * recv is cancelled; bytes wait in the kernel's socket buffer); _read()
 * resumes it. _write() completes when the maio socket's write callback fires
 * (the bytes are with the kernel), so the Writable's high-water mark bounds
 * what waits in user space.
 *
 * Connecting: names are looked up here, as node:net does (the `lookup`
 * option, 'lookup' events, and with autoSelectFamily every address in turn,
 * RFC 8305 style); each attempt is a maio socket, adopted once it connects.
 * Writes and end() before that wait in #waiting.
 *
 * ref()/unref(): passed to the maio socket (now, or when one is adopted):
 * an unref'd socket's armed receive does not hold the event loop; its
 * connect in progress and unsent writes do, as node:net's requests do. The
 * idle timer of setTimeout() is unref'd, like node's.
 */
import * as dns from 'node:dns';
import { isIP, getDefaultAutoSelectFamily as nodeAutoSelectFamily, type AddressInfo } from 'node:net';
import { Duplex, type DuplexOptions } from 'node:stream';
import { errnoError, InvalidArgumentError } from '../../core/errors';
import { kHoldData, kWriteHeld } from '../../core/symbols';
import type { IoBuffer } from '../../pool/buffer';
import type { IoPool } from '../../pool/pool';
import { connect as maioConnect } from '../server';
import type { MaioSocketOptions, Socket as MaioSocket } from '../socket';
import * as sockopt from '../sockopt';
import { totals } from '../stats';
import { HELD_WRITE_MIN } from '../socket-send';
import { forgetPooled, isPooled, isTransient, markTransient, pooledChunk, pooledPipeEnabled, takePooled } from './pooled-chunk';
import {
  AbortError,
  InvalidArgTypeError,
  InvalidArgValueError,
  InvalidIpAddressError,
  MissingArgsError,
  SocketClosedError,
  validateAbortSignal,
  validateBoolean,
  validateFunction,
  validateInt32,
  validateMsecs,
  validateNumber,
  validatePort,
} from './errors';

/** node:net's onread: received bytes are copied into `buffer`, then callback(nread, buffer); false pauses. */
export interface OnReadOptions {
  buffer: Uint8Array | (() => Uint8Array);
  callback: (bytesWritten: number, buf: Uint8Array) => boolean | void;
}

/** node:net's SocketConstructorOpts, plus maio's own socket options under `maio`. */
export interface SocketOptions extends DuplexOptions {
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  onread?: OnReadOptions;
  /**
   * maio's opt-in (not node:net's): a 'data' chunk of 4 KiB or more may be a
   * Buffer over the pool buffer it arrived in, valid only until the 'data'
   * listeners return; the pool buffer is reused after that. For listeners
   * that parse or forward each chunk and keep nothing (copy what you keep).
   * Chunks the stream itself would buffer (paused, setEncoding, a pipe()
   * to anything but a maio/net socket, a 'readable' listener) are copies.
   */
  transientChunks?: boolean;
  /** maio socket options (pool, readQuota, zeroCopy, ...), passed to the maio socket. */
  maio?: MaioSocketOptions;
  /** not supported (maio opens its own sockets): throws when set */
  fd?: number;
}

export type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
export type LookupFunction = (hostname: string, options: dns.LookupOptions, cb: LookupCallback) => void;

/** node:net's TcpNetConnectOpts (what maio supports of it). */
export interface TcpConnectOptions extends SocketOptions {
  port: number | string;
  host?: string;
  family?: number | 'IPv4' | 'IPv6';
  hints?: number;
  /** idle timeout in ms, like socket.setTimeout() (net.connect() only, as in node:net) */
  timeout?: number;
  signal?: AbortSignal;
  /** a dns.lookup-compatible function for names (default: dns.lookup) */
  lookup?: LookupFunction;
  /** try each address of a name in turn (default: getDefaultAutoSelectFamily()) */
  autoSelectFamily?: boolean;
  /** ms an attempt may take before the next address is tried (default 250, at least 10) */
  autoSelectFamilyAttemptTimeout?: number;
  localAddress?: string;
  localPort?: number;
  /** a unix domain socket path (or abstract name, '\0' first) to connect to instead of port and host */
  path?: string | null;
}

export type ConnectListener = () => void;

/** @internal how Server hands an accepted maio socket to the adapter */
export const kAttach = Symbol('maio.net.attach');
/** @internal connect() with arguments normalized once (net.connect) */
export const kConnect = Symbol('maio.net.connect');

// ---- autoSelectFamily defaults (node:net's, kept per module) ------------------

let autoSelectFamilyDefault = nodeAutoSelectFamily();
let autoSelectFamilyAttemptTimeoutDefault = 250;

export function getDefaultAutoSelectFamily(): boolean {
  return autoSelectFamilyDefault;
}
export function setDefaultAutoSelectFamily(value: boolean): void {
  validateBoolean(value, 'value');
  autoSelectFamilyDefault = value;
}
export function getDefaultAutoSelectFamilyAttemptTimeout(): number {
  return autoSelectFamilyAttemptTimeoutDefault;
}
/** ms, at least 10 (smaller values are raised to 10, as in node:net). */
export function setDefaultAutoSelectFamilyAttemptTimeout(value: number): void {
  validateInt32(value, 'value', 1);
  autoSelectFamilyAttemptTimeoutDefault = Math.max(value, 10);
}

type Pending = () => void;
type Address = { address: string; family: 4 | 6 };
/** How one connect() goes: set once its arguments are checked. */
interface Dial {
  port: number;
  localAddress: string | undefined;
  localPort: number | undefined;
  attemptTimeout: number;
  errors: Error[];
}

export class Socket extends Duplex {
  /** True from connect() until 'connect' (node:net's property). */
  connecting = false;
  /** The idle timeout in ms set by setTimeout() (undefined when off). */
  timeout: number | undefined = undefined;
  /** Every address tried when autoSelectFamily had several (`address:port`), like node:net's. */
  autoSelectFamilyAttemptedAddresses: string[] | undefined = undefined;
  #inner: MaioSocket | null = null;
  /** the maio socket of the connect attempt in flight (adopted into #inner once it connects) */
  #dialing: MaioSocket | null = null;
  /** connect() was called (or the socket was accepted): node:net has a handle from then on */
  #opened = false;
  #innerClosed = false;
  #innerError = false;
  #maioOpts: MaioSocketOptions;
  /** writes, end and reads that came before the connection */
  #waiting: Pending[] = [];
  #finalCb: ((err?: Error | null) => void) | null = null;
  /** setTimeout() before there is a maio socket to watch: a plain unref'd timer */
  #idleTimer: NodeJS.Timeout | null = null;
  #signal: AbortSignal | null = null;
  #onread: OnReadOptions | null = null;
  /** onread's callback returned false (or pause()): reading stays off until resume() */
  #onreadStopped = false;
  /** bytes of a received buffer that came after onread's callback said stop */
  #onreadRest: Buffer | null = null;
  /** 'end' came (the peer's FIN): without allowHalfOpen, later writes fail with EPIPE */
  #peerEnded = false;
  /** unref() was called (and no ref() since): passed on to each maio socket adopted */
  #unref = false;
  /** pipe()'s 'data' listener of the last pipe() to a maio/net socket (the fast path's consumer) */
  #pipeOnData: ((...args: any[]) => void) | null = null;
  /** where that pipe() writes */
  #pipeDest: Socket | null = null;
  /** pipe() paused this stream and the maio socket with it (see pause()) */
  #pipePaused = false;
  #transient = false;
  /** transient chunks a listener gave back with unshift(): held until the stream's buffer is empty */
  #lentHeld: IoBuffer[] | null = null;

  constructor(options?: SocketOptions | number) {
    // node:net's legacy form: a number is a file descriptor
    const o: SocketOptions = typeof options === 'number' ? { fd: options } : { ...(options as SocketOptions) };
    if (o.objectMode) throw new InvalidArgValueError('options.objectMode', o.objectMode, 'is not supported');
    if (o.readableObjectMode || o.writableObjectMode) {
      const key = o.readableObjectMode ? 'readableObjectMode' : 'writableObjectMode';
      throw new InvalidArgValueError(`options.${key}`, o[key], 'is not supported');
    }
    if (o.keepAliveInitialDelay !== undefined) validateNumber(o.keepAliveInitialDelay, 'options.keepAliveInitialDelay');
    if (o.fd !== undefined) {
      validateInt32(o.fd, 'fd', 0);
      throw new InvalidArgumentError('maio/net does not adopt file descriptors (options.fd)');
    }
    if (o.signal) validateAbortSignal(o.signal, 'signal');
    // The signal is handled below, once this object's fields exist (the Duplex would destroy the
    // stream from inside its constructor); the Duplex ends the writable side after 'end' unless
    // allowHalfOpen, as node:net's does.
    if (o.transientChunks !== undefined) validateBoolean(o.transientChunks, 'options.transientChunks');
    const { maio, noDelay, keepAlive, keepAliveInitialDelay, allowHalfOpen, fd: _fd, signal, onread, transientChunks, ...duplex } = o;
    super({ ...duplex, allowHalfOpen: allowHalfOpen === true, emitClose: false, autoDestroy: true });
    this.#maioOpts = { ...maio };
    this.#transient = transientChunks === true;
    if (noDelay !== undefined) this.#maioOpts.noDelay = noDelay;
    if (keepAlive !== undefined) {
      this.#maioOpts.keepAlive = keepAlive;
      if (keepAliveInitialDelay !== undefined) this.#maioOpts.keepAliveInitialDelay = Math.floor(Math.max(0, keepAliveInitialDelay) / 1000);
    }
    // node:net ignores an onread that is not { buffer: Uint8Array | function, callback: function }
    if (
      typeof onread === 'object' &&
      onread !== null &&
      (onread.buffer instanceof Uint8Array || typeof onread.buffer === 'function') &&
      typeof onread.callback === 'function'
    ) {
      this.#onread = onread;
    }
    if (signal) this.#watchSignal(signal);
    this.on('end', () => (this.#peerEnded = true));
  }

  /** Destroys with node's AbortError when the signal aborts (already aborted: on the next tick). */
  #watchSignal(signal: AbortSignal): void {
    if (signal.aborted) {
      process.nextTick(() => this.destroy(new AbortError(signal.reason)));
      return;
    }
    this.#signal = signal;
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => {
    this.destroy(new AbortError(this.#signal?.reason));
  };

  /** @internal adopts a connected maio socket (accepted by a Server, or a connect attempt that succeeded) */
  [kAttach](inner: MaioSocket): void {
    this.#inner = inner;
    this.#opened = true;
    this.connecting = false;
    inner.on('data', this.#onData);
    inner.on('end', () => {
      this.push(null);
      // As node:net: with nothing buffered, 'end' comes even if nobody reads (so a write-only
      // user of the socket still sees it close after the peer's FIN).
      this.read(0);
    });
    inner.on('error', (err: Error) => {
      this.#innerError = true;
      this.destroy(err);
    });
    inner.on('close', () => {
      this.#innerClosed = true;
      // A clean close comes after end + finish: the Duplex destroys itself once the reader has
      // read everything. Only a close the adapter did not see coming needs a destroy here.
      if (!this.destroyed && !this.#innerError && !this.#pushedEnd()) this.destroy();
    });
    inner.on('finish', () => {
      const cb = this.#finalCb;
      this.#finalCb = null;
      cb?.();
    });
    // the idle timeout lives on the maio socket (src/net/idle.ts: one coarse check per thread)
    inner.on('timeout', () => this.emit('timeout'));
    this.#clearIdleTimer();
    if (this.timeout !== undefined) inner.setTimeout(this.timeout);
    if (this.#unref) inner.unref();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const f of waiting) f();
    // Until the stream asks for data (a reader attaches), let the readable buffer fill to its mark.
    if (this.readableLength >= this.readableHighWaterMark || this.#onreadStopped) inner.pause();
  }

  #pushedEnd(): boolean {
    return (this as unknown as { _readableState: { ended: boolean } })._readableState.ended;
  }

  /**
   * One copy out of the pool: the Buffer is the consumer's, the pool buffer
   * goes back now. No copy when the one consumer is pipe() to a maio/net
   * socket (#pushPooled).
   */
  readonly #onData = (buf: IoBuffer): void => {
    if (this.#pipeIsConsumer() && this.#canPassPooled(buf)) {
      this.#pushPooled(buf);
      return;
    }
    if (this.#transient && this.#canLend(buf)) {
      this.#pushLent(buf);
      return;
    }
    const bytes = buf.bytes;
    if (this.#onread !== null) {
      this.#copyToOnread(bytes);
      return;
    }
    const chunk = Buffer.allocUnsafe(bytes.length);
    chunk.set(bytes);
    if (!this.push(chunk)) this.#inner!.pause();
  };

  /**
   * Whether push() would hand a chunk (of 4 KiB or more) straight to pipe()'s listener to a
   * maio/net socket and to nothing else: flowing, nothing buffered, not
   * inside _read() (readable's own condition for emitting at once), no
   * decoder, and pipe()'s listener the only 'data' listener; the destination
   * writable, connected, on the same pool. (The internals read are Node's
   * ReadableState fields, as #pushedEnd reads `ended`.)
   */
  #canPassPooled(buf: IoBuffer): boolean {
    return this.#emitsAtOnce(buf) && this.#pipeDest!.#takesPooled(buf);
  }

  /**
   * push() would hand `buf` to the 'data' listeners at once (flowing, nothing
   * buffered, outside _read(), no decoder, no 'readable' listener, no onread)
   * and it is large enough that a view is cheaper than a copy.
   */
  #emitsAtOnce(buf: IoBuffer): boolean {
    const rs = (this as unknown as { _readableState: ReadableInternals })._readableState;
    return (
      buf.length >= POOLED_MIN_BYTES &&
      rs.flowing === true &&
      rs.length === 0 &&
      rs.sync === false &&
      rs.decoder === null &&
      !rs.ended &&
      !rs.destroyed &&
      (this as unknown as { _events: Record<string, unknown> })._events.readable === undefined &&
      this.#onread === null
    );
  }

  /** transientChunks: push() would emit the chunk to 'data' listeners at once, and nothing else sees it. */
  #canLend(buf: IoBuffer): boolean {
    const rs = (this as unknown as { _readableState: ReadableInternals & { pipes: unknown[] } })._readableState;
    if (this.#lentHeld !== null && rs.length === 0) this.#releaseLent();
    return rs.pipes.length === 0 && this.#emitsAtOnce(buf);
  }

  /**
   * transientChunks: the chunk is a Buffer over the pool buffer, which the
   * maio socket releases when this handler returns (after the 'data'
   * listeners). A chunk a listener gave back with unshift() is held until
   * the stream's buffer is empty again (it has been read once more).
   */
  #pushLent(buf: IoBuffer): void {
    const bytes = buf.bytes;
    const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    markTransient(chunk);
    totals.streamLentChunks++;
    const more = this.push(chunk);
    if (this.readableLength > 0) (this.#lentHeld ??= []).push(buf.retain());
    if (!more) this.#inner?.pause();
  }

  #releaseLent(): void {
    const held = this.#lentHeld;
    this.#lentHeld = null;
    if (held !== null) for (const b of held) if (!b.released && !b.lent) b.release();
  }

  /** pipe()'s listener to a maio/net socket is the only 'data' listener. */
  #pipeIsConsumer(): boolean {
    return (
      this.#pipeOnData !== null && pooledPipeEnabled() && (this as unknown as { _events: Record<string, unknown> })._events.data === this.#pipeOnData
    );
  }

  /** This socket would take `buf` in write() now: its own _write, connected, writable, same pool. */
  #takesPooled(buf: IoBuffer): boolean {
    const inner = this.#inner;
    return inner !== null && !inner.destroyed && !inner.writableEnded && inner.pool === buf.pool && this.writable && !this.#peerEnded;
  }

  /**
   * The pipe fast path: the chunk is a Buffer over the pool buffer, written
   * by pipe()'s listener into the destination, whose _write sends the pool
   * buffer itself. Taken at once, it is lent to that send; queued in the
   * destination's Writable buffer, it is held (retain) until _write sends it
   * or _destroy drops it. Anything else (never seen): held for good.
   */
  #pushPooled(buf: IoBuffer): void {
    const chunk = pooledChunk(buf);
    const before = this.readableLength;
    totals.streamPooledChunks++;
    const more = this.push(chunk);
    if (isPooled(chunk)) {
      buf.retain();
      if (this.readableLength !== before || !this.#pipeDest!.#holds(chunk)) {
        forgetPooled(chunk);
        totals.streamPooledStranded++;
      }
    }
    if (!more) this.#inner?.pause();
  }

  /** `chunk` waits in this socket's Writable buffer. */
  #holds(chunk: Uint8Array): boolean {
    const buffered = (this as unknown as { _writableState: WritableInternals })._writableState.buffered;
    return buffered.length > 0 && buffered[buffered.length - 1]?.chunk === chunk;
  }

  /**
   * onread: the bytes go into the caller's buffer, as many calls as it takes.
   * When the callback returns false the rest of this pool buffer waits (a
   * copy) and reading stops until resume().
   */
  #copyToOnread(bytes: Uint8Array): void {
    const { buffer, callback } = this.#onread!;
    let at = 0;
    while (at < bytes.length && !this.destroyed) {
      const target = typeof buffer === 'function' ? buffer() : buffer;
      const n = Math.min(target.length, bytes.length - at);
      target.set(bytes.subarray(at, at + n));
      at += n;
      if (n === 0 || callback.call(this, n, target) === false) {
        this.#stopOnread();
        break;
      }
    }
    if (at < bytes.length && !this.destroyed) this.#onreadRest = Buffer.from(bytes.subarray(at));
  }

  #stopOnread(): void {
    this.#onreadStopped = true;
    this.#inner?.pause();
  }

  #startOnread(): void {
    if (!this.#onreadStopped) return;
    this.#onreadStopped = false;
    const rest = this.#onreadRest;
    this.#onreadRest = null;
    if (rest !== null) this.#copyToOnread(rest);
    if (!this.#onreadStopped && this.#inner?.isPaused()) this.#inner.resume();
  }

  /**
   * With pipe() to a maio/net socket as the only consumer, the maio socket
   * holds its 'data' while the stream is paused: pipe() pauses at every
   * chunk above the destination's high-water mark (16 KiB; a receive is up
   * to 64 KiB), and what arrives meanwhile then waits as pool buffers in the
   * maio socket (its recv stays armed, up to the read quota), not as copies
   * in this stream's buffer, and passes without a copy after resume().
   */
  override pause(): this {
    if (this.#onread !== null) this.#stopOnread();
    else if (this.#pipeIsConsumer() && this.#inner !== null) {
      this.#pipePaused = true;
      this.#inner[kHoldData](true);
    }
    return super.pause();
  }

  override resume(): this {
    if (this.#onread !== null) this.#startOnread();
    else this.#releaseHold();
    return super.resume();
  }

  #releaseHold(): void {
    if (!this.#pipePaused) return;
    this.#pipePaused = false;
    this.#inner?.[kHoldData](false);
  }

  override read(size?: number): unknown {
    if (this.#onread !== null && !this.connecting) this.#startOnread();
    return super.read(size);
  }

  /**
   * As node:net: once the peer's FIN has ended this side too (no
   * allowHalfOpen), a write fails with EPIPE and destroys the socket, rather
   * than the stream's ERR_STREAM_WRITE_AFTER_END.
   */
  override write(chunk: any, cb?: (err?: Error | null) => void): boolean;
  override write(chunk: any, encoding?: BufferEncoding, cb?: (err?: Error | null) => void): boolean;
  override write(chunk: any, encoding?: any, cb?: any): boolean {
    if (this.#peerEnded && this.writableEnded && !this.allowHalfOpen) {
      const done = typeof encoding === 'function' ? encoding : cb;
      const err = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' });
      if (typeof done === 'function') process.nextTick(done, err);
      this.destroy(err);
      return false;
    }
    return super.write(chunk, encoding, cb);
  }

  /**
   * node's pipe(); when `dest` is a maio/net socket (not a subclass that
   * overrides writing), remembers pipe()'s 'data' listener: while it is the
   * only consumer, chunks pass as pool buffers (#pushPooled).
   */
  override pipe<T extends NodeJS.WritableStream>(dest: T, options?: { end?: boolean }): T {
    const before = this.listeners('data');
    const r = super.pipe(dest, options);
    if (isPlainSocket(dest)) {
      const added = this.listeners('data').filter((f) => !before.includes(f));
      this.#pipeOnData = added.length === 1 ? (added[0] as (...args: any[]) => void) : null;
      this.#pipeDest = this.#pipeOnData === null ? null : dest;
    }
    return r;
  }

  override _read(): void {
    const inner = this.#inner;
    if (inner === null || this.#onreadStopped) return;
    if (this.#pipePaused) {
      // the stream reads ahead while paused (below its high-water mark): not while pipe() paused it
      if (!this.readableFlowing && this.#pipeIsConsumer()) return;
      this.#releaseHold();
    }
    if (inner.isPaused()) inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (inner === null) {
      this.#waiting.push(() => this._write(chunk, _encoding, cb));
      return;
    }
    const pooled = takePooled(chunk);
    if (pooled !== undefined) this.#sendPooled(inner, pooled, cb);
    else this.#writeChunk(inner, chunk, cb);
  }

  /** A plain chunk: held from HELD_WRITE_MIN bytes on, unless its memory goes back to a pool soon (transientChunks). */
  #writeChunk(inner: MaioSocket, chunk: Buffer, cb?: (err?: Error | null) => void): void {
    if (chunk.length >= HELD_WRITE_MIN && !isTransient(chunk)) inner[kWriteHeld](chunk, cb);
    else inner.write(chunk, cb);
  }

  /**
   * A chunk of the pipe fast path: its pool buffer goes out as it is (the
   * send owns it and releases it when the kernel is done). On a socket that
   * is closing (or another pool) it is written as a copy, which write()
   * takes or fails as usual, and a held buffer goes back.
   */
  #sendPooled(inner: MaioSocket, buf: IoBuffer, cb?: (err?: Error | null) => void): void {
    if (inner.pool === buf.pool && !inner.destroyed && !inner.writableEnded) {
      inner.send(buf, cb);
      return;
    }
    inner.write(Buffer.from(buf.bytes), cb);
    if (buf.retained) buf.release();
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (inner === null) {
      this.#waiting.push(() => this._writev(chunks, cb));
      return;
    }
    const last = chunks.length - 1;
    for (let i = 0; i <= last; i++) {
      const chunk = chunks[i].chunk;
      const done = i === last ? cb : undefined;
      const pooled = takePooled(chunk);
      if (pooled !== undefined) this.#sendPooled(inner, pooled, done);
      else this.#writeChunk(inner, chunk, done);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (inner === null) {
      this.#waiting.push(() => this._final(cb));
      return;
    }
    if (inner.writableFinished) return cb();
    this.#finalCb = cb;
    inner.end();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.connecting = false;
    this.#clearIdleTimer();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = null;
    this.#dropPooled();
    this.#releaseLent();
    const inner = this.#inner ?? this.#dialing;
    this.#dialing = null;
    // 'close' a turn later, like node:net's (after the handle's close callback): 'error' comes first
    // and code that awaits 'error' and then listens for 'close' still sees it. node:net passes
    // hadError only once connect() gave the socket a handle.
    const opened = this.#opened;
    this.#opened = false;
    const done = (): void => {
      cb(err);
      setImmediate(() => (opened ? this.emit('close', err != null) : this.emit('close')));
    };
    this.#waiting = [];
    if (inner === null || (inner === this.#inner && this.#innerClosed)) return done();
    // Every pool buffer of this socket is back once the maio socket has closed.
    inner.once('close', done);
    inner.destroy();
  }

  /** Pool buffers of fast-path chunks still in the Writable's buffer: nobody will send them now. */
  #dropPooled(): void {
    for (const entry of (this as unknown as { _writableState: WritableInternals })._writableState.buffered) {
      const buf = entry ? takePooled(entry.chunk) : undefined;
      if (buf !== undefined && !buf.released && !buf.lent) buf.release();
    }
  }

  // ---- connect --------------------------------------------------------------

  /** connect(port[, host][, cb]), connect(options[, cb]) or connect(path[, cb]), like node:net. */
  connect(...args: unknown[]): this {
    const [o, cb] = normalizeConnectArgs(args);
    return this[kConnect](o, cb);
  }

  /** @internal the arguments checked in node:net's order, so the same bad call throws the same error */
  [kConnect](o: TcpConnectOptions, cb: ConnectListener | undefined): this {
    if (cb) this.once('connect', cb);
    if (o.port === undefined && o.path == null) throw new MissingArgsError('options', 'port', 'path');
    if (this.connecting || (this.#inner !== null && !this.destroyed)) {
      throw new InvalidArgumentError('maio/net: the socket is connected or connecting already');
    }
    if (this.destroyed) this.#reuse();
    // node:net: a path that is truthy makes a unix socket connection (an empty one falls through to TCP)
    if (o.path) {
      if (typeof o.path !== 'string') throw new InvalidArgTypeError('options.path', 'string', o.path);
      const path = o.path;
      if (o.noDelay !== undefined) this.#maioOpts.noDelay = o.noDelay;
      this.#opened = true;
      this.connecting = true;
      this.#refreshIdleTimer();
      process.nextTick(() => {
        if (this.connecting) this.#connectPath(path);
      });
      return this;
    }

    const { localAddress, localPort } = o;
    if (localAddress && !isIP(localAddress)) throw new InvalidIpAddressError(localAddress);
    if (localPort) validateNumber(localPort, 'options.localPort');
    if (o.port !== undefined && typeof o.port !== 'number' && typeof o.port !== 'string') {
      throw new InvalidArgTypeError('options.port', ['number', 'string'], o.port);
    }
    const port = o.port === undefined ? 0 : validatePort(o.port);
    const autoSelectFamily = o.autoSelectFamily ?? autoSelectFamilyDefault;
    if (o.autoSelectFamily != null) validateBoolean(o.autoSelectFamily, 'options.autoSelectFamily');
    let attemptTimeout = autoSelectFamilyAttemptTimeoutDefault;
    if (o.autoSelectFamilyAttemptTimeout != null) {
      validateInt32(o.autoSelectFamilyAttemptTimeout, 'options.autoSelectFamilyAttemptTimeout', 1);
      attemptTimeout = Math.max(o.autoSelectFamilyAttemptTimeout, 10);
    }
    if (o.noDelay !== undefined) this.#maioOpts.noDelay = o.noDelay;
    if (o.keepAlive !== undefined) {
      this.#maioOpts.keepAlive = o.keepAlive;
      if (o.keepAliveInitialDelay !== undefined) this.#maioOpts.keepAliveInitialDelay = Math.floor(o.keepAliveInitialDelay / 1000);
    }
    const dial: Dial = { port, localAddress: localAddress || undefined, localPort: localPort || undefined, attemptTimeout, errors: [] };
    this.#opened = true;
    this.connecting = true;
    this.#refreshIdleTimer();

    const host = o.host || 'localhost';
    const literal = isIP(host);
    if (literal) {
      process.nextTick(() => {
        if (this.connecting) this.#attempt([{ address: host, family: literal as 4 | 6 }], 0, dial);
      });
      return this;
    }
    if (o.lookup != null) validateFunction(o.lookup, 'options.lookup');
    const family = o.family === 'IPv4' ? 4 : o.family === 'IPv6' ? 6 : o.family;
    const dnsOptions: dns.LookupOptions & { family?: unknown } = { family: family as number | undefined, hints: o.hints || 0 };
    if (family !== 4 && family !== 6 && dnsOptions.hints === 0) dnsOptions.hints = dns.ADDRCONFIG;
    const lookup: LookupFunction = o.lookup ?? (dns.lookup as unknown as LookupFunction);
    if (family !== 4 && family !== 6 && !localAddress && autoSelectFamily) {
      dnsOptions.all = true;
      lookup(host, dnsOptions, (err, addresses, fam) => this.#onLookupAll(host, err, addresses, fam, dial));
    } else {
      lookup(host, dnsOptions, (err, address, fam) => this.#onLookupOne(host, err, address as string, fam, dial));
    }
    return this;
  }

  /** A reconnect after close, as node:net allows: the stream starts over. */
  #reuse(): void {
    (this as unknown as { _undestroy(): void })._undestroy();
    this.#inner = null;
    this.#innerClosed = false;
    this.#innerError = false;
    this.#finalCb = null;
    this.#onreadStopped = false;
    this.#onreadRest = null;
    this.#peerEnded = false;
  }

  #onLookupOne(host: string, err: NodeJS.ErrnoException | null, address: string, family: number | undefined, dial: Dial): void {
    this.emit('lookup', err, address, family, host);
    if (!this.connecting) return;
    if (err) return this.#failSoon(err);
    if (!isIP(address)) return this.#failSoon(new InvalidIpAddressError(address));
    if (family !== 4 && family !== 6) return this.#failSoon(new InvalidAddressFamilyError(family, host, dial.port));
    this.#attempt([{ address, family }], 0, dial);
  }

  /**
   * autoSelectFamily: every address, the families alternating from the first
   * one's (RFC 8305), each tried until one connects; one address: a plain connect.
   */
  #onLookupAll(host: string, err: NodeJS.ErrnoException | null, found: string | dns.LookupAddress[], fam: number | undefined, dial: Dial): void {
    if (!this.connecting) return;
    if (err) {
      this.emit('lookup', err, undefined, undefined, host);
      return this.#failSoon(err);
    }
    // asked for all, but a lookup may still answer with one address (node:net fails on that)
    const list = Array.isArray(found) ? found : [{ address: found, family: fam ?? 0 }];
    const groups: Address[][] = [[], []];
    let first: 4 | 6 | 0 = 0;
    for (const { address, family } of list) {
      this.emit('lookup', null, address, family, host);
      if (!this.connecting) return;
      if (!isIP(address) || (family !== 4 && family !== 6)) continue;
      if (first === 0) first = family;
      const group = groups[family === first ? 0 : 1];
      if (!group.some((a) => a.address === address)) group.push({ address, family });
    }
    if (groups[0].length === 0) {
      const a = list[0];
      if (a === undefined || !isIP(a.address)) return this.#failSoon(new InvalidIpAddressError(a?.address));
      return this.#failSoon(new InvalidAddressFamilyError(a.family, host, dial.port));
    }
    const toTry: Address[] = [];
    for (let i = 0; i < Math.max(groups[0].length, groups[1].length); i++) {
      if (i < groups[0].length) toTry.push(groups[0][i]);
      if (i < groups[1].length) toTry.push(groups[1][i]);
    }
    if (toTry.length > 1) this.autoSelectFamilyAttemptedAddresses = [];
    this.#attempt(toTry, 0, dial);
  }

  /** Errors found while connecting come on the next tick, after the caller has its listeners on. */
  #failSoon(err: Error): void {
    process.nextTick(() => this.destroy(err));
  }

  /**
   * Connects to addresses[i] with a maio socket; on failure (or, with more
   * addresses left, after attemptTimeout ms) tries the next one. All failed:
   * node:net's AggregateError (code of the first).
   */
  #attempt(addresses: Address[], i: number, dial: Dial): void {
    const { address, family } = addresses[i];
    const several = addresses.length > 1;
    const last = i === addresses.length - 1;
    let inner: MaioSocket;
    try {
      inner = maioConnect({
        ...this.#maioOpts,
        allowHalfOpen: true, // the Duplex decides when to end (see the constructor)
        port: dial.port,
        host: address,
        family,
        // (with several addresses there is no localAddress: only a port is bound, on each family's any address)
        localAddress: dial.localAddress,
        localPort: dial.localPort,
      });
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    this.#dialing = inner;
    this.autoSelectFamilyAttemptedAddresses?.push(`${address}:${dial.port}`);
    this.emit('connectionAttempt', address, dial.port, family);
    let timer: NodeJS.Timeout | null = null;
    const next = (err: Error): void => {
      dial.errors.push(err);
      if (!last && this.connecting) this.#attempt(addresses, i + 1, dial);
      else this.destroy(several ? aggregate(dial.errors) : err);
    };
    const onError = (err: Error): void => {
      if (timer) clearTimeout(timer);
      inner.off('connect', onConnect);
      if (this.#dialing !== inner) return;
      this.#dialing = null;
      this.emit('connectionAttemptFailed', address, dial.port, family, err);
      next(err);
    };
    const onConnect = (): void => {
      if (timer) clearTimeout(timer);
      inner.off('error', onError);
      this.#dialing = null;
      this[kAttach](inner);
      this.emit('connect');
      this.emit('ready');
    };
    inner.once('error', onError);
    inner.once('connect', onConnect);
    if (several && !last) {
      timer = setTimeout(() => {
        if (this.#dialing !== inner) return;
        this.#dialing = null;
        inner.off('connect', onConnect);
        inner.destroy();
        this.emit('connectionAttemptTimeout', address, dial.port, family);
        const err = Object.assign(errnoError(-110, 'connect'), { address, port: dial.port });
        err.message = `connect ${err.code} ${address}:${dial.port}`;
        next(err);
      }, dial.attemptTimeout);
    }
  }

  /** A unix domain socket connection: one attempt, node:net's errors (connect ENOENT /path). */
  #connectPath(path: string): void {
    let inner: MaioSocket;
    try {
      inner = maioConnect({ ...this.#maioOpts, allowHalfOpen: true, path });
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    this.#dialing = inner;
    const onError = (err: Error): void => {
      inner.off('connect', onConnect);
      if (this.#dialing !== inner) return;
      this.#dialing = null;
      this.destroy(err);
    };
    const onConnect = (): void => {
      inner.off('error', onError);
      this.#dialing = null;
      this[kAttach](inner);
      this.emit('connect');
      this.emit('ready');
    };
    inner.once('error', onError);
    inner.once('connect', onConnect);
  }

  // ---- node:net properties ---------------------------------------------------
  // Each getter reads private fields only of a real instance (`#inner in this`): node:net's
  // getters return undefined on Socket.prototype, and code that walks prototypes must not throw.

  /** @deprecated node:net's old name for connecting */
  get _connecting(): boolean {
    return this.connecting;
  }

  get pending(): boolean {
    return !(#inner in this) || this.#inner === null || this.connecting;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The maio socket underneath (null before 'connect'): IoBuffer-level access, stats(). */
  get maioSocket(): MaioSocket | null {
    return #inner in this ? this.#inner : null;
  }

  get remoteAddress(): string | undefined {
    return this.maioSocket?.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.maioSocket?.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.maioSocket?.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.maioSocket?.localAddress;
  }
  get localPort(): number | undefined {
    return this.maioSocket?.localPort;
  }
  get localFamily(): string | undefined {
    const a = this.maioSocket?.address();
    return a && 'family' in a ? a.family : undefined;
  }
  address(): AddressInfo | Record<string, never> {
    return this.maioSocket?.address() ?? {};
  }

  /** Bytes received (node:net counts what the handle read). */
  get bytesRead(): number | undefined {
    if (!(#inner in this)) return undefined;
    return this.#inner?.bytesRead ?? 0;
  }
  /** Bytes sent plus bytes still buffered for sending, as node:net counts. */
  get bytesWritten(): number | undefined {
    if (!(#inner in this)) return undefined;
    return (this.#inner?.bytesWritten ?? 0) + this.writableLength;
  }
  /** @deprecated node:net's old name for writableLength (undefined before connect(), as there) */
  get bufferSize(): number | undefined {
    if (!(#inner in this) || !this.#opened) return undefined;
    return this.writableLength;
  }

  /** The pool of the maio socket underneath (null before 'connect'). */
  get pool(): IoPool | null {
    return this.maioSocket?.pool ?? null;
  }

  setNoDelay(noDelay = true): this {
    this.#maioOpts.noDelay = Boolean(noDelay);
    if (this.#inner && !this.#inner.destroyed) this.#inner.setNoDelay(Boolean(noDelay));
    return this;
  }

  /** initialDelay in ms, like node:net (the kernel takes whole seconds; below 0 counts as 0, as there). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    const secs = Math.max(0, Math.trunc((Number(initialDelay) || 0) / 1000));
    this.#maioOpts.keepAlive = Boolean(enable);
    this.#maioOpts.keepAliveInitialDelay = secs;
    if (this.#inner && !this.#inner.destroyed) this.#inner.setKeepAlive(Boolean(enable), secs);
    return this;
  }

  /**
   * Emits 'timeout' after `ms` without bytes moving in either direction (0
   * turns it off), like node:net: the socket stays open; the listener
   * decides. On a connection it is the maio socket's setTimeout() (one coarse
   * check per thread, unref'd: fires between ms and ms + ms/4 after the last
   * activity); before one (never connected, or still connecting) a plain
   * unref'd timer, as node:net's.
   */
  setTimeout(ms: number, cb?: () => void): this {
    ms = validateMsecs(ms);
    if (cb !== undefined) validateFunction(cb, 'callback');
    const inner = this.#inner;
    if (ms === 0) {
      this.timeout = undefined;
      this.#clearIdleTimer();
      if (cb) this.removeListener('timeout', cb);
      if (inner && !inner.destroyed) inner.setTimeout(0);
      return this;
    }
    this.timeout = ms;
    if (cb) this.once('timeout', cb);
    if (this.destroyed) return this;
    if (inner && !inner.destroyed) inner.setTimeout(ms);
    else this.#refreshIdleTimer();
    return this;
  }

  #refreshIdleTimer(): void {
    this.#clearIdleTimer();
    if (this.timeout === undefined || this.#inner !== null) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      this.emit('timeout');
    }, this.timeout);
    this.#idleTimer.unref();
  }

  #clearIdleTimer(): void {
    if (this.#idleTimer === null) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  /** Ends the writable side, then destroys once it has finished (node:net's destroySoon). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /**
   * Closes with a TCP RST (SO_LINGER 0), like node:net's resetAndDestroy():
   * while connecting, once connected; never connected: ERR_SOCKET_CLOSED.
   */
  resetAndDestroy(): this {
    if (this.connecting) {
      this.once('connect', () => this.resetAndDestroy());
      return this;
    }
    if (!this.#opened) return this.destroy(new SocketClosedError());
    const fd = this.#inner?.fd ?? -1;
    if (fd >= 0) sockopt.setLinger(fd, 0);
    return this.destroy();
  }

  /** node:net's ref(): an open socket keeps the process alive (the default). */
  ref(): this {
    this.#unref = false;
    this.#inner?.ref();
    return this;
  }
  /** node:net's unref(): the open socket no longer keeps the process alive (see the file comment). */
  unref(): this {
    this.#unref = true;
    this.#inner?.unref();
    return this;
  }

  override toString(): string {
    return `[maio/net Socket ${this.remoteAddress ?? ''}:${this.remotePort ?? ''}]`;
  }
}

/**
 * Chunks smaller than this are copied even on the pipe fast path: a Buffer
 * view over pool memory costs more than allocUnsafe (Node's 8 KiB slab) and
 * a copy of a few hundred bytes (bench/micro/stream-receive.ts, 'costs'),
 * and a copy lets the 64 KiB receive buffer go back at once.
 */
const POOLED_MIN_BYTES = 4096;

/** The fields of Node's ReadableState the pipe fast path reads. */
interface ReadableInternals {
  flowing: boolean | null;
  length: number;
  sync: boolean;
  decoder: unknown;
  ended: boolean;
  destroyed: boolean;
}
/** The field of Node's WritableState the pipe fast path reads: queued writes (null once written). */
interface WritableInternals {
  buffered: ({ chunk: unknown } | null)[];
}

/** A maio/net Socket that writes with this class's own write path. */
function isPlainSocket(dest: unknown): dest is Socket {
  if (!(dest instanceof Socket)) return false;
  const p = Socket.prototype as unknown as Record<string, unknown>;
  const d = dest as unknown as Record<string, unknown>;
  return d.write === p.write && d._write === p._write && d._writev === p._writev && d._destroy === p._destroy;
}

/** A lookup answered with a family that is neither 4 nor 6. */
class InvalidAddressFamilyError extends RangeError {
  readonly code = 'ERR_INVALID_ADDRESS_FAMILY';
  readonly host: string;
  readonly port: number;
  constructor(family: unknown, host: string, port: number) {
    super(`Invalid address family: ${String(family)} ${host}:${port}`);
    this.host = host;
    this.port = port;
  }
}

/** node:net's error when every address failed: an AggregateError with the first error's code. */
function aggregate(errors: Error[]): AggregateError & { code?: string } {
  const err = new AggregateError(errors, '') as AggregateError & { code?: string };
  err.code = (errors[0] as NodeJS.ErrnoException | undefined)?.code;
  return err;
}

/** node:net's rule: a string that is not a number >= 0 is a path ('80' is a port, '80x' a path). */
function isPipeName(s: unknown): s is string {
  return typeof s === 'string' && !(Number(s) >= 0);
}

/** node:net's connect overloads: (options[, cb]), (port[, host][, cb]), (path[, cb]). */
export function normalizeConnectArgs(args: unknown[]): [TcpConnectOptions, ConnectListener | undefined] {
  const last = args[args.length - 1];
  const cb = typeof last === 'function' ? (last as ConnectListener) : undefined;
  if (args.length === 0) return [{} as TcpConnectOptions, undefined];
  const a0 = args[0];
  if (typeof a0 === 'object' && a0 !== null) return [{ ...(a0 as TcpConnectOptions) }, cb];
  if (isPipeName(a0)) return [{ path: a0 } as TcpConnectOptions, cb];
  const o = { port: a0 } as TcpConnectOptions;
  if (typeof args[1] === 'string') o.host = args[1];
  return [o, cb];
}
