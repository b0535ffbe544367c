/**
 * Socket: one TCP connection on this thread's ring, reading into and writing
 * from the I/O pool. The class is built in layers, one concern per file
 * (socket-core.ts gives the order): receive in socket-receive.ts, send in
 * socket-send.ts and socket-send-chain.ts, zero-copy in socket-zc.ts, and
 * here what ties them together: connect, destroy and close, idle timeouts,
 * options and properties, stats.
 *
 * Close: destroy() cancels what is in flight and closes the fd only after the
 * last completion (DESIGN.md rules 7-8); every buffer goes back to the pool;
 * 'close' comes last.
 */
import type { AddressInfo } from 'node:net';
import { AbortError, ClosedError, InvalidArgumentError, OutOfRangeError, errnoError, fromNative, type ErrnoError } from '../core/errors';
import { native } from '../core/native';
import { kIdleClose } from '../core/symbols';
import type { IoPool } from '../pool/pool';
import type { IoRing } from '../ring/io-ring';
import { AF_INET6, addressFamily, decodeSockaddr, sockaddr } from './address';
import { decodeUnixSockaddr } from './unix-address';
import { idleEntry, unwatch, watch } from './idle';
import { listenHook } from './listen-hook';
import { Flag } from './socket-core';
export type { SocketEvents } from './socket-core';
import { socketSendFile, type SocketSendFileOptions } from './socket-file';
import { SendingSocket } from './socket-send';
import * as sockopt from './sockopt';
import { totals } from './stats';
import type { SocketZeroCopyStats } from './socket-zc';
import type { ZeroCopyMode } from './zc-policy';

export { recvLimitSupported } from './socket-receive';
export { isLocalAddress } from './address';

const ECANCELED = 125;
const ETIMEDOUT = 110;
const EAGAIN = 11;
const EINVAL = 22;

export type ReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

/** Options every maio socket (and a server, for its connections) takes. */
export interface MaioSocketOptions extends sockopt.SocketOptions {
  /** Pool for receive and write buffers (default: the thread's default pool). */
  pool?: IoPool;
  /** 'auto' adapts per socket (default), 'always' / 'never' force. */
  zeroCopy?: ZeroCopyMode;
  /** Smallest send that may go zero-copy (default 16 KiB). */
  zeroCopyMinBytes?: number;
  /** Zero-copy sends 'auto' looks at before deciding (default 8, see zc-policy.ts). */
  zeroCopyProbeSends?: number;
  /**
   * 'auto' probes with zero-copy sends even when the peer is on this host
   * (default false: local delivery always copies, and on Linux 6.18 a
   * SEND_ZC on loopback stalls the stream for hundreds of ms, so 'auto'
   * starts in plain mode there and says why).
   */
  zeroCopyProbeLocal?: boolean;
  /**
   * Receive buffer size, a pool size class (default 65536). With neither this nor readBuffersMax
   * set, a socket whose last two receives fit in half of the pool's smallest class (2 KiB) receives in
   * that class from its next recv on, and goes back to 65536 when a small buffer fills.
   */
  readBufferSize?: number;
  /** Most receive buffers the thread's group for this pool takes (default 256; the 2 KiB group of small receives: 16 MiB of them, at most 3/4 of the class). */
  readBuffersMax?: number;
  /** Bytes of receive buffers (capacity) a socket may hold unreleased before it stops reading (default 1 MiB). */
  readQuota?: number;
  /** Pool buffer size writes are copied into (default 65536). */
  writeBufferSize?: number;
  /** write()/send() return false above this many queued bytes (default 1 MiB); 'drain' follows. */
  writableHighWaterMark?: number;
  /** Keep the writable side open after the peer's FIN (default false: end() follows 'end'). */
  allowHalfOpen?: boolean;
}

export interface ConnectOptions extends MaioSocketOptions {
  /** required unless `path` is given */
  port?: number | string;
  /** a unix domain socket path, or an abstract name starting with '\0' (instead of port and host) */
  path?: string;
  /** IP literal or name (default 'localhost') */
  host?: string;
  /** 0, 4 or 6: restricts name lookups */
  family?: 0 | 4 | 6;
  /** ms: cancel the connect and fail with ETIMEDOUT */
  timeout?: number;
  signal?: AbortSignal;
  /** bind the socket to this address before connecting (default: the family's any address when localPort is set) */
  localAddress?: string;
  /** bind the socket to this port before connecting (0: the kernel picks) */
  localPort?: number;
}

/** @internal where a client socket binds before it connects (node:net's localAddress / localPort) */
export interface LocalBind {
  address?: string | undefined;
  port?: number | undefined;
}

export interface SocketStats {
  bytesRead: number;
  bytesWritten: number;
  /** bytes queued by write()/send() and not yet completed */
  queuedBytes: number;
  /** sends in flight (results or zero-copy notifications outstanding) */
  sendsInFlight: number;
  /** received buffers delivered and not released */
  receiveBuffersHeld: number;
  receiveBytesHeld: number;
  /** reading stopped because receiveBytesHeld reached readQuota */
  readBlocked: boolean;
  zeroCopy: SocketZeroCopyStats;
}

/** @internal what a Socket needs from whoever made it */
export interface SocketInit {
  ring: IoRing;
  options: MaioSocketOptions;
  pool: IoPool;
  /** an accepted fd (connected), or -1 */
  fd: number;
  onClose?: (s: Socket) => void;
  /** a unix domain socket (accepted from a unix listener, or connecting to a path) */
  unix?: boolean;
}

const kInit = Symbol('maio.socket.init');

export class Socket extends SendingSocket {
  #onCloseHook: ((s: Socket) => void) | undefined;

  /** @internal use connect() or a Server. */
  constructor(token: symbol, init: SocketInit) {
    if (token !== kInit) throw new InvalidArgumentError('use maio.connect() or a Server to make sockets');
    super(init);
    this.#onCloseHook = init.onClose;
    totals.socketsOpened++;
    totals.socketsOpen++;
    if (this.fd >= 0) {
      this.#applyOptions();
      this.armRecv();
    }
  }

  /** @internal */
  static [kInit] = kInit;

  // ---- connect ---------------------------------------------------------

  /** @internal starts connecting to an encoded sockaddr */
  connectTo(addr: Uint8Array, timeout: number | undefined, signal: AbortSignal | undefined, local?: LocalBind): void {
    this.setFlag(Flag.Connecting);
    if (this.flag(Flag.Destroyed)) return;
    const unix = this.flag(Flag.Unix);
    if (unix) this.rareState().path = decodeUnixSockaddr(addr);
    else this.rareState().remote = decodeSockaddr(addr);
    if (signal) {
      if (signal.aborted) {
        process.nextTick(() => this.destroy(new AbortError(undefined, { cause: signal.reason })));
        return;
      }
      const r = this.rareState();
      r.signal = signal;
      r.onAbort = () => this.destroy(new AbortError(undefined, { cause: signal.reason }));
      signal.addEventListener('abort', r.onAbort, { once: true });
    }
    if (this.flag(Flag.Destroyed)) return;
    const family = unix ? 'unix' : new DataView(addr.buffer, addr.byteOffset, 2).getUint16(0, true) === AF_INET6 ? 6 : 4;
    try {
      this.setFd(native().sockOpen(family, 'tcp'));
      // In a worker group: a crash of this thread resets the connection too.
      listenHook()?.connecting?.(this, this.fd);
      this.#applyOptions();
    } catch (err) {
      process.nextTick(() => this.destroy(fromNative(err) as Error));
      return;
    }
    if (family !== 'unix' && local && (local.address !== undefined || local.port !== undefined)) {
      const err = this.#bindLocal(family, local);
      if (err) {
        process.nextTick(() => this.destroy(err));
        return;
      }
    }
    this.#queueConnect(addr, 0);
    if (timeout !== undefined && timeout > 0) {
      this.rareState().timer = setTimeout(() => {
        const r = this.rareState();
        r.timer = null;
        if (r.connectOp >= 0) {
          this.setFlag(Flag.TimedOut);
          this.ring.cancel(r.connectOp);
        } else if (r.connectOp === -2) {
          this.destroy(errnoError(-ETIMEDOUT, 'connect'));
        }
      }, timeout);
    }
  }

  /**
   * bind(2) before the connect, on the family of the address connected to
   * (an address of the other family fails with EINVAL, as in node:net).
   * Returns the error, shaped like node:net's ('bind EADDRINUSE 127.0.0.1:80').
   */
  #bindLocal(family: 4 | 6, local: LocalBind): Error | null {
    const address = local.address ?? (family === 6 ? '::' : '0.0.0.0');
    const port = local.port ?? 0;
    this.rareState().bind = { address, port };
    let err: ErrnoError & { address?: string; port?: number };
    if (addressFamily(address) !== family) {
      err = errnoError(-EINVAL, 'bind');
    } else {
      try {
        native().sockBind(this.fd, sockaddr(address, port));
        return null;
      } catch (e) {
        const errno = (e as { errno?: unknown }).errno;
        if (typeof errno !== 'number') return fromNative(e) as Error;
        err = errnoError(errno, 'bind');
      }
    }
    err.address = address;
    if (port) err.port = port;
    err.message = `bind ${err.code} ${address}${port ? `:${port}` : ''}`;
    return err;
  }

  /**
   * The kernel copies the sockaddr while the flush submits the CONNECT, so
   * the aux slot is freed right after that flush (a microtask queued after
   * the ring's). With every slot taken, try again next turn.
   */
  #queueConnect(addr: Uint8Array, tries: number): void {
    if (this.flag(Flag.Destroyed)) return this.maybeClose();
    const ring = this.ring;
    const aux = ring.allocAux();
    if (aux < 0) {
      if (tries > 1000) {
        this.destroy(errnoError(-EAGAIN, 'connect'));
        return;
      }
      this.rareState().connectOp = -2; // pending: not in flight, but connecting
      setImmediate(() => this.#queueConnect(addr, tries + 1));
      return;
    }
    ring.aux.set(addr, aux);
    this.rareState().connectOp = ring.connect(this, this.fd, aux, addr.length);
    queueMicrotask(() => ring.freeAux(aux));
  }

  /** @internal connecting from now on (the address is being looked up) */
  beginConnect(): void {
    this.setFlag(Flag.Connecting);
  }

  /** @internal failed before connecting (name lookup) */
  fail(err: Error): void {
    this.destroy(err);
  }

  #onConnect(res: number): void {
    const r = this.rareState();
    r.connectOp = -1;
    if (r.timer) {
      clearTimeout(r.timer);
      r.timer = null;
    }
    if (this.flag(Flag.Destroyed)) return this.maybeClose();
    if (res < 0) {
      const errno = res === -ECANCELED && this.flag(Flag.TimedOut) ? -ETIMEDOUT : res;
      const err = errnoError(errno, 'connect') as ErrnoError & { address?: string; port?: number };
      if (r.remote) {
        err.address = r.remote.address;
        err.port = r.remote.port;
        err.message = `connect ${err.code} ${r.remote.address}:${r.remote.port}`;
      } else if (r.path !== null) {
        err.address = r.path;
        err.message = `connect ${err.code} ${r.path}`;
      }
      // node:net names the local end when both its address and port were given
      const bind = r.bind;
      if (bind && bind.port) {
        Object.assign(err, { localAddress: bind.address, localPort: bind.port });
        err.message += ` - Local (${bind.address}:${bind.port})`;
      }
      this.destroy(err);
      return;
    }
    this.clearFlag(Flag.Connecting);
    this.emit('connect');
    this.emit('ready');
    this.armRecv();
    this.scheduleFlush();
  }

  #applyOptions(): void {
    // Field by field (the connection's options only: a server's reusePort is
    // not one), so an accept allocates nothing here.
    const o = this.opts;
    const fd = this.fd;
    // A unix socket has no TCP level: node:net's setNoDelay/setKeepAlive do nothing on one either.
    const tcp = !this.flag(Flag.Unix);
    if (tcp) sockopt.setNoDelay(fd, o.noDelay ?? true);
    if (tcp && o.keepAlive !== undefined) {
      const probes: sockopt.KeepAliveProbes = {};
      if (o.keepAliveInterval !== undefined) probes.interval = o.keepAliveInterval;
      if (o.keepAliveCount !== undefined) probes.count = o.keepAliveCount;
      sockopt.setKeepAlive(fd, o.keepAlive, o.keepAliveInitialDelay ?? 0, probes);
    }
    if (o.recvBufferSize !== undefined) sockopt.setRecvBufferSize(fd, o.recvBufferSize);
    if (o.sendBufferSize !== undefined) sockopt.setSendBufferSize(fd, o.sendBufferSize);
    if (tcp && o.userTimeout !== undefined) sockopt.setUserTimeout(fd, o.userTimeout);
    if (o.linger !== undefined) sockopt.setLinger(fd, o.linger);
  }

  /** @internal completions other than the recv's (socket-receive.ts takes those) */
  protected onControlCompletion(opId: number, res: number): void {
    const r = this.rare;
    if (r === null) return;
    if (opId === r.connectOp) return this.#onConnect(res);
    if (opId === r.shutdownOp) return this.onShutdown(res);
    // The fd is gone whatever res says (close(2) releases the number even on EINTR/EIO).
    if (opId === r.closeOp) return this.#closeDone();
  }

  /** A file range to this socket in the kernel (sendfile(2), or SPLICE on io_uring): socket-file.ts. */
  sendFile(file: string | number, options?: SocketSendFileOptions): Promise<number> {
    return socketSendFile(this, file, options);
  }

  // ---- destroy and close -------------------------------------------------

  /**
   * Cancels everything in flight, returns every buffer, closes the fd after
   * the last completion; 'error' (with err) then 'close'. Safe twice.
   */
  destroy(err?: Error | null): this {
    if (this.flag(Flag.Destroyed)) return this;
    this.setFlag(Flag.Destroyed);
    if (err) this.rareState().error = err;
    const r = this.rare;
    if (r !== null && r.timer) {
      clearTimeout(r.timer);
      r.timer = null;
    }
    this.stopRecv();
    if (r !== null) {
      if (r.connectOp >= 0) this.ring.cancel(r.connectOp);
      else if (r.connectOp === -2) r.connectOp = -1; // its retry sees Destroyed
    }
    this.dropSends(err ?? undefined);
    this.dropReceived();
    if (err) process.nextTick(() => this.emit('error', err));
    this.maybeClose();
    return this;
  }

  protected maybeClose(): void {
    if (!this.flag(Flag.Destroyed) || this.flag(Flag.Closed)) return;
    const r = this.rare;
    if (this.receiving || this.sendsInFlight > 0 || (r !== null && (r.connectOp >= 0 || r.shutdownOp >= 0))) return;
    this.setFlag(Flag.Closed);
    this.leaveGroup();
    const fd = this.fd;
    let closeOp = -1;
    if (fd >= 0) {
      this.setFd(-1);
      // Through the ring (either backend): the epoll fallback keeps per-descriptor
      // state (epoll membership, the MSG_ZEROCOPY counter) that must go with the
      // number before the kernel can hand it out again. 'close' follows the CLOSE.
      try {
        closeOp = this.ring.closeFd(this, fd);
      } catch {
        // The ring is closed: nothing of it can act on the fd any more.
        try {
          native().sockClose(fd);
        } catch {
          // EBADF cannot happen: only this socket closes its fd
        }
      }
    }
    if (closeOp >= 0) this.rareState().closeOp = closeOp;
    else this.#closeDone();
  }

  #closeDone(): void {
    const r = this.rare;
    let hadError = false;
    if (r !== null) {
      r.closeOp = -1;
      if (r.signal && r.onAbort) r.signal.removeEventListener('abort', r.onAbort);
      r.signal = null;
      hadError = r.error !== null;
    }
    totals.socketsOpen--;
    const hook = this.#onCloseHook;
    this.#onCloseHook = undefined;
    process.nextTick(() => {
      hook?.(this);
      this.emit('close', hadError);
    });
  }

  // ---- idle timeout --------------------------------------------------------

  /**
   * Emits 'timeout' once `ms` pass without bytes moving in either direction
   * (a receive, or a send completing), like node:net: the socket stays open,
   * the listener decides. 0 turns it off (and removes `cb`). Checked
   * coarsely (src/net/idle.ts): fires between ms and ms + ms/4 (at most
   * +1 s) after the last activity, again only after new activity.
   */
  setTimeout(ms: number, cb?: () => void): this {
    if (typeof ms !== 'number' || Number.isNaN(ms)) throw new InvalidArgumentError(`timeout must be a number of ms, got ${String(ms)}`);
    if (ms < 0 || ms === Infinity) throw new OutOfRangeError(`timeout must be >= 0 and finite, got ${ms}`);
    if (cb !== undefined && typeof cb !== 'function') throw new InvalidArgumentError('the callback must be a function');
    if (ms === 0) {
      const e = this.rare?.idle;
      if (e) {
        unwatch(e);
        e.ms = 0;
      }
      if (cb) this.removeListener('timeout', cb);
      return this;
    }
    if (cb) this.once('timeout', cb);
    if (this.flag(Flag.Destroyed)) return this;
    // One entry per socket, re-watched: node:http turns the timeout on and off once per request.
    const r = this.rareState();
    const e = (r.idle ??= idleEntry(this, ms, 1, false, () => this.emit('timeout')));
    e.ms = ms;
    watch(e);
    return this;
  }

  /** The idle timeout set by setTimeout() (undefined when off), as node:net's socket.timeout. */
  get timeout(): number | undefined {
    return this.rare?.idle?.ms || undefined;
  }

  /** @internal a server's idleTimeout: 'timeout', then destroy(), when fewer than minBytes moved in ms */
  [kIdleClose](ms: number, minBytes: number, onClosed?: () => void): void {
    const r = this.rareState();
    unwatch(r.idleClose);
    r.idleClose = idleEntry(this, ms, minBytes, true, () => {
      this.emit('timeout');
      if (this.flag(Flag.Destroyed)) return;
      onClosed?.();
      this.destroy();
    });
    watch(r.idleClose);
  }

  // ---- keep-alive ------------------------------------------------------------

  /**
   * node:net's unref(): the process may exit while this socket is open, its
   * armed receive no longer holds the event loop. What node:net holds for an
   * unref'd socket, this holds too: a connect in progress, sends the kernel
   * has not taken yet, the shutdown and close. Before connecting it applies
   * from the start. Idempotent; a no-op once closed.
   */
  unref(): this {
    this.ring.setRef(this, false);
    return this;
  }

  /** node:net's ref(): an open socket keeps the process alive again (the default). */
  ref(): this {
    this.ring.setRef(this, true);
    return this;
  }

  // ---- options and properties ----------------------------------------------

  setNoDelay(noDelay = true): this {
    this.opts = { ...this.opts, noDelay };
    if (this.fd >= 0 && !this.flag(Flag.Unix)) sockopt.setNoDelay(this.fd, noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.opts = { ...this.opts, keepAlive: enable, keepAliveInitialDelay: initialDelay };
    if (this.fd >= 0 && !this.flag(Flag.Unix)) sockopt.setKeepAlive(this.fd, enable, initialDelay);
    return this;
  }

  /** A named option of src/net/sockopt.ts's SocketOptions (noDelay, keepAlive, recvBufferSize, ...). */
  setOption<K extends keyof sockopt.SocketOptions>(name: K, value: sockopt.SocketOptions[K]): this {
    sockopt.applySocketOptions(this.#openFd(), { [name]: value } as sockopt.SocketOptions);
    return this;
  }

  /** Raw setsockopt escape: an int or the option's bytes. */
  setsockopt(level: number, name: number, value: number | Uint8Array): this {
    sockopt.setsockopt(this.#openFd(), level, name, value);
    return this;
  }

  getsockopt(level: number, name: number): number {
    return sockopt.getsockopt(this.#openFd(), level, name);
  }

  #openFd(): number {
    if (this.fd < 0 || this.flag(Flag.Destroyed)) throw new ClosedError('the socket has no file descriptor (connecting or closed)');
    return this.fd;
  }

  /** The peer's or the local address; kept unless `keep` is false (stats() reads without storing). */
  #name(peer: boolean, keep = true): AddressInfo | null {
    // a unix socket has no IP address or port (node:net: undefined, and address() is {})
    if (this.flag(Flag.Unix)) return null;
    const r = this.rare;
    const connecting = this.flag(Flag.Connecting);
    if (peer && r?.remote && !connecting) return r.remote;
    if (!peer && r?.local) return r.local;
    if (this.fd < 0 || connecting) return peer ? (r?.remote ?? null) : null;
    try {
      const a = decodeSockaddr(native().sockName(this.fd, peer));
      if (!keep) return a;
      if (peer) this.rareState().remote = a;
      else this.rareState().local = a;
      return a;
    } catch {
      return null;
    }
  }

  get remoteAddress(): string | undefined {
    return this.#name(true)?.address;
  }
  /** @internal the peer's address without storing it in the rare state (stats()) */
  protected peekRemoteAddress(): string | undefined {
    return this.#name(true, false)?.address;
  }
  get remotePort(): number | undefined {
    return this.#name(true)?.port;
  }
  get remoteFamily(): string | undefined {
    return this.#name(true)?.family;
  }
  get localAddress(): string | undefined {
    return this.#name(false)?.address;
  }
  get localPort(): number | undefined {
    return this.#name(false)?.port;
  }
  address(): AddressInfo | Record<string, never> {
    return this.#name(false) ?? {};
  }

  get connecting(): boolean {
    return this.flag(Flag.Connecting) && !this.flag(Flag.Destroyed);
  }
  get destroyed(): boolean {
    return this.flag(Flag.Destroyed);
  }
  get pending(): boolean {
    return this.flag(Flag.Connecting) || this.fd < 0;
  }
  get writableLength(): number {
    return this.queuedBytes;
  }
  get writableNeedDrain(): boolean {
    return this.flag(Flag.NeedDrain);
  }
  get writableEnded(): boolean {
    return this.flag(Flag.Ending);
  }
  get writableFinished(): boolean {
    return this.flag(Flag.WriteFinished);
  }
  get readableEnded(): boolean {
    return this.flag(Flag.EndEmitted);
  }

  get readyState(): ReadyState {
    // destroyed first: a socket destroyed while connecting (a failed lookup) is closed, not opening
    if (this.flag(Flag.Destroyed)) return 'closed';
    if (this.flag(Flag.Connecting)) return 'opening';
    const readable = !this.flag(Flag.EndEmitted);
    const writable = !this.flag(Flag.Ending);
    if (readable && writable) return 'open';
    if (readable) return 'readOnly';
    if (writable) return 'writeOnly';
    return 'closed';
  }

  /** Counters and state; reads only (the zero-copy part says what the policy would be before the first large send makes it). */
  stats(): SocketStats {
    return {
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      queuedBytes: this.queuedBytes,
      sendsInFlight: this.sendsInFlight,
      receiveBuffersHeld: this.receiveBuffersHeld,
      receiveBytesHeld: this.receiveBytesHeld,
      readBlocked: this.receiveBytesHeld >= this.readQuota,
      zeroCopy: this.zeroCopyStats(),
    };
  }
}

/** @internal */
export function makeSocket(init: SocketInit): Socket {
  return new Socket(kInit, init);
}
