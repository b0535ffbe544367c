/**
 * What every layer of a Socket shares: the ring, the options, the fd, the
 * state bits and the rare state. The layers build on it in this order, each
 * one concern in its own file, all one object at run time (no per-socket
 * parts to allocate, one shape):
 *
 *   SocketCore (here) -> ReceivingSocket (socket-receive.ts)
 *     -> ZeroCopySocket (socket-zc.ts: which sends go zero-copy)
 *     -> SendChainSocket (socket-send-chain.ts: the send queue on the ring)
 *     -> SendingSocket (socket-send.ts: send, sendShared, write, end)
 *     -> Socket (socket.ts: connect, destroy and close, options, properties)
 *
 * A layer keeps its own fields #private and offers the next ones protected
 * methods; nothing here is visible to users beyond what Socket documents.
 * Every field costs each of 10,000 idle sockets 8 bytes, and so does each
 * layer with #private methods (V8's class brand): settings read once per
 * send or less come from the options, not from a field.
 */
import { TypedEmitter } from '../core/typed-events';
import type { IoBuffer } from '../pool/buffer';
import type { AddressInfo } from 'node:net';
import { kPoolIdOn } from '../core/symbols';
import type { IoPool } from '../pool/pool';
import type { IoRing } from '../ring/io-ring';
import type { IdleEntry } from './idle';
import type { SendItem } from './send-item';
import type { MaioSocketOptions, SocketInit } from './socket';
import type { ZeroCopyPolicy } from './zc-policy';

/** Socket state bits (one field, not sixteen booleans: 10,000 idle sockets pay for each field). */
export const enum Flag {
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
  /** a unix domain socket: no TCP options, no IP addresses, no zero-copy sends */
  Unix = 1 << 16,
  /** 'data' held back by kHoldData (the recv stays armed; buffers wait, up to the read quota) */
  DataHeld = 1 << 17,
  /** small receives (socket-receive.ts): the socket may move between its default and its small receive group */
  RecvAdaptive = 1 << 18,
  /** the last two receives fit in half a small buffer: the next arm takes the small group */
  RecvSmall = 1 << 19,
  /** the current receive group is the small one */
  RecvInSmallGroup = 1 << 20,
  /** the socket acquired both receive groups (small receives): it releases both when it closes */
  RecvBothGroups = 1 << 21,
  /** the last receive was small, the one before was not: one small receive is not yet a pattern */
  RecvSmallOnce = 1 << 22,
}

/**
 * State most sockets never use, or use only around connect and close: one
 * object made at the first use (rareState()), instead of twenty fields in
 * every socket (an idle accepted socket never makes it).
 */
export class RareState {
  connectOp = -1;
  timer: NodeJS.Timeout | null = null;
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;
  remote: AddressInfo | null = null;
  /** the unix socket path connected to (connect errors name it, as node:net's do) */
  path: string | null = null;
  local: AddressInfo | null = null;
  /** the local address asked for with localAddress / localPort (connect errors name it, as node:net's do) */
  bind: { address: string; port: number } | null = null;
  iterWake: (() => void) | null = null;
  sendError: Error | null = null;
  shutdownOp = -1;
  zcSentBytes = 0;
  zcCopiedBytes = 0;
  /** the CLOSE of the fd, in flight */
  closeOp = -1;
  error: Error | null = null;
  /** idle timeouts (idle.ts: one coarse check per thread, nothing on the data path) */
  idle: IdleEntry | null = null;
  idleClose: IdleEntry | null = null;
  /** sends to go again, plain, once the chain in flight is done (socket-send-chain.ts #resend) */
  resends: SendItem[] | null = null;
  /** sends the chain cancelled, decided on at its end */
  cancelled: SendItem[] | null = null;
  policy: ZeroCopyPolicy | null = null;
  /** kOnSendsDrained callbacks: called once nothing is queued or in flight to send */
  drainWaiters: (() => void)[] | null = null;
  /** kOnReceiveStopped callbacks: called once no recv is in flight */
  recvStopWaiters: ((waiting: number, ended: boolean) => void)[] | null = null;
}

/** What a Socket emits: each event with its listener's arguments. */
export interface SocketEvents {
  connect: [];
  /** after 'connect', as node:net */
  ready: [];
  /** a received buffer, released when the listener returns unless it retains or sends it */
  data: [buf: IoBuffer];
  /** the peer sent FIN */
  end: [];
  /** end() was called and every queued byte is sent */
  finish: [];
  drain: [];
  timeout: [];
  error: [err: Error];
  close: [hadError: boolean];
  sendFileProgress: [sent: number, total: number];
}

/** Listener storage for a socket's EventEmitter (see the constructor). */
function EventHandlers(this: object): void {}
EventHandlers.prototype = Object.create(null) as object;
const EventHandlersCtor = EventHandlers as unknown as new () => object;

export abstract class SocketCore extends TypedEmitter<SocketEvents> {
  /** The pool this socket's buffers come from; send() takes only its buffers. */
  readonly pool: IoPool;
  bytesRead = 0;
  bytesWritten = 0;
  readonly #ring: IoRing;
  /** may be shared with the server and its other connections: replaced, never changed in place */
  #opts: MaioSocketOptions;
  #flags = 0;
  #rare: RareState | null = null;
  #fd: number;

  constructor(init: SocketInit) {
    super();
    // EventEmitter keeps listeners in a null-prototype literal, which V8 holds
    // as a hash table (~280 B a socket); an object whose prototype has a null
    // prototype is just as safe for event names ('constructor' finds nothing)
    // and stays a compact fast-mode object. Node's own emitters used this form
    // until v12; removing listeners still works as in EventEmitter.
    (this as unknown as { _events: object })._events = new EventHandlersCtor();
    this.#ring = init.ring;
    this.#opts = init.options;
    this.pool = init.pool;
    this.pool[kPoolIdOn](init.ring);
    this.#fd = init.fd;
    if (init.unix) this.#flags = Flag.Unix;
  }

  /** The file descriptor (-1 before connecting and after close). */
  get fd(): number {
    return this.#fd;
  }

  protected setFd(fd: number): void {
    this.#fd = fd;
  }

  protected get ring(): IoRing {
    return this.#ring;
  }

  protected get opts(): MaioSocketOptions {
    return this.#opts;
  }

  protected set opts(o: MaioSocketOptions) {
    this.#opts = o;
  }

  protected flag(f: Flag): boolean {
    return (this.#flags & f) !== 0;
  }

  protected setFlag(f: Flag): void {
    this.#flags |= f;
  }

  protected clearFlag(f: Flag): void {
    this.#flags &= ~f;
  }

  /** The rare state if a field of it was ever set (null reads as every default). */
  protected get rare(): RareState | null {
    return this.#rare;
  }

  /** The rare state, made now if need be: for writing a field. */
  protected rareState(): RareState {
    return (this.#rare ??= new RareState());
  }

  /** 'end' came and 'finish' too: nothing left to do in either direction. */
  protected maybeAutoDestroy(): void {
    if (this.flag(Flag.EndEmitted) && this.flag(Flag.WriteFinished)) this.destroy();
  }

  abstract destroy(err?: Error | null): this;
  abstract end(): this;
  /** Closes the fd once destroyed and nothing is in flight (Socket). */
  protected abstract maybeClose(): void;
}
