/**
 * maio proxy --udp: the UDP relay (src/paths/udp-proxy.ts). `maio proxy`
 * hands its arguments here when --udp is among them. Prints `listening
 * <port>` on stdout when bound; one-line errors on stderr, exit 1.
 * SIGTERM/SIGINT close every session and exit 0; SIGHUP re-reads --config
 * (src/cli/proxy.ts's rules: flags win, listen and metrics cannot change).
 * With --workers N every worker runs a relay on the same address
 * (SO_REUSEPORT: the kernel hashes each client address to one worker, so a
 * flow and its session stay on that worker) and this thread sums /metrics,
 * lists /sessions per worker, and sends reloads (src/cli/proxy-workers.ts).
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import { metricsPort, serveMetrics } from './metrics-endpoint';
import { ConfigError, InvalidArgumentError } from '../core/errors';
import { parseHostPort, type HostPort } from '../paths/proxy';
import { UdpProxy, resolveUdpProxyOptions, type UdpProxyOptions } from '../paths/udp-proxy';
import { currentWorker } from '../workers/runtime';
import { announce } from './args';
import { runProxyWorkers } from './proxy-workers';
import { serveWorkerReloads, workerProxyData } from './proxy-worker-reload';
import { takeWorkerFlags } from './workers';

export const usage =
  'maio proxy --udp --listen HOST:PORT --upstream HOST:PORT [--upstream ...] [--balance round-robin|hash] [--udp-idle-timeout S] [--udp-max-sessions N] [--metrics HOST:PORT] [--config file.json] [--workers N|auto] [--cpus LIST]';

export const help = `  --udp                     relay UDP datagrams instead of TCP connections
  --listen HOST:PORT        where clients send (an IP address)
  --upstream HOST:PORT      an upstream (IP address); repeat for several
  --balance NAME            round-robin (default: each new flow the next upstream) or hash
                            (the client's address:port picks the upstream, the same every time)
  --udp-idle-timeout S      close a session with no datagram either way for S seconds (default 60; closed after S to 1.5 S)
  --udp-max-sessions N      open sessions at most; datagrams of further new flows are dropped and counted
  --metrics HOST:PORT       serve Prometheus text at /metrics and JSON at /sessions
  --config FILE             JSON with the same keys in camelCase (upstreams: [...], udpIdleTimeout ...); flags win;
                            SIGHUP re-reads it: new flows get the new upstreams, open sessions keep theirs
  --workers N|auto, --cpus LIST  as for TCP; each worker keeps its own sessions (the kernel's reuseport hash
                            keeps a client address:port on one worker; --cpus pins, it does not steer UDP)
  A session is one client address:port: a socket connected to its upstream, so replies go back to that client only.`;

const VALUE_FLAGS = new Set(['listen', 'upstream', 'balance', 'udp-idle-timeout', 'udp-max-sessions', 'metrics', 'config']);
const CONFIG_KEYS = new Set(['listen', 'upstreams', 'balance', 'udpIdleTimeout', 'udpMaxSessions', 'metrics']);

function positive(flag: string, raw: unknown, whole: boolean): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n <= 0 || (whole && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`${flag} must be ${whole ? 'a whole number' : 'a number'} > 0, got '${String(raw)}'`);
  }
  return n;
}

function readConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new InvalidArgumentError(`config ${file} must hold a JSON object`);
  const c = o as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!CONFIG_KEYS.has(k)) throw new InvalidArgumentError(`config ${file}: unknown key '${k}' for a UDP proxy`);
  for (const k of ['listen', 'balance', 'metrics']) {
    if (c[k] !== undefined && typeof c[k] !== 'string') throw new InvalidArgumentError(`config ${file}: ${k} must be a string, got ${JSON.stringify(c[k])}`);
  }
  if (c.upstreams !== undefined && (!Array.isArray(c.upstreams) || c.upstreams.some((u) => typeof u !== 'string'))) {
    throw new InvalidArgumentError(`config ${file}: upstreams must be an array of "HOST:PORT" strings`);
  }
  return c;
}

/**
 * The relay's options from the command line and --config (read afresh at
 * each call: SIGHUP calls it again). `--udp` itself may be anywhere in argv.
 */
export function parseUdpProxyArgs(argv: string[]): { options: UdpProxyOptions; metrics: HostPort | null } {
  const flags: Record<string, string> = {};
  const upstreamFlags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new InvalidArgumentError(`unexpected argument '${argv[i]}'`);
    const key = m[1]!;
    if (key === 'udp') {
      if (m[2] !== undefined) throw new InvalidArgumentError('--udp takes no value');
      continue;
    }
    if (!VALUE_FLAGS.has(key)) throw new InvalidArgumentError(`unknown option --${key} for a UDP proxy (see maio proxy --help)`);
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new InvalidArgumentError(`--${key} needs a value`);
    if (key === 'upstream') upstreamFlags.push(raw);
    else flags[key] = raw;
  }
  const file = flags.config === undefined ? {} : readConfig(flags.config);
  // Messages name the flag, or the config key the value came from.
  const pick = (flag: string, key: string): { v: unknown; src: string } =>
    flags[flag] !== undefined ? { v: flags[flag], src: `--${flag}` } : { v: file[key], src: `config ${flags.config}: ${key}` };
  const listen = pick('listen', 'listen');
  if (listen.v === undefined) throw new InvalidArgumentError('--listen HOST:PORT is required');
  const ups = upstreamFlags.length > 0 ? { v: upstreamFlags, src: '--upstream' } : { v: (file.upstreams as string[] | undefined) ?? [], src: `config ${flags.config}: upstreams` };
  if (ups.v.length === 0) throw new InvalidArgumentError('at least one --upstream HOST:PORT is required');
  const balance = pick('balance', 'balance');
  if (balance.v !== undefined && balance.v !== 'round-robin' && balance.v !== 'hash') {
    throw new InvalidArgumentError(`${balance.src} must be round-robin or hash for a UDP proxy, got '${String(balance.v)}'`);
  }
  const idle = pick('udp-idle-timeout', 'udpIdleTimeout');
  const max = pick('udp-max-sessions', 'udpMaxSessions');
  const metrics = pick('metrics', 'metrics');
  const options: UdpProxyOptions = {
    listen: parseHostPort(listen.v as string, listen.src),
    upstreams: ups.v.map((u) => parseHostPort(u, ups.src)),
    ...(balance.v !== undefined ? { balance: balance.v as 'round-robin' | 'hash' } : {}),
    ...(idle.v !== undefined ? { idleTimeout: positive(idle.src, idle.v, false) } : {}),
    ...(max.v !== undefined ? { maxSessions: positive(max.src, max.v, true) } : {}),
    recvBufferSize: 4 << 20,
  };
  try {
    resolveUdpProxyOptions(options);
  } catch (err) {
    // Name the flag (or key), not the option object's key.
    const msg = (err as Error).message.replace(/^listen/, listen.src).replace(/^upstreams\[\d+\]/, ups.src);
    throw new InvalidArgumentError(msg);
  }
  return { options, metrics: metrics.v === undefined ? null : parseHostPort(metrics.v as string, metrics.src) };
}

function fail(msg: string): never {
  process.stderr.write(`maio proxy: ${msg}\n`);
  process.exit(1);
}

const sameHostPort = (a: HostPort | null, b: HostPort | null) => (a === null ? b === null : b !== null && a.host === b.host && a.port === b.port);

export function run(argv: string[]): void {
  const w = takeWorkerFlags(argv);
  const worker = currentWorker();
  const fromMain = worker ? workerProxyData<UdpProxyOptions>() : null;
  // A worker of `--workers N` runs what the main thread read and checked (the one in force, for a replacement).
  const { options, metrics } = fromMain ? { options: fromMain.options, metrics: null } : parseUdpProxyArgs(w.rest);
  const build = () => {
    const next = parseUdpProxyArgs(w.rest);
    if (!sameHostPort(next.metrics, metrics)) throw new ConfigError('metrics cannot change on reload; restart the proxy for a new address');
    return next.options;
  };
  announce();
  if (w.workers !== null && !worker) {
    // Hash steering: CPU steering would move a flow between workers whenever its sender changes CPU.
    return runProxyWorkers({ ...w, steer: 'hash' }, options, metrics, build, { json: '/sessions', open: 'session' });
  }
  const proxy = new UdpProxy(options);
  proxy.on('error', (err) => process.stderr.write(`maio proxy: udp: ${err.message}\n`));
  if (worker) {
    // One relay per worker thread: the group's main thread serves the summed metrics, drains and reloads.
    worker.onMetrics(() => proxy.metrics());
    worker.onStats(() => proxy.stats());
    worker.onStop(() => proxy.close());
  }
  let httpServer: http.Server | null = null;
  proxy.listen().then(
    async (addr) => {
      if (worker) return;
      if (metrics) {
        httpServer = await serveMetrics(
          metrics,
          { metrics: () => proxy.metrics(), jsonPath: '/sessions', json: () => ({ stats: proxy.stats(), sessions: proxy.sessionStats() }) },
          (err) => fail(`cannot listen on ${metrics.host}:${metrics.port} (metrics): ${err.message}`),
        );
        process.stderr.write(`maio proxy: metrics on http://${metrics.host}:${metricsPort(httpServer)}/metrics\n`);
      }
      process.stdout.write(`listening ${addr.port}\n`);
    },
    (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address in use' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : err.message;
      fail(`cannot listen on ${options.listen.host}:${options.listen.port} (udp): ${why}`);
    },
  );
  // In a worker the group drains (SIGTERM reaches the main thread) and SIGHUP comes as a message from it.
  if (worker) {
    if (fromMain) serveWorkerReloads<UdpProxyOptions>({ reload: (o) => proxy.reload(o), upstreams: () => proxy.upstreamCount, open: () => proxy.sessions }, worker, fromMain.generation);
    return;
  }
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(0);
    stopping = true;
    process.stderr.write(`maio proxy: stopping: closing ${proxy.sessions} UDP session(s)\n`);
    httpServer?.close();
    void proxy.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    try {
      proxy.reload(build);
      process.stderr.write(`maio proxy: reloaded: ${proxy.upstreamCount} upstream(s) for new flows, ${proxy.sessions} open session(s) kept\n`);
    } catch (err) {
      process.stderr.write(`maio proxy: reload refused: ${(err as Error).message} (the running configuration stays)\n`);
    }
  });
}
