/**
 * The maio echo server the load scripts drive (soak.ts, load-10k.ts), run as
 * a child so that its memory is measured alone. Prints "listening <port>",
 * then one JSON sample per --sample-ms on stdout: RSS, JS heap, connections,
 * bytes, socket errors and the pool's use. Exits on SIGTERM.
 *
 *   node dist/bench/load/echo-server.js [--port 0] [--sample-ms 1000]
 *     [--read-buffer-size 65536] [--read-buffers-max 256] [--idle-timeout 0] [--gc (with node --expose-gc)]
 */
import { createServer, defaultPool, stats, type Socket } from '../../src/index';
import type { AddressInfo } from 'node:net';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const port = arg('port', 0);
const sampleMs = arg('sample-ms', 1000);
let errors = 0;
let accepted = 0;
let peakConns = 0;
const errorCodes: Record<string, number> = {};

const server = createServer(
  {
    readBufferSize: arg('read-buffer-size', 65536),
    readBuffersMax: arg('read-buffers-max', 256),
    idleTimeout: arg('idle-timeout', 0),
  },
  (s: Socket) => {
    accepted++;
    s.on('error', (e: NodeJS.ErrnoException) => {
      errors++;
      const k = String(e.code ?? e.name);
      errorCodes[k] = (errorCodes[k] ?? 0) + 1;
    });
    // Echo without copies: each received pool buffer goes back out as it is.
    s.on('data', (buf) => {
      if (!s.send(buf)) {
        s.pause();
        s.once('drain', () => s.resume());
      }
    });
  },
);
server.on('error', (e) => {
  process.stderr.write(`echo-server: ${String(e)}\n`);
  process.exit(1);
});
server.listen({ port, host: '127.0.0.1', backlog: 65535 }, () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});

const t0 = Date.now();
// --gc: a full collection before each sample (node --expose-gc), so that the heap figure is
// the live set, not wherever the sawtooth of the young generation happens to be.
const gcFirst = process.argv.includes('--gc') && typeof globalThis.gc === 'function';
function sample(): void {
  if (gcFirst) globalThis.gc!();
  const m = process.memoryUsage();
  const p = defaultPool().stats();
  const st = stats();
  if (server.connections > peakConns) peakConns = server.connections;
  process.stdout.write(
    JSON.stringify({
      t: (Date.now() - t0) / 1000,
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      conns: server.connections,
      peakConns,
      accepted,
      errors,
      errorCodes,
      bytesRead: st.bytesRead,
      bytesWritten: st.bytesWritten,
      pool: { inUse: p.inUse, lent: p.lent, bytesInUse: p.bytesInUse, failedAllocs: p.failedAllocs, capacity: p.capacity, residentBytes: p.residentBytes },
      recvGroups: st.recvGroups.map((g) => ({ withApplication: g.withApplication, inKernel: g.inKernel })),
    }) + '\n',
  );
}
setInterval(sample, sampleMs).unref();
const quit = (): void => {
  sample();
  process.exit(0);
};
process.on('SIGTERM', quit);
