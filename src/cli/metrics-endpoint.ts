/**
 * The HTTP endpoint of `maio proxy --metrics ADDR` (TCP or UDP, one process
 * or a worker group): Prometheus text at / and /metrics, one JSON document
 * at the relay's own path (/connections, /sessions).
 */
import * as http from 'node:http';

export interface MetricsRoutes {
  /** the Prometheus text */
  metrics(): string | Promise<string>;
  /** where the JSON document is served */
  jsonPath: string;
  /** the JSON document (serialized here) */
  json(): unknown;
}

/** Listens on `at`; `onError` gets a failed listen and any later server error. Resolves once listening. */
export function serveMetrics(at: { host: string; port: number }, routes: MetricsRoutes, onError: (err: NodeJS.ErrnoException) => void): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const send = (type: string) => (body: string): void => {
      res.writeHead(200, { 'content-type': type });
      res.end(body);
    };
    const failed = (): void => void res.writeHead(500).end();
    if (req.url === '/metrics' || req.url === '/') {
      Promise.resolve().then(() => routes.metrics()).then(send('text/plain; version=0.0.4'), failed);
    } else if (req.url === routes.jsonPath) {
      Promise.resolve().then(() => routes.json()).then((doc) => send('application/json')(JSON.stringify(doc)), failed);
    } else {
      res.writeHead(404).end();
    }
  });
  server.on('error', onError);
  return new Promise((resolve) => server.listen(at.port, at.host, () => resolve(server)));
}

/** The port the endpoint listens on (for the "metrics on" line). */
export function metricsPort(server: http.Server): number {
  return (server.address() as { port: number }).port;
}
