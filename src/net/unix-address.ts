/**
 * Unix domain socket addresses: sockaddr_un bytes, built and read here like
 * address.ts does for IP, so a connect takes its address from the ring's aux
 * array (110 bytes at most, an aux slot holds 128).
 *
 * Layout on Linux: family u16 (AF_UNIX, host order) | sun_path[108]. A path
 * starting with '\0' is an abstract name (Linux only): no file, and every byte
 * of the given length is part of the name, so it is passed without a NUL and
 * the length says where it ends (as libuv since 1.48, systemd and socat do;
 * Node 20's libuv pads the name with NULs to 108 bytes, a different name to
 * the kernel). A file path is passed with its NUL.
 */
import * as os from 'node:os';
import { InvalidAddressError } from '../core/errors';

export const AF_UNIX = 1;
/** sizeof(sun_path) */
export const SUN_PATH_MAX = 108;

const hostLE = os.endianness() === 'LE';

/** node:net's rule for a listen/connect argument: a string that is not a number >= 0 is a path ('80' is a port). */
export function isPipeName(s: unknown): s is string {
  return typeof s === 'string' && !(Number(s) >= 0);
}

/** An abstract name ('\0' first): no file behind it. */
export function isAbstractPath(path: string): boolean {
  return path.charCodeAt(0) === 0;
}

/**
 * The sockaddr_un for `path`. Too long a path is an error here (the kernel
 * would take a truncated name; node:net's libuv silently truncates), as are an
 * empty path and a NUL inside a file path.
 */
export function unixSockaddr(path: string): Uint8Array {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidAddressError(`a unix socket path must be a non-empty string, got ${typeof path === 'string' ? '""' : typeof path}`);
  }
  const abstract = isAbstractPath(path);
  if (!abstract && path.includes('\0')) throw new InvalidAddressError('a unix socket file path must not contain a NUL byte');
  const name = Buffer.from(path, 'utf8');
  const room = abstract ? SUN_PATH_MAX : SUN_PATH_MAX - 1; // a file path keeps its NUL
  if (name.length > room) {
    throw new InvalidAddressError(`a unix socket path must be at most ${room} bytes (UTF-8), got ${name.length}`);
  }
  const out = new Uint8Array(2 + name.length + (abstract ? 0 : 1));
  new DataView(out.buffer).setUint16(0, AF_UNIX, hostLE);
  out.set(name, 2);
  return out;
}

/** Whether an encoded sockaddr is a unix one. */
export function isUnixSockaddr(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && new DataView(bytes.buffer, bytes.byteOffset, 2).getUint16(0, hostLE) === AF_UNIX;
}

/**
 * The path of a sockaddr_un as getsockname returns it: '' for an unnamed
 * socket (a client's end), '\0...' for an abstract name, else the file path.
 */
export function decodeUnixSockaddr(bytes: Uint8Array): string {
  if (!isUnixSockaddr(bytes)) throw new InvalidAddressError('not a unix sockaddr');
  const path = bytes.subarray(2);
  if (path.length === 0) return '';
  if (path[0] === 0) return Buffer.from(path).toString('utf8');
  const end = path.indexOf(0);
  return Buffer.from(end < 0 ? path : path.subarray(0, end)).toString('utf8');
}
