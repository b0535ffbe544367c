/**
 * File -> socket without user-space copies: io_uring has no sendfile op, so
 * the bytes go file -> pipe -> socket as pairs of SPLICE ops. The pipe holds
 * page-cache references, not copies; the only copy is the kernel's own into
 * the socket's buffers (on loopback, at delivery).
 *
 * One pipe per transfer keeps the bytes in order. Each round submits one
 * chain of up to `chunksInFlight` pairs linked with IOSQE_IO_LINK:
 *
 *   [pipe -> socket (leftover)] -> file -> pipe -> pipe -> socket -> file -> pipe -> ...
 *
 * so one enter moves several pipe-fuls. A short splice breaks the chain (the
 * kernel fails the link on res != len and cancels the rest); the results say
 * how far it got and the next round starts there, first draining what the
 * pipe still holds. A read of 0 bytes inside the range means the file
 * shrank: FileShrunkError. Backpressure is the kernel's: a slow receiver
 * keeps the pipe -> socket splice waiting in an io-wq worker (blocking
 * socket), nothing spins in JavaScript.
 *
 * The socket is switched to blocking mode for this (see native/pipe.c: on an
 * O_NONBLOCK fd a waiting splice completes with -EAGAIN and no poll is
 * armed); maio's own socket ops do not depend on O_NONBLOCK, so it stays so.
 */
import * as fs from 'node:fs';
import {
  AbortError,
  ClosedError,
  FileShrunkError,
  InvalidArgumentError,
  OutOfRangeError,
  errnoError,
  fromNative,
} from '../core/errors';
import { SPLICE_F_MOVE, native } from '../core/native';
import type { CompletionTarget, Ring } from '../ring/ring';

const ECANCELED = 125;
const IOSQE_IO_LINK = 1 << 2;
const NONE = -1; // no op (0 is a valid op id)
const EAGAIN = 11;
const DEFAULT_PIPE = 1 << 20;
const DEFAULT_CHUNKS = 4;
const MAX_CHUNKS = 64;

/** Told about progress and the end of one transfer (no closure per op). */
export interface SendFileTarget {
  onSendFileProgress?(sent: number, total: number): void;
  /** Called once: err null when all `total` bytes went to the socket. */
  onSendFileDone(err: Error | null, sent: number): void;
}

export interface SendFileOptions {
  /** Pipe size in bytes (the chunk size); default 1 MiB, capped by fs.pipe-max-size. */
  pipeSize?: number;
  /** Pipe-fuls per linked chain; default 4. */
  chunksInFlight?: number;
}

export interface SendFileStats {
  /** chains submitted */
  rounds: number;
  /** SPLICE ops submitted */
  splices: number;
  /** splices that came back short or canceled by a broken link */
  shortOrCanceled: number;
  pipeSize: number;
}

const READ = 0;
const WRITE = 1;

export function assertFd(fd: unknown, what: string): asserts fd is number {
  if (typeof fd !== 'number' || !Number.isInteger(fd)) throw new InvalidArgumentError(`${what} must be an integer fd, got ${String(fd)}`);
  if (fd < 0 || fd > 0x7fffffff) throw new OutOfRangeError(`${what} must be a file descriptor >= 0, got ${fd}`);
}

function assertCount(n: unknown, what: string): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${what} must be a safe integer, got ${String(n)}`);
  if (n < 0) throw new OutOfRangeError(`${what} must be >= 0, got ${n}`);
}

/** One file -> socket transfer in flight. */
export class FileSend implements CompletionTarget {
  readonly total: number;
  readonly stats: SendFileStats;
  readonly #ring: Ring;
  readonly #socketFd: number;
  readonly #fileFd: number;
  readonly #target: SendFileTarget;
  readonly #chunks: number;
  #pipeR = -1;
  #pipeW = -1;
  #pipeSize = 0;

  #fileOff: number; // next byte of the file to read
  #toRead: number; // bytes of the range not read into the pipe yet
  #inPipe = 0;
  #sent = 0;

  // the chain in flight
  readonly #ids: Int32Array;
  readonly #kinds: Uint8Array;
  readonly #lens: Int32Array;
  readonly #res: Int32Array;
  readonly #arrived: Uint8Array;
  #count = 0;
  #next = 0; // first op of the chain not accounted yet
  #outstanding = 0;
  #mark = -1; // sent + fileOff after the last chain
  #retry: NodeJS.Timeout | undefined;
  #error: Error | null = null;
  #idle = 0; // rounds in a row without progress

  #aborted = false;
  #done = false;

  /** @internal use sendFileFd() */
  constructor(ring: Ring, socketFd: number, fileFd: number, offset: number, length: number, target: SendFileTarget, options: SendFileOptions) {
    this.#ring = ring;
    this.#socketFd = socketFd;
    this.#fileFd = fileFd;
    this.#target = target;
    this.total = length;
    this.#fileOff = offset;
    this.#toRead = length;
    const chunks = options.chunksInFlight ?? DEFAULT_CHUNKS;
    if (!Number.isInteger(chunks) || chunks < 1 || chunks > MAX_CHUNKS) {
      throw new OutOfRangeError(`chunksInFlight must be an integer in [1, ${MAX_CHUNKS}], got ${chunks}`);
    }
    this.#chunks = chunks;
    const slots = chunks * 2 + 1;
    this.#ids = new Int32Array(slots);
    this.#kinds = new Uint8Array(slots);
    this.#lens = new Int32Array(slots);
    this.#res = new Int32Array(slots);
    this.#arrived = new Uint8Array(slots);
    this.stats = { rounds: 0, splices: 0, shortOrCanceled: 0, pipeSize: 0 };
    if (length === 0) {
      this.#done = true;
      process.nextTick(() => target.onSendFileDone(null, 0));
      return;
    }
    const n = native();
    try {
      const pipe = n.pipeOpen(options.pipeSize ?? DEFAULT_PIPE);
      this.#pipeR = pipe.readFd;
      this.#pipeW = pipe.writeFd;
      this.#pipeSize = pipe.size;
      n.fdSetBlocking(socketFd, true);
    } catch (err) {
      this.#closePipe();
      throw fromNative(err);
    }
    this.stats.pipeSize = this.#pipeSize;
    this.#round();
  }

  get sent(): number {
    return this.#sent;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Cancels the splices in flight; the target then gets an AbortError. */
  abort(): void {
    if (this.#done || this.#aborted) return;
    this.#aborted = true;
    if (this.#outstanding > 0) this.#cancelRest();
  }

  #add(kind: number, len: number, link: boolean): void {
    const i = this.#count++;
    const r = this.#ring;
    const sqe = link ? IOSQE_IO_LINK : 0;
    this.#ids[i] =
      kind === READ
        ? r.splice(this, this.#fileFd, this.#fileOff + this.#plannedRead, this.#pipeW, len, SPLICE_F_MOVE, sqe)
        : r.splice(this, this.#pipeR, -1, this.#socketFd, len, 0, sqe);
    this.#kinds[i] = kind;
    this.#lens[i] = len;
    this.#res[i] = 0;
    this.#arrived[i] = 0;
    this.#outstanding++;
    this.stats.splices++;
  }

  #plannedRead = 0;

  /** Submits one chain: drain the pipe, then pipe-fuls of file. */
  #round(): void {
    if (this.#ring.closed) return this.#finish(new ClosedError('the ring was closed during the transfer'));
    this.#count = 0;
    this.#next = 0;
    this.#plannedRead = 0;
    const plan: [number, number][] = [];
    if (this.#inPipe > 0) plan.push([WRITE, this.#inPipe]);
    for (let k = 0; k < this.#chunks && this.#plannedRead < this.#toRead; k++) {
      const len = Math.min(this.#pipeSize, this.#toRead - this.#plannedRead);
      plan.push([READ, len], [WRITE, len]);
      this.#plannedRead += len;
    }
    this.#plannedRead = 0;
    try {
      // A chain must reach the kernel in one submit: a batch that ends on a
      // linked op ends the chain there, and its rest would run unordered.
      this.#ring.flush();
      for (let i = 0; i < plan.length; i++) {
        const [kind, len] = plan[i];
        this.#add(kind, len, i < plan.length - 1);
        if (kind === READ) this.#plannedRead += len;
      }
    } catch (err) {
      // The ops queued before the throw still run; end once they are back.
      this.#error = err as Error;
      if (this.#outstanding === 0) this.#finish(this.#error);
      else this.#cancelRest();
      return;
    }
    this.stats.rounds++;
  }

  onCompletion(opId: number, res: number): void {
    for (let i = 0; i < this.#count; i++) {
      if (this.#ids[i] === opId && this.#arrived[i] === 0) {
        this.#ids[i] = NONE;
        this.#res[i] = res;
        this.#arrived[i] = 1;
        this.#outstanding--;
        // Linked ops complete in order; account each as soon as its turn comes,
        // so progress shows per pipe-ful, not per chain.
        while (this.#next < this.#count && this.#arrived[this.#next]) this.#account(this.#next++);
        if (this.#outstanding === 0) this.#settle();
        else if (this.#aborted || this.#error) this.#cancelRest();
        return;
      }
    }
  }

  /** Accounts op `i` of the chain; records the first error. */
  #account(i: number): void {
    const res = this.#res[i];
    const len = this.#lens[i];
    if (res !== len) this.stats.shortOrCanceled++;
    if (this.#error) return;
    if (res === -ECANCELED && (this.#aborted || this.#linkBroken(i))) return;
    if (this.#kinds[i] === READ) {
      if (res > 0) {
        this.#fileOff += res;
        this.#toRead -= res;
        this.#inPipe += res;
      } else if (res === 0) {
        this.#error = new FileShrunkError(
          `the file ended at byte ${this.#fileOff}, ${this.#toRead} bytes short of the range (it shrank during the transfer)`,
        );
      } else {
        this.#error = errnoError(res, 'splice');
      }
    } else if (res > 0) {
      this.#inPipe -= res;
      this.#sent += res;
      if (this.#target.onSendFileProgress) {
        try {
          this.#target.onSendFileProgress(this.#sent, this.total);
        } catch (e) {
          process.nextTick(() => {
            throw e;
          });
        }
      }
    } else if (res === -EAGAIN) {
      const e = errnoError(res, 'splice');
      e.message += ': the socket is nonblocking again (another user set O_NONBLOCK); a splice cannot wait on it';
      this.#error = e;
    } else {
      this.#error = errnoError(res === 0 ? -32 /* EPIPE */ : res, 'splice');
    }
  }

  /**
   * Cancels the chain's ops still out. A linked op the kernel has not issued
   * yet cannot be found by a cancel, so this runs again on each completion
   * and on a timer until the chain is back.
   */
  #cancelRest(): void {
    for (let i = 0; i < this.#count; i++) if (this.#ids[i] !== NONE) this.#ring.cancel(this.#ids[i]);
    if (this.#retry === undefined && this.#outstanding > 0) {
      this.#retry = setInterval(() => {
        if (this.#outstanding > 0 && !this.#ring.closed) this.#cancelRest();
      }, 50);
      this.#retry.unref();
    }
  }

  /** The whole chain has completed: go on, or end. */
  #settle(): void {
    if (this.#retry !== undefined) {
      clearInterval(this.#retry);
      this.#retry = undefined;
    }
    const progress = this.#sent + this.#fileOff !== this.#mark;
    this.#mark = this.#sent + this.#fileOff;
    this.#count = 0;
    this.#next = 0;
    if (this.#error) return this.#finish(this.#error);
    if (this.#aborted) return this.#finish(new AbortError('the transfer was aborted'));
    if (this.#sent === this.total) return this.#finish(null);
    // A chain that moved nothing and reported no error would repeat forever.
    if (progress) this.#idle = 0;
    else if (++this.#idle > 2) return this.#finish(errnoError(-ECANCELED, 'splice'));
    this.#round();
  }

  /** True when an op before `i` in the chain failed or came back short. */
  #linkBroken(i: number): boolean {
    for (let j = 0; j < i; j++) if (this.#res[j] !== this.#lens[j]) return true;
    return false;
  }

  #closePipe(): void {
    for (const fd of [this.#pipeR, this.#pipeW]) {
      if (fd >= 0) {
        try {
          fs.closeSync(fd);
        } catch {
          // already gone: nothing to free
        }
      }
    }
    this.#pipeR = this.#pipeW = -1;
  }

  #finish(err: Error | null): void {
    if (this.#done) return;
    this.#done = true;
    this.#closePipe();
    this.#target.onSendFileDone(err, this.#sent);
  }
}

/**
 * Sends `length` bytes of `fileFd` from `offset` to the connected stream
 * socket `socketFd` through the ring. Validates synchronously (typed errors,
 * nothing submitted); the target hears progress and the end. `offset +
 * length` must lie within the file's size now; a file that shrinks later
 * ends the transfer with FileShrunkError ('ERR_MAIO_FILE_SHRUNK').
 */
export function sendFileFd(
  ring: Ring,
  socketFd: number,
  fileFd: number,
  offset: number,
  length: number,
  target: SendFileTarget,
  options: SendFileOptions = {},
): FileSend {
  if (ring === null || typeof ring !== 'object' || typeof ring.splice !== 'function') throw new InvalidArgumentError('ring must be a Ring');
  if (ring.closed) throw new ClosedError('the ring is closed');
  assertFd(socketFd, 'socketFd');
  assertFd(fileFd, 'fileFd');
  assertCount(offset, 'offset');
  assertCount(length, 'length');
  if (target === null || typeof target !== 'object' || typeof target.onSendFileDone !== 'function') {
    throw new InvalidArgumentError('target must have onSendFileDone(err, sent)');
  }
  const st = fs.fstatSync(fileFd); // EBADF keeps node's shape
  if (!st.isFile()) throw new InvalidArgumentError(`fileFd ${fileFd} is not a regular file`);
  if (offset + length > st.size) {
    throw new OutOfRangeError(`offset ${offset} + length ${length} exceeds the file's size ${st.size}`);
  }
  return new FileSend(ring, socketFd, fileFd, offset, length, target, options);
}

export interface SendFileRange extends SendFileOptions {
  offset?: number;
  /** default: to the end of the file */
  length?: number;
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/** Promise form of sendFileFd; resolves with the bytes sent. */
export function sendFile(ring: Ring, socketFd: number, fileFd: number, range: SendFileRange = {}): Promise<number> {
  const offset = range.offset ?? 0;
  let length = range.length;
  if (length === undefined) {
    assertCount(offset, 'offset');
    length = Math.max(0, fs.fstatSync(fileFd).size - offset);
  }
  return new Promise<number>((resolve, reject) => {
    const signal = range.signal;
    const onAbort = (): void => send.abort();
    const send: FileSend = sendFileFd(
      ring,
      socketFd,
      fileFd,
      offset,
      length as number,
      {
        onSendFileProgress: range.onProgress,
        onSendFileDone(err, sent) {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(sent);
        },
      },
      range,
    );
    if (signal) {
      if (signal.aborted) send.abort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}

/** Opens `path` read-only (ENOENT etc. in node's shape), sends it, closes it. */
export async function sendFilePath(ring: Ring, socketFd: number, path: string, range: SendFileRange = {}): Promise<number> {
  const fd = fs.openSync(path, 'r');
  try {
    return await sendFile(ring, socketFd, fd, range);
  } finally {
    fs.closeSync(fd);
  }
}
