/**
 * A socket's zero-copy decisions: which of its sends go zero-copy (SEND_ZC,
 * or MSG_ZEROCOPY on a ring without it), by its ZeroCopyPolicy
 * (zc-policy.ts). The policy is made at the first send that may go
 * zero-copy, when the peer's address is known; small sends before it are
 * only counted, so a socket that never sends much never makes one, and
 * stats() describes the policy without making it.
 *
 * No #private methods here: each class with them costs every socket a
 * field (V8's class brand), and 10,000 idle sockets pay for each.
 */
import type { IoRing } from '../ring/io-ring';
import { isLocalAddress } from './address';
import { Flag } from './socket-core';
import { ReceivingSocket } from './socket-receive';
import type { MaioSocketOptions } from './socket';
import { totals } from './stats';
import { DEFAULT_MIN_BYTES, ZeroCopyPolicy, describeNewPolicy, type ZeroCopyPolicyOptions, type ZeroCopyStats } from './zc-policy';

export type SocketZeroCopyStats = ZeroCopyStats & { zeroCopyBytesSent: number; copiedBytesReported: number };

export abstract class ZeroCopySocket extends ReceivingSocket {
  /** small sends counted before the policy exists (useZeroCopy) */
  #earlyPlainSends = 0;
  #earlyPlainBytes = 0;

  abstract get remoteAddress(): string | undefined;
  protected abstract peekRemoteAddress(): string | undefined;

  /**
   * Whether a send of `len` bytes goes zero-copy. Below zeroCopyMinBytes the
   * answer is no in every mode but 'always', so a socket that only makes
   * small sends never builds its policy (nor looks up its peer's address).
   */
  protected useZeroCopy(len: number): boolean {
    const r = this.rare;
    if (r === null || r.policy === null) {
      const o = this.opts;
      if (len < (o.zeroCopyMinBytes ?? DEFAULT_MIN_BYTES) && o.zeroCopy !== 'always') {
        this.#earlyPlainSends++;
        this.#earlyPlainBytes += len;
        return false;
      }
    }
    return this.zeroCopyPolicy().useZeroCopy(len);
  }

  /** A zero-copy send's notification: the kernel sent `len` bytes, copying them or not. */
  protected zeroCopyNotified(len: number, copied: boolean): void {
    this.zeroCopyPolicy().onNotification(len, copied);
    if (copied) {
      this.rareState().zcCopiedBytes += len;
      totals.zeroCopyCopiedBytes += len;
    }
  }

  /** A zero-copy send failed (`what`: an errno code, or 'a short send'): plain sends from now on. */
  protected zeroCopyFailed(what: string): void {
    this.zeroCopyPolicy().onSendError(what);
  }

  /** Bytes a zero-copy send moved. */
  protected zeroCopySent(bytes: number): void {
    this.rareState().zcSentBytes += bytes;
    totals.zeroCopyBytes += bytes;
  }

  protected zeroCopyPolicy(): ZeroCopyPolicy {
    const r = this.rareState();
    if (r.policy !== null) return r.policy;
    const policy = (r.policy = new ZeroCopyPolicy(policyOptions(this.opts, () => this.remoteAddress, this.ring, this.flag(Flag.Unix))));
    policy.countPlain(this.#earlyPlainSends, this.#earlyPlainBytes);
    this.#earlyPlainSends = 0;
    this.#earlyPlainBytes = 0;
    return policy;
  }

  /** The policy's figures, or those it would start with: never makes it. */
  protected zeroCopyStats(): SocketZeroCopyStats {
    const r = this.rare;
    const policy = r?.policy;
    const z = policy ? policy.stats() : describeNewPolicy(policyOptions(this.opts, () => this.peekRemoteAddress(), this.ring, this.flag(Flag.Unix)), this.#earlyPlainSends, this.#earlyPlainBytes);
    return { ...z, zeroCopyBytesSent: r?.zcSentBytes ?? 0, copiedBytesReported: r?.zcCopiedBytes ?? 0 };
  }
}

/**
 * A socket's policy options: its zeroCopy* options, and plain from the start
 * for a peer on this host. A unix domain socket has no zero-copy send at all
 * (the kernel refuses SEND_ZC and MSG_ZEROCOPY on it): plain whatever the
 * mode, without probing.
 */
function policyOptions(o: MaioSocketOptions, peer: () => string | undefined, ring: IoRing, unix: boolean): ZeroCopyPolicyOptions {
  if (unix) {
    return {
      mode: 'auto',
      ...(o.zeroCopyMinBytes !== undefined ? { minBytes: o.zeroCopyMinBytes } : {}),
      startPlain: `a unix domain socket: the kernel has no zero-copy send for it, so plain sends${o.zeroCopy === 'always' ? " (zeroCopy 'always' does not apply)" : ''}`,
      reprobeAfter: Infinity,
    };
  }
  const mode = o.zeroCopy ?? 'auto';
  // the peer is looked up only where it decides (a system call for an accepted socket)
  const remoteAddress = mode === 'auto' && !o.zeroCopyProbeLocal ? peer() : undefined;
  const local = isLocalAddress(remoteAddress);
  const how = ring.capabilities.zeroCopySend === 'SEND_ZC' ? 'and SEND_ZC on loopback stalls the stream' : 'MSG_ZEROCOPY ones included';
  return {
    mode,
    ...(o.zeroCopyMinBytes !== undefined ? { minBytes: o.zeroCopyMinBytes } : {}),
    ...(o.zeroCopyProbeSends !== undefined ? { probeSends: o.zeroCopyProbeSends } : {}),
    ...(local
      ? {
          startPlain: `the peer ${remoteAddress} is on this host: local delivery copies zero-copy sends (${how}), so plain sends without probing`,
          reprobeAfter: Infinity,
        }
      : {}),
  };
}
