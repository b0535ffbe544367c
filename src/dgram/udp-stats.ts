/** A UdpSocket's counters, and the stats() snapshot made of them. */
import type { ZeroCopyStats } from '../net/zc-policy';
import type { OffloadState } from './udp-options';

export class UdpCounters {
  datagramsIn = 0;
  bytesIn = 0;
  datagramsOut = 0;
  bytesOut = 0;
  /** datagrams cut short because the receive buffer was smaller */
  truncated = 0;
  /** UDP_SEGMENT sends (each several datagrams) */
  gsoBatches = 0;
  /** of those, sendSegments() buffers sent as plain SENDs with the socket's own UDP_SEGMENT size (connected) */
  socketSegmentSends = 0;
  /** datagrams send(msg) queued from a received message's own pool buffer (no copy) */
  messagesSent = 0;
  /** receive buffers that carried several datagrams (UDP_GRO) */
  groBatches = 0;
  /** failed sends and receive errors (ICMP errors on a connected socket, ...) */
  errors = 0;
  /** the receive group had no buffer for an arriving datagram (it waited in the kernel) */
  noBufferEvents = 0;
}

export interface UdpStats {
  datagramsIn: number;
  bytesIn: number;
  datagramsOut: number;
  bytesOut: number;
  truncated: number;
  gsoBatches: number;
  /** of those, sendSegments() buffers sent as plain SENDs with the socket's own UDP_SEGMENT size (a connected socket whose buffers share one segment size) */
  socketSegmentSends: number;
  /** datagrams send(msg) queued from a received message's own pool buffer (no copy) */
  messagesSent: number;
  groBatches: number;
  errors: number;
  noBufferEvents: number;
  /** whether UDP_SEGMENT batching is on, and why not */
  gso: OffloadState;
  /** whether UDP_GRO is on, and why not */
  gro: OffloadState;
  /** sends queued or with the kernel (a datagram, or a sendSegments() buffer: once) */
  sendsPending: number;
  /** bytes of receive buffers the application holds */
  receiveBytesHeld: number;
  /**
   * Zero-copy sends (the zeroCopy option): the policy's state and why, sends
   * made zero-copy, and what their notifications said (copiedSends: the
   * kernel copied anyway, notCopiedSends: it did not), as a TCP socket's.
   */
  zeroCopy: ZeroCopyStats;
}
