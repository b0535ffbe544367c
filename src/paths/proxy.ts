/**
 * A TCP proxy on maio sockets: each accepted connection is forwarded to one
 * upstream with forwardBoth() (pool buffers passed on as they are, see
 * forward.ts). Upstreams are picked round-robin (weighted) or by least
 * connections among the healthy ones; a failed connect marks the upstream
 * down and tries the next (failover); health checks (a TCP connect every
 * `healthInterval` s) bring it back, or without them one client connect tried
 * on it again every `retryDown` s (then it goes first; on failure the client
 * fails over). close() stops accepting and resolves when every open
 * connection has ended (graceful drain).
 *
 * For production (src/gateway/, docs/GATEWAY.md): reload() swaps the
 * configuration for new connections while open ones keep theirs; dns/srv
 * upstreams follow their DNS answers; PROXY protocol headers go to upstreams
 * and are read from a balancer in front; admission limits per client and
 * per second. A connection's client is the one its PROXY header names.
 */
import type { AddressInfo } from 'node:net';
import { ClosedError, ConfigError, InvalidAddressError } from '../core/errors';
import { TypedEmitter } from '../core/typed-events';
import { connect, createServer, type Server } from '../net/server';
import type { Socket } from '../net/socket';
import { readProxyHeader } from '../gateway/accept-header';
import { DnsWatcher, specKey, type ResolvedTarget } from '../gateway/dns-upstreams';
import { ConnectionLimiter, type LimitRefusal } from '../gateway/limits';
import { dnsSpecOf, fmtHostPort as fmt, resolveProxyOptions, unixPathOf, sameDnsSettings, type HostPort, type ProxyOptions, type ResolvedProxyOptions, type SendProxy, type UpstreamSpec } from '../gateway/proxy-options';
import { addressesOf, encodeProxyHeader, encodeUnixProxyHeader, unmapV4, type ProxyAddresses } from '../gateway/proxy-protocol';
import { unixSockaddr } from '../net/unix-address';
import { forwardBoth, type Relay } from './forward';
import { writeMetric, type MetricRows } from './metrics-text';

export type { HostPort, ProxyOptions, SendProxy, UnixPath, UpstreamSpec } from '../gateway/proxy-options';
export type { StaticUpstreamSpec, UnixUpstreamSpec, DnsUpstreamSpec, SrvUpstreamSpec } from '../gateway/proxy-options';

export interface UpstreamStats extends HostPort {
  /** where it came from: 'static', or the dns:/srv: spec that resolved to it */
  source: string;
  weight: number;
  priority: number;
  /** no longer in the configuration or the DNS answer: only its open connections use it */
  retired: boolean;
  healthy: boolean;
  active: number;
  connections: number;
  connectFailures: number;
  bytesUp: number;
  bytesDown: number;
}

export interface GatewayStats {
  reloads: number;
  reloadsRefused: number;
  /** why the last reload was refused ('' after one was taken) */
  lastReloadError: string;
  proxyHeaders: { sent: number; accepted: number; malformed: number; timedOut: number };
  /** client connections closed at once, by the limit that closed them */
  refused: { maxConnections: number; rate: number; perClient: number; clientRate: number };
  /** client addresses with state in the per-client limits */
  clientsTracked: { open: number; buckets: number };
  dns: { source: string; resolutions: number; failures: number; upstreams: number; lastError: string }[];
}

/** A Prometheus label value: backslash, quote and newline escaped. */
const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export interface ConnectionStats {
  id: number;
  client: string;
  upstream: string;
  bytesUp: number;
  bytesDown: number;
  /** the path each direction takes now ('auto' moves bulk directions to splice) */
  modeUp: 'buffers' | 'splice';
  modeDown: 'buffers' | 'splice';
  since: number;
}

/** "host:port", "[v6]:port", ":port" / "port" (host 127.0.0.1), or "unix:PATH" (a unix domain socket). */
export function parseHostPort(s: unknown, what = 'address'): HostPort {
  if (typeof s !== 'string' || s.length === 0) throw new InvalidAddressError(`${what} must be HOST:PORT, got ${JSON.stringify(s)}`);
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    try {
      unixSockaddr(path);
    } catch (err) {
      throw new InvalidAddressError(`${what} '${s}': ${(err as Error).message}`);
    }
    return { host: '', port: 0, path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s) ?? /^()()(\d{1,5})$/.exec(s);
  if (!m) throw new InvalidAddressError(`${what} must be HOST:PORT, got '${s}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new InvalidAddressError(`${what} '${s}': port must be in 0..65535`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** One upstream of a Proxy, its health and counters (what `proxy.upstreams` lists). */
export class Upstream implements UpstreamStats {
  healthy = true;
  active = 0;
  connections = 0;
  connectFailures = 0;
  bytesUp = 0;
  bytesDown = 0;
  lastError = '';
  /** when it was marked down, or last retried while down (performance.now() ms) */
  downAt = 0;
  retired = false;
  /** smooth weighted round-robin: this upstream's running score */
  current = 0;
  constructor(
    readonly host: string,
    readonly port: number,
    /** 'static', or the dns:/srv: spec it was resolved from */
    readonly source: string,
    public weight: number,
    public priority: number,
    public sendProxy: SendProxy,
    /** a unix domain socket upstream: its path (host and port are then '' and 0) */
    readonly path?: string,
  ) {}
}

/** A unix listener's address in the AddressInfo shape the proxy's API uses. */
const unixInfo = (path: string): AddressInfo => ({ address: path, family: 'unix', port: 0 });

/** connect() to an upstream: its path, or its host and port. */
const dial = (u: Upstream, o: { timeout: number; allowHalfOpen?: boolean }): Socket =>
  connect(u.path !== undefined ? { path: u.path, ...o } : { host: u.host, port: u.port, ...o });

interface Conn {
  id: number;
  client: Socket;
  /** the client's address, read at accept (a closed socket has none) */
  peer: string;
  server: Socket | null;
  upstream: Upstream | null;
  relay: Relay | null;
  since: number;
  lastBytes: number;
  idleTimer: NodeJS.Timeout | null;
  /** closed by the idle timeout (its error is not counted as a connection error) */
  idle: boolean;
  /** the client as an accepted PROXY header named it (null: the socket's own addresses count) */
  addrs: ProxyAddresses | null;
  /** the address its per-client limits are counted on ('' until admitted) */
  limitKey: string;
  /** bytes that came after an accepted PROXY header: sent upstream first */
  early: Uint8Array | null;
  /** the configuration it started under (a reload does not change a running connection) */
  o: ResolvedProxyOptions;
  cancelHeader: (() => void) | null;
}

/** An address an upstream list entry stands for: a DNS answer's, or a static one (maybe a unix path). */
type Target = ResolvedTarget & { path?: string };

/** One entry of the configuration's upstream list and what it stands for now. */
interface Source {
  key: string;
  spec: UpstreamSpec;
  upstreams: Upstream[];
  watcher: DnsWatcher | null;
}

/**
 * Events: 'listening' (AddressInfo), 'upstream' (upstream, healthy: boolean)
 * when a health state changes, 'connectionError' (err, client address) when
 * no upstream took a connection, 'connectionClose' (ConnectionStats, err |
 * null) when a forwarded connection has ended (err: the reset or error that
 * ended it, or the idle timeout's ClosedError), 'error' (listen and accept
 * errors; emitted only if someone listens: listen() rejects anyway).
 */
/** What a Proxy emits: each event with its listener's arguments. */
export interface ProxyEvents {
  listening: [address: AddressInfo];
  /** an upstream's health changed */
  upstream: [upstream: Upstream, healthy: boolean];
  /** no upstream took the connection from `client` (host:port) */
  connectionError: [err: Error, client: string];
  /** a forwarded connection ended; err: the reset, error or idle timeout that ended it */
  connectionClose: [info: ConnectionStats, err: Error | null];
  /** close() was called and the last connection has ended */
  drained: [];
  /** listen and accept errors, only while someone listens */
  error: [err: Error];
  /** reload() took a new configuration */
  reload: [options: ProxyOptions];
  /** a dns/srv upstream's addresses changed (the new set) */
  resolved: [source: string, upstreams: Upstream[]];
  /** a dns/srv resolution failed; the last good set stays */
  resolveError: [source: string, err: Error];
  /** a client connection was closed at accept: a limit, or a bad PROXY header */
  refused: [reason: LimitRefusal | 'maxConnections' | 'proxyHeader', client: string];
}

export class Proxy extends TypedEmitter<ProxyEvents> {
  #o: ResolvedProxyOptions;
  #options: ProxyOptions;
  #sources: Source[] = [];
  #upstreams: Upstream[] = [];
  /** removed by a reload or a DNS change while connections still use them */
  #retired = new Set<Upstream>();
  #limiter: ConnectionLimiter;
  #server: Server | null = null;
  #conns = new Map<number, Conn>();
  #nextId = 1;
  #rr = 0;
  #health: NodeJS.Timeout | null = null;
  #closing = false;
  #checking: Promise<boolean[]> | null = null;
  #refusedMax = 0;
  readonly totals = { accepted: 0, rejected: 0, failed: 0, completed: 0, errors: 0, idleClosed: 0, bytesUp: 0, bytesDown: 0 };
  /** reloads and PROXY headers (stats().gateway) */
  #g = { reloads: 0, reloadsRefused: 0, lastReloadError: '', headersSent: 0, headersAccepted: 0, headersMalformed: 0, headersTimedOut: 0 };

  constructor(options: ProxyOptions) {
    super();
    this.#o = resolveProxyOptions(options);
    this.#options = options;
    this.#limiter = new ConnectionLimiter(this.#o.limits);
    this.#setSources(this.#o);
  }

  /** The upstreams new connections are balanced over (dns/srv upstreams: their current addresses). */
  get upstreams(): Upstream[] {
    return this.#upstreams;
  }

  /** The options in force (the last accepted by the constructor or reload()). */
  get options(): ProxyOptions {
    return this.#options;
  }

  /**
   * Takes a new configuration without dropping a connection: open connections
   * keep their upstream and the settings they started with; new ones get the
   * new upstreams, limits, timeouts and PROXY protocol settings. `listen` must
   * stay the same (a new address needs a new process). A configuration that
   * is refused (or a function that throws instead of giving one) leaves the
   * running one as it is and throws ConfigError naming the problem. Both
   * outcomes are counted (stats().gateway).
   */
  reload(next: ProxyOptions | (() => ProxyOptions)): void {
    let o: ResolvedProxyOptions;
    let options: ProxyOptions;
    try {
      options = typeof next === 'function' ? next() : next;
      o = resolveProxyOptions(options);
      if (fmt(o.listen) !== fmt(this.#o.listen)) {
        throw new InvalidAddressError(`listen cannot change on reload (${fmt(this.#o.listen)} -> ${fmt(o.listen)}); restart the proxy for a new address`);
      }
    } catch (err) {
      this.#g.reloadsRefused++;
      this.#g.lastReloadError = (err as Error).message;
      throw err instanceof ConfigError ? err : new ConfigError((err as Error).message, { cause: err });
    }
    const healthChanged = o.healthInterval !== this.#o.healthInterval;
    this.#o = o;
    this.#options = options;
    this.#limiter.configure(o.limits);
    this.#setSources(o);
    if (healthChanged && this.#server) this.#startHealth();
    this.#g.reloads++;
    this.#g.lastReloadError = '';
    this.emit('reload', options);
  }

  /** Builds the sources of `o.upstreams`, keeping the upstreams (health, counters) and DNS watchers that stay. */
  #setSources(o: ResolvedProxyOptions): void {
    const old = new Map(this.#sources.map((s) => [s.key, s]));
    const sources: Source[] = [];
    const seen = new Set<string>();
    for (const spec of o.upstreams) {
      const d = dnsSpecOf(spec);
      const key = d ? specKey(d) : `static:${fmt(spec as HostPort)}`;
      if (seen.has(key)) continue; // listed twice: once is enough
      seen.add(key);
      const prev = old.get(key);
      old.delete(key);
      const src: Source = { key, spec, upstreams: prev?.upstreams ?? [], watcher: null };
      if (d) {
        const keep = prev?.watcher && sameDnsSettings(prev.watcher.settings, o.dns) ? prev.watcher : null;
        if (prev?.watcher && !keep) prev.watcher.stop();
        src.watcher = keep ?? this.#watch(src, o, prev?.watcher?.targets ?? []);
        this.#applyTargets(src, src.watcher.targets, o);
      } else {
        const h = spec as HostPort & { weight?: number };
        const path = unixPathOf(h);
        const t: Target = path !== undefined ? { host: '', port: 0, path, weight: h.weight ?? 1, priority: 0 } : { host: h.host, port: h.port, weight: h.weight ?? 1, priority: 0 };
        this.#applyTargets(src, [t], o);
      }
      sources.push(src);
    }
    for (const gone of old.values()) {
      gone.watcher?.stop();
      for (const u of gone.upstreams) this.#retire(u);
    }
    this.#sources = sources;
    this.#rebuild();
  }

  #watch(src: Source, o: ResolvedProxyOptions, seed: ResolvedTarget[]): DnsWatcher {
    const w = new DnsWatcher(dnsSpecOf(src.spec)!, o.dns, seed);
    w.on('change', (targets) => {
      if (!this.#sources.includes(src)) return;
      this.#applyTargets(src, targets, this.#o);
      this.#rebuild();
      this.emit('resolved', src.key, src.upstreams);
    });
    w.on('failure', (err) => this.emit('resolveError', src.key, err));
    return w;
  }

  /** A source's upstreams for `targets`: same address, same Upstream object; the others retire. */
  #applyTargets(src: Source, targets: Target[], o: ResolvedProxyOptions): void {
    const byAddr = new Map(src.upstreams.map((u) => [fmt(u), u]));
    const next: Upstream[] = [];
    const taken = new Set<string>();
    const sendProxy = src.spec.sendProxy ?? o.sendProxy;
    const weight = 'srv' in src.spec ? null : (src.spec.weight ?? 1);
    for (const t of targets) {
      const k = fmt(t);
      if (taken.has(k)) continue; // two SRV records naming one address
      taken.add(k);
      let u = byAddr.get(k);
      byAddr.delete(k);
      if (!u) {
        u = (this.#retired.size > 0 ? this.#retiredMatch(src.key, k) : undefined) ?? new Upstream(t.host, t.port, src.key.startsWith('static:') ? 'static' : src.key, 1, 0, false, t.path);
        u.retired = false;
        this.#retired.delete(u);
      }
      // SRV weight 0: "a very small chance" (RFC 2782), not never.
      u.weight = weight ?? (t.weight > 0 ? t.weight : 0.01);
      u.priority = t.priority;
      u.sendProxy = sendProxy;
      next.push(u);
    }
    for (const u of byAddr.values()) this.#retire(u);
    src.upstreams = next;
  }

  #retiredMatch(source: string, addr: string): Upstream | undefined {
    const want = source.startsWith('static:') ? 'static' : source;
    for (const u of this.#retired) if (u.source === want && fmt(u) === addr) return u;
    return undefined;
  }

  #retire(u: Upstream): void {
    u.retired = true;
    if (u.active > 0) this.#retired.add(u);
  }

  #rebuild(): void {
    this.#upstreams = this.#sources.flatMap((s) => s.upstreams);
  }

  /** Resolves once every dns/srv upstream has had its first answer (or failure). */
  resolved(): Promise<void> {
    return Promise.all(this.#sources.map((s) => s.watcher?.ready())).then(() => undefined);
  }

  /**
   * Starts listening (after the first DNS answers of dns/srv upstreams); resolves with the bound
   * address ({ address: the path, family: 'unix', port: 0 } on a unix socket).
   */
  async listen(): Promise<AddressInfo> {
    await this.resolved();
    const server = createServer({ allowHalfOpen: true }, (s) => this.#onConnection(s));
    this.#server = server;
    let addr: AddressInfo;
    const at = this.#o.listen;
    try {
      addr = at.path !== undefined ? unixInfo(await server.listenAsync({ path: at.path })) : await server.listenAsync(at.port, at.host);
    } catch (err) {
      this.#server = null;
      throw err;
    }
    // Accept errors after that: for whoever listens (an unheard 'error' would throw).
    server.on('error', (err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    this.#startHealth();
    this.emit('listening', addr);
    return addr;
  }

  #startHealth(): void {
    if (this.#health) clearInterval(this.#health);
    this.#health = null;
    if (this.#o.healthInterval > 0) {
      this.#health = setInterval(() => void this.checkHealth(), this.#o.healthInterval * 1000);
      this.#health.unref();
    }
  }

  address(): AddressInfo | null {
    const a = this.#server?.address() ?? null;
    return typeof a === 'string' ? unixInfo(a) : a;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** One connect per upstream; updates and returns their health. A check in progress is shared, not repeated. */
  checkHealth(): Promise<boolean[]> {
    this.#checking ??= this.#checkHealth().finally(() => (this.#checking = null));
    return this.#checking;
  }

  #checkHealth(): Promise<boolean[]> {
    return Promise.all(
      this.upstreams.map(
        (u) =>
          new Promise<boolean>((resolve) => {
            let s: Socket;
            try {
              s = dial(u, { timeout: this.#o.connectTimeout });
            } catch (err) {
              this.#setHealth(u, false, (err as Error).message);
              return resolve(false);
            }
            s.on('connect', () => {
              if (u.sendProxy) {
                // A LOCAL (v2) or UNKNOWN (v1) header: to a backend that requires the PROXY
                // protocol the check is a well-formed connection, not a broken header.
                s.end(encodeProxyHeader(u.sendProxy, null));
                setTimeout(() => s.destroy(), 1000).unref();
              } else {
                s.destroy();
              }
              this.#setHealth(u, true, '');
              resolve(true);
            });
            s.on('error', (err: Error) => {
              this.#setHealth(u, false, err.message);
              resolve(false);
            });
          }),
      ),
    );
  }

  #setHealth(u: Upstream, healthy: boolean, why: string): void {
    u.lastError = why;
    if (!healthy) u.downAt = performance.now();
    if (u.healthy === healthy) return;
    u.healthy = healthy;
    this.emit('upstream', u, healthy);
  }

  /** Upstreams to try, in order: the balanced pick first, then the other healthy ones, then the rest. */
  #order(): Upstream[] {
    const ups = this.upstreams;
    // No health checks: a down upstream is tried again by one client every retryDown s (it
    // would otherwise stay down for good while another one works).
    if (this.#o.healthInterval === 0 && this.#o.retryDown > 0) {
      const now = performance.now();
      const due = ups.find((u) => !u.healthy && now - u.downAt >= this.#o.retryDown * 1000);
      if (due) {
        due.downAt = now;
        return [due, ...ups.filter((u) => u !== due && u.healthy), ...ups.filter((u) => u !== due && !u.healthy)];
      }
    }
    const healthy = ups.filter((u) => u.healthy);
    let first: Upstream | undefined;
    if (healthy.length > 0) {
      // SRV priorities: only the best (lowest) priority that has a healthy upstream takes new connections.
      const best = healthy.reduce((p, u) => Math.min(p, u.priority), Infinity);
      const pool = healthy.filter((u) => u.priority === best);
      if (this.#o.balance === 'least-connections') first = pool.reduce((a, b) => (b.active / b.weight < a.active / a.weight ? b : a));
      else if (pool.every((u) => u.weight === pool[0]!.weight)) first = pool[this.#rr++ % pool.length];
      else {
        // Smooth weighted round-robin: each pick adds every weight to its score, the top score goes and pays the total.
        let total = 0;
        for (const u of pool) {
          u.current += u.weight;
          total += u.weight;
          if (!first || u.current > first.current) first = u;
        }
        first!.current -= total;
      }
    }
    const rest = [...healthy.filter((u) => u !== first), ...ups.filter((u) => !u.healthy)];
    return first ? [first, ...rest] : rest;
  }

  #refuse(client: Socket, reason: LimitRefusal | 'maxConnections' | 'proxyHeader', who: string): void {
    this.totals.rejected++;
    if (reason === 'maxConnections') this.#refusedMax++;
    client.on('error', () => {});
    client.destroy();
    this.emit('refused', reason, who);
  }

  #onConnection(client: Socket): void {
    const o = this.#o;
    // A unix client has no address: it is 'unix' (one client to the per-client limits).
    const peer = client.remoteAddress === undefined ? 'unix' : `${client.remoteAddress}:${client.remotePort}`;
    if (this.#closing || this.#conns.size >= o.maxConnections) return this.#refuse(client, 'maxConnections', peer);
    const rated = this.#limiter.admitGlobal();
    if (rated) return this.#refuse(client, rated, peer);
    const c: Conn = {
      id: this.#nextId++,
      client,
      peer,
      server: null,
      upstream: null,
      relay: null,
      since: Date.now(),
      lastBytes: 0,
      idleTimer: null,
      idle: false,
      addrs: null,
      limitKey: '',
      early: null,
      o,
      cancelHeader: null,
    };
    this.#conns.set(c.id, c);
    // Until the upstream is connected, arriving bytes wait in client's receive buffers (its read quota bounds them).
    const early = (err: Error) => this.#end(c, err);
    client.on('error', early);
    client.on('close', () => {
      if (!c.relay) this.#end(c, null);
    });
    if (!o.acceptProxy) return this.#admitted(c, early);
    c.cancelHeader = readProxyHeader(client, { timeout: o.acceptProxyTimeout, maxLength: o.acceptProxyMaxBytes }, (r) => {
      c.cancelHeader = null;
      if ('error' in r) {
        if (r.timedOut) this.#g.headersTimedOut++;
        else this.#g.headersMalformed++;
        this.emit('refused', 'proxyHeader', `${c.peer} (${r.error.message})`);
        this.totals.rejected++;
        client.destroy();
        return this.#end(c, null);
      }
      this.#g.headersAccepted++;
      // LOCAL, UNKNOWN or a family this proxy does not relay: the connection's own addresses stay.
      const a = r.header.command === 'proxy' ? r.header.addresses : null;
      if (a) {
        c.addrs = a;
        c.peer = fmt({ host: a.sourceAddress, port: a.sourcePort });
      }
      if (r.rest.length > 0) c.early = r.rest;
      this.#admitted(c, early);
    });
  }

  /** The client's address is final: per-client limits, then the upstreams. */
  #admitted(c: Conn, early: (err: Error) => void): void {
    const key = c.addrs ? unmapV4(c.addrs.sourceAddress) : c.client.remoteAddress === undefined ? 'unix' : unmapV4(c.client.remoteAddress);
    const refused = this.#limiter.admitClient(key);
    if (refused) {
      this.#refuse(c.client, refused, c.peer);
      return this.#end(c, null);
    }
    this.totals.accepted++;
    c.limitKey = key;
    this.#tryUpstreams(c, this.#order(), [], early);
  }

  #tryUpstreams(c: Conn, order: Upstream[], errors: string[], early: (err: Error) => void): void {
    if (c.client.destroyed || !this.#conns.has(c.id)) return this.#end(c, null);
    const u = order.shift();
    if (!u) {
      this.totals.failed++;
      const why = errors.length > 0 ? errors.join('; ') : this.#sources.some((s) => s.watcher) ? 'no address resolved yet' : 'none configured';
      const err = new Error(`no upstream reachable (${why})`);
      this.emit('connectionError', err, c.peer);
      c.client.destroy();
      return this.#end(c, null);
    }
    let s: Socket;
    try {
      s = dial(u, { timeout: c.o.connectTimeout, allowHalfOpen: true });
    } catch (err) {
      // Not even started (no ring, no fd): this upstream cannot be had now.
      u.connectFailures++;
      errors.push(`${fmt(u)}: ${(err as { code?: string }).code ?? (err as Error).message}`);
      return this.#tryUpstreams(c, order, errors, early);
    }
    c.server = s;
    // Counted from the attempt: least-connections must see the connects in flight, or a burst
    // of clients all goes to the same upstream.
    c.upstream = u;
    u.active++;
    s.once('connect', () => {
      s.removeAllListeners('error');
      this.#setHealth(u, true, '');
      if (c.client.destroyed || !this.#conns.has(c.id)) {
        s.destroy();
        return this.#end(c, null);
      }
      c.client.off('error', early);
      u.connections++;
      // The header, then what came after the client's own header, then the relay: in this order on the wire.
      if (u.sendProxy) {
        // The socket's own addresses are read only here: getsockname is a system call per connection.
        const cl = c.client;
        const lp = c.o.listen.path;
        // A unix client (no header naming another): v1 UNKNOWN, v2 PROXY over AF_UNIX.
        s.write(!c.addrs && lp !== undefined ? encodeUnixProxyHeader(u.sendProxy, '', lp) : encodeProxyHeader(u.sendProxy, c.addrs ?? addressesOf(cl.remoteAddress, cl.remotePort, cl.localAddress, cl.localPort)));
        this.#g.headersSent++;
      }
      if (c.early) s.write(c.early);
      this.#start(c, s);
    });
    s.on('error', (err: Error) => {
      u.connectFailures++;
      this.#setHealth(u, false, err.message);
      errors.push(`${fmt(u)}: ${(err as { code?: string }).code ?? err.message}`);
      c.server = null;
      if (c.upstream === u) {
        c.upstream = null;
        u.active--;
      }
      this.#tryUpstreams(c, order, errors, early);
    });
  }

  #start(c: Conn, s: Socket): void {
    const relay = forwardBoth(c.client, s, { mode: c.o.mode, spliceAfterBytes: c.o.spliceAfterBytes });
    c.relay = relay;
    let error: Error | null = null;
    relay.on('error', (err: Error) => {
      error = err;
      if (!c.idle) this.totals.errors++;
    });
    relay.on('done', () => this.#end(c, error));
    if (c.o.idleTimeout > 0) {
      const ms = c.o.idleTimeout * 1000;
      // Polled every half timeout; a byte counts from the poll that sees it (no later than it
      // came), so a connection is closed after between 1x and 1.5x of the timeout without a
      // byte either way, never sooner.
      let activeAt = performance.now();
      const tick = () => {
        c.idleTimer = null;
        if (relay.aToB.done && relay.bToA.done) return;
        const [up, down] = relay.bytes;
        const now = performance.now();
        if (up + down !== c.lastBytes) {
          c.lastBytes = up + down;
          activeAt = now;
        } else if (now - activeAt >= ms) {
          this.totals.idleClosed++;
          c.idle = true;
          relay.destroy(new ClosedError(`idle timeout: no byte for ${c.o.idleTimeout} s`));
          return;
        }
        c.idleTimer = setTimeout(tick, Math.max(1, Math.min(ms / 2, activeAt + ms - now)));
      };
      c.idleTimer = setTimeout(tick, ms / 2);
    }
  }

  #end(c: Conn, err: Error | null): void {
    if (!this.#conns.has(c.id)) return;
    this.#conns.delete(c.id);
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.cancelHeader?.();
    if (c.limitKey) this.#limiter.release(c.limitKey);
    const info = c.relay ? this.#info(c) : null;
    const u = c.upstream;
    c.upstream = null;
    if (u) {
      u.active--;
      if (u.active === 0) this.#retired.delete(u);
    }
    if (c.relay) {
      let [up, down] = c.relay.bytes;
      up += c.early?.length ?? 0;
      this.totals.bytesUp += up;
      this.totals.bytesDown += down;
      this.totals.completed++;
      if (u) {
        u.bytesUp += up;
        u.bytesDown += down;
      }
    } else if (c.server && !c.server.destroyed) {
      c.server.destroy(); // the client left while its upstream connect was in flight
    }
    if (!c.client.destroyed && !c.relay) c.client.destroy();
    if (info) this.emit('connectionClose', info, err);
    if (this.#closing && this.#conns.size === 0) this.emit('drained');
  }

  #info(c: Conn): ConnectionStats {
    return {
      id: c.id,
      client: c.peer,
      upstream: c.upstream ? fmt(c.upstream) : '',
      bytesUp: c.relay ? c.relay.bytes[0] + (c.early?.length ?? 0) : 0,
      bytesDown: c.relay ? c.relay.bytes[1] : 0,
      modeUp: c.relay ? c.relay.aToB.mode : 'buffers',
      modeDown: c.relay ? c.relay.bToA.mode : 'buffers',
      since: c.since,
    };
  }

  /** Per-connection figures of the open connections. */
  connectionStats(): ConnectionStats[] {
    return [...this.#conns.values()].map((c) => this.#info(c));
  }

  stats() {
    let up = this.totals.bytesUp;
    let down = this.totals.bytesDown;
    for (const c of this.#conns.values()) if (c.relay) [up, down] = [up + c.relay.bytes[0], down + c.relay.bytes[1]];
    return {
      ...this.totals,
      bytesUp: up,
      bytesDown: down,
      active: this.#conns.size,
      upstreams: [...this.upstreams, ...this.#retired].map(
        (u): UpstreamStats => ({
          host: u.host,
          port: u.port,
          ...(u.path !== undefined ? { path: u.path } : {}),
          source: u.source,
          weight: u.weight,
          priority: u.priority,
          retired: u.retired,
          healthy: u.healthy,
          active: u.active,
          connections: u.connections,
          connectFailures: u.connectFailures,
          bytesUp: u.bytesUp,
          bytesDown: u.bytesDown,
        }),
      ),
      gateway: this.gatewayStats(),
    };
  }

  /** Reloads, PROXY protocol headers, limit refusals and DNS resolutions. */
  gatewayStats(): GatewayStats {
    const g = this.#g;
    return {
      reloads: g.reloads,
      reloadsRefused: g.reloadsRefused,
      lastReloadError: g.lastReloadError,
      proxyHeaders: { sent: g.headersSent, accepted: g.headersAccepted, malformed: g.headersMalformed, timedOut: g.headersTimedOut },
      refused: { maxConnections: this.#refusedMax, ...this.#limiter.refused },
      clientsTracked: this.#limiter.tracked,
      dns: this.#sources
        .filter((s) => s.watcher)
        .map((s) => ({ source: s.key, resolutions: s.watcher!.resolutions, failures: s.watcher!.failures, upstreams: s.upstreams.length, lastError: s.watcher!.lastError })),
    };
  }

  /** Prometheus text exposition format (0.0.4). */
  metrics(): string {
    const s = this.stats();
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, rows: MetricRows): void => writeMetric(out, name, type, help, rows);
    metric('maio_proxy_connections_accepted_total', 'counter', 'Client connections accepted.', [['', s.accepted]]);
    metric('maio_proxy_connections_rejected_total', 'counter', 'Client connections closed at accept (limit or shutdown).', [['', s.rejected]]);
    metric('maio_proxy_connections_failed_total', 'counter', 'Client connections no upstream took.', [['', s.failed]]);
    metric('maio_proxy_connections_completed_total', 'counter', 'Forwarded connections that ended.', [['', s.completed]]);
    metric('maio_proxy_connection_errors_total', 'counter', 'Forwarded connections that ended with an error.', [['', s.errors]]);
    metric('maio_proxy_idle_timeouts_total', 'counter', 'Connections closed by the idle timeout.', [['', s.idleClosed]]);
    metric('maio_proxy_connections_active', 'gauge', 'Open client connections.', [['', s.active]]);
    let spliced = 0;
    for (const c of this.#conns.values()) if (c.relay) spliced += +(c.relay.aToB.mode === 'splice') + +(c.relay.bToA.mode === 'splice');
    metric('maio_proxy_directions_spliced', 'gauge', 'Directions of open connections forwarded by kernel splice.', [['', spliced]]);
    metric('maio_proxy_bytes_total', 'counter', 'Bytes forwarded.', [
      ['{direction="up"}', s.bytesUp],
      ['{direction="down"}', s.bytesDown],
    ]);
    // Static upstreams keep their one label; resolved ones also say which name they came from.
    const lab = (u: UpstreamStats) => (u.source === 'static' ? `{upstream="${esc(fmt(u))}"}` : `{upstream="${esc(fmt(u))}",source="${esc(u.source)}"}`);
    const seen = new Set<string>();
    const ups = s.upstreams.filter((u) => !seen.has(lab(u)) && !!seen.add(lab(u)));
    metric('maio_proxy_upstream_up', 'gauge', 'Upstream health (1 healthy).', ups.map((u) => [lab(u), u.healthy ? 1 : 0]));
    metric('maio_proxy_upstream_connections_active', 'gauge', 'Open connections per upstream.', ups.map((u) => [lab(u), u.active]));
    metric('maio_proxy_upstream_connections_total', 'counter', 'Connections per upstream.', ups.map((u) => [lab(u), u.connections]));
    metric('maio_proxy_upstream_connect_failures_total', 'counter', 'Failed connects per upstream.', ups.map((u) => [lab(u), u.connectFailures]));
    const g = s.gateway;
    metric('maio_proxy_upstreams', 'gauge', 'Upstreams new connections are balanced over (retired ones not counted).', [['', this.upstreams.length]]);
    metric('maio_proxy_upstreams_retired', 'gauge', 'Upstreams removed by a reload or DNS that still carry open connections.', [['', this.#retired.size]]);
    metric('maio_proxy_reloads_total', 'counter', 'Configuration reloads, taken or refused.', [
      ['{result="ok"}', g.reloads],
      ['{result="refused"}', g.reloadsRefused],
    ]);
    metric('maio_proxy_proxy_headers_sent_total', 'counter', 'PROXY protocol headers sent to upstreams.', [['', g.proxyHeaders.sent]]);
    metric('maio_proxy_proxy_headers_received_total', 'counter', 'PROXY protocol headers from clients, by outcome (a malformed or late one closes the connection).', [
      ['{result="accepted"}', g.proxyHeaders.accepted],
      ['{result="malformed"}', g.proxyHeaders.malformed],
      ['{result="timeout"}', g.proxyHeaders.timedOut],
    ]);
    metric('maio_proxy_limit_refusals_total', 'counter', 'Client connections closed at once by a limit.', [
      ['{limit="max_connections"}', g.refused.maxConnections],
      ['{limit="rate"}', g.refused.rate],
      ['{limit="per_client"}', g.refused.perClient],
      ['{limit="client_rate"}', g.refused.clientRate],
    ]);
    metric('maio_proxy_limit_clients_tracked', 'gauge', 'Client addresses the per-client limits hold state for.', [
      ['{state="open"}', g.clientsTracked.open],
      ['{state="rate_bucket"}', g.clientsTracked.buckets],
    ]);
    if (g.dns.length > 0) {
      const src = (d: { source: string }) => `source="${esc(d.source)}"`;
      metric('maio_proxy_dns_resolutions_total', 'counter', 'DNS resolutions of dns/srv upstreams (a failed one keeps the last good set).', g.dns.flatMap((d): [string, number][] => [
        [`{${src(d)},result="ok"}`, d.resolutions],
        [`{${src(d)},result="failed"}`, d.failures],
      ]));
      metric('maio_proxy_dns_upstreams', 'gauge', 'Addresses a dns/srv upstream resolves to now.', g.dns.map((d) => [`{${src(d)}}`, d.upstreams]));
    }
    return out.join('\n') + '\n';
  }

  /** Stops accepting; resolves when every open connection has ended. */
  close(): Promise<void> {
    this.#closing = true;
    if (this.#health) clearInterval(this.#health);
    this.#health = null;
    for (const src of this.#sources) src.watcher?.stop();
    this.#limiter.close();
    const server = this.#server;
    this.#server = null;
    const stopped = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const drained = new Promise<void>((resolve) => (this.#conns.size === 0 ? resolve() : this.once('drained', resolve)));
    return Promise.all([stopped, drained]).then(() => undefined);
  }
}
