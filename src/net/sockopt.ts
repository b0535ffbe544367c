/**
 * Socket options by the names users know from node:net (noDelay, keepAlive,
 * buffer sizes, ...) mapped to Linux level/name numbers, plus the raw
 * setsockopt/getsockopt escape. Every function takes an fd; the socket
 * classes wrap them. Errors: InvalidArgumentError / OutOfRangeError for bad
 * arguments, node:net-shaped errno errors (code 'EBADF', errno, syscall) from
 * the kernel.
 */
import { native, SOCKOPT_MAX } from '../core/native';
import { fromNative, InvalidArgumentError, OutOfRangeError } from '../core/errors';

// Linux values (include/uapi/asm-generic/socket.h, linux/tcp.h, linux/in6.h).
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_KEEPALIVE = 9;
export const SO_LINGER = 13;
export const SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const TCP_USER_TIMEOUT = 18;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;

/* Kernel limits (net/ipv4/tcp.c): MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT. */
const MAX_KEEPIDLE_S = 32767;
const MAX_KEEPINTVL_S = 32767;
const MAX_KEEPCNT = 127;
const INT32_MAX = 0x7fffffff;

/** Native errors become maio's error classes; errno errors pass through. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

function checkBool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${what} must be a boolean, got ${typeof v}`);
  return v;
}

function checkInt(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new InvalidArgumentError(`${what} must be an integer, got ${typeof v === 'number' ? v : typeof v}`);
  }
  if (v < min || v > max) throw new OutOfRangeError(`${what} must be in [${min}, ${max}], got ${v}`);
  return v;
}

function setFlag(fd: number, level: number, name: number, on: boolean, what: string): void {
  const v = checkBool(on, what) ? 1 : 0;
  // no closure through call(): a server sets TCP_NODELAY at every accept
  try {
    native().sockSetInt(fd, level, name, v);
  } catch (err) {
    throw fromNative(err);
  }
}

function getFlag(fd: number, level: number, name: number): boolean {
  return call(() => native().sockGetInt(fd, level, name)) !== 0;
}

// ---- raw escape ------------------------------------------------------------

/** setsockopt with an int (numbers) or raw bytes (Uint8Array, at most SOCKOPT_MAX). */
export function setsockopt(fd: number, level: number, name: number, value: number | Uint8Array): void {
  if (value instanceof Uint8Array) {
    call(() => native().sockSetBytes(fd, level, name, value));
  } else if (typeof value === 'number') {
    call(() => native().sockSetInt(fd, level, name, value));
  } else {
    throw new InvalidArgumentError(`value must be a number or a Uint8Array, got ${typeof value}`);
  }
}

/** getsockopt of an int-valued option. */
export function getsockopt(fd: number, level: number, name: number): number {
  return call(() => native().sockGetInt(fd, level, name));
}

/** getsockopt of a struct-valued option: up to maxLen bytes, as many as the kernel wrote. */
export function getsockoptBytes(fd: number, level: number, name: number, maxLen: number = SOCKOPT_MAX): Uint8Array {
  return call(() => native().sockGetBytes(fd, level, name, maxLen));
}

// ---- named options ------------------------------------------------------

/** TCP_NODELAY: send small segments at once instead of coalescing (Nagle off). */
export function setNoDelay(fd: number, noDelay = true): void {
  setFlag(fd, IPPROTO_TCP, TCP_NODELAY, noDelay, 'noDelay');
}
export function getNoDelay(fd: number): boolean {
  return getFlag(fd, IPPROTO_TCP, TCP_NODELAY);
}

export interface KeepAliveProbes {
  /** TCP_KEEPINTVL in milliseconds (rounded down to whole seconds, at least 1 s) */
  interval?: number;
  /** TCP_KEEPCNT: unanswered probes before the connection is dropped */
  count?: number;
}

export interface KeepAliveState {
  enabled: boolean;
  /** TCP_KEEPIDLE, seconds */
  idleSeconds: number;
  /** TCP_KEEPINTVL, seconds */
  intervalSeconds: number;
  /** TCP_KEEPCNT */
  count: number;
}

function msToSeconds(ms: number, what: string, maxSeconds: number): number {
  checkInt(ms, what, 0, maxSeconds * 1000 + 999);
  return Math.max(1, Math.floor(ms / 1000));
}

/**
 * SO_KEEPALIVE, as net.Socket#setKeepAlive(enable, initialDelay): a nonzero
 * initialDelay (ms) sets TCP_KEEPIDLE in whole seconds (at least 1); the
 * probe interval and count can be set too.
 */
export function setKeepAlive(fd: number, enable = false, initialDelay = 0, probes: KeepAliveProbes = {}): void {
  checkBool(enable, 'enable');
  // Validate everything before changing anything.
  const idle = initialDelay === 0 ? 0 : msToSeconds(initialDelay, 'initialDelay', MAX_KEEPIDLE_S);
  const interval = probes.interval === undefined ? 0 : msToSeconds(probes.interval, 'interval', MAX_KEEPINTVL_S);
  const count = probes.count === undefined ? 0 : checkInt(probes.count, 'count', 1, MAX_KEEPCNT);
  call(() => {
    const n = native();
    if (enable) {
      if (idle) n.sockSetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle);
      if (interval) n.sockSetInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval);
      if (count) n.sockSetInt(fd, IPPROTO_TCP, TCP_KEEPCNT, count);
    }
    n.sockSetInt(fd, SOL_SOCKET, SO_KEEPALIVE, enable ? 1 : 0);
  });
}
export function getKeepAlive(fd: number): KeepAliveState {
  return call(() => {
    const n = native();
    return {
      enabled: n.sockGetInt(fd, SOL_SOCKET, SO_KEEPALIVE) !== 0,
      idleSeconds: n.sockGetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE),
      intervalSeconds: n.sockGetInt(fd, IPPROTO_TCP, TCP_KEEPINTVL),
      count: n.sockGetInt(fd, IPPROTO_TCP, TCP_KEEPCNT),
    };
  });
}

/**
 * SO_RCVBUF. Returns what the kernel then reports: it doubles the request
 * (for its bookkeeping) and clamps it to net.core.rmem_max.
 */
export function setRecvBufferSize(fd: number, bytes: number): number {
  const v = checkInt(bytes, 'size', 1, INT32_MAX);
  return call(() => {
    native().sockSetInt(fd, SOL_SOCKET, SO_RCVBUF, v);
    return native().sockGetInt(fd, SOL_SOCKET, SO_RCVBUF);
  });
}
export function getRecvBufferSize(fd: number): number {
  return getsockopt(fd, SOL_SOCKET, SO_RCVBUF);
}

/** SO_SNDBUF; like setRecvBufferSize, returns the kernel's (doubled, clamped) value. */
export function setSendBufferSize(fd: number, bytes: number): number {
  const v = checkInt(bytes, 'size', 1, INT32_MAX);
  return call(() => {
    native().sockSetInt(fd, SOL_SOCKET, SO_SNDBUF, v);
    return native().sockGetInt(fd, SOL_SOCKET, SO_SNDBUF);
  });
}
export function getSendBufferSize(fd: number): number {
  return getsockopt(fd, SOL_SOCKET, SO_SNDBUF);
}

/** SO_REUSEADDR: bind a listening port that still has connections in TIME_WAIT. */
export function setReuseAddr(fd: number, on: boolean): void {
  setFlag(fd, SOL_SOCKET, SO_REUSEADDR, on, 'reuseAddr');
}
export function getReuseAddr(fd: number): boolean {
  return getFlag(fd, SOL_SOCKET, SO_REUSEADDR);
}

/** SO_REUSEPORT: several sockets listen on one port; the kernel spreads connections. */
export function setReusePort(fd: number, on: boolean): void {
  setFlag(fd, SOL_SOCKET, SO_REUSEPORT, on, 'reusePort');
}
export function getReusePort(fd: number): boolean {
  return getFlag(fd, SOL_SOCKET, SO_REUSEPORT);
}

/** IPV6_V6ONLY (node:net's ipv6Only): an IPv6 socket that does not also take IPv4. Set before bind. */
export function setV6Only(fd: number, on: boolean): void {
  setFlag(fd, IPPROTO_IPV6, IPV6_V6ONLY, on, 'v6Only');
}
export function getV6Only(fd: number): boolean {
  return getFlag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
}

/** TCP_USER_TIMEOUT in ms: how long sent data may stay unacknowledged before the connection fails; 0 = kernel default. */
export function setUserTimeout(fd: number, ms: number): void {
  const v = checkInt(ms, 'timeout', 0, INT32_MAX);
  call(() => native().sockSetInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, v));
}
export function getUserTimeout(fd: number): number {
  return getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
}

/* struct linger { int l_onoff; int l_linger; }, host byte order. */
const LINGER_LEN = 8;
const hostLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * SO_LINGER: `seconds` makes close() wait that long for unsent data (0 resets
 * the connection on close); null turns lingering off (the default).
 */
export function setLinger(fd: number, seconds: number | null): void {
  const on = seconds !== null;
  const s = on ? checkInt(seconds, 'linger', 0, INT32_MAX) : 0;
  const bytes = new Uint8Array(LINGER_LEN);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, on ? 1 : 0, hostLE);
  view.setInt32(4, s, hostLE);
  call(() => native().sockSetBytes(fd, SOL_SOCKET, SO_LINGER, bytes));
}
/** The linger timeout in seconds, or null when lingering is off. */
export function getLinger(fd: number): number | null {
  const bytes = getsockoptBytes(fd, SOL_SOCKET, SO_LINGER, LINGER_LEN);
  if (bytes.length < LINGER_LEN) throw new OutOfRangeError(`SO_LINGER returned ${bytes.length} bytes, expected ${LINGER_LEN}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return view.getInt32(0, hostLE) !== 0 ? view.getInt32(4, hostLE) : null;
}

/** Options a socket or server applies in one go (each absent one is left alone). */
export interface SocketOptions {
  noDelay?: boolean;
  keepAlive?: boolean;
  /** ms, as in net.Socket#setKeepAlive */
  keepAliveInitialDelay?: number;
  keepAliveInterval?: number;
  keepAliveCount?: number;
  recvBufferSize?: number;
  sendBufferSize?: number;
  reuseAddr?: boolean;
  reusePort?: boolean;
  ipv6Only?: boolean;
  userTimeout?: number;
  linger?: number | null;
}

export function applySocketOptions(fd: number, o: SocketOptions): void {
  if (o.noDelay !== undefined) setNoDelay(fd, o.noDelay);
  if (o.keepAlive !== undefined) {
    const probes: KeepAliveProbes = {};
    if (o.keepAliveInterval !== undefined) probes.interval = o.keepAliveInterval;
    if (o.keepAliveCount !== undefined) probes.count = o.keepAliveCount;
    setKeepAlive(fd, o.keepAlive, o.keepAliveInitialDelay ?? 0, probes);
  }
  if (o.recvBufferSize !== undefined) setRecvBufferSize(fd, o.recvBufferSize);
  if (o.sendBufferSize !== undefined) setSendBufferSize(fd, o.sendBufferSize);
  if (o.reuseAddr !== undefined) setReuseAddr(fd, o.reuseAddr);
  if (o.reusePort !== undefined) setReusePort(fd, o.reusePort);
  if (o.ipv6Only !== undefined) setV6Only(fd, o.ipv6Only);
  if (o.userTimeout !== undefined) setUserTimeout(fd, o.userTimeout);
  if (o.linger !== undefined) setLinger(fd, o.linger);
}
