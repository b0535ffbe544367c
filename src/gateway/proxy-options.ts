/**
 * A Proxy's options, checked and with their defaults filled in: the one
 * function both `new Proxy(options)` and `proxy.reload(options)` use, so a
 * configuration a reload accepts is exactly one the constructor accepts.
 */
import { isIP } from 'node:net';
import { InvalidAddressError, InvalidArgumentError } from '../core/errors';
import { resolveMode, type ForwardMode } from '../paths/forward';
import type { DnsSettings, DnsSpec } from './dns-upstreams';
import { defaultBurst, type LimitSettings } from './limits';
import { V2_DEFAULT_MAX_LENGTH } from './proxy-protocol';

export interface HostPort {
  host: string;
  port: number;
}

/** 'v1' or 'v2': a PROXY protocol header goes first on each upstream connection; false: none. */
export type SendProxy = 'v1' | 'v2' | false;

interface UpstreamCommon {
  /** overrides the proxy's sendProxy for this upstream */
  sendProxy?: SendProxy;
}
/** One backend by address (a host name here is looked up at each connect, as before). */
export interface StaticUpstreamSpec extends HostPort, UpstreamCommon {
  /** share of new connections relative to the others (default 1) */
  weight?: number;
}
/** Every A/AAAA address of `dns`, at `port`, re-resolved as the records expire. */
export interface DnsUpstreamSpec extends UpstreamCommon {
  dns: string;
  port: number;
  weight?: number;
}
/** The targets of an SRV name ("_service._proto.name"), with their ports, priorities and weights. */
export interface SrvUpstreamSpec extends UpstreamCommon {
  srv: string;
}
export type UpstreamSpec = StaticUpstreamSpec | DnsUpstreamSpec | SrvUpstreamSpec;

export interface ProxyOptions {
  listen: HostPort;
  upstreams: UpstreamSpec[];
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

  /** PROXY protocol header towards every upstream that does not say otherwise (default false) */
  sendProxy?: SendProxy;
  /** expect a PROXY protocol header (v1 or v2) first on every client connection; the client is who it names */
  acceptProxy?: boolean;
  /** ms for that header to arrive (default 3000) */
  acceptProxyTimeout?: number;
  /** bound on an accepted v2 header in bytes (default 2064; v1 is at most 107 by the specification) */
  acceptProxyMaxBytes?: number;
  /** open connections per client address (0: unlimited) */
  maxConnectionsPerClient?: number;
  /** new connections per second, overall (token bucket; 0: unlimited) */
  rateLimit?: number;
  /** connections the overall bucket holds (default: one second's worth) */
  rateBurst?: number;
  /** new connections per second per client address (0: unlimited) */
  clientRateLimit?: number;
  clientRateBurst?: number;
  /** DNS servers for dns/srv upstreams ("ip" or "ip:port"; default: the system's) */
  dnsServers?: string[];
  /** seconds: shortest interval between resolutions of one name (default 1) */
  dnsMinInterval?: number;
  /** seconds: longest time an answer is used whatever its TTL (default 300) */
  dnsMaxInterval?: number;
  /** ms per DNS query try (default 2000) */
  dnsTimeout?: number;
}

/** Every option with its value in force. */
export interface ResolvedProxyOptions {
  listen: HostPort;
  upstreams: UpstreamSpec[];
  balance: 'round-robin' | 'least-connections';
  maxConnections: number;
  idleTimeout: number;
  healthInterval: number;
  retryDown: number;
  connectTimeout: number;
  mode: ForwardMode;
  spliceAfterBytes: number | undefined;
  sendProxy: SendProxy;
  acceptProxy: boolean;
  acceptProxyTimeout: number;
  acceptProxyMaxBytes: number;
  limits: LimitSettings;
  dns: DnsSettings;
}

export const fmtHostPort = (h: HostPort) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

function checkHostPort(h: unknown, what: string, allowZero: boolean): void {
  const o = h as HostPort;
  if (o === null || typeof o !== 'object' || typeof o.host !== 'string' || o.host.length === 0) throw new InvalidAddressError(`${what} must be { host, port }`);
  if (!Number.isInteger(o.port) || o.port < (allowZero ? 0 : 1) || o.port > 65535) {
    throw new InvalidAddressError(`${what} ${fmtHostPort(o)}: port must be in ${allowZero ? 0 : 1}..65535`);
  }
}

function checkSendProxy(v: unknown, what: string): void {
  if (v !== undefined && v !== false && v !== 'v1' && v !== 'v2') throw new InvalidArgumentError(`${what} must be 'v1', 'v2' or false, got ${JSON.stringify(v)}`);
}

const NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

function checkUpstream(u: unknown, i: number): void {
  const what = `upstream ${i}`;
  if (u === null || typeof u !== 'object') throw new InvalidArgumentError(`${what} must be an object ({ host, port }, { dns, port } or { srv })`);
  const o = u as Record<string, unknown>;
  checkSendProxy(o.sendProxy, `${what}: sendProxy`);
  if (o.weight !== undefined && (typeof o.weight !== 'number' || !Number.isFinite(o.weight) || o.weight <= 0)) {
    throw new InvalidArgumentError(`${what}: weight must be a number > 0, got ${String(o.weight)}`);
  }
  if ('srv' in o) {
    if (typeof o.srv !== 'string' || !/^_[^.]+\._(tcp|udp)\./i.test(o.srv) || !NAME.test(o.srv)) {
      throw new InvalidAddressError(`${what}: srv must be a name like _service._tcp.example.com, got ${JSON.stringify(o.srv)}`);
    }
    if (o.weight !== undefined) throw new InvalidArgumentError(`${what}: an srv upstream takes its weights from the SRV records`);
    return;
  }
  if ('dns' in o) {
    if (typeof o.dns !== 'string' || isIP(o.dns) || !NAME.test(o.dns)) throw new InvalidAddressError(`${what}: dns must be a host name, got ${JSON.stringify(o.dns)}`);
    checkHostPort({ host: o.dns, port: o.port }, what, false);
    return;
  }
  checkHostPort(o, what, false);
}

function nonNegative(k: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new InvalidArgumentError(`${k} must be a number >= 0, got ${String(v)}`);
}

/** Checks `options` (typed errors naming the option) and fills in the defaults. */
export function resolveProxyOptions(options: ProxyOptions): ResolvedProxyOptions {
  if (!options || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
  if (!Array.isArray(options.upstreams) || options.upstreams.length === 0) throw new InvalidArgumentError('at least one upstream is needed');
  const balance = options.balance ?? 'round-robin';
  if (balance !== 'round-robin' && balance !== 'least-connections') {
    throw new InvalidArgumentError(`balance must be round-robin or least-connections, got '${String(balance)}'`);
  }
  const o = options as unknown as Record<string, unknown>;
  for (const k of [
    'maxConnections',
    'idleTimeout',
    'healthInterval',
    'retryDown',
    'connectTimeout',
    'acceptProxyTimeout',
    'acceptProxyMaxBytes',
    'maxConnectionsPerClient',
    'rateLimit',
    'rateBurst',
    'clientRateLimit',
    'clientRateBurst',
    'dnsMinInterval',
    'dnsMaxInterval',
    'dnsTimeout',
  ]) {
    nonNegative(k, o[k]);
  }
  for (const k of ['maxConnections', 'maxConnectionsPerClient', 'acceptProxyMaxBytes']) {
    if (o[k] !== undefined && !Number.isInteger(o[k])) throw new InvalidArgumentError(`${k} must be an integer, got ${String(o[k])}`);
  }
  const after = options.spliceAfterBytes;
  if (after !== undefined && (typeof after !== 'number' || !(Number.isSafeInteger(after) || after === Infinity) || after < 0)) {
    throw new InvalidArgumentError(`spliceAfterBytes must be a whole number >= 0 (or Infinity), got ${String(after)}`);
  }
  // Here, not at the first connection: 'splice' on the epoll backend throws.
  resolveMode(options.mode ?? 'auto');
  checkHostPort(options.listen, 'listen', true);
  options.upstreams.forEach((u, i) => checkUpstream(u, i));
  checkSendProxy(options.sendProxy, 'sendProxy');
  if (options.acceptProxy !== undefined && typeof options.acceptProxy !== 'boolean') throw new InvalidArgumentError(`acceptProxy must be true or false, got ${String(options.acceptProxy)}`);
  const maxBytes = options.acceptProxyMaxBytes ?? V2_DEFAULT_MAX_LENGTH;
  if (maxBytes < 16 + 36) throw new InvalidArgumentError(`acceptProxyMaxBytes must be at least 52 (a v2 header with IPv6 addresses), got ${maxBytes}`);
  if (options.dnsServers !== undefined) {
    if (!Array.isArray(options.dnsServers) || options.dnsServers.some((s) => typeof s !== 'string' || !isDnsServer(s))) {
      throw new InvalidAddressError(`dnsServers must be IP addresses ("1.2.3.4", "1.2.3.4:53", "[::1]:53"), got ${JSON.stringify(options.dnsServers)}`);
    }
  }
  const dnsMin = options.dnsMinInterval ?? 1;
  const dnsMax = options.dnsMaxInterval ?? 300;
  if (dnsMin > dnsMax) throw new InvalidArgumentError(`dnsMinInterval (${dnsMin} s) must not exceed dnsMaxInterval (${dnsMax} s)`);
  if ((options.dnsMinInterval ?? 1) === 0) throw new InvalidArgumentError('dnsMinInterval must be > 0 (a resolution per TTL of 0 would query without pause)');
  const rate = options.rateLimit ?? 0;
  const clientRate = options.clientRateLimit ?? 0;
  const burst = (v: number | undefined, r: number, k: string) => {
    if (v !== undefined && r > 0 && v < 1) throw new InvalidArgumentError(`${k} must be at least 1 when its rate is set, got ${v}`);
    return v ?? defaultBurst(r);
  };
  return {
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
    sendProxy: options.sendProxy ?? false,
    acceptProxy: options.acceptProxy ?? false,
    acceptProxyTimeout: Math.max(1, Math.ceil(options.acceptProxyTimeout ?? 3000)),
    acceptProxyMaxBytes: maxBytes,
    limits: {
      maxConnectionsPerClient: options.maxConnectionsPerClient ?? 0,
      rateLimit: rate,
      rateBurst: burst(options.rateBurst, rate, 'rateBurst'),
      clientRateLimit: clientRate,
      clientRateBurst: burst(options.clientRateBurst, clientRate, 'clientRateBurst'),
    },
    dns: { servers: options.dnsServers ?? [], minInterval: dnsMin, maxInterval: dnsMax, timeout: Math.ceil(options.dnsTimeout ?? 2000) },
  };
}

function isDnsServer(s: string): boolean {
  if (isIP(s)) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  return !!m && isIP(m[1] ?? m[2]!) !== 0 && Number(m[3]) <= 65535;
}

/** The dns/srv part of an upstream spec, or null for an address upstream. */
export function dnsSpecOf(u: UpstreamSpec): DnsSpec | null {
  if ('srv' in u) return { srv: u.srv };
  if ('dns' in u) return { dns: u.dns, port: u.port };
  return null;
}

export function sameDnsSettings(a: DnsSettings, b: DnsSettings): boolean {
  return a.minInterval === b.minInterval && a.maxInterval === b.maxInterval && a.timeout === b.timeout && a.servers.join(',') === b.servers.join(',');
}
