/**
 * Socket: one TCP connection on this thread's ring, reading into and writing
 * from the I/O pool.
 *
 * Receive: one multishot recv on the thread's receive group for the pool
 * (recv-group.ts). Each completion is a pool buffer the application owns
 * ('data' event, or async iteration). A 'data' buffer is released when the
 * handlers return unless one of them kept it (buf.retain()) or passed it on
 * (socket.send(buf)). Received bytes not yet released count against the
 * socket's `readQuota`: above it the socket stops reading until the
 * application releases enough; other sockets are unaffected.
 *
 * Send: send(buf) lends the buffer to the kernel for good (released when the
 * kernel is done); write(data) copies into pool buffers, coalescing the writes
 * of one event-loop turn. Both go into one per-socket queue; at the ring's
 * flush the queue leaves as one chain of linked sends (IOSQE_IO_LINK,
 * MSG_WAITALL), and only one chain per socket is in flight, so bytes leave in
 * order. Sends of `zeroCopyMinBytes` or more go as SEND_ZC while the socket's
 * ZeroCopyPolicy says so; those buffers come back at the notification, whose
 * "copied" bit feeds the policy.
 *
 * Close: destroy() cancels what is in flight and closes the fd only after the
 * last completion (DESIGN.md rules 7-8); every buffer goes back to the pool;
 * 'close' comes last.
 */
import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import type { AddressInfo } from 'node:net';
import { backend } from '../backend';
import {
  AbortError,
  BufferForeignError,
  BufferLentError,
  BufferReleasedError,
  ClosedError,
  InvalidArgumentError,
  OutOfRangeError,
  errnoError,
  fromNative,
  type ErrnoError,
} from '../core/errors';
import {
  CQE_F_MORE,
  CQE_F_NOTIF,
  IOSQE_IO_LINK,
  NOTIF_USAGE_ZC_COPIED,
  Op,
  SENDV_MAX_LEN,
  SENDV_MAX_SEGS,
  native,
} from '../core/native';
import { kIdleClose, kLend, kPoolId, kReturn, kSocketState, kUncheckedBytes } from '../core/symbols';
import { socketSendFile, type SocketSendFileOptions } from './socket-file';
import { IoBuffer } from '../pool/buffer';
import { LEND_TRANSFER, type IoPool } from '../pool/pool';
import type { CompletionTarget, IoRing, PreFlush } from '../ring/io-ring';
import { AF_INET6, addressFamily, decodeSockaddr, sockaddr } from './address';
import { unwatch, watch, type IdleEntry } from './idle';
import { RecvGroup, type RecvGroupOptions, type RecvGroupUser } from './recv-group';
import * as sockopt from './sockopt';
import { totals } from './stats';
import { DEFAULT_MIN_BYTES, ZeroCopyPolicy, type ZeroCopyMode, type ZeroCopyStats } from './zc-policy';

const MSG_WAITALL = 0x100;
const MSG_NOSIGNAL = 0x4000;
const SHUT_WR = 1;
const ECANCELED = 125;
const ENOBUFS = 105;
const ENOMEM = 12;
const ETIMEDOUT = 110;
const ENOTCONN = 107;
const EPIPE = 32;
const EAGAIN = 11;
const EINVAL = 22;
/**
 * Whether the kernel takes a multishot recv's total byte limit (6.17+); the
 * first -EINVAL of a limited recv turns it off for the thread, and the read
 * quota is then checked per completion only (a multishot drains the socket
 * buffer before the cancel lands).
 */
let recvLimitWorks = true;

/** @internal false once this thread's kernel refused a multishot recv's byte limit (tests). */
export function recvLimitSupported(): boolean {
  return recvLimitWorks;
}
/** Sends per linked chain: enough to fill a socket buffer, few enough to keep a flush small. */
const MAX_CHAIN = 32;
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const TCP_ESTABLISHED = 1;
const TCP_CLOSE_WAIT = 8;
/** a SENDV's (offset, length) pairs, filled per run (ring.sendv copies them) */
const sendvSegs = new Int32Array(2 * SENDV_MAX_SEGS);

export type ReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

/** Options every maio socket (and a server, for its connections) takes. */
export interface MaioSocketOptions extends sockopt.SocketOptions {
  /** Pool for receive and write buffers (default: the thread's default pool). */
  pool?: IoPool;
  /** 'auto' adapts per socket (default), 'always' / 'never' force. */
  zeroCopy?: ZeroCopyMode;
  /** Smallest send that may go zero-copy (default 16 KiB). */
  zeroCopyMinBytes?: number;
  /** Zero-copy sends 'auto' looks at before deciding (default 8, see zc-policy.ts). */
  zeroCopyProbeSends?: number;
  /**
   * 'auto' probes with zero-copy sends even when the peer is on this host
   * (default false: local delivery always copies, and on Linux 6.18 a
   * SEND_ZC on loopback stalls the stream for hundreds of ms, so 'auto'
   * starts in plain mode there and says why).
   */
  zeroCopyProbeLocal?: boolean;
  /** Receive buffer size, a pool size class (default 65536). */
  readBufferSize?: number;
  /** Most receive buffers the thread's group for this pool takes (default 256). */
  readBuffersMax?: number;
  /** Bytes of receive buffers (capacity) a socket may hold unreleased before it stops reading (default 1 MiB). */
  readQuota?: number;
  /** Pool buffer size writes are copied into (default 65536). */
  writeBufferSize?: number;
  /** write()/send() return false above this many queued bytes (default 1 MiB); 'drain' follows. */
  writableHighWaterMark?: number;
  /** Keep the writable side open after the peer's FIN (default false: end() follows 'end'). */
  allowHalfOpen?: boolean;
}

export interface ConnectOptions extends MaioSocketOptions {
  port: number | string;
  /** IP literal or name (default 'localhost') */
  host?: string;
  /** 0, 4 or 6: restricts name lookups */
  family?: 0 | 4 | 6;
  /** ms: cancel the connect and fail with ETIMEDOUT */
  timeout?: number;
  signal?: AbortSignal;
  /** bind the socket to this address before connecting (default: the family's any address when localPort is set) */
  localAddress?: string;
  /** bind the socket to this port before connecting (0: the kernel picks) */
  localPort?: number;
}

/** @internal where a client socket binds before it connects (node:net's localAddress / localPort) */
export interface LocalBind {
  address?: string | undefined;
  port?: number | undefined;
}

export interface SocketStats {
  bytesRead: number;
  bytesWritten: number;
  /** bytes queued by write()/send() and not yet completed */
  queuedBytes: number;
  /** sends in flight (results or zero-copy notifications outstanding) */
  sendsInFlight: number;
  /** received buffers delivered and not released */
  receiveBuffersHeld: number;
  receiveBytesHeld: number;
  /** reading stopped because receiveBytesHeld reached readQuota */
  readBlocked: boolean;
  zeroCopy: ZeroCopyStats & { zeroCopyBytesSent: number; copiedBytesReported: number };
}

type WriteCallback = (err?: Error | null) => void;

/** A send's own completions go to its item (no per-socket lookup by op id). */
const kSendDone = Symbol('maio.socket.sendDone');

class SendItem implements CompletionTarget {
  buf: IoBuffer;
  /** bytes to send (writes fill it up to buf.capacity) */
  len: number;
  /** a write buffer the socket owns (vs a buffer handed over with send()) */
  write: boolean;
  cbs: WriteCallback[] | null = null;
  opId = -1;
  zc = false;
  resultDone = false;
  /** where the bytes start in buf (a resend of the rest of a short send) */
  off = 0;
  /** submit order, to resend cancelled chains in order */
  seq = 0;
  /** the first send of a SENDV holds the run's sends (itself first) until its completion */
  run: SendItem[] | null = null;
  /** items sharing buf's one lend (a send and its resend): the last one returns it */
  share: { n: number } | null = null;
  /** the socket whose in-flight list holds it, and where (set when queued on the ring) */
  owner: Socket | null = null;
  index = -1;
  constructor(buf: IoBuffer, len: number, write: boolean) {
    this.buf = buf;
    this.len = len;
    this.write = write;
  }
  onCompletion(_opId: number, res: number, flags: number): void {
    this.owner![kSendDone](this, res, flags);
  }
}

/**
 * Finished send items of every socket of this thread, reused: no allocation
 * per send, and nothing kept per socket (an idle socket holds no spare item).
 */
const spareItems: SendItem[] = [];
const MAX_SPARE_ITEMS = 1024;

/**
 * A socket's send queue and in-flight list are NO_ITEMS (shared, frozen) while
 * empty: it takes an array from this thread's spare lists at the first push
 * and gives it back, empty, with its backing store, when it empties. An idle
 * socket holds no array; a busy one allocates none.
 */
const NO_ITEMS = Object.freeze([]) as unknown as SendItem[];
const spareLists: SendItem[][] = [];
const MAX_SPARE_LISTS = 256;

function takeList(): SendItem[] {
  return spareLists.pop() ?? [];
}

/** Gives back an emptied list; returns NO_ITEMS for the caller to store. */
function giveList(list: SendItem[]): SendItem[] {
  if (list !== NO_ITEMS && list.length === 0 && spareLists.length < MAX_SPARE_LISTS) spareLists.push(list);
  return NO_ITEMS;
}

interface Pending {
  data: Uint8Array;
  cb: WriteCallback | null;
}

// Empty queues shared by every socket (frozen: a push into one throws).
const NO_BUFFERS = Object.freeze([]) as unknown as IoBuffer[];
const NO_PENDING = Object.freeze([]) as unknown as Pending[];

/** @internal what a Socket needs from whoever made it */
export interface SocketInit {
  ring: IoRing;
  options: MaioSocketOptions;
  pool: IoPool;
  /** an accepted fd (connected), or -1 */
  fd: number;
  onClose?: (s: Socket) => void;
}

const kInit = Symbol('maio.socket.init');

/** Listener storage for a socket's EventEmitter (see the constructor). */
function EventHandlers(this: object): void {}
EventHandlers.prototype = Object.create(null) as object;
const EventHandlersCtor = EventHandlers as unknown as new () => object;
/** the receive group options of a socket that sets none (shared: no object per accept) */
const NO_GROUP_OPTIONS: Readonly<RecvGroupOptions> = Object.freeze({});

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

function rethrow(err: unknown): never {
  throw err;
}

/**
 * State most sockets never use, or use only around connect and close: one
 * object made when a field first leaves its default, instead of eighteen
 * fields in every socket (an idle accepted socket never makes it).
 */
class RareState {
  connectOp: number = -1;
  timer: NodeJS.Timeout | null = null;
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;
  remote: AddressInfo | null = null;
  local: AddressInfo | null = null;
  /** the local address asked for with localAddress / localPort (connect errors name it, as node:net's do) */
  bind: { address: string; port: number } | null = null;
  iterWake: (() => void) | null = null;
  sendError: Error | null = null;
  shutdownOp: number = -1;
  zcSentBytes: number = 0;
  zcCopiedBytes: number = 0;
  /** the CLOSE of the fd, in flight */
  closeOp: number = -1;
  error: Error | null = null;
  /** idle timeouts (idle.ts: one coarse check per thread, nothing on the data path) */
  idle: IdleEntry | null = null;
  idleClose: IdleEntry | null = null;
  /** sends to go again, plain, once the chain in flight is done (#resend) */
  resends: SendItem[] | null = null;
  /** sends the chain cancelled, decided on at its end */
  cancelled: SendItem[] | null = null;
  policy: ZeroCopyPolicy | null = null;
}

/** Socket state bits (one field, not sixteen booleans: 10,000 idle sockets pay for each field). */
const enum Flag {
  Connecting = 1 << 0,
  TimedOut = 1 << 1,
  RecvCancelling = 1 << 2,
  RecvLimited = 1 << 3,
  WaitingBuffers = 1 << 4,
  Paused = 1 << 5,
  ReadEnded = 1 << 6,
  EndEmitted = 1 << 7,
  Iterating = 1 << 8,
  WaitingAlloc = 1 << 9,
  NeedDrain = 1 << 10,
  Scheduled = 1 << 11,
  Ending = 1 << 12,
  WriteFinished = 1 << 13,
  Destroyed = 1 << 14,
  Closed = 1 << 15,
}

export class Socket extends EventEmitter implements CompletionTarget, PreFlush, RecvGroupUser {
  /** The pool this socket's buffers come from; send() takes only its buffers. */
  readonly pool: IoPool;
  bytesRead = 0;
  bytesWritten = 0;
  readonly #ring: IoRing;
  /** may be shared with the server and its other connections: replaced, never changed in place */
  #opts: MaioSocketOptions;
  /** small sends counted before the policy exists (#useZeroCopy) */
  #earlyPlainSends = 0;
  #earlyPlainBytes = 0;
  readonly #quota: number;
  readonly #hwm: number;
  readonly #writeSize: number;
  readonly #allowHalfOpen: boolean;
  #onCloseHook: ((s: Socket) => void) | undefined;
  #flags = 0;
  #rare: RareState | null = null;
  get #connectOp(): number {
    return this.#rare === null ? -1 : this.#rare.connectOp;
  }
  set #connectOp(v: number) {
    if (this.#rare !== null) this.#rare.connectOp = v;
    else if (v !== -1) (this.#rare = new RareState()).connectOp = v;
  }
  get #timer(): NodeJS.Timeout | null {
    return this.#rare === null ? null : this.#rare.timer;
  }
  set #timer(v: NodeJS.Timeout | null) {
    if (this.#rare !== null) this.#rare.timer = v;
    else if (v !== null) (this.#rare = new RareState()).timer = v;
  }
  get #signal(): AbortSignal | null {
    return this.#rare === null ? null : this.#rare.signal;
  }
  set #signal(v: AbortSignal | null) {
    if (this.#rare !== null) this.#rare.signal = v;
    else if (v !== null) (this.#rare = new RareState()).signal = v;
  }
  get #onAbort(): (() => void) | null {
    return this.#rare === null ? null : this.#rare.onAbort;
  }
  set #onAbort(v: (() => void) | null) {
    if (this.#rare !== null) this.#rare.onAbort = v;
    else if (v !== null) (this.#rare = new RareState()).onAbort = v;
  }
  get #remote(): AddressInfo | null {
    return this.#rare === null ? null : this.#rare.remote;
  }
  set #remote(v: AddressInfo | null) {
    if (this.#rare !== null) this.#rare.remote = v;
    else if (v !== null) (this.#rare = new RareState()).remote = v;
  }
  get #local(): AddressInfo | null {
    return this.#rare === null ? null : this.#rare.local;
  }
  set #local(v: AddressInfo | null) {
    if (this.#rare !== null) this.#rare.local = v;
    else if (v !== null) (this.#rare = new RareState()).local = v;
  }
  get #iterWake(): (() => void) | null {
    return this.#rare === null ? null : this.#rare.iterWake;
  }
  set #iterWake(v: (() => void) | null) {
    if (this.#rare !== null) this.#rare.iterWake = v;
    else if (v !== null) (this.#rare = new RareState()).iterWake = v;
  }
  get #sendError(): Error | null {
    return this.#rare === null ? null : this.#rare.sendError;
  }
  set #sendError(v: Error | null) {
    if (this.#rare !== null) this.#rare.sendError = v;
    else if (v !== null) (this.#rare = new RareState()).sendError = v;
  }
  get #shutdownOp(): number {
    return this.#rare === null ? -1 : this.#rare.shutdownOp;
  }
  set #shutdownOp(v: number) {
    if (this.#rare !== null) this.#rare.shutdownOp = v;
    else if (v !== -1) (this.#rare = new RareState()).shutdownOp = v;
  }
  get #zcSentBytes(): number {
    return this.#rare === null ? 0 : this.#rare.zcSentBytes;
  }
  set #zcSentBytes(v: number) {
    if (this.#rare !== null) this.#rare.zcSentBytes = v;
    else if (v !== 0) (this.#rare = new RareState()).zcSentBytes = v;
  }
  get #zcCopiedBytes(): number {
    return this.#rare === null ? 0 : this.#rare.zcCopiedBytes;
  }
  set #zcCopiedBytes(v: number) {
    if (this.#rare !== null) this.#rare.zcCopiedBytes = v;
    else if (v !== 0) (this.#rare = new RareState()).zcCopiedBytes = v;
  }
  get #closeOp(): number {
    return this.#rare === null ? -1 : this.#rare.closeOp;
  }
  set #closeOp(v: number) {
    if (this.#rare !== null) this.#rare.closeOp = v;
    else if (v !== -1) (this.#rare = new RareState()).closeOp = v;
  }
  get #error(): Error | null {
    return this.#rare === null ? null : this.#rare.error;
  }
  set #error(v: Error | null) {
    if (this.#rare !== null) this.#rare.error = v;
    else if (v !== null) (this.#rare = new RareState()).error = v;
  }
  get #idle(): IdleEntry | null {
    return this.#rare === null ? null : this.#rare.idle;
  }
  set #idle(v: IdleEntry | null) {
    if (this.#rare !== null) this.#rare.idle = v;
    else if (v !== null) (this.#rare = new RareState()).idle = v;
  }
  get #idleClose(): IdleEntry | null {
    return this.#rare === null ? null : this.#rare.idleClose;
  }
  set #idleClose(v: IdleEntry | null) {
    if (this.#rare !== null) this.#rare.idleClose = v;
    else if (v !== null) (this.#rare = new RareState()).idleClose = v;
  }
  get #resends(): SendItem[] | null {
    return this.#rare === null ? null : this.#rare.resends;
  }
  set #resends(v: SendItem[] | null) {
    if (this.#rare !== null) this.#rare.resends = v;
    else if (v !== null) (this.#rare = new RareState()).resends = v;
  }
  get #cancelled(): SendItem[] | null {
    return this.#rare === null ? null : this.#rare.cancelled;
  }
  set #cancelled(v: SendItem[] | null) {
    if (this.#rare !== null) this.#rare.cancelled = v;
    else if (v !== null) (this.#rare = new RareState()).cancelled = v;
  }
  get #policy(): ZeroCopyPolicy | null {
    return this.#rare === null ? null : this.#rare.policy;
  }
  set #policy(v: ZeroCopyPolicy | null) {
    if (this.#rare !== null) this.#rare.policy = v;
    else if (v !== null) (this.#rare = new RareState()).policy = v;
  }
  get #connecting(): boolean {
    return (this.#flags & Flag.Connecting) !== 0;
  }
  set #connecting(v: boolean) {
    this.#flags = v ? this.#flags | Flag.Connecting : this.#flags & ~Flag.Connecting;
  }
  get #timedOut(): boolean {
    return (this.#flags & Flag.TimedOut) !== 0;
  }
  set #timedOut(v: boolean) {
    this.#flags = v ? this.#flags | Flag.TimedOut : this.#flags & ~Flag.TimedOut;
  }
  get #recvCancelling(): boolean {
    return (this.#flags & Flag.RecvCancelling) !== 0;
  }
  set #recvCancelling(v: boolean) {
    this.#flags = v ? this.#flags | Flag.RecvCancelling : this.#flags & ~Flag.RecvCancelling;
  }
  get #recvLimited(): boolean {
    return (this.#flags & Flag.RecvLimited) !== 0;
  }
  set #recvLimited(v: boolean) {
    this.#flags = v ? this.#flags | Flag.RecvLimited : this.#flags & ~Flag.RecvLimited;
  }
  get #waitingBuffers(): boolean {
    return (this.#flags & Flag.WaitingBuffers) !== 0;
  }
  set #waitingBuffers(v: boolean) {
    this.#flags = v ? this.#flags | Flag.WaitingBuffers : this.#flags & ~Flag.WaitingBuffers;
  }
  get #paused(): boolean {
    return (this.#flags & Flag.Paused) !== 0;
  }
  set #paused(v: boolean) {
    this.#flags = v ? this.#flags | Flag.Paused : this.#flags & ~Flag.Paused;
  }
  get #readEnded(): boolean {
    return (this.#flags & Flag.ReadEnded) !== 0;
  }
  set #readEnded(v: boolean) {
    this.#flags = v ? this.#flags | Flag.ReadEnded : this.#flags & ~Flag.ReadEnded;
  }
  get #endEmitted(): boolean {
    return (this.#flags & Flag.EndEmitted) !== 0;
  }
  set #endEmitted(v: boolean) {
    this.#flags = v ? this.#flags | Flag.EndEmitted : this.#flags & ~Flag.EndEmitted;
  }
  get #iterating(): boolean {
    return (this.#flags & Flag.Iterating) !== 0;
  }
  set #iterating(v: boolean) {
    this.#flags = v ? this.#flags | Flag.Iterating : this.#flags & ~Flag.Iterating;
  }
  get #waitingAlloc(): boolean {
    return (this.#flags & Flag.WaitingAlloc) !== 0;
  }
  set #waitingAlloc(v: boolean) {
    this.#flags = v ? this.#flags | Flag.WaitingAlloc : this.#flags & ~Flag.WaitingAlloc;
  }
  get #needDrain(): boolean {
    return (this.#flags & Flag.NeedDrain) !== 0;
  }
  set #needDrain(v: boolean) {
    this.#flags = v ? this.#flags | Flag.NeedDrain : this.#flags & ~Flag.NeedDrain;
  }
  get #scheduled(): boolean {
    return (this.#flags & Flag.Scheduled) !== 0;
  }
  set #scheduled(v: boolean) {
    this.#flags = v ? this.#flags | Flag.Scheduled : this.#flags & ~Flag.Scheduled;
  }
  get #ending(): boolean {
    return (this.#flags & Flag.Ending) !== 0;
  }
  set #ending(v: boolean) {
    this.#flags = v ? this.#flags | Flag.Ending : this.#flags & ~Flag.Ending;
  }
  get #writeFinished(): boolean {
    return (this.#flags & Flag.WriteFinished) !== 0;
  }
  set #writeFinished(v: boolean) {
    this.#flags = v ? this.#flags | Flag.WriteFinished : this.#flags & ~Flag.WriteFinished;
  }
  get #destroyed(): boolean {
    return (this.#flags & Flag.Destroyed) !== 0;
  }
  set #destroyed(v: boolean) {
    this.#flags = v ? this.#flags | Flag.Destroyed : this.#flags & ~Flag.Destroyed;
  }
  get #closed(): boolean {
    return (this.#flags & Flag.Closed) !== 0;
  }
  set #closed(v: boolean) {
    this.#flags = v ? this.#flags | Flag.Closed : this.#flags & ~Flag.Closed;
  }
  #fd: number;

  // receive
  #group: RecvGroup | null = null;
  #recvOp = -1;
  #held = 0;
  #heldBuffers = 0;
  /** NO_BUFFERS (shared, frozen) until a buffer waits: an idle socket holds no array */
  #pending: IoBuffer[] = NO_BUFFERS;

  // send
  /** NO_ITEMS while empty (see takeList) */
  #sendQ: SendItem[] = NO_ITEMS;
  /** queued on the ring, until the kernel is done with the buffer (item.index is the position) */
  #inflight: SendItem[] = NO_ITEMS;
  #chainLeft = 0;
  /** NO_PENDING (shared, frozen) until a write waits for a pool buffer */
  #overflow: Pending[] = NO_PENDING;
  #queuedBytes = 0;

  /** @internal use connect() or a Server. */
  constructor(token: symbol, init: SocketInit) {
    super();
    if (token !== kInit) throw new InvalidArgumentError('use maio.connect() or a Server to make sockets');
    // EventEmitter keeps listeners in a null-prototype literal, which V8 holds
    // as a hash table (~280 B a socket); an object whose prototype has a null
    // prototype is just as safe for event names ('constructor' finds nothing)
    // and stays a compact fast-mode object. Node's own emitters used this form
    // until v12; removing listeners still works as in EventEmitter.
    (this as unknown as { _events: object })._events = new EventHandlersCtor();
    const o = init.options;
    this.#ring = init.ring;
    this.#opts = o;
    this.pool = init.pool;
    if (this.pool[kPoolId] < 0) {
      throw new InvalidArgumentError("the pool is not attached to this thread's ring (created with register: false, or on another thread)");
    }
    this.#quota = o.readQuota ?? 1024 * 1024;
    this.#hwm = o.writableHighWaterMark ?? 1024 * 1024;
    this.#writeSize = Math.min(o.writeBufferSize ?? 65536, this.pool.maxAllocSize);
    this.#allowHalfOpen = o.allowHalfOpen ?? false;
    this.#onCloseHook = init.onClose;
    this.#fd = init.fd;
    totals.socketsOpened++;
    totals.socketsOpen++;
    if (this.#fd >= 0) {
      this.#applyOptions();
      this.#armRecv();
    }
  }

  /** @internal */
  static [kInit] = kInit;

  // A 'data' listener starts the flow (buffers that waited go first). These
  // overrides replace a 'newListener' closure per socket (node:net's Readable
  // overrides on() the same way): 10,000 idle sockets paid for 10,000 closures.
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    if (event === 'data') this.#dataListenerAdded();
    return this;
  }
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.on(event, listener);
  }
  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this {
    super.prependListener(event, listener);
    if (event === 'data') this.#dataListenerAdded();
    return this;
  }

  #dataListenerAdded(): void {
    if (this.#paused) return;
    // Nothing waits and the recv is armed (a server's new connection): from
    // now on buffers go straight to 'data', so there is nothing to flush.
    if (this.#pending.length === 0 && !this.#readEnded && this.#recvOp >= 0) return;
    process.nextTick(Socket.#flushPendingOf, this);
  }

  /** A nextTick callback shared by every socket (no closure per call). */
  static #flushPendingOf(s: Socket): void {
    s.#flushPending();
  }

  // ---- connect ---------------------------------------------------------

  /** @internal starts connecting to an encoded sockaddr */
  connectTo(addr: Uint8Array, timeout: number | undefined, signal: AbortSignal | undefined, local?: LocalBind): void {
    this.#connecting = true;
    if (this.#destroyed) return;
    this.#remote = decodeSockaddr(addr);
    if (signal) {
      if (signal.aborted) {
        process.nextTick(() => this.destroy(new AbortError(undefined, { cause: signal.reason })));
        return;
      }
      this.#signal = signal;
      this.#onAbort = () => this.destroy(new AbortError(undefined, { cause: signal.reason }));
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    if (this.#destroyed) return;
    const family = new DataView(addr.buffer, addr.byteOffset, 2).getUint16(0, true) === AF_INET6 ? 6 : 4;
    try {
      this.#fd = native().sockOpen(family, 'tcp');
      this.#applyOptions();
    } catch (err) {
      process.nextTick(() => this.destroy(fromNative(err) as Error));
      return;
    }
    if (local && (local.address !== undefined || local.port !== undefined)) {
      const err = this.#bindLocal(family, local);
      if (err) {
        process.nextTick(() => this.destroy(err));
        return;
      }
    }
    this.#queueConnect(addr, 0);
    if (timeout !== undefined && timeout > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        if (this.#connectOp >= 0) {
          this.#timedOut = true;
          this.#ring.cancel(this.#connectOp);
        } else if (this.#connectOp === -2) {
          this.destroy(errnoError(-ETIMEDOUT, 'connect'));
        }
      }, timeout);
    }
  }

  /**
   * bind(2) before the connect, on the family of the address connected to
   * (an address of the other family fails with EINVAL, as in node:net).
   * Returns the error, shaped like node:net's ('bind EADDRINUSE 127.0.0.1:80').
   */
  #bindLocal(family: 4 | 6, local: LocalBind): Error | null {
    const address = local.address ?? (family === 6 ? '::' : '0.0.0.0');
    const port = local.port ?? 0;
    const r = this.#rare ?? (this.#rare = new RareState());
    r.bind = { address, port };
    let err: ErrnoError & { address?: string; port?: number };
    if (addressFamily(address) !== family) {
      err = errnoError(-EINVAL, 'bind');
    } else {
      try {
        native().sockBind(this.#fd, sockaddr(address, port));
        return null;
      } catch (e) {
        const errno = (e as { errno?: unknown }).errno;
        if (typeof errno !== 'number') return fromNative(e) as Error;
        err = errnoError(errno, 'bind');
      }
    }
    err.address = address;
    if (port) err.port = port;
    err.message = `bind ${err.code} ${address}${port ? `:${port}` : ''}`;
    return err;
  }

  /**
   * The kernel copies the sockaddr while the flush submits the CONNECT, so
   * the aux slot is freed right after that flush (a microtask queued after
   * the ring's). With every slot taken, try again next turn.
   */
  #queueConnect(addr: Uint8Array, tries: number): void {
    if (this.#destroyed) return this.#maybeClose();
    const ring = this.#ring;
    const aux = ring.allocAux();
    if (aux < 0) {
      if (tries > 1000) {
        this.destroy(errnoError(-EAGAIN, 'connect'));
        return;
      }
      this.#connectOp = -2; // pending: not in flight, but connecting
      setImmediate(() => this.#queueConnect(addr, tries + 1));
      return;
    }
    ring.aux.set(addr, aux);
    this.#connectOp = ring.connect(this, this.#fd, aux, addr.length);
    queueMicrotask(() => ring.freeAux(aux));
  }

  /** @internal connecting from now on (the address is being looked up) */
  beginConnect(): void {
    this.#connecting = true;
  }

  /** @internal failed before connecting (name lookup) */
  fail(err: Error): void {
    this.destroy(err);
  }

  #onConnect(res: number): void {
    this.#connectOp = -1;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#destroyed) return this.#maybeClose();
    if (res < 0) {
      const errno = res === -ECANCELED && this.#timedOut ? -ETIMEDOUT : res;
      const err = errnoError(errno, 'connect') as ErrnoError & { address?: string; port?: number };
      if (this.#remote) {
        err.address = this.#remote.address;
        err.port = this.#remote.port;
        err.message = `connect ${err.code} ${this.#remote.address}:${this.#remote.port}`;
      }
      // node:net names the local end when both its address and port were given
      const bind = this.#rare?.bind;
      if (bind && bind.port) {
        Object.assign(err, { localAddress: bind.address, localPort: bind.port });
        err.message += ` - Local (${bind.address}:${bind.port})`;
      }
      this.destroy(err);
      return;
    }
    this.#connecting = false;
    this.emit('connect');
    this.emit('ready');
    this.#armRecv();
    this.#scheduleFlush();
  }

  /**
   * Whether a send of `len` bytes goes zero-copy. Below zeroCopyMinBytes the
   * answer is no in every mode but 'always', so a socket that only makes
   * small sends never builds its policy (nor looks up its peer's address):
   * the sends are counted here and handed to the policy when it is made.
   */
  #useZeroCopy(len: number): boolean {
    if (this.#policy === null) {
      const o = this.#opts;
      if (len < (o.zeroCopyMinBytes ?? DEFAULT_MIN_BYTES) && o.zeroCopy !== 'always') {
        this.#earlyPlainSends++;
        this.#earlyPlainBytes += len;
        return false;
      }
    }
    return this.#zc().useZeroCopy(len);
  }

  /** Made at the first send that may go zero-copy (or stats()), when the peer's address is known. */
  #zc(): ZeroCopyPolicy {
    if (this.#policy) return this.#policy;
    const o = this.#opts;
    const mode = o.zeroCopy ?? 'auto';
    const local = mode === 'auto' && !o.zeroCopyProbeLocal && isLocalAddress(this.remoteAddress);
    this.#policy = new ZeroCopyPolicy({
      mode,
      ...(o.zeroCopyMinBytes !== undefined ? { minBytes: o.zeroCopyMinBytes } : {}),
      ...(o.zeroCopyProbeSends !== undefined ? { probeSends: o.zeroCopyProbeSends } : {}),
      ...(local
        ? {
            startPlain:
              backend().mode === 'io_uring'
                ? `the peer ${this.remoteAddress} is on this host: local delivery copies zero-copy sends (and SEND_ZC on loopback stalls the stream), so plain sends without probing`
                : `the peer ${this.remoteAddress} is on this host: local delivery copies zero-copy sends (MSG_ZEROCOPY on the epoll backend), so plain sends without probing`,
            reprobeAfter: Infinity,
          }
        : {}),
    });
    this.#policy.countPlain(this.#earlyPlainSends, this.#earlyPlainBytes);
    this.#earlyPlainSends = 0;
    this.#earlyPlainBytes = 0;
    return this.#policy;
  }

  #applyOptions(): void {
    // Field by field (the connection's options only: a server's reusePort is
    // not one), so an accept allocates nothing here.
    const o = this.#opts;
    const fd = this.#fd;
    sockopt.setNoDelay(fd, o.noDelay ?? true);
    if (o.keepAlive !== undefined) {
      const probes: sockopt.KeepAliveProbes = {};
      if (o.keepAliveInterval !== undefined) probes.interval = o.keepAliveInterval;
      if (o.keepAliveCount !== undefined) probes.count = o.keepAliveCount;
      sockopt.setKeepAlive(fd, o.keepAlive, o.keepAliveInitialDelay ?? 0, probes);
    }
    if (o.recvBufferSize !== undefined) sockopt.setRecvBufferSize(fd, o.recvBufferSize);
    if (o.sendBufferSize !== undefined) sockopt.setSendBufferSize(fd, o.sendBufferSize);
    if (o.userTimeout !== undefined) sockopt.setUserTimeout(fd, o.userTimeout);
    if (o.linger !== undefined) sockopt.setLinger(fd, o.linger);
  }

  // ---- completions -----------------------------------------------------

  /** @internal */
  onCompletion(opId: number, res: number, flags: number): void {
    if (opId === this.#recvOp) return this.#onRecv(res, flags);
    if (opId === this.#connectOp) return this.#onConnect(res);
    if (opId === this.#shutdownOp) return this.#onShutdown(res);
    // The fd is gone whatever res says (close(2) releases the number even on EINTR/EIO).
    if (opId === this.#closeOp) return this.#closeDone();
  }

  // ---- receive ---------------------------------------------------------

  #canRead(): boolean {
    return (
      !this.#destroyed &&
      !this.#connecting &&
      this.#fd >= 0 &&
      !this.#readEnded &&
      !this.#paused &&
      !this.#waitingBuffers &&
      this.#held < this.#quota
    );
  }

  #armRecv(): void {
    if (this.#recvOp >= 0 || !this.#canRead()) return;
    if (this.#group === null) {
      const o = this.#opts;
      this.#group = RecvGroup.acquire(
        this.#ring,
        this.pool,
        o.readBufferSize === undefined && o.readBuffersMax === undefined
          ? NO_GROUP_OPTIONS
          : {
              ...(o.readBufferSize !== undefined ? { bufferSize: o.readBufferSize } : {}),
              ...(o.readBuffersMax !== undefined ? { maxBuffers: o.readBuffersMax } : {}),
            },
      );
    }
    // The recv ends by itself once the bytes left under the quota came in (at
    // most one buffer more): a cancel sent at the quota lands only after the
    // kernel drained the socket buffer into the shared group (~200 KiB held
    // against a 16 KiB quota). It is re-armed at its last CQE while under quota.
    this.#recvLimited = recvLimitWorks;
    const limit = recvLimitWorks ? Math.max(1, Math.min(Math.floor(this.#quota - this.#held), 0x7fffffff)) : 0;
    this.#recvOp = this.#ring.recvMulti(this, this.#fd, this.#group.id, 0, limit);
  }

  #stopRecv(): void {
    if (this.#recvOp >= 0 && !this.#recvCancelling) {
      this.#recvCancelling = true;
      this.#ring.cancel(this.#recvOp);
    }
  }

  #onRecv(res: number, flags: number): void {
    const final = (flags & CQE_F_MORE) === 0;
    if (final) {
      this.#recvOp = -1;
      this.#recvCancelling = false;
    }
    if (res > 0) {
      const buf = this.#group!.take(flags >>> 16, res, this);
      this.bytesRead += res;
      totals.bytesRead += res;
      totals.recvCompletions++;
      this.#held += buf.capacity;
      this.#heldBuffers++;
      if (this.#destroyed) buf.release();
      else this.#deliver(buf);
      if (!final && this.#held >= this.#quota) this.#stopRecv();
    } else if (res === 0) {
      this.#readEnded = true;
      if (this.#pending.length === 0) this.#emitEnd();
      this.#wakeIterator();
    } else if (res === -ENOBUFS) {
      if (!this.#destroyed && !this.#group!.noBuffers(this)) this.#waitingBuffers = true;
    } else if (res === -EINVAL && final && this.#recvLimited && recvLimitWorks) {
      recvLimitWorks = false; // a kernel before 6.17: re-armed below without the limit
    } else if (res !== -ECANCELED) {
      this.destroy(errnoError(res, 'read'));
    }
    if (final) {
      if (this.#destroyed) this.#maybeClose();
      else this.#armRecv();
    }
  }

  /** @internal the application released a buffer this socket received */
  onRecvBufferReleased(capacity: number): void {
    this.#held -= capacity;
    this.#heldBuffers--;
    if (this.#recvOp < 0 && !this.#destroyed) this.#armRecv();
  }

  /** @internal the receive group has buffers again */
  onRecvBuffersAvailable(): void {
    this.#waitingBuffers = false;
    this.#armRecv();
  }

  #flowing(): boolean {
    return !this.#paused && !this.#iterating && this.listenerCount('data') > 0;
  }

  #deliver(buf: IoBuffer): void {
    if (this.#pending.length > 0 || !this.#flowing()) {
      if (this.#pending === NO_BUFFERS) this.#pending = [];
      this.#pending.push(buf);
      this.#wakeIterator();
      return;
    }
    this.#emitData(buf);
  }

  #emitData(buf: IoBuffer): void {
    try {
      this.emit('data', buf);
    } catch (err) {
      process.nextTick(rethrow, err);
    }
    // The lifetime rule: released when the handlers return unless kept or sent.
    if (!buf.released && !buf.lent && !buf.retained) buf.release();
  }

  #flushPending(): void {
    while (this.#pending.length > 0 && this.#flowing() && !this.#destroyed) this.#emitData(this.#pending.shift()!);
    if (this.#readEnded && this.#pending.length === 0) this.#emitEnd();
    this.#armRecv();
  }

  #emitEnd(): void {
    if (this.#endEmitted || this.#destroyed) return;
    this.#endEmitted = true;
    this.emit('end');
    if (!this.#allowHalfOpen) this.end();
    this.#maybeAutoDestroy();
  }

  #wakeIterator(): void {
    const w = this.#iterWake;
    if (w) {
      this.#iterWake = null;
      w();
    }
  }

  /** Stops reading ('data' stops; buffers that arrive meanwhile wait). */
  pause(): this {
    this.#paused = true;
    this.#stopRecv();
    return this;
  }

  /** Reads again; waiting buffers are delivered first. */
  resume(): this {
    if (!this.#paused) return this;
    this.#paused = false;
    process.nextTick(Socket.#flushPendingOf, this);
    return this;
  }

  isPaused(): boolean {
    return this.#paused;
  }

  /**
   * Received buffers, each owned by the consumer until it releases it.
   * Ends at the peer's FIN; throws the socket's error; leaving the loop early
   * destroys the socket.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<IoBuffer, void, undefined> {
    this.#iterating = true;
    this.#armRecv();
    let finished = false;
    try {
      for (;;) {
        const buf = this.#pending.length > 0 ? this.#pending.shift() : undefined;
        if (buf !== undefined) {
          if (this.#pending.length === 0) this.#armRecv();
          yield buf;
          continue;
        }
        if (this.#error) throw this.#error;
        if (this.#readEnded || this.#destroyed) {
          finished = true;
          this.#emitEnd();
          return;
        }
        await new Promise<void>((resolve) => (this.#iterWake = resolve));
      }
    } finally {
      this.#iterating = false;
      if (!finished) this.destroy();
    }
  }

  // ---- send ------------------------------------------------------------

  /**
   * Sends a buffer of this socket's pool; ownership passes to the kernel (it
   * is released when the kernel is done). Returns false above the
   * high-water mark ('drain' follows). `cb` runs once the bytes are handed
   * to the kernel.
   *
   * A buffer the caller no longer owns (released, or given to another send
   * already: the natural mistake of sending one received buffer to several
   * sockets) fails this send, not the caller's event handler: `cb(err)` if
   * given, the socket is destroyed with `err` ('error', then 'close'; its
   * byte stream would have a gap) and send() returns false. Arguments of
   * the wrong kind and a socket already ended or destroyed still throw.
   */
  send(buf: IoBuffer, cb?: WriteCallback): boolean {
    if (!(buf instanceof IoBuffer)) throw new InvalidArgumentError('send() takes an IoBuffer; use write() for other data');
    if (buf.pool !== this.pool) throw new BufferForeignError('the buffer belongs to another pool than this socket\'s');
    if (this.#destroyed) throw new ClosedError('the socket is destroyed');
    if (this.#ending) throw new ClosedError('send() after end()');
    if (this.#overflow.length > 0) {
      // Writes waiting for pool buffers go first: keep the order (rare: the pool ran dry).
      if (buf.released || buf.lent) return this.#refuseSend(buf, 'send', cb);
      const data = Buffer.from(buf.bytes);
      buf.release();
      this.#overflow.push({ data, cb: cb ?? null }); // length > 0: not the shared one
      this.#queuedBytes += data.length;
      return this.#afterQueue();
    }
    try {
      this.pool[kLend](buf, LEND_TRANSFER);
    } catch (err) {
      if (err instanceof BufferReleasedError || err instanceof BufferLentError) return this.#refuseSend(buf, 'send', cb);
      throw err;
    }
    const item = this.#newItem(buf, buf.length, false);
    if (cb) item.cbs = [cb];
    this.#enqueue(item);
    this.#queuedBytes += item.len;
    return this.#afterQueue();
  }

  /**
   * Sends a buffer that stays the caller's (counted lend, DESIGN.md rule 4):
   * it is LENT until this send completes, and may be lent to other sockets'
   * sends meanwhile (fan-out: src/paths/fan-out.ts). Returns like send(),
   * and fails like it for a buffer the caller no longer owns.
   */
  sendShared(buf: IoBuffer, cb?: WriteCallback): boolean {
    if (!(buf instanceof IoBuffer)) throw new InvalidArgumentError('sendShared() takes an IoBuffer');
    if (buf.pool !== this.pool) throw new BufferForeignError('the buffer belongs to another pool than this socket\'s');
    if (this.#destroyed) throw new ClosedError('the socket is destroyed');
    if (this.#ending) throw new ClosedError('send() after end()');
    if (buf.released) return this.#refuseSend(buf, 'sendShared', cb);
    if (this.#overflow.length > 0) {
      // Writes waiting for pool buffers go first: copy (the buffer may be lent already).
      return this.write(Buffer.from(this.pool[kUncheckedBytes](buf)), cb);
    }
    try {
      this.pool[kLend](buf, 0);
    } catch (err) {
      if (err instanceof BufferReleasedError || err instanceof BufferLentError) return this.#refuseSend(buf, 'sendShared', cb);
      throw err;
    }
    const item = this.#newItem(buf, buf.length, false);
    if (cb) item.cbs = [cb];
    this.#enqueue(item);
    this.#queuedBytes += item.len;
    return this.#afterQueue();
  }

  /**
   * A send of a buffer the caller does not own: the error says what to do
   * instead, and reaches `cb` and this socket's 'error' (never an exception
   * out of the 'data' handler that called send(), which would be uncaught).
   */
  #refuseSend(buf: IoBuffer, what: 'send' | 'sendShared', cb?: WriteCallback): false {
    let err: Error;
    if (buf.released) {
      err = new BufferReleasedError(
        `${what}() of a released buffer: a send() takes ownership (the buffer is released when the kernel is done), ` +
          "and a 'data' buffer is released when its handler returns unless the handler calls buf.retain(). " +
          'To send one buffer to several sockets use maio.fanOut(buf, sockets), or sendShared(buf) to all but the last and send(buf) to the last',
      );
    } else if (what === 'send') {
      err = new BufferReleasedError(
        'send() of a buffer given to another send() already (it is released when the kernel returns it). ' +
          'To send one buffer to several sockets use maio.fanOut(buf, sockets), or sendShared(buf) to all but the last ' +
          'and send(buf) to the last (the buffer is released when every send is done)',
      );
    } else {
      err = new BufferLentError(`${what}() of a buffer lent exclusively (a receive holds it)`);
    }
    if (cb) process.nextTick(cb, err);
    this.destroy(err);
    return false;
  }

  /** A file range to this socket in the kernel (io_uring only): src/paths/socket-file.ts. */
  sendFile(file: string | number, options?: SocketSendFileOptions): Promise<number> {
    return socketSendFile(this, file, options);
  }

  /**
   * Copies `data` into pool buffers; writes of one event-loop turn coalesce.
   * Returns false above the high-water mark ('drain' follows). `cb` runs
   * once the bytes are handed to the kernel.
   */
  write(data: Uint8Array | string, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    let bytes: Uint8Array;
    if (typeof data === 'string') bytes = Buffer.from(data, encoding ?? 'utf8');
    else if (data instanceof Uint8Array) bytes = data;
    else throw new InvalidArgumentError('write() takes a Uint8Array, Buffer or string');
    if (this.#destroyed || this.#ending) {
      const err = new ClosedError(this.#destroyed ? 'write() after destroy()' : 'write() after end()');
      if (cb) process.nextTick(cb, err);
      else process.nextTick(() => this.emit('error', err));
      return false;
    }
    this.#queuedBytes += bytes.length;
    this.#copyIn(bytes, cb ?? null);
    return this.#afterQueue();
  }

  #afterQueue(): boolean {
    this.#scheduleFlush();
    if (this.#queuedBytes >= this.#hwm) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  #enqueue(item: SendItem): void {
    if (this.#sendQ === NO_ITEMS) this.#sendQ = takeList();
    this.#sendQ.push(item);
  }

  #newItem(buf: IoBuffer, len: number, write: boolean): SendItem {
    const item = spareItems.pop();
    if (item === undefined) return new SendItem(buf, len, write);
    item.buf = buf;
    item.len = len;
    item.write = write;
    return item;
  }

  /** The last queued item if it is a write buffer with room. */
  #tail(): SendItem | null {
    const q = this.#sendQ;
    const t = q.length > 0 ? q[q.length - 1] : null;
    return t !== null && t.write && t.len < t.buf.capacity ? t : null;
  }

  #copyIn(data: Uint8Array, cb: WriteCallback | null): void {
    let off = 0;
    if (this.#overflow.length === 0) {
      while (off < data.length) {
        let item = this.#tail();
        if (item === null) {
          const buf = this.pool.tryAlloc(this.#writeSize);
          if (buf === null) break;
          buf.setLength(buf.capacity);
          item = this.#newItem(buf, 0, true);
          this.#enqueue(item);
        }
        const n = Math.min(item.buf.capacity - item.len, data.length - off);
        item.buf.bytes.set(n === data.length && off === 0 ? data : data.subarray(off, off + n), item.len);
        item.len += n;
        off += n;
      }
    }
    if (off < data.length) {
      if (this.#overflow === NO_PENDING) this.#overflow = [];
      this.#overflow.push({ data: off === 0 ? data : data.subarray(off), cb });
      this.#waitForBuffer();
      return;
    }
    if (cb) {
      const last = this.#sendQ.length > 0 ? this.#sendQ[this.#sendQ.length - 1] : null;
      if (last) (last.cbs ??= []).push(cb);
      else process.nextTick(cb, null);
    }
  }

  /** The pool ran out of write buffers: wait for one, then move waiting writes in. */
  #waitForBuffer(): void {
    if (this.#waitingAlloc) return;
    this.#waitingAlloc = true;
    this.pool.allocWait(this.#writeSize).then(
      (buf) => {
        this.#waitingAlloc = false;
        if (this.#destroyed) {
          buf.release();
          return;
        }
        buf.setLength(buf.capacity);
        this.#enqueue(this.#newItem(buf, 0, true));
        const waiting = this.#overflow;
        this.#overflow = NO_PENDING;
        for (let i = 0; i < waiting.length; i++) {
          if (this.#overflow.length > 0) this.#overflow.push(waiting[i]);
          else this.#copyIn(waiting[i].data, waiting[i].cb);
        }
        this.#scheduleFlush();
      },
      (err: Error) => {
        this.#waitingAlloc = false;
        this.destroy(err);
      },
    );
  }

  #scheduleFlush(): void {
    if (this.#scheduled || this.#destroyed || this.#ring.closed) return;
    this.#scheduled = true;
    this.#ring.schedule(this);
  }

  /** @internal the ring is about to flush: queue the next chain of sends, or the shutdown. */
  preFlush(): void {
    this.#scheduled = false;
    if (this.#destroyed || this.#connecting || this.#fd < 0) return;
    if (this.#chainLeft === 0 && this.#sendQ.length > 0) this.#submitChain();
    if (
      this.#ending &&
      this.#shutdownOp < 0 &&
      !this.#writeFinished &&
      this.#chainLeft === 0 &&
      this.#sendQ.length === 0 &&
      this.#overflow.length === 0
    ) {
      this.#shutdownOp = this.#ring.shutdown(this, this.#fd, SHUT_WR);
    }
  }

  /** submit order of this socket's sends (SendItem.seq) */
  #seq = 0;

  #submitChain(): void {
    const ring = this.#ring;
    const n = Math.min(this.#sendQ.length, MAX_CHAIN);
    // A chain must not straddle two submits: the kernel ends a link at a submit's end.
    if (ring.room < n + 1) ring.flush();
    const items = this.#sendQ;
    const poolId = this.pool[kPoolId];
    const flags = MSG_WAITALL | MSG_NOSIGNAL;
    for (let i = 0; i < n; i++) {
      const item = items[i];
      if (item.write) {
        item.buf.setLength(item.len);
        this.pool[kLend](item.buf, LEND_TRANSFER);
      }
      const zc = item.len > 0 && this.#useZeroCopy(item.len);
      item.zc = zc;
      item.seq = this.#seq++;
      item.owner = this;
      if (this.#inflight === NO_ITEMS) this.#inflight = takeList();
      item.index = this.#inflight.length;
      this.#inflight.push(item);
    }
    // Runs of plain sends leave as one SENDV each (one SENDMSG, one
    // completion for the run: #onSendv); zero-copy sends one op each.
    const maxSegs = ring.sendvMax;
    let ops = 0;
    for (let i = 0; i < n; ops++) {
      const item = items[i];
      let j = i + 1;
      if (maxSegs > 1 && !item.zc) {
        let total = item.len;
        while (j < n && j - i < maxSegs && !items[j].zc && total + items[j].len <= SENDV_MAX_LEN) total += items[j++].len;
        if (j - i > 1) {
          const segs = sendvSegs;
          for (let k = i; k < j; k++) {
            segs[2 * (k - i)] = items[k].buf.offset + items[k].off;
            segs[2 * (k - i) + 1] = items[k].len;
          }
          const opId = ring.sendv(item, this.#fd, poolId, segs, j - i, total, flags, j < n ? IOSQE_IO_LINK : 0);
          if (opId >= 0) {
            const run = takeList();
            for (let k = i; k < j; k++) {
              items[k].opId = opId;
              run.push(items[k]);
            }
            item.run = run;
            i = j;
            continue;
          }
          j = i + 1; // no aux slot free: one op per send
        }
      }
      item.opId = ring.queue(item, item.zc ? Op.SendZc : Op.Send, this.#fd, item.len, poolId, item.buf.offset + item.off, flags, 0, 0, -1, 0, j < n ? IOSQE_IO_LINK : 0);
      i = j;
    }
    // Drop the chain from the queue without allocating: splice makes an array,
    // and length = 0 drops the backing store, which the next push makes again.
    if (n === items.length) {
      while (items.length > 0) items.pop();
      this.#sendQ = giveList(items);
    } else items.splice(0, n);
    totals.sendOps += ops;
    this.#chainLeft = n;
  }

  /** TCP_INFO's tcpi_state is ESTABLISHED or CLOSE_WAIT: the socket may still send. */
  #tcpCanSend(): boolean {
    try {
      const state = sockopt.getsockoptBytes(this.#fd, IPPROTO_TCP, TCP_INFO, 8)[0];
      return state === TCP_ESTABLISHED || state === TCP_CLOSE_WAIT;
    } catch {
      return false;
    }
  }

  /** @internal a SendItem's completion (the first item's, for a SENDV) */
  [kSendDone](item: SendItem, res: number, flags: number): void {
    if (item.run !== null) this.#onSendv(item, res, flags);
    else this.#onSend(item, res, flags);
  }

  /**
   * A SENDV's one completion, handed to each of its sends in order as if
   * each had been its own linked SEND: the bytes go to the sends they
   * cover; the send where a short count ends gets its part, those after it
   * -ECANCELED (the link broke); an error goes to the first send and
   * -ECANCELED to the rest. #onSend then accounts, calls back, resends or
   * fails, and returns each buffer, once, as for single sends.
   *
   * A short SENDV that moved bytes sends the rest again (#resend, at the
   * chain's end, in order): Linux 6.18 often ends a SENDMSG early without an
   * error, MSG_WAITALL or not, once it had to wait for socket buffer space
   * (dozens of times per run of test/paths/forward.test.ts, where the reader
   * is slow; rarely with a fast reader). A dead socket then fails the resend
   * with its real error. A SENDV that moved nothing, or whose connection is
   * no longer open for sending (TCP_INFO), fails like a short send (EPIPE).
   */
  #onSendv(first: SendItem, res: number, flags: number): void {
    const run = first.run!;
    first.run = null;
    let total = 0;
    for (let k = 0; k < run.length; k++) total += run[k].len;
    // Cut short on a live connection: the rest goes again; on a dead one it fails as a short send.
    const again = res > 0 && res < total && this.#tcpCanSend();
    let left = res;
    for (let k = 0; k < run.length; k++) {
      const item = run[k];
      let r: number;
      if (res < 0) r = k === 0 ? res : -ECANCELED;
      else if (left < 0) r = -ECANCELED;
      else {
        r = Math.min(left, item.len);
        left = r < item.len ? -1 : left - r;
      }
      this.#onSend(item, r, flags, again && r >= 0 && r < item.len);
    }
    while (run.length > 0) run.pop();
    giveList(run);
  }

  #onSend(item: SendItem, res: number, flags: number, short = false): void {
    if (flags & CQE_F_NOTIF) {
      const copied = (res & NOTIF_USAGE_ZC_COPIED) !== 0;
      this.#zc().onNotification(item.len, copied);
      if (copied) {
        this.#zcCopiedBytes += item.len;
        totals.zeroCopyCopiedBytes += item.len;
      }
      this.#finishItem(item);
      return;
    }
    item.resultDone = true;
    this.#chainLeft--;
    this.#queuedBytes -= item.len;
    let err: Error | null = null;
    if (this.#resend(item, res, short)) {
      // the bytes go again: no error, the callbacks moved with them
    } else if (res >= 0) {
      this.bytesWritten += res;
      totals.bytesWritten += res;
      if (item.zc) {
        this.#zcSentBytes += res;
        totals.zeroCopyBytes += res;
      }
      if (res < item.len) err = errnoError(-EPIPE, 'write');
    } else if (res !== -ECANCELED) {
      err = errnoError(res, 'write');
    } else {
      err = this.#sendError ?? this.#error ?? new ClosedError('the send was cancelled');
    }
    if (err && !this.#sendError && (res !== -ECANCELED || !this.#destroyed)) {
      // The first real error; the rest of the chain ends with ECANCELED.
      if (res !== -ECANCELED) this.#sendError = err;
    }
    if (item.cbs) {
      for (const cb of item.cbs) {
        try {
          cb(err);
        } catch (e) {
          process.nextTick(rethrow, e);
        }
      }
      item.cbs = null;
    }
    if ((flags & CQE_F_MORE) === 0) this.#finishItem(item);
    if (this.#chainLeft === 0) {
      if (this.#cancelled !== null || this.#resends !== null) this.#endResends();
      if (this.#sendError && !this.#destroyed) {
        this.destroy(this.#sendError);
        return;
      }
      if (this.#needDrain && this.#queuedBytes < this.#hwm && !this.#destroyed) {
        this.#needDrain = false;
        this.emit('drain');
      }
      if (this.#sendQ.length > 0 || this.#ending) this.#scheduleFlush();
    }
    if (this.#destroyed) this.#maybeClose();
  }

  /** The kernel is done with the item's buffer: it goes back (released: ownership went with the send). */
  #finishItem(item: SendItem): void {
    if (item.index < 0) return;
    const list = this.#inflight;
    const last = list.pop()!;
    if (last !== item) {
      list[item.index] = last;
      last.index = item.index;
    }
    item.index = -1;
    if (list.length === 0) this.#inflight = giveList(list);
    this.#returnBuf(item);
    // Its final completion has come (the ring never calls it again) and a
    // resend holds none of it (buf, off and share are copied): reuse it.
    if (spareItems.length < MAX_SPARE_ITEMS) {
      // the buffer's handle is stale now: do not keep it alive in the spare list
      (item as { buf: IoBuffer | null }).buf = null;
      item.cbs = null;
      item.opId = -1;
      item.zc = false;
      item.resultDone = false;
      item.off = 0;
      item.share = null;
      item.owner = null;
      item.run = null;
      spareItems.push(item);
    }
    if (this.#destroyed) this.#maybeClose();
  }

  #returnBuf(item: SendItem): void {
    if (item.share !== null && --item.share.n > 0) return;
    this.pool[kReturn](item.buf);
  }

  /**
   * A zero-copy send the kernel could not pin memory for (ENOMEM at the
   * memlock limit, ENOBUFS at optmem_max; after some bytes moved, MSG_WAITALL
   * shows it only as a short count) goes again as a plain send, from the first
   * byte not sent, and so do the sends its link chain cancelled behind it. The
   * socket turns to plain sends. A dead socket fails the resend with its
   * error, which is surfaced as usual. Returns true if the item goes again.
   * `short`: the send ends a SENDV that moved some bytes and came back short
   * (#onSendv): its rest goes again the same way. And a send that came back
   * -EAGAIN on a connection that can still send goes again whole: io_uring
   * retries a nonblocking socket's send when poll says it is writable, but
   * when that retry finds no room once more it hands the request to a worker
   * thread, where the nonblocking socket answers EAGAIN (6.18 with
   * COOP_TASKRUN: several times per test/paths/forward.test.ts run).
   */
  #resend(item: SendItem, res: number, short = false): boolean {
    if (this.#destroyed) return false;
    const failed =
      (item.zc && (res === -ENOMEM || res === -ENOBUFS || (res >= 0 && res < item.len))) ||
      (short && res >= 0 && res < item.len) ||
      (res === -EAGAIN && this.#tcpCanSend());
    // Cancelled by its chain: whether it goes again is known at the chain's
    // end (the CQE of the send that broke the chain may come after it).
    if (!failed && res !== -ECANCELED) return false;
    if (res === -EAGAIN) totals.sendRetries++;
    else if (failed && item.zc) this.#zc().onSendError(res < 0 ? errnoError(res, 'write').code : 'a short send');
    const done = res > 0 ? res : 0;
    if (done > 0) {
      this.bytesWritten += done;
      totals.bytesWritten += done;
      if (item.zc) {
        this.#zcSentBytes += done;
        totals.zeroCopyBytes += done;
      }
    }
    const again = new SendItem(item.buf, item.len - done, false);
    again.off = item.off + done;
    again.seq = item.seq;
    again.cbs = item.cbs;
    item.cbs = null;
    again.share = item.share ??= { n: 1 };
    again.share.n++;
    if (failed) (this.#resends ??= []).push(again);
    else (this.#cancelled ??= []).push(again);
    return true;
  }

  /** The chain is done: its failed zero-copy sends and those it cancelled go again, in order; or the cancelled ones fail. */
  #endResends(): void {
    const resends = this.#resends;
    const cancelled = this.#cancelled ?? [];
    this.#resends = null;
    this.#cancelled = null;
    if (resends !== null && !this.#destroyed) {
      const again = resends.concat(cancelled).sort((a, b) => a.seq - b.seq);
      for (const it of again) this.#queuedBytes += it.len;
      if (this.#sendQ === NO_ITEMS) this.#sendQ = takeList();
      this.#sendQ.unshift(...again);
      return;
    }
    for (const it of resends ?? []) cancelled.push(it);
    const err = this.#sendError ?? this.#error ?? new ClosedError('the send was cancelled');
    for (const it of cancelled) {
      this.#returnBuf(it);
      if (it.cbs) for (const cb of it.cbs) process.nextTick(cb, err);
    }
  }

  /** Half-closes after everything queued has left (shutdown SHUT_WR through the ring). 'finish' follows. */
  end(data?: Uint8Array | string | WriteCallback, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): this {
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (data !== undefined && data !== null && !this.#ending && !this.#destroyed) this.write(data, encoding as BufferEncoding | undefined);
    if (cb) {
      if (this.#writeFinished) process.nextTick(cb);
      else this.once('finish', cb);
    }
    if (this.#ending || this.#destroyed) return this;
    this.#ending = true;
    this.#scheduleFlush();
    return this;
  }

  #onShutdown(res: number): void {
    this.#shutdownOp = -1;
    if (this.#destroyed) return this.#maybeClose();
    if (res < 0 && res !== -ENOTCONN && res !== -ECANCELED) {
      this.destroy(errnoError(res, 'shutdown'));
      return;
    }
    this.#writeFinished = true;
    this.emit('finish');
    this.#maybeAutoDestroy();
  }

  #maybeAutoDestroy(): void {
    if (this.#endEmitted && this.#writeFinished) this.destroy();
  }

  // ---- destroy and close -------------------------------------------------

  /**
   * Cancels everything in flight, returns every buffer, closes the fd after
   * the last completion; 'error' (with err) then 'close'. Safe twice.
   */
  destroy(err?: Error | null): this {
    if (this.#destroyed) return this;
    this.#destroyed = true;
    this.#error = err ?? null;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const ring = this.#ring;
    if (this.#recvOp >= 0 && !this.#recvCancelling) {
      this.#recvCancelling = true;
      ring.cancel(this.#recvOp);
    }
    if (this.#connectOp >= 0) ring.cancel(this.#connectOp);
    else if (this.#connectOp === -2) this.#connectOp = -1; // its retry sees #destroyed
    // A copy: a full submit array flushes inside cancel(), and a failure delivered there ends an item.
    // The sends of a SENDV share its op id: cancel it once (they sit side by side unless a swap moved one).
    let cancelled = -1;
    for (const item of this.#inflight.slice()) {
      if (item.resultDone || item.opId === cancelled) continue;
      cancelled = item.opId;
      ring.cancel(item.opId);
    }
    // made only if a callback is waiting (an Error captures a stack: not once per close)
    let cbErr: Error | undefined = err ?? undefined;
    // Queued, never submitted: give the buffers back now.
    let queued = this.#sendQ;
    this.#sendQ = NO_ITEMS;
    if (this.#resends !== null || this.#cancelled !== null) queued = [...(this.#cancelled ?? []), ...(this.#resends ?? []), ...queued];
    this.#resends = null;
    this.#cancelled = null;
    for (const item of queued) {
      if (item.write) item.buf.release();
      else this.#returnBuf(item);
      if (item.cbs) for (const cb of item.cbs) process.nextTick(cb, (cbErr ??= new ClosedError('the socket was destroyed before the bytes were sent')));
    }
    for (const p of this.#overflow) if (p.cb) process.nextTick(p.cb, (cbErr ??= new ClosedError('the socket was destroyed before the bytes were sent')));
    this.#overflow = NO_PENDING;
    this.#queuedBytes = 0;
    const pending = this.#pending;
    this.#pending = NO_BUFFERS;
    for (const b of pending) if (!b.released) b.release();
    if (this.#group && this.#waitingBuffers) this.#group.forget(this);
    this.#wakeIterator();
    if (err) process.nextTick(() => this.emit('error', err));
    this.#maybeClose();
    return this;
  }

  #maybeClose(): void {
    if (!this.#destroyed || this.#closed) return;
    if (this.#recvOp >= 0 || this.#connectOp >= 0 || this.#shutdownOp >= 0 || this.#inflight.length > 0) return;
    this.#closed = true;
    if (this.#group) {
      this.#group.forget(this);
      this.#group.release();
      this.#group = null;
    }
    if (this.#fd >= 0) {
      const fd = this.#fd;
      this.#fd = -1;
      // Through the ring (either backend): the epoll fallback keeps per-descriptor
      // state (epoll membership, the MSG_ZEROCOPY counter) that must go with the
      // number before the kernel can hand it out again. 'close' follows the CLOSE.
      try {
        this.#closeOp = this.#ring.closeFd(this, fd);
      } catch {
        // The ring is closed: nothing of it can act on the fd any more.
        try {
          native().sockClose(fd);
        } catch {
          // EBADF cannot happen: only this socket closes its fd
        }
      }
    }
    if (this.#closeOp < 0) this.#closeDone();
  }

  #closeDone(): void {
    this.#closeOp = -1;
    if (this.#signal && this.#onAbort) this.#signal.removeEventListener('abort', this.#onAbort);
    this.#signal = null;
    totals.socketsOpen--;
    const hadError = this.#error !== null;
    const hook = this.#onCloseHook;
    this.#onCloseHook = undefined;
    process.nextTick(() => {
      hook?.(this);
      this.emit('close', hadError);
    });
  }

  // ---- idle timeout --------------------------------------------------------

  /**
   * Emits 'timeout' once `ms` pass without bytes moving in either direction
   * (a receive, or a send completing), like node:net: the socket stays open,
   * the listener decides. 0 turns it off (and removes `cb`). Checked
   * coarsely (src/net/idle.ts): fires between ms and ms + ms/4 (at most
   * +1 s) after the last activity, again only after new activity.
   */
  setTimeout(ms: number, cb?: () => void): this {
    if (typeof ms !== 'number' || Number.isNaN(ms)) throw new InvalidArgumentError(`timeout must be a number of ms, got ${String(ms)}`);
    if (ms < 0 || ms === Infinity) throw new OutOfRangeError(`timeout must be >= 0 and finite, got ${ms}`);
    if (cb !== undefined && typeof cb !== 'function') throw new InvalidArgumentError('the callback must be a function');
    if (ms === 0) {
      unwatch(this.#idle);
      this.#idle = null;
      if (cb) this.removeListener('timeout', cb);
      return this;
    }
    if (cb) this.once('timeout', cb);
    if (this.#destroyed) return this;
    this.#idle = watch({ socket: this, ms, minBytes: 1, close: false, onIdle: () => this.emit('timeout') }, this.#idle);
    return this;
  }

  /** The idle timeout set by setTimeout() (undefined when off), as node:net's socket.timeout. */
  get timeout(): number | undefined {
    return this.#idle?.ms;
  }

  /** @internal a server's idleTimeout: 'timeout', then destroy(), when fewer than minBytes moved in ms */
  [kIdleClose](ms: number, minBytes: number, onClosed?: () => void): void {
    this.#idleClose = watch(
      {
        socket: this,
        ms,
        minBytes,
        close: true,
        onIdle: () => {
          this.emit('timeout');
          if (this.#destroyed) return;
          onClosed?.();
          this.destroy();
        },
      },
      this.#idleClose,
    );
  }

  // ---- options and properties ----------------------------------------------

  setNoDelay(noDelay = true): this {
    this.#opts = { ...this.#opts, noDelay };
    if (this.#fd >= 0) sockopt.setNoDelay(this.#fd, noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.#opts = { ...this.#opts, keepAlive: enable, keepAliveInitialDelay: initialDelay };
    if (this.#fd >= 0) sockopt.setKeepAlive(this.#fd, enable, initialDelay);
    return this;
  }

  /** A named option of src/net/sockopt.ts's SocketOptions (noDelay, keepAlive, recvBufferSize, ...). */
  setOption<K extends keyof sockopt.SocketOptions>(name: K, value: sockopt.SocketOptions[K]): this {
    if (this.#fd < 0 || this.#destroyed) throw new ClosedError('the socket has no file descriptor (connecting or closed)');
    sockopt.applySocketOptions(this.#fd, { [name]: value } as sockopt.SocketOptions);
    return this;
  }

  /** Raw setsockopt escape: an int or the option's bytes. */
  setsockopt(level: number, name: number, value: number | Uint8Array): this {
    if (this.#fd < 0 || this.#destroyed) throw new ClosedError('the socket has no file descriptor (connecting or closed)');
    sockopt.setsockopt(this.#fd, level, name, value);
    return this;
  }

  getsockopt(level: number, name: number): number {
    if (this.#fd < 0 || this.#destroyed) throw new ClosedError('the socket has no file descriptor (connecting or closed)');
    return sockopt.getsockopt(this.#fd, level, name);
  }

  /** The file descriptor (-1 before connecting and after close). */
  get fd(): number {
    return this.#fd;
  }

  #name(peer: boolean): AddressInfo | null {
    if (peer && this.#remote && !this.#connecting) return this.#remote;
    if (!peer && this.#local) return this.#local;
    if (this.#fd < 0 || this.#connecting) return peer ? this.#remote : null;
    try {
      const a = decodeSockaddr(native().sockName(this.#fd, peer));
      if (peer) this.#remote = a;
      else this.#local = a;
      return a;
    } catch {
      return null;
    }
  }

  get remoteAddress(): string | undefined {
    return this.#name(true)?.address;
  }
  get remotePort(): number | undefined {
    return this.#name(true)?.port;
  }
  get remoteFamily(): string | undefined {
    return this.#name(true)?.family;
  }
  get localAddress(): string | undefined {
    return this.#name(false)?.address;
  }
  get localPort(): number | undefined {
    return this.#name(false)?.port;
  }
  address(): AddressInfo | Record<string, never> {
    return this.#name(false) ?? {};
  }

  get connecting(): boolean {
    return this.#connecting && !this.#destroyed;
  }
  get destroyed(): boolean {
    return this.#destroyed;
  }
  get pending(): boolean {
    return this.#connecting || this.#fd < 0;
  }
  get writableLength(): number {
    return this.#queuedBytes;
  }
  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }
  get writableEnded(): boolean {
    return this.#ending;
  }
  get writableFinished(): boolean {
    return this.#writeFinished;
  }
  get readableEnded(): boolean {
    return this.#endEmitted;
  }

  get readyState(): ReadyState {
    // destroyed first: a socket destroyed while connecting (a failed lookup) is closed, not opening
    if (this.#destroyed) return 'closed';
    if (this.#connecting) return 'opening';
    const readable = !this.#endEmitted;
    const writable = !this.#ending;
    if (readable && writable) return 'open';
    if (readable) return 'readOnly';
    if (writable) return 'writeOnly';
    return 'closed';
  }

  /** @internal state for debugging and tests */
  [kSocketState](): Record<string, unknown> {
    return {
      fd: this.#fd,
      recvOp: this.#recvOp,
      recvCancelling: this.#recvCancelling,
      waitingBuffers: this.#waitingBuffers,
      paused: this.#paused,
      readEnded: this.#readEnded,
      pending: this.#pending.length,
      sendQ: this.#sendQ.length,
      chainLeft: this.#chainLeft,
      inflight: this.#inflight.map((i) => `${i.zc ? 'zc' : 'plain'}:${i.len}:${i.resultDone ? 'notif' : 'result'}`),
      overflow: this.#overflow.length,
      waitingAlloc: this.#waitingAlloc,
      ending: this.#ending,
      shutdownOp: this.#shutdownOp,
      destroyed: this.#destroyed,
    };
  }

  stats(): SocketStats {
    return {
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      queuedBytes: this.#queuedBytes,
      sendsInFlight: this.#inflight.length,
      receiveBuffersHeld: this.#heldBuffers,
      receiveBytesHeld: this.#held,
      readBlocked: this.#held >= this.#quota,
      zeroCopy: { ...this.#zc().stats(), zeroCopyBytesSent: this.#zcSentBytes, copiedBytesReported: this.#zcCopiedBytes },
    };
  }
}

/** @internal */
export function makeSocket(init: SocketInit): Socket {
  return new Socket(kInit, init);
}
