/**
 * node:dgram's socket options (broadcast, TTLs, multicast, membership) as
 * setsockopt calls on a UdpSocket's fd, through the generic native int and
 * bytes entries. Errors come back as node's: `setTTL EINVAL` with errno and
 * syscall named after the method, as libuv's checks and the kernel give them.
 */
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
const EINVAL = -22;
const ENOSYS = -38;

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

/** Source-specific (SSM), IPv4 only: struct ip_mreq_source (group, interface, source). */
export function sourceMembership(fd: number, family: Family, source: string, group: string, iface: string | undefined, join: boolean): void {
  const syscall = join ? 'addSourceSpecificMembership' : 'dropSourceSpecificMembership';
  // IPv6 needs MCAST_JOIN_SOURCE_GROUP's sockaddr_storage layout: not here yet.
  if (family === 6) throw errnoException(ENOSYS, syscall);
  const req = new Uint8Array(12);
  req.set(addressBytes(group, 4, syscall).bytes, 0);
  if (iface !== undefined) req.set(addressBytes(iface, 4, syscall).bytes, 4);
  req.set(addressBytes(source, 4, syscall).bytes, 8);
  set(fd, IPPROTO_IP, join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP, req, syscall);
}
