/**
 * Server for `maio/net`: node:net's Server (an EventEmitter) over a maio
 * Server. Connections arrive through the maio server's multishot accept and
 * are handed out as maio/net Sockets (stream.Duplex).
 *
 * ref()/unref(): the maio server's, as node:net's: an unref'd server's
 * listening does not hold the event loop (before listen() too); its
 * connections are their own.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, ServerNotRunningError } from '../../core/errors';
import { Server as MaioServer, type ListenOptions as MaioListenOptions, type ServerOptions as MaioServerOptions } from '../server';
import type { Socket as MaioSocket } from '../socket';
import { InvalidArgTypeError, InvalidArgValueError, ServerAlreadyListenError, asListenError, validateAbortSignal, validateBoolean, validateNumber, validatePort } from './errors';
import { Socket, kAttach } from './socket';

export interface ServerOptions {
  allowHalfOpen?: boolean;
  /** accepted sockets start paused (no reads until resume()) */
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  highWaterMark?: number;
  /** accepted sockets' 'data' chunks are valid only until the listeners return (see SocketOptions) */
  transientChunks?: boolean;
  /** maio options for the server and its sockets (pool, readQuota, reusePort, ...) */
  maio?: MaioServerOptions;
}

export class Server extends EventEmitter {
  /** Refuse connections above this many (node:net's property; 'drop' is emitted for each). */
  maxConnections: number | undefined = undefined;
  readonly #opts: ServerOptions;
  readonly #inner: MaioServer;
  readonly #sockets = new Set<Socket>();
  #closing = false;
  #innerClosed = false;
  /** listening on an adopted unix socket fd: node:net's address() is null then (its pipe handle has no name) */
  #unnamed = false;
  /** the listen in progress is on a path: node:net's listen errors then carry port -1 */
  #pathListen = false;
  /**
   * the path of the last listen(path): node:net's address() keeps answering
   * with it once that listen failed or the server closed (its _pipeName)
   */
  #pipeName: string | null = null;

  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    }
    if (options === undefined || options === null) options = {};
    if (typeof options !== 'object') throw new InvalidArgTypeError('options', 'object', options);
    if (options.keepAliveInitialDelay !== undefined) validateNumber(options.keepAliveInitialDelay, 'options.keepAliveInitialDelay');
    if (options.highWaterMark !== undefined) validateNumber(options.highWaterMark, 'options.highWaterMark');
    if (options.transientChunks !== undefined) validateBoolean(options.transientChunks, 'options.transientChunks');
    this.#opts = { ...options };
    const maio: MaioServerOptions = { ...options.maio, allowHalfOpen: true };
    if (options.noDelay !== undefined) maio.noDelay = options.noDelay;
    if (options.keepAlive !== undefined) {
      maio.keepAlive = options.keepAlive;
      if (options.keepAliveInitialDelay !== undefined) maio.keepAliveInitialDelay = Math.floor(options.keepAliveInitialDelay / 1000);
    }
    this.#inner = new MaioServer(maio, (s) => this.#onConnection(s));
    this.#inner.on('listening', () => this.emit('listening'));
    // node:net words listen errors its way: syscall 'listen', the errno's description
    this.#inner.on('error', (err: Error) => {
      if (this.#inner.listening) return void this.emit('error', err);
      const e = asListenError(err) as Error & { errno?: unknown; port?: number };
      if (this.#pathListen && typeof e.errno === 'number') e.port = -1;
      this.emit('error', e);
    });
    this.#inner.on('close', () => {
      this.#innerClosed = true;
      this.#maybeEmitClose();
    });
    // node:net ignores a listener that is not a function
    if (typeof connectionListener === 'function') this.on('connection', connectionListener);
  }

  #onConnection(inner: MaioSocket): void {
    if (this.maxConnections !== undefined && this.#sockets.size >= this.maxConnections) {
      const data = {
        localAddress: inner.localAddress,
        localPort: inner.localPort,
        localFamily: (inner.address() as AddressInfo).family,
        remoteAddress: inner.remoteAddress,
        remotePort: inner.remotePort,
        remoteFamily: inner.remoteFamily,
      };
      inner.destroy();
      this.emit('drop', data);
      return;
    }
    const o = this.#opts;
    const socket = new Socket({
      allowHalfOpen: o.allowHalfOpen === true,
      ...(o.highWaterMark !== undefined ? { highWaterMark: o.highWaterMark } : {}),
      ...(o.transientChunks === true ? { transientChunks: true } : {}),
    });
    socket[kAttach](inner);
    if (o.pauseOnConnect) {
      socket.pause();
      inner.pause();
    }
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#maybeEmitClose();
    });
    this.emit('connection', socket);
  }

  /**
   * node:net's overloads: listen([port[, host[, backlog]]][, cb]),
   * listen(path[, backlog][, cb]), listen(handle[, backlog][, cb]) with a
   * handle `{ fd }`, listen({ port, host, path, fd, handle, backlog,
   * readableAll, writableAll, reusePort, ipv6Only, signal }[, cb]), with its
   * argument checks. A handle that is node's own TCP or Pipe object is not
   * supported.
   */
  listen(...args: unknown[]): this {
    const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as () => void) : undefined;
    const a0 = args[0];
    type Options = {
      port?: unknown;
      host?: unknown;
      backlog?: unknown;
      path?: unknown;
      handle?: unknown;
      _handle?: unknown;
      fd?: unknown;
      signal?: unknown;
      reusePort?: boolean;
      ipv6Only?: boolean;
      readableAll?: unknown;
      writableAll?: unknown;
    };
    let o: Options;
    if (typeof a0 === 'object' && a0 !== null) o = { ...a0 };
    else if (typeof a0 === 'string' && !(Number(a0) >= 0)) o = { path: a0 };
    else {
      o = { port: a0 };
      if (typeof args[1] === 'string') o.host = args[1];
    }
    if (this.#inner.listening) throw new ServerAlreadyListenError();
    // node:net: a handle (or _handle) stands in for the options; one with an fd is listened on
    const handle = o._handle ?? o.handle;
    if (typeof handle === 'object' && handle !== null) {
      if (!(typeof (handle as { fd?: unknown }).fd === 'number' && (handle as { fd: number }).fd >= 0)) {
        throw new InvalidArgumentError("maio/net listens on a handle only as { fd } (node's own TCP and Pipe handles are not supported)");
      }
      o = { ...o, fd: (handle as { fd: number }).fd };
    }
    if (o.signal !== undefined) validateAbortSignal(o.signal, 'options.signal');
    const backlog = toBacklog(o.backlog) ?? toBacklog(args.length > 1 && args[1]) ?? toBacklog(args.length > 2 && args[2]);
    if (typeof o.fd === 'number' && o.fd >= 0) return this.#listenOn({ fd: o.fd, ...(backlog !== undefined ? { backlog } : {}) }, o.signal, cb);
    // node:net: no arguments, a callback only, or a port of null / undefined, listens on a free port
    if (args.length === 0 || typeof a0 === 'function' || (o.port === undefined && 'port' in o) || o.port === null) o.port = 0;
    if (typeof o.port !== 'number' && typeof o.port !== 'string') {
      if (typeof o.path === 'string' && o.path !== '' && !(Number(o.path) >= 0)) {
        return this.#listenOn(
          {
            path: o.path,
            ...(backlog !== undefined ? { backlog } : {}),
            // node:net chmods only for a literal true
            ...(o.readableAll === true ? { readableAll: true } : {}),
            ...(o.writableAll === true ? { writableAll: true } : {}),
          },
          o.signal,
          cb,
        );
      }
      if (!('port' in o) && !('path' in o)) throw new InvalidArgValueError('options', a0, 'must have the property "port" or "path"');
      throw new InvalidArgValueError('options', o);
    }
    const port = validatePort(o.port, 'options.port');
    // node:net looks a host up with dns.lookup, which throws at once for a host that is not a string
    if (o.host && typeof o.host !== 'string') throw new InvalidArgTypeError('hostname', 'string', o.host);
    return this.#listenOn(
      {
        port,
        ...(o.host ? { host: o.host as string } : {}),
        ...(backlog !== undefined ? { backlog } : {}),
        ...(o.reusePort !== undefined ? { reusePort: o.reusePort } : {}),
        ...(o.ipv6Only !== undefined ? { ipv6Only: o.ipv6Only } : {}),
      },
      o.signal,
      cb,
    );
  }

  /** The checked listen options to the maio server, with the signal and callback. */
  #listenOn(options: MaioListenOptions, signal: unknown, cb: (() => void) | undefined): this {
    if (signal instanceof AbortSignal) {
      if (signal.aborted) process.nextTick(() => this.close());
      else {
        const onAbort = (): void => void this.close();
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
    if (cb) this.once('listening', cb);
    this.#unnamed = false;
    this.#pathListen = options.path !== undefined;
    this.#pipeName = options.path ?? null;
    if (options.fd !== undefined) this.once('listening', () => (this.#unnamed = typeof this.#inner.address() === 'string'));
    this.#inner.listen(options);
    return this;
  }

  // Getters read private fields only of a real instance: on Server.prototype they answer like node:net's.
  get listening(): boolean {
    return #inner in this && this.#inner.listening;
  }

  /** { address, family, port }; the path for a unix socket (null for one adopted by fd, as node:net; still the path once closed, as there too). */
  address(): AddressInfo | string | null {
    if (this.#inner.listening) return this.#unnamed ? null : this.#inner.address();
    return this.#pipeName;
  }

  /**
   * Stops accepting; 'close' (and cb) once every connection has closed.
   * Not listening: cb gets ERR_SERVER_NOT_RUNNING, as in node:net.
   */
  close(cb?: (err?: Error) => void): this {
    // node:net ignores a cb that is not a function (it does not throw)
    if (typeof cb !== 'function') cb = undefined;
    if (!this.#inner.listening) {
      if (cb) {
        if (this.#closing) this.once('close', cb);
        else process.nextTick(cb, new ServerNotRunningError());
      }
      return this;
    }
    if (cb) this.once('close', () => cb!());
    this.#closing = true;
    this.#inner.close();
    return this;
  }

  /** The maio server has closed (its sockets too); 'close' once the adapter's sockets have said so. */
  #maybeEmitClose(): void {
    if (!this.#closing || !this.#innerClosed || this.#sockets.size > 0) return;
    this.#closing = false;
    this.#innerClosed = false;
    this.emit('close');
  }

  /** node:net's callback form: cb(null, open connections). */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.#sockets.size;
    process.nextTick(cb, null, n);
    return this;
  }

  /** @deprecated like node:net's: use getConnections() */
  get connections(): number | undefined {
    return #sockets in this ? this.#sockets.size : undefined;
  }

  /** The maio server underneath (IoBuffer-level access). */
  get maioServer(): MaioServer | null {
    return #inner in this ? this.#inner : null;
  }

  /** `await using server = ...`: closes a listening server (resolves once it has closed), as node:net's. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.listening) return;
    await new Promise<void>((resolve, reject) => this.close((err) => (err ? reject(err) : resolve())));
  }

  ref(): this {
    this.#inner.ref();
    return this;
  }
  unref(): this {
    this.#inner.unref();
    return this;
  }
}

/** node:net's backlog from an argument: a number >= 0 (0 and anything else: none given). */
function toBacklog(v: unknown): number | undefined {
  const n = Number(v);
  return n > 0 ? n : undefined;
}
