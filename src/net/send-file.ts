/**
 * File -> socket without user-space copies, two ways (options.mode):
 *
 * 'sendfile' (default): plain sendfile(2) on the nonblocking socket, driven
 * by readiness from native code (native/sendfile.c): each time the socket is
 * writable, sendfile runs until EAGAIN (or a per-wakeup budget) and JS hears
 * one progress call. No pipe, no worker thread, one system call per socket
 * buffer's worth. Measured (BENCHMARKS.md) faster than 'splice', at the
 * speed of a C sendfile loop. Works on both backends (it needs no ring op).
 *
 * 'splice': io_uring has no sendfile op, so
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
 * The socket is switched to blocking mode for the transfer (see native/pipe.c:
 * on an O_NONBLOCK fd a waiting splice completes with -EAGAIN and no poll is
 * armed) and gets its mode back at the end, once no other splice user holds
 * it (blocking.ts).
 */
import * as fs from 'node:fs';
import {
  AbortError,
  BackendUnavailableError,
  ClosedError,
  FileShrunkError,
  InvalidArgumentError,
  OutOfRangeError,
  errnoError,
  fromNative,
} from '../core/errors';
import { SPLICE_F_MOVE, native, type SendfileHandle } from '../core/native';
import type { CompletionTarget, IoRing } from '../ring/io-ring';
import { holdBlocking, type BlockingHold } from './blocking';

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

export type SendFileMode = 'sendfile' | 'splice';

export interface SendFileOptions {
  /** 'sendfile' (default): sendfile(2) driven by readiness; 'splice': io_uring SPLICE chains. */
  mode?: SendFileMode;
  /** sendfile mode: bytes sent per writable wakeup before yielding to the loop; default 4 MiB. */
  budget?: number;
  /** Pipe size in bytes (the chunk size); default 1 MiB, capped by fs.pipe-max-size. */
  pipeSize?: number;
  /** Pipe-fuls per linked chain; default 4. */
  chunksInFlight?: number;
}

export interface SendFileStats {
  mode: SendFileMode;
  /** splice: chains submitted; sendfile: writable wakeups */
  rounds: number;
  /** SPLICE ops submitted; sendfile: sendfile(2) calls */
  splices: number;
  /** splices that came back short or canceled by a broken link; sendfile: calls ending in EAGAIN */
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

/** One file -> socket transfer in flight, either mode. */
export interface FileTransfer {
  readonly total: number;
  readonly stats: SendFileStats;
  readonly sent: number;
  readonly done: boolean;
  /** Stops the transfer; the target then gets an AbortError. */
  abort(): void;
}

const SF_PROGRESS = 0;
const SF_DONE = 1;
const SF_SHRUNK = 2;
const DEFAULT_BUDGET = 4 << 20;

/** sendfile(2) on the nonblocking socket, each time it is writable (native/sendfile.c). */
export class SendfileTransfer implements FileTransfer {
  readonly total: number;
  readonly #target: SendFileTarget;
  readonly #offset: number;
  #handle: SendfileHandle | null = null;
  #sent = 0;
  #done = false;
  readonly #stats: SendFileStats = { mode: 'sendfile', rounds: 0, splices: 0, shortOrCanceled: 0, pipeSize: 0 };

  /** @internal use sendFileFd() */
  constructor(socketFd: number, fileFd: number, offset: number, length: number, target: SendFileTarget, options: SendFileOptions) {
    this.total = length;
    this.#target = target;
    this.#offset = offset;
    const budget = options.budget ?? DEFAULT_BUDGET;
    if (!Number.isInteger(budget) || budget < 4096 || budget > 2 ** 30) {
      throw new OutOfRangeError(`budget must be an integer in [4096, 2^30], got ${budget}`);
    }
    if (length === 0) {
      this.#done = true;
      process.nextTick(() => target.onSendFileDone(null, 0));
      return;
    }
    try {
      this.#handle = native().sendfileStart(socketFd, fileFd, offset, length, budget, (status, sent) => this.#onEvent(status, sent));
    } catch (err) {
      throw fromNative(err);
    }
  }

  get sent(): number {
    return this.#sent;
  }

  get done(): boolean {
    return this.#done;
  }

  /** wakeups (rounds), sendfile calls (splices), calls that met a full socket (shortOrCanceled). */
  get stats(): SendFileStats {
    if (this.#handle) {
      const n = native().sendfileStats(this.#handle);
      this.#stats.rounds = n.wakes;
      this.#stats.splices = n.calls;
      this.#stats.shortOrCanceled = n.eagain;
    }
    return { ...this.#stats };
  }

  abort(): void {
    if (this.#done || this.#handle === null) return;
    native().sendfileAbort(this.#handle);
    // After the handler's own frames, like a completion would be.
    process.nextTick(() => this.#finish(new AbortError('the transfer was aborted')));
  }

  #onEvent(status: number, sent: number): void {
    if (this.#done) return;
    this.#sent = sent;
    if (sent > 0 && (status === SF_PROGRESS || status === SF_DONE) && this.#target.onSendFileProgress) {
      try {
        this.#target.onSendFileProgress(sent, this.total);
      } catch (e) {
        process.nextTick(() => {
          throw e;
        });
      }
    }
    if (status === SF_PROGRESS) return;
    if (status === SF_DONE) return this.#finish(null);
    if (status === SF_SHRUNK) {
      const at = this.#offset + sent;
      return this.#finish(
        new FileShrunkError(`the file ended at byte ${at}, ${this.total - sent} bytes short of the range (it shrank during the transfer)`),
      );
    }
    this.#finish(errnoError(status, 'sendfile'));
  }

  #finish(err: Error | null): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#handle) this.stats; // keep the last counts
    this.#target.onSendFileDone(err, this.#sent);
  }
}

/** One file -> socket transfer in flight by SPLICE chains. */
export class FileSend implements CompletionTarget, FileTransfer {
  readonly total: number;
  readonly stats: SendFileStats;
  readonly #ring: IoRing;
  readonly #socketFd: number;
  readonly #fileFd: number;
  readonly #target: SendFileTarget;
  readonly #chunks: number;
  #pipeR = -1;
  #pipeW = -1;
  #pipeSize = 0;
  #hold: BlockingHold | null = null;

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
  constructor(ring: IoRing, socketFd: number, fileFd: number, offset: number, length: number, target: SendFileTarget, options: SendFileOptions) {
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
    this.stats = { mode: 'splice', rounds: 0, splices: 0, shortOrCanceled: 0, pipeSize: 0 };
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
      this.#hold = holdBlocking(socketFd);
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
          // native made the pipe: closing it through fs warns inside a worker (an fd fs never opened)
          native().sockClose(fd);
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
    // No splice of this transfer is left: give the socket its mode back.
    this.#hold?.release();
    this.#hold = null;
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
  ring: IoRing,
  socketFd: number,
  fileFd: number,
  offset: number,
  length: number,
  target: SendFileTarget,
  options: SendFileOptions = {},
): FileTransfer {
  if (ring === null || typeof ring !== 'object' || typeof ring.closed !== 'boolean') throw new InvalidArgumentError('ring must be a Ring');
  if (ring.closed) throw new ClosedError('the ring is closed');
  const mode = options.mode ?? 'sendfile';
  if (mode !== 'sendfile' && mode !== 'splice') throw new InvalidArgumentError(`mode must be 'sendfile' or 'splice', got ${String(mode)}`);
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
  if (mode === 'sendfile') return new SendfileTransfer(socketFd, fileFd, offset, length, target, options);
  if (!ring.capabilities.splice) throw new BackendUnavailableError("mode 'splice' needs the io_uring backend (SPLICE ops)");
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
export function sendFile(ring: IoRing, socketFd: number, fileFd: number, range: SendFileRange = {}): Promise<number> {
  const offset = range.offset ?? 0;
  let length = range.length;
  if (length === undefined) {
    assertCount(offset, 'offset');
    length = Math.max(0, fs.fstatSync(fileFd).size - offset);
  }
  return new Promise<number>((resolve, reject) => {
    const signal = range.signal;
    const onAbort = (): void => send.abort();
    const send: FileTransfer = sendFileFd(
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
export async function sendFilePath(ring: IoRing, socketFd: number, path: string, range: SendFileRange = {}): Promise<number> {
  const fd = fs.openSync(path, 'r');
  try {
    return await sendFile(ring, socketFd, fd, range);
  } finally {
    fs.closeSync(fd);
  }
}
