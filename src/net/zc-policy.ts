/**
 * Adaptive zero-copy: per socket, decide whether a send goes out as SEND_ZC.
 *
 * Zero-copy sends pay only when the kernel really avoids the copy (a real NIC).
 * On loopback and veth every packet is delivered locally and the kernel copies
 * the pages anyway, which makes SEND_ZC slower than a plain send (figures:
 * shared/kernel-facts.md and BENCHMARKS.md). The kernel says which happened: each SEND_ZC
 * notification carries IORING_NOTIF_USAGE_ZC_COPIED when it copied. So the
 * policy probes with zero-copy sends, watches the notifications, switches the
 * socket to plain sends when they come back copied, and probes again now and
 * then (routes change).
 */

export type ZeroCopyMode = 'auto' | 'always' | 'never';

export interface ZeroCopyPolicyOptions {
  /** 'auto' adapts; 'always' and 'never' force. Default 'auto'. */
  mode?: ZeroCopyMode;
  /** Smallest send that may go zero-copy (below it pinning costs more than a copy). */
  minBytes?: number;
  /** Notifications looked at before deciding. */
  probeSends?: number;
  /** In plain mode, eligible sends between two probes. */
  reprobeAfter?: number;
  /**
   * 'auto' only: start in plain mode for this reason, without probing (the
   * socket layer knows the route delivers locally). Infinity reprobeAfter
   * keeps it there.
   */
  startPlain?: string;
}

export type ZeroCopyState = 'probing' | 'zero-copy' | 'plain' | 'forced-zero-copy' | 'forced-plain';

export interface ZeroCopyStats {
  state: ZeroCopyState;
  /** Why the socket is in this state, in words. */
  reason: string;
  zcSends: number;
  zcBytes: number;
  /** Zero-copy sends whose notification said the kernel copied the bytes. */
  copiedSends: number;
  copiedBytes: number;
  /** Zero-copy sends the kernel really sent without a copy. */
  notCopiedSends: number;
  notCopiedBytes: number;
  plainSends: number;
  plainBytes: number;
  switches: number;
}

// Below ~10 KB MSG_ZEROCOPY does not pay (kernel docs); since 6.10 SEND_ZC breaks
// even around 3 KB. 16 KiB keeps us clearly on the paying side.
/** The default `zeroCopyMinBytes`: sends below it go plain in every mode but 'always'. */
export const DEFAULT_MIN_BYTES = 16 * 1024;
const DEFAULT_PROBE_SENDS = 8;
const DEFAULT_REPROBE_AFTER = 4096;

let policiesMade = 0;

/** @internal policies made on this thread so far (tests: stats() must not make one). */
export function zeroCopyPoliciesMade(): number {
  return policiesMade;
}

/** The state a new policy starts in, and why. */
function startState(mode: ZeroCopyMode, minBytes: number, probeSends: number, startPlain: string | undefined): [ZeroCopyState, string] {
  if (mode === 'always') return ['forced-zero-copy', 'zero-copy forced by the zeroCopy option'];
  if (mode === 'never') return ['forced-plain', 'plain sends forced by the zeroCopy option'];
  if (startPlain) return ['plain', startPlain];
  return ['probing', `probing: the first ${probeSends} sends of ${minBytes} bytes or more go zero-copy`];
}

/**
 * The stats a policy made now with `options` would report after counting
 * `plainSends` small sends (countPlain), without making it.
 */
export function describeNewPolicy(options: ZeroCopyPolicyOptions, plainSends: number, plainBytes: number): ZeroCopyStats {
  const mode = options.mode ?? 'auto';
  const probeSends = Math.max(1, options.probeSends ?? DEFAULT_PROBE_SENDS);
  const [state, reason] = startState(mode, options.minBytes ?? DEFAULT_MIN_BYTES, probeSends, options.startPlain);
  return {
    state, reason, zcSends: 0, zcBytes: 0, copiedSends: 0, copiedBytes: 0, notCopiedSends: 0,
    notCopiedBytes: 0, plainSends, plainBytes, switches: 0,
  };
}

export class ZeroCopyPolicy {
  readonly mode: ZeroCopyMode;
  readonly minBytes: number;
  readonly #probeSends: number;
  readonly #reprobeAfter: number;

  #state: ZeroCopyState;
  #reason: string;
  #windowSeen = 0;
  #windowCopied = 0;
  /** Eligible sends since the switch to plain. */
  #plainStreak = 0;
  /** Zero-copy sends issued in this probe whose notifications are still due. */
  #probeIssued = 0;
  readonly #stats = {
    zcSends: 0, zcBytes: 0, copiedSends: 0, copiedBytes: 0, notCopiedSends: 0,
    notCopiedBytes: 0, plainSends: 0, plainBytes: 0, switches: 0,
  };

  constructor(options: ZeroCopyPolicyOptions = {}) {
    this.mode = options.mode ?? 'auto';
    this.minBytes = options.minBytes ?? DEFAULT_MIN_BYTES;
    this.#probeSends = Math.max(1, options.probeSends ?? DEFAULT_PROBE_SENDS);
    this.#reprobeAfter = Math.max(1, options.reprobeAfter ?? DEFAULT_REPROBE_AFTER);
    [this.#state, this.#reason] = startState(this.mode, this.minBytes, this.#probeSends, options.startPlain);
    policiesMade++;
  }

  get state(): ZeroCopyState {
    return this.#state;
  }

  /** Decides one send of `length` bytes, and counts it. */
  useZeroCopy(length: number): boolean {
    const zc = this.#decide(length);
    if (zc) {
      this.#stats.zcSends++;
      this.#stats.zcBytes += length;
    } else {
      this.#stats.plainSends++;
      this.#stats.plainBytes += length;
    }
    return zc;
  }

  /**
   * What useZeroCopy(length) would answer now, without counting the send or
   * changing any state (a UDP socket shapes its batch by it first).
   */
  wouldUseZeroCopy(length: number): boolean {
    switch (this.#state) {
      case 'forced-zero-copy':
        return true;
      case 'forced-plain':
        return false;
      case 'zero-copy':
        return length >= this.minBytes;
      case 'probing':
        return length >= this.minBytes && this.#probeIssued < this.#probeSends;
      case 'plain':
        return length >= this.minBytes && this.#plainStreak + 1 >= this.#reprobeAfter;
    }
  }

  #decide(length: number): boolean {
    const zc = this.wouldUseZeroCopy(length);
    if (this.#state === 'plain' && length >= this.minBytes) {
      this.#plainStreak++;
      if (zc) this.#startProbe(`probing again after ${this.#reprobeAfter} plain sends`);
    }
    // Counted so that enough probes out wait for their notifications before more zero-copy.
    if (zc && this.#state === 'probing') this.#probeIssued++;
    return zc;
  }

  /**
   * Counts plain sends decided before the policy existed (below minBytes, in a
   * mode other than 'always': useZeroCopy would have said false and changed
   * no state). A socket makes its policy only at its first larger send.
   */
  countPlain(sends: number, bytes: number): void {
    this.#stats.plainSends += sends;
    this.#stats.plainBytes += bytes;
  }

  /** Feeds one zero-copy notification: did the kernel copy the `length` bytes anyway? */
  onNotification(length: number, copied: boolean): void {
    if (copied) {
      this.#stats.copiedSends++;
      this.#stats.copiedBytes += length;
    } else {
      this.#stats.notCopiedSends++;
      this.#stats.notCopiedBytes += length;
    }
    if (this.#state !== 'probing' && this.#state !== 'zero-copy') return;
    this.#windowSeen++;
    if (copied) this.#windowCopied++;
    if (this.#windowSeen < this.#probeSends) return;
    const c = this.#windowCopied;
    const seen = this.#windowSeen;
    this.#windowSeen = 0;
    this.#windowCopied = 0;
    this.#probeIssued = 0;
    // More than half copied: the route delivers locally (loopback, veth) or the
    // device cannot do scatter-gather; zero-copy only adds pinning and notifications.
    if (c * 2 > seen) {
      this.#switchTo('plain', `the kernel copied ${c} of ${seen} zero-copy sends (local delivery or no device support): plain sends are faster`);
      this.#plainStreak = 0;
    } else if (this.#state === 'probing') {
      this.#switchTo('zero-copy', `the kernel sent ${seen - c} of ${seen} zero-copy sends without copying`);
    }
  }

  /**
   * A zero-copy send failed for want of memory to pin (ENOMEM: the memlock
   * limit; ENOBUFS: optmem_max) or came back short: plain sends from now on
   * (in every mode: the kernel cannot do it); 'auto' probes again later.
   */
  onSendError(what: string): void {
    if (this.#state === 'plain' || this.#state === 'forced-plain') return;
    this.#switchTo('plain', `a zero-copy send failed (${what}): plain sends`);
    this.#plainStreak = 0;
  }

  #startProbe(reason: string): void {
    this.#switchTo('probing', reason);
    this.#windowSeen = 0;
    this.#windowCopied = 0;
    this.#probeIssued = 0;
  }

  #switchTo(state: ZeroCopyState, reason: string): void {
    if (state !== this.#state) this.#stats.switches++;
    this.#state = state;
    this.#reason = reason;
  }

  stats(): ZeroCopyStats {
    return { state: this.#state, reason: this.#reason, ...this.#stats };
  }
}
