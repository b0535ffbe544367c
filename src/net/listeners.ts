/**
 * Listening sockets that are not a TCP port: a unix domain socket at a path
 * (or an abstract name), and an already-open socket adopted by its fd. The
 * Server (server.ts) takes the fd and accepts on it like on a TCP listener.
 *
 * Follows node:net: a path that exists fails with EADDRINUSE (nothing is
 * unlinked first), the socket file is removed when the server closes, an
 * adopted fd is listen()ed again (so a bound one works too) and closed with
 * the server, and anything but a stream socket fails with EINVAL.
 */
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { errnoError, fromNative, type ErrnoError } from '../core/errors';
import { native } from '../core/native';
import { decodeSockaddr } from './address';
import { decodeUnixSockaddr, isAbstractPath, isUnixSockaddr, unixSockaddr } from './unix-address';

const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SOCK_STREAM = 1;
const EINVAL = 22;

/** A listening fd and what address() reports for it. */
export interface Listener {
  fd: number;
  address: AddressInfo | string;
  /** the socket file this server made, removed at close if it is still that file */
  file: { path: string; dev: number; ino: number } | null;
  /** a unix socket (no TCP options on its connections) */
  unix: boolean;
}

export interface UnixListenOptions {
  backlog: number;
  /** chmod the socket file for every user: read (node:net's readableAll) */
  readableAll?: boolean | undefined;
  /** ... and write (writableAll); connecting needs write permission */
  writableAll?: boolean | undefined;
}

/** An error of a listen step, shaped like node:net's ('listen EADDRINUSE /tmp/s.sock'). */
function listenError(err: unknown, address: string | null): Error {
  const e = fromNative(err) as ErrnoError & { address?: string | null };
  if (typeof e.errno !== 'number') return e;
  e.address = address;
  e.message = `listen ${e.code}${address === null ? '' : ` ${address}`}`;
  return e;
}

/** Binds and listens at `path`; throws node:net-shaped errors. */
export function listenUnix(path: string, o: UnixListenOptions): Listener {
  const addr = unixSockaddr(path); // a bad path: a typed error, before any fd exists
  const n = native();
  let fd = -1;
  let file: Listener['file'] = null;
  try {
    fd = n.sockOpen('unix', 'tcp');
    n.sockBind(fd, addr);
    if (!isAbstractPath(path)) {
      const st = fs.statSync(path);
      file = { path, dev: st.dev, ino: st.ino };
      // as libuv's uv_pipe_chmod: read and/or write for everyone (the umask decides otherwise)
      const mode = (o.readableAll ? 0o444 : 0) | (o.writableAll ? 0o222 : 0);
      if (mode) fs.chmodSync(path, (st.mode & 0o777) | mode);
    }
    n.sockListen(fd, o.backlog);
  } catch (err) {
    if (fd >= 0) n.sockClose(fd);
    if (file) removeSocketFile(file);
    throw listenError(err, path);
  }
  return { fd, address: path, file, unix: true };
}

/**
 * Takes over a socket fd (node:net's listen({ fd }) / listen({ handle: { fd } })):
 * a stream socket, bound (listen() here starts it) or listening already.
 */
export function adoptListener(fd: number, backlog: number): Listener {
  const n = native();
  let type: number;
  try {
    type = n.sockGetInt(fd, SOL_SOCKET, SO_TYPE);
  } catch {
    type = -1; // not an open socket: EBADF, ENOTSOCK
  }
  if (type !== SOCK_STREAM) throw listenError(errnoError(-EINVAL, 'listen'), null);
  try {
    n.sockListen(fd, backlog);
  } catch (err) {
    throw listenError(err, null);
  }
  const name = n.sockName(fd, false);
  const unix = isUnixSockaddr(name);
  return { fd, address: unix ? decodeUnixSockaddr(name) : decodeSockaddr(name), file: null, unix };
}

/** Removes the socket file a server made, unless something else now has its name. */
export function removeSocketFile(file: NonNullable<Listener['file']>): void {
  try {
    const st = fs.lstatSync(file.path);
    if (st.dev === file.dev && st.ino === file.ino) fs.unlinkSync(file.path);
  } catch {
    // gone already, or not ours to remove
  }
}
