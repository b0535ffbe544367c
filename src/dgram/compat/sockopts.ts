/**
 * node:dgram's socket options (broadcast, TTLs, multicast, membership) as
 * setsockopt calls on a UdpSocket's fd, through the generic native int and
 * bytes entries. Errors come back as node's: `setTTL EINVAL` with errno and
 * syscall named after the method, as libuv's checks and the kernel give them.
 */
import { endianness } from 'node:os';
import { native } from '../../core/native';
import { parseAddress } from '../../net/address';
import { SOL_SOCKET } from '../../net/sockopt';
import { errnoException } from './errors';

// Linux values (include/uapi/linux/in.h, in6.h, asm-generic/socket.h).
const SO_BROADCAST = 6;
const IPPROTO_IP = 0;
const IP_TTL = 2;
const IP_MULTICAST_IF = 32;
const IP_MULTICAST_TTL = 33;
const IP_MULTICAST_LOOP = 34;
const IP_ADD_MEMBERSHIP = 35;
const IP_DROP_MEMBERSHIP = 36;
const IP_ADD_SOURCE_MEMBERSHIP = 39;
const IP_DROP_SOURCE_MEMBERSHIP = 40;
const IPPROTO_IPV6 = 41;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_ADD_MEMBERSHIP = 20;
const IPV6_DROP_MEMBERSHIP = 21;
// include/uapi/linux/in.h: protocol-independent source-specific joins (RFC 3678), what libuv uses for IPv6.
const MCAST_JOIN_SOURCE_GROUP = 46;
const MCAST_LEAVE_SOURCE_GROUP = 47;
const AF_INET6 = 10;
const EINVAL = -22;

export type Family = 4 | 6;

function set(fd: number, level: number, name: number, value: number | Uint8Array, syscall: string): void {
  try {
    if (typeof value === 'number') native().sockSetInt(fd, level, name, value);
    else native().sockSetBytes(fd, level, name, value);
  } catch (err) {
    throw errnoException(err, syscall);
  }
}

/** An int option within [min, max] (libuv's range checks: EINVAL outside). */
function ranged(fd: number, level: number, name: number, v: number, min: number, max: number, syscall: string): void {
  if (!Number.isInteger(v) || v < min || v > max) throw errnoException(EINVAL, syscall);
  set(fd, level, name, v, syscall);
}

export function setBroadcast(fd: number, on: boolean): void {
  set(fd, SOL_SOCKET, SO_BROADCAST, on ? 1 : 0, 'setBroadcast');
}

export function setTTL(fd: number, family: Family, ttl: number): void {
  if (family === 4) ranged(fd, IPPROTO_IP, IP_TTL, ttl, 1, 255, 'setTTL');
  else ranged(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, 1, 255, 'setTTL');
}

export function setMulticastTTL(fd: number, family: Family, ttl: number): void {
  if (family === 4) ranged(fd, IPPROTO_IP, IP_MULTICAST_TTL, ttl, 0, 255, 'setMulticastTTL');
  else ranged(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl, 0, 255, 'setMulticastTTL');
}

export function setMulticastLoopback(fd: number, family: Family, on: boolean): void {
  if (family === 4) set(fd, IPPROTO_IP, IP_MULTICAST_LOOP, on ? 1 : 0, 'setMulticastLoopback');
  else set(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on ? 1 : 0, 'setMulticastLoopback');
}

/** An address of the family as bytes, or EINVAL for `syscall`. */
function addressBytes(address: string, family: Family, syscall: string): { bytes: Uint8Array; scopeId: number } {
  let parsed;
  try {
    parsed = parseAddress(address);
  } catch {
    parsed = undefined; // an unknown zone name
  }
  if (parsed === undefined || parsed.family !== family) throw errnoException(EINVAL, syscall);
  return { bytes: Uint8Array.from(parsed.bytes), scopeId: parsed.scopeId };
}

/** udp4: the interface's IPv4 address; udp6: '::%name' or '::%index' names the interface by its zone. */
export function setMulticastInterface(fd: number, family: Family, iface: string): void {
  const syscall = 'setMulticastInterface';
  if (family === 4) set(fd, IPPROTO_IP, IP_MULTICAST_IF, addressBytes(iface, 4, syscall).bytes, syscall);
  else set(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, addressBytes(iface, 6, syscall).scopeId, syscall);
}

/** Joins or leaves a group: struct ip_mreq (group, interface) or ipv6_mreq (group, ifindex). */
export function membership(fd: number, family: Family, group: string, iface: string | undefined, join: boolean): void {
  const syscall = join ? 'addMembership' : 'dropMembership';
  const g = addressBytes(group, family, syscall);
  if (family === 4) {
    const req = new Uint8Array(8);
    req.set(g.bytes, 0);
    if (iface !== undefined) req.set(addressBytes(iface, 4, syscall).bytes, 4); // else INADDR_ANY: the kernel picks
    set(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, req, syscall);
  } else {
    const req = new Uint8Array(20);
    req.set(g.bytes, 0);
    const index = iface === undefined ? 0 : addressBytes(iface, 6, syscall).scopeId;
    new DataView(req.buffer).setInt32(16, index, true);
    set(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, req, syscall);
  }
}

/** An address of either family, or undefined (libuv tries IPv4, then IPv6). */
function anyAddress(address: string): { family: Family; bytes: Uint8Array; scopeId: number } | undefined {
  try {
    const p = parseAddress(address);
    return p && { family: p.family as Family, bytes: Uint8Array.from(p.bytes), scopeId: p.scopeId };
  } catch {
    return undefined; // an unknown zone name
  }
}

/**
 * struct group_source_req: u32 interface, then two struct sockaddr_storage
 * (128 bytes each) aligned as a pointer: offsets 8 and 136 on 64-bit, 4 and
 * 132 on 32-bit.
 */
const PTR_ALIGN = /64|s390x/.test(process.arch) ? 8 : 4;
const SS_SIZE = 128;

function groupSourceReq(ifindex: number, group: { bytes: Uint8Array; scopeId: number }, source: { bytes: Uint8Array; scopeId: number }): Uint8Array {
  const req = new Uint8Array(PTR_ALIGN + 2 * SS_SIZE);
  const dv = new DataView(req.buffer);
  const le = endianness() === 'LE';
  dv.setUint32(0, ifindex, le);
  // A sockaddr_in6 in each storage: family (host order), port 0, flowinfo 0, address, scope id.
  for (const [at, a] of [[PTR_ALIGN, group], [PTR_ALIGN + SS_SIZE, source]] as const) {
    dv.setUint16(at, AF_INET6, le);
    req.set(a.bytes, at + 8);
    dv.setUint32(at + 24, a.scopeId, le);
  }
  return req;
}

/**
 * Source-specific (SSM) join or leave, as libuv does it: the group's family
 * picks the call, not the socket's (an IPv4 group on a udp6 socket works; an
 * IPv6 group on a udp4 socket is the kernel's ENOPROTOOPT). IPv4: struct
 * ip_mreq_source (group, interface address, source). IPv6:
 * MCAST_JOIN_SOURCE_GROUP with struct group_source_req, the interface the
 * zone of `iface` ('::%lo', '::%1'), 0 (the kernel's route) without one.
 */
export function sourceMembership(fd: number, source: string, group: string, iface: string | undefined, join: boolean): void {
  const syscall = join ? 'addSourceSpecificMembership' : 'dropSourceSpecificMembership';
  const g = anyAddress(group);
  const src = anyAddress(source);
  if (g === undefined || src === undefined || src.family !== g.family) throw errnoException(EINVAL, syscall);
  if (g.family === 4) {
    const req = new Uint8Array(12);
    req.set(g.bytes, 0);
    if (iface !== undefined) req.set(addressBytes(iface, 4, syscall).bytes, 4);
    req.set(src.bytes, 8);
    set(fd, IPPROTO_IP, join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP, req, syscall);
    return;
  }
  const ifindex = iface === undefined ? 0 : addressBytes(iface, 6, syscall).scopeId;
  set(fd, IPPROTO_IPV6, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP, groupSourceReq(ifindex, g, src), syscall);
}
