/**
 * Forwarding between two maio sockets: what arrives on `a` leaves on `b`.
 *
 * 'buffers' (the default here): each pool buffer received on `a` is handed
 * to b.send() as it is, so no byte is copied in user space (the kernel copies
 * skb -> pool buffer on receive and pool buffer -> skb on send, the same two
 * copies as a plain read/write loop, minus JavaScript's own). Memory is
 * bounded twice: `a` stops reading at its readQuota (a buffer lent to b's send
 * still counts against a's quota until the kernel is done with it), and `a`
 * is paused while b's queued bytes are at or above `highWaterMark`.
 *
 * 'splice': the bytes go a -> pipe -> b in the kernel (forwardFd in
 * splice-forward.ts) and never touch the pool. io_uring only; both fds are
 * switched to blocking mode (see splice-forward.ts).
 *
 * 'auto' starts each direction in 'buffers' and, on the io_uring backend,
 * switches that direction to 'splice' once it has proved to be a bulk stream:
 * `spliceAfterBytes` (default 8 MiB; 0 or Infinity: never) forwarded within
 * one window of at most a second. Idle and small connections so cost nothing
 * (the reasons below), and bulk streams get splice's lower CPU per byte
 * (the proxy scenario in BENCHMARKS.md has the current figures). The switch
 * keeps byte order: a is paused until its multishot recv has ended (the
 * socket signals it: kOnReceiveStopped), the buffers it had received are
 * sent, b's queue and in-flight sends drain (kOnSendsDrained), then the
 * splice forwarder takes over the two fds (counters,
 * half-close and errors carry over; 'end'/'done' are emitted once). It does
 * not switch back: a switched direction that later idles keeps its pipes and
 * parked worker thread until the connection ends. On epoll 'auto' stays 'buffers'. stats().mode / .mode say
 * which path a direction is on now.
 *
 * Why not splice from the start: its throughput is at most a few percent
 * ahead of buffers (bench/micro/forward-modes.ts measures both; BENCHMARKS.md
 * has the figures). Not
 * enough to pay what splice costs per connection: two pipes (2 fds and up to
 * 2 MiB each) per direction, fds switched to blocking mode, and an io-wq
 * worker thread parked in every splice that waits, so idle connections cost
 * threads (a proxy with 1,000 idle connections would hold 2,000). The buffer
 * path holds nothing while idle (multishot recv on the shared group), works
 * on the epoll backend too, and keeps memory bounded by readQuota.
 *
 * Half-close: a's 'end' becomes b.end() (open both sockets with
 * allowHalfOpen: true to keep the other direction going). A reset or any
 * error on one socket destroys the other with that error; the forwarder
 * emits it once as 'error'.
 */
import { EventEmitter } from 'node:events';
import { ClosedError, InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { kOnReceiveStopped, kOnSendsDrained } from '../core/symbols';
import { TypedEmitter, type Listener } from '../core/typed-events';
import type { IoBuffer } from '../pool/buffer';
import type { Socket, SocketEvents } from '../net/socket';
import { currentRing } from '../ring/current';
import { forwardFd, type SpliceForward } from './splice-forward';

export type ForwardMode = 'auto' | 'buffers' | 'splice';

export interface SocketForwardOptions {
  /** 'auto' (buffers, then splice for bulk streams, see above), 'buffers' or 'splice' (io_uring only). */
  mode?: ForwardMode;
  /** Pause `a` while b's queued bytes are at least this (default 1 MiB). */
  highWaterMark?: number;
  /** 'splice': size of each of the two pipes (default 1 MiB). */
  pipeSize?: number;
  /** Half-close `b` after a's 'end' (default true). */
  end?: boolean;
  /**
   * 'auto' on io_uring: switch this direction to splice after this many bytes
   * within one window of at most 1 s (default 8 MiB; 0 or Infinity: never).
   */
  spliceAfterBytes?: number;
}

export interface ForwarderStats {
  /** the path bytes take now */
  mode: 'buffers' | 'splice';
  /** the mode asked for */
  requested: ForwardMode;
  bytes: number;
  pauses: number;
  /** 'auto' moved this direction from buffers to splice */
  switched: boolean;
  /** bytes forwarded by buffers before the switch (0 when not switched) */
  bytesBeforeSwitch: number;
}

const DEFAULT_SPLICE_AFTER = 8 * 1024 * 1024;
const SPLICE_WINDOW_MS = 1000;

/** Sources with a running Forwarder. */
const forwarding = new WeakSet<Socket>();

function assertSocket(s: unknown, what: string): asserts s is Socket {
  if (s === null || typeof s !== 'object' || typeof (s as Socket).send !== 'function' || typeof (s as Socket).pause !== 'function') {
    throw new InvalidArgumentError(`${what} must be a maio Socket`);
  }
}

/** Which mode 'auto' resolves to, and whether splice is possible here. */
export function resolveMode(mode: ForwardMode = 'auto'): 'buffers' | 'splice' {
  if (mode !== 'auto' && mode !== 'buffers' && mode !== 'splice') {
    throw new InvalidArgumentError(`mode must be 'auto', 'buffers' or 'splice', got ${String(mode)}`);
  }
  if (mode === 'splice') {
    if (!currentRing().capabilities.splice) throw new InvalidArgumentError("mode 'splice' needs the io_uring backend (SPLICE ops); use 'buffers'");
    return 'splice';
  }
  return 'buffers';
}

/**
 * One direction a -> b. Events: 'end' (a's EOF was forwarded: b half-closed),
 * 'error' (err; both sockets are destroyed), 'done' (err | null, bytes): once.
 */
/** What a Forwarder emits. */
export interface ForwarderEvents {
  /** the source's end reached the destination (its FIN was forwarded) */
  end: [];
  /** only while someone listens; 'done' carries it too */
  error: [err: Error];
  /** the forwarding stopped: `err` null after a clean end; bytes forwarded */
  done: [err: Error | null, bytes: number];
}

export class Forwarder extends TypedEmitter<ForwarderEvents> {
  readonly from: Socket;
  readonly to: Socket;
  readonly requestedMode: ForwardMode;
  readonly highWaterMark: number;
  #mode: 'buffers' | 'splice';
  /** auto: bytes that switch to splice (Infinity: never) */
  #spliceAfter: number;
  #windowStart = 0;
  #windowBytes = 0;
  #switching = false;
  #switched = false;
  #bytesBeforeSwitch = 0;
  #onData: ((buf: IoBuffer) => void) | null = null;
  /** times `a` was paused for b's backpressure */
  pauses = 0;
  #bytes = 0;
  #pausedByUs = false;
  #done = false;
  #error: Error | null = null;
  #splice: SpliceForward | null = null;
  #endB: boolean;
  #pipeSize: number | undefined;
  #promise: Promise<number> | null = null;
  #cleanup: (() => void)[] = [];
  #sourceEnd = false;

  /** @internal use forward() */
  constructor(a: Socket, b: Socket, options: SocketForwardOptions) {
    super();
    this.from = a;
    this.to = b;
    this.requestedMode = options.mode ?? 'auto';
    this.#mode = resolveMode(options.mode);
    const after = options.spliceAfterBytes ?? DEFAULT_SPLICE_AFTER;
    if (typeof after !== 'number' || Number.isNaN(after) || after < 0 || (after !== Infinity && !Number.isSafeInteger(after))) {
      throw new OutOfRangeError(`spliceAfterBytes must be a non-negative integer or Infinity, got ${String(after)}`);
    }
    this.#spliceAfter = this.requestedMode === 'auto' && after > 0 && currentRing().capabilities.splice ? after : Infinity;
    const hwm = options.highWaterMark ?? 1024 * 1024;
    if (!Number.isSafeInteger(hwm) || hwm < 1) throw new OutOfRangeError(`highWaterMark must be a positive integer, got ${hwm}`);
    this.highWaterMark = hwm;
    this.#endB = options.end ?? true;
    this.#pipeSize = options.pipeSize;
    this.#watchErrors();
    forwarding.add(a);
    if (this.#mode === 'buffers') this.#startBuffers();
    else void this.#startSplice();
  }

  /** The path bytes take now ('auto' may move from 'buffers' to 'splice'). */
  get mode(): 'buffers' | 'splice' {
    return this.#mode;
  }

  stats(): ForwarderStats {
    return {
      mode: this.#mode,
      requested: this.requestedMode,
      bytes: this.bytes,
      pauses: this.pauses,
      switched: this.#switched,
      bytesBeforeSwitch: this.#bytesBeforeSwitch,
    };
  }

  /** Bytes handed to b so far. */
  get bytes(): number {
    return this.#splice ? this.#bytes + this.#splice.bytes : this.#bytes;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Resolves with the bytes forwarded after a's EOF reached b; rejects with the error. */
  finished(): Promise<number> {
    this.#promise ??= new Promise<number>((resolve, reject) => {
      if (this.#done) return this.#error ? reject(this.#error) : resolve(this.bytes);
      this.once('done', (err: Error | null, n: number) => (err ? reject(err) : resolve(n)));
    });
    return this.#promise;
  }

  /** Destroys both sockets with `err` (default: an AbortError-like ClosedError). */
  destroy(err?: Error): void {
    this.#fail(err ?? new ClosedError('forwarding was stopped'));
  }

  #on<K extends keyof SocketEvents & string>(s: Socket, event: K, fn: Listener<SocketEvents, K>): void {
    s.on(event, fn);
    this.#cleanup.push(() => s.off(event, fn));
  }

  #watchErrors(): void {
    const a = this.from;
    const b = this.to;
    this.#on(a, 'error', (err: Error) => this.#fail(err));
    this.#on(b, 'error', (err: Error) => this.#fail(err));
    // Closed without an error we saw (destroy() by someone): stop the other side too.
    this.#on(a, 'close', () => this.#closed(a));
    this.#on(b, 'close', () => this.#closed(b));
  }

  #closed(s: Socket): void {
    if (this.#done) return;
    // a closes after its 'end' (seen: our direction is complete or completing); b after our end() finished.
    if (s === this.from && this.#sourceEnd) return;
    if (s === this.to && this.to.writableFinished) return;
    const other = s === this.from ? this.to : this.from;
    setImmediate(() => {
      if (this.#done) return;
      if (!other.destroyed) other.destroy(new ClosedError(`the ${s === this.from ? 'source' : 'destination'} socket was closed`));
      this.#fail(new ClosedError(`the ${s === this.from ? 'source' : 'destination'} socket closed before the end was forwarded`));
    });
  }

  #fail(err: Error): void {
    if (this.#done) return;
    if (this.#splice && !this.#splice.done) this.#splice.abort();
    if (!this.from.destroyed) this.from.destroy(err);
    if (!this.to.destroyed) this.to.destroy(err);
    this.#finish(err);
  }

  #finish(err: Error | null): void {
    if (this.#done) return;
    this.#done = true;
    forwarding.delete(this.from);
    this.#error = err;
    for (const c of this.#cleanup) c();
    this.#cleanup = [];
    // Keep swallowing late 'error's of the sockets we destroyed: they were reported here.
    this.from.on('error', noop);
    this.to.on('error', noop);
    if (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    } else {
      this.emit('end');
    }
    this.emit('done', err, this.bytes);
  }

  // ---- buffers -------------------------------------------------------------

  #startBuffers(): void {
    const a = this.from;
    const b = this.to;
    const onSent = () => this.#maybeResume();
    const onData = (buf: IoBuffer) => {
      if (b.destroyed || b.writableEnded) return; // released by the lifetime rule
      const n = buf.length;
      this.#bytes += n;
      // Ownership passes to b's send; a's quota still counts it until the kernel is done.
      let ok: boolean;
      try {
        ok = b.send(buf);
      } catch (err) {
        // Another 'data' handler gave the buffer away already: an error of this
        // forwarder, not an exception thrown out of a's event emitter.
        this.#fail(err as Error);
        return;
      }
      if (!ok || b.writableLength >= this.highWaterMark) {
        if (!this.#pausedByUs) {
          this.#pausedByUs = true;
          this.pauses++;
          a.pause();
          // The bytes queued so far leave in order: when a zero-byte write
          // queued behind them completes, they are all with the kernel.
          b.write(EMPTY, onSent);
        }
      }
      if (this.#spliceAfter !== Infinity) this.#countForSwitch(n);
    };
    this.#onData = onData;
    this.#on(a, 'data', onData);
    this.#on(b, 'drain', onSent);
    this.#on(a, 'end', () => this.#sourceEnded());
    if (a.readableEnded) process.nextTick(() => this.#sourceEnded());
    else if (a.isPaused()) a.resume();
  }

  /** auto: a bulk stream moves to splice. */
  #countForSwitch(n: number): void {
    if (this.#switching || this.#done) return;
    const now = Date.now();
    if (now - this.#windowStart > SPLICE_WINDOW_MS) {
      this.#windowStart = now;
      this.#windowBytes = 0;
    }
    this.#windowBytes += n;
    if (this.#windowBytes < this.#spliceAfter) return;
    this.#switching = true;
    // From here on the splice start owns a's flow: no more buffers 'data', no backpressure resume.
    if (this.#onData) this.from.off('data', this.#onData);
    this.#onData = null;
    this.#pausedByUs = false;
    this.from.pause();
    this.#bytesBeforeSwitch = this.#bytes;
    void this.#startSplice(true);
  }

  #maybeResume(): void {
    if (!this.#pausedByUs || this.#done || this.#switching) return;
    if (this.to.writableLength >= this.highWaterMark) return;
    this.#pausedByUs = false;
    this.from.resume();
  }

  #sourceEnded(): void {
    if (this.#done || this.#sourceEnd) return;
    this.#sourceEnd = true;
    const b = this.to;
    if (!this.#endB) return this.#finish(null);
    if (b.destroyed) return this.#fail(new ClosedError('the destination socket was destroyed before the end was forwarded'));
    b.end();
    if (b.writableFinished) this.#finish(null);
    else this.#on(b, 'finish', () => this.#finish(null));
  }

  // ---- splice --------------------------------------------------------------

  async #startSplice(switching = false): Promise<void> {
    const a = this.from;
    const b = this.to;
    // A switch paused a itself; a forced splice keeps the caller's pause state for the 'end'.
    const wasPaused = switching ? false : a.isPaused();
    await Promise.all([a.connecting ? once(a, 'connect') : null, b.connecting ? once(b, 'connect') : null]);
    if (this.#done) return;
    if (a.readableEnded) return this.#sourceEnded();
    a.pause();
    // Wait until a's multishot recv is back, then move what it had already read.
    const [waiting, readEnded] = await new Promise<[number, boolean]>((resolve) => a[kOnReceiveStopped]((n, ended) => resolve([n, ended])));
    if (this.#done || a.destroyed) return;
    // The 'end' may come right after the buffers that were waiting.
    if (readEnded) this.#on(a, 'end', () => this.#sourceEnded());
    if (waiting > 0) {
      await new Promise<void>((resolve) => {
        let left = waiting;
        const onData = (buf: IoBuffer) => {
          this.#bytes += buf.length;
          b.send(buf);
          // The last buffer waiting (a's recv is not armed while paused, so no
          // other comes): pause again before a's recv is re-armed.
          if (--left === 0) {
            a.pause();
            a.off('data', onData);
            resolve();
          }
        };
        a.on('data', onData);
        a.resume();
      });
    }
    // Everything queued on b leaves before the first splice writes.
    await new Promise<void>((resolve) => b[kOnSendsDrained](resolve));
    if (this.#done || b.destroyed) return;
    if (readEnded) {
      if (!a.readableEnded) a.resume(); // delivers the 'end'
      return;
    }
    const ring = currentRing();
    if (switching) {
      this.#mode = 'splice';
      this.#switched = true;
    }
    const target = {
      onForwardEnd: (err: Error | null) => {
        if (err) return this.#fail(err);
        // a's EOF: let a's own recv see it ('end' follows), and half-close b through b.
        this.#on(a, 'end', () => undefined);
        this.#sourceEnded();
        if (!wasPaused) a.resume();
      },
    };
    try {
      this.#splice = forwardFd(ring, a.fd, b.fd, {
        shutdownOnEof: false,
        target,
        ...(this.#pipeSize !== undefined ? { pipeSize: this.#pipeSize } : {}),
      });
    } catch (err) {
      this.#fail(err as Error);
    }
  }
}

const EMPTY = new Uint8Array(0);
function noop(): void {}
function once(s: Socket, event: keyof SocketEvents & string): Promise<void> {
  return new Promise((resolve) => s.once(event, () => resolve()));
}

/** Forwards a -> b until a's end (then b.end()) or an error (then both are destroyed). */
export function forward(a: Socket, b: Socket, options: SocketForwardOptions = {}): Forwarder {
  assertSocket(a, 'a');
  assertSocket(b, 'b');
  if (a === b) throw new InvalidArgumentError('a and b must be different sockets');
  if (a.destroyed || b.destroyed) throw new ClosedError('cannot forward a destroyed socket');
  // Two forwarders of one source would both send each received buffer.
  if (forwarding.has(a)) throw new InvalidArgumentError('a is forwarded already (one forward() per source socket)');
  return new Forwarder(a, b, options);
}

/** Both directions; an error on either destroys both sockets. Events: 'error' (once), 'done'. */
/** What a Relay emits. */
export interface RelayEvents {
  /** the first error of either direction, only while someone listens */
  error: [err: Error];
  /** both directions stopped: bytes [a to b, b to a] after a clean end, else the error */
  done: [err: Error | null, bytes?: [number, number]];
}

export class Relay extends TypedEmitter<RelayEvents> {
  readonly aToB: Forwarder;
  readonly bToA: Forwarder;
  readonly finished: Promise<[number, number]>;
  #failed = false;

  /** @internal use forwardBoth() */
  constructor(a: Socket, b: Socket, options: SocketForwardOptions) {
    super();
    this.aToB = new Forwarder(a, b, options);
    this.bToA = new Forwarder(b, a, options);
    const onErr = (err: Error) => {
      if (this.#failed) return;
      this.#failed = true;
      if (this.listenerCount('error') > 0) this.emit('error', err);
    };
    this.aToB.on('error', onErr);
    this.bToA.on('error', onErr);
    this.finished = Promise.all([this.aToB.finished(), this.bToA.finished()]);
    this.finished.then(
      (n) => this.emit('done', null, n),
      (err: Error) => this.emit('done', err),
    );
  }

  get bytes(): [number, number] {
    return [this.aToB.bytes, this.bToA.bytes];
  }

  destroy(err?: Error): void {
    this.aToB.destroy(err);
    this.bToA.destroy(err);
  }
}

export function forwardBoth(a: Socket, b: Socket, options: SocketForwardOptions = {}): Relay {
  assertSocket(a, 'a');
  assertSocket(b, 'b');
  if (a === b) throw new InvalidArgumentError('a and b must be different sockets');
  if (a.destroyed || b.destroyed) throw new ClosedError('cannot forward a destroyed socket');
  return new Relay(a, b, options);
}
