/**
 * `maio/net`: node:net's API over maio's sockets, for code written against
 * node:net (stream.Duplex sockets of Buffers; see socket.ts for the copies
 * this costs and server.ts for what a Server supports).
 *
 *   const net = require('maio/net');     // or: import net from 'maio/net'
 *   net.createServer((s) => s.pipe(s)).listen(8080);
 */
import { Server as ServerClass, type ServerOptions } from './server';
import {
  Socket as SocketClass,
  kConnect,
  normalizeConnectArgs,
  type ConnectListener,
  type OnReadOptions,
  type SocketOptions,
  type TcpConnectOptions,
} from './socket';

export type { ServerOptions, SocketOptions, TcpConnectOptions, ConnectListener, OnReadOptions };
export type { LookupFunction, LookupCallback } from './socket';
/** The classes behind `net.Socket` and `net.Server` (which also work without `new`), for the API reference. */
export type { SocketClass as NetSocket, ServerClass as NetServer };
export {
  getDefaultAutoSelectFamily,
  setDefaultAutoSelectFamily,
  getDefaultAutoSelectFamilyAttemptTimeout,
  setDefaultAutoSelectFamilyAttemptTimeout,
} from './socket';
// Address helpers need no sockets: node:net's own.
export { isIP, isIPv4, isIPv6, BlockList, SocketAddress } from 'node:net';

/**
 * node:net's Socket and Server are functions that also work without `new`
 * (`net.Socket()`); maio's are classes, so callers get them through a Proxy
 * whose call constructs. Subclassing and instanceof see the class itself.
 */
function callable<C extends new (...args: any[]) => any>(cls: C): C & ((...args: ConstructorParameters<C>) => InstanceType<C>) {
  const proxy = new Proxy(cls, { apply: (target, _this, args) => Reflect.construct(target, args) });
  // `socket.constructor === net.Socket`, as with node:net
  Object.defineProperty(cls.prototype, 'constructor', { value: proxy, writable: true, configurable: true });
  return proxy as C & ((...args: ConstructorParameters<C>) => InstanceType<C>);
}

export const Socket = callable(SocketClass);
export type Socket = SocketClass;
export const Server = callable(ServerClass);
export type Server = ServerClass;
/** node:net's old alias of Socket. */
export const Stream = Socket;
export type Stream = SocketClass;

/** createServer([options][, connectionListener]), like node:net. */
export function createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
  return new ServerClass(options, connectionListener);
}

/**
 * connect(port[, host][, cb]) or connect(options[, cb]), like node:net:
 * options host, port, family, timeout (idle), noDelay, keepAlive,
 * keepAliveInitialDelay, allowHalfOpen, signal, lookup, autoSelectFamily,
 * localAddress, localPort, onread, and `maio` (maio's socket options).
 */
export function connect(port: number | string, host?: string, connectListener?: ConnectListener): Socket;
export function connect(port: number | string, connectListener?: ConnectListener): Socket;
export function connect(options: TcpConnectOptions, connectListener?: ConnectListener): Socket;
export function connect(...args: unknown[]): Socket {
  const [o, cb] = normalizeConnectArgs(args);
  const socket = new SocketClass(o);
  // as node:net: the idle timeout is net.connect()'s option, set before connecting
  if (o.timeout) socket.setTimeout(o.timeout);
  return socket[kConnect](o, cb);
}

export const createConnection = connect;
