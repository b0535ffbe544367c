/**
 * A TCP proxy on maio sockets: each accepted connection is forwarded to one
 * upstream with forwardBoth() (pool buffers passed on as they are, see
 * forward.ts). Upstreams are picked round-robin or by least connections among
 * the healthy ones; a failed connect marks the upstream down and tries the
 * next (failover); health checks (a TCP connect every `healthInterval` s)
 * bring it back, or without them one client connect tried on it again every
 * `retryDown` s (then it goes first; on failure the client fails over).
 * bring it back. close() stops accepting and resolves when every open
 * connection has ended (graceful drain).
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ClosedError, InvalidAddressError, InvalidArgumentError } from '../core/errors';
import { TypedEmitter } from '../core/typed-events';
import { connect, createServer, type Server } from '../net/server';
import type { Socket } from '../net/socket';
import { unixSockaddr } from '../net/unix-address';
import { forwardBoth, resolveMode, type ForwardMode, type Relay } from './forward';

export interface HostPort {
  host: string;
  port: number;
  /** a unix domain socket path instead of host and port (which are then '' and 0) */
  path?: string;
}

export interface ProxyOptions {
  listen: HostPort;
  upstreams: HostPort[];
  balance?: 'round-robin' | 'least-connections';
  /** most client connections at once (an integer); more are closed at accept (default and 0: unlimited) */
  maxConnections?: number;
  /** seconds without a byte in either direction before a connection is closed (0: never) */
  idleTimeout?: number;
  /** seconds between health checks (0: none; failed connects still mark an upstream down) */
  healthInterval?: number;
  /** without health checks: seconds after which a down upstream gets one client connect again (default 5; 0: never) */
  retryDown?: number;
  /** ms for an upstream connect or health check (default 3000; 0: the kernel's own timeout) */
  connectTimeout?: number;
  mode?: ForwardMode;
  /** 'auto' on io_uring: bytes one direction carries within 1 s before it moves to splice (forward.ts; default 8 MiB; 0: never) */
  spliceAfterBytes?: number;
}

export interface UpstreamStats extends HostPort {
  healthy: boolean;
  active: number;
  connections: number;
  connectFailures: number;
  bytesUp: number;
  bytesDown: number;
}

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
    unixSockaddr(path); // a bad path throws here
    return { host: '', port: 0, path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s) ?? /^()()(\d{1,5})$/.exec(s);
  if (!m) throw new InvalidAddressError(`${what} must be HOST:PORT, got '${s}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new InvalidAddressError(`${what} '${s}': port must be in 0..65535`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

const fmt = (h: HostPort) => (h.path !== undefined ? `unix:${h.path}` : h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

/** A unix listener's address in the AddressInfo shape the proxy's API uses. */
const unixInfo = (path: string): AddressInfo => ({ address: path, family: 'unix', port: 0 });

/** connect() to an upstream: its path, or its host and port. */
const dial = (u: HostPort, o: { timeout: number; allowHalfOpen?: boolean }): Socket =>
  connect(u.path !== undefined ? { path: u.path, ...o } : { host: u.host, port: u.port, ...o });

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
  constructor(
    readonly host: string,
    readonly port: number,
    readonly path?: string,
  ) {}
}

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
}

function checkHostPort(h: unknown, what: string, allowZero: boolean): void {
  const o = h as HostPort;
  if (o !== null && typeof o === 'object' && o.path !== undefined) {
    if (typeof o.path !== 'string') throw new InvalidAddressError(`${what} path must be a string`);
    unixSockaddr(o.path);
    return;
  }
  if (o === null || typeof o !== 'object' || typeof o.host !== 'string' || o.host.length === 0) throw new InvalidAddressError(`${what} must be { host, port }`);
  if (!Number.isInteger(o.port) || o.port < (allowZero ? 0 : 1) || o.port > 65535) {
    throw new InvalidAddressError(`${what} ${fmt(o)}: port must be in ${allowZero ? 0 : 1}..65535`);
  }
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
}

export class Proxy extends TypedEmitter<ProxyEvents> {
  readonly upstreams: Upstream[];
  readonly #o: Required<Omit<ProxyOptions, 'mode' | 'spliceAfterBytes'>> & { mode: ForwardMode; spliceAfterBytes: number | undefined };
  #server: Server | null = null;
  #conns = new Map<number, Conn>();
  #nextId = 1;
  #rr = 0;
  #health: NodeJS.Timeout | null = null;
  #closing = false;
  #checking: Promise<boolean[]> | null = null;
  readonly totals = { accepted: 0, rejected: 0, failed: 0, completed: 0, errors: 0, idleClosed: 0, bytesUp: 0, bytesDown: 0 };

  constructor(options: ProxyOptions) {
    super();
    if (!options || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
    if (!Array.isArray(options.upstreams) || options.upstreams.length === 0) throw new InvalidArgumentError('at least one upstream is needed');
    const balance = options.balance ?? 'round-robin';
    if (balance !== 'round-robin' && balance !== 'least-connections') {
      throw new InvalidArgumentError(`balance must be round-robin or least-connections, got '${String(balance)}'`);
    }
    for (const [k, v] of [
      ['maxConnections', options.maxConnections],
      ['idleTimeout', options.idleTimeout],
      ['healthInterval', options.healthInterval],
      ['retryDown', options.retryDown],
      ['connectTimeout', options.connectTimeout],
    ] as const) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new InvalidArgumentError(`${k} must be a number >= 0, got ${String(v)}`);
    }
    const after = options.spliceAfterBytes;
    if (after !== undefined && (typeof after !== 'number' || !(Number.isSafeInteger(after) || after === Infinity) || after < 0)) {
      throw new InvalidArgumentError(`spliceAfterBytes must be a whole number >= 0 (or Infinity), got ${String(after)}`);
    }
    if (options.maxConnections !== undefined && !Number.isInteger(options.maxConnections)) {
      throw new InvalidArgumentError(`maxConnections must be an integer, got ${options.maxConnections}`);
    }
    // Here, not at the first connection: 'splice' on the epoll backend throws.
    resolveMode(options.mode ?? 'auto');
    checkHostPort(options.listen, 'listen', true);
    options.upstreams.forEach((u, i) => checkHostPort(u, `upstream ${i}`, false));
    this.#o = {
      listen: options.listen,
      upstreams: options.upstreams,
      balance,
      maxConnections: options.maxConnections || Infinity,
      idleTimeout: options.idleTimeout ?? 0,
      healthInterval: options.healthInterval ?? 0,
      retryDown: options.retryDown ?? 5,
      // connect() takes whole ms
      connectTimeout: Math.ceil(options.connectTimeout ?? 3000),
      mode: options.mode ?? 'auto',
      spliceAfterBytes: after,
    };
    this.upstreams = options.upstreams.map((u) => new Upstream(u.host, u.port, u.path));
  }

  /** Starts listening; resolves with the bound address ({ address: the path, family: 'unix', port: 0 } on a unix socket). */
  async listen(): Promise<AddressInfo> {
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
    if (this.#o.healthInterval > 0) {
      this.#health = setInterval(() => void this.checkHealth(), this.#o.healthInterval * 1000);
      this.#health.unref();
    }
    this.emit('listening', addr);
    return addr;
  }

  address(): AddressInfo | null {
    const a = this.#server?.address() ?? null;
    return typeof a === 'string' ? unixInfo(a) : a;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** One TCP connect per upstream; updates and returns their health. A check in progress is shared, not repeated. */
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
              s.destroy();
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
      if (this.#o.balance === 'least-connections') first = healthy.reduce((a, b) => (b.active < a.active ? b : a));
      else first = healthy[this.#rr++ % healthy.length];
    }
    const rest = [...healthy.filter((u) => u !== first), ...ups.filter((u) => !u.healthy)];
    return first ? [first, ...rest] : rest;
  }

  #onConnection(client: Socket): void {
    if (this.#closing || this.#conns.size >= this.#o.maxConnections) {
      this.totals.rejected++;
      client.on('error', () => {});
      client.destroy();
      return;
    }
    this.totals.accepted++;
    const c: Conn = { id: this.#nextId++, client, peer: client.remoteAddress === undefined ? 'unix' : `${client.remoteAddress}:${client.remotePort}`, server: null, upstream: null, relay: null, since: Date.now(), lastBytes: 0, idleTimer: null, idle: false };
    this.#conns.set(c.id, c);
    // Until the upstream is connected, arriving bytes wait in client's receive buffers (its read quota bounds them).
    const early = (err: Error) => this.#end(c, err);
    client.on('error', early);
    client.on('close', () => {
      if (!c.relay) this.#end(c, null);
    });
    this.#tryUpstreams(c, this.#order(), [], early);
  }

  #tryUpstreams(c: Conn, order: Upstream[], errors: string[], early: (err: Error) => void): void {
    if (c.client.destroyed || !this.#conns.has(c.id)) return this.#end(c, null);
    const u = order.shift();
    if (!u) {
      this.totals.failed++;
      const err = new Error(`no upstream reachable (${errors.join('; ')})`);
      this.emit('connectionError', err, c.peer);
      c.client.destroy();
      return this.#end(c, null);
    }
    let s: Socket;
    try {
      s = dial(u, { timeout: this.#o.connectTimeout, allowHalfOpen: true });
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
    const relay = forwardBoth(c.client, s, { mode: this.#o.mode, spliceAfterBytes: this.#o.spliceAfterBytes });
    c.relay = relay;
    let error: Error | null = null;
    relay.on('error', (err: Error) => {
      error = err;
      if (!c.idle) this.totals.errors++;
    });
    relay.on('done', () => this.#end(c, error));
    if (this.#o.idleTimeout > 0) {
      const ms = this.#o.idleTimeout * 1000;
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
          relay.destroy(new ClosedError(`idle timeout: no byte for ${this.#o.idleTimeout} s`));
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
    const info = c.relay ? this.#info(c) : null;
    const u = c.upstream;
    c.upstream = null;
    if (u) u.active--;
    if (c.relay) {
      const [up, down] = c.relay.bytes;
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
      bytesUp: c.relay ? c.relay.bytes[0] : 0,
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
      upstreams: this.upstreams.map((u) => ({ host: u.host, port: u.port, ...(u.path !== undefined ? { path: u.path } : {}), healthy: u.healthy, active: u.active, connections: u.connections, connectFailures: u.connectFailures, bytesUp: u.bytesUp, bytesDown: u.bytesDown })),
    };
  }

  /** Prometheus text exposition format (0.0.4). */
  metrics(): string {
    const s = this.stats();
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, rows: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}${labels} ${v}`);
    };
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
    const lab = (u: HostPort) => `{upstream="${fmt(u)}"}`;
    metric('maio_proxy_upstream_up', 'gauge', 'Upstream health (1 healthy).', s.upstreams.map((u) => [lab(u), u.healthy ? 1 : 0]));
    metric('maio_proxy_upstream_connections_active', 'gauge', 'Open connections per upstream.', s.upstreams.map((u) => [lab(u), u.active]));
    metric('maio_proxy_upstream_connections_total', 'counter', 'Connections per upstream.', s.upstreams.map((u) => [lab(u), u.connections]));
    metric('maio_proxy_upstream_connect_failures_total', 'counter', 'Failed connects per upstream.', s.upstreams.map((u) => [lab(u), u.connectFailures]));
    return out.join('\n') + '\n';
  }

  /** Stops accepting; resolves when every open connection has ended. */
  close(): Promise<void> {
    this.#closing = true;
    if (this.#health) clearInterval(this.#health);
    this.#health = null;
    const server = this.#server;
    this.#server = null;
    const stopped = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const drained = new Promise<void>((resolve) => (this.#conns.size === 0 ? resolve() : this.once('drained', resolve)));
    return Promise.all([stopped, drained]).then(() => undefined);
  }
}
