/**
 * `maio/net`: node:net's API over maio's sockets, for code written against
 * node:net (stream.Duplex sockets of Buffers; see socket.ts for the copies
 * this costs and server.ts for what a Server supports).
 *
 *   const net = require('maio/net');     // or: import net from 'maio/net'
 *   net.createServer((s) => s.pipe(s)).listen(8080);
 */
import { Server, type ServerOptions } from './server';
import { Socket, normalizeConnectArgs, type ConnectListener, type SocketOptions, type TcpConnectOptions } from './socket';

export { Server, Socket };
export type { ServerOptions, SocketOptions, TcpConnectOptions, ConnectListener };
/** node:net's old alias of Socket. */
export const Stream = Socket;
// Address helpers need no sockets: node:net's own.
export { isIP, isIPv4, isIPv6, BlockList, SocketAddress } from 'node:net';

/** createServer([options][, connectionListener]), like node:net. */
export function createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
  return new Server(options, connectionListener);
}

/**
 * connect(port[, host][, cb]) or connect(options[, cb]), like node:net:
 * options host, port, family, timeout (idle), noDelay, keepAlive,
 * keepAliveInitialDelay, allowHalfOpen, signal, lookup, and `maio` (maio's
 * socket options).
 */
export function connect(port: number | string, host?: string, connectListener?: ConnectListener): Socket;
export function connect(port: number | string, connectListener?: ConnectListener): Socket;
export function connect(options: TcpConnectOptions, connectListener?: ConnectListener): Socket;
export function connect(...args: unknown[]): Socket {
  const [o] = normalizeConnectArgs(args);
  const { port: _p, host: _h, family: _f, timeout: _t, lookup: _l, localAddress: _la, localPort: _lp, path: _path, ...sockOpts } = o;
  const socket = new Socket(sockOpts);
  return socket.connect(...args);
}

export const createConnection = connect;
