/**
 * Socket addresses as the kernel reads them: sockaddr_in / sockaddr_in6 bytes,
 * built and read here in TypeScript so the ring can take a connect address
 * straight from its aux array without a native call.
 *
 * Layout on Linux (sa_family_t is host-endian, the rest network order):
 *   sockaddr_in   16 bytes: family u16 | port u16 BE | addr[4] | zero[8]
 *   sockaddr_in6  28 bytes: family u16 | port u16 BE | flowinfo u32 BE |
 *                           addr[16] | scope_id u32 (host order)
 *
 * Text forms follow node:net: the same literals are accepted (inet_pton's
 * rules: no leading zeros in dotted quads, one `::`, an IPv4 tail, a `%zone`
 * on IPv6), and decoding prints what node:net's address() prints (inet_ntop).
 */
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { AddressInfo } from 'node:net';
import { InvalidAddressError, InvalidPortError } from '../core/errors';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCKADDR_IN_LEN = 16;
export const SOCKADDR_IN6_LEN = 28;
/** Enough room for either kind. */
export const SOCKADDR_MAX_LEN = SOCKADDR_IN6_LEN;

const hostLE = os.endianness() === 'LE';

const V4_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const V4_RE = new RegExp(`^${V4_OCTET}(?:\\.${V4_OCTET}){3}$`);
const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;
/* What Linux allows in an interface name (IFNAMSIZ 16 with the NUL). */
const IFNAME_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;

/**
 * Checks a port like node:net does (ERR_SOCKET_BAD_PORT there): an integer
 * 0..65535, as a number or a string of decimal digits.
 */
export function validatePort(port: unknown): number {
  if (typeof port === 'number') {
    if (Number.isInteger(port) && port >= 0 && port <= 0xffff) return port;
  } else if (typeof port === 'string' && /^[0-9]{1,5}$/.test(port)) {
    const n = Number(port);
    if (n <= 0xffff) return n;
  }
  throw new InvalidPortError(`port must be an integer in 0..65535 (a number or decimal string), got ${describe(port)}`);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}...` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  return `a ${typeof v}`;
}

/** 4 bytes for a dotted quad, or undefined. */
function parseIPv4(s: string): number[] | undefined {
  if (!V4_RE.test(s)) return undefined;
  return s.split('.').map(Number);
}

/** 16 bytes for an IPv6 literal without zone, or undefined. */
function parseIPv6(s: string): number[] | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = groups(halves[0]!);
  const tail = compressed ? groups(halves[1]!) : [];
  const last = compressed ? tail : head;

  const words = (list: string[], isLast: boolean): number[] | undefined => {
    const out: number[] = [];
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (isLast && i === list.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (HEX_GROUP_RE.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const hw = words(head, last === head);
  const tw = compressed ? words(tail, true) : [];
  if (!hw || !tw) return undefined;
  const total = hw.length + tw.length;
  // `::` stands for at least one zero group.
  if (compressed ? total > 7 : total !== 8) return undefined;
  const all = [...hw, ...new Array<number>(8 - total).fill(0), ...tw];
  const bytes: number[] = [];
  for (const w of all) bytes.push(w >> 8, w & 0xff);
  return bytes;
}

/** Interface index for a zone: a number, or an interface name looked up in sysfs. */
function zoneIndex(zone: string, host: string): number {
  if (/^[0-9]{1,10}$/.test(zone)) {
    const n = Number(zone);
    if (n <= 0xffffffff) return n;
  } else if (IFNAME_RE.test(zone) && zone !== '.' && zone !== '..') {
    try {
      const n = Number(fs.readFileSync(`/sys/class/net/${zone}/ifindex`, 'latin1').trim());
      if (Number.isInteger(n) && n > 0) return n;
    } catch {
      // fall through: no such interface
    }
    throw new InvalidAddressError(`invalid address ${describe(host)}: no network interface named ${describe(zone)}`);
  }
  throw new InvalidAddressError(`invalid address ${describe(host)}: bad zone id ${describe(zone)}`);
}

/** Interface name for an index, as node:net prints zones; the number if none matches. */
function zoneName(index: number): string {
  try {
    for (const name of fs.readdirSync('/sys/class/net')) {
      try {
        if (Number(fs.readFileSync(`/sys/class/net/${name}/ifindex`, 'latin1').trim()) === index) return name;
      } catch {
        // an interface that went away while we looked
      }
    }
  } catch {
    // no sysfs
  }
  return String(index);
}

export interface ParsedAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order */
  bytes: number[];
  /** IPv6 scope id (interface index), 0 if none */
  scopeId: number;
}

/** Parses an IPv4 or IPv6 literal (with an optional %zone on IPv6), or undefined. */
export function parseAddress(host: string): ParsedAddress | undefined {
  if (typeof host !== 'string') return undefined;
  const v4 = parseIPv4(host);
  if (v4) return { family: 4, bytes: v4, scopeId: 0 };
  const pct = host.indexOf('%');
  const v6 = parseIPv6(pct < 0 ? host : host.slice(0, pct));
  if (!v6) return undefined;
  if (pct < 0) return { family: 6, bytes: v6, scopeId: 0 };
  return { family: 6, bytes: v6, scopeId: zoneIndex(host.slice(pct + 1), host) };
}

/** 4 or 6 for an address literal maio accepts, 0 otherwise (like net.isIP, but zones must exist). */
export function addressFamily(host: string): 0 | 4 | 6 {
  try {
    return parseAddress(host)?.family ?? 0;
  } catch {
    return 0;
  }
}

function parseOrThrow(host: unknown): ParsedAddress {
  if (typeof host !== 'string') {
    throw new InvalidAddressError(`address must be a string, got ${describe(host)}`);
  }
  const parsed = parseAddress(host);
  if (!parsed) {
    throw new InvalidAddressError(
      `invalid address ${describe(host)}: not an IPv4 or IPv6 literal (resolve names with resolveAddress())`,
    );
  }
  return parsed;
}

/**
 * Writes the sockaddr for `host` (an IP literal) and `port` into `out` at
 * `offset` and returns its length (16 or 28). Without `out`, only returns the
 * length it would need.
 */
export function encodeSockaddr(host: string, port: number | string, out?: Uint8Array, offset = 0): number {
  const addr = parseOrThrow(host);
  const p = validatePort(port);
  const len = addr.family === 4 ? SOCKADDR_IN_LEN : SOCKADDR_IN6_LEN;
  if (out === undefined) return len;
  if (!(out instanceof Uint8Array)) {
    throw new InvalidAddressError(`out must be a Uint8Array, got ${describe(out)}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + len > out.length) {
    throw new InvalidAddressError(
      `a ${len}-byte sockaddr does not fit at offset ${describe(offset)} of a ${out.length}-byte array`,
    );
  }
  const view = new DataView(out.buffer, out.byteOffset + offset, len);
  out.fill(0, offset, offset + len);
  view.setUint16(0, addr.family === 4 ? AF_INET : AF_INET6, hostLE);
  view.setUint16(2, p, false);
  if (addr.family === 4) {
    out.set(addr.bytes, offset + 4);
  } else {
    // flowinfo (bytes 4..7) stays 0
    out.set(addr.bytes, offset + 8);
    view.setUint32(24, addr.scopeId, hostLE);
  }
  return len;
}

/** A fresh Uint8Array holding the sockaddr for an IP literal and port. */
export function sockaddr(host: string, port: number | string): Uint8Array {
  const out = new Uint8Array(encodeSockaddr(host, port));
  encodeSockaddr(host, port, out, 0);
  return out;
}

function formatIPv6(b: Uint8Array, at: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  // Longest run of two or more zero words (the first of equal runs) becomes `::`.
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i !== 0) s += ':';
    // IPv4-compatible and IPv4-mapped addresses end in a dotted quad, as inet_ntop prints them.
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      s += `${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
      return s;
    }
    s += words[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) s += ':';
  return s;
}

/**
 * Reads a sockaddr_in / sockaddr_in6 (as getsockname or the ring wrote it)
 * into node:net's AddressInfo shape. A nonzero IPv6 scope id becomes a
 * `%zone` (the interface name when one has that index).
 */
export function decodeSockaddr(bytes: Uint8Array, offset = 0): AddressInfo {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidAddressError(`sockaddr must be a Uint8Array, got ${describe(bytes)}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + 2 > bytes.length) {
    throw new InvalidAddressError(`no sockaddr at offset ${describe(offset)} of a ${bytes.length}-byte array`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, bytes.length - offset);
  const family = view.getUint16(0, hostLE);
  const need = family === AF_INET ? SOCKADDR_IN_LEN : family === AF_INET6 ? SOCKADDR_IN6_LEN : -1;
  if (need < 0) throw new InvalidAddressError(`unsupported address family ${family} in sockaddr`);
  if (bytes.length - offset < need) {
    throw new InvalidAddressError(`truncated sockaddr: family ${family} needs ${need} bytes, got ${bytes.length - offset}`);
  }
  const port = view.getUint16(2, false);
  if (family === AF_INET) {
    const o = offset + 4;
    return { address: `${bytes[o]}.${bytes[o + 1]}.${bytes[o + 2]}.${bytes[o + 3]}`, family: 'IPv4', port };
  }
  let address = formatIPv6(bytes, offset + 8);
  const scope = view.getUint32(24, hostLE);
  if (scope !== 0) address += `%${zoneName(scope)}`;
  return { address, family: 'IPv6', port };
}

export type LookupFamily = 0 | 4 | 6;

/**
 * Like encodeSockaddr, but `host` may also be a name ('localhost', ...),
 * resolved with node:dns lookup (the resolver node:net uses, first result in
 * the system's order). `family` 4 or 6 restricts the lookup. Lookup failures
 * reject with node:dns's own errors (code 'ENOTFOUND', ...).
 */
export async function resolveAddress(host: string, port: number | string, family: LookupFamily = 0): Promise<Uint8Array> {
  validatePort(port);
  if (family !== 0 && family !== 4 && family !== 6) {
    throw new InvalidAddressError(`family must be 0, 4 or 6, got ${describe(family)}`);
  }
  if (typeof host !== 'string' || host.length === 0 || host.length > 253) {
    throw new InvalidAddressError(`host must be a non-empty string of at most 253 characters, got ${describe(host)}`);
  }
  const literal = parseAddress(host);
  if (literal) {
    if (family !== 0 && literal.family !== family) {
      throw new InvalidAddressError(`address ${describe(host)} is not an IPv${family} address`);
    }
    return sockaddr(host, port);
  }
  if (/[\s%/\\[\]]/.test(host)) {
    throw new InvalidAddressError(`invalid host ${describe(host)}: neither an IP literal nor a host name`);
  }
  const found = await dns.promises.lookup(host, { family });
  return sockaddr(found.address, port);
}

let localAddrs: Set<string> | null = null;
/** Loopback, or an address of one of this host's interfaces (read once). */
export function isLocalAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  if (addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.')) return true;
  if (!localAddrs) {
    localAddrs = new Set();
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) localAddrs.add(a.address);
  }
  return localAddrs.has(addr.startsWith('::ffff:') ? addr.slice(7) : addr);
}
