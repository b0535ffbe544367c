/**
 * maio proxy --udp: the UDP relay (src/paths/udp-proxy.ts). `maio proxy`
 * hands its arguments here when --udp is among them. Prints `listening
 * <port>` on stdout when bound; one-line errors on stderr, exit 1.
 * SIGTERM/SIGINT close every session and exit 0.
 */
import * as http from 'node:http';
import { InvalidArgumentError } from '../core/errors';
import { parseHostPort } from '../paths/proxy';
import { UdpProxy, resolveUdpProxyOptions, type UdpProxyOptions } from '../paths/udp-proxy';
import { announce } from './args';

export const usage = 'maio proxy --udp --listen HOST:PORT --upstream HOST:PORT [--upstream ...] [--balance round-robin|hash] [--udp-idle-timeout S] [--udp-max-sessions N] [--metrics HOST:PORT]';

export const help = `  --udp                     relay UDP datagrams instead of TCP connections
  --listen HOST:PORT        where clients send (an IP address)
  --upstream HOST:PORT      an upstream (IP address); repeat for several
  --balance NAME            round-robin (default: each new flow the next upstream) or hash
                            (the client's address:port picks the upstream, the same every time)
  --udp-idle-timeout S      close a session with no datagram either way for S seconds (default 60; closed after S to 1.5 S)
  --udp-max-sessions N      open sessions at most; datagrams of further new flows are dropped and counted
  --metrics HOST:PORT       serve Prometheus text at /metrics and JSON at /sessions
  A session is one client address:port: a socket connected to its upstream, so replies go back to that client only.`;

const VALUE_FLAGS = new Set(['listen', 'upstream', 'balance', 'udp-idle-timeout', 'udp-max-sessions', 'metrics']);

function positive(flag: string, raw: string, whole: boolean): number {
  const n = Number(raw);
  if (raw === '' || !Number.isFinite(n) || n <= 0 || (whole && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`${flag} must be ${whole ? 'a whole number' : 'a number'} > 0, got '${raw}'`);
  }
  return n;
}

/** The relay's options from the command line (`--udp` itself may be anywhere in it). */
export function parseUdpProxyArgs(argv: string[]): { options: UdpProxyOptions; metrics: { host: string; port: number } | null } {
  let listen: string | undefined;
  const upstreams: string[] = [];
  let balance: string | undefined;
  let idle: number | undefined;
  let max: number | undefined;
  let metrics: string | undefined;
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
    if (key === 'listen') listen = raw;
    else if (key === 'upstream') upstreams.push(raw);
    else if (key === 'balance') balance = raw;
    else if (key === 'udp-idle-timeout') idle = positive('--udp-idle-timeout', raw, false);
    else if (key === 'udp-max-sessions') max = positive('--udp-max-sessions', raw, true);
    else metrics = raw;
  }
  if (listen === undefined) throw new InvalidArgumentError('--listen HOST:PORT is required');
  if (upstreams.length === 0) throw new InvalidArgumentError('at least one --upstream HOST:PORT is required');
  if (balance !== undefined && balance !== 'round-robin' && balance !== 'hash') throw new InvalidArgumentError(`--balance must be round-robin or hash for a UDP proxy, got '${balance}'`);
  const options: UdpProxyOptions = {
    listen: parseHostPort(listen, '--listen'),
    upstreams: upstreams.map((u) => parseHostPort(u, '--upstream')),
    ...(balance !== undefined ? { balance: balance as 'round-robin' | 'hash' } : {}),
    ...(idle !== undefined ? { idleTimeout: idle } : {}),
    ...(max !== undefined ? { maxSessions: max } : {}),
    recvBufferSize: 4 << 20,
  };
  try {
    resolveUdpProxyOptions(options);
  } catch (err) {
    // Name the flag, not the option object's key.
    const msg = (err as Error).message.replace(/^listen/, '--listen').replace(/^upstreams\[\d+\]/, '--upstream');
    throw new InvalidArgumentError(msg);
  }
  return { options, metrics: metrics === undefined ? null : parseHostPort(metrics, '--metrics') };
}

function fail(msg: string): never {
  process.stderr.write(`maio proxy: ${msg}\n`);
  process.exit(1);
}

export function run(argv: string[]): void {
  const { options, metrics } = parseUdpProxyArgs(argv);
  announce();
  const proxy = new UdpProxy(options);
  proxy.on('error', (err) => process.stderr.write(`maio proxy: udp: ${err.message}\n`));
  let httpServer: http.Server | null = null;
  proxy.listen().then(
    async (addr) => {
      if (metrics) {
        httpServer = http.createServer((req, res) => {
          if (req.url === '/metrics' || req.url === '/') {
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
            res.end(proxy.metrics());
          } else if (req.url === '/sessions') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ stats: proxy.stats(), sessions: proxy.sessionStats() }));
          } else {
            res.writeHead(404).end();
          }
        });
        httpServer.on('error', (err) => fail(`cannot listen on ${metrics.host}:${metrics.port} (metrics): ${err.message}`));
        await new Promise<void>((resolve) => httpServer!.listen(metrics.port, metrics.host, resolve));
        process.stderr.write(`maio proxy: metrics on http://${metrics.host}:${(httpServer.address() as { port: number }).port}/metrics\n`);
      }
      process.stdout.write(`listening ${addr.port}\n`);
    },
    (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address in use' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : err.message;
      fail(`cannot listen on ${options.listen.host}:${options.listen.port} (udp): ${why}`);
    },
  );
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
  // The TCP proxy reloads on SIGHUP; this one has no file to re-read, and must not die of it.
  process.on('SIGHUP', () => process.stderr.write('maio proxy: SIGHUP ignored: a UDP proxy takes no --config to reload\n'));
}
