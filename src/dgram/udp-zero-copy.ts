/**
 * A UdpSocket's zero-copy decisions: which of its sends (a datagram, or a
 * UDP_SEGMENT batch of them) leave as SENDMSG_ZC (epoll: sendmsg with
 * MSG_ZEROCOPY), by the same ZeroCopyPolicy as TCP sockets
 * (src/net/zc-policy.ts): sends of zeroCopyMinBytes or more probe, each
 * notification says whether the kernel copied anyway (loopback, any local
 * delivery), and a socket whose zero-copy sends come back copied turns to
 * plain SENDMSG and probes again later.
 *
 * Unlike a TCP socket, an unconnected UDP socket has no one peer to judge
 * up front, so 'auto' probes whatever the destination: on loopback that is
 * at most probeSends copied sends per reprobe. The policy is made at the
 * first send that may go zero-copy; smaller ones before it are only counted.
 */
import { DEFAULT_MIN_BYTES, ZeroCopyPolicy, describeNewPolicy, type ZeroCopyMode, type ZeroCopyPolicyOptions, type ZeroCopyStats } from '../net/zc-policy';

export interface UdpZeroCopyOptions {
  mode: ZeroCopyMode;
  minBytes: number | undefined;
  probeSends: number | undefined;
}

export class UdpZeroCopy {
  readonly #policyOptions: ZeroCopyPolicyOptions;
  readonly #minBytes: number;
  readonly #always: boolean;
  #policy: ZeroCopyPolicy | null = null;
  #earlySends = 0;
  #earlyBytes = 0;

  /** `capable`: the ring has a zero-copy sendmsg (RingCapabilities.zeroCopySendmsg). */
  constructor(o: UdpZeroCopyOptions, capable: boolean) {
    this.#minBytes = o.minBytes ?? DEFAULT_MIN_BYTES;
    this.#always = o.mode === 'always' && capable;
    this.#policyOptions = {
      mode: capable ? o.mode : 'auto',
      minBytes: this.#minBytes,
      ...(o.probeSends !== undefined ? { probeSends: o.probeSends } : {}),
      ...(capable
        ? {}
        : {
            startPlain: `this ring has no zero-copy sendmsg (IORING_OP_SENDMSG_ZC): plain sends${o.mode === 'always' ? " (zeroCopy 'always' does not apply)" : ''}`,
            reprobeAfter: Infinity,
          }),
    };
  }

  /** Whether a send of `len` bytes goes zero-copy (and counts it). */
  use(len: number): boolean {
    if (this.#policy === null) {
      if (len < this.#minBytes && !this.#always) {
        this.#earlySends++;
        this.#earlyBytes += len;
        return false;
      }
      this.#policy = new ZeroCopyPolicy(this.#policyOptions);
      this.#policy.countPlain(this.#earlySends, this.#earlyBytes);
    }
    return this.#policy.useZeroCopy(len);
  }

  /** What use(len) would answer now, without counting or changing anything. */
  wouldUse(len: number): boolean {
    if (this.#policy === null) return this.#always || (len >= this.#minBytes && this.#policyOptions.startPlain === undefined && this.#policyOptions.mode !== 'never');
    return this.#policy.wouldUseZeroCopy(len);
  }

  /** Zero-copy is proven (the kernel did not copy) or forced: worth reshaping a batch for. */
  get settled(): boolean {
    const state = this.#policy?.state;
    return state === 'zero-copy' || state === 'forced-zero-copy' || (state === undefined && this.#always);
  }

  /** Counts a send that could not go zero-copy whatever the policy says (too many pieces for the kernel). */
  plain(len: number): void {
    if (this.#policy !== null) this.#policy.countPlain(1, len);
    else {
      this.#earlySends++;
      this.#earlyBytes += len;
    }
  }

  /** A zero-copy send's notification: the kernel sent `len` bytes, copying them or not. */
  notified(len: number, copied: boolean): void {
    this.#policy?.onNotification(len, copied);
  }

  /** A zero-copy send failed (`what`: an errno code): plain sends from now on ('auto' probes again later). */
  failed(what: string): void {
    this.#policy?.onSendError(what);
  }

  /** The policy's figures, or those it would start with: never makes it. */
  stats(): ZeroCopyStats {
    return this.#policy !== null ? this.#policy.stats() : describeNewPolicy(this.#policyOptions, this.#earlySends, this.#earlyBytes);
  }
}
