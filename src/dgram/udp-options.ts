/**
 * A UdpSocket's options: checked once at creation, and the socket options
 * they become. UDP_GRO and UDP_SEGMENT are tried here, at run time: a kernel
 * or socket that refuses one turns it off, and the reason is kept for stats().
 */
import { InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { SOL_UDP, UDP_GRO, UDP_SEGMENT, native } from '../core/native';
import type { IoPool } from '../pool/pool';
import type { ZeroCopyMode } from '../net/zc-policy';
import { IPPROTO_IPV6, IPV6_V6ONLY, SOL_SOCKET, SO_RCVBUF, SO_REUSEADDR, SO_REUSEPORT, SO_SNDBUF } from '../net/sockopt';

export type UdpType = 'udp4' | 'udp6';

/** Resolves a host name, as dns.lookup(hostname, family, callback) does (node:dgram's `lookup` option). */
export type UdpLookupFunction = (hostname: string, family: 4 | 6, callback: (err: Error | null, address: string, family?: number) => void) => void;

export interface UdpSocketOptions {
  type: UdpType;
  reuseAddr?: boolean;
  /** SO_REUSEPORT: several sockets bound to one port share its datagrams. */
  reusePort?: boolean;
  /** udp6 only: IPv6 traffic only (no IPv4-mapped peers). */
  ipv6Only?: boolean;
  /** Pool the receive buffers come from and sends must use (default: the thread's default pool). */
  pool?: IoPool;
  /** SO_RCVBUF / SO_SNDBUF in bytes. */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** Receive buffer size: a datagram longer than this minus ~64 header bytes is truncated (default 65536, or the pool's largest class). */
  readBufferSize?: number;
  /** Bytes of received buffers the application may hold before the socket stops reading (default 1 MiB). */
  readQuota?: number;
  /** UDP_GRO: the kernel may hand over several datagrams of one flow in one buffer (default true). */
  gro?: boolean;
  /** Datagrams of one turn to one destination with one size leave as one UDP_SEGMENT send (default true). */
  gso?: boolean;
  /** Resolves host names given to bind, connect and send (default dns.lookup); the socket's family is asked for (A for udp4, AAAA for udp6). */
  lookup?: UdpLookupFunction;
  /**
   * Zero-copy sends (SENDMSG_ZC; epoll: MSG_ZEROCOPY) for sends of
   * zeroCopyMinBytes or more, as a TCP socket's option: 'auto' (default)
   * probes and keeps zero-copy only while the kernel reports it did not copy,
   * 'always' / 'never' force (udp-zero-copy.ts).
   */
  zeroCopy?: ZeroCopyMode;
  /** Smallest send (a datagram, or a UDP_SEGMENT batch) that may go zero-copy (default 16 KiB). */
  zeroCopyMinBytes?: number;
  /** Zero-copy sends 'auto' looks at before deciding (default 8). */
  zeroCopyProbeSends?: number;
}

/** Whether an offload is on, and if not, why. */
export interface OffloadState {
  enabled: boolean;
  reason: string;
}

function bool(v: unknown, what: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${what} must be a boolean, got ${typeof v}`);
  return v;
}

function int(v: unknown, what: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new InvalidArgumentError(`${what} must be an integer`);
  if (v < min || v > max) throw new OutOfRangeError(`${what} must be in [${min}, ${max}], got ${v}`);
  return v;
}

export interface CheckedOptions {
  family: 4 | 6;
  reuseAddr: boolean;
  reusePort: boolean;
  ipv6Only: boolean;
  recvBufferSize: number | undefined;
  sendBufferSize: number | undefined;
  readBufferSize: number | undefined;
  readQuota: number;
  gro: boolean;
  gso: boolean;
  lookup: UdpLookupFunction | undefined;
  zeroCopy: ZeroCopyMode;
  zeroCopyMinBytes: number | undefined;
  zeroCopyProbeSends: number | undefined;
}

function zeroCopyMode(v: unknown): ZeroCopyMode {
  if (v === undefined) return 'auto';
  if (v !== 'auto' && v !== 'always' && v !== 'never') throw new InvalidArgumentError(`zeroCopy must be 'auto', 'always' or 'never', got ${String(v)}`);
  return v;
}

export function checkOptions(o: UdpSocketOptions): CheckedOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('options must be an object with type "udp4" or "udp6"');
  if (o.type !== 'udp4' && o.type !== 'udp6') throw new InvalidArgumentError(`type must be "udp4" or "udp6", got ${String(o.type)}`);
  return {
    family: o.type === 'udp4' ? 4 : 6,
    reuseAddr: bool(o.reuseAddr, 'reuseAddr', false),
    reusePort: bool(o.reusePort, 'reusePort', false),
    ipv6Only: bool(o.ipv6Only, 'ipv6Only', false),
    recvBufferSize: int(o.recvBufferSize, 'recvBufferSize', 1, 0x7fffffff),
    sendBufferSize: int(o.sendBufferSize, 'sendBufferSize', 1, 0x7fffffff),
    readBufferSize: int(o.readBufferSize, 'readBufferSize', 256, 1 << 30),
    readQuota: int(o.readQuota, 'readQuota', 1, Number.MAX_SAFE_INTEGER) ?? 1024 * 1024,
    gro: bool(o.gro, 'gro', true),
    gso: bool(o.gso, 'gso', true),
    lookup: lookupOption(o.lookup),
    zeroCopy: zeroCopyMode(o.zeroCopy),
    zeroCopyMinBytes: int(o.zeroCopyMinBytes, 'zeroCopyMinBytes', 0, Number.MAX_SAFE_INTEGER),
    zeroCopyProbeSends: int(o.zeroCopyProbeSends, 'zeroCopyProbeSends', 1, 1 << 20),
  };
}

function lookupOption(v: unknown): UdpLookupFunction | undefined {
  if (v !== undefined && typeof v !== 'function') throw new InvalidArgumentError(`lookup must be a function, got ${typeof v}`);
  return v as UdpLookupFunction | undefined;
}

function reason(err: unknown, what: string): string {
  const code = (err as { code?: string })?.code ?? 'error';
  return `${code}: the kernel refused ${what}`;
}

/** Applies the options to a new socket; returns what became of GRO and GSO. */
export function applyOptions(fd: number, o: CheckedOptions): { gro: OffloadState; gso: OffloadState } {
  const n = native();
  if (o.reuseAddr) n.sockSetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (o.reusePort) n.sockSetInt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (o.family === 6) n.sockSetInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.ipv6Only ? 1 : 0);
  if (o.recvBufferSize !== undefined) n.sockSetInt(fd, SOL_SOCKET, SO_RCVBUF, o.recvBufferSize);
  if (o.sendBufferSize !== undefined) n.sockSetInt(fd, SOL_SOCKET, SO_SNDBUF, o.sendBufferSize);
  const gro: OffloadState = { enabled: false, reason: 'off (gro: false)' };
  if (o.gro) {
    try {
      n.sockSetInt(fd, SOL_UDP, UDP_GRO, 1);
      gro.enabled = true;
      gro.reason = '';
    } catch (err) {
      gro.reason = reason(err, 'UDP_GRO');
    }
  }
  const gso: OffloadState = { enabled: false, reason: 'off (gso: false)' };
  if (o.gso) {
    // Reading the socket's segment size proves the kernel knows UDP_SEGMENT (4.18+).
    try {
      n.sockGetInt(fd, SOL_UDP, UDP_SEGMENT);
      gso.enabled = true;
      gso.reason = '';
    } catch (err) {
      gso.reason = reason(err, 'UDP_SEGMENT');
    }
  }
  return { gro, gso };
}
