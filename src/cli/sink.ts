/** maio sink: accept and discard (each buffer is released when the 'data' handler returns). */
import { createServer, type Server } from '../net/server';
import type { Socket } from '../net/socket';
import { announce, gbits, onSignals, parseArgs, printListening } from './args';
import { inCliWorker, runInWorkers, takeWorkerFlags, workersHelp } from './workers';
import type { AddressInfo } from 'node:net';

export const usage = 'maio sink [--port P] [--host H] [--workers N|auto] [--cpus LIST]';
export const help = `  --port P   port to listen on (default 0: any free port; the one taken is printed as "listening <port>")
  --host H   address to listen on (default 127.0.0.1)
${workersHelp}
  On SIGINT/SIGTERM it prints the bytes received and the rate on stderr.`;

export function run(argv: string[]): Server | null {
  const w = takeWorkerFlags(argv);
  const o = parseArgs(w.rest, { port: 'number', host: 'string' }, { port: 0 as number, host: '127.0.0.1' as string });
  announce();
  if (w.workers !== null && !inCliWorker()) {
    let since = 0;
    runInWorkers(
      'sink',
      w,
      () => {
        since = performance.now();
      },
      async (group) => {
        // The bytes every worker received, summed (each worker's thread counts its own).
        const total = (await group.stats()).total as { net?: { bytesRead?: number } };
        const got = total.net?.bytesRead ?? 0;
        const secs = (performance.now() - since) / 1000;
        process.stderr.write(`maio sink: ${got} bytes in ${secs.toFixed(2)} s (${gbits(got, secs)} Gbit/s) over ${group.count} workers\n`);
      },
    );
    return null;
  }
  const sockets = new Set<Socket>();
  let bytes = 0;
  let first = 0;
  const server = createServer((s) => {
    sockets.add(s);
    if (!first) first = performance.now();
    s.on('data', (buf) => {
      bytes += buf.length;
    });
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  server.on('error', (err: Error) => {
    process.stderr.write(`maio sink: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(o.port, o.host, () => {
    printListening((server.address() as AddressInfo).port);
  });
  onSignals(() => {
    const secs = first ? (performance.now() - first) / 1000 : 0;
    process.stderr.write(`maio sink: ${bytes} bytes in ${secs.toFixed(2)} s (${gbits(bytes, secs)} Gbit/s)\n`);
    server.close(() => process.exit(0));
    for (const s of sockets) s.destroy();
  });
  return server;
}
