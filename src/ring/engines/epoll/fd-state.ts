/**
 * Per-socket bookkeeping of the epoll fallback: which operations wait on the
 * descriptor, in order, and its MSG_ZEROCOPY counter.
 *
 * Readers (recv, multishot recv, accept) and writers (send, connect) each
 * wait in FIFO order: only the head is attempted, so two sends never
 * interleave their bytes and a send queued behind a connect waits for it.
 */
export class FdState {
  readonly fd: number;
  /** op slots waiting for EPOLLIN, head first */
  readonly readers: number[] = [];
  /** op slots waiting for EPOLLOUT, head first */
  readonly writers: number[] = [];
  /** SEND_ZC and SENDMSG_ZC op slots with zero-copy sends not yet reported by the error queue */
  readonly zcOps: number[] = [];
  /** in the epoll set */
  watched = false;
  /** SO_ZEROCOPY: 0 not tried, 1 on, -1 refused (zero-copy sends go out as plain sends) */
  zc = 0;
  /** the kernel's next MSG_ZEROCOPY counter value for this socket (u32, kept as int32) */
  zcNext = 0;
  /** on the ring's retry list (a multishot op stopped early and runs again next batch) */
  retry = false;

  constructor(fd: number) {
    this.fd = fd;
  }

  get idle(): boolean {
    return this.readers.length === 0 && this.writers.length === 0 && this.zcOps.length === 0;
  }
}
