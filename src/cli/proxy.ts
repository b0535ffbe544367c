/**
 * maio proxy: TCP proxy over maio sockets (logic in src/paths/proxy.ts).
 * Prints `listening <port>` on stdout when ready; one-line errors on stderr.
 * SIGTERM/SIGINT: stop accepting, let open connections finish, exit 0 (a
 * second signal exits at once).
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import { metricsPort, serveMetrics } from './metrics-endpoint';
import { ConfigError, InvalidAddressError, InvalidArgumentError } from '../core/errors';
import { Proxy, parseHostPort, type HostPort, type ProxyOptions } from '../paths/proxy';
import { GATEWAY_FLAG, GATEWAY_KEYS, GATEWAY_LIST, GATEWAY_NUM, GATEWAY_STR, gatewayHelp, gatewayOptions, gatewayUsage, parseUpstream, type GatewayParsed } from '../gateway/cli-options';
import { fmtHostPort, resolveProxyOptions, type UnixPath } from '../gateway/proxy-options';
import { reloadOnSighup, reportGatewayEvents } from '../gateway/sighup';
import { announce } from './args';
import { runProxyWorkers } from './proxy-workers';
import { serveWorkerReloads, workerProxyData } from './proxy-worker-reload';
import { currentWorker } from '../workers/runtime';
import { takeWorkerFlags, workersHelp } from './workers';
import * as udpProxy from './udp-proxy';

export const usage =
  'maio proxy --listen HOST:PORT|unix:PATH --upstream HOST:PORT|unix:PATH [--upstream ...] [--balance round-robin|least-connections] [--max-connections N] [--idle-timeout S] [--health-interval S] [--retry-down S] [--connect-timeout MS] [--metrics HOST:PORT] [--mode auto|buffers|splice] [--splice-after BYTES] [--config file.json] ' + gatewayUsage + ' [--workers N|auto] [--cpus LIST]';

export const help = `  --listen HOST:PORT        where clients connect (required); unix:PATH for a unix domain socket
  --upstream HOST:PORT      a backend (or unix:PATH); repeat for several (at least one)
  --balance NAME            round-robin (default) or least-connections
  --max-connections N       while N clients are open, a new one is closed at once (default: no limit)
  --idle-timeout S          close a connection with no byte either way for S seconds (closed after S to 1.5 S)
  --health-interval S       TCP-connect every upstream each S seconds to mark it down or up (default: off)
  --retry-down S            without health checks, try a down upstream again after S seconds (default 5)
  --connect-timeout MS      bound on every upstream connect (default 3000)
  --metrics HOST:PORT       serve Prometheus text at /metrics and JSON at /connections
  --mode M                  auto (default: pool buffers, kernel splice for bulk streams on io_uring),
                            buffers, or splice (io_uring only)
  --splice-after BYTES      auto: move a direction to splice after this many bytes within 1 s (default 8 MiB; 0: never)
  --config FILE             JSON with the same keys in camelCase (upstreams: [...]); flags win
${gatewayHelp}
${workersHelp}
  SIGTERM stops accepting, drains open connections and exits.

  ${udpProxy.usage}
${udpProxy.help}`;

interface Parsed {
  listen?: string;
  upstreams: string[];
  balance?: string;
  maxConnections?: number;
  idleTimeout?: number;
  healthInterval?: number;
  connectTimeout?: number;
  retryDown?: number;
  metrics?: string;
  mode?: string;
  spliceAfterBytes?: number;
  config?: string;
  /** the gateway's options (src/gateway/cli-options.ts), by config key */
  gateway: GatewayParsed;
}

const NUM: Record<string, keyof Parsed> = {
  'max-connections': 'maxConnections',
  'idle-timeout': 'idleTimeout',
  'health-interval': 'healthInterval',
  'connect-timeout': 'connectTimeout',
  'retry-down': 'retryDown',
  'splice-after': 'spliceAfterBytes',
};
const STR: Record<string, keyof Parsed> = { listen: 'listen', balance: 'balance', metrics: 'metrics', mode: 'mode', config: 'config' };

function num(key: string, v: unknown): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'boolean' || v === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${key} must be a number >= 0, got '${String(v)}'`);
  return n;
}

export function parseProxyArgs(argv: string[]): Parsed {
  const out: Parsed = { upstreams: [], gateway: {} };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new InvalidArgumentError(`unexpected argument '${argv[i]}'`);
    const key = m[1]!;
    // The gateway's options: checked with the config file's values in resolveConfig.
    if (GATEWAY_FLAG[key]) {
      if (m[2] !== undefined) throw new InvalidArgumentError(`--${key} takes no value`);
      out.gateway[GATEWAY_FLAG[key]!] = true;
      continue;
    }
    if (GATEWAY_NUM[key] || GATEWAY_STR[key] || GATEWAY_LIST[key]) {
      const raw = m[2] ?? argv[++i];
      if (raw === undefined) throw new InvalidArgumentError(`--${key} needs a value`);
      if (GATEWAY_LIST[key]) ((out.gateway[GATEWAY_LIST[key]!] as string[] | undefined) ?? (out.gateway[GATEWAY_LIST[key]!] = [])).push(raw);
      else out.gateway[(GATEWAY_NUM[key] ?? GATEWAY_STR[key])!] = raw;
      continue;
    }
    if (key !== 'upstream' && !NUM[key] && !STR[key]) throw new InvalidArgumentError(`unknown option --${key} (see maio proxy --help)`);
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new InvalidArgumentError(`--${key} needs a value`);
    if (key === 'upstream') out.upstreams.push(raw);
    else if (NUM[key]) (out as any)[NUM[key]!] = num(`--${key}`, raw);
    else (out as any)[STR[key]!] = raw;
  }
  return out;
}

/** Flags over the config file's values (same names: listen, upstreams, balance, maxConnections, idleTimeout, healthInterval, connectTimeout, retryDown, metrics, mode, spliceAfterBytes). */
export function resolveConfig(p: Parsed): { options: ProxyOptions; metrics: HostPort | null } {
  let file: Record<string, unknown> = {};
  if (p.config !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(p.config, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`cannot read config ${p.config}: ${(err as Error).message}`);
    }
    try {
      file = JSON.parse(text);
    } catch (err) {
      throw new InvalidArgumentError(`config ${p.config} is not valid JSON: ${(err as Error).message}`);
    }
    if (file === null || typeof file !== 'object' || Array.isArray(file)) throw new InvalidArgumentError(`config ${p.config} must hold a JSON object`);
    const known = new Set(['listen', 'upstreams', 'balance', 'maxConnections', 'idleTimeout', 'healthInterval', 'connectTimeout', 'retryDown', 'metrics', 'mode', 'spliceAfterBytes', ...GATEWAY_KEYS]);
    for (const k of Object.keys(file)) if (!known.has(k)) throw new InvalidArgumentError(`config ${p.config}: unknown key '${k}'`);
    if (file.upstreams !== undefined && (!Array.isArray(file.upstreams) || file.upstreams.some((u) => typeof u !== 'string' && (u === null || typeof u !== 'object')))) {
      throw new InvalidArgumentError(`config ${p.config}: upstreams must be an array of "HOST:PORT" strings (or { address, weight, sendProxy } objects)`);
    }
    for (const k of ['listen', 'balance', 'metrics', 'mode']) {
      if (file[k] !== undefined && typeof file[k] !== 'string') throw new InvalidArgumentError(`config ${p.config}: ${k} must be a string, got ${JSON.stringify(file[k])}`);
    }
  }
  // Messages name the flag, or the config key the value came from.
  const src = (flag: string, given: boolean, key: string) => (given ? flag : `config ${p.config}: ${key}`);
  const listen = p.listen ?? (file.listen as string | undefined);
  if (listen === undefined) throw new InvalidArgumentError('--listen HOST:PORT is required');
  const upsFromFlags = p.upstreams.length > 0;
  const ups: unknown[] = upsFromFlags ? p.upstreams : ((file.upstreams as unknown[] | undefined) ?? []);
  if (ups.length === 0) throw new InvalidArgumentError('at least one --upstream HOST:PORT is required');
  const pick = <T>(a: T | undefined, k: string): T | undefined => (a !== undefined ? a : (file[k] as T | undefined));
  const balance = pick(p.balance, 'balance') ?? 'round-robin';
  if (balance !== 'round-robin' && balance !== 'least-connections') throw new InvalidArgumentError(`--balance must be round-robin or least-connections, got '${balance}'`);
  const mode = pick(p.mode, 'mode') ?? 'auto';
  if (mode !== 'auto' && mode !== 'buffers' && mode !== 'splice') throw new InvalidArgumentError(`--mode must be auto, buffers or splice, got '${mode}'`);
  const n = (a: number | undefined, k: string, flag: string) => {
    const v = pick(a, k);
    return v === undefined ? undefined : num(src(flag, a !== undefined, k), v);
  };
  const metrics = pick(p.metrics, 'metrics');
  const upstreams = ups.map((u) => parseUpstream(u, src('--upstream', upsFromFlags, 'upstreams'), parseHostPort));
  const options: ProxyOptions = {
    listen: parseHostPort(listen, src('--listen', p.listen !== undefined, 'listen')),
    upstreams,
    balance,
    mode,
    ...gatewayOptions(p.gateway ?? {}, file, src),
  };
  const mc = n(p.maxConnections, 'maxConnections', '--max-connections');
  const it = n(p.idleTimeout, 'idleTimeout', '--idle-timeout');
  const hi = n(p.healthInterval, 'healthInterval', '--health-interval');
  const ct = n(p.connectTimeout, 'connectTimeout', '--connect-timeout');
  const rd = n(p.retryDown, 'retryDown', '--retry-down');
  const sa = n(p.spliceAfterBytes, 'spliceAfterBytes', '--splice-after');
  if (sa !== undefined && !Number.isSafeInteger(sa)) {
    throw new InvalidArgumentError(`${src('--splice-after', p.spliceAfterBytes !== undefined, 'spliceAfterBytes')} must be a whole number of bytes, got ${sa}`);
  }
  if (mc !== undefined && !Number.isInteger(mc)) {
    throw new InvalidArgumentError(`${src('--max-connections', p.maxConnections !== undefined, 'maxConnections')} must be a whole number, got ${mc}`);
  }
  if (mc !== undefined) options.maxConnections = mc;
  if (it !== undefined) options.idleTimeout = it;
  if (hi !== undefined) options.healthInterval = hi;
  if (ct !== undefined) options.connectTimeout = ct;
  if (rd !== undefined) options.retryDown = rd;
  if (sa !== undefined) options.spliceAfterBytes = sa;
  // Everything the Proxy would refuse, refused here: before the banner, and the same on SIGHUP.
  resolveProxyOptions(options);
  const at = metrics === undefined ? null : parseHostPort(metrics, src('--metrics', p.metrics !== undefined, 'metrics'));
  if (at?.path !== undefined) throw new InvalidAddressError(`${src('--metrics', p.metrics !== undefined, 'metrics')} must be HOST:PORT (an HTTP server on TCP), got '${String(metrics)}'`);
  return { options, metrics: at };
}

function fail(msg: string): never {
  process.stderr.write(`maio proxy: ${msg}\n`);
  process.exit(1);
}

function listenError(what: string, at: HostPort | UnixPath, err: NodeJS.ErrnoException): never {
  const why = err.code === 'EADDRINUSE' ? 'address in use' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : err.code === 'EACCES' ? 'permission denied' : err.message;
  fail(`cannot listen on ${fmtHostPort(at)} (${what}): ${why}`);
}

export function run(argv: string[]): void {
  if (argv.includes('--udp')) return udpProxy.run(argv);
  const w = takeWorkerFlags(argv);
  const parsed = parseProxyArgs(w.rest);
  const worker = currentWorker();
  const fromMain = worker ? workerProxyData<ProxyOptions>() : null;
  // A worker of `--workers N` runs what the main thread read and checked (the one in force, for a replacement).
  const { options, metrics } = fromMain ? { options: fromMain.options, metrics: null } : resolveConfig(parsed);
  // Workers share a port through SO_REUSEPORT; a unix path has no such group (the second bind fails).
  if (w.workers !== null && options.listen.path !== undefined) throw new InvalidArgumentError('--workers needs a TCP --listen (a unix path cannot be shared by several listeners)');
  announce();
  if (w.workers !== null && !worker) {
    return runProxyWorkers(w, options, metrics, () => {
      const next = resolveConfig(parsed);
      const same = (a: HostPort | null, b: HostPort | null) => (a === null ? b === null : b !== null && a.host === b.host && a.port === b.port);
      if (!same(next.metrics, metrics)) throw new ConfigError('metrics cannot change on reload; restart the proxy for a new address');
      return next.options;
    });
  }
  const proxy = new Proxy(options);
  proxy.on('error', (err: NodeJS.ErrnoException) => listenError('proxy', options.listen, err));
  proxy.on('upstream', (u: HostPort & { lastError: string }, healthy: boolean) => {
    process.stderr.write(`maio proxy: upstream ${fmtHostPort(u)} is ${healthy ? 'up' : `down (${u.lastError})`}\n`);
  });
  proxy.on('connectionError', (err: Error, client: string) => process.stderr.write(`maio proxy: connection from ${client}: ${err.message}\n`));
  let httpServer: http.Server | null = null;
  if (worker) {
    // One proxy per worker thread: the group's main thread serves the summed metrics and drains.
    worker.onMetrics(() => proxy.metrics());
    worker.onStats(() => proxy.stats());
    worker.onStop(() => proxy.close());
  }
  proxy.listen().then(
    async (addr) => {
      if (worker) return;
      if (metrics) {
        httpServer = await serveMetrics(
          metrics,
          { metrics: () => proxy.metrics(), jsonPath: '/connections', json: () => ({ stats: proxy.stats(), connections: proxy.connectionStats() }) },
          (err) => listenError('metrics', metrics, err),
        );
        process.stderr.write(`maio proxy: metrics on http://${metrics.host}:${metricsPort(httpServer)}/metrics\n`);
      }
      const health = await proxy.checkHealth();
      if (!health.some(Boolean)) process.stderr.write('maio proxy: warning: no upstream is reachable right now\n');
      process.stdout.write(`listening ${addr.family === 'unix' ? `unix:${addr.address}` : addr.port}\n`);
    },
    (err: NodeJS.ErrnoException) => listenError('proxy', options.listen, err),
  );
  reportGatewayEvents(proxy);
  // In a worker the group drains (SIGTERM reaches the main thread) and SIGHUP comes as a message from it.
  if (worker) {
    if (fromMain) serveWorkerReloads<ProxyOptions>({ reload: (o) => proxy.reload(o), upstreams: () => proxy.upstreams.length, open: () => proxy.connections }, worker, fromMain.generation);
    return;
  }
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(0);
    stopping = true;
    process.stderr.write(`maio proxy: stopping: draining ${proxy.connections} connection(s)\n`);
    httpServer?.close();
    void proxy.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  reloadOnSighup(proxy, () => resolveConfig(parsed), metrics);
}
