/**
 * Blocking mode for the splice paths, taken and given back.
 *
 * A SPLICE op can wait (in an io-wq worker) only on a blocking fd: on an
 * O_NONBLOCK one it completes with -EAGAIN and no poll is armed (native/pipe.c).
 * So forwardFd and sendFile's mode 'splice' clear O_NONBLOCK on their sockets,
 * and whoever uses a socket after them (the epoll backend, node:net, a caller
 * that lent us its fd) expects the mode it had: the last splice user of a
 * socket restores it when it is done.
 *
 * O_NONBLOCK belongs to the open file, which several splice users may hold at
 * once (forwardBoth's two directions share both sockets; a forward may overlap
 * a sendFile), so holds are counted per file, identified by device and inode.
 * A hold given back after its fd was closed, or once the number names another
 * file, changes nothing.
 */
import * as fs from 'node:fs';
import { native } from '../core/native';

interface Held {
  count: number;
  wasBlocking: boolean;
}

/** Open files some splice user holds in blocking mode, by `${dev}:${ino}`. */
const held = new Map<string, Held>();

function identity(fd: number): string {
  const st = fs.fstatSync(fd);
  return `${st.dev}:${st.ino}`;
}

/** One splice user's hold on an fd in blocking mode; release() once done with it. */
export class BlockingHold {
  readonly fd: number;
  readonly #key: string;
  #released = false;

  /** @internal use holdBlocking() */
  constructor(fd: number, key: string) {
    this.fd = fd;
    this.#key = key;
  }

  /** The last hold of a file puts back the mode it had before the first. Safe to call twice. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const h = held.get(this.#key);
    if (h === undefined || --h.count > 0) return;
    held.delete(this.#key);
    if (h.wasBlocking) return;
    try {
      if (identity(this.fd) === this.#key) native().fdSetBlocking(this.fd, false);
    } catch {
      // Closed meanwhile: nothing left to restore.
    }
  }
}

/**
 * Clears O_NONBLOCK on `fd` (again, if another user set it meanwhile) until
 * the hold is released. Throws the native error (EBADF, ...) as is.
 */
export function holdBlocking(fd: number): BlockingHold {
  const wasBlocking = native().fdSetBlocking(fd, true);
  let key: string;
  try {
    key = identity(fd);
  } catch (err) {
    if (!wasBlocking) native().fdSetBlocking(fd, false);
    throw err;
  }
  const h = held.get(key);
  if (h === undefined) held.set(key, { count: 1, wasBlocking });
  else h.count++;
  return new BlockingHold(fd, key);
}
