/**
 * Socket -> socket forwarding in the kernel: socket -> pipe -> socket with
 * SPLICE ops. What has been read but not yet written sits in pipes as page
 * references, never in user memory.
 *
 * Two ops at most are in flight per direction, a reader (from -> pipe) and a
 * writer (pipe -> to), in separate io-wq workers, and they use two pipes in
 * turn. One pipe would serialize them: a splice holds the pipe's mutex while
 * it waits (the reader for socket data, the writer for socket space), so a
 * reader waiting on an idle connection would hold back the writer of bytes
 * already read. Read k goes into pipe k % 2, which must be empty; the writer
 * drains the reads in order. So memory is bounded by two pipes, and reading
 * overlaps sending. They are not linked: a reader returns however much had
 * arrived, which the kernel counts as short and would break the link on.
 *
 * EOF on `from` (a read of 0) becomes shutdown(SHUT_WR) on `to` once the
 * pipes are empty; errors (ECONNRESET, EPIPE) end the direction and cancel its
 * other op. Both fds are switched to blocking mode (see native/pipe.c) while
 * the direction runs; when it ends, each gets its mode back once no other
 * splice user holds it (src/net/blocking.ts).
 */
import * as fs from 'node:fs';
import { AbortError, BackendUnavailableError, ClosedError, InvalidArgumentError, errnoError, fromNative } from '../core/errors';
import { native } from '../core/native';
import type { CompletionTarget, IoRing } from '../ring/io-ring';
import { holdBlocking, type BlockingHold } from '../net/blocking';
import { assertFd } from '../net/send-file';

const EAGAIN = 11;
const NONE = -1;
const SHUT_WR = 1;
const DEFAULT_PIPE = 1 << 20;

export interface ForwardTarget {
  /** Called once per direction: err null after EOF was forwarded as a half-close. */
  onForwardEnd(err: Error | null, bytes: number): void;
}

export interface ForwardOptions {
  /** Size of each of the two pipes in bytes; default 1 MiB, capped by fs.pipe-max-size. */
  pipeSize?: number;
  /** Half-close `to` when `from` reaches EOF; default true. */
  shutdownOnEof?: boolean;
  target?: ForwardTarget;
}

/** One direction of forwarding. */
export class SpliceForward implements CompletionTarget {
  readonly #ring: IoRing;
  readonly #from: number;
  readonly #to: number;
  readonly #shutdownOnEof: boolean;
  readonly #target: ForwardTarget | undefined;
  readonly #pipeR = [-1, -1];
  readonly #pipeW = [-1, -1];
  #pipeSize = 0;
  #holdFrom: BlockingHold | null = null;
  #holdTo: BlockingHold | null = null;

  // Op ids in flight, NONE when none (0 is a valid op id).
  #reader = NONE;
  #writer = NONE;
  #shutdownOp = NONE;
  #shutdownDone = false;
  #canceled = NONE; // reader / writer op ids already asked to cancel
  #canceled2 = NONE;
  #readSeq = 0; // reads completed with data; read k went into pipe k % 2
  #writeSeq = 0; // the first read not yet fully written
  readonly #fill = [0, 0]; // bytes waiting in each pipe
  #bytes = 0;
  #eof = false;
  #zeroReads = 0;
  #error: Error | null = null;
  #done = false;
  #promise: Promise<number> | undefined;
  #resolve: ((n: number) => void) | undefined;
  #reject: ((e: Error) => void) | undefined;
  /** Reader and writer ops submitted, for tests and stats. */
  splices = 0;

  /** @internal use forwardFd() */
  constructor(ring: IoRing, from: number, to: number, options: ForwardOptions) {
    this.#ring = ring;
    this.#from = from;
    this.#to = to;
    this.#shutdownOnEof = options.shutdownOnEof ?? true;
    this.#target = options.target;
    const n = native();
    try {
      for (let i = 0; i < 2; i++) {
        const pipe = n.pipeOpen(options.pipeSize ?? DEFAULT_PIPE);
        this.#pipeR[i] = pipe.readFd;
        this.#pipeW[i] = pipe.writeFd;
        this.#pipeSize = pipe.size;
      }
      this.#holdFrom = holdBlocking(from);
      this.#holdTo = holdBlocking(to);
    } catch (err) {
      this.#closePipe();
      this.#releaseFds();
      throw fromNative(err);
    }
    this.#pump();
  }

  /** Bytes written to `to` so far. */
  get bytes(): number {
    return this.#bytes;
  }

  get pipeSize(): number {
    return this.#pipeSize;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Resolves with the bytes forwarded once EOF was forwarded; rejects on error. */
  finished(): Promise<number> {
    if (!this.#promise) {
      this.#promise = new Promise<number>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      if (this.#done) this.#settlePromise();
    }
    return this.#promise;
  }

  /** Stops forwarding; ends with AbortError once the ops in flight are back. */
  abort(): void {
    this.#fail(new AbortError('forwarding was aborted'));
  }

  #pump(): void {
    if (this.#done) return;
    if (this.#error) return this.#stop();
    const r = this.#ring;
    if (r.closed) return this.#fail(new ClosedError('the ring was closed during forwarding'));
    try {
      if (!this.#eof && this.#reader === NONE && this.#readSeq - this.#writeSeq < 2) {
        this.#reader = r.splice(this, this.#from, -1, this.#pipeW[this.#readSeq & 1], this.#pipeSize);
        this.splices++;
      }
      const w = this.#writeSeq & 1;
      if (this.#writer === NONE && this.#writeSeq < this.#readSeq && this.#fill[w] > 0) {
        this.#writer = r.splice(this, this.#pipeR[w], -1, this.#to, this.#fill[w]);
        this.splices++;
      }
      if (this.#eof && this.#writeSeq === this.#readSeq && this.#writer === NONE && this.#shutdownOp === NONE && !this.#shutdownDone) {
        if (this.#shutdownOnEof) this.#shutdownOp = r.shutdown(this, this.#to, SHUT_WR);
        else this.#finish();
      }
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  onCompletion(opId: number, res: number): void {
    if (opId === this.#reader) {
      this.#reader = NONE;
      if (res > 0) {
        this.#fill[this.#readSeq++ & 1] = res;
        this.#zeroReads = 0;
      } else if (res === 0) {
        // tcp_splice_read also returns 0 without EOF when it could take
        // nothing from a non-empty receive queue: EOF only when a second
        // read in a row says so (a real EOF answers at once).
        if (++this.#zeroReads >= 2) this.#eof = true;
      }
      else this.#fail(this.#kernelError(res, 'splice'));
    } else if (opId === this.#writer) {
      this.#writer = NONE;
      if (res > 0) {
        this.#bytes += res;
        if ((this.#fill[this.#writeSeq & 1] -= res) === 0) this.#writeSeq++;
      } else {
        this.#fail(this.#kernelError(res === 0 ? -32 /* EPIPE */ : res, 'splice'));
      }
    } else if (opId === this.#shutdownOp) {
      this.#shutdownOp = NONE;
      this.#shutdownDone = true;
      if (res < 0 && res !== -107 /* ENOTCONN: the peer is gone, nothing to half-close */) {
        this.#fail(errnoError(res, 'shutdown'));
      } else {
        this.#finish();
      }
      return;
    }
    this.#pump();
  }

  #kernelError(res: number, syscall: string): Error {
    const e = errnoError(res, syscall);
    if (res === -EAGAIN) e.message += ': a socket is nonblocking again (another user set O_NONBLOCK); a splice cannot wait on it';
    return e;
  }

  /** Records the first error and cancels what is in flight. */
  #fail(err: Error): void {
    if (this.#done) return;
    // The first error wins: the -ECANCELED of the ops it cancels is not news.
    if (this.#error === null) this.#error = err;
    this.#stop();
  }

  #stop(): void {
    if (this.#reader !== NONE && this.#canceled !== this.#reader) {
      this.#canceled = this.#reader;
      this.#ring.cancel(this.#reader);
    }
    if (this.#writer !== NONE && this.#canceled2 !== this.#writer) {
      this.#canceled2 = this.#writer;
      this.#ring.cancel(this.#writer);
    }
    if (this.#reader === NONE && this.#writer === NONE && this.#shutdownOp === NONE) this.#finish();
  }

  #closePipe(): void {
    for (const fd of [...this.#pipeR, ...this.#pipeW]) {
      if (fd >= 0) {
        try {
          // native made the pipe: closing it through fs warns inside a worker (an fd fs never opened)
          native().sockClose(fd);
        } catch {
          // already gone
        }
      }
    }
    this.#pipeR.fill(-1);
    this.#pipeW.fill(-1);
  }

  /** No op of ours uses the sockets any more: give back their mode. */
  #releaseFds(): void {
    this.#holdFrom?.release();
    this.#holdTo?.release();
    this.#holdFrom = this.#holdTo = null;
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#closePipe();
    this.#releaseFds();
    this.#target?.onForwardEnd(this.#error, this.#bytes);
    this.#settlePromise();
  }

  #settlePromise(): void {
    if (!this.#resolve || !this.#reject) return;
    if (this.#error) this.#reject(this.#error);
    else this.#resolve(this.#bytes);
  }
}

/**
 * Forwards everything readable on the stream socket `fromFd` to `toFd`,
 * through the ring, until EOF (then half-closes `toFd`) or an error.
 */
export function forwardFd(ring: IoRing, fromFd: number, toFd: number, options: ForwardOptions = {}): SpliceForward {
  if (ring === null || typeof ring !== 'object' || typeof ring.splice !== 'function') throw new InvalidArgumentError('ring must be a Ring');
  if (ring.closed) throw new ClosedError('the ring is closed');
  if (!ring.capabilities.splice) throw new BackendUnavailableError('forwardFd() needs the io_uring backend (SPLICE ops)');
  assertFd(fromFd, 'fromFd');
  assertFd(toFd, 'toFd');
  if (fromFd === toFd) throw new InvalidArgumentError('fromFd and toFd must differ');
  if (options.target !== undefined && typeof options.target?.onForwardEnd !== 'function') {
    throw new InvalidArgumentError('options.target must have onForwardEnd(err, bytes)');
  }
  return new SpliceForward(ring, fromFd, toFd, options);
}

/**
 * Both directions between `aFd` and `bFd`. An error in one direction aborts
 * the other; resolves with [a->b bytes, b->a bytes] when both saw EOF.
 */
export function forwardBoth(
  ring: IoRing,
  aFd: number,
  bFd: number,
  options: Omit<ForwardOptions, 'target'> = {},
): { aToB: SpliceForward; bToA: SpliceForward; finished: Promise<[number, number]> } {
  const aToB = forwardFd(ring, aFd, bFd, options);
  let bToA: SpliceForward;
  try {
    bToA = forwardFd(ring, bFd, aFd, options);
  } catch (err) {
    aToB.abort();
    aToB.finished().catch(() => {});
    throw err;
  }
  const one = aToB.finished().catch((err: Error) => {
    bToA.abort();
    throw err;
  });
  const two = bToA.finished().catch((err: Error) => {
    aToB.abort();
    throw err;
  });
  return { aToB, bToA, finished: Promise.all([one, two]) };
}
