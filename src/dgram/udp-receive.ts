/**
 * A UdpSocket's receive side: one multishot RECVMSG on the thread's datagram
 * receive group for (pool, buffer size) (src/net/recv-group.ts), which gives
 * the kernel at most HOT_BUFFERS buffers at once, so its copy lands in
 * recently used memory. One completion per buffer: one datagram, or
 * with UDP_GRO several of one flow. Bytes the application holds count
 * against the read quota: above it the recv is cancelled (datagrams wait in
 * the socket's kernel buffer, or are dropped there when it is full, as UDP
 * does) until enough is released.
 */
import { errnoError, type ErrnoError } from '../core/errors';
import { CQE_F_MORE } from '../core/native';
import type { IoPool } from '../pool/pool';
import type { CompletionTarget, IoRing } from '../ring/io-ring';
import { HOT_BUFFERS, RecvGroup, type RecvGroupUser } from '../net/recv-group';
import type { UdpBatch } from './udp-batch';
import { parseRecvmsg } from './udp-recvmsg';
import type { UdpCounters } from './udp-stats';

const EINVAL = 22;
const ENOBUFS = 105;
const ECANCELED = 125;

export interface ReceiveHost {
  /** A buffer's datagrams, now owned by the application. */
  deliver(batch: UdpBatch): void;
  /** The recv ended with an error (an ICMP error on a connected socket, ...); it is armed again. */
  receiveError(err: ErrnoError): void;
  /** Ring.close() cancelled the recv: the socket closes with its ring. */
  ringClosed(): void;
}

export class UdpReceiver implements CompletionTarget, RecvGroupUser {
  readonly #ring: IoRing;
  readonly #pool: IoPool;
  readonly #fd: () => number;
  readonly #nameLen: number;
  readonly #ctlLen: number;
  readonly #bufferSize: number | undefined;
  readonly #quota: number;
  readonly #stats: UdpCounters;
  readonly #host: ReceiveHost;
  #group: RecvGroup | null = null;
  #op = -1;
  #held = 0;
  #paused = false;
  #cancelling = false;
  #waitingBuffers = false;
  #closing = false;
  /** the kernel refused the recv itself (EINVAL: no multishot RECVMSG here): not armed again */
  #refused = false;
  #onStopped: (() => void) | null = null;

  constructor(ring: IoRing, pool: IoPool, fd: () => number, nameLen: number, ctlLen: number, bufferSize: number | undefined, quota: number, stats: UdpCounters, host: ReceiveHost) {
    this.#ring = ring;
    this.#pool = pool;
    this.#fd = fd;
    this.#nameLen = nameLen;
    this.#ctlLen = ctlLen;
    this.#bufferSize = bufferSize;
    this.#quota = quota;
    this.#stats = stats;
    this.#host = host;
  }

  get bytesHeld(): number {
    return this.#held;
  }

  /** Arms the recv when it may run. */
  arm(): void {
    if (this.#op >= 0 || this.#paused || this.#closing || this.#refused || this.#waitingBuffers || this.#held >= this.#quota || this.#ring.closed) return;
    this.#group ??= RecvGroup.acquire(this.#ring, this.#pool, {
      ...(this.#bufferSize === undefined ? {} : { bufferSize: this.#bufferSize }),
      hotBuffers: HOT_BUFFERS, // the kernel's copy into buffers still in cache (recv-group.ts)
    });
    this.#op = this.#ring.recvmsgMulti(this, this.#fd(), this.#group.id, this.#nameLen, this.#ctlLen);
  }

  #stop(): void {
    if (this.#op >= 0 && !this.#cancelling) {
      this.#cancelling = true;
      this.#ring.cancel(this.#op);
    }
  }

  pause(): void {
    this.#paused = true;
    this.#stop();
  }

  resume(): void {
    this.#paused = false;
    this.arm();
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** @internal the recv's completions */
  onCompletion(opId: number, res: number, flags: number): void {
    if (opId !== this.#op) return;
    const final = (flags & CQE_F_MORE) === 0;
    if (final) {
      this.#op = -1;
      this.#cancelling = false;
    }
    if (res > 0) {
      const buf = this.#group!.take(flags >>> 16, res, this);
      this.#held += buf.capacity;
      const batch = parseRecvmsg(buf, res, this.#nameLen, this.#ctlLen);
      const s = this.#stats;
      s.datagramsIn += batch.count;
      s.bytesIn += batch.length;
      if (batch.truncated) s.truncated++;
      if (batch.count > 1) s.groBatches++;
      if (this.#closing) batch.release();
      else this.#host.deliver(batch);
      if (!final && this.#held >= this.#quota) this.#stop();
    } else if (res === -ENOBUFS) {
      this.#stats.noBufferEvents++;
      if (!this.#closing && !this.#group!.noBuffers(this)) this.#waitingBuffers = true;
    } else if (res < 0 && res !== -ECANCELED) {
      this.#stats.errors++;
      if (res === -EINVAL) this.#refused = true; // again would fail again, at once
      if (!this.#closing) this.#host.receiveError(errnoError(res, 'recvmsg'));
    }
    if (final) {
      if (this.#closing) this.#stopped();
      else if (this.#ring.closed) this.#host.ringClosed();
      else this.arm();
    }
  }

  /** @internal the application released a buffer this socket received */
  onRecvBufferReleased(capacity: number): void {
    this.#held -= capacity;
    if (this.#op < 0) this.arm();
  }

  /** @internal the receive group has buffers again */
  onRecvBuffersAvailable(): void {
    this.#waitingBuffers = false;
    this.arm();
  }

  /** Whether the armed recv keeps the process alive (node:dgram's ref()/unref()). */
  setRef(referenced: boolean): void {
    this.#ring.setRef(this, referenced);
  }

  /** Stops for good; `cb` runs once no recv is in flight. */
  close(cb: () => void): void {
    this.#closing = true;
    this.#onStopped = cb;
    if (this.#op >= 0) this.#stop();
    else this.#stopped();
  }

  #stopped(): void {
    if (this.#group) {
      this.#group.forget(this);
      this.#group.release();
      this.#group = null;
    }
    const cb = this.#onStopped;
    this.#onStopped = null;
    cb?.();
  }
}
