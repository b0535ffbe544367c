/** Shared by test/workers/: node:net clients of a worker group's echo servers. */
import * as net from 'node:net';
import * as path from 'node:path';
import { WorkerGroup } from '../../src/workers/group';
import { WorkerReloads } from '../../src/cli/proxy-worker-reload';

/** The compiled echo worker module (test/workers/fixtures/echo-worker.ts). */
export const ECHO_WORKER = path.join(__dirname, 'fixtures', 'echo-worker.js');

export function connectTo(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Sends `payload` and resolves with exactly as many bytes back (rejects on error or close first). */
export function exchange(s: net.Socket, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= payload.length) {
        cleanup();
        resolve(Buffer.concat(parts));
      }
    };
    const onErr = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`closed after ${got} of ${payload.length} bytes`));
    };
    const cleanup = () => {
      s.off('data', onData);
      s.off('error', onErr);
      s.off('close', onClose);
    };
    s.on('data', onData);
    s.once('error', onErr);
    s.once('close', onClose);
    s.write(payload);
  });
}

/** Asks a greeting echo worker (workerData.greet) which worker serves this connection. */
export function whichWorker(s: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('utf8');
      if (text.endsWith('\n')) {
        s.off('data', onData);
        s.off('error', reject);
        resolve(Number(text.trim()));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write('who\n');
  });
}

/** Resolves with the error (or null for a clean end) when the socket closes. */
export function ending(s: net.Socket): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    let err: NodeJS.ErrnoException | null = null;
    s.on('error', (e) => (err = e));
    s.once('close', () => resolve(err));
  });
}

export function payload(seed: number, n = 4096): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * `maio proxy --workers 2` as the CLI runs it, towards one upstream port (not
 * started): the group restarts a dead worker after 50 ms, and each worker
 * starts on the configuration the reloads hold in force.
 */
export function proxyGroup(upstreamPort: number): { group: WorkerGroup; reloads: WorkerReloads } {
  let reloads: WorkerReloads | null = null;
  const group = new WorkerGroup({
    module: require.resolve('../../src/cli/worker-command'),
    count: 2,
    restart: { minDelay: 50 },
    workerData: () => ({ command: 'proxy', argv: [], ...reloads!.data() }),
  });
  reloads = new WorkerReloads({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: upstreamPort }], mode: 'buffers' }, group);
  return { group, reloads };
}
