/**
 * `maio/dgram`: node:dgram's API over maio's UdpSocket, for code written
 * against node:dgram (Buffers in and out; see socket.ts for the copies this
 * costs).
 *
 *   const dgram = require('maio/dgram');     // or: import dgram from 'maio/dgram'
 *   const s = dgram.createSocket('udp4', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
 *   s.bind(41234);
 */
import { Socket as SocketClass, type MessageListener, type SocketOptions, type SocketType } from './socket';

export type { SocketOptions, SocketType, MessageListener, BindOptions, RemoteInfo, LookupFunction, SendCallback, Message } from './socket';
/** The class behind `dgram.Socket`, for the API reference. */
export type { SocketClass as DgramSocket };

export const Socket = SocketClass;
export type Socket = SocketClass;

/** createSocket(type | options[, messageListener]), like node:dgram. */
export function createSocket(type: SocketType | SocketOptions, listener?: MessageListener): Socket {
  return new SocketClass(type, listener);
}
