/**
 * Admission limits for a proxy's client connections: open connections per
 * client address, and connection rates (token buckets) overall and per client
 * address. A refused connection is closed at once by the caller; this only
 * decides and counts. Settings can change at any time (a reload): buckets
 * keep their tokens, capped at the new burst.
 */

export interface LimitSettings {
  /** open connections per client address (0: unlimited) */
  maxConnectionsPerClient: number;
  /** new connections per second overall (0: unlimited); `rateBurst` may come at once */
  rateLimit: number;
  rateBurst: number;
  /** new connections per second per client address (0: unlimited) */
  clientRateLimit: number;
  clientRateBurst: number;
}

export type LimitRefusal = 'rate' | 'perClient' | 'clientRate';

class Bucket {
  tokens: number;
  at: number;
  constructor(burst: number, now: number) {
    this.tokens = burst;
    this.at = now;
  }
  /** Refills for the time passed, then takes one token if there is one. */
  take(rate: number, burst: number, now: number): boolean {
    this.tokens = Math.min(burst, this.tokens + ((now - this.at) / 1000) * rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
  /** Full again: an entry that can go (a fresh one would be the same). */
  full(rate: number, burst: number, now: number): boolean {
    return this.tokens + ((now - this.at) / 1000) * rate >= burst;
  }
}

/** The burst a rate gets when none is given: one second's worth, at least one connection. */
export function defaultBurst(rate: number): number {
  return Math.max(1, Math.ceil(rate));
}

export class ConnectionLimiter {
  #s: LimitSettings;
  #global: Bucket;
  #clients = new Map<string, Bucket>();
  #open = new Map<string, number>();
  #sweep: NodeJS.Timeout | null = null;
  readonly refused: Record<LimitRefusal, number> = { rate: 0, perClient: 0, clientRate: 0 };

  constructor(settings: LimitSettings) {
    this.#s = settings;
    this.#global = new Bucket(settings.rateBurst, performance.now());
  }

  configure(settings: LimitSettings): void {
    this.#s = settings;
    if (settings.clientRateLimit === 0) this.#clients.clear();
  }

  /** At accept, before the client's address is final (a PROXY header may change it). */
  admitGlobal(): LimitRefusal | null {
    const s = this.#s;
    if (s.rateLimit > 0 && !this.#global.take(s.rateLimit, s.rateBurst, performance.now())) return this.#refuse('rate');
    return null;
  }

  /** Once the client's address is known; on null the caller must release(address) when the connection ends. */
  admitClient(address: string): LimitRefusal | null {
    const s = this.#s;
    const open = this.#open.get(address) ?? 0;
    if (s.maxConnectionsPerClient > 0 && open >= s.maxConnectionsPerClient) return this.#refuse('perClient');
    if (s.clientRateLimit > 0) {
      const now = performance.now();
      let b = this.#clients.get(address);
      if (!b) {
        b = new Bucket(s.clientRateBurst, now);
        this.#clients.set(address, b);
        this.#startSweep();
      }
      if (!b.take(s.clientRateLimit, s.clientRateBurst, now)) return this.#refuse('clientRate');
    }
    this.#open.set(address, open + 1);
    return null;
  }

  release(address: string): void {
    const n = (this.#open.get(address) ?? 0) - 1;
    if (n > 0) this.#open.set(address, n);
    else this.#open.delete(address);
  }

  /** Client addresses with a connection open, and with a rate bucket (memory the limits hold). */
  get tracked(): { open: number; buckets: number } {
    return { open: this.#open.size, buckets: this.#clients.size };
  }

  close(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  #refuse(why: LimitRefusal): LimitRefusal {
    this.refused[why]++;
    return why;
  }

  // Buckets of clients that stopped connecting are dropped once full again, so memory follows the
  // clients of the last few seconds, not every address ever seen.
  #startSweep(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(() => {
      const s = this.#s;
      const now = performance.now();
      for (const [k, b] of this.#clients) if (b.full(s.clientRateLimit, s.clientRateBurst, now)) this.#clients.delete(k);
      if (this.#clients.size === 0 && this.#sweep) {
        clearInterval(this.#sweep);
        this.#sweep = null;
      }
    }, 5000);
    this.#sweep.unref();
  }
}
