/**
 * `maio proxy`'s SIGHUP: the configuration is built again from the same flags
 * and a fresh read of --config, and handed to proxy.reload(). One line on
 * stderr either way; a refused one (unreadable file, bad JSON, a bad value,
 * a new listen or metrics address) leaves the running configuration in force.
 */
import type { HostPort, ProxyOptions } from '../paths/proxy';
import type { Proxy } from '../paths/proxy';
import { ConfigError } from '../core/errors';

export function reloadOnSighup(proxy: Proxy, build: () => { options: ProxyOptions; metrics: HostPort | null }, metrics: HostPort | null): void {
  process.on('SIGHUP', () => {
    try {
      proxy.reload(() => {
        const next = build();
        const same = (a: HostPort | null, b: HostPort | null) => (a === null ? b === null : b !== null && a.host === b.host && a.port === b.port);
        if (!same(next.metrics, metrics)) throw new ConfigError('metrics cannot change on reload; restart the proxy for a new address');
        return next.options;
      });
      process.stderr.write(`maio proxy: reloaded: ${proxy.upstreams.length} upstream(s) for new connections, ${proxy.connections} open connection(s) kept\n`);
    } catch (err) {
      process.stderr.write(`maio proxy: reload refused: ${(err as Error).message} (the running configuration stays)\n`);
    }
  });
}

/** One stderr line per DNS change or failure, and per refused PROXY header. */
export function reportGatewayEvents(proxy: Proxy): void {
  proxy.on('resolved', (source, ups) => process.stderr.write(`maio proxy: ${source} now resolves to ${ups.map((u) => (u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`)).join(', ')}\n`));
  proxy.on('resolveError', (source, err) => process.stderr.write(`maio proxy: ${source}: resolution failed, keeping the last good set: ${err.message}\n`));
}
