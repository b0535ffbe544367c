/**
 * node:dgram's Socket over maio's UdpSocket. Two copies node:dgram users
 * expect to own their bytes: send() copies the message into a pool buffer
 * (one copy, as node's send copies into the kernel; datagrams queued in one
 * turn to one destination still leave as one UDP_SEGMENT batch), and each
 * 'message' is a Buffer copied out of the pool buffer (node users keep
 * message Buffers, so a view of pool memory would not do; use maio's
 * UdpSocket for views).
 */
import { EventEmitter } from 'node:events';
import * as dns from 'node:dns';
import { isIP, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { UdpSocket } from '../udp-socket';
import type { UdpMessage, RemoteInfo as UdpRemoteInfo } from '../udp-message';
import type { IoPool } from '../../pool/pool';
import { native } from '../../core/native';
import { SOL_SOCKET, SO_RCVBUF, SO_SNDBUF } from '../../net/sockopt';
import {
  ArgTypeError,
  BufferOutOfBoundsError,
  DgramIsConnectedError,
  DgramNotConnectedError,
  DgramNotRunningError,
  MissingArgsError,
  SocketAlreadyBoundError,
  SocketBadBufferSizeError,
  SocketBadTypeError,
  SocketBufferSizeError,
  errnoException,
  validateFunction,
  validateNumber,
  validatePort,
  validateString,
} from './errors';
import { OutOfRangeError } from '../../net/compat/errors';
import * as opts from './sockopts';

export type SocketType = 'udp4' | 'udp6';
/** node:dgram calls it as lookup(host, family (4 or 6), callback), like dns.lookup. */
export type LookupFunction = (hostname: string, family: number, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void) => void;

export interface SocketOptions {
  type: SocketType;
  reuseAddr?: boolean;
  reusePort?: boolean;
  ipv6Only?: boolean;
  recvBufferSize?: number;
  sendBufferSize?: number;
  lookup?: LookupFunction;
  signal?: AbortSignal;
  /** maio: the pool receive and send buffers come from (default: the thread's default pool). */
  pool?: IoPool;
}

export interface BindOptions {
  port?: number;
  address?: string;
  exclusive?: boolean;
  fd?: number;
}

export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export type MessageListener = (msg: Buffer, rinfo: RemoteInfo) => void;
/** send()'s callback: the error, or null and the bytes sent. */
export type SendCallback = (error: Error | null, bytes?: number) => void;
type SendCb = SendCallback;
/** What send() takes as one datagram: a string, Buffer, TypedArray, DataView, or an array of them (their bytes in order). */
export type Message = string | ArrayBufferView | readonly (string | ArrayBufferView)[];
type Piece = ArrayBufferView;

/** Largest UDP payload: 65,535 minus the IP and UDP headers. */
const MAX_PAYLOAD = { udp4: 65507, udp6: 65527 } as const;
const EMSGSIZE = -90;
const ENOBUFS = -105;
const ECANCELED = -125;
const EBADF = -9;
const EINVAL = -22;

const BUFFER_TYPES = 'of type string or an instance of Buffer, TypedArray, or DataView';

/** A message argument as node:dgram takes it: a string, ArrayBufferView or an array of them; null when it is none of these. */
function toList(msg: unknown): Piece[] | null {
  if (typeof msg === 'string') return [Buffer.from(msg)];
  if (ArrayBuffer.isView(msg)) return [msg];
  if (!Array.isArray(msg)) return null;
  const list: Piece[] = [];
  for (const m of msg) {
    if (typeof m === 'string') list.push(Buffer.from(m));
    else if (ArrayBuffer.isView(m)) list.push(m);
    else return null;
  }
  return list;
}

/** node:dgram's offset/length form: a view of that part of the one buffer (or string). */
function slice(msg: unknown, offset: unknown, length: unknown): unknown {
  const b = typeof msg === 'string' ? Buffer.from(msg) : msg;
  if (!ArrayBuffer.isView(b)) throw new ArgTypeError('buffer', BUFFER_TYPES, msg);
  const off = (offset as number) >>> 0;
  const len = (length as number) >>> 0;
  if (off > b.byteLength) throw new BufferOutOfBoundsError('offset');
  if (off + len > b.byteLength) throw new BufferOutOfBoundsError('length');
  return Buffer.from(b.buffer, b.byteOffset + off, len);
}

/** A uint32 as node checks createSocket's buffer sizes; 0 means unset. SO_RCVBUF/SO_SNDBUF take an int (the kernel caps it anyway). */
function bufferSizeOption(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new ArgTypeError(name, 'of type number', v);
  if (!Number.isInteger(v)) throw new OutOfRangeError(name, 'an integer', v);
  if (v < 0 || v > 0xffffffff) throw new OutOfRangeError(name, '>= 0 && <= 4294967295', v);
  return v === 0 ? undefined : Math.min(v, 0x7fffffff);
}

export class Socket extends EventEmitter {
  readonly type: SocketType;
  readonly #u: UdpSocket;
  readonly #lookup: LookupFunction | undefined;
  #bind: 'unbound' | 'binding' | 'bound' = 'unbound';
  #connect: 'disconnected' | 'connecting' | 'connected' = 'disconnected';
  /** what waits for the bind to finish (sends, a connect, a close) */
  #queue: (() => void)[] | null = null;
  #closed = false;
  #queuedBytes = 0;
  #queuedCount = 0;

  constructor(type: SocketType | SocketOptions, listener?: MessageListener) {
    super();
    const o: SocketOptions = typeof type === 'string' ? { type } : type;
    if (o === null || typeof o !== 'object') throw new ArgTypeError('options', 'of type object', o);
    if (o.type !== 'udp4' && o.type !== 'udp6') throw new SocketBadTypeError();
    if (o.lookup !== undefined) validateFunction(o.lookup, 'options.lookup');
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new ArgTypeError('options.signal', 'an instance of AbortSignal', o.signal);
    const recvBufferSize = bufferSizeOption(o.recvBufferSize, 'options.recvBufferSize');
    const sendBufferSize = bufferSizeOption(o.sendBufferSize, 'options.sendBufferSize');
    this.type = o.type;
    this.#lookup = o.lookup;
    this.#u = new UdpSocket({
      type: o.type,
      reuseAddr: !!o.reuseAddr,
      reusePort: !!o.reusePort,
      ipv6Only: !!o.ipv6Only,
      recvBufferSize,
      sendBufferSize,
      pool: o.pool,
    });
    this.#u.on('message', (m, from) => this.#onMessage(m, from));
    // receive errors: ICMP errors on a connected socket (ECONNREFUSED), as node's 'recvmsg' errors
    this.#u.on('error', (err) => this.emit('error', errnoException(err, 'recvmsg')));
    if (listener !== undefined) this.on('message', listener);
    const signal = o.signal;
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (!this.#closed) this.close();
      };
      if (signal.aborted) process.nextTick(onAbort);
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  #onMessage(m: UdpMessage, from: UdpRemoteInfo): void {
    if (this.listenerCount('message') === 0) return; // as node: nobody listens, the datagram is gone
    const copy = Buffer.from(m.bytes); // the user's own bytes: the pool buffer goes back when this returns
    this.emit('message', copy, { address: from.address, family: from.family as 'IPv4' | 'IPv6', port: from.port, size: copy.length });
  }

  #healthCheck(): void {
    if (this.#closed) throw new DgramNotRunningError();
  }

  /** Runs `f` now when bound, else once the bind finishes. */
  #whenBound(f: () => void): void {
    if (this.#bind === 'bound') f();
    else (this.#queue ??= []).push(f);
  }

  #resolve(address: string, cb: (err: Error | null, ip?: string) => void): void {
    const family = this.type === 'udp4' ? 4 : 6;
    const host = address || (family === 4 ? '127.0.0.1' : '::1');
    if (this.#lookup === undefined && isIP(host) !== 0) return cb(null, host); // a literal: no lookup, no turn lost
    (this.#lookup ?? (dns.lookup as unknown as LookupFunction))(host, family, (err, ip) => (err ? cb(err) : cb(null, ip)));
  }

  bind(port?: number, address?: string, callback?: () => void): this;
  bind(port?: number, callback?: () => void): this;
  bind(callback?: () => void): this;
  bind(options: BindOptions, callback?: () => void): this;
  bind(port?: number | BindOptions | (() => void), address?: string | (() => void), callback?: () => void): this {
    this.#healthCheck();
    if (this.#bind !== 'unbound') throw new SocketAlreadyBoundError();
    const cb = [port, address, callback].find((a) => typeof a === 'function') as (() => void) | undefined;
    let host: unknown;
    let p: unknown;
    if (port !== null && typeof port === 'object') {
      if ((port as BindOptions).fd !== undefined) {
        throw new ArgTypeError('options.fd', 'undefined (maio/dgram opens its own sockets: binding an existing fd is not supported)', (port as BindOptions).fd);
      }
      host = (port as BindOptions).address || '';
      p = (port as BindOptions).port;
    } else {
      host = typeof address === 'function' ? '' : address;
      p = typeof port === 'function' ? 0 : port;
    }
    if (host !== undefined && host !== null && host !== '') validateString(host, 'address');
    const portNum = p === undefined || p === null ? 0 : validatePort(p, 'Port', true);
    const ip = (host as string) || (this.type === 'udp4' ? '0.0.0.0' : '::');
    this.#bind = 'binding';
    if (cb) this.once('listening', cb);
    this.#resolve(ip, (err, resolved) => {
      if (this.#closed) return;
      if (err) {
        this.#bind = 'unbound';
        this.#queue = null;
        this.emit('error', err);
        return;
      }
      this.#u.bind(portNum, resolved).then(
        () => this.#listening(),
        (e: unknown) => {
          this.#bind = 'unbound';
          // what waited for this bind will not run (node keeps it queued, and a close() behind it never closes)
          this.#queue = null;
          this.emit('error', errnoException(e, 'bind', resolved, portNum));
        },
      );
    });
    return this;
  }

  #listening(): void {
    if (this.#closed) return;
    this.#bind = 'bound';
    this.emit('listening');
    const q = this.#queue ?? [];
    this.#queue = null;
    for (const f of q) f();
  }

  #implicitBind(): void {
    if (this.#bind === 'unbound') this.bind({ port: 0, exclusive: true });
  }

  connect(port: number, address?: string, callback?: () => void): void;
  connect(port: number, callback: () => void): void;
  connect(port: number, address?: string | (() => void), callback?: () => void): void {
    const p = validatePort(port, 'Port', false);
    if (typeof address === 'function') {
      callback = address;
      address = '';
    } else if (address === undefined) address = '';
    validateString(address, 'address');
    this.#healthCheck();
    if (this.#connect !== 'disconnected') throw new DgramIsConnectedError();
    this.#connect = 'connecting';
    this.#implicitBind();
    const host = address;
    this.#whenBound(() => this.#doConnect(p, host, callback));
  }

  #doConnect(port: number, address: string, cb: ((err?: Error) => void) | undefined): void {
    if (cb) this.once('connect', cb);
    this.#resolve(address, (err, ip) => {
      if (this.#closed) return;
      const fail = (ex: Error): void => {
        this.#connect = 'disconnected';
        process.nextTick(() => {
          if (cb) {
            this.removeListener('connect', cb);
            cb(ex);
          } else this.emit('error', ex);
        });
      };
      if (err) return fail(err);
      this.#u.connect(port, ip).then(
        () => {
          this.#connect = 'connected';
          process.nextTick(() => this.emit('connect'));
        },
        (e: unknown) => fail(errnoException(e, 'connect', address, port)),
      );
    });
  }

  disconnect(): void {
    this.#healthCheck();
    if (this.#connect !== 'connected') throw new DgramNotConnectedError();
    try {
      this.#u.disconnect();
    } catch (e) {
      throw errnoException(e, 'disconnect');
    }
    this.#connect = 'disconnected';
  }

  remoteAddress(): AddressInfo {
    this.#healthCheck();
    if (this.#connect !== 'connected') throw new DgramNotConnectedError();
    return this.#u.remoteAddress();
  }

  address(): AddressInfo {
    this.#healthCheck();
    // as node (libuv opens the socket at bind): nothing to name before
    if (this.#bind !== 'bound') throw errnoException(EBADF, 'getsockname');
    return this.#u.address();
  }

  /**
   * send(msg[, offset, length][, port][, address][, callback]), node:dgram's
   * overloads: msg a string, Buffer, TypedArray, DataView or an array of them.
   */
  send(msg: Message, port?: number, address?: string, callback?: SendCallback): void;
  send(msg: Message, port?: number, callback?: SendCallback): void;
  send(msg: Message, callback?: SendCallback): void;
  send(msg: string | ArrayBufferView, offset: number, length: number, port?: number, address?: string, callback?: SendCallback): void;
  send(msg: string | ArrayBufferView, offset: number, length: number, port?: number, callback?: SendCallback): void;
  send(msg: string | ArrayBufferView, offset: number, length: number, callback?: SendCallback): void;
  send(buffer: unknown, offset?: unknown, length?: unknown, port?: unknown, address?: unknown, callback?: unknown): void {
    const connected = this.#connect === 'connected';
    let msg = buffer;
    if (!connected) {
      if (address || (port && typeof port !== 'function')) msg = slice(buffer, offset, length);
      else {
        callback = port;
        port = offset;
        address = length;
      }
    } else {
      if (typeof length === 'number') {
        msg = slice(buffer, offset, length);
        if (typeof port === 'function') {
          callback = port;
          port = null;
        }
      } else callback = offset;
      if (port || address) throw new DgramIsConnectedError();
    }
    const list = toList(msg);
    if (list === null) {
      if (Array.isArray(msg)) throw new ArgTypeError('buffer list arguments', BUFFER_TYPES, msg);
      throw new ArgTypeError('buffer', BUFFER_TYPES, msg);
    }
    const p = connected ? 0 : validatePort(port, 'Port', false);
    let cb = typeof callback === 'function' ? (callback as SendCb) : undefined;
    if (typeof address === 'function') {
      cb = address as SendCb;
      address = undefined;
    } else if (address !== undefined && address !== null) validateString(address, 'address');
    this.#healthCheck();
    this.#implicitBind();
    const host = (address as string | undefined | null) ?? '';
    this.#whenBound(() => {
      if (connected || this.#connect === 'connected') this.#send(list, null, '', 0, cb);
      else this.#resolve(host, (err, ip) => (err ? this.#sendFailed(err, cb) : this.#send(list, ip!, host, p, cb)));
    });
  }

  #sendFailed(err: Error, cb: SendCb | undefined): void {
    if (cb) process.nextTick(cb, err);
    else process.nextTick(() => this.emit('error', err));
  }

  /** Copies the pieces into one pool buffer and hands it to the UdpSocket (ip null: connected). */
  #send(list: Piece[], ip: string | null, host: string, port: number, cb: SendCb | undefined): void {
    if (this.#closed) return;
    let len = 0;
    for (const b of list) len += b.byteLength;
    const where = ip === null ? undefined : host || ip;
    // node's send errors go to the callback only; without one they are dropped
    const fail = (errno: unknown): void => {
      if (cb) process.nextTick(cb, errnoException(errno, 'send', where, port));
    };
    if (len > MAX_PAYLOAD[this.type]) return fail(EMSGSIZE);
    const buf = this.#u.pool.tryAlloc(Math.max(len, 1));
    if (buf === null) return fail(ENOBUFS); // the pool is out of buffers of this size
    buf.setLength(len);
    const dst = buf.bytes;
    let at = 0;
    for (const b of list) {
      dst.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), at);
      at += b.byteLength;
    }
    this.#queuedBytes += len;
    this.#queuedCount++;
    const done = (err: Error | null): void => {
      this.#queuedBytes -= len;
      this.#queuedCount--;
      if (!cb) return;
      if (err === null) cb(null, len);
      else cb(errnoException((err as { errno?: number }).errno === undefined ? ECANCELED : err, 'send', where, port));
    };
    try {
      if (ip === null) this.#u.send(buf, undefined, undefined, done);
      else this.#u.send(buf, port, ip, done);
    } catch (e) {
      this.#queuedBytes -= len;
      this.#queuedCount--;
      if (!buf.released && !buf.lent) buf.release();
      // refused before the kernel saw it (an address of the other family, ...): EINVAL, as libuv's
      fail((e as { errno?: unknown }).errno ?? EINVAL);
    }
  }

  close(callback?: () => void): this {
    if (typeof callback === 'function') this.on('close', callback);
    if (this.#queue !== null && !this.#closed) {
      // a bind in progress: close once it is done, as node:dgram does
      this.#queue.push(() => this.close());
      return this;
    }
    this.#healthCheck();
    this.#closed = true;
    this.#u.close(() => this.emit('close'));
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    await promisify((cb: () => void) => this.close(cb))();
  }

  ref(): this {
    this.#u.ref();
    return this;
  }

  unref(): this {
    this.#u.unref();
    return this;
  }

  /** The fd for the option calls: node's libuv socket exists only once bound (EBADF before). */
  #fd(syscall: string): number {
    this.#healthCheck();
    if (this.#bind !== 'bound') throw errnoException(EBADF, syscall);
    return this.#u.fd;
  }

  get #family(): 4 | 6 {
    return this.type === 'udp4' ? 4 : 6;
  }

  setBroadcast(flag: boolean): void {
    opts.setBroadcast(this.#fd('setBroadcast'), !!flag);
  }

  setTTL(ttl: number): number {
    validateNumber(ttl, 'ttl');
    opts.setTTL(this.#fd('setTTL'), this.#family, ttl);
    return ttl;
  }

  setMulticastTTL(ttl: number): number {
    validateNumber(ttl, 'ttl');
    opts.setMulticastTTL(this.#fd('setMulticastTTL'), this.#family, ttl);
    return ttl;
  }

  setMulticastLoopback(flag: boolean): boolean {
    opts.setMulticastLoopback(this.#fd('setMulticastLoopback'), this.#family, !!flag);
    return flag;
  }

  setMulticastInterface(interfaceAddress: string): void {
    this.#healthCheck();
    validateString(interfaceAddress, 'interfaceAddress');
    opts.setMulticastInterface(this.#fd('setMulticastInterface'), this.#family, interfaceAddress);
  }

  addMembership(multicastAddress: string, interfaceAddress?: string): void {
    this.#membership(multicastAddress, interfaceAddress, true);
  }

  dropMembership(multicastAddress: string, interfaceAddress?: string): void {
    this.#membership(multicastAddress, interfaceAddress, false);
  }

  #membership(group: string, iface: string | undefined, join: boolean): void {
    this.#healthCheck();
    if (!group) throw new MissingArgsError('multicastAddress');
    // the kernel needs no bind for this: the socket's own fd, bound or not
    opts.membership(this.#u.fd, this.#family, group, iface || undefined, join);
  }

  addSourceSpecificMembership(sourceAddress: string, groupAddress: string, interfaceAddress?: string): void {
    this.#sourceMembership(sourceAddress, groupAddress, interfaceAddress, true);
  }

  dropSourceSpecificMembership(sourceAddress: string, groupAddress: string, interfaceAddress?: string): void {
    this.#sourceMembership(sourceAddress, groupAddress, interfaceAddress, false);
  }

  #sourceMembership(source: string, group: string, iface: string | undefined, join: boolean): void {
    this.#healthCheck();
    validateString(source, 'sourceAddress');
    validateString(group, 'groupAddress');
    opts.sourceMembership(this.#u.fd, source, group, iface || undefined, join);
  }

  #bufferSize(name: number, size: number | undefined, syscall: string): number {
    if (size !== undefined && size >>> 0 !== size) throw new SocketBadBufferSizeError();
    if (this.#closed || this.#bind !== 'bound') throw new SocketBufferSizeError(EBADF, syscall);
    try {
      if (size !== undefined && size > 0) native().sockSetInt(this.#u.fd, SOL_SOCKET, name, size);
      return native().sockGetInt(this.#u.fd, SOL_SOCKET, name);
    } catch (e) {
      throw new SocketBufferSizeError(e, syscall);
    }
  }

  setRecvBufferSize(size: number): void {
    this.#bufferSize(SO_RCVBUF, size, 'uv_recv_buffer_size');
  }

  setSendBufferSize(size: number): void {
    this.#bufferSize(SO_SNDBUF, size, 'uv_send_buffer_size');
  }

  /** SO_RCVBUF as the kernel reports it (Linux doubles what was set), as node:dgram returns it. */
  getRecvBufferSize(): number {
    return this.#bufferSize(SO_RCVBUF, undefined, 'uv_recv_buffer_size');
  }

  getSendBufferSize(): number {
    return this.#bufferSize(SO_SNDBUF, undefined, 'uv_send_buffer_size');
  }

  /** Bytes of datagrams queued or with the kernel, not yet sent. */
  getSendQueueSize(): number {
    return this.#queuedBytes;
  }

  getSendQueueCount(): number {
    return this.#queuedCount;
  }

  /** maio: the UdpSocket underneath (its stats(): GSO/GRO batches, counts). */
  get udpSocket(): UdpSocket {
    return this.#u;
  }
}
