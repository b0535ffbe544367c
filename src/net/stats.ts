/**
 * Counters shared by every socket of this thread (module state is per
 * thread), and maio.stats(), which adds the ring's and the receive groups'.
 */
import { currentRing } from '../ring/current';
import type { RingStats } from '../ring/io-ring';
import { RecvGroup, type RecvGroupStats } from './recv-group';

export const totals = {
  socketsOpened: 0,
  socketsOpen: 0,
  bytesRead: 0,
  bytesWritten: 0,
  /** send ops put on the ring (SEND and SEND_ZC) */
  sendOps: 0,
  /** bytes of SEND_ZC sends (MSG_ZEROCOPY sends on epoll) */
  zeroCopyBytes: 0,
  /** of those, bytes the kernel reported as copied (IORING_NOTIF_USAGE_ZC_COPIED; on epoll SO_EE_CODE_ZEROCOPY_COPIED) */
  zeroCopyCopiedBytes: 0,
  /** recv completions that carried data */
  recvCompletions: 0,
  /** sends the kernel answered EAGAIN on a live connection, sent again (socket-send-chain.ts #resend) */
  sendRetries: 0,
  /** writes sent from the caller's buffer (held until the send completed) instead of a copy into the pool: maio/net's large writes */
  heldWrites: 0,
  heldWriteBytes: 0,
  /** chunks a maio/net pipe() passed from one socket's receive to a socket's send as the pool buffer they arrived in (no copy) */
  streamPooledChunks: 0,
  /** of those, chunks that reached something other than a maio/net write (never seen): their pool buffer is held for good */
  streamPooledStranded: 0,
  /** 'data' chunks a maio/net socket with transientChunks handed out over their pool buffer (no copy) */
  streamLentChunks: 0,
};

export interface MaioStats {
  socketsOpened: number;
  socketsOpen: number;
  bytesRead: number;
  bytesWritten: number;
  sendOps: number;
  zeroCopyBytes: number;
  zeroCopyCopiedBytes: number;
  recvCompletions: number;
  sendRetries: number;
  /** writes sent from the caller's buffer (held until the send completed) instead of a copy into the pool: maio/net's large writes */
  heldWrites: number;
  heldWriteBytes: number;
  /** chunks a maio/net pipe() passed from one socket's receive to a socket's send as the pool buffer they arrived in (no copy) */
  streamPooledChunks: number;
  /** of those, chunks that reached something other than a maio/net write (never seen): their pool buffer is held for good */
  streamPooledStranded: number;
  /** 'data' chunks a maio/net socket with transientChunks handed out over their pool buffer (no copy) */
  streamLentChunks: number;
  /**
   * send ops per kernel entry over the thread's ring's life: io_uring_enter
   * calls on io_uring; on epoll, the data path's system calls (epoll_wait,
   * send, recv, ...), so the two modes' figures do not compare.
   */
  sendsPerEnter: number;
  /** receive buffers delivered and not yet released, over all groups */
  receiveBuffersHeld: number;
  /** receive buffers provided to the kernel, over all groups */
  receiveBuffersInKernel: number;
  recvGroups: RecvGroupStats[];
  ring: RingStats | null;
}

/** This thread's network counters, its ring's stats and its receive groups. */
export function stats(): MaioStats {
  let ring: RingStats | null = null;
  try {
    ring = currentRing().stats();
  } catch {
    ring = null;
  }
  const groups = RecvGroup.all();
  return {
    ...totals,
    sendsPerEnter: ring && ring.enters ? totals.sendOps / ring.enters : 0,
    receiveBuffersHeld: groups.reduce((a, g) => a + g.withApplication, 0),
    receiveBuffersInKernel: groups.reduce((a, g) => a + g.inKernel, 0),
    recvGroups: groups,
    ring,
  };
}
