/**
 * UDP forwarding between two UdpSockets: each datagram that arrives on `a`
 * leaves on `b` from the pool buffer it arrived in (b.send(msg): no copy in
 * user space; the kernel copies skb -> pool buffer on receive and pool
 * buffer -> skb on send). A GRO buffer's datagrams go on as one UDP_SEGMENT
 * batch. Memory is bounded by a's read quota: a forwarded buffer counts
 * against it until b's send of it completes, so a slow `b` slows a's reading
 * (datagrams then wait, or are dropped, in a's kernel buffer, as UDP does).
 */
import { InvalidArgumentError } from '../core/errors';
import { TypedEmitter } from '../core/typed-events';
import { validatePort } from '../net/address';
import { kUdpDestination, kUdpSendTo } from '../core/symbols';
import { UdpSocket } from '../dgram/udp-socket';
import type { RemoteInfo, UdpMessage } from '../dgram/udp-message';

export interface UdpForwardOptions {
  /** Destination on an unconnected `b` (a connected one sends to its peer and takes none). */
  port?: number;
  /** Destination host (default: loopback of b's family). */
  host?: string;
  /** Forward only datagrams this returns true for (e.g. from one peer); others are released and counted. */
  filter?: (msg: UdpMessage, from: RemoteInfo) => boolean;
}

export interface UdpForwardStats {
  datagrams: number;
  bytes: number;
  /** filtered out, or refused by b.send() (b closed) */
  dropped: number;
  /** b's sends of forwarded datagrams that failed, and a's receive errors while forwarding */
  errors: number;
}

export interface UdpForwarderEvents {
  /** a send or receive error (only while someone listens; counted either way) */
  error: [err: Error];
}

export class UdpForwarder extends TypedEmitter<UdpForwarderEvents> {
  readonly source: UdpSocket;
  readonly destination: UdpSocket;
  datagrams = 0;
  bytes = 0;
  dropped = 0;
  errors = 0;
  #stopped = false;
  readonly #onMessage: (msg: UdpMessage, from: RemoteInfo) => void;
  readonly #onError: (err: Error | null) => void;

  constructor(a: UdpSocket, b: UdpSocket, options: UdpForwardOptions = {}) {
    super();
    if (!(a instanceof UdpSocket) || !(b instanceof UdpSocket)) throw new InvalidArgumentError('forwardUdp() takes two UdpSockets');
    if (a === b) throw new InvalidArgumentError('forwardUdp() takes two different sockets');
    if (a.pool !== b.pool) throw new InvalidArgumentError("forwardUdp() needs both sockets on one pool (b sends a's buffers)");
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
    const { host, filter } = options;
    const port = options.port === undefined ? undefined : validatePort(options.port);
    if (host !== undefined && typeof host !== 'string') throw new InvalidArgumentError('host must be a string');
    if (filter !== undefined && typeof filter !== 'function') throw new InvalidArgumentError('filter must be a function');
    if (b.connected && port !== undefined) throw new InvalidArgumentError('b is connected: forwardUdp() takes no destination');
    if (!b.connected && port === undefined) throw new InvalidArgumentError('b is not connected: forwardUdp() needs a destination port');
    this.source = a;
    this.destination = b;
    // Encoded once: b may send to many destinations in turn (a relay's listening socket).
    const to = port === undefined ? null : b[kUdpDestination](port, host);
    this.#onMessage = (msg, from) => {
      if (filter !== undefined && !filter(msg, from)) {
        this.dropped++;
        return;
      }
      const len = msg.length;
      try {
        if (to === null) b.send(msg, undefined, undefined, this.#onError);
        else b[kUdpSendTo](msg, to, this.#onError);
      } catch (err) {
        this.dropped++;
        return;
      }
      this.datagrams++;
      this.bytes += len;
    };
    // One callback for every send (no closure per datagram): b's own 'error' listeners are not involved.
    this.#onError = (err) => {
      if (err === null) return;
      this.errors++;
      if (this.listenerCount('error') > 0) this.emit('error', err);
    };
    a.on('message', this.#onMessage);
    a.on('error', this.#onError);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops forwarding (the sockets stay open; datagrams queued on `b` still leave). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.source.off('message', this.#onMessage);
    this.source.off('error', this.#onError);
  }

  stats(): UdpForwardStats {
    return { datagrams: this.datagrams, bytes: this.bytes, dropped: this.dropped, errors: this.errors };
  }
}

/** Forwards what arrives on `a` out of `b` (b connected, or `options.port`/`host` say where) until stop(). */
export function forwardUdp(a: UdpSocket, b: UdpSocket, options?: UdpForwardOptions): UdpForwarder {
  return new UdpForwarder(a, b, options);
}
