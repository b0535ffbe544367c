/**
 * Server for `maio/net`: node:net's Server (an EventEmitter) over a maio
 * Server. Connections arrive through the maio server's multishot accept and
 * are handed out as maio/net Sockets (stream.Duplex).
 *
 * ref()/unref(): the armed multishot accept is an operation in flight, and
 * the ring holds the event loop while one is, so a listening server keeps
 * the process alive whatever unref() says; both are no-ops.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, ServerNotRunningError } from '../../core/errors';
import { Server as MaioServer, type ServerOptions as MaioServerOptions } from '../server';
import type { Socket as MaioSocket } from '../socket';
import { Socket, kAttach } from './socket';

export interface ServerOptions {
  allowHalfOpen?: boolean;
  /** accepted sockets start paused (no reads until resume()) */
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  highWaterMark?: number;
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

  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    }
    if (options === undefined || options === null) options = {};
    if (typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
    this.#opts = { ...options };
    const maio: MaioServerOptions = { ...options.maio, allowHalfOpen: true };
    if (options.noDelay !== undefined) maio.noDelay = options.noDelay;
    if (options.keepAlive !== undefined) {
      maio.keepAlive = options.keepAlive;
      if (options.keepAliveInitialDelay !== undefined) maio.keepAliveInitialDelay = Math.floor(options.keepAliveInitialDelay / 1000);
    }
    this.#inner = new MaioServer(maio, (s) => this.#onConnection(s));
    this.#inner.on('listening', () => this.emit('listening'));
    this.#inner.on('error', (err: Error) => this.emit('error', err));
    this.#inner.on('close', () => {
      this.#innerClosed = true;
      this.#maybeEmitClose();
    });
    if (connectionListener) this.on('connection', connectionListener);
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
    });
    socket[kAttach](inner, false);
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
   * node:net's overloads: listen(port[, host][, backlog][, cb]),
   * listen({ port, host, backlog, reusePort, ipv6Only }[, cb]). Unix paths and
   * handles are not supported.
   */
  listen(...args: unknown[]): this {
    const a0 = args[0];
    if (typeof a0 === 'string' && !/^[0-9]*$/.test(a0)) throw new InvalidArgumentError('maio/net listens on TCP only (unix domain socket paths are not supported)');
    if (typeof a0 === 'object' && a0 !== null) {
      const o = a0 as { path?: unknown; handle?: unknown; fd?: unknown; signal?: AbortSignal };
      if (o.path !== undefined || o.handle !== undefined || o.fd !== undefined) {
        throw new InvalidArgumentError('maio/net listens on TCP ports only (path, handle and fd are not supported)');
      }
      if (o.signal) {
        if (o.signal.aborted) process.nextTick(() => this.close());
        else o.signal.addEventListener('abort', () => this.close(), { once: true });
      }
    }
    // node:net treats an empty port ('' / undefined / null) as 0.
    if (a0 === '' || a0 === null) args[0] = 0;
    this.#inner.listen(...args);
    return this;
  }

  get listening(): boolean {
    return this.#inner.listening;
  }

  address(): AddressInfo | null {
    return this.#inner.address();
  }

  /**
   * Stops accepting; 'close' (and cb) once every connection has closed.
   * Not listening: cb gets ERR_SERVER_NOT_RUNNING, as in node:net.
   */
  close(cb?: (err?: Error) => void): this {
    if (!this.#inner.listening) {
      if (cb) {
        if (this.#closing) this.once('close', cb);
        else process.nextTick(cb, new ServerNotRunningError());
      }
      return this;
    }
    if (cb) this.once('close', () => cb());
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
  get connections(): number {
    return this.#sockets.size;
  }

  /** The maio server underneath (IoBuffer-level access). */
  get maioServer(): MaioServer {
    return this.#inner;
  }

  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
