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
 *    Receive: 2 copies here, 1 in node:net.
 *  - send: write() copies the Buffer into a pool buffer, the kernel copies it
 *    into the skb (node:net: only the kernel copy, from the caller's Buffer).
 *    Send: 2 copies here, 1 in node:net.
 * What maio saves here is system calls (one io_uring_enter per batch, not one
 * read/write per chunk), not copies. Code that wants the 1-copy paths uses
 * maio's own Socket (IoBuffer 'data', send(buf)) instead of this adapter.
 *
 * Backpressure: push() returning false pauses the maio socket (its multishot
 * recv is cancelled; bytes wait in the kernel's socket buffer); _read()
 * resumes it. _write() completes when the maio socket's write callback fires
 * (the bytes are with the kernel), so the Writable's high-water mark bounds
 * what waits in user space.
 *
 * ref()/unref(): the ring holds the event loop while any operation is in
 * flight, and a connected socket always has its recv armed, so unref() cannot
 * let the process exit while the socket is open. Both are kept as no-ops
 * (the idle timer of setTimeout() is unref'd, like node's).
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError } from '../../core/errors';
import type { IoBuffer } from '../../pool/buffer';
import type { IoPool } from '../../pool/pool';
import { connect as maioConnect } from '../server';
import type { MaioSocketOptions, Socket as MaioSocket } from '../socket';
import * as sockopt from '../sockopt';

/** node:net's SocketConstructorOpts, plus maio's own socket options under `maio`. */
export interface SocketOptions extends DuplexOptions {
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** maio socket options (pool, readQuota, zeroCopy, ...), passed to the maio socket. */
  maio?: MaioSocketOptions;
  /** not supported (maio opens its own sockets): throws when set */
  fd?: number;
}

/** node:net's TcpNetConnectOpts (what maio supports of it). */
export interface TcpConnectOptions extends SocketOptions {
  port: number | string;
  host?: string;
  family?: number;
  /** idle timeout in ms, like socket.setTimeout() (not a connect timeout, as in node:net) */
  timeout?: number;
  signal?: AbortSignal;
  /** a dns.lookup-compatible function for names (default: node:dns lookup) */
  lookup?: (hostname: string, options: { family?: number; all?: boolean }, cb: (err: Error | null, address: string, family?: number) => void) => void;
  /** not supported: maio does not bind client sockets; throws when set */
  localAddress?: string;
  localPort?: number;
  /** unix domain sockets are not supported: throws when set */
  path?: string;
}

export type ConnectListener = () => void;

/** @internal how Server and connect() hand a maio socket to the adapter */
export const kAttach = Symbol('maio.net.attach');

type Pending = () => void;

export class Socket extends Duplex {
  /** True from connect() until 'connect' (node:net's property). */
  connecting = false;
  /** The idle timeout in ms set by setTimeout() (undefined when off). */
  timeout: number | undefined = undefined;
  #inner: MaioSocket | null = null;
  #innerClosed = false;
  #innerError = false;
  #maioOpts: MaioSocketOptions;
  /** writes, end and reads that came before the maio socket existed */
  #waiting: Pending[] = [];
  #finalCb: ((err?: Error | null) => void) | null = null;

  constructor(options: SocketOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    if (options.fd !== undefined) throw new InvalidArgumentError('maio/net does not adopt file descriptors (options.fd)');
    const { maio, noDelay, keepAlive, keepAliveInitialDelay, allowHalfOpen, fd: _fd, ...duplex } = options;
    // The Duplex ends the writable side after 'end' unless allowHalfOpen (node:net does the same).
    super({ ...duplex, allowHalfOpen: allowHalfOpen === true, emitClose: false, autoDestroy: true });
    this.#maioOpts = { ...maio };
    if (noDelay !== undefined) this.#maioOpts.noDelay = noDelay;
    if (keepAlive !== undefined) {
      this.#maioOpts.keepAlive = keepAlive;
      if (keepAliveInitialDelay !== undefined) this.#maioOpts.keepAliveInitialDelay = Math.floor(keepAliveInitialDelay / 1000);
    }
  }

  /** @internal adopts a maio socket (accepted, or connecting) */
  [kAttach](inner: MaioSocket, connecting: boolean): void {
    this.#inner = inner;
    this.connecting = connecting;
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
    if (this.timeout !== undefined) inner.setTimeout(this.timeout);
    if (connecting) {
      inner.once('connect', () => {
        this.connecting = false;
        this.emit('connect');
        this.emit('ready');
      });
    }
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const f of waiting) f();
    // Until the stream asks for data (a reader attaches), let the readable buffer fill to its mark.
    if (this.readableLength >= this.readableHighWaterMark) inner.pause();
  }

  #pushedEnd(): boolean {
    return (this as unknown as { _readableState: { ended: boolean } })._readableState.ended;
  }

  /** One copy out of the pool: the Buffer is the consumer's, the pool buffer goes back now. */
  readonly #onData = (buf: IoBuffer): void => {
    const bytes = buf.bytes;
    const chunk = Buffer.allocUnsafe(bytes.length);
    chunk.set(bytes);
    if (!this.push(chunk)) this.#inner!.pause();
  };

  override _read(): void {
    const inner = this.#inner;
    if (inner === null) return;
    if (inner.isPaused()) inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (inner === null) {
      this.#waiting.push(() => this._write(chunk, _encoding, cb));
      return;
    }
    inner.write(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (inner === null) {
      this.#waiting.push(() => this._writev(chunks, cb));
      return;
    }
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) inner.write(chunks[i].chunk);
    inner.write(chunks[last].chunk, cb);
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
    const inner = this.#inner;
    // 'close' a turn later, like node:net's (after the handle's close callback): 'error' comes first
    // and code that awaits 'error' and then listens for 'close' still sees it.
    const done = (): void => {
      cb(err);
      setImmediate(() => this.emit('close', err != null));
    };
    this.#waiting = [];
    if (inner === null || this.#innerClosed) return done();
    // Every pool buffer of this socket is back once the maio socket has closed.
    inner.once('close', done);
    inner.destroy();
  }

  // ---- connect --------------------------------------------------------------

  /**
   * connect(port[, host][, cb]) or connect(options[, cb]), like node:net.
   * `timeout` is the idle timeout (setTimeout), as in node:net.
   */
  connect(...args: unknown[]): this {
    const [o, cb] = normalizeConnectArgs(args);
    if (this.#inner !== null || this.connecting) throw new InvalidArgumentError('the socket is connected or connecting already');
    if (o.path !== undefined) throw new InvalidArgumentError('maio/net supports TCP only (options.path: unix domain sockets are not supported)');
    if (o.localAddress !== undefined || o.localPort !== undefined) {
      throw new InvalidArgumentError('maio/net does not bind client sockets (options.localAddress / localPort)');
    }
    if (o.noDelay !== undefined) this.#maioOpts.noDelay = o.noDelay;
    if (o.keepAlive !== undefined) {
      this.#maioOpts.keepAlive = o.keepAlive;
      if (o.keepAliveInitialDelay !== undefined) this.#maioOpts.keepAliveInitialDelay = Math.floor(o.keepAliveInitialDelay / 1000);
    }
    if (cb) this.once('connect', cb);
    if (o.timeout !== undefined) this.setTimeout(o.timeout);
    const family = o.family === 4 || o.family === 6 ? o.family : 0;
    const base = {
      ...this.#maioOpts,
      allowHalfOpen: true, // the Duplex decides when to end (see the constructor)
      ...(o.signal ? { signal: o.signal } : {}),
    };
    const start = (host: string, fam: 0 | 4 | 6): void => {
      if (this.destroyed) return;
      let inner: MaioSocket;
      try {
        inner = maioConnect({ ...base, port: o.port, host, family: fam });
      } catch (err) {
        this.destroy(err as Error);
        return;
      }
      this[kAttach](inner, true);
    };
    this.connecting = true;
    const host = o.host ?? 'localhost';
    if (typeof o.lookup === 'function' && !isIPLiteral(host)) {
      o.lookup(host, { family: family || undefined, all: false } as { family?: number }, (err, address, fam) => {
        if (err) {
          this.destroy(err);
          return;
        }
        start(address, fam === 4 || fam === 6 ? fam : 0);
      });
    } else {
      start(host, family);
    }
    return this;
  }

  // ---- node:net properties ---------------------------------------------------

  get pending(): boolean {
    return this.#inner === null || this.connecting;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  get remoteAddress(): string | undefined {
    return this.#inner?.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.#inner?.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.#inner?.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.#inner?.localAddress;
  }
  get localPort(): number | undefined {
    return this.#inner?.localPort;
  }
  get localFamily(): string | undefined {
    const a = this.#inner?.address();
    return a && 'family' in a ? a.family : undefined;
  }
  address(): AddressInfo | Record<string, never> {
    return this.#inner?.address() ?? {};
  }

  /** Bytes received (node:net counts what the handle read). */
  get bytesRead(): number {
    return this.#inner?.bytesRead ?? 0;
  }
  /** Bytes sent plus bytes still buffered for sending, as node:net counts. */
  get bytesWritten(): number {
    return (this.#inner?.bytesWritten ?? 0) + this.writableLength;
  }
  /** @deprecated node:net's old name for writableLength */
  get bufferSize(): number {
    return this.writableLength;
  }

  /** The maio socket underneath (null before connect()): IoBuffer-level access, stats(). */
  get maioSocket(): MaioSocket | null {
    return this.#inner;
  }
  /** The pool of the maio socket underneath (null before connect()). */
  get pool(): IoPool | null {
    return this.#inner?.pool ?? null;
  }

  setNoDelay(noDelay = true): this {
    this.#maioOpts.noDelay = noDelay;
    if (this.#inner && !this.#inner.destroyed) this.#inner.setNoDelay(noDelay);
    return this;
  }

  /** initialDelay in ms, like node:net (the kernel takes seconds: rounded down). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    const secs = Math.floor((initialDelay ?? 0) / 1000);
    this.#maioOpts.keepAlive = enable;
    this.#maioOpts.keepAliveInitialDelay = secs;
    if (this.#inner && !this.#inner.destroyed) this.#inner.setKeepAlive(enable, secs);
    return this;
  }

  /**
   * Emits 'timeout' after `ms` without bytes moving in either direction (0
   * turns it off), like node:net: the socket stays open; the listener
   * decides. Mapped onto the maio socket's setTimeout() (one coarse check per
   * thread, unref'd: fires between ms and ms + ms/4 after the last activity);
   * it starts once the socket has its maio socket (connecting or accepted).
   */
  setTimeout(ms: number, cb?: () => void): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError(`timeout must be a non-negative number, got ${String(ms)}`);
    const inner = this.#inner;
    if (ms === 0) {
      this.timeout = undefined;
      if (cb) this.removeListener('timeout', cb);
      if (inner && !inner.destroyed) inner.setTimeout(0);
      return this;
    }
    this.timeout = ms;
    if (cb) this.once('timeout', cb);
    if (this.destroyed) return this;
    if (inner && !inner.destroyed) inner.setTimeout(ms);
    return this;
  }

  /** Ends the writable side, then destroys once it has finished (node:net's destroySoon). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Closes with a TCP RST (SO_LINGER 0), like node:net's resetAndDestroy(). */
  resetAndDestroy(): this {
    const fd = this.#inner?.fd ?? -1;
    if (fd >= 0) sockopt.setLinger(fd, 0);
    return this.destroy();
  }

  /** No-op: see the file comment (the ring holds the loop while the socket is open). */
  ref(): this {
    return this;
  }
  /** No-op: see the file comment (the ring holds the loop while the socket is open). */
  unref(): this {
    return this;
  }

  override toString(): string {
    return `[maio/net Socket ${this.remoteAddress ?? ''}:${this.remotePort ?? ''}]`;
  }
}

function isIPLiteral(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}

/** node:net's connect overloads: (options[, cb]), (port[, host][, cb]), (path[, cb]). */
export function normalizeConnectArgs(args: unknown[]): [TcpConnectOptions, ConnectListener | undefined] {
  const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as ConnectListener) : undefined;
  const a0 = args[0];
  if (typeof a0 === 'object' && a0 !== null) return [{ ...(a0 as TcpConnectOptions) }, cb];
  if (typeof a0 === 'string' && !/^[0-9]+$/.test(a0)) return [{ path: a0, port: 0 }, cb];
  if (a0 === undefined || typeof a0 === 'function') {
    throw new InvalidArgumentError('connect() needs a port or an options object with one');
  }
  const o: TcpConnectOptions = { port: a0 as number | string };
  if (typeof args[1] === 'string') o.host = args[1];
  return [o, cb];
}
