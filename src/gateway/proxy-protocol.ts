/**
 * The PROXY protocol (HAProxy's specification, versions 1 and 2): a header a
 * proxy sends first on a connection to a backend so the backend learns the
 * client's address. Encoders for the two versions and one incremental decoder
 * that recognises either at the start of a stream.
 *
 * v1 is one text line: "PROXY TCP4|TCP6 src dst srcport dstport\r\n" or
 * "PROXY UNKNOWN ...\r\n", at most 107 bytes. v2 is binary: a 12-byte
 * signature, version/command, family/transport, a 16-bit length, then the
 * addresses and optional TLVs (skipped by their length here).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ProxyProtocolError } from '../core/errors';

export type ProxyProtocolVersion = 'v1' | 'v2';

/** The two ends of the proxied connection, as the header tells them. */
export interface ProxyAddresses {
  family: 'IPv4' | 'IPv6';
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

export interface ProxyHeader {
  version: 1 | 2;
  /** 'local': the sender's own connection (a health check); use the socket's addresses */
  command: 'proxy' | 'local';
  /** null: UNKNOWN (v1), UNSPEC or AF_UNIX (v2), or LOCAL: the receiver uses the connection's own addresses */
  addresses: ProxyAddresses | null;
  /** v2 type-length-value extensions, undecoded */
  tlvs: { type: number; value: Uint8Array }[];
}

export type DecodeResult =
  /** more bytes are needed (nothing seen so far contradicts a header) */
  | { done: false }
  /** `length`: header bytes; what follows them is the client's data */
  | { done: true; header: ProxyHeader; length: number };

export const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
const V1_PREFIX = Uint8Array.from(Buffer.from('PROXY '));
/** The specification's bound on a v1 line, CRLF included. */
export const V1_MAX_LENGTH = 107;
/** Default bound on a v2 header (16 fixed bytes + addresses + TLVs); the length field allows 65,551. */
export const V2_DEFAULT_MAX_LENGTH = 16 + 2048;

// ---- addresses ----------------------------------------------------------

/** "::ffff:1.2.3.4" -> "1.2.3.4": the IPv4 client of a dual-stack socket. */
export function unmapV4(addr: string): string {
  return addr.startsWith('::ffff:') && isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

function v4Bytes(addr: string, out: Uint8Array, at: number): void {
  const parts = addr.split('.');
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
}

function v6Bytes(addr: string, out: Uint8Array, at: number): void {
  let s = addr.split('%')[0]!;
  // An IPv4 tail ("::ffff:1.2.3.4") becomes two groups.
  const tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail) {
    const b = new Uint8Array(4);
    v4Bytes(tail[2]!, b, 0);
    s = `${tail[1]}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r];
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i]!, 16);
    out[at + 2 * i] = g >> 8;
    out[at + 2 * i + 1] = g & 0xff;
  }
}

function v6String(b: Uint8Array, at: number): string {
  // An IPv4-mapped address keeps its dotted tail, as node:net writes it.
  let mapped = b[at + 10] === 0xff && b[at + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = b[at + i] === 0;
  if (mapped) return `::ffff:${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  // RFC 5952: the longest run (of two or more) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * The addresses to announce for a client `source` seen at `destination`:
 * IPv4 when both are IPv4 (mapped forms unmapped), else IPv6 (an IPv4 end
 * written as ::ffff:a.b.c.d). null when either is unknown.
 */
export function addressesOf(source: string | undefined, sourcePort: number | undefined, destination: string | undefined, destinationPort: number | undefined): ProxyAddresses | null {
  if (!source || !destination || sourcePort === undefined || destinationPort === undefined) return null;
  const s = unmapV4(source);
  const d = unmapV4(destination);
  if (isIPv4(s) && isIPv4(d)) return { family: 'IPv4', sourceAddress: s, sourcePort, destinationAddress: d, destinationPort };
  const six = (a: string) => (isIPv4(a) ? `::ffff:${a}` : a);
  if (!isIPv6(six(s)) || !isIPv6(six(d))) return null;
  return { family: 'IPv6', sourceAddress: six(s), sourcePort, destinationAddress: six(d), destinationPort };
}

// ---- encoders -----------------------------------------------------------

/** A v1 line; null addresses give "PROXY UNKNOWN\r\n". */
export function encodeV1(a: ProxyAddresses | null): Buffer {
  if (a === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  checkAddresses(a);
  const fam = a.family === 'IPv4' ? 'TCP4' : 'TCP6';
  // The addresses in their shortest form (the v6 byte round trip normalises them).
  const text = (addr: string) => (a.family === 'IPv4' ? addr : v6String(bytesOf(addr, 16), 0));
  return Buffer.from(`PROXY ${fam} ${text(a.sourceAddress)} ${text(a.destinationAddress)} ${a.sourcePort} ${a.destinationPort}\r\n`, 'latin1');
}

/** A v2 header: PROXY over TCP with the addresses, or LOCAL (null addresses). */
export function encodeV2(a: ProxyAddresses | null, tlvs: { type: number; value: Uint8Array }[] = []): Buffer {
  let tlvLen = 0;
  for (const t of tlvs) {
    if (!Number.isInteger(t.type) || t.type < 0 || t.type > 255 || !(t.value instanceof Uint8Array) || t.value.length > 0xffff) {
      throw new ProxyProtocolError('a TLV needs a type in 0..255 and a value of at most 65,535 bytes');
    }
    tlvLen += 3 + t.value.length;
  }
  if (a !== null) checkAddresses(a);
  const addrLen = a === null ? 0 : a.family === 'IPv4' ? 12 : 36;
  if (addrLen + tlvLen > 0xffff) throw new ProxyProtocolError('the v2 header would exceed 65,535 bytes after its fixed part');
  const out = Buffer.alloc(16 + addrLen + tlvLen);
  out.set(V2_SIGNATURE, 0);
  out[12] = a === null ? 0x20 : 0x21; // version 2, LOCAL or PROXY
  out[13] = a === null ? 0x00 : a.family === 'IPv4' ? 0x11 : 0x21; // UNSPEC, or INET/INET6 over STREAM
  out.writeUInt16BE(addrLen + tlvLen, 14);
  if (a !== null) {
    const n = a.family === 'IPv4' ? 4 : 16;
    out.set(bytesOf(a.sourceAddress, n), 16);
    out.set(bytesOf(a.destinationAddress, n), 16 + n);
    out.writeUInt16BE(a.sourcePort, 16 + 2 * n);
    out.writeUInt16BE(a.destinationPort, 18 + 2 * n);
  }
  let at = 16 + addrLen;
  for (const t of tlvs) {
    out[at] = t.type;
    out.writeUInt16BE(t.value.length, at + 1);
    out.set(t.value, at + 3);
    at += 3 + t.value.length;
  }
  return out;
}

export function encodeProxyHeader(version: ProxyProtocolVersion, a: ProxyAddresses | null): Buffer {
  return version === 'v1' ? encodeV1(a) : encodeV2(a);
}

function bytesOf(addr: string, n: 4 | 16): Uint8Array {
  const out = new Uint8Array(n);
  if (n === 4) v4Bytes(addr, out, 0);
  else v6Bytes(addr, out, 0);
  return out;
}

function checkAddresses(a: ProxyAddresses): void {
  const ok = a.family === 'IPv4' ? isIPv4 : isIPv6;
  if (!ok(a.sourceAddress) || !ok(a.destinationAddress)) throw new ProxyProtocolError(`addresses must both be ${a.family} literals, got ${a.sourceAddress} and ${a.destinationAddress}`);
  for (const p of [a.sourcePort, a.destinationPort]) if (!Number.isInteger(p) || p < 0 || p > 65535) throw new ProxyProtocolError(`port must be in 0..65535, got ${p}`);
}

// ---- decoder ------------------------------------------------------------

/**
 * Looks for a v1 or v2 header at the start of `buf` (everything received so
 * far). Returns { done: false } while the bytes could still become one, the
 * header and its length once complete; throws ProxyProtocolError when they
 * cannot (wrong signature, bad field, longer than `maxLength`).
 */
export function decodeProxyHeader(buf: Uint8Array, maxLength = V2_DEFAULT_MAX_LENGTH): DecodeResult {
  if (buf.length === 0) return { done: false };
  if (buf[0] === 0x50) return decodeV1(buf);
  if (buf[0] === 0x0d) return decodeV2(buf, maxLength);
  throw new ProxyProtocolError('no PROXY protocol header (neither "PROXY " nor the v2 signature)');
}

function prefixMismatch(buf: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return true;
  return false;
}

function decodeV1(buf: Uint8Array): DecodeResult {
  if (prefixMismatch(buf, V1_PREFIX)) throw new ProxyProtocolError('no PROXY protocol header (bytes start like "PROXY " but differ)');
  const scan = Math.min(buf.length, V1_MAX_LENGTH);
  let end = -1;
  for (let i = V1_PREFIX.length; i < scan; i++) {
    if (buf[i] === 0x0a) {
      if (buf[i - 1] !== 0x0d) throw new ProxyProtocolError('v1 header: a line feed without the carriage return before it');
      end = i + 1;
      break;
    }
  }
  if (end < 0) {
    if (buf.length >= V1_MAX_LENGTH) throw new ProxyProtocolError(`v1 header: no CRLF within ${V1_MAX_LENGTH} bytes`);
    return { done: false };
  }
  const line = Buffer.from(buf.buffer, buf.byteOffset, end - 2).toString('latin1');
  const f = line.split(' ');
  const header: ProxyHeader = { version: 1, command: 'proxy', addresses: null, tlvs: [] };
  // UNKNOWN: whatever follows is ignored, the receiver uses the connection's addresses.
  if (f[1] === 'UNKNOWN') return { done: true, header, length: end };
  if (f[1] !== 'TCP4' && f[1] !== 'TCP6') throw new ProxyProtocolError(`v1 header: protocol must be TCP4, TCP6 or UNKNOWN, got ${JSON.stringify(f[1] ?? '')}`);
  if (f.length !== 6) throw new ProxyProtocolError(`v1 header: ${f[1]} needs 4 fields separated by single spaces, got ${f.length - 2}`);
  const family = f[1] === 'TCP4' ? 'IPv4' : 'IPv6';
  const isIt = family === 'IPv4' ? isIPv4 : isIPv6;
  for (const a of [f[2]!, f[3]!]) {
    if (!isIt(a) || a.includes('%')) throw new ProxyProtocolError(`v1 header: ${JSON.stringify(a)} is not an ${family} address`);
  }
  const port = (s: string) => {
    if (!/^(0|[1-9][0-9]{0,4})$/.test(s) || Number(s) > 65535) throw new ProxyProtocolError(`v1 header: ${JSON.stringify(s)} is not a port (0..65535, no leading zero)`);
    return Number(s);
  };
  header.addresses = { family, sourceAddress: f[2]!, destinationAddress: f[3]!, sourcePort: port(f[4]!), destinationPort: port(f[5]!) };
  return { done: true, header, length: end };
}

function decodeV2(buf: Uint8Array, maxLength: number): DecodeResult {
  if (prefixMismatch(buf, V2_SIGNATURE)) throw new ProxyProtocolError('no PROXY protocol header (bytes start like the v2 signature but differ)');
  if (buf.length < 16) return { done: false };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError(`v2 header: version must be 2, got ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new ProxyProtocolError(`v2 header: command must be LOCAL (0) or PROXY (1), got ${cmd}`);
  const famProto = buf[13]!;
  const fam = famProto >> 4;
  const proto = famProto & 0x0f;
  if (fam > 3 || proto > 2) throw new ProxyProtocolError(`v2 header: unknown family/transport byte 0x${famProto.toString(16).padStart(2, '0')}`);
  const len = (buf[14]! << 8) | buf[15]!;
  const total = 16 + len;
  if (total > maxLength) throw new ProxyProtocolError(`v2 header: ${total} bytes is more than the limit of ${maxLength}`);
  if (buf.length < total) return { done: false };
  const need = fam === 1 ? 12 : fam === 2 ? 36 : fam === 3 ? 216 : 0;
  if (len < need) throw new ProxyProtocolError(`v2 header: length ${len} is too short for its addresses (${need} bytes)`);
  const header: ProxyHeader = { version: 2, command: cmd === 0 ? 'local' : 'proxy', addresses: null, tlvs: [] };
  // Addresses count only for PROXY over INET/INET6 and STREAM (this proxy relays TCP); else
  // the receiver uses the connection's own, as the specification says for what it cannot use.
  if (cmd === 1 && proto === 1 && (fam === 1 || fam === 2)) {
    const v = new DataView(buf.buffer, buf.byteOffset, total);
    if (fam === 1) {
      const ip = (at: number) => `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
      header.addresses = { family: 'IPv4', sourceAddress: ip(16), destinationAddress: ip(20), sourcePort: v.getUint16(24), destinationPort: v.getUint16(26) };
    } else {
      header.addresses = { family: 'IPv6', sourceAddress: v6String(buf, 16), destinationAddress: v6String(buf, 32), sourcePort: v.getUint16(48), destinationPort: v.getUint16(50) };
    }
  }
  for (let at = 16 + need; at < total; ) {
    if (at + 3 > total) throw new ProxyProtocolError('v2 header: a TLV is cut short (fewer than 3 bytes left)');
    const tlen = (buf[at + 1]! << 8) | buf[at + 2]!;
    if (at + 3 + tlen > total) throw new ProxyProtocolError(`v2 header: a TLV of type 0x${buf[at]!.toString(16)} runs ${at + 3 + tlen - total} bytes past the header`);
    header.tlvs.push({ type: buf[at]!, value: buf.slice(at + 3, at + 3 + tlen) });
    at += 3 + tlen;
  }
  return { done: true, header, length: total };
}
