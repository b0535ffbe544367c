/**
 * Upstreams named in DNS and resolved again as their records expire: A and
 * AAAA for `{ dns: name, port }`, SRV for `{ srv: '_service._proto.name' }`
 * (each target's A/AAAA, with the record's port, priority and weight).
 *
 * The next resolution is due when the shortest TTL of the answer runs out,
 * but never sooner than `minInterval` nor later than `maxInterval` (node's
 * resolver gives TTLs for A/AAAA only, so an SRV set follows its targets'
 * address TTLs). A failed resolution, or one that finds no address at all,
 * keeps the last good set and is counted; it is retried after minInterval,
 * doubling up to maxInterval while it keeps failing.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { TypedEmitter } from '../core/typed-events';

export interface DnsSettings {
  /** "ip" or "ip:port" ("[v6]:port") of the DNS servers to ask; empty: the system's (resolv.conf) */
  servers: string[];
  /** seconds: the shortest time between two resolutions of one name */
  minInterval: number;
  /** seconds: the longest time an answer is kept, whatever its TTL */
  maxInterval: number;
  /** ms before one query is retried (node's resolver: per try, 2 tries) */
  timeout: number;
}

export interface ResolvedTarget {
  host: string;
  port: number;
  weight: number;
  priority: number;
}

export type DnsSpec = { dns: string; port: number } | { srv: string };

export interface DnsWatcherEvents {
  /** a resolution gave a set different from the last one */
  change: [targets: ResolvedTarget[]];
  /** a resolution failed (or found nothing); the last good set stays */
  failure: [err: Error];
}

export function specKey(s: DnsSpec): string {
  return 'srv' in s ? `srv:${s.srv}` : `dns:${s.dns}:${s.port}`;
}

const sameSet = (a: ResolvedTarget[], b: ResolvedTarget[]) => a.length === b.length && a.every((t, i) => t.host === b[i]!.host && t.port === b[i]!.port && t.weight === b[i]!.weight && t.priority === b[i]!.priority);

export class DnsWatcher extends TypedEmitter<DnsWatcherEvents> {
  readonly key: string;
  readonly spec: DnsSpec;
  readonly settings: DnsSettings;
  /** the last good answer, sorted (empty until one came) */
  targets: ResolvedTarget[] = [];
  resolutions = 0;
  failures = 0;
  lastError = '';
  #resolver: Resolver;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #failStreak = 0;
  #first: Promise<void>;

  constructor(spec: DnsSpec, settings: DnsSettings, seed: ResolvedTarget[] = []) {
    super();
    this.spec = spec;
    this.key = specKey(spec);
    this.settings = settings;
    this.targets = seed;
    this.#resolver = new Resolver({ timeout: settings.timeout, tries: 2 });
    if (settings.servers.length > 0) this.#resolver.setServers(settings.servers);
    this.#first = this.#run();
  }

  /** Resolves after the first resolution (good or failed). */
  ready(): Promise<void> {
    return this.#first;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#resolver.cancel();
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    const { minInterval, maxInterval } = this.settings;
    let next: number;
    try {
      const { targets, ttl } = await this.#resolve();
      if (this.#stopped) return;
      if (targets.length === 0) throw new Error(`${this.key}: the answer has no address`);
      this.resolutions++;
      this.#failStreak = 0;
      this.lastError = '';
      next = Math.min(maxInterval, Math.max(minInterval, ttl));
      if (!sameSet(targets, this.targets)) {
        this.targets = targets;
        this.emit('change', targets);
      }
    } catch (err) {
      if (this.#stopped) return;
      this.failures++;
      this.#failStreak++;
      const e = err as NodeJS.ErrnoException;
      this.lastError = e.code ? `${e.code} (${this.key})` : e.message;
      next = Math.min(maxInterval, minInterval * 2 ** (this.#failStreak - 1));
      this.emit('failure', new Error(this.lastError));
    }
    this.#timer = setTimeout(() => void this.#run(), Math.max(1, next * 1000));
    this.#timer.unref();
  }

  /** Every address of the spec, sorted, and the shortest TTL seen (seconds). */
  async #resolve(): Promise<{ targets: ResolvedTarget[]; ttl: number }> {
    let ttl = Infinity;
    const addresses = async (name: string): Promise<string[]> => {
      if (isIP(name)) return [name];
      // One family may have no records (ENODATA) while the other has: only both failing fails.
      const got = await Promise.allSettled([this.#resolver.resolve4(name, { ttl: true }), this.#resolver.resolve6(name, { ttl: true })]);
      const out: string[] = [];
      let firstErr: unknown = null;
      for (const g of got) {
        if (g.status === 'rejected') {
          firstErr ??= g.reason;
          continue;
        }
        for (const r of g.value) {
          out.push(r.address);
          ttl = Math.min(ttl, r.ttl);
        }
      }
      if (out.length === 0 && firstErr) throw firstErr;
      return out;
    };
    const targets: ResolvedTarget[] = [];
    if ('dns' in this.spec) {
      for (const a of await addresses(this.spec.dns)) targets.push({ host: a, port: this.spec.port, weight: 1, priority: 0 });
    } else {
      const srv = await this.#resolver.resolveSrv(this.spec.srv);
      // "." as the only target: the service is decidedly not available (RFC 2782).
      const records = srv.filter((r) => r.name !== '' && r.name !== '.');
      const each = await Promise.all(records.map((r) => addresses(r.name).catch(() => [] as string[])));
      records.forEach((r, i) => {
        for (const a of each[i]!) targets.push({ host: a, port: r.port, weight: r.weight, priority: r.priority });
      });
    }
    targets.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
    return { targets, ttl: ttl === Infinity ? this.settings.minInterval : ttl };
  }
}
