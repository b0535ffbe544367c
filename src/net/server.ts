/**
 * Server: a listening socket (a TCP port, a unix domain socket path, or an
 * adopted fd: listeners.ts) whose connections arrive through one multishot
 * accept on the thread's ring (re-armed whenever the kernel ends it), and
 * connect(): a client socket connected through the ring.
 *
 * listen() returns the server and emits 'listening' like node:net;
 * listenAsync() is the same call as a promise of the bound address.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ClosedError, InvalidAddressError, InvalidArgumentError, errnoError, fromNative, type ErrnoError } from '../core/errors';
import { CQE_F_MORE, native } from '../core/native';
import { TypedEmitter } from '../core/typed-events';
import { defaultPool } from '../pool/pool';
import { currentRing } from '../ring/current';
import type { CompletionTarget, IoRing } from '../ring/io-ring';
import { AF_INET6, addressFamily, decodeSockaddr, parseAddress, resolveAddress, sockaddr, validatePort } from './address';
import { adoptListener, listenUnix, removeSocketFile, type Listener } from './listeners';
import { isPipeName, unixSockaddr } from './unix-address';
import { makeSocket, type ConnectOptions, type LocalBind, type MaioSocketOptions, type Socket } from './socket';
import * as sockopt from './sockopt';
import { kIdleClose, kPoolIdOn } from '../core/symbols';
import { validateSocketOptions } from './options';
import { listenHook } from './listen-hook';

const ECANCELED = 125;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
/** accept errors that pass (fd or memory pressure, an aborted handshake): accept again shortly */
const TRANSIENT_ACCEPT = new Set([24, 23, 105, 12, 103, 11, 4, 71]); // EMFILE ENFILE ENOBUFS ENOMEM ECONNABORTED EAGAIN EINTR EPROTO
const ACCEPT_RETRY_MS = 50;

export interface ServerOptions extends MaioSocketOptions {
  /** SO_REUSEPORT on the listening socket (several servers, one port) */
  reusePort?: boolean;
  /**
   * ms: a connection that moves fewer than `idleMinBytes` bytes (both
   * directions, default 1) within this long gets 'timeout' and is destroyed.
   * One coarse check per thread (src/net/idle.ts). Default 0: off.
   */
  idleTimeout?: number;
  /** with idleTimeout: a trickle below this many bytes per idleTimeout counts as idle (slowloris) */
  idleMinBytes?: number;
}

export interface ListenOptions {
  port?: number | string;
  host?: string;
  /** a unix domain socket path, or an abstract name starting with '\0' (instead of port and host) */
  path?: string;
  /** with path: make the socket file readable by every user */
  readableAll?: boolean;
  /** with path: make the socket file writable by every user (needed to connect) */
  writableAll?: boolean;
  /** an open stream socket (bound, or listening) to accept on; the server closes it */
  fd?: number;
  /** node:net's form of fd: `{ fd }` */
  handle?: { fd: number };
  backlog?: number;
  reusePort?: boolean;
  /** IPV6_V6ONLY on an IPv6 listener (default false: dual stack on '::') */
  ipv6Only?: boolean;
}

/** What a Server emits: each event with its listener's arguments. */
export interface ServerEvents {
  listening: [];
  connection: [socket: Socket];
  error: [err: Error];
  close: [];
}

export class Server extends TypedEmitter<ServerEvents> implements CompletionTarget {
  readonly #ring: IoRing;
  readonly #opts: ServerOptions;
  #fd = -1;
  #acceptOp = -1;
  /** the listener's CLOSE, in flight */
  #closeOp = -1;
  #listening = false;
  #closing = false;
  #starting = false;
  #address: AddressInfo | string | null = null;
  /** the socket file to remove at close (a unix path) */
  #file: Listener['file'] = null;
  /** connections are unix domain sockets */
  #unix = false;
  #retry: NodeJS.Timeout | null = null;
  /** ref()/unref(): whether the listening keeps the process alive */
  #refed = true;
  /** open connections: a count, not a set of them (each socket calls #onSocketClose once) */
  #open = 0;
  readonly #onSocketClose = (): void => {
    this.#open--;
    this.#maybeEmitClose();
  };

  constructor(options: ServerOptions = {}, onConnection?: (socket: Socket) => void) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    this.#ring = currentRing();
    this.#opts = { ...options };
    validateSocketOptions(this.#opts);
    // Checked now, not at the first accept (an error there has no caller).
    this.#opts.pool?.[kPoolIdOn](this.#ring);
    for (const k of ['idleTimeout', 'idleMinBytes'] as const) {
      const v = options[k];
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
        throw new InvalidArgumentError(`${k} must be a non-negative integer, got ${String(v)}`);
      }
    }
    if (onConnection) this.on('connection', onConnection);
  }

  /** Connections closed by the idleTimeout option. */
  idleClosed = 0;

  /** Open connections. */
  get connections(): number {
    return this.#open;
  }

  get listening(): boolean {
    return this.#listening;
  }

  /**
   * listen(port?, host?, backlog?, cb?), listen(path, backlog?, cb?) or
   * listen({ port, host, path, fd, handle, backlog, reusePort, ipv6Only, readableAll, writableAll }, cb?).
   * Without a host: '::' (dual stack) where IPv6 works, else '0.0.0.0'.
   * Returns the server; 'listening' (and cb) follow, or 'error'.
   */
  listen(...args: unknown[]): this {
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined;
    let o: ListenOptions;
    if (typeof args[0] === 'object' && args[0] !== null) o = { ...(args[0] as ListenOptions) };
    else if (isPipeName(args[0])) {
      o = { path: args[0] };
      if (typeof args[1] === 'number') o.backlog = args[1];
    } else {
      o = {};
      if (args[0] !== undefined && args[0] !== null) o.port = args[0] as number;
      if (typeof args[1] === 'string') o.host = args[1];
      else if (typeof args[1] === 'number') o.backlog = args[1];
      if (typeof args[2] === 'number') o.backlog = args[2];
    }
    if (this.#listening || this.#starting) throw new InvalidArgumentError('the server is listening already');
    const fd = o.fd ?? o.handle?.fd;
    if (o.handle !== undefined && fd === undefined) throw new InvalidArgumentError('handle must be an object with an fd');
    // node:net quietly prefers one over the other; here an ambiguous call is an error
    if ([o.port, o.path, fd].filter((v) => v !== undefined).length > 1) {
      throw new InvalidArgumentError('listen takes one of port, path and fd (or handle)');
    }
    if (fd !== undefined || o.path !== undefined) {
      if (fd !== undefined && (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)) {
        throw new InvalidArgumentError(`fd must be a non-negative integer, got ${String(fd)}`);
      }
      if (fd === undefined) unixSockaddr(o.path as string); // a bad path throws here, typed
      if (cb) this.once('listening', cb);
      this.#starting = true;
      this.#listenOn(() => (fd !== undefined ? adoptListener(fd, o.backlog ?? 511) : listenUnix(o.path!, { backlog: o.backlog ?? 511, readableAll: o.readableAll, writableAll: o.writableAll })));
      return this;
    }
    let port = validatePort(o.port ?? 0);
    // Inside a maio worker: the group's port and SO_REUSEPORT (src/net/listen-hook.ts).
    const hook = listenHook();
    if (hook) {
      const p = hook.prepare(port);
      port = p.port;
      if (p.reusePort) o.reusePort = true;
    }
    if (cb) this.once('listening', cb);
    this.#starting = true;
    const host = o.host;
    if (host === undefined || parseAddress(host)) {
      this.#bindListen(host, port, o);
    } else {
      resolveAddress(host, port).then(
        (addr) => this.#bindListen(decodeSockaddr(addr).address, port, o),
        (err: Error) => {
          this.#starting = false;
          this.emit('error', err);
        },
      );
    }
    return this;
  }

  /** listen() as a promise of the bound address: the path for a unix socket, as address() says. */
  listenAsync(options: ListenOptions & { path: string }): Promise<string>;
  /** An adopted fd: a TCP or a unix socket. */
  listenAsync(options: ListenOptions & ({ fd: number } | { handle: { fd: number } })): Promise<AddressInfo | string>;
  /** A port as a string, or a path. */
  listenAsync(portOrPath: string, ...rest: unknown[]): Promise<AddressInfo | string>;
  listenAsync(...args: unknown[]): Promise<AddressInfo>;
  listenAsync(...args: unknown[]): Promise<AddressInfo | string> {
    return new Promise<AddressInfo | string>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.once('error', onError);
      this.listen(...args, () => {
        this.off('error', onError);
        resolve(this.address()!);
      });
    });
  }

  #bindListen(host: string | undefined, port: number, o: ListenOptions): void {
    const n = native();
    let fd = -1;
    let addr: Uint8Array;
    let dual = false;
    try {
      if (host === undefined) {
        try {
          fd = n.sockOpen(6, 'tcp');
          host = '::';
          dual = !(o.ipv6Only ?? this.#opts.ipv6Only ?? false);
        } catch {
          host = '0.0.0.0';
        }
      }
      addr = sockaddr(host, port);
      const v6 = new DataView(addr.buffer, addr.byteOffset, 2).getUint16(0, true) === AF_INET6;
      if (fd < 0) fd = n.sockOpen(v6 ? 6 : 4, 'tcp');
      sockopt.setReuseAddr(fd, true);
      if (o.reusePort ?? this.#opts.reusePort) sockopt.setReusePort(fd, true);
      if (v6) sockopt.setV6Only(fd, !dual && (o.ipv6Only ?? this.#opts.ipv6Only ?? host !== '::'));
      n.sockBind(fd, addr);
      n.sockListen(fd, o.backlog ?? 511);
    } catch (err) {
      if (fd >= 0) n.sockClose(fd);
      this.#starting = false;
      const e = fromNative(err) as ErrnoError & { address?: string; port?: number };
      if (typeof e.errno === 'number') {
        e.address = host;
        e.port = port;
        e.message = `listen ${e.code} ${host}:${port}`;
      }
      listenHook()?.listened(this, -1, port);
      process.nextTick(() => this.emit('error', e));
      return;
    }
    const address = decodeSockaddr(n.sockName(fd, false));
    listenHook()?.listened(this, fd, address.port);
    this.#started({ fd, address, file: null, unix: false });
  }

  /** A unix path or an adopted fd: `open` makes the listener or throws what 'error' gets. */
  #listenOn(open: () => Listener): void {
    let l: Listener;
    try {
      l = open();
    } catch (err) {
      this.#starting = false;
      process.nextTick(() => this.emit('error', err as Error));
      return;
    }
    this.#started(l);
  }

  #started(l: Listener): void {
    this.#fd = l.fd;
    this.#address = l.address;
    this.#file = l.file;
    this.#unix = l.unix;
    this.#starting = false;
    this.#listening = true;
    this.#closing = false;
    this.#armAccept();
    process.nextTick(() => {
      if (this.#listening) this.emit('listening');
    });
  }

  #armAccept(): void {
    if (this.#acceptOp >= 0 || !this.#listening || this.#fd < 0) return;
    // Nonblocking like the sockets connect() makes: code that reaches the fd
    // (sendFile, forward, socket.fd) finds the same mode on both sides.
    this.#acceptOp = this.#ring.accept(this, this.#fd, true, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }

  /** @internal */
  onCompletion(opId: number, res: number, flags: number): void {
    if (opId === this.#closeOp) {
      this.#closeOp = -1;
      this.#maybeEmitClose();
      return;
    }
    const final = (flags & CQE_F_MORE) === 0;
    if (final) this.#acceptOp = -1;
    if (res >= 0) {
      if (!this.#listening) {
        native().sockClose(res);
      } else {
        let socket: Socket;
        try {
          // The server's options object is shared by its connections (a socket
          // replaces, never changes, it): no copy per accept.
          socket = makeSocket({ ring: this.#ring, options: this.#opts, pool: this.#opts.pool ?? defaultPool(), fd: res, onClose: this.#onSocketClose, unix: this.#unix });
        } catch (err) {
          native().sockClose(res);
          this.emit('error', err as Error);
          return;
        }
        this.#open++;
        const idle = this.#opts.idleTimeout ?? 0;
        if (idle > 0) socket[kIdleClose](idle, Math.max(1, this.#opts.idleMinBytes ?? 1), () => this.idleClosed++);
        this.emit('connection', socket);
      }
    } else if (res !== -ECANCELED) {
      if (TRANSIENT_ACCEPT.has(-res)) {
        if (final && this.#listening && !this.#retry) {
          this.#retry = setTimeout(() => {
            this.#retry = null;
            this.#armAccept();
          }, ACCEPT_RETRY_MS);
          // It stands in for the accept: it holds the process exactly when the accept would.
          if (!this.#refed) this.#retry.unref();
        }
        return;
      }
      this.emit('error', errnoError(res, 'accept'));
    }
    if (final) {
      // Ring.close() cancelled the accept: the server closes with its ring.
      if (this.#listening && this.#ring.closed) this.close();
      else if (this.#listening) this.#armAccept();
      else this.#closeListener();
    }
  }

  /** The bound address: { address, family, port } for TCP, the path (or abstract name) for a unix socket; null when not listening. */
  address(): AddressInfo | string | null {
    return this.#listening ? this.#address : null;
  }

  /** Stops accepting; open connections go on. 'close' when the last one has closed. */
  close(cb?: (err?: Error) => void): this {
    if (!this.#listening) {
      if (cb) process.nextTick(cb, new ClosedError('the server is not running'));
      return this;
    }
    if (cb) this.once('close', cb);
    this.#listening = false;
    this.#closing = true;
    if (this.#retry) {
      clearTimeout(this.#retry);
      this.#retry = null;
    }
    if (this.#acceptOp >= 0) this.#ring.cancel(this.#acceptOp);
    else this.#closeListener();
    return this;
  }

  #closeListener(): void {
    // as node:net: the path is free again once the server stops (clients already connected go on)
    if (this.#file) {
      removeSocketFile(this.#file);
      this.#file = null;
    }
    if (this.#fd >= 0) {
      const fd = this.#fd;
      this.#fd = -1;
      // Through the ring, as sockets: the epoll fallback forgets the descriptor first.
      try {
        this.#closeOp = this.#ring.closeFd(this, fd);
      } catch {
        native().sockClose(fd); // the ring is closed
      }
    }
    this.#maybeEmitClose();
  }

  #maybeEmitClose(): void {
    if (!this.#closing || this.#fd >= 0 || this.#acceptOp >= 0 || this.#closeOp >= 0 || this.#open > 0) return;
    this.#closing = false;
    process.nextTick(() => this.emit('close'));
  }

  /**
   * node:net's ref(): the listening keeps the process alive again (the
   * default). Connections are their own: each keeps it alive until closed
   * or unref'd.
   */
  ref(): this {
    this.#refed = true;
    this.#ring.setRef(this, true);
    this.#retry?.ref();
    return this;
  }

  /**
   * node:net's unref(): the process may exit while this server listens (its
   * accept stops holding the event loop). Accepted connections still hold it;
   * so does the listener's close while in flight.
   */
  unref(): this {
    this.#refed = false;
    this.#ring.setRef(this, false);
    this.#retry?.unref();
    return this;
  }
}

/** A TCP server on this thread's ring. */
export function createServer(options?: ServerOptions | ((socket: Socket) => void), onConnection?: (socket: Socket) => void): Server {
  if (typeof options === 'function') return new Server({}, options);
  return new Server(options ?? {}, onConnection);
}

/**
 * connect(port, host?, cb?), connect(path, cb?) or connect({ port, host, path, timeout, signal, ...socket options }, cb?).
 * 'connect' (and cb) when connected; errors are node:net-shaped (ECONNREFUSED,
 * ENOENT for a missing unix path, ETIMEDOUT for `timeout`, ABORT_ERR for `signal`).
 */
export function connect(options: ConnectOptions | number | string, host?: string | (() => void), cb?: () => void): Socket {
  if (typeof host === 'function') {
    cb = host;
    host = undefined;
  }
  const o: ConnectOptions =
    typeof options === 'object' && options !== null
      ? { ...options }
      : isPipeName(options)
        ? { path: options }
        : { port: options as number, ...(host !== undefined ? { host } : {}) };
  const ring = currentRing();
  if (o.path !== undefined) {
    if (o.port !== undefined || o.host !== undefined) throw new InvalidArgumentError('connect takes a path or a port and host, not both');
    return connectUnix(ring, o, cb);
  }
  const port = validatePort(o.port);
  validateSocketOptions(o);
  const h = o.host ?? 'localhost';
  if (o.timeout !== undefined && (!Number.isInteger(o.timeout) || o.timeout < 0)) throw new InvalidArgumentError('timeout must be a non-negative integer (ms)');
  const local = localBind(o);
  const socket = makeSocket({ ring, options: o, pool: o.pool ?? defaultPool(), fd: -1 });
  if (cb) socket.once('connect', cb);
  if (parseAddress(h)) {
    socket.connectTo(sockaddr(h, port), o.timeout, o.signal, local);
  } else {
    // Connecting from the start: writes queue until the address is known.
    socket.beginConnect();
    resolveAddress(h, port, o.family ?? 0).then(
      (addr) => socket.connectTo(addr, o.timeout, o.signal, local),
      (err: Error) => socket.fail(err),
    );
  }
  return socket;
}

/** connect() to a unix domain socket: no lookup, no local bind. */
function connectUnix(ring: IoRing, o: ConnectOptions, cb: (() => void) | undefined): Socket {
  const addr = unixSockaddr(o.path as string);
  validateSocketOptions(o);
  if (o.timeout !== undefined && (!Number.isInteger(o.timeout) || o.timeout < 0)) throw new InvalidArgumentError('timeout must be a non-negative integer (ms)');
  const socket = makeSocket({ ring, options: o, pool: o.pool ?? defaultPool(), fd: -1, unix: true });
  if (cb) socket.once('connect', cb);
  socket.connectTo(addr, o.timeout, o.signal);
  return socket;
}

/** localAddress (an IP literal) and localPort, checked here so that a bad one throws at the call. */
function localBind(o: ConnectOptions): LocalBind | undefined {
  const { localAddress: address, localPort: port } = o;
  if (address === undefined && port === undefined) return undefined;
  if (address !== undefined && addressFamily(address) === 0) {
    throw new InvalidAddressError(`localAddress must be an IPv4 or IPv6 literal, got ${String(address)}`);
  }
  return { address, port: port === undefined ? undefined : validatePort(port) };
}

