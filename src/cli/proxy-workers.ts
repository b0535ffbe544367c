/**
 * `maio proxy --workers N`: every worker runs the same proxy (src/cli/proxy.ts
 * in a worker); this thread serves /metrics summed over the workers and
 * /connections as each worker's stats.
 */
import * as http from 'node:http';
import type { HostPort } from '../paths/proxy';
import { runInWorkers, type WorkerFlags } from './workers';

export function runProxyWorkers(flags: WorkerFlags, metrics: HostPort | null): void {
  let httpServer: http.Server | null = null;
  runInWorkers(
    'proxy',
    flags,
    async (group) => {
      if (!metrics) return;
      httpServer = http.createServer((req, res) => {
        const send = (type: string, body: string) => {
          res.writeHead(200, { 'content-type': type });
          res.end(body);
        };
        if (req.url === '/metrics' || req.url === '/') {
          group.metrics().then((text) => send('text/plain; version=0.0.4', text), () => res.writeHead(500).end());
        } else if (req.url === '/connections') {
          group.stats().then((s) => send('application/json', JSON.stringify({ stats: s.total, workers: s.workers })), () => res.writeHead(500).end());
        } else {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((resolve, reject) => {
        httpServer!.once('error', reject);
        httpServer!.listen(metrics.port, metrics.host, resolve);
      }).catch((err: Error) => {
        process.stderr.write(`maio proxy: cannot listen on ${metrics.host}:${metrics.port} (metrics): ${err.message}\n`);
        process.exit(1);
      });
      process.stderr.write(`maio proxy: metrics on http://${metrics.host}:${(httpServer.address() as { port: number }).port}/metrics (summed over ${group.count} workers)\n`);
    },
    (group) => {
      process.stderr.write(`maio proxy: stopping: draining ${group.count} workers\n`);
      httpServer?.close();
    },
  );
}
