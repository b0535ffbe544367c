/**
 * UdpSocket: a datagram socket on this thread's ring and I/O pool. Receives
 * with one multishot RECVMSG into pool buffers ('message': a UdpMessage, a
 * view of the pool buffer, and where it came from; or, with a 'batch'
 * listener, one UdpBatch per buffer instead); sends pool buffers with
 * SENDMSG, batched into UDP_SEGMENT sends where it pays (udp-send.ts).
 * maio's own API: the node:dgram-compatible layer builds on this. Host names
 * given to bind, connect and send are resolved with dns.lookup (or the
 * `lookup` option) for the socket's family, as node:dgram does.
 */
import * as dns from 'node:dns';
import type { AddressInfo } from 'node:net';
import { BackendUnavailableError, BufferLentError, BufferReleasedError, ClosedError, DatagramTooLargeError, InvalidAddressError, InvalidArgumentError, OutOfRangeError, fromNative, type ErrnoError } from '../core/errors';
import { SENDMSG_MAX_SEGS, native } from '../core/native';
import { TypedEmitter } from '../core/typed-events';
import { IoBuffer } from '../pool/buffer';
import { defaultPool } from '../pool/index';
import type { IoPool } from '../pool/pool';
import { currentRing } from '../ring/current';
import type { IoRing } from '../ring/io-ring';
import { addressFamily, decodeSockaddr, sockaddr, validatePort } from '../net/address';
import { kLend, kPoolIdOn, kReturn, kUdpDestination, kUdpSendTo } from '../core/symbols';
import { UdpMessage, messageOfView, type RemoteInfo } from './udp-message';
import { UdpBatch, kLendForSend, kMessageAt, kNextMessage } from './udp-batch';
import { applyOptions, checkOptions, type CheckedOptions, type UdpLookupFunction, type UdpSocketOptions } from './udp-options';
import { UdpReceiver } from './udp-receive';
import { GSO_MAX_BYTES, UdpSender, type SendCallback } from './udp-send';
import { UdpCounters, type UdpStats } from './udp-stats';
import { UdpZeroCopy } from './udp-zero-copy';

export type UdpSocketEvents = {
  message: [msg: UdpMessage, from: RemoteInfo];
  /** Opt-in: with a listener, one event per receive buffer (its datagrams together) and no 'message'. */
  batch: [batch: UdpBatch, from: RemoteInfo];
  listening: [];
  error: [err: Error];
  close: [];
};

/** Largest UDP payload: 65,535 minus the IP and UDP headers. */
const MAX_PAYLOAD = { 4: 65507, 6: 65527 } as const;
/** recvmsg name bytes reserved per buffer: a sockaddr_in6 (28) fits */
const NAME_RESERVE = 32;
/** control bytes for the UDP_GRO cmsg (CMSG_SPACE(sizeof(int))) */
const GRO_CTL = 24;
/** destinations remembered as encoded sockaddrs (one array per destination, reused) */
const NAME_CACHE_MAX = 256;

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

export class UdpSocket extends TypedEmitter<UdpSocketEvents> {
  readonly type: 'udp4' | 'udp6';
  readonly pool: IoPool;
  readonly #ring: IoRing;
  readonly #o: CheckedOptions;
  #fd: number;
  readonly #stats = new UdpCounters();
  readonly #sender: UdpSender;
  readonly #zeroCopy: UdpZeroCopy;
  readonly #receiver: UdpReceiver;
  readonly #gro;
  readonly #names = new Map<string, Uint8Array>();
  #lastPort: unknown = undefined;
  #lastHost: unknown = undefined;
  #lastName: Uint8Array | null = null;
  #bound = false;
  /** a bind or connect waits for its host name */
  #binding = false;
  #connecting = false;
  #connected = false;
  #closing = false;
  #closed = false;
  #closeOp = -1;
  /** buffers that came while no listener was there, or while paused (the first may be partly handed out) */
  #waiting: UdpBatch[] = [];

  constructor(options: UdpSocketOptions) {
    super();
    this.#o = checkOptions(options);
    this.type = options.type;
    this.pool = options.pool ?? defaultPool();
    this.#ring = currentRing();
    this.pool[kPoolIdOn](this.#ring);
    this.#fd = call(() => native().sockOpen(this.#o.family, 'udp'));
    let offload;
    try {
      offload = call(() => applyOptions(this.#fd, this.#o));
    } catch (err) {
      native().sockClose(this.#fd);
      throw err;
    }
    this.#gro = offload.gro;
    const fd = (): number => this.#fd;
    const o = this.#o;
    this.#zeroCopy = new UdpZeroCopy({ mode: o.zeroCopy, minBytes: o.zeroCopyMinBytes, probeSends: o.zeroCopyProbeSends }, this.#ring.capabilities.zeroCopySendmsg);
    this.#sender = new UdpSender(this.#ring, this.pool, fd, offload.gso, this.#zeroCopy, this.#stats, (err) => this.#emitError(err));
    const bufferSize = this.#o.readBufferSize ?? Math.min(65536, this.pool.maxAllocSize);
    this.#receiver = new UdpReceiver(this.#ring, this.pool, fd, NAME_RESERVE, this.#gro.enabled ? GRO_CTL : 0, bufferSize, this.#o.readQuota, this.#stats, {
      deliver: (p) => this.#deliver(p),
      receiveError: (err) => this.#emitError(err),
      ringClosed: () => this.close(),
    });
    (this as unknown as NodeJS.EventEmitter).on('newListener', (event: string) => {
      if ((event === 'message' || event === 'batch') && this.#waiting.length > 0) process.nextTick(() => this.#flushWaiting());
    });
  }

  /** The file descriptor (-1 once closed). */
  get fd(): number {
    return this.#fd;
  }

  #checkOpen(): void {
    if (this.#closing) throw new ClosedError('the UDP socket is closed');
  }

  /** The sockaddr bytes for host:port, checked against this socket's family; one array per destination. */
  #name(port: unknown, host: unknown): Uint8Array {
    // A flow sends to one destination: its name without building a key.
    if (port === this.#lastPort && host === this.#lastHost && this.#lastName !== null) return this.#lastName;
    const name = this.#lookupName(port, host);
    this.#lastPort = port;
    this.#lastHost = host;
    this.#lastName = name;
    return name;
  }

  #lookupName(port: unknown, host: unknown): Uint8Array {
    const p = validatePort(port);
    const h = host === undefined || host === '' ? (this.#o.family === 4 ? '127.0.0.1' : '::1') : host;
    if (typeof h !== 'string') throw new InvalidAddressError(`host must be a string (an IP address or a host name), got ${typeof h}`);
    const key = `${h}|${p}`;
    let name = this.#names.get(key);
    if (name !== undefined) return name;
    const fam = addressFamily(h);
    if (fam === 0) throw new InvalidAddressError(`${JSON.stringify(h)} is not an IP address`);
    if (fam !== this.#o.family) {
      // A udp6 socket reaches IPv4 hosts through their IPv4-mapped form.
      if (this.#o.family === 6 && !this.#o.ipv6Only) return this.#lookupName(p, `::ffff:${h}`);
      throw new InvalidAddressError(`${h} is not an IPv${this.#o.family} address (this is a ${this.type} socket)`);
    }
    name = sockaddr(h, p);
    if (this.#names.size >= NAME_CACHE_MAX) this.#names.clear();
    this.#names.set(key, name);
    return name;
  }

  /** A host that needs a lookup: a string that is not an IP address ('' means the default, as in node:dgram). */
  static #isName(host: unknown): host is string {
    return typeof host === 'string' && host !== '' && addressFamily(host) === 0;
  }

  /**
   * A host name's address of this socket's family, through the `lookup`
   * option or dns.lookup; its error as the lookup gave it (ENOTFOUND with
   * node's errno, code, syscall and hostname).
   */
  #lookupHost(host: string): Promise<string> {
    const lookup: UdpLookupFunction = this.#o.lookup ?? (dns.lookup as unknown as UdpLookupFunction);
    return new Promise<string>((resolve, reject) => {
      lookup(host, this.#o.family, (err, address) => {
        if (err) reject(err);
        else if (typeof address !== 'string') reject(new InvalidAddressError(`the lookup of ${JSON.stringify(host)} gave no address`));
        else resolve(address);
      });
    });
  }

  /**
   * A send to a host name: what is to be sent is held (lent: the application
   * can no longer touch it, as after any send) while the name resolves; then
   * `go` queues it. A failed lookup, or a close meanwhile, gives it up
   * through `drop` (back to the pool) and reports the error to `cb` or as
   * 'error', as a refused send is.
   */
  #sendAfterLookup(host: string, port: number, go: (name: Uint8Array) => void, drop: () => void, cb: SendCallback | undefined): void {
    const fail = (err: unknown): void => {
      drop();
      if (cb) cb(err as Error);
      else this.#emitError(err as ErrnoError);
    };
    this.#lookupHost(host).then((ip) => {
      let name: Uint8Array;
      try {
        if (this.#closing) throw new ClosedError('the UDP socket was closed before the datagram was sent');
        name = this.#name(port, ip);
      } catch (err) {
        return fail(err);
      }
      go(name);
    }, fail);
  }

  /**
   * Binds to host:port (port 0: the kernel picks one; host default: any
   * address of the family; a name is looked up first) and starts receiving.
   * Returns the bound address; or pass a callback.
   */
  bind(port: number = 0, host?: string, cb?: (err: Error | null, addr?: AddressInfo) => void): Promise<AddressInfo> {
    const p = new Promise<AddressInfo>((resolve) => {
      this.#checkOpen();
      if (this.#bound || this.#binding) throw new InvalidArgumentError('the UDP socket is bound already');
      const h = host === undefined || host === '' ? (this.#o.family === 4 ? '0.0.0.0' : '::') : host;
      if (!UdpSocket.#isName(h)) return resolve(this.#bindTo(port, h));
      validatePort(port);
      this.#binding = true;
      resolve(
        this.#lookupHost(h).then(
          (ip) => {
            this.#binding = false;
            this.#checkOpen();
            return this.#bindTo(port, ip);
          },
          (err: unknown) => {
            this.#binding = false;
            throw err;
          },
        ),
      );
    });
    if (cb) p.then((a) => cb(null, a), (e: Error) => cb(e));
    return p;
  }

  #bindTo(port: unknown, host: unknown): AddressInfo {
    const name = this.#name(port, host);
    call(() => native().sockBind(this.#fd, name));
    this.#bound = true;
    this.#receiver.arm();
    process.nextTick(() => this.emit('listening'));
    return this.address();
  }

  /** The local address (after bind, connect or a first send). */
  address(): AddressInfo {
    this.#checkOpen();
    return decodeSockaddr(call(() => native().sockName(this.#fd, false)));
  }

  /** The connected peer; throws when not connected. */
  remoteAddress(): AddressInfo {
    this.#checkOpen();
    if (!this.#connected) throw new InvalidArgumentError('the UDP socket is not connected');
    return decodeSockaddr(call(() => native().sockName(this.#fd, true)));
  }

  /**
   * Fixes the peer: send() then takes no address, only the peer's datagrams
   * arrive, and ICMP errors for it come back as 'error' (ECONNREFUSED, ...).
   * An IP address is connected when this returns; a host name is looked up
   * first, so send() takes no address only once the promise resolved.
   */
  connect(port: number, host?: string, cb?: (err: Error | null) => void): Promise<void> {
    const p = new Promise<void>((resolve) => {
      this.#checkOpen();
      if (this.#connected || this.#connecting) throw new InvalidArgumentError('the UDP socket is connected already: disconnect() first');
      if (!UdpSocket.#isName(host)) return resolve(this.#connectTo(port, host === '' ? undefined : host));
      validatePort(port);
      this.#connecting = true;
      resolve(
        this.#lookupHost(host).then(
          (ip) => {
            this.#connecting = false;
            this.#checkOpen();
            this.#connectTo(port, ip);
          },
          (err: unknown) => {
            this.#connecting = false;
            throw err;
          },
        ),
      );
    });
    if (cb) p.then(() => cb(null), (e: Error) => cb(e));
    return p;
  }

  #connectTo(port: unknown, host: unknown): void {
    const name = this.#name(port, host);
    call(() => native().sockConnectSync(this.#fd, name));
    this.#connected = true;
    this.#bound = true;
    this.#receiver.arm();
  }

  disconnect(): void {
    this.#checkOpen();
    if (!this.#connected) throw new InvalidArgumentError('the UDP socket is not connected');
    call(() => native().sockDisconnect(this.#fd));
    this.#connected = false;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Sends the buffer's bytes as one datagram (an array of buffers: their
   * bytes in order as one datagram, up to 64 pieces). The buffers are lent
   * to the kernel from now on (neither readable nor writable) and go back to
   * the pool once sent: ownership goes with the send, as for TCP. A
   * connected socket takes no port; an unconnected one needs it (host
   * default: loopback). `cb(err)` runs once the kernel took it or refused
   * it; without one, a refused send is an 'error' event.
   *
   * A received UdpMessage (of this socket's pool; inside its 'message'
   * handler, or retained), or its `bytes` view itself, is sent as it is, from
   * the pool buffer it arrived in: no copy. It counts as released from then on. Messages of one GRO
   * buffer sent on in one turn to one destination leave as one UDP_SEGMENT
   * batch again. A received UdpBatch (in its 'batch' handler, or retained)
   * is sent the same way, all its datagrams as one UDP_SEGMENT send.
   */
  send(buf: IoBuffer | readonly IoBuffer[] | UdpMessage | UdpBatch | Uint8Array, port?: number, host?: string, cb?: SendCallback): void {
    this.#checkOpen();
    if (buf instanceof UdpMessage) return this.#sendMessage(buf, port, host, cb);
    if (buf instanceof UdpBatch) return this.#sendBatch(buf, port, host, cb);
    if (buf instanceof Uint8Array) {
      const msg = messageOfView(buf);
      if (msg === undefined || msg.released) {
        throw new InvalidArgumentError("send() takes a Uint8Array only when it is a live received message's `bytes` (other bytes: copy them into a pool buffer)");
      }
      return this.#sendMessage(msg, port, host, cb);
    }
    const list = Array.isArray(buf) ? (buf as readonly IoBuffer[]) : null;
    const first = list === null ? (buf as IoBuffer) : list[0];
    if (list !== null && (list.length < 1 || list.length > SENDMSG_MAX_SEGS)) {
      throw new InvalidArgumentError(`send() takes 1 to ${SENDMSG_MAX_SEGS} buffers for one datagram, got ${list.length}`);
    }
    let len = 0;
    for (const b of list ?? [first]) {
      if (!(b instanceof IoBuffer)) throw new InvalidArgumentError('send() takes an IoBuffer or an array of them');
      if (b.pool !== this.pool) throw new InvalidArgumentError("send() takes buffers of the socket's pool");
      if (b.released) throw new BufferReleasedError();
      if (b.lent) throw new BufferLentError();
      len += b.length;
    }
    if (list !== null && new Set(list).size !== list.length) throw new InvalidArgumentError('send() takes each buffer of a datagram once');
    if (len > MAX_PAYLOAD[this.#o.family]) {
      throw new DatagramTooLargeError(`a ${this.type} datagram holds at most ${MAX_PAYLOAD[this.#o.family]} bytes, got ${len}`);
    }
    let name: Uint8Array | null = null;
    const more = list !== null && list.length > 1 ? list.slice(1) : null;
    if (this.#connected) {
      if (port !== undefined) throw new InvalidArgumentError('the UDP socket is connected: send() takes no address');
    } else {
      if (port === undefined) throw new InvalidArgumentError('send() on an unconnected UDP socket needs a port');
      if (UdpSocket.#isName(host)) {
        const bufs = list ?? [first];
        const p = validatePort(port);
        for (const b of bufs) this.pool[kLend](b);
        const giveBack = (): void => {
          for (const b of bufs) this.pool[kReturn](b);
        };
        this.#sendAfterLookup(
          host,
          p,
          (to) => {
            giveBack();
            this.#sender.enqueue(first, more, len, to, cb);
            this.#armAfterSend();
          },
          () => {
            giveBack();
            for (const b of bufs) b.release(); // ownership went with the send
          },
          cb,
        );
        return;
      }
      name = this.#name(port, host);
    }
    this.#sender.enqueue(first, more, len, name, cb);
    this.#armAfterSend();
  }

  /** The kernel binds an unbound socket at its first send: receive from then on. */
  #armAfterSend(): void {
    if (!this.#bound) {
      this.#bound = true;
      this.#receiver.arm();
    }
  }

  /**
   * Sends `buf` as datagrams of `segmentSize` bytes laid end to end in it (the
   * last may be shorter), to `port`/`host` or, connected, to the peer: one
   * UDP_SEGMENT send the kernel cuts up (GSO), so up to 64 datagrams cost one
   * call here and one operation. The buffer is lent as with send(). Throws
   * BackendUnavailableError where this socket has no GSO (`stats().gso` says
   * why): send the datagrams one by one there.
   */
  sendSegments(buf: IoBuffer, segmentSize: number, port?: number, host?: string, cb?: SendCallback): void {
    this.#sendSegments('sendSegments', buf, segmentSize, port, host, cb, false);
  }

  /**
   * sendSegments() that keeps the buffer the caller's: it is lent for each
   * send (counted, as a TCP socket's sendShared()), unreadable and unwritable
   * while any send holds it, and OWNED again once the last completes; the
   * caller may send it again meanwhile (the same bytes to other
   * destinations, or again: a sender that resends a few warm buffers) and
   * releases it when done (release() throws BufferLentError while a send
   * holds it). A buffer given up to a send() or sendSegments() is refused
   * (BufferReleasedError).
   */
  sendSegmentsShared(buf: IoBuffer, segmentSize: number, port?: number, host?: string, cb?: SendCallback): void {
    this.#sendSegments('sendSegmentsShared', buf, segmentSize, port, host, cb, true);
  }

  #sendSegments(what: string, buf: IoBuffer, segmentSize: number, port: number | undefined, host: string | undefined, cb: SendCallback | undefined, shared: boolean): void {
    this.#checkOpen();
    if (!(buf instanceof IoBuffer)) throw new InvalidArgumentError(`${what}() takes an IoBuffer`);
    if (buf.pool !== this.pool) throw new InvalidArgumentError(`${what}() takes a buffer of the socket's pool`);
    if (buf.released) throw new BufferReleasedError();
    // A shared send may lend a buffer lent already (the pool refuses a given-up or exclusive one).
    if (buf.lent && !shared) throw new BufferLentError();
    if (!Number.isInteger(segmentSize) || segmentSize < 1 || segmentSize > MAX_PAYLOAD[this.#o.family]) {
      throw new OutOfRangeError(`segmentSize must be an integer from 1 to ${MAX_PAYLOAD[this.#o.family]}, got ${String(segmentSize)}`);
    }
    const len = buf.length;
    if (len < 1 || len > GSO_MAX_BYTES || Math.ceil(len / segmentSize) > SENDMSG_MAX_SEGS) {
      throw new DatagramTooLargeError(`${what}() sends 1 to ${GSO_MAX_BYTES} bytes in at most ${SENDMSG_MAX_SEGS} segments, got ${len} bytes of ${segmentSize}-byte segments`);
    }
    if (!this.#sender.gso.enabled) throw new BackendUnavailableError(`UDP segmentation is off on this socket: ${this.#sender.gso.reason}`);
    let name: Uint8Array | null = null;
    if (this.#connected) {
      if (port !== undefined) throw new InvalidArgumentError(`the UDP socket is connected: ${what}() takes no address`);
    } else {
      if (port === undefined) throw new InvalidArgumentError(`${what}() on an unconnected UDP socket needs a port`);
      if (UdpSocket.#isName(host)) {
        const p = validatePort(port);
        this.pool[kLend](buf);
        this.#sendAfterLookup(
          host,
          p,
          (to) => {
            this.pool[kReturn](buf);
            this.#sender.enqueueSegments(buf, segmentSize, to, cb, shared);
            this.#armAfterSend();
          },
          () => {
            this.pool[kReturn](buf);
            if (!shared) buf.release(); // ownership went with the send; a shared buffer stays the caller's
          },
          cb,
        );
        return;
      }
      name = this.#name(port, host);
    }
    this.#sender.enqueueSegments(buf, segmentSize, name, cb, shared);
    this.#armAfterSend();
  }

  /**
   * A received message sent on from its own pool buffer (no copy): see
   * send(). The message is given up (released as far as the application is
   * concerned, also inside its 'message' handler); its bytes go back to the
   * pool when the kernel is done with them and its sibling messages of a GRO
   * buffer are released.
   */
  #sendMessage(msg: UdpMessage, port: unknown, host: unknown, cb: SendCallback | undefined, encoded?: Uint8Array): void {
    if (msg.released) throw new BufferReleasedError('message was released');
    if (msg.pool !== this.pool) throw new InvalidArgumentError("send() takes messages received into the socket's pool");
    if (msg.length > MAX_PAYLOAD[this.#o.family]) {
      throw new DatagramTooLargeError(`a ${this.type} datagram holds at most ${MAX_PAYLOAD[this.#o.family]} bytes, got ${msg.length}`);
    }
    let name: Uint8Array | null = null;
    if (this.#connected) {
      if (port !== undefined) throw new InvalidArgumentError('the UDP socket is connected: send() takes no address');
    } else if (encoded !== undefined) {
      name = encoded;
    } else {
      if (port === undefined) throw new InvalidArgumentError('send() on an unconnected UDP socket needs a port');
      if (UdpSocket.#isName(host)) {
        const p = validatePort(port);
        const len = msg.length;
        // The message's own lend holds its region while the name resolves.
        const { buf, offset } = msg.lendForSend();
        this.#sendAfterLookup(
          host,
          p,
          (to) => {
            this.#sender.enqueueLent(buf, offset, len, to, cb);
            this.#armAfterSend();
          },
          () => void this.pool[kReturn](buf),
          cb,
        );
        return;
      }
      name = this.#name(port, host);
    }
    const { buf, offset } = msg.lendForSend();
    this.#sender.enqueueLent(buf, offset, msg.length, name, cb);
    this.#armAfterSend();
  }

  /**
   * A received batch sent on from its own pool buffer (no copy): with GSO,
   * one UDP_SEGMENT send of all its datagrams, cut as they arrived; without,
   * (or more than one send takes) datagram by datagram, `cb` once after the
   * last with the first error. The batch counts as released from then on.
   */
  #sendBatch(b: UdpBatch, port: unknown, host: unknown, cb: SendCallback | undefined): void {
    if (b.released) throw new BufferReleasedError('the batch was released');
    if (b.pool !== this.pool) throw new InvalidArgumentError("send() takes batches received into the socket's pool");
    if (b.segmentSize > MAX_PAYLOAD[this.#o.family]) {
      throw new DatagramTooLargeError(`a ${this.type} datagram holds at most ${MAX_PAYLOAD[this.#o.family]} bytes, got ${b.segmentSize}`);
    }
    let name: Uint8Array | null = null;
    if (this.#connected) {
      if (port !== undefined) throw new InvalidArgumentError('the UDP socket is connected: send() takes no address');
    } else {
      if (port === undefined) throw new InvalidArgumentError('send() on an unconnected UDP socket needs a port');
      // A batch lives until its handler returns: no waiting for a lookup.
      if (UdpSocket.#isName(host)) throw new InvalidAddressError('send(batch) takes an IP address: resolve the name first, or connect the socket to it');
      name = this.#name(port, host);
    }
    const n = b.count;
    if (n === 1 || (this.#sender.gso.enabled && n <= SENDMSG_MAX_SEGS && b.length <= GSO_MAX_BYTES)) {
      const { buf, offset } = b[kLendForSend](1);
      this.#sender.enqueueLent(buf, offset, b.length, name, cb, n > 1 ? b.segmentSize : 0);
    } else {
      let left = n;
      let first: Error | null = null;
      const each = cb && ((err: Error | null): void => {
        first ??= err;
        if (--left === 0) cb(first);
      });
      const seg = b.segmentSize;
      const last = b.length - (n - 1) * seg;
      const { buf, offset } = b[kLendForSend](n);
      for (let i = 0; i < n; i++) this.#sender.enqueueLent(buf, offset + i * seg, i === n - 1 ? last : seg, name, each);
    }
    this.#armAfterSend();
  }

  /**
   * @internal A destination's sockaddr, checked and encoded once: a relay
   * keeps one per flow, so a socket that sends to many flows in turn (a relay's
   * listening socket) does not look each one up per datagram.
   */
  [kUdpDestination](port: number, host: string | undefined): Uint8Array {
    this.#checkOpen();
    return this.#lookupName(port, host);
  }

  /** @internal send(msg) to a destination encoded by kUdpDestination (an unconnected socket). */
  [kUdpSendTo](msg: UdpMessage, name: Uint8Array, cb?: SendCallback): void {
    this.#checkOpen();
    if (!(msg instanceof UdpMessage)) throw new InvalidArgumentError('expected a UdpMessage');
    if (this.#connected) throw new InvalidArgumentError('the UDP socket is connected: send() takes no address');
    this.#sendMessage(msg, undefined, undefined, cb, name);
  }

  #deliver(b: UdpBatch): void {
    if (this.#closing) b.release();
    else if (this.#waiting.length > 0 || !this.#handOut(b)) this.#waiting.push(b);
  }

  /**
   * Hands a buffer's datagrams to the application: the whole batch to
   * 'batch' listeners, else one 'message' per datagram, each made as it is
   * handed out. Returns false when a pause (or the last listener leaving)
   * stopped it first; the batch then remembers where to go on (as messages:
   * a batch partly handed out never reaches 'batch' listeners).
   */
  #handOut(b: UdpBatch): boolean {
    if (this.#receiver.paused) return false;
    if (b[kNextMessage] === 0 && this.listenerCount('batch') > 0) {
      try {
        this.emit('batch', b, b.from);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
      // Released when the handlers return, unless one kept it.
      if (!b.released && !b.retained) b.release();
      return true;
    }
    const from = b.from;
    const n = b.count;
    for (let i = b[kNextMessage]; i < n; i++) {
      if (this.#closing) break; // closed by a handler of an earlier datagram
      if (this.#receiver.paused) {
        b[kNextMessage] = i;
        return false;
      }
      const m = b[kMessageAt](i);
      let heard = true;
      try {
        heard = this.emit('message', m, from);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
      if (!m.released && !m.retained) m.release();
      if (!heard) {
        // No 'message' listener (any more): this datagram and the rest wait for one.
        b[kNextMessage] = i;
        return false;
      }
    }
    b.release(); // the batch's own share: the buffer goes back with its last message
    return true;
  }

  #flushWaiting(): void {
    while (this.#waiting.length > 0 && !this.#closing && this.#handOut(this.#waiting[0])) this.#waiting.shift();
  }

  #emitError(err: ErrnoError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.nextTick(() => this.emit('error', err)); // unhandled: throws, as EventEmitter does
  }

  /** Stops 'message' and 'batch' (datagrams wait in the kernel, which drops them when its buffer is full). */
  pause(): this {
    this.#receiver.pause();
    return this;
  }

  /** Messages (or batches) that waited come first. */
  resume(): this {
    this.#receiver.resume();
    process.nextTick(() => this.#flushWaiting());
    return this;
  }

  isPaused(): boolean {
    return this.#receiver.paused;
  }

  /** A bound socket no longer keeps the process alive by waiting for datagrams (sends still do), as node:dgram's unref(). */
  unref(): this {
    this.#receiver.setRef(false);
    return this;
  }

  /** Waiting for datagrams keeps the process alive again (the default). */
  ref(): this {
    this.#receiver.setRef(true);
    return this;
  }

  /**
   * Sends queued or with the kernel (a sendSegments() buffer counts once), as
   * stats().sendsPending without making the snapshot: for a sender that
   * checks it every turn.
   */
  get sendsPending(): number {
    return this.#sender.pending;
  }

  stats(): UdpStats {
    const c = this.#stats;
    return {
      datagramsIn: c.datagramsIn,
      bytesIn: c.bytesIn,
      datagramsOut: c.datagramsOut,
      bytesOut: c.bytesOut,
      truncated: c.truncated,
      gsoBatches: c.gsoBatches,
      socketSegmentSends: c.socketSegmentSends,
      messagesSent: c.messagesSent,
      groBatches: c.groBatches,
      errors: c.errors,
      noBufferEvents: c.noBufferEvents,
      gso: { ...this.#sender.gso },
      gro: { ...this.#gro },
      sendsPending: this.#sender.pending,
      receiveBytesHeld: this.#receiver.bytesHeld,
      zeroCopy: this.#zeroCopy.stats(),
    };
  }

  /**
   * Closes: queued sends are dropped (their callbacks get ERR_MAIO_CLOSED),
   * those with the kernel finish, waiting messages go back to the pool, then
   * the fd closes and 'close' follows.
   */
  close(cb?: () => void): void {
    if (cb) this.once('close', cb);
    if (this.#closing) return;
    this.#closing = true;
    for (const b of this.#waiting.splice(0)) if (!b.released) b.release();
    let parts = 2;
    const done = (): void => {
      if (--parts > 0) return;
      if (!this.#ring.closed) {
        this.#closeOp = this.#ring.closeFd(this, this.#fd);
        return;
      }
      // The ring is closed: nothing of it acts on the fd any more.
      native().sockClose(this.#fd);
      process.nextTick(() => this.onCompletion(this.#closeOp));
    };
    this.#receiver.close(done);
    this.#sender.drain(new ClosedError('the UDP socket was closed before the datagram was sent'), done);
  }

  /** @internal the CLOSE of the fd */
  onCompletion(opId: number): void {
    if (opId !== this.#closeOp || this.#closed) return;
    this.#closed = true;
    this.#fd = -1;
    this.emit('close');
  }
}

/** A UDP socket on this thread's ring; `bind()` or `connect()` it, or just `send()`. */
export function createUdpSocket(options: UdpSocketOptions): UdpSocket {
  return new UdpSocket(options);
}
