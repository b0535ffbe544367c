/**
 * `maio proxy --workers N`: every worker runs the same proxy (src/cli/proxy.ts
 * in a worker) with the configuration this thread read; this thread serves
 * /metrics summed over the workers and /connections as each worker's stats,
 * and on SIGHUP re-reads the configuration and sends it to every worker
 * (src/cli/proxy-worker-reload.ts). The UDP relay (`--udp --workers N`) runs
 * the same way, with /sessions for /connections.
 */
import type * as http from 'node:http';
import { metricsPort, serveMetrics } from './metrics-endpoint';
import type { HostPort } from '../paths/proxy';
import { sumPrometheus } from '../workers/aggregate';
import { WorkerReloads, type ReloadableOptions } from './proxy-worker-reload';
import { runInWorkers, type WorkerFlags } from './workers';

/** The TCP proxy's names; the UDP relay's are /sessions and 'session'. */
const TCP = { json: '/connections', open: 'connection' };

/** `build` re-reads the configuration for a SIGHUP (throws to refuse it, e.g. a new metrics address). */
export function runProxyWorkers<O extends ReloadableOptions>(flags: WorkerFlags, options: O, metrics: HostPort | null, build: () => O, names = TCP): void {
  let httpServer: http.Server | null = null;
  let reloads: WorkerReloads<O> | null = null;
  runInWorkers(
    'proxy',
    flags,
    async (group) => {
      if (!metrics) return;
      httpServer = await serveMetrics(
        metrics,
        {
          // The main thread's own count (reloads it refused) last: the workers' families keep their order.
          metrics: () => group.metrics().then((text) => sumPrometheus([text, reloads!.metrics()])),
          jsonPath: names.json,
          json: () => group.stats().then((s) => ({ stats: s.total, workers: s.workers })),
        },
        (err) => {
          process.stderr.write(`maio proxy: cannot listen on ${metrics.host}:${metrics.port} (metrics): ${err.message}\n`);
          process.exit(1);
        },
      );
      process.stderr.write(`maio proxy: metrics on http://${metrics.host}:${metricsPort(httpServer)}/metrics (summed over ${group.count} workers)\n`);
    },
    (group) => {
      process.stderr.write(`maio proxy: stopping: draining ${group.count} workers\n`);
      httpServer?.close();
    },
    () => reloads!.data(),
    (group) => {
      reloads = new WorkerReloads(options, group, names.open);
      const r = reloads;
      let busy: Promise<void> = Promise.resolve();
      process.on('SIGHUP', () => {
        // One reload at a time, in signal order: each worker sees the configurations in the same order.
        busy = busy.then(() => r.reload(build));
      });
    },
  );
}
