/**
 * The gateway's flags and config-file keys for `maio proxy` (PROXY protocol,
 * limits, DNS), kept apart from src/cli/proxy.ts so that the command's own
 * parsing stays small. Each flag's config key is its camelCase name; flags
 * win over the file, as for the other options.
 */
import { InvalidAddressError, InvalidArgumentError } from '../core/errors';
import type { ProxyOptions, SendProxy, UpstreamSpec } from './proxy-options';

/** --flag -> config key, numbers */
export const GATEWAY_NUM: Record<string, string> = {
  'accept-proxy-timeout': 'acceptProxyTimeout',
  'max-connections-per-client': 'maxConnectionsPerClient',
  'rate-limit': 'rateLimit',
  'rate-burst': 'rateBurst',
  'client-rate-limit': 'clientRateLimit',
  'client-rate-burst': 'clientRateBurst',
  'dns-min-interval': 'dnsMinInterval',
  'dns-max-interval': 'dnsMaxInterval',
};
/** --flag -> config key, strings */
export const GATEWAY_STR: Record<string, string> = { 'send-proxy': 'sendProxy' };
/** --flag -> config key, repeatable strings */
export const GATEWAY_LIST: Record<string, string> = { 'dns-server': 'dnsServers' };
/** --flag (no value) -> config key, true when present */
export const GATEWAY_FLAG: Record<string, string> = { 'accept-proxy': 'acceptProxy' };

export const GATEWAY_KEYS = [...Object.values(GATEWAY_NUM), ...Object.values(GATEWAY_STR), ...Object.values(GATEWAY_LIST), ...Object.values(GATEWAY_FLAG)];

export const gatewayUsage = '[--send-proxy v1|v2] [--accept-proxy] [--accept-proxy-timeout MS] [--max-connections-per-client N] [--rate-limit R] [--rate-burst N] [--client-rate-limit R] [--client-rate-burst N] [--dns-server IP[:PORT] ...] [--dns-min-interval S] [--dns-max-interval S]';

export const gatewayHelp = `  --upstream dns:NAME:PORT  every A/AAAA address of NAME, resolved again as the TTL runs out
  --upstream srv:_SVC._tcp.NAME  the SRV targets of the name, with their ports, priorities and weights
  --send-proxy v1|v2        send a PROXY protocol header to upstreams (the client's address)
  --accept-proxy            expect a PROXY protocol header (v1 or v2) from a load balancer in front
  --accept-proxy-timeout MS close a client whose header has not come within MS (default 3000)
  --max-connections-per-client N  open connections per client address (default: no limit)
  --rate-limit R            new connections per second, overall (token bucket; --rate-burst N)
  --client-rate-limit R     new connections per second per client address (--client-rate-burst N)
  --dns-server IP[:PORT]    DNS server for dns:/srv: upstreams (repeat; default: the system's)
  --dns-min-interval S      shortest time between two resolutions of a name (default 1)
  --dns-max-interval S      longest time an answer is used whatever its TTL (default 300)
  SIGHUP re-reads --config (flags still win) and takes it without dropping connections;
  a bad one is refused with one line on stderr and the running configuration stays.`;

export type GatewayParsed = Record<string, number | string | boolean | string[] | undefined>;

function sendProxyOf(v: unknown, what: string): SendProxy {
  if (v === false || v === 'off' || v === 'none') return false;
  if (v === 'v1' || v === 'v2') return v;
  throw new InvalidArgumentError(`${what} must be v1 or v2, got ${JSON.stringify(v)}`);
}

/**
 * One upstream from the command line or the config file: "HOST:PORT",
 * "dns:NAME:PORT", "srv:_service._proto.name", or (file only) an object
 * { address, weight?, sendProxy? } with one of those as address.
 */
export function parseUpstream(u: unknown, what: string, parseHostPort: (s: string, what: string) => { host: string; port: number }): UpstreamSpec {
  if (u !== null && typeof u === 'object' && !Array.isArray(u)) {
    const o = u as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'address' && k !== 'weight' && k !== 'sendProxy') throw new InvalidArgumentError(`${what}: unknown key '${k}' (address, weight, sendProxy)`);
    const spec = parseUpstream(o.address, what, parseHostPort) as UpstreamSpec & { weight?: number };
    if (o.weight !== undefined) {
      if (typeof o.weight !== 'number' || !(o.weight > 0) || !Number.isFinite(o.weight)) throw new InvalidArgumentError(`${what}: weight must be a number > 0, got ${JSON.stringify(o.weight)}`);
      if ('srv' in spec) throw new InvalidArgumentError(`${what}: an srv upstream takes its weights from the SRV records`);
      spec.weight = o.weight;
    }
    if (o.sendProxy !== undefined) spec.sendProxy = sendProxyOf(o.sendProxy, `${what}: sendProxy`);
    return spec;
  }
  if (typeof u !== 'string') throw new InvalidAddressError(`${what} must be "HOST:PORT", "dns:NAME:PORT" or "srv:_SERVICE._tcp.NAME", got ${JSON.stringify(u)}`);
  if (u.startsWith('srv:')) return { srv: u.slice(4) };
  if (u.startsWith('dns:')) {
    const hp = parseHostPort(u.slice(4), what);
    return { dns: hp.host, port: hp.port };
  }
  const hp = parseHostPort(u, what);
  if (hp.port === 0) throw new InvalidAddressError(`${what} '${u}': port must be in 1..65535`);
  return hp;
}

/**
 * The gateway options from the flags (`p`) over the file's keys (`file`);
 * `src(flag, fromFlag, key)` names where a bad value came from.
 */
export function gatewayOptions(p: GatewayParsed, file: Record<string, unknown>, src: (flag: string, given: boolean, key: string) => string): Partial<ProxyOptions> {
  const out: Record<string, unknown> = {};
  const flagOf = (key: string, table: Record<string, string>) => `--${Object.keys(table).find((f) => table[f] === key)}`;
  for (const key of Object.values(GATEWAY_NUM)) {
    const given = p[key] !== undefined;
    const v = given ? p[key] : file[key];
    if (v === undefined) continue;
    const n = typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : NaN;
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${src(flagOf(key, GATEWAY_NUM), given, key)} must be a number >= 0, got '${String(v)}'`);
    if ((key === 'maxConnectionsPerClient' || key.endsWith('Burst')) && !Number.isInteger(n)) {
      throw new InvalidArgumentError(`${src(flagOf(key, GATEWAY_NUM), given, key)} must be a whole number, got ${n}`);
    }
    out[key] = n;
  }
  const sp = p.sendProxy !== undefined ? p.sendProxy : file.sendProxy;
  if (sp !== undefined) out.sendProxy = sendProxyOf(sp, src('--send-proxy', p.sendProxy !== undefined, 'sendProxy'));
  const ap = p.acceptProxy !== undefined ? p.acceptProxy : file.acceptProxy;
  if (ap !== undefined) {
    if (typeof ap !== 'boolean') throw new InvalidArgumentError(`${src('--accept-proxy', false, 'acceptProxy')} must be true or false, got ${JSON.stringify(ap)}`);
    out.acceptProxy = ap;
  }
  const ds = p.dnsServers !== undefined ? p.dnsServers : file.dnsServers;
  if (ds !== undefined) {
    if (!Array.isArray(ds) || ds.some((s) => typeof s !== 'string')) throw new InvalidArgumentError(`${src('--dns-server', false, 'dnsServers')} must be an array of "IP[:PORT]" strings`);
    out.dnsServers = ds;
  }
  return out as Partial<ProxyOptions>;
}
